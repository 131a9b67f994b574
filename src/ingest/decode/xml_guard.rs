//! What quick-xml may hold in memory. quick-xml buffers every event whole, so one 200 MB text node
//! would cost 200 MB (and more while it grows). [`Guard`] sits between the transcoded text and the
//! parser and keeps every event bounded: text, CDATA sections and comments longer than the field
//! limit reach the parser cut to their first bytes (the rest is skipped, counted and hashed, and
//! noted as a [`GuardCut`]); a tag or processing instruction longer than the tag limit, and any
//! `<!DOCTYPE` or other `<!` declaration, stop the read with a [`GuardError`].
//!
//! The cut text still makes well-formed XML: it ends on a character boundary and never inside an
//! entity or character reference. Offsets the parser reports are in the guard's output; the
//! guard maps them back to offsets in the transcoded text ([`Guard::unskip`]).

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};

use sha2::{Digest, Sha256};

/// A text run, CDATA section or comment the guard cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GuardCut {
    /// Output offset where the run (or `<![CDATA[`) starts.
    pub(super) at: u64,
    /// Full length of its content in bytes, as it stands in the document.
    pub(super) bytes: u64,
    /// SHA-256 of that content.
    pub(super) sha256: [u8; 32],
}

/// Why the guard stopped the read; carried inside an `io::Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum GuardError {
    /// `<!DOCTYPE` or another declaration, at this offset of the transcoded text.
    Declaration {
        /// Transcoded offset of its `<`.
        at: u64,
    },
    /// A tag or processing instruction longer than the tag limit.
    TagTooLong {
        /// Transcoded offset of its `<`.
        at: u64,
        /// The limit in bytes.
        limit: usize,
    },
}

impl std::fmt::Display for GuardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuardError::Declaration { at } => write!(f, "declaration at offset {at}"),
            GuardError::TagTooLong { at, limit } => {
                write!(f, "a tag longer than {limit} bytes at offset {at}")
            }
        }
    }
}

impl std::error::Error for GuardError {}

/// Finds a [`GuardError`] inside an I/O error returned through a [`Guard`].
pub(super) fn guard_error(err: &io::Error) -> Option<&GuardError> {
    err.get_ref()?.downcast_ref::<GuardError>()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Character data up to the next `<`.
    Text,
    /// Just after `<` (held in `tag`), until it is known what follows.
    Open,
    /// An element tag; the quote character when inside an attribute value.
    Tag(u8),
    /// A processing instruction or the XML declaration, up to `?>`.
    Pi,
    /// Comment content, up to `-->`.
    Comment,
    /// CDATA content, up to `]]>`.
    CData,
}

/// A reader over UTF-8 XML text that bounds every event (see the module docs).
pub(super) struct Guard<R> {
    inner: R,
    core: Core,
}

struct Core {
    state: State,
    /// Output not yet handed out, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    /// Output bytes handed out before `out[0]`.
    out_base: u64,
    /// Transcoded bytes taken from the inner reader before the chunk being processed.
    in_base: u64,
    /// Content of the current run held back (at most `field` bytes).
    held: Vec<u8>,
    /// Up to two last bytes of comment or CDATA content not yet in the run: they may be the
    /// start of its terminator.
    tail: Vec<u8>,
    /// Full length of the current run.
    run_total: u64,
    /// Set once the run is longer than `field`: the digest of everything so far.
    hasher: Option<Sha256>,
    /// Output offset where the current run's construct starts.
    run_at: u64,
    /// The markup being read (`<` and what follows), at most `tag_limit` bytes.
    tag: Vec<u8>,
    /// Transcoded offset of the markup's `<`.
    tag_at: u64,
    field: usize,
    tag_limit: usize,
    /// `(output offset, transcoded bytes skipped before it)`, one per cut, in order.
    skips: Vec<(u64, u64)>,
    skipped: u64,
    cuts: VecDeque<GuardCut>,
    keep_cuts: bool,
    failed: Option<GuardError>,
}

const CDATA_OPEN: &[u8] = b"<![CDATA[";
const COMMENT_OPEN: &[u8] = b"<!--";

impl<R: BufRead> Guard<R> {
    /// Guards `inner`: runs longer than `field` bytes are cut, tags longer than `tag_limit` stop
    /// the read. With `keep_cuts`, the cuts are kept for [`Guard::take_cut`].
    pub(super) fn new(inner: R, field: usize, tag_limit: usize, keep_cuts: bool) -> Self {
        Guard {
            inner,
            core: Core {
                state: State::Text,
                out: Vec::with_capacity(64 * 1024),
                out_pos: 0,
                out_base: 0,
                in_base: 0,
                held: Vec::new(),
                tail: Vec::with_capacity(2),
                run_total: 0,
                hasher: None,
                run_at: 0,
                tag: Vec::new(),
                tag_at: 0,
                field: field.max(16),
                tag_limit: tag_limit.max(16),
                skips: Vec::new(),
                skipped: 0,
                cuts: VecDeque::new(),
                keep_cuts,
                failed: None,
            },
        }
    }
}

