//! `fleetplane login`.

use super::{build_client, config_path, note, read_config, read_secret_line};
use crate::args::GlobalArgs;
use crate::args::login::LoginArgs;
use crate::config;
use anyhow::Context as _;

/// Checks the endpoint and key with `GET /v1/whoami` and stores them in the config file.
///
/// # Errors
/// No key, the server rejects it or cannot be reached, or the file cannot be written.
pub async fn run(global: &GlobalArgs, args: LoginArgs) -> anyhow::Result<()> {
    let path = config_path().context(
        "cannot tell where the config file goes: set FLEETPLANE_CLIENT_CONFIG, XDG_CONFIG_HOME or HOME",
    )?;
    let mut file = read_config()?;
    let key = match args.api_key {
        Some(k) => k,
        None => read_secret_line("API key")?,
    };
    let settings = config::resolve(
        global.endpoint.as_deref(),
        Some(&key),
        global.project.as_deref(),
        &file,
    );
    let client = build_client(&settings)?;
    let me = client
        .whoami()
        .await
        .with_context(|| format!("cannot log in to {}", settings.endpoint))?;
    file.endpoint = Some(settings.endpoint.clone());
    file.api_key = Some(key);
    if let Some(p) = &global.project {
        file.project = Some(p.clone());
    }
    config::write(&path, &file)?;
    note(&format!(
        "logged in to {} as {}; settings saved to {}",
        settings.endpoint,
        me.user,
        path.display()
    ));
    Ok(())
}
