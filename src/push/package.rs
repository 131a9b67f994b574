//! Push packages for the provincial platform (`schemas/province/package.xsd`): a header and
//! records, each an upsert of a penalty (CF_*), licensing (XK_*) or inspection result, or a
//! `Retraction`. Written with [`crate::xml_out`] (quick-xml underneath); a case that lacks a
//! field the platform requires, or holds a character XML 1.0 forbids, is refused with the field
//! named, so it can be dead-lettered with a reason instead of sent.
//!
//! [`build_checked`] is what the delivery worker sends: it holds back every record that would
//! fail — at writing, or when the package is read back with the platform's own validator
//! ([`super::validate`]) — so one bad record never costs the others their package.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use super::validate::{self, PackageProblem};
use crate::model::{Action, Case, CaseStatus, Fen, LicenseState, PartyId, PartyKind, Uscc};
use crate::xml_out::{Fragment, XmlError, XmlWriter};

/// The namespace of `schemas/province/package.xsd`, as the platform's validator reads it.
pub use super::validate::NAMESPACE;

/// Upsert or retract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The record, in full.
    Upsert,
    /// Withdraw the record (a revoked decision).
    Retract,
}

/// Why a case is withdrawn, and since when: `revoked` when its unit revoked it, else the reason
/// it may not stay public (`restricted`, `minor`); the date is that of the version that made it
/// so, in China Standard Time.
pub fn retraction(c: &Case) -> (&'static str, String) {
    let reason = match (c.status, c.withheld()) {
        (CaseStatus::Revoked, _) | (_, None) => "revoked",
        (_, Some(w)) => w.code(),
    };
    (reason, version_date(c).format("%Y-%m-%d").to_string())
}

/// The day, in China Standard Time, the gateway stored the case's current version: when a
/// revocation or change became known, from which its withdrawal deadline counts.
pub fn version_date(c: &Case) -> chrono::NaiveDate {
    chrono::FixedOffset::east_opt(8 * 3600).map_or_else(
        || c.updated_at.date_naive(),
        |cst| c.updated_at.with_timezone(&cst).date_naive(),
    )
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
    /// A value holds a character XML 1.0 forbids (the field, its position and code point named).
    #[error("case {case}: {error}")]
    Unwritable {
        /// The case key.
        case: String,
        /// What was refused, and where.
        error: XmlError,
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

/// The label package errors give a case: `unit/case_id`.
pub fn case_label(case: &Case) -> String {
    String::from_utf8_lossy(&case.key()).replace('\0', "/")
}

/// The writer of one record, which names its case in every error.
struct W<'c> {
    x: XmlWriter,
    case: &'c Case,
}

impl W<'_> {
    fn xml(&self, error: XmlError) -> PackageError {
        PackageError::Unwritable {
            case: case_label(self.case),
            error,
        }
    }

    fn text(&mut self, name: &str, value: &str) -> Result<(), PackageError> {
        self.x.element(name, value).map_err(|e| self.xml(e))
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
            case: case_label(case),
            field,
        })
}

/// The party items of a record, in the standard's order: `prefix` is `CF_` (penalty), `XK_`
/// (licensing) or empty (inspection results, which keep the unprefixed names). A natural
/// person's document goes as 证件类型 and 证件号码 when its type is one the standard lists; an
/// organisation's USCC as 统一社会信用代码; the legal representative only for organisations.
fn party(w: &mut W<'_>, case: &Case, prefix: &str) -> Result<(), PackageError> {
    let p = &case.party;
    let item = |name: &str| format!("{prefix}{name}");
    w.text(&item("XDR_MC"), &p.name)?;
    w.text(
        &item("XDR_LB"),
        match p.kind {
            PartyKind::NaturalPerson => "自然人",
            PartyKind::IndividualBusiness => "个体工商户",
            PartyKind::LegalPerson | PartyKind::OtherOrg => "法人及非法人组织",
        },
    )?;
    if let Some(PartyId::Uscc(u)) = &p.id {
        w.text(&item("XDR_SHXYM"), u.as_str())?;
    }
    if !prefix.is_empty() && !matches!(p.kind, PartyKind::NaturalPerson) {
        w.opt(&item("FRDB"), p.legal_representative.as_deref())?;
    }
    match &p.id {
        Some(other @ (PartyId::Resident(_) | PartyId::Other { .. }))
            if other.id_type() != crate::model::IdType::Other =>
        {
            w.text(&item("XDR_ZJLX"), other.id_type().label())?;
            w.text(&item("XDR_ZJHM"), other.number())
        }
        _ => Ok(()),
    }
}

