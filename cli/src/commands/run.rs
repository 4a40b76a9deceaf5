//! `fleetplane run …`: workflow runs (`/v1[/projects/{p}]/runs…`).
//!
//! Scope: the project named by `--project` or `FLEETPLANE_PROJECT`, else tenant-wide, where
//! `list` shows every run the caller may see and `show`, `journal` and the signals find a run
//! whatever its project. The config file's project is not used (a note says so), as for
//! policies: a stored default must not hide runs from `list` or start runs in a project.

use super::{Ctx, note, print};
use crate::args::OutputFormat;
use crate::args::run::{JournalArgs, RunCommand, RunListArgs, SignalArgs, StartArgs};
use crate::output::{self, Column, field, time};
use anyhow::Context as _;
use fleetplane_client::encode_segment;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Table columns of listed runs.
const COLUMNS: &[Column] = &[
    Column::new("ID", |v| field(v, "/id")),
    Column::new("PROJECT", |v| field(v, "/project")),
    Column::new("WORKFLOW", |v| field(v, "/workflow")),
    Column::new("STATUS", |v| field(v, "/status")),
    Column::new("WAITING ON", |v| field(v, "/waitingOn")),
    Column::new("STARTED", |v| time(v, "/startedAt")),
    Column::new("ENDED", |v| time(v, "/endedAt")),
];

/// Table columns of `list --paused`: what on-call needs at a glance.
const PAUSED_COLUMNS: &[Column] = &[
    Column::new("ID", |v| field(v, "/id")),
    Column::new("PROJECT", |v| field(v, "/project")),
    Column::new("WORKFLOW", |v| field(v, "/workflow")),
    Column::new("TEMPLATE", |v| field(v, "/template")),
    Column::new("REASON", |v| field(v, "/paused/reason")),
    Column::new("FAILED", |v| field(v, "/counts/failed")),
    Column::new("PAUSED SINCE", |v| time(v, "/paused/since")),
];

/// Table columns of one run.
const DETAIL_COLUMNS: &[Column] = &[
    Column::new("ID", |v| field(v, "/id")),
    Column::new("WORKFLOW", |v| field(v, "/workflow")),
    Column::new("STATUS", |v| field(v, "/status")),
    Column::new("WAITING ON", |v| field(v, "/waitingOn")),
    Column::new("STARTED", |v| time(v, "/startedAt")),
    Column::new("ENDED", |v| time(v, "/endedAt")),
    Column::new("STUCK", |v| {
        v.get("stuck")
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
            .to_string()
    }),
    Column::new("ERROR", error_cell),
];

/// Table columns of a start.
const START_COLUMNS: &[Column] = &[
    Column::new("ID", |v| field(v, "/id")),
    Column::new("WORKFLOW", |v| field(v, "/workflow")),
    Column::new("STATUS", |v| field(v, "/status")),
];

/// Table columns of an accepted signal.
const SIGNAL_COLUMNS: &[Column] = &[
    Column::new("ID", |v| field(v, "/id")),
    Column::new("SIGNAL", |v| signal_name(v.pointer("/accepted/signal"))),
    Column::new("BY", |v| field(v, "/accepted/by")),
    Column::new("REASON", |v| field(v, "/accepted/reason")),
];

/// Table columns of journal entries (`{seq, at, record: {type, step?, …}}`).
const JOURNAL_COLUMNS: &[Column] = &[
    Column::new("SEQ", |v| field(v, "/seq")),
    Column::new("TIME", |v| time(v, "/at")),
    Column::new("TYPE", |v| field(v, "/record/type")),
    Column::new("STEP", |v| field(v, "/record/step")),
    Column::new("DETAIL", journal_detail),
];

/// The statuses in which a run has ended.
const TERMINAL: [&str; 3] = ["Succeeded", "Failed", "Cancelled"];

/// How long `journal --follow` follows when not told.
const DEFAULT_FOLLOW: Duration = Duration::from_secs(3600);

/// `kind: message (at step)` of a run's error.
fn error_cell(v: &Value) -> String {
    match v.get("error") {
        Some(e @ Value::Object(_)) => {
            let mut s = format!("{}: {}", field(e, "/kind"), field(e, "/message"));
            let step = field(e, "/step");
            if !step.is_empty() {
                s.push_str(&format!(" (at {step})"));
            }
            s
        }
        _ => String::new(),
    }
}

