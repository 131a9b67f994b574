//! Cases, the change log, the outbox and per-unit counters, written together in one transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Store, StoreError, sled_err};
use crate::model::{Action, Case, CaseId, Uscc, case_key};

/// One entry of the change log: a case reached a new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Position in the log (strictly increasing, may have gaps).
    pub seq: u64,
    /// Unit.
    pub unit_code: Uscc,
    /// Case.
    pub case_id: CaseId,
    /// New version.
    pub version: u64,
    /// When.
    pub at: DateTime<Utc>,
}

/// What a destination must be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Unit.
    pub unit_code: Uscc,
    /// Case.
    pub case_id: CaseId,
    /// Version to send.
    pub version: u64,
    /// Change-log position that caused it.
    pub change_seq: u64,
}

/// What an upsert did to one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// A new case, version 1.
    Created {
        /// Change-log sequence.
        seq: u64,
    },
    /// A new version of an existing case.
    Updated {
        /// The new version.
        version: u64,
        /// Change-log sequence.
        seq: u64,
    },
    /// Identical content: nothing written.
    Unchanged {
        /// The stored version.
        version: u64,
    },
}

/// Case counts of one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitCounts {
    /// Counts per action code.
    pub by_action: BTreeMap<String, u64>,
    /// All cases.
    pub total: u64,
}

/// Value header: content digest (32), action index (1), version (8, BE). Lets an unchanged or
/// updated case be handled without decoding the stored JSON.
const HEADER: usize = 41;

fn action_index(a: Action) -> u8 {
    Action::ALL.iter().position(|x| *x == a).unwrap_or(0) as u8
}

fn counts_key(unit: &Uscc, action_idx: u8) -> Vec<u8> {
    let mut k = unit.as_str().as_bytes().to_vec();
    k.push(0);
    k.push(action_idx);
    k
}

/// Splits a stored value's header: digest, action index, version.
fn header(v: &[u8]) -> Option<(&[u8], u8, u64)> {
    let version = u64::from_be_bytes(v.get(33..HEADER)?.try_into().ok()?);
    Some((v.get(..32)?, *v.get(32)?, version))
}

fn decode_case(key: &[u8], v: &[u8]) -> Result<Case, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        what: format!("case {}", String::from_utf8_lossy(key)),
        reason,
    };
    let body = v
        .get(HEADER..)
        .ok_or_else(|| corrupt("value shorter than its header".into()))?;
    serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()))
}

fn add_count(v: Option<sled::IVec>, delta: i64) -> u64 {
    let cur = v
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    cur.saturating_add_signed(delta)
}

impl Store {
    /// Writes cases in one transaction. Each case whose content differs from the stored one gets the
    /// next version, a change-log entry and an outbox entry for each destination `route` names; an
    /// identical case is left alone. Returns one outcome per input case, in order.
    pub fn upsert_cases(
        &self,
        cases: &[Case],
        route: &dyn Fn(&Case) -> Vec<String>,
    ) -> Result<Vec<UpsertOutcome>, StoreError> {
        let prepared: Vec<(Case, [u8; 32])> = cases
            .iter()
            .map(|c| (c.clone(), c.content_digest()))
            .collect();
        self.upsert_digested(&prepared, route)
    }

