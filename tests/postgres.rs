//! The PostgreSQL backend against a real server (issue 16): Debian's PostgreSQL in a
//! throwaway cluster per test (`tests/common/pg.rs`). So far: the versioned migrations, and TLS to
//! the database through rustls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use xianjie::store::postgres::{MigrateError, Migrated, known_version, migrate};

fn skip() -> Option<common::pg::Cluster> {
    let c = common::pg::Cluster::start();
    if c.is_none() {
        eprintln!("SKIPPED: PostgreSQL is not installed (.ci/run installs Debian's postgresql)");
    }
    c
}

async fn fresh(cluster: &common::pg::Cluster, db: &str) -> tokio_postgres::Client {
    let admin = cluster.connect("postgres").await;
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    cluster.connect(db).await
}

async fn versions(c: &tokio_postgres::Client) -> Vec<i32> {
    c.query("SELECT version FROM xianjie_schema ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_even_from_two_instances_at_once() {
    let Some(cluster) = skip() else { return };
    let known = known_version();
    assert!(known >= 1);

    // A fresh database: every migration, each recorded; again, nothing.
    let mut c = fresh(&cluster, "one").await;
    assert_eq!(
        migrate(&mut c).await.unwrap(),
        Migrated { from: 0, to: known }
    );
    assert_eq!(versions(&c).await, (1..=known).collect::<Vec<_>>());
    c.execute(
        "INSERT INTO meta (key, value) VALUES ('\\x70726f6265', '\\x7b7d')",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        migrate(&mut c).await.unwrap(),
        Migrated {
            from: known,
            to: known
        }
    );
    let n: i64 = c
        .query_one("SELECT count(*) FROM meta", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "a second run changes nothing");

    // Two instances starting together on a fresh database: both succeed, each migration once.
    let mut a = fresh(&cluster, "two").await;
    let mut b = cluster.connect("two").await;
    let (ra, rb) = tokio::join!(migrate(&mut a), migrate(&mut b));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!((ra.to, rb.to), (known, known));
    assert_eq!(
        [ra.from, rb.from].iter().filter(|f| **f == 0).count(),
        1,
        "exactly one of them applied the migrations: {ra:?} {rb:?}"
    );
    assert_eq!(versions(&a).await, (1..=known).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_newer_than_the_binary_is_refused_before_anything_changes() {
    let Some(cluster) = skip() else { return };
    let known = known_version();
    let mut c = fresh(&cluster, "newer").await;
    migrate(&mut c).await.unwrap();
    // A later xianjie migrated it further.
    c.execute(
        "INSERT INTO xianjie_schema (version, name) VALUES ($1, 'from the future')",
        &[&(known + 1)],
    )
    .await
    .unwrap();
    let e = migrate(&mut c).await.unwrap_err();
    assert!(
        matches!(e, MigrateError::Newer { found, known: k } if found == known + 1 && k == known),
        "{e}"
    );
    let shown = e.to_string();
    assert!(
        shown.contains(&format!("version {}", known + 1))
            && shown.contains(&format!("up to {known}"))
            && shown.contains("restore a backup"),
        "{shown}"
    );
    assert_eq!(
        versions(&c).await.len() as i32,
        known + 1,
        "nothing changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_the_database_checks_the_server_against_the_configured_ca() {
    let certs = tempfile::tempdir().unwrap();
    let (ours, theirs) = (certs.path().join("ours"), certs.path().join("theirs"));
    xianjie_devca::generate_dev(&ours, &[], false).unwrap();
    xianjie_devca::generate_dev(&theirs, &[], false).unwrap();
    let (cert, key) = (ours.join("server.pem"), ours.join("server-key.pem"));
    let Some(cluster) = common::pg::Cluster::start_with(
        &[
            ("ssl", "on"),
            ("ssl_cert_file", "{dir}/server.pem"),
            ("ssl_key_file", "{dir}/server-key.pem"),
        ],
        &[("server.pem", &cert), ("server-key.pem", &key)],
    ) else {
        eprintln!("SKIPPED: PostgreSQL is not installed (.ci/run installs Debian's postgresql)");
        return;
    };
    let connect = |ca: std::path::PathBuf, host: &'static str| {
        let url = format!(
            "host={host} port={} user=xianjie dbname=postgres sslmode=require",
            cluster.port
        );
        async move {
            let tls = xianjie::store::postgres::RustlsConnect(
                xianjie::tls::database_client_config(&ca, None).unwrap(),
            );
            let (client, conn) = tokio_postgres::connect(&url, tls).await?;
            tokio::spawn(conn);
            Ok::<_, tokio_postgres::Error>(client)
        }
    };
    // Wait until the server takes logins (plain connections are refused only by sslmode here).
    drop(cluster.connect("postgres").await);
    for host in ["localhost", "127.0.0.1"] {
        let client = connect(ours.join("ca.pem"), host).await.unwrap();
        let ssl: bool = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(ssl, "{host}: the session is encrypted");
    }
    // A server whose certificate another CA issued is refused during the handshake.
    let Err(e) = connect(theirs.join("ca.pem"), "localhost").await else {
        panic!("a server certificate from another CA was accepted");
    };
    assert!(
        format!("{e:?}").to_lowercase().contains("certificate"),
        "{e:?}"
    );
}
