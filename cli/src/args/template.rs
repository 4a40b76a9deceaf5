//! `fleetplane template …`: cluster templates and the variable values of their clusters.
//!
//! A profile is named `[tenant:]NAME@VERSION`: the `tenant:` prefix links a tenant profile from
//! a project template (without it the profile lives in the template's own scope). `--policy`
//! takes the same prefix: `[tenant:]NAME`.

use super::{DeleteArgs, ListArgs, MetadataArgs};
use clap::{Args, Subcommand};

/// Subcommands of `fleetplane template`.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// List the cluster templates of the tenant, or of the project of `--project`.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Show one cluster template.
    Get {
        /// The template.
        name: String,
    },
    /// Create a cluster template (fails if it exists).
    Create(CreateTemplateArgs),
    /// Delete a cluster template (refused while clusters use it; profiles and policy stay).
    #[command(alias = "rm")]
    Delete(DeleteArgs),
    /// Replace the linked profile versions (a new revision when the set changes).
    ///
    /// The template's variable settings of profiles that stay (by name) are kept.
    SetProfiles(SetProfilesArgs),
    /// Show the variable values of the template's clusters for its current revision.
    #[command(alias = "vars")]
    Variables {
        /// The template.
        name: String,
    },
    /// Assign variable values to the template's clusters (all of them unless `--cluster`).
    Assign(AssignArgs),
    /// Preview the rollout of the current revision: per cluster its current and target
    /// revision, wave, expected start, pending variables and whether machines are replaced
    /// (`-o json|yaml` adds the layer changes and values diffs).
    Plan {
        /// The template.
        name: String,
    },
    /// Upgrade now: move the template's clusters (all, or those of `--cluster`) to the current
    /// revision at once, ignoring maintenance windows and exclusions.
    UpgradeNow(UpgradeNowArgs),
    /// Pause the template's rollout (clusters updating finish; no new one starts).
    Pause(RolloutActionArgs),
    /// Resume the template's paused rollout: failed clusters are retried, then it continues.
    Resume(RolloutActionArgs),
    /// Roll back to the previous revision, at once, for the clusters that moved.
    Rollback(RolloutActionArgs),
    /// Show the template's rollouts (queued, current, past), newest first.
    Rollouts {
        /// The template.
        name: String,
    },
    /// Show the template's rollout state at a glance; when paused, why, which clusters failed
    /// with their last errors, and what resume would do.
    Status {
        /// The template.
        name: String,
    },
}

/// Arguments of `fleetplane template upgrade-now`.
#[derive(Debug, Args)]
pub struct UpgradeNowArgs {
    /// The template.
    pub name: String,
    /// Only this cluster (repeatable; `project/name` for a tenant template) [default: every
    /// cluster of the template].
    #[arg(long = "cluster", value_name = "CLUSTER")]
    pub clusters: Vec<String>,
    /// Wait until the clusters run the revision, showing per-wave progress on standard error;
    /// exit 1 when the rollout pauses, fails or ends with clusters left behind.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds [default: 3600].
    #[arg(long, value_name = "SECONDS", requires = "wait",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: Option<u64>,
}

/// Arguments of `fleetplane template pause|resume|rollback`.
#[derive(Debug, Args)]
pub struct RolloutActionArgs {
    /// The template.
    pub name: String,
    /// Why (recorded in the run's journal and the audit log).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// Arguments of `fleetplane template create`.
#[derive(Debug, Args)]
pub struct CreateTemplateArgs {
    /// The template name (a DNS label).
    pub name: String,
    /// The cloud type, e.g. `aws` (fixed once created).
    #[arg(long, value_name = "TYPE")]
    pub cloud_type: String,
    /// A profile version `[tenant:]NAME@VERSION` (repeatable): exactly one `full` or `infra`
    /// profile and any number of add-ons.
    #[arg(long = "profile", value_name = "[tenant:]NAME@VERSION", required = true,
          value_parser = parse_profile)]
    pub profiles: Vec<ProfileArg>,
    /// The maintenance policy `[tenant:]NAME`.
    #[arg(long, value_name = "[tenant:]NAME", value_parser = parse_policy)]
    pub policy: PolicyArg,
    /// Description and labels.
    #[command(flatten)]
    pub metadata: MetadataArgs,
}

/// Arguments of `fleetplane template set-profiles`.
#[derive(Debug, Args)]
pub struct SetProfilesArgs {
    /// The template.
    pub name: String,
    /// A profile version `[tenant:]NAME@VERSION` (repeatable): the whole new set.
    #[arg(long = "profile", value_name = "[tenant:]NAME@VERSION", required = true,
          value_parser = parse_profile)]
    pub profiles: Vec<ProfileArg>,
    /// Write only if the template is still at this resource version [default: the version
    /// just read].
    #[arg(long, value_name = "VERSION")]
    pub if_match: Option<String>,
}

