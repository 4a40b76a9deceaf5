//! Crash safety of rollouts at fleet scale with the real server process (issue 8): template
//! `web` (aws-standard 1.0.0) with 1,000 clusters moves to revision 2 (aws-standard 1.1.0, an
//! add-on change) through Upgrade now while the server is killed (`kill -9`) twenty times at
//! seeded random moments and restarted. Afterwards the template is `Applied`, every cluster runs
//! revision 2 with profile 1.1.0, every cluster's `update-cluster` for revision 2 was intended
//! under exactly one idempotency key over all the rollout runs of that revision (none updated
//! twice), and every journal of those runs and their children has seq 1..n without gaps.

// Progress goes to standard error through `eprintln!` so the test harness captures it (shown
// with `--nocapture` or when the test fails).
#![allow(clippy::print_stderr, reason = "the test reports its progress")]

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::crash::{
    P, Rng, all_clusters, bounded, create_clusters, get_json, journal, phases, profile_example,
    seq_problem, seqs, unthrottled_server, update_keys,
};
use support::{ADMIN_KEY, Server};

/// Clusters of the template (the requirement; do not lower it).
const N: usize = 1_000;
/// `kill -9` + restart rounds during the rollout.
const KILLS: usize = 20;
/// The seed of the kill schedule (printed, so a failure can be replayed).
const SEED: u64 = 0xbb67_ae85_84ca_a73b;
/// Kills while the rollout run plans (see the test).
const PLANNING: usize = 2;
/// Kills while updates are in flight and no cluster is done yet.
const IN_FLIGHT: usize = 8;
/// Bound on any wait, so a broken rollout fails the test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(900);
/// Time zones the clusters are spread over (windows are per zone; Upgrade now ignores them).
const ZONES: [&str; 4] = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"];
const TERMINAL: [&str; 3] = ["Succeeded", "Failed", "Cancelled"];

