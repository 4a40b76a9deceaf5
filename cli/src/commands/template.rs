//! `fleetplane template …`: cluster templates at tenant or project scope, and the variable
//! values of their clusters.
//!
//! Scope: as for policies, a template command works in the project named by `--project` or
//! `FLEETPLANE_PROJECT`, and at tenant scope otherwise; the config file's default project is not
//! used (a note says so). Profiles and the policy a project template links live in the same
//! project unless named with the `tenant:` prefix.

mod rollout;

use super::{Ctx, metadata, named, note};
use crate::args::OutputFormat;
use crate::args::template::{
    AssignArgs, CreateTemplateArgs, PolicyArg, ProfileArg, SetProfilesArgs, TemplateCommand,
};
use crate::output::{self, Column, field, time};
use anyhow::Context as _;
use fleetplane_client::{
    ClusterTemplate, ClusterTemplateSpec, Precondition, TemplatePolicyRef, TemplateProfileRef,
    VariableAssignmentPatch, VariablesPatch, encode_segment,
};
use serde_json::{Value, json};

/// Table columns of templates.
pub const COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/metadata/name")),
    Column::new("CLOUD", |v| field(v, "/spec/cloudType")),
    Column::new("REVISION", |v| field(v, "/status/revision")),
    Column::new("PROFILES", profiles),
    Column::new("POLICY", |v| {
        v.pointer("/spec/maintenancePolicy")
            .map(|p| scoped(p, &field(p, "/name")))
            .unwrap_or_default()
    }),
    Column::new("CLUSTERS", |v| field(v, "/status/clusters/total")),
    Column::new("STATE", |v| field(v, "/status/state")),
    Column::new("NEXT WINDOW (UTC)", |v| {
        match v.pointer("/status/nextWindow") {
            Some(w) if !w.is_null() => format!("{} to {}", time(w, "/start"), time(w, "/end")),
            _ => String::new(),
        }
    }),
];

/// Table columns of the variables view: one row per (variable, cluster).
const VARIABLE_COLUMNS: &[Column] = &[
    Column::new("PROFILE", |v| field(v, "/profile")),
    Column::new("VARIABLE", |v| field(v, "/variable")),
    Column::new("CLUSTER", |v| field(v, "/cluster")),
    Column::new("ASSIGNMENT", |v| {
        let a = field(v, "/assignment");
        match field(v, "/assignedBy") {
            by if by.is_empty() || a.is_empty() => a,
            by => format!("{a} ({by})"),
        }
    }),
    Column::new("RUNNING", |v| match v.get("runningValue") {
        // The variable is new to the cluster: it runs no value yet.
        Some(Value::Null) => "(new)".to_owned(),
        _ => field(v, "/runningValue"),
    }),
    Column::new("NEW", |v| field(v, "/newValue")),
];

/// `tenant:NAME` for an object of `scope: tenant`, else `NAME`.
fn scoped(reference: &Value, text: &str) -> String {
    if reference.get("scope").and_then(Value::as_str) == Some("tenant") {
        format!("tenant:{text}")
    } else {
        text.to_owned()
    }
}

