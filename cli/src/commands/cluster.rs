//! `fleetplane cluster …`: the clusters of a project (`/v1/projects/{p}/clusters…`).
//!
//! Scope: clusters live only in projects; the project is `--project`, `FLEETPLANE_PROJECT` or
//! the config file's (as for cloud accounts), and a command fails without one. A Cluster
//! document of `create -f` may name its project in `metadata.project`.
//!
//! Writes that start a run (create, set-vars, delete) answer at once; `--wait` then polls the
//! cluster and its events every second, prints phase changes and new events on standard error,
//! and ends when the run is over: exit 0 when the cluster is Running (or gone, for delete), 1
//! with the `Ready` condition's message when it Failed.

use super::{Ctx, note, print};
use crate::args::OutputFormat;
use crate::args::cluster::{
    AttachArgs, ClusterCommand, CreateClusterArgs, DeleteClusterArgs, EventsArgs, PoolArg,
    SetVarsArgs, TemplateScope, WaitArgs,
};
use crate::args::template::{ProfileArg, VarArg};
use crate::output::{self, Column, field, time};
use anyhow::Context as _;
use fleetplane_client::{ClientError, Deleted, Precondition, encode_segment};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::time::Duration;

/// Table columns of clusters.
pub const COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/metadata/name")),
    Column::new("TEMPLATE", template_cell),
    Column::new("PHASE", |v| field(v, "/status/phase")),
    Column::new("HEALTH", |v| field(v, "/status/health")),
    Column::new("REVISION", revision_cell),
    Column::new("PROFILES", profiles_cell),
    Column::new("NEXT WINDOW", window_cell),
];

/// Table columns of events.
const EVENT_COLUMNS: &[Column] = &[
    Column::new("TIME", |v| time(v, "/time")),
    Column::new("TYPE", |v| field(v, "/type")),
    Column::new("REASON", |v| field(v, "/reason")),
    Column::new("RUN", |v| field(v, "/run")),
    Column::new("MESSAGE", |v| field(v, "/message")),
];

/// Table columns of the node pools of `get`.
const POOL_COLUMNS: &[Column] = &[
    Column::new("POOL", |v| field(v, "/name")),
    Column::new("CONTROL PLANE", |v| {
        if v.get("controlPlane").and_then(Value::as_bool) == Some(true) {
            "yes".to_owned()
        } else {
            "no".to_owned()
        }
    }),
    Column::new("COUNT", |v| field(v, "/count")),
    Column::new("INSTANCE TYPE", |v| field(v, "/instanceType")),
];

/// Table columns of the nodes of `get`.
const NODE_COLUMNS: &[Column] = &[
    Column::new("NODE", |v| field(v, "/name")),
    Column::new("POOL", |v| field(v, "/pool")),
    Column::new("INSTANCE TYPE", |v| field(v, "/instanceType")),
    Column::new("OS IMAGE", |v| field(v, "/osImage")),
    Column::new("KUBERNETES", |v| field(v, "/kubernetesVersion")),
    Column::new("PHASE", |v| field(v, "/phase")),
];

/// Table columns of the conditions of `get`.
const CONDITION_COLUMNS: &[Column] = &[
    Column::new("CONDITION", |v| field(v, "/type")),
    Column::new("STATUS", |v| field(v, "/status")),
    Column::new("REASON", |v| field(v, "/reason")),
    Column::new("SINCE", |v| time(v, "/lastTransitionTime")),
    Column::new("MESSAGE", |v| field(v, "/message")),
];

/// How long `--wait` and `events --follow` go on when not told.
const DEFAULT_WAIT: Duration = Duration::from_secs(3600);

/// The pause between two polls of `--wait` and `--follow`.
const POLL: Duration = Duration::from_secs(1);

/// The most events the server keeps (and answers) per cluster.
const EVENTS_KEPT: u32 = 200;

/// `tenant:NAME` for a reference with `scope: tenant`, else `NAME`.
fn scoped(reference: &Value, text: String) -> String {
    if reference.get("scope").and_then(Value::as_str) == Some("tenant") {
        format!("tenant:{text}")
    } else {
        text
    }
}

/// The template, `tenant:` prefixed for a tenant template; empty for a standalone cluster.
fn template_cell(v: &Value) -> String {
    match v.pointer("/spec/template") {
        Some(t @ Value::Object(_)) => scoped(t, field(t, "/name")),
        _ => String::new(),
    }
}

/// The template revision it runs, and the one it should run when they differ.
fn revision_cell(v: &Value) -> String {
    let running = field(v, "/status/revision");
    let desired = field(v, "/status/desiredRevision");
    match (running.is_empty(), desired.is_empty() || desired == running) {
        (_, true) => running,
        (true, false) => format!("- (desired {desired})"),
        (false, false) => format!("{running} (desired {desired})"),
    }
}

/// The versions it runs, `aws-standard@1.0.0, tenant:obs@1.0.0`.
fn profiles_cell(v: &Value) -> String {
    v.pointer("/status/profiles")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|p| scoped(p, format!("{}@{}", field(p, "/name"), field(p, "/version"))))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `START to END` of the next window (UTC).
