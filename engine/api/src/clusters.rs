//! Clusters (DESIGN §4.7, §4.8): `/v1/projects/{p}/clusters/{name}` with `/variables`,
//! `/events`, `:attach` and `:detach` (docs/clusters.md).
//!
//! The rules are the domain's (`fleetplane_domain::cluster`); this module resolves what they
//! need (the template and its current revision, linked or standalone profile versions, the cloud
//! account, macros), stores the cluster, and starts the workflow run that makes it so in the
//! **same transaction**: `deploy@1` on create, `update@1` when the desired state changes,
//! `delete@1` on delete. What runs learn (phase, health, nodes, the applied stack) is recorded
//! by [`crate::lifecycle`] inside the runtime's own transactions.

use crate::Routes;
use crate::auth::Caller;
use crate::cloud_accounts::CloudAccount;
use crate::error::{ApiError, ApiResult};
use crate::json;
use crate::json::Query;
use crate::profiles;
use crate::refs;
use crate::resource::{
    self, ApiKind, ObjectOf, ObjectPath, Shared, from_record, load, object_response, require, rule,
    upsert,
};
use crate::state::{AppState, Tx};
use crate::templates::{self, MemberView};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, patch};
use fleetplane_domain::ErrorCode;
use fleetplane_domain::authz::{Permission, Resource, Verb};
use fleetplane_domain::cluster::{
    ClusterPhase, ClusterSpec, ClusterStatus, ClusterVariables, DesiredCluster, LinkedProfile,
    TemplateRef, check_standalone_set, desired_cluster, desired_digest, effective_values,
    validate_spec,
};
use fleetplane_domain::profile::variable::restore_masked_values;
use fleetplane_domain::profile::{CloudType, MASK, ProfileVersion};
use fleetplane_domain::template::{AssignedBy, Assignment, RefScope};
use fleetplane_runtime::NewRun;
use fleetplane_store::tables::kinds;
use fleetplane_store::{
    ObjectKey, Precondition, ReadExt as _, ReadOps, Reference, Scope, WriteExt, WriteOps,
};
use fleetplane_workflow::Item;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// Clusters.
pub struct Cluster;

/// The key the runtime knows a cluster by (locks, run subjects, effects): `project/name`.
pub fn runtime_key(project: &str, name: &str) -> String {
    format!("{project}/{name}")
}

/// The store key of the cluster the runtime knows as `project/name`.
pub fn object_key_of(runtime_key: &str) -> Option<ObjectKey> {
    let (p, n) = runtime_key.split_once('/')?;
    Some(ObjectKey::new(
        Scope::Project(p.to_owned()),
        kinds::CLUSTER,
        n,
    ))
}

fn project_of(scope: &Scope) -> ApiResult<&str> {
    scope
        .project()
        .ok_or_else(|| ApiError::internal("clusters live in projects"))
}

/// What a cluster's desired stack was computed from.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The stack.
    pub desired: DesiredCluster,
    /// Its digest (the provider's opaque revision).
    pub digest: String,
    /// The template revision it is for (template clusters).
    pub revision: Option<u64>,
    /// The digest of everything it was rendered from (hex SHA-256).
    pub inputs: String,
}

/// The profile versions a cluster runs, with what decides its values.
struct Resolved {
    versions: Vec<ResolvedVersion>,
    cloud_type: CloudType,
    template: Option<MemberView>,
}

/// One version a cluster runs; serialized (for the render memo's key) with the version as
/// the digest of its stored record.
#[derive(Serialize)]
struct ResolvedVersion {
    scope: Option<RefScope>,
    version: Shared<ProfileVersion>,
    template_values: BTreeMap<String, String>,
}

impl Resolved {
    fn linked(&self) -> Vec<LinkedProfile<'_>> {
        self.versions
            .iter()
            .map(|v| LinkedProfile {
                version: &v.version,
                scope: v.scope,
                template_values: v.template_values.clone(),
            })
            .collect()
    }
}

/// Loads the template (and its current revision) or the standalone versions of `spec`.
/// Missing objects are field errors (`spec.template.name`, `spec.profiles[i]`).
fn resolve(r: &dyn ReadOps, project: &str, spec: &ClusterSpec) -> ApiResult<Resolved> {
    if let Some(t) = &spec.template {
        let scope = templates::template_scope(project, t.scope);
        let view = templates::member_view(r, &scope, &t.name)?.ok_or_else(|| {
            ApiError::field(
                "spec.template.name",
                format!("cluster template {:?} not found", t.name),
            )
        })?;
        let versions = view
            .versions
            .iter()
            .map(|(p, v)| ResolvedVersion {
                scope: p.scope,
                version: v.clone(),
                template_values: view.template_values(&p.name),
            })
            .collect();
        return Ok(Resolved {
            versions,
            cloud_type: view.spec.cloud_type,
            template: Some(view),
        });
    }
    let mut versions = Vec::new();
    let mut problems = fleetplane_domain::Problems::new();
    for (i, p) in spec.profiles.iter().enumerate() {
        let scope = match p.scope {
            Some(RefScope::Tenant) => Scope::Tenant,
            _ => Scope::Project(project.to_owned()),
        };
        match profiles::load_version(r, &scope, &p.name, &p.version)? {
            Some(version) => versions.push(ResolvedVersion {
                scope: p.scope,
                version,
                template_values: BTreeMap::new(),
            }),
            None => problems.push(
                format!("spec.profiles[{i}]"),
                format!("profile version {}@{} not found", p.name, p.version),
            ),
        }
    }
    problems.finish()?;
    let refs: Vec<&ProfileVersion> = versions.iter().map(|v| &*v.version).collect();
    check_standalone_set(&refs)?;
    let cloud_type = fleetplane_domain::cluster::base_cloud_type(&refs).unwrap_or(CloudType::All);
    Ok(Resolved {
        versions,
        cloud_type,
        template: None,
    })
}

/// The values a template cluster renders with at its template's current revision: the stored
/// assignments' new values (the template's fleet-wide ones excluded, they come from the
/// template), or its own `spec.variables` when no record is stored for the revision.
fn given_values(
    r: &dyn ReadOps,
    key: &ObjectKey,
    spec: &ClusterSpec,
    resolved: &Resolved,
) -> ApiResult<ClusterVariables> {
    let Some(view) = &resolved.template else {
        return Ok(spec.variables.clone());
    };
    let Some(stored) =
        templates::stored_assignments(r, &view.scope, &view.name, key, view.revision)?
    else {
        return Ok(spec.variables.clone());
    };
    let mut out = ClusterVariables::new();
    for (profile, vars) in stored {
        for (name, a) in vars {
            if a.assigned_by == AssignedBy::Cluster && a.assignment == Assignment::Assigned {
                out.entry(profile.clone())
                    .or_default()
                    .insert(name, a.new_value);
            }
        }
    }
    Ok(out)
}

/// The cluster's desired stack now: its template's current revision (or its own versions) with
/// its values, rendered.
///
/// # Errors
/// Field errors for missing references; the domain's validation and render errors.
pub fn desired_of(r: &dyn ReadOps, key: &ObjectKey, spec: &ClusterSpec) -> ApiResult<Desired> {
    desired_reusing(r, key, spec, None)
}

