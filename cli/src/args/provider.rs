//! `fleetplane provider …`: install, list, show, remove and test provider components.

use super::DeleteArgs;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Subcommands of `fleetplane provider`.
#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// List installed providers with their version, digest and health.
    #[command(alias = "ls")]
    List,
    /// Show one provider.
    Get {
        /// The provider.
        name: String,
    },
    /// Install (or upgrade) a provider from a `.wasm` component and its manifest.
    Install(InstallArgs),
    /// Remove a provider (refused for the built-in simulator and while cloud accounts use it).
    #[command(alias = "rm")]
    Remove(DeleteArgs),
    /// Run the conformance kit against a component file, locally (no server needed).
    Test(TestArgs),
}

/// Arguments of `fleetplane provider install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The component (`.wasm`).
    pub file: PathBuf,
    /// The provider manifest (JSON).
    #[arg(long, short = 'm', value_name = "FILE")]
    pub manifest: PathBuf,
    /// The digest the component must have (`sha256:<hex>`, as the vendor published it).
    #[arg(long, value_name = "DIGEST")]
    pub digest: Option<String>,
}

/// Arguments of `fleetplane provider test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The component (`.wasm`).
    pub file: PathBuf,
    /// The provider manifest (JSON) [default: the simulator's for the simulator component,
    /// else one serving every cloud type with no outbound hosts].
    #[arg(long, short = 'm', value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Account configuration `KEY=VALUE` (repeatable; VALUE is JSON when it parses, e.g.
    /// `timeScale=0`, else a string).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = super::parse_label)]
    pub config: Vec<(String, String)>,
    /// Account secret `KEY=VALUE` (repeatable).
    #[arg(long = "secret", value_name = "KEY=VALUE", value_parser = super::parse_label)]
    pub secrets: Vec<(String, String)>,
    /// How long one operation may take, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub operation_timeout: u64,
}
