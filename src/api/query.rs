//! Query parameters of the case list: filters parsed into typed values (a bad one is a 422 naming
//! the parameter), matching, and the opaque, tamper-evident pagination cursor.

use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};

use super::problem::Problem;
use crate::model::{Action, Case, CaseStatus, TransferStatus};

/// Largest page.
pub const MAX_LIMIT: usize = 1000;
/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 100;

/// The filters of `GET /v1/ports/{unit}/cases`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `action`.
    pub action: Option<Action>,
    /// `status`.
    pub status: Option<CaseStatus>,
    /// `transfer_status`.
    pub transfer_status: Option<TransferStatus>,
    /// `suspected_crime`.
    pub suspected_crime: Option<bool>,
    /// `major`.
    pub major: Option<bool>,
    /// `decided_from` (inclusive).
    pub decided_from: Option<NaiveDate>,
    /// `decided_to` (inclusive).
    pub decided_to: Option<NaiveDate>,
    /// `updated_from` (inclusive).
    pub updated_from: Option<DateTime<Utc>>,
    /// `updated_to` (inclusive).
    pub updated_to: Option<DateTime<Utc>>,
    /// `q`: text in the title, the cause or the party's name.
    pub text: Option<String>,
}

/// A parsed list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Filters.
    pub filter: Filter,
    /// Page size.
    pub limit: usize,
    /// The cursor as given (verified by the caller against the filter).
    pub cursor: Option<String>,
}

fn bad(field: &str, reason: impl Into<String>) -> Problem {
    Problem::BadParameter {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Splits a query string into decoded pairs (`+` is a space, `%XX` a byte).
pub fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// [`pairs`], refusing a parameter given twice: which of two values counts must never be
/// left to a guess (`?unit=A&unit=B`).
pub fn unique_pairs(query: &str) -> Result<Vec<(String, String)>, Problem> {
    let all = pairs(query);
    for (i, (k, _)) in all.iter().enumerate() {
        if all[..i].iter().any(|(x, _)| x == k) {
            return Err(bad(k, "is given more than once; give it once"));
        }
    }
    Ok(all)
}

/// Percent-encodes every byte but RFC 3986's unreserved characters (A–Z, a–z, 0–9, `-._~`), so the
/// result is safe in a path segment, a query value and a header.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (a path segment; in a query `+` is a space and is replaced first).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                // Two hex digits exactly (RFC 3986 §2.1): `from_str_radix` alone would also
                // take a sign, decoding `%+1` to U+0001.
                let hex = b
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `true`/`false` parameter.
pub fn boolean(field: &str, v: &str) -> Result<bool, Problem> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(field, format!("{v:?} is not true or false"))),
    }
}

fn date(field: &str, v: &str) -> Result<NaiveDate, Problem> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| bad(field, format!("{v:?} is not a date YYYY-MM-DD")))
}

/// A time parameter: RFC 3339, or a date (its first or, with `end_of_day`, its last moment, UTC).
pub fn instant(field: &str, v: &str, end_of_day: bool) -> Result<DateTime<Utc>, Problem> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
        bad(
            field,
            format!("{v:?} is neither an RFC 3339 time nor a date YYYY-MM-DD"),
        )
    })?;
    let t = if end_of_day {
        d.and_hms_micro_opt(23, 59, 59, 999_999)
    } else {
        d.and_hms_opt(0, 0, 0)
    };
    t.map(|t| t.and_utc())
        .ok_or_else(|| bad(field, "date out of range"))
}

