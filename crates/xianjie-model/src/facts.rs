//! The facts the supervision rules read (两法衔接): amounts a prosecution threshold speaks of,
//! the harm done, and the moments of a suspected-crime transfer that the 310号令 deadlines count
//! from. All optional: a source that does not hold a fact leaves it out, and a rule that needs it
//! does not match.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::Fen;

/// A moment of the transfer timeline, as precise as the source gives it: a day, or a day and a
/// time (China Standard Time, the units' clock). JSON: `"2025-03-04"` or `"2025-03-04T15:20:00"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Moment {
    /// Only the day is known.
    Day(NaiveDate),
    /// The day and the time.
    At(NaiveDateTime),
}

impl Moment {
    /// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(Moment::Day(d));
        }
        for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
                return Ok(Moment::At(t));
            }
        }
        Err(format!(
            "'{s}' is not a day YYYY-MM-DD or a time YYYY-MM-DDTHH:MM[:SS]"
        ))
    }

    /// The day.
    pub fn date(self) -> NaiveDate {
        match self {
            Moment::Day(d) => d,
            Moment::At(t) => t.date(),
        }
    }
}

impl std::fmt::Display for Moment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Moment::Day(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Moment::At(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%S")),
        }
    }
}

impl Serialize for Moment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Moment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Moment::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A share in hundredths of a percent (basis points), 0–100 %: the evaded tax's share of the
/// tax due. JSON and adapters write it as a percent with up to two decimals, `"12.5"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Share(u32);

impl Share {
    /// From basis points (10000 = 100 %).
    pub fn from_basis_points(bp: u32) -> Option<Self> {
        (bp <= 10_000).then_some(Share(bp))
    }

    /// Basis points.
    pub fn basis_points(self) -> u32 {
        self.0
    }

    /// Parses a percent, `0` to `100` with up to two decimals (`12.5`, `10`, `100.00`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let why = || format!("'{s}' is not a percent 0-100 with at most two decimals");
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || int.len() > 3 || !digits(int) || !digits(frac) || frac.len() > 2 {
            return Err(why());
        }
        if s.contains('.') && frac.is_empty() {
            return Err(why());
        }
        let int: u32 = int.parse().map_err(|_| why())?;
        let frac: u32 = format!("{frac:0<2}").parse().map_err(|_| why())?;
        Share::from_basis_points(int * 100 + frac).ok_or_else(why)
    }
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Share {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Share::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The amounts prosecution thresholds are written in (立案追诉标准), each in fen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amounts {
    /// 涉案金额.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub involved_fen: Option<Fen>,
    /// 货值金额 (the value of the goods, as product-quality law counts it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_value_fen: Option<Fen>,
    /// 销售金额.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_fen: Option<Fen>,
    /// 违法所得.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub illegal_gains_fen: Option<Fen>,
    /// 逃避缴纳税款数额.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaded_tax_fen: Option<Fen>,
    /// The evaded tax's share of the tax due (占各税种应纳税总额的比例).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaded_tax_share: Option<Share>,
}

impl Amounts {
    /// Whether no amount is known (then the block is left out of the JSON, so cases stored
    /// before it existed keep their content digests).
    pub fn is_empty(&self) -> bool {
        *self == Amounts::default()
    }
}

/// The harm done (deaths, serious injuries, direct economic loss).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Harm {
    /// 死亡人数.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deaths: Option<u32>,
    /// 重伤人数.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serious_injuries: Option<u32>,
    /// 直接经济损失, in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_loss_fen: Option<Fen>,
}

impl Harm {
    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        *self == Harm::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_keep_their_precision() {
        let d = Moment::parse("2025-03-04").unwrap();
        assert_eq!(d, Moment::Day(NaiveDate::from_ymd_opt(2025, 3, 4).unwrap()));
        let t = Moment::parse("2025-03-04T15:20").unwrap();
        assert_eq!(t.to_string(), "2025-03-04T15:20:00");
        assert_eq!(t.date(), d.date());
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2025-03-04\"");
        let back: Moment = serde_json::from_str("\"2025-03-04T15:20:00\"").unwrap();
        assert_eq!(back, t);
        for bad in ["2025-02-30", "2025-03-04 15:20", "", "2025-03-04T25:00"] {
            assert!(Moment::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shares_are_percents_to_two_decimals() {
        assert_eq!(Share::parse("12.5").unwrap().basis_points(), 1250);
        assert_eq!(Share::parse("10").unwrap().basis_points(), 1000);
        assert_eq!(Share::parse("100.00").unwrap().basis_points(), 10_000);
        assert_eq!(Share::parse("0.01").unwrap().to_string(), "0.01");
        for bad in ["100.01", "12.345", "-1", "1e2", "", ".5", "5.", "1000"] {
            assert!(Share::parse(bad).is_err(), "{bad}");
        }
        let s: Share = serde_json::from_str("\"9.99\"").unwrap();
        assert!(s < Share::parse("10").unwrap());
    }
}
