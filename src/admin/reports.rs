//! Admin routes for the quarterly statistics: build a quarter now, its status, one report.

// Handlers return a ready response as their error: one per request, so its size costs nothing.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::server::{Admin, Resp, Services, blocking_json, error, internal, json};
use crate::model::{Quarter, Uscc};
use crate::store::ReportStored;

/// `POST /reports/build`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildRequest {
    /// The quarter, e.g. `2025Q3`.
    pub quarter: String,
}

/// One unit's line of a build.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildLine {
    /// Unit.
    pub unit_code: String,
    /// Its name.
    pub unit_name: String,
    /// Cases in the report.
    pub total: u64,
    /// New version or unchanged.
    pub stored: ReportStored,
}

fn quarter(s: &str) -> Result<Quarter, Resp> {
    Quarter::parse(s).map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))
}

/// `POST /reports/build`.
pub(super) async fn build(
    State(s): Services,
    Admin(actor): Admin,
    Json(r): Json<BuildRequest>,
) -> Resp {
    let q = match quarter(&r.quarter) {
        Ok(q) => q,
        Err(resp) => return resp,
    };
    match s.jobs.clone().build_reports(q, actor).await {
        Ok(built) => json(
            StatusCode::OK,
            &built
                .into_iter()
                .map(|(r, stored)| BuildLine {
                    unit_code: r.unit_code.to_string(),
                    unit_name: r.unit_name,
                    total: r.summary.total,
                    stored,
                })
                .collect::<Vec<_>>(),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The query of `GET /reports/status`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusQuery {
    /// The quarter.
    quarter: String,
}

/// `GET /reports/status?quarter=Q`.
pub(super) async fn status(State(s): Services, Query(p): Query<StatusQuery>) -> Resp {
    let q = match quarter(&p.quarter) {
        Ok(q) => q,
        Err(resp) => return resp,
    };
    let today = chrono::Local::now().date_naive();
    blocking_json(move || {
        crate::reports::status::status(&s.store, q, &s.reports, today).map_err(internal)
    })
    .await
}

/// The query of `GET /reports/show`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ShowQuery {
    /// The quarter.
    quarter: String,
    /// One unit's report (default: every unit's latest).
    unit: Option<String>,
    /// One version of it (default: the latest).
    version: Option<u64>,
}

/// `GET /reports/show?quarter=Q&unit=U[&version=N]`: one report; or every unit's latest
/// without `unit`.
pub(super) async fn show(State(s): Services, Query(p): Query<ShowQuery>) -> Resp {
    let q = match quarter(&p.quarter) {
        Ok(q) => q,
        Err(resp) => return resp,
    };
    let version = p.version;
    let unit = match p.unit.as_deref().map(Uscc::parse) {
        None => None,
        Some(Ok(u)) => Some(u),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    blocking_json(move || match unit {
        Some(u) => match s.store.report_get(q, &u, version).map_err(internal)? {
            Some(r) => serde_json::to_value(r).map_err(internal),
            None => Err(error(
                StatusCode::NOT_FOUND,
                format!(
                    "no report of {u} for {q}{}: run `xianjie reports status --quarter {q}`",
                    version.map_or(String::new(), |v| format!(" in version {v}"))
                ),
            )),
        },
        None => {
            serde_json::to_value(s.store.reports_latest(q).map_err(internal)?).map_err(internal)
        }
    })
    .await
}

/// `POST /reports/disclose`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscloseRequest {
    /// The quarter.
    pub quarter: String,
    /// `csv`, `xlsx` or `html`.
    pub format: String,
    /// Output directory on the gateway host (absolute).
    pub out: String,
}

/// `POST /reports/disclose`: writes the public disclosure of the quarter's latest reports;
/// audited before anything is written.
pub(super) async fn disclose(
    State(s): Services,
    Admin(actor): Admin,
    Json(r): Json<DiscloseRequest>,
) -> Resp {
    let q = match quarter(&r.quarter) {
        Ok(q) => q,
        Err(resp) => return resp,
    };
    let format = match r.format.parse::<crate::reports::disclose::Format>() {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let out = std::path::PathBuf::from(&r.out);
    if !out.is_absolute() {
        return error(
            StatusCode::BAD_REQUEST,
            "the output directory must be absolute",
        );
    }
    blocking_json(move || {
        let reports = s.store.reports_latest(q).map_err(internal)?;
        if reports.is_empty() {
            return Err(error(
                StatusCode::CONFLICT,
                format!("no reports for {q} yet: run `xianjie reports build --quarter {q}` first"),
            ));
        }
        s.audit
            .append(
                &crate::audit::Event::new(actor.clone(), "reports.disclose", q.to_string())
                    .detail("format", format.as_str())
                    .detail("out", r.out.as_str()),
            )
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        let paths = crate::reports::disclose::write(q, &reports, format, &out)
            .map_err(|e| error(StatusCode::CONFLICT, e.to_string()))?;
        Ok(paths
            .into_iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>())
    })
    .await
}

/// `POST /reports/submit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmitRequest {
    /// The unit's USCC.
    pub unit: String,
    /// The quarter.
    pub quarter: String,
    /// The file on the gateway host (absolute).
    pub path: String,
    /// A directory of documents to keep with it (absolute), if any.
    pub documents: Option<String>,
}

/// What a submission became.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmitAnswer {
    /// Version stored (or the unchanged latest one).
    pub version: u64,
    /// Whether it is a new version (false: the same content was submitted before).
    pub new_version: bool,
    /// Cases in it.
    pub cases: u64,
    /// Documents kept.
    pub documents: u64,
    /// Content digest.
    pub digest: String,
}

/// `POST /reports/submit`: audited; a refusal lists every problem.
pub(super) async fn submit(
    State(s): Services,
    Admin(actor): Admin,
    Json(r): Json<SubmitRequest>,
) -> Resp {
    let q = match quarter(&r.quarter) {
        Ok(q) => q,
        Err(resp) => return resp,
    };
    let unit = match Uscc::parse(&r.unit) {
        Ok(u) => u,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match s
        .jobs
        .clone()
        .submit_report(
            unit,
            q,
            r.path.clone().into(),
            r.documents.map(Into::into),
            actor,
        )
        .await
    {
        Ok((report, stored)) => json(
            StatusCode::OK,
            &SubmitAnswer {
                version: report.version,
                new_version: matches!(stored, ReportStored::New { .. }),
                cases: report.summary.total,
                documents: report.documents.len() as u64,
                digest: report.digest,
            },
        ),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}
