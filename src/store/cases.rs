//! Cases, the change log, the outbox and per-unit counters, written together in one transaction.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::kv::{self, Bytes, TxError};
use super::{Store, StoreError, db_err};
use crate::model::{Action, Case, CaseId, Uscc, case_key};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One entry of the change log: a case reached a new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Position in the log: 1, 2, 3, … without gaps.
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

/// The change-log value of one write batch: entry `i` has sequence number `key + i`. Kept compact
/// (one time for the batch, entries as arrays) because the writer encodes one per transaction.
#[derive(Serialize, Deserialize)]
pub(super) struct ChangeBatch {
    pub(super) at: DateTime<Utc>,
    pub(super) entries: Vec<(Uscc, CaseId, u64)>,
}

/// The first sequence number of the change-log batch stored under `key`.
fn batch_first(key: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            what: format!("change batch {}", hex::encode(key)),
            reason: "key is not a sequence number".into(),
        })
}

/// The change-log batches decoded lately, so that a mirror reading page after page through one
/// batch reads and decodes it once, not once per page. A batch never changes once written.
#[derive(Clone, Default)]
pub(super) struct RecentBatches(Arc<Mutex<VecDeque<Decoded>>>);

/// A decoded change-log batch and its first sequence number.
type Decoded = (u64, Arc<ChangeBatch>);

/// Batches kept (about 100 KB of entries each, at most a few thousand).
const RECENT_BATCHES: usize = 16;

impl RecentBatches {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Decoded>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The first sequence number of a kept batch holding `seq`.
    fn covering(&self, seq: u64) -> Option<u64> {
        self.lock()
            .iter()
            .find(|(first, b)| *first <= seq && seq - first < b.entries.len() as u64)
            .map(|(first, _)| *first)
    }

    fn get(&self, first: u64) -> Option<Arc<ChangeBatch>> {
        self.lock()
            .iter()
            .find(|(f, _)| *f == first)
            .map(|(_, b)| b.clone())
    }

    fn put(&self, first: u64, batch: Arc<ChangeBatch>) {
        let mut kept = self.lock();
        if kept.iter().any(|(f, _)| *f == first) {
            return;
        }
        if kept.len() == RECENT_BATCHES {
            kept.pop_front();
        }
        kept.push_back((first, batch));
    }
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
    /// First sequence number of the change-log batch holding it (its outbox key).
    pub batch: u64,
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

/// What the caller found judging a case before it is written: its leads, each with its key and
/// JSON (their type belongs to `supervision`), and what its 310号令 deadlines need next.
#[derive(Debug, Clone, Default)]
pub struct JudgedLeads {
    /// Key and JSON of each lead.
    pub leads: Vec<(String, Vec<u8>)>,
    /// When a leads refresh must read the case again for its deadlines (kept when the case is in
    /// the transfer index).
    pub transfer: super::TransferCheck,
}

/// A case serialized for the store once, off the writer's path: its key, content JSON and digest,
/// provenance JSON, the digest of the raw record it was mapped from, what the workbench's indexes
/// take from it, and its leads when the caller judged them.
#[derive(Debug, Clone)]
pub struct PreparedCase {
    key: Vec<u8>,
    unit_code: Uscc,
    case_id: CaseId,
    action: Action,
    digest: [u8; 32],
    raw: [u8; 16],
    content: Vec<u8>,
    source: Vec<u8>,
    /// The party index id and the party's name.
    party: (Vec<u8>, String),
    /// Whether the case belongs in the `transfers` index.
    in_transfers: bool,
    /// Its leads judged as a new case on its own; `None`: the leads refresh judges it.
    leads: Option<JudgedLeads>,
}

impl PreparedCase {
    /// Serializes `case`. `raw` is the digest of the source record under its adapter definition
    /// (see [`Store::unchanged_raw`]); `None` when the case did not come from one.
    pub fn new(case: Case, raw: Option<[u8; 16]>) -> Self {
        use sha2::{Digest, Sha256};
        let key = case.key();
        let (unit_code, case_id, action) =
            (case.unit_code.clone(), case.case_id.clone(), case.action);
        let party = (super::parties::party_id(&case), case.party.name.clone());
        let in_transfers = case.transfer.is_watched();
        let (content, source) = case.into_content();
        Self {
            party,
            in_transfers,
            leads: None,
            key,
            unit_code,
            case_id,
            action,
            digest: Sha256::digest(&content).into(),
            raw: raw.unwrap_or([0; 16]),
            content,
            source: serde_json::to_vec(&source).unwrap_or_default(),
        }
    }

