//! XLSX decoder: reads one worksheet with calamine's streaming cell reader, checks it whole before
//! handing out any record, takes the first non-empty row as the header and streams the rows below
//! it as records, numbered as Excel shows them.
//!
//! Memory: the zip directory, the shared-strings table and the styles are held by calamine for the
//! whole read (they are workbook-wide); cells are streamed, never the whole sheet range. Before
//! calamine opens anything, [`precheck`] bounds all of it: the number of entries, their declared
//! and actual inflated sizes, each entry's compression ratio, and the shared strings (the table
//! size declared and the strings held), so that a small file cannot make the library reserve or
//! inflate gigabytes.
//!
//! Cell positions: calamine turns a cell reference into a position with unchecked `u32`
//! arithmetic, so a reference far beyond Excel's sheet panics a build with overflow checks and
//! wraps in a release build. The panic is contained ([`contained`]); the whole-sheet check
//! ([`scan`]) refuses a position beyond Excel's last cell, which is where a wrapped one lands
//! unless the file was built to aim it (and whoever builds the file chooses its cells anyway).
//! That costs nothing; a precheck reading every reference from the sheet XML cost a third of the
//! decoder's speed (`cargo bench --bench xlsx`, BENCHMARKS.md).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use calamine::{DataRef, Reader, Xlsx, XlsxError};

use super::text::{self, RecordSender};
use super::{
    Column, FileError, LimitError, Location, RawRecord, RecordError, Records, bytes_shown,
};

type Workbook = Xlsx<BufReader<File>>;

/// Opens an XLSX workbook and streams the rows of `sheet` (the first sheet when `None`).
///
/// Refuses the file ([`FileError`]) when it cannot be read ([`FileError::Io`]), is not a readable
/// XLSX workbook or the sheet is absent or unreadable ([`FileError::Malformed`]), the sheet holds no
/// non-empty row ([`FileError::Empty`]), or the header lacks a required column. The whole sheet is
/// read once to check it, then read again to stream the records.
pub(super) fn open(
    path: &Path,
    sheet: Option<&str>,
    columns: &[Column],
    limits: &super::Limits,
) -> Result<Records, FileError> {
    precheck(path, limits)?;
    let (workbook, sheet, header) = contained(|| open_sheet(path, sheet))?;
    let mut targets = Vec::with_capacity(columns.len());
    let mut missing = Vec::new();
    for column in columns {
        let col = header
            .cells
            .iter()
            .find(|(_, name)| *name == column.name)
            .map(|(col, _)| *col);
        if col.is_none() && column.required {
            missing.push(column.name.clone());
        }
        targets.push(col);
    }
    if !missing.is_empty() {
        return Err(FileError::MissingColumns(missing));
    }

    let header_row = header.row;
    text::spawn_records(
        path,
        "xlsx-decode",
        Location::Row(u64::from(header_row) + 1),
        move |tx| {
            stream(workbook, &sheet, header_row, &targets, tx);
        },
    )
}

/// Runs `read` (calamine opening and checking the workbook) so that a panic inside the library
/// (an overflowing cell reference, in a build with overflow checks) refuses the file instead of
/// taking the decoding thread down. The streaming pass after it reports a panic as a record error.
fn contained<T>(read: impl FnOnce() -> Result<T, FileError>) -> Result<T, FileError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).map_err(|_| {
        FileError::Malformed {
            format: "XLSX",
            reason: "the spreadsheet reader failed on this workbook; the file was not read: \
                     save it again from Excel or export it again from the source system, then \
                     put it back in the inbox"
                .into(),
        }
    })?
}

