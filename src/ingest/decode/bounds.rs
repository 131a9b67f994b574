//! What the CSV and JSON parsers may hold in memory. The csv crate buffers a whole record, and
//! serde_json a whole string or number, before the decoder sees it, so one 200 MB field would cost
//! 200 MB and more. Like [`super::xml_guard`] for XML, the guards here sit between the transcoded
//! text and the parser and keep what the parser buffers bounded, whatever the input:
//!
//! - [`CsvGuard`]: a record longer than the record limit reaches the parser as its first bytes
//!   (up to the limit and on to the end of the character there, an open quote closed) followed by
//!   its own line break; the rest is skipped, counted and hashed, and noted as a [`CsvCut`].
//! - [`JsonGuard`]: a string (value or key) longer than the field limit reaches serde_json as a
//!   prefix that is still a valid string (never inside an escape, a surrogate pair or a character)
//!   and its closing quote; the rest is skipped, counted and hashed, and noted as a [`JsonCut`]
//!   with its place in the document. A number longer than the field limit, and nesting deeper
//!   than [`JSON_MAX_DEPTH`], stop the read with a [`JsonGuardError`].
//!
//! [`Tally`] keeps the first bytes, the length and the SHA-256 of something read piece by piece.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::Excerpt;

/// Smallest limit the guards work with: a cut keeps a few characters however the limit is set.
const MIN_LIMIT: usize = 16;

/// The first `keep` bytes, the length and the SHA-256 of bytes added piece by piece. Hashing
/// starts only once there is more than `keep`, so short things cost a copy and nothing else.
pub(super) struct Tally {
    head: Vec<u8>,
    keep: usize,
    bytes: u64,
    hasher: Option<Sha256>,
}

impl Tally {
    /// An empty tally keeping the first `keep` bytes.
    pub(super) fn new(keep: usize) -> Self {
        Tally {
            head: Vec::new(),
            keep,
            bytes: 0,
            hasher: None,
        }
    }

    /// Adds the next piece.
    pub(super) fn add(&mut self, piece: &[u8]) {
        self.bytes += piece.len() as u64;
        if let Some(h) = &mut self.hasher {
            h.update(piece);
        } else if self.head.len() + piece.len() <= self.keep {
            self.head.extend_from_slice(piece);
        } else {
            let mut h = Sha256::new();
            h.update(&self.head);
            h.update(piece);
            let room = self.keep - self.head.len();
            self.head.extend_from_slice(&piece[..room]);
            self.hasher = Some(h);
        }
    }

    /// Whether everything added is in the head.
    pub(super) fn whole(&self) -> bool {
        self.hasher.is_none()
    }

    /// Forgets everything added.
    fn clear(&mut self) {
        self.head.clear();
        self.bytes = 0;
        self.hasher = None;
    }

    /// The head (cut back to a character boundary: the bytes added are UTF-8 text), the length
    /// and the digest.
    pub(super) fn excerpt(self) -> Excerpt {
        let sha256 = match self.hasher {
            Some(h) => h.finalize().into(),
            None => Sha256::digest(&self.head).into(),
        };
        let mut head = self.head;
        if let Err(e) = std::str::from_utf8(&head) {
            head.truncate(e.valid_up_to());
        }
        Excerpt {
            head: String::from_utf8(head).unwrap_or_default(),
            bytes: self.bytes,
            sha256,
        }
    }
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

// ---------------------------------------------------------------------------------------------
// CSV

const CR: u8 = b'\r';
const LF: u8 = b'\n';
const QUOTE: u8 = b'"';

/// A record the guard cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CsvCut {
    /// Output offset just after the bytes the parser got (before any closing quote the guard
    /// added): inside the span the parser reports for the record.
    pub(super) at: u64,
    /// The record's first bytes, full length (quoted line breaks included, its own line break
    /// not) and SHA-256.
    pub(super) excerpt: Excerpt,
}

/// The first quote in `hay`, or with `breaks` the first quote or line break. Fields are mostly
/// short, and `memchr` costs more than a plain loop over a few bytes: the first ones are looked at
/// one by one, the rest of a long field or line with `memchr`.
#[inline(always)]
fn find(hay: &[u8], breaks: bool) -> Option<usize> {
    const NEAR: usize = 32;
    let near = hay.len().min(NEAR);
    let hit = |b: u8| b == QUOTE || (breaks && (b == CR || b == LF));
    if let Some(k) = hay[..near].iter().position(|&b| hit(b)) {
        return Some(k);
    }
    let far = &hay[near..];
    let k = if breaks {
        memchr::memchr3(QUOTE, CR, LF, far)
    } else {
        memchr::memchr(QUOTE, far)
    };
    k.map(|k| k + near)
}

/// Where the guard stands in the CSV text, as csv_core would with the same delimiter (double
/// quotes, `""` for a quote inside quotes, CR, LF or CR LF ending a record outside quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Csv {
    /// Between records: line breaks here are blank lines the parser skips.
    Between,
    /// In a record, outside quotes.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: the next byte says whether it closed the field
    /// or was the first of `""`.
    QuoteInQuoted,
}

/// A reader over UTF-8 CSV text that bounds every record the parser sees (see the module docs).
///
/// Bytes pass from the inner reader's buffer straight into the caller's, scanned once for quotes
/// and line breaks with `memchr`; a record is copied aside only where it spans two buffers (its
/// first bytes, for the excerpt) and hashed only when it spans them or is cut. The delimiter must
/// be neither a quote nor a line break.
pub(super) struct CsvGuard<R> {
    inner: R,
    core: CsvCore,
}

struct CsvCore {
    delimiter: u8,
    limit: u64,
    state: Csv,
    /// Where the open record starts in the buffer being scanned (0 when it began before it).
    rec_start: usize,
    /// Bytes of the open record in earlier buffers.
    rec_seen: u64,
    /// The open record's bytes in earlier buffers (and, once cut, all of it).
    tally: Tally,
    keep: usize,
    /// Scanned bytes at the front of the inner buffer that the parser may have.
    ready: usize,
    /// A record was cut where `ready` ends: the rest of its character is to be handed out and the
    /// rest of it skipped; whether a quote is open.
    cutting: Option<bool>,
    /// Bytes the guard adds (a closing quote), not yet handed out.
    tail: &'static [u8],
    /// The last byte taken from the inner reader: what precedes its next buffer.
    last: u8,
    /// Bytes handed out so far.
    out: u64,
    cuts: VecDeque<CsvCut>,
    /// Line breaks handed out (or skipped) that the parser's current position has not passed.
    breaks: VecDeque<Break>,
    /// Line ends before the first of `breaks`.
    lines: u64,
    /// The last break passed was a CR at this output offset (its LF, next, ends no line).
    cr_at: Option<u64>,
}

