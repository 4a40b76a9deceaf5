//! `fleetplane user …`.

use super::{DeleteArgs, ListArgs, MetadataArgs};
use clap::{Args, Subcommand};

/// Subcommands of `fleetplane user`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List the users.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Show one user.
    Get {
        /// The user.
        name: String,
    },
    /// Create a user (fails if it exists).
    Create(CreateUserArgs),
    /// Delete a user.
    #[command(alias = "rm")]
    Delete(DeleteArgs),
}

/// Arguments of `fleetplane user create`.
#[derive(Debug, Args)]
pub struct CreateUserArgs {
    /// The user name (a DNS label).
    pub name: String,
    /// A human-friendly name.
    #[arg(long, value_name = "TEXT")]
    pub display_name: Option<String>,
    /// The e-mail address.
    #[arg(long, value_name = "ADDRESS")]
    pub email: Option<String>,
    /// Read a console password (at least 12 characters) from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Description and labels.
    #[command(flatten)]
    pub metadata: MetadataArgs,
}
