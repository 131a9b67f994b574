//! The package validator read against packages the gateway writes from the golden cases:
//! clean packages, each rule broken, damaged and generated packages, and libxml2's opinion.

use chrono::{NaiveDate, TimeZone as _, Utc};

use super::{golden_cases, header, pushable};
use crate::model::{Action, Case};
use crate::push::package::{self, Op, Record};
use crate::push::validate::*;

/// Every pushable golden case as an upsert, then a retraction of the first.
fn golden_package(package_id: &str) -> Vec<u8> {
    let cases = golden_cases();
    let cases = pushable(&cases);
    let mut records: Vec<Record<'_>> = cases
        .iter()
        .map(|c| Record {
            op: Op::Upsert,
            case: c,
        })
        .collect();
    records.push(Record {
        op: Op::Retract,
        case: cases[0],
    });
    package::build(&header(package_id), &records).unwrap()
}

fn golden() -> String {
    String::from_utf8(golden_package("PKG-golden-1")).unwrap()
}

fn clean(xml: &[u8]) -> Package {
    let p = parse(xml).unwrap_or_else(|e| panic!("{e}"));
    for r in &p.records {
        assert_eq!(r.problem, None, "record {}", r.id);
    }
    p
}

/// The first `<name>…</name>` in `xml`, with its tags.
fn element<'x>(xml: &'x str, name: &str) -> &'x str {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{name}>"));
    let end = start + xml[start..].find(&close).unwrap() + close.len();
    &xml[start..end]
}

/// The first of the `names` elements in `xml`: its name and the element with its tags.
fn first_of<'x>(xml: &'x str, names: &[&'static str]) -> (&'static str, &'x str) {
    names
        .iter()
        .filter_map(|n| xml.find(&format!("<{n}>")).map(|at| (at, *n)))
        .min()
        .map(|(_, n)| (n, element(xml, n)))
        .unwrap_or_else(|| panic!("none of {names:?}"))
}

/// The text of an element found by [`element`] or [`first_of`].
fn inner<'x>(name: &str, element: &'x str) -> &'x str {
    &element[name.len() + 2..element.len() - name.len() - 3]
}

fn set(xml: &str, name: &str, value: &str) -> String {
    xml.replacen(element(xml, name), &format!("<{name}>{value}</{name}>"), 1)
}

#[test]
fn golden_packages_parse_without_problems() {
    let cases = golden_cases();
    let cases = pushable(&cases);
    for a in [Action::Penalty, Action::Licensing, Action::Inspection] {
        assert!(cases.iter().any(|c| c.action == a), "no golden {a:?}");
    }
    assert!(
        cases
            .iter()
            .any(|c| matches!(c.party.id, Some(crate::model::PartyId::Resident(_)))),
        "no golden natural person with a resident ID"
    );
    let p = clean(&golden_package("PKG-golden-1"));
    assert_eq!(p.header.package_id, "PKG-golden-1");
    assert_eq!(p.header.source_division, "320102");
    assert_eq!(p.header.sending_unit, "91350200776049653A");
    assert_eq!(
        p.header.created_at.to_rfc3339(),
        "2026-11-27T08:00:00+00:00"
    );
    assert_eq!(p.header.record_count, cases.len() as u64 + 1);
    assert_eq!(p.records.len(), cases.len() + 1);
    for (r, c) in p.records.iter().zip(&cases) {
        assert_eq!(r.id, package::record_id(c));
        assert_eq!(r.version, c.version);
        assert_eq!(r.op, RecordOp::Upsert);
        let kind = match c.action {
            Action::Penalty => RecordKind::Penalty,
            Action::Licensing => RecordKind::License,
            _ => RecordKind::Inspection,
        };
        assert_eq!(r.kind, Some(kind));
        let name = match kind {
            RecordKind::Penalty => "CF_XDR_MC",
            RecordKind::License => "XK_XDR_MC",
            RecordKind::Inspection => "XDR_MC",
        };
        assert_eq!(r.fields.get(name), Some(&c.party.name));
    }
    let last = p.records.last().unwrap();
    assert_eq!(last.op, RecordOp::Retract);
    assert_eq!(last.id, package::record_id(cases[0]));
    // A retraction says only why and since when.
    let (reason, since) = package::retraction(cases[0]);
    assert_eq!(last.fields.len(), 2, "{:?}", last.fields);
    assert_eq!(last.fields["reason"], reason);
    assert_eq!(last.fields["date"], since);
    // One record per package, too.
    for c in &cases {
        let xml = package::build(
            &header("PKG-one"),
            &[Record {
                op: Op::Upsert,
                case: c,
            }],
        )
        .unwrap();
        assert_eq!(clean(&xml).records.len(), 1);
    }
}

