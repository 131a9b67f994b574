//! The party index: which cases name a party (by its USCC, resident ID or other document), with
//! the party's name for search. Two trees:
//! - `parties` (the recent entries): `bucket of the party id (u16 BE) · first change-log seq of
//!   a write batch (u64 BE)` → that batch's entries in the bucket, written in the case
//!   transaction. sled spends about ten microseconds on any key it inserts, a third of what a
//!   whole case costs to ingest, so the transaction writes a few dozen values per batch of a
//!   thousand cases, never one key per case.
//! - `parties_sorted`: `the last entry's party id 0x00 case key` → up to [`CHUNK`] entries in
//!   that order: the same entries merged by [`Store::merge_party_index`] (the leads refresh calls
//!   it right after ingest) so a lookup reads a chunk or two instead of a bucket.
//!
//! - `party_watch`: `party id 0x00 case key` → empty: the cases a rule judges with their party's
//!   other decisions (多次). A merge names those whose party has new entries, so a decision
//!   stored later than the one that counts it still gets it judged again, while the decisions
//!   that could only be counted are judged on their own at ingest and never read again.
//!
//! An entry is a party id, a case key and a name, each after its length (u16 BE). One is written
//! per case version; readers drop repeats, and an entry a later version leaves behind (the case
//! now names another party) is filtered by readers, who check the case they read.

use std::collections::BTreeSet;

use super::kv::{self, Bytes};
use super::{Store, StoreError, db_err};
use crate::model::Case;

/// How many buckets the recent entries are spread over: a batch writes at most this many values.
const BUCKETS: u64 = 64;

/// The most entries in a sorted chunk.
pub const CHUNK: usize = 128;

/// The most recent entries merged at once, give or take a bucket (memory of a merge stays near
/// 100 MB).
const SLICE: usize = 500_000;

/// The `meta` entry holding, per bucket, the last write batch merged.
const MERGED: &str = "party_index_merged";

/// The party index id of a case's party: `U` and the USCC, `R` and the resident ID number, or
/// `O`, the document type's code, `:` and the number; empty when the party has no document.
pub fn party_id(case: &Case) -> Vec<u8> {
    use crate::model::PartyId;
    match &case.party.id {
        Some(PartyId::Uscc(u)) => [b"U", u.as_str().as_bytes()].concat(),
        Some(PartyId::Resident(r)) => [b"R", r.as_str().as_bytes()].concat(),
        Some(PartyId::Other { id_type, number }) => {
            format!("O{}:{number}", id_type.code()).into_bytes()
        }
        None => Vec::new(),
    }
}

/// The bucket of a party id among the recent entries: FNV-1a, stable across builds (buckets are
/// stored).
pub(super) fn bucket(id: &[u8]) -> [u8; 2] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ((h % BUCKETS) as u16).to_be_bytes()
}

/// Appends one entry to a value. Parts longer than a u16 are cut (ids and keys are far shorter).
pub(super) fn push_entry(v: &mut Vec<u8>, id: &[u8], case_key: &[u8], name: &str) {
    for part in [id, case_key, name.as_bytes()] {
        let part = &part[..part.len().min(usize::from(u16::MAX))];
        v.extend_from_slice(&(part.len() as u16).to_be_bytes());
        v.extend_from_slice(part);
    }
}

fn cut_short() -> StoreError {
    StoreError::Corrupt {
        what: "party index entry".into(),
        reason: "cut short".into(),
    }
}

/// The entries of a value: party id, case key, name.
fn entries(mut v: &[u8]) -> impl Iterator<Item = Result<[&[u8]; 3], StoreError>> {
    std::iter::from_fn(move || {
        if v.is_empty() {
            return None;
        }
        let mut parts: [&[u8]; 3] = [&[]; 3];
        for part in &mut parts {
            let Some((len, rest)) = v.split_first_chunk::<2>() else {
                v = &[];
                return Some(Err(cut_short()));
            };
            let Some((p, rest)) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))
            else {
                v = &[];
                return Some(Err(cut_short()));
            };
            *part = p;
            v = rest;
        }
        Some(Ok(parts))
    })
}

