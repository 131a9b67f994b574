//! The procuratorate's workbench over the store, free of HTTP: writing a supervision action (its
//! documents, the leads it acts on, its notices), the unit's answer, a case's timeline, the
//! transfers with their 310号令 deadlines, and the search for a party across ports. Every
//! function takes the units the caller may read and never returns a case of another.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

use super::actions::{Action, Answer, Invalid, Kind, NewDocument, Request, store_documents};
use super::deadlines::{self, Deadline};
use super::leads::{Lead, LeadStatus, cst};
use crate::model::{Case, CaseId, IdType, Moment, ResidentId, Transfer, Uscc};
use crate::push::calendar::WorkCalendar;
use crate::store::{Store, StoreError, party_id};

/// Why a workbench operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// The case is not in the store.
    #[error("no case {case_id} in port {unit}")]
    NoCase {
        /// Unit.
        unit: Uscc,
        /// Case.
        case_id: CaseId,
    },
    /// No action with this id.
    #[error("no supervision action {0}")]
    NoAction(u64),
    /// A lead key the case does not have.
    #[error("leads: case {case_id} has no lead {key} (its leads: {known})")]
    UnknownLead {
        /// Case.
        case_id: CaseId,
        /// The key asked for.
        key: String,
        /// The keys it has.
        known: String,
    },
    /// The request is not valid.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records `req` by `client` on `unit`'s case `case_id`: its documents stored, the leads it acts
