//! What runs teach the rest of the product, recorded in the runtime's own transactions (the
//! runtime's [`TransitionHook`]): run status changes become change events on `/v1/events`, and
//! runs about a cluster keep its record true — phase, health, nodes, the applied profile
//! versions and revision, conditions and its event history (docs/clusters.md, "Lifecycle").
//!
//! Rules, independent of which workflow runs (built-in or an operator's):
//! - a provider `create-cluster` / `update-cluster` / `delete-cluster` call about to be made puts
//!   the cluster in `Provisioning` / `Updating` / `Deleting` and makes the run its current run;
//! - every provider answer that is an observed cluster (a `describe`) updates health, nodes,
//!   endpoint and copies new provider events;
//! - when the cluster's current run succeeds, the stack its last create/update carried becomes
//!   the applied one (profiles, revision) and the phase `Running`, or — after a delete — the
//!   cluster record disappears; when it fails or is cancelled, the phase is `Failed` with a
//!   `Ready=false` condition naming the error.

use crate::audit::ChangeEvent;
use crate::clusters::{self, ClusterEvent, object_key_of};
use crate::error::ApiResult;
use crate::resource::ObjectOf;
use crate::state::AppState;
use fleetplane_domain::authz::Resource;
use fleetplane_domain::cluster::{ClusterPhase, Health, Node};
use fleetplane_runtime::{Applied, TransitionHook};
use fleetplane_store::{Log, ObjectKey, RunHeader, StoreError, WriteOps};
use fleetplane_workflow::definition::Operation;
use fleetplane_workflow::run::{JournalEntry, Record, RunStatus};
use fleetplane_workflow::{Effect, Event};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The server's transition hook.
pub struct Lifecycle {
    state: AppState,
    pending: Mutex<Vec<ChangeEvent>>,
}

impl Lifecycle {
    /// A hook publishing through `state`.
    pub fn new(state: AppState) -> Arc<Self> {
        Arc::new(Self {
            state,
            pending: Mutex::new(Vec::new()),
        })
    }

    fn record(&self, w: &mut dyn WriteOps, mut ev: ChangeEvent) -> Result<(), StoreError> {
        let body = serde_json::to_vec(&ev).map_err(|e| StoreError::Backend(e.to_string()))?;
        ev.id = w.append(Log::Events, &body)?;
        let mut p = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if p.is_empty() {
            w.trim(Log::Events, self.state.settings.event_retention)?;
        }
        p.push(ev);
        Ok(())
    }
}