/// Like [`desired_of`], but takes the stack from `recorded` instead of rendering when it was
/// rendered from the very same inputs (a provider call sending the stack its run recorded
/// moments ago: the render is the costly part, the inputs are cheap to compare).
///
/// # Errors
/// As [`desired_of`].
pub fn desired_reusing(
    r: &dyn ReadOps,
    key: &ObjectKey,
    spec: &ClusterSpec,
    recorded: Option<&StackRecord>,
) -> ApiResult<Desired> {
    let project = project_of(&key.scope)?;
    let resolved = resolve(r, project, spec)?;
    let given = given_values(r, key, spec, &resolved)?;
    let linked = resolved.linked();
    let values = effective_values(&linked, &given)?;
    let macros = crate::macros::resolved_macros(r, &key.scope)?;
    let inputs = RenderInputs {
        name: &key.name,
        project,
        spec,
        profiles: &resolved.versions,
        values: &values,
        macros: &macros,
        cloud_type: resolved.cloud_type,
    };
    let inputs_digest = crate::memo::digest_of(&inputs);
    let revision = resolved.template.as_ref().map(|t| t.revision);
    let inputs_hex = hex::encode(inputs_digest);
    if let Some(rec) = recorded
        && rec.inputs.as_deref() == Some(inputs_hex.as_str())
        && rec.revision == revision
    {
        return Ok(Desired {
            desired: rec.desired.clone(),
            digest: rec.digest.clone(),
            revision,
            inputs: inputs_hex,
        });
    }
    let (desired, digest) = RENDERS
        .get_or_try(inputs_digest, || {
            let desired = desired_cluster(
                &key.name,
                project,
                spec,
                &linked,
                &values,
                &macros,
                resolved.cloud_type,
            )?;
            let digest = desired_digest(&desired);
            Ok::<_, ApiError>(std::sync::Arc::new((desired, digest)))
        })?
        .as_ref()
        .clone();
    Ok(Desired {
        desired,
        digest,
        revision,
        inputs: inputs_hex,
    })
}

/// The stacks `render` steps computed lately, by cluster, each with the spec it was computed
/// for and what it read (docs/performance.md, eighth round). A provider call's stack is
/// recorded inside the runtime's batch — its one serial stage — moments after the run's
/// `render` step computed the same stack on the effect side; resolving it again there was a
/// sixth of the batch's time at 100,000 clusters. [`desired_noted`] takes the noted stack
/// instead when the spec is the same and nothing the render read has changed since.
pub struct RecentRenders(crate::memo::Memo<String, std::sync::Arc<Noted>>);

/// One noted render.
struct Noted {
    spec: ClusterSpec,
    reads: fleetplane_store::ReadSet,
    desired: Desired,
}

impl Default for RecentRenders {
    fn default() -> Self {
        // More than the effects performed ahead of the batches (1,024 by default): a render is
        // taken back within a batch or two.
        Self(crate::memo::Memo::new(4096))
    }
}

/// [`desired_of`], noted in `recent` for [`desired_noted`].
///
/// # Errors
/// As [`desired_of`].
pub fn desired_noting(
    recent: &RecentRenders,
    r: &dyn ReadOps,
    key: &ObjectKey,
    spec: &ClusterSpec,
) -> ApiResult<Desired> {
    let recording = fleetplane_store::Recording::new(r);
    let desired = desired_of(&recording, key, spec)?;
    recent.0.insert(
        key.encode(),
        std::sync::Arc::new(Noted {
            spec: spec.clone(),
            reads: recording.finish(),
            desired: desired.clone(),
        }),
    );
    Ok(desired)
}

/// The stack last noted for the cluster ([`desired_noting`]) when it was computed for `spec`
/// and everything it read is unchanged in `r`: computing it again in `r` would give the same.
///
/// # Errors
/// Store errors of `r`.
pub fn noted_render(
    recent: &RecentRenders,
    r: &dyn ReadOps,
    key: &ObjectKey,
    spec: &ClusterSpec,
) -> ApiResult<Option<Desired>> {
    match recent.0.get(&key.encode()) {
        Some(noted) if noted.spec == *spec && noted.reads.unchanged_in(r)? => {
            Ok(Some(noted.desired.clone()))
        }
        _ => Ok(None),
    }
}

/// [`desired_of`] in `r`, taken from [`noted_render`] when it can be.
///
/// # Errors
/// As [`desired_of`].
pub fn desired_noted(
    recent: &RecentRenders,
    r: &dyn ReadOps,
    key: &ObjectKey,
    spec: &ClusterSpec,
) -> ApiResult<Desired> {
    match noted_render(recent, r, key, spec)? {
        Some(d) => Ok(d),
        None => desired_of(r, key, spec),
    }
}

/// Everything a cluster's render depends on: the key of its memo entry.
#[derive(Serialize)]
struct RenderInputs<'a> {
    name: &'a str,
    project: &'a str,
    spec: &'a ClusterSpec,
    /// Each version by the digest of its stored record (its content, exactly).
    profiles: &'a [ResolvedVersion],
    values: &'a ClusterVariables,
    macros: &'a fleetplane_domain::profile::Macros,
    cloud_type: CloudType,
}

/// Renders by their inputs' digest. A rollout renders each cluster's stack three times within
/// moments (the `render` step, the provider call, the call's record) and a render parses every
/// layer's YAML: measured at ~3 ms per render, the largest share of a 10,000-cluster rollout's
/// CPU before this memo (docs/performance.md).
static RENDERS: std::sync::LazyLock<crate::memo::Memo<[u8; 32], Rendered>> =
    std::sync::LazyLock::new(|| crate::memo::Memo::new(4096));

/// A rendered stack and its digest, shared by the memo's readers.
type Rendered = std::sync::Arc<(DesiredCluster, String)>;

/// The cloud account must exist in the cluster's project and its provider serve the cloud type.
fn check_account(
    r: &dyn ReadOps,
    project: &str,
    spec: &ClusterSpec,
    cloud_type: CloudType,
) -> ApiResult<()> {
    let scope = Scope::Project(project.to_owned());
    let Some(acc) = load::<CloudAccount>(r, &scope, &spec.cloud_account)? else {
        return Err(ApiError::field(
            "spec.cloudAccount",
            format!(
                "cloud account {:?} not found in project {project:?}",
                spec.cloud_account
            ),
        ));
    };
    if cloud_type == CloudType::All {
        return Ok(());
    }
    let wanted = cloud_type.as_str();
    let served: Vec<String> = match &acc.spec.cloud_types {
        Some(types) => types.clone(),
        None => crate::providers::manifest_of(r, &acc.spec.provider)?
            .map(|m| m.cloud_types)
            .unwrap_or_default(),
    };
    if served.iter().any(|t| t == "*" || t == wanted) {
        Ok(())
    } else {
        Err(rule(
            ErrorCode::CloudTypeMismatch,
            format!(
                "cloud account {:?} (provider {:?}) serves {}, not {wanted}",
                spec.cloud_account,
                acc.spec.provider,
                if served.is_empty() {
                    "no cloud type".to_owned()
                } else {
                    served.join(", ")
                }
            ),
        ))
    }
}