#[test]
fn other_spellings_the_schema_allows_parse_clean() {
    let xml = golden();
    // Prefixed names, comments, CDATA, references, a BOM, whitespace where allowed.
    let prefixed = xml
        .replace('<', "<p:")
        .replace("<p:/", "</p:")
        .replace("<p:?xml", "<?xml")
        .replacen("xmlns=", "xmlns:p=", 1);
    clean(prefixed.as_bytes());
    let name = element(&xml, "CF_XDR_MC");
    let inner = &name["<CF_XDR_MC>".len()..name.len() - "</CF_XDR_MC>".len()];
    let (a, b) = inner.split_at(inner.char_indices().nth(1).unwrap().0);
    let spelled = xml.replacen(
        name,
        &format!(
            "<CF_XDR_MC><!-- c --><![CDATA[{a}]]>{}</CF_XDR_MC>",
            b.replace('万', "&#19975;")
        ),
        1,
    );
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(
        spelled
            .replace("<RecordCount>", "<RecordCount> +0")
            .as_bytes(),
    );
    let p = clean(&bom);
    let named = p.records.iter().find_map(|r| r.fields.get("CF_XDR_MC"));
    assert_eq!(named.map(String::as_str), Some(inner));
    let fine = set(&xml, "CF_NR_FK", " 1.1234560 ");
    clean(fine.as_bytes());
    clean(
        xml.replacen("<SchemaVersion>1.0</SchemaVersion>", "<SchemaVersion/>", 1)
            .as_bytes(),
    );
    let p = clean(set(&xml, "CreatedAt", "2026-11-27T16:00:00.5+08:00").as_bytes());
    assert_eq!(
        p.header.created_at.to_rfc3339(),
        "2026-11-27T08:00:00.500+00:00"
    );
}

/// Applies `tamper`, parses, and returns the first record problem.
fn record_problem(xml: &str) -> RecordProblem {
    let p = parse(xml.as_bytes()).unwrap_or_else(|e| panic!("package refused: {e}"));
    let bad: Vec<&ParsedRecord> = p.records.iter().filter(|r| r.problem.is_some()).collect();
    assert_eq!(bad.len(), 1, "exactly one record is rejected");
    bad[0].problem.clone().unwrap()
}

