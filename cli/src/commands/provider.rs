//! `fleetplane provider …`.

use super::{Ctx, named, note, print};
use crate::args::GlobalArgs;
use crate::args::provider::{ProviderCommand, TestArgs};
use crate::output::{Column, field};
use anyhow::Context as _;
use fleetplane_client::encode_segment;
use fleetplane_server::wasm_host::conformance::{self, KitOptions};
use fleetplane_server::wasm_host::{AccountContext, Digest, ProviderManifest, components};
use serde_json::{Value, json};
use std::time::Duration;

/// Table columns of providers.
pub const COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/metadata/name")),
    Column::new("VERSION", |v| field(v, "/spec/version")),
    Column::new("WIT", |v| field(v, "/spec/witVersion")),
    Column::new("CLOUD TYPES", |v| {
        v.pointer("/spec/cloudTypes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    }),
    Column::new("HEALTH", |v| field(v, "/status/health")),
    Column::new("DIGEST", |v| field(v, "/spec/digest")),
    Column::new("REASON", |v| field(v, "/status/reason")),
];

fn path(name: &str) -> String {
    format!("/v1/providers/{}", encode_segment(name))
}

/// A `KEY=VALUE` value: JSON when it parses, else the string.
pub fn json_value(v: &str) -> Value {
    serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()))
}

/// Runs `fleetplane provider …`.
///
/// # Errors
/// The API call fails, a file cannot be read, or (for `test`) a conformance check fails.
pub async fn run(global: &GlobalArgs, cmd: ProviderCommand) -> anyhow::Result<()> {
    match cmd {
        ProviderCommand::Test(args) => test(args).await,
        ProviderCommand::List => {
            let ctx = Ctx::new(global)?;
            let items = ctx
                .client
                .list_all("/v1/providers", &Default::default())
                .await?;
            ctx.print_list(&items, COLUMNS)
        }
        ProviderCommand::Get { name } => {
            let ctx = Ctx::new(global)?;
            ctx.show(&path(&name), &named("provider", &name), COLUMNS)
                .await
        }
        ProviderCommand::Install(args) => {
            let ctx = Ctx::new(global)?;
            let component = std::fs::read(&args.file)
                .with_context(|| format!("cannot read {}", args.file.display()))?;
            let manifest: Value = serde_json::from_slice(
                &std::fs::read(&args.manifest)
                    .with_context(|| format!("cannot read {}", args.manifest.display()))?,
            )
            .with_context(|| format!("{} is not JSON", args.manifest.display()))?;
            let name = manifest["name"].as_str().unwrap_or_default().to_owned();
            let body = fleetplane_server::provider_install_body(
                manifest,
                &component,
                args.digest.as_deref(),
            );
            let what = named("provider", &name);
            let installed = ctx
                .client
                .post("/v1/providers", &body)
                .await
                .with_context(|| format!("cannot install {what}"))?;
            note(&format!("{what} installed ({})", Digest::of(&component)));
            ctx.print_one(&installed, COLUMNS)
        }
        ProviderCommand::Remove(args) => {
            let ctx = Ctx::new(global)?;
            ctx.delete(&path(&args.name), &args, &named("provider", &args.name))
                .await
        }
    }
}

/// `fleetplane provider test`: the conformance kit against a file, in a local host.
async fn test(args: TestArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let manifest = match &args.manifest {
        Some(p) => ProviderManifest::parse(
            &std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        )?,
        None if components::is_builtin_simulator(&Digest::of(&bytes)) => {
            ProviderManifest::parse(components::SIMULATOR_MANIFEST.as_bytes())?
        }
        None => ProviderManifest::parse(
            json!({
                "name": "under-test", "version": "0.0.0",
                "witVersion": fleetplane_server::wasm_host::WIT_VERSION,
                "cloudTypes": ["*"], "accountSchema": {"type": "object"},
            })
            .to_string()
            .as_bytes(),
        )?,
    };
    let config: serde_json::Map<String, Value> = args
        .config
        .iter()
        .map(|(k, v)| (k.clone(), json_value(v)))
        .collect();
    let mut account = AccountContext::new("conformance", Value::Object(config));
    for (k, v) in &args.secrets {
        account = account.with_secret(k.clone(), v.clone());
    }
    let options = KitOptions {
        operation_timeout: Duration::from_secs(args.operation_timeout),
        ..KitOptions::default()
    };
    let report = conformance::run_component(&bytes, manifest, &account, options)
        .await
        .with_context(|| format!("cannot install {}", args.file.display()))?;
    print(&format!("{report}\n"))?;
    anyhow::ensure!(report.passed(), "the component failed the conformance kit");
    Ok(())
}
