//! Cluster scenarios on a whole fleet in one process (`crate::fleet`): deploys from template
//! `web` reach `Running` with the machines, versions and values they were given, at an instant
//! simulated cloud and at one whose time the manual clock drives; every simulator fault is
//! reported as it happened (phase, `Ready`, a `Warning` event, the run's journal).

use crate::fleet::*;
use axum::http::Method;
use fleetplane_api::clusters;
use fleetplane_store::ObjectKey;
use fleetplane_store::tables::kinds;
use jiff::SignedDuration;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

fn values(greeting: &str, replicas: Option<&str>) -> Value {
    let mut aws = json!({"greeting": greeting});
    if let Some(r) = replicas {
        aws["replicas"] = r.into();
    }
    json!({"aws-standard": aws, "observability": {"grafana_admin_password": PASSWORD}})
}

fn fault(label: &str) -> Value {
    json!({ format!("simulator.fleetplane.io/{label}"): "true" })
}

fn run_of(cluster: &Value) -> String {
    cluster["status"]["run"]
        .as_str()
        .unwrap_or_else(|| panic!("no run: {cluster}"))
        .to_owned()
}

/// The rendered values of the layer of pack `pack` in cluster `name`'s applied stack.
fn layer_values(stack: &Value, pack: &str) -> String {
    stack["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["layer"]["name"] == pack)
        .and_then(|l| l["layer"]["values"].as_str())
        .unwrap_or_else(|| panic!("no layer {pack} in {stack}"))
        .to_owned()
}

fn warnings(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["type"] == "Warning")
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_owned(),
                e["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Deploys `name` on the instant account armed with fault `label` (an update fault spares the
/// deploy, which must succeed), then changes its greeting; the applied stack's digest before the
/// change and the update run.
async fn deployed_then_patched(f: &mut Fleet, name: &str, label: &str) -> (Value, String) {
    let created = f
        .cluster(name, "UTC", fault(label), values("before", None))
        .await;
    let deploy = run_of(&created);
    let done = f.finish(&deploy, SignedDuration::from_hours(3)).await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    let c = f.get_cluster(name).await;
    assert_eq!(c["status"]["health"], "Healthy", "{c}");
    let patched = f
        .ok(
            Method::PATCH,
            &format!("{P}/clusters/{name}/variables"),
            Some(json!({"variables": {"aws-standard": {"greeting": "after"}}})),
        )
        .await;
    assert_eq!(patched["status"]["phase"], "Updating", "{patched}");
    let update = run_of(&patched);
    assert_ne!(update, deploy);
    f.assert_summary_current("web");
    (c["status"]["appliedStack"].clone(), update)
}

struct Expect {
    def: ClusterDef,
    /// (pool, count, instance type)
    pools: &'static [(&'static str, usize, &'static str)],
    greeting: &'static str,
    replicas: &'static str,
}

#[tokio::test]
async fn dev_stage_and_prod_deploy_instantly_with_their_own_machines_versions_and_values() {
    let mut f = Fleet::ready().await;
    let fleet = [
        Expect {
            def: ClusterDef::new("dev", "Europe/Berlin")
                .labels(json!({"env": "dev"}))
                .values(values("Hello from dev", None))
                .pools(pools(&[
                    ("cp", true, 1, "m5.large"),
                    ("workers", false, 1, "m5.large"),
                ])),
            pools: &[("cp", 1, "m5.large"), ("workers", 1, "m5.large")],
            greeting: "Hello from dev",
            replicas: "1",
        },
        Expect {
            def: ClusterDef::new("stage", "America/New_York")
                .labels(json!({"env": "stage"}))
                .values(values("Hello from stage", Some("1")))
                .pools(pools(&[
                    ("cp", true, 1, "m5.large"),
                    ("workers", false, 2, "m5.xlarge"),
                ])),
            pools: &[("cp", 1, "m5.large"), ("workers", 2, "m5.xlarge")],
            greeting: "Hello from stage",
            replicas: "1",
        },
        Expect {
            def: ClusterDef::new("prod", "Asia/Kolkata")
                .labels(json!({"env": "prod"}))
                .values(values("Hello from prod", Some("3")))
                .pools(pools(&[
                    ("cp", true, 3, "m5.xlarge"),
                    ("workers", false, 3, "m5.2xlarge"),
                ])),
            pools: &[("cp", 3, "m5.xlarge"), ("workers", 3, "m5.2xlarge")],
            greeting: "Hello from prod",
            replicas: "3",
        },
    ];
    let mut runs = Vec::new();
    for e in &fleet {
        let created = f.deploy(&e.def).await;
        assert_eq!(created["status"]["phase"], "Provisioning", "{created}");
        runs.push(run_of(&created));
    }
    f.settle().await;
    // timeScale 0: everything happened without the clock moving.
    assert_eq!(f.elapsed(), SignedDuration::ZERO);

    for (e, run) in fleet.iter().zip(&runs) {
        let name = e.def.name.as_str();
        let c = f.get_cluster(name).await;
        let s = &c["status"];
        assert_eq!(f.run(run).await["status"], "Succeeded", "{name}");
        assert_eq!(s["phase"], "Running", "{name}: {c}");
        assert_eq!(s["health"], "Healthy", "{name}");
        assert_eq!(s["conditions"][0]["type"], "Ready");
        assert_eq!(s["conditions"][0]["status"], true, "{name}");
        assert_eq!(s["run"], Value::Null);
        assert_eq!(s["lastRun"], run.as_str());
        assert_eq!(s["revision"], 1);
        assert_eq!(s["desiredRevision"], 1);
        assert_eq!(
            s["profiles"],
            json!([{"name": "aws-standard", "version": "1.0.0"},
                   {"name": "observability", "version": "1.0.0", "scope": "tenant"}]),
            "{name}"
        );
        // The sensitive value is write-only in the API.
        assert_eq!(
            c["spec"]["variables"]["observability"]["grafana_admin_password"],
            "********"
        );

        // Machines: per pool, with the instance type asked for and the layers' versions.
        let nodes = s["nodes"].as_array().unwrap();
        for (pool, count, instance_type) in e.pools {
            let of_pool: Vec<&Value> = nodes.iter().filter(|n| n["pool"] == *pool).collect();
            assert_eq!(of_pool.len(), *count, "{name}/{pool}: {nodes:?}");
            for n in of_pool {
                assert_eq!(n["instanceType"], *instance_type, "{name}: {n}");
                assert_eq!(n["osImage"], "ubuntu-aws-24.04", "{name}: {n}");
                assert_eq!(n["kubernetesVersion"], "1.33.4", "{name}: {n}");
                assert_eq!(n["phase"], "Ready", "{name}: {n}");
            }
        }
        let total: usize = e.pools.iter().map(|p| p.1).sum();
        assert_eq!(nodes.len(), total, "{name}");

        // What the deploy sent: the recorded stack, rendered with the cluster's values, the
        // template's fleet-wide value and system values.
        let stacks = f.stacks(name);
        let applied = stacks.applied.expect("an applied stack");
        assert!(stacks.pending.is_none());
        assert_eq!(applied.run, *run);
        assert_eq!(applied.revision, Some(1));
        assert_eq!(s["appliedStack"], applied.digest.as_str());
        let stack = serde_json::to_value(&applied.desired).unwrap();
        assert_eq!(stack["kubernetesVersion"], "1.33.4");
        assert_eq!(stack["osImage"], "ubuntu-aws-24.04");
        let hello = layer_values(&stack, "hello-universe");
        assert!(
            hello.contains(&format!("greeting: \"{}\"", e.greeting)),
            "{name}: {hello}"
        );
        assert!(
            hello.contains(&format!("replicas: {}\n", e.replicas)),
            "{name}: {hello}"
        );
        let k8s = layer_values(&stack, "kubernetes");
        assert!(k8s.contains("kubernetesVersion: v1.33.4"), "{k8s}");
        assert!(k8s.contains(&format!("- {name}.k8s.example.com")), "{k8s}");
        assert!(k8s.contains("podCIDR: \"192.168.0.0/16\""), "{k8s}");
        let prom = layer_values(&stack, "prometheus-operator");
        assert!(prom.contains("retention: 30d"), "{prom}");
        assert!(prom.contains(&format!("cluster: \"{name}\"")), "{prom}");
        assert!(prom.contains(&format!("adminPassword: \"{PASSWORD}\"")));

        // What the simulated cloud runs: the same revision, every pack at its version.
        let observed = f.observed(SIM0, name).await;
        assert_eq!(observed.applied_revision.as_deref(), Some(&*applied.digest));
        let packs: Vec<(String, String)> = observed
            .applied_stack
            .iter()
            .map(|l| (l.pack.clone(), l.version.clone()))
            .collect();
        let want: Vec<(String, String)> = [
            ("ubuntu-aws", "24.04"),
            ("kubernetes", "1.33.4"),
            ("cni-calico", "3.30.2"),
            ("csi-aws-ebs", "1.45.0"),
            ("hello-universe", "1.2.0"),
            ("prometheus-operator", "75.15.1"),
        ]
        .iter()
        .map(|(p, v)| ((*p).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(packs, want, "{name}");
        assert_eq!(observed.nodes.len(), total);
        assert!(warnings(&f.events(name).await).is_empty(), "{name}");

        // A provider call sends the stack its run recorded without rendering again only when
        // the render's inputs are the same: a record with the same inputs is taken as it is
        // (tampered here to tell it apart), one with other inputs is rendered again.
        assert!(
            applied.inputs.is_some(),
            "{name}: the inputs' digest is recorded"
        );
        let mut tampered = applied.clone();
        tampered.desired.kubernetes_version = "tampered".into();
        let d = f.desired_reusing(name, &tampered);
        assert_eq!(d.desired.kubernetes_version, "tampered");
        assert_eq!(d.digest, applied.digest);
        tampered.inputs = Some("other inputs".into());
        let d = f.desired_reusing(name, &tampered);
        assert_eq!(d.desired.kubernetes_version, "1.33.4");
        assert_eq!(d.digest, applied.digest);
        assert_eq!(d.inputs, applied.inputs.clone().unwrap());
    }
    f.assert_summary_current("web");
    insta::assert_snapshot!("deploy_at_time_scale_0", f.journal_log(&runs[2]).await);
}

#[tokio::test]
async fn a_deploy_at_time_scale_1_progresses_only_as_the_manual_clock_moves() {
    let mut f = Fleet::ready().await;
    let created = f
        .deploy(
            &ClusterDef::new("slow", "UTC")
                .account(SIMSLOW)
                .values(values("Hello, slowly", None)),
        )
        .await;
    let run = run_of(&created);
    let next = f.settle().await;
    // The create is accepted and polled when the provider says (the simulator: every 5 s at
    // most; the step's 10 s at the latest); nothing else happens until then.
    assert_eq!(
        next.map(|t| since(f.start, t)).as_deref(),
        Some("+00:00:05")
    );
    assert_eq!(
        f.get_cluster("slow").await["status"]["phase"],
        "Provisioning"
    );

    f.advance(SignedDuration::from_secs(30)).await;
    assert_eq!(f.run(&run).await["status"], "Waiting");
    let c = f.get_cluster("slow").await;
    assert_eq!(c["status"]["phase"], "Provisioning", "{c}");
    let observed = f.observed(SIMSLOW, "slow").await;
    let reasons: Vec<&str> = observed.events.iter().map(|e| e.reason.as_str()).collect();
    assert!(reasons.contains(&"ControlPlaneReady"), "{reasons:?}");
    assert!(!reasons.contains(&"MachinesReady"), "{reasons:?}");

    let done = f.finish(&run, SignedDuration::from_hours(1)).await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    // Provisioning takes 60 s at timeScale 1; the poll at +60 s sees it done.
    assert_eq!(f.elapsed(), SignedDuration::from_secs(60));
    let c = f.get_cluster("slow").await;
    assert_eq!(c["status"]["phase"], "Running", "{c}");
    assert_eq!(c["status"]["health"], "Healthy");
    assert_eq!(c["status"]["nodes"].as_array().unwrap().len(), 3);
    // The provider's events keep the simulated cloud's instants (the manual clock's).
    let events = f.events("slow").await;
    let machines = events
        .iter()
        .find(|e| e["reason"] == "MachinesReady")
        .expect("MachinesReady copied from the provider");
    let at: jiff::Timestamp = machines["time"].as_str().unwrap().parse().unwrap();
    assert_eq!(since(f.start, at), "+00:00:55");
    assert!(
        f.stacks("slow").applied.is_some_and(|a| a.run == run),
        "the deploy's stack is applied"
    );
    insta::assert_snapshot!("deploy_at_time_scale_1", f.journal_log(&run).await);
}

#[tokio::test]
async fn a_cluster_whose_provisioning_fails_is_failed_with_the_simulators_reason() {
    let mut f = Fleet::ready().await;
    let created = f
        .cluster(
            "broken",
            "UTC",
            fault("fail-provisioning"),
            values("never", None),
        )
        .await;
    let run = run_of(&created);
    let done = f.finish(&run, SignedDuration::from_hours(3)).await;
    assert_eq!(done["status"], "Failed", "{done}");
    assert_eq!(done["error"]["kind"], "permanent", "{done}");

    let c = f.get_cluster("broken").await;
    let s = &c["status"];
    assert_eq!(s["phase"], "Failed", "{c}");
    assert_eq!(s["run"], Value::Null);
    assert_eq!(s["lastRun"], run.as_str());
    let ready = &s["conditions"][0];
    assert_eq!(ready["type"], "Ready");
    assert_eq!(ready["status"], false);
    assert_eq!(ready["reason"], "permanent");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("machines failed to provision"),
        "{ready}"
    );
    // Nothing was applied: no profiles, no revision, no applied stack.
    assert!(s.get("profiles").is_none(), "{c}");
    assert!(s.get("revision").is_none(), "{c}");
    assert!(f.stacks("broken").applied.is_none());
    let w = warnings(&f.events("broken").await);
    assert!(
        w.iter().any(|(reason, message)| reason == "RunFailed"
            && message.contains("deploy run failed")
            && message.contains("machines failed to provision")),
        "{w:?}"
    );
    insta::assert_snapshot!("deploy_fails_provisioning", f.journal_log(&run).await);
}

#[tokio::test]
async fn a_variables_patch_on_a_cluster_armed_to_fail_its_next_update_fails_the_update() {
    let mut f = Fleet::ready().await;
    let (before, update) = deployed_then_patched(&mut f, "flaky", "fail-next-update").await;
    let done = f.finish(&update, SignedDuration::from_hours(6)).await;
    assert_eq!(done["status"], "Failed", "{done}");

    let c = f.get_cluster("flaky").await;
    let s = &c["status"];
    assert_eq!(s["phase"], "Failed", "{c}");
    assert_eq!(s["run"], Value::Null);
    assert_eq!(s["lastRun"], update.as_str());
    assert_eq!(s["conditions"][0]["status"], false);
    assert!(
        s["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("the update failed"),
        "{c}"
    );
    // It still runs what the deploy applied, and says so; the failed call's stack stays pending.
    assert_eq!(s["appliedStack"], before);
    let stacks = f.stacks("flaky");
    let applied = serde_json::to_value(&stacks.applied.as_ref().unwrap().desired).unwrap();
    assert!(layer_values(&applied, "hello-universe").contains("greeting: \"before\""));
    let pending = stacks.pending.expect("the failed update's stack");
    assert_eq!(pending.run, update);
    let pending = serde_json::to_value(&pending.desired).unwrap();
    assert!(layer_values(&pending, "hello-universe").contains("greeting: \"after\""));
    assert_eq!(
        f.observed(SIM0, "flaky").await.applied_revision,
        before.as_str().map(str::to_owned)
    );
    let w = warnings(&f.events("flaky").await);
    assert!(
        w.iter().any(|(reason, message)| reason == "RunFailed"
            && message.contains("update run failed")
            && message.contains("the update failed")),
        "{w:?}"
    );
    insta::assert_snapshot!("update_fails", f.journal_log(&update).await);
}

#[tokio::test]
async fn a_cluster_unhealthy_after_an_update_fails_the_update_when_its_health_check_times_out() {
    let mut f = Fleet::ready().await;
    let (_, update) = deployed_then_patched(&mut f, "sick", "unhealthy-after-update").await;
    let started = f.now();
    f.advance(SignedDuration::from_mins(5)).await;
    // The health check keeps polling and the cluster shows what it sees.
    assert_eq!(f.run(&update).await["status"], "Waiting");
    assert_eq!(f.get_cluster("sick").await["status"]["health"], "Unhealthy");

    let done = f.finish(&update, SignedDuration::from_hours(6)).await;
    assert_eq!(done["status"], "Failed", "{done}");
    // update@1's health step polls for at most 30 minutes.
    assert_eq!(
        f.now().duration_since(started),
        SignedDuration::from_mins(30)
    );
    let c = f.get_cluster("sick").await;
    let s = &c["status"];
    assert_eq!(s["phase"], "Failed", "{c}");
    assert_eq!(s["health"], "Unhealthy", "{c}");
    assert_eq!(s["conditions"][0]["status"], false, "{c}");
    assert_eq!(s["conditions"][0]["reason"], done["error"]["kind"], "{c}");
    let w = warnings(&f.events("sick").await);
    assert!(
        w.iter()
            .any(|(reason, message)| reason == "RunFailed" && message.contains("update run failed")),
        "{w:?}"
    );
    // The update itself was applied in the cloud: the simulator runs the stack it carried.
    let pending = f.stacks("sick").pending.expect("the update's stack");
    assert_eq!(pending.run, update);
    assert_eq!(
        f.observed(SIM0, "sick").await.applied_revision,
        Some(pending.digest)
    );
    insta::assert_snapshot!("update_unhealthy", f.journal_log(&update).await);
}

/// The runtime's hook takes a provider call's stack from the `render` step that computed it
/// moments before only while computing it again would give the same: the same spec, and
/// nothing the render read changed since — whatever else the fleet writes meanwhile.
#[tokio::test]
async fn a_noted_render_is_taken_only_while_nothing_it_read_has_changed() {
    let mut f = Fleet::ready().await;
    let created = f
        .cluster("noted", "UTC", json!({}), values("before", None))
        .await;
    let done = f
        .finish(&run_of(&created), SignedDuration::from_hours(3))
        .await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    let store = f.api.state.store.clone();
    let key = ObjectKey::project(PROJECT, kinds::CLUSTER, "noted");
    let spec = || {
        let r = store.read().unwrap();
        clusters::load_key(&*r, &key).unwrap().unwrap().spec
    };
    let recent = clusters::RecentRenders::default();
    let noted = |spec: &fleetplane_domain::cluster::ClusterSpec| {
        let r = store.read().unwrap();
        clusters::noted_render(&recent, &*r, &key, spec).unwrap()
    };
    let note = || {
        let r = store.read().unwrap();
        clusters::desired_noting(&recent, &*r, &key, &spec()).unwrap()
    };

    assert!(noted(&spec()).is_none(), "nothing noted yet");
    let first = note();
    let taken = noted(&spec()).expect("nothing changed");
    assert_eq!(
        (&taken.digest, &taken.inputs, taken.revision),
        (&first.digest, &first.inputs, first.revision)
    );

    // Another cluster's writes are not among its reads.
    f.cluster("other", "UTC", json!({}), values("x", None))
        .await;
    assert!(noted(&spec()).is_some(), "unrelated writes");

    // Another spec is computed again.
    let mut relabelled = spec();
    relabelled.labels.insert("ring".into(), "late".into());
    assert!(noted(&relabelled).is_none(), "another spec");

    // A macro defined in its project: a list the render read has grown.
    f.ok(
        Method::PUT,
        &format!("{P}/macros/noted_test"),
        Some(json!({"spec": {"value": "v"}})),
    )
    .await;
    assert!(noted(&spec()).is_none(), "a macro appeared");
    note();
    assert!(noted(&spec()).is_some(), "noted again");

    // Its values changed: the render is another one.
    f.ok(
        Method::PATCH,
        &format!("{P}/clusters/noted/variables"),
        Some(json!({"variables": {"aws-standard": {"greeting": "after"}}})),
    )
    .await;
    assert!(noted(&spec()).is_none(), "values changed");
    let r = store.read().unwrap();
    let now = clusters::desired_noted(&recent, &*r, &key, &spec()).unwrap();
    assert_ne!(now.digest, first.digest);
    assert_eq!(
        now.digest,
        clusters::desired_of(&*r, &key, &spec()).unwrap().digest
    );
}
