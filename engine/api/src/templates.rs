//! Cluster templates at tenant and project scope (DESIGN §4.6) and the variable assignments of
//! their clusters (§4.8): `/v1[/projects/{p}]/cluster-templates/{name}` and `…/{name}/variables`.
//!
//! The composition rules are the domain's (`fleetplane_domain::template`); this module supplies
//! the facts (linked versions, the policy, the clusters) and stores what the rules decide:
//! the revision, and one assignment record per template cluster (docs/templates.md).

use crate::Routes;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json;
use crate::profiles::{self, version_key_name};
use crate::refs;
use crate::resource::{self, ApiKind, ObjectOf, ObjectPath, load, require, rule};
use crate::state::{AppState, Tx};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::get;
use fleetplane_domain::authz::{Permission, Resource, Verb};
use fleetplane_domain::cluster::ClusterPhase;
use fleetplane_domain::error::{index, path};
use fleetplane_domain::policy::MaintenancePolicySpec;
use fleetplane_domain::profile::{
    MASK, ProfileVersion, ProfileVersionSpec, Variable, ensure_linkable,
};
use fleetplane_domain::template::{
    Assignment, ClusterTemplateSpec, ClusterValues, LinkedVersion, ProfileRef, RefScope,
    RevisionEntry, VariableAssignment, assign, check_cloud_type_unchanged, keep_running, propose,
    revision_set, validate_template,
};
use fleetplane_domain::{ErrorCode, Problems};
use fleetplane_store::tables::kinds;
use fleetplane_store::{ObjectKey, Precondition, ReadOps, Reference, Scope, WriteExt, WriteOps};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The most clusters one template's rules examine (membership is read through the reference
/// index, never by scanning the fleet).
const MAX_MEMBERS: usize = 100_000;

/// Cluster templates.
pub struct ClusterTemplate;

/// Whether every cluster runs the template's current revision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TemplateState {
    /// Every cluster runs the current revision (or the template has none).
    #[default]
    Applied,
    /// Clusters wait for a window or for variables.
    Pending,
    /// Clusters are updating.
    InProgress,
    /// Some clusters run the revision, others are left for a later window (or were not
    /// selected by an Upgrade now).
    PartiallyApplied,
    /// The rollout is paused (failure budget exhausted, or by a person).
    Paused,
    /// The last rollout failed.
    Failed,
}

/// Cluster counts of a template.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCounts {
    /// Clusters attached to the template.
    pub total: u64,
    /// Clusters running the current revision.
    pub up_to_date: u64,
    /// Clusters with at least one Pending variable (they cannot move to the revision).
    pub pending_variables: u64,
}

/// Assignment counts over every (cluster, variable) of the current revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariableCounts {
    /// Assigned.
    pub resolved: u64,
    /// Pending.
    pub unresolved: u64,
}

/// A maintenance window, `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextWindow {
    /// First instant an update may start.
    pub start: jiff::Timestamp,
    /// First instant an update may no longer start.
    pub end: jiff::Timestamp,
}

/// The observed state of a template (computed on every read and write).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateStatus {
    /// Applied or Pending.
    #[serde(default)]
    pub state: TemplateState,
    /// The current revision, from 1; it changes only with the set of linked versions.
    #[serde(default)]
    pub revision: u64,
    /// The current revision's set of linked versions.
    #[serde(default)]
    pub profiles: Vec<RevisionEntry>,
    /// Cluster counts.
    #[serde(default)]
    pub clusters: ClusterCounts,
    /// Assignment counts.
    #[serde(default)]
    pub variables: VariableCounts,
    /// The earliest next window of its clusters (each in its own zone); with no clusters, the
    /// policy's next window in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_window: Option<NextWindow>,
    /// The rollout moving clusters now (DESIGN §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::rollouts::RolloutSummary>,
}

/// A cluster's reference to its template (`spec.template` of a cluster record).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberTemplateRef {
    /// The template's name.
    pub name: String,
    /// `tenant` for a tenant template; default: the cluster's project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<RefScope>,
}

/// The part of a cluster's spec templates read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberClusterSpec {
    /// The template the cluster belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<MemberTemplateRef>,
    /// IANA zone its windows are computed in (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The values the cluster was given: `{profile: {variable: value}}`.
    #[serde(default)]
    pub variables: ClusterValues,
}

/// The part of a cluster's status templates read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberClusterStatus {
    /// The template revision the cluster runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// Where the cluster is in its life.
    #[serde(default)]
    pub phase: ClusterPhase,
}

/// The minimal cluster record a template reads: an object of kind `cluster` in a project,
/// holding a [`member_reference`] to its template. Unknown fields are ignored, so the full
/// cluster object decodes as this.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberCluster {
    /// Its spec.
    #[serde(default)]
    pub spec: MemberClusterSpec,
    /// Its status.
    #[serde(default)]
    pub status: MemberClusterStatus,
}

/// Assignments of one cluster: `{profile: {variable: assignment}}`.
pub type Assignments = BTreeMap<String, BTreeMap<String, VariableAssignment>>;

/// The stored assignments of one cluster for one revision of a template.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentRecord {
    /// The template revision these assignments are for.
    pub revision: u64,
    /// `{profile: {variable: assignment}}`.
    #[serde(default)]
    pub variables: Assignments,
}

/// The reference a cluster holds to its template (relation `member-of-template`).
pub fn member_reference(template_scope: &Scope, template: &str) -> Reference {
    refs::to(
        refs::MEMBER_OF_TEMPLATE,
        template_scope,
        kinds::CLUSTER_TEMPLATE,
        template,
    )
}

/// The key of a cluster's assignment record: in the template's scope, named
/// `template/clusterProject/cluster`.
pub fn assignment_key(template_scope: &Scope, template: &str, cluster: &ObjectKey) -> ObjectKey {
    ObjectKey::new(
        template_scope.clone(),
        kinds::TEMPLATE_ASSIGNMENT,
        format!(
            "{template}/{}/{}",
            cluster.scope.project().unwrap_or_default(),
            cluster.name
        ),
    )
}

fn own_scope(scope: &Scope) -> RefScope {
    match scope {
        Scope::Tenant => RefScope::Tenant,
        Scope::Project(_) => RefScope::Project,
    }
}

/// The scope a reference names, or `None` when a tenant object names a project one.
fn resolve(template_scope: &Scope, r: Option<RefScope>) -> Option<Scope> {
    match (r, template_scope) {
        (Some(RefScope::Tenant), _) => Some(Scope::Tenant),
        (Some(RefScope::Project), Scope::Tenant) => None,
        (_, s) => Some(s.clone()),
    }
}

fn version_target(scope: &Scope, r: &ProfileRef) -> Option<ObjectKey> {
    resolve(scope, r.scope).map(|s| profiles::version_key(&s, &r.name, &r.version))
}

/// The linked versions' specs, in `spec.profiles` order (`None` when missing or unreachable).
fn linked_specs(
    r: &dyn ReadOps,
    scope: &Scope,
    spec: &ClusterTemplateSpec,
) -> ApiResult<Vec<Option<ProfileVersionSpec>>> {
    Ok(linked_versions(r, scope, spec)?
        .into_iter()
        .map(|v| v.map(|v| v.spec.clone()))
        .collect())
}

