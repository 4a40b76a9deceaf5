//! Workflow definitions and runs (DESIGN §6, `docs/runtime.md` "API"):
//! `/v1/workflows…` (built-ins and submitted definitions) and `/v1[/projects/{p}]/runs…`
//! (start, list, show, journal, signals). Runs are written only through the runtime's
//! [`RuntimeClient`], attached to the [`AppState`] by the server ([`AppState::set_runtime`]).
//!
//! The server's effect executors are in [`crate::effects`].

use crate::Routes;
use crate::audit::ChangeEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::Query;
use crate::resource;
use crate::state::{AppState, Tx};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fleetplane_domain::authz::{Permission, Resource, Verb};
use fleetplane_domain::{DomainError, ErrorCode};
use fleetplane_runtime::{NewRun, RuntimeClient};
use fleetplane_store::tables::kinds;
use fleetplane_store::{ListQuery, ObjectKey, Precondition, ReadOps, RunIndex, Scope};
use fleetplane_workflow::{
    Definition, Event, Principal, RunState, Signal, parse_definition, stuck_steps,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// The statuses runs are listed by when no status filter is given, in this order.
const STATUSES: [&str; 7] = [
    "Pending",
    "Running",
    "Waiting",
    "Paused",
    "Succeeded",
    "Failed",
    "Cancelled",
];

/// A submitted definition as the store keeps it (kind `workflow`, tenant scope, key
/// `<name>@<version>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredWorkflow {
    /// The canonical definition (JSON).
    pub definition: Value,
    /// Its digest.
    pub digest: String,
    /// Whether a run has used this version (it is then immutable).
    #[serde(default)]
    pub in_use: bool,
}

/// A definition as listed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSummary {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// deploy, stage-update or rollout.
    pub purpose: Value,
    /// `sha256:…` of the canonical form.
    pub digest: String,
    /// Built-ins are read-only.
    pub read_only: bool,
    /// Whether a run has used it.
    pub in_use: bool,
}

/// The workflow engine as the API sees it: the runtime client and the built-in definitions.
#[derive(Clone)]
pub struct Workflows {
    client: RuntimeClient,
    builtins: Arc<Vec<Definition>>,
}

impl std::fmt::Debug for Workflows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflows").finish_non_exhaustive()
    }
}

impl Workflows {
    /// The runtime client.
    pub fn client(&self) -> &RuntimeClient {
        &self.client
    }

    /// The digest of the built-in definition `name` (`deploy`, `update`, `delete`, …).
    pub fn builtin_digest(&self, name: &str) -> Option<String> {
        self.builtins
            .iter()
            .find(|d| d.metadata.name == name)
            .map(Definition::digest)
    }

    fn builtin(&self, name: &str, version: &str) -> Option<&Definition> {
        self.builtins
            .iter()
            .find(|d| d.metadata.name == name && d.metadata.version.to_string() == version)
    }
}

fn key(name: &str, version: &str) -> ObjectKey {
    ObjectKey::tenant(kinds::WORKFLOW, format!("{name}@{version}"))
}

