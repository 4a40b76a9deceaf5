//! The wasmtime-backed provider host.
//!
//! One [`wasmtime::Engine`] (async, epoch interruption, the on-disk compilation cache, the
//! pooling instance allocator); per installed provider a compiled component and an
//! [`InstancePre`]; per call a fresh [`Store`] and a fresh instance, with memory limits, an epoch
//! deadline and its own `wasi:http` hooks. Nothing of wasmtime leaves this module: the engine
//! talks to [`ProviderRuntime`].
//!
//! A fresh instance per call is a product property (a call never sees another call's memory);
//! the pooling allocator makes it cheap: instance slots are reserved once and reset between
//! calls (copy-on-write memory images) instead of being mapped and unmapped on every call.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::fleetplane::provider::log;
use crate::bindings::fleetplane::simulator::cloud;
use crate::bindings::{OperationsIndices, account_to_wit};
use crate::digest::{self, Digest};
use crate::error::{CallError, InstallError};
use crate::manifest::ProviderManifest;
use crate::outbound::{CallTag, OutboundHooks, OutboundPolicy, OutboundSettings};
use crate::probe::PhaseSample;
use crate::simcloud::SimCloud;
use crate::types::{AccountContext, OpResult, ProviderOp};

/// Settings of the provider host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Wall-clock deadline of one call, instantiation included.
    pub call_deadline: Duration,
    /// Maximum linear memory of one instance, in bytes.
    pub memory_limit_bytes: usize,
    /// Maximum concurrent calls into one provider.
    pub max_concurrent_per_provider: usize,
    /// Maximum concurrent calls for one cloud account (across providers).
    pub max_concurrent_per_account: usize,
    /// Maximum provider instances alive at once, across all providers (one per call in flight);
    /// further calls wait. Sizes the pooling allocator; keep it at least the runtime's limit of
    /// effects in flight.
    pub max_instances: usize,
    /// Use wasmtime's pooling instance allocator (slots reserved once, reset between calls).
    /// `false`, or a reservation the system refuses, means on-demand allocation (a mapping per
    /// call).
    pub pooling: bool,
    /// Epoch tick: the granularity of deadlines.
    pub epoch_tick: Duration,
    /// Where compiled components are cached across restarts (wasmtime's cache, keyed by the
    /// component's hash, the wasmtime version and the engine settings). `None`: memory only.
    pub cache_dir: Option<PathBuf>,
    /// Maximum bytes a call may log through `log` (and stderr); the rest is dropped.
    pub max_log_bytes_per_call: usize,
    /// Outbound HTTP settings.
    pub outbound: OutboundSettings,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            call_deadline: Duration::from_secs(30),
            memory_limit_bytes: 128 * 1024 * 1024,
            max_concurrent_per_provider: 256,
            max_concurrent_per_account: 64,
            max_instances: 256,
            pooling: true,
            epoch_tick: Duration::from_millis(10),
            cache_dir: None,
            max_log_bytes_per_call: 64 * 1024,
            outbound: OutboundSettings::default(),
        }
    }
}

/// A component with its manifest, its bytes checked against the recorded digest.
#[derive(Debug, Clone)]
pub struct ProviderPackage {
    /// The validated manifest.
    pub manifest: ProviderManifest,
    /// The digest the bytes were verified against.
    pub digest: Digest,
    /// The component bytes.
    pub bytes: Arc<[u8]>,
}

impl ProviderPackage {
    /// Validates the manifest and checks that `bytes` have the recorded `digest`.
    ///
    /// # Errors
    /// [`InstallError::Manifest`] for an invalid manifest, [`InstallError::Digest`] when the
    /// bytes' digest differs from `digest` (one changed byte is enough).
    pub fn verify(
        manifest: ProviderManifest,
        digest: Digest,
        bytes: impl Into<Arc<[u8]>>,
    ) -> Result<ProviderPackage, InstallError> {
        manifest.validate()?;
        let bytes = bytes.into();
        digest::verify(&bytes, &digest)?;
        Ok(ProviderPackage {
            manifest,
            digest,
            bytes,
        })
    }

    /// Reads a manifest (JSON) and a component from files and verifies the component against
    /// `digest` (the one recorded at install time).
    ///
    /// # Errors
    /// [`InstallError::Io`] when a file cannot be read, otherwise as [`ProviderPackage::verify`].
    pub fn load(
        manifest_path: &std::path::Path,
        component_path: &std::path::Path,
        digest: Digest,
    ) -> Result<ProviderPackage, InstallError> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| InstallError::Io {
                path: p.display().to_string(),
                message: e.to_string(),
            })
        };
        let manifest = ProviderManifest::parse(&read(manifest_path)?)?;
        ProviderPackage::verify(manifest, digest, read(component_path)?)
    }
}

/// A provider as listed by the host.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    /// Provider name.
    pub name: String,
    /// Provider version.
    pub version: String,
    /// WIT version targeted.
    pub wit_version: String,
    /// Component digest.
    pub digest: Digest,
    /// Cloud types served.
    pub cloud_types: Vec<String>,
    /// Allowed outbound hosts.
    pub allowed_hosts: Vec<String>,
    /// Whether the component is linked to the simulated cloud.
    pub simulated_cloud: bool,
    /// Calls made since install.
    pub calls: u64,
    /// Calls that failed in the sandbox (traps, deadlines, memory, interface), since install.
    pub sandbox_failures: u64,
    /// The last sandbox failure, if any.
    pub last_failure: Option<String>,
}