/// A signal as the server serializes it: `{"signal": "approve", "name": "go"}` shows as
/// `approve go`, `{"signal": "resume", "retryFailed": true}` as `resume (retry failed)`.
fn signal_name(signal: Option<&Value>) -> String {
    let Some(s) = signal else {
        return String::new();
    };
    let mut text = field(s, "/signal");
    if let Some(name) = s.get("name").and_then(Value::as_str) {
        text.push(' ');
        text.push_str(name);
    }
    if s.get("retryFailed").and_then(Value::as_bool) == Some(true) {
        text.push_str(" (retry failed)");
    }
    text
}

/// The fields of a journal record other than its type and step, as compact JSON.
fn journal_detail(v: &Value) -> String {
    match v.get("record") {
        Some(Value::Object(m)) => {
            let rest: Map<String, Value> = m
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "type" | "step"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if rest.is_empty() {
                String::new()
            } else {
                Value::Object(rest).to_string()
            }
        }
        _ => String::new(),
    }
}

/// The project a run command works in: `--project` or `FLEETPLANE_PROJECT` only.
fn scope_project(explicit: Option<&str>) -> Option<&str> {
    explicit.map(str::trim).filter(|p| !p.is_empty())
}

/// The collection path of the scope.
fn collection(project: Option<&str>) -> String {
    match project {
        Some(p) => format!("/v1/projects/{}/runs", encode_segment(p)),
        None => "/v1/runs".to_owned(),
    }
}

/// An input value: JSON when it parses as JSON, else the text itself.
fn input_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// The inputs of `start`: the file's object, then each `--input` over it.
///
/// # Errors
/// The file's document is not an object.
fn build_inputs(file: Option<Value>, flags: &[(String, String)]) -> anyhow::Result<Value> {
    let mut inputs = match file {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => anyhow::bail!("the inputs file must hold an object of NAME: VALUE"),
    };
    for (k, v) in flags {
        inputs.insert(k.clone(), input_value(v));
    }
    Ok(Value::Object(inputs))
}

/// Where a command works.
struct Scope<'a> {
    project: Option<&'a str>,
}

impl<'a> Scope<'a> {
    fn of(ctx: &'a Ctx) -> Self {
        let project = scope_project(ctx.global.project.as_deref());
        if project.is_none()
            && let Some(p) = ctx.settings.project.as_deref()
        {
            note(&format!(
                "note: tenant scope; the config file's project {p:?} is used for runs only with \
                 --project or FLEETPLANE_PROJECT"
            ));
        }
        Self { project }
    }

    fn collection(&self) -> String {
        collection(self.project)
    }

    fn path(&self, id: &str) -> String {
        format!("{}/{}", self.collection(), encode_segment(id))
    }

    fn what(&self, id: &str) -> String {
        match self.project {
            Some(p) => format!("run {id:?} in project {p:?}"),
            None => format!("run {id:?}"),
        }
    }
}

/// Runs `fleetplane run …`.
///
/// # Errors
/// The inputs file cannot be read, the API call fails (with the server's code and field
/// paths), following times out, or output cannot be written.
pub async fn run(ctx: &Ctx, cmd: RunCommand) -> anyhow::Result<()> {
    let scope = Scope::of(ctx);
    match cmd {
        RunCommand::Start(args) => start(ctx, &scope, args).await,
        RunCommand::List(args) => list(ctx, &scope, &args).await,
        RunCommand::Show { id } => {
            ctx.show(&scope.path(&id), &scope.what(&id), DETAIL_COLUMNS)
                .await
        }
        RunCommand::Journal(args) => journal(ctx, &scope, &args).await,
        RunCommand::Pause(s) => signal(ctx, &scope, "pause", &s, json!({})).await,
        RunCommand::Cancel(s) => signal(ctx, &scope, "cancel", &s, json!({})).await,
        RunCommand::Redrive(s) => signal(ctx, &scope, "redrive", &s, json!({})).await,
        RunCommand::Resume(a) => {
            let extra = json!({"retryFailed": a.retry_failed});
            signal(ctx, &scope, "resume", &a.signal, extra).await
        }
        RunCommand::Approve(a) => {
            signal(ctx, &scope, "approve", &a.signal, json!({"name": a.name})).await
        }
        RunCommand::Reject(a) => {
            signal(ctx, &scope, "reject", &a.signal, json!({"name": a.name})).await
        }
    }
}

async fn start(ctx: &Ctx, scope: &Scope<'_>, args: StartArgs) -> anyhow::Result<()> {
    let file = args
        .inputs_file
        .as_deref()
        .map(super::profile::read_document)
        .transpose()?;
    let inputs = build_inputs(file, &args.inputs)?;
    let body = json!({"workflow": args.workflow.to_string(), "inputs": inputs});
    let started = ctx
        .client
        .post(&scope.collection(), &body)
        .await
        .with_context(|| format!("cannot start a run of {}", args.workflow))?;
    note(&format!(
        "run {} of {} started",
        field(&started, "/id"),
        args.workflow
    ));
    ctx.print_one(&started, START_COLUMNS)
}

