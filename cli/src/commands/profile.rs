//! `fleetplane profile …`: cluster profiles and versions at tenant or project scope.
//!
//! Scope, as for `policy`: a profile command works in the project named by `--project` or
//! `FLEETPLANE_PROJECT`, and at tenant scope otherwise. The config file's default project is not
//! used: profiles are mostly a tenant catalog that every project may use, and a stored default
//! must not silently import a profile into a project or hide the tenant's from `list`.

use super::{Ctx, named, note};
use crate::args::OutputFormat;
use crate::args::profile::{ProfileCommand, RenderArgs, VersionCommand, VersionRef};
use crate::output::{self, Column, field, labels};
use anyhow::Context as _;
use fleetplane_client::{Deleted, Precondition, encode_segment};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// Table columns of profiles.
const PROFILE_COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/metadata/name")),
    Column::new("TYPE", |v| field(v, "/spec/type")),
    Column::new("CLOUD", |v| field(v, "/spec/cloudType")),
    Column::new("VERSIONS", |v| join(v.pointer("/status/versions"), ", ")),
    Column::new("LABELS", labels),
    Column::new("DESCRIPTION", |v| field(v, "/metadata/description")),
];

/// Table columns of profile versions.
const VERSION_COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/metadata/name")),
    Column::new("VERSION", |v| field(v, "/spec/version")),
    Column::new("TYPE", |v| field(v, "/spec/type")),
    Column::new("CLOUD", |v| field(v, "/spec/cloudType")),
    Column::new("LAYERS", |v| {
        layer_names(v.pointer("/spec/layers")).join(", ")
    }),
    Column::new("VARIABLES", |v| {
        count(v.pointer("/spec/variables")).to_string()
    }),
    Column::new("LOCKED", |v| field(v, "/status/locked")),
    Column::new("TEMPLATES", |v| field(v, "/status/templates")),
    Column::new("CLUSTERS", |v| field(v, "/status/clusters")),
];

/// Strings of an array joined with `sep`.
fn join(list: Option<&Value>, sep: &str) -> String {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(sep)
        })
        .unwrap_or_default()
}

/// The pack names of the layers, in order.
fn layer_names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|items| items.iter().map(|l| field(l, "/name")).collect())
        .unwrap_or_default()
}

fn count(list: Option<&Value>) -> usize {
    list.and_then(Value::as_array).map_or(0, Vec::len)
}

/// Where a tenant-or-project command works (the same rule as `policy`): paths and names for
/// messages.
pub(super) struct Scope<'a> {
    project: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// The scope of a command on `kinds` (plural, for the note): the project of `--project` or
    /// `FLEETPLANE_PROJECT`, else the tenant; says so when the config file's project is left out.
    pub(super) fn of(ctx: &'a Ctx, kinds: &str) -> Self {
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
                "note: tenant scope; the config file's project {p:?} is used for {kinds} only \
                 with --project or FLEETPLANE_PROJECT"
            ));
        }
        Self { project }
    }

    /// The collection path of `collection` (`profiles`, `macros`) in this scope.
    pub(super) fn collection(&self, collection: &str) -> String {
        match self.project {
            Some(p) => format!("/v1/projects/{}/{collection}", encode_segment(p)),
            None => format!("/v1/{collection}"),
        }
    }

    /// `what` with ` in project "p"` when project-scoped.
    pub(super) fn what(&self, what: String) -> String {
        match self.project {
            Some(p) => format!("{what} in project {p:?}"),
            None => what,
        }
    }

    fn profile(&self, name: &str) -> String {
        format!("{}/{}", self.collection("profiles"), encode_segment(name))
    }

    fn versions(&self, name: &str) -> String {
        format!("{}/versions", self.profile(name))
    }

    fn version(&self, r: &VersionRef) -> String {
        format!("{}/{}", self.versions(&r.name), encode_segment(&r.version))
    }
}

fn version_what(r: &VersionRef) -> String {
    named("profile version", &r.to_string())
}

