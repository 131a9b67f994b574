//! XML output: the one writer every XML xianjie emits goes through (the gateway's port API
//! answers, push packages and quarterly reports, the platform simulator's receipts), so no writer
//! can emit a character XML 1.0 forbids; and [`resolve_ref`], the one reading of the references
//! the gateway's XML readers accept. The gateway re-exports this crate as `xianjie::xml_out`.
//!
//! Every text and attribute value is checked against XML 1.0's `Char` production before it is
//! written; a value holding a control character other than tab, line feed and carriage return,
//! or U+FFFE / U+FFFF, is refused with the element (or attribute) path, the character's
//! position in the value and its code point — never written, because one such character makes
//! the whole document unreadable to every XML parser. (Rust strings cannot hold unpaired
//! surrogates, the production's only other gap.) quick-xml escapes what passes, writing as
//! character references the whitespace a parser would otherwise change (a carriage return in
//! text; tab, line feed and carriage return in attributes), so a value reads back exactly as it
//! was written. Element and attribute names come from the code, never from data.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesRef, BytesStart, BytesText, Event};

/// Whether XML 1.0 allows `c` in a document: `#x9 | #xA | #xD | [#x20-#xD7FF] |
/// [#xE000-#xFFFD] | [#x10000-#x10FFFF]`.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Why XML output failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// A value holds a character XML 1.0 forbids.
    #[error("{field}: character {position} is U+{code:04X}, which XML 1.0 does not allow")]
    Forbidden {
        /// Where: the element path from the document (or fragment) root, `/@name` for an
        /// attribute, e.g. `case/party/name` or `PenaltyRecord/@id`.
        field: String,
        /// 1-based position of the character in the value, counted in characters.
        position: usize,
        /// Its code point.
        code: u32,
    },
    /// Writing failed (cannot happen with an in-memory buffer, kept for honesty).
    #[error("XML output failed: {0}")]
    Write(String),
}

/// Checks that every character of `value` may appear in an XML 1.0 document; `field` names it
/// in the error.
pub fn check(field: &str, value: &str) -> Result<(), XmlError> {
    // Fast path: every byte below 0x20 other than tab/LF/CR, and U+FFFE/U+FFFF (EF BF BE/BF),
    // are the only characters a Rust string can hold that XML 1.0 forbids.
    let suspect = value
        .bytes()
        .any(|b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0xEF);
    if !suspect {
        return Ok(());
    }
    match value.chars().enumerate().find(|(_, c)| !is_xml_char(*c)) {
        None => Ok(()),
        Some((i, c)) => Err(XmlError::Forbidden {
            field: field.to_string(),
            position: i + 1,
            code: u32::from(c),
        }),
    }
}

/// A piece of XML written by an [`XmlWriter`] made with [`XmlWriter::fragment`], to be
/// appended to a document: its characters were checked when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment(Vec<u8>);

impl Fragment {
    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// An XML writer that refuses forbidden characters. Elements are closed in order with
/// [`XmlWriter::end`]; the writer remembers the open elements to name a refused value. A refused
/// value is never written; after a refusal from [`XmlWriter::start`], [`XmlWriter::empty`] or
/// [`XmlWriter::element`] the writer is as it was, after one from [`XmlWriter::text`] the
/// element stays open.
pub struct XmlWriter {
    w: Writer<Vec<u8>>,
    /// The open elements, `/`-separated.
    path: String,
    /// Where each open element's name starts in `path`.
    marks: Vec<usize>,
}

impl XmlWriter {
    /// A document: starts with the XML declaration (1.0, UTF-8).
    pub fn document(capacity: usize) -> Result<Self, XmlError> {
        let mut x = Self::fragment(capacity);
        x.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        Ok(x)
    }

    /// A fragment, without a declaration (see [`XmlWriter::finish_fragment`]).
    pub fn fragment(capacity: usize) -> Self {
        Self {
            w: Writer::new(Vec::with_capacity(capacity)),
            path: String::new(),
            marks: Vec::new(),
        }
    }

    fn event(&mut self, e: Event<'_>) -> Result<(), XmlError> {
        self.w
            .write_event(e)
            .map_err(|e| XmlError::Write(e.to_string()))
    }

    fn tag<'a>(&self, name: &'a str, attrs: &[(&str, &str)]) -> Result<BytesStart<'a>, XmlError> {
        let mut start = BytesStart::new(name);
        for (k, v) in attrs {
            check(&self.field(&format!("{name}/@{k}")), v)?;
            start.push_attribute((*k, *v));
        }
        Ok(start)
    }

    /// `path/tail`, or `tail` at the root.
    fn field(&self, tail: &str) -> String {
        if self.path.is_empty() {
            tail.to_string()
        } else {
            format!("{}/{tail}", self.path)
        }
    }

    /// Opens element `name` with attributes.
    pub fn start(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), XmlError> {
        let start = self.tag(name, attrs)?;
        self.event(Event::Start(start))?;
        self.marks.push(self.path.len());
        if !self.path.is_empty() {
            self.path.push('/');
        }
        self.path.push_str(name);
        Ok(())
    }

    /// Writes an empty element `<name …/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), XmlError> {
        let start = self.tag(name, attrs)?;
        self.event(Event::Empty(start))
    }

    /// Closes the innermost open element.
    pub fn end(&mut self) -> Result<(), XmlError> {
        let at = self.marks.pop().unwrap_or(0);
        let name = self.path[at..].trim_start_matches('/').to_string();
        self.path.truncate(at);
        self.event(Event::End(BytesEnd::new(name)))
    }

    /// Writes character data in the innermost open element.
    pub fn text(&mut self, value: &str) -> Result<(), XmlError> {
        check(&self.path, value)?;
        self.checked_text(value)
    }

    fn checked_text(&mut self, value: &str) -> Result<(), XmlError> {
        self.event(Event::Text(BytesText::new(value)))
    }

    /// Writes `<name>value</name>`. A refused value leaves the writer as it was.
    pub fn element(&mut self, name: &str, value: &str) -> Result<(), XmlError> {
        check(&self.field(name), value)?;
        self.start(name, &[])?;
        self.checked_text(value)?;
        self.end()
    }

    /// Appends a fragment another writer checked.
    pub fn append(&mut self, f: &Fragment) {
        self.w.get_mut().extend_from_slice(&f.0);
    }

    /// The document's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.w.into_inner()
    }

    /// The fragment, to [`XmlWriter::append`] to a document.
    pub fn finish_fragment(self) -> Fragment {
        Fragment(self.w.into_inner())
    }
}