/// The versions `spec` links, in its order (`None` where one cannot be read).
fn linked_versions(
    r: &dyn ReadOps,
    scope: &Scope,
    spec: &ClusterTemplateSpec,
) -> ApiResult<Vec<Option<resource::Shared<ProfileVersion>>>> {
    spec.profiles
        .iter()
        .map(|p| match resolve(scope, p.scope) {
            Some(s) => profiles::load_version(r, &s, &p.name, &p.version),
            None => Ok(None),
        })
        .collect()
}

/// The current definitions: each linked profile with its variables.
fn definitions<'a>(
    spec: &'a ClusterTemplateSpec,
    linked: &'a [Option<ProfileVersionSpec>],
) -> Vec<(&'a ProfileRef, &'a [Variable])> {
    spec.profiles
        .iter()
        .zip(linked)
        .filter_map(|(p, v)| v.as_ref().map(|v| (p, v.variables.as_slice())))
        .collect()
}

/// The maintenance policy a template links, if any and if it exists.
///
/// # Errors
/// Store errors.
pub(crate) fn policy_spec(
    r: &dyn ReadOps,
    scope: &Scope,
    spec: &ClusterTemplateSpec,
) -> ApiResult<Option<MaintenancePolicySpec>> {
    let Some(p) = &spec.maintenance_policy else {
        return Ok(None);
    };
    let Some(s) = resolve(scope, p.scope) else {
        return Ok(None);
    };
    Ok(load::<crate::policies::MaintenancePolicy>(r, &s, &p.name)?.map(|o| o.spec))
}

/// The clusters of a template, through the reference index.
fn members(r: &dyn ReadOps, scope: &Scope, name: &str) -> ApiResult<Vec<ObjectKey>> {
    Ok(r.referrers(&member_reference(scope, name), MAX_MEMBERS)?)
}

fn load_member(r: &dyn ReadOps, key: &ObjectKey) -> ApiResult<MemberCluster> {
    match r.get(key)? {
        Some(rec) => Ok(rec.decode()?),
        None => Ok(MemberCluster::default()),
    }
}

/// How a cluster is named in the variables view: its name for a project template, and
/// `project/name` for a tenant template (whose clusters live in many projects).
fn display(template_scope: &Scope, cluster: &ObjectKey) -> String {
    match template_scope {
        Scope::Project(_) => cluster.name.clone(),
        Scope::Tenant => format!(
            "{}/{}",
            cluster.scope.project().unwrap_or_default(),
            cluster.name
        ),
    }
}

/// A cluster's assignments for `revision`: the stored ones, and for variables without a stored
/// assignment the proposal from the cluster's own values (DESIGN §4.8 order).
fn assignments_at(
    r: &dyn ReadOps,
    scope: &Scope,
    template: &str,
    revision: u64,
    defs: &[(&ProfileRef, &[Variable])],
    key: &ObjectKey,
    cluster: &MemberCluster,
) -> ApiResult<Assignments> {
    let stored = r
        .get(&assignment_key(scope, template, key))?
        .map(|rec| rec.decode::<AssignmentRecord>())
        .transpose()?
        .filter(|a| a.revision == revision)
        .map(|a| a.variables)
        .unwrap_or_default();
    let mut out = Assignments::new();
    for (p, vars) in defs {
        let entry = out.entry(p.name.clone()).or_default();
        for def in *vars {
            let a = match stored.get(&p.name).and_then(|m| m.get(&def.name)) {
                Some(a) => a.clone(),
                None => {
                    let given = cluster
                        .spec
                        .variables
                        .get(&p.name)
                        .and_then(|m| m.get(&def.name));
                    let tv = p.variables.iter().find(|t| t.name == def.name);
                    propose(def, tv, given.map(String::as_str))
                }
            };
            entry.insert(def.name.clone(), a);
        }
    }
    Ok(out)
}

fn is_pending(a: &Assignments) -> bool {
    a.values()
        .flat_map(BTreeMap::values)
        .any(|v| v.assignment == Assignment::Pending)
}

/// Proposes every cluster's assignments for a new revision and stores them. The running value
/// of a variable is the cluster's value in the previous revision when the variable existed then.
#[allow(clippy::too_many_arguments)]
fn propose_revision(
    tx: &mut Tx<'_>,
    scope: &Scope,
    template: &str,
    old_revision: u64,
    old_defs: &[(&ProfileRef, &[Variable])],
    revision: u64,
    defs: &[(&ProfileRef, &[Variable])],
) -> ApiResult<()> {
    let clusters = members(&*tx.ops, scope, template)?;
    let mut pending = Vec::new();
    let mut records = Vec::new();
    for key in &clusters {
        let cluster = load_member(&*tx.ops, key)?;
        let prior = assignments_at(
            &*tx.ops,
            scope,
            template,
            old_revision,
            old_defs,
            key,
            &cluster,
        )?;
        if is_pending(&prior) {
            pending.push(display(scope, key));
            continue;
        }
        let mut next = Assignments::new();
        for (p, vars) in defs {
            let entry = next.entry(p.name.clone()).or_default();
            for def in *vars {
                let running = prior
                    .get(&p.name)
                    .and_then(|m| m.get(&def.name))
                    .map(|a| a.new_value.as_str());
                let tv = p.variables.iter().find(|t| t.name == def.name);
                entry.insert(def.name.clone(), propose(def, tv, running));
            }
        }
        records.push((
            assignment_key(scope, template, key),
            AssignmentRecord {
                revision,
                variables: next,
            },
        ));
    }
    if !pending.is_empty() {
        return Err(rule(
            ErrorCode::VariablesPending,
            format!(
                "clusters {} have Pending variables for revision {old_revision}; assign them \
                 (PATCH .../variables) before saving a new set of profile versions",
                pending.join(", ")
            ),
        ));
    }
    for (k, rec) in records {
        tx.ops.put_as(&k, &rec, Precondition::Any, &[])?;
    }
    Ok(())
}

/// Recounts and stores the summary of template `template` at `revision` with `defs` (its
/// linked versions' variables), in the write that changes them.
fn store_recount(
    tx: &mut Tx<'_>,
    scope: &Scope,
    template: &str,
    revision: u64,
    defs: &[(&ProfileRef, &[Variable])],
) -> ApiResult<()> {
    let s = recount(&*tx.ops, scope, template, revision, defs)?;
    write_summary(&mut *tx.ops, scope, template, &s)
}

