//! `fleetplane bench`.

use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Arguments of `fleetplane bench`. The target server is the global `--endpoint` (with
/// `--api-key`); without it the bench starts its own `fleetplane server` child process.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// How many simulated clusters to create.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub clusters: u32,
    /// Which scenario to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    pub scenario: Scenario,
    /// Data directory of the server the bench starts (must be empty or absent; kept afterwards)
    /// [default: a temporary directory, removed afterwards]. Also where the commit probe writes.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file for the server the bench starts (`fleetplane server --config`; its
    /// listen address, data directory and rate limits are the bench's own). Not with
    /// `--endpoint`.
    #[arg(long, value_name = "FILE")]
    pub server_config: Option<PathBuf>,
    /// API key for `--endpoint` (needs the tenant admin role: it creates a project).
    #[arg(
        long,
        env = "FLEETPLANE_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Concurrent API clients creating clusters.
    #[arg(long, value_name = "C", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// Committed write transactions of the durable-commit probe.
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub probe_commits: u32,
    /// Calls of each kind the provider-call probe makes (component and native).
    #[arg(long, value_name = "N", default_value_t = 2_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub probe_calls: u32,
    /// Concurrent readers of each kind (single-object GET, list page) while a rollout runs.
    #[arg(long, value_name = "R", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub readers: u16,
    /// Single-object GETs per second, shared by the GET readers, each sending on a fixed
    /// schedule (open loop; latency from the scheduled send). Unset: closed loop, no pause.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub get_rate: Option<u32>,
    /// List pages per second, shared by the list readers (open loop, like `--get-rate`).
    /// Unset: closed loop.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub list_rate: Option<u32>,
}

/// A bench scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Create N clusters from one template on an instant simulator and wait until all run.
    Create,
    /// `create`, then roll a new revision out to every cluster with Upgrade now (no limit).
    Rollout,
    /// `create`, then roll a new revision out with Upgrade now in two label waves.
    Waves,
    /// `create`, then `rollout`, then `waves` (a third revision), in the same server.
    All,
}
