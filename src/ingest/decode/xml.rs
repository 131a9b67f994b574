//! XML decoder: checks that the whole document is well-formed, declares no DOCTYPE and uses no
//! entity beyond the five predefined ones, then streams the elements at the adapter's record path
//! as records (child element text, `@attribute` values and the `@record` element name).
//!
//! Both passes are event streams over the transcoded text; no DOM is built, so memory depends on
//! the document's depth and on one record, never on the file size.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use sha2::{Digest, Sha256};
use xianjie_xml::resolve_ref;

use super::text::{self, Transcoder};
use super::xml_guard::{Guard, GuardCut, GuardError, guard_error};
use super::{
    Column, Cut, Encoding, FileError, LimitError, Limits, Location, RawRecord, RecordError,
    RecordStream, Records, bytes_shown,
};

/// The parser's input: transcoded text whose events the guard keeps bounded.
type Input = Guard<Transcoder<File>>;

/// Opens `path` for parsing behind a [`Guard`] sized by `limits`.
fn guarded(
    path: &Path,
    encoding: Encoding,
    limits: &Limits,
    keep_cuts: bool,
) -> Result<Reader<Input>, FileError> {
    let field = usize::try_from(limits.field_bytes).unwrap_or(usize::MAX);
    Ok(Reader::from_reader(Guard::new(
        Transcoder::open(path, encoding)?,
        field,
        tag_limit(limits),
        keep_cuts,
    )))
}

