//! Several gateway instances on one PostgreSQL database (issue 16): each test starts its own
//! throwaway cluster of Debian's server (`tests/common/pg.rs`) and real `xianjie serve` processes
//! sharing one database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Gateway;
use common::pg::Cluster;

/// A throwaway cluster, or `None` (SKIPPED) without PostgreSQL.
fn cluster() -> Option<Cluster> {
    let c = Cluster::start();
    if c.is_none() {
        eprintln!("SKIPPED: PostgreSQL is not installed (.ci/run installs Debian's postgresql)");
    }
    c
}

/// A cluster with database `db`, or `None` (SKIPPED) without PostgreSQL.
fn cluster_with(db: &str) -> Option<Cluster> {
    let c = cluster()?;
    common::pg::psql(&c.url("postgres"), &format!("CREATE DATABASE {db}")).unwrap();
    Some(c)
}

/// The config of instance `name` with data directory `data` on `url`, the port API off.
fn instance_config(dir: &Path, data: &Path, url: &str, name: &str) -> PathBuf {
    instance_config_with(dir, data, url, name, "")
}

/// [`instance_config`] with `extra` (e.g. destinations) at its end.
fn instance_config_with(dir: &Path, data: &Path, url: &str, name: &str, extra: &str) -> PathBuf {
    let cfg = dir.join(format!("{name}.toml"));
    let adapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\nadapters_dir = {:?}\n[log]\nlevel = \"info\"\n[server]\nlisten = \"off\"\n{}{extra}",
            data.display().to_string(),
            adapters.display().to_string(),
            store_section(url, name),
        ),
    )
    .unwrap();
    cfg
}

fn store_section(url: &str, name: &str) -> String {
    format!("[store]\nkind = \"postgres\"\nurl = {url:?}\ninstance = {name:?}\n")
}

/// The config of instance `name` with the port API on (certificates under `certs`).
fn api_instance_config(dir: &Path, data: &Path, certs: &Path, url: &str, name: &str) -> PathBuf {
    let own = dir.join(name);
    std::fs::create_dir_all(&own).unwrap();
    common::api_config_own_store(&own, data, certs, &store_section(url, name))
}

/// Waits (at most `within`) until `gw`'s status satisfies `ok`; returns how long it took.
fn until(
    gw: &Gateway,
    within: Duration,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let status = gw.json(&["status", "--json"]);
        if ok(&status) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{what} not within {within:?}: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn one_instance_leads_and_another_takes_over_within_15_s_when_it_is_killed() {
    let Some(cluster) = cluster_with("ha") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let url = cluster.url("ha");
    let (data_a, data_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let cfg_a = instance_config(tmp.path(), &data_a, &url, "gw-a");
    let cfg_b = instance_config(tmp.path(), &data_b, &url, "gw-b");

    let mut a = Gateway::start(&cfg_a, &data_a);
    until(&a, Duration::from_secs(10), "gw-a leading", |s| {
        s["leading"] == true && s["leader"] == "gw-a" && s["instance"] == "gw-a"
    });
    let b = Gateway::start(&cfg_b, &data_b);
    until(&b, Duration::from_secs(10), "gw-b following gw-a", |s| {
        s["leading"] == false && s["leader"] == "gw-a"
    });
    // Still exactly one leader after several campaign rounds.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(a.json(&["status", "--json"])["leading"], true);
    assert_eq!(b.json(&["status", "--json"])["leading"], false);
    let text = b.ok(&["status"]);
    assert!(
        text.contains("instance gw-b: a follower; gw-a leads"),
        "{text}"
    );

    // kill -9: the server ends the leader's session at once, and gw-b takes over.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let took = until(&b, Duration::from_secs(15), "gw-b taking over", |s| {
        s["leading"] == true && s["leader"] == "gw-b"
    });
    eprintln!("takeover after kill -9 of the leader: {took:?}");

    // The old leader back: a follower now.
    let a = Gateway::start(&cfg_a, &data_a);
    until(&a, Duration::from_secs(10), "gw-a following gw-b", |s| {
        s["leading"] == false && s["leader"] == "gw-b"
    });
    // A clean stop hands over at once.
    b.stop();
    let took = until(&a, Duration::from_secs(15), "gw-a taking over", |s| {
        s["leading"] == true
    });
    assert!(took < Duration::from_secs(5), "{took:?} after a clean stop");
    a.stop();
}

