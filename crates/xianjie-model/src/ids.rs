//! Identifiers that arrive as strings and are parsed into types with their check characters verified:
//! the unified social credit code (GB 32100-2015), the resident identity number (GB 11643-1999) and
//! the administrative division code (GB/T 2260).

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier was refused. The message names the value (masked for personal IDs),
/// the position and what was expected, so an operator can fix the source row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Wrong number of characters.
    #[error("{kind} {shown}: has {len} characters, expected {expected}")]
    Length {
        /// Identifier kind, e.g. "USCC".
        kind: &'static str,
        /// The value as shown in messages (masked for personal IDs).
        shown: String,
        /// Characters found.
        len: usize,
        /// Characters required.
        expected: usize,
    },
    /// A character that the standard does not allow at that position.
    #[error(
        "{kind} {shown}: character '{found}' at position {position} is not allowed ({allowed})"
    )]
    Character {
        /// Identifier kind.
        kind: &'static str,
        /// The value as shown in messages.
        shown: String,
        /// 1-based position.
        position: usize,
        /// The offending character.
        found: char,
        /// What the position allows.
        allowed: &'static str,
    },
    /// The check character does not match the computed one.
    #[error("{kind} {shown}: check character is {found}, expected {expected}")]
    Check {
        /// Identifier kind.
        kind: &'static str,
        /// The value as shown in messages.
        shown: String,
        /// Check character present.
        found: char,
        /// Check character computed.
        expected: char,
    },
    /// The birth date embedded in a resident ID is not a real past date.
    #[error("{kind} {shown}: birth date {digits} (positions 7-14) {why}")]
    BirthDate {
        /// Identifier kind.
        kind: &'static str,
        /// The value as shown in messages.
        shown: String,
        /// The eight digits found.
        digits: String,
        /// Why they are not a birth date.
        why: &'static str,
    },
}

/// GB 32100-2015 character set: digits and capitals without I, O, S, V, Z.
const USCC_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// A unified social credit code (统一社会信用代码), 18 characters with a verified check character.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc(String);

impl Uscc {
    /// Parses and verifies a USCC. Surrounding whitespace is not accepted: trim in the adapter.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        const KIND: &str = "USCC";
        let shown = || s.to_string();
        let chars: Vec<char> = s.chars().collect();
        if chars.len() != 18 {
            return Err(IdError::Length {
                kind: KIND,
                shown: shown(),
                len: chars.len(),
                expected: 18,
            });
        }
        let mut values = [0u32; 18];
        for (i, &c) in chars.iter().enumerate() {
            let pos = USCC_CHARS.iter().position(|&b| b as char == c);
            let digit_only = (2..8).contains(&i);
            match pos {
                Some(v) if !digit_only || v < 10 => values[i] = v as u32,
                _ => {
                    return Err(IdError::Character {
                        kind: KIND,
                        shown: shown(),
                        position: i + 1,
                        found: c,
                        allowed: if digit_only {
                            "digits 0-9 (division code)"
                        } else {
                            "0-9 and A-Y without I, O, S, V, Z"
                        },
                    });
                }
            }
        }
        let expected = Self::check_char(&values[..17]);
        if chars[17] != expected {
            return Err(IdError::Check {
                kind: KIND,
                shown: shown(),
                found: chars[17],
                expected,
            });
        }
        Ok(Self(s.to_string()))
    }

    /// Computes the check character for the first 17 character values (indexes into the charset).
    fn check_char(values: &[u32]) -> char {
        let sum: u32 = values.iter().zip(USCC_WEIGHTS).map(|(v, w)| v * w).sum();
        let c = (31 - sum % 31) % 31;
        USCC_CHARS[c as usize] as char
    }

    /// Completes a 17-character body with its check character; `None` if the body has characters
    /// outside the charset. Used by the sample generator and tests.
    pub fn with_check(body17: &str) -> Option<Self> {
        let mut values = Vec::with_capacity(17);
        for c in body17.chars() {
            values.push(USCC_CHARS.iter().position(|&b| b as char == c)? as u32);
        }
        if values.len() != 17 {
            return None;
        }
        let mut s = body17.to_string();
        s.push(Self::check_char(&values));
        Self::parse(&s).ok()
    }

    /// The code as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The division code embedded at positions 3-8.
    pub fn division(&self) -> DivisionCode {
        DivisionCode(self.0[2..8].to_string())
    }
}

/// A resident identity number (公民身份号码), 18 characters, with a verified check character and a
/// real birth date. `Debug` and `Display` mask it (first 6 and last 4 kept), so it never reaches a
/// log whole; `as_str` gives the full number to code that must store it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentId(String);

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// Masks a personal identifier: keeps the first 6 and last 4 characters, stars in between.
pub fn mask_id(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..6].iter().collect();
    out.push_str(&"*".repeat(chars.len() - 10));
    out.extend(&chars[chars.len() - 4..]);
    out
}

