//! The receiving side's reading of a push package: a strict validator of
//! `schemas/province/package.xsd` written in Rust (element order, required elements, types,
//! patterns, lengths, code lists, decimals, dates, the `id`/`version` attributes) plus the checks
//! the XSD cannot express (USCC and resident-ID check characters, the record count).
//!
//! It owns the split between problems that refuse the whole package ([`PackageProblem`]: the
//! document cannot be trusted as a whole, or a record cannot even be named in a receipt) and
//! problems of one record ([`RecordProblem`]: that record is rejected with a code and a reason,
//! the others go through). Pure code, no I/O; untrusted bytes never panic it. The simulator
//! (`province-sim`) uses it, so what the gateway sends is held to the platform's rules.
//!
//! Where the XSD and libxml2 (`xmllint --schema`) differ we follow libxml2 when it is stricter
//! (no whitespace around `xs:date` values), and we add one rule of our own: `CreatedAt` must carry
//! a time zone, since a package's creation time without one cannot be placed on the time line.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use xianjie_model::{IdType, LicenseCategory, PenaltyKind, ResidentId, Uscc};

/// The namespace of `schemas/province/package.xsd` (the gateway's package writer uses it too).
pub const NAMESPACE: &str = "urn:xianjie:province:package:1";

/// Record problem code: a required element (or attribute) is missing.
pub const E_REQUIRED: &str = "E-REQUIRED";
/// Record problem code: a value breaks its pattern, type, length, decimal or date rule.
pub const E_FORMAT: &str = "E-FORMAT";
/// Record problem code: a value is not in its code list.
pub const E_CODE: &str = "E-CODE";
/// Record problem code: a USCC's check character is wrong.
pub const E_USCC: &str = "E-USCC";
/// Record problem code: a resident ID number is not valid (check character, birth date).
pub const E_ID: &str = "E-ID";
/// Record problem code: an unexpected, out-of-order, repeated or unknown element or attribute.
pub const E_ORDER: &str = "E-ORDER";

/// The `xsi` namespace: its location hints are allowed anywhere and ignored, as by any validator.
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// Longest value quoted back in a reason, so a reason stays a line, not a copy of the input.
const QUOTE_MAX: usize = 40;

/// A package as read: its header and its records in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The header.
    pub header: PackageHeader,
    /// Every record, in package order; each says whether it must be rejected.
    pub records: Vec<ParsedRecord>,
}

/// The package header, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageHeader {
    /// `PackageId` (`[A-Za-z0-9._-]{1,64}`).
    pub package_id: String,
    /// `SourceDivision` (six digits).
    pub source_division: String,
    /// `SendingUnit`, a USCC with a verified check character.
    pub sending_unit: String,
    /// `CreatedAt`.
    pub created_at: DateTime<Utc>,
    /// `RecordCount`, equal to the number of records.
    pub record_count: u64,
}

/// The kind of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// `PenaltyRecord` (CF_* fields of 双公示).
    Penalty,
    /// `LicenseRecord` (XK_* fields).
    License,
    /// `InspectionResult` (双随机一公开).
    Inspection,
}

impl RecordKind {
    /// The element name (also the `kind` attribute value of a `Retraction`).
    pub fn element(self) -> &'static str {
        match self {
            RecordKind::Penalty => "PenaltyRecord",
            RecordKind::License => "LicenseRecord",
            RecordKind::Inspection => "InspectionResult",
        }
    }

    /// The kind named by an element name or `kind` attribute value.
    pub fn from_element(name: &str) -> Option<Self> {
        match name {
            "PenaltyRecord" => Some(RecordKind::Penalty),
            "LicenseRecord" => Some(RecordKind::License),
            "InspectionResult" => Some(RecordKind::Inspection),
            _ => None,
        }
    }

    fn model(self) -> &'static [Slot] {
        match self {
            RecordKind::Penalty => PENALTY,
            RecordKind::License => LICENSE,
            RecordKind::Inspection => INSPECTION,
        }
    }
}

/// Upsert (the record in full) or retraction (`Retraction`: kind, id and version only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordOp {
    /// A record element: the record as of its version.
    Upsert,
    /// A `Retraction`: the record is withdrawn as of its version.
    Retract,
}

impl RecordOp {
    /// `upsert` or `retract`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordOp::Upsert => "upsert",
            RecordOp::Retract => "retract",
        }
    }
}

/// One record as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRecord {
    /// The kind; `None` when the element or the retraction's `kind` is not a known kind (the
    /// record then has a problem).
    pub kind: Option<RecordKind>,
    /// Upsert or retraction.
    pub op: RecordOp,
    /// The `id` attribute.
    pub id: String,
    /// The `version` attribute.
    pub version: u64,
    /// For upserts, each child element's name and text (empty for retractions).
    pub fields: BTreeMap<String, String>,
    /// `Some` when this record must be rejected: the first problem found, in document order.
    pub problem: Option<RecordProblem>,
}

/// Why one record is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProblem {
    /// One of [`E_REQUIRED`], [`E_FORMAT`], [`E_CODE`], [`E_USCC`], [`E_ID`], [`E_ORDER`].
    pub code: &'static str,
    /// What is wrong, naming the element, e.g. `XDR_SHXYM: USCC ...: check character is B,
    /// expected A`. Personal ID numbers appear masked only.
    pub reason: String,
}

