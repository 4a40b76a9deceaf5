//! Measures the provider call overhead: a host → component → host round trip of an empty
//! call (fresh `Store` and instantiation each time, as the host does), instantiation alone,
//! and the same call on a native trait object. Prints p50/p99.
//!
//! `cargo run --release -p fleetplane-wasm-host --example call_overhead [iterations]`

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use fleetplane_wasm_host::components::paths;
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

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000);
    let host = WasmHost::new(HostConfig::default(), None)?;
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
    println!("install (compile + link): {:?}", started.elapsed());

    let account = AccountContext::new("bench", serde_json::json!({})).with_secret("k", "v");
    for _ in 0..100 {
        host.call("noop", &account, ProviderOp::ValidateAccount)
            .await?;
    }
    let mut wasm = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        host.call("noop", &account, ProviderOp::ValidateAccount)
            .await?;
        wasm.push(t.elapsed());
    }
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
    let native: Box<dyn NativeProvider> = Box::new(NativeNoop);
    let mut native_samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        std::hint::black_box(native.validate_account(std::hint::black_box(&account)))?;
        native_samples.push(t.elapsed());
    }
    for (name, samples) in [
        ("wasm validate-account (instantiate + call)", wasm),
        ("wasm create with a cluster spec", with_spec),
        ("native trait-object call", native_samples),
    ] {
        let (p50, p99) = percentiles(samples);
        println!("{name:<45} p50 {p50:>10.1?}  p99 {p99:>10.1?}");
    }
    Ok(())
}
