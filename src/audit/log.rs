//! The audit log: appends (fail-closed), the Merkle frontier, signed checkpoints, proofs and
//! export, kept in one of two places:
//!
//! - **Files** (one instance, beside the embedded store), in `DATA/audit/` (mode 0600):
//!   - `entries.jsonl`: one canonical JSON entry per line; line `i` (without its `\n`) is leaf `i`;
//!   - `leaves.bin`: the 32-byte leaf hashes in order — a cache, rebuilt from the entries at open;
//!   - `checkpoints.log`: every signed checkpoint, each as a decimal byte length line and the note.
//!
//!   An append is written to the OS (one `write`) before it returns; with `Fsync::Always` it
//!   also waits for an fsync that covers it, and concurrent appends share that fsync; with
//!   `Fsync::Interval` a background thread fsyncs at that interval. A failed write marks the log
//!   broken: every later append fails, so no operation proceeds unaudited (fail closed).
//! - **The shared store** (instances sharing a PostgreSQL database; see `shared.rs`): an append
//!   from any instance is committed to a queue before it returns; the leader sequences queued
//!   entries into the one tree, in one order, and signs its checkpoints.
//!
//! Both keep the same entries, proofs and export, so `audit export` and `audit verify` work
//! the same on either.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::entry::{CanonicalError, Entry, Event, Prepared};
use super::merkle::{self, Frontier, Hash};
use super::note::{Checkpoint, NoteError, NoteSigner};

/// When appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Every append waits for an fsync covering it (shared with concurrent appends).
    Always,
    /// A background fsync at this interval; an append waits only for the OS write.
    Interval(Duration),
}

/// Audit log failures.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file could not be read or written.
    #[error("audit log {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An earlier write failed; nothing more is appended until the gateway restarts.
    #[error(
        "the audit log cannot be written ({0}); operations that must be audited are refused until it can"
    )]
    Broken(String),
    /// The entry has no canonical form.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// The files on disk disagree with the last signed checkpoint.
    #[error("audit log {path} does not match its last signed checkpoint: {reason}")]
    Tampered {
        /// The directory.
        path: String,
        /// What differs.
        reason: String,
    },
    /// An entry line is unreadable.
    #[error("audit log {path}, entry {index}: {reason}")]
    BadEntry {
        /// The file.
        path: String,
        /// Leaf index.
        index: u64,
        /// Why.
        reason: String,
    },
    /// Signing or parsing a checkpoint failed.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A proof was asked for sizes or indexes the log does not have.
    #[error(transparent)]
    Proof(#[from] merkle::ProofError),
    /// The shared store failed (the log of instances sharing a database).
    #[error("the audit log in the database: {0}")]
    Store(String),
    /// No checkpoint can be signed while the keystore is sealed.
    #[error("no audit checkpoint has been signed yet (the keystore is sealed; unlock it)")]
    NoCheckpoint,
}

/// What [`Backend::lines`] calls with each entry's index and canonical line.
pub(super) type EachLine<'a> = dyn FnMut(u64, &[u8]) -> Result<(), AuditError> + 'a;

/// A signed checkpoint and its note.
pub(super) type SignedNote = (Checkpoint, String);