/// Whether a change of spec changes what the provider must run.
fn desired_inputs_changed(old: &ClusterSpec, new: &ClusterSpec) -> bool {
    old.profiles != new.profiles
        || old.variables != new.variables
        || old.node_pools != new.node_pools
        || old.labels != new.labels
}

impl ApiKind for Cluster {
    const KIND: &'static str = "Cluster";
    const STORE: fleetplane_store::Kind = kinds::CLUSTER;
    const RESOURCE: Resource = Resource::Cluster;
    type Spec = ClusterSpec;
    type Status = ClusterStatus;

    fn admit(
        tx: &mut Tx<'_>,
        scope: &Scope,
        new: &mut ObjectOf<Self>,
        old: Option<&ObjectOf<Self>>,
    ) -> ApiResult<()> {
        let project = project_of(scope)?.to_owned();
        if let Some(o) = old {
            if o.spec.template.is_some() && !new.spec.profiles.is_empty() {
                return Err(rule(
                    ErrorCode::ManagedByTemplate,
                    format!(
                        "cluster {:?} runs the profile versions of its template; change the \
                         template, or detach the cluster first",
                        new.metadata.name
                    ),
                ));
            }
            if o.spec.template != new.spec.template {
                return Err(rule(
                    ErrorCode::InvalidState,
                    "a cluster changes templates only through :attach and :detach",
                ));
            }
            if o.spec.cloud_account != new.spec.cloud_account {
                return Err(ApiError::field(
                    "spec.cloudAccount",
                    "is fixed at creation (a cluster cannot move between cloud accounts)",
                ));
            }
        }
        validate_spec(&new.spec)?;
        let key = ObjectKey::new(scope.clone(), kinds::CLUSTER, new.metadata.name.clone());
        let resolved = resolve(&*tx.ops, &project, &new.spec)?;
        // Sensitive values come back masked from a GET: keep the stored ones.
        let mut sensitive = Vec::new();
        for ResolvedVersion { version, .. } in &resolved.versions {
            let profile = &version.metadata.name;
            if let (Some(o), Some(incoming)) = (old, new.spec.variables.get_mut(profile)) {
                let stored = o.spec.variables.get(profile).cloned().unwrap_or_default();
                restore_masked_values(&version.spec.variables, incoming, &stored);
            }
            sensitive.extend(
                version
                    .spec
                    .variables
                    .iter()
                    .filter(|v| v.sensitive)
                    .map(|v| format!("{profile}.{}", v.name)),
            );
        }
        new.status.sensitive_variables = sensitive;
        check_account(&*tx.ops, &project, &new.spec, resolved.cloud_type)?;
        // Validate the values and render once, so a cluster that cannot render is refused now.
        // A template cluster's own values become its assignments (assigned by the cluster).
        let linked = resolved.linked();
        let values = effective_values(&linked, &new.spec.variables)?;
        let macros = crate::macros::resolved_macros(&*tx.ops, scope)?;
        desired_cluster(
            &new.metadata.name,
            &project,
            &new.spec,
            &linked,
            &values,
            &macros,
            resolved.cloud_type,
        )?;
        match old {
            None => {
                new.status = ClusterStatus {
                    sensitive_variables: std::mem::take(&mut new.status.sensitive_variables),
                    ..ClusterStatus::provisioning()
                };
                new.status.desired_revision = resolved.template.as_ref().map(|t| t.revision);
                if let Some(view) = &resolved.template {
                    templates::record_new_member(&mut *tx.ops, view, &key, &values)?;
                }
            }
            Some(o) if desired_inputs_changed(&o.spec, &new.spec) => {
                if let Some(run) = &o.status.run {
                    return Err(rule(
                        ErrorCode::ClusterBusy,
                        format!(
                            "cluster {:?} is busy with run {run}; wait for it or cancel it",
                            new.metadata.name
                        ),
                    ));
                }
                if !matches!(o.status.phase, ClusterPhase::Running | ClusterPhase::Failed) {
                    return Err(rule(
                        ErrorCode::InvalidState,
                        format!(
                            "cluster {:?} is {:?}; changes apply to Running or Failed clusters",
                            new.metadata.name, o.status.phase
                        ),
                    ));
                }
                if let Some(view) = &resolved.template {
                    templates::record_new_member(&mut *tx.ops, view, &key, &values)?;
                }
                // Marks "a run is needed"; `after_write` starts it and stores its id.
                new.status.run = Some(String::new());
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Starts the run the write needs in the same transaction: `deploy@1` for a new cluster,
    /// `update@1` when `admit` marked a changed desired state (`status.run` empty).
    fn after_write(
        tx: &mut Tx<'_>,
        scope: &Scope,
        obj: &mut ObjectOf<Self>,
        old: Option<&ObjectOf<Self>>,
    ) -> ApiResult<Option<u64>> {
        let key = ObjectKey::new(scope.clone(), kinds::CLUSTER, obj.metadata.name.clone());
        // The generic write stored `obj` over `old`: account for it in the template's summary.
        templates::cluster_written(
            &mut *tx.ops,
            &key,
            old.map(templates::member_of).as_ref(),
            &templates::member_of(obj),
        )?;
        let workflow = match (old, obj.status.run.as_deref()) {
            (None, _) => "deploy",
            (Some(_), Some("")) => "update",
            _ => return Ok(None),
        };
        let id = start_run(tx, scope, obj, workflow)?;
        obj.status.run = Some(id.clone());
        if workflow == "update" {
            obj.status.phase = ClusterPhase::Updating;
        }
        let rv = save(&mut *tx.ops, &key, obj)?;
        let (reason, message) = if old.is_none() {
            (
                "Created",
                format!("cluster created; deploy run {id} started"),
            )
        } else {
            (
                "UpdateRequested",
                format!("desired state changed; update run {id} started"),
            )
        };
        add_event(
            &mut *tx.ops,
            &key,
            event(tx.now, "Normal", reason, message, Some(&id)),
        )?;
        Ok(Some(rv))
    }

    fn references(scope: &Scope, obj: &ObjectOf<Self>) -> Vec<Reference> {
        let Some(project) = scope.project() else {
            return Vec::new();
        };
        let mut out = vec![refs::to(
            refs::USES_CLOUD_ACCOUNT,
            scope,
            kinds::CLOUD_ACCOUNT,
            &obj.spec.cloud_account,
        )];
        if let Some(t) = &obj.spec.template {
            out.push(templates::member_reference(
                &templates::template_scope(project, t.scope),
                &t.name,
            ));
        }
        for p in &obj.spec.profiles {
            let s = match p.scope {
                Some(RefScope::Tenant) => Scope::Tenant,
                _ => scope.clone(),
            };
            let target = profiles::version_key(&s, &p.name, &p.version).encode();
            for relation in [
                refs::STANDALONE_USES_PROFILE_VERSION,
                refs::USES_PROFILE_VERSION,
            ] {
                out.push(Reference {
                    relation,
                    target: target.clone(),
                });
            }
        }
        out
    }

    fn present(mut obj: ObjectOf<Self>) -> ObjectOf<Self> {
        let sensitive = &obj.status.sensitive_variables;
        for (profile, vars) in &mut obj.spec.variables {
            for (name, value) in vars.iter_mut() {
                if !value.is_empty() && sensitive.iter().any(|s| *s == format!("{profile}.{name}"))
                {
                    *value = MASK.to_owned();
                }
            }
        }
        obj
    }

    fn observe(
        r: &dyn ReadOps,
        scope: &Scope,
        mut obj: ObjectOf<Self>,
    ) -> ApiResult<ObjectOf<Self>> {
        obj.status.next_window = next_window(r, scope, &obj.spec, jiff::Timestamp::now())?;
        Ok(obj)
    }

    /// Clusters of a page mostly share a template and a zone: each (template, zone) pair's
    /// window is computed once (the template and its policy read once).
    fn observe_page(
        r: &dyn ReadOps,
        scope: &Scope,
        objs: Vec<ObjectOf<Self>>,
    ) -> ApiResult<Vec<ObjectOf<Self>>> {
        use fleetplane_domain::cluster::{NextWindow, TemplateRef};
        let now = jiff::Timestamp::now();
        let mut windows: HashMap<(Option<TemplateRef>, Option<String>), Option<NextWindow>> =
            HashMap::new();
        objs.into_iter()
            .map(|mut obj| {
                let key = (obj.spec.template.clone(), obj.spec.time_zone.clone());
                obj.status.next_window = match windows.get(&key) {
                    Some(w) => *w,
                    None => {
                        let w = next_window(r, scope, &obj.spec, now)?;
                        windows.insert(key, w);
                        w
                    }
                };
                Ok(obj)
            })
            .collect()
    }

    fn api_path(scope: &Scope, name: &str) -> String {
        format!(
            "projects/{}/clusters/{name}",
            scope.project().unwrap_or_default()
        )
    }
}

/// The cluster's next maintenance window (open now or next) in its own zone: its template's
/// policy; standalone clusters have none.
///
/// # Errors
/// Store errors.
pub fn next_window(
    r: &dyn ReadOps,
    scope: &Scope,
    spec: &ClusterSpec,
    after: jiff::Timestamp,
) -> ApiResult<Option<fleetplane_domain::cluster::NextWindow>> {
    let (Some(t), Some(project)) = (&spec.template, scope.project()) else {
        return Ok(None);
    };
    let ts = templates::template_scope(project, t.scope);
    let Some(template) = load::<templates::ClusterTemplate>(r, &ts, &t.name)? else {
        return Ok(None);
    };
    let Some(policy) = templates::policy_spec(r, &ts, &template.spec)? else {
        return Ok(None);
    };
    let zone = spec.time_zone.as_deref().unwrap_or("UTC");
    Ok(crate::policies::window_at(&policy, zone, after)
        .map(|(start, end)| fleetplane_domain::cluster::NextWindow { start, end }))
}

// ---- runs ----

/// Starts built-in workflow `name` about cluster `obj` inside `tx` and returns the run id.
fn start_run(
    tx: &mut Tx<'_>,
    scope: &Scope,
    obj: &ObjectOf<Cluster>,
    workflow: &str,
) -> ApiResult<String> {
    let wf = tx.workflows()?;
    let digest = wf
        .builtin_digest(workflow)
        .ok_or_else(|| ApiError::internal(format!("built-in workflow {workflow} missing")))?;
    let project = project_of(scope)?;
    let id = uuid::Uuid::now_v7().to_string();
    let key = runtime_key(project, &obj.metadata.name);
    let inputs = match (workflow, obj.status.desired_revision) {
        ("deploy", Some(rev)) => json!({"revision": rev}),
        _ => json!({}),
    };
    wf.client()
        .start_in(
            &mut *tx.ops,
            NewRun {
                id: id.clone(),
                definition: digest,
                inputs,
                subject: Some(item_of(project, obj)),
                project: Some(project.to_owned()),
                cluster: Some(key),
            },
        )
        .map_err(crate::workflows::runtime_error)?;
    Ok(id)
}

/// The cluster as a run's subject or a fan-out item.
pub fn item_of(project: &str, obj: &ObjectOf<Cluster>) -> Item {
    let mut facts = serde_json::Map::new();
    for (k, v) in [
        ("project", json!(project)),
        ("shortName", json!(obj.metadata.name)),
        ("phase", json!(obj.status.phase)),
        ("health", json!(obj.status.health)),
        ("revision", json!(obj.status.revision)),
        ("desiredRevision", json!(obj.status.desired_revision)),
        (
            "timeZone",
            json!(obj.spec.time_zone.as_deref().unwrap_or("UTC")),
        ),
        (
            "template",
            json!(obj.spec.template.as_ref().map(|t| t.name.clone())),
        ),
    ] {
        facts.insert(k.to_owned(), v);
    }
    Item {
        name: runtime_key(project, &obj.metadata.name),
        labels: obj.spec.labels.clone().into_iter().collect(),
        facts,
    }
}

/// Writes the cluster record as the server (no audit; a change event), and keeps its
/// template's member summary current in the same transaction.
///
/// # Errors
/// Store errors.
pub fn save(w: &mut dyn WriteOps, key: &ObjectKey, obj: &ObjectOf<Cluster>) -> ApiResult<u64> {
    // Only the few fields the summary reads are decoded of the record being replaced.
    let before = templates::stored_member(&*w, key)?;
    write(w, key, before, obj)
}

/// Like [`save`] for a caller that loaded the record it replaces (`before`, in this
/// transaction): the lifecycle hook on every cluster transition, which need not read it twice.
///
/// # Errors
/// Store errors.
pub fn save_over(
    w: &mut dyn WriteOps,
    key: &ObjectKey,
    before: &ObjectOf<Cluster>,
    obj: &ObjectOf<Cluster>,
) -> ApiResult<u64> {
    write(w, key, Some(templates::member_of(before)), obj)
}

fn write(
    w: &mut dyn WriteOps,
    key: &ObjectKey,
    before: Option<templates::MemberCluster>,
    obj: &ObjectOf<Cluster>,
) -> ApiResult<u64> {
    let mut stored = obj.clone();
    stored.metadata.resource_version = String::new();
    stored.status.next_window = None;
    let refs = Cluster::references(&key.scope, obj);
    let rv = w.put_as(key, &stored, Precondition::Any, &refs)?;
    templates::cluster_written(w, key, before.as_ref(), &templates::member_of(obj))?;
    Ok(rv)
}

/// Loads a cluster record by store key.
///
/// # Errors
/// Store errors; `Internal` for an undecodable record.
pub fn load_key(r: &dyn ReadOps, key: &ObjectKey) -> ApiResult<Option<ObjectOf<Cluster>>> {
    r.get(key)?
        .map(|rec| from_record::<Cluster>(&rec))
        .transpose()
}

// ---- events ----

/// One entry of a cluster's event history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterEvent {
    /// When.
    pub time: jiff::Timestamp,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short CamelCase reason (`ProvisioningStarted`, `ProviderEvent`, `RunFailed`).
    pub reason: String,
    /// What happened, for people.
    pub message: String,
    /// The run it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// Events kept per cluster.
pub const MAX_EVENTS: usize = 200;

/// Where a cluster's history stands (kind `clusterEvents`, named after the cluster). Each event
/// is a row of its own, named `{cluster}/{seq:020}`, so appending writes only the new events
/// and this head, not the whole history (a history at [`MAX_EVENTS`] is ~40 KB of JSON, and
/// the runtime's hook appends to it on most transitions that change a cluster).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventsHead {
    /// The sequence number of the oldest event kept.
    #[serde(default)]
    first: u64,
    /// The sequence number the next event gets.
    #[serde(default)]
    next: u64,
    /// The newest provider event already copied (provider clock, ms).
    #[serde(default)]
    provider_seen_ms: u64,
    /// The history as stored before rows: the whole list in this record. Read as it is, and
    /// moved to rows by the first append.
    #[serde(default, skip_serializing)]
    events: Vec<ClusterEvent>,
}

fn events_key(key: &ObjectKey) -> ObjectKey {
    ObjectKey::new(key.scope.clone(), kinds::CLUSTER_EVENTS, key.name.clone())
}

fn event_row_key(key: &ObjectKey, seq: u64) -> ObjectKey {
    ObjectKey::new(
        key.scope.clone(),
        kinds::CLUSTER_EVENTS,
        format!("{}/{seq:020}", key.name),
    )
}

fn events_head(r: &dyn ReadOps, key: &ObjectKey) -> ApiResult<EventsHead> {
    Ok(r.get_as::<EventsHead>(&events_key(key))?
        .map(|(h, _)| h)
        .unwrap_or_default())
}

/// A cluster's kept events, oldest first (at most [`MAX_EVENTS`]).
///
/// # Errors
/// Store errors.
pub fn read_events(r: &dyn ReadOps, key: &ObjectKey) -> ApiResult<Vec<ClusterEvent>> {
    let head = events_head(r, key)?;
    if !head.events.is_empty() {
        return Ok(head.events);
    }
    let page = r.list(&fleetplane_store::ListQuery {
        scope: key.scope.clone(),
        kind: kinds::CLUSTER_EVENTS,
        name_prefix: format!("{}/", key.name),
        after: None,
        limit: MAX_EVENTS,
    })?;
    Ok(page
        .items
        .iter()
        .map(|rec| rec.decode::<ClusterEvent>())
        .collect::<Result<_, _>>()?)
}

/// The newest provider event already copied into a cluster's history (provider clock, ms).
///
/// # Errors
/// Store errors.
pub fn provider_events_seen(r: &dyn ReadOps, key: &ObjectKey) -> ApiResult<u64> {
    Ok(events_head(r, key)?.provider_seen_ms)
}

/// Appends `events` to a cluster's history, dropping the oldest past [`MAX_EVENTS`], and
/// records `provider_seen_ms` when given.
///
/// # Errors
/// Store errors.
pub fn append_events(
    w: &mut dyn WriteOps,
    key: &ObjectKey,
    events: Vec<ClusterEvent>,
    provider_seen_ms: Option<u64>,
) -> ApiResult<()> {
    let mut head = events_head(&*w, key)?;
    let mut new = std::mem::take(&mut head.events);
    new.extend(events);
    for ev in &new {
        w.put_as(&event_row_key(key, head.next), ev, Precondition::Any, &[])?;
        head.next += 1;
    }
    while head.next - head.first > MAX_EVENTS as u64 {
        w.delete(&event_row_key(key, head.first), Precondition::Any)?;
        head.first += 1;
    }
    if let Some(ms) = provider_seen_ms {
        head.provider_seen_ms = ms;
    }
    w.put_as(&events_key(key), &head, Precondition::Any, &[])?;
    Ok(())
}

/// Appends one event.
///
/// # Errors
/// Store errors.
pub fn add_event(w: &mut dyn WriteOps, key: &ObjectKey, ev: ClusterEvent) -> ApiResult<()> {
    append_events(w, key, vec![ev], None)
}

/// Removes a cluster's history.
fn forget_events(w: &mut dyn WriteOps, key: &ObjectKey) -> ApiResult<()> {
    let head = events_head(&*w, key)?;
    for seq in head.first..head.next {
        w.delete(&event_row_key(key, seq), Precondition::Any)?;
    }
    if w.get(&events_key(key))?.is_some() {
        w.delete(&events_key(key), Precondition::Any)?;
    }
    Ok(())
}

fn event(
    now: jiff::Timestamp,
    kind: &str,
    reason: &str,
    message: String,
    run: Option<&str>,
) -> ClusterEvent {
    ClusterEvent {
        time: now,
        kind: kind.to_owned(),
        reason: reason.to_owned(),
        message,
        run: run.map(str::to_owned),
    }
}

// ---- stacks ----

/// What a cluster was last asked to run and what it runs.
#[derive(Debug, Clone, Default)]
pub struct Stacks {
    /// The stack the last create/update call carried, by the run that made it.
    pub pending: Option<StackRecord>,
    /// The stack the cluster runs (moved from `pending` when that run succeeds).
    pub applied: Option<StackRecord>,
}

/// How the stacks are stored (kind `clusterStack`): the applied stack in the record named
/// after the cluster, the pending one in `{cluster}/pending`, so that recording a call's stack
/// writes that stack alone and reading the applied one decodes that alone (each is a rendered
/// stack, several KB of JSON). Records written before the split hold both in the first; its
/// `pending` is read while no record of its own exists and dropped by the next write.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredStacks {
    #[serde(default, skip_serializing)]
    pending: Option<StackRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    applied: Option<StackRecord>,
}

/// One recorded stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackRecord {
    /// The run that sent it.
    pub run: String,
    /// Its digest.
    pub digest: String,
    /// The template revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// The stack.
    pub desired: DesiredCluster,
    /// The digest of what it was rendered from ([`Desired::inputs`]); absent in records
    /// written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
}

