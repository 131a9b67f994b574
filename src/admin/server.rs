//! The admin socket server: one axum route table served over the Unix socket in the data
//! directory. Only the gateway's own OS user may connect (checked with the peer's credentials
//! on every connection). Handlers receive [`AdminServices`], the parts of the gateway they work
//! with, never the gateway itself. Every answer that is not a success carries an [`ApiError`]
//! body, which is what the client shows the operator.

// Handlers return a ready response as their error: one per request, so its size costs nothing.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;
use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper::body::{Body, Bytes, Frame};
use serde::{Deserialize, Serialize};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tracing::warn;

use super::grants::Grant;
use super::{
    ApiError, IngestEvent, IngestRequest, RetryRequest, ScanRequest, Status, UnitStatus, keys,
    push, reports,
};
use crate::audit::{Actor, AuditLog};
use crate::config::ReportsConfig;
use crate::ingest::{self, Adapter, Summary};
use crate::keys::custody::Custody;
use crate::model::{CaseId, Quarter, Uscc};
use crate::push::worker::Pusher;
use crate::reports::QuarterlyReport;
use crate::reports::intake::IntakeError;
use crate::shutdown::Shutdown;
use crate::store::{ReportStored, Store};

/// An admin answer.
pub(super) type Resp = Response;

/// The services handed to every admin handler.
pub(super) type Services = State<Arc<AdminServices>>;

/// Largest admin request body accepted.
const MAX_BODY: usize = 1024 * 1024;

/// How long a request body may stall between two pieces. The client sends its small JSON body at
/// once; a body that stalls would otherwise hold the graceful stop open.
const BODY_IDLE: Duration = Duration::from_secs(30);

