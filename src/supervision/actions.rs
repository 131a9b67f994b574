//! The procuratorate's supervision actions on a case (建议移送, 要求说明不移送理由, 立案监督,
//! 检察建议, notes) and the unit's answers: what a request may say (parsed here, in pure code,
//! before anything is stored), and what is kept.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{CaseId, DocumentRef, Uscc};

/// Longest text of an action or answer, in characters.
pub const MAX_TEXT: usize = 10_000;
/// Most documents on one action or answer.
pub const MAX_DOCUMENTS: usize = 5;
/// Largest document, in bytes (decoded).
pub const MAX_DOCUMENT: usize = 4 * 1024 * 1024;
/// Largest request body that can carry them (base64 adds a third, JSON a little).
pub const MAX_BODY: usize = MAX_DOCUMENTS * MAX_DOCUMENT * 4 / 3 + 64 * 1024;
/// Most lead keys one action names.
const MAX_LEADS: usize = 64;

/// What the procuratorate does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 建议移送: recommends the unit hand the case to the police.
    RecommendTransfer,
    /// 要求说明不移送理由: asks the unit why the case was not transferred.
    RequestReasons,
    /// 立案监督: supervision of the police's filing decision.
    FilingSupervision,
    /// 检察建议: a prosecutorial suggestion.
    ProsecutorialSuggestion,
    /// A note, which asks for no answer (also how a lead is dismissed).
    Note,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [
        Kind::RecommendTransfer,
        Kind::RequestReasons,
        Kind::FilingSupervision,
        Kind::ProsecutorialSuggestion,
        Kind::Note,
    ];

    /// The kind's code, as the API writes it.
    pub fn code(self) -> &'static str {
        match self {
            Kind::RecommendTransfer => "recommend_transfer",
            Kind::RequestReasons => "request_reasons",
            Kind::FilingSupervision => "filing_supervision",
            Kind::ProsecutorialSuggestion => "prosecutorial_suggestion",
            Kind::Note => "note",
        }
    }

    /// Its name in Chinese, as the documents call it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::RecommendTransfer => "建议移送",
            Kind::RequestReasons => "要求说明不移送理由",
            Kind::FilingSupervision => "立案监督",
            Kind::ProsecutorialSuggestion => "检察建议",
            Kind::Note => "备注",
        }
    }

    /// Whether the unit is expected to answer.
    pub fn asks_answer(self) -> bool {
        self != Kind::Note
    }
}

/// The unit's answer to an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// What the unit says.
    pub text: String,
    /// Documents it attaches.
    #[serde(default)]
    pub documents: Vec<DocumentRef>,
    /// Who recorded it (the administrator on the gateway host, for the unit).
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A supervision action as stored, with its answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Its id (increasing).
    pub id: u64,
    /// The unit whose case it concerns.
    pub unit_code: Uscc,
    /// The case.
    pub case_id: CaseId,
    /// The case version it was written on.
    pub case_version: u64,
    /// What it is.
    pub kind: Kind,
    /// Its text.
    pub text: String,
    /// Documents attached.
    #[serde(default)]
    pub documents: Vec<DocumentRef>,
    /// The leads it acted on (recommended or dismissed), by key.
    #[serde(default)]
    pub leads: Vec<String>,
    /// Whether it dismissed those leads.
    #[serde(default)]
    pub dismissed: bool,
    /// The API client that wrote it.
    pub client: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The destinations its notice is queued for.
    #[serde(default)]
    pub notified: Vec<String>,
    /// The unit's answers, oldest first.
    #[serde(default)]
    pub answers: Vec<Answer>,
}

impl Action {
    /// Whether it still waits for the unit's answer.
    pub fn is_open(&self) -> bool {
        self.kind.asks_answer() && self.answers.is_empty()
    }

    /// Its store key's case part.
    pub fn case_key(&self) -> Vec<u8> {
        crate::model::case_key(&self.unit_code, &self.case_id)
    }
}

/// A document as a request carries it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    name: String,
    media_type: String,
    content_base64: String,
}

/// `POST …/supervision` as sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    kind: String,
    text: String,
    #[serde(default)]
    documents: Vec<RawDocument>,
    #[serde(default)]
    leads: Option<Vec<String>>,
    #[serde(default)]
    dismiss: bool,
}

/// A document of a request, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct NewDocument {
    /// Its file name.
    pub name: String,
    /// Its media type (one of [`MEDIA_TYPES`]).
    pub media_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for NewDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Case documents are nobody's business in a log.
        f.debug_struct("NewDocument")
            .field("name", &self.name)
            .field("media_type", &self.media_type)
            .field("size", &self.bytes.len())
            .finish()
    }
}

