//! Pushes end to end over real HTTPS: the real gateway process pushes to the real
//! `xianjie province-sim` process. Signed packages that `xmllint --schema` accepts; every fault
//! the simulator injects with the state it leaves; dead letters and requeueing; retractions and
//! corrections; a sealed keystore holding the queue; a receiver outage followed by a full drain;
//! scheduled cycles; and a crash test that SIGKILLs the gateway during the push of 10,000 records
//! and finds in the simulator exactly what a clean run delivers.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{CREDENTIAL, Gateway, Reply, Sim, bin, secret_file, start_sim};
use serde_json::Value;

const PASS: &str = "push test passphrase 42";

struct Env {
    dir: tempfile::TempDir,
    certs: PathBuf,
    data: PathBuf,
    cfg: PathBuf,
    pass: PathBuf,
    sim: Sim,
    gw: Option<Gateway>,
}

impl Env {
    /// Certificates, a simulator with `faults`, and an unlocked gateway whose one destination
    /// (`province`) points at it; `settings` override the destination's defaults here.
    fn new(faults: &str, settings: &[(&str, &str)]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let out = Command::new(bin())
            .args(["certs", "dev", "--out"])
            .arg(&certs)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let sim = start_sim(dir.path(), &certs, faults);
        let data = dir.path().join("data");
        let mut dest = vec![
            ("schedule", "\"0 0 0 1 1 *\"".to_string()),
            ("batch_size", "200".into()),
            ("retry_initial_ms", "20".into()),
            ("retry_max_ms", "200".into()),
            ("timeout_secs", "10".into()),
            ("give_up_secs", "120".into()),
        ];
        for (k, v) in settings {
            dest.retain(|(d, _)| d != k);
            dest.push((k, v.replace("{sim}", &sim.addr)));
        }
        let dest: String = dest.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        let cfg = dir.path().join("xianjie.toml");
        std::fs::write(
            &cfg,
            format!(
                "data_dir = {:?}\nadapters_dir = {:?}\n[log]\nlevel = \"info\"\n[server]\nlisten = \"off\"\n[calendar]\nholidays = [\"2026-10-01\", \"2026-10-03\"]\nworkdays = [\"2026-10-10\"]\n[[destinations]]\nname = \"province\"\nurl = \"https://{}/packages\"\nca = {:?}\nactions = [\"inspection\", \"penalty\", \"licensing\"]\ncredential = \"province\"\nauth = \"bearer\"\n{dest}",
                data.display().to_string(),
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("adapters")
                    .display()
                    .to_string(),
                sim.addr,
                certs.join("ca.pem").display().to_string(),
            ),
        )
        .unwrap();
        common::add_store(&cfg, &data);
        let pass = secret_file(&dir.path().join("pass"), PASS);
        let mut env = Env {
            dir,
            certs,
            data,
            cfg,
            pass,
            sim,
            gw: None,
        };
        env.start();
        let out = env
            .gw()
            .cli_stdin(&["credentials", "set", "province"], CREDENTIAL);
        assert!(out.status.success(), "{out:?}");
        env
    }

    fn start(&mut self) {
        self.gw = Some(Gateway::start_with(
            &self.cfg,
            &self.data,
            &["--passphrase-file", self.pass.to_str().unwrap()],
        ));
    }

    fn gw(&self) -> &Gateway {
        self.gw.as_ref().unwrap()
    }

    /// Stops the gateway cleanly (so the store can be opened directly).
    fn stop(&mut self) {
        self.gw.take().unwrap().stop();
    }

    fn kill(&mut self) {
        let mut gw = self.gw.take().unwrap();
        gw.child.kill().unwrap();
        gw.child.wait().unwrap();
    }

    fn sim(&self, method: &str, path: &str, body: &str) -> Reply {
        common::https(
            &self.certs.join("ca.pem"),
            None,
            &self.sim.addr,
            method,
            path,
            &[],
            body.as_bytes().to_vec(),
        )
        .unwrap()
    }

    fn records(&self) -> Vec<Value> {
        self.sim("GET", "/sim/records", "")
            .json()
            .as_array()
            .unwrap()
            .clone()
    }

    fn stats(&self) -> Value {
        self.sim("GET", "/sim/stats", "").json()
    }

    fn faults(&self, spec: &str) {
        let r = if spec.is_empty() {
            self.sim("DELETE", "/sim/faults", "")
        } else {
            self.sim("POST", "/sim/faults", spec)
        };
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }

    /// Writes sample inputs and ingests those of `adapters`.
    fn ingest_sample(&self, cases: u64, seed: u64, adapters: &[&str]) -> PathBuf {
        let out = self.dir.path().join(format!("sample-{seed}"));
        let o = Command::new(bin())
            .args(["sample", "--cases", &cases.to_string(), "--seed"])
            .arg(seed.to_string())
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        for a in adapters {
            self.gw()
                .ok(&["ingest", a, out.join(a).to_str().unwrap(), "--json"]);
        }
        out
    }

    fn run(&self) -> Value {
        let v = self.gw().json(&["push", "run", "--json"]);
        v[0].clone()
    }

    fn status(&self) -> Value {
        self.gw().json(&["push", "status", "--json"])[0].clone()
    }

    /// Checks the packages the simulator kept under `ids` with `xmllint --schema` (libxml2).
    fn xmllint(&self, ids: &[String]) {
        if Command::new("xmllint").arg("--version").output().is_err() {
            eprintln!(
                "SKIPPED: xmllint is not installed (Debian: libxml2-utils; .ci/run installs it)"
            );
            return;
        }
        for id in ids {
            let body = self.sim("GET", &format!("/sim/packages/{id}"), "").body;
            self.xmllint_against("schemas/province/package.xsd", id, &body);
        }
    }

