//! Helpers shared by the test modules.

use fleetplane_scheduler::CronExpr;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The zones the brief names, plus UTC.
pub const ZONES: [&str; 6] = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "UTC",
];

pub fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or_else(|e| panic!("zone {name}: {e}"))
}

pub fn cron(text: &str) -> CronExpr {
    CronExpr::parse(text).unwrap_or_else(|e| panic!("`{text}`: {e}"))
}

/// Parses an RFC 3339 instant such as `2025-03-30T03:00+02:00`.
pub fn at(text: &str) -> Timestamp {
    text.parse()
        .unwrap_or_else(|e| panic!("instant {text}: {e}"))
}

/// An instant as local time with its offset, minute precision: `2025-03-30T03:00+02:00`.
pub fn local(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned(zone.clone())
        .strftime("%Y-%m-%dT%H:%M%:z")
        .to_string()
}

/// The next `n` fires strictly after `from`, shown in local time.
pub fn fires(expr: &str, zone: &str, from: &str, n: usize) -> Vec<String> {
    let e = cron(expr);
    let z = tz(zone);
    std::iter::successors(e.next_fire_after(at(from), &z), |t| {
        e.next_fire_after(*t, &z)
    })
    .take(n)
    .map(|t| local(t, &z))
    .collect()
}
