//! The audit log of instances sharing a PostgreSQL store (see `audit/shared.rs`): the trees
//! `audit_queue` (entries appended by any instance, waiting for the leader to sequence them),
//! `audit_log` (the sequenced entries: `seq (u64 BE)` → leaf hash then the canonical line) and
//! `audit_checkpoints` (`size (u64 BE)` → signed note). The next sequence number is in `meta`.

use super::kv;
use super::{Store, StoreError, db_err};

pub(super) const AUDIT_NEXT: &str = "audit_next";

impl Store {
    /// Queues entries together (durable when this returns: one write and one commit for all);
    /// returns their places in the queue, in order.
    pub fn audit_enqueue(&self, records: &[Vec<u8>]) -> Result<Vec<u64>, StoreError> {
        self.audit_queue
            .insert_with_new_ids(&self.db, records)
            .map_err(db_err("audit queue write"))
    }

    /// Up to `limit` queued entries, oldest first, with their places.
    pub fn audit_queued(&self, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.audit_queue
            .iter()
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(db_err("audit queue read"))?;
                let id = <[u8; 8]>::try_from(k.as_ref()).map_err(|_| StoreError::Corrupt {
                    what: "audit queue key".into(),
                    reason: "not 8 bytes".into(),
                })?;
                Ok((u64::from_be_bytes(id), v.to_vec()))
            })
            .collect()
    }

    /// Sequences queued entries: `entries[i]` (the queue place and the stored value) becomes
    /// entry `first + i`, and leaves the queue, in one transaction. Returns false, changing
    /// nothing, when the log does not end at `first` (another instance sequenced meanwhile).
    pub fn audit_integrate(
        &self,
        first: u64,
        entries: &[(u64, Vec<u8>)],
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
                for (i, (id, value)) in entries.iter().enumerate() {
                    log.insert((first + i as u64).to_be_bytes(), value)?;
                    queue.remove(id.to_be_bytes())?;
                }
                let end = first + entries.len() as u64;
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