/// What the engine calls. Kept small so the wasmtime version can move behind it.
pub trait ProviderRuntime: Send + Sync {
    /// Calls `op` on `provider` for `account`.
    ///
    /// # Errors
    /// [`CallError`]: the provider's typed error, or a sandbox failure; see
    /// [`CallError::is_retryable`].
    fn call<'a>(
        &'a self,
        provider: &'a str,
        account: &'a AccountContext,
        op: ProviderOp,
    ) -> BoxFuture<'a, Result<OpResult, CallError>>;

    /// The installed providers.
    fn providers(&self) -> Vec<ProviderInfo>;

    /// The installed provider named `name`.
    fn provider(&self, name: &str) -> Option<ProviderInfo>;
}

/// Per-provider statistics ("health" in `/v1/providers`).
#[derive(Default)]
struct Stats {
    calls: AtomicU64,
    sandbox_failures: AtomicU64,
    last_failure: Mutex<Option<String>>,
}

struct Installed {
    manifest: ProviderManifest,
    digest: Digest,
    pre: InstancePre<CallState>,
    indices: OperationsIndices,
    /// Linear memories and tables one instance defines: the pool slots a call holds.
    needs: Needs,
    policy: Arc<OutboundPolicy>,
    permits: Arc<Semaphore>,
    simulated_cloud: bool,
    stats: Stats,
}

impl Installed {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: self.manifest.name.clone(),
            version: self.manifest.version.clone(),
            wit_version: self.manifest.wit_version.clone(),
            digest: self.digest,
            cloud_types: self.manifest.cloud_types.clone(),
            allowed_hosts: self.manifest.allowed_hosts.clone(),
            simulated_cloud: self.simulated_cloud,
            calls: self.stats.calls.load(Ordering::Relaxed),
            sandbox_failures: self.stats.sandbox_failures.load(Ordering::Relaxed),
            last_failure: self.stats.last_failure.lock().ok().and_then(|g| g.clone()),
        }
    }
}

/// The installed providers, by name, in memory. Persisting them is the store's job; the
/// server re-installs them at start from the recorded (manifest, digest, bytes).
#[derive(Default)]
struct ProviderRegistry {
    by_name: RwLock<HashMap<String, Arc<Installed>>>,
    /// Compiled components by digest, so re-installing the same bytes does not recompile.
    compiled: Mutex<HashMap<Digest, Component>>,
}

/// The state of one call's store.
pub(crate) struct CallState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundHooks,
    limiter: Limiter,
    provider: String,
    account: String,
    op: &'static str,
    log_budget: usize,
    redact: Vec<String>,
    sim: Option<Arc<SimCloud>>,
}

impl CallState {
    /// Replaces every secret value of the call's account in `text`.
    fn scrub(&self, text: &str) -> String {
        scrub(text, &self.redact)
    }
}

fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s.as_str(), "<redacted>");
    }
    out
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl log::Host for CallState {
    fn log(&mut self, level: log::Level, message: String) {
        if self.log_budget == 0 {
            return;
        }
        let mut message = self.scrub(&message);
        if message.len() > self.log_budget {
            let mut cut = self.log_budget;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [log budget exhausted]");
            self.log_budget = 0;
        } else {
            self.log_budget -= message.len();
        }
        let (p, a, op) = (&self.provider, &self.account, self.op);
        match level {
            log::Level::Trace => tracing::trace!(provider = %p, account = %a, op, "{message}"),
            log::Level::Debug => tracing::debug!(provider = %p, account = %a, op, "{message}"),
            log::Level::Info => tracing::info!(provider = %p, account = %a, op, "{message}"),
            log::Level::Warn => tracing::warn!(provider = %p, account = %a, op, "{message}"),
            log::Level::Error => tracing::error!(provider = %p, account = %a, op, "{message}"),
        }
    }
}

impl cloud::Host for CallState {
    fn create_cluster(
        &mut self,
        settings: cloud::AccountSettings,
        key: String,
        spec: cloud::ClusterSpec,
    ) -> Result<cloud::Operation, cloud::CloudError> {
        let sim = self.sim.as_ref().ok_or_else(no_cloud)?;
        sim.create(&settings.account, settings.time_scale, &key, spec.into())
            .map(|o| (&o).into())
            .map_err(Into::into)
    }

    fn update_cluster(
        &mut self,
        settings: cloud::AccountSettings,
        key: String,
        spec: cloud::ClusterSpec,
        replace_machines: bool,
    ) -> Result<cloud::Operation, cloud::CloudError> {
        let sim = self.sim.as_ref().ok_or_else(no_cloud)?;
        sim.update(
            &settings.account,
            settings.time_scale,
            &key,
            spec.into(),
            replace_machines,
        )
        .map(|o| (&o).into())
        .map_err(Into::into)
    }