/// Checks an entity or character reference; `Err` says what is wrong with it. Only the five
/// predefined entities and numeric character references are accepted (no document defines
/// others: the readers refuse DTDs); whether the character may stand in a document is left to
/// the caller ([`is_xml_char`]).
pub fn resolve_ref(reference: &BytesRef<'_>) -> Result<char, String> {
    let name: &str = reference;
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(c)) => Ok(c),
            Ok(None) | Err(_) => Err(format!("invalid character reference &{name};")),
        };
    }
    match name {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        _ => Err(format!(
            "entity reference &{name}; is not accepted (only &lt; &gt; &amp; &quot; &apos; and \
             numeric character references are)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads back the text of `<t>` in `xml`, resolving references as any parser does.
    fn read_back(xml: &[u8]) -> (String, String) {
        let mut r = quick_xml::Reader::from_reader(xml);
        let (mut text, mut attr) = (String::new(), String::new());
        let mut buf = Vec::new();
        loop {
            match r.read_event_into(&mut buf).unwrap() {
                Event::Start(e) if e.name().as_ref() == "t" => {
                    let a = e.attributes().next().unwrap().unwrap();
                    attr = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .unwrap()
                        .into_owned();
                }
                Event::Text(t) => text.push_str(&t.xml10_content()),
                Event::GeneralRef(g) => match g.resolve_char_ref().unwrap() {
                    Some(c) => text.push(c),
                    None => {
                        text.push_str(&quick_xml::escape::unescape(&format!("&{};", &*g)).unwrap())
                    }
                },
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        (text, attr)
    }

    #[test]
    fn forbidden_characters_are_refused_with_the_field_position_and_code_point() {
        for (value, position, code) in [
            ("甲公司\u{1}", 4, 0x1),
            ("\u{0}", 1, 0),
            ("ab\u{1F}", 3, 0x1F),
            ("x\u{FFFE}", 2, 0xFFFE),
            ("😀\u{FFFF}", 2, 0xFFFF),
            ("a\u{B}b\u{C}", 2, 0xB),
        ] {
            let mut w = XmlWriter::document(64).unwrap();
            w.start("case", &[]).unwrap();
            w.start("party", &[]).unwrap();
            let e = w.element("name", value).unwrap_err();
            assert_eq!(
                e,
                XmlError::Forbidden {
                    field: "case/party/name".into(),
                    position,
                    code
                },
                "{value:?}"
            );
            let text = e.to_string();
            assert!(
                text.contains("case/party/name")
                    && text.contains(&format!("character {position}"))
                    && text.contains(&format!("U+{code:04X}")),
                "{text}"
            );
            // Attributes too, named with `@`.
            let mut w = XmlWriter::fragment(64);
            w.start("Records", &[]).unwrap();
            match w.start("PenaltyRecord", &[("id", "XJ-1"), ("version", value)]) {
                Err(XmlError::Forbidden { field, .. }) => {
                    assert_eq!(field, "Records/PenaltyRecord/@version")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn allowed_characters_pass_and_read_back_exactly() {
        let value = "tab\tLF\nCR\rCRLF\r\n 中文 <&>\"' 𠀀😀 \u{D7FF}\u{E000}\u{FFFD}\u{10FFFF}";
        let mut w = XmlWriter::document(64).unwrap();
        w.start("t", &[("a", value)]).unwrap();
        w.text(value).unwrap();
        w.end().unwrap();
        let xml = w.finish();
        let (text, attr) = read_back(&xml);
        assert_eq!(text, value);
        assert_eq!(attr, value);
        assert!(String::from_utf8(xml).unwrap().ends_with("</t>"));
    }

    #[test]
    fn fragments_append_and_paths_follow_the_open_elements() {
        let mut f = XmlWriter::fragment(16);
        f.start("PenaltyRecord", &[("id", "XJ-1")]).unwrap();
        f.element("XDR_MC", "甲").unwrap();
        assert_eq!(
            f.element("CF_NR", "x\u{1}").unwrap_err().to_string(),
            "PenaltyRecord/CF_NR: character 2 is U+0001, which XML 1.0 does not allow"
        );
        f.end().unwrap();
        let f = f.finish_fragment();
        let mut d = XmlWriter::document(16).unwrap();
        d.start("Records", &[]).unwrap();
        d.append(&f);
        d.empty("Retraction", &[("id", "XJ-2")]).unwrap();
        d.end().unwrap();
        let xml = String::from_utf8(d.finish()).unwrap();
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Records><PenaltyRecord id=\"XJ-1\"><XDR_MC>甲</XDR_MC></PenaltyRecord><Retraction id=\"XJ-2\"/></Records>"
        );
    }
}
