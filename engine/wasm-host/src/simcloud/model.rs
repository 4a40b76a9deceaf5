//! The simulated cloud's pure model: a cluster record and its state at any instant.
//!
//! A record holds the cluster as it was when its current operation started (`base`) and the
//! operation's plan: a list of timed steps. [`project`] computes, from the record and `now`
//! alone, which steps have completed and so the cluster's phase, machines, conditions, events
//! and the operation's progress. Nothing runs per cluster between calls; that is what lets one
//! process hold 100,000 clusters.

use serde::{Deserialize, Serialize};

use crate::types::{
    AppliedLayer, ClusterPhase, ClusterRef, ClusterSpec, Condition, Event, Health, LayerKind, Node,
    NodePhase, ObservedState, Operation, OperationKind, OperationState, ProviderError,
};

/// Events kept per cluster.
pub(crate) const MAX_EVENTS: usize = 20;
/// Finished operations remembered per cluster (for `poll` of an older operation).
pub(crate) const MAX_HISTORY: usize = 8;

/// Durations at `timeScale` 1.0, in milliseconds: provisioning is 60 s, one machine
/// replacement 20 s.
pub(crate) mod durations {
    pub const NETWORK: u64 = 10_000;
    pub const CONTROL_PLANE: u64 = 20_000;
    pub const MACHINES: u64 = 25_000;
    pub const HEALTH_CHECK: u64 = 5_000;
    pub const REPLACE_ONE: u64 = 20_000;
    pub const APPLY_LAYERS: u64 = 10_000;
    pub const SCALE: u64 = 15_000;
    pub const DRAIN: u64 = 10_000;
    pub const TEAR_DOWN: u64 = 10_000;
}

/// Faults armed on a cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Faults {
    /// The (next) create fails while bringing up machines.
    pub fail_provisioning: bool,
    /// The next update fails at its first step.
    pub fail_next_update: bool,
    /// The health check after the next update reports the cluster unhealthy.
    pub unhealthy_after_update: bool,
}

/// One fault to inject through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Fault {
    /// Provisioning fails.
    FailProvisioning,
    /// The next update fails.
    FailNextUpdate,
    /// The cluster turns unhealthy after the next update.
    UnhealthyAfterUpdate,
}

/// Labels that arm faults when a cluster is created or first carries them on an update.
pub const FAULT_LABELS: [(&str, Fault); 3] = [
    (
        "simulator.fleetplane.io/fail-provisioning",
        Fault::FailProvisioning,
    ),
    (
        "simulator.fleetplane.io/fail-next-update",
        Fault::FailNextUpdate,
    ),
    (
        "simulator.fleetplane.io/unhealthy-after-update",
        Fault::UnhealthyAfterUpdate,
    ),
];

impl Faults {
    pub(crate) fn arm(&mut self, fault: Fault) {
        match fault {
            Fault::FailProvisioning => self.fail_provisioning = true,
            Fault::FailNextUpdate => self.fail_next_update = true,
            Fault::UnhealthyAfterUpdate => self.unhealthy_after_update = true,
        }
    }

    /// Arms the faults whose label is in `labels` (value `true`) and not in `previous`.
    pub(crate) fn arm_from_labels(
        &mut self,
        labels: &[(String, String)],
        previous: &[(String, String)],
    ) {
        let on = |set: &[(String, String)], key: &str| {
            set.iter()
                .any(|(k, v)| k == key && v.eq_ignore_ascii_case("true"))
        };
        for (key, fault) in FAULT_LABELS {
            if on(labels, key) && !on(previous, key) {
                self.arm(fault);
            }
        }
    }
}

/// A machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SimNode {
    pub name: String,
    pub instance_type: String,
    pub os_image: String,
    pub kubernetes_version: String,
}

/// A node pool and its machines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Pool {
    pub name: String,
    pub control_plane: bool,
    pub nodes: Vec<SimNode>,
    pub next_serial: u32,
}

