//! `fleetplane project …`.

use super::{DeleteArgs, ListArgs, MetadataArgs};
use clap::{Args, Subcommand};

/// Subcommands of `fleetplane project`.
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// List the projects you may see.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Show one project.
    Get {
        /// The project.
        name: String,
    },
    /// Create a project (fails if it exists).
    Create(CreateProjectArgs),
    /// Delete a project.
    #[command(alias = "rm")]
    Delete(DeleteArgs),
}

/// Arguments of `fleetplane project create`.
#[derive(Debug, Args)]
pub struct CreateProjectArgs {
    /// The project name (a DNS label).
    pub name: String,
    /// A human-friendly name.
    #[arg(long, value_name = "TEXT")]
    pub display_name: Option<String>,
    /// Description and labels.
    #[command(flatten)]
    pub metadata: MetadataArgs,
}
