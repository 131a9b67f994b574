//! Running ingest: one file through decode → map → validate → store, streaming in batches, with
//! rejects quarantined; the file transport (inbox → `done/` or `failed/` + `.reason`); quarantine retry.
//!
//! Three threads share the work: one decodes, the caller's thread maps, one commits batches (one
//! transaction each). Bounded channels between them keep memory flat whatever the file size.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::adapter::{Adapter, Transport};
use super::decode::{self, Decoder, FileError, Location, RawRecord};
use super::documents::{self, Attached};
use crate::model::{Case, Target};
use crate::store::{
    JudgedLeads, PreparedCase, QuarantineEntry, QuarantineReason, Store, StoreError, UpsertOutcome,
};

/// Counts of one run. `accepted + updated + unchanged + rejected == rows`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Records read.
    pub rows: u64,
    /// New cases.
    pub accepted: u64,
    /// New versions of existing cases.
    pub updated: u64,
    /// Identical to what is stored.
    pub unchanged: u64,
    /// Refused records.
    pub rejected: u64,
    /// New quarantine entries: a refused record already in quarantine from an earlier read of the
    /// same file is not added again, so a re-read shows `rejected` > 0 with `quarantined` 0.
    pub quarantined: u64,
}

impl Summary {
    /// Adds another run's counts.
    pub fn add(&mut self, o: &Summary) {
        self.rows += o.rows;
        self.accepted += o.accepted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.rejected += o.rejected;
        self.quarantined += o.quarantined;
    }
}

/// Progress reported after each committed batch.
pub type Progress<'a> = &'a (dyn Fn(&Summary) + Sync);

/// Why a file (or a run) did not complete.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file cannot be read at all; nothing of it was stored.
    #[error("{path} refused: {source}")]
    Refused {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: FileError,
        /// Peak resident memory of the decoding process in bytes, when it ran in one.
        peak_rss: Option<u64>,
    },
    /// The decoder failed part-way (it crashed, or hit its memory or CPU limit); the records
    /// read before that point were stored, the rest of the file was not read.
    #[error("{path}: {}", stopped_reason(source, summary.rows))]
    DecoderFailed {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: FileError,
        /// Counts of what was read, stored and quarantined before the failure.
        summary: Box<Summary>,
    },
    /// The store failed; the file stays where it is and is read again next time.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gateway is shutting down; what was committed stays, the file is read again next time.
    #[error(
        "stopped by shutdown after {rows} records of {path}; the file stays in place and is re-read next time"
    )]
    Interrupted {
        /// The file.
        path: String,
        /// Records committed.
        rows: u64,
    },
    /// The gate refused the file (its audit entry could not be written); it stays in place.
    #[error("{path} was not read: {reason}")]
    NotAllowed {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A path given to ingest does not exist or cannot be listed.
    #[error("{path}: {reason}")]
    Path {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Why a file was read only in part: the decoder's failure and what became of the records.
fn stopped_reason(source: &FileError, rows: u64) -> String {
    format!(
        "{source}; the {rows} record(s) read before that were stored or quarantined, the rest of \
         the file was not read"
    )
}

/// A check run before each file is read; `Err(reason)` leaves the file unread.
pub type Gate<'a> = &'a (dyn Fn(&Path) -> Result<(), String> + Sync);

/// The destinations a new case version is queued for (by unit and action).
pub type Routes<'a> = &'a (dyn Fn(&crate::model::Uscc, crate::model::Action) -> Vec<String> + Sync);

/// Judges a new case's leads before it is written (see `supervision::leads::judge_new`):
/// `None` leaves them to the leads refresh.
pub type Judge<'a> = &'a (dyn Fn(&Case) -> Option<JudgedLeads> + Sync);

/// Options of a run.
#[derive(Clone, Copy)]
pub struct RunOptions<'a> {
    /// Records per transaction.
    pub batch_size: usize,
    /// Set when the gateway shuts down; checked between batches.
    pub shutdown: Option<&'a AtomicBool>,
    /// Called before each file is read (the gateway writes its audit entry there); an error
    /// stops the run and leaves the file where it is.
    pub gate: Option<Gate<'a>>,
    /// Push destinations: each new case version is queued in the outbox for these, in the same
    /// transaction as the case.
    pub routes: Option<Routes<'a>>,
    /// How files are decoded; `None` decodes in this process under the default limits.
    pub decoder: Option<&'a Decoder>,
    /// Judges each new case's leads on the mapping thread, so they are stored in the case's
    /// own transaction; `None` leaves every case to the leads refresh.
    pub judge: Option<Judge<'a>>,
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            shutdown: None,
            gate: None,
            routes: None,
            decoder: None,
            judge: None,
        }
    }
}

/// What the mapping thread hands the writer: one transaction's worth.
struct Batch {
    cases: Vec<PreparedCase>,
    rejects: Vec<QuarantineEntry>,
    /// Records found identical to their stored case without mapping them again.
    unchanged: u64,
    rows: u64,
}

impl Batch {
    fn with_capacity(n: usize) -> Self {
        Batch {
            cases: Vec::with_capacity(n),
            rejects: Vec::new(),
            unchanged: 0,
            rows: 0,
        }
    }

    fn len(&self) -> usize {
        self.cases.len() + self.rejects.len() + self.unchanged as usize
    }

    /// Takes `other` into this batch (one transaction for both).
    fn absorb(&mut self, other: Batch) {
        self.cases.extend(other.cases);
        self.rejects.extend(other.rejects);
        self.unchanged += other.unchanged;
        self.rows += other.rows;
    }
}

/// At most this many batches go in one transaction on PostgreSQL.
const MERGED_BATCHES: usize = 4;

fn key_hash(key: &[u8]) -> [u64; 2] {
    // Two independent 64-bit SipHashes make a 128-bit key: no false duplicates in practice, at
    // 16 bytes per record instead of the key itself.
    let mut a = std::collections::hash_map::DefaultHasher::new();
    let mut b = std::collections::hash_map::DefaultHasher::new();
    0xA5u8.hash(&mut b);
    key.hash(&mut a);
    key.hash(&mut b);
    [a.finish(), b.finish()]
}

fn reject(
    adapter: &Adapter,
    file: &str,
    rec: Option<&RawRecord>,
    location: &Location,
    reasons: Vec<QuarantineReason>,
    keep: usize,
) -> QuarantineEntry {
    let mut entry = QuarantineEntry {
        id: 0,
        adapter: adapter.name.clone(),
        file: file.to_string(),
        location: location.to_string(),
        reasons,
        raw: Vec::new(),
        cut: Vec::new(),
        at: Utc::now(),
    };
    if let Some(r) = rec {
        for (i, (c, v)) in adapter.columns.iter().zip(r.values()).enumerate() {
            let decoded = r.cut.iter().find(|x| x.column == i);
            entry.keep_raw(&c.name, v, decoded.map(|x| (x.bytes, x.sha256)), keep);
        }
    }
    entry
}

/// The map's own hasher: its keys are already SipHashes, so their first 8 bytes are the hash.
#[derive(Default)]
struct KeyHashHasher(u64);

