//! The server's effect executors (wired by the server into the runtime): everything a run asks
//! of the domain — render a cluster's stack, observe it, find its maintenance window, list a
//! fan-out's clusters, publish an event — and the resolution of provider calls (which provider,
//! which cloud account with its secrets, which cluster and desired stack). docs/runtime.md,
//! docs/clusters.md.

use crate::audit::ChangeEvent;
use crate::auth::Caller;
use crate::cloud_accounts::{self, CloudAccount};
use crate::clusters::{self, Cluster, Desired, object_key_of};
use crate::error::{ApiError, ApiResult};
use crate::resource::{self, ObjectOf};
use crate::state::AppState;
use crate::templates;
use crate::workflows::{decode_state, run_path};
use fleetplane_domain::authz::Resource;
use fleetplane_domain::cluster::{DesiredCluster, desired_digest, replaces_machines};
use fleetplane_domain::template::Assignment;
use fleetplane_runtime::{CallResolver, EffectExecutor, ProviderCall};
use fleetplane_store::tables::kinds;
use fleetplane_store::{ListQuery, ObjectKey, ReadOps, Scope};
use fleetplane_wasm_host as host;
use fleetplane_workflow::definition::{ErrorKind, Operation, Over};
use fleetplane_workflow::run::{StepError, Window};
use fleetplane_workflow::{Effect, Event, Item};
use futures::future::BoxFuture;
use serde_json::{Value, json};

fn step_error(kind: ErrorKind, message: impl Into<String>) -> StepError {
    StepError {
        kind,
        message: message.into(),
    }
}

fn failed(call: u64, error: StepError) -> Option<Event> {
    Some(Event::StepFailed {
        call,
        error,
        retryable: false,
        retry_after: None,
    })
}

/// An API error as a step error: validation and rule errors are `invalid-config` (with every
/// field problem in the message), missing objects `not-found`, anything else `transient`.
fn from_api(e: &ApiError) -> StepError {
    use fleetplane_domain::ErrorCode as C;
    let kind = match e.error.code {
        C::NotFound => ErrorKind::NotFound,
        C::Internal | C::Unavailable => ErrorKind::Transient,
        _ => ErrorKind::InvalidConfig,
    };
    let mut message = e.error.detail.clone();
    for f in &e.error.errors {
        message.push_str(&format!("; {}: {}", f.field, f.message));
    }
    step_error(kind, message)
}

/// The cluster of an effect, or the step error saying why there is none.
fn cluster_of(
    r: &dyn ReadOps,
    cluster: Option<&str>,
) -> Result<(ObjectKey, ObjectOf<Cluster>), StepError> {
    let c = cluster
        .ok_or_else(|| step_error(ErrorKind::InvalidConfig, "the run is not about a cluster"))?;
    let key = object_key_of(c)
        .ok_or_else(|| step_error(ErrorKind::InvalidConfig, format!("bad cluster key {c:?}")))?;
    match clusters::load_key(r, &key) {
        Ok(Some(obj)) => Ok((key, obj)),
        Ok(None) => Err(step_error(
            ErrorKind::NotFound,
            format!("cluster {c} not found"),
        )),
        Err(e) => Err(from_api(&e)),
    }
}

/// The cluster as expressions see it, with its pending-variable count for its template's
/// current revision.
fn observed_item(r: &dyn ReadOps, key: &ObjectKey, obj: &ObjectOf<Cluster>) -> ApiResult<Item> {
    let project = key.scope.project().unwrap_or_default();
    let mut item = clusters::item_of(project, obj);
    let mut pending = 0u64;
    if let Some(t) = &obj.spec.template {
        let ts = templates::template_scope(project, t.scope);
        if let Some(view) = templates::member_view(r, &ts, &t.name)?
            && let Some(stored) =
                templates::stored_assignments(r, &ts, &t.name, key, view.revision)?
        {
            pending = stored
                .values()
                .flat_map(|m| m.values())
                .filter(|a| a.assignment == Assignment::Pending)
                .count() as u64;
        }
    }
    item.facts.insert("pendingVariables".into(), json!(pending));
    Ok(item)
}

