//! One audit entry and its canonical JSON form: keys sorted, no floats, no insignificant
//! whitespace, at most [`MAX_ENTRY`] bytes. The canonical bytes are the Merkle leaf, so anyone can
//! recompute the tree from an export with any JSON library that can re-serialize canonically.
//!
//! Values often come from outside (a client name, a path, a filter), so no string in an entry is
//! longer than [`MAX_VALUE`] bytes: a longer one keeps its first bytes, ends with [`CUT_MARK`],
//! and the entry's `cut` object records, under the value's path, its full length and SHA-256.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest canonical entry accepted.
pub const MAX_ENTRY: usize = 64 * 1024;

/// Longest string value an entry keeps whole, in UTF-8 bytes: any name, key id or one-line
/// reason fits; an attacker's 40 KB client name costs the log this much, not 40 KB.
pub const MAX_VALUE: usize = 256;

/// Ends a value that was cut (its kept prefix is at most [`MAX_VALUE`] bytes, cut at a character
/// boundary).
pub const CUT_MARK: char = '…';

/// What an entry keeps of a value longer than [`MAX_VALUE`] besides its prefix: enough to check
/// it against a copy of the whole value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut {
    /// The whole value's length in UTF-8 bytes.
    pub len: u64,
    /// SHA-256 of the whole value's UTF-8 bytes (lowercase hex).
    pub sha256: String,
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `admin` (a person at the admin socket), `user` (a person in the web console), `client`
    /// (an API client), `system` (the gateway itself: schedules, startup), `destination` (a push
    /// receiver's answer).
    pub kind: String,
    /// The administrator's name, the client id, or the job's name.
    pub id: String,
    /// The key used, when one was (e.g. a JWT `kid`, a credential version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

impl Actor {
    /// An administrator at the admin socket.
    pub fn admin(name: &str) -> Self {
        Actor {
            kind: "admin".into(),
            id: name.into(),
            key_id: None,
        }
    }

    /// The gateway itself.
    pub fn system(job: &str) -> Self {
        Actor {
            kind: "system".into(),
            id: job.into(),
            key_id: None,
        }
    }

    /// A person signed in to the web console.
    pub fn user(name: &str) -> Self {
        Actor {
            kind: "user".into(),
            id: name.into(),
            key_id: None,
        }
    }

    /// An API client.
    pub fn client(id: &str, key_id: Option<&str>) -> Self {
        Actor {
            kind: "client".into(),
            id: id.into(),
            key_id: key_id.map(str::to_string),
        }
    }
}

/// What an operation asks the log to record (the log adds sequence and time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Who.
    pub actor: Actor,
    /// What, e.g. `case.read`, `client.create`, `keystore.unlock_failed`.
    pub action: String,
    /// On what, e.g. a case key, a client name, a file.
    pub target: String,
    /// `ok`, `denied`, `failed`, …
    pub outcome: String,
    /// The request it belongs to, when there is one.
    pub request_id: Option<String>,
    /// SHA-256 (hex) of anything large the operation handled (a document, a package).
    pub digest: Option<String>,
    /// Further small facts: integers, strings, booleans. Never secrets or ID numbers.
    pub details: BTreeMap<String, Value>,
}

impl Event {
    /// An event with outcome `ok` and no details.
    pub fn new(actor: Actor, action: &str, target: impl Into<String>) -> Self {
        Event {
            actor,
            action: action.into(),
            target: target.into(),
            outcome: "ok".into(),
            request_id: None,
            digest: None,
            details: BTreeMap::new(),
        }
    }

    /// Sets the outcome.
    pub fn outcome(mut self, outcome: &str) -> Self {
        self.outcome = outcome.into();
        self
    }

    /// Adds a detail.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// Sets the request id.
    pub fn request(mut self, id: &str) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sets the digest of the data handled.
    pub fn digest(mut self, hex: &str) -> Self {
        self.digest = Some(hex.into());
        self
    }

    /// The entry's JSON value at `seq` and `time`, every string bounded (see the module docs).
    #[cfg(test)]
    pub(crate) fn to_value(&self, seq: u64, time: DateTime<Utc>) -> Value {
        let mut m = self.bounded();
        m.insert("seq".into(), seq.into());
        m.insert("time".into(), time_text(time).into());
        Value::Object(m)
    }

