//! Supervision rules as data (`rules/*.toml`): each encodes a criminal prosecution threshold
//! (立案追诉标准) with its legal source, the actions and units it applies to, and conditions on a
//! case's facts. Loading parses every file into a [`Rule`] (pure code, every problem of every
//! file at once); [`Rule::evaluate`] says whether a case meets it, with each matched value next
//! to its threshold, so that a lead can show why it was raised.
//!
//! A rule file:
//!
//! ```toml
//! id = "tax-evasion"
//! title = "逃税：逃避缴纳税款数额较大并且占应纳税总额百分之十以上"
//! charge = "逃税罪（《刑法》第二百零一条）"
//! source = "《…立案追诉标准的规定（二）》（2022年）第五十二条"
//! actions = ["penalty"]
//! units = []                                  # empty: every unit
//! review = false                              # true: leads only point, a person judges
//! notes = ""                                  # what an analyst should know reading a lead
//! when = [
//!   { fact = "amounts.evaded_tax_fen", at_least = "100000" },     # yuan, as the law writes
//!   { fact = "amounts.evaded_tax_share", at_least = "10" },       # percent
//! ]
//!
//! [[cases]]                                   # its own golden cases, run by `rules check`
//! name = "10万元, 10%: meets"
//! expect = true
//! facts = { "amounts.evaded_tax_fen" = "100000", "amounts.evaded_tax_share" = "10" }
//! ```
//!
//! Conditions (every one in `when` must hold): `{ fact, at_least }` on an amount (yuan), a
//! count or a share (percent); `{ sum = [{ fact, times }], at_least }`; `{ text = [fields],
//! contains_any = [words] }` on the title, cause, legal basis, facts or decision;
//! `{ party_kind = [...] }`; `{ penalty_kinds = [...] }` (any of them); `{ earlier = N,
//! within_days = D }` — at least N earlier decisions against the same party within D days before
//! this one that meet the rule's text conditions too (多次); `{ any = [conditions] }` and
//! `{ all = [conditions] }`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use toml::Value;

use crate::model::{
    Action, Case, Draft, DraftContext, Fen, MoneyUnit, PartyKind, PenaltyKind, Share, Target,
    TargetKind, Uscc,
};

/// A problem with a rule file: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {at}: {reason}")]
pub struct RuleError {
    /// The file.
    pub file: String,
    /// The key or path within it (`when[1].at_least`, `cases[0]`).
    pub at: String,
    /// What is wrong.
    pub reason: String,
}

/// A number a fact is compared with: the fact's own unit (fen, people, basis points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    value: u64,
    kind: TargetKind,
}

impl Threshold {
    /// As the law writes it: yuan with two decimals, a whole number, a percent.
    pub fn display(self) -> String {
        show(self.kind, self.value)
    }
}

fn show(kind: TargetKind, v: u64) -> String {
    match kind {
        TargetKind::Money => format!("{} 元", Fen::new(v).yuan_string()),
        TargetKind::Percent => format!("{}.{:02}%", v / 100, v % 100),
        _ => v.to_string(),
    }
}

/// The free-text fields a keyword condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TextField {
    /// 案件名称.
    Title,
    /// 案由.
    Cause,
    /// 法律依据.
    LegalBasis,
    /// 违法事实.
    Facts,
    /// 处理结果.
    Decision,
}

impl TextField {
    const ALL: [(&'static str, TextField); 5] = [
        ("title", TextField::Title),
        ("cause", TextField::Cause),
        ("legal_basis", TextField::LegalBasis),
        ("facts", TextField::Facts),
        ("decision", TextField::Decision),
    ];

    fn of(self, c: &Case) -> Option<&str> {
        match self {
            TextField::Title => Some(&c.title),
            TextField::Cause => c.cause.as_deref(),
            TextField::LegalBasis => c.legal_basis.as_deref(),
            TextField::Facts => c.facts.as_deref(),
            TextField::Decision => c.decision.as_deref(),
        }
    }

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |(n, _)| n)
    }
}

/// The words of a text condition, with a matcher built once when the rule is loaded: every
/// case ingest stores is checked against every rule, and building a searcher for each word at
/// each check cost more than the rest of judging.
#[derive(Clone)]
pub struct Words {
    list: Vec<String>,
    any: aho_corasick::AhoCorasick,
}

impl Words {
    /// The matcher for `list` (not empty); an error when it cannot be built (too large).
    fn new(list: Vec<String>) -> Result<Self, String> {
        let any = aho_corasick::AhoCorasick::new(&list).map_err(|e| e.to_string())?;
        Ok(Self { list, any })
    }

    /// Whether `text` contains any of the words.
    fn in_text(&self, text: &str) -> bool {
        self.any.is_match(text)
    }

    /// The first of the words, in the rule's order, that `text` contains.
    fn first_in(&self, text: &str) -> Option<&str> {
        self.list
            .iter()
            .find(|w| text.contains(w.as_str()))
            .map(String::as_str)
    }
}

impl PartialEq for Words {
    fn eq(&self, other: &Self) -> bool {
        self.list == other.list
    }
}

impl Eq for Words {}