/// The summary a `render` step completes with (`steps.<id>.result.stack`).
fn render_result(d: &Desired, applied: Option<&DesiredCluster>) -> Value {
    json!({"stack": {
        "digest": d.digest,
        "revision": d.revision,
        "profiles": d.desired.profiles,
        "kubernetesVersion": d.desired.kubernetes_version,
        "osImage": d.desired.os_image,
        "layers": d.desired.layers.len(),
        "replaceMachines": applied.is_some_and(|a| replaces_machines(&a.layers, &d.desired.layers)),
        "changed": applied.is_none_or(|a| desired_digest(a) != d.digest),
    }})
}

fn matches(item: &Item, labels: &fleetplane_domain::Labels) -> bool {
    labels.iter().all(|(k, v)| item.labels.get(k) == Some(v))
}

/// Every cluster of `scope` (a project) that `keep` accepts, as items.
fn project_items(
    r: &dyn ReadOps,
    scope: &Scope,
    keep: impl Fn(&ObjectOf<Cluster>, &Item) -> bool,
) -> ApiResult<Vec<Item>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = r.list(&ListQuery {
            scope: scope.clone(),
            kind: kinds::CLUSTER,
            name_prefix: String::new(),
            after: after.clone(),
            limit: 1_000,
        })?;
        for rec in &page.items {
            let obj = resource::from_record::<Cluster>(rec)?;
            let item = observed_item(r, &rec.key, &obj)?;
            if keep(&obj, &item) {
                out.push(item);
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(out)
}

/// The clusters of the template a run is about (its subject, set when the server starts a
/// template's rollout: facts `template` and `templateScope`), through the reference index. A
/// run started by hand names it in `inputs.template` (`{name, scope?}`) instead.
fn template_items(r: &dyn ReadOps, run: &str) -> ApiResult<Vec<Item>> {
    let rec = r.run(run)?.ok_or_else(|| ApiError::not_found("run", run))?;
    let st = decode_state(&rec)?;
    let project = rec.header.project.clone().unwrap_or_default();
    let (name, scope) = match &st.subject {
        Some(s) if s.facts.contains_key("template") => (
            s.facts["template"].as_str().map(str::to_owned),
            s.facts
                .get("templateScope")
                .and_then(Value::as_str)
                .map(str::to_owned),
        ),
        _ => (
            st.inputs["template"]["name"].as_str().map(str::to_owned),
            st.inputs["template"]["scope"].as_str().map(str::to_owned),
        ),
    };
    let name = name.ok_or_else(|| {
        ApiError::field(
            "over",
            "a fan-out over a template needs a run about a template (a template's rollout)",
        )
    })?;
    let name = name.as_str();
    let scope = match scope.as_deref() {
        Some("tenant") => Scope::Tenant,
        _ => Scope::Project(project),
    };
    let mut out = Vec::new();
    for key in r.referrers(&templates::member_reference(&scope, name), 1_000_000)? {
        if let Some(obj) = clusters::load_key(r, &key)? {
            out.push(observed_item(r, &key, &obj)?);
        }
    }
    Ok(out)
}

/// The executor of every external effect except provider calls.
#[derive(Clone)]
pub struct ApiEffects {
    state: AppState,
}

impl ApiEffects {
    /// An executor reading and publishing through `state`.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl EffectExecutor for ApiEffects {
    fn perform(&self, run: &str, effect: Effect) -> BoxFuture<'static, Option<Event>> {
        let state = self.state.clone();
        let run = run.to_owned();
        Box::pin(async move {
            match effect {
                Effect::Emit {
                    key,
                    event_type,
                    message,
                    data,
                    ..
                } => {
                    if event_type == ROLLBACK_REQUESTED {
                        rollback_requested(&state, &run).await;
                    }
                    emit(&state, run, key, event_type, message, data).await;
                    None
                }
                Effect::Render { call, cluster, .. } => {
                    let noted = state.clone();
                    let answer = state
                        .read(move |r| {
                            Ok(cluster_of(r, cluster.as_deref()).and_then(|(key, obj)| {
                                let d =
                                    clusters::desired_noting(&noted.renders, r, &key, &obj.spec)
                                        .map_err(|e| from_api(&e))?;
                                let applied = clusters::applied_stack(r, &key)
                                    .map_err(|e| from_api(&e))?
                                    .map(|a| a.desired);
                                Ok(render_result(&d, applied.as_ref()))
                            }))
                        })
                        .await;
                    match answer {
                        Ok(Ok(result)) => Some(Event::StepCompleted {
                            call,
                            result,
                            operation: None,
                        }),
                        Ok(Err(e)) => failed(call, e),
                        Err(e) => failed(call, from_api(&e)),
                    }
                }
                Effect::Observe { call, cluster, .. } => {
                    let name = cluster.clone().unwrap_or_default();
                    let found = state
                        .read(move |r| {
                            Ok(cluster_of(r, cluster.as_deref()).and_then(|(key, obj)| {
                                observed_item(r, &key, &obj).map_err(|e| from_api(&e))
                            }))
                        })
                        .await;
                    match found {
                        Ok(Ok(item)) => Some(Event::Observed { call, item }),
                        Ok(Err(e)) => {
                            // The cluster is gone (or the run is about none): expressions see
                            // `cluster.phase == "Deleted"` rather than a step that never ends.
                            tracing::warn!(run, error = %e.message, "observing a missing cluster");
                            let mut item = Item {
                                name,
                                labels: Default::default(),
                                facts: Default::default(),
                            };
                            item.facts.insert("phase".into(), json!("Deleted"));
                            item.facts.insert("health".into(), json!("Unknown"));
                            Some(Event::Observed { call, item })
                        }
                        Err(e) => {
                            tracing::error!(run, error = %e.error.detail, "observe failed; retried on restart");
                            None
                        }
                    }
                }
                Effect::ResolveWindow {
                    call,
                    cluster,
                    after,
                    ..
                } => {
                    let found = state
                        .read(move |r| {
                            let Ok((key, obj)) = cluster_of(r, cluster.as_deref()) else {
                                return Ok(None);
                            };
                            clusters::next_window(r, &key.scope, &obj.spec, after)
                        })
                        .await;
                    match found {
                        Ok(w) => Some(Event::WindowResolved {
                            call,
                            window: w.map(|w| Window {
                                start: w.start,
                                end: w.end,
                            }),
                        }),
                        Err(e) => {
                            tracing::error!(run, error = %e.error.detail, "window lookup failed; retried on restart");
                            None
                        }
                    }
                }
                Effect::ResolveItems { call, over, .. } => {
                    let r2 = run.clone();
                    let found = state
                        .read(move |r| match over {
                            Over::Template => template_items(r, &r2),
                            Over::Selector(sel) => {
                                let rec =
                                    r.run(&r2)?.ok_or_else(|| ApiError::not_found("run", &r2))?;
                                let Some(p) = rec.header.project else {
                                    return Err(ApiError::field(
                                        "over.selector",
                                        "a selector fan-out needs a project run",
                                    ));
                                };
                                project_items(r, &Scope::Project(p), |_, item| {
                                    matches(item, &sel.match_labels)
                                })
                            }
                        })
                        .await;
                    match found {
                        Ok(items) => Some(Event::ItemsResolved { call, items }),
                        Err(e) => {
                            tracing::error!(run, error = %e.error.detail, "cannot list the fan-out's clusters; retried on restart");
                            None
                        }
                    }
                }
                other => {
                    tracing::error!(run, effect = ?other, "internal effect sent to the executor");
                    None
                }
            }
        })
    }
}

