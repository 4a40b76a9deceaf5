//! Maintenance policies (DESIGN §4.5): schedules whose windows bound when updates may start,
//! and exclusions (freezes) during which none may start.

use crate::error::{DomainError, ErrorCode, Problems, index, path};
use crate::meta::validate_name;
use fleetplane_scheduler::{Calendar, CronExpr, Exclusion, Schedule, Window};
use serde::{Deserialize, Serialize};

/// One schedule: windows open at every fire time of `cron` and last `durationHours`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Unique in the policy.
    pub name: String,
    /// Five cron fields, or `@daily`, `@weekly`, `@monthly`; evaluated in each cluster's zone.
    pub cron: String,
    /// How long each window lasts, 1–24 hours.
    pub duration_hours: u32,
}

/// A freeze: no update may start in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExclusionSpec {
    /// Unique in the policy.
    pub name: String,
    /// RFC 3339 instant.
    pub start: String,
    /// RFC 3339 instant, after `start`.
    pub end: String,
}

/// The spec of a maintenance policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MaintenancePolicySpec {
    /// The schedules.
    #[serde(default)]
    pub schedules: Vec<ScheduleSpec>,
    /// The freezes.
    #[serde(default)]
    pub exclusions: Vec<ExclusionSpec>,
}

/// The observed state shown with a policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenancePolicyStatus {
    /// The next windows in UTC (clusters see them in their own zones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_windows: Vec<Window>,
    /// How many templates link the policy.
    #[serde(default)]
    pub templates: u64,
}

/// The most schedules or exclusions a policy may have.
pub const MAX_ENTRIES: usize = 64;

impl MaintenancePolicySpec {
    /// Validates every field and builds the calendar. All problems are reported at once.
    ///
    /// # Errors
    /// `ValidationFailed` with paths such as `spec.schedules[1].cron`.
    pub fn calendar(&self) -> Result<Calendar, DomainError> {
        let mut p = Problems::new();
        let mut schedules = Vec::new();
        if self.schedules.len() > MAX_ENTRIES {
            p.push("spec.schedules", format!("at most {MAX_ENTRIES} schedules"));
        }
        for (i, s) in self.schedules.iter().enumerate() {
            let at = index("spec.schedules", i);
            p.check(validate_name(&path(&at, "name"), &s.name));
            if self.schedules[..i].iter().any(|o| o.name == s.name) {
                p.push(
                    path(&at, "name"),
                    format!("schedule {:?} appears twice", s.name),
                );
            }
            let cron = match CronExpr::parse(&s.cron) {
                Ok(c) => Some(c),
                Err(e) => {
                    p.push(path(&at, "cron"), e.to_string());
                    None
                }
            };
            if !(1..=24).contains(&s.duration_hours) {
                p.push(path(&at, "durationHours"), "must be between 1 and 24");
            }
            if let Some(cron) = cron {
                if !cron.is_satisfiable() {
                    p.push(path(&at, "cron"), "never fires (no such date)");
                }
                let hours = u8::try_from(s.duration_hours.clamp(1, 24)).unwrap_or(1);
                if let Ok(s) = Schedule::new(s.name.clone(), cron, hours) {
                    schedules.push(s);
                }
            }
        }
        let mut exclusions = Vec::new();
        if self.exclusions.len() > MAX_ENTRIES {
            p.push(
                "spec.exclusions",
                format!("at most {MAX_ENTRIES} exclusions"),
            );
        }
        for (i, e) in self.exclusions.iter().enumerate() {
            let at = index("spec.exclusions", i);
            p.check(validate_name(&path(&at, "name"), &e.name));
            if self.exclusions[..i].iter().any(|o| o.name == e.name) {
                p.push(
                    path(&at, "name"),
                    format!("exclusion {:?} appears twice", e.name),
                );
            }
            let start = parse_instant(&mut p, &path(&at, "start"), &e.start);
            let end = parse_instant(&mut p, &path(&at, "end"), &e.end);
            if let (Some(s), Some(t)) = (start, end) {
                match Exclusion::new(e.name.clone(), s, t) {
                    Ok(x) => exclusions.push(x),
                    Err(_) => p.push(path(&at, "end"), "must be after start"),
                }
            }
        }
        p.finish()?;
        Ok(Calendar::new(schedules, exclusions))
    }

