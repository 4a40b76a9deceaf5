//! Wires the Fleetplane control plane together: configuration, logging, the store in the data
//! directory, the bootstrap of an empty store, the HTTP server and graceful shutdown.

pub mod config;

pub use config::{Config, ConfigError, LogFormat, ServerArgs};
/// The provider host, for the CLI's `provider test` (the conformance kit runs locally).
pub use fleetplane_wasm_host as wasm_host;

use anyhow::Context;
use fleetplane_api::{ApiSettings, AppState};
use fleetplane_store::RedbStorage;
use std::path::Path;
use std::sync::Arc;

/// Name of the database file in the data directory.
pub const DATABASE_FILE: &str = "fleetplane.redb";
/// Name of the file the bootstrap writes the admin API key to.
pub const ADMIN_KEY_FILE: &str = "admin-api-key";
/// Name of the file the bootstrap writes the admin console password to.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";
/// Name of the key file sealing secrets at rest (mode 0600).
pub const SECRET_KEY_FILE: &str = "secret-key";
/// Directory of installed provider components (`<sha256>.wasm`).
pub const PROVIDERS_DIR: &str = "providers";
/// Directory of wasmtime's compilation cache.
pub const CACHE_DIR: &str = "cache";
/// The simulated cloud's database.
pub const SIMCLOUD_FILE: &str = "simcloud.redb";
/// The time scale of the bootstrap `simulator` account (provisioning in about 6 s).
pub const BOOTSTRAP_TIME_SCALE: f64 = 0.1;

/// Runs `fleetplane server` until SIGINT or SIGTERM.
///
/// # Errors
/// Configuration, data-directory, store or listen failures, with context.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config = Config::load(&args, std::env::vars())?;
    init_logging(&config)?;
    serve(config, shutdown_signal()).await
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .with_context(|| format!("invalid log level {:?}", config.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second init (tests running several servers in one process) keeps the first subscriber.
    drop(result);
    Ok(())
}

/// Writes `contents` to `path` readable only by the owner (0600).
fn write_secret_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

/// Serves with `config` until `shutdown` completes.
///
/// # Errors
/// Data-directory, store or listen failures.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let db_path = config.data_dir.join(DATABASE_FILE);
    let cache = config.db_cache_mib.max(1).saturating_mul(1024 * 1024);
    let storage =
        tokio::task::spawn_blocking(move || RedbStorage::open_with_cache(&db_path, cache))
            .await?
            .context("cannot open the store")?;
    let settings = ApiSettings {
        max_body_bytes: config.max_body_bytes,
        rate_per_key: config.rate_limit_per_key,
        rate_per_address: config.rate_limit_per_address,
        burst: config.rate_limit_burst,
        max_page: config.max_page_size,
        ..ApiSettings::default()
    };
    let state = AppState::new(Arc::new(storage), settings);
    let key = std::env::var("FLEETPLANE_BOOTSTRAP_API_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty());
    let password = std::env::var("FLEETPLANE_BOOTSTRAP_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let boot =
        fleetplane_api::identity::bootstrap(&state, key.map(|k| k.trim().to_owned()), password)
            .await
            .map_err(|e| anyhow::anyhow!("bootstrap failed: {}", e.error))?;
    if let Some(b) = &boot {
        let key_file = config.data_dir.join(ADMIN_KEY_FILE);
        let pw_file = config.data_dir.join(ADMIN_PASSWORD_FILE);
        write_secret_file(&key_file, &b.api_key)?;
        write_secret_file(&pw_file, &b.password)?;
        tracing::info!(
            key_file = %key_file.display(),
            password_file = %pw_file.display(),
            "bootstrapped an empty store: tenant admin `admin`; API key and console password written (mode 0600)"
        );
    }
    start_providers(&config, &state).await?;
    if boot.is_some() {
        fleetplane_api::cloud_accounts::create_simulator_account(
            &state,
            "default",
            "simulator",
            BOOTSTRAP_TIME_SCALE,
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!("bootstrap of cloud account `simulator` failed: {}", e.error)
        })?;
    }
    let (stop_runtime, runtime_task, runtime_threads) =
        start_runtime(&state, config.runtime_nice).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let app = fleetplane_api::router_with(state.clone(), fleetplane_console::routes());
    state.set_ready(true);
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "listening on {addr}");
    let ready = state.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        ready.set_ready(false);
        tracing::info!("shutting down: finishing requests in flight");
    })
    .await
    .context("server failed")?;
    // The runtime stops between batches: whatever it committed is durable, the rest is
    // picked up from the inboxes, timers and outbox at the next start.
    let _ = stop_runtime.send(());
    if let Err(e) = runtime_task.await {
        tracing::error!(error = %e, "the workflow runtime task failed");
    }
    drop(runtime_threads);
    tracing::info!("stopped");
    Ok(())
}

