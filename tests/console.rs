//! The web console in a real headless Chromium (DESIGN §10) against a real server process:
//! sign in through the login form, browse projects and profiles, and see the projects list
//! update live over Server-Sent Events. Needs `chromium` and `chromedriver` on PATH (skipped
//! without them, failed without them under `FLEETPLANE_TEST_REQUIRE_ALL=1`).

#[path = "support/browser.rs"]
mod browser;
mod support;

use browser::Browser;
use serde_json::Value;
use support::{ADMIN_KEY, Server, ServerOptions, require_tool};

const PASSWORD: &str = "console e2e password 42";
const AWS: &str = "examples/profiles/aws-standard-1.0.0.json";

fn js_str(s: &str) -> String {
    Value::from(s).to_string()
}

/// A script returning whether the page's text contains `part`.
fn page_has(part: &str) -> String {
    format!(
        "return document.body !== null && document.body.innerText.includes({});",
        js_str(part)
    )
}

#[tokio::test]
async fn sign_in_browse_profiles_and_see_projects_live() {
    if !require_tool("chromium") || !require_tool("chromedriver") {
        return;
    }
    let server =
        Server::start_with(ServerOptions::default().env("FLEETPLANE_BOOTSTRAP_PASSWORD", PASSWORD))
            .await;
    let browser = Browser::start().await;

    // Sign in through the real form.
    browser.goto(&server.url("/console")).await;
    browser
        .wait_for(
            "the login form",
            "return location.pathname === '/console/login' && !!document.querySelector('input[name=password]');",
        )
        .await;
    browser.type_into("input[name=username]", "admin").await;
    browser.type_into("input[name=password]", PASSWORD).await;
    browser
        .click("form[action='/console/login'] button[type=submit]")
        .await;
    browser
        .wait_for(
            "the projects page",
            "return location.pathname === '/console' && !!document.querySelector('#live tr[data-name=default]');",
        )
        .await;
    assert!(browser.text().await.contains("tenant-admin (whole tenant)"));

    // A profile imported through the API shows on the Profiles page, with its layers.
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}/{AWS}", env!("CARGO_MANIFEST_DIR")))
            .expect("example profile"),
    )
    .expect("example profile is JSON");
    let imported = server
        .call(
            reqwest::Method::POST,
            "/v1/profiles:import",
            Some(ADMIN_KEY),
            Some(&doc),
        )
        .await;
    assert_eq!(imported.status, 201, "{}", imported.text);
    browser
        .click("nav.pages a[href^='/console/profiles']")
        .await;
    browser
        .wait_for(
            "the profile in the list",
            "return location.pathname === '/console/profiles' && !!document.querySelector('#live tr[data-name=aws-standard]');",
        )
        .await;
    browser
        .click("tr[data-name=aws-standard] a[href*='/versions/1.0.0']")
        .await;
    browser
        .wait_for(
            "the version page",
            "return location.pathname === '/console/profiles/aws-standard/versions/1.0.0' && !!document.querySelector('table.layers');",
        )
        .await;
    let text = browser.text().await;
    for part in [
        "Layers",
        "ubuntu-aws",
        "24.04",
        "kubernetes",
        "1.33.4",
        "cni-calico",
        "csi-aws-ebs",
        "pod_cidr",
    ] {
        assert!(
            text.contains(part),
            "{part:?} not on the version page:\n{text}"
        );
    }

    // The projects list follows changes made elsewhere, without a reload.
    browser
        .click("nav.pages a[href^='/console?'], nav.pages a[href='/console']")
        .await;
    browser
        .wait_for(
            "the live connection of the projects page",
            "return location.pathname === '/console' && document.documentElement.getAttribute('data-live-state') === 'connected';",
        )
        .await;
    assert!(!browser.text().await.contains("made-by-api"));
    browser
        .eval("window.fleetplaneSamePage = true; return true;")
        .await;
    let created = server
        .put(
            "/v1/projects/made-by-api",
            &serde_json::json!({"spec": {"displayName": "Made by the API"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    browser
        .wait_for(
            "the new project to appear live",
            "return !!document.querySelector('#live tr[data-name=made-by-api]');",
        )
        .await;
    assert_eq!(
        browser
            .eval("return window.fleetplaneSamePage === true;")
            .await,
        Value::Bool(true),
        "the page was reloaded instead of updated"
    );
    browser
        .wait_for("the display name", &page_has("Made by the API"))
        .await;

    let shot = server.scratch().join("projects.png");
    browser.screenshot(&shot).await;
    let png = std::fs::read(&shot).expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    if let Some(dir) = std::env::var_os("FLEETPLANE_TEST_SCREENSHOTS") {
        std::fs::copy(
            &shot,
            std::path::Path::new(&dir).join("console-projects.png"),
        )
        .expect("copy screenshot");
    }
    browser.quit().await;
}
