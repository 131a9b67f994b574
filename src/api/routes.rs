//! The port API's routes: token issuance, key publication, ports, cases, the change feed, health.
//! Authorization is decided here, in one order for every data route: a valid token (signature,
//! claims, known key), a client that still exists and is not revoked, the certificate the token
//! or the client is bound to, the rate limit, then the port's scope in the token *and* the port
//! open in the store. Every data response is audited before its body is sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Router};
use base64::Engine;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::{error, warn};

use super::ApiServices;
use super::jwt::{self, Claims, Confirmation, Validation};
use super::problem::Problem;
use super::query::{self, ListQuery};
use super::server::Peer;
use crate::audit::{Actor, Event};
use crate::keys::custody::{ClientInfo, CustodyError};
use crate::model::{CaseId, Uscc};
use crate::reports::QuarterlyReport;
use crate::reports::disclose::masked_report;
use crate::store::ReportRight;

/// A response with a complete body.
pub type Resp = Response;

/// Largest request body (the token request is the only one with a body).
const MAX_BODY: usize = 64 * 1024;
/// Allowed clock difference when checking token times.
const LEEWAY_SECS: i64 = 30;

/// State shared by every request: the rate-limit buckets.
#[derive(Debug)]
pub struct ApiState {
    /// Request counters and latencies.
    pub metrics: super::metrics::Metrics,
    /// Bounds the data requests worked on at once. On two cores more parallel work adds no
    /// throughput, only memory: every blocking thread keeps its own allocator heap and sled
    /// read state, and 64 clients would otherwise mean 64 of each.
    work: Arc<tokio::sync::Semaphore>,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    rate: f64,
    burst: f64,
    /// Token-endpoint attempts, per peer address and per claimed client name.
    attempts: Mutex<HashMap<String, Attempts>>,
    /// Tokens already verified.
    verified: Mutex<Verified>,
    attempt_rate: f64,
    attempt_burst: f64,
}

/// Tokens whose signature and claims were verified, by the SHA-256 of the token: a client
/// sends the same token for up to 15 minutes, and an Ed25519 verification costs more than the
/// rest of serving a case. Entries live until the token's `exp`; the whole cache is dropped when
/// the keystore's epoch moves (a client revoked, a key rotated, a seal), and it never holds more
/// than [`MAX_VERIFIED`] tokens.
#[derive(Default)]
struct Verified {
    epoch: u64,
    tokens: HashMap<[u8; 32], (Claims, String)>,
}

/// Most verified tokens held.
const MAX_VERIFIED: usize = 10_000;

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Claims carry no secret, but a cache of them is nobody's business in a log.
        f.debug_struct("Verified")
            .field("epoch", &self.epoch)
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

/// One throttled key's bucket, and how many attempts it refused in its current episode.
#[derive(Debug)]
struct Attempts {
    tokens: f64,
    last: Instant,
    refused: u64,
}

/// What a token-endpoint or console sign-in attempt met at the throttle, for its audit entries.
pub enum Throttle {
    /// Allowed; `ended` lists the keys whose episode of refusals this attempt ends, with their
    /// counts.
    Allowed {
        /// Keys and their refusal counts.
        ended: Vec<(String, u64)>,
    },
    /// Refused for `retry` seconds; `first` when this refusal starts an episode for `key`.
    Refused {
        /// The bucket that was empty.
        key: String,
        /// Seconds until it holds a token again.
        retry: u64,
        /// Whether this refusal starts an episode.
        first: bool,
    },
}

/// Most throttle keys held; beyond it, keys whose bucket is full (they hold nothing) go.
const MAX_THROTTLE_KEYS: usize = 10_000;

impl ApiState {
    /// State for `svc`'s configuration.
    pub fn new(svc: &ApiServices) -> Self {
        let s = &svc.server;
        let (rate, burst) = (f64::from(s.rate_per_sec), f64::from(s.rate_burst));
        let work = s.data_concurrency;
        ApiState {
            work: Arc::new(tokio::sync::Semaphore::new(work)),
            metrics: super::metrics::Metrics::default(),
            buckets: Mutex::new(HashMap::new()),
            rate,
            burst,
            attempts: Mutex::new(HashMap::new()),
            verified: Mutex::new(Verified::default()),
            attempt_rate: f64::from(s.token_attempts_per_min) / 60.0,
            attempt_burst: f64::from(s.token_attempts_burst),
        }
    }

    /// Waits for a turn to work on a data request.
    async fn work_permit(self: Arc<Self>) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.work.clone().acquire_owned().await.ok()
    }

    /// The claims and `kid` of `token` if it was verified under keystore epoch `epoch` and has
    /// not expired at `now` (with the validation's leeway).
    fn verified(&self, hash: &[u8; 32], epoch: u64, now: i64) -> Option<(Claims, String)> {
        let mut v = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if v.epoch != epoch {
            v.tokens.clear();
            v.epoch = epoch;
            return None;
        }
        match v.tokens.get(hash) {
            Some((c, _)) if c.exp + LEEWAY_SECS <= now => {
                v.tokens.remove(hash);
                None
            }
            other => other.cloned(),
        }
    }

    /// Remembers a token verified under `epoch`.
    fn remember(&self, hash: [u8; 32], epoch: u64, now: i64, claims: Claims, kid: String) {
        let mut v = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if v.epoch != epoch {
            v.tokens.clear();
            v.epoch = epoch;
        }
        if v.tokens.len() >= MAX_VERIFIED {
            v.tokens.retain(|_, (c, _)| c.exp + LEEWAY_SECS > now);
            if v.tokens.len() >= MAX_VERIFIED {
                v.tokens.clear();
            }
        }
        v.tokens.insert(hash, (claims, kid));
    }

    /// Counts a token-endpoint or console sign-in attempt against each of `keys` (the peer address, the claimed
    /// name): refused while any of them has no attempt left, before any secret is checked.
    pub fn attempt(&self, keys: &[String]) -> Throttle {
        let mut m = self
            .attempts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let (rate, burst) = (self.attempt_rate, self.attempt_burst);
        if m.len() > MAX_THROTTLE_KEYS {
            m.retain(|_, a| {
                a.refused > 0 || a.tokens + now.duration_since(a.last).as_secs_f64() * rate < burst
            });
        }
        for key in keys {
            let a = m.entry(key.clone()).or_insert(Attempts {
                tokens: burst,
                last: now,
                refused: 0,
            });
            a.tokens = (a.tokens + now.duration_since(a.last).as_secs_f64() * rate).min(burst);
            a.last = now;
            if a.tokens < 1.0 {
                a.refused += 1;
                return Throttle::Refused {
                    key: key.clone(),
                    retry: ((1.0 - a.tokens) / rate).ceil().max(1.0) as u64,
                    first: a.refused == 1,
                };
            }
        }
        let mut ended = Vec::new();
        for key in keys {
            if let Some(a) = m.get_mut(key) {
                a.tokens -= 1.0;
                if a.refused > 0 {
                    ended.push((key.clone(), a.refused));
                    a.refused = 0;
                }
            }
        }
        Throttle::Allowed { ended }
    }

    /// Takes one token from `client`'s bucket, or says how many seconds until one is there.
    fn take(&self, client: &str) -> Result<(), u64> {
        let mut b = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let (tokens, last) = b.entry(client.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

pub(super) fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn json_ok<T: Serialize>(v: &T) -> Resp {
    match serde_json::to_vec(v) {
        Ok(b) => respond(StatusCode::OK, "application/json", b),
        Err(e) => {
            error!(error = %e, "response encoding failed");
            problem(&Problem::Internal)
        }
    }
}

/// The one place a [`Problem`] becomes a response.
pub fn problem(p: &Problem) -> Resp {
    let body = p.body();
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut r = respond(
        StatusCode::from_u16(body.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "application/problem+json",
        bytes,
    );
    let headers = r.headers_mut();
    match p {
        Problem::RateLimited(secs) => {
            if let Ok(v) = secs.to_string().parse() {
                headers.insert("retry-after", v);
            }
        }
        Problem::Unauthorized(_) | Problem::InvalidClient => {
            headers.insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Bearer realm=\"xianjie\""),
            );
        }
        _ => {}
    }
    r
}

pub(super) fn custody_problem(e: &CustodyError) -> Problem {
    match e {
        CustodyError::Sealed => Problem::Unavailable(
            "the gateway's keystore is sealed; try again when an administrator has unlocked it"
                .into(),
        ),
        CustodyError::Audit(_) => {
            Problem::Unavailable("the audit log cannot be written, so no data is served".into())
        }
        other => {
            error!(error = %other, "custody failure in the port API");
            Problem::Internal
        }
    }
}

pub(super) fn audit_problem(e: &crate::audit::AuditError) -> Problem {
    error!(error = %e, "audit append failed; refusing to serve data");
    Problem::Unavailable("the audit log cannot be written, so no data is served".into())
}

pub(super) fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        problem(&self)
    }
}

