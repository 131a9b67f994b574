//! The decoding process: the gateway decodes every source file in a child process (`xianjie
//! decode-worker`, the same executable) that the system holds to a memory ceiling (its data
//! segment: heap, anonymous mappings, stacks) and a CPU time limit. A file built to exhaust memory, to crash a parsing library or to
//! spin makes that process fail, never the gateway: the gateway reports why and goes on.
//!
//! Protocol: the gateway writes one JSON [`Request`] on the child's stdin and closes it. The child
//! answers on stdout with frames: one tag byte, a little-endian `u32` payload length, the payload.
//! `O` (opened) or `F` (refused: peak memory `u64` + the error as JSON) comes first; then `R`
//! (record) and `E` (record error) frames; `D` (done: peak memory `u64`) ends a complete stream.
//! A child that exits before `D` failed; its exit status and the end of its stderr say why.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    Column, Cut, Excerpt, FileError, Format, LimitError, Limits, Location, RawRecord, RecordError,
    RecordStream, Records, Refusal, bytes_shown,
};

/// The hidden subcommand that runs a decoding process.
pub const SUBCOMMAND: &str = "decode-worker";

/// What the gateway asks of a decoding process.
#[derive(Serialize, Deserialize)]
struct Request {
    path: PathBuf,
    format: Format,
    columns: Vec<Column>,
    limits: Limits,
}

/// Largest request the child reads (column names and limits; a few KiB in practice).
const MAX_REQUEST: u64 = 1024 * 1024;

/// How much of the child's stderr is kept to explain a failure.
const STDERR_TAIL: usize = 4096;

/// A [`FileError`] as it crosses the process boundary.
#[derive(Serialize, Deserialize)]
enum WireError {
    Io { path: String, message: String },
    Empty,
    Encoding { encoding: String, offset: u64 },
    MissingColumns(Vec<String>),
    XmlDoctype { offset: u64 },
    Malformed { format: String, reason: String },
    Limit(LimitError),
    Decoder(String),
}

/// The static names the decoders use, so that a refusal reads the same from either side.
fn static_name(name: &str) -> &'static str {
    const NAMES: &[&str] = &[
        "UTF-8", "GB18030", "GBK", "UTF-16LE", "UTF-16BE", "CSV", "XML", "JSON", "XLSX", "text",
    ];
    NAMES
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or("the declared encoding")
}

impl From<&FileError> for WireError {
    fn from(e: &FileError) -> Self {
        match e {
            FileError::Io { path, source } => WireError::Io {
                path: path.clone(),
                message: source.to_string(),
            },
            FileError::Empty => WireError::Empty,
            FileError::Encoding { encoding, offset } => WireError::Encoding {
                encoding: (*encoding).to_string(),
                offset: *offset,
            },
            FileError::MissingColumns(c) => WireError::MissingColumns(c.clone()),
            FileError::XmlDoctype { offset } => WireError::XmlDoctype { offset: *offset },
            FileError::Malformed { format, reason } => WireError::Malformed {
                format: (*format).to_string(),
                reason: reason.clone(),
            },
            FileError::Limit(l) => WireError::Limit(l.clone()),
            FileError::Decoder(m) => WireError::Decoder(m.clone()),
        }
    }
}

impl From<WireError> for FileError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Io { path, message } => FileError::Io {
                path,
                source: io::Error::other(message),
            },
            WireError::Empty => FileError::Empty,
            WireError::Encoding { encoding, offset } => FileError::Encoding {
                encoding: static_name(&encoding),
                offset,
            },
            WireError::MissingColumns(c) => FileError::MissingColumns(c),
            WireError::XmlDoctype { offset } => FileError::XmlDoctype { offset },
            WireError::Malformed { format, reason } => FileError::Malformed {
                format: static_name(&format),
                reason,
            },
            WireError::Limit(l) => FileError::Limit(l),
            WireError::Decoder(m) => FileError::Decoder(m),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Frames

const OPENED: u8 = b'O';
const REFUSED: u8 = b'F';
const RECORD: u8 = b'R';
const RECORD_ERROR: u8 = b'E';
const DONE: u8 = b'D';

/// Appends frame payload items.
struct Payload(Vec<u8>);

