//! `fleetplane run …`: runs of workflow definitions (start, list, show, journal, signals).

use super::parse_label;
use super::profile::VersionRef;
use super::workflow::parse_workflow_ref;
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Subcommands of `fleetplane run`.
#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Start a run of a definition version.
    Start(StartArgs),
    /// List runs (of the project of `--project`, else every run the caller may see).
    #[command(alias = "ls")]
    List(RunListArgs),
    /// Show a run: status, what it waits on, its error, active steps and approvals.
    #[command(alias = "get")]
    Show {
        /// The run id.
        id: String,
    },
    /// Show a run's journal; `--follow` keeps polling until the run ends.
    Journal(JournalArgs),
    /// Pause a run (it stops before its next step).
    Pause(SignalArgs),
    /// Resume a paused run.
    Resume(ResumeArgs),
    /// Cancel a run.
    Cancel(SignalArgs),
    /// Resume a run retrying what failed (`resume --retry-failed`).
    Redrive(SignalArgs),
    /// Approve a named approval of a run.
    Approve(ApprovalArgs),
    /// Reject a named approval of a run.
    Reject(ApprovalArgs),
}

/// Arguments of `fleetplane run start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The definition version, `NAME@VERSION`.
    #[arg(value_name = "NAME@VERSION", value_parser = parse_workflow_ref)]
    pub workflow: VersionRef,
    /// An input `KEY=VALUE` (repeatable). VALUE is JSON when it parses as JSON (`3`, `true`,
    /// `{"a":1}`, `"3"`), else text.
    #[arg(long = "input", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub inputs: Vec<(String, String)>,
    /// A YAML or JSON object of inputs (`-` for standard input); `--input` wins over it.
    #[arg(long, value_name = "FILE")]
    pub inputs_file: Option<PathBuf>,
}

/// A run status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "PascalCase")]
pub enum RunStatus {
    /// Not started yet.
    Pending,
    /// Running a step.
    Running,
    /// Waiting on a timer, window or signal.
    Waiting,
    /// Paused.
    Paused,
    /// Ended successfully.
    Succeeded,
    /// Ended with an error.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl RunStatus {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Waiting => "Waiting",
            Self::Paused => "Paused",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
        }
    }
}

/// Arguments of `fleetplane run list`.
#[derive(Debug, Args)]
pub struct RunListArgs {
    /// Only paused runs (`--status Paused`).
    #[arg(long, conflicts_with = "status")]
    pub paused: bool,
    /// Only runs in this status.
    #[arg(long, value_enum, ignore_case = true, value_name = "STATUS")]
    pub status: Option<RunStatus>,
    /// Only runs of this definition: `NAME` (every version) or `NAME@VERSION`.
    #[arg(long, value_name = "NAME[@VERSION]")]
    pub definition: Option<String>,
    /// Show at most this many runs [default: all].
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
}

/// Arguments of `fleetplane run journal`.
#[derive(Debug, Args)]
pub struct JournalArgs {
    /// The run id.
    pub id: String,
    /// Keep polling for new entries every second until the run ends (or Ctrl-C).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Give up following after this many seconds [default: 3600].
    #[arg(long, value_name = "SECONDS", requires = "follow",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub follow_timeout: Option<u64>,
}

/// Arguments of `pause`, `cancel` and `redrive`.
#[derive(Debug, Args)]
pub struct SignalArgs {
    /// The run id.
    pub id: String,
    /// Why (recorded in the journal and the audit log).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// Arguments of `fleetplane run resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run and the reason.
    #[command(flatten)]
    pub signal: SignalArgs,
    /// Retry the steps and clusters that failed.
    #[arg(long)]
    pub retry_failed: bool,
}

/// Arguments of `approve` and `reject`.
#[derive(Debug, Args)]
pub struct ApprovalArgs {
    /// The run and the reason.
    #[command(flatten)]
    pub signal: SignalArgs,
    /// The approval's name (the `approve` step's `name`).
    #[arg(long, value_name = "NAME")]
    pub name: String,
}
