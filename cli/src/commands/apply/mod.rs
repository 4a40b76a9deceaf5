//! `fleetplane apply -f`, `diff -f` and `get KIND NAME`: the declarative verbs over documents
//! of several kinds (see `kinds` for the table of kinds, `compare` for when an object counts as
//! unchanged, docs/cli.md "Declarative files" for the user's view).
//!
//! Every document is read and checked before the first request, so a bad file or unknown kind
//! changes nothing. Documents are then applied one by one in dependency order; the first failure
//! stops the run and the documents already applied stay applied.

mod compare;
mod documents;
mod kinds;

use super::{Ctx, note, print};
use crate::args::apply::{ApplyArgs, DiffArgs, FileArgs, GetArgs};
use crate::args::{GlobalArgs, OutputFormat};
use crate::exit;
use crate::output;
use anyhow::Context as _;
use compare::{differs, document, overlay, unified};
use documents::{Document, ScopeInput, resolve_scope};
use fleetplane_client::{Precondition, Written};
use kinds::{KindSpec, ScopeRule};
use serde_json::Value;

/// The object the server has for a document.
struct Live {
    /// As `apply` takes it (see [`compare::document`]).
    doc: Value,
    /// Its resource version, for `If-Match`; `None` for kinds without one (workflows).
    resource_version: Option<String>,
}

/// What `apply` did with a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Configured => "configured",
            Self::Unchanged => "unchanged",
        }
    }
}

/// The projects documents may take their scope from, and a note when the config file's
/// project is set but not used by tenant-or-project kinds.
fn scope_input(ctx: &Ctx) -> ScopeInput {
    ScopeInput {
        explicit: ctx
            .global
            .project
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
        configured: ctx.settings.project.clone(),
    }
}

/// Notes once that the config file's project was left out for tenant-or-project documents at
/// tenant scope, and that `--project` does not apply to tenant-wide kinds.
fn scope_notes(docs: &[Document], input: &ScopeInput) {
    let tenant_scoped = docs
        .iter()
        .any(|d| d.kind.scope == ScopeRule::TenantOrProject && d.project.is_none());
    if tenant_scoped
        && input.explicit.is_none()
        && let Some(p) = input.configured.as_deref()
    {
        note(&format!(
            "note: documents without metadata.project go to tenant scope; the config file's \
             project {p:?} is used for them only with --project or FLEETPLANE_PROJECT"
        ));
    }
    if let Some(p) = input.explicit.as_deref()
        && docs.iter().any(|d| d.kind.scope == ScopeRule::TenantOnly)
    {
        note(&format!(
            "note: workflow definitions are tenant-wide; the project {p:?} does not apply to them"
        ));
    }
}

/// Reads and checks the documents of `-f`.
fn load(ctx: &Ctx, files: &FileArgs) -> anyhow::Result<Vec<Document>> {
    let input = scope_input(ctx);
    let docs = documents::load(documents::read(&files.files, files.recursive)?, &input)?;
    scope_notes(&docs, &input);
    Ok(docs)
}

/// The object in a `GET` answer (workflows wrap it in `definition`).
fn unwrap(kind: &KindSpec, path: &str, answer: Value) -> anyhow::Result<Value> {
    match kind.wrapped_in {
        Some(member) => answer
            .get(member)
            .cloned()
            .with_context(|| format!("unexpected answer from {path}: no `{member}` member")),
        None => Ok(answer),
    }
}

