//! Submitted quarterly reports (DESIGN §9, issue 6): the 执法案件统计报表明细 a vertically managed
//! department without a feed sends each quarter, as CSV, XLSX or XML.
//!
//! The files are decoded and mapped by the adapter engine (`crate::ingest`) with the definitions in
//! `submissions/<format>/adapter.toml`, so a submitted case passes exactly the checks an ingested
//! one does. This module owns what the engine does not know: the declared totals (the CSV/XLSX row
//! whose 办件编号 is 合计, the XML `<Totals>` element), taken out before mapping, and the rules of a
//! submission as a whole — every record maps, every decision date lies in the quarter, every case
//! is the submitting unit's, no case appears twice, the totals come once, last, and equal the
//! details. Every problem is reported, in file order, naming the record and the field.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::model::Detail;
use crate::ingest::decode::{self, Column, Format, RawRecord, RecordError};
use crate::ingest::{Adapter, AdapterError, FieldSource};
use crate::model::{Fen, MoneyUnit, Quarter, Target, Uscc};

/// The 办件编号 that marks the totals row of a CSV or XLSX submission.
pub const TOTALS_MARK: &str = "合计";
/// The CSV/XLSX column holding the declared number of cases; filled on the totals row only.
pub const CASE_COUNT_COLUMN: &str = "案件数";
/// The XML element, beside the `<Case>` elements, holding the declared totals.
pub const XML_TOTALS: &str = "Totals";
/// Attributes of `<Totals>`: number of cases, fines and confiscations in yuan.
const XML_TOTALS_ATTRS: [&str; 3] = ["cases", "fines_yuan", "confiscations_yuan"];
/// Sort key of problems found after the last record (a missing totals record).
const AT_END: u64 = u64::MAX;

/// What a submission declares in its totals record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Number of cases.
    pub cases: u64,
    /// Sum of the fines.
    pub fines_fen: Fen,
    /// Sum of the confiscations.
    pub confiscations_fen: Fen,
}

/// A submission that passed every check.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The detail list, in file order.
    pub details: Vec<Detail>,
    /// The declared totals (equal to the details').
    pub totals: Totals,
    /// `csv`, `xlsx` or `xml`.
    pub format: &'static str,
}

/// One reason a submission is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubmitProblem {
    /// Where: `row 7` (CSV line / spreadsheet row), `element /Submission/Case[3]`, `end of file`.
    pub location: String,
    /// The column, XML element or attribute as written in the file (`决定日期`, `JDRQ`, `@cases`),
    /// or `record` for a record that could not be decoded at all.
    pub field: String,
    /// What is wrong, with the values involved.
    pub reason: String,
}

impl fmt::Display for SubmitProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}: {}", self.location, self.field, self.reason)
    }
}

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The file's extension names no submission format; the message lists the accepted ones.
    #[error("{0}")]
    UnknownFormat(String),
    /// The file cannot be read as its format at all (encoding, missing columns, malformed XLSX or
    /// XML, …): the engine's reason, with the file and format.
    #[error("the submission cannot be read: {0}")]
    Unreadable(String),
    /// The file was read, and these are all its problems, in file order.
    #[error("the submission is refused with {} problem(s):{}", .0.len(), list(.0))]
    Invalid(Vec<SubmitProblem>),
}

fn list(problems: &[SubmitProblem]) -> String {
    problems.iter().map(|p| format!("\n  {p}")).collect()
}

/// The columns a submission format must read directly, resolved once per file.
struct Plan {
    kind: &'static str,
    case_id: usize,
    unit_code: usize,
    unit_name: usize,
    decided_on: usize,
    date_formats: Vec<String>,
    fine: (usize, MoneyUnit),
    confiscated: (usize, MoneyUnit),
}

impl Plan {
    /// The plan of an adapter, or each reason (key, why) it cannot serve as a submission format.
    fn of(a: &Adapter) -> Result<Plan, Vec<(String, String)>> {
        let mut errs = Vec::new();
        let kind = match &a.format {
            Format::Csv { .. } => "csv",
            Format::Xlsx { .. } => "xlsx",
            Format::Xml { record_path, .. } => {
                // `<Totals>` is a sibling of the cases; with `*` it would be mapped as a case.
                if record_path.last().is_none_or(|s| s == "*") {
                    errs.push((
                        "format.record_path".to_string(),
                        "must name the case element (e.g. \"Submission/Case\"), not \"*\": the totals element stands beside the cases".to_string(),
                    ));
                }
                "xml"
            }
            Format::Json { .. } | Format::JsonLines { .. } => {
                errs.push((
                    "format.kind".to_string(),
                    "a submission format is csv, xlsx or xml".to_string(),
                ));
                "json"
            }
        };
        // Submission-level checks read these raw, so each must come straight from one column.
        let mut single = |t: Target| -> usize {
            let field = a.fields.iter().find(|f| f.target == t);
            match field.map(|f| &f.source) {
                Some(FieldSource::Columns(ix)) if ix.len() == 1 => ix[0],
                _ => {
                    errs.push((
                        format!("fields.\"{}\"", t.path()),
                        "a submission format must read this field from exactly one column (from = \"COLUMN\")".to_string(),
                    ));
                    0
                }
            }
        };
        let case_id = single(Target::CaseId);
        let unit_code = single(Target::UnitCode);
        let unit_name = single(Target::UnitName);
        let decided_on = single(Target::DecidedOn);
        let fine = single(Target::PenaltyFine);
        let confiscated = single(Target::PenaltyConfiscated);
        let field = |t: Target| a.fields.iter().find(|f| f.target == t);
        let unit = |t: Target| field(t).and_then(|f| f.money).unwrap_or(MoneyUnit::Yuan);
        let date_formats = field(Target::DecidedOn)
            .map(|f| f.dates.clone())
            .unwrap_or_default();
        if kind != "xml" && a.columns.iter().any(|c| c.name == CASE_COUNT_COLUMN) {
            errs.push((
                "fields".to_string(),
                format!("{CASE_COUNT_COLUMN} is the totals row's case count; no field may read it"),
            ));
        }
        if errs.is_empty() {
            Ok(Plan {
                kind,
                case_id,
                unit_code,
                unit_name,
                decided_on,
                date_formats,
                fine: (fine, unit(Target::PenaltyFine)),
                confiscated: (confiscated, unit(Target::PenaltyConfiscated)),
            })
        } else {
            Err(errs)
        }
    }
}

/// Loads the submission formats (the adapter folders under `dir`, e.g. `submissions/`), every
/// problem reported: those of the definition language, and what makes a definition unfit for
/// submissions (a format other than CSV/XLSX/XML or given twice, a checked field not read from
/// exactly one column, an XML record path ending in `*`).
pub fn load_formats(dir: &Path) -> Result<Vec<Adapter>, Vec<AdapterError>> {
    let adapters = crate::ingest::load_all(dir)?;
    let mut errors = Vec::new();
    let mut kinds: BTreeMap<&'static str, &str> = BTreeMap::new();
    for a in &adapters {
        let file = a.dir.join("adapter.toml").display().to_string();
        match Plan::of(a) {
            Ok(plan) => {
                if let Some(other) = kinds.insert(plan.kind, &a.name) {
                    errors.push(AdapterError {
                        file,
                        key: "format.kind".into(),
                        reason: format!(
                            "{} is also the format of {other}; the format is chosen by the file's extension, so each may be defined once",
                            plan.kind
                        ),
                    });
                }
            }
            Err(list) => errors.extend(list.into_iter().map(|(key, reason)| AdapterError {
                file: file.clone(),
                key,
                reason,
            })),
        }
    }
    if errors.is_empty() {
        Ok(adapters)
    } else {
        Err(errors)
    }
}

