//! The command-line definitions of `fleetplane` (clap), apart from what the commands do
//! (`crate::commands`). One module per noun; a new noun adds a module, a variant of [`Command`]
//! and its behaviour module, and nothing else moves.

pub mod apikey;
pub mod apply;
pub mod audit;
pub mod bench;
pub mod cloud_account;
pub mod cluster;
pub mod login;
pub mod macro_;
pub mod pack;
pub mod policy;
pub mod profile;
pub mod project;
pub mod provider;
pub mod rolebinding;
pub mod run;
pub mod template;
pub mod user;
pub mod workflow;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Operate fleets of Kubernetes clusters from versioned profiles and templates.
///
/// Data goes to standard output, messages to standard error. Exit codes: 0 success, 1 the
/// request or its input is wrong (4xx, bad configuration), 2 usage, 3 the server failed or could
/// not be reached (5xx, connection).
#[derive(Debug, Parser)]
#[command(
    name = "fleetplane",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Options of every client command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options that every client command accepts, before or after the subcommand.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// URL of the Fleetplane server [default: from the config file, else http://127.0.0.1:8080].
    #[arg(long, global = true, env = "FLEETPLANE_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,
    /// Project of project-scoped commands [default: from the config file].
    #[arg(
        long,
        short = 'p',
        global = true,
        env = "FLEETPLANE_PROJECT",
        value_name = "PROJECT"
    )]
    pub project: Option<String>,
    /// Format of the data printed by reads.
    #[arg(
        long,
        short = 'o',
        global = true,
        env = "FLEETPLANE_OUTPUT",
        value_enum,
        default_value_t = OutputFormat::Table
    )]
    pub output: OutputFormat,
}

/// How data is printed on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    #[default]
    Table,
    /// The API's JSON, pretty-printed.
    Json,
    /// The API's objects as YAML.
    Yaml,
}

/// The commands, one per noun (plus the server and session commands).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Fleetplane server.
    Server(fleetplane_server::ServerArgs),
    /// Check an endpoint and API key and store them in the config file.
    Login(login::LoginArgs),
    /// Show the user, roles and permissions of the configured API key.
    Whoami,
    /// Manage projects.
    #[command(subcommand)]
    Project(project::ProjectCommand),
    /// Manage users.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage the API keys of a user.
    #[command(subcommand, name = "apikey", alias = "api-key")]
    ApiKey(apikey::ApiKeyCommand),
    /// Manage role bindings (who holds which role, tenant-wide or in a project).
    #[command(subcommand, name = "rolebinding", alias = "role-binding")]
    RoleBinding(rolebinding::RoleBindingCommand),
    /// Manage maintenance policies (when updates may start), tenant-wide or in a project.
    ///
    /// Policies are tenant-wide unless `--project` or FLEETPLANE_PROJECT names a project; the
    /// config file's project is not used for them.
    #[command(subcommand, alias = "maintenance-policy")]
    Policy(policy::PolicyCommand),
    /// Manage cluster templates and the variable values of their clusters.
    ///
    /// Templates are tenant-wide unless `--project` or FLEETPLANE_PROJECT names a project; the
    /// config file's project is not used for them.
    #[command(subcommand, alias = "cluster-template")]
    Template(template::TemplateCommand),
    /// Manage the clusters of a project (created from a template or standalone).
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Manage provider components (install, list, remove, test).
    #[command(subcommand)]
    Provider(provider::ProviderCommand),
    /// Manage the cloud accounts of a project.
    #[command(subcommand, name = "cloud-account", alias = "cloudaccount")]
    CloudAccount(cloud_account::CloudAccountCommand),
    /// Read the pack catalog (tenant-wide).
    #[command(subcommand)]
    Pack(pack::PackCommand),
    /// Manage cluster profiles and their versions, tenant-wide or in a project.
    ///
    /// Profiles are tenant-wide unless `--project` or FLEETPLANE_PROJECT names a project; the
    /// config file's project is not used for them.
    #[command(subcommand)]
    Profile(profile::ProfileCommand),
    /// Manage macros (`{{ macro.NAME }}` in layer values), tenant-wide or in a project.
    #[command(subcommand, name = "macro")]
    Macro(macro_::MacroCommand),
    /// Manage workflow definitions (tenant-wide).
    #[command(subcommand)]
    Workflow(workflow::WorkflowCommand),
    /// Start, inspect and signal workflow runs, in the project of `--project` or tenant-wide.
    ///
    /// Without `--project` or FLEETPLANE_PROJECT, runs are addressed tenant-wide (every run the
    /// caller may see); the config file's project is not used for them.
    #[command(subcommand)]
    Run(run::RunCommand),
    /// Create or update the objects of YAML or JSON files (policies, macros, profile versions,
    /// workflows, cloud accounts, templates, clusters); prints `KIND/NAME created|configured|unchanged`.
    Apply(apply::ApplyArgs),
    /// Show what `apply` would change, as a unified diff; exit 0 when nothing differs, 1 when
    /// something does, 2 or 3 on errors.
    Diff(apply::DiffArgs),
    /// Print one object as a document `apply -f` accepts (YAML, or JSON with `-o json`).
    Get(apply::GetArgs),
    /// Print a shell completion script.
    Completion(CompletionArgs),
    /// Measure the product at scale (creates N simulated clusters; see docs/performance.md).
    Bench(bench::BenchArgs),
}

/// Arguments of `fleetplane completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell, e.g. `bash`, `zsh` or `fish`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Options of list commands.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Only objects whose labels match, e.g. `env=prod,team!=ops`.
    #[arg(long, short = 'l', value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Show at most this many objects [default: all].
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
}

/// Metadata options of create commands.
#[derive(Debug, Clone, Args)]
pub struct MetadataArgs {
    /// A description.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// A label `KEY=VALUE` (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

/// Options of delete commands.
#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    /// The name.
    pub name: String,
    /// Delete only if the object is still at this resource version.
    #[arg(long, value_name = "VERSION")]
    pub if_match: Option<String>,
}

/// Parses `KEY=VALUE`.
fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("fleetplane").chain(args.iter().copied()))
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        for args in [
            &["-o", "json", "project", "list"][..],
            &["project", "list", "-o", "json"],
            &["project", "-o", "json", "list"],
            &["--output=json", "project", "list"],
        ] {
            let cli = parse(args).unwrap();
            assert_eq!(cli.global.output, OutputFormat::Json, "{args:?}");
        }
        let cli = parse(&[
            "user",
            "get",
            "bob",
            "--endpoint",
            "http://h:1",
            "-p",
            "web",
        ])
        .unwrap();
        assert_eq!(cli.global.endpoint.as_deref(), Some("http://h:1"));
        assert_eq!(cli.global.project.as_deref(), Some("web"));
    }

    #[test]
    fn usage_errors_are_reported_by_clap() {
        let cases: &[&[&str]] = &[
            &["project", "get"],
            &["project", "explode"],
            &["-o", "xml", "project", "list"],
            &["apikey", "list"],
            &["rolebinding", "create", "b", "--user", "u", "--role", "god"],
            &["project", "create", "x", "--label", "novalue"],
            &["completion", "tcsh"],
        ];
        for args in cases {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        }
    }

    #[test]
    fn labels_parse() {
        assert_eq!(parse_label("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_label("a="), Ok(("a".into(), String::new())));
        assert!(parse_label("=b").is_err());
        assert!(parse_label("ab").is_err());
    }
}