/// The event a rollout emits when it must be rolled back (`rollout@1`'s catch).
pub const ROLLBACK_REQUESTED: &str = "fleetplane.rollout.rollback-requested";

/// Performs the rollback a rollout run asked for: its template's previous set becomes a new
/// revision, rolled out at once to the clusters that moved. At-least-once: a repeated request
/// finds the template moved on and does nothing.
async fn rollback_requested(state: &AppState, run: &str) {
    let run = run.to_owned();
    let found = state
        .read({
            let run = run.clone();
            move |r| {
                let rec = r
                    .run(&run)?
                    .ok_or_else(|| ApiError::not_found("run", &run))?;
                let st = decode_state(&rec)?;
                let facts = st.subject.map(|s| s.facts).unwrap_or_default();
                let name = facts
                    .get("template")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let revision = facts.get("revision").and_then(Value::as_u64);
                let scope = match facts.get("templateScope").and_then(Value::as_str) {
                    Some("tenant") => Some(Scope::Tenant),
                    _ => rec.header.project.map(Scope::Project),
                };
                Ok((name, revision, scope))
            }
        })
        .await;
    let Ok((Some(name), Some(revision), Some(scope))) = found else {
        tracing::warn!(
            run,
            "a rollback was requested by a run that is not a template's rollout"
        );
        return;
    };
    let done = state
        .write(&Caller::system(), move |tx| {
            crate::rollouts::rollback(tx, &scope, &name, revision, "system")
        })
        .await;
    if let Err(e) = done {
        tracing::error!(run, error = %e.error.detail, "the requested rollback failed");
    }
}

