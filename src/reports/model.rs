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
    /// A natural person's address, kept only so that the disclosure can hide it where free
    /// text repeats it (it is never published). None for organisations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party_address: Option<String>,
    /// 公示截止期 of a penalty: after it a natural person's name is no longer published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publicity_until: Option<NaiveDate>,
}

/// The part of a stored case's content JSON a detail line needs, read without the full
/// [`Case`]'s validation (the case was validated when stored) and skipping everything else.
#[derive(Deserialize)]
pub struct CaseView {
    /// Unit name.
    pub unit_name: String,
    case_id: String,
    title: String,
    action: Action,
    party: PartyView,
    decision_number: Option<String>,
    /// Decision date.
    pub decided_on: Option<NaiveDate>,
    decision: Option<String>,
    penalty: Option<PenaltyView>,
    major: bool,
    legal_review: bool,
    transfer: crate::model::Transfer,
    status: CaseStatus,
    disclosure: Disclosure,
}

#[derive(Deserialize)]
struct PartyView {
    kind: PartyKind,
    name: String,
    id_type: Option<IdType>,
    id_number: Option<String>,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Deserialize)]
struct PenaltyView {
    kinds: Vec<PenaltyKind>,
    fine_fen: Option<Fen>,
    confiscated_fen: Option<Fen>,
    #[serde(default)]
    publicity_until: Option<NaiveDate>,
}

/// The address a detail keeps: a natural person's only (see [`Detail::party_address`]).
fn natural_address(kind: PartyKind, address: Option<String>) -> Option<String> {
    address.filter(|_| kind == PartyKind::NaturalPerson)
}

impl CaseView {
    /// What the supervision figures need of the case.
    pub fn facts(&self) -> super::supervision::CaseFacts {
        super::supervision::CaseFacts {
            case_id: self.case_id.clone(),
            transfer: self.transfer.clone(),
            major: self.major,
            legal_review: self.legal_review,
        }
    }

