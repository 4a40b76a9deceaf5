//! `fleetplane policy …`: maintenance policies.
//!
//! `--schedule` and `--exclusion` take `KEY=VALUE` pairs separated by commas. A cron expression
//! has spaces and may itself hold commas (`0 0 * * 1,3`), so a comma separates two pairs only
//! when a known key and `=` follow it; every other comma belongs to the value.

use super::{DeleteArgs, ListArgs, MetadataArgs};
use clap::{Args, Subcommand};
use fleetplane_client::{ExclusionSpec, ScheduleSpec};

/// Subcommands of `fleetplane policy`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the maintenance policies of the tenant, or of the project of `--project`.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Show one maintenance policy.
    Get {
        /// The policy.
        name: String,
    },
    /// Create a maintenance policy (fails if it exists).
    Create(CreatePolicyArgs),
    /// Delete a maintenance policy (refused while a cluster template links it).
    #[command(alias = "rm")]
    Delete(DeleteArgs),
    /// Show the next windows of a policy in a time zone.
    Windows(WindowsArgs),
    /// List the ready-made schedules `create --preset` accepts.
    Presets,
}

/// Arguments of `fleetplane policy create`.
#[derive(Debug, Args)]
pub struct CreatePolicyArgs {
    /// The policy name (a DNS label).
    pub name: String,
    /// A schedule, e.g. `name=weekly,cron=0 0 * * 0,hours=4` (repeatable). The cron expression
    /// is evaluated in each cluster's time zone; `hours` is how long each window lasts.
    #[arg(
        long = "schedule",
        value_name = "name=NAME,cron=EXPR,hours=N",
        value_parser = parse_schedule
    )]
    pub schedules: Vec<ScheduleSpec>,
    /// A freeze, e.g. `name=xmas,start=2026-12-24T00:00:00Z,end=2026-12-27T00:00:00Z`
    /// (repeatable): no update starts between `start` and `end`.
    #[arg(
        long = "exclusion",
        value_name = "name=NAME,start=TIME,end=TIME",
        value_parser = parse_exclusion
    )]
    pub exclusions: Vec<ExclusionSpec>,
    /// Start from a preset (`fleetplane policy presets` lists them); `--schedule` and
    /// `--exclusion` add to it.
    #[arg(long, value_name = "PRESET")]
    pub preset: Option<String>,
    /// Description and labels.
    #[command(flatten)]
    pub metadata: MetadataArgs,
}

/// Arguments of `fleetplane policy windows`.
#[derive(Debug, Args)]
pub struct WindowsArgs {
    /// The policy.
    pub name: String,
    /// The IANA time zone the schedules are evaluated in, e.g. `Europe/Berlin` [default: UTC].
    #[arg(long, short = 'z', value_name = "ZONE")]
    pub zone: Option<String>,
    /// How many windows [default: 5].
    #[arg(long, short = 'n', value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub count: Option<u32>,
    /// Only windows opening after this instant (RFC 3339) [default: now].
    #[arg(long, value_name = "TIME")]
    pub after: Option<String>,
}

