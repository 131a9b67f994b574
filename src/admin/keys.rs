//! Admin routes for custody and the audit log: unlock, seal, key rotation, credentials, clients,
//! audit tail, checkpoint, proofs and export. Every handler runs the blocking custody or audit
//! call on a blocking thread, attributes it to the administrator named in the request, and maps
//! custody errors to statuses in one place ([`custody_status`]).

// Handlers return a ready response as their error: one per request, so its size costs nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hyper::StatusCode;

use super::server::{Resp, blocking, error, json};
use super::{
    ClientRequest, CredentialRequest, Done, ExportRequest, PortRequest, ProofAnswer, RotateRequest,
    SecretShown, UnlockRequest,
};
use crate::audit::{Actor, AuditError};
use crate::gateway::Gateway;
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
pub(super) async fn unlock(gw: Arc<Gateway>, actor: Actor, r: UnlockRequest) -> Resp {
    let pass = Passphrase::new(r.passphrase);
    let res = blocking(move || gw.custody.unlock(&pass, &actor).map_err(custody_err)).await;
    match res {
        Ok(v) => done("unlocked", Some(v.to_string())),
        Err(resp) => resp,
    }
}

/// `POST /seal`.
pub(super) async fn seal(gw: Arc<Gateway>, actor: Actor) -> Resp {
    match blocking(move || gw.custody.seal(&actor).map_err(custody_err)).await {
        Ok(()) => done("sealed", None),
        Err(resp) => resp,
    }
}

/// `POST /keys/rotate/jwt`.
pub(super) async fn rotate_jwt(gw: Arc<Gateway>, actor: Actor) -> Resp {
    match blocking(move || gw.custody.rotate_jwt(&actor).map_err(custody_err)).await {
        Ok(kid) => done("new JWT signing key is current", Some(kid)),
        Err(resp) => resp,
    }
}

/// `GET /credentials`.
pub(super) async fn credentials(gw: Arc<Gateway>) -> Resp {
    match blocking(move || gw.custody.credentials().map_err(custody_err)).await {
        Ok(list) => json(StatusCode::OK, &list),
        Err(resp) => resp,
    }
}

