use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::types::{ClusterPhase, Health, LayerKind, NodePhase, NodePool, RenderedLayer};

fn spec(name: &str) -> ClusterSpec {
    let layer = |name: &str, layer, version: &str| RenderedLayer {
        name: name.into(),
        layer,
        pack: name.into(),
        version: version.into(),
        values: String::new(),
    };
    ClusterSpec {
        cluster: ClusterRef {
            id: format!("id-{name}"),
            name: name.into(),
            region: "sim-1".into(),
        },
        cloud_type: "aws".into(),
        labels: Vec::new(),
        node_pools: vec![
            NodePool {
                name: "cp".into(),
                control_plane: true,
                count: 1,
                instance_type: "m".into(),
            },
            NodePool {
                name: "w".into(),
                control_plane: false,
                count: 3,
                instance_type: "m".into(),
            },
        ],
        os_image: "ubuntu-22.04".into(),
        kubernetes_version: "1.32.0".into(),
        layers: vec![
            layer("ubuntu", LayerKind::Os, "22.04"),
            layer("kubernetes", LayerKind::K8s, "1.32.0"),
        ],
        revision: "r1".into(),
    }
}

fn cloud() -> (Arc<ManualClock>, SimCloud) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let cloud = SimCloud::in_memory(clock.clone()).unwrap();
    (clock, cloud)
}

#[test]
fn provisioning_progresses_lazily_through_its_phases() {
    let (clock, cloud) = cloud();
    let s = spec("a");
    let op = cloud.create("acct", 1.0, "k", s.clone()).unwrap();
    assert_eq!((op.state, op.progress), (OperationState::Running, 0));
    let steps = [
        (Duration::from_secs(5), ClusterPhase::Provisioning, 0, None),
        (
            Duration::from_secs(30),
            ClusterPhase::Provisioning,
            4,
            Some("provisioning machines"),
        ),
        (Duration::from_secs(25), ClusterPhase::Running, 4, None),
    ];
    for (advance, phase, nodes, message) in steps {
        clock.advance(advance);
        let state = cloud.describe("acct", &s.cluster).unwrap();
        assert_eq!(state.phase, phase);
        assert_eq!(state.nodes.len(), nodes);
        if let Some(m) = message {
            assert_eq!(cloud.operation("acct", &op.id).unwrap().message, m);
            assert!(
                state
                    .nodes
                    .iter()
                    .all(|n| n.phase == NodePhase::Provisioning)
            );
        }
    }
    let state = cloud.describe("acct", &s.cluster).unwrap();
    assert_eq!(state.applied_revision.as_deref(), Some("r1"));
    assert_eq!(state.health, Health::Healthy);
    assert!(state.endpoint.is_some());
    let reasons: Vec<&str> = state.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "ProvisioningStarted",
            "NetworkReady",
            "ControlPlaneReady",
            "MachinesReady",
            "HealthCheckPassed",
            "ProvisioningSucceeded"
        ]
    );
}

#[test]
fn machines_are_replaced_one_per_pool_at_a_time() {
    let (clock, cloud) = cloud();
    let s = spec("a");
    cloud.create("acct", 0.0, "k1", s.clone()).unwrap();
    let mut next = s.clone();
    next.kubernetes_version = "1.33.0".into();
    next.revision = "r2".into();
    cloud.update("acct", 1.0, "k2", next, true).unwrap();
    for round in 1..=3usize {
        clock.advance(Duration::from_secs(10));
        let mid = cloud.describe("acct", &s.cluster).unwrap();
        let draining = mid
            .nodes
            .iter()
            .filter(|n| n.phase == NodePhase::Draining)
            .count();
        // The control-plane pool has one machine: it is replaced in the first round only.
        assert_eq!(
            draining,
            if round == 1 { 2 } else { 1 },
            "round {round}: {:#?}",
            mid.nodes
        );
        clock.advance(Duration::from_secs(10));
        let after = cloud.describe("acct", &s.cluster).unwrap();
        let new = after
            .nodes
            .iter()
            .filter(|n| n.kubernetes_version == "1.33.0" && n.phase == NodePhase::Ready)
            .count();
        assert_eq!(new, round + 1, "round {round}");
    }
    clock.advance(Duration::from_secs(15));
    let done = cloud.describe("acct", &s.cluster).unwrap();
    assert_eq!(done.phase, ClusterPhase::Running);
    assert_eq!(done.applied_revision.as_deref(), Some("r2"));
    assert_eq!(done.nodes.len(), 4);
}

#[test]
fn in_place_updates_keep_machines_and_scale_pools() {
    let (_clock, cloud) = cloud();
    let s = spec("a");
    cloud.create("acct", 0.0, "k1", s.clone()).unwrap();
    let before: Vec<String> = cloud
        .describe("acct", &s.cluster)
        .unwrap()
        .nodes
        .into_iter()
        .map(|n| n.name)
        .collect();
    let mut next = s.clone();
    next.revision = "r2".into();
    next.node_pools[1].count = 4;
    let op = cloud.update("acct", 0.0, "k2", next, false).unwrap();
    assert_eq!(op.state, OperationState::Succeeded);
    let after: Vec<String> = cloud
        .describe("acct", &s.cluster)
        .unwrap()
        .nodes
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(after.len(), 5);
    assert!(before.iter().all(|n| after.contains(n)));
}

