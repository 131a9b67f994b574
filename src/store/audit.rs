//! The audit log of instances sharing a PostgreSQL store (see `audit/shared.rs`): the trees
//! `audit_queue` (entries appended by any instance, waiting for the leader to sequence them; a
//! row holds a group of entries committed together),
//! `audit_log` (the sequenced entries, each its leaf hash then its canonical line: a row holds
//! up to [`CHUNK_MAX`] entries sequenced together, under the first's number (u64 BE) and
//! [`CHUNK_ROW`]; a row written before chunks holds one, under its number alone) and
//! `audit_checkpoints` (`size (u64 BE)` → signed note). The next sequence number is in `meta`.

use super::kv;
use super::{Store, StoreError, db_err};

pub(super) const AUDIT_NEXT: &str = "audit_next";

/// The first byte of a queue row holding a group of entries. A row holding one entry (as the
/// queue was written before groups) starts with its time in microseconds since 1970, big-endian,
/// whose first byte is never 0xFF for a time after 1970.
const GROUP_ROW: u8 = 0xFF;

/// Entries one queue row may hold; a place in the queue is `row id × GROUP_MAX + index`.
pub const GROUP_MAX: u64 = 1 << 16;

/// A row of the audit queue: its id and the entries it holds, in order.
pub type QueuedRow = (u64, Vec<Vec<u8>>);

/// The last byte of the key of an audit log row holding several entries (the key's first
/// eight bytes are the first entry's number).
const CHUNK_ROW: u8 = 0x01;

/// Most entries in one audit log row. Why rows of many: the sequencer wrote one row per entry,
/// as many rows a second as requests audited (switching the sequencer off entirely sped a case
/// by id on PostgreSQL up by a tenth). A row of 256 entries is about 100 KB; a proof or a tail
/// reads one or two.
const CHUNK_MAX: usize = 256;

/// Appends `entry` to `out` behind its length (u32 BE), as queue groups and log chunks hold them.
fn frame(out: &mut Vec<u8>, entry: &[u8], what: &str) -> Result<(), StoreError> {
    let len = u32::try_from(entry.len()).map_err(|_| StoreError::Corrupt {
        what: what.into(),
        reason: "an entry of 4 GiB or more".into(),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(entry);
    Ok(())
}

/// The entries of a queue row's value, or why it is not one.
fn group_entries(value: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let Some((&GROUP_ROW, rest)) = value.split_first() else {
        return Ok(vec![value.to_vec()]);
    };
    framed(rest)
}

/// The entries framed by [`frame`] one after the other in `rest`, or why they are not.
fn framed(mut rest: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = rest
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_be_bytes(b) as usize)
            .ok_or_else(|| format!("entry {} has a cut length", out.len()))?;
        let entry = rest
            .get(4..4 + len)
            .ok_or_else(|| format!("entry {} is cut short", out.len()))?;
        out.push(entry.to_vec());
        rest = &rest[4 + len..];
    }
    Ok(out)
}

/// The key of the audit log row whose entries begin at `first`.
fn chunk_key(first: u64) -> [u8; 9] {
    let mut k = [CHUNK_ROW; 9];
    k[..8].copy_from_slice(&first.to_be_bytes());
    k
}

/// The log's end (the next sequence number), read in a transaction.
fn audit_next(meta: &kv::TxTree<'_>) -> Result<u64, kv::TxError> {
    match meta.get(AUDIT_NEXT)? {
        Some(v) => serde_json::from_slice(&v).map_err(|e| super::cases::abort("audit sequence", e)),
        None => Ok(0),
    }
}

/// A row of a tree: its key and value.
type Row = (Vec<u8>, Vec<u8>);

/// The audit log rows holding `values` as entries `first..`.
fn chunk_rows(first: u64, values: &[Vec<u8>]) -> Result<Vec<Row>, StoreError> {
    let mut rows = Vec::with_capacity(values.len().div_ceil(CHUNK_MAX));
    for (at, chunk) in (first..).step_by(CHUNK_MAX).zip(values.chunks(CHUNK_MAX)) {
        let mut row = Vec::with_capacity(chunk.iter().map(|v| 4 + v.len()).sum());
        for v in chunk {
            frame(&mut row, v, "audit sequencing")?;
        }
        rows.push((chunk_key(at).to_vec(), row));
    }
    Ok(rows)
}

