//! Rollouts of template revisions (DESIGN §5, docs/rollouts.md): which rollout run a template
//! has, what waits behind it, and the template actions `:upgrade`, `:pause`, `:resume` and
//! `:rollback`, plus the `/plan` and `/rollouts` views.
//!
//! One rollout run per template at a time. A new revision (or newly eligible clusters) starts
//! a window-gated run; if the current run has not changed any cluster yet it is cancelled and
//! the new one queued behind it (revisions that never started are skipped); if it has, the
//! new one waits until it ends (§5.2). The lifecycle hook starts what is queued when the
//! current run ends, inside the runtime's transaction.

use crate::Routes;
use crate::auth::Caller;
use crate::clusters::runtime_key;
use crate::error::{ApiError, ApiResult};
use crate::json;
use crate::resource::{self, ObjectOf, ObjectPath, rule};
use crate::state::{AppState, Tx};
use crate::templates::{self, ClusterTemplate, MemberView};
use crate::workflows::Workflows;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fleetplane_domain::ErrorCode;
use fleetplane_domain::authz::{Permission, Resource, Verb};
use fleetplane_domain::template::{OnFailure, ProfileRef};
use fleetplane_runtime::NewRun;
use fleetplane_store::tables::kinds;
use fleetplane_store::{ObjectKey, Precondition, ReadOps, Scope, WriteExt, WriteOps};
use fleetplane_workflow::{Event, Item, Principal, Signal};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Rollouts kept in a template's history.
const MAX_HISTORY: usize = 100;

/// Why a rollout was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// A new revision (window-gated).
    Revision,
    /// Clusters became eligible (variables assigned, a cluster attached).
    Eligible,
    /// A person pressed Upgrade now.
    UpgradeNow,
    /// A rollback to the previous revision (at once, for the clusters that moved).
    Rollback,
    /// What an Upgrade now of some clusters left for the windows.
    Remaining,
}

/// One rollout run of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// The run.
    pub run: String,
    /// The revision it moves clusters to.
    pub revision: u64,
    /// Why it started.
    pub reason: Reason,
    /// Windows and exclusions ignored.
    #[serde(default)]
    pub upgrade_now: bool,
    /// Only these clusters (names as the variables view shows them); empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// Who asked.
    pub by: String,
    /// When it was asked for.
    pub requested_at: jiff::Timestamp,
    /// When the run was created (absent while queued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<jiff::Timestamp>,
    /// Whether a cluster began updating in this run.
    #[serde(default)]
    pub changed_clusters: bool,
    /// When the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<jiff::Timestamp>,
    /// How it ended (`Succeeded`, `Failed`, `Cancelled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// A template's rollouts (kind `templateRollouts`, named like the template).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollouts {
    /// The run moving clusters now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Rollout>,
    /// What starts when it ends (its run id is chosen already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<Rollout>,
    /// Ended rollouts, oldest first.
    #[serde(default)]
    pub history: Vec<Rollout>,
}

/// The linked set of one revision (kind `templateRevision`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionRecord {
    /// The revision.
    pub revision: u64,
    /// `spec.profiles` of that revision (with their template values).
    pub profiles: Vec<ProfileRef>,
    /// When it was saved.
    pub created_at: jiff::Timestamp,
}

fn rollouts_key(scope: &Scope, template: &str) -> ObjectKey {
    ObjectKey::new(scope.clone(), kinds::TEMPLATE_ROLLOUTS, template)
}

fn revision_key(scope: &Scope, template: &str, revision: u64) -> ObjectKey {
    ObjectKey::new(
        scope.clone(),
        kinds::TEMPLATE_REVISION,
        format!("{template}/{revision:010}"),
    )
}

/// Reads a template's rollouts.
///
/// # Errors
/// Store errors.
pub fn read(r: &dyn ReadOps, scope: &Scope, template: &str) -> ApiResult<Rollouts> {
    Ok(r.get(&rollouts_key(scope, template))?
        .map(|rec| rec.decode::<Rollouts>())
        .transpose()?
        .unwrap_or_default())
}

fn write(w: &mut dyn WriteOps, scope: &Scope, template: &str, r: &Rollouts) -> ApiResult<()> {
    w.put_as(&rollouts_key(scope, template), r, Precondition::Any, &[])?;
    Ok(())
}

/// Records the linked set of `revision`.
///
/// # Errors
/// Store errors.
pub fn record_revision(
    w: &mut dyn WriteOps,
    scope: &Scope,
    template: &str,
    revision: u64,
    profiles: &[ProfileRef],
    now: jiff::Timestamp,
) -> ApiResult<()> {
    let rec = RevisionRecord {
        revision,
        profiles: profiles.to_vec(),
        created_at: now,
    };
    w.put_as(
        &revision_key(scope, template, revision),
        &rec,
        Precondition::Any,
        &[],
    )?;
    Ok(())
}

/// The linked set of `revision`, if recorded.
///
/// # Errors
/// Store errors.
pub fn load_revision(
    r: &dyn ReadOps,
    scope: &Scope,
    template: &str,
    revision: u64,
) -> ApiResult<Option<RevisionRecord>> {
    Ok(r.get(&revision_key(scope, template, revision))?
        .map(|rec| rec.decode::<RevisionRecord>())
        .transpose()?)
}

