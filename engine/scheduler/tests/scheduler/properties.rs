//! Property tests: the field-skipping search against a minute-by-minute oracle, and the window
//! queries against each other and against brute force.

use std::sync::LazyLock;

use fleetplane_scheduler::{Calendar, CronExpr, Exclusion, Schedule, Window};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use crate::common::{ZONES, at, tz};

static ZONE_CACHE: LazyLock<Vec<TimeZone>> =
    LazyLock::new(|| ZONES.iter().map(|z| tz(z)).collect());

/// Minutes the oracle scans: two days.
const ORACLE_MINUTES: i64 = 2 * 24 * 60;

/// An instant near the `k`-th time-zone transition of a zone (or a plain date for zones without
/// transitions in the range), shifted by `shift` seconds.
fn instant(zone: usize, k: usize, shift: i64) -> Timestamp {
    let z = &ZONE_CACHE[zone];
    let base = if ZONES[zone] == "Asia/Kolkata" {
        at("1941-06-01T00:00Z")
    } else {
        at("2024-01-01T00:00Z")
    };
    let anchor = z
        .following(base)
        .nth(k)
        .map_or(base + SignedDuration::from_hours(24 * 17 * k as i64), |t| {
            t.timestamp()
        });
    anchor + SignedDuration::from_secs(shift)
}

fn instant_strategy() -> impl Strategy<Value = (usize, Timestamp)> {
    (0..ZONES.len(), 0..6usize, -2 * 86_400i64..2 * 86_400)
        .prop_map(|(z, k, shift)| (z, instant(z, k, shift)))
}

fn cron_strategy() -> impl Strategy<Value = String> {
    let minute = prop_oneof![
        Just("*".to_string()),
        (1..=30u8).prop_map(|n| format!("*/{n}")),
        (0..60u8).prop_map(|m| m.to_string()),
        (0..60u8, 0..60u8).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        (0..60u8, 0..60u8).prop_map(|(a, b)| format!("{a},{b}")),
        (0..30u8, 1..20u8).prop_map(|(a, n)| format!("{a}-59/{n}")),
    ];
    // Hours around the usual transition times come up often.
    let hour = prop_oneof![
        2 => Just("*".to_string()),
        3 => (0..5u8).prop_map(|h| h.to_string()),
        1 => (0..24u8).prop_map(|h| h.to_string()),
        1 => (0..5u8, 0..24u8).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        1 => (1..12u8).prop_map(|n| format!("*/{n}")),
        1 => (0..24u8, 0..24u8).prop_map(|(a, b)| format!("{a},{b}")),
    ];
    let dom = prop_oneof![
        6 => Just("*".to_string()),
        1 => (1..=31u8).prop_map(|d| d.to_string()),
        1 => (1..=10u8).prop_map(|n| format!("*/{n}")),
        1 => (1..=31u8, 1..=31u8).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
    ];
    let month = prop_oneof![
        6 => Just("*".to_string()),
        1 => (1..=12u8).prop_map(|m| m.to_string()),
        1 => Just("mar-apr,sep-nov".to_string()),
    ];
    let dow = prop_oneof![
        5 => Just("*".to_string()),
        1 => (0..=7u8).prop_map(|d| d.to_string()),
        1 => Just("MON-FRI".to_string()),
        1 => Just("sat,sun".to_string()),
        1 => Just("*/2".to_string()),
    ];
    (minute, hour, dom, month, dow).prop_map(|(a, b, c, d, e)| format!("{a} {b} {c} {d} {e}"))
}

/// Whether instant `m` (a whole minute) is a fire of `e` in `z`, decided from the rules alone:
/// a local minute that matches fires at its first occurrence, and a transition instant that ends
/// a gap fires when a matching minute fell in the gap.
fn oracle_is_fire(e: &CronExpr, m: Timestamp, z: &TimeZone) -> bool {
    let local = z.to_datetime(m);
    let first_occurrence = match z.to_ambiguous_timestamp(local).offset() {
        AmbiguousOffset::Unambiguous { .. } => true,
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(local).ok() == Some(m),
        AmbiguousOffset::Gap { .. } => unreachable!("an instant's local time exists"),
    };
    if first_occurrence && e.matches(local) {
        return true;
    }
    let before = z.to_offset(m - SignedDuration::from_nanos(1));
    let after = z.to_offset(m);
    if after > before {
        let mut skipped = before.to_datetime(m);
        let end = after.to_datetime(m);
        while skipped < end {
            if e.matches(skipped) {
                return true;
            }
            skipped += SignedDuration::from_mins(1);
        }
    }
    false
}