/// Every submitted definition in the store.
///
/// # Errors
/// Store errors; `Internal` for an undecodable record.
pub fn stored_definitions(r: &dyn ReadOps) -> ApiResult<Vec<(StoredWorkflow, Definition)>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = r.list(&ListQuery {
            scope: Scope::Tenant,
            kind: kinds::WORKFLOW,
            name_prefix: String::new(),
            after: after.take(),
            limit: 1000,
        })?;
        for rec in &page.items {
            let s: StoredWorkflow = rec.decode()?;
            let d: Definition = serde_json::from_value(s.definition.clone())
                .map_err(|e| ApiError::internal(format!("workflow {}: {e}", rec.key.name)))?;
            out.push((s, d));
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Registers the built-in definitions and every submitted one with the runtime, then attaches
/// it to the API (call before `Runtime::serve`, so runs pinned to them can proceed).
///
/// # Errors
/// `Internal` when a built-in does not validate (a build defect); store errors.
pub async fn attach(state: &AppState, client: RuntimeClient) -> ApiResult<()> {
    let builtins = fleetplane_workflow::builtin::builtin().map_err(ApiError::from)?;
    for d in &builtins {
        client.register(d.clone());
    }
    for (_, d) in state.read(stored_definitions).await? {
        client.register(d);
    }
    state.set_workflows(Workflows {
        client,
        builtins: Arc::new(builtins),
    });
    Ok(())
}

fn summary(d: &Definition, read_only: bool, in_use: bool) -> WorkflowSummary {
    WorkflowSummary {
        name: d.metadata.name.clone(),
        version: d.metadata.version.to_string(),
        purpose: serde_json::to_value(d.spec.purpose).unwrap_or(Value::Null),
        digest: d.digest(),
        read_only,
        in_use,
    }
}

/// `GET /v1/workflows`: built-ins first, then submitted definitions by name and version.
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Permission::new(Resource::Workflow, Verb::List), None)?;
    let wf = state.workflows()?.clone();
    let mut items: Vec<WorkflowSummary> = wf
        .builtins
        .iter()
        .map(|d| summary(d, true, false))
        .collect();
    for (s, d) in state.read(stored_definitions).await? {
        items.push(summary(&d, false, s.in_use));
    }
    Ok(Json(json!({ "items": items })))
}

/// `GET /v1/workflows:schema`.
async fn schema(caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Permission::new(Resource::Workflow, Verb::Get), None)?;
    Ok(Json(fleetplane_workflow::schema().clone()))
}

#[derive(Deserialize)]
struct VersionPath {
    name: String,
    version: String,
}

fn definition_body(d: &Definition, digest: &str, read_only: bool, in_use: bool) -> Value {
    json!({
        "definition": d.to_json(),
        "digest": digest,
        "readOnly": read_only,
        "inUse": in_use,
    })
}

/// `GET /v1/workflows/{name}/versions/{version}`.
async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<VersionPath>,
) -> ApiResult<Json<Value>> {
    caller.require(Permission::new(Resource::Workflow, Verb::Get), None)?;
    let wf = state.workflows()?.clone();
    if let Some(d) = wf.builtin(&p.name, &p.version) {
        return Ok(Json(definition_body(d, &d.digest(), true, false)));
    }
    let k = key(&p.name, &p.version);
    let rec = state.read(move |r| Ok(r.get(&k)?)).await?;
    let rec =
        rec.ok_or_else(|| ApiError::not_found("workflow", &format!("{}@{}", p.name, p.version)))?;
    let s: StoredWorkflow = rec.decode()?;
    let d: Definition = serde_json::from_value(s.definition.clone())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(definition_body(&d, &s.digest, false, s.in_use)))
}