fn stacks_key(key: &ObjectKey) -> ObjectKey {
    ObjectKey::new(key.scope.clone(), kinds::CLUSTER_STACK, key.name.clone())
}

fn pending_stack_key(key: &ObjectKey) -> ObjectKey {
    ObjectKey::new(
        key.scope.clone(),
        kinds::CLUSTER_STACK,
        format!("{}/pending", key.name),
    )
}

fn stored_stacks(r: &dyn ReadOps, key: &ObjectKey) -> ApiResult<StoredStacks> {
    Ok(r.get_as::<StoredStacks>(&stacks_key(key))?
        .map(|(s, _)| s)
        .unwrap_or_default())
}

fn own_pending_stack(r: &dyn ReadOps, key: &ObjectKey) -> ApiResult<Option<StackRecord>> {
    Ok(r.get_as::<StackRecord>(&pending_stack_key(key))?
        .map(|(p, _)| p))
}

/// Reads a cluster's stacks.
///
/// # Errors
/// Store errors.
pub fn read_stacks(r: &dyn ReadOps, key: &ObjectKey) -> ApiResult<Stacks> {
    let stored = stored_stacks(r, key)?;
    Ok(Stacks {
        pending: own_pending_stack(r, key)?.or(stored.pending),
        applied: stored.applied,
    })
}

