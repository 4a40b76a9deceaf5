//! Five-field cron expressions (Vixie cron dialect).

mod parse;
mod search;

use std::fmt;
use std::str::FromStr;

use jiff::civil::DateTime;

pub use parse::{CronError, CronField, FieldProblem};

/// A parsed five-field cron expression: `minute hour day-of-month month day-of-week`.
///
/// The dialect is Vixie cron's: numbers, names (`JAN`–`DEC`, `SUN`–`SAT`, any case), `*`, ranges
/// `a-b`, steps `*/n`, `a-b/n` and `a/n`, lists `a,b-c`, `0` or `7` for Sunday, and the macros
/// `@hourly`, `@daily`, `@midnight`, `@weekly`, `@monthly`, `@yearly`, `@annually`. When both the
/// day-of-month and the day-of-week field are restricted (neither starts with `*`), a day matches
/// if **either** matches; otherwise both must match (so `*/2` counts as unrestricted, as in Vixie
/// cron).
///
/// Expressions are evaluated in a time zone with [`CronExpr::next_fire_after`] and
/// [`CronExpr::prev_fire_at_or_before`]; see `docs/maintenance-windows.md` for the daylight
/// saving rules.
///
/// Serialises as the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CronExpr {
    source: String,
    /// Bit `n` set: minute `n` matches.
    minutes: u64,
    /// Bit `n` set: hour `n` matches.
    hours: u32,
    /// Bit `n` set: day of month `n` (1–31) matches.
    days_of_month: u32,
    /// Bit `n` set: month `n` (1–12) matches.
    months: u16,
    /// Bit `n` set: weekday `n` (0 = Sunday) matches.
    days_of_week: u8,
    /// Day-of-month field started with `*` (Vixie's `DOM_STAR`).
    dom_star: bool,
    /// Day-of-week field started with `*` (Vixie's `DOW_STAR`).
    dow_star: bool,
    /// No date can ever match (such as `0 0 31 2 *`).
    never: bool,
}

impl CronExpr {
    /// Parses a cron expression.
    ///
    /// # Errors
    ///
    /// [`CronError`] when the text is empty, has other than five fields (a sixth seconds field
    /// is rejected), names an unknown `@` macro, or a field holds a value out of range, a
    /// reversed range, a bad step or an unknown name. [`CronError::field`] tells which field.
    pub fn parse(text: &str) -> Result<Self, CronError> {
        parse::parse(text)
    }

    /// The text this expression was parsed from, trimmed.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the expression can fire at all. `false` for impossible dates such as `0 0 31 2 *`
    /// or `0 0 30 2 *`; such expressions parse, and every search on them returns `None`.
    pub fn is_satisfiable(&self) -> bool {
        !self.never
    }

    /// Whether the local wall-clock minute containing `dt` matches every field (seconds are
    /// ignored).
    pub fn matches(&self, dt: DateTime) -> bool {
        // jiff keeps every field in range, so the conversions cannot fail.
        let (Ok(minute), Ok(hour), Ok(day), Ok(month)) = (
            u8::try_from(dt.minute()),
            u8::try_from(dt.hour()),
            u8::try_from(dt.day()),
            u8::try_from(dt.month()),
        ) else {
            return false;
        };
        let weekday = u8::try_from(dt.weekday().to_sunday_zero_offset()).unwrap_or(0);
        bit64(self.minutes, minute)
            && bit64(u64::from(self.hours), hour)
            && bit64(u64::from(self.months), month)
            && self.day_matches(day, weekday)
    }

    /// Vixie cron's day rule: OR when both day fields are restricted, AND otherwise.
    fn day_matches(&self, day: u8, weekday: u8) -> bool {
        let dom = bit64(u64::from(self.days_of_month), day);
        let dow = bit64(u64::from(self.days_of_week), weekday);
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }
}

fn bit64(mask: u64, n: u8) -> bool {
    n < 64 && mask & (1 << n) != 0
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for CronExpr {
    type Err = CronError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for CronExpr {
    type Error = CronError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CronExpr> for String {
    fn from(value: CronExpr) -> Self {
        value.source
    }
}

impl serde::Serialize for CronExpr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for CronExpr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}
