//! Maintenance windows across daylight-saving changes, per zone.

use fleetplane_scheduler::{Calendar, Exclusion, Schedule, Window};

use crate::common::{at, cron, local, tz};

fn calendar(schedules: &[(&str, u8)], exclusions: &[(&str, &str)]) -> Calendar {
    Calendar::new(
        schedules
            .iter()
            .enumerate()
            .map(|(i, (expr, hours))| Schedule::new(format!("s{i}"), cron(expr), *hours).unwrap())
            .collect(),
        exclusions
            .iter()
            .enumerate()
            .map(|(i, (start, end))| Exclusion::new(format!("x{i}"), at(start), at(end)).unwrap())
            .collect(),
    )
}

fn show(window: Option<Window>, zone: &str) -> Option<String> {
    let z = tz(zone);
    window.map(|w| format!("{} .. {}", local(w.start, &z), local(w.end, &z)))
}

fn show_all(windows: &[Window], zone: &str) -> Vec<String> {
    windows
        .iter()
        .map(|w| show(Some(*w), zone).unwrap_or_default())
        .collect()
}

#[test]
fn berlin_nightly_window_across_both_changes() {
    let cal = calendar(&[("30 2 * * *", 2)], &[]);
    let z = tz("Europe/Berlin");
    // Spring forward: opens at 03:00 and lasts two real hours.
    assert_eq!(
        show_all(
            &cal.upcoming(at("2025-03-29T12:00+01:00"), &z, 2),
            "Europe/Berlin"
        ),
        [
            "2025-03-30T03:00+02:00 .. 2025-03-30T05:00+02:00",
            "2025-03-31T02:30+02:00 .. 2025-03-31T04:30+02:00",
        ]
    );
    // Fall back: opens once, at the first 02:30; two hours later the clock reads 03:30 (+01).
    assert_eq!(
        show_all(
            &cal.upcoming(at("2025-10-25T12:00+02:00"), &z, 2),
            "Europe/Berlin"
        ),
        [
            "2025-10-26T02:30+02:00 .. 2025-10-26T03:30+01:00",
            "2025-10-27T02:30+01:00 .. 2025-10-27T04:30+01:00",
        ]
    );
    // The second 02:45 is inside the window opened by the first 02:30.
    assert_eq!(
        show(
            cal.open_at(at("2025-10-26T02:45+01:00"), &z),
            "Europe/Berlin"
        )
        .as_deref(),
        Some("2025-10-26T02:30+02:00 .. 2025-10-26T03:30+01:00")
    );
    assert_eq!(
        show(
            cal.next_start(at("2025-10-26T02:45+01:00"), &z),
            "Europe/Berlin"
        )
        .as_deref(),
        Some("2025-10-26T02:45+01:00 .. 2025-10-26T03:30+01:00")
    );
}

#[test]
fn new_york_weekly_sunday_midnight() {
    let cal = calendar(&[("0 0 * * SUN", 6)], &[]);
    let z = tz("America/New_York");
    assert_eq!(
        show_all(
            &cal.upcoming(at("2025-03-03T00:00-05:00"), &z, 2),
            "America/New_York"
        ),
        [
            // Six real hours: the spring-forward jump at 02:00 moves the local end to 07:00.
            "2025-03-09T00:00-05:00 .. 2025-03-09T07:00-04:00",
            "2025-03-16T00:00-04:00 .. 2025-03-16T06:00-04:00",
        ]
    );
    assert_eq!(
        show_all(
            &cal.upcoming(at("2025-10-27T00:00-04:00"), &z, 1),
            "America/New_York"
        ),
        ["2025-11-02T00:00-04:00 .. 2025-11-02T05:00-05:00"]
    );
    // A window already open when asked (fired before `after`) counts.
    assert_eq!(
        show(
            cal.open_at(at("2025-03-16T05:59-04:00"), &z),
            "America/New_York"
        )
        .as_deref(),
        Some("2025-03-16T00:00-04:00 .. 2025-03-16T06:00-04:00")
    );
    assert_eq!(cal.open_at(at("2025-03-16T06:00-04:00"), &z), None);
}