impl Hasher for KeyHashHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `[u64; 2]` hashes as its 16 bytes (and perhaps a length first); mixing every 8-byte word
        // in keeps the result a good hash whatever the call pattern.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

/// Where a key was first seen in a file, packed in 8 bytes: the kind of location in the top two
/// bits, its number (or an index into the XML paths) below. Keeps the per-file key map small.
#[derive(Default)]
struct Seen {
    first: HashMap<[u64; 2], u64, std::hash::BuildHasherDefault<KeyHashHasher>>,
    paths: Vec<String>,
}

impl Seen {
    const NUMBER: u64 = (1 << 62) - 1;

    /// Records `key` at `at`; if it was seen before, returns where.
    fn insert(&mut self, key: &[u8], at: &Location) -> Option<Location> {
        match self.first.entry(key_hash(key)) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let v = *e.get();
                let n = v & Self::NUMBER;
                Some(match v >> 62 {
                    0 => Location::Row(n),
                    1 => Location::Line(n),
                    2 => Location::Index(n),
                    _ => Location::Element(self.paths.get(n as usize).cloned().unwrap_or_default()),
                })
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(match at {
                    Location::Row(n) => n & Self::NUMBER,
                    Location::Line(n) => (1 << 62) | (n & Self::NUMBER),
                    Location::Index(n) => (2 << 62) | (n & Self::NUMBER),
                    Location::Element(p) => {
                        self.paths.push(p.clone());
                        (3 << 62) | (self.paths.len() as u64 - 1)
                    }
                });
                None
            }
        }
    }
}

/// Turns decoded records into cases or quarantine entries: maps, validates, and refuses a second
/// record with the key of an earlier one in the same file. Shared by ingest and the golden cases.
pub(crate) struct Sifter<'a> {
    adapter: &'a Adapter,
    file: &'a str,
    now: chrono::DateTime<Utc>,
    today: chrono::NaiveDate,
    seen: Seen,
    probe: Probe,
    /// How much of a raw value quarantine keeps.
    keep: usize,
    /// The field limit, for messages.
    field_bytes: u64,
    /// The folder beside the file that holds the documents its records name.
    folder: PathBuf,
    /// What the source calls the documents (the column they are named in).
    kind: String,
    /// The document limits.
    limits: crate::ingest::Limits,
}

/// What becomes of one record: its case, or its quarantine entry.
type Sifted = Result<Case, QuarantineEntry>;

/// Decides when looking for an identical stored record is worth its store read. While the writer
/// commits a batch, sled makes every read wait for the whole transaction (its transactions take a
/// global write lock), so in a file of new cases the lookups would stall the mapping thread once
/// per record. After a window of mostly misses they thin out to one in [`Probe::SPARSE`] records
/// and come back at the first hit. Only speed depends on this: a record not looked up is mapped and
/// compared with the stored content in full.
#[derive(Default)]
struct Probe {
    sparse: bool,
    count: u32,
    probes: u32,
    hits: u32,
}

impl Probe {
    const WINDOW: u32 = 256;
    const SPARSE: u32 = 4096;

    fn wanted(&mut self) -> bool {
        self.count = self.count.wrapping_add(1);
        !self.sparse || self.count.is_multiple_of(Self::SPARSE)
    }

    fn record(&mut self, hit: bool) {
        self.probes += 1;
        self.hits += u32::from(hit);
        if (self.sparse && hit) || self.probes == Self::WINDOW {
            // Mostly misses: go sparse; any hit while sparse: look again at every record.
            self.sparse = !hit && self.hits * 8 < self.probes;
            self.probes = 0;
            self.hits = 0;
        }
    }
}

/// [`Probe`] for whole chunks (a store where each lookup is a round trip): after a chunk with
/// fewer than one hit in eight records, the next [`ChunkProbe::SKIP`] chunks are not looked up;
/// a chunk with more keeps every chunk looked up.
#[derive(Default)]
struct ChunkProbe {
    skip: u32,
}

impl ChunkProbe {
    const SKIP: u32 = 15;

    fn wanted(&mut self) -> bool {
        match self.skip {
            0 => true,
            _ => {
                self.skip -= 1;
                false
            }
        }
    }

    fn record(&mut self, enough_hits: bool) {
        self.skip = if enough_hits { 0 } else { Self::SKIP };
    }
}

impl<'a> Sifter<'a> {
    /// A sifter for one file, read at `path` (its documents are in the folder beside it).
    pub(crate) fn new(
        adapter: &'a Adapter,
        file: &'a str,
        path: &Path,
        now: chrono::DateTime<Utc>,
        today: chrono::NaiveDate,
        limits: &crate::ingest::Limits,
    ) -> Self {
        Self {
            adapter,
            file,
            now,
            today,
            seen: Seen::default(),
            probe: Probe::default(),
            keep: usize::try_from(limits.quarantine_raw_bytes).unwrap_or(usize::MAX),
            field_bytes: limits.field_bytes,
            folder: documents::folder_of(path),
            kind: adapter
                .columns_of(Target::Documents)
                .unwrap_or_else(|| "附件".into()),
            limits: limits.clone(),
        }
    }

    fn record_error(&self, e: decode::RecordError) -> QuarantineEntry {
        let r = QuarantineReason {
            field: "record".into(),
            column: None,
            reason: e.reason,
        };
        let mut q = reject(
            self.adapter,
            self.file,
            None,
            &e.location,
            vec![r],
            self.keep,
        );
        if let Some(x) = e.excerpt {
            q.keep_raw(
                "record",
                Some(&x.head),
                Some((x.bytes, x.sha256)),
                self.keep,
            );
        }
        q
    }

    /// A record holding values the decoder cut at the field limit: refused, naming each.
    fn cut_values(&self, rec: &RawRecord) -> QuarantineEntry {
        let reasons = rec
            .cut
            .iter()
            .map(|c| QuarantineReason {
                field: "record".into(),
                column: self.adapter.columns.get(c.column).map(|x| x.name.clone()),
                reason: crate::ingest::LimitError::new(
                    "field_kib",
                    decode::bytes_shown(self.field_bytes),
                    format!(
                        "the value is {} (SHA-256 {})",
                        decode::bytes_shown(c.bytes),
                        hex::encode(c.sha256)
                    ),
                )
                .to_string(),
            })
            .collect();
        reject(
            self.adapter,
            self.file,
            Some(rec),
            &rec.location,
            reasons,
            self.keep,
        )
    }

    /// Notes that `rec` has `key`; a second record with the same key is refused as a duplicate.
    #[allow(clippy::result_large_err)] // one per record, moved straight into a batch
    fn first_of_key(&mut self, key: &[u8], rec: &RawRecord) -> Result<(), QuarantineEntry> {
        let Some(first) = self.seen.insert(key, &rec.location) else {
            return Ok(());
        };
        let mut parts = key.splitn(2, |b| *b == 0);
        let unit = String::from_utf8_lossy(parts.next().unwrap_or_default());
        let case_id = String::from_utf8_lossy(parts.next().unwrap_or_default());
        let r = QuarantineReason {
            field: Target::CaseId.path().into(),
            column: self.adapter.columns_of(Target::CaseId),
            reason: format!(
                "duplicate: case {case_id} of unit {unit} already appears at {first} of this file"
            ),
        };
        Err(reject(
            self.adapter,
            self.file,
            Some(rec),
            &rec.location,
            vec![r],
            self.keep,
        ))
    }