/// Decodes and validates a submission of `unit` (named `unit_name`) for `quarter` with the format
/// its extension names (`.csv`, `.xlsx`, `.xml`, any letter case). Dates after `today` are refused.
pub fn parse(
    decoder: &decode::Decoder,
    formats: &[Adapter],
    path: &Path,
    unit: &Uscc,
    unit_name: &str,
    quarter: Quarter,
    today: NaiveDate,
) -> Result<Parsed, SubmitError> {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let mut usable: Vec<(&Adapter, Plan)> = formats
        .iter()
        .filter_map(|a| Plan::of(a).ok().map(|p| (a, p)))
        .collect();
    let Some(i) = ext
        .as_deref()
        .and_then(|e| usable.iter().position(|(_, p)| p.kind == e))
    else {
        let mut accepted: Vec<String> =
            usable.iter().map(|(_, p)| format!(".{}", p.kind)).collect();
        accepted.sort();
        let has = match &ext {
            Some(e) => format!("has the extension .{e}"),
            None => "has no extension".to_string(),
        };
        return Err(SubmitError::UnknownFormat(if accepted.is_empty() {
            format!("'{file}' cannot be read: no submission formats are loaded")
        } else {
            format!(
                "'{file}' {has}; a submission is accepted as {} (any letter case)",
                accepted.join(", ")
            )
        }));
    };
    let (template, plan) = usable.swap_remove(i);
    // The engine refuses a record of a unit its adapter does not speak for: for this file that is
    // the submitting unit alone, which the definition cannot know in advance.
    let mut adapter = template.clone();
    adapter.units = BTreeMap::from([(unit.clone(), unit_name.to_string())]);
    let unreadable =
        |e: decode::FileError| SubmitError::Unreadable(format!("{file} (as {}): {e}", plan.kind));
    let mut check = Check {
        decoder,
        adapter: &adapter,
        plan: &plan,
        unit,
        unit_name,
        quarter,
        today,
        file: &file,
        now: Utc::now(),
        problems: Vec::new(),
        details: Vec::new(),
        first_at: HashMap::new(),
        cases: 0,
        fines: Some(Fen::new(0)),
        confiscations: Some(Fen::new(0)),
        declared: None,
        follows_flagged: false,
    };
    if plan.kind == "xml" {
        xml(&mut check, path).map_err(unreadable)?;
    } else {
        tabular(&mut check, path).map_err(unreadable)?;
    }
    check.finish()
}

/// CSV and XLSX: one stream of rows; the 合计 row is recognised by its 办件编号.
fn tabular(check: &mut Check<'_>, path: &Path) -> Result<(), decode::FileError> {
    let mut columns = check.adapter.columns.clone();
    let count = columns.len();
    columns.push(Column {
        name: CASE_COUNT_COLUMN.to_string(),
        required: true,
    });
    let mut records = check.open(path, &check.adapter.format, &columns)?;
    let plan = check.plan;
    let form = Form {
        name: TOTALS_MARK,
        cases: CASE_COUNT_COLUMN.to_string(),
        fines: check.column(plan.fine.0),
        confiscations: check.column(plan.confiscated.0),
    };
    for (i, item) in (1u64..).zip(&mut records) {
        let order = 2 * i;
        match item {
            Err(e) => {
                check.case_follows_totals(&e.location.to_string());
                check.record_error(order, e);
            }
            Ok(rec) if value(&rec, plan.case_id) == TOTALS_MARK => {
                let raw = [count, plan.fine.0, plan.confiscated.0].map(|c| raw(&rec, c));
                let location = rec.location.to_string();
                check.totals(
                    order,
                    location,
                    raw,
                    [plan.fine.1, plan.confiscated.1],
                    &form,
                );
            }
            Ok(rec) => {
                check.case_follows_totals(&rec.location.to_string());
                if !value(&rec, count).is_empty() {
                    check.problem(
                        order,
                        &rec.location.to_string(),
                        CASE_COUNT_COLUMN,
                        format!(
                            "is filled on a case row; it belongs on the {TOTALS_MARK} row only (办件编号 {TOTALS_MARK})"
                        ),
                    );
                }
                check.case(order, &rec);
            }
        }
    }
    // A decoder that failed part-way refuses the submission: a report is taken whole or not.
    records.failure().map_or(Ok(()), Err)
}

/// XML: the children of the case element's parent are read once for their order and the
/// `<Totals>` attributes, then the cases are streamed through the adapter. Both passes go through
/// the engine's decoder, so the totals are read with the same refusal of DOCTYPEs and entities.
fn xml(check: &mut Check<'_>, path: &Path) -> Result<(), decode::FileError> {
    let adapter = check.adapter;
    let Format::Xml {
        encoding,
        record_path,
    } = &adapter.format
    else {
        return Ok(());
    };
    let (case_element, parent) = match record_path.split_last() {
        Some((last, parent)) => (last.as_str(), parent),
        None => return Ok(()),
    };
    let mut outline_path = parent.to_vec();
    outline_path.push("*".to_string());
    let outline_format = Format::Xml {
        encoding: *encoding,
        record_path: outline_path,
    };
    let columns: Vec<Column> = std::iter::once("@record".to_string())
        .chain(XML_TOTALS_ATTRS.iter().map(|a| format!("@{a}")))
        .map(|name| Column {
            name,
            required: false,
        })
        .collect();
    let form = Form {
        name: XML_TOTALS,
        cases: columns[1].name.clone(),
        fines: columns[2].name.clone(),
        confiscations: columns[3].name.clone(),
    };
    let container = parent.join("/");
    // A case element k (1-based) sorts at 2k; anything after n cases at 2n + 1, between them.
    let mut n = 0u64;
    let mut outline = check.open(path, &outline_format, &columns)?;
    for item in &mut outline {
        let order = 2 * n + 1;
        match item {
            Err(e) => check.problem(order, &e.location.to_string(), "record", e.reason),
            Ok(rec) => {
                let location = rec.location.to_string();
                match value(&rec, 0) {
                    name if name == case_element => {
                        n += 1;
                        check.case_follows_totals(&location);
                    }
                    XML_TOTALS => {
                        let raw = [1, 2, 3].map(|c| raw(&rec, c));
                        check.totals(order, location, raw, [MoneyUnit::Yuan; 2], &form);
                    }
                    other => check.problem(
                        order,
                        &location,
                        other,
                        format!(
                            "is not part of a submission: <{container}> holds <{case_element}> elements and, after them, one <{XML_TOTALS}>"
                        ),
                    ),
                }
            }
        }
    }
    if let Some(e) = outline.failure() {
        return Err(e);
    }
    let mut records = check.open(path, &adapter.format, &adapter.columns)?;
    for (k, item) in (1u64..).zip(&mut records) {
        match item {
            Err(e) => check.record_error(2 * k, e),
            Ok(rec) => check.case(2 * k, &rec),
        }
    }
    records.failure().map_or(Ok(()), Err)
}

/// A record's value in column `i`, trimmed; empty when absent.
fn value(rec: &RawRecord, i: usize) -> &str {
    raw(rec, i).unwrap_or("").trim()
}

fn raw(rec: &RawRecord, i: usize) -> Option<&str> {
    rec.value(i)
}

/// How a format names its totals record and its fields, for messages.
struct Form {
    name: &'static str,
    cases: String,
    fines: String,
    confiscations: String,
}

/// The declared totals as found; `None` for a value that was unusable (already a problem).
struct Declared {
    order: u64,
    location: String,
    name: &'static str,
    fields: [String; 3],
    cases: Option<u64>,
    fines: Option<Fen>,
    confiscations: Option<Fen>,
}

/// The state of one submission's check.
struct Check<'a> {
    /// Decodes the file, under the gateway's limits.
    decoder: &'a decode::Decoder,
    adapter: &'a Adapter,
    plan: &'a Plan,
    unit: &'a Uscc,
    unit_name: &'a str,
    quarter: Quarter,
    today: NaiveDate,
    file: &'a str,
    now: DateTime<Utc>,
    /// With their sort keys: file order, whatever pass found them.
    problems: Vec<(u64, SubmitProblem)>,
    details: Vec<Detail>,
    /// Where each case number was first seen.
    first_at: HashMap<String, String>,
    /// Case records (every record but the totals, mapped or not).
    cases: u64,
    /// Sums over the case records; `None` once an amount cannot be known (its problem is listed).
    fines: Option<Fen>,
    confiscations: Option<Fen>,
    declared: Option<Declared>,
    /// Whether "a case follows the totals" was reported (once is enough).
    follows_flagged: bool,
}

