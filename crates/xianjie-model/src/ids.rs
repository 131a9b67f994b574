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
    /// A placeholder where a code belongs (a USCC of all zeros).
    #[error("{kind} {shown}: all zeros is a placeholder for a missing code, not a code")]
    Placeholder {
        /// Identifier kind.
        kind: &'static str,
        /// The value as shown in messages.
        shown: String,
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

/// GB 32100-2015 Table 1 (登记管理部门代码和机构类别代码), with the codes its amendments added
/// (A 中央军委改革和编制办公室, N 农业): each registration-authority code (position 1), the
/// institution-type codes (position 2) it may be followed by, and what the error says then.
const USCC_AUTHORITIES: &[(char, &str, &str)] = &[
    (
        '1',
        "1239",
        "an institution-type code of registration authority 1 机构编制 (GB 32100-2015 Table 1): 1 机关, 2 事业单位, 3 中央编办直接管理机构编制的群众团体, 9 其他",
    ),
    (
        '2',
        "19",
        "an institution-type code of registration authority 2 外交 (GB 32100-2015 Table 1): 1 外国常驻新闻机构, 9 其他",
    ),
    (
        '3',
        "123459",
        "an institution-type code of registration authority 3 司法行政 (GB 32100-2015 Table 1): 1 律师执业机构, 2 公证处, 3 基层法律服务所, 4 司法鉴定机构, 5 仲裁委员会, 9 其他",
    ),
    (
        '4',
        "19",
        "an institution-type code of registration authority 4 文化 (GB 32100-2015 Table 1): 1 外国在华文化中心, 9 其他",
    ),
    (
        '5',
        "1239",
        "an institution-type code of registration authority 5 民政 (GB 32100-2015 Table 1): 1 社会团体, 2 民办非企业单位, 3 基金会, 9 其他",
    ),
    (
        '6',
        "129",
        "an institution-type code of registration authority 6 旅游 (GB 32100-2015 Table 1): 1 外国旅游部门常驻代表机构, 2 港澳台地区旅游部门常驻内地(大陆)代表机构, 9 其他",
    ),
    (
        '7',
        "129",
        "an institution-type code of registration authority 7 宗教 (GB 32100-2015 Table 1): 1 宗教活动场所, 2 宗教院校, 9 其他",
    ),
    (
        '8',
        "19",
        "an institution-type code of registration authority 8 工会 (GB 32100-2015 Table 1): 1 基层工会, 9 其他",
    ),
    (
        '9',
        "123",
        "an institution-type code of registration authority 9 工商 (GB 32100-2015 Table 1): 1 企业, 2 个体工商户, 3 农民专业合作社",
    ),
    (
        'A',
        "19",
        "an institution-type code of registration authority A 中央军委改革和编制办公室 (GB 32100-2015 Table 1, amended): 1 军队事业单位, 9 其他",
    ),
    (
        'N',
        "1239",
        "an institution-type code of registration authority N 农业 (GB 32100-2015 Table 1, amended): 1 组级集体经济组织, 2 村级集体经济组织, 3 乡镇级集体经济组织, 9 其他",
    ),
    (
        'Y',
        "1",
        "an institution-type code of registration authority Y 其他 (GB 32100-2015 Table 1): 1",
    ),
];

/// What position 1 of a USCC allows.
const USCC_AUTHORITY_CODES: &str = "a registration-authority code of GB 32100-2015 Table 1: 1 机构编制, 2 外交, 3 司法行政, 4 文化, 5 民政, 6 旅游, 7 宗教, 8 工会, 9 工商, A 中央军委改革和编制办公室, N 农业, Y 其他";

/// The province-level codes of GB/T 2260 (first two digits of a division code): 11-15 华北,
/// 21-23 东北, 31-37 华东, 41-46 中南, 50-54 西南, 61-65 西北, 71 台湾, 81 香港, 82 澳门.
const PROVINCES: &[u8] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
];

/// What the first two digits of a division code allow.
const PROVINCE_CODES: &str = "a province-level code of GB/T 2260 as the first two digits: 11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82";

