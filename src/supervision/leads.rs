//! Leads (线索): cases the procuratorate should look at. A lead is raised by
//! - a rule the case meets while it has not been transferred (有案不移, 以罚代刑);
//! - a 310号令 deadline of its transfer that is broken (a late hand-over, a late police decision,
//!   a refusal with no reconsideration request in time);
//! - a major decision (重大执法决定) stored without legal review (法制审核), one of the 三项制度.
//!
//! [`evaluate`] is pure: given a case, the party's other decisions, the rules, the calendar and
//! the time, it says which leads the case raises now, each with the facts that matched next to
//! their thresholds. [`merge`] keeps what people did with a lead (recommended, dismissed) across
//! re-evaluations, and closes a rule's lead by itself once the case is transferred.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::deadlines::{self, Step};
use super::rules::{Matched, Rule};
use crate::model::{Case, TransferStatus};
use crate::push::calendar::WorkCalendar;
use crate::store::{JudgedLeads, Store, StoreError, TransferCheck, party_id};

/// Where a lead stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LeadStatus {
    /// Raised, nobody has acted on it.
    Open,
    /// The procuratorate recommended a transfer (建议移送) or another action.
    Recommended,
    /// The case was transferred: the lead closed by itself.
    Transferred,
    /// Dismissed by the procuratorate, with its reason.
    Dismissed {
        /// Why.
        reason: String,
    },
    /// The case no longer meets what raised it (corrected facts, a revoked decision).
    Resolved,
}

impl LeadStatus {
    /// Every status's code, in the order a lead goes through them.
    pub const CODES: [&'static str; 5] = [
        "open",
        "recommended",
        "transferred",
        "dismissed",
        "resolved",
    ];

    /// The status's code.
    pub fn code(&self) -> &'static str {
        match self {
            LeadStatus::Open => "open",
            LeadStatus::Recommended => "recommended",
            LeadStatus::Transferred => "transferred",
            LeadStatus::Dismissed { .. } => "dismissed",
            LeadStatus::Resolved => "resolved",
        }
    }

    /// The status as people say it.
    pub fn label(&self) -> &'static str {
        Self::label_of(self.code())
    }

    /// The status with code `code` as people say it (one of [`LeadStatus::CODES`]).
    pub fn label_of(code: &str) -> &'static str {
        match code {
            "open" => "待处理",
            "recommended" => "已建议移送",
            "transferred" => "已移送",
            "dismissed" => "已排除",
            "resolved" => "已消除",
            _ => "未知",
        }
    }

    /// Whether the lead still asks for attention.
    pub fn is_open(&self) -> bool {
        matches!(self, LeadStatus::Open | LeadStatus::Recommended)
    }
}

/// What raised a lead: its key among the case's leads.
pub fn rule_key(rule: &Rule) -> String {
    format!("rule:{}", rule.id)
}

/// The key of a deadline lead.
pub fn deadline_key(step: Step) -> String {
    let s = match step {
        Step::Transfer => "transfer",
        Step::PoliceDecision => "police-decision",
        Step::ReconsiderationRequest => "reconsideration-request",
        Step::ReconsiderationDecision => "reconsideration-decision",
    };
    format!("310:{s}")
}

/// The key of the 三项制度 lead.
pub const MAJOR_WITHOUT_REVIEW: &str = "major-without-review";

/// A lead as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lead {
    /// `rule:<id>`, `310:<step>` or `major-without-review`.
    pub key: String,
    /// What it is, for a person.
    pub title: String,
    /// The provision it rests on.
    pub source: String,
    /// The facts that matched, each next to its threshold.
    pub facts: Vec<Matched>,
    /// Whether a person must judge before any recommendation.
    pub review: bool,
    /// Where it stands.
    #[serde(flatten)]
    pub status: LeadStatus,
    /// The case version it was last evaluated on.
    pub case_version: u64,
    /// When it was first raised.
    pub detected_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A lead the case raises now, before it meets what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    /// Its key.
    pub key: String,
    /// Title.
    pub title: String,
    /// Source.
    pub source: String,
    /// Facts.
    pub facts: Vec<Matched>,
    /// Review.
    pub review: bool,
}

/// Whether the case has been handed to the police (then 有案不移 no longer applies).
fn transferred(c: &Case) -> bool {
    (c.transfer.status != TransferStatus::None && c.transfer.status != TransferStatus::Recommended)
        || c.transfer.transferred_on.is_some()
}

