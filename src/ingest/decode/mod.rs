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

pub use super::limits::{LimitError, Limits, bytes_shown};

mod bounds;
mod csv;
mod json;
#[cfg(test)]
mod proptests;
mod text;
pub mod worker;
mod xlsx;
pub(crate) mod xml;
mod xml_guard;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
///
/// The values are kept in one text with a byte range per column, not one `String` each: a
/// million-row file is then a million allocations instead of tens of millions (a CSV record's
/// values are ranges of its decoded line as it is).
#[derive(Clone)]
pub struct RawRecord {
    /// Where the record is.
    pub location: Location,
    /// The values' text.
    text: String,
    /// Per requested column, its value's byte range in `text` (`None`: absent). Every range
    /// lies on character boundaries of `text` (checked where a record is made).
    spans: Vec<Option<(usize, usize)>>,
    /// Values longer than the field limit: `values[cut.column]` holds only their first bytes.
    /// A record with cuts is never mapped; it is quarantined naming each one.
    pub cut: Vec<Cut>,
}

impl RawRecord {
    /// A record of `values`, one per requested column.
    pub fn new(location: Location, values: Vec<Option<String>>, cut: Vec<Cut>) -> Self {
        let mut text = String::with_capacity(values.iter().flatten().map(String::len).sum());
        let spans = values
            .iter()
            .map(|v| {
                v.as_ref().map(|v| {
                    let start = text.len();
                    text.push_str(v);
                    (start, text.len())
                })
            })
            .collect();
        RawRecord {
            location,
            text,
            spans,
            cut,
        }
    }

    /// A record whose values are the ranges `spans` of `text`; `Err(column)`: the first column
    /// whose range is outside `text` or splits a character.
    pub fn of_spans(
        location: Location,
        text: String,
        spans: Vec<Option<(usize, usize)>>,
    ) -> Result<Self, usize> {
        if let Some(bad) = spans
            .iter()
            .position(|s| s.is_some_and(|(a, b)| a > b || text.get(a..b).is_none()))
        {
            return Err(bad);
        }
        Ok(RawRecord {
            location,
            text,
            spans,
            cut: Vec::new(),
        })
    }

    /// The value of requested column `column`, if present.
    pub fn value(&self, column: usize) -> Option<&str> {
        let (a, b) = (*self.spans.get(column)?)?;
        self.text.get(a..b)
    }

    /// Every requested column's value, in order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = Option<&str>> + '_ {
        (0..self.spans.len()).map(|c| self.value(c))
    }

    /// How many columns were requested.
    pub fn width(&self) -> usize {
        self.spans.len()
    }

    /// Replaces the value of `column` (the field limit keeps only a value's first bytes).
    fn set(&mut self, column: usize, value: &str) {
        if let Some(span) = self.spans.get_mut(column) {
            let start = self.text.len();
            self.text.push_str(value);
            *span = Some((start, self.text.len()));
        }
    }
}

/// Two records are equal when they hold the same values at the same place, however kept.
impl PartialEq for RawRecord {
    fn eq(&self, other: &Self) -> bool {
        self.location == other.location && self.cut == other.cut && self.values().eq(other.values())
    }
}

impl Eq for RawRecord {}

impl std::fmt::Debug for RawRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRecord")
            .field("location", &self.location)
            .field("values", &self.values().collect::<Vec<_>>())
            .field("cut", &self.cut)
            .finish()
    }
}

/// A value the decoder did not keep whole because it broke the field limit: its full size and
/// digest, so that quarantine can say exactly what arrived without holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Index of the column (as passed to [`open`]).
    pub column: usize,
    /// Full length in bytes: of the text as it stands in the file where a guard cut it while
    /// reading (XML text and CDATA with their entities, JSON strings with their escapes), else
    /// of the decoded value.
    pub bytes: u64,
    /// SHA-256 of those same bytes.
    pub sha256: [u8; 32],
}

