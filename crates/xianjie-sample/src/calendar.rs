//! Calendar days for the sample generator: plain integer arithmetic (days since 1970-01-01,
//! proleptic Gregorian), so date sums never fail and formatting needs no allocation of its own.

use std::fmt::Write as _;

use rand::Rng;

/// A calendar day, counted from 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Day(i32);

/// The first day sample cases may carry.
pub(crate) const FIRST: Day = Day::from_ymd(2024, 1, 1);
/// The last day sample cases may carry (the export is dated 2026-11-01).
pub(crate) const LAST: Day = Day::from_ymd(2026, 10, 31);
/// The fixed export date written into file headers.
pub(crate) const EXPORT_DATE: &str = "2026-11-01";

impl Day {
    /// The day of a (year, month, day); out-of-range days roll over (2025-02-29 is 2025-03-01).
    pub(crate) const fn from_ymd(year: i32, month: u32, day: u32) -> Day {
        // H. Hinnant, "chrono-Compatible Low-Level Date Algorithms", days_from_civil.
        let m = month as i32;
        let y = if m <= 2 { year - 1 } else { year };
        let era = (if y >= 0 { y } else { y - 399 }) / 400;
        let yoe = y - era * 400;
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + day as i32 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Day(era * 146_097 + doe - 719_468)
    }

    /// (year, month, day) of this day.
    pub(crate) fn ymd(self) -> (i32, u32, u32) {
        let z = self.0 + 719_468;
        let era = (if z >= 0 { z } else { z - 146_096 }) / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
        let y = yoe + era * 400 + i32::from(m <= 2);
        (y, m, d)
    }

    /// The year.
    pub(crate) fn year(self) -> i32 {
        self.ymd().0
    }

    /// Parses `YYYY-MM-DD` (an out-of-range day rolls over, as in [`Day::from_ymd`]).
    pub(crate) fn parse(s: &str) -> Option<Day> {
        let mut parts = s.splitn(3, '-');
        let year = parts.next()?.parse().ok()?;
        let month = parts.next()?.parse().ok()?;
        let day = parts.next()?.parse().ok()?;
        Some(Day::from_ymd(year, month, day))
    }

    /// This day plus `days` (may be negative).
    pub(crate) fn plus(self, days: i32) -> Day {
        Day(self.0 + days)
    }

    /// The same calendar day `years` later, minus one day (the last day of a validity period).
    pub(crate) fn years_later_minus_one(self, years: i32) -> Day {
        let (y, m, d) = self.ymd();
        Day::from_ymd(y + years, m, d).plus(-1)
    }

    /// Appends `YYYY<sep>MM<sep>DD` (an empty `sep` gives `YYYYMMDD`).
    pub(crate) fn push(self, out: &mut String, sep: &str) {
        let (y, m, d) = self.ymd();
        let _ = write!(out, "{y:04}{sep}{m:02}{sep}{d:02}");
    }

    /// `YYYY<sep>MM<sep>DD` as a new string.
    pub(crate) fn format(self, sep: &str) -> String {
        let mut s = String::with_capacity(10);
        self.push(&mut s, sep);
        s
    }

    /// The form used in Chinese prose, `2025年3月12日`.
    pub(crate) fn chinese(self) -> String {
        let (y, m, d) = self.ymd();
        format!("{y}年{m}月{d}日")
    }
}

/// A moment to the minute (China Standard Time), for the transfer timeline: minutes since
/// 1970-01-01 00:00, so hours add across midnight without a calendar library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct At(i64);

impl At {
    /// `day` at `minute` minutes past midnight.
    pub(crate) fn on(day: Day, minute: u32) -> At {
        At(i64::from(day.0) * 1_440 + i64::from(minute))
    }

    /// This moment plus `minutes` (may be negative).
    pub(crate) fn plus_minutes(self, minutes: i64) -> At {
        At(self.0 + minutes)
    }

    /// The day it falls on.
    pub(crate) fn day(self) -> Day {
        Day(self.0.div_euclid(1_440) as i32)
    }

    /// Minutes past midnight.
    pub(crate) fn minute_of_day(self) -> u32 {
        self.0.rem_euclid(1_440) as u32
    }

    /// `YYYY-MM-DD HH:MM:SS`, as source systems write a time.
    pub(crate) fn format(self) -> String {
        let minute = self.minute_of_day();
        format!(
            "{} {:02}:{:02}:00",
            self.day().format("-"),
            minute / 60,
            minute % 60
        )
    }
}

/// A uniformly random day in `from..=to` (`from` when the range is empty).
pub(crate) fn between<R: Rng>(rng: &mut R, from: Day, to: Day) -> Day {
    if to <= from {
        return from;
    }
    Day(rng.gen_range(from.0..=to.0))
}

/// A date string that looks right but names no real day (2025-02-30, 2026-04-31, ...).
pub(crate) fn impossible<R: Rng>(rng: &mut R, year: i32, sep: &str) -> String {
    const BAD: [(u32, u32); 7] = [
        (2, 30),
        (2, 31),
        (4, 31),
        (6, 31),
        (9, 31),
        (11, 31),
        (2, 29),
    ];
    // 2024 is a leap year, so 02-29 is only impossible in 2025 and 2026.
    let (m, d) = loop {
        let md = BAD[rng.gen_range(0..BAD.len())];
        if md != (2, 29) || year % 4 != 0 {
            break md;
        }
    };
    format!("{year:04}{sep}{m:02}{sep}{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};

    #[test]
    fn days_match_chrono() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for n in (-30_000..40_000).step_by(7) {
            let ours = Day(n).ymd();
            let theirs = epoch + chrono::Duration::days(i64::from(n));
            assert_eq!(
                ours,
                (theirs.year(), theirs.month(), theirs.day()),
                "day {n}"
            );
            assert_eq!(Day::from_ymd(ours.0, ours.1, ours.2), Day(n));
        }
        assert_eq!(FIRST.format("-"), "2024-01-01");
        assert_eq!(LAST.format("/"), "2026/10/31");
        assert_eq!(LAST.format(""), "20261031");
        assert_eq!(
            Day::from_ymd(2024, 2, 29)
                .years_later_minus_one(1)
                .format("-"),
            "2025-02-28"
        );
        assert_eq!(Day::from_ymd(2025, 3, 12).chinese(), "2025年3月12日");
        assert_eq!(Day::parse("2025-03-12"), Some(Day::from_ymd(2025, 3, 12)));
        assert_eq!(Day::parse("2025-03"), None);
        let at = At::on(Day::from_ymd(2025, 3, 12), 23 * 60 + 30);
        assert_eq!(at.format(), "2025-03-12 23:30:00");
        assert_eq!(at.plus_minutes(45).format(), "2025-03-13 00:15:00");
        assert_eq!(at.plus_minutes(-24 * 60).day(), Day::from_ymd(2025, 3, 11));
    }

    #[test]
    fn impossible_dates_do_not_parse() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for year in [2024, 2025, 2026] {
            for _ in 0..50 {
                let s = impossible(&mut rng, year, "-");
                assert!(
                    NaiveDate::parse_from_str(&s, "%Y-%m-%d").is_err(),
                    "{s} parses"
                );
            }
        }
    }
}
