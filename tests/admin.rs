//! Integration tests of the admin socket itself, against the real gateway process: its one route
//! table (405 with `Allow`, 404, both as the JSON error the CLI shows), the refusal of other OS
//! users, and the streamed progress of an inbox scan.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use common::{Gateway, bin, write_config};
use serde_json::Value;
use xianjie::admin::client::{AdminClient, ClientError};
use xianjie::admin::{IngestEvent, ScanRequest};
use xianjie::sample::{SampleOptions, generate};

/// An answer read off the admin socket: status, headers (names lower-case), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn error(&self) -> String {
        let v: Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)));
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {v}"))
            .to_string()
    }
}

/// Sends one HTTP/1.1 request over the admin socket as it is written, without the client library.
fn request(data: &Path, method: &str, target: &str, body: &str) -> Answer {
    let mut s = UnixStream::connect(data.join("admin.sock")).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status: status.parse().unwrap(),
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// A gateway whose `sunshine` inbox holds one CSV file of 30,000 good rows (long enough to read
/// that its progress is reported while it runs); the temporary directory, the data directory, the
/// rows, the gateway.
fn with_a_large_inbox_file(seed: u64) -> (tempfile::TempDir, PathBuf, u64, Gateway) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = write_config(tmp.path(), &data);
    let files = generate(
        &tmp.path().join("samples"),
        &SampleOptions {
            cases: 50_000,
            bad_fraction: 0.0,
            seed,
        },
    )
    .unwrap();
    let csv = files.iter().find(|f| f.adapter == "sunshine").unwrap();
    let gw = Gateway::start(&cfg, &data);
    let inbox = data.join("inbox/sunshine");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::copy(&csv.path, inbox.join("export.csv")).unwrap();
    (tmp, data, csv.rows, gw)
}

/// Scans the `sunshine` inbox through the client library, handing each streamed event to
/// `on_event` as it arrives.
fn scan_sunshine(data: &Path, on_event: impl FnMut(IngestEvent)) -> Result<(), ClientError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(AdminClient::new(data).post_stream(
            "/scan",
            &ScanRequest {
                adapter: Some("sunshine".into()),
            },
            on_event,
        ))
}

#[test]
fn the_route_table_answers_wrong_methods_with_405_and_allow_and_unknown_paths_with_404() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = write_config(tmp.path(), &data);
    let gw = Gateway::start(&cfg, &data);

    // Each route's methods, as its entry in the table lists them.
    for (method, path, allow) in [
        ("DELETE", "/status", "GET,HEAD"),
        ("POST", "/status", "GET,HEAD"),
        ("GET", "/unlock", "POST"),
        ("GET", "/ports/open", "POST"),
        ("PUT", "/clients", "GET,HEAD,POST"),
        ("GET", "/push/dead/requeue", "POST"),
        ("POST", "/push/dead/7", "GET,HEAD"),
        ("GET", "/quarantine/retry", "POST"),
    ] {
        let a = request(&data, method, path, "");
        assert_eq!(a.status, 405, "{method} {path}");
        assert_eq!(a.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(a.header("content-type"), Some("application/json"));
        let msg = a.error();
        assert!(
            msg.contains(path) && msg.contains(method) && msg.contains(allow),
            "{method} {path}: {msg}"
        );
    }

    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/status/"),
        ("POST", "/ports/opened"),
        ("GET", "/audit/proof/other"),
        ("GET", "/cases/only-a-unit"),
    ] {
        let a = request(&data, method, path, "");
        assert_eq!(a.status, 404, "{method} {path}");
        assert_eq!(a.header("allow"), None);
        assert_eq!(a.error(), format!("no admin route {method} {path}"));
    }

    // What the extractors refuse comes back in the same form, naming the problem.
    let a = request(&data, "GET", "/audit/tail?n=many", "");
    assert_eq!(a.status, 400);
    assert!(a.error().contains("n: invalid digit"), "{}", a.error());
    let a = request(&data, "GET", "/audit/tail?n=1&n=2", "");
    assert_eq!(a.status, 400, "a repeated parameter is refused");
    assert!(a.error().contains("duplicate field `n`"), "{}", a.error());
    let a = request(&data, "POST", "/ingest", r#"{"path":"/x"}"#);
    assert_eq!(a.status, 422);
    assert!(
        a.error().contains("missing field `adapter`"),
        "{}",
        a.error()
    );

    // The same route answers when asked with its method, and the client shows a refusal's message.
    assert_eq!(request(&data, "GET", "/status", "").status, 200);
    assert_eq!(request(&data, "HEAD", "/status", "").status, 200);
    let err = gw.fails(&["quarantine", "show", "999"]);
    assert!(err.contains("no quarantine entry 999"), "{err}");
    gw.stop();
}

