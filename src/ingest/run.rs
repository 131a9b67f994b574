//! Running ingest: one file through decode → map → validate → store, streaming in batches, with
//! rejects quarantined; the file transport (inbox → `done/` or `failed/` + `.reason`); quarantine retry.
//!
//! Two threads share the work: the caller's thread decodes and maps, a writer thread commits batches
//! (one sled transaction each). A bounded channel between them keeps memory flat whatever the file size.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::adapter::{Adapter, Transport};
use super::decode::{self, FileError, Location, RawRecord};
use crate::model::{Case, Target};
use crate::store::{QuarantineEntry, QuarantineReason, Store, StoreError, UpsertOutcome};

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
    /// A path given to ingest does not exist or cannot be listed.
    #[error("{path}: {reason}")]
    Path {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Options of a run.
#[derive(Clone, Copy)]
pub struct RunOptions<'a> {
    /// Records per transaction.
    pub batch_size: usize,
    /// Set when the gateway shuts down; checked between batches.
    pub shutdown: Option<&'a AtomicBool>,
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            shutdown: None,
        }
    }
}

struct Batch {
    /// Cases with their content digests, computed on the decoding thread.
    cases: Vec<(Case, [u8; 32])>,
    rejects: Vec<QuarantineEntry>,
    rows: u64,
}

fn key_hash(case: &Case) -> u128 {
    // Two independent 64-bit SipHashes make a 128-bit key: no false duplicates in practice, at
    // 16 bytes per row instead of the key itself.
    let mut a = std::collections::hash_map::DefaultHasher::new();
    let mut b = std::collections::hash_map::DefaultHasher::new();
    0xA5u8.hash(&mut b);
    (case.unit_code.as_str(), case.case_id.as_str()).hash(&mut a);
    (case.unit_code.as_str(), case.case_id.as_str()).hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

fn reject(
    adapter: &Adapter,
    file: &str,
    rec: Option<&RawRecord>,
    location: &Location,
    reasons: Vec<QuarantineReason>,
) -> QuarantineEntry {
    QuarantineEntry {
        id: 0,
        adapter: adapter.name.clone(),
        file: file.to_string(),
        location: location.to_string(),
        reasons,
        raw: rec
            .map(|r| {
                adapter
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .zip(r.values.iter().cloned())
                    .collect()
            })
            .unwrap_or_default(),
        at: Utc::now(),
    }
}

/// Turns decoded records into cases or quarantine entries: maps, validates, and refuses a second
/// record with the key of an earlier one in the same file. Shared by ingest and the golden cases.
pub(crate) struct Sifter<'a> {
    adapter: &'a Adapter,
    file: &'a str,
    now: chrono::DateTime<Utc>,
    today: chrono::NaiveDate,
    seen: HashMap<u128, Location>,
}

impl<'a> Sifter<'a> {
    /// A sifter for one file.
    pub(crate) fn new(
        adapter: &'a Adapter,
        file: &'a str,
        now: chrono::DateTime<Utc>,
        today: chrono::NaiveDate,
    ) -> Self {
        Self {
            adapter,
            file,
            now,
            today,
            seen: HashMap::new(),
        }
    }

    /// One record: the case, or why not.
    #[allow(clippy::result_large_err)] // one per record, moved straight into a batch
    pub(crate) fn sift(
        &mut self,
        item: Result<RawRecord, decode::RecordError>,
    ) -> Result<Case, QuarantineEntry> {
        let (adapter, file) = (self.adapter, self.file);
        let rec = match item {
            Err(e) => {
                let r = QuarantineReason {
                    field: "record".into(),
                    column: None,
                    reason: e.reason,
                };
                return Err(reject(adapter, file, None, &e.location, vec![r]));
            }
            Ok(rec) => rec,
        };
        let case = adapter
            .map_record(&rec, file, self.now, self.today)
            .map_err(|reasons| reject(adapter, file, Some(&rec), &rec.location, reasons))?;
        match self.seen.entry(key_hash(&case)) {
            std::collections::hash_map::Entry::Occupied(first) => {
                let r = QuarantineReason {
                    field: Target::CaseId.path().into(),
                    column: adapter.columns_of(Target::CaseId),
                    reason: format!(
                        "duplicate: case {} of unit {} already appears at {} of this file",
                        case.case_id,
                        case.unit_code,
                        first.get()
                    ),
                };
                Err(reject(adapter, file, Some(&rec), &rec.location, vec![r]))
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(rec.location.clone());
                Ok(case)
            }
        }
    }
}

