//! The provincial platform simulator (`xianjie province-sim`): a real HTTPS server that takes
//! push packages as the platform would, so a deployment can be accepted against it and the
//! delivery worker's retries, deduplication and dead-lettering can be tested end to end.
//!
//! It owns the platform's side of the exchange: the credential and signature checks, validation
//! ([`validate`]), deduplication by record id + version, receipts
//! ([`receipt::build`]), the accepted records (inspectable at `GET /sim/records` and
//! `/sim/stats`), and fault injection ([`FaultPlan`]): error statuses, `429` with `Retry-After`,
//! delays, connections dropped after the package was stored (a lost receipt), rejections of
//! chosen records, and refusals of every package that holds a chosen record. State lives in
//! memory only; a restart forgets everything, which is what a test harness wants.
//!
//! HTTP surface, one axum route table: `POST /packages` (the platform), `POST /reports`
//! (quarterly reports) and `POST /notices` (supervision notices, as a unit's own case system
//! takes them); `GET /sim/records`, `GET /sim/stats`, `GET /sim/reports`, `GET /sim/notices`,
//! `POST /sim/faults` (body: a fault spec replacing the plan), `DELETE /sim/faults`,
//! `PUT /sim/verify-key` (body: `KEY_ID BASE64`, as `xianjie push key` prints it), and
//! `GET /sim/packages` / `GET /sim/packages/{id}` (the newest received package bodies, with the
//! signature header as received) — the test harness's view, no credential. A routed path asked
//! with another method is 405 with `Allow`; anything else is 404.
//!
//! A crate of its own, without the gateway: the gateway offers it as `xianjie province-sim`
//! (re-exported as `xianjie::push::sim`, with [`validate`] and [`receipt`] under
//! `xianjie::push`), and its package builder reads what it writes with [`validate`] before
//! sending. The tests that drive the simulator with packages the gateway writes live in the
//! gateway (`src/push/tests/`); the feature `test-harness` gives them its `harness`.

pub mod receipt;
pub mod validate;

// Test support only: compiled for this crate's tests and, with the feature, the gateway's.
#[cfg(any(test, feature = "test-harness"))]
pub mod harness;

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{MethodRouter, get, post, put};
use axum::{Extension, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use xianjie_net::secret::{SecretString, constant_time_eq};
use xianjie_net::serve::{ConnLimits, DropConnection, media_type, serve_tls};
use xianjie_net::shutdown::Shutdown;
use xianjie_net::tls::{ClientAuth, ServerTls, ServerTlsFiles};

use crate::receipt::{Outcome, Receipt, RecordResult};
use crate::validate::RecordOp;

/// Largest package body; a bigger one is answered 413.
pub const MAX_PACKAGE_BYTES: usize = 32 * 1024 * 1024;
/// The header carrying the package signature:
/// `keyid=<key id>;ed25519=<base64 (standard, padded) of the 64-byte signature over the body>`.
pub const SIGNATURE_HEADER: &str = "x-xianjie-signature";
/// The code of a record rejected by a `reject:<id>` fault rule.
pub const E_SIM_REJECT: &str = "E-SIM-REJECT";

/// Largest `xN` repeat, `429:SECS` and `delay:MS`: bounds that no sensible test exceeds, so a
/// typo cannot park the simulator for a day.
const MAX_REPEAT: u32 = 1_000_000;
const MAX_RETRY_AFTER_SECS: u64 = 86_400;
const MAX_DELAY_MS: u64 = 600_000;
const REALM: &str = "province-sim";

/// How the simulator is started.
#[derive(Debug)]
pub struct SimOptions {
    /// Address to listen on, e.g. `127.0.0.1:9443` (`:0` picks a free port).
    pub listen: String,
    /// Directory with `server.pem` and `server-key.pem` (as written by `xianjie certs dev`).
    pub certs: PathBuf,
    /// When set, `POST /packages` needs `Authorization: Bearer <it>` or `Basic <base64(it)>`.
    pub credential: Option<SecretString>,
    /// When set (key id, public key), every package must carry a valid [`SIGNATURE_HEADER`].
    pub verify_key: Option<(String, VerifyingKey)>,
    /// Faults to inject from the start.
    pub faults: FaultPlan,
}

/// One injected fault, applied to one `POST /packages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (500 or 503) and do nothing else.
    Status(u16),
    /// Answer 429 with `Retry-After: secs`.
    TooManyRequests {
        /// The `Retry-After` value, in seconds.
        retry_after_secs: u64,
    },
    /// Wait this long, then process the package normally.
    Delay(Duration),
    /// Process and store the package, then drop the connection without answering (a receipt
    /// lost on the way back).
    Reset,
    /// Refuse the package with 400 and a reason, storing nothing.
    BadRequest,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Status(s) => write!(f, "{s}"),
            Fault::TooManyRequests { retry_after_secs } => write!(f, "429:{retry_after_secs}"),
            Fault::Delay(d) => write!(f, "delay:{}", d.as_millis()),
            Fault::Reset => f.write_str("reset"),
            Fault::BadRequest => f.write_str("400"),
        }
    }
}

/// The faults to inject: a queue consumed one fault per `POST /packages`, and standing rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Faults in order, each with how many more packages it applies to.
    pub queue: VecDeque<(Fault, u32)>,
    /// Record ids always rejected with [`E_SIM_REJECT`] (not consumed).
    pub reject: BTreeSet<String>,
    /// Record ids whose package is always refused as a whole with 400 (not consumed): a
    /// refusal the sender cannot foresee from the schema.
    pub refuse: BTreeSet<String>,
}

