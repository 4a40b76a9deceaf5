//! `fleetplane apply`, `diff` and `get`: verbs over files of objects of several kinds
//! (maintenance policies, macros, profile versions, workflows, cloud accounts, cluster
//! templates, clusters), the declarative counterpart of the noun commands.

use clap::Args;
use std::path::PathBuf;

/// The files a declarative command reads.
#[derive(Debug, Clone, Args)]
pub struct FileArgs {
    /// A YAML (one or more `---` documents) or JSON file, a directory of `*.yaml`, `*.yml` and
    /// `*.json` files (sorted by name), or `-` for standard input (repeatable).
    #[arg(
        long = "filename",
        short = 'f',
        alias = "file",
        value_name = "FILE|DIR",
        required = true
    )]
    pub files: Vec<PathBuf>,
    /// Read the subdirectories of a directory too.
    #[arg(long, short = 'R')]
    pub recursive: bool,
}

/// Arguments of `fleetplane apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The files.
    #[command(flatten)]
    pub files: FileArgs,
    /// Write every object, also those that compare unchanged (to push a new secret value, or
    /// to drop a field removed from the file, which the comparison does not see).
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `fleetplane diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The files.
    #[command(flatten)]
    pub files: FileArgs,
}

/// Arguments of `fleetplane get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The kind: `policy`, `macro`, `profileversion`, `workflow`, `cloudaccount`, `template`,
    /// `cluster` (singular, plural, or the `kind:` of a document).
    pub kind: String,
    /// The name; `NAME@VERSION` for profile versions and workflows.
    pub name: String,
}
