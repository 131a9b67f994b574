//! Property tests of the decoders (test builds only).
//!
//! Mutations of the golden inputs under `adapters/*/cases/` (and of JSON made from them) and
//! arbitrary bytes go through [`Decoder::in_process`] under the default limits and under small
//! ones: the file is refused, or every item is a record or a [`RecordError`] that keeps the
//! stream's contract (values within the field limit, cuts that name their column, locations of
//! the format's kind and in file order, no decoder thread lost to a panic), within a deadline.
//! Generated CSV, JSON, JSON Lines, XML and XLSX documents decode to exactly what they hold.
//! The XML guard hands out its input unchanged when nothing is too long, the same output
//! however the input is chunked, and well-formed bounded XML with exact cuts when runs are
//! too long.

use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::Index;
use sha2::{Digest, Sha256};

use super::xml_guard::{Guard, GuardCut, GuardError, guard_error};
use super::*;
use crate::ingest::Adapter;
use crate::proptest_support::{
    CSV_SYNTAX, DEADLINE, XLSX_SYNTAX, XML_SYNTAX, config, edit, mutated, mutated_text,
    mutated_utf8, within, zip_with_edited_entry,
};
use crate::xml_out::is_xml_char;

/// Pieces of JSON that mutations insert.
const JSON_SYNTAX: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\\uDC00",
    b"1e999",
    b"-0",
    b"0.1",
    b"null",
    b"true",
    b"\n",
    b"\r\n",
    b"\xEF\xBB\xBF",
    b"{\"a\":{\"b\":[1,{}]}}",
    b"[[[[[[[[",
    b"\"\xFF\"",
];

fn adapter(name: &str) -> Adapter {
    crate::ingest::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("adapters")
            .join(name),
    )
    .expect("adapter loads")
}

/// A golden input with the adapter that reads it.
struct Golden {
    adapter: Adapter,
    bytes: Vec<u8>,
}

fn golden(name: &str, case: &str) -> Golden {
    let adapter = adapter(name);
    let bytes = std::fs::read(adapter.dir.join("cases").join(case)).expect("golden input");
    Golden { adapter, bytes }
}

static SUNSHINE: LazyLock<Golden> = LazyLock::new(|| golden("sunshine", "mixed.csv"));
static TAX: LazyLock<Golden> = LazyLock::new(|| golden("tax", "mixed.xml"));
static INSPECTION: LazyLock<Golden> = LazyLock::new(|| golden("market-inspection", "mixed.xlsx"));

/// The golden CSV's records as JSON objects keyed by the sunshine adapter's column names: the
/// base of the JSON and JSON Lines mutations (no JSON golden input exists).
static JSON_OBJECTS: LazyLock<Vec<serde_json::Value>> = LazyLock::new(|| {
    let g = &*SUNSHINE;
    let items = decode(
        g.bytes.clone(),
        g.adapter.format.clone(),
        g.adapter.columns.clone(),
        Limits::default(),
    )
    .expect("the golden CSV decodes");
    items
        .into_iter()
        .filter_map(Result::ok)
        .map(|r| {
            let object = g
                .adapter
                .columns
                .iter()
                .zip(r.values())
                .filter_map(|(c, v)| {
                    Some((c.name.clone(), serde_json::Value::String(v?.to_string())))
                })
                .collect();
            serde_json::Value::Object(object)
        })
        .collect()
});

/// The JSON base: an array of the golden objects, or one per line.
fn json_base(lines: bool) -> Vec<u8> {
    if lines {
        JSON_OBJECTS
            .iter()
            .map(|o| o.to_string() + "\n")
            .collect::<String>()
            .into_bytes()
    } else {
        serde_json::to_vec_pretty(&*JSON_OBJECTS).expect("JSON")
    }
}

/// Limits small enough that a few kilobytes reach every limit path.
fn small_limits() -> Limits {
    Limits {
        field_bytes: 64,
        csv_record_bytes: 512,
        json_line_bytes: 512,
        xml_depth: 6,
        xlsx_uncompressed_bytes: 256 * 1024,
        xlsx_ratio: 50,
        xlsx_entries: 30,
        xlsx_shared_strings: 150,
        ..Limits::default()
    }
}

fn limits(small: bool) -> Limits {
    if small {
        small_limits()
    } else {
        Limits::default()
    }
}

type Items = Vec<Result<RawRecord, RecordError>>;

/// Decodes `bytes` as `format` in this process, within [`DEADLINE`]: the refusal, or every item
/// of the stream (at most one more than the format could produce, so a stream that never ends
/// is seen). The stream must end without a failure.
fn decode(
    bytes: Vec<u8>,
    format: Format,
    columns: Vec<Column>,
    limits: Limits,
) -> Result<Items, FileError> {
    within(DEADLINE, "decode", move || {
        let file = test_support::file_with(&bytes);
        let mut records = Decoder::in_process(limits)
            .open(file.path(), &format, &columns, u64::MAX)
            .map_err(|r| r.error)?;
        let items: Items = records
            .by_ref()
            .take(max_items(&format, bytes.len()) + 1)
            .collect();
        let failure = records.failure();
        assert!(
            failure.is_none(),
            "an in-process stream failed: {failure:?}"
        );
        Ok(items)
    })
}

