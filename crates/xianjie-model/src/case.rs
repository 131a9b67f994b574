//! The canonical record, `Case` (执法办件): one enforcement action of one unit, keyed by
//! `(unit_code, case_id)`. Every field is a parsed value; see `schemas/case.schema.json` for the JSON form.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::codes::{
    Action, CaseStatus, Disclosure, IdType, InspectionResult, LicenseCategory, LicenseState,
    PartyKind, PenaltyKind, PoliceDecision, TransferStatus,
};
use super::facts::{Amounts, Harm, Moment};
use super::{Fen, IdError, ResidentId, Uscc};

/// A case number (案件编号), unique within its unit: 1-64 characters, no `/`, no control characters
/// (it appears in URL paths and file names).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CaseId(String);

impl CaseId {
    /// Parses a case number.
    pub fn parse(s: &str) -> Result<Self, String> {
        let n = s.chars().count();
        if n == 0 {
            return Err("case id is empty".into());
        }
        if n > 64 {
            return Err(format!(
                "case id has {n} characters, at most 64 are allowed"
            ));
        }
        if let Some(c) = s.chars().find(|c| *c == '/' || c.is_control()) {
            return Err(format!(
                "case id '{}' contains {:?}, which is not allowed",
                s.escape_debug(),
                c
            ));
        }
        Ok(Self(s.to_string()))
    }

    /// The case number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CaseId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CaseId::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A party's identity document, checked according to its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartyId {
    /// A resident ID with verified check character and birth date.
    Resident(ResidentId),
    /// A unified social credit code with verified check character.
    Uscc(Uscc),
    /// Another document (passport, permits, ...): 1-32 letters, digits or `-`.
    Other {
        /// Its type.
        id_type: IdType,
        /// Its number.
        number: String,
    },
}

impl PartyId {
    /// Parses a number of the given type.
    pub fn parse(id_type: IdType, number: &str, today: NaiveDate) -> Result<Self, String> {
        match id_type {
            IdType::ResidentId => ResidentId::parse_at(number, today)
                .map(Self::Resident)
                .map_err(|e: IdError| e.to_string()),
            IdType::Uscc => Uscc::parse(number)
                .map(Self::Uscc)
                .map_err(|e| e.to_string()),
            other => {
                let ok = (1..=32).contains(&number.chars().count())
                    && number
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-');
                if ok {
                    Ok(Self::Other {
                        id_type: other,
                        number: number.to_string(),
                    })
                } else {
                    Err(format!(
                        "{} number must be 1-32 letters, digits or '-'",
                        other.label()
                    ))
                }
            }
        }
    }

    /// The document type.
    pub fn id_type(&self) -> IdType {
        match self {
            Self::Resident(_) => IdType::ResidentId,
            Self::Uscc(_) => IdType::Uscc,
            Self::Other { id_type, .. } => *id_type,
        }
    }

    /// The full number.
    pub fn number(&self) -> &str {
        match self {
            Self::Resident(r) => r.as_str(),
            Self::Uscc(u) => u.as_str(),
            Self::Other { number, .. } => number,
        }
    }
}

/// The administrative counterpart (行政相对人).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawParty", into = "RawParty")]
pub struct Party {
    /// Natural person, legal person, individual business or other organisation.
    pub kind: PartyKind,
    /// Name.
    pub name: String,
    /// Identity document, if known.
    pub id: Option<PartyId>,
    /// Legal representative (法定代表人) of an organisation.
    pub legal_representative: Option<String>,
    /// Address; never in public outputs for natural persons.
    pub address: Option<String>,
    /// Phone; never in public outputs for natural persons.
    pub phone: Option<String>,
}

/// The JSON form of [`Party`]: the ID as two flat fields.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParty {
    kind: PartyKind,
    name: String,
    id_type: Option<IdType>,
    id_number: Option<String>,
    legal_representative: Option<String>,
    address: Option<String>,
    phone: Option<String>,
}

impl TryFrom<RawParty> for Party {
    type Error = String;
    fn try_from(r: RawParty) -> Result<Self, String> {
        let id = match (r.id_type, r.id_number) {
            (Some(t), Some(n)) => Some(PartyId::parse(t, &n, NaiveDate::MAX)?),
            (None, None) => None,
            _ => return Err("id_type and id_number go together".into()),
        };
        Ok(Party {
            kind: r.kind,
            name: r.name,
            id,
            legal_representative: r.legal_representative,
            address: r.address,
            phone: r.phone,
        })
    }
}

impl From<Party> for RawParty {
    fn from(p: Party) -> Self {
        RawParty {
            kind: p.kind,
            name: p.name,
            id_type: p.id.as_ref().map(PartyId::id_type),
            id_number: p.id.as_ref().map(|i| i.number().to_string()),
            legal_representative: p.legal_representative,
            address: p.address,
            phone: p.phone,
        }
    }
}

