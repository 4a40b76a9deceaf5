//! `fleetplane workflow …`: workflow definitions (built-in and submitted), tenant-wide. A version
//! is named `NAME@VERSION` (`approval-demo@1.0.0`).

use super::profile::VersionRef;
use clap::Subcommand;
use std::path::PathBuf;

/// Parses `NAME@VERSION` (the last `@` separates them; neither part may be empty).
///
/// # Errors
/// There is no `@`, or a part is empty.
pub fn parse_workflow_ref(s: &str) -> Result<VersionRef, String> {
    match s.rsplit_once('@') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => Ok(VersionRef {
            name: name.to_owned(),
            version: version.to_owned(),
        }),
        _ => Err(format!(
            "`{s}` is not NAME@VERSION, e.g. approval-demo@1.0.0"
        )),
    }
}

/// Subcommands of `fleetplane workflow`.
#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Submit a definition from a YAML or JSON file; its name and version come from the
    /// document (`metadata.name`, `metadata.version`). Re-submitting the identical document is
    /// harmless; a version a run used cannot change.
    Submit {
        /// The definition file (`-` for standard input).
        #[arg(long = "file", short = 'f', value_name = "FILE")]
        file: PathBuf,
    },
    /// List the built-in and submitted definitions.
    #[command(alias = "ls")]
    List,
    /// Show one definition version (`-o yaml` prints it in the form `submit` reads).
    Get {
        /// The version, `NAME@VERSION`.
        #[arg(value_name = "NAME@VERSION", value_parser = parse_workflow_ref)]
        workflow: VersionRef,
    },
    /// Print the JSON Schema definitions are validated against.
    Schema,
}