impl Payload {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(b);
    }

    fn location(&mut self, l: &Location) {
        match l {
            Location::Row(n) => {
                self.0.push(0);
                self.u64(*n);
            }
            Location::Line(n) => {
                self.0.push(1);
                self.u64(*n);
            }
            Location::Index(n) => {
                self.0.push(2);
                self.u64(*n);
            }
            Location::Element(p) => {
                self.0.push(3);
                self.bytes(p.as_bytes());
            }
        }
    }
}

/// Reads frame payload items; every read is checked against the payload's end.
struct Fields<'a>(&'a [u8]);

type Wire<T> = Result<T, String>;

impl Fields<'_> {
    fn take(&mut self, n: usize) -> Wire<&[u8]> {
        if self.0.len() < n {
            return Err("a frame ended early".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Wire<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Wire<u32> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Wire<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn text(&mut self) -> Wire<String> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "a frame held text that is not UTF-8".into())
    }

    fn location(&mut self) -> Wire<Location> {
        Ok(match self.u8()? {
            0 => Location::Row(self.u64()?),
            1 => Location::Line(self.u64()?),
            2 => Location::Index(self.u64()?),
            3 => Location::Element(self.text()?),
            t => return Err(format!("unknown location kind {t}")),
        })
    }

    fn digest(&mut self) -> Wire<[u8; 32]> {
        let mut d = [0u8; 32];
        d.copy_from_slice(self.take(32)?);
        Ok(d)
    }
}

fn encode_record(r: &RawRecord) -> Vec<u8> {
    let mut p = Payload(Vec::with_capacity(256));
    p.location(&r.location);
    p.u32(u32::try_from(r.width()).unwrap_or(u32::MAX));
    for v in r.values() {
        match v {
            None => p.u32(u32::MAX),
            Some(s) => p.bytes(s.as_bytes()),
        }
    }
    p.u32(u32::try_from(r.cut.len()).unwrap_or(u32::MAX));
    for c in &r.cut {
        p.u32(u32::try_from(c.column).unwrap_or(u32::MAX));
        p.u64(c.bytes);
        p.0.extend_from_slice(&c.sha256);
    }
    p.0
}

fn decode_record(b: &[u8], width: usize) -> Wire<RawRecord> {
    let mut f = Fields(b);
    let location = f.location()?;
    let n = f.u32()? as usize;
    if n != width {
        return Err(format!("a record had {n} values for {width} columns"));
    }
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        let len = f.u32()?;
        values.push(if len == u32::MAX {
            None
        } else {
            let raw = f.take(len as usize)?;
            Some(String::from_utf8(raw.to_vec()).map_err(|_| "a value was not UTF-8")?)
        });
    }
    let cuts = f.u32()? as usize;
    let mut cut = Vec::with_capacity(cuts.min(n));
    for _ in 0..cuts {
        let column = f.u32()? as usize;
        if column >= n {
            return Err(format!("a cut named column {column} of {n}"));
        }
        cut.push(Cut {
            column,
            bytes: f.u64()?,
            sha256: f.digest()?,
        });
    }
    Ok(RawRecord::new(location, values, cut))
}

fn encode_record_error(e: &RecordError) -> Vec<u8> {
    let mut p = Payload(Vec::with_capacity(128));
    p.location(&e.location);
    p.bytes(e.reason.as_bytes());
    match &e.excerpt {
        None => p.0.push(0),
        Some(x) => {
            p.0.push(1);
            p.bytes(x.head.as_bytes());
            p.u64(x.bytes);
            p.0.extend_from_slice(&x.sha256);
        }
    }
    p.0
}

fn decode_record_error(b: &[u8]) -> Wire<RecordError> {
    let mut f = Fields(b);
    let location = f.location()?;
    let reason = f.text()?;
    let excerpt = match f.u8()? {
        0 => None,
        _ => Some(Excerpt {
            head: f.text()?,
            bytes: f.u64()?,
            sha256: f.digest()?,
        }),
    };
    Ok(RecordError {
        location,
        reason,
        excerpt,
    })
}

fn write_frame(out: &mut impl Write, tag: u8, payload: &[u8]) -> io::Result<()> {
    out.write_all(&[tag])?;
    out.write_all(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    )?;
    out.write_all(payload)
}

