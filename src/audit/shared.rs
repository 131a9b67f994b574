//! The audit log of gateway instances sharing a PostgreSQL store: one append-only tree for all.
//!
//! - An append from any instance commits its entry (canonical bytes and time, without a
//!   sequence number) to the store's queue before it returns: durable, fail-closed as the file
//!   log's appends. Concurrent appends share one queue row, one write and one commit (group
//!   commit), and a request's task waits for it without holding a thread
//!   ([`super::log::AuditLog::append_later`]).
//! - The leader is the sequencer: it takes queued entries in queue order, gives each the next
//!   sequence number, writes its line and leaf hash to the log and removes it from the queue,
//!   in one transaction that also checks the log still ends where the leader thinks (so a
//!   deposed leader still writing can never fork the tree). It signs the checkpoints.
//! - The leader's own appends skip the queue: its group writer sequences them as it writes
//!   them, with the same check, in one statement ([`Direct`]); if the check fails they are
//!   queued as a follower's are.
//! - Any instance reads the sequenced log (entries, proofs, export) from the store. The leader
//!   sequences before it reads, so it reads its own appends at once; a follower sees them once
//!   the leader has sequenced them (within [`SEQUENCE_EVERY`]).

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::entry::Prepared;
use super::log::{AuditError, Backend, EachLine, Fsync, Pending, Waiting};
use super::merkle::{self, Frontier, Hash};
use super::note::Checkpoint;
use crate::store::{AUDIT_GROUP_MAX, Leadership, Store, StoreError};

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
    /// instance did (then rebuilt from the store). Shared with the group writer, which appends
    /// the leader's own entries to the log directly.
    frontier: Arc<Mutex<Option<Frontier>>>,
    /// Appends waiting to be queued together.
    group: Group,
}

/// Group commit of appends: one writer thread takes every entry waiting, writes them as one
/// queue row in one insert and one commit, and tells each appender its place; while it writes,
/// the next group gathers. (A second writer, committing while the first waits, measured slower:
/// more and smaller commits on the same cores.) A request's audit entry then costs a share of one commit instead of a commit of its
/// own (as the file log's appenders share one fsync). Appenders wait either as threads
/// ([`Group::append`]) or as async tasks ([`Group::append_later`]), which hold no thread while
/// the database commits.
///
/// The writer stops when the group is dropped: it finishes the group it took (every entry it
/// took gets its outcome), and entries never taken are answered "stopped" by their channels.
struct Group {
    queue: Option<Sender<(Vec<u8>, Reply)>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// An entry's place in the queue, or why it could not be written.
type Outcome = Result<u64, String>;

/// Where an appender waits for its outcome.
enum Reply {
    /// A thread blocked in [`Group::append`].
    Thread(std::sync::mpsc::SyncSender<Outcome>),
    /// A task awaiting a [`Pending`].
    Task(tokio::sync::oneshot::Sender<Outcome>),
}

impl Reply {
    fn send(self, outcome: Outcome) {
        // An appender that gave up waiting (its request was dropped) needs no answer.
        match self {
            Reply::Thread(tx) => drop(tx.send(outcome)),
            Reply::Task(tx) => drop(tx.send(outcome)),
        }
    }
}

/// Most entries written in one statement (bounds its size; entries are bounded by the log).
const MAX_GROUP: usize = 1024;
const _: () = assert!(MAX_GROUP as u64 <= AUDIT_GROUP_MAX);

fn stopped() -> AuditError {
    AuditError::Broken("the audit writer has stopped".into())
}

impl Group {
    /// Starts the writer thread of `store`'s queue (and, while `direct` leads, of its log).
    fn start(store: Store, direct: Option<Direct>, policy: Fsync) -> Result<Group, AuditError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("xianjie-audit".into())
            .spawn(move || write_groups(&store, direct.as_ref(), &rx, policy))
            .map_err(|e| AuditError::Broken(format!("starting the audit writer: {e}")))?;
        Ok(Group {
            queue: Some(tx),
            writer: Some(writer),
        })
    }

    fn submit(&self, record: Vec<u8>, reply: Reply) -> Result<(), AuditError> {
        match &self.queue {
            Some(queue) => queue.send((record, reply)).map_err(|_| stopped()),
            None => Err(stopped()),
        }
    }

