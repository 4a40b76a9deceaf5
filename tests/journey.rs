//! The user journey of DESIGN §1, end to end through the CLI against a real server. It starts
//! with the foundation (a project, a user, a key, a role, the audit trail) and grows with every
//! issue until it covers profiles, templates, clusters and rollouts.

mod support;

use serde_json::Value;
use support::{ADMIN_KEY, Server};

#[tokio::test]
async fn journey() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);

    // An operator sets up a project for the shop team.
    admin(&[
        "project",
        "create",
        "shop",
        "--display-name",
        "Shop",
        "--label",
        "team=shop",
    ])
    .ok();

    // A user for the on-call engineer, with a console password and an API key.
    let user = server.cli_with(
        &[
            "user",
            "create",
            "alice",
            "--display-name",
            "Alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        &[
            ("FLEETPLANE_ENDPOINT".to_owned(), server.base_url.clone()),
            ("FLEETPLANE_API_KEY".to_owned(), ADMIN_KEY.to_owned()),
        ],
        Some("a long enough password\n"),
    );
    user.ok();
    let alice_key = admin(&[
        "apikey",
        "create",
        "--user",
        "alice",
        "--name",
        "laptop",
        "--expires-in-days",
        "30",
    ])
    .ok()
    .trim()
    .to_owned();

    // Alice may edit in the shop project only.
    admin(&[
        "rolebinding",
        "create",
        "alice-shop",
        "--user",
        "alice",
        "--role",
        "project-editor",
        "--project",
        "shop",
    ])
    .ok();

    // Alice logs in with her key and sees exactly what she was given.
    let login = server.cli_with(
        &["login"],
        &[("FLEETPLANE_ENDPOINT".to_owned(), server.base_url.clone())],
        Some(&alice_key),
    );
    login.ok();
    let me = server.cli_with(&["whoami", "-o", "json"], &[], None).json();
    assert_eq!(me["user"], "alice");
    assert_eq!(me["grants"][0]["role"], "project-editor");
    assert_eq!(me["grants"][0]["project"], "shop");
    let projects = server
        .cli_with(&["project", "list", "-o", "json"], &[], None)
        .json();
    let names: Vec<&str> = projects["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shop"]);
    let hidden = server.cli_with(&["project", "get", "default"], &[], None);
    assert_eq!(hidden.code, 1);
    assert!(hidden.stderr.contains("NotFound"), "{}", hidden.stderr);

    // Every step is in the audit log, by the admin.
    let audit = admin(&["audit", "list", "--actor", "user:admin", "-o", "json"]).json();
    let entries: Vec<(String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e: &Value| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["resource"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (action, resource) in [
        ("create", "projects/shop"),
        ("create", "users/alice"),
        ("create", "role-bindings/alice-shop"),
    ] {
        assert!(
            entries.iter().any(|(a, r)| a == action && r == resource),
            "no {action} of {resource} in {entries:?}"
        );
    }
    assert!(
        entries
            .iter()
            .any(|(a, r)| a == "create" && r.starts_with("users/alice/api-keys/")),
        "no key creation in {entries:?}"
    );
    let text = admin(&["audit", "list", "-o", "json"]).stdout;
    assert!(
        !text.contains("a long enough password"),
        "the password reached the audit log"
    );
    assert!(!text.contains(&alice_key), "the key reached the audit log");
}