    /// Checks `body` (named `id`) with `xmllint --schema` against the project's `xsd`.
    fn xmllint_against(&self, xsd: &str, id: &str, body: &[u8]) {
        let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join(xsd);
        let file = self.dir.path().join(format!("{id}.xml"));
        std::fs::write(&file, body).unwrap();
        let out = Command::new("xmllint")
            .args(["--noout", "--schema"])
            .arg(&xsd)
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "xmllint refused {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The ids of the packages the simulator kept (the newest 64).
    fn kept_packages(&self) -> Vec<String> {
        serde_json::from_value(self.sim("GET", "/sim/packages", "").json()).unwrap()
    }

    /// With the gateway stopped, runs `f` on its store, then starts it again.
    fn with_store<T>(&mut self, f: impl FnOnce(&xianjie::store::Store) -> T) -> T {
        self.stop();
        let out = {
            let store = common::open_store(&self.data);
            let out = f(&store);
            store.flush().unwrap();
            out
        };
        self.start();
        out
    }

    /// Runs a cycle that must settle every queued entry, `dead` of them dead-lettered and the
    /// rest delivered or not needed.
    fn run_settling(&self, dead: u64) -> Value {
        let queued = n(&self.status()["queued"]);
        let report = self.run();
        assert_eq!(report["error"], Value::Null, "{report}");
        assert_eq!(n(&report["dead_lettered"]), dead, "{report}");
        assert_eq!(
            n(&report["accepted"]) + n(&report["skipped"]) + dead,
            queued,
            "{report}"
        );
        assert_eq!(n(&self.status()["queued"]), 0);
        report
    }

    fn dead(&self) -> Vec<Value> {
        self.gw()
            .json(&["push", "dead", "list", "--json"])
            .as_array()
            .unwrap()
            .clone()
    }
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// (record id, version) of every record the simulator holds; each must be there once.
fn record_set(records: &[Value]) -> BTreeSet<(String, u64)> {
    let set: BTreeSet<(String, u64)> = records
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), n(&r["version"])))
        .collect();
    assert_eq!(set.len(), records.len(), "a record version kept twice");
    set
}