/// Why a whole package is refused. Messages name the element or byte offset, so the sender can
/// find the fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageProblem {
    /// The bytes are not UTF-8.
    #[error("not UTF-8: invalid byte sequence at byte offset {offset}")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The XML declaration names another encoding or version.
    #[error("the XML declaration says {what}; packages are XML 1.0 in UTF-8")]
    Declaration {
        /// What it says.
        what: String,
    },
    /// Not well-formed XML.
    #[error("not well-formed XML at byte offset {offset}: {reason}")]
    Malformed {
        /// Where the parser stopped.
        offset: u64,
        /// What it found.
        reason: String,
    },
    /// A document type declaration: refused, so no entity can be declared or expanded.
    #[error("a DOCTYPE (at byte offset {offset}) is refused: packages may not declare entities")]
    Doctype {
        /// Where it starts.
        offset: u64,
    },
    /// A reference to an entity other than the five predefined ones.
    #[error(
        "entity reference &{name}; at byte offset {offset} is refused (only &lt; &gt; &amp; &quot; &apos; and character references are accepted)"
    )]
    Entity {
        /// The entity name.
        name: String,
        /// Where it is.
        offset: u64,
    },
    /// The root is not `Package` in the package namespace.
    #[error("the root element is {found}, expected <Package> in namespace {NAMESPACE}")]
    WrongRoot {
        /// The root found, with its namespace.
        found: String,
    },
    /// The header is missing or one of its elements is missing or invalid.
    #[error("header: {element}: {reason}")]
    Header {
        /// The header element at fault (`Header` for the header itself).
        element: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Something other than the header and records where they belong.
    #[error("package structure at byte offset {offset}: {reason}")]
    Structure {
        /// Where.
        offset: u64,
        /// What.
        reason: String,
    },
    /// `RecordCount` differs from the number of records.
    #[error("RecordCount says {declared} records but the package holds {found}")]
    RecordCount {
        /// `RecordCount`.
        declared: u64,
        /// Records present.
        found: usize,
    },
    /// `Records` holds no record.
    #[error("the package holds no records")]
    NoRecords,
    /// A record cannot be named in a receipt: its `id` or `version` is missing or unusable.
    #[error("record {index} (<{element}>): {reason}")]
    RecordIdentity {
        /// 1-based position among the records.
        index: usize,
        /// The record's element name.
        element: String,
        /// What is wrong.
        reason: String,
    },
}

/// Reads and validates a package.
///
/// # Errors
/// [`PackageProblem`] when the package as a whole is refused; problems of single records are
/// reported in [`ParsedRecord::problem`] instead.
pub fn parse(xml: &[u8]) -> Result<Package, PackageProblem> {
    let text = std::str::from_utf8(xml).map_err(|e| PackageProblem::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    check_chars(xml)?;
    let mut lx = Lexer::new(text);

    // The prolog, then the root.
    let root = match lx.next()? {
        Tok::Open(o) => o,
        Tok::Close | Tok::Eof => return Err(lx.malformed(lx.pos(), "no root element")),
    };
    if !is_blank(&lx.text) {
        return Err(lx.malformed(root.at, "character data before the root element"));
    }
    if !root.ours || root.local() != "Package" {
        return Err(PackageProblem::WrongRoot {
            found: root.describe(),
        });
    }
    structural_attrs(&root)?;
    if root.empty {
        return Err(header_problem("Header", "missing (the package is empty)"));
    }
    let header = read_header(&mut lx)?;

    let records_el = match lx.child("Package")? {
        Some(o) if o.ours && o.local() == "Records" => o,
        Some(o) => {
            return Err(PackageProblem::Structure {
                offset: o.at,
                reason: format!("{} after <Header>, expected <Records>", o.describe()),
            });
        }
        None => {
            return Err(PackageProblem::Structure {
                offset: lx.pos(),
                reason: "<Records> is missing after <Header>".into(),
            });
        }
    };
    structural_attrs(&records_el)?;
    // Sized from the header, but bounded: the count is the sender's claim, not a fact yet.
    let mut records =
        Vec::with_capacity(usize::try_from(header.record_count.min(10_000)).unwrap_or(0));
    if !records_el.empty {
        while let Some(o) = lx.child("Records")? {
            let index = records.len() + 1;
            records.push(read_record(&mut lx, o, index)?);
        }
    }
    if let Some(o) = lx.child("Package")? {
        return Err(PackageProblem::Structure {
            offset: o.at,
            reason: format!(
                "{} after <Records>: nothing may follow the records",
                o.describe()
            ),
        });
    }
    // The epilogue: comments, processing instructions and whitespace only.
    match lx.next()? {
        Tok::Eof if is_blank(&lx.text) => {}
        Tok::Open(o) => return Err(lx.malformed(o.at, "a second root element")),
        _ => return Err(lx.malformed(lx.pos(), "content after the root element")),
    }

    if records.is_empty() {
        return Err(PackageProblem::NoRecords);
    }
    if header.record_count != records.len() as u64 {
        return Err(PackageProblem::RecordCount {
            declared: header.record_count,
            found: records.len(),
        });
    }
    Ok(Package { header, records })
}

/// XML 1.0 allows no control characters but tab, newline and carriage return, and neither
/// U+FFFE nor U+FFFF; quick-xml does not check characters, so this pass does (the input is
/// already known to be UTF-8, which rules out surrogates).
pub(crate) fn check_chars(xml: &[u8]) -> Result<(), PackageProblem> {
    let bad = |offset: usize, what: &str| PackageProblem::Malformed {
        offset: offset as u64,
        reason: format!("{what} is not an XML character"),
    };
    let control = |b: u8| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r');
    // Whole chunks without an early exit, which the compiler vectorises; the exact offset is
    // looked for only in a chunk known to hold a bad byte.
    for (n, chunk) in xml.chunks(64).enumerate() {
        if chunk.iter().fold(false, |any, &b| any | control(b))
            && let Some(i) = chunk.iter().position(|&b| control(b))
        {
            let at = n * 64 + i;
            return Err(bad(at, &format!("control character U+{:04X}", chunk[i])));
        }
    }
    for i in memchr::memchr_iter(0xEF, xml) {
        if xml.get(i + 1) == Some(&0xBF) && matches!(xml.get(i + 2), Some(0xBE | 0xBF)) {
            return Err(bad(i, "U+FFFE/U+FFFF"));
        }
    }
    Ok(())
}

fn is_blank(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Trims the XML whitespace characters (the `collapse` facet of a single-token value).
fn trim_xml(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

/// A value quoted in a reason: shortened, so a reason never carries a whole field.
fn quote(v: &str) -> String {
    if v.chars().count() <= QUOTE_MAX {
        format!("{v:?}")
    } else {
        let head: String = v.chars().take(QUOTE_MAX).collect();
        format!("{head:?}…")
    }
}

fn header_problem(element: &'static str, reason: impl Into<String>) -> PackageProblem {
    PackageProblem::Header {
        element,
        reason: reason.into(),
    }
}

/// An attribute of an element, namespace resolved.
struct Attr {
    /// Local name.
    name: String,
    /// Whether it has no namespace (the only kind the schema declares).
    plain: bool,
    /// Normalised value.
    value: String,
}

/// A start tag (or empty-element tag).
struct Open<'a> {
    start: BytesStart<'a>,
    /// In the package namespace.
    ours: bool,
    /// `<x/>`: no content and no end tag will follow.
    empty: bool,
    /// Byte offset of the tag.
    at: u64,
    /// Attributes other than namespace declarations and `xsi` location hints.
    attrs: Vec<Attr>,
}

impl Open<'_> {
    fn local(&self) -> &str {
        self.start.local_name().into_inner()
    }

    /// `<Name>` or `<Name> in namespace X` / `in no namespace`, for messages.
    fn describe(&self) -> String {
        if self.ours {
            format!("<{}>", self.local())
        } else {
            format!("<{}> (not in namespace {NAMESPACE})", self.local())
        }
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.plain && a.name == name)
            .map(|a| a.value.as_str())
    }
}

