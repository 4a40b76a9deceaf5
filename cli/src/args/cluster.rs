//! `fleetplane cluster …`: the clusters of a project, from a template or standalone.
//!
//! Variables are named `PROFILE.VARIABLE` (the profile name, then the variable), node pools
//! `name=N,count=C,type=T[,control-plane]`, standalone profile versions `[tenant:]NAME@VERSION`.

use super::ListArgs;
use super::template::{ProfileArg, VarArg, parse_profile, parse_var};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Subcommands of `fleetplane cluster`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// List the clusters of the project.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Show one cluster: a summary with nodes and conditions, or the whole object with `-o`.
    Get {
        /// The cluster.
        name: String,
    },
    /// Create a cluster from a template (`--template`) or standalone (`--profile`), or from a
    /// Cluster document (`-f`); a deploy run starts at once.
    Create(CreateClusterArgs),
    /// Delete a cluster: a delete run tears it down, then it is gone.
    #[command(alias = "rm")]
    Delete(DeleteClusterArgs),
    /// Show a cluster's recent events, oldest first; `--follow` prints new ones as they come.
    Events(EventsArgs),
    /// Set or unset the cluster's own variable values; an update run applies them at once.
    SetVars(SetVarsArgs),
    /// Attach a standalone cluster to a template (no run: the template's next rollout brings
    /// it up to date).
    Attach(AttachArgs),
    /// Detach a cluster from its template: it keeps the versions and values it runs.
    Detach {
        /// The cluster.
        name: String,
    },
}

/// Where a template lives, seen from the cluster's project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TemplateScope {
    /// The cluster's project (the default).
    Project,
    /// The tenant's templates.
    Tenant,
}

/// How `--wait` waits.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Wait until the run ends, showing phase changes and new events on standard error; exit 1
    /// when the cluster fails.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds [default: 3600].
    #[arg(long, value_name = "SECONDS", requires = "wait",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: Option<u64>,
}

/// Arguments of `fleetplane cluster create`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").args(["template", "profiles", "file"]).required(true)))]
pub struct CreateClusterArgs {
    /// The cluster name (a DNS label) [default with `-f`: the document's `metadata.name`].
    #[arg(required_unless_present = "file")]
    pub name: Option<String>,
    /// A Cluster document (YAML or JSON, `-` for standard input) instead of the flags below.
    #[arg(long = "filename", short = 'f', alias = "file", value_name = "FILE",
          conflicts_with_all = ["template", "profiles", "pools", "vars", "time_zone", "labels",
                                "cloud_account", "template_scope"])]
    pub file: Option<PathBuf>,
    /// The template that governs the cluster.
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "profiles")]
    pub template: Option<String>,
    /// Where the template lives.
    #[arg(long, value_enum, value_name = "SCOPE", requires = "template")]
    pub template_scope: Option<TemplateScope>,
    /// A profile version of a standalone cluster, `[tenant:]NAME@VERSION` (repeatable): one
    /// `full` or `infra` profile and any number of add-ons.
    #[arg(long = "profile", value_name = "[tenant:]NAME@VERSION", value_parser = parse_profile)]
    pub profiles: Vec<ProfileArg>,
    /// A variable value `PROFILE.VARIABLE=VALUE` (repeatable).
    #[arg(long = "var", value_name = "PROFILE.VARIABLE=VALUE", value_parser = parse_set)]
    pub vars: Vec<VarArg>,
    /// The IANA time zone its maintenance windows open in (required with `--template`).
    #[arg(long, value_name = "ZONE")]
    pub time_zone: Option<String>,
    /// A node pool `name=N,count=C,type=T[,control-plane]` (repeatable; exactly one
    /// control-plane pool).
    #[arg(long = "pool", value_name = "name=N,count=C,type=T[,control-plane]",
          value_parser = parse_pool, required_unless_present = "file")]
    pub pools: Vec<PoolArg>,
    /// A cluster label `KEY=VALUE` (`spec.labels`, read by rollout waves and the simulator's
    /// faults; repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = super::parse_label)]
    pub labels: Vec<(String, String)>,
    /// The cloud account of the project.
    #[arg(long, value_name = "ACCOUNT", default_value = "simulator")]
    pub cloud_account: String,
    /// Waiting for Running.
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Arguments of `fleetplane cluster delete`.
#[derive(Debug, Args)]
pub struct DeleteClusterArgs {
    /// The cluster.
    pub name: String,
    /// Delete only if the cluster is still at this resource version.
    #[arg(long, value_name = "VERSION")]
    pub if_match: Option<String>,
    /// Waiting until it is gone.
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Arguments of `fleetplane cluster events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The cluster.
    pub name: String,
    /// Show at most the newest N events (the server keeps the last 200).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=200))]
    pub limit: Option<u32>,
    /// Keep polling every second and print new events until the cluster is gone (or Ctrl-C).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Give up following after this many seconds [default: 3600].
    #[arg(long, value_name = "SECONDS", requires = "follow",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub follow_timeout: Option<u64>,
}

/// Arguments of `fleetplane cluster set-vars`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("change").args(["vars", "unset"]).required(true).multiple(true)))]
pub struct SetVarsArgs {
    /// The cluster.
    pub name: String,
    /// A value `PROFILE.VARIABLE=VALUE` (repeatable).
    #[arg(long = "var", value_name = "PROFILE.VARIABLE=VALUE", value_parser = parse_set)]
    pub vars: Vec<VarArg>,
    /// Remove the cluster's own value `PROFILE.VARIABLE` (repeatable): the template's value or
    /// the default applies again.
    #[arg(long, value_name = "PROFILE.VARIABLE", value_parser = parse_unset)]
    pub unset: Vec<VarArg>,
    /// Write only if the cluster is still at this resource version.
    #[arg(long, value_name = "VERSION")]
    pub if_match: Option<String>,
    /// Waiting for the update run.
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Arguments of `fleetplane cluster attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The cluster (standalone and Running).
    pub name: String,
    /// The template.
    #[arg(long, value_name = "TEMPLATE")]
    pub template: String,
    /// Where the template lives.
    #[arg(long, value_enum, value_name = "SCOPE")]
    pub template_scope: Option<TemplateScope>,
    /// The time zone of its maintenance windows [default: the cluster's].
    #[arg(long, value_name = "ZONE")]
    pub time_zone: Option<String>,
    /// The cluster's values under the template, `PROFILE.VARIABLE=VALUE` (repeatable); when
    /// given, they replace all its values [default: keep them].
    #[arg(long = "var", value_name = "PROFILE.VARIABLE=VALUE", value_parser = parse_set)]
    pub vars: Vec<VarArg>,
}