impl FaultPlan {
    /// Takes the fault for the next package, if any is left.
    pub fn take(&mut self) -> Option<Fault> {
        loop {
            let (fault, left) = self.queue.front_mut()?;
            // A count of 0 (possible when a plan is built by hand) means the entry is spent.
            if *left == 0 {
                self.queue.pop_front();
                continue;
            }
            let fault = *fault;
            *left -= 1;
            if *left == 0 {
                self.queue.pop_front();
            }
            return Some(fault);
        }
    }

    /// Whether the plan injects nothing.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.reject.is_empty() && self.refuse.is_empty()
    }
}

/// An accepted record version, as `GET /sim/records` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimRecord {
    /// Record id.
    pub id: String,
    /// Record version.
    pub version: u64,
    /// `PenaltyRecord`, `LicenseRecord` or `InspectionResult`.
    pub kind: String,
    /// `upsert` or `retract`.
    pub op: String,
    /// The package that brought it.
    pub package_id: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// The record's fields (element name → text); empty for a retraction.
    pub fields: BTreeMap<String, String>,
}

/// Counters, as `GET /sim/stats` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Packages answered with a receipt (or processed and then dropped by a `reset` fault).
    pub packages: u64,
    /// Record versions accepted (upserts and retractions).
    pub records_accepted: u64,
    /// Records answered `duplicate`.
    pub duplicates: u64,
    /// Records answered `rejected`.
    pub rejected: u64,
    /// Accepted retractions.
    pub retractions: u64,
    /// Packages refused as a whole for their content (400, 413, 415); injected `400`s are
    /// counted in `faults_injected` only.
    pub packages_refused: u64,
    /// Requests refused 401 (credential or signature).
    pub auth_failures: u64,
    /// Faults applied from the queue.
    pub faults_injected: u64,
    /// The id of the last package that got a receipt.
    pub last_package_id: Option<String>,
    /// Quarterly report versions accepted (`POST /reports`).
    pub reports_accepted: u64,
    /// Quarterly report versions received again.
    pub reports_duplicates: u64,
}

/// A supervision notice received at `POST /notices` (a unit's own case system, as the gateway's
/// `schemas/supervision-notice.xsd` describes it), kept whole so a test can check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimNotice {
    /// The action's id.
    pub id: u64,
    /// The unit.
    pub unit_code: String,
    /// The case.
    pub case_id: String,
    /// The document as received.
    pub xml: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

/// A quarterly report version received at `POST /reports` (the port API's `<report>` XML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimReport {
    /// The quarter.
    pub quarter: String,
    /// The unit.
    pub unit_code: String,
    /// The report's version.
    pub version: u64,
    /// Its content digest.
    pub digest: String,
    /// Cases in it.
    pub total: u64,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

/// A simulator problem. Messages name the file, address or fault item at fault.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The TLS certificate or key could not be loaded.
    #[error("TLS setup in {}: {}", dir.display(), problems.join("; "))]
    Tls {
        /// The certificate directory.
        dir: PathBuf,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A fault spec item is not understood.
    #[error("fault spec item {item:?}: {reason}")]
    Faults {
        /// The item as written.
        item: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The verification key text is not `<key id> <base64 of 32 bytes>`.
    #[error("verification key: {0}")]
    VerifyKey(String),
    /// `run` was called on a simulator that is already running.
    #[error("the simulator is already running")]
    AlreadyRunning,
}

/// Parses a fault spec: comma-separated items consumed in order by successive packages —
/// `500`, `503`, `429` or `429:SECS` (default 1), `delay:MS`, `reset`, `400`, each optionally
/// followed by `xN` to repeat it N times (`503x3`, `429:2x2`, `resetx2`) — and standing rules
/// `reject:<RECORD_ID>` (that record is rejected in its receipt) and `refuse:<RECORD_ID>` (a
/// package holding that record is refused as a whole with 400). An empty spec is an empty plan.
///
/// # Errors
/// [`SimError::Faults`] naming the first item not understood.
pub fn parse_faults(spec: &str) -> Result<FaultPlan, SimError> {
    let mut plan = FaultPlan::default();
    if spec.trim().is_empty() {
        return Ok(plan);
    }
    for raw in spec.split(',') {
        let item = raw.trim();
        let bad = |reason: &str| SimError::Faults {
            item: item.to_string(),
            reason: reason.to_string(),
        };
        if item.is_empty() {
            return Err(bad("empty item (two commas in a row, or a trailing comma)"));
        }
        let standing = [("reject:", &mut plan.reject), ("refuse:", &mut plan.refuse)];
        if let Some((rule, id, set)) = standing
            .into_iter()
            .find_map(|(rule, set)| item.strip_prefix(rule).map(|id| (rule, id, set)))
        {
            let ok = (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(bad(&format!(
                    "{rule} needs a record id of 1-64 of A-Z a-z 0-9 . _ -"
                )));
            }
            set.insert(id.to_string());
            continue;
        }
        // `xN` ends an item; no fault's own spelling ends in x followed by digits.
        let (base, times) = match item.rsplit_once('x') {
            Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                let n: u32 = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_REPEAT).contains(n))
                    .ok_or_else(|| bad(&format!("repeat count must be 1..={MAX_REPEAT}")))?;
                (base, n)
            }
            _ => (item, 1),
        };
        let fault = match base {
            "500" => Fault::Status(500),
            "503" => Fault::Status(503),
            "400" => Fault::BadRequest,
            "reset" => Fault::Reset,
            "429" => Fault::TooManyRequests {
                retry_after_secs: 1,
            },
            _ => {
                if let Some(secs) = base.strip_prefix("429:") {
                    Fault::TooManyRequests {
                        retry_after_secs: number(secs, MAX_RETRY_AFTER_SECS).ok_or_else(|| {
                            bad(&format!(
                                "429:SECS needs whole seconds 0..={MAX_RETRY_AFTER_SECS}"
                            ))
                        })?,
                    }
                } else if let Some(ms) = base.strip_prefix("delay:") {
                    Fault::Delay(Duration::from_millis(number(ms, MAX_DELAY_MS).ok_or_else(
                        || bad(&format!("delay:MS needs milliseconds 0..={MAX_DELAY_MS}")),
                    )?))
                } else {
                    return Err(bad(
                        "not a fault; use 500, 503, 429, 429:SECS, delay:MS, reset, 400 (each \
                         optionally xN), reject:RECORD_ID or refuse:RECORD_ID",
                    ));
                }
            }
        };
        plan.queue.push_back((fault, times));
    }
    Ok(plan)
}