/// Removes everything rollouts keep for a deleted template.
///
/// # Errors
/// Store errors.
pub fn forget(w: &mut dyn WriteOps, scope: &Scope, template: &str) -> ApiResult<()> {
    let k = rollouts_key(scope, template);
    if w.get(&k)?.is_some() {
        w.delete(&k, Precondition::Any)?;
    }
    loop {
        let page = w.list(&fleetplane_store::ListQuery {
            scope: scope.clone(),
            kind: kinds::TEMPLATE_REVISION,
            name_prefix: format!("{template}/"),
            after: None,
            limit: 500,
        })?;
        if page.items.is_empty() {
            return Ok(());
        }
        for rec in page.items {
            w.delete(&rec.key, Precondition::Any)?;
        }
    }
}

/// What a request for a rollout asks.
#[derive(Debug, Clone)]
pub struct Request {
    /// Why.
    pub reason: Reason,
    /// Ignore windows.
    pub upgrade_now: bool,
    /// Only these clusters (display names); empty: all.
    pub clusters: Vec<String>,
    /// Who.
    pub by: String,
}

/// What [`schedule`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheduled {
    /// A run started now.
    Started(String),
    /// The current run was told to stop waiting for windows.
    Signalled(String),
    /// A run waits behind the current one (which may have been cancelled).
    Queued(String),
}

impl Scheduled {
    /// The run concerned.
    pub fn run(&self) -> &str {
        match self {
            Scheduled::Started(r) | Scheduled::Signalled(r) | Scheduled::Queued(r) => r,
        }
    }
}

fn system() -> Principal {
    Principal {
        name: "system".into(),
        roles: vec!["tenant-admin".into()],
    }
}

fn is_terminal(r: &dyn ReadOps, run: &str) -> ApiResult<bool> {
    Ok(r.run(run)?.is_none_or(|rec| rec.header.terminal))
}

/// Starts or queues a rollout of `template`'s current revision (see the module docs).
///
/// # Errors
/// 409 `RolloutInProgress` for an Upgrade now while clusters are updating; store errors.
pub fn schedule(
    w: &mut dyn WriteOps,
    wf: &Workflows,
    scope: &Scope,
    template: &str,
    req: Request,
    now: jiff::Timestamp,
) -> ApiResult<Scheduled> {
    let view = templates::member_view(&*w, scope, template)?
        .ok_or_else(|| ApiError::not_found("cluster template", template))?;
    let mut rec = read(&*w, scope, template)?;
    let planned = Rollout {
        run: uuid::Uuid::now_v7().to_string(),
        revision: view.revision,
        reason: req.reason,
        upgrade_now: req.upgrade_now,
        clusters: req.clusters.clone(),
        by: req.by.clone(),
        requested_at: now,
        started_at: None,
        changed_clusters: false,
        ended_at: None,
        outcome: None,
    };
    let current = match rec.current.take() {
        Some(c) if !is_terminal(&*w, &c.run)? => Some(c),
        Some(mut ended) => {
            ended.ended_at.get_or_insert(now);
            push_history(&mut rec, ended);
            None
        }
        None => None,
    };
    let out = match current {
        None => {
            let mut started = planned;
            start(w, wf, scope, &view, &mut started, now)?;
            let id = started.run.clone();
            rec.current = Some(started);
            Scheduled::Started(id)
        }
        Some(cur) if cur.changed_clusters => {
            if req.reason == Reason::UpgradeNow {
                rec.current = Some(cur);
                return Err(rule(
                    ErrorCode::RolloutInProgress,
                    format!(
                        "clusters of template {template:?} are updating (run {}); pause it, or \
                         wait until it ends",
                        rec.current
                            .as_ref()
                            .map(|c| c.run.as_str())
                            .unwrap_or_default()
                    ),
                ));
            }
            // A queued rollback stays ahead of anything else.
            if rec
                .queued
                .as_ref()
                .is_none_or(|q| q.reason != Reason::Rollback)
                || req.reason == Reason::Rollback
            {
                rec.queued = Some(planned);
            }
            let id = rec
                .queued
                .as_ref()
                .map(|q| q.run.clone())
                .unwrap_or_default();
            rec.current = Some(cur);
            Scheduled::Queued(id)
        }
        Some(cur)
            if req.upgrade_now
                && req.clusters.is_empty()
                && cur.revision == view.revision
                && cur.clusters.is_empty() =>
        {
            wf.client()
                .send_in(
                    w,
                    &cur.run,
                    &Event::Signal {
                        signal: Signal::UpgradeNow,
                        by: Principal::user(&req.by),
                        reason: Some("Upgrade now".into()),
                    },
                )
                .map_err(crate::workflows::runtime_error)?;
            let id = cur.run.clone();
            let mut cur = cur;
            cur.upgrade_now = true;
            rec.current = Some(cur);
            Scheduled::Signalled(id)
        }
        Some(cur) => {
            // Nothing moved yet: skip it (cancelled) and start the new one after it ends.
            wf.client()
                .send_in(
                    w,
                    &cur.run,
                    &Event::Signal {
                        signal: Signal::Cancel,
                        by: system(),
                        reason: Some(format!(
                            "superseded: {:?} for revision {}",
                            req.reason, view.revision
                        )),
                    },
                )
                .map_err(crate::workflows::runtime_error)?;
            let id = planned.run.clone();
            rec.current = Some(cur);
            rec.queued = Some(planned);
            Scheduled::Queued(id)
        }
    };
    write(w, scope, template, &rec)?;
    Ok(out)
}

