//! `fleetplane rolebinding …`.

use super::{DeleteArgs, ListArgs};
use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};

/// Subcommands of `fleetplane rolebinding`.
#[derive(Debug, Subcommand)]
pub enum RoleBindingCommand {
    /// List the role bindings.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Show one role binding.
    Get {
        /// The binding.
        name: String,
    },
    /// Bind a role to a user. Project roles are bound in the project of `--project`.
    Create(CreateRoleBindingArgs),
    /// Delete a role binding.
    #[command(alias = "rm")]
    Delete(DeleteArgs),
}

/// Arguments of `fleetplane rolebinding create`.
#[derive(Debug, Args)]
pub struct CreateRoleBindingArgs {
    /// The binding name (a DNS label).
    pub name: String,
    /// The user.
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: String,
    /// The role.
    #[arg(long, value_name = "ROLE",
          value_parser = PossibleValuesParser::new(fleetplane_client::BUILTIN_ROLES))]
    pub role: String,
}
