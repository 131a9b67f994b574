//! Hostile input through the real gateway: each file below was built to stop the gateway, exhaust
//! its memory or make it crash again after every restart (issue 11). For each one: the gateway is
//! still up, the file is in `failed/` with a `.reason` naming the limit it broke (or its record is
//! in quarantine with the reason), and the decoding process stayed under its memory ceiling.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fixtures;
use common::{Gateway, bin};
use serde_json::Value;

/// The decoding process's memory ceiling in these tests.
const CEILING_MIB: u64 = 256;
/// What a decoding process may hold beyond the ceiling: the executable's own resident pages (the
/// ceiling counts the data segment) and the C runtime.
const MARGIN_MIB: u64 = 96;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn config(dir: &Path, data: &Path, limits: &str) -> PathBuf {
    let cfg = dir.join("xianjie.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\nadapters_dir = {:?}\n[ingest]\nbatch_size = 500\n[ingest.limits]\n{limits}\n[log]\nlevel = \"warn\"\n[server]\nlisten = \"off\"\n",
            data.display().to_string(),
            repo().join("adapters").display().to_string(),
        ),
    )
    .unwrap();
    common::add_store(&cfg, data);
    cfg
}

/// Drops `file` into `adapter`'s inbox as `name`, scans, and returns that file's outcome.
fn scan_one(gw: &Gateway, adapter: &str, file: &Path, name: &str) -> Value {
    let inbox = gw.data.join("inbox").join(adapter);
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::rename(file, inbox.join(name)).unwrap();
    // `--json` exits non-zero when a file was refused; the outcome is printed either way.
    let out = gw.cli(&["scan", adapter, "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "scan {adapter}: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{v}");
    files[0].clone()
}

/// Asserts the outcome is a refusal naming `limit`, the file is in `failed/` with a `.reason` that
/// says the same, and the decoding process stayed under the ceiling.
fn assert_refused(gw: &Gateway, outcome: &Value, limit: &str) {
    let reason = outcome["refused"]
        .as_str()
        .unwrap_or_else(|| panic!("not refused: {outcome}"));
    assert!(reason.contains(limit), "{limit} not named in: {reason}");
    let moved = PathBuf::from(outcome["moved_to"].as_str().unwrap());
    assert!(
        moved.parent().unwrap().ends_with("failed") && moved.is_file(),
        "{moved:?}"
    );
    let mut why = moved.clone().into_os_string();
    why.push(".reason");
    let written = std::fs::read_to_string(PathBuf::from(why)).unwrap();
    assert!(written.contains(limit), "{written}");
    // Nothing is left in processing/.
    let processing = moved.parent().unwrap().parent().unwrap().join("processing");
    assert_eq!(
        std::fs::read_dir(&processing).map_or(0, |d| d.count()),
        0,
        "{processing:?}"
    );
    assert_peak(outcome);
    assert_up(gw);
}

/// The decoding process's peak resident memory, when reported, is under the ceiling plus margin.
fn assert_peak(outcome: &Value) {
    if let Some(kib) = outcome["decode_peak_kib"].as_u64() {
        assert!(
            kib < (CEILING_MIB + MARGIN_MIB) * 1024,
            "decoder peak {kib} KiB over the ceiling: {outcome}"
        );
    }
}

/// The gateway process is alive and answers.
fn assert_up(gw: &Gateway) {
    let pid = gw.child.id();
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the gateway is gone: {}",
        std::fs::read_to_string(&gw.log).unwrap_or_default()
    );
    gw.ok(&["status"]);
}

/// The gateway's own peak resident memory in MiB.
fn gateway_peak_mib(gw: &Gateway) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.child.id())).unwrap();
    xianjie::ingest::decode::worker::status_kib(&status, "VmHWM:").unwrap() / 1024
}

fn start(dir: &Path, limits: &str) -> Gateway {
    let data = dir.join("data");
    let cfg = config(dir, &data, limits);
    Gateway::start(&cfg, &data)
}