/// `PUT /v1/workflows/{name}/versions/{version}`: a YAML or JSON definition document.
async fn put_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(p): Path<VersionPath>,
    body: Bytes,
) -> ApiResult<Response> {
    let wf = state.workflows()?.clone();
    let def = parse_definition(&body).map_err(ApiError::from)?;
    let mut problems = fleetplane_domain::Problems::new();
    if def.metadata.name != p.name {
        problems.push(
            "metadata.name",
            format!("does not match the name in the path ({:?})", p.name),
        );
    }
    if def.metadata.version.to_string() != p.version {
        problems.push(
            "metadata.version",
            format!("does not match the version in the path ({:?})", p.version),
        );
    }
    problems.finish()?;
    if wf.builtin(&p.name, &p.version).is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "{}@{} is a built-in definition and read-only",
                p.name, p.version
            ),
        ));
    }
    let k = key(&p.name, &p.version);
    let exists = {
        let k = k.clone();
        state.read(move |r| Ok(r.get(&k)?.is_some())).await?
    };
    let verb = if exists { Verb::Update } else { Verb::Create };
    caller.require(Permission::new(Resource::Workflow, verb), None)?;
    let digest = def.digest();
    let stored = StoredWorkflow {
        definition: def.to_json(),
        digest: digest.clone(),
        in_use: false,
    };
    let path = format!("workflows/{}/versions/{}", p.name, p.version);
    let created = state
        .write(&caller, move |tx| {
            let old = tx.ops.get(&k)?;
            if let Some(old) = &old {
                let o: StoredWorkflow = old.decode()?;
                if o.in_use && o.digest != stored.digest {
                    return Err(DomainError::new(
                        ErrorCode::WorkflowVersionInUse,
                        format!("{path} was used by a run; submit a new version"),
                    )
                    .into());
                }
            }
            let body = serde_json::to_vec(&stored).map_err(|e| ApiError::internal(e.to_string()))?;
            let rv = tx.ops.put(&k, &body, Precondition::Any, &[])?;
            let action = if old.is_some() { "update" } else { "create" };
            tx.audit(
                action,
                &path,
                None,
                None,
                Some(json!({"digest": stored.digest})),
            )?;
            tx.changed(ChangeEvent {
                id: 0,
                event_type: format!(
                    "dev.fleetplane.workflow.{}",
                    if old.is_some() { "updated" } else { "created" }
                ),
                subject: path.clone(),
                time: tx.now,
                project: None,
                resource: Resource::Workflow,
                data: json!({"kind": "Workflow", "name": path, "resourceVersion": rv.to_string(), "digest": stored.digest}),
            });
            Ok(old.is_none())
        })
        .await?;
    wf.client.register(def.clone());
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(definition_body(&def, &digest, false, false))).into_response())
}

/// Path of run routes.
#[derive(Deserialize)]
struct RunPath {
    project: Option<String>,
    id: Option<String>,
}

/// `POST …/runs` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRun {
    /// `name@version` or `{name, version}`.
    workflow: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    inputs: Value,
}

/// The API path of a run.
pub(crate) fn run_path(project: Option<&str>, id: &str) -> String {
    match project {
        Some(p) => format!("projects/{p}/runs/{id}"),
        None => format!("runs/{id}"),
    }
}

fn run_event(tx: &Tx<'_>, project: Option<&str>, id: &str, verb: &str, data: Value) -> ChangeEvent {
    ChangeEvent {
        id: 0,
        event_type: format!("dev.fleetplane.run.{verb}"),
        subject: run_path(project, id),
        time: tx.now,
        project: project.map(str::to_owned),
        resource: Resource::Run,
        data,
    }
}

/// The API error of a runtime error (`ClusterBusy`, `NotFound`, else `Internal`).
pub(crate) fn runtime_error(e: fleetplane_runtime::RuntimeError) -> ApiError {
    use fleetplane_runtime::RuntimeError as R;
    match e {
        R::RunNotFound(id) => ApiError::not_found("run", &id),
        R::ClusterBusy { cluster, holder } => ApiError::new(
            ErrorCode::ClusterBusy,
            format!("cluster {cluster} is busy with run {holder}"),
        ),
        R::UnknownDefinition(d) => ApiError::new(
            ErrorCode::NotFound,
            format!("workflow definition {d} is not registered"),
        ),
        other => ApiError::internal(other.to_string()),
    }
}

