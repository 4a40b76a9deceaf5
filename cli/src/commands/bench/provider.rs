//! The provider-call probe: an empty provider component call against an empty native call, in
//! this process, through the same `ProviderRuntime` trait the engine calls.
//!
//! The host makes a new `Store` and a fresh instance for every call (from wasmtime's pooling
//! allocator), so one component call is store + instantiation + host→component→host round trip
//! + teardown; `WasmHost::probe` times those phases apart on the same call path.

use super::report::Latency;
use anyhow::Context as _;
use fleetplane_server::wasm_host::{
    AccountContext, AccountInfo, CallError, CallPhases, Digest, HostConfig, OpResult, ProviderInfo,
    ProviderManifest, ProviderOp, ProviderPackage, ProviderRuntime, SimCloud, SystemClock,
    WIT_VERSION, WasmHost, components,
};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Untimed calls before each measured series.
const WARM_UP: u32 = 50;

/// What the provider-call probe measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderProbe {
    /// Calls in each series.
    pub calls: u32,
    /// Compiling and linking the built-in simulator component (`WasmHost::install`, no cache).
    pub simulator_install_ms: f64,
    /// `validate-account` on the built-in simulator (parses the account config, answers).
    pub simulator_validate: Series,
    /// The same calls timed by phase (store, instantiation, round trip, teardown) by the host.
    pub simulator_phases: CallPhases,
    /// `validate-account` on the empty test component (`providers/testing/noop`), when this
    /// build's component file is present.
    pub noop_validate: Option<Series>,
    /// The same trait call answered by an empty native async fn.
    pub native: Series,
    /// `simulator_validate.mean / native.mean`.
    pub simulator_over_native: f64,
}

/// One series of calls.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    /// Mean over an untimed loop (wall time / calls), microseconds.
    pub mean_us: f64,
    /// Per-call percentiles (each call timed on its own; includes the clock reads).
    pub latency: Latency,
}

/// An empty native provider: answers `validate-account` at once.
struct NativeNoop;

type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<OpResult, CallError>> + Send + 'a>>;

impl ProviderRuntime for NativeNoop {
    fn call<'a>(
        &'a self,
        _provider: &'a str,
        account: &'a AccountContext,
        _op: ProviderOp,
    ) -> CallFuture<'a> {
        Box::pin(async move {
            Ok(OpResult::Account(AccountInfo {
                identity: account.name.clone(),
                regions: Vec::new(),
            }))
        })
    }

    fn providers(&self) -> Vec<ProviderInfo> {
        Vec::new()
    }

    fn provider(&self, _name: &str) -> Option<ProviderInfo> {
        None
    }
}

async fn series(
    runtime: &dyn ProviderRuntime,
    provider: &str,
    account: &AccountContext,
    calls: u32,
) -> anyhow::Result<Series> {
    let call = || runtime.call(provider, account, ProviderOp::ValidateAccount);
    for _ in 0..WARM_UP {
        call()
            .await
            .with_context(|| format!("{provider}: validate-account"))?;
    }
    let started = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(call().await)?;
    }
    let mean_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(calls.max(1));
    let mut samples: Vec<Duration> = Vec::with_capacity(calls as usize);
    for _ in 0..calls {
        let t = Instant::now();
        std::hint::black_box(call().await)?;
        samples.push(t.elapsed());
    }
    Ok(Series {
        mean_us,
        latency: Latency::of(samples),
    })
}

/// The manifest the empty test component is installed with.
fn noop_manifest() -> ProviderManifest {
    ProviderManifest {
        name: "bench-noop".into(),
        version: "1.0.0".into(),
        wit_version: WIT_VERSION.into(),
        cloud_types: vec!["aws".into()],
        allowed_hosts: Vec::new(),
        account_schema: serde_json::json!({"type": "object"}),
        secrets: Vec::new(),
        description: None,
    }
}

/// Runs the probe: `calls` timed calls of each kind after a warm-up.
///
/// # Errors
/// The host cannot start, the simulator cannot be installed, or a call fails.
pub async fn run(calls: u32) -> anyhow::Result<ProviderProbe> {
    let sim = SimCloud::in_memory(Arc::new(SystemClock)).context("simulated cloud")?;
    let host = WasmHost::new(HostConfig::default(), Some(Arc::new(sim)))?;
    let started = Instant::now();
    let info = host
        .install(components::simulator_package()?)
        .await
        .context("cannot install the built-in simulator")?;
    let simulator_install_ms = started.elapsed().as_secs_f64() * 1e3;
    let account = AccountContext::new("bench", serde_json::json!({"timeScale": 0}));
    let simulator_validate = series(&host, &info.name, &account, calls).await?;
    let simulator_phases = host
        .probe(&info.name, &account, calls as usize)
        .await
        .context("simulator: phase probe")?;
    let noop_validate = match std::fs::read(components::paths::NOOP) {
        Ok(bytes) => {
            let package = ProviderPackage::verify(noop_manifest(), Digest::of(&bytes), bytes)?;
            let noop = host.install(package).await.context("cannot install noop")?;
            Some(series(&host, &noop.name, &account, calls).await?)
        }
        // Not shipped with the binary: present where it was built.
        Err(_) => None,
    };
    let native = series(&NativeNoop, "native", &account, calls).await?;
    Ok(ProviderProbe {
        calls,
        simulator_install_ms,
        simulator_over_native: simulator_validate.mean_us / native.mean_us.max(f64::MIN_POSITIVE),
        simulator_validate,
        simulator_phases,
        noop_validate,
        native,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_native_series_times_every_call() {
        let account = AccountContext::new("t", serde_json::json!({}));
        let s = series(&NativeNoop, "native", &account, 10).await.unwrap();
        assert_eq!(s.latency.count, 10);
        assert!(s.mean_us >= 0.0);
    }
}
