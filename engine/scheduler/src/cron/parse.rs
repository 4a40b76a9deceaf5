//! The cron parser and its errors.

use std::fmt;

use super::CronExpr;
use crate::civil::days_in_month;

/// One of the five fields of a cron expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CronField {
    /// First field, 0–59.
    Minute,
    /// Second field, 0–23.
    Hour,
    /// Third field, 1–31.
    DayOfMonth,
    /// Fourth field, 1–12 or `JAN`–`DEC`.
    Month,
    /// Fifth field, 0–7 (0 and 7 are Sunday) or `SUN`–`SAT`.
    DayOfWeek,
}

impl CronField {
    /// All fields in the order they are written.
    pub const ALL: [CronField; 5] = [
        CronField::Minute,
        CronField::Hour,
        CronField::DayOfMonth,
        CronField::Month,
        CronField::DayOfWeek,
    ];

    /// The name shown to users: `minute`, `hour`, `day-of-month`, `month`, `day-of-week`.
    pub fn name(self) -> &'static str {
        match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
        }
    }

    /// Smallest value accepted.
    fn min(self) -> u8 {
        match self {
            CronField::Minute | CronField::Hour | CronField::DayOfWeek => 0,
            CronField::DayOfMonth | CronField::Month => 1,
        }
    }

    /// Largest value accepted (7 for day-of-week: a second Sunday).
    fn max(self) -> u8 {
        match self {
            CronField::Minute => 59,
            CronField::Hour => 23,
            CronField::DayOfMonth => 31,
            CronField::Month => 12,
            CronField::DayOfWeek => 7,
        }
    }

    /// Largest useful step: the number of distinct values of the field.
    fn max_step(self) -> u8 {
        match self {
            CronField::DayOfWeek => 7,
            other => other.max() - other.min() + 1,
        }
    }

    /// Names accepted in place of numbers, and the number of the first name.
    fn names(self) -> Option<(&'static [&'static str], u8)> {
        const MONTHS: [&str; 12] = [
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ];
        const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
        match self {
            CronField::Month => Some((&MONTHS, 1)),
            CronField::DayOfWeek => Some((&DAYS, 0)),
            _ => None,
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why one field of a cron expression was rejected. Tokens are quoted as written (cut to 40
/// characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldProblem {
    /// A list has an empty item, as in `1,,2` or `1,`.
    #[error("empty list item (look for a doubled or trailing comma)")]
    EmptyItem,
    /// An item is not a value, range or step, as in `1-`, `-5` or `*-3`.
    #[error("`{token}` is not a value, a range `a-b` or a step `*/n`")]
    Malformed {
        /// The item as written.
        token: String,
    },
    /// A value in a field that takes only numbers is not a number.
    #[error("`{token}` is not a number")]
    NotANumber {
        /// The value as written.
        token: String,
    },
    /// A value in the month or day-of-week field is neither a number nor a known name.
    #[error("`{token}` is neither a number nor a name ({expected})")]
    UnknownName {
        /// The value as written.
        token: String,
        /// The names accepted, such as `JAN-DEC`.
        expected: &'static str,
    },
    /// A number outside the field's range.
    #[error("`{token}` is out of range ({min}-{max})")]
    OutOfRange {
        /// The value as written.
        token: String,
        /// Smallest value accepted.
        min: u8,
        /// Largest value accepted.
        max: u8,
    },
    /// A range whose start is greater than its end, as in `5-1`.
    #[error("range `{token}` runs backwards; write the smaller value first")]
    ReversedRange {
        /// The range as written.
        token: String,
    },
    /// A step that is not a whole number from 1 to the number of values of the field.
    #[error("step `{token}` must be a whole number from 1 to {max}")]
    InvalidStep {
        /// The step as written (after the `/`).
        token: String,
        /// Largest step accepted.
        max: u8,
    },
    /// Syntax from other cron dialects (Quartz `?`, `L`, `W`, `#`).
    #[error("`{token}` is not supported: {hint}")]
    Unsupported {
        /// The item as written.
        token: String,
        /// What to write instead.
        hint: &'static str,
    },
}

/// Why a cron expression was rejected. The message is written for users and names the field;
/// the caller adds the field path (such as `spec.schedules[0].cron`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    /// The expression is empty or only whitespace.
    #[error(
        "cron expression is empty; expected 5 fields (minute hour day-of-month month \
         day-of-week) or a macro such as @daily"
    )]
    Empty,
    /// The expression does not have exactly five fields.
    #[error(
        "expected 5 fields (minute hour day-of-month month day-of-week), found {found}{}",
        if *.found == 6 { "; a seconds field is not supported" } else { "" }
    )]
    FieldCount {
        /// Number of fields found.
        found: usize,
    },
    /// An `@` macro that is not known.
    #[error(
        "unknown macro `{name}`; expected @hourly, @daily, @midnight, @weekly, @monthly, \
         @yearly or @annually"
    )]
    UnknownMacro {
        /// The macro as written (cut to 40 characters).
        name: String,
    },
    /// An `@` macro followed by more text.
    #[error("macro `{name}` must stand alone")]
    MacroWithFields {
        /// The macro as written.
        name: String,
    },
    /// One field is invalid.
    #[error("{field}: {problem}")]
    Field {
        /// The field at fault.
        field: CronField,
        /// What is wrong with it.
        problem: FieldProblem,
    },
}

