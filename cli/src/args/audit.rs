//! `fleetplane audit …`.

use clap::{Args, Subcommand};

/// Subcommands of `fleetplane audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, oldest first.
    #[command(alias = "ls")]
    List(AuditListArgs),
}

/// Filters of `fleetplane audit list`.
#[derive(Debug, Args)]
pub struct AuditListArgs {
    /// Only events of this user.
    #[arg(long, value_name = "USER")]
    pub actor: Option<String>,
    /// Only events of this action, e.g. `project.create`.
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// Only events of this resource, e.g. `projects/web`.
    #[arg(long, value_name = "RESOURCE")]
    pub resource: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Show at most this many events [default: all].
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
}