fn window_cell(v: &Value) -> String {
    match v.pointer("/status/nextWindow") {
        Some(w @ Value::Object(_)) => format!("{} to {}", time(w, "/start"), time(w, "/end")),
        _ => String::new(),
    }
}

/// Where a command works: the project.
struct Scope {
    project: String,
}

impl Scope {
    /// The client's project (flag, variable or config file).
    fn of(ctx: &Ctx) -> anyhow::Result<Self> {
        let project = ctx
            .client
            .project()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .ok_or(ClientError::NoProject)?;
        Ok(Self {
            project: project.to_owned(),
        })
    }

    fn collection(&self) -> String {
        format!("/v1/projects/{}/clusters", encode_segment(&self.project))
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{}", self.collection(), encode_segment(name))
    }

    fn what(&self, name: &str) -> String {
        format!("cluster {name:?} in project {:?}", self.project)
    }
}

/// Runs `fleetplane cluster …`.
///
/// # Errors
/// No project is known, a document cannot be read, the API call fails (with the server's code
/// and field paths: 400 `ValidationFailed` at `spec.variables.<profile>.<variable>`, 409
/// `ClusterBusy`, `ClusterAlreadyAttached`, …), waiting ends with the cluster Failed or times
/// out, or output cannot be written.
pub async fn run(ctx: &Ctx, cmd: ClusterCommand) -> anyhow::Result<()> {
    // `create -f` may take its project from the document; the others use the client's.
    let scope = || Scope::of(ctx);
    match cmd {
        ClusterCommand::Create(args) => create(ctx, args).await,
        ClusterCommand::List(args) => {
            let scope = scope()?;
            let items = ctx
                .list(&scope.collection(), &args)
                .await
                .with_context(|| {
                    format!("cannot list the clusters of project {:?}", scope.project)
                })?;
            ctx.print_list(&items, COLUMNS)
        }
        ClusterCommand::Get { name } => {
            let scope = scope()?;
            let item = ctx
                .client
                .get(&scope.path(&name))
                .await
                .with_context(|| format!("cannot get {}", scope.what(&name)))?;
            match ctx.global.output {
                OutputFormat::Table => print(&summary(&item)),
                format => print(&output::render_value(format, &item)?),
            }
        }
        ClusterCommand::Delete(args) => delete(ctx, &scope()?, args).await,
        ClusterCommand::Events(args) => events(ctx, &scope()?, &args).await,
        ClusterCommand::SetVars(args) => set_vars(ctx, &scope()?, args).await,
        ClusterCommand::Attach(args) => attach(ctx, &scope()?, args).await,
        ClusterCommand::Detach { name } => {
            let scope = scope()?;
            let what = scope.what(&name);
            let answer = ctx
                .client
                .post_action(&scope.path(&name), "detach", &json!({}))
                .await
                .with_context(|| format!("cannot detach {what}"))?;
            note(&format!(
                "{what} detached: it keeps the profile versions and values it runs"
            ));
            ctx.print_one(&answer, COLUMNS)
        }
    }
}