#[test]
fn a_gateway_refuses_a_database_migrated_by_a_newer_xianjie_at_start() {
    let Some(cluster) = cluster_with("newer") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = instance_config(tmp.path(), &data, &cluster.url("newer"), "gw");
    // A first start migrates the database; then a newer xianjie is said to have migrated it.
    Gateway::start(&cfg, &data).stop();
    let known = xianjie::store::postgres::known_version();
    common::pg::psql(
        &cluster.url("newer"),
        &format!(
            "INSERT INTO xianjie_schema (version, name) VALUES ({}, 'from the future')",
            known + 1
        ),
    )
    .unwrap();
    let out = std::process::Command::new(common::bin())
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "the database's schema is at version {}, newer than this xianjie knows (up to {known})",
            known + 1
        )) && err.contains("restore a backup"),
        "{err}"
    );
    assert!(!data.join("admin.sock").exists(), "nothing listened");
}

const PASS: &str = "two instances, one keystore";
const FIRE: &str = "11320102471049746T"; // 消防救援大队 (sunshine adapter)

/// An instance with the port API on, unlocked with [`PASS`]; its API address.
fn api_instance(dir: &Path, certs: &Path, url: &str, name: &str) -> (Gateway, String) {
    let data = dir.join(format!("data-{name}"));
    let cfg = api_instance_config(dir, &data, certs, url, name);
    let pass = common::secret_file(&dir.join(format!("pass-{name}")), PASS);
    let gw = Gateway::start_with(&cfg, &data, &["--passphrase-file", pass.to_str().unwrap()]);
    let addr = std::fs::read_to_string(data.join("api.addr"))
        .unwrap()
        .trim()
        .to_string();
    (gw, addr)
}

fn token(certs: &Path, addr: &str, secret: &str) -> Option<String> {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("procuratorate:{secret}"));
    let r = common::https_as(
        certs,
        Some("procuratorate"),
        addr,
        "POST",
        "/oauth/token",
        &[
            ("authorization", format!("Basic {basic}")),
            ("content-type", "application/x-www-form-urlencoded".into()),
        ],
        b"grant_type=client_credentials".to_vec(),
    )
    .unwrap();
    (r.status == 200).then(|| r.json()["access_token"].as_str().unwrap().to_string())
}

