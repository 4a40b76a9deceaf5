//! `fleetplane apikey …`.

use super::{Ctx, note, print};
use crate::args::ListArgs;
use crate::args::OutputFormat;
use crate::args::apikey::ApiKeyCommand;
use crate::output::{self, Column, field, time};
use anyhow::Context as _;
use fleetplane_client::{NewApiKey, encode_segment};

/// Table columns of API keys.
pub const COLUMNS: &[Column] = &[
    Column::new("ID", |v| field(v, "/metadata/name")),
    Column::new("NAME", |v| field(v, "/spec/name")),
    Column::new("CREATED", |v| time(v, "/metadata/createdAt")),
    Column::new("EXPIRES", |v| time(v, "/spec/expiresAt")),
    Column::new("REVOKED", |v| time(v, "/status/revokedAt")),
];

/// Runs `fleetplane apikey …`.
///
/// # Errors
/// The API call fails or output cannot be written.
pub async fn run(ctx: &Ctx, cmd: ApiKeyCommand) -> anyhow::Result<()> {
    match cmd {
        ApiKeyCommand::List(user) => {
            let path = format!("/v1/users/{}/api-keys", encode_segment(&user.user));
            let items = ctx
                .list(
                    &path,
                    &ListArgs {
                        selector: None,
                        limit: None,
                    },
                )
                .await
                .with_context(|| format!("cannot list the API keys of user {:?}", user.user))?;
            ctx.print_list(&items, COLUMNS)
        }
        ApiKeyCommand::Create(args) => {
            let request = NewApiKey {
                name: args.name,
                expires_in_days: args.expires_in_days,
            };
            let created = ctx
                .client
                .create_api_key(&args.user.user, &request)
                .await
                .with_context(|| {
                    format!("cannot create an API key for user {:?}", args.user.user)
                })?;
            let expires = created
                .api_key
                .spec
                .expires_at
                .as_deref()
                .unwrap_or("never");
            note(&format!(
                "API key {} created for user {:?} (expires {expires}); it is shown only this once",
                created.api_key.metadata.name, args.user.user
            ));
            match ctx.global.output {
                // The bare key, so `KEY=$(fleetplane apikey create …)` works.
                OutputFormat::Table => print(&format!("{}\n", created.key)),
                format => print(&output::render_value(
                    format,
                    &serde_json::to_value(&created)?,
                )?),
            }
        }
        ApiKeyCommand::Revoke { user, id } => {
            ctx.client
                .revoke_api_key(&user.user, &id)
                .await
                .with_context(|| format!("cannot revoke API key {id:?} of user {:?}", user.user))?;
            note(&format!("API key {id} of user {:?} revoked", user.user));
            Ok(())
        }
    }
}
