//! Supervision benchmark (issue 14): a GB18030 sunshine CSV of `XJ_BENCH_ROWS` rows (default
//! 1,000,000) ingested into three fresh sled stores in one run — alone; followed by the leads
//! refresh with no rules (the party, transfer and version indexes only); followed by the refresh
//! with the starter rules (`rules/`) — then `leads rebuild` over the last store, as after a rule
//! change. Prints rows/s of each and the ratios (target: with the rules ≥ 0.9× without them;
//! rebuild ≤ 10 s over 1,000,000 cases). Run with `cargo bench --bench leads`; record the
//! figures in BENCHMARKS.md.

use std::path::Path;
use std::time::Instant;

/// The allocator the `xianjie` binary uses (see `src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use xianjie::ingest::{self, RunOptions, Summary};
use xianjie::push::calendar::WorkCalendar;
use xianjie::store::Store;
use xianjie::supervision::{Rule, leads};

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1);
}

/// Ingests `file` into a fresh store under `dir`, then refreshes the leads under `rules` (none:
/// no refresh at all); returns rows/s of the whole and the seconds of the refresh.
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
    let start = Instant::now();
    let s = ingest::ingest_file(
        adapter,
        file,
        &store,
        RunOptions::default(),
        &|_: &Summary| {},
    )
    .unwrap_or_else(|e| fail("ingest", e));
    let ingested = start.elapsed().as_secs_f64();
    let mut refresh = 0.0;
    let mut open = 0;
    if let Some(rules) = rules {
        let t = Instant::now();
        leads::refresh(&store, rules, cal, chrono::Utc::now(), &|| false)
            .unwrap_or_else(|e| fail("refresh", e));
        refresh = t.elapsed().as_secs_f64();
        open = open_leads(&store);
    }
    store.flush().unwrap_or_else(|e| fail("flush", e));
    let secs = start.elapsed().as_secs_f64();
    let rate = s.rows as f64 / secs;
    println!(
        "{label:<34} {:>9} rows in {secs:>6.2} s = {rate:>9.0} rows/s  (ingest {ingested:.2} s, refresh {refresh:.2} s, {open} leads open)",
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
        "ingest alone",
        &adapter,
        &file,
        &dir.path().join("a"),
        None,
        &cal,
    );
    let (indexed, _, _) = run(
        "ingest + refresh, no rules",
        &adapter,
        &file,
        &dir.path().join("b"),
        Some(&[]),
        &cal,
    );
    let (ruled, _, store) = run(
        "ingest + refresh, starter rules",
        &adapter,
        &file,
        &dir.path().join("c"),
        Some(&rules),
        &cal,
    );
    println!(
        "ratio with the rules / without them: {:.2} (target ≥ 0.9); with the rules / ingest alone: {:.2}",
        ruled / indexed,
        ruled / alone
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