/// `{"<profile>": {"<variable>": value}}` of `--var` (a later flag wins) and `--unset` (null).
fn variables(set: &[VarArg], unset: &[VarArg]) -> Map<String, Value> {
    let mut out = Map::new();
    let entries = set
        .iter()
        .map(|v| (v, v.value.clone().map_or(Value::Null, Value::String)))
        .chain(unset.iter().map(|v| (v, Value::Null)));
    for (v, value) in entries {
        let profile = out
            .entry(v.profile.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = profile {
            m.insert(v.variable.clone(), value);
        }
    }
    out
}

/// A template reference `{name, scope?}`.
fn template_ref(name: &str, scope: Option<TemplateScope>) -> Value {
    let mut t = json!({ "name": name });
    if scope == Some(TemplateScope::Tenant) {
        t["scope"] = json!("tenant");
    }
    t
}

fn profile_ref(p: &ProfileArg) -> Value {
    let mut r = json!({"name": p.name, "version": p.version});
    if p.tenant {
        r["scope"] = json!("tenant");
    }
    r
}

fn pool(p: &PoolArg) -> Value {
    json!({"name": p.name, "controlPlane": p.control_plane, "count": p.count,
           "instanceType": p.instance_type})
}

/// The Cluster document the flags of `create` describe.
fn cluster_of_flags(name: &str, args: &CreateClusterArgs) -> Value {
    let mut spec = Map::new();
    if let Some(t) = &args.template {
        spec.insert("template".into(), template_ref(t, args.template_scope));
    } else {
        spec.insert(
            "profiles".into(),
            args.profiles.iter().map(profile_ref).collect(),
        );
    }
    spec.insert("cloudAccount".into(), json!(args.cloud_account));
    if let Some(z) = &args.time_zone {
        spec.insert("timeZone".into(), json!(z));
    }
    if !args.labels.is_empty() {
        let labels: Map<String, Value> = args
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        spec.insert("labels".into(), Value::Object(labels));
    }
    let vars = variables(&args.vars, &[]);
    if !vars.is_empty() {
        spec.insert("variables".into(), Value::Object(vars));
    }
    spec.insert("nodePools".into(), args.pools.iter().map(pool).collect());
    json!({"kind": "Cluster", "metadata": {"name": name}, "spec": spec})
}

/// The body and scope of `create -f`: the document without `status`, its name checked against
/// `NAME`, its `metadata.project` against `--project`.
fn cluster_of_document(
    mut doc: Value,
    name: Option<&str>,
    explicit: Option<&str>,
    configured: Option<&str>,
) -> anyhow::Result<(Value, Scope)> {
    let Value::Object(map) = &mut doc else {
        anyhow::bail!("a Cluster document is a mapping with kind, metadata and spec");
    };
    match map.get("kind") {
        None | Some(Value::Null) => {}
        Some(Value::String(k)) if k.eq_ignore_ascii_case("cluster") => {}
        Some(other) => anyhow::bail!("kind is {other}, not Cluster"),
    }
    map.insert("kind".into(), json!("Cluster"));
    map.shift_remove("status");
    let own = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let name = match (own.as_deref(), name) {
        (Some(a), Some(b)) if a != b => {
            anyhow::bail!("metadata.name is {a:?} but the command names {b:?}")
        }
        (Some(a), _) | (None, Some(a)) => a.to_owned(),
        (None, None) => anyhow::bail!("metadata.name is missing: name the cluster"),
    };
    let metadata = map.entry("metadata").or_insert_with(|| json!({}));
    let Value::Object(metadata) = metadata else {
        anyhow::bail!("metadata must be a mapping");
    };
    metadata.insert("name".into(), json!(name));
    let own_project = metadata
        .get("project")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    let explicit = explicit.map(str::trim).filter(|p| !p.is_empty());
    if let (Some(a), Some(b)) = (own_project.as_deref(), explicit)
        && a != b
    {
        anyhow::bail!(
            "metadata.project is {a:?} but --project or FLEETPLANE_PROJECT is {b:?}: remove one \
             or make them agree"
        );
    }
    let project = own_project
        .or_else(|| explicit.map(str::to_owned))
        .or_else(|| {
            configured
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
        })
        .ok_or(ClientError::NoProject)?;
    Ok((doc, Scope { project }))
}

async fn create(ctx: &Ctx, args: CreateClusterArgs) -> anyhow::Result<()> {
    let (body, scope) = match &args.file {
        Some(file) => {
            let doc = super::profile::read_document(file)?;
            cluster_of_document(
                doc,
                args.name.as_deref(),
                ctx.global.project.as_deref(),
                ctx.settings.project.as_deref(),
            )
            .with_context(|| format!("{}: invalid Cluster document", file.display()))?
        }
        None => {
            let name = args
                .name
                .as_deref()
                .context("name the cluster (or give -f FILE)")?;
            (cluster_of_flags(name, &args), Scope::of(ctx)?)
        }
    };
    let name = field(&body, "/metadata/name");
    let what = scope.what(&name);
    let path = scope.path(&name);
    let created = match ctx.client.put(&path, &body, &Precondition::Absent).await {
        Ok(w) => w.object,
        Err(e) if e.status() == Some(412) || e.code() == Some("AlreadyExists") => {
            return Err(anyhow::Error::from(e).context(format!("{what} already exists")));
        }
        Err(e) => return Err(anyhow::Error::from(e).context(format!("cannot create {what}"))),
    };
    match created.pointer("/status/run").and_then(Value::as_str) {
        Some(run) => note(&format!("{what} created; deploy run {run} started")),
        None => note(&format!("{what} created")),
    }
    if args.wait.wait {
        let done = wait(ctx, &scope, &name, Goal::Running, &args.wait, Events::new()).await?;
        return ctx.print_one(&done.unwrap_or(created), COLUMNS);
    }
    ctx.print_one(&created, COLUMNS)
}

async fn delete(ctx: &Ctx, scope: &Scope, args: DeleteClusterArgs) -> anyhow::Result<()> {
    let path = scope.path(&args.name);
    let what = scope.what(&args.name);
    let seen = Events::seeded(ctx, &path).await;
    let precondition = args
        .if_match
        .clone()
        .map_or(Precondition::None, Precondition::Match);
    let outcome = ctx
        .client
        .delete(&path, &precondition)
        .await
        .with_context(|| format!("cannot delete {what}"))?;
    match &outcome {
        Deleted::Done => {
            note(&format!("{what} deleted"));
            return Ok(());
        }
        Deleted::Accepted(Some(obj)) => match obj.pointer("/status/run").and_then(Value::as_str) {
            Some(run) => note(&format!("{what} is being deleted by run {run}")),
            None => note(&format!("{what} is being deleted")),
        },
        Deleted::Accepted(None) => note(&format!("{what} is being deleted")),
    }
    if args.wait.wait {
        wait(ctx, scope, &args.name, Goal::Gone, &args.wait, seen).await?;
    }
    Ok(())
}

async fn set_vars(ctx: &Ctx, scope: &Scope, args: SetVarsArgs) -> anyhow::Result<()> {
    let path = scope.path(&args.name);
    let what = scope.what(&args.name);
    let body = json!({"variables": variables(&args.vars, &args.unset)});
    let seen = if args.wait.wait {
        Events::seeded(ctx, &path).await
    } else {
        Events::new()
    };
    let precondition = args
        .if_match
        .clone()
        .map_or(Precondition::None, Precondition::Match);
    let answer = ctx
        .client
        .patch(&format!("{path}/variables"), &body, &precondition)
        .await
        .with_context(|| format!("cannot set the variables of {what}"))?;
    match answer.pointer("/status/run").and_then(Value::as_str) {
        Some(run) => note(&format!(
            "{what}: variables changed; run {run} applies them"
        )),
        None => note(&format!("{what}: variables written")),
    }
    if args.wait.wait {
        let done = wait(ctx, scope, &args.name, Goal::Running, &args.wait, seen).await?;
        return ctx.print_one(&done.unwrap_or(answer), COLUMNS);
    }
    ctx.print_one(&answer, COLUMNS)
}

async fn attach(ctx: &Ctx, scope: &Scope, args: AttachArgs) -> anyhow::Result<()> {
    let what = scope.what(&args.name);
    let mut body = json!({"template": template_ref(&args.template, args.template_scope)});
    if let Some(z) = &args.time_zone {
        body["timeZone"] = json!(z);
    }
    if !args.vars.is_empty() {
        body["variables"] = Value::Object(variables(&args.vars, &[]));
    }
    let answer = ctx
        .client
        .post_action(&scope.path(&args.name), "attach", &body)
        .await
        .with_context(|| format!("cannot attach {what}"))?;
    note(&format!(
        "{what} attached to template {:?}{}",
        args.template,
        if field(&answer, "/status/revision").is_empty() {
            "; it runs other versions until the template's next rollout"
        } else {
            ""
        }
    ));
    ctx.print_one(&answer, COLUMNS)
}

/// A stable text of an event, to tell new events from seen ones (events carry no id).
fn fingerprint(event: &Value) -> String {
    event.to_string()
}

/// The events seen so far.
struct Events {
    seen: HashSet<String>,
}

impl Events {
    /// Nothing seen yet: every event is new.
    fn new() -> Self {
        Self {
            seen: HashSet::new(),
        }
    }

    /// The events the cluster has now count as seen (none when they cannot be read).
    async fn seeded(ctx: &Ctx, path: &str) -> Self {
        let mut e = Self::new();
        if let Ok(items) = fetch_events(ctx, path, EVENTS_KEPT).await {
            e.fresh(&items);
        }
        e
    }

    /// The events of a newest-first page not seen before, oldest first. The page replaces the
    /// memory: an event that left the server's window cannot come back.
    fn fresh(&mut self, newest_first: &[Value]) -> Vec<Value> {
        let mut new: Vec<Value> = newest_first
            .iter()
            .filter(|e| !self.seen.contains(&fingerprint(e)))
            .cloned()
            .collect();
        new.reverse();
        self.seen = newest_first.iter().map(fingerprint).collect();
        new
    }
}

/// `GET …/events?limit=`: newest first.
async fn fetch_events(ctx: &Ctx, path: &str, limit: u32) -> Result<Vec<Value>, ClientError> {
    let answer: Value = ctx
        .client
        .get_as(&format!("{path}/events"), &[("limit", limit.to_string())])
        .await?;
    Ok(answer
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// One event as a progress line.
fn event_line(e: &Value) -> String {
    format!(
        "  {}  {:<7}  {}: {}",
        time(e, "/time"),
        field(e, "/type"),
        field(e, "/reason"),
        field(e, "/message")
    )
    .chars()
    .map(|c| if c.is_control() { ' ' } else { c })
    .collect()
}

/// What `--wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// The run is over and the cluster Running.
    Running,
    /// The cluster is gone (404).
    Gone,
}

/// The end of a wait, decided from one observation (`None`: the cluster is gone).
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Keep waiting.
    Pending,
    /// Done.
    Reached,
    /// The run failed: the `Ready` condition's reason and message.
    Failed(String),
    /// It is gone while it should be Running.
    Vanished,
}

/// Whether the wait is over, from the cluster as read (`None` after a 404).
fn verdict(goal: Goal, cluster: Option<&Value>) -> Verdict {
    let Some(c) = cluster else {
        return match goal {
            Goal::Gone => Verdict::Reached,
            Goal::Running => Verdict::Vanished,
        };
    };
    let phase = field(c, "/status/phase");
    let busy = !field(c, "/status/run").is_empty();
    match (phase.as_str(), busy) {
        ("Failed", false) => Verdict::Failed(ready_message(c)),
        ("Running", false) if goal == Goal::Running => Verdict::Reached,
        _ => Verdict::Pending,
    }
}

/// `REASON: MESSAGE` of the `Ready` condition, or a fallback naming the last run.
fn ready_message(c: &Value) -> String {
    let ready = c
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|list| list.iter().find(|x| field(x, "/type") == "Ready"));
    match ready {
        Some(r) if !field(r, "/message").is_empty() => {
            format!("{}: {}", field(r, "/reason"), field(r, "/message"))
        }
        Some(r) if !field(r, "/reason").is_empty() => field(r, "/reason"),
        _ => "no Ready condition".to_owned(),
    }
}

