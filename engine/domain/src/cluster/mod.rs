//! Clusters (DESIGN §4.7, §4.8, §5.3): the spec a user writes, the status the engine reports, and
//! the pure rules between them — the shape of a spec, the composition of a standalone cluster's
//! profiles, each variable's effective value, the desired stack handed to a provider, whether a
//! change replaces machines, and the Kubernetes downgrade rule.
//!
//! Pure: the API resolves references (templates, profile versions, macros, cloud accounts) and
//! stores what these functions return.

mod desired;
mod validate;

pub use desired::{
    DesiredCluster, DesiredLayer, LinkedProfile, check_kubernetes_change, desired_cluster,
    desired_cluster_with, desired_digest, effective_values, replaces_machines,
};
pub use validate::{
    CONTROL_PLANE_COUNTS, MAX_CLUSTER_LABELS, MAX_CLUSTER_PROFILES, MAX_INSTANCE_TYPE_LEN,
    MAX_NODE_POOLS, MAX_POOL_COUNT, base_cloud_type, check_standalone_set, validate_spec,
};

use crate::template::{ProfileRef, RefScope};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A cluster's template: `{name, scope?}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateRef {
    /// The template's name.
    pub name: String,
    /// `tenant` for a tenant template; default: the cluster's project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<RefScope>,
}

/// A pool of identical machines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePool {
    /// A DNS label, unique in the cluster.
    pub name: String,
    /// Whether the pool runs the control plane (exactly one pool does).
    #[serde(default)]
    pub control_plane: bool,
    /// Machines in the pool: 1–1000; a control-plane pool has 1, 3 or 5.
    pub count: u32,
    /// The cloud's machine type (`m5.large`, `Standard_D4s_v3`).
    pub instance_type: String,
}

/// A cluster's variable values: `{"<profile name>": {"<variable>": "<value>"}}`.
pub type ClusterVariables = BTreeMap<String, BTreeMap<String, String>>;

/// The `spec` of a cluster (DESIGN §4.7).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    /// The template that governs the cluster; absent for a standalone cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateRef>,
    /// A standalone cluster's profile versions (their `variables` must be empty: a cluster sets
    /// values in `variables`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<ProfileRef>,
    /// A cloud account name in the cluster's project.
    #[serde(default)]
    pub cloud_account: String,
    /// An IANA zone name; required for template clusters (maintenance windows open in it),
    /// `UTC` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The cluster's labels: wave selectors, fan-out and simulator faults read these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The cluster's variable values, per profile.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: ClusterVariables,
    /// The machines; exactly one pool is the control plane.
    #[serde(default)]
    pub node_pools: Vec<NodePool>,
}

/// Where a cluster is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClusterPhase {
    /// Being created.
    #[default]
    Provisioning,
    /// Up and not changing.
    Running,
    /// A change is being applied.
    Updating,
    /// The last operation failed.
    Failed,
    /// Being deleted.
    Deleting,
}

/// What the last health check said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Health {
    /// Not checked yet.
    #[default]
    Unknown,
    /// Every check passed.
    Healthy,
    /// Working, with problems.
    Degraded,
    /// Not working.
    Unhealthy,
}

/// A profile version a cluster actually runs (the "Profile" view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedProfile {
    /// Profile name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Where it lives; absent for the cluster's own project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<RefScope>,
}

/// A machine of the cluster, as the provider observed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Machine name.
    #[serde(default)]
    pub name: String,
    /// Its node pool.
    #[serde(default)]
    pub pool: String,
    /// Its machine type.
    #[serde(default)]
    pub instance_type: String,
    /// Its OS image (`ubuntu-aws-24.04`).
    #[serde(default)]
    pub os_image: String,
    /// Its Kubernetes version.
    #[serde(default)]
    pub kubernetes_version: String,
    /// The provider's word for its state (`Running`, `Provisioning`, `Deleting`).
    #[serde(default)]
    pub phase: String,
}

/// One observed condition, Kubernetes-style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// What the condition is about (`Ready`, `ControlPlaneReady`).
    #[serde(rename = "type")]
    pub r#type: String,
    /// Whether it holds.
    pub status: bool,
    /// A CamelCase word for programs.
    #[serde(default)]
    pub reason: String,
    /// A sentence for people.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: jiff::Timestamp,
}

/// A maintenance window, `[start, end)` (RFC 3339 on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NextWindow {
    /// First instant an update may start.
    pub start: jiff::Timestamp,
    /// First instant an update may no longer start.
    pub end: jiff::Timestamp,
}

/// The `status` of a cluster (DESIGN §4.7). Server-set; ignored on writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Where the cluster is in its life.
    #[serde(default)]
    pub phase: ClusterPhase,
    /// The last health check's verdict.
    #[serde(default)]
    pub health: Health,
    /// The profile versions it runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<AppliedProfile>,
    /// The template revision it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// The template revision it should run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_revision: Option<u64>,
    /// The next (or current) maintenance window of its template's policy, computed in the
    /// cluster's zone; absent for standalone clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_window: Option<NextWindow>,
    /// Its machines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<Node>,
    /// Observed conditions, one per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The Kubernetes API endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// [`desired_digest`] of the desired stack last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_stack: Option<String>,
    /// The run changing the cluster now (deploy, update or delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The last run that changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    /// The variables whose values are sensitive (`profile.variable`): shown as `********`,
    /// restored from the stored value when a client sends the mask back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive_variables: Vec<String>,
}

impl ClusterStatus {
    /// The status of a cluster just created: `Provisioning`, health `Unknown`, nothing applied.
    pub fn provisioning() -> Self {
        Self::default()
    }

    /// The condition of `type_`, if any.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.r#type == type_)
    }

    /// Sets the condition of `type_`, replacing any previous one of that type. Its
    /// `lastTransitionTime` stays when `status` is unchanged (only reason and message change) and
    /// becomes `now` otherwise.
    pub fn set_condition(
        &mut self,
        type_: &str,
        status: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
        now: jiff::Timestamp,
    ) {
        let (reason, message) = (reason.into(), message.into());
        match self.conditions.iter_mut().find(|c| c.r#type == type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = now;
                }
                c.status = status;
                c.reason = reason;
                c.message = message;
            }
            None => self.conditions.push(Condition {
                r#type: type_.to_owned(),
                status,
                reason,
                message,
                last_transition_time: now,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