/// The first bytes of something too long to keep, with its full length and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excerpt {
    /// The first bytes (at most the field limit), cut at a character boundary.
    pub head: String,
    /// Full length in bytes.
    pub bytes: u64,
    /// SHA-256 of all of it.
    pub sha256: [u8; 32],
}

impl Excerpt {
    /// Reads up to `limit` bytes of `text` plus the length and digest of the whole.
    pub fn of(text: &str, limit: usize) -> Excerpt {
        use sha2::{Digest, Sha256};
        Excerpt {
            head: char_prefix(text, limit).to_string(),
            bytes: text.len() as u64,
            sha256: Sha256::digest(text.as_bytes()).into(),
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn char_prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A single record that cannot be decoded; the rest of the file goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {reason}")]
pub struct RecordError {
    /// Where.
    pub location: Location,
    /// Why, in words an operator can act on.
    pub reason: String,
    /// When the record was too long to decode at all: its first bytes, length and digest.
    pub excerpt: Option<Excerpt>,
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
    /// The file broke a configured limit (`[ingest.limits]`).
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The decoding process stopped before it finished: it crashed, or the system stopped it at
    /// its memory ceiling or CPU time. The message says which.
    #[error("{0}")]
    Decoder(String),
}

/// A stream of records.
pub trait RecordStream: Iterator<Item = Result<RawRecord, RecordError>> + Send {
    /// After the stream has ended: why it ended early, when the decoder failed part-way (a
    /// contained decoder that crashed or hit its memory or CPU limit). The records before that
    /// point were decoded normally. `None` for a stream that ran to its end.
    fn failure(&mut self) -> Option<FileError> {
        None
    }

    /// Peak resident memory of the decoding process in bytes, once known (contained decoders,
    /// after the stream ended).
    fn peak_rss(&self) -> Option<u64> {
        None
    }
}

/// A stream of records, as [`Decoder::open`] returns it.
pub type Records = Box<dyn RecordStream>;

/// A file the decoder refused, with the decoding process's peak memory when it ran in one.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Refusal {
    /// Why.
    pub error: FileError,
    /// Peak resident memory of the decoding process in bytes, when known.
    pub peak_rss: Option<u64>,
}

impl From<FileError> for Refusal {
    fn from(error: FileError) -> Self {
        Refusal {
            error,
            peak_rss: None,
        }
    }
}

/// Opens source files for decoding under [`Limits`]: in this process (tests, golden cases,
/// offline checks of trusted files) or, in the gateway, in a separate decoding process that the
/// system holds to the memory and CPU limits, so that no file can take the gateway down.
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    /// The executable to run as the decoding process (`xianjie decode-worker`); `None` decodes
    /// in this process.
    worker: Option<std::path::PathBuf>,
}

impl Decoder {
    /// Decodes in the calling process (still enforcing every limit but memory and CPU time).
    pub fn in_process(limits: Limits) -> Self {
        Decoder {
            limits,
            worker: None,
        }
    }