async fn call(
    server: &Server,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> support::Answer {
    server
        .call(method, &format!("{P}{path}"), Some(ADMIN_KEY), body)
        .await
}

/// Rollout `run`'s per-cluster timeline, every page of `…/rollouts/{run}/clusters`.
async fn cluster_timeline(server: &Server, run: &str) -> Vec<Value> {
    let base = format!("/cluster-templates/web/rollouts/{run}/clusters?limit=500");
    let mut out = Vec::new();
    let mut url = base.clone();
    loop {
        let r = call(server, Method::GET, &url, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let page = r.json();
        out.extend(page["items"].as_array().into_iter().flatten().cloned());
        match page["continue"].as_str() {
            Some(c) => url = format!("{base}&continue={c}"),
            None => return out,
        }
    }
}

fn cluster_name(i: usize) -> String {
    format!("web-{i:04}")
}

fn cluster_body(i: usize) -> Value {
    json!({"spec": {
        "template": {"name": "web"},
        "cloudAccount": "sim0",
        "timeZone": ZONES[i % ZONES.len()],
        "labels": {"crash": "rollout"},
        "variables": {"aws-standard": {"greeting": format!("Hello {i}")}},
        "nodePools": [
            {"name": "cp", "controlPlane": true, "count": 1, "instanceType": "m5.large"},
            {"name": "workers", "count": 1, "instanceType": "m5.large"}]}})
}

/// Profile aws-standard 1.0.0, a policy whose only window opens on 1 January (so the
/// window-gated rollout a new revision schedules waits, and only Upgrade now moves clusters),
/// template `web` on 1.0.0 and the simulator account at `timeScale` 0.
async fn setup(server: &Server) {
    let r = call(
        server,
        Method::POST,
        "/profiles:import",
        Some(&profile_example("aws-standard-1.0.0.json")),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let policy = json!({"spec": {"schedules": [
        {"name": "new-year", "cron": "0 0 1 1 *", "durationHours": 1}]}});
    let r = call(
        server,
        Method::PUT,
        "/maintenance-policies/yearly",
        Some(&policy),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let t = json!({"spec": {"cloudType": "aws",
        "profiles": [{"name": "aws-standard", "version": "1.0.0"}],
        "maintenancePolicy": {"name": "yearly"}}});
    let r = call(server, Method::PUT, "/cluster-templates/web", Some(&t)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let acc = json!({"spec": {"provider": "simulator", "simulator": {"timeScale": 0}}});
    let r = call(server, Method::PUT, "/cloud-accounts/sim0", Some(&acc)).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// aws-standard 1.1.0: a copy of 1.0.0 whose add-on layer gains a literal value (no new
/// variable, so no cluster waits for an assignment).
async fn version_1_1_0(server: &Server) {
    let r = call(
        server,
        Method::POST,
        "/profiles/aws-standard/versions",
        Some(&json!({"version": "1.1.0", "from": "1.0.0"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let path = "/profiles/aws-standard/versions/1.1.0";
    let mut v = call(server, Method::GET, path, None).await.json();
    let layers = v["spec"]["layers"].as_array_mut().expect("layers");
    let addon = layers
        .iter_mut()
        .find(|l| l["layer"] == "addon")
        .expect("an add-on layer");
    let values = addon["values"].as_str().expect("values").to_owned();
    addon["values"] = json!(format!("{values}rolloutMarker: \"1.1.0\"\n"));
    let r = call(server, Method::PUT, path, Some(&v)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// The template, when the server answers.
async fn template(server: &Server) -> Option<Value> {
    let r = call(server, Method::GET, "/cluster-templates/web", None).await;
    (r.status == 200).then(|| r.json())
}

/// A run's fan-out counts, when the server answers.
async fn run_counts(server: &Server, run: &str) -> Option<Value> {
    let r = call(server, Method::GET, &format!("/runs/{run}"), None).await;
    (r.status == 200).then(|| r.json()["counts"].clone())
}

/// Polls the run's counts until `done` holds (within [`DEADLINE`] of now).
async fn wait_for(server: &Server, run: &str, what: &str, done: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let counts = run_counts(server, run).await;
        if counts.as_ref().is_some_and(&done) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "run {run} never had {what}: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn brief(t: &Value) -> String {
    let s = &t["status"];
    format!(
        "{} upToDate {} / {}; rollout {} {}",
        s["state"].as_str().unwrap_or("?"),
        s["clusters"]["upToDate"],
        s["clusters"]["total"],
        s["rollout"]["run"].as_str().unwrap_or("-"),
        s["rollout"]["status"].as_str().unwrap_or("-"),
    )
}

/// What one cluster's update calls were, over all the rollout runs of revision 2.
#[derive(Debug, Default)]
struct Calls {
    /// `(run, child)` of every child of a revision-2 rollout run for this cluster.
    children: Vec<(String, String)>,
    /// Idempotency keys of `update-cluster` with the run that intended each.
    keys: BTreeMap<String, BTreeSet<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_to_1000_clusters_survives_twenty_kill_9s() {
    let t0 = Instant::now();
    let lap = || format!("{:>6.1}s", t0.elapsed().as_secs_f64());
    let mut server = unthrottled_server().await;
    eprintln!("{} server up (seed {SEED:#x})", lap());
    setup(&server).await;

    // N template clusters through concurrent PUTs, then wait until every one is Running.
    let errors = create_clusters(&server, N, cluster_name, cluster_body).await;
    assert!(
        errors.is_empty(),
        "{} creates failed: {errors:#?}",
        errors.len()
    );
    let created = t0.elapsed();
    eprintln!("{} {N} clusters created", lap());
    loop {
        let seen = phases(&server).await;
        if seen.get("Running").copied().unwrap_or(0) == N {
            break;
        }
        assert!(
            !seen.contains_key("Failed"),
            "a cluster failed to provision: {seen:?}"
        );
        assert!(t0.elapsed() < DEADLINE, "clusters never all ran: {seen:?}");
        eprintln!("{} clusters: {seen:?}", lap());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let running = t0.elapsed();
    eprintln!("{} all {N} clusters Running", lap());

    // Revision 2: aws-standard 1.1.0. A window-gated rollout is scheduled and waits.
    version_1_1_0(&server).await;
    let mut t = template(&server).await.expect("template");
    assert_eq!(t["status"]["state"], "Applied", "{t:#}");
    t["spec"]["profiles"][0]["version"] = json!("1.1.0");
    let r = call(&server, Method::PUT, "/cluster-templates/web", Some(&t)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let t = r.json();
    assert_eq!(t["status"]["revision"], 2, "{t:#}");
    assert_eq!(t["status"]["clusters"]["pendingVariables"], 0, "{t:#}");
    let t = template(&server).await.expect("template");
    eprintln!("{} revision 2 saved: {}", lap(), brief(&t));

    // Upgrade now, then twenty kill -9s at random moments.
    let r = call(
        &server,
        Method::POST,
        "/cluster-templates/web:upgrade",
        None,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let upgrade = r.json();
    let upgrade_started = Instant::now();
    eprintln!("{} upgrade now: {upgrade}", lap());
    // Kill moments in three stages, so they land all over the rollout however fast the machine
    // is: PLANNING kills from the Upgrade now on (the run resolves its clusters and starts its
    // children), IN_FLIGHT kills once it has children and before any cluster is done (updates
    // intended, sent and polled), the rest once clusters finish. Each after a seeded delay.
    let run = upgrade["run"].as_str().expect("upgrade run").to_owned();
    let mut rng = Rng(SEED);
    let mut kills_before_applied = 0;
    for round in 0..KILLS {
        let (stage, delay) = if round < PLANNING {
            ("planning", rng.between(50, 700))
        } else if round < PLANNING + IN_FLIGHT {
            wait_for(&server, &run, "children", |c| c["total"].as_u64() > Some(0)).await;
            ("in flight", rng.between(200, 1_500))
        } else {
            wait_for(&server, &run, "a cluster done", |c| {
                c["succeeded"].as_u64() > Some(0)
            })
            .await;
            ("finishing", rng.between(50, 600))
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let before = template(&server).await;
        let counts = run_counts(&server, &run).await;
        if before
            .as_ref()
            .is_none_or(|t| t["status"]["state"] != "Applied")
        {
            kills_before_applied += 1;
        }
        server.kill9();
        server.restart().await;
        eprintln!(
            "{} kill -9 #{} ({stage}) done; before it: {}; run counts {}",
            lap(),
            round + 1,
            before.as_ref().map_or("(no answer)".into(), brief),
            counts.unwrap_or(Value::Null),
        );
    }

    // Wait for Applied, and for every rollout run to end.
    let t = loop {
        if let Some(t) = template(&server).await {
            if t["status"]["state"] == "Applied" {
                break t;
            }
            assert!(t0.elapsed() < DEADLINE, "never Applied: {t:#}");
            eprintln!("{} {}", lap(), brief(&t));
        }
        tokio::time::sleep(Duration::from_millis(1_000)).await;
    };
    let applied = upgrade_started.elapsed();
    eprintln!("{} Applied: {}", lap(), brief(&t));
    let history = loop {
        let h = call(
            &server,
            Method::GET,
            "/cluster-templates/web/rollouts",
            None,
        )
        .await;
        assert_eq!(h.status, 200, "{}", h.text);
        let h = h.json();
        let items = h["items"].as_array().expect("items").clone();
        if items
            .iter()
            .all(|i| TERMINAL.contains(&i["status"].as_str().unwrap_or_default()))
        {
            break items;
        }
        assert!(t0.elapsed() < DEADLINE, "rollout runs never ended: {h:#}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let ended = upgrade_started.elapsed();

    // Every cluster: revision 2, aws-standard 1.1.0, Running.
    let clusters = all_clusters(&server).await;
    assert_eq!(clusters.len(), N, "clusters listed");
    let wrong: Vec<String> = clusters
        .iter()
        .filter(|c| {
            c["status"]["revision"] != 2
                || c["status"]["profiles"][0]["version"] != "1.1.0"
                || c["status"]["phase"] != "Running"
        })
        .map(|c| {
            format!(
                "{}: revision {} profiles {} phase {}",
                c["metadata"]["name"],
                c["status"]["revision"],
                c["status"]["profiles"],
                c["status"]["phase"]
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} clusters are not on revision 2 / 1.1.0: {wrong:#?}",
        wrong.len()
    );

    // The rollout runs of revision 2 with their per-cluster timelines; the one Upgrade now
    // named must have succeeded.
    let mut history = history;
    for i in history.iter_mut().filter(|i| i["revision"] == 2) {
        let run = i["run"].as_str().unwrap_or_default().to_owned();
        i["clusterTimeline"] = Value::Array(cluster_timeline(&server, &run).await);
    }
    let runs: Vec<&Value> = history.iter().filter(|i| i["revision"] == 2).collect();
    for r in &runs {
        eprintln!(
            "  rollout run {} reason {} upgradeNow {} status {} counts {} children {}",
            r["run"].as_str().unwrap_or("?"),
            r["reason"],
            r["upgradeNow"],
            r["status"],
            r["counts"],
            r["clusterTimeline"].as_array().map_or(0, Vec::len),
        );
    }
    let named = upgrade["run"].as_str().expect("upgrade run");
    let main = runs
        .iter()
        .find(|r| r["run"] == named)
        .unwrap_or_else(|| panic!("run {named} is not in the history: {history:#?}"));
    assert_eq!(main["status"], "Succeeded", "{main:#}");

    // Parents' journals have no gaps.
    let (http, base) = (server.http().clone(), server.base_url.clone());
    for r in &runs {
        let id = r["run"].as_str().expect("run id");
        let j = journal(&http, &base, id).await.expect("parent journal");
        if let Some(p) = seq_problem(&seqs(&j)) {
            panic!("rollout run {id} journal: {p}");
        }
    }

    // Every child of every revision-2 rollout run: journal without gaps; its update-cluster
    // keys, gathered per cluster over all those runs.
    let children: Arc<Vec<(String, String, String)>> = Arc::new(
        runs.iter()
            .flat_map(|r| {
                let run = r["run"].as_str().unwrap_or_default().to_owned();
                r["clusterTimeline"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |c| {
                        (
                            run.clone(),
                            c["cluster"].as_str().unwrap_or_default().to_owned(),
                            c["run"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
            })
            .collect(),
    );
    let calls: Arc<Mutex<BTreeMap<String, Calls>>> = Arc::default();
    let entries = Arc::new(Mutex::new(0usize));
    let intended = Arc::new(Mutex::new(0usize));
    let (list, out, count, all_intents) = (
        children.clone(),
        calls.clone(),
        entries.clone(),
        intended.clone(),
    );
    let problems = bounded(children.len(), move |i| {
        let (http, base) = (http.clone(), base.clone());
        let (list, out, count) = (list.clone(), out.clone(), count.clone());
        let intended = all_intents.clone();
        async move {
            let (run, cluster, child) = &list[i];
            let j = journal(&http, &base, child).await?;
            *count.lock().expect("count") += j.len();
            if let Some(p) = seq_problem(&seqs(&j)) {
                return Err(format!("child {child} ({cluster}) journal: {p}"));
            }
            let detail = get_json(&http, &format!("{base}{P}/runs/{child}")).await?;
            let keys = update_keys(&j);
            let intents = j
                .iter()
                .filter(|e| {
                    e["record"]["type"] == "providerCallIntended"
                        && e["record"]["operation"] == "update-cluster"
                })
                .count();
            *intended.lock().expect("intended") += intents;
            if !keys.is_empty() && detail["status"] != "Succeeded" {
                return Err(format!(
                    "child {child} ({cluster}) updated but ended {}",
                    detail["status"]
                ));
            }
            let mut out = out.lock().expect("calls");
            let c = out.entry(cluster.clone()).or_default();
            c.children.push((run.clone(), child.clone()));
            if !keys.is_empty() {
                c.keys.entry(run.clone()).or_default().extend(keys);
            }
            Ok(())
        }
    })
    .await;
    assert!(
        problems.is_empty(),
        "{} children are wrong: {problems:#?}",
        problems.len()
    );
    let calls = std::mem::take(&mut *calls.lock().expect("calls"));
    let updating_runs: BTreeSet<&String> = calls.values().flat_map(|c| c.keys.keys()).collect();
    let mut twice = Vec::new();
    let mut never = 0;
    for (cluster, c) in &calls {
        let keys: BTreeSet<&String> = c.keys.values().flatten().collect();
        match keys.len() {
            0 => never += 1,
            1 => {}
            _ => twice.push(format!(
                "{cluster}: {:?} (children {:?})",
                c.keys, c.children
            )),
        }
    }
    eprintln!(
        "{} {} child journals ({} entries) of {} runs checked; runs that called update-cluster: {updating_runs:?}",
        lap(),
        children.len(),
        *entries.lock().expect("count"),
        runs.len(),
    );
    assert!(
        twice.is_empty(),
        "{} clusters were updated under more than one idempotency key for revision 2: {twice:#?}",
        twice.len()
    );
    let updated = calls.values().filter(|c| !c.keys.is_empty()).count();
    eprintln!(
        "  clusters updated under one key: {updated}; children without an update: {never}; \
         update-cluster intents in all (repeats after a crash keep their key): {}",
        *intended.lock().expect("intended")
    );
    assert_eq!(
        updated, N,
        "clusters with one update-cluster key for revision 2"
    );
    eprintln!(
        "figures: {N} clusters created in {:.1}s, all Running at {:.1}s; Upgrade now to Applied \
         under {KILLS} kill -9s: {:.1}s (runs ended at {:.1}s); kills before Applied: \
         {kills_before_applied}/{KILLS}",
        created.as_secs_f64(),
        running.as_secs_f64(),
        applied.as_secs_f64(),
        ended.as_secs_f64(),
    );
}
