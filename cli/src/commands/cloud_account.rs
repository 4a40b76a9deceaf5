//! `fleetplane cloud-account …`.

use super::provider::json_value;
use super::{Ctx, metadata, named};
use crate::args::cloud_account::CloudAccountCommand;
use crate::output::{Column, field, time};
use anyhow::Context as _;
use fleetplane_client::encode_segment;
use serde_json::{Value, json};

/// Table columns of cloud accounts.
pub const COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/metadata/name")),
    Column::new("PROVIDER", |v| field(v, "/spec/provider")),
    Column::new("PHASE", |v| field(v, "/status/phase")),
    Column::new("IDENTITY", |v| field(v, "/status/identity")),
    Column::new("CREATED", |v| time(v, "/metadata/createdAt")),
    Column::new("MESSAGE", |v| field(v, "/status/message")),
];

/// Runs `fleetplane cloud-account …`.
///
/// # Errors
/// The API call fails, no project is configured, or the secrets file cannot be read.
pub async fn run(ctx: &Ctx, cmd: CloudAccountCommand) -> anyhow::Result<()> {
    let base = ctx.client.project_path("cloud-accounts")?;
    let path = |name: &str| format!("{base}/{}", encode_segment(name));
    match cmd {
        CloudAccountCommand::List(args) => {
            let items = ctx.list(&base, &args).await?;
            ctx.print_list(&items, COLUMNS)
        }
        CloudAccountCommand::Get { name } => {
            ctx.show(&path(&name), &named("cloud account", &name), COLUMNS)
                .await
        }
        CloudAccountCommand::Create(args) => {
            let mut secrets = serde_json::Map::new();
            if let Some(file) = &args.secrets_file {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let from_file: serde_json::Map<String, Value> = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a JSON object", file.display()))?;
                secrets.extend(from_file);
            }
            for (k, v) in &args.secrets {
                secrets.insert(k.clone(), Value::String(v.clone()));
            }
            let config: serde_json::Map<String, Value> = args
                .config
                .iter()
                .map(|(k, v)| (k.clone(), json_value(v)))
                .collect();
            let mut spec = json!({
                "provider": args.provider,
                "config": config,
                "secrets": secrets,
            });
            if !args.cloud_types.is_empty() {
                spec["cloudTypes"] = json!(args.cloud_types);
            }
            let body = json!({
                "metadata": metadata(&args.name, &args.metadata),
                "spec": spec,
            });
            ctx.create(
                &path(&args.name),
                &body,
                &named("cloud account", &args.name),
                COLUMNS,
            )
            .await
        }
        CloudAccountCommand::Delete(args) => {
            ctx.delete(
                &path(&args.name),
                &args,
                &named("cloud account", &args.name),
            )
            .await
        }
    }
}
