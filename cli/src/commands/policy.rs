//! `fleetplane policy …`: maintenance policies at tenant or project scope.
//!
//! Scope: a policy command works in the project named by `--project` or `FLEETPLANE_PROJECT`,
//! and at tenant scope otherwise. The config file's default project is not used: policies are
//! mostly shared tenant-wide (project objects may link tenant policies), and a stored default
//! must not silently move a new policy into a project or hide the tenant's from `list`.

use super::{Ctx, metadata, named, note};
use crate::args::policy::{CreatePolicyArgs, PolicyCommand, WindowsArgs};
use crate::output::{self, Column, field, time};
use anyhow::Context as _;
use fleetplane_client::{
    ListPage, MaintenancePolicy, MaintenancePolicySpec, PolicyPreset, WindowsQuery, encode_segment,
};
use serde_json::Value;

/// Table columns of maintenance policies.
pub const COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/metadata/name")),
    Column::new("SCHEDULES", |v| schedules(v.pointer("/spec/schedules"))),
    Column::new("EXCLUSIONS", |v| {
        count(v.pointer("/spec/exclusions")).to_string()
    }),
    Column::new("NEXT WINDOW (UTC)", next_window),
];

/// Table columns of presets.
const PRESET_COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/name")),
    Column::new("SCHEDULES", |v| schedules(v.pointer("/spec/schedules"))),
    Column::new("DESCRIPTION", |v| field(v, "/description")),
];

/// Table columns of windows.
const WINDOW_COLUMNS: &[Column] = &[
    Column::new("LOCAL START", |v| local(v, "/localStart")),
    Column::new("LOCAL END", |v| local(v, "/localEnd")),
    Column::new("START (UTC)", |v| time(v, "/start")),
    Column::new("END (UTC)", |v| time(v, "/end")),
];

const PRESETS_PATH: &str = "/v1/maintenance-policies:presets";

/// Schedules as `0 0 * * 0 (4h); 0 12 * * 1,3 (2h)` (`;` because cron lists use commas).
fn schedules(list: Option<&Value>) -> String {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|s| format!("{} ({}h)", field(s, "/cron"), field(s, "/durationHours")))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

fn count(list: Option<&Value>) -> usize {
    list.and_then(Value::as_array).map_or(0, Vec::len)
}

/// The first of the next windows the server computed (schedules evaluated in UTC).
fn next_window(v: &Value) -> String {
    match v.pointer("/status/nextWindows/0") {
        Some(w) => format!("{} to {}", time(w, "/start"), time(w, "/end")),
        None => String::new(),
    }
}

/// A zoned time without its `[Zone/Name]` suffix (the zone was asked for; the offset stays).
fn local(v: &Value, pointer: &str) -> String {
    let t = field(v, pointer);
    match t.find('[') {
        Some(i) => t[..i].to_owned(),
        None => t,
    }
}

/// The project a policy command works in: `--project` or `FLEETPLANE_PROJECT` only.
fn scope_project(explicit: Option<&str>) -> Option<&str> {
    explicit.map(str::trim).filter(|p| !p.is_empty())
}

/// The collection path of the scope.
fn collection(project: Option<&str>) -> String {
    match project {
        Some(p) => format!("/v1/projects/{}/maintenance-policies", encode_segment(p)),
        None => "/v1/maintenance-policies".to_owned(),
    }
}

/// Where a command works: paths and names for messages.
struct Scope<'a> {
    project: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// The scope of a command; says so when the config file's project is left out.
    fn of(ctx: &'a Ctx) -> Self {
        let project = scope_project(ctx.global.project.as_deref());
        if project.is_none()
            && let Some(p) = ctx.settings.project.as_deref()
        {
            note(&format!(
                "note: tenant scope; the config file's project {p:?} is used for policies only \
                 with --project or FLEETPLANE_PROJECT"
            ));
        }
        Self { project }
    }

    fn collection(&self) -> String {
        collection(self.project)
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{}", self.collection(), encode_segment(name))
    }

    fn what(&self, name: &str) -> String {
        let what = named("maintenance policy", name);
        match self.project {
            Some(p) => format!("{what} in project {p:?}"),
            None => what,
        }
    }
}

