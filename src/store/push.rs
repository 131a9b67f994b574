//! The push side's bookkeeping: taking delivered or refused entries out of a destination's outbox,
//! remembering which version each destination holds, and the dead-letter list — each delivery
//! outcome committed in one transaction, so a crash leaves an entry either queued or settled.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cases::{ChangeBatch, abort, json, outbox_positions};
use super::kv;
use super::{OutboxEntry, Store, StoreError, db_err};
use crate::model::{CaseId, Uscc};

/// A record version a destination refused (or that could not be packaged), kept with the reason
/// until an administrator requeues it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Its id in the list (0 until stored).
    pub id: u64,
    /// Destination.
    pub destination: String,
    /// Unit.
    pub unit_code: Uscc,
    /// Case.
    pub case_id: CaseId,
    /// Version that was refused.
    pub version: u64,
    /// Its change-log position (and batch), so a requeue puts it back where it was.
    pub change_seq: u64,
    /// First sequence number of its change-log batch.
    pub batch: u64,
    /// The record id sent.
    pub record_id: String,
    /// `upsert` or `retract`.
    pub op: String,
    /// The platform's code (or `LOCAL-…` when the gateway could not package it).
    pub code: String,
    /// The platform's reason.
    pub reason: String,
    /// The package it was in, if it was sent.
    pub package_id: Option<String>,
    /// HTTP status when the whole package was refused.
    pub http_status: Option<u16>,
    /// The start of the response body when the whole package was refused.
    pub response: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// The outcome of one delivery, committed together.
#[derive(Debug, Default)]
pub struct PushCommit {
    /// Entries that leave the outbox (delivered, refused or no longer needed).
    pub done: Vec<OutboxEntry>,
    /// Versions the destination now holds.
    pub delivered: Vec<(Uscc, CaseId, u64)>,
    /// Refused versions for the dead-letter list.
    pub dead: Vec<DeadLetter>,
}

/// A destination's queue at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxSummary {
    /// Entries waiting.
    pub queued: u64,
    /// When the oldest waiting entry was queued.
    pub oldest: Option<DateTime<Utc>>,
}

fn delivered_key(destination: &str, unit: &Uscc, case: &CaseId) -> Vec<u8> {
    let mut k = Vec::with_capacity(destination.len() + 40);
    k.extend_from_slice(destination.as_bytes());
    k.push(0);
    k.extend_from_slice(&crate::model::case_key(unit, case));
    k
}

fn outbox_key(destination: &str, batch: u64) -> Vec<u8> {
    let mut k = destination.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&batch.to_be_bytes());
    k
}

fn delivered_count_key(destination: &str) -> String {
    format!("push_delivered/{destination}")
}

impl Store {
    /// Commits one delivery of `destination`: removes `done` from its outbox, records the
    /// delivered versions (and counts them) and appends the dead letters, atomically. Returns the
    /// dead letters' ids.
    pub fn push_commit(&self, destination: &str, c: &PushCommit) -> Result<Vec<u64>, StoreError> {
        let mut by_batch: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for e in &c.done {
            by_batch
                .entry(e.batch)
                .or_default()
                .push((e.change_seq - e.batch) as u32);
        }
        let mut dead = c.dead.clone();
        for d in &mut dead {
            d.id = self.db.generate_id().map_err(db_err("id"))? + 1;
        }
        let count_key = delivered_count_key(destination);
        kv::transaction(
            "push commit",
            [&self.outbox, &self.delivered, &self.dead, &self.meta],
            |[tout, tdel, tdead, tmeta]| {
                for (batch, gone) in &by_batch {
                    let k = outbox_key(destination, *batch);
                    let Some(v) = tout.get(&k)? else { continue };
                    let mut positions = outbox_positions(&k, &v).map_err(|e| abort("outbox", e))?;
                    positions.retain(|p| !gone.contains(p));
                    if positions.is_empty() {
                        tout.remove(k)?;
                    } else {
                        tout.insert(k, json("outbox", &positions)?)?;
                    }
                }
                for (unit, case, version) in &c.delivered {
                    tdel.insert(
                        delivered_key(destination, unit, case),
                        version.to_be_bytes(),
                    )?;
                }
                if !c.delivered.is_empty() {
                    let n = tmeta
                        .get(count_key.as_bytes())?
                        .and_then(|v| serde_json::from_slice::<u64>(&v).ok())
                        .unwrap_or(0);
                    tmeta.insert(
                        count_key.as_bytes(),
                        json("count", &(n + c.delivered.len() as u64))?,
                    )?;
                }
                for d in &dead {
                    tdead.insert(d.id.to_be_bytes(), json("dead letter", d)?)?;
                }
                Ok(())
            },
        )?;
        Ok(dead.iter().map(|d| d.id).collect())
    }