fn push_history(rec: &mut Rollouts, r: Rollout) {
    rec.history.push(r);
    if rec.history.len() > MAX_HISTORY {
        let drop = rec.history.len() - MAX_HISTORY;
        rec.history.drain(..drop);
    }
}

fn scope_name(scope: &Scope) -> &'static str {
    match scope {
        Scope::Tenant => "tenant",
        Scope::Project(_) => "project",
    }
}

/// Creates the run of `r` (its id chosen already) inside `w`.
fn start(
    w: &mut dyn WriteOps,
    wf: &Workflows,
    scope: &Scope,
    view: &MemberView,
    r: &mut Rollout,
    now: jiff::Timestamp,
) -> ApiResult<()> {
    let strategy = view.spec.rollout.clone().unwrap_or_default();
    let (digest, def) = match &strategy.workflow {
        Some(w_ref) => {
            let stored = w
                .get(&ObjectKey::tenant(
                    kinds::WORKFLOW,
                    format!("{}@{}", w_ref.name, w_ref.version),
                ))?
                .ok_or_else(|| {
                    ApiError::field(
                        "spec.rollout.workflow",
                        format!("workflow {}@{} not found", w_ref.name, w_ref.version),
                    )
                })?
                .decode::<crate::workflows::StoredWorkflow>()?;
            let def = wf.client().definition(&stored.digest).ok_or_else(|| {
                ApiError::internal(format!("workflow {} is not registered", stored.digest))
            })?;
            (stored.digest, def)
        }
        None => {
            let digest = wf
                .builtin_digest("rollout")
                .ok_or_else(|| ApiError::internal("built-in rollout workflow missing"))?;
            let def = wf
                .client()
                .definition(&digest)
                .ok_or_else(|| ApiError::internal("built-in rollout workflow not registered"))?;
            (digest, def)
        }
    };
    let keys: Vec<String> = r.clusters.iter().map(|c| key_of(scope, c)).collect();
    // Percentages become counts of the template's clusters now (the workflow's inputs are
    // counts): the fleet's for `maxConcurrency`, each wave's for the wave's own limit.
    let labels: Vec<fleetplane_domain::Labels> = templates::member_names(&*w, scope, &view.name)?
        .into_iter()
        .map(|(_, c)| c.spec.labels.into_iter().collect())
        .collect();
    let mut taken = vec![false; labels.len()];
    let mut wave_sizes = Vec::new();
    for wave in &strategy.waves {
        let mut n = 0;
        for (i, l) in labels.iter().enumerate() {
            if !taken[i]
                && wave
                    .selector
                    .match_labels
                    .iter()
                    .all(|(k, v)| l.get(k) == Some(v))
            {
                taken[i] = true;
                n += 1;
            }
        }
        wave_sizes.push(n);
    }
    let all = json!({
        "revision": r.revision,
        "maxConcurrency": strategy.max_concurrency.as_ref().map(|l| limit_value(l, labels.len())),
        "waves": strategy.waves.iter().zip(&wave_sizes).map(|(w, size)| {
            let mut wave = json!({
                "name": w.name,
                "selector": {"matchLabels": w.selector.match_labels},
                "soakMinutes": w.soak_minutes,
            });
            // Absent, not null: the input schema types it as an integer.
            if let Some(l) = &w.max_concurrency {
                wave["maxConcurrency"] = limit_value(l, *size);
            }
            wave
        }).collect::<Vec<_>>(),
        "maxFailures": strategy.max_failures,
        "onFailure": match strategy.on_failure { OnFailure::Pause => "pause", OnFailure::Rollback => "rollback" },
        "upgradeNow": r.upgrade_now,
        "clusters": keys,
    });
    // Only the inputs the definition declares (an operator's workflow may take fewer).
    let mut inputs = serde_json::Map::new();
    for (k, v) in all.as_object().into_iter().flatten() {
        if def.spec.inputs.contains_key(k) && !v.is_null() {
            inputs.insert(k.clone(), v.clone());
        }
    }
    let mut facts = serde_json::Map::new();
    facts.insert("template".into(), json!(view.name));
    facts.insert("templateScope".into(), json!(scope_name(scope)));
    facts.insert("revision".into(), json!(r.revision));
    wf.client()
        .start_in(
            w,
            NewRun {
                id: r.run.clone(),
                definition: digest,
                inputs: Value::Object(inputs),
                subject: Some(Item {
                    name: format!("template:{}", view.name),
                    labels: Default::default(),
                    facts,
                }),
                project: scope.project().map(str::to_owned),
                cluster: None,
            },
        )
        .map_err(crate::workflows::runtime_error)?;
    r.started_at = Some(now);
    Ok(())
}

/// A limit as a count of `of` clusters: a percentage rounds up and is at least 1.
fn limit_value(l: &fleetplane_domain::template::Limit, of: usize) -> Value {
    match l {
        fleetplane_domain::template::Limit::Count(n) => json!(n),
        fleetplane_domain::template::Limit::Percent(p) => {
            let pct: u64 = p.trim_end_matches('%').trim().parse().unwrap_or(100);
            let of = of as u64;
            json!((of * pct).div_ceil(100).max(1))
        }
    }
}

