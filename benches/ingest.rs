//! Ingest benchmark: a GB18030 CSV of `XJ_BENCH_ROWS` rows (default 1,000,000) through the `sunshine`
//! adapter into a fresh sled store, then the same file again (all unchanged). Prints rows/s for both
//! and the process's peak RSS; then both again with the gateway's own decoding path, a separate
//! `xianjie decode-worker` process under the default limits.
//! Last, both ingests into a PostgreSQL store on a throwaway local cluster, when PostgreSQL is
//! installed (`XJ_BENCH_ONLY=postgres` runs only those; `XJ_BENCH_ONLY=sled` only the first two
//! and the ceiling, in `XJ_BENCH_ROUNDS` rounds that alternate the ceiling before and after the
//! ingests and end with the median of each figure). Run with `cargo bench --bench ingest`;
//! record results in BENCHMARKS.md.

use std::path::Path;

/// The allocator the `xianjie` binary uses (see `src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Instant;

use xianjie::ingest::{self, RunOptions, Summary};
use xianjie::store::Store;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds (user + system) of this process, or of the calling thread, from `/proc`: what a
/// phase costs in work, printed beside its rate. Both move with this machine's speed, which varies
/// from day to day; compare them within one session.
fn cpu_secs(of: &str) -> f64 {
    let stat = std::fs::read_to_string(of).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are the 14th and 15th fields, in clock ticks of 1/100 s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU time spent between two readings, per row, in microseconds.
fn micros_per_row(before: f64, after: f64, rows: u64) -> f64 {
    (after - before) * 1e6 / rows.max(1) as f64
}

/// One ingest with the default options: its summary and its rate in rows per second.
fn run(label: &str, adapter: &ingest::Adapter, file: &Path, store: &Store) -> (Summary, f64) {
    run_with(label, adapter, file, store, RunOptions::default())
}

/// Lets the kernel write back what earlier phases left dirty, so that each phase is measured
/// on a quiet disk rather than competing with the previous one's writeback.
fn settle() {
    let _ = std::process::Command::new("sync").status();
}

fn run_with(
    label: &str,
    adapter: &ingest::Adapter,
    file: &Path,
    store: &Store,
    opts: RunOptions<'_>,
) -> (Summary, f64) {
    settle();
    let (cpu, caller) = (
        cpu_secs("/proc/self/stat"),
        cpu_secs("/proc/thread-self/stat"),
    );
    let start = Instant::now();
    let quiet = |_: &Summary| {};
    let s = match ingest::ingest_file(adapter, file, store, opts, &quiet) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{label}: ingest failed: {e}");
            std::process::exit(1);
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let rate = s.rows as f64 / secs;
    println!(
        "{label:<22} {:>9} rows in {secs:>6.2} s = {:>9.0} rows/s  (new {}, updated {}, unchanged {}, rejected {})  peak RSS {:.0} MiB",
        s.rows,
        rate,
        s.accepted,
        s.updated,
        s.unchanged,
        s.rejected,
        peak_rss_mib()
    );
    // The calling thread maps and validates; decoding and writing run on threads of their own.
    println!(
        "{:<22} CPU {:.1} µs/row in all, {:.1} µs/row mapping (the calling thread)",
        "",
        micros_per_row(cpu, cpu_secs("/proc/self/stat"), s.rows),
        micros_per_row(caller, cpu_secs("/proc/thread-self/stat"), s.rows),
    );
    (s, rate)
}

fn main() {
    // `cargo test --benches` runs this binary with --bench absent; keep that cheap.
    let rows: u64 = std::env::var("XJ_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            1_000_000
        } else {
            2_000
        });
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot make a temporary directory: {e}");
            std::process::exit(1);
        }
    };
    let file = dir.path().join("sunshine-export.csv");
    let t = Instant::now();
    if let Err(e) = xianjie::sample::write_sunshine_csv(&file, rows, 0.0, 42) {
        eprintln!("cannot write the sample: {e}");
        std::process::exit(1);
    }
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!(
        "input: {rows} rows, {:.0} MiB GB18030 CSV, written in {:.1} s; {} cores",
        size as f64 / 1048576.0,
        t.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let adapter =
        match ingest::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/sunshine")) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("adapter: {e:?}");
                std::process::exit(1);
            }
        };
    // `XJ_BENCH_ONLY=postgres`: only the PostgreSQL ingests (when tuning that backend).
    if std::env::var("XJ_BENCH_ONLY").as_deref() == Ok("postgres") {
        postgres_run(&adapter, &file, &dir.path().join("postgres"));
        return;
    }
    if std::env::var_os("XJ_OUTBOX_FIRST").is_some() {
        outbox_run(&adapter, &file, &dir.path().join("data-outbox-first"));
    }
    // `XJ_BENCH_ONLY=sled`: only the two ingests and the ceiling (when tuning the writer), in
    // `XJ_BENCH_ROUNDS` rounds (default 1).
    if std::env::var("XJ_BENCH_ONLY").as_deref() == Ok("sled") {
        let rounds: usize = std::env::var("XJ_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
            .max(1);
        sled_rounds(&adapter, &file, dir.path(), rows, rounds);
        return;
    }
    let (value_bytes, ..) = sled_round(&adapter, &file, dir.path(), rows, Ceiling::None);
    contained_run(&adapter, &file, &dir.path().join("data-contained"), rows);
    sled_ceiling(rows, value_bytes, &dir.path().join("ceiling"));
    outbox_run(&adapter, &file, &dir.path().join("data-outbox"));
    postgres_run(&adapter, &file, &dir.path().join("postgres"));
}