#[test]
fn two_instances_share_the_keystore_and_one_mirrors_what_the_other_ingests() {
    let Some(cluster) = cluster_with("mirror") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    xianjie_devca::generate_dev(&certs, &["procuratorate".into()], false).unwrap();
    let url = cluster.url("mirror");
    // The first unlock creates the keystore in the database; the second opens the same one.
    let (a, _) = api_instance(tmp.path(), &certs, &url, "gw-a");
    let (b, addr_b) = api_instance(tmp.path(), &certs, &url, "gw-b");
    for gw in [&a, &b] {
        assert_eq!(gw.json(&["status", "--json"])["sealed"], false);
    }
    // A client added and a port opened on one instance work through the other.
    let secret = a
        .ok(&["clients", "add", "procuratorate"])
        .lines()
        .find_map(|l| l.strip_prefix("secret:").map(|s| s.trim().to_string()))
        .unwrap();
    a.ok(&["ports", "open", FIRE, "--client", "procuratorate"]);
    let start = Instant::now();
    let token = loop {
        if let Some(t) = token(&certs, &addr_b, &secret) {
            break t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "gw-b never learnt the client"
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // gw-a ingests (in the background) while gw-b serves the change feed to a mirror.
    let samples = tmp.path().join("samples");
    xianjie::sample::generate(
        &samples,
        &xianjie::sample::SampleOptions {
            cases: 3000,
            bad_fraction: 0.0,
            seed: 11,
        },
    )
    .unwrap();
    let mut mirror = std::collections::BTreeMap::new();
    let mut after = 0;
    let mut pages = 0;
    let mut pull = |mirror: &mut std::collections::BTreeMap<String, u64>| -> usize {
        let r = common::https_as(
            &certs,
            Some("procuratorate"),
            &addr_b,
            "GET",
            &format!("/v1/changes?after={after}&limit=200"),
            &[("authorization", format!("Bearer {token}"))],
            Vec::new(),
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let page = r.json();
        let changes = page["changes"].as_array().unwrap().clone();
        for ch in &changes {
            assert_eq!(ch["unit_code"], FIRE, "only the open port");
            let seq = ch["seq"].as_u64().unwrap();
            assert!(seq > after, "{seq} after {after}");
            mirror.insert(
                ch["case_id"].as_str().unwrap().to_string(),
                ch["case"]["version"].as_u64().unwrap(),
            );
        }
        after = page["next_after"].as_u64().unwrap();
        pages += 1;
        changes.len()
    };
    std::thread::scope(|s| {
        let ingest = s.spawn(|| {
            for adapter in ["sunshine", "market-inspection"] {
                a.ok(&["ingest", adapter, samples.join(adapter).to_str().unwrap()]);
            }
        });
        while !ingest.is_finished() {
            if pull(&mut mirror) == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        ingest.join().unwrap();
    });
    while pull(&mut mirror) > 0 {}
    assert!(pages > 2, "{pages} pages");

    // The mirror equals the store: every case of the port, at its stored version.
    let store = xianjie::store::Store::open_postgres(xianjie::store::PgSettings {
        config: url.parse().unwrap(),
        tls: None,
        pool_size: 1,
    })
    .unwrap();
    let unit: xianjie::model::Uscc = FIRE.parse().unwrap();
    let stored: std::collections::BTreeMap<String, u64> = store
        .unit_cases(&unit)
        .map(|c| c.unwrap())
        .map(|c| (c.case_id.to_string(), c.version))
        .collect();
    assert!(stored.len() > 100, "{} cases in the port", stored.len());
    assert_eq!(mirror, stored);

    // One audit log: the follower's reads and the leader's writes, in one tree; exported from
    // the follower, it verifies, and holds both.
    let leader = if a.json(&["status", "--json"])["leading"] == true {
        &a
    } else {
        &b
    };
    assert_eq!(
        leader.json(&["status", "--json"])["leader"],
        leader.json(&["status", "--json"])["instance"]
    );
    let out = tmp.path().join("export");
    let follower = if std::ptr::eq(leader, &a) { &b } else { &a };
    // The follower's last appends reach the tree once the leader sequences them.
    std::thread::sleep(Duration::from_millis(500));
    follower.ok(&["audit", "export", out.to_str().unwrap()]);
    let v = follower.ok(&["audit", "verify", out.to_str().unwrap()]);
    assert!(v.starts_with("verified:"), "{v}");
    let text = std::fs::read_to_string(out.join("entries.jsonl")).unwrap();
    for (action, what) in [
        (
            "\"action\":\"changes.read\"",
            "gw-b's reads of the change feed",
        ),
        ("\"action\":\"client.create\"", "gw-a's client"),
        ("\"action\":\"ingest.file\"", "gw-a's ingest"),
    ] {
        assert!(text.contains(action), "{what} missing from the one log");
    }
    let seqs: Vec<u64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "one dense sequence"
    );
    a.stop();
    b.stop();
}

#[test]
fn a_sled_store_migrates_into_postgres_with_every_entry_and_the_same_audit_root() {
    let Some(cluster) = cluster_with("migrated") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let adapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    let sled_cfg = tmp.path().join("sled.toml");
    let base = format!(
        "data_dir = {:?}\nadapters_dir = {:?}\n[log]\nlevel = \"info\"\n[server]\nlisten = \"off\"\n",
        data.display().to_string(),
        adapters.display().to_string(),
    );
    std::fs::write(&sled_cfg, &base).unwrap();
    let pg_cfg = tmp.path().join("pg.toml");
    std::fs::write(
        &pg_cfg,
        format!("{base}{}", store_section(&cluster.url("migrated"), "gw")),
    )
    .unwrap();
    let pass = common::secret_file(&tmp.path().join("pass"), PASS);
    let samples = tmp.path().join("samples");
    xianjie::sample::generate(
        &samples,
        &xianjie::sample::SampleOptions {
            cases: 600,
            bad_fraction: 0.05,
            seed: 3,
        },
    )
    .unwrap();

    // On sled: ingest (with quarantined rows), a client, a second version of some cases.
    let gw = Gateway::start_with(
        &sled_cfg,
        &data,
        &["--passphrase-file", pass.to_str().unwrap()],
    );
    for adapter in ["sunshine", "market-inspection"] {
        gw.ok(&["ingest", adapter, samples.join(adapter).to_str().unwrap()]);
    }
    gw.ok(&["clients", "add", "procuratorate"]);
    let before = gw.json(&["status", "--json"]);
    gw.stop();
    let (sled_lines, sled_note) = common::audit_files(&data);
    let sled_note = sled_note.unwrap();

    // Migrating into a database that is not empty is refused; into the empty one it copies.
    let migrate = |cfg: &Path| {
        std::process::Command::new(common::bin())
            .arg("--config")
            .arg(cfg)
            .args(["store", "migrate", "--to", "postgres"])
            .output()
            .unwrap()
    };
    let refused = migrate(&sled_cfg);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("[store] is sled"));
    let out = migrate(&pg_cfg);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("cases") && text.contains("keystore") && text.contains("audit log"),
        "{text}"
    );
    let again = migrate(&pg_cfg);
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));

    // On PostgreSQL: the same passphrase opens the copied keystore; every count is the same.
    let gw = Gateway::start_with(
        &pg_cfg,
        &data,
        &["--passphrase-file", pass.to_str().unwrap()],
    );
    let after = gw.json(&["status", "--json"]);
    for key in ["cases", "changes", "quarantine", "units"] {
        assert_eq!(after[key], before[key], "{key}");
    }
    assert_eq!(after["sealed"], false);
    assert!(gw.ok(&["clients", "list"]).contains("procuratorate"));
    // The audit log goes on from the copy: the export verifies, starts with exactly the sled
    // entries, and keeps the sled log's last checkpoint (the same root).
    let out = tmp.path().join("export");
    gw.ok(&["audit", "export", out.to_str().unwrap()]);
    let v = gw.ok(&["audit", "verify", out.to_str().unwrap()]);
    assert!(v.starts_with("verified:"), "{v}");
    let exported = std::fs::read_to_string(out.join("entries.jsonl")).unwrap();
    let exported: Vec<&str> = exported.lines().collect();
    assert!(exported.len() > sled_lines.len());
    assert_eq!(exported[..sled_lines.len()], sled_lines[..]);
    let note = std::fs::read_to_string(
        out.join("checkpoints")
            .join(format!("{:020}.note", sled_lines.len())),
    )
    .unwrap();
    assert_eq!(note, sled_note);
    gw.stop();
}