enum Tok<'a> {
    Open(Open<'a>),
    Close,
    Eof,
}

/// The event stream reduced to what validation needs: start tags, end tags and the end, with
/// the character data before each collected in `text` (comments and processing instructions
/// removed, references resolved, CDATA included) — as a schema validator sees content.
struct Lexer<'a> {
    r: NsReader<&'a [u8]>,
    text: String,
    /// USCCs verified so far in this package: most records share their authority's and data
    /// source's codes, and verifying one allocates, so each distinct code is verified once.
    verified: HashSet<String>,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str) -> Self {
        let mut r = NsReader::from_str(s);
        // `--` inside a comment is not well-formed; quick-xml lets it pass unless asked.
        r.config_mut().check_comments = true;
        Self {
            r,
            text: String::new(),
            verified: HashSet::new(),
        }
    }

    fn pos(&self) -> u64 {
        self.r.buffer_position()
    }

    fn malformed(&self, offset: u64, reason: impl Into<String>) -> PackageProblem {
        PackageProblem::Malformed {
            offset,
            reason: reason.into(),
        }
    }

    fn next(&mut self) -> Result<Tok<'a>, PackageProblem> {
        self.text.clear();
        loop {
            let at = self.pos();
            let ev = match self.r.read_event() {
                Ok(ev) => ev,
                Err(e) => {
                    return Err(PackageProblem::Malformed {
                        offset: self.r.error_position(),
                        reason: e.to_string(),
                    });
                }
            };
            let ours = match &ev {
                Event::Start(e) | Event::Empty(e) => {
                    match self.r.resolver().resolve_element(e.name()).0 {
                        ResolveResult::Bound(n) => n.0 == NAMESPACE,
                        ResolveResult::Unbound => false,
                        ResolveResult::Unknown(p) => {
                            return Err(
                                self.malformed(at, format!("undeclared namespace prefix {p:?}"))
                            );
                        }
                    }
                }
                _ => false,
            };
            match ev {
                Event::Start(start) => return self.open(start, ours, false, at),
                Event::Empty(start) => return self.open(start, ours, true, at),
                Event::End(_) => return Ok(Tok::Close),
                Event::Text(t) => self.text.push_str(&t.xml10_content()),
                Event::CData(c) => self.text.push_str(&c.xml10_content()),
                Event::GeneralRef(r) => {
                    let name: &str = &r;
                    if r.is_char_ref() {
                        match r.resolve_char_ref() {
                            Ok(Some(c)) if xianjie_xml::is_xml_char(c) => self.text.push(c),
                            _ => {
                                return Err(self.malformed(
                                    at,
                                    format!("&{name}; is not a reference to an XML 1.0 character"),
                                ));
                            }
                        }
                    } else {
                        match name {
                            "lt" => self.text.push('<'),
                            "gt" => self.text.push('>'),
                            "amp" => self.text.push('&'),
                            "quot" => self.text.push('"'),
                            "apos" => self.text.push('\''),
                            _ => {
                                return Err(PackageProblem::Entity {
                                    name: name.to_string(),
                                    offset: at,
                                });
                            }
                        }
                    }
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Decl(d) => {
                    if at != 0 {
                        return Err(
                            self.malformed(at, "an XML declaration that is not at the start")
                        );
                    }
                    match d.version() {
                        Ok(v) if v == "1.0" => {}
                        Ok(v) => {
                            return Err(PackageProblem::Declaration {
                                what: format!("version {}", quote(&v)),
                            });
                        }
                        Err(e) => return Err(self.malformed(at, e.to_string())),
                    }
                    match d.encoding() {
                        None => {}
                        Some(Ok(enc)) if enc.eq_ignore_ascii_case("utf-8") => {}
                        Some(Ok(enc)) => {
                            return Err(PackageProblem::Declaration {
                                what: format!("encoding {}", quote(&enc)),
                            });
                        }
                        Some(Err(e)) => return Err(self.malformed(at, e.to_string())),
                    }
                }
                Event::DocType(_) => return Err(PackageProblem::Doctype { offset: at }),
                Event::Eof => return Ok(Tok::Eof),
            }
        }
    }

    /// Builds an [`Open`], resolving attribute namespaces now, while the element's own
    /// declarations are in scope.
    fn open(
        &self,
        start: BytesStart<'a>,
        ours: bool,
        empty: bool,
        at: u64,
    ) -> Result<Tok<'a>, PackageProblem> {
        let mut attrs = Vec::new();
        for a in start.attributes() {
            let a = a.map_err(|e| self.malformed(at, format!("bad attribute: {e}")))?;
            if a.key.as_namespace_binding().is_some() {
                continue;
            }
            let (ns, local) = self.r.resolver().resolve_attribute(a.key);
            let plain = match ns {
                ResolveResult::Unbound => true,
                ResolveResult::Bound(n) if n.0 == XSI => {
                    if matches!(
                        local.into_inner(),
                        "schemaLocation" | "noNamespaceSchemaLocation"
                    ) {
                        continue;
                    }
                    false
                }
                ResolveResult::Bound(_) => false,
                ResolveResult::Unknown(p) => {
                    return Err(self.malformed(at, format!("undeclared namespace prefix {p:?}")));
                }
            };
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| self.malformed(at, format!("bad attribute value: {e}")))?;
            attrs.push(Attr {
                name: local.into_inner().to_string(),
                plain,
                value: value.into_owned(),
            });
        }
        Ok(Tok::Open(Open {
            start,
            ours,
            empty,
            at,
            attrs,
        }))
    }

    /// The next child element of `parent` in element-only content, `None` at its end tag.
    fn child(&mut self, parent: &str) -> Result<Option<Open<'a>>, PackageProblem> {
        let tok = self.next()?;
        if !is_blank(&self.text) {
            return Err(PackageProblem::Structure {
                offset: self.pos(),
                reason: format!(
                    "character data {} inside <{parent}>",
                    quote(trim_xml(&self.text))
                ),
            });
        }
        match tok {
            Tok::Open(o) => Ok(Some(o)),
            Tok::Close => Ok(None),
            Tok::Eof => {
                Err(self.malformed(self.pos(), format!("the document ends inside <{parent}>")))
            }
        }
    }

    /// Skips the content of `o` through its end tag.
    fn skip(&mut self, o: &Open<'_>) -> Result<(), PackageProblem> {
        if o.empty {
            return Ok(());
        }
        let mut depth = 1usize;
        loop {
            match self.next()? {
                Tok::Open(c) if !c.empty => depth += 1,
                Tok::Open(_) => {}
                Tok::Close => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Tok::Eof => {
                    return Err(self.malformed(
                        self.pos(),
                        format!("the document ends inside <{}>", o.local()),
                    ));
                }
            }
        }
    }

    /// The text content of a simple-typed element; `Err(name)` of the first child element when
    /// it holds elements (the rest is skipped).
    fn simple(&mut self, o: &Open<'_>) -> Result<Result<String, String>, PackageProblem> {
        if o.empty {
            return Ok(Ok(String::new()));
        }
        let mut value = String::new();
        let mut nested = None;
        loop {
            let tok = self.next()?;
            value.push_str(&self.text);
            match tok {
                Tok::Close => {
                    return Ok(match nested {
                        Some(n) => Err(n),
                        None => Ok(value),
                    });
                }
                Tok::Open(c) => {
                    nested.get_or_insert_with(|| c.local().to_string());
                    self.skip(&c)?;
                }
                Tok::Eof => {
                    return Err(self.malformed(
                        self.pos(),
                        format!("the document ends inside <{}>", o.local()),
                    ));
                }
            }
        }
    }
}

