//! Integration tests against the real gateway process: ingest through the CLI and the admin socket,
//! quarantine reasons for every kind of bad row, refused files, idempotency, configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{Gateway, bin, write_config};
use serde_json::Value;
use std::path::PathBuf;

use xianjie::sample::{SampleFile, SampleOptions, generate};

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {v}"))
}

/// A temporary directory with a config, its data directory, and generated samples.
fn setup(
    cases: u64,
    bad_fraction: f64,
    seed: u64,
) -> (tempfile::TempDir, PathBuf, PathBuf, Vec<SampleFile>) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = write_config(tmp.path(), &data);
    let opts = SampleOptions {
        cases,
        bad_fraction,
        seed,
    };
    let files = generate(&tmp.path().join("samples"), &opts).unwrap();
    (tmp, data, cfg, files)
}

#[test]
fn ingest_through_the_cli_quarantines_bad_rows_and_is_idempotent() {
    let (_tmp, data, cfg, files) = setup(500, 0.2, 11);
    let gw = Gateway::start(&cfg, &data);

    let mut accepted = 0;
    let mut rejected = 0;
    for f in &files {
        let s = gw.json(&["ingest", &f.adapter, f.path.to_str().unwrap(), "--json"]);
        assert_eq!(n(&s, "rows"), f.rows, "{}: {s}", f.adapter);
        assert_eq!(
            n(&s, "rejected"),
            f.bad_rows,
            "{}: every deliberately bad row and only those: {s}",
            f.adapter
        );
        assert_eq!(n(&s, "accepted"), f.rows - f.bad_rows, "{}: {s}", f.adapter);
        assert_eq!(n(&s, "quarantined"), f.bad_rows);
        assert_eq!(n(&s, "updated") + n(&s, "unchanged"), 0);
        accepted += n(&s, "accepted");
        rejected += n(&s, "rejected");
        // Files given to `ingest` are read in place.
        assert!(f.path.exists());
    }
    let status = gw.json(&["status", "--json"]);
    assert_eq!(n(&status, "cases"), accepted);
    assert_eq!(
        n(&status, "changes"),
        accepted,
        "one change-log entry per new case"
    );
    assert_eq!(n(&status, "quarantine"), rejected);
    let unit_total: u64 = status["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| n(u, "total"))
        .sum();
    assert_eq!(unit_total, accepted);

    // Every kind of bad row is quarantined with its precise reason.
    let q = gw.json(&["quarantine", "list", "--limit", "1000", "--json"]);
    let reasons: Vec<String> = q
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            e["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["reason"].as_str().unwrap().to_string())
        })
        .collect();
    let all = reasons.join("\n");
    for needle in [
        "USCC",                        // a unit or party USCC with a wrong check character
        "resident ID",                 // a resident ID with a wrong check character
        "check character is",          //   ... naming the expected one
        "is not a real calendar date", // 2025-02-30 and the like
        "is required but empty",       // party name or case id missing
        "not in the code table",       // an unknown code
        "duplicate: case",             // the same key twice in one file
        "decimal places",              // money more precise than its unit
        "is not covered by adapter",   // a unit the adapter does not speak for
    ] {
        assert!(
            all.contains(needle),
            "no quarantine reason contains {needle:?}:\n{all}"
        );
    }
    let dup = reasons.iter().find(|r| r.contains("duplicate")).unwrap();
    assert!(
        dup.contains("already appears at row") || dup.contains("already appears at element"),
        "{dup}"
    );
    let first = &q[0];
    let sample_paths: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    assert!(
        sample_paths
            .iter()
            .any(|p| p == first["file"].as_str().unwrap()),
        "a quarantine entry names the file it came from: {first}"
    );
    assert!(
        !first["raw"].as_array().unwrap().is_empty(),
        "raw values are kept for retry"
    );

    // The same inputs again: nothing changes, no new versions, no new change-log or quarantine entries.
    for f in &files {
        let s = gw.json(&["ingest", &f.adapter, f.path.to_str().unwrap(), "--json"]);
        assert_eq!(n(&s, "unchanged"), f.rows - f.bad_rows, "{s}");
        assert_eq!(n(&s, "accepted") + n(&s, "updated"), 0, "{s}");
        assert_eq!(n(&s, "rejected"), f.bad_rows);
        assert_eq!(
            n(&s, "quarantined"),
            0,
            "already quarantined rows are not added twice: {s}"
        );
    }
    let again = gw.json(&["status", "--json"]);
    assert_eq!(n(&again, "cases"), accepted);
    assert_eq!(n(&again, "changes"), accepted, "no new change-log entries");
    assert_eq!(n(&again, "quarantine"), rejected);

    // One stored case, read back through the CLI.
    let xml = std::fs::read_to_string(
        files
            .iter()
            .find(|f| f.adapter == "tax")
            .unwrap()
            .path
            .clone(),
    )
    .unwrap();
    let ids: Vec<&str> = xml
        .split("<CF_WSH>")
        .skip(1)
        .filter_map(|s| s.split("</CF_WSH>").next())
        .take(10)
        .collect();
    let shown = ids.iter().find_map(|id| {
        let out = gw.cli(&["cases", "show", "11320102507529170Q", id]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<Value>(&out.stdout).unwrap())
    });
    let case = shown.expect("one of the first tax decisions is stored");
    assert_eq!(case["version"], 1);
    assert_eq!(case["action"], "penalty");
    assert_eq!(case["source"]["adapter"], "tax");
    let missing = gw.cli(&["cases", "show", "11320102507529170Q", "no-such-case"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no case no-such-case"));
    gw.stop();
}

#[test]
fn unreadable_files_are_refused_whole_and_moved_to_failed_with_a_reason() {
    let (_tmp, data, cfg, files) = setup(30, 0.0, 3);
    let gw = Gateway::start(&cfg, &data);
    let inbox = |a: &str| {
        let d = data.join("inbox").join(a);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let good_csv = files.iter().find(|f| f.adapter == "sunshine").unwrap();
    let bytes = std::fs::read(&good_csv.path).unwrap();
    std::fs::copy(&good_csv.path, inbox("sunshine").join("a-good.csv")).unwrap();
    std::fs::write(inbox("sunshine").join("b-empty.csv"), b"").unwrap();
    let mut broken = bytes.clone();
    // Corrupt an ASCII byte (a comma) mid-file: 0xFF is never valid in GB18030, so the first bad
    // sequence starts exactly there.
    let at = bytes.len() / 2
        + bytes[bytes.len() / 2..]
            .iter()
            .position(|b| *b == b',')
            .unwrap();
    broken[at] = 0xFF;
    std::fs::write(inbox("sunshine").join("c-bad-bytes.csv"), &broken).unwrap();
    let (enc, _, _) = encoding_rs::GB18030.encode("办件编号,办件名称\nX-1,测试\n");
    std::fs::write(inbox("sunshine").join("d-missing-columns.csv"), &enc).unwrap();
    std::fs::write(
        inbox("tax").join("doctype.xml"),
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><SGS_DATA><RECORDS/></SGS_DATA>",
    )
    .unwrap();
    let xlsx = std::fs::read(
        &files
            .iter()
            .find(|f| f.adapter == "market-inspection")
            .unwrap()
            .path,
    )
    .unwrap();
    std::fs::write(
        inbox("market-inspection").join("truncated.xlsx"),
        &xlsx[..xlsx.len() / 2],
    )
    .unwrap();

    let out = gw.cli(&["scan", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "refused files make the run fail visibly"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("5 file(s) refused"));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        n(&s, "accepted"),
        good_csv.rows,
        "the good file is read despite the bad ones: {s}"
    );

    let reason = |a: &str, name: &str| {
        let p = data
            .join("inbox")
            .join(a)
            .join("failed")
            .join(format!("{name}.reason"));
        assert!(
            data.join("inbox")
                .join(a)
                .join("failed")
                .join(name)
                .exists(),
            "{name} kept in failed/"
        );
        assert!(
            !data.join("inbox").join(a).join(name).exists(),
            "{name} no longer in the inbox"
        );
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    assert!(data.join("inbox/sunshine/done/a-good.csv").exists());
    assert!(reason("sunshine", "b-empty.csv").contains("empty"));
    let r = reason("sunshine", "c-bad-bytes.csv");
    assert!(
        r.contains(&format!(
            "invalid GB18030 byte sequence at byte offset {at}"
        )),
        "{r}"
    );
    let r = reason("sunshine", "d-missing-columns.csv");
    assert!(
        r.contains("missing required column(s)") && r.contains("执法主体统一社会信用代码"),
        "{r}"
    );
    assert!(reason("tax", "doctype.xml").contains("document type declarations"));
    assert!(reason("market-inspection", "truncated.xlsx").contains("XLSX"));
    // Nothing of a refused file was stored.
    let status = gw.json(&["status", "--json"]);
    assert_eq!(n(&status, "cases"), good_csv.rows);
    assert_eq!(n(&status, "quarantine"), 0);
    gw.stop();
}

#[test]
fn invalid_configuration_is_reported_whole_before_starting() {
    let tmp = tempfile::tempdir().unwrap();
    let adapters = tmp.path().join("adapters");
    for (name, body) in [
        (
            "one",
            "name = \"one\"\nsystem = \"s\"\n[transport]\nkind = \"file\"\nglob = \"*.csv\"\nschedule = \"every minute\"\n[format]\nkind = \"csv\"\nencoding = \"latin1\"\n[[units]]\ncode = \"91350200776049653B\"\nname = \"u\"\n[fields]\nunit_code = { from = \"a\" }\n",
        ),
        (
            "two",
            "name = \"two\"\nsystem = \"s\"\n[transport]\nkind = \"file\"\nglob = \"*.csv\"\n[format]\nkind = \"csv\"\ndelimiter = \"\\\"\"\n[[units]]\ncode = \"91350200776049653A\"\nname = \"u\"\n[fields]\nunit_code = { from = \"a\" }\ncase_id = { from = \"b\" }\ntitle = { from = \"c\" }\naction = { from = \"d\", codes = { \"x\" = \"reward\" } }\n\"party.kind\" = { const = \"legal_person\" }\n\"party.name\" = { from = \"e\" }\n\"penalty.fine_fen\" = { from = \"f\" }\n\"party.nam\" = { from = \"g\" }\n",
        ),
    ] {
        std::fs::create_dir_all(adapters.join(name)).unwrap();
        std::fs::write(adapters.join(name).join("adapter.toml"), body).unwrap();
    }
    let cfg = tmp.path().join("xianjie.toml");
    std::fs::write(
        &cfg,
        "adapters_dir = \"adapters\"\n[ingest]\nbatch_size = 0\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "ingest.batch_size: 0 is outside",
        "transport.schedule: 'every minute' is not a cron expression",
        "format.encoding: unknown encoding 'latin1'",
        "units[0].code: USCC 91350200776049653B: check character is B, expected A",
        "required target field case_id is not mapped",
        "codes.\"x\": 'reward' is not a known action",
        "a money field must say its source unit",
        "fields.\"party.nam\": unknown target field",
        "format.delimiter: a quote or a line break cannot separate fields",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(
        !tmp.path().join("data").exists(),
        "nothing started, nothing created"
    );
}
