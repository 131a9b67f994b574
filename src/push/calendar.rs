//! The working-day calendar statutory deadlines are counted in: Monday to Friday, minus public
//! holidays, plus the weekend days the State Council's holiday notice makes working days (调休).
//! The notices' tables ship with the binary (`calendar/cn-holidays.toml`); configuration only adds
//! or overrides, and says which further years it gives in full. A year neither covers is counted
//! Monday to Friday and reported as uncovered, never guessed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::Deserialize;

use crate::model::Action;

/// The State Council's notices, one table per year (see the file's header).
const SHIPPED: &str = include_str!("../../calendar/cn-holidays.toml");

/// A calendar problem, naming the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// Not a date.
    #[error("{list}[{index}]: {value:?} is not a date YYYY-MM-DD")]
    BadDate {
        /// `holidays` or `workdays`.
        list: &'static str,
        /// Position in the list.
        index: usize,
        /// The text.
        value: String,
    },
    /// An adjusted working day that is a working day anyway (a weekday that is no holiday).
    #[error(
        "{list}[{index}]: {date} is a {weekday}; adjusted working days are weekend days or holidays worked"
    )]
    Pointless {
        /// `workdays`.
        list: &'static str,
        /// Position in the list.
        index: usize,
        /// The date.
        date: NaiveDate,
        /// Its weekday.
        weekday: Weekday,
    },
    /// The same date in both lists.
    #[error("{date} is both a holiday and an adjusted working day")]
    Both {
        /// The date.
        date: NaiveDate,
    },
    /// The shipped tables are not what the build expects (a broken `calendar/cn-holidays.toml`).
    #[error("shipped holiday table calendar/cn-holidays.toml: {0}")]
    Shipped(String),
}

/// Working days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    holidays: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
    /// Years whose holidays and adjusted working days are known in full.
    years: BTreeSet<i32>,
}

/// One year of the shipped file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShippedYear {
    notice: String,
    document: String,
    published: NaiveDate,
    checked: String,
    holidays: Vec<String>,
    workdays: Vec<String>,
}

fn weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

fn parse(
    list: &'static str,
    values: &[String],
    errors: &mut Vec<CalendarError>,
) -> Vec<(usize, NaiveDate)> {
    let mut out = Vec::new();
    for (index, v) in values.iter().enumerate() {
        match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
            Ok(d) => out.push((index, d)),
            Err(_) => errors.push(CalendarError::BadDate {
                list,
                index,
                value: v.clone(),
            }),
        }
    }
    out
}

impl WorkCalendar {
    /// A calendar of only the given lists (no shipped tables, no year covered): `holidays` are
    /// days off (a weekend day is accepted: it is off anyway), `workdays` are weekend days worked.
    /// Every problem is reported.
    pub fn new(holidays: &[String], workdays: &[String]) -> Result<Self, Vec<CalendarError>> {
        Self::default().overlay(holidays, workdays, &[])
    }

    /// The State Council's tables shipped with this build.
    pub fn official() -> Result<Self, Vec<CalendarError>> {
        let shipped = |e: String| vec![CalendarError::Shipped(e)];
        let table: BTreeMap<String, ShippedYear> =
            toml::from_str(SHIPPED).map_err(|e| shipped(e.to_string()))?;
        let mut cal = WorkCalendar::default();
        for (key, y) in table {
            let year: i32 = key
                .parse()
                .map_err(|_| shipped(format!("[{key}] is not a year")))?;
            let mut errors = Vec::new();
            // The provenance is part of the data: each year names its notice and how it was checked.
            if !y.notice.contains(&format!("{year}年部分节假日安排"))
                || !(y.document.is_empty() || y.document.starts_with("国办发明电"))
                || y.published.year() >= year
                || y.checked.trim().is_empty()
            {
                errors.push(CalendarError::Shipped(format!(
                    "[{year}] notice, document, published or checked does not describe the {year} notice"
                )));
            }
            let holidays = parse("holidays", &y.holidays, &mut errors);
            let workdays = parse("workdays", &y.workdays, &mut errors);
            for (list, dates) in [("holidays", &holidays), ("workdays", &workdays)] {
                for (i, d) in dates {
                    if d.year() != year {
                        errors.push(CalendarError::Shipped(format!(
                            "[{year}] {list}[{i}]: {d} is not in {year}"
                        )));
                    }
                }
            }
            // The notices' 上班 days are all weekend days; anything else is a typing error.
            for (index, d) in &workdays {
                if !weekend(*d) {
                    errors.push(CalendarError::Pointless {
                        list: "workdays",
                        index: *index,
                        date: *d,
                        weekday: d.weekday(),
                    });
                }
            }
            let holidays: BTreeSet<NaiveDate> = holidays.into_iter().map(|(_, d)| d).collect();
            let workdays: BTreeSet<NaiveDate> = workdays.into_iter().map(|(_, d)| d).collect();
            errors.extend(
                holidays
                    .intersection(&workdays)
                    .map(|d| CalendarError::Both { date: *d }),
            );
            if !errors.is_empty() {
                return Err(errors
                    .into_iter()
                    .map(|e| match e {
                        CalendarError::Shipped(_) => e,
                        e => CalendarError::Shipped(format!("[{year}] {e}")),
                    })
                    .collect());
            }
            cal.holidays.extend(holidays);
            cal.workdays.extend(workdays);
            cal.years.insert(year);
        }
        Ok(cal)
    }