/// Runs `fleetplane policy …`.
///
/// # Errors
/// The API call fails (with the server's code and field paths), a preset does not exist, or
/// output cannot be written.
pub async fn run(ctx: &Ctx, cmd: PolicyCommand) -> anyhow::Result<()> {
    match cmd {
        PolicyCommand::List(args) => {
            let scope = Scope::of(ctx);
            let items = ctx
                .list(&scope.collection(), &args)
                .await
                .context("cannot list maintenance policies")?;
            ctx.print_list(&items, COLUMNS)
        }
        PolicyCommand::Get { name } => {
            let scope = Scope::of(ctx);
            ctx.show(&scope.path(&name), &scope.what(&name), COLUMNS)
                .await
        }
        PolicyCommand::Create(args) => create(ctx, args).await,
        PolicyCommand::Delete(args) => {
            let scope = Scope::of(ctx);
            ctx.delete(&scope.path(&args.name), &args, &scope.what(&args.name))
                .await
        }
        PolicyCommand::Windows(args) => windows(ctx, args).await,
        PolicyCommand::Presets => {
            let items = presets(ctx).await?;
            let items = items
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()?;
            ctx.print_list(&items, PRESET_COLUMNS)
        }
    }
}

async fn presets(ctx: &Ctx) -> anyhow::Result<Vec<PolicyPreset>> {
    let page: ListPage<PolicyPreset> = ctx
        .client
        .get_as(PRESETS_PATH, &[])
        .await
        .context("cannot list the maintenance policy presets")?;
    Ok(page.items)
}

/// The spec of `create`: the preset's, if any, then the schedules and exclusions given.
///
/// # Errors
/// There is no preset of that name.
fn build_spec(
    preset: Option<(&str, &[PolicyPreset])>,
    args: &CreatePolicyArgs,
) -> anyhow::Result<MaintenancePolicySpec> {
    let mut spec = match preset {
        Some((name, presets)) => match presets.iter().find(|p| p.name == name) {
            Some(p) => p.spec.clone(),
            None => {
                let known: Vec<&str> = presets.iter().map(|p| p.name.as_str()).collect();
                anyhow::bail!(
                    "there is no preset {name:?}; the presets are: {}",
                    known.join(", ")
                );
            }
        },
        None => MaintenancePolicySpec::default(),
    };
    spec.schedules.extend(args.schedules.iter().cloned());
    spec.exclusions.extend(args.exclusions.iter().cloned());
    Ok(spec)
}

async fn create(ctx: &Ctx, args: CreatePolicyArgs) -> anyhow::Result<()> {
    let scope = Scope::of(ctx);
    let spec = match &args.preset {
        Some(name) => {
            let all = presets(ctx).await?;
            build_spec(Some((name, &all)), &args)?
        }
        None => build_spec(None, &args)?,
    };
    if spec.schedules.is_empty() {
        note("note: the policy has no schedule, so it opens no maintenance windows");
    }
    let policy = MaintenancePolicy {
        kind: None,
        metadata: metadata(&args.name, &args.metadata),
        spec,
        status: None,
    };
    let body = serde_json::to_value(&policy)?;
    ctx.create(
        &scope.path(&args.name),
        &body,
        &scope.what(&args.name),
        COLUMNS,
    )
    .await
}

