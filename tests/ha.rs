//! Several gateway instances on one PostgreSQL database (issue 16): each test starts its own
//! throwaway cluster of Debian's server (`tests/common/pg.rs`) and real `xianjie serve` processes
//! sharing one database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Gateway;
use common::pg::Cluster;

/// A cluster with database `db`, or `None` (SKIPPED) without PostgreSQL.
fn cluster_with(db: &str) -> Option<Cluster> {
    let Some(c) = Cluster::start() else {
        eprintln!("SKIPPED: PostgreSQL is not installed (.ci/run installs Debian's postgresql)");
        return None;
    };
    common::pg::psql(&c.url("postgres"), &format!("CREATE DATABASE {db}")).unwrap();
    Some(c)
}

/// The config of instance `name` with data directory `data` on `url`.
fn instance_config(dir: &Path, data: &Path, url: &str, name: &str) -> PathBuf {
    let cfg = dir.join(format!("{name}.toml"));
    let adapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\nadapters_dir = {:?}\n[log]\nlevel = \"info\"\n[server]\nlisten = \"off\"\n[store]\nkind = \"postgres\"\nurl = {url:?}\ninstance = {name:?}\n",
            data.display().to_string(),
            adapters.display().to_string(),
        ),
    )
    .unwrap();
    cfg
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