/// Each rule, broken once: the code and a reason that names the element.
fn tampered() -> Vec<(&'static str, String, &'static str, &'static str, bool)> {
    let xml = golden();
    let wsh = element(&xml, "CF_WSH").to_string();
    let wfxw = element(&xml, "CF_WFXW").to_string();
    let (shxym_name, shxym) = first_of(&xml, &["CF_XDR_SHXYM", "XK_XDR_SHXYM", "XDR_SHXYM"]);
    let shxym = shxym.to_string();
    let code = inner(shxym_name, &shxym);
    let last = code.chars().last().unwrap();
    let wrong = if last == '0' { '1' } else { '0' };
    let bad_uscc = format!("{}{wrong}", &code[..17]);
    let (zjhm_name, zjhm) = first_of(&xml, &["CF_XDR_ZJHM", "XK_XDR_ZJHM", "XDR_ZJHM"]);
    let zjhm = zjhm.to_string();
    let zjlx_name = &zjhm_name[..zjhm_name.len() - 2];
    let zjlx_name: &'static str = ["CF_XDR_ZJLX", "XK_XDR_ZJLX", "XDR_ZJLX"]
        .into_iter()
        .find(|n| n.starts_with(zjlx_name))
        .unwrap();
    let id = inner(zjhm_name, &zjhm);
    let bad_id = format!("{}{}", &id[..17], if id.ends_with('0') { '1' } else { '0' });
    let first_record_start = xml.find("<Records>").unwrap() + "<Records>".len();
    let first_record_end = xml[first_record_start..].find('>').unwrap() + first_record_start;
    let in_records = |from: &str, to: &str| {
        let at = xml.find("<Records>").unwrap();
        format!("{}{}", &xml[..at], xml[at..].replacen(from, to, 1))
    };
    let retraction = {
        let at = xml.find("<Retraction ").unwrap();
        let end = at + xml[at..].find("/>").unwrap();
        (at, end)
    };
    let no_kind = {
        let tag = &xml[retraction.0..retraction.1];
        let kind = tag
            .split("kind=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        xml.replacen(tag, &tag.replacen(&format!("kind=\"{kind}\" "), "", 1), 1)
    };
    let first_version = {
        let head = &xml[first_record_start..first_record_end];
        head.split("version=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    // (what, package, code, the reason names, whether the XSD alone forbids it)
    vec![
        (
            "missing CF_WSH",
            xml.replacen(&wsh, "", 1),
            E_REQUIRED,
            "CF_WSH",
            true,
        ),
        (
            "missing CF_XDR_MC",
            xml.replacen(element(&xml, "CF_XDR_MC"), "", 1),
            E_REQUIRED,
            "CF_XDR_MC",
            true,
        ),
        (
            "missing XK_XKWS",
            xml.replacen(element(&xml, "XK_XKWS"), "", 1),
            E_REQUIRED,
            "XK_XKWS",
            true,
        ),
        (
            "ZJLX without ZJHM",
            xml.replacen(&zjhm, "", 1),
            E_REQUIRED,
            zjhm_name,
            false,
        ),
        (
            "罚款 without its amount",
            xml.replacen(element(&xml, "CF_NR_FK"), "", 1),
            E_REQUIRED,
            "CF_NR_FK",
            false,
        ),
        (
            "licence state 3",
            set(&xml, "XK_ZT", "3"),
            E_CODE,
            "XK_ZT",
            true,
        ),
        (
            "licence ends before it begins",
            set(&xml, "XK_YXQZI", "1999-12-31"),
            E_FORMAT,
            "XK_YXQZI",
            false,
        ),
        ("retraction without kind", no_kind, E_REQUIRED, "kind", true),
        (
            "7 decimals",
            set(&xml, "CF_NR_FK", "1.1234567"),
            E_FORMAT,
            "CF_NR_FK",
            true,
        ),
        (
            "negative fine",
            set(&xml, "CF_NR_FK", "-0.5"),
            E_FORMAT,
            "negative",
            true,
        ),
        (
            "fine not a number",
            set(&xml, "CF_NR_FK", "1e3"),
            E_FORMAT,
            "CF_NR_FK",
            true,
        ),
        (
            "no 29 Feb 2023",
            set(&xml, "CF_JDRQ", "2023-02-29"),
            E_FORMAT,
            "CF_JDRQ",
            true,
        ),
        (
            "date with a space",
            set(&xml, "JC_RQ", " 2024-01-01"),
            E_FORMAT,
            "JC_RQ",
            true,
        ),
        (
            "date as text",
            set(&xml, "XK_JDRQ", "2024年1月1日"),
            E_FORMAT,
            "XK_JDRQ",
            true,
        ),
        (
            "empty text",
            set(&xml, "CF_YJ", ""),
            E_FORMAT,
            "CF_YJ",
            true,
        ),
        (
            "long text",
            set(&xml, "CF_NR", &"长".repeat(4001)),
            E_FORMAT,
            "4001 characters",
            true,
        ),
        (
            "USCC pattern",
            set(&xml, "CF_CFJGDM", "9135020077604965"),
            E_FORMAT,
            "CF_CFJGDM",
            true,
        ),
        (
            "bad id",
            in_records(" id=\"XJ-", " id=\"XJ bad "),
            E_FORMAT,
            "id:",
            true,
        ),
        (
            "version 0",
            in_records(&format!("version=\"{first_version}\""), "version=\"0\""),
            E_FORMAT,
            "version",
            true,
        ),
        (
            "party category",
            set(&xml, "CF_XDR_LB", "法人"),
            E_CODE,
            "CF_XDR_LB",
            true,
        ),
        (
            "result code 15",
            set(&xml, "JC_JGDM", "15"),
            E_CODE,
            "JC_JGDM",
            true,
        ),
        (
            "ID type",
            set(&xml, zjlx_name, "驾驶证"),
            E_CODE,
            zjlx_name,
            true,
        ),
        (
            "ID type the standard does not list",
            set(&xml, zjlx_name, "统一社会信用代码"),
            E_CODE,
            zjlx_name,
            true,
        ),
        (
            "penalty kind",
            set(&xml, "CF_CFLB", "罚金"),
            E_CODE,
            "CF_CFLB",
            true,
        ),
        (
            "penalty kinds joined by a comma",
            set(&xml, "CF_CFLB", "警告,罚款"),
            E_CODE,
            "CF_CFLB",
            true,
        ),
        (
            "licence category",
            set(&xml, "XK_XKLB", "特殊"),
            E_CODE,
            "XK_XKLB",
            true,
        ),
        (
            "retraction kind",
            xml.replacen("<Retraction kind=\"", "<Retraction kind=\"X", 1),
            E_CODE,
            "kind",
            true,
        ),
        (
            "USCC check",
            xml.replacen(
                &shxym,
                &format!("<{shxym_name}>{bad_uscc}</{shxym_name}>"),
                1,
            ),
            E_USCC,
            shxym_name,
            false,
        ),
        (
            "authority USCC check",
            set(&xml, "CF_CFJGDM", &bad_uscc),
            E_USCC,
            "CF_CFJGDM",
            false,
        ),
        (
            "resident ID check",
            xml.replacen(&zjhm, &format!("<{zjhm_name}>{bad_id}</{zjhm_name}>"), 1),
            E_ID,
            zjhm_name,
            false,
        ),
        (
            "swapped",
            xml.replacen(&format!("{wsh}{wfxw}"), &format!("{wfxw}{wsh}"), 1),
            E_ORDER,
            "out of order",
            true,
        ),
        (
            "repeated",
            xml.replacen(&wfxw, &format!("{wfxw}{wfxw}"), 1),
            E_ORDER,
            "CF_WFXW: repeated",
            true,
        ),
        (
            "unknown element",
            xml.replacen(&wsh, &format!("{wsh}<CF_XX>x</CF_XX>"), 1),
            E_ORDER,
            "CF_XX",
            true,
        ),
        (
            "nested element",
            set(&xml, "CF_YJ", "a<b>c</b>"),
            E_ORDER,
            "CF_YJ",
            true,
        ),
        (
            "attribute on a field",
            xml.replacen("<CF_YJ>", "<CF_YJ lang=\"zh\">", 1),
            E_ORDER,
            "CF_YJ",
            true,
        ),
        (
            "text between elements",
            xml.replacen(&wsh, &format!("{wsh}stray"), 1),
            E_ORDER,
            "character data",
            true,
        ),
        (
            "retraction attribute",
            xml.replacen("<Retraction ", "<Retraction note=\"\" ", 1),
            E_ORDER,
            "note",
            true,
        ),
        (
            "retraction with text",
            format!(
                "{}> </Retraction>{}",
                &xml[..retraction.1],
                &xml[retraction.1 + 2..]
            ),
            E_ORDER,
            "Retraction",
            true,
        ),
        (
            "extra record attribute",
            in_records(" version=\"", " extra=\"1\" version=\""),
            E_ORDER,
            "extra",
            true,
        ),
        (
            "foreign element",
            xml.replacen(
                &wsh,
                &format!("{wsh}<x:CF_SY xmlns:x=\"urn:other\">y</x:CF_SY>"),
                1,
            ),
            E_ORDER,
            "CF_SY",
            true,
        ),
    ]
}

#[test]
fn each_rule_broken_gives_its_code_and_names_the_element() {
    for (what, xml, code, says, _) in tampered() {
        let p = record_problem(&xml);
        assert_eq!(p.code, code, "{what}: {}", p.reason);
        assert!(
            p.reason.contains(says),
            "{what}: {:?} lacks {says:?}",
            p.reason
        );
    }
    // Personal ID numbers stay masked in reasons.
    let xml = golden();
    let (name, zjhm) = first_of(&xml, &["CF_XDR_ZJHM", "XK_XDR_ZJHM", "XDR_ZJHM"]);
    let id = inner(name, zjhm);
    let bad = format!("{}{}", &id[..17], if id.ends_with('0') { '1' } else { '0' });
    let p = record_problem(&xml.replacen(zjhm, &format!("<{name}>{bad}</{name}>"), 1));
    assert!(!p.reason.contains(&bad[6..14]), "{}", p.reason);
}

#[test]
fn an_unknown_record_element_is_rejected_alone() {
    let xml = golden().replacen(
        "<Records>",
        "<Records><OtherRecord id=\"X-1\" version=\"3\"><A>b</A></OtherRecord>",
        1,
    );
    let xml = xml.replacen(
        &format!(
            "<RecordCount>{}</RecordCount>",
            parse(golden().as_bytes()).unwrap().records.len()
        ),
        &format!(
            "<RecordCount>{}</RecordCount>",
            parse(golden().as_bytes()).unwrap().records.len() + 1
        ),
        1,
    );
    let p = parse(xml.as_bytes()).unwrap();
    let r = &p.records[0];
    assert_eq!((r.id.as_str(), r.version, r.kind), ("X-1", 3, None));
    assert_eq!(r.problem.as_ref().unwrap().code, E_ORDER);
    assert!(p.records[1..].iter().all(|r| r.problem.is_none()));
}

fn refused(xml: &[u8]) -> PackageProblem {
    match parse(xml) {
        Err(e) => e,
        Ok(p) => panic!("accepted: {:?}", p.header),
    }
}

#[test]
fn package_problems_are_named() {
    let xml = golden();
    let n = parse(xml.as_bytes()).unwrap().records.len();
    let count = |k: usize| {
        xml.replacen(
            &format!("<RecordCount>{n}</RecordCount>"),
            &format!("<RecordCount>{k}</RecordCount>"),
            1,
        )
    };
    let e = refused(count(n + 2).as_bytes());
    assert_eq!(
        e,
        PackageProblem::RecordCount {
            declared: n as u64 + 2,
            found: n
        }
    );
    assert!(
        e.to_string().contains(&format!("{}", n + 2)) && e.to_string().contains(&n.to_string())
    );
    assert!(matches!(
        refused(count(0).as_bytes()),
        PackageProblem::Header {
            element: "RecordCount",
            ..
        }
    ));

    let doctype = xml.replacen("?>", "?><!DOCTYPE Package [<!ENTITY x \"y\">]>", 1);
    assert!(matches!(
        refused(doctype.as_bytes()),
        PackageProblem::Doctype { .. }
    ));
    let entity = set(&xml, "CF_YJ", "a&x;b");
    assert!(
        matches!(refused(entity.as_bytes()), PackageProblem::Entity { ref name, .. } if name == "x")
    );
    let bad_ref = set(&xml, "CF_YJ", "a&#1;b");
    assert!(matches!(
        refused(bad_ref.as_bytes()),
        PackageProblem::Malformed { .. }
    ));
    let control = set(&xml, "CF_YJ", "a\u{1}b");
    assert!(matches!(
        refused(control.as_bytes()),
        PackageProblem::Malformed { .. }
    ));

    let mut latin = xml.as_bytes().to_vec();
    let at = xml.find("XDR_MC>").unwrap() + 7;
    latin[at] = 0xFF;
    assert_eq!(refused(&latin), PackageProblem::NotUtf8 { offset: at });
    assert!(matches!(refused(b""), PackageProblem::Malformed { .. }));
    assert!(matches!(
        refused(b"\x00\x01garbage"),
        PackageProblem::Malformed { .. }
    ));
    assert!(matches!(
        refused(b"garbage"),
        PackageProblem::Malformed { .. }
    ));
    assert!(matches!(
        refused(b"{\"json\": true}"),
        PackageProblem::Malformed { .. }
    ));
    let gbk = xml.replacen("encoding=\"UTF-8\"", "encoding=\"GBK\"", 1);
    assert!(matches!(
        refused(gbk.as_bytes()),
        PackageProblem::Declaration { .. }
    ));

    let ns = xml.replacen(NAMESPACE, "urn:xianjie:province:package:2", 1);
    assert!(matches!(
        refused(ns.as_bytes()),
        PackageProblem::WrongRoot { .. }
    ));
    let no_ns = xml.replacen(&format!(" xmlns=\"{NAMESPACE}\""), "", 1);
    assert!(matches!(
        refused(no_ns.as_bytes()),
        PackageProblem::WrongRoot { .. }
    ));
    let receipt = b"<Receipt xmlns=\"urn:xianjie:province:receipt:1\"/>";
    assert!(matches!(refused(receipt), PackageProblem::WrongRoot { .. }));

    for (name, xml) in [
        (
            "SendingUnit",
            xml.replacen(element(&xml, "SendingUnit"), "", 1),
        ),
        (
            "SendingUnit",
            set(&xml, "SendingUnit", "91350200776049653B"),
        ),
        ("CreatedAt", set(&xml, "CreatedAt", "2026-11-27T08:00:00")),
        ("CreatedAt", set(&xml, "CreatedAt", "2026-11-27 08:00:00Z")),
        ("PackageId", set(&xml, "PackageId", "has space")),
        ("SourceDivision", set(&xml, "SourceDivision", "32010")),
        ("SchemaVersion", set(&xml, "SchemaVersion", "2.0")),
        ("Header", xml.replacen(element(&xml, "Header"), "", 1)),
    ] {
        match refused(xml.as_bytes()) {
            PackageProblem::Header { element, reason } => {
                assert_eq!(element, name, "{reason}")
            }
            other => panic!("{name}: {other}"),
        }
    }

    let start = xml.find("<Records>").unwrap() + "<Records>".len();
    let end = xml.find("</Records>").unwrap();
    let empty = format!("{}{}", &xml[..start], &xml[end..]);
    assert_eq!(refused(empty.as_bytes()), PackageProblem::NoRecords);
    let no_id = xml.replacen(" id=\"XJ-", " xid=\"XJ-", 1);
    assert!(matches!(
        refused(no_id.as_bytes()),
        PackageProblem::RecordIdentity { index: 1, .. }
    ));
    let records_at = xml.find("<Records>").unwrap();
    let big = format!(
        "{}{}",
        &xml[..records_at],
        xml[records_at..].replacen(" version=\"", " version=\"99999999999999999999", 1)
    );
    assert!(matches!(
        refused(big.as_bytes()),
        PackageProblem::RecordIdentity { .. }
    ));
    let trailing = format!("{xml}<Package/>");
    assert!(matches!(
        refused(trailing.as_bytes()),
        PackageProblem::Malformed { .. }
    ));
    let unclosed = xml.replacen("</Records>", "", 1);
    assert!(matches!(
        refused(unclosed.as_bytes()),
        PackageProblem::Malformed { .. }
    ));
    let text = xml.replacen("<Records>", "<Records>text", 1);
    assert!(matches!(
        refused(text.as_bytes()),
        PackageProblem::Structure { .. }
    ));
    let prefix =
        xml.replacen("<Records>", "<q:Records>", 1)
            .replacen("</Records>", "</q:Records>", 1);
    assert!(matches!(
        refused(prefix.as_bytes()),
        PackageProblem::Malformed { .. }
    ));
}

#[test]
fn truncated_and_damaged_packages_never_panic() {
    let xml = golden_package("PKG-fuzz");
    let len = xml.len();
    for i in 0..200 {
        let k = i * len / 200;
        assert!(
            parse(&xml[..k]).is_err(),
            "a package cut at {k} of {len} passed"
        );
    }
    let mut rng_state = 0x2545F4914F6CDD1Du64;
    for _ in 0..400 {
        // xorshift: a fixed sequence, so a failure reproduces.
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let mut bad = xml.clone();
        let at = (rng_state % len as u64) as usize;
        let choices = b"<>&\"'/=x\xE4;#!?- ";
        bad[at] = choices[(rng_state >> 32) as usize % choices.len()];
        let _ = parse(&bad);
    }
}

/// The first `n` golden cases cycled to `n` upserts.
fn big_package(package_id: &str, n: usize) -> Vec<u8> {
    let cases = golden_cases();
    let cases = pushable(&cases);
    let records: Vec<Record<'_>> = (0..n)
        .map(|i| Record {
            op: Op::Upsert,
            case: cases[i % cases.len()],
        })
        .collect();
    package::build(&header(package_id), &records).unwrap()
}

#[test]
fn a_thousand_records_parse_quickly() {
    let xml = big_package("PKG-big", 1000);
    let start = std::time::Instant::now();
    let p = clean(&xml);
    let took = start.elapsed();
    eprintln!(
        "1000 records, {} bytes: parsed in {took:?} (debug build)",
        xml.len()
    );
    assert_eq!(p.records.len(), 1000);
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
}

fn xmllint(xml: &[u8]) -> Option<bool> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("package.xml");
    std::fs::write(&file, xml).unwrap();
    let xsd = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/province/package.xsd");
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd)
        .arg(&file)
        .output()
        .ok()?;
    Some(out.status.success())
}