/// `POST /v1[/projects/{p}]/runs`: starts a run of `workflow` (`name@version`) with `inputs`.
async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<RunPath>,
    crate::json::JsonBytes(body): crate::json::JsonBytes,
) -> ApiResult<Response> {
    let project = path.project.clone();
    caller.require(
        Permission::new(Resource::Run, Verb::Create),
        project.as_deref(),
    )?;
    let wf = state.workflows()?.clone();
    let req: StartRun = crate::json::decode(&body)?;
    let (name, version) = match (&req.version, req.workflow.split_once('@')) {
        (Some(v), None) => (req.workflow.clone(), v.clone()),
        (None, Some((n, v))) => (n.to_owned(), v.to_owned()),
        _ => {
            return Err(ApiError::field(
                "workflow",
                "expected `name@version` (or `workflow` and `version`)",
            ));
        }
    };
    let (digest, builtin) = match wf.builtin(&name, &version) {
        Some(d) => (d.digest(), true),
        None => {
            let k = key(&name, &version);
            let rec = state.read(move |r| Ok(r.get(&k)?)).await?;
            let rec =
                rec.ok_or_else(|| ApiError::not_found("workflow", &format!("{name}@{version}")))?;
            let s: StoredWorkflow = rec.decode()?;
            (s.digest, false)
        }
    };
    let id = uuid::Uuid::now_v7().to_string();
    let scope = Scope::from_project(project.as_deref());
    let subject = run_path(project.as_deref(), &id);
    let (n, v, dg, i, p) = (
        name.clone(),
        version.clone(),
        digest.clone(),
        id.clone(),
        project.clone(),
    );
    // Mark the version used (immutable from now on), audit and announce; then start the run.
    state
        .write(&caller, move |tx| {
            resource::require_project(&*tx.ops, &scope)?;
            if !builtin {
                let k = key(&n, &v);
                let rec = tx
                    .ops
                    .get(&k)?
                    .ok_or_else(|| ApiError::not_found("workflow", &format!("{n}@{v}")))?;
                let mut s: StoredWorkflow = rec.decode()?;
                if s.digest != dg {
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        "the definition changed while starting the run; retry",
                    ));
                }
                if !s.in_use {
                    s.in_use = true;
                    let body =
                        serde_json::to_vec(&s).map_err(|e| ApiError::internal(e.to_string()))?;
                    tx.ops
                        .put(&k, &body, Precondition::Version(rec.resource_version), &[])?;
                }
            }
            tx.audit(
                "start",
                &subject,
                p.as_deref(),
                None,
                Some(json!({"workflow": format!("{n}@{v}"), "digest": dg})),
            )?;
            let ev = run_event(
                tx,
                p.as_deref(),
                &i,
                "started",
                json!({"kind": "Run", "id": i, "workflow": format!("{n}@{v}"), "by": tx.actor}),
            );
            tx.changed(ev);
            Ok(())
        })
        .await?;
    let client = wf.client.clone();
    let new = NewRun {
        id: id.clone(),
        definition: digest.clone(),
        inputs: if req.inputs.is_null() {
            json!({})
        } else {
            req.inputs
        },
        subject: None,
        project: project.clone(),
        cluster: None,
    };
    tokio::task::spawn_blocking(move || client.start_run(new))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(runtime_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id, "project": project, "workflow": format!("{name}@{version}"),
            "digest": digest, "status": "Pending",
        })),
    )
        .into_response())
}

/// Query of `GET …/runs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunQuery {
    status: Option<String>,
    definition: Option<String>,
    limit: Option<usize>,
    #[serde(rename = "continue")]
    cont: Option<String>,
}

fn run_summary(h: &fleetplane_store::RunHeader, st: &RunState) -> Value {
    json!({
        "id": h.id,
        "project": h.project,
        "parent": h.parent,
        "workflow": format!("{}@{}", st.definition.name, st.definition.version),
        "status": h.status,
        "waitingOn": st.waiting_on,
        "startedAt": st.started_at,
        "endedAt": st.ended_at,
    })
}

/// The state of a stored run.
pub(crate) fn decode_state(rec: &fleetplane_store::RunRecord) -> ApiResult<RunState> {
    RunState::from_json(&rec.state)
        .map_err(|e| ApiError::internal(format!("run {}: {e}", rec.header.id)))
}

