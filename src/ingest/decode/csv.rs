//! CSV decoder: checks the whole file's encoding, reads the header row, then streams data rows as
//! records holding the requested columns, row-numbered the way a spreadsheet shows them.
//!
//! The csv crate holds a whole record before handing it over, so the text reaches it through a
//! [`CsvGuard`]: a record longer than `csv_record_kib` is handed over cut, and becomes a
//! [`RecordError`] with its length, SHA-256 and first bytes; the rows after it read as usual.

use std::fs::File;
use std::path::Path;

use csv::ByteRecord;

use super::bounds::{CsvCut, CsvGuard};
use super::text::{self, Transcoder};
use super::{
    Column, Encoding, FileError, LimitError, Location, RawRecord, RecordError, Records, bytes_shown,
};

/// The parser's input: transcoded text whose records the guard keeps bounded.
type Input = CsvGuard<Transcoder<File>>;

/// Opens a delimited text file with a header row and streams its rows.
///
/// Refuses the file ([`FileError`]) when it is not wholly valid in `encoding` (a BOM wins), has no
/// header row, or lacks a required column. Header cells are trimmed and the first of duplicate
/// header names is used; values are not trimmed. A row whose field count differs from the header's
/// is a [`RecordError`]; completely empty lines are skipped. A record longer than
/// `limits.csv_record_bytes` is a [`RecordError`] (a header row that long refuses the file).
pub(super) fn open(
    path: &Path,
    encoding: Encoding,
    delimiter: u8,
    columns: &[Column],
    limits: &super::Limits,
) -> Result<Records, FileError> {
    text::validate(path, encoding)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        // The header is read by hand below, so that it goes through the same record path.
        .has_headers(false)
        // Field-count mismatches are a per-row matter for us, not a fatal reader error.
        .flexible(true)
        .buffer_capacity(64 * 1024)
        .from_reader(CsvGuard::new(
            Transcoder::open(path, encoding)?,
            delimiter,
            limits.csv_record_bytes,
            usize::try_from(limits.quarantine_raw_bytes).unwrap_or(usize::MAX),
        ));

    let mut header = ByteRecord::new();
    loop {
        let more = reader
            .read_byte_record(&mut header)
            .map_err(|e| csv_file_error(path, e))?;
        if !more {
            return Err(FileError::Empty);
        }
        if let Some(cut) = take_cut(&mut reader, &header) {
            return Err(LimitError::new(
                "csv_record_kib",
                bytes_shown(limits.csv_record_bytes),
                format!("the header row is {} long", bytes_shown(cut.excerpt.bytes)),
            )
            .into());
        }
        if !is_blank(&header) {
            break;
        }
    }
    let names: Vec<String> = header
        .iter()
        .map(|cell| String::from_utf8_lossy(cell).trim().to_string())
        .collect();

    let mut indices = Vec::with_capacity(columns.len());
    let mut missing = Vec::new();
    for column in columns {
        let index = names.iter().position(|n| *n == column.name);
        if index.is_none() && column.required {
            missing.push(column.name.clone());
        }
        indices.push(index);
    }
    if !missing.is_empty() {
        return Err(FileError::MissingColumns(missing));
    }

    Ok(Box::new(CsvRecords {
        reader,
        record: ByteRecord::new(),
        indices,
        header_len: names.len(),
        done: false,
        limit: limits.csv_record_bytes,
    }))
}

/// The guard's cut of the record the parser just read into `record`, if it was cut.
fn take_cut(reader: &mut csv::Reader<Input>, record: &ByteRecord) -> Option<CsvCut> {
    let from = record.position().map_or(0, csv::Position::byte);
    let to = reader.position().byte();
    reader.get_mut().take_cut(from, to)
}

/// Maps a csv error met before any record was produced to a file error.
fn csv_file_error(path: &Path, err: csv::Error) -> FileError {
    let position = err.position().map(|p| p.line());
    match err.into_kind() {
        csv::ErrorKind::Io(e) => text::file_error(path, e),
        other => FileError::Malformed {
            format: "CSV",
            reason: match position {
                Some(line) => format!("line {line}: {other:?}"),
                None => format!("{other:?}"),
            },
        },
    }
}

/// A line with no content at all; the csv crate reports it as one empty field.
fn is_blank(record: &ByteRecord) -> bool {
    record.is_empty() || (record.len() == 1 && record.as_slice().is_empty())
}