/// A line break the guard handed out or skipped, at an output offset.
#[derive(Debug, Clone, Copy)]
enum Break {
    /// A carriage return (it ends a line, alone or before a line feed).
    Cr(u64),
    /// A line feed (it ends a line unless a carriage return is just before it).
    Lf(u64),
    /// Line ends inside a cut record's skipped part, counted where the cut is.
    Skipped(u64, u64),
}

impl<R: BufRead> CsvGuard<R> {
    /// Guards `inner`, CSV text whose fields are split by `delimiter`: records longer than
    /// `limit` bytes are cut, keeping the first `keep` bytes of each for its excerpt.
    pub(super) fn new(inner: R, delimiter: u8, limit: u64, keep: usize) -> Self {
        CsvGuard {
            inner,
            core: CsvCore {
                delimiter,
                limit: limit.max(MIN_LIMIT as u64),
                state: Csv::Between,
                rec_start: 0,
                rec_seen: 0,
                tally: Tally::new(keep),
                keep,
                ready: 0,
                cutting: None,
                tail: b"",
                last: LF,
                out: 0,
                cuts: VecDeque::new(),
                breaks: VecDeque::new(),
                lines: 0,
                cr_at: None,
            },
        }
    }
}

impl<R> CsvGuard<R> {
    /// The line (1-based, counting every line end the file holds, also those inside quoted
    /// fields and cut records) of the first byte at or after output offset `start` that is not a
    /// line break: where a record the parser began reading at `start` stands in the file,
    /// whatever mix of CR LF, LF and CR ends its lines. Forgets the breaks before it.
    pub(super) fn line_of(&mut self, start: u64) -> u64 {
        let core = &mut self.core;
        let mut at = start;
        while let Some(&b) = core.breaks.front() {
            let (offset, blank) = match b {
                Break::Cr(o) | Break::Lf(o) => (o, o == at),
                Break::Skipped(o, _) => (o, false),
            };
            if offset >= at && !blank {
                break;
            }
            core.breaks.pop_front();
            match b {
                Break::Cr(o) => {
                    core.lines += 1;
                    core.cr_at = Some(o);
                }
                Break::Lf(o) => {
                    if core.cr_at.is_none_or(|c| c + 1 != o) {
                        core.lines += 1;
                    }
                }
                Break::Skipped(_, n) => core.lines += n,
            }
            if blank {
                // A blank line before the record: the record starts after it.
                at += 1;
            }
        }
        core.lines + 1
    }

    /// The cut of the record the parser read between output offsets `from` and `to` (its start,
    /// blank lines before it allowed, and its end), forgetting any cut before it.
    pub(super) fn take_cut(&mut self, from: u64, to: u64) -> Option<CsvCut> {
        let cuts = &mut self.core.cuts;
        while cuts.front().is_some_and(|c| c.at < from) {
            cuts.pop_front();
        }
        if cuts.front().is_some_and(|c| c.at <= to) {
            cuts.pop_front()
        } else {
            None
        }
    }
}

impl CsvCore {
    /// Follows the open record's quoting over `buf[i..to]`: the index of the line break that
    /// ends it, or `None` when `to` is reached inside it.
    fn run(&mut self, buf: &[u8], mut i: usize, to: usize) -> Option<usize> {
        while i < to {
            match self.state {
                Csv::Unquoted => match find(&buf[i..to], true) {
                    None => i = to,
                    Some(k) => {
                        let j = i + k;
                        if buf[j] != QUOTE {
                            return Some(j);
                        }
                        // A quote opens a quoted field only where a field starts; elsewhere
                        // it is an ordinary character.
                        let prev = if j > 0 { buf[j - 1] } else { self.last };
                        if prev == self.delimiter {
                            self.state = Csv::Quoted;
                        }
                        i = j + 1;
                    }
                },
                Csv::Quoted => match find(&buf[i..to], false) {
                    None => i = to,
                    Some(k) => {
                        // What follows the quote says what it was; the common cases (`""`, and
                        // a quote closing a field whose next field is quoted too) are taken
                        // here without going round the states.
                        let j = i + k + 1;
                        match buf.get(j..to.min(j + 2)) {
                            Some([QUOTE, ..]) => i = j + 1,
                            Some([d, QUOTE]) if *d == self.delimiter => i = j + 2,
                            _ => {
                                self.state = Csv::QuoteInQuoted;
                                i = j;
                            }
                        }
                    }
                },
                Csv::QuoteInQuoted => {
                    let b = buf[i];
                    if b == CR || b == LF {
                        return Some(i);
                    }
                    self.state = if b == QUOTE {
                        Csv::Quoted
                    } else {
                        Csv::Unquoted
                    };
                    i += 1;
                }
                Csv::Between => return Some(i),
            }
        }
        None
    }

    /// Scans a fresh buffer of the inner reader: how many of its bytes the parser may have.
    /// Sets `cutting` when the open record breaks the limit there.
    fn scan(&mut self, buf: &[u8]) -> usize {
        let len = buf.len();
        let mut i = 0;
        loop {
            if self.state == Csv::Between {
                match buf[i..].iter().position(|&b| b != CR && b != LF) {
                    None => return len,
                    Some(k) => i += k,
                }
                self.rec_start = i;
                self.rec_seen = 0;
                self.tally.clear();
                self.state = if buf[i] == QUOTE {
                    Csv::Quoted
                } else {
                    Csv::Unquoted
                };
                i += 1;
            }
            // The record's byte at offset `limit` must be the line break that ends it.
            let room = usize::try_from(self.limit - self.rec_seen).unwrap_or(usize::MAX);
            let limit_at = self.rec_start.saturating_add(room);
            let to = limit_at.min(len);
            if let Some(j) = self.run(buf, i, to) {
                self.state = Csv::Between;
                i = j;
                continue;
            }
            if to == len {
                // The buffer ends inside the record.
                let seg = &buf[self.rec_start..];
                self.rec_seen += seg.len() as u64;
                self.tally.add(seg);
                self.rec_start = 0;
                return len;
            }
            let b = buf[limit_at];
            if (b == CR || b == LF) && self.state != Csv::Quoted {
                self.state = Csv::Between;
                i = limit_at;
                continue;
            }
            // On to the end of the character there (it may go on in the next buffer, see `read`).
            let cut = limit_at
                + buf[limit_at..]
                    .iter()
                    .take_while(|&&b| is_continuation(b))
                    .count();
            self.tally.add(&buf[self.rec_start..cut]);
            self.cutting = Some(self.state == Csv::Quoted);
            return cut;
        }
    }

