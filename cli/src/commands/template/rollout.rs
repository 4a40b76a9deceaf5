//! `fleetplane template plan|upgrade-now|pause|resume|rollback|rollouts|status`: the rollouts of
//! a template's revisions (DESIGN §5).
//!
//! `upgrade-now --wait` fetches the plan once (which wave takes each cluster, which run the
//! target already), then every second reads the template's status and the rollout's history
//! entry (its counts and per-cluster timeline) and prints one progress line per wave on standard
//! error: pending / in progress / applied / failed.

use super::Scope;
use crate::args::OutputFormat;
use crate::args::template::{RolloutActionArgs, UpgradeNowArgs};
use crate::commands::{Ctx, note, print};
use crate::output::{self, Column, field, time};
use anyhow::Context as _;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// How long `--wait` goes on when not told.
const DEFAULT_WAIT: Duration = Duration::from_secs(3600);

/// The pause between two polls of `--wait`.
const POLL: Duration = Duration::from_secs(1);

/// Table columns of the plan.
pub const PLAN_COLUMNS: &[Column] = &[
    Column::new("CLUSTER", |v| field(v, "/cluster")),
    Column::new("CURRENT", |v| field(v, "/currentRevision")),
    Column::new("TARGET", |v| field(v, "/targetRevision")),
    Column::new("WAVE", |v| field(v, "/wave")),
    Column::new("START", start_cell),
    Column::new("PENDING", |v| list_cell(v, "/pendingVariables")),
    Column::new("REPAVE", |v| match v.get("replaceMachines") {
        Some(Value::Bool(true)) => "yes".to_owned(),
        Some(Value::Bool(false)) => "no".to_owned(),
        _ => "?".to_owned(),
    }),
];

/// Table columns of the history.
pub const HISTORY_COLUMNS: &[Column] = &[
    Column::new("RUN", |v| field(v, "/run")),
    Column::new("REVISION", |v| field(v, "/revision")),
    Column::new("REASON", |v| field(v, "/reason")),
    Column::new("UPGRADE-NOW", |v| {
        if v.get("upgradeNow").and_then(Value::as_bool) == Some(true) {
            "yes".to_owned()
        } else {
            "no".to_owned()
        }
    }),
    Column::new("STATUS", |v| match field(v, "/status") {
        s if s.is_empty() => field(v, "/state"),
        s => s,
    }),
    Column::new("STARTED", |v| time(v, "/startedAt")),
    Column::new("ENDED", |v| time(v, "/endedAt")),
    Column::new("COUNTS", |v| counts_cell(v.get("counts"))),
];

/// Table columns of an accepted action.
const ACTION_COLUMNS: &[Column] = &[
    Column::new("RUN", |v| field(v, "/run")),
    Column::new("REVISION", |v| field(v, "/revision")),
    Column::new("CLUSTERS", |v| field(v, "/clusters")),
    Column::new("SCHEDULED", |v| field(v, "/scheduled")),
];

/// When a cluster's update starts: `now`, a time, `-` at the target, else `(reason)`.
fn start_cell(v: &Value) -> String {
    if field(v, "/state") == "Applied" {
        return "-".to_owned();
    }
    let now = |k: &str| v.get(k).and_then(Value::as_bool) == Some(true);
    let start = time(v, "/expectedStart");
    if now("upgradeNow") || now("windowOpen") {
        "now".to_owned()
    } else if !start.is_empty() {
        start
    } else {
        format!("({})", field(v, "/reason"))
    }
}