/// The template's status from the store at `now`: its member counts come from the summary
/// (O(1) records), recounted in memory only when none is stored for `revision` (a database
/// from before summaries, until the first write stores one).
fn compute_status(
    r: &dyn ReadOps,
    scope: &Scope,
    obj: &ObjectOf<ClusterTemplate>,
    revision: u64,
    linked: &[Option<ProfileVersionSpec>],
    now: jiff::Timestamp,
) -> ApiResult<TemplateStatus> {
    let name = &obj.metadata.name;
    let summary = match read_summary(r, scope, name)? {
        Some(s) if s.revision == revision => s,
        _ => recount(r, scope, name, revision, &definitions(&obj.spec, linked))?,
    };
    let up_to_date = summary.up_to_date();
    let mut status = TemplateStatus {
        revision,
        profiles: revision_set(&obj.spec, own_scope(scope)),
        clusters: ClusterCounts {
            total: summary.total,
            up_to_date,
            pending_variables: summary.pending_variables,
        },
        variables: summary.variables.clone(),
        ..TemplateStatus::default()
    };
    let (state, rollout) =
        crate::rollouts::state_of(r, scope, name, summary.total, up_to_date, summary.updating)?;
    status.state = state;
    status.rollout = rollout;
    let mut zones: Vec<&str> = summary.zones.keys().map(String::as_str).collect();
    if zones.is_empty() {
        zones.push("UTC");
    }
    if let Some(policy) = policy_spec(r, scope, &obj.spec)?
        && let Ok(cal) = policy.calendar()
    {
        status.next_window = zones
            .iter()
            .filter_map(|z| jiff::tz::TimeZone::get(z).ok())
            .filter_map(|tz| cal.upcoming(now, &tz, 1).into_iter().next())
            .min_by_key(|w| w.start)
            .map(|w| NextWindow {
                start: w.start,
                end: w.end,
            });
    }
    Ok(status)
}

/// A template as shown, with its status computed now.
fn with_status(
    r: &dyn ReadOps,
    scope: &Scope,
    mut obj: ObjectOf<ClusterTemplate>,
) -> ApiResult<ObjectOf<ClusterTemplate>> {
    let linked = linked_specs(r, scope, &obj.spec)?;
    let revision = obj.status.revision.max(1);
    obj.status = compute_status(r, scope, &obj, revision, &linked, jiff::Timestamp::now())?;
    Ok(obj)
}

/// Reference-scope problems the domain rules cannot see (a tenant template naming project
/// objects; one profile name linked from two scopes).
fn scope_problems(scope: &Scope, spec: &ClusterTemplateSpec) -> Problems {
    let mut p = Problems::new();
    for (i, r) in spec.profiles.iter().enumerate() {
        if resolve(scope, r.scope).is_none() {
            p.push(
                path(&index("spec.profiles", i), "scope"),
                "a tenant template may only reference tenant profiles",
            );
        }
        if spec.profiles[..i]
            .iter()
            .any(|o| o.name == r.name && o.scope != r.scope)
        {
            p.push(
                path(&index("spec.profiles", i), "name"),
                format!("profile {:?} is linked twice", r.name),
            );
        }
    }
    if let Some(pol) = &spec.maintenance_policy
        && resolve(scope, pol.scope).is_none()
    {
        p.push(
            "spec.maintenancePolicy.scope",
            "a tenant template may only reference a tenant policy",
        );
    }
    p
}

impl ApiKind for ClusterTemplate {
    const KIND: &'static str = "ClusterTemplate";
    const STORE: fleetplane_store::Kind = kinds::CLUSTER_TEMPLATE;
    const RESOURCE: Resource = Resource::ClusterTemplate;
    type Spec = ClusterTemplateSpec;
    type Status = TemplateStatus;
    // A paused rollout's status lists its failed clusters from the run's fan-out.
    const OBSERVE_IS_SMALL: bool = false;

    fn observe(r: &dyn ReadOps, scope: &Scope, obj: ObjectOf<Self>) -> ApiResult<ObjectOf<Self>> {
        with_status(r, scope, obj)
    }

    fn admit(
        tx: &mut Tx<'_>,
        scope: &Scope,
        new: &mut ObjectOf<Self>,
        old: Option<&ObjectOf<Self>>,
    ) -> ApiResult<()> {
        if let Some(o) = old {
            check_cloud_type_unchanged(o.spec.cloud_type, new.spec.cloud_type)?;
        }
        scope_problems(scope, &new.spec).finish()?;
        let linked = linked_specs(&*tx.ops, scope, &new.spec)?;
        let facts: Vec<Option<LinkedVersion>> = linked
            .iter()
            .map(|v| {
                v.as_ref().map(|v| LinkedVersion {
                    profile_type: v.profile_type,
                    cloud_type: v.cloud_type,
                    variables: v.variables.clone(),
                })
            })
            .collect();
        let policy_exists = policy_spec(&*tx.ops, scope, &new.spec)?.is_some();
        validate_template(&new.spec, &facts, policy_exists)?;

        // Only newly linked versions: a version already linked stays linked even if a cluster
        // detached since uses it standalone.
        let already: BTreeSet<ObjectKey> = old
            .map(|o| {
                o.spec
                    .profiles
                    .iter()
                    .filter_map(|p| version_target(scope, p))
                    .collect()
            })
            .unwrap_or_default();
        for p in &new.spec.profiles {
            let Some(target) = version_target(scope, p) else {
                continue;
            };
            if already.contains(&target) {
                continue;
            }
            let standalone = Reference {
                relation: refs::STANDALONE_USES_PROFILE_VERSION,
                target: target.encode(),
            };
            let users: Vec<String> = tx
                .ops
                .referrers(&standalone, 100)?
                .iter()
                .map(|k| format!("{}/{}", k.scope.project().unwrap_or_default(), k.name))
                .collect();
            ensure_linkable(&p.name, &p.version, &users)?;
        }

        let own = own_scope(scope);
        let new_set = revision_set(&new.spec, own);
        let revision = match old {
            None => 1,
            Some(o) => {
                let old_revision = o.status.revision.max(1);
                if revision_set(&o.spec, own) == new_set {
                    old_revision
                } else {
                    let old_linked = linked_specs(&*tx.ops, scope, &o.spec)?;
                    // Kubernetes never goes down a minor version (DESIGN §5.3).
                    let k8s = |l: &[Option<ProfileVersionSpec>]| {
                        l.iter()
                            .flatten()
                            .find_map(|v| v.kubernetes_version().map(str::to_owned))
                    };
                    if let (Some(from), Some(to)) = (k8s(&old_linked), k8s(&linked)) {
                        fleetplane_domain::cluster::check_kubernetes_change(&from, &to)?;
                    }
                    let old_defs = definitions(&o.spec, &old_linked);
                    let defs = definitions(&new.spec, &linked);
                    propose_revision(
                        tx,
                        scope,
                        &new.metadata.name,
                        old_revision,
                        &old_defs,
                        old_revision + 1,
                        &defs,
                    )?;
                    old_revision + 1
                }
            }
        };
        // The summary's variable tallies depend on the linked versions and the template's
        // fleet-wide values: recount when they may have changed (or none is stored yet).
        let recount_needed = match old {
            None => true,
            Some(o) => {
                o.spec.profiles != new.spec.profiles
                    || read_summary(&*tx.ops, scope, &new.metadata.name)?
                        .is_none_or(|s| s.revision != revision)
            }
        };
        if recount_needed {
            let defs = definitions(&new.spec, &linked);
            store_recount(tx, scope, &new.metadata.name, revision, &defs)?;
        }
        new.status = compute_status(&*tx.ops, scope, new, revision, &linked, tx.now)?;
        Ok(())
    }

    /// A new revision: records its set (for rollbacks) and schedules its rollout when clusters
    /// are behind (DESIGN §5.2), in the same transaction as the save.
    fn after_write(
        tx: &mut Tx<'_>,
        scope: &Scope,
        obj: &mut ObjectOf<Self>,
        old: Option<&ObjectOf<Self>>,
    ) -> ApiResult<Option<u64>> {
        let revision = obj.status.revision;
        if old.map(|o| o.status.revision) != Some(revision) {
            let name = obj.metadata.name.clone();
            crate::rollouts::record_revision(
                &mut *tx.ops,
                scope,
                &name,
                revision,
                &obj.spec.profiles,
                tx.now,
            )?;
            if old.is_some() {
                schedule_if_behind(tx, scope, &name, crate::rollouts::Reason::Revision)?;
            }
        }
        Ok(None)
    }