/// One `--pool`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolArg {
    /// The pool name.
    pub name: String,
    /// Machines in the pool.
    pub count: u32,
    /// The machine type.
    pub instance_type: String,
    /// Whether the pool runs the control plane.
    pub control_plane: bool,
}

/// Parses `PROFILE.VARIABLE=VALUE` (the value may be empty, hold `=` and `.`).
///
/// # Errors
/// The shape of [`parse_var`], or no `=VALUE`.
pub fn parse_set(text: &str) -> Result<VarArg, String> {
    let var = parse_var(text).map_err(|_| format!("`{text}` is not PROFILE.VARIABLE=VALUE"))?;
    if var.value.is_none() {
        return Err(format!(
            "`{text}` is not PROFILE.VARIABLE=VALUE (to remove a value, use --unset)"
        ));
    }
    Ok(var)
}

/// Parses `PROFILE.VARIABLE` (no value).
///
/// # Errors
/// The shape of [`parse_var`], or a value.
pub fn parse_unset(text: &str) -> Result<VarArg, String> {
    match parse_var(text) {
        Ok(v) if v.value.is_none() => Ok(v),
        _ => Err(format!("`{text}` is not PROFILE.VARIABLE")),
    }
}

/// Parses `name=N,count=C,type=T[,control-plane]` in any order (`instance-type` for `type`,
/// `control-plane=true|false` also accepted). The server judges the values (DNS labels, counts).
///
/// # Errors
/// An unknown or repeated key, a missing `name`, `count` or `type`, a count that is not a
/// number.
pub fn parse_pool(text: &str) -> Result<PoolArg, String> {
    let (mut name, mut count, mut instance_type, mut control_plane) = (None, None, None, None);
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = match part.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (part, None),
        };
        let repeated = || format!("`{key}` is given twice in `{text}`");
        match (key, value) {
            ("name", Some(v)) if !v.is_empty() => {
                if name.replace(v.to_owned()).is_some() {
                    return Err(repeated());
                }
            }
            ("count", Some(v)) => {
                let n: u32 = v
                    .parse()
                    .map_err(|_| format!("count `{v}` is not a whole number (in `{text}`)"))?;
                if count.replace(n).is_some() {
                    return Err(repeated());
                }
            }
            ("type" | "instance-type", Some(v)) if !v.is_empty() => {
                if instance_type.replace(v.to_owned()).is_some() {
                    return Err(repeated());
                }
            }
            ("control-plane", v) => {
                let on = match v {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(other) => {
                        return Err(format!(
                            "control-plane takes no value or true|false, not `{other}`"
                        ));
                    }
                };
                if control_plane.replace(on).is_some() {
                    return Err(repeated());
                }
            }
            ("name" | "type" | "instance-type", _) => {
                return Err(format!("`{key}` needs a value in `{text}`"));
            }
            _ => {
                return Err(format!(
                    "unknown `{part}` in `{text}` (expected name=N,count=C,type=T[,control-plane])"
                ));
            }
        }
    }
    let missing = |what: &str| format!("`{text}` has no {what}= (expected name=N,count=C,type=T)");
    Ok(PoolArg {
        name: name.ok_or_else(|| missing("name"))?,
        count: count.ok_or_else(|| missing("count"))?,
        instance_type: instance_type.ok_or_else(|| missing("type"))?,
        control_plane: control_plane.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, count: u32, t: &str, cp: bool) -> PoolArg {
        PoolArg {
            name: name.into(),
            count,
            instance_type: t.into(),
            control_plane: cp,
        }
    }

    #[test]
    fn pools_parse_in_any_order() {
        let cases = [
            (
                "name=cp,count=3,type=m5.large,control-plane",
                Ok(pool("cp", 3, "m5.large", true)),
            ),
            (
                "type=Standard_D4s_v3, count=2 ,name=w",
                Ok(pool("w", 2, "Standard_D4s_v3", false)),
            ),
            (
                "name=w,count=1,instance-type=n2,control-plane=false",
                Ok(pool("w", 1, "n2", false)),
            ),
            (
                "name=cp,count=1,type=m,control-plane=true",
                Ok(pool("cp", 1, "m", true)),
            ),
            ("name=w,count=x,type=m", Err("not a whole number")),
            ("name=w,count=-1,type=m", Err("not a whole number")),
            ("name=w,type=m", Err("no count=")),
            ("count=1,type=m", Err("no name=")),
            ("name=w,count=1", Err("no type=")),
            ("name=w,count=1,type=m,zone=a", Err("unknown `zone=a`")),
            ("name=w,name=v,count=1,type=m", Err("twice")),
            ("name=w,count=1,type=m,control-plane=yes", Err("true|false")),
            ("name,count=1,type=m", Err("needs a value")),
            ("", Err("no name=")),
        ];
        for (text, want) in cases {
            match (parse_pool(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(e), Err(part)) => assert!(e.contains(part), "{text}: {e}"),
                (got, want) => panic!("{text}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn set_needs_a_value_and_unset_none() {
        let v = parse_set("aws.greeting=a=b.c").unwrap();
        assert_eq!(
            (v.profile.as_str(), v.variable.as_str(), v.value.as_deref()),
            ("aws", "greeting", Some("a=b.c"))
        );
        assert_eq!(
            parse_set("aws.greeting=").unwrap().value.as_deref(),
            Some("")
        );
        assert!(parse_set("aws.greeting").unwrap_err().contains("--unset"));
        assert!(parse_set("greeting=x").is_err());
        assert_eq!(parse_unset("aws.replicas").unwrap().variable, "replicas");
        assert!(parse_unset("aws.replicas=3").is_err());
        assert!(parse_unset("aws").is_err());
    }

    fn cli(args: &[&str]) -> Result<crate::args::Cli, clap::Error> {
        use clap::Parser as _;
        crate::args::Cli::try_parse_from(std::iter::once("fleetplane").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_checked() {
        let pool = "name=cp,count=1,type=m5.large,control-plane";
        for good in [
            &[
                "cluster",
                "create",
                "dev",
                "--template",
                "web",
                "--pool",
                pool,
            ][..],
            &[
                "cluster",
                "create",
                "dev",
                "--template",
                "web",
                "--template-scope",
                "tenant",
                "--var",
                "aws.greeting=hi",
                "--time-zone",
                "UTC",
                "--pool",
                pool,
                "--label",
                "ring=canary",
                "--wait",
                "--timeout",
                "60",
            ],
            &[
                "cluster",
                "create",
                "solo",
                "--profile",
                "aws@1.0.0",
                "--pool",
                pool,
            ],
            &["cluster", "create", "-f", "c.yaml", "--wait"],
            &["cluster", "create", "dev", "-f", "c.yaml"],
            &["cluster", "ls", "-o", "json"],
            &["cluster", "get", "dev"],
            &["cluster", "delete", "dev", "--wait"],
            &["cluster", "events", "dev", "--follow", "--limit", "5"],
            &["cluster", "set-vars", "dev", "--unset", "aws.replicas"],
            &["cluster", "set-vars", "dev", "--var", "aws.x=1", "--wait"],
            &[
                "cluster",
                "attach",
                "solo",
                "--template",
                "web",
                "--var",
                "a.b=c",
            ],
            &["cluster", "detach", "solo"],
        ] {
            assert!(cli(good).is_ok(), "{good:?}: {:?}", cli(good).err());
        }
        for bad in [
            &["cluster", "create", "dev", "--pool", pool][..],
            &["cluster", "create", "dev", "--template", "web"],
            &["cluster", "create", "--template", "web", "--pool", pool],
            &[
                "cluster",
                "create",
                "dev",
                "--template",
                "web",
                "--profile",
                "a@1",
                "--pool",
                pool,
            ],
            &[
                "cluster",
                "create",
                "dev",
                "-f",
                "c.yaml",
                "--template",
                "web",
            ],
            &[
                "cluster",
                "create",
                "dev",
                "--template",
                "web",
                "--pool",
                "name=cp",
            ],
            &[
                "cluster",
                "create",
                "dev",
                "--template",
                "web",
                "--pool",
                pool,
                "--var",
                "greeting=x",
            ],
            &[
                "cluster",
                "create",
                "dev",
                "--template",
                "web",
                "--pool",
                pool,
                "--timeout",
                "5",
            ],
            &["cluster", "set-vars", "dev"],
            &["cluster", "set-vars", "dev", "--unset", "aws.x=1"],
            &["cluster", "attach", "solo"],
            &["cluster", "events", "dev", "--limit", "0"],
        ] {
            assert_eq!(cli(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }
}
