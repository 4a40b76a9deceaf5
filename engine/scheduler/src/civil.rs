//! Proleptic Gregorian calendar arithmetic on whole local minutes.
//!
//! The cron search walks local wall-clock time field by field. Doing that on plain integers keeps
//! the hot loop free of time-zone look-ups; only the final candidate becomes a `jiff` value.

use jiff::civil::DateTime;

/// A local wall-clock minute (`YYYY-MM-DD hh:mm`), ordered chronologically.
///
/// Values produced by the search may briefly leave jiff's range (year 10000); [`Minute::to_civil`]
/// rejects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Minute {
    pub(crate) year: i16,
    pub(crate) month: u8,
    pub(crate) day: u8,
    pub(crate) hour: u8,
    pub(crate) minute: u8,
}

impl Minute {
    /// The minute containing `dt`.
    pub(crate) fn floor(dt: DateTime) -> Self {
        Self {
            year: dt.year(),
            // jiff guarantees these are in range, so the casts cannot lose information.
            month: dt.month().unsigned_abs(),
            day: dt.day().unsigned_abs(),
            hour: dt.hour().unsigned_abs(),
            minute: dt.minute().unsigned_abs(),
        }
    }

    /// The first whole minute at or after `dt`.
    pub(crate) fn ceil(dt: DateTime) -> Self {
        let floor = Self::floor(dt);
        if dt.second() == 0 && dt.subsec_nanosecond() == 0 {
            floor
        } else {
            floor.succ()
        }
    }

    /// The last whole minute strictly before `dt`.
    pub(crate) fn before(dt: DateTime) -> Self {
        let floor = Self::floor(dt);
        if dt.second() == 0 && dt.subsec_nanosecond() == 0 {
            floor.pred()
        } else {
            floor
        }
    }

    /// The local date and time of this minute, or `None` outside jiff's supported range.
    pub(crate) fn to_civil(self) -> Option<DateTime> {
        DateTime::new(
            self.year,
            i8::try_from(self.month).ok()?,
            i8::try_from(self.day).ok()?,
            i8::try_from(self.hour).ok()?,
            i8::try_from(self.minute).ok()?,
            0,
            0,
        )
        .ok()
    }

    /// The next minute.
    pub(crate) fn succ(self) -> Self {
        if self.minute < 59 {
            Self {
                minute: self.minute + 1,
                ..self
            }
        } else {
            self.next_hour()
        }
    }

    /// The previous minute.
    pub(crate) fn pred(self) -> Self {
        if self.minute > 0 {
            Self {
                minute: self.minute - 1,
                ..self
            }
        } else {
            self.prev_hour()
        }
    }

    /// The start (`hh:00`) of the next hour.
    pub(crate) fn next_hour(self) -> Self {
        if self.hour < 23 {
            Self {
                hour: self.hour + 1,
                minute: 0,
                ..self
            }
        } else {
            self.next_day()
        }
    }

    /// The last minute (`hh:59`) of the previous hour.
    pub(crate) fn prev_hour(self) -> Self {
        if self.hour > 0 {
            Self {
                hour: self.hour - 1,
                minute: 59,
                ..self
            }
        } else {
            self.prev_day()
        }
    }

    /// Midnight of the next day.
    pub(crate) fn next_day(self) -> Self {
        if self.day < days_in_month(self.year, self.month) {
            Self {
                day: self.day + 1,
                hour: 0,
                minute: 0,
                ..self
            }
        } else {
            self.next_month()
        }
    }

    /// The last minute (23:59) of the previous day.
    pub(crate) fn prev_day(self) -> Self {
        if self.day > 1 {
            Self {
                day: self.day - 1,
                hour: 23,
                minute: 59,
                ..self
            }
        } else {
            self.prev_month()
        }
    }

    /// Midnight on the first day of the next month.
    pub(crate) fn next_month(self) -> Self {
        if self.month < 12 {
            Self::month_start(self.year, self.month + 1)
        } else {
            Self::month_start(self.year.saturating_add(1), 1)
        }
    }