/// Runs `fleetplane profile …`.
///
/// # Errors
/// A file cannot be read or parsed, the API call fails (with the server's code and field paths),
/// or output cannot be written.
pub async fn run(ctx: &Ctx, cmd: ProfileCommand) -> anyhow::Result<()> {
    let scope = Scope::of(ctx, "profiles");
    match cmd {
        ProfileCommand::List(args) => {
            let items = ctx
                .list(&scope.collection("profiles"), &args)
                .await
                .context(scope.what("cannot list profiles".to_owned()))?;
            ctx.print_list(&items, PROFILE_COLUMNS)
        }
        ProfileCommand::Get {
            name,
            version: None,
        } => {
            ctx.show(
                &scope.profile(&name),
                &scope.what(named("profile", &name)),
                PROFILE_COLUMNS,
            )
            .await
        }
        ProfileCommand::Get {
            name,
            version: Some(version),
        } => {
            let r = VersionRef { name, version };
            ctx.show(
                &scope.version(&r),
                &scope.what(version_what(&r)),
                VERSION_COLUMNS,
            )
            .await
        }
        ProfileCommand::Import { file } => import(ctx, &scope, &file).await,
        ProfileCommand::Export { target, file } => {
            export(ctx, &scope, &target, file.as_deref()).await
        }
        ProfileCommand::Version(cmd) => version(ctx, &scope, cmd).await,
        ProfileCommand::Render(args) => render(ctx, &scope, args).await,
    }
}

async fn version(ctx: &Ctx, scope: &Scope<'_>, cmd: VersionCommand) -> anyhow::Result<()> {
    match cmd {
        VersionCommand::List { name, list } => {
            let items = ctx
                .list(&scope.versions(&name), &list)
                .await
                .with_context(|| {
                    scope.what(format!("cannot list the versions of profile {name:?}"))
                })?;
            ctx.print_list(&items, VERSION_COLUMNS)
        }
        VersionCommand::Create {
            name,
            version,
            from,
        } => {
            let r = VersionRef {
                name,
                version: version.clone(),
            };
            let what = scope.what(version_what(&r));
            let created = ctx
                .client
                .post(
                    &scope.versions(&r.name),
                    &json!({"version": version, "from": from}),
                )
                .await
                .with_context(|| format!("cannot create {what} from {from:?}"))?;
            note(&format!("{what} created from {from:?}"));
            ctx.print_one(&created, VERSION_COLUMNS)
        }
        VersionCommand::Apply { file } => {
            let doc = read_document(&file)?;
            let r =
                version_ref_of(&doc).with_context(|| format!("cannot apply {}", file.display()))?;
            let what = scope.what(version_what(&r));
            let written = ctx
                .client
                .put(&scope.version(&r), &doc, &Precondition::None)
                .await
                .with_context(|| format!("cannot apply {what}"))?;
            note(&format!(
                "{what} {}",
                if written.created {
                    "created"
                } else {
                    "replaced"
                }
            ));
            ctx.print_one(&written.object, VERSION_COLUMNS)
        }
        VersionCommand::Delete { target, if_match } => {
            let what = scope.what(version_what(&target));
            let precondition = if_match.map_or(Precondition::None, Precondition::Match);
            let outcome = ctx
                .client
                .delete(&scope.version(&target), &precondition)
                .await
                .with_context(|| format!("cannot delete {what}"))?;
            match outcome {
                Deleted::Done => note(&format!("{what} deleted")),
                Deleted::Accepted(_) => note(&format!("{what} is being deleted")),
            }
            Ok(())
        }
    }
}

/// The profile and version a version object names: `metadata.name` and `spec.version`.
///
/// # Errors
/// The document is not an object or lacks either.
fn version_ref_of(doc: &Value) -> anyhow::Result<VersionRef> {
    anyhow::ensure!(doc.is_object(), "the document is not an object");
    let text = |pointer: &str| {
        doc.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let name = text("/metadata/name").context("metadata.name is missing: name the profile")?;
    let version = text("/spec/version").context("spec.version is missing: name the version")?;
    Ok(VersionRef { name, version })
}

/// Reads a YAML or JSON document from a file (`-`: standard input).
///
/// # Errors
/// The file cannot be read or is neither JSON nor YAML.
pub(super) fn read_document(path: &Path) -> anyhow::Result<Value> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    parse_document(&text).with_context(|| format!("cannot parse {}", path.display()))
}

/// Parses JSON, or else YAML (the error is YAML's, which also covers JSON's syntax).
fn parse_document(text: &str) -> anyhow::Result<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(v);
    }
    serde_saphyr::from_str::<Value>(text).context("neither JSON nor YAML")
}