/// What the port API's handlers share: the gateway and the request state.
pub struct Ctx {
    pub(super) svc: Arc<ApiServices>,
    pub(super) state: Arc<ApiState>,
}

/// The request id of a request (hex), echoed in `x-request-id` and recorded in audit entries.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The port API's route table: every path template with the methods it takes. The router, the
/// metrics' route labels (from `MatchedPath`), the 405s with their `Allow` and the OpenAPI
/// coverage test all come from it.
fn table() -> Vec<(&'static str, MethodRouter<Arc<Ctx>>)> {
    vec![
        ("/healthz", get(health_h)),
        ("/metrics", get(metrics_h)),
        ("/openapi.json", get(openapi_h)),
        ("/.well-known/jwks.json", get(jwks_h)),
        ("/oauth/token", post(token)),
        ("/v1/submissions", post(submission)),
        ("/v1/ports", get(ports_h)),
        ("/v1/ports/{unit}/cases", get(cases_h)),
        ("/v1/ports/{unit}/cases/{case_id}", get(case_h)),
        (
            "/v1/ports/{unit}/cases/{case_id}/documents/{doc_id}",
            get(document_h),
        ),
        (
            "/v1/ports/{unit}/cases/{case_id}/timeline",
            get(super::supervision::timeline_h),
        ),
        (
            "/v1/ports/{unit}/cases/{case_id}/supervision",
            post(super::supervision::supervise_h),
        ),
        ("/v1/leads", get(super::supervision::leads_h)),
        ("/v1/transfers", get(super::supervision::transfers_h)),
        ("/v1/search", get(super::supervision::search_h)),
        ("/v1/changes", get(changes_h)),
        ("/v1/reports/quarterly/{quarter}", get(reports_h)),
        ("/v1/reports/quarterly/{quarter}/{unit}", get(report_h)),
        (
            "/v1/reports/quarterly/{quarter}/{unit}/documents/{doc_id}",
            get(report_document_h),
        ),
    ]
}

/// The path templates the port API routes (for the OpenAPI coverage test).
pub fn paths() -> Vec<&'static str> {
    table().into_iter().map(|(p, _)| p).collect()
}

/// The listener's one router: the port API's table and the console's (`console::web`), each
/// request labelled and counted by [`observe`].
pub fn router(svc: Arc<ApiServices>) -> Router {
    let state = Arc::new(ApiState::new(&svc));
    let console = Arc::new(crate::console::web::Console::new(
        svc.clone(),
        state.clone(),
    ));
    let ctx = Arc::new(Ctx { svc, state });
    table()
        .into_iter()
        .fold(Router::new(), |r, (path, m)| r.route(path, m))
        .method_not_allowed_fallback(|| async { Problem::MethodNotAllowed })
        .fallback(|uri: axum::http::Uri| async move {
            Problem::NotFound(format!("no route {}", uri.path()))
        })
        .with_state(ctx.clone())
        .merge(crate::console::web::router(console))
        .layer(axum::middleware::from_fn_with_state(ctx, observe))
}

/// Around every request: its id (in the extensions, for audit entries, and in `x-request-id`)
/// and its metrics, labelled by route template.
async fn observe(State(ctx): State<Arc<Ctx>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_label(req.method(), req.extensions().get::<MatchedPath>());
    let id = uuid_like();
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    // No data leaves before its audit entry is durable: a response whose entry is still being
    // written (a shared log's group commit) waits here, holding no thread.
    if let Some(AuditOnSend(pending)) = resp.extensions_mut().remove::<AuditOnSend>() {
        let pending = pending.lock().map(|mut p| p.take()).unwrap_or(None);
        let written = match pending {
            Some(p) => p.durable().await.map(drop),
            None => Err(crate::audit::AuditError::Broken(
                "a response's audit entry was lost before it was written".into(),
            )),
        };
        if let Err(e) = written {
            resp = audit_problem(&e).into_response();
        }
    }
    if let Ok(v) = id.parse() {
        resp.headers_mut().insert("x-request-id", v);
    }
    ctx.state
        .metrics
        .record(route, resp.status().as_u16(), started.elapsed());
    resp
}

/// The audit entry of a response's data, still being written: [`observe`] sends the response
/// only once it is durable, and answers the audit failure instead if it cannot be written.
/// (A response extension must be `Clone`; the entry is taken out exactly once.)
#[derive(Clone)]
struct AuditOnSend(Arc<Mutex<Option<crate::audit::Pending>>>);

/// Starts appending `event`, the data access a response is about to answer; the response goes
/// through [`send_after`] with the returned entry. Work done between the two (building the
/// body) overlaps the entry's commit.
fn audit_later(svc: &ApiServices, event: &Event) -> Result<crate::audit::Pending, Problem> {
    svc.audit.append_later(event).map_err(|e| audit_problem(&e))
}

/// `resp`, to be sent once `pending` (its audit entry, from [`audit_later`]) is durable (see
/// [`AuditOnSend`]).
fn send_after(pending: crate::audit::Pending, mut resp: Resp) -> Result<Resp, Problem> {
    match pending.outcome_now() {
        Ok(written) => written.map(|_| resp).map_err(|e| audit_problem(&e)),
        Err(pending) => {
            resp.extensions_mut()
                .insert(AuditOnSend(Arc::new(Mutex::new(Some(pending)))));
            Ok(resp)
        }
    }
}

/// A metric label: the method and the route template, never an identifier; methods outside
/// the standard ones and unrouted paths are grouped, so labels stay few whatever is sent.
fn route_label(method: &Method, path: Option<&MatchedPath>) -> String {
    let standard = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
    ];
    let m = if standard.contains(method) {
        method.as_str()
    } else {
        "OTHER"
    };
    match path {
        Some(p) => format!("{m} {}", p.as_str()),
        None => "other".to_string(),
    }
}

async fn health_h(State(ctx): State<Arc<Ctx>>) -> Resp {
    health(&ctx.svc)
}

/// `GET /metrics` takes a token of any client (a Prometheus scraper authenticates with its own
/// client credentials): the figures are counts, but they are the gateway's own.
async fn metrics_h(State(ctx): State<Arc<Ctx>>, d: DataReq) -> Result<Resp, Problem> {
    let state = ctx.state.clone();
    // Push gauges read the store (deadlines scan the queue): off the async threads, as `data`
    // runs everything.
    // Bulk: the push figures may recount a destination's whole outbox (deadlines, cached 10 s).
    data(ctx, d, Work::Bulk, move |svc, _, _| {
        Ok(metrics(svc, &state, &push_metrics(svc)))
    })
    .await
}

async fn openapi_h() -> Resp {
    json_ok(super::openapi::document())
}

async fn jwks_h(State(ctx): State<Arc<Ctx>>) -> Result<Resp, Problem> {
    jwks(&ctx.svc).await
}