/// Two instances push `cases` sample cases to a fresh platform simulator; with `kill`, the
/// leader is killed (-9) as soon as the platform holds a first record, and the other instance
/// takes over. Returns the record versions the platform holds (asserting none is held twice)
/// and how many it held at the kill.
fn push_across_a_failover(
    cluster: &Cluster,
    db: &str,
    kill: bool,
) -> (BTreeSet<(String, u64)>, usize) {
    common::pg::psql(&cluster.url("postgres"), &format!("CREATE DATABASE {db}")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    xianjie_devca::generate_dev(&certs, &[], false).unwrap();
    let sim = common::start_sim(tmp.path(), &certs, "");
    let url = cluster.url(db);
    // Both instances push every second to the same platform; only the leader's schedule runs.
    let destination = format!(
        "[[destinations]]\nname = \"province\"\nurl = \"https://{}/packages\"\nca = {:?}\nactions = [\"inspection\", \"penalty\", \"licensing\"]\ncredential = \"province\"\nschedule = \"* * * * * *\"\nbatch_size = 100\npublic = false\nretry_initial_ms = 20\nretry_max_ms = 200\n",
        sim.addr,
        certs.join("ca.pem").display().to_string(),
    );
    let config = |name: &str| {
        let data = tmp.path().join(format!("data-{name}"));
        let cfg = instance_config_with(tmp.path(), &data, &url, name, &destination);
        (cfg, data)
    };
    let pass = common::secret_file(&tmp.path().join("pass"), PASS);
    let start = |(cfg, data): &(PathBuf, PathBuf)| {
        Gateway::start_with(cfg, data, &["--passphrase-file", pass.to_str().unwrap()])
    };
    let (a_cfg, b_cfg) = (config("gw-a"), config("gw-b"));
    let mut a = start(&a_cfg);
    until(&a, Duration::from_secs(10), "gw-a leading", |s| {
        s["leading"] == true
    });
    let b = start(&b_cfg);
    let out = a.cli_stdin(&["credentials", "set", "province"], common::CREDENTIAL);
    assert!(out.status.success(), "{out:?}");

    // gw-a ingests and its schedule starts pushing.
    let samples = tmp.path().join("samples");
    xianjie::sample::generate(
        &samples,
        &xianjie::sample::SampleOptions {
            cases: 4000,
            bad_fraction: 0.0,
            seed: 21,
        },
    )
    .unwrap();
    for adapter in ["sunshine", "market-inspection"] {
        a.ok(&["ingest", adapter, samples.join(adapter).to_str().unwrap()]);
    }
    let sim_get = |path: &str| {
        common::https(
            &certs.join("ca.pem"),
            None,
            &sim.addr,
            "GET",
            path,
            &[],
            Vec::new(),
        )
        .unwrap()
        .json()
    };
    let started = Instant::now();
    while sim_get("/sim/records").as_array().unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "gw-a never pushed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut held_at_kill = 0;
    let drainer = if kill {
        a.child.kill().unwrap();
        a.child.wait().unwrap();
        held_at_kill = sim_get("/sim/records").as_array().unwrap().len();
        until(&b, Duration::from_secs(15), "gw-b taking over", |s| {
            s["leading"] == true
        });
        &b
    } else {
        &a
    };
    let started = Instant::now();
    loop {
        let s = drainer.json(&["push", "status", "--json"])[0].clone();
        if s["queued"] == 0 {
            assert_eq!(s["dead_letters"], 0, "{s}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the queue never drained: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut held = BTreeSet::new();
    for r in sim_get("/sim/records").as_array().unwrap() {
        let key = (
            r["id"].as_str().unwrap().to_string(),
            r["version"].as_u64().unwrap(),
        );
        assert!(held.insert(key.clone()), "{key:?} held twice");
    }
    b.stop();
    if !kill {
        a.stop();
    }
    (held, held_at_kill)
}

#[test]
fn the_leader_killed_during_a_push_leaves_the_platform_what_a_clean_run_does() {
    let Some(cluster) = cluster() else {
        return;
    };
    let (killed, held_at_kill) = push_across_a_failover(&cluster, "push_killed", true);
    let (clean, _) = push_across_a_failover(&cluster, "push_clean", false);
    assert!(clean.len() > 1000, "{}", clean.len());
    assert!(
        held_at_kill < clean.len(),
        "the kill came after the push ({held_at_kill})"
    );
    assert_eq!(killed.len(), clean.len());
    assert!(killed == clean, "the failover delivered a different set");
    eprintln!(
        "{} record versions; {held_at_kill} held when the leader was killed",
        clean.len()
    );
}

/// A case answered from the instance's cache is still never sent without its audit entry: the
/// request's task waits for the entry's group commit, and when the database refuses the entry
/// the answer is 503, not the case. Once entries can be written again, the case is served and
/// its read is in the log.
#[test]
fn a_cached_case_is_refused_while_its_audit_entry_cannot_be_written() {
    let Some(cluster) = cluster_with("auditdown") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    xianjie_devca::generate_dev(&certs, &["procuratorate".into()], false).unwrap();
    let url = cluster.url("auditdown");
    let (gw, addr) = api_instance(tmp.path(), &certs, &url, "gw-a");
    let secret = gw
        .ok(&["clients", "add", "procuratorate"])
        .lines()
        .find_map(|l| l.strip_prefix("secret:").map(|s| s.trim().to_string()))
        .unwrap();
    gw.ok(&["ports", "open", FIRE, "--client", "procuratorate"]);
    let samples = tmp.path().join("samples");
    xianjie::sample::generate(
        &samples,
        &xianjie::sample::SampleOptions {
            cases: 200,
            bad_fraction: 0.0,
            seed: 5,
        },
    )
    .unwrap();
    gw.ok(&[
        "ingest",
        "sunshine",
        samples.join("sunshine").to_str().unwrap(),
    ]);
    let token = token(&certs, &addr, &secret).unwrap();
    let get = |path: &str| {
        common::https_as(
            &certs,
            Some("procuratorate"),
            &addr,
            "GET",
            path,
            &[("authorization", format!("Bearer {token}"))],
            Vec::new(),
        )
        .unwrap()
    };
    let list = get(&format!("/v1/ports/{FIRE}/cases?limit=1"));
    assert_eq!(list.status, 200, "{}", String::from_utf8_lossy(&list.body));
    let id = list.json()["cases"][0]["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/ports/{FIRE}/cases/{id}");
    // Read once: the case is now in the instance's cache.
    assert_eq!(get(&path).status, 200);

    // The leader writes its own entries to the log directly, a follower's go to the queue.
    let refuse = "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
                  $$ BEGIN RAISE EXCEPTION 'audit entries refused by the test'; END $$; \
                  CREATE TRIGGER refuse BEFORE INSERT ON audit_queue \
                  FOR EACH ROW EXECUTE FUNCTION refuse_audit(); \
                  CREATE TRIGGER refuse BEFORE INSERT ON audit_log \
                  FOR EACH ROW EXECUTE FUNCTION refuse_audit();";
    common::pg::psql(&url, refuse).unwrap();
    let r = get(&path);
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert!(body.contains("audit log cannot be written"), "{body}");
    assert!(
        !body.contains(&id),
        "the case left without its entry: {body}"
    );

    common::pg::psql(
        &url,
        "DROP TRIGGER refuse ON audit_queue; DROP TRIGGER refuse ON audit_log",
    )
    .unwrap();
    let r = get(&path);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["case_id"], id);
    let out = tmp.path().join("export");
    std::thread::sleep(Duration::from_millis(300));
    gw.ok(&["audit", "export", out.to_str().unwrap()]);
    let reads = std::fs::read_to_string(out.join("entries.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"action\":\"case.read\""))
        .count();
    assert_eq!(
        reads, 2,
        "the two reads that were answered, not the refused one"
    );
    gw.stop();
}