/// 当前状态 (`XK_ZT`): the source's, else `2` (无效) for a revoked decision, else `1` (有效).
fn license_state(c: &Case) -> &'static str {
    let stated = c.license.as_ref().and_then(|l| l.state);
    match (stated, c.status) {
        (Some(LicenseState::Invalid), _) | (None, CaseStatus::Revoked) => "2",
        _ => "1",
    }
}

fn date(d: Option<chrono::NaiveDate>) -> Option<String> {
    d.map(|d| d.format("%Y-%m-%d").to_string())
}

/// One record, written alone so that a refusal names it and the others can still be sent.
fn record(r: &Record<'_>) -> Result<Fragment, PackageError> {
    let c = r.case;
    let mut w = W {
        x: XmlWriter::fragment(1024),
        case: c,
    };
    let name = match c.action {
        Action::Penalty => "PenaltyRecord",
        Action::Licensing => "LicenseRecord",
        Action::Inspection => "InspectionResult",
        other => {
            return Err(PackageError::NotPushed {
                case: case_label(c),
                action: other.code(),
            });
        }
    };
    let id = record_id(c);
    let version = c.version.to_string();
    if r.op == Op::Retract {
        let (reason, since) = retraction(c);
        w.x.empty(
            "Retraction",
            &[
                ("kind", name),
                ("id", &id),
                ("version", &version),
                ("reason", reason),
                ("date", &since),
            ],
        )
        .map_err(|e| w.xml(e))?;
        return Ok(w.x.finish_fragment());
    }
    w.x.start(name, &[("id", &id), ("version", &version)])
        .map_err(|e| w.xml(e))?;
    let unit = c.unit_code.as_str();
    let decided = date(c.decided_on);
    match c.action {
        Action::Penalty => {
            party(&mut w, c, "CF_")?;
            let pen = c.penalty.as_ref();
            w.text(
                "CF_WSH",
                required(c, "CF_WSH", c.decision_number.as_deref())?,
            )?;
            let violation = pen.and_then(|p| p.violation_type.as_deref());
            w.text(
                "CF_WFXW",
                required(c, "CF_WFXW", violation.or(c.cause.as_deref()))?,
            )?;
            w.text("CF_SY", required(c, "CF_SY", c.facts.as_deref())?)?;
            w.text("CF_YJ", required(c, "CF_YJ", c.legal_basis.as_deref())?)?;
            let kinds: Vec<&str> =
                pen.map_or(Vec::new(), |p| p.kinds.iter().map(|k| k.label()).collect());
            let kinds = kinds.join(";");
            w.text("CF_CFLB", required(c, "CF_CFLB", Some(kinds.as_str()))?)?;
            let content = pen.and_then(|p| p.content.as_deref());
            w.text(
                "CF_NR",
                required(c, "CF_NR", content.or(c.decision.as_deref()))?,
            )?;
            let wanyuan = |f: Option<Fen>| f.map(Fen::wanyuan_string);
            w.opt("CF_NR_FK", wanyuan(pen.and_then(|p| p.fine_fen)).as_deref())?;
            w.opt(
                "CF_NR_WFFF",
                wanyuan(pen.and_then(|p| p.confiscated_fen)).as_deref(),
            )?;
            w.opt(
                "CF_NR_ZKDX",
                pen.and_then(|p| p.license_affected.as_deref()),
            )?;
            w.text("CF_JDRQ", required(c, "CF_JDRQ", decided.as_deref())?)?;
            w.opt("CF_YXQ", date(pen.and_then(|p| p.valid_until)).as_deref())?;
            w.opt(
                "CF_GSJZQ",
                date(pen.and_then(|p| p.publicity_until)).as_deref(),
            )?;
            w.text("CF_CFJG", &c.unit_name)?;
            w.text("CF_CFJGDM", unit)?;
            w.text("CF_SJLY", &c.unit_name)?;
            w.text("CF_SJLYDM", unit)?;
            w.opt("BZ", c.remarks.as_deref())?;
        }
        Action::Licensing => {
            party(&mut w, c, "XK_")?;
            let lic = c.license.as_ref();
            w.text(
                "XK_XKWS",
                required(c, "XK_XKWS", lic.and_then(|l| l.document_name.as_deref()))?,
            )?;
            w.text(
                "XK_WSH",
                required(c, "XK_WSH", c.decision_number.as_deref())?,
            )?;
            w.opt("XK_XKLB", lic.and_then(|l| l.category).map(|k| k.label()))?;
            w.opt("XK_XKZS", lic.and_then(|l| l.certificate_name.as_deref()))?;
            w.opt("XK_XKBH", lic.map(|l| l.license_number.as_str()))?;
            w.text("XK_NR", required(c, "XK_NR", c.decision.as_deref())?)?;
            w.text("XK_JDRQ", required(c, "XK_JDRQ", decided.as_deref())?)?;
            // A licence takes effect on its decision unless the source says otherwise.
            let from = date(lic.and_then(|l| l.valid_from)).or_else(|| decided.clone());
            w.text("XK_YXQZ", required(c, "XK_YXQZ", from.as_deref())?)?;
            let to = date(lic.and_then(|l| l.valid_to));
            w.text("XK_YXQZI", required(c, "XK_YXQZI", to.as_deref())?)?;
            w.text("XK_XKJG", &c.unit_name)?;
            w.text("XK_XKJGDM", unit)?;
            w.text("XK_ZT", license_state(c))?;
            w.text("XK_LYDW", &c.unit_name)?;
            w.text("XK_LYDWDM", unit)?;
            w.opt("BZ", c.remarks.as_deref())?;
        }
        _ => {
            party(&mut w, c, "")?;
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
    w.x.end().map_err(|e| w.xml(e))?;
    Ok(w.x.finish_fragment())
}

/// The package around records already written.
fn assemble(header: &Header, records: &[&Fragment]) -> Result<Vec<u8>, PackageError> {
    let size = records.iter().map(|f| f.as_bytes().len()).sum::<usize>() + 512;
    let encode = |e: XmlError| PackageError::Encode(e.to_string());
    let mut w = XmlWriter::document(size).map_err(encode)?;
    w.start("Package", &[("xmlns", NAMESPACE)])
        .map_err(encode)?;
    w.start("Header", &[]).map_err(encode)?;
    let created = header.created_at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let count = records.len().to_string();
    for (name, value) in [
        ("PackageId", header.package_id.as_str()),
        ("SourceDivision", header.source_division.as_str()),
        ("SendingUnit", header.sending_unit.as_str()),
        ("CreatedAt", created.as_str()),
        ("RecordCount", count.as_str()),
        ("SchemaVersion", "1.0"),
    ] {
        w.element(name, value).map_err(encode)?;
    }
    w.end().map_err(encode)?;
    w.start("Records", &[]).map_err(encode)?;
    for f in records {
        w.append(f);
    }
    w.end().map_err(encode)?;
    w.end().map_err(encode)?;
    Ok(w.finish())
}

/// Builds a package (UTF-8 XML); the first record that cannot be written refuses it.
pub fn build(header: &Header, records: &[Record<'_>]) -> Result<Vec<u8>, PackageError> {
    if records.is_empty() {
        return Err(PackageError::Empty);
    }
    let fragments = records.iter().map(record).collect::<Result<Vec<_>, _>>()?;
    assemble(header, &fragments.iter().collect::<Vec<_>>())
}

/// Dead-letter code of a record the platform takes no such records of, or that lacks a field.
pub const LOCAL_INCOMPLETE: &str = "LOCAL-INCOMPLETE";
/// Dead-letter code of a record with a character XML 1.0 forbids.
pub const LOCAL_XML_CHAR: &str = "LOCAL-XML-CHAR";
/// Dead-letter code prefix of a record the platform's validator would reject: `LOCAL-` and the
/// platform's code (`LOCAL-E-FORMAT`, `LOCAL-E-USCC`, …), or `LOCAL-PACKAGE` for a record that
/// makes a package unreadable as a whole.
pub const LOCAL_PREFIX: &str = "LOCAL-";

/// A record held back from its package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    /// Its position among the records given.
    pub index: usize,
    /// The dead-letter code: [`LOCAL_INCOMPLETE`], [`LOCAL_XML_CHAR`], or [`LOCAL_PREFIX`] and
    /// the platform's code.
    pub code: String,
    /// What is wrong: the case, the field, and why.
    pub reason: String,
}

/// What [`build_checked`] made of a list of records.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The package of the records that pass, with its header; `None` when none passes.
    pub package: Option<(Header, Vec<u8>)>,
    /// Positions of the records in the package, in package order.
    pub kept: Vec<usize>,
    /// The records held back, each with its reason.
    pub held: Vec<HeldBack>,
    /// A problem the platform's validator finds with the package as a whole that no record,
    /// validated alone, explains (a fault of this builder, not of the records): the package is
    /// still sent, and the receiver's answer decides.
    pub unexplained: Option<PackageProblem>,
}

/// Builds a package of `records`, holding back every record that would fail: one that cannot
/// be written (a required field empty, a forbidden character) or that the platform's validator
/// rejects when the package is read back. `header` gives the header of the records kept (by
/// their positions), so the package id can name exactly the records it carries; it is called
/// again whenever a record is held back.
///
/// # Errors
/// [`PackageError::Encode`] only: the header could not be written.
pub fn build_checked(
    records: &[Record<'_>],
    header: &mut dyn FnMut(&[usize]) -> Header,
) -> Result<Checked, PackageError> {
    let mut held = Vec::new();
    let mut fragments: Vec<(usize, Fragment)> = Vec::with_capacity(records.len());
    for (index, r) in records.iter().enumerate() {
        match record(r) {
            Ok(f) => fragments.push((index, f)),
            Err(e) => {
                let code = match e {
                    PackageError::Unwritable { .. } => LOCAL_XML_CHAR,
                    _ => LOCAL_INCOMPLETE,
                };
                held.push(HeldBack {
                    index,
                    code: code.into(),
                    reason: e.to_string(),
                });
            }
        }
    }
    let mut unexplained = None;
    // Each round either sends what is left or holds back at least one record.
    loop {
        if fragments.is_empty() {
            held.sort_by_key(|h| h.index);
            return Ok(Checked {
                package: None,
                kept: Vec::new(),
                held,
                unexplained,
            });
        }
        let kept: Vec<usize> = fragments.iter().map(|(i, _)| *i).collect();
        let h = header(&kept);
        let body = assemble(&h, &fragments.iter().map(|(_, f)| f).collect::<Vec<_>>())?;
        let mut bad: Vec<(usize, String, String)> = Vec::new();
        match validate::parse(&body) {
            Ok(p) if p.records.len() == fragments.len() => {
                for (r, (i, _)) in p.records.iter().zip(&fragments) {
                    if let Some(problem) = &r.problem {
                        bad.push((*i, problem.code.to_string(), problem.reason.clone()));
                    }
                }
            }
            Ok(_) => {
                // Cannot happen (the validator checks the count); send and let the receiver say.
                unexplained = Some(PackageProblem::NoRecords);
            }
            Err(whole) => {
                // Which record makes the package unreadable? Each alone, in a package of one.
                for (i, f) in &fragments {
                    let alone = assemble(&h, &[f])?;
                    match validate::parse(&alone) {
                        Ok(p) => {
                            if let Some(problem) = p.records.first().and_then(|r| r.problem.clone())
                            {
                                bad.push((*i, problem.code.to_string(), problem.reason));
                            }
                        }
                        Err(e) => bad.push((*i, "PACKAGE".into(), e.to_string())),
                    }
                }
                if bad.is_empty() {
                    unexplained = Some(whole);
                }
            }
        }
        if bad.is_empty() {
            held.sort_by_key(|h| h.index);
            return Ok(Checked {
                package: Some((h, body)),
                kept,
                held,
                unexplained,
            });
        }
        for (index, code, reason) in bad {
            fragments.retain(|(i, _)| *i != index);
            held.push(HeldBack {
                index,
                code: format!("{LOCAL_PREFIX}{code}"),
                reason: format!(
                    "case {}: the platform would reject it: {reason}",
                    case_label(records[index].case)
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::golden::golden_cases;
    use crate::push::tests::upserts;

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

    /// A pushable golden penalty with a fine.
    fn penalty() -> Case {
        golden_cases()
            .into_iter()
            .find(|c| {
                c.action == Action::Penalty
                    && c.penalty.as_ref().is_some_and(|p| p.fine_fen.is_some())
                    && build(&header(), &upserts([c])).is_ok()
            })
            .expect("a golden penalty with a fine")
    }

    #[test]
    fn a_forbidden_character_is_refused_with_the_field_and_position() {
        let mut c = penalty();
        c.party.name = "某某\u{1}有限公司".into();
        let e = build(&header(), &upserts([&c])).unwrap_err();
        match &e {
            PackageError::Unwritable {
                case,
                error:
                    XmlError::Forbidden {
                        field,
                        position,
                        code,
                    },
            } => {
                assert_eq!(case, &case_label(&c));
                assert_eq!(field, "PenaltyRecord/CF_XDR_MC");
                assert_eq!((*position, *code), (3, 1));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            e.to_string().contains("CF_XDR_MC: character 3 is U+0001"),
            "{e}"
        );
        // Tab, line feed, carriage return, CJK and the astral plane are allowed, and the
        // package still validates.
        c.party.name = "某某\t有限\n公司\r𠀀😀".into();
        let xml = build(&header(), &upserts([&c])).unwrap();
        let text = String::from_utf8(xml.clone()).unwrap();
        assert!(
            text.contains("<CF_XDR_MC>某某\t有限\n公司&#13;𠀀😀</CF_XDR_MC>"),
            "{text}"
        );
        let v = violations(&text);
        assert!(v.is_empty(), "{v:?}");
        let read = validate::parse(&xml).unwrap();
        assert_eq!(read.records[0].fields["CF_XDR_MC"], c.party.name);
    }

    #[test]
    fn records_that_would_fail_are_held_back_and_the_rest_go() {
        let good = penalty();
        let mut control = good.clone();
        control.case_id = crate::model::CaseId::parse("CTRL-1").unwrap();
        control.decision = Some("罚款\u{7}".into());
        let mut long = good.clone();
        long.case_id = crate::model::CaseId::parse("LONG-1").unwrap();
        long.facts = Some("事".repeat(4001));
        let mut incomplete = good.clone();
        incomplete.case_id = crate::model::CaseId::parse("INCOMPLETE-1").unwrap();
        incomplete.legal_basis = None;
        let mut other = good.clone();
        other.case_id = crate::model::CaseId::parse("GOOD-2").unwrap();
        let records = upserts([&good, &control, &other, &long, &incomplete]);
        let mut asked: Vec<Vec<usize>> = Vec::new();
        let checked = build_checked(&records, &mut |kept| {
            asked.push(kept.to_vec());
            Header {
                package_id: format!("PKG-{}", kept.len()),
                ..header()
            }
        })
        .unwrap();
        assert_eq!(checked.kept, [0, 2]);
        assert_eq!(checked.unexplained, None);
        // The header is asked again once the over-long record is found, for the records sent.
        assert_eq!(asked, [vec![0, 2, 3], vec![0, 2]]);
        let held: Vec<(usize, &str)> = checked
            .held
            .iter()
            .map(|h| (h.index, h.code.as_str()))
            .collect();
        assert_eq!(
            held,
            [
                (1, LOCAL_XML_CHAR),
                (3, "LOCAL-E-FORMAT"),
                (4, LOCAL_INCOMPLETE)
            ]
        );
        let reason = |i: usize| checked.held[i].reason.as_str();
        assert!(
            reason(0).contains("CTRL-1") && reason(0).contains("CF_NR: character 3 is U+0007"),
            "{}",
            reason(0)
        );
        assert!(
            reason(1).contains("LONG-1") && reason(1).contains("CF_SY"),
            "{}",
            reason(1)
        );
        assert!(reason(2).contains("CF_YJ"), "{}", reason(2));
        let (h, body) = checked.package.unwrap();
        assert_eq!(h.package_id, "PKG-2");
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.contains("<RecordCount>2</RecordCount>"), "{text}");
        let v = violations(&text);
        assert!(v.is_empty(), "{v:?}");
        let read = validate::parse(&body).unwrap();
        assert!(read.records.iter().all(|r| r.problem.is_none()));
        assert_eq!(read.records[1].id, record_id(&other));

        // Nothing passes: no package, every record held.
        let checked = build_checked(&records[1..2], &mut |_| header()).unwrap();
        assert!(checked.package.is_none() && checked.kept.is_empty());
        assert_eq!(checked.held.len(), 1);
    }
}
