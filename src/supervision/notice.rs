//! The XML notice of a supervision action sent to the unit's own case system
//! (`schemas/supervision-notice.xsd`): what the procuratorate asks, about which case, with the
//! digests of its documents (the documents themselves stay behind the port API).

use crate::xml_out::{XmlError, XmlWriter};

use super::actions::Action;

/// The namespace of `schemas/supervision-notice.xsd`.
pub const NAMESPACE: &str = "urn:xianjie:supervision-notice:1";

/// The notice of `a` on the case titled `case_title`.
///
/// # Errors
/// A text holding a character XML 1.0 forbids (none passes the action's own checks, but a case
/// title comes from a source system).
pub fn xml(a: &Action, case_title: Option<&str>) -> Result<Vec<u8>, XmlError> {
    let mut w = XmlWriter::document(2048)?;
    w.start("notice", &[("xmlns", NAMESPACE)])?;
    w.element("id", &a.id.to_string())?;
    w.element("unit_code", a.unit_code.as_str())?;
    w.element("case_id", a.case_id.as_str())?;
    w.element("case_version", &a.case_version.to_string())?;
    if let Some(t) = case_title {
        w.element("case_title", t)?;
    }
    w.element("kind", a.kind.code())?;
    w.element("kind_label", a.kind.label())?;
    w.element("text", &a.text)?;
    w.element("from", &a.client)?;
    w.element(
        "at",
        &a.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )?;
    w.element("answer_expected", &a.kind.asks_answer().to_string())?;
    w.start("documents", &[])?;
    for d in &a.documents {
        w.start("document", &[])?;
        w.element("doc_id", &d.doc_id)?;
        w.element("title", &d.title)?;
        w.element("media_type", &d.media_type)?;
        w.element("size", &d.size.to_string())?;
        w.element("sha256", &d.sha256)?;
        w.end()?;
    }
    w.end()?;
    w.end()?;
    Ok(w.finish())
}
