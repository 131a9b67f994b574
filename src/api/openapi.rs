//! The port API's OpenAPI 3.1 document: `schemas/openapi.yaml`, with `schemas/case.schema.json`
//! embedded as `components.schemas.Case`, served as JSON at `GET /openapi.json`. Both files are
//! compiled in, so the served document is always the one the binary was built with.

use std::sync::OnceLock;

use serde_json::Value;

const YAML: &str = include_str!("../../schemas/openapi.yaml");
const CASE_SCHEMA: &str = include_str!("../../schemas/case.schema.json");

/// The document, as JSON (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        // Both inputs are compiled in and checked by tests; a broken one serves `null` rather
        // than taking the gateway down.
        let mut doc: Value = serde_yaml::from_str(YAML).unwrap_or(Value::Null);
        let case: Value = serde_json::from_str(CASE_SCHEMA).unwrap_or(Value::Null);
        if let Some(slot) = doc.pointer_mut("/components/schemas/Case") {
            *slot = case;
        }
        doc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_parses_and_lists_every_route() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["schemas"]["Case"]["title"], "Case (执法办件)",
            "the case schema is embedded"
        );
        // Paths both ways here; each path's methods against the server's 405 `Allow` in
        // tests/api.rs.
        let routed = super::super::routes::paths();
        for path in &routed {
            assert!(
                doc["paths"][path].is_object(),
                "{path} is routed but missing from schemas/openapi.yaml"
            );
        }
        for path in doc["paths"].as_object().expect("paths").keys() {
            assert!(
                routed.contains(&path.as_str()),
                "{path} is in schemas/openapi.yaml but not routed"
            );
        }
        // Every $ref inside the document resolves.
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r);
                    }
                    m.values().for_each(|x| refs(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(doc, &mut all);
        for r in all.iter().filter(|r| r.starts_with("#/")) {
            assert!(doc.pointer(&r[1..]).is_some(), "unresolved {r}");
        }
    }
}