/// When a round runs "sled alone": not at all, after the ingests (with values of the size they
/// stored), or before them with values of the size an earlier round measured.
#[derive(Clone, Copy)]
enum Ceiling {
    None,
    After,
    Before(usize),
}

/// The first ingest and the re-ingest into a fresh sled store under `dir`, and "sled alone" as
/// `ceiling` says. Returns the stored value size and the rates: first ingest, re-ingest, "sled
/// alone" (0 when not run).
fn sled_round(
    adapter: &ingest::Adapter,
    file: &Path,
    dir: &Path,
    rows: u64,
    ceiling: Ceiling,
) -> (usize, [f64; 3]) {
    let mut alone = 0.0;
    if let Ceiling::Before(bytes) = ceiling {
        alone = sled_ceiling(rows, bytes, &dir.join("ceiling"));
    }
    let store = match Store::open(&dir.join("data")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("store: {e}");
            std::process::exit(1);
        }
    };
    let (first, new) = run("ingest (all new)", adapter, file, &store);
    let (second, again) = run("re-ingest (unchanged)", adapter, file, &store);
    assert_eq!(first.accepted, rows, "every generated row is valid");
    assert_eq!(second.unchanged, rows, "a second read changes nothing");
    let value_bytes = store_bytes_per_case(&store);
    drop(store);
    if let Ceiling::After = ceiling {
        alone = sled_ceiling(rows, value_bytes, &dir.join("ceiling"));
    }
    (value_bytes, [new, again, alone])
}

/// `rounds` rounds of [`sled_round`], alternating whether "sled alone" runs before or after the
/// ingests: this machine's speed, its disk's above all, moves by half or more between runs minutes
/// apart, so one round's ratio says little. Prints each round's ratio and the median of each figure.
fn sled_rounds(adapter: &ingest::Adapter, file: &Path, dir: &Path, rows: u64, rounds: usize) {
    let mut figures = Vec::new();
    let mut bytes = None;
    for round in 1..=rounds {
        println!("round {round} of {rounds}");
        let here = dir.join(format!("round-{round}"));
        // The first round runs the ceiling after the ingests, measuring the value size.
        let ceiling = match bytes {
            Some(b) if round % 2 == 0 => Ceiling::Before(b),
            _ => Ceiling::After,
        };
        let (measured, [new, again, alone]) = sled_round(adapter, file, &here, rows, ceiling);
        bytes = Some(measured);
        println!(
            "{:<22} first ingest / sled alone = {:.2} (target ≥ 0.75)",
            "",
            new / alone
        );
        figures.push([new / alone, new, again, alone]);
        // A 1M store takes gigabytes of disk.
        let _ = std::fs::remove_dir_all(&here);
    }
    if rounds > 1 {
        let column = |i: usize, digits: usize| {
            let mut v: Vec<f64> = figures.iter().map(|f| f[i]).collect();
            let each: Vec<String> = v.iter().map(|r| format!("{r:.digits$}")).collect();
            v.sort_by(f64::total_cmp);
            format!("{:.digits$} (each: {})", v[v.len() / 2], each.join(", "))
        };
        println!("median of {rounds} rounds:");
        println!("  first ingest / sled alone {}", column(0, 2));
        println!("  first ingest, rows/s      {}", column(1, 0));
        println!("  re-ingest, rows/s         {}", column(2, 0));
        println!("  sled alone, rows/s        {}", column(3, 0));
    }
}

/// The same two ingests into a PostgreSQL store: a throwaway cluster of Debian's server on this
/// machine (`.ci/pg-cluster`), sharing its two cores with the ingest (target: ≥ 50,000 rows/s
/// for the first ingest of 1,000,000 rows).
fn postgres_run(adapter: &ingest::Adapter, file: &Path, dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/pg-cluster");
    let started = std::process::Command::new(&script)
        .arg("start")
        .arg(dir)
        .output();
    let url = match started {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => {
            println!("postgres: SKIPPED (PostgreSQL's server is not installed)");
            return;
        }
    };
    let settings = xianjie::store::PgSettings {
        config: match format!("{url} dbname=postgres").parse() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("postgres: {e}");
                std::process::exit(1);
            }
        },
        tls: None,
        pool_size: 4,
    };
    match Store::open_postgres(settings) {
        Ok(store) => {
            run("postgres: all new", adapter, file, &store);
            run("postgres: unchanged", adapter, file, &store);
        }
        Err(e) => eprintln!("postgres: {e}"),
    }
    let _ = std::process::Command::new(&script)
        .arg("stop")
        .arg(dir)
        .status();
}