/// `POST /credentials/{destination}`.
pub(super) async fn set_credential(
    gw: Arc<Gateway>,
    actor: Actor,
    destination: String,
    r: CredentialRequest,
) -> Resp {
    let secret = SecretString::new(r.secret);
    let res = blocking(move || {
        gw.custody
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
pub(super) async fn clients(gw: Arc<Gateway>) -> Resp {
    match blocking(move || gw.custody.clients().map_err(custody_err)).await {
        Ok(list) => json(StatusCode::OK, &list),
        Err(resp) => resp,
    }
}

/// `POST /clients`.
pub(super) async fn add_client(gw: Arc<Gateway>, actor: Actor, r: ClientRequest) -> Resp {
    let res = blocking(move || {
        gw.custody
            .add_client(&r.name, r.cert_fingerprint.as_deref(), &actor)
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
    gw: Arc<Gateway>,
    actor: Actor,
    name: String,
    r: RotateRequest,
) -> Resp {
    let overlap = r
        .overlap_secs
        .map_or(gw.config.rotate_overlap, Duration::from_secs);
    let res = blocking(move || {
        gw.custody
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
pub(super) async fn revoke_client(gw: Arc<Gateway>, actor: Actor, name: String) -> Resp {
    let shown = name.clone();
    match blocking(move || gw.custody.revoke_client(&name, &actor).map_err(custody_err)).await {
        Ok(()) => done(format!("client {shown} revoked"), None),
        Err(resp) => resp,
    }
}

fn query_u64(query: &str, key: &str) -> Result<Option<u64>, Resp> {
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        if k == key {
            return v.parse().map(Some).map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("{key}={v} is not a whole number"),
                )
            });
        }
    }
    Ok(None)
}

/// `GET /audit/tail?n=N`.
pub(super) async fn tail(gw: Arc<Gateway>, query: String) -> Resp {
    let n = match query_u64(&query, "n") {
        Ok(n) => n.unwrap_or(20) as usize,
        Err(resp) => return resp,
    };
    match blocking(move || gw.audit.tail(n).map_err(audit_err)).await {
        Ok(entries) => json(StatusCode::OK, &entries),
        Err(resp) => resp,
    }
}

/// `GET /audit/checkpoint`: the latest signed checkpoint (signing a fresh one when unlocked).
pub(super) async fn checkpoint(gw: Arc<Gateway>) -> Resp {
    match blocking(move || gw.audit.checkpoint().map_err(audit_err)).await {
        Ok(note) => done(note, None),
        Err(resp) => resp,
    }
}

/// `GET /audit/proof/inclusion?index=I[&size=N]` and `GET /audit/proof/consistency?old=&new=`.
pub(super) async fn proof(gw: Arc<Gateway>, kind: &str, query: String) -> Resp {
    let kind = kind.to_string();
    let res = blocking(move || {
        if kind == "inclusion" {
            let index = query_u64(&query, "index")?
                .ok_or_else(|| error(StatusCode::BAD_REQUEST, "index= is required"))?;
            let size = query_u64(&query, "size")?;
            let (size, root, proof) = gw.audit.inclusion(index, size).map_err(audit_err)?;
            let leaf = gw.audit.inclusion_leaf(index).map_err(audit_err)?;
            Ok(ProofAnswer {
                kind,
                from: index,
                size,
                root: b64(&root),
                old_root: None,
                leaf: Some(b64(&leaf)),
                proof: proof.iter().map(|h| b64(h)).collect(),
            })
        } else {
            let old = query_u64(&query, "old")?
                .ok_or_else(|| error(StatusCode::BAD_REQUEST, "old= is required"))?;
            let new = query_u64(&query, "new")?
                .ok_or_else(|| error(StatusCode::BAD_REQUEST, "new= is required"))?;
            let (old_root, root, proof) = gw.audit.consistency(old, new).map_err(audit_err)?;
            Ok(ProofAnswer {
                kind,
                from: old,
                size: new,
                root: b64(&root),
                old_root: Some(b64(&old_root)),
                leaf: None,
                proof: proof.iter().map(|h| b64(h)).collect(),
            })
        }
    })
    .await;
    match res {
        Ok(p) => json(StatusCode::OK, &p),
        Err(resp) => resp,
    }
}

/// `POST /ports/open` (`open`) and `POST /ports/close`: audited, then a checkpoint at once.
pub(super) async fn port(gw: Arc<Gateway>, actor: Actor, r: PortRequest, open: bool) -> Resp {
    grant(gw, actor, r, open, Grant::Port).await
}

/// What a client is granted on a unit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Grant {
    /// Reading its cases (`port:<unit>:read`).
    Port,
    /// Submitting its quarterly reports (`submit:<unit>`).
    Submit,
}

/// Opens or closes a port, or allows or denies submissions: audited before and after, then a
/// checkpoint.
pub(super) async fn grant(
    gw: Arc<Gateway>,
    actor: Actor,
    r: PortRequest,
    open: bool,
    kind: Grant,
) -> Resp {
    let res = blocking(move || {
        let unit = crate::model::Uscc::parse(&r.unit)
            .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))?;
        let known = gw.custody.clients().map_err(custody_err)?;
        if open
            && !known
                .iter()
                .any(|c| c.name == r.client && c.revoked_at.is_none())
        {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!(
                    "no active client {} (add it with `xianjie clients add {}`)",
                    r.client, r.client
                ),
            ));
        }
        let action = match (kind, open) {
            (Grant::Port, true) => "port.open",
            (Grant::Port, false) => "port.close",
            (Grant::Submit, true) => "submit.allow",
            (Grant::Submit, false) => "submit.deny",
        };
        let target = format!("{unit}/{}", r.client);
        gw.audit
            .append(&crate::audit::Event::new(actor.clone(), action, &target).outcome("started"))
            .map_err(audit_err)?;
        let changed = match (kind, open) {
            (Grant::Port, true) => gw.store.port_open(&crate::store::PortGrant {
                unit_code: unit.clone(),
                client: r.client.clone(),
                opened_by: actor.id.clone(),
                opened_at: chrono::Utc::now(),
            }),
            (Grant::Port, false) => gw.store.port_close(&unit, &r.client),
            (Grant::Submit, true) => gw.store.submit_grant(&crate::store::SubmitGrant {
                unit_code: unit.clone(),
                client: r.client.clone(),
                granted_by: actor.id.clone(),
                granted_at: chrono::Utc::now(),
            }),
            (Grant::Submit, false) => gw.store.submit_revoke(&r.client, &unit),
        }
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        gw.audit
            .append(&crate::audit::Event::new(actor, action, &target).detail("changed", changed))
            .map_err(audit_err)?;
        gw.audit.checkpoint().map_err(audit_err)?;
        Ok(changed)
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
pub(super) async fn ports(gw: Arc<Gateway>) -> Resp {
    match gw.store.ports() {
        Ok(list) => json(StatusCode::OK, &list),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /audit/export`.
pub(super) async fn export(gw: Arc<Gateway>, actor: Actor, r: ExportRequest) -> Resp {
    let res = blocking(move || {
        let dir = std::path::PathBuf::from(&r.dir);
        gw.audit
            .append(&crate::audit::Event::new(actor, "audit.export", &r.dir))
            .map_err(audit_err)?;
        gw.audit.export(&dir).map_err(audit_err)
    })
    .await;
    match res {
        Ok(n) => done(format!("{n} entries exported"), Some(n.to_string())),
        Err(resp) => resp,
    }
}
