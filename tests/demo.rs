//! The README's first command, `xianjie demo`, end to end: it ingests the samples, serves the
//! port API, pushes to its simulator, builds and discloses a quarter, then keeps running until
//! SIGTERM, when it stops cleanly. Once with an absolute data directory and a config, once exactly
//! as a newcomer runs it: from a fresh clone, no flags, the default `./data`, twice.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every stage the demo prints, in order.
const STAGES: [&str; 7] = [
    "1. Sample inputs",
    "2. Gateway started",
    "3. Inboxes read",
    "5. Port API",
    "6. The audit log",
    "7. Push",
    "8. Quarterly",
];

/// Starts the demo with `cmd` and waits until it prints that it keeps running; returns the
/// running child and everything it printed. Panics (with the output) if it exits or stalls first.
fn demo_until_running(mut cmd: Command) -> (Child, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut out = String::new();
    while !out.contains("The gateway keeps running") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                panic!("the demo did not finish its stages ({status}): {out}");
            }
        }
    }
    let mut last = 0;
    for stage in STAGES {
        let at = out
            .find(stage)
            .unwrap_or_else(|| panic!("no stage {stage:?}: {out}"));
        assert!(at > last, "stage {stage:?} out of order: {out}");
        last = at;
    }
    assert!(!out.lines().any(|l| l.starts_with("error")), "{out}");
    assert!(out.contains("0 still queued"), "{out}");
    (child, out)
}

/// SIGTERM, then a clean exit.
fn stop(mut child: Child) {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// The disclosure files the demo wrote under `data`: they must include CSV, XLSX and HTML, and
/// the demo must have named the HTML and XLSX files it wrote.
fn check_disclosure(data: &std::path::Path, out: &str) {
    let files: Vec<_> = std::fs::read_dir(data.join("disclosure"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for ext in ["csv", "xlsx", "html"] {
        let f = files
            .iter()
            .find(|p| p.extension().is_some_and(|x| x == ext))
            .unwrap_or_else(|| panic!("no {ext} disclosure in {files:?}"));
        assert!(
            std::fs::metadata(f).unwrap().len() > 0,
            "{} is empty",
            f.display()
        );
        if ext != "csv" {
            let shown = std::fs::canonicalize(f).unwrap();
            assert!(
                out.contains(&shown.display().to_string()),
                "{shown:?} not named: {out}"
            );
        }
    }
}

#[test]
fn the_demo_runs_every_stage_and_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Embedded defaults, except the port API on a port the OS picks.
    let cfg = tmp.path().join("xianjie.toml");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::write(
        &cfg,
        format!(
            "adapters_dir = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\n",
            repo.join("adapters").display().to_string()
        ),
    )
    .unwrap();
    common::add_store(&cfg, &data);
    let mut cmd = Command::new(common::bin());
    cmd.current_dir(repo)
        .arg("--config")
        .arg(&cfg)
        .arg("--data")
        .arg(&data)
        .args(["demo", "--cases", "400"])
        .env_remove("XIANJIE_CONFIG")
        .env_remove("XIANJIE_DATA");
    let (child, out) = demo_until_running(cmd);
    check_disclosure(&data, &out);
    stop(child);
}

/// The binary run exactly as the README tells a newcomer: `demo` and nothing else, from the root
/// of a fresh clone, no config, no flags, no XIANJIE_* variables, the default `./data`.
fn newcomer_demo(clone: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xianjie"));
    cmd.current_dir(clone).arg("demo");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("XIANJIE_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

#[test]
fn the_readme_first_command_works_from_a_fresh_clone_and_again_over_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("xianjie");
    let cloned = Command::new("git")
        .args(["clone", "--quiet", env!("CARGO_MANIFEST_DIR")])
        .arg(&clone)
        .output()
        .unwrap();
    assert!(cloned.status.success(), "git clone: {cloned:?}");
    let data = clone.join("data");
    assert!(!data.exists(), "a fresh clone has no ./data");

    let (child, first) = demo_until_running(newcomer_demo(&clone));
    check_disclosure(&data, &first);
    stop(child);
    // The stop left the data directory reusable: no socket behind.
    assert!(!data.join("admin.sock").exists());

    // Again over the same ./data: the same samples read as unchanged, the same keystore unlocked,
    // a new quarter's disclosure written over the old one.
    let (child, second) = demo_until_running(newcomer_demo(&clone));
    assert!(second.contains(" 0 new, 0 updated, "), "{second}");
    check_disclosure(&data, &second);

    // While it runs, a third demo over the same ./data refuses in one line, before it drops
    // anything into the running gateway's inboxes.
    let third = newcomer_demo(&clone).output().unwrap();
    let err = String::from_utf8_lossy(&third.stderr);
    assert!(!third.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("already running on ./data"), "{err}");
    for inbox in std::fs::read_dir(data.join("inbox")).unwrap() {
        let waiting: Vec<_> = std::fs::read_dir(inbox.unwrap().path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        assert!(waiting.is_empty(), "{waiting:?}");
    }
    stop(child);
}