    fn delete_cluster(
        &mut self,
        settings: cloud::AccountSettings,
        key: String,
        cluster: cloud::ClusterRef,
    ) -> Result<cloud::Operation, cloud::CloudError> {
        let sim = self.sim.as_ref().ok_or_else(no_cloud)?;
        sim.delete(
            &settings.account,
            settings.time_scale,
            &key,
            &cluster.into(),
        )
        .map(|o| (&o).into())
        .map_err(Into::into)
    }

    fn get_cluster(
        &mut self,
        settings: cloud::AccountSettings,
        cluster: cloud::ClusterRef,
    ) -> Result<cloud::ObservedState, cloud::CloudError> {
        let sim = self.sim.as_ref().ok_or_else(no_cloud)?;
        sim.describe(&settings.account, &cluster.into())
            .map(|s| (&s).into())
            .map_err(Into::into)
    }

    fn get_operation(
        &mut self,
        settings: cloud::AccountSettings,
        operation_id: String,
    ) -> Result<cloud::Operation, cloud::CloudError> {
        let sim = self.sim.as_ref().ok_or_else(no_cloud)?;
        sim.operation(&settings.account, &operation_id)
            .map(|o| (&o).into())
            .map_err(Into::into)
    }
}

fn no_cloud() -> cloud::CloudError {
    cloud::CloudError::Unavailable("the simulated cloud is not configured".into())
}

/// Store limits that remember whether the memory limit stopped the guest.
struct Limiter {
    inner: StoreLimits,
    memory_limit: usize,
    memory_exceeded: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if !allowed && desired > self.memory_limit {
            self.memory_exceeded = true;
            wasmtime::bail!("memory limit of {} bytes exceeded", self.memory_limit);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// Per-call sandbox limits: the store's limits and, with pooling, the pool's per-component
/// limits (so both allocators refuse the same components).
const MAX_CORE_INSTANCES: u32 = 32;
const MAX_MEMORIES: u32 = 8;
const MAX_TABLES: u32 = 64;
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Pool slots reserved per instance slot. A component built for wasm32-wasip2 by Rust defines
/// one linear memory and two or three tables (its own and the component adapter's shims); a
/// bigger component takes more slots per call (weighted permits), so it waits instead of
/// failing when the pool is full.
const MEMORY_SLOTS_PER_INSTANCE: u32 = 2;
const TABLE_SLOTS_PER_INSTANCE: u32 = 4;

/// Wasm page size: the pool's memory limit is a whole number of pages.
const WASM_PAGE: usize = 64 * 1024;

/// Bytes of a slot's linear memory kept mapped between calls and reset in place: a Rust
/// component's 1 MiB shadow stack, its data and the start of its heap.
const MEMORY_KEEP_RESIDENT: usize = 4 << 20;
/// Bytes of a slot's tables kept mapped between calls (8 bytes per element).
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// How the host allocates provider instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Allocator {
    /// wasmtime's pooling allocator: slots reserved at start, reset between calls.
    Pooling,
    /// A mapping per instance, made and unmapped on every call (pooling disabled or its
    /// reservation refused).
    OnDemand,
}

impl std::fmt::Display for Allocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Allocator::Pooling => "pooling",
            Allocator::OnDemand => "on-demand",
        })
    }
}

/// The pool slots one instance of a component needs.
#[derive(Debug, Clone, Copy)]
struct Needs {
    memories: u32,
    tables: u32,
}

/// How many instances, memories and tables may be alive at once (the pool's size; the same
/// accounting with on-demand allocation).
#[derive(Debug, Clone, Copy)]
struct PoolShape {
    instances: u32,
    memories: u32,
    tables: u32,
}

impl PoolShape {
    fn new(max_instances: usize) -> PoolShape {
        let instances = u32::try_from(max_instances.max(1)).unwrap_or(u32::MAX);
        PoolShape {
            instances,
            memories: instances
                .saturating_mul(MEMORY_SLOTS_PER_INSTANCE)
                .max(MAX_MEMORIES),
            tables: instances
                .saturating_mul(TABLE_SLOTS_PER_INSTANCE)
                .max(MAX_TABLES),
        }
    }

    /// The pooling allocator's settings: every total a call can need, per-component limits
    /// equal to the store's, linear memories capped at `memory_limit` bytes.
    fn pooling_config(&self, memory_limit: usize) -> PoolingAllocationConfig {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(self.instances)
            .total_stacks(self.instances)
            .total_core_instances(self.instances.saturating_mul(MAX_CORE_INSTANCES))
            .max_core_instances_per_component(MAX_CORE_INSTANCES)
            .total_memories(self.memories)
            .max_memories_per_component(MAX_MEMORIES)
            .max_memories_per_module(MAX_MEMORIES)
            .max_memory_size(memory_limit)
            .total_tables(self.tables)
            .max_tables_per_component(MAX_TABLES)
            .max_tables_per_module(MAX_TABLES)
            .table_elements(MAX_TABLE_ELEMENTS);
        // Keep the pages a call touched mapped and reset them in place (found with the
        // PAGEMAP_SCAN ioctl, Linux 6.7+) instead of `madvise`-ing them away and faulting them
        // in again on the next call. Without the ioctl wasmtime would `memset` the whole
        // kept range on every reset, so the default (`madvise`) stays there.
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(wasmtime::Enabled::Yes)
                .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT.min(memory_limit))
                .table_keep_resident(TABLE_KEEP_RESIDENT);
        }
        pool
    }
}

