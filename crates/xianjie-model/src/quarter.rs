//! Calendar quarters (`2018Q4`), the period of the quarterly enforcement statistics.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A calendar quarter of a year.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter {
    year: i32,
    q: u8,
}

/// Why a quarter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quarter '{0}' is not of the form YYYYQn with n in 1-4 and year 1900-9999 (e.g. 2018Q4)")]
pub struct QuarterError(pub String);

impl Quarter {
    /// A quarter from year and number (1-4).
    pub fn new(year: i32, q: u8) -> Result<Self, QuarterError> {
        if (1900..=9999).contains(&year) && (1..=4).contains(&q) {
            Ok(Self { year, q })
        } else {
            Err(QuarterError(format!("{year}Q{q}")))
        }
    }

    /// Parses `2018Q4`.
    pub fn parse(s: &str) -> Result<Self, QuarterError> {
        let err = || QuarterError(s.to_string());
        let (y, q) = s.split_once('Q').ok_or_else(err)?;
        if y.len() != 4 || q.len() != 1 {
            return Err(err());
        }
        let year: i32 = y.parse().map_err(|_| err())?;
        let q: u8 = q.parse().map_err(|_| err())?;
        Self::new(year, q).map_err(|_| err())
    }

    /// The quarter a date falls in.
    pub fn of(date: NaiveDate) -> Self {
        Self {
            year: date.year(),
            q: (date.month0() / 3 + 1) as u8,
        }
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The quarter number, 1-4.
    pub fn number(self) -> u8 {
        self.q
    }

    /// First day of the quarter.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, u32::from(self.q) * 3 - 2, 1).unwrap_or(NaiveDate::MIN)
    }

    /// Last day of the quarter.
    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().unwrap_or(NaiveDate::MAX)
    }

    /// Whether the date lies in the quarter.
    pub fn contains(self, date: NaiveDate) -> bool {
        Self::of(date) == self
    }

    /// The following quarter.
    pub fn next(self) -> Self {
        if self.q == 4 {
            Self {
                year: self.year + 1,
                q: 1,
            }
        } else {
            Self {
                year: self.year,
                q: self.q + 1,
            }
        }
    }

    /// The preceding quarter.
    pub fn previous(self) -> Self {
        if self.q == 1 {
            Self {
                year: self.year - 1,
                q: 4,
            }
        } else {
            Self {
                year: self.year,
                q: self.q - 1,
            }
        }
    }
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}Q{}", self.year, self.q)
    }
}

impl fmt::Debug for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quarter({self})")
    }
}

impl std::str::FromStr for Quarter {
    type Err = QuarterError;
    fn from_str(s: &str) -> Result<Self, QuarterError> {
        Self::parse(s)
    }
}

impl Serialize for Quarter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quarter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn parse_and_display() {
        let q = Quarter::parse("2018Q4").unwrap();
        assert_eq!((q.year(), q.number()), (2018, 4));
        assert_eq!(q.to_string(), "2018Q4");
        for bad in [
            "2018Q5", "2018Q0", "2018q4", "18Q4", "2018-Q4", "2018Q", "Q4", "1899Q1", "2018Q44",
        ] {
            assert!(Quarter::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn bounds_and_neighbours() {
        let q = Quarter::parse("2018Q4").unwrap();
        assert_eq!(q.first_day(), d(2018, 10, 1));
        assert_eq!(q.last_day(), d(2018, 12, 31));
        assert_eq!(q.next().to_string(), "2019Q1");
        assert_eq!(Quarter::parse("2019Q1").unwrap().previous(), q);
        assert_eq!(Quarter::parse("2024Q1").unwrap().last_day(), d(2024, 3, 31));
        assert!(q.contains(d(2018, 11, 5)));
        assert!(!q.contains(d(2019, 1, 1)));
        assert_eq!(Quarter::of(d(2020, 6, 30)).to_string(), "2020Q2");
    }

    /// Quarters arrive in query strings and file names: whatever parses is the canonical text of
    /// its quarter, and every quarter's text parses back to it.
    mod props {
        use proptest::prelude::*;

        use super::*;
        use xianjie_proptest::config;

        proptest! {
            #![proptest_config(config(512))]

            #[test]
            fn a_quarter_parses_only_from_its_own_text(
                s in prop_oneof!["[0-9+ Qq-]{0,7}", "[12][0-9]{3}Q[0-5]", any::<String>()],
                year in 1900i32..=9999,
                n in 1u8..=4,
            ) {
                if let Ok(q) = Quarter::parse(&s) {
                    prop_assert_eq!(q.to_string(), s);
                }
                let q = Quarter::new(year, n).unwrap();
                prop_assert_eq!(Quarter::parse(&q.to_string()), Ok(q));
            }
        }
    }
}