/// The entries of an audit log row, each with its number, or why it is not one.
fn log_row(key: &[u8], value: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let first = key
        .get(..8)
        .and_then(|k| <[u8; 8]>::try_from(k).ok())
        .map(u64::from_be_bytes)
        .ok_or("a key shorter than 8 bytes")?;
    match key.get(8..) {
        Some([]) => Ok(vec![(first, value.to_vec())]),
        Some([CHUNK_ROW]) => Ok((first..).zip(framed(value)?).collect()),
        _ => Err(format!("a key of {} bytes", key.len())),
    }
}

impl Store {
    /// Queues entries together, as one row (one write and one commit for all); returns their
    /// places in the queue, in order. At most [`GROUP_MAX`]. With `flushed`, the commit is on
    /// disk when this returns; without, it is committed (visible to every instance, kept if the
    /// gateway dies) and reaches the disk at the next [`Store::audit_flush`] or sooner.
    pub fn audit_enqueue(
        &self,
        records: &[Vec<u8>],
        flushed: bool,
    ) -> Result<Vec<u64>, StoreError> {
        if records.len() as u64 > GROUP_MAX {
            return Err(StoreError::Corrupt {
                what: "audit queue write".into(),
                reason: format!(
                    "{} entries in one group (at most {GROUP_MAX})",
                    records.len()
                ),
            });
        }
        let mut row = Vec::with_capacity(1 + records.iter().map(|r| 4 + r.len()).sum::<usize>());
        row.push(GROUP_ROW);
        for r in records {
            frame(&mut row, r, "audit queue write")?;
        }
        let ids = self
            .audit_queue
            .insert_with_new_ids(&self.db, &[row], flushed)
            .map_err(db_err("audit queue write"))?;
        let id = ids.first().copied().ok_or_else(|| StoreError::Corrupt {
            what: "audit queue write".into(),
            reason: "the queue gave no id".into(),
        })?;
        Ok((0..records.len() as u64)
            .map(|i| id * GROUP_MAX + i)
            .collect())
    }

    /// Puts every commit made so far on disk (the queue's unflushed groups with them).
    pub fn audit_flush(&self) -> Result<(), StoreError> {
        self.db.flush_commits().map_err(db_err("audit queue flush"))
    }

    /// The oldest rows of the queue, holding at least `limit` entries between them (or all
    /// there are), in queue order.
    pub fn audit_queued(&self, limit: usize) -> Result<Vec<QueuedRow>, StoreError> {
        let mut rows = Vec::new();
        let mut entries = 0;
        for kv in self.audit_queue.iter() {
            if entries >= limit {
                break;
            }
            let (k, v) = kv.map_err(db_err("audit queue read"))?;
            let id = <[u8; 8]>::try_from(k.as_ref()).map_err(|_| StoreError::Corrupt {
                what: "audit queue key".into(),
                reason: "not 8 bytes".into(),
            })?;
            let id = u64::from_be_bytes(id);
            let group = group_entries(&v).map_err(|reason| StoreError::Corrupt {
                what: format!("audit queue row {id}"),
                reason,
            })?;
            entries += group.len();
            rows.push((id, group));
        }
        Ok(rows)
    }

    /// Sequences queued entries: `values[i]` (the stored value: leaf hash, then the line)
    /// becomes entry `first + i`, and the queue rows `rows` (which held exactly those entries)
    /// leave the queue, in one transaction. Returns false, changing nothing, when the log does
    /// not end at `first` (another instance sequenced meanwhile).
    pub fn audit_integrate(
        &self,
        first: u64,
        rows: &[u64],
        values: &[Vec<u8>],
    ) -> Result<bool, StoreError> {
        kv::transaction(
            "audit sequencing",
            [&self.audit_log, &self.audit_queue, &self.meta],
            |[log, queue, meta]| {
                if audit_next(meta)? != first {
                    return Ok(false);
                }
                for (key, row) in chunk_rows(first, values)? {
                    // Past the log's end (AUDIT_NEXT was read in this transaction): new keys.
                    log.insert_new(key, row)?;
                }
                for id in rows {
                    queue.remove(id.to_be_bytes())?;
                }
                let end = first + values.len() as u64;
                meta.insert(AUDIT_NEXT, super::cases::json("audit sequence", &end)?)?;
                Ok(true)
            },
        )
    }