/// A list of strings as `a, b`.
fn list_cell(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// A rollout's counts as `2/3 applied, 1 failed, …` (only the non-zero extras).
fn counts_cell(c: Option<&Value>) -> String {
    let Some(c) = c.filter(|c| c.is_object()) else {
        return String::new();
    };
    let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut s = format!("{}/{} applied", n("succeeded"), n("total"));
    for (k, label) in [
        ("running", "in progress"),
        ("pending", "pending"),
        ("failed", "failed"),
        ("skipped", "skipped"),
    ] {
        if n(k) > 0 {
            let _ = write!(s, ", {} {label}", n(k));
        }
    }
    s
}

/// Every page of the plan, as one document `{template, revision, generatedAt, items}`.
async fn fetch_plan(ctx: &Ctx, scope: &Scope<'_>, name: &str) -> anyhow::Result<Value> {
    let path = format!("{}/plan", scope.path(name));
    let mut items = Vec::new();
    let mut cont: Option<String> = None;
    loop {
        let mut q = vec![("limit", "500".to_owned())];
        if let Some(c) = &cont {
            q.push(("continue", c.clone()));
        }
        let mut page: Value = ctx
            .client
            .get_as(&path, &q)
            .await
            .with_context(|| format!("cannot get the plan of {}", scope.what(name)))?;
        if let Some(Value::Array(list)) = page.get_mut("items").map(Value::take) {
            items.extend(list);
        }
        match page.get("continue").and_then(Value::as_str) {
            Some(t) if Some(t) != cont.as_deref() => cont = Some(t.to_owned()),
            _ => {
                page["items"] = Value::Array(items);
                if let Some(m) = page.as_object_mut() {
                    m.remove("continue");
                }
                return Ok(page);
            }
        }
    }
}

/// `template plan NAME`.
pub async fn plan(ctx: &Ctx, scope: &Scope<'_>, name: &str) -> anyhow::Result<()> {
    let doc = fetch_plan(ctx, scope, name).await?;
    match ctx.global.output {
        OutputFormat::Table => {
            let items = doc
                .get("items")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            note(&format!(
                "{}: revision {}",
                scope.what(name),
                field(&doc, "/revision")
            ));
            for i in items
                .iter()
                .filter(|i| i.get("error").is_some_and(Value::is_object))
            {
                note(&format!(
                    "cluster {}: cannot render the target: {}",
                    field(i, "/cluster"),
                    field(i, "/error/message")
                ));
            }
            print(&output::table(items, PLAN_COLUMNS))
        }
        format => print(&output::render_value(format, &doc)?),
    }
}

/// `template pause|resume|rollback NAME [--reason R]`.
pub async fn action(
    ctx: &Ctx,
    scope: &Scope<'_>,
    verb: &str,
    args: &RolloutActionArgs,
) -> anyhow::Result<()> {
    let what = scope.what(&args.name);
    let mut body = json!({});
    if let Some(r) = &args.reason {
        body["reason"] = json!(r);
    }
    let answer = ctx
        .client
        .post_action(&scope.path(&args.name), verb, &body)
        .await
        .with_context(|| format!("cannot {verb} the rollout of {what}"))?;
    let message = match verb {
        "pause" => "pause sent to its rollout; clusters updating finish, no new one starts",
        "resume" => "resume sent to its rollout; failed clusters are retried, then it continues",
        _ if answer.get("rolledBack") == Some(&Value::Bool(false)) => {
            "nothing to roll back: the template moved on"
        }
        _ => "rolled back to the previous revision",
    };
    note(&format!("{what}: {message}"));
    match ctx.global.output {
        OutputFormat::Table => print(&format!(
            "{}\n",
            answer
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!(
                    "{k}: {}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                ))
                .collect::<Vec<_>>()
                .join("\n")
        )),
        format => print(&output::render_value(format, &answer)?),
    }
}

/// `template rollouts NAME`.
pub async fn history(ctx: &Ctx, scope: &Scope<'_>, name: &str) -> anyhow::Result<()> {
    let h = ctx
        .client
        .get(&format!("{}/rollouts", scope.path(name)))
        .await
        .with_context(|| format!("cannot get the rollouts of {}", scope.what(name)))?;
    match ctx.global.output {
        OutputFormat::Table => {
            let items = h
                .get("items")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            print(&output::table(items, HISTORY_COLUMNS))
        }
        format => print(&output::render_value(format, &h)?),
    }
}

/// The first page of `path`'s rollouts (newest first), with the per-cluster timeline of the
/// entry of run `run` (read page by page from `…/rollouts/{run}/clusters`) as its
/// `clusterTimeline`.
async fn rollouts_with_timeline(ctx: &Ctx, path: &str, run: Option<&str>) -> anyhow::Result<Value> {
    let mut history = ctx
        .client
        .get(&format!("{path}/rollouts"))
        .await
        .context("cannot get the rollouts")?;
    let Some(run) = run else {
        return Ok(history);
    };
    let Some(entry) = history
        .get_mut("items")
        .and_then(Value::as_array_mut)
        .and_then(|items| items.iter_mut().find(|i| field(i, "/run") == run))
    else {
        return Ok(history);
    };
    let mut timeline = Vec::new();
    let mut url = format!("{path}/rollouts/{run}/clusters?limit=500");
    loop {
        let page = ctx
            .client
            .get(&url)
            .await
            .with_context(|| format!("cannot get the clusters of rollout {run}"))?;
        timeline.extend(
            page.get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .cloned(),
        );
        match page.get("continue").and_then(Value::as_str) {
            Some(c) => url = format!("{path}/rollouts/{run}/clusters?limit=500&continue={c}"),
            None => break,
        }
    }
    entry["clusterTimeline"] = Value::Array(timeline);
    Ok(history)
}

/// The history entry of run `run`, if listed.
fn entry_of<'a>(history: &'a Value, run: &str) -> Option<&'a Value> {
    history
        .get("items")
        .and_then(Value::as_array)?
        .iter()
        .find(|i| field(i, "/run") == run)
}