    /// Everything of the entry but its sequence number and time, every string bounded. This is
    /// the one place an event becomes an entry, so no caller can skip the bound.
    fn bounded(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        let mut actor = serde_json::Map::new();
        actor.insert("kind".into(), self.actor.kind.clone().into());
        actor.insert("id".into(), self.actor.id.clone().into());
        if let Some(k) = &self.actor.key_id {
            actor.insert("key_id".into(), k.clone().into());
        }
        m.insert("actor".into(), Value::Object(actor));
        m.insert("action".into(), self.action.clone().into());
        m.insert("target".into(), self.target.clone().into());
        m.insert("outcome".into(), self.outcome.clone().into());
        if let Some(r) = &self.request_id {
            m.insert("request_id".into(), r.clone().into());
        }
        if let Some(d) = &self.digest {
            m.insert("digest".into(), d.clone().into());
        }
        if !self.details.is_empty() {
            let details: serde_json::Map<String, Value> = self
                .details
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            m.insert("details".into(), Value::Object(details));
        }
        let mut cuts = serde_json::Map::new();
        for (k, v) in m.iter_mut() {
            bound(v, k, &mut cuts);
        }
        if !cuts.is_empty() {
            m.insert("cut".into(), Value::Object(cuts));
        }
        m
    }

    /// The entry's canonical bytes but for its sequence number and time, made before the log's
    /// lock is taken, so that appenders encode in parallel and the lock covers only the number,
    /// the clock and the write.
    pub(crate) fn prepare(&self) -> Result<Prepared, CanonicalError> {
        let mut m = self.bounded();
        let target = m.remove("target").unwrap_or_default();
        // Every other key sorts before "seq", "target" and "time": the head is a canonical
        // object missing its last three members.
        let mut head = canonical(&Value::Object(m))?;
        head.pop(); // its closing brace
        let mut tail = Vec::with_capacity(self.target.len().min(MAX_VALUE + 8) + 16);
        tail.extend_from_slice(b",\"target\":");
        write(&target, &mut tail).map_err(|e| e.within("$.target"))?;
        // seq (at most 20 digits) and time (27 bytes) with their keys and punctuation.
        let len = head.len() + tail.len() + 64;
        if len > MAX_ENTRY {
            return Err(CanonicalError::TooLarge(len));
        }
        Ok(Prepared { head, tail })
    }
}

/// An entry encoded but for its sequence number and time (see [`Event::prepare`]).
pub(crate) struct Prepared {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Prepared {
    /// The entry with its time, as the shared log queues it for the sequencer: the time in
    /// microseconds, the head's length, the head, the tail.
    pub(crate) fn queued(&self, time: DateTime<Utc>) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.head.len() + self.tail.len());
        out.extend_from_slice(&time.timestamp_micros().to_be_bytes());
        out.extend_from_slice(&(self.head.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.head);
        out.extend_from_slice(&self.tail);
        out
    }

    /// A queued entry back, with its time; `None` when the bytes are not one.
    pub(crate) fn from_queued(bytes: &[u8]) -> Option<(Prepared, DateTime<Utc>)> {
        let micros = i64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let len = u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?) as usize;
        let head = bytes.get(12..12usize.checked_add(len)?)?.to_vec();
        let tail = bytes.get(12 + len..)?.to_vec();
        Some((
            Prepared { head, tail },
            DateTime::from_timestamp_micros(micros)?,
        ))
    }

    /// The canonical line at `seq` and `time`, without the line feed.
    pub(crate) fn line(&self, seq: u64, time: DateTime<Utc>) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::with_capacity(self.head.len() + self.tail.len() + 64);
        out.extend_from_slice(&self.head);
        // Writing to a Vec cannot fail.
        let _ = write!(out, ",\"seq\":{seq}");
        out.extend_from_slice(&self.tail);
        let _ = write!(out, ",\"time\":\"{}\"}}", time_text(time));
        out
    }
}

/// An entry's time: UTC with microseconds, e.g. `2026-11-30T08:00:00.123456Z`.
fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Cuts every string in `v` longer than [`MAX_VALUE`], recording each in `cuts` under its path
/// (`target`, `actor.id`, `details.filter`, `details.files[2]`).
fn bound(v: &mut Value, path: &str, cuts: &mut serde_json::Map<String, Value>) {
    match v {
        Value::String(s) if s.len() > MAX_VALUE => {
            use sha2::{Digest, Sha256};
            let sha256 = hex::encode(Sha256::digest(s.as_bytes()));
            cuts.insert(
                path.into(),
                serde_json::json!({"len": s.len(), "sha256": sha256}),
            );
            let mut end = MAX_VALUE;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push(CUT_MARK);
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                if needs_bound(item) {
                    bound(item, &format!("{path}[{i}]"), cuts);
                }
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                if needs_bound(item) {
                    bound(item, &format!("{path}.{k}"), cuts);
                }
            }
        }
        _ => {}
    }
}