/// Arguments of `fleetplane template assign`.
#[derive(Debug, Args)]
pub struct AssignArgs {
    /// The template.
    pub name: String,
    /// `PROFILE.VARIABLE=VALUE`, or `PROFILE.VARIABLE` with `--keep-running` (repeatable).
    #[arg(long = "var", value_name = "PROFILE.VARIABLE[=VALUE]", required = true,
          value_parser = parse_var)]
    pub vars: Vec<VarArg>,
    /// Only these clusters (repeatable; `project/name` for a tenant template) [default: every
    /// cluster of the template].
    #[arg(long = "cluster", value_name = "CLUSTER")]
    pub clusters: Vec<String>,
    /// Confirm each cluster's running value instead of assigning a new one.
    #[arg(long)]
    pub keep_running: bool,
}

/// A profile version named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileArg {
    /// The profile name.
    pub name: String,
    /// The version.
    pub version: String,
    /// True with the `tenant:` prefix.
    pub tenant: bool,
}

/// A maintenance policy named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyArg {
    /// The policy name.
    pub name: String,
    /// True with the `tenant:` prefix.
    pub tenant: bool,
}

/// One `--var` of `assign`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarArg {
    /// The linked profile's name.
    pub profile: String,
    /// The variable.
    pub variable: String,
    /// The value; `None` without `=` (with `--keep-running`).
    pub value: Option<String>,
}

/// Takes the `tenant:` prefix off; any other `SCOPE:` is an error (names never hold `:`).
fn scope_prefix(text: &str) -> Result<(bool, &str), String> {
    match text.split_once(':') {
        None => Ok((false, text)),
        Some(("tenant", rest)) => Ok((true, rest)),
        Some((other, _)) => Err(format!(
            "unknown scope `{other}:` (only `tenant:` may prefix a name)"
        )),
    }
}

/// Parses `[tenant:]NAME@VERSION`. The server judges the name and version.
///
/// # Errors
/// An unknown scope prefix, no `@`, an empty name or version.
pub fn parse_profile(text: &str) -> Result<ProfileArg, String> {
    let (tenant, rest) = scope_prefix(text.trim())?;
    match rest.split_once('@') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => Ok(ProfileArg {
            name: name.to_owned(),
            version: version.to_owned(),
            tenant,
        }),
        _ => Err(format!("`{text}` is not [tenant:]NAME@VERSION")),
    }
}

/// Parses `[tenant:]NAME`.
///
/// # Errors
/// An unknown scope prefix or an empty name.
pub fn parse_policy(text: &str) -> Result<PolicyArg, String> {
    let (tenant, name) = scope_prefix(text.trim())?;
    if name.is_empty() {
        return Err(format!("`{text}` is not [tenant:]NAME"));
    }
    Ok(PolicyArg {
        name: name.to_owned(),
        tenant,
    })
}