impl Check<'_> {
    /// Opens the submission for decoding under the gateway's limits (the file limit of its
    /// format), in the decoding process the gateway uses for every file.
    fn open(
        &self,
        path: &Path,
        format: &Format,
        columns: &[Column],
    ) -> Result<decode::Records, decode::FileError> {
        let max = self.decoder.limits().file_bytes_for(&self.adapter.name);
        self.decoder
            .open(path, format, columns, max)
            .map_err(|r| r.error)
    }

    fn problem(&mut self, order: u64, location: &str, field: &str, reason: String) {
        self.problems.push((
            order,
            SubmitProblem {
                location: location.to_string(),
                field: field.to_string(),
                reason,
            },
        ));
    }

    fn column(&self, i: usize) -> String {
        self.adapter
            .columns
            .get(i)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    }

    /// A record the decoder could not read: it still counts as a case, of unknown amounts.
    fn record_error(&mut self, order: u64, e: RecordError) {
        let location = e.location.to_string();
        self.cases += 1;
        self.fines = None;
        self.confiscations = None;
        self.problem(order, &location, "record", e.reason);
    }

    /// Notes a case at `location`; after the totals that is a problem of the totals record. (XML
    /// order is known from the outline pass, before the cases are mapped.)
    fn case_follows_totals(&mut self, location: &str) {
        if self.follows_flagged {
            return;
        }
        if let Some(d) = &self.declared {
            let (order, at, name) = (d.order, d.location.clone(), d.name);
            self.follows_flagged = true;
            self.problem(
                order,
                &at,
                name,
                format!("the totals must come after every case, but a case follows at {location}"),
            );
        }
    }

    fn totals(
        &mut self,
        order: u64,
        location: String,
        raw: [Option<&str>; 3],
        units: [MoneyUnit; 2],
        form: &Form,
    ) {
        if let Some(first) = &self.declared {
            let reason = format!(
                "a second totals record; the first is at {}, and a submission has exactly one",
                first.location
            );
            self.problem(order, &location, form.name, reason);
            return;
        }
        let [cases, fines, confiscations] = raw.map(|v| v.unwrap_or("").trim());
        let cases = match cases.parse::<u64>() {
            _ if cases.is_empty() => {
                let reason = "is empty; the totals must state the number of cases".to_string();
                self.problem(order, &location, &form.cases, reason);
                None
            }
            // `parse` also takes a leading '+', which no count is written with.
            Ok(n) if cases.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => {
                let reason = format!("'{cases}' is not a whole number of cases");
                self.problem(order, &location, &form.cases, reason);
                None
            }
        };
        let mut amount = |v: &str, unit: MoneyUnit, field: &str| -> Option<Fen> {
            // An empty sum means none, as on a paper form.
            if v.is_empty() {
                return Some(Fen::new(0));
            }
            Fen::parse(v, unit)
                .map_err(|e| self.problem(order, &location, field, e.to_string()))
                .ok()
        };
        let fines = amount(fines, units[0], &form.fines);
        let confiscations = amount(confiscations, units[1], &form.confiscations);
        self.declared = Some(Declared {
            order,
            location,
            name: form.name,
            fields: [
                form.cases.clone(),
                form.fines.clone(),
                form.confiscations.clone(),
            ],
            cases,
            fines,
            confiscations,
        });
    }

    /// One case record: the submission's own checks on its raw values, then the engine's mapping.
    fn case(&mut self, order: u64, rec: &RawRecord) {
        let at = rec.location.to_string();
        self.cases += 1;
        let plan = self.plan;
        for c in &rec.cut {
            let limit = decode::bytes_shown(self.decoder.limits().field_bytes);
            let found = format!("the value is {}", decode::bytes_shown(c.bytes));
            let reason = decode::LimitError::new("field_kib", limit, found).to_string();
            let column = (self.adapter.columns.get(c.column)).map_or("-", |x| x.name.as_str());
            self.problem(order, &at, column, reason);
        }

        let code = value(rec, plan.unit_code);
        let other_unit = matches!(Uscc::parse(code), Ok(c) if c != *self.unit);
        if other_unit {
            let reason = format!(
                "{code} is another unit; this is the submission of {} ({}), which may hold only its own cases",
                self.unit, self.unit_name
            );
            self.problem(order, &at, &self.column(plan.unit_code), reason);
        }
        let name = value(rec, plan.unit_name);
        if !other_unit && !name.is_empty() && name != self.unit_name {
            let reason = format!(
                "'{name}' is not the submitting unit; this is the submission of {} ({}): write that name or leave it empty",
                self.unit, self.unit_name
            );
            self.problem(order, &at, &self.column(plan.unit_name), reason);
        }

        let id = value(rec, plan.case_id);
        if !id.is_empty() {
            match self.first_at.get(id) {
                Some(first) => {
                    let reason = format!(
                        "case {id} appears twice, at {first} and at {at}; list each case once"
                    );
                    self.problem(order, &at, &self.column(plan.case_id), reason);
                }
                None => {
                    self.first_at.insert(id.to_string(), at.clone());
                }
            }
        }

        match self
            .adapter
            .map_record(rec, self.file, self.now, self.today)
        {
            Ok(case) => {
                let penalty = case.penalty.as_ref();
                self.fines = add(self.fines, penalty.and_then(|p| p.fine_fen));
                self.confiscations =
                    add(self.confiscations, penalty.and_then(|p| p.confiscated_fen));
                match Detail::of(&case) {
                    Some(d) => {
                        self.in_quarter(order, &at, d.decided_on);
                        self.details.push(d);
                    }
                    None => self.no_date(order, &at),
                }
            }
            Err(reasons) => {
                let reported = |t: Target| reasons.iter().any(|r| r.field == t.path());
                let (date_done, fine_bad, confiscated_bad) = (
                    reported(Target::DecidedOn),
                    reported(Target::PenaltyFine),
                    reported(Target::PenaltyConfiscated),
                );
                for r in reasons {
                    // The engine's "not covered by the adapter" is the other-unit problem above.
                    if other_unit && r.field == Target::UnitCode.path() {
                        continue;
                    }
                    let field = r.column.unwrap_or(r.field);
                    self.problem(order, &at, &field, r.reason);
                }
                // The record is refused anyway; its date and amounts still count, so that one
                // round of corrections meets every problem.
                if !date_done {
                    let v = value(rec, plan.decided_on);
                    if v.is_empty() {
                        self.no_date(order, &at);
                    } else if let Some(d) = date(v, &plan.date_formats) {
                        self.in_quarter(order, &at, d);
                    }
                }
                let amount = |(i, unit): (usize, MoneyUnit), bad: bool| match value(rec, i) {
                    _ if bad => None,
                    "" => Some(None),
                    v => Fen::parse(v, unit).ok().map(Some),
                };
                self.fines = amount(plan.fine, fine_bad).and_then(|f| add(self.fines, f));
                self.confiscations = amount(plan.confiscated, confiscated_bad)
                    .and_then(|f| add(self.confiscations, f));
            }
        }
    }

    fn in_quarter(&mut self, order: u64, at: &str, d: NaiveDate) {
        let q = self.quarter;
        if !q.contains(d) {
            let reason = format!("{d} is outside {q} ({} – {})", q.first_day(), q.last_day());
            self.problem(order, at, &self.column(self.plan.decided_on), reason);
        }
    }

    fn no_date(&mut self, order: u64, at: &str) {
        self.problem(
            order,
            at,
            &self.column(self.plan.decided_on),
            "is required but empty: the decision date puts a case in its quarter".to_string(),
        );
    }

    fn finish(mut self) -> Result<Parsed, SubmitError> {
        match self.declared.take() {
            None => {
                let (field, reason) = if self.plan.kind == "xml" {
                    (
                        XML_TOTALS.to_string(),
                        format!(
                            "no <{XML_TOTALS}> element; end the submission with <{XML_TOTALS} cases=\"…\" fines_yuan=\"…\" confiscations_yuan=\"…\"/> after the last case"
                        ),
                    )
                } else {
                    (
                        self.column(self.plan.case_id),
                        format!(
                            "no {TOTALS_MARK} row; end the details with one row whose {} is {TOTALS_MARK}, stating {CASE_COUNT_COLUMN}, {} and {}",
                            self.column(self.plan.case_id),
                            self.column(self.plan.fine.0),
                            self.column(self.plan.confiscated.0)
                        ),
                    )
                };
                self.problem(AT_END, "end of file", &field, reason);
                self.refuse_or(Totals {
                    cases: 0,
                    fines_fen: Fen::new(0),
                    confiscations_fen: Fen::new(0),
                })
            }
            Some(d) => {
                let [cases_field, fines_field, confiscations_field] = &d.fields;
                if let Some(declared) = d.cases
                    && declared != self.cases
                {
                    let reason = format!(
                        "{} says {}, the details have {}",
                        d.name,
                        count(declared),
                        self.cases
                    );
                    self.problem(d.order, &d.location, cases_field, reason);
                }
                for (declared, sum, field, what) in [
                    (d.fines, self.fines, fines_field, "fines"),
                    (
                        d.confiscations,
                        self.confiscations,
                        confiscations_field,
                        "confiscations",
                    ),
                ] {
                    if let (Some(declared), Some(sum)) = (declared, sum)
                        && declared != sum
                    {
                        let reason = format!(
                            "{} says {} yuan of {what}, the details add up to {} yuan",
                            d.name,
                            declared.yuan_string(),
                            sum.yuan_string()
                        );
                        self.problem(d.order, &d.location, field, reason);
                    }
                }
                self.refuse_or(Totals {
                    cases: d.cases.unwrap_or(0),
                    fines_fen: d.fines.unwrap_or_default(),
                    confiscations_fen: d.confiscations.unwrap_or_default(),
                })
            }
        }
    }

    fn refuse_or(self, totals: Totals) -> Result<Parsed, SubmitError> {
        if self.problems.is_empty() {
            return Ok(Parsed {
                details: self.details,
                totals,
                format: self.plan.kind,
            });
        }
        let mut problems = self.problems;
        problems.sort_by_key(|(order, _)| *order);
        Err(SubmitError::Invalid(
            problems.into_iter().map(|(_, p)| p).collect(),
        ))
    }
}