    /// The last version of a case `destination` acknowledged, if any.
    pub fn delivered_version(
        &self,
        destination: &str,
        unit: &Uscc,
        case: &CaseId,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self
            .delivered
            .get(delivered_key(destination, unit, case))
            .map_err(db_err("delivered read"))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes))
    }

    /// Record versions `destination` has acknowledged, in all.
    pub fn delivered_count(&self, destination: &str) -> Result<u64, StoreError> {
        Ok(self
            .get_meta::<u64>(&delivered_count_key(destination))?
            .unwrap_or(0))
    }

    /// How many entries wait for `destination`, and since when.
    pub fn outbox_summary(&self, destination: &str) -> Result<OutboxSummary, StoreError> {
        let mut prefix = destination.as_bytes().to_vec();
        prefix.push(0);
        let mut out = OutboxSummary::default();
        for kv in self.outbox.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(db_err("outbox scan"))?;
            let n = outbox_positions(&k, &v)?.len() as u64;
            if out.oldest.is_none() && n > 0 {
                let batch = k[prefix.len()..].to_vec();
                if let Some(b) = self.changes.get(batch).map_err(db_err("change read"))? {
                    let b: ChangeBatch =
                        serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt {
                            what: "change batch".into(),
                            reason: e.to_string(),
                        })?;
                    out.oldest = Some(b.at);
                }
            }
            out.queued += n;
        }
        Ok(out)
    }

    /// Dead letters, oldest first, optionally of one destination.
    pub fn dead_list(
        &self,
        destination: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let mut out = Vec::new();
        for kv in self.dead.iter() {
            let (_, v) = kv.map_err(db_err("dead-letter scan"))?;
            let d: DeadLetter = serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                what: "dead letter".into(),
                reason: e.to_string(),
            })?;
            if destination.is_none_or(|x| x == d.destination) {
                out.push(d);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Up to `limit` dead letters with ids above `after` (all when `None`), oldest first: a page
    /// of the list, read from its place, never from the start.
    pub fn dead_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let start = after.map_or(0, |a| a.saturating_add(1)).to_be_bytes();
        self.dead
            .range(start..)
            .take(limit)
            .map(|kv| {
                let (_, v) = kv.map_err(db_err("dead-letter scan"))?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    what: "dead letter".into(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Dead letters of `destination`, in all.
    pub fn dead_count(&self, destination: &str) -> Result<u64, StoreError> {
        Ok(self.dead_list(Some(destination), usize::MAX)?.len() as u64)
    }

    /// One dead letter.
    pub fn dead_get(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        match self
            .dead
            .get(id.to_be_bytes())
            .map_err(db_err("dead-letter read"))?
        {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    what: format!("dead letter {id}"),
                    reason: e.to_string(),
                }),
        }
    }

    /// Puts dead letters back in their destination's outbox, at their original place in the
    /// order, and removes them from the list — atomically. Returns those requeued (ids that do not
    /// exist are skipped).
    pub fn dead_requeue(&self, ids: &[u64]) -> Result<Vec<DeadLetter>, StoreError> {
        let letters: Vec<DeadLetter> = ids
            .iter()
            .filter_map(|id| self.dead_get(*id).transpose())
            .collect::<Result<_, _>>()?;
        kv::transaction(
            "dead-letter requeue",
            [&self.outbox, &self.dead],
            |[tout, tdead]| {
                for d in &letters {
                    let k = outbox_key(&d.destination, d.batch);
                    let mut positions = match tout.get(&k)? {
                        Some(v) => outbox_positions(&k, &v).map_err(|e| abort("outbox", e))?,
                        None => Vec::new(),
                    };
                    let p = (d.change_seq - d.batch) as u32;
                    if let Err(i) = positions.binary_search(&p) {
                        positions.insert(i, p);
                    }
                    tout.insert(k, json("outbox", &positions)?)?;
                    tdead.remove(d.id.to_be_bytes())?;
                }
                Ok(())
            },
        )?;
        Ok(letters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, Case};

    #[test]
    fn commits_settle_entries_and_requeue_puts_them_back_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let base = crate::ingest::golden::golden_cases()
            .into_iter()
            .find(|c| c.action == Action::Penalty)
            .unwrap();
        let cases: Vec<Case> = (0..5)
            .map(|i| {
                let mut c = base.clone();
                c.case_id = CaseId::parse(&format!("PUSH-{i}")).unwrap();
                c
            })
            .collect();
        let route = |_: &Uscc, a: Action| {
            if a == Action::Penalty {
                vec!["p".to_string()]
            } else {
                Vec::new()
            }
        };
        store.upsert_cases(&cases, &route).unwrap();
        let queued: Vec<OutboxEntry> = store
            .outbox("p", usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        assert_eq!(queued.len(), 5);
        assert_eq!(store.outbox_summary("p").unwrap().queued, 5);
        assert!(store.outbox_summary("p").unwrap().oldest.is_some());
        assert_eq!(store.outbox_summary("q").unwrap(), OutboxSummary::default());

        // Two delivered, one refused.
        let dl = DeadLetter {
            id: 0,
            destination: "p".into(),
            unit_code: queued[2].unit_code.clone(),
            case_id: queued[2].case_id.clone(),
            version: 1,
            change_seq: queued[2].change_seq,
            batch: queued[2].batch,
            record_id: "XJ-x".into(),
            op: "upsert".into(),
            code: "E-USCC".into(),
            reason: "bad check digit".into(),
            package_id: Some("PKG-1".into()),
            http_status: None,
            response: None,
            at: Utc::now(),
        };
        let commit = PushCommit {
            done: queued[..3].to_vec(),
            delivered: queued[..2]
                .iter()
                .map(|e| (e.unit_code.clone(), e.case_id.clone(), e.version))
                .collect(),
            dead: vec![dl],
        };
        let ids = store.push_commit("p", &commit).unwrap();
        assert_eq!(ids.len(), 1);
        let left: Vec<u64> = store
            .outbox("p", usize::MAX)
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(left, vec![queued[3].change_seq, queued[4].change_seq]);
        assert_eq!(store.delivered_count("p").unwrap(), 2);
        assert_eq!(
            store
                .delivered_version("p", &queued[0].unit_code, &queued[0].case_id)
                .unwrap(),
            Some(1)
        );
        assert_eq!(
            store
                .delivered_version("p", &queued[2].unit_code, &queued[2].case_id)
                .unwrap(),
            None
        );
        assert_eq!(store.dead_count("p").unwrap(), 1);
        let stored = store.dead_get(ids[0]).unwrap().unwrap();
        assert_eq!((stored.id, stored.code.as_str()), (ids[0], "E-USCC"));

        // Requeue: back at its place, ahead of the later entries; gone from the list.
        let moved = store.dead_requeue(&[ids[0], 999_999]).unwrap();
        assert_eq!(moved.len(), 1);
        let left: Vec<u64> = store
            .outbox("p", usize::MAX)
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(
            left,
            vec![
                queued[2].change_seq,
                queued[3].change_seq,
                queued[4].change_seq
            ]
        );
        assert_eq!(store.dead_count("p").unwrap(), 0);

        // Settling everything removes the batch's outbox value.
        let rest: Vec<OutboxEntry> = store
            .outbox("p", usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        store
            .push_commit(
                "p",
                &PushCommit {
                    done: rest,
                    ..PushCommit::default()
                },
            )
            .unwrap();
        assert_eq!(store.outbox_len().unwrap(), 0);
        assert_eq!(store.outbox_summary("p").unwrap().oldest, None);
    }
}