impl ResidentId {
    /// Parses and verifies a resident ID. A lowercase `x` check character is accepted and stored as `X`.
    /// `today` bounds the birth date (it must not be in the future).
    pub fn parse_at(s: &str, today: NaiveDate) -> Result<Self, IdError> {
        const KIND: &str = "resident ID";
        let shown = || mask_id(s);
        let chars: Vec<char> = s.chars().collect();
        if chars.len() != 18 {
            return Err(IdError::Length {
                kind: KIND,
                shown: shown(),
                len: chars.len(),
                expected: 18,
            });
        }
        let mut sum = 0;
        for (i, &c) in chars[..17].iter().enumerate() {
            let d = c.to_digit(10).ok_or_else(|| IdError::Character {
                kind: KIND,
                shown: shown(),
                position: i + 1,
                found: c,
                allowed: "digits 0-9",
            })?;
            sum += d * ID_WEIGHTS[i];
        }
        let found = chars[17].to_ascii_uppercase();
        if !(found.is_ascii_digit() || found == 'X') {
            return Err(IdError::Character {
                kind: KIND,
                shown: shown(),
                position: 18,
                found: chars[17],
                allowed: "digits 0-9 or X",
            });
        }
        let expected = ID_CHECK[(sum % 11) as usize] as char;
        if found != expected {
            return Err(IdError::Check {
                kind: KIND,
                shown: shown(),
                found,
                expected,
            });
        }
        let digits: String = chars[6..14].iter().collect();
        let birth =
            NaiveDate::parse_from_str(&digits, "%Y%m%d").map_err(|_| IdError::BirthDate {
                kind: KIND,
                shown: shown(),
                digits: digits.clone(),
                why: "is not a calendar date",
            })?;
        if birth > today || birth.year() < 1880 {
            return Err(IdError::BirthDate {
                kind: KIND,
                shown: shown(),
                digits,
                why: "is outside 1880-01-01 .. today",
            });
        }
        let mut norm: String = chars[..17].iter().collect();
        norm.push(found);
        Ok(Self(norm))
    }

