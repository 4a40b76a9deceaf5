//! `fleetplane workflow …`: workflow definitions, tenant-wide (`/v1/workflows…`).
//!
//! `submit` reads a YAML or JSON file, takes the name and version from the document and sends it
//! as JSON with `PUT /v1/workflows/{name}/versions/{version}`; the server validates it and names
//! every problem with its step path (`spec.steps[1].wait.duration`).

use super::{Ctx, note, print};
use crate::args::OutputFormat;
use crate::args::profile::VersionRef;
use crate::args::workflow::WorkflowCommand;
use crate::output::{self, Column, field};
use anyhow::Context as _;
use fleetplane_client::{Precondition, encode_segment};
use serde_json::Value;
use std::path::Path;

/// Table columns of listed definitions.
const COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/name")),
    Column::new("VERSION", |v| field(v, "/version")),
    Column::new("PURPOSE", |v| field(v, "/purpose")),
    Column::new("READ-ONLY", |v| field(v, "/readOnly")),
    Column::new("IN USE", |v| field(v, "/inUse")),
    Column::new("DIGEST", |v| field(v, "/digest")),
];

/// Table columns of one definition version (`{definition, digest, readOnly, inUse}`).
const VERSION_COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/definition/metadata/name")),
    Column::new("VERSION", |v| field(v, "/definition/metadata/version")),
    Column::new("PURPOSE", |v| field(v, "/definition/spec/purpose")),
    Column::new("STEPS", |v| {
        v.pointer("/definition/spec/steps")
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
            .to_string()
    }),
    Column::new("READ-ONLY", |v| field(v, "/readOnly")),
    Column::new("IN USE", |v| field(v, "/inUse")),
    Column::new("DIGEST", |v| field(v, "/digest")),
];

/// The path of a definition version.
fn version_path(name: &str, version: &str) -> String {
    format!(
        "/v1/workflows/{}/versions/{}",
        encode_segment(name),
        encode_segment(version)
    )
}

/// The name and version a definition document names (`metadata.name`, `metadata.version`; a
/// version written as a YAML number is taken as its text).
///
/// # Errors
/// Either is missing or empty.
fn document_ref(doc: &Value) -> anyhow::Result<VersionRef> {
    let text = |pointer: &str| match doc.pointer(pointer) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let name = text("/metadata/name").context("metadata.name is missing: name the workflow")?;
    let version =
        text("/metadata/version").context("metadata.version is missing: name the version")?;
    Ok(VersionRef { name, version })
}

/// Runs `fleetplane workflow …`.
///
/// # Errors
/// The file cannot be read or parsed, the API call fails (with the server's code and field
/// paths), or output cannot be written.
pub async fn run(ctx: &Ctx, cmd: WorkflowCommand) -> anyhow::Result<()> {
    if let Some(p) = ctx
        .global
        .project
        .as_deref()
        .filter(|p| !p.trim().is_empty())
    {
        note(&format!(
            "note: workflow definitions are tenant-wide; the project {p:?} does not apply"
        ));
    }
    match cmd {
        WorkflowCommand::Submit { file } => submit(ctx, &file).await,
        WorkflowCommand::List => {
            let page: Value = ctx
                .client
                .get_as("/v1/workflows", &[])
                .await
                .context("cannot list workflow definitions")?;
            let items = page
                .get("items")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            ctx.print_list(items, COLUMNS)
        }
        WorkflowCommand::Get { workflow } => {
            let body = ctx
                .client
                .get(&version_path(&workflow.name, &workflow.version))
                .await
                .with_context(|| format!("cannot get workflow {workflow}"))?;
            print_version(ctx, &body)
        }
        WorkflowCommand::Schema => {
            let schema = ctx
                .client
                .get("/v1/workflows:schema")
                .await
                .context("cannot get the workflow schema")?;
            print(&output::render_value(ctx.global.output, &schema)?)
        }
    }
}

/// Prints a version: a one-row table, or with `-o json|yaml` the definition document alone
/// (what `submit` reads back), the digest and flags going to standard error.
fn print_version(ctx: &Ctx, body: &Value) -> anyhow::Result<()> {
    match ctx.global.output {
        OutputFormat::Table => ctx.print_one(body, VERSION_COLUMNS),
        format => {
            note(&format!(
                "digest {}, read-only {}, in use {}",
                field(body, "/digest"),
                field(body, "/readOnly"),
                field(body, "/inUse")
            ));
            let doc = body.get("definition").unwrap_or(&Value::Null);
            print(&output::render_value(format, doc)?)
        }
    }
}

async fn submit(ctx: &Ctx, file: &Path) -> anyhow::Result<()> {
    let doc = super::profile::read_document(file)?;
    let at = document_ref(&doc).with_context(|| format!("cannot submit {}", file.display()))?;
    let written = ctx
        .client
        .put(
            &version_path(&at.name, &at.version),
            &doc,
            &Precondition::None,
        )
        .await
        .with_context(|| format!("cannot submit workflow {at}"))?;
    note(&format!(
        "workflow {at} {}",
        if written.created {
            "created"
        } else {
            "unchanged or replaced"
        }
    ));
    print_version(ctx, &written.object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_document_names_the_version() {
        let cases = [
            (
                json!({"metadata": {"name": "a", "version": "1.0.0"}}),
                Ok("a@1.0.0"),
            ),
            (
                json!({"metadata": {"name": " a ", "version": 2}}),
                Ok("a@2"),
            ),
            (json!({"metadata": {"version": "1"}}), Err("metadata.name")),
            (
                json!({"metadata": {"name": "a", "version": ""}}),
                Err("metadata.version"),
            ),
            (json!([1]), Err("metadata.name")),
        ];
        for (doc, want) in cases {
            let got = document_ref(&doc)
                .map(|r| r.to_string())
                .map_err(|e| e.to_string());
            match want {
                Ok(w) => assert_eq!(got.as_deref(), Ok(w), "{doc}"),
                Err(part) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(part)),
                    "{doc}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn paths_encode_names() {
        assert_eq!(version_path("a", "1.0.0"), "/v1/workflows/a/versions/1.0.0");
        assert_eq!(
            version_path("a/b", "1+x"),
            "/v1/workflows/a%2Fb/versions/1%2Bx"
        );
    }

    #[test]
    fn tables_show_definitions() {
        let v = json!({"definition": {"metadata": {"name": "d", "version": "1.0.0"},
                        "spec": {"purpose": "rollout", "steps": [{}, {}]}},
                       "digest": "sha256:ab", "readOnly": false, "inUse": true});
        assert_eq!(
            output::table(&[v], VERSION_COLUMNS).lines().nth(1),
            Some("d      1.0.0     rollout   2       false       true     sha256:ab")
        );
    }
}