/// `GET /v1[/projects/{p}]/runs`: by status (or every status in turn), then by id. The
/// `continue` token is `<status index>.<last id>`.
async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<RunPath>,
    Query(q): Query<RunQuery>,
) -> ApiResult<Json<Value>> {
    let project = path.project.clone();
    caller.require(
        Permission::new(Resource::Run, Verb::List),
        project.as_deref(),
    )?;
    let limit = q.limit.unwrap_or(100).clamp(1, state.settings.max_page);
    let statuses: Vec<String> = match &q.status {
        Some(s) => {
            if !STATUSES.contains(&s.as_str()) {
                return Err(ApiError::field(
                    "status",
                    format!("expected one of {}", STATUSES.join(", ")),
                ));
            }
            vec![s.clone()]
        }
        None => STATUSES.iter().map(|s| (*s).to_owned()).collect(),
    };
    let (mut at, mut after) = match q.cont.as_deref() {
        None => (0usize, None),
        Some(c) => {
            let (i, id) = c
                .split_once('.')
                .and_then(|(i, id)| Some((i.parse::<usize>().ok()?, id.to_owned())))
                .ok_or_else(|| ApiError::field("continue", "not a token from this listing"))?;
            (i, Some(id))
        }
    };
    let visible_all = caller.can(Permission::new(Resource::Run, Verb::List), None);
    let caller2 = caller.clone();
    let (items, next) = state
        .read(move |r| {
            let mut items = Vec::new();
            while at < statuses.len() {
                let ids = r.runs_by(
                    &RunIndex::Status(statuses[at].clone()),
                    after.as_deref(),
                    limit.max(64),
                )?;
                let exhausted = ids.len() < limit.max(64);
                for id in ids {
                    after = Some(id.clone());
                    let Some(rec) = r.run(&id)? else { continue };
                    let h = &rec.header;
                    let ok_project = match &project {
                        Some(p) => h.project.as_deref() == Some(p.as_str()),
                        None => {
                            visible_all
                                || caller2.can(
                                    Permission::new(Resource::Run, Verb::List),
                                    h.project.as_deref(),
                                )
                        }
                    };
                    if !ok_project || q.definition.as_ref().is_some_and(|d| *d != h.definition) {
                        continue;
                    }
                    let st = decode_state(&rec)?;
                    items.push(run_summary(h, &st));
                    if items.len() >= limit {
                        return Ok((items, after.map(|a| format!("{at}.{a}"))));
                    }
                }
                if exhausted {
                    at += 1;
                    after = None;
                }
            }
            Ok((items, None))
        })
        .await?;
    Ok(Json(json!({"items": items, "continue": next})))
}

/// Reads a run visible at `project` (404 when it lives elsewhere).
fn load_run(
    r: &dyn ReadOps,
    project: Option<&str>,
    id: &str,
) -> ApiResult<fleetplane_store::RunRecord> {
    let rec = r.run(id)?.ok_or_else(|| ApiError::not_found("run", id))?;
    if let Some(p) = project
        && rec.header.project.as_deref() != Some(p)
    {
        return Err(ApiError::not_found("run", id));
    }
    Ok(rec)
}

/// How much of a fan-out `GET …/runs/{id}` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum RunView {
    /// Its counts: the items as their number, each wave's members as their number.
    #[default]
    Summary,
    /// Every item and wave member (O(items): a 100,000-cluster fan-out is ~11 MB).
    Full,
}

/// Query of `GET …/runs/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunGetQuery {
    view: Option<String>,
}

impl RunGetQuery {
    fn view(&self) -> ApiResult<RunView> {
        match self.view.as_deref() {
            None | Some("summary") => Ok(RunView::Summary),
            Some("full") => Ok(RunView::Full),
            Some(_) => Err(ApiError::field("view", "expected summary or full")),
        }
    }
}

/// The child runs a run started, from its own state (O(1)): the clusters of its current (or
/// last) fan-out that have started one (running, succeeded or failed). A re-driven cluster
/// counts once.
fn children_of(st: &RunState) -> usize {
    st.counts.running + st.counts.succeeded + st.counts.failed
}

/// Shows the active fan-out of `v["active"]` per `view`: by default its items and each wave's
/// members as their numbers, so the answer does not grow with the fleet.
fn show_fanout(v: &mut Value, st: &RunState, view: RunView) {
    let (Some(f), Some(shown)) = (st.fanout(), v.pointer_mut("/active/fanout")) else {
        return;
    };
    match view {
        RunView::Summary => {
            shown["items"] = json!({ "count": f.items.len() });
            for (i, w) in f.waves.iter().enumerate() {
                if let Some(wave) = shown.pointer_mut(&format!("/waves/{i}")) {
                    wave["members"] = json!(w.members.len());
                }
            }
        }
        RunView::Full => {
            shown["items"] =
                serde_json::to_value(f.items.iter().collect::<Vec<_>>()).unwrap_or(Value::Null);
        }
    }
}

