//! The admin API: HTTP/1.1 over a Unix socket in the data directory (mode 0600; the peer must be the
//! gateway's own OS user). [`server`] serves it inside the gateway; [`client`] is what the CLI uses.

pub mod client;
pub mod server;

use serde::{Deserialize, Serialize};

use crate::ingest::{FileOutcome, Summary};
use crate::store::UnitCounts;

/// File name of the admin socket inside the data directory.
pub const SOCKET_NAME: &str = "admin.sock";

/// `POST /ingest`: ingest a file or directory through an adapter, in place.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestRequest {
    /// Adapter name.
    pub adapter: String,
    /// Absolute path of a file or directory on the gateway host.
    pub path: String,
}

/// `POST /scan`: scan inboxes now.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScanRequest {
    /// One adapter, or all when absent.
    pub adapter: Option<String>,
}

/// One line of a streamed (NDJSON) ingest or scan response.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestEvent {
    /// Counts so far of the file being read.
    Progress(Summary),
    /// A file finished (read or refused).
    File {
        /// Adapter.
        adapter: String,
        /// What happened.
        outcome: FileOutcome,
    },
    /// The run ended; totals over all files.
    Done(Summary),
    /// The run failed.
    Error(String),
}

/// Per-unit line of `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitStatus {
    /// Unit USCC.
    pub unit_code: String,
    /// Unit name.
    pub unit_name: String,
    /// Case counts.
    #[serde(flatten)]
    pub counts: UnitCounts,
}

/// The last inbox scan of an adapter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanRecord {
    /// When it ended.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Files read.
    pub files: u64,
    /// Files refused.
    pub refused: u64,
    /// Totals.
    pub summary: Summary,
}

/// Per-adapter line of `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdapterStatus {
    /// Adapter name.
    pub name: String,
    /// Source system.
    pub system: String,
    /// Inbox directory.
    pub inbox: String,
    /// Last scan, if any.
    pub last_scan: Option<ScanRecord>,
}

/// `GET /status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// Gateway version.
    pub version: String,
    /// Data directory.
    pub data_dir: String,
    /// Stored cases.
    pub cases: u64,
    /// Change-log entries (one per stored case version).
    pub changes: u64,
    /// Quarantined records.
    pub quarantine: u64,
    /// Units with cases.
    pub units: Vec<UnitStatus>,
    /// Adapters.
    pub adapters: Vec<AdapterStatus>,
}

/// `POST /quarantine/retry`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetryRequest {
    /// Entries to retry; empty with `all` means every entry.
    pub ids: Vec<u64>,
    /// Retry everything (optionally of `adapter`).
    pub all: bool,
    /// Limit `all` to one adapter.
    pub adapter: Option<String>,
}

/// An admin API error body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, for the operator.
    pub error: String,
}