    /// Queues `record` with whatever else is waiting; returns its place once it is committed.
    fn append(&self, record: Vec<u8>) -> Result<u64, AuditError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit(record, Reply::Thread(tx))?;
        match crate::blocking::wait(|| rx.recv()) {
            Ok(outcome) => outcome.map_err(AuditError::Broken),
            Err(_) => Err(stopped()),
        }
    }

    /// Queues `record` with whatever else is waiting and returns at once.
    fn append_later(&self, record: Vec<u8>) -> Result<Pending, AuditError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(record, Reply::Task(tx))?;
        Ok(Pending(Waiting::Writer(rx)))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // Closing the queue is the writer's shutdown signal.
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The leader's direct way into the log: while this instance leads and its frontier is known,
/// a group of its own appends is sequenced as it is written (one statement that appends it to
/// the log where the frontier ends, or writes nothing when the log has moved on), instead of
/// being queued and then read, removed and written again by the sequencer. Followers' entries
/// still come through the queue; the tree takes both in the one order the leader writes them.
#[derive(Clone)]
struct Direct {
    leader: Leadership,
    frontier: Arc<Mutex<Option<Frontier>>>,
}

impl Direct {
    /// Appends `records` to the log; their sequence numbers, or `None` when they must be queued
    /// instead (this instance does not lead, its frontier is not known yet, or another instance
    /// sequenced meanwhile: then the frontier is rebuilt by the next sequencing).
    fn append(
        &self,
        store: &Store,
        records: &[Vec<u8>],
        flushed: bool,
    ) -> Result<Option<Vec<u64>>, AuditError> {
        if !self.leader.is_leader() {
            return Ok(None);
        }
        let mut guard = super::log::lock(&self.frontier);
        let Some(frontier) = guard.as_mut() else {
            return Ok(None);
        };
        let first = frontier.size();
        let (values, leaves) = sequenced(first, records)
            .map_err(|i| AuditError::Broken(format!("audit entry {i} of a group is unreadable")))?;
        match store.audit_append(first, &values, flushed) {
            Ok(true) => {
                for leaf in leaves {
                    frontier.push(leaf);
                }
                Ok(Some((first..frontier.size()).collect()))
            }
            Ok(false) => {
                *guard = None;
                Ok(None)
            }
            Err(e) => {
                // Whether it committed is not known: the log's end is read again next time.
                *guard = None;
                Err(store_err(e))
            }
        }
    }
}

/// `records` (as queued) as entries `first..` of the log: each stored value (leaf hash, then
/// line) and leaf hash; or the index of a record that is not one.
fn sequenced<'a>(
    first: u64,
    records: impl IntoIterator<Item = &'a Vec<u8>>,
) -> Result<(Vec<Vec<u8>>, Vec<Hash>), usize> {
    let (mut values, mut leaves) = (Vec::new(), Vec::new());
    for (i, record) in records.into_iter().enumerate() {
        let (prepared, time) = Prepared::from_queued(record).ok_or(i)?;
        let line = prepared.line(first + i as u64, time);
        let leaf = merkle::leaf_hash(&line);
        let mut value = Vec::with_capacity(32 + line.len());
        value.extend_from_slice(&leaf);
        value.extend_from_slice(&line);
        values.push(value);
        leaves.push(leaf);
    }
    Ok((values, leaves))
}