    /// The detail line; `None` without a decision date.
    pub fn detail(self) -> Option<Detail> {
        Some(Detail {
            case_id: self.case_id,
            title: self.title,
            action: self.action,
            party_kind: self.party.kind,
            party_name: self.party.name,
            party_id_type: self.party.id_type,
            party_id: self.party.id_number,
            decision_number: self.decision_number,
            decided_on: self.decided_on?,
            decision: self.decision,
            penalty_kinds: self
                .penalty
                .as_ref()
                .map_or(Vec::new(), |p| p.kinds.clone()),
            fine_fen: self.penalty.as_ref().and_then(|p| p.fine_fen),
            confiscated_fen: self.penalty.as_ref().and_then(|p| p.confiscated_fen),
            major: self.major,
            legal_review: self.legal_review,
            suspected_crime: self.transfer.suspected_crime,
            transfer_status: self.transfer.status,
            status: self.status,
            disclosure: self.disclosure,
            party_address: natural_address(self.party.kind, self.party.address),
            publicity_until: self.penalty.as_ref().and_then(|p| p.publicity_until),
        })
    }
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
            party_address: natural_address(c.party.kind, c.party.address.clone()),
            publicity_until: c.penalty.as_ref().and_then(|p| p.publicity_until),
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
    /// Fines imposed by decisions that stand: a revoked decision's fine is not owed, so it is
    /// counted apart in [`Summary::revoked_fines_fen`], never here.
    pub fines_fen: Fen,
    /// Confiscations by decisions that stand (revoked ones apart, as for fines).
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
    /// Fines of the revoked decisions, not in [`Summary::fines_fen`]. Absent (0) in reports
    /// made before revoked decisions were counted apart.
    #[serde(default)]
    pub revoked_fines_fen: Fen,
    /// Confiscations of the revoked decisions, not in [`Summary::confiscations_fen`].
    #[serde(default)]
    pub revoked_confiscations_fen: Fen,
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
            if d.status == CaseStatus::Revoked {
                s.revoked_fines_fen = add(s.revoked_fines_fen, d.fine_fen);
                s.revoked_confiscations_fen = add(s.revoked_confiscations_fen, d.confiscated_fen);
            } else {
                s.fines_fen = add(s.fines_fen, d.fine_fen);
                s.confiscations_fen = add(s.confiscations_fen, d.confiscated_fen);
            }
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
    /// The supervision figures (两法衔接, 三项制度) of a computed report, as they stood when it
    /// was made; absent from submitted reports and from reports made before they existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervision: Option<super::supervision::SupervisionFigures>,
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
            supervision: None,
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
        let base = (
            kind,
            &self.unit_name,
            &self.summary,
            &self.details,
            &self.documents,
        );
        // Reports without the block keep the digests they always had.
        let body = match &self.supervision {
            None => serde_json::to_vec(&base),
            Some(f) => serde_json::to_vec(&(base, f)),
        }
        .unwrap_or_default();
        hex::encode(Sha256::digest(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_light_view_of_stored_content_gives_the_same_detail_as_the_case() {
        let cases = crate::ingest::golden::golden_cases();
        for case in &cases {
            let (content, _) = case.clone().into_content();
            let view: CaseView = serde_json::from_slice(&content).unwrap();
            assert_eq!(view.detail(), Detail::of(case), "{}", case.case_id);
        }
        let n = cases.len();
        assert!(n > 10);
    }

    #[test]
    fn summaries_add_up_and_digests_follow_content() {
        let d = |id: &str, fine: u64, major: bool| Detail {
            case_id: id.into(),
            title: "t".into(),
            action: Action::Penalty,
            party_kind: PartyKind::LegalPerson,
            party_name: "p".into(),
            party_id_type: None,
            party_id: None,
            decision_number: None,
            decided_on: NaiveDate::from_ymd_opt(2025, 8, 1).unwrap(),
            decision: None,
            penalty_kinds: vec![PenaltyKind::Fine, PenaltyKind::Warning],
            fine_fen: Some(Fen::new(fine)),
            confiscated_fen: None,
            major,
            legal_review: major,
            suspected_crime: false,
            transfer_status: TransferStatus::None,
            status: CaseStatus::Active,
            disclosure: Disclosure::Public,
            party_address: None,
            publicity_until: None,
        };
        let s = Summary::of(&[d("a", 100, true), d("b", 250, false)]);
        assert_eq!(
            (s.total, s.fines_fen.get(), s.major, s.legal_reviews),
            (2, 350, 1, 1)
        );
        assert_eq!(s.penalties_by_kind.get("fine"), Some(&2));
        assert_eq!(s.penalties_by_kind.get("warning"), Some(&2));
        // A revoked decision is counted, and its money is counted apart, not in the totals.
        let mut revoked = d("c", 4_000, false);
        revoked.status = CaseStatus::Revoked;
        revoked.confiscated_fen = Some(Fen::new(700));
        let s = Summary::of(&[d("a", 100, true), revoked, d("b", 250, false)]);
        assert_eq!((s.total, s.revoked), (3, 1));
        assert_eq!((s.fines_fen.get(), s.confiscations_fen.get()), (350, 0));
        assert_eq!(
            (s.revoked_fines_fen.get(), s.revoked_confiscations_fen.get()),
            (4_000, 700)
        );
        let unit = Uscc::parse("91350200776049653A").unwrap();
        let q = Quarter::parse("2025Q3").unwrap();
        let r = |details| {
            QuarterlyReport::new(
                q,
                unit.clone(),
                "u".into(),
                Origin::Computed,
                details,
                Vec::new(),
            )
        };
        // Order of input does not matter; content does.
        let a = r(vec![d("a", 100, true), d("b", 250, false)]);
        let b = r(vec![d("b", 250, false), d("a", 100, true)]);
        let c = r(vec![d("a", 100, true), d("b", 251, false)]);
        assert_eq!(a.digest, b.digest);
        assert_ne!(a.digest, c.digest);
    }
}
