//! `fleetplane profile …`: cluster profiles and their versions, import and export, render
//! previews. A version is named `NAME@VERSION` (`aws-standard@1.0.0`).

use super::{ListArgs, parse_label};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// A profile version named on the command line: `NAME@VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRef {
    /// The profile.
    pub name: String,
    /// The version.
    pub version: String,
}

impl std::fmt::Display for VersionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// Parses `NAME@VERSION` (the last `@` separates them; neither part may be empty).
///
/// # Errors
/// There is no `@`, or a part is empty.
pub fn parse_version_ref(s: &str) -> Result<VersionRef, String> {
    match s.rsplit_once('@') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => Ok(VersionRef {
            name: name.to_owned(),
            version: version.to_owned(),
        }),
        _ => Err(format!(
            "`{s}` is not NAME@VERSION, e.g. aws-standard@1.0.0"
        )),
    }
}

/// Subcommands of `fleetplane profile`.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// List the profiles of the tenant, or of the project of `--project`.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Show a profile (type, cloud type, versions), or one of its versions with `--version`.
    #[command(disable_version_flag = true)]
    Get {
        /// The profile.
        name: String,
        /// Show this version (its spec and whether templates or clusters use it).
        #[arg(long, value_name = "VERSION")]
        version: Option<String>,
    },
    /// Create a version from a Fleetplane or Palette export document (JSON or YAML).
    Import {
        /// The document.
        file: PathBuf,
    },
    /// Print (or write) the export document of a version.
    Export {
        /// The version, `NAME@VERSION`.
        #[arg(value_name = "NAME@VERSION", value_parser = parse_version_ref)]
        target: VersionRef,
        /// Write the document to this file instead of standard output (JSON, or YAML with
        /// `-o yaml`).
        #[arg(long = "file", short = 'f', value_name = "OUT")]
        file: Option<PathBuf>,
    },
    /// Manage the versions of a profile.
    #[command(subcommand)]
    Version(VersionCommand),
    /// Preview the layers of a version rendered with variable values and the scope's macros.
    Render(RenderArgs),
}

/// Subcommands of `fleetplane profile version`.
#[derive(Debug, Subcommand)]
pub enum VersionCommand {
    /// List the versions of a profile, with whether templates and clusters use them.
    #[command(alias = "ls")]
    List {
        /// The profile.
        name: String,
        /// List options.
        #[command(flatten)]
        list: ListArgs,
    },
    /// Create a version as a copy of another version of the same profile.
    #[command(disable_version_flag = true)]
    Create {
        /// The profile.
        name: String,
        /// The new version (strict SemVer, e.g. `1.1.0`).
        #[arg(long, value_name = "VERSION")]
        version: String,
        /// The version to copy.
        #[arg(long, value_name = "VERSION")]
        from: String,
    },
    /// Create or replace a version from a file (YAML or JSON): a version object as
    /// `profile get NAME --version V -o yaml` prints it.
    Apply {
        /// The file (`-` for standard input).
        #[arg(long = "file", short = 'f', value_name = "FILE")]
        file: PathBuf,
    },
    /// Delete a version (refused while templates or clusters use it); the last one deletes the
    /// profile.
    #[command(alias = "rm")]
    Delete {
        /// The version, `NAME@VERSION`.
        #[arg(value_name = "NAME@VERSION", value_parser = parse_version_ref)]
        target: VersionRef,
        /// Delete only if the version is still at this resource version.
        #[arg(long, value_name = "VERSION")]
        if_match: Option<String>,
    },
}

/// Arguments of `fleetplane profile render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The version, `NAME@VERSION`.
    #[arg(value_name = "NAME@VERSION", value_parser = parse_version_ref)]
    pub target: VersionRef,
    /// A variable value `NAME=VALUE` (repeatable; wins over `--values-file`).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_label)]
    pub vars: Vec<(String, String)>,
    /// A YAML or JSON file with an object of variable values (`{greeting: hi, replicas: 3}`).
    #[arg(long, value_name = "FILE")]
    pub values_file: Option<PathBuf>,
    /// A system value of the cluster `KEY=VALUE` (repeatable), e.g. `clusterName=dev`,
    /// `projectName=shop`, `region=eu-west-1`, `kubernetesVersion=1.33.4`.
    #[arg(long = "cluster", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub cluster: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_refs_parse() {
        let ok = |s: &str, n: &str, v: &str| {
            assert_eq!(
                parse_version_ref(s),
                Ok(VersionRef {
                    name: n.into(),
                    version: v.into()
                }),
                "{s}"
            );
        };
        ok("aws@1.0.0", "aws", "1.0.0");
        ok("a@b@1.0.0", "a@b", "1.0.0");
        ok("aws@1.0.0-rc.1+build", "aws", "1.0.0-rc.1+build");
        for bad in ["aws", "aws@", "@1.0.0", "", "@"] {
            assert!(parse_version_ref(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_version_ref("x@1.0.0").map(|r| r.to_string()),
            Ok("x@1.0.0".to_owned())
        );
    }
}
