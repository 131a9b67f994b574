//! The procuratorate's supervision actions and the indexes its workbench reads. The action's
//! type belongs to `supervision::actions`; the store keeps JSON bytes in order.
//!
//! - `supervision`: `id (u64 BE)` → action JSON, its answers inside
//! - `case_supervision`: `case key 0x00 id (u64 BE)` → empty: a case's actions, for its timeline
//! - `transfers`: `case key` → the case version (u64 BE), then what the leads refresh last found
//!   of its 310号令 deadlines (see [`TransferCheck`]): the cases that carry any transfer
//!   information, so the overdue-transfer list reads dozens of cases, not every case, and the
//!   refresh reads only those whose deadlines time can still break
//! - `case_versions`: `case key 0x00 version (u64 BE)` → the time it was stored (microseconds,
//!   i64 BE), written when a later version replaces it: a case's earlier versions, for its
//!   timeline (a case never updated costs no entry)
//! - `supervision_outbox`: `destination 0x00 id (u64 BE)` → empty: the notices a destination that
//!   takes supervision must still be sent, queued in the action's transaction
//!
//! The two indexes are written in the case transaction itself (see `cases.rs`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::kv::{self, Bytes};
use super::{Store, StoreError, db_err};

/// What the leads refresh (or ingest, judging a new case) last found of a transferred case's
/// 310号令 deadlines, so that later refreshes read only the cases whose deadlines time alone can
/// still break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferCheck {
    /// Not checked since this version was stored.
    #[default]
    Unchecked,
    /// No deadline is open: only a new version of the case can change its deadline leads.
    Settled,
    /// The earliest open deadline falls due at this moment (China Standard Time, as
    /// microseconds since 1970 read as if it were UTC).
    OpenUntil(i64),
}

/// A case in the transfer index, as [`Store::transfer_checks`] read it.
#[derive(Debug, Clone)]
pub struct TransferEntry {
    /// The case key.
    pub key: Vec<u8>,
    /// What the last refresh found.
    pub check: TransferCheck,
    /// The stored value, compared when a new check is recorded.
    raw: Bytes,
}

/// A transfer index value: the case version, then `check` (nothing when unchecked).
pub(super) fn transfer_value(version: u64, check: TransferCheck) -> Vec<u8> {
    let mut value = version.to_be_bytes().to_vec();
    match check {
        TransferCheck::Unchecked => {}
        TransferCheck::Settled => value.push(0),
        TransferCheck::OpenUntil(due) => {
            value.push(1);
            value.extend_from_slice(&due.to_be_bytes());
        }
    }
    value
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        reason: e.to_string(),
    }
}

fn suffixed(case_key: &[u8], n: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(case_key.len() + 9);
    k.extend_from_slice(case_key);
    k.push(0);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

fn prefix(case_key: &[u8]) -> Vec<u8> {
    let mut p = case_key.to_vec();
    p.push(0);
    p
}

/// A version of a case and when it was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionEntry {
    /// The version.
    pub version: u64,
    /// When it was stored.
    pub at: DateTime<Utc>,
}

/// The `case_versions` key of a case's version.
pub(super) fn version_key(case_key: &[u8], version: u64) -> Vec<u8> {
    suffixed(case_key, version)
}

impl Store {
    /// A fresh supervision action id (increasing, never reused).
    pub fn next_supervision_id(&self) -> Result<u64, StoreError> {
        // sled ids start at 0; ids shown to people start at 1.
        Ok(self.db.generate_id().map_err(db_err("id"))? + 1)
    }

    /// Stores a new action `id` on the case under `case_key`, with its case index entry and a
    /// notice queued for each of `destinations`, in one transaction, and makes it durable
    /// before the caller answers.
    pub fn put_supervision<T: Serialize>(
        &self,
        id: u64,
        case_key: &[u8],
        action: &T,
        destinations: &[String],
    ) -> Result<(), StoreError> {
        let value = serde_json::to_vec(action).map_err(|e| corrupt("supervision action", e))?;
        let index = suffixed(case_key, id);
        let queued: Vec<Vec<u8>> = destinations
            .iter()
            .map(|d| suffixed(d.as_bytes(), id))
            .collect();
        kv::transaction(
            "supervision write",
            [
                &self.supervision,
                &self.case_supervision,
                &self.supervision_outbox,
            ],
            |[s, c, o]| {
                s.insert(id.to_be_bytes(), &value)?;
                c.insert(&index, [])?;
                for q in &queued {
                    o.insert(q, [])?;
                }
                Ok(())
            },
        )?;
        self.supervision
            .flush()
            .map_err(db_err("supervision flush"))?;
        Ok(())
    }