    /// The case with its leads as judged by the caller, as if it were new: stored with the case
    /// when it is new, and when it is not (its stored leads must be merged) left to the leads
    /// refresh as if not judged. `None`: not judged (a rule needs the party's other decisions).
    pub fn judged(mut self, leads: Option<JudgedLeads>) -> Self {
        self.leads = leads;
        self
    }

    /// The store key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The unit.
    pub fn unit_code(&self) -> &Uscc {
        &self.unit_code
    }

    /// The case number.
    pub fn case_id(&self) -> &CaseId {
        &self.case_id
    }
}

/// Value layout: content digest (32), raw-record digest (16), action index (1), version (8, BE),
/// updated-at (i64 microseconds, BE), content length (u32 BE), content JSON, provenance JSON.
/// The header lets an unchanged or updated case be handled without decoding any JSON.
const HEADER: usize = 69;
const RAW: std::ops::Range<usize> = 32..48;

/// Never a valid raw digest: cases not mapped from a record carry it and never match one.
const NO_RAW: [u8; 16] = [0; 16];

/// The meta entry holding the next change-log sequence number.
pub(super) const NEXT_SEQ: &str = "change_seq";

fn action_index(a: Action) -> u8 {
    Action::ALL.iter().position(|x| *x == a).unwrap_or(0) as u8
}

fn counts_key(unit: &Uscc, action_idx: u8) -> Vec<u8> {
    let mut k = unit.as_str().as_bytes().to_vec();
    k.push(0);
    k.push(action_idx);
    k
}

/// A stored value's header: content digest, action index, version.
fn header(v: &[u8]) -> Option<(&[u8], u8, u64)> {
    let version = u64::from_be_bytes(v.get(49..57)?.try_into().ok()?);
    Some((v.get(..32)?, *v.get(48)?, version))
}

/// The update time in a stored value's header (microseconds, as stored).
fn updated_micros(v: &[u8]) -> Option<[u8; 8]> {
    v.get(57..65)?.try_into().ok()
}

/// A stored case value split into its parts (layout above [`HEADER`]).
struct Stored<'a> {
    action: u8,
    version: u64,
    updated_at: DateTime<Utc>,
    content: &'a [u8],
    source: &'a [u8],
}

fn corrupt(key: &[u8], reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what: format!("case {}", String::from_utf8_lossy(key)),
        reason: reason.into(),
    }
}

fn split<'v>(key: &[u8], v: &'v [u8]) -> Result<Stored<'v>, StoreError> {
    let short = || corrupt(key, "value shorter than its header");
    let (_, action, version) = header(v).ok_or_else(short)?;
    let micros = updated_micros(v)
        .map(i64::from_be_bytes)
        .ok_or_else(short)?;
    let len = v
        .get(65..69)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| u32::from_be_bytes(b) as usize)
        .ok_or_else(short)?;
    let content = v
        .get(HEADER..HEADER + len)
        .ok_or_else(|| corrupt(key, "content shorter than its length"))?;
    let updated_at = DateTime::<Utc>::from_timestamp_micros(micros)
        .ok_or_else(|| corrupt(key, format!("update time {micros} out of range")))?;
    Ok(Stored {
        action,
        version,
        updated_at,
        content,
        source: &v[HEADER + len..],
    })
}

fn decode_case(key: &[u8], v: &[u8]) -> Result<Case, StoreError> {
    let s = split(key, v)?;
    let mut case: Case =
        serde_json::from_slice(s.content).map_err(|e| corrupt(key, e.to_string()))?;
    case.source = serde_json::from_slice(s.source).map_err(|e| corrupt(key, e.to_string()))?;
    case.version = s.version;
    case.updated_at = s.updated_at;
    Ok(case)
}

/// A stored case as its JSON bytes, assembled without decoding (for serving pages fast).
#[derive(Debug, Clone)]
pub struct RawCase {
    /// Case number.
    pub case_id: String,
    /// Action.
    pub action: Action,
    /// Version.
    pub version: u64,
    /// The case's JSON, as [`Case`] serializes it (field order aside).
    pub json: Vec<u8>,
}

/// The end of every stored content JSON: the neutral provenance, version and time that
/// [`Case::into_content`] puts there (they are the struct's last fields).
fn neutral_tail() -> &'static [u8] {
    static TAIL: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TAIL.get_or_init(|| {
        format!(
            "\"source\":{},\"version\":0,\"updated_at\":{}}}",
            serde_json::to_string(&crate::model::Source::neutral()).unwrap_or_default(),
            serde_json::to_string(&DateTime::<Utc>::UNIX_EPOCH).unwrap_or_default()
        )
        .into_bytes()
    })
}