/// The penalty block (行政处罚).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Penalty {
    /// Kinds of penalty imposed, at least one.
    pub kinds: Vec<PenaltyKind>,
    /// Fine in fen, required when `kinds` has `fine`.
    pub fine_fen: Option<Fen>,
    /// Confiscated amount in fen.
    pub confiscated_fen: Option<Fen>,
    /// 违法行为类型 (`CF_WFXW`), where the source names it apart from the cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violation_type: Option<String>,
    /// 处罚内容 (`CF_NR`), where the source has it apart from the decision text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// 暂扣或吊销证照名称及编号 (`CF_NR_ZKDX`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_affected: Option<String>,
    /// 处罚有效期 (`CF_YXQ`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
    /// 公示截止期 (`CF_GSJZQ`): the last day the decision may stay public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publicity_until: Option<NaiveDate>,
}

/// The licence block (行政许可).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct License {
    /// Category.
    pub category: Option<LicenseCategory>,
    /// Certificate name (许可证书名称).
    pub certificate_name: Option<String>,
    /// Licence number (许可编号).
    pub license_number: String,
    /// Valid from.
    pub valid_from: Option<NaiveDate>,
    /// Valid to; 2099-12-31 means long-term, as the standard writes it.
    pub valid_to: Option<NaiveDate>,
    /// 行政许可决定文书名称 (`XK_XKWS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_name: Option<String>,
    /// 当前状态 (`XK_ZT`) as the source states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<LicenseState>,
}

/// The inspection block (双随机一公开).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inspection {
    /// Random-selection batch.
    pub batch_id: Option<String>,
    /// Inspection task.
    pub task_name: Option<String>,
    /// Inspectors' names.
    pub inspectors: Vec<String>,
    /// Result code.
    pub result_code: InspectionResult,
}

/// The suspected-crime transfer block (涉嫌犯罪移送).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// Whether a crime is suspected.
    pub suspected_crime: bool,
    /// Date handed over.
    pub transferred_on: Option<NaiveDate>,
    /// Receiving organ (usually the public-security bureau).
    pub receiving_organ: Option<String>,
    /// Transfer document number.
    pub document_number: Option<String>,
    /// Suspected charge.
    pub suspected_charge: Option<String>,
    /// Where the transfer stands.
    pub status: TransferStatus,
    /// 批准移送: the unit's head approved the transfer (310号令 art. 5: hand over within 24 hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Moment>,
    /// 移送: handed over, as precisely as the source says (`transferred_on` is its day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferred_at: Option<Moment>,
    /// 受理: the police accepted the case (art. 8: decide within 3 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<Moment>,
    /// 立案 or 不予立案.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub police_decision: Option<PoliceDecision>,
    /// When the police decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub police_decided_at: Option<Moment>,
    /// 提请复议 of a refusal (art. 9: within 3 days of the refusal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconsideration_requested_at: Option<Moment>,
    /// The police's decision on reconsideration (art. 9: within 3 days of the request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconsideration_decided_at: Option<Moment>,
}

impl Transfer {
    /// Whether the record says anything about a transfer: then its 310号令 deadlines are
    /// watched and it is listed among the transfers.
    pub fn is_watched(&self) -> bool {
        self.suspected_crime
            || self.status != TransferStatus::None
            || self.transferred_on.is_some()
            || self.approved_at.is_some()
    }
}

/// A document attached to a case; the bytes live content-addressed in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentRef {
    /// Identifier within the case.
    pub doc_id: String,
    /// Title.
    pub title: String,
    /// Kind (决定书, 笔录, ...).
    pub kind: String,
    /// Media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
}

/// Where a case version came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Adapter name.
    pub adapter: String,
    /// Source system.
    pub system: String,
    /// File name or request.
    pub file: String,
    /// Row, line or element within it.
    pub location: String,
    /// When it was ingested.
    pub ingested_at: DateTime<Utc>,
}

/// One enforcement action (执法办件).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The enforcement unit's USCC.
    pub unit_code: Uscc,
    /// The enforcement unit's name.
    pub unit_name: String,
    /// Case number, unique within the unit.
    pub case_id: CaseId,
    /// Case name (案件名称).
    pub title: String,
    /// Cause of action (案由).
    pub cause: Option<String>,
    /// Kind of action.
    pub action: Action,
    /// Counterpart.
    pub party: Party,
    /// Legal basis.
    pub legal_basis: Option<String>,
    /// Facts found.
    pub facts: Option<String>,
    /// Decision (处理结果).
    pub decision: Option<String>,
    /// Decision document number (决定书文号).
    pub decision_number: Option<String>,
    /// Decision date.
    pub decided_on: Option<NaiveDate>,
    /// Filing date.
    pub filed_on: Option<NaiveDate>,
    /// Closing date.
    pub closed_on: Option<NaiveDate>,
    /// Present for penalties.
    pub penalty: Option<Penalty>,
    /// Present for licences.
    pub license: Option<License>,
    /// Present for inspections.
    pub inspection: Option<Inspection>,
    /// Major enforcement decision (重大执法决定).
    pub major: bool,
    /// Went through legal review (法制审核).
    pub legal_review: bool,
    /// Went through collective discussion (集体讨论).
    pub collective_discussion: bool,
    /// Suspected-crime transfer.
    pub transfer: Transfer,
    /// Amounts the prosecution thresholds speak of.
    #[serde(default, skip_serializing_if = "Amounts::is_empty")]
    pub amounts: Amounts,
    /// Harm done.
    #[serde(default, skip_serializing_if = "Harm::is_empty")]
    pub harm: Harm,
    /// Whether the decision stands.
    pub status: CaseStatus,
    /// Whether it may be disclosed publicly.
    pub disclosure: Disclosure,
    /// 备注 (`BZ`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
    /// Attached documents.
    pub documents: Vec<DocumentRef>,
    /// Provenance of this version.
    pub source: Source,
    /// Version, from 1, incremented on each change of content.
    pub version: u64,
    /// When this version was stored.
    pub updated_at: DateTime<Utc>,
}