/// The stack a cluster runs (`None` before its first create succeeded).
///
/// # Errors
/// Store errors.
pub fn applied_stack(r: &dyn ReadOps, key: &ObjectKey) -> ApiResult<Option<StackRecord>> {
    Ok(stored_stacks(r, key)?.applied)
}

/// The stack the cluster's last create/update call carried, until it is applied.
///
/// # Errors
/// Store errors.
pub fn pending_stack(r: &dyn ReadOps, key: &ObjectKey) -> ApiResult<Option<StackRecord>> {
    /// A record written before the split, decoding its `pending` alone: the applied stack
    /// beside it is skipped, not built (the hook asks on every observation and when a run
    /// ends, mostly of clusters that have no pending stack any more).
    #[derive(Deserialize)]
    struct Legacy {
        #[serde(default)]
        pending: Option<StackRecord>,
    }
    match own_pending_stack(r, key)? {
        Some(p) => Ok(Some(p)),
        None => Ok(r
            .get_as::<Legacy>(&stacks_key(key))?
            .and_then(|(s, _)| s.pending)),
    }
}

/// Records the stack a create/update call carries (replacing any pending one).
///
/// # Errors
/// Store errors.
pub fn record_pending_stack(
    w: &mut dyn WriteOps,
    key: &ObjectKey,
    p: &StackRecord,
) -> ApiResult<()> {
    w.put_as(&pending_stack_key(key), p, Precondition::Any, &[])?;
    Ok(())
}