/// `Package`, `Header` and `Records` declare no attributes.
fn structural_attrs(o: &Open<'_>) -> Result<(), PackageProblem> {
    match o.attrs.first() {
        None => Ok(()),
        Some(a) => Err(PackageProblem::Structure {
            offset: o.at,
            reason: format!("unexpected attribute {:?} on <{}>", a.name, o.local()),
        }),
    }
}

const HEADER: [&str; 6] = [
    "PackageId",
    "SourceDivision",
    "SendingUnit",
    "CreatedAt",
    "RecordCount",
    "SchemaVersion",
];

fn read_header(lx: &mut Lexer<'_>) -> Result<PackageHeader, PackageProblem> {
    let h = match lx.child("Package")? {
        Some(o) if o.ours && o.local() == "Header" => o,
        Some(o) => {
            return Err(header_problem(
                "Header",
                format!("missing: found {} first", o.describe()),
            ));
        }
        None => return Err(header_problem("Header", "missing")),
    };
    structural_attrs(&h)?;
    let mut values: Vec<String> = Vec::with_capacity(HEADER.len());
    for name in HEADER {
        let o = if h.empty { None } else { lx.child("Header")? };
        let o = match o {
            Some(o) if o.ours && o.local() == name => o,
            Some(o) => {
                return Err(header_problem(
                    name,
                    format!("missing: found {} in its place", o.describe()),
                ));
            }
            None => return Err(header_problem(name, "missing")),
        };
        if let Some(a) = o.attrs.first() {
            return Err(header_problem(
                name,
                format!("unexpected attribute {:?}", a.name),
            ));
        }
        match lx.simple(&o)? {
            Ok(v) => values.push(v),
            Err(child) => {
                return Err(header_problem(
                    name,
                    format!("must hold text, not the element <{child}>"),
                ));
            }
        }
    }
    if let Some(o) = lx.child("Header")? {
        return Err(header_problem(
            "Header",
            format!("unexpected {} after SchemaVersion", o.describe()),
        ));
    }
    let [
        package_id,
        source_division,
        sending_unit,
        created_at,
        record_count,
        schema_version,
    ] = <[String; 6]>::try_from(values).map_err(|_| header_problem("Header", "incomplete"))?;

    if !token64(&package_id) {
        return Err(header_problem(
            "PackageId",
            format!("{} is not 1-64 of A-Z a-z 0-9 . _ -", quote(&package_id)),
        ));
    }
    if !(source_division.len() == 6 && source_division.bytes().all(|b| b.is_ascii_digit())) {
        return Err(header_problem(
            "SourceDivision",
            format!("{} is not six digits", quote(&source_division)),
        ));
    }
    uscc(&sending_unit).map_err(|(_, why)| header_problem("SendingUnit", why))?;
    let created_at = date_time(&created_at)
        .map_err(|why| header_problem("CreatedAt", format!("{} {why}", quote(&created_at))))?;
    let record_count = match positive_integer(&record_count) {
        Some(n) if n > 0 => n,
        _ => {
            return Err(header_problem(
                "RecordCount",
                format!("{} is not a positive integer", quote(&record_count)),
            ));
        }
    };
    // `fixed="1.0"`: an empty element takes the fixed value, any other value is invalid.
    if !(schema_version.is_empty() || schema_version == "1.0") {
        return Err(header_problem(
            "SchemaVersion",
            format!("{} is not the fixed value \"1.0\"", quote(&schema_version)),
        ));
    }
    Ok(PackageHeader {
        package_id,
        source_division,
        sending_unit,
        created_at,
        record_count,
    })
}