#[test]
fn xmllint_agrees() {
    let xml = golden();
    let Some(ok) = xmllint(xml.as_bytes()) else {
        eprintln!("NOTE: xmllint not found; skipping the cross-check against libxml2");
        return;
    };
    assert!(ok, "xmllint refuses the golden package");
    let cases = golden_cases();
    for c in pushable(&cases) {
        let one = package::build(
            &header("PKG-one"),
            &[Record {
                op: Op::Upsert,
                case: c,
            }],
        )
        .unwrap();
        assert_eq!(xmllint(&one), Some(true));
    }
    // What the XSD itself says (not our code lists or checksums), libxml2 says too.
    for (what, bad, _, _, xsd) in tampered() {
        if xsd {
            assert_eq!(
                xmllint(bad.as_bytes()),
                Some(false),
                "xmllint passed {what}"
            );
        }
    }
    let prefixed = xml
        .replace('<', "<p:")
        .replace("<p:/", "</p:")
        .replace("<p:?xml", "<?xml")
        .replacen("xmlns=", "xmlns:p=", 1);
    assert_eq!(xmllint(prefixed.as_bytes()), Some(true));
}

/// The items the 2021 standard marks required (`shuanggongshi.md`), with the conditional one:
/// `CF_NR_FK` when the kinds name 罚款.
const REQUIRED_PENALTY: [&str; 11] = [
    "CF_XDR_MC",
    "CF_XDR_LB",
    "CF_WSH",
    "CF_SY",
    "CF_YJ",
    "CF_NR",
    "CF_JDRQ",
    "CF_CFJG",
    "CF_CFJGDM",
    "CF_SJLY",
    "CF_SJLYDM",
];
const REQUIRED_LICENSE: [&str; 12] = [
    "XK_XDR_MC",
    "XK_XDR_LB",
    "XK_XKWS",
    "XK_WSH",
    "XK_NR",
    "XK_JDRQ",
    "XK_YXQZ",
    "XK_YXQZI",
    "XK_XKJG",
    "XK_XKJGDM",
    "XK_LYDW",
    "XK_LYDWDM",
];

