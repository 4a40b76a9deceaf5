//! `fleetplane pack …`: the pack catalog (tenant-wide).

use super::ListArgs;
use clap::Subcommand;

/// Subcommands of `fleetplane pack`.
#[derive(Debug, Subcommand)]
pub enum PackCommand {
    /// List the packs: the built-in catalog and the tenant's custom packs.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Show one pack with its versions.
    Get {
        /// The pack, e.g. `kubernetes`.
        name: String,
    },
}
