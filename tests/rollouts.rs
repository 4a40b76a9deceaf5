//! End-to-end rollouts against a real server with the simulator (DESIGN §1 steps 5–9, §5): a
//! new profile version with a new required variable, the template pointed at it, Pending
//! variables assigned in batch, Upgrade now, every cluster on the new version; pause, resume,
//! rollback and the history. Window-gated rollouts are tested with a manual clock in
//! engine/api/tests (this server runs on the real clock).

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use support::{ADMIN_KEY, Server};

const P: &str = "/v1/projects/default";

fn example(file: &str) -> Value {
    let path = format!("{}/examples/profiles/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

async fn call(server: &Server, method: Method, path: &str, body: Option<Value>) -> support::Answer {
    server
        .call(
            method,
            &format!("{P}{path}"),
            Some(ADMIN_KEY),
            body.as_ref(),
        )
        .await
}

/// Template `web` (aws-standard 1.0.0, policy `weekly`) with clusters dev, stage, prod running.
async fn fleet(server: &Server) {
    let r = call(
        server,
        Method::POST,
        "/profiles:import",
        Some(example("aws-standard-1.0.0.json")),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Windows only on 29 February: this server runs on the real clock, and no window may open
    // while a test waits for one (window-gated rollouts are tested with a manual clock in
    // engine/api/tests).
    let policy =
        json!({"spec": {"schedules": [{"name": "w", "cron": "0 0 29 2 *", "durationHours": 4}]}});
    assert_eq!(
        call(
            server,
            Method::PUT,
            "/maintenance-policies/weekly",
            Some(policy)
        )
        .await
        .status,
        201
    );
    let t = json!({"spec": {"cloudType": "aws",
        "profiles": [{"name": "aws-standard", "version": "1.0.0"}],
        "maintenancePolicy": {"name": "weekly"}}});
    assert_eq!(
        call(server, Method::PUT, "/cluster-templates/web", Some(t))
            .await
            .status,
        201
    );
    let acc = json!({"spec": {"provider": "simulator", "simulator": {"timeScale": 0}}});
    assert_eq!(
        call(server, Method::PUT, "/cloud-accounts/sim0", Some(acc))
            .await
            .status,
        201
    );
    for (name, zone) in [
        ("dev", "Europe/Berlin"),
        ("stage", "America/New_York"),
        ("prod", "Asia/Tokyo"),
    ] {
        let c = json!({"spec": {"template": {"name": "web"}, "cloudAccount": "sim0", "timeZone": zone,
            "labels": {"env": name},
            "variables": {"aws-standard": {"greeting": format!("Hello {name}")}},
            "nodePools": [{"name": "cp", "controlPlane": true, "count": 1, "instanceType": "m5.large"},
                          {"name": "w", "count": 2, "instanceType": "m5.large"}]}});
        let r = call(server, Method::PUT, &format!("/clusters/{name}"), Some(c)).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    until(
        server,
        "every cluster Running",
        |s| {
            let list = s;
            list["items"].as_array().is_some_and(|i| {
                i.len() == 3 && i.iter().all(|c| c["status"]["phase"] == "Running")
            })
        },
        "/clusters",
    )
    .await;
}

/// Polls `path` until `done` holds (a minute at most).
async fn until(server: &Server, what: &str, done: impl Fn(&Value) -> bool, path: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let r = call(server, Method::GET, path, None).await;
        last = r.json();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never {what}; last: {last:#}");
}

/// Version 1.1.0 of aws-standard: a copy of 1.0.0 with a new required variable `team` used in
/// the hello layer.
async fn version_1_1_0(server: &Server) {
    let r = call(
        server,
        Method::POST,
        "/profiles/aws-standard/versions",
        Some(json!({"version": "1.1.0", "from": "1.0.0"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let path = "/profiles/aws-standard/versions/1.1.0";
    let mut v = call(server, Method::GET, path, None).await.json();
    v["spec"]["variables"].as_array_mut().unwrap().push(json!({
        "name": "team", "displayName": "Team", "format": "string", "required": true}));
    let layers = v["spec"]["layers"].as_array_mut().unwrap();
    let hello = layers
        .iter_mut()
        .find(|l| l["layer"] == "addon")
        .expect("an add-on layer");
    let values = hello["values"].as_str().unwrap().to_owned();
    hello["values"] = json!(format!("{values}team: \"{{{{ var.team }}}}\"\n"));
    let r = call(server, Method::PUT, path, Some(v)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

fn state(t: &Value) -> &str {
    t["status"]["state"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_journey_rolls_a_new_version_out_with_upgrade_now() {
    let server = Server::start().await;
    fleet(&server).await;
    let t = call(&server, Method::GET, "/cluster-templates/web", None)
        .await
        .json();
    assert_eq!(state(&t), "Applied", "{t:#}");
    // Nothing to upgrade yet.
    call(
        &server,
        Method::POST,
        "/cluster-templates/web:upgrade",
        None,
    )
    .await
    .assert_problem(409, "NothingToUpgrade");

    // Step 5–6: version 1.1.0 with a new required variable; the template points at it.
    version_1_1_0(&server).await;
    let mut t = call(&server, Method::GET, "/cluster-templates/web", None)
        .await
        .json();
    t["spec"]["profiles"][0]["version"] = json!("1.1.0");
    let r = call(&server, Method::PUT, "/cluster-templates/web", Some(t)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let t = r.json();
    assert_eq!(t["status"]["revision"], 2, "{t:#}");
    assert_eq!(t["status"]["clusters"]["pendingVariables"], 3, "{t:#}");
    assert_ne!(state(&t), "Applied", "{t:#}");
    // Running clusters are untouched: still 1.0.0.
    let dev = call(&server, Method::GET, "/clusters/dev", None)
        .await
        .json();
    assert_eq!(dev["status"]["profiles"][0]["version"], "1.0.0", "{dev:#}");

    // A rollout is scheduled; clusters with Pending variables do not move, not even on
    // Upgrade now.
    let r = call(
        &server,
        Method::POST,
        "/cluster-templates/web:upgrade",
        None,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let run = r.json()["run"].as_str().unwrap().to_owned();
    until(
        &server,
        "the first upgrade ends",
        |r| {
            matches!(
                r["status"].as_str(),
                Some("Succeeded" | "Failed" | "Cancelled")
            )
        },
        &format!("/runs/{run}"),
    )
    .await;
    let dev = call(&server, Method::GET, "/clusters/dev", None)
        .await
        .json();
    assert_eq!(
        dev["status"]["revision"], 1,
        "pending variables keep it: {dev:#}"
    );

    // Step 7: assign in batch.
    let r = call(
        &server,
        Method::PATCH,
        "/cluster-templates/web/variables",
        Some(json!({
        "assignments": [{"profile": "aws-standard", "variable": "team", "value": "shop"}]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Step 8: Upgrade now.
    let r = call(
        &server,
        Method::POST,
        "/cluster-templates/web:upgrade",
        None,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let t = until(
        &server,
        "Applied",
        |t| state(t) == "Applied",
        "/cluster-templates/web",
    )
    .await;
    assert_eq!(t["status"]["clusters"]["upToDate"], 3, "{t:#}");

    // Step 9: every cluster's profile view shows 1.1.0, with the new value rendered.
    for name in ["dev", "stage", "prod"] {
        let c = call(&server, Method::GET, &format!("/clusters/{name}"), None)
            .await
            .json();
        assert_eq!(c["status"]["profiles"][0]["version"], "1.1.0", "{c:#}");
        assert_eq!(c["status"]["revision"], 2, "{c:#}");
        assert_eq!(c["status"]["phase"], "Running", "{c:#}");
    }
    // The history lists the rollouts, newest first; each has a per-cluster timeline.
    let h = call(
        &server,
        Method::GET,
        "/cluster-templates/web/rollouts",
        None,
    )
    .await
    .json();
    let items = h["items"].as_array().unwrap();
    assert!(items.len() >= 2, "{h:#}");
    let last = &items[0];
    assert_eq!(last["revision"], 2, "{h:#}");
    assert_eq!(last["upgradeNow"], true, "{h:#}");
    let timeline = call(
        &server,
        Method::GET,
        &format!(
            "/cluster-templates/web/rollouts/{}/clusters",
            last["run"].as_str().unwrap()
        ),
        None,
    )
    .await
    .json();
    assert_eq!(
        timeline["items"].as_array().unwrap().len(),
        3,
        "{timeline:#}"
    );
    call(
        &server,
        Method::POST,
        "/cluster-templates/web:upgrade",
        None,
    )
    .await
    .assert_problem(409, "NothingToUpgrade");

    // Rollback: revision 3 equals revision 1 and goes to the clusters that moved, at once.
    let r = call(
        &server,
        Method::POST,
        "/cluster-templates/web:rollback",
        None,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let t = until(
        &server,
        "rolled back",
        |t| t["status"]["revision"] == 3 && state(t) == "Applied",
        "/cluster-templates/web",
    )
    .await;
    assert_eq!(t["spec"]["profiles"][0]["version"], "1.0.0", "{t:#}");
    for name in ["dev", "stage", "prod"] {
        let c = call(&server, Method::GET, &format!("/clusters/{name}"), None)
            .await
            .json();
        assert_eq!(c["status"]["profiles"][0]["version"], "1.0.0", "{c:#}");
        assert_eq!(c["status"]["revision"], 3, "{c:#}");
    }
}

#[tokio::test]
async fn upgrade_now_of_some_clusters_leaves_the_rest_for_their_windows() {
    let server = Server::start().await;
    fleet(&server).await;
    version_1_1_0(&server).await;
    let mut t = call(&server, Method::GET, "/cluster-templates/web", None)
        .await
        .json();
    t["spec"]["rollout"] = json!({"maxConcurrency": "50%"});
    t["spec"]["profiles"][0]["version"] = json!("1.1.0");
    t["spec"]["profiles"][0]["variables"] =
        json!([{"name": "team", "value": "shop", "assignStrategy": "all"}]);
    assert_eq!(
        call(&server, Method::PUT, "/cluster-templates/web", Some(t))
            .await
            .status,
        200
    );
    let t = call(&server, Method::GET, "/cluster-templates/web", None)
        .await
        .json();
    assert_eq!(
        t["status"]["clusters"]["pendingVariables"], 0,
        "the template sets it: {t:#}"
    );
    // A window-gated rollout is waiting.
    assert_eq!(state(&t), "Pending", "{t:#}");
    let scheduled = t["status"]["rollout"]["run"].as_str().unwrap().to_owned();

    // A bad cluster name is a field error.
    call(
        &server,
        Method::POST,
        "/cluster-templates/web:upgrade",
        Some(json!({"clusters": ["nope"]})),
    )
    .await
    .assert_problem(400, "ValidationFailed");
    let r = call(
        &server,
        Method::POST,
        "/cluster-templates/web:upgrade",
        Some(json!({"clusters": ["dev"]})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    until(
        &server,
        "dev on revision 2",
        |c| c["status"]["revision"] == 2,
        "/clusters/dev",
    )
    .await;
    let t = until(
        &server,
        "PartiallyApplied",
        |t| state(t) == "PartiallyApplied",
        "/cluster-templates/web",
    )
    .await;
    assert_eq!(t["status"]["clusters"]["upToDate"], 1, "{t:#}");
    for name in ["stage", "prod"] {
        let c = call(&server, Method::GET, &format!("/clusters/{name}"), None)
            .await
            .json();
        assert_eq!(c["status"]["revision"], 1, "{c:#}");
    }
    // The window-gated run was skipped for the Upgrade now, and a new one waits for the rest.
    let r = call(&server, Method::GET, &format!("/runs/{scheduled}"), None)
        .await
        .json();
    assert_eq!(r["status"], "Cancelled", "{r:#}");
    let t = until(
        &server,
        "a rollout waits for the windows",
        |t| {
            t["status"]["rollout"]["status"] == "Running"
                || t["status"]["rollout"]["status"] == "Waiting"
        },
        "/cluster-templates/web",
    )
    .await;
    assert_ne!(t["status"]["rollout"]["run"], scheduled, "{t:#}");

    // Pause and resume the waiting rollout through the template.
    let r = call(
        &server,
        Method::POST,
        "/cluster-templates/web:pause",
        Some(json!({"reason": "freeze"})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    until(
        &server,
        "Paused",
        |t| state(t) == "Paused",
        "/cluster-templates/web",
    )
    .await;
    let r = call(&server, Method::POST, "/cluster-templates/web:resume", None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    until(
        &server,
        "not paused",
        |t| state(t) != "Paused",
        "/cluster-templates/web",
    )
    .await;
    // Upgrade now of all: the waiting run is told to stop waiting.
    let r = call(
        &server,
        Method::POST,
        "/cluster-templates/web:upgrade",
        None,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json()["scheduled"], "signalled", "{}", r.text);
    until(
        &server,
        "Applied",
        |t| state(t) == "Applied",
        "/cluster-templates/web",
    )
    .await;
}

#[tokio::test]
async fn a_failed_cluster_pauses_the_rollout_which_says_why_and_resume_retries_it() {
    let server = Server::start().await;
    fleet(&server).await;
    // A fourth cluster whose next update fails (a simulator fault, armed at creation).
    let c = json!({"spec": {"template": {"name": "web"}, "cloudAccount": "sim0", "timeZone": "UTC",
        "labels": {"simulator.fleetplane.io/fail-next-update": "true"},
        "variables": {"aws-standard": {"greeting": "Hello edge"}},
        "nodePools": [{"name": "cp", "controlPlane": true, "count": 1, "instanceType": "m5.large"}]}});
    let r = call(&server, Method::PUT, "/clusters/edge", Some(c)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    until(
        &server,
        "edge Running",
        |c| c["status"]["phase"] == "Running",
        "/clusters/edge",
    )
    .await;

    version_1_1_0(&server).await;
    let mut t = call(&server, Method::GET, "/cluster-templates/web", None)
        .await
        .json();
    t["spec"]["profiles"][0]["version"] = json!("1.1.0");
    t["spec"]["profiles"][0]["variables"] =
        json!([{"name": "team", "value": "shop", "assignStrategy": "all"}]);
    assert_eq!(
        call(&server, Method::PUT, "/cluster-templates/web", Some(t))
            .await
            .status,
        200
    );
    let r = call(
        &server,
        Method::POST,
        "/cluster-templates/web:upgrade",
        None,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let t = until(
        &server,
        "Paused",
        |t| state(t) == "Paused",
        "/cluster-templates/web",
    )
    .await;
    let paused = &t["status"]["rollout"]["paused"];
    let failed = paused["failed"]
        .as_array()
        .unwrap_or_else(|| panic!("{t:#}"));
    assert_eq!(failed.len(), 1, "{t:#}");
    assert_eq!(failed[0]["cluster"], "default/edge", "{t:#}");
    assert!(!failed[0]["error"].as_str().unwrap().is_empty(), "{t:#}");
    assert_eq!(
        paused["onResume"], "retries 1 failed cluster, then continues the rollout",
        "{t:#}"
    );
    let p = call(&server, Method::GET, "/clusters/edge", None)
        .await
        .json();
    assert_eq!(p["status"]["phase"], "Failed", "{p:#}");

    // Resume retries it (the fault fired once) and the rollout completes.
    let r = call(
        &server,
        Method::POST,
        "/cluster-templates/web:resume",
        Some(json!({"reason": "fixed"})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    until(
        &server,
        "Applied",
        |t| state(t) == "Applied",
        "/cluster-templates/web",
    )
    .await;
    let p = call(&server, Method::GET, "/clusters/edge", None)
        .await
        .json();
    assert_eq!(p["status"]["revision"], 2, "{p:#}");
}