fn floor_minute(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second().div_euclid(60) * 60).unwrap()
}

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// next_fire_after is strictly after its input, is a fire by the rules, and skips none.
    #[test]
    fn next_fire_agrees_with_minute_oracle(text in cron_strategy(), (zi, t) in instant_strategy()) {
        let e = CronExpr::parse(&text).unwrap();
        let z = &ZONE_CACHE[zi];
        let next = e.next_fire_after(t, z);
        let first = floor_minute(t) + SignedDuration::from_mins(1);
        let oracle = (0..ORACLE_MINUTES)
            .map(|i| first + SignedDuration::from_mins(i))
            .find(|&m| oracle_is_fire(&e, m, z));
        match oracle {
            Some(o) => prop_assert_eq!(next, Some(o), "{} in {} after {}", text, ZONES[zi], t),
            None => {
                let horizon = first + SignedDuration::from_mins(ORACLE_MINUTES);
                if let Some(n) = next {
                    prop_assert!(n >= horizon, "{} in {} after {}: {} missed by oracle", text, ZONES[zi], t, n);
                    prop_assert!(oracle_is_fire(&e, n, z), "{} in {}: {} is not a fire", text, ZONES[zi], n);
                }
            }
        }
        if let Some(n) = next {
            prop_assert!(n > t);
        }
    }

    /// prev_fire_at_or_before is at or before its input, is a fire, and skips none.
    #[test]
    fn prev_fire_agrees_with_minute_oracle(text in cron_strategy(), (zi, t) in instant_strategy()) {
        let e = CronExpr::parse(&text).unwrap();
        let z = &ZONE_CACHE[zi];
        let prev = e.prev_fire_at_or_before(t, z);
        let last = floor_minute(t);
        let oracle = (0..ORACLE_MINUTES)
            .map(|i| last - SignedDuration::from_mins(i))
            .find(|&m| oracle_is_fire(&e, m, z));
        match oracle {
            Some(o) => prop_assert_eq!(prev, Some(o), "{} in {} at {}", text, ZONES[zi], t),
            None => if let Some(p) = prev {
                prop_assert!(p <= last - SignedDuration::from_mins(ORACLE_MINUTES));
                prop_assert!(oracle_is_fire(&e, p, z));
            },
        }
        if let Some(p) = prev {
            prop_assert!(p <= t);
            // Both directions agree.
            prop_assert_eq!(e.next_fire_after(p - SignedDuration::from_nanos(1), z), Some(p));
            prop_assert!(e.next_fire_after(p, z).is_none_or(|n| n > t));
        }
    }
}

/// Schedules as (cron, hours) and exclusions as (start minutes from t, length in minutes).
type Policy = (Vec<(String, u8)>, Vec<(i64, i64)>);

fn policy_strategy() -> impl Strategy<Value = Policy> {
    (
        prop::collection::vec((cron_strategy(), 1..=24u8), 1..=2),
        // Exclusions as (start offset from t in minutes, length in minutes).
        prop::collection::vec((-2 * 1440i64..2 * 1440, 1..2 * 1440i64), 0..=3),
    )
}

fn build(t: Timestamp, schedules: &[(String, u8)], exclusions: &[(i64, i64)]) -> Calendar {
    Calendar::new(
        schedules
            .iter()
            .map(|(text, hours)| {
                Schedule::new("s", CronExpr::parse(text).unwrap(), *hours).unwrap()
            })
            .collect(),
        exclusions
            .iter()
            .map(|&(offset, len)| {
                let start = t + SignedDuration::from_mins(offset);
                Exclusion::new("x", start, start + SignedDuration::from_mins(len)).unwrap()
            })
            .collect(),
    )
}

