//! Shared pieces of the property tests of every crate in the workspace (a dev-dependency only):
//! one configuration, so that every property runs a bounded number of cases inside plain
//! `cargo test`; edits of valid inputs, so that generated cases reach deep into the parsers
//! instead of failing on the first byte; and a deadline, so that a parser that hangs fails its
//! test instead of stalling the run.
//!
//! A failing case that a property finds is kept as a plain `#[test]` holding the literal input,
//! beside the property, rather than in proptest's regression files.

use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// Longest one parse of a generated input may take under [`within`] (a debug build on a shared
/// machine); the inputs are a few kilobytes, so a parse that takes this long is stuck.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A property's configuration: `cases` generated cases; no regression files written into the
/// source tree; shrinking a failure bounded to a minute, so a failing run still ends.
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        max_shrink_time: 60_000,
        ..Config::default()
    }
}

/// Pieces of CSV (and of its GB18030 text) that mutations insert.
pub const CSV_SYNTAX: &[&[u8]] = &[
    b",",
    b"\"",
    b"\"\"",
    b"\n",
    b"\r\n",
    b"\r",
    b"\n\n",
    b"\xEF\xBB\xBF",
    b"\x81\x30\x81\x30",
    b"\xD6\xD0",
    b"\x80",
    b"\xFF",
    b"\x00",
    b"\t",
    b";",
];

/// Pieces of SpreadsheetML that mutations of a workbook's entries insert: absurd counts,
/// references at the sheet's far corner, shared-string indexes out of range.
pub const XLSX_SYNTAX: &[&[u8]] = &[
    b" t=\"s\"",
    b" t=\"inlineStr\"",
    b" t=\"e\"",
    b"<v>999999</v>",
    b"<v>-1</v>",
    b" r=\"XFD1048576\"",
    b" r=\"A0\"",
    b" uniqueCount=\"4000000000\"",
    b" count=\"99999999999\"",
    b"<c r=\"A1\" t=\"inlineStr\"><is><t>x</t></is></c>",
    b"<row r=\"1048576\">",
    b"<row r=\"0\">",
    b"<dimension ref=\"A1:XFD1048576\"/>",
    b"<si><t>x</t></si>",
    b"<sheet name=\"x\" sheetId=\"9\" r:id=\"rId9\"/>",
];

/// Pieces of XML that mutations of XML documents insert: markup, references valid and not,
/// declarations the readers refuse, namespaces, a BOM, characters XML 1.0 forbids and a cut
/// UTF-8 sequence.
pub const XML_SYNTAX: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"/>",
    b"&",
    b"&amp;",
    b"&lt;",
    b"&#0;",
    b"&#x1;",
    b"&#xD800;",
    b"&#1114112;",
    b"&#x4E2D;",
    b"&foo;",
    b"\"",
    b"'",
    b"=",
    b" ",
    b"<!--",
    b"-->",
    b"<![CDATA[",
    b"]]>",
    b"<?xml version=\"1.0\"?>",
    b"<?pi x?>",
    b"<!DOCTYPE x>",
    b"<!ENTITY e \"x\">",
    b" xmlns=\"urn:x\"",
    b" xmlns:p=\"urn:xianjie:province:package:1\"",
    b"p:",
    b"\xEF\xBB\xBF",
    b"\xEF\xBF\xBE",
    b"\x01",
    b"\r\n",
    b"\xE4\xB8",
    "甲".as_bytes(),
];

/// One edit of a byte string. Positions are drawn as fractions of the length at the time the
/// edit is applied, so a list of edits stays meaningful whatever the input.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Overwrite one byte.
    Set(Index, u8),
    /// Insert bytes (a token of the format, or random bytes) before a position.
    Insert(Index, Vec<u8>),
    /// Remove up to this many bytes from a position.
    Remove(Index, usize),
    /// Cut everything from a position on.
    Truncate(Index),
    /// Copy up to `len` bytes from one position to another (repeats and nests structure).
    Copy {
        /// Start of the copied bytes.
        from: Index,
        /// At most this many.
        len: usize,
        /// Where they are inserted.
        to: Index,
    },
}

/// Edits that insert `tokens` (pieces of syntax of the format under test) more often than
/// random bytes, so that mutants stay close to the grammar.
pub fn edit(tokens: &'static [&'static [u8]]) -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Set(at, b)),
        4 => (any::<Index>(), prop::sample::select(tokens))
            .prop_map(|(at, t)| Edit::Insert(at, t.to_vec())),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        2 => (any::<Index>(), 1usize..64).prop_map(|(at, n)| Edit::Remove(at, n)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        1 => (any::<Index>(), 1usize..256, any::<Index>())
            .prop_map(|(from, len, to)| Edit::Copy { from, len, to }),
    ]
}

