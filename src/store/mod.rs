//! The store: the only module that touches sled or a database. It owns the named trees, their key
//! encodings and the transactional outbox: a case write, its change-log entry and its outbox
//! entries commit together. The trees live in sled (embedded, the default) or in PostgreSQL, one
//! table each (see `kv.rs`).
//!
//! Trees:
//! - `cases`: `unit_code 0x00 case_id` → a fixed header (content and raw-record digests, action,
//!   version, update time) then the content JSON and the provenance JSON (see `cases.rs`)
//! - `changes`: `first seq of a batch (u64 BE)` → the batch's time and its `[unit, case, version]`
//!   entries — one value per write batch; sequence numbers increase by one per new case version
//!   (the next is in `meta`)
//! - `outbox`: `destination 0x00 first seq (u64 BE)` → JSON array of the positions, in that
//!   batch's change-log value, of the versions the destination must be sent
//! - `documents`: `sha256` → bytes (content-addressed)
//! - `quarantine`: `id (u64 BE)` → [`QuarantineEntry`] JSON; `quarantine_fp`: fingerprint → id (no duplicates)
//! - `counts`: `unit_code 0x00 action` → `u64 BE` (cases per unit and action, for status)
//! - `meta`: small named values (last scan per adapter, ...)
//! - `ports`: `unit_code 0x00 client` → [`PortGrant`] JSON (which client may read which unit)
//! - `delivered`: `destination 0x00 unit_code 0x00 case_id` → last version the destination
//!   acknowledged (u64 BE), so revocations reach exactly the destinations that hold the record
//! - `dead`: `id (u64 BE)` → [`DeadLetter`] JSON (records a destination refused)
//! - `reports`: `quarter 0x00 unit_code 0x00 version (u64 BE)` → quarterly report JSON, every version
//! - `parties`, `parties_sorted`, `party_watch`: the party index, recent entries written in each case
//!   transaction and the same merged into sorted chunks by the leads refresh (see `parties.rs`)
//! - `leads`, `leads_pending`: each case's leads, and the case versions whose leads are still to
//!   be judged (see `leads.rs`)
//! - `supervision`, `case_supervision`, `transfers`, `case_versions`, `supervision_outbox`: the procuratorate's actions
//!   and the workbench's indexes (see `supervision.rs`)
//! - `keystore`: `keystore` → the encrypted keystore of the instances sharing a PostgreSQL
//!   store, replaced only by compare-and-swap (see `keys::keystore::Home::Shared`); a sled
//!   store's keystore is a file of its own
//! - `audit_queue`, `audit_log`, `audit_checkpoints`: the audit log of instances sharing a
//!   PostgreSQL store (see `audit.rs`); a sled store's audit log is files of its own

mod audit;
mod cache;
mod cases;
mod kv;
mod leader;
mod leads;
mod migrate;
mod parties;
mod ports;
pub mod postgres;
mod push;
mod quarantine;
mod reports;
mod supervision;

use std::path::Path;

pub use audit::{GROUP_MAX as AUDIT_GROUP_MAX, QueuedRow};
pub use cases::{
    Change, JudgedLeads, OutboxEntry, PreparedCase, RawCase, Route, UnitCounts, UpsertOutcome,
};
pub use kv::DbError;
pub use leader::Leadership;
pub use leads::PendingMark;
pub use migrate::Copied;
pub use parties::{Merged, party_id};
pub use ports::PortGrant;
pub use postgres::{PgError, PgSettings};
pub use push::{DeadLetter, OutboxSummary, PushCommit};
pub use quarantine::{QuarantineEntry, QuarantineReason};
pub use reports::{ReportGrant, ReportRight, ReportStored, ReportWindow};
pub use supervision::{TransferCheck, TransferEntry, VersionEntry};