#[test]
fn hostile_files_are_refused_or_quarantined_and_the_gateway_stays_up() {
    const TOBACCO: &str = "11320102466008745E";
    let tmp = tempfile::tempdir().unwrap();
    // Limits, then a unit that submits its reports (for the submission below).
    let gw = start(
        tmp.path(),
        &format!(
            "decode_memory_mib = {CEILING_MIB}\n[reports]\nformats_dir = {:?}\n[[reports.submitters]]\nunit = \"{TOBACCO}\"\nname = \"南京市玄武区烟草专卖局\"",
            repo().join("submissions").display().to_string()
        ),
    );
    let xlsx = repo().join("adapters/market-inspection/samples/inspection-results.xlsx");
    let f = |n: &str| tmp.path().join(n);

    // A 10 KB workbook declaring ten trillion shared strings.
    fixtures::absurd_unique_count(&xlsx, &f("count.xlsx"), 10_000_000_000_000);
    let o = scan_one(&gw, "market-inspection", &f("count.xlsx"), "count.xlsx");
    assert_refused(&gw, &o, "xlsx_shared_strings");

    // 1 MB on disk, 1 GB of spaces in its sheet.
    fixtures::swollen_sheet(&xlsx, &f("sheet.xlsx"), 1 << 30);
    assert!(std::fs::metadata(f("sheet.xlsx")).unwrap().len() < 8 << 20);
    let o = scan_one(&gw, "market-inspection", &f("sheet.xlsx"), "sheet.xlsx");
    assert_refused(&gw, &o, "xlsx_uncompressed_mib");

    // 200 MB of shared strings in well under a megabyte: a thousandfold ratio.
    fixtures::swollen_shared_strings(&xlsx, &f("strings.xlsx"), 200 << 20);
    let o = scan_one(&gw, "market-inspection", &f("strings.xlsx"), "strings.xlsx");
    assert_refused(&gw, &o, "xlsx_ratio");

    // Headers that declare 1,000 bytes for a sheet that inflates to 64 MiB.
    fixtures::lying_sizes(&xlsx, &f("lying.xlsx"), 64 << 20);
    let o = scan_one(&gw, "market-inspection", &f("lying.xlsx"), "lying.xlsx");
    assert_refused(&gw, &o, "larger than its declared uncompressed size");

    // XML nested five million deep.
    fixtures::deep_xml(&f("deep.xml"), 5_000_000);
    let o = scan_one(&gw, "tax", &f("deep.xml"), "deep.xml");
    assert_refused(&gw, &o, "xml_depth");

    // A 200 MB field: that record is quarantined with its length and digest, the others go in.
    // The sample as it is first, for the counts to compare with.
    let sample = repo().join("adapters/tax/samples/tax-sgs.xml");
    std::fs::copy(&sample, f("plain.xml")).unwrap();
    let before = scan_one(&gw, "tax", &f("plain.xml"), "plain.xml")["summary"].clone();
    fixtures::swollen_xml_field(&sample, &f("field.xml"), "XK_NR", 200 << 20);
    let o = scan_one(&gw, "tax", &f("field.xml"), "field.xml");
    assert!(o["refused"].is_null(), "{o}");
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap();
    let s = &o["summary"];
    assert_eq!(n(s, "rows"), n(&before, "rows"), "{o}");
    assert_eq!(n(s, "rejected"), n(&before, "rejected") + 1, "{o}");
    assert_eq!(n(s, "unchanged"), n(&before, "accepted") - 1, "{o}");
    assert_peak(&o);
    let q: Vec<Value> = serde_json::from_str(&gw.ok(&["quarantine", "list", "--json"])).unwrap();
    let entry = q
        .iter()
        .find(|e| e["file"].as_str().unwrap().ends_with("field.xml"))
        .unwrap();
    let shown = gw.ok(&["quarantine", "show", &entry["id"].to_string()]);
    assert!(
        shown.len() < 16 * 1024,
        "quarantine show prints {} bytes",
        shown.len()
    );
    let shown: Value = serde_json::from_str(&shown).unwrap();
    let reasons = shown["reasons"].to_string();
    assert!(reasons.contains("field_kib"), "{reasons}");
    let full = 200u64 << 20;
    let full = full - full % 3;
    let cut = &shown["cut"][0];
    assert_eq!(cut["column"], "XK_NR");
    assert_eq!(cut["bytes"].as_u64(), Some(full));
    assert_eq!(cut["sha256"].as_str().unwrap().len(), 64);
    assert!(
        reasons.contains(&xianjie::ingest::decode::bytes_shown(full)),
        "{reasons}"
    );
    assert_up(&gw);

    // A control character in a party name: that record alone is quarantined, naming where.
    let csv = f("ctl.csv");
    xianjie::sample::write_sunshine_csv(&csv, 40, 0.0, 5).unwrap();
    let bytes = std::fs::read(&csv).unwrap();
    let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let party = header
        .iter()
        .position(|h| h.contains("当事人名称"))
        .unwrap();
    let mut cells: Vec<String> = lines[5].split(',').map(str::to_string).collect();
    let second = cells[party].chars().next().unwrap().len_utf8();
    cells[party].insert(second, '\u{1}');
    lines[5] = cells.join(",");
    let joined = lines.join("\r\n") + "\r\n";
    let (gb, _, _) = encoding_rs::GB18030.encode(&joined);
    std::fs::write(&csv, gb).unwrap();
    let o = scan_one(&gw, "sunshine", &csv, "ctl.csv");
    assert_eq!(
        (
            o["summary"]["rows"].as_u64(),
            o["summary"]["rejected"].as_u64()
        ),
        (Some(40), Some(1)),
        "{o}"
    );
    let q: Vec<Value> = serde_json::from_str(&gw.ok(&["quarantine", "list", "--json"])).unwrap();
    let entry = q
        .iter()
        .find(|e| e["file"].as_str().unwrap().ends_with("ctl.csv"))
        .unwrap();
    assert_eq!(entry["location"], "row 6");
    let why = entry["reasons"].to_string();
    assert!(
        why.contains("party.name") && why.contains("U+0001 at character 2"),
        "{why}"
    );

    // A submission from the command line takes the same path and limits.
    let sub = f("report.xlsx");
    fixtures::absurd_unique_count(
        &repo().join("submissions/xlsx/cases/mixed.xlsx"),
        &sub,
        10_000_000_000_000,
    );
    let err = gw.fails(&[
        "reports",
        "submit",
        "--unit",
        TOBACCO,
        "--quarter",
        "2026Q3",
        sub.to_str().unwrap(),
    ]);
    assert!(err.contains("xlsx_shared_strings"), "{err}");

    // Through all of it the gateway kept serving, on little memory of its own.
    assert_up(&gw);
    let peak = gateway_peak_mib(&gw);
    assert!(peak < 200, "the gateway itself peaked at {peak} MiB");
    gw.stop();
}