fn run_detail(
    wf: &Workflows,
    rec: &fleetplane_store::RunRecord,
    st: &RunState,
    view: RunView,
) -> ApiResult<Value> {
    let stuck = wf
        .client
        .definition(&st.definition.digest)
        .map(|d| stuck_steps(st, &d, jiff::Timestamp::now()))
        .unwrap_or_default();
    let mut v = run_summary(&rec.header, st);
    v["definition"] = serde_json::to_value(&st.definition).unwrap_or(Value::Null);
    v["inputs"] = st.inputs.clone();
    v["vars"] = Value::Object(st.vars.clone());
    v["paused"] = serde_json::to_value(&st.paused).unwrap_or(Value::Null);
    v["error"] = serde_json::to_value(&st.error).unwrap_or(Value::Null);
    v["active"] = serde_json::to_value(&st.active).unwrap_or(Value::Null);
    v["approvals"] = serde_json::to_value(&st.approvals).unwrap_or(Value::Null);
    v["counts"] = serde_json::to_value(st.counts).unwrap_or(Value::Null);
    v["children"] = json!(children_of(st));
    show_fanout(&mut v, st, view);
    v["generation"] = json!(st.generation);
    v["journalSeq"] = json!(st.journal_seq);
    v["stuck"] = serde_json::to_value(&stuck).unwrap_or(Value::Null);
    Ok(v)
}

/// `GET /v1[/projects/{p}]/runs/{id}`.
async fn get_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<RunPath>,
    Query(q): Query<RunGetQuery>,
) -> ApiResult<Json<Value>> {
    let wf = state.workflows()?.clone();
    let id = path.id.clone().unwrap_or_default();
    let project = path.project.clone();
    let view = q.view()?;
    let (rec, st) = state
        .read(move |r| {
            let rec = load_run(r, project.as_deref(), &id)?;
            // The fan-out's items are rows of their own: read only when asked for.
            let st = match view {
                RunView::Summary => decode_state(&rec)?,
                RunView::Full => fleetplane_runtime::load_state(r, &rec)
                    .map_err(|e| ApiError::internal(format!("run {id}: {e}")))?,
            };
            Ok((rec, st))
        })
        .await?;
    caller.require(
        Permission::new(Resource::Run, Verb::Get),
        rec.header.project.as_deref(),
    )?;
    Ok(Json(run_detail(&wf, &rec, &st, view)?))
}

/// Query of the journal.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// `GET /v1[/projects/{p}]/runs/{id}/journal?after=&limit=`: entries with `seq > after`.
async fn journal(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<RunPath>,
    Query(q): Query<JournalQuery>,
) -> ApiResult<Json<Value>> {
    let id = path.id.clone().unwrap_or_default();
    let project = path.project.clone();
    let limit = q.limit.unwrap_or(100).clamp(1, state.settings.max_page);
    let after = q.after.unwrap_or(0);
    let (rec_project, entries) = state
        .read(move |r| {
            let rec = load_run(r, project.as_deref(), &id)?;
            let mut out = Vec::new();
            for e in r.journal(&id, after, limit)? {
                let v: Value = serde_json::from_slice(&e.body)
                    .map_err(|err| ApiError::internal(err.to_string()))?;
                out.push(v);
            }
            Ok((rec.header.project, out))
        })
        .await?;
    caller.require(
        Permission::new(Resource::Run, Verb::Get),
        rec_project.as_deref(),
    )?;
    let next = (entries.len() == limit)
        .then(|| entries.last().and_then(|e| e["seq"].as_u64()))
        .flatten();
    Ok(Json(json!({"items": entries, "next": next})))
}

/// Body of a signal.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SignalBody {
    reason: Option<String>,
    name: Option<String>,
    #[serde(default)]
    retry_failed: bool,
}

/// The signal names accepted as `…/runs/{id}:<signal>`.
pub const SIGNALS: [&str; 6] = ["pause", "resume", "cancel", "approve", "reject", "redrive"];