/// Reads the object of `path` of `kind`; `None` when it does not exist (404).
async fn observe(ctx: &Ctx, kind: &KindSpec, path: &str) -> anyhow::Result<Option<Live>> {
    let answer = match ctx.client.get(path).await {
        Ok(v) => v,
        Err(e) if e.status() == Some(404) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let object = unwrap(kind, path, answer)?;
    Ok(Some(Live {
        resource_version: documents::text(&object, "/metadata/resourceVersion"),
        doc: document(kind, &object),
    }))
}

/// The body a `PUT` sends for a document: as written, with the server's kind and without
/// `status`.
fn body(doc: &Document) -> Value {
    let mut body = doc.body.clone();
    if let Value::Object(m) = &mut body {
        m.insert("kind".into(), Value::String(doc.kind.api_kind.into()));
        m.shift_remove("status");
    }
    body
}

/// The document as compared with the server's: as `apply` takes it, in the server's canonical
/// form where the kind can be normalized client-side.
fn desired_of(doc: &Document) -> Value {
    let written = document(doc.kind, &doc.body);
    match doc.kind.normalize.and_then(|f| f(&written)) {
        Some(normal) => document(doc.kind, &normal),
        None => written,
    }
}

/// Applies one document.
async fn apply_one(ctx: &Ctx, doc: &Document, force: bool) -> anyhow::Result<Outcome> {
    let path = doc.path();
    let live = observe(ctx, doc.kind, &path).await?;
    let desired = desired_of(doc);
    let (precondition, outcome) = match &live {
        None => (Precondition::Absent, Outcome::Created),
        Some(live) if !force && !differs(&live.doc, &desired, doc.kind.exact) => {
            return Ok(Outcome::Unchanged);
        }
        Some(live) => (
            live.resource_version
                .clone()
                .map_or(Precondition::None, Precondition::Match),
            Outcome::Configured,
        ),
    };
    let Written { created, .. } = ctx.client.put(&path, &body(doc), &precondition).await?;
    Ok(if created { Outcome::Created } else { outcome })
}

/// Runs `fleetplane apply`: prints `KIND/NAME created|configured|unchanged` per document.
///
/// # Errors
/// A file cannot be read or a document is invalid (nothing is applied then), or a request
/// fails: the error names the document and carries the server's code and field paths;
/// documents applied before it stay applied.
pub async fn apply(ctx: &Ctx, args: ApplyArgs) -> anyhow::Result<()> {
    let docs = load(ctx, &args.files)?;
    for doc in &docs {
        let outcome = apply_one(ctx, doc, args.force)
            .await
            .with_context(|| format!("cannot apply {} ({})", doc.id(), doc.source))?;
        print(&format!("{} {}\n", doc.id(), outcome.as_str()))?;
    }
    Ok(())
}

/// The diff of one document, empty when `apply` would leave the object unchanged.
async fn diff_one(ctx: &Ctx, doc: &Document) -> anyhow::Result<String> {
    let live = observe(ctx, doc.kind, &doc.path()).await?;
    let desired = desired_of(doc);
    let yaml = |v: &Value| serde_saphyr::to_string(v).context("cannot encode YAML");
    let (before, after) = match &live {
        None => (String::new(), yaml(&desired)?),
        Some(live) if !differs(&live.doc, &desired, doc.kind.exact) => return Ok(String::new()),
        Some(live) => (
            yaml(&live.doc)?,
            yaml(&overlay(&live.doc, &desired, doc.kind.exact))?,
        ),
    };
    let id = doc.id();
    let from = if live.is_some() {
        format!("{id} (server)")
    } else {
        format!("{id} (absent)")
    };
    Ok(unified(
        &before,
        &after,
        &from,
        &format!("{id} ({})", doc.source),
    ))
}

/// Prints the diffs; whether any document differs.
async fn diff_all(global: &GlobalArgs, args: &DiffArgs) -> anyhow::Result<bool> {
    let ctx = Ctx::new(global)?;
    let docs = load(&ctx, &args.files)?;
    let mut differ = false;
    for doc in &docs {
        let text = diff_one(&ctx, doc)
            .await
            .with_context(|| format!("cannot diff {} ({})", doc.id(), doc.source))?;
        if !text.is_empty() {
            differ = true;
            print(&text)?;
        }
    }
    Ok(differ)
}

/// Runs `fleetplane diff` and ends the process with its own exit codes (as `kubectl diff`):
/// 0 nothing differs, 1 something differs, 2 the input or a request is wrong, 3 the server
/// failed or could not be reached.
///
/// # Errors
/// Only when standard output is closed or the server failed (the caller prints it and exits
/// 0 or 3); other errors are printed here and exit 2.
pub async fn diff(global: &GlobalArgs, args: DiffArgs) -> anyhow::Result<()> {
    match diff_all(global, &args).await {
        Ok(false) => Ok(()),
        Ok(true) => std::process::exit(i32::from(exit::USER_ERROR)),
        Err(e) if exit::is_broken_pipe(&e) || exit::code_of(&e) != exit::USER_ERROR => Err(e),
        Err(e) => {
            let has_key = super::env_var("FLEETPLANE_API_KEY").is_some()
                || super::read_config().is_ok_and(|c| c.api_key.is_some());
            note(&exit::report(&e, has_key));
            std::process::exit(i32::from(exit::USAGE))
        }
    }
}

/// Runs `fleetplane get KIND NAME`: the object as a document `apply -f` takes back (YAML, or
/// JSON with `-o json`).
///
/// # Errors
/// The kind is unknown, the name lacks `@VERSION` for a versioned kind, no project is known for
/// a project-only kind, or the API call fails (404 when the object does not exist).
pub async fn get(ctx: &Ctx, args: GetArgs) -> anyhow::Result<()> {
    let kind = KindSpec::find(&args.kind).with_context(|| {
        format!(
            "unknown kind {:?}; expected one of {}",
            args.kind,
            KindSpec::names()
        )
    })?;
    let (name, version) = match kind.version {
        Some(_) => match args.name.rsplit_once('@') {
            Some((n, v)) if !n.is_empty() && !v.is_empty() => (n, Some(v)),
            _ => anyhow::bail!(
                "{} names are NAME@VERSION, e.g. {}@1.0.0",
                kind.kind,
                args.name
            ),
        },
        None => (args.name.as_str(), None),
    };
    let input = scope_input(ctx);
    let project = resolve_scope(kind, None, &input)?;
    if kind.scope == ScopeRule::TenantOrProject
        && project.is_none()
        && let Some(p) = input.configured.as_deref()
    {
        note(&format!(
            "note: tenant scope; the config file's project {p:?} is used only with --project or \
             FLEETPLANE_PROJECT"
        ));
    }
    let path = kind.path(project.as_deref(), name, version);
    let what = kind.id(name, version);
    let answer = ctx
        .client
        .get(&path)
        .await
        .with_context(|| match &project {
            Some(p) => format!("cannot get {what} in project {p:?}"),
            None => format!("cannot get {what}"),
        })?;
    let object = unwrap(kind, &path, answer)?;
    let format = match ctx.global.output {
        OutputFormat::Json => OutputFormat::Json,
        OutputFormat::Table | OutputFormat::Yaml => OutputFormat::Yaml,
    };
    print(&output::render_value(format, &document(kind, &object))?)
}