/// Permits for pool slots, acquired before instantiation so a call waits for a free slot
/// instead of failing with "pool exhausted".
struct Slots {
    instances: Arc<Semaphore>,
    memories: Arc<Semaphore>,
    tables: Arc<Semaphore>,
}

/// Slots held by one call; released when dropped (after its store).
struct HeldSlots {
    _instance: tokio::sync::OwnedSemaphorePermit,
    _memories: tokio::sync::OwnedSemaphorePermit,
    _tables: tokio::sync::OwnedSemaphorePermit,
}

impl Slots {
    fn new(shape: PoolShape) -> Slots {
        let permits = |n: u32| Arc::new(Semaphore::new(n as usize));
        Slots {
            instances: permits(shape.instances),
            memories: permits(shape.memories),
            tables: permits(shape.tables),
        }
    }

    /// Waits for the slots of one instance needing `needs`. Always acquired in the same order
    /// (instance, memories, tables), so waiting calls cannot deadlock.
    async fn acquire(&self, needs: Needs) -> Result<HeldSlots, tokio::sync::AcquireError> {
        Ok(HeldSlots {
            _instance: self.instances.clone().acquire_owned().await?,
            _memories: self
                .memories
                .clone()
                .acquire_many_owned(needs.memories)
                .await?,
            _tables: self.tables.clone().acquire_many_owned(needs.tables).await?,
        })
    }
}

struct Inner {
    engine: Engine,
    allocator: Allocator,
    slots: Slots,
    linker: Linker<CallState>,
    sim_linker: Linker<CallState>,
    registry: ProviderRegistry,
    accounts: Mutex<HashMap<String, Arc<Semaphore>>>,
    config: HostConfig,
    outbound: Arc<OutboundSettings>,
    simcloud: Option<Arc<SimCloud>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The provider host. Cheap to clone; every clone shares the same providers.
#[derive(Clone)]
pub struct WasmHost {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WasmHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmHost")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the provider host: {0}")]
pub struct HostStartError(String);

/// Import prefixes the sandbox never provides, with the reason given to the vendor.
const REFUSED_IMPORTS: [(&str, &str); 2] = [
    ("wasi:filesystem/", "the provider sandbox has no filesystem"),
    (
        "wasi:sockets/",
        "the provider sandbox has no sockets; use wasi:http/outgoing-handler",
    ),
];

