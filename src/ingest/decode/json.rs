//! JSON decoder: a top-level array of objects (checked whole first, then streamed element by
//! element from a background thread) or JSON Lines (one object per line, streamed line by line).
//! Objects are flattened into the requested columns: nested keys are joined with dots
//! (`party.name`) and arrays of scalars with `;`.
//!
//! Neither pass builds the document: elements are visited with serde and only the requested keys
//! are turned into text. serde_json still holds each string and number whole, so an array file
//! reaches it through a [`JsonGuard`] that cuts strings longer than `field_kib` (the element then
//! carries a [`Cut`] for the requested column) and refuses longer numbers and nesting deeper than
//! [`JSON_MAX_DEPTH`]; serde_json refuses deeper nesting of what it deserializes by itself, with
//! the position. A JSON Lines file is read line by line, each line at most `json_line_kib`: a
//! longer one is skipped, counted and hashed, and becomes a [`RecordError`]. Memory is thus bounded
//! by the limits, never by the file.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::rc::Rc;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::bounds::{
    JSON_MAX_DEPTH, JsonCut, JsonCuts, JsonGuard, JsonGuardError, Tally, json_guard_error,
};
use super::text::{self, RecordSender, Transcoder};
use super::{
    Column, Cut, Encoding, Excerpt, FileError, LimitError, Limits, Location, RawRecord,
    RecordError, Records, bytes_shown, char_prefix,
};

/// Opens a JSON file: a top-level array of objects, or JSON Lines when `lines` is set.
///
/// Refuses the file ([`FileError`]) when it is not wholly valid in `encoding` (a BOM wins), holds
/// nothing, or (array form) is not one well-formed JSON array. An element or line that is not an
/// object, a line that is not valid JSON, or a requested key holding an array of objects is a
/// [`RecordError`] at [`Location::Index`] (0-based) or [`Location::Line`] (1-based), and so is a
/// line longer than `limits.json_line_bytes`. In an array file, a string longer than
/// `limits.field_bytes` is cut (a requested value keeps its first bytes and the record a [`Cut`]),
/// and a number that long or nesting deeper than [`JSON_MAX_DEPTH`] refuses the file.
///
/// Values: strings as they are, numbers as JSON writes them (integers exactly; other numbers in
/// their shortest round-trip form, so `1.50` reads `1.5`), booleans `true`/`false`, `null` → `None`.
pub(super) fn open(
    path: &Path,
    encoding: Encoding,
    columns: &[Column],
    lines: bool,
    limits: &Limits,
) -> Result<Records, FileError> {
    text::validate(path, encoding)?;
    let field = usize::try_from(limits.field_bytes).unwrap_or(usize::MAX);
    let plan = Plan::new(columns, field);
    if lines {
        return Ok(Box::new(JsonLines {
            reader: Transcoder::open(path, encoding)?,
            line: Vec::with_capacity(4096),
            number: 0,
            plan,
            done: false,
            limit: limits.json_line_bytes,
            keep: usize::try_from(limits.quarantine_raw_bytes).unwrap_or(usize::MAX),
        }));
    }
    check_array(path, encoding, limits)?;
    let reader = Transcoder::open(path, encoding)?;
    text::spawn_records(path, "json-decode", Location::Index(0), move |tx| {
        stream_array(reader, &plan, tx);
    })
}

/// The requested keys, resolved once.
struct Plan {
    /// The field limit in bytes.
    field: usize,
    width: usize,
    /// Dotted key → indices of the columns asking for it.
    targets: HashMap<String, Vec<usize>>,
    /// Every proper dotted prefix of a requested key: the objects worth descending into.
    prefixes: HashSet<String>,
}

