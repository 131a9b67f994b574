//! Admin routes for pushes: run a cycle now, status, the dead-letter list and requeueing, and
//! the public key receivers verify package signatures with.

// Handlers return a ready response as their error: one per request, so its size costs nothing.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::Done;
use super::server::{Admin, Resp, Services, blocking_json, error, found, internal, json};
use crate::push::worker::PushError;

/// `POST /push/run`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunRequest {
    /// One destination, or every one.
    pub destination: Option<String>,
}

/// `POST /push/dead/requeue`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RequeueRequest {
    /// Dead-letter ids.
    pub ids: Vec<u64>,
    /// Every dead letter (of `destination`, when given).
    pub all: bool,
    /// With `all`: only this destination's.
    pub destination: Option<String>,
}

/// `GET /push/key`: how receivers verify package signatures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushKey {
    /// Key id, as in the signature header.
    pub key_id: String,
    /// The Ed25519 public key, base64 (32 bytes).
    pub public_key: String,
    /// The same key as a PEM SubjectPublicKeyInfo (for `openssl pkeyutl -verify`).
    pub pem: String,
}

fn push_status(e: &PushError) -> StatusCode {
    match e {
        PushError::Unknown(_) => StatusCode::NOT_FOUND,
        PushError::Audit(_) => StatusCode::SERVICE_UNAVAILABLE,
        PushError::Store(_) | PushError::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `POST /push/run`: one cycle per destination (or the one named), in turn; answers when done.
pub(super) async fn run(
    State(s): Services,
    Admin(actor): Admin,
    Json(r): Json<RunRequest>,
) -> Resp {
    let names = match r.destination {
        Some(d) => vec![d],
        None => s.push.names(),
    };
    let mut reports = Vec::new();
    for name in names {
        match s.push.cycle(&name, &actor, true).await {
            Ok(rep) => reports.push(rep),
            Err(e) => return error(push_status(&e), e.to_string()),
        }
    }
    json(StatusCode::OK, &reports)
}

/// `GET /push/status`.
pub(super) async fn status(State(s): Services) -> Resp {
    blocking_json(move || {
        s.push
            .status()
            .map_err(|e| error(push_status(&e), e.to_string()))
    })
    .await
}

/// The query of `GET /push/dead`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeadQuery {
    /// One destination's dead letters only.
    destination: Option<String>,
    /// At most this many (default 100).
    limit: Option<usize>,
}

/// `GET /push/dead?destination=NAME&limit=N`.
pub(super) async fn dead_list(State(s): Services, Query(q): Query<DeadQuery>) -> Resp {
    blocking_json(move || {
        s.store
            .dead_list(q.destination.as_deref(), q.limit.unwrap_or(100))
            .map_err(internal)
    })
    .await
}

/// `GET /push/dead/{id}`.
pub(super) async fn dead_show(State(s): Services, Path(id): Path<String>) -> Resp {
    let Ok(id) = id.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not a dead-letter id"),
        );
    };
    blocking_json(move || found(s.store.dead_get(id), || format!("no dead letter {id}"))).await
}

/// `POST /push/dead/requeue`: audited before the entries move.
pub(super) async fn requeue(
    State(s): Services,
    Admin(actor): Admin,
    Json(r): Json<RequeueRequest>,
) -> Resp {
    blocking_json(move || {
        let ids: Vec<u64> = if r.all {
            s.store
                .dead_list(r.destination.as_deref(), usize::MAX)
                .map_err(internal)?
                .iter()
                .map(|d| d.id)
                .collect()
        } else {
            r.ids.clone()
        };
        if ids.is_empty() {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "name dead-letter ids, or --all",
            ));
        }
        let moved = s
            .push
            .requeue(&ids, r.destination.as_deref(), &actor)
            .map_err(|e| error(push_status(&e), e.to_string()))?;
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !moved.iter().any(|d| d.id == **id))
            .map(u64::to_string)
            .collect();
        let mut message = format!("{} dead letter(s) back in the outbox", moved.len());
        if !missing.is_empty() {
            message.push_str(&format!("; no dead letter {}", missing.join(", ")));
        }
        Ok(Done {
            message,
            value: Some(moved.len().to_string()),
        })
    })
    .await
}

/// `GET /push/key`.
pub(super) async fn key(State(s): Services, Admin(actor): Admin) -> Resp {
    blocking_json(move || {
        let (key_id, public_key) = s
            .push
            .public_key(&actor)
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        Ok(PushKey {
            pem: spki_pem(&public_key),
            key_id,
            public_key,
        })
    })
    .await
}

/// An Ed25519 public key (base64 of 32 bytes) as a PEM SubjectPublicKeyInfo (RFC 8410).
fn spki_pem(public_b64: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend(b64.decode(public_b64).unwrap_or_default());
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        b64.encode(der)
    )
}