/// Splits `KEY=VALUE,KEY=VALUE` into the values of `keys`, in the order of `keys`. A comma
/// separates two pairs only when one of `keys` and `=` follow it (spaces allowed before the
/// key); any other comma is part of the value. Values are trimmed and never hold `=`.
///
/// # Errors
/// A pair that is not `KEY=VALUE`, an unknown or repeated key, an empty value.
fn parse_pairs(text: &str, keys: &[&str]) -> Result<Vec<Option<String>>, String> {
    let starts_pair = |rest: &str| {
        let rest = rest.trim_start();
        keys.iter().any(|k| {
            rest.strip_prefix(k)
                .is_some_and(|after| after.trim_start().starts_with('='))
        })
    };
    let mut pieces = Vec::new();
    let mut from = 0;
    for (i, _) in text.match_indices(',') {
        if starts_pair(&text[i + 1..]) {
            pieces.push(&text[from..i]);
            from = i + 1;
        }
    }
    pieces.push(&text[from..]);
    let expected = keys.join(", ");
    let mut values = vec![None; keys.len()];
    for piece in pieces {
        let Some((key, value)) = piece.split_once('=') else {
            return Err(format!(
                "`{}` is not KEY=VALUE (keys: {expected})",
                piece.trim()
            ));
        };
        let key = key.trim();
        let Some(slot) = keys.iter().position(|k| *k == key) else {
            return Err(format!("unknown key `{key}` (keys: {expected})"));
        };
        if values[slot].is_some() {
            return Err(format!("`{key}` is given twice"));
        }
        let value = value.trim();
        // No value of these flags has `=`, so one in a value is a pair with an unknown key
        // (`…,zone=UTC`) that did not start a new pair.
        if let Some(eq) = value.find('=') {
            let unknown = value[..eq].rsplit(',').next().unwrap_or_default().trim();
            return Err(format!("unknown key `{unknown}` (keys: {expected})"));
        }
        if value.is_empty() {
            return Err(format!("`{key}` is empty"));
        }
        values[slot] = Some(value.to_owned());
    }
    Ok(values)
}

/// Takes a required value out of [`parse_pairs`]' answer.
fn required(values: &mut [Option<String>], keys: &[&str], i: usize) -> Result<String, String> {
    values[i]
        .take()
        .ok_or_else(|| format!("`{}=` is missing", keys[i]))
}

/// Parses `name=NAME,cron=EXPR,hours=N` (keys in any order) into a schedule. Only the shape is
/// checked here; the server validates the name, the cron expression and the hours and names the
/// field of each problem.
///
/// # Errors
/// See [`parse_pairs`]; a missing key; `hours` not a whole number.
pub fn parse_schedule(text: &str) -> Result<ScheduleSpec, String> {
    const KEYS: &[&str] = &["name", "cron", "hours"];
    let mut v = parse_pairs(text, KEYS)?;
    let name = required(&mut v, KEYS, 0)?;
    let cron = required(&mut v, KEYS, 1)?;
    let hours = required(&mut v, KEYS, 2)?;
    let duration_hours = hours
        .parse::<u32>()
        .map_err(|_| format!("hours `{hours}` is not a whole number of hours"))?;
    Ok(ScheduleSpec {
        name,
        cron,
        duration_hours,
    })
}