/// Makes `p` the applied stack; it stays the pending one too when `keep_pending` (applied but
/// not healthy yet), otherwise there is no pending stack any more.
///
/// # Errors
/// Store errors.
pub fn apply_stack(
    w: &mut dyn WriteOps,
    key: &ObjectKey,
    p: &StackRecord,
    keep_pending: bool,
) -> ApiResult<()> {
    let stored = StoredStacks {
        pending: None,
        applied: Some(p.clone()),
    };
    w.put_as(&stacks_key(key), &stored, Precondition::Any, &[])?;
    if keep_pending {
        record_pending_stack(w, key, p)?;
    } else if w.get(&pending_stack_key(key))?.is_some() {
        w.delete(&pending_stack_key(key), Precondition::Any)?;
    }
    Ok(())
}

/// Removes everything a cluster left behind (its record, stacks, events, assignments).
///
/// # Errors
/// Store errors.
pub fn forget(w: &mut dyn WriteOps, key: &ObjectKey, obj: &ObjectOf<Cluster>) -> ApiResult<()> {
    // Its share of its template's summary, counted before its assignments go.
    let gone = templates::departing(&*w, key)?;
    w.delete(key, Precondition::Any)?;
    for k in [stacks_key(key), pending_stack_key(key)] {
        if w.get(&k)?.is_some() {
            w.delete(&k, Precondition::Any)?;
        }
    }
    forget_events(w, key)?;
    if let (Some(t), Some(project)) = (&obj.spec.template, key.scope.project()) {
        let ts = templates::template_scope(project, t.scope);
        let a = templates::assignment_key(&ts, &t.name, key);
        if w.get(&a)?.is_some() {
            w.delete(&a, Precondition::Any)?;
        }
    }
    templates::cluster_forgotten(w, gone)
}

// ---- handlers ----

fn require_perm(caller: &Caller, verb: Verb, scope: &Scope) -> ApiResult<()> {
    caller.require(Permission::new(Resource::Cluster, verb), scope.project())
}

fn path_name(path: &ObjectPath) -> ApiResult<String> {
    path.name
        .clone()
        .ok_or_else(|| ApiError::internal("route without a name"))
}

async fn delete_cluster(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let scope = path.scope();
    let name = path_name(&path)?;
    require_perm(&caller, Verb::Delete, &scope)?;
    let pre = resource::precondition(&headers)?;
    let shown = state
        .write(&caller, move |tx| {
            let key = ObjectKey::new(scope.clone(), kinds::CLUSTER, name.clone());
            let mut obj = require::<Cluster>(&*tx.ops, &scope, &name)?;
            if let Some(Precondition::Version(v)) = pre
                && obj.metadata.resource_version != v.to_string()
            {
                return Err(ApiError::new(
                    ErrorCode::PreconditionFailed,
                    format!("cluster {name:?} changed (If-Match)"),
                ));
            }
            if obj.status.phase == ClusterPhase::Deleting {
                return Ok(obj);
            }
            if let Some(run) = &obj.status.run {
                return Err(rule(
                    ErrorCode::ClusterBusy,
                    format!("cluster {name:?} is busy with run {run}; wait for it or cancel it"),
                ));
            }
            let before = resource::to_json(&Cluster::present(obj.clone()))?;
            let id = start_run(tx, &scope, &obj, "delete")?;
            obj.status.phase = ClusterPhase::Deleting;
            obj.status.run = Some(id.clone());
            obj.metadata.updated_at = Some(tx.now);
            let rv = save(&mut *tx.ops, &key, &obj)?;
            obj.metadata.resource_version = rv.to_string();
            add_event(
                &mut *tx.ops,
                &key,
                event(
                    tx.now,
                    "Normal",
                    "DeleteRequested",
                    format!("delete run {id} started"),
                    Some(&id),
                ),
            )?;
            let path = Cluster::api_path(&scope, &name);
            tx.audit(
                "delete",
                &path,
                scope.project(),
                Some(before),
                Some(resource::to_json(&Cluster::present(obj.clone()))?),
            )?;
            tx.changed(crate::resource::change_event::<Cluster>(
                tx,
                &scope,
                &name,
                "updated",
                Some(rv),
            ));
            Ok(obj)
        })
        .await?;
    Ok(object_response(
        StatusCode::ACCEPTED,
        &Cluster::present(shown),
    ))
}

/// `PATCH …/clusters/{c}/variables`: `{"variables": {"<profile>": {"<variable>": "<value>" | null}}}`
/// merges into `spec.variables` (`null` removes the cluster's own value) and applies at once.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VariablesPatch {
    variables: BTreeMap<String, BTreeMap<String, Option<String>>>,
}

async fn patch_variables(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
    headers: HeaderMap,
    json::JsonBytes(body): json::JsonBytes,
) -> ApiResult<Response> {
    let scope = path.scope();
    let name = path_name(&path)?;
    require_perm(&caller, Verb::Update, &scope)?;
    let patch: VariablesPatch = json::decode(&body)?;
    let pre = resource::precondition(&headers)?;
    let (shown, _) = state
        .write(&caller, move |tx| {
            let mut obj = require::<Cluster>(&*tx.ops, &scope, &name)?;
            for (profile, vars) in patch.variables {
                let entry = obj.spec.variables.entry(profile.clone()).or_default();
                for (k, v) in vars {
                    match v {
                        Some(v) => {
                            entry.insert(k, v);
                        }
                        None => {
                            entry.remove(&k);
                        }
                    }
                }
                if entry.is_empty() {
                    obj.spec.variables.remove(&profile);
                }
            }
            upsert::<Cluster>(tx, &scope, obj, pre)
        })
        .await?;
    Ok(object_response(StatusCode::OK, &shown))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AttachBody {
    template: TemplateRef,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    variables: Option<ClusterVariables>,
}

/// `POST …/clusters/{c}:attach` and `:detach` (dispatched from the `{name}` segment).
async fn action(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
    json::JsonBytes(body): json::JsonBytes,
) -> ApiResult<Response> {
    let scope = path.scope();
    let full = path_name(&path)?;
    let Some((name, verb)) = full.split_once(':') else {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            "POST is for actions: …/clusters/{name}:attach or :detach",
        ));
    };
    let (name, verb) = (name.to_owned(), verb.to_owned());
    require_perm(&caller, Verb::Update, &scope)?;
    let shown = match verb.as_str() {
        "attach" => {
            let b: AttachBody = json::decode(&body)?;
            state
                .write(&caller, move |tx| attach(tx, &scope, &name, b))
                .await?
        }
        "detach" => {
            if !body.is_empty() && body.as_ref() != b"{}" {
                return Err(ApiError::field("", ":detach takes no body"));
            }
            state
                .write(&caller, move |tx| detach(tx, &scope, &name))
                .await?
        }
        other => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no action {other:?} on clusters (attach, detach)"),
            ));
        }
    };
    Ok(object_response(StatusCode::OK, &shown))
}