impl<R> Guard<R> {
    /// The transcoded offset of output offset `out`.
    pub(super) fn unskip(&self, out: u64) -> u64 {
        let i = self.core.skips.partition_point(|(at, _)| *at <= out);
        out + i.checked_sub(1).map_or(0, |i| self.core.skips[i].1)
    }

    /// The first cut starting in `from..to` (output offsets), forgetting every cut before it.
    pub(super) fn take_cut(&mut self, from: u64, to: u64) -> Option<GuardCut> {
        while let Some(c) = self.core.cuts.front() {
            if c.at >= from {
                break;
            }
            self.core.cuts.pop_front();
        }
        match self.core.cuts.front() {
            Some(c) if c.at < to => self.core.cuts.pop_front(),
            _ => None,
        }
    }
}

impl Core {
    fn here(&self) -> u64 {
        self.out_base + self.out.len() as u64
    }

    fn fail(&mut self, e: GuardError) {
        self.failed = Some(e);
    }

    /// Adds content to the current run, switching to counting and hashing past `field` bytes.
    fn run_add(&mut self, piece: &[u8]) {
        self.run_total += piece.len() as u64;
        if let Some(h) = &mut self.hasher {
            h.update(piece);
        } else if self.held.len() + piece.len() <= self.field {
            self.held.extend_from_slice(piece);
        } else {
            let room = self.field - self.held.len();
            self.held.extend_from_slice(&piece[..room]);
            let mut h = Sha256::new();
            h.update(&self.held);
            h.update(&piece[room..]);
            self.hasher = Some(h);
        }
    }

    /// Ends the current run: emits it whole, or its safe prefix and a cut. `text` says whether
    /// it is character data (whose prefix must not end inside a reference); `record` whether
    /// the cut is noted (text and CDATA, not comments).
    fn run_end(&mut self, text: bool, comment: bool) {
        let at = self.run_at;
        match self.hasher.take() {
            None => self.out.extend_from_slice(&self.held),
            Some(h) => {
                let mut keep = safe_prefix(&self.held, text);
                if comment {
                    // `--` may not end a comment's content.
                    while keep.last() == Some(&b'-') {
                        keep = &keep[..keep.len() - 1];
                    }
                }
                let kept = keep.len() as u64;
                self.out.extend_from_slice(keep);
                self.skipped += self.run_total - kept;
                let here = self.out_base + self.out.len() as u64;
                self.skips.push((here, self.skipped));
                if self.keep_cuts && !comment {
                    self.cuts.push_back(GuardCut {
                        at,
                        bytes: self.run_total,
                        sha256: h.finalize().into(),
                    });
                }
            }
        }
        self.held.clear();
        self.run_total = 0;
    }