/// on marked (a recommendation: `recommended`; a dismissing note: `dismissed` with its text as
/// the reason), a notice queued for each of `destinations`. Returns the action stored.
pub fn write(
    store: &Store,
    unit: &Uscc,
    case_id: &CaseId,
    client: &str,
    req: Request,
    destinations: &[String],
    now: DateTime<Utc>,
) -> Result<Action, WorkError> {
    let case = store
        .get_case(unit, case_id)?
        .ok_or_else(|| WorkError::NoCase {
            unit: unit.clone(),
            case_id: case_id.clone(),
        })?;
    let key = case.key();
    let mut leads: Vec<Lead> = store.case_leads(&key)?;
    let acted: Vec<String> = match &req.leads {
        Some(keys) => {
            if let Some(k) = keys.iter().find(|k| !leads.iter().any(|l| &l.key == *k)) {
                return Err(WorkError::UnknownLead {
                    case_id: case_id.clone(),
                    key: k.clone(),
                    known: leads
                        .iter()
                        .map(|l| l.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            keys.clone()
        }
        None if req.kind == Kind::RecommendTransfer => leads
            .iter()
            .filter(|l| l.status.is_open() && l.key.starts_with("rule:"))
            .map(|l| l.key.clone())
            .collect(),
        None => Vec::new(),
    };
    let mut changed = false;
    for l in leads.iter_mut().filter(|l| acted.contains(&l.key)) {
        let status = if req.dismiss {
            LeadStatus::Dismissed {
                reason: req.text.clone(),
            }
        } else if req.kind == Kind::RecommendTransfer && l.status == LeadStatus::Open {
            LeadStatus::Recommended
        } else {
            continue;
        };
        l.status = status;
        l.updated_at = now;
        changed = true;
    }
    let id = store.next_supervision_id()?;
    let documents = store_documents(store, &format!("S{id}"), &req.documents, req.kind.label())?;
    let action = Action {
        id,
        unit_code: unit.clone(),
        case_id: case_id.clone(),
        case_version: case.version,
        kind: req.kind,
        text: req.text,
        documents,
        leads: acted,
        dismissed: req.dismiss,
        client: client.to_string(),
        at: now,
        notified: destinations.to_vec(),
        answers: Vec::new(),
    };
    store.put_supervision(id, &key, &action, destinations)?;
    if changed {
        let keyed: Vec<(String, &Lead)> = leads.iter().map(|l| (l.key.clone(), l)).collect();
        store.put_case_leads(&key, &keyed)?;
    }
    Ok(action)
}

/// Records the unit's answer to action `id`, by `by`.
pub fn answer(
    store: &Store,
    id: u64,
    by: &str,
    text: String,
    docs: &[NewDocument],
    now: DateTime<Utc>,
) -> Result<Action, WorkError> {
    let Some(existing) = store.get_supervision::<Action>(id)? else {
        return Err(WorkError::NoAction(id));
    };
    let n = existing.answers.len() + 1;
    let documents = store_documents(store, &format!("S{id}-A{n}"), docs, "答复")?;
    let answer = Answer {
        text,
        documents,
        by: by.to_string(),
        at: now,
    };
    match store.update_supervision(id, |mut a: Action| {
        a.answers.push(answer.clone());
        Ok::<_, std::convert::Infallible>(a)
    })? {
        Some(Ok(a)) => Ok(a),
        Some(Err(never)) => match never {},
        None => Err(WorkError::NoAction(id)),
    }
}

/// The documents of a case's supervision actions and answers (served like the case's own).
pub fn action_documents(
    store: &Store,
    case_key: &[u8],
) -> Result<Vec<crate::model::DocumentRef>, StoreError> {
    let actions: Vec<Action> = store.case_supervision(case_key)?;
    Ok(actions
        .into_iter()
        .flat_map(|a| {
            a.documents
                .into_iter()
                .chain(a.answers.into_iter().flat_map(|x| x.documents))
        })
        .collect())
}

/// One entry of a case's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// When, China Standard Time: `YYYY-MM-DD` when only the day is known, else
    /// `YYYY-MM-DDTHH:MM:SS+08:00`.
    pub at: String,
    /// `filed`, `decided`, `closed`, `version`, `transfer`, `lead`, `supervision`, `answer`.
    pub kind: &'static str,
    /// What happened, for a person.
    pub title: String,
    /// The version, the lead key or the action id it refers to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The text of an action or answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip)]
    order: NaiveDateTime,
}

/// A case's timeline: what happened to it, in order, and its transfer deadlines now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// Unit.
    pub unit_code: Uscc,
    /// Case.
    pub case_id: CaseId,
    /// Its current version.
    pub version: u64,
    /// Its title.
    pub title: String,
    /// Entries, oldest first.
    pub entries: Vec<Entry>,
    /// The 310号令 deadlines of its transfer, where they stand now.
    pub deadlines: Vec<Deadline>,
}

fn day_start(d: NaiveDate) -> NaiveDateTime {
    d.and_hms_opt(0, 0, 0).unwrap_or_default()
}

fn entry(
    order: NaiveDateTime,
    at: String,
    kind: &'static str,
    title: String,
    reference: Option<String>,
    text: Option<String>,
) -> Entry {
    Entry {
        at,
        kind,
        title,
        reference,
        text,
        order,
    }
}

fn at_utc(t: DateTime<Utc>) -> (NaiveDateTime, String) {
    let local = cst(t);
    (
        local,
        format!("{}+08:00", local.format("%Y-%m-%dT%H:%M:%S")),
    )
}

fn at_day(d: NaiveDate) -> (NaiveDateTime, String) {
    (day_start(d), d.format("%Y-%m-%d").to_string())
}

fn at_moment(m: Moment) -> (NaiveDateTime, String) {
    match m {
        Moment::Day(d) => at_day(d),
        Moment::At(t) => (t, format!("{}+08:00", t.format("%Y-%m-%dT%H:%M:%S"))),
    }
}

/// The transfer's steps as timeline entries.
fn transfer_entries(t: &Transfer, out: &mut Vec<Entry>) {
    let transferred = t.transferred_at.or(t.transferred_on.map(Moment::Day));
    let decision = match t.police_decision {
        Some(crate::model::PoliceDecision::Filed) => "公安机关立案",
        Some(crate::model::PoliceDecision::NotFiled) => "公安机关不予立案",
        None => "公安机关作出决定",
    };
    let organ = t.receiving_organ.as_deref().unwrap_or("公安机关");
    let steps = [
        (t.approved_at, "批准移送".to_string()),
        (transferred, format!("移送{organ}")),
        (t.accepted_at, "公安机关受理".to_string()),
        (t.police_decided_at, decision.to_string()),
        (t.reconsideration_requested_at, "提请复议".to_string()),
        (
            t.reconsideration_decided_at,
            "公安机关作出复议决定".to_string(),
        ),
    ];
    for (m, title) in steps {
        if let Some(m) = m {
            let (order, at) = at_moment(m);
            out.push(entry(order, at, "transfer", title, None, None));
        }
    }
}

/// The timeline of `case` as of `now`.
pub fn timeline(
    store: &Store,
    case: &Case,
    cal: &WorkCalendar,
    now: DateTime<Utc>,
) -> Result<Timeline, StoreError> {
    let key = case.key();
    let mut out = Vec::new();
    for (d, kind, title) in [
        (case.filed_on, "filed", "立案"),
        (case.decided_on, "decided", "作出决定"),
        (case.closed_on, "closed", "结案"),
    ] {
        if let Some(d) = d {
            let (order, at) = at_day(d);
            out.push(entry(order, at, kind, title.into(), None, None));
        }
    }
    // The index holds the earlier versions; the case says when its current one was stored.
    let mut versions = store.case_versions(&key)?;
    versions.retain(|v| v.version < case.version);
    versions.push(crate::store::VersionEntry {
        version: case.version,
        at: case.updated_at,
    });
    for v in versions {
        let (order, at) = at_utc(v.at);
        out.push(entry(
            order,
            at,
            "version",
            format!("第{}版入库", v.version),
            Some(v.version.to_string()),
            None,
        ));
    }
    transfer_entries(&case.transfer, &mut out);
    for l in store.case_leads::<Lead>(&key)? {
        let (order, at) = at_utc(l.detected_at);
        out.push(entry(
            order,
            at,
            "lead",
            format!("线索：{}（{}）", l.title, l.status.label()),
            Some(l.key),
            None,
        ));
    }
    for a in store.case_supervision::<Action>(&key)? {
        let (order, at) = at_utc(a.at);
        out.push(entry(
            order,
            at,
            "supervision",
            format!("{}（{}）", a.kind.label(), a.client),
            Some(a.id.to_string()),
            Some(a.text.clone()),
        ));
        for x in a.answers {
            let (order, at) = at_utc(x.at);
            out.push(entry(
                order,
                at,
                "answer",
                format!("{}的答复（{}）", case.unit_name, x.by),
                Some(a.id.to_string()),
                Some(x.text),
            ));
        }
    }
    // Stable: entries of the same moment keep the order above (a version before its lead).
    out.sort_by_key(|e| e.order);
    Ok(Timeline {
        unit_code: case.unit_code.clone(),
        case_id: case.case_id.clone(),
        version: case.version,
        title: case.title.clone(),
        entries: out,
        deadlines: deadlines::of(&case.transfer, cal, cst(now)),
    })
}

/// A transfer with its deadlines, as the overdue list shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransferView {
    /// Unit.
    pub unit_code: Uscc,
    /// Case.
    pub case_id: CaseId,
    /// Its version.
    pub version: u64,
    /// Title.
    pub title: String,
    /// The party's name.
    pub party_name: String,
    /// The transfer block.
    pub transfer: Transfer,
    /// Its deadlines now.
    pub deadlines: Vec<Deadline>,
    /// Whether a deadline is broken: done late, or not done and past due.
    pub overdue: bool,
}

/// The transfers of `units`' cases with their deadlines as of `now`; only those with a broken
/// deadline when `overdue_only`; at most `limit`, and whether more were left.
pub fn transfers(
    store: &Store,
    units: &[Uscc],
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    overdue_only: bool,
    limit: usize,
) -> Result<(Vec<TransferView>, bool), StoreError> {
    let readable: BTreeSet<&str> = units.iter().map(Uscc::as_str).collect();
    let mut out = Vec::new();
    for key in store.transfer_case_keys()? {
        let unit = key.split(|b| *b == 0).next().unwrap_or_default();
        if !std::str::from_utf8(unit).is_ok_and(|u| readable.contains(u)) {
            continue;
        }
        let Some(case) = store.get_case_by_key(&key)? else {
            continue;
        };
        let dl = deadlines::of(&case.transfer, cal, cst(now));
        let overdue = dl.iter().any(Deadline::broken);
        if overdue_only && !overdue {
            continue;
        }
        if out.len() == limit {
            return Ok((out, true));
        }
        out.push(TransferView {
            unit_code: case.unit_code,
            case_id: case.case_id,
            version: case.version,
            title: case.title,
            party_name: case.party.name,
            transfer: case.transfer,
            deadlines: dl,
            overdue,
        });
    }
    Ok((out, false))
}

/// The district's open leads (open or recommended) and its transfers with a broken deadline
/// as of `now`: the workbench's two gauges.
pub fn gauges(
    store: &Store,
    cal: &WorkCalendar,
    now: DateTime<Utc>,
) -> Result<(u64, u64), StoreError> {
    let mut open = 0;
    for l in store.all_leads::<Lead>() {
        open += u64::from(l?.1.status.is_open());
    }
    let mut overdue = 0;
    for key in store.transfer_case_keys()? {
        if let Some(c) = store.get_case_by_key(&key)? {
            overdue += u64::from(
                deadlines::of(&c.transfer, cal, cst(now))
                    .iter()
                    .any(Deadline::broken),
            );
        }
    }
    Ok((open, overdue))
}

/// What a search looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchBy {
    /// A party's USCC, exactly (through the party index).
    Uscc(Uscc),
    /// A party's document number, exactly (resident ID, or another document's number).
    IdNumber(String),
    /// A party name's prefix or any part of it.
    PartyName(String),
}

