//! Parses arbitrary UTF-8 as a cron expression; when it parses, evaluates it in zones with
//! unusual daylight saving, in both directions and around the ends of the supported range.
//! Must never panic or hang.
#![no_main]

use std::sync::LazyLock;

use fleetplane_scheduler::{Calendar, CronExpr, Schedule};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use libfuzzer_sys::fuzz_target;

static ZONES: LazyLock<Vec<TimeZone>> = LazyLock::new(|| {
    [
        "UTC",
        "Europe/Berlin",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "Pacific/Apia",
    ]
    .iter()
    .filter_map(|name| TimeZone::get(name).ok())
    .collect()
});

static INSTANTS: LazyLock<Vec<Timestamp>> = LazyLock::new(|| {
    [
        "2025-03-30T00:59:30Z",
        "2025-10-26T00:30:00Z",
        "2011-12-29T09:59:00Z",
        "9999-12-30T00:00:00Z",
        "-009999-01-02T00:00:00Z",
    ]
    .iter()
    .filter_map(|text| text.parse().ok())
    .chain([Timestamp::MIN, Timestamp::MAX])
    .collect()
});

fuzz_target!(|text: &str| {
    let Ok(expr) = CronExpr::parse(text) else {
        return;
    };
    // Parsing its own text gives the same expression.
    assert_eq!(CronExpr::parse(expr.as_str()).ok().as_ref(), Some(&expr));
    for zone in ZONES.iter() {
        for &at in INSTANTS.iter() {
            if let Some(next) = expr.next_fire_after(at, zone) {
                assert!(next > at, "`{text}`: {next} is not after {at}");
            }
            if let Some(prev) = expr.prev_fire_at_or_before(at, zone) {
                assert!(prev <= at, "`{text}`: {prev} is after {at}");
            }
        }
    }
    if let Ok(schedule) = Schedule::new("fuzz", expr, 24) {
        let calendar = Calendar::new(vec![schedule], vec![]);
        for &at in INSTANTS.iter().take(3) {
            let _ = calendar.upcoming(at, &ZONES[1], 2);
        }
    }
});