    /// This calendar with the configuration's lists over it: a configured holiday is a day off even
    /// where the tables say 上班, a configured working day is worked even where they say 放假; and
    /// `years` are covered (the configuration gives their tables in full). A configured working
    /// day must be a weekend day or a holiday of the tables (anything else is worked anyway), and
    /// no date may be in both configured lists. Every problem is reported.
    pub fn overlay(
        mut self,
        holidays: &[String],
        workdays: &[String],
        years: &[i32],
    ) -> Result<Self, Vec<CalendarError>> {
        let mut errors = Vec::new();
        let holidays = parse("holidays", holidays, &mut errors);
        let workdays = parse("workdays", workdays, &mut errors);
        for (index, d) in &workdays {
            if !weekend(*d) && !self.holidays.contains(d) {
                errors.push(CalendarError::Pointless {
                    list: "workdays",
                    index: *index,
                    date: *d,
                    weekday: d.weekday(),
                });
            }
        }
        let off: BTreeSet<NaiveDate> = holidays.into_iter().map(|(_, d)| d).collect();
        let on: BTreeSet<NaiveDate> = workdays.into_iter().map(|(_, d)| d).collect();
        errors.extend(
            off.intersection(&on)
                .map(|d| CalendarError::Both { date: *d }),
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        self.workdays.retain(|d| !off.contains(d));
        self.holidays.retain(|d| !on.contains(d));
        self.holidays.extend(off);
        self.workdays.extend(on);
        self.years.extend(years);
        Ok(self)
    }

    /// Whether `d` is a working day.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.holidays.contains(&d) {
            false
        } else {
            self.workdays.contains(&d) || !weekend(d)
        }
    }

    /// Whether the year's holidays and adjusted working days are known (shipped or configured).
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// The years from `from`'s to `to`'s (inclusive) that the calendar does not cover.
    pub fn uncovered_years(&self, from: NaiveDate, to: NaiveDate) -> Vec<i32> {
        (from.year()..=to.year())
            .filter(|y| !self.covers(*y))
            .collect()
    }

    /// The years deadlines counted from `today` reach: this year, and the next once the longest
    /// statutory deadline counted from today ends in it.
    pub fn years_ahead(&self, today: NaiveDate) -> std::ops::RangeInclusive<i32> {
        today.year()..=self.add_working_days(today, LONGEST_DEADLINE).year()
    }

    /// The `n`-th working day after `d` (the day itself does not count, as in "within 7 working
    /// days of the decision").
    pub fn add_working_days(&self, d: NaiveDate, n: u32) -> NaiveDate {
        let mut day = d;
        let mut left = n;
        while left > 0 {
            day += Duration::days(1);
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        day
    }

    /// Working days strictly after `from` up to and including `to` (0 when `to` ≤ `from`).
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut n = 0;
        let mut day = from;
        while day < to {
            day += Duration::days(1);
            if self.is_working_day(day) {
                n += 1;
            }
        }
        n
    }
}

/// The longest statutory push deadline, in working days (inspection results).
pub const LONGEST_DEADLINE: u32 = 20;