/// What a data request brings: its token, the form it asks for, its query and request id, and
/// the connection's client.
pub(super) struct DataReq {
    pub(super) auth: Option<String>,
    pub(super) xml: bool,
    pub(super) query: String,
    pub(super) rid: String,
    pub(super) peer: Arc<Peer>,
}

impl<S: Send + Sync> FromRequestParts<S> for DataReq {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        Ok(DataReq {
            auth: header(&parts.headers, axum::http::header::AUTHORIZATION),
            xml: header(&parts.headers, axum::http::header::ACCEPT)
                .is_some_and(|a| a.contains("application/xml")),
            query: parts.uri.query().unwrap_or("").to_string(),
            rid: parts
                .extensions
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            peer: parts
                .extensions
                .get::<Arc<Peer>>()
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// A header's value as text.
fn header(headers: &HeaderMap, name: axum::http::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// How much store work a data request does, which decides where it runs.
#[derive(Clone, Copy)]
pub(super) enum Work {
    /// One record by key (a cached token, a few store reads, one audit append): tens of
    /// microseconds, run on the connection's task. Handing it to the blocking pool cost two
    /// thread wake-ups per request and halved the throughput of the busiest route. On
    /// PostgreSQL its reads are mostly answered from the instance's cache, and its audit entry
    /// is awaited after the handler returns (see [`AuditOnSend`]), so it holds no thread while
    /// the group commit runs; a read that must reach the database after all hands the worker's
    /// other tasks to another thread first (`crate::blocking::wait`).
    Point,
    /// Pages, reports and documents: up to milliseconds of reading, run on a blocking thread
    /// so the runtime's workers keep serving handshakes and other connections.
    Bulk,
}

/// Runs a data request: waits for a turn (data work is bounded), then authenticates the caller
/// and answers with `f`, where `work` says.
pub(super) async fn data(
    ctx: Arc<Ctx>,
    d: DataReq,
    work: Work,
    f: impl FnOnce(&ApiServices, &Caller, &DataReq) -> Result<Resp, Problem> + Send + 'static,
) -> Result<Resp, Problem> {
    let permit = ctx.state.clone().work_permit().await;
    let run = move || {
        let _permit = permit;
        let caller = authenticate(&ctx.svc, &ctx.state, &d.peer, d.auth.as_deref())?;
        f(&ctx.svc, &caller, &d)
    };
    match work {
        Work::Point => run(),
        Work::Bulk => tokio::task::spawn_blocking(run).await.unwrap_or_else(|e| {
            error!(error = %e, "request task failed");
            Err(Problem::Internal)
        }),
    }
}

async fn ports_h(State(ctx): State<Arc<Ctx>>, d: DataReq) -> Result<Resp, Problem> {
    data(ctx, d, Work::Point, |svc, c, d| {
        list_ports(svc, c, &d.rid, d.xml)
    })
    .await
}

async fn cases_h(
    State(ctx): State<Arc<Ctx>>,
    Path(unit): Path<String>,
    d: DataReq,
) -> Result<Resp, Problem> {
    data(ctx, d, Work::Bulk, move |svc, c, d| {
        list_cases(svc, c, &unit, &d.query, &d.rid, d.xml)
    })
    .await
}

async fn case_h(
    State(ctx): State<Arc<Ctx>>,
    Path((unit, case_id)): Path<(String, String)>,
    d: DataReq,
) -> Result<Resp, Problem> {
    data(ctx, d, Work::Point, move |svc, c, d| {
        read_case(svc, c, &unit, &case_id, &d.rid, d.xml)
    })
    .await
}

async fn document_h(
    State(ctx): State<Arc<Ctx>>,
    Path((unit, case_id, doc_id)): Path<(String, String, String)>,
    d: DataReq,
) -> Result<Resp, Problem> {
    data(ctx, d, Work::Bulk, move |svc, c, d| {
        read_document(svc, c, &unit, &case_id, &doc_id, &d.rid)
    })
    .await
}

async fn changes_h(State(ctx): State<Arc<Ctx>>, d: DataReq) -> Result<Resp, Problem> {
    data(ctx, d, Work::Bulk, |svc, c, d| {
        changes(svc, c, &d.query, &d.rid, d.xml)
    })
    .await
}

async fn reports_h(
    State(ctx): State<Arc<Ctx>>,
    Path(quarter): Path<String>,
    d: DataReq,
) -> Result<Resp, Problem> {
    data(ctx, d, Work::Bulk, move |svc, c, d| {
        reports(svc, c, &quarter, None, &d.query, &d.rid, d.xml)
    })
    .await
}

async fn report_h(
    State(ctx): State<Arc<Ctx>>,
    Path((quarter, unit)): Path<(String, String)>,
    d: DataReq,
) -> Result<Resp, Problem> {
    data(ctx, d, Work::Bulk, move |svc, c, d| {
        reports(svc, c, &quarter, Some(&unit), &d.query, &d.rid, d.xml)
    })
    .await
}

async fn report_document_h(
    State(ctx): State<Arc<Ctx>>,
    Path((quarter, unit, doc_id)): Path<(String, String, String)>,
    d: DataReq,
) -> Result<Resp, Problem> {
    data(ctx, d, Work::Bulk, move |svc, c, d| {
        report_document(svc, c, &quarter, &unit, &doc_id, &d.query, &d.rid)
    })
    .await
}

/// The Prometheus text of `GET /metrics`: counts only, no identifiers.
fn metrics(svc: &ApiServices, state: &ApiState, push: &str) -> Resp {
    let outbox = svc.store.outbox_len().unwrap_or(0);
    let (leads, overdue) =
        crate::supervision::workbench::gauges(&svc.store, svc.push.calendar(), chrono::Utc::now())
            .unwrap_or_default();
    let text = state.metrics.render(&[
        (
            "xianjie_audit_entries",
            "Entries in the audit log.",
            svc.audit.size(),
        ),
        (
            "xianjie_audit_appends_since_start",
            "Audit entries appended since the gateway started.",
            svc.audit.appended_since_start(),
        ),
        (
            "xianjie_quarantine_size",
            "Records in quarantine.",
            svc.store.quarantine_len().unwrap_or(0) as u64,
        ),
        (
            "xianjie_outbox_size",
            "Entries waiting in the push outbox.",
            outbox,
        ),
        (
            "xianjie_sealed",
            "1 while the keystore is sealed.",
            u64::from(svc.custody.is_sealed()),
        ),
        (
            "xianjie_leads_open",
            "Supervision leads open or recommended (every port).",
            leads,
        ),
        (
            "xianjie_transfers_overdue",
            "Suspected-crime transfers with a 310号令 deadline broken now.",
            overdue,
        ),
    ]);
    let text = text + push;
    respond(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        text.into_bytes(),
    )
}

/// Per-destination push gauges, labelled by destination.
fn push_metrics(svc: &ApiServices) -> String {
    use crate::push::worker::DestinationStatus;
    use std::fmt::Write as _;
    let Ok(list) = svc.push.status() else {
        return String::new();
    };
    type Series = (
        &'static str,
        &'static str,
        &'static str,
        fn(&DestinationStatus) -> u64,
    );
    let series: [Series; 7] = [
        (
            "xianjie_push_queued",
            "gauge",
            "Records waiting for the destination.",
            |s| s.queued,
        ),
        (
            "xianjie_push_in_flight",
            "gauge",
            "Records in the package being sent.",
            |s| s.in_flight,
        ),
        (
            "xianjie_push_delivered_total",
            "counter",
            "Record versions the destination acknowledged.",
            |s| s.delivered,
        ),
        (
            "xianjie_push_dead_letters",
            "gauge",
            "Records the destination refused, waiting for an administrator.",
            |s| s.dead_letters,
        ),
        (
            "xianjie_push_overdue",
            "gauge",
            "Queued records past their statutory push deadline.",
            |s| s.deadlines.overdue,
        ),
        (
            "xianjie_push_at_risk",
            "gauge",
            "Queued records due today or on the next working day.",
            |s| s.deadlines.at_risk,
        ),
        (
            "xianjie_push_calendar_uncovered_years",
            "gauge",
            "Years without an official holiday table that the destination's deadlines are counted in.",
            |s| s.deadlines.uncovered_years.len() as u64,
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in &list {
            let _ = writeln!(out, "{name}{{destination=\"{}\"}} {}", s.name, get(s));
        }
    }
    // This year and, once deadlines reach it, the next: at most two series.
    let cal = svc.push.calendar();
    let _ = writeln!(
        out,
        "# HELP xianjie_calendar_year_covered 1 when the year's official holidays and adjusted working days are known (shipped or configured), 0 when its deadlines count Monday to Friday.\n# TYPE xianjie_calendar_year_covered gauge"
    );
    for year in cal.years_ahead(chrono::Local::now().date_naive()) {
        let _ = writeln!(
            out,
            "xianjie_calendar_year_covered{{year=\"{year}\"}} {}",
            u8::from(cal.covers(year))
        );
    }
    out
}

/// A random request id (hex), echoed in `x-request-id` and recorded in audit entries.
fn uuid_like() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn health(svc: &ApiServices) -> Resp {
    let sealed = svc.custody.is_sealed();
    json_ok(&json!({
        "status": if sealed { "sealed" } else { "ok" },
        "sealed": sealed,
        "version": env!("CARGO_PKG_VERSION"),
        "instance": svc.leader.instance(),
        "leading": svc.leader.is_leader(),
        "leader": svc.leader.leader(),
    }))
}

async fn jwks(svc: &Arc<ApiServices>) -> Result<Resp, Problem> {
    let keys = svc
        .custody
        .jwt_verifying_keys()
        .map_err(|e| custody_problem(&e))?;
    Ok(json_ok(&jwt::jwks(&keys)))
}

/// `POST /oauth/token`: client credentials grant, client authenticated with HTTP Basic.
async fn token(
    State(ctx): State<Arc<Ctx>>,
    Extension(peer): Extension<Arc<Peer>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Resp, Problem> {
    let svc = ctx.svc.clone();
    let server = svc.server.clone();
    let basic = header(&headers, axum::http::header::AUTHORIZATION)
        .as_deref()
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    let body = read_body(body, MAX_BODY).await?;
    let form: HashMap<String, String> = query::unique_pairs(&String::from_utf8_lossy(&body))?
        .into_iter()
        .collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return Err(Problem::BadParameter {
            field: "grant_type".into(),
            reason: "must be client_credentials".into(),
        });
    }
    let Some((name, secret)) = basic.as_deref().and_then(|s| s.split_once(':')) else {
        return Err(Problem::InvalidClient);
    };
    let (name, secret) = (name.to_string(), secret.to_string());
    // Throttled per peer address and per claimed name before any secret is checked: a burst
    // of guesses costs the gateway a map lookup each, not a keyed hash and an audit entry.
    let keys = [
        format!(
            "peer:{}",
            peer.addr.map_or_else(String::new, |a| a.ip().to_string())
        ),
        format!(
            "client:{}",
            &hex::encode(Sha256::digest(name.as_bytes()))[..32]
        ),
    ];
    let throttle = ctx.state.attempt(&keys);
    let requested: Option<Vec<String>> = form.get("scope").map(|s| {
        s.split(' ')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    });
    tokio::task::spawn_blocking(move || {
        // Throttling is audited once per episode: at its first refusal, and with the count of
        // refusals when the next attempt passes.
        let throttled = |outcome: &str, key: &str, count: u64| {
            svc.audit.append(
                &Event::new(Actor::client(&name, None), "token.throttled", &name)
                    .outcome(outcome)
                    .detail("key", key.split(':').next().unwrap_or(""))
                    .detail("refused", count),
            )
        };
        match &throttle {
            Throttle::Refused { key, retry, first } => {
                if *first {
                    throttled("refused", key, 1).map_err(|e| audit_problem(&e))?;
                }
                return Err(Problem::RateLimited(*retry));
            }
            Throttle::Allowed { ended } => {
                for (key, count) in ended {
                    throttled("ended", key, *count).map_err(|e| audit_problem(&e))?;
                }
            }
        }
        // A refused login always leaves its entry (the name in it bounded by the audit log);
        // when it cannot, the answer is the audit failure, as for any other request.
        let deny = |reason: &str| -> Problem {
            match svc.audit.append(
                &Event::new(Actor::client(&name, None), "token.issue", &name)
                    .outcome("denied")
                    .detail("reason", reason),
            ) {
                Ok(_) => Problem::InvalidClient,
                Err(e) => audit_problem(&e),
            }
        };
        let client = match svc.custody.authenticate(&name, &secret) {
            Ok(Some(c)) => c,
            Ok(None) => return Err(deny("bad credentials")),
            Err(e) => return Err(custody_problem(&e)),
        };
        // A client is its certificate: a secret presented over another client's certificate
        // is refused like a wrong secret.
        if let Some(der) = &peer.certificate
            && !client.owns_certificate(der)
        {
            return Err(deny("the certificate presented is not this client's"));
        }
        if peer.certificate.is_none() && client.cert_fingerprint.is_some() {
            return Err(deny("not the client's pinned certificate"));
        }
        let open = svc.store.ports_of(&name).map_err(|e| {
            error!(error = %e, "ports read failed");
            Problem::Internal
        })?;
        let grants = |right| {
            svc.store.report_grants_of(right, &name).map_err(|e| {
                error!(error = %e, "report grants read failed");
                Problem::Internal
            })
        };
        let supervised = svc.store.supervised_ports_of(&name).map_err(|e| {
            error!(error = %e, "ports read failed");
            Problem::Internal
        })?;
        let submit = grants(ReportRight::Submit)?;
        // Reports are read by grant, never implied: a port's holder reads its unit's reports,
        // and a client named by `reports allow-read` reads those units'.
        let reads_reports = !open.is_empty() || !grants(ReportRight::Read)?.is_empty();
        let mut granted: Vec<String> = open
            .iter()
            .map(|u| format!("port:{u}:read"))
            .chain(supervised.iter().map(|u| format!("port:{u}:supervise")))
            .chain(reads_reports.then(|| "reports:read".to_string()))
            .chain(submit.iter().map(|u| format!("submit:{u}")))
            .collect();
        if let Some(req) = requested {
            if let Some(extra) = req.iter().find(|s| !granted.contains(s)) {
                return Err(Problem::Forbidden(format!(
                    "scope {extra} is not granted to this client"
                )));
            }
            granted = req;
        }
        let (kid, key) = svc
            .custody
            .jwt_signing_key()
            .map_err(|e| custody_problem(&e))?;
        let now = now_secs();
        let lifetime = server.token_lifetime.as_secs() as i64;
        let claims = Claims {
            iss: server.issuer.clone(),
            aud: server.audience.clone(),
            sub: name.clone(),
            scope: granted.join(" "),
            iat: now,
            exp: now + lifetime,
            nbf: None,
            jti: uuid_like(),
            cnf: peer.x5t_s256.clone().map(|x| Confirmation { x5t_s256: x }),
        };
        svc.audit
            .append(
                &Event::new(Actor::client(&name, Some(&kid)), "token.issue", &name)
                    .detail("scope", claims.scope.clone())
                    .detail("jti", claims.jti.clone())
                    .detail("bound", claims.cnf.is_some()),
            )
            .map_err(|e| audit_problem(&e))?;
        let token = jwt::sign(&claims, &kid, &key).map_err(|e| {
            error!(error = %e, "token signing failed");
            Problem::Internal
        })?;
        Ok(json_ok(&json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": claims.scope,
        })))
    })
    .await
    .unwrap_or_else(|e| {
        error!(error = %e, "token task failed");
        Err(Problem::Internal)
    })
}

/// An authenticated caller.
pub(super) struct Caller {
    pub(super) claims: Claims,
    kid: String,
    pub(super) client: ClientInfo,
}

fn kid_of(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("kid")?.as_str().map(str::to_string)
}

pub(super) fn authenticate(
    svc: &ApiServices,
    state: &ApiState,
    peer: &Peer,
    auth: Option<&str>,
) -> Result<Caller, Problem> {
    let server = &svc.server;
    let token = auth
        .and_then(|a| a.strip_prefix("Bearer "))
        .ok_or_else(|| {
            Problem::Unauthorized(
                "send an access token: Authorization: Bearer <token> (from POST /oauth/token)"
                    .into(),
            )
        })?;
    let token = token.trim();
    let (hash, now) = (
        <[u8; 32]>::from(Sha256::digest(token.as_bytes())),
        now_secs(),
    );
    // Read before the keys: a change between the two can only make the entry stale, never
    // let a token verified under older keys pass as current.
    let epoch = svc.custody.epoch();
    let (claims, kid) = match state.verified(&hash, epoch, now) {
        Some(hit) => hit,
        None => {
            let keys = svc
                .custody
                .cached_jwt_keys()
                .map_err(|e| custody_problem(&e))?;
            let claims = jwt::validate(
                token,
                &Validation {
                    issuer: &server.issuer,
                    audience: &server.audience,
                    now,
                    leeway_secs: LEEWAY_SECS,
                    max_lifetime_secs: 900,
                    keys: &keys,
                },
            )
            .map_err(|e| {
                warn!(error = %e, "token refused");
                Problem::Unauthorized(
                    "the access token is invalid or expired; get a new one".into(),
                )
            })?;
            let kid = kid_of(token).unwrap_or_default();
            state.remember(hash, epoch, now, claims.clone(), kid.clone());
            (claims, kid)
        }
    };
    let client = svc
        .custody
        .cached_client(&claims.sub)
        .map_err(|e| custody_problem(&e))?
        .filter(|c| c.revoked_at.is_none())
        .ok_or_else(|| {
            Problem::Unauthorized("the client of this token is revoked or unknown".into())
        })?;
    // A token is bound to the certificate it was issued over (RFC 8705): whenever the
    // connection has a certificate the token must name it, so a token minted without one (in a
    // weaker mode) stops working once certificates are presented or required.
    match (&claims.cnf, &peer.x5t_s256) {
        (Some(cnf), Some(x5t)) if cnf.x5t_s256 == *x5t => {}
        (Some(_), _) => {
            return Err(Problem::Unauthorized(
                "this token is bound to another client certificate".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(Problem::Unauthorized(
                "this token is not bound to the certificate presented; get a new token over this connection".into(),
            ));
        }
        (None, None) => {}
    }
    let owned = match &peer.certificate {
        Some(der) => client.owns_certificate(der),
        None => client.cert_fingerprint.is_none(),
    };
    if !owned {
        return Err(Problem::Unauthorized(
            "this client may only connect with its own certificate".into(),
        ));
    }
    state.take(&client.name).map_err(Problem::RateLimited)?;
    Ok(Caller {
        claims,
        kid,
        client,
    })
}

impl Caller {
    pub(super) fn actor(&self) -> Actor {
        Actor::client(&self.client.name, Some(&self.kid))
    }

    /// The port is open to the caller: in its token's scope and open in the store now.
    pub(super) fn port(&self, svc: &ApiServices, unit: &str) -> Result<Uscc, Problem> {
        let unit =
            Uscc::parse(unit).map_err(|e| Problem::NotFound(format!("no port {unit}: {e}")))?;
        let scoped = self.claims.has_scope(&format!("port:{unit}:read"));
        let open = svc
            .store
            .port_is_open(&unit, &self.client.name)
            .map_err(|e| {
                error!(error = %e, "port read failed");
                Problem::Internal
            })?;
        if scoped && open {
            Ok(unit)
        } else {
            Err(Problem::Forbidden(format!(
                "port {unit} is not open to this client{}",
                if open {
                    " (the token lacks its scope: get a new token)"
                } else {
                    ""
                }
            )))
        }
    }

    /// The units the caller may read now.
    pub(super) fn readable(&self, svc: &ApiServices) -> Result<Vec<Uscc>, Problem> {
        Ok(svc
            .store
            .ports_of(&self.client.name)
            .map_err(|e| {
                error!(error = %e, "ports read failed");
                Problem::Internal
            })?
            .into_iter()
            .filter(|u| self.claims.has_scope(&format!("port:{u}:read")))
            .collect())
    }
}

/// Reads a request body of at most `max` bytes: too large is 413, too slow (the connection's
/// body deadline or minimum rate) is 408.
pub(super) async fn read_body(body: Body, max: usize) -> Result<axum::body::Bytes, Problem> {
    axum::body::to_bytes(body, max).await.map_err(|e| {
        match super::server::body_timeout(&e as &(dyn std::error::Error + 'static)) {
            Some(t) => Problem::RequestTimeout(t.0.clone()),
            None => Problem::TooLarge,
        }
    })
}

/// Largest submitted report accepted through the API.
const MAX_SUBMISSION: usize = 32 * 1024 * 1024;

/// `POST /v1/submissions?unit=U&quarter=Q`: a unit's quarterly report (CSV, XLSX or XML by
/// `Content-Type`), from a client holding `submit:<unit>` (in its token and still granted).
async fn submission(
    State(ctx): State<Arc<Ctx>>,
    d: DataReq,
    headers: HeaderMap,
    body: Body,
) -> Result<Resp, Problem> {
    let (svc, state) = (ctx.svc.clone(), ctx.state.clone());
    let (query, request_id, peer) = (d.query.as_str(), d.rid.as_str(), d.peer.clone());
    let auth = d.auth.clone();
    // Who asks comes first: an anonymous caller learns nothing about what a submission needs.
    let caller = {
        let (svc, state, peer) = (svc.clone(), state.clone(), peer.clone());
        tokio::task::spawn_blocking(move || authenticate(&svc, &state, &peer, auth.as_deref()))
            .await
            .map_err(|_| Problem::Internal)??
    };
    let ext = match super::media_type(&headers).as_deref() {
        Some("text/csv") => "csv",
        Some("application/xml" | "text/xml") => "xml",
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet") => "xlsx",
        other => {
            return Err(Problem::BadParameter {
                field: "content-type".into(),
                reason: format!(
                    "{} is not text/csv, application/xml or application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    other.unwrap_or("(none)")
                ),
            });
        }
    };
    let (mut unit, mut quarter) = (None, None);
    for (k, v) in query::unique_pairs(query)? {
        match k.as_str() {
            "unit" => {
                unit = Some(Uscc::parse(&v).map_err(|e| Problem::BadParameter {
                    field: "unit".into(),
                    reason: e.to_string(),
                })?)
            }
            "quarter" => {
                quarter =
                    Some(
                        crate::model::Quarter::parse(&v).map_err(|e| Problem::BadParameter {
                            field: "quarter".into(),
                            reason: e.to_string(),
                        })?,
                    )
            }
            other => {
                return Err(Problem::BadParameter {
                    field: other.into(),
                    reason: "unknown parameter".into(),
                });
            }
        }
    }
    let missing = |f: &str| Problem::BadParameter {
        field: f.into(),
        reason: "required".into(),
    };
    let unit = unit.ok_or_else(|| missing("unit"))?;
    let quarter = quarter.ok_or_else(|| missing("quarter"))?;
    let granted = svc
        .store
        .report_grants_of(ReportRight::Submit, &caller.client.name)
        .map_err(store_problem)?
        .contains(&unit);
    if !caller.claims.has_scope(&format!("submit:{unit}")) || !granted {
        return Err(Problem::Forbidden(format!(
            "the client may not submit {unit}'s reports (scope submit:{unit})"
        )));
    }
    let body = read_body(body, MAX_SUBMISSION).await?;
    // Removed when dropped, whatever the outcome; a file left by an unclean stop is removed at
    // the next start.
    let kept = keep_submission(&svc.tmp_dir, request_id, ext, &body).map_err(|e| {
        error!(error = %e, "cannot keep a submission for decoding");
        Problem::Internal
    })?;
    let result = svc
        .submissions
        .clone()
        .submit(
            unit.clone(),
            quarter,
            kept.path().to_path_buf(),
            caller.actor(),
        )
        .await;
    drop(kept);
    use crate::reports::intake::IntakeError;
    use crate::reports::submit::SubmitError;
    match result {
        Ok((r, stored)) => {
            let new = matches!(stored, crate::store::ReportStored::New { .. });
            let v = json!({
                "quarter": r.quarter,
                "unit_code": r.unit_code,
                "version": r.version,
                "digest": r.digest,
                "new_version": new,
                "cases": r.summary.total,
            });
            let status = if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(respond(
                status,
                "application/json",
                serde_json::to_vec(&v).map_err(|_| Problem::Internal)?,
            ))
        }
        Err(IntakeError::Refused(SubmitError::Invalid(problems))) => {
            Err(Problem::SubmissionRefused {
                detail: format!("{} problem(s); fix them and submit again", problems.len()),
                problems: problems.iter().map(ToString::to_string).collect(),
            })
        }
        Err(e @ IntakeError::Refused(_)) => Err(Problem::SubmissionRefused {
            detail: e.to_string(),
            problems: Vec::new(),
        }),
        Err(e @ (IntakeError::NotASubmitter(_) | IntakeError::Fed(_))) => {
            Err(Problem::Forbidden(e.to_string()))
        }
        Err(e @ IntakeError::NotEnded { .. }) => Err(Problem::Conflict(e.to_string())),
        Err(IntakeError::Audit(e)) => Err(audit_problem(&e)),
        Err(e) => {
            error!(error = %e, "submission failed");
            Err(Problem::Internal)
        }
    }
}

pub(super) fn store_problem(e: crate::store::StoreError) -> Problem {
    error!(error = %e, "store read failed in the port API");
    Problem::Internal
}

/// The audit digest of a response's records: SHA-256 over each store key, version and a line
/// feed, with the number of records.
pub fn keys_digest(keys: impl Iterator<Item = (Vec<u8>, u64)>) -> (u64, String) {
    let mut h = Sha256::new();
    let mut n = 0;
    for (key, version) in keys {
        h.update(key);
        h.update(version.to_be_bytes());
        h.update([b'\n']);
        n += 1;
    }
    (n, hex::encode(h.finalize()))
}

/// Encodes `value` in the form the client asked for — JSON, or XML (`schemas/port-api.xsd`) with
/// the document element `root` — appends `event` (the read about to be answered), then answers:
/// no audit entry, no data. A value with no form of the kind asked for (a character
/// XML 1.0 forbids) is answered with a problem naming the case and field, after `event` is
/// appended with the outcome `failed` and the reason — the read is recorded either way, and a
/// broken document is never sent.
pub(super) fn audited_value(
    svc: &ApiServices,
    event: Event,
    xml: bool,
    root: &str,
    value: &serde_json::Value,
    attributes: &[&str],
) -> Result<Resp, Problem> {
    let encoded = if xml {
        super::xml::document(root, value, attributes)
            .map(|bytes| ("application/xml; charset=utf-8", bytes))
    } else {
        // JSON escapes every control character, so every stored value has a JSON form.
        let bytes = serde_json::to_vec(value).map_err(|_| Problem::Internal)?;
        Ok(("application/json", bytes))
    };
    match encoded {
        Ok((content_type, body)) => send_after(
            audit_later(svc, &event)?,
            respond(StatusCode::OK, content_type, body),
        ),
        Err(e) => {
            warn!(error = %e, "a stored value cannot be answered in XML");
            svc.audit
                .append(&event.outcome("failed").detail("error", e.to_string()))
                .map_err(|e| audit_problem(&e))?;
            Err(Problem::NotRepresentable(format!(
                "{e}; the JSON form (Accept: application/json) carries it, or correct the record at its source"
            )))
        }
    }
}

/// [`audited_value`] of a serializable value, without attributes.
pub(super) fn audited_answer(
    svc: &ApiServices,
    event: Event,
    xml: bool,
    root: &str,
    value: &impl Serialize,
) -> Result<Resp, Problem> {
    let value = serde_json::to_value(value).map_err(|_| Problem::Internal)?;
    audited_value(svc, event, xml, root, &value, &[])
}

/// `GET /v1/ports`.
fn list_ports(
    svc: &ApiServices,
    caller: &Caller,
    request_id: &str,
    xml: bool,
) -> Result<Resp, Problem> {
    let units = caller.readable(svc)?;
    let names: Vec<serde_json::Value> = units
        .iter()
        .map(|u| {
            let name = svc.unit_names.get(u).cloned();
            json!({ "unit_code": u, "unit_name": name })
        })
        .collect();
    audited_answer(
        svc,
        Event::new(caller.actor(), "ports.list", &caller.client.name)
            .request(request_id)
            .detail("count", units.len() as u64),
        xml,
        "ports",
        &json!({ "ports": names }),
    )
}

/// `GET /v1/ports/{unit}/cases`.
fn list_cases(
    svc: &ApiServices,
    caller: &Caller,
    unit: &str,
    query: &str,
    request_id: &str,
    xml: bool,
) -> Result<Resp, Problem> {
    let unit = caller.port(svc, unit)?;
    let q = ListQuery::parse(query)?;
    let payload = |last: &str| query::cursor_payload(unit.as_str(), &q.filter, last);
    let after = match &q.cursor {
        None => None,
        Some(c) => {
            let (last, mac) = query::decode_cursor(c)?;
            let expected = svc
                .custody
                .mac("cursor", &payload(&last))
                .map_err(|e| custody_problem(&e))?;
            if !crate::keys::secret::constant_time_eq(&mac, &expected) {
                return Err(Problem::BadParameter {
                    field: "cursor".into(),
                    reason: "not a cursor this gateway issued for this port and filter".into(),
                });
            }
            Some(last)
        }
    };
    // (case id, version, JSON) of the page, and whether more follow.
    let mut page: Vec<(String, u64, Vec<u8>)> = Vec::with_capacity(q.limit);
    let mut more = false;
    if q.filter.header_only() {
        // Fast path: the store splices the JSON without decoding the cases.
        for c in svc.store.unit_cases_raw_after(&unit, after.as_deref()) {
            let c = c.map_err(store_problem)?;
            if q.filter.action.is_some_and(|a| a != c.action) {
                continue;
            }
            if page.len() == q.limit {
                more = true;
                break;
            }
            page.push((c.case_id, c.version, c.json));
        }
    } else {
        for c in svc.store.unit_cases_after(&unit, after.as_deref()) {
            let c = c.map_err(store_problem)?;
            if !q.filter.matches(&c) {
                continue;
            }
            if page.len() == q.limit {
                more = true;
                break;
            }
            let json = serde_json::to_vec(&c).map_err(|_| Problem::Internal)?;
            page.push((c.case_id.as_str().to_string(), c.version, json));
        }
    }
    let next = match (more, page.last()) {
        (true, Some((last, _, _))) => {
            let mac = svc
                .custody
                .mac("cursor", &payload(last))
                .map_err(|e| custody_problem(&e))?;
            Some(query::encode_cursor(last, &mac))
        }
        _ => None,
    };
    let (n, digest) = keys_digest(page.iter().map(|(id, version, _)| {
        let mut key = unit.as_str().as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(id.as_bytes());
        (key, *version)
    }));
    let event = Event::new(caller.actor(), "case.list", unit.as_str())
        .request(request_id)
        .digest(&digest)
        .detail("filter", q.filter.describe())
        .detail("count", n);
    if xml {
        let cases: Vec<serde_json::Value> = page
            .iter()
            .filter_map(|(_, _, j)| serde_json::from_slice(j).ok())
            .collect();
        return audited_value(
            svc,
            event,
            true,
            "cases",
            &json!({ "cases": cases, "next": next }),
            &[],
        );
    }
    let audited = audit_later(svc, &event)?;
    let mut body = Vec::with_capacity(page.iter().map(|(_, _, j)| j.len() + 1).sum::<usize>() + 64);
    body.extend_from_slice(b"{\"cases\":[");
    for (i, (_, _, json)) in page.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(json);
    }
    body.extend_from_slice(b"],\"next\":");
    body.extend_from_slice(
        serde_json::to_string(&next)
            .unwrap_or_else(|_| "null".into())
            .as_bytes(),
    );
    body.push(b'}');
    send_after(audited, respond(StatusCode::OK, "application/json", body))
}

/// `GET /v1/reports/quarterly/{quarter}[/{unit}]`.
fn reports(
    svc: &ApiServices,
    caller: &Caller,
    quarter: &str,
    unit: Option<&str>,
    query: &str,
    request_id: &str,
    xml: bool,
) -> Result<Resp, Problem> {
    if !caller.claims.has_scope("reports:read") {
        return Err(Problem::Forbidden(
            "the token lacks the reports:read scope".into(),
        ));
    }
    let q = crate::model::Quarter::parse(quarter).map_err(|e| Problem::BadParameter {
        field: "quarter".into(),
        reason: e.to_string(),
    })?;
    let version = match query::unique_pairs(query)?.as_slice() {
        [] => None,
        [(k, v)] if k == "version" && unit.is_some() => {
            Some(v.parse::<u64>().map_err(|_| Problem::BadParameter {
                field: "version".into(),
                reason: format!("{v:?} is not a version number"),
            })?)
        }
        [(k, _), ..] => {
            return Err(Problem::BadParameter {
                field: k.clone(),
                reason: "unknown parameter".into(),
            });
        }
    };
    // Which units' reports the caller reads, and which of them in full (it holds their port).
    let full = caller.readable(svc)?;
    let granted = svc
        .store
        .report_grants_of(ReportRight::Read, &caller.client.name)
        .map_err(store_problem)?;
    let view = |r: QuarterlyReport| -> Option<QuarterlyReport> {
        if full.contains(&r.unit_code) {
            Some(r)
        } else if granted.contains(&r.unit_code) {
            Some(masked_report(r))
        } else {
            None
        }
    };
    match unit {
        None => {
            let reports: Vec<QuarterlyReport> = (svc.store.reports_latest(q))
                .map_err(store_problem)?
                .into_iter()
                .filter_map(view)
                .collect();
            audited_answer(
                svc,
                Event::new(caller.actor(), "reports.list", q.to_string())
                    .request(request_id)
                    .detail("count", reports.len() as u64),
                xml,
                "quarterly",
                &json!({ "quarter": q, "reports": reports }),
            )
        }
        Some(unit) => {
            let unit = crate::model::Uscc::parse(unit).map_err(|e| Problem::BadParameter {
                field: "unit".into(),
                reason: e.to_string(),
            })?;
            if !full.contains(&unit) && !granted.contains(&unit) {
                return Err(Problem::Forbidden(format!(
                    "this client may not read {unit}'s reports: it holds neither the unit's port nor a read grant (xianjie reports allow-read {unit} --client {})",
                    caller.client.name
                )));
            }
            let r = svc
                .store
                .report_get(q, &unit, version)
                .map_err(store_problem)?
                .and_then(view)
                .ok_or_else(|| Problem::NotFound(format!("no report of {unit} for {q}")))?;
            audited_answer(
                svc,
                Event::new(caller.actor(), "reports.read", format!("{q}/{unit}"))
                    .request(request_id)
                    .detail("version", r.version),
                xml,
                "report",
                &r,
            )
        }
    }
}

/// `GET /v1/reports/quarterly/{quarter}/{unit}/documents/{doc_id}`: a document copy (文书副本)
/// submitted with the report (`?version=N` for an earlier version's), by its name as listed.
/// It goes only to a holder of the unit's port: a read grant shows the report with ID numbers
/// masked, and a copy of a decision cannot be masked.
fn report_document(
    svc: &ApiServices,
    caller: &Caller,
    quarter: &str,
    unit: &str,
    doc_id: &str,
    query: &str,
    request_id: &str,
) -> Result<Resp, Problem> {
    if !caller.claims.has_scope("reports:read") {
        return Err(Problem::Forbidden(
            "the token lacks the reports:read scope".into(),
        ));
    }
    let bad = |field: &str, reason: String| Problem::BadParameter {
        field: field.into(),
        reason,
    };
    let q = crate::model::Quarter::parse(quarter).map_err(|e| bad("quarter", e.to_string()))?;
    let unit = Uscc::parse(unit).map_err(|e| bad("unit", e.to_string()))?;
    let version = match query::unique_pairs(query)?.as_slice() {
        [] => None,
        [(k, v)] if k == "version" => Some(
            v.parse::<u64>()
                .map_err(|_| bad("version", format!("{v:?} is not a version number")))?,
        ),
        [(k, _), ..] => return Err(bad(k, "unknown parameter".into())),
    };
    if !caller.readable(svc)?.contains(&unit) {
        let granted = (svc.store)
            .report_grants_of(ReportRight::Read, &caller.client.name)
            .map_err(store_problem)?
            .contains(&unit);
        return Err(Problem::Forbidden(if granted {
            format!(
                "{unit}'s document copies go only to a holder of its port: a read grant shows \
                 its reports with ID numbers masked, and a copy cannot be masked"
            )
        } else {
            format!("this client may not read {unit}'s reports or their document copies")
        }));
    }
    let r = (svc.store.report_get(q, &unit, version))
        .map_err(store_problem)?
        .ok_or_else(|| Problem::NotFound(format!("no report of {unit} for {q}")))?;
    let doc = (r.documents.iter().find(|d| d.name == doc_id)).ok_or_else(|| {
        Problem::NotFound(format!(
            "version {} of {unit}'s report for {q} has no document {doc_id}",
            r.version
        ))
    })?;
    document_reply(
        svc,
        Event::new(
            caller.actor(),
            "report.document.read",
            format!("{q}/{unit}/{doc_id}"),
        )
        .request(request_id)
        .detail("version", r.version),
        &doc.sha256,
        crate::ingest::documents::media_type(&doc.name).unwrap_or("application/octet-stream"),
    )
}

/// `GET /v1/ports/{unit}/cases/{case_id}`.
fn read_case(
    svc: &ApiServices,
    caller: &Caller,
    unit: &str,
    case_id: &str,
    request_id: &str,
    xml: bool,
) -> Result<Resp, Problem> {
    let unit = caller.port(svc, unit)?;
    let id = CaseId::parse(case_id).map_err(|_| Problem::NotFound(format!("no case {case_id}")))?;
    let missing = || Problem::NotFound(format!("no case {id} in port {unit}"));
    let event = |version: u64| {
        Event::new(caller.actor(), "case.read", format!("{unit}/{id}"))
            .request(request_id)
            .detail("version", version)
    };
    if !xml {
        // JSON as stored: no decoding and encoding on the busiest route.
        let raw = (svc.store.get_case_raw(&unit, &id))
            .map_err(store_problem)?
            .ok_or_else(missing)?;
        let audited = audit_later(svc, &event(raw.version))?;
        return send_after(
            audited,
            respond(StatusCode::OK, "application/json", raw.json),
        );
    }
    let case = svc
        .store
        .get_case(&unit, &id)
        .map_err(store_problem)?
        .ok_or_else(missing)?;
    audited_answer(
        svc,
        Event::new(caller.actor(), "case.read", format!("{unit}/{id}"))
            .request(request_id)
            .detail("version", case.version),
        xml,
        "case",
        &case,
    )
}

/// `GET /v1/ports/{unit}/cases/{case_id}/documents/{doc_id}`.
fn read_document(
    svc: &ApiServices,
    caller: &Caller,
    unit: &str,
    case_id: &str,
    doc_id: &str,
    request_id: &str,
) -> Result<Resp, Problem> {
    let unit = caller.port(svc, unit)?;
    let id = CaseId::parse(case_id).map_err(|_| Problem::NotFound(format!("no case {case_id}")))?;
    let case = svc
        .store
        .get_case(&unit, &id)
        .map_err(store_problem)?
        .ok_or_else(|| Problem::NotFound(format!("no case {id} in port {unit}")))?;
    // The case's own documents, then those of the supervision actions on it and their answers.
    let attached;
    let doc = match case.documents.iter().find(|d| d.doc_id == *doc_id) {
        Some(d) => d,
        None => {
            attached = crate::supervision::workbench::action_documents(&svc.store, &case.key())
                .map_err(store_problem)?;
            attached
                .iter()
                .find(|d| d.doc_id == *doc_id)
                .ok_or_else(|| Problem::NotFound(format!("case {id} has no document {doc_id}")))?
        }
    };
    document_reply(
        svc,
        Event::new(
            caller.actor(),
            "document.read",
            format!("{unit}/{id}/{doc_id}"),
        )
        .request(request_id),
        &doc.sha256,
        &doc.media_type,
    )
}

/// A stored document's bytes as `media_type`, checked against their `sha256` and audited as
/// `event` (with the digest and size) before they are sent, the digest in `Repr-Digest` (RFC
/// 9530), `Digest` and `ETag`.
fn document_reply(
    svc: &ApiServices,
    event: Event,
    sha256: &str,
    media_type: &str,
) -> Result<Resp, Problem> {
    let bytes = (svc.store.get_document(sha256))
        .map_err(store_problem)?
        .ok_or_else(|| {
            error!(sha256 = %sha256, "a listed document is missing from the store");
            Problem::NotFound("the document is listed but not available".into())
        })?;
    let digest = Sha256::digest(&bytes);
    if hex::encode(digest) != sha256 {
        error!(sha256 = %sha256, "a stored document does not match its digest");
        return Err(Problem::Internal);
    }
    let audited = audit_later(
        svc,
        &event.digest(sha256).detail("size", bytes.len() as u64),
    )?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
    let mut r = respond(StatusCode::OK, media_type, bytes);
    let h = r.headers_mut();
    for (name, value) in [
        ("repr-digest", format!("sha-256=:{b64}:")),
        ("digest", format!("sha-256={b64}")),
        ("etag", format!("\"{sha256}\"")),
    ] {
        if let Ok(v) = value.parse() {
            h.insert(name, v);
        }
    }
    send_after(audited, r)
}

/// `GET /v1/changes`.
fn changes(
    svc: &ApiServices,
    caller: &Caller,
    query: &str,
    request_id: &str,
    xml: bool,
) -> Result<Resp, Problem> {
    let mut after = 0u64;
    let mut limit = query::DEFAULT_LIMIT;
    for (k, v) in query::unique_pairs(query)? {
        match k.as_str() {
            "after" => {
                after = v.parse().map_err(|_| Problem::BadParameter {
                    field: "after".into(),
                    reason: format!("{v:?} is not a sequence number"),
                })?
            }
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=query::MAX_LIMIT).contains(n))
                    .ok_or_else(|| Problem::BadParameter {
                        field: "limit".into(),
                        reason: format!("{v:?} is not in 1..={}", query::MAX_LIMIT),
                    })?
            }
            other => {
                return Err(Problem::BadParameter {
                    field: other.into(),
                    reason: "unknown parameter (known: after, limit)".into(),
                });
            }
        }
    }
    let units = caller.readable(svc)?;
    let mut out = Vec::new();
    let mut last_seen = after;
    // Read the log in slices, skipping other ports' changes, until the page is full
    // or the log ends.
    'scan: loop {
        let slice = svc
            .store
            .changes_after(last_seen, 1000)
            .map_err(store_problem)?;
        if slice.is_empty() {
            break;
        }
        let mut wanted = Vec::new();
        for ch in slice {
            last_seen = ch.seq;
            if units.contains(&ch.unit_code) {
                wanted.push(ch);
                if out.len() + wanted.len() == limit {
                    break;
                }
            }
        }
        // The slice's cases in one read (one query on PostgreSQL).
        let keys: Vec<_> = wanted.iter().map(|c| (&c.unit_code, &c.case_id)).collect();
        let cases = svc.store.get_cases_raw(&keys).map_err(store_problem)?;
        out.extend(wanted.into_iter().zip(cases));
        if out.len() == limit {
            break 'scan;
        }
    }
    let (n, digest) = keys_digest(out.iter().filter_map(|(ch, c)| {
        let c = c.as_ref()?;
        let mut key = ch.unit_code.as_str().as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(ch.case_id.as_str().as_bytes());
        Some((key, c.version))
    }));
    let event = Event::new(caller.actor(), "changes.read", format!("after {after}"))
        .request(request_id)
        .digest(&digest)
        .detail("count", n)
        .detail("next_after", last_seen);
    if !xml {
        // Spliced from the stored JSON, as a page of cases is: a mirror reads a million.
        let audited = audit_later(svc, &event)?;
        let mut body = Vec::with_capacity(
            out.iter()
                .map(|(_, c)| c.as_ref().map_or(4, |c| c.json.len()) + 128)
                .sum::<usize>()
                + 64,
        );
        body.extend_from_slice(b"{\"changes\":[");
        for (i, (ch, case)) in out.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            let head = json!({
                "seq": ch.seq,
                "unit_code": ch.unit_code,
                "case_id": ch.case_id,
                "version": ch.version,
            });
            let head = serde_json::to_vec(&head).map_err(|_| Problem::Internal)?;
            // `{"seq":…,"version":…` then `,"case":…}`.
            body.extend_from_slice(&head[..head.len() - 1]);
            body.extend_from_slice(b",\"case\":");
            match case {
                Some(c) => body.extend_from_slice(&c.json),
                None => body.extend_from_slice(b"null"),
            }
            body.push(b'}');
        }
        body.extend_from_slice(format!("],\"next_after\":{last_seen}}}").as_bytes());
        return send_after(audited, respond(StatusCode::OK, "application/json", body));
    }
    let changes: Vec<serde_json::Value> = out
        .into_iter()
        .map(|(ch, case)| {
            let case = case
                .and_then(|c| serde_json::from_slice::<serde_json::Value>(&c.json).ok())
                .unwrap_or(serde_json::Value::Null);
            json!({
                "seq": ch.seq,
                "unit_code": ch.unit_code,
                "case_id": ch.case_id,
                "version": ch.version,
                "case": case,
            })
        })
        .collect();
    audited_value(
        svc,
        event,
        xml,
        "changes",
        &json!({ "changes": changes, "next_after": last_seen }),
        &["next_after"],
    )
}

/// Writes a submission's body to a temporary file under the data directory for decoding.
fn keep_submission(
    dir: &std::path::Path,
    request_id: impl std::fmt::Display,
    ext: &str,
    body: &[u8],
) -> std::io::Result<tempfile::NamedTempFile> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let mut f = tempfile::Builder::new()
        .prefix(&format!("submission-{request_id}-"))
        .suffix(&format!(".{ext}"))
        .tempfile_in(dir)?;
    f.write_all(body)?;
    f.flush()?;
    Ok(f)
}