fn number(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| *n <= max)
}

/// Parses a verification key file: one line `<key id> <base64 (standard) of the 32-byte Ed25519
/// public key>`.
///
/// # Errors
/// [`SimError::VerifyKey`] saying what is wrong.
pub fn parse_verify_key(text: &str) -> Result<(String, VerifyingKey), SimError> {
    let bad = |s: String| SimError::VerifyKey(s);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let [line] = lines.as_slice() else {
        return Err(bad(format!(
            "expected one line \"<key id> <base64 public key>\", found {} non-empty lines",
            lines.len()
        )));
    };
    let parts: Vec<&str> = line.split_whitespace().collect();
    let [id, key] = parts.as_slice() else {
        return Err(bad(format!(
            "expected \"<key id> <base64 public key>\", found {} words",
            parts.len()
        )));
    };
    if id.contains([';', '=', ',']) {
        return Err(bad(format!(
            "key id {id:?} may not contain ';', '=' or ',' (it travels in the signature header)"
        )));
    }
    let bytes = B64
        .decode(key)
        .map_err(|e| bad(format!("public key is not base64: {e}")))?;
    let bytes: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| bad(format!("public key has {} bytes, expected 32", bytes.len())))?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|e| bad(format!("not an Ed25519 public key: {e}")))?;
    Ok(((*id).to_string(), key))
}

/// The [`SIGNATURE_HEADER`] value for `body` signed with `key` under `key_id` — what the
/// simulator verifies; the sending side may use it so both ends agree on the format.
pub fn signature_header_value(key_id: &str, key: &SigningKey, body: &[u8]) -> String {
    let sig = key.sign(body);
    format!("keyid={key_id};ed25519={}", B64.encode(sig.to_bytes()))
}

/// How many received package bodies `GET /sim/packages/{id}` can return (the newest).
pub const KEPT_PACKAGES: usize = 64;

/// What the simulator keeps.
#[derive(Default)]
struct SimState {
    verify_key: Option<(String, VerifyingKey)>,
    /// The last [`KEPT_PACKAGES`] package bodies that passed the credential and signature
    /// checks, by package id — so a test can run them through `xmllint`.
    kept: VecDeque<(String, Bytes, Option<HeaderValue>)>,
    seen: HashSet<(String, u64)>,
    records: Vec<SimRecord>,
    reports: Vec<SimReport>,
    notices: Vec<SimNotice>,
    stats: SimStats,
    faults: FaultPlan,
}

struct Inner {
    tls: ServerTls,
    credential: Option<SecretString>,
    state: Mutex<SimState>,
    listener: Mutex<Option<tokio::net::TcpListener>>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters to a test harness; keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The simulator: cheap to clone; clones share the state, so a test can read records and
/// stats while [`Simulator::run`] serves.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("credential", &self.inner.credential)
            .field(
                "verify_key",
                &self.inner.state().verify_key.as_ref().map(|k| k.0.clone()),
            )
            .finish_non_exhaustive()
    }
}

/// What a `reset` fault answers: nothing; [`serve_tls`] drops the connection.
fn dropped() -> Response {
    Extension(DropConnection).into_response()
}

impl Simulator {
    /// Loads the TLS certificate from `opts.certs` and binds `opts.listen`; returns the
    /// simulator and the bound address (useful with port 0).
    ///
    /// # Errors
    /// [`SimError::Tls`] or [`SimError::Bind`].
    pub async fn bind(opts: SimOptions) -> Result<(Simulator, SocketAddr), SimError> {
        let files = ServerTlsFiles {
            cert: opts.certs.join("server.pem"),
            key: opts.certs.join("server-key.pem"),
            client_ca: None,
            client_auth: ClientAuth::Off,
        };
        let tls = xianjie_net::tls::load_server(&files).map_err(|problems| SimError::Tls {
            dir: opts.certs.clone(),
            problems: problems.iter().map(ToString::to_string).collect(),
        })?;
        let listener = tokio::net::TcpListener::bind(&opts.listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: opts.listen.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: opts.listen.clone(),
            source,
        })?;
        let state = SimState {
            faults: opts.faults,
            verify_key: opts.verify_key,
            ..SimState::default()
        };
        let sim = Simulator {
            inner: Arc::new(Inner {
                tls,
                credential: opts.credential,
                state: Mutex::new(state),
                listener: Mutex::new(Some(listener)),
            }),
        };
        Ok((sim, addr))
    }

    /// Serves until `shutdown`; connections in progress finish their current request.
    ///
    /// # Errors
    /// [`SimError::AlreadyRunning`] when another clone is already serving.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), SimError> {
        let listener = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or(SimError::AlreadyRunning)?;
        let router = router(self.inner.clone());
        let inner = self.inner;
        serve_tls(
            listener,
            move || inner.tls.acceptor(),
            shutdown,
            ConnLimits::default(),
            router,
            |_, _| (),
        )
        .await;
        Ok(())
    }

    /// Every accepted record version, in arrival order.
    pub fn records(&self) -> Vec<SimRecord> {
        self.inner.state().records.clone()
    }

    /// The counters.
    pub fn stats(&self) -> SimStats {
        self.inner.state().stats.clone()
    }

    /// Sets (or replaces) the key package signatures must verify with.
    pub fn set_verify_key(&self, key: (String, VerifyingKey)) {
        self.inner.state().verify_key = Some(key);
    }

    /// Replaces the fault plan.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.inner.state().faults = plan;
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response {
    let mut r = Response::new(Body::from(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    body.push('\n');
    reply(status, "text/plain; charset=utf-8", body)
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => reply(StatusCode::OK, "application/json", body),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding JSON: {e}"),
        ),
    }
}