/// Opens the workbook at `path` and checks its sheet `sheet` (the first when `None`) whole:
/// the workbook, the sheet's name and its header row.
fn open_sheet(path: &Path, sheet: Option<&str>) -> Result<(Workbook, String, Header), FileError> {
    let file = text::open_file(path)?;
    let mut workbook: Workbook =
        calamine::open_workbook_from_rs(BufReader::new(file)).map_err(malformed)?;
    let names = workbook.sheet_names();
    let sheet = match sheet {
        Some(wanted) => match names.iter().find(|n| n.as_str() == wanted) {
            Some(name) => name.clone(),
            None => {
                return Err(FileError::Malformed {
                    format: "XLSX",
                    reason: format!(
                        "the workbook has no sheet named \"{wanted}\"; its sheets are: {}",
                        quoted_list(&names)
                    ),
                });
            }
        },
        None => match names.first() {
            Some(name) => name.clone(),
            None => return Err(FileError::Empty),
        },
    };

    let header = scan(&mut workbook, &sheet)?;
    Ok((workbook, sheet, header))
}

/// Entries smaller than this are not held to the ratio: tiny parts compress oddly and cannot
/// inflate to anything that matters.
const RATIO_FROM: u64 = 1024 * 1024;

/// Checks the archive against the XLSX limits before the spreadsheet library opens it: entry
/// count, declared sizes and ratios from the directory, then every entry inflated once into a
/// counter (never into memory) to hold it to its declared size, the shared strings counted on
/// the way.
fn precheck(path: &Path, limits: &super::Limits) -> Result<(), FileError> {
    let zip_error = |e: zip::result::ZipError| FileError::Malformed {
        format: "XLSX",
        reason: format!("not a readable XLSX (zip) archive: {e}"),
    };
    let mut zip =
        zip::ZipArchive::new(BufReader::new(text::open_file(path)?)).map_err(zip_error)?;
    let count = zip.len() as u64;
    if count > limits.xlsx_entries {
        return Err(LimitError::new(
            "xlsx_entries",
            limits.xlsx_entries,
            format!("the archive holds {count} entries"),
        )
        .into());
    }
    let mut total = 0u64;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(zip_error)?;
        let name = entry.name().map(|n| n.into_owned()).unwrap_or_default();
        let (size, packed) = (entry.size(), entry.compressed_size());
        total = total.saturating_add(size);
        if total > limits.xlsx_uncompressed_bytes {
            return Err(LimitError::new(
                "xlsx_uncompressed_mib",
                bytes_shown(limits.xlsx_uncompressed_bytes),
                format!(
                    "the entries inflate to more than that (reached at entry \"{name}\", declared {})",
                    bytes_shown(size)
                ),
            )
            .into());
        }
        if size >= RATIO_FROM && size / packed.max(1) > limits.xlsx_ratio {
            return Err(LimitError::new(
                "xlsx_ratio",
                limits.xlsx_ratio,
                format!(
                    "entry \"{name}\" inflates {}:1 ({} compressed to {})",
                    size / packed.max(1),
                    bytes_shown(size),
                    bytes_shown(packed)
                ),
            )
            .into());
        }
    }
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(zip_error)?;
        let name = entry.name().map(|n| n.into_owned()).unwrap_or_default();
        let declared = entry.size();
        let mut counted = Counted {
            inner: std::io::Read::take(entry, declared.saturating_add(1)),
            n: 0,
        };
        let read = if name.to_ascii_lowercase().ends_with("sharedstrings.xml") {
            shared_strings(&mut counted, &name, limits)
        } else {
            std::io::copy(&mut counted, &mut std::io::sink())
                .map(drop)
                .map_err(|e| FileError::Malformed {
                    format: "XLSX",
                    reason: format!("entry \"{name}\" cannot be inflated: {e}"),
                })
        };
        read?;
        if counted.n > declared {
            return Err(FileError::Malformed {
                format: "XLSX",
                reason: format!(
                    "entry \"{name}\" inflates to more than its declared {}",
                    bytes_shown(declared)
                ),
            });
        }
    }
    Ok(())
}

