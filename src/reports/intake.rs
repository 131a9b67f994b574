//! Taking in a submitted report: who may submit (a configured submitter without a feed, for a
//! quarter that has ended), decoding and checking it ([`super::submit`]), keeping the file and
//! its documents content-addressed, and storing it as the unit's next report version. A
//! resubmission of the same content is recognised and stores nothing new.

use std::path::Path;

use chrono::NaiveDate;

use super::model::{Origin, QuarterlyReport, ReportDocument};
use super::submit::{self, SubmitError};
use crate::config::ReportsConfig;
use crate::ingest::Adapter;
use crate::model::{Quarter, Uscc};
use crate::store::{ReportStored, Store, StoreError};

/// Why a submission was not taken.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The unit is not a configured submitter.
    #[error(
        "{0} is not a unit that submits reports: add it to [[reports.submitters]] in the configuration"
    )]
    NotASubmitter(Uscc),
    /// The unit's report is computed from its feed.
    #[error(
        "{0}'s cases reach the gateway through an adapter: its report is computed, not submitted"
    )]
    Fed(Uscc),
    /// The quarter has not ended.
    #[error("{quarter} has not ended yet (it ends {ends}); submit after the quarter")]
    NotEnded {
        /// The quarter.
        quarter: Quarter,
        /// Its last day.
        ends: NaiveDate,
    },
    /// The file (or a document) could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The submission itself is refused (every problem listed).
    #[error(transparent)]
    Refused(#[from] SubmitError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The submission's worker thread failed.
    #[error("the submission could not be processed: {0}")]
    Task(String),
    /// The submission could not be audited, so it was not taken.
    #[error("not taken, because it could not be audited: {0}")]
    Audit(#[from] crate::audit::AuditError),
}

/// One submission.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    /// The unit.
    pub unit: &'a Uscc,
    /// The quarter.
    pub quarter: Quarter,
    /// The file (its extension names the format).
    pub path: &'a Path,
    /// Its bytes, as read once by the caller (kept in the document store).
    pub bytes: &'a [u8],
    /// Who submits (administrator or API client).
    pub by: String,
    /// Documents: (file name, bytes).
    pub documents: Vec<(String, Vec<u8>)>,
}

/// Checks, decodes and stores a submission (a new version is queued for `destinations`).
/// Returns the report and whether it is a new version.
pub fn accept(
    decoder: &crate::ingest::decode::Decoder,
    store: &Store,
    cfg: &ReportsConfig,
    formats: &[Adapter],
    s: Submission<'_>,
    destinations: &[String],
    today: NaiveDate,
) -> Result<(QuarterlyReport, ReportStored), IntakeError> {
    let name = cfg
        .submitters
        .iter()
        .find(|(u, _)| u == s.unit)
        .map(|(_, n)| n.clone())
        .ok_or_else(|| IntakeError::NotASubmitter(s.unit.clone()))?;
    if store.unit_counts()?.contains_key(s.unit) {
        return Err(IntakeError::Fed(s.unit.clone()));
    }
    if s.quarter.last_day() >= today {
        return Err(IntakeError::NotEnded {
            quarter: s.quarter,
            ends: s.quarter.last_day(),
        });
    }
    let parsed = submit::parse(decoder, formats, s.path, s.unit, &name, s.quarter, today)?;
    let file_sha256 = store.put_document(s.bytes)?;
    let mut documents = Vec::new();
    for (doc_name, doc) in &s.documents {
        documents.push(ReportDocument {
            name: doc_name.clone(),
            sha256: store.put_document(doc)?,
            size: doc.len() as u64,
        });
    }
    documents.sort_by(|a, b| a.name.cmp(&b.name));
    let origin = Origin::Submitted {
        by: s.by,
        file_name: s
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        file_sha256,
        format: parsed.format.to_string(),
    };
    let mut report = QuarterlyReport::new(
        s.quarter,
        s.unit.clone(),
        name,
        origin,
        parsed.details,
        documents,
    );
    let stored = store.report_put(&mut report, destinations)?;
    Ok((report, stored))
}

/// Reads every regular file of `dir` as a document (file name, bytes), sorted by name.
pub fn read_documents(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, IntakeError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| IntakeError::Io { path, source }
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let p = e.map_err(io(dir))?.path();
        if p.is_file() {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((name, std::fs::read(&p).map_err(io(&p))?));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