/// The runtime key of a cluster named as the variables view names it (`name` in a project
/// template, `project/name` in a tenant one).
fn key_of(scope: &Scope, display: &str) -> String {
    match scope {
        Scope::Project(p) => runtime_key(p, display),
        Scope::Tenant => display.to_owned(),
    }
}

// ---- what the lifecycle hook calls (inside the runtime's transaction) ----

/// A rollout run of `template` ended: record it, and start what waits behind it (or, after an
/// Upgrade now of some clusters, a window-gated run for the rest).
///
/// # Errors
/// Store errors.
pub fn run_ended(
    w: &mut dyn WriteOps,
    wf: &Workflows,
    scope: &Scope,
    template: &str,
    run: &str,
    outcome: &str,
    now: jiff::Timestamp,
) -> ApiResult<()> {
    let mut rec = read(&*w, scope, template)?;
    let Some(mut cur) = rec.current.take_if(|c| c.run == run) else {
        return Ok(());
    };
    cur.ended_at = Some(now);
    cur.outcome = Some(outcome.to_owned());
    let follow_up = cur.upgrade_now && !cur.clusters.is_empty() && outcome == "Succeeded";
    let by = cur.by.clone();
    push_history(&mut rec, cur);
    let Some(view) = templates::member_view(&*w, scope, template)? else {
        write(w, scope, template, &rec)?;
        return Ok(());
    };
    let next = match rec.queued.take() {
        Some(mut q) => {
            q.revision = view.revision;
            Some(q)
        }
        None if follow_up => Some(Rollout {
            run: uuid::Uuid::now_v7().to_string(),
            revision: view.revision,
            reason: Reason::Remaining,
            upgrade_now: false,
            clusters: Vec::new(),
            by,
            requested_at: now,
            started_at: None,
            changed_clusters: false,
            ended_at: None,
            outcome: None,
        }),
        None => None,
    };
    if let Some(mut n) = next {
        start(w, wf, scope, &view, &mut n, now)?;
        rec.current = Some(n);
    }
    write(w, scope, template, &rec)
}

/// A child of run `parent` began updating a cluster of `template`: the rollout has changed
/// clusters (a newer revision now waits for it instead of replacing it).
///
/// # Errors
/// Store errors.
pub fn cluster_updating(
    w: &mut dyn WriteOps,
    scope: &Scope,
    template: &str,
    parent: &str,
) -> ApiResult<()> {
    let mut rec = read(&*w, scope, template)?;
    match &mut rec.current {
        Some(c) if c.run == parent && !c.changed_clusters => {
            c.changed_clusters = true;
            write(w, scope, template, &rec)
        }
        _ => Ok(()),
    }
}

// ---- template state (DESIGN §5.1) ----

/// The rollout part of a template's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSummary {
    /// The run.
    pub run: String,
    /// Its revision.
    pub revision: u64,
    /// Its run status.
    pub status: String,
    /// Windows ignored.
    pub upgrade_now: bool,
    /// Whether clusters have changed in it.
    pub changed_clusters: bool,
    /// The run waiting behind it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<String>,
    /// Why it is paused, which clusters failed with their last errors, and what `:resume`
    /// would do (for on-call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<PausedRollout>,
}

/// A paused rollout, explained.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PausedRollout {
    /// Who paused it (`engine` when the failure budget was exhausted).
    pub by: String,
    /// Why.
    pub reason: String,
    /// Since when.
    pub since: jiff::Timestamp,
    /// The failed clusters and their last errors.
    pub failed: Vec<FailedCluster>,
    /// What `:resume` does.
    pub on_resume: String,
}

/// A cluster that failed in a rollout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedCluster {
    /// The cluster (`project/name`).
    pub cluster: String,
    /// Its last error.
    pub error: String,
    /// Its child run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// Explains a paused run from its state.