/// What the standard item `item` of a record of `c` must hold, from the canonical record
/// alone: `None` when the source does not have it.
fn standard_item(c: &Case, item: &str) -> Option<String> {
    use crate::model::{PartyId, PartyKind};
    let day = |d: Option<NaiveDate>| d.map(|d| d.to_string());
    let p = &c.party;
    let organisation = p.kind != PartyKind::NaturalPerson;
    let pen = c.penalty.as_ref();
    let lic = c.license.as_ref();
    if item == "BZ" {
        return c.remarks.clone().filter(|v| !v.is_empty());
    }
    let (_, name) = item.split_once('_')?;
    let v = match name {
        "XDR_MC" => Some(p.name.clone()),
        "XDR_LB" => Some(
            match p.kind {
                PartyKind::NaturalPerson => "自然人",
                PartyKind::IndividualBusiness => "个体工商户",
                _ => "法人及非法人组织",
            }
            .to_string(),
        ),
        "XDR_SHXYM" => match &p.id {
            Some(PartyId::Uscc(u)) => Some(u.to_string()),
            _ => None,
        },
        "FRDB" if organisation => p.legal_representative.clone(),
        "XDR_ZJLX" | "XDR_ZJHM" => match &p.id {
            Some(id @ (PartyId::Resident(_) | PartyId::Other { .. }))
                if id.id_type() != crate::model::IdType::Other =>
            {
                Some(if name == "XDR_ZJLX" {
                    id.id_type().label().to_string()
                } else {
                    id.number().to_string()
                })
            }
            _ => None,
        },
        "WSH" => c.decision_number.clone(),
        "WFXW" => pen
            .and_then(|p| p.violation_type.clone())
            .or(c.cause.clone()),
        "SY" => c.facts.clone(),
        "YJ" => c.legal_basis.clone(),
        "CFLB" => pen.map(|p| {
            p.kinds
                .iter()
                .map(|k| k.label())
                .collect::<Vec<_>>()
                .join(";")
        }),
        "NR" if item.starts_with("CF") => {
            pen.and_then(|p| p.content.clone()).or(c.decision.clone())
        }
        "NR" => c.decision.clone(),
        "NR_FK" => pen.and_then(|p| p.fine_fen).map(|f| f.wanyuan_string()),
        "NR_WFFF" => pen
            .and_then(|p| p.confiscated_fen)
            .map(|f| f.wanyuan_string()),
        "NR_ZKDX" => pen.and_then(|p| p.license_affected.clone()),
        "JDRQ" => day(c.decided_on),
        "YXQ" => day(pen.and_then(|p| p.valid_until)),
        "GSJZQ" => day(pen.and_then(|p| p.publicity_until)),
        "CFJG" | "SJLY" | "XKJG" | "LYDW" => Some(c.unit_name.clone()),
        "CFJGDM" | "SJLYDM" | "XKJGDM" | "LYDWDM" => Some(c.unit_code.to_string()),
        "XKWS" => lic.and_then(|l| l.document_name.clone()),
        "XKLB" => lic.and_then(|l| l.category).map(|k| k.label().to_string()),
        "XKZS" => lic.and_then(|l| l.certificate_name.clone()),
        "XKBH" => lic.map(|l| l.license_number.clone()),
        // A licence takes effect on its decision unless the source says otherwise.
        "YXQZ" => day(lic.and_then(|l| l.valid_from).or(c.decided_on)),
        "YXQZI" => day(lic.and_then(|l| l.valid_to)),
        _ => None,
    };
    v.filter(|v| !v.is_empty())
}

