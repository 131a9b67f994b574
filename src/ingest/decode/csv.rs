//! CSV decoder: checks the whole file's encoding, reads the header row, then streams data rows as
//! records holding the requested columns, row-numbered the way a spreadsheet shows them.

use std::fs::File;
use std::path::Path;

use csv::ByteRecord;

use super::text::{self, Transcoder};
use super::{Column, Encoding, FileError, Location, RawRecord, RecordError, Records};

/// Opens a delimited text file with a header row and streams its rows.
///
/// Refuses the file ([`FileError`]) when it is not wholly valid in `encoding` (a BOM wins), has no
/// header row, or lacks a required column. Header cells are trimmed and the first of duplicate
/// header names is used; values are not trimmed. A row whose field count differs from the header's
/// is a [`RecordError`]; completely empty lines are skipped.
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
        .from_reader(Transcoder::open(path, encoding)?);

    let mut header = ByteRecord::new();
    loop {
        let more = reader
            .read_byte_record(&mut header)
            .map_err(|e| csv_file_error(path, e))?;
        if !more {
            return Err(FileError::Empty);
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
        crlf: uses_crlf(path),
    }))
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

/// Whether the file ends its lines with CR LF (Windows exports). The csv crate stops a record at the
/// CR and consumes the LF with the next read, so its line counts lag by one for such files.
fn uses_crlf(path: &Path) -> bool {
    use std::io::Read;
    let mut head = vec![0u8; 64 * 1024];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    head[..n]
        .windows(2)
        .find(|w| w[1] == b'\n')
        .is_some_and(|w| w[0] == b'\r')
}

/// A line with no content at all; the csv crate reports it as one empty field.
fn is_blank(record: &ByteRecord) -> bool {
    record.is_empty() || (record.len() == 1 && record.as_slice().is_empty())
}

struct CsvRecords {
    reader: csv::Reader<Transcoder<File>>,
    /// Reused for every row: the hot path allocates only the output values.
    record: ByteRecord,
    /// Header index of each requested column, resolved once.
    indices: Vec<Option<usize>>,
    header_len: usize,
    done: bool,
    /// Lines end with CR LF (see [`uses_crlf`]).
    crlf: bool,
}

impl CsvRecords {
    /// The line where the current record starts, as a spreadsheet row number.
    ///
    /// The csv crate's record position is where it started reading, which lies before any blank
    /// lines it skipped; its reader position after the record is the line after the record's
    /// terminator. Counting back from the end over the newlines inside quoted fields gives the
    /// true start; the larger of the two is right except for a last record that has no final
    /// newline and follows blank lines, where the start position is used. When a record spans lines
    /// this is the line of its first field, which is what an operator finds in a text editor.
    fn row(&self) -> u64 {
        let newlines = self
            .record
            .as_slice()
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        let from_end = self.reader.position().line().saturating_sub(1 + newlines);
        let from_start = self.record.position().map_or(0, csv::Position::line);
        from_end.max(from_start) + u64::from(self.crlf)
    }
}

impl super::RecordStream for CsvRecords {}

impl Iterator for CsvRecords {
    type Item = Result<RawRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Ok(true) if is_blank(&self.record) => continue,
                Ok(true) => break,
                Err(err) => {
                    // With flexible byte records only I/O can fail here (the file changed since it
                    // was checked, or the disk failed); nothing after this point can be trusted.
                    self.done = true;
                    let line = err
                        .position()
                        .map_or_else(|| self.reader.position().line(), |p| p.line());
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
        Some(Ok(RawRecord {
            location,
            values,
            cut: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::test_support::file_with;
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
        let out: Vec<_> = open(
            f.path(),
            Encoding::Utf8,
            b',',
            &columns,
            &crate::ingest::Limits::default(),
        )
        .unwrap()
        .collect();
        assert_eq!(
            out,
            vec![
                Ok(RawRecord {
                    location: Location::Row(2),
                    values: vec![s(" Alice "), s("1"), None, s("12.5")],
                    cut: Vec::new()
                }),
                // The blank line 3 is skipped; the record starting on line 4 spans two lines.
                Ok(RawRecord {
                    location: Location::Row(4),
                    values: vec![s("Bob\nSmith"), s("2"), None, s("7")],
                    cut: Vec::new()
                }),
                Ok(RawRecord {
                    location: Location::Row(6),
                    values: vec![s("Carol"), s("3"), None, s("")],
                    cut: Vec::new()
                }),
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
            &crate::ingest::Limits::default(),
        )
        .unwrap()
        .collect();
        assert_eq!(
            out,
            vec![
                Ok(RawRecord {
                    location: Location::Row(2),
                    values: vec![s("张三"), s("A001")],
                    cut: Vec::new()
                }),
                Ok(RawRecord {
                    location: Location::Row(3),
                    values: vec![s("李四"), s("A002")],
                    cut: Vec::new()
                }),
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
            &crate::ingest::Limits::default(),
        )
        .unwrap()
        .collect();
        assert_eq!(
            out,
            vec![Ok(RawRecord {
                location: Location::Row(2),
                values: vec![s("甲公司")],
                cut: Vec::new()
            })]
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
            &crate::ingest::Limits::default(),
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
    fn invalid_utf8_offset() {
        let f = file_with(b"a,b\n1,2\n3,\xC0\xAF\n");
        match open(
            f.path(),
            Encoding::Utf8,
            b',',
            &cols(&[("a", true)]),
            &crate::ingest::Limits::default(),
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
            open(
                f.path(),
                Encoding::Utf8,
                b',',
                &[],
                &crate::ingest::Limits::default()
            ),
            Err(FileError::Empty)
        ));
        let f = file_with(b"\n\n");
        assert!(matches!(
            open(
                f.path(),
                Encoding::Utf8,
                b',',
                &[],
                &crate::ingest::Limits::default()
            ),
            Err(FileError::Empty)
        ));
        let f = file_with(b"a,b\n1,2\n");
        let columns = cols(&[("z", true), ("a", true), ("y", false), ("x", true)]);
        match open(
            f.path(),
            Encoding::Utf8,
            b',',
            &columns,
            &crate::ingest::Limits::default(),
        ) {
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
            &crate::ingest::Limits::default(),
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
                Ok(RawRecord {
                    location: Location::Row(3),
                    values: vec![s("6")],
                    cut: Vec::new()
                }),
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
            &crate::ingest::Limits::default(),
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
        let n = open(
            f.path(),
            Encoding::Utf8,
            b',',
            &columns,
            &crate::ingest::Limits::default(),
        )
        .unwrap()
        .filter(Result::is_ok)
        .count();
        let elapsed = start.elapsed();
        assert_eq!(n, 300_000);
        eprintln!("{n} rows in {elapsed:?}");
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
        let rows: Vec<(Location, Option<String>)> = open(
            &path,
            Encoding::Utf8,
            b',',
            &cols,
            &crate::ingest::Limits::default(),
        )
        .unwrap()
        .map(|r| r.unwrap())
        .map(|r| (r.location, r.values[0].clone()))
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