impl std::fmt::Debug for Words {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.list.fmt(f)
    }
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// A fact at or above a threshold.
    AtLeast(Target, Threshold),
    /// A weighted sum of amounts at or above a threshold (e.g. 销售金额 × 3 + 货值金额).
    Sum(Vec<(Target, u64)>, Threshold),
    /// One of the words in one of the fields.
    Contains(Vec<TextField>, Words),
    /// The party is of one of these kinds.
    PartyKind(Vec<PartyKind>),
    /// The penalty includes one of these kinds.
    PenaltyKinds(Vec<PenaltyKind>),
    /// At least `n` earlier decisions against the same party within `days` days that meet the
    /// rule's text conditions too.
    Earlier {
        /// How many.
        n: u32,
        /// Within how many days before this decision.
        days: u32,
    },
    /// Every one.
    All(Vec<Condition>),
    /// At least one.
    Any(Vec<Condition>),
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Stable id (`tax-evasion`).
    pub id: String,
    /// Title.
    pub title: String,
    /// The charge (罪名) and its article of the Criminal Law.
    pub charge: String,
    /// The provision the threshold is taken from.
    pub source: String,
    /// Actions it applies to.
    pub actions: Vec<Action>,
    /// Units it applies to; empty for all.
    pub units: Vec<Uscc>,
    /// Every one must hold.
    pub when: Vec<Condition>,
    /// Whether its leads need a person's judgement before any recommendation: the crime needs
    /// facts no administrative record carries (现实危险, 足以造成…), so the rule can only point.
    pub review: bool,
    /// What the analyst should know when reading a lead (approximations, facts the record
    /// lacks), or empty.
    pub notes: String,
    /// Its golden cases.
    pub cases: Vec<GoldenCase>,
    /// The file it came from.
    pub file: PathBuf,
    /// Whether a condition counts earlier decisions (see [`Rule::needs_earlier`]), found once
    /// at load: it is asked of every case ingest stores.
    counts_earlier: bool,
}

/// A rule's own example: facts, earlier decisions, and whether the rule must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenCase {
    /// What it shows.
    pub name: String,
    /// Whether the rule must match.
    pub expect: bool,
    /// The case.
    pub case: Case,
    /// Earlier decisions against the same party.
    pub earlier: Vec<Case>,
}

/// One fact that met its condition: what, the value, the threshold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Matched {
    /// The fact (`amounts.evaded_tax_fen`, `cause`, `earlier`).
    pub fact: String,
    /// Its value as the law writes it (`673780.55 元`, `逃避缴纳税款`, `2`).
    pub value: String,
    /// The threshold or what was looked for (`≥ 100000.00 元`, `contains 逃税`).
    pub threshold: String,
}

/// Limits that keep a hostile rule file small.
const MAX_FILE: u64 = 256 * 1024;
const MAX_DEPTH: usize = 8;

impl Rule {
    /// Whether the rule speaks of `case`'s unit and action at all.
    pub fn applies_to(&self, case: &Case) -> bool {
        self.actions.contains(&case.action)
            && (self.units.is_empty() || self.units.contains(&case.unit_code))
    }

    /// Whether the rule counts the party's earlier decisions (多次): only then must they be read.
    pub fn needs_earlier(&self) -> bool {
        self.counts_earlier
    }

    /// Whether the party's other decisions matter when `case` is judged or changes under this
    /// rule: it counts earlier decisions, and either needs them to judge `case` or could count
    /// `case` for a later decision of the party.
    pub fn involves_party(&self, case: &Case) -> bool {
        self.needs_earlier() && (self.needs_party_to_judge(case) || self.same_kind(case))
    }

    /// Whether judging `case` under this rule needs the party's earlier decisions: the rule
    /// counts them (多次), applies to `case`, and every other condition holds — otherwise the
    /// case does not meet the rule whatever its party did before.
    pub fn needs_party_to_judge(&self, case: &Case) -> bool {
        self.needs_earlier()
            && self.applies_to(case)
            && self.when.iter().all(|c| self.holds(c, case, None, None))
    }

    /// Whether `case` meets the rule; `earlier` are the party's other decisions (any order).
    /// Returns the facts that matched, each next to its threshold.
    pub fn evaluate(&self, case: &Case, earlier: &[Case]) -> Option<Vec<Matched>> {
        if !self.applies_to(case) {
            return None;
        }
        // Most cases fail a condition: ask first without writing the matched facts down.
        if !self
            .when
            .iter()
            .all(|c| self.holds(c, case, Some(earlier), None))
        {
            return None;
        }
        let mut out = Vec::new();
        for c in &self.when {
            self.holds(c, case, Some(earlier), Some(&mut out));
        }
        Some(out)
    }

    /// Whether a case meets the rule's text conditions (the earlier decisions 多次 counts).
    fn same_kind(&self, c: &Case) -> bool {
        fn texts(c: &Condition, case: &Case) -> bool {
            match c {
                Condition::Contains(..) => text_holds(c, case),
                Condition::All(v) => v.iter().all(|x| texts(x, case)),
                Condition::Any(v) => {
                    let t: Vec<&Condition> = v.iter().filter(|x| has_text(x)).collect();
                    t.is_empty() || t.iter().any(|x| texts(x, case))
                }
                _ => true,
            }
        }
        fn has_text(c: &Condition) -> bool {
            match c {
                Condition::Contains(..) => true,
                Condition::All(v) | Condition::Any(v) => v.iter().any(has_text),
                _ => false,
            }
        }
        self.actions.contains(&c.action) && self.when.iter().all(|x| texts(x, c))
    }