/// Polls the cluster until `goal`, printing phase changes and new events on standard error.
/// Returns the last object read (`None` once gone).
async fn wait(
    ctx: &Ctx,
    scope: &Scope,
    name: &str,
    goal: Goal,
    args: &WaitArgs,
    mut events: Events,
) -> anyhow::Result<Option<Value>> {
    let path = scope.path(name);
    let what = scope.what(name);
    let limit = args.timeout.map_or(DEFAULT_WAIT, Duration::from_secs);
    let deadline = tokio::time::Instant::now() + limit;
    let mut phase = String::new();
    loop {
        // The cluster first: events read after a final status include the last ones.
        let cluster = match ctx.client.get(&path).await {
            Ok(c) => Some(c),
            Err(e) if e.status() == Some(404) => None,
            Err(e) => return Err(anyhow::Error::from(e).context(format!("cannot get {what}"))),
        };
        if cluster.is_some() {
            match fetch_events(ctx, &path, EVENTS_KEPT).await {
                Ok(page) => {
                    for e in events.fresh(&page) {
                        note(&event_line(&e));
                    }
                }
                Err(e) if e.status() == Some(404) => {}
                Err(e) => {
                    return Err(
                        anyhow::Error::from(e).context(format!("cannot read the events of {what}"))
                    );
                }
            }
        }
        if let Some(c) = &cluster {
            let now = field(c, "/status/phase");
            if now != phase {
                note(&format!("{what}: {now}"));
                phase = now;
            }
        }
        match verdict(goal, cluster.as_ref()) {
            Verdict::Reached => {
                match goal {
                    Goal::Running => note(&format!("{what} is Running")),
                    Goal::Gone => note(&format!("{what} is deleted")),
                }
                return Ok(cluster);
            }
            Verdict::Failed(message) => {
                let run = cluster
                    .as_ref()
                    .map(|c| field(c, "/status/lastRun"))
                    .unwrap_or_default();
                let hint = if run.is_empty() {
                    String::new()
                } else {
                    format!(" (see `fleetplane run journal {run}`)")
                };
                anyhow::bail!("{what} failed: {message}{hint}");
            }
            Verdict::Vanished => anyhow::bail!("{what} is gone"),
            Verdict::Pending => {}
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{what} is still {phase} after waiting {}s; the run goes on",
            limit.as_secs()
        );
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = tokio::signal::ctrl_c() => {
                anyhow::bail!("stopped waiting for {what}; the run goes on");
            }
        }
    }
}

