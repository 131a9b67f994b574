//! Leads, kept per case, and the cases whose leads are still to be judged:
//! - `leads`: `unit_code 0x00 case_id 0x00 lead key` → the lead's JSON (its type belongs to
//!   `supervision`; the store only keeps bytes in order)
//! - `leads_pending`: `case key` → the version (u64 BE) written without its leads judged,
//!   marked in the case transaction (see `cases.rs`) and cleared by the leads refresh once it
//!   has judged that version, so nothing a stop cuts short is forgotten

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

    /// Up to `limit` cases whose leads are still to be judged, in key order, each with the
    /// version that was written.
    pub fn pending_leads(&self, limit: usize) -> Result<Vec<(Vec<u8>, u64)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.leads_pending.iter().take(limit) {
            let (k, v) = kv.map_err(db_err("pending leads"))?;
            let version = <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    what: "pending lead entry".into(),
                    reason: "wrong length".into(),
                })?;
            out.push((k.to_vec(), version));
        }
        Ok(out)
    }

    /// Records that the leads of version `version` of the case under `case_key` are judged.
    /// A newer version written meanwhile stays marked (then this returns false).
    pub fn leads_judged(&self, case_key: &[u8], version: u64) -> Result<bool, StoreError> {
        self.leads_pending
            .compare_and_swap(case_key, Some(&version.to_be_bytes()[..]), None)
            .map_err(db_err("pending leads"))
    }

    /// Removes every lead (before a rebuild).
    pub fn clear_leads(&self) -> Result<(), StoreError> {
        self.leads.clear().map_err(db_err("lead clear"))
    }
}