/// Splices the stored provenance, version and time into the content JSON in place of the neutral
/// ones; falls back to decoding when the stored form is not the expected one.
fn raw_case(key: &[u8], v: &[u8]) -> Result<RawCase, StoreError> {
    let Stored {
        action,
        version,
        updated_at,
        content,
        source,
    } = split(key, v)?;
    let action = *Action::ALL
        .get(usize::from(action))
        .ok_or_else(|| corrupt(key, "bad action index"))?;
    let case_id = key
        .iter()
        .position(|b| *b == 0)
        .map(|i| String::from_utf8_lossy(&key[i + 1..]).into_owned())
        .ok_or_else(|| corrupt(key, "key without a case number"))?;
    let json = match content.strip_suffix(neutral_tail()) {
        Some(head) => {
            let mut out = Vec::with_capacity(content.len() + source.len());
            out.extend_from_slice(head);
            out.extend_from_slice(b"\"source\":");
            out.extend_from_slice(source);
            out.extend_from_slice(format!(",\"version\":{version},\"updated_at\":").as_bytes());
            out.extend_from_slice(
                serde_json::to_string(&updated_at)
                    .unwrap_or_default()
                    .as_bytes(),
            );
            out.push(b'}');
            out
        }
        None => {
            serde_json::to_vec(&decode_case(key, v)?).map_err(|e| corrupt(key, e.to_string()))?
        }
    };
    Ok(RawCase {
        case_id,
        action,
        version,
        json,
    })
}

/// The positions an outbox value lists (into its change-log batch).
pub(super) fn outbox_positions(k: &[u8], v: &[u8]) -> Result<Vec<u32>, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        what: format!("outbox batch {}", hex::encode(k)),
        reason: e.to_string(),
    })
}

/// The version of a stored case value, if it was mapped from a raw record with digest `raw`.
fn version_if_raw(v: &[u8], raw: &[u8; 16]) -> Option<u64> {
    match (v.get(RAW), header(v)) {
        (Some(r), Some((_, _, version))) if r == raw => Some(version),
        _ => None,
    }
}

fn add_count(v: Option<Bytes>, delta: i64) -> u64 {
    let cur = v
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    cur.saturating_add_signed(delta)
}

pub(super) fn abort(what: &str, e: impl std::fmt::Display) -> TxError {
    TxError::Abort(StoreError::Corrupt {
        what: what.into(),
        reason: e.to_string(),
    })
}

pub(super) fn json<T: Serialize + ?Sized>(what: &str, v: &T) -> Result<Vec<u8>, TxError> {
    serde_json::to_vec(v).map_err(|e| abort(what, e))
}

/// Where a destination takes a case: the destinations, by name, that must be sent it.
pub type Route<'a> = &'a dyn Fn(&Uscc, Action) -> Vec<String>;

impl Store {
    /// Writes cases in one transaction. Each case whose content differs from the stored one gets the
    /// next version, a change-log entry and an outbox entry for each destination `route` names; an
    /// identical case is left alone. Returns one outcome per input case, in order. Durable at the
    /// next [`Store::flush`], on either backend (the transaction commits, every reader sees it,
    /// but PostgreSQL does not wait for the disk: see `kv::transaction_deferred`).
    pub fn upsert_cases(
        &self,
        cases: &[Case],
        route: Route<'_>,
    ) -> Result<Vec<UpsertOutcome>, StoreError> {
        let prepared: Vec<PreparedCase> = cases
            .iter()
            .map(|c| PreparedCase::new(c.clone(), None))
            .collect();
        self.upsert_prepared(&prepared, route)
    }