    /// Processes one chunk of input, appending what the parser may see to `out`.
    fn process(&mut self, chunk: &[u8]) {
        let mut i = 0;
        while i < chunk.len() && self.failed.is_none() {
            match self.state {
                State::Text => {
                    let end = memchr::memchr(b'<', &chunk[i..]).map(|j| i + j);
                    let stop = end.unwrap_or(chunk.len());
                    if self.run_total == 0 {
                        self.run_at = self.here();
                    }
                    self.run_add(&chunk[i..stop]);
                    i = stop;
                    if end.is_some() {
                        self.run_end(true, false);
                        self.tag.clear();
                        self.tag.push(b'<');
                        self.tag_at = self.in_base + i as u64;
                        self.state = State::Open;
                        i += 1;
                    }
                }
                State::Open => {
                    let b = chunk[i];
                    i += 1;
                    self.tag.push(b);
                    if self.tag.len() == 2 && b != b'!' {
                        self.state = if b == b'?' { State::Pi } else { State::Tag(0) };
                        if b == b'>' {
                            // `<>`: not XML; the parser says so.
                            self.emit_tag();
                        }
                        continue;
                    }
                    if self.tag == COMMENT_OPEN || self.tag == CDATA_OPEN {
                        self.run_at = self.here();
                        self.out.extend_from_slice(&self.tag);
                        self.state = if self.tag == COMMENT_OPEN {
                            State::Comment
                        } else {
                            State::CData
                        };
                        self.tail.clear();
                    } else if !COMMENT_OPEN.starts_with(&self.tag)
                        && !CDATA_OPEN.starts_with(&self.tag)
                    {
                        self.fail(GuardError::Declaration { at: self.tag_at });
                    }
                }
                State::Tag(quote) => {
                    let rest = &chunk[i..];
                    let hit = if quote == 0 {
                        memchr::memchr3(b'>', b'"', b'\'', rest)
                    } else {
                        memchr::memchr(quote, rest)
                    };
                    let take = hit.map_or(rest.len(), |j| j + 1);
                    self.tag.extend_from_slice(&rest[..take]);
                    i += take;
                    // Checked before the tag can be handed out: a tag that ends in this chunk
                    // is held to the limit like one that spans chunks.
                    self.check_tag();
                    if let Some(j) = hit.filter(|_| self.failed.is_none()) {
                        match (quote, rest[j]) {
                            (0, b'>') => self.emit_tag(),
                            (0, q) => self.state = State::Tag(q),
                            _ => self.state = State::Tag(0),
                        }
                    }
                }
                State::Pi => {
                    let rest = &chunk[i..];
                    let hit = memchr::memchr(b'>', rest);
                    let take = hit.map_or(rest.len(), |j| j + 1);
                    self.tag.extend_from_slice(&rest[..take]);
                    i += take;
                    self.check_tag();
                    if hit.is_some() && self.failed.is_none() && self.tag.ends_with(b"?>") {
                        self.emit_tag();
                    }
                }
                State::Comment | State::CData => {
                    let b = chunk[i];
                    i += 1;
                    let close: &[u8] = if self.state == State::Comment {
                        b"--"
                    } else {
                        b"]]"
                    };
                    if b == b'>' && self.tail == close {
                        let comment = self.state == State::Comment;
                        self.run_end(false, comment);
                        self.out.extend_from_slice(close);
                        self.out.push(b'>');
                        self.tail.clear();
                        self.state = State::Text;
                        continue;
                    }
                    if self.tail.len() == 2 {
                        let first = self.tail.remove(0);
                        self.run_add(&[first]);
                    }
                    self.tail.push(b);
                }
            }
        }
    }

    fn emit_tag(&mut self) {
        self.out.extend_from_slice(&self.tag);
        self.tag.clear();
        self.state = State::Text;
    }

    fn check_tag(&mut self) {
        if self.tag.len() > self.tag_limit {
            self.fail(GuardError::TagTooLong {
                at: self.tag_at,
                limit: self.tag_limit,
            });
        }
    }

    /// At the end of the input: hands out what is held, so that the parser sees (and reports)
    /// an unfinished construct.
    fn finish(&mut self) {
        match self.state {
            State::Text => self.run_end(true, false),
            State::Comment | State::CData => {
                self.run_end(false, self.state == State::Comment);
                let tail = std::mem::take(&mut self.tail);
                self.out.extend_from_slice(&tail);
            }
            State::Open | State::Tag(_) | State::Pi => {
                let tag = std::mem::take(&mut self.tag);
                self.out.extend_from_slice(&tag);
            }
        }
        self.state = State::Text;
    }
}

/// The longest prefix of `held` (a prefix of valid UTF-8) that ends on a character boundary
/// and, for character data, not inside an `&...;` reference.
fn safe_prefix(held: &[u8], text: bool) -> &[u8] {
    let mut end = held.len();
    // Back off over a character whose bytes do not all fit.
    if let Some(lead) = held.iter().rposition(|b| b & 0xC0 != 0x80) {
        let len = match held[lead] {
            b if b < 0x80 => 1,
            b if b >= 0xF0 => 4,
            b if b >= 0xE0 => 3,
            _ => 2,
        };
        if lead + len > end {
            end = lead;
        }
    }
    if text
        && let Some(amp) = held[..end].iter().rposition(|b| *b == b'&')
        && !held[amp..end].contains(&b';')
    {
        end = amp;
    }
    &held[..end]
}

impl<R: BufRead> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        super::text::read_buffered(self, buf)
    }
}