fn audit_actions(gw: &Gateway, last: usize) -> Vec<Value> {
    gw.ok(&["audit", "tail", "-n", &last.to_string(), "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn signed_packages_are_valid_delivered_once_and_audited() {
    let env = Env::new("", &[]);
    // The simulator checks signatures with the key the gateway publishes.
    let key = env.gw().ok(&["push", "key"]);
    assert!(key.starts_with("push-"), "{key}");
    let r = env.sim("PUT", "/sim/verify-key", key.trim());
    assert_eq!(r.status, 200);
    let pem = env.gw().ok(&["push", "key", "--pem"]);
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");

    env.ingest_sample(400, 1, &["sunshine", "market-inspection", "tax"]);
    let queued = n(&env.status()["queued"]);
    assert!(queued > 100, "{queued}");
    let report = env.run();
    assert_eq!(report["error"], Value::Null, "{report}");
    let accepted = n(&report["accepted"]);
    assert_eq!(
        accepted + n(&report["skipped"]) + n(&report["dead_lettered"]),
        queued,
        "{report}"
    );
    assert_eq!(n(&report["dead_lettered"]), 0, "{report}");
    let records = env.records();
    assert_eq!(record_set(&records).len() as u64, accepted);
    let s = env.status();
    assert_eq!((n(&s["queued"]), n(&s["delivered"])), (0, accepted), "{s}");
    assert!(s["last_success"].is_string(), "{s}");
    // Every kind of record arrived, with its fields.
    for kind in ["PenaltyRecord", "LicenseRecord", "InspectionResult"] {
        assert!(
            records.iter().any(|r| r["kind"] == kind),
            "no {kind} delivered"
        );
    }
    let penalty = records
        .iter()
        .find(|r| r["kind"] == "PenaltyRecord")
        .unwrap();
    assert!(penalty["fields"]["CF_WSH"].is_string(), "{penalty}");

    // Packages validate against the XSD with libxml2 as well.
    let ids = env.kept_packages();
    assert_eq!(ids.len() as u64, n(&report["packages"]));
    env.xmllint(&ids);

    // The signature verifies as the README tells a receiver to check it: with OpenSSL, against
    // the PEM key `xianjie push key --pem` prints.
    let pem_file = env.dir.path().join("push.pem");
    std::fs::write(&pem_file, &pem).unwrap();
    let reply = env.sim("GET", &format!("/sim/packages/{}", ids[0]), "");
    let header = reply.headers["x-xianjie-signature"]
        .to_str()
        .unwrap()
        .to_string();
    let (key_id, sig) = header
        .strip_prefix("keyid=")
        .and_then(|h| h.split_once(";ed25519="))
        .unwrap();
    assert_eq!(key_id, key.split_whitespace().next().unwrap());
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig)
        .unwrap();
    let (body_file, sig_file) = (
        env.dir.path().join("body.xml"),
        env.dir.path().join("sig.bin"),
    );
    std::fs::write(&body_file, &reply.body).unwrap();
    std::fs::write(&sig_file, &sig).unwrap();
    let verify = |body: &Path| {
        Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(&pem_file)
            .arg("-in")
            .arg(body)
            .arg("-sigfile")
            .arg(&sig_file)
            .output()
    };
    match verify(&body_file) {
        Ok(out) => {
            assert!(out.status.success(), "{out:?}");
            let mut tampered = reply.body.clone();
            tampered[100] ^= 1;
            std::fs::write(&body_file, &tampered).unwrap();
            assert!(!verify(&body_file).unwrap().status.success());
        }
        Err(_) => eprintln!("SKIPPED: openssl is not installed"),
    }

    // Audited: each send, each receipt, each use of the credential by version.
    let entries = audit_actions(env.gw(), 400);
    let count = |a: &str| entries.iter().filter(|e| e["action"] == a).count() as u64;
    assert_eq!(count("push.send"), n(&report["packages"]));
    assert_eq!(count("push.receipt"), n(&report["packages"]));
    let uses: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "credential.use")
        .collect();
    assert_eq!(uses.len() as u64, n(&report["packages"]));
    assert!(
        uses.iter().all(|e| e["details"]["version"] == 1),
        "{:?}",
        uses[0]
    );
    // The credential itself appears nowhere in the gateway's log or audit log.
    let log = std::fs::read_to_string(&env.gw().log).unwrap();
    assert!(!log.contains(CREDENTIAL));
    let (entries, last) = common::audit_at_rest(&env.data);
    for text in entries.iter().chain(&last) {
        assert!(!text.contains(CREDENTIAL), "{text}");
    }

    // A second cycle has nothing to send.
    let again = env.run();
    assert_eq!(
        (n(&again["packages"]), n(&again["accepted"])),
        (0, 0),
        "{again}"
    );

    // A receiver that no longer trusts the key refuses everything: the queue holds, nothing
    // is dead-lettered, and the error says what to do.
    env.ingest_sample(60, 2, &["tax"]);
    let other = "push-other AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    assert_eq!(env.sim("PUT", "/sim/verify-key", other).status, 200);
    let before = n(&env.status()["queued"]);
    assert!(before > 0);
    let out = env.gw().cli(&["push", "run"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("HTTP 401"), "{text}");
    assert_eq!(n(&env.status()["queued"]), before);
    assert!(env.dead().is_empty());
    assert_eq!(env.sim("PUT", "/sim/verify-key", key.trim()).status, 200);
    let report = env.run();
    assert_eq!(report["error"], Value::Null, "{report}");
    assert_eq!(n(&env.status()["queued"]), 0);
}

#[test]
fn faults_are_retried_refusals_dead_lettered_and_requeued() {
    let env = Env::new("500,503x2,429:1,delay:300,reset", &[("batch_size", "60")]);
    env.ingest_sample(300, 3, &["sunshine", "market-inspection", "tax"]);
    let queued = n(&env.status()["queued"]);
    let started = Instant::now();
    let report = env.run();
    let took = started.elapsed();
    assert_eq!(report["error"], Value::Null, "{report}");
    // 500, 503, 503, 429 and the reset each cost one retry; the delay is only slow.
    assert_eq!(n(&report["retries"]), 5, "{report}");
    // Retry-After: 1 was honoured.
    assert!(took >= Duration::from_secs(1), "{took:?}");
    // The package whose receipt was lost in the reset was stored; its resend came back duplicate.
    assert!(n(&report["duplicates"]) > 0, "{report}");
    let stats = env.stats();
    assert_eq!(n(&stats["faults_injected"]), 6, "{stats}");
    assert_eq!(n(&stats["duplicates"]), n(&report["duplicates"]));
    let delivered = n(&report["accepted"]) + n(&report["duplicates"]);
    assert_eq!(record_set(&env.records()).len() as u64, delivered);
    assert_eq!(delivered + n(&report["skipped"]), queued, "{report}");
    let s = env.status();
    assert_eq!((n(&s["queued"]), n(&s["delivered"])), (0, delivered), "{s}");
    assert!(
        s["last_error"].as_str().unwrap_or("").contains("HTTP")
            || s["last_error"].as_str().unwrap_or("").contains("exchange"),
        "{s}"
    );
    // Failed attempts are audited too.
    let entries = audit_actions(env.gw(), 300);
    assert!(
        entries
            .iter()
            .filter(|e| e["action"] == "push.receipt" && e["outcome"] == "failed")
            .count()
            >= 5
    );

    // A package refused once as a whole (400): it is split, and both halves go through.
    env.ingest_sample(80, 4, &["tax"]);
    env.faults("400");
    env.run_settling(0);
    let entries = audit_actions(env.gw(), 100);
    let split: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "push.receipt" && e["details"]["split"].is_u64())
        .collect();
    assert_eq!(split.len(), 1, "one refused package split");
    let halves = entries
        .iter()
        .filter(|e| {
            e["action"] == "push.send"
                && e["details"]["split_from"] == split[0]["details"]["package"]
        })
        .count();
    assert_eq!(halves, 2);

    // Refused every time (400): each record ends up alone, and each is dead-lettered with the
    // receiver's answer — none for another's fault, since every one of them is refused.
    env.ingest_sample(40, 11, &["tax"]);
    env.faults("400x1000000");
    let report = env.run();
    let refused = n(&report["dead_lettered"]);
    assert!(refused > 1, "{report}");
    assert_eq!(n(&report["accepted"]), 0, "{report}");
    assert_eq!(n(&env.status()["queued"]), 0);
    let dead = env.dead();
    assert_eq!(dead.len() as u64, refused);
    assert!(
        dead.iter()
            .all(|d| d["code"] == "HTTP-400" && d["http_status"] == 400)
    );
    assert!(
        dead.iter()
            .all(|d| d["reason"].as_str().unwrap().contains("injected fault 400")),
        "{}",
        dead[0]
    );
    // Each was isolated in a package of its own before it was dead-lettered.
    let packages: std::collections::BTreeSet<&str> = dead
        .iter()
        .map(|d| d["package_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        packages.len() as u64,
        refused,
        "each dead letter in its own package"
    );
    assert!(
        dead[0]["response"].as_str().unwrap().contains("fault"),
        "{}",
        dead[0]
    );
    let shown = env
        .gw()
        .ok(&["push", "dead", "show", &dead[0]["id"].to_string()]);
    assert!(shown.contains("HTTP-400"), "{shown}");
    assert_eq!(n(&env.status()["dead_letters"]), refused);

    // Requeued, then one chosen record rejected by the platform: only it is dead-lettered.
    let victim = dead[0]["record_id"].as_str().unwrap().to_string();
    env.faults(&format!("reject:{victim}"));
    let out = env.gw().ok(&["push", "dead", "requeue", "--all"]);
    assert!(out.contains(&format!("{refused} dead letter(s)")), "{out}");
    assert!(env.dead().is_empty());
    let report = env.run();
    assert_eq!(n(&report["dead_lettered"]), 1, "{report}");
    assert_eq!(n(&report["accepted"]), refused - 1, "{report}");
    let dead = env.dead();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0]["record_id"].as_str(), dead[0]["code"].as_str()),
        (Some(victim.as_str()), Some("E-SIM-REJECT"))
    );
    assert_eq!(dead[0]["reason"], "rejected by fault injection");

    // The platform is fixed: requeue by id, and it goes through.
    env.faults("");
    env.gw()
        .ok(&["push", "dead", "requeue", &dead[0]["id"].to_string()]);
    let report = env.run();
    assert_eq!(n(&report["accepted"]), 1, "{report}");
    let s = env.status();
    assert_eq!((n(&s["queued"]), n(&s["dead_letters"])), (0, 0), "{s}");
    assert!(record_set(&env.records()).contains(&(victim, 1)));
}