/// The JSON body of `POST /v1/providers` (the component in base64), for clients without
/// multipart support such as the CLI.
pub fn provider_install_body(
    manifest: serde_json::Value,
    component: &[u8],
    digest: Option<&str>,
) -> serde_json::Value {
    use base64::Engine as _;
    let mut body = serde_json::json!({
        "manifest": manifest,
        "component": base64::engine::general_purpose::STANDARD.encode(component),
    });
    if let Some(d) = digest {
        body["digest"] = d.into();
    }
    body
}

/// Starts the provider host (compilation cache, simulated cloud, outbound audit), installs the
/// built-in simulator and every recorded provider (refusing, with an error in the log, any whose
/// component file changed), and attaches it to the API.
async fn start_providers(config: &Config, state: &AppState) -> anyhow::Result<()> {
    use fleetplane_wasm_host::{HostConfig, OutboundSettings, SimCloud, SystemClock, WasmHost};
    let dir = &config.data_dir;
    let cipher =
        fleetplane_api::cloud_accounts::SecretCipher::load_or_create(&dir.join(SECRET_KEY_FILE))?;
    let sim_path = dir.join(SIMCLOUD_FILE);
    let simcloud =
        tokio::task::spawn_blocking(move || SimCloud::open(&sim_path, Arc::new(SystemClock)))
            .await?
            .context("cannot open the simulated cloud")?;
    let host = WasmHost::new(
        HostConfig {
            cache_dir: Some(dir.join(CACHE_DIR)),
            outbound: OutboundSettings {
                audit: Some(outbound_audit(state.clone())),
                ..OutboundSettings::default()
            },
            ..HostConfig::default()
        },
        Some(Arc::new(simcloud)),
    )?;
    let registry =
        fleetplane_api::providers::ProviderRegistry::new(host, dir.join(PROVIDERS_DIR), cipher)
            .context("cannot create the providers directory")?;
    registry
        .install_builtin()
        .await
        .context("cannot install the built-in simulator")?;
    let refused = registry
        .install_recorded(state)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the installed providers: {}", e.error))?;
    if !refused.is_empty() {
        tracing::error!(
            count = refused.len(),
            "some providers were refused and are unhealthy; reinstall them"
        );
    }
    state.set_providers(Arc::new(registry));
    Ok(())
}

/// Opens the workflow runtime over the API's store (it owns the run tables), registers the
/// built-in and submitted definitions, attaches its client to the API and starts
/// `Runtime::serve` on threads of its own ([`RuntimeThreads`]). Provider calls go through the
/// provider host with the account named by the run's `inputs.cloudAccount`; the other effects
/// through [`fleetplane_api::workflows::ApiEffects`] (docs/runtime.md, "API"). Returns the stop
/// switch, the task and the threads (which must outlive the task).
async fn start_runtime(
    state: &AppState,
    nice: i32,
) -> anyhow::Result<(
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
    RuntimeThreads,
)> {
    use fleetplane_api::effects::{ApiEffects, ClusterResolver};
    use fleetplane_runtime::{ProviderExecutor, Runtime, RuntimeConfig, SystemClock};
    let registry = state
        .providers()
        .map_err(|e| anyhow::anyhow!("{}", e.error))?
        .clone();
    let executor = ProviderExecutor::new(
        Arc::new(registry.host().clone()),
        Arc::new(ClusterResolver::new(state.clone())),
        Arc::new(ApiEffects::new(state.clone())),
    );
    let store = state.store.clone();
    let runtime = tokio::task::spawn_blocking(move || {
        Runtime::open(
            store,
            Arc::new(SystemClock),
            Arc::new(executor),
            RuntimeConfig::default(),
        )
    })
    .await?
    .context("cannot open the workflow runtime")?
    .with_hook(fleetplane_api::lifecycle::Lifecycle::new(state.clone()));
    fleetplane_api::workflows::attach(state, runtime.client())
        .await
        .map_err(|e| anyhow::anyhow!("cannot load workflow definitions: {}", e.error))?;
    let threads = RuntimeThreads::start(nice)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = threads.spawn(runtime.serve(async move {
        let _ = stopped.await;
    }));
    Ok((stop, task, threads))
}