/// The cluster between operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Snapshot {
    pub phase: ClusterPhase,
    pub pools: Vec<Pool>,
    pub stack: Vec<AppliedLayer>,
    pub revision: Option<String>,
    pub health: Health,
    pub endpoint: Option<String>,
    pub conditions: Vec<Condition>,
}

impl Snapshot {
    pub(crate) fn empty() -> Self {
        Snapshot {
            phase: ClusterPhase::Pending,
            pools: Vec::new(),
            stack: Vec::new(),
            revision: None,
            health: Health::Unknown,
            endpoint: None,
            conditions: Vec::new(),
        }
    }

    fn set_condition(&mut self, kind: &str, status: bool, reason: &str, message: &str, at: u64) {
        match self.conditions.iter_mut().find(|c| c.kind == kind) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_ms = at;
                }
                c.status = status;
                c.reason = reason.to_string();
                c.message = message.to_string();
            }
            None => self.conditions.push(Condition {
                kind: kind.to_string(),
                status,
                reason: reason.to_string(),
                message: message.to_string(),
                last_transition_ms: at,
            }),
        }
    }
}

/// What an operation converges to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Target {
    pub pools: Vec<crate::types::NodePool>,
    pub os_image: String,
    pub kubernetes_version: String,
    pub stack: Vec<AppliedLayer>,
    pub revision: String,
}

impl Target {
    pub(crate) fn of(spec: &ClusterSpec) -> Self {
        Target {
            pools: spec.node_pools.clone(),
            os_image: spec.os_image.clone(),
            kubernetes_version: spec.kubernetes_version.clone(),
            stack: spec
                .layers
                .iter()
                .map(|l| AppliedLayer {
                    name: l.name.clone(),
                    layer: l.layer,
                    pack: l.pack.clone(),
                    version: l.version.clone(),
                })
                .collect(),
            revision: spec.revision.clone(),
        }
    }
}

/// One timed step of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "round")]
pub(crate) enum Step {
    Network,
    ControlPlane,
    Machines,
    /// Replace the `n`-th machine of every pool (one node per pool at a time).
    Replace(u32),
    ApplyLayers,
    Scale,
    HealthCheck,
    Drain,
    TearDown,
}

impl Step {
    fn base_duration(self) -> u64 {
        use durations::*;
        match self {
            Step::Network => NETWORK,
            Step::ControlPlane => CONTROL_PLANE,
            Step::Machines => MACHINES,
            Step::Replace(_) => REPLACE_ONE,
            Step::ApplyLayers => APPLY_LAYERS,
            Step::Scale => SCALE,
            Step::HealthCheck => HEALTH_CHECK,
            Step::Drain => DRAIN,
            Step::TearDown => TEAR_DOWN,
        }
    }

    fn describe(self) -> String {
        match self {
            Step::Network => "creating network".into(),
            Step::ControlPlane => "bootstrapping the control plane".into(),
            Step::Machines => "provisioning machines".into(),
            Step::Replace(n) => format!("replacing machine {} of each pool", n + 1),
            Step::ApplyLayers => "applying layers in place".into(),
            Step::Scale => "scaling node pools".into(),
            Step::HealthCheck => "checking cluster health".into(),
            Step::Drain => "draining and deleting machines".into(),
            Step::TearDown => "tearing down the network".into(),
        }
    }
}

/// A planned step with its scaled duration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PlannedStep {
    pub step: Step,
    pub duration_ms: u64,
}

/// The cluster's current (or last) operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OpRecord {
    pub id: String,
    pub kind: OperationKind,
    pub key: String,
    pub fingerprint: String,
    pub started_ms: u64,
    pub steps: Vec<PlannedStep>,
    pub target: Option<Target>,
    /// The step at whose end the operation fails (an injected fault).
    pub fail_at: Option<usize>,
    pub unhealthy_after: bool,
}

/// A finished operation, for `poll` after a newer one started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OpOutcome {
    pub id: String,
    pub kind: OperationKind,
    pub state: OperationState,
    pub message: String,
    pub error: Option<ProviderError>,
}

