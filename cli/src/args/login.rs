//! `fleetplane login`.

use clap::Args;

/// Arguments of `fleetplane login`. The endpoint is the global `--endpoint`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The API key; read from standard input when absent (keeps it out of the process list).
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
}