/// The most items a file of `bytes` can hold: a record takes at least one byte of text; an
/// XLSX sheet is compressed, so only a generous bound applies.
fn max_items(format: &Format, bytes: usize) -> usize {
    match format {
        Format::Xlsx { .. } => 2_000_000,
        _ => bytes + 1,
    }
}

/// The position of a location in its file, for the formats whose records come in file order.
fn position(l: &Location) -> Option<u64> {
    match l {
        Location::Row(n) | Location::Line(n) | Location::Index(n) => Some(*n),
        Location::Element(_) => None,
    }
}

/// Checks the contract of a decoded stream: locations of the format's kind (strictly
/// increasing for CSV, JSON and JSON Lines); every value within the field limit; cuts naming
/// distinct present columns whose full size broke the limit; record errors with a reason, never
/// the one a lost decoder thread leaves; excerpts within the field limit.
fn check_items(
    items: &Items,
    format: &Format,
    columns: &[Column],
    limits: &Limits,
    input_len: usize,
) -> Result<(), TestCaseError> {
    prop_assert!(
        items.len() <= max_items(format, input_len),
        "the stream does not end"
    );
    let field = limits.field_bytes;
    let mut last: Option<u64> = None;
    for item in items {
        let location = match item {
            Ok(r) => &r.location,
            Err(e) => &e.location,
        };
        let kind_ok = match format {
            Format::Csv { .. } | Format::Xlsx { .. } => matches!(location, Location::Row(_)),
            Format::JsonLines { .. } => matches!(location, Location::Line(_)),
            Format::Json { .. } => matches!(location, Location::Index(_)),
            Format::Xml { .. } => matches!(location, Location::Element(_)),
        };
        prop_assert!(kind_ok, "{:?} from {:?}", location, format);
        if !matches!(format, Format::Xlsx { .. })
            && let Some(n) = position(location)
        {
            // Records come in file order: rows, lines and indexes only go forward.
            prop_assert!(
                last.is_none_or(|l| n > l),
                "{:?} after {:?}",
                location,
                last
            );
            last = Some(n);
        }
        match item {
            Ok(r) => {
                prop_assert_eq!(r.width(), columns.len());
                for v in r.values().flatten() {
                    prop_assert!(v.len() as u64 <= field, "a value of {} bytes", v.len());
                }
                let mut cut_columns: Vec<usize> = r.cut.iter().map(|c| c.column).collect();
                cut_columns.sort_unstable();
                cut_columns.dedup();
                prop_assert_eq!(cut_columns.len(), r.cut.len(), "a column cut twice");
                for c in &r.cut {
                    prop_assert!(c.column < columns.len());
                    prop_assert!(r.value(c.column).is_some(), "cut of an absent value");
                    prop_assert!(c.bytes > field, "cut of {} bytes", c.bytes);
                }
            }
            Err(e) => {
                prop_assert!(!e.reason.is_empty());
                prop_assert!(
                    !e.reason.contains("stopped unexpectedly"),
                    "a decoder thread died: {}",
                    e
                );
                if let Some(x) = &e.excerpt {
                    // A record too long to decode keeps its first bytes for quarantine.
                    let keep = field.max(Limits::default().quarantine_raw_bytes);
                    prop_assert!(x.head.len() as u64 <= keep);
                    prop_assert!(x.bytes >= x.head.len() as u64);
                }
            }
        }
    }
    Ok(())
}

/// Checks a refusal: it says something, it is not a decoding-process failure (there is no
/// process here), and a broken limit names its key.
fn check_refusal(e: &FileError) -> Result<(), TestCaseError> {
    prop_assert!(!e.to_string().is_empty());
    prop_assert!(!matches!(e, FileError::Decoder(_)), "{}", e);
    if let FileError::Limit(l) = e {
        prop_assert!(!l.key.is_empty() && !l.found.is_empty());
    }
    Ok(())
}

/// Decodes and checks; the items when the file was read.
fn decode_checked(
    bytes: Vec<u8>,
    format: &Format,
    columns: &[Column],
    limits: &Limits,
) -> Result<Option<Items>, TestCaseError> {
    let len = bytes.len();
    match decode(bytes, format.clone(), columns.to_vec(), limits.clone()) {
        Ok(items) => {
            check_items(&items, format, columns, limits, len)?;
            Ok(Some(items))
        }
        Err(e) => {
            check_refusal(&e)?;
            Ok(None)
        }
    }
}