/// Everything the simulated cloud keeps about one cluster (stored as versioned JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Record {
    /// Format version of this record.
    pub v: u32,
    pub account: String,
    pub cluster: ClusterRef,
    pub labels: Vec<(String, String)>,
    pub base: Snapshot,
    pub events: Vec<Event>,
    pub current: Option<OpRecord>,
    pub history: Vec<OpOutcome>,
    pub faults: Faults,
}

pub(crate) const RECORD_VERSION: u32 = 1;

/// The plan of an operation, durations scaled by `time_scale`.
pub(crate) fn plan(
    kind: OperationKind,
    base: &Snapshot,
    target: Option<&Target>,
    replace_machines: bool,
    time_scale: f64,
) -> Vec<PlannedStep> {
    let mut steps = Vec::new();
    match kind {
        OperationKind::Create => {
            steps.extend([
                Step::Network,
                Step::ControlPlane,
                Step::Machines,
                Step::HealthCheck,
            ]);
        }
        OperationKind::Update => {
            if replace_machines {
                let rounds = base.pools.iter().map(|p| p.nodes.len()).max().unwrap_or(0);
                steps.extend((0..rounds as u32).map(Step::Replace));
            }
            steps.push(Step::ApplyLayers);
            if let Some(t) = target
                && needs_scaling(base, t)
            {
                steps.push(Step::Scale);
            }
            steps.push(Step::HealthCheck);
        }
        OperationKind::Delete => steps.extend([Step::Drain, Step::TearDown]),
    }
    steps
        .into_iter()
        .map(|step| PlannedStep {
            step,
            duration_ms: (step.base_duration() as f64 * time_scale).round() as u64,
        })
        .collect()
}

fn needs_scaling(base: &Snapshot, t: &Target) -> bool {
    t.pools.len() != base.pools.len()
        || t.pools.iter().any(|tp| {
            base.pools
                .iter()
                .find(|p| p.name == tp.name)
                .is_none_or(|p| p.nodes.len() != tp.count as usize)
        })
}

/// The cluster and its current operation at `now`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct View {
    pub snapshot: Snapshot,
    /// Node phases of machines in transition, by node name.
    pub transitional: Vec<(String, NodePhase)>,
    /// Machines being created by the step in progress.
    pub incoming: Vec<(String, SimNode)>,
    pub events: Vec<Event>,
    pub op: Option<OpView>,
}

/// The operation part of a [`View`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OpView {
    pub state: OperationState,
    pub progress: u8,
    pub message: String,
    pub error: Option<ProviderError>,
    pub poll_after_ms: u64,
}

fn node_name(cluster: &ClusterRef, pool: &Pool) -> String {
    format!("{}-{}-{}", cluster.name, pool.name, pool.next_serial)
}

fn new_node(cluster: &ClusterRef, pool: &mut Pool, instance_type: &str, t: &Target) -> SimNode {
    let node = SimNode {
        name: node_name(cluster, pool),
        instance_type: instance_type.to_string(),
        os_image: t.os_image.clone(),
        kubernetes_version: t.kubernetes_version.clone(),
    };
    pool.next_serial += 1;
    node
}

fn instance_type_of(t: &Target, pool: &str) -> String {
    t.pools
        .iter()
        .find(|p| p.name == pool)
        .map(|p| p.instance_type.clone())
        .unwrap_or_default()
}

