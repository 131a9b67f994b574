//! The PostgreSQL backend (issue 16, being built): the database's schema is versioned by the SQL
//! files under `migrations/`, compiled into the binary and applied in order at start. A database
//! whose schema is newer than the binary knows is refused, with what to do. Connections may use
//! TLS through rustls ([`RustlsConnect`], configured by `tls::database_client_config`). Only
//! `store/` talks to a database.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Client;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

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
pub const MIGRATIONS: &[(i32, &str, &str)] =
    &[(1, "meta", include_str!("../../migrations/0001_meta.sql"))];

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