#[test]
fn a_connection_from_another_os_user_is_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    let own = std::fs::metadata("/proc/self").unwrap().uid();
    if own != 0 {
        // Running a client as another user needs root; the decision itself is unit-tested in
        // `admin::server` (`admits`).
        eprintln!("not root: cannot connect as another OS user here");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = write_config(tmp.path(), &data);
    let gw = Gateway::start(&cfg, &data);
    // Open the way to the socket for everyone, so that only the peer check stands between
    // another user and the admin API.
    for dir in [tmp.path(), data.as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    let sock = data.join("admin.sock");
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();

    let nobody = 65534;
    let out = std::process::Command::new(bin())
        .arg("--data")
        .arg(&data)
        .args(["status", "--json"])
        .uid(nobody)
        .gid(nobody)
        .env_remove("XIANJIE_DATA")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "another user got an answer: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("admin connection failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The gateway said why, and still serves its own user.
    let status = gw.json(&["status", "--json"]);
    assert_eq!(status["sealed"], true);
    let log = std::fs::read_to_string(&gw.log).unwrap();
    assert!(
        log.contains("admin connection from another OS user refused")
            && log.contains(&nobody.to_string()),
        "{log}"
    );
    gw.stop();
}

#[test]
fn a_scan_streams_its_progress_while_the_run_goes_on() {
    let (_tmp, data, rows, gw) = with_a_large_inbox_file(5);

    // When the first progress line arrives, the run must still be going: the adapter has no
    // finished scan yet and not every row is stored. A response held back until the end would
    // show the finished scan instead.
    let mut kinds: Vec<&'static str> = Vec::new();
    let mut during: Option<Value> = None;
    let mut done = None;
    scan_sunshine(&data, |ev| {
        let kind = match &ev {
            IngestEvent::Progress(_) => "progress",
            IngestEvent::File { .. } => "file",
            IngestEvent::Done(s) => {
                done = Some(*s);
                "done"
            }
            IngestEvent::Error(e) => panic!("the scan failed: {e}"),
        };
        if kind == "progress" && during.is_none() {
            during =
                Some(serde_json::from_slice(&request(&data, "GET", "/status", "").body).unwrap());
        }
        kinds.push(kind);
    })
    .unwrap();

    let done = done.expect("the stream ends with the totals");
    assert_eq!(done.accepted, rows);
    let during = during.expect("progress lines arrive before the end");
    let sunshine = during["adapters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "sunshine")
        .unwrap();
    assert!(
        sunshine["last_scan"].is_null(),
        "the first progress line came only after the run ended: {sunshine}"
    );
    assert!(during["cases"].as_u64().unwrap() < rows, "{during}");
    // Progress, then the file, then the totals, in that order.
    let first_file = kinds.iter().position(|k| *k == "file").unwrap();
    assert!(
        kinds[..first_file].iter().all(|k| *k == "progress"),
        "{kinds:?}"
    );
    assert!(first_file >= 2, "several progress lines: {kinds:?}");
    assert_eq!(kinds.last(), Some(&"done"));
    let after = gw.json(&["status", "--json"]);
    assert_eq!(after["cases"].as_u64(), Some(rows));
    gw.stop();
}

#[test]
fn a_stop_during_a_scan_lets_its_stream_finish_before_the_gateway_exits() {
    let (_tmp, data, _, mut gw) = with_a_large_inbox_file(6);

    // SIGTERM as soon as the run is under way: the gateway stops accepting, the run stops at its
    // next safe point, and the answer in flight still ends properly, saying so.
    let pid = gw.child.id().to_string();
    let mut last = None;
    let mut signalled = false;
    scan_sunshine(&data, |ev| {
        if matches!(ev, IngestEvent::Progress(_)) && !signalled {
            let killed = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            assert!(killed.success());
            signalled = true;
        }
        last = Some(ev);
    })
    .expect("the stream ends cleanly, not cut off");
    assert!(signalled, "no progress before the end");
    match last {
        Some(IngestEvent::Error(e)) => assert!(e.contains("stopped by shutdown"), "{e}"),
        other => panic!("the stream should end saying the run was stopped: {other:?}"),
    }
    let status = gw.child.wait().unwrap();
    assert!(
        status.success(),
        "gateway did not stop cleanly: {status}: {}",
        std::fs::read_to_string(&gw.log).unwrap_or_default()
    );
    assert!(!data.join("admin.sock").exists());
}

#[test]
fn a_request_in_flight_at_stop_is_answered_and_audited_before_the_gateway_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = write_config(tmp.path(), &data);
    let mut gw = Gateway::start(&cfg, &data);

    // An unlock whose body has not arrived yet when the stop comes.
    let body = r#"{"passphrase":"correct horse battery staple"}"#;
    let mut s = UnixStream::connect(data.join("admin.sock")).unwrap();
    write!(
        s,
        "POST /unlock HTTP/1.1\r\nhost: admin\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = gw.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(
        gw.child.try_wait().unwrap().is_none(),
        "the gateway stopped with a request in flight: {}",
        std::fs::read_to_string(&gw.log).unwrap_or_default()
    );
    s.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 200 "), "{raw}");
    assert!(raw.contains(r#""message":"unlocked""#), "{raw}");
    assert!(gw.child.wait().unwrap().success());

    // Its audit entries precede the stop, which the final checkpoint closes.
    let gw = Gateway::start(&cfg, &data);
    let tail = gw.ok(&["audit", "tail", "-n", "20", "--json"]);
    let actions: Vec<String> = tail
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let at = |a: &str| {
        actions
            .iter()
            .position(|x| x == a)
            .unwrap_or_else(|| panic!("no {a} in {actions:?}"))
    };
    assert!(at("keystore.unlock") < at("gateway.stop"), "{actions:?}");
    gw.stop();
}

/// Leads follow ingest, and `leads rebuild` evaluates every stored case again under the rules the
/// gateway loaded at start, audited before and after.
#[test]
fn leads_follow_ingest_and_a_rebuild_is_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = tmp.path().join("xianjie.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\nadapters_dir = {:?}\nrules_dir = {:?}\n[log]\nlevel = \"warn\"\n[server]\nlisten = \"off\"\n",
            data.display().to_string(),
            root.join("adapters").display().to_string(),
            root.join("rules").display().to_string(),
        ),
    )
    .unwrap();
    common::add_store(&cfg, &data);
    let gw = Gateway::start(&cfg, &data);
    let inbox = data.join("inbox/sunshine");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::copy(
        root.join("adapters/sunshine/cases/mixed.csv"),
        inbox.join("export.csv"),
    )
    .unwrap();
    scan_sunshine(&data, |_| {}).unwrap();

    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("adapters/sunshine/cases/mixed.csv.expected.json"))
            .unwrap(),
    )
    .unwrap();
    let stored = expected["cases"].as_array().unwrap().len() as u64;
    let rules = std::fs::read_dir(root.join("rules"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count() as u64;
    // What the rules say of the golden cases when evaluated directly, each with its party's
    // other decisions: the gateway's stored leads must come to the same count.
    let cases: Vec<xianjie::model::Case> = expected["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| serde_json::from_value(c.clone()).unwrap())
        .collect();
    let loaded = xianjie::supervision::load_dir(&root.join("rules")).unwrap();
    let cal = xianjie::push::calendar::WorkCalendar::official().unwrap();
    let now = xianjie::supervision::leads::cst(chrono::Utc::now());
    let direct: u64 = cases
        .iter()
        .map(|c| {
            let party: Vec<xianjie::model::Case> = cases
                .iter()
                .filter(|o| o.party.id.is_some() && o.party.id == c.party.id)
                .cloned()
                .collect();
            xianjie::supervision::leads::evaluate(c, &party, &loaded, &cal, now).len() as u64
        })
        .sum();
    let out = gw.ok(&["leads", "rebuild", "--json"]);
    let a: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(a["cases"].as_u64(), Some(stored), "{a}");
    assert_eq!(a["rules"].as_u64(), Some(rules), "{a}");
    assert_eq!(a["open"].as_u64(), Some(direct), "{a}");
    assert!(
        direct > 0,
        "the golden cases raise no lead: the check would prove nothing"
    );

    let tail = request(&data, "GET", "/audit/tail?n=5", "");
    let text = String::from_utf8(tail.body).unwrap();
    assert_eq!(text.matches("leads.rebuild").count(), 2, "{text}");
    assert!(text.contains(&format!("{rules} rule(s)")), "{text}");
    gw.stop();
}