    /// Appends entries sequenced by the leader as it wrote them, without queueing them first:
    /// `values[i]` (leaf hash, then line) becomes entry `first + i`, if the log ends at `first`;
    /// returns false, changing nothing, when it does not. One statement on PostgreSQL (its
    /// commit `flushed` as for [`Store::audit_enqueue`]), where queueing and sequencing took an
    /// insert, a read, a delete and a second insert of every entry.
    pub fn audit_append(
        &self,
        first: u64,
        values: &[Vec<u8>],
        flushed: bool,
    ) -> Result<bool, StoreError> {
        if first == 0 {
            // The log's end is not stored yet: the transaction reads its absence.
            return self.audit_integrate(first, &[], values);
        }
        let end = first + values.len() as u64;
        let json = |n: u64| {
            serde_json::to_vec(&n).map_err(|e| StoreError::Corrupt {
                what: "audit sequence".into(),
                reason: e.to_string(),
            })
        };
        self.audit_log
            .insert_new_if_swapped(
                &self.meta,
                AUDIT_NEXT.as_bytes(),
                (&json(first)?, &json(end)?),
                chunk_rows(first, values)?,
                flushed,
            )
            .map_err(db_err("audit append"))
    }

    /// Number of sequenced entries.
    pub fn audit_size(&self) -> Result<u64, StoreError> {
        Ok(self.get_meta::<u64>(AUDIT_NEXT)?.unwrap_or(0))
    }

    /// The stored values (leaf hash, then the line) of entries `start..end`, in order, read a
    /// page of rows at a time.
    pub fn audit_entries(
        &self,
        start: u64,
        end: u64,
    ) -> impl Iterator<Item = Result<Vec<u8>, StoreError>> + use<> {
        // From the row holding `start`: the last that begins at or before it.
        let (failed, from) = match self.audit_log.last_key_at_or_before(&chunk_key(start)) {
            Ok(k) => (
                None,
                k.map_or_else(|| start.to_be_bytes().to_vec(), |k| k.to_vec()),
            ),
            Err(e) => (Some(Err(db_err("audit log read")(e))), Vec::new()),
        };
        let rows = if failed.is_some() { 0 } else { usize::MAX };
        // Rows are whole: a key before `end`'s eight bytes is a row that begins before `end`.
        let rows = (self.audit_log.range(from..end.to_be_bytes().to_vec())).take(rows);
        failed.into_iter().chain(
            rows.flat_map(|row| match row {
                Ok((k, v)) => match log_row(&k, &v) {
                    Ok(entries) => entries.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(reason) => vec![Err(StoreError::Corrupt {
                        what: format!("audit log row {}", hex::encode(&k)),
                        reason,
                    })],
                },
                Err(e) => vec![Err(db_err("audit log read")(e))],
            })
            .filter(move |e| !matches!(e, Ok((seq, _)) if *seq < start || *seq >= end))
            .map(|e| e.map(|(_, v)| v)),
        )
    }

