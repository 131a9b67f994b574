//! The PostgreSQL backend: each of the store's trees is a table `(key bytea PRIMARY KEY, value
//! bytea)` holding the same bytes sled holds, so everything above `kv.rs` is shared. The schema is
//! versioned by the SQL files under `migrations/`, compiled into the binary and applied in order at
//! start; a database whose schema is newer than the binary knows is refused, with what to do.
//! Connections may use TLS through rustls ([`RustlsConnect`], configured by
//! `tls::database_client_config`). Only `store/` talks to a database.
//!
//! The store's callers are synchronous (they run on blocking threads), so the backend keeps its
//! own small runtime for the connections: a call hands its query to that runtime and waits for
//! the answer on a channel, which is safe from any thread, inside the gateway's runtime or not.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::ops::Bound;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};

use super::StoreError;
use super::kv::{DbError, KeyRange, TxError};

/// TLS to the database through rustls: the server's certificate checked against the CA of the
/// configuration (`tls::database_client_config`) and the host name connected to.
#[derive(Clone)]
pub struct RustlsConnect(pub Arc<rustls::ClientConfig>);

impl std::fmt::Debug for RustlsConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustlsConnect").finish_non_exhaustive()
    }
}

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = DatabaseTls<S>;
    type TlsConnect = Handshake;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, host: &str) -> Result<Handshake, Self::Error> {
        Ok(Handshake {
            config: self.0.clone(),
            name: rustls::pki_types::ServerName::try_from(host.to_string())?,
        })
    }
}

/// One connection's TLS handshake.
pub struct Handshake {
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
}

impl<S> TlsConnect<S> for Handshake
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = DatabaseTls<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<DatabaseTls<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await
                .map(DatabaseTls)
        })
    }
}

/// A TLS connection to the database.
pub struct DatabaseTls<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for DatabaseTls<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for DatabaseTls<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for DatabaseTls<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // No tls-server-end-point binding: its hash depends on the certificate's signature
        // algorithm, which servers and clients disagree on for Ed25519. The server's
        // certificate is checked against the configured CA instead, so SCRAM without the
        // binding is not open to a man in the middle.
        ChannelBinding::none()
    }
}

/// The migrations this binary knows, in order: version, name, SQL.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "store", include_str!("../../migrations/0001_store.sql")),
    (
        2,
        "audit_log_chunks",
        include_str!("../../migrations/0002_audit_log_chunks.sql"),
    ),
];

/// The advisory lock key migrations hold (any fixed number: "xianjie" in ASCII).
const MIGRATION_LOCK: i64 = 0x78_6961_6e6a_6965;

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database was migrated by a newer xianjie.
    #[error(
        "the database's schema is at version {found}, newer than this xianjie knows (up to {known}): \
         run the xianjie version that migrated it (or newer), or restore a backup taken before"
    )]
    Newer {
        /// The database's version.
        found: i32,
        /// The newest this binary knows.
        known: i32,
    },
    /// A migration failed (nothing of it is kept: each runs in the one transaction).
    #[error("migration {version} ({name}) failed: {source}")]
    Failed {
        /// Its version.
        version: i32,
        /// Its name.
        name: &'static str,
        /// The database's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The database could not be asked.
    #[error("the database could not be read: {0}")]
    Database(#[from] tokio_postgres::Error),
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The schema version before.
    pub from: i32,
    /// The schema version now.
    pub to: i32,
}

/// The newest schema version this binary knows.
pub fn known_version() -> i32 {
    MIGRATIONS.last().map_or(0, |(v, _, _)| *v)
}

/// Brings the schema up to [`known_version`]: in one transaction, under an advisory lock (two
/// instances starting at once apply each migration once), each missing migration in order, each
/// recorded in `xianjie_schema`. Refuses a schema newer than this binary knows before changing
/// anything.
pub async fn migrate(client: &mut Client) -> Result<Migrated, MigrateError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS xianjie_schema (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let row = tx
        .query_one("SELECT coalesce(max(version), 0) FROM xianjie_schema", &[])
        .await?;
    let from: i32 = row.get(0);
    let known = known_version();
    if from > known {
        return Err(MigrateError::Newer { found: from, known });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > from) {
        let failed = |source| MigrateError::Failed {
            version: *version,
            name,
            source,
        };
        tx.batch_execute(sql).await.map_err(failed)?;
        tx.execute(
            "INSERT INTO xianjie_schema (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(failed)?;
    }
    tx.commit().await?;
    Ok(Migrated { from, to: known })
}

/// How to reach the database: validated from `[store]` by `config.rs`.
#[derive(Clone)]
pub struct PgSettings {
    /// Where and as whom (the password, when one is used, is read from its file into here).
    pub config: tokio_postgres::Config,
    /// TLS to the server (`None`: no TLS, for a Unix socket or loopback).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Connections kept at most.
    pub pool_size: usize,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio-postgres's own Debug of the config shows the password as `_`.
        f.debug_struct("PgSettings")
            .field("config", &self.config)
            .field("tls", &self.tls.is_some())
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// A failure talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The server answered with an error, or the connection failed.
    #[error("{0}")]
    Db(#[from] tokio_postgres::Error),
    /// The schema could not be brought up to date.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// The backend's runtime could not start, or is gone (the gateway is stopping).
    #[error("the database connections are unavailable: {0}")]
    Unavailable(String),
    /// A transaction kept conflicting with others.
    #[error("gave up after {0} attempts that conflicted with other writers")]
    Conflicts(u32),
    /// The server's answer was not the one asked for.
    #[error("unexpected answer from the database: {0}")]
    Answer(&'static str),
}

impl PgError {
    /// Whether the server aborted the transaction for a conflict, so that running it again may
    /// succeed.
    fn is_conflict(&self) -> bool {
        matches!(self, Self::Db(e) if e.code().is_some_and(|c| {
            // A unique violation: a key written as new (`PgTx::write_new`) that a concurrent
            // transaction inserted first. Run again, and the key reads present.
            c == &SqlState::T_R_SERIALIZATION_FAILURE
                || c == &SqlState::T_R_DEADLOCK_DETECTED
                || c == &SqlState::UNIQUE_VIOLATION
        }))
    }
}

/// A key and its value.
type Entry = (Vec<u8>, Vec<u8>);

/// A transaction's writes: per (table, key), the value (`None`: removed) and whether the key
/// is known to be absent from the table ([`PgTx::write_new`]).
type Writes = BTreeMap<(usize, Vec<u8>), (Option<Vec<u8>>, bool)>;

/// Values a transaction read ahead: per (table, key), the value (`None`: absent).
type ReadAhead = HashMap<(usize, Vec<u8>), Option<Vec<u8>>>;

/// Rows read per page by a [`Cursor`], at most.
const PAGE: i64 = 512;
/// Rows a [`Cursor`]'s first read asks for.
const FIRST_PAGE: i64 = 2;
/// How often a conflicting transaction is tried before giving up.
const ATTEMPTS: u32 = 64;

/// The connections to one database.
#[derive(Clone)]
pub struct Pg(Arc<Inner>);

struct Inner {
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    settings: PgSettings,
    pool: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Arc<Pooled>>,
    open: usize,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside the gateway's own runtime.
        if let Some(rt) = self
            .runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            rt.shutdown_background();
        }
    }
}

/// A pooled connection and the statements prepared on it.
struct Pooled {
    client: Client,
    /// Statements prepared on this connection, by their text (see [`Inner::query_prepared`]).
    prepared: Mutex<HashMap<String, tokio_postgres::Statement>>,
}

impl std::ops::Deref for Pooled {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// A connection taken from the pool; it goes back when dropped, unless it broke.
struct Conn<'a> {
    pg: &'a Inner,
    client: Arc<Pooled>,
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        let mut pool = self.pg.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if self.client.is_closed() {
            pool.open -= 1;
        } else {
            pool.idle.push(self.client.clone());
        }
        self.pg.freed.notify_one();
    }
}

/// A new connection as `settings` say, run on a task of the current runtime.
pub(super) async fn connect(settings: PgSettings) -> Result<Client, tokio_postgres::Error> {
    fn spawn<F: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static>(conn: F) {
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::warn!(error = %e, "a database connection ended");
            }
        });
    }
    let client = match settings.tls {
        Some(tls) => {
            let (client, conn) = settings.config.connect(RustlsConnect(tls)).await?;
            spawn(conn);
            client
        }
        None => {
            let (client, conn) = settings.config.connect(NoTls).await?;
            spawn(conn);
            client
        }
    };
    // Every table is keyed by an ever-growing id or a prefix, read in key order. Past the
    // statistics' last bound (a queue's or a log's newest keys) the planner guesses one row for
    // `key > $1`, chooses a bitmap scan of the index and sorts what it returns, which is every
    // row after `$1`: a page of 128 from the audit queue took 65-150 ms instead of 0.1 ms, and
    // the leader's sequencing fell behind the appends. Without bitmap scans a key-order read is
    // an index scan that stops at its limit; reads by exact keys (`= ANY`) keep using the index.
    client.batch_execute("SET enable_bitmapscan = off").await?;
    Ok(client)
}