/// Adds an amount to a running sum (saturating, as [`super::Summary::of`] does).
fn add(sum: Option<Fen>, amount: Option<Fen>) -> Option<Fen> {
    sum.map(|s| Fen::new(s.get().saturating_add(amount.map_or(0, Fen::get))))
}

fn count(n: u64) -> String {
    if n == 1 {
        "1 case".to_string()
    } else {
        format!("{n} cases")
    }
}

/// A date as the engine reads it: the adapter's formats, ISO, or a spreadsheet date-time cell.
fn date(v: &str, formats: &[String]) -> Option<NaiveDate> {
    formats
        .iter()
        .map(String::as_str)
        .chain(["%Y-%m-%d"])
        .find_map(|f| NaiveDate::parse_from_str(v, f).ok())
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|dt| dt.date())
        })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use rust_xlsxwriter::{ExcelDateTime, Workbook};

    use super::*;
    use crate::ingest::golden;
    use crate::reports::Summary;

    fn decoder() -> decode::Decoder {
        decode::Decoder::in_process(crate::ingest::Limits::default())
    }

    const UNIT: &str = "11320102466008745E";
    const NAME: &str = "南京市玄武区烟草专卖局";
    const KINDS: [&str; 3] = ["csv", "xlsx", "xml"];
    /// The CSV/XLSX header, and each column's XML element (`None`: the totals row's own column).
    const COLUMNS: [(&str, Option<&str>); 28] = [
        ("办件编号", Some("AJBH")),
        ("案件名称", Some("AJMC")),
        ("执法类别", Some("ZFLB")),
        ("执法主体名称", Some("ZFJG")),
        ("执法主体统一社会信用代码", Some("ZFJGDM")),
        ("当事人类型", Some("XDR_LB")),
        ("当事人名称", Some("XDR_MC")),
        ("证件类型", Some("XDR_ZJLX")),
        ("证件号码", Some("XDR_ZJHM")),
        ("决定书文号", Some("WSH")),
        ("案由", Some("AY")),
        ("违法事实", Some("WFSS")),
        ("法律依据", Some("YJ")),
        ("处理结果", Some("CLJG")),
        ("处罚种类", Some("CFZL")),
        ("罚款金额（元）", Some("FKJE")),
        ("没收金额（元）", Some("MSJE")),
        ("许可证编号", Some("XKBH")),
        ("决定日期", Some("JDRQ")),
        ("是否重大执法决定", Some("SFZD")),
        ("是否法制审核", Some("SFFZSH")),
        ("涉嫌犯罪", Some("SXFZ")),
        ("移送状态", Some("YSZT")),
        ("移送日期", Some("YSRQ")),
        ("接收机关", Some("JSJG")),
        ("办件状态", Some("AJZT")),
        ("公开属性", Some("GKSX")),
        ("案件数", None),
    ];

    type Row = BTreeMap<&'static str, String>;

    enum Entry<'a> {
        Case(Row),
        Totals(&'a str, &'a str, &'a str),
    }

    fn formats() -> Vec<Adapter> {
        load_formats(&Path::new(env!("CARGO_MANIFEST_DIR")).join("submissions")).unwrap()
    }

    fn q3() -> Quarter {
        Quarter::parse("2026Q3").unwrap()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
    }

    fn unit() -> Uscc {
        Uscc::parse(UNIT).unwrap()
    }

    /// A valid fine of the submitting unit on a company.
    fn fine(id: &str, date: &str, yuan: &str) -> Row {
        let mut r = Row::new();
        for (k, v) in [
            ("办件编号", id),
            ("案件名称", "南京玄武佳汇商贸有限公司无证经营烟草制品案"),
            ("执法类别", "行政处罚"),
            ("执法主体名称", NAME),
            ("执法主体统一社会信用代码", UNIT),
            ("当事人类型", "法人"),
            ("当事人名称", "南京玄武佳汇商贸有限公司"),
            ("证件类型", "统一社会信用代码"),
            ("证件号码", "91320102MA1XY47K2W"),
            ("决定书文号", "玄烟罚〔2026〕11号"),
            ("案由", "无烟草专卖零售许可证经营烟草制品"),
            ("法律依据", "《中华人民共和国烟草专卖法实施条例》第五十七条"),
            ("处理结果", "罚款"),
            ("处罚种类", "罚款"),
            ("罚款金额（元）", yuan),
            ("决定日期", date),
            ("是否重大执法决定", "否"),
            ("是否法制审核", "否"),
            ("涉嫌犯罪", "否"),
            ("移送状态", "未移送"),
            ("办件状态", "正常"),
            ("公开属性", "公开"),
        ] {
            r.insert(k, v.to_string());
        }
        r
    }

    fn with(mut row: Row, changes: &[(&'static str, &str)]) -> Row {
        for (k, v) in changes {
            row.insert(k, v.to_string());
        }
        row
    }

    /// Four valid cases of different kinds: 4 cases, 5800.00 yuan of fines, 1234.50 confiscated.
    fn valid_cases() -> Vec<Entry<'static>> {
        let a = with(
            fine("XW-YC-2026-0001", "2026-07-15", "5000"),
            &[
                ("处罚种类", "罚款、没收违法所得"),
                ("没收金额（元）", "1234.50"),
            ],
        );
        let b = with(
            fine("XW-YC-2026-0002", "2026/08/03", "800.00"),
            &[
                ("当事人类型", "自然人"),
                ("当事人名称", "刘建国"),
                ("证件类型", "身份证"),
                ("证件号码", "320102198503122413"),
                ("处罚种类", "警告、罚款"),
            ],
        );
        let c = with(
            fine("XW-YC-2026-0003", "2026-08-20", ""),
            &[
                ("执法类别", "行政许可"),
                ("执法主体名称", ""),
                ("当事人类型", "个体工商户"),
                ("证件号码", "92320102MA1NH6TU3Q"),
                ("处罚种类", ""),
                ("许可证编号", "320102202600305"),
            ],
        );
        let d = with(
            fine("XW-YC-2026-0004", "2026-09-02", ""),
            &[
                ("执法类别", "行政强制"),
                ("证件号码", "91320102MA1P8Q3R5C"),
                ("处罚种类", ""),
                ("涉嫌犯罪", "是"),
                ("移送状态", "已移送"),
                ("移送日期", "2026-09-10"),
                ("接收机关", "南京市公安局玄武分局"),
            ],
        );
        vec![
            Entry::Case(a),
            Entry::Case(b),
            Entry::Case(c),
            Entry::Case(d),
        ]
    }

    fn valid() -> Vec<Entry<'static>> {
        let mut v = valid_cases();
        v.push(Entry::Totals("4", "5800.00", "1234.50"));
        v
    }

    /// The value of every CSV/XLSX column of an entry.
    fn cells(e: &Entry) -> Vec<String> {
        COLUMNS
            .iter()
            .map(|(name, _)| match e {
                Entry::Case(r) => r.get(name).cloned().unwrap_or_default(),
                Entry::Totals(n, f, c) => match *name {
                    "办件编号" => TOTALS_MARK.to_string(),
                    "案件数" => n.to_string(),
                    "罚款金额（元）" => f.to_string(),
                    "没收金额（元）" => c.to_string(),
                    _ => String::new(),
                },
            })
            .collect()
    }

    fn write_csv(path: &Path, entries: &[Entry]) {
        let mut w = ::csv::Writer::from_path(path).unwrap();
        w.write_record(COLUMNS.iter().map(|(n, _)| *n)).unwrap();
        for e in entries {
            w.write_record(cells(e)).unwrap();
        }
        w.flush().unwrap();
    }

    /// Amounts and counts as number cells and ISO dates as date cells, as a spreadsheet holds them.
    fn write_xlsx(path: &Path, entries: &[Entry]) {
        let mut book = Workbook::new();
        book.add_worksheet().set_name("说明").unwrap();
        let sheet = book.add_worksheet();
        sheet.set_name("明细").unwrap();
        let date_format = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        for (c, (name, _)) in (0u16..).zip(COLUMNS) {
            sheet.write_string(0, c, name).unwrap();
        }
        for (r, e) in (1u32..).zip(entries) {
            for (c, ((name, _), v)) in (0u16..).zip(COLUMNS.iter().zip(cells(e))) {
                let number = v
                    .parse::<f64>()
                    .ok()
                    .filter(|_| matches!(*name, "罚款金额（元）" | "没收金额（元）" | "案件数"));
                let date = NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                    .ok()
                    .filter(|_| name.ends_with("日期"));
                if v.is_empty() {
                    continue;
                } else if let Some(n) = number {
                    sheet.write_number(r, c, n).unwrap();
                } else if let Some(d) = date {
                    use chrono::Datelike;
                    let dt =
                        ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8)
                            .unwrap();
                    sheet
                        .write_datetime_with_format(r, c, &dt, &date_format)
                        .unwrap();
                } else {
                    sheet.write_string(r, c, &v).unwrap();
                }
            }
        }
        book.save(path).unwrap();
    }

    fn write_xml(path: &Path, entries: &[Entry]) {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Submission>\n");
        for e in entries {
            match e {
                Entry::Case(row) => {
                    out.push_str("  <Case>\n");
                    for (name, element) in COLUMNS {
                        if let (Some(el), Some(v)) = (element, row.get(name))
                            && !v.is_empty()
                        {
                            out.push_str(&format!("    <{el}>{}</{el}>\n", esc(v)));
                        }
                    }
                    out.push_str("  </Case>\n");
                }
                Entry::Totals(n, f, c) => out.push_str(&format!(
                    "  <Totals cases=\"{n}\" fines_yuan=\"{f}\" confiscations_yuan=\"{c}\"/>\n"
                )),
            }
        }
        out.push_str("</Submission>\n");
        std::fs::write(path, out).unwrap();
    }

    fn write(dir: &Path, kind: &str, entries: &[Entry]) -> PathBuf {
        let path = dir.join(format!("submission.{kind}"));
        match kind {
            "csv" => write_csv(&path, entries),
            "xlsx" => write_xlsx(&path, entries),
            _ => write_xml(&path, entries),
        }
        path
    }

    fn submit(kind: &str, entries: &[Entry]) -> Result<Parsed, SubmitError> {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), kind, entries);
        parse(&decoder(), &formats(), &path, &unit(), NAME, q3(), today())
    }

    fn problems(kind: &str, entries: &[Entry]) -> Vec<SubmitProblem> {
        match submit(kind, entries) {
            Err(SubmitError::Invalid(p)) => p,
            other => panic!("{kind}: expected Invalid, got {other:?}"),
        }
    }

    /// Where entry `i` (0-based) is, as the engine names it.
    fn at(kind: &str, entries: &[Entry], i: usize) -> String {
        if kind != "xml" {
            return format!("row {}", i + 2);
        }
        let same = entries[..=i]
            .iter()
            .filter(|e| matches!(e, Entry::Case(_)) == matches!(entries[i], Entry::Case(_)))
            .count();
        match entries[i] {
            Entry::Case(_) => format!("element /Submission/Case[{same}]"),
            Entry::Totals(..) => format!("element /Submission/Totals[{same}]"),
        }
    }

    /// A column as the file names it.
    fn col(kind: &str, name: &str) -> String {
        if kind != "xml" {
            return name.to_string();
        }
        let xml = match name {
            "案件数" => "@cases",
            _ => COLUMNS
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, e)| *e)
                .unwrap(),
        };
        xml.to_string()
    }

    /// A totals field as the file names it: 0 cases, 1 fines, 2 confiscations.
    fn totals_col(kind: &str, i: usize) -> String {
        if kind == "xml" {
            format!("@{}", XML_TOTALS_ATTRS[i])
        } else {
            ["案件数", "罚款金额（元）", "没收金额（元）"][i].to_string()
        }
    }

    fn totals_name(kind: &str) -> &'static str {
        if kind == "xml" {
            XML_TOTALS
        } else {
            TOTALS_MARK
        }
    }

    #[test]
    fn a_valid_submission_gives_its_details_and_totals_in_every_format() {
        for kind in KINDS {
            let parsed = submit(kind, &valid()).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(parsed.format, kind);
            let ids: Vec<&str> = parsed.details.iter().map(|d| d.case_id.as_str()).collect();
            assert_eq!(
                ids,
                [
                    "XW-YC-2026-0001",
                    "XW-YC-2026-0002",
                    "XW-YC-2026-0003",
                    "XW-YC-2026-0004"
                ],
                "{kind}"
            );
            assert_eq!(
                parsed.totals,
                Totals {
                    cases: 4,
                    fines_fen: Fen::new(580_000),
                    confiscations_fen: Fen::new(123_450),
                },
                "{kind}"
            );
            let summary = Summary::of(&parsed.details);
            assert_eq!(summary.total, 4, "{kind}");
            assert_eq!(summary.fines_fen, parsed.totals.fines_fen, "{kind}");
            assert_eq!(
                summary.confiscations_fen, parsed.totals.confiscations_fen,
                "{kind}"
            );
            let b = &parsed.details[1];
            assert_eq!(
                b.decided_on,
                NaiveDate::from_ymd_opt(2026, 8, 3).unwrap(),
                "{kind}"
            );
            assert_eq!(b.party_id.as_deref(), Some("320102198503122413"), "{kind}");
            assert_eq!(b.fine_fen, Some(Fen::new(80_000)), "{kind}");
            assert!(parsed.details[3].suspected_crime, "{kind}");
        }
    }

    #[test]
    fn the_extension_chooses_the_format_in_any_letter_case() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "csv", &valid());
        let upper = dir.path().join("2026Q3.CSV");
        std::fs::rename(&path, &upper).unwrap();
        let parsed = parse(&decoder(), &formats(), &upper, &unit(), NAME, q3(), today()).unwrap();
        assert_eq!(parsed.format, "csv");
        assert_eq!(parsed.details.len(), 4);
    }

    #[test]
    fn totals_disagreeing_with_the_details_are_refused_naming_the_totals_record() {
        let mut entries = valid_cases();
        entries.push(Entry::Totals("5", "5900.00", "1234.50"));
        for kind in KINDS {
            let got = problems(kind, &entries);
            let name = totals_name(kind);
            let where_ = at(kind, &entries, 4);
            assert_eq!(
                got,
                [
                    SubmitProblem {
                        location: where_.clone(),
                        field: totals_col(kind, 0),
                        reason: format!("{name} says 5 cases, the details have 4"),
                    },
                    SubmitProblem {
                        location: where_.clone(),
                        field: totals_col(kind, 1),
                        reason: format!(
                            "{name} says 5900.00 yuan of fines, the details add up to 5800.00 yuan"
                        ),
                    },
                ],
                "{kind}"
            );
        }
        // The CSV message reads as the brief has it.
        let text = submit("csv", &entries).unwrap_err().to_string();
        assert!(
            text.contains("row 6, 案件数: 合计 says 5 cases, the details have 4"),
            "{text}"
        );
    }

    #[test]
    fn dates_outside_the_quarter_are_refused_with_their_line() {
        let entries = vec![
            Entry::Case(fine("XW-1", "2026-09-30", "100")),
            Entry::Case(fine("XW-2", "2026-10-02", "100")),
            Entry::Case(fine("XW-3", "2026/06/30", "100")),
            Entry::Totals("3", "300", "0"),
        ];
        for kind in KINDS {
            let got = problems(kind, &entries);
            let field = col(kind, "决定日期");
            assert_eq!(
                got,
                [
                    SubmitProblem {
                        location: at(kind, &entries, 1),
                        field: field.clone(),
                        reason: "2026-10-02 is outside 2026Q3 (2026-07-01 – 2026-09-30)".into(),
                    },
                    SubmitProblem {
                        location: at(kind, &entries, 2),
                        field,
                        reason: "2026-06-30 is outside 2026Q3 (2026-07-01 – 2026-09-30)".into(),
                    },
                ],
                "{kind}"
            );
        }
        let text = submit("csv", &entries).unwrap_err().to_string();
        assert!(
            text.contains(
                "row 3, 决定日期: 2026-10-02 is outside 2026Q3 (2026-07-01 – 2026-09-30)"
            ),
            "{text}"
        );
    }

    #[test]
    fn identifiers_failing_their_check_character_are_refused_with_their_line() {
        let entries = vec![
            Entry::Case(fine("XW-1", "2026-08-01", "100")),
            Entry::Case(with(
                fine("XW-2", "2026-08-01", "100"),
                &[
                    ("当事人类型", "自然人"),
                    ("证件类型", "身份证"),
                    ("证件号码", "320104199008071627"),
                ],
            )),
            Entry::Case(with(
                fine("XW-3", "2026-08-01", "100"),
                &[("证件号码", "91320102MA1XY47K2X")],
            )),
            Entry::Totals("3", "300", ""),
        ];
        for kind in KINDS {
            let got = problems(kind, &entries);
            assert_eq!(got.len(), 2, "{kind}: {got:?}");
            for (p, i) in got.iter().zip([1, 2]) {
                assert_eq!(p.location, at(kind, &entries, i), "{kind}");
                assert_eq!(p.field, col(kind, "证件号码"), "{kind}");
                assert!(p.reason.contains("check character"), "{kind}: {p}");
            }
            assert!(
                got[0].reason.starts_with("resident ID"),
                "{kind}: {}",
                got[0]
            );
            assert!(got[1].reason.starts_with("USCC"), "{kind}: {}", got[1]);
        }
    }

    #[test]
    fn a_case_of_another_unit_is_refused() {
        let entries = vec![
            Entry::Case(fine("XW-1", "2026-08-01", "100")),
            Entry::Case(with(
                fine("GL-1", "2026-08-01", "100"),
                &[
                    ("执法主体统一社会信用代码", "11320106466008741U"),
                    ("执法主体名称", "南京市鼓楼区烟草专卖局"),
                ],
            )),
            Entry::Case(with(
                fine("XW-2", "2026-08-01", "100"),
                &[("执法主体名称", "南京市鼓楼区烟草专卖局")],
            )),
            Entry::Totals("3", "300", "0"),
        ];
        for kind in KINDS {
            let got = problems(kind, &entries);
            assert_eq!(got.len(), 2, "{kind}: {got:?}");
            assert_eq!(got[0].location, at(kind, &entries, 1), "{kind}");
            assert_eq!(
                got[0].field,
                col(kind, "执法主体统一社会信用代码"),
                "{kind}"
            );
            assert!(
                got[0]
                    .reason
                    .starts_with("11320106466008741U is another unit")
                    && got[0].reason.contains(UNIT),
                "{kind}: {}",
                got[0]
            );
            assert_eq!(got[1].location, at(kind, &entries, 2), "{kind}");
            assert_eq!(got[1].field, col(kind, "执法主体名称"), "{kind}");
            // The engine's advice to extend the adapter's units does not apply to a submission.
            assert!(got.iter().all(|p| !p.reason.contains("adapter")), "{kind}");
        }
    }

    #[test]
    fn a_case_number_twice_is_refused_naming_both_lines() {
        let entries = vec![
            Entry::Case(fine("XW-1", "2026-08-01", "100")),
            Entry::Case(fine("XW-2", "2026-08-01", "100")),
            Entry::Case(fine("XW-1", "2026-08-02", "100")),
            Entry::Totals("3", "300", "0"),
        ];
        for kind in KINDS {
            let got = problems(kind, &entries);
            let (first, second) = (at(kind, &entries, 0), at(kind, &entries, 2));
            assert_eq!(
                got,
                [SubmitProblem {
                    location: second.clone(),
                    field: col(kind, "办件编号"),
                    reason: format!(
                        "case XW-1 appears twice, at {first} and at {second}; list each case once"
                    ),
                }],
                "{kind}"
            );
        }
    }

    #[test]
    fn missing_totals_are_refused() {
        for kind in KINDS {
            let got = problems(kind, &valid_cases());
            assert_eq!(got.len(), 1, "{kind}: {got:?}");
            assert_eq!(got[0].location, "end of file", "{kind}");
            assert!(
                got[0].reason.contains(totals_name(kind)),
                "{kind}: {}",
                got[0]
            );
        }
    }

    #[test]
    fn totals_must_come_once_and_last() {
        let mut twice = valid();
        twice.push(Entry::Totals("4", "5800.00", "1234.50"));
        let mut early = valid_cases();
        early.insert(2, Entry::Totals("4", "5800.00", "1234.50"));
        for kind in KINDS {
            let got = problems(kind, &twice);
            assert_eq!(got.len(), 1, "{kind}: {got:?}");
            assert_eq!(got[0].location, at(kind, &twice, 5), "{kind}");
            assert!(
                got[0]
                    .reason
                    .contains(&format!("the first is at {}", at(kind, &twice, 4))),
                "{kind}: {}",
                got[0]
            );
            let got = problems(kind, &early);
            assert_eq!(got.len(), 1, "{kind}: {got:?}");
            assert_eq!(got[0].location, at(kind, &early, 2), "{kind}");
            assert!(
                got[0]
                    .reason
                    .contains(&format!("a case follows at {}", at(kind, &early, 3))),
                "{kind}: {}",
                got[0]
            );
        }
    }

    #[test]
    fn an_empty_quarter_is_a_submission_with_zero_totals() {
        for kind in KINDS {
            let parsed = submit(kind, &[Entry::Totals("0", "0", "")]).unwrap();
            assert!(parsed.details.is_empty(), "{kind}");
            assert_eq!(parsed.totals.cases, 0, "{kind}");
            let got = problems(kind, &[Entry::Totals("1", "0", "0")]);
            assert_eq!(got.len(), 1, "{kind}: {got:?}");
            assert!(
                got[0].reason.ends_with("says 1 case, the details have 0"),
                "{kind}: {}",
                got[0]
            );
        }
    }

    #[test]
    fn every_problem_is_listed_in_file_order() {
        let entries = vec![
            Entry::Case(with(
                fine("XW-1", "2026-10-01", "100"),
                &[("证件号码", "91320102MA1XY47K2X")],
            )),
            Entry::Case(with(
                fine("XW-2", "2026-08-01", "100"),
                &[("执法类别", "行政处理")],
            )),
            Entry::Case(fine("XW-1", "2026-08-01", "100.005")),
            Entry::Totals("2", "abc", "0"),
        ];
        for kind in KINDS {
            let got = problems(kind, &entries);
            let summary: Vec<(String, String)> = got
                .iter()
                .map(|p| (p.location.clone(), p.field.clone()))
                .collect();
            let expect = |i: usize, f: &str| (at(kind, &entries, i), col(kind, f));
            let totals = at(kind, &entries, 3);
            assert_eq!(
                summary,
                [
                    expect(0, "证件号码"),
                    expect(0, "决定日期"),
                    expect(1, "执法类别"),
                    expect(2, "办件编号"),
                    expect(2, "罚款金额（元）"),
                    (totals.clone(), totals_col(kind, 1)),
                    (totals, totals_col(kind, 0)),
                ],
                "{kind}: {got:#?}"
            );
        }
    }

    #[test]
    fn totals_and_elements_that_do_not_belong_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.xml");
        let mut entries = valid_cases();
        entries.truncate(1);
        write_xml(&path, &entries);
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "</Submission>",
            "  <Remark>季度报表</Remark>\n  <Totals fines_yuan=\"5000\"/>\n</Submission>",
        );
        std::fs::write(&path, text).unwrap();
        let Err(SubmitError::Invalid(got)) =
            parse(&decoder(), &formats(), &path, &unit(), NAME, q3(), today())
        else {
            panic!("expected Invalid");
        };
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(got[0].location, "element /Submission/Remark[1]");
        assert_eq!(got[0].field, "Remark");
        assert_eq!(got[1].field, "@cases");
        assert!(got[1].reason.starts_with("is empty"), "{}", got[1]);
        assert_eq!(got[2].field, "@confiscations_yuan");
        // An absent amount is 0, which the details contradict here.
        assert_eq!(
            got[2].reason,
            "Totals says 0.00 yuan of confiscations, the details add up to 1234.50 yuan"
        );

        // 案件数 belongs to the totals row alone.
        for kind in ["csv", "xlsx"] {
            let mut entries = valid();
            if let Entry::Case(r) = &mut entries[0] {
                r.insert("案件数", "1".into());
            }
            let got = problems(kind, &entries);
            assert_eq!(got.len(), 1, "{kind}: {got:?}");
            assert_eq!(
                (got[0].location.as_str(), got[0].field.as_str()),
                ("row 2", "案件数")
            );
        }
    }

    #[test]
    fn a_row_the_decoder_cannot_read_is_a_problem_and_still_a_case() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "csv", &valid());
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[2] = "XW-YC-2026-0002,too,few,fields";
        std::fs::write(&path, lines.join("\n")).unwrap();
        let Err(SubmitError::Invalid(got)) =
            parse(&decoder(), &formats(), &path, &unit(), NAME, q3(), today())
        else {
            panic!("expected Invalid");
        };
        // Its amounts are unknown, so only the count is compared (and agrees).
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(
            (got[0].location.as_str(), got[0].field.as_str()),
            ("row 3", "record")
        );
    }

    #[test]
    fn a_case_without_a_decision_date_is_refused_and_its_amounts_still_count() {
        let entries = vec![
            Entry::Case(fine("XW-1", "", "100")),
            Entry::Case(fine("XW-2", "2026-08-01", "100")),
            Entry::Totals("2件", "200", "0"),
        ];
        for kind in KINDS {
            let got = problems(kind, &entries);
            assert_eq!(got.len(), 2, "{kind}: {got:#?}");
            assert_eq!(got[0].location, at(kind, &entries, 0), "{kind}");
            assert_eq!(got[0].field, col(kind, "决定日期"), "{kind}");
            assert!(got[0].reason.starts_with("is required but empty"), "{kind}");
            assert_eq!(got[1].field, totals_col(kind, 0), "{kind}");
            assert_eq!(
                got[1].reason, "'2件' is not a whole number of cases",
                "{kind}"
            );
        }
    }

    #[test]
    fn a_case_count_with_a_sign_is_refused() {
        // A spreadsheet turns "+2" into the number 2, so only the text formats can carry it.
        let entries = [Entry::Totals("+0", "0", "0")];
        for kind in ["csv", "xml"] {
            let got = problems(kind, &entries);
            assert_eq!(got.len(), 1, "{kind}: {got:#?}");
            assert_eq!(
                got[0].reason, "'+0' is not a whole number of cases",
                "{kind}"
            );
        }
    }

    #[test]
    fn an_unknown_extension_is_refused_listing_the_accepted_ones() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["report.json", "report", "report.xls"] {
            let path = dir.path().join(name);
            std::fs::write(&path, "x").unwrap();
            match parse(&decoder(), &formats(), &path, &unit(), NAME, q3(), today()) {
                Err(e @ SubmitError::UnknownFormat(_)) => {
                    let text = e.to_string();
                    assert!(text.contains(".csv, .xlsx, .xml"), "{text}");
                    assert!(text.contains(name), "{text}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn unreadable_files_are_refused_whole_never_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        garbage[0] = 0xFF;
        let mut zip_like = b"PK\x03\x04".to_vec();
        zip_like.extend_from_slice(&garbage);
        let cases: [(&str, &[u8], &str); 7] = [
            ("g.csv", &garbage, "byte offset"),
            ("g.xlsx", &garbage, "XLSX"),
            ("z.xlsx", &zip_like, "XLSX"),
            ("g.xml", &garbage, "byte offset"),
            (
                "d.xml",
                b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"e\">]><Submission/>",
                "document type",
            ),
            ("r.xml", b"<Report><Case/></Report>", "XML"),
            ("h.csv", "办件编号,案件名称\nA,B\n".as_bytes(), "案件数"),
        ];
        for (name, bytes, says) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            match parse(&decoder(), &formats(), &path, &unit(), NAME, q3(), today()) {
                Err(e @ SubmitError::Unreadable(_)) => {
                    let text = e.to_string();
                    assert!(text.contains(says) && text.contains(name), "{name}: {text}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        // An empty file, and one that is nothing but a header.
        let path = dir.path().join("e.csv");
        std::fs::write(&path, "").unwrap();
        assert!(matches!(
            parse(&decoder(), &formats(), &path, &unit(), NAME, q3(), today()),
            Err(SubmitError::Unreadable(_))
        ));
    }

    #[test]
    fn the_golden_cases_of_the_submission_formats_pass() {
        let formats = formats();
        let kinds: Vec<&str> = formats.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(kinds, KINDS);
        for a in &formats {
            let results = golden::check(a, false);
            assert!(!results.is_empty(), "{} has no golden case", a.name);
            for r in results {
                assert!(
                    r.mismatch.is_none(),
                    "{}: {:?}",
                    r.input.display(),
                    r.mismatch
                );
            }
        }
    }

    #[test]
    fn the_sample_submissions_are_valid() {
        let formats = formats();
        for a in &formats {
            let path = a.dir.join("samples").join(format!("2026Q3.{}", a.name));
            let parsed = parse(&decoder(), &formats, &path, &unit(), NAME, q3(), today())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(parsed.details.len(), 4, "{}", a.name);
            assert_eq!(
                parsed.totals,
                Totals {
                    cases: 4,
                    fines_fen: Fen::new(580_000),
                    confiscations_fen: Fen::new(123_450),
                },
                "{}",
                a.name
            );
        }
    }

    #[test]
    fn definitions_unfit_for_submissions_are_refused_at_load() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("submissions");
        let dir = tempfile::tempdir().unwrap();
        for (from, to, edit) in [
            ("csv", "csv", None),
            (
                "csv",
                "csv-again",
                Some(("name = \"csv\"", "name = \"csv-again\"")),
            ),
            (
                "xml",
                "xml",
                Some((
                    "record_path = \"Submission/Case\"",
                    "record_path = \"Submission/*\"",
                )),
            ),
        ] {
            let text = std::fs::read_to_string(src.join(from).join("adapter.toml")).unwrap();
            let text = match edit {
                Some((a, b)) => {
                    assert!(text.contains(a));
                    text.replace(a, b)
                }
                None => text,
            };
            std::fs::create_dir(dir.path().join(to)).unwrap();
            std::fs::write(dir.path().join(to).join("adapter.toml"), text).unwrap();
        }
        let errors = load_formats(dir.path()).unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["format.kind", "format.record_path"], "{errors:#?}");
        assert!(errors[0].file.contains("csv-again"), "{}", errors[0]);
    }

    /// Mutations of the samples under `submissions/*/cases/` and of the valid submission built
    /// here, in every format: each is refused with its problems or read with totals that equal
    /// its details, within a deadline.
    mod props {
        use std::sync::LazyLock;

        use proptest::prelude::*;
        use proptest::sample::Index;

        use super::*;
        use crate::proptest_support::{
            CSV_SYNTAX, DEADLINE, XLSX_SYNTAX, XML_SYNTAX, config, edit, mutated_utf8, within,
            zip_with_edited_entry,
        };

        static FORMATS: LazyLock<Vec<Adapter>> = LazyLock::new(formats);

        /// Each format's sample and valid submission.
        static BASES: LazyLock<Vec<(&'static str, Vec<u8>)>> = LazyLock::new(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("submissions");
            let dir = tempfile::tempdir().unwrap();
            let mut bases = Vec::new();
            for kind in KINDS {
                let sample = root.join(kind).join("cases").join(format!("mixed.{kind}"));
                bases.push((kind, std::fs::read(sample).unwrap()));
                bases.push((
                    kind,
                    std::fs::read(write(dir.path(), kind, &valid())).unwrap(),
                ));
            }
            bases
        });

        fn submit_bytes(kind: &'static str, bytes: Vec<u8>) -> Result<Parsed, SubmitError> {
            within(DEADLINE, "submission", move || {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join(format!("submission.{kind}"));
                std::fs::write(&path, bytes).unwrap();
                parse(&decoder(), &FORMATS, &path, &unit(), NAME, q3(), today())
            })
        }

        /// What `parse` promises: a submission read is the unit's, in the quarter, without a
        /// repeated case, its totals equal to its details; one refused says why and where.
        fn check(kind: &str, got: &Result<Parsed, SubmitError>) -> Result<(), TestCaseError> {
            match got {
                Ok(p) => {
                    prop_assert_eq!(p.format, kind);
                    prop_assert_eq!(p.totals.cases, p.details.len() as u64);
                    let summary = Summary::of(&p.details);
                    prop_assert_eq!(summary.fines_fen, p.totals.fines_fen);
                    prop_assert_eq!(summary.confiscations_fen, p.totals.confiscations_fen);
                    let mut ids: Vec<&str> = p.details.iter().map(|d| d.case_id.as_str()).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    prop_assert_eq!(ids.len(), p.details.len(), "a case twice");
                    for d in &p.details {
                        prop_assert!(q3().contains(d.decided_on) && d.decided_on <= today());
                    }
                }
                Err(SubmitError::Unreadable(m)) => {
                    prop_assert!(
                        m.starts_with(&format!("submission.{kind} (as {kind}): ")),
                        "{}",
                        m
                    );
                }
                Err(SubmitError::Invalid(problems)) => {
                    prop_assert!(!problems.is_empty());
                    for p in problems {
                        prop_assert!(
                            !p.location.is_empty() && !p.field.is_empty() && !p.reason.is_empty(),
                            "{:?}",
                            p
                        );
                    }
                }
                Err(e @ SubmitError::UnknownFormat(_)) => prop_assert!(false, "{}", e),
            }
            Ok(())
        }

        /// The bases of the text formats, mutated.
        fn text_mutations() -> impl Strategy<Value = (&'static str, Vec<u8>)> {
            let bases: Vec<usize> = (0..BASES.len()).filter(|&i| BASES[i].0 != "xlsx").collect();
            prop::sample::select(bases).prop_flat_map(|i| {
                let (kind, base) = &BASES[i];
                let tokens = if *kind == "csv" {
                    CSV_SYNTAX
                } else {
                    XML_SYNTAX
                };
                (Just(*kind), mutated_utf8(base, tokens, 3))
            })
        }

        proptest! {
            #![proptest_config(config(256))]

            #[test]
            fn mutated_csv_and_xml_submissions_keep_their_promises(
                (kind, bytes) in text_mutations(),
            ) {
                check(kind, &submit_bytes(kind, bytes))?;
            }
        }

        /// Yuan with two decimals, as a submission writes amounts.
        fn yuan(fen: u64) -> String {
            format!("{}.{:02}", fen / 100, fen % 100)
        }

        proptest! {
            #![proptest_config(config(64))]

            /// Valid submissions of generated fines and confiscations, decided on any day of the
            /// quarter, are read in every format with their details and totals.
            #[test]
            fn generated_valid_submissions_are_read_in_every_format(
                cases in prop::collection::vec(
                    (0u64..92, 1u64..10_000_000, prop::option::of(1u64..1_000_000)),
                    1..6,
                ),
                kind in prop::sample::select(KINDS.to_vec()),
            ) {
                let first = q3().first_day();
                let mut entries = Vec::new();
                let (mut fines, mut confiscated) = (0u64, 0u64);
                for (i, (day, fine_fen, conf_fen)) in cases.iter().enumerate() {
                    let date = (first + chrono::Days::new(*day)).to_string();
                    let id = format!("XW-YC-2026-{:04}", i + 1);
                    let mut row = fine(&id, &date, &yuan(*fine_fen));
                    if let Some(c) = conf_fen {
                        let amount = yuan(*c);
                        row = with(row, &[("处罚种类", "罚款、没收违法所得"), ("没收金额（元）", &amount)]);
                        confiscated += c;
                    }
                    fines += fine_fen;
                    entries.push(Entry::Case(row));
                }
                let (n, f, c) = (cases.len().to_string(), yuan(fines), yuan(confiscated));
                entries.push(Entry::Totals(&n, &f, &c));
                let p = submit(kind, &entries).map_err(|e| TestCaseError::fail(format!("{kind}: {e}")))?;
                check(kind, &Ok(p.clone()))?;
                prop_assert_eq!(p.details.len(), cases.len());
                for (d, (_, fine_fen, conf_fen)) in p.details.iter().zip(&cases) {
                    prop_assert_eq!(d.fine_fen, Some(Fen::new(*fine_fen)));
                    prop_assert_eq!(d.confiscated_fen, conf_fen.map(Fen::new));
                }
            }

            /// XLSX submissions, with one XML entry of the workbook edited (or its bytes).
            #[test]
            fn mutated_xlsx_submissions_keep_their_promises(
                which in any::<Index>(),
                entry in any::<Index>(),
                edits in prop::collection::vec(prop_oneof![edit(XML_SYNTAX), edit(XLSX_SYNTAX)], 1..4),
                raw in prop::bool::weighted(0.2),
            ) {
                let xlsx: Vec<&Vec<u8>> =
                    BASES.iter().filter(|(k, _)| *k == "xlsx").map(|(_, b)| b).collect();
                let base = which.get(&xlsx);
                let bytes = if raw {
                    crate::proptest_support::apply(base, &edits)
                } else {
                    zip_with_edited_entry(base, entry, &edits)
                };
                check("xlsx", &submit_bytes("xlsx", bytes))?;
            }
        }

        /// The bases themselves: the valid submissions are read, the samples keep the promises.
        #[test]
        fn the_unchanged_bases_keep_their_promises() {
            for (i, (kind, bytes)) in BASES.iter().enumerate() {
                let got = submit_bytes(kind, bytes.clone());
                if i % 2 == 1 {
                    assert!(got.is_ok(), "{kind}: {got:?}");
                }
                check(kind, &got).unwrap();
            }
        }
    }
}