/// The linked versions as `aws-standard@1.0.0, tenant:observability@1.0.0`.
fn profiles(v: &Value) -> String {
    v.pointer("/spec/profiles")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|p| {
                    scoped(
                        p,
                        &format!("{}@{}", field(p, "/name"), field(p, "/version")),
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Where a command works: paths and names for messages.
struct Scope<'a> {
    project: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// The scope of a command: `--project`/`FLEETPLANE_PROJECT` only; says so when the config
    /// file's project is left out.
    fn of(ctx: &'a Ctx) -> Self {
        let project = ctx
            .global
            .project
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty());
        if project.is_none()
            && let Some(p) = ctx.settings.project.as_deref()
        {
            note(&format!(
                "note: tenant scope; the config file's project {p:?} is used for templates only \
                 with --project or FLEETPLANE_PROJECT"
            ));
        }
        Self { project }
    }

    fn collection(&self) -> String {
        match self.project {
            Some(p) => format!("/v1/projects/{}/cluster-templates", encode_segment(p)),
            None => "/v1/cluster-templates".to_owned(),
        }
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{}", self.collection(), encode_segment(name))
    }

    fn what(&self, name: &str) -> String {
        let what = named("cluster template", name);
        match self.project {
            Some(p) => format!("{what} in project {p:?}"),
            None => what,
        }
    }
}

/// Runs `fleetplane template …`.
///
/// # Errors
/// The API call fails (with the server's code and field paths, e.g. 400
/// `TemplateRequiresBaseProfile` at `spec.profiles`, 409 `VariablesPending`,
/// `NothingToUpgrade` or `RolloutInProgress`, 412 when the template changed meanwhile),
/// `upgrade-now --wait` sees the rollout pause, fail or leave clusters behind, or output cannot
/// be written.
pub async fn run(ctx: &Ctx, cmd: TemplateCommand) -> anyhow::Result<()> {
    let scope = Scope::of(ctx);
    match cmd {
        TemplateCommand::List(args) => {
            let items = ctx
                .list(&scope.collection(), &args)
                .await
                .context("cannot list cluster templates")?;
            ctx.print_list(&items, COLUMNS)
        }
        TemplateCommand::Get { name } => {
            ctx.show(&scope.path(&name), &scope.what(&name), COLUMNS)
                .await
        }
        TemplateCommand::Create(args) => create(ctx, &scope, args).await,
        TemplateCommand::Delete(args) => {
            ctx.delete(&scope.path(&args.name), &args, &scope.what(&args.name))
                .await
        }
        TemplateCommand::SetProfiles(args) => set_profiles(ctx, &scope, args).await,
        TemplateCommand::Variables { name } => {
            let view = ctx
                .client
                .get(&format!("{}/variables", scope.path(&name)))
                .await
                .with_context(|| format!("cannot get the variables of {}", scope.what(&name)))?;
            print_view(ctx, &view)
        }
        TemplateCommand::Assign(args) => assign(ctx, &scope, args).await,
        TemplateCommand::Plan { name } => rollout::plan(ctx, &scope, &name).await,
        TemplateCommand::UpgradeNow(args) => rollout::upgrade_now(ctx, &scope, &args).await,
        TemplateCommand::Pause(args) => rollout::action(ctx, &scope, "pause", &args).await,
        TemplateCommand::Resume(args) => rollout::action(ctx, &scope, "resume", &args).await,
        TemplateCommand::Rollback(args) => rollout::action(ctx, &scope, "rollback", &args).await,
        TemplateCommand::Rollouts { name } => rollout::history(ctx, &scope, &name).await,
        TemplateCommand::Status { name } => rollout::status(ctx, &scope, &name).await,
    }
}

/// A profile argument as the spec's reference.
fn profile_ref(p: &ProfileArg) -> TemplateProfileRef {
    TemplateProfileRef {
        name: p.name.clone(),
        version: p.version.clone(),
        scope: p.tenant.then(|| "tenant".to_owned()),
        variables: Vec::new(),
    }
}

fn policy_ref(p: &PolicyArg) -> TemplatePolicyRef {
    TemplatePolicyRef {
        name: p.name.clone(),
        scope: p.tenant.then(|| "tenant".to_owned()),
    }
}

async fn create(ctx: &Ctx, scope: &Scope<'_>, args: CreateTemplateArgs) -> anyhow::Result<()> {
    let template = ClusterTemplate {
        kind: None,
        metadata: metadata(&args.name, &args.metadata),
        spec: ClusterTemplateSpec {
            cloud_type: args.cloud_type.clone(),
            description: String::new(),
            profiles: args.profiles.iter().map(profile_ref).collect(),
            maintenance_policy: Some(policy_ref(&args.policy)),
            rollout: None,
        },
        status: None,
    };
    let body = serde_json::to_value(&template)?;
    ctx.create(
        &scope.path(&args.name),
        &body,
        &scope.what(&args.name),
        COLUMNS,
    )
    .await
}

/// The new `spec.profiles`: the given versions, each keeping the `variables` settings the old
/// spec had for a profile of the same name (whatever its version or scope), so a version bump
/// keeps the fleet-wide values.
fn replace_profiles(old: &[Value], new: &[ProfileArg]) -> Vec<Value> {
    new.iter()
        .map(|p| {
            let mut entry = json!({"name": p.name, "version": p.version});
            if p.tenant {
                entry["scope"] = json!("tenant");
            }
            if let Some(vars) = old
                .iter()
                .find(|o| o.get("name").and_then(Value::as_str) == Some(&p.name))
                .and_then(|o| o.get("variables"))
                .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            {
                entry["variables"] = vars.clone();
            }
            entry
        })
        .collect()
}

/// Read-modify-write: reads the template with its `ETag`, replaces `spec.profiles` and writes
/// it back with `If-Match`, so a concurrent change answers 412 instead of being lost. Fields of
/// the spec this CLI does not know are kept as read.
async fn set_profiles(ctx: &Ctx, scope: &Scope<'_>, args: SetProfilesArgs) -> anyhow::Result<()> {
    let path = scope.path(&args.name);
    let what = scope.what(&args.name);
    let read = ctx
        .client
        .get_versioned(&path)
        .await
        .with_context(|| format!("cannot get {what}"))?;
    let mut object = read.object;
    let before = object.pointer("/status/revision").cloned();
    let version = args.if_match.clone().or(read.etag).or_else(|| {
        object
            .pointer("/metadata/resourceVersion")
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
    });
    let old = object
        .pointer("/spec/profiles")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        anyhow::bail!("{what} has no spec in the server's answer");
    };
    spec.insert(
        "profiles".to_owned(),
        Value::Array(replace_profiles(&old, &args.profiles)),
    );
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    let precondition = version.map_or(Precondition::None, Precondition::Match);
    let written = ctx
        .client
        .put(&path, &object, &precondition)
        .await
        .with_context(|| format!("cannot set the profiles of {what}"))?;
    let after = written.object.pointer("/status/revision").cloned();
    match (before, after) {
        (Some(b), Some(a)) if b != a => note(&format!("{what} updated: revision {b} -> {a}")),
        (_, Some(a)) => note(&format!(
            "{what} updated: same set of versions, revision {a}"
        )),
        _ => note(&format!("{what} updated")),
    }
    ctx.print_one(&written.object, COLUMNS)
}

