//! Push packages for the provincial platform (`schemas/province/package.xsd`): a header and
//! records, each an upsert of a penalty (CF_*), licensing (XK_*) or inspection result, or a
//! `Retraction`. Written with quick-xml; a case that lacks a field the platform requires is refused
//! with the field named, so it can be dead-lettered with a reason instead of sent incomplete.

use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use sha2::{Digest, Sha256};

use crate::model::{Action, Case, PartyId, PartyKind, Uscc};

/// The namespace of `schemas/province/package.xsd`.
pub const NAMESPACE: &str = "urn:xianjie:province:package:1";

/// Upsert or retract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The record, in full.
    Upsert,
    /// Withdraw the record (a revoked decision).
    Retract,
}

/// The package header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Unique per package (the receiver deduplicates on it).
    pub package_id: String,
    /// The district's division code (320102).
    pub source_division: String,
    /// The sending unit's USCC.
    pub sending_unit: Uscc,
    /// When the package was built.
    pub created_at: DateTime<Utc>,
}

/// One record to send.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Upsert or retract.
    pub op: Op,
    /// The case (its current version).
    pub case: &'a Case,
}

/// Why a package cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// The platform takes no records of this action.
    #[error("case {case}: {action} decisions are not pushed to the provincial platform")]
    NotPushed {
        /// The case key.
        case: String,
        /// Its action.
        action: &'static str,
    },
    /// A field the platform requires is empty.
    #[error("case {case}: {field} is required by the provincial platform but empty")]
    Missing {
        /// The case key.
        case: String,
        /// The platform field.
        field: &'static str,
    },
    /// An empty package.
    #[error("a package needs at least one record")]
    Empty,
    /// Writing failed (cannot happen with an in-memory buffer, kept for honesty).
    #[error("package encoding failed: {0}")]
    Encode(String),
}

/// The stable record id of a case: the same across versions, unique across units.
pub fn record_id(case: &Case) -> String {
    let h = Sha256::digest(case.key());
    format!("XJ-{}", hex::encode(&h[..16]))
}

struct W(Writer<Vec<u8>>);

impl W {
    fn ev(&mut self, e: Event<'_>) -> Result<(), PackageError> {
        self.0
            .write_event(e)
            .map_err(|e| PackageError::Encode(e.to_string()))
    }

    fn text(&mut self, name: &str, value: &str) -> Result<(), PackageError> {
        self.ev(Event::Start(BytesStart::new(name)))?;
        self.ev(Event::Text(BytesText::new(value)))?;
        self.ev(Event::End(BytesEnd::new(name)))
    }

    fn opt(&mut self, name: &str, value: Option<&str>) -> Result<(), PackageError> {
        match value.filter(|v| !v.is_empty()) {
            Some(v) => self.text(name, v),
            None => Ok(()),
        }
    }
}

fn required<'a>(
    case: &Case,
    field: &'static str,
    v: Option<&'a str>,
) -> Result<&'a str, PackageError> {
    v.filter(|s| !s.is_empty())
        .ok_or_else(|| PackageError::Missing {
            case: String::from_utf8_lossy(&case.key()).replace('\0', "/"),
            field,
        })
}

fn party(w: &mut W, case: &Case) -> Result<(), PackageError> {
    let p = &case.party;
    w.text("XDR_MC", &p.name)?;
    w.text(
        "XDR_LB",
        match p.kind {
            PartyKind::NaturalPerson => "自然人",
            PartyKind::IndividualBusiness => "个体工商户",
            PartyKind::LegalPerson | PartyKind::OtherOrg => "法人及非法人组织",
        },
    )?;
    match &p.id {
        Some(PartyId::Uscc(u)) => w.text("XDR_SHXYM", u.as_str()),
        Some(other) => {
            w.text("XDR_ZJLX", other.id_type().label())?;
            w.text("XDR_ZJHM", other.number())
        }
        None => Ok(()),
    }
}

fn date(d: Option<chrono::NaiveDate>) -> Option<String> {
    d.map(|d| d.format("%Y-%m-%d").to_string())
}