/// The writer thread: each group is everything waiting (up to [`MAX_GROUP`]), written in one
/// statement (to the log directly while this instance leads, see [`Direct`]; else to the
/// queue); every entry taken gets an outcome, a panic in the write included.
///
/// `policy` is the file log's (`audit.fsync`), with the same meaning: `Always`, an entry's
/// commit is on disk before its appender goes on; `Interval(d)` (the default, 5 ms), it is
/// committed before (the server holds it, every instance sees it, the gateway may die) and on
/// disk within `d`: the first group written after a flush starts the interval, and when it has
/// passed this thread flushes every commit made since.
fn write_groups(
    store: &Store,
    direct: Option<&Direct>,
    queue: &Receiver<(Vec<u8>, Reply)>,
    policy: Fsync,
) {
    let interval = match policy {
        Fsync::Always => None,
        Fsync::Interval(d) => Some(d),
    };
    // When the oldest commit not yet flushed was made.
    let mut unflushed: Option<Instant> = None;
    let flush = |unflushed: &mut Option<Instant>| {
        // The entries are committed; if this flush fails, the server's own WAL writer flushes
        // them shortly.
        // A panic is caught as the write's is: the thread must outlive it.
        if unflushed.take().is_some() {
            let flushed = std::panic::AssertUnwindSafe(|| store.audit_flush());
            match std::panic::catch_unwind(flushed) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "audit queue flush failed"),
                Err(_) => tracing::error!("audit queue flush failed (panic)"),
            }
        }
    };
    loop {
        let next = match (unflushed, interval) {
            (Some(since), Some(d)) => {
                match queue.recv_timeout((since + d).saturating_duration_since(Instant::now())) {
                    Ok(next) => Some(next),
                    Err(RecvTimeoutError::Timeout) => {
                        flush(&mut unflushed);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => None,
                }
            }
            _ => queue.recv().ok(),
        };
        let Some((record, reply)) = next else {
            flush(&mut unflushed);
            return;
        };
        let (mut records, mut replies) = (vec![record], vec![reply]);
        while records.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok((record, reply)) => {
                    records.push(record);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        let flushed = interval.is_none();
        let write = std::panic::AssertUnwindSafe(|| {
            if let Some(direct) = direct
                && let Some(places) =
                    (direct.append(store, &records, flushed)).map_err(|e| e.to_string())?
            {
                return Ok(places);
            }
            store
                .audit_enqueue(&records, flushed)
                .map_err(|e| e.to_string())
        });
        let result = match std::panic::catch_unwind(write) {
            Ok(r) => r,
            Err(_) => Err("writing to the audit queue failed (panic)".to_string()),
        };
        match result {
            Ok(places) if places.len() == records.len() => {
                for (reply, place) in replies.into_iter().zip(places) {
                    reply.send(Ok(place));
                }
            }
            Ok(places) => {
                let why = format!(
                    "the audit queue gave {} places for {} entries",
                    places.len(),
                    records.len()
                );
                replies.into_iter().for_each(|r| r.send(Err(why.clone())));
            }
            Err(why) => replies.into_iter().for_each(|r| r.send(Err(why.clone()))),
        }
        if let Some(d) = interval {
            let since = *unflushed.get_or_insert_with(Instant::now);
            // Under steady load the queue is never idle for a timeout: flush when due here.
            if since.elapsed() >= d {
                flush(&mut unflushed);
            }
        }
    }
}

impl SharedLog {
    /// The shared log of `store`, checked against its last signed checkpoint; and that
    /// checkpoint.
    pub(super) fn open(
        store: Store,
        leader: Leadership,
        policy: Fsync,
    ) -> Result<(Self, Option<(Checkpoint, String)>), AuditError> {
        let frontier = Arc::new(Mutex::new(None));
        let direct = Direct {
            leader: leader.clone(),
            frontier: Arc::clone(&frontier),
        };
        let log = SharedLog {
            leader,
            frontier,
            group: Group::start(store.clone(), Some(direct), policy)?,
            store,
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
            let rows: Vec<u64> = queued.iter().map(|(id, _)| *id).collect();
            let (values, leaves) =
                sequenced(first, queued.iter().flat_map(|(_, r)| r)).map_err(|i| {
                    // The batch's i-th entry, named by its place in the queue.
                    let place = (queued.iter())
                        .flat_map(|(id, r)| {
                            (0..r.len() as u64).map(move |j| id * AUDIT_GROUP_MAX + j)
                        })
                        .nth(i)
                        .unwrap_or(0);
                    AuditError::Store(format!("queued audit entry {place} is unreadable"))
                })?;
            if self
                .store
                .audit_integrate(first, &rows, &values)
                .map_err(store_err)?
            {
                for leaf in leaves {
                    frontier.push(leaf);
                }
                // A short batch was all the queue held when it was read: everything appended
                // before this call is sequenced. Chasing what arrives meanwhile would sequence
                // without end under load, in ever smaller transactions; the next call takes it.
                if values.len() < BATCH {
                    return Ok(Some((frontier.size(), frontier.root())));
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
        self.group.append(prepared.queued(now))
    }

    fn append_later(&self, prepared: &Prepared, now: DateTime<Utc>) -> Result<Pending, AuditError> {
        self.group.append_later(prepared.queued(now))
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
        self.store.audit_put_checkpoint(size, note).map_err(|e| {
            // The frontier may hold entries the store lost: rebuild it from the store.
            *super::log::lock(&self.frontier) = None;
            store_err(e)
        })
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

    /// Many appenders at once, threads and async tasks: each gets its own place, and the queue
    /// holds exactly what each appended there, whichever group its record was written in.
    fn appenders_share_writes_and_lose_nothing(store: &Store) {
        let group = Group::start(store.clone(), None, Fsync::Always).unwrap();
        let mut placed: BTreeMap<u64, Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|t| {
                    let group = &group;
                    s.spawn(move || {
                        (0..50)
                            .map(|i| {
                                let record = format!("thread {t} entry {i}").into_bytes();
                                (group.append(record.clone()).unwrap(), record)
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
        // Tasks queue all their entries before any is awaited, so groups hold many.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let pending: Vec<_> = (0..200)
            .map(|i| {
                let record = format!("task entry {i}").into_bytes();
                (group.append_later(record.clone()).unwrap(), record)
            })
            .collect();
        for (p, record) in pending {
            let place = runtime.block_on(p.durable()).unwrap();
            assert!(
                placed.insert(place, record).is_none(),
                "a place given twice"
            );
        }
        assert_eq!(placed.len(), 1000, "every append has a place of its own");
        let rows = store.audit_queued(10_000).unwrap();
        assert!(rows.len() < 1000, "appends share rows: {} rows", rows.len());
        let queued: BTreeMap<u64, Vec<u8>> = rows
            .into_iter()
            .flat_map(|(id, records)| {
                (0..)
                    .zip(records)
                    .map(move |(i, r)| (id * AUDIT_GROUP_MAX + i, r))
            })
            .collect();
        assert_eq!(queued, placed);
        drop(group);
    }

    /// A dropped group stops its writer; appends then fail instead of waiting for ever.
    #[test]
    fn appends_after_the_writer_stopped_fail() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut group = Group::start(store.clone(), None, Fsync::Always).unwrap();
        drop(group.queue.take());
        group.writer.take().unwrap().join().unwrap();
        assert!(matches!(
            group.append(b"x".to_vec()),
            Err(AuditError::Broken(_))
        ));
        assert!(store.audit_queued(10).unwrap().is_empty());
    }

    /// `Always`: an append returns once its commit is on disk. `Interval`: at once, committed
    /// (another connection reads it), and on disk within the interval. (The server's own WAL
    /// writer may flush first; what is checked is the bound, whoever meets it.)
    #[test]
    fn queued_entries_reach_the_disk_as_the_policy_says() {
        use crate::store::postgres::on_server::{fresh_store, wal_positions};
        let Some(store) = fresh_store("audit_flush") else {
            return;
        };
        let group = Group::start(store.clone(), None, Fsync::Always).unwrap();
        let (before, _) = wal_positions(&store);
        group.append(b"always".to_vec()).unwrap();
        assert!(wal_positions(&store).1 > before);
        drop(group);

        let interval = Duration::from_millis(10);
        let group = Group::start(store.clone(), None, Fsync::Interval(interval)).unwrap();
        let place = group.append(b"interval".to_vec()).unwrap();
        let (written, _) = wal_positions(&store);
        let queued = store.audit_queued(10).unwrap();
        let last = queued.last().unwrap();
        assert_eq!(last.0 * AUDIT_GROUP_MAX, place);
        assert_eq!(last.1, vec![b"interval".to_vec()]);
        let start = Instant::now();
        while wal_positions(&store).1 < written {
            // Well past the interval, and short of the 200 ms of the server's WAL writer.
            assert!(
                start.elapsed() < interval * 15,
                "not on disk after {:?}",
                start.elapsed()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(group);

        // A writer that stops flushes what it committed: nothing waits on the server's timer.
        let group = Group::start(
            store.clone(),
            None,
            Fsync::Interval(Duration::from_secs(3600)),
        )
        .unwrap();
        group.append(b"last".to_vec()).unwrap();
        let (written, _) = wal_positions(&store);
        drop(group);
        assert!(wal_positions(&store).1 >= written);
    }

    /// The leader's own appends go straight into the log, in one order with the followers'
    /// queued ones; a leader whose frontier went stale (another instance sequenced meanwhile)
    /// writes nothing there and queues instead, so the tree never forks and nothing is lost.
    fn the_leader_appends_directly_and_never_forks(store: &Store) {
        use super::super::entry::{Actor, Event};
        let open = |leader: Leadership| {
            SharedLog::open(store.clone(), leader, Fsync::Always)
                .unwrap()
                .0
        };
        let record = |what: &str| {
            Event::new(Actor::system("test"), what, "x")
                .prepare()
                .unwrap()
        };
        let now = Utc::now();
        let (a, b) = (
            open(Leadership::alone("a")),
            open(Leadership::follower("b")),
        );
        // Before its first sequencing the leader does not know the log's end: it queues.
        let place = a.append(&record("a.0"), now).unwrap();
        let queued = store.audit_queued(10).unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(place, queued[0].0 * AUDIT_GROUP_MAX);
        assert_eq!(a.sequence().unwrap().map(|(n, _)| n), Some(1));
        // Now it writes the log directly: the numbers are the entries' own, nothing is queued.
        let places: Vec<u64> = (1..4)
            .map(|i| a.append(&record(&format!("a.{i}")), now).unwrap())
            .collect();
        assert_eq!(places, vec![1, 2, 3]);
        assert!(store.audit_queued(10).unwrap().is_empty());
        assert_eq!(store.audit_size().unwrap(), 4);
        // A follower's entry is queued; another instance, leading meanwhile, sequences it.
        b.append(&record("b.0"), now).unwrap();
        assert_eq!(store.audit_queued(10).unwrap().len(), 1);
        let c = open(Leadership::alone("c"));
        assert_eq!(c.sequence().unwrap().map(|(n, _)| n), Some(5));
        // `a`'s frontier ends at 4: its next entry is refused by the log and queued.
        a.append(&record("a.4"), now).unwrap();
        assert_eq!(store.audit_size().unwrap(), 5);
        assert_eq!(store.audit_queued(10).unwrap().len(), 1);
        let (size, root) = a.sequence().unwrap().unwrap();
        assert_eq!(size, 6);
        // Once rebuilt, `a` writes directly again.
        assert_eq!(a.append(&record("a.5"), now).unwrap(), 6);
        let mut lines = Vec::new();
        a.lines(0, 7, &mut |i, line| {
            lines.push((i, String::from_utf8(line.to_vec()).unwrap()));
            Ok(())
        })
        .unwrap();
        let actions: Vec<&str> = (lines.iter())
            .map(|(i, l)| {
                assert!(l.contains(&format!("\"seq\":{i},")), "entry {i}: {l}");
                l.split("\"action\":\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(actions, ["a.0", "a.1", "a.2", "a.3", "b.0", "a.4", "a.5"]);
        // One tree: the leaves as stored hash to the root the sequencer had at 6.
        assert_eq!(merkle::root(&a.leaves(6).unwrap()), root);
        assert_eq!(
            merkle::root(&c.leaves(7).unwrap()),
            a.to_sign().unwrap().unwrap().1
        );
        // The last entry lost before it reached the disk (a database server that failed): no
        // checkpoint signs it, and the leader reads the log again.
        store.set_meta("audit_next", &6u64).unwrap();
        let (size, root) = a.to_sign().unwrap().unwrap();
        assert_eq!(size, 7);
        assert!(a.store_note(size, "note").is_err());
        assert!(store.audit_checkpoints().unwrap().is_empty());
        let six = merkle::root(&a.leaves(6).unwrap());
        assert_eq!(a.sequence().unwrap().unwrap(), (6, six));
        a.store_note(6, "note").unwrap();
        assert_ne!(root, six);
    }

    /// A queued entry that is not one stops sequencing with an error naming its place.
    #[test]
    fn an_unreadable_queued_entry_is_named_by_its_place() {
        use super::super::entry::{Actor, Event};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let good = (Event::new(Actor::system("test"), "ok", "x").prepare())
            .unwrap()
            .queued(Utc::now());
        store
            .audit_enqueue(std::slice::from_ref(&good), true)
            .unwrap();
        let places = store.audit_enqueue(&[good, b"bad".to_vec()], true).unwrap();
        let log = SharedLog::open(store, Leadership::alone("a"), Fsync::Always)
            .unwrap()
            .0;
        let err = log.sequence().unwrap_err().to_string();
        let named = format!("queued audit entry {} is unreadable", places[1]);
        assert!(err.contains(&named), "{err}");
    }

    #[test]
    fn the_leader_appends_directly_on_sled() {
        let dir = tempfile::tempdir().unwrap();
        the_leader_appends_directly_and_never_forks(&Store::open(dir.path()).unwrap());
    }

    #[test]
    fn the_leader_appends_directly_on_postgres() {
        if let Some(store) = crate::store::postgres::on_server::fresh_store("audit_direct") {
            the_leader_appends_directly_and_never_forks(&store);
        }
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