/// The simulator's route table: every path with the methods it takes. The router and its 405s
/// with `Allow` come from it.
fn table() -> Vec<(&'static str, MethodRouter<Arc<Inner>>)> {
    vec![
        ("/packages", post(package_h)),
        ("/reports", post(report_h)),
        ("/notices", post(notice_h)),
        ("/sim/records", get(records_h)),
        ("/sim/stats", get(stats_h)),
        ("/sim/reports", get(reports_h)),
        ("/sim/notices", get(notices_h)),
        ("/sim/faults", post(set_faults_h).delete(clear_faults_h)),
        ("/sim/verify-key", put(verify_key_h)),
        ("/sim/packages", get(kept_ids_h)),
        ("/sim/packages/{id}", get(kept_package_h)),
    ]
}

/// The simulator's HTTP surface: [`table`], with plain-text 405s and 404s.
fn router(inner: Arc<Inner>) -> Router {
    table()
        .into_iter()
        .fold(Router::new(), |r, (path, m)| r.route(path, m))
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {}", uri.path()),
            )
        })
        .fallback(|uri: Uri| async move {
            text(
                StatusCode::NOT_FOUND,
                format!("no such resource: {}", uri.path()),
            )
        })
        .with_state(inner)
}

/// What an upload is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Upload {
    Package,
    Report,
    Notice,
}

async fn package_h(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Body) -> Response {
    upload(&inner, Upload::Package, &headers, body).await
}

async fn report_h(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Body) -> Response {
    upload(&inner, Upload::Report, &headers, body).await
}

async fn notice_h(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Body) -> Response {
    upload(&inner, Upload::Notice, &headers, body).await
}

async fn notices_h(State(inner): State<Arc<Inner>>) -> Response {
    let notices = inner.state().notices.clone();
    json(&notices)
}

async fn records_h(State(inner): State<Arc<Inner>>) -> Response {
    let records = inner.state().records.clone();
    json(&records)
}

async fn stats_h(State(inner): State<Arc<Inner>>) -> Response {
    let stats = inner.state().stats.clone();
    json(&stats)
}

async fn reports_h(State(inner): State<Arc<Inner>>) -> Response {
    let reports = inner.state().reports.clone();
    json(&reports)
}