/// A store failure. Messages say what failed; the underlying sled error is kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened (locked by another process, unreadable, ...).
    #[error(
        "cannot open the store at {path}: {source} (is another xianjie process using this data directory?)"
    )]
    Open {
        /// Directory.
        path: String,
        /// Cause.
        #[source]
        source: sled::Error,
    },
    /// The database could not be opened or brought up to date.
    #[error("cannot open the store's database: {source}")]
    Database {
        /// Cause.
        #[source]
        source: PgError,
    },
    /// A read or write failed.
    #[error("store {op} failed: {source}")]
    Backend {
        /// Operation.
        op: &'static str,
        /// Cause.
        #[source]
        source: DbError,
    },
    /// The store was written in a layout this version does not read.
    #[error(
        "the store at {path} has layout {found}, this xianjie reads layout {expected}: move the directory aside and ingest the sources again"
    )]
    Layout {
        /// Directory.
        path: String,
        /// Layout found (0: before layouts were recorded).
        found: u32,
        /// Layout this version writes.
        expected: u32,
    },
    /// A stored value could not be decoded (corruption or an incompatible version).
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt {
        /// Which value.
        what: String,
        /// Why.
        reason: String,
    },
}

/// The layout of keys and values this version writes; raised whenever an encoding changes.
const LAYOUT: u32 = 3;
const LAYOUT_KEY: &str = "store_layout";

fn db_err<E: Into<DbError>>(op: &'static str) -> impl FnOnce(E) -> StoreError {
    move |source| StoreError::Backend {
        op,
        source: source.into(),
    }
}

/// The trees, by name (PostgreSQL's tables of the same names are created by
/// `migrations/0001_store.sql`).
const TREES: [&str; 26] = [
    "cases",
    "changes",
    "outbox",
    "documents",
    "quarantine",
    "quarantine_fp",
    "counts",
    "meta",
    "ports",
    "delivered",
    "dead",
    "reports",
    "parties",
    "parties_sorted",
    "party_watch",
    "leads",
    "leads_pending",
    "supervision",
    "case_supervision",
    "transfers",
    "case_versions",
    "supervision_outbox",
    "keystore",
    "audit_queue",
    "audit_log",
    "audit_checkpoints",
];

