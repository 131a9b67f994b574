//! Admin routes for custody and the audit log: unlock, seal, key rotation, credentials, clients,
//! audit tail, checkpoint, proofs and export. Every handler runs the blocking custody or audit
//! call on a blocking thread, attributes it to the administrator named in the request, and maps
//! custody errors to statuses in one place ([`custody_status`]).

// Handlers return a ready response as their error: one per request, so its size costs nothing.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine;
use serde::Deserialize;

use super::grants::{Grant, GrantError};
use super::server::{Admin, Resp, Services, blocking, blocking_json, error, internal, json};
use super::{
    ChangePassphraseRequest, ClientRequest, CredentialRequest, Done, ExportRequest, PortRequest,
    ProofAnswer, RotateRequest, SecretShown, UnlockRequest,
};
use crate::audit::AuditError;
use crate::keys::custody::CustodyError;
use crate::keys::secret::{Passphrase, SecretString};

fn b64(h: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(h)
}

/// The one mapping of custody errors to admin statuses.
fn custody_status(e: &CustodyError) -> StatusCode {
    match e {
        CustodyError::Sealed | CustodyError::Audit(_) => StatusCode::SERVICE_UNAVAILABLE,
        CustodyError::WrongPassphrase { .. } => StatusCode::UNAUTHORIZED,
        CustodyError::Rollback { .. }
        | CustodyError::AlreadyUnlocked
        | CustodyError::ClientExists(_) => StatusCode::CONFLICT,
        CustodyError::NotFound { .. } => StatusCode::NOT_FOUND,
        CustodyError::Invalid(_) => StatusCode::BAD_REQUEST,
        CustodyError::Keystore(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn audit_status(e: &AuditError) -> StatusCode {
    match e {
        AuditError::Proof(_) | AuditError::NoCheckpoint => StatusCode::BAD_REQUEST,
        AuditError::Broken(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn custody_err(e: CustodyError) -> Resp {
    error(custody_status(&e), e.to_string())
}

fn audit_err(e: AuditError) -> Resp {
    error(audit_status(&e), e.to_string())
}

fn done(message: impl Into<String>, value: Option<String>) -> Resp {
    json(
        StatusCode::OK,
        &Done {
            message: message.into(),
            value,
        },
    )
}

/// `POST /unlock`.
pub(super) async fn unlock(
    State(s): Services,
    Admin(actor): Admin,
    Json(r): Json<UnlockRequest>,
) -> Resp {
    let pass = Passphrase::new(r.passphrase);
    let res = blocking(move || s.custody.unlock(&pass, &actor).map_err(custody_err)).await;
    match res {
        Ok(v) => done("unlocked", Some(v.to_string())),
        Err(resp) => resp,
    }
}

/// `POST /seal`.
pub(super) async fn seal(State(s): Services, Admin(actor): Admin) -> Resp {
    match blocking(move || s.custody.seal(&actor).map_err(custody_err)).await {
        Ok(()) => done("sealed", None),
        Err(resp) => resp,
    }
}

/// `POST /keys/rotate/jwt`.
pub(super) async fn rotate_jwt(State(s): Services, Admin(actor): Admin) -> Resp {
    match blocking(move || s.custody.rotate_jwt(&actor).map_err(custody_err)).await {
        Ok(kid) => done("new JWT signing key is current", Some(kid)),
        Err(resp) => resp,
    }
}

/// `POST /keys/passphrase`: the custody handover.
pub(super) async fn change_passphrase(
    State(s): Services,
    Admin(actor): Admin,
    Json(r): Json<ChangePassphraseRequest>,
) -> Resp {
    let (current, new) = (Passphrase::new(r.current), Passphrase::new(r.new));
    let res = blocking(move || {
        s.custody
            .change_passphrase(&current, &new, &actor)
            .map_err(custody_err)
    })
    .await;
    match res {
        Ok(v) => done("keystore passphrase changed", Some(v.to_string())),
        Err(resp) => resp,
    }
}

/// `GET /credentials`.
pub(super) async fn credentials(State(s): Services) -> Resp {
    blocking_json(move || s.custody.credentials().map_err(custody_err)).await
}

/// `POST /credentials/{destination}`.
pub(super) async fn set_credential(
    State(s): Services,
    Admin(actor): Admin,
    Path(destination): Path<String>,
    Json(r): Json<CredentialRequest>,
) -> Resp {
    let secret = SecretString::new(r.secret);
    let res = blocking(move || {
        s.custody
            .set_credential(&destination, &secret, &actor)
            .map_err(custody_err)
    })
    .await;
    match res {
        Ok(v) => done("credential stored", Some(v.to_string())),
        Err(resp) => resp,
    }
}

/// `GET /clients`.
pub(super) async fn clients(State(s): Services) -> Resp {
    blocking_json(move || s.custody.clients().map_err(custody_err)).await
}

/// `POST /clients`.
pub(super) async fn add_client(
    State(s): Services,
    Admin(actor): Admin,
    Json(r): Json<ClientRequest>,
) -> Resp {
    let res = blocking(move || {
        s.custody
            .add_client_bound(
                &r.name,
                r.cert_fingerprint.as_deref(),
                r.cert_subject.as_deref(),
                &actor,
            )
            .map_err(custody_err)
    })
    .await;
    match res {
        Ok(s) => json(
            StatusCode::OK,
            &SecretShown {
                client: s.client,
                secret: s.secret.expose().to_string(),
                old_secret_until: None,
            },
        ),
        Err(resp) => resp,
    }
}

/// `POST /clients/{name}/rotate-secret`.
pub(super) async fn rotate_client(
    State(s): Services,
    Admin(actor): Admin,
    Path(name): Path<String>,
    Json(r): Json<RotateRequest>,
) -> Resp {
    let overlap = r.overlap_secs.map_or(s.rotate_overlap, Duration::from_secs);
    let res = blocking(move || {
        s.custody
            .rotate_client_secret(&name, overlap, &actor)
            .map_err(custody_err)
    })
    .await;
    match res {
        Ok(s) => json(
            StatusCode::OK,
            &SecretShown {
                client: s.client,
                secret: s.secret.expose().to_string(),
                old_secret_until: Some(
                    chrono::Utc::now() + chrono::Duration::from_std(overlap).unwrap_or_default(),
                ),
            },
        ),
        Err(resp) => resp,
    }
}

/// `POST /clients/{name}/revoke`.
pub(super) async fn revoke_client(
    State(s): Services,
    Admin(actor): Admin,
    Path(name): Path<String>,
) -> Resp {
    let shown = name.clone();
    match blocking(move || s.custody.revoke_client(&name, &actor).map_err(custody_err)).await {
        Ok(()) => done(format!("client {shown} revoked"), None),
        Err(resp) => resp,
    }
}

/// The query of `GET /audit/tail`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TailQuery {
    /// Entries wanted (default 20).
    n: Option<usize>,
}

/// `GET /audit/tail?n=N`.
pub(super) async fn tail(State(s): Services, Query(q): Query<TailQuery>) -> Resp {
    let n = q.n.unwrap_or(20);
    blocking_json(move || s.audit.tail(n).map_err(audit_err)).await
}

/// `GET /audit/checkpoint`: the latest signed checkpoint (signing a fresh one when unlocked).
pub(super) async fn checkpoint(State(s): Services) -> Resp {
    match blocking(move || s.audit.checkpoint().map_err(audit_err)).await {
        Ok(note) => done(note, None),
        Err(resp) => resp,
    }
}

/// The query of `GET /audit/proof/inclusion`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InclusionQuery {
    /// Leaf index.
    index: u64,
    /// Tree size (default: the current one).
    size: Option<u64>,
}

/// `GET /audit/proof/inclusion?index=I[&size=N]`.
pub(super) async fn inclusion(State(s): Services, Query(q): Query<InclusionQuery>) -> Resp {
    blocking_json(move || {
        let (size, root, proof) = s.audit.inclusion(q.index, q.size).map_err(audit_err)?;
        let leaf = s.audit.inclusion_leaf(q.index).map_err(audit_err)?;
        Ok(ProofAnswer {
            kind: "inclusion".into(),
            from: q.index,
            size,
            root: b64(&root),
            old_root: None,
            leaf: Some(b64(&leaf)),
            proof: proof.iter().map(|h| b64(h)).collect(),
        })
    })
    .await
}

/// The query of `GET /audit/proof/consistency`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsistencyQuery {
    /// Old tree size.
    old: u64,
    /// New tree size.
    new: u64,
}

/// `GET /audit/proof/consistency?old=M&new=N`.
pub(super) async fn consistency(State(s): Services, Query(q): Query<ConsistencyQuery>) -> Resp {
    blocking_json(move || {
        let (old_root, root, proof) = s.audit.consistency(q.old, q.new).map_err(audit_err)?;
        Ok(ProofAnswer {
            kind: "consistency".into(),
            from: q.old,
            size: q.new,
            root: b64(&root),
            old_root: Some(b64(&old_root)),
            leaf: None,
            proof: proof.iter().map(|h| b64(h)).collect(),
        })
    })
    .await
}

/// Opens or closes a port (`POST /ports/open`, `/ports/close`), or allows or denies submissions
/// (`POST /reports/submitters/allow`, `/deny`) or report reading (`POST /reports/readers/allow`,
/// `/deny`): audited before and after, then a checkpoint.
pub(super) async fn grant(
    State(s): Services,
    Admin(actor): Admin,
    Json(r): Json<PortRequest>,
    open: bool,
    kind: Grant,
) -> Resp {
    let res = blocking(move || {
        let unit = crate::model::Uscc::parse(&r.unit)
            .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))?;
        super::grants::change(
            &s.store,
            &s.audit,
            &s.custody,
            actor,
            &unit,
            &r.client,
            r.supervise,
            open,
            kind,
        )
        .map_err(|e| match e {
            GrantError::NoClient(_) => error(StatusCode::NOT_FOUND, e.to_string()),
            GrantError::Custody(e) => custody_err(e),
            GrantError::Audit(e) => audit_err(e),
            GrantError::Store(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        })
    })
    .await;
    let what = match kind {
        Grant::Port => [
            "port opened",
            "port was already open",
            "port closed",
            "port was not open",
        ],
        Grant::Submit => [
            "submissions allowed",
            "submissions were already allowed",
            "submissions denied",
            "submissions were not allowed",
        ],
        Grant::ReadReports => [
            "report reading allowed",
            "report reading was already allowed",
            "report reading denied",
            "report reading was not allowed",
        ],
    };
    match res {
        Ok(changed) => done(
            match (open, changed) {
                (true, true) => what[0],
                (true, false) => what[1],
                (false, true) => what[2],
                (false, false) => what[3],
            },
            None,
        ),
        Err(resp) => resp,
    }
}

/// `GET /ports`.
pub(super) async fn ports(State(s): Services) -> Resp {
    blocking_json(move || s.store.ports().map_err(internal)).await
}

/// `POST /audit/export`.
pub(super) async fn export(
    State(s): Services,
    Admin(actor): Admin,
    Json(r): Json<ExportRequest>,
) -> Resp {
    let res = blocking(move || {
        let dir = std::path::PathBuf::from(&r.dir);
        s.audit
            .append(&crate::audit::Event::new(actor, "audit.export", &r.dir))
            .map_err(audit_err)?;
        s.audit.export(&dir).map_err(audit_err)
    })
    .await;
    match res {
        Ok(n) => done(format!("{n} entries exported"), Some(n.to_string())),
        Err(resp) => resp,
    }
}
