//! `fleetplane macro …`: named values that layer templates reference as `{{ macro.NAME }}`.

use super::{DeleteArgs, ListArgs};
use clap::{Args, Subcommand};

/// Subcommands of `fleetplane macro`.
#[derive(Debug, Subcommand)]
pub enum MacroCommand {
    /// List the macros of the tenant, or of the project of `--project`.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Show one macro.
    Get {
        /// The macro (an identifier such as `registry_mirror`).
        name: String,
    },
    /// Create or replace a macro.
    Set(SetMacroArgs),
    /// Delete a macro.
    #[command(alias = "rm")]
    Delete(DeleteArgs),
}

/// Arguments of `fleetplane macro set`.
#[derive(Debug, Args)]
pub struct SetMacroArgs {
    /// The macro: an identifier (letters, digits, `_`; not starting with a digit).
    pub name: String,
    /// The text it stands for (may be empty).
    pub value: String,
    /// Replace only if the macro is still at this resource version.
    #[arg(long, value_name = "VERSION")]
    pub if_match: Option<String>,
}