impl WasmHost {
    /// Starts a host: builds the engine (with the pooling allocator unless disabled or refused,
    /// see [`HostConfig::pooling`]) and linkers and starts the epoch ticker thread.
    /// `simcloud` is the simulated cloud the built-in simulator provider drives, if any.
    ///
    /// # Errors
    /// [`HostStartError`] when the engine or the cache cannot be set up.
    pub fn new(
        config: HostConfig,
        simcloud: Option<Arc<SimCloud>>,
    ) -> Result<Self, HostStartError> {
        let err = |e: wasmtime::Error| HostStartError(format!("{e:#}"));
        let shape = PoolShape::new(config.max_instances);
        let (engine, allocator) = build_engine(&config, shape)?;

        let mut linker = Linker::<CallState>::new(&engine);
        link_sandbox(&mut linker).map_err(err)?;
        let mut sim_linker = Linker::<CallState>::new(&engine);
        link_sandbox(&mut sim_linker).map_err(err)?;
        cloud::add_to_linker::<CallState, HasSelf<CallState>>(&mut sim_linker, |s| s)
            .map_err(err)?;

        let stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.weak(), config.epoch_tick, stop.clone())?;
        let outbound = Arc::new(config.outbound.clone());
        Ok(WasmHost {
            inner: Arc::new(Inner {
                engine,
                allocator,
                slots: Slots::new(shape),
                linker,
                sim_linker,
                registry: ProviderRegistry::default(),
                accounts: Mutex::new(HashMap::new()),
                config,
                outbound,
                simcloud,
                stop,
            }),
        })
    }

    /// The simulated cloud, if the host has one.
    pub fn simcloud(&self) -> Option<&Arc<SimCloud>> {
        self.inner.simcloud.as_ref()
    }

    /// How this host allocates provider instances ([`Allocator::OnDemand`] when pooling was
    /// disabled or its reservation refused).
    pub fn allocator(&self) -> Allocator {
        self.inner.allocator
    }

    /// Compiles, links and registers a verified package under its manifest name, replacing a
    /// provider of the same name. The simulated cloud is linked only for the built-in simulator
    /// component (recognised by digest) and only when the host has a simulated cloud.
    ///
    /// # Errors
    /// [`InstallError::Compile`] for bytes that are not a component; [`InstallError::Interface`]
    /// for a component importing what the sandbox does not provide (filesystem, sockets, the
    /// simulated cloud for anyone but the simulator) or not exporting
    /// `fleetplane:provider/operations`.
    pub async fn install(&self, package: ProviderPackage) -> Result<ProviderInfo, InstallError> {
        let inner = self.inner.clone();
        let digest = package.digest;
        let cached = inner
            .registry
            .compiled
            .lock()
            .ok()
            .and_then(|m| m.get(&digest).cloned());
        let component = match cached {
            Some(c) => c,
            None => {
                let engine = inner.engine.clone();
                let bytes = package.bytes.clone();
                let component =
                    tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
                        .await
                        .map_err(|e| InstallError::Compile(e.to_string()))?
                        .map_err(|e| InstallError::Compile(format!("{e:#}")))?;
                if let Ok(mut m) = inner.registry.compiled.lock() {
                    m.insert(digest, component.clone());
                }
                component
            }
        };
        let imports: Vec<String> = component
            .component_type()
            .imports(&inner.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        for name in &imports {
            if let Some((_, why)) = REFUSED_IMPORTS.iter().find(|(p, _)| name.starts_with(p)) {
                return Err(InstallError::Interface(format!(
                    "it imports `{name}`: {why}"
                )));
            }
        }
        let wants_cloud = imports
            .iter()
            .any(|n| n.starts_with("fleetplane:simulator/cloud"));
        let simulated_cloud = wants_cloud
            && inner.simcloud.is_some()
            && crate::components::is_builtin_simulator(&digest);
        if wants_cloud && !simulated_cloud {
            return Err(InstallError::Interface(
                "it imports `fleetplane:simulator/cloud`, which only the built-in simulator may \
                 use"
                .into(),
            ));
        }
        let linker = if simulated_cloud {
            &inner.sim_linker
        } else {
            &inner.linker
        };
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| InstallError::Interface(format!("{e:#}")))?;
        let indices = OperationsIndices::new(&pre).map_err(|e| {
            InstallError::Interface(format!(
                "it does not export fleetplane:provider/operations@{}: {e:#}",
                crate::manifest::WIT_VERSION
            ))
        })?;
        let needs = needs_of(&component)?;
        let manifest = package.manifest;
        let policy = Arc::new(OutboundPolicy::new(
            &manifest.name,
            manifest.allowed_hosts(),
            inner.outbound.clone(),
        ));
        let installed = Arc::new(Installed {
            permits: Arc::new(Semaphore::new(
                inner.config.max_concurrent_per_provider.max(1),
            )),
            manifest,
            digest,
            pre,
            indices,
            needs,
            policy,
            simulated_cloud,
            stats: Stats::default(),
        });
        let info = installed.info();
        if let Ok(mut map) = inner.registry.by_name.write() {
            map.insert(info.name.clone(), installed);
        }
        tracing::info!(
            provider = %info.name,
            version = %info.version,
            digest = %info.digest,
            memories = needs.memories,
            tables = needs.tables,
            "provider installed"
        );
        Ok(info)
    }

    /// Removes a provider; calls in flight finish. Returns whether it was installed.
    pub fn remove(&self, name: &str) -> bool {
        self.inner
            .registry
            .by_name
            .write()
            .map(|mut m| m.remove(name).is_some())
            .unwrap_or(false)
    }

    fn account_permits(&self, account: &str) -> Arc<Semaphore> {
        let mut map = match self.inner.accounts.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(account.to_string())
            .or_insert_with(|| {
                Arc::new(Semaphore::new(
                    self.inner.config.max_concurrent_per_account.max(1),
                ))
            })
            .clone()
    }

    async fn call_inner(
        &self,
        provider: &str,
        account: &AccountContext,
        op: ProviderOp,
    ) -> Result<OpResult, CallError> {
        self.call_timed(provider, account, op, None).await
    }

    /// One call: the only copy of the call path. `phases`, when given, receives how long each
    /// phase of this call took ([`WasmHost::probe`]).
    pub(crate) async fn call_timed(
        &self,
        provider: &str,
        account: &AccountContext,
        op: ProviderOp,
        phases: Option<&mut PhaseSample>,
    ) -> Result<OpResult, CallError> {
        let installed = self
            .inner
            .registry
            .by_name
            .read()
            .ok()
            .and_then(|m| m.get(provider).cloned())
            .ok_or_else(|| CallError::UnknownProvider(provider.to_string()))?;
        let host_failure = |message: String| CallError::Host {
            provider: provider.to_string(),
            message,
        };
        let _provider_permit = installed
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| host_failure(e.to_string()))?;
        let _account_permit = self
            .account_permits(&account.name)
            .acquire_owned()
            .await
            .map_err(|e| host_failure(e.to_string()))?;
        // Declared before the store, so dropped after it: the slots are back in the pool first.
        let _slots = self
            .inner
            .slots
            .acquire(installed.needs)
            .await
            .map_err(|e| host_failure(e.to_string()))?;
        installed.stats.calls.fetch_add(1, Ordering::Relaxed);

        let config = &self.inner.config;
        let op_name = op.name();
        let started = Instant::now();
        let stderr = MemoryOutputPipe::new(8 * 1024);
        let state = CallState {
            wasi: WasiCtxBuilder::new().stderr(stderr.clone()).build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks {
                policy: installed.policy.clone(),
                tag: CallTag {
                    account: account.name.clone(),
                    op: op_name,
                },
            },
            limiter: Limiter {
                inner: StoreLimitsBuilder::new()
                    .memory_size(config.memory_limit_bytes)
                    .instances(MAX_CORE_INSTANCES as usize)
                    .tables(MAX_TABLES as usize)
                    .memories(MAX_MEMORIES as usize)
                    .table_elements(MAX_TABLE_ELEMENTS)
                    .build(),
                memory_limit: config.memory_limit_bytes,
                memory_exceeded: false,
            },
            provider: provider.to_string(),
            account: account.name.clone(),
            op: op_name,
            log_budget: config.max_log_bytes_per_call,
            redact: account
                .secrets
                .iter()
                .map(|(_, v)| v.expose().to_string())
                .collect(),
            sim: if installed.simulated_cloud {
                self.inner.simcloud.clone()
            } else {
                None
            },
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        let ticks = (config.call_deadline.as_nanos() / config.epoch_tick.as_nanos().max(1))
            .clamp(1, u128::from(u64::MAX)) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let store_ready = Instant::now();

        let mut instantiated = None;
        let run = async {
            let instance = installed.pre.instantiate_async(&mut store).await?;
            let guest = installed.indices.load(&mut store, &instance)?;
            instantiated = Some(Instant::now());
            let account_wit = account_to_wit(account);
            let result = match &op {
                ProviderOp::ValidateAccount => guest
                    .call_validate_account(&mut store, &account_wit)
                    .await?
                    .map(|a| OpResult::Account(a.into())),
                ProviderOp::Create { key, spec } => guest
                    .call_create(&mut store, &account_wit, key, &spec.into())
                    .await?
                    .map(|o| OpResult::Operation(o.into())),
                ProviderOp::Update {
                    key,
                    spec,
                    replace_machines,
                } => {
                    let request = crate::bindings::fleetplane::provider::types::UpdateRequest {
                        spec: spec.into(),
                        replace_machines: *replace_machines,
                    };
                    guest
                        .call_update(&mut store, &account_wit, key, &request)
                        .await?
                        .map(|o| OpResult::Operation(o.into()))
                }
                ProviderOp::Delete { key, cluster } => guest
                    .call_delete(&mut store, &account_wit, key, &cluster.into())
                    .await?
                    .map(|o| OpResult::Operation(o.into())),
                ProviderOp::Describe { cluster } => guest
                    .call_describe(&mut store, &account_wit, &cluster.into())
                    .await?
                    .map(|s| OpResult::State(Box::new(s.into()))),
                ProviderOp::Poll { operation_id } => guest
                    .call_poll(&mut store, &account_wit, operation_id)
                    .await?
                    .map(|o| OpResult::Operation(o.into())),
            };
            Ok::<_, wasmtime::Error>(result)
        };
        // The epoch deadline stops guest code; this timeout also bounds time the call spends
        // in the host (waiting on HTTP), with a little grace so the epoch trap wins when both
        // fire.
        let outcome = tokio::time::timeout(config.call_deadline + config.epoch_tick * 2, run).await;
        let returned = Instant::now();
        let secrets = store.data().redact.clone();
        let memory_exceeded = store.data().limiter.memory_exceeded;
        let teardown = Instant::now();
        drop(store);
        if let Some(phases) = phases {
            let instantiated = instantiated.unwrap_or(returned);
            *phases = PhaseSample {
                store: store_ready - started,
                instantiate: instantiated - store_ready,
                round_trip: returned - instantiated,
                teardown: teardown.elapsed(),
            };
        }
        let failure = match outcome {
            Ok(Ok(Ok(result))) => return Ok(result),
            Ok(Ok(Err(error))) => {
                let mut error: crate::types::ProviderError = error.into();
                scrub_provider_error(&mut error, &secrets);
                return Err(CallError::Provider {
                    provider: provider.to_string(),
                    error,
                });
            }
            Err(_) => CallError::Deadline {
                provider: provider.to_string(),
                op: op_name,
                deadline: config.call_deadline,
            },
            Ok(Err(e)) => classify(
                provider,
                op_name,
                e,
                memory_exceeded,
                config,
                &stderr,
                &secrets,
            ),
        };
        installed
            .stats
            .sandbox_failures
            .fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = installed.stats.last_failure.lock() {
            *last = Some(failure.to_string());
        }
        tracing::warn!(provider, account = %account.name, op = op_name, "provider call failed: {failure}");
        Err(failure)
    }
}

