//! Text encodings: the declared [`Encoding`] of a source file, a streaming transcoder to UTF-8 that
//! refuses (never replaces) malformed byte sequences and knows the file offset of the first one, a
//! one-pass encoding check, and the background-thread plumbing shared by the decoders that stream
//! through a parser owning its input (JSON arrays, XLSX).
//!
//! Every text decoder reads through [`Transcoder`], so the parsers downstream only ever see valid
//! UTF-8 and memory stays bounded by the fixed buffers here, whatever the file size.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::sync::mpsc;

use encoding_rs::{Decoder, DecoderResult};

use super::{FileError, Location, RawRecord, RecordError, Records};

/// Size of the raw and decoded buffers: large enough that per-call overhead vanishes, small enough
/// that memory does not depend on the file.
const CHUNK: usize = 64 * 1024;

/// Text encoding declared by an adapter. A byte-order mark in the file wins over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Encoding {
    /// UTF-8 (an optional BOM is skipped).
    Utf8,
    /// GB18030, the superset used by most Chinese government systems.
    Gb18030,
    /// GBK; decoded as GB18030 (its superset), reported under its own name.
    Gbk,
}

impl Encoding {
    /// Parses an adapter's encoding name: `utf-8`/`utf8`, `gb18030` or `gbk`, in any case.
    pub fn parse(name: &str) -> Option<Encoding> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("utf-8") || name.eq_ignore_ascii_case("utf8") {
            Some(Encoding::Utf8)
        } else if name.eq_ignore_ascii_case("gb18030") {
            Some(Encoding::Gb18030)
        } else if name.eq_ignore_ascii_case("gbk") {
            Some(Encoding::Gbk)
        } else {
            None
        }
    }

    /// The name used in messages: `UTF-8`, `GB18030` or `GBK`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Gb18030 => "GB18030",
            Encoding::Gbk => "GBK",
        }
    }

    fn codec(self) -> &'static encoding_rs::Encoding {
        match self {
            Encoding::Utf8 => encoding_rs::UTF_8,
            // encoding_rs decodes GBK exactly as GB18030 (the WHATWG definition).
            Encoding::Gb18030 | Encoding::Gbk => encoding_rs::GB18030,
        }
    }
}

/// The malformed sequence a [`Transcoder`] stopped at, carried inside an `io::Error` of kind
/// `InvalidData` so that it survives the parsers (csv, quick-xml, serde_json) reading through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DecodeError {
    /// Name of the encoding in force (the BOM's when there was one).
    pub(super) encoding: &'static str,
    /// File offset of the first byte of the malformed sequence.
    pub(super) offset: u64,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid {} byte sequence at byte offset {}",
            self.encoding, self.offset
        )
    }
}

impl std::error::Error for DecodeError {}

/// Finds a [`DecodeError`] inside an I/O error returned through a [`Transcoder`].
pub(super) fn decode_error(err: &io::Error) -> Option<&DecodeError> {
    err.get_ref()?.downcast_ref::<DecodeError>()
}

/// Turns an I/O error met while reading `path` through a [`Transcoder`] into the file error it
/// stands for: [`FileError::Encoding`] when the transcoder refused a byte sequence, else `Io`.
pub(super) fn file_error(path: &Path, err: io::Error) -> FileError {
    match decode_error(&err) {
        Some(d) => FileError::Encoding {
            encoding: d.encoding,
            offset: d.offset,
        },
        None => FileError::Io {
            path: path.display().to_string(),
            source: err,
        },
    }
}