    /// Whether condition `c` holds for `case`; `earlier: None` takes a count of earlier
    /// decisions (多次) as met, to ask whether the rest holds. The facts that matched are
    /// pushed to `out` when it is given (building them costs more than the check).
    fn holds(
        &self,
        c: &Condition,
        case: &Case,
        earlier: Option<&[Case]>,
        mut out: Option<&mut Vec<Matched>>,
    ) -> bool {
        match c {
            Condition::AtLeast(t, th) => match fact(case, *t) {
                Some(v) if v >= th.value => {
                    note(&mut out, || Matched {
                        fact: t.path().into(),
                        value: show(th.kind, v),
                        threshold: format!("≥ {}", th.display()),
                    });
                    true
                }
                _ => false,
            },
            Condition::Sum(terms, th) => {
                let mut sum: u64 = 0;
                let mut any = false;
                for (t, times) in terms {
                    if let Some(v) = fact(case, *t) {
                        any = true;
                        sum = sum.saturating_add(v.saturating_mul(*times));
                    }
                }
                if !any || sum < th.value {
                    return false;
                }
                note(&mut out, || Matched {
                    fact: terms
                        .iter()
                        .map(|(t, k)| match k {
                            1 => t.path().to_string(),
                            k => format!("{k} × {}", t.path()),
                        })
                        .collect::<Vec<_>>()
                        .join(" + "),
                    value: show(th.kind, sum),
                    threshold: format!("≥ {}", th.display()),
                });
                true
            }
            // The automaton answers whether; which word (in the rule's order) only when asked.
            Condition::Contains(..) if out.is_none() => text_holds(c, case),
            Condition::Contains(_, words) => match text_match(c, case) {
                Some((field, word)) => {
                    note(&mut out, || Matched {
                        fact: field.into(),
                        value: word.into(),
                        threshold: format!("contains one of {}", words.list.join(", ")),
                    });
                    true
                }
                None => false,
            },
            Condition::PartyKind(kinds) => {
                let ok = kinds.contains(&case.party.kind);
                if ok {
                    note(&mut out, || Matched {
                        fact: "party.kind".into(),
                        value: case.party.kind.label().into(),
                        threshold: label_list(kinds.iter().map(|k| k.label())),
                    });
                }
                ok
            }
            Condition::PenaltyKinds(kinds) => {
                let have = case
                    .penalty
                    .as_ref()
                    .map(|p| p.kinds.as_slice())
                    .unwrap_or(&[]);
                match have.iter().find(|k| kinds.contains(k)) {
                    Some(k) => {
                        note(&mut out, || Matched {
                            fact: "penalty.kinds".into(),
                            value: k.label().into(),
                            threshold: label_list(kinds.iter().map(|k| k.label())),
                        });
                        true
                    }
                    None => false,
                }
            }
            Condition::Earlier { n, days } => {
                let Some(earlier) = earlier else {
                    return true;
                };
                let Some(on) = case.decided_on else {
                    return false;
                };
                let from = on - chrono::Days::new(u64::from(*days));
                let count = earlier
                    .iter()
                    .filter(|e| {
                        e.key() != case.key() && e.status != crate::model::CaseStatus::Revoked
                    })
                    .filter(|e| e.decided_on.is_some_and(|d| d >= from && d < on))
                    .filter(|e| self.same_kind(e))
                    .count();
                let ok = count >= *n as usize;
                if ok {
                    note(&mut out, || Matched {
                        fact: "earlier".into(),
                        value: count.to_string(),
                        threshold: format!("≥ {n} within {days} days"),
                    });
                }
                ok
            }
            // Asked first without `out`: an inner condition that fails leaves nothing behind.
            Condition::All(v) => {
                let ok = v.iter().all(|x| self.holds(x, case, earlier, None));
                if ok && let Some(out) = out {
                    for x in v {
                        self.holds(x, case, earlier, Some(out));
                    }
                }
                ok
            }
            Condition::Any(v) => match v.iter().find(|x| self.holds(x, case, earlier, None)) {
                Some(x) => {
                    if let Some(out) = out {
                        self.holds(x, case, earlier, Some(out));
                    }
                    true
                }
                None => false,
            },
        }
    }
}

fn label_list<'a>(labels: impl Iterator<Item = &'a str>) -> String {
    format!("one of {}", labels.collect::<Vec<_>>().join(", "))
}

/// The field and the keyword by which `case` meets keyword condition `c`, if it does.
fn text_match<'a>(c: &'a Condition, case: &Case) -> Option<(&'static str, &'a str)> {
    let Condition::Contains(fields, words) = c else {
        return None;
    };
    for f in fields {
        let Some(text) = f.of(case) else { continue };
        if let Some(w) = words.first_in(text) {
            return Some((f.name(), w));
        }
    }
    None
}

/// Whether `case` meets keyword condition `c` (what [`text_match`] finds, without saying which).
fn text_holds(c: &Condition, case: &Case) -> bool {
    let Condition::Contains(fields, words) = c else {
        return false;
    };
    fields
        .iter()
        .any(|f| f.of(case).is_some_and(|t| words.in_text(t)))
}

/// Pushes the matched fact `m` builds when the caller asked for them.
fn note(out: &mut Option<&mut Vec<Matched>>, m: impl FnOnce() -> Matched) {
    if let Some(out) = out {
        out.push(m());
    }
}

/// A fact's value in its own unit: fen, people, basis points.
fn fact(c: &Case, t: Target) -> Option<u64> {
    let a = &c.amounts;
    let h = &c.harm;
    let fen = |f: Option<Fen>| f.map(Fen::get);
    match t {
        Target::AmountInvolved => fen(a.involved_fen),
        Target::AmountGoodsValue => fen(a.goods_value_fen),
        Target::AmountSales => fen(a.sales_fen),
        Target::AmountIllegalGains => fen(a.illegal_gains_fen),
        Target::AmountEvadedTax => fen(a.evaded_tax_fen),
        Target::AmountEvadedTaxShare => a.evaded_tax_share.map(|s| u64::from(s.basis_points())),
        Target::HarmDeaths => h.deaths.map(u64::from),
        Target::HarmSeriousInjuries => h.serious_injuries.map(u64::from),
        Target::HarmDirectLoss => fen(h.direct_loss_fen),
        Target::PenaltyFine => fen(c.penalty.as_ref().and_then(|p| p.fine_fen)),
        Target::PenaltyConfiscated => fen(c.penalty.as_ref().and_then(|p| p.confiscated_fen)),
        _ => None,
    }
}

/// The facts a threshold may be set on.
const FACTS: [Target; 11] = [
    Target::AmountInvolved,
    Target::AmountGoodsValue,
    Target::AmountSales,
    Target::AmountIllegalGains,
    Target::AmountEvadedTax,
    Target::AmountEvadedTaxShare,
    Target::HarmDeaths,
    Target::HarmSeriousInjuries,
    Target::HarmDirectLoss,
    Target::PenaltyFine,
    Target::PenaltyConfiscated,
];

// ---- Loading ----------------------------------------------------------------------------

struct Errs {
    file: String,
    list: Vec<RuleError>,
}

impl Errs {
    fn push(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.list.push(RuleError {
            file: self.file.clone(),
            at: at.into(),
            reason: reason.into(),
        });
    }
}

