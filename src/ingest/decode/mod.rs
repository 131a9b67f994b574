//! Decoders: turn one source file (CSV, XLSX, XML, JSON, JSON Lines; UTF-8 or GB18030/GBK) into a
//! stream of raw records holding the columns an adapter asked for.
//!
//! Contract: [`open`] first checks that the whole file can be read (text encoding, well-formed XML
//! without DOCTYPE/entities, valid JSON, readable XLSX, required CSV/XLSX columns present) and refuses
//! it whole with a [`FileError`] otherwise — so no record of an unreadable file is ever stored. It then
//! returns an iterator that streams records without holding the file in memory (XLSX excepted: its
//! sheet XML is compressed and read by calamine). A record that is malformed on its own (a CSV row with
//! the wrong number of fields, an XML record with nested elements where text was expected) is a
//! [`RecordError`]: the caller quarantines it and goes on.

use std::path::Path;

use serde::{Deserialize, Serialize};

mod csv;
mod json;
mod text;
mod xlsx;
pub(crate) mod xml;

pub use text::Encoding;

/// Where a record stands in its file, for quarantine entries and error messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// CSV or XLSX data row, 1-based, counting the header row as row 1 (what a spreadsheet shows).
    Row(u64),
    /// JSON Lines line, 1-based.
    Line(u64),
    /// JSON array element, 0-based index.
    Index(u64),
    /// XML element path with 1-based sibling index, e.g. `/SGS_DATA/RECORDS/XZCF[17]`.
    Element(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Row(n) => write!(f, "row {n}"),
            Location::Line(n) => write!(f, "line {n}"),
            Location::Index(n) => write!(f, "element [{n}]"),
            Location::Element(p) => write!(f, "element {p}"),
        }
    }
}

/// File format and its options, as declared in an adapter's `[format]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Delimited text with a header row.
    Csv {
        /// Text encoding; a BOM in the file wins.
        encoding: Encoding,
        /// Field delimiter (default `,`).
        delimiter: u8,
    },
    /// Excel workbook; the first row of the sheet is the header.
    Xlsx {
        /// Sheet name; `None` means the first sheet.
        sheet: Option<String>,
    },
    /// XML; each element matched by `record_path` is one record, its child elements' text and its
    /// attributes (`@name`) are the columns, and `@record` is the record element's own name.
    Xml {
        /// Text encoding; a BOM wins.
        encoding: Encoding,
        /// Slash-separated element names from the root; the last step may be `*` (any element).
        record_path: Vec<String>,
    },
    /// A JSON array of objects.
    Json {
        /// Text encoding; a BOM wins.
        encoding: Encoding,
    },
    /// One JSON object per line; blank lines are skipped.
    JsonLines {
        /// Text encoding; a BOM wins.
        encoding: Encoding,
    },
}

/// A column an adapter reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Header text (CSV/XLSX), child element or `@attribute` name (XML), or key (JSON; nested
    /// objects are addressed with dots, `party.name`).
    pub name: String,
    /// Whether a CSV/XLSX header must contain it (formats without a header ignore this).
    pub required: bool,
}

/// One record: `values[i]` is the value of `columns[i]` as passed to [`open`]; `None` when absent.
/// Values are text as found (not trimmed). JSON numbers and booleans become their JSON text; JSON
/// arrays of scalars are joined with `;`. XLSX numbers that are whole print without `.0`, and date
/// cells print as `YYYY-MM-DD` (or `YYYY-MM-DDTHH:MM:SS` when they carry a time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Where the record is.
    pub location: Location,
    /// One value per requested column.
    pub values: Vec<Option<String>>,
}

/// A single record that cannot be decoded; the rest of the file goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {reason}")]
pub struct RecordError {
    /// Where.
    pub location: Location,
    /// Why, in words an operator can act on.
    pub reason: String,
}

/// Why a whole file was refused. Each message names what and where (byte offset, line, column names).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file has no content (or, for CSV/XLSX, no header row).
    #[error("file is empty")]
    Empty,
    /// A byte sequence that is not valid in the declared (or BOM-given) encoding.
    #[error("invalid {encoding} byte sequence at byte offset {offset}")]
    Encoding {
        /// Encoding name.
        encoding: &'static str,
        /// Offset of the first bad byte from the start of the file.
        offset: u64,
    },
    /// Required header columns are absent.
    #[error("missing required column(s): {}", .0.join(", "))]
    MissingColumns(Vec<String>),
    /// XML with a DOCTYPE or entity declaration (refused: entity expansion and external entities).
    #[error(
        "XML document type declarations and entities are not accepted (found at byte offset {offset})"
    )]
    XmlDoctype {
        /// Where the declaration starts.
        offset: u64,
    },
    /// The file is not well-formed for its format (truncated XLSX, broken XML or JSON, ...).
    #[error("malformed {format}: {reason}")]
    Malformed {
        /// Format name.
        format: &'static str,
        /// What is wrong and where.
        reason: String,
    },
}

/// A stream of records.
pub type Records = Box<dyn Iterator<Item = Result<RawRecord, RecordError>> + Send>;

/// Checks that `path` is readable as `format` and returns its records, each holding `columns`.
pub fn open(path: &Path, format: &Format, columns: &[Column]) -> Result<Records, FileError> {
    match format {
        Format::Csv {
            encoding,
            delimiter,
        } => csv::open(path, *encoding, *delimiter, columns),
        Format::Xlsx { sheet } => xlsx::open(path, sheet.as_deref(), columns),
        Format::Xml {
            encoding,
            record_path,
        } => xml::open(path, *encoding, record_path, columns),
        Format::Json { encoding } => json::open(path, *encoding, columns, false),
        Format::JsonLines { encoding } => json::open(path, *encoding, columns, true),
    }
}

/// Helpers shared by the decoders' tests.
#[cfg(test)]
pub(crate) mod test_support {
    use std::io::Write;

    /// A temporary file holding `bytes`.
    pub(crate) fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        f
    }
}
