//! Finding fire times: a field-skipping walk over local minutes, then the daylight-saving rules
//! that map a local minute to an instant.
//!
//! A local minute `L` fires at:
//! - its instant, when `L` exists once;
//! - its first instant, when `L` is repeated (fall back);
//! - the transition instant (the first instant after the gap), when `L` was skipped.
//!
//! This mapping never decreases as `L` grows, so walking local minutes in order visits fire
//! instants in order; several skipped minutes share one instant and so fire once.

use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

use super::CronExpr;
use crate::civil::{Minute, days_in_month, weekday};

/// How many years the field walk looks ahead or back before giving up. A satisfiable expression
/// matches within 40 years (29 February on a given weekday, across the skipped leap year 2100).
const SEARCH_YEARS: i16 = 100;

/// How many candidate minutes one search maps to instants before giving up. Each step past the
/// first skips a whole gap or fold, so a handful suffices; the bound only guards against odd
/// time-zone data.
const MAX_RESOLVE_STEPS: usize = 64;

impl CronExpr {
    /// The first fire time strictly after `after`, evaluated in `tz`.
    ///
    /// Daylight saving: a local fire time that does not exist (spring forward) fires at the
    /// first instant after the gap, once however many matching minutes fell in the gap; a
    /// repeated local time (fall back) fires once, at its first occurrence.
    ///
    /// Returns `None` when the expression never fires, or does not fire within about 100 years
    /// or before the end of jiff's range (year 9999). The search skips by fields and costs a few
    /// time-zone look-ups, never a scan of minutes.
    pub fn next_fire_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        if self.never {
            return None;
        }
        let mut cursor = Minute::floor(tz.to_datetime(after)).succ();
        for _ in 0..MAX_RESOLVE_STEPS {
            let candidate = self.next_match(cursor)?;
            let dt = candidate.to_civil()?;
            match tz.to_ambiguous_timestamp(dt).offset() {
                AmbiguousOffset::Unambiguous { offset } => {
                    let fire = offset.to_timestamp(dt).ok()?;
                    if fire > after {
                        return Some(fire);
                    }
                    cursor = candidate.succ();
                }
                AmbiguousOffset::Gap { after: later, .. } => {
                    // `dt` read with the later offset is an instant just before the gap.
                    let before_gap = later.to_timestamp(dt).ok()?;
                    let transition = tz.following(before_gap).next()?;
                    let fire = transition.timestamp();
                    if fire > after {
                        return Some(fire);
                    }
                    // Every minute up to the end of the gap maps to the same instant.
                    let gap_end = transition.offset().to_datetime(fire);
                    cursor = candidate.succ().max(Minute::ceil(gap_end));
                }
                AmbiguousOffset::Fold { before, .. } => {
                    let first = before.to_timestamp(dt).ok()?;
                    if first > after {
                        return Some(first);
                    }
                    // `after` lies in the repeat: the rest of the fold already fired the first
                    // time round.
                    let transition = tz.following(first).next()?;
                    let fold_end = before.to_datetime(transition.timestamp());
                    cursor = candidate.succ().max(Minute::ceil(fold_end));
                }
            }
        }
        None
    }

    /// The last fire time at or before `at`, evaluated in `tz` with the same daylight-saving
    /// rules as [`CronExpr::next_fire_after`].
    ///
    /// Returns `None` when the expression never fires, or did not fire within about 100 years or
    /// after the start of jiff's range.
    pub fn prev_fire_at_or_before(&self, at: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        if self.never {
            return None;
        }
        let local = tz.to_datetime(at);
        let mut cursor = Minute::floor(local);
        if let AmbiguousOffset::Fold { before, after } = tz.to_ambiguous_timestamp(local).offset()
            && before != after
            && tz.to_offset(at) == after
        {
            // `at` is in the repeat, so every local minute of the fold first occurred earlier.
            let just_after = at.checked_add(SignedDuration::from_nanos(1)).ok()?;
            if let Some(transition) = tz.preceding(just_after).next() {
                let fold_end = before.to_datetime(transition.timestamp());
                cursor = cursor.max(Minute::before(fold_end));
            }
        }
        for _ in 0..MAX_RESOLVE_STEPS {
            let candidate = self.prev_match(cursor)?;
            let fire = first_instant(candidate.to_civil()?, tz)?;
            if fire <= at {
                return Some(fire);
            }
            cursor = candidate.pred();
        }
        None
    }

    /// The first local minute at or after `from` that matches every field.
    fn next_match(&self, from: Minute) -> Option<Minute> {
        let limit = from.year.saturating_add(SEARCH_YEARS).min(9999);
        let mut c = from;
        loop {
            if c.year > limit {
                return None;
            }
            match next_bit(u64::from(self.months), c.month) {
                None => {
                    c = Minute::month_start(c.year.checked_add(1)?, 1);
                    continue;
                }
                Some(month) if month != c.month => c = Minute::month_start(c.year, month),
                Some(_) => {}
            }
            let Some(day) = self.next_matching_day(c.year, c.month, c.day) else {
                c = c.next_month();
                continue;
            };
            if day != c.day {
                c = Minute {
                    day,
                    hour: 0,
                    minute: 0,
                    ..c
                };
            }
            match next_bit(u64::from(self.hours), c.hour) {
                None => {
                    c = c.next_day();
                    continue;
                }
                Some(hour) if hour != c.hour => {
                    c = Minute {
                        hour,
                        minute: 0,
                        ..c
                    }
                }
                Some(_) => {}
            }
            match next_bit(self.minutes, c.minute) {
                None => c = c.next_hour(),
                Some(minute) => return Some(Minute { minute, ..c }),
            }
        }
    }

    /// The last local minute at or before `from` that matches every field.
    fn prev_match(&self, from: Minute) -> Option<Minute> {
        let limit = from.year.saturating_sub(SEARCH_YEARS).max(-9999);
        let mut c = from;
        loop {
            if c.year < limit {
                return None;
            }
            match prev_bit(u64::from(self.months), c.month) {
                None => {
                    c = Minute::month_end(c.year.checked_sub(1)?, 12);
                    continue;
                }
                Some(month) if month != c.month => c = Minute::month_end(c.year, month),
                Some(_) => {}
            }
            let Some(day) = self.prev_matching_day(c.year, c.month, c.day) else {
                c = c.prev_month();
                continue;
            };
            if day != c.day {
                c = Minute {
                    day,
                    hour: 23,
                    minute: 59,
                    ..c
                };
            }
            match prev_bit(u64::from(self.hours), c.hour) {
                None => {
                    c = c.prev_day();
                    continue;
                }
                Some(hour) if hour != c.hour => {
                    c = Minute {
                        hour,
                        minute: 59,
                        ..c
                    }
                }
                Some(_) => {}
            }
            match prev_bit(self.minutes, c.minute) {
                None => c = c.prev_hour(),
                Some(minute) => return Some(Minute { minute, ..c }),
            }
        }
    }

    fn next_matching_day(&self, year: i16, month: u8, from: u8) -> Option<u8> {
        let last = days_in_month(year, month);
        let mut wd = weekday(year, month, from);
        for day in from..=last {
            if self.day_matches(day, wd) {
                return Some(day);
            }
            wd = (wd + 1) % 7;
        }
        None
    }

    fn prev_matching_day(&self, year: i16, month: u8, from: u8) -> Option<u8> {
        let from = from.min(days_in_month(year, month));
        let mut wd = weekday(year, month, from);
        for day in (1..=from).rev() {
            if self.day_matches(day, wd) {
                return Some(day);
            }
            wd = (wd + 6) % 7;
        }
        None
    }
}