/// Loads every `*.toml` under `dir`: all the rules, or every problem in any of them. Ids are
/// unique across files.
pub fn load_dir(dir: &Path) -> Result<Vec<Rule>, Vec<RuleError>> {
    let shown = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![RuleError {
            file: shown.clone(),
            at: "(directory)".into(),
            reason: format!("cannot read the rules directory: {e}"),
        }]
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match load_file(&p) {
            Ok(r) => rules.push(r),
            Err(mut e) => errors.append(&mut e),
        }
    }
    let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
    for r in &rules {
        if let Some(first) = seen.insert(&r.id, &r.file) {
            errors.push(RuleError {
                file: r.file.display().to_string(),
                at: "id".into(),
                reason: format!("'{}' is already the id of {}", r.id, first.display()),
            });
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

/// Loads one rule file.
pub fn load_file(path: &Path) -> Result<Rule, Vec<RuleError>> {
    let mut e = Errs {
        file: path.display().to_string(),
        list: Vec::new(),
    };
    let text = match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE => {
            e.push(
                "(file)",
                format!("{} bytes; a rule file holds at most {MAX_FILE}", m.len()),
            );
            return Err(e.list);
        }
        _ => match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(err) => {
                e.push("(file)", format!("cannot read: {err}"));
                return Err(e.list);
            }
        },
    };
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(err) => {
            e.push("(file)", format!("not TOML: {}", err.message()));
            return Err(e.list);
        }
    };
    let rule = parse_rule(&table, path, &mut e);
    match rule {
        Some(r) if e.list.is_empty() => Ok(r),
        _ => Err(e.list),
    }
}

fn string(t: &toml::Table, key: &str, e: &mut Errs) -> Option<String> {
    match t.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            e.push(key, "is empty");
            None
        }
        Some(other) => {
            e.push(key, format!("must be a string, not {}", other.type_str()));
            None
        }
        None => {
            e.push(key, "is required");
            None
        }
    }
}

fn strings(v: &Value, at: &str, e: &mut Errs) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .enumerate()
            .filter_map(|(i, x)| match x {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                _ => {
                    e.push(format!("{at}[{i}]"), "must be a non-empty string");
                    None
                }
            })
            .collect(),
        other => {
            e.push(
                at,
                format!("must be a list of strings, not {}", other.type_str()),
            );
            Vec::new()
        }
    }
}

/// A list of codes of one code list, each unknown one named.
fn codes<T>(
    v: &Value,
    at: &str,
    parse: fn(&str) -> Result<T, crate::model::CodeError>,
    e: &mut Errs,
) -> Vec<T> {
    strings(v, at, e)
        .iter()
        .filter_map(|k| parse(k).map_err(|x| e.push(at, x.to_string())).ok())
        .collect()
}

fn unknown_keys(t: &toml::Table, known: &[&str], at: &str, e: &mut Errs) {
    for k in t.keys() {
        if !known.contains(&k.as_str()) {
            let p = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            e.push(p, format!("unknown key (known: {})", known.join(", ")));
        }
    }
}

fn parse_rule(t: &toml::Table, path: &Path, e: &mut Errs) -> Option<Rule> {
    unknown_keys(
        t,
        &[
            "id", "title", "charge", "source", "actions", "units", "review", "notes", "when",
            "cases",
        ],
        "",
        e,
    );
    let id = string(t, "id", e);
    if let Some(id) = &id {
        let ok = id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            e.push("id", format!("'{id}' must be 1-64 of a-z, 0-9 and -"));
        }
    }
    let title = string(t, "title", e);
    let charge = string(t, "charge", e);
    // A threshold without its provision cannot be checked by anyone: the citation is required
    // and must name the document (《…》) and the article (第…条).
    let source = string(t, "source", e);
    if let Some(s) = &source
        && !(s.contains('《') && s.contains('》') && s.contains('第') && s.contains('条'))
    {
        e.push(
            "source",
            "must cite the document in 《》 and its article (第…条)",
        );
    }
    let actions: Vec<Action> = match t.get("actions") {
        Some(v) => codes(v, "actions", Action::parse, e),
        None => {
            e.push("actions", "is required (e.g. [\"penalty\"])");
            Vec::new()
        }
    };
    if t.contains_key("actions") && actions.is_empty() {
        e.push("actions", "names no action");
    }
    let units: Vec<Uscc> = match t.get("units") {
        Some(v) => strings(v, "units", e)
            .iter()
            .filter_map(|u| {
                Uscc::parse(u)
                    .map_err(|x| e.push("units", format!("{u}: {x}")))
                    .ok()
            })
            .collect(),
        None => Vec::new(),
    };
    let when = match t.get("when") {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .enumerate()
            .filter_map(|(i, c)| condition(c, &format!("when[{i}]"), 0, e))
            .collect(),
        Some(_) => {
            e.push("when", "must be a non-empty list of conditions");
            Vec::new()
        }
        None => {
            e.push(
                "when",
                "is required: a rule without conditions would match every case",
            );
            Vec::new()
        }
    };
    let review = match t.get("review") {
        None => false,
        Some(Value::Boolean(b)) => *b,
        Some(_) => {
            e.push("review", "must be true or false");
            false
        }
    };
    let notes = match t.get("notes") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            e.push("notes", "must be a string");
            String::new()
        }
    };
    fn counts_earlier(c: &Condition) -> bool {
        match c {
            Condition::Earlier { .. } => true,
            Condition::All(v) | Condition::Any(v) => v.iter().any(counts_earlier),
            _ => false,
        }
    }
    let mut rule = Rule {
        counts_earlier: when.iter().any(counts_earlier),
        id: id?,
        title: title?,
        charge: charge?,
        source: source?,
        actions,
        units,
        when,
        review,
        notes,
        cases: Vec::new(),
        file: path.to_path_buf(),
    };
    match t.get("cases") {
        Some(Value::Array(a)) => {
            for (i, c) in a.iter().enumerate() {
                if let Some(g) = golden(c, &rule, &format!("cases[{i}]"), e) {
                    rule.cases.push(g);
                }
            }
        }
        Some(_) => e.push("cases", "must be a list of tables ([[cases]])"),
        None => {}
    }
    for (expect, what) in [(true, "matching"), (false, "non-matching")] {
        if !rule.cases.iter().any(|c| c.expect == expect) {
            e.push("cases", format!("needs at least one {what} golden case"));
        }
    }
    Some(rule)
}

