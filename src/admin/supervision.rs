//! Admin routes for the unit's side of supervision: the procuratorate's actions listed and shown
//! on the gateway host, and the unit's answer recorded — each audited (a read of case-related
//! data by the administrator is recorded as a client's is).

// Handlers return a ready response as their error: one per request, so its size costs nothing.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::server::{Admin, Resp, Services, blocking_json, error, found, internal};
use crate::supervision::actions::{Action, AnswerRequest};
use crate::supervision::workbench::{self, WorkError};

/// Most actions one list answers.
const MAX_LIST: usize = 1000;

/// `GET /supervision` parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListQuery {
    /// Only this unit's.
    pub unit: Option<String>,
    /// Only those still waiting for an answer.
    #[serde(default)]
    pub open: bool,
}

/// An action with the title of its case, as `supervision list` and `show` print it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shown {
    /// The action.
    #[serde(flatten)]
    pub action: Action,
    /// The case's title (absent when the case is gone from the store).
    pub case_title: Option<String>,
}

fn shown(s: &super::server::AdminServices, a: Action) -> Result<Shown, Resp> {
    let case_title = s
        .store
        .get_case(&a.unit_code, &a.case_id)
        .map_err(internal)?
        .map(|c| c.title);
    Ok(Shown {
        action: a,
        case_title,
    })
}

/// `GET /supervision`: the newest actions first, at most [`MAX_LIST`].
pub(super) async fn list(
    State(s): Services,
    Admin(actor): Admin,
    Query(q): Query<ListQuery>,
) -> Resp {
    blocking_json(move || {
        let unit = match &q.unit {
            Some(u) => Some(
                crate::model::Uscc::parse(u)
                    .map_err(|e| error(StatusCode::BAD_REQUEST, format!("--unit: {e}")))?,
            ),
            None => None,
        };
        let mut out = Vec::new();
        for a in s.store.all_supervision::<Action>() {
            let a = a.map_err(internal)?;
            if unit.as_ref().is_some_and(|u| *u != a.unit_code) || (q.open && !a.is_open()) {
                continue;
            }
            out.push(a);
            if out.len() == MAX_LIST {
                break;
            }
        }
        s.audit
            .append(
                &crate::audit::Event::new(
                    actor,
                    "supervision.list",
                    unit.as_ref().map_or("all", |u| u.as_str()),
                )
                .detail("open", q.open)
                .detail("count", out.len() as u64),
            )
            .map_err(internal)?;
        out.into_iter()
            .map(|a| shown(&s, a))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
}

/// `GET /supervision/{id}`.
pub(super) async fn show(State(s): Services, Admin(actor): Admin, Path(id): Path<u64>) -> Resp {
    blocking_json(move || {
        let a: Action = found(s.store.get_supervision(id), || {
            format!("no supervision action {id} (see `xianjie supervision list`)")
        })?;
        s.audit
            .append(
                &crate::audit::Event::new(
                    actor,
                    "supervision.read",
                    format!("{}/{}", a.unit_code, a.case_id),
                )
                .detail("id", id),
            )
            .map_err(internal)?;
        shown(&s, a)
    })
    .await
}

/// `POST /supervision/{id}/answer`: the unit's answer, audited before and after.
pub(super) async fn answer(
    State(s): Services,
    Admin(actor): Admin,
    Path(id): Path<u64>,
    Json(r): Json<AnswerRequest>,
) -> Resp {
    blocking_json(move || {
        let (text, docs) = r
            .check()
            .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))?;
        let a: Action = found(s.store.get_supervision(id), || {
            format!("no supervision action {id} (see `xianjie supervision list`)")
        })?;
        let target = format!("{}/{}", a.unit_code, a.case_id);
        let event = crate::audit::Event::new(actor.clone(), "supervision.answer", &target)
            .detail("id", id)
            .detail("documents", docs.len() as u64);
        s.audit
            .append(&event.clone().outcome("started"))
            .map_err(internal)?;
        let a = workbench::answer(&s.store, id, &actor.id, text, &docs, chrono::Utc::now())
            .map_err(|e| match e {
                WorkError::NoAction(_) => error(StatusCode::NOT_FOUND, e.to_string()),
                e => internal(e),
            })?;
        s.audit
            .append(&event.detail("answers", a.answers.len() as u64))
            .map_err(internal)?;
        shown(&s, a)
    })
    .await
}