impl ListQuery {
    /// Parses the query string; unknown parameters are refused (a typo must not silently widen
    /// the result).
    pub fn parse(query: &str) -> Result<ListQuery, Problem> {
        let mut f = Filter::default();
        let mut limit = DEFAULT_LIMIT;
        let mut cursor = None;
        for (k, v) in unique_pairs(query)? {
            match k.as_str() {
                "action" => {
                    f.action = Some(Action::parse(&v).map_err(|e| bad("action", e.to_string()))?)
                }
                "status" => {
                    f.status =
                        Some(CaseStatus::parse(&v).map_err(|e| bad("status", e.to_string()))?)
                }
                "transfer_status" => {
                    f.transfer_status = Some(
                        TransferStatus::parse(&v)
                            .map_err(|e| bad("transfer_status", e.to_string()))?,
                    )
                }
                "suspected_crime" => f.suspected_crime = Some(boolean("suspected_crime", &v)?),
                "major" => f.major = Some(boolean("major", &v)?),
                "decided_from" => f.decided_from = Some(date("decided_from", &v)?),
                "decided_to" => f.decided_to = Some(date("decided_to", &v)?),
                "updated_from" => f.updated_from = Some(instant("updated_from", &v, false)?),
                "updated_to" => f.updated_to = Some(instant("updated_to", &v, true)?),
                "q" => {
                    if v.chars().count() > 100 {
                        return Err(bad("q", "at most 100 characters"));
                    }
                    f.text = Some(v).filter(|s| !s.is_empty());
                }
                "limit" => {
                    limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| bad("limit", format!("{v:?} is not in 1..={MAX_LIMIT}")))?
                }
                "cursor" => cursor = Some(v),
                other => {
                    return Err(bad(
                        other,
                        "unknown parameter (known: action, status, transfer_status, suspected_crime, major, decided_from, decided_to, updated_from, updated_to, q, limit, cursor)",
                    ));
                }
            }
        }
        if let (Some(a), Some(b)) = (f.decided_from, f.decided_to)
            && a > b
        {
            return Err(bad("decided_from", "is after decided_to"));
        }
        Ok(ListQuery {
            filter: f,
            limit,
            cursor,
        })
    }
}

impl Filter {
    /// Whether `c` passes.
    pub fn matches(&self, c: &Case) -> bool {
        self.action.is_none_or(|a| c.action == a)
            && self.status.is_none_or(|s| c.status == s)
            && self.transfer_status.is_none_or(|s| c.transfer.status == s)
            && self
                .suspected_crime
                .is_none_or(|b| c.transfer.suspected_crime == b)
            && self.major.is_none_or(|b| c.major == b)
            && self
                .decided_from
                .is_none_or(|d| c.decided_on.is_some_and(|x| x >= d))
            && self
                .decided_to
                .is_none_or(|d| c.decided_on.is_some_and(|x| x <= d))
            && self.updated_from.is_none_or(|t| c.updated_at >= t)
            && self.updated_to.is_none_or(|t| c.updated_at <= t)
            && self.text.as_deref().is_none_or(|q| {
                c.title.contains(q)
                    || c.cause.as_deref().is_some_and(|x| x.contains(q))
                    || c.party.name.contains(q)
            })
    }

    /// Whether only the action is filtered on (or nothing), which the store can answer from a
    /// case's header without decoding it.
    pub fn header_only(&self) -> bool {
        Filter {
            action: None,
            ..self.clone()
        } == Filter::default()
    }

    /// A stable text form (for the audit entry and for binding cursors to their filter).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut add = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        };
        add("action", self.action.map(|a| a.code().to_string()));
        add("status", self.status.map(|a| a.code().to_string()));
        add(
            "transfer_status",
            self.transfer_status.map(|a| a.code().to_string()),
        );
        add(
            "suspected_crime",
            self.suspected_crime.map(|b| b.to_string()),
        );
        add("major", self.major.map(|b| b.to_string()));
        add("decided_from", self.decided_from.map(|d| d.to_string()));
        add("decided_to", self.decided_to.map(|d| d.to_string()));
        add("updated_from", self.updated_from.map(|d| d.to_rfc3339()));
        add("updated_to", self.updated_to.map(|d| d.to_rfc3339()));
        add("q", self.text.clone());
        parts.join("&")
    }
}

/// A cursor: the last case id returned, bound to its unit and filter by a MAC, so a client can
/// neither forge a position nor reuse a cursor with another filter or port. The unit and the
/// filter go in with their lengths: both may hold a line feed (`q`, the case id), and a bare
/// separator would let text move from the filter to the position under the same MAC.
pub fn cursor_payload(unit: &str, filter: &Filter, last: &str) -> Vec<u8> {
    let filter = filter.describe();
    format!("{}:{unit}\n{}:{filter}\n{last}", unit.len(), filter.len()).into_bytes()
}

