//! `fleetplane user …`.

use super::{Ctx, metadata, named, read_secret_line};
use crate::args::user::UserCommand;
use crate::output::{Column, field, time};
use fleetplane_client::{User, UserSpec, encode_segment};

/// Table columns of users.
pub const COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/metadata/name")),
    Column::new("DISPLAY NAME", |v| field(v, "/spec/displayName")),
    Column::new("EMAIL", |v| field(v, "/spec/email")),
    Column::new("CREATED", |v| time(v, "/metadata/createdAt")),
];

fn path(name: &str) -> String {
    format!("/v1/users/{}", encode_segment(name))
}

/// Runs `fleetplane user …`.
///
/// # Errors
/// The API call fails, the password cannot be read, or output cannot be written.
pub async fn run(ctx: &Ctx, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::List(args) => {
            let items = ctx.list("/v1/users", &args).await?;
            ctx.print_list(&items, COLUMNS)
        }
        UserCommand::Get { name } => ctx.show(&path(&name), &named("user", &name), COLUMNS).await,
        UserCommand::Create(args) => {
            let password = if args.password_stdin {
                Some(read_secret_line("Password")?)
            } else {
                None
            };
            let user = User {
                kind: None,
                metadata: metadata(&args.name, &args.metadata),
                spec: UserSpec {
                    display_name: args.display_name,
                    email: args.email,
                    password,
                },
                status: None,
            };
            let body = serde_json::to_value(&user)?;
            ctx.create(
                &path(&args.name),
                &body,
                &named("user", &args.name),
                COLUMNS,
            )
            .await
        }
        UserCommand::Delete(args) => {
            ctx.delete(&path(&args.name), &args, &named("user", &args.name))
                .await
        }
    }
}
