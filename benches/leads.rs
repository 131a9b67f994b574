//! Supervision benchmark (issue 14): a GB18030 sunshine CSV of `XJ_BENCH_ROWS` rows (default
//! 1,000,000) ingested into three fresh sled stores in one run:
//! - without leads: every case stored with the workbench's indexes, its leads skipped;
//! - with leads and no rules: leads judged as the gateway does (on the mapping thread, stored in
//!   the case transaction), then the refresh that follows ingest (310号令 deadlines, 三项制度);
//! - with leads and the starter rules (`rules/`), the same way;
//!
//! then `leads rebuild` over the last store, as after a rule change. Prints rows/s of each and
//! the ratios (targets: with leads ≥ 0.9× without them, i.e. at most 10 % slower; with the rules
//! ≥ 0.9× without them; rebuild ≤ 10 s over 1,000,000 cases). Run with
//! `cargo bench --bench leads`; record the figures in BENCHMARKS.md.

use std::path::Path;
use std::time::Instant;

/// The allocator the `xianjie` binary uses (see `src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use xianjie::ingest::{self, Judge, RunOptions, Summary};
use xianjie::push::calendar::WorkCalendar;
use xianjie::store::Store;
use xianjie::supervision::{Rule, leads};

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1);
}

/// Ingests `file` into a fresh store under `dir`, judging leads under `rules` as the gateway
/// does and refreshing them after (none: leads skipped); returns rows/s of the whole and the
/// seconds of the refresh.
fn run(
    label: &str,
    adapter: &ingest::Adapter,
    file: &Path,
    dir: &Path,
    rules: Option<&[Rule]>,
    cal: &WorkCalendar,
) -> (f64, f64, Store) {
    let _ = std::process::Command::new("sync").status();
    let store = Store::open(dir).unwrap_or_else(|e| fail("store", e));
    let now = chrono::Utc::now();
    let skip = |_: &xianjie::model::Case| Some(Vec::new());
    let judged = |c: &xianjie::model::Case| leads::judge_new(c, rules.unwrap_or(&[]), cal, now);
    let judge: Judge<'_> = if rules.is_some() { &judged } else { &skip };
    let opts = RunOptions {
        judge: Some(judge),
        ..RunOptions::default()
    };
    let start = Instant::now();
    let s = ingest::ingest_file(adapter, file, &store, opts, &|_: &Summary| {})
        .unwrap_or_else(|e| fail("ingest", e));
    let ingested = start.elapsed().as_secs_f64();
    let mut refresh = 0.0;
    let mut open = 0;
    let pending = store.pending_leads(usize::MAX).map_or(0, |p| p.len());
    let mut merge = 0.0;
    if let Some(rules) = rules {
        let t = Instant::now();
        store
            .merge_party_index()
            .unwrap_or_else(|e| fail("party index", e));
        merge = t.elapsed().as_secs_f64();
        leads::refresh(&store, rules, cal, chrono::Utc::now(), &|| false)
            .unwrap_or_else(|e| fail("refresh", e));
        refresh = t.elapsed().as_secs_f64();
        open = open_leads(&store);
    }
    store.flush().unwrap_or_else(|e| fail("flush", e));
    let secs = start.elapsed().as_secs_f64();
    let rate = s.rows as f64 / secs;
    println!(
        "{label:<34} {:>9} rows in {secs:>6.2} s = {rate:>9.0} rows/s  (ingest {ingested:.2} s, refresh {refresh:.2} s of {pending} cases, party index merge {merge:.2} s of it, {open} leads open)",
        s.rows
    );
    (rate, refresh, store)
}

/// The leads stored open or recommended.
fn open_leads(store: &Store) -> usize {
    store
        .all_leads::<leads::Lead>()
        .filter(|l| l.as_ref().is_ok_and(|(_, l)| l.status.is_open()))
        .count()
}

fn main() {
    // `cargo test --benches` runs this binary without --bench; keep that cheap.
    let rows: u64 = std::env::var("XJ_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            1_000_000
        } else {
            2_000
        });
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail("temporary directory", e));
    let file = dir.path().join("sunshine-export.csv");
    xianjie::sample::write_sunshine_csv(&file, rows, 0.0, 42).unwrap_or_else(|e| fail("sample", e));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let adapter = ingest::load(&root.join("adapters/sunshine"))
        .unwrap_or_else(|e| fail("adapter", format!("{e:?}")));
    let rules = xianjie::supervision::load_dir(&root.join("rules"))
        .unwrap_or_else(|e| fail("rules", format!("{e:?}")));
    let cal = WorkCalendar::official().unwrap_or_else(|e| fail("calendar", format!("{e:?}")));
    println!(
        "input: {rows} sunshine rows; {} starter rules; {} cores",
        rules.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let (alone, _, _) = run(
        "ingest without leads",
        &adapter,
        &file,
        &dir.path().join("a"),
        None,
        &cal,
    );
    let (indexed, _, _) = run(
        "ingest with leads, no rules",
        &adapter,
        &file,
        &dir.path().join("b"),
        Some(&[]),
        &cal,
    );
    let (ruled, _, store) = run(
        "ingest with leads, starter rules",
        &adapter,
        &file,
        &dir.path().join("c"),
        Some(&rules),
        &cal,
    );
    println!(
        "ratios: with leads and rules / without leads {:.2} (target ≥ 0.9); no rules / without leads {:.2}; with the rules / without them {:.2} (target ≥ 0.9)",
        ruled / alone,
        indexed / alone,
        ruled / indexed
    );
    for run in 1..=2 {
        let t = Instant::now();
        leads::rebuild(&store, &rules, &cal, chrono::Utc::now(), &|| false)
            .unwrap_or_else(|e| fail("rebuild", e));
        println!(
            "leads rebuild {run}: {} cases in {:.2} s, {} leads open (target ≤ 10 s over 1,000,000)",
            store.case_count(),
            t.elapsed().as_secs_f64(),
            open_leads(&store)
        );
    }
}
