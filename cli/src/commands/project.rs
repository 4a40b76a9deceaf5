//! `fleetplane project …`.

use super::{Ctx, metadata, named};
use crate::args::project::ProjectCommand;
use crate::output::{Column, field, labels, time};
use fleetplane_client::{Project, ProjectSpec, encode_segment};

/// Table columns of projects.
pub const COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/metadata/name")),
    Column::new("DISPLAY NAME", |v| field(v, "/spec/displayName")),
    Column::new("LABELS", labels),
    Column::new("CREATED", |v| time(v, "/metadata/createdAt")),
    Column::new("DESCRIPTION", |v| field(v, "/metadata/description")),
];

fn path(name: &str) -> String {
    format!("/v1/projects/{}", encode_segment(name))
}

/// Runs `fleetplane project …`.
///
/// # Errors
/// The API call fails or output cannot be written.
pub async fn run(ctx: &Ctx, cmd: ProjectCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectCommand::List(args) => {
            let items = ctx.list("/v1/projects", &args).await?;
            ctx.print_list(&items, COLUMNS)
        }
        ProjectCommand::Get { name } => {
            ctx.show(&path(&name), &named("project", &name), COLUMNS)
                .await
        }
        ProjectCommand::Create(args) => {
            let project = Project {
                kind: None,
                metadata: metadata(&args.name, &args.metadata),
                spec: ProjectSpec {
                    display_name: args.display_name,
                },
                status: None,
            };
            let body = serde_json::to_value(&project)?;
            ctx.create(
                &path(&args.name),
                &body,
                &named("project", &args.name),
                COLUMNS,
            )
            .await
        }
        ProjectCommand::Delete(args) => {
            ctx.delete(&path(&args.name), &args, &named("project", &args.name))
                .await
        }
    }
}