/// Whether [`bound`] has anything to look at in `v` (so that paths are made only then).
fn needs_bound(v: &Value) -> bool {
    match v {
        Value::String(s) => s.len() > MAX_VALUE,
        Value::Array(_) | Value::Object(_) => true,
        _ => false,
    }
}

/// A stored entry, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Sequence number, equal to the leaf index.
    pub seq: u64,
    /// When it was appended (UTC, microseconds).
    pub time: String,
    /// Who.
    pub actor: Actor,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// Result.
    pub outcome: String,
    /// Request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Digest of large data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Small facts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, Value>,
    /// The values that were cut, by path (see [`MAX_VALUE`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cut: BTreeMap<String, Cut>,
}

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// Floats are not allowed (their text form is not unique).
    #[error("audit entries hold no floating-point numbers (found {0} at {1})")]
    Float(String, String),
    /// Too large.
    #[error("audit entry is {0} bytes; at most {MAX_ENTRY} are allowed")]
    TooLarge(usize),
}

/// The canonical bytes of `v`: object keys sorted by their UTF-8 bytes, no whitespace, integers
/// only, strings escaped as serde_json does (which escapes only `"`, `\` and control characters).
/// Written out by hand so that the form does not depend on serde_json's map features.
pub fn canonical(v: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write(v, &mut out).map_err(|e| e.within("$"))?;
    if out.len() > MAX_ENTRY {
        return Err(CanonicalError::TooLarge(out.len()));
    }
    Ok(out)
}

impl CanonicalError {
    /// The error seen from one level up: `seg` goes in front of a float's path. Paths are made
    /// only on the way out of an error, not for every value written.
    fn within(self, seg: &str) -> Self {
        match self {
            CanonicalError::Float(n, path) => CanonicalError::Float(n, format!("{seg}{path}")),
            other => other,
        }
    }
}