/// Every item of the 2021 standard, in its order (the legacy party codes
/// `_GSZC`…`_SHZZ` and the legal representative's document are items the canonical record
/// does not hold: they must never appear).
const PENALTY_ITEMS: [&str; 30] = [
    "CF_XDR_MC",
    "CF_XDR_LB",
    "CF_XDR_SHXYM",
    "CF_XDR_GSZC",
    "CF_XDR_ZZJG",
    "CF_XDR_SWDJ",
    "CF_XDR_SYDW",
    "CF_XDR_SHZZ",
    "CF_FRDB",
    "CF_FR_ZJLX",
    "CF_FR_ZJHM",
    "CF_XDR_ZJLX",
    "CF_XDR_ZJHM",
    "CF_WSH",
    "CF_WFXW",
    "CF_SY",
    "CF_YJ",
    "CF_CFLB",
    "CF_NR",
    "CF_NR_FK",
    "CF_NR_WFFF",
    "CF_NR_ZKDX",
    "CF_JDRQ",
    "CF_YXQ",
    "CF_GSJZQ",
    "CF_CFJG",
    "CF_CFJGDM",
    "CF_SJLY",
    "CF_SJLYDM",
    "BZ",
];
const LICENSE_ITEMS: [&str; 28] = [
    "XK_XDR_MC",
    "XK_XDR_LB",
    "XK_XDR_SHXYM",
    "XK_XDR_GSZC",
    "XK_XDR_ZZJG",
    "XK_XDR_SWDJ",
    "XK_XDR_SYDW",
    "XK_XDR_SHZZ",
    "XK_FRDB",
    "XK_FR_ZJLX",
    "XK_FR_ZJHM",
    "XK_XDR_ZJLX",
    "XK_XDR_ZJHM",
    "XK_XKWS",
    "XK_WSH",
    "XK_XKLB",
    "XK_XKZS",
    "XK_XKBH",
    "XK_NR",
    "XK_JDRQ",
    "XK_YXQZ",
    "XK_YXQZI",
    "XK_XKJG",
    "XK_XKJGDM",
    "XK_ZT",
    "XK_LYDW",
    "XK_LYDWDM",
    "BZ",
];

