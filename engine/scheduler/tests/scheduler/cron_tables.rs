//! Cron semantics without daylight saving: Vixie day rules, names, steps, macros, rare and
//! impossible dates.

use crate::common::{at, cron, fires, tz};

#[test]
fn cron_table_in_utc() {
    let cases: &[(&str, &str, &[&str])] = &[
        // Vixie: both day fields restricted, so the 13th OR any Friday.
        (
            "0 0 13 * FRI",
            "2025-01-01T00:00Z",
            &[
                "2025-01-03T00:00+00:00",
                "2025-01-10T00:00+00:00",
                "2025-01-13T00:00+00:00",
                "2025-01-17T00:00+00:00",
            ],
        ),
        // `*/10` starts with `*`, so it does not count as restricted: day 1, 11, 21 or 31 AND
        // a Monday.
        (
            "0 0 */10 * MON",
            "2025-01-01T00:00Z",
            &["2025-03-31T00:00+00:00", "2025-04-21T00:00+00:00"],
        ),
        // Day-of-week unrestricted: only the 1st.
        (
            "0 0 1 * *",
            "2025-01-15T00:00Z",
            &["2025-02-01T00:00+00:00", "2025-03-01T00:00+00:00"],
        ),
        // Names in any case, lists and ranges.
        (
            "0 12 * jan,Jul Sun",
            "2025-01-20T00:00Z",
            &[
                "2025-01-26T12:00+00:00",
                "2025-07-06T12:00+00:00",
                "2025-07-13T12:00+00:00",
            ],
        ),
        (
            "30 8 * * mon-FRI",
            "2025-05-02T09:00Z",
            &["2025-05-05T08:30+00:00", "2025-05-06T08:30+00:00"],
        ),
        (
            "0 22 * * FRI-SUN",
            "2025-05-05T00:00Z",
            &[
                "2025-05-09T22:00+00:00",
                "2025-05-10T22:00+00:00",
                "2025-05-11T22:00+00:00",
                "2025-05-16T22:00+00:00",
            ],
        ),
        // 7 is Sunday, like 0.
        (
            "0 0 * * 7",
            "2025-05-05T00:00Z",
            &["2025-05-11T00:00+00:00", "2025-05-18T00:00+00:00"],
        ),
        // Steps, with ranges and from a start value.
        (
            "*/20 */6 * * *",
            "2025-05-05T05:50Z",
            &[
                "2025-05-05T06:00+00:00",
                "2025-05-05T06:20+00:00",
                "2025-05-05T06:40+00:00",
                "2025-05-05T12:00+00:00",
            ],
        ),
        (
            "10-50/20 9-17/4 * * *",
            "2025-05-05T00:00Z",
            &[
                "2025-05-05T09:10+00:00",
                "2025-05-05T09:30+00:00",
                "2025-05-05T09:50+00:00",
                "2025-05-05T13:10+00:00",
            ],
        ),
        (
            "45/10 23 * * *",
            "2025-05-05T00:00Z",
            &[
                "2025-05-05T23:45+00:00",
                "2025-05-05T23:55+00:00",
                "2025-05-06T23:45+00:00",
            ],
        ),
        // Macros.
        (
            "@weekly",
            "2025-05-05T00:00Z",
            &["2025-05-11T00:00+00:00", "2025-05-18T00:00+00:00"],
        ),
        (
            "@monthly",
            "2025-01-31T00:00Z",
            &["2025-02-01T00:00+00:00", "2025-03-01T00:00+00:00"],
        ),
        (
            "@yearly",
            "2025-01-01T00:00Z",
            &["2026-01-01T00:00+00:00", "2027-01-01T00:00+00:00"],
        ),
        (
            "@hourly",
            "2025-12-31T23:00Z",
            &["2026-01-01T00:00+00:00", "2026-01-01T01:00+00:00"],
        ),
        // The 31st only in months that have one.
        (
            "0 0 31 * *",
            "2025-01-31T00:00Z",
            &[
                "2025-03-31T00:00+00:00",
                "2025-05-31T00:00+00:00",
                "2025-07-31T00:00+00:00",
            ],
        ),
        // Leap days.
        (
            "0 0 29 2 *",
            "2025-01-01T00:00Z",
            &["2028-02-29T00:00+00:00", "2032-02-29T00:00+00:00"],
        ),
        (
            "0 0 29 2 *",
            "2096-03-01T00:00Z",
            &["2104-02-29T00:00+00:00"],
        ),
    ];
    let mut failures = Vec::new();
    for (expr, from, expected) in cases {
        let got = fires(expr, "UTC", from, expected.len());
        if got != *expected {
            failures.push(format!(
                "{expr} from {from}: got {got:?}, want {expected:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn impossible_schedules_return_none_quickly() {
    for expr in ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4 *", "0 0 31 11 */3"] {
        for zone in crate::common::ZONES {
            assert_eq!(
                cron(expr).next_fire_after(at("2025-01-01T00:00Z"), &tz(zone)),
                None,
                "{expr} in {zone}"
            );
            assert_eq!(
                cron(expr).prev_fire_at_or_before(at("2025-01-01T00:00Z"), &tz(zone)),
                None,
                "{expr} in {zone}"
            );
        }
    }
    // With OR semantics the weekday rescues an impossible date.
    assert_eq!(
        fires("0 0 31 2 MON", "UTC", "2025-01-01T00:00Z", 2),
        ["2025-02-03T00:00+00:00", "2025-02-10T00:00+00:00"]
    );
}

#[test]
fn next_fire_is_strictly_after() {
    let e = cron("0 0 * * *");
    let utc = tz("UTC");
    let midnight = at("2025-05-05T00:00Z");
    assert_eq!(
        e.next_fire_after(midnight, &utc),
        Some(at("2025-05-06T00:00Z"))
    );
    assert_eq!(
        e.next_fire_after(at("2025-05-04T23:59:59.999999999Z"), &utc),
        Some(midnight)
    );
    assert_eq!(e.prev_fire_at_or_before(midnight, &utc), Some(midnight));
}