fn condition(v: &Value, at: &str, depth: usize, e: &mut Errs) -> Option<Condition> {
    let Value::Table(t) = v else {
        e.push(
            at,
            "must be a table ({ fact = …, at_least = … } and the like)",
        );
        return None;
    };
    if depth >= MAX_DEPTH {
        e.push(at, format!("nested deeper than {MAX_DEPTH}"));
        return None;
    }
    let list = |key: &str, e: &mut Errs| -> Vec<Condition> {
        match t.get(key) {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .enumerate()
                .filter_map(|(i, c)| condition(c, &format!("{at}.{key}[{i}]"), depth + 1, e))
                .collect(),
            _ => {
                e.push(
                    format!("{at}.{key}"),
                    "must be a non-empty list of conditions",
                );
                Vec::new()
            }
        }
    };
    let kinds = [
        "fact",
        "sum",
        "text",
        "party_kind",
        "penalty_kinds",
        "earlier",
        "any",
        "all",
    ];
    let present: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| t.contains_key(*k))
        .collect();
    let [kind] = present.as_slice() else {
        e.push(
            at,
            format!(
                "must have exactly one of {} (found {})",
                kinds.join(", "),
                if present.is_empty() {
                    "none".into()
                } else {
                    present.join(", ")
                }
            ),
        );
        return None;
    };
    match *kind {
        "fact" => {
            unknown_keys(t, &["fact", "at_least"], at, e);
            let target = fact_target(t.get("fact"), &format!("{at}.fact"), e)?;
            let th = threshold(
                t.get("at_least"),
                target.kind(),
                &format!("{at}.at_least"),
                e,
            )?;
            Some(Condition::AtLeast(target, th))
        }
        "sum" => {
            unknown_keys(t, &["sum", "at_least"], at, e);
            let Some(Value::Array(terms)) = t.get("sum") else {
                e.push(format!("{at}.sum"), "must be a list of { fact, times }");
                return None;
            };
            let mut out = Vec::new();
            for (i, term) in terms.iter().enumerate() {
                let p = format!("{at}.sum[{i}]");
                let Value::Table(tt) = term else {
                    e.push(p, "must be { fact = …, times = … }");
                    continue;
                };
                unknown_keys(tt, &["fact", "times"], &p, e);
                let Some(target) = fact_target(tt.get("fact"), &format!("{p}.fact"), e) else {
                    continue;
                };
                if target.kind() != TargetKind::Money {
                    e.push(format!("{p}.fact"), "a sum adds amounts only");
                    continue;
                }
                let times = match tt.get("times") {
                    None => 1,
                    Some(Value::Integer(n)) if (1..=100).contains(n) => *n as u64,
                    Some(_) => {
                        e.push(format!("{p}.times"), "must be a whole number 1-100");
                        continue;
                    }
                };
                out.push((target, times));
            }
            if out.len() < 2 {
                e.push(format!("{at}.sum"), "needs at least two amounts");
                return None;
            }
            let th = threshold(
                t.get("at_least"),
                TargetKind::Money,
                &format!("{at}.at_least"),
                e,
            )?;
            Some(Condition::Sum(out, th))
        }
        "text" => {
            unknown_keys(t, &["text", "contains_any"], at, e);
            let fields: Vec<TextField> = strings(&t["text"], &format!("{at}.text"), e)
                .iter()
                .filter_map(|f| match TextField::ALL.iter().find(|(n, _)| n == f) {
                    Some((_, x)) => Some(*x),
                    None => {
                        e.push(
                            format!("{at}.text"),
                            format!("'{f}' is not title, cause, legal_basis, facts or decision"),
                        );
                        None
                    }
                })
                .collect();
            let words = match t.get("contains_any") {
                Some(v) => strings(v, &format!("{at}.contains_any"), e),
                None => Vec::new(),
            };
            if words.is_empty() || fields.is_empty() {
                e.push(
                    at,
                    "a text condition needs fields (text) and words (contains_any)",
                );
                return None;
            }
            match Words::new(words) {
                Ok(words) => Some(Condition::Contains(fields, words)),
                Err(why) => {
                    e.push(at, format!("the words cannot be matched: {why}"));
                    None
                }
            }
        }
        "party_kind" => {
            unknown_keys(t, &["party_kind"], at, e);
            let kinds = codes(
                &t["party_kind"],
                &format!("{at}.party_kind"),
                PartyKind::parse,
                e,
            );
            (!kinds.is_empty()).then_some(Condition::PartyKind(kinds))
        }
        "penalty_kinds" => {
            unknown_keys(t, &["penalty_kinds"], at, e);
            let at = format!("{at}.penalty_kinds");
            let kinds = codes(&t["penalty_kinds"], &at, PenaltyKind::parse, e);
            (!kinds.is_empty()).then_some(Condition::PenaltyKinds(kinds))
        }
        "earlier" => {
            unknown_keys(t, &["earlier", "within_days"], at, e);
            let n = match t.get("earlier") {
                Some(Value::Integer(n)) if (1..=100).contains(n) => *n as u32,
                _ => {
                    e.push(format!("{at}.earlier"), "must be a whole number 1-100");
                    return None;
                }
            };
            let days = match t.get("within_days") {
                Some(Value::Integer(d)) if (1..=36_600).contains(d) => *d as u32,
                _ => {
                    e.push(
                        format!("{at}.within_days"),
                        "is required: a whole number of days 1-36600",
                    );
                    return None;
                }
            };
            Some(Condition::Earlier { n, days })
        }
        "any" => {
            unknown_keys(t, &["any"], at, e);
            Some(Condition::Any(list("any", e)))
        }
        _ => {
            unknown_keys(t, &["all"], at, e);
            Some(Condition::All(list("all", e)))
        }
    }
}

