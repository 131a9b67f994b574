//! Audit and keystore benchmark: appends per second from 64 concurrent writers (grouped fsync,
//! default 5 ms, and `always`), `audit verify` of an export of `XJ_BENCH_ENTRIES` entries (default
//! 1,000,000), and unlock time (Argon2id at the floor, 64 MiB, t = 3). Run with
//! `cargo bench --bench audit`; record results in BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use xianjie::audit::note::NoteSigner;
use xianjie::audit::{Actor, AuditLog, Event, Fsync, verify_export};
use xianjie::keys::keystore::{KdfParams, Keystore};
use xianjie::keys::secret::Passphrase;

/// The allocator the `xianjie` binary uses (see `src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ORIGIN: &str = "xianjie.bench/audit";

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1);
}

fn event(writer: usize, i: usize) -> Event {
    Event::new(
        Actor::client("procuratorate", Some("jwt-1")),
        "case.read",
        format!("11320102471049746T/XW-XFD-2025-{writer:02}{i:06}"),
    )
    .request(&format!("req-{writer}-{i}"))
    .detail("port", "11320102471049746T")
}

/// Appends `total` entries from `writers` threads; returns appends per second.
fn appends(policy: Fsync, writers: usize, total: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail("tempdir", e));
    let log = AuditLog::open(dir.path(), ORIGIN, policy).unwrap_or_else(|e| fail("open", e));
    let per = total / writers;
    let start = Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            let log = Arc::clone(&log);
            s.spawn(move || {
                for i in 0..per {
                    if let Err(e) = log.append(&event(w, i)) {
                        fail("append", e);
                    }
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    if let Err(e) = log.sync() {
        fail("sync", e);
    }
    (per * writers) as f64 / secs
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let entries: usize = std::env::var("XJ_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 2_000 });
    println!(
        "{} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let n = if full { 200_000 } else { 2_000 };
    let r = appends(Fsync::Interval(Duration::from_millis(5)), 64, n);
    println!("appends, 64 writers, fsync every 5 ms (default): {r:>9.0} /s  ({n} entries)");
    let r = appends(Fsync::Always, 64, n / 4);
    println!(
        "appends, 64 writers, fsync always (grouped):     {r:>9.0} /s  ({} entries)",
        n / 4
    );

    // An export of `entries` entries with a checkpoint every 10,000.
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail("tempdir", e));
    let log = AuditLog::open(
        &dir.path().join("log"),
        ORIGIN,
        Fsync::Interval(Duration::from_millis(5)),
    )
    .unwrap_or_else(|e| fail("open", e));
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9u8; 32]))
        .unwrap_or_else(|e| fail("signer", e));
    log.set_signer(Some(signer));
    let t = Instant::now();
    for i in 0..entries {
        if let Err(e) = log.append(&event(i % 64, i)) {
            fail("append", e);
        }
        if i % 10_000 == 9_999
            && let Err(e) = log.checkpoint()
        {
            fail("checkpoint", e);
        }
    }
    let out = dir.path().join("export");
    if let Err(e) = log.export(&out) {
        fail("export", e);
    }
    let size: u64 = std::fs::metadata(out.join("entries.jsonl")).map_or(0, |m| m.len());
    println!(
        "export: {entries} entries ({:.0} MiB) written and exported in {:.1} s",
        size as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    match verify_export(&out) {
        Ok(v) => println!(
            "audit verify: {} entries, {} checkpoints in {:.2} s",
            v.entries,
            v.checkpoints,
            t.elapsed().as_secs_f64()
        ),
        Err(e) => fail("verify", e),
    }

    // Unlock: the Argon2id derivation dominates.
    let ks = dir.path().join("keystore.json");
    let pass = Passphrase::new("benchmark passphrase 12345".into());
    if let Err(e) = Keystore::create(&ks, &pass, KdfParams::default()) {
        fail("create", e);
    }
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        if let Err(e) = Keystore::open(&ks, &pass) {
            fail("open", e);
        }
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "unlock (keystore open, Argon2id m=64 MiB t=3 p=1): median {:.0} ms, max {:.0} ms",
        times[2] * 1000.0,
        times[4] * 1000.0
    );
}
