//! JSON decoder: a top-level array of objects (checked whole first, then streamed element by
//! element from a background thread) or JSON Lines (one object per line, streamed line by line).
//! Objects are flattened into the requested columns: nested keys are joined with dots
//! (`party.name`) and arrays of scalars with `;`.
//!
//! Neither pass builds the document: elements are visited with serde and only the requested keys
//! are turned into text, so memory is bounded by one element (or one line).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::text::{self, RecordSender, Transcoder};
use super::{Column, Encoding, FileError, Location, RawRecord, RecordError, Records};

/// Opens a JSON file: a top-level array of objects, or JSON Lines when `lines` is set.
///
/// Refuses the file ([`FileError`]) when it is not wholly valid in `encoding` (a BOM wins), holds
/// nothing, or (array form) is not one well-formed JSON array. An element or line that is not an
/// object, a line that is not valid JSON, or a requested key holding an array of objects is a
/// [`RecordError`] at [`Location::Index`] (0-based) or [`Location::Line`] (1-based).
///
/// Values: strings as they are, numbers as JSON writes them (integers exactly; other numbers in
/// their shortest round-trip form, so `1.50` reads `1.5`), booleans `true`/`false`, `null` → `None`.
pub(super) fn open(
    path: &Path,
    encoding: Encoding,
    columns: &[Column],
    lines: bool,
    limits: &super::Limits,
) -> Result<Records, FileError> {
    text::validate(path, encoding)?;
    let plan = Plan::new(columns);
    if lines {
        return Ok(Box::new(JsonLines {
            reader: Transcoder::open(path, encoding)?,
            line: Vec::with_capacity(4096),
            number: 0,
            plan,
            done: false,
        }));
    }
    check_array(path, encoding)?;
    let reader = Transcoder::open(path, encoding)?;
    text::spawn_records(path, "json-decode", Location::Index(0), move |tx| {
        stream_array(reader, &plan, tx);
    })
}

/// The requested keys, resolved once.
struct Plan {
    width: usize,
    /// Dotted key → indices of the columns asking for it.
    targets: HashMap<String, Vec<usize>>,
    /// Every proper dotted prefix of a requested key: the objects worth descending into.
    prefixes: HashSet<String>,
}

impl Plan {
    fn new(columns: &[Column]) -> Self {
        let mut targets: HashMap<String, Vec<usize>> = HashMap::new();
        let mut prefixes = HashSet::new();
        for (i, column) in columns.iter().enumerate() {
            targets.entry(column.name.clone()).or_default().push(i);
            for (pos, _) in column.name.match_indices('.') {
                prefixes.insert(column.name[..pos].to_string());
            }
        }
        Plan {
            width: columns.len(),
            targets,
            prefixes,
        }
    }
}

/// The record being flattened.
struct Flatten<'p> {
    plan: &'p Plan,
    /// Dotted key of the value being visited.
    key: String,
    values: Vec<Option<String>>,
    error: Option<String>,
}

impl<'p> Flatten<'p> {
    fn new(plan: &'p Plan) -> Self {
        Flatten {
            plan,
            key: String::new(),
            values: vec![None; plan.width],
            error: None,
        }
    }

    fn wanted(&self) -> bool {
        self.plan.targets.contains_key(&self.key) || self.plan.prefixes.contains(&self.key)
    }

    fn set(&mut self, text: String) {
        if let Some((&last, rest)) = self
            .plan
            .targets
            .get(&self.key)
            .and_then(|t| t.split_last())
        {
            for &i in rest {
                self.values[i] = Some(text.clone());
            }
            self.values[last] = Some(text);
        }
    }

    fn fail(&mut self, reason: String) {
        if self.error.is_none() {
            self.error = Some(reason);
        }
    }

    fn finish(self, location: Location) -> Result<RawRecord, RecordError> {
        match self.error {
            Some(reason) => Err(RecordError {
                location,
                reason,
                excerpt: None,
            }),
            None => Ok(RawRecord {
                location,
                values: self.values,
                cut: Vec::new(),
            }),
        }
    }
}

fn number_text(n: serde_json::Number) -> String {
    n.to_string()
}

fn float_text(f: f64) -> String {
    serde_json::Number::from_f64(f).map_or_else(|| f.to_string(), number_text)
}