/// The same first ingest with a push destination taking penalties, licences and inspections:
/// what the outbox adds (target: at most 20 %).
fn outbox_run(adapter: &ingest::Adapter, file: &Path, data: &Path) {
    let with_outbox = match Store::open(data) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("store: {e}");
            std::process::exit(1);
        }
    };
    let routes = |_: &xianjie::model::Uscc, a: xianjie::model::Action| {
        use xianjie::model::Action::{Inspection, Licensing, Penalty};
        if matches!(a, Penalty | Licensing | Inspection) {
            vec!["province".to_string()]
        } else {
            Vec::new()
        }
    };
    let opts = RunOptions {
        routes: Some(&routes),
        ..RunOptions::default()
    };
    run_with("ingest with outbox", adapter, file, &with_outbox, opts);
}

/// The same two runs decoding in a separate `xianjie decode-worker` process, as the gateway does.
fn contained_run(adapter: &ingest::Adapter, file: &Path, data: &Path, rows: u64) {
    let store = match Store::open(data) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("store: {e}");
            std::process::exit(1);
        }
    };
    let decoder = xianjie::ingest::decode::Decoder::contained(
        xianjie::ingest::Limits::default(),
        env!("CARGO_BIN_EXE_xianjie").into(),
    );
    let opts = RunOptions {
        decoder: Some(&decoder),
        ..RunOptions::default()
    };
    let (first, _) = run_with("contained (all new)", adapter, file, &store, opts);
    let (second, _) = run_with("contained (unchanged)", adapter, file, &store, opts);
    assert_eq!(
        (first.accepted, second.unchanged),
        (rows, rows),
        "the same outcome as in process"
    );
}

/// Average stored value size, from a sample of the cases just written.
fn store_bytes_per_case(store: &Store) -> usize {
    let sizes: Vec<usize> = store
        .all_cases()
        .take(1000)
        .filter_map(Result::ok)
        .map(|c| serde_json::to_vec(&c).map_or(0, |v| v.len()))
        .collect();
    sizes.iter().sum::<usize>() / sizes.len().max(1)
}

/// The store's write pattern with nothing else running: per case a read and an insert of a value
/// of the measured size, one change-log value per transaction of 1000 — sled's ceiling for a
/// first ingest on this machine, against which the pipeline's figure can be judged.
fn sled_ceiling(rows: u64, value_bytes: usize, path: &Path) -> f64 {
    settle();
    use sled::Transactional;
    let db = match sled::Config::new()
        .path(path)
        .cache_capacity(16 * 1024 * 1024)
        .open()
    {
        Ok(db) => db,
        Err(e) => {
            eprintln!("sled: {e}");
            std::process::exit(1);
        }
    };
    let (Ok(cases), Ok(changes)) = (db.open_tree("cases"), db.open_tree("changes")) else {
        eprintln!("sled: cannot open trees");
        std::process::exit(1);
    };
    let value = vec![b'x'; value_bytes];
    let cpu = cpu_secs("/proc/self/stat");
    let start = Instant::now();
    let mut first = 0;
    while first < rows {
        let last = (first + 1000).min(rows);
        let keys: Vec<Vec<u8>> = (first..last)
            .map(|i| format!("11320102MB{:08}\0CASE-{i:012}", i % 12).into_bytes())
            .collect();
        let r = (&cases, &changes).transaction(|(c, ch)| {
            for k in &keys {
                let _ = c.get(k)?;
                c.insert(k.as_slice(), value.as_slice())?;
            }
            ch.insert(&first.to_be_bytes(), vec![0u8; 60 * keys.len()])?;
            Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
        });
        if r.is_err() {
            eprintln!("sled: transaction failed");
            std::process::exit(1);
        }
        first = last;
    }
    let _ = db.flush();
    let secs = start.elapsed().as_secs_f64();
    drop((cases, changes, db));
    let _ = std::fs::remove_dir_all(path);
    println!(
        "{:<22} {rows:>9} rows in {secs:>6.2} s = {:>9.0} rows/s  (values of {value_bytes} bytes, nothing else running)",
        "sled alone (ceiling)",
        rows as f64 / secs
    );
    println!(
        "{:<22} CPU {:.1} µs/row in all",
        "",
        micros_per_row(cpu, cpu_secs("/proc/self/stat"), rows)
    );
    rows as f64 / secs
}
