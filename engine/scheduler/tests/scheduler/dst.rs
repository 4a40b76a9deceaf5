//! Daylight-saving behaviour of cron fires, per zone, in both directions.
//!
//! Rules: a local fire time skipped by spring forward fires at the first instant after the gap
//! (once, however many matching minutes the gap swallowed); a local time repeated by fall back
//! fires once, at its first occurrence.

use fleetplane_scheduler::CronExpr;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::common::{ZONES, at, cron, fires, local, tz};

type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

fn check(cases: &[Case]) {
    let mut failures = Vec::new();
    for (zone, expr, from, expected) in cases {
        let got = fires(expr, zone, from, expected.len());
        if got != *expected {
            failures.push(format!(
                "{zone} `{expr}` from {from}:\n  got  {got:?}\n  want {expected:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn europe_berlin() {
    // 2025-03-30 02:00 -> 03:00 (+01 -> +02); 2025-10-26 03:00 -> 02:00 (+02 -> +01).
    check(&[
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2025-03-29T12:00+01:00",
            &["2025-03-30T03:00+02:00", "2025-03-31T02:30+02:00"],
        ),
        (
            "Europe/Berlin",
            "*/15 2 * * *",
            "2025-03-30T00:00+01:00",
            &[
                "2025-03-30T03:00+02:00",
                "2025-03-31T02:00+02:00",
                "2025-03-31T02:15+02:00",
            ],
        ),
        // 02:00 (skipped) and 03:00 both map to 03:00 local: one fire.
        (
            "Europe/Berlin",
            "0 2,3 * * *",
            "2025-03-30T00:00+01:00",
            &["2025-03-30T03:00+02:00", "2025-03-31T02:00+02:00"],
        ),
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2025-10-25T12:00+02:00",
            &["2025-10-26T02:30+02:00", "2025-10-27T02:30+01:00"],
        ),
        // The repeated hour fires only the first time round.
        (
            "Europe/Berlin",
            "*/30 * * * *",
            "2025-10-26T01:00+02:00",
            &[
                "2025-10-26T01:30+02:00",
                "2025-10-26T02:00+02:00",
                "2025-10-26T02:30+02:00",
                "2025-10-26T03:00+01:00",
                "2025-10-26T03:30+01:00",
            ],
        ),
        // Asked from inside the repeat: nothing more fires until the fold is over.
        (
            "Europe/Berlin",
            "*/10 * * * *",
            "2025-10-26T02:05+01:00",
            &["2025-10-26T03:00+01:00"],
        ),
        (
            "Europe/Berlin",
            "@daily",
            "2025-03-29T12:00+01:00",
            &["2025-03-30T00:00+01:00", "2025-03-31T00:00+02:00"],
        ),
    ]);
}

#[test]
fn america_new_york() {
    // 2025-03-09 02:00 -> 03:00 (-05 -> -04); 2025-11-02 02:00 -> 01:00 (-04 -> -05).
    check(&[
        (
            "America/New_York",
            "30 2 * * *",
            "2025-03-08T12:00-05:00",
            &["2025-03-09T03:00-04:00", "2025-03-10T02:30-04:00"],
        ),
        (
            "America/New_York",
            "30 1 * * *",
            "2025-11-01T12:00-04:00",
            &["2025-11-02T01:30-04:00", "2025-11-03T01:30-05:00"],
        ),
        (
            "America/New_York",
            "*/10 * * * *",
            "2025-11-02T01:40-04:00",
            &["2025-11-02T01:50-04:00", "2025-11-02T02:00-05:00"],
        ),
        (
            "America/New_York",
            "*/10 * * * *",
            "2025-11-02T01:40-05:00",
            &["2025-11-02T02:00-05:00"],
        ),
        // Weekly, Sunday midnight, across spring forward.
        (
            "America/New_York",
            "0 0 * * SUN",
            "2025-03-01T00:00-05:00",
            &[
                "2025-03-02T00:00-05:00",
                "2025-03-09T00:00-05:00",
                "2025-03-16T00:00-04:00",
            ],
        ),
        (
            "America/New_York",
            "@weekly",
            "2025-10-26T12:00-04:00",
            &["2025-11-02T00:00-04:00", "2025-11-09T00:00-05:00"],
        ),
    ]);
}

#[test]
fn australia_lord_howe() {
    // 30-minute DST. 2025-04-06 02:00 -> 01:30 (+11 -> +10:30); 2025-10-05 02:00 -> 02:30.
    check(&[
        (
            "Australia/Lord_Howe",
            "15 2 * * *",
            "2025-10-04T12:00+10:30",
            &["2025-10-05T02:30+11:00", "2025-10-06T02:15+11:00"],
        ),
        (
            "Australia/Lord_Howe",
            "0 2 * * *",
            "2025-10-04T12:00+10:30",
            &["2025-10-05T02:30+11:00", "2025-10-06T02:00+11:00"],
        ),
        (
            "Australia/Lord_Howe",
            "45 1 * * *",
            "2025-04-05T12:00+11:00",
            &["2025-04-06T01:45+11:00", "2025-04-07T01:45+10:30"],
        ),
        (
            "Australia/Lord_Howe",
            "*/10 1 * * *",
            "2025-04-06T01:25+11:00",
            &[
                "2025-04-06T01:30+11:00",
                "2025-04-06T01:40+11:00",
                "2025-04-06T01:50+11:00",
                "2025-04-07T01:00+10:30",
            ],
        ),
        (
            "Australia/Lord_Howe",
            "@monthly",
            "2025-09-15T00:00+10:30",
            &["2025-10-01T00:00+10:30", "2025-11-01T00:00+11:00"],
        ),
    ]);
}

#[test]
fn pacific_chatham() {
    // +12:45 / +13:45. 2025-04-06 03:45 -> 02:45; 2025-09-28 02:45 -> 03:45.
    check(&[
        (
            "Pacific/Chatham",
            "0 3 * * *",
            "2025-09-27T12:00+12:45",
            &["2025-09-28T03:45+13:45", "2025-09-29T03:00+13:45"],
        ),
        (
            "Pacific/Chatham",
            "50 2 * * *",
            "2025-09-27T12:00+12:45",
            &["2025-09-28T03:45+13:45", "2025-09-29T02:50+13:45"],
        ),
        (
            "Pacific/Chatham",
            "0 3 * * *",
            "2025-04-05T12:00+13:45",
            &["2025-04-06T03:00+13:45", "2025-04-07T03:00+12:45"],
        ),
        (
            "Pacific/Chatham",
            "@monthly",
            "2025-03-15T00:00+13:45",
            &["2025-04-01T00:00+13:45", "2025-05-01T00:00+12:45"],
        ),
        (
            "Pacific/Chatham",
            "0 0 * * 0",
            "2025-09-20T12:00+12:45",
            &[
                "2025-09-21T00:00+12:45",
                "2025-09-28T00:00+12:45",
                "2025-10-05T00:00+13:45",
            ],
        ),
    ]);
}

#[test]
fn asia_kolkata() {
    // No daylight saving today: the same local time every day of the year.
    check(&[
        (
            "Asia/Kolkata",
            "30 2 * * *",
            "2025-03-29T12:00+05:30",
            &["2025-03-30T02:30+05:30", "2025-03-31T02:30+05:30"],
        ),
        (
            "Asia/Kolkata",
            "@weekly",
            "2025-10-25T12:00+05:30",
            &["2025-10-26T00:00+05:30", "2025-11-02T00:00+05:30"],
        ),
        (
            "Asia/Kolkata",
            "@monthly",
            "2025-12-15T00:00+05:30",
            &["2026-01-01T00:00+05:30"],
        ),
    ]);
    // War time (+06:30) gives Kolkata's zone real transitions in both directions.
    let kolkata = tz("Asia/Kolkata");
    let transitions: Vec<String> = kolkata
        .following(at("1941-01-01T00:00Z"))
        .take_while(|t| t.timestamp() < at("1946-01-01T00:00Z"))
        .map(|t| local(t.timestamp(), &kolkata))
        .collect();
    assert_eq!(
        transitions,
        [
            "1941-10-01T01:00+06:30",
            "1942-05-14T23:00+05:30",
            "1942-09-01T01:00+06:30",
            "1945-10-14T23:00+05:30",
        ]
    );
    check(&[
        (
            "Asia/Kolkata",
            "30 0 * * *",
            "1942-08-31T12:00+05:30",
            &["1942-09-01T01:00+06:30", "1942-09-02T00:30+06:30"],
        ),
        (
            "Asia/Kolkata",
            "30 23 * * *",
            "1942-05-14T12:00+06:30",
            &["1942-05-14T23:30+06:30", "1942-05-15T23:30+05:30"],
        ),
    ]);
}

/// The offsets before and after each transition in the window tested, per zone.
pub fn transitions(
    zone: &TimeZone,
    name: &str,
) -> Vec<(Timestamp, jiff::tz::Offset, jiff::tz::Offset)> {
    let (from, to) = if name == "Asia/Kolkata" {
        (at("1941-01-01T00:00Z"), at("1946-01-01T00:00Z"))
    } else {
        (at("2024-01-01T00:00Z"), at("2028-01-01T00:00Z"))
    };
    zone.following(from)
        .take_while(|t| t.timestamp() < to)
        .map(|t| {
            let instant = t.timestamp();
            let before = zone.to_offset(instant - SignedDuration::from_nanos(1));
            (instant, before, t.offset())
        })
        .filter(|(_, before, after)| before != after)
        .collect()
}

fn minute_cron(dt: DateTime, dated: bool) -> CronExpr {
    let text = if dated {
        format!(
            "{} {} {} {} *",
            dt.minute(),
            dt.hour(),
            dt.day(),
            dt.month()
        )
    } else {
        format!("{} {} * * *", dt.minute(), dt.hour())
    };
    cron(&text)
}

/// Every transition of every zone, 2024–2027 (Kolkata 1941–1945), checked against the rules.
#[test]
fn every_transition_follows_the_rules() {
    let mut checked = 0;
    for name in ZONES {
        let zone = tz(name);
        for (instant, before, after) in transitions(&zone, name) {
            checked += 1;
            let day_before = instant - SignedDuration::from_hours(24);
            if after > before {
                // Spring forward: local [instant+before, instant+after) never happens.
                let gap_start = before.to_datetime(instant);
                let gap_end = after.to_datetime(instant);
                let mut inside = gap_start;
                while inside < gap_end {
                    let e = minute_cron(inside, true);
                    assert_eq!(
                        e.next_fire_after(day_before, &zone),
                        Some(instant),
                        "{name}: `{e}` in the gap should fire when the gap ends"
                    );
                    assert_eq!(
                        e.prev_fire_at_or_before(instant, &zone),
                        Some(instant),
                        "{name}: `{e}` backwards"
                    );
                    inside += SignedDuration::from_mins(10);
                }
                // The first minute after the gap fires at the same instant, and only once.
                let e = minute_cron(gap_end, true);
                assert_eq!(
                    e.next_fire_after(day_before, &zone),
                    Some(instant),
                    "{name}"
                );
                // A whole gap of matching minutes fires once.
                let every_minute = cron("* * * * *");
                let just_before = instant - SignedDuration::from_mins(1);
                assert_eq!(
                    every_minute.next_fire_after(just_before, &zone),
                    Some(instant)
                );
                assert_eq!(
                    every_minute.next_fire_after(instant, &zone),
                    Some(instant + SignedDuration::from_mins(1)),
                    "{name}"
                );
            } else {
                // Fall back: local [instant+after, instant+before) happens twice.
                let fold_start = after.to_datetime(instant);
                let fold_end = before.to_datetime(instant);
                let mut inside = fold_start;
                while inside < fold_end {
                    let first = before.to_timestamp(inside).unwrap();
                    let second = after.to_timestamp(inside).unwrap();
                    let daily = minute_cron(inside, false);
                    assert_eq!(
                        daily.next_fire_after(day_before, &zone),
                        Some(first),
                        "{name} `{daily}`"
                    );
                    let next = daily.next_fire_after(first, &zone).unwrap();
                    assert!(
                        next > second + SignedDuration::from_hours(12),
                        "{name} `{daily}` fired twice"
                    );
                    assert_eq!(
                        daily.prev_fire_at_or_before(second, &zone),
                        Some(first),
                        "{name}"
                    );
                    inside += SignedDuration::from_mins(10);
                }
                // Every-minute schedule: the repeat is silent, the next fire is the fold's end.
                let every_minute = cron("* * * * *");
                let last_first = instant - SignedDuration::from_mins(1);
                assert_eq!(
                    every_minute.next_fire_after(last_first, &zone),
                    Some(after.to_timestamp(fold_end).unwrap()),
                    "{name}"
                );
            }
        }
    }
    // Four years of two transitions for four zones, plus Kolkata's four.
    assert_eq!(checked, 4 * 4 * 2 + 4);
}