/// Builds the engine: pooling allocator first (when enabled), on-demand if its reservation is
/// refused (for example under a tight address-space limit), with a log line saying so.
fn build_engine(
    config: &HostConfig,
    shape: PoolShape,
) -> Result<(Engine, Allocator), HostStartError> {
    let err = |e: wasmtime::Error| HostStartError(format!("{e:#}"));
    let mut wconfig = wasmtime::Config::new();
    wconfig.wasm_component_model(true);
    wconfig.epoch_interruption(true);
    // Bounded guest stacks: deep recursion traps instead of exhausting host memory.
    wconfig.max_wasm_stack(1024 * 1024);
    if let Some(dir) = &config.cache_dir {
        std::fs::create_dir_all(dir).map_err(|e| HostStartError(e.to_string()))?;
        let dir = std::path::absolute(dir).map_err(|e| HostStartError(e.to_string()))?;
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(dir);
        wconfig.cache(Some(wasmtime::Cache::new(cache).map_err(err)?));
    }
    if config.pooling {
        let memory_limit = config
            .memory_limit_bytes
            .max(1)
            .div_ceil(WASM_PAGE)
            .saturating_mul(WASM_PAGE);
        let mut pooled = wconfig.clone();
        // Each memory slot reserves the per-call limit (plus the default guard region) rather
        // than 4 GiB, so a host reserves ~90 GiB of address space at the default sizes and
        // many hosts fit in one process; the price is an explicit bounds check on accesses.
        pooled.memory_reservation(memory_limit as u64);
        // Instantiation maps the module's initial memory image copy-on-write; a slot's
        // memory is reset to it when the call ends (wasmtime's default, stated because the
        // isolation between calls relies on the reset).
        pooled.memory_init_cow(true);
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(
            shape.pooling_config(memory_limit),
        ));
        match Engine::new(&pooled) {
            Ok(engine) => return Ok((engine, Allocator::Pooling)),
            Err(e) => tracing::warn!(
                instances = shape.instances,
                memories = shape.memories,
                tables = shape.tables,
                "the pooling allocator's reservation was refused ({e:#}); provider instances \
                 are allocated on demand"
            ),
        }
    }
    let engine = Engine::new(&wconfig).map_err(err)?;
    Ok((engine, Allocator::OnDemand))
}

