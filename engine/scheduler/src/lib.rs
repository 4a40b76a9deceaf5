//! Cron schedules and maintenance windows, evaluated in IANA time zones.
//!
//! Pure: no I/O and no clock. Every query takes the instant it is about (`now` comes from the
//! caller) and the cluster's [`jiff::tz::TimeZone`]; the rules, including daylight saving, are in
//! `docs/maintenance-windows.md`.
//!
//! ```
//! use fleetplane_scheduler::{Calendar, CronExpr, Schedule};
//! use jiff::{Timestamp, tz::TimeZone};
//!
//! let nightly = Schedule::new("nightly", CronExpr::parse("30 2 * * *")?, 3)?;
//! let calendar = Calendar::new(vec![nightly], vec![]);
//! let berlin = TimeZone::get("Europe/Berlin")?;
//! // Spring forward: 02:30 does not exist on 2025-03-30, so the window opens at 03:00 local.
//! let now: Timestamp = "2025-03-29T12:00:00Z".parse()?;
//! let window = calendar.next_start(now, &berlin).expect("a window");
//! assert_eq!(window.start.to_string(), "2025-03-30T01:00:00Z");
//! assert_eq!(window.end.to_string(), "2025-03-30T04:00:00Z");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod calendar;
mod civil;
mod cron;

pub use calendar::{Calendar, Exclusion, Schedule, ScheduleError, Window};
pub use cron::{CronError, CronExpr, CronField, FieldProblem};