    /// Skips the rest of a cut record, up to (not including) the line break that ends it, and
    /// notes the cut.
    fn skip(&mut self, inner: &mut impl BufRead, quoted: bool) -> io::Result<()> {
        let mut ends = 0;
        loop {
            let buf = inner.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let end = self.run(buf, 0, buf.len());
            let n = end.unwrap_or(buf.len());
            self.tally.add(&buf[..n]);
            for i in memchr::memchr2_iter(CR, LF, &buf[..n]) {
                let after_cr = if i > 0 { buf[i - 1] } else { self.last } == CR;
                if buf[i] == CR || !after_cr {
                    ends += 1;
                }
            }
            if n > 0 {
                self.last = buf[n - 1];
            }
            inner.consume(n);
            if end.is_some() {
                break;
            }
        }
        let tally = std::mem::replace(&mut self.tally, Tally::new(self.keep));
        self.cuts.push_back(CsvCut {
            at: self.out,
            excerpt: tally.excerpt(),
        });
        if ends > 0 {
            self.breaks.push_back(Break::Skipped(self.out, ends));
        }
        // The parser saw the kept bytes (closed below when a quote is open) and goes on with the
        // line break that ends the record in the file.
        self.state = Csv::Between;
        self.tail = if quoted { b"\"" } else { b"" };
        Ok(())
    }
}

impl<R: BufRead> Read for CsvGuard<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let core = &mut self.core;
        loop {
            if !core.tail.is_empty() {
                let n = core.tail.len().min(out.len());
                out[..n].copy_from_slice(&core.tail[..n]);
                core.tail = &core.tail[n..];
                core.out += n as u64;
                return Ok(n);
            }
            if core.ready > 0 {
                let buf = self.inner.fill_buf()?;
                let n = core.ready.min(out.len()).min(buf.len());
                if n == 0 {
                    // The inner reader ended early; nothing more is ready.
                    core.ready = 0;
                    continue;
                }
                out[..n].copy_from_slice(&buf[..n]);
                core.last = buf[n - 1];
                self.inner.consume(n);
                core.ready -= n;
                for i in memchr::memchr2_iter(CR, LF, &out[..n]) {
                    let at = core.out + i as u64;
                    core.breaks.push_back(if out[i] == CR {
                        Break::Cr(at)
                    } else {
                        Break::Lf(at)
                    });
                }
                core.out += n as u64;
                return Ok(n);
            }
            if let Some(quoted) = core.cutting {
                // The character at the cut may go on at the start of the next buffer.
                let buf = self.inner.fill_buf()?;
                let rest = buf.iter().take_while(|&&b| is_continuation(b)).count();
                if rest > 0 {
                    core.tally.add(&buf[..rest]);
                    core.ready = rest;
                    continue;
                }
                core.cutting = None;
                core.skip(&mut self.inner, quoted)?;
                continue;
            }
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Ok(0);
            }
            core.ready = core.scan(buf);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

/// Deepest nesting of arrays and objects the guard lets through. serde_json stops at the same
/// depth for the values it deserializes (with its own error and position), but follows values
/// it skips to any depth, keeping one byte per level: the guard holds everything to this depth.
pub(super) const JSON_MAX_DEPTH: usize = 128;

/// A string the guard cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JsonCut {
    /// Where the string is: for each enclosing array or object, from the outermost, the index of
    /// the element or member holding it (so `[i, ...]` in a top-level array's element `i`).
    pub(super) path: Vec<u64>,
    /// The string is a member's name, not its value.
    pub(super) key: bool,
    /// Full length of its content in bytes, as it stands in the file (escapes not resolved).
    pub(super) bytes: u64,
    /// SHA-256 of that content.
    pub(super) sha256: [u8; 32],
}

impl JsonCut {
    /// Orders places in the document: a member's name, then its value, then what is inside it.
    pub(super) fn place(&self) -> (&[u64], bool) {
        (&self.path, !self.key)
    }
}

/// The cuts a guard noted, shared with the code that reads serde_json's output. A cut is noted
/// before serde_json can see the end of its string.
pub(super) type JsonCuts = Rc<RefCell<VecDeque<JsonCut>>>;

/// Why the guard stopped the read; carried inside an `io::Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum JsonGuardError {
    /// A number longer than the field limit.
    NumberTooLong {
        /// Transcoded offset of its first byte.
        at: u64,
    },
    /// An array or object opened deeper than [`JSON_MAX_DEPTH`].
    TooDeep {
        /// Transcoded offset of its `[` or `{`.
        at: u64,
    },
}

impl std::fmt::Display for JsonGuardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonGuardError::NumberTooLong { at } => {
                write!(f, "a number longer than the field limit at offset {at}")
            }
            JsonGuardError::TooDeep { at } => write!(
                f,
                "arrays and objects nested deeper than {JSON_MAX_DEPTH} at offset {at}"
            ),
        }
    }
}

impl std::error::Error for JsonGuardError {}

/// Finds a [`JsonGuardError`] inside an I/O error returned through a [`JsonGuard`].
pub(super) fn json_guard_error(err: &io::Error) -> Option<&JsonGuardError> {
    err.get_ref()?.downcast_ref::<JsonGuardError>()
}