    /// Checks the rule that a policy serving clusters keeps a schedule.
    ///
    /// # Errors
    /// `PolicyNeedsSchedule` when `serves_clusters` and there is no schedule.
    pub fn check_in_use(&self, serves_clusters: bool) -> Result<(), DomainError> {
        if serves_clusters && self.schedules.is_empty() {
            return Err(DomainError::at(
                ErrorCode::PolicyNeedsSchedule,
                "spec.schedules",
                "the policy is linked to a template that has clusters; keep at least one schedule",
            ));
        }
        Ok(())
    }
}

fn parse_instant(p: &mut Problems, field: &str, text: &str) -> Option<jiff::Timestamp> {
    match text.parse::<jiff::Timestamp>() {
        Ok(t) => Some(t),
        Err(_) => {
            p.push(
                field,
                format!("{text:?} is not an RFC 3339 instant (e.g. 2026-12-24T00:00:00Z)"),
            );
            None
        }
    }
}

/// Refuses deleting a policy that templates link.
///
/// # Errors
/// `PolicyInUse` naming one template.
pub fn check_delete(linking_template: Option<&str>) -> Result<(), DomainError> {
    match linking_template {
        Some(t) => Err(DomainError::new(
            ErrorCode::PolicyInUse,
            format!("cluster template {t:?} links this policy; point it at another policy first"),
        )),
        None => Ok(()),
    }
}

/// A ready-made set of schedules offered to clients.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preset {
    /// Stable name (`weekly-sunday-midnight`).
    pub name: &'static str,
    /// For people.
    pub description: &'static str,
    /// The spec it produces.
    pub spec: MaintenancePolicySpec,
}

/// The presets: daily, weekly on Sunday at midnight, monthly on the 1st, every two months on
/// the 1st.
pub fn presets() -> Vec<Preset> {
    let one = |name: &str, cron: &str, hours: u32| MaintenancePolicySpec {
        schedules: vec![ScheduleSpec {
            name: name.to_owned(),
            cron: cron.to_owned(),
            duration_hours: hours,
        }],
        exclusions: Vec::new(),
    };
    vec![
        Preset {
            name: "daily",
            description: "Every day at midnight, 4 hours",
            spec: one("daily", "0 0 * * *", 4),
        },
        Preset {
            name: "weekly-sunday-midnight",
            description: "Every Sunday at midnight, 4 hours",
            spec: one("weekly", "0 0 * * 0", 4),
        },
        Preset {
            name: "monthly",
            description: "The 1st of every month at midnight, 4 hours",
            spec: one("monthly", "0 0 1 * *", 4),
        },
        Preset {
            name: "bimonthly",
            description: "The 1st of every second month at midnight, 4 hours",
            spec: one("bimonthly", "0 0 1 */2 *", 4),
        },
    ]
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
    fn every_problem_is_reported_with_its_path() {
        let spec = MaintenancePolicySpec {
            schedules: vec![
                sched("a", "0 0 * * 0", 4),
                sched("a", "61 0 * * *", 0),
                sched("b", "0 0 31 2 *", 25),
            ],
            exclusions: vec![
                ExclusionSpec {
                    name: "xmas".into(),
                    start: "2026-12-24T00:00:00Z".into(),
                    end: "2026-12-20T00:00:00Z".into(),
                },
                ExclusionSpec {
                    name: "Bad".into(),
                    start: "tomorrow".into(),
                    end: "2026-12-20T00:00:00Z".into(),
                },
            ],
        };
        let e = spec.calendar().unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        let fields: Vec<&str> = e.errors.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.schedules[1].name",
                "spec.schedules[1].cron",
                "spec.schedules[1].durationHours",
                "spec.schedules[2].durationHours",
                "spec.schedules[2].cron",
                "spec.exclusions[0].end",
                "spec.exclusions[1].name",
                "spec.exclusions[1].start",
            ]
        );
    }

    #[test]
    fn presets_are_valid_and_a_serving_policy_keeps_a_schedule() {
        for p in presets() {
            let cal = p.spec.calendar().unwrap();
            let next = cal.next_start(
                "2026-11-21T12:00:00Z".parse().unwrap(),
                &jiff::tz::TimeZone::UTC,
            );
            assert!(next.is_some(), "{}", p.name);
        }
        let empty = MaintenancePolicySpec::default();
        assert!(empty.calendar().is_ok());
        assert!(empty.check_in_use(false).is_ok());
        let e = empty.check_in_use(true).unwrap_err();
        assert_eq!(e.code, ErrorCode::PolicyNeedsSchedule);
        assert_eq!(e.errors[0].field, "spec.schedules");
        assert_eq!(
            check_delete(Some("dev")).unwrap_err().code,
            ErrorCode::PolicyInUse
        );
    }
}
