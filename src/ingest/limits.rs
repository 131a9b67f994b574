//! Decoding limits (`[ingest.limits]`): how large a file, a record, a field, an XML tree or an
//! XLSX archive may be, and the memory and CPU a decode may use. Each limit is checked where the
//! decoder meets it, and a file or record that breaks one is refused with the limit's key, its
//! value and what was found, so an operator knows what to raise if the file is genuine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

/// The validated limits of one decode. Sizes are in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest source file, unless its adapter has its own limit (`file_mib`).
    pub file_bytes: u64,
    /// Per-adapter file limits (`file_mib_by_adapter`), by adapter name.
    pub file_bytes_by_adapter: BTreeMap<String, u64>,
    /// Deepest XML element nesting (`xml_depth`).
    pub xml_depth: usize,
    /// Longest text of one field (`field_kib`), in any format: as it stands in the file (XML
    /// entities and JSON escapes count as written), and once decoded.
    pub field_bytes: u64,
    /// Longest CSV record (`csv_record_kib`), quoted line breaks included.
    pub csv_record_bytes: u64,
    /// Longest JSON Lines line (`json_line_kib`).
    pub json_line_bytes: u64,
    /// Largest total uncompressed size of an XLSX archive's entries (`xlsx_uncompressed_mib`).
    pub xlsx_uncompressed_bytes: u64,
    /// Largest uncompressed-to-compressed ratio of one XLSX entry (`xlsx_ratio`).
    pub xlsx_ratio: u64,
    /// Most entries in an XLSX archive (`xlsx_entries`).
    pub xlsx_entries: u64,
    /// Most shared strings an XLSX workbook may declare or hold (`xlsx_shared_strings`).
    pub xlsx_shared_strings: u64,
    /// Memory ceiling of one decoding process (`decode_memory_mib`): its data segment (heap,
    /// anonymous mappings, thread stacks; not the executable's own pages).
    pub decode_memory_bytes: u64,
    /// CPU time of one decoding process (`decode_cpu_secs`).
    pub decode_cpu_secs: u64,
    /// How much of one raw value quarantine keeps (`quarantine_raw_kib`); longer values keep
    /// their first bytes plus their full length and SHA-256.
    pub quarantine_raw_bytes: u64,
    /// Largest document an adapter record attaches or a report submission carries
    /// (`document_mib`).
    pub document_bytes: u64,
    /// Most documents one record may name (`documents_per_record`).
    pub documents_per_record: u64,
    /// Most documents one report submission may carry (`documents_per_submission`).
    pub documents_per_submission: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            file_bytes: 1024 * MIB,
            file_bytes_by_adapter: BTreeMap::new(),
            xml_depth: 64,
            field_bytes: 64 * KIB,
            csv_record_bytes: 1024 * KIB,
            json_line_bytes: 1024 * KIB,
            xlsx_uncompressed_bytes: 256 * MIB,
            xlsx_ratio: 200,
            xlsx_entries: 1000,
            xlsx_shared_strings: 1_000_000,
            decode_memory_bytes: 512 * MIB,
            decode_cpu_secs: 600,
            quarantine_raw_bytes: 4 * KIB,
            document_bytes: 32 * MIB,
            documents_per_record: 20,
            documents_per_submission: 200,
        }
    }
}

impl Limits {
    /// The file size limit that applies to `adapter`'s files.
    pub fn file_bytes_for(&self, adapter: &str) -> u64 {
        self.file_bytes_by_adapter
            .get(adapter)
            .copied()
            .unwrap_or(self.file_bytes)
    }
}

/// A broken limit: what was found, where, and which setting it broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error(
    "{found}, over the limit {key} = {value} ([ingest.limits]; raise it there if the file is genuine)"
)]
pub struct LimitError {
    /// The `[ingest.limits]` key.
    pub key: String,
    /// Its value as configured (with its unit).
    pub value: String,
    /// What was found and where (`element nesting reaches depth 65 at byte offset 812`).
    pub found: String,
}

impl LimitError {
    /// A broken limit `key` (configured as `value`): `found` says what and where.
    pub fn new(key: &str, value: impl std::fmt::Display, found: impl Into<String>) -> Self {
        LimitError {
            key: key.to_string(),
            value: value.to_string(),
            found: found.into(),
        }
    }
}

/// A byte size as an operator reads it: `1,048,576 bytes (1 MiB)`.
pub fn bytes_shown(n: u64) -> String {
    let grouped = group_digits(n);
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{grouped} bytes ({} MiB)", n / MIB)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{grouped} bytes ({} KiB)", n / KIB)
    } else {
        format!("{grouped} bytes")
    }
}

fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `[ingest.limits]` as written: every key optional, sizes in the unit their name says.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    file_mib: Option<u64>,
    #[serde(default)]
    file_mib_by_adapter: BTreeMap<String, u64>,
    xml_depth: Option<u64>,
    field_kib: Option<u64>,
    csv_record_kib: Option<u64>,
    json_line_kib: Option<u64>,
    xlsx_uncompressed_mib: Option<u64>,
    xlsx_ratio: Option<u64>,
    xlsx_entries: Option<u64>,
    xlsx_shared_strings: Option<u64>,
    decode_memory_mib: Option<u64>,
    decode_cpu_secs: Option<u64>,
    quarantine_raw_kib: Option<u64>,
    document_mib: Option<u64>,
    documents_per_record: Option<u64>,
    documents_per_submission: Option<u64>,
}

impl RawLimits {
    /// Validates every key, reporting each problem through `problem(key, reason)`; `adapters`
    /// are the configured adapter names, which `file_mib_by_adapter` may name.
    pub(crate) fn validate(
        self,
        adapters: &[&str],
        problem: &mut dyn FnMut(&str, String),
    ) -> Limits {
        let d = Limits::default();
        let mut by_adapter = BTreeMap::new();
        for (name, mib) in &self.file_mib_by_adapter {
            let key = format!("file_mib_by_adapter.{name}");
            if !adapters.contains(&name.as_str()) {
                problem(
                    &format!("ingest.limits.{key}"),
                    format!(
                        "no adapter is named \"{name}\" (the adapters are: {})",
                        adapters.join(", ")
                    ),
                );
                continue;
            }
            let bytes = scaled(problem, &key, Some(*mib), 1..=1_048_576, d.file_bytes, MIB);
            by_adapter.insert(name.clone(), bytes);
        }
        let mut check = |key: &str, v: Option<u64>, range, default: u64, unit: u64| {
            scaled(problem, key, v, range, default, unit)
        };
        Limits {
            file_bytes: check("file_mib", self.file_mib, 1..=1_048_576, d.file_bytes, MIB),
            file_bytes_by_adapter: by_adapter,
            xml_depth: check("xml_depth", self.xml_depth, 2..=4096, d.xml_depth as u64, 1) as usize,
            field_bytes: check(
                "field_kib",
                self.field_kib,
                1..=1_048_576,
                d.field_bytes,
                KIB,
            ),
            csv_record_bytes: check(
                "csv_record_kib",
                self.csv_record_kib,
                1..=1_048_576,
                d.csv_record_bytes,
                KIB,
            ),
            json_line_bytes: check(
                "json_line_kib",
                self.json_line_kib,
                1..=1_048_576,
                d.json_line_bytes,
                KIB,
            ),
            xlsx_uncompressed_bytes: check(
                "xlsx_uncompressed_mib",
                self.xlsx_uncompressed_mib,
                1..=65_536,
                d.xlsx_uncompressed_bytes,
                MIB,
            ),
            xlsx_ratio: check("xlsx_ratio", self.xlsx_ratio, 2..=100_000, d.xlsx_ratio, 1),
            xlsx_entries: check(
                "xlsx_entries",
                self.xlsx_entries,
                4..=1_000_000,
                d.xlsx_entries,
                1,
            ),
            xlsx_shared_strings: check(
                "xlsx_shared_strings",
                self.xlsx_shared_strings,
                1..=100_000_000,
                d.xlsx_shared_strings,
                1,
            ),
            decode_memory_bytes: check(
                "decode_memory_mib",
                self.decode_memory_mib,
                64..=65_536,
                d.decode_memory_bytes,
                MIB,
            ),
            decode_cpu_secs: check(
                "decode_cpu_secs",
                self.decode_cpu_secs,
                1..=86_400,
                d.decode_cpu_secs,
                1,
            ),
            quarantine_raw_bytes: check(
                "quarantine_raw_kib",
                self.quarantine_raw_kib,
                1..=1024,
                d.quarantine_raw_bytes,
                KIB,
            ),
            document_bytes: check(
                "document_mib",
                self.document_mib,
                1..=1024,
                d.document_bytes,
                MIB,
            ),
            documents_per_record: check(
                "documents_per_record",
                self.documents_per_record,
                1..=1000,
                d.documents_per_record,
                1,
            ),
            documents_per_submission: check(
                "documents_per_submission",
                self.documents_per_submission,
                1..=10_000,
                d.documents_per_submission,
                1,
            ),
        }
    }
}

/// `v` (or `default` when absent) times `unit`, after checking `v` lies in `range`.
fn scaled(
    problem: &mut dyn FnMut(&str, String),
    key: &str,
    v: Option<u64>,
    range: std::ops::RangeInclusive<u64>,
    default: u64,
    unit: u64,
) -> u64 {
    match v {
        None => default,
        Some(v) if range.contains(&v) => v * unit,
        Some(v) => {
            problem(
                &format!("ingest.limits.{key}"),
                format!("{v} is outside {}..={}", range.start(), range.end()),
            );
            default
        }
    }
}