/// An open array or object.
#[derive(Clone, Copy)]
struct Frame {
    object: bool,
    /// Index of the current element or member.
    ord: u64,
    /// In an object: the next string is a member name.
    key_next: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Js {
    /// Outside strings: structure, numbers, literals, whitespace.
    Outside,
    /// In a string's content.
    Str,
    /// Just after a backslash.
    Esc,
    /// In the hex digits of `\u`: how many remain.
    Hex(u8),
    /// Skipping the rest of a cut string.
    Skip,
    /// Skipping, just after a backslash.
    SkipEsc,
    /// Skipping, in the hex digits of `\u`.
    SkipHex(u8),
    /// The skipped part holds something serde_json refuses: it was handed on so that serde_json
    /// reports it, and the rest passes unguarded (serde_json stops there).
    Open,
}

/// A reader over UTF-8 JSON text that bounds every string and number serde_json sees (see the
/// module docs).
pub(super) struct JsonGuard<R> {
    inner: R,
    core: JsonCore,
}

struct JsonCore {
    state: Js,
    /// Output not yet handed out, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    /// Transcoded bytes taken from the inner reader before the chunk being processed.
    in_base: u64,
    field: usize,
    stack: Vec<Frame>,
    /// Content bytes of the current string so far.
    str_len: u64,
    str_key: bool,
    /// The current string's content so far, while it may still be cut (kept only when cuts are
    /// noted).
    held: Vec<u8>,
    /// The string reached the field limit: it is cut at the next safe point.
    over: bool,
    /// Past the limit, one more escape was let through to complete a surrogate pair.
    extended: bool,
    /// Value of the `\u` escape being read.
    hex: u16,
    /// The last escape was a leading surrogate.
    high: bool,
    /// The escape being skipped, handed on if it is invalid.
    esc: Vec<u8>,
    /// Length of the number being read, and its transcoded offset.
    num_len: usize,
    num_at: u64,
    tally: Tally,
    cuts: Option<JsonCuts>,
    failed: Option<JsonGuardError>,
}

impl<R: BufRead> JsonGuard<R> {
    /// Guards `inner`: strings longer than `field` bytes are cut (noted in `cuts` when given),
    /// longer numbers and deeper nesting stop the read.
    pub(super) fn new(inner: R, field: usize, cuts: Option<JsonCuts>) -> Self {
        JsonGuard {
            inner,
            core: JsonCore {
                state: Js::Outside,
                out: Vec::with_capacity(64 * 1024),
                out_pos: 0,
                in_base: 0,
                field: field.max(MIN_LIMIT),
                stack: Vec::new(),
                str_len: 0,
                str_key: false,
                held: Vec::new(),
                over: false,
                extended: false,
                hex: 0,
                high: false,
                esc: Vec::with_capacity(6),
                num_len: 0,
                num_at: 0,
                tally: Tally::new(0),
                cuts,
                failed: None,
            },
        }
    }
}

impl JsonCore {
    fn keeping(&self) -> bool {
        self.cuts.is_some()
    }

    /// Processes one chunk of input, appending what serde_json may see to `out`.
    fn process(&mut self, chunk: &[u8]) {
        let mut i = 0;
        while i < chunk.len() && self.failed.is_none() {
            match self.state {
                Js::Outside => i = self.outside(chunk, i),
                Js::Str => i = self.string(chunk, i),
                Js::Esc => {
                    let b = chunk[i];
                    self.content(&[b]);
                    i += 1;
                    if b == b'u' {
                        self.hex = 0;
                        self.state = Js::Hex(4);
                    } else {
                        // serde_json reports an invalid escape character itself.
                        self.high = false;
                        self.state = Js::Str;
                    }
                }
                Js::Hex(n) => {
                    let b = chunk[i];
                    self.content(&[b]);
                    i += 1;
                    // A bad digit is serde_json's to report; it counts as 0 here.
                    let digit = char::from(b).to_digit(16).unwrap_or(0) as u16;
                    self.hex = self.hex << 4 | digit;
                    if n > 1 {
                        self.state = Js::Hex(n - 1);
                    } else {
                        self.high = (0xD800..=0xDBFF).contains(&self.hex);
                        self.state = Js::Str;
                    }
                }
                Js::Skip => i = self.skip(chunk, i),
                Js::SkipEsc => {
                    let b = chunk[i];
                    i += 1;
                    self.skipped(&[b]);
                    self.esc.push(b);
                    match b {
                        b'u' => self.state = Js::SkipHex(4),
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                            self.state = Js::Skip;
                        }
                        _ => self.open(),
                    }
                }
                Js::SkipHex(n) => {
                    let b = chunk[i];
                    i += 1;
                    self.skipped(&[b]);
                    self.esc.push(b);
                    if !b.is_ascii_hexdigit() {
                        self.open();
                    } else if n > 1 {
                        self.state = Js::SkipHex(n - 1);
                    } else {
                        self.state = Js::Skip;
                    }
                }
                Js::Open => {
                    self.out.extend_from_slice(&chunk[i..]);
                    i = chunk.len();
                }
            }
        }
    }

