//! Every redb table and every object kind, declared in one place.
//!
//! Changing a table's key or value type is a format change: add a new table and a migration,
//! never reuse a name.

use crate::Kind;
use redb::TableDefinition;

/// Objects: encoded [`crate::ObjectKey`] → [`crate::Envelope`] bytes.
pub const OBJECTS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("objects.v1");
/// Reference index: `relation ␟ target ␟ source key` → nothing.
pub const REFS: TableDefinition<'static, &str, ()> = TableDefinition::new("refs.v1");
/// The references each object holds (source key → JSON `[[relation, target], …]`), so a
/// rewrite or delete can drop the old ones.
pub const OBJECT_REFS: TableDefinition<'static, &str, &[u8]> =
    TableDefinition::new("object-refs.v1");
/// The audit log: sequence → JSON entry.
pub const AUDIT: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("audit.v1");
/// The change-event log: sequence → JSON event.
pub const EVENTS: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("events.v1");
/// Store-level named values (revision counter, bootstrap marker, format version).
pub const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta.v1");

/// Names in [`META`] that the store itself uses.
pub mod meta_keys {
    /// The last resource version handed out (u64, big-endian).
    pub const REVISION: &str = "revision";
    /// The on-disk format version of this database (u32, big-endian).
    pub const FORMAT: &str = "format";
    /// The last outbox sequence number handed out (u64, big-endian).
    pub const OUTBOX_SEQ: &str = "outbox-seq";
}

/// The format version written by this build.
pub const DATABASE_FORMAT: u32 = 1;

/// Every kind of object the control plane keeps.
pub mod kinds {
    use crate::Kind;

    /// Projects (tenant scope).
    pub const PROJECT: Kind = Kind("project");
    /// Users (tenant scope).
    pub const USER: Kind = Kind("user");
    /// API keys, named by key id (tenant scope).
    pub const API_KEY: Kind = Kind("apiKey");
    /// Role bindings (tenant scope).
    pub const ROLE_BINDING: Kind = Kind("roleBinding");
    /// Password hashes of users, named by user (tenant scope); never part of a user object.
    pub const CREDENTIAL: Kind = Kind("credential");
    /// Console sessions, named by the hash of the session id (tenant scope).
    pub const SESSION: Kind = Kind("session");
    /// Custom packs (tenant scope).
    pub const PACK: Kind = Kind("pack");
    /// Cluster profiles (the name-level record).
    pub const PROFILE: Kind = Kind("profile");
    /// Cluster profile versions, named `profile/version`.
    pub const PROFILE_VERSION: Kind = Kind("profileVersion");
    /// Macros.
    pub const MACRO: Kind = Kind("macro");
    /// Maintenance policies.
    pub const MAINTENANCE_POLICY: Kind = Kind("maintenancePolicy");
    /// Cluster templates.
    pub const CLUSTER_TEMPLATE: Kind = Kind("clusterTemplate");
    /// Clusters.
    pub const CLUSTER: Kind = Kind("cluster");
    /// Cloud accounts.
    pub const CLOUD_ACCOUNT: Kind = Kind("cloudAccount");
    /// Installed providers.
    pub const PROVIDER: Kind = Kind("provider");
    /// Workflow definition versions, named `name/version`.
    pub const WORKFLOW: Kind = Kind("workflow");
    /// Workflow runs.
    pub const RUN: Kind = Kind("run");
    /// Variable assignments of template clusters (DESIGN §4.8), in the template's scope, named
    /// `template/clusterProject/cluster`: one record per cluster holding its current revision's
    /// assignments (docs/templates.md).
    pub const TEMPLATE_ASSIGNMENT: Kind = Kind("templateAssignment");
    /// A cluster's stacks (in its project, named like the cluster): the desired stack the
    /// last provider create/update was given, and the stack the cluster runs.
    pub const CLUSTER_STACK: Kind = Kind("clusterStack");
    /// A cluster's recent events (in its project, named like the cluster), newest last.
    pub const CLUSTER_EVENTS: Kind = Kind("clusterEvents");
    /// A template's revisions (in its scope, named `template/0000000042`): the linked set of
    /// each revision, so a rollback can return to it.
    pub const TEMPLATE_REVISION: Kind = Kind("templateRevision");
    /// A template's rollouts (in its scope, named like the template): the current rollout run,
    /// what is queued behind it, and the history.
    pub const TEMPLATE_ROLLOUTS: Kind = Kind("templateRollouts");
    /// A template's member summary (in its scope, named like the template): counts of its
    /// clusters by revision, zone and phase and its variable tallies, kept current in the same
    /// transaction as every member change so template reads do not visit every member
    /// (docs/templates.md).
    pub const TEMPLATE_SUMMARY: Kind = Kind("templateSummary");
}