/// The workflow runtime's own tokio runtime: its batches, provider calls and effects run on
/// these threads (workers and blocking pool), so a batch or a render never holds a thread an
/// API connection is waiting for (docs/configuration.md, "The runtime's threads"). With
/// `runtime-nice` above 0 they run that many nice steps below the API's, so that when both want
/// the cores a request is served first and the rollout takes what is left.
struct RuntimeThreads(Option<tokio::runtime::Runtime>);

/// At most this many threads for the runtime's blocking work (its batches, the effects'
/// reads and renders). tokio's default, 512, let a rollout grow the pool to one thread per
/// effect slot, and each thread keeps its own allocator heap: resident memory grew with the
/// threads, not with the work (docs/configuration.md, "The runtime's threads").
const RUNTIME_BLOCKING_THREADS: usize = 16;

impl RuntimeThreads {
    fn start(nice: i32) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .thread_name("fleetplane-runtime")
            .max_blocking_threads(RUNTIME_BLOCKING_THREADS)
            .enable_all()
            .on_thread_start(move || lower_thread_priority(nice))
            .build()
            .context("cannot start the workflow runtime's threads")?;
        Ok(Self(Some(rt)))
    }

    fn spawn(
        &self,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        self.0
            .as_ref()
            .expect("the runtime's threads run until dropped")
            .spawn(task)
    }
}

impl Drop for RuntimeThreads {
    fn drop(&mut self) {
        // Dropped from async code (the server's shutdown, or an early error): waiting for the
        // threads there would block a worker, so they are told to stop and left to finish.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Sets the calling thread's nice value `nice` steps above the process's (Linux keeps the nice
/// value per thread; the main thread's is the process's, and a thread started by a lowered one
/// inherits its value, so the step is taken from the process, not the thread). A failure is
/// logged: the runtime still works, only without the preference.
fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    if nice > 0 {
        use rustix::process::{getpid, getpriority_process, setpriority_process};
        let tid = rustix::thread::gettid();
        let lowered = getpriority_process(Some(getpid()))
            .and_then(|base| setpriority_process(Some(tid), (base + nice).min(19)));
        if let Err(e) = lowered {
            tracing::warn!(error = %e, nice, "cannot lower the workflow runtime thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// The host's outbound-request records become audit entries (`provider.outbound`), written in
/// order by one task so the sandbox's hook never waits for the store.
fn outbound_audit(state: AppState) -> fleetplane_wasm_host::AuditSink {
    use fleetplane_wasm_host::{OutboundOutcome, OutboundRecord};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<OutboundRecord>();
    tokio::spawn(async move {
        while let Some(r) = rx.recv().await {
            let (outcome, detail) = match &r.outcome {
                OutboundOutcome::Completed { status } => ("completed", status.to_string()),
                OutboundOutcome::Denied { reason } => ("denied", reason.clone()),
                OutboundOutcome::Failed { error } => ("failed", error.clone()),
            };
            let entry = serde_json::json!({
                "provider": r.provider, "account": r.account, "operation": r.op,
                "method": r.method, "scheme": r.scheme, "host": r.host, "port": r.port,
                "path": r.path, "outcome": outcome, "detail": detail,
                "durationMs": r.duration.as_millis() as u64,
            });
            let project = r.account.split_once('/').map(|(p, _)| p.to_owned());
            let resource = format!("providers/{}", r.provider);
            let written = state
                .write(&fleetplane_api::auth::Caller::system(), move |tx| {
                    tx.audit(
                        "provider.outbound",
                        &resource,
                        project.as_deref(),
                        None,
                        Some(entry),
                    )
                })
                .await;
            if let Err(e) = written {
                tracing::error!(error = %e.error, "cannot write an outbound audit entry");
            }
        }
    });
    Arc::new(move |record| {
        // The receiver lives as long as the runtime; a send after shutdown is dropped.
        let _ = tx.send(record);
    })
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