/// The query of one page of `list`.
fn list_query(args: &RunListArgs, page: u32, cont: Option<&str>) -> Vec<(&'static str, String)> {
    let mut q = vec![("limit", page.to_string())];
    let status = if args.paused {
        Some("Paused")
    } else {
        args.status.map(|s| s.as_str())
    };
    if let Some(s) = status {
        q.push(("status", s.to_owned()));
    }
    if let Some(d) = &args.definition {
        // The server filters by name; the version is checked here.
        let name = d.rsplit_once('@').map_or(d.as_str(), |(n, _)| n);
        q.push(("definition", name.to_owned()));
    }
    if let Some(c) = cont {
        q.push(("continue", c.to_owned()));
    }
    q
}

/// Whether a listed run matches `--definition` (`NAME` or `NAME@VERSION`).
fn matches_definition(run: &Value, definition: Option<&str>) -> bool {
    match definition {
        Some(d) if d.contains('@') => run.get("workflow").and_then(Value::as_str) == Some(d),
        _ => true,
    }
}

async fn list(ctx: &Ctx, scope: &Scope<'_>, args: &RunListArgs) -> anyhow::Result<()> {
    let limit = args.limit.map(|l| l as usize);
    let page = args.limit.map_or(500, |l| l.clamp(1, 500));
    let mut items = Vec::new();
    let mut cont: Option<String> = None;
    loop {
        let answer: Value = ctx
            .client
            .get_as(
                &scope.collection(),
                &list_query(args, page, cont.as_deref()),
            )
            .await
            .context("cannot list runs")?;
        items.extend(
            answer
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|r| matches_definition(r, args.definition.as_deref()))
                .cloned(),
        );
        let next = answer
            .get("continue")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match next {
            Some(t) if limit.is_none_or(|l| items.len() < l) && Some(&t) != cont.as_ref() => {
                cont = Some(t);
            }
            _ => break,
        }
    }
    if let Some(l) = limit {
        items.truncate(l);
    }
    if args.paused {
        explain_paused(ctx, scope, &mut items).await?;
        return ctx.print_list(&items, PAUSED_COLUMNS);
    }
    ctx.print_list(&items, COLUMNS)
}

/// Adds to each paused run why it is paused (`paused`), its fan-out counts (`counts`, with
/// `failed`) and, for a rollout, its template (`template`: the run's subject fact when the
/// server shows it, else the template whose status names the run, or its parent, as its
/// rollout; `tenant:` for a tenant template).
async fn explain_paused(ctx: &Ctx, scope: &Scope<'_>, items: &mut [Value]) -> anyhow::Result<()> {
    let projects: Vec<String> = items
        .iter()
        .map(|i| field(i, "/project"))
        .filter(|p| !p.is_empty())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut rollouts: Option<BTreeMap<String, String>> = None;
    for item in items.iter_mut() {
        let id = field(item, "/id");
        let detail = ctx
            .client
            .get(&scope.path(&id))
            .await
            .with_context(|| format!("cannot get {}", scope.what(&id)))?;
        for k in ["paused", "counts"] {
            item[k] = detail.get(k).cloned().unwrap_or(Value::Null);
        }
        let mut template = field(&detail, "/subject/facts/template");
        // A child (one cluster's update) belongs to its parent's template.
        let owner = match field(item, "/parent") {
            p if p.is_empty() => id.clone(),
            p => p,
        };
        if template.is_empty() {
            if rollouts.is_none() {
                rollouts = Some(rollout_templates(ctx, &projects).await);
            }
            template = rollouts
                .as_ref()
                .and_then(|m| m.get(&owner).cloned())
                .unwrap_or_default();
        }
        item["template"] = json!(template);
    }
    Ok(())
}

/// Run id → template name of every template (tenant-wide, and in `projects`) with a current
/// rollout. Templates the caller may not list are left out.
async fn rollout_templates(ctx: &Ctx, projects: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut paths = vec![("tenant:", "/v1/cluster-templates".to_owned())];
    paths.extend(projects.iter().map(|p| {
        (
            "",
            format!("/v1/projects/{}/cluster-templates", encode_segment(p)),
        )
    }));
    for (prefix, path) in paths {
        let Ok(list) = ctx
            .client
            .list_all(&path, &fleetplane_client::ListOptions::default())
            .await
        else {
            continue;
        };
        for t in &list {
            let run = field(t, "/status/rollout/run");
            if !run.is_empty() {
                out.insert(run, format!("{prefix}{}", field(t, "/metadata/name")));
            }
        }
    }
    out
}

