//! `fleetplane`: the server and the command-line client of Fleetplane.
//!
//! Definitions of the command line live in `args`, behaviour in `commands`; the client
//! configuration in `config`, printing in `output`, exit codes and error reports in `exit`.

mod args;
mod commands;
mod config;
mod exit;
mod output;

use clap::Parser as _;
use std::process::ExitCode;

/// The server allocates and frees many short-lived buffers (JSON records, run states, HTTP
/// bodies) from many threads; with glibc's allocator a 10,000-cluster rollout spent about a
/// fifth of its CPU in `malloc`/`free` and consolidation (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // `--help` and `--version` are "errors" that go to standard output.
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            commands::note(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(exit::SERVER_ERROR);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) if exit::is_broken_pipe(&e) => ExitCode::from(exit::OK),
        Err(e) => {
            let has_key = commands::env_var("FLEETPLANE_API_KEY").is_some()
                || commands::read_config().is_ok_and(|c| c.api_key.is_some());
            commands::note(&exit::report(&e, has_key));
            ExitCode::from(exit::code_of(&e))
        }
    }
}
