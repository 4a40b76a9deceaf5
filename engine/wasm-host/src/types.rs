//! The host-side records of the `fleetplane:provider` world, independent of wasmtime.
//!
//! These are what the workflow engine and the API see; `bindings.rs` converts them to and from
//! the generated WIT types. They serialise with serde (camelCase) so the engine can journal them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret value. `Debug`, `Display` and `Serialize` never show it: the only way to read it
/// is [`SecretValue::expose`], which the host calls when it hands the value to a component.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for SecretValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// The cloud account a call acts for: its name, configuration and secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountContext {
    /// The account name (also the key of the per-account concurrency limit).
    pub name: String,
    /// The configuration, a JSON object matching the manifest's account schema.
    pub config: serde_json::Value,
    /// Named secret values, passed to the component apart from the configuration.
    pub secrets: Vec<(String, SecretValue)>,
}

impl AccountContext {
    /// An account with no secrets.
    pub fn new(name: impl Into<String>, config: serde_json::Value) -> Self {
        AccountContext {
            name: name.into(),
            config,
            secrets: Vec::new(),
        }
    }

    /// Adds a secret.
    pub fn with_secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.secrets.push((name.into(), SecretValue::new(value)));
        self
    }
}

/// Identifies a cluster in the cloud.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRef {
    /// Fleetplane's immutable cluster id.
    pub id: String,
    /// The cluster name.
    pub name: String,
    /// The region.
    pub region: String,
}

/// One group of identical machines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePool {
    /// Pool name, unique in the cluster.
    pub name: String,
    /// Whether it runs the control plane.
    pub control_plane: bool,
    /// Machine count.
    pub count: u32,
    /// Machine type.
    pub instance_type: String,
}

/// The kind of layer a pack belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// Operating system.
    Os,
    /// Kubernetes.
    K8s,
    /// Network.
    Cni,
    /// Storage.
    Csi,
    /// Add-on.
    Addon,
}

/// One rendered layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedLayer {
    /// Layer name in the profile.
    pub name: String,
    /// Layer kind.
    pub layer: LayerKind,
    /// Pack name.
    pub pack: String,
    /// Pack version.
    pub version: String,
    /// YAML values, variables substituted.
    pub values: String,
}

/// The desired cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Which cluster.
    pub cluster: ClusterRef,
    /// Cloud type of the profiles.
    pub cloud_type: String,
    /// Labels.
    pub labels: Vec<(String, String)>,
    /// Node pools.
    pub node_pools: Vec<NodePool>,
    /// OS image (from the `os` layer).
    pub os_image: String,
    /// Kubernetes version (from the `k8s` layer).
    pub kubernetes_version: String,
    /// The rendered stack, in apply order.
    pub layers: Vec<RenderedLayer>,
    /// Opaque id of the rendered stack.
    pub revision: String,
}

/// A cluster phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClusterPhase {
    /// Accepted.
    Pending,
    /// Being built.
    Provisioning,
    /// Serving.
    Running,
    /// Changing.
    Updating,
    /// Being torn down.
    Deleting,
    /// Gone.
    Deleted,
    /// Failed.
    Failed,
}

/// A machine phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NodePhase {
    /// Booting.
    Provisioning,
    /// Ready.
    Ready,
    /// Draining.
    Draining,
    /// Being deleted.
    Deleting,
    /// Broken.
    Failed,
}

/// One machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Machine name.
    pub name: String,
    /// Its pool.
    pub pool: String,
    /// Machine type.
    pub instance_type: String,
    /// OS image.
    pub os_image: String,
    /// Kubernetes version.
    pub kubernetes_version: String,
    /// Phase.
    pub phase: NodePhase,
}

/// Cluster health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Health {
    /// Not checked.
    Unknown,
    /// All checks pass.
    Healthy,
    /// Serving with failures.
    Degraded,
    /// Not serving.
    Unhealthy,
}

/// A condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type.
    pub kind: String,
    /// Whether it holds.
    pub status: bool,
    /// Machine-readable reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// Last change, ms since the Unix epoch.
    pub last_transition_ms: u64,
}

/// An event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
    /// Machine-readable reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

/// A layer as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedLayer {
    /// Layer name.
    pub name: String,
    /// Layer kind.
    pub layer: LayerKind,
    /// Pack name.
    pub pack: String,
    /// Pack version.
    pub version: String,
}

/// What the cloud reports about a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedState {
    /// Which cluster.
    pub cluster: ClusterRef,
    /// Phase.
    pub phase: ClusterPhase,
    /// Machines.
    pub nodes: Vec<Node>,
    /// API endpoint.
    pub endpoint: Option<String>,
    /// Conditions.
    pub conditions: Vec<Condition>,
    /// Recent events, oldest first.
    pub events: Vec<Event>,
    /// Applied layers.
    pub applied_stack: Vec<AppliedLayer>,
    /// Revision fully applied.
    pub applied_revision: Option<String>,
    /// Last health check result.
    pub health: Health,
}