/// A supervision request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What it is.
    pub kind: Kind,
    /// Its text.
    pub text: String,
    /// Documents.
    pub documents: Vec<NewDocument>,
    /// The lead keys it acts on (`None`: a recommendation acts on every open rule lead).
    pub leads: Option<Vec<String>>,
    /// Whether it dismisses those leads (a note only; its text is the reason).
    pub dismiss: bool,
}

/// Why a request or an answer was refused: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    /// The field (a JSON path).
    pub field: String,
    /// Why.
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks a text: not blank, not longer than [`MAX_TEXT`], no control characters but line breaks
/// and tabs.
pub fn check_text(field: &str, text: &str) -> Result<String, Invalid> {
    let t = text.trim();
    if t.is_empty() {
        return Err(invalid(field, "is empty; say what is asked or answered"));
    }
    let n = t.chars().count();
    if n > MAX_TEXT {
        return Err(invalid(
            field,
            format!("has {n} characters, at most {MAX_TEXT} are taken; attach a document"),
        ));
    }
    if let Some((i, c)) = t
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(invalid(
            field,
            format!("holds the control character U+{:04X} at {i}", u32::from(c)),
        ));
    }
    Ok(t.to_string())
}

/// Checks a document's name and media type, and decodes its content.
fn document(i: usize, d: RawDocument) -> Result<NewDocument, Invalid> {
    let at = |f: &str| format!("documents[{i}].{f}");
    let name = d.name.trim();
    let bad_name = name.is_empty()
        || name.chars().count() > 128
        || name.starts_with('.')
        || name
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\'));
    if bad_name {
        return Err(invalid(
            at("name"),
            "must be a file name of 1 to 128 characters, without a path, control characters or a leading dot",
        ));
    }
    if d.content_base64.len() > MAX_DOCUMENT.div_ceil(3) * 4 {
        return Err(invalid(
            at("content_base64"),
            format!("is larger than {MAX_DOCUMENT} bytes"),
        ));
    }
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(d.content_base64.as_bytes())
        .map_err(|e| invalid(at("content_base64"), format!("is not base64: {e}")))?;
    // The type is the name's and the content's, and the declared one must agree: a file is
    // never served as what it is not (the same check as an adapter's documents).
    let found = crate::ingest::documents::media_type_of_bytes(name, &bytes)
        .map_err(|e| invalid(at("content_base64"), format!("{name} {e}")))?;
    if d.media_type != found {
        return Err(invalid(
            at("media_type"),
            format!(
                "{:?} is not the type of {name} ({found})",
                d.media_type.chars().take(64).collect::<String>()
            ),
        ));
    }
    Ok(NewDocument {
        name: name.to_string(),
        media_type: d.media_type,
        bytes,
    })
}

/// Parses documents of a request or an answer.
fn documents(raw: Vec<RawDocument>) -> Result<Vec<NewDocument>, Invalid> {
    if raw.len() > MAX_DOCUMENTS {
        return Err(invalid(
            "documents",
            format!("{} documents, at most {MAX_DOCUMENTS} are taken", raw.len()),
        ));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, d)| document(i, d))
        .collect()
}

impl Request {
    /// Parses a request body (JSON).
    pub fn parse(body: &[u8]) -> Result<Request, Invalid> {
        let raw: RawRequest = serde_json::from_slice(body).map_err(|e| {
            invalid(
                format!("body (line {}, column {})", e.line(), e.column()),
                e.to_string(),
            )
        })?;
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.code() == raw.kind)
            .ok_or_else(|| {
                invalid(
                    "kind",
                    format!(
                        "{:?} is not a kind; one of {}",
                        raw.kind.chars().take(64).collect::<String>(),
                        Kind::ALL.map(Kind::code).join(", ")
                    ),
                )
            })?;
        let text = check_text("text", &raw.text)?;
        if raw.dismiss && kind != Kind::Note {
            return Err(invalid(
                "dismiss",
                "only a note dismisses leads (its text is the reason)",
            ));
        }
        if raw.dismiss && raw.leads.as_ref().is_none_or(Vec::is_empty) {
            return Err(invalid("leads", "name the leads to dismiss, by key"));
        }
        if let Some(l) = &raw.leads {
            if l.len() > MAX_LEADS {
                return Err(invalid("leads", format!("at most {MAX_LEADS} lead keys")));
            }
            if let Some((i, _)) = l
                .iter()
                .enumerate()
                .find(|(_, k)| k.is_empty() || k.len() > 128 || k.chars().any(char::is_control))
            {
                return Err(invalid(format!("leads[{i}]"), "is not a lead key"));
            }
        }
        Ok(Request {
            kind,
            text,
            documents: documents(raw.documents)?,
            leads: raw.leads,
            dismiss: raw.dismiss,
        })
    }
}

/// An answer as the unit's side sends it (`supervision answer`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    /// The text.
    pub text: String,
    /// Documents, as the API takes them.
    #[serde(default)]
    pub documents: Vec<AnswerDocument>,
}