/// Rewrites one column of chosen rows of a GB18030 sunshine CSV.
fn edit_sunshine(src: &Path, dst: &Path, edits: &[(&str, &str, &str)]) {
    let bytes = std::fs::read(src).unwrap();
    let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&headers).unwrap();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let mut fields: Vec<String> = rec.iter().map(str::to_string).collect();
        for (case_id, column, value) in edits {
            if fields[col("办件编号")] == *case_id {
                fields[col(column)] = value.to_string();
            }
        }
        w.write_record(&fields).unwrap();
    }
    let utf8 = String::from_utf8(w.into_inner().unwrap()).unwrap();
    let (out, _, _) = encoding_rs::GB18030.encode(&utf8);
    std::fs::write(dst, out).unwrap();
}

#[test]
fn retractions_and_corrections_reach_the_platform() {
    let env = Env::new("", &[]);
    let sample = env.ingest_sample(300, 5, &["sunshine"]);
    let first = env.run();
    assert_eq!(first["error"], Value::Null, "{first}");
    // Revoked decisions never delivered are not retracted (there is nothing to withdraw).
    assert!(env.records().iter().all(|r| r["op"] == "upsert"));

    // Two delivered penalty decisions: one is revoked, the other corrected.
    let (csv_path, rows) = sunshine_rows(&sample);
    let penalties: Vec<(String, String)> = rows
        .into_iter()
        .filter(|r| r[4] == "行政处罚" && r[5] == "正常")
        .map(|[unit, case, ..]| (unit, case))
        .take(3)
        .collect();
    assert_eq!(penalties.len(), 3);
    let record_id = |(unit, case): &(String, String)| {
        let c: xianjie::model::Case =
            serde_json::from_value(env.gw().json(&["cases", "show", unit, case])).unwrap();
        xianjie::push::package::record_id(&c)
    };
    let (revoked, corrected) = (record_id(&penalties[0]), record_id(&penalties[1]));
    let delivered = record_set(&env.records());
    assert!(
        delivered.contains(&(revoked.clone(), 1)) && delivered.contains(&(corrected.clone(), 1))
    );

    let edited = env.dir.path().join("edited.csv");
    edit_sunshine(
        &csv_path,
        &edited,
        &[
            (&penalties[0].1, "办件状态", "已撤销"),
            (
                &penalties[1].1,
                "处理结果",
                "经复核，更正为警告并罚款人民币伍佰元整",
            ),
        ],
    );
    let summary = env
        .gw()
        .json(&["ingest", "sunshine", edited.to_str().unwrap(), "--json"]);
    assert_eq!(n(&summary["updated"]), 2, "{summary}");
    let report = env.run();
    assert_eq!(n(&report["accepted"]), 2, "{report}");
    let records = env.records();
    let find = |id: &str, v: u64| {
        records
            .iter()
            .find(|r| r["id"] == id && r["version"] == v)
            .unwrap_or_else(|| panic!("{id} v{v} not delivered"))
            .clone()
    };
    let r = find(&revoked, 2);
    assert_eq!(
        (r["op"].as_str(), r["kind"].as_str()),
        (Some("retract"), Some("PenaltyRecord"))
    );
    let c = find(&corrected, 2);
    assert_eq!(c["op"], "upsert");
    assert_eq!(
        c["fields"]["CF_NR"],
        "经复核，更正为警告并罚款人民币伍佰元整"
    );
    assert_eq!(n(&env.stats()["retractions"]), 1);

    // Deadlines across a weekend and the holidays: a penalty decided on Wednesday 2026-09-30 is
    // due 7 working days later. The shipped 2026 table gives 10-01..07 off (the configuration
    // repeats Thu 1 and, as the notice writes it, Sat 3: accepted) and Sat 10 worked (调休):
    // Thu 8, Fri 9, Sat 10, Mon 12, Tue 13, Wed 14, Thu 15 → due Thursday 2026-10-15 (without
    // the calendar it would be Fri 9).
    // Re-ingests the edited file with the third penalty filed, decided and closed on other dates
    // and under a new case number: a decision the platform has not received, so its deadline is
    // a first publication's, counted from the decision (a change to a delivered one would be
    // due 3 working days after the change).
    let fresh = format!("{}-N", penalties[2].1);
    let redate = |filed: &str, decided: &str, closed: &str| {
        let redated = env.dir.path().join(format!("redated-{decided}.csv"));
        edit_sunshine(
            &edited,
            &redated,
            &[
                (&penalties[2].1, "立案日期", filed),
                (&penalties[2].1, "决定日期", decided),
                (&penalties[2].1, "结案日期", closed),
                (&penalties[2].1, "办件编号", &fresh),
            ],
        );
        env.gw()
            .json(&["ingest", "sunshine", redated.to_str().unwrap(), "--json"])
    };
    let summary = redate("2026-09-21", "2026-09-30", "2026-10-09");
    assert_eq!(n(&summary["updated"]), 0, "{summary}");
    let s = env.status();
    assert_eq!(n(&s["queued"]), 1, "{s}");
    assert_eq!(s["deadlines"]["next_due"], "2026-10-15", "{s}");
    let today = chrono::Local::now().date_naive();
    let due = chrono::NaiveDate::from_ymd_opt(2026, 10, 15).unwrap();
    assert_eq!(n(&s["deadlines"]["overdue"]), u64::from(today > due), "{s}");
    let uncovered = |s: &Value| -> Vec<u64> {
        s["deadlines"]["uncovered_years"]
            .as_array()
            .unwrap_or_else(|| panic!("{s}"))
            .iter()
            .map(n)
            .collect()
    };
    assert!(!uncovered(&s).contains(&2023), "{s}");

    // Redated into 2023, a year without a shipped table: its count is Monday to Friday only
    // (Wed 2023-09-27 + 7 → Fri 10-06, though 10-02..06 were holidays), and status says so.
    let summary = redate("2023-09-20", "2023-09-27", "2023-10-09");
    assert_eq!(n(&summary["updated"]), 1, "{summary}");
    // Deadlines are recomputed at most every 10 s.
    let started = std::time::Instant::now();
    let s = loop {
        let s = env.status();
        if s["deadlines"]["next_due"] != "2026-10-15" || started.elapsed() > Duration::from_secs(30)
        {
            break s;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(s["deadlines"]["next_due"], "2023-10-06", "{s}");
    assert!(uncovered(&s).contains(&2023), "{s}");
    let text = env.gw().ok(&["push", "status"]);
    assert!(
        text.lines()
            .any(|l| l.contains("calendar") && l.contains("no official holiday table for 2023")),
        "{text}"
    );
}

/// The rows of the sample's sunshine CSV: its path and (unit, case, party kind, 公开属性, 办件类型,
/// 办件状态) per row.
fn sunshine_rows(sample: &Path) -> (PathBuf, Vec<[String; 6]>) {
    let csv_path = std::fs::read_dir(sample.join("sunshine"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "csv"))
        .unwrap();
    let bytes = std::fs::read(&csv_path).unwrap();
    let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let cols = [
        "执法主体统一社会信用代码",
        "办件编号",
        "当事人类型",
        "公开属性",
        "办件类型",
        "办件状态",
    ]
    .map(col);
    let rows = rdr
        .records()
        .map(Result::unwrap)
        .map(|r| cols.map(|c| r[c].to_string()))
        .collect();
    (csv_path, rows)
}

#[test]
fn protected_decisions_never_reach_a_public_destination() {
    let env = Env::new("", &[]);
    let sample = env.ingest_sample(400, 11, &["sunshine"]);
    let (csv_path, rows) = sunshine_rows(&sample);
    let record_id = |unit: &str, case: &str| {
        let c: xianjie::model::Case =
            serde_json::from_value(env.gw().json(&["cases", "show", unit, case])).unwrap();
        xianjie::push::package::record_id(&c)
    };
    let pushed = |r: &[String; 6]| ["行政处罚", "行政许可"].contains(&r[4].as_str());
    let restricted: Vec<String> = rows
        .iter()
        .filter(|r| pushed(r) && r[3] == "不公开")
        .map(|r| record_id(&r[0], &r[1]))
        .collect();
    assert!(
        !restricted.is_empty(),
        "the sample has no restricted decision"
    );
    let first = env.run();
    assert_eq!(first["error"], Value::Null, "{first}");
    let delivered: BTreeSet<String> = env
        .records()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!delivered.is_empty());
    for id in &restricted {
        assert!(
            !delivered.contains(id),
            "restricted {id} reached the public platform"
        );
    }

    // Two delivered decisions of natural persons: one turns restricted, the other turns out to be
    // a minor's (the ID corrected to one born in 2012). Both are withdrawn, with their reason.
    let natural: Vec<&[String; 6]> = rows
        .iter()
        .filter(|r| r[4] == "行政处罚" && r[5] == "正常" && r[3] == "公开" && r[2] == "自然人")
        .take(2)
        .collect();
    assert_eq!(natural.len(), 2);
    let ids: Vec<String> = natural.iter().map(|r| record_id(&r[0], &r[1])).collect();
    assert!(ids.iter().all(|id| delivered.contains(id)));
    let minor = xianjie::model::ResidentId::with_check("32010220120607123")
        .unwrap()
        .as_str()
        .to_string();
    let edited = env.dir.path().join("protected.csv");
    edit_sunshine(
        &csv_path,
        &edited,
        &[
            (&natural[0][1], "公开属性", "不公开"),
            (&natural[1][1], "证件号码", &minor),
        ],
    );
    let summary = env
        .gw()
        .json(&["ingest", "sunshine", edited.to_str().unwrap(), "--json"]);
    assert_eq!(n(&summary["updated"]), 2, "{summary}");
    let report = env.run();
    assert_eq!(report["error"], Value::Null, "{report}");
    let records = env.records();
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .format("%Y-%m-%d")
        .to_string();
    for (id, reason) in ids.iter().zip(["restricted", "minor"]) {
        let r = records
            .iter()
            .find(|r| r["id"] == id.as_str() && r["version"] == 2)
            .unwrap_or_else(|| panic!("{id} v2 not delivered"));
        assert_eq!(r["op"], "retract", "{r}");
        assert_eq!(r["fields"]["reason"], reason, "{r}");
        assert_eq!(r["fields"]["date"], today.as_str(), "{r}");
    }

    // A closed exchange (`public = false`) receives what the public platform must not.
    let closed = Env::new("", &[("public", "false")]);
    closed.ingest_sample(400, 11, &["sunshine"]);
    let run = closed.run();
    assert_eq!(run["error"], Value::Null, "{run}");
    let got: BTreeSet<String> = closed
        .records()
        .iter()
        .filter(|r| r["op"] == "upsert")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    for id in &restricted {
        assert!(
            got.contains(id),
            "restricted {id} missing at the closed exchange"
        );
    }
}

#[test]
fn a_sealed_keystore_holds_the_queue_and_deadlines_show() {
    let env = Env::new("", &[]);
    env.ingest_sample(200, 6, &["sunshine", "tax"]);
    let queued = n(&env.status()["queued"]);
    env.gw().ok(&["seal"]);
    let report = env.run();
    assert!(
        report["held"].as_str().unwrap().contains("sealed"),
        "{report}"
    );
    assert_eq!(n(&report["packages"]), 0);
    assert_eq!(n(&env.stats()["packages"]), 0);
    let s = env.status();
    assert_eq!(n(&s["queued"]), queued);
    assert!(s["held"].as_str().unwrap().contains("sealed"), "{s}");
    // The sample's decisions are from 2024–2025: every queued record that will be sent is long
    // overdue; those that will not (restricted, revoked and never received) have no deadline.
    let overdue = n(&s["deadlines"]["overdue"]);
    assert!(overdue > 0 && overdue < queued, "{s}");
    assert_eq!(n(&s["deadlines"]["at_risk"]), 0, "{s}");
    let text = env.gw().ok(&["push", "status"]);
    assert!(text.contains(&format!("{overdue} overdue")), "{text}");

    env.gw()
        .ok(&["unlock", "--passphrase-file", env.pass.to_str().unwrap()]);
    let report = env.run();
    assert_eq!(report["held"], Value::Null, "{report}");
    // What was overdue is exactly what was sent; the rest was not needed.
    assert_eq!(
        (n(&report["accepted"]), n(&report["skipped"])),
        (overdue, queued - overdue),
        "{report}"
    );
    let s = env.status();
    assert_eq!(
        (n(&s["queued"]), n(&s["deadlines"]["overdue"])),
        (0, 0),
        "{s}"
    );
    assert_eq!(s["held"], Value::Null);
}

#[test]
fn an_outage_of_many_backoff_periods_then_a_full_drain() {
    let env = Env::new(
        "503x40",
        &[
            ("retry_initial_ms", "5"),
            ("retry_max_ms", "40"),
            ("batch_size", "100"),
        ],
    );
    env.ingest_sample(300, 7, &["sunshine", "market-inspection", "tax"]);
    let queued = n(&env.status()["queued"]);
    let report = env.run();
    assert_eq!(report["error"], Value::Null, "{report}");
    assert_eq!(n(&report["retries"]), 40, "{report}");
    assert_eq!(n(&env.stats()["faults_injected"]), 40);
    let delivered = n(&report["accepted"]);
    assert_eq!(delivered + n(&report["skipped"]), queued);
    assert_eq!(record_set(&env.records()).len() as u64, delivered);
    assert_eq!(n(&env.status()["queued"]), 0);
}

#[test]
fn a_cycle_that_runs_out_of_time_keeps_the_queue_for_the_schedule() {
    // The schedule fires every second; the receiver is down for longer than a cycle may retry.
    let env = Env::new(
        "503x1000000",
        &[
            ("schedule", "\"* * * * * *\""),
            ("give_up_secs", "1"),
            ("retry_initial_ms", "10"),
            ("retry_max_ms", "50"),
        ],
    );
    env.ingest_sample(100, 8, &["tax"]);
    let queued = n(&env.status()["queued"]);
    assert!(queued > 0);
    let out = env.gw().cli(&["push", "run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("still failing") && err.contains("HTTP 503"),
        "{err}"
    );
    let s = env.status();
    assert_eq!(n(&s["queued"]), queued);
    assert!(s["last_error"].as_str().unwrap().contains("503"), "{s}");
    // The receiver comes back: the scheduled cycles drain the queue without anyone asking.
    env.faults("");
    let deadline = Instant::now() + Duration::from_secs(30);
    while n(&env.status()["queued"]) > 0 {
        assert!(
            Instant::now() < deadline,
            "the schedule did not drain the queue"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let entries = audit_actions(env.gw(), 2000);
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "push.send" && e["actor"]["id"] == "schedule:push:province"),
        "no scheduled send audited"
    );
}

/// Pushes `seed`'s sample through a gateway that is SIGKILLed at random moments, restarted and
/// pushed again until the queue is empty; returns what the simulator holds.
fn pushed_with_crashes(cases: u64, crashes: usize) -> (BTreeSet<(String, u64)>, u64) {
    use rand::{Rng, SeedableRng};
    // A closed exchange takes every record (restricted ones too): the whole sample is pushed.
    let mut env = Env::new("", &[("batch_size", "250"), ("public", "false")]);
    env.ingest_sample(cases, 9, &["sunshine", "market-inspection", "tax"]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for _ in 0..crashes {
        // `push run` in the background, the gateway killed under it.
        let mut run = Command::new(bin())
            .arg("--data")
            .arg(&env.data)
            .args(["push", "run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(150..900)));
        env.kill();
        let _ = run.wait();
        env.start();
    }
    let report = env.run();
    assert_eq!(report["error"], Value::Null, "{report}");
    let s = env.status();
    assert_eq!((n(&s["queued"]), n(&s["dead_letters"])), (0, 0), "{s}");
    let records = env.records();
    (record_set(&records), n(&env.stats()["duplicates"]))
}

#[test]
fn crashes_during_a_push_of_10000_records_lose_and_repeat_nothing() {
    let (crashed, duplicates) = pushed_with_crashes(13_000, 5);
    assert!(crashed.len() >= 10_000, "{}", crashed.len());
    // The same sample pushed without crashes: exactly the same record versions.
    let (clean, clean_duplicates) = pushed_with_crashes(13_000, 0);
    assert_eq!(clean_duplicates, 0);
    assert_eq!(crashed.len(), clean.len());
    assert!(
        crashed == clean,
        "the crashed run delivered a different set"
    );
    eprintln!(
        "{} record versions delivered; {duplicates} resent after crashes and recognised as duplicates",
        crashed.len()
    );
}

#[test]
fn quarterly_reports_are_pushed_once_per_version() {
    let env = Env::new("503", &[("reports_url", "\"https://{sim}/reports\"")]);
    let key = env.gw().ok(&["push", "key"]);
    assert_eq!(env.sim("PUT", "/sim/verify-key", key.trim()).status, 200);
    env.ingest_sample(300, 10, &["sunshine", "tax"]);
    let built = env
        .gw()
        .json(&["reports", "build", "--quarter", "2025Q2", "--json"]);
    let units = built.as_array().unwrap().len() as u64;
    assert!(units >= 5);
    assert_eq!(n(&env.status()["reports_queued"]), units);
    // The 503 is retried; every report version arrives once, signed.
    let report = env.run();
    assert_eq!(report["error"], Value::Null, "{report}");
    assert_eq!(n(&report["reports"]), units, "{report}");
    assert_eq!(n(&env.status()["reports_queued"]), 0);
    let received = env.sim("GET", "/sim/reports", "").json();
    let received = received.as_array().unwrap();
    assert_eq!(received.len() as u64, units);
    assert!(
        received
            .iter()
            .all(|r| r["version"] == 1 && r["quarter"] == "2025Q2")
    );
    // Unchanged: nothing more to send.
    env.gw()
        .json(&["reports", "build", "--quarter", "2025Q2", "--json"]);
    assert_eq!(n(&env.status()["reports_queued"]), 0);
    assert_eq!(n(&env.run()["reports"]), 0);
    // The sent report is the stored one.
    let first = &received[0];
    let stored = env.gw().json(&[
        "reports",
        "show",
        "--quarter",
        "2025Q2",
        "--unit",
        first["unit_code"].as_str().unwrap(),
    ]);
    assert_eq!(stored["digest"], first["digest"]);
    assert_eq!(stored["summary"]["total"], first["total"]);
    let entries = audit_actions(env.gw(), 300);
    assert!(entries.iter().any(|e| {
        e["action"] == "push.send"
            && e["details"]["report"]
                .as_str()
                .is_some_and(|r| r.starts_with("RPT-2025Q2-"))
    }));
}

/// The cases queued for `province` that a cycle sends as upserts (not revoked, not a routine
/// inspection), with their record ids.
fn queued(store: &xianjie::store::Store) -> Vec<(xianjie::model::Case, String)> {
    use xianjie::model::{Action, CaseStatus};
    store
        .outbox("province", usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, e)| store.get_case(&e.unit_code, &e.case_id).unwrap().unwrap())
        .filter(|c| {
            c.status != CaseStatus::Revoked
                && match c.action {
                    Action::Penalty | Action::Licensing => true,
                    Action::Inspection => c.inspection.is_some(),
                    _ => false,
                }
        })
        .map(|c| {
            let id = xianjie::push::package::record_id(&c);
            (c, id)
        })
        .collect()
}

/// Issue 11: one control character costs no other record its delivery. The store holds a case
/// whose party name carries U+0001 (put there directly: ingest is not this test's subject); the
/// package builder holds it back, dead-lettered alone with the field and character named, and
/// the other records of its unit go in the same cycle.
#[test]
fn a_control_character_holds_back_only_its_record() {
    let mut env = Env::new("", &[]);
    env.ingest_sample(80, 12, &["tax"]);
    let (bad, bad_id, unit_mates) = env.with_store(|store| {
        let queued = queued(store);
        // A case with at least three other queued records of its unit: they share its package.
        let (mut bad, bad_id) = queued
            .iter()
            .find(|(c, _)| {
                queued
                    .iter()
                    .filter(|(o, _)| o.unit_code == c.unit_code && o.case_id != c.case_id)
                    .count()
                    >= 3
            })
            .cloned()
            .expect("a unit with four queued records");
        let mates: BTreeSet<String> = queued
            .iter()
            .filter(|(o, _)| o.unit_code == bad.unit_code && o.case_id != bad.case_id)
            .map(|(_, id)| id.clone())
            .collect();
        bad.party.name = format!("某\u{1}{}", bad.party.name);
        store
            .upsert_cases(std::slice::from_ref(&bad), &|_, _| vec!["province".into()])
            .unwrap();
        (bad, bad_id, mates)
    });
    // Its stale first version is "not needed"; everything else is delivered.
    let report = env.run_settling(1);

    // Only the bad record is dead-lettered, with the field, position and character named.
    let dead = env.dead();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let d = &dead[0];
    assert_eq!(d["case_id"], bad.case_id.as_str());
    assert_eq!(d["record_id"], bad_id.as_str());
    assert_eq!(d["code"], "LOCAL-XML-CHAR");
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains("XDR_MC") && reason.contains("character 2") && reason.contains("U+0001"),
        "{reason}"
    );
    assert_eq!(d["http_status"], Value::Null, "it was never sent");

    // The simulator accepted the others — the bad record's unit mates among them — and never
    // saw the bad one; the platform refused nothing.
    let records = env.records();
    let held = record_set(&records);
    assert_eq!(held.len() as u64, n(&report["accepted"]));
    assert!(held.iter().all(|(id, _)| *id != bad_id));
    let ids: BTreeSet<String> = held.iter().map(|(id, _)| id.clone()).collect();
    assert!(unit_mates.is_subset(&ids), "{unit_mates:?}");
    let stats = env.stats();
    assert_eq!(
        (n(&stats["packages_refused"]), n(&stats["rejected"])),
        (0, 0),
        "{stats}"
    );
    env.xmllint(&env.kept_packages());
    let s = env.status();
    assert_eq!((n(&s["queued"]), n(&s["dead_letters"])), (0, 1), "{s}");
}

/// A refusal the builder cannot foresee: the platform refuses with 400 every package holding one
/// of two chosen records. The worker splits and resends until each is alone; only those two are
/// dead-lettered, with the platform's reason, and every other record is delivered exactly once.
#[test]
fn a_refused_package_is_split_until_the_refusing_records_are_alone() {
    let mut env = Env::new("", &[("batch_size", "200")]);
    env.ingest_sample(120, 13, &["tax"]);
    let victims: Vec<String> = env.with_store(|store| {
        let ids: Vec<String> = queued(store).into_iter().map(|(_, id)| id).collect();
        assert!(ids.len() >= 20, "{}", ids.len());
        vec![ids[ids.len() / 3].clone(), ids[ids.len() / 3 + 5].clone()]
    });
    env.faults(&format!("refuse:{},refuse:{}", victims[0], victims[1]));
    let report = env.run_settling(2);

    let dead = env.dead();
    let dead_ids: BTreeSet<&str> = dead
        .iter()
        .map(|d| d["record_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        dead_ids,
        victims.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    for d in &dead {
        assert_eq!(
            (d["code"].as_str(), d["http_status"].as_u64()),
            (Some("HTTP-400"), Some(400))
        );
        let id = d["record_id"].as_str().unwrap();
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.contains("sent alone") && reason.contains(&format!("record {id} is refused")),
            "{reason}"
        );
    }

    // Everything else arrived, each record version once; the receiver saw no duplicate.
    let records = env.records();
    let held = record_set(&records);
    assert_eq!(held.len() as u64, n(&report["accepted"]));
    assert!(held.iter().all(|(id, _)| !victims.contains(id)));
    let stats = env.stats();
    assert_eq!(n(&stats["duplicates"]), 0, "{stats}");
    assert!(n(&stats["packages_refused"]) >= 3, "{stats}");
    env.xmllint(&env.kept_packages());

    // Audited per package: every send has its receipt; each split names the refused package,
    // and its halves name it back.
    let entries = audit_actions(env.gw(), 2000);
    let sends: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "push.send")
        .collect();
    let receipts = entries
        .iter()
        .filter(|e| e["action"] == "push.receipt")
        .count();
    assert_eq!(sends.len(), receipts);
    assert_eq!(sends.len() as u64, n(&report["packages"]));
    let splits: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "push.receipt" && e["details"]["split"].is_u64())
        .collect();
    assert!(!splits.is_empty());
    for s in &splits {
        let halves = sends
            .iter()
            .filter(|e| e["details"]["split_from"] == s["details"]["package"])
            .count();
        assert_eq!(halves, 2, "{s}");
    }
    let s = env.status();
    assert_eq!((n(&s["queued"]), n(&s["dead_letters"])), (0, 2), "{s}");
}

#[test]
fn a_supervision_notice_reaches_the_units_system_once_and_validates() {
    let mut env = Env::new("503", &[("supervision_url", "\"https://{sim}/notices\"")]);
    let key = env.gw().ok(&["push", "key"]);
    assert_eq!(env.sim("PUT", "/sim/verify-key", key.trim()).status, 200);
    env.ingest_sample(60, 4, &["tax"]);
    env.run();
    // The procuratorate's action, as the port API records it (the store directly: this
    // gateway has no port API).
    let action = env.with_store(|store| {
        let case = store.all_cases().next().unwrap().unwrap();
        let dests = ["province".to_string()];
        let req = xianjie::supervision::actions::Request::parse(
            "{\"kind\":\"request_reasons\",\"text\":\"请说明该案未移送公安机关的理由。\"}"
                .as_bytes(),
        )
        .unwrap();
        xianjie::supervision::workbench::write(
            store,
            &case.unit_code,
            &case.case_id,
            "procuratorate",
            req,
            &dests,
            chrono::Utc::now(),
        )
        .unwrap()
    });
    // A 503 is retried; the notice arrives once, signed, valid against its XSD.
    env.faults("503");
    let report = env.run();
    assert_eq!(report["error"], Value::Null, "{report}");
    assert_eq!(n(&report["notices"]), 1, "{report}");
    assert!(n(&report["retries"]) >= 1, "{report}");
    let got = env.sim("GET", "/sim/notices", "").json();
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(n(&got[0]["id"]), action.id);
    assert_eq!(got[0]["case_id"], action.case_id.as_str());
    let xml = got[0]["xml"].as_str().unwrap();
    assert!(
        xml.contains("<kind_label>要求说明不移送理由</kind_label>"),
        "{xml}"
    );
    env.xmllint_against("schemas/supervision-notice.xsd", "notice", xml.as_bytes());
    // Nothing more to send.
    assert_eq!(n(&env.run()["notices"]), 0);
    assert_eq!(
        env.sim("GET", "/sim/notices", "")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(audit_actions(env.gw(), 100).iter().any(|e| {
        e["action"] == "push.receipt" && e["details"]["notice"] == format!("SUP-{}", action.id)
    }));
}
