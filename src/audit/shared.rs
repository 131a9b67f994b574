//! The audit log of gateway instances sharing a PostgreSQL store: one append-only tree for all.
//!
//! - An append from any instance commits its entry (canonical bytes and time, without a
//!   sequence number) to the store's queue before it returns: durable, fail-closed as the file
//!   log's appends.
//! - The leader is the sequencer: it takes queued entries in queue order, gives each the next
//!   sequence number, writes its line and leaf hash to the log and removes it from the queue,
//!   in one transaction that also checks the log still ends where the leader thinks (so a
//!   deposed leader still writing can never fork the tree). It signs the checkpoints.
//! - Any instance reads the sequenced log (entries, proofs, export) from the store. The leader
//!   sequences before it reads, so it reads its own appends at once; a follower sees them once
//!   the leader has sequenced them (within [`SEQUENCE_EVERY`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::entry::Prepared;
use super::log::{AuditError, Backend, EachLine};
use super::merkle::{self, Frontier, Hash};
use super::note::Checkpoint;
use crate::store::{Leadership, Store, StoreError};

/// How often the leader sequences queued entries (besides before it reads or signs).
pub const SEQUENCE_EVERY: Duration = Duration::from_millis(100);
/// Entries sequenced per transaction.
const BATCH: usize = 1000;

fn store_err(e: StoreError) -> AuditError {
    AuditError::Store(e.to_string())
}

/// A shared log: the store, this instance's leadership, and (while it leads) the frontier of
/// the sequenced tree.
pub(super) struct SharedLog {
    store: Store,
    leader: Leadership,
    /// The sequencer's frontier; `None` until this instance first sequences, or after another
    /// instance did (then rebuilt from the store).
    frontier: Arc<Mutex<Option<Frontier>>>,
}

impl SharedLog {
    /// The shared log of `store`, checked against its last signed checkpoint; and that
    /// checkpoint.
    pub(super) fn open(
        store: Store,
        leader: Leadership,
    ) -> Result<(Self, Option<(Checkpoint, String)>), AuditError> {
        let log = SharedLog {
            store,
            leader,
            frontier: Arc::new(Mutex::new(None)),
        };
        let last = match log.store.audit_last_checkpoint().map_err(store_err)? {
            None => None,
            Some(note) => {
                let cp = super::log::checkpoint_of(&note)?;
                let tampered = |reason: String| AuditError::Tampered {
                    path: log.label(),
                    reason,
                };
                let have = log.size();
                if cp.size > have {
                    return Err(tampered(format!(
                        "the last checkpoint covers {} entries but only {have} are present (entries were removed)",
                        cp.size
                    )));
                }
                if merkle::root(&log.leaves(cp.size)?) != cp.root {
                    return Err(tampered(format!(
                        "the first {} entries do not hash to the signed root; run `xianjie audit export` and `xianjie audit verify` to find the entry",
                        cp.size
                    )));
                }
                Some((cp, note))
            }
        };
        Ok((log, last))
    }

    /// Sequences everything queued, when this instance leads; returns the tree's size and
    /// root then (`None` for a follower).
    pub(super) fn sequence(&self) -> Result<Option<(u64, Hash)>, AuditError> {
        if !self.leader.is_leader() {
            return Ok(None);
        }
        let mut guard = super::log::lock(&self.frontier);
        loop {
            let frontier = match guard.as_mut() {
                Some(f) => f,
                None => {
                    let size = self.store.audit_size().map_err(store_err)?;
                    guard.insert(Frontier::from_leaves(&self.leaves(size)?))
                }
            };
            let queued = self.store.audit_queued(BATCH).map_err(store_err)?;
            if queued.is_empty() {
                return Ok(Some((frontier.size(), frontier.root())));
            }
            let first = frontier.size();
            let mut values = Vec::with_capacity(queued.len());
            let mut leaves = Vec::with_capacity(queued.len());
            for (i, (id, record)) in queued.iter().enumerate() {
                let (prepared, time) = Prepared::from_queued(record).ok_or_else(|| {
                    AuditError::Store(format!("queued audit entry {id} is unreadable"))
                })?;
                let line = prepared.line(first + i as u64, time);
                let leaf = merkle::leaf_hash(&line);
                let mut value = Vec::with_capacity(32 + line.len());
                value.extend_from_slice(&leaf);
                value.extend_from_slice(&line);
                values.push((*id, value));
                leaves.push(leaf);
            }
            if self
                .store
                .audit_integrate(first, &values)
                .map_err(store_err)?
            {
                for leaf in leaves {
                    frontier.push(leaf);
                }
            } else {
                // Another instance sequenced meanwhile (it led before this one): start again
                // from what the store holds.
                *guard = None;
            }
        }
    }
}

impl Backend for SharedLog {
    fn append(&self, prepared: &Prepared, now: DateTime<Utc>) -> Result<u64, AuditError> {
        self.store
            .audit_enqueue(&prepared.queued(now))
            .map_err(|e| AuditError::Broken(e.to_string()))
    }

    fn size(&self) -> u64 {
        // The leader reads its own appends: it sequences first.
        match self.sequence() {
            Ok(Some((size, _))) => size,
            _ => self.store.audit_size().unwrap_or(0),
        }
    }

    fn sync(&self) -> Result<(), AuditError> {
        // Every append is committed before it returns.
        Ok(())
    }

    fn to_sign(&self) -> Result<Option<(u64, Hash)>, AuditError> {
        self.sequence()
    }

    fn store_note(&self, size: u64, note: &str) -> Result<(), AuditError> {
        self.store
            .audit_put_checkpoint(size, note)
            .map_err(store_err)
    }

    fn notes(&self) -> Result<Vec<String>, AuditError> {
        self.store.audit_checkpoints().map_err(store_err)
    }

    fn last_note(&self) -> Result<Option<String>, AuditError> {
        self.store.audit_last_checkpoint().map_err(store_err)
    }

    fn lines(&self, start: u64, end: u64, each: &mut EachLine<'_>) -> Result<(), AuditError> {
        for (i, value) in (start..).zip(self.store.audit_entries(start, end)) {
            let value = value.map_err(store_err)?;
            let line = value.get(32..).ok_or_else(|| AuditError::BadEntry {
                path: self.label(),
                index: i,
                reason: "shorter than its leaf hash".into(),
            })?;
            each(i, line)?;
        }
        Ok(())
    }

    fn leaves(&self, size: u64) -> Result<Vec<Hash>, AuditError> {
        let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        for (i, value) in (0..).zip(self.store.audit_entries(0, size)) {
            let value = value.map_err(store_err)?;
            let leaf: Hash = value
                .get(..32)
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| AuditError::BadEntry {
                    path: self.label(),
                    index: i,
                    reason: "shorter than its leaf hash".into(),
                })?;
            out.push(leaf);
        }
        if (out.len() as u64) < size {
            return Err(AuditError::BadEntry {
                path: self.label(),
                index: out.len() as u64,
                reason: "the log is shorter than its size".into(),
            });
        }
        Ok(out)
    }

    fn label(&self) -> String {
        "the audit log in the store's database".into()
    }
}
