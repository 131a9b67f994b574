//! Quarterly statistics against the real gateway process: reports built through the CLI agree
//! with the cases the port API serves; a late record makes a new version; status per unit; the
//! public disclosure in CSV, XLSX and HTML — no resident ID number anywhere in any file,
//! restricted cases absent, the workbook read back, the page rendered by headless Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Gateway, secret_file, write_config};
use serde_json::Value;

const PASS: &str = "reports test passphrase";

fn setup(dir: &Path, extra: &str) -> (Gateway, PathBuf) {
    let data = dir.join("data");
    let cfg = write_config(dir, &data);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(extra);
    std::fs::write(&cfg, text).unwrap();
    let pass = secret_file(&dir.join("pass"), PASS);
    let gw = Gateway::start_with(&cfg, &data, &["--passphrase-file", pass.to_str().unwrap()]);
    let samples = dir.join("samples");
    xianjie::sample::generate(
        &samples,
        &xianjie::sample::SampleOptions {
            cases: 1500,
            bad_fraction: 0.0,
            seed: 21,
        },
    )
    .unwrap();
    for a in ["sunshine", "market-inspection", "tax"] {
        gw.ok(&["ingest", a, samples.join(a).to_str().unwrap()]);
    }
    (gw, samples)
}

/// Every file under `dir` as text (XLSX cells through calamine).
fn texts(dir: &Path) -> Vec<(PathBuf, String)> {
    use calamine::{Reader, Xlsx, open_workbook};
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let text = if p.extension().is_some_and(|x| x == "xlsx") {
            let mut wb: Xlsx<_> = open_workbook(&p).unwrap();
            let mut s = String::new();
            for name in wb.sheet_names().to_owned() {
                let range = wb.worksheet_range(&name).unwrap();
                for row in range.rows() {
                    for c in row {
                        s.push_str(&c.to_string());
                        s.push('\t');
                    }
                    s.push('\n');
                }
            }
            s
        } else {
            String::from_utf8(std::fs::read(&p).unwrap()).unwrap()
        };
        out.push((p, text));
    }
    out
}

/// Every 18-character run that is a valid resident ID number (check character and birth date).
fn resident_ids(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let today = chrono::Local::now().date_naive();
    chars
        .windows(18)
        .map(|w| w.iter().collect::<String>())
        .filter(|s| s.chars().all(|c| c.is_ascii_digit() || c == 'X'))
        .filter(|s| xianjie::model::ResidentId::parse_at(s, today).is_ok())
        .collect()
}