/// Encodes a cursor: `base64url(last case id) . base64url(mac)`.
pub fn encode_cursor(last: &str, mac: &[u8; 32]) -> String {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}", b.encode(last), b.encode(mac))
}

/// Splits a cursor into the last case id and its MAC; the caller recomputes and compares the MAC.
pub fn decode_cursor(cursor: &str) -> Result<(String, Vec<u8>), Problem> {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let invalid = || bad("cursor", "not a cursor this gateway issued for this query");
    let (last, mac) = cursor.split_once('.').ok_or_else(invalid)?;
    let last = String::from_utf8(b.decode(last).map_err(|_| invalid())?).map_err(|_| invalid())?;
    let mac = b.decode(mac).map_err(|_| invalid())?;
    Ok((last, mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_bad_ones_name_their_field() {
        let q = ListQuery::parse(
            "action=penalty&suspected_crime=true&decided_from=2025-01-01&q=%E7%81%AB+x&limit=5",
        )
        .unwrap();
        assert_eq!(q.filter.action, Some(Action::Penalty));
        assert_eq!(q.filter.suspected_crime, Some(true));
        assert_eq!(q.filter.text.as_deref(), Some("火 x"));
        assert_eq!(q.limit, 5);
        for (query, field) in [
            ("action=fine", "action"),
            ("major=yes", "major"),
            ("decided_to=2025-13-01", "decided_to"),
            ("limit=1001", "limit"),
            ("limit=0", "limit"),
            ("updated_from=yesterday", "updated_from"),
            ("acton=penalty", "acton"),
            (
                "decided_from=2025-02-01&decided_to=2025-01-01",
                "decided_from",
            ),
        ] {
            match ListQuery::parse(query) {
                Err(Problem::BadParameter { field: f, .. }) => assert_eq!(f, field, "{query}"),
                other => panic!("{query}: {other:?}"),
            }
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor("XW-2025-001", &[7; 32]);
        let (last, mac) = decode_cursor(&c).unwrap();
        assert_eq!((last.as_str(), mac.len()), ("XW-2025-001", 32));
        assert!(decode_cursor("nodot").is_err());
        assert!(decode_cursor("!!.!!").is_err());
    }

    /// Found by `cursor_payloads_are_injective`: with the filter and the last id joined by a
    /// bare line feed, a cursor issued for `q="a\nb"` after `L` carried the MAC of a cursor for
    /// `q="a"` after `"b\nL"`, so it could be replayed with another filter and position.
    #[test]
    fn a_cursor_cannot_move_text_between_the_filter_and_the_position() {
        let filter = |q: &str| Filter {
            text: Some(q.to_string()),
            ..Filter::default()
        };
        let unit = "11320102471049746T";
        assert_ne!(
            cursor_payload(unit, &filter("a\nb"), "L"),
            cursor_payload(unit, &filter("a"), "b\nL")
        );
    }

    /// Found by `percent_decoding_matches_rfc3986`: `%+1` decoded to U+0001 because the two
    /// characters after `%` were parsed as a signed number.
    #[test]
    fn a_percent_sign_needs_two_hex_digits() {
        assert_eq!(percent_decode("%+1"), "%+1");
        assert_eq!(percent_decode("%-1"), "%-1");
        assert_eq!(percent_decode("%41%4a%4A"), "AJJ");
    }

    /// Generated filters, queries and cursors: what a client can send is parsed to exactly
    /// what it means or refused naming the parameter, and a cursor is bound to its filter.
    mod props {
        use chrono::TimeZone;
        use proptest::prelude::*;
        use proptest::sample::select;

        use super::*;
        use crate::proptest_support::{config, mutated_text};

        /// `s` with `%XX` decoded only where both X are hex digits, as RFC 3986 §2.1 says; bytes
        /// that do not form UTF-8 become U+FFFD.
        fn reference_decode(s: &str) -> String {
            let b = s.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b[i],
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) {
                    (b'%', Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    (c, _, _) => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        }

        /// Every byte but the unreserved ones as `%XX`.
        fn encode(s: &str) -> String {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        }

        fn dates() -> impl Strategy<Value = NaiveDate> {
            (1900i32..2200, 1u32..=12, 1u32..=28)
                .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap())
        }

        fn instants() -> impl Strategy<Value = DateTime<Utc>> {
            (0i64..7_000_000_000).prop_map(|s| Utc.timestamp_opt(s, 0).unwrap())
        }

        fn texts() -> impl Strategy<Value = String> {
            prop_oneof!["[a-z]{1,8}", "[甲 &=+%\na-z]{1,12}", ".{1,110}"]
        }

        fn filters() -> impl Strategy<Value = Filter> {
            use prop::option::weighted as maybe;
            (
                maybe(0.3, select(Action::ALL)),
                maybe(0.3, select(CaseStatus::ALL)),
                maybe(0.3, select(TransferStatus::ALL)),
                maybe(0.3, any::<bool>()),
                maybe(0.3, any::<bool>()),
                maybe(0.3, dates()),
                maybe(0.3, dates()),
                maybe(0.3, instants()),
                maybe(0.3, instants()),
                maybe(0.4, texts()),
            )
                .prop_map(|(a, s, t, sc, m, df, dt, uf, ut, q)| Filter {
                    action: a,
                    status: s,
                    transfer_status: t,
                    suspected_crime: sc,
                    major: m,
                    decided_from: df,
                    decided_to: dt,
                    updated_from: uf,
                    updated_to: ut,
                    text: q,
                })
        }

        /// The query string of a filter, its parameters in the order given by `order`.
        fn query_of(
            f: &Filter,
            limit: Option<usize>,
            cursor: Option<&str>,
            order: &[usize],
        ) -> String {
            let mut params: Vec<(&str, String)> = Vec::new();
            let mut add = |k, v: Option<String>| {
                if let Some(v) = v {
                    params.push((k, v));
                }
            };
            add("action", f.action.map(|a| a.code().to_string()));
            add("status", f.status.map(|a| a.code().to_string()));
            add(
                "transfer_status",
                f.transfer_status.map(|a| a.code().to_string()),
            );
            add("suspected_crime", f.suspected_crime.map(|b| b.to_string()));
            add("major", f.major.map(|b| b.to_string()));
            add("decided_from", f.decided_from.map(|d| d.to_string()));
            add("decided_to", f.decided_to.map(|d| d.to_string()));
            add("updated_from", f.updated_from.map(|d| d.to_rfc3339()));
            add("updated_to", f.updated_to.map(|d| d.to_rfc3339()));
            add("q", f.text.clone());
            add("limit", limit.map(|l| l.to_string()));
            add("cursor", cursor.map(str::to_string));
            let mut pairs: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{k}={}", encode(v)))
                .collect();
            for (i, &j) in order.iter().enumerate() {
                let n = pairs.len();
                if n > 1 {
                    pairs.swap(i % n, j % n);
                }
            }
            pairs.join("&")
        }

        const KNOWN: [&str; 12] = [
            "action",
            "status",
            "transfer_status",
            "suspected_crime",
            "major",
            "decided_from",
            "decided_to",
            "updated_from",
            "updated_to",
            "q",
            "limit",
            "cursor",
        ];

        proptest! {
            #![proptest_config(config(512))]

            #[test]
            fn percent_decoding_matches_rfc3986(s in prop_oneof!["[%+0-9a-fA-F\\-g ]{0,16}", any::<String>()]) {
                prop_assert_eq!(percent_decode(&s), reference_decode(&s));
            }

            /// A filter written as a query string, in any parameter order, parses back to it
            /// (text longer than 100 characters and a reversed date range refused, naming the
            /// parameter).
            #[test]
            fn a_query_parses_to_the_filter_it_writes(
                f in filters(),
                limit in prop::option::of(1usize..=MAX_LIMIT),
                cursor in prop::option::of("[A-Za-z0-9_.-]{1,20}"),
                order in prop::collection::vec(0usize..12, 0..12),
            ) {
                let query = query_of(&f, limit, cursor.as_deref(), &order);
                let got = ListQuery::parse(&query);
                let too_long = f.text.as_ref().is_some_and(|q| q.chars().count() > 100);
                let reversed = matches!((f.decided_from, f.decided_to), (Some(a), Some(b)) if a > b);
                match got {
                    Ok(q) => {
                        prop_assert!(!too_long && !reversed);
                        prop_assert_eq!(q.filter, f);
                        prop_assert_eq!(q.limit, limit.unwrap_or(DEFAULT_LIMIT));
                        prop_assert_eq!(q.cursor, cursor);
                    }
                    Err(Problem::BadParameter { field, .. }) => {
                        let expected = if too_long { "q" } else { "decided_from" };
                        prop_assert!(too_long || reversed, "{}: refused {}", query, field);
                        prop_assert_eq!(field, expected);
                    }
                    Err(other) => prop_assert!(false, "{}: {:?}", query, other),
                }
            }

            /// Any query string is parsed or refused with a 422 naming a known parameter or the
            /// unknown one.
            #[test]
            fn any_query_is_parsed_or_refused_naming_a_parameter(
                query in prop_oneof![
                    any::<String>(),
                    mutated_text(
                        "action=penalty&major=true&decided_from=2025-01-01&decided_to=2025-02-01&updated_to=2025-03-01T00:00:00Z&q=%E7%81%AB&limit=5&cursor=abc.def",
                        &[b"&", b"=", b"%", b"%0A", b"+", b"%FF", b"limit=", b"q=", b"9"],
                        4,
                    ),
                ],
            ) {
                match ListQuery::parse(&query) {
                    Ok(q) => prop_assert!((1..=MAX_LIMIT).contains(&q.limit)),
                    Err(Problem::BadParameter { field, .. }) => {
                        let named = pairs(&query).iter().any(|(k, _)| *k == field);
                        prop_assert!(KNOWN.contains(&field.as_str()) || named, "{}", field);
                    }
                    Err(other) => prop_assert!(false, "{}: {:?}", query, other),
                }
            }

            /// A cursor decodes to what it was made from, and whatever decodes re-encodes to
            /// the same text, so a cursor has one spelling.
            #[test]
            fn cursors_round_trip_and_decode_canonically(
                last in any::<String>(),
                mac in any::<[u8; 32]>(),
                text in prop_oneof![any::<String>(), "[A-Za-z0-9_=+/.-]{0,60}"],
            ) {
                let c = encode_cursor(&last, &mac);
                prop_assert_eq!(decode_cursor(&c), Ok((last, mac.to_vec())));
                if let Ok((l, m)) = decode_cursor(&text)
                    && let Ok(m) = <[u8; 32]>::try_from(m.as_slice())
                {
                    prop_assert_eq!(encode_cursor(&l, &m), text);
                }
            }

            /// Different (filter, position) pairs are MACed as different bytes, also when text
            /// could move across the boundary between the filter's `q` and the position.
            #[test]
            fn cursor_payloads_are_injective(
                f in filters(),
                g in filters(),
                left in "[ab&=\n]{1,6}",
                mid in "[ab&=\n]{0,6}",
                right in "[ab&=\n]{0,6}",
            ) {
                let unit = "11320102471049746T";
                let with_q = |q: String| Filter { text: Some(q), ..f.clone() };
                let a = (with_q(left.clone()), format!("{mid}\n{right}"));
                let b = (with_q(format!("{left}\n{mid}")), right.clone());
                let c = (g, format!("{left}{right}"));
                for (x, y) in [(&a, &b), (&a, &c), (&b, &c)] {
                    if x != y {
                        prop_assert_ne!(
                            cursor_payload(unit, &x.0, &x.1),
                            cursor_payload(unit, &y.0, &y.1),
                            "{:?} / {:?}", x, y
                        );
                    }
                }
            }
        }
    }
}
