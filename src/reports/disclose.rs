//! The public quarterly disclosure (行政执法季度公示, DESIGN §9): what of the units' quarterly
//! reports may be published, and its three publication formats (one CSV per department, one XLSX
//! workbook, one self-contained HTML page).
//!
//! This module owns the line between the report (which holds full ID numbers and restricted
//! cases) and the public: every output is built from [`PublicRow`]s, and [`public_rows`] is the
//! only way to make them, so the masking and the leaving-out of restricted cases happen in one
//! place.

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::NaiveDate;
use rust_xlsxwriter::{Color, DocProperties, FormatAlign, FormatBorder, Workbook, XlsxError};

use super::model::{Detail, QuarterlyReport, Summary};
use crate::model::{
    Action, CaseStatus, Disclosure, Fen, IdType, PartyKind, Quarter, is_minor_on, mask_id,
};

/// The column headers of every public table, in order.
pub const HEADERS: [&str; 11] = [
    "序号",
    "执法类别",
    "案件名称",
    "案件编号",
    "决定书文号",
    "当事人",
    "证件号码",
    "处理结果",
    "罚款金额（元）",
    "决定日期",
    "状态",
];

/// The UTF-8 byte order mark: without it Excel reads a CSV as the local ANSI code page (GBK on
/// Chinese Windows) and the Chinese text turns to mojibake.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A publication format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One CSV file per department.
    Csv,
    /// One workbook, one sheet per department.
    Xlsx,
    /// One self-contained web page.
    Html,
}

impl Format {
    /// Every format.
    pub const ALL: &'static [Format] = &[Format::Csv, Format::Xlsx, Format::Html];

    /// The format's name (`csv`, `xlsx`, `html`), also its file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Html => "html",
        }
    }

    /// Parses a format name (exact, lowercase).
    pub fn parse(s: &str) -> Result<Format, UnknownFormat> {
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        Format::parse(s)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is not one of `csv`, `xlsx`, `html`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a disclosure format (allowed: csv, xlsx, html)")]
pub struct UnknownFormat(pub String);

/// Why the disclosure could not be written. Nothing is written when the reports are refused, and
/// each file is written whole or not at all (see [`write`]).
#[derive(Debug, thiserror::Error)]
pub enum DiscloseError {
    /// Creating the directory or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The CSV encoder refused a record.
    #[error("{}: writing CSV: {source}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: csv::Error,
    },
    /// The workbook could not be built.
    #[error("{}: building the workbook: {source}", path.display())]
    Xlsx {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: XlsxError,
    },
    /// A report of another quarter was passed in: publishing it under this quarter would be false.
    #[error(
        "{}: the report of unit {unit} is for {found}, not {expected}",
        out_dir.display()
    )]
    WrongQuarter {
        /// The output directory (nothing was written to it).
        out_dir: PathBuf,
        /// The unit's code.
        unit: String,
        /// The report's quarter.
        found: Quarter,
        /// The quarter being disclosed.
        expected: Quarter,
    },
    /// Two reports of one unit were passed in; only its latest may be published.
    #[error(
        "{}: unit {unit} has more than one report; pass only its latest",
        out_dir.display()
    )]
    DuplicateUnit {
        /// The output directory (nothing was written to it).
        out_dir: PathBuf,
        /// The unit's code.
        unit: String,
    },
}

/// One publishable case: the fields of a [`Detail`] that may be disclosed, with the ID number
/// already masked and free text scrubbed of resident ID numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicRow {
    /// Kind of action.
    pub action: Action,
    /// Case name.
    pub title: String,
    /// Case number.
    pub case_id: String,
    /// Decision document number (empty when there is none).
    pub decision_number: String,
    /// Counterpart name.
    pub party_name: String,
    /// Counterpart ID number: in full only for an organisation's USCC, masked otherwise; empty
    /// when there is none.
    pub party_id: String,
    /// Outcome (empty when there is none).
    pub decision: String,
    /// Fine.
    pub fine_fen: Option<Fen>,
    /// Decision date.
    pub decided_on: NaiveDate,
    /// Whether the decision stands.
    pub status: CaseStatus,
}

impl PublicRow {
    /// The row as text in [`HEADERS`] order, numbered `seq` (1-based within its department).
    pub fn cells(&self, seq: usize) -> [String; 11] {
        [
            seq.to_string(),
            self.action.label().to_string(),
            self.title.clone(),
            self.case_id.clone(),
            self.decision_number.clone(),
            self.party_name.clone(),
            self.party_id.clone(),
            self.decision.clone(),
            self.fine_fen.map(Fen::yuan_string).unwrap_or_default(),
            self.decided_on.format("%Y-%m-%d").to_string(),
            self.status.label().to_string(),
        ]
    }
}

/// Whether a case may be published. An exhaustive match, so a new disclosure level cannot be
/// published by default.
fn is_public(d: &Detail) -> bool {
    match d.disclosure {
        Disclosure::Public => !is_minor(d),
        Disclosure::Restricted => false,
    }
}

/// The ID number as published. Only an organisation's USCC is shown in full (it is a public
/// register entry); everything else — natural persons' documents of any type, resident IDs of
/// anyone (an individual business may be registered under its owner's), and numbers of unknown
/// type — is masked, because a number we cannot classify may be a person's.
fn public_id(d: &Detail) -> String {
    let Some(id) = d.party_id.as_deref() else {
        return String::new();
    };
    let organisation = d.party_kind != PartyKind::NaturalPerson;
    if organisation && d.party_id_type == Some(IdType::Uscc) {
        id.to_string()
    } else {
        mask_id(id)
    }
}

/// A character as the scrub reads it: full-width digits, X and separators as their ASCII
/// forms, so that a number typed in full width (`１１０１０５…`) is found like any other.
fn ascii_form(c: char) -> char {
    match c {
        '\u{FF10}'..='\u{FF19}' => char::from_digit(c as u32 - 0xFF10, 10).unwrap_or(c),
        'Ｘ' | 'ｘ' | 'x' => 'X',
        '－' | '—' => '-',
        '（' => '(',
        '）' => ')',
        c => c,
    }
}

/// Words after which a short run of digits is taken for a phone number.
const PHONE_WORDS: [&str; 8] = ["电话", "手机", "联系", "座机", "传真", "tel", "Tel", "TEL"];

