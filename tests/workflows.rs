//! End-to-end tests of `fleetplane workflow` and `fleetplane run` against a real server process:
//! submit definitions from files (a broken one names its step path), start a run, pause, list
//! the paused runs, resume, approve, watch it succeed, and read its journal.

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::{ADMIN_KEY, CliRun, Server};

/// How long a run may take to reach a status the test waits for.
const DEADLINE: Duration = Duration::from_secs(30);

fn file(name: &str) -> String {
    format!("{}/tests/workflows/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[track_caller]
fn assert_has(text: &str, part: &str) {
    assert!(text.contains(part), "{part:?} is not in:\n{text}");
}

fn items(v: &Value) -> &Vec<Value> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
}

fn ids(v: &Value) -> Vec<&str> {
    items(v).iter().filter_map(|r| r["id"].as_str()).collect()
}

/// Polls `run show` until `done` holds for the run, up to [`DEADLINE`]; returns the run.
async fn wait_for(
    cli: &impl Fn(&[&str]) -> CliRun,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let run = cli(&["run", "show", id, "-o", "json"]).json();
        if done(&run) {
            return run;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the run did not become {what} within {DEADLINE:?}: {run}"
        );
        // A pause between polls (the condition above decides, not the time).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_submitted_workflow_runs_through_signals() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);
    let in_default = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-p", "default"]);
        server.cli(Some(ADMIN_KEY), &all)
    };

    // Submit from a file; the name and version come from the document.
    let approve_now = file("approve-now.yaml");
    let submitted = admin(&["workflow", "submit", "-f", &approve_now, "-o", "json"]);
    assert_has(&submitted.stderr, "workflow approve-now@1.0.0 created");
    assert_eq!(submitted.json()["metadata"]["name"], "approve-now");
    // Submitting the same document again is harmless.
    admin(&["workflow", "submit", "-f", &approve_now]).ok();

    // A broken definition: exit 1, the code and the step path on standard error.
    let broken = admin(&["workflow", "submit", "-f", &file("broken-wait.yaml")]);
    assert_eq!(broken.code, 1, "{broken:?}");
    assert_has(&broken.stderr, "ValidationFailed");
    assert_has(&broken.stderr, "spec.steps[1].wait.duration");
    assert!(broken.stdout.is_empty(), "{broken:?}");

    // List and get.
    let list = admin(&["workflow", "list", "-o", "json"]).json();
    let names: Vec<&str> = items(&list)
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert!(names.contains(&"approve-now"), "{list}");
    assert!(names.contains(&"deploy"), "{list}");
    assert!(!names.contains(&"broken-wait"), "{list}");
    let table = admin(&["workflow", "list"]);
    assert_has(table.ok(), "approve-now");
    let got = admin(&["workflow", "get", "approve-now@1.0.0", "-o", "yaml"]);
    let doc: Value = serde_saphyr::from_str(got.ok()).expect("YAML");
    assert_eq!(doc["spec"]["steps"][1]["approve"]["name"], "go", "{doc}");
    let missing = admin(&["workflow", "get", "approve-now@9.9.9"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert_has(&missing.stderr, "NotFound");
    let schema = admin(&["workflow", "schema"]).json();
    assert!(schema["$schema"].is_string(), "{schema}");

    // Start a run in the project `default`.
    let started = in_default(&[
        "run",
        "start",
        "approve-now@1.0.0",
        "--input",
        "note=hi there",
        "-o",
        "json",
    ])
    .json();
    let id = started["id"].as_str().expect("run id").to_owned();
    assert_eq!(started["workflow"], "approve-now@1.0.0");
    let run = wait_for(&in_default, &id, "waiting on the approval", |r| {
        r["status"] == "Waiting" && r["waitingOn"] == "signal"
    })
    .await;
    assert_eq!(run["vars"]["greeting"], "hi there", "{run}");
    // A version a run used is immutable: an edit is refused.
    let edited = server.scratch().join("edited.yaml");
    let text = std::fs::read_to_string(&approve_now).expect("read");
    std::fs::write(&edited, text.replace("Go ahead?", "Really?")).expect("write");
    let refused = admin(&["workflow", "submit", "-f", &edited.display().to_string()]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert_has(&refused.stderr, "WorkflowVersionInUse");

    // Pause; the paused runs list it (in the project and tenant-wide); resume.
    let pause = in_default(&["run", "pause", &id, "--reason", "look first"]);
    assert_has(pause.ok(), "look first");
    assert_has(&pause.stdout, "pause");
    wait_for(&in_default, &id, "Paused", |r| r["status"] == "Paused").await;
    let paused = in_default(&["run", "list", "--paused", "-o", "json"]).json();
    assert_eq!(ids(&paused), [id.as_str()], "{paused}");
    let paused = admin(&["run", "list", "--paused", "-o", "json"]).json();
    assert_eq!(ids(&paused), [id.as_str()], "{paused}");
    let table = admin(&["run", "list", "--paused"]);
    assert_has(table.ok(), &id);
    assert_has(&table.stdout, "look first");
    in_default(&["run", "resume", &id, "--reason", "ok"]).ok();
    wait_for(&in_default, &id, "waiting again", |r| {
        r["status"] == "Waiting"
    })
    .await;
    let none = in_default(&["run", "list", "--paused", "-o", "json"]).json();
    assert!(items(&none).is_empty(), "{none}");

    // An approval needs a name (usage error); then approve and watch it succeed.
    assert_eq!(in_default(&["run", "approve", &id]).code, 2);
    let approved = in_default(&["run", "approve", &id, "--name", "go", "-o", "json"]).json();
    assert_eq!(approved["accepted"]["by"], "admin", "{approved}");
    assert_eq!(approved["accepted"]["signal"]["name"], "go", "{approved}");
    let run = wait_for(&in_default, &id, "Succeeded", |r| {
        r["status"] == "Succeeded"
    })
    .await;
    assert!(run["endedAt"].is_string(), "{run}");
    let shown = admin(&["run", "show", &id]);
    assert_has(shown.ok(), "Succeeded");
    assert_has(&shown.stdout, "approve-now@1.0.0");

    // Listing by status and definition.
    let done = admin(&[
        "run",
        "list",
        "--status",
        "Succeeded",
        "--definition",
        "approve-now@1.0.0",
        "-o",
        "json",
    ])
    .json();
    assert_eq!(ids(&done), [id.as_str()], "{done}");
    let other = admin(&[
        "run",
        "list",
        "--definition",
        "approve-now@2.0.0",
        "-o",
        "json",
    ])
    .json();
    assert!(items(&other).is_empty(), "{other}");

    // The journal: every entry in order, the signals included.
    let journal = in_default(&["run", "journal", &id, "-o", "json"]).json();
    let entries = items(&journal);
    let seqs: Vec<u64> = entries.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=entries.len() as u64).collect::<Vec<_>>());
    let types: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["record"]["type"].as_str())
        .collect();
    for t in ["runStarted", "runPaused", "runResumed", "runSucceeded"] {
        assert!(types.contains(&t), "{t} is not in {types:?}");
    }
    let table = in_default(&["run", "journal", &id]);
    assert_has(table.ok(), "SEQ");
    assert_has(&table.stdout, "runSucceeded");
    // Following a finished run prints its journal and stops.
    let followed = admin(&["run", "journal", &id, "--follow"]);
    assert_has(followed.ok(), "runSucceeded");
    assert_has(&followed.stderr, "ended: Succeeded");

    // Another project does not see the run; an unknown run is exit 1.
    let elsewhere = server.cli(Some(ADMIN_KEY), &["run", "show", &id, "-p", "other"]);
    assert_eq!(elsewhere.code, 1, "{elsewhere:?}");
    assert_has(&elsewhere.stderr, "NotFound");
    let unknown = admin(&["run", "cancel", "no-such-run"]);
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert_has(&unknown.stderr, "NotFound");
}