/// Reads one frame; `Ok(None)` at a clean end of stream. A payload over `max` is refused
/// before it is read, so the gateway never holds more than one bounded frame.
fn read_frame(input: &mut impl Read, max: usize) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match input.read_exact(&mut head[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    input.read_exact(&mut head[1..])?;
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message of {len} bytes, over the {max} allowed"),
        ));
    }
    let mut payload = vec![0u8; len];
    input.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

// ---------------------------------------------------------------------------------------------
// The child

/// Runs the decoding process: reads the request from stdin, holds itself to its limits, decodes
/// and writes frames to stdout. Returns the process exit code.
pub fn serve() -> i32 {
    use rlimit::Resource;
    // Before reading anything: no core dumps of source data, no files written.
    let _ = Resource::CORE.set(0, 0);
    let _ = Resource::FSIZE.set(0, 0);
    let mut raw = Vec::new();
    if let Err(e) = io::stdin().take(MAX_REQUEST).read_to_end(&mut raw) {
        eprintln!("decode-worker: cannot read the request: {e}");
        return 2;
    }
    let req: Request = match serde_json::from_slice(&raw) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("decode-worker: bad request: {e}");
            return 2;
        }
    };
    drop(raw);
    let cpu = req.limits.decode_cpu_secs;
    if let Err(e) = Resource::CPU.set(cpu, cpu.saturating_add(2)) {
        eprintln!("decode-worker: cannot set the CPU time limit: {e}");
        return 2;
    }
    // The data segment limit counts what decoding can grow: heap, anonymous mappings and thread
    // stacks, but not the executable's own (file-backed, shared) pages, so the ceiling means the
    // same for a debug and a release build.
    let memory = req.limits.decode_memory_bytes;
    if let Err(e) = Resource::DATA.set(memory, memory) {
        eprintln!("decode-worker: cannot set the memory ceiling: {e}");
        return 2;
    }
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    match run(&req, &mut out).and_then(|()| out.flush()) {
        Ok(()) => 0,
        // The gateway stopped reading (it shuts down, or gave up on this file).
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("decode-worker: cannot write: {e}");
            3
        }
    }
}

fn run(req: &Request, out: &mut impl Write) -> io::Result<()> {
    let records = match super::open(&req.path, &req.format, &req.columns, &req.limits) {
        Ok(r) => r,
        Err(e) => {
            let mut p = Payload(Vec::new());
            p.u64(peak_rss().unwrap_or(0));
            p.0.extend_from_slice(&serde_json::to_vec(&WireError::from(&e)).unwrap_or_default());
            return write_frame(out, REFUSED, &p.0);
        }
    };
    write_frame(out, OPENED, &[])?;
    for item in records {
        match item {
            Ok(r) => write_frame(out, RECORD, &encode_record(&r))?,
            Err(e) => write_frame(out, RECORD_ERROR, &encode_record_error(&e))?,
        }
    }
    let mut p = Payload(Vec::new());
    p.u64(peak_rss().unwrap_or(0));
    write_frame(out, DONE, &p.0)
}

/// This process's peak resident memory (`VmHWM`) in bytes.
pub fn peak_rss() -> Option<u64> {
    status_kib(
        &std::fs::read_to_string("/proc/self/status").ok()?,
        "VmHWM:",
    )
    .map(|k| k * 1024)
}

/// A `kB` figure of a `/proc/<pid>/status` text.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------------
// The gateway's side

/// What the frame reader hands the stream, frames already parsed.
enum Message {
    /// The file is open; records follow.
    Opened,
    /// The file was refused (with the child's peak memory).
    Refused(Option<u64>, FileError),
    /// A record or a record error.
    Item(Result<RawRecord, RecordError>),
    /// The stream is complete (with the child's peak memory).
    Done(Option<u64>),
    /// The child closed stdout (it exited) without a `D` frame, or sent something unreadable.
    Ended(Option<String>),
}

/// Parses one frame.
fn parse_frame(tag: u8, payload: &[u8], width: usize) -> Result<Message, String> {
    Ok(match tag {
        RECORD => Message::Item(Ok(decode_record(payload, width)?)),
        RECORD_ERROR => Message::Item(Err(decode_record_error(payload)?)),
        OPENED => Message::Opened,
        DONE => Message::Done(Fields(payload).u64().ok()),
        REFUSED => {
            let mut f = Fields(payload);
            let peak = f.u64().ok();
            let error = serde_json::from_slice::<WireError>(f.0)
                .map(FileError::from)
                .map_err(|e| format!("unreadable refusal: {e}"))?;
            Message::Refused(peak, error)
        }
        other => return Err(format!("unknown frame {other}")),
    })
}