struct CsvRecords {
    reader: csv::Reader<Input>,
    /// Reused for every row: the hot path allocates only the output values.
    record: ByteRecord,
    /// Header index of each requested column, resolved once.
    indices: Vec<Option<usize>>,
    header_len: usize,
    done: bool,
    /// `csv_record_bytes`.
    limit: u64,
}

impl CsvRecords {
    /// The line where the current record starts, as a spreadsheet row number: the guard counts
    /// every line end it handed out or skipped (CR LF, LF or CR, mixed as they come; those inside
    /// quoted fields and cut records too) up to the record's first byte. When a record spans
    /// lines this is the line of its first field, which is what an operator finds in an editor.
    fn row(&mut self) -> u64 {
        let start = self.record.position().map_or(0, csv::Position::byte);
        self.reader.get_mut().line_of(start)
    }

    /// The error for a record the guard cut, at `location`.
    fn too_long(&self, location: Location, cut: CsvCut) -> RecordError {
        RecordError {
            location,
            reason: LimitError::new(
                "csv_record_kib",
                bytes_shown(self.limit),
                format!(
                    "the record is {} long (quoted line breaks included)",
                    bytes_shown(cut.excerpt.bytes)
                ),
            )
            .to_string(),
            excerpt: Some(cut.excerpt),
        }
    }
}

impl super::RecordStream for CsvRecords {}