fn columns(names: &[&str]) -> Vec<Column> {
    names
        .iter()
        .map(|n| Column {
            name: (*n).to_string(),
            required: false,
        })
        .collect()
}

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Checks one decoded value against what was written: `expected` as read, `raw` as it stands in
/// the file. A value whose raw text fits the limit is exact; a value whose text is longer is
/// cut, keeping a prefix within the limit and the size and digest of the raw or the read text.
fn check_value(
    got: Option<&str>,
    cut: Option<&Cut>,
    expected: Option<&str>,
    raw: &str,
    limit: u64,
) -> Result<(), TestCaseError> {
    let Some(expected) = expected else {
        prop_assert_eq!(got, None);
        prop_assert!(cut.is_none());
        return Ok(());
    };
    let got = got.ok_or_else(|| TestCaseError::fail(format!("{expected:?} read as absent")))?;
    match cut {
        None => {
            prop_assert!(
                expected.len() as u64 <= limit,
                "{} bytes not cut",
                expected.len()
            );
            prop_assert_eq!(got, expected);
        }
        Some(c) => {
            prop_assert!(
                raw.len() as u64 > limit,
                "{} bytes cut at {}",
                raw.len(),
                limit
            );
            prop_assert!(got.len() as u64 <= limit);
            prop_assert!(expected.starts_with(got), "{:?} is no prefix", got);
            let figures = (c.bytes, c.sha256);
            prop_assert!(
                figures == (raw.len() as u64, sha(raw.as_bytes()))
                    || figures == (expected.len() as u64, sha(expected.as_bytes())),
                "the cut's size and digest are neither the raw nor the read text's"
            );
        }
    }
    Ok(())
}

// ---- Generated documents --------------------------------------------------------------------

/// A cell of text: CSV/JSON syntax, line breaks and quotes, anything, or nothing.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z甲,;\"\n\r\t {}\\[\\]\\\\]{0,12}",
        1 => any::<String>(),
        1 => "[a-z]{60,90}",
    ]
}

/// Text that XML 1.0 can hold.
fn xml_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z甲 &<>\"'\t\n\r\\]]{0,20}",
        1 => any::<String>().prop_map(|s| s.chars().filter(|&c| is_xml_char(c)).collect()),
        1 => "[a-z&]{60,90}",
    ]
}

/// `s` as XML character data, or (`attr`) as a double-quoted attribute value, spelled so that
/// it reads back exactly: a literal CR would be read as a line feed (XML 1.0 §2.11), and literal
/// white space in an attribute as spaces (§3.3.3).
fn escape(s: &str, attr: bool) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let reference = match (c, attr) {
            ('&', _) => "&amp;",
            ('<', _) => "&lt;",
            ('>', false) => "&gt;",
            ('"', true) => "&quot;",
            ('\r', _) => "&#13;",
            ('\t', true) => "&#9;",
            ('\n', true) => "&#10;",
            _ => {
                out.push(c);
                continue;
            }
        };
        out.push_str(reference);
    }
    out
}

fn escape_text(s: &str) -> String {
    escape(s, false)
}

fn escape_attr(s: &str) -> String {
    escape(s, true)
}

/// A JSON value of a column, and how it must read.
#[derive(Debug, Clone)]
enum JsonCell {
    Absent,
    Null,
    Text(String),
    Int(i64),
    Big(u64),
    Bool(bool),
    Float(f64),
    List(Vec<String>),
}

impl JsonCell {
    fn json(&self) -> Option<serde_json::Value> {
        use serde_json::Value;
        Some(match self {
            JsonCell::Absent => return None,
            JsonCell::Null => Value::Null,
            JsonCell::Text(s) => Value::String(s.clone()),
            JsonCell::Int(i) => (*i).into(),
            JsonCell::Big(u) => (*u).into(),
            JsonCell::Bool(b) => (*b).into(),
            JsonCell::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            JsonCell::List(items) => items.iter().cloned().map(Value::String).collect(),
        })
    }

    /// The text the decoder must give (floats are checked by value instead).
    /// The text as the file holds it: strings with their JSON escapes.
    fn raw(&self) -> Option<String> {
        let escaped = |s: &str| {
            let quoted = serde_json::Value::from(s).to_string();
            quoted[1..quoted.len() - 1].to_string()
        };
        match self {
            JsonCell::Text(s) => Some(escaped(s)),
            JsonCell::List(items) => Some(
                items
                    .iter()
                    .map(|i| escaped(i))
                    .collect::<Vec<_>>()
                    .join(";"),
            ),
            other => other.text(),
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            JsonCell::Absent | JsonCell::Null => None,
            JsonCell::Text(s) => Some(s.clone()),
            JsonCell::Int(i) => Some(i.to_string()),
            JsonCell::Big(u) => Some(u.to_string()),
            JsonCell::Bool(b) => Some(b.to_string()),
            JsonCell::Float(f) => Some(f.to_string()),
            JsonCell::List(items) => Some(items.join(";")),
        }
    }
}

fn json_cell() -> impl Strategy<Value = JsonCell> {
    prop_oneof![
        1 => Just(JsonCell::Absent),
        1 => Just(JsonCell::Null),
        4 => cell().prop_map(JsonCell::Text),
        1 => any::<i64>().prop_map(JsonCell::Int),
        1 => ((i64::MAX as u64 + 1)..=u64::MAX).prop_map(JsonCell::Big),
        1 => any::<bool>().prop_map(JsonCell::Bool),
        1 => any::<f64>()
            .prop_filter("finite, not integral", |f| f.is_finite() && f.fract() != 0.0)
            .prop_map(JsonCell::Float),
        1 => prop::collection::vec("[a-z甲 ]{0,6}", 1..4).prop_map(JsonCell::List),
    ]
}

/// The columns of the generated JSON: two plain keys and two of a nested object.
const JSON_COLUMNS: [&str; 4] = ["a", "b", "p.x", "p.y"];

