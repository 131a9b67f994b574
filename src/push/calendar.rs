//! The working-day calendar statutory deadlines are counted in: Monday to Friday, minus public
//! holidays, plus the weekend days the State Council's holiday notice makes working days (调休).
//! Both lists come from configuration each year; nothing is guessed.

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, Weekday};

use crate::model::Action;

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
    /// A holiday that is not a weekday, or an adjusted working day that is not a weekend day.
    #[error("{list}[{index}]: {date} is a {weekday}; {reason}")]
    Pointless {
        /// `holidays` or `workdays`.
        list: &'static str,
        /// Position in the list.
        index: usize,
        /// The date.
        date: NaiveDate,
        /// Its weekday.
        weekday: Weekday,
        /// What the list is for.
        reason: &'static str,
    },
    /// The same date in both lists.
    #[error("{date} is both a holiday and an adjusted working day")]
    Both {
        /// The date.
        date: NaiveDate,
    },
}

/// Working days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    holidays: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
}

fn weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

impl WorkCalendar {
    /// A calendar from the configured lists: `holidays` are weekdays off, `workdays` are weekend
    /// days worked. Every problem is reported.
    pub fn new(holidays: &[String], workdays: &[String]) -> Result<Self, Vec<CalendarError>> {
        let mut errors = Vec::new();
        let mut parse = |list: &'static str, values: &[String], want_weekend: bool| {
            let mut out = BTreeSet::new();
            for (index, v) in values.iter().enumerate() {
                match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
                    Err(_) => errors.push(CalendarError::BadDate {
                        list,
                        index,
                        value: v.clone(),
                    }),
                    Ok(d) if weekend(d) != want_weekend => errors.push(CalendarError::Pointless {
                        list,
                        index,
                        date: d,
                        weekday: d.weekday(),
                        reason: if want_weekend {
                            "adjusted working days are weekend days worked"
                        } else {
                            "holidays are weekdays off (weekends are off anyway)"
                        },
                    }),
                    Ok(d) => {
                        out.insert(d);
                    }
                }
            }
            out
        };
        let holidays = parse("holidays", holidays, false);
        let workdays = parse("workdays", workdays, true);
        errors.extend(
            holidays
                .intersection(&workdays)
                .map(|d| CalendarError::Both { date: *d }),
        );
        if errors.is_empty() {
            Ok(WorkCalendar { holidays, workdays })
        } else {
            Err(errors)
        }
    }

    /// Whether `d` is a working day.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if weekend(d) {
            self.workdays.contains(&d)
        } else {
            !self.holidays.contains(&d)
        }
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

/// Working days the province allows for pushing a record of this action, if it must be pushed:
/// 7 for licensing and penalty decisions (双公示), 20 for inspection results (双随机一公开).
pub fn statutory_working_days(action: Action) -> Option<u32> {
    match action {
        Action::Licensing | Action::Penalty => Some(7),
        Action::Inspection => Some(20),
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
            &["2026-10-01".into(), "2026-10-11".into()],
        )
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 3, "{text:?}");
        assert!(
            text[0].starts_with("holidays[0]: 2026-10-03 is a Sat"),
            "{text:?}"
        );
        assert!(
            text[1].starts_with("holidays[1]: \"2026-1-xx\" is not a date"),
            "{text:?}"
        );
        assert!(
            text[2].starts_with("workdays[0]: 2026-10-01 is a Thu"),
            "{text:?}"
        );
    }
}