/// `kind: message` of a timeline entry's error (a run error object or text).
fn error_text(e: Option<&Value>) -> String {
    match e {
        Some(Value::Object(_)) => {
            let e = e.unwrap_or(&Value::Null);
            match (field(e, "/kind"), field(e, "/message")) {
                (k, m) if k.is_empty() => m,
                (k, m) => format!("{k}: {m}"),
            }
        }
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// The failed clusters of a paused or failed rollout with their last errors: the timeline's
/// failed children, and those the status's `paused` explanation names.
fn failed_clusters(status_rollout: Option<&Value>, entry: Option<&Value>) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for t in entry
        .and_then(|e| e.get("clusterTimeline"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| matches!(field(t, "/status").as_str(), "Failed" | "Cancelled"))
    {
        out.insert(field(t, "/cluster"), error_text(t.get("error")));
    }
    for f in status_rollout
        .and_then(|r| r.pointer("/paused/failed"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let slot = out.entry(field(f, "/cluster")).or_default();
        if slot.is_empty() {
            *slot = error_text(f.get("error"));
        }
    }
    out.into_iter().collect()
}

/// What `resume` would do.
fn on_resume(status_rollout: Option<&Value>, failed: usize) -> String {
    match status_rollout.map(|r| field(r, "/paused/onResume")) {
        Some(s) if !s.is_empty() => s,
        _ if failed == 0 => "continues the rollout where it stopped".to_owned(),
        _ => format!(
            "retries {failed} failed cluster{}, then continues",
            if failed == 1 { "" } else { "s" }
        ),
    }
}

/// The document `template status` prints (JSON/YAML), from the template and its history.
fn status_doc(template: &Value, history: &Value) -> Value {
    let st = template.get("status").cloned().unwrap_or(Value::Null);
    let rollout = st.get("rollout").filter(|r| r.is_object());
    let entry = rollout.and_then(|r| entry_of(history, &field(r, "/run")));
    let state = field(&st, "/state");
    let mut doc = json!({
        "template": field(template, "/metadata/name"),
        "state": state,
        "revision": st.get("revision"),
        "clusters": st.get("clusters"),
        "variables": st.get("variables"),
        "nextWindow": st.get("nextWindow"),
        "rollout": rollout,
    });
    if let Some(e) = entry {
        doc["counts"] = e.get("counts").cloned().unwrap_or(Value::Null);
    }
    if matches!(state.as_str(), "Paused" | "Failed") {
        let failed = failed_clusters(rollout, entry);
        doc["failed"] = failed
            .iter()
            .map(|(c, e)| json!({"cluster": c, "error": e}))
            .collect();
        if state == "Paused" {
            doc["pausedBy"] = json!(rollout.map(|r| field(r, "/paused/by")));
            doc["pausedReason"] = json!(rollout.map(|r| field(r, "/paused/reason")));
            doc["onResume"] = json!(on_resume(rollout, failed.len()));
        }
    }
    doc
}

/// The people's view of [`status_doc`].
fn status_text(doc: &Value) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(s, "{:<18} {v}", format!("{k}:"));
    };
    line("Template", field(doc, "/template"));
    line("State", field(doc, "/state"));
    line("Revision", field(doc, "/revision"));
    line(
        "Clusters",
        format!(
            "{}/{} up to date",
            field(doc, "/clusters/upToDate"),
            field(doc, "/clusters/total")
        ),
    );
    let pending = field(doc, "/clusters/pendingVariables");
    line(
        "Pending variables",
        match pending.as_str() {
            "" | "0" => "none".to_owned(),
            n => format!(
                "{n} cluster(s), {} assignment(s) Pending (see `fleetplane template variables`)",
                field(doc, "/variables/unresolved")
            ),
        },
    );
    if let Some(w) = doc.get("nextWindow").filter(|w| w.is_object()) {
        line(
            "Next window",
            format!("{} to {}", time(w, "/start"), time(w, "/end")),
        );
    }
    match doc.get("rollout").filter(|r| r.is_object()) {
        Some(r) => {
            let mut text = format!(
                "run {}, revision {}, {}",
                field(r, "/run"),
                field(r, "/revision"),
                field(r, "/status")
            );
            if r.get("upgradeNow").and_then(Value::as_bool) == Some(true) {
                text.push_str(", Upgrade now");
            }
            line("Rollout", text);
            if doc.get("counts").is_some_and(Value::is_object) {
                line("Progress", counts_cell(doc.get("counts")));
            }
            let queued = field(r, "/queued");
            if !queued.is_empty() {
                line("Queued", format!("run {queued}"));
            }
        }
        None => line("Rollout", "none".to_owned()),
    }
    if field(doc, "/state") == "Paused" {
        let by = field(doc, "/pausedBy");
        let reason = field(doc, "/pausedReason");
        if !by.is_empty() || !reason.is_empty() {
            line("Paused", format!("by {by}: {reason}"));
        }
    }
    let failed = doc
        .get("failed")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if !failed.is_empty() {
        line("Failed clusters", failed.len().to_string());
        for f in failed {
            let _ = writeln!(s, "  {}: {}", field(f, "/cluster"), field(f, "/error"));
        }
    }
    let resume = field(doc, "/onResume");
    if !resume.is_empty() {
        let _ = writeln!(s, "{:<18} {resume}", "On resume:");
    }
    s
}

/// `template status NAME`.
pub async fn status(ctx: &Ctx, scope: &Scope<'_>, name: &str) -> anyhow::Result<()> {
    let what = scope.what(name);
    let template = ctx
        .client
        .get(&scope.path(name))
        .await
        .with_context(|| format!("cannot get {what}"))?;
    let current = template
        .pointer("/status/rollout/run")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let history = rollouts_with_timeline(ctx, &scope.path(name), current.as_deref())
        .await
        .with_context(|| format!("cannot get the rollouts of {what}"))?;
    let doc = status_doc(&template, &history);
    match ctx.global.output {
        OutputFormat::Table => print(&status_text(&doc)),
        format => print(&output::render_value(format, &doc)?),
    }
}

/// Where one cluster is in an Upgrade now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Pending,
    InProgress,
    Applied,
    Failed,
}