/// Masks, inside free text, whatever may identify or reach a person, erring towards masking:
/// - any run of 15 or more digits (or 17 digits and X): an 18-digit resident ID whatever its
///   check character, a 15-digit first-generation one, a bank card — first 6 and last 4 kept;
/// - an 11-digit mobile number (`1[3-9]…`) — first 3 and last 4 kept;
/// - a landline: an area code (`0` and 2–3 digits, bare, in brackets or followed by `-` or a
///   space) and 7–8 digits, or 7–8 digits just after a word such as 电话 — the number starred;
/// - `address`, the natural person's own address, wherever the text repeats it.
///
/// Case titles and outcomes are typed by hand in the source systems and sometimes quote the
/// party's ID, phone or address; the structured masking alone would let those through.
fn scrub(text: &str, address: Option<&str>) -> String {
    const HIDDEN_ADDRESS: &str = "[住址已隐去]";
    let text = match address.map(str::trim).filter(|a| a.chars().count() >= 4) {
        Some(a) if text.contains(a) => text.replace(a, HIDDEN_ADDRESS),
        _ => text.to_string(),
    };
    let chars: Vec<char> = text.chars().collect();
    let norm: Vec<char> = chars.iter().map(|c| ascii_form(*c)).collect();
    let digit = |i: usize| norm.get(i).is_some_and(char::is_ascii_digit);
    // Which characters to star.
    let mut star = vec![false; chars.len()];
    let mut i = 0;
    while i < norm.len() {
        if !digit(i) {
            i += 1;
            continue;
        }
        let start = i;
        while digit(i) {
            i += 1;
        }
        let mut end = i;
        if end - start == 17 && norm.get(end) == Some(&'X') {
            end += 1;
            i += 1;
        }
        let run = &norm[start..end];
        let len = end - start;
        // Stars the run but for its first `from` and last `to` characters.
        let star_between = |from: usize, to: usize, star: &mut Vec<bool>| {
            for s in &mut star[start + from..end - to] {
                *s = true;
            }
        };
        if len >= 15 {
            star_between(6, 4, &mut star);
        } else if len == 11 && run[0] == '1' && ('3'..='9').contains(&run[1]) {
            star_between(3, 4, &mut star);
        } else if (10..=12).contains(&len) && run[0] == '0' {
            // An area code and its number written together.
            star_between(3, 2, &mut star);
        } else if (3..=4).contains(&len) && run[0] == '0' {
            // An area code: `025-84561234`, `(025)84561234`, `025 84561234`.
            let sep = norm.get(end).is_some_and(|c| matches!(c, '-' | ')' | ' '));
            let local = end + 1;
            let mut j = local;
            while digit(j) {
                j += 1;
            }
            if sep && (7..=8).contains(&(j - local)) {
                for s in &mut star[local..j] {
                    *s = true;
                }
                i = j;
            }
        } else if (7..=8).contains(&len) {
            let before: String = chars[start.saturating_sub(6)..start].iter().collect();
            if PHONE_WORDS.iter().any(|w| before.contains(w)) {
                star_between(0, 0, &mut star);
            }
        }
    }
    chars
        .iter()
        .zip(star)
        .map(|(c, s)| if s { '*' } else { *c })
        .collect()
}

/// Whether the party is a natural person under 18 on the decision date, by the birth date in
/// their ID number: a minor's case is never published, whatever the source system marked.
fn is_minor(d: &Detail) -> bool {
    d.party_kind == PartyKind::NaturalPerson
        && d.party_id
            .as_deref()
            .is_some_and(|id| is_minor_on(id, d.decided_on))
}

/// The day, China Standard Time, the report was generated: the day its disclosure speaks for.
fn report_day(r: &QuarterlyReport) -> NaiveDate {
    chrono::FixedOffset::east_opt(8 * 3600).map_or_else(
        || r.generated_at.date_naive(),
        |cst| r.generated_at.with_timezone(&cst).date_naive(),
    )
}

/// Whether a party's name may be published on `on` (the 双公示 rule): an organisation's always;
/// a natural person's only in a penalty decision, and only until its 公示截止期 when it has one.
fn name_published(d: &Detail, on: NaiveDate) -> bool {
    d.party_kind != PartyKind::NaturalPerson
        || (d.action == Action::Penalty && d.publicity_until.is_none_or(|until| on <= until))
}

/// A natural person's name as published when it may not be: the surname (the first
/// character) and a star for each other character, as 公示 pages write it (张**).
fn masked_name(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| if i == 0 { c } else { '*' })
        .collect()
}

/// The public rows of one report: restricted cases (`Disclosure::Restricted`) left out; ID
/// numbers masked unless they are an organisation's USCC; resident ID numbers quoted in free text
/// masked. Ordered by action (code-list order), then case number.
pub fn public_rows(r: &QuarterlyReport) -> Vec<PublicRow> {
    let mut rows: Vec<PublicRow> = r
        .details
        .iter()
        .filter(|d| is_public(d))
        .map(|d| {
            let on = report_day(r);
            let hidden = (!name_published(d, on)).then(|| masked_name(&d.party_name));
            let scrub = |t: &str| {
                let t = scrub(t, d.party_address.as_deref());
                match &hidden {
                    Some(m) if !d.party_name.is_empty() => t.replace(d.party_name.as_str(), m),
                    _ => t,
                }
            };
            PublicRow {
                action: d.action,
                title: scrub(&d.title),
                case_id: d.case_id.clone(),
                decision_number: d.decision_number.as_deref().map(scrub).unwrap_or_default(),
                party_name: scrub(&d.party_name),
                party_id: public_id(d),
                decision: d.decision.as_deref().map(scrub).unwrap_or_default(),
                fine_fen: d.fine_fen,
                decided_on: d.decided_on,
                status: d.status,
            }
        })
        .collect();
    rows.sort_by(|a, b| (a.action, &a.case_id).cmp(&(b.action, &b.case_id)));
    rows
}

/// A report as a client that does not hold the unit's port reads it (a `reports allow-read`
/// grant): every detail line's ID number masked as in the disclosure (an organisation's USCC
/// stays), the address dropped, and numbers quoted in free text scrubbed. Restricted cases and
/// the figures stay: the grant is for oversight, not publication. The digest stays the stored
/// version's, so that it still names the version.
pub fn masked_report(mut r: QuarterlyReport) -> QuarterlyReport {
    for d in &mut r.details {
        d.party_id = d.party_id.as_ref().map(|_| public_id(d));
        let address = d.party_address.take();
        let scrub = |t: &str| scrub(t, address.as_deref());
        d.title = scrub(&d.title);
        d.party_name = scrub(&d.party_name);
        d.decision = d.decision.as_deref().map(scrub);
    }
    r
}

/// The figures of the public part of a report only: a restricted case must not show through a
/// count or a sum either. Computed by [`Summary::of`], the arithmetic of the reports themselves.
pub fn public_summary(r: &QuarterlyReport) -> Summary {
    let public: Vec<Detail> = r.details.iter().filter(|d| is_public(d)).cloned().collect();
    Summary::of(&public)
}

/// One department's part of the disclosure.
struct Dept<'a> {
    report: &'a QuarterlyReport,
    rows: Vec<PublicRow>,
    summary: Summary,
}

impl Dept<'_> {
    fn count(&self, a: Action) -> u64 {
        self.summary.by_action.get(a.code()).copied().unwrap_or(0)
    }
}

