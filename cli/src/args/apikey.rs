//! `fleetplane apikey …`.

use clap::{Args, Subcommand};

/// Subcommands of `fleetplane apikey`.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// List the keys of a user (never their secrets).
    #[command(alias = "ls")]
    List(UserArg),
    /// Create a key; its secret is printed once, on standard output.
    Create(CreateApiKeyArgs),
    /// Revoke a key.
    Revoke {
        /// Whose key.
        #[command(flatten)]
        user: UserArg,
        /// The key id (the ID column of `fleetplane apikey list`).
        id: String,
    },
}

/// The user whose keys a command handles.
#[derive(Debug, Args)]
pub struct UserArg {
    /// The user.
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: String,
}

/// Arguments of `fleetplane apikey create`.
#[derive(Debug, Args)]
pub struct CreateApiKeyArgs {
    /// Whose key.
    #[command(flatten)]
    pub user: UserArg,
    /// What the key is for, e.g. `ci`.
    #[arg(long, value_name = "TEXT")]
    pub name: String,
    /// Lifetime in days [default: the server's, 365].
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    pub expires_in_days: Option<u32>,
}
