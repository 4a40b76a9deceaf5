//! Durations written in definitions: `30s`, `10m`, `4h`, `1h30m`, `2d`, `500ms`.
//!
//! A tiny strict parser rather than a crate: the grammar is one line, and strictness matters more
//! than breadth (no spaces, no fractions, no ISO 8601, no `1h1h`), so a typo is an error at
//! submission instead of a surprise at run time.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The longest duration a definition may write (400 days): anything longer is a mistake, and
/// the bound keeps every sum of durations far from overflow.
pub const MAX_DURATION_MS: u64 = 400 * DAY_MS;

const SECOND_MS: u64 = 1_000;
const MINUTE_MS: u64 = 60 * SECOND_MS;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// Units in the order they must appear.
const UNITS: [(&str, u64); 5] = [
    ("d", DAY_MS),
    ("h", HOUR_MS),
    ("m", MINUTE_MS),
    ("s", SECOND_MS),
    ("ms", 1),
];

/// A non-negative duration with millisecond precision, written as a string such as `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    millis: u64,
}

/// Why a duration string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string is empty.
    #[error("duration is empty (write e.g. 30s, 10m, 4h, 1h30m)")]
    Empty,
    /// The string does not follow the grammar.
    #[error(
        "invalid duration {0:?}: write whole numbers with units d, h, m, s, ms in that order \
         (e.g. 30s, 10m, 1h30m)"
    )]
    Syntax(String),
    /// The duration exceeds [`MAX_DURATION_MS`].
    #[error("duration {0:?} is longer than 400d")]
    TooLong(String),
}

impl Duration {
    /// A duration of `millis` milliseconds, saturating at [`MAX_DURATION_MS`].
    pub const fn from_millis(millis: u64) -> Self {
        Self {
            millis: if millis > MAX_DURATION_MS {
                MAX_DURATION_MS
            } else {
                millis
            },
        }
    }

    /// A duration of `secs` seconds, saturating at [`MAX_DURATION_MS`].
    pub const fn from_secs(secs: u64) -> Self {
        Self::from_millis(secs.saturating_mul(SECOND_MS))
    }

    /// A duration of `mins` minutes, saturating at [`MAX_DURATION_MS`].
    pub const fn from_mins(mins: u64) -> Self {
        Self::from_millis(mins.saturating_mul(MINUTE_MS))
    }

    /// The duration in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// The duration as a signed jiff duration, for timestamp arithmetic.
    pub fn to_signed(self) -> jiff::SignedDuration {
        // millis <= MAX_DURATION_MS, far below i64::MAX.
        jiff::SignedDuration::from_millis(self.millis as i64)
    }

    /// Parses `30s`, `10m`, `4h`, `2d`, `500ms` or a concatenation in decreasing unit order
    /// (`1h30m`, `1d12h`).
    ///
    /// # Errors
    /// [`DurationError`] when the string is empty, malformed or longer than 400 days.
    pub fn parse(s: &str) -> Result<Self, DurationError> {
        if s.is_empty() {
            return Err(DurationError::Empty);
        }
        let syntax = || DurationError::Syntax(s.to_owned());
        let bytes = s.as_bytes();
        let mut pos = 0;
        let mut total: u64 = 0;
        // Index into UNITS of the next unit allowed; units must strictly decrease.
        let mut next_unit = 0;
        while pos < bytes.len() {
            let start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            if pos == start || pos - start > 9 {
                return Err(syntax());
            }
            let number: u64 = s[start..pos].parse().map_err(|_| syntax())?;
            let unit_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
                pos += 1;
            }
            let unit = &s[unit_start..pos];
            let found = UNITS[next_unit..]
                .iter()
                .position(|(name, _)| *name == unit);
            let Some(offset) = found else {
                return Err(syntax());
            };
            let (_, factor) = UNITS[next_unit + offset];
            next_unit += offset + 1;
            total = number
                .checked_mul(factor)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| DurationError::TooLong(s.to_owned()))?;
        }
        if total > MAX_DURATION_MS {
            return Err(DurationError::TooLong(s.to_owned()));
        }
        Ok(Self { millis: total })
    }
}

impl fmt::Display for Duration {
    /// The canonical form: largest units first, zero parts left out (`0s` for zero).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.millis == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.millis;
        for (name, factor) in UNITS {
            let n = rest / factor;
            if n > 0 {
                write!(f, "{n}{name}")?;
                rest -= n * factor;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Duration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_documented_forms() {
        let cases = [
            ("0s", 0),
            ("30s", 30_000),
            ("10m", 600_000),
            ("4h", 14_400_000),
            ("2d", 172_800_000),
            ("500ms", 500),
            ("1h30m", 5_400_000),
            ("1d12h", 129_600_000),
            ("1m30s250ms", 90_250),
        ];
        for (s, ms) in cases {
            assert_eq!(Duration::parse(s).map(Duration::as_millis), Ok(ms), "{s}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "10",
            "s",
            "1.5h",
            "1 h",
            " 1h",
            "1h ",
            "1H",
            "30m1h",
            "1h1h",
            "-1s",
            "1w",
            "PT1H",
            "1hm",
            "1msx",
            "1e3s",
            "9999999999s",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(matches!(
            Duration::parse("401d"),
            Err(DurationError::TooLong(_))
        ));
    }

    #[test]
    fn serde_round_trips_as_a_string() {
        let d: Duration = serde_json::from_str("\"1h30m\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1h30m\"");
        assert!(serde_json::from_str::<Duration>("90").is_err());
    }

    proptest! {
        #[test]
        fn display_parses_back(ms in 0..=MAX_DURATION_MS) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(Duration::parse(&d.to_string()), Ok(d));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,16}") {
            let _ = Duration::parse(&s);
        }
    }
}