#[test]
fn every_golden_decision_speaks_the_standard_items() {
    let cases = golden_cases();
    let mut sent = [0usize; 2];
    let mut with = std::collections::BTreeSet::new();
    let mut xmllint_missing = false;
    for c in &cases {
        let (items, required, slot): (&[&str], &[&str], usize) = match c.action {
            Action::Penalty => (&PENALTY_ITEMS, &REQUIRED_PENALTY, 0),
            Action::Licensing => (&LICENSE_ITEMS, &REQUIRED_LICENSE, 1),
            _ => continue,
        };
        let label = package::case_label(c);
        let xml = match package::build(
            &header("PKG-std"),
            &[Record {
                op: Op::Upsert,
                case: c,
            }],
        ) {
            Ok(xml) => xml,
            Err(package::PackageError::Missing { field, .. }) => {
                // Held back only for an item the standard requires and the source lacks.
                assert!(required.contains(&field), "{label}: held for {field}");
                assert_eq!(standard_item(c, field), None, "{label}: {field} is there");
                continue;
            }
            Err(e) => panic!("{label}: {e}"),
        };
        sent[slot] += 1;
        // Without xmllint the check against libxml2 is skipped, as in `xmllint_agrees`; CI
        // (`.ci/run`) stops before the tests when it is missing, so there it always runs.
        if let Some(ok) = xmllint(&xml) {
            assert!(ok, "{label}: xmllint refuses it");
        } else if !xmllint_missing {
            xmllint_missing = true;
            eprintln!("NOTE: xmllint not found; skipping the cross-check against libxml2");
        }
        let p = clean(&xml);
        let fields = &p.records[0].fields;
        for item in items {
            let expected = match *item {
                "XK_ZT" => Some(
                    if c.status == crate::model::CaseStatus::Revoked
                        || c.license.as_ref().and_then(|l| l.state)
                            == Some(crate::model::LicenseState::Invalid)
                    {
                        "2"
                    } else {
                        "1"
                    }
                    .to_string(),
                ),
                _ => standard_item(c, item),
            };
            assert_eq!(fields.get(*item), expected.as_ref(), "{label}: {item}");
            if expected.is_some() {
                with.insert(*item);
            }
        }
        for item in required {
            assert!(fields.contains_key(*item), "{label}: {item} missing");
        }
        let fined = c
            .penalty
            .as_ref()
            .is_some_and(|p| p.kinds.contains(&crate::model::PenaltyKind::Fine));
        if fined {
            assert!(
                fields.contains_key("CF_NR_FK"),
                "{label}: 罚款 without CF_NR_FK"
            );
        }
        // Nothing outside the standard, and no unprefixed party item.
        for k in fields.keys() {
            assert!(
                items.contains(&k.as_str()),
                "{label}: {k} is not a standard item"
            );
        }
    }
    assert!(
        sent[0] >= 3 && sent[1] >= 2,
        "golden decisions sent: {sent:?}"
    );
    // The golden cases exercise the items the canonical record gained.
    for item in [
        "CF_FRDB",
        "CF_XDR_ZJHM",
        "CF_NR_ZKDX",
        "CF_GSJZQ",
        "XK_XKWS",
        "XK_YXQZI",
        "BZ",
    ] {
        assert!(with.contains(item), "no golden case carries {item}");
    }
}

// ---- Properties --------------------------------------------------------------------

/// Mutated golden packages, and packages built from golden cases with fields perturbed:
/// the validator never panics, names offsets inside the input, keeps its own invariants,
/// and accepts every package `build_checked` sends.
mod props {
    use std::sync::LazyLock;

    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;
    use crate::proptest_support::{XML_SYNTAX, config, mutated_utf8};

    static GOLDEN: LazyLock<Vec<Case>> = LazyLock::new(|| {
        let cases = golden_cases();
        pushable(&cases).into_iter().cloned().collect()
    });
    static GOLDEN_PACKAGE: LazyLock<Vec<u8>> = LazyLock::new(|| golden_package("PKG-prop-1"));

    const CODES: [&str; 6] = [E_REQUIRED, E_FORMAT, E_CODE, E_USCC, E_ID, E_ORDER];

    /// Where a refusal says the fault is, when it says.
    fn offset(p: &PackageProblem) -> Option<u64> {
        match p {
            PackageProblem::NotUtf8 { offset } => Some(*offset as u64),
            PackageProblem::Malformed { offset, .. }
            | PackageProblem::Doctype { offset }
            | PackageProblem::Entity { offset, .. }
            | PackageProblem::Structure { offset, .. } => Some(*offset),
            _ => None,
        }
    }