/// The PATCH body of `assign`: one assignment per `--var`, each with the same clusters.
fn patch_body(args: &AssignArgs) -> VariablesPatch {
    VariablesPatch {
        assignments: args
            .vars
            .iter()
            .map(|v| VariableAssignmentPatch {
                profile: v.profile.clone(),
                variable: v.variable.clone(),
                value: v.value.clone(),
                clusters: (!args.clusters.is_empty()).then(|| args.clusters.clone()),
                keep_running: args.keep_running,
            })
            .collect(),
    }
}

/// `PATCH …/variables`: the server checks everything (unknown profiles, variables and clusters,
/// values against their definitions, value vs `--keep-running`) and names each problem's field
/// (`assignments[1].variable`); nothing is written unless every entry applies.
async fn assign(ctx: &Ctx, scope: &Scope<'_>, args: AssignArgs) -> anyhow::Result<()> {
    let what = scope.what(&args.name);
    let body = serde_json::to_value(patch_body(&args))?;
    let view = ctx
        .client
        .patch(
            &format!("{}/variables", scope.path(&args.name)),
            &body,
            &Precondition::None,
        )
        .await
        .with_context(|| format!("cannot assign variables of {what}"))?;
    note(&format!(
        "{} assignment(s) applied to {what}",
        args.vars.len()
    ));
    print_view(ctx, &view)
}

/// The rows of the variables view: one per (variable, cluster); a variable without clusters
/// gets one row with empty cluster cells, so the table still lists the template's variables.
fn view_rows(view: &Value) -> Vec<Value> {
    let mut rows = Vec::new();
    for item in view
        .get("items")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        let profile = item.get("profile").cloned().unwrap_or(Value::Null);
        let variable = item
            .pointer("/variable/name")
            .cloned()
            .unwrap_or(Value::Null);
        let clusters = item
            .get("clusters")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        if clusters.is_empty() {
            rows.push(json!({"profile": profile, "variable": variable}));
        }
        for c in clusters {
            let mut row = c.clone();
            if let Some(map) = row.as_object_mut() {
                map.insert("profile".to_owned(), profile.clone());
                map.insert("variable".to_owned(), variable.clone());
            }
            rows.push(row);
        }
    }
    rows
}