/// Fetches every journal entry after `after`, page by page.
async fn journal_after(ctx: &Ctx, path: &str, mut after: u64) -> anyhow::Result<Vec<Value>> {
    let mut entries = Vec::new();
    loop {
        let page: Value = ctx
            .client
            .get_as(
                path,
                &[("after", after.to_string()), ("limit", "500".to_owned())],
            )
            .await
            .context("cannot read the journal")?;
        entries.extend(
            page.get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .cloned(),
        );
        match page.get("next").and_then(Value::as_u64) {
            Some(n) if n > after => after = n,
            _ => return Ok(entries),
        }
    }
}

/// Prints journal entries as they arrive while following: table rows (the header once), one
/// compact JSON object per line, or one YAML document per entry.
fn print_follow(format: OutputFormat, entries: &[Value], first: bool) -> anyhow::Result<()> {
    let text = match format {
        OutputFormat::Table => {
            let t = output::table(entries, JOURNAL_COLUMNS);
            if first {
                t
            } else {
                t.split_once('\n')
                    .map(|(_, rows)| rows.to_owned())
                    .unwrap_or_default()
            }
        }
        OutputFormat::Json => entries.iter().map(|e| format!("{e}\n")).collect::<String>(),
        OutputFormat::Yaml => {
            let mut s = String::new();
            for e in entries {
                s.push_str("---\n");
                s.push_str(&output::render_value(OutputFormat::Yaml, e)?);
            }
            s
        }
    };
    print(&text)
}

