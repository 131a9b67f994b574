//! Adapter definitions: `adapters/<system>/adapter.toml` parsed (serde, unknown keys refused) and then
//! validated into an [`Adapter`], reporting every problem of every adapter at once with file, key and reason.
//! A new source system is a new folder here, not new code.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::decode::{Column, Encoding, Format};
use crate::model::{MoneyUnit, Target, TargetKind, Uscc};

/// A problem in an adapter definition (or in the adapters directory).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct AdapterError {
    /// The file.
    pub file: String,
    /// The key (dotted) or `-` for the whole file.
    pub key: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdapter {
    name: String,
    system: String,
    #[serde(default)]
    description: Option<String>,
    transport: RawTransport,
    format: RawFormat,
    #[serde(default)]
    units: Vec<RawUnit>,
    fields: BTreeMap<String, RawField>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RawTransport {
    File {
        inbox: Option<String>,
        glob: String,
        schedule: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RawFormat {
    Csv {
        encoding: Option<String>,
        delimiter: Option<String>,
    },
    Xlsx {
        sheet: Option<String>,
    },
    Xml {
        encoding: Option<String>,
        record_path: String,
    },
    Json {
        encoding: Option<String>,
    },
    Jsonl {
        encoding: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnit {
    code: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawField {
    from: Option<OneOrMany>,
    join: Option<Vec<String>>,
    sep: Option<String>,
    #[serde(rename = "const")]
    constant: Option<String>,
    default: Option<String>,
    trim: Option<bool>,
    date: Option<Vec<String>>,
    codes: Option<BTreeMap<String, String>>,
    money: Option<MoneyUnit>,
    split: Option<String>,
    optional: Option<bool>,
}

/// How an adapter receives its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Files dropped into an inbox directory.
    File {
        /// Inbox, relative to the data directory unless absolute.
        inbox: PathBuf,
        /// File-name pattern.
        glob: glob::Pattern,
        /// Cron schedule with seconds (`sec min hour day month weekday`).
        schedule: String,
    },
}

/// Where a field's source text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSource {
    /// The first non-empty of these columns (indexes into [`Adapter::columns`]).
    Columns(Vec<usize>),
    /// The non-empty values of these columns joined with a separator.
    Join(Vec<usize>, String),
    /// A constant.
    Const(String),
}

/// One target field's mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMap {
    /// Target field.
    pub target: Target,
    /// Source.
    pub source: FieldSource,
    /// Trim whitespace (default on).
    pub trim: bool,
    /// Source-level value used when the source is empty (goes through the transforms).
    pub default: Option<String>,
    /// Separator splitting the value into a list (list targets only).
    pub split: Option<String>,
    /// Code table, source code → canonical value.
    pub codes: Option<HashMap<String, String>>,
    /// Accepted date formats (date targets), tried in order.
    pub dates: Vec<String>,
    /// Unit of the source amount (money targets).
    pub money: Option<MoneyUnit>,
}

/// A validated adapter.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// Name (also its folder name).
    pub name: String,
    /// The source system.
    pub system: String,
    /// Its folder.
    pub dir: PathBuf,
    /// Transport.
    pub transport: Transport,
    /// Format.
    pub format: Format,
    /// Units covered, code → name.
    pub units: BTreeMap<Uscc, String>,
    /// Columns read, in the order decoders return their values.
    pub columns: Vec<Column>,
    /// Field mappings.
    pub fields: Vec<FieldMap>,
    /// SHA-256 of the program version and the definition's text: two records with equal values
    /// map to equal cases only under the same fingerprint (see [`Adapter::raw_digest`]).
    pub fingerprint: [u8; 32],
}

struct Errs<'a> {
    file: &'a str,
    list: Vec<AdapterError>,
}

impl Errs<'_> {
    fn push(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.list.push(AdapterError {
            file: self.file.to_string(),
            key: key.into(),
            reason: reason.into(),
        });
    }
}

/// Default inbox of an adapter.
fn default_inbox(name: &str) -> PathBuf {
    PathBuf::from("inbox").join(name)
}