impl CronError {
    /// The field at fault, when the error concerns a single field.
    pub fn field(&self) -> Option<CronField> {
        match self {
            CronError::Field { field, .. } => Some(*field),
            _ => None,
        }
    }

    /// A stable code for the kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            CronError::Empty => "CronEmpty",
            CronError::FieldCount { .. } => "CronFieldCount",
            CronError::UnknownMacro { .. } => "CronUnknownMacro",
            CronError::MacroWithFields { .. } => "CronMacroWithFields",
            CronError::Field { .. } => "CronFieldInvalid",
        }
    }
}

/// Cuts user text quoted in an error to a readable length.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

pub(super) fn parse(text: &str) -> Result<CronExpr, CronError> {
    let source = text.trim();
    let fields: Vec<&str> = source.split_whitespace().collect();
    let Some(first) = fields.first() else {
        return Err(CronError::Empty);
    };
    if first.starts_with('@') {
        let expansion = macro_expansion(first).ok_or_else(|| CronError::UnknownMacro {
            name: excerpt(first),
        })?;
        if fields.len() > 1 {
            return Err(CronError::MacroWithFields {
                name: excerpt(first),
            });
        }
        let expansion: Vec<&str> = expansion.split(' ').collect();
        return build(source, &expansion);
    }
    if fields.len() != 5 {
        return Err(CronError::FieldCount {
            found: fields.len(),
        });
    }
    build(source, &fields)
}

fn macro_expansion(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    Some(match lower.as_str() {
        "@hourly" => "0 * * * *",
        "@daily" | "@midnight" => "0 0 * * *",
        "@weekly" => "0 0 * * 0",
        "@monthly" => "0 0 1 * *",
        "@yearly" | "@annually" => "0 0 1 1 *",
        _ => return None,
    })
}

fn build(source: &str, fields: &[&str]) -> Result<CronExpr, CronError> {
    let mut masks = [0u64; 5];
    for ((field, text), mask) in CronField::ALL.iter().zip(fields).zip(masks.iter_mut()) {
        *mask = parse_field(*field, text).map_err(|problem| CronError::Field {
            field: *field,
            problem,
        })?;
    }
    let [minutes, hours, days_of_month, months, days_of_week] = masks;
    // Day-of-week 7 is Sunday again.
    let days_of_week = (days_of_week | (days_of_week >> 7)) & 0x7f;
    let mut expr = CronExpr {
        source: source.to_owned(),
        minutes,
        // Each mask holds only bits of its field's range, so the narrowing keeps every bit.
        hours: u32::try_from(hours).unwrap_or(u32::MAX),
        days_of_month: u32::try_from(days_of_month).unwrap_or(u32::MAX),
        months: u16::try_from(months).unwrap_or(u16::MAX),
        days_of_week: u8::try_from(days_of_week).unwrap_or(u8::MAX),
        dom_star: fields[2].starts_with('*'),
        dow_star: fields[4].starts_with('*'),
        never: false,
    };
    expr.never = never_fires(&expr);
    Ok(expr)
}

