//! Taking in a submitted report: who may submit (a configured submitter without a feed, for a
//! quarter that has ended), decoding and checking it ([`super::submit`]), keeping the file and
//! its document copies (文书副本, checked as every document is: [`crate::ingest::documents`])
//! content-addressed, and storing it as the unit's next report version. A resubmission of the
//! same content is recognised and stores nothing new.

use std::path::Path;

use chrono::NaiveDate;

use super::model::{Origin, QuarterlyReport, ReportDocument};
use super::submit::{self, SubmitError};
use crate::config::ReportsConfig;
use crate::ingest::Adapter;
use crate::ingest::documents::{self, DocumentError};
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
    /// Document copies that cannot be taken (every problem listed); nothing was stored.
    #[error("the document copies are refused with {} problem(s):{}", .0.len(), listed(.0))]
    Documents(Vec<DocumentError>),
}

fn listed(problems: &[DocumentError]) -> String {
    problems.iter().map(|p| format!("\n  {p}")).collect()
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
    /// The directory of its document copies, if any: every file in it is one.
    pub documents: Option<&'a Path>,
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
    // Every copy is checked before the report is, and read again (checked again) one at a time
    // as it is stored: memory holds one document at most.
    let limits = decoder.limits();
    let names = match s.documents {
        Some(dir) => documents::check_folder(dir, limits).map_err(IntakeError::Documents)?,
        None => Vec::new(),
    };
    let parsed = submit::parse(decoder, formats, s.path, s.unit, &name, s.quarter, today)?;
    let mut documents = Vec::with_capacity(names.len());
    if let Some(dir) = s.documents {
        for doc_name in &names {
            let doc = documents::read(dir, doc_name, limits.document_bytes)
                .map_err(|e| IntakeError::Documents(vec![e]))?;
            documents.push(ReportDocument {
                name: doc.name,
                sha256: store.put_document(&doc.bytes)?,
                size: doc.bytes.len() as u64,
            });
        }
    }
    let file_sha256 = store.put_document(s.bytes)?;
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