    /// Stores a signed checkpoint of the first `size` entries, in a transaction that checks the
    /// log holds them (its commit is on disk when this returns, and with it every commit before,
    /// the entries' included). Why check: the leader's own entries commit without waiting for
    /// the disk (`audit.fsync`), and a database server that failed before they reached it has
    /// lost them; a checkpoint of them would make the log fail its check at every start.
    pub fn audit_put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        kv::transaction(
            "audit checkpoint write",
            [&self.meta, &self.audit_checkpoints],
            |[meta, checkpoints]| {
                let held = audit_next(meta)?;
                if held < size {
                    return Err(kv::TxError::Abort(StoreError::Corrupt {
                        what: "audit checkpoint".into(),
                        reason: format!(
                            "it signs {size} entries but the log holds {held} (entries lost before \
                             they reached the disk; the log is read again)"
                        ),
                    }));
                }
                checkpoints.insert(size.to_be_bytes(), note.as_bytes())
            },
        )
    }

    /// Every signed checkpoint, oldest first.
    pub fn audit_checkpoints(&self) -> Result<Vec<String>, StoreError> {
        self.audit_checkpoints
            .iter()
            .values()
            .map(|v| {
                let v = v.map_err(db_err("audit checkpoint read"))?;
                String::from_utf8(v.to_vec()).map_err(|e| StoreError::Corrupt {
                    what: "audit checkpoint".into(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// The latest signed checkpoint.
    pub fn audit_last_checkpoint(&self) -> Result<Option<String>, StoreError> {
        match self.audit_checkpoints.iter().next_back() {
            None => Ok(None),
            Some(kv) => {
                let (_, v) = kv.map_err(db_err("audit checkpoint read"))?;
                Ok(Some(String::from_utf8_lossy(&v).into_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log's rows hold runs of entries; rows of one entry (as written before runs) read in
    /// the same sequence; any range reads exactly its entries, whichever rows hold them.
    fn log_rows_hold_runs_and_the_single_entries_of_before(store: &Store) {
        let value = |i: u64| format!("entry {i}").into_bytes();
        // Entries 0..3 as the log was written before runs, one row each.
        for i in 0..3u64 {
            store.audit_log.insert(i.to_be_bytes(), value(i)).unwrap();
        }
        store.set_meta(AUDIT_NEXT, &3u64).unwrap();
        // Then two sequencing runs: 3..603 (rows of 256, 256 and 88) and 603..610.
        for (first, end) in [(3u64, 603u64), (603, 610)] {
            let values: Vec<Vec<u8>> = (first..end).map(value).collect();
            assert!(store.audit_integrate(first, &[], &values).unwrap());
        }
        assert_eq!(store.audit_size().unwrap(), 610);
        assert_eq!(store.audit_log.iter().count(), 3 + 3 + 1, "rows of runs");
        for (start, end) in [
            (0, 610),
            (0, 2),
            (2, 5),
            (258, 259),
            (100, 600),
            (600, 610),
            (609, 610),
            (5, 5),
        ] {
            let read: Vec<Vec<u8>> = store
                .audit_entries(start, end)
                .collect::<Result<_, _>>()
                .unwrap();
            let expected: Vec<Vec<u8>> = (start..end).map(value).collect();
            assert_eq!(read, expected, "entries {start}..{end}");
        }
        // A cut row is refused, by its key.
        store
            .audit_log
            .insert(chunk_key(610), vec![0, 0, 0, 9, b'x'])
            .unwrap();
        let err = store
            .audit_entries(610, 611)
            .find_map(Result::err)
            .unwrap()
            .to_string();
        assert!(err.contains("audit log row 000000000000026201"), "{err}");
        assert!(err.contains("cut short"), "{err}");
    }

    #[test]
    fn log_rows_on_sled() {
        let dir = tempfile::tempdir().unwrap();
        log_rows_hold_runs_and_the_single_entries_of_before(&Store::open(dir.path()).unwrap());
    }

    #[test]
    fn log_rows_on_postgres() {
        if let Some(store) = crate::store::postgres::on_server::fresh_store("audit_log_rows") {
            log_rows_hold_runs_and_the_single_entries_of_before(&store);
        }
    }

    /// A queue row holds a group; a row written before groups (one entry, its time first) still
    /// reads as one entry; reads take whole rows; a cut row is refused by its id.
    #[test]
    fn queue_rows_hold_groups_and_the_single_entries_of_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let places = store
            .audit_enqueue(&[b"first".to_vec(), b"second".to_vec()], true)
            .unwrap();
        let old = [
            &1_700_000_000_000_000i64.to_be_bytes()[..],
            b"\0\0\0\x02{}x",
        ]
        .concat();
        store
            .audit_queue
            .insert((u64::MAX - 1).to_be_bytes(), old.clone())
            .unwrap();
        let rows = store.audit_queued(100).unwrap();
        assert_eq!(rows.len(), 2);
        let (id, group) = &rows[0];
        assert_eq!(group, &vec![b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(places, vec![id * GROUP_MAX, id * GROUP_MAX + 1]);
        assert_eq!(rows[1], (u64::MAX - 1, vec![old]));
        // At least `limit` entries, in whole rows.
        assert_eq!(store.audit_queued(1).unwrap().len(), 1);
        assert_eq!(store.audit_queued(2).unwrap().len(), 1);
        assert_eq!(store.audit_queued(3).unwrap().len(), 2);

        assert!(
            store
                .audit_integrate(0, &[*id], &[b"v0".to_vec(), b"v1".to_vec()])
                .unwrap()
        );
        assert_eq!(store.audit_size().unwrap(), 2);
        assert_eq!(
            store.audit_queued(100).unwrap().len(),
            1,
            "the group's row is gone"
        );
        assert!(
            !store.audit_integrate(0, &[u64::MAX - 1], &[]).unwrap(),
            "not at the log's end"
        );

        store
            .audit_queue
            .insert(u64::MAX.to_be_bytes(), vec![GROUP_ROW, 0, 0, 0, 9, b'x'])
            .unwrap();
        let err = store.audit_queued(100).unwrap_err().to_string();
        assert!(
            err.contains(&format!("audit queue row {}", u64::MAX)),
            "{err}"
        );
        assert!(err.contains("cut short"), "{err}");
    }
}