fn paused_of(st: &fleetplane_workflow::RunState) -> Option<PausedRollout> {
    let p = st.paused.as_ref()?;
    let failed: Vec<FailedCluster> = st
        .fanout()
        .map(|f| {
            f.items
                .iter()
                .filter(|i| i.status == fleetplane_workflow::run::ItemStatus::Failed)
                .map(|i| FailedCluster {
                    cluster: i.name.clone(),
                    error: i.detail.clone().unwrap_or_default(),
                    run: i.child.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let on_resume = if failed.is_empty() {
        "continues the rollout where it stopped".to_owned()
    } else {
        format!(
            "retries {} failed cluster{}, then continues the rollout",
            failed.len(),
            if failed.len() == 1 { "" } else { "s" }
        )
    };
    Some(PausedRollout {
        by: p.by.clone(),
        reason: p.reason.clone(),
        since: p.since,
        failed,
        on_resume,
    })
}

/// The template's rollout state from its clusters' counts (its member summary: `updating`
/// is the number of its clusters in phase Updating) and its current/last rollout. O(1): it is
/// InProgress while the current rollout run is active and a cluster of the template is
/// updating (whichever run updates it).
///
/// # Errors
/// Store errors.
pub fn state_of(
    r: &dyn ReadOps,
    scope: &Scope,
    template: &str,
    total: u64,
    up_to_date: u64,
    updating: u64,
) -> ApiResult<(templates::TemplateState, Option<RolloutSummary>)> {
    use templates::TemplateState as S;
    let rec = read(r, scope, template)?;
    let current = match &rec.current {
        Some(c) => r.run(&c.run)?.map(|run| (c, run)),
        None => None,
    };
    let paused = match &current {
        Some((_, run)) if run.header.status == "Paused" => {
            // With its fan-out items: they are stored apart from the state.
            paused_of(&fleetplane_runtime::load_state(r, run).map_err(|e| {
                crate::error::ApiError::internal(format!("run {}: {e}", run.header.id))
            })?)
        }
        _ => None,
    };
    let current = current.map(|(c, run)| (c, run.header));
    let summary = current.as_ref().map(|(c, h)| RolloutSummary {
        run: c.run.clone(),
        revision: c.revision,
        status: h.status.clone(),
        upgrade_now: c.upgrade_now,
        changed_clusters: c.changed_clusters,
        queued: rec.queued.as_ref().map(|q| q.run.clone()),
        paused: paused.clone(),
    });
    let state = if up_to_date == total {
        S::Applied
    } else {
        match &current {
            Some((_, h)) if h.status == "Paused" => S::Paused,
            Some((_, h)) if !h.terminal => {
                if updating > 0 {
                    S::InProgress
                } else if up_to_date > 0 {
                    S::PartiallyApplied
                } else {
                    S::Pending
                }
            }
            _ => match rec.history.last() {
                Some(last) if last.outcome.as_deref() == Some("Failed") => S::Failed,
                _ if up_to_date > 0 => S::PartiallyApplied,
                _ => S::Pending,
            },
        }
    };
    Ok((state, summary))
}

// ---- actions ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    #[serde(default)]
    clusters: Vec<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST …/cluster-templates/{t}:upgrade|:pause|:resume|:rollback`.
pub async fn action(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
    json::JsonBytes(body): json::JsonBytes,
) -> ApiResult<Response> {
    let scope = path.scope();
    let full = path.name.clone().unwrap_or_default();
    let Some((name, verb)) = full.split_once(':') else {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            "POST is for actions: …/cluster-templates/{name}:upgrade, :pause, :resume or :rollback",
        ));
    };
    caller.require(
        Permission::new(Resource::ClusterTemplate, Verb::Update),
        scope.project(),
    )?;
    let b: ActionBody = if body.is_empty() {
        ActionBody::default()
    } else {
        json::decode(&body)?
    };
    if verb != "upgrade" && !b.clusters.is_empty() {
        return Err(ApiError::field("clusters", "only :upgrade takes clusters"));
    }
    let (name, verb) = (name.to_owned(), verb.to_owned());
    let by = caller.user.clone();
    let answer = state
        .write(&caller, move |tx| {
            resource::require::<ClusterTemplate>(&*tx.ops, &scope, &name)?;
            let path = <ClusterTemplate as resource::ApiKind>::api_path(&scope, &name);
            let out = match verb.as_str() {
                "upgrade" => upgrade(tx, &scope, &name, &b.clusters, &by)?,
                "pause" | "resume" => {
                    signal_current(tx, &scope, &name, &verb, &by, b.reason.clone())?
                }
                "rollback" => rollback_action(tx, &scope, &name, &by, b.reason.clone())?,
                other => {
                    return Err(ApiError::new(
                        ErrorCode::NotFound,
                        format!(
                            "no action {other:?} on templates (upgrade, pause, resume, rollback)"
                        ),
                    ));
                }
            };
            tx.audit(
                &format!("template.{verb}"),
                &path,
                scope.project(),
                None,
                Some(json!({"clusters": b.clusters, "reason": b.reason, "result": out})),
            )?;
            Ok(out)
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

fn upgrade(
    tx: &mut Tx<'_>,
    scope: &Scope,
    name: &str,
    clusters: &[String],
    by: &str,
) -> ApiResult<Value> {
    let wf = tx.workflows()?;
    let view = templates::member_view(&*tx.ops, scope, name)?
        .ok_or_else(|| ApiError::not_found("cluster template", name))?;
    let behind = templates::clusters_behind(&*tx.ops, scope, name, view.revision, clusters)?;
    if behind == 0 {
        return Err(rule(
            ErrorCode::NothingToUpgrade,
            format!(
                "every selected cluster of template {name:?} runs revision {} already",
                view.revision
            ),
        ));
    }
    let s = schedule(
        &mut *tx.ops,
        &wf,
        scope,
        name,
        Request {
            reason: Reason::UpgradeNow,
            upgrade_now: true,
            clusters: clusters.to_vec(),
            by: by.to_owned(),
        },
        tx.now,
    )?;
    Ok(scheduled_json(&s, view.revision, behind))
}

fn scheduled_json(s: &Scheduled, revision: u64, clusters: u64) -> Value {
    let how = match s {
        Scheduled::Started(_) => "started",
        Scheduled::Signalled(_) => "signalled",
        Scheduled::Queued(_) => "queued",
    };
    json!({"run": s.run(), "revision": revision, "clusters": clusters, "scheduled": how})
}

fn current_run(tx: &Tx<'_>, scope: &Scope, name: &str) -> ApiResult<Option<String>> {
    let rec = read(&*tx.ops, scope, name)?;
    match rec.current {
        Some(c) if !is_terminal(&*tx.ops, &c.run)? => Ok(Some(c.run)),
        _ => Ok(None),
    }
}

fn signal_current(
    tx: &mut Tx<'_>,
    scope: &Scope,
    name: &str,
    verb: &str,
    by: &str,
    reason: Option<String>,
) -> ApiResult<Value> {
    let wf = tx.workflows()?;
    let run = current_run(tx, scope, name)?.ok_or_else(|| {
        rule(
            ErrorCode::InvalidState,
            format!("template {name:?} has no rollout in progress"),
        )
    })?;
    let signal = if verb == "pause" {
        Signal::Pause
    } else {
        Signal::Resume { retry_failed: true }
    };
    wf.client()
        .send_in(
            &mut *tx.ops,
            &run,
            &Event::Signal {
                signal,
                by: Principal::user(by),
                reason,
            },
        )
        .map_err(crate::workflows::runtime_error)?;
    Ok(json!({"run": run, "signal": verb}))
}

fn rollback_action(
    tx: &mut Tx<'_>,
    scope: &Scope,
    name: &str,
    by: &str,
    reason: Option<String>,
) -> ApiResult<Value> {
    let wf = tx.workflows()?;
    if let Some(run) = current_run(tx, scope, name)? {
        // The rollout stops and asks for the rollback itself (its catch emits
        // `fleetplane.rollout.rollback-requested`, which performs [`rollback`]).
        check_rollback(&*tx.ops, scope, name)?;
        wf.client()
            .send_in(
                &mut *tx.ops,
                &run,
                &Event::Signal {
                    signal: Signal::Rollback,
                    by: Principal::user(by),
                    reason,
                },
            )
            .map_err(crate::workflows::runtime_error)?;
        return Ok(json!({"run": run, "signal": "rollback"}));
    }
    let view = templates::member_view(&*tx.ops, scope, name)?
        .ok_or_else(|| ApiError::not_found("cluster template", name))?;
    rollback(tx, scope, name, view.revision, by)
}

/// The previous revision's set, refused when it would lower Kubernetes' minor version.
fn check_rollback(r: &dyn ReadOps, scope: &Scope, name: &str) -> ApiResult<RevisionRecord> {
    let view = templates::member_view(r, scope, name)?
        .ok_or_else(|| ApiError::not_found("cluster template", name))?;
    if view.revision <= 1 {
        return Err(rule(
            ErrorCode::InvalidState,
            format!("template {name:?} has no previous revision"),
        ));
    }
    let prev = load_revision(r, scope, name, view.revision - 1)?.ok_or_else(|| {
        rule(
            ErrorCode::InvalidState,
            format!(
                "revision {} of template {name:?} was not recorded",
                view.revision - 1
            ),
        )
    })?;
    let now_k8s = templates::kubernetes_version_of(r, scope, &view.spec.profiles)?;
    let prev_k8s = templates::kubernetes_version_of(r, scope, &prev.profiles)?;
    if let (Some(a), Some(b)) = (now_k8s, prev_k8s) {
        fleetplane_domain::cluster::check_kubernetes_change(&a, &b)?;
    }
    Ok(prev)
}

/// Rolls template `name` back from revision `from`: its previous set becomes a new revision,
/// rolled out at once to the clusters that run `from`. A no-op when the template has moved on.
///
/// # Errors
/// 409 `KubernetesDowngrade`, `InvalidState` without a previous revision; store errors.
pub fn rollback(
    tx: &mut Tx<'_>,
    scope: &Scope,
    name: &str,
    from: u64,
    by: &str,
) -> ApiResult<Value> {
    let mut obj: ObjectOf<ClusterTemplate> =
        resource::require::<ClusterTemplate>(&*tx.ops, scope, name)?;
    if obj.status.revision != from {
        return Ok(json!({"rolledBack": false, "revision": obj.status.revision}));
    }
    let prev = check_rollback(&*tx.ops, scope, name)?;
    let moved: Vec<String> = templates::member_names(&*tx.ops, scope, name)?
        .into_iter()
        .filter(|(_, c)| c.status.revision == Some(from))
        .map(|(d, _)| d)
        .collect();
    obj.spec.profiles = prev.profiles.clone();
    let (shown, _) = resource::upsert::<ClusterTemplate>(tx, scope, obj, None)?;
    let revision = shown.status.revision;
    let wf = tx.workflows()?;
    let s = if moved.is_empty() {
        None
    } else {
        Some(schedule(
            &mut *tx.ops,
            &wf,
            scope,
            name,
            Request {
                reason: Reason::Rollback,
                upgrade_now: true,
                clusters: moved.clone(),
                by: by.to_owned(),
            },
            tx.now,
        )?)
    };
    Ok(json!({
        "rolledBack": true, "from": from, "revision": revision,
        "to": prev.revision, "clusters": moved,
        "run": s.as_ref().map(|s| s.run().to_owned()),
    }))
}

/// Rollouts per page of `GET …/rollouts` by default, and at most.
const ROLLOUT_PAGE: (usize, usize) = (20, 100);
/// Clusters per page of `GET …/rollouts/{run}/clusters` by default, and at most.
const CLUSTER_PAGE: (usize, usize) = (100, 500);
/// Journal entries one page of `…/clusters` reads at most while looking for skipped clusters;
/// past it the page is returned short, with a `continue` token (as object lists do).
const JOURNAL_SCAN_BUDGET: u64 = 5_000;

/// `limit` and `continue` of a paginated view: a missing limit is `default`, a larger one is
/// capped at `max`.
///
/// # Errors
/// `ValidationFailed` at `limit` (not a positive integer), `continue` (not a token), or the
/// name of an unknown parameter.
fn page_params(
    q: &std::collections::BTreeMap<String, String>,
    (default, max): (usize, usize),
) -> ApiResult<(usize, Option<String>)> {
    let mut problems = fleetplane_domain::Problems::new();
    for k in q.keys() {
        if k != "limit" && k != "continue" {
            problems.push(k.as_str(), "unknown parameter (limit, continue)");
        }
    }
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => default,
        Some(Ok(n)) if n > 0 => n.min(max),
        Some(_) => {
            problems.push("limit", format!("expected an integer from 1 to {max}"));
            default
        }
    };
    problems.finish()?;
    let cont = q
        .get("continue")
        .map(|c| resource::decode_continue(c))
        .transpose()?;
    Ok((limit, cont))
}

/// The run's fan-out counts, from its own state (its items are rows of their own and are not
/// read).
fn run_counts(run: &fleetplane_store::RunRecord) -> ApiResult<Value> {
    #[derive(Deserialize)]
    struct Counts {
        #[serde(default)]
        counts: Value,
    }
    let c: Counts = serde_json::from_slice(&run.state)
        .map_err(|e| ApiError::internal(format!("run {}: {e}", run.header.id)))?;
    Ok(c.counts)
}

/// `GET …/cluster-templates/{t}/rollouts?limit=&continue=`: the queued, current and past
/// rollouts, newest first (by run id, which orders them by request time), each with its run's
/// status and counts. Per-cluster timelines are `…/rollouts/{run}/clusters`.
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
    crate::json::Query(q): crate::json::Query<std::collections::BTreeMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let scope = path.scope();
    let name = path.name.clone().unwrap_or_default();
    caller.require(
        Permission::new(Resource::ClusterTemplate, Verb::Get),
        scope.project(),
    )?;
    let (limit, after) = page_params(&q, ROLLOUT_PAGE)?;
    let out = state
        .read(move |r| {
            resource::require::<ClusterTemplate>(r, &scope, &name)?;
            let rec = read(r, &scope, &name)?;
            let mut all: Vec<(&str, &Rollout)> = rec
                .queued
                .iter()
                .map(|q| ("Queued", q))
                .chain(rec.current.iter().map(|c| ("Current", c)))
                .chain(rec.history.iter().map(|h| ("Ended", h)))
                .collect();
            all.sort_by(|a, b| b.1.run.cmp(&a.1.run));
            let mut items = Vec::new();
            let mut rest = all
                .into_iter()
                .filter(|(_, ro)| after.as_deref().is_none_or(|a| ro.run.as_str() < a));
            for (state, ro) in rest.by_ref().take(limit) {
                let mut v =
                    serde_json::to_value(ro).map_err(|e| ApiError::internal(e.to_string()))?;
                v["state"] = json!(state);
                if let Some(run) = r.run(&ro.run)? {
                    v["status"] = json!(run.header.status);
                    v["counts"] = run_counts(&run)?;
                }
                items.push(v);
            }
            let mut out = json!({ "items": items });
            if rest.next().is_some()
                && let Some(last) = items_last_run(&out)
            {
                out["continue"] = json!(resource::encode_continue(&last));
            }
            Ok(out)
        })
        .await?;
    Ok(Json(out))
}

fn items_last_run(v: &Value) -> Option<String> {
    v["items"].as_array()?.last()?["run"]
        .as_str()
        .map(str::to_owned)
}

/// Path of `…/rollouts/{run}/clusters`.
#[derive(Debug, Deserialize)]
pub struct RolloutPath {
    /// The project, on project-scope routes.
    pub project: Option<String>,
    /// The template.
    pub name: String,
    /// The rollout run.
    pub run: String,
}

/// Where a page of a rollout's clusters resumes: in the journal (the clusters its fan-outs
/// skipped, journal entry `seq` from its `skip`-th skipped cluster), then among its child runs
/// (after child `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClusterCursor {
    Journal { seq: u64, skip: usize },
    Children { after: Option<String> },
}

impl ClusterCursor {
    fn parse(token: Option<&str>) -> ApiResult<Self> {
        let bad = || ApiError::field("continue", "not a token from this listing");
        match token {
            None => Ok(Self::Journal { seq: 1, skip: 0 }),
            Some(t) => match t.split_once('.') {
                Some(("j", rest)) => {
                    let (seq, skip) = rest.split_once('.').ok_or_else(bad)?;
                    Ok(Self::Journal {
                        seq: seq.parse().map_err(|_| bad())?,
                        skip: skip.parse().map_err(|_| bad())?,
                    })
                }
                Some(("c", id)) if !id.is_empty() => Ok(Self::Children {
                    after: Some(id.to_owned()),
                }),
                _ => Err(bad()),
            },
        }
    }

    fn token(&self) -> String {
        let raw = match self {
            Self::Journal { seq, skip } => format!("j.{seq}.{skip}"),
            Self::Children { after } => format!("c.{}", after.as_deref().unwrap_or_default()),
        };
        resource::encode_continue(&raw)
    }
}

/// One page of a rollout run's clusters: first those its fan-outs skipped, with the reason
/// (the journal's `fanoutPlanned`), then each child run with its status, start, end and last
/// error. Reads at most [`JOURNAL_SCAN_BUDGET`] journal entries and `limit` children.
fn cluster_page(
    r: &dyn ReadOps,
    run: &str,
    limit: usize,
    at: ClusterCursor,
) -> ApiResult<(Vec<Value>, Option<ClusterCursor>)> {
    let mut out = Vec::new();
    let after = match at {
        ClusterCursor::Children { after } => after,
        ClusterCursor::Journal { mut seq, mut skip } => {
            let head = r.journal_head(run)?;
            let mut scanned = 0;
            while seq <= head {
                let page = r.journal(run, seq - 1, 200)?;
                if page.is_empty() {
                    break;
                }
                for e in &page {
                    if out.len() >= limit || scanned >= JOURNAL_SCAN_BUDGET {
                        return Ok((out, Some(ClusterCursor::Journal { seq: e.seq, skip })));
                    }
                    scanned += 1;
                    let v: Value = serde_json::from_slice(&e.body).unwrap_or(Value::Null);
                    if v["record"]["type"] == "fanoutPlanned" {
                        let skipped = v["record"]["skippedItems"].as_array();
                        for pair in skipped.into_iter().flatten().skip(skip) {
                            if out.len() >= limit {
                                return Ok((
                                    out,
                                    Some(ClusterCursor::Journal { seq: e.seq, skip }),
                                ));
                            }
                            out.push(json!({
                                "cluster": pair[0], "status": "Skipped", "reason": pair[1],
                            }));
                            skip += 1;
                        }
                    }
                    skip = 0;
                    seq = e.seq + 1;
                }
            }
            None
        }
    };
    let want = limit - out.len();
    let index = fleetplane_store::RunIndex::Parent(run.to_owned());
    if want == 0 {
        let more = !r.runs_by(&index, after.as_deref(), 1)?.is_empty();
        return Ok((out, more.then_some(ClusterCursor::Children { after })));
    }
    let ids = r.runs_by(&index, after.as_deref(), want + 1)?;
    for id in ids.iter().take(want) {
        if let Some(rec) = r.run(id)? {
            let st = crate::workflows::decode_state(&rec)?;
            out.push(json!({
                "cluster": rec.header.cluster, "run": id, "status": rec.header.status,
                "startedAt": st.started_at, "endedAt": st.ended_at, "error": st.error,
            }));
        }
    }
    let next = (ids.len() > want).then(|| ClusterCursor::Children {
        after: ids.get(want - 1).cloned(),
    });
    Ok((out, next))
}

/// `GET …/cluster-templates/{t}/rollouts/{run}/clusters?limit=&continue=`: the clusters of one
/// rollout, paginated: skipped ones with their reason, then one entry per child run.
pub async fn rollout_clusters(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<RolloutPath>,
    crate::json::Query(q): crate::json::Query<std::collections::BTreeMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let scope = Scope::from_project(path.project.as_deref());
    caller.require(
        Permission::new(Resource::ClusterTemplate, Verb::Get),
        scope.project(),
    )?;
    let (limit, token) = page_params(&q, CLUSTER_PAGE)?;
    let at = ClusterCursor::parse(token.as_deref())?;
    let out = state
        .read(move |r| {
            resource::require::<ClusterTemplate>(r, &scope, &path.name)?;
            let rec = read(r, &scope, &path.name)?;
            let known = rec
                .queued
                .iter()
                .chain(rec.current.iter())
                .chain(rec.history.iter())
                .any(|ro| ro.run == path.run);
            if !known {
                return Err(ApiError::not_found("rollout", &path.run));
            }
            let (items, next) = cluster_page(r, &path.run, limit, at)?;
            let mut out = json!({ "items": items });
            if let Some(n) = next {
                out["continue"] = json!(n.token());
            }
            Ok(out)
        })
        .await?;
    Ok(Json(out))
}

/// Registers `/plan`, `/rollouts` and the actions (the template routes dispatch POST here).
pub fn routes(r: &mut Routes) {
    crate::plan::routes(r);
    for base in ["/v1", "/v1/projects/{project}"] {
        let c = format!("{base}/cluster-templates");
        r.add(
            &format!("{c}/{{name}}/rollouts"),
            &[axum::http::Method::GET],
            axum::routing::get(history),
        );
        r.add(
            &format!("{c}/{{name}}/rollouts/{{run}}/clusters"),
            &[axum::http::Method::GET],
            axum::routing::get(rollout_clusters),
        );
        for a in ["upgrade", "pause", "resume", "rollback"] {
            r.operations
                .push((axum::http::Method::POST, format!("{c}/{{name}}:{a}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::limit_value;
    use fleetplane_domain::template::Limit;
    use serde_json::json;

    #[test]
    fn percentages_become_counts_rounded_up_and_at_least_one() {
        let pct = |p: &str| Limit::Percent(p.into());
        for (limit, of, want) in [
            (Limit::Count(3), 10, 3),
            (pct("25%"), 10, 3),
            (pct("25%"), 8, 2),
            (pct("100%"), 7, 7),
            (pct("1%"), 1000, 10),
            (pct("10%"), 0, 1),
        ] {
            assert_eq!(limit_value(&limit, of), json!(want), "{limit:?} of {of}");
        }
    }
}