fn record(w: &mut W, r: &Record<'_>) -> Result<(), PackageError> {
    let c = r.case;
    let key = || String::from_utf8_lossy(&c.key()).replace('\0', "/");
    let name = match c.action {
        Action::Penalty => "PenaltyRecord",
        Action::Licensing => "LicenseRecord",
        Action::Inspection => "InspectionResult",
        other => {
            return Err(PackageError::NotPushed {
                case: key(),
                action: other.code(),
            });
        }
    };
    let id = record_id(c);
    let version = c.version.to_string();
    if r.op == Op::Retract {
        let mut start = BytesStart::new("Retraction");
        start.push_attribute(("kind", name));
        start.push_attribute(("id", id.as_str()));
        start.push_attribute(("version", version.as_str()));
        return w.ev(Event::Empty(start));
    }
    let mut start = BytesStart::new(name);
    start.push_attribute(("id", id.as_str()));
    start.push_attribute(("version", version.as_str()));
    w.ev(Event::Start(start))?;
    party(w, c)?;
    let unit = c.unit_code.as_str();
    let decided = date(c.decided_on);
    match c.action {
        Action::Penalty => {
            let pen = c.penalty.as_ref();
            w.text(
                "CF_WSH",
                required(c, "CF_WSH", c.decision_number.as_deref())?,
            )?;
            w.text("CF_WFXW", required(c, "CF_WFXW", c.cause.as_deref())?)?;
            w.opt("CF_SY", c.facts.as_deref())?;
            w.text("CF_YJ", required(c, "CF_YJ", c.legal_basis.as_deref())?)?;
            let kinds: Vec<&str> =
                pen.map_or(Vec::new(), |p| p.kinds.iter().map(|k| k.label()).collect());
            let kinds = kinds.join(";");
            w.text("CF_CFLB", required(c, "CF_CFLB", Some(kinds.as_str()))?)?;
            w.text("CF_NR", required(c, "CF_NR", c.decision.as_deref())?)?;
            w.opt(
                "CF_NR_FK",
                pen.and_then(|p| p.fine_fen)
                    .map(|f| f.wanyuan_string())
                    .as_deref(),
            )?;
            w.opt(
                "CF_NR_WFFF",
                pen.and_then(|p| p.confiscated_fen)
                    .map(|f| f.wanyuan_string())
                    .as_deref(),
            )?;
            w.text("CF_JDRQ", required(c, "CF_JDRQ", decided.as_deref())?)?;
            w.text("CF_CFJG", &c.unit_name)?;
            w.text("CF_CFJGDM", unit)?;
            w.text("CF_SJLY", &c.unit_name)?;
            w.text("CF_SJLYDM", unit)?;
        }
        Action::Licensing => {
            let lic = c.license.as_ref();
            w.text(
                "XK_WSH",
                required(c, "XK_WSH", c.decision_number.as_deref())?,
            )?;
            w.text(
                "XK_XKLB",
                lic.and_then(|l| l.category).map_or("普通", |k| k.label()),
            )?;
            w.opt("XK_XKZS", lic.and_then(|l| l.certificate_name.as_deref()))?;
            w.text(
                "XK_XKBH",
                required(c, "XK_XKBH", lic.map(|l| l.license_number.as_str()))?,
            )?;
            w.text("XK_NR", required(c, "XK_NR", c.decision.as_deref())?)?;
            w.text("XK_JDRQ", required(c, "XK_JDRQ", decided.as_deref())?)?;
            w.opt("XK_YXQZ", date(lic.and_then(|l| l.valid_from)).as_deref())?;
            w.opt("XK_YXQJ", date(lic.and_then(|l| l.valid_to)).as_deref())?;
            w.text("XK_XKJG", &c.unit_name)?;
            w.text("XK_XKJGDM", unit)?;
            w.text("XK_SJLY", &c.unit_name)?;
            w.text("XK_SJLYDM", unit)?;
        }
        _ => {
            let ins = c.inspection.as_ref();
            w.opt("JC_RWMC", ins.and_then(|i| i.task_name.as_deref()))?;
            w.opt("JC_PCH", ins.and_then(|i| i.batch_id.as_deref()))?;
            let result = ins.map(|i| i.result_code);
            w.text("JC_JGDM", required(c, "JC_JGDM", result.map(|r| r.code()))?)?;
            w.text("JC_JG", required(c, "JC_JG", result.map(|r| r.label()))?)?;
            w.text("JC_RQ", required(c, "JC_RQ", decided.as_deref())?)?;
            w.text("JC_JCJG", &c.unit_name)?;
            w.text("JC_JCJGDM", unit)?;
        }
    }
    w.ev(Event::End(BytesEnd::new(name)))
}