#[test]
fn reports_versions_status_and_a_masked_disclosure() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, samples) = setup(
        tmp.path(),
        &format!(
            "[reports]\ndeadline_days = 15\nformats_dir = {:?}\n[[reports.submitters]]\nunit = \"11320102MB15288662\"\nname = \"南京市玄武区某垂管局\"\n",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("submissions")
                .display()
                .to_string()
        ),
    );
    // The busiest quarter of the sample, from the cases themselves.
    let status = gw.json(&["status", "--json"]);
    assert!(status["cases"].as_u64().unwrap() > 1000);
    let q = "2025Q2";
    let built = gw.json(&["reports", "build", "--quarter", q, "--json"]);
    let built = built.as_array().unwrap();
    assert!(built.len() >= 10);
    assert!(built.iter().all(|b| b["stored"]["outcome"] == "new"));
    let all: Vec<Value> = gw
        .json(&["reports", "show", "--quarter", q])
        .as_array()
        .unwrap()
        .clone();
    let total: u64 = all
        .iter()
        .map(|r| r["summary"]["total"].as_u64().unwrap())
        .sum();
    assert!(total > 50, "{total}");
    // Each detail is the stored case: spot-check one per unit through `cases show`.
    for r in &all {
        if let Some(d) = r["details"].as_array().unwrap().first() {
            let c = gw.json(&[
                "cases",
                "show",
                r["unit_code"].as_str().unwrap(),
                d["case_id"].as_str().unwrap(),
            ]);
            assert_eq!(c["decided_on"], d["decided_on"]);
            assert_eq!(c["title"], d["title"]);
            assert!(c["decided_on"].as_str().unwrap().starts_with("2025-0"));
        }
    }
    // Building again changes nothing.
    let again = gw.json(&["reports", "build", "--quarter", q, "--json"]);
    assert!(
        again
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["stored"]["outcome"] == "unchanged")
    );

    // Status: every fed unit computed; the configured submitter missing, then overdue (2025Q2's
    // deadline, 2025-07-15, has passed).
    let s = gw.json(&["reports", "status", "--quarter", q, "--json"]);
    assert_eq!(s["deadline"], "2025-07-15");
    assert!(s["window"]["opened_at"].is_string());
    let units = s["units"].as_array().unwrap();
    let tobacco = units
        .iter()
        .find(|u| u["unit_code"] == "11320102MB15288662")
        .unwrap();
    assert_eq!(tobacco["state"], "overdue");
    assert_eq!(
        units.iter().filter(|u| u["state"] == "computed").count(),
        built.len()
    );
    let text = gw.ok(&["reports", "status", "--quarter", q]);
    assert!(text.contains("OVERDUE"), "{text}");

    // A late record: its unit's report gets version 2; version 1 stays readable.
    let sunshine = std::fs::read_dir(samples.join("sunshine"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let bytes = std::fs::read(&sunshine).unwrap();
    let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let cols: Vec<&str> = header.split(',').collect();
    let idx = |name: &str| cols.iter().position(|c| *c == name).unwrap();
    let row = lines
        .find(|l| {
            let f: Vec<&str> = l.split(',').collect();
            f.len() == cols.len() && f[idx("决定日期")].starts_with("2025-05")
        })
        .unwrap();
    let mut f: Vec<String> = row.split(',').map(str::to_string).collect();
    f[idx("办件编号")] = "XW-LATE-2025-000001".into();
    let unit = f[idx("执法主体统一社会信用代码")].clone();
    let late = tmp.path().join("late.csv");
    let late_text = format!("{header}\n{}\n", f.join(","));
    let (enc, _, _) = encoding_rs::GB18030.encode(&late_text);
    std::fs::write(&late, enc).unwrap();
    gw.ok(&["ingest", "sunshine", late.to_str().unwrap()]);
    let third = gw.json(&["reports", "build", "--quarter", q, "--json"]);
    for b in third.as_array().unwrap() {
        let expected = if b["unit_code"] == unit.as_str() {
            "new"
        } else {
            "unchanged"
        };
        assert_eq!(b["stored"]["outcome"], expected, "{b}");
    }
    let v2 = gw.json(&["reports", "show", "--quarter", q, "--unit", &unit]);
    let v1 = gw.json(&[
        "reports",
        "show",
        "--quarter",
        q,
        "--unit",
        &unit,
        "--version",
        "1",
    ]);
    assert_eq!(v2["version"], 2);
    assert_eq!(
        v2["summary"]["total"].as_u64().unwrap(),
        v1["summary"]["total"].as_u64().unwrap() + 1
    );

    // The disclosure, in every format.
    let out = tmp.path().join("disclosure");
    for format in ["csv", "xlsx", "html"] {
        let paths = gw.ok(&[
            "reports",
            "disclose",
            "--quarter",
            q,
            "--format",
            format,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(paths.lines().count() >= 1, "{paths}");
    }
    let files = texts(&out);
    assert!(files.len() >= built.len() + 2, "{}", files.len());
    // The sample has natural persons with resident IDs: they must be masked everywhere.
    let persons: Vec<&Value> = all
        .iter()
        .flat_map(|r| r["details"].as_array().unwrap())
        .filter(|d| d["party_id_type"] == "resident_id" && d["disclosure"] == "public")
        .collect();
    assert!(!persons.is_empty(), "the sample has natural persons");
    for (path, text) in &files {
        let found = resident_ids(text);
        assert!(found.is_empty(), "{}: {found:?}", path.display());
    }
    let all_text: String = files.iter().map(|(_, t)| t.as_str()).collect();
    let masked = xianjie::model::mask_id(persons[0]["party_id"].as_str().unwrap());
    assert!(all_text.contains(&masked), "{masked}");
    // Restricted cases appear nowhere.
    let restricted: Vec<&Value> = all
        .iter()
        .flat_map(|r| r["details"].as_array().unwrap())
        .filter(|d| d["disclosure"] == "restricted")
        .collect();
    assert!(!restricted.is_empty(), "the sample has restricted cases");
    for d in restricted {
        assert!(!all_text.contains(d["case_id"].as_str().unwrap()), "{d}");
    }
    // Natural persons' addresses and phone numbers appear nowhere.
    let mut checked = 0;
    for r in &all {
        for d in r["details"].as_array().unwrap() {
            if d["party_kind"] != "natural_person" || checked >= 10 {
                continue;
            }
            let c = gw.json(&[
                "cases",
                "show",
                r["unit_code"].as_str().unwrap(),
                d["case_id"].as_str().unwrap(),
            ]);
            for field in ["address", "phone"] {
                if let Some(v) = c["party"][field].as_str() {
                    assert!(!all_text.contains(v), "{field} {v} disclosed");
                    checked += 1;
                }
            }
        }
    }
    assert!(
        checked > 0,
        "no natural person with an address or phone in the sample"
    );

    // The page renders in headless Chromium.
    let html = out.join(format!("{q}-disclosure.html"));
    let shot = tmp.path().join("shot.png");
    match Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1280,2000",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
    {
        Ok(o) => {
            assert!(o.status.success(), "{o:?}");
            assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
        }
        Err(_) => eprintln!("SKIPPED: chromium is not installed (.ci/run installs it)"),
    }
    // Every step was audited.
    let entries: Vec<Value> = gw
        .ok(&["audit", "tail", "-n", "200", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for action in ["reports.build", "reports.disclose"] {
        assert!(entries.iter().any(|e| e["action"] == action), "{action}");
    }
}

const TOBACCO: &str = "11320102466008745E";

fn submissions_config() -> String {
    format!(
        "[reports]\nformats_dir = {:?}\n[[reports.submitters]]\nunit = \"{TOBACCO}\"\nname = \"南京市玄武区烟草专卖局\"\n",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("submissions")
            .display()
            .to_string()
    )
}

#[test]
fn submissions_are_checked_versioned_audited_and_keep_their_documents() {
    let tmp = tempfile::tempdir().unwrap();
    let (gw, _) = setup(tmp.path(), &submissions_config());
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("submissions");
    let csv = samples.join("csv/samples/2026Q3.csv");
    let q = "2026Q3";
    let state = |gw: &Gateway| -> Value {
        let s = gw.json(&["reports", "status", "--quarter", q, "--json"]);
        s["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["unit_code"] == TOBACCO)
            .unwrap()
            .clone()
    };
    // Its deadline (2026-10-15) has passed with nothing submitted.
    assert_eq!(state(&gw)["state"], "overdue");

    // A valid submission with two documents.
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("玄烟罚〔2026〕11号.pdf"), b"%PDF-1.4 decision 11").unwrap();
    std::fs::write(docs.join("玄烟罚〔2026〕12号.pdf"), b"%PDF-1.4 decision 12").unwrap();
    let out = gw.ok(&[
        "reports",
        "submit",
        "--unit",
        TOBACCO,
        "--quarter",
        q,
        csv.to_str().unwrap(),
        "--documents",
        docs.to_str().unwrap(),
    ]);
    assert!(
        out.contains("stored as version 1 (4 case(s), 2 document(s))"),
        "{out}"
    );
    let s = state(&gw);
    assert_eq!(
        (s["state"].as_str(), s["late"].as_bool()),
        (Some("submitted"), Some(true))
    );
    let r = gw.json(&["reports", "show", "--quarter", q, "--unit", TOBACCO]);
    assert_eq!(r["origin"]["kind"], "submitted");
    assert_eq!(r["origin"]["format"], "csv");
    assert_eq!(r["summary"]["total"], 4);
    assert_eq!(r["summary"]["fines_fen"], 580_000);
    let listed = r["documents"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    use sha2::Digest;
    assert_eq!(
        listed[0]["sha256"],
        hex::encode(sha2::Sha256::digest(b"%PDF-1.4 decision 11"))
    );

    // The same file again: recognised, nothing new.
    let out = gw.ok(&[
        "reports",
        "submit",
        "--unit",
        TOBACCO,
        "--quarter",
        q,
        csv.to_str().unwrap(),
        "--documents",
        docs.to_str().unwrap(),
    ]);
    assert!(out.contains("identical to version 1"), "{out}");

    // Refusals name the line and say why; nothing is stored.
    let text = std::fs::read_to_string(&csv).unwrap();
    let bad_totals = tmp.path().join("bad-totals.csv");
    std::fs::write(
        &bad_totals,
        text.replace(",5800.00,1234.50,", ",5900.00,1234.50,"),
    )
    .unwrap();
    let err = gw.fails(&[
        "reports",
        "submit",
        "--unit",
        TOBACCO,
        "--quarter",
        q,
        bad_totals.to_str().unwrap(),
    ]);
    assert!(
        err.contains("合计") && err.contains("5900") && err.contains("5800"),
        "{err}"
    );
    let bad_date = tmp.path().join("bad-date.csv");
    std::fs::write(&bad_date, text.replacen("2026-07-15", "2026-10-02", 1)).unwrap();
    let err = gw.fails(&[
        "reports",
        "submit",
        "--unit",
        TOBACCO,
        "--quarter",
        q,
        bad_date.to_str().unwrap(),
    ]);
    assert!(
        err.contains("row 2") && err.contains("2026-10-02") && err.contains(q),
        "{err}"
    );
    // A unit fed by an adapter, and a quarter not ended, are refused.
    let err = gw.fails(&[
        "reports",
        "submit",
        "--unit",
        "11320102471049746T",
        "--quarter",
        q,
        csv.to_str().unwrap(),
    ]);
    assert!(err.contains("not a unit that submits"), "{err}");
    let err = gw.fails(&[
        "reports",
        "submit",
        "--unit",
        TOBACCO,
        "--quarter",
        "2026Q4",
        csv.to_str().unwrap(),
    ]);
    assert!(err.contains("has not ended"), "{err}");
    // Document copies that are not documents: every problem named, nothing stored.
    let hostile = tmp.path().join("hostile-docs");
    std::fs::create_dir_all(&hostile).unwrap();
    std::fs::write(hostile.join("run.exe"), b"MZ").unwrap();
    std::fs::write(hostile.join("page.pdf"), b"<html><script></script></html>").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", hostile.join("decision.pdf")).unwrap();
    let err = gw.fails(&[
        "reports",
        "submit",
        "--unit",
        TOBACCO,
        "--quarter",
        q,
        csv.to_str().unwrap(),
        "--documents",
        hostile.to_str().unwrap(),
    ]);
    for says in [
        "3 problem(s)",
        "'decision.pdf' in hostile-docs/ is a symbolic link",
        "'page.pdf' does not start as a .pdf file does",
        "'run.exe' is not an accepted document type",
    ] {
        assert!(err.contains(says), "{says}: {err}");
    }
    assert_eq!(
        gw.json(&["reports", "show", "--quarter", q, "--unit", TOBACCO])["version"],
        1
    );

    // A corrected resubmission (one fine changed, totals with it): version 2; version 1 readable.
    let fixed = tmp.path().join("fixed.csv");
    std::fs::write(
        &fixed,
        text.replacen(",800.00,", ",900.00,", 1)
            .replace(",5800.00,1234.50,", ",5900.00,1234.50,"),
    )
    .unwrap();
    let out = gw.ok(&[
        "reports",
        "submit",
        "--unit",
        TOBACCO,
        "--quarter",
        q,
        fixed.to_str().unwrap(),
    ]);
    assert!(out.contains("stored as version 2"), "{out}");
    let v1 = gw.json(&[
        "reports",
        "show",
        "--quarter",
        q,
        "--unit",
        TOBACCO,
        "--version",
        "1",
    ]);
    let v2 = gw.json(&["reports", "show", "--quarter", q, "--unit", TOBACCO]);
    assert_eq!(
        (
            v1["summary"]["fines_fen"].as_u64(),
            v2["summary"]["fines_fen"].as_u64()
        ),
        (Some(580_000), Some(590_000))
    );
    // The XLSX and XML forms of the sample parse too.
    for f in ["xlsx/samples/2026Q3.xlsx", "xml/samples/2026Q3.xml"] {
        gw.ok(&[
            "reports",
            "submit",
            "--unit",
            TOBACCO,
            "--quarter",
            q,
            samples.join(f).to_str().unwrap(),
        ]);
    }

    // Every submission was audited, refused ones too.
    let entries: Vec<Value> = gw
        .ok(&["audit", "tail", "-n", "100", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let submits: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "reports.submit" && e["outcome"] != "started")
        .collect();
    assert_eq!(submits.len(), 10, "{submits:?}");
    assert_eq!(
        submits.iter().filter(|e| e["outcome"] == "refused").count(),
        5
    );
}

#[test]
fn the_quarter_start_job_builds_the_previous_quarter_and_opens_its_window() {
    let tmp = tempfile::tempdir().unwrap();
    // The job fires every second here instead of at 01:00 on the first day of a quarter.
    let (gw, _) = setup(tmp.path(), "[reports]\nschedule = \"* * * * * *\"\n");
    let previous = {
        let today = chrono::Local::now().date_naive();
        xianjie::model::Quarter::of(today).previous().to_string()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let s = gw.json(&["reports", "status", "--quarter", &previous, "--json"]);
        let units = s["units"].as_array().unwrap();
        if s["window"]["opened_at"].is_string() && !units.is_empty() {
            assert!(units.iter().all(|u| u["state"] == "computed"), "{s}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job did not run: {s}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let entries: Vec<Value> = gw
        .ok(&["audit", "tail", "-n", "50", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(entries.iter().any(|e| e["action"] == "reports.build"
        && e["actor"]["id"] == "schedule:reports"
        && e["target"] == previous.as_str()));
}