/// The leads `case` raises as of `now` (China Standard Time): rules it meets while not
/// transferred, broken 310号令 deadlines, a major decision without legal review.
pub fn evaluate(
    case: &Case,
    earlier: &[Case],
    rules: &[Rule],
    cal: &WorkCalendar,
    now: NaiveDateTime,
) -> Vec<Raised> {
    let mut out = Vec::new();
    let revoked = case.status == crate::model::CaseStatus::Revoked;
    if !revoked && !transferred(case) {
        for r in rules {
            if let Some(facts) = r.evaluate(case, earlier) {
                out.push(Raised {
                    key: rule_key(r),
                    title: r.title.clone(),
                    source: r.source.clone(),
                    facts,
                    review: r.review,
                });
            }
        }
    }
    for d in deadlines::of(&case.transfer, cal, now) {
        if d.broken() {
            let done = d
                .done
                .map_or_else(|| "未完成".to_string(), |m| m.to_string());
            out.push(Raised {
                key: deadline_key(d.step),
                title: format!("移送期限：{}", d.step.label()),
                source: "《行政执法机关移送涉嫌犯罪案件的规定》（国务院令第310号）第五条、第八条、第九条".into(),
                facts: vec![Matched {
                    fact: deadline_key(d.step),
                    value: done,
                    threshold: format!("自 {} 起，至迟 {}", d.from, d.due.format("%Y-%m-%dT%H:%M:%S")),
                }],
                review: false,
            });
        }
    }
    if case.major && !case.legal_review && !revoked {
        out.push(Raised {
            key: MAJOR_WITHOUT_REVIEW.into(),
            title: "重大执法决定未经法制审核".into(),
            source: "《中华人民共和国行政处罚法》（2021年修订）第五十八条".into(),
            facts: vec![Matched {
                fact: "legal_review".into(),
                value: "false".into(),
                threshold: "major = true requires legal_review = true".into(),
            }],
            review: false,
        });
    }
    out
}