fn fact_target(v: Option<&Value>, at: &str, e: &mut Errs) -> Option<Target> {
    let name = match v {
        Some(Value::String(s)) => s,
        _ => {
            e.push(at, "must name a fact");
            return None;
        }
    };
    match FACTS.iter().find(|t| t.path() == name) {
        Some(t) => Some(*t),
        None => {
            let known: Vec<&str> = FACTS.iter().map(|t| t.path()).collect();
            e.push(
                at,
                format!(
                    "'{name}' is not a fact a threshold can be set on (known: {})",
                    known.join(", ")
                ),
            );
            None
        }
    }
}

/// A threshold as the law writes it: yuan for amounts, a whole number of people, a percent.
fn threshold(v: Option<&Value>, kind: TargetKind, at: &str, e: &mut Errs) -> Option<Threshold> {
    let text = match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Integer(n)) => n.to_string(),
        Some(other) => {
            e.push(
                at,
                format!(
                    "must be a string such as \"100000\", not {}",
                    other.type_str()
                ),
            );
            return None;
        }
        None => {
            e.push(at, "is required");
            return None;
        }
    };
    let value = match kind {
        TargetKind::Money => Fen::parse(&text, MoneyUnit::Yuan)
            .map(Fen::get)
            .map_err(|x| x.to_string()),
        TargetKind::Percent => Share::parse(&text).map(|s| u64::from(s.basis_points())),
        _ => text
            .parse::<u32>()
            .map(u64::from)
            .map_err(|_| format!("'{text}' is not a whole number")),
    };
    match value {
        Ok(0) => {
            e.push(at, "a threshold of 0 matches every case that has the fact");
            None
        }
        Ok(value) => Some(Threshold { value, kind }),
        Err(why) => {
            e.push(at, why);
            None
        }
    }
}

/// A golden case: `facts` by target path (money in yuan), with defaults for what the rule does
/// not look at; `earlier` lists earlier decisions against the same party, each `{ decided_on,
/// facts }`.
fn golden(v: &Value, rule: &Rule, at: &str, e: &mut Errs) -> Option<GoldenCase> {
    let Value::Table(t) = v else {
        e.push(at, "must be a table");
        return None;
    };
    unknown_keys(t, &["name", "expect", "facts", "earlier"], at, e);
    let name = match t.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            e.push(format!("{at}.name"), "is required");
            return None;
        }
    };
    let expect = match t.get("expect") {
        Some(Value::Boolean(b)) => *b,
        _ => {
            e.push(format!("{at}.expect"), "is required: true or false");
            return None;
        }
    };
    let action = rule.actions.first().copied().unwrap_or(Action::Penalty);
    let unit = rule
        .units
        .first()
        .map_or("11320102526018159L", |u| u.as_str());
    let case = example(
        t.get("facts"),
        action,
        unit,
        "GOLDEN-0",
        "2025-06-30",
        &format!("{at}.facts"),
        e,
    )?;
    let mut earlier = Vec::new();
    if let Some(v) = t.get("earlier") {
        let Value::Array(a) = v else {
            e.push(
                format!("{at}.earlier"),
                "must be a list of { decided_on, facts }",
            );
            return None;
        };
        for (i, x) in a.iter().enumerate() {
            let p = format!("{at}.earlier[{i}]");
            let Value::Table(et) = x else {
                e.push(p, "must be { decided_on = …, facts = { … } }");
                continue;
            };
            unknown_keys(et, &["decided_on", "facts"], &p, e);
            let Some(Value::String(on)) = et.get("decided_on") else {
                e.push(format!("{p}.decided_on"), "is required (YYYY-MM-DD)");
                continue;
            };
            if let Some(c) = example(
                et.get("facts"),
                action,
                unit,
                &format!("GOLDEN-E{i}"),
                on,
                &format!("{p}.facts"),
                e,
            ) {
                earlier.push(c);
            }
        }
    }
    Some(GoldenCase {
        name,
        expect,
        case,
        earlier,
    })
}

/// A case built through the same [`Draft`] adapters use, from defaults and `facts`.
fn example(
    facts: Option<&Value>,
    action: Action,
    unit: &str,
    case_id: &str,
    decided_on: &str,
    at: &str,
    e: &mut Errs,
) -> Option<Case> {
    let mut values: BTreeMap<String, String> = [
        ("unit_code", unit),
        ("unit_name", "示例执法单位"),
        ("case_id", case_id),
        ("title", "示例案件"),
        ("action", action.code()),
        ("party.kind", "legal_person"),
        ("party.name", "示例当事人"),
        ("decided_on", decided_on),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if action == Action::Penalty {
        values.insert("penalty.kinds".into(), "warning".into());
    }
    match facts {
        Some(Value::Table(f)) => {
            for (k, v) in f {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Integer(n) => n.to_string(),
                    Value::Boolean(b) => b.to_string(),
                    other => {
                        e.push(
                            format!("{at}.{k}"),
                            format!("must be a string, not {}", other.type_str()),
                        );
                        continue;
                    }
                };
                let Some(target) = Target::from_path(k) else {
                    e.push(
                        format!("{at}.{k}"),
                        "is not a field of the canonical record",
                    );
                    continue;
                };
                // Money in yuan, as the rule's thresholds are written.
                let text = if target.kind() == TargetKind::Money {
                    match Fen::parse(&text, MoneyUnit::Yuan) {
                        Ok(f) => f.get().to_string(),
                        Err(x) => {
                            e.push(format!("{at}.{k}"), x.to_string());
                            continue;
                        }
                    }
                } else {
                    text
                };
                values.insert(k.clone(), text);
            }
        }
        Some(_) => {
            e.push(at, "must be a table of field = value");
            return None;
        }
        None => {}
    }
    let mut d = Draft::new();
    for (k, v) in &values {
        if let Some(t) = Target::from_path(k) {
            let vals = if t.is_list() {
                v.split(';').map(str::to_string).collect()
            } else {
                vec![v.clone()]
            };
            d.set(t, vals);
        }
    }
    let now = chrono::Utc::now();
    let ctx = DraftContext {
        adapter: "rules",
        system: "golden case",
        file: at,
        location: at.to_string(),
        now,
        today: NaiveDate::MAX,
        default_unit_name: None,
    };
    match d.into_case(&ctx) {
        Ok(c) => Some(c),
        Err(errors) => {
            for x in errors {
                e.push(at, x.to_string());
            }
            None
        }
    }
}