    /// [`Store::upsert_cases`] for cases serialized by the caller (ingest does it on its mapping
    /// thread, off the writer's path). The batch's change-log entries are stored as one value keyed
    /// by the batch's first sequence number, and so are each destination's outbox entries: one
    /// write per batch instead of one per case.
    ///
    /// The workbench's indexes are written in the same transaction, so they never lag the
    /// cases: the party entry of each new version, the transfer index, the time of the version
    /// it replaces. So are the leads: a new case judged by the caller has its leads (if any)
    /// stored with it; any other new version is marked for the leads refresh (`leads_pending`).
    pub fn upsert_prepared(
        &self,
        cases: &[PreparedCase],
        route: Route<'_>,
    ) -> Result<Vec<UpsertOutcome>, StoreError> {
        let now = Utc::now();
        let outcomes = kv::transaction_deferred(
            "case transaction",
            [
                &self.cases,
                &self.changes,
                &self.outbox,
                &self.counts,
                &self.meta,
                &self.parties,
                &self.transfers,
                &self.case_versions,
                &self.leads,
                &self.leads_pending,
            ],
            |[
                tc,
                tch,
                tout,
                tcount,
                tmeta,
                tparty,
                ttransfer,
                tversion,
                tlead,
                tpending,
            ]| {
                tc.prefetch(cases.iter().map(|p| p.key.as_slice()))?;
                let first: u64 = match tmeta.get(NEXT_SEQ)? {
                    Some(v) => {
                        serde_json::from_slice(&v).map_err(|e| abort("change sequence", e))?
                    }
                    None => 1,
                };
                let mut seq = first;
                let mut outcomes = Vec::with_capacity(cases.len());
                let mut changes = ChangeBatch {
                    at: now,
                    entries: Vec::new(),
                };
                // Per destination, the positions in this batch's change-log value it must be sent:
                // the entries themselves are already in the change log.
                let mut outbox: BTreeMap<String, Vec<u32>> = BTreeMap::new();
                let mut counts: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
                // The batch's party index entries, one value per bucket (see `store/parties.rs`):
                // at most 64 writes per batch instead of one per case.
                let mut parties: BTreeMap<[u8; 2], Vec<u8>> = BTreeMap::new();
                // The versions left to the leads refresh: one mark for the batch.
                let mut pending = Vec::new();
                for p in cases {
                    let old = tc.get(&p.key)?;
                    let (version, old_action) = match old.as_deref().map(header) {
                        Some(Some((d, _, v))) if d == &p.digest[..] => {
                            outcomes.push(UpsertOutcome::Unchanged { version: v });
                            continue;
                        }
                        Some(Some((_, a, v))) => (v + 1, Some(a)),
                        Some(None) => {
                            return Err(abort(
                                &format!("case {}", String::from_utf8_lossy(&p.key)),
                                "value shorter than its header",
                            ));
                        }
                        None => (1, None),
                    };
                    let idx = action_index(p.action);
                    let mut value = Vec::with_capacity(HEADER + p.content.len() + p.source.len());
                    value.extend_from_slice(&p.digest);
                    value.extend_from_slice(&p.raw);
                    value.push(idx);
                    value.extend_from_slice(&version.to_be_bytes());
                    value.extend_from_slice(&now.timestamp_micros().to_be_bytes());
                    value.extend_from_slice(&(p.content.len() as u32).to_be_bytes());
                    value.extend_from_slice(&p.content);
                    value.extend_from_slice(&p.source);
                    if old.is_some() {
                        tc.insert(p.key.as_slice(), value)?;
                    } else {
                        tc.insert_new(p.key.as_slice(), value)?;
                    }
                    let (id, name) = &p.party;
                    super::parties::push_entry(
                        parties.entry(super::parties::bucket(id)).or_default(),
                        id,
                        &p.key,
                        name,
                    );
                    if p.in_transfers {
                        // What its judging found of its deadlines; a version left to the refresh
                        // is unchecked.
                        let check = match (&p.leads, version) {
                            (Some(j), 1) => j.transfer,
                            _ => super::TransferCheck::Unchecked,
                        };
                        ttransfer.insert(
                            p.key.as_slice(),
                            super::supervision::transfer_value(version, check),
                        )?;
                    } else if version > 1 {
                        ttransfer.remove(p.key.as_slice())?;
                    }
                    if let Some(at) = old.as_deref().and_then(updated_micros) {
                        tversion.insert(
                            super::supervision::version_key(&p.key, version - 1),
                            &at[..],
                        )?;
                    }
                    match (&p.leads, version) {
                        (Some(judged), 1) => {
                            for (k, v) in &judged.leads {
                                tlead.insert(super::leads::lead_key(&p.key, k), v.as_slice())?;
                            }
                        }
                        _ => super::leads::push_batch_mark(&mut pending, &p.key, version),
                    }

                    changes
                        .entries
                        .push((p.unit_code.clone(), p.case_id.clone(), version));
                    for dest in route(&p.unit_code, p.action) {
                        outbox.entry(dest).or_default().push((seq - first) as u32);
                    }
                    if old_action != Some(idx) {
                        if let Some(o) = old_action {
                            *counts.entry(counts_key(&p.unit_code, o)).or_default() -= 1;
                        }
                        *counts.entry(counts_key(&p.unit_code, idx)).or_default() += 1;
                    }
                    outcomes.push(if version == 1 {
                        UpsertOutcome::Created { seq }
                    } else {
                        UpsertOutcome::Updated { version, seq }
                    });
                    seq += 1;
                }
                if changes.entries.is_empty() {
                    return Ok(outcomes);
                }
                // The keys below end in `first`, past every sequence number used so far (read in
                // this transaction): they are new.
                tch.insert_new(first.to_be_bytes(), json("change log", &changes)?)?;
                if !pending.is_empty() {
                    tpending.insert_new(super::leads::batch_mark_key(first), pending)?;
                }
                for (bucket, entries) in parties {
                    let mut k = bucket.to_vec();
                    k.extend_from_slice(&first.to_be_bytes());
                    tparty.insert_new(k, entries)?;
                }
                for (dest, entries) in outbox {
                    let mut k = dest.into_bytes();
                    k.push(0);
                    k.extend_from_slice(&first.to_be_bytes());
                    tout.insert_new(k, json("outbox", &entries)?)?;
                }
                // The counts this batch changes, read in one query on PostgreSQL.
                tcount.prefetch(counts.keys().map(Vec::as_slice))?;
                for (k, delta) in counts {
                    let n = add_count(tcount.get(&k)?, delta);
                    tcount.insert(k, n.to_be_bytes())?;
                }
                tmeta.insert(NEXT_SEQ, json("change sequence", &seq)?)?;
                Ok(outcomes)
            },
        )?;
        // This instance reads its own writes at once (see `cache.rs`).
        self.written();
        Ok(outcomes)
    }