impl Iterator for CsvRecords {
    type Item = Result<RawRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let cut = loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Ok(true) => {
                    // A cut record is never blank: the guard keeps at least its first bytes.
                    let cut = take_cut(&mut self.reader, &self.record);
                    if cut.is_some() || !is_blank(&self.record) {
                        break cut;
                    }
                }
                Err(err) => {
                    // With flexible byte records only I/O can fail here (the file changed since it
                    // was checked, or the disk failed); nothing after this point can be trusted.
                    self.done = true;
                    let at = err
                        .position()
                        .map_or_else(|| self.reader.position().byte(), csv::Position::byte);
                    let line = self.reader.get_mut().line_of(at);
                    let reason = match err.into_kind() {
                        csv::ErrorKind::Io(e) => match text::decode_error(&e) {
                            Some(d) => format!("{d}; the rest of the file was not read"),
                            None => format!("read error: {e}; the rest of the file was not read"),
                        },
                        other => format!("{other:?}; the rest of the file was not read"),
                    };
                    return Some(Err(RecordError {
                        location: Location::Row(line),
                        reason,
                        excerpt: None,
                    }));
                }
            }
        };
        if let Some(cut) = cut {
            let location = Location::Row(self.row());
            return Some(Err(self.too_long(location, cut)));
        }
        let location = Location::Row(self.row());
        if self.record.len() != self.header_len {
            return Some(Err(RecordError {
                location,
                reason: format!(
                    "has {} fields, the header has {}",
                    self.record.len(),
                    self.header_len
                ),
                excerpt: None,
            }));
        }
        // The fields lie one after another in the record's buffer: when it is valid text as a
        // whole, the text is copied once and each requested value is a range of it. (`simdutf8`
        // checks Chinese text several times faster than `std`; the fallback below names errors.)
        if let Ok(text) = simdutf8::basic::from_utf8(self.record.as_slice()) {
            let spans = (self.indices.iter())
                .map(|index| {
                    let r = index.and_then(|i| self.record.range(i))?;
                    Some((r.start, r.end))
                })
                .collect();
            if let Ok(r) = RawRecord::of_spans(location.clone(), text.to_owned(), spans) {
                return Some(Ok(r));
            }
        }
        // Else (only with a non-ASCII delimiter splitting a character) field by field, naming
        // the first requested one that is not text.
        let mut values = Vec::with_capacity(self.indices.len());
        for index in &self.indices {
            let value = match index.and_then(|i| self.record.get(i)) {
                None => None,
                Some(bytes) => match std::str::from_utf8(bytes) {
                    Ok(s) => Some(s.to_owned()),
                    // Only possible with a non-ASCII delimiter splitting a character.
                    Err(e) => {
                        return Some(Err(RecordError {
                            location,
                            reason: format!(
                                "field {} is not valid text after splitting on the delimiter: {e}",
                                index.map_or(0, |i| i + 1)
                            ),
                            excerpt: None,
                        }));
                    }
                },
            };
            values.push(value);
        }
        Some(Ok(RawRecord::new(location, values, Vec::new())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::test_support::file_with;
    use crate::ingest::decode::{Excerpt, Limits};
    use std::io::Write;

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

    #[test]
    fn happy_path_with_locations() {
        let f = file_with(
            b" id ,name,amount,id\n1, Alice ,12.5,x\n\n2,\"Bob\nSmith\",7,y\n3,Carol,,z\n",
        );
        let columns = cols(&[
            ("name", true),
            ("id", true),
            ("absent", false),
            ("amount", false),
        ]);
        let out: Vec<_> = open(f.path(), Encoding::Utf8, b',', &columns, &Limits::default())
            .unwrap()
            .collect();
        assert_eq!(
            out,
            vec![
                Ok(RawRecord::new(
                    Location::Row(2),
                    vec![s(" Alice "), s("1"), None, s("12.5")],
                    Vec::new()
                )),
                // The blank line 3 is skipped; the record starting on line 4 spans two lines.
                Ok(RawRecord::new(
                    Location::Row(4),
                    vec![s("Bob\nSmith"), s("2"), None, s("7")],
                    Vec::new()
                )),
                Ok(RawRecord::new(
                    Location::Row(6),
                    vec![s("Carol"), s("3"), None, s("")],
                    Vec::new()
                )),
            ]
        );
    }

    #[test]
    fn gb18030_with_chinese_headers_and_semicolons() {
        let (bytes, _, _) =
            encoding_rs::GB18030.encode("案件编号;当事人名称\nA001;张三\nA002;李四\n");
        let f = file_with(&bytes);
        let columns = cols(&[("当事人名称", true), ("案件编号", true)]);
        let out: Vec<_> = open(
            f.path(),
            Encoding::Gb18030,
            b';',
            &columns,
            &Limits::default(),
        )
        .unwrap()
        .collect();
        assert_eq!(
            out,
            vec![
                Ok(RawRecord::new(
                    Location::Row(2),
                    vec![s("张三"), s("A001")],
                    Vec::new()
                )),
                Ok(RawRecord::new(
                    Location::Row(3),
                    vec![s("李四"), s("A002")],
                    Vec::new()
                )),
            ]
        );
    }

    #[test]
    fn utf8_bom_overrides_declared_gb18030() {
        let bytes = [b"\xEF\xBB\xBF".as_slice(), "名称\n甲公司\n".as_bytes()].concat();
        let f = file_with(&bytes);
        let out: Vec<_> = open(
            f.path(),
            Encoding::Gb18030,
            b',',
            &cols(&[("名称", true)]),
            &Limits::default(),
        )
        .unwrap()
        .collect();
        assert_eq!(
            out,
            vec![Ok(RawRecord::new(
                Location::Row(2),
                vec![s("甲公司")],
                Vec::new()
            ))]
        );
    }

    #[test]
    fn invalid_gb18030_offset() {
        let (head, _, _) = encoding_rs::GB18030.encode("名称\n");
        let mut bytes = head.into_owned();
        while bytes.len() < 1234 {
            bytes.extend_from_slice(b"a\n");
        }
        bytes.truncate(1234);
        bytes.extend_from_slice(b"\xFF\n");
        let f = file_with(&bytes);
        match open(
            f.path(),
            Encoding::Gb18030,
            b',',
            &cols(&[("名称", true)]),
            &Limits::default(),
        ) {
            Err(FileError::Encoding {
                encoding: "GB18030",
                offset: 1234,
            }) => {}
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => panic!("accepted an invalid file"),
        }
    }

    #[test]
    fn the_fast_text_check_accepts_exactly_what_std_accepts() {
        // Every one- and two-byte string, and every three-byte string starting with a lead byte
        // of a three- or four-byte character (overlong forms, surrogates, truncation), alone and
        // after Chinese text, which takes the checker off its ASCII path.
        let mut cases: Vec<Vec<u8>> = (0..=0xFFFFu32)
            .map(|v| v.to_be_bytes()[2..].to_vec())
            .collect();
        cases.extend((0..=0xFFu8).map(|b| vec![b]));
        for lead in 0xE0..=0xF4u8 {
            for b1 in 0x70..=0xC0u8 {
                for b2 in [0x00, 0x7F, 0x80, 0xBF, 0xC0] {
                    cases.push(vec![lead, b1, b2]);
                    cases.push(vec![lead, b1, b2, 0x80]);
                }
            }
        }
        let prefix = "行政处罚决定书，".repeat(8).into_bytes();
        for case in cases {
            for bytes in [case.clone(), [prefix.as_slice(), &case].concat()] {
                assert_eq!(
                    simdutf8::basic::from_utf8(&bytes).is_ok(),
                    std::str::from_utf8(&bytes).is_ok(),
                    "{bytes:02X?}"
                );
            }
        }
    }

    #[test]
    fn invalid_utf8_offset() {
        let f = file_with(b"a,b\n1,2\n3,\xC0\xAF\n");
        match open(
            f.path(),
            Encoding::Utf8,
            b',',
            &cols(&[("a", true)]),
            &Limits::default(),
        ) {
            Err(FileError::Encoding {
                encoding: "UTF-8",
                offset: 10,
            }) => {}
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => panic!("accepted an invalid file"),
        }
    }

    #[test]
    fn empty_and_missing_columns() {
        let f = file_with(b"");
        assert!(matches!(
            open(f.path(), Encoding::Utf8, b',', &[], &Limits::default()),
            Err(FileError::Empty)
        ));
        let f = file_with(b"\n\n");
        assert!(matches!(
            open(f.path(), Encoding::Utf8, b',', &[], &Limits::default()),
            Err(FileError::Empty)
        ));
        let f = file_with(b"a,b\n1,2\n");
        let columns = cols(&[("z", true), ("a", true), ("y", false), ("x", true)]);
        match open(f.path(), Encoding::Utf8, b',', &columns, &Limits::default()) {
            Err(FileError::MissingColumns(names)) => assert_eq!(names, vec!["z", "x"]),
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => panic!("accepted a file without required columns"),
        }
    }

    #[test]
    fn wrong_field_count_is_a_record_error() {
        let f = file_with(b"a,b,c\n1,2\n4,5,6\n7,8,9,10\n");
        let out: Vec<_> = open(
            f.path(),
            Encoding::Utf8,
            b',',
            &cols(&[("c", true)]),
            &Limits::default(),
        )
        .unwrap()
        .collect();
        assert_eq!(
            out,
            vec![
                Err(RecordError {
                    location: Location::Row(2),
                    reason: "has 2 fields, the header has 3".into(),
                    excerpt: None
                }),
                Ok(RawRecord::new(Location::Row(3), vec![s("6")], Vec::new())),
                Err(RecordError {
                    location: Location::Row(4),
                    reason: "has 4 fields, the header has 3".into(),
                    excerpt: None
                }),
            ]
        );
    }

    #[test]
    fn header_only_yields_nothing() {
        let f = file_with(b"a,b\r\n");
        let mut records = open(
            f.path(),
            Encoding::Utf8,
            b',',
            &cols(&[("b", true)]),
            &Limits::default(),
        )
        .unwrap();
        assert!(records.next().is_none());
    }

    #[test]
    #[ignore = "throughput check; run with --release --ignored"]
    fn throughput() {
        let header: Vec<String> = (0..40).map(|i| format!("col{i}")).collect();
        let row: Vec<String> = (0..40).map(|i| format!("value-{i}-abc")).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "{}", header.join(",")).unwrap();
        let line = row.join(",");
        for _ in 0..300_000 {
            writeln!(f, "{line}").unwrap();
        }
        f.flush().unwrap();
        let columns: Vec<Column> = (0..40)
            .map(|i| Column {
                name: format!("col{i}"),
                required: true,
            })
            .collect();
        let start = std::time::Instant::now();
        let n = open(f.path(), Encoding::Utf8, b',', &columns, &Limits::default())
            .unwrap()
            .filter(Result::is_ok)
            .count();
        let elapsed = start.elapsed();
        assert_eq!(n, 300_000);
        eprintln!("{n} rows in {elapsed:?}");
    }

    fn sha(bytes: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).into()
    }

    #[test]
    fn a_record_over_the_limit_is_refused_and_the_rows_after_it_are_read() {
        // 5 MB in one quoted field, 500,000 line breaks inside it.
        let big = format!("3,\"{}\",z", "甲乙丙\n".repeat(500_000));
        for eol in ["\n", "\r\n"] {
            let text = [
                "id,name,note",
                "1,Alice,x",
                "",
                "2,\"Bob",
                "Smith\",y",
                &big,
                "4,Dan,w",
                "",
                "5,Eve,\"v\"",
                "",
            ]
            .join(eol);
            let f = file_with(text.as_bytes());
            let out: Vec<_> = open(
                f.path(),
                Encoding::Utf8,
                b',',
                &cols(&[("id", true), ("note", true)]),
                &Limits::default(),
            )
            .unwrap()
            .collect();
            let after = 6 + 500_000;
            let ok = |row, id: &str, note: &str| {
                Ok(RawRecord::new(
                    Location::Row(row),
                    vec![s(id), s(note)],
                    Vec::new(),
                ))
            };
            let head = {
                let mut end = 4096;
                while !big.is_char_boundary(end) {
                    end -= 1;
                }
                big[..end].to_string()
            };
            assert_eq!(
                out,
                vec![
                    ok(2, "1", "x"),
                    ok(4, "2", "y"),
                    Err(RecordError {
                        location: Location::Row(6),
                        reason: format!(
                            "the record is {} long (quoted line breaks included), over the limit \
                             csv_record_kib = 1,048,576 bytes (1 MiB) ([ingest.limits]; raise it \
                             there if the file is genuine)",
                            bytes_shown(big.len() as u64)
                        ),
                        excerpt: Some(Excerpt {
                            head,
                            bytes: big.len() as u64,
                            sha256: sha(big.as_bytes()),
                        }),
                    }),
                    ok(after + 1, "4", "w"),
                    ok(after + 3, "5", "v"),
                ],
                "line ends {eol:?}"
            );
        }
    }

    #[test]
    fn several_long_records_each_refused_where_they_stand() {
        let limits = Limits {
            csv_record_bytes: 1024,
            ..Limits::default()
        };
        // Long unquoted, long quoted with a quote mid-way, exactly at the limit, one byte over.
        let unquoted = format!("1,{}", "a".repeat(5000));
        let quoted = format!("2,\"{}\"\"{}\"", "b\n".repeat(600), "é".repeat(300));
        let exact = format!("3,{}", "c".repeat(1022));
        let over = format!("4,{}", "d".repeat(1023));
        let text = format!("id,v\n{unquoted}\n{quoted}\n{exact}\n{over}\n5,e\n");
        let f = file_with(text.as_bytes());
        let out: Vec<_> = open(
            f.path(),
            Encoding::Utf8,
            b',',
            &cols(&[("id", true)]),
            &limits,
        )
        .unwrap()
        .map(|r| match r {
            Ok(r) => (r.location.clone(), Ok(r.value(0).unwrap().to_string())),
            Err(e) => (e.location, Err(e.excerpt.unwrap().bytes)),
        })
        .collect();
        assert_eq!(
            out,
            vec![
                (Location::Row(2), Err(unquoted.len() as u64)),
                (Location::Row(3), Err(quoted.len() as u64)),
                (Location::Row(604), Ok("3".to_string())),
                (Location::Row(605), Err(over.len() as u64)),
                (Location::Row(606), Ok("5".to_string())),
            ]
        );
    }

    #[test]
    fn a_header_over_the_limit_refuses_the_file() {
        let limits = Limits {
            csv_record_bytes: 1024,
            ..Limits::default()
        };
        let header: Vec<String> = (0..400).map(|i| format!("column{i}")).collect();
        let text = format!("{}\n1\n", header.join(","));
        let f = file_with(text.as_bytes());
        match open(
            f.path(),
            Encoding::Utf8,
            b',',
            &cols(&[("column0", true)]),
            &limits,
        ) {
            Err(FileError::Limit(e)) => {
                assert_eq!(e.key, "csv_record_kib");
                assert_eq!(
                    e.found,
                    format!(
                        "the header row is {} long",
                        bytes_shown(text.len() as u64 - 3)
                    )
                );
            }
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => panic!("accepted a header over the limit"),
        }
    }

    #[test]
    fn a_50_mb_record_is_decoded_in_bounded_memory() {
        let out = crate::ingest::decode::bounds::measure::decode_in_child(
            &crate::ingest::decode::Format::Csv {
                encoding: Encoding::Utf8,
                delimiter: b',',
            },
            &cols(&[("id", true)]),
            "id,name\n1,a\n2,\"",
            50,
            "\"\n3,c\n",
        );
        assert_eq!(out.records, 2);
        let length = bytes_shown((50 << 20) + 4);
        assert!(
            out.error()
                .starts_with(&format!("row 3: the record is {length} long"))
        );
    }

    /// Best of five: decoding `path` whole, then reading its text without and through the
    /// guard, as the parser's reader does (64 KiB at a time).
    fn timings(
        path: &Path,
        encoding: Encoding,
        delimiter: u8,
        columns: &[Column],
    ) -> [std::time::Duration; 3] {
        let best = super::super::bounds::measure::best_of_five;
        let decode = best(&|| {
            open(path, encoding, delimiter, columns, &Limits::default())
                .unwrap()
                .filter(Result::is_ok)
                .count()
        });
        let read = |guarded: bool| {
            best(&|| {
                let mut text = Transcoder::open(path, encoding).unwrap();
                let mut guard = CsvGuard::new(
                    Transcoder::open(path, encoding).unwrap(),
                    delimiter,
                    1 << 20,
                    4096,
                );
                let r: &mut dyn std::io::Read = if guarded { &mut guard } else { &mut text };
                let mut buf = vec![0u8; 64 * 1024];
                let mut total = 0;
                loop {
                    let n = r.read(&mut buf).unwrap();
                    if n == 0 {
                        return total;
                    }
                    total += n;
                }
            })
        };
        let (plain, guarded) = (read(false), read(true));
        assert_eq!(plain.1, guarded.1);
        eprintln!(
            "{}: {} bytes of text, {} records: decode {:?}; text alone {:?}, through the guard {:?}",
            path.display(),
            plain.1,
            decode.1,
            decode.0,
            plain.0,
            guarded.0
        );
        [decode.0, plain.0, guarded.0]
    }

    #[test]
    #[ignore = "throughput check; run with --release --ignored"]
    fn guard_throughput() {
        // The sunshine adapter's GB18030 export, 200,000 rows.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sunshine.csv");
        crate::sample::write_sunshine_csv(&path, 200_000, 0.0, 42).unwrap();
        let adapter =
            crate::ingest::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/sunshine"))
                .unwrap();
        let super::super::Format::Csv {
            encoding,
            delimiter,
        } = adapter.format
        else {
            panic!("sunshine is a CSV adapter")
        };
        timings(&path, encoding, delimiter, &adapter.columns);
        // The guard's worst ordinary case: every one of 40 fields quoted, with quotes inside.
        let path = dir.path().join("quoted.csv");
        let mut f = std::io::BufWriter::new(File::create(&path).unwrap());
        let header: Vec<String> = (0..40).map(|i| format!("col{i}")).collect();
        writeln!(f, "{}", header.join(",")).unwrap();
        let row: Vec<String> = (0..40).map(|i| format!("\"v{i} \"\"q\"\", 甲\"")).collect();
        let row = row.join(",");
        for _ in 0..200_000 {
            writeln!(f, "{row}").unwrap();
        }
        f.flush().unwrap();
        let columns: Vec<Column> = header
            .into_iter()
            .map(|name| Column {
                name,
                required: true,
            })
            .collect();
        timings(&path, Encoding::Utf8, b',', &columns);
    }

    #[test]
    fn crlf_rows_are_numbered_like_a_spreadsheet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crlf.csv");
        std::fs::write(&path, "id,name\r\nA,x\r\nB,y\r\n\r\nC,z\r\n").unwrap();
        let cols = [Column {
            name: "id".into(),
            required: true,
        }];
        let rows: Vec<(Location, Option<String>)> =
            open(&path, Encoding::Utf8, b',', &cols, &Limits::default())
                .unwrap()
                .map(|r| r.unwrap())
                .map(|r| (r.location.clone(), r.value(0).map(str::to_string)))
                .collect();
        assert_eq!(
            rows,
            vec![
                (Location::Row(2), Some("A".into())),
                (Location::Row(3), Some("B".into())),
                (Location::Row(5), Some("C".into())),
            ]
        );
    }
}