/// The running child and what it left on stderr.
struct Process {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The thread draining stderr; joined before the tail is read, so nothing is missed.
    keeper: Option<std::thread::JoinHandle<()>>,
    limits: Limits,
}

impl Process {
    /// Stops the child if it still runs and reaps it.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the child to exit and says why it failed, in words an operator can act on.
    fn diagnose(&mut self, protocol: Option<String>) -> FileError {
        use std::os::unix::process::ExitStatusExt;
        if protocol.is_some() {
            let _ = self.child.kill();
        }
        let status = self.child.wait();
        if let Some(k) = self.keeper.take() {
            // The child has exited, so its stderr is closed and the keeper finishes.
            let _ = k.join();
        }
        let tail = self.stderr_tail();
        let memory = LimitError::new(
            "decode_memory_mib",
            bytes_shown(self.limits.decode_memory_bytes),
            "decoding needed more memory",
        );
        if tail.contains("memory allocation of") || tail.contains("capacity overflow") {
            return memory.into();
        }
        let signal = status.as_ref().ok().and_then(|s| s.signal());
        if matches!(signal, Some(24)) || (matches!(signal, Some(9)) && protocol.is_none()) {
            // SIGXCPU at the soft CPU limit, SIGKILL at the hard one.
            return LimitError::new(
                "decode_cpu_secs",
                format!("{} s", self.limits.decode_cpu_secs),
                "decoding used more CPU time",
            )
            .into();
        }
        let how = match (&status, signal) {
            (_, Some(s)) => format!("was stopped by signal {s}"),
            (Ok(s), None) => format!("exited with {s}"),
            (Err(e), None) => format!("could not be waited for: {e}"),
        };
        let mut msg = match protocol {
            Some(p) => {
                format!("the decoding process sent something unreadable ({p}) and was stopped")
            }
            None => format!("the decoding process {how} before it finished"),
        };
        if !tail.is_empty() {
            msg.push_str(": ");
            msg.push_str(&tail);
        }
        FileError::Decoder(msg)
    }

    /// What the child left on stderr (its last few KiB), cleaned for a log line and a `.reason`
    /// file: control characters blanked, at most 300 characters, lines joined.
    fn stderr_tail(&self) -> String {
        let raw = self.stderr.lock().map(|b| b.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&raw);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        lines
            .join(" / ")
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(300)
            .collect()
    }
}

/// Starts a decoding process for `path` and waits for it to open the file.
pub(super) fn spawn(
    exe: &Path,
    path: &Path,
    format: &Format,
    columns: &[Column],
    limits: &Limits,
) -> Result<Records, Refusal> {
    let request = serde_json::to_vec(&Request {
        path: path.to_path_buf(),
        format: format.clone(),
        columns: columns.to_vec(),
        limits: limits.clone(),
    })
    .map_err(|e| FileError::Decoder(format!("cannot describe the file to the decoder: {e}")))?;
    let mut child = Command::new(exe)
        .arg(SUBCOMMAND)
        .env_clear()
        .env("RUST_BACKTRACE", "0")
        // The allocator settings the binary would otherwise re-execute itself to get, and a
        // small arena reservation, which counts against the memory ceiling.
        .env("MIMALLOC_PURGE_DELAY", "0")
        .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
        .env("MIMALLOC_ARENA_RESERVE", "16MiB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            FileError::Decoder(format!(
                "cannot start the decoding process {}: {e}",
                exe.display()
            ))
        })?;
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let kept = Arc::new(Mutex::new(Vec::new()));
    let mut process = Process {
        child,
        stderr: kept.clone(),
        keeper: None,
        limits: limits.clone(),
    };
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (stdin, stdout, stderr) else {
        process.stop();
        return Err(FileError::Decoder("the decoding process has no pipes".into()).into());
    };
    process.keeper = spawn_stderr_keeper(stderr, kept);
    // Written in full before reading: the request is small and the child reads it all first.
    let written = stdin.write_all(&request);
    drop(stdin);
    if let Err(e) = written {
        let err = process.diagnose(None);
        return Err(match err {
            FileError::Decoder(m) => FileError::Decoder(format!("{m} (request not sent: {e})")),
            other => other,
        }
        .into());
    }
    // The largest legitimate frame: every value at the field limit, plus bookkeeping.
    let field = usize::try_from(limits.field_bytes).unwrap_or(usize::MAX);
    let max_frame = (columns.len() + 1)
        .saturating_mul(field.saturating_add(64))
        .saturating_add(1024 * 1024);
    let rx = spawn_frame_reader(stdout, max_frame, columns.len());
    let idle = Duration::from_secs(limits.decode_cpu_secs.max(1));
    let mut stream = WorkerRecords {
        process,
        rx,
        batch: std::collections::VecDeque::new(),
        idle,
        failure: None,
        peak: None,
        done: false,
    };
    match stream.recv() {
        Ok(Message::Opened) => Ok(Box::new(stream)),
        Ok(Message::Refused(peak_rss, error)) => {
            stream.done = true;
            let _ = stream.process.child.wait();
            Err(Refusal { error, peak_rss })
        }
        Ok(_) => {
            stream.done = true;
            Err(stream
                .process
                .diagnose(Some("records before the file was opened".into()))
                .into())
        }
        Err(error) => {
            stream.done = true;
            Err(error.into())
        }
    }
}