fn signal_of(verb: &str, b: &SignalBody) -> ApiResult<Signal> {
    let name = || {
        b.name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::field("name", "the approval's name is required"))
    };
    Ok(match verb {
        "pause" => Signal::Pause,
        "resume" => Signal::Resume {
            retry_failed: b.retry_failed,
        },
        "redrive" => Signal::Resume { retry_failed: true },
        "cancel" => Signal::Cancel,
        "approve" => Signal::Approve { name: name()? },
        "reject" => Signal::Reject { name: name()? },
        _ => return Err(ApiError::new(ErrorCode::NotFound, "no such route")),
    })
}

/// `POST /v1[/projects/{p}]/runs/{id}:<signal>` (axum matches the whole segment; the suffix is
/// split here).
async fn post_signal(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<RunPath>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let seg = path.id.clone().unwrap_or_default();
    let Some((id, verb)) = seg.rsplit_once(':') else {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            "method not allowed on this path",
        ));
    };
    let b: SignalBody = if body.iter().all(u8::is_ascii_whitespace) {
        SignalBody::default()
    } else {
        crate::json::decode(&body)?
    };
    let signal = signal_of(verb, &b)?;
    let wf = state.workflows()?.clone();
    let (id, project) = (id.to_owned(), path.project.clone());
    let rec = {
        let (id, project) = (id.clone(), project.clone());
        state
            .read(move |r| load_run(r, project.as_deref(), &id))
            .await?
    };
    let run_project = rec.header.project.clone();
    caller.require(
        Permission::new(Resource::Run, Verb::Update),
        run_project.as_deref(),
    )?;
    let roles: Vec<String> = caller
        .grants
        .iter()
        .filter(|g| g.project.is_none() || g.project.as_deref() == run_project.as_deref())
        .filter_map(|g| {
            serde_json::to_value(g.role)
                .ok()?
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let by = Principal {
        name: caller.user.clone(),
        roles,
    };
    let event = Event::Signal {
        signal: signal.clone(),
        by: by.clone(),
        reason: b.reason.clone(),
    };
    let client = wf.client.clone();
    let run_id = id.clone();
    tokio::task::spawn_blocking(move || client.send(&run_id, &event))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(runtime_error)?;
    let subject = run_path(run_project.as_deref(), &id);
    let verb = verb.to_owned();
    let detail = json!({"signal": signal, "reason": b.reason, "by": by.name});
    let (i, p, d) = (id.clone(), run_project.clone(), detail.clone());
    state
        .write(&caller, move |tx| {
            tx.audit(
                &format!("run.{verb}"),
                &subject,
                p.as_deref(),
                None,
                Some(d.clone()),
            )?;
            let ev = run_event(tx, p.as_deref(), &i, "signalled", d);
            tx.changed(ev);
            Ok(())
        })
        .await?;
    Ok(Json(json!({"id": id, "accepted": detail})))
}

/// Registers the workflow and run routes. The signal forms `…/runs/{id}:<signal>` are served by
/// the POST of `…/runs/{id}` and recorded one by one for the OpenAPI check.
pub fn routes(r: &mut Routes) {
    use axum::routing::{get, put};
    r.add("/v1/workflows", &[Method::GET], get(list));
    r.add("/v1/workflows:schema", &[Method::GET], get(schema));
    r.add(
        "/v1/workflows/{name}/versions/{version}",
        &[Method::GET, Method::PUT],
        put(put_version).get(get_version),
    );
    for base in ["/v1", "/v1/projects/{project}"] {
        let c = format!("{base}/runs");
        r.add(&c, &[Method::GET, Method::POST], get(list_runs).post(start));
        r.add(
            &format!("{c}/{{id}}"),
            &[Method::GET],
            get(get_run).post(post_signal),
        );
        for s in SIGNALS {
            r.operations.push((Method::POST, format!("{c}/{{id}}:{s}")));
        }
        r.add(&format!("{c}/{{id}}/journal"), &[Method::GET], get(journal));
    }
}
