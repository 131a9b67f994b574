//! The PostgreSQL backend against a real server (issue 16, being built): Debian's PostgreSQL in a
//! throwaway cluster per test (`tests/common/pg.rs`). So far: the versioned migrations.
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
        "INSERT INTO meta (name, value) VALUES ('probe', '\\x7b7d')",
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