/// Keeps the last [`STDERR_TAIL`] bytes of the child's stderr; draining it keeps the child from
/// blocking on a full pipe.
fn spawn_stderr_keeper(
    mut stderr: impl Read + Send + 'static,
    kept: Arc<Mutex<Vec<u8>>>,
) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("decode-stderr".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut k) = kept.lock() {
                    k.extend_from_slice(&buf[..n]);
                    let excess = k.len().saturating_sub(STDERR_TAIL);
                    k.drain(..excess);
                }
            }
        })
        .ok()
}

/// Reads and parses frames on a thread of its own, so that the stream can wait for the next one
/// with a deadline and the parsing runs beside the consumer. Frames go over in batches (as many
/// as have arrived, up to [`BATCH`]), so a busy stream costs one hand-over per batch, not per
/// record; the bounded channel holds the child back when the gateway is busy.
fn spawn_frame_reader(
    stdout: impl Read + Send + 'static,
    max: usize,
    width: usize,
) -> mpsc::Receiver<Vec<Message>> {
    let (tx, rx) = mpsc::sync_channel(8);
    let _ = std::thread::Builder::new()
        .name("decode-frames".into())
        .spawn(move || {
            let mut input = BufReader::with_capacity(64 * 1024, stdout);
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                let msg = match read_frame(&mut input, max) {
                    Ok(Some((tag, payload))) => parse_frame(tag, &payload, width)
                        .unwrap_or_else(|p| Message::Ended(Some(p))),
                    Ok(None) => Message::Ended(None),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Message::Ended(None),
                    Err(e) => Message::Ended(Some(e.to_string())),
                };
                let end = matches!(msg, Message::Ended(_) | Message::Done(_));
                batch.push(msg);
                // Hand over when nothing more has arrived, the batch is full, or it is the end.
                if end || batch.len() >= BATCH || input.buffer().is_empty() {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if tx.send(full).is_err() || end {
                        return;
                    }
                }
            }
        });
    rx
}

/// Most frames handed over at once.
const BATCH: usize = 256;

/// Records as a decoding process sends them.
struct WorkerRecords {
    process: Process,
    rx: mpsc::Receiver<Vec<Message>>,
    /// Messages received and not yet taken.
    batch: std::collections::VecDeque<Message>,
    /// Longest wait for the next frame: a child that neither works (its CPU time is limited)
    /// nor answers is stuck.
    idle: Duration,
    failure: Option<FileError>,
    peak: Option<u64>,
    done: bool,
}

impl WorkerRecords {
    /// The next message, or why there is none.
    fn recv(&mut self) -> Result<Message, FileError> {
        if self.batch.is_empty() {
            match self.rx.recv_timeout(self.idle) {
                Ok(batch) => self.batch.extend(batch),
                Err(e) => return Err(self.lost(e)),
            }
        }
        match self.batch.pop_front() {
            Some(Message::Ended(protocol)) => Err(self.process.diagnose(protocol)),
            Some(m) => Ok(m),
            None => Err(self.process.diagnose(None)),
        }
    }

