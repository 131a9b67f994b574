//! Problem details (RFC 9457) for the port API: the one place errors become HTTP answers. Each
//! kind has a stable `type` URI (listed in the README); details say what to do and never carry
//! internal information (paths, store errors, stack traces).

use serde::Serialize;

/// What went wrong, from the client's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No token, or a token that does not validate (401).
    Unauthorized(String),
    /// The client's credentials were refused at the token endpoint (401).
    InvalidClient,
    /// The port is not open to the caller, or a scope is missing (403).
    Forbidden(String),
    /// No such resource (404).
    NotFound(String),
    /// The request conflicts with the resource's state (409).
    Conflict(String),
    /// Body or headers too large (413).
    TooLarge,
    /// The request body took too long or arrived too slowly (408).
    RequestTimeout(String),
    /// A filter or parameter is invalid; names the field (422).
    BadParameter {
        /// The parameter.
        field: String,
        /// Why.
        reason: String,
    },
    /// Too many requests; retry after this many seconds (429).
    RateLimited(u64),
    /// The keystore is sealed or the audit log cannot be written (503).
    Unavailable(String),
    /// Something failed inside; the detail stays in the gateway's log (500).
    Internal,
    /// A stored value cannot be written in the form asked for: a character XML 1.0 forbids in
    /// an XML answer. Names the case and the field (500); the JSON form still carries it.
    NotRepresentable(String),
    /// Method not allowed on this route (405).
    MethodNotAllowed,
    /// A submitted report was refused; every problem listed (422).
    SubmissionRefused {
        /// Summary.
        detail: String,
        /// Each problem: where, which field, why.
        problems: Vec<String>,
    },
}

/// The JSON body.
#[derive(Debug, Serialize)]
pub struct ProblemBody {
    /// Stable type URI.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Short title.
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// What happened and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The invalid parameter, for 422.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every problem of a refused submission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<String>>,
}

/// Base of every problem type URI.
pub const TYPE_BASE: &str = "urn:xianjie:problem:";

impl Problem {
    /// Status, type URI suffix and title.
    pub fn parts(&self) -> (u16, &'static str, &'static str) {
        match self {
            Problem::Unauthorized(_) => (401, "unauthorized", "Missing or invalid access token"),
            Problem::InvalidClient => (401, "invalid-client", "Client authentication failed"),
            Problem::Forbidden(_) => (403, "forbidden", "Not allowed for this client"),
            Problem::NotFound(_) => (404, "not-found", "Not found"),
            Problem::MethodNotAllowed => (405, "method-not-allowed", "Method not allowed"),
            Problem::Conflict(_) => (409, "conflict", "Conflict"),
            Problem::TooLarge => (413, "too-large", "Request too large"),
            Problem::RequestTimeout(_) => (408, "request-timeout", "Request body too slow"),
            Problem::BadParameter { .. } => (422, "bad-parameter", "Invalid parameter"),
            Problem::SubmissionRefused { .. } => (422, "submission-refused", "Submission refused"),
            Problem::RateLimited(_) => (429, "rate-limited", "Too many requests"),
            Problem::Unavailable(_) => (503, "unavailable", "Service unavailable"),
            Problem::Internal => (500, "internal", "Internal error"),
            Problem::NotRepresentable(_) => (
                500,
                "not-representable",
                "Stored data cannot be written in the requested format",
            ),
        }
    }

    /// The body.
    pub fn body(&self) -> ProblemBody {
        let (status, slug, title) = self.parts();
        let kind: &'static str = match slug {
            "unauthorized" => "urn:xianjie:problem:unauthorized",
            "invalid-client" => "urn:xianjie:problem:invalid-client",
            "forbidden" => "urn:xianjie:problem:forbidden",
            "not-found" => "urn:xianjie:problem:not-found",
            "method-not-allowed" => "urn:xianjie:problem:method-not-allowed",
            "conflict" => "urn:xianjie:problem:conflict",
            "too-large" => "urn:xianjie:problem:too-large",
            "request-timeout" => "urn:xianjie:problem:request-timeout",
            "bad-parameter" => "urn:xianjie:problem:bad-parameter",
            "submission-refused" => "urn:xianjie:problem:submission-refused",
            "rate-limited" => "urn:xianjie:problem:rate-limited",
            "unavailable" => "urn:xianjie:problem:unavailable",
            "not-representable" => "urn:xianjie:problem:not-representable",
            _ => "urn:xianjie:problem:internal",
        };
        let (detail, field) = match self {
            Problem::Unauthorized(d)
            | Problem::Forbidden(d)
            | Problem::NotFound(d)
            | Problem::Conflict(d)
            | Problem::Unavailable(d)
            | Problem::RequestTimeout(d)
            | Problem::NotRepresentable(d) => (Some(d.clone()), None),
            Problem::BadParameter { field, reason } => {
                (Some(format!("{field}: {reason}")), Some(field.clone()))
            }
            Problem::RateLimited(s) => (Some(format!("retry after {s} s")), None),
            Problem::InvalidClient => (
                Some("unknown client, wrong or expired secret, or a revoked client".into()),
                None,
            ),
            Problem::TooLarge => (
                Some("request body or headers over the limit (64 KiB)".into()),
                None,
            ),
            Problem::Internal => (
                Some("the gateway could not complete the request; it is logged".into()),
                None,
            ),
            Problem::MethodNotAllowed => (None, None),
            Problem::SubmissionRefused { detail, .. } => (Some(detail.clone()), None),
        };
        let problems = match self {
            Problem::SubmissionRefused { problems, .. } => Some(problems.clone()),
            _ => None,
        };
        ProblemBody {
            kind,
            title,
            status,
            detail,
            field,
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_has_its_own_stable_type() {
        let all = [
            Problem::Unauthorized("x".into()),
            Problem::InvalidClient,
            Problem::Forbidden("x".into()),
            Problem::NotFound("x".into()),
            Problem::MethodNotAllowed,
            Problem::SubmissionRefused {
                detail: "x".into(),
                problems: vec!["row 2, 决定日期: outside the quarter".into()],
            },
            Problem::Conflict("x".into()),
            Problem::TooLarge,
            Problem::BadParameter {
                field: "action".into(),
                reason: "unknown".into(),
            },
            Problem::RateLimited(3),
            Problem::Unavailable("sealed".into()),
            Problem::Internal,
            Problem::NotRepresentable("x".into()),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for p in &all {
            let b = p.body();
            assert!(b.kind.starts_with(TYPE_BASE), "{}", b.kind);
            assert!(b.kind.ends_with(p.parts().1), "{}", b.kind);
            assert_eq!(b.status, p.parts().0);
            assert!(seen.insert(b.kind), "duplicate type {}", b.kind);
        }
        let b = all[8].body();
        assert_eq!(b.field.as_deref(), Some("action"));
        let b = all[5].body();
        assert_eq!(b.problems.map(|p| p.len()), Some(1));
    }
}