async fn import(ctx: &Ctx, scope: &Scope<'_>, file: &Path) -> anyhow::Result<()> {
    let doc = read_document(file)?;
    let answer = ctx
        .client
        .post(&format!("{}:import", scope.collection("profiles")), &doc)
        .await
        .with_context(|| scope.what(format!("cannot import {}", file.display())))?;
    let version = answer.get("version").cloned().unwrap_or(Value::Null);
    let r = format!(
        "{}@{}",
        field(&version, "/metadata/name"),
        field(&version, "/spec/version")
    );
    let rewrites = answer.get("rewrites").and_then(Value::as_u64).unwrap_or(0);
    note(&format!(
        "{} imported from {} ({} format, {rewrites} {} rewritten)",
        scope.what(named("profile version", &r)),
        file.display(),
        field(&answer, "/format"),
        if rewrites == 1 {
            "reference"
        } else {
            "references"
        }
    ));
    for w in answer
        .get("warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        note(&format!(
            "warning: {}",
            w.as_str().map_or_else(|| w.to_string(), str::to_owned)
        ));
    }
    match ctx.global.output {
        OutputFormat::Table => super::print(&output::table(
            std::slice::from_ref(&version),
            VERSION_COLUMNS,
        )),
        format => super::print(&output::render_value(format, &answer)?),
    }
}

async fn export(
    ctx: &Ctx,
    scope: &Scope<'_>,
    r: &VersionRef,
    file: Option<&Path>,
) -> anyhow::Result<()> {
    let what = scope.what(version_what(r));
    let doc = ctx
        .client
        .get(&format!("{}:export", scope.version(r)))
        .await
        .with_context(|| format!("cannot export {what}"))?;
    // A table has no meaning for a document: table prints JSON, the format import reads.
    let text = output::render_value(ctx.global.output, &doc)?;
    match file {
        None => super::print(&text),
        Some(path) => {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            note(&format!("{what} exported to {}", path.display()));
            Ok(())
        }
    }
}

/// The variable values of a render: the values file's, then `--var` over them. Numbers and
/// booleans in the file become their text (`3`, `true`); other values are refused.
///
/// # Errors
/// The file is not an object of scalars.
fn render_values(
    file: Option<&Value>,
    vars: &[(String, String)],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    if let Some(doc) = file {
        let Some(map) = doc.as_object() else {
            anyhow::bail!("the values file must hold an object of NAME: VALUE");
        };
        for (k, v) in map {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => anyhow::bail!(
                    "the value of {k:?} in the values file is not a string, number or boolean"
                ),
            };
            values.insert(k.clone(), text);
        }
    }
    for (k, v) in vars {
        values.insert(k.clone(), v.clone());
    }
    Ok(values)
}

/// The body of a render request.
///
/// # Errors
/// As [`render_values`].
fn render_body(values_file: Option<&Value>, args: &RenderArgs) -> anyhow::Result<Value> {
    let values = render_values(values_file, &args.vars)?;
    let mut body = json!({ "values": values });
    if !args.cluster.is_empty() {
        let cluster: Map<String, Value> = args
            .cluster
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        body["cluster"] = Value::Object(cluster);
    }
    Ok(body)
}

async fn render(ctx: &Ctx, scope: &Scope<'_>, args: RenderArgs) -> anyhow::Result<()> {
    let file = args.values_file.as_deref().map(read_document).transpose()?;
    let body = render_body(file.as_ref(), &args)?;
    let what = scope.what(version_what(&args.target));
    let answer = ctx
        .client
        .post_action(&scope.version(&args.target), "render", &body)
        .await
        .with_context(|| format!("cannot render {what}"))?;
    match ctx.global.output {
        OutputFormat::Table => super::print(&rendered_text(&answer)),
        format => super::print(&output::render_value(format, &answer)?),
    }
}

/// The rendered layers for people: per layer a `# NAME (LAYER, TYPE VERSION)` line and its
/// values, then each manifest under `# NAME manifest MANIFEST`; layers are separated by `---`,
/// so the text is also a YAML stream.
fn rendered_text(answer: &Value) -> String {
    let mut out = String::new();
    let layers = answer
        .get("layers")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (i, layer) in layers.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let name = field(layer, "/name");
        out.push_str(&format!(
            "# {name} ({}, {} {})\n",
            field(layer, "/layer"),
            field(layer, "/type"),
            field(layer, "/version")
        ));
        push_block(&mut out, &field(layer, "/values"));
        for m in layer
            .get("manifests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push_str(&format!("# {name} manifest {}\n", field(m, "/name")));
            push_block(&mut out, &field(m, "/content"));
        }
    }
    out
}

