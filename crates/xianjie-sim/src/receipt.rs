//! Receipts from the provincial platform (`schemas/province/receipt.xsd`): written by the
//! simulator (with [`xianjie_xml`], so never with a character XML 1.0 forbids), read by the
//! delivery worker. Reading is strict — an answer that is not a receipt
//! for the package sent is an error, never a guess.

use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::events::{BytesStart, Event};

use xianjie_xml::{XmlError, XmlWriter};

/// The namespace of `schemas/province/receipt.xsd`.
pub const NAMESPACE: &str = "urn:xianjie:province:receipt:1";

/// What the platform did with one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Taken.
    Accepted,
    /// Taken before (same id and version): delivered.
    Duplicate,
    /// Refused, with the platform's code and reason.
    Rejected {
        /// Code.
        code: String,
        /// Reason.
        reason: String,
    },
}

/// One record's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResult {
    /// Record id.
    pub id: String,
    /// Record version.
    pub version: u64,
    /// What happened.
    pub outcome: Outcome,
}

/// A receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The package it answers.
    pub package_id: String,
    /// When the platform received it.
    pub received_at: DateTime<Utc>,
    /// Per record, in package order.
    pub results: Vec<RecordResult>,
}

/// Why an answer is not a usable receipt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("receipt: {0}")]
pub struct ReceiptError(pub String);

fn err(s: impl Into<String>) -> ReceiptError {
    ReceiptError(s.into())
}

/// Writes a receipt.
///
/// # Errors
/// [`XmlError`] when a value (a reason, an id) holds a character XML 1.0 forbids: the receipt is
/// not written rather than written unreadable.
pub fn build(r: &Receipt) -> Result<Vec<u8>, XmlError> {
    let mut w = XmlWriter::document(256 + r.results.len() * 96)?;
    w.start("Receipt", &[("xmlns", NAMESPACE)])?;
    w.element("PackageId", &r.package_id)?;
    w.element(
        "ReceivedAt",
        &r.received_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    )?;
    for x in &r.results {
        let version = x.version.to_string();
        let (status, code, reason) = match &x.outcome {
            Outcome::Accepted => ("accepted", None, ""),
            Outcome::Duplicate => ("duplicate", None, ""),
            Outcome::Rejected { code, reason } => {
                ("rejected", Some(code.as_str()), reason.as_str())
            }
        };
        let mut attrs = vec![
            ("id", x.id.as_str()),
            ("version", &version),
            ("status", status),
        ];
        if let Some(c) = code {
            attrs.push(("code", c));
        }
        w.start("Result", &attrs)?;
        w.text(reason)?;
        w.end()?;
    }
    w.end()?;
    Ok(w.finish())
}

/// The attributes of a `<Result>`: id, version, status, code.
type ResultAttributes = (String, u64, String, Option<String>);

fn result_attributes(e: &BytesStart<'_>, at: usize) -> Result<ResultAttributes, ReceiptError> {
    let mut id = None;
    let mut version = None;
    let mut status = None;
    let mut code = None;
    for a in e.attributes() {
        let a = a.map_err(|e| err(format!("result {at}: bad attribute: {e}")))?;
        let v = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| err(format!("result {at}: bad attribute value: {e}")))?
            .to_string();
        // A character reference may name a character the document could not hold literally.
        xianjie_xml::check(&format!("result {at}: attribute value"), &v)
            .map_err(|e| err(e.to_string()))?;
        match a.key.local_name().as_ref() {
            "id" => id = Some(v),
            "version" => version = v.parse::<u64>().ok(),
            "status" => status = Some(v),
            "code" => code = Some(v),
            _ => {}
        }
    }
    Ok((
        id.ok_or_else(|| err(format!("result {at}: no id")))?,
        version.ok_or_else(|| err(format!("result {at}: no valid version")))?,
        status.ok_or_else(|| err(format!("result {at}: no status")))?,
        code,
    ))
}