/// What a log is kept in: its own files, or the store instances share.
pub(super) trait Backend: Send + Sync {
    /// Appends a prepared entry at `now`; durable (as the policy says) when it returns. Returns
    /// its sequence number (files) or its place in the queue (shared).
    fn append(&self, prepared: &Prepared, now: DateTime<Utc>) -> Result<u64, AuditError>;
    /// Starts appending a prepared entry at `now` without waiting for it to be durable; the
    /// caller awaits the returned [`Pending`] before it proceeds. A backend whose appends are
    /// cheap to wait for (the files) simply appends.
    fn append_later(&self, prepared: &Prepared, now: DateTime<Utc>) -> Result<Pending, AuditError> {
        self.append(prepared, now)
            .map(|seq| Pending(Waiting::Done(Ok(seq))))
    }
    /// Entries in the tree.
    fn size(&self) -> u64;
    /// Makes every append durable.
    fn sync(&self) -> Result<(), AuditError>;
    /// The tree this instance may sign now, as (size, root); `None` when another instance
    /// signs (a follower).
    fn to_sign(&self) -> Result<Option<(u64, Hash)>, AuditError>;
    /// Keeps a signed checkpoint of the first `size` entries.
    fn store_note(&self, size: u64, note: &str) -> Result<(), AuditError>;
    /// Every signed checkpoint, oldest first.
    fn notes(&self) -> Result<Vec<String>, AuditError>;
    /// The latest signed checkpoint.
    fn last_note(&self) -> Result<Option<String>, AuditError>;
    /// Calls `each` with the index and canonical line of entries `start..end`, in order.
    fn lines(&self, start: u64, end: u64, each: &mut EachLine<'_>) -> Result<(), AuditError>;
    /// The first `size` leaf hashes.
    fn leaves(&self, size: u64) -> Result<Vec<Hash>, AuditError>;
    /// Where the entries are, for messages.
    fn label(&self) -> String;
}

/// An append on its way to being durable ([`AuditLog::append_later`]). The operation it
/// records must not proceed before [`Pending::durable`] says so.
#[must_use = "an audited operation proceeds only once its entry is durable"]
pub struct Pending(pub(super) Waiting);

/// What a [`Pending`] waits for.
pub(super) enum Waiting {
    /// Nothing: the append is over, with this outcome.
    Done(Result<u64, AuditError>),
    /// The shared log's writer: the entry's queue place, or why writing failed.
    Writer(tokio::sync::oneshot::Receiver<Result<u64, String>>),
}

impl Pending {
    /// The outcome, if the append is already over (the file log's appends are); otherwise the
    /// pending append back, to await.
    pub fn outcome_now(self) -> Result<Result<u64, AuditError>, Pending> {
        match self.0 {
            Waiting::Done(outcome) => Ok(outcome),
            waiting => Err(Pending(waiting)),
        }
    }

    /// Waits until the entry is durable; returns its sequence number (files) or its place in
    /// the queue (shared), or why it could not be written.
    pub async fn durable(self) -> Result<u64, AuditError> {
        match self.0 {
            Waiting::Done(outcome) => outcome,
            Waiting::Writer(rx) => match rx.await {
                Ok(outcome) => outcome.map_err(AuditError::Broken),
                Err(_) => Err(AuditError::Broken(
                    "the audit writer stopped before writing the entry".into(),
                )),
            },
        }
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.0 {
            Waiting::Done(Ok(_)) => "written",
            Waiting::Done(Err(_)) => "failed",
            Waiting::Writer(_) => "queued",
        };
        f.debug_tuple("Pending").field(&state).finish()
    }
}

/// Facts a few entries record that outlive a restart.
#[derive(Default)]
pub(super) struct Facts {
    /// Highest keystore version recorded by a `keystore.change` entry.
    pub(super) keystore_version: u64,
    /// Time of the last `credential.use` entry per destination.
    pub(super) last_use: std::collections::HashMap<String, String>,
}

struct Signed {
    signer: Option<NoteSigner>,
    last: Option<(Checkpoint, String)>,
}

/// The audit log. Shared by every part of the gateway through an `Arc`.
pub struct AuditLog {
    dir: PathBuf,
    origin: String,
    backend: Arc<dyn Backend>,
    signed: Mutex<Signed>,
    facts: Mutex<Facts>,
    /// Size at open, for the appended-since-start metric.
    opened_at_size: u64,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.dir)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding an audit lock leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn open_rw(path: &Path, append: bool) -> Result<File, AuditError> {
    OpenOptions::new()
        .read(true)
        .write(!append)
        .append(append)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io(path))
}

/// Splits a stored signed note into its checkpoint.
pub(crate) fn checkpoint_of(note: &str) -> Result<Checkpoint, NoteError> {
    let body_end = note.find("\n\n").map_or(note.len(), |i| i + 1);
    Checkpoint::parse(&note[..body_end])
}

/// Reads `checkpoints.log`: every stored note, oldest first.
pub(crate) fn read_checkpoints(path: &Path) -> Result<Vec<String>, AuditError> {
    let mut text = String::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_string(&mut text).map_err(io(path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path)(e)),
    }
    let mut notes = Vec::new();
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let bad = |reason: &str| AuditError::Tampered {
            path: path.display().to_string(),
            reason: format!("checkpoint record {}: {reason}", notes.len() + 1),
        };
        let (len, after) = rest.split_once('\n').ok_or_else(|| bad("no length line"))?;
        let len: usize = len.parse().map_err(|_| bad("bad length line"))?;
        let note = after
            .get(..len)
            .ok_or_else(|| bad("shorter than its length"))?;
        notes.push(note.to_string());
        rest = &after[len..];
    }
    Ok(notes)
}