/// Opens `path`, mapping failure to [`FileError::Io`].
pub(super) fn open_file(path: &Path) -> Result<File, FileError> {
    File::open(path).map_err(|source| FileError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// A reader yielding the UTF-8 text of a file in `encoding` (or in the encoding its BOM names).
///
/// Malformed input is not replaced: reading fails with an `InvalidData` error wrapping a
/// [`DecodeError`] with the absolute offset of the first bad byte, and keeps failing afterwards.
pub(super) struct Transcoder<R> {
    inner: R,
    decoder: Decoder,
    declared: Encoding,
    input: Box<[u8]>,
    in_pos: usize,
    in_len: usize,
    in_eof: bool,
    output: Box<[u8]>,
    out_pos: usize,
    out_len: usize,
    /// Source bytes handed to the decoder so far; the base of reported offsets.
    consumed: u64,
    finished: bool,
    failed: Option<DecodeError>,
}

impl Transcoder<File> {
    /// Opens `path` for transcoding.
    pub(super) fn open(path: &Path, encoding: Encoding) -> Result<Self, FileError> {
        Ok(Transcoder::new(open_file(path)?, encoding))
    }
}

impl<R: Read> Transcoder<R> {
    /// Wraps `inner`, decoding it as `encoding` unless it starts with a UTF-8 or UTF-16 BOM.
    pub(super) fn new(inner: R, encoding: Encoding) -> Self {
        // `new_decoder` sniffs the BOM: UTF-8/UTF-16LE/UTF-16BE BOMs override the declared
        // encoding and are removed from the output.
        Self::with_decoder(inner, encoding.codec().new_decoder(), encoding, 0)
    }

    /// Wraps `inner`, the part of a file from byte `base` on, decoding it as `codec` (no BOM
    /// sniffing: `base` is past the start). Reported offsets count from the start of the file.
    fn resume(
        inner: R,
        codec: &'static encoding_rs::Encoding,
        declared: Encoding,
        base: u64,
    ) -> Self {
        Self::with_decoder(
            inner,
            codec.new_decoder_without_bom_handling(),
            declared,
            base,
        )
    }

    fn with_decoder(inner: R, decoder: Decoder, declared: Encoding, base: u64) -> Self {
        Transcoder {
            inner,
            decoder,
            declared,
            input: vec![0; CHUNK].into_boxed_slice(),
            in_pos: 0,
            in_len: 0,
            in_eof: false,
            // GB18030 expands 2 bytes to at most 3; the slack keeps OutputFull rare.
            output: vec![0; CHUNK * 2].into_boxed_slice(),
            out_pos: 0,
            out_len: 0,
            consumed: base,
            finished: false,
            failed: None,
        }
    }

    /// Name of the encoding in force: the BOM's if one was seen, else the declared one.
    pub(super) fn encoding_name(&self) -> &'static str {
        let actual = self.decoder.encoding();
        if actual == self.declared.codec() {
            self.declared.name()
        } else {
            actual.name()
        }
    }

    fn refill_input(&mut self) -> io::Result<()> {
        loop {
            match self.inner.read(&mut self.input) {
                Ok(0) => {
                    self.in_eof = true;
                    self.in_pos = 0;
                    self.in_len = 0;
                    return Ok(());
                }
                Ok(n) => {
                    self.in_pos = 0;
                    self.in_len = n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Decodes until some output is available or the input is exhausted.
    fn decode_more(&mut self) -> io::Result<()> {
        self.out_pos = 0;
        self.out_len = 0;
        while self.out_len == 0 && !self.finished {
            if let Some(err) = &self.failed {
                return Err(io::Error::new(io::ErrorKind::InvalidData, err.clone()));
            }
            if self.in_pos == self.in_len && !self.in_eof {
                self.refill_input()?;
            }
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.input[self.in_pos..self.in_len],
                &mut self.output,
                self.in_eof,
            );
            self.in_pos += read;
            self.consumed += read as u64;
            self.out_len = written;
            match result {
                DecoderResult::InputEmpty => self.finished = self.in_eof,
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(bad, after) => {
                    // The sequence may have begun in an earlier chunk, hence absolute arithmetic.
                    let offset = self
                        .consumed
                        .saturating_sub(u64::from(bad) + u64::from(after));
                    let err = DecodeError {
                        encoding: self.encoding_name(),
                        offset,
                    };
                    // What was decoded before the bad sequence is still handed out first.
                    self.failed = Some(err);
                }
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Transcoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, buf)
    }
}

/// `Read::read` for a reader whose own buffer is the source: copies from `fill_buf`.
pub(super) fn read_buffered(r: &mut impl BufRead, buf: &mut [u8]) -> io::Result<usize> {
    let available = r.fill_buf()?;
    let n = available.len().min(buf.len());
    buf[..n].copy_from_slice(&available[..n]);
    r.consume(n);
    Ok(n)
}

impl<R: Read> BufRead for Transcoder<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.out_pos == self.out_len {
            self.decode_more()?;
        }
        Ok(&self.output[self.out_pos..self.out_len])
    }

    fn consume(&mut self, amt: usize) {
        self.out_pos = (self.out_pos + amt).min(self.out_len);
    }
}

/// Files at least this large are checked in two halves, on two threads.
const SPLIT_FROM: u64 = 8 * 1024 * 1024;

/// Checks that the whole of `path` decodes in `encoding` (or its BOM's), and that it holds
/// something besides a BOM and whitespace. A large file is checked as two halves in parallel,
/// split just after a line feed: in UTF-8, GB18030 and GBK a byte below 0x30 is never part of a
/// multi-byte sequence, so a decoder starting after it is in the state a decoder of the whole file
/// would be in. (UTF-16 files, known by their BOM, are checked in one pass.)
///
/// Errors: [`FileError::Io`], [`FileError::Encoding`] at the first malformed sequence,
/// [`FileError::Empty`].
pub(super) fn validate(path: &Path, encoding: Encoding) -> Result<(), FileError> {
    use std::io::{Seek, SeekFrom};
    let len = std::fs::metadata(path)
        .map_err(|e| file_error(path, e))?
        .len();
    let split = if len >= SPLIT_FROM {
        split_point(path, encoding, len)?
    } else {
        None
    };
    let has_content = match split {
        None => has_content(path, Transcoder::open(path, encoding)?)?,
        Some((mid, codec)) => {
            let (first, second) = std::thread::scope(|s| {
                let second = s.spawn(|| -> Result<bool, FileError> {
                    let mut f = open_file(path)?;
                    f.seek(SeekFrom::Start(mid))
                        .map_err(|e| file_error(path, e))?;
                    has_content(path, Transcoder::resume(f, codec, encoding, mid))
                });
                let first = open_file(path)
                    .and_then(|f| has_content(path, Transcoder::new(f.take(mid), encoding)));
                (first, second.join())
            });
            // The first problem in file order is the one reported.
            let first = first?;
            let second = second.unwrap_or_else(|_| {
                Err(FileError::Malformed {
                    format: "text",
                    reason: "the encoding check failed unexpectedly".into(),
                })
            })?;
            first || second
        }
    };
    if has_content {
        Ok(())
    } else {
        Err(FileError::Empty)
    }
}

/// Where to split `path` for a parallel check: just after the first line feed from the middle on,
/// with the codec in force there. `None` for UTF-16 or when no line feed is near the middle.
fn split_point(
    path: &Path,
    encoding: Encoding,
    len: u64,
) -> Result<Option<(u64, &'static encoding_rs::Encoding)>, FileError> {
    use std::io::{Seek, SeekFrom};
    let mut f = open_file(path)?;
    let mut head = [0u8; 3];
    let n = read_retrying(&mut f, &mut head).map_err(|e| file_error(path, e))?;
    let codec = match &head[..n] {
        [0xFF, 0xFE, ..] | [0xFE, 0xFF, ..] => return Ok(None),
        [0xEF, 0xBB, 0xBF] => encoding_rs::UTF_8,
        _ => encoding.codec(),
    };
    let middle = len / 2;
    f.seek(SeekFrom::Start(middle))
        .map_err(|e| file_error(path, e))?;
    let mut window = vec![0u8; CHUNK];
    let n = read_retrying(&mut f, &mut window).map_err(|e| file_error(path, e))?;
    Ok(window[..n]
        .iter()
        .position(|b| *b == b'\n')
        .map(|i| (middle + i as u64 + 1, codec)))
}

/// Decodes all of `text`; whether it holds anything besides whitespace.
fn has_content<R: Read>(path: &Path, mut text: Transcoder<R>) -> Result<bool, FileError> {
    let mut has_content = false;
    loop {
        let chunk = text.fill_buf().map_err(|e| file_error(path, e))?;
        if chunk.is_empty() {
            return Ok(has_content);
        }
        if !has_content {
            has_content = chunk
                .iter()
                .any(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
        }
        let n = chunk.len();
        text.consume(n);
    }
}

/// Maps an offset in the UTF-8 text produced by a [`Transcoder`] back to the offset in the source
/// file (they differ for GB18030 text and after a BOM): the source offset of the character that
/// starts there. Only used to report errors, so it simply decodes the file again up to that point:
/// whole chunks while the target is out of reach, then one byte at a time, because encoding_rs
/// does not say which input produced which output within a call.
pub(super) fn source_offset(path: &Path, encoding: Encoding, utf8_offset: u64) -> u64 {
    let Ok(mut file) = File::open(path) else {
        return utf8_offset;
    };
    let mut input = vec![0u8; CHUNK];
    // No UTF-8 output is more than 3 times its GB18030 or UTF-16 input; the slack avoids OutputFull.
    let mut output = vec![0u8; CHUNK * 3 + 16];
    let Ok(mut len) = read_retrying(&mut file, &mut input) else {
        return utf8_offset;
    };
    // The BOM is sniffed by hand so that the decoder's output starts exactly at the first character.
    let (codec, bom) =
        encoding_rs::Encoding::for_bom(&input[..len]).unwrap_or((encoding.codec(), 0));
    let mut decoder = codec.new_decoder_without_bom_handling();
    let mut pos = bom;
    let mut base: u64 = 0;
    let mut total: u64 = 0;
    let mut char_start: Option<u64> = Some(bom as u64);
    if utf8_offset == 0 {
        return bom as u64;
    }
    loop {
        if pos == len {
            base += len as u64;
            pos = 0;
            len = match read_retrying(&mut file, &mut input) {
                Ok(0) | Err(_) => return base,
                Ok(n) => n,
            };
        }
        let remaining = utf8_offset - total;
        if remaining > 3 * (len - pos) as u64 + 8 {
            let (_, read, written) =
                decoder.decode_to_utf8_without_replacement(&input[pos..len], &mut output, false);
            pos += read;
            total += written as u64;
            // A character may be left half-decoded at the end of the chunk.
            char_start = None;
            continue;
        }
        let at = base + pos as u64;
        let (_, read, written) =
            decoder.decode_to_utf8_without_replacement(&input[pos..=pos], &mut output, false);
        pos += read.max(1);
        if written > 0 {
            if total + written as u64 > utf8_offset {
                // The offset falls inside this character: report where it starts.
                return char_start.unwrap_or(at);
            }
            total += written as u64;
            char_start = Some(at + 1);
            if total == utf8_offset {
                return at + 1;
            }
        }
    }
}

fn read_retrying(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// What a background decoder thread sends: a record, or word that it finished normally.
enum Message {
    Item(Result<RawRecord, RecordError>),
    Done,
}

/// Handle given to a background decoder: sends records to the consumer, bounded so that a slow
/// consumer holds the producer back instead of letting records pile up in memory.
pub(super) struct RecordSender(mpsc::SyncSender<Message>);

impl RecordSender {
    /// Sends one record; `false` means the consumer is gone and the producer should stop.
    pub(super) fn send(&self, item: Result<RawRecord, RecordError>) -> bool {
        self.0.send(Message::Item(item)).is_ok()
    }
}

/// Runs `produce` on a named background thread and returns its records as a stream.
///
/// For parsers that own their input and cannot be paused between records (serde_json over an
/// array, calamine's cell reader borrowing its workbook). If the thread dies without finishing,
/// the stream ends with a record error at `last_location` instead of silently stopping short.
pub(super) fn spawn_records<F>(
    path: &Path,
    thread_name: &str,
    last_location: Location,
    produce: F,
) -> Result<Records, FileError>
where
    F: FnOnce(&RecordSender) + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1024);
    std::thread::Builder::new()
        .name(thread_name.to_string())
        .spawn(move || {
            let sender = RecordSender(tx);
            produce(&sender);
            // Ignored: the consumer may already be gone, which is fine.
            let _ = sender.0.send(Message::Done);
        })
        .map_err(|source| FileError::Io {
            path: path.display().to_string(),
            source,
        })?;
    Ok(Box::new(Received {
        rx,
        done: false,
        last_location,
    }))
}

struct Received {
    rx: mpsc::Receiver<Message>,
    done: bool,
    last_location: Location,
}

impl super::RecordStream for Received {}

impl Iterator for Received {
    type Item = Result<RawRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.rx.recv() {
            Ok(Message::Item(item)) => {
                match &item {
                    Ok(r) => self.last_location = r.location.clone(),
                    Err(e) => self.last_location = e.location.clone(),
                }
                Some(item)
            }
            Ok(Message::Done) => {
                self.done = true;
                None
            }
            Err(mpsc::RecvError) => {
                self.done = true;
                Some(Err(RecordError {
                    location: self.last_location.clone(),
                    reason: "the decoder stopped unexpectedly after this point; the rest of the \
                             file was not read"
                        .to_string(),
                    excerpt: None,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::test_support::file_with;

    fn read_all(bytes: &[u8], enc: Encoding) -> io::Result<String> {
        let mut s = String::new();
        Transcoder::new(bytes, enc).read_to_string(&mut s)?;
        Ok(s)
    }

    #[test]
    fn parse_and_name() {
        assert_eq!(Encoding::parse("UTF-8"), Some(Encoding::Utf8));
        assert_eq!(Encoding::parse("utf8"), Some(Encoding::Utf8));
        assert_eq!(Encoding::parse("Gb18030"), Some(Encoding::Gb18030));
        assert_eq!(Encoding::parse("GBK"), Some(Encoding::Gbk));
        assert_eq!(Encoding::parse("latin1"), None);
        assert_eq!(Encoding::Gbk.name(), "GBK");
    }

    #[test]
    fn decodes_gb18030_and_boms() {
        let (gb, _, _) = encoding_rs::GB18030.encode("案件编号,金额\n行政处罚,1\n");
        assert_eq!(
            read_all(&gb, Encoding::Gb18030).unwrap(),
            "案件编号,金额\n行政处罚,1\n"
        );
        assert_eq!(
            read_all(&gb, Encoding::Gbk).unwrap(),
            "案件编号,金额\n行政处罚,1\n"
        );
        // A UTF-8 BOM wins over a declared GB18030 and is removed.
        let utf8 = [b"\xEF\xBB\xBF".as_slice(), "名称".as_bytes()].concat();
        assert_eq!(read_all(&utf8, Encoding::Gb18030).unwrap(), "名称");
        // So does a UTF-16LE BOM.
        let utf16: Vec<u8> = [0xFF, 0xFE, b'a', 0, b'b', 0].to_vec();
        assert_eq!(read_all(&utf16, Encoding::Utf8).unwrap(), "ab");
    }

    #[test]
    fn long_input_crosses_chunks() {
        let text = "处罚决定书".repeat(50_000);
        let (gb, _, _) = encoding_rs::GB18030.encode(&text);
        assert_eq!(read_all(&gb, Encoding::Gb18030).unwrap(), text);
    }

    #[test]
    fn malformed_gb18030_offset() {
        let text = "甲".repeat(617);
        let (gb, _, _) = encoding_rs::GB18030.encode(&text);
        assert_eq!(gb.len(), 1234);
        let mut bytes = gb.into_owned();
        bytes.push(0xFF);
        bytes.extend_from_slice(b"tail");
        let err = read_all(&bytes, Encoding::Gb18030).unwrap_err();
        assert_eq!(
            decode_error(&err),
            Some(&DecodeError {
                encoding: "GB18030",
                offset: 1234
            })
        );
        let f = file_with(&bytes);
        match validate(f.path(), Encoding::Gbk) {
            Err(FileError::Encoding {
                encoding: "GBK",
                offset: 1234,
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A file large enough to be checked in two halves: lines of GB18030 text.
    fn big_gb18030() -> Vec<u8> {
        let line = "甲乙丙丁,戊己庚辛,壬癸\n".repeat(1000);
        let (gb, _, _) = encoding_rs::GB18030.encode(&line);
        let mut bytes = Vec::new();
        while (bytes.len() as u64) < SPLIT_FROM + 4096 {
            bytes.extend_from_slice(&gb);
        }
        bytes
    }

    #[test]
    fn split_check_reports_the_first_bad_byte_in_either_half() {
        let good = big_gb18030();
        let len = good.len() as u64;
        let (mid, _) = split_point(file_with(&good).path(), Encoding::Gb18030, len)
            .unwrap()
            .expect("a large file is split");
        assert!(mid > len / 2 && good[mid as usize - 1] == b'\n');
        assert!(validate(file_with(&good).path(), Encoding::Gb18030).is_ok());

        // 0xFF is never valid in GB18030; a lead byte cut off by the line feed is not either.
        // Inserted after an ASCII byte, so that it cannot merge with the character before it.
        let after_ascii = |from: usize| (from..).find(|i| good[*i] < 0x80).unwrap() + 1;
        for (start, bad) in [
            (after_ascii(100), 0xFFu8),
            (after_ascii(mid as usize + 7), 0xFF),
            (mid as usize - 1, 0x81),
            (after_ascii(good.len() - 40), 0xFF),
        ] {
            let mut bytes = good.clone();
            bytes.insert(start, bad);
            let one_pass = read_all(&bytes, Encoding::Gb18030).unwrap_err();
            assert_eq!(
                decode_error(&one_pass).map(|e| e.offset),
                Some(start as u64)
            );
            match validate(file_with(&bytes).path(), Encoding::Gb18030) {
                Err(FileError::Encoding { offset, .. }) => {
                    assert_eq!(offset, start as u64, "bad byte inserted at {start}")
                }
                other => panic!("bad byte at {start}: unexpected {other:?}"),
            }
        }
        // Two bad bytes: the earlier one is reported.
        let mut bytes = good.clone();
        let late = (mid as usize + 100..).find(|i| bytes[*i] < 0x80).unwrap() + 1;
        bytes.insert(late, 0xFF);
        let early = (200..).find(|i| bytes[*i] < 0x80).unwrap() + 1;
        bytes.insert(early, 0xFF);
        match validate(file_with(&bytes).path(), Encoding::Gb18030) {
            Err(FileError::Encoding { offset, .. }) => assert_eq!(offset, early as u64),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn malformed_utf8_offset_across_chunk_boundary() {
        // The bad byte sits past the first 64 KiB chunk; a split multi-byte char precedes it.
        let mut bytes = vec![b'a'; CHUNK - 1];
        bytes.extend_from_slice("中".as_bytes());
        bytes.extend_from_slice(b"xy");
        let bad_at = bytes.len() as u64;
        bytes.push(0xC3);
        bytes.push(b'(');
        let f = file_with(&bytes);
        match validate(f.path(), Encoding::Utf8) {
            Err(FileError::Encoding {
                encoding: "UTF-8",
                offset,
            }) => assert_eq!(offset, bad_at),
            other => panic!("unexpected {other:?}"),
        }
        // A truncated sequence at the very end is malformed too.
        let f = file_with(b"ab\xE4\xB8");
        match validate(f.path(), Encoding::Utf8) {
            Err(FileError::Encoding { offset: 2, .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn empty_and_blank_files() {
        for bytes in [&b""[..], b"\xEF\xBB\xBF", b" \r\n\t\n"] {
            let f = file_with(bytes);
            assert!(matches!(
                validate(f.path(), Encoding::Utf8),
                Err(FileError::Empty)
            ));
        }
        let f = file_with(b"x");
        assert!(validate(f.path(), Encoding::Utf8).is_ok());
        assert!(matches!(
            validate(Path::new("/nonexistent/file.csv"), Encoding::Utf8),
            Err(FileError::Io { .. })
        ));
    }

    #[test]
    fn maps_utf8_offsets_back_to_source() {
        let (gb, _, _) = encoding_rs::GB18030.encode("甲乙<x>");
        let f = file_with(&gb);
        // "甲乙" is 6 bytes of UTF-8 and 4 bytes of GB18030.
        assert_eq!(source_offset(f.path(), Encoding::Gb18030, 6), 4);
        let f = file_with(b"\xEF\xBB\xBF<a/>");
        assert_eq!(source_offset(f.path(), Encoding::Utf8, 1), 4);
        assert_eq!(source_offset(f.path(), Encoding::Utf8, 0), 3);
        // Far past the first chunk, through the bulk path.
        let text = format!("{}<x>", "处罚".repeat(100_000));
        let (gb, _, _) = encoding_rs::GB18030.encode(&text);
        let f = file_with(&gb);
        assert_eq!(source_offset(f.path(), Encoding::Gb18030, 600_000), 400_000);
        // Inside a character: its start.
        assert_eq!(source_offset(f.path(), Encoding::Gb18030, 599_999), 399_998);
    }
}