fn write(v: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if n.is_f64() {
                return Err(CanonicalError::Float(n.to_string(), String::new()));
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out).map_err(|e| e.within(&format!("[{i}]")))?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(k, out);
                out.push(b':');
                if let Some(val) = map.get(k) {
                    write(val, out).map_err(|e| e.within(&format!(".{k}")))?;
                }
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn string(s: &str, out: &mut Vec<u8>) {
    // serde_json's escaping of a plain string is already canonical (short escapes for the usual
    // controls, \u00XX for the rest, everything else literal UTF-8).
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_level_and_floats_refused() {
        let v = json!({"b": 1, "a": {"z": [true, null, "x\"\n"], "c": -5}, "A": "大"});
        assert_eq!(
            String::from_utf8(canonical(&v).unwrap()).unwrap(),
            r#"{"A":"大","a":{"c":-5,"z":[true,null,"x\"\n"]},"b":1}"#
        );
        let err = canonical(&json!({"d": {"x": 1.5}})).unwrap_err();
        assert_eq!(err, CanonicalError::Float("1.5".into(), "$.d.x".into()));
        let big = json!({ "s": "x".repeat(MAX_ENTRY) });
        assert!(matches!(canonical(&big), Err(CanonicalError::TooLarge(_))));
    }

    #[test]
    fn long_values_are_cut_at_a_char_boundary_with_their_length_and_hash() {
        use sha2::{Digest, Sha256};
        let sha = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
        let name = "n".repeat(40_000);
        let cjk_exact = "玄".repeat(85); // 255 bytes: kept whole
        let cjk_long = "玄武".repeat(43); // 258 bytes: the 256th byte is inside a character
        let ascii_exact = "a".repeat(MAX_VALUE);
        let ascii_over = "b".repeat(MAX_VALUE + 1);
        let e = Event::new(Actor::client(&name, Some("k1")), "token.issue", &name)
            .outcome("denied")
            .detail("exact", ascii_exact.as_str())
            .detail("over", ascii_over.as_str())
            .detail("cjk_exact", cjk_exact.as_str())
            .detail("filter", cjk_long.as_str())
            .detail("files", json!(["short", cjk_long.as_str()]))
            .detail("count", 3);
        let t = DateTime::parse_from_rfc3339("2026-11-30T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let bytes = canonical(&e.to_value(0, t)).unwrap();
        assert!(bytes.len() < 3 * 1024, "{} bytes", bytes.len());
        let back: Entry = serde_json::from_slice(&bytes).unwrap();

        // Whole: up to MAX_VALUE bytes, ASCII or not.
        assert_eq!(back.details["exact"], ascii_exact.as_str());
        assert_eq!(back.details["cjk_exact"], cjk_exact.as_str());
        assert_eq!(back.details["count"], 3);
        assert_eq!(back.actor.key_id.as_deref(), Some("k1"));
        assert_eq!(back.outcome, "denied");

        // Cut: the longest prefix of whole characters within MAX_VALUE bytes, then the mark.
        let cut_ascii = format!("{}{CUT_MARK}", "n".repeat(MAX_VALUE));
        assert_eq!(back.target, cut_ascii);
        assert_eq!(back.actor.id, cut_ascii);
        assert_eq!(
            back.details["over"],
            format!("{}{CUT_MARK}", "b".repeat(MAX_VALUE))
        );
        let cut_cjk = format!("{}{CUT_MARK}", &cjk_long[..255]);
        assert_eq!(back.details["filter"], cut_cjk.as_str());
        assert_eq!(back.details["files"], json!(["short", cut_cjk]));

        // Each cut value has its full length and SHA-256 under its path; nothing else is listed.
        let expect = |v: &str| Cut {
            len: v.len() as u64,
            sha256: sha(v),
        };
        let want: BTreeMap<String, Cut> = [
            ("target", expect(&name)),
            ("actor.id", expect(&name)),
            ("details.over", expect(&ascii_over)),
            ("details.filter", expect(&cjk_long)),
            ("details.files[1]", expect(&cjk_long)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(back.cut, want);
        assert_eq!(back.cut["target"].len, 40_000);
        assert_eq!(back.cut["details.filter"].len, 258);

        // The entry stays canonical, and an exported log holding it verifies.
        assert_eq!(
            canonical(&serde_json::to_value(&back).unwrap()).unwrap(),
            bytes
        );
        let tmp = tempfile::tempdir().unwrap();
        let log = crate::audit::AuditLog::open(
            &tmp.path().join("log"),
            "xianjie.test/audit",
            crate::audit::Fsync::Always,
        )
        .unwrap();
        log.set_signer(Some(
            crate::audit::note::NoteSigner::new(
                "xianjie.test/audit",
                ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]),
            )
            .unwrap(),
        ));
        log.append(&e).unwrap();
        let out = tmp.path().join("export");
        log.export(&out).unwrap();
        assert_eq!(crate::audit::verify_export(&out).unwrap().entries, 1);
        assert_eq!(log.tail(1).unwrap()[0].cut, want);
    }

    #[test]
    fn an_entry_reads_back_and_recanonicalizes_to_the_same_bytes() {
        let e = Event::new(Actor::admin("王芳"), "client.create", "procuratorate")
            .detail("version", 2)
            .request("r-1");
        let t = DateTime::parse_from_rfc3339("2026-11-27T08:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let bytes = canonical(&e.to_value(7, t)).unwrap();
        let back: Entry = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back.seq, 7);
        assert_eq!(back.time, "2026-11-27T08:00:00.123456Z");
        assert_eq!(
            canonical(&serde_json::to_value(&back).unwrap()).unwrap(),
            bytes
        );
    }

    mod prop {
        use super::*;
        use crate::proptest_support::config;
        use proptest::prelude::*;

        /// Short, long (cut) and awkward (quotes, controls, CJK) strings.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z0-9/.-]{0,20}",
                "[\"\\\\\n\t玄武a]{0,40}",
                "[a-zé]{250,300}",
                any::<String>()
            ]
        }

        proptest! {
            #![proptest_config(config(256))]

            /// The line made from a prepared entry is byte for byte the canonical form of the
            /// whole entry: the split around the lock changes nothing a verifier sees.
            #[test]
            fn a_prepared_line_is_the_canonical_entry(
                id in text(), target in text(), key in proptest::option::of(text()),
                request in proptest::option::of(text()), detail in text(), n in any::<i64>(),
                seq in any::<u64>(), micros in 0i64..4_102_444_800_000_000,
            ) {
                let e = Event::new(Actor::client(&id, key.as_deref()), "case.read", target)
                    .detail("filter", detail.as_str())
                    .detail("files", serde_json::json!([detail.as_str(), n]))
                    .detail("count", n);
                let e = match request { Some(r) => e.request(&r), None => e };
                let t = DateTime::from_timestamp_micros(micros).unwrap();
                let line = e.prepare().unwrap().line(seq, t);
                prop_assert_eq!(&line, &canonical(&e.to_value(seq, t)).unwrap());
                let back: Entry = serde_json::from_slice(&line).unwrap();
                prop_assert_eq!(back.seq, seq);
            }
        }
    }
}
