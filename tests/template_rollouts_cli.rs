//! End-to-end tests of template rollouts against a real server with the instant simulator:
//! the plan preview API (DESIGN §5.4) before and after new revisions — target, wave, expected
//! start, pending variables, layer changes with their values diff, machines replaced for a
//! Kubernetes version change and not for an add-on values change, a render failure in its row —
//! and the CLI: `template plan`, `upgrade-now --cluster … --wait` (exit 0 with per-wave
//! progress), `pause` and `status` (why, what resume does), `run list --paused`,
//! `upgrade-now --wait` ending with exit 1 on a paused rollout, `resume`, `rollouts` and
//! `rollback`.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use support::{ADMIN_KEY, CliRun, Server};

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

/// As tests/rollouts.rs: template `web` (aws-standard 1.0.0, policy `weekly`, a `canary` wave
/// taking `env=dev`) with clusters dev, stage, prod running on the instant simulator.
async fn fleet(server: &Server) {
    let r = call(
        server,
        Method::POST,
        "/profiles:import",
        Some(example("aws-standard-1.0.0.json")),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Frozen for centuries: the tests run on the real clock, and a Sunday-midnight window is
    // open somewhere on Earth for a good part of every Saturday and Sunday (UTC); only Upgrade
    // now moves clusters here.
    let policy = json!({"spec": {
        "schedules": [{"name": "w", "cron": "0 0 * * 0", "durationHours": 4}],
        "exclusions": [{"name": "frozen", "start": "2000-01-01T00:00:00Z",
                        "end": "2999-01-01T00:00:00Z"}]}});
    let r = call(
        server,
        Method::PUT,
        "/maintenance-policies/weekly",
        Some(policy),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let t = json!({"spec": {"cloudType": "aws",
        "profiles": [{"name": "aws-standard", "version": "1.0.0"}],
        "maintenancePolicy": {"name": "weekly"},
        "rollout": {"waves": [{"name": "canary", "maxConcurrency": 1,
                                "selector": {"matchLabels": {"env": "dev"}}}]}}});
    let r = call(server, Method::PUT, "/cluster-templates/web", Some(t)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let acc = json!({"spec": {"provider": "simulator", "simulator": {"timeScale": 0}}});
    let r = call(server, Method::PUT, "/cloud-accounts/sim0", Some(acc)).await;
    assert_eq!(r.status, 201, "{}", r.text);
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
    until(server, "every cluster Running", "/clusters", |l| {
        l["items"]
            .as_array()
            .is_some_and(|i| i.len() == 3 && i.iter().all(|c| c["status"]["phase"] == "Running"))
    })
    .await;
}

/// Polls `path` until `done` holds (a minute at most).
async fn until(server: &Server, what: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        last = call(server, Method::GET, path, None).await.json();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never {what}; last: {last:#}");
}

/// Version 1.1.0: a new add-on value; the template links it with `team` set fleet-wide, so
/// no variable is Pending.
async fn revision_2(server: &Server) {
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
    let hello = v["spec"]["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| l["layer"] == "addon")
        .unwrap();
    let values = hello["values"].as_str().unwrap().to_owned();
    hello["values"] = json!(format!("{values}team: \"{{{{ var.team }}}}\"\n"));
    let r = call(server, Method::PUT, path, Some(v)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut t = call(server, Method::GET, "/cluster-templates/web", None)
        .await
        .json();
    t["spec"]["profiles"][0]["version"] = json!("1.1.0");
    t["spec"]["profiles"][0]["variables"] =
        json!([{"name": "team", "value": "shop", "assignStrategy": "all"}]);
    let r = call(server, Method::PUT, "/cluster-templates/web", Some(t)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Runs the CLI as the admin in project `default`.
fn cli(server: &Server, args: &[&str]) -> CliRun {
    let mut all = vec!["-p", "default"];
    all.extend_from_slice(args);
    server.cli(Some(ADMIN_KEY), &all)
}

#[track_caller]
fn assert_has(text: &str, part: &str) {
    assert!(text.contains(part), "{part:?} is not in:\n{text}");
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[tokio::test]
async fn a_rollout_is_planned_upgraded_paused_explained_resumed_and_rolled_back() {
    let server = Server::start().await;
    fleet(&server).await;
    revision_2(&server).await;

    // plan: one row per cluster, the canary wave first in the strategy, in place.
    let out = cli(&server, &["template", "plan", "web"]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(
        words(lines[0]),
        [
            "CLUSTER", "CURRENT", "TARGET", "WAVE", "START", "PENDING", "REPAVE"
        ]
    );
    assert_eq!(words(lines[1])[..4], ["dev", "1", "2", "canary"]);
    assert_eq!(words(lines[2])[..4], ["prod", "1", "2", "rest"]);
    assert_eq!(words(lines[3])[..4], ["stage", "1", "2", "rest"]);
    assert!(
        lines[1..].iter().all(|l| l.ends_with("no")),
        "{}",
        out.stdout
    );
    let doc = cli(&server, &["template", "plan", "web", "-o", "json"]).json();
    assert_eq!(doc["revision"], 2);
    assert_has(
        doc["items"][0]["changes"][0]["valuesDiff"]
            .as_str()
            .unwrap(),
        "+team: \"shop\"",
    );

    // upgrade-now of dev, waiting: per-wave progress, exit 0 once dev runs revision 2.
    let up = cli(
        &server,
        &[
            "template",
            "upgrade-now",
            "web",
            "--cluster",
            "dev",
            "--wait",
            "--timeout",
            "60",
        ],
    );
    up.ok();
    assert_has(&up.stderr, "Upgrade now of revision 2 for 1 cluster(s)");
    assert_has(
        &up.stderr,
        "canary [##########] 0 pending, 0 in progress, 1 applied, 0 failed",
    );
    assert_has(&up.stderr, "the clusters run revision 2");
    let dev = call(&server, Method::GET, "/clusters/dev", None)
        .await
        .json();
    assert_eq!(dev["status"]["revision"], 2, "{dev:#}");
    let prod = call(&server, Method::GET, "/clusters/prod", None)
        .await
        .json();
    assert_eq!(prod["status"]["revision"], 1, "{prod:#}");

    // The rest waits for its windows; pause it and ask why.
    until(
        &server,
        "a rollout waits for the windows",
        "/cluster-templates/web",
        |t| {
            matches!(
                t["status"]["rollout"]["status"].as_str(),
                Some("Running" | "Waiting")
            )
        },
    )
    .await;
    cli(&server, &["template", "pause", "web", "--reason", "freeze"]).ok();
    until(&server, "Paused", "/cluster-templates/web", |t| {
        t["status"]["state"] == "Paused"
    })
    .await;
    let status = cli(&server, &["template", "status", "web"]);
    let text = status.ok();
    assert_has(text, "State:             Paused\n");
    assert_has(text, "Revision:          2\n");
    assert_has(text, "Clusters:          1/3 up to date\n");
    assert_has(text, "Pending variables: none\n");
    assert_has(text, "freeze");
    assert_has(text, "On resume:");
    let doc = cli(&server, &["template", "status", "web", "-o", "json"]).json();
    assert_eq!(doc["state"], "Paused", "{doc:#}");
    assert_eq!(doc["failed"], json!([]), "{doc:#}");

    // run list --paused: the template, the reason and the failed count.
    let runs = cli(&server, &["run", "list", "--paused", "-o", "json"]).json();
    let items = runs["items"].as_array().unwrap();
    let roots: Vec<&Value> = items.iter().filter(|i| i["parent"].is_null()).collect();
    assert_eq!(roots.len(), 1, "{runs:#}");
    let root = roots[0];
    assert_eq!(root["template"], "web", "{runs:#}");
    assert_eq!(root["paused"]["reason"], "freeze", "{runs:#}");
    assert_eq!(root["counts"]["failed"], 0, "{runs:#}");
    // The paused children (one per cluster waiting for its window) name the same template.
    assert!(items.iter().all(|i| i["template"] == "web"), "{runs:#}");
    let table = cli(&server, &["run", "list", "--paused"]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(
        words(lines[0]),
        [
            "ID", "PROJECT", "WORKFLOW", "TEMPLATE", "REASON", "FAILED", "PAUSED", "SINCE"
        ]
    );
    let id = root["id"].as_str().unwrap();
    let line = lines.iter().find(|l| l.starts_with(id)).unwrap();
    assert_eq!(
        words(line)[1..6],
        ["default", "rollout@1.0.0", "web", "freeze", "0"]
    );

    // Upgrade now of all while paused: the rollout stays paused, so waiting exits 1.
    let stopped = cli(
        &server,
        &[
            "template",
            "upgrade-now",
            "web",
            "--wait",
            "--timeout",
            "60",
        ],
    );
    assert_eq!(stopped.code, 1, "{stopped:?}");
    assert_has(&stopped.stderr, "is Paused");

    // resume: the signalled Upgrade now goes on; every cluster reaches revision 2.
    let resumed = cli(&server, &["template", "resume", "web"]);
    resumed.ok();
    assert_has(&resumed.stderr, "resume sent to its rollout");
    until(&server, "Applied", "/cluster-templates/web", |t| {
        t["status"]["state"] == "Applied"
    })
    .await;
    cli(&server, &["template", "status", "web"]);
    let again = cli(&server, &["template", "upgrade-now", "web"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert_has(&again.stderr, "NothingToUpgrade");

    // rollouts: newest first, with the Upgrade now of dev among them.
    let h = cli(&server, &["template", "rollouts", "web"]);
    let lines: Vec<&str> = h.ok().lines().collect();
    assert_eq!(
        words(lines[0]),
        [
            "RUN",
            "REVISION",
            "REASON",
            "UPGRADE-NOW",
            "STATUS",
            "STARTED",
            "ENDED",
            "COUNTS"
        ]
    );
    assert!(
        lines[1..].iter().any(
            |l| words(l)[1..5] == ["2", "upgrade-now", "yes", "Succeeded"]
                && l.contains("1/3 applied, 2 skipped")
        ),
        "{}",
        h.stdout
    );

    // rollback: revision 3 (= revision 1) to every cluster, at once.
    let rb = cli(
        &server,
        &["template", "rollback", "web", "--reason", "bad team"],
    );
    rb.ok();
    assert_has(&rb.stderr, "rolled back to the previous revision");
    let t = until(&server, "rolled back", "/cluster-templates/web", |t| {
        t["status"]["revision"] == 3 && t["status"]["state"] == "Applied"
    })
    .await;
    assert_eq!(t["spec"]["profiles"][0]["version"], "1.0.0", "{t:#}");
    let status = cli(&server, &["template", "status", "web"]);
    assert_has(status.ok(), "Clusters:          3/3 up to date\n");
}

/// A new version of aws-standard copied from 1.0.0, changed by `edit`.
async fn new_version(server: &Server, version: &str, edit: impl FnOnce(&mut Value)) {
    let r = call(
        server,
        Method::POST,
        "/profiles/aws-standard/versions",
        Some(json!({"version": version, "from": "1.0.0"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let path = format!("/profiles/aws-standard/versions/{version}");
    let mut v = call(server, Method::GET, &path, None).await.json();
    edit(&mut v);
    let r = call(server, Method::PUT, &path, Some(v)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

fn layer<'a>(v: &'a mut Value, kind: &str) -> &'a mut Value {
    v["spec"]["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| l["layer"] == kind)
        .unwrap()
}

async fn link(server: &Server, version: &str) -> Value {
    let mut t = call(server, Method::GET, "/cluster-templates/web", None)
        .await
        .json();
    t["spec"]["profiles"][0]["version"] = json!(version);
    let r = call(server, Method::PUT, "/cluster-templates/web", Some(t)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

/// The plan's rows by cluster.
async fn plan(server: &Server) -> (Value, Vec<Value>) {
    let r = call(server, Method::GET, "/cluster-templates/web/plan", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = r.json();
    let items = doc["items"].as_array().unwrap().clone();
    (doc, items)
}

fn row<'a>(items: &'a [Value], cluster: &str) -> &'a Value {
    items.iter().find(|i| i["cluster"] == cluster).unwrap()
}

#[tokio::test]
async fn the_plan_previews_each_revision_for_each_cluster() {
    let server = Server::start().await;
    fleet(&server).await;

    // Before a new revision: everything Applied, nothing changes.
    let (doc, items) = plan(&server).await;
    assert_eq!(doc["revision"], 1, "{doc:#}");
    let names: Vec<&str> = items
        .iter()
        .map(|i| i["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dev", "prod", "stage"]);
    for i in &items {
        assert_eq!(i["state"], "Applied", "{i:#}");
        assert_eq!(i["currentRevision"], 1, "{i:#}");
        assert_eq!(i["targetRevision"], 1, "{i:#}");
        assert_eq!(i["changes"], json!([]), "{i:#}");
        assert_eq!(i["replaceMachines"], false, "{i:#}");
        assert!(i["expectedStart"].is_null(), "{i:#}");
    }
    assert_eq!(row(&items, "dev")["wave"], "canary");
    assert_eq!(row(&items, "prod")["wave"], "rest");

    // 1.0.1 changes an add-on's values only: in place.
    new_version(&server, "1.0.1", |v| {
        let hello = layer(v, "addon");
        let values = hello["values"]
            .as_str()
            .unwrap()
            .replace("port: 8080", "port: 9090");
        hello["values"] = json!(values);
    })
    .await;
    let t = link(&server, "1.0.1").await;
    assert_eq!(t["status"]["revision"], 2, "{t:#}");
    let (doc, items) = plan(&server).await;
    assert_eq!(doc["revision"], 2, "{doc:#}");
    for i in &items {
        assert_eq!(i["currentRevision"], 1, "{i:#}");
        assert_eq!(i["targetRevision"], 2, "{i:#}");
        assert_eq!(i["pendingVariables"], json!([]), "{i:#}");
        assert_eq!(i["replaceMachines"], false, "{i:#}");
        assert_eq!(i["state"], "Pending", "{i:#}");
        let changes = i["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 1, "{i:#}");
        let c = &changes[0];
        assert_eq!(c["layer"], "addon", "{c:#}");
        assert_eq!(c["pack"], "hello-universe", "{c:#}");
        assert_eq!(c["fromVersion"], "1.2.0", "{c:#}");
        assert_eq!(c["toVersion"], "1.2.0", "{c:#}");
        let diff = c["valuesDiff"].as_str().unwrap();
        assert!(diff.contains("-    port: 8080\n"), "{diff}");
        assert!(diff.contains("+    port: 9090\n"), "{diff}");
        // The expected start is the cluster's next window in its own zone: after the freeze.
        assert_eq!(i["windowOpen"], false, "{i:#}");
        assert_eq!(i["reason"], "waiting for window", "{i:#}");
        assert!(
            i["expectedStart"]
                .as_str()
                .unwrap()
                .starts_with("2999-01-0"),
            "{i:#}"
        );
        let c = call(
            &server,
            Method::GET,
            &format!("/clusters/{}", i["cluster"].as_str().unwrap()),
            None,
        )
        .await
        .json();
        assert_eq!(
            i["expectedStart"], c["status"]["nextWindow"]["start"],
            "{i:#} {c:#}"
        );
    }

    // 1.1.0: Kubernetes 1.34.0 and a new required variable `team`: Pending variables, the
    // target does not render yet (reported in the row), and machines are replaced.
    new_version(&server, "1.1.0", |v| {
        v["spec"]["variables"].as_array_mut().unwrap().push(json!({
            "name": "team", "displayName": "Team", "format": "string", "required": true}));
        let hello = layer(v, "addon");
        let values = hello["values"].as_str().unwrap().to_owned();
        hello["values"] = json!(format!("{values}team: \"{{{{ var.team }}}}\"\n"));
        layer(v, "k8s")["version"] = json!("1.34.0");
    })
    .await;
    let t = link(&server, "1.1.0").await;
    assert_eq!(t["status"]["revision"], 3, "{t:#}");
    let (_, items) = plan(&server).await;
    for i in &items {
        assert_eq!(i["targetRevision"], 3, "{i:#}");
        assert_eq!(i["pendingVariables"], json!(["aws-standard.team"]), "{i:#}");
        assert_eq!(i["reason"], "pending variables", "{i:#}");
        assert_eq!(i["replaceMachines"], true, "{i:#}");
        assert_eq!(i["error"]["code"], "ValidationFailed", "{i:#}");
        let k8s = i["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["layer"] == "k8s")
            .unwrap_or_else(|| panic!("no k8s change: {i:#}"));
        assert_eq!(k8s["fromVersion"], "1.33.4");
        assert_eq!(k8s["toVersion"], "1.34.0");
    }

    // Assigned: the target renders; the k8s values diff shows the new version.
    let r = call(
        &server,
        Method::PATCH,
        "/cluster-templates/web/variables",
        Some(json!({"assignments": [{"profile": "aws-standard", "variable": "team", "value": "shop"}]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (_, items) = plan(&server).await;
    for i in &items {
        assert_eq!(i["pendingVariables"], json!([]), "{i:#}");
        assert!(i.get("error").is_none(), "{i:#}");
        assert_eq!(i["replaceMachines"], true, "{i:#}");
        let k8s = i["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["layer"] == "k8s")
            .unwrap();
        let diff = k8s["valuesDiff"].as_str().unwrap();
        assert!(diff.contains("+  kubernetesVersion: v1.34.0"), "{diff}");
        let addon = i["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["layer"] == "addon")
            .unwrap();
        assert!(
            addon["valuesDiff"]
                .as_str()
                .unwrap()
                .contains("+team: \"shop\""),
            "{addon:#}"
        );
    }

    // Upgrade now of dev: it reaches the target; the plan says so.
    let r = call(
        &server,
        Method::POST,
        "/cluster-templates/web:upgrade",
        Some(json!({"clusters": ["dev"]})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    for _ in 0..600 {
        let (_, items) = plan(&server).await;
        let dev = row(&items, "dev");
        if dev["state"] == "Applied" {
            assert_eq!(dev["currentRevision"], 3, "{dev:#}");
            assert_eq!(dev["changes"], json!([]), "{dev:#}");
            assert_eq!(row(&items, "prod")["currentRevision"], 1);
            // Paging: one cluster per page, in name order.
            let r = call(
                &server,
                Method::GET,
                "/cluster-templates/web/plan?limit=1",
                None,
            )
            .await
            .json();
            assert_eq!(r["items"][0]["cluster"], "dev", "{r:#}");
            assert_eq!(r["continue"], "dev", "{r:#}");
            let r = call(
                &server,
                Method::GET,
                "/cluster-templates/web/plan?limit=2&continue=dev",
                None,
            )
            .await
            .json();
            let names: Vec<&str> = r["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["cluster"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["prod", "stage"], "{r:#}");
            call(&server, Method::GET, "/cluster-templates/nope/plan", None)
                .await
                .assert_problem(404, "NotFound");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, items) = plan(&server).await;
    let h = call(
        &server,
        Method::GET,
        "/cluster-templates/web/rollouts",
        None,
    )
    .await
    .json();
    let run = h["items"][0]["run"].as_str().unwrap_or_default().to_owned();
    let detail = call(&server, Method::GET, &format!("/runs/{run}"), None)
        .await
        .json();
    panic!(
        "dev never reached revision 3: {:#}\nrun: {:#}\nhistory: {h:#}",
        detail["error"],
        row(&items, "dev")
    );
}