/// Writes the disclosure of `reports` (all units' latest reports for one quarter) into `out_dir`
/// (created if missing): `{quarter}-{unit_code}.csv` per department, `{quarter}-disclosure.xlsx`
/// or `{quarter}-disclosure.html`. Departments appear in unit-code order. Returns the paths
/// written.
///
/// The reports are checked first (all of `quarter`, one per unit), so a refusal writes nothing.
/// Each file is written to a temporary name and renamed, so a reader never sees half a file.
pub fn write(
    quarter: Quarter,
    reports: &[QuarterlyReport],
    format: Format,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, DiscloseError> {
    let mut sorted: Vec<&QuarterlyReport> = reports.iter().collect();
    sorted.sort_by(|a, b| a.unit_code.cmp(&b.unit_code));
    for (i, r) in sorted.iter().enumerate() {
        if r.quarter != quarter {
            return Err(DiscloseError::WrongQuarter {
                out_dir: out_dir.to_path_buf(),
                unit: r.unit_code.to_string(),
                found: r.quarter,
                expected: quarter,
            });
        }
        if i > 0 && sorted[i - 1].unit_code == r.unit_code {
            return Err(DiscloseError::DuplicateUnit {
                out_dir: out_dir.to_path_buf(),
                unit: r.unit_code.to_string(),
            });
        }
    }
    let depts: Vec<Dept<'_>> = sorted
        .into_iter()
        .map(|report| Dept {
            report,
            rows: public_rows(report),
            summary: public_summary(report),
        })
        .collect();

    fs::create_dir_all(out_dir).map_err(|source| DiscloseError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    match format {
        Format::Csv => {
            for d in &depts {
                let path = out_dir.join(format!("{quarter}-{}.csv", d.report.unit_code));
                match csv_bytes(&d.rows) {
                    Ok(bytes) => files.push((path, bytes)),
                    Err(source) => return Err(DiscloseError::Csv { path, source }),
                }
            }
        }
        Format::Xlsx => {
            let path = out_dir.join(format!("{quarter}-disclosure.xlsx"));
            match xlsx_bytes(quarter, &depts) {
                Ok(bytes) => files.push((path, bytes)),
                Err(source) => return Err(DiscloseError::Xlsx { path, source }),
            }
        }
        Format::Html => {
            let path = out_dir.join(format!("{quarter}-disclosure.html"));
            match html_page(quarter, &depts) {
                Ok(page) => files.push((path, page.into_bytes())),
                Err(e) => {
                    return Err(DiscloseError::Io {
                        path,
                        source: std::io::Error::other(e),
                    });
                }
            }
        }
    }
    let mut written = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        put(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes a file whole: to a hidden temporary name beside it, synced, then renamed over it.
fn put(path: &Path, bytes: &[u8]) -> Result<(), DiscloseError> {
    let io = |source| DiscloseError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: the error being reported is the write's, not the clean-up's.
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io)
}

// ---------------------------------------------------------------------------------------------
// CSV

/// Neutralises a cell that a spreadsheet would run as a formula (CSV injection): a public file is
/// opened in Excel by anyone, and a case title starting with `=` must stay text. The quote is
/// Excel's own "this is text" marker. XLSX needs no such guard (its cells are typed).
fn csv_cell(s: String) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s
    }
}

/// One department's CSV: BOM, header row, one row per public case, CRLF line ends (RFC 4180).
fn csv_bytes(rows: &[PublicRow]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(BOM.to_vec());
    w.write_record(HEADERS)?;
    for (i, r) in rows.iter().enumerate() {
        w.write_record(r.cells(i + 1).map(csv_cell))?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

// ---------------------------------------------------------------------------------------------
// XLSX

/// Excel's limit on a sheet name, in UTF-16 code units.
const SHEET_NAME_MAX: usize = 31;

/// Cuts a name to at most `max` UTF-16 code units, on a character boundary.
fn cut_utf16(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut len = 0;
    for c in s.chars() {
        len += c.len_utf16();
        if len > max {
            break;
        }
        out.push(c);
    }
    out
}

/// Valid, unique sheet names for `(unit name, unit code)` pairs, in order: the characters Excel
/// refuses (`[]:*?/\`) become `_`, the name is cut to 31 UTF-16 units and stripped of edge
/// apostrophes, an empty name falls back to the unit code, and a name already taken (Excel
/// compares without case; `History` is reserved) gets `(2)`, `(3)`, … .
fn sheet_names<'a>(units: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut taken: HashSet<String> = HashSet::from(["history".to_string()]);
    let mut out = Vec::new();
    for (name, code) in units {
        let tidy = |s: &str| {
            let replaced: String = s
                .chars()
                .map(|c| match c {
                    '[' | ']' | ':' | '*' | '?' | '/' | '\\' => '_',
                    c if c.is_control() => ' ',
                    c => c,
                })
                .collect();
            cut_utf16(replaced.trim(), SHEET_NAME_MAX)
                .trim_matches(|c: char| c == '\'' || c.is_whitespace())
                .to_string()
        };
        let mut base = tidy(name);
        if base.is_empty() {
            base = tidy(code);
        }
        let mut candidate = base.clone();
        let mut n = 2;
        while taken.contains(&candidate.to_lowercase()) {
            let suffix = format!("({n})");
            candidate = format!(
                "{}{suffix}",
                cut_utf16(&base, SHEET_NAME_MAX - suffix.len())
            );
            n += 1;
        }
        taken.insert(candidate.to_lowercase());
        out.push(candidate);
    }
    out
}

/// Display width of text in a spreadsheet column, in character widths: CJK and other wide
/// characters take two.
fn display_width(s: &str) -> usize {
    s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

/// One department's sheet; `formats` are the header, text and money formats.
fn sheet(
    ws: &mut rust_xlsxwriter::Worksheet,
    name: &str,
    rows: &[PublicRow],
    [head, text, money]: [&rust_xlsxwriter::Format; 3],
) -> Result<(), XlsxError> {
    ws.set_name(name)?;
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| display_width(h)).collect();
    for (c, h) in (0u16..).zip(HEADERS) {
        ws.write_string_with_format(0, c, h, head)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = u32::try_from(i + 1).map_err(|_| XlsxError::RowColumnLimitError)?;
        let cells = r.cells(i + 1);
        for ((c, cell), width) in (0u16..).zip(&cells).zip(widths.iter_mut()) {
            *width = (*width).max(display_width(cell));
            match (c, r.fine_fen) {
                (0, _) => ws.write_number_with_format(row, c, (i + 1) as f64, text)?,
                // f64 carries any fen amount below 2^53 exactly enough for two decimals.
                (8, Some(f)) => {
                    ws.write_number_with_format(row, c, f.get() as f64 / 100.0, money)?
                }
                (8, None) => ws.write_blank(row, c, text)?,
                _ => ws.write_string_with_format(row, c, cell, text)?,
            };
        }
    }
    for (c, w) in (0u16..).zip(&widths) {
        // Bounds: narrow columns stay clickable, long outcomes wrap instead of running on.
        ws.set_column_width(c, (*w + 2).clamp(6, 50) as f64)?;
    }
    ws.set_freeze_panes(1, 0)?;
    let last = u32::try_from(rows.len()).map_err(|_| XlsxError::RowColumnLimitError)?;
    ws.autofilter(0, 0, last, (HEADERS.len() - 1) as u16)?;
    Ok(())
}

/// The workbook: one sheet per department (header row bold and frozen, filters on, widths fitted
/// to the content within bounds, long text wrapped). Money is a number cell formatted in 元 so
/// that it sums in Excel; dates and numbers-as-text stay text so Excel does not reinterpret them.
fn xlsx_bytes(quarter: Quarter, depts: &[Dept<'_>]) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    wb.set_properties(&DocProperties::new().set_title(format!("{quarter} 行政执法季度公示")));
    let head = rust_xlsxwriter::Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xDDE6F0))
        .set_border(FormatBorder::Thin)
        .set_align(FormatAlign::VerticalCenter);
    let text = rust_xlsxwriter::Format::new()
        .set_text_wrap()
        .set_align(FormatAlign::Top);
    let money = text.clone().set_num_format("#,##0.00");

    let names = sheet_names(
        depts
            .iter()
            .map(|d| (d.report.unit_name.as_str(), d.report.unit_code.as_str())),
    );
    for (name, d) in names.iter().zip(depts) {
        sheet(wb.add_worksheet(), name, &d.rows, [&head, &text, &money])?;
    }
    // A quarter without reports still gets a workbook with the headers, so the publication is
    // never a file Excel refuses.
    if depts.is_empty() {
        sheet(
            wb.add_worksheet(),
            &quarter.to_string(),
            &[],
            [&head, &text, &money],
        )?;
    }
    wb.save_to_buffer()
}

// ---------------------------------------------------------------------------------------------
// HTML

/// Escapes text for HTML element content and quoted attribute values alike.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Sum of fines, saturating like [`Summary::of`].
fn fines_total<'a>(sums: impl IntoIterator<Item = &'a Summary>) -> Fen {
    Fen::new(
        sums.into_iter()
            .fold(0u64, |a, s| a.saturating_add(s.fines_fen.get())),
    )
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei",
  "WenQuanYi Micro Hei", sans-serif; color: #1a1a1a; background: #fff; margin: 2rem auto;
  max-width: 1200px; padding: 0 1rem; line-height: 1.5; }