/// A future a [`Jobs`] method returns.
pub type JobFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Why a quarterly build failed (the gateway's own error, shown to the operator).
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// The reports of a quarterly build, each with whether it is a new version.
pub type Built = Vec<(QuarterlyReport, ReportStored)>;

/// Gateway-level runs an administrator can start: ingest runs (serialised per adapter), quarterly
/// builds and report submissions. The gateway implements it; the admin API holds it as a trait
/// object and needs nothing else of the gateway.
pub trait Jobs: Send + Sync {
    /// Scans `adapter`'s inbox (or ingests `path` in place), sending events as it goes; the
    /// totals, or why the run failed.
    fn ingest(
        self: Arc<Self>,
        adapter: String,
        path: Option<PathBuf>,
        actor: Actor,
        events: mpsc::Sender<IngestEvent>,
    ) -> JobFuture<Result<Summary, String>>;

    /// Builds quarter `q`'s reports and opens its submission window; audited.
    fn build_reports(
        self: Arc<Self>,
        q: Quarter,
        actor: Actor,
    ) -> JobFuture<Result<Built, BuildError>>;

    /// Takes the report file at `path` submitted for `unit` and `quarter`, with the document
    /// copies in the directory `documents`; audited.
    fn submit_report(
        self: Arc<Self>,
        unit: Uscc,
        quarter: Quarter,
        path: PathBuf,
        documents: Option<PathBuf>,
        actor: Actor,
    ) -> JobFuture<Result<(QuarterlyReport, ReportStored), IntakeError>>;
}

/// What the admin handlers work with: the gateway builds it from its parts.
pub struct AdminServices {
    /// The store.
    pub store: Store,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// The keystore under custody.
    pub custody: Arc<Custody>,
    /// The push delivery worker.
    pub push: Arc<Pusher>,
    /// Ingest runs, quarterly builds and submissions.
    pub jobs: Arc<dyn Jobs>,
    /// The configured adapters.
    pub adapters: Vec<Adapter>,
    /// The data directory (inboxes live below it).
    pub data_dir: PathBuf,
    /// How long a rotated client secret keeps working by default.
    pub rotate_overlap: Duration,
    /// The quarterly statistics settings.
    pub reports: ReportsConfig,
    /// The supervision rules.
    pub rules: Vec<crate::supervision::Rule>,
    /// Working days, for the transfer deadlines.
    pub calendar: crate::push::calendar::WorkCalendar,
    /// Held while leads are refreshed or rebuilt: one at a time.
    pub leads_lock: Arc<tokio::sync::Mutex<()>>,
    /// The console's users.
    pub users: Arc<crate::console::directory::Directory>,
    /// Leadership among the instances sharing the store.
    pub leader: crate::store::Leadership,
}

impl AdminServices {
    fn adapter(&self, name: &str) -> Option<&Adapter> {
        self.adapters.iter().find(|a| a.name == name)
    }

    fn unknown_adapter(&self, name: &str) -> Resp {
        let known: Vec<&str> = self.adapters.iter().map(|a| a.name.as_str()).collect();
        error(
            StatusCode::NOT_FOUND,
            format!("no adapter '{name}' (configured: {})", known.join(", ")),
        )
    }
}

/// The administrator named in the request (`--as`), for audit entries. The socket admits only the
/// gateway's OS user, so this attributes; it does not authenticate.
pub(super) struct Admin(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let name = parts
            .headers
            .get(super::ADMIN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(crate::api::query::percent_decode)
            .filter(|n| !n.is_empty() && n.len() <= 64)
            .unwrap_or_else(|| "unknown".into());
        Ok(Admin(Actor::admin(&name)))
    }
}

/// The admin API's one route table: it also answers unknown paths (404) and methods a route does
/// not take (405, with `Allow`).
fn router(services: Arc<AdminServices>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/unlock", post(keys::unlock))
        .route("/seal", post(keys::seal))
        .route("/keys/rotate/jwt", post(keys::rotate_jwt))
        .route("/keys/passphrase", post(keys::change_passphrase))
        .route("/credentials", get(keys::credentials))
        .route("/credentials/{destination}", post(keys::set_credential))
        .route("/clients", get(keys::clients).post(keys::add_client))
        .route("/clients/{name}/rotate-secret", post(keys::rotate_client))
        .route("/clients/{name}/revoke", post(keys::revoke_client))
        .route("/ports", get(keys::ports))
        .route("/users", get(super::users::list).post(super::users::add))
        .route("/users/{name}/reset", post(super::users::reset))
        .route("/users/{name}/disable", post(super::users::disable))
        .route(
            "/ports/open",
            post(|s, a, r| keys::grant(s, a, r, true, Grant::Port)),
        )
        .route(
            "/ports/close",
            post(|s, a, r| keys::grant(s, a, r, false, Grant::Port)),
        )
        .route("/audit/tail", get(keys::tail))
        .route("/audit/checkpoint", get(keys::checkpoint))
        .route("/audit/proof/inclusion", get(keys::inclusion))
        .route("/audit/proof/consistency", get(keys::consistency))
        .route("/audit/export", post(keys::export))
        .route("/push/run", post(push::run))
        .route("/push/status", get(push::status))
        .route("/push/key", get(push::key))
        .route("/push/dead", get(push::dead_list))
        .route("/push/dead/{id}", get(push::dead_show))
        .route("/push/dead/requeue", post(push::requeue))
        .route("/reports/build", post(reports::build))
        .route("/leads/rebuild", post(super::leads::rebuild))
        .route("/supervision", get(super::supervision::list))
        .route("/supervision/{id}", get(super::supervision::show))
        .route(
            "/supervision/{id}/answer",
            // An answer may carry documents: its own limit, above the socket's.
            post(super::supervision::answer)
                .layer(DefaultBodyLimit::max(crate::supervision::actions::MAX_BODY)),
        )
        .route("/reports/status", get(reports::status))
        .route("/reports/show", get(reports::show))
        .route("/reports/submit", post(reports::submit))
        .route("/reports/disclose", post(reports::disclose))
        .route(
            "/reports/submitters/allow",
            post(|s, a, r| keys::grant(s, a, r, true, Grant::Submit)),
        )
        .route(
            "/reports/submitters/deny",
            post(|s, a, r| keys::grant(s, a, r, false, Grant::Submit)),
        )
        .route(
            "/reports/readers/allow",
            post(|s, a, r| keys::grant(s, a, r, true, Grant::ReadReports)),
        )
        .route(
            "/reports/readers/deny",
            post(|s, a, r| keys::grant(s, a, r, false, Grant::ReadReports)),
        )
        .route("/ingest", post(ingest))
        .route("/scan", post(scan))
        .route("/cases/{unit}/{case_id}", get(case))
        .route("/quarantine", get(quarantine_list))
        .route("/quarantine/{id}", get(quarantine_show))
        .route("/quarantine/retry", post(retry))
        // After the routes: it applies to the routes registered before it.
        .method_not_allowed_fallback(|| async { StatusCode::METHOD_NOT_ALLOWED })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(BODY_IDLE))
        .with_state(services)
}