/// A reader that counts what passes through it.
struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Reads the shared-strings part through the XML guard and counts its strings: the declared
/// `uniqueCount` (a library reserves room for it) and the `<si>` elements it holds.
fn shared_strings(
    part: &mut impl std::io::Read,
    name: &str,
    limits: &super::Limits,
) -> Result<(), FileError> {
    use quick_xml::events::Event;
    let max = limits.xlsx_shared_strings;
    let over = |found: String| -> FileError {
        LimitError::new(
            "xlsx_shared_strings",
            max,
            format!("entry \"{name}\" {found}"),
        )
        .into()
    };
    let field = usize::try_from(limits.field_bytes).unwrap_or(usize::MAX);
    let guard = super::xml_guard::Guard::new(
        BufReader::with_capacity(64 * 1024, part),
        field,
        field.saturating_add(4096),
        false,
    );
    let mut xml = quick_xml::Reader::from_reader(guard);
    let mut buf = Vec::with_capacity(4096);
    let mut strings = 0u64;
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) => match e.local_name().as_ref() {
                "sst" => {
                    // `uniqueCount` is the table's size, what a library reserves room for.
                    // `count` is how many cells refer to the table: a large sheet of text
                    // legitimately has many more references than strings, so it is not held to
                    // the limit.
                    let declared = e
                        .try_get_attribute("uniqueCount")
                        .ok()
                        .flatten()
                        .and_then(|a| a.value.trim().parse::<u64>().ok());
                    if let Some(n) = declared.filter(|n| *n > max) {
                        return Err(over(format!("declares uniqueCount=\"{n}\"")));
                    }
                }
                "si" => {
                    strings += 1;
                    if strings > max {
                        return Err(over(format!("holds more than {max} strings")));
                    }
                }
                _ => {}
            },
            Ok(Event::Eof) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                return Err(FileError::Malformed {
                    format: "XLSX",
                    reason: format!("entry \"{name}\": {e}"),
                });
            }
        }
    }
}

fn malformed(err: XlsxError) -> FileError {
    FileError::Malformed {
        format: "XLSX",
        reason: err.to_string(),
    }
}