/// A document of an answer (name, media type, base64 content).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerDocument {
    /// File name.
    pub name: String,
    /// Media type.
    pub media_type: String,
    /// Content, base64.
    pub content_base64: String,
}

impl AnswerRequest {
    /// Checks the answer: its text and documents as a request's.
    pub fn check(self) -> Result<(String, Vec<NewDocument>), Invalid> {
        let text = check_text("text", &self.text)?;
        let docs = documents(
            self.documents
                .into_iter()
                .map(|d| RawDocument {
                    name: d.name,
                    media_type: d.media_type,
                    content_base64: d.content_base64,
                })
                .collect(),
        )?;
        Ok((text, docs))
    }
}

/// Stores `docs` content-addressed and returns their references, numbered from `first`
/// (`prefix-1`, `prefix-2`, …) so they are told apart from the case's own documents.
pub fn store_documents(
    store: &crate::store::Store,
    prefix: &str,
    docs: &[NewDocument],
    kind: &str,
) -> Result<Vec<DocumentRef>, crate::store::StoreError> {
    docs.iter()
        .enumerate()
        .map(|(i, d)| {
            let sha256 = store.put_document(&d.bytes)?;
            Ok(DocumentRef {
                doc_id: format!("{prefix}-{}", i + 1),
                title: d.name.clone(),
                kind: kind.to_string(),
                media_type: d.media_type.clone(),
                size: d.bytes.len() as u64,
                sha256,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<Request, Invalid> {
        Request::parse(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn a_request_is_parsed_with_its_documents() {
        let r = parse(serde_json::json!({
            "kind": "recommend_transfer",
            "text": "  涉嫌逃税罪，建议移送公安机关。 ",
            "documents": [{"name": "建议书.pdf", "media_type": "application/pdf", "content_base64": "JVBERi0xLjQK"}],
        }))
        .unwrap();
        assert_eq!(r.kind, Kind::RecommendTransfer);
        assert_eq!(r.text, "涉嫌逃税罪，建议移送公安机关。");
        assert_eq!(r.documents[0].bytes, b"%PDF-1.4\n");
        assert!(!format!("{r:?}").contains("PDF-1.4"));
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (serde_json::json!({"kind": "arrest", "text": "x"}), "kind"),
            (serde_json::json!({"kind": "note", "text": "  "}), "text"),
            (
                serde_json::json!({"kind": "note", "text": "a\u{0}b"}),
                "text",
            ),
            (
                serde_json::json!({"kind": "note", "text": "x".repeat(MAX_TEXT + 1)}),
                "text",
            ),
            (
                serde_json::json!({"kind": "note", "text": "x", "documents": [{"name": "../a.pdf", "media_type": "application/pdf", "content_base64": "JVBERi0xLjQK"}]}),
                "documents[0].name",
            ),
            (
                serde_json::json!({"kind": "note", "text": "x", "documents": [{"name": "a.exe", "media_type": "application/x-msdownload", "content_base64": "AA=="}]}),
                "documents[0].content_base64",
            ),
            (
                serde_json::json!({"kind": "note", "text": "x", "documents": [{"name": "a.pdf", "media_type": "application/pdf", "content_base64": "PGh0bWw+"}]}),
                "documents[0].content_base64",
            ),
            (
                serde_json::json!({"kind": "note", "text": "x", "documents": [{"name": "a.pdf", "media_type": "image/png", "content_base64": "JVBERi0xLjQK"}]}),
                "documents[0].media_type",
            ),
            (
                serde_json::json!({"kind": "note", "text": "x", "documents": [{"name": "a.pdf", "media_type": "application/pdf", "content_base64": "!!"}]}),
                "documents[0].content_base64",
            ),
            (
                serde_json::json!({"kind": "recommend_transfer", "text": "x", "leads": ["rule:a"], "dismiss": true}),
                "dismiss",
            ),
            (
                serde_json::json!({"kind": "note", "text": "x", "dismiss": true}),
                "leads",
            ),
        ];
        for (body, field) in cases {
            let e = parse(body.clone()).unwrap_err();
            assert_eq!(e.field, field, "{body}: {e}");
        }
        let e = Request::parse(br#"{"kind":"note","text":"x","extra":1}"#).unwrap_err();
        assert!(e.reason.contains("extra"), "{e}");
        let many: Vec<serde_json::Value> = (0..=MAX_DOCUMENTS)
            .map(|_| serde_json::json!({"name": "a.pdf", "media_type": "application/pdf", "content_base64": "JVBERi0xLjQK"}))
            .collect();
        let e =
            parse(serde_json::json!({"kind": "note", "text": "x", "documents": many})).unwrap_err();
        assert_eq!(e.field, "documents");
    }
}