/// A generated JSON object for [`JSON_COLUMNS`], and whether `p` is an object at all.
fn json_record() -> impl Strategy<Value = (Vec<JsonCell>, bool)> {
    (
        prop::collection::vec(json_cell(), 4),
        prop::bool::weighted(0.8),
    )
}

fn json_object(cells: &[JsonCell], p_object: bool) -> serde_json::Value {
    let mut top = serde_json::Map::new();
    let mut p = serde_json::Map::new();
    for (name, c) in JSON_COLUMNS.iter().zip(cells) {
        let Some(v) = c.json() else { continue };
        match name.strip_prefix("p.") {
            Some(inner) => {
                p.insert(inner.to_string(), v);
            }
            None => {
                top.insert((*name).to_string(), v);
            }
        }
    }
    top.insert(
        "p".into(),
        if p_object {
            serde_json::Value::Object(p)
        } else {
            "not an object".into()
        },
    );
    top.insert(
        "ignored".into(),
        serde_json::json!({"deep": [[1, {"x": null}]]}),
    );
    serde_json::Value::Object(top)
}

/// A generated XML record: its element name, `id` attribute and three children.
#[derive(Debug, Clone)]
struct XmlRecord {
    name: &'static str,
    id: Option<String>,
    children: Vec<Option<(String, bool)>>,
}

fn xml_record() -> impl Strategy<Value = XmlRecord> {
    (
        prop::sample::select(&["XZCF", "XZXK"][..]),
        prop::option::of(xml_text()),
        prop::collection::vec(prop::option::of((xml_text(), any::<bool>())), 3),
    )
        .prop_map(|(name, id, children)| XmlRecord { name, id, children })
}

/// The raw text of a child as written: CDATA when asked and possible, else escaped text.
fn xml_child_raw(value: &str, cdata: bool) -> (String, bool) {
    let cdata = cdata && !value.contains('\r') && !value.contains("]]>");
    if cdata {
        (value.to_string(), true)
    } else {
        (escape_text(value), false)
    }
}

fn xml_document(records: &[XmlRecord]) -> String {
    let mut doc = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ROOT><HEADER><C0>not a record</C0></HEADER><RECS>\n",
    );
    for r in records {
        doc.push('<');
        doc.push_str(r.name);
        if let Some(id) = &r.id {
            doc.push_str(&format!(" id=\"{}\"", escape_attr(id)));
        }
        doc.push_str("><OTHER><C0>nested, not a column</C0></OTHER>");
        for (i, child) in r.children.iter().enumerate() {
            if let Some((value, cdata)) = child {
                let (raw, cdata) = xml_child_raw(value, *cdata);
                if cdata {
                    doc.push_str(&format!("<C{i}><![CDATA[{raw}]]></C{i}>"));
                } else {
                    doc.push_str(&format!("<C{i}>{raw}</C{i}>"));
                }
            }
        }
        doc.push_str(&format!("</{}>\n", r.name));
    }
    doc.push_str("</RECS></ROOT>\n");
    doc
}

/// A generated spreadsheet cell: text, a whole number, or empty.
#[derive(Debug, Clone)]
enum SheetCell {
    Empty,
    Text(String),
    Number(i32),
}

fn sheet_cell() -> impl Strategy<Value = SheetCell> {
    prop_oneof![
        1 => Just(SheetCell::Empty),
        4 => "[a-z甲 ,;\"&<>]{1,12}".prop_map(SheetCell::Text),
        1 => any::<i32>().prop_map(SheetCell::Number),
    ]
}

fn xlsx_document(header: &[String], rows: &[Vec<SheetCell>]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, name) in (0u16..).zip(header) {
        sheet.write_string(0, c, name).expect("header cell");
    }
    for (r, row) in (1u32..).zip(rows) {
        for (c, cell) in (0u16..).zip(row) {
            match cell {
                SheetCell::Empty => {}
                SheetCell::Text(s) => {
                    sheet.write_string(r, c, s).expect("text cell");
                }
                SheetCell::Number(n) => {
                    sheet
                        .write_number(r, c, f64::from(*n))
                        .expect("number cell");
                }
            }
        }
    }
    book.save_to_buffer().expect("workbook")
}

/// A table: distinct header names that survive the header's trimming, then up to `rows` rows
/// of cells.
fn table<S: Strategy>(
    columns: std::ops::Range<usize>,
    rows: usize,
    cell: fn() -> S,
) -> impl Strategy<Value = (Vec<String>, Vec<Vec<S::Value>>)> {
    columns.prop_flat_map(move |n| {
        let header = prop::collection::btree_set("[A-Za-z甲乙]{1,6}", n)
            .prop_map(|s| s.into_iter().collect::<Vec<_>>());
        (
            header,
            prop::collection::vec(prop::collection::vec(cell(), n), 0..rows),
        )
    })
}

// ---- The XML guard ----------------------------------------------------------------------------

/// What the guard did with an input: everything it handed out, the error that stopped it, its
/// cuts, and where each `<` of its output stands in the input (by [`Guard::unskip`]).
type GuardRun = (Vec<u8>, Option<GuardError>, Vec<GuardCut>, Vec<u64>);

