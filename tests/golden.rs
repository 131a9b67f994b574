//! Every adapter's golden cases, and every canonical case they produce checked against
//! `schemas/case.schema.json`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use xianjie::ingest::{golden, load_all};

#[test]
fn every_golden_case_matches_and_every_case_fits_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let adapters = load_all(&root.join("adapters")).expect("shipped adapters are valid");
    assert_eq!(adapters.len(), 3);
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("schemas/case.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let mut checked = 0;
    for a in &adapters {
        let results = golden::check(a, false);
        assert!(!results.is_empty(), "{} has no golden cases", a.name);
        for r in &results {
            assert!(
                r.mismatch.is_none(),
                "{}: {}",
                r.input.display(),
                r.mismatch.as_deref().unwrap_or("")
            );
            let out = golden::run(a, &r.input);
            let cases = out["cases"].as_array().unwrap();
            assert!(
                !cases.is_empty() && !out["rejects"].as_array().unwrap().is_empty(),
                "golden inputs exercise both"
            );
            for c in cases {
                let errors: Vec<String> = validator
                    .iter_errors(c)
                    .map(|e| format!("{e} at {}", e.instance_path()))
                    .collect();
                assert!(
                    errors.is_empty(),
                    "{}: {} violates the schema: {errors:?}",
                    a.name,
                    c["case_id"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 10);
    // The schema is not vacuous: a broken record fails it.
    let mut bad = golden::run(&adapters[0], &golden::inputs(&adapters[0])[0])["cases"][0].clone();
    bad["action"] = "reward".into();
    assert!(!validator.is_valid(&bad));
    bad["action"] = "penalty".into();
    bad["unit_code"] = "123".into();
    assert!(!validator.is_valid(&bad));
}