/// Applies a completed step to the snapshot and returns its event.
fn complete(
    step: Step,
    snap: &mut Snapshot,
    cluster: &ClusterRef,
    op: &OpRecord,
    at: u64,
) -> (String, String) {
    let empty = Target {
        pools: Vec::new(),
        os_image: String::new(),
        kubernetes_version: String::new(),
        stack: Vec::new(),
        revision: String::new(),
    };
    let t = op.target.as_ref().unwrap_or(&empty);
    match step {
        Step::Network => {
            snap.set_condition(
                "NetworkReady",
                true,
                "NetworkCreated",
                "VPC and subnets ready",
                at,
            );
            (
                "NetworkReady".into(),
                format!("network for {} created in {}", cluster.name, cluster.region),
            )
        }
        Step::ControlPlane => {
            let short: String = cluster
                .id
                .chars()
                .filter(|c| c.is_ascii_hexdigit())
                .take(8)
                .collect();
            snap.endpoint = Some(format!(
                "https://{}-{short}.{}.sim.fleetplane.local:6443",
                cluster.name, cluster.region
            ));
            snap.set_condition(
                "ControlPlaneReady",
                true,
                "ControlPlaneUp",
                "API server is serving",
                at,
            );
            ("ControlPlaneReady".into(), "control plane is up".into())
        }
        Step::Machines => {
            snap.pools = t
                .pools
                .iter()
                .map(|p| {
                    let mut pool = Pool {
                        name: p.name.clone(),
                        control_plane: p.control_plane,
                        nodes: Vec::new(),
                        next_serial: 0,
                    };
                    for _ in 0..p.count {
                        let n = new_node(cluster, &mut pool, &p.instance_type, t);
                        pool.nodes.push(n);
                    }
                    pool
                })
                .collect();
            let count: usize = snap.pools.iter().map(|p| p.nodes.len()).sum();
            snap.set_condition(
                "MachinesReady",
                true,
                "MachinesProvisioned",
                "every machine joined",
                at,
            );
            (
                "MachinesReady".into(),
                format!("{count} machines joined the cluster"),
            )
        }
        Step::Replace(n) => {
            let mut replaced = Vec::new();
            for pool in &mut snap.pools {
                let idx = n as usize;
                if idx < pool.nodes.len() {
                    let instance_type = {
                        let it = instance_type_of(t, &pool.name);
                        if it.is_empty() {
                            pool.nodes[idx].instance_type.clone()
                        } else {
                            it
                        }
                    };
                    let fresh = new_node(cluster, pool, &instance_type, t);
                    let old = std::mem::replace(&mut pool.nodes[idx], fresh);
                    replaced.push(format!("{} → {}", old.name, pool.nodes[idx].name));
                }
            }
            (
                "MachineReplaced".into(),
                format!("replaced {}", replaced.join(", ")),
            )
        }
        Step::ApplyLayers => {
            snap.stack = t.stack.clone();
            (
                "LayersApplied".into(),
                format!("{} layers applied", t.stack.len()),
            )
        }
        Step::Scale => {
            let mut pools = Vec::new();
            for tp in &t.pools {
                let mut pool = snap
                    .pools
                    .iter()
                    .find(|p| p.name == tp.name)
                    .cloned()
                    .unwrap_or(Pool {
                        name: tp.name.clone(),
                        control_plane: tp.control_plane,
                        nodes: Vec::new(),
                        next_serial: 0,
                    });
                while pool.nodes.len() > tp.count as usize {
                    pool.nodes.pop();
                }
                while pool.nodes.len() < tp.count as usize {
                    let n = new_node(cluster, &mut pool, &tp.instance_type, t);
                    pool.nodes.push(n);
                }
                pools.push(pool);
            }
            snap.pools = pools;
            ("PoolsScaled".into(), "node pools match the spec".into())
        }
        Step::HealthCheck => {
            if op.unhealthy_after {
                snap.health = Health::Unhealthy;
                snap.set_condition(
                    "Healthy",
                    false,
                    "HealthCheckFailed",
                    "simulated fault: workloads are failing",
                    at,
                );
                ("HealthCheckFailed".into(), "health check failed".into())
            } else {
                snap.health = Health::Healthy;
                snap.set_condition(
                    "Healthy",
                    true,
                    "HealthCheckPassed",
                    "all checks passed",
                    at,
                );
                ("HealthCheckPassed".into(), "health check passed".into())
            }
        }
        Step::Drain => {
            snap.pools.clear();
            (
                "MachinesDeleted".into(),
                "every machine drained and deleted".into(),
            )
        }
        Step::TearDown => {
            snap.endpoint = None;
            snap.conditions.clear();
            snap.health = Health::Unknown;
            ("NetworkDeleted".into(), "network deleted".into())
        }
    }
}

