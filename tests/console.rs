//! The web console in a real headless Chromium (DESIGN §10) against a real server process:
//! sign in through the login form, browse projects and profiles, see the projects list update
//! live over Server-Sent Events, and follow a cluster created through the API to Running on the
//! Clusters pages. Needs `chromium` and `chromedriver` on PATH (skipped
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

/// Signs in as `admin` through the real login form and waits for the projects page.
async fn sign_in(server: &Server, browser: &Browser) {
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
    sign_in(&server, &browser).await;
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

const P: &str = "/v1/projects/default";

fn example(file: &str) -> Value {
    let path = format!("{}/examples/profiles/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `aws-standard` and `observability` 1.0.0, policy `weekly`, template `web` and the instant
/// simulator account `sim0` in project `default` (as in tests/clusters.rs).
async fn cluster_setup(server: &Server) {
    for file in ["aws-standard-1.0.0.json", "observability-1.0.0.json"] {
        let r = server
            .call(
                reqwest::Method::POST,
                &format!("{P}/profiles:import"),
                Some(ADMIN_KEY),
                Some(&example(file)),
            )
            .await;
        assert_eq!(r.status, 201, "import {file}: {}", r.text);
    }
    let policy = serde_json::json!({"spec": {"schedules": [
        {"name": "w", "cron": "0 0 * * 0", "durationHours": 4}]}});
    let r = server
        .put(&format!("{P}/maintenance-policies/weekly"), &policy)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let t = serde_json::json!({"spec": {"cloudType": "aws",
        "profiles": [{"name": "aws-standard", "version": "1.0.0"},
                     {"name": "observability", "version": "1.0.0"}],
        "maintenancePolicy": {"name": "weekly"}}});
    let r = server.put(&format!("{P}/cluster-templates/web"), &t).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let acc = serde_json::json!({"spec": {"provider": "simulator", "simulator": {"timeScale": 0}}});
    let r = server.put(&format!("{P}/cloud-accounts/sim0"), &acc).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn clusters_pages_follow_a_cluster_to_running_live() {
    if !require_tool("chromium") || !require_tool("chromedriver") {
        return;
    }
    let server =
        Server::start_with(ServerOptions::default().env("FLEETPLANE_BOOTSTRAP_PASSWORD", PASSWORD))
            .await;
    cluster_setup(&server).await;
    let browser = Browser::start().await;
    sign_in(&server, &browser).await;

    // The Clusters page of project `default`, reached through the navigation.
    browser.goto(&server.url("/console?project=default")).await;
    browser
        .click("nav.pages a[href^='/console/clusters']")
        .await;
    browser
        .wait_for(
            "the live clusters page",
            "return location.pathname === '/console/clusters' && location.search === '?project=default' && document.documentElement.getAttribute('data-live-state') === 'connected';",
        )
        .await;
    assert!(browser.text().await.contains("No cluster in this project."));
    browser
        .eval("window.fleetplaneSamePage = true; return true;")
        .await;

    // A cluster created through the API appears and reaches Running without a reload.
    let cluster = serde_json::json!({"spec": {"template": {"name": "web"}, "cloudAccount": "sim0",
        "timeZone": "Europe/Berlin",
        "variables": {"aws-standard": {"greeting": "Hello console"},
                      "observability": {"grafana_admin_password": "a-long-s3cret-pass"}},
        "nodePools": [{"name": "cp", "controlPlane": true, "count": 1, "instanceType": "m5.large"},
                      {"name": "workers", "count": 2, "instanceType": "m5.xlarge"}]}});
    let created = server
        .put(&format!("{P}/clusters/console-1"), &cluster)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    browser
        .wait_for(
            "the cluster to show Running in the list",
            "return !!document.querySelector('#live tr[data-name=console-1][data-phase=Running] .badge.phase-running');",
        )
        .await;
    assert_eq!(
        browser
            .eval("return window.fleetplaneSamePage === true;")
            .await,
        Value::Bool(true),
        "the page was reloaded instead of updated"
    );
    let row = browser
        .eval("return document.querySelector('#live tr[data-name=console-1]').innerText;")
        .await;
    let row = row.as_str().unwrap_or_default().to_owned();
    for part in [
        "web",
        "Healthy",
        "aws-standard@1.0.0",
        "observability@1.0.0",
        "Europe/Berlin",
    ] {
        assert!(row.contains(part), "{part:?} not in the row: {row}");
    }
    // The next window opens Sundays 00:00 in the cluster's zone.
    assert!(
        row.contains(" 00:00 CET") || row.contains(" 00:00 CEST"),
        "no next window in Europe/Berlin: {row}"
    );

    // The detail page: profile versions, nodes, conditions, events and the last run.
    browser
        .click("tr[data-name=console-1] a[href^='/console/clusters/console-1']")
        .await;
    browser
        .wait_for(
            "the cluster page with its nodes",
            "return location.pathname === '/console/clusters/console-1' && document.querySelectorAll('table.nodes tbody tr[data-name]').length === 3;",
        )
        .await;
    let text = browser.text().await;
    for part in [
        "Running",
        "Healthy",
        "Profile",
        "aws-standard",
        "observability",
        "m5.xlarge",
        "1.33.4",
        "Conditions",
        "Events",
        "Last run",
    ] {
        assert!(
            text.contains(part),
            "{part:?} not on the cluster page:\n{text}"
        );
    }
    let pools = browser
        .eval("return Array.from(document.querySelectorAll('table.nodes tbody tr[data-name] td:nth-child(2)')).map(function (td) { return td.innerText; }).sort().join(',');")
        .await;
    assert_eq!(pools, Value::from("cp,workers,workers"));
    let got = server.get(&format!("{P}/clusters/console-1")).await;
    let last_run = got.json()["status"]["lastRun"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!last_run.is_empty(), "{}", got.text);
    let link = browser
        .eval("return document.querySelector('#cluster-last-run a').getAttribute('href');")
        .await;
    assert_eq!(
        link,
        Value::from(format!("{P}/runs/{last_run}")),
        "the last run's link"
    );
    assert!(
        browser
            .eval("return document.querySelectorAll('table.events tbody tr').length > 1 && document.querySelectorAll('table.conditions tbody tr[data-name]').length > 0;")
            .await
            == Value::Bool(true),
        "no events or conditions:\n{text}"
    );

    let shot = server.scratch().join("cluster.png");
    browser.screenshot(&shot).await;
    if let Some(dir) = std::env::var_os("FLEETPLANE_TEST_SCREENSHOTS") {
        std::fs::copy(
            &shot,
            std::path::Path::new(&dir).join("console-cluster.png"),
        )
        .expect("copy screenshot");
    }
    browser.quit().await;
}