fn push_block(out: &mut String, text: &str) {
    out.push_str(text);
    if !text.is_empty() && !text.ends_with('\n') {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn args(vars: &[(&str, &str)], cluster: &[(&str, &str)]) -> RenderArgs {
        let pairs = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        RenderArgs {
            target: VersionRef {
                name: "p".into(),
                version: "1.0.0".into(),
            },
            vars: pairs(vars),
            values_file: None::<PathBuf>,
            cluster: pairs(cluster),
        }
    }

    #[test]
    fn flags_win_over_the_values_file_and_scalars_become_text() {
        let file = json!({"greeting": "hello", "replicas": 3, "debug": true});
        let body = render_body(Some(&file), &args(&[("greeting", "hi")], &[])).unwrap();
        assert_eq!(
            body,
            json!({"values": {"greeting": "hi", "replicas": "3", "debug": "true"}})
        );
        let body = render_body(None, &args(&[], &[("clusterName", "dev")])).unwrap();
        assert_eq!(
            body,
            json!({"values": {}, "cluster": {"clusterName": "dev"}})
        );
    }

    #[test]
    fn values_files_must_be_objects_of_scalars() {
        let cases = [
            (json!(["a"]), "must hold an object"),
            (json!({"a": {"b": 1}}), "\"a\" in the values file"),
            (json!({"a": null}), "\"a\" in the values file"),
        ];
        for (doc, part) in cases {
            let e = render_body(Some(&doc), &args(&[], &[])).unwrap_err();
            assert!(e.to_string().contains(part), "{doc}: {e}");
        }
    }

    #[test]
    fn documents_are_json_or_yaml() {
        assert_eq!(parse_document("{\"a\": 1}").unwrap(), json!({"a": 1}));
        assert_eq!(
            parse_document("a: x\nb: [1, 2]\n").unwrap(),
            json!({"a": "x", "b": [1, 2]})
        );
        assert!(parse_document("a: [").is_err());
    }

    #[test]
    fn a_version_object_names_its_profile_and_version() {
        let r = version_ref_of(&json!({"metadata": {"name": "aws"}, "spec": {"version": "1.2.0"}}))
            .unwrap();
        assert_eq!(r.to_string(), "aws@1.2.0");
        for (doc, part) in [
            (json!({"spec": {"version": "1.2.0"}}), "metadata.name"),
            (json!({"metadata": {"name": "aws"}}), "spec.version"),
            (
                json!({"metadata": {"name": " "}, "spec": {"version": "1"}}),
                "metadata.name",
            ),
            (json!("aws"), "not an object"),
        ] {
            let e = version_ref_of(&doc).unwrap_err();
            assert!(e.to_string().contains(part), "{doc}: {e}");
        }
    }

    #[test]
    fn rendered_layers_show_their_names_and_values() {
        let answer = json!({"layers": [
            {"name": "kubernetes", "layer": "k8s", "type": "catalog", "version": "1.33.4",
             "values": "pack:\n  podCIDR: 10.0.0.0/16\n"},
            {"name": "hello", "layer": "addon", "type": "manifest", "version": "1.0.0",
             "values": "a: 1", "manifests": [{"name": "app", "content": "kind: Pod\n"}]}
        ]});
        assert_eq!(
            rendered_text(&answer),
            "# kubernetes (k8s, catalog 1.33.4)\npack:\n  podCIDR: 10.0.0.0/16\n---\n\
             # hello (addon, manifest 1.0.0)\na: 1\n# hello manifest app\nkind: Pod\n"
        );
        assert_eq!(rendered_text(&json!({"layers": []})), "");
    }

    #[test]
    fn tables_show_versions_and_layers() {
        let profile = json!({"metadata": {"name": "aws", "labels": {"team": "infra"}},
                             "spec": {"type": "full", "cloudType": "aws"},
                             "status": {"versions": ["1.0.0", "1.1.0"]}});
        let t = output::table(&[profile], PROFILE_COLUMNS);
        assert_eq!(
            t.lines()
                .nth(1)
                .map(str::split_whitespace)
                .map(Iterator::collect::<Vec<_>>),
            Some(vec!["aws", "full", "aws", "1.0.0,", "1.1.0", "team=infra"])
        );
        let version = json!({"metadata": {"name": "aws"},
                             "spec": {"version": "1.0.0", "type": "full", "cloudType": "aws",
                                      "layers": [{"name": "ubuntu"}, {"name": "kubernetes"}],
                                      "variables": [{"name": "a"}]},
                             "status": {"locked": false, "templates": 0, "clusters": 2}});
        let t = output::table(&[version], VERSION_COLUMNS);
        assert_eq!(
            t.lines().nth(1),
            Some(
                "aws    1.0.0     full   aws     ubuntu, kubernetes   1           false    0           2"
            )
        );
    }
}
