//! Quarterly statistics benchmark: `XJ_BENCH_CASES` cases (default 1,000,000) in a real store,
//! spread over 13 units and the four quarters of 2025; then every unit's report for one quarter
//! is computed (`reports::compute::compute`). Run with `cargo bench --bench reports`; record
//! results in BENCHMARKS.md.

use std::time::Instant;

use chrono::NaiveDate;
use xianjie::model::{Case, CaseId, Quarter, Uscc};
use xianjie::store::Store;

/// The allocator the `xianjie` binary uses (see `src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1);
}

fn golden_cases() -> Vec<Case> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/sunshine/cases");
    let text = std::fs::read_to_string(root.join("mixed.csv.expected.json"))
        .unwrap_or_else(|e| fail("golden case", e));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| fail("golden", e));
    serde_json::from_value(v["cases"].clone()).unwrap_or_else(|e| fail("golden", e))
}

fn main() {
    let n: usize = std::env::var("XJ_BENCH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| fail("tempdir", e));
    let store = Store::open(tmp.path()).unwrap_or_else(|e| fail("store", e));
    let adapter = xianjie::ingest::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/sunshine"),
    )
    .unwrap_or_else(|_| fail("adapter", "sunshine"));
    let units: Vec<(Uscc, String)> = adapter
        .units
        .iter()
        .map(|(u, name)| (u.clone(), name.clone()))
        .collect();
    let golden = golden_cases();
    let start = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_else(|| fail("date", "2025-01-01"));
    let started = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n {
        let mut c = golden[i % golden.len()].clone();
        let (unit, name) = &units[i % units.len()];
        c.unit_code = unit.clone();
        c.unit_name = name.clone();
        c.case_id = CaseId::parse(&format!("B-{i:08}")).unwrap_or_else(|e| fail("id", e));
        c.decided_on = Some(start + chrono::Duration::days((i % 365) as i64));
        c.filed_on = c.decided_on;
        c.closed_on = c.decided_on;
        batch.push(c);
        if batch.len() == 1000 {
            store
                .upsert_cases(&batch, &|_, _| Vec::new())
                .unwrap_or_else(|e| fail("upsert", e));
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store
            .upsert_cases(&batch, &|_, _| Vec::new())
            .unwrap_or_else(|e| fail("upsert", e));
    }
    store.flush().unwrap_or_else(|e| fail("flush", e));
    println!(
        "stored {n} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let q = Quarter::parse("2025Q3").unwrap_or_else(|e| fail("quarter", e));
    let cal = xianjie::push::calendar::WorkCalendar::official()
        .unwrap_or_else(|e| fail("calendar", format!("{e:?}")));
    for run in 1..=3 {
        let started = Instant::now();
        let reports = xianjie::reports::compute::compute(&store, q, &cal, chrono::Utc::now())
            .unwrap_or_else(|e| fail("compute", e));
        let secs = started.elapsed().as_secs_f64();
        let total: u64 = reports.iter().map(|r| r.summary.total).sum();
        println!(
            "run {run}: {} unit reports for {q} ({total} cases of {n}) computed in {secs:.2} s (target ≤ 5 s)",
            reports.len()
        );
    }
}