/// A case found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// Unit.
    pub unit_code: Uscc,
    /// Unit name.
    pub unit_name: String,
    /// Case.
    pub case_id: CaseId,
    /// Version.
    pub version: u64,
    /// Title.
    pub title: String,
    /// Action (`penalty`, `license`, …).
    pub action: crate::model::Action,
    /// The party's name.
    pub party_name: String,
    /// Decision date.
    pub decided_on: Option<NaiveDate>,
}

impl From<Case> for Found {
    fn from(c: Case) -> Self {
        Found {
            unit_code: c.unit_code,
            unit_name: c.unit_name,
            case_id: c.case_id,
            version: c.version,
            title: c.title,
            action: c.action,
            party_name: c.party.name,
            decided_on: c.decided_on,
        }
    }
}

/// The party index ids a document number may be stored under.
fn index_ids(number: &str) -> Vec<Vec<u8>> {
    let n = number.trim();
    let mut ids = Vec::new();
    if let Ok(u) = Uscc::parse(n) {
        ids.push([b"U", u.as_str().as_bytes()].concat());
    }
    if let Ok(r) = ResidentId::parse(n) {
        ids.push([b"R", r.as_str().as_bytes()].concat());
    }
    for t in IdType::ALL {
        ids.push(format!("O{}:{n}", t.code()).into_bytes());
    }
    ids
}