fn push_event(events: &mut Vec<Event>, at_ms: u64, reason: &str, message: String) {
    events.push(Event {
        at_ms,
        reason: reason.to_string(),
        message,
    });
    if events.len() > MAX_EVENTS {
        let excess = events.len() - MAX_EVENTS;
        events.drain(..excess);
    }
}

fn running_phase(kind: OperationKind) -> ClusterPhase {
    match kind {
        OperationKind::Create => ClusterPhase::Provisioning,
        OperationKind::Update => ClusterPhase::Updating,
        OperationKind::Delete => ClusterPhase::Deleting,
    }
}

/// The cluster and its current operation at `now`.
pub(crate) fn project(rec: &Record, now: u64) -> View {
    let mut snap = rec.base.clone();
    let mut events = rec.events.clone();
    let mut transitional = Vec::new();
    let mut incoming = Vec::new();
    let Some(op) = &rec.current else {
        return View {
            snapshot: snap,
            transitional,
            incoming,
            events,
            op: None,
        };
    };
    snap.phase = running_phase(op.kind);
    let kind_name = match op.kind {
        OperationKind::Create => "Provisioning",
        OperationKind::Update => "Update",
        OperationKind::Delete => "Deletion",
    };
    push_event(
        &mut events,
        op.started_ms,
        &format!("{kind_name}Started"),
        format!("operation {} started", op.id),
    );
    let total: u64 = op.steps.iter().map(|s| s.duration_ms).sum::<u64>().max(1);
    let mut t = op.started_ms;
    for (i, planned) in op.steps.iter().enumerate() {
        let end = t.saturating_add(planned.duration_ms);
        if now < end {
            // In progress: show machines in transition.
            match planned.step {
                Step::Replace(n) => {
                    let target = op.target.as_ref();
                    for pool in &mut snap.pools {
                        if let Some(old) = pool.nodes.get(n as usize) {
                            transitional.push((old.name.clone(), NodePhase::Draining));
                            if let Some(t) = target {
                                let it = instance_type_of(t, &pool.name);
                                let it = if it.is_empty() {
                                    old.instance_type.clone()
                                } else {
                                    it
                                };
                                incoming.push((
                                    pool.name.clone(),
                                    new_node(&rec.cluster, &mut pool.clone(), &it, t),
                                ));
                            }
                        }
                    }
                }
                Step::Machines => {
                    if let Some(t) = &op.target {
                        for p in &t.pools {
                            let mut pool = Pool {
                                name: p.name.clone(),
                                control_plane: p.control_plane,
                                nodes: Vec::new(),
                                next_serial: 0,
                            };
                            for _ in 0..p.count {
                                let n = new_node(&rec.cluster, &mut pool, &p.instance_type, t);
                                incoming.push((p.name.clone(), n));
                            }
                        }
                    }
                }
                Step::Drain => {
                    for pool in &snap.pools {
                        for n in &pool.nodes {
                            transitional.push((n.name.clone(), NodePhase::Deleting));
                        }
                    }
                }
                _ => {}
            }
            let done = now.saturating_sub(op.started_ms);
            let progress = ((done.saturating_mul(100)) / total).min(99) as u8;
            let poll_after_ms = (end - now).clamp(100, 5_000);
            return View {
                snapshot: snap,
                transitional,
                incoming,
                events,
                op: Some(OpView {
                    state: OperationState::Running,
                    progress,
                    message: planned.step.describe(),
                    error: None,
                    poll_after_ms,
                }),
            };
        }
        if op.fail_at == Some(i) {
            let (reason, message) = match op.kind {
                OperationKind::Create => (
                    "ProvisioningFailed",
                    "simulated fault: machines failed to provision",
                ),
                _ => ("UpdateFailed", "simulated fault: the update failed"),
            };
            snap.phase = ClusterPhase::Failed;
            snap.set_condition("Ready", false, reason, message, end);
            push_event(&mut events, end, reason, message.to_string());
            let done: u64 = op.steps[..=i].iter().map(|s| s.duration_ms).sum();
            return View {
                snapshot: snap,
                transitional,
                incoming,
                events,
                op: Some(OpView {
                    state: OperationState::Failed,
                    progress: ((done * 100) / total).min(100) as u8,
                    message: message.to_string(),
                    error: Some(ProviderError::Permanent {
                        message: message.to_string(),
                    }),
                    poll_after_ms: 0,
                }),
            };
        }
        let (reason, message) = complete(planned.step, &mut snap, &rec.cluster, op, end);
        push_event(&mut events, end, &reason, message);
        t = end;
    }
    let message = match op.kind {
        OperationKind::Delete => {
            snap.phase = ClusterPhase::Deleted;
            "cluster deleted"
        }
        _ => {
            snap.phase = ClusterPhase::Running;
            if let Some(target) = &op.target {
                snap.revision = Some(target.revision.clone());
                snap.stack = target.stack.clone();
            }
            snap.set_condition(
                "Ready",
                true,
                "Converged",
                "the cluster matches its spec",
                t,
            );
            "cluster matches its spec"
        }
    };
    push_event(
        &mut events,
        t,
        &format!("{kind_name}Succeeded"),
        format!("operation {} succeeded", op.id),
    );
    View {
        snapshot: snap,
        transitional,
        incoming,
        events,
        op: Some(OpView {
            state: OperationState::Succeeded,
            progress: 100,
            message: message.to_string(),
            error: None,
            poll_after_ms: 0,
        }),
    }
}