fn finish(attrs: ResultAttributes, text: &str) -> Result<RecordResult, ReceiptError> {
    let (id, version, status, code) = attrs;
    let outcome = match status.as_str() {
        "accepted" => Outcome::Accepted,
        "duplicate" => Outcome::Duplicate,
        "rejected" => Outcome::Rejected {
            code: code.unwrap_or_default(),
            reason: text.to_string(),
        },
        other => return Err(err(format!("result {id}: unknown status {other:?}"))),
    };
    Ok(RecordResult {
        id,
        version,
        outcome,
    })
}

/// Reads a receipt. A character XML 1.0 forbids, written or referenced, refuses it: such a
/// document is not well-formed, and its values could not be written into XML again.
pub fn parse(xml: &[u8]) -> Result<Receipt, ReceiptError> {
    crate::validate::check_chars(xml).map_err(|e| err(e.to_string()))?;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut package_id = None;
    let mut received_at = None;
    let mut results = Vec::new();
    let mut current: Option<ResultAttributes> = None;
    let mut text = String::new();
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| err(format!("not well-formed XML: {e}")))?;
        match ev {
            Event::DocType(_) => return Err(err("a DOCTYPE is not accepted")),
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                match (path.len(), name.as_str()) {
                    (0, "Receipt") | (1, "PackageId" | "ReceivedAt") => {}
                    (1, "Result") => current = Some(result_attributes(&e, results.len() + 1)?),
                    _ => return Err(err(format!("unexpected element <{name}>"))),
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(e) => {
                let name = e.local_name().as_ref().to_string();
                if path.len() != 1 || name != "Result" {
                    return Err(err(format!("unexpected empty element <{name}/>")));
                }
                let attrs = result_attributes(&e, results.len() + 1)?;
                results.push(finish(attrs, "")?);
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let c = xianjie_xml::resolve_ref(&r).map_err(err)?;
                if !xianjie_xml::is_xml_char(c) {
                    return Err(err(format!(
                        "character reference &{}; names U+{:04X}, which XML 1.0 does not allow",
                        &*r,
                        u32::from(c)
                    )));
                }
                text.push(c);
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                match name.as_str() {
                    "PackageId" => package_id = Some(text.trim().to_string()),
                    "ReceivedAt" => {
                        received_at = Some(
                            DateTime::parse_from_rfc3339(text.trim())
                                .map_err(|e| err(format!("ReceivedAt {:?}: {e}", text.trim())))?
                                .with_timezone(&Utc),
                        )
                    }
                    "Result" => {
                        let attrs = current
                            .take()
                            .ok_or_else(|| err("result without attributes"))?;
                        results.push(finish(attrs, text.trim())?);
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(Receipt {
        package_id: package_id.ok_or_else(|| err("no PackageId"))?,
        received_at: received_at.ok_or_else(|| err("no ReceivedAt"))?,
        results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the property test below: a time with sub-millisecond digits was written to the
    /// millisecond, so a receipt read back was not the one written.
    #[test]
    fn a_time_keeps_every_digit_it_was_given() {
        for t in [
            "2018-02-22T21:13:51.0997Z",
            "2026-11-27T08:00:00Z",
            "2026-11-27T08:00:00.250Z",
        ] {
            let mut r = sample();
            r.received_at = DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
            let xml = String::from_utf8(build(&r).unwrap()).unwrap();
            assert_eq!(parse(xml.as_bytes()), Ok(r), "{xml}");
        }
        let xml = String::from_utf8(build(&sample()).unwrap()).unwrap();
        assert!(
            xml.contains("<ReceivedAt>2026-11-27T08:00:00.250Z</ReceivedAt>"),
            "{xml}"
        );
    }

    fn sample() -> Receipt {
        Receipt {
            package_id: "PKG-1".into(),
            received_at: DateTime::parse_from_rfc3339("2026-11-27T08:00:00.250Z")
                .unwrap()
                .with_timezone(&Utc),
            results: vec![
                RecordResult {
                    id: "XJ-a".into(),
                    version: 2,
                    outcome: Outcome::Accepted,
                },
                RecordResult {
                    id: "XJ-b".into(),
                    version: 1,
                    outcome: Outcome::Duplicate,
                },
                RecordResult {
                    id: "XJ-c".into(),
                    version: 3,
                    outcome: Outcome::Rejected {
                        code: "E103".into(),
                        reason: "CF_XDR_SHXYM 校验位错误 <&>".into(),
                    },
                },
            ],
        }
    }

    #[test]
    fn receipts_round_trip_and_validate_against_the_xsd() {
        let xml = build(&sample()).unwrap();
        assert_eq!(parse(&xml).unwrap(), sample());
        let xsd = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../schemas/province/receipt.xsd"),
        )
        .unwrap();
        let schema = xmlschema::parse_schema(&xsd).expect("the receipt XSD parses");
        let text = String::from_utf8(xml).unwrap();
        let doc = oxml::parse(&text).unwrap();
        let v = xmlschema::validate(&doc, &schema);
        assert!(v.is_valid(), "{:?}", v.violations);
        let bad = text.replacen("status=\"duplicate\"", "status=\"maybe\"", 1);
        assert!(!xmlschema::validate(&oxml::parse(&bad).unwrap(), &schema).is_valid());
    }

    #[test]
    fn anything_but_a_receipt_is_refused_with_the_reason() {
        for (xml, expect) in [
            (
                "<html><body>502 Bad Gateway</body></html>",
                "unexpected element <html>",
            ),
            (
                "<Receipt><PackageId>P</PackageId></Receipt>",
                "no ReceivedAt",
            ),
            (
                "<Receipt><PackageId>P</PackageId><ReceivedAt>2026-11-27T08:00:00Z</ReceivedAt><Result id=\"a\" status=\"accepted\"/></Receipt>",
                "no valid version",
            ),
            ("<Receipt><PackageId>P", "no PackageId"),
            ("<!DOCTYPE r [<!ENTITY x \"y\">]><Receipt/>", "DOCTYPE"),
        ] {
            let e = parse(xml.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(expect), "{xml}: {e}");
        }
    }

    #[test]
    fn a_forbidden_character_is_refused_and_allowed_ones_round_trip() {
        let mut r = sample();
        r.results[2].outcome = Outcome::Rejected {
            code: "E103".into(),
            reason: "名称\u{8}错误".into(),
        };
        assert_eq!(
            build(&r).unwrap_err(),
            XmlError::Forbidden {
                field: "Receipt/Result".into(),
                position: 3,
                code: 8
            }
        );
        r.results[0].id = "XJ-\u{FFFF}".into();
        match build(&r).unwrap_err() {
            XmlError::Forbidden {
                field, position, ..
            } => {
                assert_eq!((field.as_str(), position), ("Receipt/Result/@id", 4))
            }
            other => panic!("{other:?}"),
        }
        let mut r = sample();
        r.results[2].outcome = Outcome::Rejected {
            code: "E103".into(),
            reason: "名称\t有误\n第二行\r𠀀😀".into(),
        };
        assert_eq!(parse(&build(&r).unwrap()).unwrap(), r);
    }

    /// Found by `an_accepted_receipt_rewrites_to_itself`: the reader took a raw U+000B in an
    /// attribute (and would take one in text, or by reference), values the writer then refuses.
    #[test]
    fn a_receipt_with_a_character_xml_forbids_is_refused() {
        let xml = |id: &str, reason: &str| {
            format!(
                "<Receipt><PackageId>P</PackageId><ReceivedAt>2026-11-27T08:00:00Z</ReceivedAt>\
                 <Result id=\"{id}\" version=\"1\" status=\"rejected\" code=\"E\">{reason}</Result></Receipt>"
            )
        };
        assert!(parse(xml("a", "ok").as_bytes()).is_ok());
        for (id, reason, expect) in [
            ("\u{b}215", "ok", "U+000B"),
            ("a", "bad\u{1}", "U+0001"),
            ("a", "bad&#1;", "U+0001"),
            ("a", "bad&#xFFFE;", "U+FFFE"),
            ("&#x1;a", "ok", "U+0001"),
        ] {
            let e = parse(xml(id, reason).as_bytes()).unwrap_err().to_string();
            assert!(e.contains(expect), "{id:?} {reason:?}: {e}");
        }
    }

    /// Generated receipts and mutations of a valid one: what is written reads back as written,
    /// and what is read can be written again and reads back the same.
    mod props {
        use proptest::prelude::*;

        use super::*;
        use xianjie_proptest::{XML_SYNTAX, config, mutated_text};
        use xianjie_xml::is_xml_char;

        fn values() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => "[A-Za-z0-9._-]{1,20}",
                3 => "[甲乙&<>\"' \t\r\na-z]{0,20}",
                1 => any::<String>(),
            ]
        }

        fn outcomes() -> impl Strategy<Value = Outcome> {
            prop_oneof![
                Just(Outcome::Accepted),
                Just(Outcome::Duplicate),
                (values(), values()).prop_map(|(code, reason)| Outcome::Rejected { code, reason }),
            ]
        }

        fn receipts() -> impl Strategy<Value = Receipt> {
            let result = (values(), any::<u64>(), outcomes()).prop_map(|(id, version, outcome)| {
                RecordResult {
                    id,
                    version,
                    outcome,
                }
            });
            (
                values(),
                0i64..4_102_444_800_000,
                prop::collection::vec(result, 0..5),
            )
                .prop_map(|(package_id, millis, results)| Receipt {
                    package_id,
                    received_at: DateTime::from_timestamp_millis(millis).unwrap(),
                    results,
                })
        }

        /// Every text a receipt carries.
        fn texts(r: &Receipt) -> Vec<&str> {
            let mut t = vec![r.package_id.as_str()];
            for x in &r.results {
                t.push(&x.id);
                if let Outcome::Rejected { code, reason } = &x.outcome {
                    t.push(code);
                    t.push(reason);
                }
            }
            t
        }

        /// `r` as the reader gives it back: the package id and reasons are element text,
        /// which the reader trims.
        fn as_read(r: &Receipt) -> Receipt {
            let mut r = r.clone();
            r.package_id = r.package_id.trim().to_string();
            for x in &mut r.results {
                if let Outcome::Rejected { reason, .. } = &mut x.outcome {
                    *reason = reason.trim().to_string();
                }
            }
            r
        }

        proptest! {
            #![proptest_config(config(512))]

            /// Writing refuses exactly the receipts with a character XML 1.0 forbids; every
            /// other one reads back as written.
            #[test]
            fn receipts_round_trip(r in receipts()) {
                let allowed = texts(&r).iter().all(|t| t.chars().all(is_xml_char));
                match build(&r) {
                    Err(e) => prop_assert!(!allowed, "refused a writable receipt: {}", e),
                    Ok(xml) => {
                        prop_assert!(allowed);
                        prop_assert_eq!(parse(&xml), Ok(as_read(&r)));
                    }
                }
            }

            /// Whatever the reader accepts, the writer writes again, and it reads back the same.
            #[test]
            fn an_accepted_receipt_rewrites_to_itself(
                xml in receipts().prop_flat_map(|r| {
                    let xml = build(&r).map(|b| String::from_utf8(b).unwrap()).unwrap_or_default();
                    mutated_text(&xml, XML_SYNTAX, 3)
                }),
            ) {
                if let Ok(r) = parse(xml.as_bytes()) {
                    let again = build(&r).map_err(|e| TestCaseError::fail(format!("{e}: {r:?}")))?;
                    prop_assert_eq!(parse(&again), Ok(r));
                }
            }
        }
    }
}
