//! Admin routes for the console's users: add, list, reset, disable. Each runs on a blocking thread
//! (Argon2id hashing), is attributed to the administrator named in the request and audited by the
//! user directory; directory errors map to statuses here, in one place ([`status`]).

// Handlers return a ready response as their error: one per request, so its size costs nothing.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::Done;
use super::server::{Admin, Resp, Services, blocking, blocking_json, error, json};
use crate::console::directory::{DirectoryError, Enrolment};
use crate::console::users::{Grant, UserName};
use crate::keys::custody::CustodyError;

/// `POST /users`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRequest {
    /// Sign-in name.
    pub name: String,
    /// `analyst`, `unit` or `admin`.
    pub role: String,
    /// The API client an analyst acts through.
    pub client: Option<String>,
    /// The unit (USCC) of a unit user.
    pub unit: Option<String>,
}

/// A one-time password and TOTP enrolment, shown once.
#[derive(Serialize, Deserialize)]
pub struct EnrolmentShown {
    /// The user.
    pub name: String,
    /// The one-time password.
    pub password: String,
    /// The `otpauth://` URI for the authenticator app.
    pub otpauth: String,
}

impl std::fmt::Debug for EnrolmentShown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolmentShown")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl From<Enrolment> for EnrolmentShown {
    fn from(e: Enrolment) -> Self {
        EnrolmentShown {
            password: e.password.expose().to_string(),
            otpauth: e.otpauth.expose().to_string(),
            name: e.name,
        }
    }
}

/// The one mapping of directory errors to admin statuses.
fn status(e: &DirectoryError) -> StatusCode {
    match e {
        DirectoryError::User(_) | DirectoryError::Password(_) => StatusCode::BAD_REQUEST,
        DirectoryError::NotFound(_) => StatusCode::NOT_FOUND,
        DirectoryError::Exists(_) | DirectoryError::Disabled(_) => StatusCode::CONFLICT,
        DirectoryError::Custody(CustodyError::Sealed)
        | DirectoryError::Custody(CustodyError::Audit(_))
        | DirectoryError::Audit(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn err(e: DirectoryError) -> Resp {
    error(status(&e), e.to_string())
}

fn name(s: &str) -> Result<UserName, Resp> {
    UserName::parse(s).map_err(|e| err(e.into()))
}

/// `GET /users` (audited: who may sign in is itself worth a record of who looked).
pub(super) async fn list(State(s): Services, Admin(actor): Admin) -> Resp {
    blocking_json(move || {
        let list = s.users.list().map_err(err)?;
        s.audit
            .append(
                &crate::audit::Event::new(actor, "console.user.list", "users")
                    .detail("count", list.len() as u64),
            )
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        Ok(list)
    })
    .await
}

/// `POST /users`: the client an analyst acts through must exist and not be revoked, and a unit
/// user's unit must be one an adapter delivers.
pub(super) async fn add(
    State(s): Services,
    Admin(actor): Admin,
    Json(r): Json<UserRequest>,
) -> Resp {
    let res = blocking(move || {
        let user = name(&r.name)?;
        let grant = Grant::new(&r.role, r.client.as_deref(), r.unit.as_deref())
            .map_err(|e| err(e.into()))?;
        match &grant {
            Grant::Analyst { client } => {
                let known = s
                    .custody
                    .clients()
                    .map_err(|e| err(e.into()))?
                    .into_iter()
                    .any(|c| c.name == *client && c.revoked_at.is_none());
                if !known {
                    return Err(error(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "client {client} does not exist or is revoked (see `xianjie clients list`)"
                        ),
                    ));
                }
            }
            Grant::Unit { unit } => {
                if !s.adapters.iter().any(|a| a.units.contains_key(unit)) {
                    return Err(error(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "unit {unit} is not a unit of any adapter (see `xianjie adapters list`)"
                        ),
                    ));
                }
            }
            Grant::Admin => {}
        }
        s.users
            .add(&user, &grant, &actor)
            .map(EnrolmentShown::from)
            .map_err(err)
    })
    .await;
    match res {
        Ok(v) => json(StatusCode::OK, &v),
        Err(resp) => resp,
    }
}

/// `POST /users/{name}/reset`.
pub(super) async fn reset(State(s): Services, Admin(actor): Admin, Path(n): Path<String>) -> Resp {
    blocking_json(move || {
        s.users
            .reset(&name(&n)?, &actor)
            .map(EnrolmentShown::from)
            .map_err(err)
    })
    .await
}

/// `POST /users/{name}/disable`.
pub(super) async fn disable(
    State(s): Services,
    Admin(actor): Admin,
    Path(n): Path<String>,
) -> Resp {
    blocking_json(move || {
        s.users.disable(&name(&n)?, &actor).map_err(err)?;
        Ok(Done {
            message: format!("user {n} disabled; their sessions end at their next request"),
            value: None,
        })
    })
    .await
}