/// Loads every adapter under `dir` (one folder each with an `adapter.toml`). Returns all adapters or
/// every problem found in any of them.
pub fn load_all(dir: &Path) -> Result<Vec<Adapter>, Vec<AdapterError>> {
    let shown = dir.display().to_string();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return Err(vec![AdapterError {
                file: shown,
                key: "-".into(),
                reason: format!("cannot read the adapters directory: {e}"),
            }]);
        }
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("adapter.toml").is_file())
        .collect();
    dirs.sort();
    let mut adapters = Vec::new();
    let mut errors = Vec::new();
    for d in dirs {
        match load(&d) {
            Ok(a) => adapters.push(a),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if adapters.is_empty() && errors.is_empty() {
        errors.push(AdapterError {
            file: shown,
            key: "-".into(),
            reason: "no adapters found (expected <system>/adapter.toml folders)".into(),
        });
    }
    if errors.is_empty() {
        Ok(adapters)
    } else {
        Err(errors)
    }
}

/// Loads and validates one adapter folder.
pub fn load(dir: &Path) -> Result<Adapter, Vec<AdapterError>> {
    let path = dir.join("adapter.toml");
    let file = path.display().to_string();
    let mut errs = Errs {
        file: &file,
        list: Vec::new(),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            errs.push("-", format!("cannot read: {e}"));
            return Err(errs.list);
        }
    };
    let raw: RawAdapter = match toml::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            let key = e
                .span()
                .map(|s| format!("line {}", text[..s.start].matches('\n').count() + 1))
                .unwrap_or("-".into());
            errs.push(key, e.message().to_string());
            return Err(errs.list);
        }
    };
    let adapter = validate(raw, dir, &mut errs);
    match adapter {
        Some(mut a) if errs.list.is_empty() => {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(env!("CARGO_PKG_VERSION").as_bytes());
            h.update([0]);
            h.update(text.as_bytes());
            a.fingerprint = h.finalize().into();
            Ok(a)
        }
        _ => Err(errs.list),
    }
}

fn encoding(v: &Option<String>, key: &str, errs: &mut Errs<'_>) -> Encoding {
    match v.as_deref() {
        None => Encoding::Utf8,
        Some(s) => Encoding::parse(s).unwrap_or_else(|| {
            errs.push(
                key,
                format!("unknown encoding '{s}' (use utf-8, gb18030 or gbk)"),
            );
            Encoding::Utf8
        }),
    }
}