/// Parses `name=NAME,start=TIME,end=TIME` (keys in any order) into an exclusion. The server
/// validates the name and the instants.
///
/// # Errors
/// See [`parse_pairs`]; a missing key.
pub fn parse_exclusion(text: &str) -> Result<ExclusionSpec, String> {
    const KEYS: &[&str] = &["name", "start", "end"];
    let mut v = parse_pairs(text, KEYS)?;
    Ok(ExclusionSpec {
        name: required(&mut v, KEYS, 0)?,
        start: required(&mut v, KEYS, 1)?,
        end: required(&mut v, KEYS, 2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(name: &str, cron: &str, hours: u32) -> ScheduleSpec {
        ScheduleSpec {
            name: name.into(),
            cron: cron.into(),
            duration_hours: hours,
        }
    }

    #[test]
    fn schedules_parse_with_spaces_and_commas_in_cron() {
        let cases = [
            (
                "name=weekly,cron=0 0 * * 0,hours=4",
                sched("weekly", "0 0 * * 0", 4),
            ),
            (
                "name=mw,cron=0 0 * * 1,3,hours=2",
                sched("mw", "0 0 * * 1,3", 2),
            ),
            (
                "cron=0 0,12 1,15 * 1,3,5,hours=1,name=x",
                sched("x", "0 0,12 1,15 * 1,3,5", 1),
            ),
            ("hours=24, name=d , cron=@daily", sched("d", "@daily", 24)),
            (
                "name=n,cron=*/15 2 * * MON,WED,hours=3",
                sched("n", "*/15 2 * * MON,WED", 3),
            ),
            // The server, not the parser, judges the cron text and the hours' range.
            (
                "name=bad,cron=61 0 * *,hours=99",
                sched("bad", "61 0 * *", 99),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_schedule(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn every_key_order_and_comma_list_round_trips() {
        let crons = [
            "0 0 * * 0",
            "0 0 * * 1,3",
            "0,30 0 1,15 * 1,2,3",
            "@weekly",
            "5 4 * * sun",
        ];
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for cron in crons {
            for order in orders {
                for sep in [",", ", "] {
                    let pairs = [
                        "name=s1".to_owned(),
                        format!("cron={cron}"),
                        "hours=6".to_owned(),
                    ];
                    let text = order.map(|i| pairs[i].clone()).join(sep);
                    assert_eq!(parse_schedule(&text), Ok(sched("s1", cron, 6)), "{text}");
                }
            }
        }
    }

    #[test]
    fn malformed_schedules_say_what_is_wrong() {
        let cases = [
            ("cron=0 0 * * 0,hours=4", "`name=` is missing"),
            ("name=a,hours=4", "`cron=` is missing"),
            ("name=a,cron=0 0 * * 0", "`hours=` is missing"),
            ("name=a,cron=0 0 * * 0,hours=four", "not a whole number"),
            ("name=a,cron=0 0 * * 0,hours=-1", "not a whole number"),
            ("name=a,cron=,hours=4", "`cron` is empty"),
            ("name=a,name=b,cron=@daily,hours=1", "given twice"),
            ("weekly,cron=@daily,hours=1", "not KEY=VALUE"),
            ("name=a,cron=@daily,hours=1,zone=UTC", "unknown key `zone`"),
            ("name=a,cron=@daily,zone=UTC,hours=1", "unknown key `zone`"),
            ("when=a,cron=@daily,hours=1", "unknown key `when`"),
            ("", "not KEY=VALUE"),
        ];
        for (text, want) in cases {
            let e = parse_schedule(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    fn cli(args: &[&str]) -> Result<crate::args::Cli, clap::Error> {
        use clap::Parser as _;
        crate::args::Cli::try_parse_from(std::iter::once("fleetplane").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_takes_repeated_schedules_and_checks_their_shape() {
        let parsed = cli(&[
            "policy",
            "create",
            "p",
            "--schedule",
            "name=a,cron=0 0 * * 1,3,hours=4",
            "--schedule",
            "name=b,cron=@daily,hours=1",
            "--preset",
            "daily",
            "-p",
            "web",
        ])
        .unwrap();
        let crate::args::Command::Policy(PolicyCommand::Create(args)) = parsed.command else {
            panic!("not policy create: {parsed:?}");
        };
        assert_eq!(
            args.schedules,
            [sched("a", "0 0 * * 1,3", 4), sched("b", "@daily", 1)]
        );
        assert_eq!(args.preset.as_deref(), Some("daily"));
        assert_eq!(parsed.global.project.as_deref(), Some("web"));
        for bad in [
            &["policy", "create", "p", "--schedule", "cron=@daily,hours=1"][..],
            &["policy", "create", "p", "--exclusion", "name=x,start=a"],
            &["policy", "windows", "p", "--count", "0"],
            &["policy", "windows", "p", "--count", "101"],
            &["policy", "windows"],
        ] {
            assert_eq!(cli(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn exclusions_parse() {
        assert_eq!(
            parse_exclusion("name=xmas,start=2026-12-24T00:00:00Z,end=2026-12-27T00:00:00+01:00"),
            Ok(ExclusionSpec {
                name: "xmas".into(),
                start: "2026-12-24T00:00:00Z".into(),
                end: "2026-12-27T00:00:00+01:00".into(),
            })
        );
        assert!(
            parse_exclusion("name=x,start=2026-12-24T00:00:00Z")
                .unwrap_err()
                .contains("`end=` is missing")
        );
        assert!(
            parse_exclusion("name=x,cron=@daily,start=a,end=b")
                .unwrap_err()
                .contains("unknown key `cron`")
        );
    }
}
