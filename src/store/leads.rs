//! Leads, kept per case, and the cases whose leads are still to be judged:
//! - `leads`: `unit_code 0x00 case_id 0x00 lead key` → the lead's JSON (its type belongs to
//!   `supervision`; the store only keeps bytes in order)
//! - `leads_pending`: the case versions written without their leads judged, marked in the
//!   transaction that writes them and cleared by the leads refresh once it has judged them, so
//!   nothing a stop cuts short is forgotten. Two kinds of mark:
//!   - a case transaction's: `0x00 first change seq (u64 BE)` → for each case, its key's length
//!     (u16 BE), the key and the version (u64 BE). One write per transaction instead of one per
//!     case: on sled, one insert per case into this tree cost a quarter of a first ingest;
//!   - the party index merge's: `case key` → the version (u64 BE; 0 when it woke the case).
//!
//!   Case keys start with a unit code, never with `0x00`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::kv::{self, Bytes};
use super::{Store, StoreError, db_err};

fn prefix(case_key: &[u8]) -> Vec<u8> {
    let mut p = case_key.to_vec();
    p.push(0);
    p
}

/// The `leads` key of a case's lead.
pub(super) fn lead_key(case_key: &[u8], key: &str) -> Vec<u8> {
    let mut k = prefix(case_key);
    k.extend_from_slice(key.as_bytes());
    k
}

impl Store {
    /// The leads stored for a case, in key order.
    pub fn case_leads<T: DeserializeOwned>(&self, case_key: &[u8]) -> Result<Vec<T>, StoreError> {
        self.leads
            .scan_prefix(prefix(case_key))
            .values()
            .map(|v| {
                let v = v.map_err(db_err("lead scan"))?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    what: "lead".into(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Replaces a case's leads (each with its key) in one transaction.
    pub fn put_case_leads<T: Serialize>(
        &self,
        case_key: &[u8],
        leads: &[(String, T)],
    ) -> Result<(), StoreError> {
        let p = prefix(case_key);
        let old: Vec<Bytes> = self
            .leads
            .scan_prefix(&p)
            .keys()
            .collect::<Result<_, _>>()
            .map_err(db_err("lead scan"))?;
        let mut values = Vec::with_capacity(leads.len());
        for (k, v) in leads {
            values.push((
                lead_key(case_key, k),
                serde_json::to_vec(v).map_err(|e| StoreError::Corrupt {
                    what: "lead".into(),
                    reason: e.to_string(),
                })?,
            ));
        }
        kv::transaction("lead write", [&self.leads], |[t]| {
            for k in &old {
                t.remove(k)?;
            }
            for (k, v) in &values {
                t.insert(k, v)?;
            }
            Ok(())
        })
    }

    /// Stores the first leads of a case that has none (the common case of a new lead): a batch,
    /// with no scan and no transaction.
    pub fn add_case_leads<T: Serialize>(
        &self,
        case_key: &[u8],
        leads: &[(String, T)],
    ) -> Result<(), StoreError> {
        let mut batch = kv::Batch::default();
        for (k, v) in leads {
            let key = lead_key(case_key, k);
            let value = serde_json::to_vec(v).map_err(|e| StoreError::Corrupt {
                what: "lead".into(),
                reason: e.to_string(),
            })?;
            batch.insert(key, value);
        }
        self.leads.apply_batch(batch).map_err(db_err("lead write"))
    }

    /// Every stored lead with its case key, in key order (unit, case, lead).
    pub fn all_leads<T: DeserializeOwned>(
        &self,
    ) -> impl Iterator<Item = Result<(Vec<u8>, T), StoreError>> + use<T> {
        self.leads.iter().map(|kv| {
            let (k, v) = kv.map_err(db_err("lead scan"))?;
            // unit 0x00 case 0x00 lead key: the case key is everything before the last 0 byte.
            let cut = k.iter().rposition(|b| *b == 0).unwrap_or(k.len());
            let lead = serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                what: "lead".into(),
                reason: e.to_string(),
            })?;
            Ok((k[..cut].to_vec(), lead))
        })
    }

    /// The leads of `unit` after the stored key `after` (or from its first), in key order (case,
    /// then lead), each with its full key (`unit 0x00 case 0x00 lead key`).
    pub fn unit_leads_after<T: DeserializeOwned>(
        &self,
        unit: &crate::model::Uscc,
        after: Option<&[u8]>,
    ) -> impl Iterator<Item = Result<(Vec<u8>, T), StoreError>> + use<T> {
        let mut p = unit.as_str().as_bytes().to_vec();
        p.push(0);
        let mut end = unit.as_str().as_bytes().to_vec();
        end.push(1);
        let start = match after {
            Some(a) if a.starts_with(&p) => {
                let mut s = a.to_vec();
                s.push(0);
                s
            }
            _ => p,
        };
        self.leads.range(start..end).map(|kv| {
            let (k, v) = kv.map_err(db_err("lead scan"))?;
            let lead = serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                what: "lead".into(),
                reason: e.to_string(),
            })?;
            Ok((k.to_vec(), lead))
        })
    }