    /// One field of one case set to a generated value.
    #[derive(Debug, Clone)]
    struct Perturb {
        case: Index,
        field: u8,
        text: String,
        day: i32,
        version: u64,
    }

    fn perturbs() -> impl Strategy<Value = Vec<Perturb>> {
        let text = prop_oneof![
            any::<String>(),
            "[ \t\n]{0,3}",
            "[甲乙&<>\"' a]{0,24}",
            "[a甲]{200,1100}",
            "[\u{1}\u{b}\u{fffe}\u{ffff}a]{1,4}",
        ];
        let one = (
            any::<Index>(),
            0u8..11,
            text,
            -1_000_000i32..4_000_000,
            prop_oneof![Just(0u64), any::<u64>(), 1u64..5],
        )
            .prop_map(|(case, field, text, day, version)| Perturb {
                case,
                field,
                text,
                day,
                version,
            });
        prop::collection::vec(one, 0..4)
    }

    fn perturb(c: &mut Case, p: &Perturb) {
        let v = p.text.clone();
        match p.field {
            0 => c.title = v,
            1 => c.party.name = v,
            2 => c.unit_name = v,
            3 => c.cause = Some(v),
            4 => c.facts = Some(v),
            5 => c.decision = Some(v),
            6 => c.decision_number = Some(v),
            7 => c.legal_basis = Some(v),
            8 => c.party.legal_representative = Some(v),
            9 => c.decided_on = NaiveDate::from_num_days_from_ce_opt(p.day),
            _ => c.version = p.version,
        }
    }

    proptest! {
        #![proptest_config(config(512))]

        /// A mutated package is refused at an offset inside it, or read with its counts
        /// agreeing and every record problem carrying one of the documented codes.
        #[test]
        fn mutated_packages_are_refused_inside_or_read_consistently(
            xml in mutated_utf8(&GOLDEN_PACKAGE, XML_SYNTAX, 4),
        ) {
            match parse(&xml) {
                Ok(p) => {
                    prop_assert!(!p.records.is_empty());
                    prop_assert_eq!(p.header.record_count, p.records.len() as u64);
                    for r in &p.records {
                        if let Some(problem) = &r.problem {
                            prop_assert!(CODES.contains(&problem.code), "{:?}", problem);
                            prop_assert!(!problem.reason.is_empty());
                        }
                    }
                }
                Err(e) => {
                    if let Some(at) = offset(&e) {
                        prop_assert!(at <= xml.len() as u64, "{} in {} bytes", e, xml.len());
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(config(192))]

        /// `build_checked` keeps or holds back every record, once; what it sends the
        /// validator reads whole, record by record, with nothing left unexplained.
        #[test]
        fn what_build_checked_sends_validates_record_by_record(
            picks in prop::collection::vec((any::<Index>(), prop::bool::weighted(0.2)), 1..6),
            changes in perturbs(),
        ) {
            let mut cases: Vec<Case> =
                picks.iter().map(|(i, _)| i.get(&GOLDEN).clone()).collect();
            for p in &changes {
                let n = cases.len();
                perturb(&mut cases[p.case.index(n)], p);
            }
            let records: Vec<Record<'_>> = cases
                .iter()
                .zip(&picks)
                .map(|(case, (_, retract))| Record {
                    op: if *retract { Op::Retract } else { Op::Upsert },
                    case,
                })
                .collect();
            let checked = package::build_checked(&records, &mut |kept| {
                header(&format!("PKG-prop-{}", kept.len()))
            })
            .unwrap();
            prop_assert_eq!(&checked.unexplained, &None);
            let mut seen: Vec<usize> = checked.kept.clone();
            seen.extend(checked.held.iter().map(|h| h.index));
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..records.len()).collect::<Vec<_>>());
            for h in &checked.held {
                prop_assert!(h.code.starts_with(package::LOCAL_PREFIX), "{:?}", h);
            }
            match &checked.package {
                None => prop_assert!(checked.kept.is_empty()),
                Some((_, xml)) => {
                    let p = parse(xml).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(p.records.len(), checked.kept.len());
                    for (r, &i) in p.records.iter().zip(&checked.kept) {
                        prop_assert_eq!(&r.problem, &None);
                        prop_assert_eq!(&r.id, &package::record_id(&cases[i]));
                        prop_assert_eq!(r.version, cases[i].version);
                        let op = if picks[i].1 { RecordOp::Retract } else { RecordOp::Upsert };
                        prop_assert_eq!(r.op, op);
                    }
                }
            }
        }

        /// A header the builder writes is read back as written.
        #[test]
        fn headers_round_trip(
            id in "[A-Za-z0-9._-]{1,64}",
            secs in 0i64..4_102_444_800,
            pick in any::<Index>(),
        ) {
            let mut h = header(&id);
            h.created_at = Utc.timestamp_opt(secs, 0).unwrap();
            let case = pick.get(&GOLDEN);
            let xml = package::build(&h, &[Record { op: Op::Upsert, case }]).unwrap();
            let p = parse(&xml).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(p.header.package_id, id);
            prop_assert_eq!(p.header.created_at, h.created_at);
            prop_assert_eq!(p.header.sending_unit, h.sending_unit.as_str());
            prop_assert_eq!(p.records[0].problem.clone(), None);
        }
    }
}