/// With AND semantics a matching day needs a day of month that exists in an allowed month; with
/// OR semantics every week has a matching weekday. Weekdays cycle through every date over the
/// years, so this is exact.
fn never_fires(expr: &CronExpr) -> bool {
    if !(expr.dom_star || expr.dow_star) {
        return false;
    }
    // A leap year gives every month its largest length.
    !(1..=12u8).any(|month| {
        expr.months & (1 << month) != 0
            && (1..=days_in_month(2000, month)).any(|day| expr.days_of_month & (1 << day) != 0)
    })
}

fn parse_field(field: CronField, text: &str) -> Result<u64, FieldProblem> {
    let mut mask = 0u64;
    for item in text.split(',') {
        mask |= parse_item(field, item)?;
    }
    Ok(mask)
}

fn parse_item(field: CronField, item: &str) -> Result<u64, FieldProblem> {
    if item.is_empty() {
        return Err(FieldProblem::EmptyItem);
    }
    check_foreign_syntax(field, item)?;
    let malformed = || FieldProblem::Malformed {
        token: excerpt(item),
    };
    let (base, step) = match item.split_once('/') {
        Some((_, "")) => return Err(malformed()),
        Some((base, step)) => (base, Some(parse_step(field, step)?)),
        None => (item, None),
    };
    if base.is_empty() {
        return Err(malformed());
    }
    let (low, high) = if base == "*" {
        (field.min(), field.max())
    } else if let Some((start, end)) = base.split_once('-') {
        if start.is_empty() || end.is_empty() {
            return Err(malformed());
        }
        let low = parse_value(field, start, item)?;
        let mut high = parse_value(field, end, item)?;
        // `FRI-SUN` means Friday to Sunday: read a closing Sunday as 7.
        if field == CronField::DayOfWeek && high == 0 && low > 0 {
            high = 7;
        }
        if low > high {
            return Err(FieldProblem::ReversedRange {
                token: excerpt(base),
            });
        }
        (low, high)
    } else {
        let value = parse_value(field, base, item)?;
        // `a/n` runs from `a` to the end of the field, as in cronie.
        (value, if step.is_some() { field.max() } else { value })
    };
    let step = usize::from(step.unwrap_or(1));
    Ok((low..=high)
        .step_by(step)
        .fold(0u64, |mask, value| mask | (1 << value)))
}

fn parse_step(field: CronField, text: &str) -> Result<u8, FieldProblem> {
    let invalid = || FieldProblem::InvalidStep {
        token: excerpt(text),
        max: field.max_step(),
    };
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match text.parse::<u8>() {
        Ok(step) if (1..=field.max_step()).contains(&step) => Ok(step),
        _ => Err(invalid()),
    }
}

/// Parses one number or name; `item` is the whole list item, quoted when the value is malformed.
fn parse_value(field: CronField, text: &str, item: &str) -> Result<u8, FieldProblem> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let out_of_range = || FieldProblem::OutOfRange {
            token: excerpt(text),
            min: field.min(),
            max: field.max(),
        };
        // More than three digits never fits; checking first keeps `parse` from overflowing.
        if text.len() > 3 {
            return Err(out_of_range());
        }
        let value: u16 = text.parse().map_err(|_| out_of_range())?;
        return match u8::try_from(value) {
            Ok(v) if (field.min()..=field.max()).contains(&v) => Ok(v),
            _ => Err(out_of_range()),
        };
    }
    if text.contains(['-', '/', '*']) {
        return Err(FieldProblem::Malformed {
            token: excerpt(item),
        });
    }
    match field.names() {
        Some((names, first)) => names
            .iter()
            .zip(first..)
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|(_, value)| value)
            .ok_or_else(|| FieldProblem::UnknownName {
                token: excerpt(text),
                expected: if field == CronField::Month {
                    "JAN-DEC"
                } else {
                    "SUN-SAT"
                },
            }),
        None => Err(FieldProblem::NotANumber {
            token: excerpt(text),
        }),
    }
}

