//! Bindings generated from `wit/` and the conversions between them and [`crate::types`].
//!
//! One `bindgen!` for the `simulator` world, which is the provider world plus the simulated
//! cloud: plain providers use only its `operations` export and `log` import, so the generated
//! types are shared by both kinds of component.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "fleetplane:simulator/simulator",
    exports: { default: async },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
    },
});

use crate::types as t;
use fleetplane::provider::types as w;

/// The exported `operations` interface of a provider component.
pub use exports::fleetplane::provider::operations::GuestIndices as OperationsIndices;

impl From<&t::ClusterRef> for w::ClusterRef {
    fn from(c: &t::ClusterRef) -> Self {
        w::ClusterRef {
            id: c.id.clone(),
            name: c.name.clone(),
            region: c.region.clone(),
        }
    }
}

impl From<w::ClusterRef> for t::ClusterRef {
    fn from(c: w::ClusterRef) -> Self {
        t::ClusterRef {
            id: c.id,
            name: c.name,
            region: c.region,
        }
    }
}

impl From<t::LayerKind> for w::LayerKind {
    fn from(k: t::LayerKind) -> Self {
        match k {
            t::LayerKind::Os => w::LayerKind::Os,
            t::LayerKind::K8s => w::LayerKind::K8s,
            t::LayerKind::Cni => w::LayerKind::Cni,
            t::LayerKind::Csi => w::LayerKind::Csi,
            t::LayerKind::Addon => w::LayerKind::Addon,
        }
    }
}

impl From<w::LayerKind> for t::LayerKind {
    fn from(k: w::LayerKind) -> Self {
        match k {
            w::LayerKind::Os => t::LayerKind::Os,
            w::LayerKind::K8s => t::LayerKind::K8s,
            w::LayerKind::Cni => t::LayerKind::Cni,
            w::LayerKind::Csi => t::LayerKind::Csi,
            w::LayerKind::Addon => t::LayerKind::Addon,
        }
    }
}

impl From<&t::ClusterSpec> for w::ClusterSpec {
    fn from(s: &t::ClusterSpec) -> Self {
        w::ClusterSpec {
            cluster: (&s.cluster).into(),
            cloud_type: s.cloud_type.clone(),
            labels: s.labels.clone(),
            node_pools: s
                .node_pools
                .iter()
                .map(|p| w::NodePool {
                    name: p.name.clone(),
                    control_plane: p.control_plane,
                    count: p.count,
                    instance_type: p.instance_type.clone(),
                })
                .collect(),
            os_image: s.os_image.clone(),
            kubernetes_version: s.kubernetes_version.clone(),
            layers: s
                .layers
                .iter()
                .map(|l| w::RenderedLayer {
                    name: l.name.clone(),
                    layer: l.layer.into(),
                    pack: l.pack.clone(),
                    version: l.version.clone(),
                    values: l.values.clone(),
                })
                .collect(),
            revision: s.revision.clone(),
        }
    }
}

impl From<w::ClusterSpec> for t::ClusterSpec {
    fn from(s: w::ClusterSpec) -> Self {
        t::ClusterSpec {
            cluster: s.cluster.into(),
            cloud_type: s.cloud_type,
            labels: s.labels,
            node_pools: s
                .node_pools
                .into_iter()
                .map(|p| t::NodePool {
                    name: p.name,
                    control_plane: p.control_plane,
                    count: p.count,
                    instance_type: p.instance_type,
                })
                .collect(),
            os_image: s.os_image,
            kubernetes_version: s.kubernetes_version,
            layers: s
                .layers
                .into_iter()
                .map(|l| t::RenderedLayer {
                    name: l.name,
                    layer: l.layer.into(),
                    pack: l.pack,
                    version: l.version,
                    values: l.values,
                })
                .collect(),
            revision: s.revision,
        }
    }
}

impl From<w::ProviderError> for t::ProviderError {
    fn from(e: w::ProviderError) -> Self {
        match e {
            w::ProviderError::InvalidConfig(problems) => t::ProviderError::InvalidConfig {
                problems: problems
                    .into_iter()
                    .map(|p| t::FieldProblem {
                        field: p.field,
                        message: p.message,
                    })
                    .collect(),
            },
            w::ProviderError::NotFound(message) => t::ProviderError::NotFound { message },
            w::ProviderError::Conflict(message) => t::ProviderError::Conflict { message },
            w::ProviderError::Throttled(d) => t::ProviderError::Throttled {
                retry_after_ms: d.retry_after_ms,
                message: d.message,
            },
            w::ProviderError::Transient(message) => t::ProviderError::Transient { message },
            w::ProviderError::Permanent(message) => t::ProviderError::Permanent { message },
        }
    }
}

