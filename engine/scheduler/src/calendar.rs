//! Maintenance windows: the union of `[fire, fire + duration)` over a policy's schedules, minus
//! its exclusions.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::CronExpr;

/// How far back from the instant asked about a window's start is traced. Each schedule's window
/// lasts at most 24 hours, so one step back always finds the fire that opened the window; chains
/// of overlapping windows are followed only this far.
const LOOKBACK: SignedDuration = SignedDuration::from_hours(24);

/// How far ahead of the instant asked about a window's end is traced. Windows that overlap one
/// another (a schedule firing more often than its duration) merge into one; a policy whose
/// windows never close is reported in pieces that end about this far ahead.
const LOOKAHEAD: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Why a schedule or exclusion was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// `durationHours` outside 1–24.
    #[error("durationHours must be from 1 to 24, found {hours}")]
    DurationOutOfRange {
        /// The duration given.
        hours: u8,
    },
    /// An exclusion whose end is not after its start.
    #[error("exclusion end {end} must be after its start {start}")]
    ExclusionNotAfterStart {
        /// The start given.
        start: Timestamp,
        /// The end given.
        end: Timestamp,
    },
}

impl ScheduleError {
    /// A stable code for the kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            ScheduleError::DurationOutOfRange { .. } => "DurationOutOfRange",
            ScheduleError::ExclusionNotAfterStart { .. } => "ExclusionNotAfterStart",
        }
    }
}

/// One schedule of a maintenance policy: each fire of `cron` opens a window of `duration_hours`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    name: String,
    cron: CronExpr,
    duration_hours: u8,
}

impl Schedule {
    /// A schedule whose windows last `duration_hours` of elapsed time (a window spanning a
    /// daylight-saving change still lasts that many hours; its local end shifts).
    ///
    /// # Errors
    ///
    /// [`ScheduleError::DurationOutOfRange`] unless `duration_hours` is from 1 to 24.
    pub fn new(
        name: impl Into<String>,
        cron: CronExpr,
        duration_hours: u8,
    ) -> Result<Self, ScheduleError> {
        if !(1..=24).contains(&duration_hours) {
            return Err(ScheduleError::DurationOutOfRange {
                hours: duration_hours,
            });
        }
        Ok(Self {
            name: name.into(),
            cron,
            duration_hours,
        })
    }

    /// The schedule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cron expression whose fires open windows.
    pub fn cron(&self) -> &CronExpr {
        &self.cron
    }

    /// How long each window lasts, in hours (1–24).
    pub fn duration_hours(&self) -> u8 {
        self.duration_hours
    }

    fn duration(&self) -> SignedDuration {
        SignedDuration::from_hours(i64::from(self.duration_hours))
    }

    /// The end of the window opened by the last fire at or before `at`.
    fn last_window_end(&self, at: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let fire = self.cron.prev_fire_at_or_before(at, tz)?;
        fire.checked_add(self.duration()).ok()
    }
}

/// A period during which no update may start (a freeze): `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    name: String,
    start: Timestamp,
    end: Timestamp,
}