/// The guard over `input` read in `chunk`-byte pieces.
fn guard(input: &[u8], field: usize, tag_limit: usize, chunk: usize) -> GuardRun {
    let mut g = Guard::new(
        BufReader::with_capacity(chunk, input),
        field,
        tag_limit,
        true,
    );
    let mut out = Vec::new();
    let error = g.read_to_end(&mut out).err().map(|e| {
        guard_error(&e)
            .cloned()
            .unwrap_or_else(|| panic!("an I/O error not from the guard: {e}"))
    });
    let mut cuts = Vec::new();
    while let Some(c) = g.take_cut(0, u64::MAX) {
        cuts.push(c);
    }
    let opens = (0u64..)
        .zip(&out)
        .filter(|(_, b)| **b == b'<')
        .map(|(i, _)| g.unskip(i))
        .collect();
    (out, error, cuts, opens)
}

/// XML-like soup: markup, references, declarations, words and stray bytes.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => prop::sample::select(XML_SYNTAX).prop_map(<[u8]>::to_vec),
        2 => "[a-z甲 \\]\\-]{0,8}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..4),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

/// A piece of a well-formed document body, and the content of its run (text, CDATA or comment).
#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    CData(String),
    Comment(String),
    Empty(String),
}

fn pieces() -> impl Strategy<Value = Vec<Piece>> {
    let piece = prop_oneof![
        3 => xml_text().prop_map(|t| Piece::Text(escape_text(&t))),
        // Content without its terminator: `]]>` would end the section early.
        1 => "[a-z甲 >\\]]{0,100}".prop_map(|t| {
            let mut t: String = t;
            while t.contains("]]>") {
                t = t.replace("]]>", "]] >");
            }
            Piece::CData(t)
        }),
        1 => "[a-z甲 ]{0,100}".prop_map(Piece::Comment),
        1 => xml_text().prop_map(|t| Piece::Empty(escape_attr(&t))),
    ];
    prop::collection::vec(piece, 0..8)
}

fn body(pieces: &[Piece]) -> String {
    let mut doc = String::from("<R>");
    for p in pieces {
        match p {
            Piece::Text(t) => doc.push_str(&format!("<F>{t}</F>")),
            Piece::CData(t) => doc.push_str(&format!("<F><![CDATA[{t}]]></F>")),
            Piece::Comment(t) => doc.push_str(&format!("<!--{t}-->")),
            Piece::Empty(a) => doc.push_str(&format!("<E a=\"{a}\"/>")),
        }
    }
    doc.push_str("</R>");
    doc
}