impl AuditLog {
    /// Opens (or creates) the log's files in `dir`: rehashes every entry, drops a torn last line
    /// (an append that never completed, so was never acknowledged), rewrites the leaf cache if
    /// it disagrees, and refuses a log that no longer matches its last signed checkpoint.
    pub fn open(dir: &Path, origin: &str, policy: Fsync) -> Result<Arc<AuditLog>, AuditError> {
        let (log, facts, last) = FileLog::open(dir, policy)?;
        Ok(Self::with(dir, origin, log, facts, last))
    }

    /// The log of instances sharing `store` (a PostgreSQL store): see `shared.rs`. `dir` is
    /// only named in messages; `policy` says when queued entries reach the disk, as for files.
    pub fn open_shared(
        store: crate::store::Store,
        leader: crate::store::Leadership,
        dir: &Path,
        origin: &str,
        policy: Fsync,
    ) -> Result<Arc<AuditLog>, AuditError> {
        let (log, last) = super::shared::SharedLog::open(store, leader, policy)?;
        Ok(Self::with(
            dir,
            origin,
            Arc::new(log),
            Facts::default(),
            last,
        ))
    }

    fn with(
        dir: &Path,
        origin: &str,
        backend: Arc<dyn Backend>,
        facts: Facts,
        last: Option<(Checkpoint, String)>,
    ) -> Arc<AuditLog> {
        let opened_at_size = backend.size();
        Arc::new(AuditLog {
            dir: dir.to_path_buf(),
            origin: origin.to_string(),
            backend,
            signed: Mutex::new(Signed { signer: None, last }),
            facts: Mutex::new(facts),
            opened_at_size,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint origin line (also the signing key's name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.backend.size()
    }

    /// Entries appended since the log was opened.
    pub fn appended_since_start(&self) -> u64 {
        self.size().saturating_sub(self.opened_at_size)
    }

    /// Highest keystore version any entry has recorded (0 if none).
    pub fn keystore_version(&self) -> u64 {
        lock(&self.facts).keystore_version
    }

    /// When a destination's credential was last used, per the log.
    pub fn last_use(&self, destination: &str) -> Option<String> {
        lock(&self.facts).last_use.get(destination).cloned()
    }

    /// Appends one entry and returns its sequence number (or, in a shared log, its place in the
    /// queue the leader sequences). Returns only once the entry is durable as the log's policy
    /// says; on error the operation must not proceed.
    pub fn append(&self, event: &Event) -> Result<u64, AuditError> {
        // Encoded before any lock: appenders on other threads wait only for the number, the
        // clock and the write.
        let prepared = event.prepare()?;
        let now = Utc::now();
        let seq = self.backend.append(&prepared, now)?;
        if event.action == "keystore.change" {
            let v = event.details.get("version").and_then(|v| v.as_u64());
            let mut facts = lock(&self.facts);
            facts.keystore_version = facts.keystore_version.max(v.unwrap_or(0));
        } else if event.action == "credential.use" {
            let t = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            lock(&self.facts).last_use.insert(event.target.clone(), t);
        }
        Ok(seq)
    }

    /// Starts appending one entry and returns at once; the operation it records proceeds only
    /// once the returned [`Pending`] is durable. On a shared log the request's task then waits
    /// for the group commit without holding a thread. Entries whose facts the log keeps
    /// (keystore changes, credential uses) are appended as by [`AuditLog::append`].
    pub fn append_later(&self, event: &Event) -> Result<Pending, AuditError> {
        if matches!(event.action.as_str(), "keystore.change" | "credential.use") {
            return self
                .append(event)
                .map(|seq| Pending(Waiting::Done(Ok(seq))));
        }
        let prepared = event.prepare()?;
        self.backend.append_later(&prepared, Utc::now())
    }

    /// Makes everything appended so far durable.
    pub fn sync(&self) -> Result<(), AuditError> {
        self.backend.sync()
    }

    /// Sequences what other instances queued into a shared log, when this instance leads
    /// (nothing to do for a log in files).
    pub fn sequence(&self) -> Result<(), AuditError> {
        self.backend.to_sign().map(drop)
    }

    /// Installs (unlock) or removes (seal) the checkpoint signing key.
    pub fn set_signer(&self, signer: Option<NoteSigner>) {
        lock(&self.signed).signer = signer;
    }

    /// The verifier key text of the signing key, if one is installed.
    pub fn verifier_text(&self) -> Option<String> {
        lock(&self.signed)
            .signer
            .as_ref()
            .map(|s| s.verifier().text())
    }

    /// Signs a checkpoint of the log as it is now, unless the last one already covers every
    /// entry (or another instance signs: a follower of a shared log); returns the latest signed
    /// note. Checkpoints are only ever signed over the one append-only frontier, so no two are
    /// inconsistent. Without a signer (sealed) returns the last one signed, or
    /// [`AuditError::NoCheckpoint`].
    pub fn checkpoint(&self) -> Result<String, AuditError> {
        self.sync()?;
        let mut signed = lock(&self.signed);
        if let Some((size, root)) = self.backend.to_sign()? {
            let stale = signed.last.as_ref().is_none_or(|(cp, _)| cp.size < size);
            if stale && let Some(signer) = &signed.signer {
                let cp = Checkpoint {
                    origin: self.origin.clone(),
                    size,
                    root,
                    extensions: Vec::new(),
                };
                let note = signer.sign(&cp.body())?;
                self.backend.store_note(size, &note)?;
                signed.last = Some((cp, note));
            }
        }
        drop(signed);
        self.backend.last_note()?.ok_or(AuditError::NoCheckpoint)
    }

    /// Signs a checkpoint now where this instance signs ([`AuditLog::checkpoint`]); a follower
    /// of a shared log, or a log nobody has signed yet, leaves it to the leader: what was
    /// appended is durable already, and the leader's next checkpoint covers it.
    pub fn checkpoint_now(&self) -> Result<(), AuditError> {
        match self.checkpoint() {
            Ok(_) | Err(AuditError::NoCheckpoint) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The latest signed checkpoint note, without signing a new one.
    pub fn last_signed(&self) -> Option<String> {
        self.backend.last_note().ok().flatten()
    }

    /// Entries `start..end` (clamped to the log), oldest first, each with its index.
    pub fn range(&self, start: u64, end: u64) -> Result<Vec<(u64, Entry)>, AuditError> {
        let end = end.min(self.size());
        let mut out = Vec::new();
        self.backend.lines(start, end, &mut |i, line| {
            let e = serde_json::from_slice(line).map_err(|e| AuditError::BadEntry {
                path: self.backend.label(),
                index: i,
                reason: e.to_string(),
            })?;
            out.push((i, e));
            Ok(())
        })?;
        Ok(out)
    }

    /// The last `n` entries, oldest first.
    pub fn tail(&self, n: usize) -> Result<Vec<Entry>, AuditError> {
        let size = self.size();
        Ok(self
            .range(size.saturating_sub(n as u64), size)?
            .into_iter()
            .map(|(_, e)| e)
            .collect())
    }

    /// An inclusion proof of entry `index` in the tree of `size` entries (default: all), with
    /// that tree's root.
    pub fn inclusion(
        &self,
        index: u64,
        size: Option<u64>,
    ) -> Result<(u64, Hash, Vec<Hash>), AuditError> {
        let size = size.unwrap_or_else(|| self.size());
        if size > self.size() {
            return Err(merkle::ProofError::SizeOutOfRange {
                size,
                max: self.size(),
            }
            .into());
        }
        let leaves = self.backend.leaves(size)?;
        let proof = merkle::inclusion_proof(&leaves, index, size)?;
        Ok((size, merkle::root(&leaves), proof))
    }

    /// The leaf hash of entry `index`.
    pub fn inclusion_leaf(&self, index: u64) -> Result<Hash, AuditError> {
        let leaves = self
            .backend
            .leaves(index.saturating_add(1).min(self.size()))?;
        let i = usize::try_from(index).unwrap_or(usize::MAX);
        leaves.get(i).copied().ok_or_else(|| {
            merkle::ProofError::IndexOutOfRange {
                index,
                size: self.size(),
            }
            .into()
        })
    }

    /// A consistency proof between the trees of `old` and `new` entries, with both roots.
    pub fn consistency(&self, old: u64, new: u64) -> Result<(Hash, Hash, Vec<Hash>), AuditError> {
        if new > self.size() {
            return Err(merkle::ProofError::SizeOutOfRange {
                size: new,
                max: self.size(),
            }
            .into());
        }
        let leaves = self.backend.leaves(new)?;
        let proof = merkle::consistency_proof(&leaves, old, new)?;
        let old_len = usize::try_from(old).unwrap_or(usize::MAX).min(leaves.len());
        Ok((
            merkle::root(&leaves[..old_len]),
            merkle::root(&leaves),
            proof,
        ))
    }

    /// Writes an export to `out` (layout in the README): `entries.jsonl`, `leaves.bin`,
    /// `checkpoints/<size>.note` for every signed checkpoint, `checkpoint` (the latest) and
    /// `key.vkey` (the verifier key). Returns the number of entries exported.
    pub fn export(&self, out: &Path) -> Result<u64, AuditError> {
        // A fresh checkpoint first, when a key is there, so that the export ends covered.
        match self.checkpoint() {
            Ok(_) | Err(AuditError::NoCheckpoint) => {}
            Err(e) => return Err(e),
        }
        // What the latest checkpoint covers at least (a follower's log may have grown since).
        let size = self.size();
        std::fs::create_dir_all(out.join("checkpoints")).map_err(io(out))?;
        let dst = out.join("entries.jsonl");
        let mut w = BufWriter::new(File::create(&dst).map_err(io(&dst))?);
        self.backend.lines(0, size, &mut |_, line| {
            w.write_all(line)
                .and_then(|()| w.write_all(b"\n"))
                .map_err(io(&dst))
        })?;
        w.flush().map_err(io(&dst))?;
        let leaves: Vec<u8> = self
            .backend
            .leaves(size)?
            .iter()
            .flat_map(|h| h.iter().copied())
            .collect();
        let lp = out.join("leaves.bin");
        std::fs::write(&lp, leaves).map_err(io(&lp))?;
        let notes = self.backend.notes()?;
        for note in &notes {
            let cp = checkpoint_of(note)?;
            let p = out
                .join("checkpoints")
                .join(format!("{:020}.note", cp.size));
            std::fs::write(&p, note).map_err(io(&p))?;
        }
        if let Some(last) = notes.last() {
            let p = out.join("checkpoint");
            std::fs::write(&p, last).map_err(io(&p))?;
        }
        if let Some(v) = self.verifier_text() {
            let p = out.join("key.vkey");
            std::fs::write(&p, format!("{v}\n")).map_err(io(&p))?;
        }
        Ok(size)
    }
}

struct State {
    entries: File,
    leaves: BufWriter<File>,
    frontier: Frontier,
    broken: Option<String>,
}

#[derive(Default)]
struct SyncState {
    synced: u64,
    syncing: bool,
    failed: Option<String>,
}

/// A log in files of its own.
struct FileLog {
    dir: PathBuf,
    policy: Fsync,
    state: Mutex<State>,
    sync_file: File,
    sync: Mutex<SyncState>,
    synced_cv: Condvar,
    /// `checkpoints.log`, and the last note in it.
    checkpoints: Mutex<(File, Option<String>)>,
}

impl FileLog {
    fn open(
        dir: &Path,
        policy: Fsync,
    ) -> Result<(Arc<FileLog>, Facts, Option<SignedNote>), AuditError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        let entries_path = dir.join("entries.jsonl");
        let leaves_path = dir.join("leaves.bin");
        let cps_path = dir.join("checkpoints.log");

        let mut leaves: Vec<Hash> = Vec::new();
        let mut keystore_version = 0;
        let mut last_use = std::collections::HashMap::new();
        let mut good_len: u64 = 0;
        {
            let f = open_rw(&entries_path, true)?;
            let mut r = BufReader::with_capacity(1 << 20, f);
            let mut line = Vec::with_capacity(1024);
            loop {
                line.clear();
                let n = r.read_until(b'\n', &mut line).map_err(io(&entries_path))?;
                if n == 0 || line.last() != Some(&b'\n') {
                    break; // end, or a torn last line
                }
                let body = &line[..line.len() - 1];
                // The few entries whose facts outlive a restart; found by a cheap byte search
                // before any parsing.
                if memfind(body, b"\"action\":\"keystore.change\"") {
                    if let Ok(e) = serde_json::from_slice::<Entry>(body) {
                        let v = e.details.get("version").and_then(|v| v.as_u64());
                        keystore_version = keystore_version.max(v.unwrap_or(0));
                    }
                } else if memfind(body, b"\"action\":\"credential.use\"")
                    && let Ok(e) = serde_json::from_slice::<Entry>(body)
                {
                    last_use.insert(e.target, e.time);
                }
                leaves.push(merkle::leaf_hash(body));
                good_len += n as u64;
            }
        }
        let entries = open_rw(&entries_path, true)?;
        let on_disk = entries.metadata().map_err(io(&entries_path))?.len();
        if on_disk > good_len {
            tracing::warn!(
                file = %entries_path.display(),
                bytes = on_disk - good_len,
                "dropping a torn last audit entry (its append never completed)"
            );
            entries.set_len(good_len).map_err(io(&entries_path))?;
        }

        // Compare with the last signed checkpoint before anything else is appended or signed.
        let notes = read_checkpoints(&cps_path)?;
        let last = match notes.last() {
            None => None,
            Some(note) => {
                let cp = checkpoint_of(note)?;
                let have = leaves.len() as u64;
                let tampered = |reason: String| AuditError::Tampered {
                    path: dir.display().to_string(),
                    reason,
                };
                if cp.size > have {
                    return Err(tampered(format!(
                        "the last checkpoint covers {} entries but only {have} are present (entries were removed)",
                        cp.size
                    )));
                }
                let size = usize::try_from(cp.size).unwrap_or(usize::MAX);
                if merkle::root(&leaves[..size]) != cp.root {
                    return Err(tampered(format!(
                        "the first {} entries do not hash to the signed root (an entry was changed, inserted, removed or reordered); run `xianjie audit export` and `xianjie audit verify` to find it",
                        cp.size
                    )));
                }
                Some((cp, note.clone()))
            }
        };

        // The leaf cache is derived data: rewrite it whole when it disagrees.
        let cached = std::fs::read(&leaves_path).unwrap_or_default();
        let expected: Vec<u8> = leaves.iter().flat_map(|h| h.iter().copied()).collect();
        let mut leaves_file = open_rw(&leaves_path, false)?;
        if cached != expected {
            leaves_file.set_len(0).map_err(io(&leaves_path))?;
            leaves_file.write_all(&expected).map_err(io(&leaves_path))?;
        }
        use std::io::Seek;
        leaves_file
            .seek(std::io::SeekFrom::End(0))
            .map_err(io(&leaves_path))?;

        let size = leaves.len() as u64;
        let frontier = Frontier::from_leaves(&leaves);
        drop(leaves);
        let sync_file = entries.try_clone().map_err(io(&entries_path))?;
        let log = Arc::new(FileLog {
            dir: dir.to_path_buf(),
            policy,
            state: Mutex::new(State {
                entries,
                leaves: BufWriter::with_capacity(64 * 1024, leaves_file),
                frontier,
                broken: None,
            }),
            sync_file,
            sync: Mutex::new(SyncState {
                synced: size,
                ..SyncState::default()
            }),
            synced_cv: Condvar::new(),
            checkpoints: Mutex::new((
                open_rw(&cps_path, true)?,
                last.as_ref().map(|(_, n)| n.clone()),
            )),
        });
        if let Fsync::Interval(every) = policy {
            let weak = Arc::downgrade(&log);
            std::thread::Builder::new()
                .name("audit-fsync".into())
                .spawn(move || background_sync(weak, every))
                .map_err(io(dir))?;
        }
        Ok((
            log,
            Facts {
                keystore_version,
                last_use,
            },
            last,
        ))
    }
    /// Syncs everything appended so far (entries and the leaf cache).
    fn sync_all(&self) -> Result<(), AuditError> {
        let size = {
            let mut st = lock(&self.state);
            // As on append: the leaf cache is rebuilt at open, so its failure loses no entry.
            if let Err(e) = st.leaves.flush() {
                tracing::warn!(error = %e, "audit leaf cache flush failed; it is rebuilt at next start");
            }
            st.frontier.size()
        };
        self.sync_to(size)
    }

    /// Waits until the first `target` entries are on disk; concurrent callers share one fsync.
    fn sync_to(&self, target: u64) -> Result<(), AuditError> {
        let mut s = lock(&self.sync);
        loop {
            if let Some(why) = &s.failed {
                return Err(AuditError::Broken(why.clone()));
            }
            if s.synced >= target {
                return Ok(());
            }
            if s.syncing {
                s = self
                    .synced_cv
                    .wait(s)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            s.syncing = true;
            drop(s);
            let size = lock(&self.state).frontier.size();
            let result = self.sync_file.sync_data();
            s = lock(&self.sync);
            s.syncing = false;
            match result {
                Ok(()) => s.synced = s.synced.max(size),
                Err(e) => {
                    let why = format!("fsync of {}: {e}", self.dir.display());
                    s.failed = Some(why.clone());
                    lock(&self.state).broken = Some(why);
                }
            }
            self.synced_cv.notify_all();
        }
    }
}

impl Backend for FileLog {
    fn append(&self, prepared: &Prepared, now: DateTime<Utc>) -> Result<u64, AuditError> {
        let mut st = lock(&self.state);
        if let Some(why) = &st.broken {
            return Err(AuditError::Broken(why.clone()));
        }
        let seq = st.frontier.size();
        let mut line = prepared.line(seq, now);
        let leaf = merkle::leaf_hash(&line);
        line.push(b'\n');
        let path = self.dir.join("entries.jsonl");
        if let Err(e) = st.entries.write_all(&line) {
            let why = format!("writing {}: {e}", path.display());
            st.broken = Some(why.clone());
            tracing::error!(%why, "audit log broken; refusing audited operations");
            return Err(AuditError::Broken(why));
        }
        // The leaf cache may lag (it is rebuilt at open); its errors do not lose entries.
        if let Err(e) = st.leaves.write_all(&leaf) {
            tracing::warn!(error = %e, "audit leaf cache write failed; it is rebuilt at next start");
        }
        st.frontier.push(leaf);
        drop(st);
        if self.policy == Fsync::Always {
            self.sync_to(seq + 1)?;
        }
        Ok(seq)
    }

    fn size(&self) -> u64 {
        lock(&self.state).frontier.size()
    }

    fn sync(&self) -> Result<(), AuditError> {
        self.sync_all()
    }

    fn to_sign(&self) -> Result<Option<(u64, Hash)>, AuditError> {
        let st = lock(&self.state);
        Ok(Some((st.frontier.size(), st.frontier.root())))
    }

    fn store_note(&self, _size: u64, note: &str) -> Result<(), AuditError> {
        let record = format!("{}\n{note}", note.len());
        let path = self.dir.join("checkpoints.log");
        let mut cps = lock(&self.checkpoints);
        cps.0
            .write_all(record.as_bytes())
            .and_then(|()| cps.0.sync_data())
            .map_err(io(&path))?;
        cps.1 = Some(note.to_string());
        Ok(())
    }

    fn notes(&self) -> Result<Vec<String>, AuditError> {
        read_checkpoints(&self.dir.join("checkpoints.log"))
    }

    fn last_note(&self) -> Result<Option<String>, AuditError> {
        Ok(lock(&self.checkpoints).1.clone())
    }

    fn lines(&self, start: u64, end: u64, each: &mut EachLine<'_>) -> Result<(), AuditError> {
        let path = self.dir.join("entries.jsonl");
        let f = File::open(&path).map_err(io(&path))?;
        for (i, line) in BufReader::new(f).split(b'\n').enumerate() {
            let i = i as u64;
            if i >= end {
                break;
            }
            let line = line.map_err(io(&path))?;
            if i >= start {
                each(i, &line)?;
            }
        }
        Ok(())
    }

    /// The first `size` leaf hashes (from the cache, flushed first).
    fn leaves(&self, size: u64) -> Result<Vec<Hash>, AuditError> {
        let path = self.dir.join("leaves.bin");
        {
            let mut st = lock(&self.state);
            st.leaves.flush().map_err(io(&path))?;
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let want = usize::try_from(size)
            .unwrap_or(usize::MAX)
            .saturating_mul(32);
        let bytes = bytes.get(..want).ok_or_else(|| AuditError::BadEntry {
            path: path.display().to_string(),
            index: size,
            reason: "the leaf cache is shorter than the log".into(),
        })?;
        Ok(bytes
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect())
    }

    fn label(&self) -> String {
        self.dir.join("entries.jsonl").display().to_string()
    }
}

fn background_sync(log: Weak<FileLog>, every: Duration) {
    loop {
        std::thread::sleep(every);
        // The thread ends with the log (when the last `Arc` is dropped).
        let Some(log) = log.upgrade() else { return };
        let size = log.size();
        let synced = lock(&log.sync).synced;
        if size > synced
            && let Err(e) = log.sync_to(size)
        {
            tracing::error!(error = %e, "audit fsync failed");
        }
    }
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}