async fn windows(ctx: &Ctx, args: WindowsArgs) -> anyhow::Result<()> {
    let scope = Scope::of(ctx);
    let query = WindowsQuery {
        zone: args.zone,
        count: args.count,
        after: args.after,
    };
    let doc: Value = ctx
        .client
        .get_as(
            &format!("{}/windows", scope.path(&args.name)),
            &query.to_query(),
        )
        .await
        .with_context(|| format!("cannot compute the windows of {}", scope.what(&args.name)))?;
    match ctx.global.output {
        crate::args::OutputFormat::Table => {
            let items = doc
                .get("windows")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            super::print(&output::table(items, WINDOW_COLUMNS))
        }
        format => super::print(&output::render_value(format, &doc)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::MetadataArgs;
    use fleetplane_client::ScheduleSpec;
    use serde_json::json;

    fn policy() -> Value {
        json!({
            "metadata": {"name": "weekly"},
            "spec": {"schedules": [
                        {"name": "w", "cron": "0 0 * * 0", "durationHours": 4},
                        {"name": "m", "cron": "0 12 * * 1,3", "durationHours": 2}],
                     "exclusions": [{"name": "x", "start": "a", "end": "b"}]},
            "status": {"nextWindows": [
                {"start": "2026-11-22T00:00:00Z", "end": "2026-11-22T04:00:00Z"},
                {"start": "2026-11-23T12:00:00Z", "end": "2026-11-23T14:00:00Z"}]}
        })
    }

    #[test]
    fn the_table_shows_schedules_and_the_next_window() {
        let t = output::table(&[policy(), json!({"metadata": {"name": "empty"}})], COLUMNS);
        assert_eq!(
            t,
            "NAME     SCHEDULES                           EXCLUSIONS   NEXT WINDOW (UTC)\n\
             weekly   0 0 * * 0 (4h); 0 12 * * 1,3 (2h)   1            \
             2026-11-22T00:00:00Z to 2026-11-22T04:00:00Z\n\
             empty                                        0\n"
        );
    }

    #[test]
    fn windows_show_local_times_without_the_zone_suffix() {
        let w = json!({"start": "2026-11-21T23:00:00Z", "end": "2026-11-22T03:00:00Z",
                       "localStart": "2026-11-22T00:00:00+01:00[Europe/Berlin]",
                       "localEnd": "2026-11-22T04:00:00+01:00[Europe/Berlin]"});
        let t = output::table(&[w], WINDOW_COLUMNS);
        assert_eq!(
            t.lines().nth(1),
            Some(
                "2026-11-22T00:00:00+01:00   2026-11-22T04:00:00+01:00   \
                 2026-11-21T23:00:00Z   2026-11-22T03:00:00Z"
            )
        );
    }

    #[test]
    fn only_an_explicit_project_scopes_a_policy() {
        let cases = [
            (None, "/v1/maintenance-policies"),
            (Some(""), "/v1/maintenance-policies"),
            (Some(" "), "/v1/maintenance-policies"),
            (Some("web"), "/v1/projects/web/maintenance-policies"),
            (Some("a/b"), "/v1/projects/a%2Fb/maintenance-policies"),
        ];
        for (explicit, want) in cases {
            assert_eq!(collection(scope_project(explicit)), want, "{explicit:?}");
        }
    }

    fn args(schedules: Vec<ScheduleSpec>) -> CreatePolicyArgs {
        CreatePolicyArgs {
            name: "p".into(),
            schedules,
            exclusions: Vec::new(),
            preset: None,
            metadata: MetadataArgs {
                description: None,
                labels: Vec::new(),
            },
        }
    }

    #[test]
    fn presets_are_extended_by_the_flags_and_unknown_ones_are_named() {
        let extra = ScheduleSpec {
            name: "noon".into(),
            cron: "0 12 * * *".into(),
            duration_hours: 1,
        };
        let daily = PolicyPreset {
            name: "daily".into(),
            description: String::new(),
            spec: MaintenancePolicySpec {
                schedules: vec![ScheduleSpec {
                    name: "daily".into(),
                    cron: "0 0 * * *".into(),
                    duration_hours: 4,
                }],
                exclusions: Vec::new(),
            },
        };
        let all = [daily.clone()];
        let spec = build_spec(Some(("daily", &all)), &args(vec![extra.clone()])).unwrap();
        assert_eq!(
            spec.schedules,
            [daily.spec.schedules[0].clone(), extra.clone()]
        );
        let spec = build_spec(None, &args(vec![extra.clone()])).unwrap();
        assert_eq!(spec.schedules, [extra]);
        let e = build_spec(Some(("hourly", &all)), &args(Vec::new())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "there is no preset \"hourly\"; the presets are: daily"
        );
    }
}