    /// [`Store::upsert_cases`] for cases whose [`Case::content_digest`] the caller already computed
    /// (ingest does it on its decoding thread, off the writer's path).
    pub fn upsert_digested(
        &self,
        cases: &[(Case, [u8; 32])],
        route: &dyn Fn(&Case) -> Vec<String>,
    ) -> Result<Vec<UpsertOutcome>, StoreError> {
        let now = Utc::now();
        // Keys outside the transaction: the closure may run more than once on conflict.
        let prepared: Vec<(Vec<u8>, &[u8; 32], &Case)> =
            cases.iter().map(|(c, d)| (c.key(), d, c)).collect();
        let result = (&self.cases, &self.changes, &self.outbox, &self.counts).transaction(
            |(tc, tch, tout, tcount)| {
                let mut outcomes = Vec::with_capacity(prepared.len());
                for (key, digest, case) in &prepared {
                    let old = tc.get(key)?;
                    let (version, old_action) = match old.as_deref().map(header) {
                        Some(Some((d, _, v))) if d == &digest[..] => {
                            outcomes.push(UpsertOutcome::Unchanged { version: v });
                            continue;
                        }
                        Some(Some((_, a, v))) => (v + 1, Some(a)),
                        Some(None) => {
                            return Err(ConflictableTransactionError::Abort(StoreError::Corrupt {
                                what: format!("case {}", String::from_utf8_lossy(key)),
                                reason: "value shorter than its header".into(),
                            }));
                        }
                        None => (1, None),
                    };
                    let mut c = (*case).clone();
                    c.version = version;
                    c.updated_at = now;
                    let json = serde_json::to_vec(&c).map_err(|e| {
                        ConflictableTransactionError::Abort(StoreError::Corrupt {
                            what: "case".into(),
                            reason: e.to_string(),
                        })
                    })?;
                    let mut value = Vec::with_capacity(HEADER + json.len());
                    value.extend_from_slice(&digest[..]);
                    let idx = action_index(c.action);
                    value.push(idx);
                    value.extend_from_slice(&version.to_be_bytes());
                    value.extend_from_slice(&json);
                    tc.insert(key.as_slice(), value)?;

                    let seq = tch.generate_id()?;
                    let change = Change {
                        seq,
                        unit_code: c.unit_code.clone(),
                        case_id: c.case_id.clone(),
                        version,
                        at: now,
                    };
                    tch.insert(
                        &seq.to_be_bytes(),
                        serde_json::to_vec(&change).unwrap_or_default(),
                    )?;
                    for dest in route(&c) {
                        let entry = OutboxEntry {
                            unit_code: c.unit_code.clone(),
                            case_id: c.case_id.clone(),
                            version,
                            change_seq: seq,
                        };
                        let mut k = dest.into_bytes();
                        k.push(0);
                        k.extend_from_slice(&seq.to_be_bytes());
                        tout.insert(k, serde_json::to_vec(&entry).unwrap_or_default())?;
                    }
                    if old_action != Some(idx) {
                        if let Some(o) = old_action {
                            let k = counts_key(&c.unit_code, o);
                            let n = add_count(tcount.get(&k)?, -1);
                            tcount.insert(k, &n.to_be_bytes())?;
                        }
                        let k = counts_key(&c.unit_code, idx);
                        let n = add_count(tcount.get(&k)?, 1);
                        tcount.insert(k, &n.to_be_bytes())?;
                    }
                    outcomes.push(if version == 1 {
                        UpsertOutcome::Created { seq }
                    } else {
                        UpsertOutcome::Updated { version, seq }
                    });
                }
                Ok(outcomes)
            },
        );
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(source) => StoreError::Sled {
                op: "case transaction",
                source,
            },
        })
    }

    /// One case.
    pub fn get_case(&self, unit: &Uscc, case_id: &CaseId) -> Result<Option<Case>, StoreError> {
        let key = case_key(unit, case_id);
        match self.cases.get(&key).map_err(sled_err("case read"))? {
            None => Ok(None),
            Some(v) => decode_case(&key, &v).map(Some),
        }
    }

    /// All cases of a unit, in case-id order.
    pub fn unit_cases(
        &self,
        unit: &Uscc,
    ) -> impl Iterator<Item = Result<Case, StoreError>> + use<> {
        let mut prefix = unit.as_str().as_bytes().to_vec();
        prefix.push(0);
        self.cases.scan_prefix(prefix).map(|kv| {
            let (k, v) = kv.map_err(sled_err("case scan"))?;
            decode_case(&k, &v)
        })
    }

    /// Every case, in key order.
    pub fn all_cases(&self) -> impl Iterator<Item = Result<Case, StoreError>> + use<> {
        self.cases.iter().map(|kv| {
            let (k, v) = kv.map_err(sled_err("case scan"))?;
            decode_case(&k, &v)
        })
    }

    /// Number of stored cases.
    pub fn case_count(&self) -> usize {
        self.cases.len()
    }

    /// Number of change-log entries.
    pub fn change_count(&self) -> usize {
        self.changes.len()
    }

    /// Up to `limit` change-log entries after `after`.
    pub fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let start = after.saturating_add(1).to_be_bytes();
        let mut out = Vec::new();
        for kv in self.changes.range(start..).take(limit) {
            let (k, v) = kv.map_err(sled_err("change scan"))?;
            out.push(serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                what: format!("change {}", hex::encode(&k)),
                reason: e.to_string(),
            })?);
        }
        Ok(out)
    }

    /// Outbox entries of one destination, oldest first.
    pub fn outbox(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<(u64, OutboxEntry)>, StoreError> {
        let mut prefix = destination.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.outbox.scan_prefix(&prefix).take(limit) {
            let (k, v) = kv.map_err(sled_err("outbox scan"))?;
            let seq = k
                .get(prefix.len()..)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map(u64::from_be_bytes);
            let entry = serde_json::from_slice(&v).ok();
            match (seq, entry) {
                (Some(seq), Some(e)) => out.push((seq, e)),
                _ => {
                    return Err(StoreError::Corrupt {
                        what: format!("outbox entry {}", hex::encode(&k)),
                        reason: "bad key or value".into(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Case counts per unit and action.
    pub fn unit_counts(&self) -> Result<BTreeMap<Uscc, UnitCounts>, StoreError> {
        let mut out: BTreeMap<Uscc, UnitCounts> = BTreeMap::new();
        for kv in self.counts.iter() {
            let (k, v) = kv.map_err(sled_err("count scan"))?;
            let unit = std::str::from_utf8(&k[..k.len().saturating_sub(2)])
                .ok()
                .and_then(|s| Uscc::parse(s).ok());
            let action = k.last().and_then(|i| Action::ALL.get(usize::from(*i)));
            let n = add_count(Some(v), 0);
            if let (Some(unit), Some(action)) = (unit, action) {
                let e = out.entry(unit).or_default();
                *e.by_action.entry(action.code().to_string()).or_default() += n;
                e.total += n;
            }
        }
        Ok(out)
    }
}