/// The provider-facing observed state of a view.
pub(crate) fn observed(rec: &Record, view: &View) -> ObservedState {
    let mut nodes = Vec::new();
    for pool in &view.snapshot.pools {
        for n in &pool.nodes {
            let phase = view
                .transitional
                .iter()
                .find(|(name, _)| *name == n.name)
                .map_or(NodePhase::Ready, |(_, p)| *p);
            nodes.push(Node {
                name: n.name.clone(),
                pool: pool.name.clone(),
                instance_type: n.instance_type.clone(),
                os_image: n.os_image.clone(),
                kubernetes_version: n.kubernetes_version.clone(),
                phase,
            });
        }
    }
    for (pool, n) in &view.incoming {
        nodes.push(Node {
            name: n.name.clone(),
            pool: pool.clone(),
            instance_type: n.instance_type.clone(),
            os_image: n.os_image.clone(),
            kubernetes_version: n.kubernetes_version.clone(),
            phase: NodePhase::Provisioning,
        });
    }
    ObservedState {
        cluster: rec.cluster.clone(),
        phase: view.snapshot.phase,
        nodes,
        endpoint: view.snapshot.endpoint.clone(),
        conditions: view.snapshot.conditions.clone(),
        events: view.events.clone(),
        applied_stack: view.snapshot.stack.clone(),
        applied_revision: view.snapshot.revision.clone(),
        health: view.snapshot.health,
    }
}

/// The provider-facing operation of the record's current operation.
pub(crate) fn operation(rec: &Record, op: &OpRecord, view: &OpView) -> Operation {
    Operation {
        id: op.id.clone(),
        kind: op.kind,
        cluster: rec.cluster.clone(),
        state: view.state,
        progress: view.progress,
        message: view.message.clone(),
        error: view.error.clone(),
        poll_after_ms: view.poll_after_ms,
    }
}

/// Whether a layer kind's change needs machines replaced (for callers that do not say).
pub fn replaces_machines(kind: LayerKind) -> bool {
    matches!(kind, LayerKind::Os | LayerKind::K8s)
}