    fn references(scope: &Scope, obj: &ObjectOf<Self>) -> Vec<Reference> {
        let mut out = Vec::new();
        for p in &obj.spec.profiles {
            if let Some(t) = version_target(scope, p) {
                for relation in [
                    refs::TEMPLATE_LINKS_PROFILE_VERSION,
                    refs::USES_PROFILE_VERSION,
                ] {
                    out.push(Reference {
                        relation,
                        target: t.encode(),
                    });
                }
            }
        }
        if let Some(pol) = &obj.spec.maintenance_policy
            && let Some(s) = resolve(scope, pol.scope)
        {
            out.push(refs::to(
                refs::USES_POLICY,
                &s,
                kinds::MAINTENANCE_POLICY,
                &pol.name,
            ));
        }
        out
    }

    fn before_delete(tx: &mut Tx<'_>, scope: &Scope, obj: &ObjectOf<Self>) -> ApiResult<()> {
        let name = &obj.metadata.name;
        let clusters = tx.ops.referrers(&member_reference(scope, name), 10)?;
        if !clusters.is_empty() {
            let names: Vec<String> = clusters.iter().map(|k| display(scope, k)).collect();
            return Err(rule(
                ErrorCode::TemplateInUse,
                format!(
                    "template {name:?} has clusters ({}{}); detach or delete them first",
                    names.join(", "),
                    if names.len() == 10 { ", …" } else { "" }
                ),
            ));
        }
        crate::rollouts::forget(&mut *tx.ops, scope, name)?;
        let summary = summary_key(scope, name);
        if tx.ops.get(&summary)?.is_some() {
            tx.ops.delete(&summary, Precondition::Any)?;
        }
        // Assignment records of clusters that left the template.
        let prefix = format!("{name}/");
        loop {
            let page = tx.ops.list(&fleetplane_store::ListQuery {
                scope: scope.clone(),
                kind: kinds::TEMPLATE_ASSIGNMENT,
                name_prefix: prefix.clone(),
                after: None,
                limit: 500,
            })?;
            if page.items.is_empty() {
                break;
            }
            for rec in page.items {
                tx.ops.delete(&rec.key, Precondition::Any)?;
            }
        }
        Ok(())
    }

    fn api_path(scope: &Scope, name: &str) -> String {
        match scope {
            Scope::Tenant => format!("cluster-templates/{name}"),
            Scope::Project(p) => format!("projects/{p}/cluster-templates/{name}"),
        }
    }
}

fn require_perm(caller: &Caller, verb: Verb, scope: &Scope) -> ApiResult<()> {
    caller.require(
        Permission::new(Resource::ClusterTemplate, verb),
        scope.project(),
    )
}

fn shown_value(def: &Variable, v: &str) -> String {
    if def.sensitive && !v.is_empty() {
        MASK.to_owned()
    } else {
        v.to_owned()
    }
}

/// The "Variable values" view of a template (DESIGN §4.8), values of sensitive variables masked.
fn variables_view(r: &dyn ReadOps, scope: &Scope, name: &str) -> ApiResult<serde_json::Value> {
    let t = require::<ClusterTemplate>(r, scope, name)?;
    let revision = t.status.revision.max(1);
    let linked = linked_specs(r, scope, &t.spec)?;
    let defs = definitions(&t.spec, &linked);
    let mut clusters = Vec::new();
    for key in members(r, scope, name)? {
        let cluster = load_member(r, &key)?;
        let a = assignments_at(r, scope, name, revision, &defs, &key, &cluster)?;
        clusters.push((display(scope, &key), a));
    }
    clusters.sort_by(|a, b| a.0.cmp(&b.0));
    let mut items = Vec::new();
    for (p, vars) in &defs {
        for def in *vars {
            let rows: Vec<serde_json::Value> = clusters
                .iter()
                .filter_map(|(c, a)| {
                    let v = a.get(&p.name)?.get(&def.name)?;
                    Some(serde_json::json!({
                        "cluster": c,
                        "assignment": v.assignment,
                        "assignedBy": v.assigned_by,
                        "runningValue": v.running_value.as_deref().map(|x| shown_value(def, x)),
                        "newValue": shown_value(def, &v.new_value),
                    }))
                })
                .collect();
            items.push(serde_json::json!({
                "profile": p.name,
                "variable": def.masked(),
                "clusters": rows,
            }));
        }
    }
    Ok(serde_json::json!({ "revision": revision, "items": items }))
}

/// `GET .../cluster-templates/{name}/variables`.
pub async fn variables(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
) -> ApiResult<Json<serde_json::Value>> {
    let scope = path.scope();
    let name = path.name.clone().unwrap_or_default();
    require_perm(&caller, Verb::Get, &scope)?;
    let view = state
        .read(move |r| variables_view(r, &scope, &name))
        .await?;
    Ok(Json(view))
}

/// One entry of a `PATCH .../variables` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignmentPatch {
    /// The linked profile's name.
    pub profile: String,
    /// The variable.
    pub variable: String,
    /// The value to assign (absent with `keepRunning: true`).
    #[serde(default)]
    pub value: Option<String>,
    /// The clusters; absent: every cluster of the template.
    #[serde(default)]
    pub clusters: Option<Vec<String>>,
    /// Confirm each cluster's running value instead of assigning `value`.
    #[serde(default)]
    pub keep_running: bool,
}

/// Body of `PATCH .../variables`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariablesPatch {
    /// The assignments, applied together or not at all.
    pub assignments: Vec<AssignmentPatch>,
}