    /// Changes action `id` with `f` (an answer added), atomically and durably. `f` returns
    /// `Err` to leave it as it is. `None` when there is no such action.
    pub fn update_supervision<T, E>(
        &self,
        id: u64,
        f: impl Fn(T) -> Result<T, E>,
    ) -> Result<Option<Result<T, E>>, StoreError>
    where
        T: Serialize + DeserializeOwned,
    {
        let key = id.to_be_bytes();
        loop {
            let Some(old) = self
                .supervision
                .get(key)
                .map_err(db_err("supervision read"))?
            else {
                return Ok(None);
            };
            let action: T =
                serde_json::from_slice(&old).map_err(|e| corrupt("supervision action", e))?;
            let new = match f(action) {
                Ok(n) => n,
                Err(e) => return Ok(Some(Err(e))),
            };
            let bytes = serde_json::to_vec(&new).map_err(|e| corrupt("supervision action", e))?;
            let swapped = self
                .supervision
                .compare_and_swap(key, Some(&old[..]), Some(&bytes[..]))
                .map_err(db_err("supervision write"))?;
            if swapped {
                self.supervision
                    .flush()
                    .map_err(db_err("supervision flush"))?;
                return Ok(Some(Ok(new)));
            }
        }
    }

    /// Action `id`.
    pub fn get_supervision<T: DeserializeOwned>(&self, id: u64) -> Result<Option<T>, StoreError> {
        self.supervision
            .get(id.to_be_bytes())
            .map_err(db_err("supervision read"))?
            .map(|v| serde_json::from_slice(&v).map_err(|e| corrupt("supervision action", e)))
            .transpose()
    }

