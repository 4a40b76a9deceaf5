//! End-to-end tests of `fleetplane cluster …` against a real server process with the real
//! simulator: create `--wait` to Running, list/get/events, set-vars `--wait`, delete `--wait`,
//! attach/detach of a standalone cluster, a failed deploy ending `--wait` with exit 1 and the
//! `Ready` message, usage (exit 2) and validation (exit 1) errors, and `apply -f
//! examples/fleet/` twice.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use support::{ADMIN_KEY, CliRun, Server};

const P: &str = "/v1/projects/default";

fn example(file: &str) -> Value {
    let path = format!("{}/examples/profiles/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// As tests/clusters.rs: `aws-standard` 1.0.0 and `observability` 1.0.0 in project `default`,
/// policy `weekly`, template `web` linking both, and cloud account `sim0` (instant simulator).
async fn setup(server: &Server) {
    for file in ["aws-standard-1.0.0.json", "observability-1.0.0.json"] {
        let r = server
            .call(
                Method::POST,
                &format!("{P}/profiles:import"),
                Some(ADMIN_KEY),
                Some(&example(file)),
            )
            .await;
        assert_eq!(r.status, 201, "import {file}: {}", r.text);
    }
    let policy = json!({"spec": {"schedules": [
        {"name": "w", "cron": "0 0 * * 0", "durationHours": 4}]}});
    let r = server
        .put(&format!("{P}/maintenance-policies/weekly"), &policy)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let t = json!({"spec": {"cloudType": "aws",
        "profiles": [{"name": "aws-standard", "version": "1.0.0"},
                     {"name": "observability", "version": "1.0.0"}],
        "maintenancePolicy": {"name": "weekly"}}});
    let r = server.put(&format!("{P}/cluster-templates/web"), &t).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let acc = json!({"spec": {"provider": "simulator", "simulator": {"timeScale": 0}}});
    let r = server.put(&format!("{P}/cloud-accounts/sim0"), &acc).await;
    assert_eq!(r.status, 201, "{}", r.text);
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

const CP: &str = "name=cp,count=1,type=m5.large,control-plane";
const WORKERS: &str = "name=workers,count=2,type=m5.xlarge";
const PASSWORD: &str = "observability.grafana_admin_password=a-long-s3cret-pass";

/// The reasons of a cluster's events, oldest first, through the CLI.
fn reasons(server: &Server, name: &str) -> Vec<String> {
    let events = cli(server, &["cluster", "events", name, "-o", "json"]).json();
    let mut r: Vec<String> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect();
    r.reverse();
    r
}

#[tokio::test]
async fn a_template_cluster_is_created_inspected_changed_and_deleted_with_wait() {
    let server = Server::start().await;
    setup(&server).await;

    let created = cli(
        &server,
        &[
            "cluster",
            "create",
            "dev",
            "--template",
            "web",
            "--var",
            "aws-standard.greeting=Hello dev",
            "--var",
            PASSWORD,
            "--time-zone",
            "Europe/Berlin",
            "--pool",
            CP,
            "--pool",
            WORKERS,
            "--label",
            "ring=canary",
            "--cloud-account",
            "sim0",
            "--wait",
        ],
    );
    let out = created.ok();
    assert_has(out, "dev    web        Running   Healthy   1");
    assert_has(&created.stderr, "created; deploy run");
    assert_has(&created.stderr, "RunSucceeded: deploy run succeeded");
    assert_has(
        &created.stderr,
        "cluster \"dev\" in project \"default\" is Running",
    );

    // list and get, as tables and as the server's objects.
    let list = cli(&server, &["cluster", "list"]);
    let lines: Vec<&str> = list.ok().lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "NAME", "TEMPLATE", "PHASE", "HEALTH", "REVISION", "PROFILES", "NEXT", "WINDOW"
        ]
    );
    assert_eq!(
        lines[1].split_whitespace().take(7).collect::<Vec<_>>(),
        [
            "dev",
            "web",
            "Running",
            "Healthy",
            "1",
            "aws-standard@1.0.0,",
            "observability@1.0.0"
        ]
    );
    let items = cli(&server, &["cluster", "ls", "-o", "json"]).json();
    assert_eq!(items["items"][0]["metadata"]["name"], "dev");
    let summary = cli(&server, &["cluster", "get", "dev"]);
    for part in [
        "Template:      web, revision 1\n",
        "Phase:         Running\n",
        "Time zone:     Europe/Berlin\n",
        "Labels:        ring=canary\n",
        "Cloud account: sim0\n",
        "POOL      CONTROL PLANE   COUNT   INSTANCE TYPE\n",
        "NODE",
        "CONDITION",
        "Ready",
        "********",
    ] {
        assert_has(summary.ok(), part);
    }
    assert!(
        !summary.stdout.contains("a-long-s3cret-pass"),
        "{}",
        summary.stdout
    );
    let yaml = cli(&server, &["cluster", "get", "dev", "-o", "yaml"]);
    assert_has(yaml.ok(), "name: web");
    let full = cli(&server, &["cluster", "get", "dev", "-o", "json"]).json();
    assert_eq!(full["status"]["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(full["spec"]["labels"]["ring"], "canary");

    // set-vars --wait applies the change through an update run.
    let set = cli(
        &server,
        &[
            "cluster",
            "set-vars",
            "dev",
            "--var",
            "aws-standard.greeting=Hallo",
            "--var",
            "aws-standard.replicas=3",
            "--wait",
        ],
    );
    set.ok();
    assert_has(&set.stderr, "RunSucceeded: update run succeeded");
    let c = cli(&server, &["cluster", "get", "dev", "-o", "json"]).json();
    assert_eq!(
        c["spec"]["variables"]["aws-standard"],
        json!({"greeting": "Hallo", "replicas": "3"})
    );
    assert_eq!(c["status"]["phase"], "Running");
    assert!(c["status"]["run"].is_null(), "{c:#}");
    cli(
        &server,
        &[
            "cluster",
            "set-vars",
            "dev",
            "--unset",
            "aws-standard.replicas",
            "--wait",
        ],
    )
    .ok();
    let c = cli(&server, &["cluster", "get", "dev", "-o", "json"]).json();
    assert_eq!(
        c["spec"]["variables"]["aws-standard"],
        json!({"greeting": "Hallo"})
    );
    // Unsetting a required value is refused by the server with its field (exit 1).
    let refused = cli(
        &server,
        &[
            "cluster",
            "set-vars",
            "dev",
            "--unset",
            "aws-standard.greeting",
        ],
    );
    assert_eq!(refused.code, 1, "{refused:?}");
    assert_has(
        &refused.stderr,
        "spec.variables.aws-standard.greeting: is required",
    );

    // events: oldest first, from Created to the update's RunSucceeded.
    let r = reasons(&server, "dev");
    assert_eq!(r.first().map(String::as_str), Some("Created"), "{r:?}");
    assert!(r.contains(&"RunSucceeded".to_owned()), "{r:?}");
    assert!(r.contains(&"UpdateRequested".to_owned()), "{r:?}");
    let table = cli(&server, &["cluster", "events", "dev", "--limit", "1"]);
    assert_eq!(table.ok().lines().count(), 2, "{}", table.stdout);
    assert_has(&table.stdout, "RunSucceeded");

    // delete --wait ends when it is gone.
    let deleted = cli(&server, &["cluster", "delete", "dev", "--wait"]);
    deleted.ok();
    assert_has(&deleted.stderr, "is being deleted by run");
    assert_has(&deleted.stderr, "is deleted");
    let gone = server.get(&format!("{P}/clusters/dev")).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    let missing = cli(&server, &["cluster", "get", "dev"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert_has(&missing.stderr, "NotFound");
}

#[tokio::test]
async fn a_standalone_cluster_attaches_and_detaches() {
    let server = Server::start().await;
    setup(&server).await;
    // From a document, with the project of `-p`.
    let doc = server.scratch().join("solo.yaml");
    std::fs::write(
        &doc,
        "kind: Cluster\nmetadata: {name: solo}\nspec:\n  profiles: [{name: aws-standard, version: 1.0.0}]\n  \
         cloudAccount: sim0\n  variables: {aws-standard: {greeting: solo}}\n  nodePools:\n  \
         - {name: cp, controlPlane: true, count: 1, instanceType: m5.large}\n",
    )
    .unwrap();
    let created = cli(
        &server,
        &[
            "cluster",
            "create",
            "-f",
            &doc.display().to_string(),
            "--wait",
        ],
    );
    let row: Vec<&str> = created
        .ok()
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row, ["solo", "Running", "Healthy", "aws-standard@1.0.0"]);

    let attached = cli(
        &server,
        &[
            "cluster",
            "attach",
            "solo",
            "--template",
            "web",
            "--time-zone",
            "Europe/Paris",
            "--var",
            "aws-standard.greeting=solo",
            "--var",
            PASSWORD,
            "-o",
            "json",
        ],
    );
    let a = attached.json();
    assert_eq!(a["spec"]["template"]["name"], "web", "{a:#}");
    assert_eq!(a["spec"]["timeZone"], "Europe/Paris", "{a:#}");
    assert!(a["status"]["revision"].is_null(), "{a:#}");
    assert_has(&attached.stderr, "attached to template \"web\"");
    // A second attach is the server's conflict (exit 1).
    let again = cli(&server, &["cluster", "attach", "solo", "--template", "web"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert_has(&again.stderr, "ClusterAlreadyAttached");

    let d = cli(&server, &["cluster", "detach", "solo", "-o", "json"]).json();
    assert!(d["spec"]["template"].is_null(), "{d:#}");
    assert_eq!(d["spec"]["profiles"][0]["name"], "aws-standard", "{d:#}");
    assert_eq!(d["spec"]["variables"]["aws-standard"]["greeting"], "solo");
    let r = reasons(&server, "solo");
    assert!(
        r.ends_with(&["Attached".to_owned(), "Detached".to_owned()]),
        "{r:?}"
    );
}

#[tokio::test]
async fn bad_input_is_a_usage_or_validation_error_and_a_failed_deploy_exits_1() {
    let server = Server::start().await;
    setup(&server).await;
    let base = [
        "cluster",
        "create",
        "x",
        "--template",
        "web",
        "--time-zone",
        "UTC",
    ];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        cli(&server, &args)
    };
    // Shapes the CLI checks: usage errors (exit 2) naming the problem.
    for (extra, part) in [
        (
            &["--pool", "name=cp,count=x,type=m5.large"][..],
            "count `x` is not a whole number",
        ),
        (&["--pool", "name=cp,type=m5.large"], "has no count="),
        (
            &["--pool", "name=cp,count=1,type=m,zone=a"],
            "unknown `zone=a`",
        ),
        (
            &["--pool", CP, "--var", "greeting=hi"],
            "is not PROFILE.VARIABLE=VALUE",
        ),
        (
            &["--pool", CP, "--var", "aws-standard.greeting"],
            "use --unset",
        ),
        (
            &["--pool", CP, "--profile", "aws-standard@1.0.0"],
            "cannot be used with",
        ),
    ] {
        let r = with(extra);
        assert_eq!(r.code, 2, "{extra:?}: {r:?}");
        assert_has(&r.stderr, part);
    }
    let r = cli(&server, &["cluster", "create", "x", "--pool", CP]);
    assert_eq!(r.code, 2, "{r:?}");
    // What the server judges: validation errors (exit 1) with their field paths.
    for (extra, part) in [
        (
            &[
                "--pool",
                "name=w,count=1,type=m5.large",
                "--var",
                "aws-standard.greeting=hi",
                "--var",
                PASSWORD,
                "--cloud-account",
                "sim0",
            ][..],
            "spec.nodePools: ",
        ),
        (
            &[
                "--pool",
                CP,
                "--var",
                "nosuch.x=1",
                "--var",
                "aws-standard.greeting=hi",
                "--var",
                PASSWORD,
                "--cloud-account",
                "sim0",
            ],
            "spec.variables.nosuch",
        ),
        (
            &[
                "--pool",
                CP,
                "--var",
                "aws-standard.greeting=hi",
                "--var",
                PASSWORD,
                "--cloud-account",
                "nope",
            ],
            "spec.cloudAccount",
        ),
    ] {
        let r = with(extra);
        assert_eq!(r.code, 1, "{extra:?}: {r:?}");
        assert_has(&r.stderr, "ValidationFailed (HTTP 400)");
        assert_has(&r.stderr, part);
    }
    let r = cli(&server, &["cluster", "list", "-o", "json"]).json();
    assert_eq!(r["items"], json!([]), "nothing was created");
    // Without a project, a cluster command says so (exit 1).
    let r = server.cli(Some(ADMIN_KEY), &["cluster", "list"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_has(&r.stderr, "project");

    // A simulated provisioning fault: --wait ends with exit 1 and the Ready condition.
    let failed = with(&[
        "--pool",
        CP,
        "--var",
        "aws-standard.greeting=hi",
        "--var",
        PASSWORD,
        "--cloud-account",
        "sim0",
        "--label",
        "simulator.fleetplane.io/fail-provisioning=true",
        "--wait",
    ]);
    assert_eq!(failed.code, 1, "{failed:?}");
    assert_has(&failed.stderr, "RunFailed");
    assert_has(
        &failed.stderr,
        "error: cluster \"x\" in project \"default\" failed: ",
    );
    assert_has(&failed.stderr, "fleetplane run journal ");
    let c = server.get(&format!("{P}/clusters/x")).await.json();
    let ready = c["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_has(&failed.stderr, ready["message"].as_str().unwrap());
}

#[tokio::test]
async fn the_example_fleet_applies_reaches_running_and_applies_unchanged() {
    let server = Server::start().await;
    let dir = format!("{}/examples/fleet/", env!("CARGO_MANIFEST_DIR"));
    let first = server.cli(Some(ADMIN_KEY), &["apply", "-f", &dir]);
    assert_eq!(
        first.ok(),
        "policy/weekly created\nprofileversion/aws-standard@1.0.0 created\n\
         template/dev-template created\ncluster/dev created\ncluster/stage created\n\
         cluster/prod created\n"
    );
    let second = server.cli(Some(ADMIN_KEY), &["apply", "-f", &dir]);
    assert_eq!(
        second.ok(),
        "policy/weekly unchanged\nprofileversion/aws-standard@1.0.0 unchanged\n\
         template/dev-template unchanged\ncluster/dev unchanged\ncluster/stage unchanged\n\
         cluster/prod unchanged\n"
    );
    // The default `simulator` account works in simulated time: poll until every cluster ran
    // its deploy.
    let mut last = Value::Null;
    for _ in 0..1200 {
        last = cli(&server, &["cluster", "list", "-o", "json"]).json();
        let items = last["items"].as_array().unwrap();
        assert!(
            items.iter().all(|c| c["status"]["phase"] != "Failed"),
            "{last:#}"
        );
        if items.len() == 3
            && items
                .iter()
                .all(|c| c["status"]["phase"] == "Running" && c["status"]["run"].is_null())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let table = cli(&server, &["cluster", "list"]);
    for name in ["dev", "prod", "stage"] {
        let line = table
            .ok()
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {}\n{last:#}", table.stdout));
        assert_eq!(
            line.split_whitespace().take(6).collect::<Vec<_>>(),
            [
                name,
                "dev-template",
                "Running",
                "Healthy",
                "1",
                "aws-standard@1.0.0"
            ],
            "{last:#}"
        );
    }
    // Each cluster's Sunday 00:00 is in its own time zone.
    let starts: std::collections::BTreeSet<&str> = last["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"]["nextWindow"]["start"].as_str().unwrap())
        .collect();
    assert_eq!(starts.len(), 3, "{last:#}");
    let prod = cli(&server, &["cluster", "get", "prod", "-o", "json"]).json();
    assert_eq!(prod["spec"]["timeZone"], "Asia/Kolkata");
    assert_eq!(prod["spec"]["variables"]["aws-standard"]["replicas"], "3");
    assert_eq!(prod["status"]["nodes"].as_array().unwrap().len(), 6);
    // Still unchanged once the clusters run.
    let third = server.cli(Some(ADMIN_KEY), &["apply", "-f", &dir]);
    assert!(
        third.ok().lines().all(|l| l.ends_with(" unchanged")),
        "{}",
        third.stdout
    );
}