/// Per wave (in strategy order, `rest` last), the clusters watched and where each is.
#[derive(Debug, Default, PartialEq, Eq)]
struct WaveProgress {
    name: String,
    pending: usize,
    in_progress: usize,
    applied: usize,
    failed: usize,
}

/// What the wait watches: each selected cluster with its wave, its runtime key and whether it
/// ran the target already when the plan was read.
struct Watched {
    cluster: String,
    key: String,
    wave: String,
    applied_before: bool,
}

/// The clusters an Upgrade now moves, from the plan (all, or those of `--cluster`).
fn watched(plan: &Value, project: Option<&str>, only: &[String]) -> Vec<Watched> {
    plan.get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|i| only.is_empty() || only.contains(&field(i, "/cluster")))
        .map(|i| {
            let cluster = field(i, "/cluster");
            Watched {
                key: match project {
                    Some(p) => format!("{p}/{cluster}"),
                    None => cluster.clone(),
                },
                cluster,
                wave: field(i, "/wave"),
                applied_before: field(i, "/state") == "Applied",
            }
        })
        .collect()
}

/// Where each watched cluster is, from the run's timeline.
fn progress_of(watched: &[Watched], entry: Option<&Value>) -> Vec<(usize, Stage)> {
    let timeline: BTreeMap<String, String> = entry
        .and_then(|e| e.get("clusterTimeline"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| (field(t, "/cluster"), field(t, "/status")))
        .collect();
    watched
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let p = match timeline.get(&w.key).map(String::as_str) {
                Some("Succeeded") => Stage::Applied,
                Some("Failed" | "Cancelled") => Stage::Failed,
                Some(_) => Stage::InProgress,
                None if w.applied_before => Stage::Applied,
                None => Stage::Pending,
            };
            (i, p)
        })
        .collect()
}