/// The type of a record field: the XSD type plus the code list or checksum we know it carries.
#[derive(Clone, Copy)]
enum Ty {
    /// `Text`: 1 to 4000 characters.
    Text,
    /// `Uscc`: pattern, then the check character.
    Uscc,
    /// `PartyCategory` enumeration.
    PartyCategory,
    /// `IdType`: one of the five document types the standard lists (身份证, 护照, ...).
    IdTypeLabel,
    /// `Text` holding penalty kind labels joined by `;`.
    PenaltyKinds,
    /// `Text` holding a licence category label.
    LicenseCategory,
    /// `Wanyuan`: decimal ≥ 0 with at most 6 fraction digits.
    Wanyuan,
    /// `xs:date`.
    Date,
    /// `JC_JGDM`: the inspection result code list 01..14.
    InspectionCode,
    /// `XK_ZT`: 1 有效, 2 无效.
    LicenseState,
}

struct Slot {
    name: &'static str,
    required: bool,
    ty: Ty,
}

const fn req(name: &'static str, ty: Ty) -> Slot {
    Slot {
        name,
        required: true,
        ty,
    }
}

const fn opt(name: &'static str, ty: Ty) -> Slot {
    Slot {
        name,
        required: false,
        ty,
    }
}

/// The party items of a 双公示 record, in the standard's order, with the prefix and the
/// record's own items after them.
macro_rules! party {
    ($p:literal; $($rest:expr),* $(,)?) => {
        &[
            req(concat!($p, "XDR_MC"), Ty::Text),
            req(concat!($p, "XDR_LB"), Ty::PartyCategory),
            opt(concat!($p, "XDR_SHXYM"), Ty::Uscc),
            opt(concat!($p, "XDR_GSZC"), Ty::Text),
            opt(concat!($p, "XDR_ZZJG"), Ty::Text),
            opt(concat!($p, "XDR_SWDJ"), Ty::Text),
            opt(concat!($p, "XDR_SYDW"), Ty::Text),
            opt(concat!($p, "XDR_SHZZ"), Ty::Text),
            opt(concat!($p, "FRDB"), Ty::Text),
            opt(concat!($p, "FR_ZJLX"), Ty::IdTypeLabel),
            opt(concat!($p, "FR_ZJHM"), Ty::Text),
            opt(concat!($p, "XDR_ZJLX"), Ty::IdTypeLabel),
            opt(concat!($p, "XDR_ZJHM"), Ty::Text),
            $($rest),*
        ]
    };
}

/// 行政处罚: the 2021 `CF_*` items.
const PENALTY: &[Slot] = party![
    "CF_";
    req("CF_WSH", Ty::Text),
    req("CF_WFXW", Ty::Text),
    req("CF_SY", Ty::Text),
    req("CF_YJ", Ty::Text),
    req("CF_CFLB", Ty::PenaltyKinds),
    req("CF_NR", Ty::Text),
    opt("CF_NR_FK", Ty::Wanyuan),
    opt("CF_NR_WFFF", Ty::Wanyuan),
    opt("CF_NR_ZKDX", Ty::Text),
    req("CF_JDRQ", Ty::Date),
    opt("CF_YXQ", Ty::Date),
    opt("CF_GSJZQ", Ty::Date),
    req("CF_CFJG", Ty::Text),
    req("CF_CFJGDM", Ty::Uscc),
    req("CF_SJLY", Ty::Text),
    req("CF_SJLYDM", Ty::Uscc),
    opt("BZ", Ty::Text),
];

/// 行政许可: the 2021 `XK_*` items.
const LICENSE: &[Slot] = party![
    "XK_";
    req("XK_XKWS", Ty::Text),
    req("XK_WSH", Ty::Text),
    opt("XK_XKLB", Ty::LicenseCategory),
    opt("XK_XKZS", Ty::Text),
    opt("XK_XKBH", Ty::Text),
    req("XK_NR", Ty::Text),
    req("XK_JDRQ", Ty::Date),
    req("XK_YXQZ", Ty::Date),
    req("XK_YXQZI", Ty::Date),
    req("XK_XKJG", Ty::Text),
    req("XK_XKJGDM", Ty::Uscc),
    opt("XK_ZT", Ty::LicenseState),
    req("XK_LYDW", Ty::Text),
    req("XK_LYDWDM", Ty::Uscc),
    opt("BZ", Ty::Text),
];

/// 双随机一公开 results: the unprefixed party items, then `JC_*`.
const INSPECTION: &[Slot] = &[
    req("XDR_MC", Ty::Text),
    req("XDR_LB", Ty::PartyCategory),
    opt("XDR_SHXYM", Ty::Uscc),
    opt("XDR_ZJLX", Ty::IdTypeLabel),
    opt("XDR_ZJHM", Ty::Text),
    opt("JC_RWMC", Ty::Text),
    opt("JC_PCH", Ty::Text),
    req("JC_JGDM", Ty::InspectionCode),
    req("JC_JG", Ty::Text),
    req("JC_RQ", Ty::Date),
    req("JC_JCJG", Ty::Text),
    req("JC_JCJGDM", Ty::Uscc),
];

fn problem(code: &'static str, reason: impl Into<String>) -> Option<RecordProblem> {
    Some(RecordProblem {
        code,
        reason: reason.into(),
    })
}

/// A child element of a record, as read.
struct Child {
    name: String,
    ours: bool,
    /// The text, or the name of an element nested inside it.
    content: Result<String, String>,
}