impl From<&t::ProviderError> for w::ProviderError {
    fn from(e: &t::ProviderError) -> Self {
        match e {
            t::ProviderError::InvalidConfig { problems } => w::ProviderError::InvalidConfig(
                problems
                    .iter()
                    .map(|p| w::InvalidConfigDetail {
                        field: p.field.clone(),
                        message: p.message.clone(),
                    })
                    .collect(),
            ),
            t::ProviderError::NotFound { message } => w::ProviderError::NotFound(message.clone()),
            t::ProviderError::Conflict { message } => w::ProviderError::Conflict(message.clone()),
            t::ProviderError::Throttled {
                retry_after_ms,
                message,
            } => w::ProviderError::Throttled(w::ThrottledDetail {
                retry_after_ms: *retry_after_ms,
                message: message.clone(),
            }),
            t::ProviderError::Transient { message } => w::ProviderError::Transient(message.clone()),
            t::ProviderError::Permanent { message } => w::ProviderError::Permanent(message.clone()),
        }
    }
}

impl From<w::Operation> for t::Operation {
    fn from(o: w::Operation) -> Self {
        t::Operation {
            id: o.id,
            kind: match o.kind {
                w::OperationKind::Create => t::OperationKind::Create,
                w::OperationKind::Update => t::OperationKind::Update,
                w::OperationKind::Delete => t::OperationKind::Delete,
            },
            cluster: o.cluster.into(),
            state: match o.state {
                w::OperationState::Running => t::OperationState::Running,
                w::OperationState::Succeeded => t::OperationState::Succeeded,
                w::OperationState::Failed => t::OperationState::Failed,
            },
            progress: o.progress.min(100),
            message: o.message,
            error: o.error.map(Into::into),
            poll_after_ms: o.poll_after_ms,
        }
    }
}

impl From<&t::Operation> for w::Operation {
    fn from(o: &t::Operation) -> Self {
        w::Operation {
            id: o.id.clone(),
            kind: match o.kind {
                t::OperationKind::Create => w::OperationKind::Create,
                t::OperationKind::Update => w::OperationKind::Update,
                t::OperationKind::Delete => w::OperationKind::Delete,
            },
            cluster: (&o.cluster).into(),
            state: match o.state {
                t::OperationState::Running => w::OperationState::Running,
                t::OperationState::Succeeded => w::OperationState::Succeeded,
                t::OperationState::Failed => w::OperationState::Failed,
            },
            progress: o.progress,
            message: o.message.clone(),
            error: o.error.as_ref().map(Into::into),
            poll_after_ms: o.poll_after_ms,
        }
    }
}

fn cluster_phase_to_host(p: w::ClusterPhase) -> t::ClusterPhase {
    match p {
        w::ClusterPhase::Pending => t::ClusterPhase::Pending,
        w::ClusterPhase::Provisioning => t::ClusterPhase::Provisioning,
        w::ClusterPhase::Running => t::ClusterPhase::Running,
        w::ClusterPhase::Updating => t::ClusterPhase::Updating,
        w::ClusterPhase::Deleting => t::ClusterPhase::Deleting,
        w::ClusterPhase::Deleted => t::ClusterPhase::Deleted,
        w::ClusterPhase::Failed => t::ClusterPhase::Failed,
    }
}

fn cluster_phase_to_wit(p: t::ClusterPhase) -> w::ClusterPhase {
    match p {
        t::ClusterPhase::Pending => w::ClusterPhase::Pending,
        t::ClusterPhase::Provisioning => w::ClusterPhase::Provisioning,
        t::ClusterPhase::Running => w::ClusterPhase::Running,
        t::ClusterPhase::Updating => w::ClusterPhase::Updating,
        t::ClusterPhase::Deleting => w::ClusterPhase::Deleting,
        t::ClusterPhase::Deleted => w::ClusterPhase::Deleted,
        t::ClusterPhase::Failed => w::ClusterPhase::Failed,
    }
}

fn node_phase_to_host(p: w::NodePhase) -> t::NodePhase {
    match p {
        w::NodePhase::Provisioning => t::NodePhase::Provisioning,
        w::NodePhase::Ready => t::NodePhase::Ready,
        w::NodePhase::Draining => t::NodePhase::Draining,
        w::NodePhase::Deleting => t::NodePhase::Deleting,
        w::NodePhase::Failed => t::NodePhase::Failed,
    }
}