/// Applies a `PATCH .../variables` inside one transaction: every problem is reported with its
/// field path (`assignments[0].value`) and nothing is written unless all entries apply.
///
/// # Errors
/// `NotFound` (template); `ValidationFailed` for unknown profiles, variables or clusters, and
/// values that do not fit the definition.
fn apply_patch(tx: &mut Tx<'_>, scope: &Scope, name: &str, body: &VariablesPatch) -> ApiResult<()> {
    let t = require::<ClusterTemplate>(&*tx.ops, scope, name)?;
    let revision = t.status.revision.max(1);
    let linked = linked_specs(&*tx.ops, scope, &t.spec)?;
    let defs = definitions(&t.spec, &linked);
    let mut clusters: BTreeMap<String, (ObjectKey, Assignments)> = BTreeMap::new();
    let mut before: BTreeMap<String, Contribution> = BTreeMap::new();
    let mut member: BTreeMap<String, MemberCluster> = BTreeMap::new();
    for key in members(&*tx.ops, scope, name)? {
        let cluster = load_member(&*tx.ops, &key)?;
        let a = assignments_at(&*tx.ops, scope, name, revision, &defs, &key, &cluster)?;
        let d = display(scope, &key);
        before.insert(d.clone(), contribution(&cluster, Some(&a)));
        member.insert(d.clone(), cluster);
        clusters.insert(d, (key, a));
    }
    let mut p = Problems::new();
    let mut changed = BTreeSet::new();
    for (i, e) in body.assignments.iter().enumerate() {
        let at = index("assignments", i);
        let Some((_, vars)) = defs.iter().find(|(r, _)| r.name == e.profile) else {
            p.push(
                path(&at, "profile"),
                format!("the template links no profile {:?}", e.profile),
            );
            continue;
        };
        let Some(def) = vars.iter().find(|d| d.name == e.variable) else {
            p.push(
                path(&at, "variable"),
                format!("profile {:?} has no variable {:?}", e.profile, e.variable),
            );
            continue;
        };
        match (&e.value, e.keep_running) {
            (Some(_), true) => {
                p.push(path(&at, "value"), "give a value or keepRunning, not both");
                continue;
            }
            (None, false) => {
                p.push(path(&at, "value"), "is required unless keepRunning is true");
                continue;
            }
            _ => {}
        }
        let targets: Vec<String> = match &e.clusters {
            None => clusters.keys().cloned().collect(),
            Some(list) => {
                let mut ok = Vec::new();
                for (j, c) in list.iter().enumerate() {
                    if clusters.contains_key(c) {
                        ok.push(c.clone());
                    } else {
                        p.push(
                            index(&path(&at, "clusters"), j),
                            format!("{c:?} is not a cluster of the template"),
                        );
                    }
                }
                ok
            }
        };
        for c in targets {
            let Some(slot) = clusters
                .get_mut(&c)
                .and_then(|(_, a)| a.get_mut(&e.profile))
                .and_then(|m| m.get_mut(&e.variable))
            else {
                continue;
            };
            let running = slot.running_value.clone();
            let result = match &e.value {
                Some(v) => assign(def, v, running.as_deref()),
                None => keep_running(def, running.as_deref()),
            };
            match result {
                Ok(a) => {
                    *slot = a;
                    changed.insert(c);
                }
                Err(msg) => {
                    let field = if e.keep_running {
                        path(&at, "keepRunning")
                    } else {
                        path(&at, "value")
                    };
                    p.push(field, format!("cluster {c:?}: {msg}"));
                    // One message per entry is enough when the value itself is wrong.
                    break;
                }
            }
        }
    }
    p.finish()?;
    let mut summary = Vec::new();
    let mut shares = Vec::new();
    for c in &changed {
        if let Some((key, a)) = clusters.get(c) {
            let rec = AssignmentRecord {
                revision,
                variables: a.clone(),
            };
            tx.ops.put_as(
                &assignment_key(scope, name, key),
                &rec,
                Precondition::Any,
                &[],
            )?;
            summary.push(c.clone());
            if let (Some(b), Some(m)) = (before.get(c), member.get(c)) {
                shares.push((b.clone(), contribution(m, Some(a))));
            }
        }
    }
    update_summary(&mut *tx.ops, scope, name, |s| {
        for (b, a) in &shares {
            s.shift(Some(b), Some(a));
        }
    })?;
    // Values are not in the audit entry: they may be sensitive; the entry names what changed.
    let what: Vec<serde_json::Value> = body
        .assignments
        .iter()
        .map(|e| {
            serde_json::json!({"profile": e.profile, "variable": e.variable,
                               "keepRunning": e.keep_running})
        })
        .collect();
    tx.audit(
        "update",
        &format!("{}/variables", ClusterTemplate::api_path(scope, name)),
        scope.project(),
        None,
        Some(serde_json::json!({"assignments": what, "clusters": summary, "revision": revision})),
    )?;
    Ok(())
}

/// `PATCH .../cluster-templates/{name}/variables`: assigns values in one transaction and answers
/// the updated view.
pub async fn patch_variables(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
    json::Json(body): json::Json<VariablesPatch>,
) -> ApiResult<Json<serde_json::Value>> {
    let scope = path.scope();
    let name = path.name.clone().unwrap_or_default();
    require_perm(&caller, Verb::Update, &scope)?;
    let view = state
        .write(&caller, move |tx| {
            apply_patch(tx, &scope, &name, &body)?;
            // Clusters whose variables are now settled can move.
            schedule_if_behind(tx, &scope, &name, crate::rollouts::Reason::Eligible)?;
            variables_view(&*tx.ops, &scope, &name)
        })
        .await?;
    Ok(Json(view))
}

/// Schedules a window-gated rollout when some cluster does not run the current revision.
fn schedule_if_behind(
    tx: &mut Tx<'_>,
    scope: &Scope,
    name: &str,
    reason: crate::rollouts::Reason,
) -> ApiResult<()> {
    let Some(wf) = tx.workflows.clone() else {
        return Ok(());
    };
    let Some(view) = member_view(&*tx.ops, scope, name)? else {
        return Ok(());
    };
    if clusters_behind(&*tx.ops, scope, name, view.revision, &[])? > 0 {
        let by = tx.actor.clone();
        crate::rollouts::schedule(
            &mut *tx.ops,
            &wf,
            scope,
            name,
            crate::rollouts::Request {
                reason,
                upgrade_now: false,
                clusters: Vec::new(),
                by,
            },
            tx.now,
        )?;
    }
    Ok(())
}

/// How many of template `name`'s clusters do not run `revision` — of `selected` only when it
/// names some (as the variables view names them; a name that is no member is a field error
/// `clusters[i]`). The whole fleet is counted from the kept member summary, a selection by
/// loading the clusters it names: never work proportional to the fleet on this request path
/// (a summary from before the current revision is recounted once).
///
/// # Errors
/// Field errors for names that are no members; store errors.
pub(crate) fn clusters_behind(
    r: &dyn ReadOps,
    scope: &Scope,
    name: &str,
    revision: u64,
    selected: &[String],
) -> ApiResult<u64> {
    if selected.is_empty() {
        return Ok(match read_summary(r, scope, name)? {
            Some(s) if s.revision == revision => s.total.saturating_sub(s.up_to_date()),
            _ => member_names(r, scope, name)?
                .iter()
                .filter(|(_, c)| c.status.revision != Some(revision))
                .count() as u64,
        });
    }
    let mut problems = Problems::new();
    let mut behind = 0;
    for (i, shown) in selected.iter().enumerate() {
        let key = match scope {
            Scope::Project(p) => Some(ObjectKey::project(p, kinds::CLUSTER, shown)),
            Scope::Tenant => shown
                .split_once('/')
                .map(|(p, c)| ObjectKey::project(p, kinds::CLUSTER, c)),
        };
        let member = match &key {
            Some(k) => crate::clusters::load_key(r, k)?.filter(|c| {
                c.spec.template.as_ref().is_some_and(|t| {
                    t.name == name
                        && template_scope(k.scope.project().unwrap_or_default(), t.scope) == *scope
                })
            }),
            None => None,
        };
        match member {
            Some(c) if c.status.revision != Some(revision) => behind += 1,
            Some(_) => {}
            None => problems.push(
                format!("clusters[{i}]"),
                format!("{shown:?} is not a cluster of template {name:?}"),
            ),
        }
    }
    problems.finish()?;
    Ok(behind)
}