/// Checks that the first two of `digits` (ASCII digits) are a province-level code; otherwise the
/// position (1 or 2) and the character from which no province code can follow.
fn province_error(digits: &[char]) -> Option<(usize, char)> {
    let (a, b) = (digits.first()?.to_digit(10)?, digits.get(1)?.to_digit(10)?);
    if PROVINCES.contains(&((a * 10 + b) as u8)) {
        return None;
    }
    if PROVINCES.iter().any(|p| u32::from(p / 10) == a) {
        Some((2, digits[1]))
    } else {
        Some((1, digits[0]))
    }
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
    /// Parses and verifies a USCC: its characters, that it is not all zeros, that its
    /// registration-authority and institution-type codes (positions 1 and 2) are in GB 32100-2015
    /// Table 1, and its check character. Surrounding whitespace is not accepted: trim in the
    /// adapter.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        Self::parse_with(s, true)
    }

    /// `strict`: also the placeholder and Table 1 rules (everything but stored values).
    fn parse_with(s: &str, strict: bool) -> Result<Self, IdError> {
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
        if strict {
            if chars[..17].iter().all(|&c| c == '0') {
                return Err(IdError::Placeholder {
                    kind: KIND,
                    shown: shown(),
                });
            }
            let Some(&(_, types, allowed)) = USCC_AUTHORITIES.iter().find(|a| a.0 == chars[0])
            else {
                return Err(IdError::Character {
                    kind: KIND,
                    shown: shown(),
                    position: 1,
                    found: chars[0],
                    allowed: USCC_AUTHORITY_CODES,
                });
            };
            if !types.contains(chars[1]) {
                return Err(IdError::Character {
                    kind: KIND,
                    shown: shown(),
                    position: 2,
                    found: chars[1],
                    allowed,
                });
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

    /// Parses a code as stored or configured: characters and check character only. Values were
    /// checked on the way in; rules added since (all zeros, Table 1) must not make a stored
    /// record unreadable.
    fn parse_stored(s: &str) -> Result<Self, IdError> {
        Self::parse_with(s, false)
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
    /// Parses and verifies a resident ID: digits, a province-level region (GB/T 2260), the check
    /// character, a real birth date. A lowercase `x` check character is accepted and stored as
    /// `X`. `today` bounds the birth date (it must not be in the future).
    pub fn parse_at(s: &str, today: NaiveDate) -> Result<Self, IdError> {
        Self::parse_with(s, today, true)
    }

    /// `strict`: also the region rule (everything but stored values).
    fn parse_with(s: &str, today: NaiveDate, strict: bool) -> Result<Self, IdError> {
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
        if strict && let Some((position, found)) = province_error(&chars) {
            return Err(IdError::Character {
                kind: KIND,
                shown: shown(),
                position,
                found,
                allowed: PROVINCE_CODES,
            });
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

    /// Parses a division code: six digits, a province-level prefix of GB/T 2260.
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
        let digits: Vec<char> = s.chars().collect();
        if let Some((position, found)) = province_error(&digits) {
            return Err(IdError::Character {
                kind: KIND,
                shown: s.to_string(),
                position,
                found,
                allowed: PROVINCE_CODES,
            });
        }
        Ok(Self(s.to_string()))
    }

    /// The code as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `Display`, `Debug`, `FromStr` (by `$parse`) and serde (by `$stored`: what a stored value must
/// still pass) for a string identifier.
macro_rules! string_id_impls {
    ($t:ty, $parse:path, $stored:path) => {
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
                $stored(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
string_id_impls!(Uscc, Uscc::parse, Uscc::parse_stored);
string_id_impls!(DivisionCode, DivisionCode::parse, DivisionCode::parse);

impl Serialize for ResidentId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ResidentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // Stored IDs were checked on the way in; the birth-date bound and the region rule are not
        // re-applied here so a stored record never becomes unreadable.
        ResidentId::parse_with(&s, NaiveDate::MAX, false).map_err(serde::de::Error::custom)
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

    /// A code with `head` (its first two characters) and a valid check character.
    fn uscc_with(head: &str) -> String {
        let body = format!("{head}320102MA1XYW7Q8");
        let values: Vec<u32> = body
            .bytes()
            .map(|b| USCC_CHARS.iter().position(|&c| c == b).unwrap() as u32)
            .collect();
        format!("{body}{}", Uscc::check_char(&values))
    }

    #[test]
    fn uscc_of_all_zeros_is_a_placeholder() {
        let e = Uscc::parse("000000000000000000").unwrap_err();
        assert!(matches!(e, IdError::Placeholder { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "USCC 000000000000000000: all zeros is a placeholder for a missing code, not a code"
        );
        // Whatever its last character: the body is what makes it a placeholder.
        assert!(matches!(
            Uscc::parse("00000000000000000X").unwrap_err(),
            IdError::Placeholder { .. }
        ));
        assert!(Uscc::with_check("00000000000000000").is_none());
    }

    #[test]
    fn uscc_authority_and_type_codes_are_those_of_gb_32100_table_1() {
        // Every pair of the table is accepted…
        let mut pairs = 0;
        for (authority, types, _) in USCC_AUTHORITIES {
            for t in types.chars() {
                let code = uscc_with(&format!("{authority}{t}"));
                assert!(Uscc::parse(&code).is_ok(), "{code}");
                pairs += 1;
            }
        }
        assert_eq!(pairs, 4 + 2 + 6 + 2 + 4 + 3 + 3 + 2 + 3 + 2 + 4 + 1);
        // …and the standard's own example and the codes of real units.
        for code in [
            "91350200776049653A",
            "11320102526018159L",
            "11320102471049746T",
        ] {
            assert!(Uscc::parse(code).is_ok(), "{code}");
        }
        // An authority outside the table: position 1, and the list of authorities.
        for head in ["01", "B1", "X1", "M1", "P1"] {
            let code = uscc_with(head);
            let e = Uscc::parse(&code).unwrap_err();
            assert!(
                matches!(e, IdError::Character { position: 1, found, .. } if found == head.chars().next().unwrap()),
                "{e:?}"
            );
            assert!(
                e.to_string()
                    .contains("not allowed (a registration-authority code of GB 32100-2015 Table 1: 1 机构编制"),
                "{e}"
            );
        }
        // A type its authority does not have: position 2, and that authority's types.
        let e = Uscc::parse(&uscc_with("94")).unwrap_err();
        assert!(
            matches!(
                e,
                IdError::Character {
                    position: 2,
                    found: '4',
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string().contains(
                "character '4' at position 2 is not allowed (an institution-type code of registration authority 9 工商 (GB 32100-2015 Table 1): 1 企业, 2 个体工商户, 3 农民专业合作社)"
            ),
            "{e}"
        );
        for head in [
            "99", "10", "14", "22", "36", "Y2", "Y9", "A2", "N4", "5A", "80",
        ] {
            let e = Uscc::parse(&uscc_with(head)).unwrap_err();
            assert!(
                matches!(e, IdError::Character { position: 2, .. }),
                "{head}: {e:?}"
            );
        }
        // The check character is still checked, after the table.
        let mut bad = uscc_with("93");
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert!(matches!(
            Uscc::parse(&bad).unwrap_err(),
            IdError::Check { .. }
        ));
    }

    #[test]
    fn stored_codes_outside_the_new_rules_still_read() {
        // Checked on the way in under the older rules: a stored record must stay readable.
        let old = uscc_with("94");
        assert!(Uscc::parse(&old).is_err());
        let u: Uscc = serde_json::from_str(&format!("\"{old}\"")).unwrap();
        assert_eq!(u.as_str(), old);
        let id = ResidentId::with_check_unchecked("99010519491231002");
        assert!(ResidentId::parse(&id).is_err());
        let r: ResidentId = serde_json::from_str(&format!("\"{id}\"")).unwrap();
        assert_eq!(r.as_str(), id);
        // The check character stays required, stored or not.
        assert!(serde_json::from_str::<Uscc>("\"91350200776049653B\"").is_err());
    }

    #[test]
    fn resident_id_region_is_a_province_level_code() {
        for p in PROVINCES {
            let id = ResidentId::with_check_unchecked(&format!("{p}010519491231002"));
            assert!(ResidentId::parse(&id).is_ok(), "{id}");
        }
        // No province code starts with 0 or 9: the first digit is wrong.
        for (region, found) in [("00", '0'), ("90", '9'), ("99", '9'), ("01", '0')] {
            let id = ResidentId::with_check_unchecked(&format!("{region}010519491231002"));
            let e = ResidentId::parse(&id).unwrap_err();
            assert!(
                matches!(e, IdError::Character { position: 1, found: f, .. } if f == found),
                "{region}: {e:?}"
            );
        }
        // The first digit starts a province code, the second makes it none.
        for region in [
            "10", "16", "20", "24", "30", "38", "40", "47", "55", "60", "66", "70", "72", "80",
            "83",
        ] {
            let id = ResidentId::with_check_unchecked(&format!("{region}010519491231002"));
            let e = ResidentId::parse(&id).unwrap_err();
            assert!(
                matches!(e, IdError::Character { position: 2, .. }),
                "{region}: {e:?}"
            );
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("{region}0105********"))
                    && msg.contains("11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82")
                    && !msg.contains("19491231"),
                "{msg}"
            );
        }
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
        // 16 is inside 11-82 but no province's code.
        assert!(matches!(
            DivisionCode::parse("160100").unwrap_err(),
            IdError::Character {
                position: 2,
                found: '6',
                ..
            }
        ));
        assert!(DivisionCode::parse("820000").is_ok());
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
                // Heads from Table 1 half the time, any two characters otherwise.
                body in prop_oneof![
                    "[1-9ANY][1-9][0-9]{6}[0-9A-Y]{9}",
                    "[0-9A-Y]{2}[0-9]{6}[0-9A-Y]{9}",
                ],
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
                let chars: Vec<char> = body.chars().collect();
                let well_formed = body.bytes().all(|b| USCC_CHARS.contains(&b))
                    && body.bytes().any(|b| b != b'0')
                    && USCC_AUTHORITIES
                        .iter()
                        .any(|(a, types, _)| *a == chars[0] && types.contains(chars[1]));
                prop_assert_eq!(valid.len(), usize::from(well_formed), "{}: {:?}", body, valid);
            }
        }
    }
}