    /// Whether the case stored under `key` was mapped from a raw record with digest `raw` — then
    /// mapping that record again would give the same content, and ingest can skip it. Returns the
    /// stored version when so.
    pub fn unchanged_raw(&self, key: &[u8], raw: &[u8; 16]) -> Result<Option<u64>, StoreError> {
        if raw == &NO_RAW {
            return Ok(None);
        }
        let v = self.cases.get(key).map_err(db_err("case read"))?;
        Ok(v.and_then(|v| version_if_raw(&v, raw)))
    }

    /// [`Store::unchanged_raw`] of several records at once, in their order (one query on
    /// PostgreSQL).
    pub fn unchanged_raws(
        &self,
        records: &[(&[u8], &[u8; 16])],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        let keys: Vec<&[u8]> = records.iter().map(|(k, _)| *k).collect();
        let values = self.cases.get_many(&keys).map_err(db_err("case read"))?;
        Ok(records
            .iter()
            .zip(values)
            .map(|((_, raw), v)| match *raw == &NO_RAW {
                true => None,
                false => version_if_raw(&v?, raw),
            })
            .collect())
    }

    /// One case.
    pub fn get_case(&self, unit: &Uscc, case_id: &CaseId) -> Result<Option<Case>, StoreError> {
        let key = case_key(unit, case_id);
        match self.case_value(&key)? {
            None => Ok(None),
            Some(v) => decode_case(&key, &v).map(Some),
        }
    }

    /// The case stored under its store key.
    pub fn get_case_by_key(&self, key: &[u8]) -> Result<Option<Case>, StoreError> {
        match self.cases.get(key).map_err(db_err("case read"))? {
            None => Ok(None),
            Some(v) => decode_case(key, &v).map(Some),
        }
    }

    /// [`Store::get_case`] as JSON bytes, without decoding the case.
    pub fn get_case_raw(
        &self,
        unit: &Uscc,
        case_id: &CaseId,
    ) -> Result<Option<RawCase>, StoreError> {
        let key = case_key(unit, case_id);
        match self.case_value(&key)? {
            None => Ok(None),
            Some(v) => raw_case(&key, &v).map(Some),
        }
    }

    /// [`Store::get_case_raw`] of several cases at once, in their order (one query on
    /// PostgreSQL).
    pub fn get_cases_raw(
        &self,
        cases: &[(&Uscc, &CaseId)],
    ) -> Result<Vec<Option<RawCase>>, StoreError> {
        let keys: Vec<Vec<u8>> = cases.iter().map(|(u, c)| case_key(u, c)).collect();
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let values = self.cases.get_many(&refs).map_err(db_err("case read"))?;
        keys.iter()
            .zip(values)
            .map(|(k, v)| v.map(|v| raw_case(k, &v)).transpose())
            .collect()
    }

    /// A unit's stored values in case-id order, starting after case id `after` when given.
    fn unit_range(&self, unit: &Uscc, after: Option<&str>) -> kv::Iter {
        let mut start = unit.as_str().as_bytes().to_vec();
        start.push(0);
        if let Some(a) = after {
            // The smallest key after `unit 0 after` is that key with a 0 byte appended.
            start.extend_from_slice(a.as_bytes());
            start.push(0);
        }
        let mut end = unit.as_str().as_bytes().to_vec();
        end.push(1);
        self.cases.range(start..end)
    }

    /// All cases of a unit, in case-id order.
    pub fn unit_cases(
        &self,
        unit: &Uscc,
    ) -> impl Iterator<Item = Result<Case, StoreError>> + use<> {
        self.unit_cases_after(unit, None)
    }