/// The pool slots one instance of `component` takes.
///
/// # Errors
/// [`InstallError::Interface`] when it defines more memories or tables than the sandbox allows,
/// or instantiates an imported core module (its needs are unknown; the sandbox provides none).
fn needs_of(component: &Component) -> Result<Needs, InstallError> {
    let required = component.resources_required().ok_or_else(|| {
        InstallError::Interface(
            "it instantiates an imported core module, which the sandbox does not provide".into(),
        )
    })?;
    if required.num_memories > MAX_MEMORIES || required.num_tables > MAX_TABLES {
        return Err(InstallError::Interface(format!(
            "it defines {} linear memories and {} tables; the sandbox allows at most {} and {}",
            required.num_memories, required.num_tables, MAX_MEMORIES, MAX_TABLES
        )));
    }
    Ok(Needs {
        memories: required.num_memories,
        tables: required.num_tables,
    })
}

fn scrub_provider_error(error: &mut crate::types::ProviderError, secrets: &[String]) {
    use crate::types::ProviderError as E;
    match error {
        E::InvalidConfig { problems } => {
            for p in problems {
                p.message = scrub(&p.message, secrets);
            }
        }
        E::NotFound { message }
        | E::Conflict { message }
        | E::Throttled { message, .. }
        | E::Transient { message }
        | E::Permanent { message } => *message = scrub(message, secrets),
    }
}

fn classify(
    provider: &str,
    op: &'static str,
    e: wasmtime::Error,
    memory_exceeded: bool,
    config: &HostConfig,
    stderr: &MemoryOutputPipe,
    secrets: &[String],
) -> CallError {
    let provider = provider.to_string();
    if memory_exceeded {
        return CallError::MemoryLimit {
            provider,
            op,
            limit_bytes: config.memory_limit_bytes,
        };
    }
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        if *trap == wasmtime::Trap::Interrupt {
            return CallError::Deadline {
                provider,
                op,
                deadline: config.call_deadline,
            };
        }
        let output = String::from_utf8_lossy(&stderr.contents())
            .trim()
            .to_string();
        let mut message = format!("{trap}");
        if !output.is_empty() {
            let tail: String = output
                .chars()
                .rev()
                .take(1_000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            message.push_str(&format!("; stderr: {tail}"));
        }
        return CallError::Trap {
            provider,
            op,
            message: scrub(&message, secrets),
        };
    }
    let text = scrub(&format!("{e:#}"), secrets);
    if text.contains("type mismatch") || text.contains("expected") && text.contains("found") {
        return CallError::InterfaceMismatch {
            provider,
            message: text,
        };
    }
    // A host function failing (for example a wasi:http resource error) traps the guest too.
    CallError::Trap {
        provider,
        op,
        message: text,
    }
}

impl ProviderRuntime for WasmHost {
    fn call<'a>(
        &'a self,
        provider: &'a str,
        account: &'a AccountContext,
        op: ProviderOp,
    ) -> BoxFuture<'a, Result<OpResult, CallError>> {
        Box::pin(self.call_inner(provider, account, op))
    }

    fn providers(&self) -> Vec<ProviderInfo> {
        let mut list: Vec<ProviderInfo> = self
            .inner
            .registry
            .by_name
            .read()
            .map(|m| m.values().map(|i| i.info()).collect())
            .unwrap_or_default();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    fn provider(&self, name: &str) -> Option<ProviderInfo> {
        self.inner
            .registry
            .by_name
            .read()
            .ok()?
            .get(name)
            .map(|i| i.info())
    }
}