fn status_name(s: RunStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn store_err(e: crate::error::ApiError) -> Result<(), StoreError> {
    use fleetplane_domain::ErrorCode;
    // Storage failures abort the batch (retried); domain refusals are logged and skipped.
    if e.error.code == ErrorCode::Internal {
        Err(StoreError::Backend(e.error.detail))
    } else if e.error.code == ErrorCode::Unavailable {
        Err(StoreError::Unavailable(e.error.detail))
    } else {
        tracing::warn!(error = %e.error.detail, "cluster lifecycle update skipped");
        Ok(())
    }
}

impl TransitionHook for Lifecycle {
    fn applied(&self, w: &mut dyn WriteOps, t: &Applied<'_>) -> Result<(), StoreError> {
        if t.previous != t.state.status || matches!(t.event, Event::Started { .. }) {
            let project = t.header.project.clone();
            let status = status_name(t.state.status);
            let ev = ChangeEvent {
                id: 0,
                event_type: format!("dev.fleetplane.run.{}", status.to_ascii_lowercase()),
                subject: match &project {
                    Some(p) => format!("projects/{p}/runs/{}", t.state.id),
                    None => format!("runs/{}", t.state.id),
                },
                time: t.now,
                project,
                resource: Resource::Run,
                data: json!({
                    "kind": "Run", "id": t.state.id, "status": status,
                    "previous": status_name(t.previous),
                    "workflow": format!("{}@{}", t.state.definition.name, t.state.definition.version),
                    "parent": t.header.parent, "cluster": t.header.cluster,
                    "error": t.state.error,
                }),
            };
            self.record(w, ev)?;
        }
        if t.state.status.is_terminal()
            && !t.previous.is_terminal()
            && t.header.parent.is_none()
            && let Some((scope, template)) = template_of(t)
            && let Ok(wf) = self.state.workflows()
            && let Err(e) = crate::rollouts::run_ended(
                w,
                wf,
                &scope,
                &template,
                &t.state.id,
                &status_name(t.state.status),
                t.now,
            )
        {
            store_err(e)?;
        }
        if let Some(cluster) = &t.header.cluster
            && about_the_cluster(t)
            && let Some(key) = object_key_of(cluster)
        {
            match self.on_cluster(w, &key, t) {
                Ok(Some(ev)) => self.record(w, ev)?,
                Ok(None) => {}
                Err(e) => store_err(e)?,
            }
        }
        Ok(())
    }

    fn perform(
        &self,
        w: &mut dyn WriteOps,
        run: &RunHeader,
        effect: &Effect,
        now: jiff::Timestamp,
    ) -> Result<bool, StoreError> {
        match effect {
            // A rollback request acts (a new template revision) before it is published: the
            // executor does both, outside the batch.
            Effect::Emit {
                key,
                event_type,
                message,
                data,
                ..
            } if event_type != crate::effects::ROLLBACK_REQUESTED => {
                let ev = crate::effects::emitted_event(
                    run.project.clone(),
                    &run.id,
                    (key, event_type, message.as_deref(), data),
                    now,
                );
                self.record(w, ev)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn committed(&self) {
        let events = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for e in events {
            let _ = self.state.events.send(Arc::new(e));
        }
    }

    fn aborted(&self) {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

fn warning(t: &Applied<'_>, reason: &str, message: String) -> ClusterEvent {
    ClusterEvent {
        time: t.now,
        kind: "Warning".into(),
        reason: reason.into(),
        message,
        run: Some(t.state.id.clone()),
    }
}

fn normal(t: &Applied<'_>, reason: &str, message: String) -> ClusterEvent {
    ClusterEvent {
        kind: "Normal".into(),
        ..warning(t, reason, message)
    }
}

/// Whether transition `t` can change its cluster's record or history (the rules of
/// [`Lifecycle::on_entry`] and observations), so the others — a step starting, a window
/// resolved, a signal received: most of a rollout's transitions — do not load the cluster.
fn about_the_cluster(t: &Applied<'_>) -> bool {
    if let Event::StepCompleted { result, .. } = t.event
        && observed(result)
    {
        return true;
    }
    t.journal.iter().any(|j| match &j.record {
        Record::ProviderCallIntended { operation, .. } => matches!(
            operation,
            Operation::CreateCluster | Operation::UpdateCluster | Operation::DeleteCluster
        ),
        Record::RunStarted { .. }
        | Record::StepRetrying { .. }
        | Record::StepFailed { .. }
        | Record::RunSucceeded
        | Record::RunFailed { .. }
        | Record::RunCancelled => true,
        _ => false,
    })
}

/// Whether `v` is an observed cluster (a `describe` answer).
fn observed(v: &Value) -> bool {
    v.get("nodes").is_some_and(Value::is_array) && v.get("phase").is_some()
}

impl Lifecycle {
    /// Applies what transition `t` says about the cluster `key`; returns the change event to
    /// publish when the record changed.
    fn on_cluster(
        &self,
        w: &mut dyn WriteOps,
        key: &ObjectKey,
        t: &Applied<'_>,
    ) -> ApiResult<Option<ChangeEvent>> {
        let Some(mut obj) = clusters::load_key(&*w, key)? else {
            return Ok(None);
        };
        let before = obj.clone();
        let run = t.state.id.as_str();
        // The provider's events first (they happened during the step), then the run's.
        let mut events: Vec<ClusterEvent> = Vec::new();
        let mut provider_seen = None;
        if let Event::StepCompleted { result, .. } = t.event
            && observed(result)
        {
            apply_observation(&mut obj, result);
            promote_if_applied(w, key, &mut obj, result)?;
            let before_ms = clusters::provider_events_seen(&*w, key)?;
            let mut seen = before_ms;
            for e in result["events"].as_array().into_iter().flatten() {
                let at = e["atMs"].as_u64().unwrap_or(0);
                if at > seen {
                    seen = at;
                    let time = i64::try_from(at)
                        .ok()
                        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                        .unwrap_or(t.now);
                    events.push(ClusterEvent {
                        time,
                        kind: "Normal".into(),
                        reason: e["reason"].as_str().unwrap_or("ProviderEvent").to_owned(),
                        message: e["message"].as_str().unwrap_or_default().to_owned(),
                        run: Some(run.to_owned()),
                    });
                }
            }
            provider_seen = (seen != before_ms).then_some(seen);
        }
        for j in t.journal {
            if let Some(done) = self.on_entry(w, key, &mut obj, t, j, &mut events)? {
                return Ok(Some(done));
            }
        }
        if !events.is_empty() || provider_seen.is_some() {
            clusters::append_events(w, key, events, provider_seen)?;
        }
        if obj == before {
            return Ok(None);
        }
        obj.metadata.updated_at = Some(t.now);
        let rv = clusters::save_over(w, key, &before, &obj)?;
        Ok(Some(cluster_event(key, "updated", rv, t)))
    }

    /// One journal entry; returns `Some(event)` when the cluster is gone (a delete finished).
    /// A record it reacts to must also make [`about_the_cluster`] true.
    fn on_entry(
        &self,
        w: &mut dyn WriteOps,
        key: &ObjectKey,
        obj: &mut ObjectOf<clusters::Cluster>,
        t: &Applied<'_>,
        j: &JournalEntry,
        events: &mut Vec<ClusterEvent>,
    ) -> ApiResult<Option<ChangeEvent>> {
        let run = t.state.id.as_str();
        let current = obj.status.run.as_deref() == Some(run);
        match &j.record {
            Record::RunStarted { .. } if current => events.push(normal(
                t,
                "RunStarted",
                format!("{} run started", t.state.definition.name),
            )),
            Record::ProviderCallIntended {
                operation, attempt, ..
            } => {
                let phase = match operation {
                    Operation::CreateCluster => Some(ClusterPhase::Provisioning),
                    Operation::UpdateCluster => Some(ClusterPhase::Updating),
                    Operation::DeleteCluster => Some(ClusterPhase::Deleting),
                    _ => None,
                };
                if matches!(
                    operation,
                    Operation::CreateCluster | Operation::UpdateCluster
                ) {
                    // The stack this call carries; it becomes the applied one if the run
                    // succeeds. The resolver refuses to send a different one.
                    match clusters::desired_noted(&self.state.renders, &*w, key, &obj.spec) {
                        Ok(d) => clusters::record_pending_stack(
                            w,
                            key,
                            &clusters::StackRecord {
                                run: run.to_owned(),
                                digest: d.digest,
                                revision: d.revision,
                                desired: d.desired,
                                inputs: Some(d.inputs),
                            },
                        )?,
                        Err(e) => {
                            tracing::warn!(run, error = %e.error.detail, "cannot render the stack of a provider call")
                        }
                    }
                }
                if *operation == Operation::UpdateCluster
                    && let Some(parent) = &t.header.parent
                    && let (Some(tr), Some(project)) = (&obj.spec.template, key.scope.project())
                {
                    let ts = crate::templates::template_scope(project, tr.scope);
                    crate::rollouts::cluster_updating(w, &ts, &tr.name, parent)?;
                }
                if let Some(phase) = phase {
                    obj.status.phase = phase;
                    obj.status.run = Some(run.to_owned());
                    if *attempt == 1 {
                        events.push(normal(
                            t,
                            match phase {
                                ClusterPhase::Provisioning => "ProvisioningStarted",
                                ClusterPhase::Updating => "UpdateStarted",
                                _ => "DeletionStarted",
                            },
                            format!("provider {} requested", operation.as_str()),
                        ));
                    }
                }
            }
            Record::StepRetrying {
                step,
                attempt,
                error,
                ..
            } if current => events.push(warning(
                t,
                "Retrying",
                format!(
                    "{step}: {} ({}); attempt {attempt} next",
                    error.message,
                    error.kind.as_str()
                ),
            )),
            Record::StepFailed { step, error } if current => events.push(warning(
                t,
                "StepFailed",
                format!("{step}: {} ({})", error.message, error.kind),
            )),
            Record::RunSucceeded if current => {
                obj.status.run = None;
                obj.status.last_run = Some(run.to_owned());
                if obj.status.phase == ClusterPhase::Deleting {
                    let shown = obj.clone();
                    clusters::forget(w, key, &shown)?;
                    return Ok(Some(cluster_event(key, "deleted", 0, t)));
                }
                if let Some(p) = clusters::pending_stack(&*w, key)?.filter(|p| p.run == run) {
                    obj.status.profiles = p.desired.profiles.clone();
                    obj.status.applied_stack = Some(p.digest.clone());
                    if p.revision.is_some() {
                        obj.status.revision = p.revision;
                    }
                    clusters::apply_stack(w, key, &p, false)?;
                }
                obj.status.phase = ClusterPhase::Running;
                obj.status
                    .set_condition("Ready", true, "RunSucceeded", "", t.now);
                events.push(normal(
                    t,
                    "RunSucceeded",
                    format!("{} run succeeded", t.state.definition.name),
                ));
            }
            Record::RunFailed { error } if current => {
                obj.status.run = None;
                obj.status.last_run = Some(run.to_owned());
                obj.status.phase = ClusterPhase::Failed;
                obj.status.set_condition(
                    "Ready",
                    false,
                    error.kind.clone(),
                    error.message.clone(),
                    t.now,
                );
                events.push(warning(
                    t,
                    "RunFailed",
                    format!(
                        "{} run failed: {} ({})",
                        t.state.definition.name, error.message, error.kind
                    ),
                ));
            }
            Record::RunCancelled if current => {
                obj.status.run = None;
                obj.status.last_run = Some(run.to_owned());
                obj.status.phase = ClusterPhase::Failed;
                obj.status.set_condition(
                    "Ready",
                    false,
                    "Cancelled",
                    "the run was cancelled",
                    t.now,
                );
                events.push(warning(
                    t,
                    "RunCancelled",
                    format!("{} run cancelled", t.state.definition.name),
                ));
            }
            _ => {}
        }
        Ok(None)
    }
}

/// The template a root run is about (a template's rollout: subject facts `template`,
/// `templateScope`).
fn template_of(t: &Applied<'_>) -> Option<(fleetplane_store::Scope, String)> {
    let facts = &t.state.subject.as_ref()?.facts;
    let name = facts.get("template")?.as_str()?.to_owned();
    let scope = match facts.get("templateScope").and_then(Value::as_str) {
        Some("tenant") => fleetplane_store::Scope::Tenant,
        _ => fleetplane_store::Scope::Project(t.header.project.clone()?),
    };
    Some((scope, name))
}

/// The provider runs the stack the last create/update carried: it is the applied one now (the
/// Profile view), whatever the run does next; the cluster counts as on its revision only once
/// it is also `Running` and `Healthy` (DESIGN §5, "a cluster counts as updated only when the
/// provider reports the target revision and healthy").
fn promote_if_applied(
    w: &mut dyn WriteOps,
    key: &ObjectKey,
    obj: &mut ObjectOf<clusters::Cluster>,
    v: &Value,
) -> ApiResult<()> {
    let Some(applied) = v["appliedRevision"].as_str() else {
        return Ok(());
    };
    let Some(p) = clusters::pending_stack(&*w, key)?.filter(|p| p.digest == applied) else {
        return Ok(());
    };
    obj.status.profiles = p.desired.profiles.clone();
    obj.status.applied_stack = Some(p.digest.clone());
    let done = p.revision.is_some() && v["phase"] == "Running" && v["health"] == "Healthy";
    if done {
        obj.status.revision = p.revision;
    }
    // Not healthy yet: it stays pending for the revision, and is applied for the Profile view.
    clusters::apply_stack(w, key, &p, !done)?;
    Ok(())
}

fn apply_observation(obj: &mut ObjectOf<clusters::Cluster>, v: &Value) {
    if let Some(h) = v["health"].as_str() {
        obj.status.health = match h {
            "Healthy" => Health::Healthy,
            "Degraded" => Health::Degraded,
            "Unhealthy" => Health::Unhealthy,
            _ => Health::Unknown,
        };
    }
    if let Ok(nodes) = <Vec<Node> as serde::Deserialize>::deserialize(&v["nodes"]) {
        obj.status.nodes = nodes;
    }
    obj.status.endpoint = v["endpoint"].as_str().map(str::to_owned);
    // The provider says it runs: the change is done in the cloud (the run may still soak or
    // gate; what it applied is recorded when it ends).
    if v["phase"] == "Running"
        && matches!(
            obj.status.phase,
            ClusterPhase::Provisioning | ClusterPhase::Updating
        )
    {
        obj.status.phase = ClusterPhase::Running;
    }
}

fn cluster_event(key: &ObjectKey, verb: &str, rv: u64, t: &Applied<'_>) -> ChangeEvent {
    let project = key.scope.project().map(str::to_owned);
    ChangeEvent {
        id: 0,
        event_type: format!("dev.fleetplane.cluster.{verb}"),
        subject: format!(
            "projects/{}/clusters/{}",
            project.as_deref().unwrap_or_default(),
            key.name
        ),
        time: t.now,
        project: project.clone(),
        resource: Resource::Cluster,
        data: json!({
            "kind": "Cluster", "name": key.name, "project": project,
            "resourceVersion": (rv > 0).then(|| rv.to_string()),
            "run": t.state.id,
        }),
    }
}