    /// Why the frame reader is gone or silent.
    fn lost(&mut self, e: mpsc::RecvTimeoutError) -> FileError {
        match e {
            mpsc::RecvTimeoutError::Disconnected => self.process.diagnose(None),
            mpsc::RecvTimeoutError::Timeout => {
                self.process.stop();
                FileError::Decoder(format!(
                    "the decoding process sent nothing for {} s and was stopped",
                    self.idle.as_secs()
                ))
            }
        }
    }

    fn fail(&mut self, e: FileError) -> Option<Result<RawRecord, RecordError>> {
        self.done = true;
        self.failure = Some(e);
        None
    }
}

impl Iterator for WorkerRecords {
    type Item = Result<RawRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.recv() {
            Ok(Message::Item(item)) => Some(item),
            Ok(Message::Done(peak)) => {
                self.done = true;
                self.peak = peak;
                let _ = self.process.child.wait();
                None
            }
            Ok(_) => {
                let e = self
                    .process
                    .diagnose(Some("a second opening or refusal".into()));
                self.fail(e)
            }
            Err(e) => self.fail(e),
        }
    }
}

impl RecordStream for WorkerRecords {
    fn failure(&mut self) -> Option<FileError> {
        self.failure.take()
    }

    fn peak_rss(&self) -> Option<u64> {
        self.peak
    }
}

impl Drop for WorkerRecords {
    fn drop(&mut self) {
        if !self.done {
            // The consumer stopped early (shutdown, store failure): the child is not needed.
            self.process.stop();
        } else {
            let _ = self.process.child.try_wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_errors_cross_the_boundary_unchanged() {
        let r = RawRecord::new(
            Location::Element("/a/b[3]".into()),
            vec![Some("甲乙".into()), None, Some(String::new())],
            vec![Cut {
                column: 2,
                bytes: 70_000,
                sha256: [7; 32],
            }],
        );
        assert_eq!(decode_record(&encode_record(&r), 3).unwrap(), r);
        assert!(decode_record(&encode_record(&r), 4).is_err());
        let e = RecordError {
            location: Location::Row(9),
            reason: "too long".into(),
            excerpt: Some(Excerpt::of("abcdef", 3)),
        };
        assert_eq!(decode_record_error(&encode_record_error(&e)).unwrap(), e);
        // Any truncation of a frame is an error, never a panic.
        let full = encode_record(&r);
        for n in 0..full.len() {
            assert!(decode_record(&full[..n], 3).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn frames_over_the_bound_are_refused_before_they_are_read() {
        let mut buf = Vec::new();
        write_frame(&mut buf, RECORD, &[1, 2, 3]).unwrap();
        write_frame(&mut buf, DONE, &[0; 100]).unwrap();
        let mut input = &buf[..];
        assert_eq!(
            read_frame(&mut input, 10).unwrap(),
            Some((RECORD, vec![1, 2, 3]))
        );
        assert!(read_frame(&mut input, 10).is_err());
        let mut empty: &[u8] = &[];
        assert_eq!(read_frame(&mut empty, 10).unwrap(), None);
    }

    #[test]
    fn file_errors_keep_their_kind_across_the_boundary() {
        let e = FileError::Encoding {
            encoding: "GB18030",
            offset: 12,
        };
        let back: FileError =
            serde_json::from_slice::<WireError>(&serde_json::to_vec(&WireError::from(&e)).unwrap())
                .unwrap()
                .into();
        assert_eq!(back.to_string(), e.to_string());
        let l = FileError::Limit(LimitError::new(
            "xml_depth",
            64,
            "depth 65 at byte offset 9",
        ));
        let back: FileError =
            serde_json::from_slice::<WireError>(&serde_json::to_vec(&WireError::from(&l)).unwrap())
                .unwrap()
                .into();
        assert_eq!(back.to_string(), l.to_string());
    }

    #[test]
    fn proc_status_figures_are_read_in_bytes() {
        let s = "Name:\txianjie\nVmPeak:\t  100 kB\nVmHWM:\t    2048 kB\n";
        assert_eq!(status_kib(s, "VmHWM:"), Some(2048));
        assert_eq!(status_kib(s, "VmRSS:"), None);
        assert!(peak_rss().is_some_and(|b| b > 0));
    }
}
