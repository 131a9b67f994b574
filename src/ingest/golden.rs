//! Golden cases: `adapters/<system>/cases/<name>.<ext>` inputs with their expected canonical output in
//! `<name>.<ext>.expected.json`. Run by `xianjie adapters check` and by `cargo test`, so an adapter
//! change that alters what a source file becomes is seen at once.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use super::adapter::Adapter;
use super::decode;
use super::run::Sifter;

/// The date golden cases are validated against, so they do not change with the calendar.
pub fn golden_today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or(NaiveDate::MIN)
}

/// The result of one golden case.
#[derive(Debug, Clone)]
pub struct GoldenResult {
    /// Input file.
    pub input: PathBuf,
    /// `None` when it matches; otherwise what differs.
    pub mismatch: Option<String>,
}

/// The golden inputs of an adapter.
pub fn inputs(adapter: &Adapter) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(adapter.dir.join("cases"))
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file() && !p.to_string_lossy().ends_with(".expected.json"));
    v.sort();
    v
}

fn expected_path(input: &Path) -> PathBuf {
    let mut s = input.as_os_str().to_owned();
    s.push(".expected.json");
    PathBuf::from(s)
}

/// What an input becomes: refused, or its cases and rejects, with volatile fields normalised.
pub fn run(adapter: &Adapter, input: &Path) -> Value {
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let limits = super::Limits::default();
    let decoder = decode::Decoder::in_process(limits.clone());
    let file_limit = limits.file_bytes_for(&adapter.name);
    let records = match decoder.open(input, &adapter.format, &adapter.columns, file_limit) {
        Ok(r) => r,
        Err(e) => return json!({ "refused": e.to_string() }),
    };
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    let mut sifter = Sifter::new(adapter, &name, input, epoch, golden_today(), &limits);
    let mut cases = Vec::new();
    let mut rejects = Vec::new();
    for item in records {
        match sifter.sift(item) {
            Ok(mut c) => {
                c.version = 1;
                cases.push(serde_json::to_value(&c).unwrap_or(Value::Null));
            }
            Err(q) => rejects.push(json!({ "location": q.location, "reasons": q.reasons })),
        }
    }
    json!({ "cases": cases, "rejects": rejects })
}

/// Runs every golden case of an adapter; with `bless`, writes the current output as expected.
pub fn check(adapter: &Adapter, bless: bool) -> Vec<GoldenResult> {
    inputs(adapter)
        .into_iter()
        .map(|input| {
            let got = run(adapter, &input);
            let pretty = serde_json::to_string_pretty(&got).unwrap_or_default() + "\n";
            let exp_path = expected_path(&input);
            if bless {
                let mismatch = std::fs::write(&exp_path, &pretty)
                    .err()
                    .map(|e| format!("cannot write {}: {e}", exp_path.display()));
                return GoldenResult { input, mismatch };
            }
            let mismatch = match std::fs::read_to_string(&exp_path) {
                Err(e) => Some(format!(
                    "cannot read {}: {e} (create it with `xianjie adapters check --bless`)",
                    exp_path.display()
                )),
                Ok(expected) => {
                    let exp: Value = serde_json::from_str(&expected).unwrap_or(Value::Null);
                    (exp != got).then(|| {
                        first_difference(
                            &serde_json::to_string_pretty(&exp).unwrap_or_default(),
                            &pretty,
                        )
                    })
                }
            };
            GoldenResult { input, mismatch }
        })
        .collect()
}

fn first_difference(expected: &str, got: &str) -> String {
    let (e, g): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), got.lines().collect());
    let i = e
        .iter()
        .zip(&g)
        .position(|(a, b)| a != b)
        .unwrap_or(e.len().min(g.len()));
    format!(
        "first difference at line {}:\n  expected: {}\n  got:      {}",
        i + 1,
        e.get(i).copied().unwrap_or("(end)"),
        g.get(i).copied().unwrap_or("(end)")
    )
}
/// Every case the golden cases of the repository's adapters expect (`adapters/*/cases/*.expected.json`):
/// realistic, valid cases of every kind, for tests elsewhere.
#[cfg(test)]
pub(crate) fn golden_cases() -> Vec<crate::model::Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    let mut out = Vec::new();
    for adapter in ["sunshine", "market-inspection", "tax"] {
        for input in inputs(&super::load(&root.join(adapter)).expect("adapter loads")) {
            let text = std::fs::read_to_string(expected_path(&input)).expect("expected output");
            let v: Value = serde_json::from_str(&text).expect("expected output is JSON");
            for c in v["cases"].as_array().expect("cases") {
                out.push(serde_json::from_value(c.clone()).expect("a case"));
            }
        }
    }
    out
}