    /// Structure, numbers and literals, up to the next string.
    fn outside(&mut self, chunk: &[u8], from: usize) -> usize {
        let mut i = from;
        while i < chunk.len() {
            let b = chunk[i];
            match b {
                b'"' => break,
                b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' => {
                    if self.num_len == 0 {
                        self.num_at = self.in_base + i as u64;
                    }
                    self.num_len += 1;
                    if self.num_len > self.field {
                        self.failed = Some(JsonGuardError::NumberTooLong { at: self.num_at });
                        break;
                    }
                    i += 1;
                    continue;
                }
                b'[' | b'{' => {
                    if self.stack.len() >= JSON_MAX_DEPTH {
                        self.failed = Some(JsonGuardError::TooDeep {
                            at: self.in_base + i as u64,
                        });
                        break;
                    }
                    self.stack.push(Frame {
                        object: b == b'{',
                        ord: 0,
                        key_next: true,
                    });
                }
                b']' | b'}' => {
                    self.stack.pop();
                }
                b',' => {
                    if let Some(f) = self.stack.last_mut() {
                        f.ord += 1;
                        f.key_next = true;
                    }
                }
                b':' => {
                    if let Some(f) = self.stack.last_mut() {
                        f.key_next = false;
                    }
                }
                _ => {}
            }
            self.num_len = 0;
            i += 1;
        }
        self.out.extend_from_slice(&chunk[from..i]);
        if i < chunk.len() && self.failed.is_none() {
            // A string opens.
            self.out.push(b'"');
            self.num_len = 0;
            self.str_len = 0;
            self.str_key = self.stack.last().is_some_and(|f| f.object && f.key_next);
            self.held.clear();
            self.over = false;
            self.extended = false;
            self.high = false;
            self.state = Js::Str;
            i += 1;
        }
        i
    }

    /// Content that serde_json sees.
    fn content(&mut self, piece: &[u8]) {
        self.out.extend_from_slice(piece);
        self.str_len += piece.len() as u64;
        if self.keeping() {
            self.held.extend_from_slice(piece);
        }
    }

    /// String content up to the closing quote, a backslash, or the point where it is cut.
    fn string(&mut self, chunk: &[u8], from: usize) -> usize {
        let field = self.field as u64;
        if !self.over && self.str_len >= field {
            self.over = true;
        }
        if !self.over {
            let rest = &chunk[from..];
            let room = usize::try_from(field - self.str_len).unwrap_or(usize::MAX);
            let window = &rest[..rest.len().min(room)];
            // Plain content after an escape: that escape is not waiting for its pair.
            self.high &= window.first().is_some_and(|&b| b == b'"' || b == b'\\');
            return match memchr::memchr2(b'"', b'\\', window) {
                Some(k) => {
                    self.content(&window[..k]);
                    if window[k] == b'"' {
                        self.out.push(b'"');
                        self.state = Js::Outside;
                    } else {
                        self.content(b"\\");
                        self.state = Js::Esc;
                    }
                    from + k + 1
                }
                None => {
                    self.content(window);
                    from + window.len()
                }
            };
        }
        // Past the limit: let through what completes the character or surrogate pair under
        // way, then cut.
        let b = chunk[from];
        if b == b'"' {
            // It ended within that slack: serde_json gets it whole.
            self.out.push(b'"');
            self.state = Js::Outside;
        } else if b == b'\\' && self.high && !self.extended {
            self.extended = true;
            self.content(b"\\");
            self.state = Js::Esc;
        } else if is_continuation(b) {
            self.content(&[b]);
        } else {
            self.tally = Tally::new(0);
            let held = std::mem::take(&mut self.held);
            self.tally.add(&held);
            self.held = held;
            self.state = Js::Skip;
            return from;
        }
        from + 1
    }

    /// Bytes of a cut string that serde_json does not see.
    fn skipped(&mut self, piece: &[u8]) {
        if self.keeping() {
            self.tally.add(piece);
        }
    }

    /// The rest of a cut string.
    fn skip(&mut self, chunk: &[u8], from: usize) -> usize {
        let rest = &chunk[from..];
        let hit = memchr::memchr2(b'"', b'\\', rest);
        let piece = &rest[..hit.unwrap_or(rest.len())];
        if let Some(bad) = piece.iter().position(|&b| b < 0x20) {
            // A control character: serde_json refuses it where it stands.
            self.skipped(&piece[..bad]);
            self.esc.clear();
            self.open();
            return from + bad;
        }
        self.skipped(piece);
        let Some(k) = hit else {
            return chunk.len();
        };
        if rest[k] == b'\\' {
            self.skipped(b"\\");
            self.esc.clear();
            self.esc.push(b'\\');
            self.state = Js::SkipEsc;
        } else {
            if let Some(cuts) = &self.cuts {
                let tally = std::mem::replace(&mut self.tally, Tally::new(0));
                let e = tally.excerpt();
                cuts.borrow_mut().push_back(JsonCut {
                    path: self.stack.iter().map(|f| f.ord).collect(),
                    key: self.str_key,
                    bytes: e.bytes,
                    sha256: e.sha256,
                });
            }
            self.out.push(b'"');
            self.state = Js::Outside;
        }
        from + k + 1
    }

    /// Hands on the invalid escape read so far; everything after it passes unguarded.
    fn open(&mut self) {
        self.out.extend_from_slice(&self.esc);
        self.state = Js::Open;
    }
}