impl Exclusion {
    /// An exclusion covering `[start, end)`.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::ExclusionNotAfterStart`] unless `end` is after `start`.
    pub fn new(
        name: impl Into<String>,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Self, ScheduleError> {
        if end <= start {
            return Err(ScheduleError::ExclusionNotAfterStart { start, end });
        }
        Ok(Self {
            name: name.into(),
            start,
            end,
        })
    }

    /// The exclusion's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// First instant excluded.
    pub fn start(&self) -> Timestamp {
        self.start
    }

    /// First instant no longer excluded.
    pub fn end(&self) -> Timestamp {
        self.end
    }

    /// Whether `t` is excluded.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// An interval `[start, end)` during which updates may start. Serialises as
/// `{"start": "<RFC 3339>", "end": "<RFC 3339>"}`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Window {
    /// First instant an update may start.
    pub start: Timestamp,
    /// First instant an update may no longer start.
    pub end: Timestamp,
}

impl Window {
    /// Whether `t` is inside the window.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// The windows of one maintenance policy: schedules plus exclusions, evaluated in a time zone
/// passed to each query (one policy serves clusters in many zones).
///
/// Windows of all schedules are merged where they overlap or touch, then exclusions are cut out.
/// Every query is a bounded search and does no I/O.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Calendar {
    schedules: Vec<Schedule>,
    exclusions: Vec<Exclusion>,
    /// Exclusions merged where they overlap or touch, sorted.
    frozen: Vec<(Timestamp, Timestamp)>,
}

impl Calendar {
    /// A calendar from a policy's schedules and exclusions. With no schedules no window ever
    /// opens.
    pub fn new(schedules: Vec<Schedule>, exclusions: Vec<Exclusion>) -> Self {
        let mut spans: Vec<(Timestamp, Timestamp)> =
            exclusions.iter().map(|e| (e.start, e.end)).collect();
        spans.sort_unstable();
        let mut frozen: Vec<(Timestamp, Timestamp)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match frozen.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => frozen.push((start, end)),
            }
        }
        Self {
            schedules,
            exclusions,
            frozen,
        }
    }

    /// The schedules.
    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }

    /// The exclusions, as given.
    pub fn exclusions(&self) -> &[Exclusion] {
        &self.exclusions
    }

    /// The first exclusion (in the order given) containing `t`, to explain why no update starts.
    pub fn exclusion_at(&self, t: Timestamp) -> Option<&Exclusion> {
        self.exclusions.iter().find(|e| e.contains(t))
    }

    /// The window containing `t`, if an update may start at `t` in zone `tz`.
    ///
    /// The window's start is where it opened (traced back at most about a day before `t`) or
    /// where the last exclusion before `t` ended; its end is where it closes or the next
    /// exclusion begins. `None` when no window contains `t` or `t` is excluded.
    pub fn open_at(&self, t: Timestamp, tz: &TimeZone) -> Option<Window> {
        if self.frozen_until(t).is_some() {
            return None;
        }
        let end = self.covered_until(t, tz)?;
        let mut start = self.covered_since(t, tz);
        // Exclusions are disjoint and sorted, so the one ending last before `t` is the nearest.
        let ended = self.frozen.partition_point(|&(_, e)| e <= t);
        if let Some(&(_, frozen_end)) = ended.checked_sub(1).and_then(|i| self.frozen.get(i)) {
            start = start.max(frozen_end);
        }
        Some(Window {
            start,
            end: self.clip_end(t, end),
        })
    }

    /// The next interval at or after `after` in which updates may start in zone `tz`: the window
    /// containing `after`, cut to start at `after`, or else the next window, with exclusions cut
    /// out. `None` when no window opens within the cron search horizon (about 100 years).
    pub fn next_start(&self, after: Timestamp, tz: &TimeZone) -> Option<Window> {
        let mut at = after;
        // Each round either returns, steps over one exclusion, or moves to the next fire (which
        // then either returns or is excluded), so this bound is never reached by valid data.
        for _ in 0..2 * self.frozen.len() + 4 {
            if let Some(frozen_end) = self.frozen_until(at) {
                at = frozen_end;
                continue;
            }
            if let Some(end) = self.covered_until(at, tz) {
                return Some(Window {
                    start: at,
                    end: self.clip_end(at, end),
                });
            }
            at = self.next_fire_after(at, tz)?;
        }
        None
    }

    /// Up to `count` windows in order, for display: the window open at `after` (whole, as
    /// [`Calendar::open_at`] gives it) or else the next one, then the ones after it.
    pub fn upcoming(&self, after: Timestamp, tz: &TimeZone, count: usize) -> Vec<Window> {
        let mut windows = Vec::with_capacity(count.min(32));
        if count == 0 {
            return windows;
        }
        let mut next = self
            .open_at(after, tz)
            .or_else(|| self.next_start(after, tz));
        while let Some(window) = next {
            windows.push(window);
            if windows.len() == count {
                break;
            }
            next = self.next_start(window.end, tz);
        }
        windows
    }

    /// The end of the exclusion containing `t`.
    fn frozen_until(&self, t: Timestamp) -> Option<Timestamp> {
        let started = self.frozen.partition_point(|&(s, _)| s <= t);
        let &(_, end) = self.frozen.get(started.checked_sub(1)?)?;
        (t < end).then_some(end)
    }

    /// `end` cut at the first exclusion starting after `t`.
    fn clip_end(&self, t: Timestamp, end: Timestamp) -> Timestamp {
        let started = self.frozen.partition_point(|&(s, _)| s <= t);
        match self.frozen.get(started) {
            Some(&(next_start, _)) => end.min(next_start),
            None => end,
        }
    }

    /// The earliest fire of any schedule strictly after `t`.
    fn next_fire_after(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        self.schedules
            .iter()
            .filter_map(|s| s.cron.next_fire_after(t, tz))
            .min()
    }

    /// When `t` is inside a window (exclusions aside), the end of the merged run of windows
    /// containing it, traced at most about [`LOOKAHEAD`] ahead.
    fn covered_until(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let mut end = self
            .schedules
            .iter()
            .filter_map(|s| s.last_window_end(t, tz))
            .filter(|&end| end > t)
            .max()?;
        let horizon = t.checked_add(LOOKAHEAD).unwrap_or(Timestamp::MAX);
        while end < horizon {
            // A window opened at or before `end` that lasts past it continues the run (windows
            // that only touch merge too).
            let extended = self
                .schedules
                .iter()
                .filter_map(|s| s.last_window_end(end, tz))
                .fold(end, Timestamp::max);
            if extended == end {
                break;
            }
            end = extended;
        }
        Some(end)
    }

    /// For `t` inside a window, the start of the merged run of windows containing it, traced
    /// back while the run started no earlier than [`LOOKBACK`] before `t`.
    fn covered_since(&self, t: Timestamp, tz: &TimeZone) -> Timestamp {
        let floor = t.checked_sub(LOOKBACK).unwrap_or(Timestamp::MIN);
        let mut start = t;
        while start >= floor {
            // The earliest fire whose window reaches `start`: the first fire at or after
            // `start - duration`.
            let earlier = self
                .schedules
                .iter()
                .filter_map(|s| {
                    let reach = start.checked_sub(s.duration()).ok()?;
                    let just_before = reach.checked_sub(SignedDuration::from_nanos(1)).ok()?;
                    s.cron.next_fire_after(just_before, tz)
                })
                .fold(start, Timestamp::min);
            if earlier == start {
                break;
            }
            start = earlier;
        }
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn daily(hour_minute: &str, hours: u8) -> Schedule {
        let (h, m) = hour_minute.split_once(':').unwrap();
        Schedule::new(
            format!("daily-{hour_minute}"),
            CronExpr::parse(&format!("{m} {h} * * *")).unwrap(),
            hours,
        )
        .unwrap()
    }

    fn w(start: &str, end: &str) -> Window {
        Window {
            start: ts(start),
            end: ts(end),
        }
    }

    #[test]
    fn validation() {
        let cron = CronExpr::parse("@daily").unwrap();
        for hours in [0, 25, 255] {
            let err = Schedule::new("s", cron.clone(), hours).unwrap_err();
            assert_eq!(err, ScheduleError::DurationOutOfRange { hours });
            assert_eq!(err.code(), "DurationOutOfRange");
        }
        for hours in [1, 24] {
            assert!(Schedule::new("s", cron.clone(), hours).is_ok());
        }
        let t = ts("2025-01-01T00:00:00Z");
        let err = Exclusion::new("x", t, t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exclusion end 2025-01-01T00:00:00Z must be after its start 2025-01-01T00:00:00Z"
        );
    }

    #[test]
    fn empty_calendar_never_opens() {
        let cal = Calendar::new(vec![], vec![]);
        let t = ts("2025-01-01T00:00:00Z");
        assert_eq!(cal.open_at(t, &TimeZone::UTC), None);
        assert_eq!(cal.next_start(t, &TimeZone::UTC), None);
        assert!(cal.upcoming(t, &TimeZone::UTC, 3).is_empty());
    }

    #[test]
    fn open_at_and_next_start_in_utc() {
        let cal = Calendar::new(vec![daily("02:00", 4)], vec![]);
        let tz = TimeZone::UTC;
        let window = w("2025-05-01T02:00:00Z", "2025-05-01T06:00:00Z");
        assert_eq!(cal.open_at(ts("2025-05-01T01:59:59Z"), &tz), None);
        assert_eq!(cal.open_at(ts("2025-05-01T02:00:00Z"), &tz), Some(window));
        assert_eq!(cal.open_at(ts("2025-05-01T05:59:59Z"), &tz), Some(window));
        assert_eq!(cal.open_at(ts("2025-05-01T06:00:00Z"), &tz), None);
        assert_eq!(
            cal.next_start(ts("2025-05-01T01:00:00Z"), &tz),
            Some(window)
        );
        assert_eq!(
            cal.next_start(ts("2025-05-01T03:00:00Z"), &tz),
            Some(w("2025-05-01T03:00:00Z", "2025-05-01T06:00:00Z"))
        );
        assert_eq!(
            cal.next_start(ts("2025-05-01T06:00:00Z"), &tz),
            Some(w("2025-05-02T02:00:00Z", "2025-05-02T06:00:00Z"))
        );
        assert_eq!(
            cal.upcoming(ts("2025-05-01T03:00:00Z"), &tz, 2),
            vec![window, w("2025-05-02T02:00:00Z", "2025-05-02T06:00:00Z")]
        );
    }

    #[test]
    fn overlapping_and_touching_windows_merge() {
        let cal = Calendar::new(
            vec![daily("01:00", 2), daily("02:00", 3), daily("05:00", 1)],
            vec![],
        );
        let tz = TimeZone::UTC;
        assert_eq!(
            cal.open_at(ts("2025-05-01T05:30:00Z"), &tz),
            Some(w("2025-05-01T01:00:00Z", "2025-05-01T06:00:00Z"))
        );
    }

    #[test]
    fn exclusions_cut_windows() {
        let freeze = Exclusion::new(
            "freeze",
            ts("2025-05-01T03:00:00Z"),
            ts("2025-05-01T04:00:00Z"),
        )
        .unwrap();
        let whole_day = Exclusion::new(
            "holiday",
            ts("2025-05-02T00:00:00Z"),
            ts("2025-05-03T00:00:00Z"),
        )
        .unwrap();
        let cal = Calendar::new(vec![daily("02:00", 4)], vec![whole_day, freeze]);
        let tz = TimeZone::UTC;
        assert_eq!(
            cal.open_at(ts("2025-05-01T02:30:00Z"), &tz),
            Some(w("2025-05-01T02:00:00Z", "2025-05-01T03:00:00Z"))
        );
        assert_eq!(cal.open_at(ts("2025-05-01T03:30:00Z"), &tz), None);
        assert_eq!(
            cal.exclusion_at(ts("2025-05-01T03:30:00Z"))
                .map(Exclusion::name),
            Some("freeze")
        );
        assert_eq!(
            cal.open_at(ts("2025-05-01T04:30:00Z"), &tz),
            Some(w("2025-05-01T04:00:00Z", "2025-05-01T06:00:00Z"))
        );
        assert_eq!(
            cal.upcoming(ts("2025-05-01T00:00:00Z"), &tz, 3),
            vec![
                w("2025-05-01T02:00:00Z", "2025-05-01T03:00:00Z"),
                w("2025-05-01T04:00:00Z", "2025-05-01T06:00:00Z"),
                w("2025-05-03T02:00:00Z", "2025-05-03T06:00:00Z"),
            ]
        );
    }

    #[test]
    fn always_open_policy_is_reported_in_bounded_pieces() {
        let every_minute =
            Schedule::new("always", CronExpr::parse("* * * * *").unwrap(), 1).unwrap();
        let cal = Calendar::new(vec![every_minute], vec![]);
        let tz = TimeZone::UTC;
        let t = ts("2025-05-01T12:00:00Z");
        let open = cal.open_at(t, &tz).unwrap();
        assert!(open.start <= t - LOOKBACK && open.start >= t - LOOKBACK - LOOKBACK);
        assert!(open.end >= t + LOOKAHEAD && open.end <= t + LOOKAHEAD + LOOKBACK);
        let next = cal.next_start(open.end, &tz).unwrap();
        assert_eq!(next.start, open.end);
    }

    #[test]
    fn window_serialises_as_rfc3339() {
        let window = w("2025-05-01T02:00:00Z", "2025-05-01T06:00:00Z");
        assert_eq!(
            serde_json::to_string(&window).unwrap(),
            r#"{"start":"2025-05-01T02:00:00Z","end":"2025-05-01T06:00:00Z"}"#
        );
    }
}
