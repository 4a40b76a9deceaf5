//! Measures the provider call overhead: a host → component → host round trip of an empty
//! call (a fresh store and instance each time, as the host does) by phase, with the pooling
//! allocator and with on-demand allocation, and the same call on a native trait object.
//! Prints mean/p50/p99.
//!
//! `cargo run --release -p fleetplane-wasm-host --example call_overhead [iterations [pooling|on-demand]]`

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetplane_wasm_host::components::{self, paths};
use fleetplane_wasm_host::*;

trait NativeProvider: Send + Sync {
    fn validate_account(&self, account: &AccountContext) -> Result<AccountInfo, ProviderError>;
}

struct NativeNoop;

impl NativeProvider for NativeNoop {
    fn validate_account(&self, account: &AccountContext) -> Result<AccountInfo, ProviderError> {
        Ok(AccountInfo {
            identity: account.name.clone(),
            regions: Vec::new(),
        })
    }
}

fn line(name: &str, s: &PhaseStats) {
    println!(
        "  {name:<40} mean {:>9.1?}  p50 {:>9.1?}  p99 {:>9.1?}",
        s.mean, s.p50, s.p99
    );
}

fn print_phases(title: &str, p: &CallPhases) {
    println!("{title} ({} allocator, {} calls)", p.allocator, p.calls);
    line("store + WASI context", &p.store);
    line("instantiation", &p.instantiate);
    line("validate-account round trip", &p.round_trip);
    line("teardown (store dropped)", &p.teardown);
    line("whole call", &p.total);
}

async fn measure(pooling: bool, iterations: usize) -> anyhow::Result<()> {
    let sim = SimCloud::in_memory(Arc::new(SystemClock))?;
    let host = WasmHost::new(
        HostConfig {
            pooling,
            ..HostConfig::default()
        },
        Some(Arc::new(sim)),
    )?;
    let bytes = std::fs::read(paths::NOOP)?;
    let manifest = ProviderManifest {
        name: "noop".into(),
        version: "0.1.0".into(),
        wit_version: WIT_VERSION.into(),
        cloud_types: vec!["aws".into()],
        allowed_hosts: Vec::new(),
        account_schema: serde_json::json!({"type": "object"}),
        secrets: Vec::new(),
        description: None,
    };
    let started = Instant::now();
    host.install(ProviderPackage::verify(
        manifest,
        Digest::of(&bytes),
        bytes,
    )?)
    .await?;
    println!("install noop (compile + link): {:?}", started.elapsed());
    let simulator = host.install(components::simulator_package()?).await?;

    let account =
        AccountContext::new("bench", serde_json::json!({"timeScale": 0})).with_secret("k", "v");
    host.probe("noop", &account, 200).await?;
    print_phases("noop", &host.probe("noop", &account, iterations).await?);
    host.probe(&simulator.name, &account, 200).await?;
    print_phases(
        "simulator",
        &host.probe(&simulator.name, &account, iterations).await?,
    );

    let spec = conformance::sample_spec("bench", &Digest::of(b"bench").hex(), "r", "aws", "m");
    let mut with_spec = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let op = ProviderOp::Create {
            key: format!("k{i}"),
            spec: spec.clone(),
        };
        let t = Instant::now();
        host.call("noop", &account, op).await?;
        with_spec.push(t.elapsed());
    }
    line(
        "noop create with a cluster spec",
        &PhaseStats::of(&with_spec),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000);
    // Optional second argument: `pooling` or `on-demand` to measure one allocator only.
    let only = std::env::args().nth(2);
    for (pooling, name) in [(true, "pooling"), (false, "on-demand")] {
        if only.as_deref().is_none_or(|o| o == name) {
            measure(pooling, iterations).await?;
        }
    }

    let account = AccountContext::new("bench", serde_json::json!({}));
    let native: Box<dyn NativeProvider> = Box::new(NativeNoop);
    let mut native_samples: Vec<Duration> = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        std::hint::black_box(native.validate_account(std::hint::black_box(&account)))?;
        native_samples.push(t.elapsed());
    }
    line("native trait-object call", &PhaseStats::of(&native_samples));
    Ok(())
}