fn quoted_list(names: &[String]) -> String {
    if names.is_empty() {
        return "(none)".to_string();
    }
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The header row: its 0-based sheet row and each non-empty cell's column and trimmed text.
struct Header {
    row: u32,
    cells: Vec<(u32, String)>,
}

/// Excel's sheet: columns A to XFD, rows 1 to 1,048,576 (0-based positions below these).
const EXCEL_COLUMNS: u32 = 16_384;
const EXCEL_ROWS: u32 = 1_048_576;

/// Reads the whole sheet once so that a damaged sheet, or one with a cell beyond Excel's bounds, is
/// refused before any record is stored, and finds the header on the way.
fn scan(workbook: &mut Workbook, sheet: &str) -> Result<Header, FileError> {
    let sheet_error = |e: XlsxError| FileError::Malformed {
        format: "XLSX",
        reason: format!("sheet \"{sheet}\": {e}"),
    };
    let mut cells = workbook
        .worksheet_cells_reader(sheet)
        .map_err(sheet_error)?;
    let mut header: Option<Header> = None;
    while let Some(cell) = cells.next_cell().map_err(sheet_error)? {
        let (row, col) = cell.get_position();
        if col >= EXCEL_COLUMNS || row >= EXCEL_ROWS {
            return Err(FileError::Malformed {
                format: "XLSX",
                reason: format!(
                    "sheet \"{sheet}\": a cell reference lies beyond Excel's last cell XFD1048576 \
                     (read as row {}, column {}); the file was not read: save it again from \
                     Excel or export it again from the source system, then put it back in the inbox",
                    u64::from(row) + 1,
                    u64::from(col) + 1
                ),
            });
        }
        let value = cell.get_value();
        if is_blank(value) {
            continue;
        }
        match &mut header {
            None => {
                header = Some(Header {
                    row,
                    cells: vec![(col, header_text(value))],
                });
            }
            Some(h) if h.row == row => h.cells.push((col, header_text(value))),
            Some(_) => {}
        }
    }
    header.ok_or(FileError::Empty)
}

fn is_blank(value: &DataRef<'_>) -> bool {
    match value {
        DataRef::Empty => true,
        DataRef::String(s) => s.is_empty(),
        DataRef::SharedString(s) => s.is_empty(),
        _ => false,
    }
}

fn header_text(value: &DataRef<'_>) -> String {
    match cell_text(value) {
        Ok(Some(text)) => text.trim().to_string(),
        Ok(None) => String::new(),
        // A header cell holding an error can only match a column literally named like it.
        Err(e) => e.to_string(),
    }
}

/// The text of a cell as documented on [`RawRecord`]; `Err` carries a spreadsheet error value.
fn cell_text(value: &DataRef<'_>) -> Result<Option<String>, calamine::CellErrorType> {
    Ok(Some(match value {
        DataRef::Empty => return Ok(None),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => float_text(*f),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(dt) if dt.is_duration() => duration_text(dt.as_f64()),
        DataRef::DateTime(dt) => {
            let (y, mo, d, h, mi, s, _milli) = dt.to_ymd_hms_milli();
            // Milliseconds are dropped: source systems keep dates to the second at most.
            if (h, mi, s) == (0, 0, 0) {
                format!("{y:04}-{mo:02}-{d:02}")
            } else {
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
            }
        }
        DataRef::Error(e) => return Err(e.clone()),
    }))
}

/// Rust's `Display` for `f64` is the shortest text that round-trips and never uses an exponent,
/// and prints whole numbers without `.0`, which is what an operator typed into the cell.
fn float_text(f: f64) -> String {
    if f == 0.0 {
        "0".to_string()
    } else {
        f.to_string()
    }
}

/// A duration cell (`[h]:mm:ss`) as hours, minutes and seconds.
fn duration_text(days: f64) -> String {
    let total = (days * 86_400.0).round();
    let sign = if total < 0.0 { "-" } else { "" };
    // Saturating float-to-int conversion; durations beyond u64 seconds do not occur.
    let total = total.abs() as u64;
    format!(
        "{sign}{}:{:02}:{:02}",
        total / 3600,
        total / 60 % 60,
        total % 60
    )
}

/// Excel column letters for a 0-based column index (0 → `A`, 26 → `AA`).
fn column_letters(col: u32) -> String {
    let mut n = u64::from(col) + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        letters.push(char::from(b'A' + rem));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// One data row being assembled from its cells.
struct PendingRow {
    row: u32,
    values: Vec<Option<String>>,
    error: Option<String>,
    has_content: bool,
}

impl PendingRow {
    fn new(row: u32, width: usize) -> Self {
        PendingRow {
            row,
            values: vec![None; width],
            error: None,
            has_content: false,
        }
    }

    fn finish(self) -> Option<Result<RawRecord, RecordError>> {
        if !self.has_content {
            return None;
        }
        let location = Location::Row(u64::from(self.row) + 1);
        Some(match self.error {
            Some(reason) => Err(RecordError {
                location,
                reason,
                excerpt: None,
            }),
            None => Ok(RawRecord::new(location, self.values, Vec::new())),
        })
    }
}

/// Second pass, on the background thread: streams the rows below the header.
fn stream(
    mut workbook: Workbook,
    sheet: &str,
    header_row: u32,
    targets: &[Option<u32>],
    tx: &RecordSender,
) {
    let mut cells = match workbook.worksheet_cells_reader(sheet) {
        Ok(cells) => cells,
        Err(e) => {
            tx.send(Err(RecordError {
                location: Location::Row(u64::from(header_row) + 1),
                reason: format!("sheet \"{sheet}\" could no longer be read: {e}"),
                excerpt: None,
            }));
            return;
        }
    };
    let mut pending: Option<PendingRow> = None;
    loop {
        let cell = match cells.next_cell() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(e) => {
                let row = pending.as_ref().map_or(header_row, |p| p.row);
                tx.send(Err(RecordError {
                    location: Location::Row(u64::from(row) + 1),
                    reason: format!(
                        "sheet \"{sheet}\" became unreadable after this row: {e}; the rest was not read"
                    ), excerpt: None,
                }));
                return;
            }
        };
        let (row, col) = cell.get_position();
        if row <= header_row {
            continue;
        }
        if pending.as_ref().is_some_and(|p| p.row != row)
            && let Some(item) = pending.take().and_then(PendingRow::finish)
            && !tx.send(item)
        {
            return;
        }
        let current = pending.get_or_insert_with(|| PendingRow::new(row, targets.len()));
        let value = cell.get_value();
        if is_blank(value) {
            continue;
        }
        current.has_content = true;
        for (i, target) in targets.iter().enumerate() {
            if *target != Some(col) {
                continue;
            }
            match cell_text(value) {
                Ok(text) => current.values[i] = text,
                Err(e) => {
                    if current.error.is_none() {
                        current.error = Some(format!(
                            "cell {}{} holds the spreadsheet error {e}",
                            column_letters(col),
                            u64::from(row) + 1
                        ));
                    }
                }
            }
        }
    }
    if let Some(item) = pending.and_then(PendingRow::finish) {
        tx.send(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook as Writer};

    fn cols(names: &[(&str, bool)]) -> Vec<Column> {
        names
            .iter()
            .map(|(n, r)| Column {
                name: n.to_string(),
                required: *r,
            })
            .collect()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    /// A cell reference beyond Excel's last cell refuses the file with a reason: one just past it
    /// (which calamine reads as a position) and one whose column overflows calamine's `u32`
    /// arithmetic (26^8 > 2^32; a panic contained in this build, a wrapped position in a release
    /// build, both refused).
    #[test]
    fn a_cell_reference_beyond_excel_refuses_the_file() {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("adapters/market-inspection/cases/mixed.xlsx");
        let limits = crate::ingest::Limits::default();
        // The golden file itself opens; only the edited reference makes the difference.
        assert!(open(&golden, None, &cols(&[]), &limits).is_ok());
        let tmp = tempfile::tempdir().unwrap();
        for (far, says) in [
            (
                "XFE1",
                "beyond Excel's last cell XFD1048576 (read as row 1, column 16385)",
            ),
            (
                "A1048577",
                "beyond Excel's last cell XFD1048576 (read as row 1048577, column 1)",
            ),
            ("AAAAAAAA1", "the file was not read"),
        ] {
            let path = tmp.path().join(format!("{far}.xlsx"));
            rewrite_entry(&golden, &path, "xl/worksheets/sheet1.xml", |text| {
                assert!(text.contains("<c r=\"A1\""));
                text.replacen("<c r=\"A1\"", &format!("<c r=\"{far}\""), 1)
            });
            match open(&path, None, &cols(&[]), &limits) {
                Err(FileError::Malformed { format, reason }) => {
                    assert_eq!(format, "XLSX");
                    assert!(reason.contains(says), "{far}: {reason}");
                    assert!(
                        reason.contains("put it back in the inbox"),
                        "{far}: {reason}"
                    );
                }
                Err(other) => panic!("{far}: unexpected {other}"),
                Ok(_) => panic!("{far}: accepted"),
            }
        }
    }

    /// The shared-strings limit holds the table's size, not how many cells refer to it: a sheet
    /// repeating a few strings in many cells opens under a limit smaller than its references.
    #[test]
    fn many_references_to_few_shared_strings_open() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("repeated.xlsx");
        let mut book = Writer::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 0, "状态").unwrap();
        for row in 1..=20 {
            sheet.write_string(row, 0, "已办结").unwrap();
        }
        book.save(&path).unwrap();
        let limits = crate::ingest::Limits {
            xlsx_shared_strings: 5,
            ..Default::default()
        };
        let records: Vec<_> = open(&path, None, &cols(&[("状态", true)]), &limits)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(records.len(), 20);
        assert!(records.iter().all(|r| r.value(0) == Some("已办结")));
        // More distinct strings than the limit is still refused.
        let limits = crate::ingest::Limits {
            xlsx_shared_strings: 1,
            ..Default::default()
        };
        assert!(matches!(
            open(&path, None, &cols(&[]), &limits),
            Err(FileError::Limit(l)) if l.key == "xlsx_shared_strings"
        ));
    }

    /// A panic inside the library while opening refuses the file with an actionable reason.
    #[test]
    fn a_panic_while_opening_refuses_the_file() {
        let outcome: Result<(), FileError> = contained(|| panic!("inside the library"));
        match outcome {
            Err(FileError::Malformed { format, reason }) => {
                assert_eq!(format, "XLSX");
                assert!(reason.contains("the file was not read"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(contained(|| Ok(7)).unwrap(), 7);
    }

    /// Copies the XLSX archive `from` to `to` with entry `name`'s text changed by `edit`.
    fn rewrite_entry(from: &Path, to: &Path, name: &str, edit: impl Fn(&str) -> String) {
        use std::io::{Read, Write};
        let mut zip = zip::ZipArchive::new(File::open(from).unwrap()).unwrap();
        let mut out = zip::ZipWriter::new(File::create(to).unwrap());
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).unwrap();
            let entry_name = entry.name().unwrap().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            if entry_name == name {
                bytes = edit(std::str::from_utf8(&bytes).unwrap()).into_bytes();
            }
            out.start_file(entry_name, zip::write::SimpleFileOptions::default())
                .unwrap();
            out.write_all(&bytes).unwrap();
        }
        out.finish().unwrap();
    }

    /// The archive checks, each against the golden workbook with one limit lowered.
    #[test]
    fn archive_limits_refuse_the_file_before_the_library_opens_it() {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("adapters/market-inspection/cases/mixed.xlsx");
        let columns = cols(&[]);
        let refused = |limits: crate::ingest::Limits| match open(&golden, None, &columns, &limits) {
            Err(FileError::Limit(l)) => l,
            Err(other) => panic!("unexpected {other}"),
            Ok(_) => panic!("accepted"),
        };
        let d = crate::ingest::Limits::default();
        let l = refused(crate::ingest::Limits {
            xlsx_entries: 4,
            ..d.clone()
        });
        assert_eq!(l.key, "xlsx_entries");
        assert!(l.found.contains("holds 10 entries"), "{l}");
        let l = refused(crate::ingest::Limits {
            xlsx_shared_strings: 3,
            ..d.clone()
        });
        assert_eq!(l.key, "xlsx_shared_strings");
        assert!(
            l.found.contains("sharedStrings.xml") && l.found.contains("declares uniqueCount=\""),
            "{l}"
        );
        let l = refused(crate::ingest::Limits {
            xlsx_uncompressed_bytes: 10_000,
            ..d.clone()
        });
        assert_eq!(l.key, "xlsx_uncompressed_mib");
        // Within the defaults it opens.
        assert!(open(&golden, None, &columns, &d).is_ok());
    }

    fn sample(path: &Path) {
        let mut book = Writer::new();
        let sheet = book.add_worksheet();
        sheet.set_name("案件").unwrap();
        let date = Format::new().set_num_format("yyyy-mm-dd");
        let datetime = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
        // The table starts at B3 so that the range offset matters; row 2 is entirely empty.
        sheet.write_string(2, 1, " 案件编号 ").unwrap();
        sheet.write_string(2, 2, "金额").unwrap();
        sheet.write_string(2, 3, "日期").unwrap();
        sheet.write_string(2, 4, "已结案").unwrap();
        sheet.write_string(2, 5, "备注").unwrap();
        sheet.write_string(3, 1, "A001").unwrap();
        sheet.write_number(3, 2, 1234.5).unwrap();
        let d = ExcelDateTime::from_ymd(2024, 3, 1).unwrap();
        sheet.write_datetime_with_format(3, 3, &d, &date).unwrap();
        sheet.write_boolean(3, 4, true).unwrap();
        sheet.write_string(4, 1, "A002").unwrap();
        sheet.write_number(4, 2, 12.0).unwrap();
        let dt = ExcelDateTime::from_ymd(2024, 3, 2)
            .unwrap()
            .and_hms(13, 5, 9)
            .unwrap();
        sheet
            .write_datetime_with_format(4, 3, &dt, &datetime)
            .unwrap();
        sheet.write_string(4, 5, " 备注 ").unwrap();
        // Row 6 (index 5) is blank but formatted: skipped.
        sheet.write_blank(5, 1, &date).unwrap();
        sheet.write_string(6, 1, "A003").unwrap();
        sheet
            .write_formula(6, 2, Formula::new("=1/0").set_result("#DIV/0!"))
            .unwrap();
        sheet.write_string(7, 1, "A004").unwrap();
        book.add_worksheet().set_name("Other").unwrap();
        book.save(path).unwrap();
    }

    #[test]
    fn happy_path_with_types_and_locations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cases.xlsx");
        sample(&path);
        let columns = cols(&[
            ("案件编号", true),
            ("金额", true),
            ("日期", false),
            ("已结案", false),
            ("备注", false),
            ("无", false),
        ]);
        let out: Vec<_> = open(&path, None, &columns, &crate::ingest::Limits::default())
            .unwrap()
            .collect();
        assert_eq!(
            out,
            vec![
                Ok(RawRecord::new(
                    Location::Row(4),
                    vec![
                        s("A001"),
                        s("1234.5"),
                        s("2024-03-01"),
                        s("true"),
                        None,
                        None
                    ],
                    Vec::new()
                )),
                Ok(RawRecord::new(
                    Location::Row(5),
                    vec![
                        s("A002"),
                        s("12"),
                        s("2024-03-02T13:05:09"),
                        None,
                        s(" 备注 "),
                        None
                    ],
                    Vec::new()
                )),
                Err(RecordError {
                    location: Location::Row(7),
                    reason: "cell C7 holds the spreadsheet error #DIV/0!".into(),
                    excerpt: None,
                }),
                Ok(RawRecord::new(
                    Location::Row(8),
                    vec![s("A004"), None, None, None, None, None],
                    Vec::new()
                )),
            ]
        );
        assert!(matches!(
            open(&path, Some("Other"), &[], &crate::ingest::Limits::default()),
            Err(FileError::Empty)
        ));
    }

    #[test]
    fn missing_sheet_and_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cases.xlsx");
        sample(&path);
        match open(
            &path,
            Some("Sheet9"),
            &[],
            &crate::ingest::Limits::default(),
        ) {
            Err(FileError::Malformed {
                format: "XLSX",
                reason,
            }) => assert_eq!(
                reason,
                "the workbook has no sheet named \"Sheet9\"; its sheets are: \"案件\", \"Other\""
            ),
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => panic!("accepted a missing sheet"),
        }
        match open(
            &path,
            Some("案件"),
            &cols(&[("金额", true), ("当事人", true), ("x", false)]),
            &crate::ingest::Limits::default(),
        ) {
            Err(FileError::MissingColumns(names)) => assert_eq!(names, vec!["当事人"]),
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => panic!("accepted missing columns"),
        }
    }

    #[test]
    fn truncated_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cases.xlsx");
        sample(&path);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        match open(&path, None, &[], &crate::ingest::Limits::default()) {
            Err(FileError::Malformed {
                format: "XLSX",
                reason,
            }) => assert!(!reason.is_empty()),
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => panic!("accepted a truncated workbook"),
        }
        std::fs::write(&path, b"id,name\n1,x\n").unwrap();
        assert!(matches!(
            open(&path, None, &[], &crate::ingest::Limits::default()),
            Err(FileError::Malformed { format: "XLSX", .. })
        ));
        assert!(matches!(
            open(
                &dir.path().join("absent.xlsx"),
                None,
                &[],
                &crate::ingest::Limits::default()
            ),
            Err(FileError::Io { .. })
        ));
    }

    #[test]
    fn conversions() {
        assert_eq!(float_text(1234.5), "1234.5");
        assert_eq!(float_text(12.0), "12");
        assert_eq!(float_text(-0.0), "0");
        assert_eq!(float_text(0.1), "0.1");
        assert_eq!(duration_text(1.5), "36:00:00");
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(10), "K");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }
}