    /// Parses against today's date.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        Self::parse_at(s, chrono::Local::now().date_naive())
    }

    /// Completes a 17-digit body with its check character (sample generator and tests).
    pub fn with_check(body17: &str) -> Option<Self> {
        if body17.len() != 17 || !body17.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let sum: u32 = body17
            .bytes()
            .zip(ID_WEIGHTS)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        let mut s = body17.to_string();
        s.push(ID_CHECK[(sum % 11) as usize] as char);
        Self::parse(&s).ok()
    }

    /// The full number, for storage and for callers that must pass it on.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The masked form for public outputs: first 6 and last 4 characters kept.
    pub fn masked(&self) -> String {
        mask_id(&self.0)
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

impl fmt::Display for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// An administrative division code (行政区划代码), six digits with a known province prefix.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DivisionCode(String);

impl DivisionCode {
    /// Xuanwu District, Nanjing.
    pub const XUANWU: &'static str = "320102";
    /// Nanjing.
    pub const NANJING: &'static str = "320100";
    /// Jiangsu.
    pub const JIANGSU: &'static str = "320000";

    /// Parses a division code: six digits, province prefix 11-82.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        const KIND: &str = "division code";
        if s.chars().count() != 6 {
            return Err(IdError::Length {
                kind: KIND,
                shown: s.to_string(),
                len: s.chars().count(),
                expected: 6,
            });
        }
        if let Some((i, c)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(IdError::Character {
                kind: KIND,
                shown: s.to_string(),
                position: i + 1,
                found: c,
                allowed: "digits 0-9",
            });
        }
        let province: u32 = s[..2].parse().unwrap_or(0);
        if !(11..=82).contains(&province) {
            return Err(IdError::Character {
                kind: KIND,
                shown: s.to_string(),
                position: 1,
                found: s.chars().next().unwrap_or('?'),
                allowed: "a province prefix 11-82",
            });
        }
        Ok(Self(s.to_string()))
    }

    /// The code as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_id_impls {
    ($t:ty, $parse:path) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.0)
            }
        }
        impl std::str::FromStr for $t {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                $parse(s)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
string_id_impls!(Uscc, Uscc::parse);
string_id_impls!(DivisionCode, DivisionCode::parse);

impl Serialize for ResidentId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ResidentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // Stored IDs were checked on the way in; the birth-date bound is not re-applied here so a
        // stored record never becomes unreadable.
        ResidentId::parse_at(&s, NaiveDate::MAX).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uscc_standard_example_is_valid() {
        let u = Uscc::parse("91350200776049653A").unwrap();
        assert_eq!(u.as_str(), "91350200776049653A");
        assert_eq!(u.division().as_str(), "350200");
    }

    #[test]
    fn uscc_wrong_check_character_names_expected() {
        let e = Uscc::parse("91350200776049653B").unwrap_err();
        assert_eq!(
            e.to_string(),
            "USCC 91350200776049653B: check character is B, expected A"
        );
    }

    #[test]
    fn uscc_wrong_length() {
        let e = Uscc::parse("91350200776049653").unwrap_err();
        assert!(
            matches!(
                e,
                IdError::Length {
                    len: 17,
                    expected: 18,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn uscc_forbidden_letters_are_refused_with_position() {
        for bad in ['I', 'O', 'S', 'V', 'Z'] {
            let s = format!("91350200776049653{bad}");
            match Uscc::parse(&s).unwrap_err() {
                IdError::Character {
                    position, found, ..
                } => {
                    assert_eq!((position, found), (18, bad));
                }
                e => panic!("unexpected {e}"),
            }
        }
        // A letter inside the division code (positions 3-8) is refused too.
        let e = Uscc::parse("913A0200776049653A").unwrap_err();
        assert!(matches!(e, IdError::Character { position: 4, .. }), "{e}");
    }

    #[test]
    fn uscc_with_check_round_trips() {
        let u = Uscc::with_check("91350200776049653").unwrap();
        assert_eq!(u.as_str(), "91350200776049653A");
        assert!(Uscc::with_check("9135020077604965O").is_none());
    }

    #[test]
    fn resident_id_standard_example_is_valid() {
        let id = ResidentId::parse("11010519491231002X").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.masked(), "110105********002X");
        assert_eq!(format!("{id:?}"), "ResidentId(110105********002X)");
        assert_eq!(
            ResidentId::parse("11010519491231002x").unwrap().as_str(),
            "11010519491231002X"
        );
    }

    #[test]
    fn resident_id_wrong_check_is_masked_in_the_error() {
        let e = ResidentId::parse("110105194912310021").unwrap_err();
        assert_eq!(
            e.to_string(),
            "resident ID 110105********0021: check character is 1, expected X"
        );
    }

    #[test]
    fn resident_id_bad_length_and_characters() {
        assert!(matches!(
            ResidentId::parse("1101051949123100").unwrap_err(),
            IdError::Length { len: 16, .. }
        ));
        assert!(matches!(
            ResidentId::parse("1101051949A231002X").unwrap_err(),
            IdError::Character {
                position: 11,
                found: 'A',
                ..
            }
        ));
        assert!(matches!(
            ResidentId::parse("11010519491231002Y").unwrap_err(),
            IdError::Character { position: 18, .. }
        ));
    }

    #[test]
    fn resident_id_impossible_birth_dates() {
        // 1949-02-30 does not exist; the check character is made valid so only the date is wrong.
        let id = ResidentId::with_check_unchecked("11010519490230002");
        let e = ResidentId::parse(&id).unwrap_err();
        assert!(
            matches!(
                e,
                IdError::BirthDate {
                    why: "is not a calendar date",
                    ..
                }
            ),
            "{e}"
        );
        let future = ResidentId::with_check_unchecked("11010530000101002");
        let e = ResidentId::parse(&future).unwrap_err();
        assert!(matches!(e, IdError::BirthDate { .. }), "{e}");
        assert!(e.to_string().contains("30000101"));
    }

    impl ResidentId {
        /// Appends the check character without validating the date (for building bad test input).
        fn with_check_unchecked(body17: &str) -> String {
            let sum: u32 = body17
                .bytes()
                .zip(ID_WEIGHTS)
                .map(|(b, w)| u32::from(b - b'0') * w)
                .sum();
            format!("{body17}{}", ID_CHECK[(sum % 11) as usize] as char)
        }
    }

    #[test]
    fn division_codes() {
        assert_eq!(
            DivisionCode::parse("320102").unwrap().as_str(),
            DivisionCode::XUANWU
        );
        assert!(DivisionCode::parse("32010").is_err());
        assert!(DivisionCode::parse("99010a").is_err());
        assert!(matches!(
            DivisionCode::parse("990100").unwrap_err(),
            IdError::Character { position: 1, .. }
        ));
    }

    #[test]
    fn serde_parses_and_refuses() {
        let u: Uscc = serde_json::from_str("\"91350200776049653A\"").unwrap();
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"91350200776049653A\"");
        let e = serde_json::from_str::<Uscc>("\"91350200776049653B\"").unwrap_err();
        assert!(e.to_string().contains("expected A"));
    }

    /// Codes arrive from every source file and query: a USCC parses only as itself, and of the
    /// possible last characters of a well-formed body exactly one is its check character.
    mod props {
        use proptest::prelude::*;

        use super::*;
        use xianjie_proptest::config;

        proptest! {
            #![proptest_config(config(512))]

            #[test]
            fn a_uscc_has_exactly_one_check_character(
                body in "[0-9A-Y]{2}[0-9]{6}[0-9A-Y]{9}",
                s in prop_oneof!["[0-9A-Z]{18}", any::<String>()],
            ) {
                if let Ok(u) = Uscc::parse(&s) {
                    prop_assert_eq!(u.as_str(), s.as_str());
                }
                let valid: Vec<char> = USCC_CHARS
                    .iter()
                    .map(|&c| c as char)
                    .filter(|c| Uscc::parse(&format!("{body}{c}")).is_ok())
                    .collect();
                let well_formed = body.bytes().all(|b| USCC_CHARS.contains(&b));
                prop_assert_eq!(valid.len(), usize::from(well_formed), "{}: {:?}", body, valid);
            }
        }
    }
}