async fn journal(ctx: &Ctx, scope: &Scope<'_>, args: &JournalArgs) -> anyhow::Result<()> {
    let path = format!("{}/journal", scope.path(&args.id));
    let what = scope.what(&args.id);
    if !args.follow {
        let entries = journal_after(ctx, &path, 0)
            .await
            .with_context(|| format!("cannot show the journal of {what}"))?;
        return ctx.print_list(&entries, JOURNAL_COLUMNS);
    }
    let limit = args
        .follow_timeout
        .map_or(DEFAULT_FOLLOW, Duration::from_secs);
    let deadline = tokio::time::Instant::now() + limit;
    let mut after = 0;
    let mut first = true;
    loop {
        // The status first: entries read after a terminal status include the last one.
        let run = ctx
            .client
            .get(&scope.path(&args.id))
            .await
            .with_context(|| format!("cannot get {what}"))?;
        let entries = journal_after(ctx, &path, after)
            .await
            .with_context(|| format!("cannot follow the journal of {what}"))?;
        if first || !entries.is_empty() {
            print_follow(ctx.global.output, &entries, first)?;
            first = false;
        }
        if let Some(last) = entries
            .last()
            .and_then(|e| e.get("seq"))
            .and_then(Value::as_u64)
        {
            after = last;
        }
        let status = field(&run, "/status");
        if TERMINAL.contains(&status.as_str()) {
            note(&format!("{what} ended: {status}"));
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{what} is still {status} after following for {}s",
            limit.as_secs()
        );
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

async fn signal(
    ctx: &Ctx,
    scope: &Scope<'_>,
    verb: &str,
    args: &SignalArgs,
    mut body: Value,
) -> anyhow::Result<()> {
    if let Some(r) = &args.reason {
        body["reason"] = json!(r);
    }
    let what = scope.what(&args.id);
    let answer = ctx
        .client
        .post_action(&scope.path(&args.id), verb, &body)
        .await
        .with_context(|| format!("cannot {verb} {what}"))?;
    note(&format!("{verb} sent to {what}; the run applies it next"));
    ctx.print_one(&answer, SIGNAL_COLUMNS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::run::RunStatus;

    #[test]
    fn inputs_are_json_or_text_and_flags_win() {
        let file = json!({"note": "from file", "count": 1});
        let flags = [
            ("count".to_owned(), "3".to_owned()),
            ("flag".to_owned(), "true".to_owned()),
            ("text".to_owned(), "hello world".to_owned()),
            ("quoted".to_owned(), "\"3\"".to_owned()),
            ("obj".to_owned(), "{\"a\":1}".to_owned()),
        ];
        assert_eq!(
            build_inputs(Some(file), &flags).unwrap(),
            json!({"note": "from file", "count": 3, "flag": true, "text": "hello world",
                   "quoted": "3", "obj": {"a": 1}})
        );
        assert_eq!(build_inputs(None, &[]).unwrap(), json!({}));
        assert!(build_inputs(Some(json!([1])), &[]).is_err());
    }

    #[test]
    fn only_an_explicit_project_scopes_a_run() {
        let cases = [
            (None, "/v1/runs"),
            (Some(" "), "/v1/runs"),
            (Some("web"), "/v1/projects/web/runs"),
            (Some("a/b"), "/v1/projects/a%2Fb/runs"),
        ];
        for (explicit, want) in cases {
            assert_eq!(collection(scope_project(explicit)), want, "{explicit:?}");
        }
    }

    fn list_args(paused: bool, status: Option<RunStatus>, definition: Option<&str>) -> RunListArgs {
        RunListArgs {
            paused,
            status,
            definition: definition.map(str::to_owned),
            limit: None,
        }
    }

    #[test]
    fn list_queries_filter_on_the_server() {
        let q = list_query(&list_args(true, None, Some("demo@1.0.0")), 500, Some("3.x"));
        assert_eq!(
            q,
            [
                ("limit", "500".to_owned()),
                ("status", "Paused".to_owned()),
                ("definition", "demo".to_owned()),
                ("continue", "3.x".to_owned()),
            ]
        );
        let q = list_query(
            &list_args(false, Some(RunStatus::Succeeded), None),
            10,
            None,
        );
        assert_eq!(
            q,
            [
                ("limit", "10".to_owned()),
                ("status", "Succeeded".to_owned())
            ]
        );
        let run = json!({"workflow": "demo@1.0.0"});
        assert!(matches_definition(&run, Some("demo@1.0.0")));
        assert!(matches_definition(&run, Some("demo")));
        assert!(!matches_definition(&run, Some("demo@2.0.0")));
        assert!(matches_definition(&run, None));
    }

    #[test]
    fn cells_show_signals_errors_and_journal_details() {
        let cases = [
            (json!({"signal": "pause"}), "pause"),
            (json!({"signal": "approve", "name": "go"}), "approve go"),
            (json!({"signal": "resume", "retryFailed": false}), "resume"),
            (
                json!({"signal": "resume", "retryFailed": true}),
                "resume (retry failed)",
            ),
        ];
        for (signal, want) in cases {
            assert_eq!(signal_name(Some(&signal)), want, "{signal}");
        }
        assert_eq!(signal_name(None), "");
        let run = json!({"error": {"kind": "rejected", "message": "no", "step": "spec.steps[2]"}});
        assert_eq!(error_cell(&run), "rejected: no (at spec.steps[2])");
        assert_eq!(error_cell(&json!({"error": null})), "");
        let e = json!({"seq": 2, "at": "2026-01-01T00:00:00.5Z",
                       "record": {"type": "stepStarted", "step": "spec.steps[0]"}});
        let e2 = json!({"seq": 3, "at": "2026-01-01T00:00:01Z",
                        "record": {"type": "timerSet", "due": "x"}});
        let t = output::table(&[e, e2], JOURNAL_COLUMNS);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["SEQ", "TIME", "TYPE", "STEP", "DETAIL"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["2", "2026-01-01T00:00:00Z", "stepStarted", "spec.steps[0]"]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["3", "2026-01-01T00:00:01Z", "timerSet", "{\"due\":\"x\"}"]
        );
    }

    fn cli(args: &[&str]) -> Result<crate::args::Cli, clap::Error> {
        use clap::Parser as _;
        crate::args::Cli::try_parse_from(std::iter::once("fleetplane").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_checked() {
        for good in [
            &[
                "run",
                "start",
                "demo@1.0.0",
                "--input",
                "note=hi",
                "--input",
                "n=3",
            ][..],
            &["run", "list", "--paused", "-o", "json"],
            &["run", "list", "--status", "succeeded"],
            &["run", "journal", "x", "--follow", "--follow-timeout", "5"],
            &["run", "resume", "x", "--retry-failed", "--reason", "ok"],
            &["run", "approve", "x", "--name", "go"],
            &["workflow", "get", "demo@1.0.0", "-o", "yaml"],
            &["workflow", "submit", "-f", "w.yaml"],
        ] {
            assert!(cli(good).is_ok(), "{good:?}: {:?}", cli(good).err());
        }
        for bad in [
            &["run", "start", "demo"][..],
            &["run", "start", "demo@1", "--input", "novalue"],
            &["run", "list", "--paused", "--status", "Failed"],
            &["run", "list", "--status", "Sleeping"],
            &["run", "approve", "x"],
            &["run", "journal", "x", "--follow-timeout", "5"],
            &["workflow", "get", "demo"],
            &["workflow", "submit"],
        ] {
            assert_eq!(cli(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }
}