    /// The actions on the case under `case_key`, oldest first.
    pub fn case_supervision<T: DeserializeOwned>(
        &self,
        case_key: &[u8],
    ) -> Result<Vec<T>, StoreError> {
        let p = prefix(case_key);
        let mut out = Vec::new();
        for k in self.case_supervision.scan_prefix(&p).keys() {
            let k = k.map_err(db_err("supervision index"))?;
            let Some(id) = k
                .get(p.len()..)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
            else {
                continue;
            };
            if let Some(a) = self.get_supervision(id)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Every action, newest first.
    pub fn all_supervision<T: DeserializeOwned>(
        &self,
    ) -> impl Iterator<Item = Result<T, StoreError>> + use<T> {
        self.supervision.iter().rev().map(|kv| {
            let (_, v) = kv.map_err(db_err("supervision scan"))?;
            serde_json::from_slice(&v).map_err(|e| corrupt("supervision action", e))
        })
    }

    /// The ids of the notices queued for `destination`, oldest first.
    pub fn supervision_outbox(&self, destination: &str) -> Result<Vec<u64>, StoreError> {
        let p = prefix(destination.as_bytes());
        self.supervision_outbox
            .scan_prefix(&p)
            .keys()
            .map(|k| {
                let k = k.map_err(db_err("notice outbox"))?;
                k.get(p.len()..)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| corrupt("notice outbox key", "wrong length"))
            })
            .collect()
    }

    /// Takes notice `id` out of `destination`'s queue (delivered), durably.
    pub fn supervision_outbox_done(&self, destination: &str, id: u64) -> Result<(), StoreError> {
        self.supervision_outbox
            .remove(suffixed(destination.as_bytes(), id))
            .map_err(db_err("notice outbox"))?;
        self.supervision_outbox
            .flush()
            .map_err(db_err("notice outbox"))?;
        Ok(())
    }

    /// The keys of the cases that carry transfer information, in key order.
    pub fn transfer_case_keys(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.transfers
            .iter()
            .keys()
            .map(|k| k.map(|k| k.to_vec()).map_err(db_err("transfer index")))
            .collect()
    }

    /// The cases that carry transfer information, each with what the leads refresh last found
    /// of its deadlines, in key order.
    pub fn transfer_checks(&self) -> Result<Vec<TransferEntry>, StoreError> {
        self.transfers
            .iter()
            .map(|kv| {
                let (k, raw) = kv.map_err(db_err("transfer index"))?;
                let check = match raw.get(8..) {
                    // A version alone, or nothing (a store written before checks were kept).
                    None | Some([]) => TransferCheck::Unchecked,
                    Some([0]) => TransferCheck::Settled,
                    Some([1, due @ ..]) => <[u8; 8]>::try_from(due)
                        .map(|d| TransferCheck::OpenUntil(i64::from_be_bytes(d)))
                        .map_err(|_| corrupt("transfer index entry", "cut short"))?,
                    Some(_) => return Err(corrupt("transfer index entry", "unknown check")),
                };
                Ok(TransferEntry {
                    key: k.to_vec(),
                    check,
                    raw,
                })
            })
            .collect()
    }

    /// Records `check` for `entry`'s case unless the case was written since `entry` was read (a
    /// new version is checked afresh). Returns whether it was recorded.
    pub fn set_transfer_check(
        &self,
        entry: &TransferEntry,
        check: TransferCheck,
    ) -> Result<bool, StoreError> {
        let version = entry
            .raw
            .get(..8)
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .map_or(0, u64::from_be_bytes);
        let value = transfer_value(version, check);
        self.transfers
            .compare_and_swap(&entry.key, Some(&entry.raw[..]), Some(&value[..]))
            .map_err(db_err("transfer index"))
    }

    /// The earlier versions of the case under `case_key`, oldest first, each with the time it
    /// was stored (the current version's time is on the case).
    pub fn case_versions(&self, case_key: &[u8]) -> Result<Vec<VersionEntry>, StoreError> {
        let p = prefix(case_key);
        let mut out = Vec::new();
        for kv in self.case_versions.scan_prefix(&p) {
            let (k, v) = kv.map_err(db_err("version index"))?;
            let n = |b: Option<&[u8]>| b.and_then(|b| <[u8; 8]>::try_from(b).ok());
            let (Some(version), Some(micros)) = (n(k.get(p.len()..)), n(v.get(..8))) else {
                return Err(corrupt("version index entry", "wrong length"));
            };
            let micros = i64::from_be_bytes(micros);
            out.push(VersionEntry {
                version: u64::from_be_bytes(version),
                at: DateTime::from_timestamp_micros(micros)
                    .ok_or_else(|| corrupt("version index entry", "time out of range"))?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_kept_per_case_and_updated_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (b"U\0one".to_vec(), b"U\0two".to_vec());
        let ids: Vec<u64> = (0..3)
            .map(|_| store.next_supervision_id().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]) && ids[0] >= 1);
        let dests = ["unit-system".to_string()];
        store.put_supervision(ids[0], &a, &"first", &dests).unwrap();
        store.put_supervision(ids[1], &b, &"other", &[]).unwrap();
        store
            .put_supervision(ids[2], &a, &"second", &dests)
            .unwrap();
        assert_eq!(
            store.supervision_outbox("unit-system").unwrap(),
            [ids[0], ids[2]]
        );
        store
            .supervision_outbox_done("unit-system", ids[0])
            .unwrap();
        assert_eq!(store.supervision_outbox("unit-system").unwrap(), [ids[2]]);
        assert!(store.supervision_outbox("unit").unwrap().is_empty());
        let on_a: Vec<String> = store.case_supervision(&a).unwrap();
        assert_eq!(on_a, ["first", "second"]);
        let all: Vec<String> = store.all_supervision().collect::<Result<_, _>>().unwrap();
        assert_eq!(all, ["second", "other", "first"]);
        let changed = store
            .update_supervision(ids[1], |s: String| Ok::<_, ()>(format!("{s}+answer")))
            .unwrap();
        assert_eq!(changed, Some(Ok("other+answer".to_string())));
        let refused = store
            .update_supervision(ids[1], |_: String| Err::<String, _>("closed"))
            .unwrap();
        assert_eq!(refused, Some(Err("closed")));
        assert_eq!(
            store.get_supervision::<String>(ids[1]).unwrap().as_deref(),
            Some("other+answer")
        );
        assert!(
            store
                .update_supervision(999, |s: String| Ok::<_, ()>(s))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_transfer_and_version_indexes_follow_each_case_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let none = |_: &crate::model::Uscc, _: crate::model::Action| Vec::new();
        let golden = crate::ingest::golden::golden_cases();
        let clear = |c: &mut crate::model::Case| {
            c.transfer.suspected_crime = false;
            c.transfer.status = crate::model::TransferStatus::None;
            c.transfer.transferred_on = None;
            c.transfer.approved_at = None;
        };
        let mut a = golden[0].clone();
        clear(&mut a);
        a.transfer.suspected_crime = true;
        let mut b = a.clone();
        b.case_id = crate::model::CaseId::parse("INDEX-B").unwrap();
        clear(&mut b);
        store.upsert_cases(&[a.clone(), b.clone()], &none).unwrap();
        assert_eq!(store.transfer_case_keys().unwrap(), vec![a.key()]);
        // A case never updated has no earlier versions.
        assert!(store.case_versions(&a.key()).unwrap().is_empty());
        let v1 = store.get_case_by_key(&a.key()).unwrap().unwrap().updated_at;

        // The transfer moves from a to b; a's first version keeps its time.
        clear(&mut a);
        b.transfer.status = crate::model::TransferStatus::Transferred;
        store.upsert_cases(&[a.clone(), b.clone()], &none).unwrap();
        assert_eq!(store.transfer_case_keys().unwrap(), vec![b.key()]);
        let versions = store.case_versions(&a.key()).unwrap();
        assert_eq!(versions, vec![VersionEntry { version: 1, at: v1 }]);

        // Unchanged: nothing moves.
        store.upsert_cases(&[a.clone(), b.clone()], &none).unwrap();
        assert_eq!(store.transfer_case_keys().unwrap(), vec![b.key()]);
        assert_eq!(store.case_versions(&a.key()).unwrap().len(), 1);
    }
}