/// Working days the province allows for pushing a record of this action, if it must be pushed:
/// 7 for licensing and penalty decisions (双公示), 20 for inspection results (双随机一公开).
pub fn statutory_working_days(action: Action) -> Option<u32> {
    match action {
        Action::Licensing | Action::Penalty => Some(7),
        Action::Inspection => Some(LONGEST_DEADLINE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// 2026-10-01 (Thu) to 10-07 off, with Sunday 10-11 worked — the shape of a National Day
    /// week; the dates are configuration, not a claim about the official 2026 notice.
    fn october() -> WorkCalendar {
        let holidays: Vec<String> = [
            "2026-10-01",
            "2026-10-02",
            "2026-10-05",
            "2026-10-06",
            "2026-10-07",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        WorkCalendar::new(&holidays, &["2026-10-11".to_string()]).unwrap()
    }

    #[test]
    fn weekends_holidays_and_adjusted_days() {
        let plain = WorkCalendar::default();
        // Friday + 1 working day is Monday.
        assert_eq!(plain.add_working_days(d("2026-11-27"), 1), d("2026-11-30"));
        // A penalty decided on Friday 2026-11-27 is due 7 working days later: Tuesday 12-08.
        assert_eq!(plain.add_working_days(d("2026-11-27"), 7), d("2026-12-08"));
        let cal = october();
        assert!(!cal.is_working_day(d("2026-10-01")));
        assert!(
            !cal.is_working_day(d("2026-10-03")),
            "a Saturday in the holiday"
        );
        assert!(cal.is_working_day(d("2026-10-11")), "the adjusted Sunday");
        assert!(cal.is_working_day(d("2026-10-08")));
        // Decided Wednesday 09-30: working days are 10-08, 10-09, 10-11 (Sun), 10-12, 10-13,
        // 10-14, 10-15 — the 7th is Thursday 10-15.
        assert_eq!(cal.add_working_days(d("2026-09-30"), 7), d("2026-10-15"));
        assert_eq!(
            cal.working_days_between(d("2026-09-30"), d("2026-10-15")),
            7
        );
        assert_eq!(
            cal.working_days_between(d("2026-10-15"), d("2026-09-30")),
            0
        );
        assert_eq!(statutory_working_days(Action::Inspection), Some(20));
        assert_eq!(statutory_working_days(Action::Levy), None);
    }

    #[test]
    fn bad_configuration_is_reported_entry_by_entry() {
        let errs = WorkCalendar::new(
            &["2026-10-03".into(), "2026-1-xx".into(), "2026-10-01".into()],
            &[
                "2026-10-01".into(),
                "2026-10-11".into(),
                "2026-10-12".into(),
            ],
        )
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 4, "{text:?}");
        assert!(
            text[0].starts_with("holidays[1]: \"2026-1-xx\" is not a date"),
            "{text:?}"
        );
        // Thu 10-01 is no holiday of this calendar (it has no tables), Mon 10-12 neither.
        assert!(
            text[1].starts_with("workdays[0]: 2026-10-01 is a Thu"),
            "{text:?}"
        );
        assert!(
            text[2].starts_with("workdays[2]: 2026-10-12 is a Mon"),
            "{text:?}"
        );
        assert_eq!(
            text[3],
            "2026-10-01 is both a holiday and an adjusted working day"
        );
    }

    /// The State Council's notice lists Saturday 2025-10-04 among the National Day days off;
    /// copied literally into the configuration it is accepted, alone or over the tables.
    #[test]
    fn a_weekend_holiday_is_accepted() {
        let cal = WorkCalendar::new(&["2025-10-04".into(), "2025-10-06".into()], &[]).unwrap();
        assert!(!cal.is_working_day(d("2025-10-04")));
        assert!(!cal.is_working_day(d("2025-10-06")));
        assert!(cal.is_working_day(d("2025-10-09")));
        let cal = WorkCalendar::official()
            .unwrap()
            .overlay(&["2025-10-04".into(), "2025-10-05".into()], &[], &[])
            .unwrap();
        assert!(!cal.is_working_day(d("2025-10-04")));
        assert_eq!(cal, WorkCalendar::official().unwrap());
    }

    #[test]
    fn the_shipped_tables_are_loaded() {
        let cal = WorkCalendar::official().unwrap();
        for y in [2024, 2025, 2026] {
            assert!(cal.covers(y), "{y}");
        }
        assert!(!cal.covers(2023));
        // 2025: National Day and Mid-Autumn 10-01 (Wed) to 10-08 (Wed) off, Sun 09-28 and Sat
        // 10-11 worked.
        let mut day = d("2025-10-01");
        while day <= d("2025-10-08") {
            assert!(!cal.is_working_day(day), "{day}");
            day += Duration::days(1);
        }
        assert!(cal.is_working_day(d("2025-09-28")));
        assert!(cal.is_working_day(d("2025-10-11")));
        assert!(cal.is_working_day(d("2025-10-09")));
        assert!(!cal.is_working_day(d("2025-10-12")), "an ordinary Sunday");
        // Spring Festival 2025 (01-28..02-04) off, Sun 01-26 and Sat 02-08 worked; 2024's and
        // 2026's.
        assert!(!cal.is_working_day(d("2025-01-28")));
        assert!(!cal.is_working_day(d("2025-02-04")));
        assert!(cal.is_working_day(d("2025-01-26")));
        assert!(cal.is_working_day(d("2025-02-08")));
        assert!(!cal.is_working_day(d("2024-02-16")));
        assert!(cal.is_working_day(d("2024-02-18")));
        assert!(!cal.is_working_day(d("2026-02-23")));
        assert!(cal.is_working_day(d("2026-02-28")));
        assert!(cal.is_working_day(d("2026-01-04")));
        // Every year: 7 holidays' worth of weekdays off at least, and each 上班 day a weekend day.
        for y in [2024, 2025, 2026] {
            let weekdays_off = cal
                .holidays
                .iter()
                .filter(|h| h.year() == y && !weekend(**h))
                .count();
            assert!(weekdays_off >= 11, "{y}: {weekdays_off}");
            assert!(
                cal.workdays
                    .iter()
                    .filter(|w| w.year() == y)
                    .all(|w| weekend(*w))
            );
        }
    }

    /// 3 working days from a decision just before National Day 2025: Tue 09-30 → Thu 10-09 (1),
    /// Fri 10-10 (2), Sat 10-11 (3, 调休); from Fri 09-26: Sun 09-28 (1), Mon 09-29 (2), Tue 09-30 (3).
    #[test]
    fn deadlines_cross_weekends_and_holidays() {
        let cal = WorkCalendar::official().unwrap();
        assert_eq!(cal.add_working_days(d("2025-09-30"), 3), d("2025-10-11"));
        assert_eq!(cal.add_working_days(d("2025-09-26"), 3), d("2025-09-30"));
        assert_eq!(cal.add_working_days(d("2025-09-30"), 7), d("2025-10-16"));
        assert_eq!(
            cal.working_days_between(d("2025-09-30"), d("2025-10-11")),
            3
        );
        // Spring Festival 2026: decided Fri 02-13, worked Sat 02-14 (1), then 02-15..23 off:
        // Tue 02-24 (2), Wed 02-25 (3).
        assert_eq!(cal.add_working_days(d("2026-02-13"), 3), d("2026-02-25"));
    }

    #[test]
    fn configuration_adds_and_overrides() {
        let official = WorkCalendar::official().unwrap();
        // A local holiday, a table 上班 day given off, a table holiday worked, and 2027 in full.
        let cal = official
            .clone()
            .overlay(
                &[
                    "2025-12-31".into(),
                    "2025-10-11".into(),
                    "2027-01-01".into(),
                ],
                &["2025-10-08".into()],
                &[2027],
            )
            .unwrap();
        assert!(!cal.is_working_day(d("2025-12-31")));
        assert!(
            !cal.is_working_day(d("2025-10-11")),
            "Saturday no longer worked"
        );
        assert!(
            cal.is_working_day(d("2025-10-08")),
            "Wednesday worked after all"
        );
        assert!(!cal.is_working_day(d("2027-01-01")));
        assert!(cal.covers(2027));
        assert!(!official.covers(2027));
        assert_eq!(cal.add_working_days(d("2025-09-30"), 3), d("2025-10-10"));
        // A weekday that is no table holiday cannot be "worked".
        let errs = official
            .overlay(&[], &["2025-10-09".into()], &[])
            .unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "workdays[0]: 2025-10-09 is a Thu; adjusted working days are weekend days or holidays worked"
        );
    }

    /// A year without a table is reported: this year always, the next once the longest deadline
    /// counted from today reaches it.
    #[test]
    fn an_uncovered_year_is_reported() {
        let cal = WorkCalendar::official().unwrap();
        assert_eq!(cal.years_ahead(d("2026-06-01")), 2026..=2026);
        assert_eq!(cal.years_ahead(d("2026-12-15")), 2026..=2027);
        assert_eq!(
            cal.uncovered_years(d("2026-06-01"), d("2026-07-01")),
            Vec::<i32>::new()
        );
        assert_eq!(
            cal.uncovered_years(d("2026-12-15"), d("2027-01-14")),
            vec![2027]
        );
        assert_eq!(
            cal.uncovered_years(d("2022-05-01"), d("2025-01-01")),
            vec![2022, 2023]
        );
        let with_2027 = cal.overlay(&[], &[], &[2027]).unwrap();
        assert!(
            with_2027
                .uncovered_years(d("2026-12-15"), d("2027-01-14"))
                .is_empty()
        );
    }
}