fn read_record(
    lx: &mut Lexer<'_>,
    o: Open<'_>,
    index: usize,
) -> Result<ParsedRecord, PackageProblem> {
    let element = o.local().to_string();
    let identity = |reason: String| PackageProblem::RecordIdentity {
        index,
        element: element.clone(),
        reason,
    };
    let id = o
        .attr("id")
        .ok_or_else(|| identity("no id attribute".into()))?
        .to_string();
    let version_text = o
        .attr("version")
        .ok_or_else(|| identity("no version attribute".into()))?;
    let version = positive_integer(version_text).ok_or_else(|| {
        identity(format!(
            "version {} is not an unsigned integer below 2^64",
            quote(version_text)
        ))
    })?;

    let (kind, op) = match (o.ours, element.as_str()) {
        (true, "Retraction") => (
            o.attr("kind").and_then(RecordKind::from_element),
            RecordOp::Retract,
        ),
        (true, name) => (RecordKind::from_element(name), RecordOp::Upsert),
        (false, _) => (None, RecordOp::Upsert),
    };
    let mut record = ParsedRecord {
        kind,
        op,
        id,
        version,
        fields: BTreeMap::new(),
        problem: None,
    };

    // Attributes first: they come before the content in the document.
    if !token64(&record.id) {
        record.problem = problem(
            E_FORMAT,
            format!("id: {} is not 1-64 of A-Z a-z 0-9 . _ -", quote(&record.id)),
        );
    } else if version == 0 {
        record.problem = problem(E_FORMAT, "version: 0 is not a positive integer");
    } else if let Some(a) = o.attrs.iter().find(|a| {
        !(a.plain
            && (a.name == "id"
                || a.name == "version"
                || (matches!(a.name.as_str(), "kind" | "reason" | "date")
                    && op == RecordOp::Retract)))
    }) {
        record.problem = problem(
            E_ORDER,
            format!("unexpected attribute {:?} on <{element}>", a.name),
        );
    }

    if op == RecordOp::Retract {
        if record.problem.is_none() {
            record.problem = match o.attr("kind") {
                None => problem(E_REQUIRED, "kind: the Retraction has no kind attribute"),
                Some(k) if kind.is_none() => problem(
                    E_CODE,
                    format!(
                        "kind: {} is not PenaltyRecord, LicenseRecord or InspectionResult",
                        quote(k)
                    ),
                ),
                Some(_) => retraction_why(&o, &mut record.fields),
            };
        }
        // The content type is empty: not even whitespace is allowed (as libxml2 enforces).
        if !o.empty {
            loop {
                let tok = lx.next()?;
                if !lx.text.is_empty() && record.problem.is_none() {
                    record.problem =
                        problem(E_ORDER, "Retraction: must be empty, found character data");
                }
                match tok {
                    Tok::Close => break,
                    Tok::Open(c) => {
                        if record.problem.is_none() {
                            record.problem = problem(
                                E_ORDER,
                                format!("Retraction: must be empty, found {}", c.describe()),
                            );
                        }
                        lx.skip(&c)?;
                    }
                    Tok::Eof => {
                        return Err(lx.malformed(lx.pos(), "the document ends inside <Retraction>"));
                    }
                }
            }
        }
        return Ok(record);
    }

    let Some(kind) = kind else {
        lx.skip(&o)?;
        if record.problem.is_none() {
            record.problem = problem(
                E_ORDER,
                format!(
                    "{}: not a record element (PenaltyRecord, LicenseRecord, InspectionResult or Retraction)",
                    o.describe()
                ),
            );
        }
        return Ok(record);
    };

    // Read every child first, then judge: the reader must reach the end tag either way.
    let mut children: Vec<Child> = Vec::with_capacity(20);
    let mut stray_text = false;
    if !o.empty {
        loop {
            let tok = lx.next()?;
            stray_text |= !is_blank(&lx.text);
            match tok {
                Tok::Close => break,
                Tok::Open(c) => {
                    let stray_attr = c.attrs.first().map(|a| a.name.clone());
                    let content = lx.simple(&c)?;
                    let content = match (stray_attr, content) {
                        (Some(a), Ok(_)) => Err(format!("@{a}")),
                        (_, content) => content,
                    };
                    children.push(Child {
                        name: c.local().to_string(),
                        ours: c.ours,
                        content,
                    });
                }
                Tok::Eof => {
                    return Err(
                        lx.malformed(lx.pos(), format!("the document ends inside <{element}>"))
                    );
                }
            }
        }
    }
    if record.problem.is_none() {
        record.problem = if stray_text {
            problem(
                E_ORDER,
                format!("{element}: character data between its elements"),
            )
        } else {
            check_record(kind, &children, &mut lx.verified)
        };
    }
    for c in children {
        if let Ok(v) = c.content {
            record.fields.entry(c.name).or_insert(v);
        }
    }
    Ok(record)
}

