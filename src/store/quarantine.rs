//! Quarantine: records that could not be accepted, with where they came from, why, and their raw
//! values so they can be retried after the source or the adapter is fixed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, db_err};

/// What makes two quarantine entries the same refusal (id and time excluded).
fn fingerprint(e: &QuarantineEntry) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let key = serde_json::to_vec(&(&e.adapter, &e.file, &e.location, &e.raw, &e.reasons))
        .unwrap_or_default();
    Sha256::digest(&key).into()
}

/// One reason a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineReason {
    /// Target field (`party.id_number`), or `record` for problems of the whole record.
    pub field: String,
    /// Source column(s) the field was read from, if any.
    pub column: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// A refused record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// Identifier (assigned by the store).
    pub id: u64,
    /// Adapter.
    pub adapter: String,
    /// Source file (full path as ingested).
    pub file: String,
    /// Row, line or element.
    pub location: String,
    /// Every problem found.
    pub reasons: Vec<QuarantineReason>,
    /// The raw values read, by column; a long value only as far as quarantine keeps it.
    pub raw: Vec<(String, Option<String>)>,
    /// The raw values kept only in part: their full length and digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cut: Vec<CutValue>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A raw value quarantine holds only the first bytes of (`[ingest.limits] quarantine_raw_kib`,
/// or a value the decoder already cut at the field limit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutValue {
    /// The column (or `record` for a record too long to decode).
    pub column: String,
    /// Its full length in bytes.
    pub bytes: u64,
    /// SHA-256 of all of it, in hex.
    pub sha256: String,
}

impl QuarantineEntry {
    /// Keeps `value` of `column`, at most `keep` bytes of it. `decoded` gives the full length and
    /// digest of a value the decoder already cut; a value cut here is measured here.
    pub fn keep_raw(
        &mut self,
        column: &str,
        value: Option<&str>,
        decoded: Option<(u64, [u8; 32])>,
        keep: usize,
    ) {
        use sha2::{Digest, Sha256};
        let Some(v) = value else {
            self.raw.push((column.to_string(), None));
            return;
        };
        let head = crate::ingest::decode::char_prefix(v, keep);
        let full = match decoded {
            Some(d) => Some(d),
            None if head.len() < v.len() => Some((v.len() as u64, Sha256::digest(v).into())),
            None => None,
        };
        self.raw.push((column.to_string(), Some(head.to_string())));
        if let Some((bytes, sha)) = full {
            self.cut.push(CutValue {
                column: column.to_string(),
                bytes,
                sha256: hex::encode(sha),
            });
        }
    }

    /// Whether a raw value was kept only in part (the record cannot be retried from quarantine).
    pub fn is_cut(&self) -> bool {
        !self.cut.is_empty()
    }
}

impl Store {
    /// Adds entries (their `id`s are assigned here) and returns the ids of those that were new. An
    /// entry identical to one already held (same adapter, file, location, raw values and reasons) is
    /// not added again, so reading the same file twice does not double the quarantine.
    pub fn quarantine_add(&self, entries: Vec<QuarantineEntry>) -> Result<Vec<u64>, StoreError> {
        let mut ids = Vec::with_capacity(entries.len());
        for mut e in entries {
            let fp = fingerprint(&e);
            if self
                .quarantine_fp
                .contains_key(fp)
                .map_err(db_err("quarantine read"))?
            {
                continue;
            }
            e.id = self.db.generate_id().map_err(db_err("quarantine id"))?;
            let v = serde_json::to_vec(&e).map_err(|x| StoreError::Corrupt {
                what: "quarantine entry".into(),
                reason: x.to_string(),
            })?;
            // Checked again inside the transaction: another instance may have added it since.
            let added = super::kv::transaction(
                "quarantine write",
                [&self.quarantine, &self.quarantine_fp],
                |[q, f]| {
                    if f.get(fp)?.is_some() {
                        return Ok(false);
                    }
                    q.insert(e.id.to_be_bytes(), v.as_slice())?;
                    f.insert(fp, e.id.to_be_bytes())?;
                    Ok(true)
                },
            )?;
            if added {
                ids.push(e.id);
            }
        }
        Ok(ids)
    }

    /// Up to `limit` entries with ids above `after` (all when `None`), oldest first: a page read
    /// from its place.
    pub fn quarantine_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<QuarantineEntry>, StoreError> {
        let start = after.map_or(0, |a| a.saturating_add(1)).to_be_bytes();
        self.quarantine
            .range(start..)
            .take(limit)
            .map(|kv| {
                let (_, v) = kv.map_err(db_err("quarantine scan"))?;
                serde_json::from_slice(&v).map_err(|x| StoreError::Corrupt {
                    what: "quarantine entry".into(),
                    reason: x.to_string(),
                })
            })
            .collect()
    }

    /// Quarantine entries, oldest first, optionally of one adapter, at most `limit`.
    pub fn quarantine_list(
        &self,
        adapter: Option<&str>,
        limit: usize,
    ) -> Result<Vec<QuarantineEntry>, StoreError> {
        let mut out = Vec::new();
        for kv in self.quarantine.iter() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = kv.map_err(db_err("quarantine scan"))?;
            let e: QuarantineEntry =
                serde_json::from_slice(&v).map_err(|x| StoreError::Corrupt {
                    what: "quarantine entry".into(),
                    reason: x.to_string(),
                })?;
            if adapter.is_none_or(|a| a == e.adapter) {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// One entry.
    pub fn quarantine_get(&self, id: u64) -> Result<Option<QuarantineEntry>, StoreError> {
        match self
            .quarantine
            .get(id.to_be_bytes())
            .map_err(db_err("quarantine read"))?
        {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|x| StoreError::Corrupt {
                    what: format!("quarantine entry {id}"),
                    reason: x.to_string(),
                }),
        }
    }

    /// Replaces an entry in place (a retry that still fails records its current reasons).
    pub fn quarantine_put(&self, entry: &QuarantineEntry) -> Result<(), StoreError> {
        let v = serde_json::to_vec(entry).map_err(|x| StoreError::Corrupt {
            what: "quarantine entry".into(),
            reason: x.to_string(),
        })?;
        self.quarantine
            .insert(entry.id.to_be_bytes(), v)
            .map(drop)
            .map_err(db_err("quarantine write"))
    }

    /// Removes an entry (after a successful retry).
    pub fn quarantine_remove(&self, id: u64) -> Result<(), StoreError> {
        if let Some(e) = self.quarantine_get(id)? {
            self.quarantine_fp
                .remove(fingerprint(&e))
                .map_err(db_err("quarantine remove"))?;
        }
        self.quarantine
            .remove(id.to_be_bytes())
            .map(drop)
            .map_err(db_err("quarantine remove"))
    }

    /// Number of entries.
    pub fn quarantine_len(&self) -> Result<usize, StoreError> {
        self.quarantine.len().map_err(db_err("quarantine count"))
    }
}