/// `input` with `edits` applied in order.
pub fn apply(input: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = input.to_vec();
    // A position in `0..=len`, so that inserting at the very end is possible.
    let at = |i: &Index, len: usize| i.index(len + 1);
    for e in edits {
        let len = out.len();
        match e {
            Edit::Set(i, b) => {
                if len > 0 {
                    out[i.index(len)] = *b;
                }
            }
            Edit::Insert(i, bytes) => {
                let p = at(i, len);
                out.splice(p..p, bytes.iter().copied());
            }
            Edit::Remove(i, n) => {
                let p = at(i, len);
                out.drain(p..(p + n).min(len));
            }
            Edit::Truncate(i) => out.truncate(at(i, len)),
            Edit::Copy { from, len: n, to } => {
                let p = at(from, len);
                let piece = out[p..(p + n).min(len)].to_vec();
                let q = at(to, len);
                out.splice(q..q, piece);
            }
        }
    }
    out
}

/// `base` changed by 1 to `max` edits.
pub fn mutated(
    base: Vec<u8>,
    tokens: &'static [&'static [u8]],
    max: usize,
) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(edit(tokens), 1..=max).prop_map(move |edits| apply(&base, &edits))
}

/// Like [`mutated`], for parsers of text: bytes that are not UTF-8 become U+FFFD.
pub fn mutated_text(
    base: &str,
    tokens: &'static [&'static [u8]],
    max: usize,
) -> impl Strategy<Value = String> + use<> {
    mutated(base.as_bytes().to_vec(), tokens, max)
        .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Mutations of a UTF-8 document: mostly of its text (so that most mutants stay UTF-8 and get
/// past a reader's first check), some of its bytes.
pub fn mutated_utf8(
    base: &[u8],
    tokens: &'static [&'static [u8]],
    max: usize,
) -> impl Strategy<Value = Vec<u8>> + use<> {
    let text = String::from_utf8_lossy(base).into_owned();
    prop_oneof![
        3 => mutated_text(&text, tokens, max).prop_map(String::into_bytes),
        1 => mutated(base.to_vec(), tokens, max),
    ]
}

/// A zip archive (an XLSX workbook) rebuilt with the XML entry picked by `which` edited, so that
/// a mutation reaches the spreadsheet reader past the archive's checksums.
pub fn zip_with_edited_entry(zip: &[u8], which: Index, edits: &[Edit]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("the base is a zip archive");
    let xml: Vec<usize> = (0..archive.len())
        .filter(|&i| {
            archive
                .name_for_index(i)
                .and_then(Result::ok)
                .is_some_and(|n| n.ends_with(".xml") || n.ends_with(".rels"))
        })
        .collect();
    let target = xml[which.index(xml.len())];
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let name = entry.name().expect("entry name").to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("entry inflates");
        if i == target {
            bytes = apply(&bytes, edits);
        }
        out.start_file(name, options).expect("entry starts");
        out.write_all(&bytes).expect("entry written");
    }
    out.finish().expect("archive written").into_inner()
}

/// Runs `f` on its own thread and returns its result, failing the test when it takes longer
/// than `limit`: a parser that loops forever on some input is then a failure with that input,
/// not a stalled test run. (The stuck thread is left behind; the test fails anyway.)
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The receiver is gone only after a timeout, which has already failed the test.
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: did not finish within {limit:?}")
        }
        // `f` panicked on its thread; the panic message is already printed.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    #[test]
    fn edits_apply_at_their_positions() {
        let mut runner = TestRunner::deterministic();
        let mid = any::<Index>().new_tree(&mut runner).unwrap().current();
        let p = mid.index(4);
        let out = apply(b"abc", &[Edit::Insert(mid, b"XY".to_vec())]);
        assert_eq!(out, [&b"abc"[..p], b"XY", &b"abc"[p..]].concat());
        assert_eq!(apply(b"", &[Edit::Set(mid, 1)]), b"");
        assert_eq!(apply(b"abc", &[Edit::Truncate(mid)]), &b"abc"[..p]);
        let removed = apply(b"abcdef", &[Edit::Remove(mid, 100)]);
        assert!(b"abcdef".starts_with(&removed));
    }

    #[test]
    fn a_slow_function_fails_within_its_deadline() {
        assert_eq!(within(Duration::from_secs(5), "quick", || 7), 7);
        let slow = std::panic::catch_unwind(|| {
            within(Duration::from_millis(50), "slow", || {
                std::thread::sleep(Duration::from_secs(2))
            })
        });
        assert!(slow.is_err());
    }
}