/// Checks a record's children against its content model, then each value, then the rules
/// across fields; returns the first problem.
fn check_record(
    kind: RecordKind,
    children: &[Child],
    verified: &mut HashSet<String>,
) -> Option<RecordProblem> {
    let model = kind.model();
    let element = kind.element();
    let mut next = 0;
    let mut slots: Vec<&Slot> = Vec::with_capacity(children.len());
    for (i, c) in children.iter().enumerate() {
        if !c.ours {
            return problem(E_ORDER, format!("{}: not in namespace {NAMESPACE}", c.name));
        }
        match model[next..].iter().position(|s| s.name == c.name) {
            Some(k) => {
                if let Some(m) = model[next..next + k].iter().find(|s| s.required) {
                    if children[i + 1..].iter().any(|later| later.name == m.name) {
                        return problem(
                            E_ORDER,
                            format!("{}: out of order ({} must come before it)", c.name, m.name),
                        );
                    }
                    return problem(
                        E_REQUIRED,
                        format!(
                            "{}: required element missing (found {} in its place)",
                            m.name, c.name
                        ),
                    );
                }
                slots.push(&model[next + k]);
                next += k + 1;
            }
            None if model[..next].iter().any(|s| s.name == c.name) => {
                let after = slots.last().map_or("", |s| s.name);
                return problem(
                    E_ORDER,
                    format!("{}: repeated or out of order (after {after})", c.name),
                );
            }
            None => {
                return problem(E_ORDER, format!("{}: not an element of {element}", c.name));
            }
        }
    }
    if let Some(m) = model[next..].iter().find(|s| s.required) {
        return problem(E_REQUIRED, format!("{}: required element missing", m.name));
    }

    for (c, slot) in children.iter().zip(&slots) {
        let v = match &c.content {
            Ok(v) => v,
            Err(inner) => {
                let what = match inner.strip_prefix('@') {
                    Some(a) => format!("unexpected attribute {a:?}"),
                    None => format!("must hold text, not the element <{inner}>"),
                };
                return problem(E_ORDER, format!("{}: {what}", c.name));
            }
        };
        if let Some(p) = check_value(slot, v, verified) {
            return Some(p);
        }
    }

    // Across fields: an ID number goes with its type, and is checked as that type says.
    let get = |name: &str| {
        children
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.content.as_ref().ok())
    };
    let prefix = match kind {
        RecordKind::Penalty => "CF_",
        RecordKind::License => "XK_",
        RecordKind::Inspection => "",
    };
    for (t, n) in [("XDR_ZJLX", "XDR_ZJHM"), ("FR_ZJLX", "FR_ZJHM")] {
        let (t, n) = (format!("{prefix}{t}"), format!("{prefix}{n}"));
        let found = match (get(&t), get(&n)) {
            (Some(_), None) => problem(E_REQUIRED, format!("{n}: required with {t}")),
            (None, Some(_)) => problem(E_REQUIRED, format!("{t}: required with {n}")),
            (Some(ty), Some(v)) if ty == IdType::ResidentId.label() => ResidentId::parse(v)
                .err()
                .and_then(|e| problem(E_ID, format!("{n}: {e}"))),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    match kind {
        // 罚款 needs its amount.
        RecordKind::Penalty => {
            let fine = PenaltyKind::Fine.label();
            let fined = get("CF_CFLB").is_some_and(|k| k.split(';').any(|k| k == fine));
            if fined && get("CF_NR_FK").is_none() {
                return problem(E_REQUIRED, "CF_NR_FK: required when CF_CFLB names 罚款");
            }
            None
        }
        // A licence ends no earlier than it begins (ISO dates compare as text).
        RecordKind::License => match (get("XK_YXQZ"), get("XK_YXQZI")) {
            (Some(from), Some(to)) if to < from => problem(
                E_FORMAT,
                format!("XK_YXQZI: {} is before XK_YXQZ {}", quote(to), quote(from)),
            ),
            _ => None,
        },
        RecordKind::Inspection => None,
    }
}

/// The document types the standard lists for 证件类型.
const STANDARD_ID_TYPES: [IdType; 5] = [
    IdType::ResidentId,
    IdType::Passport,
    IdType::HkMacaoPermit,
    IdType::TaiwanPermit,
    IdType::ForeignPermanentResident,
];

fn check_value(slot: &Slot, v: &str, verified: &mut HashSet<String>) -> Option<RecordProblem> {
    let name = slot.name;
    let text = || -> Option<RecordProblem> {
        if v.is_empty() {
            return problem(E_FORMAT, format!("{name}: empty (1 to 4000 characters)"));
        }
        if v.len() > 4000 {
            let n = v.chars().count();
            if n > 4000 {
                return problem(E_FORMAT, format!("{name}: {n} characters (at most 4000)"));
            }
        }
        None
    };
    match slot.ty {
        Ty::Text => text(),
        Ty::Uscc if verified.contains(v) => None,
        Ty::Uscc => match uscc(v) {
            Ok(()) => {
                // Bounded: a package of distinct codes verifies the rest one by one.
                if verified.len() < 4096 {
                    verified.insert(v.to_string());
                }
                None
            }
            Err((code, why)) => problem(code, format!("{name}: {why}")),
        },
        Ty::PartyCategory => {
            if matches!(v, "法人及非法人组织" | "自然人" | "个体工商户") {
                None
            } else {
                problem(
                    E_CODE,
                    format!(
                        "{name}: {} is not 法人及非法人组织, 自然人 or 个体工商户",
                        quote(v)
                    ),
                )
            }
        }
        Ty::IdTypeLabel => {
            if STANDARD_ID_TYPES.iter().any(|t| t.label() == v) {
                None
            } else {
                problem(
                    E_CODE,
                    format!(
                        "{name}: {} is not 身份证, 护照, 港澳居民来往内地通行证, 台湾居民来往大陆通行证 or 外国人永久居留身份证",
                        quote(v)
                    ),
                )
            }
        }
        Ty::LicenseState => {
            if matches!(v, "1" | "2") {
                None
            } else {
                problem(
                    E_CODE,
                    format!("{name}: {} is not 1 (有效) or 2 (无效)", quote(v)),
                )
            }
        }
        Ty::PenaltyKinds => text().or_else(|| {
            v.split(';')
                .find(|k| !PenaltyKind::ALL.iter().any(|p| p.label() == *k))
                .and_then(|k| {
                    problem(
                        E_CODE,
                        format!("{name}: {} is not a penalty kind", quote(k)),
                    )
                })
        }),
        Ty::LicenseCategory => text().or_else(|| {
            if LicenseCategory::ALL.iter().any(|c| c.label() == v) {
                None
            } else {
                problem(
                    E_CODE,
                    format!("{name}: {} is not a licence category", quote(v)),
                )
            }
        }),
        Ty::Wanyuan => wanyuan(v)
            .err()
            .and_then(|why| problem(E_FORMAT, format!("{name}: {} {why}", quote(v)))),
        Ty::Date => date(v)
            .err()
            .and_then(|why| problem(E_FORMAT, format!("{name}: {} {why}", quote(v)))),
        Ty::InspectionCode => {
            let ok = matches!(v.as_bytes(), [b'0', b'1'..=b'9'] | [b'1', b'0'..=b'4']);
            if ok {
                None
            } else {
                problem(
                    E_CODE,
                    format!(
                        "{name}: {} is not an inspection result code 01-14",
                        quote(v)
                    ),
                )
            }
        }
    }
}

/// `[A-Za-z0-9._-]{1,64}`.
fn token64(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A USCC: the XSD pattern (else `E-FORMAT`), then GB 32100 (else `E-USCC`).
fn uscc(v: &str) -> Result<(), (&'static str, String)> {
    let pattern = v.len() == 18
        && v.bytes().all(|b| {
            b.is_ascii_digit()
                || (b.is_ascii_uppercase() && !matches!(b, b'I' | b'O' | b'S' | b'V' | b'Z'))
        });
    if !pattern {
        return Err((
            E_FORMAT,
            format!(
                "{} is not 18 of 0-9 and A-Y without I, O, S, V, Z",
                quote(v)
            ),
        ));
    }
    Uscc::parse(v)
        .map(|_| ())
        .map_err(|e| (E_USCC, e.to_string()))
}

/// `xs:positiveInteger`'s lexical form after whitespace collapse (`+` and leading zeros
/// allowed); `None` when not an unsigned integer that fits in u64. Zero is returned as 0 for the
/// caller to refuse.
fn positive_integer(v: &str) -> Option<u64> {
    let t = trim_xml(v);
    let digits = t.strip_prefix('+').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `Wanyuan`: an `xs:decimal` ≥ 0 with at most 6 fraction digits (trailing zeros do not count:
/// the facet constrains the value, not the spelling).
fn wanyuan(v: &str) -> Result<(), String> {
    let t = trim_xml(v);
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err("is not a decimal number".into());
    }
    let significant = frac.trim_end_matches('0').len();
    if significant > 6 {
        return Err(format!("has {significant} fraction digits (at most 6)"));
    }
    if negative && (int.bytes().any(|b| b != b'0') || frac.bytes().any(|b| b != b'0')) {
        return Err("is negative".into());
    }
    Ok(())
}

/// Splits `[-]YYYY-MM-DD` off the front of an `xs:date` or `xs:dateTime`: the year has four
/// or more digits (no leading zero beyond four, not 0000), the day exists in that month.
fn ymd(s: &str) -> Result<((i64, u32, u32), &str), &'static str> {
    const WHY: &str = "is not a date YYYY-MM-DD";
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let year_len = body.bytes().take_while(u8::is_ascii_digit).count();
    if year_len < 4 || (year_len > 4 && body.starts_with('0')) {
        return Err(WHY);
    }
    let year: i64 = body[..year_len].parse().map_err(|_| WHY)?;
    if year == 0 {
        return Err("has year 0000, which does not exist");
    }
    let rest = &body[year_len..];
    let b = rest.as_bytes();
    if b.len() < 6
        || b[0] != b'-'
        || b[3] != b'-'
        || !b[1..3].iter().chain(&b[4..6]).all(u8::is_ascii_digit)
    {
        return Err(WHY);
    }
    let month = u32::from(b[1] - b'0') * 10 + u32::from(b[2] - b'0');
    let day = u32::from(b[4] - b'0') * 10 + u32::from(b[5] - b'0');
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err("has no such month"),
    };
    if day == 0 || day > days {
        return Err("has no such day in its month");
    }
    Ok(((if neg { -year } else { year }, month, day), &rest[6..]))
}

/// An `xs:date`/`xs:dateTime` time zone: `Z` or `±hh:mm` up to 14:00; its offset in minutes.
fn zone(s: &str) -> Result<Option<i32>, &'static str> {
    const WHY: &str = "has a bad time zone (Z or ±hh:mm)";
    match s.as_bytes() {
        [] => Ok(None),
        [b'Z'] => Ok(Some(0)),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
            if [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()) =>
        {
            let h = i32::from(h1 - b'0') * 10 + i32::from(h2 - b'0');
            let m = i32::from(m1 - b'0') * 10 + i32::from(m2 - b'0');
            if m > 59 || h > 14 || (h == 14 && m > 0) {
                return Err(WHY);
            }
            Ok(Some(if *sign == b'-' {
                -(h * 60 + m)
            } else {
                h * 60 + m
            }))
        }
        _ => Err(WHY),
    }
}

