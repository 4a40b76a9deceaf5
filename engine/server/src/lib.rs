//! Wires the Fleetplane control plane together: configuration, logging, the store in the data
//! directory, the bootstrap of an empty store, the HTTP server and graceful shutdown.

pub mod config;

pub use config::{Config, ConfigError, LogFormat, ServerArgs};

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
    let storage = tokio::task::spawn_blocking(move || RedbStorage::open(&db_path))
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
    if let Some(b) = boot {
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
    tracing::info!("stopped");
    Ok(())
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