fn attach(
    tx: &mut Tx<'_>,
    scope: &Scope,
    name: &str,
    b: AttachBody,
) -> ApiResult<ObjectOf<Cluster>> {
    let project = project_of(scope)?.to_owned();
    let key = ObjectKey::new(scope.clone(), kinds::CLUSTER, name);
    let old = require::<Cluster>(&*tx.ops, scope, name)?;
    if let Some(t) = &old.spec.template {
        return Err(rule(
            ErrorCode::ClusterAlreadyAttached,
            format!(
                "cluster {name:?} is attached to template {:?}; detach it first",
                t.name
            ),
        ));
    }
    if old.status.phase != ClusterPhase::Running || old.status.run.is_some() {
        return Err(rule(
            ErrorCode::InvalidState,
            format!("cluster {name:?} must be Running with no run in progress to attach"),
        ));
    }
    let mut new = old.clone();
    new.spec.template = Some(b.template);
    new.spec.profiles.clear();
    if b.time_zone.is_some() {
        new.spec.time_zone = b.time_zone;
    }
    if let Some(v) = b.variables {
        new.spec.variables = v;
    }
    validate_spec(&new.spec)?;
    let resolved = resolve(&*tx.ops, &project, &new.spec)?;
    check_account(&*tx.ops, &project, &new.spec, resolved.cloud_type)?;
    let linked = resolved.linked();
    let values = effective_values(&linked, &new.spec.variables)?;
    let view = resolved
        .template
        .as_ref()
        .ok_or_else(|| ApiError::internal("attach resolved no template"))?;
    templates::record_new_member(&mut *tx.ops, view, &key, &values)?;
    // It runs the template's revision already when it runs exactly the linked versions.
    let runs: Vec<(String, String)> = old
        .status
        .profiles
        .iter()
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect();
    let linked_set: Vec<(String, String)> = view
        .versions
        .iter()
        .map(|(p, _)| (p.name.clone(), p.version.clone()))
        .collect();
    let mut a = runs.clone();
    let mut b2 = linked_set.clone();
    a.sort();
    b2.sort();
    new.status.desired_revision = Some(view.revision);
    new.status.revision = (a == b2).then_some(view.revision);
    new.metadata.updated_at = Some(tx.now);
    finish_action(
        tx,
        scope,
        &key,
        &old,
        new,
        "attach",
        format!("attached to template {:?}", view.name),
    )
}

fn detach(tx: &mut Tx<'_>, scope: &Scope, name: &str) -> ApiResult<ObjectOf<Cluster>> {
    let key = ObjectKey::new(scope.clone(), kinds::CLUSTER, name);
    let old = require::<Cluster>(&*tx.ops, scope, name)?;
    let Some(t) = old.spec.template.clone() else {
        return Err(rule(
            ErrorCode::InvalidState,
            format!("cluster {name:?} is not attached to a template"),
        ));
    };
    if old.status.run.is_some() {
        return Err(rule(
            ErrorCode::ClusterBusy,
            format!("cluster {name:?} is busy with a run; wait for it or cancel it"),
        ));
    }
    if old.status.profiles.is_empty() {
        return Err(rule(
            ErrorCode::InvalidState,
            format!("cluster {name:?} runs no profile yet (deploy it first)"),
        ));
    }
    let project = project_of(scope)?.to_owned();
    let ts = templates::template_scope(&project, t.scope);
    // Keep what it runs: its applied versions and the values it was given for them.
    let mut new = old.clone();
    new.spec.template = None;
    new.spec.profiles = old
        .status
        .profiles
        .iter()
        .map(|p| fleetplane_domain::template::ProfileRef {
            name: p.name.clone(),
            version: p.version.clone(),
            scope: p.scope,
            variables: Vec::new(),
        })
        .collect();
    if let Some(rev) = old.status.revision
        && let Some(stored) = templates::stored_assignments(&*tx.ops, &ts, &t.name, &key, rev)?
    {
        let mut vars = ClusterVariables::new();
        for (p, m) in stored {
            for (v, a) in m {
                vars.entry(p.clone()).or_default().insert(v, a.new_value);
            }
        }
        new.spec.variables = vars;
    }
    new.status.revision = None;
    new.status.desired_revision = None;
    new.metadata.updated_at = Some(tx.now);
    // Saved first: it leaves the template's summary with the share its assignments gave it.
    let shown = finish_action(
        tx,
        scope,
        &key,
        &old,
        new,
        "detach",
        format!("detached from template {:?}", t.name),
    )?;
    let a = templates::assignment_key(&ts, &t.name, &key);
    if tx.ops.get(&a)?.is_some() {
        tx.ops.delete(&a, Precondition::Any)?;
    }
    Ok(shown)
}

fn finish_action(
    tx: &mut Tx<'_>,
    scope: &Scope,
    key: &ObjectKey,
    old: &ObjectOf<Cluster>,
    mut new: ObjectOf<Cluster>,
    action: &str,
    message: String,
) -> ApiResult<ObjectOf<Cluster>> {
    let rv = save(&mut *tx.ops, key, &new)?;
    new.metadata.resource_version = rv.to_string();
    let path = Cluster::api_path(scope, &key.name);
    tx.audit(
        action,
        &path,
        scope.project(),
        Some(resource::to_json(&Cluster::present(old.clone()))?),
        Some(resource::to_json(&Cluster::present(new.clone()))?),
    )?;
    add_event(
        &mut *tx.ops,
        key,
        event(
            tx.now,
            "Normal",
            if action == "attach" {
                "Attached"
            } else {
                "Detached"
            },
            message,
            None,
        ),
    )?;
    tx.changed(crate::resource::change_event::<Cluster>(
        tx,
        scope,
        &key.name,
        "updated",
        Some(rv),
    ));
    Ok(Cluster::present(new))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    limit: Option<usize>,
}

/// `GET …/clusters/{c}/events?limit=`: newest first.
async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<Value>> {
    let scope = path.scope();
    let name = path_name(&path)?;
    require_perm(&caller, Verb::Get, &scope)?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_EVENTS);
    let items = state
        .read(move |r| {
            require::<Cluster>(r, &scope, &name)?;
            let key = ObjectKey::new(scope, kinds::CLUSTER, name);
            let mut events = read_events(r, &key)?;
            events.reverse();
            events.truncate(limit);
            Ok(events)
        })
        .await?;
    Ok(Json(json!({"items": items})))
}

