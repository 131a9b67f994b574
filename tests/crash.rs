//! The crash test: SIGKILL the gateway in the middle of a large ingest, restart it, ingest again, and
//! find exactly the store a clean run produces (same cases, versions, change log and quarantine).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Gateway, bin, write_config};

type Snapshot = (
    BTreeMap<Vec<u8>, ([u8; 32], u64)>,
    BTreeMap<(String, String, u64), u32>,
    BTreeSet<(String, String)>,
);

fn snapshot(data: &Path) -> Snapshot {
    let store = common::open_store(data);
    let cases = store
        .all_cases()
        .map(|c| c.unwrap())
        .map(|c| (c.key(), (c.content_digest(), c.version)))
        .collect();
    let mut changes = BTreeMap::new();
    for ch in store.changes_after(0, usize::MAX).unwrap() {
        *changes
            .entry((ch.unit_code.to_string(), ch.case_id.to_string(), ch.version))
            .or_insert(0) += 1;
    }
    let quarantine = store
        .quarantine_list(None, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| (e.location, serde_json::to_string(&e.reasons).unwrap()))
        .collect();
    (cases, changes, quarantine)
}

#[test]
fn sigkill_mid_ingest_then_reingest_equals_a_clean_run() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = 60_000;
    let input = tmp.path().join("export.csv");
    let sample = xianjie::sample::write_sunshine_csv(&input, rows, 0.01, 99).unwrap();
    let input_s = input.to_str().unwrap();

    // The crashed run.
    let crashed = tmp.path().join("crashed");
    let cfg = write_config(tmp.path(), &crashed);
    let gw = Gateway::start(&cfg, &crashed);
    let mut ingest = std::process::Command::new(bin())
        .arg("--data")
        .arg(&crashed)
        .args(["ingest", "sunshine", input_s, "--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let stored_at_kill = loop {
        let s = gw.json(&["status", "--json"]);
        let cases = s["cases"].as_u64().unwrap();
        if cases >= 2_000 {
            break cases;
        }
        assert!(Instant::now() < deadline, "ingest did not progress");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut gw = gw;
    gw.child.kill().unwrap(); // SIGKILL
    gw.child.wait().unwrap();
    let _ = ingest.wait();
    assert!(
        stored_at_kill < rows - sample.bad_rows,
        "the kill must land mid-ingest (had {stored_at_kill} of {rows}); make the input larger"
    );
    drop(gw);

    let gw = Gateway::start(&cfg, &crashed);
    let s = gw.json(&["ingest", "sunshine", input_s, "--json"]);
    assert_eq!(s["rows"].as_u64(), Some(rows));
    assert_eq!(
        s["updated"].as_u64(),
        Some(0),
        "nothing committed before the kill changes: {s}"
    );
    gw.stop();

    // The clean run.
    let clean = tmp.path().join("clean");
    let cfg2 = write_config(&tmp.path().join("clean-cfg").tap_mkdir(), &clean);
    let gw = Gateway::start(&cfg2, &clean);
    let s = gw.json(&["ingest", "sunshine", input_s, "--json"]);
    assert_eq!(s["accepted"].as_u64(), Some(rows - sample.bad_rows));
    gw.stop();

    let (a, b) = (snapshot(&crashed), snapshot(&clean));
    assert_eq!(a.0.len() as u64, rows - sample.bad_rows);
    assert!(a.0 == b.0, "cases and versions differ from a clean run");
    assert!(a.1 == b.1, "change logs differ from a clean run");
    assert!(
        a.1.values().all(|n| *n == 1),
        "every version is in the change log exactly once"
    );
    assert!(a.2 == b.2, "quarantines differ from a clean run");
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}