/// Found by `the_guard_does_not_depend_on_chunking`: a tag longer than the tag limit that
/// ended inside the chunk being read was handed out whole, and the check after it saw an empty
/// tag, so the limit held only for tags that spanned chunks.
#[test]
fn a_long_tag_is_refused_whatever_the_chunking() {
    let doc = format!("<R a=\"{}\"/>", "v".repeat(40));
    for chunk in [1, 7, 4096] {
        let (out, error, _, _) = guard(doc.as_bytes(), 16, 16, chunk);
        assert_eq!(
            error,
            Some(GuardError::TagTooLong { at: 0, limit: 16 }),
            "chunk {chunk}"
        );
        assert_eq!(out, b"", "chunk {chunk}");
    }
    let pi = format!("<?pi {}?><R/>", "v".repeat(40));
    let (_, error, _, _) = guard(pi.as_bytes(), 16, 16, 4096);
    assert_eq!(error, Some(GuardError::TagTooLong { at: 0, limit: 16 }));
    // Through the decoder: a 10 KB attribute is over the tag limit of a 64-byte field limit
    // (64 + 4096 bytes), though it fits in one read.
    let doc = format!("<R><a x=\"{}\">t</a></R>", "v".repeat(10_000));
    let format = Format::Xml {
        encoding: Encoding::Utf8,
        record_path: vec!["R".into(), "a".into()],
    };
    match decode(doc.into_bytes(), format, columns(&["@x"]), small_limits()) {
        Err(FileError::Limit(l)) => assert_eq!(l.key, "field_kib"),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// With limits no run reaches, the guard hands out its input byte for byte, however it is
    /// chunked, or stops at a `<!` declaration where the input has one.
    #[test]
    fn the_guard_passes_what_fits_unchanged(input in soup(), chunk in 1usize..64) {
        let limit = input.len() + 16;
        let (out, error, cuts, _) = guard(&input, limit, limit, chunk);
        prop_assert!(cuts.is_empty());
        match error {
            None => prop_assert_eq!(out, input),
            Some(GuardError::Declaration { at }) => {
                let at = usize::try_from(at).unwrap();
                prop_assert!(input[at..].starts_with(b"<!"), "no declaration at {}", at);
                prop_assert!(input.starts_with(&out), "output before the stop differs");
            }
            Some(other) => prop_assert!(false, "{}", other),
        }
    }

    /// The guard's output, stop and cuts do not depend on how its input is chunked.
    #[test]
    fn the_guard_does_not_depend_on_chunking(
        input in soup(),
        field in 16usize..48,
        extra in 0usize..32,
        a in 1usize..40,
        b in 1usize..40,
    ) {
        let (out_a, err_a, cuts_a, _) = guard(&input, field, field + extra, a);
        let (out_b, err_b, cuts_b, _) = guard(&input, field, field + extra, b);
        prop_assert_eq!(out_a, out_b);
        prop_assert_eq!(err_a, err_b);
        prop_assert_eq!(cuts_a, cuts_b);
    }

    /// Over well-formed XML with runs longer than the limit, the guard's output is well-formed,
    /// every run in it fits the limit, each text and CDATA run that did not is one cut with its
    /// full size and digest, and markup offsets map back to the input.
    #[test]
    fn the_guard_cuts_long_runs_into_bounded_well_formed_xml(
        pieces in pieces(),
        field in 16usize..64,
        chunk in 1usize..64,
    ) {
        let doc = body(&pieces);
        let (out, error, cuts, opens) = guard(doc.as_bytes(), field, field + 4096, chunk);
        prop_assert_eq!(error, None);
        let mut reader = quick_xml::Reader::from_reader(out.as_slice());
        let mut buf = Vec::new();
        loop {
            let event = reader
                .read_event_into(&mut buf)
                .map_err(|e| TestCaseError::fail(format!("guard output not well-formed: {e}")))?;
            match event {
                quick_xml::events::Event::Text(t) => prop_assert!(t.len() <= field),
                quick_xml::events::Event::CData(t) => prop_assert!(t.len() <= field),
                quick_xml::events::Event::Comment(t) => prop_assert!(t.len() <= field),
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        let long: Vec<&str> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Text(t) | Piece::CData(t) if t.len() > field => Some(t.as_str()),
                _ => None,
            })
            .collect();
        prop_assert_eq!(cuts.len(), long.len());
        for (c, run) in cuts.iter().zip(&long) {
            prop_assert_eq!(c.bytes, run.len() as u64);
            prop_assert_eq!(c.sha256, sha(run.as_bytes()));
        }
        // '<' stands only in markup here, so the n-th one in the output is the n-th one in
        // the input.
        let in_opens: Vec<u64> = (0u64..)
            .zip(doc.as_bytes())
            .filter(|(_, b)| **b == b'<')
            .map(|(i, _)| i)
            .collect();
        prop_assert_eq!(opens, in_opens);
    }
}

// ---- Mutated golden inputs and arbitrary bytes ------------------------------------------------

proptest! {
    #![proptest_config(config(384))]

    /// Mutations of the golden GB18030 CSV: mostly of its text (encoded again, so that most
    /// cases pass the encoding check and reach the rows), some of its bytes.
    #[test]
    fn mutated_golden_csv_keeps_the_contract(
        bytes in prop_oneof![
            3 => mutated_text(&encoding_rs::GB18030.decode(&SUNSHINE.bytes).0, CSV_SYNTAX, 4)
                .prop_map(|t| encoding_rs::GB18030.encode(&t).0.into_owned()),
            1 => mutated(SUNSHINE.bytes.clone(), CSV_SYNTAX, 4),
        ],
        small in any::<bool>(),
    ) {
        let a = &SUNSHINE.adapter;
        decode_checked(bytes, &a.format, &a.columns, &limits(small))?;
    }

    /// Mutations of the golden XML.
    #[test]
    fn mutated_golden_xml_keeps_the_contract(
        bytes in mutated_utf8(&TAX.bytes, XML_SYNTAX, 4),
        small in any::<bool>(),
    ) {
        let a = &TAX.adapter;
        decode_checked(bytes, &a.format, &a.columns, &limits(small))?;
    }

    /// Mutations of JSON arrays and JSON Lines made of the golden records.
    #[test]
    fn mutated_json_keeps_the_contract(
        (lines, bytes) in any::<bool>()
            .prop_flat_map(|lines| (Just(lines), mutated_utf8(&json_base(lines), JSON_SYNTAX, 4))),
        small in any::<bool>(),
    ) {
        let encoding = Encoding::Utf8;
        let format = if lines { Format::JsonLines { encoding } } else { Format::Json { encoding } };
        decode_checked(bytes, &format, &SUNSHINE.adapter.columns, &limits(small))?;
    }

    /// Arbitrary bytes as every format.
    #[test]
    fn arbitrary_bytes_keep_the_contract(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        which in 0usize..5,
        small in any::<bool>(),
    ) {
        let encoding = Encoding::Utf8;
        let (format, columns) = match which {
            0 => (SUNSHINE.adapter.format.clone(), SUNSHINE.adapter.columns.clone()),
            1 => (TAX.adapter.format.clone(), TAX.adapter.columns.clone()),
            2 => (Format::Json { encoding }, SUNSHINE.adapter.columns.clone()),
            3 => (Format::JsonLines { encoding }, SUNSHINE.adapter.columns.clone()),
            _ => (INSPECTION.adapter.format.clone(), INSPECTION.adapter.columns.clone()),
        };
        decode_checked(bytes, &format, &columns, &limits(small))?;
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Mutations of the golden XLSX: of its bytes, and of one XML entry inside it (rezipped,
    /// so the spreadsheet reader sees them).
    #[test]
    fn mutated_golden_xlsx_keeps_the_contract(
        bytes in prop_oneof![
            1 => mutated(INSPECTION.bytes.clone(), XML_SYNTAX, 3),
            4 => (
                any::<Index>(),
                prop::collection::vec(prop_oneof![edit(XML_SYNTAX), edit(XLSX_SYNTAX)], 1..5),
            )
                .prop_map(|(which, edits)| zip_with_edited_entry(&INSPECTION.bytes, which, &edits)),
        ],
        small in any::<bool>(),
    ) {
        let a = &INSPECTION.adapter;
        decode_checked(bytes, &a.format, &a.columns, &limits(small))?;
    }

    /// XML nested deeper than `xml_depth` is refused naming the limit; up to it, it is read.
    #[test]
    fn xml_deeper_than_the_limit_is_refused(depth in 0usize..40, limit in 2usize..20) {
        let doc = format!("<R>{}x{}</R>", "<a>".repeat(depth), "</a>".repeat(depth));
        let limits = Limits { xml_depth: limit, ..Limits::default() };
        let format = Format::Xml { encoding: Encoding::Utf8, record_path: vec!["R".into(), "a".into()] };
        match decode(doc.into_bytes(), format, columns(&["a"]), limits) {
            Ok(_) => prop_assert!(depth < limit, "depth {} read under a limit of {}", depth + 1, limit),
            Err(FileError::Limit(l)) => {
                prop_assert!(depth >= limit, "depth {} refused under a limit of {}", depth + 1, limit);
                prop_assert_eq!(l.key, "xml_depth");
            }
            Err(other) => prop_assert!(false, "{}", other),
        }
    }
}

// ---- Round trips ----------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// Generated CSV (LF or CRLF line ends) decodes to its cells, row by row, whether or not
    /// the field limit cuts them.
    #[test]
    fn generated_csv_round_trips(
        (names, rows) in table(2..5, 6, cell),
        crlf in any::<bool>(),
        small in any::<bool>(),
    ) {
        let mut w = ::csv::WriterBuilder::new()
            .terminator(if crlf { ::csv::Terminator::CRLF } else { ::csv::Terminator::Any(b'\n') })
            .from_writer(Vec::new());
        w.write_record(&names).unwrap();
        for r in &rows {
            w.write_record(r).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let format = Format::Csv { encoding: Encoding::Utf8, delimiter: b',' };
        let limits = limits(small);
        let items = decode_checked(bytes, &format, &columns(&names), &limits)?
            .ok_or_else(|| TestCaseError::fail("generated CSV refused"))?;
        prop_assert_eq!(items.len(), rows.len());
        let mut breaks = false;
        for (i, (item, row)) in items.iter().zip(&rows).enumerate() {
            let rec = item.as_ref().map_err(|e| TestCaseError::fail(e.to_string()))?;
            if !breaks {
                prop_assert_eq!(&rec.location, &Location::Row(i as u64 + 2));
            }
            breaks |= row.iter().any(|c| c.contains(['\n', '\r']));
            for (col, cell) in row.iter().enumerate() {
                let cut = rec.cut.iter().find(|c| c.column == col);
                check_value(rec.value(col), cut, Some(cell), cell, limits.field_bytes)?;
            }
        }
    }

    /// Generated JSON arrays and JSON Lines (with blank lines) decode to their values: text as
    /// is, integers and booleans as JSON writes them, other numbers to the same number, arrays
    /// joined with `;`, null and absent keys as absent.
    #[test]
    fn generated_json_round_trips(
        records in prop::collection::vec(json_record(), 0..6),
        lines in any::<bool>(),
        blank in prop::collection::vec(any::<bool>(), 6),
        small in any::<bool>(),
    ) {
        let objects: Vec<serde_json::Value> =
            records.iter().map(|(cells, p)| json_object(cells, *p)).collect();
        let mut line_numbers = Vec::new();
        let bytes = if lines {
            let mut text = String::new();
            let mut line = 0u64;
            for (o, blank) in objects.iter().zip(&blank) {
                if *blank {
                    text.push_str("  \n");
                    line += 1;
                }
                text.push_str(&o.to_string());
                text.push('\n');
                line += 1;
                line_numbers.push(Location::Line(line));
            }
            text.into_bytes()
        } else {
            line_numbers = (0..objects.len() as u64).map(Location::Index).collect();
            serde_json::to_vec(&objects).unwrap()
        };
        let encoding = Encoding::Utf8;
        let format = if lines { Format::JsonLines { encoding } } else { Format::Json { encoding } };
        let limits = limits(small);
        let Some(items) = decode_checked(bytes, &format, &columns(&JSON_COLUMNS), &limits)? else {
            // A JSON Lines file of no line holds nothing, and is refused as empty.
            prop_assert!(lines && records.is_empty(), "generated JSON refused");
            return Ok(());
        };
        prop_assert_eq!(items.len(), records.len());
        for ((item, (cells, p_object)), at) in items.iter().zip(&records).zip(&line_numbers) {
            let rec = item.as_ref().map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&rec.location, at);
            for (col, c) in cells.iter().enumerate() {
                let nested = JSON_COLUMNS[col].starts_with("p.");
                let cut = rec.cut.iter().find(|x| x.column == col);
                let got = rec.value(col);
                match c {
                    _ if nested && !p_object => prop_assert_eq!(got, None),
                    JsonCell::Float(f) => {
                        let text = got.ok_or_else(|| TestCaseError::fail("a number read as absent"))?;
                        prop_assert_eq!(text.parse::<f64>().ok(), Some(*f), "{}", text);
                    }
                    _ => {
                        let expected = c.text();
                        // The field limit holds the text as it stands in the file, escapes and
                        // all, as for XML's entities.
                        let raw = c.raw().unwrap_or_default();
                        check_value(got, cut, expected.as_deref(), &raw, limits.field_bytes)?;
                    }
                }
            }
        }
    }

    /// Generated XML decodes to its records: the element's name, its attribute and its
    /// children's text (references, CDATA and CRs written as references read back exactly),
    /// cut at the field limit with the figures of the text as written.
    #[test]
    fn generated_xml_round_trips(
        records in prop::collection::vec(xml_record(), 0..6),
        field in prop_oneof![Just(64 * 1024u64), 16u64..80],
    ) {
        let doc = xml_document(&records);
        let format = Format::Xml {
            encoding: Encoding::Utf8,
            record_path: vec!["ROOT".into(), "RECS".into(), "*".into()],
        };
        let limits = Limits { field_bytes: field, ..Limits::default() };
        let cols = columns(&["@record", "@id", "C0", "C1", "C2"]);
        let items = decode_checked(doc.into_bytes(), &format, &cols, &limits)?
            .ok_or_else(|| TestCaseError::fail("generated XML refused"))?;
        prop_assert_eq!(items.len(), records.len());
        let mut seen: std::collections::HashMap<&str, u64> = Default::default();
        for (item, r) in items.iter().zip(&records) {
            let rec = item.as_ref().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let n = seen.entry(r.name).or_insert(0);
            *n += 1;
            prop_assert_eq!(&rec.location, &Location::Element(format!("/ROOT/RECS/{}[{n}]", r.name)));
            let cut = |col: usize| rec.cut.iter().find(|c| c.column == col);
            check_value(rec.value(0), cut(0), Some(r.name), r.name, field)?;
            let id_raw = r.id.as_deref().map(escape_attr).unwrap_or_default();
            check_value(rec.value(1), cut(1), r.id.as_deref(), &id_raw, field)?;
            for (i, child) in r.children.iter().enumerate() {
                let col = i + 2;
                let (expected, raw) = match child {
                    None => (None, String::new()),
                    Some((value, cdata)) => (Some(value.as_str()), xml_child_raw(value, *cdata).0),
                };
                check_value(rec.value(col), cut(col), expected, &raw, field)?;
                if raw.len() as u64 > field {
                    prop_assert!(cut(col).is_some(), "a {}-byte child not cut", raw.len());
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// A generated workbook decodes to its rows: text as written, whole numbers without `.0`,
    /// empty cells absent, rows without content skipped, numbered as Excel shows them.
    #[test]
    fn generated_xlsx_round_trips(
        (names, rows) in table(1..4, 5, sheet_cell),
    ) {
        let bytes = xlsx_document(&names, &rows);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let format = Format::Xlsx { sheet: None };
        let items = decode_checked(bytes, &format, &columns(&names), &Limits::default())?
            .ok_or_else(|| TestCaseError::fail("generated XLSX refused"))?;
        let expected: Vec<(u64, Vec<Option<String>>)> = (2u64..)
            .zip(&rows)
            .filter(|(_, row)| row.iter().any(|c| !matches!(c, SheetCell::Empty)))
            .map(|(at, row)| {
                let values = row
                    .iter()
                    .map(|c| match c {
                        SheetCell::Empty => None,
                        SheetCell::Text(s) => Some(s.clone()),
                        SheetCell::Number(n) => Some(n.to_string()),
                    })
                    .collect();
                (at, values)
            })
            .collect();
        let got: Vec<(u64, Vec<Option<String>>)> = items
            .iter()
            .map(|i| match i {
                Ok(r) => Ok((
                    position(&r.location).unwrap_or(0),
                    r.values().map(|v| v.map(str::to_string)).collect(),
                )),
                Err(e) => Err(TestCaseError::fail(e.to_string())),
            })
            .collect::<Result<_, _>>()?;
        prop_assert_eq!(got, expected);
    }
}

/// Found by `mutated_golden_csv_keeps_the_contract`: row numbers assume one line ending for the
/// whole file (judged from its first line), so a CRLF file with one bare LF, or an LF file with
/// one CRLF, names the wrong rows, two records the same row. Left to the owner of `csv.rs`,
/// which is being rewritten; the property checks CSV rows only for order meanwhile.
#[test]
fn csv_rows_are_numbered_right_with_mixed_line_endings() {
    let format = Format::Csv {
        encoding: Encoding::Utf8,
        delimiter: b',',
    };
    for (doc, rows) in [
        ("a,b\r\n1,x\ny\r\n2,z\r\n3,w\r\n", [2, 3, 4, 5].as_slice()),
        ("a,b\r\n1,x\r\n2,y\n3,z\r\n", &[2, 3, 4]),
        ("a,b\n1,x\r\ny\n2,z\n", &[2, 3, 4]),
    ] {
        let items = decode(
            doc.into(),
            format.clone(),
            columns(&["a", "b"]),
            Limits::default(),
        )
        .unwrap();
        let got: Vec<u64> = items
            .iter()
            .map(|i| match i {
                Ok(r) => position(&r.location).unwrap(),
                Err(e) => position(&e.location).unwrap(),
            })
            .collect();
        assert_eq!(got, rows, "{doc:?}");
    }
}