impl Inner {
    /// Runs `fut` on the backend's runtime and waits for it.
    fn run<T, E, F>(&self, fut: F) -> Result<T, PgError>
    where
        T: Send + 'static,
        E: Into<PgError> + Send + 'static,
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        match crate::blocking::wait(|| rx.recv()) {
            Ok(r) => r.map_err(Into::into),
            Err(_) => Err(PgError::Unavailable("the runtime stopped".into())),
        }
    }

    /// A connection: an idle one, a new one while fewer than the pool's size are open, or the
    /// next one given back.
    fn checkout(&self) -> Result<Conn<'_>, PgError> {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            while let Some(client) = pool.idle.pop() {
                if client.is_closed() {
                    pool.open -= 1;
                } else {
                    return Ok(Conn { pg: self, client });
                }
            }
            if pool.open < self.settings.pool_size {
                pool.open += 1;
                drop(pool);
                return match self.run(connect(self.settings.clone())) {
                    Ok(client) => Ok(Conn {
                        pg: self,
                        client: Arc::new(Pooled {
                            client,
                            prepared: Mutex::default(),
                        }),
                    }),
                    Err(e) => {
                        self.pool
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            pool = crate::blocking::wait(|| self.freed.wait(pool))
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Runs `query` with `params` (each with its type) on a pooled connection; returns the rows.
    fn query(
        &self,
        query: String,
        params: Vec<(Param, Type)>,
    ) -> Result<Vec<tokio_postgres::Row>, PgError> {
        let conn = self.checkout()?;
        let client = conn.client.clone();
        self.run(async move { client.query_typed(&query, &refs(&params)).await })
    }

    /// [`Inner::query`] through a statement prepared once per connection: for the few fixed
    /// reads made on every request (a case by key, a page of keys), which the server then
    /// parses and plans once instead of each time. Only for queries of a fixed text.
    fn query_prepared(
        &self,
        query: String,
        params: Vec<(Param, Type)>,
    ) -> Result<Vec<tokio_postgres::Row>, PgError> {
        let conn = self.checkout()?;
        let client = conn.client.clone();
        self.run(async move {
            let known = (client.prepared.lock())
                .unwrap_or_else(PoisonError::into_inner)
                .get(&query)
                .cloned();
            let statement = match known {
                Some(s) => s,
                None => {
                    let types: Vec<Type> = params.iter().map(|(_, t)| t.clone()).collect();
                    let s = client.prepare_typed(&query, &types).await?;
                    (client.prepared.lock())
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(query, s.clone());
                    s
                }
            };
            let values: Vec<&(dyn ToSql + Sync)> =
                refs(&params).into_iter().map(|(v, _)| v).collect();
            client.query(&statement, &values).await
        })
    }
}

/// A query parameter, owned so that the query can move to the backend's runtime.
enum Param {
    Bytes(Vec<u8>),
    BytesArray(Vec<Vec<u8>>),
}

fn refs(params: &[(Param, Type)]) -> Vec<(&(dyn ToSql + Sync), Type)> {
    params
        .iter()
        .map(|(p, t)| {
            let r: &(dyn ToSql + Sync) = match p {
                Param::Bytes(b) => b,
                Param::BytesArray(b) => b,
            };
            (r, t.clone())
        })
        .collect()
}

fn bytes(b: &[u8]) -> (Param, Type) {
    (Param::Bytes(b.to_vec()), Type::BYTEA)
}

/// The statements that write `writes` (per key, the value, `None`: removed, and whether the key
/// is known to be absent) into `table`: one plain insert of every set key known absent, one
/// upsert of every other set key, one delete of every removed key.
///
/// Why two inserts: an upsert costs a new row about 1.6 times a plain insert (measured: 589–627
/// against 363–380 ms per 200,000 rows), and most of a first ingest's and of the audit sequencer's
/// keys are new. A key wrongly called absent fails the insert (a unique violation, or a
/// serialization failure when the transaction read it absent) instead of being overwritten.
fn write_statements(
    table: &str,
    writes: BTreeMap<&[u8], (Option<&[u8]>, bool)>,
) -> Vec<(String, Vec<(Param, Type)>)> {
    let (mut new_keys, mut new_values) = (Vec::new(), Vec::new());
    let (mut keys, mut values, mut gone) = (Vec::new(), Vec::new(), Vec::new());
    for (k, v) in writes {
        match v {
            (Some(v), true) => {
                new_keys.push(k.to_vec());
                new_values.push(v.to_vec());
            }
            (Some(v), false) => {
                keys.push(k.to_vec());
                values.push(v.to_vec());
            }
            (None, _) => gone.push(k.to_vec()),
        }
    }
    let mut out = Vec::new();
    for (keys, values, on_conflict) in [
        (new_keys, new_values, ""),
        (
            keys,
            values,
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        ),
    ] {
        if keys.is_empty() {
            continue;
        }
        out.push((
            format!(
                "INSERT INTO {table} (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[])\
                 {on_conflict}"
            ),
            vec![
                (Param::BytesArray(keys), Type::BYTEA_ARRAY),
                (Param::BytesArray(values), Type::BYTEA_ARRAY),
            ],
        ));
    }
    if !gone.is_empty() {
        out.push((
            format!("DELETE FROM {table} WHERE key = ANY($1)"),
            vec![(Param::BytesArray(gone), Type::BYTEA_ARRAY)],
        ));
    }
    out
}

/// Runs `statements` on `client` (inside whatever transaction it is in).
async fn execute_all(
    client: &Client,
    statements: Vec<(String, Vec<(Param, Type)>)>,
) -> Result<(), tokio_postgres::Error> {
    for (sql, params) in statements {
        client.query_typed(&sql, &refs(&params)).await?;
    }
    Ok(())
}

impl Pg {
    /// Connects to the database, brings its schema up to date ([`migrate`]) and keeps up to
    /// `pool_size` connections.
    pub fn open(settings: PgSettings) -> Result<Pg, PgError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("xianjie-db")
            .enable_all()
            .build()
            .map_err(|e| PgError::Unavailable(e.to_string()))?;
        let pg = Pg(Arc::new(Inner {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
            settings: PgSettings {
                pool_size: settings.pool_size.max(1),
                ..settings
            },
            pool: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }));
        let first = pg.0.run(connect(pg.0.settings.clone()))?;
        let first = pg.0.run(async move {
            let mut client = first;
            migrate(&mut client).await?;
            Ok::<_, PgError>(client)
        })?;
        {
            let mut pool = pg.0.pool.lock().unwrap_or_else(PoisonError::into_inner);
            pool.idle.push(Arc::new(Pooled {
                client: first,
                prepared: Mutex::default(),
            }));
            pool.open = 1;
        }
        Ok(pg)
    }

    /// The table of the tree `name`.
    pub(super) fn table(&self, name: &'static str) -> Table {
        Table {
            pg: self.clone(),
            name,
        }
    }

    /// Puts every commit made so far on disk: a transaction that writes to the write-ahead log
    /// commits synchronously, and its commit flushes the log through its own record, so through
    /// every asynchronous commit before it, of any connection. The smallest such write is a
    /// transactional logical-decoding message (prefix `xianjie`; ignored unless someone decodes
    /// the log). (A transaction that only takes an id, `txid_current()`, writes no record
    /// before its commit and so commits asynchronously: it would flush nothing.)
    pub(super) fn flush_commits(&self) -> Result<(), PgError> {
        self.0
            .query_prepared(
                "SELECT pg_logical_emit_message(true, 'xianjie', 'audit flush')".into(),
                Vec::new(),
            )
            .map(drop)
    }

    /// A new id from the store's sequence (0, 1, 2, … as sled's `generate_id`).
    pub(super) fn generate_id(&self) -> Result<u64, PgError> {
        let rows = self
            .0
            .query("SELECT nextval('xianjie_ids')".into(), Vec::new())?;
        let id: i64 = rows.first().map_or(0, |r| r.get(0));
        Ok(u64::try_from(id).unwrap_or(0))
    }

    /// Makes the id sequence give `next` next.
    pub(super) fn ids_from(&self, next: u64) -> Result<(), PgError> {
        let next = i64::try_from(next).unwrap_or(i64::MAX);
        let conn = self.0.checkout()?;
        let client = conn.client.clone();
        self.0
            .run(async move {
                client
                    .query_typed(
                        "SELECT setval('xianjie_ids', $1, false)",
                        &[(&next, Type::INT8)],
                    )
                    .await
            })
            .map(drop)
    }

    /// Runs `f` in a `SERIALIZABLE` transaction over `tables`; on a conflict (the server's, or
    /// `f`'s own) it is rolled back and run again. Writes are kept in memory until the commit
    /// and sent then, one statement per table and kind: a batch of cases costs a few round trips
    /// instead of one per key.
    pub(super) fn transaction<T>(
        &self,
        op: &'static str,
        tables: &[&'static str],
        deferred: bool,
        f: impl Fn(&PgTx) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        // `SET LOCAL`: this transaction's commit only, sent with its BEGIN.
        let begin = match deferred {
            false => "BEGIN ISOLATION LEVEL SERIALIZABLE",
            true => "BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL synchronous_commit = off",
        };
        let failed = |e: PgError| StoreError::Backend {
            op,
            source: DbError::Postgres(e),
        };
        for attempt in 1..=ATTEMPTS {
            let conn = self.0.checkout().map_err(failed)?;
            let client = conn.client.clone();
            self.0
                .run(async move { client.batch_execute(begin).await })
                .map_err(failed)?;
            let tx = PgTx {
                pg: &self.0,
                client: conn.client.clone(),
                tables: tables.to_vec(),
                writes: RefCell::new(BTreeMap::new()),
                read_ahead: RefCell::new(HashMap::new()),
            };
            let outcome = match f(&tx) {
                Ok(v) => tx.commit().map(|()| v),
                Err(e) => Err(e),
            };
            let err = match outcome {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let client = conn.client.clone();
            // The transaction is already lost; a failed rollback leaves a broken connection,
            // which the pool drops.
            let _ = self
                .0
                .run(async move { client.batch_execute("ROLLBACK").await });
            match err {
                TxError::Conflict => {
                    drop(conn);
                    // Let the other writer finish before trying again.
                    std::thread::sleep(Duration::from_millis(u64::from(attempt.min(20))));
                }
                TxError::Abort(e) => return Err(e),
                TxError::Storage(source) => return Err(StoreError::Backend { op, source }),
            }
        }
        Err(failed(PgError::Conflicts(ATTEMPTS)))
    }
}

/// For a statement run as its own transaction: without `flushed`, a CTE (to put first in its
/// `WITH`) and a join (to put after its final `FROM`) that make its commit asynchronous.
/// `set_config(…, true)` is `SET LOCAL`, for this statement's transaction only; joined as a
/// one-row CTE so that it runs (volatile, so evaluated once) before the commit.
fn unflushed_commit(flushed: bool) -> (&'static str, &'static str) {
    match flushed {
        true => ("", ""),
        false => (
            "s AS (SELECT set_config('synchronous_commit', 'off', true)), ",
            " CROSS JOIN s",
        ),
    }
}

/// One tree's table.
#[derive(Clone)]
pub struct Table {
    pg: Pg,
    name: &'static str,
}

impl Table {
    pub(super) fn name(&self) -> &'static str {
        self.name
    }

    pub(super) fn pg(&self) -> &Pg {
        &self.pg
    }

    pub(super) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, PgError> {
        let rows = self.pg.0.query_prepared(
            format!("SELECT value FROM {} WHERE key = $1", self.name),
            vec![bytes(key)],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// Stores `values` under new ids of the store's sequence (keys: the id as 8 bytes big-endian)
    /// in one statement, and so one round trip and one commit; returns the ids in `values`' order.
    /// Without `flushed` the commit is asynchronous (`synchronous_commit` off for this
    /// statement's transaction only): the server acknowledges it before its write-ahead log
    /// reaches the disk, which [`Pg::flush_commits`] or the server's WAL writer then does.
    pub(super) fn insert_with_new_ids(
        &self,
        values: Vec<Vec<u8>>,
        flushed: bool,
    ) -> Result<Vec<u64>, PgError> {
        let n = values.len();
        let (setting, joined) = unflushed_commit(flushed);
        // The CTE holding `nextval` is evaluated once (a volatile one always is), so the ids
        // inserted and the ids returned are the same, each with its value's place.
        let rows = self.pg.0.query_prepared(
            format!(
                "WITH {setting}v AS (SELECT v, n, nextval('xianjie_ids') AS id \
                 FROM unnest($1::bytea[]) WITH ORDINALITY AS t(v, n){joined}), \
                 ins AS (INSERT INTO {} (key, value) SELECT int8send(id), v FROM v) \
                 SELECT n, id FROM v",
                self.name
            ),
            vec![(Param::BytesArray(values), Type::BYTEA_ARRAY)],
        )?;
        let mut ids = vec![None; n];
        for r in &rows {
            let place = usize::try_from(r.get::<_, i64>(0) - 1).ok();
            let id = u64::try_from(r.get::<_, i64>(1)).ok();
            if let (Some(slot), Some(id)) = (place.and_then(|p| ids.get_mut(p)), id) {
                *slot = Some(id);
            }
        }
        ids.into_iter()
            .map(|id| id.ok_or(PgError::Answer("an insert returned fewer ids than values")))
            .collect()
    }

    /// Inserts `rows` (keys not in the table) if `guard`'s `key` holds `old`, setting it to `new`,
    /// in one statement (one round trip, one commit); returns whether it did. The guard's row
    /// lock orders writers: a second writer expecting the same `old` finds it moved and writes
    /// nothing. `flushed` as for [`Table::insert_with_new_ids`].
    pub(super) fn insert_new_if_swapped(
        &self,
        guard: &Table,
        key: &[u8],
        (old, new): (&[u8], &[u8]),
        rows: (Vec<Vec<u8>>, Vec<Vec<u8>>),
        flushed: bool,
    ) -> Result<bool, PgError> {
        let (setting, joined) = unflushed_commit(flushed);
        let found = self.pg.0.query_prepared(
            format!(
                "WITH {setting}m AS (UPDATE {g} SET value = $3 WHERE key = $1 AND value = $2 \
                 RETURNING 1), \
                 ins AS (INSERT INTO {t} (key, value) SELECT * FROM unnest($4::bytea[], $5::bytea[]) \
                 WHERE EXISTS (SELECT 1 FROM m)) \
                 SELECT count(*) FROM m{joined}",
                g = guard.name,
                t = self.name
            ),
            vec![
                bytes(key),
                bytes(old),
                bytes(new),
                (Param::BytesArray(rows.0), Type::BYTEA_ARRAY),
                (Param::BytesArray(rows.1), Type::BYTEA_ARRAY),
            ],
        )?;
        Ok(found.first().is_some_and(|r| r.get::<_, i64>(0) == 1))
    }

    pub(super) fn last_key_at_or_before(&self, key: &[u8]) -> Result<Option<Vec<u8>>, PgError> {
        let rows = self.pg.0.query_prepared(
            format!(
                "SELECT key FROM {} WHERE key <= $1 ORDER BY key DESC LIMIT 1",
                self.name
            ),
            vec![bytes(key)],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// The values under `keys`, in their order, in one query.
    pub(super) fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, PgError> {
        let asked: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        let rows = self.pg.0.query_prepared(
            format!("SELECT key, value FROM {} WHERE key = ANY($1)", self.name),
            vec![(Param::BytesArray(asked), Type::BYTEA_ARRAY)],
        )?;
        // Each value moves to the first place asking for it; only a key asked twice is copied.
        let mut places: HashMap<&[u8], Vec<usize>> = HashMap::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            places.entry(*k).or_default().push(i);
        }
        let mut out = vec![None; keys.len()];
        for r in &rows {
            let key: &[u8] = r.get(0);
            let Some(at) = places.get(key) else {
                continue;
            };
            let value: Vec<u8> = r.get(1);
            for &i in &at[1..] {
                out[i] = Some(value.clone());
            }
            out[at[0]] = Some(value);
        }
        Ok(out)
    }

    /// Applies `writes` (`None`: remove) atomically.
    pub(super) fn put(&self, writes: &[(&[u8], Option<&[u8]>)]) -> Result<(), PgError> {
        let writes = writes.iter().map(|&(k, v)| (k, (v, false))).collect();
        let statements = write_statements(self.name, writes);
        let conn = self.pg.0.checkout()?;
        let client = conn.client.clone();
        self.pg.0.run(async move {
            if statements.len() == 1 {
                return execute_all(&client, statements).await;
            }
            client.batch_execute("BEGIN").await?;
            execute_all(&client, statements).await?;
            client.batch_execute("COMMIT").await
        })
    }

    pub(super) fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, PgError> {
        let rows = self.pg.0.query(
            format!("DELETE FROM {} WHERE key = $1 RETURNING value", self.name),
            vec![bytes(key)],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    pub(super) fn count(&self) -> Result<usize, PgError> {
        let rows = self
            .pg
            .0
            .query(format!("SELECT count(*) FROM {}", self.name), Vec::new())?;
        let n: i64 = rows.first().map_or(0, |r| r.get(0));
        Ok(usize::try_from(n).unwrap_or(0))
    }

    pub(super) fn clear(&self) -> Result<(), PgError> {
        self.pg
            .0
            .query(format!("DELETE FROM {}", self.name), Vec::new())
            .map(drop)
    }

    pub(super) fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, PgError> {
        let t = self.name;
        let (sql, params) = match (old, new) {
            (None, None) => {
                return self.get(key).map(|v| v.is_none());
            }
            (None, Some(new)) => (
                format!(
                    "INSERT INTO {t} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING \
                     RETURNING 1"
                ),
                vec![bytes(key), bytes(new)],
            ),
            (Some(old), Some(new)) => (
                format!("UPDATE {t} SET value = $3 WHERE key = $1 AND value = $2 RETURNING 1"),
                vec![bytes(key), bytes(old), bytes(new)],
            ),
            (Some(old), None) => (
                format!("DELETE FROM {t} WHERE key = $1 AND value = $2 RETURNING 1"),
                vec![bytes(key), bytes(old)],
            ),
        };
        Ok(!self.pg.0.query(sql, params)?.is_empty())
    }

    pub(super) fn cursor(&self, range: KeyRange) -> Cursor {
        Cursor {
            table: self.clone(),
            lo: range.0,
            hi: range.1,
            front: VecDeque::new(),
            back: VecDeque::new(),
            exhausted: false,
            page: FIRST_PAGE,
        }
    }
}

/// A range of a table read lazily from both ends, a page at a time. Each end's next page is
/// read strictly between what either end has already read, so the ends never return an entry
/// twice; once a page comes back short, everything left is in the two buffers.
pub struct Cursor {
    table: Table,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    /// Read from the front, ascending.
    front: VecDeque<Entry>,
    /// Read from the back, descending.
    back: VecDeque<Entry>,
    exhausted: bool,
    /// Rows the next read asks for: a few at first, doubling up to [`PAGE`]. Many reads take
    /// one entry (the last checkpoint, the change-log batch holding a sequence number), and a
    /// full first page of large values (a change-log batch is about 60 KB) made a change-feed
    /// request read megabytes to use one row.
    page: i64,
}

impl Cursor {
    fn fetch(&mut self, ascending: bool) -> Result<(), PgError> {
        let mut conditions = Vec::new();
        let mut params = Vec::new();
        for (bound, inclusive, exclusive) in [(&self.lo, ">=", ">"), (&self.hi, "<=", "<")] {
            let (op, key) = match bound {
                Bound::Included(k) => (inclusive, k),
                Bound::Excluded(k) => (exclusive, k),
                Bound::Unbounded => continue,
            };
            params.push(bytes(key));
            conditions.push(format!("key {op} ${}", params.len()));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let order = if ascending { "ASC" } else { "DESC" };
        let rows = self.table.pg.0.query(
            format!(
                "SELECT key, value FROM {} {filter} ORDER BY key {order} LIMIT {}",
                self.table.name, self.page
            ),
            params,
        )?;
        if (rows.len() as i64) < self.page {
            self.exhausted = true;
        }
        self.page = (self.page * 2).min(PAGE);
        let page: Vec<Entry> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        if let Some((k, _)) = page.last() {
            if ascending {
                self.lo = Bound::Excluded(k.clone());
            } else {
                self.hi = Bound::Excluded(k.clone());
            }
        }
        let buffer = if ascending {
            &mut self.front
        } else {
            &mut self.back
        };
        buffer.extend(page);
        Ok(())
    }

    fn next_from(&mut self, ascending: bool) -> Option<Result<Entry, PgError>> {
        let own = |c: &mut Self| {
            if ascending {
                c.front.pop_front()
            } else {
                c.back.pop_front()
            }
        };
        if let Some(kv) = own(self) {
            return Some(Ok(kv));
        }
        if !self.exhausted {
            if let Err(e) = self.fetch(ascending) {
                self.exhausted = true;
                self.front.clear();
                self.back.clear();
                return Some(Err(e));
            }
            if let Some(kv) = own(self) {
                return Some(Ok(kv));
            }
        }
        // Nothing left between the ends: what remains is what the other end has read.
        if ascending {
            self.back.pop_back()
        } else {
            self.front.pop_back()
        }
        .map(Ok)
    }

    pub(super) fn next_front(&mut self) -> Option<Result<Entry, PgError>> {
        self.next_from(true)
    }

    pub(super) fn next_back(&mut self) -> Option<Result<Entry, PgError>> {
        self.next_from(false)
    }
}

/// An open `SERIALIZABLE` transaction: reads go to the server (seeing this transaction's
/// snapshot) unless this transaction wrote the key; writes wait in memory for the commit.
pub struct PgTx<'a> {
    pg: &'a Inner,
    client: Arc<Pooled>,
    tables: Vec<&'static str>,
    writes: RefCell<Writes>,
    /// Values read ahead by [`PgTx::prefetch`] (`None`: absent).
    read_ahead: RefCell<ReadAhead>,
}

fn tx_error(e: PgError) -> TxError {
    if e.is_conflict() {
        TxError::Conflict
    } else {
        TxError::Storage(DbError::Postgres(e))
    }
}

impl PgTx<'_> {
    pub(super) fn get(&self, table: usize, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        if let Some((w, _)) = self.writes.borrow().get(&(table, key.to_vec())) {
            return Ok(w.clone());
        }
        let key = key.to_vec();
        if !self.read_ahead.borrow().contains_key(&(table, key.clone())) {
            self.prefetch(table, vec![key.clone()])?;
        }
        Ok(self
            .read_ahead
            .borrow()
            .get(&(table, key))
            .cloned()
            .flatten())
    }

    pub(super) fn prefetch(&self, table: usize, keys: Vec<Vec<u8>>) -> Result<(), TxError> {
        let name = self.tables.get(table).copied().unwrap_or("missing");
        let client = self.client.clone();
        let asked = keys.clone();
        let found = self
            .pg
            .run(async move {
                let rows = client
                    .query_typed(
                        &format!("SELECT key, value FROM {name} WHERE key = ANY($1)"),
                        &[(&asked, Type::BYTEA_ARRAY)],
                    )
                    .await?;
                Ok::<_, tokio_postgres::Error>(
                    rows.iter()
                        .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
                        .collect::<HashMap<_, _>>(),
                )
            })
            .map_err(tx_error)?;
        let mut found = found;
        let mut ahead = self.read_ahead.borrow_mut();
        for k in keys {
            let v = found.remove(&k);
            ahead.insert((table, k), v);
        }
        Ok(())
    }

    pub(super) fn write(&self, table: usize, key: &[u8], value: Option<&[u8]>) {
        self.writes
            .borrow_mut()
            .insert((table, key.to_vec()), (value.map(<[u8]>::to_vec), false));
    }

    /// Writes `key`, which the caller knows is absent from the table: the commit inserts it
    /// without an upsert's conflict handling (see [`write_statements`]). A later
    /// [`PgTx::write`] of the key makes it an upsert again.
    pub(super) fn write_new(&self, table: usize, key: &[u8], value: &[u8]) {
        self.writes
            .borrow_mut()
            .insert((table, key.to_vec()), (Some(value.to_vec()), true));
    }

    fn commit(self) -> Result<(), TxError> {
        let writes = self.writes.into_inner();
        let mut statements = Vec::new();
        for (i, name) in self.tables.iter().enumerate() {
            let of_table = writes
                .range((i, Vec::new())..(i + 1, Vec::new()))
                .map(|((_, k), (v, fresh))| (k.as_slice(), (v.as_deref(), *fresh)))
                .collect();
            statements.extend(write_statements(name, of_table));
        }
        let client = self.client.clone();
        self.pg
            .run(async move {
                execute_all(&client, statements).await?;
                client.batch_execute("COMMIT").await
            })
            .map_err(tx_error)
    }
}

/// Tests of the store on PostgreSQL, next to the same on sled. They need a running cluster named by
/// `XIANJIE_TEST_PG` (a connection string without dbname; `.ci/run` starts one and sets it) and
/// say SKIPPED without.
#[cfg(test)]
pub(crate) mod on_server {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::{Action, Case, CaseId, Uscc};
    use crate::store::kv::{self, Tree};
    use crate::store::{Change, PushCommit, Store, UpsertOutcome};

    /// A store in a new, empty database of its own, or `None` without a cluster.
    pub(crate) fn fresh_store(name: &str) -> Option<Store> {
        let Ok(server) = std::env::var("XIANJIE_TEST_PG") else {
            eprintln!("SKIPPED: XIANJIE_TEST_PG names no PostgreSQL cluster (.ci/run starts one)");
            return None;
        };
        let db = format!("unit_{name}_{}", std::process::id());
        let admin: tokio_postgres::Config = format!("{server} dbname=postgres").parse().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = admin.connect(NoTls).await.unwrap();
            tokio::spawn(conn);
            // Two statements: a batch of them would be one transaction, which neither may run in.
            for sql in [
                format!("DROP DATABASE IF EXISTS {db}"),
                format!("CREATE DATABASE {db}"),
            ] {
                client.batch_execute(&sql).await.unwrap();
            }
        });
        Some(open(&format!("{server} dbname={db}")))
    }

    /// The server's write-ahead log positions: how far it is written, and how far flushed.
    pub(crate) fn wal_positions(store: &Store) -> (i64, i64) {
        let kv::Tree::Postgres(table) = &store.meta else {
            panic!("a postgres store has postgres tables");
        };
        let rows = (table.pg().0)
            .query(
                "SELECT (pg_current_wal_insert_lsn() - '0/0')::int8, \
                 (pg_current_wal_flush_lsn() - '0/0')::int8"
                    .into(),
                Vec::new(),
            )
            .unwrap();
        (rows[0].get(0), rows[0].get(1))
    }

    fn open(url: &str) -> Store {
        Store::open_postgres(PgSettings {
            config: url.parse().unwrap(),
            tls: None,
            pool_size: 4,
        })
        .unwrap()
    }

    fn url_of(store: &Store) -> String {
        match &store.db {
            kv::Db::Postgres(pg) => {
                let c = &pg.0.settings.config;
                let host = match &c.get_hosts()[0] {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                };
                format!(
                    "host={host} port={} user={} dbname={}",
                    c.get_ports()[0],
                    c.get_user().unwrap_or("xianjie"),
                    c.get_dbname().unwrap_or("postgres")
                )
            }
            kv::Db::Sled(_) => unreachable!("a PostgreSQL store"),
        }
    }

    fn cases(prefix: &str, n: usize) -> Vec<Case> {
        let base = crate::ingest::golden::golden_cases();
        (0..n)
            .map(|i| {
                let mut c = base[i % base.len()].clone();
                c.case_id = CaseId::parse(&format!("{prefix}-{i:05}")).unwrap();
                c
            })
            .collect()
    }

    fn route(_: &Uscc, a: Action) -> Vec<String> {
        if a == Action::Penalty {
            vec!["p".into()]
        } else {
            Vec::new()
        }
    }

    /// What a store shows after the same writes: change log (without times), outbox, cases per
    /// unit in order, counts, pushes, dead letters and the newest supervision actions.
    fn observe(store: &Store) -> Vec<String> {
        let mut seen = Vec::new();
        let changes = store.changes_after(0, 100_000).unwrap();
        seen.extend(
            changes
                .iter()
                .map(|c| format!("{} {} {} {}", c.seq, c.unit_code, c.case_id, c.version)),
        );
        // Paged as a mirror reads it, starting inside a batch.
        let mut after = 7;
        loop {
            let page: Vec<Change> = store.changes_after(after, 333).unwrap();
            let Some(last) = page.last() else { break };
            seen.push(format!(
                "page after {after}: {} to {}",
                page[0].seq, last.seq
            ));
            after = last.seq;
        }
        for (k, e) in store.outbox("p", usize::MAX).unwrap() {
            seen.push(format!(
                "outbox {k} {} {} {}",
                e.case_id, e.version, e.change_seq
            ));
        }
        for (unit, counts) in store.unit_counts().unwrap() {
            seen.push(format!("counts {unit} {counts:?}"));
            for c in store.unit_cases(&unit) {
                seen.push(format!("case {}", c.unwrap().case_id));
            }
        }
        seen.push(format!(
            "{} cases, {} changes, {} queued, {} dead",
            store.case_count().unwrap(),
            store.change_count().unwrap(),
            store.outbox_len().unwrap(),
            store.dead_count("p").unwrap()
        ));
        for a in store.all_supervision::<serde_json::Value>().take(700) {
            seen.push(format!("action {}", a.unwrap()));
        }
        seen
    }

    fn write(store: &Store) {
        let first = cases("DIFF", 1500);
        for batch in first.chunks(400) {
            store.upsert_cases(batch, &route).unwrap();
        }
        // New versions of some, the same content of others (unchanged).
        let mut again: Vec<Case> = first[100..300].to_vec();
        for c in &mut again[..50] {
            c.title = format!("{} (changed)", c.title);
        }
        let outcomes = store.upsert_cases(&again, &route).unwrap();
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| matches!(o, UpsertOutcome::Unchanged { .. }))
                .count(),
            150
        );
        let queued = store.outbox("p", 40).unwrap();
        let (done, dead) = queued.split_at(30);
        let commit = PushCommit {
            done: queued.iter().map(|(_, e)| e.clone()).collect(),
            delivered: done
                .iter()
                .map(|(_, e)| (e.unit_code.clone(), e.case_id.clone(), e.version))
                .collect(),
            dead: dead
                .iter()
                .map(|(_, e)| crate::store::DeadLetter {
                    id: 0,
                    destination: "p".into(),
                    unit_code: e.unit_code.clone(),
                    case_id: e.case_id.clone(),
                    version: e.version,
                    change_seq: e.change_seq,
                    batch: e.batch,
                    record_id: e.case_id.to_string(),
                    op: "upsert".into(),
                    code: "E422".into(),
                    reason: "refused".into(),
                    package_id: None,
                    http_status: None,
                    response: None,
                    at: chrono::DateTime::UNIX_EPOCH,
                })
                .collect(),
        };
        let ids = store.push_commit("p", &commit).unwrap();
        store.dead_requeue(&ids[..3]).unwrap();
        let key = first[0].key();
        for i in 0..600u64 {
            let id = store.next_supervision_id().unwrap();
            store
                .put_supervision(
                    id,
                    &key,
                    &serde_json::json!({"n": i}),
                    &["procuratorate".into()],
                )
                .unwrap();
        }
    }

    #[test]
    fn postgres_reads_back_exactly_what_sled_does() {
        let Some(pg) = fresh_store("differential") else {
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let sled = Store::open(tmp.path()).unwrap();
        write(&sled);
        write(&pg);
        let (a, b) = (observe(&sled), observe(&pg));
        assert!(a.len() > 3000, "{} observations", a.len());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x, y, "observation {i} differs");
        }
        assert_eq!(a.len(), b.len());
    }

    /// A key-order read past the statistics' last bound (a queue's or a log's newest keys) is
    /// an index scan that stops at its limit, not a scan of every later row and a sort.
    #[test]
    fn a_key_order_read_past_the_statistics_stops_at_its_limit() {
        let Some(store) = fresh_store("planner") else {
            return;
        };
        let kv::Tree::Postgres(table) = &store.audit_log else {
            panic!("a postgres store has postgres tables");
        };
        let fill = |range: std::ops::Range<u64>| {
            let mut batch = kv::Batch::default();
            for i in range {
                batch.insert(i.to_be_bytes(), [0u8; 200]);
            }
            store.audit_log.apply_batch(batch).unwrap();
        };
        fill(0..2_000);
        table
            .pg()
            .0
            .query("ANALYZE audit_log".into(), Vec::new())
            .unwrap();
        fill(2_000..30_000);
        let plan: Vec<String> = (table.pg().0)
            .query(
                "EXPLAIN SELECT key, value FROM audit_log WHERE key > $1 ORDER BY key ASC LIMIT 128"
                    .into(),
                vec![bytes(&2_500u64.to_be_bytes())],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains("Index Scan using audit_log_pkey"), "{plan}");
        assert!(!plan.contains("Sort"), "{plan}");
        // The estimate that chose the bitmap scan in service (one row, from statistics taken
        // when the queue was nearly empty) is not reproduced here; what prevents that plan is
        // the session's setting, on every pooled connection.
        for _ in 0..4 {
            let rows = (table.pg().0)
                .query("SHOW enable_bitmapscan".into(), Vec::new())
                .unwrap();
            assert_eq!(rows[0].get::<_, String>(0), "off");
        }
    }

    /// A case transaction commits without waiting for the disk; a flush puts it there (as an
    /// ingest does before its file is done). Every other transaction is on disk when it returns.
    #[test]
    fn deferred_commits_are_visible_at_once_and_on_disk_after_a_flush() {
        let Some(store) = fresh_store("deferred") else {
            return;
        };
        // Tests share the server: other sessions' commits made without waiting may add to the
        // log at any time, so the plain commit is judged against the log's end before it began
        // (its commit record lies beyond that point), not against the end after it returned.
        let (before, _) = wal_positions(&store);
        kv::transaction("test", [&store.meta], |[t]| t.insert("sync", "1")).unwrap();
        let (_, flushed) = wal_positions(&store);
        assert!(
            flushed > before,
            "a plain commit is on disk when it returns"
        );

        let case = cases("DEFERRED", 1).remove(0);
        store
            .upsert_cases(std::slice::from_ref(&case), &route)
            .unwrap();
        let (written, _) = wal_positions(&store);
        // Committed: another connection of the pool reads it.
        assert!(
            store
                .get_case(&case.unit_code, &case.case_id)
                .unwrap()
                .is_some()
        );
        store.flush().unwrap();
        assert!(
            wal_positions(&store).1 >= written,
            "on disk after the flush"
        );
    }

    /// A key written as new goes into a plain insert; one that is there after all fails the
    /// transaction and keeps its value, where an upsert would have overwritten it.
    #[test]
    fn a_key_written_as_new_is_inserted_plainly_and_never_overwrites() {
        let mut writes = BTreeMap::new();
        writes.insert(&b"a"[..], (Some(&b"1"[..]), true));
        writes.insert(&b"b"[..], (Some(&b"2"[..]), false));
        writes.insert(&b"c"[..], (None, false));
        let statements = write_statements("t", writes);
        let sql: Vec<&str> = statements.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(sql.len(), 3, "{sql:?}");
        assert!(sql[0].starts_with("INSERT") && !sql[0].contains("ON CONFLICT"));
        assert!(sql[1].contains("ON CONFLICT (key) DO UPDATE"));
        assert!(sql[2].starts_with("DELETE"));
        let keys = |i: usize| match &statements[i].1[0].0 {
            Param::BytesArray(k) => k.clone(),
            Param::Bytes(_) => panic!("keys are an array"),
        };
        assert_eq!(
            (keys(0), keys(1)),
            (vec![b"a".to_vec()], vec![b"b".to_vec()])
        );

        let Some(store) = fresh_store("fresh") else {
            return;
        };
        store.meta.insert("old", "1").unwrap();
        kv::transaction("test", [&store.meta], |[t]| {
            t.insert_new("new", "n")?;
            t.insert("old", "2")
        })
        .unwrap();
        let read = |k: &str| store.meta.get(k).unwrap().map(|v| v.to_vec());
        assert_eq!(
            (read("new"), read("old")),
            (Some(b"n".to_vec()), Some(b"2".to_vec()))
        );
        let wrong = kv::transaction("test", [&store.meta], |[t]| {
            t.insert_new("other", "o")?;
            t.insert_new("old", "3")
        });
        assert!(wrong.is_err(), "{wrong:?}");
        assert_eq!((read("old"), read("other")), (Some(b"2".to_vec()), None));
    }

    #[test]
    fn a_cursor_read_from_both_ends_returns_each_entry_once_in_order() {
        let Some(store) = fresh_store("cursor") else {
            return;
        };
        let tree: &Tree = &store.meta;
        let mut batch = kv::Batch::default();
        for i in 0..1300u32 {
            batch.insert(format!("k{i:05}"), i.to_be_bytes());
        }
        tree.apply_batch(batch).unwrap();
        let mut it = tree.range("k00100".as_bytes().."k01250".as_bytes());
        let (mut front, mut back) = (Vec::new(), Vec::new());
        // Unevenly from both ends, so the ends meet inside a page one of them read.
        loop {
            let f = it.next().map(|r| r.unwrap().0);
            let b = if front.len() % 3 == 0 {
                it.next_back().map(|r| r.unwrap().0)
            } else {
                None
            };
            let stop = f.is_none() && b.is_none();
            if let Some(k) = f {
                front.push(String::from_utf8(k.to_vec()).unwrap());
            }
            if let Some(k) = b {
                back.push(String::from_utf8(k.to_vec()).unwrap());
            }
            if stop {
                break;
            }
        }
        back.reverse();
        let all: Vec<String> = front.into_iter().chain(back).collect();
        let expected: Vec<String> = (100..1250).map(|i| format!("k{i:05}")).collect();
        assert_eq!(all, expected);
        assert_eq!(tree.scan_prefix("k012").count(), 100);
        assert_eq!(
            tree.range::<&[u8], _>(..)
                .next_back()
                .unwrap()
                .unwrap()
                .0
                .as_ref(),
            b"store_layout"
        );
    }

    #[test]
    fn two_instances_share_one_keystore_and_never_overwrite_each_other() {
        use crate::keys::keystore::{Home, KdfParams, Keystore, KeystoreError, RecordMeta};
        use crate::keys::secret::{Passphrase, SecretBytes};
        let Some(a) = fresh_store("keystore") else {
            return;
        };
        let b = open(&url_of(&a));
        let pass = Passphrase::new("one passphrase for both".into());
        let meta = || RecordMeta {
            set_by: "test".into(),
            set_at: chrono::Utc::now(),
            note: None,
        };
        let home = |s: &Store| Home::Shared(Arc::new(s.clone()));
        assert!(!home(&a).exists());
        let mut on_a = Keystore::create(home(&a), &pass, KdfParams::default()).unwrap();
        assert!(home(&b).exists());
        assert!(matches!(
            Keystore::create(home(&b), &pass, KdfParams::default()),
            Err(KeystoreError::Exists { .. })
        ));
        let mut on_b = Keystore::open(home(&b), &pass).unwrap();
        on_a.put("one", &SecretBytes::new(b"1".to_vec()), meta())
            .unwrap();
        // b has not seen a's change: its write is refused, nothing lost.
        assert!(matches!(
            on_b.put("two", &SecretBytes::new(b"2".to_vec()), meta()),
            Err(KeystoreError::Changed)
        ));
        assert!(on_b.reload().unwrap());
        assert!(!on_b.reload().unwrap(), "nothing new the second time");
        on_b.put("two", &SecretBytes::new(b"2".to_vec()), meta())
            .unwrap();
        assert!(on_a.reload().unwrap());
        for ks in [&on_a, &on_b] {
            assert_eq!(ks.get("one").unwrap().unwrap().0.expose(), b"1");
            assert_eq!(ks.get("two").unwrap().unwrap().0.expose(), b"2");
        }
        assert_eq!(on_a.version(), on_b.version());
        // A passphrase changed on one instance: the other's key no longer opens it.
        on_a.change_passphrase(&Passphrase::new("a new passphrase".into()))
            .unwrap();
        assert!(matches!(on_b.reload(), Err(KeystoreError::Unlock)));
    }

    #[test]
    fn an_instance_answers_from_its_cache_and_learns_another_instances_writes_within_fresh() {
        use crate::store::PortGrant;
        let Some(a) = fresh_store("cache") else {
            return;
        };
        let b = open(&url_of(&a));
        let mut case = cases("CACHE", 1).remove(0);
        let (unit, id) = (case.unit_code.clone(), case.case_id.clone());
        a.upsert_cases(std::slice::from_ref(&case), &route).unwrap();
        let grant = PortGrant {
            unit_code: unit.clone(),
            client: "procuratorate".into(),
            opened_by: "admin".into(),
            opened_at: chrono::Utc::now(),
            supervise: false,
        };
        assert!(a.port_open(&grant).unwrap());
        let version = |s: &Store| s.get_case_raw(&unit, &id).unwrap().map(|c| c.version);
        // Each instance reads its own writes at once; the other's (not yet cached) too.
        assert_eq!(version(&a), Some(1));
        assert_eq!(version(&b), Some(1));
        assert!(b.port_is_open(&unit, "procuratorate").unwrap());

        // A new version and a closed port on one instance...
        case.title = format!("{} (changed)", case.title);
        a.upsert_cases(std::slice::from_ref(&case), &route).unwrap();
        assert!(a.port_close(&unit, "procuratorate").unwrap());
        assert_eq!(version(&a), Some(2));
        assert!(!a.port_is_open(&unit, "procuratorate").unwrap());
        // ...reach the other within FRESH.
        std::thread::sleep(crate::store::cache::FRESH + Duration::from_millis(50));
        assert_eq!(version(&b), Some(2));
        assert!(!b.port_is_open(&unit, "procuratorate").unwrap());
        assert!(b.ports().unwrap().is_empty());

        // What b holds is answered from memory: a row removed behind the store's back (no
        // change-log entry) is still answered by b, checked or not, and not by a new instance.
        a.cases.clear().unwrap();
        std::thread::sleep(crate::store::cache::FRESH + Duration::from_millis(50));
        assert_eq!(version(&b), Some(2));
        assert_eq!(version(&open(&url_of(&a))), None);
    }

    #[test]
    fn writers_on_two_instances_keep_the_change_log_dense_and_idempotent() {
        let Some(a) = fresh_store("concurrent") else {
            return;
        };
        let b = open(&url_of(&a));
        let shared = cases("SAME", 600);
        let own_a = cases("A", 600);
        let own_b = cases("B", 600);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            // A reader that must never see a gap, however the writers interleave.
            let reader = s.spawn(|| {
                let mut last = 0;
                let mut reads = 0;
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                    for c in a.changes_after(last, 10_000).unwrap() {
                        assert_eq!(c.seq, last + 1, "a gap after {last}");
                        last = c.seq;
                    }
                    reads += 1;
                    if finished {
                        return (last, reads);
                    }
                }
            });
            let w1 = s.spawn(|| {
                for (x, y) in shared.chunks(50).zip(own_a.chunks(50)) {
                    a.upsert_cases(x, &route).unwrap();
                    a.upsert_cases(y, &route).unwrap();
                }
            });
            let w2 = s.spawn(|| {
                for (x, y) in shared.chunks(50).zip(own_b.chunks(50)) {
                    b.upsert_cases(x, &route).unwrap();
                    b.upsert_cases(y, &route).unwrap();
                }
            });
            w1.join().unwrap();
            w2.join().unwrap();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            let (last, reads) = reader.join().unwrap();
            assert_eq!(last, 1800, "every case once, the shared ones not twice");
            assert!(reads > 1);
        });
        assert_eq!(b.change_count().unwrap(), 1800);
        assert_eq!(b.case_count().unwrap(), 1800);
        let versions: BTreeSet<u64> = b
            .changes_after(0, 10_000)
            .unwrap()
            .iter()
            .map(|c| c.version)
            .collect();
        assert_eq!(versions, BTreeSet::from([1]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps_and_named_as_their_files() {
        for (i, (v, name, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v, i32::try_from(i).unwrap() + 1);
            assert!(!name.is_empty() && !sql.trim().is_empty());
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".sql"))
            .collect();
        files.sort();
        let expected: Vec<String> = MIGRATIONS
            .iter()
            .map(|(v, n, _)| format!("{v:04}_{n}.sql"))
            .collect();
        assert_eq!(
            files, expected,
            "every file under migrations/ is compiled in"
        );
    }
}