/// The template's clusters with their names as the variables view shows them.
///
/// # Errors
/// Store errors.
pub(crate) fn member_names(
    r: &dyn ReadOps,
    scope: &Scope,
    name: &str,
) -> ApiResult<Vec<(String, ObjectOf<crate::clusters::Cluster>)>> {
    let mut out = Vec::new();
    for key in members(r, scope, name)? {
        if let Some(c) = crate::clusters::load_key(r, &key)? {
            out.push((display(scope, &key), c));
        }
    }
    Ok(out)
}

/// The Kubernetes version a set of linked versions runs (its `k8s` layer).
///
/// # Errors
/// Store errors.
pub(crate) fn kubernetes_version_of(
    r: &dyn ReadOps,
    scope: &Scope,
    profiles: &[ProfileRef],
) -> ApiResult<Option<String>> {
    for p in profiles {
        if let Some(s) = resolve(scope, p.scope)
            && let Some(v) =
                load::<profiles::Version>(r, &s, &version_key_name(&p.name, &p.version))?
            && let Some(k) = v.spec.kubernetes_version()
        {
            return Ok(Some(k.to_owned()));
        }
    }
    Ok(None)
}

/// Registers the template routes at tenant and project scope.
pub fn routes(r: &mut Routes) {
    for base in ["/v1", "/v1/projects/{project}"] {
        let c = format!("{base}/cluster-templates");
        r.add(&c, &[Method::GET], get(resource::list::<ClusterTemplate>));
        r.add(
            &format!("{c}/{{name}}"),
            &[Method::GET, Method::PUT, Method::DELETE],
            get(resource::get::<ClusterTemplate>)
                .put(resource::put::<ClusterTemplate>)
                .delete(resource::delete::<ClusterTemplate>)
                .post(crate::rollouts::action),
        );
        r.add(
            &format!("{c}/{{name}}/variables"),
            &[Method::GET, Method::PATCH],
            get(variables).patch(patch_variables),
        );
    }
}

/// What a template cluster runs at its template's current revision (the clusters module renders
/// and validates with it).
#[derive(Debug, Clone)]
pub(crate) struct MemberView {
    /// The template's scope.
    pub scope: Scope,
    /// The template's name.
    pub name: String,
    /// The template's spec.
    pub spec: ClusterTemplateSpec,
    /// The current revision.
    pub revision: u64,
    /// The linked versions in `spec.profiles` order (base first is the template's rule).
    pub versions: Vec<(ProfileRef, resource::Shared<ProfileVersion>)>,
}

impl MemberView {
    /// The template's fleet-wide values (`assignStrategy: all`) of profile `profile`.
    pub fn template_values(&self, profile: &str) -> BTreeMap<String, String> {
        self.spec
            .profiles
            .iter()
            .filter(|p| p.name == profile)
            .flat_map(|p| &p.variables)
            .filter(|v| v.assign_strategy == fleetplane_domain::template::AssignStrategy::All)
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect()
    }
}

/// The scope a cluster's `spec.template.scope` names, seen from the cluster's project.
pub(crate) fn template_scope(cluster_project: &str, r: Option<RefScope>) -> Scope {
    match r {
        Some(RefScope::Tenant) => Scope::Tenant,
        _ => Scope::Project(cluster_project.to_owned()),
    }
}

/// The template `name` in `scope` as its clusters see it, or `None` when it does not exist.
/// A linked version that vanished is an `Internal` error (linked versions cannot be deleted).
///
/// # Errors
/// Store errors.
pub(crate) fn member_view(
    r: &dyn ReadOps,
    scope: &Scope,
    name: &str,
) -> ApiResult<Option<MemberView>> {
    let Some(obj) = resource::load_shared::<ClusterTemplate, _>(&TEMPLATES, r, scope, name, |o| o)?
    else {
        return Ok(None);
    };
    let linked = linked_versions(r, scope, &obj.spec)?;
    let mut versions = Vec::with_capacity(linked.len());
    for (p, v) in obj.spec.profiles.iter().zip(linked) {
        let Some(v) = v else {
            return Err(crate::error::ApiError::internal(format!(
                "template {name:?} links {}@{} which cannot be read",
                p.name, p.version
            )));
        };
        versions.push((p.clone(), v));
    }
    Ok(Some(MemberView {
        scope: scope.clone(),
        name: name.to_owned(),
        revision: obj.status.revision.max(1),
        spec: obj.spec.clone(),
        versions,
    }))
}

/// Decoded templates by their record's digest ([`resource::load_shared`]): every render of a
/// cluster reads its template.
static TEMPLATES: std::sync::LazyLock<
    crate::memo::Memo<[u8; 32], std::sync::Arc<ObjectOf<ClusterTemplate>>>,
> = std::sync::LazyLock::new(|| crate::memo::Memo::new(256));

/// A cluster's stored assignments for `revision` (`None` when its record is for another
/// revision or absent).
///
/// # Errors
/// Store errors.
pub(crate) fn stored_assignments(
    r: &dyn ReadOps,
    template_scope: &Scope,
    template: &str,
    cluster: &ObjectKey,
    revision: u64,
) -> ApiResult<Option<Assignments>> {
    Ok(r.get(&assignment_key(template_scope, template, cluster))?
        .map(|rec| rec.decode::<AssignmentRecord>())
        .transpose()?
        .filter(|a| a.revision == revision)
        .map(|a| a.variables))
}

/// Writes a new cluster's assignments for `revision`: every value settled (the creation
/// validated them), assigned by the template for fleet-wide values.
///
/// # Errors
/// Store errors.
pub(crate) fn record_new_member(
    w: &mut dyn WriteOps,
    view: &MemberView,
    cluster: &ObjectKey,
    values: &BTreeMap<String, BTreeMap<String, String>>,
) -> ApiResult<()> {
    let mut variables = Assignments::new();
    for (p, version) in &view.versions {
        let fixed = view.template_values(&p.name);
        let entry = variables.entry(p.name.clone()).or_default();
        for def in &version.spec.variables {
            let value = values
                .get(&p.name)
                .and_then(|m| m.get(&def.name))
                .cloned()
                .unwrap_or_else(|| def.effective_value(None).to_owned());
            entry.insert(
                def.name.clone(),
                VariableAssignment {
                    assignment: Assignment::Assigned,
                    assigned_by: if fixed.contains_key(&def.name) {
                        fleetplane_domain::template::AssignedBy::Template
                    } else {
                        fleetplane_domain::template::AssignedBy::Cluster
                    },
                    running_value: None,
                    new_value: value,
                },
            );
        }
    }
    let rec = AssignmentRecord {
        revision: view.revision,
        variables,
    };
    // A member already (a changed spec): its variable share moves from the old record to this
    // one. A cluster not yet stored or attached adds its share when its record is written.
    let template = (view.scope.clone(), view.name.clone());
    let member = match cluster.scope.project() {
        Some(project) => stored_member(&*w, cluster)?
            .filter(|m| m.template_in(project).as_ref() == Some(&template)),
        None => None,
    };
    let defs: Vec<(&ProfileRef, &[Variable])> = view
        .versions
        .iter()
        .map(|(p, v)| (p, v.spec.variables.as_slice()))
        .collect();
    let before = match &member {
        Some(m) => Some(assignments_at(
            &*w,
            &view.scope,
            &view.name,
            view.revision,
            &defs,
            cluster,
            m,
        )?),
        None => None,
    };
    w.put_as(
        &assignment_key(&view.scope, &view.name, cluster),
        &rec,
        Precondition::Any,
        &[],
    )?;
    if let (Some(m), Some(before)) = (&member, &before) {
        let after = assignments_at(
            &*w,
            &view.scope,
            &view.name,
            view.revision,
            &defs,
            cluster,
            m,
        )?;
        let (cb, ca) = (contribution(m, Some(before)), contribution(m, Some(&after)));
        if cb != ca {
            update_summary(w, &view.scope, &view.name, |s| {
                s.shift(Some(&cb), Some(&ca));
            })?;
        }
    }
    Ok(())
}