/// Registers the cluster routes (project scope only).
pub fn routes(r: &mut Routes) {
    let c = "/v1/projects/{project}/clusters";
    r.add(c, &[Method::GET], get(resource::list::<Cluster>));
    r.add(
        &format!("{c}/{{name}}"),
        &[Method::GET, Method::PUT, Method::DELETE],
        get(resource::get::<Cluster>)
            .put(resource::put::<Cluster>)
            .delete(delete_cluster)
            .post(action),
    );
    for a in ["attach", "detach"] {
        r.operations
            .push((Method::POST, format!("{c}/{{name}}:{a}")));
    }
    r.add(
        &format!("{c}/{{name}}/variables"),
        &[Method::PATCH],
        patch(patch_variables),
    );
    r.add(&format!("{c}/{{name}}/events"), &[Method::GET], get(events));
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetplane_store::{ListQuery, RedbStorage, Storage};

    fn ev(i: u64) -> ClusterEvent {
        ClusterEvent {
            time: jiff::Timestamp::from_second(1_800_000_000 + i as i64).unwrap(),
            kind: "Normal".into(),
            reason: "Test".into(),
            message: format!("event {i}"),
            run: None,
        }
    }

    fn rows(s: &RedbStorage, key: &ObjectKey) -> usize {
        let r = s.read().unwrap();
        r.list(&ListQuery {
            scope: key.scope.clone(),
            kind: kinds::CLUSTER_EVENTS,
            name_prefix: format!("{}/", key.name),
            after: None,
            limit: usize::MAX,
        })
        .unwrap()
        .items
        .len()
    }

    fn append(s: &RedbStorage, key: &ObjectKey, events: Vec<ClusterEvent>, seen: Option<u64>) {
        let mut w = s.write().unwrap();
        append_events(&mut *w, key, events, seen).unwrap();
        w.commit().unwrap();
    }

    #[test]
    fn a_history_is_rows_that_keep_the_newest_events_and_reads_the_old_format() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStorage::open(&dir.path().join("db.redb")).unwrap();
        let key = ObjectKey::new(Scope::Project("p".into()), kinds::CLUSTER, "web");
        let other = ObjectKey::new(Scope::Project("p".into()), kinds::CLUSTER, "web-2");

        // A history written before rows: one record with the whole list.
        let mut w = s.write().unwrap();
        w.put_as(
            &events_key(&key),
            &serde_json::json!({"events": [ev(0), ev(1)], "providerSeenMs": 5}),
            Precondition::Any,
            &[],
        )
        .unwrap();
        w.commit().unwrap();
        let r = s.read().unwrap();
        assert_eq!(read_events(&*r, &key).unwrap(), [ev(0), ev(1)]);
        assert_eq!(provider_events_seen(&*r, &key).unwrap(), 5);
        drop(r);

        // The first append moves it to rows.
        append(&s, &key, vec![ev(2)], Some(9));
        let r = s.read().unwrap();
        assert_eq!(read_events(&*r, &key).unwrap(), [ev(0), ev(1), ev(2)]);
        assert_eq!(provider_events_seen(&*r, &key).unwrap(), 9);
        let head = r.get(&events_key(&key)).unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&head.body).contains("events"));
        drop(r);
        assert_eq!(rows(&s, &key), 3);

        // Past the limit the oldest go, one row per event, in order.
        append(&s, &other, vec![ev(1000)], None);
        for i in 3..250 {
            append(&s, &key, vec![ev(i)], None);
        }
        append(&s, &key, (250..260).map(ev).collect(), None);
        let r = s.read().unwrap();
        let kept = read_events(&*r, &key).unwrap();
        assert_eq!(kept.len(), MAX_EVENTS);
        assert_eq!(kept.first(), Some(&ev(60)));
        assert_eq!(kept.last(), Some(&ev(259)));
        assert_eq!(
            provider_events_seen(&*r, &key).unwrap(),
            9,
            "kept when not given"
        );
        assert_eq!(read_events(&*r, &other).unwrap(), [ev(1000)], "web-2 apart");
        drop(r);
        assert_eq!(rows(&s, &key), MAX_EVENTS);

        // Forgetting the cluster removes every row and the head, and nothing of web-2.
        let mut w = s.write().unwrap();
        forget_events(&mut *w, &key).unwrap();
        w.commit().unwrap();
        assert_eq!(rows(&s, &key), 0);
        let r = s.read().unwrap();
        assert!(r.get(&events_key(&key)).unwrap().is_none());
        assert!(read_events(&*r, &key).unwrap().is_empty());
        assert_eq!(read_events(&*r, &other).unwrap(), [ev(1000)]);
    }

    fn stack(run: &str, digest: &str) -> StackRecord {
        StackRecord {
            run: run.into(),
            digest: digest.into(),
            revision: Some(1),
            desired: DesiredCluster {
                cloud_type: CloudType::All,
                labels: BTreeMap::new(),
                node_pools: Vec::new(),
                os_image: "ubuntu".into(),
                kubernetes_version: "1.33.4".into(),
                layers: Vec::new(),
                profiles: Vec::new(),
            },
            inputs: None,
        }
    }

    #[test]
    fn pending_and_applied_stacks_are_records_of_their_own_and_read_the_old_form() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStorage::open(&dir.path().join("db.redb")).unwrap();
        let key = ObjectKey::new(Scope::Project("p".into()), kinds::CLUSTER, "web");
        let digests = |s: &RedbStorage| {
            let r = s.read().unwrap();
            let both = read_stacks(&*r, &key).unwrap();
            assert_eq!(
                pending_stack(&*r, &key).unwrap().map(|p| p.digest),
                both.pending.as_ref().map(|p| p.digest.clone())
            );
            (
                both.pending.map(|p| p.digest),
                applied_stack(&*r, &key).unwrap().map(|a| a.digest),
            )
        };
        let some = |d: &str| Some(d.to_owned());

        // Both in one record, as stored before the split.
        let mut w = s.write().unwrap();
        w.put_as(
            &stacks_key(&key),
            &serde_json::json!({"pending": stack("r1", "d1"), "applied": stack("r0", "d0")}),
            Precondition::Any,
            &[],
        )
        .unwrap();
        w.commit().unwrap();
        assert_eq!(digests(&s), (some("d1"), some("d0")));

        // A new call's stack is recorded on its own and read first.
        let mut w = s.write().unwrap();
        record_pending_stack(&mut *w, &key, &stack("r2", "d2")).unwrap();
        w.commit().unwrap();
        assert_eq!(digests(&s), (some("d2"), some("d0")));

        // Applied but not healthy yet: applied, and still pending.
        let mut w = s.write().unwrap();
        apply_stack(&mut *w, &key, &stack("r2", "d2"), true).unwrap();
        w.commit().unwrap();
        assert_eq!(digests(&s), (some("d2"), some("d2")));

        // Applied for good: no pending stack, and the old form's pending one is gone too.
        let mut w = s.write().unwrap();
        apply_stack(&mut *w, &key, &stack("r2", "d2"), false).unwrap();
        w.commit().unwrap();
        assert_eq!(digests(&s), (None, some("d2")));
    }
}