h1 { font-size: 1.6rem; border-bottom: 3px solid #b22222; padding-bottom: .4rem; }
h2 { font-size: 1.25rem; margin-top: 2.5rem; border-left: 5px solid #1f4e79; padding-left: .5rem; }
p.note, p.meta { color: #555; font-size: .9rem; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; margin: .8rem 0; }
th, td { border: 1px solid #b8c2cc; padding: .3rem .45rem; vertical-align: top; text-align: left; }
thead th { background: #dde6f0; }
tfoot th, tfoot td { background: #f2f4f7; font-weight: bold; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.nowrap { white-space: nowrap; }
tbody tr:nth-child(even) { background: #f8fafc; }
figure { margin: .8rem 0; }
figcaption { font-size: .85rem; color: #555; }
svg text { font-family: inherit; font-size: 13px; fill: #1a1a1a; }
svg .bar { fill: #1f4e79; }
svg .axis { stroke: #777; stroke-width: 1; }
p.empty { color: #555; font-style: italic; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  section.dept { break-before: page; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
}
"#;

/// The bar chart of one department's public counts per action, every action shown (a zero is a
/// fact worth showing), with the action names and the counts as text.
fn chart(out: &mut String, idx: usize, d: &Dept<'_>) -> fmt::Result {
    const LABEL_W: u64 = 96;
    const BAR_MAX: u64 = 460;
    const ROW_H: u64 = 28;
    const PAD: u64 = 8;
    let width = LABEL_W + BAR_MAX + 60;
    let height = PAD * 2 + ROW_H * Action::ALL.len() as u64;
    let max = Action::ALL.iter().map(|&a| d.count(a)).max().unwrap_or(0);
    let name = esc(&d.report.unit_name);
    writeln!(
        out,
        r#"<figure><svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart-{idx}"><title id="chart-{idx}">{name} 各执法类别公开案件数</title>"#
    )?;
    for (k, &a) in (0u64..).zip(Action::ALL) {
        let n = d.count(a);
        let y = PAD + k * ROW_H;
        // Scaled to the largest count (none when all are zero), and at least a sliver for a
        // non-zero count so that it is not mistaken for none.
        let bar =
            (n.saturating_mul(BAR_MAX).checked_div(max).unwrap_or(0)).max(u64::from(n > 0) * 2);
        let mid = y + ROW_H / 2;
        writeln!(
            out,
            r#"<text x="{lx}" y="{mid}" text-anchor="end" dominant-baseline="middle">{label}</text><rect class="bar" x="{LABEL_W}" y="{by}" width="{bar}" height="{bh}"/><text x="{nx}" y="{mid}" dominant-baseline="middle">{n}</text>"#,
            lx = LABEL_W - 8,
            label = esc(a.label()),
            by = y + 5,
            bh = ROW_H - 10,
            nx = LABEL_W + bar + 6,
        )?;
    }
    writeln!(
        out,
        r#"<line class="axis" x1="{LABEL_W}" y1="{PAD}" x2="{LABEL_W}" y2="{y2}"/></svg><figcaption>各执法类别公开案件数（件）</figcaption></figure>"#,
        y2 = height - PAD
    )
}

/// The page: title, the summary table (department × action counts and fines), then per
/// department its chart and its table. No scripts, no external resources; a CSP forbids both, so
/// even a missed escape could not load or run anything.
fn html_page(quarter: Quarter, depts: &[Dept<'_>]) -> Result<String, fmt::Error> {
    let mut out = String::new();
    let title = format!("{quarter} 行政执法季度公示");
    writeln!(
        out,
        r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>{t}</h1>
<p class="note">公示期间：{from} 至 {to}。依法不予公开的案件未列入本公示；自然人证件号码已作脱敏处理。已撤销的决定单列，其罚款不计入合计。</p>
</header>"#,
        t = esc(&title),
        from = quarter.first_day().format("%Y-%m-%d"),
        to = quarter.last_day().format("%Y-%m-%d"),
    )?;

    // Summary table.
    writeln!(
        out,
        r#"<section id="summary"><h2>汇总</h2><table class="summary"><thead><tr><th>执法部门</th><th>统一社会信用代码</th>"#
    )?;
    for a in Action::ALL {
        write!(out, r#"<th class="num">{}</th>"#, esc(a.label()))?;
    }
    writeln!(
        out,
        r#"<th class="num">合计</th><th class="num">罚款金额（元）</th></tr></thead><tbody>"#
    )?;
    for d in depts {
        write!(
            out,
            r##"<tr><td><a href="#u-{code}">{name}</a></td><td class="nowrap">{code}</td>"##,
            code = esc(d.report.unit_code.as_str()),
            name = esc(&d.report.unit_name),
        )?;
        for &a in Action::ALL {
            write!(out, r#"<td class="num">{}</td>"#, d.count(a))?;
        }
        writeln!(
            out,
            r#"<td class="num">{}</td><td class="num">{}</td></tr>"#,
            d.summary.total,
            d.summary.fines_fen.yuan_string()
        )?;
    }
    write!(out, r#"</tbody><tfoot><tr><th colspan="2">合计</th>"#)?;
    for &a in Action::ALL {
        let n: u64 = depts.iter().map(|d| d.count(a)).sum();
        write!(out, r#"<td class="num">{n}</td>"#)?;
    }
    writeln!(
        out,
        r#"<td class="num">{}</td><td class="num">{}</td></tr></tfoot></table></section>"#,
        depts.iter().map(|d| d.summary.total).sum::<u64>(),
        fines_total(depts.iter().map(|d| &d.summary)).yuan_string()
    )?;

    // One section per department.
    for (idx, d) in depts.iter().enumerate() {
        writeln!(
            out,
            r#"<section class="dept" id="u-{code}"><h2>{name}</h2><p class="meta">统一社会信用代码 {code} · 公开案件 {n} 件 · 罚款合计 {fine} 元{revoked}</p>"#,
            code = esc(d.report.unit_code.as_str()),
            name = esc(&d.report.unit_name),
            n = d.summary.total,
            fine = d.summary.fines_fen.yuan_string(),
            revoked = match d.summary.revoked {
                0 => String::new(),
                r => format!(
                    " · 已撤销 {r} 件（罚款 {} 元，不计入合计）",
                    d.summary.revoked_fines_fen.yuan_string()
                ),
            },
        )?;
        chart(&mut out, idx, d)?;
        if d.rows.is_empty() {
            writeln!(out, r#"<p class="empty">本季度无公开案件。</p></section>"#)?;
            continue;
        }
        write!(out, "<table><thead><tr>")?;
        for (c, h) in HEADERS.iter().enumerate() {
            let class = if c == 0 || c == 8 {
                r#" class="num""#
            } else {
                ""
            };
            write!(out, "<th{class}>{}</th>", esc(h))?;
        }
        writeln!(out, "</tr></thead><tbody>")?;
        for (i, r) in d.rows.iter().enumerate() {
            write!(out, "<tr>")?;
            for (c, cell) in r.cells(i + 1).iter().enumerate() {
                let class = match c {
                    0 | 8 => r#" class="num""#,
                    1 | 3 | 6 | 9 | 10 => r#" class="nowrap""#,
                    _ => "",
                };
                write!(out, "<td{class}>{}</td>", esc(cell))?;
            }
            writeln!(out, "</tr>")?;
        }
        writeln!(out, "</tbody></table></section>")?;
    }
    writeln!(out, "</body>\n</html>")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PenaltyKind, TransferStatus, Uscc};
    use crate::reports::model::Origin;
    use calamine::{Data, Reader, Xlsx, open_workbook};

    // ---- test data ----------------------------------------------------------------------------

    /// Completes a 17-digit body with its GB 11643 check character, computed here independently of
    /// the model's implementation.
    fn resident_id(body17: &str) -> String {
        const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = body17
            .chars()
            .zip(W)
            .map(|(c, w)| c.to_digit(10).unwrap() * w)
            .sum();
        let check = "10X98765432".as_bytes()[(sum % 11) as usize] as char;
        let id = format!("{body17}{check}");
        // Cross-check: the model's validator agrees.
        crate::model::ResidentId::parse_at(&id, NaiveDate::from_ymd_opt(2024, 1, 1).unwrap())
            .unwrap();
        id
    }

    fn masked(id: &str) -> String {
        format!("{}{}{}", &id[..6], "*".repeat(8), &id[14..])
    }

    /// Natural persons' IDs (one ending in X) and two that only appear in restricted cases.
    fn person_ids() -> Vec<String> {
        [
            "32010219850312123",
            "32010419791105002",
            "11010519491231002",
            "32011319900101456",
            "32010619720229881",
        ]
        .iter()
        .map(|b| resident_id(b))
        .collect()
    }

    const UNIT_A: &str = "11320102083016613W";
    const UNIT_B: &str = "11320102471049746T";
    const UNIT_C: &str = "11320102507529170Q";
    const ORG_1: &str = "91320102MA60876NU7";
    const ORG_2: &str = "913201022CN81MDUNP";
    const ORG_3: &str = "51320102MADGEY11D7";
    const NASTY_TITLE: &str = r#"<script>alert("x")</script> & "引号" 'q' 案"#;
    const FORMULA_TITLE: &str = "=1+2 公式样例案";

    struct Case<'a> {
        id: &'a str,
        title: &'a str,
        action: Action,
        person: Option<&'a str>,
        org: Option<&'a str>,
        fine: Option<u64>,
        restricted: bool,
    }

    fn detail(c: &Case<'_>) -> Detail {
        let (party_kind, party_name, party_id_type, party_id) = match (c.person, c.org) {
            (Some(p), _) => (
                PartyKind::NaturalPerson,
                "张三".to_string(),
                Some(IdType::ResidentId),
                Some(p.to_string()),
            ),
            (None, Some(o)) => (
                PartyKind::LegalPerson,
                "南京某某贸易有限公司".to_string(),
                Some(IdType::Uscc),
                Some(o.to_string()),
            ),
            (None, None) => (PartyKind::OtherOrg, "某施工队".to_string(), None, None),
        };
        Detail {
            case_id: c.id.to_string(),
            title: c.title.to_string(),
            action: c.action,
            party_kind,
            party_name,
            party_id_type,
            party_id,
            decision_number: Some(format!("玄市监决〔2018〕{}号", c.id)),
            decided_on: NaiveDate::from_ymd_opt(2018, 11, 20).unwrap(),
            decision: Some(format!("{}：依法作出处理", c.action.label())),
            penalty_kinds: if c.action == Action::Penalty {
                vec![PenaltyKind::Fine]
            } else {
                vec![]
            },
            fine_fen: c.fine.map(Fen::new),
            confiscated_fen: None,
            major: false,
            legal_review: false,
            suspected_crime: false,
            transfer_status: TransferStatus::None,
            status: CaseStatus::Active,
            disclosure: if c.restricted {
                Disclosure::Restricted
            } else {
                Disclosure::Public
            },
            party_address: None,
            publicity_until: None,
        }
    }

    fn report(unit: &str, name: &str, cases: &[Case<'_>]) -> QuarterlyReport {
        QuarterlyReport::new(
            q(),
            Uscc::parse(unit).unwrap(),
            name.to_string(),
            Origin::Computed,
            cases.iter().map(detail).collect(),
            vec![],
        )
    }

    fn q() -> Quarter {
        Quarter::new(2018, 4).unwrap()
    }

    /// Too long for a sheet name, with characters Excel forbids in one.
    const LONG_NAME: &str =
        "南京市玄武区综合行政执法局/城管[试点]:特别长的部门名称用于测试工作表名称截断*?";
    const RESTRICTED_TITLES: [&str; 2] = ["绝密甲案-未成年人", "绝密乙案-商业秘密"];
    const RESTRICTED_IDS: [&str; 2] = ["SECRET-A-0001", "SECRET-C-0009"];

    /// Three units in scrambled order (the output must sort them); every action; persons,
    /// organisations and a party without an ID; restricted cases; hostile titles. Unit C's name
    /// is too long and has characters Excel forbids in a sheet name.
    // Tabular test data reads better aligned than wrapped.
    #[rustfmt::skip]
    fn reports() -> Vec<QuarterlyReport> {
        let ids = person_ids();
        let c = |id, title, action, person: Option<usize>, org, fine, restricted| Case {
            id, title, action, person: person.map(|i: usize| ids[i].as_str()), org, fine, restricted,
        };
        use Action::*;
        let a = report(UNIT_A, "南京市玄武区市场监督管理局", &[
            c("XW-2018-0003", "无照经营案", Penalty, Some(0), None, Some(500_000), false),
            c("XW-2018-0001", NASTY_TITLE, Penalty, None, Some(ORG_1), Some(1_234_550), false),
            c("XW-2018-0002", "食品经营许可", Licensing, None, Some(ORG_2), None, false),
            c("XW-2018-0004", "查封扣押案", Compulsion, Some(1), None, None, false),
            c("XW-2018-0005", "双随机抽查", Inspection, None, Some(ORG_3), None, false),
            c(RESTRICTED_IDS[0], RESTRICTED_TITLES[0], Penalty, Some(3), None, Some(99_900), true),
        ]);
        let c_unit = report(UNIT_C, LONG_NAME, &[
            c("CG-2018-0001", FORMULA_TITLE, Levy, None, None, None, false),
            c("CG-2018-0002", "其他执法事项", Other, Some(2), None, None, false),
            c(RESTRICTED_IDS[1], RESTRICTED_TITLES[1], Other, Some(4), None, None, true),
        ]);
        let b = report(UNIT_B, "南京市玄武区卫生健康委员会", &[
            c("WJ-2018-0002", "医疗机构处罚案", Penalty, None, Some(ORG_2), Some(2_000_000), false),
            c("WJ-2018-0001", "诊所处罚案", Penalty, Some(1), None, Some(300_000), false),
        ]);
        vec![c_unit, a, b]
    }

    // ---- scanning helpers ---------------------------------------------------------------------

    /// Every 18-character window of `text` that consists of [0-9X] and passes the GB 11643 check.
    fn resident_ids_in(text: &str) -> Vec<String> {
        const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let chars: Vec<char> = text.chars().collect();
        chars
            .windows(18)
            .filter(|w| {
                w[..17].iter().all(|c| c.is_ascii_digit())
                    && (w[17].is_ascii_digit() || w[17] == 'X' || w[17] == 'x')
            })
            .filter(|w| {
                let sum: u32 = w[..17]
                    .iter()
                    .zip(W)
                    .map(|(c, w)| c.to_digit(10).unwrap() * w)
                    .sum();
                "10X98765432".as_bytes()[(sum % 11) as usize] as char == w[17].to_ascii_uppercase()
            })
            .map(|w| w.iter().collect())
            .collect()
    }

    /// All text of an output file: the file itself for CSV and HTML, every cell for XLSX.
    fn text_of(path: &Path) -> String {
        if path.extension().is_some_and(|e| e == "xlsx") {
            let mut wb: Xlsx<_> = open_workbook(path).unwrap();
            let mut all = String::new();
            for name in wb.sheet_names() {
                all.push_str(&name);
                all.push('\n');
                let range = wb.worksheet_range(&name).unwrap();
                for row in range.rows() {
                    for cell in row {
                        all.push_str(&cell.to_string());
                        all.push('\t');
                    }
                    all.push('\n');
                }
            }
            all
        } else {
            String::from_utf8(fs::read(path).unwrap()).unwrap()
        }
    }

    fn write_all_formats(dir: &Path) -> Vec<PathBuf> {
        let rs = reports();
        Format::ALL
            .iter()
            .flat_map(|&f| write(q(), &rs, f, dir).unwrap())
            .collect()
    }

    // ---- tests --------------------------------------------------------------------------------

    #[test]
    fn format_parses_and_names_the_bad_value() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>().unwrap(), *f);
        }
        let e = "pdf".parse::<Format>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "'pdf' is not a disclosure format (allowed: csv, xlsx, html)"
        );
        assert!(Format::parse("CSV").is_err());
    }

    #[test]
    fn public_rows_leave_out_restricted_and_mask_persons_only() {
        let rs = reports();
        let a = rs.iter().find(|r| r.unit_code.as_str() == UNIT_A).unwrap();
        let rows = public_rows(a);
        assert_eq!(rows.len(), 5);
        assert!(rows.iter().all(|r| r.case_id != RESTRICTED_IDS[0]));
        // Action order (code list), then case number.
        let order: Vec<&str> = rows.iter().map(|r| r.case_id.as_str()).collect();
        assert_eq!(
            order,
            [
                "XW-2018-0001",
                "XW-2018-0003",
                "XW-2018-0002",
                "XW-2018-0004",
                "XW-2018-0005"
            ]
        );
        let ids = person_ids();
        assert_eq!(rows[1].party_id, masked(&ids[0]));
        assert_eq!(
            rows[0].party_id, ORG_1,
            "an organisation's USCC stays whole"
        );
        // The public summary counts public cases only.
        let s = public_summary(a);
        assert_eq!(s.total, 5);
        assert_eq!(s.by_action.get("penalty"), Some(&2));
        assert_eq!(s.fines_fen, Fen::new(1_734_550));
        assert_eq!(
            a.summary.total, 6,
            "the report itself still has the restricted case"
        );
    }

    #[test]
    fn ids_are_masked_by_kind_and_type() {
        let id = person_ids()[1].clone();
        let base = detail(&Case {
            id: "T-1",
            title: "t",
            action: Action::Penalty,
            person: Some(&id),
            org: None,
            fine: None,
            restricted: false,
        });
        // An individual business registered under its owner's resident ID: masked.
        let mut biz = base.clone();
        biz.party_kind = PartyKind::IndividualBusiness;
        assert_eq!(public_id(&biz), masked(&id));
        // A resident ID with no declared type: masked.
        let mut untyped = base.clone();
        untyped.party_kind = PartyKind::LegalPerson;
        untyped.party_id_type = None;
        assert_eq!(public_id(&untyped), masked(&id));
        // A natural person's passport: masked (short numbers are starred whole).
        let mut passport = base.clone();
        passport.party_id_type = Some(IdType::Passport);
        passport.party_id = Some("E12345678".into());
        assert_eq!(public_id(&passport), "*********");
        // A resident ID quoted in free text is masked there too.
        assert_eq!(
            scrub(&format!("当事人（身份证{id}）无照经营"), None),
            format!("当事人（身份证{}）无照经营", masked(&id))
        );
    }

    /// Every form of a number or address the free-text scrub must catch, each in a sentence, and
    /// what it must leave alone.
    const LEAKS: [(&str, &str); 9] = [
        // An 18-digit ID with a wrong check character (…1234, valid would end otherwise).
        (
            "身份证320102198503121234无照经营",
            "身份证320102********1234无照经营",
        ),
        // The same in full-width digits, with a full-width X.
        (
            "证号３２０１０２１９８５０３１２１２３Ｘ",
            "证号３２０１０２********１２３Ｘ",
        ),
        // A first-generation 15-digit ID.
        ("旧证320102850312123。", "旧证320102*****2123。"),
        ("手机13812345678联系", "手机138****5678联系"),
        ("座机025-84561234。", "座机025-********。"),
        ("电话（025）84561234", "电话（025）********"),
        ("电话02584561234", "电话025******34"),
        ("联系电话84561234", "联系电话********"),
        // Left alone: dates, amounts, case and decision numbers, an organisation's USCC.
        (
            "2018年11月20日罚款5000元，玄市监决〔2018〕12号，XW-2018-0003，91320102MA60876NU7",
            "2018年11月20日罚款5000元，玄市监决〔2018〕12号，XW-2018-0003，91320102MA60876NU7",
        ),
    ];

    #[test]
    fn the_scrub_masks_ids_phones_and_the_address_in_any_form() {
        for (text, want) in LEAKS {
            assert_eq!(scrub(text, None), want, "{text}");
        }
        let address = "南京市玄武区珠江路88号3栋201室";
        assert_eq!(
            scrub(
                &format!("当事人住{address}，在{address}门前占道经营"),
                Some(address)
            ),
            "当事人住[住址已隐去]，在[住址已隐去]门前占道经营"
        );
        // Too short to be told from ordinary words: left.
        assert_eq!(scrub("在家中经营", Some("家中")), "在家中经营");
    }

    #[test]
    fn a_minor_is_never_published_whatever_the_source_marked() {
        let detail_of = |id: &str, decided: (i32, u32, u32)| {
            let mut d = detail(&Case {
                id: "XW-M-1",
                title: "未成年人案",
                action: Action::Penalty,
                person: Some(id),
                org: None,
                fine: Some(10_000),
                restricted: false,
            });
            d.decided_on = NaiveDate::from_ymd_opt(decided.0, decided.1, decided.2).unwrap();
            d
        };
        // Born 2008-03-15: 17 on the day before the 18th birthday, of age on it.
        let id = resident_id("32010220080315123");
        assert!(!is_public(&detail_of(&id, (2026, 3, 14))));
        assert!(is_public(&detail_of(&id, (2026, 3, 15))));
        // A 15-digit first-generation ID (born 1985) and a wrong check character still read.
        assert!(is_public(&detail_of("320102850312123", (2003, 3, 12))));
        assert!(!is_public(&detail_of("320102850312123", (2003, 3, 11))));
        assert!(!is_public(&detail_of("320102201001011239", (2025, 8, 1))));
        // Born on 29 February: of age on 1 March of a common year.
        let leap = resident_id("32010220080229123");
        assert!(!is_public(&detail_of(&leap, (2026, 2, 28))));
        assert!(is_public(&detail_of(&leap, (2026, 3, 1))));
        // Left out of the counts and sums as well as the rows.
        let r = QuarterlyReport::new(
            q(),
            Uscc::parse(UNIT_A).unwrap(),
            "u".into(),
            Origin::Computed,
            vec![detail_of(&id, (2026, 3, 14)), detail_of(&id, (2026, 3, 15))],
            vec![],
        );
        assert_eq!(public_rows(&r).len(), 1);
        let s = public_summary(&r);
        assert_eq!((s.total, s.fines_fen.get()), (1, 10_000));
    }

    #[test]
    fn no_output_holds_a_phone_an_id_in_any_form_or_the_address() {
        let address = "南京市玄武区珠江路88号3栋201室";
        let mut details: Vec<Detail> = LEAKS
            .iter()
            .enumerate()
            .map(|(i, (text, _))| {
                let mut d = detail(&Case {
                    id: "XW-L",
                    title: text,
                    action: Action::Penalty,
                    person: None,
                    org: Some(ORG_1),
                    fine: Some(100),
                    restricted: false,
                });
                d.case_id = format!("XW-L-{i}");
                d.decision = Some(format!("依法处理。{text}"));
                d
            })
            .collect();
        let mut person = detail(&Case {
            id: "XW-A",
            title: "占道经营案",
            action: Action::Penalty,
            person: Some(&person_ids()[0]),
            org: None,
            fine: Some(100),
            restricted: false,
        });
        person.party_address = Some(address.into());
        person.decision = Some(format!("当事人在{address}门前占道经营，罚款100元"));
        details.push(person);
        let r = QuarterlyReport::new(
            q(),
            Uscc::parse(UNIT_A).unwrap(),
            "u".into(),
            Origin::Computed,
            details,
            vec![],
        );
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = Format::ALL
            .iter()
            .flat_map(|&f| write(q(), std::slice::from_ref(&r), f, dir.path()).unwrap())
            .collect();
        assert_eq!(paths.len(), 3);
        // The digits that identify or reach someone, in every width they were typed in.
        let secrets = [
            "19850312",
            "１９８５０３１２",
            "850312",
            "12345678",
            "84561234",
            "4561234",
        ];
        for p in &paths {
            let text = text_of(p);
            for s in secrets {
                assert!(!text.contains(s), "{}: shows {s}", p.display());
            }
            assert!(
                !text.contains(address),
                "{}: shows the address",
                p.display()
            );
            assert!(text.contains("[住址已隐去]"), "{}", p.display());
            // What is no one's secret is still there.
            assert!(text.contains("91320102MA60876NU7"), "{}", p.display());
        }
    }

    #[test]
    fn a_natural_persons_name_is_published_only_in_a_live_penalty() {
        let person = |action, title: &str, until: Option<(i32, u32, u32)>| {
            let mut d = detail(&Case {
                id: "XW-N",
                title: "t",
                action,
                person: Some(&person_ids()[0]),
                org: None,
                fine: (action == Action::Penalty).then_some(100),
                restricted: false,
            });
            d.title = title.into();
            d.decision = Some(format!("{title}，依法处理"));
            d.publicity_until = until.map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap());
            d
        };
        let mut live = person(Action::Penalty, "李四占道经营案", Some((2026, 12, 31)));
        live.party_name = "李四".into();
        let mut details = vec![
            person(Action::Licensing, "张三申请食品经营许可", None),
            person(Action::Penalty, "张三无照经营案", Some((2026, 4, 9))),
            live,
        ];
        details.push(detail(&Case {
            id: "XW-O",
            title: "某公司许可",
            action: Action::Licensing,
            person: None,
            org: Some(ORG_1),
            fine: None,
            restricted: false,
        }));
        for (i, d) in details.iter_mut().enumerate() {
            d.case_id = format!("XW-N-{i}");
        }
        let mut r = QuarterlyReport::new(
            q(),
            Uscc::parse(UNIT_A).unwrap(),
            "u".into(),
            Origin::Computed,
            details,
            vec![],
        );
        // Generated on 10 April 2026 (CST): the second penalty's publicity ended the day before.
        r.generated_at = chrono::DateTime::parse_from_rfc3339("2026-04-09T16:30:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let rows = public_rows(&r);
        let row = |id: &str| rows.iter().find(|x| x.case_id == id).unwrap();
        assert_eq!(row("XW-N-0").party_name, "张*");
        assert_eq!(row("XW-N-0").title, "张*申请食品经营许可");
        assert_eq!(row("XW-N-0").decision, "张*申请食品经营许可，依法处理");
        assert_eq!(row("XW-N-1").party_name, "张*");
        assert_eq!(row("XW-N-2").party_name, "李四");
        assert_eq!(row("XW-N-2").title, "李四占道经营案");
        assert!(
            !row("XW-N-3").party_name.contains('*'),
            "an organisation is named in full"
        );
        // No output names the person whose name may not be published.
        let dir = tempfile::tempdir().unwrap();
        for p in Format::ALL
            .iter()
            .flat_map(|&f| write(q(), std::slice::from_ref(&r), f, dir.path()).unwrap())
        {
            let text = text_of(&p);
            assert!(!text.contains("张三"), "{}: names 张三", p.display());
            assert!(text.contains("李四"), "{}", p.display());
        }
    }

    #[test]
    fn sheet_names_are_valid_and_unique() {
        let long = LONG_NAME;
        let names = sheet_names([
            (long, UNIT_A),
            (long, UNIT_B),
            ("'history'", UNIT_C),
            ("  ", UNIT_C),
            ("Unit", UNIT_A),
            ("UNIT", UNIT_B),
        ]);
        for n in &names {
            assert!(n.encode_utf16().count() <= 31, "{n}");
            assert!(!n.contains(['[', ']', ':', '*', '?', '/', '\\']), "{n}");
            assert!(!n.starts_with('\'') && !n.ends_with('\''), "{n}");
        }
        assert_eq!(
            names[0],
            "南京市玄武区综合行政执法局_城管_试点__特别长的部门名称用于"
        );
        assert!(names[1].ends_with("(2)"));
        assert_eq!(names[2], "history(2)");
        assert_eq!(names[3], UNIT_C);
        assert_eq!(names[5], "UNIT(2)");
    }

    #[test]
    fn no_output_holds_a_resident_id_or_a_restricted_case() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_all_formats(dir.path());
        // 3 CSV + 1 XLSX + 1 HTML, and nothing else left in the directory (no temporaries).
        assert_eq!(paths.len(), 5);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 5);
        let ids = person_ids();
        for p in &paths {
            let text = text_of(p);
            let found = resident_ids_in(&text);
            assert!(
                found.is_empty(),
                "{}: holds resident IDs {found:?}",
                p.display()
            );
            for r in RESTRICTED_TITLES.iter().chain(&RESTRICTED_IDS) {
                assert!(!text.contains(r), "{}: shows restricted {r}", p.display());
            }
            // The restricted cases' parties (persons 3 and 4) do not show up even masked.
            for id in &ids[3..] {
                assert!(!text.contains(&masked(id)), "{}", p.display());
            }
        }
        // The masked forms of the public persons do appear (ids 0 and 1 in unit A, 2 in unit C).
        let all: String = paths.iter().map(|p| text_of(p)).collect();
        for id in &ids[..3] {
            assert!(all.contains(&masked(id)), "{} missing", masked(id));
        }
        assert!(ids[2].ends_with('X') && all.contains(&masked(&ids[2])));
    }

    #[test]
    fn csv_per_department_with_bom_and_expected_rows() {
        let dir = tempfile::tempdir().unwrap();
        let rs = reports();
        let paths = write(q(), &rs, Format::Csv, dir.path()).unwrap();
        let names: Vec<String> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                format!("2018Q4-{UNIT_A}.csv"),
                format!("2018Q4-{UNIT_B}.csv"),
                format!("2018Q4-{UNIT_C}.csv")
            ]
        );
        for p in &paths {
            let bytes = fs::read(p).unwrap();
            assert!(bytes.starts_with(BOM), "{}", p.display());
            let unit = p.file_stem().unwrap().to_string_lossy()[7..].to_string();
            let r = rs.iter().find(|r| r.unit_code.as_str() == unit).unwrap();
            let mut rd = csv::Reader::from_reader(&bytes[BOM.len()..]);
            let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
            assert_eq!(header, HEADERS);
            let got: Vec<Vec<String>> = rd
                .records()
                .map(|rec| rec.unwrap().iter().map(String::from).collect())
                .collect();
            let want: Vec<Vec<String>> = public_rows(r)
                .iter()
                .enumerate()
                .map(|(i, row)| row.cells(i + 1).map(csv_cell).to_vec())
                .collect();
            assert_eq!(got, want, "{}", p.display());
        }
        let a = String::from_utf8(fs::read(&paths[0]).unwrap()).unwrap();
        assert!(a.contains("12345.50"), "fine in 元");
        // The formula-looking title is neutralised as text in CSV.
        let c = String::from_utf8(fs::read(&paths[2]).unwrap()).unwrap();
        assert!(c.contains(&format!("'{FORMULA_TITLE}")));
    }

    #[test]
    fn xlsx_one_sheet_per_department() {
        let dir = tempfile::tempdir().unwrap();
        let rs = reports();
        let paths = write(q(), &rs, Format::Xlsx, dir.path()).unwrap();
        assert_eq!(paths.len(), 1);
        assert!(paths[0].ends_with("2018Q4-disclosure.xlsx"));
        let mut wb: Xlsx<_> = open_workbook(&paths[0]).unwrap();
        let expected = [
            (UNIT_A, "南京市玄武区市场监督管理局".to_string(), 5),
            (UNIT_B, "南京市玄武区卫生健康委员会".to_string(), 2),
            (
                UNIT_C,
                "南京市玄武区综合行政执法局_城管_试点__特别长的部门名称用于".to_string(),
                2,
            ),
        ];
        assert_eq!(
            wb.sheet_names(),
            expected.iter().map(|e| e.1.clone()).collect::<Vec<_>>()
        );
        for (unit, name, n) in &expected {
            let range = wb.worksheet_range(name).unwrap();
            let rows: Vec<&[Data]> = range.rows().collect();
            let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
            assert_eq!(header, HEADERS, "{name}");
            assert_eq!(rows.len() - 1, *n, "{name}");
            let r = rs.iter().find(|r| r.unit_code.as_str() == *unit).unwrap();
            assert_eq!(rows.len() - 1, public_rows(r).len());
        }
        let a = wb.worksheet_range(&expected[0].1).unwrap();
        // Row 1 is the first penalty by case number: the hostile title, kept as text, and its fine.
        assert_eq!(a.get_value((1, 2)), Some(&Data::String(NASTY_TITLE.into())));
        assert_eq!(a.get_value((1, 1)), Some(&Data::String("行政处罚".into())));
        assert_eq!(a.get_value((1, 8)), Some(&Data::Float(12345.5)));
        assert_eq!(
            a.get_value((2, 6)),
            Some(&Data::String(masked(&person_ids()[0])))
        );
        // XLSX cells are typed: the formula-looking title is stored as plain text, unprefixed.
        let c = wb.worksheet_range(&expected[2].1).unwrap();
        assert_eq!(
            c.get_value((1, 2)),
            Some(&Data::String(FORMULA_TITLE.into()))
        );
    }

    #[test]
    fn a_revoked_decision_is_shown_apart_and_not_in_the_fine_totals() {
        let case = |id, fine| Case {
            id,
            title: "处罚案",
            action: Action::Penalty,
            person: None,
            org: Some(ORG_1),
            fine: Some(fine),
            restricted: false,
        };
        let mut details: Vec<Detail> = [case("XW-1", 500_000), case("XW-2", 120_000)]
            .iter()
            .map(detail)
            .collect();
        details[1].status = CaseStatus::Revoked;
        let r = QuarterlyReport::new(
            q(),
            Uscc::parse(UNIT_A).unwrap(),
            "南京市玄武区市场监督管理局".into(),
            Origin::Computed,
            details,
            vec![],
        );
        let dir = tempfile::tempdir().unwrap();
        let paths = write(q(), &[r], Format::Html, dir.path()).unwrap();
        let html = fs::read_to_string(&paths[0]).unwrap();
        assert!(html.contains("已撤销的决定单列，其罚款不计入合计"));
        assert!(
            html.contains("罚款合计 5000.00 元 · 已撤销 1 件（罚款 1200.00 元，不计入合计）"),
            "{html}"
        );
        let summary = &html[html.find("id=\"summary\"").unwrap()..html.find("</tfoot>").unwrap()];
        assert!(
            summary.contains(r#"<td class="num">5000.00</td>"#),
            "{summary}"
        );
        assert!(!summary.contains("6200.00"), "{summary}");
    }

    #[test]
    fn html_is_self_contained_escaped_and_summarised() {
        let dir = tempfile::tempdir().unwrap();
        let rs = reports();
        let paths = write(q(), &rs, Format::Html, dir.path()).unwrap();
        assert_eq!(paths.len(), 1);
        assert!(paths[0].ends_with("2018Q4-disclosure.html"));
        let html = fs::read_to_string(&paths[0]).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"zh-CN\">"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("<title>2018Q4 行政执法季度公示</title>"));
        assert_eq!(html.matches("<svg").count(), 3);
        // Escaped, never raw; no scripts or external resources at all.
        assert!(!html.contains("<script"));
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;引号&quot; &#39;q&#39; 案"));
        for bad in ["src=", "<link", "url(", "@import", "http:", "https:"] {
            assert!(!html.contains(bad), "{bad}");
        }
        // Departments by unit code.
        let pos = |s: &str| html.find(&format!("id=\"u-{s}\"")).unwrap();
        assert!(pos(UNIT_A) < pos(UNIT_B) && pos(UNIT_B) < pos(UNIT_C));
        // Summary: unit A has 2 public penalties (not 3), 5 cases, 17345.50 元; the total row
        // has 4 penalties, 9 cases, 40345.50 元.
        let summary = &html[html.find("id=\"summary\"").unwrap()..html.find("</tfoot>").unwrap()];
        let row_a = &summary[summary.find(UNIT_A).unwrap()..];
        let row_a = &row_a[..row_a.find("</tr>").unwrap()];
        assert!(row_a.contains(
            r#"<td class="num">2</td><td class="num">1</td><td class="num">1</td><td class="num">0</td><td class="num">1</td><td class="num">0</td><td class="num">5</td><td class="num">17345.50</td>"#
        ), "{row_a}");
        let foot = &summary[summary.find("<tfoot>").unwrap()..];
        assert!(foot.contains(
            r#"<td class="num">4</td><td class="num">1</td><td class="num">1</td><td class="num">1</td><td class="num">1</td><td class="num">1</td><td class="num">9</td><td class="num">40345.50</td>"#
        ), "{foot}");
    }

    #[test]
    fn html_renders_in_headless_chromium() {
        let Some(chromium) = chromium() else {
            println!("SKIPPED: chromium not installed (.ci/run installs it)");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let paths = write(q(), &reports(), Format::Html, dir.path()).unwrap();
        let shot = dir.path().join("shot.png");
        let mut child = std::process::Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                &format!("--user-data-dir={}", dir.path().join("profile").display()),
                &format!("--screenshot={}", shot.display()),
                "--window-size=1280,2000",
                &format!("file://{}", paths[0].display()),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // A wedged browser must fail the test, not hang CI.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("chromium did not finish within 120 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        assert!(status.success(), "chromium exited with {status}");
        let size = fs::metadata(&shot).unwrap().len();
        assert!(size > 10 * 1024, "screenshot is only {size} bytes");
    }

    fn chromium() -> Option<PathBuf> {
        let fixed = PathBuf::from("/usr/bin/chromium");
        if fixed.is_file() {
            return Some(fixed);
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|d| [d.join("chromium"), d.join("chromium-browser")])
            .find(|p| p.is_file())
    }

    #[test]
    fn refuses_other_quarters_and_duplicate_units_writing_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut rs = reports();
        rs[0].quarter = Quarter::new(2018, 3).unwrap();
        let e = write(q(), &rs, Format::Csv, &out).unwrap_err();
        assert!(matches!(e, DiscloseError::WrongQuarter { .. }), "{e}");
        assert!(e.to_string().contains(UNIT_C) && e.to_string().contains("2018Q3"));
        let mut rs = reports();
        rs.push(rs[1].clone());
        let e = write(q(), &rs, Format::Html, &out).unwrap_err();
        assert!(matches!(e, DiscloseError::DuplicateUnit { .. }), "{e}");
        assert!(!out.exists());
    }

    #[test]
    fn io_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let e = write(q(), &reports(), Format::Html, &blocker.join("sub")).unwrap_err();
        assert!(matches!(e, DiscloseError::Io { .. }));
        assert!(e.to_string().contains("file/sub"), "{e}");
    }

    #[test]
    fn no_reports_still_make_valid_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write(q(), &[], Format::Csv, dir.path()).unwrap().is_empty());
        let x = write(q(), &[], Format::Xlsx, dir.path()).unwrap();
        let mut wb: Xlsx<_> = open_workbook(&x[0]).unwrap();
        assert_eq!(wb.sheet_names(), ["2018Q4"]);
        assert_eq!(wb.worksheet_range("2018Q4").unwrap().height(), 1);
        let h = write(q(), &[], Format::Html, dir.path()).unwrap();
        let html = fs::read_to_string(&h[0]).unwrap();
        assert!(!html.contains("<svg"));
    }
}