/// Every step kind against the simulator: two clusters labelled `ring=canary` and one not; the
/// run waits for its approval, then fans out over the ring only, and every per-cluster step runs.
#[tokio::test]
async fn every_step_kind_runs_against_the_simulator() {
    use reqwest::Method;
    use serde_json::json;
    let server = Server::start().await;
    let p = "/v1/projects/default";
    let acc = json!({"spec": {"provider": "simulator", "simulator": {"timeScale": 0}}});
    assert_eq!(
        server
            .put(&format!("{p}/cloud-accounts/sim0"), &acc)
            .await
            .status,
        201
    );
    let profile_path = format!(
        "{}/examples/profiles/aws-standard-1.0.0.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let profile: Value =
        serde_json::from_str(&std::fs::read_to_string(profile_path).unwrap()).unwrap();
    let r = server
        .call(
            Method::POST,
            &format!("{p}/profiles:import"),
            Some(ADMIN_KEY),
            Some(&profile),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for (name, ring) in [("c1", "canary"), ("c2", "canary"), ("c3", "main")] {
        let body = json!({"spec": {"profiles": [{"name": "aws-standard", "version": "1.0.0"}],
            "cloudAccount": "sim0", "labels": {"ring": ring},
            "variables": {"aws-standard": {"greeting": name}},
            "nodePools": [{"name": "cp", "controlPlane": true, "count": 1, "instanceType": "m5.large"}]}});
        let r = server.put(&format!("{p}/clusters/{name}"), &body).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let start = Instant::now();
    loop {
        let list = server.get(&format!("{p}/clusters")).await.json();
        if items(&list)
            .iter()
            .all(|c| c["status"]["phase"] == "Running")
        {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "clusters not running: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let in_default = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-p", "default"]);
        server.cli(Some(ADMIN_KEY), &all)
    };
    server
        .cli(
            Some(ADMIN_KEY),
            &["workflow", "submit", "-f", &file("every-step.yaml")],
        )
        .ok();
    let started = in_default(&["run", "start", "every-step@1.0.0", "-o", "json"]).json();
    let id = started["id"].as_str().expect("run id").to_owned();
    wait_for(&in_default, &id, "waiting on the approval", |r| {
        r["status"] == "Waiting" && r["waitingOn"] == "signal"
    })
    .await;
    in_default(&[
        "run",
        "approve",
        &id,
        "--name",
        "go",
        "--reason",
        "ring is ready",
    ])
    .ok();
    let run = wait_for(&in_default, &id, "finished", |r| {
        matches!(r["status"].as_str(), Some("Succeeded" | "Failed"))
    })
    .await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");

    // The journal shows every step kind started, and the fan-out took exactly the ring.
    let journal = |run: &str| {
        let j = in_default(&["run", "journal", run, "-o", "json"]).json();
        items(&j).clone()
    };
    let parent = journal(&id);
    let kinds = |entries: &[Value]| -> std::collections::BTreeSet<String> {
        entries
            .iter()
            .filter(|e| e["record"]["type"] == "stepStarted")
            .filter_map(|e| e["record"]["kind"].as_str().map(str::to_owned))
            .collect()
    };
    let mut seen = kinds(&parent);
    let planned = parent
        .iter()
        .find(|e| e["record"]["type"] == "fanoutPlanned")
        .unwrap_or_else(|| panic!("no fan-out plan: {parent:#?}"));
    assert_eq!(planned["record"]["total"], 2, "{planned}");
    let children = server.get(&format!("{p}/runs?limit=100")).await.json();
    let child_ids: Vec<String> = items(&children)
        .iter()
        .filter(|r| r["parent"] == id.as_str())
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(child_ids.len(), 2, "{children:#}");
    for c in &child_ids {
        seen.extend(kinds(&journal(c)));
    }
    for kind in [
        "set", "emit", "sequence", "wait", "try", "fail", "choice", "approve", "fanout", "render",
        "provider", "gate", "soak",
    ] {
        assert!(seen.contains(kind), "no {kind} step started: {seen:?}");
    }
    // The clusters were really updated through the provider and are healthy.
    for name in ["c1", "c2"] {
        let c = server.get(&format!("{p}/clusters/{name}")).await.json();
        assert_eq!(c["status"]["phase"], "Running", "{c:#}");
        assert_eq!(c["status"]["health"], "Healthy", "{c:#}");
        assert!(
            c["status"]["lastRun"]
                .as_str()
                .is_some_and(|r| child_ids.iter().any(|c| c == r)),
            "{c:#}"
        );
    }
    let c3 = server.get(&format!("{p}/clusters/c3")).await.json();
    assert!(
        !child_ids
            .iter()
            .any(|c| Some(c.as_str()) == c3["status"]["lastRun"].as_str()),
        "{c3:#}"
    );
}