    /// One record: the case, or why not. Its documents are read and checked, not kept.
    #[allow(clippy::result_large_err)] // one per record, moved straight into a batch
    pub(crate) fn sift(&mut self, item: Result<RawRecord, decode::RecordError>) -> Sifted {
        let rec = item.map_err(|e| self.record_error(e))?;
        let Ok(sifted) = self.map(&rec, &mut |_| Ok::<(), std::convert::Infallible>(()));
        sifted
    }

    /// Maps a record and reads the documents it names, handing each to `keep_document` (the
    /// store) when the record's values are good; only `keep_document`'s failure is an error. A
    /// record with bad values is checked for bad documents too, so quarantine lists both.
    fn map<E>(
        &mut self,
        rec: &RawRecord,
        keep_document: &mut dyn FnMut(&Attached) -> Result<(), E>,
    ) -> Result<Sifted, E> {
        if !rec.cut.is_empty() {
            return Ok(Err(self.cut_values(rec)));
        }
        let (adapter, file, keep) = (self.adapter, self.file, self.keep);
        let (mut case, mut reasons) = match adapter.map_record(rec, file, self.now, self.today) {
            Ok(c) => (Some(c), Vec::new()),
            Err(r) => (None, r),
        };
        match adapter.document_names(rec) {
            // Without a case the mapping has already named this field's problem.
            Err(r) if case.is_some() => reasons.push(r),
            Ok(names) if !names.is_empty() => {
                let (folder, kind, limits) = (&self.folder, &self.kind, &self.limits);
                let attached = match case {
                    Some(_) => documents::attach(folder, &names, kind, limits, keep_document)?,
                    None => documents::attach(folder, &names, kind, limits, &mut |_| Ok(()))?,
                };
                match (attached, case.as_mut()) {
                    (Ok(refs), Some(c)) => c.documents = refs,
                    (Ok(_), None) => {}
                    (Err(problems), _) => reasons.extend(
                        problems
                            .iter()
                            .map(|e| adapter.document_reason(e.to_string())),
                    ),
                }
            }
            _ => {}
        }
        Ok(match case {
            Some(case) if reasons.is_empty() => self.first_of_key(&case.key(), rec).map(|()| case),
            _ => Err(reject(
                adapter,
                file,
                Some(rec),
                &rec.location,
                reasons,
                keep,
            )),
        })
    }

    /// One record against the store: skipped as unchanged when the stored case under its key was
    /// mapped from identical values by this same adapter definition, else mapped and serialized.
    fn sift_into(
        &mut self,
        item: Decoded,
        store: &Store,
        judge: Option<Judge<'_>>,
        batch: &mut Batch,
        known: Option<bool>,
    ) -> Result<(), StoreError> {
        batch.rows += 1;
        let Decoded::Record { rec, sums } = item else {
            if let Decoded::Error(e) = item {
                batch.rejects.push(self.record_error(e));
            }
            return Ok(());
        };
        // Sums the decoding thread left are computed here (see `ingest_as`).
        let Sums { key, raw } = sums.unwrap_or_else(|| Sums::of(self.adapter, &rec));
        // A record with cut values is refused by `map`; it is never "unchanged". Nor is one
        // naming documents: their files may have changed while its values did not.
        let fast = rec.cut.is_empty() && !self.adapter.names_documents(&rec);
        if let Some(key) = key.filter(|_| fast) {
            let hit = match known {
                // Looked up with the rest of its chunk (see `probe_chunk`).
                Some(hit) => hit,
                None if self.probe.wanted() => {
                    let hit = store.unchanged_raw(&key, &raw)?.is_some();
                    self.probe.record(hit);
                    hit
                }
                None => false,
            };
            if hit {
                match self.first_of_key(&key, &rec) {
                    Ok(()) => batch.unchanged += 1,
                    Err(q) => batch.rejects.push(q),
                }
                return Ok(());
            }
        }
        match self.map(&rec, &mut |d| store.put_document(&d.bytes).map(drop))? {
            Ok(case) => {
                let leads = judge.and_then(|j| j(&case));
                batch
                    .cases
                    .push(PreparedCase::new(case, Some(raw)).judged(leads));
            }
            Err(q) => batch.rejects.push(q),
        }
        Ok(())
    }
}

/// Whether each record of `chunk` is stored unchanged, looked up in one read: on PostgreSQL,
/// where a lookup is a round trip, a re-read file would otherwise cost one per record. `None`
/// for a record without a key.
fn probe_chunk(
    chunk: &mut [Decoded],
    adapter: &Adapter,
    store: &Store,
) -> Result<Vec<Option<bool>>, StoreError> {
    for d in chunk.iter_mut() {
        d.complete(adapter);
    }
    let mut at = Vec::new();
    let mut records = Vec::new();
    for (i, d) in chunk.iter().enumerate() {
        if let Decoded::Record {
            sums: Some(Sums {
                key: Some(key),
                raw,
            }),
            ..
        } = d
        {
            at.push(i);
            records.push((key.as_slice(), raw));
        }
    }
    let found = store.unchanged_raws(&records)?;
    let mut out = vec![None; chunk.len()];
    for (i, v) in at.into_iter().zip(found) {
        out[i] = Some(v.is_some());
    }
    Ok(out)
}

/// A record as the decoding thread passes it on, with the work that thread can take off the
/// mapping thread when it has time to spare: the record's would-be key and its raw digest.
enum Decoded {
    Record {
        rec: RawRecord,
        /// `None`: left to the mapping thread.
        sums: Option<Sums>,
    },
    Error(decode::RecordError),
}

/// A record's would-be key and raw digest: what tells an unchanged record without mapping it.
struct Sums {
    key: Option<Vec<u8>>,
    raw: [u8; 16],
}

impl Sums {
    fn of(adapter: &Adapter, rec: &RawRecord) -> Self {
        Sums {
            key: adapter.key_of(rec),
            raw: adapter.raw_digest(rec),
        }
    }
}

impl Decoded {
    /// The decoded `item`, with its sums when `sums` says the decoding thread computes them.
    fn new(adapter: &Adapter, item: Result<RawRecord, decode::RecordError>, sums: bool) -> Self {
        match item {
            Ok(rec) => Decoded::Record {
                sums: sums.then(|| Sums::of(adapter, &rec)),
                rec,
            },
            Err(e) => Decoded::Error(e),
        }
    }

    /// Computes the sums the decoding thread left.
    fn complete(&mut self, adapter: &Adapter) {
        if let Decoded::Record { rec, sums } = self
            && sums.is_none()
        {
            *sums = Some(Sums::of(adapter, rec));
        }
    }
}