async fn set_faults_h(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let spec = String::from_utf8_lossy(&body);
    match parse_faults(&spec) {
        Ok(plan) => {
            info!(faults = %spec.trim(), "fault plan replaced");
            inner.state().faults = plan;
            text(StatusCode::OK, "fault plan replaced")
        }
        Err(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn clear_faults_h(State(inner): State<Arc<Inner>>) -> Response {
    inner.state().faults = FaultPlan::default();
    info!("fault plan cleared");
    text(StatusCode::OK, "fault plan cleared")
}

async fn verify_key_h(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match parse_verify_key(&String::from_utf8_lossy(&body)) {
        Ok(key) => {
            info!(key_id = %key.0, "signature verification key set");
            inner.state().verify_key = Some(key);
            text(StatusCode::OK, "verification key set")
        }
        Err(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn kept_ids_h(State(inner): State<Arc<Inner>>) -> Response {
    let ids: Vec<String> = inner
        .state()
        .kept
        .iter()
        .map(|(id, _, _)| id.clone())
        .collect();
    json(&ids)
}

async fn kept_package_h(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let found = inner
        .state()
        .kept
        .iter()
        .rev()
        .find(|(k, _, _)| *k == id)
        .map(|(_, b, sig)| (b.clone(), sig.clone()));
    match found {
        Some((b, sig)) => {
            // The signature header as received, so the harness can verify it offline.
            let mut r = reply(StatusCode::OK, "application/xml", b);
            if let Some(sig) = sig {
                r.headers_mut().insert(SIGNATURE_HEADER, sig);
            }
            r
        }
        None => text(StatusCode::NOT_FOUND, format!("no kept package {id}")),
    }
}

/// Reads a request body up to [`MAX_PACKAGE_BYTES`]; the error is the reply to send.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let too_big = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body exceeds {MAX_PACKAGE_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_PACKAGE_BYTES as u64) {
        return Err(too_big());
    }
    axum::body::to_bytes(body, MAX_PACKAGE_BYTES)
        .await
        .map_err(|e| {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over {
                too_big()
            } else {
                text(StatusCode::BAD_REQUEST, format!("reading the body: {e}"))
            }
        })
}

/// `POST /packages`, `/reports` and `/notices`: the next queued fault first, then the upload.
async fn upload(inner: &Arc<Inner>, kind: Upload, headers: &HeaderMap, body: Body) -> Response {
    let fault = {
        let mut st = inner.state();
        let f = st.faults.take();
        if f.is_some() {
            st.stats.faults_injected += 1;
        }
        f
    };
    if let Some(f) = fault {
        info!(fault = %f, "injecting fault");
    }
    match fault {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return text(status, format!("injected fault: {code}"));
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            let mut r = text(StatusCode::TOO_MANY_REQUESTS, "injected fault: 429");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return r;
        }
        Some(Fault::BadRequest) => {
            return text(
                StatusCode::BAD_REQUEST,
                "package refused: injected fault 400",
            );
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Reset) | None => {}
    }
    let answer = match kind {
        Upload::Report => accept_report(inner, headers, body).await,
        Upload::Notice => accept_notice(inner, headers, body).await,
        Upload::Package => accept_package(inner, headers, body).await,
    };
    if fault == Some(Fault::Reset) {
        // The package was processed (and stored, if it was good); the receipt never leaves.
        return dropped();
    }
    answer
}

fn unauthorized(inner: &Inner, reason: &str) -> Response {
    inner.state().stats.auth_failures += 1;
    warn!(reason, "package refused: 401");
    let mut r = text(StatusCode::UNAUTHORIZED, reason);
    for scheme in ["Bearer", "Basic"] {
        if let Ok(v) = HeaderValue::from_str(&format!("{scheme} realm=\"{REALM}\"")) {
            r.headers_mut().append(header::WWW_AUTHENTICATE, v);
        }
    }
    r
}

/// Whether the `Authorization` header carries the credential. Never logs or echoes it.
fn credential_ok(expected: &SecretString, presented: Option<&HeaderValue>) -> bool {
    let Some(value) = presented.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return false;
    };
    let token = token.trim();
    let secret = expected.expose().as_bytes();
    if scheme.eq_ignore_ascii_case("bearer") {
        constant_time_eq(token.as_bytes(), secret)
    } else if scheme.eq_ignore_ascii_case("basic") {
        // The decoded bytes are the secret itself; wipe them once compared.
        match B64.decode(token) {
            Ok(decoded) => {
                let decoded = zeroize::Zeroizing::new(decoded);
                constant_time_eq(&decoded, secret)
            }
            Err(_) => false,
        }
    } else {
        false
    }
}

/// Checks the signature header against the body; the error is the 401 reason.
fn signature_ok(
    expected: &(String, VerifyingKey),
    presented: Option<&HeaderValue>,
    body: &[u8],
) -> Result<(), String> {
    let value = presented
        .ok_or_else(|| format!("missing {SIGNATURE_HEADER} header"))?
        .to_str()
        .map_err(|_| format!("{SIGNATURE_HEADER} is not ASCII"))?;
    let mut key_id = None;
    let mut sig = None;
    for part in value.split(';') {
        match part.trim().split_once('=') {
            Some(("keyid", v)) => key_id = Some(v.trim()),
            Some(("ed25519", v)) => sig = Some(v.trim()),
            _ => {
                return Err(format!(
                    "{SIGNATURE_HEADER} is not keyid=<id>;ed25519=<base64 signature>"
                ));
            }
        }
    }
    let (Some(key_id), Some(sig)) = (key_id, sig) else {
        return Err(format!(
            "{SIGNATURE_HEADER} is not keyid=<id>;ed25519=<base64 signature>"
        ));
    };
    if key_id != expected.0 {
        return Err(format!("unknown signing key id {key_id:?}"));
    }
    let bytes = B64
        .decode(sig)
        .map_err(|_| "the ed25519 signature is not base64".to_string())?;
    let bytes: [u8; 64] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "the ed25519 signature has {} bytes, expected 64",
            bytes.len()
        )
    })?;
    expected
        .1
        .verify_strict(body, &Signature::from_bytes(&bytes))
        .map_err(|_| "the signature does not verify over the body".to_string())
}

fn refuse(inner: &Inner, status: StatusCode, reason: String) -> Response {
    inner.state().stats.packages_refused += 1;
    info!(status = status.as_u16(), %reason, "package refused");
    text(status, reason)
}

/// Reads the identifying elements of a `<report>` document (namespace of the port API).
/// The text of the elements of `xml` at the paths `wanted` accepts (`["quarter"]`,
/// `["summary", "total"]`: paths below the root), by their path joined with `/` from the root,
/// which must be `root`. DOCTYPEs are refused.
fn fields(
    xml: &[u8],
    root: &str,
    wanted: impl Fn(&[String]) -> bool,
) -> Result<BTreeMap<String, String>, String> {
    use quick_xml::events::Event as XmlEvent;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut path: Vec<String> = Vec::new();
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(XmlEvent::Start(e)) => {
                let name = e.local_name().as_ref().to_string();
                if path.is_empty() && name != root {
                    return Err(format!("the root element is <{name}>, not <{root}>"));
                }
                path.push(name);
            }
            Ok(XmlEvent::End(_)) => {
                path.pop();
            }
            Ok(XmlEvent::Text(t)) => {
                if path.len() > 1 && wanted(&path[1..]) {
                    fields.insert(path.join("/"), t.xml10_content().into_owned());
                }
            }
            Ok(XmlEvent::DocType(_)) => return Err("DOCTYPE is not accepted".into()),
            Ok(XmlEvent::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "not well-formed at byte {}: {e}",
                    reader.buffer_position()
                ));
            }
        }
        buf.clear();
    }
    Ok(fields)
}

