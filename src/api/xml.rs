//! The XML form of the port API's data responses (`Accept: application/xml`), described by
//! `schemas/port-api.xsd`: each JSON member becomes an element of the same name, a null member is
//! left out, an array becomes its element with one child per item. Written with quick-xml, so
//! text is always escaped.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde_json::Value;

/// The namespace of `schemas/port-api.xsd`.
pub const NAMESPACE: &str = "urn:xianjie:port-api:1";

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

fn element(w: &mut Writer<Vec<u8>>, name: &str, v: &Value) -> std::io::Result<()> {
    match v {
        Value::Null => Ok(()),
        Value::Object(m) => {
            w.write_event(Event::Start(BytesStart::new(name)))?;
            for (k, x) in m {
                element(w, k, x)?;
            }
            w.write_event(Event::End(BytesEnd::new(name)))
        }
        Value::Array(items) => {
            w.write_event(Event::Start(BytesStart::new(name)))?;
            for x in items {
                element(w, item_name(name), x)?;
            }
            w.write_event(Event::End(BytesEnd::new(name)))
        }
        other => {
            w.write_event(Event::Start(BytesStart::new(name)))?;
            if let Some(text) = scalar(other) {
                w.write_event(Event::Text(BytesText::new(&text)))?;
            }
            w.write_event(Event::End(BytesEnd::new(name)))
        }
    }
}

/// Writes `body` as the document element `root`. Members of `body` named in `attributes` become
/// attributes of the root (e.g. `next_after` of the change feed); the rest become children.
pub fn document(root: &str, body: &Value, attributes: &[&str]) -> std::io::Result<Vec<u8>> {
    let mut w = Writer::new(Vec::with_capacity(4096));
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut start = BytesStart::new(root);
    start.push_attribute(("xmlns", NAMESPACE));
    let mut attrs = Vec::new();
    if let Value::Object(m) = body {
        for a in attributes {
            if let Some(text) = m.get(*a).and_then(scalar) {
                attrs.push((a.to_string(), text));
            }
        }
    }
    for (k, v) in &attrs {
        start.push_attribute((k.as_str(), v.as_str()));
    }
    w.write_event(Event::Start(start))?;
    match body {
        Value::Object(m) => {
            for (k, v) in m {
                if attributes.contains(&k.as_str()) {
                    continue;
                }
                match v {
                    // The root's own list: its items sit directly under the root.
                    Value::Array(items) if k == root => {
                        for x in items {
                            element(&mut w, item_name(root), x)?;
                        }
                    }
                    _ => element(&mut w, k, v)?,
                }
            }
        }
        other => element(&mut w, root, other)?,
    }
    w.write_event(Event::End(BytesEnd::new(root)))?;
    Ok(w.into_inner())
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
}