fn node_phase_to_wit(p: t::NodePhase) -> w::NodePhase {
    match p {
        t::NodePhase::Provisioning => w::NodePhase::Provisioning,
        t::NodePhase::Ready => w::NodePhase::Ready,
        t::NodePhase::Draining => w::NodePhase::Draining,
        t::NodePhase::Deleting => w::NodePhase::Deleting,
        t::NodePhase::Failed => w::NodePhase::Failed,
    }
}

fn health_to_host(h: w::Health) -> t::Health {
    match h {
        w::Health::Unknown => t::Health::Unknown,
        w::Health::Healthy => t::Health::Healthy,
        w::Health::Degraded => t::Health::Degraded,
        w::Health::Unhealthy => t::Health::Unhealthy,
    }
}

fn health_to_wit(h: t::Health) -> w::Health {
    match h {
        t::Health::Unknown => w::Health::Unknown,
        t::Health::Healthy => w::Health::Healthy,
        t::Health::Degraded => w::Health::Degraded,
        t::Health::Unhealthy => w::Health::Unhealthy,
    }
}

impl From<w::ObservedState> for t::ObservedState {
    fn from(s: w::ObservedState) -> Self {
        t::ObservedState {
            cluster: s.cluster.into(),
            phase: cluster_phase_to_host(s.phase),
            nodes: s
                .nodes
                .into_iter()
                .map(|n| t::Node {
                    name: n.name,
                    pool: n.pool,
                    instance_type: n.instance_type,
                    os_image: n.os_image,
                    kubernetes_version: n.kubernetes_version,
                    phase: node_phase_to_host(n.phase),
                })
                .collect(),
            endpoint: s.endpoint,
            conditions: s
                .conditions
                .into_iter()
                .map(|c| t::Condition {
                    kind: c.kind,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                    last_transition_ms: c.last_transition_ms,
                })
                .collect(),
            events: s
                .events
                .into_iter()
                .map(|e| t::Event {
                    at_ms: e.at_ms,
                    reason: e.reason,
                    message: e.message,
                })
                .collect(),
            applied_stack: s
                .applied_stack
                .into_iter()
                .map(|l| t::AppliedLayer {
                    name: l.name,
                    layer: l.layer.into(),
                    pack: l.pack,
                    version: l.version,
                })
                .collect(),
            applied_revision: s.applied_revision,
            health: health_to_host(s.health),
        }
    }
}

impl From<&t::ObservedState> for w::ObservedState {
    fn from(s: &t::ObservedState) -> Self {
        w::ObservedState {
            cluster: (&s.cluster).into(),
            phase: cluster_phase_to_wit(s.phase),
            nodes: s
                .nodes
                .iter()
                .map(|n| w::Node {
                    name: n.name.clone(),
                    pool: n.pool.clone(),
                    instance_type: n.instance_type.clone(),
                    os_image: n.os_image.clone(),
                    kubernetes_version: n.kubernetes_version.clone(),
                    phase: node_phase_to_wit(n.phase),
                })
                .collect(),
            endpoint: s.endpoint.clone(),
            conditions: s
                .conditions
                .iter()
                .map(|c| w::Condition {
                    kind: c.kind.clone(),
                    status: c.status,
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_ms: c.last_transition_ms,
                })
                .collect(),
            events: s
                .events
                .iter()
                .map(|e| w::Event {
                    at_ms: e.at_ms,
                    reason: e.reason.clone(),
                    message: e.message.clone(),
                })
                .collect(),
            applied_stack: s
                .applied_stack
                .iter()
                .map(|l| w::AppliedLayer {
                    name: l.name.clone(),
                    layer: l.layer.into(),
                    pack: l.pack.clone(),
                    version: l.version.clone(),
                })
                .collect(),
            applied_revision: s.applied_revision.clone(),
            health: health_to_wit(s.health),
        }
    }
}

impl From<w::AccountInfo> for t::AccountInfo {
    fn from(a: w::AccountInfo) -> Self {
        t::AccountInfo {
            identity: a.identity,
            regions: a.regions,
        }
    }
}

/// The WIT `account` record for a call. The only place secrets are exposed.
pub(crate) fn account_to_wit(a: &t::AccountContext) -> w::Account {
    w::Account {
        name: a.name.clone(),
        config: a.config.to_string(),
        secrets: a
            .secrets
            .iter()
            .map(|(name, value)| w::Secret {
                name: name.clone(),
                value: value.expose().to_string(),
            })
            .collect(),
    }
}
