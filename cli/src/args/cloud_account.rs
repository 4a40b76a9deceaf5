//! `fleetplane cloud-account …`: the cloud accounts of a project.

use super::{DeleteArgs, ListArgs, MetadataArgs};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Subcommands of `fleetplane cloud-account`.
#[derive(Debug, Subcommand)]
pub enum CloudAccountCommand {
    /// List the cloud accounts of the project.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Show one cloud account (secrets masked).
    Get {
        /// The account.
        name: String,
    },
    /// Create a cloud account; the provider validates it (see `status.phase`).
    Create(CreateAccountArgs),
    /// Delete a cloud account (refused while clusters use it).
    #[command(alias = "rm")]
    Delete(DeleteArgs),
}

/// Arguments of `fleetplane cloud-account create`.
#[derive(Debug, Args)]
pub struct CreateAccountArgs {
    /// The account name (a DNS label).
    pub name: String,
    /// The provider (`simulator`, or an installed one).
    #[arg(long, value_name = "PROVIDER")]
    pub provider: String,
    /// A cloud type clusters of the account may use (repeatable) [default: all the provider
    /// serves].
    #[arg(long = "cloud-type", value_name = "TYPE")]
    pub cloud_types: Vec<String>,
    /// Configuration `KEY=VALUE` (repeatable; VALUE is JSON when it parses, e.g.
    /// `timeScale=0.5`, else a string).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = super::parse_label)]
    pub config: Vec<(String, String)>,
    /// A secret `KEY=VALUE` (repeatable). Prefer `--secrets-file`: command lines are visible
    /// to other users of the machine.
    #[arg(long = "secret", value_name = "KEY=VALUE", value_parser = super::parse_label)]
    pub secrets: Vec<(String, String)>,
    /// A JSON file with an object of secrets (`{"api-key": "…"}`).
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    /// Description and labels.
    #[command(flatten)]
    pub metadata: MetadataArgs,
}