/// Parses `PROFILE.VARIABLE[=VALUE]`: the profile is everything before the first `.` (profile
/// names are DNS labels), the value everything after the first `=` (it may hold `=` and `.`).
///
/// # Errors
/// No `.`, an empty profile or variable.
pub fn parse_var(text: &str) -> Result<VarArg, String> {
    let (key, value) = match text.split_once('=') {
        Some((k, v)) => (k, Some(v.to_owned())),
        None => (text, None),
    };
    match key.trim().split_once('.') {
        Some((profile, variable)) if !profile.is_empty() && !variable.is_empty() => Ok(VarArg {
            profile: profile.to_owned(),
            variable: variable.to_owned(),
            value,
        }),
        _ => Err(format!("`{text}` is not PROFILE.VARIABLE[=VALUE]")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(name: &str, version: &str, tenant: bool) -> ProfileArg {
        ProfileArg {
            name: name.into(),
            version: version.into(),
            tenant,
        }
    }

    #[test]
    fn profiles_parse_with_and_without_the_tenant_prefix() {
        let cases = [
            ("aws@1.0.0", Ok(profile("aws", "1.0.0", false))),
            ("tenant:obs@1.0.0", Ok(profile("obs", "1.0.0", true))),
            (
                " web@2.0.0-rc.1+b5 ",
                Ok(profile("web", "2.0.0-rc.1+b5", false)),
            ),
            ("aws", Err("not [tenant:]NAME@VERSION")),
            ("aws@", Err("not [tenant:]NAME@VERSION")),
            ("@1.0.0", Err("not [tenant:]NAME@VERSION")),
            ("tenant:", Err("not [tenant:]NAME@VERSION")),
            ("project:aws@1.0.0", Err("unknown scope `project:`")),
        ];
        for (text, want) in cases {
            match (parse_profile(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(e), Err(part)) => assert!(e.contains(part), "{text}: {e}"),
                (got, want) => panic!("{text}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn policies_parse() {
        assert_eq!(
            parse_policy("tenant:weekly"),
            Ok(PolicyArg {
                name: "weekly".into(),
                tenant: true
            })
        );
        assert_eq!(
            parse_policy("weekly"),
            Ok(PolicyArg {
                name: "weekly".into(),
                tenant: false
            })
        );
        assert!(parse_policy("tenant:").is_err());
        assert!(parse_policy("team:weekly").is_err());
    }

    #[test]
    fn vars_split_at_the_first_dot_and_the_first_equals() {
        let var = |p: &str, v: &str, value: Option<&str>| VarArg {
            profile: p.into(),
            variable: v.into(),
            value: value.map(str::to_owned),
        };
        let cases = [
            ("aws.greeting=hi", Ok(var("aws", "greeting", Some("hi")))),
            ("aws.url=a=b.c", Ok(var("aws", "url", Some("a=b.c")))),
            ("aws.greeting=", Ok(var("aws", "greeting", Some("")))),
            ("aws.greeting", Ok(var("aws", "greeting", None))),
            ("aws", Err(())),
            ("aws.=x", Err(())),
            (".greeting=x", Err(())),
            ("=x", Err(())),
        ];
        for (text, want) in cases {
            match (parse_var(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(e), Err(())) => assert!(e.contains("PROFILE.VARIABLE"), "{text}: {e}"),
                (got, want) => panic!("{text}: {got:?}, want {want:?}"),
            }
        }
    }

    fn cli(args: &[&str]) -> Result<crate::args::Cli, clap::Error> {
        use clap::Parser as _;
        crate::args::Cli::try_parse_from(std::iter::once("fleetplane").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_checks_shapes_and_required_flags() {
        let parsed = cli(&[
            "template",
            "create",
            "web",
            "--cloud-type",
            "aws",
            "--profile",
            "aws-standard@1.0.0",
            "--profile",
            "tenant:observability@1.0.0",
            "--policy",
            "weekly",
        ])
        .unwrap();
        let crate::args::Command::Template(TemplateCommand::Create(args)) = parsed.command else {
            panic!("not template create: {parsed:?}");
        };
        assert_eq!(
            args.profiles,
            [
                profile("aws-standard", "1.0.0", false),
                profile("observability", "1.0.0", true)
            ]
        );
        assert!(cli(&["cluster-template", "ls"]).is_ok());
        let parsed = cli(&[
            "template",
            "upgrade-now",
            "web",
            "--cluster",
            "dev",
            "--cluster",
            "stage",
            "--wait",
            "--timeout",
            "60",
        ])
        .unwrap();
        let crate::args::Command::Template(TemplateCommand::UpgradeNow(u)) = parsed.command else {
            panic!("not template upgrade-now: {parsed:?}");
        };
        assert_eq!(u.clusters, ["dev", "stage"]);
        assert!(u.wait);
        assert_eq!(u.timeout, Some(60));
        for good in [
            &["template", "plan", "web", "-o", "json"][..],
            &["template", "pause", "web", "--reason", "freeze"],
            &["template", "resume", "web"],
            &["template", "rollback", "web"],
            &["template", "rollouts", "web"],
            &["template", "status", "web", "-o", "yaml"],
        ] {
            assert!(cli(good).is_ok(), "{good:?}: {:?}", cli(good).err());
        }
        for bad in [
            &[
                "template",
                "create",
                "t",
                "--cloud-type",
                "aws",
                "--policy",
                "p",
            ][..],
            &[
                "template",
                "create",
                "t",
                "--profile",
                "a@1",
                "--policy",
                "p",
            ],
            &[
                "template",
                "create",
                "t",
                "--cloud-type",
                "aws",
                "--profile",
                "a",
                "--policy",
                "p",
            ],
            &["template", "set-profiles", "t"],
            &["template", "assign", "t"],
            &["template", "assign", "t", "--var", "novar"],
            &["template", "variables"],
            &["template", "plan"],
            &["template", "upgrade-now"],
            &["template", "upgrade-now", "t", "--timeout", "5"],
            &["template", "pause"],
            &["template", "rollback", "t", "--cluster", "c"],
        ] {
            assert_eq!(cli(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }
}