fn validate(raw: RawAdapter, dir: &Path, errs: &mut Errs<'_>) -> Option<Adapter> {
    let _ = raw.description;
    let folder = dir
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if raw.name != folder {
        errs.push(
            "name",
            format!(
                "is '{}' but the folder is '{folder}'; they must be equal",
                raw.name
            ),
        );
    }
    if raw.name.is_empty()
        || !raw
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errs.push("name", "must be lowercase letters, digits and '-'");
    }

    let transport = match raw.transport {
        RawTransport::File {
            inbox,
            glob,
            schedule,
        } => {
            let pattern = glob::Pattern::new(&glob)
                .map_err(|e| {
                    errs.push(
                        "transport.glob",
                        format!("'{glob}' is not a valid pattern: {e}"),
                    )
                })
                .ok();
            let schedule = schedule.unwrap_or_else(|| "0 */5 * * * *".into());
            if tokio_cron_scheduler::Job::new(schedule.as_str(), |_, _| {}).is_err() {
                errs.push(
                    "transport.schedule",
                    format!("'{schedule}' is not a cron expression with seconds (sec min hour day month weekday)"),
                );
            }
            pattern.map(|glob| Transport::File {
                inbox: inbox
                    .map(PathBuf::from)
                    .unwrap_or_else(|| default_inbox(&raw.name)),
                glob,
                schedule,
            })
        }
    };

    let format = match &raw.format {
        RawFormat::Csv {
            encoding: e,
            delimiter,
        } => {
            let encoding = encoding(e, "format.encoding", errs);
            let delimiter = match delimiter.as_deref() {
                None => b',',
                // A quote or a line break cannot separate fields: they delimit quoted fields and
                // records.
                Some("\"" | "\r" | "\n") => {
                    errs.push(
                        "format.delimiter",
                        "a quote or a line break cannot separate fields".to_string(),
                    );
                    b','
                }
                Some(d) if d.len() == 1 => d.as_bytes()[0],
                Some("\\t") => b'\t',
                Some(d) => {
                    errs.push(
                        "format.delimiter",
                        format!("'{d}' must be one ASCII character (or \\t)"),
                    );
                    b','
                }
            };
            Format::Csv {
                encoding,
                delimiter,
            }
        }
        RawFormat::Xlsx { sheet } => Format::Xlsx {
            sheet: sheet.clone(),
        },
        RawFormat::Xml {
            encoding: e,
            record_path,
        } => {
            let steps: Vec<String> = record_path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if steps.is_empty() || steps[..steps.len() - 1].iter().any(|s| s == "*") {
                errs.push(
                    "format.record_path",
                    "needs element names separated by '/'; only the last may be '*'",
                );
            }
            Format::Xml {
                encoding: encoding(e, "format.encoding", errs),
                record_path: steps,
            }
        }
        RawFormat::Json { encoding: e } => Format::Json {
            encoding: encoding(e, "format.encoding", errs),
        },
        RawFormat::Jsonl { encoding: e } => Format::JsonLines {
            encoding: encoding(e, "format.encoding", errs),
        },
    };
    let has_header = matches!(format, Format::Csv { .. } | Format::Xlsx { .. });

    let mut units = BTreeMap::new();
    if raw.units.is_empty() {
        errs.push(
            "units",
            "lists no enforcement units; add [[units]] with code and name",
        );
    }
    for (i, u) in raw.units.iter().enumerate() {
        match Uscc::parse(&u.code) {
            Ok(code) => {
                if units.insert(code, u.name.clone()).is_some() {
                    errs.push(
                        format!("units[{i}].code"),
                        format!("{} is listed twice", u.code),
                    );
                }
            }
            Err(e) => errs.push(format!("units[{i}].code"), e.to_string()),
        }
        if u.name.trim().is_empty() {
            errs.push(format!("units[{i}].name"), "is empty");
        }
    }

    let mut columns: Vec<Column> = Vec::new();
    let mut column = |name: &str, required: bool| -> usize {
        if let Some(i) = columns.iter().position(|c| c.name == name) {
            columns[i].required |= required;
            i
        } else {
            columns.push(Column {
                name: name.to_string(),
                required,
            });
            columns.len() - 1
        }
    };
    let mut fields = Vec::new();
    for (path, f) in raw.fields {
        let key = format!("fields.\"{path}\"");
        let Some(target) = Target::from_path(&path) else {
            let known: Vec<&str> = Target::ALL.iter().map(|t| t.path()).collect();
            errs.push(
                key,
                format!("unknown target field; known: {}", known.join(", ")),
            );
            continue;
        };
        let required = has_header && !f.optional.unwrap_or(false);
        let source = match (&f.from, &f.join, &f.constant) {
            (Some(OneOrMany::One(c)), None, None) => {
                FieldSource::Columns(vec![column(c, required)])
            }
            (Some(OneOrMany::Many(cs)), None, None) if !cs.is_empty() => {
                FieldSource::Columns(cs.iter().map(|c| column(c, required)).collect())
            }
            (None, Some(cs), None) if !cs.is_empty() => FieldSource::Join(
                cs.iter().map(|c| column(c, required)).collect(),
                f.sep.clone().unwrap_or_else(|| " ".into()),
            ),
            (None, None, Some(c)) => FieldSource::Const(c.clone()),
            _ => {
                errs.push(key, "needs exactly one of from (a column or a list of columns), join (a list) or const");
                continue;
            }
        };
        let kind = target.kind();
        if f.sep.is_some() && f.join.is_none() {
            errs.push(format!("{key}.sep"), "only goes with join");
        }
        if f.split.is_some() && !target.is_list() {
            errs.push(
                format!("{key}.split"),
                format!("{path} holds one value; split is for list fields"),
            );
        }
        if f.money.is_some() != (kind == TargetKind::Money) {
            errs.push(
                format!("{key}.money"),
                if kind == TargetKind::Money {
                    "a money field must say its source unit: money = \"yuan\", \"wanyuan\" or \"fen\"".to_string()
                } else {
                    format!("{path} is not a money field")
                },
            );
        }
        if f.date.is_some() && !matches!(kind, TargetKind::Date | TargetKind::Moment) {
            errs.push(format!("{key}.date"), format!("{path} is not a date field"));
        }
        let dates = f.date.clone().unwrap_or_else(|| vec!["%Y-%m-%d".into()]);
        for d in &dates {
            use chrono::format::{Item, StrftimeItems};
            if StrftimeItems::new(d).any(|i| matches!(i, Item::Error)) {
                errs.push(
                    format!("{key}.date"),
                    format!("'{d}' is not a valid date format"),
                );
            }
        }
        if let Some(codes) = &f.codes {
            for (from, to) in codes {
                if let Err(e) = target.check_value(to) {
                    errs.push(format!("{key}.codes.\"{from}\""), e);
                }
            }
        }
        let map = FieldMap {
            target,
            source,
            trim: f.trim.unwrap_or(true),
            default: f.default.clone(),
            split: f.split.clone(),
            codes: f.codes.map(|c| c.into_iter().collect()),
            dates,
            money: f.money,
        };
        // A constant or default must itself pass the transforms, or every record would fail.
        for (what, v) in [
            ("const", f.constant.as_deref()),
            ("default", f.default.as_deref()),
        ] {
            if let Some(v) = v
                && let Err(e) = super::mapping::transform(&map, v.to_string())
            {
                errs.push(format!("{key}.{what}"), e);
            }
        }
        fields.push(map);
    }
    for t in Target::REQUIRED {
        if !fields.iter().any(|f| f.target == *t) {
            errs.push(
                "fields",
                format!("required target field {} is not mapped", t.path()),
            );
        }
    }
    fields.sort_by_key(|f| f.target);
    Some(Adapter {
        name: raw.name,
        system: raw.system,
        dir: dir.to_path_buf(),
        transport: transport?,
        format,
        units,
        columns,
        fields,
        fingerprint: [0; 32],
    })
}