/// Longest tag: its attributes are fields too, so the field limit plus room for names.
fn tag_limit(limits: &Limits) -> usize {
    usize::try_from(limits.field_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(4096)
}

/// The pseudo-column holding the record element's own (local) name.
const RECORD_NAME: &str = "@record";

/// Opens an XML file and streams the elements matched by `record_path` as records.
///
/// `record_path` lists element local names from the root; any step may be `*` (any element).
/// Refuses the file ([`FileError`]) when it is not wholly valid in `encoding` (a BOM wins), is not
/// one well-formed element tree (truncated, mismatched tags, two roots, a root other than the
/// record path's first step), contains a `<!DOCTYPE` ([`FileError::XmlDoctype`]) or references an
/// entity other than `&lt; &gt; &amp; &quot; &apos;` and numeric character references.
///
/// Columns: `NAME` is the text (text and CDATA, entities resolved, not trimmed) of the record's
/// direct child elements named `NAME`, joined with `;` when the child repeats; `@NAME` is the
/// record element's attribute; `@record` its name. A requested child holding elements instead of
/// text makes that record a [`RecordError`].
pub(super) fn open(
    path: &Path,
    encoding: Encoding,
    record_path: &[String],
    columns: &[Column],
    limits: &Limits,
) -> Result<Records, FileError> {
    if record_path.is_empty() || record_path.iter().any(|step| step.is_empty()) {
        return Err(FileError::Malformed {
            format: "XML",
            reason: format!(
                "invalid record path \"{}\": empty step",
                record_path.join("/")
            ),
        });
    }
    text::validate(path, encoding)?;
    check(path, encoding, record_path, limits)?;

    let mut child_columns: HashMap<String, Vec<usize>> = HashMap::new();
    let mut attr_columns: HashMap<String, Vec<usize>> = HashMap::new();
    let mut name_columns = Vec::new();
    for (i, column) in columns.iter().enumerate() {
        if column.name == RECORD_NAME {
            name_columns.push(i);
        } else if let Some(attr) = column.name.strip_prefix('@') {
            attr_columns.entry(attr.to_string()).or_default().push(i);
        } else {
            child_columns
                .entry(column.name.clone())
                .or_default()
                .push(i);
        }
    }
    Ok(Box::new(XmlRecords {
        reader: guarded(path, encoding, limits, true)?,
        buf: Vec::with_capacity(4096),
        record_buf: Vec::with_capacity(4096),
        plan: Plan {
            field: usize::try_from(limits.field_bytes).unwrap_or(usize::MAX),
            record_path: record_path.to_vec(),
            width: columns.len(),
            child_columns,
            attr_columns,
            name_columns,
        },
        stack: Vec::new(),
        on_path: Vec::new(),
        siblings: HashMap::new(),
        done: false,
    }))
}

fn malformed(reason: String) -> FileError {
    FileError::Malformed {
        format: "XML",
        reason,
    }
}

fn step_matches(step: &str, name: &str) -> bool {
    step == "*" || step == name
}

fn local_name(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_string()
}

/// First pass: the whole document must be one well-formed tree without DTD or custom entities.
fn check(
    path: &Path,
    encoding: Encoding,
    record_path: &[String],
    limits: &Limits,
) -> Result<(), FileError> {
    let mut reader = guarded(path, encoding, limits, false)?;
    let at =
        |r: &Reader<Input>, out: u64| text::source_offset(path, encoding, r.get_ref().unskip(out));
    let mut buf = Vec::with_capacity(4096);
    // Element names, not a tree: memory grows with depth only.
    let mut stack: Vec<String> = Vec::new();
    let mut root_seen = false;
    loop {
        let start = reader.buffer_position();
        buf.clear();
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(quick_xml::Error::Io(e)) => {
                if let Some(g) = guard_error(&e) {
                    return Err(guard_file_error(path, encoding, limits, g));
                }
                return Err(match text::decode_error(&e) {
                    Some(d) => FileError::Encoding {
                        encoding: d.encoding,
                        offset: d.offset,
                    },
                    None => FileError::Io {
                        path: path.display().to_string(),
                        source: std::io::Error::new(e.kind(), e.to_string()),
                    },
                });
            }
            Err(e) => {
                return Err(malformed(format!(
                    "{e} at byte offset {}",
                    at(&reader, reader.error_position())
                )));
            }
        };
        match event {
            Event::DocType(_) => {
                return Err(FileError::XmlDoctype {
                    offset: at(&reader, start),
                });
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = local_name(e);
                if stack.is_empty() {
                    if root_seen {
                        return Err(malformed(format!(
                            "second root element <{name}> at byte offset {}; a document has one root",
                            at(&reader, start)
                        )));
                    }
                    root_seen = true;
                    if !step_matches(&record_path[0], &name) {
                        return Err(malformed(format!(
                            "the root element is <{name}>, but the record path /{} starts with <{}>",
                            record_path.join("/"),
                            record_path[0]
                        )));
                    }
                }
                for attr in e.attributes() {
                    let checked = attr.map_err(|err| err.to_string()).and_then(|a| {
                        a.normalized_value(XmlVersion::Implicit1_0)
                            .map(|_| ())
                            .map_err(|err| err.to_string())
                    });
                    if let Err(reason) = checked {
                        return Err(malformed(format!(
                            "bad attribute in <{name}> at byte offset {}: {reason}",
                            at(&reader, start)
                        )));
                    }
                }
                if matches!(event, Event::Start(_)) {
                    if stack.len() >= limits.xml_depth {
                        return Err(LimitError::new(
                            "xml_depth",
                            limits.xml_depth,
                            format!(
                                "element nesting reaches depth {} (<{name}>) at byte offset {}",
                                stack.len() + 1,
                                at(&reader, start)
                            ),
                        )
                        .into());
                    }
                    stack.push(name);
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) => {
                if stack.is_empty() && !t.trim_ascii().is_empty() {
                    return Err(malformed(format!(
                        "text outside the root element at byte offset {}",
                        at(&reader, start)
                    )));
                }
            }
            Event::CData(_) if stack.is_empty() => {
                return Err(malformed(format!(
                    "CDATA outside the root element at byte offset {}",
                    at(&reader, start)
                )));
            }
            Event::GeneralRef(r) => {
                // A character reference to a code point no text may hold (an unpaired
                // surrogate, &#0;) spoils one value: its record is refused when it is read.
                if let Err(reason) = resolve_ref(&r)
                    && !r.is_char_ref()
                {
                    return Err(malformed(format!(
                        "{reason} at byte offset {}",
                        at(&reader, start)
                    )));
                }
                if stack.is_empty() {
                    return Err(malformed(format!(
                        "reference outside the root element at byte offset {}",
                        at(&reader, start)
                    )));
                }
            }
            Event::Eof => {
                if let Some(open) = stack.last() {
                    return Err(malformed(format!("unexpected end of file inside <{open}>")));
                }
                if !root_seen {
                    return Err(malformed("no root element".to_string()));
                }
                return Ok(());
            }
            Event::CData(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
}

/// The file error a [`GuardError`] stands for, with its offset in the file.
fn guard_file_error(path: &Path, encoding: Encoding, limits: &Limits, g: &GuardError) -> FileError {
    match g {
        GuardError::Declaration { at } => FileError::XmlDoctype {
            offset: text::source_offset(path, encoding, *at),
        },
        GuardError::TagTooLong { at, limit } => LimitError::new(
            "field_kib",
            bytes_shown(limits.field_bytes),
            format!(
                "a tag longer than {} (the field limit plus room for names) at byte offset {}",
                bytes_shown(*limit as u64),
                text::source_offset(path, encoding, *at)
            ),
        )
        .into(),
    }
}

/// What to extract from each record, resolved once from the requested columns.
struct Plan {
    /// The field limit in bytes.
    field: usize,
    record_path: Vec<String>,
    width: usize,
    child_columns: HashMap<String, Vec<usize>>,
    attr_columns: HashMap<String, Vec<usize>>,
    name_columns: Vec<usize>,
}

/// Text that keeps at most `limit` bytes, with the length and digest of all of it; a value cut
/// by the [`Guard`] carries the guard's figures (of the text as it stands in the file).
#[derive(Default)]
struct Acc {
    head: String,
    total: u64,
    hasher: Option<Sha256>,
    guard: Option<GuardCut>,
}

impl Acc {
    fn of(s: &str, limit: usize) -> Acc {
        let mut a = Acc::default();
        a.push(s, limit);
        a
    }

    fn push(&mut self, s: &str, limit: usize) {
        self.total += s.len() as u64;
        if let Some(h) = &mut self.hasher {
            h.update(s.as_bytes());
        } else if self.head.len() + s.len() <= limit {
            self.head.push_str(s);
        } else {
            let mut h = Sha256::new();
            h.update(self.head.as_bytes());
            h.update(s.as_bytes());
            let room = limit - self.head.len().min(limit);
            self.head.push_str(super::char_prefix(s, room));
            self.hasher = Some(h);
        }
    }

    /// The kept text, and the cut when there was one.
    fn finish(self, column: usize) -> (String, Option<Cut>) {
        let cut = match (self.guard, self.hasher) {
            (Some(g), _) => Some(Cut {
                column,
                bytes: g.bytes,
                sha256: g.sha256,
            }),
            (None, Some(h)) => Some(Cut {
                column,
                bytes: self.total,
                sha256: h.finalize().into(),
            }),
            (None, None) => None,
        };
        (self.head, cut)
    }
}

/// A record being read.
struct Pending {
    location: Location,
    values: Vec<Option<Acc>>,
    error: Option<String>,
}

impl Pending {
    fn fail(&mut self, reason: String) {
        // The first problem is the one to fix; later ones are often consequences.
        if self.error.is_none() {
            self.error = Some(reason);
        }
    }

    fn finish(self) -> Result<RawRecord, RecordError> {
        if let Some(reason) = self.error {
            return Err(RecordError {
                location: self.location,
                reason,
                excerpt: None,
            });
        }
        let mut cut = Vec::new();
        let values = (self.values.into_iter().enumerate())
            .map(|(i, v)| {
                v.map(|acc| {
                    let (text, c) = acc.finish(i);
                    cut.extend(c);
                    text
                })
            })
            .collect();
        Ok(RawRecord::new(self.location, values, cut))
    }
}

impl Plan {
    /// Starts a record from its element: location, `@record` and attributes.
    fn begin(&self, e: &BytesStart<'_>, name: &str, location: String) -> Pending {
        let mut pending = Pending {
            location: Location::Element(location),
            values: std::iter::repeat_with(|| None).take(self.width).collect(),
            error: None,
        };
        for &i in &self.name_columns {
            pending.values[i] = Some(Acc::of(name, self.field));
        }
        if self.attr_columns.is_empty() {
            return pending;
        }
        for attr in e.attributes() {
            let attr = match attr {
                Ok(attr) => attr,
                Err(err) => {
                    pending.fail(format!("bad attribute: {err}"));
                    continue;
                }
            };
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let key = attr.key.local_name();
            let Some(targets) = self.attr_columns.get(key.as_ref()) else {
                continue;
            };
            match attr.normalized_value(XmlVersion::Implicit1_0) {
                Ok(value) => {
                    for &i in targets {
                        pending.values[i] = Some(Acc::of(&value, self.field));
                    }
                }
                Err(err) => pending.fail(format!("attribute {}: {err}", key.as_ref())),
            }
        }
        pending
    }

    /// Records one occurrence of a requested child element; `guard` is the guard's cut of its
    /// text, if any.
    fn set_child(
        &self,
        pending: &mut Pending,
        targets: &[usize],
        text: &Acc,
        guard: Option<&GuardCut>,
    ) {
        for &i in targets {
            let slot = pending.values[i].get_or_insert_with(Acc::default);
            if slot.total > 0 || slot.guard.is_some() {
                slot.push(";", self.field);
            }
            slot.push(&text.head, self.field);
            if let Some(h) = &text.hasher {
                // The child's own text overflowed: the value is cut, with the child's figures.
                slot.guard.get_or_insert(GuardCut {
                    at: 0,
                    bytes: text.total,
                    sha256: h.clone().finalize().into(),
                });
            }
            if let Some(g) = guard {
                slot.guard.get_or_insert_with(|| g.clone());
            }
        }
    }
}

struct XmlRecords {
    reader: Reader<Input>,
    buf: Vec<u8>,
    record_buf: Vec<u8>,
    plan: Plan,
    /// Local names of the open elements outside any record.
    stack: Vec<String>,
    /// `on_path[k]`: the elements `stack[..=k]` match the first `k + 1` record path steps.
    on_path: Vec<bool>,
    /// Children counted by name under the current parent of records, for `NAME[i]` locations.
    siblings: HashMap<String, u64>,
    done: bool,
}

impl XmlRecords {
    fn location(stack: &[String], name: &str, index: u64) -> String {
        let mut path = String::new();
        for step in stack {
            path.push('/');
            path.push_str(step);
        }
        path.push('/');
        path.push_str(name);
        path.push_str(&format!("[{index}]"));
        path
    }

    fn here(&self) -> Location {
        let mut path = String::new();
        for step in &self.stack {
            path.push('/');
            path.push_str(step);
        }
        if path.is_empty() {
            path.push('/');
        }
        Location::Element(path)
    }

    /// Reads the rest of a record element up to its end tag.
    fn read_record(&mut self, pending: &mut Pending) -> Result<(), String> {
        // Depth below the record element; 1 = a direct child.
        let mut depth = 0usize;
        // The direct child being read, when requested: its name, target columns, text and where
        // its content starts in the parser's input.
        let mut child: Option<(String, &Vec<usize>, Acc, u64)> = None;
        let field = self.plan.field;
        loop {
            self.record_buf.clear();
            let before = self.reader.buffer_position();
            let event = self
                .reader
                .read_event_into(&mut self.record_buf)
                .map_err(|e| match e {
                    quick_xml::Error::Io(io) if guard_error(&io).is_some() => {
                        format!("{} (the document changed since it was checked)", io)
                    }
                    other => other.to_string(),
                })?;
            match event {
                Event::Start(e) => {
                    depth += 1;
                    let name = e.local_name();
                    if depth == 1 {
                        let content = self.reader.buffer_position();
                        child = self.plan.child_columns.get(name.as_ref()).map(|targets| {
                            (name.as_ref().to_string(), targets, Acc::default(), content)
                        });
                    } else if depth == 2
                        && let Some((child_name, _, _, _)) = &child
                    {
                        pending.fail(format!(
                            "<{child_name}> contains element <{}>; text expected",
                            name.as_ref()
                        ));
                    }
                }
                Event::Empty(e) => {
                    let name = e.local_name();
                    if depth == 0 {
                        if let Some(targets) = self.plan.child_columns.get(name.as_ref()) {
                            self.plan.set_child(pending, targets, &Acc::default(), None);
                        }
                    } else if depth == 1
                        && let Some((child_name, _, _, _)) = &child
                    {
                        pending.fail(format!(
                            "<{child_name}> contains element <{}>; text expected",
                            name.as_ref()
                        ));
                    }
                }
                Event::End(_) => {
                    if depth == 0 {
                        return Ok(());
                    }
                    if depth == 1
                        && let Some((_, targets, text, content)) = child.take()
                    {
                        let cut = self.reader.get_mut().take_cut(content, before);
                        self.plan.set_child(pending, targets, &text, cut.as_ref());
                    }
                    depth -= 1;
                }
                Event::Text(t) if depth == 1 => {
                    if let Some((_, _, text, _)) = &mut child {
                        text.push(&t.xml10_content(), field);
                    }
                }
                Event::CData(c) if depth == 1 => {
                    if let Some((_, _, text, _)) = &mut child {
                        text.push(&c.xml10_content(), field);
                    }
                }
                Event::GeneralRef(r) if depth == 1 => {
                    if let Some((name, _, text, _)) = &mut child {
                        match resolve_ref(&r) {
                            Ok(c) => text.push(c.encode_utf8(&mut [0; 4]), field),
                            Err(reason) => pending.fail(format!(
                                "<{name}> at character {}: {reason} (a code point no text may \
                                 hold, such as an unpaired surrogate)",
                                text.head.chars().count() + 1
                            )),
                        }
                    }
                }
                Event::Eof => return Err("unexpected end of file inside the record".to_string()),
                Event::DocType(_) => {
                    return Err("document type declaration inside the record".to_string());
                }
                _ => {}
            }
        }
    }
}

impl RecordStream for XmlRecords {}

impl Iterator for XmlRecords {
    type Item = Result<RawRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        let steps = self.plan.record_path.len();
        while !self.done {
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(event) => event,
                Err(e) => {
                    // The document was checked whole; it must have changed or become unreadable.
                    self.done = true;
                    return Some(Err(RecordError {
                        location: self.here(),
                        reason: format!("{e}; the rest of the file was not read"),
                        excerpt: None,
                    }));
                }
            };
            let (e, is_empty) = match event {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(_) => {
                    self.stack.pop();
                    self.on_path.pop();
                    continue;
                }
                Event::Eof => {
                    self.done = true;
                    return None;
                }
                _ => continue,
            };
            let name = local_name(&e);
            let depth = self.stack.len();
            let parent_on_path = depth == 0 || self.on_path.last().copied().unwrap_or(false);
            if parent_on_path
                && depth + 1 == steps
                && step_matches(&self.plan.record_path[depth], &name)
            {
                let count = self.siblings.entry(name.clone()).or_insert(0);
                *count += 1;
                let index = *count;
                let mut pending =
                    self.plan
                        .begin(&e, &name, Self::location(&self.stack, &name, index));
                if !is_empty && let Err(reason) = self.read_record(&mut pending) {
                    self.done = true;
                    return Some(Err(RecordError {
                        location: pending.location,
                        reason: format!("{reason}; the rest of the file was not read"),
                        excerpt: None,
                    }));
                }
                return Some(pending.finish());
            }
            if is_empty {
                continue;
            }
            let on_path = parent_on_path
                && depth + 1 < steps
                && step_matches(&self.plan.record_path[depth], &name);
            self.stack.push(name);
            self.on_path.push(on_path);
            if on_path && depth + 2 == steps {
                // A new parent of records: sibling indexes restart.
                self.siblings.clear();
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

    fn path(p: &str) -> Vec<String> {
        p.split('/').map(str::to_string).collect()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    fn refused(xml: &str, record_path: &str) -> FileError {
        let f = file_with(xml.as_bytes());
        match open(
            f.path(),
            Encoding::Utf8,
            &path(record_path),
            &cols(&["A"]),
            &crate::ingest::Limits::default(),
        ) {
            Err(e) => e,
            Ok(_) => panic!("accepted {xml}"),
        }
    }

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- export -->
<SGS_DATA xmlns:x="urn:x">
  <HEADER><A>not a record</A></HEADER>
  <RECORDS>
    <XZCF id="7" x:kind="a &amp; b">
      <CF_NR>罚款 &lt;500&gt; 元 &#x4E2D;</CF_NR>
      <CF_AJMC><![CDATA[<b>案件</b>]]> &amp; more</CF_AJMC>
      <TAG>t1</TAG><TAG>t2</TAG>
      <EMPTY/>
    </XZCF>
    <XZXK id="8"><CF_NR>许可</CF_NR></XZXK>
    <XZCF id="9"><CF_NR>a<X>b</X></CF_NR></XZCF>
    <XZCF id="10"><OTHER><DEEP/></OTHER><CF_NR>last</CF_NR></XZCF>
    <XZCF/>
  </RECORDS>
</SGS_DATA>
"#;

    #[test]
    fn happy_path_with_star() {
        let f = file_with(SAMPLE.as_bytes());
        let columns = cols(&[
            "CF_NR", "@record", "@id", "@kind", "CF_AJMC", "TAG", "EMPTY", "MISSING",
        ]);
        let out: Vec<_> = open(
            f.path(),
            Encoding::Utf8,
            &path("SGS_DATA/RECORDS/*"),
            &columns,
            &crate::ingest::Limits::default(),
        )
        .unwrap()
        .collect();
        let at = |p: &str| Location::Element(p.to_string());
        assert_eq!(
            out,
            vec![
                Ok(RawRecord::new(
                    at("/SGS_DATA/RECORDS/XZCF[1]"),
                    vec![
                        s("罚款 <500> 元 中"),
                        s("XZCF"),
                        s("7"),
                        s("a & b"),
                        s("<b>案件</b> & more"),
                        s("t1;t2"),
                        s(""),
                        None,
                    ],
                    Vec::new()
                )),
                Ok(RawRecord::new(
                    at("/SGS_DATA/RECORDS/XZXK[1]"),
                    vec![s("许可"), s("XZXK"), s("8"), None, None, None, None, None],
                    Vec::new()
                )),
                Err(RecordError {
                    location: at("/SGS_DATA/RECORDS/XZCF[2]"),
                    reason: "<CF_NR> contains element <X>; text expected".into(),
                    excerpt: None,
                }),
                Ok(RawRecord::new(
                    at("/SGS_DATA/RECORDS/XZCF[3]"),
                    vec![s("last"), s("XZCF"), s("10"), None, None, None, None, None],
                    Vec::new()
                )),
                Ok(RawRecord::new(
                    at("/SGS_DATA/RECORDS/XZCF[4]"),
                    vec![None, s("XZCF"), None, None, None, None, None, None],
                    Vec::new()
                )),
            ]
        );
    }

    #[test]
    fn named_record_path_and_gb18030() {
        let xml = "<?xml version=\"1.0\" encoding=\"GB18030\"?><根><记录><名称>甲</名称></记录><其他/><记录><名称>乙</名称></记录></根>";
        let (bytes, _, _) = encoding_rs::GB18030.encode(xml);
        let f = file_with(&bytes);
        let out: Vec<_> = open(
            f.path(),
            Encoding::Gb18030,
            &path("根/记录"),
            &cols(&["名称"]),
            &crate::ingest::Limits::default(),
        )
        .unwrap()
        .collect();
        assert_eq!(
            out,
            vec![
                Ok(RawRecord::new(
                    Location::Element("/根/记录[1]".into()),
                    vec![s("甲")],
                    Vec::new()
                )),
                Ok(RawRecord::new(
                    Location::Element("/根/记录[2]".into()),
                    vec![s("乙")],
                    Vec::new()
                )),
            ]
        );
    }

    fn small(field: u64) -> crate::ingest::Limits {
        crate::ingest::Limits {
            field_bytes: field,
            xml_depth: 8,
            ..crate::ingest::Limits::default()
        }
    }

    fn records(xml: &str, limits: &crate::ingest::Limits) -> Vec<Result<RawRecord, RecordError>> {
        let f = file_with(xml.as_bytes());
        open(
            f.path(),
            Encoding::Utf8,
            &path("R/E"),
            &cols(&["A", "B"]),
            limits,
        )
        .unwrap()
        .collect()
    }

    #[test]
    fn nesting_past_the_depth_limit_refuses_the_file_naming_where() {
        let xml = format!("<R>{}</R>", "<a>".repeat(20));
        let f = file_with(xml.as_bytes());
        match open(
            f.path(),
            Encoding::Utf8,
            &path("R/E"),
            &cols(&["A"]),
            &small(64),
        ) {
            Err(FileError::Limit(l)) => {
                assert_eq!((l.key.as_str(), l.value.as_str()), ("xml_depth", "8"));
                assert!(
                    l.found.contains("depth 9") && l.found.contains("byte offset 24"),
                    "{l}"
                );
            }
            other => panic!("unexpected {:?}", other.err()),
        }
    }

    #[test]
    fn a_value_over_the_field_limit_is_cut_with_its_length_and_digest() {
        use sha2::{Digest, Sha256};
        let long = "甲&amp;".repeat(100);
        let joined_long = "x".repeat(40);
        let xml = format!(
            "<R><E><A>{long}</A><B>ok</B></E><E><A>fine</A><B>{joined_long}</B><B>{joined_long}</B></E>\
             <E><A><![CDATA[{long}]]></A></E></R>"
        );
        let out = records(&xml, &small(64));
        assert_eq!(out.len(), 3);
        // Cut by the guard: the figures are of the text as it stands in the file.
        let r = out[0].as_ref().unwrap();
        assert_eq!(r.value(1), Some("ok"));
        assert!(r.value(0).unwrap().len() <= 64);
        assert_eq!(
            r.cut,
            vec![Cut {
                column: 0,
                bytes: long.len() as u64,
                sha256: Sha256::digest(long.as_bytes()).into()
            }]
        );
        // Repeated children joined past the limit: cut with the figures of the joined text.
        let r = out[1].as_ref().unwrap();
        assert_eq!(r.value(0), Some("fine"));
        let joined = format!("{joined_long};{joined_long}");
        assert_eq!(r.cut.len(), 1);
        assert_eq!((r.cut[0].column, r.cut[0].bytes), (1, joined.len() as u64));
        assert_eq!(
            r.cut[0].sha256,
            <[u8; 32]>::from(Sha256::digest(joined.as_bytes()))
        );
        // CDATA too.
        let r = out[2].as_ref().unwrap();
        assert_eq!((r.cut[0].column, r.cut[0].bytes), (0, long.len() as u64));
    }

    #[test]
    fn a_tag_over_the_limit_refuses_the_file() {
        let xml = format!("<R><E A=\"{}\"/></R>", "v".repeat(5000));
        let f = file_with(xml.as_bytes());
        match open(
            f.path(),
            Encoding::Utf8,
            &path("R/E"),
            &cols(&["@A"]),
            &small(64),
        ) {
            Err(FileError::Limit(l)) => {
                assert_eq!(l.key, "field_kib");
                assert!(l.found.contains("byte offset 3"), "{l}");
            }
            other => panic!("unexpected {:?}", other.err()),
        }
    }

    #[test]
    fn a_character_reference_no_text_may_hold_spoils_only_its_record() {
        let xml = "<R><E><A>ab&#xD800;</A></E><E><A>good</A></E></R>";
        let out = records(xml, &crate::ingest::Limits::default());
        let e = out[0].as_ref().unwrap_err();
        assert!(
            e.reason.contains("<A> at character 3") && e.reason.contains("&#xD800;"),
            "{}",
            e.reason
        );
        assert_eq!(out[1].as_ref().unwrap().value(0), Some("good"));
    }

    #[test]
    fn doctype_is_refused_with_offset() {
        let xml = "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY x \"y\">]><r><A>&x;</A></r>";
        match refused(xml, "r/A") {
            FileError::XmlDoctype { offset } => assert_eq!(offset, 22),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn custom_entity_is_refused() {
        match refused("<r><A>x &custom; y</A></r>", "r/A") {
            FileError::Malformed {
                format: "XML",
                reason,
            } => {
                assert!(
                    reason.starts_with("entity reference &custom; is not accepted"),
                    "{reason}"
                );
                assert!(reason.ends_with("at byte offset 8"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
        match refused("<r><A b=\"&custom;\"/></r>", "r/A") {
            FileError::Malformed {
                format: "XML",
                reason,
            } => assert!(reason.contains("<A>"), "{reason}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn truncated_and_broken_documents_are_refused() {
        match refused(
            "<SGS_DATA><RECORDS><XZCF><A>1</A></XZCF>",
            "SGS_DATA/RECORDS/XZCF",
        ) {
            FileError::Malformed { reason, .. } => {
                assert_eq!(reason, "unexpected end of file inside <RECORDS>")
            }
            other => panic!("unexpected {other:?}"),
        }
        match refused("<r><A>1</B></r>", "r/A") {
            FileError::Malformed { reason, .. } => {
                assert!(reason.contains("byte offset 7"), "{reason}")
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            refused("<r/><r/>", "r"),
            FileError::Malformed { .. }
        ));
        assert!(matches!(
            refused("<r><A>1</A></r", "r/A"),
            FileError::Malformed { .. }
        ));
        assert!(matches!(
            refused("<q><A>1</A></q>", "r/A"),
            FileError::Malformed { .. }
        ));
        assert!(matches!(refused("  \n", "r/A"), FileError::Empty));
        assert!(matches!(
            refused("<?xml version=\"1.0\"?>", "r/A"),
            FileError::Malformed { .. }
        ));
    }

    #[test]
    fn invalid_encoding_offset() {
        let mut bytes = b"<r><A>".to_vec();
        bytes.push(0xFF);
        bytes.extend_from_slice(b"</A></r>");
        let f = file_with(&bytes);
        match open(
            f.path(),
            Encoding::Gb18030,
            &path("r/A"),
            &cols(&["A"]),
            &crate::ingest::Limits::default(),
        ) {
            Err(FileError::Encoding {
                encoding: "GB18030",
                offset: 6,
            }) => {}
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => panic!("accepted an invalid file"),
        }
    }
}