/// Serves the admin API on `listener` until `shutdown` is triggered: then it stops accepting and
/// returns once the requests in flight have been answered (a streamed ingest ends at its next
/// safe point).
pub async fn serve(
    services: Arc<AdminServices>,
    listener: UnixListener,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let listener = OwnUserOnly {
        inner: listener,
        uid: std::fs::metadata("/proc/self")?.uid(),
    };
    // Around the router rather than inside it (`Router::layer`), so that it also sees the `Allow`
    // header the router adds to its 405s.
    let app = tower::Layer::layer(&axum::middleware::from_fn(errors_as_json), router(services));
    axum::serve(listener, axum::ServiceExt::into_make_service(app))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}

/// The admin socket's listener: it hands on only connections from the gateway's own OS user.
struct OwnUserOnly {
    inner: UnixListener,
    uid: u32,
}

impl axum::serve::Listener for OwnUserOnly {
    type Io = UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (UnixStream, Self::Addr) {
        loop {
            // axum's accept for a Unix listener retries (with a pause) on accept errors.
            let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            if admits(self.uid, stream.peer_cred()) {
                return (stream, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Whether a peer with credentials `peer` may use the admin socket of a gateway running as `uid`.
fn admits(uid: u32, peer: std::io::Result<tokio::net::unix::UCred>) -> bool {
    match peer {
        Ok(c) if c.uid() == uid => true,
        Ok(c) => {
            warn!(
                peer_uid = c.uid(),
                "admin connection from another OS user refused"
            );
            false
        }
        Err(e) => {
            warn!(error = %e, "admin connection without peer credentials refused");
            false
        }
    }
}

/// Keeps the client contract for every refusal: an answer that is not a success and not already
/// JSON (an unknown path, a method the route does not take, a path, query or body the extractors
/// refuse) gets an [`ApiError`] body naming the problem; its status and headers (`Allow`) stay.
async fn errors_as_json(req: Request, next: Next) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if resp.status().is_success() || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = match parts.status {
        StatusCode::NOT_FOUND if text.is_empty() => format!("no admin route {method} {path}"),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            format!("{path} does not take {method} (allowed: {allowed})")
        }
        s if text.is_empty() => format!("{method} {path}: {s}"),
        _ => format!("{method} {path}: {text}"),
    };
    let body = serde_json::to_vec(&ApiError { error: message }).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// A response body fed by a channel: lets long runs stream NDJSON progress lines.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// `v` as a JSON answer with `status`.
pub(super) fn json<T: Serialize>(status: StatusCode, v: &T) -> Resp {
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from(body),
    )
        .into_response()
}

/// An [`ApiError`] answer.
pub(super) fn error(status: StatusCode, msg: impl Into<String>) -> Resp {
    json(status, &ApiError { error: msg.into() })
}

/// Runs blocking store, custody or audit work off the async threads; its error is the answer.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Resp> + Send + 'static,
) -> Result<T, Resp> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("task failed: {e}"),
        ))
    })
}