/// Ingests one file through `adapter` into `store`. The file is not moved (see [`scan_inbox`]).
pub fn ingest_file(
    adapter: &Adapter,
    path: &Path,
    store: &Store,
    opts: RunOptions<'_>,
    progress: Progress<'_>,
) -> Result<Summary, IngestError> {
    let file = path.display().to_string();
    let records = decode::open(path, &adapter.format, &adapter.columns).map_err(|source| {
        IngestError::Refused {
            path: file.clone(),
            source,
        }
    })?;
    let now = Utc::now();
    let today = chrono::Local::now().date_naive();
    let batch_size = opts.batch_size.max(1);
    let (tx, rx) = mpsc::sync_channel::<Batch>(4);

    std::thread::scope(|s| {
        let writer = s.spawn(move || -> Result<Summary, StoreError> {
            let mut sum = Summary::default();
            for b in rx {
                let outcomes = store.upsert_digested(&b.cases, &|_| Vec::new())?;
                for o in outcomes {
                    match o {
                        UpsertOutcome::Created { .. } => sum.accepted += 1,
                        UpsertOutcome::Updated { .. } => sum.updated += 1,
                        UpsertOutcome::Unchanged { .. } => sum.unchanged += 1,
                    }
                }
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

        let mut sifter = Sifter::new(adapter, &file, now, today);
        let mut batch = Batch {
            cases: Vec::with_capacity(batch_size),
            rejects: Vec::new(),
            rows: 0,
        };
        let mut interrupted = false;
        for item in records {
            batch.rows += 1;
            match sifter.sift(item) {
                Ok(case) => {
                    let digest = case.content_digest();
                    batch.cases.push((case, digest));
                }
                Err(entry) => batch.rejects.push(entry),
            }
            if batch.cases.len() + batch.rejects.len() >= batch_size {
                let full = std::mem::replace(
                    &mut batch,
                    Batch {
                        cases: Vec::with_capacity(batch_size),
                        rejects: Vec::new(),
                        rows: 0,
                    },
                );
                if tx.send(full).is_err() {
                    break; // the writer failed; its error is reported below
                }
                if opts.shutdown.is_some_and(|f| f.load(Ordering::Relaxed)) {
                    interrupted = true;
                    break;
                }
            }
        }
        if !interrupted && batch.rows > 0 {
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
        if interrupted {
            return Err(IngestError::Interrupted {
                path: file.clone(),
                rows: sum.rows,
            });
        }
        Ok(sum)
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
    match ingest_file(adapter, f, store, opts, progress) {
        Ok(summary) => {
            let moved_to = inbox
                .map(|d| move_to(f, &d.join("done"), None))
                .transpose()?;
            Ok(FileOutcome {
                file,
                summary: Some(summary),
                refused: None,
                moved_to,
            })
        }
        Err(IngestError::Refused { source, .. }) => {
            let reason = source.to_string();
            let moved_to = inbox
                .map(|d| move_to(f, &d.join("failed"), Some(&reason)))
                .transpose()?;
            Ok(FileOutcome {
                file,
                summary: None,
                refused: Some(reason),
                moved_to,
            })
        }
        Err(e) => Err(e),
    }
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
    if target.exists() {
        // Keep every delivery: a later file of the same name gets a timestamp suffix.
        target = dir.join(format!("{name}.{}", Utc::now().format("%Y%m%dT%H%M%S%.3f")));
    }
    std::fs::rename(f, &target).map_err(err)?;
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
    let rec = RawRecord {
        location: Location::Element(entry.location.clone()),
        values,
    };
    let today = chrono::Local::now().date_naive();
    match adapter.map_record(&rec, &entry.file, Utc::now(), today) {
        Ok(mut case) => {
            case.source.location.clone_from(&entry.location);
            store.upsert_cases(std::slice::from_ref(&case), &|_| Vec::new())?;
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