    /// Marks of cases whose leads are still to be judged, in key order, up to about `limit`
    /// cases (whole marks, at least one).
    pub fn pending_leads(&self, limit: usize) -> Result<Vec<PendingMark>, StoreError> {
        let mut out = Vec::new();
        let mut cases = 0;
        for kv in self.leads_pending.iter() {
            if cases >= limit.max(1) {
                break;
            }
            let (k, v) = kv.map_err(db_err("pending leads"))?;
            let mark = PendingMark::decode(k.to_vec(), v.to_vec())?;
            cases += mark.cases.len();
            out.push(mark);
        }
        Ok(out)
    }

    /// Clears `mark` once every case it names is judged. A mark written again meanwhile (a
    /// newer version of its case) stays (then this returns false).
    pub fn leads_judged(&self, mark: &PendingMark) -> Result<bool, StoreError> {
        self.leads_pending
            .compare_and_swap(&mark.key, Some(&mark.value[..]), None)
            .map_err(db_err("pending leads"))
    }

    /// Removes every lead (before a rebuild).
    pub fn clear_leads(&self) -> Result<(), StoreError> {
        self.leads.clear().map_err(db_err("lead clear"))
    }
}

/// The first byte of a case transaction's mark (a case key never starts with it).
const BATCH_MARK: u8 = 0;

/// The `leads_pending` key of the mark of the case transaction whose first change is `first`.
pub(super) fn batch_mark_key(first: u64) -> [u8; 9] {
    let mut k = [BATCH_MARK; 9];
    k[1..].copy_from_slice(&first.to_be_bytes());
    k
}

/// Adds a case to a case transaction's mark.
pub(super) fn push_batch_mark(mark: &mut Vec<u8>, case_key: &[u8], version: u64) {
    // Case keys are a unit code and a bounded case id: far below 64 KiB.
    let len = u16::try_from(case_key.len()).unwrap_or(u16::MAX);
    mark.extend_from_slice(&len.to_be_bytes());
    mark.extend_from_slice(&case_key[..usize::from(len)]);
    mark.extend_from_slice(&version.to_be_bytes());
}

/// One mark in `leads_pending`: the cases (key, version) it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMark {
    key: Vec<u8>,
    value: Vec<u8>,
    /// The cases whose leads are to be judged, each with the version that was written.
    pub cases: Vec<(Vec<u8>, u64)>,
}

impl PendingMark {
    fn decode(key: Vec<u8>, value: Vec<u8>) -> Result<Self, StoreError> {
        let corrupt = |reason: &str| StoreError::Corrupt {
            what: format!("pending leads mark {}", String::from_utf8_lossy(&key)),
            reason: reason.into(),
        };
        let version = |b: &[u8]| <[u8; 8]>::try_from(b).map(u64::from_be_bytes);
        let mut cases = Vec::new();
        if key.first() == Some(&BATCH_MARK) {
            let mut rest = value.as_slice();
            while !rest.is_empty() {
                let (len, tail) = rest
                    .split_at_checked(2)
                    .ok_or_else(|| corrupt("cut short"))?;
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                let (case_key, tail) = tail
                    .split_at_checked(len)
                    .ok_or_else(|| corrupt("cut short"))?;
                let (v, tail) = tail
                    .split_at_checked(8)
                    .ok_or_else(|| corrupt("cut short"))?;
                let v = version(v).map_err(|_| corrupt("cut short"))?;
                cases.push((case_key.to_vec(), v));
                rest = tail;
            }
        } else {
            let v = version(&value).map_err(|_| corrupt("wrong length"))?;
            cases.push((key.clone(), v));
        }
        Ok(Self { key, value, cases })
    }
}