/// [`blocking`], answering its value as JSON.
pub(super) async fn blocking_json<T: Serialize + Send + 'static>(
    f: impl FnOnce() -> Result<T, Resp> + Send + 'static,
) -> Resp {
    match blocking(f).await {
        Ok(v) => json(StatusCode::OK, &v),
        Err(resp) => resp,
    }
}

/// A 500 answer naming what failed.
pub(super) fn internal(e: impl std::fmt::Display) -> Resp {
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// A looked-up thing, a 404 saying what is `missing`, or a 500.
pub(super) fn found<T>(
    r: Result<Option<T>, impl std::fmt::Display>,
    missing: impl FnOnce() -> String,
) -> Result<T, Resp> {
    r.map_err(internal)?
        .ok_or_else(|| error(StatusCode::NOT_FOUND, missing()))
}

/// `POST /ingest`: streams the run's events.
async fn ingest(
    State(s): Services,
    Admin(actor): Admin,
    axum::Json(r): axum::Json<IngestRequest>,
) -> Resp {
    if s.adapter(&r.adapter).is_none() {
        return s.unknown_adapter(&r.adapter);
    }
    stream_runs(s, actor, vec![(r.adapter, Some(r.path.into()))])
}

/// `POST /scan`: scans one adapter's inbox, or every one in turn; streams the runs' events.
async fn scan(
    State(s): Services,
    Admin(actor): Admin,
    axum::Json(r): axum::Json<ScanRequest>,
) -> Resp {
    let names: Vec<String> = match r.adapter {
        Some(a) if s.adapter(&a).is_none() => return s.unknown_adapter(&a),
        Some(a) => vec![a],
        None => s.adapters.iter().map(|a| a.name.clone()).collect(),
    };
    stream_runs(s, actor, names.into_iter().map(|n| (n, None)).collect())
}

/// `GET /cases/{unit}/{case_id}`.
async fn case(State(s): Services, Path((unit, case_id)): Path<(String, String)>) -> Resp {
    let unit = match Uscc::parse(&unit) {
        Ok(u) => u,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let case_id = match CaseId::parse(&case_id) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    blocking_json(move || {
        found(s.store.get_case(&unit, &case_id), || {
            format!("no case {case_id} of unit {unit}")
        })
    })
    .await
}

/// The query of `GET /quarantine`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuarantineQuery {
    adapter: Option<String>,
    limit: Option<usize>,
}

/// `GET /quarantine?adapter=NAME&limit=N`.
async fn quarantine_list(State(s): Services, Query(q): Query<QuarantineQuery>) -> Resp {
    blocking_json(move || {
        s.store
            .quarantine_list(q.adapter.as_deref(), q.limit.unwrap_or(100))
            .map_err(internal)
    })
    .await
}

/// `GET /quarantine/{id}`.
async fn quarantine_show(State(s): Services, Path(id): Path<String>) -> Resp {
    let Ok(id) = id.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("'{id}' is not a quarantine id"),
        );
    };
    blocking_json(move || {
        found(s.store.quarantine_get(id), || {
            format!("no quarantine entry {id}")
        })
    })
    .await
}

