//! Money as an integer number of fen (分), with exact conversion from decimal strings in yuan (元)
//! and ten-thousand yuan (万元). Never goes through floating point.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of money in fen. Non-negative: enforcement amounts (fines, confiscations) are never negative.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(u64);

/// Why a decimal amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a plain decimal number.
    #[error(
        "amount '{0}' is not a decimal number (digits with an optional '.' and fraction; no signs, commas or units)"
    )]
    NotDecimal(String),
    /// More fractional digits than the unit allows.
    #[error("amount '{value}' has {found} decimal places; {unit} allows at most {max}")]
    TooPrecise {
        /// The input.
        value: String,
        /// Decimal places found.
        found: usize,
        /// The unit's maximum.
        max: usize,
        /// Unit name.
        unit: &'static str,
    },
    /// Larger than can be represented.
    #[error("amount '{0}' is too large")]
    Overflow(String),
}

/// The unit a source states amounts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MoneyUnit {
    /// 分: integer only.
    Fen,
    /// 元: up to 2 decimal places.
    Yuan,
    /// 万元: up to 6 decimal places (1 万元 = 1,000,000 fen).
    Wanyuan,
}

impl MoneyUnit {
    fn scale(self) -> (usize, &'static str) {
        match self {
            MoneyUnit::Fen => (0, "fen (分)"),
            MoneyUnit::Yuan => (2, "yuan (元)"),
            MoneyUnit::Wanyuan => (6, "wanyuan (万元)"),
        }
    }
}

impl Fen {
    /// An amount from a number of fen.
    pub const fn new(fen: u64) -> Self {
        Self(fen)
    }

    /// The number of fen.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Parses a decimal string in the given unit exactly. Trailing zeros beyond the unit's precision
    /// are accepted ("1.500" yuan); non-zero digits beyond it are refused.
    pub fn parse(s: &str, unit: MoneyUnit) -> Result<Self, MoneyError> {
        let (max, unit_name) = unit.scale();
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits(int) || !digits(frac) || (s.contains('.') && frac.is_empty()) {
            return Err(MoneyError::NotDecimal(s.to_string()));
        }
        let frac_sig = frac.trim_end_matches('0');
        if frac_sig.len() > max {
            return Err(MoneyError::TooPrecise {
                value: s.to_string(),
                found: frac.len(),
                max,
                unit: unit_name,
            });
        }
        let overflow = || MoneyError::Overflow(s.to_string());
        let mut fen: u64 = 0;
        for b in int
            .bytes()
            .chain(frac_sig.bytes())
            .chain(std::iter::repeat_n(b'0', max - frac_sig.len()))
        {
            fen = fen
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .ok_or_else(overflow)?;
        }
        Ok(Self(fen))
    }

    /// The amount in yuan with two decimals, e.g. `1234.50`.
    pub fn yuan_string(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }

    /// The amount in 万元 with six decimals, e.g. `0.200000` (the provincial 双公示 form).
    pub fn wanyuan_string(self) -> String {
        format!("{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }

    /// Checked sum.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }
}

impl fmt::Debug for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fen({})", self.0)
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}元", self.yuan_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanyuan_is_exact() {
        assert_eq!(
            Fen::parse("0.2", MoneyUnit::Wanyuan).unwrap(),
            Fen::new(200_000)
        );
        assert_eq!(
            Fen::parse("0.000001", MoneyUnit::Wanyuan).unwrap(),
            Fen::new(1)
        );
        assert_eq!(
            Fen::parse("12.345678", MoneyUnit::Wanyuan).unwrap(),
            Fen::new(12_345_678)
        );
        assert_eq!(
            Fen::parse("3", MoneyUnit::Wanyuan).unwrap(),
            Fen::new(3_000_000)
        );
        // 0.1 + 0.2 style float traps do not exist here.
        assert_eq!(
            Fen::parse("0.3", MoneyUnit::Wanyuan).unwrap().get(),
            300_000
        );
    }

    #[test]
    fn more_than_six_places_of_wanyuan_refused() {
        let e = Fen::parse("0.0000001", MoneyUnit::Wanyuan).unwrap_err();
        assert_eq!(
            e,
            MoneyError::TooPrecise {
                value: "0.0000001".into(),
                found: 7,
                max: 6,
                unit: "wanyuan (万元)"
            }
        );
        assert!(e.to_string().contains("at most 6"));
        // Trailing zeros are not extra precision.
        assert_eq!(
            Fen::parse("0.20000000", MoneyUnit::Wanyuan).unwrap(),
            Fen::new(200_000)
        );
    }

    #[test]
    fn yuan_and_fen() {
        assert_eq!(
            Fen::parse("1234.5", MoneyUnit::Yuan).unwrap(),
            Fen::new(123_450)
        );
        assert_eq!(Fen::parse("0.01", MoneyUnit::Yuan).unwrap(), Fen::new(1));
        assert!(matches!(
            Fen::parse("0.001", MoneyUnit::Yuan),
            Err(MoneyError::TooPrecise { max: 2, .. })
        ));
        assert_eq!(Fen::parse("42", MoneyUnit::Fen).unwrap(), Fen::new(42));
        assert!(Fen::parse("4.2", MoneyUnit::Fen).is_err());
    }

    #[test]
    fn malformed_amounts_refused() {
        for bad in [
            "", ".5", "5.", "-1", "+1", "1,000", "1e3", "一百", " 1", "1.2.3",
        ] {
            assert!(
                matches!(
                    Fen::parse(bad, MoneyUnit::Yuan),
                    Err(MoneyError::NotDecimal(_))
                ),
                "{bad:?} accepted"
            );
        }
        assert!(matches!(
            Fen::parse("99999999999999999999", MoneyUnit::Yuan),
            Err(MoneyError::Overflow(_))
        ));
    }

    #[test]
    fn formatting() {
        assert_eq!(Fen::new(200_000).wanyuan_string(), "0.200000");
        assert_eq!(Fen::new(123_405).yuan_string(), "1234.05");
        assert_eq!(Fen::new(5).to_string(), "0.05元");
    }
}