/// Gives a pointed message for syntax of Quartz and other dialects instead of "not a number".
fn check_foreign_syntax(field: CronField, item: &str) -> Result<(), FieldProblem> {
    let unsupported = |hint| {
        Err(FieldProblem::Unsupported {
            token: excerpt(item),
            hint,
        })
    };
    if item.contains('?') {
        return unsupported("write `*` instead of `?`");
    }
    if item.contains('#') {
        return unsupported("`#` (nth weekday of the month) does not exist in this cron dialect");
    }
    let day_field = matches!(field, CronField::DayOfMonth | CronField::DayOfWeek);
    // No day-of-week name ends in L or W, so these can only be Quartz's last/weekday markers.
    if day_field && (item.ends_with(['L', 'l', 'W', 'w'])) {
        return unsupported(
            "`L` (last) and `W` (nearest weekday) do not exist in this cron dialect",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> CronExpr {
        match CronExpr::parse(text) {
            Ok(expr) => expr,
            Err(e) => panic!("`{text}` should parse: {e}"),
        }
    }

    fn bits(mask: u64) -> Vec<u8> {
        (0..64).filter(|b| mask & (1 << b) != 0).collect()
    }

    #[test]
    fn fields_expand_to_the_expected_values() {
        let cases: &[(&str, [&[u8]; 5])] = &[
            (
                "0 0 * * *",
                [
                    &[0],
                    &[0],
                    &(1..=31).collect::<Vec<_>>(),
                    &(1..=12).collect::<Vec<_>>(),
                    &[0, 1, 2, 3, 4, 5, 6],
                ],
            ),
            (
                "*/15 1-5/2 1,15,31 jan,Jun-AUG mon-fri",
                [
                    &[0, 15, 30, 45],
                    &[1, 3, 5],
                    &[1, 15, 31],
                    &[1, 6, 7, 8],
                    &[1, 2, 3, 4, 5],
                ],
            ),
            (
                "5/20 22/1 10-12 */5 7",
                [&[5, 25, 45], &[22, 23], &[10, 11, 12], &[1, 6, 11], &[0]],
            ),
            (
                "0 0 * * 0,7",
                [
                    &[0],
                    &[0],
                    &(1..=31).collect::<Vec<_>>(),
                    &(1..=12).collect::<Vec<_>>(),
                    &[0],
                ],
            ),
            (
                "0 0 * * FRI-SUN",
                [
                    &[0],
                    &[0],
                    &(1..=31).collect::<Vec<_>>(),
                    &(1..=12).collect::<Vec<_>>(),
                    &[0, 5, 6],
                ],
            ),
            (
                "0 0 * * 5-7",
                [
                    &[0],
                    &[0],
                    &(1..=31).collect::<Vec<_>>(),
                    &(1..=12).collect::<Vec<_>>(),
                    &[0, 5, 6],
                ],
            ),
            ("59 23 31 12 sat", [&[59], &[23], &[31], &[12], &[6]]),
            (
                "0-59/30 */8 */10 */6 */2",
                [
                    &[0, 30],
                    &[0, 8, 16],
                    &[1, 11, 21, 31],
                    &[1, 7],
                    &[0, 2, 4, 6],
                ],
            ),
        ];
        for (text, expected) in cases {
            let e = ok(text);
            let got = [
                bits(e.minutes),
                bits(u64::from(e.hours)),
                bits(u64::from(e.days_of_month)),
                bits(u64::from(e.months)),
                bits(u64::from(e.days_of_week)),
            ];
            for (field, (got, want)) in CronField::ALL.iter().zip(got.iter().zip(expected)) {
                assert_eq!(got.as_slice(), *want, "{text}: {field}");
            }
        }
    }

    #[test]
    fn macros_expand_like_their_five_field_forms() {
        for (mac, five) in [
            ("@hourly", "0 * * * *"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@DAILY", "0 0 * * *"),
            ("@weekly", "0 0 * * 0"),
            ("@monthly", "0 0 1 * *"),
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
        ] {
            let m = ok(mac);
            let f = ok(five);
            assert_eq!(m.as_str(), mac);
            assert_eq!(
                (
                    m.minutes,
                    m.hours,
                    m.days_of_month,
                    m.months,
                    m.days_of_week
                ),
                (
                    f.minutes,
                    f.hours,
                    f.days_of_month,
                    f.months,
                    f.days_of_week
                ),
                "{mac}"
            );
            assert_eq!((m.dom_star, m.dow_star), (f.dom_star, f.dow_star), "{mac}");
        }
    }

    #[test]
    fn star_flags_follow_vixie() {
        let e = ok("0 0 1 * MON");
        assert!(!e.dom_star && !e.dow_star);
        let e = ok("0 0 */2 * MON");
        assert!(e.dom_star && !e.dow_star);
        let e = ok("0 0 1 * *");
        assert!(!e.dom_star && e.dow_star);
    }

    #[test]
    fn impossible_dates_are_detected() {
        for text in [
            "0 0 31 2 *",
            "0 0 30 2 *",
            "0 0 31 4,6,9,11 *",
            "0 0 30,31 feb */2",
        ] {
            assert!(!ok(text).is_satisfiable(), "{text}");
        }
        for text in ["0 0 29 2 *", "0 0 31 2 mon", "0 0 31 * *", "0 0 30 2 1"] {
            assert!(ok(text).is_satisfiable(), "{text}");
        }
    }

    #[test]
    fn whitespace_and_display() {
        let e = ok("  0\t0  *\n* *  ");
        assert_eq!(e.to_string(), "0\t0  *\n* *");
        assert_eq!(
            "@daily".parse::<CronExpr>().map(|e| e.to_string()).ok(),
            Some("@daily".into())
        );
    }

    #[test]
    fn serde_round_trips_through_the_source_text() {
        let e = ok("30 2 * * 1-5");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, "\"30 2 * * 1-5\"");
        let back: CronExpr = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        let err = serde_json::from_str::<CronExpr>("\"61 * * * *\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("minute: `61` is out of range (0-59)"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_field_and_the_reason() {
        let cases = [
            "",
            "   ",
            "* * * *",
            "0 0 * * * *",
            "0 0 0 * * * 2025",
            "@reboot",
            "@daily *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * 32 * *",
            "* * * 13 *",
            "* * * 0 *",
            "* * * * 8",
            "99999999999999999999 * * * *",
            "a * * * *",
            "* * * JANUARY *",
            "* * * * MONDAY",
            "* * * * FOO",
            "1,,2 * * * *",
            "1, * * * *",
            "5-1 * * * *",
            "* * * DEC-JAN *",
            "1- * * * *",
            "-5 * * * *",
            "*-3 * * * *",
            "1-2-3 * * * *",
            "*/0 * * * *",
            "*/61 * * * *",
            "*/ * * * *",
            "*/x * * * *",
            "/5 * * * *",
            "* * ? * *",
            "* * * * 5#3",
            "* * L * *",
            "* * 15W * *",
            "* * * * 5L",
            "* * * * *//2",
            "** * * * *",
            "é * * * *",
        ];
        let report: Vec<String> = cases
            .iter()
            .map(|text| match CronExpr::parse(text) {
                Ok(e) => format!("{text:?} => parsed {e}"),
                Err(err) => format!(
                    "{text:?} => [{}{}] {err}",
                    err.code(),
                    err.field().map(|f| format!(" {f}")).unwrap_or_default()
                ),
            })
            .collect();
        insta::assert_snapshot!(report.join("\n"));
    }

    #[test]
    fn long_tokens_are_cut_in_messages() {
        let long = "x".repeat(500);
        let err = CronExpr::parse(&format!("{long} * * * *")).unwrap_err();
        let message = err.to_string();
        assert!(message.len() < 120, "{message}");
        assert!(message.contains('…'));
    }
}
