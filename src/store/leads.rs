//! Leads, kept per case: `leads`: `unit_code 0x00 case_id 0x00 lead key` → the lead's JSON (its
//! type belongs to `supervision`; the store only keeps bytes in order). Which change-log entry
//! leads were last brought up to is in `meta` (`leads_seq`), so the cases written since are
//! found from the change log itself, with no write on the ingest path.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Store, StoreError, sled_err, tx_err};

const LEADS_SEQ: &str = "leads_seq";

fn prefix(case_key: &[u8]) -> Vec<u8> {
    let mut p = case_key.to_vec();
    p.push(0);
    p
}

impl Store {
    /// The leads stored for a case, in key order.
    pub fn case_leads<T: DeserializeOwned>(&self, case_key: &[u8]) -> Result<Vec<T>, StoreError> {
        self.leads
            .scan_prefix(prefix(case_key))
            .values()
            .map(|v| {
                let v = v.map_err(sled_err("lead scan"))?;
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
        let old: Vec<sled::IVec> = self
            .leads
            .scan_prefix(&p)
            .keys()
            .collect::<Result<_, _>>()
            .map_err(sled_err("lead scan"))?;
        let mut values = Vec::with_capacity(leads.len());
        for (k, v) in leads {
            let mut key = p.clone();
            key.extend_from_slice(k.as_bytes());
            values.push((
                key,
                serde_json::to_vec(v).map_err(|e| StoreError::Corrupt {
                    what: "lead".into(),
                    reason: e.to_string(),
                })?,
            ));
        }
        self.leads
            .transaction(|t| {
                for k in &old {
                    t.remove(k)?;
                }
                for (k, v) in &values {
                    t.insert(k.as_slice(), v.as_slice())?;
                }
                Ok(())
            })
            .map_err(tx_err("lead write"))
    }

    /// Stores the first leads of a case that has none (the common case of a new lead): a batch,
    /// with no scan and no transaction.
    pub fn add_case_leads<T: Serialize>(
        &self,
        case_key: &[u8],
        leads: &[(String, T)],
    ) -> Result<(), StoreError> {
        let p = prefix(case_key);
        let mut batch = sled::Batch::default();
        for (k, v) in leads {
            let mut key = p.clone();
            key.extend_from_slice(k.as_bytes());
            let value = serde_json::to_vec(v).map_err(|e| StoreError::Corrupt {
                what: "lead".into(),
                reason: e.to_string(),
            })?;
            batch.insert(key, value);
        }
        self.leads
            .apply_batch(batch)
            .map_err(sled_err("lead write"))
    }

    /// Every stored lead with its case key, in key order (unit, case, lead).
    pub fn all_leads<T: DeserializeOwned>(
        &self,
    ) -> impl Iterator<Item = Result<(Vec<u8>, T), StoreError>> + use<T> {
        self.leads.iter().map(|kv| {
            let (k, v) = kv.map_err(sled_err("lead scan"))?;
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
            let (k, v) = kv.map_err(sled_err("lead scan"))?;
            let lead = serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                what: "lead".into(),
                reason: e.to_string(),
            })?;
            Ok((k.to_vec(), lead))
        })
    }

    /// The change-log position leads were last brought up to.
    pub fn leads_seq(&self) -> Result<u64, StoreError> {
        Ok(self.get_meta(LEADS_SEQ)?.unwrap_or(0))
    }

    /// Records that leads are up to date with the change log through `seq`.
    pub fn set_leads_seq(&self, seq: u64) -> Result<(), StoreError> {
        self.set_meta(LEADS_SEQ, &seq)
    }

    /// Removes every lead (before a rebuild).
    pub fn clear_leads(&self) -> Result<(), StoreError> {
        self.leads.clear().map_err(sled_err("lead clear"))
    }
}