/// The outcome of one golden case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenOutcome {
    /// The rule.
    pub rule: String,
    /// The case's name.
    pub name: String,
    /// What it expected.
    pub expect: bool,
    /// What the rule said, with the matched facts.
    pub got: Option<Vec<Matched>>,
}

impl GoldenOutcome {
    /// Whether the rule said what the case expects.
    pub fn passed(&self) -> bool {
        self.expect == self.got.is_some()
    }
}

/// Runs every rule's golden cases.
pub fn run_golden(rules: &[Rule]) -> Vec<GoldenOutcome> {
    rules
        .iter()
        .flat_map(|r| {
            r.cases.iter().map(move |g| GoldenOutcome {
                rule: r.id.clone(),
                name: g.name.clone(),
                expect: g.expect,
                got: r.evaluate(&g.case, &g.earlier),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const TAX: &str = r#"
id = "tax-evasion"
title = "逃税"
charge = "逃税罪（《刑法》第二百零一条）"
source = "《立案追诉标准的规定（二）》第五十二条"
actions = ["penalty"]
when = [
  { fact = "amounts.evaded_tax_fen", at_least = "100000" },
  { fact = "amounts.evaded_tax_share", at_least = "10" },
]
[[cases]]
name = "at both thresholds"
expect = true
facts = { "amounts.evaded_tax_fen" = "100000.00", "amounts.evaded_tax_share" = "10" }
[[cases]]
name = "one fen short"
expect = false
facts = { "amounts.evaded_tax_fen" = "99999.99", "amounts.evaded_tax_share" = "50" }
[[cases]]
name = "share just under"
expect = false
facts = { "amounts.evaded_tax_fen" = "673780.55", "amounts.evaded_tax_share" = "9.99" }
[[cases]]
name = "share unknown"
expect = false
facts = { "amounts.evaded_tax_fen" = "673780.55" }
"#;

    const MEDICINE: &str = r#"
id = "illegal-medical-practice"
title = "非法行医：被行政处罚两次以后再次非法行医"
charge = "非法行医罪（《刑法》第三百三十六条）"
source = "《立案追诉标准的规定（一）》第五十七条"
actions = ["penalty"]
when = [
  { text = ["cause", "title"], contains_any = ["非法行医", "未取得医疗机构执业许可证"] },
  { any = [
      { earlier = 2, within_days = 3650 },
      { fact = "harm.deaths", at_least = 1 },
      { sum = [{ fact = "amounts.sales_fen", times = 3 }, { fact = "amounts.goods_value_fen" }], at_least = "150000" },
  ] },
  { party_kind = ["natural_person", "individual_business"] },
]
[[cases]]
name = "third time"
expect = true
facts = { cause = "非法行医", "party.kind" = "individual_business" }
earlier = [
  { decided_on = "2021-05-01", facts = { cause = "非法行医" } },
  { decided_on = "2024-05-01", facts = { cause = "未取得医疗机构执业许可证擅自执业" } },
]
[[cases]]
name = "second time only"
expect = false
facts = { cause = "非法行医", "party.kind" = "individual_business" }
earlier = [
  { decided_on = "2024-05-01", facts = { cause = "非法行医" } },
  { decided_on = "2024-06-01", facts = { cause = "占道经营" } },
]
"#;

    #[test]
    fn words_are_found_as_str_contains_finds_them_and_named_in_the_rule_s_order() {
        let w = Words::new(vec!["偷税".into(), "逃税".into(), "tax".into()]).unwrap();
        for text in [
            "",
            "逃税",
            "先逃税后偷税",
            "偷",
            "税",
            "syntax",
            "逃 税",
            "TAX",
        ] {
            let want = ["偷税", "逃税", "tax"]
                .into_iter()
                .find(|x| text.contains(x));
            assert_eq!(w.in_text(text), want.is_some(), "{text}");
            assert_eq!(w.first_in(text), want, "{text}");
        }
        assert_eq!(
            w,
            Words::new(vec!["偷税".into(), "逃税".into(), "tax".into()]).unwrap()
        );
        assert_ne!(w, Words::new(vec!["逃税".into()]).unwrap());
    }

    #[test]
    fn thresholds_match_on_their_side_with_the_facts_shown() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "tax.toml", TAX);
        write(dir.path(), "medicine.toml", MEDICINE);
        let rules = load_dir(dir.path()).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(rules.len(), 2);
        let outcomes = run_golden(&rules);
        assert_eq!(outcomes.len(), 6);
        for o in &outcomes {
            assert!(o.passed(), "{o:?}");
        }
        let first = outcomes
            .iter()
            .find(|o| o.name == "at both thresholds")
            .unwrap();
        let m = first.got.as_ref().unwrap();
        assert_eq!(
            (
                m[0].fact.as_str(),
                m[0].value.as_str(),
                m[0].threshold.as_str()
            ),
            ("amounts.evaded_tax_fen", "100000.00 元", "≥ 100000.00 元")
        );
        assert_eq!(
            (m[1].value.as_str(), m[1].threshold.as_str()),
            ("10.00%", "≥ 10.00%")
        );
        let third = outcomes.iter().find(|o| o.name == "third time").unwrap();
        let facts: Vec<(&str, &str)> = third
            .got
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| (m.fact.as_str(), m.value.as_str()))
            .collect();
        assert_eq!(
            facts,
            [
                ("cause", "非法行医"),
                ("earlier", "2"),
                ("party.kind", "个体工商户")
            ]
        );

        // Another unit's rule, another action, a revoked earlier decision, a window passed.
        let med = &rules
            .iter()
            .find(|r| r.id == "illegal-medical-practice")
            .unwrap();
        let g = &med.cases[0];
        let mut other = g.case.clone();
        other.action = Action::Licensing;
        assert!(med.evaluate(&other, &g.earlier).is_none());
        let mut revoked = g.earlier.clone();
        revoked[0].status = crate::model::CaseStatus::Revoked;
        assert!(med.evaluate(&g.case, &revoked).is_none());
        let mut old = g.earlier.clone();
        old[0].decided_on = NaiveDate::from_ymd_opt(2015, 6, 1);
        assert!(med.evaluate(&g.case, &old).is_none());
        // The weighted sum: 3 × 30000 + 60000 = 150000 yuan meets it; 1 fen less does not.
        let mut sold = g.case.clone();
        sold.amounts.sales_fen = Some(Fen::new(3_000_000));
        sold.amounts.goods_value_fen = Some(Fen::new(6_000_000));
        let m = med
            .evaluate(&sold, &[])
            .expect("the sum meets the threshold");
        assert!(
            m.iter().any(
                |f| f.fact == "3 × amounts.sales_fen + amounts.goods_value_fen"
                    && f.value == "150000.00 元"
            ),
            "{m:?}"
        );
        sold.amounts.goods_value_fen = Some(Fen::new(5_999_999));
        assert!(med.evaluate(&sold, &[]).is_none());
    }

    #[test]
    fn every_problem_of_every_file_is_named_at_once() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.toml", TAX);
        write(dir.path(), "b.toml", TAX); // the same id again
        write(
            dir.path(),
            "c.toml",
            r#"
id = "Bad Id"
title = "t"
charge = "c"
source = "第五十二条"
actions = ["penalty", "arrest"]
colour = "red"
when = [
  { fact = "amounts.evaded_tax_fen", at_least = "0" },
  { fact = "amounts.unknown", at_least = "1" },
  { fact = "amounts.sales_fen", at_least = "1.001" },
  { fact = "harm.deaths", text = ["cause"] },
  { text = ["body"], contains_any = ["x"] },
  { earlier = 2 },
]
[[cases]]
name = "x"
expect = true
facts = { "amounts.nowhere" = "1" }
"#,
        );
        write(dir.path(), "d.toml", "id = [");
        write(
            dir.path(),
            "e.toml",
            "id = \"no-when\"\ntitle = \"t\"\ncharge = \"c\"\nsource = \"《x》第1条\"\nactions = [\"penalty\"]\n",
        );
        let errors = load_dir(dir.path()).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let has = |file: &str, at: &str, why: &str| {
            assert!(
                errors
                    .iter()
                    .any(|e| e.file.ends_with(file) && e.at == at && e.reason.contains(why)),
                "no {file} {at}: {why} in {text:#?}"
            );
        };
        has("b.toml", "id", "already the id of");
        has("c.toml", "id", "a-z, 0-9");
        has("c.toml", "source", "《》");
        has("c.toml", "actions", "arrest");
        has("c.toml", "colour", "unknown key");
        has("c.toml", "when[0].at_least", "threshold of 0");
        has("c.toml", "when[1].fact", "not a fact");
        has("c.toml", "when[2].at_least", "1.001");
        has("c.toml", "when[3]", "exactly one of");
        has("c.toml", "when[4].text", "'body'");
        has("c.toml", "when[5].within_days", "required");
        has("c.toml", "cases[0].facts.amounts.nowhere", "not a field");
        has("c.toml", "cases", "non-matching");
        has("d.toml", "(file)", "not TOML");
        has("e.toml", "when", "match every case");
    }

    #[test]
    fn hostile_rule_files_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "big.toml", &"# x\n".repeat(70_000));
        let deep = format!(
            "id = \"deep\"\ntitle = \"t\"\ncharge = \"c\"\nsource = \"《x》第1条\"\nactions = [\"penalty\"]\nwhen = [{}{{ party_kind = [\"legal_person\"] }}{}]\n",
            "{ any = [".repeat(20),
            "] }".repeat(20)
        );
        write(dir.path(), "deep.toml", &deep);
        let errors = load_dir(dir.path()).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.file.ends_with("big.toml") && e.reason.contains("at most"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.file.ends_with("deep.toml") && e.reason.contains("nested deeper"))
        );
    }

    /// The starter rule set shipped in `rules/`: it loads, every golden case passes, every unit
    /// of the district has a rule, and a rule that sets no threshold only points (review).
    #[test]
    fn shipped_rules_load_and_pass_their_golden_cases() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let rules = load_dir(&dir).unwrap_or_else(|e| panic!("{e:#?}"));
        assert!(!rules.is_empty(), "no rules in {}", dir.display());

        let outcomes = run_golden(&rules);
        let failed: Vec<&GoldenOutcome> = outcomes.iter().filter(|o| !o.passed()).collect();
        assert!(failed.is_empty(), "failing golden cases: {failed:#?}");
        let total: usize = rules.iter().map(|r| r.cases.len()).sum();
        assert_eq!(outcomes.len(), total);

        // 市场监管, 税务, 应急, 城管, 卫健, 文旅, 住建, 消防.
        for unit in [
            "11320102526018159L",
            "11320102507529170Q",
            "11320102996030824B",
            "11320102083016613W",
            "11320102186091390J",
            "113201029935181903",
            "113201029378657970",
            "11320102471049746T",
        ] {
            assert!(
                rules
                    .iter()
                    .any(|r| r.units.iter().any(|u| u.as_str() == unit)),
                "no rule applies to unit {unit}"
            );
        }

        fn has_threshold(c: &Condition) -> bool {
            match c {
                Condition::AtLeast(..) | Condition::Sum(..) | Condition::Earlier { .. } => true,
                Condition::All(v) | Condition::Any(v) => v.iter().any(has_threshold),
                _ => false,
            }
        }
        for r in &rules {
            let matching = r.cases.iter().filter(|c| c.expect).count();
            let not = r.cases.iter().filter(|c| !c.expect).count();
            assert!(
                matching >= 1 && not >= 1,
                "{}: {matching} matching and {not} non-matching golden cases",
                r.id
            );
            assert!(
                r.review || r.when.iter().any(has_threshold),
                "{}: keywords alone, so its leads need review = true",
                r.id
            );
            assert!(
                !r.review || !r.notes.trim().is_empty(),
                "{}: a review rule must tell the analyst what to judge (notes)",
                r.id
            );
        }
    }
}