/// Links what the sandbox grants: `wasi:http` (through the checking hooks), clocks, random,
/// `wasi:io`, stdio (stdin empty, stdout/stderr captured and capped) and `log`. Also
/// `wasi:cli/environment` (always empty: no variables, no arguments), `wasi:cli/exit` (ends
/// the call with a trap) and `wasi:cli/terminal-*` (never a terminal), because Rust's standard
/// library imports them in every component.
/// Never the filesystem or sockets.
fn link_sandbox(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::WasiCliView;
    use wasmtime_wasi::p2::bindings::cli;
    wasmtime_wasi_http::p2::add_to_linker_async(linker)?;
    cli::environment::add_to_linker::<CallState, wasmtime_wasi::cli::WasiCli>(
        linker,
        <CallState as WasiCliView>::cli,
    )?;
    cli::exit::add_to_linker::<CallState, wasmtime_wasi::cli::WasiCli>(
        linker,
        <CallState as WasiCliView>::cli,
    )?;
    // Rust's standard library asks whether stdio is a terminal; the answer is always no.
    cli::terminal_input::add_to_linker::<CallState, wasmtime_wasi::cli::WasiCli>(
        linker,
        <CallState as WasiCliView>::cli,
    )?;
    cli::terminal_output::add_to_linker::<CallState, wasmtime_wasi::cli::WasiCli>(
        linker,
        <CallState as WasiCliView>::cli,
    )?;
    cli::terminal_stdin::add_to_linker::<CallState, wasmtime_wasi::cli::WasiCli>(
        linker,
        <CallState as WasiCliView>::cli,
    )?;
    cli::terminal_stdout::add_to_linker::<CallState, wasmtime_wasi::cli::WasiCli>(
        linker,
        <CallState as WasiCliView>::cli,
    )?;
    cli::terminal_stderr::add_to_linker::<CallState, wasmtime_wasi::cli::WasiCli>(
        linker,
        <CallState as WasiCliView>::cli,
    )?;
    log::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)?;
    Ok(())
}

fn spawn_ticker(
    engine: wasmtime::EngineWeak,
    tick: Duration,
    stop: Arc<AtomicBool>,
) -> Result<(), HostStartError> {
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                match engine.upgrade() {
                    Some(e) => e.increment_epoch(),
                    None => break,
                }
            }
        })
        .map(|_| ())
        .map_err(|e| HostStartError(format!("epoch ticker: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with an exported 80-page (5 MiB) memory whose byte 0 is 42 (a data
    /// segment, so the memory has a copy-on-write image):
    /// `(module (memory (export "memory") 80) (data (i32.const 0) "\2a"))`.
    const IMAGE_MODULE: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
        0x05, 0x03, 0x01, 0x00, 0x50, // memory section: one memory, min 80 pages
        0x07, 0x0a, 0x01, 0x06, b'm', b'e', b'm', b'o', b'r', b'y', 0x02,
        0x00, // export section: "memory" = memory 0
        0x0b, 0x07, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x01,
        0x2a, // data section: at i32.const 0, one byte 0x2a
    ];

    #[test]
    fn a_reused_pool_slot_starts_from_the_module_image() {
        let host = WasmHost::new(
            HostConfig {
                max_instances: 1,
                ..HostConfig::default()
            },
            None,
        )
        .expect("host starts");
        assert_eq!(host.allocator(), Allocator::Pooling);
        let engine = &host.inner.engine;
        let module = wasmtime::Module::new(engine, IMAGE_MODULE).expect("module compiles");
        // In the image; zero page inside the kept-resident range; beyond it.
        let offsets = [0usize, 70_000, MEMORY_KEEP_RESIDENT + 300_000];
        let mut slot = None;
        for round in 0..3 {
            let mut store = Store::new(engine, ());
            let instance = wasmtime::Instance::new(&mut store, &module, &[]).expect("instantiates");
            let memory = instance
                .get_memory(&mut store, "memory")
                .expect("exported memory");
            let base = memory.data_ptr(&store) as usize;
            if let Some(previous) = slot {
                // The same slot (and mapping) as the previous store: what it wrote is gone.
                assert_eq!(base, previous, "round {round} got another slot");
            }
            slot = Some(base);
            let data = memory.data_mut(&mut store);
            assert_eq!(
                offsets.map(|o| data[o]),
                [0x2a, 0, 0],
                "round {round} saw the previous store's writes"
            );
            for o in offsets {
                data[o] = 0xa5;
            }
        }
    }

    #[test]
    fn pooling_can_be_turned_off() {
        let host = WasmHost::new(
            HostConfig {
                pooling: false,
                ..HostConfig::default()
            },
            None,
        )
        .expect("host starts");
        assert_eq!(host.allocator(), Allocator::OnDemand);
    }

    #[test]
    fn a_pool_too_big_to_reserve_falls_back_to_on_demand() {
        // 2^24 instances: petabytes of address space, more than any x86-64/aarch64 process has.
        let host = WasmHost::new(
            HostConfig {
                max_instances: 1 << 24,
                ..HostConfig::default()
            },
            None,
        )
        .expect("host starts anyway");
        assert_eq!(host.allocator(), Allocator::OnDemand);
    }

    #[test]
    fn the_pool_has_room_for_the_largest_component_the_sandbox_allows() {
        for instances in [0, 1, 3, 256, usize::MAX] {
            let shape = PoolShape::new(instances);
            assert!(shape.instances >= 1);
            assert!(shape.memories >= MAX_MEMORIES, "{instances}: {shape:?}");
            assert!(shape.tables >= MAX_TABLES, "{instances}: {shape:?}");
        }
        let shape = PoolShape::new(256);
        assert_eq!(
            (shape.instances, shape.memories, shape.tables),
            (256, 512, 1024)
        );
    }
}