/// Builds a package (UTF-8 XML).
pub fn build(header: &Header, records: &[Record<'_>]) -> Result<Vec<u8>, PackageError> {
    if records.is_empty() {
        return Err(PackageError::Empty);
    }
    let mut w = W(Writer::new(Vec::with_capacity(records.len() * 1024 + 512)));
    w.ev(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut root = BytesStart::new("Package");
    root.push_attribute(("xmlns", NAMESPACE));
    w.ev(Event::Start(root))?;
    w.ev(Event::Start(BytesStart::new("Header")))?;
    w.text("PackageId", &header.package_id)?;
    w.text("SourceDivision", &header.source_division)?;
    w.text("SendingUnit", header.sending_unit.as_str())?;
    w.text(
        "CreatedAt",
        &header.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
    )?;
    w.text("RecordCount", &records.len().to_string())?;
    w.text("SchemaVersion", "1.0")?;
    w.ev(Event::End(BytesEnd::new("Header")))?;
    w.ev(Event::Start(BytesStart::new("Records")))?;
    for r in records {
        record(&mut w, r)?;
    }
    w.ev(Event::End(BytesEnd::new("Records")))?;
    w.ev(Event::End(BytesEnd::new("Package")))?;
    Ok(w.0.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::golden::golden_cases;

    fn header() -> Header {
        Header {
            package_id: "PKG-20261127-000001".into(),
            source_division: "320102".into(),
            sending_unit: Uscc::parse("91350200776049653A").unwrap(),
            created_at: DateTime::parse_from_rfc3339("2026-11-27T08:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    fn violations(xml: &str) -> Vec<String> {
        let xsd = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/province/package.xsd"),
        )
        .unwrap();
        let schema = xmlschema::parse_schema(&xsd).expect("the package XSD parses");
        let doc = oxml::parse(xml).expect("well-formed");
        xmlschema::validate(&doc, &schema)
            .violations
            .iter()
            .map(|v| format!("{v:?}"))
            .collect()
    }

    #[test]
    fn packages_of_every_record_kind_validate_against_the_xsd() {
        let cases = golden_cases();
        let pushable: Vec<&Case> = cases
            .iter()
            .filter(|c| {
                matches!(
                    c.action,
                    Action::Penalty | Action::Licensing | Action::Inspection
                )
            })
            .filter(|c| {
                build(
                    &header(),
                    &[Record {
                        op: Op::Upsert,
                        case: c,
                    }],
                )
                .is_ok()
            })
            .collect();
        for a in [Action::Penalty, Action::Licensing, Action::Inspection] {
            assert!(
                pushable.iter().any(|c| c.action == a),
                "no golden {a:?} to push"
            );
        }
        let mut records: Vec<Record<'_>> = pushable
            .iter()
            .map(|c| Record {
                op: Op::Upsert,
                case: c,
            })
            .collect();
        records.push(Record {
            op: Op::Retract,
            case: pushable[0],
        });
        let xml = String::from_utf8(build(&header(), &records).unwrap()).unwrap();
        let v = violations(&xml);
        assert!(v.is_empty(), "{v:?}");
        assert!(xml.contains(&format!("<RecordCount>{}</RecordCount>", records.len())));
        assert!(xml.contains("<Retraction kind=\""), "{xml}");
        // Record ids are stable and unique per case.
        assert_eq!(record_id(pushable[0]), record_id(&pushable[0].clone()));
        assert_ne!(record_id(pushable[0]), record_id(pushable[1]));

        // The schema is not a rubber stamp.
        let fine = xml
            .split("<CF_NR_FK>")
            .nth(1)
            .and_then(|s| s.split("</CF_NR_FK>").next())
            .expect("a penalty with a fine");
        let bad = xml.replacen(
            &format!("<CF_NR_FK>{fine}</CF_NR_FK>"),
            "<CF_NR_FK>1.1234567</CF_NR_FK>",
            1,
        );
        assert!(!violations(&bad).is_empty(), "7 decimals of 万元 passed");
        let bad = xml.replacen(
            "<SourceDivision>320102</SourceDivision>",
            "<SourceDivision>32010</SourceDivision>",
            1,
        );
        assert!(!violations(&bad).is_empty(), "a 5-digit division passed");
    }

    #[test]
    fn incomplete_and_unpushable_cases_are_refused_with_the_field() {
        let cases = golden_cases();
        let mut pen = cases
            .iter()
            .find(|c| c.action == Action::Penalty)
            .unwrap()
            .clone();
        pen.decision_number = None;
        match build(
            &header(),
            &[Record {
                op: Op::Upsert,
                case: &pen,
            }],
        ) {
            Err(PackageError::Missing { field, .. }) => assert_eq!(field, "CF_WSH"),
            other => panic!("{other:?}"),
        }
        // A retraction needs no content.
        assert!(
            build(
                &header(),
                &[Record {
                    op: Op::Retract,
                    case: &pen
                }]
            )
            .is_ok()
        );
        if let Some(other) = cases.iter().find(|c| {
            !matches!(
                c.action,
                Action::Penalty | Action::Licensing | Action::Inspection
            )
        }) {
            assert!(matches!(
                build(
                    &header(),
                    &[Record {
                        op: Op::Upsert,
                        case: other
                    }]
                ),
                Err(PackageError::NotPushed { .. })
            ));
        }
        assert_eq!(build(&header(), &[]), Err(PackageError::Empty));
    }
}