/// Kind of a long-running operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OperationKind {
    /// Create.
    Create,
    /// Update.
    Update,
    /// Delete.
    Delete,
}

/// State of a long-running operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OperationState {
    /// Poll again.
    Running,
    /// Done.
    Succeeded,
    /// Done, with `error`.
    Failed,
}

/// A long-running operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Provider's operation id.
    pub id: String,
    /// What it does.
    pub kind: OperationKind,
    /// On which cluster.
    pub cluster: ClusterRef,
    /// Where it stands.
    pub state: OperationState,
    /// 0..=100.
    pub progress: u8,
    /// Current step.
    pub message: String,
    /// Why it failed.
    pub error: Option<ProviderError>,
    /// Poll-again hint in ms.
    pub poll_after_ms: u64,
}

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldProblem {
    /// Field path.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A typed error returned by a provider (the WIT `provider-error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ProviderError {
    /// Bad configuration or spec; not retried.
    #[error("invalid configuration: {}", describe_problems(problems))]
    InvalidConfig {
        /// Every problem found.
        problems: Vec<FieldProblem>,
    },
    /// No such cluster or operation; not retried.
    #[error("not found: {message}")]
    NotFound {
        /// Details.
        message: String,
    },
    /// Conflicts with the cloud's state; not retried.
    #[error("conflict: {message}")]
    Conflict {
        /// Details.
        message: String,
    },
    /// Slow down; retried after `retry_after_ms`.
    #[error("throttled (retry after {retry_after_ms} ms): {message}")]
    Throttled {
        /// Minimum delay.
        retry_after_ms: u64,
        /// Details.
        message: String,
    },
    /// Temporary; retried with backoff.
    #[error("transient failure: {message}")]
    Transient {
        /// Details.
        message: String,
    },
    /// Will not get better; not retried.
    #[error("permanent failure: {message}")]
    Permanent {
        /// Details.
        message: String,
    },
}

fn describe_problems(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ProviderError {
    /// Whether the engine should retry the call.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Throttled { .. } | ProviderError::Transient { .. }
        )
    }

    /// The minimum delay before a retry, when the provider said so.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ProviderError::Throttled { retry_after_ms, .. } => {
                Some(std::time::Duration::from_millis(*retry_after_ms))
            }
            _ => None,
        }
    }

    /// A stable code for journals and problem+json (`InvalidConfig`, `NotFound`...).
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::InvalidConfig { .. } => "InvalidConfig",
            ProviderError::NotFound { .. } => "NotFound",
            ProviderError::Conflict { .. } => "Conflict",
            ProviderError::Throttled { .. } => "Throttled",
            ProviderError::Transient { .. } => "Transient",
            ProviderError::Permanent { .. } => "Permanent",
        }
    }
}

/// What `validate-account` learnt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    /// The identity the credentials resolve to.
    pub identity: String,
    /// Regions the account may use.
    pub regions: Vec<String>,
}

/// One provider operation, as the engine asks for it.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderOp {
    /// `validate-account`.
    ValidateAccount,
    /// `create`.
    Create {
        /// Engine-chosen idempotency key.
        key: String,
        /// The desired cluster.
        spec: ClusterSpec,
    },
    /// `update`.
    Update {
        /// Engine-chosen idempotency key.
        key: String,
        /// The desired cluster.
        spec: ClusterSpec,
        /// Whether machines are replaced (os/k8s change).
        replace_machines: bool,
    },
    /// `delete`.
    Delete {
        /// Engine-chosen idempotency key.
        key: String,
        /// Which cluster.
        cluster: ClusterRef,
    },
    /// `describe`.
    Describe {
        /// Which cluster.
        cluster: ClusterRef,
    },
    /// `poll`.
    Poll {
        /// The operation id from create/update/delete.
        operation_id: String,
    },
}

impl ProviderOp {
    /// The WIT function name (`validate-account`, `create`...), for logs and audit entries.
    pub fn name(&self) -> &'static str {
        match self {
            ProviderOp::ValidateAccount => "validate-account",
            ProviderOp::Create { .. } => "create",
            ProviderOp::Update { .. } => "update",
            ProviderOp::Delete { .. } => "delete",
            ProviderOp::Describe { .. } => "describe",
            ProviderOp::Poll { .. } => "poll",
        }
    }

    /// Every operation name of the WIT world, for workflow definition checks.
    pub const NAMES: [&'static str; 6] = [
        "validate-account",
        "create",
        "update",
        "delete",
        "describe",
        "poll",
    ];
}

/// The successful result of a [`ProviderOp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "value")]
pub enum OpResult {
    /// From `validate-account`.
    Account(AccountInfo),
    /// From `create`, `update`, `delete` and `poll`.
    Operation(Operation),
    /// From `describe`.
    State(Box<ObservedState>),
}