/// `GET /status`.
async fn status(State(s): Services) -> Resp {
    blocking_json(move || {
        let counts = s.store.unit_counts().map_err(internal)?;
        let name_of = |u: &Uscc| {
            s.adapters
                .iter()
                .find_map(|a| a.units.get(u).cloned())
                .unwrap_or_else(|| u.to_string())
        };
        let units = counts
            .into_iter()
            .map(|(u, counts)| UnitStatus {
                unit_code: u.to_string(),
                unit_name: name_of(&u),
                counts,
            })
            .collect();
        let adapters = s
            .adapters
            .iter()
            .map(|a| super::AdapterStatus {
                name: a.name.clone(),
                system: a.system.clone(),
                inbox: ingest::inbox_dir(a, &s.data_dir).display().to_string(),
                last_scan: s.store.get_meta(&format!("scan:{}", a.name)).ok().flatten(),
            })
            .collect();
        let keys = s.custody.status();
        Ok(Status {
            version: env!("CARGO_PKG_VERSION").into(),
            data_dir: s.data_dir.display().to_string(),
            cases: s.store.case_count().map_err(internal)? as u64,
            changes: s.store.change_count().unwrap_or(0),
            quarantine: s.store.quarantine_len().map_err(internal)? as u64,
            instance: s.leader.instance().to_string(),
            leading: s.leader.is_leader(),
            leader: s.leader.leader(),
            units,
            adapters,
            sealed: keys.sealed,
            keystore_exists: keys.keystore_exists,
            keystore_version: keys.version,
            audit_entries: s.audit.size(),
        })
    })
    .await
}

/// Runs ingests one after the other and streams their events as NDJSON lines.
fn stream_runs(s: Arc<AdminServices>, actor: Actor, runs: Vec<(String, Option<PathBuf>)>) -> Resp {
    let (btx, brx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let line = |ev: &IngestEvent| {
            let mut v = serde_json::to_vec(ev).unwrap_or_default();
            v.push(b'\n');
            Bytes::from(v)
        };
        let mut total = Summary::default();
        for (adapter, path) in runs {
            let (etx, mut erx) = mpsc::channel::<IngestEvent>(64);
            let fwd = btx.clone();
            let forward = tokio::spawn(async move {
                while let Some(ev) = erx.recv().await {
                    let _ = fwd.send(line(&ev)).await;
                }
            });
            let res = s
                .jobs
                .clone()
                .ingest(adapter, path, actor.clone(), etx)
                .await;
            let _ = forward.await;
            match res {
                Ok(sum) => total.add(&sum),
                Err(e) => {
                    let _ = btx.send(line(&IngestEvent::Error(e))).await;
                    return;
                }
            }
        }
        let _ = btx.send(line(&IngestEvent::Done(total))).await;
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::new(ChannelBody(brx)),
    )
        .into_response()
}

/// `POST /quarantine/retry`: audited before anything is retried.
async fn retry(
    State(s): Services,
    Admin(actor): Admin,
    axum::Json(r): axum::Json<RetryRequest>,
) -> Resp {
    let target = if r.all {
        format!(
            "all{}",
            r.adapter
                .as_ref()
                .map_or(String::new(), |a| format!(" of {a}"))
        )
    } else {
        format!("{:?}", r.ids)
    };
    blocking_json(move || {
        s.audit
            .append(&crate::audit::Event::new(actor, "quarantine.retry", target))
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        let ids: Vec<u64> = if r.all {
            s.store
                .quarantine_list(r.adapter.as_deref(), usize::MAX)
                .map_err(internal)?
                .into_iter()
                .map(|e| e.id)
                .collect()
        } else {
            r.ids
        };
        let mut out = Vec::new();
        for id in ids {
            match ingest::retry_quarantined(&s.adapters, &s.store, id).map_err(internal)? {
                Some(o) => out.push(o),
                None => out.push(ingest::RetryOutcome {
                    id,
                    accepted: false,
                    reasons: vec![crate::store::QuarantineReason {
                        field: "record".into(),
                        column: None,
                        reason: format!("no quarantine entry {id}"),
                    }],
                }),
            }
        }
        Ok(out)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::admits;

    #[tokio::test]
    async fn only_the_gateways_own_os_user_is_admitted() {
        // Real peer credentials of a real socket pair: the peer is this process's user.
        let (a, _b) = tokio::net::UnixStream::pair().expect("socket pair");
        let uid = a.peer_cred().expect("peer credentials").uid();
        assert!(admits(uid, a.peer_cred()));
        assert!(!admits(uid.wrapping_add(1), a.peer_cred()));
        let missing = std::io::Error::other("no credentials");
        assert!(!admits(uid, Err(missing)));
    }
}
