//! The supervision block of a computed quarterly report (两法衔接 and 三项制度 figures of one unit
//! and quarter): its suspected-crime cases and how their transfers went against the 310号令
//! deadlines, the leads still open on them by rule, the procuratorate's actions and the unit's
//! answers, and the share of its major decisions that went through legal review. The deadlines
//! and leads are as they stand when the report is made.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Quarter, Transfer, TransferStatus, Uscc};
use crate::push::calendar::WorkCalendar;
use crate::store::{Store, StoreError};
use crate::supervision::actions::{Action, Kind};
use crate::supervision::deadlines::{self, State, Step};
use crate::supervision::leads::{Lead, cst};

/// What the block needs of one of the quarter's cases.
#[derive(Debug, Clone)]
pub struct CaseFacts {
    /// Its number.
    pub case_id: String,
    /// Its transfer block.
    pub transfer: Transfer,
    /// A major decision.
    pub major: bool,
    /// Reviewed by the legal department.
    pub legal_review: bool,
}

/// How many open leads one key has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadCount {
    /// The lead key.
    pub key: String,
    /// Open leads with it.
    pub count: u64,
}

/// The figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisionFigures {
    /// Suspected-crime cases decided in the quarter.
    pub suspected_crime: u64,
    /// Of the quarter's cases, those handed to the police.
    pub transferred: u64,
    /// Of those, handed over within 24 hours of the approval.
    pub transferred_on_time: u64,
    /// Of those, handed over later.
    pub transferred_late: u64,
    /// Transferred with no approval time in the record: their timeliness cannot be judged.
    pub transfer_timing_unknown: u64,
    /// Police decisions not made within 3 days of acceptance (late or still missing).
    pub police_decisions_overdue: u64,
    /// Leads still open (open or recommended) on the quarter's cases, by lead key
    /// (`rule:<id>`, `310:<step>`, `major-without-review`), in key order. A list, not a map:
    /// the keys are no XML names.
    pub open_leads: Vec<LeadCount>,
    /// 建议移送 written in the quarter on the unit's cases.
    pub recommendations_issued: u64,
    /// Of those, answered by the unit.
    pub recommendations_answered: u64,
    /// Every supervision action written in the quarter that asks for an answer.
    pub actions_issued: u64,
    /// Of those, answered.
    pub actions_answered: u64,
    /// Major decisions (重大执法决定) decided in the quarter.
    pub major: u64,
    /// Of those, reviewed (法制审核).
    pub major_reviewed: u64,
    /// `major_reviewed / major` in percent with two decimals; absent without major decisions.
    pub major_reviewed_percent: Option<String>,
}

/// Whether the case was handed to the police.
fn transferred(t: &Transfer) -> bool {
    !matches!(t.status, TransferStatus::None | TransferStatus::Recommended)
        || t.transferred_on.is_some()
        || t.transferred_at.is_some()
}

/// The figures of `unit`'s quarter `q`, whose decided cases are `cases`, as of `now`; `actions`
/// are every supervision action stored (read once for all units).
pub fn figures(
    store: &Store,
    unit: &Uscc,
    q: Quarter,
    cases: &[CaseFacts],
    actions: &[Action],
    cal: &WorkCalendar,
    now: DateTime<Utc>,
) -> Result<SupervisionFigures, StoreError> {
    let mut f = SupervisionFigures::default();
    for c in cases {
        f.suspected_crime += u64::from(c.transfer.suspected_crime);
        f.major += u64::from(c.major);
        f.major_reviewed += u64::from(c.major && c.legal_review);
        let dl = deadlines::of(&c.transfer, cal, cst(now));
        if transferred(&c.transfer) {
            f.transferred += 1;
            match dl
                .iter()
                .find(|d| d.step == Step::Transfer)
                .map(|d| d.state)
            {
                Some(State::Met) => f.transferred_on_time += 1,
                Some(State::Late) => f.transferred_late += 1,
                _ => f.transfer_timing_unknown += 1,
            }
        }
        f.police_decisions_overdue += u64::from(
            dl.iter()
                .any(|d| d.step == Step::PoliceDecision && d.broken()),
        );
    }
    if f.major > 0 {
        // Exact to the hundredth, rounded half up, in integers.
        let bp = (f.major_reviewed * 10_000 * 2 + f.major) / (2 * f.major);
        f.major_reviewed_percent = Some(format!("{}.{:02}", bp / 100, bp % 100));
    }
    let ids: HashSet<&str> = cases.iter().map(|c| c.case_id.as_str()).collect();
    let mut open: BTreeMap<String, u64> = BTreeMap::new();
    for item in store.unit_leads_after::<Lead>(unit, None) {
        let (key, lead) = item?;
        let case = key.split(|b| *b == 0).nth(1).unwrap_or_default();
        if lead.status.is_open() && std::str::from_utf8(case).is_ok_and(|c| ids.contains(c)) {
            *open.entry(lead.key).or_default() += 1;
        }
    }
    f.open_leads = open
        .into_iter()
        .map(|(key, count)| LeadCount { key, count })
        .collect();
    for a in actions {
        if a.unit_code != *unit || !q.contains(cst(a.at).date()) || !a.kind.asks_answer() {
            continue;
        }
        let answered = u64::from(!a.answers.is_empty());
        f.actions_issued += 1;
        f.actions_answered += answered;
        if a.kind == Kind::RecommendTransfer {
            f.recommendations_issued += 1;
            f.recommendations_answered += answered;
        }
    }
    Ok(f)
}
