//! `fleetplane server`.

/// Runs the server until it is stopped.
///
/// # Errors
/// The configuration is invalid or the server cannot start or fails.
pub async fn run(args: fleetplane_server::ServerArgs) -> anyhow::Result<()> {
    fleetplane_server::run(args).await
}