#[test]
fn a_decoder_that_runs_out_of_memory_is_stopped_at_its_ceiling_not_the_gateway() {
    // The shared-strings limit raised to its maximum lets a declared count of a hundred million
    // through to the spreadsheet library, which reserves gigabytes for it: the decoding process
    // is stopped at its ceiling, and the gateway says so and goes on.
    let tmp = tempfile::tempdir().unwrap();
    let gw = start(
        tmp.path(),
        "decode_memory_mib = 128\nxlsx_shared_strings = 100000000\n",
    );
    let xlsx = repo().join("adapters/market-inspection/samples/inspection-results.xlsx");
    let file = tmp.path().join("count.xlsx");
    fixtures::absurd_unique_count(&xlsx, &file, 100_000_000);
    let o = scan_one(&gw, "market-inspection", &file, "count.xlsx");
    let reason = o["refused"].as_str().unwrap();
    assert!(
        reason.contains("decode_memory_mib") && reason.contains("128 MiB"),
        "{reason}"
    );
    assert_up(&gw);
    // A good file still goes in after it.
    let good = tmp.path().join("good.xlsx");
    std::fs::copy(&xlsx, &good).unwrap();
    let o = scan_one(&gw, "market-inspection", &good, "good.xlsx");
    assert!(o["refused"].is_null(), "{o}");
    assert!(o["summary"]["accepted"].as_u64().unwrap() > 0, "{o}");
    assert_peak(&o);
    gw.stop();
}

#[test]
fn a_clean_stop_returns_the_file_to_its_inbox_and_a_kill_sets_it_aside_for_good() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), &data, "");
    let gw = Gateway::start(&cfg, &data);
    let inbox = data.join("inbox/sunshine");
    std::fs::create_dir_all(&inbox).unwrap();
    let big = tmp.path().join("big.csv");
    xianjie::sample::write_sunshine_csv(&big, 150_000, 0.0, 11).unwrap();
    std::fs::rename(&big, inbox.join("big.csv")).unwrap();
    let reading = inbox.join("processing/big.csv");
    // Starts a scan and returns once the file is being read.
    let scan_started = || {
        let scan = std::process::Command::new(bin())
            .arg("--data")
            .arg(&data)
            .args(["scan", "sunshine", "--json"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !reading.exists() {
            assert!(
                Instant::now() < deadline,
                "the file never reached processing/"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(300));
        scan
    };

    // A clean stop in the middle of the file returns it to the inbox, to be read again.
    let mut scan = scan_started();
    gw.stop();
    let _ = scan.wait();
    assert!(
        inbox.join("big.csv").is_file() && !reading.exists(),
        "a clean stop leaves the file in the inbox"
    );

    // Kill the gateway while the file is being read.
    let gw = Gateway::start(&cfg, &data);
    assert!(
        !inbox.join("failed/big.csv").exists(),
        "nothing set aside after a clean stop"
    );
    let mut scan = scan_started();
    let mut gw = gw;
    gw.child.kill().unwrap();
    gw.child.wait().unwrap();
    let _ = scan.wait();
    assert!(
        reading.exists(),
        "the file was not in processing/ when the gateway died"
    );

    // At restart it is set aside with its reason, and a scan does not read it again.
    drop(gw);
    let gw = Gateway::start(&cfg, &data);
    let failed = inbox.join("failed/big.csv");
    assert!(failed.is_file() && !reading.exists());
    let reason = std::fs::read_to_string(inbox.join("failed/big.csv.reason")).unwrap();
    assert!(
        reason.contains("the gateway stopped while reading this file"),
        "{reason}"
    );
    let out = gw.ok(&["scan", "sunshine"]);
    assert!(out.contains("no files to read"), "{out}");
    let audit: Vec<Value> = gw
        .ok(&["audit", "tail", "-n", "50", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "ingest.file" && e["outcome"] == "set_aside"),
        "no set_aside entry: {audit:?}"
    );
    gw.stop();
}