/// The stored leads of a case after an evaluation: each raised lead kept with the status people
/// gave it (a new one opens); a rule's lead whose case is now transferred closes as
/// `transferred`; a lead no longer raised for another reason is `resolved`. Returns the leads to
/// store (changed or not) — every one the case ever had, so the history stays.
pub fn merge(case: &Case, stored: Vec<Lead>, raised: Vec<Raised>, now: DateTime<Utc>) -> Vec<Lead> {
    let mut out: Vec<Lead> = Vec::new();
    let mut stored = stored;
    for r in raised {
        match stored.iter().position(|l| l.key == r.key) {
            Some(i) => {
                let mut l = stored.swap_remove(i);
                // A lead raised again reopens only if it had been resolved by the data.
                if l.status == LeadStatus::Resolved || l.status == LeadStatus::Transferred {
                    l.status = LeadStatus::Open;
                    l.updated_at = now;
                }
                if l.facts != r.facts || l.case_version != case.version {
                    l.facts = r.facts;
                    l.case_version = case.version;
                    l.updated_at = now;
                }
                l.title = r.title;
                l.source = r.source;
                l.review = r.review;
                out.push(l);
            }
            None => out.push(opened(r, case.version, now)),
        }
    }
    for mut l in stored {
        if l.status.is_open() {
            l.status = if l.key.starts_with("rule:") && transferred(case) {
                LeadStatus::Transferred
            } else {
                LeadStatus::Resolved
            };
            l.case_version = case.version;
            l.updated_at = now;
        }
        out.push(l);
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// A lead raised for the first time.
fn opened(r: Raised, case_version: u64, now: DateTime<Utc>) -> Lead {
    Lead {
        key: r.key,
        title: r.title,
        source: r.source,
        facts: r.facts,
        review: r.review,
        status: LeadStatus::Open,
        case_version,
        detected_at: now,
        updated_at: now,
    }
}

/// The leads of `case` judged on its own as a new case, ready for the store to keep with it
/// (ingest calls this on its mapping thread, so the leads are written in the case's own
/// transaction and nothing reads the case again). `None` when judging it needs the party's
/// other decisions (a rule counts them, 多次, and all its other conditions hold): the leads
/// refresh then judges it with the party once it is stored. A case a rule could only count is
/// judged here; the later decisions that count it are watched (see [`Store::watch_party`]).
pub fn judge_new(
    case: &Case,
    rules: &[Rule],
    cal: &WorkCalendar,
    now: DateTime<Utc>,
) -> Option<JudgedLeads> {
    if rules.iter().any(|r| r.needs_party_to_judge(case)) {
        return None;
    }
    let mut out = JudgedLeads::default();
    for r in evaluate(case, &[], rules, cal, cst(now)) {
        // A new case is stored as version 1.
        let lead = opened(r, 1, now);
        out.leads
            .push((lead.key.clone(), serde_json::to_vec(&lead).ok()?));
    }
    out.leads.sort_by(|a, b| a.0.cmp(&b.0));
    if case.transfer.is_watched() {
        out.transfer = deadline_check(case, cal, cst(now)).0;
    }
    Some(out)
}

/// When a leads refresh must read `case` again for its 310号令 deadlines, as of `at` (China
/// Standard Time): at its earliest open deadline, or only when a new version comes. Also
/// whether any deadline is open or overdue (a case judged earlier may have missed one since).
fn deadline_check(case: &Case, cal: &WorkCalendar, at: NaiveDateTime) -> (TransferCheck, bool) {
    let all = deadlines::of(&case.transfer, cal, at);
    let open = all
        .iter()
        .filter(|d| d.state == deadlines::State::Open)
        .map(|d| d.due.and_utc().timestamp_micros())
        .min();
    let waiting = open.is_some() || all.iter().any(|d| d.state == deadlines::State::Overdue);
    (
        open.map_or(TransferCheck::Settled, TransferCheck::OpenUntil),
        waiting,
    )
}

/// The most decisions of one party read to evaluate a case (a party with more is a registry
/// error or an attack on the index; its newest decisions are still judged on the first ones).
const PARTY_CASES: usize = 1_000;

/// What a refresh or rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Cases evaluated.
    pub cases: u64,
    /// Leads open (open or recommended) among those cases' leads afterwards.
    pub open: u64,
}

/// China Standard Time, the units' clock, as deadlines are counted.
pub fn cst(now: DateTime<Utc>) -> NaiveDateTime {
    (now + chrono::Duration::hours(8)).naive_utc()
}

/// Re-evaluates `case` and, when a rule counts the party's decisions (多次), the party's later
/// decisions too (a new decision may make a later one a repeat), merging with what is stored.
/// The party's cases are read only then: most cases are judged alone. `done` records the cases
/// judged (each once per refresh); without it only `case` is judged (a rebuild judges every
/// case in its turn).
fn refresh_party(
    store: &Store,
    case: Case,
    rules: &[Rule],
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    mut done: Option<&mut std::collections::BTreeSet<Vec<u8>>>,
    out: &mut Refreshed,
) -> Result<(), StoreError> {
    if rules.iter().any(|r| r.needs_party_to_judge(&case)) {
        store.watch_party(&party_id(&case), &case.key())?;
    }
    let mut party = party_of(store, &case, reads_party(&case, rules))?;
    party.push(case);
    let n = party.len();
    let on = party[n - 1].decided_on;
    for i in (0..n).rev() {
        // Only the case itself and the party's later decisions can change; a skipped one is
        // not marked done, so it is still judged when its own turn comes.
        if i != n - 1 && (party[i].decided_on < on || done.is_none()) {
            continue;
        }
        let k = party[i].key();
        if let Some(d) = done.as_deref_mut()
            && !d.insert(k.clone())
        {
            continue;
        }
        let stored = store.case_leads(&k)?;
        judge(store, &party[i], &party, stored, rules, cal, now, out)?;
    }
    Ok(())
}

/// Whether a rule needs `case`'s party's other decisions to judge it or the party's later
/// decisions after it changed. A case's first version needs them only when a rule could judge
/// or count it ([`Rule::involves_party`]); a later version whenever a rule counts decisions,
/// since the version it replaces may have been counted for a later decision and no longer is.
fn reads_party(case: &Case, rules: &[Rule]) -> bool {
    if case.version > 1 {
        rules.iter().any(Rule::needs_earlier)
    } else {
        rules.iter().any(|r| r.involves_party(case))
    }
}

/// The other decisions of `case`'s party, read only when `needed` says so (they are not
/// needed by most cases).
fn party_of(store: &Store, case: &Case, needed: bool) -> Result<Vec<Case>, StoreError> {
    let mut party = Vec::new();
    if needed {
        let (key, id) = (case.key(), party_id(case));
        for k in store.cases_of_party(&id, PARTY_CASES)? {
            // An entry left under this id by a case that now names another party is skipped.
            if k != key
                && let Some(c) = store.get_case_by_key(&k)?
                && party_id(&c) == id
            {
                party.push(c);
            }
        }
    }
    Ok(party)
}

/// Evaluates `c` (with its party's decisions) and stores its leads merged with `stored`, when
/// anything changed.
#[allow(clippy::too_many_arguments)]
fn judge(
    store: &Store,
    c: &Case,
    party: &[Case],
    stored: Vec<Lead>,
    rules: &[Rule],
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    out: &mut Refreshed,
) -> Result<(), StoreError> {
    let raised = evaluate(c, party, rules, cal, cst(now));
    out.cases += 1;
    if raised.is_empty() && stored.is_empty() {
        // Nothing raised, nothing to close: no write (most cases).
        return Ok(());
    }
    let first = stored.is_empty();
    let merged = merge(c, stored.clone(), raised, now);
    out.open += merged.iter().filter(|l| l.status.is_open()).count() as u64;
    if merged != stored {
        let keyed: Vec<(String, &Lead)> = merged.iter().map(|l| (l.key.clone(), l)).collect();
        if first {
            store.add_case_leads(&c.key(), &keyed)?;
        } else {
            store.put_case_leads(&c.key(), &keyed)?;
        }
    }
    Ok(())
}

/// Re-evaluates the cases with a transfer step still to be done: time alone turns an open
/// 310号令 deadline into a broken one, with no new version of the case to say so.
fn refresh_deadlines(
    store: &Store,
    rules: &[Rule],
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    done: &mut std::collections::BTreeSet<Vec<u8>>,
    out: &mut Refreshed,
) -> Result<(), StoreError> {
    let at = cst(now);
    for e in store.transfer_checks()? {
        // Only an open deadline changes with time alone; a settled case waits for a new version,
        // and an open one for its due moment.
        let due = match e.check {
            TransferCheck::Settled => continue,
            TransferCheck::OpenUntil(due) if due >= at.and_utc().timestamp_micros() => continue,
            TransferCheck::OpenUntil(_) => true,
            TransferCheck::Unchecked => false,
        };
        let Some(case) = store.get_case_by_key(&e.key)? else {
            continue;
        };
        let (check, waiting) = deadline_check(&case, cal, at);
        // An unchecked version may have been judged before a deadline passed.
        if (due || waiting) && !done.contains(&e.key) {
            refresh_party(store, case, rules, cal, now, Some(done), out)?;
        }
        store.set_transfer_check(&e, check)?;
    }
    Ok(())
}

/// Judges the leads of every case version written without them (ingest judges a new case
/// itself unless a rule counts its party's decisions; other writes leave it to this), then the
/// cases whose 310号令 deadlines time alone may have broken. `stop` is asked between cases;
/// what a stop cuts short stays marked and is taken up by the next refresh. Called right after
/// ingest commits and every quarter of an hour.
pub fn refresh(
    store: &Store,
    rules: &[Rule],
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    stop: &dyn Fn() -> bool,
) -> Result<Refreshed, StoreError> {
    let mut out = Refreshed::default();
    // The party index first: the cases judged with their party find each other through it,
    // and a watched case whose party has new decisions is marked to be judged again (one of
    // them may count for it).
    store.merge_party_index()?;
    loop {
        let pending = store.pending_leads(10_000)?;
        if pending.is_empty() {
            break;
        }
        // Per chunk: a case written again while the refresh runs stays marked with its new
        // version and is judged again in a later chunk.
        let mut done = std::collections::BTreeSet::new();
        let mut cleared = false;
        for mark in pending {
            for (k, _version) in &mark.cases {
                if stop() {
                    return Ok(out);
                }
                if !done.contains(k)
                    && let Some(case) = store.get_case_by_key(k)?
                {
                    refresh_party(store, case, rules, cal, now, Some(&mut done), &mut out)?;
                }
            }
            cleared |= store.leads_judged(&mark)?;
        }
        if !cleared {
            // Every one was written again meanwhile: the next refresh takes them.
            break;
        }
    }
    let mut done = std::collections::BTreeSet::new();
    refresh_deadlines(store, rules, cal, now, &mut done, &mut out)?;
    Ok(out)
}

/// Re-evaluates every stored case (after the rules changed), keeping what people did with
/// each lead.
pub fn rebuild(
    store: &Store,
    rules: &[Rule],
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    stop: &dyn Fn() -> bool,
) -> Result<Refreshed, StoreError> {
    // What is still to be judged is judged first. Usually there is nothing.
    let caught_up = refresh(store, rules, cal, now, stop)?;
    // One thread reads the stored cases in key order, two decode and judge them and write what
    // changed (the machine has two cores; cases are independent once the index is complete).
    type Stored = (Vec<u8>, Vec<u8>);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(Stored, Vec<Lead>)>>(4);
    let rx = std::sync::Mutex::new(rx);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    let results: Vec<Result<Refreshed, StoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let rx = &rx;
                s.spawn(move || {
                    let mut out = Refreshed::default();
                    loop {
                        let next = rx.lock().map(|r| r.recv());
                        let Ok(Ok(chunk)) = next else {
                            return Ok(out);
                        };
                        for ((k, v), stored) in chunk {
                            let c = Store::decode_stored(&k, &v)?;
                            // Every case is judged in its turn: the party is read only when
                            // judging this one needs it.
                            let needed = rules.iter().any(|r| r.needs_party_to_judge(&c));
                            if needed {
                                store.watch_party(&party_id(&c), &c.key())?;
                            }
                            let mut party = party_of(store, &c, needed)?;
                            party.push(c);
                            let c = &party[party.len() - 1];
                            judge(store, c, &party, stored, rules, cal, now, &mut out)?;
                        }
                    }
                })
            })
            .collect();
        // The stored leads are read alongside, in the same key order (a merge, not a lookup
        // per case).
        let read = || -> Result<(), StoreError> {
            let mut all = store.all_cases_stored();
            let mut leads = store.all_leads::<Lead>().peekable();
            loop {
                if stop() {
                    return Ok(());
                }
                let cases = all.by_ref().take(1_000).collect::<Result<Vec<_>, _>>()?;
                if cases.is_empty() {
                    return Ok(());
                }
                let mut chunk = Vec::with_capacity(cases.len());
                for c in cases {
                    let key = c.0.as_slice();
                    let mut stored = Vec::new();
                    while let Some(next) = leads.peek() {
                        let at = match next {
                            Ok((k, _)) => k.as_slice().cmp(key),
                            Err(_) => std::cmp::Ordering::Equal,
                        };
                        match at {
                            // A lead of a case no longer stored: left as it is.
                            std::cmp::Ordering::Less => {
                                leads.next().transpose()?;
                            }
                            std::cmp::Ordering::Equal => {
                                if let Some((_, l)) = leads.next().transpose()? {
                                    stored.push(l);
                                }
                            }
                            std::cmp::Ordering::Greater => break,
                        }
                    }
                    chunk.push((c, stored));
                }
                if tx.send(chunk).is_err() {
                    return Ok(());
                }
            }
        };
        let read = read();
        drop(tx);
        let mut r: Vec<Result<Refreshed, StoreError>> = handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(StoreError::Corrupt {
                        what: "leads rebuild".into(),
                        reason: "a worker panicked".into(),
                    })
                })
            })
            .collect();
        r.push(read.map(|()| Refreshed::default()));
        r
    });
    let mut out = Refreshed::default();
    for r in results {
        let r = r?;
        out.cases += r.cases;
        out.open += r.open;
    }
    out.cases = out.cases.max(caught_up.cases);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Fen, Moment, Share};

    fn rules() -> Vec<Rule> {
        super::super::rules::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"),
        )
        .unwrap()
    }

    fn tax_case() -> Case {
        let rules = rules();
        let r = rules.iter().find(|r| r.id == "tax-evasion-201").unwrap();
        let mut c = r.cases.iter().find(|g| g.expect).unwrap().case.clone();
        c.amounts.evaded_tax_fen = Some(Fen::new(67_378_055));
        c.amounts.evaded_tax_share = Share::from_basis_points(1_500);
        c.version = 1;
        c
    }

    fn now() -> NaiveDateTime {
        NaiveDateTime::parse_from_str("2025-12-01T09:00:00", "%Y-%m-%dT%H:%M:%S").unwrap()
    }

    #[test]
    fn a_case_over_a_threshold_raises_a_lead_that_a_transfer_closes() {
        let rules = rules();
        let cal = WorkCalendar::official().unwrap();
        let mut c = tax_case();
        let raised = evaluate(&c, &[], &rules, &cal, now());
        let keys: Vec<&str> = raised.iter().map(|r| r.key.as_str()).collect();
        assert!(keys.contains(&"rule:tax-evasion-201"), "{keys:?}");
        let lead = raised
            .iter()
            .find(|r| r.key == "rule:tax-evasion-201")
            .unwrap();
        assert!(
            lead.facts
                .iter()
                .any(|f| f.value == "673780.55 元" && f.threshold == "≥ 100000.00 元")
        );
        let t0 = Utc::now();
        let stored = merge(&c, Vec::new(), raised, t0);
        assert!(stored.iter().all(|l| l.status == LeadStatus::Open));

        // Recommended by the procuratorate, then re-evaluated: the status stays.
        let mut stored = stored;
        for l in &mut stored {
            l.status = LeadStatus::Recommended;
        }
        let again = merge(&c, stored, evaluate(&c, &[], &rules, &cal, now()), t0);
        assert!(again.iter().all(|l| l.status == LeadStatus::Recommended));

        // Transferred: the rule's lead closes by itself, and is kept.
        c.version = 2;
        c.transfer.status = TransferStatus::Transferred;
        c.transfer.transferred_on = chrono::NaiveDate::from_ymd_opt(2025, 7, 2);
        c.transfer.receiving_organ = Some("南京市公安局玄武分局".into());
        let raised = evaluate(&c, &[], &rules, &cal, now());
        assert!(
            !raised.iter().any(|r| r.key.starts_with("rule:")),
            "{raised:?}"
        );
        let closed = merge(&c, again, raised, t0);
        let l = closed
            .iter()
            .find(|l| l.key == "rule:tax-evasion-201")
            .unwrap();
        assert_eq!((&l.status, l.case_version), (&LeadStatus::Transferred, 2));

        // One fen under the threshold raises nothing.
        let mut under = tax_case();
        under.amounts.evaded_tax_fen = Some(Fen::new(9_999_999));
        assert!(
            evaluate(&under, &[], &rules, &cal, now())
                .iter()
                .all(|r| !r.key.contains("tax-evasion"))
        );
    }

    #[test]
    fn broken_deadlines_and_unreviewed_major_decisions_are_leads() {
        let cal = WorkCalendar::official().unwrap();
        let mut c = tax_case();
        c.amounts = Default::default();
        c.transfer.suspected_crime = true;
        c.transfer.status = TransferStatus::Transferred;
        c.transfer.approved_at = Some(Moment::parse("2025-03-07T16:00:00").unwrap());
        c.transfer.transferred_at = Some(Moment::parse("2025-03-10T09:00:00").unwrap());
        c.transfer.transferred_on = chrono::NaiveDate::from_ymd_opt(2025, 3, 10);
        c.major = true;
        c.legal_review = false;
        let keys: Vec<String> = evaluate(&c, &[], &[], &cal, now())
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(keys, ["310:transfer", MAJOR_WITHOUT_REVIEW]);
        c.legal_review = true;
        c.transfer.transferred_at = Some(Moment::parse("2025-03-08T15:00:00").unwrap());
        c.transfer.transferred_on = chrono::NaiveDate::from_ymd_opt(2025, 3, 8);
        assert!(evaluate(&c, &[], &[], &cal, now()).is_empty());
    }

    #[test]
    fn a_refresh_reads_a_transfer_again_only_when_time_can_break_one_of_its_deadlines() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let cal = WorkCalendar::official().unwrap();
        let at = |s: &str| Some(Moment::parse(s).unwrap());
        // Accepted by the police on a Friday, no decision yet: open until the third working day.
        let mut open = tax_case();
        open.amounts = Default::default();
        open.transfer.suspected_crime = true;
        open.transfer.status = TransferStatus::Transferred;
        open.transfer.approved_at = at("2025-03-06T10:00:00");
        open.transfer.transferred_at = at("2025-03-06T15:00:00");
        open.transfer.accepted_at = at("2025-03-07T16:00:00");
        // Transferred in time, nothing accepted yet: nothing time can break.
        let mut met = open.clone();
        met.case_id = crate::model::CaseId::parse("DEADLINE-MET").unwrap();
        met.transfer.accepted_at = None;
        store
            .upsert_cases(&[open.clone(), met.clone()], &none)
            .unwrap();
        let utc = |s: &str| format!("{s}Z").parse::<DateTime<Utc>>().unwrap();
        // In key order, as the index keeps them.
        let checks = |store: &Store| -> Vec<(Vec<u8>, TransferCheck)> {
            store
                .transfer_checks()
                .unwrap()
                .into_iter()
                .map(|e| (e.key, e.check))
                .collect()
        };
        let police = deadline_key(Step::PoliceDecision);
        let police_lead = |store: &Store| {
            store
                .case_leads::<Lead>(&open.key())
                .unwrap()
                .into_iter()
                .any(|l| l.key == police && l.status.is_open())
        };
        assert!(
            checks(&store)
                .iter()
                .all(|(_, c)| *c == TransferCheck::Unchecked)
        );

        refresh(&store, &[], &cal, utc("2025-03-10T02:00:00"), &|| false).unwrap();
        let due = deadlines::of(&open.transfer, &cal, cst(utc("2025-03-10T02:00:00")))
            .into_iter()
            .find(|d| d.step == Step::PoliceDecision)
            .unwrap()
            .due;
        let mut want = vec![
            (
                open.key(),
                TransferCheck::OpenUntil(due.and_utc().timestamp_micros()),
            ),
            (met.key(), TransferCheck::Settled),
        ];
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(checks(&store), want);
        assert!(!police_lead(&store));

        // Past the due moment the case is read again, its lead raised, and it is settled.
        refresh(&store, &[], &cal, utc("2025-03-20T02:00:00"), &|| false).unwrap();
        assert!(police_lead(&store));
        assert!(
            checks(&store)
                .iter()
                .all(|(_, c)| *c == TransferCheck::Settled)
        );

        // A new version is checked afresh.
        open.transfer.police_decision = Some(crate::model::PoliceDecision::Filed);
        open.transfer.police_decided_at = at("2025-03-21T09:00:00");
        store
            .upsert_cases(std::slice::from_ref(&open), &none)
            .unwrap();
        let now = checks(&store);
        assert!(
            now.contains(&(open.key(), TransferCheck::Unchecked)),
            "{now:?}"
        );
        assert!(
            now.contains(&(met.key(), TransferCheck::Settled)),
            "{now:?}"
        );

        // A new case judged as ingest judges it is checked as it is written.
        let mut fresh = open.clone();
        fresh.case_id = crate::model::CaseId::parse("DEADLINE-NEW").unwrap();
        fresh.transfer.police_decision = None;
        fresh.transfer.police_decided_at = None;
        let judged = judge_new(&fresh, &[], &cal, utc("2025-03-10T02:00:00"));
        let prepared = crate::store::PreparedCase::new(fresh.clone(), None).judged(judged);
        store.upsert_prepared(&[prepared], &none).unwrap();
        let now = checks(&store);
        assert!(
            now.contains(&(
                fresh.key(),
                TransferCheck::OpenUntil(due.and_utc().timestamp_micros())
            )),
            "{now:?}"
        );
    }

    /// A fresh store, the starter rules, and a 多次 rule's golden case that meets it with its
    /// earlier decisions, as cases of one party (by its USCC: the index ties them together),
    /// the one that meets it last.
    type OneParty = (
        tempfile::TempDir,
        Store,
        Vec<Rule>,
        WorkCalendar,
        Rule,
        Vec<Case>,
    );

    /// Routes nothing.
    fn none(_: &crate::model::Uscc, _: crate::model::Action) -> Vec<String> {
        Vec::new()
    }

    fn one_party(rule: &str, prefix: &str) -> OneParty {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let rules = rules();
        let r = rules.iter().find(|r| r.id == rule).unwrap().clone();
        let g = r
            .cases
            .iter()
            .find(|g| g.expect && g.earlier.len() >= 2)
            .unwrap();
        let party =
            crate::model::PartyId::Uscc(crate::model::Uscc::parse("91320102MA60876NU7").unwrap());
        let mut all: Vec<Case> = g.earlier.to_vec();
        all.push(g.case.clone());
        for (i, c) in all.iter_mut().enumerate() {
            c.case_id = crate::model::CaseId::parse(&format!("{prefix}-{i}")).unwrap();
            c.party.id = Some(party.clone());
        }
        (tmp, store, rules, WorkCalendar::official().unwrap(), r, all)
    }

    #[test]
    fn refresh_judges_what_was_written_unjudged_and_rebuild_keeps_what_people_did() {
        // The 非法行医 repeat rule's golden "third time": earlier decisions as cases of their own.
        let (_tmp, store, rules, cal, rule, all) =
            one_party("health-illegal-practice-repeat-336", "HX");
        let (r, t0) = (&rule, Utc::now());
        // Only the earlier ones first: no lead yet.
        store.upsert_cases(&all[..all.len() - 1], &none).unwrap();
        let first = refresh(&store, &rules, &cal, t0, &|| false).unwrap();
        assert_eq!(first.open, 0, "{first:?}");
        assert!(store.pending_leads(10).unwrap().is_empty());
        // The third decision arrives: a lead on it.
        store.upsert_cases(&all[all.len() - 1..], &none).unwrap();
        refresh(&store, &rules, &cal, t0, &|| false).unwrap();
        let third = all.last().unwrap();
        let leads: Vec<Lead> = store.case_leads(&third.key()).unwrap();
        let lead = leads
            .iter()
            .find(|l| l.key == rule_key(r))
            .expect("the third time is a lead");
        assert!(lead.facts.iter().any(|f| f.fact == "earlier"), "{lead:?}");
        // Nothing new: a refresh does nothing.
        assert_eq!(
            refresh(&store, &rules, &cal, t0, &|| false).unwrap(),
            Refreshed::default()
        );

        // Dismissed by a person; a rebuild keeps it.
        let mut dismissed = leads.clone();
        for l in &mut dismissed {
            l.status = LeadStatus::Dismissed {
                reason: "已另案处理".into(),
            };
        }
        let keyed: Vec<(String, &Lead)> = dismissed.iter().map(|l| (l.key.clone(), l)).collect();
        store.put_case_leads(&third.key(), &keyed).unwrap();
        rebuild(&store, &rules, &cal, t0, &|| false).unwrap();
        let after: Vec<Lead> = store.case_leads(&third.key()).unwrap();
        assert!(
            after
                .iter()
                .all(|l| matches!(l.status, LeadStatus::Dismissed { .. })),
            "{after:?}"
        );

        // Transferred: the lead closes by itself on the next refresh.
        let mut moved = third.clone();
        moved.transfer.suspected_crime = true;
        moved.transfer.status = TransferStatus::Transferred;
        moved.transfer.transferred_on = chrono::NaiveDate::from_ymd_opt(2025, 7, 1);
        moved.transfer.receiving_organ = Some("南京市公安局玄武分局".into());
        for l in &mut dismissed {
            l.status = LeadStatus::Open;
        }
        let keyed: Vec<(String, &Lead)> = dismissed.iter().map(|l| (l.key.clone(), l)).collect();
        store.put_case_leads(&third.key(), &keyed).unwrap();
        store.upsert_cases(&[moved.clone()], &none).unwrap();
        refresh(&store, &rules, &cal, t0, &|| false).unwrap();
        let closed: Vec<Lead> = store.case_leads(&moved.key()).unwrap();
        let l = closed.iter().find(|l| l.key == rule_key(r)).unwrap();
        assert_eq!(l.status, LeadStatus::Transferred);
        let all_leads: Vec<(Vec<u8>, Lead)> = store.all_leads().collect::<Result<_, _>>().unwrap();
        assert!(
            all_leads.iter().all(|(k, _)| k == &moved.key()),
            "only the third decision has leads"
        );
    }

    #[test]
    fn an_earlier_decision_of_the_same_party_in_the_same_refresh_is_still_judged() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let cal = WorkCalendar::official().unwrap();
        let party =
            crate::model::PartyId::Uscc(crate::model::Uscc::parse("91320102MA60876NU7").unwrap());
        let mut later = tax_case();
        later.amounts = Default::default();
        later.party.id = Some(party.clone());
        later.case_id = crate::model::CaseId::parse("A-1").unwrap();
        later.decided_on = chrono::NaiveDate::from_ymd_opt(2025, 6, 1);
        // Judged second (its key sorts after A-1), decided first: a major decision unreviewed.
        let mut earlier = later.clone();
        earlier.case_id = crate::model::CaseId::parse("B-1").unwrap();
        earlier.decided_on = chrono::NaiveDate::from_ymd_opt(2025, 1, 1);
        earlier.major = true;
        earlier.legal_review = false;
        store
            .upsert_cases(&[later.clone(), earlier.clone()], &|_, _| Vec::new())
            .unwrap();
        let r = refresh(&store, &[], &cal, Utc::now(), &|| false).unwrap();
        assert_eq!(r.cases, 2, "{r:?}");
        let leads: Vec<Lead> = store.case_leads(&earlier.key()).unwrap();
        assert_eq!(leads.len(), 1, "{leads:?}");
        assert_eq!(leads[0].key, MAJOR_WITHOUT_REVIEW);
        assert!(store.case_leads::<Lead>(&later.key()).unwrap().is_empty());
    }

    #[test]
    fn an_earlier_decision_stored_after_the_one_that_counts_it_still_raises_the_lead() {
        let (_tmp, store, rules, cal, rule, all) = one_party("tax-evasion-repeat-201", "LATE");
        let (r, t0) = (&rule, Utc::now());
        // As ingest writes them: each judged on the mapping thread.
        let ingest = |cases: &[Case]| {
            let prepared: Vec<crate::store::PreparedCase> = cases
                .iter()
                .map(|c| {
                    let leads = judge_new(c, &rules, &cal, t0);
                    crate::store::PreparedCase::new(c.clone(), None).judged(leads)
                })
                .collect();
            store.upsert_prepared(&prepared, &none).unwrap();
            refresh(&store, &rules, &cal, t0, &|| false).unwrap();
        };
        let (third, earlier) = all.split_last().unwrap();
        // The earlier decisions can only be counted: judged at ingest, never left to the refresh.
        assert!(
            earlier
                .iter()
                .all(|c| judge_new(c, &rules, &cal, t0).is_some())
        );
        assert!(judge_new(third, &rules, &cal, t0).is_none());
        // The third decision and all but one earlier one first: not yet a repeat.
        let mut first = earlier[1..].to_vec();
        first.push(third.clone());
        ingest(&first);
        let key = rule_key(r);
        let leads: Vec<Lead> = store.case_leads(&third.key()).unwrap();
        assert!(!leads.iter().any(|l| l.key == key), "{leads:?}");
        assert!(store.pending_leads(10).unwrap().is_empty());
        // The missing earlier decision arrives in a later run: the third is judged again.
        ingest(&earlier[..1]);
        let leads: Vec<Lead> = store.case_leads(&third.key()).unwrap();
        let lead = leads.iter().find(|l| l.key == key).expect("a repeat now");
        assert!(lead.facts.iter().any(|f| f.fact == "earlier"), "{lead:?}");
        assert!(store.pending_leads(10).unwrap().is_empty());
    }
}