/// Why a decision is never published (the 双公示 rules): the unit marked it not for disclosure
/// (state secret, trade secret, personal privacy, a minor), or its party is a natural person
/// under 18 on the decision date, whatever the source marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withheld {
    /// Marked 不公开 by the unit.
    Restricted,
    /// A natural person under 18 on the decision date, by the birth date in the ID number.
    Minor,
}

impl Withheld {
    /// The reason's code, as packages and logs carry it.
    pub fn code(self) -> &'static str {
        match self {
            Withheld::Restricted => "restricted",
            Withheld::Minor => "minor",
        }
    }
}

/// The birth date a resident ID number carries: 18 characters (the check character is not
/// trusted), or a first-generation 15-digit number with a 19xx year.
pub fn birth_date_of(id_number: &str) -> Option<NaiveDate> {
    let n = id_number.trim();
    let digits = |r: std::ops::Range<usize>| {
        let t = n.get(r)?;
        t.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| t.parse::<u32>().ok())?
    };
    let (y, m, d) = match n.len() {
        18 if n.get(..17)?.bytes().all(|b| b.is_ascii_digit()) => {
            (digits(6..10)?, digits(10..12)?, digits(12..14)?)
        }
        15 if n.bytes().all(|b| b.is_ascii_digit()) => {
            (1900 + digits(6..8)?, digits(8..10)?, digits(10..12)?)
        }
        _ => return None,
    };
    NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
}

/// Whether the holder of `id_number` is under 18 on `on`. One born on 29 February comes of age
/// on 1 March in a common year. A number without a readable birth date is not a minor's.
pub fn is_minor_on(id_number: &str, on: NaiveDate) -> bool {
    use chrono::Datelike;
    let Some(born) = birth_date_of(id_number) else {
        return false;
    };
    let of_age = NaiveDate::from_ymd_opt(born.year() + 18, born.month(), born.day())
        .or_else(|| NaiveDate::from_ymd_opt(born.year() + 18, 3, 1));
    of_age.is_some_and(|adult| on < adult)
}

impl Case {
    /// Why the case may never reach a public destination or disclosure, if it may not.
    pub fn withheld(&self) -> Option<Withheld> {
        if self.disclosure == Disclosure::Restricted {
            return Some(Withheld::Restricted);
        }
        let minor = self.party.kind == PartyKind::NaturalPerson
            && match (&self.party.id, self.decided_on) {
                (Some(id), Some(on)) => is_minor_on(id.number(), on),
                _ => false,
            };
        minor.then_some(Withheld::Minor)
    }

    /// The store key of the case: the unit code, a 0 byte, the case number.
    pub fn key(&self) -> Vec<u8> {
        case_key(&self.unit_code, &self.case_id)
    }

    /// The SHA-256 of the case's content: everything but provenance, version and update time. Two
    /// ingests of the same data give the same digest, so an unchanged record makes no new version.
    pub fn content_digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.clone().into_content().0).into()
    }

    /// Splits the case into its content JSON — the case with provenance, version and update time
    /// set to neutral values, the bytes [`Case::content_digest`] hashes and the store keeps — and its
    /// provenance. Serializing once serves both the digest and the stored value.
    pub fn into_content(mut self) -> (Vec<u8>, Source) {
        let source = std::mem::replace(&mut self.source, Source::neutral());
        self.version = 0;
        self.updated_at = DateTime::<Utc>::UNIX_EPOCH;
        // Serializing a struct of plain values cannot fail; an empty result would still be
        // deterministic, so no error path is needed here.
        (serde_json::to_vec(&self).unwrap_or_default(), source)
    }
}

impl Source {
    /// The placeholder provenance in a case's content form.
    pub fn neutral() -> Self {
        Source {
            adapter: String::new(),
            system: String::new(),
            file: String::new(),
            location: String::new(),
            ingested_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

/// The store key of `(unit, case_id)`.
pub fn case_key(unit: &Uscc, case_id: &CaseId) -> Vec<u8> {
    let mut k = Vec::with_capacity(19 + case_id.as_str().len());
    k.extend_from_slice(unit.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(case_id.as_str().as_bytes());
    k
}