/// Counts per wave, in the order `waves` gives (waves without watched clusters left out).
fn per_wave(
    waves: &[String],
    watched: &[Watched],
    progress: &[(usize, Stage)],
) -> Vec<WaveProgress> {
    let mut out: Vec<WaveProgress> = waves
        .iter()
        .map(|w| WaveProgress {
            name: w.clone(),
            ..WaveProgress::default()
        })
        .collect();
    for (i, p) in progress {
        let name = &watched[*i].wave;
        let idx = match out.iter().position(|w| &w.name == name) {
            Some(x) => x,
            None => {
                out.push(WaveProgress {
                    name: name.clone(),
                    ..WaveProgress::default()
                });
                out.len() - 1
            }
        };
        let w = &mut out[idx];
        match p {
            Stage::Pending => w.pending += 1,
            Stage::InProgress => w.in_progress += 1,
            Stage::Applied => w.applied += 1,
            Stage::Failed => w.failed += 1,
        }
    }
    out.retain(|w| w.pending + w.in_progress + w.applied + w.failed > 0);
    out
}

/// One progress line: a small bar and the counts of each wave.
fn progress_line(waves: &[WaveProgress]) -> String {
    waves
        .iter()
        .map(|w| {
            let total = w.pending + w.in_progress + w.applied + w.failed;
            let width = 10;
            let done = (w.applied + w.failed) * width / total.max(1);
            format!(
                "{} [{}{}] {} pending, {} in progress, {} applied, {} failed",
                w.name,
                "#".repeat(done),
                "-".repeat(width - done),
                w.pending,
                w.in_progress,
                w.applied,
                w.failed
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// `template upgrade-now NAME [--cluster c …] [--wait]`.
pub async fn upgrade_now(
    ctx: &Ctx,
    scope: &Scope<'_>,
    args: &UpgradeNowArgs,
) -> anyhow::Result<()> {
    let what = scope.what(&args.name);
    let body = if args.clusters.is_empty() {
        json!({})
    } else {
        json!({"clusters": args.clusters})
    };
    // The plan before the upgrade: which clusters run the target already, and their waves.
    let plan = if args.wait {
        Some(fetch_plan(ctx, scope, &args.name).await?)
    } else {
        None
    };
    let answer = ctx
        .client
        .post_action(&scope.path(&args.name), "upgrade", &body)
        .await
        .with_context(|| format!("cannot upgrade {what} now"))?;
    note(&format!(
        "{what}: Upgrade now of revision {} for {} cluster(s): run {} {}",
        field(&answer, "/revision"),
        field(&answer, "/clusters"),
        field(&answer, "/run"),
        field(&answer, "/scheduled")
    ));
    ctx.print_one(&answer, ACTION_COLUMNS)?;
    let Some(plan) = plan else {
        return Ok(());
    };
    wait(ctx, scope, args, &plan, &field(&answer, "/run")).await
}

/// The end of a wait, decided from one observation.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Waiting,
    Done,
    /// Paused or failed (the state), with the failed clusters.
    Stopped(String, Vec<(String, String)>),
    /// The run ended with clusters left behind.
    LeftBehind(String, Vec<String>),
}

fn verdict(
    template: &Value,
    entry: Option<&Value>,
    watched: &[Watched],
    progress: &[(usize, Stage)],
    subset: bool,
) -> Verdict {
    let state = field(template, "/status/state");
    let rollout = template
        .pointer("/status/rollout")
        .filter(|r| r.is_object());
    let all_applied = progress.iter().all(|(_, p)| *p == Stage::Applied);
    if state == "Applied" || (subset && all_applied) {
        return Verdict::Done;
    }
    if matches!(state.as_str(), "Paused" | "Failed") {
        return Verdict::Stopped(state, failed_clusters(rollout, entry));
    }
    let ended = entry.is_some_and(|e| field(e, "/state") == "Ended");
    if ended {
        let left = progress
            .iter()
            .filter(|(_, p)| *p != Stage::Applied)
            .map(|(i, _)| watched[*i].cluster.clone())
            .collect();
        let outcome = entry.map(|e| field(e, "/outcome")).unwrap_or_default();
        return Verdict::LeftBehind(outcome, left);
    }
    Verdict::Waiting
}

async fn wait(
    ctx: &Ctx,
    scope: &Scope<'_>,
    args: &UpgradeNowArgs,
    plan: &Value,
    run: &str,
) -> anyhow::Result<()> {
    let what = scope.what(&args.name);
    let path = scope.path(&args.name);
    let limit = args.timeout.map_or(DEFAULT_WAIT, Duration::from_secs);
    let deadline = tokio::time::Instant::now() + limit;
    let watched = watched(plan, scope.project, &args.clusters);
    let mut last_line = String::new();
    loop {
        let template = ctx
            .client
            .get(&path)
            .await
            .with_context(|| format!("cannot get {what}"))?;
        let history = rollouts_with_timeline(ctx, &path, Some(run))
            .await
            .with_context(|| format!("cannot get the rollouts of {what}"))?;
        let entry = entry_of(&history, run);
        let mut waves: Vec<String> = template
            .pointer("/spec/rollout/waves")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|w| field(w, "/name"))
            .collect();
        waves.push("rest".to_owned());
        let progress = progress_of(&watched, entry);
        let mut line = progress_line(&per_wave(&waves, &watched, &progress));
        match entry.map(|e| field(e, "/state")).as_deref() {
            Some("Queued") => line = format!("queued behind the current rollout; {line}"),
            Some(_) => {
                if let Some(c) = entry.and_then(|e| e.get("counts")) {
                    let _ = write!(line, " (run: {})", counts_cell(Some(c)));
                }
            }
            None => {}
        }
        if line != last_line {
            note(&line);
            last_line = line;
        }
        match verdict(
            &template,
            entry,
            &watched,
            &progress,
            !args.clusters.is_empty(),
        ) {
            Verdict::Done => {
                note(&format!(
                    "{what}: the clusters run revision {}",
                    field(&template, "/status/revision")
                ));
                return Ok(());
            }
            Verdict::Stopped(state, failed) => {
                let mut msg = format!("the rollout of {what} is {state}");
                if !failed.is_empty() {
                    let _ = write!(msg, "; {} cluster(s) failed:", failed.len());
                    for (c, e) in &failed {
                        let _ = write!(msg, "\n  {c}: {e}");
                    }
                }
                let _ = write!(msg, "\n(see `fleetplane template status {}`)", args.name);
                anyhow::bail!(msg);
            }
            Verdict::LeftBehind(outcome, left) => {
                anyhow::bail!(
                    "the rollout of {what} ended ({outcome}) with {} cluster(s) not on the \
                     revision: {} (see `fleetplane template plan {}`)",
                    left.len(),
                    left.join(", "),
                    args.name
                );
            }
            Verdict::Waiting => {}
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{what} is still {} after waiting {}s; the rollout goes on",
            field(&template, "/status/state"),
            limit.as_secs()
        );
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = tokio::signal::ctrl_c() => {
                anyhow::bail!("stopped waiting for {what}; the rollout goes on");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_table_shows_start_pending_and_repave() {
        let rows = [
            json!({"cluster": "dev", "currentRevision": 1, "targetRevision": 2, "wave": "canary",
                   "expectedStart": "2026-11-22T00:00:00.5Z", "windowOpen": false,
                   "upgradeNow": false, "pendingVariables": [], "replaceMachines": true,
                   "state": "Pending", "reason": "waiting for window"}),
            json!({"cluster": "prod", "currentRevision": 1, "targetRevision": 2, "wave": "rest",
                   "expectedStart": null, "pendingVariables": ["aws.team", "aws.owner"],
                   "replaceMachines": false, "state": "Pending", "reason": "pending variables"}),
            json!({"cluster": "stage", "currentRevision": 2, "targetRevision": 2, "wave": "rest",
                   "pendingVariables": [], "replaceMachines": null, "state": "Applied"}),
            json!({"cluster": "qa", "currentRevision": 1, "targetRevision": 2, "wave": "rest",
                   "expectedStart": "2026-11-20T10:00:00Z", "upgradeNow": true,
                   "pendingVariables": [], "replaceMachines": false, "state": "Pending"}),
        ];
        let t = output::table(&rows, PLAN_COLUMNS);
        let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(
            lines[0],
            [
                "CLUSTER", "CURRENT", "TARGET", "WAVE", "START", "PENDING", "REPAVE"
            ]
        );
        assert_eq!(
            lines[1],
            ["dev", "1", "2", "canary", "2026-11-22T00:00:00Z", "yes"]
        );
        assert_eq!(
            lines[2],
            [
                "prod",
                "1",
                "2",
                "rest",
                "(pending",
                "variables)",
                "aws.team,",
                "aws.owner",
                "no"
            ]
        );
        assert_eq!(lines[3], ["stage", "2", "2", "rest", "-", "?"]);
        assert_eq!(lines[4], ["qa", "1", "2", "rest", "now", "no"]);
    }

    #[test]
    fn history_counts_show_the_non_zero_extras() {
        assert_eq!(
            counts_cell(Some(
                &json!({"total": 3, "succeeded": 2, "failed": 1, "running": 0,
                                     "pending": 0, "skipped": 0})
            )),
            "2/3 applied, 1 failed"
        );
        assert_eq!(counts_cell(None), "");
        let row = json!({"run": "r1", "revision": 2, "reason": "upgrade-now", "upgradeNow": true,
                         "state": "Queued", "requestedAt": "2026-01-01T00:00:00Z"});
        let t = output::table(&[row], HISTORY_COLUMNS);
        assert_eq!(
            t.lines()
                .nth(1)
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["r1", "2", "upgrade-now", "yes", "Queued"]
        );
    }

    fn watch(cluster: &str, wave: &str, applied_before: bool) -> Watched {
        Watched {
            cluster: cluster.into(),
            key: format!("default/{cluster}"),
            wave: wave.into(),
            applied_before,
        }
    }

    #[test]
    fn progress_is_counted_per_wave_in_strategy_order() {
        let w = vec![
            watch("dev", "canary", false),
            watch("prod", "rest", false),
            watch("stage", "rest", true),
            watch("qa", "rest", false),
            watch("edge", "rest", false),
        ];
        let entry = json!({"clusterTimeline": [
            {"cluster": "default/dev", "status": "Succeeded"},
            {"cluster": "default/prod", "status": "Running"},
            {"cluster": "default/qa", "status": "Failed", "error": {"kind": "permanent", "message": "boom"}},
        ]});
        let p = progress_of(&w, Some(&entry));
        let waves = per_wave(&["canary".into(), "empty".into(), "rest".into()], &w, &p);
        assert_eq!(
            waves,
            [
                WaveProgress {
                    name: "canary".into(),
                    applied: 1,
                    ..WaveProgress::default()
                },
                WaveProgress {
                    name: "rest".into(),
                    pending: 1,
                    in_progress: 1,
                    applied: 1,
                    failed: 1,
                },
            ]
        );
        assert_eq!(
            progress_line(&waves),
            "canary [##########] 0 pending, 0 in progress, 1 applied, 0 failed | \
             rest [#####-----] 1 pending, 1 in progress, 1 applied, 1 failed"
        );
    }

    #[test]
    fn waits_end_on_applied_on_a_stop_or_when_the_run_leaves_clusters_behind() {
        let w = vec![watch("dev", "rest", false), watch("prod", "rest", false)];
        let t = |state: &str| json!({"status": {"state": state, "rollout": {"run": "r"}}});
        let done = [(0, Stage::Applied), (1, Stage::Applied)];
        let half = vec![(0, Stage::Applied), (1, Stage::Pending)];
        assert_eq!(
            verdict(&t("Applied"), None, &w, &half, false),
            Verdict::Done
        );
        assert_eq!(
            verdict(&t("PartiallyApplied"), None, &w, &done[..1], true),
            Verdict::Done
        );
        assert_eq!(
            verdict(&t("InProgress"), None, &w, &half, false),
            Verdict::Waiting
        );
        let entry = json!({"state": "Current", "clusterTimeline": [
            {"cluster": "default/prod", "status": "Failed", "error": {"kind": "permanent", "message": "no capacity"}}]});
        assert_eq!(
            verdict(&t("Paused"), Some(&entry), &w, &half, false),
            Verdict::Stopped(
                "Paused".into(),
                vec![("default/prod".into(), "permanent: no capacity".into())]
            )
        );
        let ended = json!({"state": "Ended", "outcome": "Succeeded"});
        assert_eq!(
            verdict(&t("PartiallyApplied"), Some(&ended), &w, &half, false),
            Verdict::LeftBehind("Succeeded".into(), vec!["prod".into()])
        );
    }

    #[test]
    fn a_paused_status_says_who_why_what_failed_and_what_resume_does() {
        let template = json!({"metadata": {"name": "web"}, "status": {
            "state": "Paused", "revision": 2,
            "clusters": {"total": 3, "upToDate": 1, "pendingVariables": 0},
            "variables": {"resolved": 9, "unresolved": 0},
            "rollout": {"run": "r", "revision": 2, "status": "Paused", "upgradeNow": true,
                        "paused": {"by": "engine", "reason": "failure budget exhausted",
                                   "failed": [{"cluster": "default/prod", "error": "child failed"}]}}}});
        let history = json!({"items": [{"run": "r", "state": "Current",
            "counts": {"total": 3, "succeeded": 1, "failed": 1, "skipped": 0, "running": 0, "pending": 1},
            "clusterTimeline": [{"cluster": "default/prod", "status": "Failed",
                                 "error": {"kind": "permanent", "message": "no capacity"}}]}]});
        let doc = status_doc(&template, &history);
        assert_eq!(
            doc["failed"],
            json!([{"cluster": "default/prod", "error": "permanent: no capacity"}])
        );
        let text = status_text(&doc);
        for part in [
            "State:             Paused\n",
            "Clusters:          1/3 up to date\n",
            "Pending variables: none\n",
            "Rollout:           run r, revision 2, Paused, Upgrade now\n",
            "Progress:          1/3 applied, 1 pending, 1 failed\n",
            "Paused:            by engine: failure budget exhausted\n",
            "Failed clusters:   1\n  default/prod: permanent: no capacity\n",
            "On resume:         retries 1 failed cluster, then continues\n",
        ] {
            assert!(text.contains(part), "{part:?} not in\n{text}");
        }
    }
}