/// Prints the variables view: a table of rows, or the server's document as JSON or YAML.
fn print_view(ctx: &Ctx, view: &Value) -> anyhow::Result<()> {
    match ctx.global.output {
        OutputFormat::Table => {
            let rows = view_rows(view);
            if rows.iter().all(|r| r.get("cluster").is_none()) {
                note(&format!(
                    "revision {}: the template has no clusters, so no variable has an assignment yet",
                    field(view, "/revision")
                ));
            }
            super::print(&output::table(&rows, VARIABLE_COLUMNS))
        }
        format => super::print(&output::render_value(format, view)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::template::VarArg;

    #[test]
    fn the_table_shows_scoped_profiles_policy_and_status() {
        let t = json!({
            "metadata": {"name": "web"},
            "spec": {"cloudType": "aws",
                     "profiles": [{"name": "aws-standard", "version": "1.0.0"},
                                  {"name": "obs", "version": "1.0.0", "scope": "tenant"}],
                     "maintenancePolicy": {"name": "weekly", "scope": "tenant"}},
            "status": {"revision": 2, "state": "Applied", "clusters": {"total": 0},
                       "nextWindow": {"start": "2026-11-22T00:00:00Z",
                                      "end": "2026-11-22T04:00:00Z"}}
        });
        let table = output::table(&[t], COLUMNS);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "NAME   CLOUD   REVISION   PROFILES                               POLICY          \
             CLUSTERS   STATE     NEXT WINDOW (UTC)"
        );
        assert_eq!(
            lines[1],
            "web    aws     2          aws-standard@1.0.0, tenant:obs@1.0.0   tenant:weekly   \
             0          Applied   2026-11-22T00:00:00Z to 2026-11-22T04:00:00Z"
        );
    }

    #[test]
    fn variables_become_one_row_per_cluster_or_one_empty_row() {
        let view = json!({"revision": 1, "items": [
            {"profile": "aws", "variable": {"name": "greeting"}, "clusters": [
                {"cluster": "c1", "assignment": "Pending", "assignedBy": "cluster",
                 "runningValue": null, "newValue": ""},
                {"cluster": "c2", "assignment": "Assigned", "assignedBy": "template",
                 "runningValue": "hi", "newValue": "hello"}]},
            {"profile": "obs", "variable": {"name": "retention"}, "clusters": []}]});
        let t = output::table(&view_rows(&view), VARIABLE_COLUMNS);
        assert_eq!(
            t,
            "PROFILE   VARIABLE    CLUSTER   ASSIGNMENT            RUNNING   NEW\n\
             aws       greeting    c1        Pending (cluster)     (new)\n\
             aws       greeting    c2        Assigned (template)   hi        hello\n\
             obs       retention\n"
        );
        assert_eq!(
            output::table(
                &view_rows(&json!({"revision": 1, "items": []})),
                VARIABLE_COLUMNS
            ),
            "PROFILE   VARIABLE   CLUSTER   ASSIGNMENT   RUNNING   NEW\n"
        );
    }

    fn arg(name: &str, version: &str, tenant: bool) -> ProfileArg {
        ProfileArg {
            name: name.into(),
            version: version.into(),
            tenant,
        }
    }

    #[test]
    fn set_profiles_keeps_the_variable_settings_of_profiles_that_stay() {
        let settings = json!([{"name": "greeting", "value": "hi", "assignStrategy": "all"}]);
        let old = vec![
            json!({"name": "aws", "version": "1.0.0", "variables": settings}),
            json!({"name": "obs", "version": "1.0.0", "scope": "tenant",
                   "variables": [{"name": "retention", "value": "7d"}]}),
            json!({"name": "log", "version": "1.0.0", "variables": []}),
        ];
        let new = replace_profiles(
            &old,
            &[
                arg("aws", "1.1.0", false),
                arg("log", "2.0.0", true),
                arg("mesh", "1.0.0", false),
            ],
        );
        assert_eq!(
            new,
            [
                json!({"name": "aws", "version": "1.1.0", "variables": settings}),
                json!({"name": "log", "version": "2.0.0", "scope": "tenant"}),
                json!({"name": "mesh", "version": "1.0.0"}),
            ]
        );
    }

    #[test]
    fn assign_sends_one_entry_per_var_with_the_same_clusters() {
        let args = |clusters: Vec<String>, keep_running| AssignArgs {
            name: "web".into(),
            vars: vec![
                VarArg {
                    profile: "aws".into(),
                    variable: "greeting".into(),
                    value: Some("hi".into()),
                },
                VarArg {
                    profile: "aws".into(),
                    variable: "replicas".into(),
                    value: None,
                },
            ],
            clusters,
            keep_running,
        };
        assert_eq!(
            serde_json::to_value(patch_body(&args(Vec::new(), false))).unwrap(),
            json!({"assignments": [
                {"profile": "aws", "variable": "greeting", "value": "hi"},
                {"profile": "aws", "variable": "replicas"}]})
        );
        assert_eq!(
            serde_json::to_value(patch_body(&args(vec!["c1".into()], true))).unwrap(),
            json!({"assignments": [
                {"profile": "aws", "variable": "greeting", "value": "hi", "clusters": ["c1"],
                 "keepRunning": true},
                {"profile": "aws", "variable": "replicas", "clusters": ["c1"],
                 "keepRunning": true}]})
        );
    }
}