#[test]
fn mutations_are_idempotent_by_key() {
    let (_clock, cloud) = cloud();
    let s = spec("a");
    let first = cloud.create("acct", 1.0, "k", s.clone()).unwrap();
    let again = cloud.create("acct", 1.0, "k", s.clone()).unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(cloud.cluster_count().unwrap(), 1);
    let mut other = s.clone();
    other.node_pools[1].count = 9;
    assert!(matches!(
        cloud.create("acct", 1.0, "k", other),
        Err(SimError::Conflict(_))
    ));
    assert!(matches!(
        cloud.create("acct", 1.0, "k-2", s.clone()),
        Err(SimError::Conflict(_))
    ));
    // Keys are per account.
    assert!(cloud.create("other", 1.0, "k", s).is_ok());
}

#[test]
fn updates_while_busy_conflict_and_delete_interrupts() {
    let (clock, cloud) = cloud();
    let s = spec("a");
    let create = cloud.create("acct", 1.0, "k1", s.clone()).unwrap();
    assert!(matches!(
        cloud.update("acct", 1.0, "k2", s.clone(), false),
        Err(SimError::Conflict(_))
    ));
    let delete = cloud.delete("acct", 1.0, "k3", &s.cluster).unwrap();
    let interrupted = cloud.operation("acct", &create.id).unwrap();
    assert_eq!(interrupted.state, OperationState::Failed);
    clock.advance(Duration::from_secs(20));
    assert_eq!(
        cloud.operation("acct", &delete.id).unwrap().state,
        OperationState::Succeeded
    );
    assert_eq!(
        cloud.describe("acct", &s.cluster).unwrap().phase,
        ClusterPhase::Deleted
    );
    // Deleting again, or deleting what never existed, succeeds.
    let unknown = ClusterRef {
        id: "nope".into(),
        name: "nope".into(),
        region: "sim-1".into(),
    };
    assert_eq!(
        cloud.delete("acct", 1.0, "k4", &unknown).unwrap().state,
        OperationState::Succeeded
    );
    assert!(matches!(
        cloud.update("acct", 1.0, "k5", s, false),
        Err(SimError::NotFound(_))
    ));
}

#[test]
fn faults_fire_deterministically_by_label_and_by_api() {
    let (_clock, cloud) = cloud();
    let mut s = spec("a");
    s.labels.push((
        "simulator.fleetplane.io/fail-provisioning".into(),
        "true".into(),
    ));
    let op = cloud.create("acct", 0.0, "k1", s.clone()).unwrap();
    assert_eq!(op.state, OperationState::Failed);
    assert_eq!(
        cloud.describe("acct", &s.cluster).unwrap().phase,
        ClusterPhase::Failed
    );
    // A repairing update succeeds.
    assert_eq!(
        cloud
            .update("acct", 0.0, "k2", s.clone(), false)
            .unwrap()
            .state,
        OperationState::Succeeded
    );

    cloud
        .inject_fault("acct", &s.cluster.id, Fault::FailNextUpdate)
        .unwrap();
    let failed = cloud.update("acct", 0.0, "k3", s.clone(), true).unwrap();
    assert_eq!(failed.state, OperationState::Failed);
    assert!(failed.error.is_some());
    assert_eq!(
        cloud
            .update("acct", 0.0, "k4", s.clone(), true)
            .unwrap()
            .state,
        OperationState::Succeeded
    );

    cloud
        .inject_fault("acct", &s.cluster.id, Fault::UnhealthyAfterUpdate)
        .unwrap();
    assert_eq!(
        cloud
            .update("acct", 0.0, "k5", s.clone(), false)
            .unwrap()
            .state,
        OperationState::Succeeded
    );
    assert_eq!(
        cloud.describe("acct", &s.cluster).unwrap().health,
        Health::Unhealthy
    );
    assert_eq!(
        cloud.faults("acct", &s.cluster.id).unwrap(),
        Faults::default()
    );
    assert!(matches!(
        cloud.inject_fault("acct", "nope", Fault::FailNextUpdate),
        Err(SimError::NotFound(_))
    ));
}

#[test]
fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("simcloud.redb");
    let clock = Arc::new(ManualClock::new(5_000));
    let s = spec("a");
    let op = {
        let cloud = SimCloud::open(&path, clock.clone()).unwrap();
        cloud.create("acct", 1.0, "k1", s.clone()).unwrap()
    };
    clock.advance(Duration::from_secs(61));
    let cloud = SimCloud::open(&path, clock).unwrap();
    assert_eq!(
        cloud.operation("acct", &op.id).unwrap().state,
        OperationState::Succeeded
    );
    assert_eq!(
        cloud.describe("acct", &s.cluster).unwrap().phase,
        ClusterPhase::Running
    );
    assert_eq!(
        cloud.create("acct", 1.0, "k1", s).unwrap().id,
        op.id,
        "keys survive too"
    );
}

#[test]
fn bad_requests_are_invalid() {
    let (_clock, cloud) = cloud();
    let mut s = spec("a");
    assert!(matches!(
        cloud.create("acct", f64::NAN, "k", s.clone()),
        Err(SimError::Invalid(_))
    ));
    assert!(matches!(
        cloud.create("acct", 1.0, "", s.clone()),
        Err(SimError::Invalid(_))
    ));
    s.node_pools[0].control_plane = false;
    assert!(matches!(
        cloud.create("acct", 1.0, "k", s),
        Err(SimError::Invalid(_))
    ));
}