// ---- the member summary (DESIGN §9: no template read visits every member) ----

/// What a template's status counts of its clusters (kind `templateSummary`, keyed like the
/// template). It is kept current in the same transaction as every member change: each write of
/// a cluster record or an assignment record subtracts the member's old [`Contribution`] and adds
/// the new one; a template save that changes its linked versions recounts it (docs/templates.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSummary {
    /// The template revision the variable tallies are for.
    pub revision: u64,
    /// Clusters attached to the template.
    pub total: u64,
    /// Clusters by the revision they run (`0`: none yet); `upToDate` is the count at the
    /// template's revision.
    #[serde(default)]
    pub by_revision: BTreeMap<u64, u64>,
    /// Clusters with a Pending variable at `revision`.
    #[serde(default)]
    pub pending_variables: u64,
    /// Assignment counts over every (cluster, variable) of `revision`.
    #[serde(default)]
    pub variables: VariableCounts,
    /// Clusters by time zone (its keys are the zones `nextWindow` is computed in).
    #[serde(default)]
    pub zones: BTreeMap<String, u64>,
    /// Clusters in phase Updating.
    #[serde(default)]
    pub updating: u64,
    /// Clusters in phase Provisioning.
    #[serde(default)]
    pub provisioning: u64,
}

impl TemplateSummary {
    /// Clusters running the summary's revision.
    pub fn up_to_date(&self) -> u64 {
        self.by_revision.get(&self.revision).copied().unwrap_or(0)
    }

    /// Adds (or, with `add == false`, removes) one member's contribution. Removing never goes
    /// below zero: a summary is a cache of the members, never a source of panics.
    fn tally(&mut self, c: &Contribution, add: bool) {
        fn bump(n: &mut u64, add: bool, by: u64) {
            *n = if add {
                n.saturating_add(by)
            } else {
                n.saturating_sub(by)
            };
        }
        fn bump_key<K: Ord + Clone>(m: &mut BTreeMap<K, u64>, k: &K, add: bool) {
            let n = m.entry(k.clone()).or_default();
            bump(n, add, 1);
            if *n == 0 {
                m.remove(k);
            }
        }
        bump(&mut self.total, add, 1);
        bump_key(&mut self.by_revision, &c.revision, add);
        bump_key(&mut self.zones, &c.zone, add);
        match c.phase {
            ClusterPhase::Updating => bump(&mut self.updating, add, 1),
            ClusterPhase::Provisioning => bump(&mut self.provisioning, add, 1),
            _ => {}
        }
        if let Some(v) = &c.vars {
            bump(&mut self.pending_variables, add, u64::from(v.pending));
            bump(&mut self.variables.resolved, add, v.resolved);
            bump(&mut self.variables.unresolved, add, v.unresolved);
        }
    }

    /// Replaces a member's contribution `before` with `after` (`None`: not a member). Both
    /// carry their variable share or neither does (then the shares are known to be equal).
    fn shift(&mut self, before: Option<&Contribution>, after: Option<&Contribution>) {
        if let Some(b) = before {
            self.tally(b, false);
        }
        if let Some(a) = after {
            self.tally(a, true);
        }
    }
}

/// A member's variable share: whether it has a Pending variable, and its assignment counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct VarShare {
    pending: bool,
    resolved: u64,
    unresolved: u64,
}

fn var_share(a: &Assignments) -> VarShare {
    let mut v = VarShare::default();
    for x in a.values().flat_map(BTreeMap::values) {
        match x.assignment {
            Assignment::Pending => v.unresolved += 1,
            Assignment::Assigned => v.resolved += 1,
        }
    }
    v.pending = v.unresolved > 0;
    v
}

/// One member's share of its template's summary: a pure function of the cluster record and,
/// for the variable part, its assignments at the summary's revision (what [`assignments_at`]
/// answers from the assignment record and the template's definitions). `vars` is `None` when
/// the caller knows the variable part did not change and skipped computing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Contribution {
    revision: u64,
    zone: String,
    phase: ClusterPhase,
    vars: Option<VarShare>,
}

/// The contribution of `cluster` (see [`Contribution`]); `assignments` as [`assignments_at`]
/// answers them, or `None` to leave the variable part out.
pub(crate) fn contribution(
    cluster: &MemberCluster,
    assignments: Option<&Assignments>,
) -> Contribution {
    Contribution {
        revision: cluster.status.revision.unwrap_or(0),
        zone: cluster
            .spec
            .time_zone
            .clone()
            .unwrap_or_else(|| "UTC".to_owned()),
        phase: cluster.status.phase,
        vars: assignments.map(var_share),
    }
}

fn summary_key(scope: &Scope, template: &str) -> ObjectKey {
    ObjectKey::new(scope.clone(), kinds::TEMPLATE_SUMMARY, template)
}

/// The stored summary of template `template`, if any.
///
/// # Errors
/// Store errors; `Internal` for an undecodable record.
pub fn read_summary(
    r: &dyn ReadOps,
    scope: &Scope,
    template: &str,
) -> ApiResult<Option<TemplateSummary>> {
    Ok(r.get(&summary_key(scope, template))?
        .map(|rec| rec.decode::<TemplateSummary>())
        .transpose()?)
}

fn write_summary(
    w: &mut dyn WriteOps,
    scope: &Scope,
    template: &str,
    s: &TemplateSummary,
) -> ApiResult<()> {
    w.put_as(&summary_key(scope, template), s, Precondition::Any, &[])?;
    Ok(())
}

/// The summary counted from every member: O(members). Used when a revision changes, to
/// rebuild a missing summary, and by tests as the reference the kept summary must equal.
///
/// # Errors
/// Store errors.
pub fn recount(
    r: &dyn ReadOps,
    scope: &Scope,
    template: &str,
    revision: u64,
    defs: &[(&ProfileRef, &[Variable])],
) -> ApiResult<TemplateSummary> {
    let mut s = TemplateSummary {
        revision,
        ..TemplateSummary::default()
    };
    for key in members(r, scope, template)? {
        let Some(cluster) = r
            .get(&key)?
            .map(|rec| rec.decode::<MemberCluster>())
            .transpose()?
        else {
            continue;
        };
        let a = assignments_at(r, scope, template, revision, defs, &key, &cluster)?;
        s.tally(&contribution(&cluster, Some(&a)), true);
    }
    Ok(s)
}

/// The template's current revision and linked versions (what variable shares are computed
/// against); `None` when the template does not exist.
struct Defs {
    revision: u64,
    spec: ClusterTemplateSpec,
    linked: Vec<Option<ProfileVersionSpec>>,
}