/// The gateway's store.
#[derive(Clone)]
pub struct Store {
    db: kv::Db,
    cases: kv::Tree,
    changes: kv::Tree,
    outbox: kv::Tree,
    documents: kv::Tree,
    quarantine: kv::Tree,
    quarantine_fp: kv::Tree,
    counts: kv::Tree,
    meta: kv::Tree,
    ports: kv::Tree,
    delivered: kv::Tree,
    dead: kv::Tree,
    reports: kv::Tree,
    parties: kv::Tree,
    parties_sorted: kv::Tree,
    party_watch: kv::Tree,
    leads: kv::Tree,
    leads_pending: kv::Tree,
    supervision: kv::Tree,
    case_supervision: kv::Tree,
    transfers: kv::Tree,
    case_versions: kv::Tree,
    supervision_outbox: kv::Tree,
    keystore: kv::Tree,
    audit_queue: kv::Tree,
    audit_log: kv::Tree,
    audit_checkpoints: kv::Tree,
    /// The read cache of an instance sharing a PostgreSQL store (none on sled).
    cache: Option<cache::ReadCache>,
    /// The change-log batches decoded lately.
    recent: cases::RecentBatches,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the embedded store in `dir/store`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("store");
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(16 * 1024 * 1024)
            .open()
            .map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?;
        Self::with_trees(kv::Db::Sled(db), &path.display().to_string())
    }

    /// Opens the store in a PostgreSQL database: connects, applies the migrations this binary
    /// knows (refusing a newer schema) and keeps up to `settings.pool_size` connections.
    pub fn open_postgres(settings: PgSettings) -> Result<Self, StoreError> {
        let pg = postgres::Pg::open(settings).map_err(|source| StoreError::Database { source })?;
        Self::with_trees(kv::Db::Postgres(pg), "the database")
    }

    fn with_trees(db: kv::Db, path: &str) -> Result<Self, StoreError> {
        let tree = |name: &'static str| db.open_tree(name).map_err(db_err("open tree"));
        let [
            cases,
            changes,
            outbox,
            documents,
            quarantine,
            quarantine_fp,
            counts,
            meta,
            ports,
            delivered,
            dead,
            reports,
            parties,
            parties_sorted,
            party_watch,
            leads,
            leads_pending,
            supervision,
            case_supervision,
            transfers,
            case_versions,
            supervision_outbox,
            keystore,
            audit_queue,
            audit_log,
            audit_checkpoints,
        ] = TREES;
        let store = Self {
            cases: tree(cases)?,
            changes: tree(changes)?,
            outbox: tree(outbox)?,
            documents: tree(documents)?,
            quarantine: tree(quarantine)?,
            quarantine_fp: tree(quarantine_fp)?,
            counts: tree(counts)?,
            meta: tree(meta)?,
            ports: tree(ports)?,
            delivered: tree(delivered)?,
            dead: tree(dead)?,
            reports: tree(reports)?,
            parties: tree(parties)?,
            parties_sorted: tree(parties_sorted)?,
            party_watch: tree(party_watch)?,
            leads: tree(leads)?,
            leads_pending: tree(leads_pending)?,
            supervision: tree(supervision)?,
            case_supervision: tree(case_supervision)?,
            transfers: tree(transfers)?,
            case_versions: tree(case_versions)?,
            supervision_outbox: tree(supervision_outbox)?,
            keystore: tree(keystore)?,
            audit_queue: tree(audit_queue)?,
            audit_log: tree(audit_log)?,
            audit_checkpoints: tree(audit_checkpoints)?,
            cache: matches!(db, kv::Db::Postgres(_)).then(cache::ReadCache::default),
            recent: cases::RecentBatches::default(),
            db,
        };
        let found: u32 = store.get_meta(LAYOUT_KEY).ok().flatten().unwrap_or(0);
        if found != LAYOUT {
            if !store.cases.is_empty().map_err(db_err("case read"))? || found > LAYOUT {
                return Err(StoreError::Layout {
                    path: path.to_string(),
                    found,
                    expected: LAYOUT,
                });
            }
            store.set_meta(LAYOUT_KEY, &LAYOUT)?;
        }
        Ok(store)
    }

    /// Whether this store's reads wait on a database server (PostgreSQL) rather than on memory
    /// and local files: an async caller then must not wait for them on a runtime worker.
    pub fn is_remote(&self) -> bool {
        matches!(self.db, kv::Db::Postgres(_))
    }

    /// Makes everything written so far durable (on PostgreSQL: the case transactions, whose
    /// commits do not wait for the disk). Called before a file is reported done and at shutdown.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(db_err("flush"))
    }

    /// Stores a document's bytes under their SHA-256 and returns the digest (lowercase hex).
    /// Bytes already held are not written again (a re-read export rewrites nothing).
    pub fn put_document(&self, bytes: &[u8]) -> Result<String, StoreError> {
        use sha2::{Digest, Sha256};
        let digest = hex::encode(Sha256::digest(bytes));
        let held = self
            .documents
            .contains_key(digest.as_bytes())
            .map_err(db_err("document read"))?;
        if !held {
            self.documents
                .insert(digest.as_bytes(), bytes)
                .map_err(db_err("document write"))?;
        }
        Ok(digest)
    }

    /// A document's bytes by digest.
    pub fn get_document(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .documents
            .get(sha256.as_bytes())
            .map_err(db_err("document read"))?
            .map(|v| v.to_vec()))
    }

    /// Reads a small named value.
    pub fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        match self.meta.get(name).map_err(db_err("meta read"))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    what: format!("meta {name}"),
                    reason: e.to_string(),
                }),
        }
    }

    /// Writes a small named value.
    pub fn set_meta<T: serde::Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
            what: format!("meta {name}"),
            reason: e.to_string(),
        })?;
        self.meta
            .insert(name, bytes)
            .map(drop)
            .map_err(db_err("meta write"))
    }

    /// Metas whose name starts with `prefix`.
    pub fn meta_with_prefix<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.meta.scan_prefix(prefix) {
            let (k, v) = kv.map_err(db_err("meta scan"))?;
            let name = String::from_utf8_lossy(&k).into_owned();
            let value = serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                what: format!("meta {name}"),
                reason: e.to_string(),
            })?;
            out.push((name, value));
        }
        Ok(out)
    }
}

/// The keystore's one key in the `keystore` tree.
const KEYSTORE_KEY: &[u8] = b"keystore";

/// The keystore of the instances sharing this store.
impl crate::keys::keystore::SharedBlob for Store {
    fn label(&self) -> String {
        "the keystore in the store's database".into()
    }

    fn get(&self) -> std::io::Result<Option<Vec<u8>>> {
        self.keystore
            .get(KEYSTORE_KEY)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(std::io::Error::other)
    }

    fn swap(&self, old: Option<&[u8]>, new: &[u8]) -> std::io::Result<bool> {
        self.keystore
            .compare_and_swap(KEYSTORE_KEY, old, Some(new))
            .map_err(std::io::Error::other)
    }
}