/// The sorted index's key of an entry: party id, 0, case key.
fn sort_key(id: &[u8], case_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 1 + case_key.len());
    k.extend_from_slice(id);
    k.push(0);
    k.extend_from_slice(case_key);
    k
}

/// An entry held for a merge: its sort key, where the id ends in it, and the name.
type Held = (Vec<u8>, usize, Vec<u8>);

fn held(e: [&[u8]; 3]) -> Held {
    let [id, case, name] = e;
    (sort_key(id, case), id.len(), name.to_vec())
}

fn encode(chunk: &[Held]) -> Vec<u8> {
    let mut v = Vec::new();
    for (k, cut, name) in chunk {
        let name = String::from_utf8_lossy(name);
        push_entry(&mut v, &k[..*cut], &k[cut + 1..], &name);
    }
    v
}

/// What a merge of the party index did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Merged {
    /// Entries merged.
    pub entries: u64,
    /// The watched cases whose party has new entries, in key order, each once.
    pub watched: BTreeSet<Vec<u8>>,
}

/// Adds to `out` the watched case keys (`watch`: sorted `party_watch` keys) whose party id has
/// an entry in `new` (sorted): one pass over both.
fn watched(watch: &[Bytes], new: &[Held], out: &mut BTreeSet<Vec<u8>>) {
    // Watch keys are `id 0x00 case key`; ids hold no 0 byte, so key order is id order.
    let id_of = |x: &[u8]| -> (usize, bool) {
        x.iter()
            .position(|b| *b == 0)
            .map_or((x.len(), false), |at| (at, true))
    };
    let mut w = 0;
    let mut last: Option<&[u8]> = None;
    for (k, cut, _) in new {
        let id = &k[..*cut];
        if last == Some(id) {
            continue;
        }
        last = Some(id);
        while let Some(x) = watch.get(w)
            && &x[..id_of(x).0] < id
        {
            w += 1;
        }
        for x in &watch[w..] {
            let (at, cased) = id_of(x);
            if &x[..at] != id {
                break;
            }
            if cased {
                out.insert(x[at + 1..].to_vec());
            }
        }
    }
}

/// Keeps the `limit` smallest case keys `keep` accepts.
fn keep_smallest(out: &mut BTreeSet<Vec<u8>>, case: &[u8], limit: usize) {
    if out.len() < limit {
        out.insert(case.to_vec());
    } else if out.last().is_some_and(|last| case < last.as_slice()) && !out.contains(case) {
        out.pop_last();
        out.insert(case.to_vec());
    }
}

impl Store {
    /// The keys of the cases whose party has the index id `id` (see [`party_id`]), at most
    /// `limit`, in key order (unit, then case number).
    pub fn cases_of_party(&self, id: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.cases_of_party_where(id, limit, |_| true)
    }

