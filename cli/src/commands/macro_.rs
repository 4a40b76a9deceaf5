//! `fleetplane macro …`: macros at tenant or project scope (the same scope rule as `policy` and
//! `profile`). A project macro overrides a tenant macro of the same name in renders.

use super::profile::Scope;
use super::{Ctx, named, note};
use crate::args::macro_::{MacroCommand, SetMacroArgs};
use crate::output::{Column, field};
use anyhow::Context as _;
use fleetplane_client::{Precondition, encode_segment};
use serde_json::json;

/// Table columns of macros.
const COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/metadata/name")),
    Column::new("VALUE", |v| field(v, "/spec/value")),
    Column::new("PROJECT", |v| field(v, "/metadata/project")),
];

fn path(scope: &Scope<'_>, name: &str) -> String {
    format!("{}/{}", scope.collection("macros"), encode_segment(name))
}

/// Runs `fleetplane macro …`.
///
/// # Errors
/// The API call fails (with the server's code and field paths) or output cannot be written.
pub async fn run(ctx: &Ctx, cmd: MacroCommand) -> anyhow::Result<()> {
    let scope = Scope::of(ctx, "macros");
    match cmd {
        MacroCommand::List(args) => {
            let items = ctx
                .list(&scope.collection("macros"), &args)
                .await
                .context(scope.what("cannot list macros".to_owned()))?;
            ctx.print_list(&items, COLUMNS)
        }
        MacroCommand::Get { name } => {
            ctx.show(
                &path(&scope, &name),
                &scope.what(named("macro", &name)),
                COLUMNS,
            )
            .await
        }
        MacroCommand::Set(args) => set(ctx, &scope, args).await,
        MacroCommand::Delete(args) => {
            ctx.delete(
                &path(&scope, &args.name),
                &args,
                &scope.what(named("macro", &args.name)),
            )
            .await
        }
    }
}

async fn set(ctx: &Ctx, scope: &Scope<'_>, args: SetMacroArgs) -> anyhow::Result<()> {
    let what = scope.what(named("macro", &args.name));
    let body = json!({"metadata": {"name": args.name}, "spec": {"value": args.value}});
    let precondition = args
        .if_match
        .map_or(Precondition::None, Precondition::Match);
    let written = ctx
        .client
        .put(&path(scope, &args.name), &body, &precondition)
        .await
        .with_context(|| format!("cannot set {what}"))?;
    note(&format!(
        "{what} {}",
        if written.created {
            "created"
        } else {
            "replaced"
        }
    ));
    ctx.print_one(&written.object, COLUMNS)
}