    /// Decodes in a child process running `exe decode-worker`, under the memory ceiling and CPU
    /// time of `limits`.
    pub fn contained(limits: Limits, exe: std::path::PathBuf) -> Self {
        Decoder {
            limits,
            worker: Some(exe),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Checks that `path` is at most `file_bytes` long and readable as `format`, and returns its
    /// records, each holding `columns`.
    pub fn open(
        &self,
        path: &Path,
        format: &Format,
        columns: &[Column],
        file_bytes: u64,
    ) -> Result<Records, Refusal> {
        check_size(path, file_bytes)?;
        match &self.worker {
            None => Ok(open(path, format, columns, &self.limits)?),
            Some(exe) => worker::spawn(exe, path, format, columns, &self.limits),
        }
    }
}

/// Refuses a file longer than `max` bytes before anything reads it.
fn check_size(path: &Path, max: u64) -> Result<(), FileError> {
    let len = std::fs::metadata(path)
        .map_err(|source| FileError::Io {
            path: path.display().to_string(),
            source,
        })?
        .len();
    if len > max {
        return Err(LimitError::new(
            "file_mib",
            bytes_shown(max),
            format!("the file is {}", bytes_shown(len)),
        )
        .into());
    }
    Ok(())
}

/// Checks that `path` is readable as `format` and returns its records, each holding `columns`,
/// decoding in this process under `limits` (all but memory and CPU time, which only a
/// [`Decoder::contained`] enforces).
fn open(
    path: &Path,
    format: &Format,
    columns: &[Column],
    limits: &Limits,
) -> Result<Records, FileError> {
    let records = match format {
        Format::Csv {
            encoding,
            delimiter,
        } => csv::open(path, *encoding, *delimiter, columns, limits)?,
        Format::Xlsx { sheet } => xlsx::open(path, sheet.as_deref(), columns, limits)?,
        Format::Xml {
            encoding,
            record_path,
        } => xml::open(path, *encoding, record_path, columns, limits)?,
        Format::Json { encoding } => json::open(path, *encoding, columns, false, limits)?,
        Format::JsonLines { encoding } => json::open(path, *encoding, columns, true, limits)?,
    };
    Ok(Box::new(FieldLimit {
        inner: records,
        limit: limits.field_bytes,
    }))
}

/// Cuts every value longer than the field limit to its first bytes, noting its length and
/// digest in [`RawRecord::cut`]. Decoders that meet such a value while reading (XML, JSON
/// arrays) cut it themselves, so that it is never held whole; for the others it is bounded by the
/// record, line or archive limits until here.
struct FieldLimit {
    inner: Records,
    limit: u64,
}

impl Iterator for FieldLimit {
    type Item = Result<RawRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut item = self.inner.next()?;
        if let Ok(rec) = &mut item {
            let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
            for column in 0..rec.width() {
                if let Some(v) = rec.value(column).filter(|v| v.len() > limit) {
                    let e = Excerpt::of(v, limit);
                    rec.cut.push(Cut {
                        column,
                        bytes: e.bytes,
                        sha256: e.sha256,
                    });
                    rec.set(column, &e.head);
                }
            }
        }
        Some(item)
    }
}

impl RecordStream for FieldLimit {
    fn failure(&mut self) -> Option<FileError> {
        self.inner.failure()
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

#[cfg(test)]
mod record_tests {
    use super::{Location, RawRecord};

    #[test]
    fn a_record_of_ranges_equals_the_same_values_kept_apart_and_never_splits_a_character() {
        let text = "张三,A001,".to_string();
        let spans = vec![Some((0, 6)), None, Some((7, 11)), Some((12, 12))];
        let r = RawRecord::of_spans(Location::Row(2), text.clone(), spans).unwrap();
        let apart = RawRecord::new(
            Location::Row(2),
            vec![
                Some("张三".into()),
                None,
                Some("A001".into()),
                Some(String::new()),
            ],
            Vec::new(),
        );
        assert_eq!(r, apart);
        assert_eq!(r.value(0), Some("张三"));
        assert_eq!(r.value(1), None);
        assert_eq!(r.value(3), Some(""));
        assert_eq!(r.value(4), None);
        assert_eq!(r.width(), 4);
        // A range inside 张 (3 bytes), past the end or reversed names its column.
        for (bad, column) in [((0, 2), 1), ((7, 40), 1), ((5, 4), 1)] {
            let spans = vec![Some((0, 6)), Some(bad)];
            let got = RawRecord::of_spans(Location::Row(2), text.clone(), spans).err();
            assert_eq!(got, Some(column), "{bad:?}");
        }
        // A value replaced (the field limit's cut) reads as the new one; the others stay.
        let mut cut = r.clone();
        cut.set(0, "张");
        assert_eq!(cut.value(0), Some("张"));
        assert_eq!(cut.value(2), Some("A001"));
        assert_ne!(cut, r);
    }
}
