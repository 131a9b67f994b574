//! The audit log of gateway instances sharing a PostgreSQL store: one append-only tree for all.
//!
//! - An append from any instance commits its entry (canonical bytes and time, without a
//!   sequence number) to the store's queue before it returns: durable, fail-closed as the file
//!   log's appends. Concurrent appends share one write and one commit (group commit).
//! - The leader is the sequencer: it takes queued entries in queue order, gives each the next
//!   sequence number, writes its line and leaf hash to the log and removes it from the queue,
//!   in one transaction that also checks the log still ends where the leader thinks (so a
//!   deposed leader still writing can never fork the tree). It signs the checkpoints.
//! - Any instance reads the sequenced log (entries, proofs, export) from the store. The leader
//!   sequences before it reads, so it reads its own appends at once; a follower sees them once
//!   the leader has sequenced them (within [`SEQUENCE_EVERY`]).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
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
    /// Appends waiting to be queued together.
    group: Group,
}

/// Group commit of appends: while one appender writes to the store's queue, the others gather,
/// and the next of them writes them all in one insert and one commit. A request's audit entry
/// then costs a share of one commit instead of a commit of its own (as the file log's appenders
/// share one fsync).
#[derive(Default)]
struct Group {
    state: Mutex<GroupState>,
    written: Condvar,
}

#[derive(Default)]
struct GroupState {
    /// Records waiting for the next write; `waiting[i]` holds ticket `first_ticket + i`.
    waiting: Vec<Vec<u8>>,
    first_ticket: u64,
    /// Whether an appender is writing a group now.
    writing: bool,
    /// Outcomes of written tickets not yet collected by their appenders: the queue place, or
    /// why the write failed.
    outcomes: HashMap<u64, Result<u64, String>>,
}

impl Group {
    /// Queues `record` with whatever else is waiting; returns its place once it is committed.
    fn append(&self, store: &Store, record: Vec<u8>) -> Result<u64, AuditError> {
        let mut s = super::log::lock(&self.state);
        let ticket = s.first_ticket + s.waiting.len() as u64;
        s.waiting.push(record);
        loop {
            if let Some(outcome) = s.outcomes.remove(&ticket) {
                return outcome.map_err(AuditError::Broken);
            }
            if s.writing {
                s = self
                    .written
                    .wait(s)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            // This appender writes the group (its own record is in it or already written).
            s.writing = true;
            let records = std::mem::take(&mut s.waiting);
            let first = s.first_ticket;
            s.first_ticket += records.len() as u64;
            drop(s);
            // Every ticket must get an outcome, or its appender would wait for ever: a panic in
            // the write is an outcome too.
            let write = std::panic::AssertUnwindSafe(|| store.audit_enqueue(&records));
            let result = match std::panic::catch_unwind(write) {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("writing to the audit queue failed (panic)".to_string()),
            };
            let result = result.and_then(|places| match places.len() == records.len() {
                true => Ok(places),
                false => Err(format!(
                    "the audit queue gave {} places for {} entries",
                    places.len(),
                    records.len()
                )),
            });
            s = super::log::lock(&self.state);
            s.writing = false;
            let tickets = first..first + records.len() as u64;
            match result {
                Ok(places) => s.outcomes.extend(tickets.zip(places.into_iter().map(Ok))),
                Err(why) => s.outcomes.extend(tickets.map(|t| (t, Err(why.clone())))),
            }
            self.written.notify_all();
        }
    }
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
            group: Group::default(),
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
        self.group.append(&self.store, prepared.queued(now))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Many appenders at once: each gets its own place, and the queue holds exactly what each
    /// appended there, whichever appender wrote the group its record was in.
    fn appenders_share_writes_and_lose_nothing(store: &Store) {
        let group = Group::default();
        let placed: BTreeMap<u64, Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|t| {
                    let group = &group;
                    s.spawn(move || {
                        (0..50)
                            .map(|i| {
                                let record = format!("thread {t} entry {i}").into_bytes();
                                (group.append(store, record.clone()).unwrap(), record)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(placed.len(), 800, "every append has a place of its own");
        let queued: BTreeMap<u64, Vec<u8>> =
            store.audit_queued(10_000).unwrap().into_iter().collect();
        assert_eq!(queued, placed);
        assert!(super::super::log::lock(&group.state).outcomes.is_empty());
    }

    #[test]
    fn concurrent_appends_on_sled() {
        let dir = tempfile::tempdir().unwrap();
        appenders_share_writes_and_lose_nothing(&Store::open(dir.path()).unwrap());
    }

    #[test]
    fn concurrent_appends_on_postgres() {
        if let Some(store) = crate::store::postgres::on_server::fresh_store("audit_group") {
            appenders_share_writes_and_lose_nothing(&store);
        }
    }
}