/// Prints events as they arrive while following: table rows (the header once), one compact
/// JSON object per line, or one YAML document per event.
fn print_events(format: OutputFormat, oldest_first: &[Value], first: bool) -> anyhow::Result<()> {
    let text = match format {
        OutputFormat::Table => {
            let t = output::table(oldest_first, EVENT_COLUMNS);
            if first {
                t
            } else {
                t.split_once('\n')
                    .map(|(_, rows)| rows.to_owned())
                    .unwrap_or_default()
            }
        }
        OutputFormat::Json => oldest_first.iter().map(|e| format!("{e}\n")).collect(),
        OutputFormat::Yaml => {
            let mut s = String::new();
            for e in oldest_first {
                s.push_str("---\n");
                s.push_str(&output::render_value(OutputFormat::Yaml, e)?);
            }
            s
        }
    };
    print(&text)
}

async fn events(ctx: &Ctx, scope: &Scope, args: &EventsArgs) -> anyhow::Result<()> {
    let path = scope.path(&args.name);
    let what = scope.what(&args.name);
    let first_limit = args.limit.unwrap_or(EVENTS_KEPT);
    let page = fetch_events(ctx, &path, first_limit)
        .await
        .with_context(|| format!("cannot read the events of {what}"))?;
    if !args.follow {
        return match ctx.global.output {
            OutputFormat::Table => {
                let mut oldest_first = page;
                oldest_first.reverse();
                print(&output::table(&oldest_first, EVENT_COLUMNS))
            }
            format => print(&output::render_value(format, &json!({ "items": page }))?),
        };
    }
    let limit = args
        .follow_timeout
        .map_or(DEFAULT_WAIT, Duration::from_secs);
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = Events::new();
    // The first page may be shorter (`--limit`); later pages are compared with the whole window.
    let shown = seen.fresh(&page);
    print_events(ctx.global.output, &shown, true)?;
    if first_limit < EVENTS_KEPT
        && let Ok(all) = fetch_events(ctx, &path, EVENTS_KEPT).await
    {
        let skipped = seen.fresh(&all);
        // Events older than the first page are not printed; newer ones arrived meanwhile.
        let newest_shown = page.first().map(fingerprint);
        let mut after = newest_shown.is_none();
        let late: Vec<Value> = skipped
            .into_iter()
            .filter(|e| {
                let keep = after;
                if Some(fingerprint(e)) == newest_shown {
                    after = true;
                }
                keep
            })
            .collect();
        print_events(ctx.global.output, &late, false)?;
    }
    loop {
        if tokio::time::Instant::now() >= deadline {
            note(&format!(
                "stopped following {what} after {}s",
                limit.as_secs()
            ));
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        match fetch_events(ctx, &path, EVENTS_KEPT).await {
            Ok(page) => {
                let new = seen.fresh(&page);
                if !new.is_empty() {
                    print_events(ctx.global.output, &new, false)?;
                }
            }
            Err(e) if e.status() == Some(404) => {
                note(&format!("{what} is gone"));
                return Ok(());
            }
            Err(e) => {
                return Err(
                    anyhow::Error::from(e).context(format!("cannot follow the events of {what}"))
                );
            }
        }
    }
}

/// `k=v, k2=v2` of a map.
fn pairs(v: Option<&Value>) -> String {
    match v {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// The readable summary of `get`: fields, then node pools, nodes and conditions as tables.
fn summary(c: &Value) -> String {
    let or = |s: String, none: &str| if s.is_empty() { none.to_owned() } else { s };
    let template = match template_cell(c) {
        t if t.is_empty() => "none (standalone)".to_owned(),
        t => {
            let running = field(c, "/status/revision");
            let desired = field(c, "/status/desiredRevision");
            match (running.is_empty(), desired.is_empty() || desired == running) {
                (true, true) => t,
                (false, true) => format!("{t}, revision {running}"),
                (true, false) => format!("{t}, revision {desired} not applied yet"),
                (false, false) => format!("{t}, revision {running} (revision {desired} pending)"),
            }
        }
    };
    let variables: Vec<String> = c
        .pointer("/spec/variables")
        .and_then(Value::as_object)
        .map(|profiles| {
            profiles
                .iter()
                .flat_map(|(p, vars)| {
                    vars.as_object().into_iter().flatten().map(move |(k, v)| {
                        format!(
                            "{p}.{k}={}",
                            v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                        )
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let run = match (field(c, "/status/run"), field(c, "/status/lastRun")) {
        (r, _) if !r.is_empty() => format!("{r} (in progress)"),
        (_, l) if !l.is_empty() => format!("{l} (last)"),
        _ => "none".to_owned(),
    };
    let rows = [
        ("Name", field(c, "/metadata/name")),
        ("Project", field(c, "/metadata/project")),
        ("Template", template),
        ("Phase", field(c, "/status/phase")),
        ("Health", field(c, "/status/health")),
        ("Profiles", or(profiles_cell(c), "none yet")),
        ("Cloud account", field(c, "/spec/cloudAccount")),
        ("Time zone", or(field(c, "/spec/timeZone"), "UTC")),
        ("Next window", or(window_cell(c), "none")),
        ("Endpoint", field(c, "/status/endpoint")),
        ("Labels", pairs(c.pointer("/spec/labels"))),
        ("Variables", variables.join(", ")),
        ("Run", run),
    ];
    let optional = ["Endpoint", "Labels", "Variables"];
    let mut out = String::new();
    for (label, value) in rows {
        if value.is_empty() && optional.contains(&label) {
            continue;
        }
        let value: String = value
            .chars()
            .map(|ch| if ch.is_control() { ' ' } else { ch })
            .collect();
        out.push_str(format!("{:<15}{value}", format!("{label}:")).trim_end());
        out.push('\n');
    }
    let list = |p: &str| {
        c.pointer(p)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for (pointer, columns) in [
        ("/spec/nodePools", POOL_COLUMNS),
        ("/status/nodes", NODE_COLUMNS),
        ("/status/conditions", CONDITION_COLUMNS),
    ] {
        let items = list(pointer);
        if !items.is_empty() {
            out.push('\n');
            out.push_str(&output::table(&items, columns));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> Value {
        json!({
            "kind": "Cluster",
            "metadata": {"name": "dev", "project": "default"},
            "spec": {"template": {"name": "web", "scope": "tenant"}, "cloudAccount": "sim",
                     "timeZone": "Europe/Berlin", "labels": {"ring": "canary"},
                     "variables": {"aws": {"greeting": "hi\nthere", "token": "********"}},
                     "nodePools": [{"name": "cp", "controlPlane": true, "count": 1,
                                    "instanceType": "m5.large"}]},
            "status": {"phase": "Running", "health": "Healthy", "revision": 1,
                       "desiredRevision": 2,
                       "profiles": [{"name": "aws", "version": "1.0.0"},
                                    {"name": "obs", "version": "1.0.0", "scope": "tenant"}],
                       "nextWindow": {"start": "2026-11-22T00:00:00Z",
                                      "end": "2026-11-22T04:00:00.5Z"},
                       "nodes": [{"name": "dev-cp-0", "pool": "cp", "instanceType": "m5.large",
                                  "osImage": "ubuntu-aws-24.04", "kubernetesVersion": "1.33.4",
                                  "phase": "Running"}],
                       "conditions": [{"type": "Ready", "status": true,
                                       "reason": "RunSucceeded", "message": "",
                                       "lastTransitionTime": "2026-11-21T10:00:00.1Z"}],
                       "lastRun": "r1"}
        })
    }

    #[test]
    fn the_list_shows_template_phase_revision_profiles_and_window() {
        let standalone = json!({"metadata": {"name": "solo"},
            "spec": {"profiles": [{"name": "aws", "version": "1.0.0"}]},
            "status": {"phase": "Provisioning", "health": "Unknown", "desiredRevision": null}});
        let t = output::table(&[running(), standalone], COLUMNS);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines,
            [
                "NAME   TEMPLATE     PHASE          HEALTH    REVISION        PROFILES                      NEXT WINDOW",
                "dev    tenant:web   Running        Healthy   1 (desired 2)   aws@1.0.0, tenant:obs@1.0.0   2026-11-22T00:00:00Z to 2026-11-22T04:00:00Z",
                "solo                Provisioning   Unknown",
            ]
        );
        assert_eq!(
            revision_cell(&json!({"status": {"desiredRevision": 3}})),
            "- (desired 3)"
        );
        assert_eq!(
            revision_cell(&json!({"status": {"revision": 3, "desiredRevision": 3}})),
            "3"
        );
    }

    #[test]
    fn the_summary_shows_fields_pools_nodes_and_conditions() {
        let s = summary(&running());
        for part in [
            "Name:          dev\n",
            "Template:      tenant:web, revision 1 (revision 2 pending)\n",
            "Profiles:      aws@1.0.0, tenant:obs@1.0.0\n",
            "Time zone:     Europe/Berlin\n",
            "Variables:     aws.greeting=hi there, aws.token=********\n",
            "Run:           r1 (last)\n",
            "POOL   CONTROL PLANE   COUNT   INSTANCE TYPE\ncp     yes",
            "dev-cp-0   cp     m5.large        ubuntu-aws-24.04   1.33.4       Running",
            "Ready       true     RunSucceeded   2026-11-21T10:00:00Z",
        ] {
            assert!(s.contains(part), "{part:?} not in:\n{s}");
        }
        let bare = summary(&json!({"metadata": {"name": "x"}, "spec": {}, "status": {}}));
        assert!(
            bare.contains("Template:      none (standalone)\n"),
            "{bare}"
        );
        assert!(bare.contains("Time zone:     UTC\n"), "{bare}");
        assert!(!bare.contains("NODE"), "{bare}");
    }

    #[test]
    fn waits_end_on_the_phase_once_the_run_is_over() {
        let c = |phase: &str, run: Option<&str>| {
            json!({"status": {"phase": phase, "run": run, "conditions": [
                {"type": "Ready", "status": false, "reason": "ProviderError",
                 "message": "machines did not come up"}]}})
        };
        let cases = [
            (
                Goal::Running,
                Some(c("Provisioning", Some("r"))),
                Verdict::Pending,
            ),
            (
                Goal::Running,
                Some(c("Running", Some("r"))),
                Verdict::Pending,
            ),
            (Goal::Running, Some(c("Updating", None)), Verdict::Pending),
            (Goal::Running, Some(c("Running", None)), Verdict::Reached),
            (
                Goal::Running,
                Some(c("Failed", None)),
                Verdict::Failed("ProviderError: machines did not come up".into()),
            ),
            (
                Goal::Running,
                Some(c("Failed", Some("r2"))),
                Verdict::Pending,
            ),
            (Goal::Running, None, Verdict::Vanished),
            (Goal::Gone, Some(c("Deleting", Some("r"))), Verdict::Pending),
            (Goal::Gone, Some(c("Running", None)), Verdict::Pending),
            (
                Goal::Gone,
                Some(c("Failed", None)),
                Verdict::Failed("ProviderError: machines did not come up".into()),
            ),
            (Goal::Gone, None, Verdict::Reached),
        ];
        for (goal, cluster, want) in cases {
            assert_eq!(
                verdict(goal, cluster.as_ref()),
                want,
                "{goal:?} {cluster:?}"
            );
        }
        assert_eq!(ready_message(&json!({"status": {}})), "no Ready condition");
    }

    #[test]
    fn only_unseen_events_are_new_and_come_oldest_first() {
        let e = |reason: &str, t: &str| {
            json!({"time": t, "type": "Normal", "reason": reason,
                                               "message": "m"})
        };
        let mut seen = Events::new();
        let page1 = vec![e("B", "2"), e("A", "1")];
        assert_eq!(seen.fresh(&page1), [e("A", "1"), e("B", "2")]);
        assert!(seen.fresh(&page1).is_empty());
        let page2 = vec![e("D", "4"), e("C", "3"), e("B", "2"), e("A", "1")];
        assert_eq!(seen.fresh(&page2), [e("C", "3"), e("D", "4")]);
        // The oldest fell out of the server's window: nothing comes back.
        assert!(seen.fresh(&[e("D", "4"), e("C", "3")]).is_empty());
        assert!(
            event_line(
                &json!({"time": "t", "type": "Warning", "reason": "RunFailed",
                                   "message": "a\nb"})
            )
            .ends_with("Warning  RunFailed: a b")
        );
    }

    fn var(p: &str, v: &str, value: Option<&str>) -> VarArg {
        VarArg {
            profile: p.into(),
            variable: v.into(),
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn variables_nest_by_profile_and_unset_is_null() {
        let got = variables(
            &[
                var("aws", "greeting", Some("hi")),
                var("aws", "greeting", Some("hello")),
                var("obs", "level", Some("")),
            ],
            &[var("aws", "replicas", None)],
        );
        assert_eq!(
            Value::Object(got),
            json!({"aws": {"greeting": "hello", "replicas": null}, "obs": {"level": ""}})
        );
    }

    #[test]
    fn documents_take_their_name_and_project_or_the_commands() {
        let doc = json!({"kind": "cluster", "metadata": {"name": "dev", "project": "shop"},
                         "spec": {"cloudAccount": "sim"}, "status": {"phase": "Running"}});
        let (body, scope) = cluster_of_document(doc.clone(), None, None, Some("default")).unwrap();
        assert_eq!(scope.project, "shop");
        assert_eq!(body["kind"], "Cluster");
        assert!(body.get("status").is_none());
        let (_, scope) = cluster_of_document(doc.clone(), Some("dev"), Some("shop"), None).unwrap();
        assert_eq!(scope.path("dev"), "/v1/projects/shop/clusters/dev");
        let bare = json!({"spec": {}});
        let (body, scope) =
            cluster_of_document(bare.clone(), Some("x"), None, Some("default")).unwrap();
        assert_eq!(body["metadata"]["name"], "x");
        assert_eq!(scope.project, "default");
        for (doc, name, explicit, configured, part) in [
            (
                doc.clone(),
                Some("prod"),
                None,
                None,
                "metadata.name is \"dev\"",
            ),
            (
                doc.clone(),
                None,
                Some("web"),
                None,
                "metadata.project is \"shop\"",
            ),
            (
                bare.clone(),
                None,
                None,
                Some("p"),
                "metadata.name is missing",
            ),
            (bare.clone(), Some("x"), None, None, "no project"),
            (
                json!({"kind": "Pod"}),
                Some("x"),
                None,
                Some("p"),
                "not Cluster",
            ),
            (json!([1]), Some("x"), None, Some("p"), "mapping"),
        ] {
            let e = cluster_of_document(doc, name, explicit, configured)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
            assert!(e.contains(part), "{part:?} not in {e:?}");
        }
    }

    #[test]
    fn flags_build_a_template_or_standalone_document() {
        use crate::args::cluster::CreateClusterArgs;
        let args = |template: Option<&str>, profiles: Vec<ProfileArg>| CreateClusterArgs {
            name: Some("dev".into()),
            file: None,
            template: template.map(str::to_owned),
            template_scope: template.map(|_| TemplateScope::Tenant),
            profiles,
            vars: vec![var("aws", "greeting", Some("hi"))],
            time_zone: Some("UTC".into()),
            pools: vec![PoolArg {
                name: "cp".into(),
                count: 1,
                instance_type: "m5.large".into(),
                control_plane: true,
            }],
            labels: vec![("ring".into(), "canary".into())],
            cloud_account: "simulator".into(),
            wait: WaitArgs {
                wait: false,
                timeout: None,
            },
        };
        assert_eq!(
            cluster_of_flags("dev", &args(Some("web"), Vec::new())),
            json!({"kind": "Cluster", "metadata": {"name": "dev"}, "spec": {
                "template": {"name": "web", "scope": "tenant"}, "cloudAccount": "simulator",
                "timeZone": "UTC", "labels": {"ring": "canary"},
                "variables": {"aws": {"greeting": "hi"}},
                "nodePools": [{"name": "cp", "controlPlane": true, "count": 1,
                               "instanceType": "m5.large"}]}})
        );
        let solo = cluster_of_flags(
            "dev",
            &args(
                None,
                vec![ProfileArg {
                    name: "aws".into(),
                    version: "1.0.0".into(),
                    tenant: true,
                }],
            ),
        );
        assert_eq!(
            solo["spec"]["profiles"],
            json!([{"name": "aws", "version": "1.0.0", "scope": "tenant"}])
        );
        assert!(solo["spec"].get("template").is_none());
    }
}
