//! The audit log of instances sharing a PostgreSQL store (see `audit/shared.rs`): the trees
//! `audit_queue` (entries appended by any instance, waiting for the leader to sequence them; a
//! row holds a group of entries committed together),
//! `audit_log` (the sequenced entries: `seq (u64 BE)` → leaf hash then the canonical line) and
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

/// The entries of a queue row's value, or why it is not one.
fn group_entries(value: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let Some((&GROUP_ROW, mut rest)) = value.split_first() else {
        return Ok(vec![value.to_vec()]);
    };
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

impl Store {
    /// Queues entries together, as one row (durable when this returns: one write and one
    /// commit for all); returns their places in the queue, in order. At most [`GROUP_MAX`].
    pub fn audit_enqueue(&self, records: &[Vec<u8>]) -> Result<Vec<u64>, StoreError> {
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
            let len = u32::try_from(r.len()).map_err(|_| StoreError::Corrupt {
                what: "audit queue write".into(),
                reason: "an entry of 4 GiB or more".into(),
            })?;
            row.extend_from_slice(&len.to_be_bytes());
            row.extend_from_slice(r);
        }
        let ids = self
            .audit_queue
            .insert_with_new_ids(&self.db, &[row])
            .map_err(db_err("audit queue write"))?;
        let id = ids.first().copied().ok_or_else(|| StoreError::Corrupt {
            what: "audit queue write".into(),
            reason: "the queue gave no id".into(),
        })?;
        Ok((0..records.len() as u64)
            .map(|i| id * GROUP_MAX + i)
            .collect())
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
                let next = match meta.get(AUDIT_NEXT)? {
                    Some(v) => serde_json::from_slice::<u64>(&v)
                        .map_err(|e| super::cases::abort("audit sequence", e))?,
                    None => 0,
                };
                if next != first {
                    return Ok(false);
                }
                for (i, value) in values.iter().enumerate() {
                    log.insert((first + i as u64).to_be_bytes(), value.as_slice())?;
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

    /// Number of sequenced entries.
    pub fn audit_size(&self) -> Result<u64, StoreError> {
        Ok(self.get_meta::<u64>(AUDIT_NEXT)?.unwrap_or(0))
    }

    /// The stored values (leaf hash, then the line) of entries `start..end`, in order, read a
    /// page at a time.
    pub fn audit_entries(
        &self,
        start: u64,
        end: u64,
    ) -> impl Iterator<Item = Result<Vec<u8>, StoreError>> + use<> {
        self.audit_log
            .range(start.to_be_bytes()..end.to_be_bytes())
            .values()
            .map(|v| v.map(|v| v.to_vec()).map_err(db_err("audit log read")))
    }

    /// Stores a signed checkpoint of the first `size` entries.
    pub fn audit_put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        self.audit_checkpoints
            .insert(size.to_be_bytes(), note.as_bytes())
            .map_err(db_err("audit checkpoint write"))
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

    /// A queue row holds a group; a row written before groups (one entry, its time first) still
    /// reads as one entry; reads take whole rows; a cut row is refused by its id.
    #[test]
    fn queue_rows_hold_groups_and_the_single_entries_of_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let places = store
            .audit_enqueue(&[b"first".to_vec(), b"second".to_vec()])
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