/// The change event an `emit` step publishes on `/v1/events`: `(key, type, message, data)` of
/// the effect, for run `run` of `project`. The runtime's hook publishes it inside the
/// transition's transaction ([`crate::lifecycle`]); the executor only for effects the hook
/// leaves to it (a rollback request, which acts before it is published).
pub(crate) fn emitted_event(
    project: Option<String>,
    run: &str,
    (key, event_type, message, data): (&str, &str, Option<&str>, &Value),
    time: jiff::Timestamp,
) -> ChangeEvent {
    ChangeEvent {
        id: 0,
        event_type: event_type.to_owned(),
        subject: run_path(project.as_deref(), run),
        time,
        project,
        resource: Resource::Run,
        data: json!({"key": key, "run": run, "message": message, "data": data}),
    }
}

async fn emit(
    state: &AppState,
    run: String,
    key: String,
    event_type: String,
    message: Option<String>,
    data: Value,
) {
    let project = state
        .read({
            let run = run.clone();
            move |r| Ok(r.run(&run)?.and_then(|rec| rec.header.project))
        })
        .await
        .ok()
        .flatten();
    let written = state
        .write(&Caller::system(), move |tx| {
            let ev = emitted_event(
                project,
                &run,
                (&key, &event_type, message.as_deref(), &data),
                tx.now,
            );
            tx.changed(ev);
            Ok(())
        })
        .await;
    if let Err(e) = written {
        tracing::error!(error = %e.error, "cannot publish a workflow event");
    }
}

/// Resolves provider calls: for a run about a cluster, the cluster's cloud account and provider,
/// its provider-side reference and (create/update) its desired stack now — the one its run
/// recorded when that was rendered from the same inputs, else rendered again; for a run
/// about no cluster, the account named by `inputs.cloudAccount {project, name}` (only
/// `validate-account` can run then).
#[derive(Clone)]
pub struct ClusterResolver {
    state: AppState,
}

