//! End-to-end tests of clusters against a real server process with the real simulator
//! component: deploy from a template and standalone, per-cluster variable edits applied at once,
//! attach/detach, delete (202, then 404), the validation errors of §4.7 and the simulator's
//! faults reported honestly (phase, condition, events, run journal).

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use support::{ADMIN_KEY, Server, ServerOptions};

const P: &str = "/v1/projects/default";

fn example(file: &str) -> Value {
    let path = format!("{}/examples/profiles/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `aws-standard` 1.0.0 and `observability` 1.0.0 in project `default`, policy `weekly`, template
/// `web` linking both, and cloud account `sim0` (instant simulator).
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

fn pools() -> Value {
    json!([{"name": "cp", "controlPlane": true, "count": 1, "instanceType": "m5.large"},
           {"name": "workers", "count": 2, "instanceType": "m5.xlarge"}])
}

fn template_cluster(greeting: &str, zone: &str) -> Value {
    json!({"spec": {"template": {"name": "web"}, "cloudAccount": "sim0", "timeZone": zone,
        "variables": {"aws-standard": {"greeting": greeting},
                      "observability": {"grafana_admin_password": "a-long-s3cret-pass"}},
        "nodePools": pools()}})
}

/// Polls the cluster until `done` holds (or fails after a minute, showing the last state).
async fn wait_for(server: &Server, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let r = server.get(&format!("{P}/clusters/{name}")).await;
        if r.status == 200 {
            last = r.json();
            if done(&last) {
                return last;
            }
        } else {
            last = json!({"status": r.status, "text": r.text});
            if done(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cluster {name} never got there; last: {last:#}");
}

fn phase(v: &Value) -> &str {
    v["status"]["phase"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn template_clusters_deploy_to_running_with_their_own_values() {
    let server = Server::start().await;
    setup(&server).await;
    for (name, greeting, zone) in [
        ("dev", "Hello dev", "Europe/Berlin"),
        ("stage", "Hello stage", "America/New_York"),
        ("prod", "Hello prod", "Asia/Kolkata"),
    ] {
        let r = server
            .put(
                &format!("{P}/clusters/{name}"),
                &template_cluster(greeting, zone),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let created = r.json();
        assert_eq!(phase(&created), "Provisioning", "{created:#}");
        assert!(created["status"]["run"].is_string(), "{created:#}");
    }
    for name in ["dev", "stage", "prod"] {
        let c = wait_for(&server, name, |c| phase(c) == "Running").await;
        let st = &c["status"];
        assert_eq!(st["health"], "Healthy", "{c:#}");
        assert_eq!(st["revision"], 1, "{c:#}");
        let profiles: Vec<String> = st["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{}@{}",
                    p["name"].as_str().unwrap(),
                    p["version"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            profiles,
            ["aws-standard@1.0.0", "observability@1.0.0"],
            "{c:#}"
        );
        let nodes = st["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 3, "one control plane and two workers: {c:#}");
        assert!(
            nodes.iter().all(|n| n["kubernetesVersion"]
                .as_str()
                .is_some_and(|v| !v.is_empty())),
            "{c:#}"
        );
        assert!(st["nextWindow"]["start"].is_string(), "{c:#}");
        assert!(st["run"].is_null(), "the deploy run is over: {c:#}");
        let events = server
            .get(&format!("{P}/clusters/{name}/events"))
            .await
            .json();
        let reasons: Vec<&str> = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["reason"].as_str().unwrap())
            .collect();
        assert!(reasons.contains(&"Created"), "{reasons:?}");
        assert!(reasons.contains(&"ProvisioningStarted"), "{reasons:?}");
        assert!(reasons.contains(&"RunSucceeded"), "{reasons:?}");
        // The deploy run is a real run with a journal.
        let run = st["lastRun"].as_str().unwrap();
        let r = server.get(&format!("{P}/runs/{run}")).await.json();
        assert_eq!(r["status"], "Succeeded", "{r:#}");
    }
    // The template sees its clusters up to date.
    let t = server
        .get(&format!("{P}/cluster-templates/web"))
        .await
        .json();
    assert_eq!(t["status"]["clusters"]["total"], 3, "{t:#}");
    assert_eq!(t["status"]["clusters"]["upToDate"], 3, "{t:#}");
    assert_eq!(t["status"]["state"], "Applied", "{t:#}");

    // A per-cluster edit applies at once through an update run.
    let r = server
        .call(
            Method::PATCH,
            &format!("{P}/clusters/dev/variables"),
            Some(ADMIN_KEY),
            Some(&json!({"variables": {"aws-standard": {"greeting": "Hallo"}}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(phase(&r.json()), "Updating", "{}", r.text);
    let dev = wait_for(&server, "dev", |c| {
        phase(c) == "Running" && c["status"]["run"].is_null()
    })
    .await;
    assert_eq!(
        dev["spec"]["variables"]["aws-standard"]["greeting"],
        "Hallo"
    );
    let view = server
        .get(&format!("{P}/cluster-templates/web/variables"))
        .await
        .json();
    let greeting = view["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["variable"]["name"] == "greeting")
        .unwrap();
    let dev_row = greeting["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == "dev")
        .unwrap();
    assert_eq!(dev_row["newValue"], "Hallo", "{view:#}");

    // Sensitive values are masked, and a GET sent back keeps the stored value (it would not
    // validate as `********`: the password needs 12 characters).
    assert_eq!(
        dev["spec"]["variables"]["observability"]["grafana_admin_password"], "********",
        "{dev:#}"
    );
    let mut back = dev.clone();
    back["spec"]["labels"] = json!({"tier": "dev"});
    let r = server.put(&format!("{P}/clusters/dev"), &back).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let dev = wait_for(&server, "dev", |c| {
        phase(c) == "Running" && c["status"]["run"].is_null()
    })
    .await;
    assert_eq!(dev["spec"]["labels"]["tier"], "dev", "{dev:#}");
    let audit = server.get("/v1/audit-events?limit=50").await.text;
    assert!(
        !audit.contains("a-long-s3cret-pass"),
        "the audit log shows a secret"
    );

    // A template cluster cannot take its own profile versions.
    let mut own = dev.clone();
    own["spec"]["profiles"] = json!([{"name": "aws-standard", "version": "1.0.0"}]);
    server
        .put(&format!("{P}/clusters/dev"), &own)
        .await
        .assert_problem(409, "ManagedByTemplate");

    // The template cannot go while it has clusters; the cloud account cannot either.
    server
        .call(
            Method::DELETE,
            &format!("{P}/cluster-templates/web"),
            Some(ADMIN_KEY),
            None,
        )
        .await
        .assert_problem(409, "TemplateInUse");
    server
        .call(
            Method::DELETE,
            &format!("{P}/cloud-accounts/sim0"),
            Some(ADMIN_KEY),
            None,
        )
        .await
        .assert_problem(409, "CloudAccountInUse");

    // Delete: 202, then gone.
    let r = server
        .call(
            Method::DELETE,
            &format!("{P}/clusters/prod"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(phase(&r.json()), "Deleting");
    wait_for(&server, "prod", |c| c["status"] == 404).await;
    let t = server
        .get(&format!("{P}/cluster-templates/web"))
        .await
        .json();
    assert_eq!(t["status"]["clusters"]["total"], 2, "{t:#}");
}

#[tokio::test]
async fn standalone_clusters_attach_detach_and_change_versions_at_once() {
    let server = Server::start().await;
    setup(&server).await;
    let body = json!({"spec": {"profiles": [{"name": "aws-standard", "version": "1.0.0"}],
        "cloudAccount": "sim0", "variables": {"aws-standard": {"greeting": "solo"}},
        "nodePools": pools()}});
    let r = server.put(&format!("{P}/clusters/solo"), &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let c = wait_for(&server, "solo", |c| phase(c) == "Running").await;
    assert!(c["status"]["revision"].is_null(), "{c:#}");
    assert!(
        c["status"]["nextWindow"].is_null(),
        "no policy, no window: {c:#}"
    );

    // The version it uses cannot be deleted.
    server
        .call(
            Method::DELETE,
            &format!("{P}/profiles/aws-standard/versions/1.0.0"),
            Some(ADMIN_KEY),
            None,
        )
        .await
        .assert_problem(409, "ProfileVersionInUse");

    // Attach it to a template of its own versions plus observability: member, not up to date.
    let r = server
        .call(
            Method::POST,
            &format!("{P}/clusters/solo:attach"),
            Some(ADMIN_KEY),
            Some(
                &json!({"template": {"name": "web"}, "timeZone": "Europe/Paris",
                "variables": {"aws-standard": {"greeting": "solo"},
                              "observability": {"grafana_admin_password": "a-long-s3cret-pass"}}}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let attached = r.json();
    assert_eq!(attached["spec"]["template"]["name"], "web");
    assert!(
        attached["status"]["revision"].is_null(),
        "runs another set: {attached:#}"
    );
    server
        .call(
            Method::POST,
            &format!("{P}/clusters/solo:attach"),
            Some(ADMIN_KEY),
            Some(&json!({"template": {"name": "web"}})),
        )
        .await
        .assert_problem(409, "ClusterAlreadyAttached");

    // Detach: it keeps what it runs and becomes standalone again.
    let r = server
        .call(
            Method::POST,
            &format!("{P}/clusters/solo:detach"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = r.json();
    assert!(d["spec"]["template"].is_null(), "{d:#}");
    assert_eq!(d["spec"]["profiles"][0]["name"], "aws-standard", "{d:#}");
    assert_eq!(
        d["spec"]["variables"]["aws-standard"]["greeting"], "solo",
        "{d:#}"
    );
}

#[tokio::test]
async fn invalid_clusters_are_refused_with_field_paths_and_nothing_is_written() {
    let server = Server::start().await;
    setup(&server).await;
    let cases = [
        (
            json!({"spec": {"cloudAccount": "sim0", "nodePools": pools()}}),
            "spec",
        ),
        (
            json!({"spec": {"template": {"name": "web"}, "cloudAccount": "sim0", "nodePools": pools(),
                "variables": {"aws-standard": {"greeting": "x"}}}}),
            "spec.timeZone",
        ),
        (template_cluster("x", "Mars/Olympus"), "spec.timeZone"),
        (
            json!({"spec": {"template": {"name": "nope"}, "cloudAccount": "sim0", "timeZone": "UTC",
                "nodePools": pools()}}),
            "spec.template.name",
        ),
        (
            json!({"spec": {"template": {"name": "web"}, "cloudAccount": "sim0", "timeZone": "UTC",
                "nodePools": pools()}}),
            "spec.variables.aws-standard.greeting",
        ),
        (
            json!({"spec": {"template": {"name": "web"}, "cloudAccount": "nope", "timeZone": "UTC",
                "variables": {"aws-standard": {"greeting": "x"}}, "nodePools": pools()}}),
            "spec.cloudAccount",
        ),
        (
            json!({"spec": {"template": {"name": "web"}, "cloudAccount": "sim0", "timeZone": "UTC",
                "variables": {"aws-standard": {"greeting": "x", "replicas": "7"}}, "nodePools": pools()}}),
            "spec.variables.aws-standard.replicas",
        ),
        (
            json!({"spec": {"template": {"name": "web"}, "cloudAccount": "sim0", "timeZone": "UTC",
                "variables": {"aws-standard": {"greeting": "x"}},
                "nodePools": [{"name": "w", "count": 1, "instanceType": "m5.large"}]}}),
            "spec.nodePools",
        ),
    ];
    for (body, field) in cases {
        let r = server.put(&format!("{P}/clusters/bad"), &body).await;
        let p = r.assert_problem(400, "ValidationFailed");
        let fields = support::problem_fields(&p);
        assert!(
            fields.iter().any(|f| f == field),
            "{field} not in {fields:?}: {p:#}"
        );
    }
    let list = server.get(&format!("{P}/clusters")).await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list:#}");
    let runs = server.get(&format!("{P}/runs")).await.json();
    assert_eq!(
        runs["items"].as_array().unwrap().len(),
        0,
        "no run started: {runs:#}"
    );
}

#[tokio::test]
async fn a_provisioning_fault_fails_the_cluster_honestly_and_a_redrive_recovers_it() {
    let server = Server::start().await;
    setup(&server).await;
    let mut body = template_cluster("x", "UTC");
    body["spec"]["labels"] = json!({"simulator.fleetplane.io/fail-provisioning": "true"});
    let r = server.put(&format!("{P}/clusters/flaky"), &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let c = wait_for(&server, "flaky", |c| phase(c) == "Failed").await;
    let ready = c["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap_or_else(|| panic!("no Ready condition: {c:#}"));
    assert_eq!(ready["status"], false, "{c:#}");
    assert!(!ready["message"].as_str().unwrap().is_empty(), "{c:#}");
    let events = server
        .get(&format!("{P}/clusters/flaky/events"))
        .await
        .json();
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "Warning" && e["reason"] == "RunFailed"),
        "{events:#}"
    );
    let run = c["status"]["lastRun"].as_str().unwrap().to_owned();
    let r = server.get(&format!("{P}/runs/{run}")).await.json();
    assert_eq!(r["status"], "Failed", "{r:#}");
    // The fault fires once: a redrive provisions it.
    let r = server
        .call(
            Method::POST,
            &format!("{P}/runs/{run}:redrive"),
            Some(ADMIN_KEY),
            Some(&json!({"reason": "fault cleared"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    wait_for(&server, "flaky", |c| phase(c) == "Running").await;
}

/// A server killed (`kill -9`) while a cluster provisions finishes the deploy after a restart,
/// with the create sent under one idempotency key.
#[tokio::test]
async fn a_deploy_interrupted_by_kill_9_finishes_after_restart() {
    let mut server = Server::start().await;
    setup(&server).await;
    // Provisioning takes about 3 s here (60 s at timeScale 1).
    let acc = json!({"spec": {"provider": "simulator", "simulator": {"timeScale": 0.05}}});
    let r = server.put(&format!("{P}/cloud-accounts/slow"), &acc).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut body = template_cluster("Hello", "UTC");
    body["spec"]["cloudAccount"] = json!("slow");
    let r = server.put(&format!("{P}/clusters/dev"), &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let run = r.json()["status"]["run"].as_str().unwrap().to_owned();
    // Wait until the create was sent, then kill the server mid-provisioning.
    wait_for(&server, "dev", |c| {
        phase(c) == "Provisioning"
            && c["status"]["run"].is_string()
            && c["status"]["health"] == "Unknown"
    })
    .await;
    for _ in 0..600 {
        let j = server
            .get(&format!("{P}/runs/{run}/journal?limit=500"))
            .await
            .json();
        let sent = j["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|e| e["record"]["operation"] == "create-cluster")
        });
        if sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    server.restart().await;
    let c = wait_for(&server, "dev", |c| phase(c) == "Running").await;
    assert_eq!(c["status"]["health"], "Healthy", "{c:#}");
    let r = server.get(&format!("{P}/runs/{run}")).await.json();
    assert_eq!(r["status"], "Succeeded", "{r:#}");
    let j = server
        .get(&format!("{P}/runs/{run}/journal?limit=500"))
        .await
        .json();
    let items = j["items"].as_array().unwrap();
    let seqs: Vec<u64> = items.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap-free"
    );
    let keys: std::collections::BTreeSet<&str> = items
        .iter()
        .filter(|e| {
            e["record"]["type"] == "providerCallIntended"
                && matches!(
                    e["record"]["operation"].as_str(),
                    Some("create-cluster" | "poll-operation")
                )
        })
        .filter_map(|e| e["record"]["idempotencyKey"].as_str())
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "one key for the create and its polls: {keys:?}"
    );
}

/// `(thread id, name, nice value)` of each of `pid`'s threads (`/proc/<pid>/task/*/stat`).
#[cfg(target_os = "linux")]
fn threads_of(pid: u32) -> Vec<(u32, String, i32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("the server's threads") {
        let path = task.expect("a thread").path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue; // the thread ended meanwhile
        };
        let (open, close) = (stat.find('(').unwrap(), stat.rfind(')').unwrap());
        let tid = stat[..open].trim().parse().expect("a thread id");
        let name = stat[open + 1..close].to_owned();
        // The fields after the name start at field 3 (state); nice is field 19.
        let nice = stat[close + 2..]
            .split(' ')
            .nth(16)
            .and_then(|n| n.parse().ok())
            .expect("a nice value");
        out.push((tid, name, nice));
    }
    out
}

/// `runtime-nice` puts every thread of the workflow runtime — its workers and its blocking pool
/// (whose threads a deploy's effects start from already lowered threads) — exactly that many
/// steps below the process, and leaves the API's threads alone (docs/configuration.md).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_workflow_runtime_runs_below_the_api() {
    let server =
        Server::start_with(ServerOptions::default().env("FLEETPLANE_RUNTIME_NICE", "7")).await;
    setup(&server).await;
    let r = server
        .put(
            &format!("{P}/clusters/low"),
            &template_cluster("low", "UTC"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    wait_for(&server, "low", |c| phase(c) == "Running").await;
    let pid = server.pid();
    let threads = threads_of(pid);
    let base = threads
        .iter()
        .find(|(tid, _, _)| *tid == pid)
        .map(|(_, _, nice)| *nice)
        .expect("the main thread");
    let runtime: Vec<i32> = threads
        .iter()
        .filter(|(_, name, _)| name.starts_with("fleetplane-runt"))
        .map(|(_, _, nice)| *nice)
        .collect();
    assert!(
        runtime.len() > 2,
        "workers and blocking threads: {threads:?}"
    );
    assert!(
        runtime.iter().all(|&n| n == (base + 7).min(19)),
        "{threads:?}"
    );
    let api: Vec<i32> = threads
        .iter()
        .filter(|(_, name, _)| name.starts_with("tokio-r"))
        .map(|(_, _, nice)| *nice)
        .collect();
    assert!(!api.is_empty(), "{threads:?}");
    assert!(api.iter().all(|&n| n == base), "{threads:?}");
}