    /// [`Store::cases_of_party`], keeping only the case keys `keep` accepts (the ports a caller
    /// may read) before the limit counts. Reads the sorted chunks that hold the party and the
    /// recent entries of its bucket; memory holds at most `limit` keys.
    pub fn cases_of_party_where(
        &self,
        id: &[u8],
        limit: usize,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        if id.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut out = BTreeSet::new();
        let start = sort_key(id, b"");
        // Chunks are keyed by their last entry: the first chunk ending at or after `start` holds
        // the party's first entry (a forward seek; sled's backward ones are slow).
        'chunks: for kv in self.parties_sorted.range(start.as_slice()..) {
            let (_, v) = kv.map_err(db_err("party index"))?;
            for e in entries(&v) {
                let [of, case, _] = e?;
                match of.cmp(id) {
                    std::cmp::Ordering::Less => continue,
                    std::cmp::Ordering::Greater => break 'chunks,
                    std::cmp::Ordering::Equal if keep(case) => keep_smallest(&mut out, case, limit),
                    std::cmp::Ordering::Equal => {}
                }
            }
        }
        let through = self.merged_through()?;
        let b = u16::from_be_bytes(bucket(id));
        for kv in self.unmerged(b, &through) {
            let (_, v) = kv.map_err(db_err("party index"))?;
            for e in entries(&v) {
                let [of, case, _] = e?;
                if of == id && keep(case) {
                    keep_smallest(&mut out, case, limit);
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The keys of the cases whose party name, as indexed, contains `needle` and that `keep`
    /// accepts (the ports a caller may read), at most `limit`: a scan of the index's short
    /// entries, never of the cases themselves. An entry may be stale: callers check the case
    /// they read.
    pub fn cases_by_party_name(
        &self,
        needle: &str,
        limit: usize,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let through = self.merged_through()?;
        let recent = (0..BUCKETS as u16).flat_map(|b| self.unmerged(b, &through));
        for v in self.parties_sorted.iter().chain(recent) {
            let (_, v) = v.map_err(db_err("party name scan"))?;
            for e in entries(&v) {
                let [_, case, name] = e?;
                if !std::str::from_utf8(name).is_ok_and(|n| n.contains(needle)) {
                    continue;
                }
                if keep(case) && !out.iter().any(|o| o == case) {
                    out.push(case.to_vec());
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Per bucket, the last write batch whose recent entries are merged into the sorted chunks.
    fn merged_through(&self) -> Result<Vec<u64>, StoreError> {
        Ok(self
            .get_meta::<Vec<u64>>(MERGED)?
            .filter(|w| w.len() == BUCKETS as usize)
            .unwrap_or_else(|| vec![0; BUCKETS as usize]))
    }

    /// The recent values of `bucket` not yet merged.
    fn unmerged(&self, bucket: u16, merged: &[u64]) -> kv::Iter {
        let after = merged.get(usize::from(bucket)).copied().unwrap_or(0);
        let mut start = bucket.to_be_bytes().to_vec();
        start.extend_from_slice(&after.saturating_add(1).to_be_bytes());
        // Keys are two bucket bytes then the sequence: everything below the next bucket.
        let end = bucket.saturating_add(1).to_be_bytes().to_vec();
        self.parties.range(start..end)
    }

    /// Records that `case_key` is judged with its party's other decisions (see `party_watch`).
    pub fn watch_party(&self, id: &[u8], case_key: &[u8]) -> Result<(), StoreError> {
        self.party_watch
            .insert(sort_key(id, case_key), &[][..])
            .map(drop)
            .map_err(db_err("party watch"))
    }

    /// Merges the recent entries into the sorted chunks, a slice of whole buckets at a time, so
    /// lookups read a chunk or two. The chunks and how far each bucket is merged are written in
    /// one transaction; merged recent values are left where they are (removing them one by one
    /// cost sled more than the merge itself). The watched cases (see `party_watch`) whose party
    /// has new entries are marked for the leads refresh. Returns the entries merged and those
    /// cases.
    pub fn merge_party_index(&self) -> Result<Merged, StoreError> {
        let mut merged = Merged::default();
        // Read once, and only when there is something to merge (most refreshes have nothing).
        let mut watch: Option<Vec<Bytes>> = None;
        let mut through = self.merged_through()?;
        loop {
            let mut next = through.clone();
            let mut new: Vec<Held> = Vec::new();
            for b in 0..BUCKETS as u16 {
                if new.len() >= SLICE {
                    break;
                }
                for kv in self.unmerged(b, &through) {
                    let (k, v) = kv.map_err(db_err("party index"))?;
                    let seq = k
                        .get(2..10)
                        .and_then(|s| <[u8; 8]>::try_from(s).ok())
                        .map(u64::from_be_bytes)
                        .ok_or_else(cut_short)?;
                    for e in entries(&v) {
                        new.push(held(e?));
                    }
                    next[usize::from(b)] = seq;
                }
            }
            if next == through {
                return Ok(merged);
            }
            merged.entries += new.len() as u64;
            // The same case under the same party twice (two versions): one entry, the later
            // written (recent values are read in write order within a bucket; any is current).
            new.sort_by(|a, b| a.0.cmp(&b.0));
            new.dedup_by(|later, earlier| {
                let same = later.0 == earlier.0;
                if same {
                    std::mem::swap(&mut earlier.2, &mut later.2);
                }
                same
            });
            let mut woken = BTreeSet::new();
            let watch = match &mut watch {
                Some(w) => w,
                None => watch.insert(
                    self.party_watch
                        .iter()
                        .keys()
                        .collect::<Result<_, _>>()
                        .map_err(db_err("party watch"))?,
                ),
            };
            watched(watch, &new, &mut woken);
            let (removed, written) = self.merge_into_chunks(new)?;
            let marks = serde_json::to_vec(&next).map_err(|e| StoreError::Corrupt {
                what: "party index marks".into(),
                reason: e.to_string(),
            })?;
            // The woken cases are marked for the leads refresh in the same transaction (version 0
            // unless a version is already marked), so a stop right after loses none of them.
            kv::transaction(
                "party index merge",
                [&self.parties_sorted, &self.meta, &self.leads_pending],
                |[sorted, meta, pending]| {
                    for k in &removed {
                        sorted.remove(k)?;
                    }
                    for (k, v) in &written {
                        sorted.insert(k, v)?;
                    }
                    meta.insert(MERGED, &marks)?;
                    for k in &woken {
                        if pending.get(k)?.is_none() {
                            pending.insert(k, 0u64.to_be_bytes())?;
                        }
                    }
                    Ok(())
                },
            )?;
            merged.watched.extend(woken);
            through = next;
        }
    }

    /// The chunks to remove and to write so that they hold `new` (sorted, distinct) as well as
    /// what they hold now: each chunk a new entry falls in is read once and rewritten, split
    /// into pieces of at most [`CHUNK`] entries; a new entry equal to a held one replaces it.
    /// Chunks are keyed by their last entry; entries after every chunk make new chunks.
    #[allow(clippy::type_complexity)]
    fn merge_into_chunks(
        &self,
        new: Vec<Held>,
    ) -> Result<(Vec<Bytes>, Vec<(Vec<u8>, Vec<u8>)>), StoreError> {
        let (mut removed, mut written) = (Vec::new(), Vec::new());
        let mut new = new.into_iter().peekable();
        while let Some(first) = new.peek() {
            // The chunk this entry falls in: the first one ending at or after it.
            let found = self
                .parties_sorted
                .range(first.0.as_slice()..)
                .next()
                .transpose()
                .map_err(db_err("party index"))?;
            let held_now = match &found {
                Some((_, v)) => entries(v)
                    .map(|e| e.map(held))
                    .collect::<Result<Vec<_>, _>>()?,
                None => Vec::new(),
            };
            let end = found.as_ref().map(|(k, _)| k.clone());
            let mut mine = Vec::new();
            while let Some(e) = new.next_if(|e| {
                end.as_ref()
                    .is_none_or(|end| e.0.as_slice() <= end.as_ref())
            }) {
                mine.push(e);
            }
            let mut all = Vec::with_capacity(held_now.len() + mine.len());
            let (mut a, mut b) = (held_now.into_iter().peekable(), mine.into_iter().peekable());
            loop {
                let order = match (a.peek(), b.peek()) {
                    (None, None) => break,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(x), Some(y)) => x.0.cmp(&y.0),
                };
                match order {
                    std::cmp::Ordering::Less => all.extend(a.next()),
                    std::cmp::Ordering::Greater => all.extend(b.next()),
                    // The new entry replaces the one held (a name may have changed).
                    std::cmp::Ordering::Equal => {
                        a.next();
                        all.extend(b.next());
                    }
                }
            }
            if let Some(k) = end {
                removed.push(k);
            }
            // Even pieces, so a chunk that overflows by one does not leave a chunk of one.
            let size = all.len().div_ceil(all.len().div_ceil(CHUNK).max(1)).max(1);
            for piece in all.chunks(size) {
                written.push((piece[piece.len() - 1].0.clone(), encode(piece)));
            }
        }
        // The transaction removes before it writes: a chunk rewritten under its own key stays.
        Ok((removed, written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Writes `entries` as the recent values of one batch with first sequence `seq`.
    fn write_recent(store: &Store, seq: u64, entries: &[(Vec<u8>, Vec<u8>, String)]) {
        let mut by_bucket: BTreeMap<[u8; 2], Vec<u8>> = BTreeMap::new();
        for (id, case, name) in entries {
            push_entry(by_bucket.entry(bucket(id)).or_default(), id, case, name);
        }
        for (b, v) in by_bucket {
            let mut k = b.to_vec();
            k.extend_from_slice(&seq.to_be_bytes());
            store.parties.insert(k, v).unwrap();
        }
    }

    #[test]
    fn lookups_find_every_entry_before_and_after_merges_across_many_chunks() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        // party id -> case keys, as a plain model.
        let mut model: BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>> = BTreeMap::new();
        let mut names: BTreeMap<Vec<u8>, String> = BTreeMap::new();
        let mut x: u64 = 7;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        for round in 0..6u64 {
            let mut batch = Vec::new();
            for i in 0..700 {
                let id = format!("U9132{:05}", next() % 400).into_bytes();
                let case = format!("UNIT{}\0C-{round}-{i:04}", next() % 3).into_bytes();
                let name = format!("公司{}", String::from_utf8_lossy(&id));
                model.entry(id.clone()).or_default().insert(case.clone());
                names.insert(case.clone(), name.clone());
                batch.push((id, case, name));
            }
            // A case written again (a new version) under the same party: one entry.
            batch.push(batch[0].clone());
            write_recent(&store, round * 1000 + 1, &batch);
            let check = |what: &str| {
                for (id, cases) in &model {
                    let found = store.cases_of_party(id, usize::MAX).unwrap();
                    let want: Vec<Vec<u8>> = cases.iter().cloned().collect();
                    assert_eq!(found, want, "{what}: party {}", String::from_utf8_lossy(id));
                    let first: Vec<Vec<u8>> = want.iter().take(2).cloned().collect();
                    assert_eq!(store.cases_of_party(id, 2).unwrap(), first, "{what}: limit");
                }
                assert!(store.cases_of_party(b"U9132zzzzz", 10).unwrap().is_empty());
            };
            check("before the merge");
            if round % 2 == 1 {
                let merged = store.merge_party_index().unwrap().entries;
                assert!(merged >= 701, "{merged}");
                assert_eq!(store.merge_party_index().unwrap().entries, 0, "merged once");
                check("after the merge");
            }
        }
        // Many chunks, none larger than CHUNK, in key order, each keyed by its last entry.
        let mut prev: Option<Vec<u8>> = None;
        let mut chunks = 0;
        for kv in store.parties_sorted.iter() {
            let (k, v) = kv.unwrap();
            let held: Vec<Held> = entries(&v)
                .map(|e| e.map(held))
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(!held.is_empty() && held.len() <= CHUNK);
            assert_eq!(held[held.len() - 1].0.as_slice(), k.as_ref());
            assert!(held.windows(2).all(|w| w[0].0 < w[1].0));
            if let Some(p) = &prev {
                assert!(p < &held[0].0);
            }
            prev = Some(held[held.len() - 1].0.clone());
            chunks += 1;
        }
        assert!(chunks > 20, "{chunks}");
        // Name search finds a party's cases in either tree.
        let (id, cases) = model.iter().next().unwrap();
        let name = names[cases.iter().next().unwrap()].clone();
        let found = store
            .cases_by_party_name(&name, usize::MAX, |_| true)
            .unwrap();
        let found: BTreeSet<Vec<u8>> = found.into_iter().collect();
        assert!(cases.is_subset(&found), "{}", String::from_utf8_lossy(id));
    }

    #[test]
    fn a_cut_entry_is_an_error_not_a_panic() {
        let mut v = Vec::new();
        push_entry(&mut v, b"U1", b"K", "名");
        for cut in 0..v.len() {
            let parsed: Vec<_> = entries(&v[..cut]).collect();
            if cut > 0 {
                assert!(parsed.iter().any(Result::is_err), "cut at {cut}");
            }
        }
    }
}
