//! The README's first command, `xianjie demo`, end to end: it ingests the samples, serves the
//! port API, pushes to its simulator, builds and discloses a quarter, then keeps running until
//! SIGTERM, when it stops cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let mut child = Command::new(common::bin())
        .current_dir(repo)
        .arg("--config")
        .arg(&cfg)
        .arg("--data")
        .arg(&data)
        .args(["demo", "--cases", "400"])
        .env_remove("XIANJIE_CONFIG")
        .env_remove("XIANJIE_DATA")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
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
                panic!("the demo did not finish its stages: {out}");
            }
        }
    }
    for stage in [
        "1. Sample inputs",
        "3. Inboxes read",
        "5. Port API",
        "7. Push",
        "8. Quarterly",
    ] {
        assert!(out.contains(stage), "no stage {stage:?}: {out}");
    }
    assert!(out.contains("0 still queued"), "{out}");
    let html = std::fs::read_dir(data.join("disclosure"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "html"))
        .unwrap();
    assert!(out.contains(&html.display().to_string()));
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
