//! The quarterly enforcement statistics report (执法案件统计报表) of one unit and quarter: its
//! summary, its detail list (明细), where it came from and its version. One function computes a
//! summary from details ([`Summary::of`]), so a computed report and a submitted one are checked
//! against the same arithmetic.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{
    Action, Case, CaseStatus, Disclosure, Fen, IdType, PartyKind, PenaltyKind, Quarter,
    TransferStatus, Uscc,
};

/// Where a report came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// Computed from the cases the gateway holds.
    Computed,
    /// Submitted by the unit (a vertically managed department without a feed).
    Submitted {
        /// Who submitted (administrator or API client).
        by: String,
        /// The submitted file's name.
        file_name: String,
        /// Its SHA-256 (hex); the bytes are kept in the document store.
        file_sha256: String,
        /// `csv`, `xlsx` or `xml`.
        format: String,
    },
}

/// One case of the detail list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    /// Case number.
    pub case_id: String,
    /// Case name.
    pub title: String,
    /// Kind of action.
    pub action: Action,
    /// Counterpart kind.
    pub party_kind: PartyKind,
    /// Counterpart name.
    pub party_name: String,
    /// Its ID document type.
    pub party_id_type: Option<IdType>,
    /// Its ID number, in full (masked in public disclosure).
    pub party_id: Option<String>,
    /// Decision document number.
    pub decision_number: Option<String>,
    /// Decision date: the date that puts the case in a quarter.
    pub decided_on: NaiveDate,
    /// Outcome (处理结果).
    pub decision: Option<String>,
    /// Penalty kinds, for penalties.
    pub penalty_kinds: Vec<PenaltyKind>,
    /// Fine.
    pub fine_fen: Option<Fen>,
    /// Confiscation.
    pub confiscated_fen: Option<Fen>,
    /// Major enforcement decision.
    pub major: bool,
    /// Went through legal review.
    pub legal_review: bool,
    /// Suspected crime.
    pub suspected_crime: bool,
    /// Transfer status.
    pub transfer_status: TransferStatus,
    /// Whether the decision stands.
    pub status: CaseStatus,
    /// Whether it may be disclosed publicly.
    pub disclosure: Disclosure,
}

impl Detail {
    /// The detail line of a case; `None` when the case has no decision date (it belongs to no
    /// quarter yet).
    pub fn of(c: &Case) -> Option<Detail> {
        Some(Detail {
            case_id: c.case_id.as_str().to_string(),
            title: c.title.clone(),
            action: c.action,
            party_kind: c.party.kind,
            party_name: c.party.name.clone(),
            party_id_type: c.party.id.as_ref().map(|i| i.id_type()),
            party_id: c.party.id.as_ref().map(|i| i.number().to_string()),
            decision_number: c.decision_number.clone(),
            decided_on: c.decided_on?,
            decision: c.decision.clone(),
            penalty_kinds: c.penalty.as_ref().map_or(Vec::new(), |p| p.kinds.clone()),
            fine_fen: c.penalty.as_ref().and_then(|p| p.fine_fen),
            confiscated_fen: c.penalty.as_ref().and_then(|p| p.confiscated_fen),
            major: c.major,
            legal_review: c.legal_review,
            suspected_crime: c.transfer.suspected_crime,
            transfer_status: c.transfer.status,
            status: c.status,
            disclosure: c.disclosure,
        })
    }
}

/// The report's figures. Keys of the maps are the code-list codes (`penalty`, `fine`, `filed`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Cases decided in the quarter.
    pub total: u64,
    /// Per action.
    pub by_action: BTreeMap<String, u64>,
    /// Penalty decisions per penalty kind (a decision with two kinds counts in both).
    pub penalties_by_kind: BTreeMap<String, u64>,
    /// Fines imposed, in all.
    pub fines_fen: Fen,
    /// Confiscations, in all.
    pub confiscations_fen: Fen,
    /// Major enforcement decisions.
    pub major: u64,
    /// Decisions that went through legal review.
    pub legal_reviews: u64,
    /// Suspected-crime cases.
    pub suspected_crime: u64,
    /// Suspected-crime cases per transfer status.
    pub transfers_by_status: BTreeMap<String, u64>,
    /// Revoked decisions.
    pub revoked: u64,
    /// Corrected decisions.
    pub corrected: u64,
}

impl Summary {
    /// The figures of a detail list. Money sums saturate (a quarter's fines cannot reach 1.8e17 fen).
    pub fn of(details: &[Detail]) -> Summary {
        let mut s = Summary::default();
        for d in details {
            s.total += 1;
            *s.by_action.entry(d.action.code().into()).or_default() += 1;
            if d.action == Action::Penalty {
                for k in &d.penalty_kinds {
                    *s.penalties_by_kind.entry(k.code().into()).or_default() += 1;
                }
            }
            let add =
                |a: Fen, b: Option<Fen>| Fen::new(a.get().saturating_add(b.map_or(0, Fen::get)));
            s.fines_fen = add(s.fines_fen, d.fine_fen);
            s.confiscations_fen = add(s.confiscations_fen, d.confiscated_fen);
            s.major += u64::from(d.major);
            s.legal_reviews += u64::from(d.legal_review);
            if d.suspected_crime {
                s.suspected_crime += 1;
                *s.transfers_by_status
                    .entry(d.transfer_status.code().into())
                    .or_default() += 1;
            }
            s.revoked += u64::from(d.status == CaseStatus::Revoked);
            s.corrected += u64::from(d.status == CaseStatus::Corrected);
        }
        s
    }
}

/// A document submitted with a report, kept content-addressed in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDocument {
    /// File name as submitted.
    pub name: String,
    /// SHA-256 (hex) of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// One unit's report for one quarter, in one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarterlyReport {
    /// The quarter.
    pub quarter: Quarter,
    /// The unit.
    pub unit_code: Uscc,
    /// Its name.
    pub unit_name: String,
    /// 1, 2, … per unit and quarter; a new one whenever the content changes.
    pub version: u64,
    /// Computed or submitted.
    pub origin: Origin,
    /// When this version was made.
    pub generated_at: DateTime<Utc>,
    /// SHA-256 (hex) of the content (origin kind, summary, details, documents): equal digests,
    /// equal reports.
    pub digest: String,
    /// The figures.
    pub summary: Summary,
    /// The detail list, ordered by case number.
    pub details: Vec<Detail>,
    /// Documents submitted with it.
    pub documents: Vec<ReportDocument>,
}

impl QuarterlyReport {
    /// A report (version 0 until stored) from its details, sorted by case number; the summary and
    /// digest are computed here.
    pub fn new(
        quarter: Quarter,
        unit_code: Uscc,
        unit_name: String,
        origin: Origin,
        mut details: Vec<Detail>,
        documents: Vec<ReportDocument>,
    ) -> QuarterlyReport {
        details.sort_by(|a, b| a.case_id.cmp(&b.case_id));
        let summary = Summary::of(&details);
        let mut r = QuarterlyReport {
            quarter,
            unit_code,
            unit_name,
            version: 0,
            origin,
            generated_at: Utc::now(),
            digest: String::new(),
            summary,
            details,
            documents,
        };
        r.digest = r.content_digest();
        r
    }

    /// The digest of what the report says (not when or as which version it was made).
    pub fn content_digest(&self) -> String {
        let kind = match self.origin {
            Origin::Computed => "computed",
            Origin::Submitted { .. } => "submitted",
        };
        let body = serde_json::to_vec(&(
            kind,
            &self.unit_name,
            &self.summary,
            &self.details,
            &self.documents,
        ))
        .unwrap_or_default();
        hex::encode(Sha256::digest(body))
    }
}