fn report_fields(xml: &[u8]) -> Result<SimReport, String> {
    let fields = fields(xml, "report", |p| {
        matches!(p, [f] if ["quarter", "unit_code", "version", "digest"].contains(&f.as_str()))
            || matches!(p, [s, t] if s == "summary" && t == "total")
    })?;
    let get = |k: &str| {
        fields
            .get(&format!("report/{k}"))
            .cloned()
            .ok_or_else(|| format!("<{k}> is missing"))
    };
    Ok(SimReport {
        quarter: get("quarter")?,
        unit_code: get("unit_code")?,
        version: get("version")?
            .parse()
            .map_err(|_| "<version> is not a number".to_string())?,
        digest: get("digest")?,
        total: get("summary/total")?
            .parse()
            .map_err(|_| "<total> is not a number".to_string())?,
        received_at: Utc::now(),
    })
}

/// A supervision notice: credential, signature, a `<notice>` document; kept once per id.
async fn accept_notice(inner: &Arc<Inner>, headers: &HeaderMap, body: Body) -> Response {
    let body = match admit(inner, headers, body).await {
        Ok((body, _)) => body,
        Err(r) => return r,
    };
    let parsed = fields(
        &body,
        "notice",
        |p| matches!(p, [f] if ["id", "unit_code", "case_id"].contains(&f.as_str())),
    )
    .and_then(|f| {
        let get = |k: &str| {
            f.get(&format!("notice/{k}"))
                .cloned()
                .ok_or_else(|| format!("<{k}> is missing"))
        };
        Ok(SimNotice {
            id: get("id")?
                .parse()
                .map_err(|_| "<id> is not a number".to_string())?,
            unit_code: get("unit_code")?,
            case_id: get("case_id")?,
            xml: String::from_utf8(body.to_vec()).map_err(|_| "not UTF-8".to_string())?,
            received_at: Utc::now(),
        })
    });
    let n = match parsed {
        Ok(n) => n,
        Err(e) => {
            return refuse(
                inner,
                StatusCode::BAD_REQUEST,
                format!("notice refused: {e}"),
            );
        }
    };
    let mut st = inner.state();
    if st.notices.iter().any(|x| x.id == n.id) {
        return json(&serde_json::json!({ "outcome": "duplicate" }));
    }
    info!(id = n.id, unit = %n.unit_code, "supervision notice received");
    st.notices.push(n);
    json(&serde_json::json!({ "outcome": "accepted" }))
}

/// A quarterly report: credential, signature, a `<report>` document; kept once per version.
async fn accept_report(inner: &Arc<Inner>, headers: &HeaderMap, body: Body) -> Response {
    let body = match admit(inner, headers, body).await {
        Ok((body, _)) => body,
        Err(r) => return r,
    };
    let r = match report_fields(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                inner,
                StatusCode::BAD_REQUEST,
                format!("report refused: {e}"),
            );
        }
    };
    let mut st = inner.state();
    let seen = st.reports.iter().any(|x| {
        (x.quarter.as_str(), x.unit_code.as_str(), x.version)
            == (r.quarter.as_str(), r.unit_code.as_str(), r.version)
    });
    if seen {
        st.stats.reports_duplicates += 1;
        return json(&serde_json::json!({ "outcome": "duplicate" }));
    }
    info!(quarter = %r.quarter, unit = %r.unit_code, version = r.version, "report received");
    st.stats.reports_accepted += 1;
    st.reports.push(r);
    json(&serde_json::json!({ "outcome": "accepted" }))
}

/// What every upload must pass before its content is looked at: the credential, a body within
/// the limit, the signature (when a key is set) and an XML media type. Returns the body and the
/// signature header as received; the error is the answer to send.
async fn admit(
    inner: &Arc<Inner>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Bytes, Option<HeaderValue>), Response> {
    if let Some(cred) = &inner.credential
        && !credential_ok(cred, headers.get(header::AUTHORIZATION))
    {
        return Err(unauthorized(inner, "missing or wrong credential"));
    }
    let signature = headers.get(SIGNATURE_HEADER).cloned();
    let content_type = media_type(headers);
    let body = read_body(headers, body).await.inspect_err(|_| {
        inner.state().stats.packages_refused += 1;
    })?;
    let verify_key = inner.state().verify_key.clone();
    if let Some(key) = &verify_key
        && let Err(reason) = signature_ok(key, signature.as_ref(), &body)
    {
        return Err(unauthorized(inner, &reason));
    }
    if !matches!(
        content_type.as_deref(),
        Some("application/xml" | "text/xml")
    ) {
        return Err(refuse(
            inner,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type must be application/xml, not {}",
                content_type.as_deref().unwrap_or("(none)")
            ),
        ));
    }
    Ok((body, signature))
}

