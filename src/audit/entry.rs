//! One audit entry and its canonical JSON form: keys sorted, no floats, no insignificant
//! whitespace, at most [`MAX_ENTRY`] bytes. The canonical bytes are the Merkle leaf, so anyone can
//! recompute the tree from an export with any JSON library that can re-serialize canonically.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest canonical entry accepted.
pub const MAX_ENTRY: usize = 64 * 1024;

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `admin` (a person at the admin socket), `client` (an API client), `system` (the gateway
    /// itself: schedules, startup), `destination` (a push receiver's answer).
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

    /// The entry's JSON value at `seq` and `time`.
    pub(crate) fn to_value(&self, seq: u64, time: DateTime<Utc>) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("seq".into(), seq.into());
        m.insert(
            "time".into(),
            time.to_rfc3339_opts(SecondsFormat::Micros, true).into(),
        );
        m.insert(
            "actor".into(),
            serde_json::to_value(&self.actor).unwrap_or(Value::Null),
        );
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
        Value::Object(m)
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
    write(v, &mut out, "$")?;
    if out.len() > MAX_ENTRY {
        return Err(CanonicalError::TooLarge(out.len()));
    }
    Ok(out)
}

fn write(v: &Value, out: &mut Vec<u8>, path: &str) -> Result<(), CanonicalError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if n.is_f64() {
                return Err(CanonicalError::Float(n.to_string(), path.to_string()));
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
                write(item, out, &format!("{path}[{i}]"))?;
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
                    write(val, out, &format!("{path}.{k}"))?;
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
}
