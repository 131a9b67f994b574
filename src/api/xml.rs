//! The XML form of the port API's data responses (`Accept: application/xml`), described by
//! `schemas/port-api.xsd`: each JSON member becomes an element of the same name, a null member is
//! left out, an array becomes its element with one child per item. Written with
//! [`crate::xml_out`], so text is always escaped and a value holding a character XML 1.0 forbids
//! is refused (naming the case it belongs to and the field) instead of breaking the document.

use serde_json::{Map, Value};

use crate::xml_out::{XmlError, XmlWriter};

/// The namespace of `schemas/port-api.xsd`.
pub const NAMESPACE: &str = "urn:xianjie:port-api:1";

/// Why a value has no XML form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{error}", case.as_deref().map(|c| format!("case {c}: ")).unwrap_or_default())]
pub struct XmlAnswerError {
    /// The case the refused value belongs to (`unit/case_id`), when it is in a case.
    pub case: Option<String>,
    /// What was refused, and where in the document.
    pub error: XmlError,
}

/// The element name of one item of an array member.
fn item_name(array: &str) -> &str {
    match array {
        "cases" => "case",
        "documents" => "document",
        "kinds" => "kind",
        "inspectors" => "inspector",
        "ports" => "port",
        "changes" => "change",
        "reports" => "report",
        "details" => "detail",
        "penalty_kinds" => "kind",
        "leads" => "lead",
        "open_leads" => "lead",
        "transfers" => "case_transfer",
        "entries" => "entry",
        "deadlines" => "deadline",
        "facts" => "fact",
        "answers" => "answer",
        "notified" => "destination",
        _ => "item",
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The case an object is (or is about), from its `case_id` and `unit_code` members: what a
/// refusal names, so an operator can find the record at its source.
fn case_of(m: &Map<String, Value>) -> Option<String> {
    let id = m.get("case_id")?.as_str()?;
    Some(match m.get("unit_code").and_then(Value::as_str) {
        Some(unit) => format!("{unit}/{id}"),
        None => id.to_string(),
    })
}

/// Writes `v` as element `name`; `case` is the nearest enclosing object naming a case.
fn element<'a>(
    w: &mut XmlWriter,
    name: &str,
    v: &'a Value,
    case: Option<&'a Map<String, Value>>,
) -> Result<(), XmlAnswerError> {
    let fail = |error, case: Option<&Map<String, Value>>| XmlAnswerError {
        case: case.and_then(case_of),
        error,
    };
    match v {
        Value::Null => Ok(()),
        Value::Object(m) => {
            let case = if m.contains_key("case_id") {
                Some(m)
            } else {
                case
            };
            w.start(name, &[]).map_err(|e| fail(e, case))?;
            for (k, x) in m {
                element(w, k, x, case)?;
            }
            w.end().map_err(|e| fail(e, case))
        }
        Value::Array(items) => {
            w.start(name, &[]).map_err(|e| fail(e, case))?;
            for x in items {
                element(w, item_name(name), x, case)?;
            }
            w.end().map_err(|e| fail(e, case))
        }
        other => {
            let text = scalar(other).unwrap_or_default();
            w.element(name, &text).map_err(|e| fail(e, case))
        }
    }
}

/// Writes `body` as the document element `root`. Members of `body` named in `attributes` become
/// attributes of the root (e.g. `next_after` of the change feed); the rest become children.
///
/// # Errors
/// [`XmlAnswerError`] when a value holds a character XML 1.0 forbids: no document is written.
pub fn document(root: &str, body: &Value, attributes: &[&str]) -> Result<Vec<u8>, XmlAnswerError> {
    let fail = |error| XmlAnswerError { case: None, error };
    let mut w = XmlWriter::document(4096).map_err(fail)?;
    let mut attrs = vec![("xmlns".to_string(), NAMESPACE.to_string())];
    let top = match body {
        Value::Object(m) => Some(m),
        _ => None,
    };
    if let Some(m) = top {
        for a in attributes {
            if let Some(text) = m.get(*a).and_then(scalar) {
                attrs.push((a.to_string(), text));
            }
        }
    }
    let attrs: Vec<(&str, &str)> = attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    w.start(root, &attrs).map_err(fail)?;
    match top {
        Some(m) => {
            // A single case answered at the root (`<case>`) is named by its own members.
            let case = m.contains_key("case_id").then_some(m);
            for (k, v) in m {
                if attributes.contains(&k.as_str()) {
                    continue;
                }
                match v {
                    // The root's own list: its items sit directly under the root.
                    Value::Array(items) if k == root => {
                        for x in items {
                            element(&mut w, item_name(root), x, case)?;
                        }
                    }
                    _ => element(&mut w, k, v, case)?,
                }
            }
        }
        None => element(&mut w, root, body, None)?,
    }
    w.end().map_err(fail)?;
    Ok(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_become_elements_nulls_vanish_and_text_is_escaped() {
        let v = serde_json::json!({
            "cases": [{"title": "A<&>\"B", "cause": null, "penalty": {"kinds": ["fine", "warning"], "fine_fen": 100}}],
            "next": null
        });
        let xml = String::from_utf8(document("cases", &v, &[]).unwrap()).unwrap();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert!(
            xml.contains("<cases xmlns=\"urn:xianjie:port-api:1\"><case>"),
            "{xml}"
        );
        assert!(
            xml.contains("<title>A&lt;&amp;&gt;&quot;B</title>"),
            "{xml}"
        );
        assert!(!xml.contains("cause") && !xml.contains("<next>"), "{xml}");
        assert!(
            xml.contains("<kinds><kind>fine</kind><kind>warning</kind></kinds>"),
            "{xml}"
        );
        let c = serde_json::json!({"changes": [], "next_after": 7});
        let xml = String::from_utf8(document("changes", &c, &["next_after"]).unwrap()).unwrap();
        assert!(
            xml.contains("<changes xmlns=\"urn:xianjie:port-api:1\" next_after=\"7\"></changes>"),
            "{xml}"
        );
    }

    #[test]
    fn a_forbidden_character_is_refused_naming_the_case_and_field() {
        let case = |id: &str, name: &str| {
            serde_json::json!({"unit_code": "11320102471049746T", "case_id": id,
                "party": {"name": name, "kind": "legal_person"}, "title": "t"})
        };
        // In a list, in a single case, and in the change feed's nested case.
        let list = serde_json::json!({"cases": [case("C-1", "甲"), case("C-2", "乙\u{1}公司")], "next": null});
        let single = case("C-2", "乙\u{1}公司");
        let changes = serde_json::json!({"changes": [{"seq": 4, "unit_code": "11320102471049746T",
            "case_id": "C-2", "version": 1, "case": case("C-2", "乙\u{1}公司")}], "next_after": 4});
        for (root, v, attrs, field) in [
            ("cases", &list, &[][..], "cases/case/party/name"),
            ("case", &single, &[][..], "case/party/name"),
            (
                "changes",
                &changes,
                &["next_after"][..],
                "changes/change/case/party/name",
            ),
        ] {
            let e = document(root, v, attrs).unwrap_err();
            assert_eq!(e.case.as_deref(), Some("11320102471049746T/C-2"), "{root}");
            assert_eq!(
                e.error,
                XmlError::Forbidden {
                    field: field.into(),
                    position: 2,
                    code: 1
                }
            );
            assert_eq!(
                e.to_string(),
                format!(
                    "case 11320102471049746T/C-2: {field}: character 2 is U+0001, which XML 1.0 does not allow"
                )
            );
        }
        // Tab, line feed, carriage return, CJK and the astral plane pass, and read back whole.
        let fine = "甲\t乙\n丙\r丁 𠀀😀";
        let xml = document("case", &case("C-3", fine), &[]).unwrap();
        let text = String::from_utf8(xml).unwrap();
        assert!(
            text.contains("<name>甲\t乙\n丙&#13;丁 𠀀😀</name>"),
            "{text}"
        );
        oxml::parse(&text).expect("well-formed");
    }
}