/// The platform proper: credential, signature, validation, deduplication, receipt.
async fn accept_package(inner: &Arc<Inner>, headers: &HeaderMap, body: Body) -> Response {
    let received_at = Utc::now();
    let (body, signature) = match admit(inner, headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let kept_body = body.clone();
    // Parsing a large package is CPU work: keep it off the threads that serve connections.
    let parsed = tokio::task::spawn_blocking(move || validate::parse(&body)).await;
    let package = match parsed {
        Ok(Ok(p)) => p,
        Ok(Err(problem)) => {
            return refuse(
                inner,
                StatusCode::BAD_REQUEST,
                format!("package refused: {problem}"),
            );
        }
        Err(e) => {
            return refuse(
                inner,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("validation failed: {e}"),
            );
        }
    };

    let package_id = package.header.package_id.clone();
    let refused = {
        let st = inner.state();
        package
            .records
            .iter()
            .find(|r| st.faults.refuse.contains(&r.id))
            .map(|r| r.id.clone())
    };
    if let Some(id) = refused {
        return refuse(
            inner,
            StatusCode::BAD_REQUEST,
            format!("package refused: record {id} is refused by fault injection (refuse:{id})"),
        );
    }
    {
        let mut st = inner.state();
        if st.kept.len() >= KEPT_PACKAGES {
            st.kept.pop_front();
        }
        st.kept
            .push_back((package_id.clone(), kept_body, signature.clone()));
    }
    let total = package.records.len();
    let mut results = Vec::with_capacity(total);
    let (mut accepted, mut duplicates, mut rejected) = (0u64, 0u64, 0u64);
    {
        let mut st = inner.state();
        let st = &mut *st;
        for r in package.records {
            let outcome = if let Some(p) = r.problem {
                Outcome::Rejected {
                    code: p.code.to_string(),
                    reason: p.reason,
                }
            } else if st.faults.reject.contains(&r.id) {
                Outcome::Rejected {
                    code: E_SIM_REJECT.to_string(),
                    reason: "rejected by fault injection".to_string(),
                }
            } else if !st.seen.insert((r.id.clone(), r.version)) {
                Outcome::Duplicate
            } else {
                let kind = r.kind.map_or("", |k| k.element());
                if r.op == RecordOp::Retract {
                    st.stats.retractions += 1;
                }
                st.records.push(SimRecord {
                    id: r.id.clone(),
                    version: r.version,
                    kind: kind.to_string(),
                    op: r.op.as_str().to_string(),
                    package_id: package_id.clone(),
                    received_at,
                    fields: r.fields,
                });
                Outcome::Accepted
            };
            match outcome {
                Outcome::Accepted => accepted += 1,
                Outcome::Duplicate => duplicates += 1,
                Outcome::Rejected { .. } => rejected += 1,
            }
            results.push(RecordResult {
                id: r.id,
                version: r.version,
                outcome,
            });
        }
        st.stats.packages += 1;
        st.stats.records_accepted += accepted;
        st.stats.duplicates += duplicates;
        st.stats.rejected += rejected;
        st.stats.last_package_id = Some(package_id.clone());
    }
    info!(
        package_id = %package_id,
        records = total,
        accepted,
        duplicates,
        rejected,
        "package received"
    );
    match receipt::build(&Receipt {
        package_id,
        received_at,
        results,
    }) {
        Ok(body) => reply(StatusCode::OK, "application/xml", body),
        // The records are kept; the sender's resend finds them duplicates.
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the receipt cannot be written: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::start;

    const SECRET: &str = "s3cret-Token:with-colon";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrong_methods_get_405_with_the_tables_allow_and_unknown_paths_404() {
        let h = start(Some(SECRET), None, "500").await;
        // Every routed path with the methods it takes (as `Allow` lists them) and one it does not.
        let routes = [
            ("/packages", "POST", Method::GET),
            ("/reports", "POST", Method::PUT),
            ("/notices", "POST", Method::GET),
            ("/sim/records", "GET,HEAD", Method::POST),
            ("/sim/stats", "GET,HEAD", Method::DELETE),
            ("/sim/reports", "GET,HEAD", Method::POST),
            ("/sim/notices", "GET,HEAD", Method::POST),
            ("/sim/faults", "POST,DELETE", Method::GET),
            ("/sim/verify-key", "PUT", Method::POST),
            ("/sim/packages", "GET,HEAD", Method::PUT),
            ("/sim/packages/{id}", "GET,HEAD", Method::DELETE),
        ];
        let routed: Vec<&str> = table().into_iter().map(|(p, _)| p).collect();
        let listed: Vec<&str> = routes.iter().map(|(p, _, _)| *p).collect();
        assert_eq!(routed, listed, "every route of the table is checked here");
        for (template, allow, wrong) in routes {
            let path = template.replace("{id}", "PKG-x");
            // A body that would replace the fault plan, were it taken.
            let a = h
                .request(wrong.clone(), &path, &[], b"503".to_vec())
                .await
                .unwrap();
            assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{wrong} {path}");
            assert_eq!(a.headers[header::ALLOW], allow, "{wrong} {path}");
            assert!(
                a.headers[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain")
            );
            assert_eq!(a.text(), format!("{wrong} is not allowed on {path}\n"));
        }
        // A wrong method reaches no handler: no fault taken, no credential asked, the plan kept.
        let stats = h.sim.stats();
        assert_eq!((stats.faults_injected, stats.auth_failures), (0, 0));
        assert_eq!(
            h.post(b"", &[]).await.unwrap().status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "the queued 500 is still first"
        );
        for (m, p) in [
            (Method::GET, "/"),
            (Method::POST, "/package"),
            (Method::DELETE, "/sim"),
            (Method::GET, "/sim/packages/PKG-x/more"),
        ] {
            let a = h.request(m.clone(), p, &[], Vec::new()).await.unwrap();
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{m} {p}");
            assert!(a.headers.get(header::ALLOW).is_none(), "{m} {p}");
            assert_eq!(a.text(), format!("no such resource: {p}\n"));
        }
        // A routed template with an id nothing was kept under is the handler's own 404.
        let a = h
            .request(Method::GET, "/sim/packages/PKG-none", &[], Vec::new())
            .await
            .unwrap();
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(a.text(), "no kept package PKG-none\n");
        h.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_oversized_body_is_refused() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let h = start(None, None, "").await;
        // A declared length over the limit is answered before any of the body is read.
        let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(h.cfg.clone())
            .connect(
                rustls_pki_types::ServerName::try_from("localhost").unwrap(),
                tcp,
            )
            .await
            .unwrap();
        let head = format!(
            "POST /packages HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/xml\r\n\
             Content-Length: {}\r\n\r\n",
            MAX_PACKAGE_BYTES + 1
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed without an answer");
            got.extend_from_slice(&buf[..n]);
        }
        let got = String::from_utf8_lossy(&got);
        assert!(got.starts_with("HTTP/1.1 413"), "{got}");
        // Without a declared length (or when the client keeps writing), the limit still holds;
        // the client may then lose the answer while writing, but nothing is kept.
        let big = vec![b' '; MAX_PACKAGE_BYTES + 1];
        if let Ok(a) = h.post(&big, &[]).await {
            assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
        }
        assert!(h.sim.records().is_empty());
        assert_eq!(h.sim.stats().packages_refused, 2);
        h.stop().await;
    }

    #[tokio::test]
    async fn setup_problems_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let opts = |listen: &str, certs: &std::path::Path| SimOptions {
            listen: listen.into(),
            certs: certs.to_path_buf(),
            credential: None,
            verify_key: None,
            faults: FaultPlan::default(),
        };
        let e = Simulator::bind(opts("127.0.0.1:0", dir.path()))
            .await
            .unwrap_err();
        assert!(matches!(e, SimError::Tls { .. }), "{e}");
        assert!(e.to_string().contains("server.pem"), "{e}");
        xianjie_devca::generate_dev(dir.path(), &[], false).unwrap();
        let (sim, addr) = Simulator::bind(opts("127.0.0.1:0", dir.path()))
            .await
            .unwrap();
        let e = Simulator::bind(opts(&addr.to_string(), dir.path()))
            .await
            .unwrap_err();
        assert!(matches!(e, SimError::Bind { .. }), "{e}");
        let e = Simulator::bind(opts("not an address", dir.path()))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not an address"), "{e}");
        let shutdown = Shutdown::new();
        let task = tokio::spawn(sim.clone().run(shutdown.clone()));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(matches!(
            sim.clone().run(shutdown.clone()).await,
            Err(SimError::AlreadyRunning)
        ));
        shutdown.trigger();
        task.await.unwrap().unwrap();
    }

    #[test]
    fn fault_specs_parse_or_name_the_item() {
        let plan = parse_faults(
            " 503x3, 429:2 ,resetx2,delay:150,500,400,429,reject:XJ-abc,reject:XJ-x2,refuse:XJ-r",
        )
        .unwrap();
        assert_eq!(
            plan.queue,
            [
                (Fault::Status(503), 3),
                (
                    Fault::TooManyRequests {
                        retry_after_secs: 2
                    },
                    1
                ),
                (Fault::Reset, 2),
                (Fault::Delay(Duration::from_millis(150)), 1),
                (Fault::Status(500), 1),
                (Fault::BadRequest, 1),
                (
                    Fault::TooManyRequests {
                        retry_after_secs: 1
                    },
                    1
                ),
            ]
        );
        assert_eq!(
            plan.reject,
            BTreeSet::from(["XJ-abc".to_string(), "XJ-x2".to_string()])
        );
        assert_eq!(plan.refuse, BTreeSet::from(["XJ-r".to_string()]));
        let mut plan = parse_faults("503x2,reset").unwrap();
        assert_eq!(plan.take(), Some(Fault::Status(503)));
        assert_eq!(plan.take(), Some(Fault::Status(503)));
        assert_eq!(plan.take(), Some(Fault::Reset));
        assert_eq!(plan.take(), None);
        assert!(plan.is_empty());
        plan.queue.push_back((Fault::Status(500), 0));
        plan.queue.push_back((Fault::Reset, 1));
        assert_eq!(plan.take(), Some(Fault::Reset));
        assert_eq!(parse_faults("").unwrap(), FaultPlan::default());
        assert_eq!(
            parse_faults("429:5x2").unwrap().queue,
            [(
                Fault::TooManyRequests {
                    retry_after_secs: 5
                },
                2
            )]
        );
        for (spec, item) in [
            ("500,502", "502"),
            ("503x0", "503x0"),
            ("503x", "503x"),
            ("429:soon", "429:soon"),
            ("delay:-5", "delay:-5"),
            ("delay:99999999", "delay:99999999"),
            ("500,,503", ""),
            ("reject:", "reject:"),
            ("reject:has space", "reject:has space"),
            ("refuse:", "refuse:"),
            ("RESET", "RESET"),
        ] {
            match parse_faults(spec) {
                Err(SimError::Faults { item: got, reason }) => {
                    assert_eq!(got, item, "{spec}: {reason}");
                    assert!(!reason.is_empty());
                }
                other => panic!("{spec}: {other:?}"),
            }
        }
    }

    #[test]
    fn verify_keys_parse_or_say_why() {
        let key = SigningKey::from_bytes(&[9u8; 32]).verifying_key();
        let b64 = B64.encode(key.as_bytes());
        assert_eq!(
            parse_verify_key(&format!("\n k1  {b64} \n\n")).unwrap(),
            ("k1".into(), key)
        );
        for (text, says) in [
            ("".to_string(), "one line"),
            (format!("k1 {b64}\nk2 {b64}"), "one line"),
            (b64.clone(), "words"),
            (format!("k;1 {b64}"), "may not contain"),
            ("k1 ***".to_string(), "not base64"),
            (format!("k1 {}", B64.encode([1u8; 31])), "31 bytes"),
        ] {
            let e = parse_verify_key(&text).unwrap_err().to_string();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
