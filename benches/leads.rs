//! Supervision benchmark (issue 14): a GB18030 sunshine CSV of `XJ_BENCH_ROWS` rows (default
//! 1,000,000) ingested into three fresh sled stores in one run:
//! - without leads: every case stored with the workbench's indexes, its leads skipped, then the
//!   party index merged as the gateway merges it after every ingest (it is the search index:
//!   search needs it whether leads are judged or not, so it is counted on both sides);
//! - with leads and no rules: leads judged as the gateway does (on the mapping thread, stored in
//!   the case transaction), then the refresh that follows ingest (310号令 deadlines, 三项制度);
//! - with leads and the starter rules (`rules/`), the same way;
//!
//! then `leads rebuild` over the last store, as after a rule change (`XJ_BENCH_ROUNDS=N` runs the
//! three N times and prints the median ratios as well). Prints rows/s of each and
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

/// CPU seconds this process has used, user and system, all threads (sled's own included): a
/// steadier figure than wall time on a VM whose speed moves between runs. Read from
/// `/proc/self/stat` (fields 14 and 15, in USER_HZ, 100 a second on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field = |n: usize| -> f64 {
        after
            .split_whitespace()
            .nth(n - 3)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (field(14) + field(15)) / 100.0
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1);
}

/// Ingests `file` into a fresh store under `dir`, judging leads under `rules` as the gateway
/// does and refreshing them after (none: leads skipped); returns rows/s of the whole and the
/// seconds of the refresh and the CPU seconds of the whole.
fn run(
    label: &str,
    adapter: &ingest::Adapter,
    file: &Path,
    dir: &Path,
    rules: Option<&[Rule]>,
    cal: &WorkCalendar,
) -> (f64, f64, f64, Store) {
    let _ = std::process::Command::new("sync").status();
    let store = Store::open(dir).unwrap_or_else(|e| fail("store", e));
    let now = chrono::Utc::now();
    let skip = |_: &xianjie::model::Case| Some(xianjie::store::JudgedLeads::default());
    let judged = |c: &xianjie::model::Case| leads::judge_new(c, rules.unwrap_or(&[]), cal, now);
    let judge: Judge<'_> = if rules.is_some() { &judged } else { &skip };
    let opts = RunOptions {
        judge: Some(judge),
        ..RunOptions::default()
    };
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let s = ingest::ingest_file(adapter, file, &store, opts, &|_: &Summary| {})
        .unwrap_or_else(|e| fail("ingest", e));
    let ingested = start.elapsed().as_secs_f64();
    let mut refresh = 0.0;
    let mut open = 0;
    let pending = store.pending_leads(usize::MAX).map_or(0, |p| p.len());
    // The search index's own upkeep, on every side (the refresh below merges first).
    let t = Instant::now();
    store
        .merge_party_index()
        .unwrap_or_else(|e| fail("party index", e));
    let merge = t.elapsed().as_secs_f64();
    if let Some(rules) = rules {
        let t = Instant::now();
        leads::refresh(&store, rules, cal, chrono::Utc::now(), &|| false)
            .unwrap_or_else(|e| fail("refresh", e));
        refresh = t.elapsed().as_secs_f64();
        open = open_leads(&store);
    }
    store.flush().unwrap_or_else(|e| fail("flush", e));
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let rate = s.rows as f64 / secs;
    println!(
        "{label:<34} {:>9} rows in {secs:>6.2} s = {rate:>9.0} rows/s, {cpu:.1} CPU s  (ingest {ingested:.2} s, party index merge {merge:.2} s, leads refresh {refresh:.2} s of {pending} cases, {open} leads open)",
        s.rows
    );
    (rate, refresh, cpu, store)
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
    // This VM's speed moves by up to a third between runs: `XJ_BENCH_ROUNDS` rounds of the three
    // stores, each round's ratios taken within it, and the median round reported.
    let rounds: usize = std::env::var("XJ_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut ratios = Vec::new();
    let mut last = None;
    for round in 1..=rounds {
        println!("round {round} of {rounds}");
        let here = dir.path().join(format!("round-{round}"));
        // Each round starts with a different store, so that whatever a store leaves behind for
        // the next (the kernel writing its pages back) does not always fall on the same one.
        let sides: [(&str, Option<&[Rule]>); 3] = [
            ("ingest without leads", None),
            ("ingest with leads, no rules", Some(&[])),
            ("ingest with leads, starter rules", Some(&rules)),
        ];
        let (mut rates, mut cpus) = ([0.0; 3], [0.0; 3]);
        let mut store = None;
        for i in (0..3).map(|i| (i + round - 1) % 3) {
            let (label, rules) = sides[i];
            let (rate, _, cpu, s) = run(
                label,
                &adapter,
                &file,
                &here.join(i.to_string()),
                rules,
                &cal,
            );
            rates[i] = rate;
            cpus[i] = cpu;
            if i == 2 {
                store = Some(s);
            } else {
                // A 1M store takes gigabytes of disk: only the last is kept (rebuilt below).
                drop(s);
                let _ = std::fs::remove_dir_all(here.join(i.to_string()));
            }
        }
        let [alone, indexed, ruled] = rates;
        let Some(store) = store else {
            return;
        };
        println!(
            "ratios: with leads and rules / without leads {:.2} (target ≥ 0.9; in CPU time {:.2}); no rules / without leads {:.2}; with the rules / without them {:.2} (target ≥ 0.9)",
            ruled / alone,
            cpus[0] / cpus[2],
            indexed / alone,
            ruled / indexed
        );
        ratios.push([ruled / alone, cpus[0] / cpus[2], ruled / indexed]);
        // The last round's store is rebuilt below.
        if let Some((old, _)) = last.replace((here, store)) {
            let _ = std::fs::remove_dir_all(old);
        }
    }
    if rounds > 1 {
        // The median of one ratio over the rounds, and each round's.
        let column = |i: usize| {
            let mut v: Vec<f64> = ratios.iter().map(|r: &[f64; 3]| r[i]).collect();
            let each: Vec<String> = v.iter().map(|r| format!("{r:.2}")).collect();
            v.sort_by(f64::total_cmp);
            format!("{:.2} (each: {})", v[v.len() / 2], each.join(", "))
        };
        println!(
            "median of {rounds} rounds: with leads and rules / without leads {}; in CPU time {}; with the rules / without them {}",
            column(0),
            column(1),
            column(2)
        );
    }
    let Some((_, store)) = last else {
        return;
    };
    for run in 1..=2 {
        let t = Instant::now();
        leads::rebuild(&store, &rules, &cal, chrono::Utc::now(), &|| false)
            .unwrap_or_else(|e| fail("rebuild", e));
        println!(
            "leads rebuild {run}: {} cases in {:.2} s, {} leads open (target ≤ 10 s over 1,000,000)",
            store.case_count().unwrap_or_else(|e| fail("count", e)),
            t.elapsed().as_secs_f64(),
            open_leads(&store)
        );
    }
}