/// Brute force: some schedule fired in `(m - duration, m]`.
fn covered(cal: &Calendar, m: Timestamp, z: &TimeZone) -> bool {
    cal.schedules().iter().any(|s| {
        let d = SignedDuration::from_hours(i64::from(s.duration_hours()));
        s.cron().next_fire_after(m - d, z).is_some_and(|f| f <= m)
    })
}

fn allowed(cal: &Calendar, m: Timestamp, z: &TimeZone) -> bool {
    cal.exclusion_at(m).is_none() && covered(cal, m, z)
}

fn overlaps_exclusion(cal: &Calendar, w: &Window) -> bool {
    cal.exclusions()
        .iter()
        .any(|x| w.start < x.end() && x.start() < w.end)
}

/// Checks every minute of `[from, to)` (at most a day of them) against `expect_allowed`.
fn sample(
    cal: &Calendar,
    from: Timestamp,
    to: Timestamp,
    z: &TimeZone,
    expect_allowed: bool,
) -> Result<(), String> {
    let mut m = from;
    let mut n = 0;
    while m < to && n < 1440 {
        if allowed(cal, m, z) != expect_allowed {
            return Err(format!(
                "{m} should{} be allowed",
                if expect_allowed { "" } else { " not" }
            ));
        }
        // Whole minutes after the first, where fires and exclusions fall.
        m = floor_minute(m) + SignedDuration::from_mins(1);
        n += 1;
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(96))]

    /// open_at and next_start agree; windows are allowed throughout, start as early as possible,
    /// never overlap an exclusion, and end where starting stops being allowed.
    #[test]
    fn windows_agree_with_brute_force((schedules, exclusions) in policy_strategy(), (zi, t) in instant_strategy()) {
        let z = &ZONE_CACHE[zi];
        let cal = build(t, &schedules, &exclusions);
        let open = cal.open_at(t, z);
        let next = cal.next_start(t, z);
        prop_assert_eq!(open.is_some(), allowed(&cal, t, z));
        match open {
            Some(w) => {
                prop_assert!(w.start <= t && t < w.end);
                prop_assert_eq!(next, Some(Window { start: t, end: w.end }));
                prop_assert!(!overlaps_exclusion(&cal, &w));
                sample(&cal, w.start, w.end, z, true).map_err(TestCaseError::fail)?;
            }
            None => prop_assert!(next.is_none_or(|w| w.start > t)),
        }
        if let Some(w) = next {
            prop_assert!(w.start >= t && w.start < w.end);
            prop_assert!(!overlaps_exclusion(&cal, &w), "{:?} overlaps an exclusion", w);
            prop_assert!(allowed(&cal, w.start, z));
            sample(&cal, t, w.start, z, false).map_err(TestCaseError::fail)?;
            sample(&cal, w.start, w.end, z, true).map_err(TestCaseError::fail)?;
            let capped = w.end >= t + SignedDuration::from_hours(7 * 24);
            prop_assert!(capped || !allowed(&cal, w.end, z), "window should end at {}", w.end);
        }
    }

    /// upcoming lists disjoint, ordered, allowed windows, starting with the open or next one.
    #[test]
    fn upcoming_is_ordered_and_allowed((schedules, exclusions) in policy_strategy(), (zi, t) in instant_strategy()) {
        let z = &ZONE_CACHE[zi];
        let cal = build(t, &schedules, &exclusions);
        let list = cal.upcoming(t, z, 4);
        prop_assert!(list.len() <= 4);
        prop_assert_eq!(list.first().copied(), cal.open_at(t, z).or_else(|| cal.next_start(t, z)));
        for pair in list.windows(2) {
            prop_assert!(pair[0].end <= pair[1].start, "{:?}", pair);
        }
        for w in &list {
            prop_assert!(w.start < w.end);
            prop_assert!(w.end > t);
            prop_assert!(!overlaps_exclusion(&cal, w), "{:?} overlaps an exclusion", w);
            prop_assert!(allowed(&cal, w.start, z));
        }
    }
}