/// Visits one record: `Ok(None)` for an object (flattened into the state), `Ok(Some(kind))` when
/// the value is not an object.
struct RecordSeed<'s, 'p>(&'s mut Flatten<'p>);

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, '_> {
    type Value = Option<&'static str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, '_> {
    type Value = Option<&'static str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        visit_object(self.0, map)?;
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Some("an array"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Some("a string"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Some("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Some("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Some("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Some("a number"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Some("null"))
    }
}

/// Flattens the entries of an object whose dotted key is `st.key`.
fn visit_object<'de, A: MapAccess<'de>>(st: &mut Flatten<'_>, mut map: A) -> Result<(), A::Error> {
    while let Some(key) = map.next_key::<String>()? {
        let base = st.key.len();
        if base > 0 {
            st.key.push('.');
        }
        st.key.push_str(&key);
        map.next_value_seed(ValueSeed(st))?;
        st.key.truncate(base);
    }
    Ok(())
}

/// Visits the value at `st.key`, storing it when requested.
struct ValueSeed<'s, 'p>(&'s mut Flatten<'p>);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.0.wanted() {
            deserializer.deserialize_any(self)
        } else {
            // Nobody asked for this subtree: skip it without building text.
            <IgnoredAny as serde::Deserialize>::deserialize(deserializer).map(|_| ())
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        visit_object(self.0, map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let st = self.0;
        let mut joined: Option<String> = None;
        let mut bad: Option<&'static str> = None;
        while let Some(item) = seq.next_element_seed(ScalarSeed)? {
            match item {
                Ok(text) => {
                    let text = text.unwrap_or_default();
                    match &mut joined {
                        Some(j) => {
                            j.push(';');
                            j.push_str(&text);
                        }
                        None => joined = Some(text),
                    }
                }
                Err(kind) => bad = bad.or(Some(kind)),
            }
        }
        match bad {
            Some(kind) => st.fail(format!(
                "\"{}\" is an array holding {kind}; only arrays of plain values can be read",
                st.key
            )),
            None => {
                if let Some(text) = joined {
                    st.set(text);
                }
            }
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.set(v.to_string());
        Ok(())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.0.set(v);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.0.set(v.to_string());
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.set(v.to_string());
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.0.set(v.to_string());
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.0.set(float_text(v));
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// An array element: `Ok(Some(text))`, `Ok(None)` for null, `Err(kind)` for an object or array.
struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Result<Option<String>, &'static str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Result<Option<String>, &'static str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err("an object"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err("an array"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Ok(Some(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Ok(Some(v)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Ok(Some(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Ok(Some(v.to_string())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Ok(Some(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Ok(Some(float_text(v))))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(None))
    }
}

fn reader(
    transcoder: Transcoder<std::fs::File>,
) -> serde_json::Deserializer<serde_json::de::IoRead<BufReader<Transcoder<std::fs::File>>>> {
    // serde_json reads byte by byte; std's BufReader serves those without a call per byte.
    serde_json::Deserializer::from_reader(BufReader::with_capacity(64 * 1024, transcoder))
}

/// First pass over an array file: one well-formed array, nothing after it.
fn check_array(path: &Path, encoding: Encoding) -> Result<(), FileError> {
    struct ArrayCheck;

    impl<'de> Visitor<'de> for ArrayCheck {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON array of objects at the top level")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(())
        }
    }

    let mut de = reader(Transcoder::open(path, encoding)?);
    let result = de.deserialize_any(ArrayCheck).and_then(|()| de.end());
    result.map_err(|e| {
        if e.is_io() {
            text::file_error(path, std::io::Error::from(e))
        } else {
            FileError::Malformed {
                format: "JSON",
                reason: e.to_string(),
            }
        }
    })
}

/// Second pass over an array file, on the background thread.
fn stream_array(transcoder: Transcoder<std::fs::File>, plan: &Plan, tx: &RecordSender) {
    struct Elements<'a> {
        plan: &'a Plan,
        tx: &'a RecordSender,
        index: &'a mut u64,
        consumer_gone: &'a mut bool,
    }

    impl<'de> Visitor<'de> for Elements<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON array of objects at the top level")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            loop {
                let mut st = Flatten::new(self.plan);
                let Some(kind) = seq.next_element_seed(RecordSeed(&mut st))? else {
                    return Ok(());
                };
                let location = Location::Index(*self.index);
                let item = match kind {
                    None => st.finish(location),
                    Some(kind) => Err(RecordError {
                        location,
                        reason: format!("element is {kind}, expected an object"),
                        excerpt: None,
                    }),
                };
                if !self.tx.send(item) {
                    *self.consumer_gone = true;
                    return Err(de::Error::custom("the consumer stopped reading"));
                }
                *self.index += 1;
            }
        }
    }

    let mut index = 0;
    let mut consumer_gone = false;
    let mut de = reader(transcoder);
    let visitor = Elements {
        plan,
        tx,
        index: &mut index,
        consumer_gone: &mut consumer_gone,
    };
    if let Err(e) = de.deserialize_seq(visitor)
        && !consumer_gone
    {
        // The file was checked whole; it changed or became unreadable since.
        tx.send(Err(RecordError {
            location: Location::Index(index),
            reason: format!("{e}; the rest of the file was not read"),
            excerpt: None,
        }));
    }
}

struct JsonLines {
    reader: Transcoder<std::fs::File>,
    /// Reused for every line.
    line: Vec<u8>,
    number: u64,
    plan: Plan,
    done: bool,
}

impl JsonLines {
    fn parse(&self, line: &[u8]) -> Result<RawRecord, RecordError> {
        let location = Location::Line(self.number);
        let mut st = Flatten::new(&self.plan);
        let mut de = serde_json::Deserializer::from_slice(line);
        let parsed = RecordSeed(&mut st)
            .deserialize(&mut de)
            .and_then(|kind| de.end().map(|()| kind));
        match parsed {
            Ok(None) => st.finish(location),
            Ok(Some(kind)) => Err(RecordError {
                location,
                reason: format!("the line holds {kind}, expected an object"),
                excerpt: None,
            }),
            Err(e) => {
                // serde_json counts lines within the slice: only the column means anything here.
                let message = e.to_string();
                let suffix = format!(" at line {} column {}", e.line(), e.column());
                let message = message.strip_suffix(&suffix).unwrap_or(&message);
                Err(RecordError {
                    location,
                    reason: format!("invalid JSON at column {}: {message}", e.column()),
                    excerpt: None,
                })
            }
        }
    }
}

impl super::RecordStream for JsonLines {}

impl Iterator for JsonLines {
    type Item = Result<RawRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.line.clear();
            match self.reader.read_until(b'\n', &mut self.line) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.number += 1;
                    let line = std::mem::take(&mut self.line);
                    let trimmed = line.trim_ascii();
                    let item = (!trimmed.is_empty()).then(|| self.parse(trimmed));
                    self.line = line;
                    if item.is_some() {
                        return item;
                    }
                }
                Err(e) => {
                    self.done = true;
                    let reason = match text::decode_error(&e) {
                        Some(d) => format!("{d}; the rest of the file was not read"),
                        None => format!("read error: {e}; the rest of the file was not read"),
                    };
                    return Some(Err(RecordError {
                        location: Location::Line(self.number + 1),
                        reason,
                        excerpt: None,
                    }));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::test_support::file_with;

    fn cols(names: &[&str]) -> Vec<Column> {
        names
            .iter()
            .map(|n| Column {
                name: n.to_string(),
                required: false,
            })
            .collect()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    fn read(json: &str, columns: &[&str], lines: bool) -> Vec<Result<RawRecord, RecordError>> {
        let f = file_with(json.as_bytes());
        open(
            f.path(),
            Encoding::Utf8,
            &cols(columns),
            lines,
            &crate::ingest::Limits::default(),
        )
        .unwrap()
        .collect()
    }

    fn refused(json: &[u8], lines: bool) -> FileError {
        let f = file_with(json);
        match open(
            f.path(),
            Encoding::Utf8,
            &cols(&["a"]),
            lines,
            &crate::ingest::Limits::default(),
        ) {
            Err(e) => e,
            Ok(_) => panic!("accepted {}", String::from_utf8_lossy(json)),
        }
    }

    #[test]
    fn array_happy_path() {
        let json = r#"[
            {"id": 1, "name": "甲", "amount": 1234.50, "ok": true, "gone": null,
             "party": {"name": "乙公司", "ids": ["A", 2, null, "B"], "deep": {"x": "y"}},
             "tags": ["t1", "t2"], "skip": [{"a": 1}], "big": 18446744073709551615},
            "not an object",
            {"id": -7, "tags": [], "party": {"ids": [{"bad": 1}]}},
            {"id": 2e3}
        ]"#;
        let out = read(
            json,
            &[
                "id",
                "name",
                "amount",
                "ok",
                "gone",
                "party.name",
                "party.ids",
                "party.deep.x",
                "tags",
                "missing",
                "big",
            ],
            false,
        );
        assert_eq!(
            out,
            vec![
                Ok(RawRecord {
                    location: Location::Index(0),
                    values: vec![
                        s("1"),
                        s("甲"),
                        s("1234.5"),
                        s("true"),
                        None,
                        s("乙公司"),
                        s("A;2;;B"),
                        s("y"),
                        s("t1;t2"),
                        None,
                        s("18446744073709551615"),
                    ], cut: Vec::new(),
                }),
                Err(RecordError {
                    location: Location::Index(1),
                    reason: "element is a string, expected an object".into(), excerpt: None,
                }),
                Err(RecordError {
                    location: Location::Index(2),
                    reason: "\"party.ids\" is an array holding an object; only arrays of plain values can be read".into(), excerpt: None,
                }),
                Ok(RawRecord {
                    location: Location::Index(3),
                    values: vec![s("2000.0"), None, None, None, None, None, None, None, None, None, None], cut: Vec::new(),
                }),
            ]
        );
    }

    #[test]
    fn gb18030_and_bom() {
        let (bytes, _, _) = encoding_rs::GB18030.encode(r#"[{"名称": "甲"}]"#);
        let f = file_with(&bytes);
        let out: Vec<_> = open(
            f.path(),
            Encoding::Gbk,
            &cols(&["名称"]),
            false,
            &crate::ingest::Limits::default(),
        )
        .unwrap()
        .collect();
        assert_eq!(
            out,
            vec![Ok(RawRecord {
                location: Location::Index(0),
                values: vec![s("甲")],
                cut: Vec::new()
            })]
        );
        let bytes = [b"\xEF\xBB\xBF".as_slice(), r#"{"名称": "乙"}"#.as_bytes()].concat();
        let f = file_with(&bytes);
        let out: Vec<_> = open(
            f.path(),
            Encoding::Gb18030,
            &cols(&["名称"]),
            true,
            &crate::ingest::Limits::default(),
        )
        .unwrap()
        .collect();
        assert_eq!(
            out,
            vec![Ok(RawRecord {
                location: Location::Line(1),
                values: vec![s("乙")],
                cut: Vec::new()
            })]
        );
    }

    #[test]
    fn lines_with_broken_line() {
        let json = "{\"a\": \"x\", \"b\": {\"c\": 1}}\r\n\n  \n{\"a\": \"y\",}\n[1]\n{\"a\": [true, false]}";
        let out = read(json, &["a", "b.c"], true);
        assert_eq!(
            out,
            vec![
                Ok(RawRecord {
                    location: Location::Line(1),
                    values: vec![s("x"), s("1")],
                    cut: Vec::new()
                }),
                Err(RecordError {
                    location: Location::Line(4),
                    reason: "invalid JSON at column 11: trailing comma".into(),
                    excerpt: None,
                }),
                Err(RecordError {
                    location: Location::Line(5),
                    reason: "the line holds an array, expected an object".into(),
                    excerpt: None,
                }),
                Ok(RawRecord {
                    location: Location::Line(6),
                    values: vec![s("true;false"), None],
                    cut: Vec::new()
                }),
            ]
        );
        // Every line broken: still records, each with its error.
        let out = read("{\n}{\n", &["a"], true);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(Result::is_err));
    }

    #[test]
    fn refusals() {
        match refused(br#"{"a": 1}"#, false) {
            FileError::Malformed {
                format: "JSON",
                reason,
            } => assert!(
                reason.starts_with(
                    "invalid type: map, expected a JSON array of objects at the top level at line 1"
                ),
                "{reason}"
            ),
            other => panic!("unexpected {other:?}"),
        }
        match refused(b"[{\"a\": 1},\n {\"a\": ", false) {
            FileError::Malformed {
                format: "JSON",
                reason,
            } => assert!(reason.contains("line 2"), "{reason}"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            refused(b"[] []", false),
            FileError::Malformed { .. }
        ));
        assert!(matches!(refused(b"", false), FileError::Empty));
        assert!(matches!(refused(b" \n", true), FileError::Empty));
        match refused(b"[{\"a\": \"\xFF\"}]", false) {
            FileError::Encoding {
                encoding: "UTF-8",
                offset: 8,
            } => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn dropping_the_stream_early_is_fine() {
        let body: Vec<String> = (0..10_000).map(|i| format!("{{\"a\": {i}}}")).collect();
        let json = format!("[{}]", body.join(","));
        let f = file_with(json.as_bytes());
        let mut records = open(
            f.path(),
            Encoding::Utf8,
            &cols(&["a"]),
            false,
            &crate::ingest::Limits::default(),
        )
        .unwrap();
        assert_eq!(
            records.next(),
            Some(Ok(RawRecord {
                location: Location::Index(0),
                values: vec![s("0")],
                cut: Vec::new()
            }))
        );
        drop(records);
    }
}