/// Ingests one file through `adapter` into `store`. The file is not moved (see [`scan_inbox`]).
///
/// Three threads share the work: one decodes, the caller's thread maps, validates and serializes,
/// one writes (a sled transaction per batch). Bounded channels between them keep memory flat
/// whatever the file size; the only per-record memory is the 24-byte entry of the duplicate map.
pub fn ingest_file(
    adapter: &Adapter,
    path: &Path,
    store: &Store,
    opts: RunOptions<'_>,
    progress: Progress<'_>,
) -> Result<Summary, IngestError> {
    ingest_as(
        adapter,
        path,
        &path.display().to_string(),
        store,
        opts,
        progress,
    )
    .map(|(s, _)| s)
}

/// Ingests the file at `path`, naming it `file` in provenance, quarantine and errors (an inbox
/// file is read from `processing/` but known by its inbox name). Also returns the decoding
/// process's peak memory, when it ran in one.
fn ingest_as(
    adapter: &Adapter,
    path: &Path,
    file: &str,
    store: &Store,
    opts: RunOptions<'_>,
    progress: Progress<'_>,
) -> Result<(Summary, Option<u64>), IngestError> {
    let file = file.to_string();
    let in_process;
    let decoder = match opts.decoder {
        Some(d) => d,
        None => {
            in_process = Decoder::in_process(crate::ingest::Limits::default());
            &in_process
        }
    };
    let limits = decoder.limits();
    let mut records = decoder
        .open(
            path,
            &adapter.format,
            &adapter.columns,
            limits.file_bytes_for(&adapter.name),
        )
        .map_err(|r| IngestError::Refused {
            path: file.clone(),
            source: r.error,
            peak_rss: r.peak_rss,
        })?;
    let now = Utc::now();
    let today = chrono::Local::now().date_naive();
    let batch_size = opts.batch_size.max(1);
    let remote = store.is_remote();
    // On PostgreSQL the writer commits the batches that waited while it committed the last
    // one together (see below), so more may wait.
    let (tx, rx) = mpsc::sync_channel::<Batch>(if remote { MERGED_BATCHES } else { 2 });
    let (rec_tx, rec_rx) = mpsc::sync_channel::<Vec<_>>(2);
    // Chunks sent to the mapping thread and not yet taken. While chunks pile up, the mapping
    // thread is the slower one and the decoding thread computes the records' sums for it (a
    // first ingest); while none waits, the decoding thread is the slower one and leaves more of
    // them to the mapping thread (a re-ingest, where that thread only looks records up). Either
    // way the sums are the same; only the thread that computes them changes.
    let waiting = &AtomicUsize::new(0);

    std::thread::scope(|s| {
        let decoding = s.spawn(move || {
            let mut chunk = Vec::with_capacity(batch_size);
            // How many records of each chunk the decoding thread sums, moved by an eighth of a
            // chunk at each send.
            let (mut share, step) = (batch_size, batch_size.div_ceil(8));
            for item in &mut records {
                chunk.push(Decoded::new(adapter, item, chunk.len() < share));
                if chunk.len() >= batch_size {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(batch_size));
                    // Taken every chunk sent before this one: the mapping thread waits for us.
                    share = match waiting.fetch_add(1, Ordering::Relaxed) {
                        0 => share.saturating_sub(step),
                        _ => (share + step).min(batch_size),
                    };
                    if rec_tx.send(full).is_err() {
                        // The mapping thread stopped; it reports why. Dropping the records
                        // stops a decoding process.
                        return (None, None);
                    }
                }
            }
            if !chunk.is_empty() {
                // Counted as every chunk is: the mapping thread uncounts each one it takes.
                waiting.fetch_add(1, Ordering::Relaxed);
                // Refused only when the mapping thread stopped, which it reports.
                let _ = rec_tx.send(chunk);
            }
            (records.failure(), records.peak_rss())
        });
        let writer = s.spawn(move || -> Result<Summary, StoreError> {
            let mut sum = Summary::default();
            while let Ok(mut b) = rx.recv() {
                // Each commit on PostgreSQL waits for the server's WAL flush and a dozen round
                // trips: batches that arrived meanwhile share the next one (group commit).
                // sled commits in memory, so its batches stay one transaction each.
                for _ in 1..if remote { MERGED_BATCHES } else { 1 } {
                    match rx.try_recv() {
                        Ok(more) => b.absorb(more),
                        Err(_) => break,
                    }
                }
                let outcomes = match opts.routes {
                    Some(r) => store.upsert_prepared(&b.cases, r)?,
                    None => store.upsert_prepared(&b.cases, &|_, _| Vec::new())?,
                };
                for o in outcomes {
                    match o {
                        UpsertOutcome::Created { .. } => sum.accepted += 1,
                        UpsertOutcome::Updated { .. } => sum.updated += 1,
                        UpsertOutcome::Unchanged { .. } => sum.unchanged += 1,
                    }
                }
                sum.unchanged += b.unchanged;
                sum.rejected += b.rejects.len() as u64;
                if !b.rejects.is_empty() {
                    sum.quarantined += store.quarantine_add(b.rejects)?.len() as u64;
                }
                sum.rows += b.rows;
                progress(&sum);
            }
            store.flush()?;
            Ok(sum)
        });

        let mut sifter = Sifter::new(adapter, &file, path, now, today, limits);
        let mut chunk_probe = ChunkProbe::default();
        let mut batch = Batch::with_capacity(batch_size);
        let mut interrupted = false;
        let mut failed = None;
        'chunks: for mut chunk in rec_rx {
            waiting.fetch_sub(1, Ordering::Relaxed);
            // On sled a lookup is local and `Probe` decides per record; on PostgreSQL a chunk
            // is looked up at once, or not at all while chunks keep missing.
            let known = match remote && chunk_probe.wanted() {
                true => match probe_chunk(&mut chunk, adapter, store) {
                    Ok(k) => {
                        let hits = k.iter().filter(|h| **h == Some(true)).count();
                        chunk_probe.record(hits * 8 >= k.len());
                        k
                    }
                    Err(e) => {
                        failed = Some(e);
                        break 'chunks;
                    }
                },
                false => Vec::new(),
            };
            for (i, item) in chunk.into_iter().enumerate() {
                // A record of a chunk not looked up is mapped and compared in full.
                let known = remote.then(|| known.get(i).copied().flatten().unwrap_or(false));
                if let Err(e) = sifter.sift_into(item, store, opts.judge, &mut batch, known) {
                    failed = Some(e);
                    break 'chunks;
                }
                if batch.len() >= batch_size {
                    let full = std::mem::replace(&mut batch, Batch::with_capacity(batch_size));
                    if tx.send(full).is_err() {
                        break 'chunks; // the writer failed; its error is reported below
                    }
                    if opts.shutdown.is_some_and(|f| f.load(Ordering::Relaxed)) {
                        interrupted = true;
                        break 'chunks;
                    }
                }
            }
        }
        // The loop above consumed the receiver: a decoder still sending now stops.
        if !interrupted && failed.is_none() && batch.rows > 0 {
            let _ = tx.send(batch);
        }
        drop(tx);
        let sum = match writer.join() {
            Ok(r) => r?,
            Err(_) => {
                return Err(IngestError::Store(StoreError::Corrupt {
                    what: "ingest writer".into(),
                    reason: "the writer thread panicked".into(),
                }));
            }
        };
        let (failure, peak_rss) = decoding.join().unwrap_or_else(|_| {
            (
                Some(FileError::Decoder("the decoding thread panicked".into())),
                None,
            )
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        if interrupted {
            return Err(IngestError::Interrupted {
                path: file.clone(),
                rows: sum.rows,
            });
        }
        if let Some(source) = failure {
            return Err(IngestError::DecoderFailed {
                path: file.clone(),
                source,
                summary: Box::new(sum),
            });
        }
        Ok((sum, peak_rss))
    })
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOutcome {
    /// The file as found.
    pub file: String,
    /// Counts, when it was read.
    pub summary: Option<Summary>,
    /// Why it was refused, when it was.
    pub refused: Option<String>,
    /// Where it was moved (inbox scans only).
    pub moved_to: Option<String>,
    /// Peak resident memory of the process that decoded it, in KiB, when it ran in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_peak_kib: Option<u64>,
}

fn matching_files(dir: &Path, pattern: &glob::Pattern) -> Result<Vec<PathBuf>, IngestError> {
    let rd = std::fs::read_dir(dir).map_err(|e| IngestError::Path {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.') && pattern.matches(n))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn glob_of(adapter: &Adapter) -> &glob::Pattern {
    match &adapter.transport {
        Transport::File { glob, .. } => glob,
    }
}

/// The inbox directory of an adapter.
pub fn inbox_dir(adapter: &Adapter, data_dir: &Path) -> PathBuf {
    match &adapter.transport {
        Transport::File { inbox, .. } => data_dir.join(inbox),
    }
}

/// Ingests a file, or every matching file of a directory, in place (nothing is moved).
pub fn ingest_path(
    adapter: &Adapter,
    path: &Path,
    store: &Store,
    opts: RunOptions<'_>,
    progress: Progress<'_>,
) -> Result<Vec<FileOutcome>, IngestError> {
    let files = if path.is_dir() {
        matching_files(path, glob_of(adapter))?
    } else if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        return Err(IngestError::Path {
            path: path.display().to_string(),
            reason: "no such file or directory".into(),
        });
    };
    let mut out = Vec::new();
    for f in files {
        out.push(one_file(adapter, &f, store, opts, progress, None)?);
    }
    Ok(out)
}

fn one_file(
    adapter: &Adapter,
    f: &Path,
    store: &Store,
    opts: RunOptions<'_>,
    progress: Progress<'_>,
    inbox: Option<&Path>,
) -> Result<FileOutcome, IngestError> {
    let file = f.display().to_string();
    if let Some(gate) = opts.gate {
        gate(f).map_err(|reason| IngestError::NotAllowed {
            path: file.clone(),
            reason,
        })?;
    }
    // An inbox file is read from processing/: if the gateway stops while reading it, it is
    // found there at the next start and set aside instead of being read (and crashing) again.
    let reading = match inbox {
        Some(d) => PathBuf::from(move_to(f, &d.join(PROCESSING), None)?),
        None => f.to_path_buf(),
    };
    let outcome = |summary, refused: Option<String>, moved_to, peak: Option<u64>| FileOutcome {
        file: file.clone(),
        summary,
        refused,
        moved_to,
        decode_peak_kib: peak.map(|b| b / 1024),
    };
    match ingest_as(adapter, &reading, &file, store, opts, progress) {
        Ok((summary, peak)) => {
            let moved_to = inbox
                .map(|d| move_to(&reading, &d.join("done"), None))
                .transpose()?;
            Ok(outcome(Some(summary), None, moved_to, peak))
        }
        Err(IngestError::Refused {
            source, peak_rss, ..
        }) => {
            let reason = source.to_string();
            let moved_to = inbox
                .map(|d| move_to(&reading, &d.join("failed"), Some(&reason)))
                .transpose()?;
            Ok(outcome(None, Some(reason), moved_to, peak_rss))
        }
        Err(IngestError::DecoderFailed {
            source, summary, ..
        }) => {
            let reason = stopped_reason(&source, summary.rows);
            let summary = *summary;
            let moved_to = inbox
                .map(|d| move_to(&reading, &d.join("failed"), Some(&reason)))
                .transpose()?;
            Ok(outcome(Some(summary), Some(reason), moved_to, None))
        }
        Err(e) => {
            // Shutdown or a store failure: the file goes back to the inbox and is read again.
            if let Some(d) = inbox {
                move_back(&reading, d);
            }
            Err(e)
        }
    }
}

/// The folder of an inbox that holds the file being read.
pub const PROCESSING: &str = "processing";

/// Returns a file from `processing/` to its inbox, keeping it in `processing/` (to be set aside
/// at the next start) if even that fails.
fn move_back(reading: &Path, inbox: &Path) {
    // A newer delivery of the same name that arrived meanwhile is kept too (see `move_to`).
    if let Err(e) = move_to(reading, inbox, None) {
        tracing::error!(file = %reading.display(), error = %e, "cannot return a file to its inbox");
    }
}

/// Sets aside every file an unclean stop left in an adapter's `processing/` folder: each goes to
/// `failed/` with a `.reason` file, and is never read again automatically. Returns the files and
/// where each went. Run at start, before any scan.
pub fn set_aside_interrupted(
    adapter: &Adapter,
    data_dir: &Path,
) -> Result<Vec<(String, String)>, IngestError> {
    let inbox = inbox_dir(adapter, data_dir);
    let processing = inbox.join(PROCESSING);
    let Ok(rd) = std::fs::read_dir(&processing) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let reason = format!(
        "the gateway stopped while reading this file (found in {} at start, {}); it is not read \
         again automatically: if it is genuine, move it back to {} to read it again",
        processing.display(),
        Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
        inbox.display()
    );
    let mut out = Vec::new();
    for f in files {
        let to = move_to(&f, &inbox.join("failed"), Some(&reason))?;
        out.push((
            inbox
                .join(f.file_name().unwrap_or_default())
                .display()
                .to_string(),
            to,
        ));
    }
    Ok(out)
}

fn move_to(f: &Path, dir: &Path, reason: Option<&str>) -> Result<String, IngestError> {
    let err = |e: std::io::Error| IngestError::Path {
        path: f.display().to_string(),
        reason: format!("cannot move to {}: {e}", dir.display()),
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let name = f
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut target = dir.join(&name);
    if target.exists() || documents::folder_of(&target).exists() {
        // Keep every delivery: a later file of the same name gets a timestamp suffix.
        target = dir.join(format!("{name}.{}", Utc::now().format("%Y%m%dT%H%M%S%.3f")));
    }
    std::fs::rename(f, &target).map_err(err)?;
    // Its documents follow it, after it: should the gateway stop in between, the folder is
    // still beside the file's old place, where a file moved back to read it again finds it.
    let folder = documents::folder_of(f);
    if std::fs::symlink_metadata(&folder).is_ok_and(|m| m.is_dir()) {
        std::fs::rename(&folder, documents::folder_of(&target)).map_err(err)?;
    }
    if let Some(r) = reason {
        let mut rp = target.clone().into_os_string();
        rp.push(".reason");
        std::fs::write(PathBuf::from(rp), format!("{r}\n")).map_err(err)?;
    }
    Ok(target.display().to_string())
}

/// Ingests every matching file in the adapter's inbox, oldest name first, moving each to `done/` or,
/// when refused, to `failed/` with a `.reason` file beside it.
pub fn scan_inbox(
    adapter: &Adapter,
    data_dir: &Path,
    store: &Store,
    opts: RunOptions<'_>,
    progress: Progress<'_>,
) -> Result<Vec<FileOutcome>, IngestError> {
    let inbox = inbox_dir(adapter, data_dir);
    std::fs::create_dir_all(&inbox).map_err(|e| IngestError::Path {
        path: inbox.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut out = Vec::new();
    for f in matching_files(&inbox, glob_of(adapter))? {
        out.push(one_file(adapter, &f, store, opts, progress, Some(&inbox))?);
    }
    Ok(out)
}

/// The result of retrying one quarantined record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryOutcome {
    /// The entry.
    pub id: u64,
    /// Whether it was accepted (and removed from quarantine).
    pub accepted: bool,
    /// The reasons it is still refused.
    pub reasons: Vec<QuarantineReason>,
}

/// Maps a quarantined record again with the adapter as it is now; on success stores it and removes
/// the entry, otherwise records the current reasons.
pub fn retry_quarantined(
    adapters: &[Adapter],
    store: &Store,
    id: u64,
) -> Result<Option<RetryOutcome>, IngestError> {
    let Some(mut entry) = store.quarantine_get(id)? else {
        return Ok(None);
    };
    if entry.is_cut() {
        let columns: Vec<&str> = entry.cut.iter().map(|c| c.column.as_str()).collect();
        return Ok(Some(RetryOutcome {
            id,
            accepted: false,
            reasons: vec![QuarantineReason {
                field: "record".into(),
                column: Some(columns.join(" / ")),
                reason: "quarantine holds only the first bytes of this record's long value(s), so \
                         it cannot be retried from here: correct the source and deliver the file \
                         again"
                    .into(),
            }],
        }));
    }
    let Some(adapter) = adapters.iter().find(|a| a.name == entry.adapter) else {
        return Ok(Some(RetryOutcome {
            id,
            accepted: false,
            reasons: vec![QuarantineReason {
                field: "record".into(),
                column: None,
                reason: format!("adapter {} is no longer configured", entry.adapter),
            }],
        }));
    };
    let values = adapter
        .columns
        .iter()
        .map(|c| {
            entry
                .raw
                .iter()
                .find(|(n, _)| *n == c.name)
                .and_then(|(_, v)| v.clone())
        })
        .collect();
    let rec = RawRecord::new(
        Location::Element(entry.location.clone()),
        values,
        Vec::new(),
    );
    if adapter.names_documents(&rec) {
        // The documents are read from beside the export, which has moved on since.
        return Ok(Some(RetryOutcome {
            id,
            accepted: false,
            reasons: vec![adapter.document_reason(format!(
                "the record names documents, which are read with their export: correct the \
                 source and deliver the export again with its {} folder beside it",
                documents::FOLDER_SUFFIX
            ))],
        }));
    }
    let today = chrono::Local::now().date_naive();
    match adapter.map_record(&rec, &entry.file, Utc::now(), today) {
        Ok(mut case) => {
            case.source.location.clone_from(&entry.location);
            store.upsert_cases(std::slice::from_ref(&case), &|_, _| Vec::new())?;
            store.quarantine_remove(id)?;
            store.flush()?;
            Ok(Some(RetryOutcome {
                id,
                accepted: true,
                reasons: Vec::new(),
            }))
        }
        Err(reasons) => {
            entry.reasons.clone_from(&reasons);
            store.quarantine_put(&entry)?;
            Ok(Some(RetryOutcome {
                id,
                accepted: false,
                reasons,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sunshine() -> Adapter {
        super::super::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/sunshine"))
            .expect("the sunshine adapter loads")
    }

    /// The data lines of a generated sunshine CSV, as UTF-8 (header first).
    fn lines(path: &Path) -> Vec<String> {
        let bytes = std::fs::read(path).unwrap();
        let (text, _, bad) = encoding_rs::GB18030.decode(&bytes);
        assert!(!bad);
        text.lines().map(str::to_string).collect()
    }

    fn write(path: &Path, lines: &[String]) {
        let text = lines.join("\r\n") + "\r\n";
        let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
        std::fs::write(path, bytes).unwrap();
    }

    /// Appends to a line's second field (the title): new content, same key.
    fn retitle(line: &str) -> String {
        let mut fields: Vec<String> = line.split(',').map(str::to_string).collect();
        fields[1].push_str("（更正）");
        fields.join(",")
    }

    fn ingest(adapter: &Adapter, path: &Path, store: &Store, batch_size: usize) -> Summary {
        let opts = RunOptions {
            batch_size,
            ..RunOptions::default()
        };
        ingest_file(adapter, path, store, opts, &|_: &Summary| {}).unwrap()
    }

    #[test]
    fn a_changed_row_among_unchanged_ones_is_a_new_version() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("export.csv");
        crate::sample::write_sunshine_csv(&file, 50, 0.0, 7).unwrap();
        let adapter = sunshine();
        let store = Store::open(&tmp.path().join("data")).unwrap();
        let first = ingest(&adapter, &file, &store, 16);
        assert_eq!((first.rows, first.accepted), (50, 50));
        assert_eq!(store.change_count().unwrap(), 50);

        let mut l = lines(&file);
        l[10] = retitle(&l[10]);
        write(&file, &l);
        let second = ingest(&adapter, &file, &store, 16);
        assert_eq!(
            (
                second.rows,
                second.updated,
                second.unchanged,
                second.accepted
            ),
            (50, 1, 49, 0)
        );
        let changes = store.changes_after(50, 100).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].seq, changes[0].version), (51, 2));
        let case = store
            .get_case(&changes[0].unit_code, &changes[0].case_id)
            .unwrap()
            .unwrap();
        assert!(case.title.ends_with("（更正）"), "{}", case.title);
        assert_eq!(case.version, 2);
        assert_eq!(case.source.location, "row 11");
        assert_eq!(store.change_count().unwrap(), 51);
    }

    #[test]
    fn a_duplicate_of_an_unchanged_row_is_still_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("export.csv");
        crate::sample::write_sunshine_csv(&file, 30, 0.0, 8).unwrap();
        let adapter = sunshine();
        let store = Store::open(&tmp.path().join("data")).unwrap();
        ingest(&adapter, &file, &store, 8);

        // Row 2 is unchanged (found without mapping); a later row has its key and new content.
        let mut l = lines(&file);
        let copy = retitle(&l[1]);
        l.push(copy);
        write(&file, &l);
        let again = ingest(&adapter, &file, &store, 8);
        assert_eq!(
            (again.rows, again.unchanged, again.rejected, again.updated),
            (31, 30, 1, 0)
        );
        let q = store.quarantine_list(None, 10).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].location, "row 32");
        assert!(
            q[0].reasons[0].reason.contains("already appears at row 2"),
            "{:?}",
            q[0].reasons
        );
    }

    #[test]
    fn change_log_reads_from_any_position_across_batches() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("export.csv");
        crate::sample::write_sunshine_csv(&file, 20, 0.0, 9).unwrap();
        let store = Store::open(&tmp.path().join("data")).unwrap();
        ingest(&sunshine(), &file, &store, 7);
        for after in 0..=20u64 {
            let seqs: Vec<u64> = store
                .changes_after(after, 100)
                .unwrap()
                .iter()
                .map(|c| c.seq)
                .collect();
            assert_eq!(seqs, (after + 1..=20).collect::<Vec<_>>(), "after {after}");
        }
        let limited: Vec<u64> = store
            .changes_after(5, 4)
            .unwrap()
            .iter()
            .map(|c| c.seq)
            .collect();
        assert_eq!(limited, vec![6, 7, 8, 9]);
    }

    #[test]
    fn a_store_of_another_layout_is_refused_at_open() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("export.csv");
        crate::sample::write_sunshine_csv(&file, 3, 0.0, 1).unwrap();
        let data = tmp.path().join("data");
        {
            let store = Store::open(&data).unwrap();
            ingest(&sunshine(), &file, &store, 8);
            store.set_meta("store_layout", &1u32).unwrap();
            store.flush().unwrap();
        }
        let err = Store::open(&data).unwrap_err().to_string();
        assert!(
            err.contains("layout 1") && err.contains("move the directory aside"),
            "{err}"
        );
    }

    #[test]
    fn lookups_thin_out_after_a_window_of_misses_and_return_at_a_hit() {
        let mut p = Probe::default();
        for _ in 0..Probe::WINDOW {
            assert!(p.wanted());
            p.record(false);
        }
        let looked: u32 = (0..Probe::SPARSE * 3).map(|_| u32::from(p.wanted())).sum();
        assert_eq!(
            looked,
            3,
            "one lookup per {} records while sparse",
            Probe::SPARSE
        );
        p.record(true);
        assert!(
            (0..10).all(|_| p.wanted()),
            "a hit brings every record back"
        );
        // A window with enough hits stays dense.
        let mut p = Probe::default();
        for i in 0..Probe::WINDOW * 2 {
            assert!(p.wanted());
            p.record(i % 4 == 0);
        }
        assert!(p.wanted() && p.wanted());
    }

    #[test]
    fn raw_case_json_is_exactly_the_decoded_case() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("export.csv");
        crate::sample::write_sunshine_csv(&file, 60, 0.0, 3).unwrap();
        let store = Store::open(&tmp.path().join("data")).unwrap();
        ingest(&sunshine(), &file, &store, 16);
        let mut checked = 0;
        for unit in store.unit_counts().unwrap().keys() {
            let decoded: Vec<Case> = store.unit_cases(unit).map(Result::unwrap).collect();
            let raw: Vec<_> = store
                .unit_cases_raw_after(unit, None)
                .map(Result::unwrap)
                .collect();
            assert_eq!(decoded.len(), raw.len());
            for (c, r) in decoded.iter().zip(&raw) {
                let from_raw: serde_json::Value = serde_json::from_slice(&r.json).unwrap();
                assert_eq!(from_raw, serde_json::to_value(c).unwrap());
                assert_eq!(
                    (r.case_id.as_str(), r.action, r.version),
                    (c.case_id.as_str(), c.action, c.version)
                );
                checked += 1;
            }
            // Starting after a case id skips exactly up to it.
            let second: Vec<String> = store
                .unit_cases_raw_after(unit, Some(decoded[0].case_id.as_str()))
                .map(|r| r.unwrap().case_id)
                .collect();
            assert_eq!(second.len(), decoded.len() - 1);
        }
        assert_eq!(checked, 60);
    }

    #[test]
    fn new_versions_are_queued_for_the_destinations_that_take_them() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("export.csv");
        crate::sample::write_sunshine_csv(&file, 80, 0.0, 4).unwrap();
        let store = Store::open(&tmp.path().join("data")).unwrap();
        let routes = |_: &crate::model::Uscc, a: crate::model::Action| {
            if matches!(
                a,
                crate::model::Action::Penalty | crate::model::Action::Licensing
            ) {
                vec!["province".to_string()]
            } else {
                Vec::new()
            }
        };
        let opts = RunOptions {
            batch_size: 16,
            routes: Some(&routes),
            ..RunOptions::default()
        };
        ingest_file(&sunshine(), &file, &store, opts, &|_: &Summary| {}).unwrap();
        let queued = store.outbox("province", usize::MAX).unwrap();
        let expected = store
            .all_cases()
            .map(Result::unwrap)
            .filter(|c| {
                matches!(
                    c.action,
                    crate::model::Action::Penalty | crate::model::Action::Licensing
                )
            })
            .count();
        assert!(expected > 0);
        assert_eq!(queued.len(), expected);
        for (seq, e) in &queued {
            assert_eq!(*seq, e.change_seq);
            let c = store.get_case(&e.unit_code, &e.case_id).unwrap().unwrap();
            assert!(matches!(
                c.action,
                crate::model::Action::Penalty | crate::model::Action::Licensing
            ));
        }
        // Unchanged on a second read: nothing more is queued.
        ingest_file(&sunshine(), &file, &store, opts, &|_: &Summary| {}).unwrap();
        assert_eq!(
            store.outbox("province", usize::MAX).unwrap().len(),
            expected
        );
        assert_eq!(store.outbox_len().unwrap(), expected as u64);
    }

    /// The documents of a generated inspection export, by the case number that names them.
    fn documents_by_case(folder: &Path) -> std::collections::BTreeMap<String, Vec<PathBuf>> {
        let mut by_case = std::collections::BTreeMap::<String, Vec<PathBuf>>::new();
        for e in std::fs::read_dir(folder).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let case = name
                .split_once("-检查")
                .or(name.split_once("-现场"))
                .unwrap()
                .0;
            by_case.entry(case.to_string()).or_default().push(p);
        }
        by_case
    }

    #[test]
    fn documents_follow_their_export_and_a_bad_one_quarantines_only_its_record() {
        use sha2::Digest;
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let store = Store::open(&data).unwrap();
        let adapter = super::super::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/market-inspection"),
        )
        .unwrap();
        let inbox = inbox_dir(&adapter, &data);
        std::fs::create_dir_all(&inbox).unwrap();
        let export = inbox.join("r.xlsx");
        crate::sample::write_inspection_xlsx(&export, 150, 0.0, 5).unwrap();
        let folder = documents::folder_of(&export);
        let by_case = documents_by_case(&folder);
        assert!(by_case.len() >= 4, "{by_case:?}");
        let mut cases = by_case.iter();
        // One case's record goes missing, another's becomes a link to a file outside.
        let (missing_case, missing) = cases.next().unwrap();
        let kept = std::fs::read(&missing[0]).unwrap();
        std::fs::remove_file(&missing[0]).unwrap();
        let (linked_case, linked) = cases.next().unwrap();
        let linked_bytes = std::fs::read(&linked[0]).unwrap();
        let outside = tmp.path().join("outside.pdf");
        std::fs::write(&outside, b"%PDF-1.4 not this case's").unwrap();
        std::fs::remove_file(&linked[0]).unwrap();
        symlink(&outside, &linked[0]).unwrap();
        let run = || {
            let out = scan_inbox(&adapter, &data, &store, RunOptions::default(), &|_| {}).unwrap();
            assert_eq!(out.len(), 1, "{out:?}");
            out.into_iter().next().unwrap()
        };
        let first = run();
        let sum = first.summary.unwrap();
        assert_eq!((sum.rows, sum.rejected), (150, 2), "{sum:?}");
        assert_eq!(sum.accepted, 148);
        // The folder went to done/ with its export.
        let done = inbox.join("done");
        assert_eq!(first.moved_to.as_deref(), done.join("r.xlsx").to_str());
        assert!(!folder.exists());
        let done_folder = documents::folder_of(&done.join("r.xlsx"));
        assert!(done_folder.is_dir());
        // Each refusal names the field, the column and the file; the row is the entry's location.
        let q = store.quarantine_list(None, 10).unwrap();
        assert_eq!(q.len(), 2);
        for (case, path, says) in [
            (missing_case, &missing[0], "is not in r.xlsx.files/"),
            (linked_case, &linked[0], "is a symbolic link"),
        ] {
            let name = path.file_name().unwrap().to_string_lossy();
            let e = q
                .iter()
                .find(|e| {
                    e.raw
                        .iter()
                        .any(|(_, v)| v.as_deref() == Some(case.as_str()))
                })
                .unwrap();
            assert!(e.location.starts_with("row "), "{e:?}");
            let r = &e.reasons[0];
            assert_eq!(
                (r.field.as_str(), r.column.as_deref()),
                ("documents", Some("检查记录文件"))
            );
            assert!(
                r.reason.contains(&*name) && r.reason.contains(says),
                "{r:?}"
            );
        }
        // An accepted case lists its documents, stored under the digest of the files' bytes.
        let unit = crate::model::Uscc::parse("11320102526018159L").unwrap();
        let (case_id, paths) = by_case.iter().nth(2).unwrap();
        let case = store
            .get_case(&unit, &crate::model::CaseId::parse(case_id).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(case.documents.len(), paths.len());
        for d in &case.documents {
            let bytes = std::fs::read(done_folder.join(&d.doc_id)).unwrap();
            assert_eq!(d.sha256, hex::encode(sha2::Sha256::digest(&bytes)));
            assert_eq!(store.get_document(&d.sha256).unwrap().unwrap(), bytes);
            assert_eq!(d.kind, "检查记录文件");
        }
        let changes = store.change_count().unwrap();

        // Delivered again with the files corrected: the two records go in, nothing else changes.
        let redeliver = |edit: &dyn Fn(&Path)| {
            let again = documents::folder_of(&export);
            std::fs::create_dir_all(&again).unwrap();
            for e in std::fs::read_dir(&done_folder).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), again.join(e.file_name())).unwrap();
            }
            std::fs::write(again.join(missing[0].file_name().unwrap()), &kept).unwrap();
            std::fs::write(again.join(linked[0].file_name().unwrap()), &linked_bytes).unwrap();
            edit(&again);
            std::fs::copy(done.join("r.xlsx"), &export).unwrap();
        };
        redeliver(&|_| {});
        let second = run().summary.unwrap();
        assert_eq!(
            (
                second.accepted,
                second.unchanged,
                second.updated,
                second.rejected
            ),
            (2, 148, 0, 0),
            "{second:?}"
        );
        assert_eq!(store.change_count().unwrap(), changes + 2);
        // The same name already in done/: both get the suffix.
        assert_eq!(std::fs::read_dir(&done).unwrap().count(), 4);

        // A file whose bytes change under the same name makes a new version of its case.
        let changed = paths[0].file_name().unwrap().to_owned();
        redeliver(&|again| {
            let mut bytes = std::fs::read(again.join(&changed)).unwrap();
            bytes.extend_from_slice(b"% amended\n");
            std::fs::write(again.join(&changed), bytes).unwrap();
        });
        let third = run().summary.unwrap();
        assert_eq!((third.updated, third.unchanged), (1, 149), "{third:?}");
    }

    #[test]
    fn sums_left_by_the_decoding_thread_are_the_sums_it_would_have_computed() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("export.csv");
        crate::sample::write_sunshine_csv(&file, 20, 0.0, 11).unwrap();
        let a = sunshine();
        let decoder = Decoder::in_process(crate::ingest::Limits::default());
        let records = decoder
            .open(&file, &a.format, &a.columns, u64::MAX)
            .map_err(|r| r.error)
            .unwrap();
        let sums = |d: Decoded| match d {
            Decoded::Record { sums: Some(s), .. } => (s.key, s.raw),
            _ => panic!("a record with its sums"),
        };
        let mut seen = std::collections::HashSet::new();
        for rec in records {
            let rec = rec.unwrap();
            let mut left = Decoded::new(&a, Ok(rec.clone()), false);
            assert!(matches!(left, Decoded::Record { sums: None, .. }));
            left.complete(&a);
            let (key, raw) = sums(Decoded::new(&a, Ok(rec), true));
            assert!(key.is_some(), "every sample row has a key");
            assert!(seen.insert(raw), "rows differ, so do their digests");
            assert_eq!(sums(left), (key, raw));
        }
        assert_eq!(seen.len(), 20);
    }

    #[test]
    fn raw_digest_depends_on_values_and_the_adapter_definition() {
        let a = sunshine();
        let rec = |v: Vec<Option<&str>>| {
            RawRecord::new(
                Location::Row(2),
                v.into_iter().map(|s| s.map(str::to_string)).collect(),
                Vec::new(),
            )
        };
        let base = a.raw_digest(&rec(vec![Some("a"), Some("b")]));
        assert_eq!(base, a.raw_digest(&rec(vec![Some("a"), Some("b")])));
        assert_ne!(base, a.raw_digest(&rec(vec![Some("a"), Some("c")])));
        // Boundaries between values count: "ab","" is not "a","b".
        assert_ne!(base, a.raw_digest(&rec(vec![Some("ab"), Some("")])));
        assert_ne!(
            a.raw_digest(&rec(vec![Some("a"), None])),
            a.raw_digest(&rec(vec![Some("a"), Some("")]))
        );
        let mut edited = a.clone();
        edited.fingerprint[0] ^= 1;
        assert_ne!(base, edited.raw_digest(&rec(vec![Some("a"), Some("b")])));
    }
}