/// Why a decision is withdrawn, as a `Retraction`'s `reason` says (the 双公示 rules: a revoked
/// or changed decision is withdrawn with its reason; a restricted or a minor's one never stays
/// public).
pub const RETRACTION_REASONS: [&str; 3] = ["revoked", "restricted", "minor"];

/// Checks a `Retraction`'s `reason` and `date` (both required) and keeps them in `fields`.
fn retraction_why(o: &Open<'_>, fields: &mut BTreeMap<String, String>) -> Option<RecordProblem> {
    let Some(reason) = o.attr("reason") else {
        return problem(E_REQUIRED, "reason: the Retraction has no reason attribute");
    };
    if !RETRACTION_REASONS.contains(&reason) {
        return problem(
            E_CODE,
            format!(
                "reason: {} is not one of {}",
                quote(reason),
                RETRACTION_REASONS.join(", ")
            ),
        );
    }
    let Some(when) = o.attr("date") else {
        return problem(E_REQUIRED, "date: the Retraction has no date attribute");
    };
    if let Err(why) = date(when) {
        return problem(E_FORMAT, format!("date: {} {why}", quote(when)));
    }
    fields.insert("reason".into(), reason.to_string());
    fields.insert("date".into(), when.to_string());
    None
}

/// `xs:date`, without surrounding whitespace (libxml2 refuses it, so we do).
fn date(v: &str) -> Result<(), &'static str> {
    let (_, rest) = ymd(v)?;
    zone(rest).map(|_| ())
}

/// `xs:dateTime` with a required time zone, as an instant.
fn date_time(v: &str) -> Result<DateTime<Utc>, &'static str> {
    const WHY: &str = "is not a date-time YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)";
    let ((year, month, day), rest) = ymd(v)?;
    let b = rest.as_bytes();
    if b.len() < 9
        || b[0] != b'T'
        || b[3] != b':'
        || b[6] != b':'
        || ![b[1], b[2], b[4], b[5], b[7], b[8]]
            .iter()
            .all(u8::is_ascii_digit)
    {
        return Err(WHY);
    }
    let two = |i: usize| u32::from(b[i] - b'0') * 10 + u32::from(b[i + 1] - b'0');
    let (h, mi, s) = (two(1), two(4), two(7));
    let mut rest = &rest[9..];
    let mut nanos = 0u32;
    if let Some(f) = rest.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(WHY);
        }
        for (i, d) in f.bytes().take(9).enumerate() {
            if i < n {
                nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
            }
        }
        rest = &f[n..];
    }
    // 24:00:00 is the first instant of the next day.
    let midnight_next = h == 24 && mi == 0 && s == 0 && nanos == 0;
    if (h > 23 && !midnight_next) || mi > 59 || s > 59 {
        return Err("has no such time of day");
    }
    let offset = zone(rest)?.ok_or("has no time zone (add Z or an offset such as +08:00)")?;
    let date = i32::try_from(year)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, month, day))
        .ok_or("is outside the supported years")?;
    let time =
        NaiveTime::from_hms_nano_opt(if midnight_next { 0 } else { h }, mi, s, nanos).ok_or(WHY)?;
    let mut local = date.and_time(time);
    if midnight_next {
        local = local
            .checked_add_signed(chrono::Duration::days(1))
            .ok_or("is outside the supported years")?;
    }
    let utc = local
        .checked_sub_signed(chrono::Duration::minutes(i64::from(offset)))
        .ok_or("is outside the supported years")?;
    Ok(Utc.from_utc_datetime(&utc))
}