impl<R: BufRead> Read for JsonGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut available = self.fill_buf()?;
        let n = available.read(buf)?;
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for JsonGuard<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.core.out_pos == self.core.out.len() {
            if let Some(e) = &self.core.failed {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e.clone()));
            }
            self.core.out.clear();
            self.core.out_pos = 0;
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                return Ok(&[]);
            }
            let n = chunk.len();
            self.core.process(chunk);
            self.inner.consume(n);
            self.core.in_base += n as u64;
        }
        Ok(&self.core.out[self.core.out_pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.core.out_pos = (self.core.out_pos + amt).min(self.core.out.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::BufReader;

    fn sha(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    /// Everything a CSV guard hands out for `input` read in `chunk`-byte pieces, and the guard.
    fn csv_run(input: &[u8], limit: u64, chunk: usize) -> (Vec<u8>, CsvGuard<BufReader<&[u8]>>) {
        let mut g = CsvGuard::new(BufReader::with_capacity(chunk, input), b',', limit, 8);
        let mut out = Vec::new();
        // Small reads too, as a parser with a small buffer would make.
        let mut buf = [0u8; 5];
        loop {
            let n = g.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        (out, g)
    }

    #[test]
    fn tally_keeps_the_head_and_hashes_all() {
        let mut t = Tally::new(4);
        t.add("甲".as_bytes());
        assert!(t.whole());
        t.add(b"abcdef");
        assert!(!t.whole());
        let e = t.excerpt();
        // 4 bytes would split the second character: the head stops before it.
        assert_eq!(e.head, "甲a");
        assert_eq!(e.bytes, 9);
        assert_eq!(e.sha256, sha("甲abcdef".as_bytes()));
        let e = Tally::new(64).excerpt();
        assert_eq!((e.head.as_str(), e.bytes, e.sha256), ("", 0, sha(b"")));
    }

    #[test]
    fn ordinary_csv_passes_unchanged_whatever_the_chunking() {
        let doc = "id,name,note\r\n1,\"甲, \"\"乙\"\"\",plain\r\n\r\n2,a\"b\"c,\"multi\nline\r\nfield\"\n\
                   3,,\"\"\n\"4\",\"x\"y,\n5,end";
        for chunk in (1..12).chain([4096]) {
            let (out, mut g) = csv_run(doc.as_bytes(), 64, chunk);
            assert_eq!(String::from_utf8(out).unwrap(), doc, "chunk {chunk}");
            assert_eq!(g.take_cut(0, u64::MAX), None);
        }
    }

    #[test]
    fn a_long_record_is_cut_and_the_rest_passes() {
        let long = format!("7,\"{}\n{}\"\"q\",tail", "甲".repeat(40), "x".repeat(300));
        let doc = format!("a,b,c\n1,ok,1\n{long}\r\n8,after,\"x\ny\"\n");
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let (out, mut g) = csv_run(doc.as_bytes(), 32, chunk);
            let out = String::from_utf8(out).unwrap();
            // 32 bytes: "7,\"" and 29 bytes of 甲, 9 characters and 2 bytes: on to the 10th's end.
            let kept = format!("7,\"{}", "甲".repeat(10));
            assert_eq!(
                out,
                format!("a,b,c\n1,ok,1\n{kept}\"\r\n8,after,\"x\ny\"\n"),
                "chunk {chunk}"
            );
            let at = "a,b,c\n1,ok,1\n".len() + kept.len();
            let cut = g.take_cut(0, u64::MAX).unwrap();
            assert_eq!(cut.at, at as u64);
            assert_eq!(cut.excerpt.bytes, long.len() as u64);
            assert_eq!(cut.excerpt.sha256, sha(long.as_bytes()));
            assert_eq!(cut.excerpt.head, "7,\"甲");
            // The record's own line, and the one after it, whose line feed the cut skipped.
            assert_eq!(g.line_of(at as u64 - kept.len() as u64), 3);
            assert_eq!(g.line_of(out.find("8,after").unwrap() as u64), 5);
        }
    }

    #[test]
    fn records_at_the_limit_pass_and_one_byte_more_is_cut() {
        let exact = "x".repeat(20);
        let quoted = format!("\"{}\"", "y".repeat(18));
        let over = "z".repeat(21);
        let doc = format!("{exact}\n{quoted}\r\n{over}\n\"{}\"\"\"\n", "w".repeat(19));
        for chunk in [1, 4, 20, 21, 4096] {
            let (out, mut g) = csv_run(doc.as_bytes(), 20, chunk);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!(
                    "{exact}\n{quoted}\r\n{}\n\"{}\"\n",
                    "z".repeat(20),
                    "w".repeat(19)
                ),
                "chunk {chunk}"
            );
            let first = g.take_cut(0, u64::MAX).unwrap();
            assert_eq!(first.excerpt.bytes, 21);
            // The last record ends with an escaped quote past the limit: cut inside quotes,
            // so the guard closes it.
            let second = g.take_cut(0, u64::MAX).unwrap();
            assert_eq!(second.excerpt.bytes, 23);
            // Output offsets: the first cut took one byte out.
            assert_eq!(second.at, (doc.len() - 4 - 1) as u64);
            assert!(g.take_cut(0, u64::MAX).is_none());
        }
    }

    #[test]
    fn a_cut_record_running_to_the_end_of_the_file() {
        let doc = format!("h\n\"{}", "q\n".repeat(50));
        let (out, mut g) = csv_run(doc.as_bytes(), 16, 3);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("h\n\"{}\"", "q\n".repeat(7) + "q")
        );
        let cut = g.take_cut(0, u64::MAX).unwrap();
        assert_eq!(cut.excerpt.bytes, 101);
        // Every line end counts, those handed out (8) and those the cut skipped (43).
        assert_eq!(g.line_of(u64::MAX), 1 + 51);
    }

    /// Records as csv parses them, each with the raw text it spans (blank lines before it and
    /// its line break left out).
    fn csv_records(input: &[u8]) -> Vec<(csv::ByteRecord, Vec<u8>)> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let mut out = Vec::new();
        let mut rec = csv::ByteRecord::new();
        while r.read_byte_record(&mut rec).unwrap() {
            let from = rec.position().unwrap().byte() as usize;
            let to = r.position().byte() as usize;
            let mut raw = &input[from..to];
            while let [b'\r' | b'\n', rest @ ..] = raw {
                raw = rest;
            }
            // A final line break is the record's end unless it lies inside quotes (a quoted
            // field left open at the end of the file): then the record without it differs.
            if let [rest @ .., b'\r' | b'\n'] = raw
                && csv_records_plain(rest).first() == Some(&rec)
            {
                raw = rest;
            }
            out.push((rec.clone(), raw.to_vec()));
        }
        out
    }

    fn csv_records_plain(input: &[u8]) -> Vec<csv::ByteRecord> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input)
            .byte_records()
            .map(Result::unwrap)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the text: the parser sees the same records through the guard, except those
        /// longer than the limit, which are cut exactly there with their true length and digest,
        /// and no record it sees is longer than the limit plus a closing quote.
        #[test]
        fn csv_guard_matches_the_parser(
            parts in proptest::collection::vec(
                proptest::sample::select(vec!["a", "bc", "甲", ",", "\"", "\"\"", "\r", "\n", "\r\n"]),
                0..120,
            ),
            limit in 16u64..48,
            chunk in 1usize..40,
        ) {
            let input = parts.concat();
            let expected = csv_records(input.as_bytes());
            let mut g = CsvGuard::new(
                BufReader::with_capacity(chunk, input.as_bytes()),
                b',',
                limit,
                8,
            );
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .buffer_capacity(7)
                .from_reader(&mut g);
            let mut rec = csv::ByteRecord::new();
            let mut seen = Vec::new();
            while r.read_byte_record(&mut rec).unwrap() {
                let from = rec.position().unwrap().byte();
                let to = r.position().byte();
                // Up to the limit and the rest of a character.
                prop_assert!(rec.as_slice().len() as u64 <= limit + 3);
                seen.push((rec.clone(), r.get_mut().take_cut(from, to)));
            }
            prop_assert_eq!(seen.len(), expected.len());
            for ((rec, cut), (want, raw)) in seen.iter().zip(&expected) {
                match cut {
                    None => {
                        prop_assert!(raw.len() as u64 <= limit);
                        prop_assert_eq!(rec, want);
                    }
                    Some(cut) => {
                        prop_assert!(raw.len() as u64 > limit);
                        prop_assert_eq!(cut.excerpt.bytes, raw.len() as u64);
                        prop_assert_eq!(cut.excerpt.sha256, sha(raw));
                        prop_assert!(raw.starts_with(cut.excerpt.head.as_bytes()));
                    }
                }
            }
        }
    }

    /// Everything a JSON guard hands out for `input` read in `chunk`-byte pieces, and its cuts.
    fn json_run(input: &[u8], field: usize, chunk: usize) -> (io::Result<Vec<u8>>, Vec<JsonCut>) {
        let cuts = JsonCuts::default();
        let mut g = JsonGuard::new(
            BufReader::with_capacity(chunk, input),
            field,
            Some(Rc::clone(&cuts)),
        );
        let mut out = Vec::new();
        let r = g.read_to_end(&mut out).map(|_| out);
        let cuts = cuts.borrow().iter().cloned().collect();
        (r, cuts)
    }

    #[test]
    fn ordinary_json_passes_unchanged_whatever_the_chunking() {
        let doc = r#"[{"a": "x\"y\\z\u00e9\ud83d\ude00甲", "n": -1.5e+3, "t": [true, false, null]},
                      {"o": {"p": {"q": []}}, "e": ""}, "s", 12]"#;
        for chunk in (1..12).chain([4096]) {
            let (out, cuts) = json_run(doc.as_bytes(), 64, chunk);
            assert_eq!(
                String::from_utf8(out.unwrap()).unwrap(),
                doc,
                "chunk {chunk}"
            );
            assert!(cuts.is_empty());
        }
    }

    #[test]
    fn a_long_string_is_cut_where_it_stands() {
        let long = format!("{}\\\"{}", "甲".repeat(30), "x".repeat(5000));
        let doc =
            format!(r#"[{{"a": "short"}}, {{"b": 1, "c": "{long}", "a": "ok"}}, {{"a": "z"}}]"#);
        for chunk in [1, 2, 7, 4096] {
            let (out, cuts) = json_run(doc.as_bytes(), 64, chunk);
            let out = String::from_utf8(out.unwrap()).unwrap();
            // 64 bytes = 21 characters of 甲 and one byte of the next: it is let through whole.
            let kept = "甲".repeat(22);
            assert_eq!(
                out,
                format!(
                    r#"[{{"a": "short"}}, {{"b": 1, "c": "{kept}", "a": "ok"}}, {{"a": "z"}}]"#
                ),
                "chunk {chunk}"
            );
            assert_eq!(
                cuts,
                vec![JsonCut {
                    path: vec![1, 1],
                    key: false,
                    bytes: long.len() as u64,
                    sha256: sha(long.as_bytes()),
                }]
            );
        }
    }

    #[test]
    fn cuts_never_split_an_escape_or_a_surrogate_pair() {
        // Each string is cut somewhere inside an escape; what serde_json reads of it is a prefix
        // of the whole value.
        let contents = [
            "\\u00e9".repeat(20),
            "\\ud83d\\ude00".repeat(10),
            format!("{}\\ud83d\\ude00{}", "a".repeat(14), "b".repeat(40)),
            format!("{}\\n\\\"{}", "a".repeat(15), "b".repeat(40)),
            format!("{}é{}", "a".repeat(15), "b".repeat(40)),
        ];
        for content in &contents {
            let doc = format!(r#"[{{"{content}": "{content}"}}]"#);
            let whole: serde_json::Value = serde_json::from_str(&doc).unwrap();
            let (whole_key, whole_value) = whole[0].as_object().unwrap().iter().next().unwrap();
            for chunk in [1, 3, 4096] {
                let (out, cuts) = json_run(doc.as_bytes(), 16, chunk);
                let out = out.unwrap();
                let v: serde_json::Value = serde_json::from_slice(&out)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
                let (key, value) = v[0].as_object().unwrap().iter().next().unwrap();
                assert!(whole_key.starts_with(key.as_str()) && key.len() < whole_key.len());
                let value = value.as_str().unwrap();
                assert!(whole_value.as_str().unwrap().starts_with(value) && !value.is_empty());
                let places: Vec<_> = cuts.iter().map(|c| (c.path.clone(), c.key)).collect();
                assert_eq!(places, vec![(vec![0, 0], true), (vec![0, 0], false)]);
                assert!(cuts.iter().all(
                    |c| c.bytes == content.len() as u64 && c.sha256 == sha(content.as_bytes())
                ));
            }
        }
    }

    #[test]
    fn long_numbers_and_deep_nesting_stop_the_read() {
        let doc = format!("[1, {}]", "9".repeat(100));
        let (r, _) = json_run(doc.as_bytes(), 32, 7);
        let e = r.unwrap_err();
        assert_eq!(
            json_guard_error(&e),
            Some(&JsonGuardError::NumberTooLong { at: 4 })
        );
        let ok = format!(
            "{}{}",
            "[".repeat(JSON_MAX_DEPTH),
            "]".repeat(JSON_MAX_DEPTH)
        );
        assert!(json_run(ok.as_bytes(), 32, 5).0.is_ok());
        let deep = format!("[{{\"a\": {}", "[".repeat(JSON_MAX_DEPTH));
        let (r, _) = json_run(deep.as_bytes(), 32, 5);
        assert_eq!(
            json_guard_error(&r.unwrap_err()),
            Some(&JsonGuardError::TooDeep {
                at: (7 + JSON_MAX_DEPTH - 2) as u64
            })
        );
    }

    #[test]
    fn what_serde_json_refuses_in_a_skipped_part_still_reaches_it() {
        for bad in ["\u{1}", "\\x", "\\u12G4", "\n"] {
            let doc = format!("[\"{}{bad}{}\"]", "a".repeat(40), "b".repeat(40));
            assert!(serde_json::from_str::<serde_json::Value>(&doc).is_err());
            let (out, _) = json_run(doc.as_bytes(), 16, 3);
            let out = out.unwrap();
            assert!(
                serde_json::from_slice::<serde_json::Value>(&out).is_err(),
                "{bad:?} accepted after the cut: {}",
                String::from_utf8_lossy(&out)
            );
        }
        // An unterminated string stays unterminated.
        let doc = format!("[\"{}", "a".repeat(100));
        let (out, cuts) = json_run(doc.as_bytes(), 16, 3);
        assert!(serde_json::from_slice::<serde_json::Value>(&out.unwrap()).is_err());
        assert!(cuts.is_empty());
    }

    /// A JSON value whose strings draw on escapes and multi-byte characters.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let text = proptest::collection::vec(
            proptest::sample::select(vec!["a", "é", "甲", "😀", "\"", "\\", "\n", "\u{1}", "/"]),
            0..30,
        )
        .prop_map(|p| p.concat());
        let leaf = prop_oneof![
            text.clone().prop_map(serde_json::Value::String),
            // Numbers up to 11 bytes: longer ones than the field limit stop the read.
            any::<i32>().prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::Bool),
            Just(serde_json::Value::Null),
        ];
        leaf.prop_recursive(4, 32, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                // Member names are never cut here: two cut to the same prefix would merge.
                proptest::collection::vec(
                    (
                        proptest::sample::select(vec!["k0", "k1", "k2", "k3", "k4"]),
                        inner
                    ),
                    0..6
                )
                .prop_map(|m| serde_json::Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    /// Whether `cut` is `whole` with some strings shortened to a prefix (never emptied).
    fn is_cut_of(cut: &serde_json::Value, whole: &serde_json::Value) -> bool {
        use serde_json::Value as V;
        match (cut, whole) {
            (V::String(c), V::String(w)) => c == w || (!c.is_empty() && w.starts_with(c.as_str())),
            (V::Array(c), V::Array(w)) => {
                c.len() == w.len() && c.iter().zip(w).all(|(c, w)| is_cut_of(c, w))
            }
            (V::Object(c), V::Object(w)) => {
                c.len() == w.len()
                    && c.iter()
                        .zip(w)
                        .all(|((ck, cv), (wk, wv))| ck == wk && is_cut_of(cv, wv))
            }
            (c, w) => c == w,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the document: through the guard it reads the same with a high limit, and
        /// with a low one as the same structure with long strings cut to a prefix.
        #[test]
        fn json_guard_keeps_documents_readable(
            value in json_value(),
            field in 16usize..40,
            chunk in 1usize..20,
        ) {
            let doc = serde_json::to_string(&value).unwrap();
            let (out, cuts) = json_run(doc.as_bytes(), 1 << 20, chunk);
            prop_assert_eq!(out.unwrap(), doc.as_bytes());
            prop_assert!(cuts.is_empty());
            let (out, cuts) = json_run(doc.as_bytes(), field, chunk);
            let out = out.unwrap();
            let read: serde_json::Value = serde_json::from_slice(&out).unwrap();
            prop_assert!(is_cut_of(&read, &value), "{} from {}", read, value);
            prop_assert!(out.len() <= doc.len());
            for c in &cuts {
                prop_assert!(c.bytes > field as u64);
            }
        }
    }
}

/// Measures for the decoders' tests: the peak memory of a decode, taken in a process of its own
/// (the test harness runs many tests at once on threads of one process, so that process's peak
/// says nothing about one of them), and best-of-five timings.
#[cfg(test)]
pub(super) mod measure {
    use std::io::Write;
    use std::process::Command;

    use crate::ingest::decode::{Column, Format, Limits, worker};

    const ENV: &str = "XJ_DECODE_MEMORY_CHECK";
    const MARK: &str = "XJ-MEMORY";

    /// Most the decoding process's peak memory may grow while it decodes: buffers and one record
    /// at the default limits, nothing like the 50 MiB the tests put in one value.
    const GROWTH: u64 = 16 << 20;

    /// What one decode came to.
    #[derive(Debug, PartialEq, Eq)]
    pub(in crate::ingest::decode) struct Outcome {
        /// Records read.
        pub(in crate::ingest::decode) records: usize,
        /// Record errors, with their reasons.
        pub(in crate::ingest::decode) errors: Vec<String>,
    }

    impl Outcome {
        /// The one record error.
        pub(in crate::ingest::decode) fn error(&self) -> &str {
            match &self.errors[..] {
                [error] => error,
                _ => panic!("not one error: {self:?}"),
            }
        }
    }

    /// The shortest of five runs of `f`, with what it returned.
    pub(in crate::ingest::decode) fn best_of_five(
        f: &dyn Fn() -> usize,
    ) -> (std::time::Duration, usize) {
        (0..5)
            .map(|_| {
                let start = std::time::Instant::now();
                let n = f();
                (start.elapsed(), n)
            })
            .min()
            .unwrap_or_default()
    }

    /// Decodes `before`, `mib` MiB of `x` and `after`, as `format` with the default limits, in a
    /// child process running this test binary, and checks that its peak memory grew by less
    /// than [`GROWTH`].
    pub(in crate::ingest::decode) fn decode_in_child(
        format: &Format,
        columns: &[Column],
        before: &str,
        mib: usize,
        after: &str,
    ) -> Outcome {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(before.as_bytes()).unwrap();
        let chunk = "x".repeat(1 << 20);
        for _ in 0..mib {
            f.write_all(chunk.as_bytes()).unwrap();
        }
        f.write_all(after.as_bytes()).unwrap();
        f.flush().unwrap();
        let request = serde_json::to_string(&(f.path(), format, columns)).unwrap();
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "ingest::decode::bounds::measure::child",
                "--ignored",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(ENV, request)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.split_once(MARK).map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("the child did not decode: {stdout}"));
        let (growth, records, errors): (u64, usize, Vec<String>) =
            serde_json::from_str(line.trim()).unwrap();
        assert!(
            growth < GROWTH,
            "decoding {format:?} grew the peak memory by {growth} bytes"
        );
        Outcome { records, errors }
    }

    #[test]
    #[ignore = "the child side of decode_in_child"]
    fn child() {
        let Ok(request) = std::env::var(ENV) else {
            return;
        };
        let (path, format, columns): (std::path::PathBuf, Format, Vec<Column>) =
            serde_json::from_str(&request).unwrap();
        let before = worker::peak_rss().unwrap();
        let (mut records, mut errors) = (0, Vec::new());
        for item in super::super::open(&path, &format, &columns, &Limits::default()).unwrap() {
            match item {
                Ok(_) => records += 1,
                Err(e) => errors.push(e.to_string()),
            }
        }
        let growth = worker::peak_rss().unwrap().saturating_sub(before);
        println!(
            "{MARK} {}",
            serde_json::to_string(&(growth, records, errors)).unwrap()
        );
    }
}
