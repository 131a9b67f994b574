//! The admin API: HTTP/1.1 over a Unix socket in the data directory (mode 0600; the peer must be the
//! gateway's own OS user). [`server`] serves it inside the gateway; [`client`] is what the CLI uses.

pub mod client;
pub mod grants;
mod keys;
pub mod leads;
pub mod push;
pub mod reports;
pub mod server;
pub mod supervision;
pub mod users;

use serde::{Deserialize, Serialize};

use crate::ingest::{FileOutcome, Summary};
use crate::store::UnitCounts;

/// File name of the admin socket inside the data directory.
pub const SOCKET_NAME: &str = "admin.sock";

/// Request header naming the administrator (`--as NAME`), recorded in audit entries. The socket
/// admits only the gateway's OS user, so this attributes actions among the people who share that
/// account; it is not a second authentication.
pub const ADMIN_HEADER: &str = "x-xianjie-admin";

/// The administrator's name when `--as` is not given: the OS user name.
pub fn default_admin_name() -> String {
    use std::os::unix::fs::MetadataExt;
    // The account database first (USER can be unset or stale under sudo and in containers).
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let from_passwd = uid.and_then(|uid| {
        std::fs::read_to_string("/etc/passwd")
            .ok()?
            .lines()
            .find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
            })
    });
    from_passwd
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

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
    /// This instance's name.
    #[serde(default)]
    pub instance: String,
    /// Whether this instance leads (runs the scheduled work).
    #[serde(default)]
    pub leading: bool,
    /// The instance that leads, as last seen (`None`: none yet, or the database is unreachable).
    #[serde(default)]
    pub leader: Option<String>,
    /// Units with cases.
    pub units: Vec<UnitStatus>,
    /// Adapters.
    pub adapters: Vec<AdapterStatus>,
    /// Whether the keystore is sealed (nothing that needs a key works).
    pub sealed: bool,
    /// Whether a keystore exists yet (the first unlock creates it).
    pub keystore_exists: bool,
    /// Keystore version, when unlocked.
    pub keystore_version: Option<u64>,
    /// Audit log entries.
    pub audit_entries: u64,
}

/// `POST /unlock`. The passphrase travels over the admin socket only (mode 0600, same OS user).
#[derive(Deserialize, Serialize)]
pub struct UnlockRequest {
    /// The passphrase.
    pub passphrase: String,
}

impl std::fmt::Debug for UnlockRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockRequest { passphrase: <redacted> }")
    }
}

/// `POST /keys/passphrase`: the custody handover. Both passphrases travel over the admin socket
/// only, like the unlock passphrase.
#[derive(Deserialize, Serialize)]
pub struct ChangePassphraseRequest {
    /// The passphrase the keystore is sealed under now.
    pub current: String,
    /// The passphrase it is to be sealed under.
    pub new: String,
}

impl std::fmt::Debug for ChangePassphraseRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangePassphraseRequest { current: <redacted>, new: <redacted> }")
    }
}

/// `POST /credentials/{destination}`.
#[derive(Deserialize, Serialize)]
pub struct CredentialRequest {
    /// The secret, as read from the administrator's standard input.
    pub secret: String,
}

impl std::fmt::Debug for CredentialRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialRequest { secret: <redacted> }")
    }
}

/// `POST /clients`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientRequest {
    /// Client name.
    pub name: String,
    /// SHA-256 fingerprint of the only certificate it may use.
    pub cert_fingerprint: Option<String>,
    /// The name its certificate carries (CN, DNS name or URI) when it is not pinned; default:
    /// the client's own name.
    #[serde(default)]
    pub cert_subject: Option<String>,
}

/// `POST /clients/{name}/rotate-secret`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RotateRequest {
    /// Seconds the old secret keeps working (default: the configured overlap).
    pub overlap_secs: Option<u64>,
}

/// A client secret, shown once.
#[derive(Serialize, Deserialize)]
pub struct SecretShown {
    /// The client.
    pub client: String,
    /// The secret: shown this once, stored only as a keyed hash.
    pub secret: String,
    /// When the previous secret stops working (rotation only).
    pub old_secret_until: Option<chrono::DateTime<chrono::Utc>>,
}

impl std::fmt::Debug for SecretShown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretShown")
            .field("client", &self.client)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A simple acknowledgement with a value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    /// What happened, in words.
    pub message: String,
    /// A version or id, when there is one.
    pub value: Option<String>,
}

/// `POST /ports/open` and `POST /ports/close`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortRequest {
    /// The unit's USCC.
    pub unit: String,
    /// The client.
    pub client: String,
    /// Opening a port: also let the client write supervision actions on the unit's cases.
    #[serde(default)]
    pub supervise: bool,
}

/// `POST /audit/export`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportRequest {
    /// Directory on the gateway host.
    pub dir: String,
}

/// An inclusion or consistency proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofAnswer {
    /// `inclusion` or `consistency`.
    pub kind: String,
    /// Leaf index (inclusion) or old size (consistency).
    pub from: u64,
    /// Tree size.
    pub size: u64,
    /// Root of the tree of `size` entries (base64).
    pub root: String,
    /// Root of the old tree (consistency; base64).
    pub old_root: Option<String>,
    /// Leaf hash (inclusion; base64).
    pub leaf: Option<String>,
    /// The proof hashes (base64), in RFC 9162 order.
    pub proof: Vec<String>,
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