impl<R: BufRead> BufRead for Guard<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.core.out_pos == self.core.out.len() {
            if let Some(e) = &self.core.failed {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e.clone()));
            }
            self.core.out_base += self.core.out.len() as u64;
            self.core.out.clear();
            self.core.out_pos = 0;
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                self.core.finish();
                if self.core.out.is_empty() {
                    return Ok(&[]);
                }
                break;
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
    use std::io::BufReader;

    /// Everything the guard hands out for `input` read in `chunk`-byte pieces.
    fn run(
        input: &[u8],
        field: usize,
        chunk: usize,
    ) -> (io::Result<Vec<u8>>, Guard<BufReader<&[u8]>>) {
        let mut g = Guard::new(
            BufReader::with_capacity(chunk, input),
            field,
            field + 64,
            true,
        );
        let mut out = Vec::new();
        let r = g.read_to_end(&mut out).map(|_| out);
        (r, g)
    }

    #[test]
    fn ordinary_xml_passes_unchanged_whatever_the_chunking() {
        let doc = "<?xml version=\"1.0\"?>\n<!-- 注释 -- ok -->\n<R a=\"x>y\" b='q\"'>\
                   <F>甲&amp;乙&#20013;</F><![CDATA[a]b]]c<>]]><E/>\n</R>\n";
        for chunk in 1..12 {
            let (out, g) = run(doc.as_bytes(), 64, chunk);
            assert_eq!(out.unwrap(), doc.as_bytes(), "chunk {chunk}");
            assert!(g.core.cuts.is_empty());
            assert_eq!(g.unskip(20), 20);
        }
    }

    #[test]
    fn long_text_is_cut_before_a_reference_and_on_a_character_boundary() {
        let body = format!("{}&amp;{}", "甲".repeat(10), "x".repeat(100));
        let doc = format!("<R><F>{body}</F><G>after</G></R>");
        for chunk in [1, 3, 7, 4096] {
            // 10 × 3 bytes of 甲, then "&amp;": a 32-byte limit falls inside the reference.
            let (out, mut g) = run(doc.as_bytes(), 32, chunk);
            let out = String::from_utf8(out.unwrap()).unwrap();
            assert_eq!(
                out,
                format!("<R><F>{}</F><G>after</G></R>", "甲".repeat(10)),
                "chunk {chunk}"
            );
            let cut = g.take_cut(0, u64::MAX).unwrap();
            assert_eq!(cut.at, 6);
            assert_eq!(cut.bytes, body.len() as u64);
            assert_eq!(
                cut.sha256,
                <[u8; 32]>::from(Sha256::digest(body.as_bytes()))
            );
            // Offsets after the cut map back to the original text.
            let after = out.find("<G>").unwrap() as u64;
            assert_eq!(g.unskip(after), doc.find("<G>").unwrap() as u64);
            assert_eq!(g.unskip(3), 3);
        }
        // A limit inside a multi-byte character backs off to its start.
        let (out, _) = run("<F>甲甲甲甲甲甲</F>".as_bytes(), 17, 5);
        assert_eq!(
            String::from_utf8(out.unwrap()).unwrap(),
            "<F>甲甲甲甲甲</F>"
        );
    }

    #[test]
    fn long_cdata_and_comments_are_cut_and_stay_well_formed() {
        let content = format!("{}]", "c".repeat(200));
        let doc = format!(
            "<R><!--{}--><F><![CDATA[{content}]]></F></R>",
            "-".repeat(300)
        );
        for chunk in [1, 2, 5, 4096] {
            let (out, mut g) = run(doc.as_bytes(), 40, chunk);
            let out = String::from_utf8(out.unwrap()).unwrap();
            assert_eq!(
                out,
                format!("<R><!----><F><![CDATA[{}]]></F></R>", "c".repeat(40)),
                "chunk {chunk}"
            );
            let cut = g.take_cut(0, u64::MAX).unwrap();
            assert_eq!(
                cut.bytes,
                content.len() as u64,
                "the terminator is not content"
            );
            assert_eq!(
                cut.sha256,
                <[u8; 32]>::from(Sha256::digest(content.as_bytes()))
            );
            assert!(g.take_cut(0, u64::MAX).is_none(), "comments are not noted");
        }
    }

    #[test]
    fn declarations_and_long_tags_stop_the_read_where_they_start() {
        let (r, _) = run(
            b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><x/>",
            64,
            3,
        );
        let e = r.unwrap_err();
        assert_eq!(guard_error(&e), Some(&GuardError::Declaration { at: 21 }));
        let doc = format!("<R><F a=\"{}\"/></R>", "v".repeat(500));
        let (r, _) = run(doc.as_bytes(), 64, 7);
        assert_eq!(
            guard_error(&r.unwrap_err()),
            Some(&GuardError::TagTooLong { at: 3, limit: 128 })
        );
        // An attribute value may hold '>' without ending the tag.
        let (r, _) = run(b"<R a='>>>'><x/></R>", 64, 2);
        assert_eq!(r.unwrap(), b"<R a='>>>'><x/></R>");
    }

    #[test]
    fn unfinished_constructs_reach_the_parser() {
        for doc in ["<R><F>text", "<R><!-- open", "<R><![CDATA[open", "<R a=\"x"] {
            let (out, _) = run(doc.as_bytes(), 64, 3);
            assert_eq!(out.unwrap(), doc.as_bytes());
        }
    }
}