impl Plan {
    fn new(columns: &[Column], field: usize) -> Self {
        let mut targets: HashMap<String, Vec<usize>> = HashMap::new();
        let mut prefixes = HashSet::new();
        for (i, column) in columns.iter().enumerate() {
            targets.entry(column.name.clone()).or_default().push(i);
            for (pos, _) in column.name.match_indices('.') {
                prefixes.insert(column.name[..pos].to_string());
            }
        }
        Plan {
            field,
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
    /// Where the value being visited is, as the guard notes its cuts ([`JsonCut::path`]).
    path: Vec<u64>,
    /// The guard's cuts, in document order (array files only).
    cuts: Option<&'p RefCell<VecDeque<JsonCut>>>,
    values: Vec<Option<String>>,
    cut: Vec<Cut>,
    error: Option<String>,
}

/// A value's full length and SHA-256, when it was cut.
type CutOf = Option<(u64, [u8; 32])>;

impl<'p> Flatten<'p> {
    /// A record at `path` (`[index]` for an array element, empty for a line).
    fn new(plan: &'p Plan, path: Vec<u64>, cuts: Option<&'p RefCell<VecDeque<JsonCut>>>) -> Self {
        Flatten {
            plan,
            key: String::new(),
            path,
            cuts,
            values: vec![None; plan.width],
            cut: Vec::new(),
            error: None,
        }
    }

    fn wanted(&self) -> bool {
        self.plan.targets.contains_key(&self.key) || self.plan.prefixes.contains(&self.key)
    }

    /// The guard's cut of the string just read at `path` (a member name when `key`). Cuts come
    /// in document order, and so do the places asked about: the ones before are dropped.
    fn guard_cut(&self, key: bool) -> CutOf {
        let mut cuts = self.cuts?.borrow_mut();
        let here = (self.path.as_slice(), !key);
        while let Some(c) = cuts.front() {
            match c.place().cmp(&here) {
                std::cmp::Ordering::Less => {
                    cuts.pop_front();
                }
                std::cmp::Ordering::Equal => return cuts.pop_front().map(|c| (c.bytes, c.sha256)),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }

    /// Stores `text` in the columns asking for the current key; `cut` when the guard cut it.
    fn set(&mut self, text: String, cut: CutOf) {
        let Some((&last, rest)) = self
            .plan
            .targets
            .get(&self.key)
            .and_then(|t| t.split_last())
        else {
            return;
        };
        let text = match cut {
            // The guard lets a few bytes past the limit through to end on a whole character.
            Some(_) => char_prefix(&text, self.plan.field).to_string(),
            None => text,
        };
        for &i in rest.iter().chain([&last]) {
            // A repeated key: the last value wins, with its own cut or none.
            self.cut.retain(|c| c.column != i);
            if let Some((bytes, sha256)) = cut {
                self.cut.push(Cut {
                    column: i,
                    bytes,
                    sha256,
                });
            }
        }
        for &i in rest {
            self.values[i] = Some(text.clone());
        }
        self.values[last] = Some(text);
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
            None => Ok(RawRecord::new(location, self.values, self.cut)),
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
    let mut member = 0;
    while let Some(key) = map.next_key::<String>()? {
        st.path.push(member);
        member += 1;
        let value = if st.guard_cut(true).is_some() {
            // A name longer than the field limit names no requested column.
            map.next_value::<IgnoredAny>().map(|_| ())
        } else {
            let base = st.key.len();
            if base > 0 {
                st.key.push('.');
            }
            st.key.push_str(&key);
            let value = map.next_value_seed(ValueSeed(st));
            st.key.truncate(base);
            value
        };
        st.path.pop();
        value?;
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
        // The joined text is held to the field limit like any value; past it, it is counted and
        // hashed, and the record carries the cut.
        let mut joined = Tally::new(st.plan.field);
        let mut cut: CutOf = None;
        let mut bad: Option<&'static str> = None;
        let mut index = 0;
        loop {
            st.path.push(index);
            let item = seq.next_element_seed(ScalarSeed);
            let item_cut = st.guard_cut(false);
            st.path.pop();
            let Some(item) = item? else { break };
            match item {
                Ok(text) => {
                    if index > 0 {
                        joined.add(b";");
                    }
                    joined.add(text.unwrap_or_default().as_bytes());
                    // The first item the guard cut stands for the value.
                    cut = cut.or(item_cut);
                }
                Err(kind) => bad = bad.or(Some(kind)),
            }
            index += 1;
        }
        match bad {
            Some(kind) => st.fail(format!(
                "\"{}\" is an array holding {kind}; only arrays of plain values can be read",
                st.key
            )),
            None if index > 0 => {
                let whole = joined.whole();
                let Excerpt {
                    head,
                    bytes,
                    sha256,
                } = joined.excerpt();
                st.set(head, cut.or((!whole).then_some((bytes, sha256))));
            }
            None => {}
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let cut = self.0.guard_cut(false);
        self.0.set(v.to_string(), cut);
        Ok(())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        let cut = self.0.guard_cut(false);
        self.0.set(v, cut);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.0.set(v.to_string(), None);
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.set(v.to_string(), None);
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.0.set(v.to_string(), None);
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.0.set(float_text(v), None);
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

/// serde_json's input: transcoded text whose strings and numbers the guard keeps bounded.
type Guarded = JsonGuard<Transcoder<std::fs::File>>;

fn reader(guard: Guarded) -> serde_json::Deserializer<serde_json::de::IoRead<BufReader<Guarded>>> {
    // serde_json reads byte by byte; std's BufReader serves those without a call per byte.
    serde_json::Deserializer::from_reader(BufReader::with_capacity(64 * 1024, guard))
}

/// The file error a [`JsonGuardError`] stands for, with its offset in the file.
fn guard_file_error(
    path: &Path,
    encoding: Encoding,
    limits: &Limits,
    g: &JsonGuardError,
) -> FileError {
    match g {
        JsonGuardError::NumberTooLong { at } => LimitError::new(
            "field_kib",
            bytes_shown(limits.field_bytes),
            format!(
                "a number longer than {} at byte offset {}",
                bytes_shown(limits.field_bytes),
                text::source_offset(path, encoding, *at)
            ),
        )
        .into(),
        JsonGuardError::TooDeep { at } => FileError::Malformed {
            format: "JSON",
            reason: format!(
                "arrays and objects nested deeper than {JSON_MAX_DEPTH} levels at byte offset {}",
                text::source_offset(path, encoding, *at)
            ),
        },
    }
}

/// First pass over an array file: one well-formed array, nothing after it.
fn check_array(path: &Path, encoding: Encoding, limits: &Limits) -> Result<(), FileError> {
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

    let field = usize::try_from(limits.field_bytes).unwrap_or(usize::MAX);
    let mut de = reader(JsonGuard::new(
        Transcoder::open(path, encoding)?,
        field,
        None,
    ));
    let result = de.deserialize_any(ArrayCheck).and_then(|()| de.end());
    result.map_err(|e| {
        if e.is_io() {
            let e = io::Error::from(e);
            match json_guard_error(&e) {
                Some(g) => guard_file_error(path, encoding, limits, g),
                None => text::file_error(path, e),
            }
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
        cuts: &'a RefCell<VecDeque<JsonCut>>,
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
                let mut st = Flatten::new(self.plan, vec![*self.index], Some(self.cuts));
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
    let cuts = JsonCuts::default();
    let mut de = reader(JsonGuard::new(
        transcoder,
        plan.field,
        Some(Rc::clone(&cuts)),
    ));
    let visitor = Elements {
        plan,
        cuts: &cuts,
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

/// How [`read_line`] found a line.
enum Line {
    /// The input ended before it.
    End,
    /// The line, without its line break, is in the buffer.
    Whole,
    /// The line was longer than the limit: its first bytes, length and digest.
    TooLong(Excerpt),
}

/// Reads the next line (without its LF or CR LF) into `line`, holding at most `limit` bytes of
/// it: a longer line is read on without being kept, counted and hashed, keeping its first `keep`
/// bytes.
fn read_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    limit: u64,
    keep: usize,
) -> io::Result<Line> {
    line.clear();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    // Once the line is too long: all of it but its last byte, which is held back because a
    // final CR belongs to the line break.
    let mut over: Option<(Tally, Option<u8>)> = None;
    let mut any = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        any = true;
        let lf = memchr::memchr(b'\n', buf);
        let piece = &buf[..lf.unwrap_or(buf.len())];
        if over.is_none() && line.len() + piece.len() > limit.saturating_add(1) {
            let mut tally = Tally::new(keep);
            let held = line.pop();
            tally.add(line);
            over = Some((tally, held));
        }
        match &mut over {
            None => line.extend_from_slice(piece),
            Some((tally, held)) => {
                if let Some((&last, body)) = piece.split_last() {
                    if let Some(b) = held.replace(last) {
                        tally.add(&[b]);
                    }
                    tally.add(body);
                }
            }
        }
        let used = piece.len() + usize::from(lf.is_some());
        reader.consume(used);
        if lf.is_some() {
            break;
        }
    }
    if let Some((mut tally, held)) = over {
        if let Some(b) = held.filter(|&b| b != b'\r') {
            tally.add(&[b]);
        }
        line.clear();
        return Ok(Line::TooLong(tally.excerpt()));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.len() > limit {
        let mut tally = Tally::new(keep);
        tally.add(line);
        line.clear();
        return Ok(Line::TooLong(tally.excerpt()));
    }
    Ok(if any { Line::Whole } else { Line::End })
}

struct JsonLines {
    reader: Transcoder<std::fs::File>,
    /// Reused for every line.
    line: Vec<u8>,
    number: u64,
    plan: Plan,
    done: bool,
    /// `json_line_bytes`.
    limit: u64,
    /// How much of a line too long to read is kept (`quarantine_raw_bytes`).
    keep: usize,
}

impl JsonLines {
    fn parse(&self, line: &[u8]) -> Result<RawRecord, RecordError> {
        let location = Location::Line(self.number);
        let mut st = Flatten::new(&self.plan, Vec::new(), None);
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
            match read_line(&mut self.reader, &mut self.line, self.limit, self.keep) {
                Ok(Line::End) => self.done = true,
                Ok(Line::TooLong(excerpt)) => {
                    self.number += 1;
                    return Some(Err(RecordError {
                        location: Location::Line(self.number),
                        reason: LimitError::new(
                            "json_line_kib",
                            bytes_shown(self.limit),
                            format!("the line is {} long", bytes_shown(excerpt.bytes)),
                        )
                        .to_string(),
                        excerpt: Some(excerpt),
                    }));
                }
                Ok(Line::Whole) => {
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
    use crate::ingest::decode::{Limits, char_prefix};

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
            &Limits::default(),
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
            &Limits::default(),
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
                Ok(RawRecord::new(Location::Index(0), vec![
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
                    ], Vec::new())),
                Err(RecordError {
                    location: Location::Index(1),
                    reason: "element is a string, expected an object".into(), excerpt: None,
                }),
                Err(RecordError {
                    location: Location::Index(2),
                    reason: "\"party.ids\" is an array holding an object; only arrays of plain values can be read".into(), excerpt: None,
                }),
                Ok(RawRecord::new(Location::Index(3), vec![s("2000.0"), None, None, None, None, None, None, None, None, None, None], Vec::new())),
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
            &Limits::default(),
        )
        .unwrap()
        .collect();
        assert_eq!(
            out,
            vec![Ok(RawRecord::new(
                Location::Index(0),
                vec![s("甲")],
                Vec::new()
            ))]
        );
        let bytes = [b"\xEF\xBB\xBF".as_slice(), r#"{"名称": "乙"}"#.as_bytes()].concat();
        let f = file_with(&bytes);
        let out: Vec<_> = open(
            f.path(),
            Encoding::Gb18030,
            &cols(&["名称"]),
            true,
            &Limits::default(),
        )
        .unwrap()
        .collect();
        assert_eq!(
            out,
            vec![Ok(RawRecord::new(
                Location::Line(1),
                vec![s("乙")],
                Vec::new()
            ))]
        );
    }

    #[test]
    fn lines_with_broken_line() {
        let json = "{\"a\": \"x\", \"b\": {\"c\": 1}}\r\n\n  \n{\"a\": \"y\",}\n[1]\n{\"a\": [true, false]}";
        let out = read(json, &["a", "b.c"], true);
        assert_eq!(
            out,
            vec![
                Ok(RawRecord::new(
                    Location::Line(1),
                    vec![s("x"), s("1")],
                    Vec::new()
                )),
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
                Ok(RawRecord::new(
                    Location::Line(6),
                    vec![s("true;false"), None],
                    Vec::new()
                )),
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

    fn sha(bytes: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).into()
    }

    fn read_with(
        json: &str,
        columns: &[&str],
        lines: bool,
        limits: &Limits,
    ) -> Vec<Result<RawRecord, RecordError>> {
        let f = file_with(json.as_bytes());
        open(f.path(), Encoding::Utf8, &cols(columns), lines, limits)
            .unwrap()
            .collect()
    }

    #[test]
    fn long_strings_in_an_array_are_cut_and_the_element_carries_the_cut() {
        let big = "甲乙丙".repeat(600_000);
        let field = Limits::default().field_bytes as usize;
        let half = "a".repeat(40_000);
        let item = "x".repeat(100_000);
        let json = format!(
            r#"[{{"id": 1, "name": "short"}},
               {{"id": 2, "{big}": "a long key", "note": "{big}", "name": "{big}",
                 "tags": ["{half}", "{half}"], "list": ["{item}", "y"], "after": "ok"}},
               {{"id": 3, "name": "甲"}}]"#
        );
        let out = read_with(
            &json,
            &["id", "name", "name", "tags", "list", "after"],
            false,
            &Limits::default(),
        );
        let joined = format!("{half};{half}");
        let cut = |column, text: &str| Cut {
            column,
            bytes: text.len() as u64,
            sha256: sha(text.as_bytes()),
        };
        assert_eq!(
            out,
            vec![
                Ok(RawRecord::new(
                    Location::Index(0),
                    vec![s("1"), s("short"), s("short"), None, None, None],
                    Vec::new()
                )),
                Ok(RawRecord::new(
                    Location::Index(1),
                    vec![
                        s("2"),
                        s(char_prefix(&big, field)),
                        s(char_prefix(&big, field)),
                        s(&joined[..field]),
                        s(&item[..field]),
                        s("ok"),
                    ],
                    vec![
                        cut(1, &big),
                        cut(2, &big),
                        cut(3, &joined),
                        // The item the guard cut stands for the joined value.
                        cut(4, &item),
                    ]
                )),
                Ok(RawRecord::new(
                    Location::Index(2),
                    vec![s("3"), s("甲"), s("甲"), None, None, None],
                    Vec::new()
                )),
            ]
        );
    }

    #[test]
    fn a_cut_string_ends_on_a_whole_character_after_escapes() {
        let limits = Limits {
            field_bytes: 1024,
            ..Limits::default()
        };
        for raw in [
            r#"\u00e9\""#.repeat(500),
            format!("{}{}", "a".repeat(1020), r"\ud83d\ude00".repeat(100)),
            format!("{}{}", "b".repeat(1023), "😀".repeat(100)),
        ] {
            let json = format!(r#"[{{"v": "{raw}"}}, {{"v": "next"}}]"#);
            let whole: String = serde_json::from_str(&format!("\"{raw}\"")).unwrap();
            let out = read_with(&json, &["v"], false, &limits);
            let Ok(first) = &out[0] else {
                panic!("{:?}", out[0])
            };
            let value = first.value(0).unwrap();
            assert!(whole.starts_with(value) && !value.is_empty(), "{value}");
            assert!(value.len() <= 1024, "{}", value.len());
            assert_eq!(
                first.cut,
                vec![Cut {
                    column: 0,
                    bytes: raw.len() as u64,
                    sha256: sha(raw.as_bytes()),
                }]
            );
            assert_eq!(
                out[1],
                Ok(RawRecord::new(
                    Location::Index(1),
                    vec![s("next")],
                    Vec::new()
                ))
            );
        }
    }

    #[test]
    fn a_line_over_the_limit_is_refused_and_the_lines_after_it_are_read() {
        let big = format!(r#"{{"a": "{}"}}"#, "甲".repeat(2_000_000));
        for eol in ["\n", "\r\n"] {
            let json = [r#"{"a": 1}"#, "", &big, r#"{"a": 2}"#, "\r", r#"{"a": 3}"#].join(eol);
            let out = read_with(&json, &["a"], true, &Limits::default());
            let ok =
                |line, a: &str| Ok(RawRecord::new(Location::Line(line), vec![s(a)], Vec::new()));
            assert_eq!(
                out,
                vec![
                    ok(1, "1"),
                    Err(RecordError {
                        location: Location::Line(3),
                        reason: format!(
                            "the line is {} long, over the limit json_line_kib = 1,048,576 bytes \
                             (1 MiB) ([ingest.limits]; raise it there if the file is genuine)",
                            bytes_shown(big.len() as u64)
                        ),
                        excerpt: Some(Excerpt {
                            head: char_prefix(&big, 4096).to_string(),
                            bytes: big.len() as u64,
                            sha256: sha(big.as_bytes()),
                        }),
                    }),
                    ok(4, "2"),
                    ok(6, "3"),
                ],
                "line ends {eol:?}"
            );
        }
    }

    #[test]
    fn lines_at_the_limit_are_read_and_longer_ones_counted_exactly() {
        let limit = 1024;
        let exact = format!(r#"{{"a": "{}"}}"#, "x".repeat(limit - 9));
        let over = format!(r#"{{"a": "{}"}}"#, "y".repeat(limit - 8));
        assert_eq!((exact.len(), over.len()), (limit, limit + 1));
        let limits = Limits {
            json_line_bytes: limit as u64,
            quarantine_raw_bytes: 16,
            ..Limits::default()
        };
        for eol in ["\n", "\r\n"] {
            for last in ["", eol] {
                let json = format!("{exact}{eol}{over}{eol}{exact}{last}");
                let f = file_with(json.as_bytes());
                let mut reader = text::Transcoder::open(f.path(), Encoding::Utf8).unwrap();
                let mut line = Vec::new();
                let mut got = Vec::new();
                loop {
                    match read_line(&mut reader, &mut line, limits.json_line_bytes, 16).unwrap() {
                        Line::End => break,
                        Line::Whole => got.push(Ok(String::from_utf8(line.clone()).unwrap())),
                        Line::TooLong(e) => got.push(Err((e.head, e.bytes, e.sha256))),
                    }
                }
                assert_eq!(
                    got,
                    vec![
                        Ok(exact.clone()),
                        Err((
                            over[..16].to_string(),
                            over.len() as u64,
                            sha(over.as_bytes())
                        )),
                        Ok(exact.clone()),
                    ],
                    "{eol:?} {last:?}"
                );
            }
        }
    }

    #[test]
    fn absurd_numbers_and_nesting_refuse_an_array_file() {
        let json = format!(r#"[{{"a": 1}}, {{"a": {}}}]"#, "9".repeat(70_000));
        match refused(json.as_bytes(), false) {
            FileError::Limit(e) => {
                assert_eq!(e.key, "field_kib");
                assert_eq!(
                    e.found,
                    "a number longer than 65,536 bytes (64 KiB) at byte offset 17"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        // Nesting inside a value nobody asked for: serde_json would follow it to any depth.
        let json = format!(r#"[{{"a": 1, "b": {}}}]"#, "[".repeat(1_000_000));
        match refused(json.as_bytes(), false) {
            FileError::Malformed {
                format: "JSON",
                reason,
            } => assert_eq!(
                reason,
                "arrays and objects nested deeper than 128 levels at byte offset 141"
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_50_mb_string_and_a_50_mb_line_are_decoded_in_bounded_memory() {
        use crate::ingest::decode::{Format, bounds::measure::decode_in_child};
        let columns = cols(&["a", "b"]);
        // An array whose second element holds 50 MiB in a requested string.
        let out = decode_in_child(
            &Format::Json {
                encoding: Encoding::Utf8,
            },
            &columns,
            r#"[{"a": "1"}, {"a": "2", "b": ""#,
            50,
            r#""}, {"a": "3"}]"#,
        );
        assert_eq!((out.records, out.errors.len()), (3, 0), "{:?}", out.errors);
        // JSON Lines with a 50 MiB line between two good ones.
        let out = decode_in_child(
            &Format::JsonLines {
                encoding: Encoding::Utf8,
            },
            &columns,
            "{\"a\": \"1\"}\n{\"b\": \"",
            50,
            "\"}\n{\"a\": \"3\"}\n",
        );
        assert_eq!(out.records, 2);
        let length = bytes_shown((50 << 20) + 9);
        assert!(
            out.error()
                .starts_with(&format!("line 2: the line is {length} long"))
        );
    }

    #[test]
    #[ignore = "throughput check; run with --release --ignored"]
    fn guard_throughput() {
        use serde::Deserialize;
        use std::io::Write;
        // 200,000 elements of ten members, strings with escapes and Chinese text.
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let element = r#"{"id": "A0001", "name": "甲乙丙有限公司", "note": "a \"quoted\" word\n",
            "amount": 1234.5, "ok": true, "party": {"name": "张三", "ids": ["x", "y"]},
            "date": "2024-01-02", "code": "91320102MA1XYZ", "empty": null, "n": 42}"#;
        write!(f, "[").unwrap();
        for i in 0..200_000 {
            if i > 0 {
                writeln!(f, ",").unwrap();
            }
            write!(f, "{element}").unwrap();
        }
        write!(f, "]").unwrap();
        f.flush().unwrap();
        let best = super::super::bounds::measure::best_of_five;
        let columns = cols(&["id", "name", "note", "amount", "party.name", "party.ids"]);
        let decode = best(&|| {
            open(
                f.path(),
                Encoding::Utf8,
                &columns,
                false,
                &Limits::default(),
            )
            .unwrap()
            .filter(Result::is_ok)
            .count()
        });
        assert_eq!(decode.1, 200_000);
        // What the first pass does, without and through the guard.
        let check = |guarded: bool| {
            best(&|| {
                let text = Transcoder::open(f.path(), Encoding::Utf8).unwrap();
                let r: Box<dyn std::io::Read> = if guarded {
                    Box::new(JsonGuard::new(text, 65536, None))
                } else {
                    Box::new(text)
                };
                let mut de = serde_json::Deserializer::from_reader(BufReader::new(r));
                IgnoredAny::deserialize(&mut de).unwrap();
                0
            })
        };
        eprintln!(
            "JSON array, 200,000 elements: decode {:?}; checking it alone {:?}, through the guard {:?}",
            decode.0,
            check(false).0,
            check(true).0
        );
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
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            records.next(),
            Some(Ok(RawRecord::new(
                Location::Index(0),
                vec![s("0")],
                Vec::new()
            )))
        );
        drop(records);
    }
}