    /// Cases of a unit in case-id order, starting after `after` (a case id) when given.
    pub fn unit_cases_after(
        &self,
        unit: &Uscc,
        after: Option<&str>,
    ) -> impl Iterator<Item = Result<Case, StoreError>> + use<> {
        self.unit_range(unit, after).map(|kv| {
            let (k, v) = kv.map_err(db_err("case scan"))?;
            decode_case(&k, &v)
        })
    }

    /// [`Store::unit_cases_after`] as JSON bytes, without decoding the cases.
    pub fn unit_cases_raw_after(
        &self,
        unit: &Uscc,
        after: Option<&str>,
    ) -> impl Iterator<Item = Result<RawCase, StoreError>> + use<> {
        self.unit_range(unit, after).map(|kv| {
            let (k, v) = kv.map_err(db_err("case scan"))?;
            raw_case(&k, &v)
        })
    }

    /// Every case, in key order.
    pub fn all_cases(&self) -> impl Iterator<Item = Result<Case, StoreError>> + use<> {
        self.cases.iter().map(|kv| {
            let (k, v) = kv.map_err(db_err("case scan"))?;
            decode_case(&k, &v)
        })
    }

    /// Every case as stored (key and value), in key order, undecoded: for a reader that hands
    /// the decoding ([`Store::decode_stored`]) to other threads.
    pub fn all_cases_stored(
        &self,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + use<> {
        self.cases.iter().map(|kv| {
            let (k, v) = kv.map_err(db_err("case scan"))?;
            Ok((k.to_vec(), v.to_vec()))
        })
    }

    /// Decodes a case [`Store::all_cases_stored`] gave, for judging it: its provenance is left
    /// neutral (rules never read it), which spares a decode per case in a rebuild.
    pub fn decode_stored(key: &[u8], value: &[u8]) -> Result<Case, StoreError> {
        let s = split(key, value)?;
        let mut case: Case =
            serde_json::from_slice(s.content).map_err(|e| corrupt(key, e.to_string()))?;
        case.version = s.version;
        case.updated_at = s.updated_at;
        Ok(case)
    }

    /// Every case's store key, in key order.
    pub fn all_case_keys(&self) -> impl Iterator<Item = Result<Vec<u8>, StoreError>> + use<> {
        self.cases
            .iter()
            .keys()
            .map(|k| k.map(|k| k.to_vec()).map_err(db_err("case scan")))
    }

    /// Calls `f` with the content JSON of each case of `unit` that contains one of `needles`; the
    /// others are skipped after a byte search (how a quarter's cases are found fast: by their
    /// decision dates' text). A needle can also match free text, so callers check what they get.
    pub fn unit_contents_containing(
        &self,
        unit: &Uscc,
        needles: &[memchr::memmem::Finder<'_>],
        mut f: impl FnMut(&[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for kv in self.unit_range(unit, None) {
            let (k, v) = kv.map_err(db_err("case scan"))?;
            let content = split(&k, &v)?.content;
            if needles.iter().any(|n| n.find(content).is_some()) {
                f(content)?;
            }
        }
        Ok(())
    }

    /// Number of stored cases.
    pub fn case_count(&self) -> Result<usize, StoreError> {
        self.cases.len().map_err(db_err("case count"))
    }

    /// Number of change-log entries (sequence numbers are dense, from 1).
    pub fn change_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .get_meta::<u64>(NEXT_SEQ)?
            .map_or(0, |n| n.saturating_sub(1)))
    }

    /// Up to `limit` change-log entries after `after`, in sequence order.
    pub fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let start = after.saturating_add(1);
        // The batch holding `start` begins at or before it: one read lately, or the last key.
        let mut next = match self.recent.covering(start) {
            Some(first) => first,
            None => match (self.changes.last_key_at_or_before(&start.to_be_bytes()))
                .map_err(db_err("change scan"))?
            {
                Some(k) => batch_first(&k)?,
                None => start,
            },
        };
        let mut out = Vec::new();
        while out.len() < limit {
            let Some((first, batch)) = self.change_batch_from(next)? else {
                break;
            };
            out.extend(
                (first..)
                    .zip(&batch.entries)
                    .filter(|(seq, _)| *seq >= start)
                    .take(limit - out.len())
                    .map(|(seq, (unit_code, case_id, version))| Change {
                        seq,
                        unit_code: unit_code.clone(),
                        case_id: case_id.clone(),
                        version: *version,
                        at: batch.at,
                    }),
            );
            // Batches are dense: the next begins where this one ends.
            next = first + (batch.entries.len() as u64).max(1);
        }
        Ok(out)
    }

    /// The change-log batch stored under `key`, or else the first after it (`None`: the log
    /// ends there), decoded, with its first sequence number.
    fn change_batch_from(&self, key: u64) -> Result<Option<Decoded>, StoreError> {
        if let Some(batch) = self.recent.get(key) {
            return Ok(Some((key, batch)));
        }
        let found = match self
            .changes
            .get(key.to_be_bytes())
            .map_err(db_err("change scan"))?
        {
            Some(v) => Some((key, v)),
            None => match self
                .changes
                .range(key.to_be_bytes()..)
                .next()
                .transpose()
                .map_err(db_err("change scan"))?
            {
                Some((k, v)) => Some((batch_first(&k)?, v)),
                None => None,
            },
        };
        let Some((first, value)) = found else {
            return Ok(None);
        };
        let batch: ChangeBatch =
            serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                what: format!("change batch {first}"),
                reason: e.to_string(),
            })?;
        let batch = Arc::new(batch);
        self.recent.put(first, batch.clone());
        Ok(Some((first, batch)))
    }

    /// Entries waiting in the outbox, over every destination.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        let mut n = 0u64;
        for kv in self.outbox.iter() {
            let (k, v) = kv.map_err(db_err("outbox scan"))?;
            n += outbox_positions(&k, &v)?.len() as u64;
        }
        Ok(n)
    }

    /// Outbox entries of one destination, oldest first, with their change-log sequence numbers.
    pub fn outbox(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<(u64, OutboxEntry)>, StoreError> {
        let mut prefix = destination.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.outbox.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(db_err("outbox scan"))?;
            let positions = outbox_positions(&k, &v)?;
            let first = k
                .get(prefix.len()..)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt {
                    what: format!("outbox key {}", hex::encode(&k)),
                    reason: "no batch sequence number".into(),
                })?;
            let batch = self
                .changes
                .get(first.to_be_bytes())
                .map_err(db_err("change read"))?
                .ok_or_else(|| StoreError::Corrupt {
                    what: format!("outbox batch {first}"),
                    reason: "its change-log batch is missing".into(),
                })?;
            let batch: ChangeBatch =
                serde_json::from_slice(&batch).map_err(|e| StoreError::Corrupt {
                    what: format!("change batch {first}"),
                    reason: e.to_string(),
                })?;
            for i in positions {
                let (unit_code, case_id, version) = batch
                    .entries
                    .get(i as usize)
                    .cloned()
                    .ok_or_else(|| StoreError::Corrupt {
                        what: format!("outbox batch {first}"),
                        reason: format!("position {i} beyond its change-log batch"),
                    })?;
                let change_seq = first + u64::from(i);
                out.push((
                    change_seq,
                    OutboxEntry {
                        unit_code,
                        case_id,
                        version,
                        change_seq,
                        batch: first,
                    },
                ));
            }
            if out.len() >= limit {
                out.truncate(limit);
                break;
            }
        }
        Ok(out)
    }

    /// Case counts per unit and action.
    pub fn unit_counts(&self) -> Result<BTreeMap<Uscc, UnitCounts>, StoreError> {
        let mut out: BTreeMap<Uscc, UnitCounts> = BTreeMap::new();
        for kv in self.counts.iter() {
            let (k, v) = kv.map_err(db_err("count scan"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PartyId, ResidentId};
    use crate::store::party_id;

    fn cases() -> Vec<Case> {
        let golden = crate::ingest::golden::golden_cases();
        let org = golden
            .iter()
            .find(|c| matches!(c.party.id, Some(PartyId::Uscc(_))))
            .unwrap()
            .clone();
        let person = golden
            .iter()
            .find(|c| matches!(c.party.id, Some(PartyId::Resident(_))))
            .unwrap()
            .clone();
        let mut out = Vec::new();
        for (i, base) in [&org, &org, &person].into_iter().enumerate() {
            let mut c = base.clone();
            c.case_id = CaseId::parse(&format!("PARTY-{i}")).unwrap();
            out.push(c);
        }
        out
    }

    #[test]
    fn the_party_index_follows_each_case_write() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let mut cases = cases();
        store.upsert_cases(&cases, &|_, _| Vec::new()).unwrap();
        let org = party_id(&cases[0]);
        assert_eq!(org[0], b'U');
        let found = store.cases_of_party(&org, 10).unwrap();
        assert_eq!(found, vec![cases[0].key(), cases[1].key()]);
        let person = party_id(&cases[2]);
        assert_eq!(
            store.cases_of_party(&person, 10).unwrap(),
            vec![cases[2].key()]
        );
        assert_eq!(store.cases_of_party(&org, 1).unwrap().len(), 1);
        assert!(store.cases_of_party(b"", 10).unwrap().is_empty());

        // Name search keeps only what `keep` accepts (the caller's ports).
        let unit = cases[0].unit_code.clone();
        let name: String = cases[0].party.name.chars().skip(1).take(3).collect();
        let of_unit = |k: &[u8]| k.starts_with(unit.as_str().as_bytes());
        let hits = store.cases_by_party_name(&name, 10, of_unit).unwrap();
        assert!(
            hits.contains(&cases[0].key()) && hits.contains(&cases[1].key()),
            "{hits:?}"
        );
        assert_eq!(
            store.cases_by_party_name(&name, 1, of_unit).unwrap().len(),
            1
        );
        let other = Uscc::parse("91350200776049653A").unwrap();
        let of_other = |k: &[u8]| k.starts_with(other.as_str().as_bytes());
        assert!(
            store
                .cases_by_party_name(&name, 10, of_other)
                .unwrap()
                .is_empty()
        );

        // A new version with another party moves the entry.
        cases[1].party.id = Some(PartyId::Resident(
            ResidentId::parse(match &cases[2].party.id {
                Some(PartyId::Resident(r)) => r.as_str(),
                _ => unreachable!(),
            })
            .unwrap(),
        ));
        store
            .upsert_cases(&cases[1..2], &|_, _| Vec::new())
            .unwrap();
        let mut both = vec![cases[1].key(), cases[2].key()];
        both.sort();
        assert_eq!(store.cases_of_party(&person, 10).unwrap(), both);
        // The entry under the old id stays; the case it points at says it is stale.
        let org_keys = store.cases_of_party(&org, 10).unwrap();
        assert_eq!(org_keys, vec![cases[0].key(), cases[1].key()]);
        let current: Vec<Vec<u8>> = org_keys
            .iter()
            .filter(|k| party_id(&store.get_case_by_key(k).unwrap().unwrap()) == org)
            .cloned()
            .collect();
        assert_eq!(current, vec![cases[0].key()]);

        // Writing the same cases again changes nothing.
        store.upsert_cases(&cases, &|_, _| Vec::new()).unwrap();
        assert_eq!(store.cases_of_party(&person, 10).unwrap(), both);
        assert_eq!(store.cases_of_party(&org, 10).unwrap(), org_keys);
    }

    #[test]
    fn judged_leads_of_a_new_case_are_stored_with_it_and_anything_else_waits_for_the_refresh() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let none = |_: &Uscc, _: Action| Vec::new();
        let mut cases = cases();
        let lead = |c: &Case| JudgedLeads {
            leads: vec![("k".into(), format!("\"{}\"", c.case_id).into_bytes())],
            ..Default::default()
        };
        // New and judged: its leads are stored, nothing is pending. New and not judged: pending.
        let judged = PreparedCase::new(cases[0].clone(), None).judged(Some(lead(&cases[0])));
        let quiet = PreparedCase::new(cases[1].clone(), None).judged(Some(JudgedLeads::default()));
        let unjudged = PreparedCase::new(cases[2].clone(), None);
        store
            .upsert_prepared(&[judged, quiet, unjudged], &none)
            .unwrap();
        let stored: Vec<String> = store.case_leads(&cases[0].key()).unwrap();
        assert_eq!(stored, vec![cases[0].case_id.to_string()]);
        assert!(
            store
                .case_leads::<String>(&cases[1].key())
                .unwrap()
                .is_empty()
        );
        let pending = |store: &Store| {
            let mut all: Vec<(Vec<u8>, u64)> = (store.pending_leads(10).unwrap().into_iter())
                .flat_map(|m| m.cases)
                .collect();
            all.sort();
            all
        };
        assert_eq!(pending(&store), vec![(cases[2].key(), 1)]);

        // A new version, even judged, waits for the refresh (its stored leads must be merged);
        // its leads as judged alone are not written over the stored ones.
        cases[0].title.push_str("（更正）");
        let again = PreparedCase::new(cases[0].clone(), None).judged(Some(JudgedLeads::default()));
        store.upsert_prepared(&[again], &none).unwrap();
        assert_eq!(
            store.case_leads::<String>(&cases[0].key()).unwrap().len(),
            1
        );
        let mut want = vec![(cases[0].key(), 2), (cases[2].key(), 1)];
        want.sort();
        assert_eq!(pending(&store), want);
        // One mark per transaction, cleared as a whole once judged.
        let marks = store.pending_leads(10).unwrap();
        assert_eq!(marks.len(), 2);
        assert!(store.leads_judged(&marks[1]).unwrap());
        assert_eq!(pending(&store), vec![(cases[2].key(), 1)]);
        // A mark cleared already is not cleared again.
        assert!(!store.leads_judged(&marks[1]).unwrap());
    }
}
