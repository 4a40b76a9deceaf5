//! `fleetplane completion`.

use super::print;
use crate::args::{Cli, CompletionArgs};
use clap::CommandFactory as _;

/// Prints the completion script of the shell.
///
/// # Errors
/// Output cannot be written.
pub fn run(args: &CompletionArgs) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "fleetplane", &mut script);
    print(&String::from_utf8_lossy(&script))
}