/// Every kind, so stored keys can be decoded back to a [`Kind`].
pub const ALL_KINDS: &[Kind] = &[
    kinds::PROJECT,
    kinds::USER,
    kinds::API_KEY,
    kinds::ROLE_BINDING,
    kinds::CREDENTIAL,
    kinds::SESSION,
    kinds::PACK,
    kinds::PROFILE,
    kinds::PROFILE_VERSION,
    kinds::MACRO,
    kinds::MAINTENANCE_POLICY,
    kinds::CLUSTER_TEMPLATE,
    kinds::CLUSTER,
    kinds::CLOUD_ACCOUNT,
    kinds::PROVIDER,
    kinds::WORKFLOW,
    kinds::RUN,
    kinds::TEMPLATE_ASSIGNMENT,
    kinds::CLUSTER_STACK,
    kinds::CLUSTER_EVENTS,
    kinds::TEMPLATE_REVISION,
    kinds::TEMPLATE_ROLLOUTS,
    kinds::TEMPLATE_SUMMARY,
];

/// The [`Kind`] named `name`, if it is one of [`ALL_KINDS`].
pub fn kind_named(name: &str) -> Option<Kind> {
    ALL_KINDS.iter().copied().find(|k| k.0 == name)
}

// ---- the workflow runtime (docs/runtime.md) ----

/// Runs: run id → [`crate::RunRecord`] bytes (format byte, header length, JSON header with
/// status/parent/definition, then the run state bytes).
pub const RUNS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("runs.v1");
/// Run listing index: `dimension ␟ value ␟ run id` → nothing (dimensions: `status`, `parent`,
/// `definition`), kept in step with [`RUNS`].
pub const RUN_INDEX: TableDefinition<'static, &str, ()> = TableDefinition::new("run-index.v1");
/// Run journals: (run id, seq) → JSON journal entry; seq starts at 1 with no gaps.
pub const JOURNAL: TableDefinition<'static, (&str, u64), &[u8]> =
    TableDefinition::new("journal.v1");
/// Fan-out items stored apart from their run's state: (run id, item index) → JSON item. A
/// 100,000-cluster fan-out rewrites only the items a batch changed instead of its whole list.
pub const RUN_ITEMS: TableDefinition<'static, (&str, u32), &[u8]> =
    TableDefinition::new("run-items.v1");
/// The outbox: seq → (run id length u32 BE, run id, JSON effect); deleted when answered.
pub const OUTBOX: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("outbox.v1");
/// Durable timers: (fire-at in Unix milliseconds, timer id) → run id; scanned in time order.
pub const TIMERS: TableDefinition<'static, (u64, &str), &str> = TableDefinition::new("timers.v1");
/// Timer id → fire-at (Unix ms), so a timer can be cancelled by id.
pub const TIMER_IDS: TableDefinition<'static, &str, u64> = TableDefinition::new("timer-ids.v1");
/// Run inboxes: (run id, seq) → JSON event, applied in seq order.
pub const INBOX: TableDefinition<'static, (&str, u64), &[u8]> = TableDefinition::new("inbox.v1");
/// Cluster locks: cluster key → the run id holding it (409 `ClusterBusy` for others).
pub const CLUSTER_LOCKS: TableDefinition<'static, &str, &str> =
    TableDefinition::new("cluster-locks.v1");