impl ClusterResolver {
    /// A resolver reading through `state`.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// The wire form of a desired stack.
pub fn provider_spec(cluster: host::ClusterRef, d: &Desired) -> host::ClusterSpec {
    use fleetplane_domain::profile::Layer;
    host::ClusterSpec {
        cluster,
        cloud_type: d.desired.cloud_type.as_str().to_owned(),
        labels: d
            .desired
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        node_pools: d
            .desired
            .node_pools
            .iter()
            .map(|p| host::NodePool {
                name: p.name.clone(),
                control_plane: p.control_plane,
                count: p.count,
                instance_type: p.instance_type.clone(),
            })
            .collect(),
        os_image: d.desired.os_image.clone(),
        kubernetes_version: d.desired.kubernetes_version.clone(),
        layers: d
            .desired
            .layers
            .iter()
            .map(|l| host::RenderedLayer {
                name: format!("{}/{}", l.profile, l.layer.name),
                layer: match l.layer.layer {
                    Layer::Os => host::LayerKind::Os,
                    Layer::K8s => host::LayerKind::K8s,
                    Layer::Cni => host::LayerKind::Cni,
                    Layer::Csi => host::LayerKind::Csi,
                    Layer::Addon => host::LayerKind::Addon,
                },
                pack: l.layer.name.clone(),
                version: l.layer.version.clone(),
                values: l.layer.values.clone(),
            })
            .collect(),
        revision: d.digest.clone(),
    }
}

fn account_call(
    r: &dyn ReadOps,
    project: &str,
    name: &str,
) -> ApiResult<Result<ObjectOf<CloudAccount>, StepError>> {
    let scope = Scope::Project(project.to_owned());
    Ok(match resource::load::<CloudAccount>(r, &scope, name)? {
        Some(obj) => Ok(obj),
        None => Err(step_error(
            ErrorKind::NotFound,
            format!("cloud account {project}/{name} not found"),
        )),
    })
}

impl CallResolver for ClusterResolver {
    fn resolve(
        &self,
        run: &str,
        cluster: Option<&str>,
        operation: Operation,
    ) -> BoxFuture<'static, Result<ProviderCall, StepError>> {
        let state = self.state.clone();
        let run = run.to_owned();
        let cluster = cluster.map(str::to_owned);
        Box::pin(async move {
            let registry = state.providers().map_err(|e| from_api(&e))?.clone();
            let found = state
                .read(move |r| {
                    let Some(c) = cluster else {
                        let rec = r.run(&run)?.ok_or_else(|| ApiError::not_found("run", &run))?;
                        let st = decode_state(&rec)?;
                        let acc = &st.inputs["cloudAccount"];
                        let (Some(p), Some(n)) = (acc["project"].as_str(), acc["name"].as_str()) else {
                            return Ok(Err(step_error(
                                ErrorKind::InvalidConfig,
                                "the run is about no cluster and has no inputs.cloudAccount {project, name}",
                            )));
                        };
                        return Ok(account_call(r, p, n)?.map(|a| (p.to_owned(), a, None)));
                    };
                    let (key, obj) = match cluster_of(r, Some(&c)) {
                        Ok(x) => x,
                        Err(e) => return Ok(Err(e)),
                    };
                    let project = key.scope.project().unwrap_or_default().to_owned();
                    let acc = match account_call(r, &project, &obj.spec.cloud_account)? {
                        Ok(a) => a,
                        Err(e) => return Ok(Err(e)),
                    };
                    // The account's configured region, else the first its provider offers.
                    let region = acc.spec.config["region"]
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| acc.status.regions.first().cloned())
                        .unwrap_or_default();
                    let cref = host::ClusterRef {
                        id: obj.metadata.uid.clone(),
                        name: obj.metadata.name.clone(),
                        region,
                    };
                    let mut spec = None;
                    let mut replace = false;
                    if matches!(operation, Operation::CreateCluster | Operation::UpdateCluster) {
                        let stacks = clusters::read_stacks(r, &key)?;
                        let ours = stacks.pending.as_ref().filter(|p| p.run == run);
                        let d = match clusters::desired_reusing(r, &key, &obj.spec, ours) {
                            Ok(d) => d,
                            Err(e) => return Ok(Err(from_api(&e))),
                        };
                        if let Some(p) = &stacks.pending
                            && p.run == run
                            && p.digest != d.digest
                        {
                            return Ok(Err(step_error(
                                ErrorKind::Conflict,
                                format!(
                                    "the cluster's desired stack changed after this run recorded it ({} → {}); redrive the run",
                                    p.digest, d.digest
                                ),
                            )));
                        }
                        replace = stacks
                            .applied
                            .as_ref()
                            .is_some_and(|a| replaces_machines(&a.desired.layers, &d.desired.layers));
                        spec = Some(provider_spec(cref.clone(), &d));
                    }
                    Ok(Ok((project, acc, Some((cref, spec, replace)))))
                })
                .await
                .map_err(|e| from_api(&e))??;
            let (project, acc, about) = found;
            let account = cloud_accounts::account_context(registry.cipher(), &project, &acc)
                .map_err(|e| from_api(&e))?;
            let (cluster, spec, replace_machines) = match about {
                Some((c, s, r)) => (Some(c), s, r),
                None => (None, None, false),
            };
            Ok(ProviderCall {
                provider: acc.spec.provider.clone(),
                account,
                cluster,
                spec,
                replace_machines,
            })
        })
    }
}