    /// The last minute of the previous month.
    pub(crate) fn prev_month(self) -> Self {
        if self.month > 1 {
            Self::month_end(self.year, self.month - 1)
        } else {
            Self::month_end(self.year.saturating_sub(1), 12)
        }
    }

    /// Midnight on the first day of `month`.
    pub(crate) fn month_start(year: i16, month: u8) -> Self {
        Self {
            year,
            month,
            day: 1,
            hour: 0,
            minute: 0,
        }
    }

    /// 23:59 on the last day of `month`.
    pub(crate) fn month_end(year: i16, month: u8) -> Self {
        Self {
            year,
            month,
            day: days_in_month(year, month),
            hour: 23,
            minute: 59,
        }
    }
}

/// Whether `year` is a leap year in the proleptic Gregorian calendar (the one jiff uses).
pub(crate) fn is_leap_year(year: i16) -> bool {
    let y = i32::from(year);
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Number of days in `month` (1–12) of `year`.
pub(crate) fn days_in_month(year: i16, month: u8) -> u8 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day of the week of a date, 0 = Sunday … 6 = Saturday.
pub(crate) fn weekday(year: i16, month: u8, day: u8) -> u8 {
    // Days since 1970-01-01 (a Thursday), after Howard Hinnant's `days_from_civil`.
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // The result is in 0..7, so the cast is lossless.
    (days + 4).rem_euclid(7) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn weekday_agrees_with_jiff() {
        let mut d = date(1899, 12, 25);
        let end = date(2104, 3, 5);
        while d <= end {
            let ours = weekday(d.year(), d.month() as u8, d.day() as u8);
            assert_eq!(ours, d.weekday().to_sunday_zero_offset() as u8, "{d}");
            d = d.tomorrow().unwrap();
        }
        for (y, m, dd) in [(-9999, 1, 1), (9999, 12, 31), (0, 2, 29), (-1, 3, 1)] {
            let jd = date(y, m, dd);
            assert_eq!(
                weekday(y, m as u8, dd as u8),
                jd.weekday().to_sunday_zero_offset() as u8
            );
        }
    }

    #[test]
    fn days_in_month_agrees_with_jiff() {
        for y in [1900, 2000, 2023, 2024, 2100, 2400, -4, 0] {
            for m in 1..=12 {
                assert_eq!(
                    days_in_month(y, m),
                    date(y, m as i8, 1).days_in_month() as u8,
                    "{y}-{m}"
                );
            }
        }
    }

    #[test]
    fn succ_and_pred_roll_over_every_field() {
        let m = Minute::floor(date(2024, 2, 29).at(23, 59, 0, 0));
        assert_eq!(m.succ().to_civil(), Some(date(2024, 3, 1).at(0, 0, 0, 0)));
        let m = Minute::floor(date(2025, 1, 1).at(0, 0, 0, 0));
        assert_eq!(
            m.pred().to_civil(),
            Some(date(2024, 12, 31).at(23, 59, 0, 0))
        );
        let m = Minute::floor(date(2023, 3, 1).at(0, 0, 0, 0));
        assert_eq!(
            m.pred().to_civil(),
            Some(date(2023, 2, 28).at(23, 59, 0, 0))
        );
        assert_eq!(
            m.prev_month().to_civil(),
            Some(date(2023, 2, 28).at(23, 59, 0, 0))
        );
    }

    #[test]
    fn ceil_and_before_respect_whole_minutes() {
        let exact = date(2025, 6, 1).at(10, 0, 0, 0);
        let inside = date(2025, 6, 1).at(10, 0, 0, 1);
        assert_eq!(Minute::ceil(exact).to_civil(), Some(exact));
        assert_eq!(
            Minute::ceil(inside).to_civil(),
            Some(date(2025, 6, 1).at(10, 1, 0, 0))
        );
        assert_eq!(
            Minute::before(exact).to_civil(),
            Some(date(2025, 6, 1).at(9, 59, 0, 0))
        );
        assert_eq!(Minute::before(inside).to_civil(), Some(exact));
    }

    #[test]
    fn out_of_range_years_do_not_convert() {
        let m = Minute::floor(date(9999, 12, 31).at(23, 59, 0, 0));
        assert_eq!(m.succ().to_civil(), None);
    }
}