impl Defs {
    fn load(r: &dyn ReadOps, scope: &Scope, template: &str) -> ApiResult<Option<Self>> {
        let Some(t) = load::<ClusterTemplate>(r, scope, template)? else {
            return Ok(None);
        };
        let linked = linked_specs(r, scope, &t.spec)?;
        Ok(Some(Self {
            revision: t.status.revision.max(1),
            spec: t.spec,
            linked,
        }))
    }

    fn defs(&self) -> Vec<(&ProfileRef, &[Variable])> {
        definitions(&self.spec, &self.linked)
    }
}

/// Template `template`'s summary counted from every member now, at its current revision
/// (what the stored summary must equal); `None` when the template does not exist. O(members).
///
/// # Errors
/// Store errors.
pub fn recounted(
    r: &dyn ReadOps,
    scope: &Scope,
    template: &str,
) -> ApiResult<Option<TemplateSummary>> {
    match Defs::load(r, scope, template)? {
        Some(d) => Ok(Some(recount(r, scope, template, d.revision, &d.defs())?)),
        None => Ok(None),
    }
}

/// Recounts template `template`'s summary from the store as it is now and stores it.
///
/// # Errors
/// Store errors.
pub fn rebuild_summary(w: &mut dyn WriteOps, scope: &Scope, template: &str) -> ApiResult<()> {
    match recounted(&*w, scope, template)? {
        Some(s) => write_summary(w, scope, template, &s),
        None => Ok(()),
    }
}

/// Applies `f` to template `template`'s stored summary. Call it after the change it accounts
/// for: a missing summary (a database from before summaries) is recounted from the store as it
/// is then, once, instead.
fn update_summary(
    w: &mut dyn WriteOps,
    scope: &Scope,
    template: &str,
    f: impl FnOnce(&mut TemplateSummary),
) -> ApiResult<()> {
    match read_summary(&*w, scope, template)? {
        Some(mut s) => {
            let before = s.clone();
            f(&mut s);
            if s != before {
                write_summary(w, scope, template, &s)?;
            }
            Ok(())
        }
        None => rebuild_summary(w, scope, template),
    }
}

impl MemberCluster {
    /// The template this cluster (in project `project`) belongs to: its scope and name.
    fn template_in(&self, project: &str) -> Option<(Scope, String)> {
        self.spec
            .template
            .as_ref()
            .map(|t| (template_scope(project, t.scope), t.name.clone()))
    }
}

/// The part of a cluster object the summary reads.
pub(crate) fn member_of(obj: &ObjectOf<crate::clusters::Cluster>) -> MemberCluster {
    MemberCluster {
        spec: MemberClusterSpec {
            template: obj.spec.template.as_ref().map(|t| MemberTemplateRef {
                name: t.name.clone(),
                scope: t.scope,
            }),
            time_zone: obj.spec.time_zone.clone(),
            variables: obj.spec.variables.clone(),
        },
        status: MemberClusterStatus {
            revision: obj.status.revision,
            phase: obj.status.phase,
        },
    }
}

/// Decodes the part of a stored cluster record the summary reads.
///
/// # Errors
/// Store errors; `Internal` for an undecodable record.
pub(crate) fn stored_member(r: &dyn ReadOps, key: &ObjectKey) -> ApiResult<Option<MemberCluster>> {
    Ok(r.get(key)?
        .map(|rec| rec.decode::<MemberCluster>())
        .transpose()?)
}

/// A member's full contribution to `template` (variable share included) from the store now.
fn full_contribution(
    r: &dyn ReadOps,
    (scope, template): (&Scope, &str),
    d: &Defs,
    key: &ObjectKey,
    cluster: &MemberCluster,
) -> ApiResult<Contribution> {
    let a = assignments_at(r, scope, template, d.revision, &d.defs(), key, cluster)?;
    Ok(contribution(cluster, Some(&a)))
}

/// Keeps the summaries current after cluster record `key` was written: `before` is the record
/// as it was (`None`: new), `after` as written. Call it after the write.
///
/// The lifecycle writes clusters on every transition of a rollout, changing their status only:
/// then the variable share cannot have changed (its inputs, the cluster's values and its
/// assignment record, did not), so only the status part is compared, and nothing is written
/// when it is unchanged. The variable share is computed (reading the template's definitions)
/// only when the cluster's values or its template changed.
///
/// # Errors
/// Store errors.
pub(crate) fn cluster_written(
    w: &mut dyn WriteOps,
    key: &ObjectKey,
    before: Option<&MemberCluster>,
    after: &MemberCluster,
) -> ApiResult<()> {
    let Some(project) = key.scope.project() else {
        return Ok(());
    };
    let t_before = before.and_then(|c| c.template_in(project));
    let t_after = after.template_in(project);
    match (before, &t_before, &t_after) {
        (_, None, None) => Ok(()),
        (Some(b), Some(tb), Some(ta)) if tb == ta && b.spec.variables == after.spec.variables => {
            let (cb, ca) = (contribution(b, None), contribution(after, None));
            if cb == ca {
                return Ok(());
            }
            update_summary(w, &ta.0, &ta.1, |s| s.shift(Some(&cb), Some(&ca)))
        }
        _ => {
            if let (Some(b), Some((scope, name))) = (before, &t_before) {
                let leaves = t_after.as_ref() != Some(&(scope.clone(), name.clone()));
                if let Some(d) = Defs::load(&*w, scope, name)? {
                    let cb = full_contribution(&*w, (scope, name), &d, key, b)?;
                    let ca = if leaves {
                        None
                    } else {
                        Some(full_contribution(&*w, (scope, name), &d, key, after)?)
                    };
                    update_summary(w, scope, name, |s| s.shift(Some(&cb), ca.as_ref()))?;
                }
                if !leaves {
                    return Ok(());
                }
            }
            if let Some((scope, name)) = &t_after
                && let Some(d) = Defs::load(&*w, scope, name)?
            {
                let ca = full_contribution(&*w, (scope, name), &d, key, after)?;
                update_summary(w, scope, name, |s| s.shift(None, Some(&ca)))?;
            }
            Ok(())
        }
    }
}

/// What a cluster about to be deleted contributes: compute it before deleting its records and
/// hand it to [`cluster_forgotten`] after.
pub(crate) struct Departure(Option<(Scope, String, Contribution)>);

/// The contribution of stored cluster `key` to its template, before it is deleted.
///
/// # Errors
/// Store errors.
pub(crate) fn departing(r: &dyn ReadOps, key: &ObjectKey) -> ApiResult<Departure> {
    let (Some(project), Some(cluster)) = (key.scope.project(), stored_member(r, key)?) else {
        return Ok(Departure(None));
    };
    let Some((scope, name)) = cluster.template_in(project) else {
        return Ok(Departure(None));
    };
    let Some(d) = Defs::load(r, &scope, &name)? else {
        return Ok(Departure(None));
    };
    let c = full_contribution(r, (&scope, &name), &d, key, &cluster)?;
    Ok(Departure(Some((scope, name, c))))
}

/// Removes a deleted cluster's contribution (call after deleting its records).
///
/// # Errors
/// Store errors.
pub(crate) fn cluster_forgotten(w: &mut dyn WriteOps, gone: Departure) -> ApiResult<()> {
    match gone.0 {
        Some((scope, name, c)) => update_summary(w, &scope, &name, |s| s.shift(Some(&c), None)),
        None => Ok(()),
    }
}