/// The instant a local minute fires at: its only or first occurrence, or the end of the gap
/// that skipped it.
fn first_instant(dt: jiff::civil::DateTime, tz: &TimeZone) -> Option<Timestamp> {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok(),
        AmbiguousOffset::Gap { after, .. } => {
            let before_gap = after.to_timestamp(dt).ok()?;
            Some(tz.following(before_gap).next()?.timestamp())
        }
    }
}

/// The lowest set bit at or above `from`.
fn next_bit(mask: u64, from: u8) -> Option<u8> {
    if from >= 64 {
        return None;
    }
    let rest = mask & (u64::MAX << from);
    // trailing_zeros of a non-zero u64 is below 64.
    (rest != 0).then(|| rest.trailing_zeros() as u8)
}

/// The highest set bit at or below `upto`.
fn prev_bit(mask: u64, upto: u8) -> Option<u8> {
    let rest = if upto >= 63 {
        mask
    } else {
        mask & ((1u64 << (upto + 1)) - 1)
    };
    (rest != 0).then(|| (63 - rest.leading_zeros()) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_helpers() {
        let mask = 0b1010_0100u64;
        assert_eq!(next_bit(mask, 0), Some(2));
        assert_eq!(next_bit(mask, 3), Some(5));
        assert_eq!(next_bit(mask, 8), None);
        assert_eq!(next_bit(mask, 64), None);
        assert_eq!(prev_bit(mask, 8), Some(7));
        assert_eq!(prev_bit(mask, 4), Some(2));
        assert_eq!(prev_bit(mask, 1), None);
        assert_eq!(prev_bit(1 << 63, 63), Some(63));
        assert_eq!(next_bit(1 << 63, 63), Some(63));
    }

    fn utc(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn utc_basics() {
        let e = CronExpr::parse("*/20 9-10 * * *").unwrap();
        let tz = TimeZone::UTC;
        let fires: Vec<String> =
            std::iter::successors(e.next_fire_after(utc("2025-01-01T09:30:00Z"), &tz), |t| {
                e.next_fire_after(*t, &tz)
            })
            .take(5)
            .map(|t| t.to_string())
            .collect();
        assert_eq!(
            fires,
            [
                "2025-01-01T09:40:00Z",
                "2025-01-01T10:00:00Z",
                "2025-01-01T10:20:00Z",
                "2025-01-01T10:40:00Z",
                "2025-01-02T09:00:00Z"
            ]
        );
        assert_eq!(
            e.prev_fire_at_or_before(utc("2025-01-02T09:00:00Z"), &tz),
            Some(utc("2025-01-02T09:00:00Z"))
        );
        assert_eq!(
            e.prev_fire_at_or_before(utc("2025-01-02T08:59:59Z"), &tz),
            Some(utc("2025-01-01T10:40:00Z"))
        );
    }

    #[test]
    fn impossible_and_out_of_range_searches_end() {
        let tz = TimeZone::UTC;
        let never = CronExpr::parse("0 0 31 2 *").unwrap();
        assert_eq!(
            never.next_fire_after(utc("2025-01-01T00:00:00Z"), &tz),
            None
        );
        assert_eq!(
            never.prev_fire_at_or_before(utc("2025-01-01T00:00:00Z"), &tz),
            None
        );
        let yearly = CronExpr::parse("@yearly").unwrap();
        assert_eq!(yearly.next_fire_after(Timestamp::MAX, &tz), None);
        assert_eq!(yearly.prev_fire_at_or_before(Timestamp::MIN, &tz), None);
        assert_eq!(
            yearly.next_fire_after(utc("9999-06-01T00:00:00Z"), &tz),
            None
        );
        // Rare but possible: 29 February falling on a Sunday (AND semantics via `*/7`).
        let rare = CronExpr::parse("0 0 29 2 */7").unwrap();
        assert_eq!(
            rare.next_fire_after(utc("2004-03-01T00:00:00Z"), &tz),
            Some(utc("2032-02-29T00:00:00Z"))
        );
        assert_eq!(
            rare.prev_fire_at_or_before(utc("2032-02-28T00:00:00Z"), &tz),
            Some(utc("2004-02-29T00:00:00Z"))
        );
    }
}