/// The cases of `units` that match `by`, at most `limit`, and whether more were left. Exact
/// searches read the party index; a name is looked for in each readable unit's short index
/// entries. A case of another unit is never read.
pub fn search(
    store: &Store,
    units: &[Uscc],
    by: &SearchBy,
    limit: usize,
) -> Result<(Vec<Found>, bool), StoreError> {
    let readable: BTreeSet<&[u8]> = units.iter().map(|u| u.as_str().as_bytes()).collect();
    let keep = |k: &[u8]| readable.contains(k.split(|b| *b == 0).next().unwrap_or_default());
    // Index entries can be stale (a new version naming another party): each case read is
    // checked for what was looked for.
    let mut keys: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    match by {
        SearchBy::Uscc(u) => {
            let id = [b"U", u.as_str().as_bytes()].concat();
            for k in store.cases_of_party_where(&id, limit + 1, keep)? {
                keys.push((k, Some(id.clone())));
            }
        }
        SearchBy::IdNumber(n) => {
            for id in index_ids(n) {
                for k in store.cases_of_party_where(&id, limit + 1 - keys.len(), keep)? {
                    keys.push((k, Some(id.clone())));
                }
                if keys.len() > limit {
                    break;
                }
            }
        }
        SearchBy::PartyName(needle) => {
            for k in store.cases_by_party_name(needle, limit + 1, keep)? {
                keys.push((k, None));
            }
        }
    }
    let mut out = Vec::with_capacity(keys.len().min(limit));
    let mut more = false;
    for (k, id) in keys {
        let Some(c) = store.get_case_by_key(&k)? else {
            continue;
        };
        let matches = match (&id, by) {
            (Some(id), _) => party_id(&c) == *id,
            (None, SearchBy::PartyName(needle)) => c.party.name.contains(needle.as_str()),
            (None, _) => false,
        };
        if !matches || !readable.contains(c.unit_code.as_str().as_bytes()) {
            continue;
        }
        if out.len() == limit {
            more = true;
            break;
        }
        out.push(Found::from(c));
    }
    Ok((out, more))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Fen, PartyId, Share, TransferStatus};
    use crate::supervision::leads::{self, LeadStatus};

    const TAX: &str = "11320102507529170Q";
    const FIRE: &str = "11320102471049746T";
    const MARKET: &str = "11320102526018159L";
    const PARTY: &str = "91320102MA60876NU7";

    fn rules() -> Vec<crate::supervision::Rule> {
        crate::supervision::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"),
        )
        .unwrap()
    }

    /// The 逃税 rule's meeting golden case, as unit `unit`'s case `id` of the one party.
    fn case(unit: &str, id: &str) -> Case {
        let rules = rules();
        let r = rules.iter().find(|r| r.id == "tax-evasion-201").unwrap();
        let mut c = r.cases.iter().find(|g| g.expect).unwrap().case.clone();
        c.unit_code = Uscc::parse(unit).unwrap();
        c.case_id = CaseId::parse(id).unwrap();
        c.party.name = "南京甲乙商贸有限公司".into();
        c.party.id = Some(PartyId::Uscc(Uscc::parse(PARTY).unwrap()));
        c.amounts.evaded_tax_fen = Some(Fen::new(67_378_055));
        c.amounts.evaded_tax_share = Share::from_basis_points(1_500);
        c.decided_on = NaiveDate::from_ymd_opt(2025, 6, 2);
        c
    }

    fn stored(cases: &[Case]) -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        store.upsert_cases(cases, &|_, _| Vec::new()).unwrap();
        let cal = WorkCalendar::official().unwrap();
        leads::refresh(&store, &rules(), &cal, Utc::now(), &|| false).unwrap();
        (tmp, store)
    }

    fn uscc(u: &str) -> Uscc {
        Uscc::parse(u).unwrap()
    }

    #[test]
    fn a_search_never_returns_a_case_of_a_port_not_given() {
        let (_tmp, store) = stored(&[case(TAX, "T-1"), case(FIRE, "F-1"), case(MARKET, "M-1")]);
        let readable = [uscc(TAX), uscc(MARKET)];
        let ids = |by: &SearchBy, units: &[Uscc]| -> Vec<String> {
            let (found, more) = search(&store, units, by, 10).unwrap();
            assert!(!more);
            found
                .into_iter()
                .map(|f| f.case_id.as_str().to_string())
                .collect()
        };
        for by in [
            SearchBy::Uscc(uscc(PARTY)),
            SearchBy::IdNumber(PARTY.into()),
            SearchBy::PartyName("甲乙商贸".into()),
            SearchBy::PartyName("南京甲".into()),
        ] {
            assert_eq!(ids(&by, &readable), ["T-1", "M-1"], "{by:?}");
            assert_eq!(ids(&by, &[uscc(FIRE)]), ["F-1"], "{by:?}");
            assert!(ids(&by, &[]).is_empty(), "{by:?}");
        }
        assert!(ids(&SearchBy::PartyName("丙丁".into()), &readable).is_empty());
        let (one, more) = search(&store, &readable, &SearchBy::Uscc(uscc(PARTY)), 1).unwrap();
        assert_eq!((one.len(), more), (1, true));
        // A new version naming another company: found under the new one only, by any key.
        let mut moved = case(MARKET, "M-1");
        moved.party.id = Some(PartyId::Uscc(uscc("91320102MA1MXXX008")));
        moved.party.name = "南京丙丁建材有限公司".into();
        store.upsert_cases(&[moved], &|_, _| Vec::new()).unwrap();
        leads::refresh(
            &store,
            &rules(),
            &WorkCalendar::official().unwrap(),
            Utc::now(),
            &|| false,
        )
        .unwrap();
        assert_eq!(ids(&SearchBy::Uscc(uscc(PARTY)), &readable), ["T-1"]);
        assert_eq!(ids(&SearchBy::PartyName("甲乙".into()), &readable), ["T-1"]);
        assert_eq!(ids(&SearchBy::PartyName("丙丁".into()), &readable), ["M-1"]);
        assert_eq!(
            ids(&SearchBy::IdNumber("91320102MA1MXXX008".into()), &readable),
            ["M-1"]
        );
    }

    #[test]
    fn an_action_marks_leads_is_answered_and_all_of_it_is_in_the_timeline() {
        let c = case(TAX, "T-1");
        let (_tmp, store) = stored(std::slice::from_ref(&c));
        let t = Utc::now();
        let unknown =
            Request::parse(br#"{"kind":"note","text":"x","leads":["rule:nope"],"dismiss":true}"#)
                .unwrap();
        let e = write(
            &store,
            &c.unit_code,
            &c.case_id,
            "procuratorate",
            unknown,
            &[],
            t,
        )
        .unwrap_err();
        assert!(e.to_string().contains("rule:tax-evasion-201"), "{e}");
        let req = Request::parse(
            r#"{"kind":"recommend_transfer","text":"建议移送","documents":[{"name":"a.pdf","media_type":"application/pdf","content_base64":"JVBERi0="}]}"#
                .as_bytes(),
        )
        .unwrap();
        let dests = ["unit-system".to_string()];
        let a = write(
            &store,
            &c.unit_code,
            &c.case_id,
            "procuratorate",
            req,
            &dests,
            t,
        )
        .unwrap();
        assert_eq!(a.leads, ["rule:tax-evasion-201"]);
        assert_eq!(store.supervision_outbox("unit-system").unwrap(), [a.id]);
        let leads: Vec<Lead> = store.case_leads(&c.key()).unwrap();
        let l = leads
            .iter()
            .find(|l| l.key == "rule:tax-evasion-201")
            .unwrap();
        assert_eq!(l.status, LeadStatus::Recommended);
        let docs = action_documents(&store, &c.key()).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(
            store.get_document(&docs[0].sha256).unwrap().unwrap(),
            b"%PDF-"
        );

        let answered = answer(&store, a.id, "admin:unit-officer", "已移送".into(), &[], t).unwrap();
        assert!(!answered.is_open());
        assert!(matches!(
            answer(&store, 999, "x", "y".into(), &[], t),
            Err(WorkError::NoAction(999))
        ));
        let cal = WorkCalendar::official().unwrap();
        let tl = timeline(&store, &c, &cal, t).unwrap();
        let kinds: Vec<&str> = tl.entries.iter().map(|e| e.kind).collect();
        assert_eq!(kinds.first(), Some(&"decided"), "{kinds:?}");
        for k in ["version", "lead", "supervision", "answer"] {
            assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
        }
        let pos = |k: &str| kinds.iter().position(|x| *x == k).unwrap();
        assert!(pos("supervision") < pos("answer"));
        assert!(tl.entries.windows(2).all(|w| w[0].order <= w[1].order));

        // A dismissing note names the lead and gives the reason.
        let note = Request::parse(
            r#"{"kind":"note","text":"已另案处理","leads":["rule:tax-evasion-201"],"dismiss":true}"#
                .as_bytes(),
        )
        .unwrap();
        write(
            &store,
            &c.unit_code,
            &c.case_id,
            "procuratorate",
            note,
            &[],
            t,
        )
        .unwrap();
        let leads: Vec<Lead> = store.case_leads(&c.key()).unwrap();
        assert_eq!(
            leads
                .iter()
                .find(|l| l.key == "rule:tax-evasion-201")
                .unwrap()
                .status,
            LeadStatus::Dismissed {
                reason: "已另案处理".into()
            }
        );
    }

    #[test]
    fn time_alone_makes_a_transfer_overdue_and_raises_its_lead() {
        let mut c = case(TAX, "T-2");
        c.transfer.suspected_crime = true;
        c.transfer.status = TransferStatus::Transferred;
        c.transfer.transferred_on = NaiveDate::from_ymd_opt(2025, 6, 3);
        c.transfer.accepted_at = Some(Moment::parse("2025-06-04T10:00:00").unwrap());
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        store
            .upsert_cases(&[c.clone()], &|_, _| Vec::new())
            .unwrap();
        let cal = WorkCalendar::official().unwrap();
        let at = |s: &str| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                .unwrap()
                .and_utc()
                - chrono::Duration::hours(8)
        };
        let day_after = at("2025-06-05T12:00:00");
        leads::refresh(&store, &rules(), &cal, day_after, &|| false).unwrap();
        let units = [uscc(TAX)];
        let (all, _) = transfers(&store, &units, &cal, day_after, false, 10).unwrap();
        assert_eq!(all.len(), 1);
        assert!(!all[0].overdue);
        assert!(
            transfers(&store, &units, &cal, day_after, true, 10)
                .unwrap()
                .0
                .is_empty()
        );
        assert!(
            transfers(&store, &[uscc(FIRE)], &cal, day_after, false, 10)
                .unwrap()
                .0
                .is_empty()
        );
        let keys = |s: &Store| -> Vec<String> {
            s.case_leads::<Lead>(&c.key())
                .unwrap()
                .into_iter()
                .map(|l| l.key)
                .collect()
        };
        assert!(!keys(&store).contains(&"310:police-decision".to_string()));
        // A week on, with no new version of the case: overdue, and the refresh raises it.
        let later = at("2025-06-11T12:00:00");
        let (over, _) = transfers(&store, &units, &cal, later, true, 10).unwrap();
        assert_eq!(over.len(), 1);
        leads::refresh(&store, &rules(), &cal, later, &|| false).unwrap();
        assert!(
            keys(&store).contains(&"310:police-decision".to_string()),
            "{:?}",
            keys(&store)
        );
    }
}