#[test]
fn lord_howe_half_hour_changes() {
    let cal = calendar(&[("15 2 * * *", 1)], &[]);
    let z = tz("Australia/Lord_Howe");
    assert_eq!(
        show_all(
            &cal.upcoming(at("2025-10-04T12:00+10:30"), &z, 2),
            "Australia/Lord_Howe"
        ),
        [
            "2025-10-05T02:30+11:00 .. 2025-10-05T03:30+11:00",
            "2025-10-06T02:15+11:00 .. 2025-10-06T03:15+11:00",
        ]
    );
    let cal = calendar(&[("45 1 * * *", 1)], &[]);
    assert_eq!(
        show_all(
            &cal.upcoming(at("2025-04-05T12:00+11:00"), &z, 2),
            "Australia/Lord_Howe"
        ),
        [
            "2025-04-06T01:45+11:00 .. 2025-04-06T02:15+10:30",
            "2025-04-07T01:45+10:30 .. 2025-04-07T02:45+10:30",
        ]
    );
}

#[test]
fn chatham_with_a_freeze() {
    let cal = calendar(
        &[("0 3 * * *", 4)],
        &[("2025-09-29T03:30+13:45", "2025-09-30T00:00+13:45")],
    );
    let z = tz("Pacific/Chatham");
    assert_eq!(
        show_all(
            &cal.upcoming(at("2025-09-27T12:00+12:45"), &z, 4),
            "Pacific/Chatham"
        ),
        [
            "2025-09-28T03:45+13:45 .. 2025-09-28T07:45+13:45",
            "2025-09-29T03:00+13:45 .. 2025-09-29T03:30+13:45",
            "2025-09-30T03:00+13:45 .. 2025-09-30T07:00+13:45",
            "2025-10-01T03:00+13:45 .. 2025-10-01T07:00+13:45",
        ]
    );
    assert_eq!(cal.open_at(at("2025-09-29T04:00+13:45"), &z), None);
    assert_eq!(
        cal.exclusion_at(at("2025-09-29T04:00+13:45"))
            .map(Exclusion::name),
        Some("x0")
    );
    assert_eq!(
        show(
            cal.next_start(at("2025-09-29T04:00+13:45"), &z),
            "Pacific/Chatham"
        )
        .as_deref(),
        Some("2025-09-30T03:00+13:45 .. 2025-09-30T07:00+13:45")
    );
    let fall = calendar(&[("0 3 * * *", 4)], &[]);
    assert_eq!(
        show_all(
            &fall.upcoming(at("2025-04-05T12:00+13:45"), &z, 2),
            "Pacific/Chatham"
        ),
        [
            "2025-04-06T03:00+13:45 .. 2025-04-06T06:00+12:45",
            "2025-04-07T03:00+12:45 .. 2025-04-07T07:00+12:45",
        ]
    );
}

#[test]
fn kolkata_monthly_and_two_schedules() {
    let cal = calendar(&[("@monthly", 24), ("0 22 * * FRI", 3)], &[]);
    let z = tz("Asia/Kolkata");
    assert_eq!(
        show_all(
            &cal.upcoming(at("2025-10-30T12:00+05:30"), &z, 3),
            "Asia/Kolkata"
        ),
        [
            "2025-10-31T22:00+05:30 .. 2025-11-02T00:00+05:30",
            "2025-11-07T22:00+05:30 .. 2025-11-08T01:00+05:30",
            "2025-11-14T22:00+05:30 .. 2025-11-15T01:00+05:30",
        ]
    );
}

#[test]
fn same_policy_opens_at_local_midnight_everywhere() {
    let cal = calendar(&[("@daily", 2)], &[]);
    let after = at("2025-06-01T12:00Z");
    for zone in crate::common::ZONES {
        let w = cal.upcoming(after, &tz(zone), 1)[0];
        let start = w.start.to_zoned(tz(zone));
        assert_eq!((start.hour(), start.minute()), (0, 0), "{zone}");
        assert_eq!(
            w.end.duration_since(w.start),
            jiff::SignedDuration::from_hours(2)
        );
        assert!(w.end > after, "{zone}");
    }
}
