//! The delivery worker: one cycle per destination at a time takes the destination's outbox in
//! order, turns it into packages (one sending unit each), signs and POSTs them, reads the receipts
//! and commits each outcome to the store in one transaction. Delivery is at-least-once with stable
//! idempotency keys — a package's id is a digest of exactly the record versions in it, so a
//! package re-sent after a crash or a lost receipt carries the same id and the same records.
//!
//! Outcomes: accepted and duplicate records are delivered; rejected records go to the dead-letter
//! list with the platform's reason; 408, 429, 5xx and network errors are retried with capped
//! exponential backoff and full jitter (never sooner than `Retry-After`); 401 and 403 say the
//! credential is wrong, not the records, so the queue holds until an administrator fixes it. Any
//! other 4xx refuses the whole package: it is split in halves, each a new package (its id names
//! exactly its records), sent in turn, and split again while refused, until each refusing record
//! is alone — only those are dead-lettered, with the receiver's answer (any other status, such as
//! a redirect, dead-letters the package with the response). A record is never
//! dead-lettered for another's fault: before a package is sent, every record that would break the
//! platform's rules is held back and dead-lettered alone ([`package::build_checked`]). While the
//! keystore is sealed nothing is sent and the queue holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use hyper::body::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::calendar::{WorkCalendar, statutory_working_days};
use super::client::{self, Answer, Target};
use super::package::{self, Header, Op, Record};
use super::receipt::{self, Outcome};
use super::sim::{SIGNATURE_HEADER, signature_header_value};
use crate::audit::{Actor, AuditLog, Event};
use crate::config::{Destination, DestinationAuth};
use crate::keys::custody::{Custody, CustodyError};
use crate::model::{Case, CaseStatus};
use crate::shutdown::Shutdown;
use crate::store::{DeadLetter, OutboxEntry, PushCommit, Store, StoreError};

/// The district's division code, sent in every package header.
pub const SOURCE_DIVISION: &str = "320102";

/// Largest part of a refusing response kept in a dead letter.
const RESPONSE_KEPT: usize = 2048;

/// How long a computed deadline summary is reused (the scan reads every queued case).
const DEADLINE_TTL: Duration = Duration::from_secs(10);

/// A push failure that ends a cycle.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No destination of that name.
    #[error("no destination named {0:?} is configured")]
    Unknown(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit entry could not be written, so nothing was sent.
    #[error("not sent, because it could not be audited: {0}")]
    Audit(#[from] crate::audit::AuditError),
    /// A blocking task failed.
    #[error("push task failed: {0}")]
    Task(String),
}

/// A destination's client setup problem, found at start.
#[derive(Debug, thiserror::Error)]
#[error("destinations.{destination}: {reason}")]
pub struct SetupError {
    /// Destination.
    pub destination: String,
    /// What is wrong.
    pub reason: String,
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleReport {
    /// Destination.
    pub destination: String,
    /// Packages that got a receipt, or were refused as a whole (and split, or dead-lettered
    /// when they held one record).
    pub packages: u64,
    /// Records accepted.
    pub accepted: u64,
    /// Records the receiver already had (delivered earlier; its receipt was lost).
    pub duplicates: u64,
    /// Records dead-lettered (rejected, refused when sent alone, or held back from a package).
    pub dead_lettered: u64,
    /// Entries dropped without sending: superseded by a newer version, or a retraction of a
    /// record the destination never received.
    pub skipped: u64,
    /// Retries after transient failures.
    pub retries: u64,
    /// Quarterly report versions delivered.
    pub reports: u64,
    /// Supervision notices delivered.
    #[serde(default)]
    pub notices: u64,
    /// Entries still queued when the cycle ended.
    pub remaining: u64,
    /// Why nothing (more) was sent, when the queue is held (sealed keystore, refused credential).
    pub held: Option<String>,
    /// The error that ended the cycle, if any.
    pub error: Option<String>,
    /// Whether another cycle was already running, so this one did nothing.
    pub busy: bool,
}

/// Statutory deadlines of the records still queued.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlines {
    /// Queued records whose due date has passed.
    pub overdue: u64,
    /// Queued records due today or on the next working day.
    pub at_risk: u64,
    /// The earliest due date among queued records.
    pub next_due: Option<NaiveDate>,
    /// Years without an official holiday table that deadlines are counted in: this year (and the
    /// next, once deadlines reach it), and those a queued record's count crosses. Their days
    /// count Monday to Friday.
    #[serde(default)]
    pub uncovered_years: Vec<i32>,
}

/// One destination's state, for `push status` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationStatus {
    /// Name.
    pub name: String,
    /// URL.
    pub url: String,
    /// Entries waiting.
    pub queued: u64,
    /// Quarterly report versions waiting (destinations that take reports).
    pub reports_queued: u64,
    /// Age of the oldest waiting entry, seconds.
    pub oldest_age_secs: Option<i64>,
    /// Records in the package being sent now.
    pub in_flight: u64,
    /// Record versions delivered, in all.
    pub delivered: u64,
    /// Dead letters waiting.
    pub dead_letters: u64,
    /// When a package last got a receipt.
    pub last_success: Option<DateTime<Utc>>,
    /// The last error, and when.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Why the queue is held, when it is.
    pub held: Option<String>,
    /// Deadlines of queued records.
    pub deadlines: Deadlines,
}

/// Remembered across restarts (in the store's meta).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Persisted {
    last_success: Option<DateTime<Utc>>,
    last_error: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Live {
    in_flight: u64,
    held: Option<String>,
    deadlines: Option<(Instant, Deadlines)>,
}

struct Dest {
    config: Destination,
    tls: Arc<rustls::ClientConfig>,
    target: Target,
    /// Where quarterly reports go, when the destination takes them.
    reports_target: Option<Target>,
    /// Where supervision notices go, when the destination takes them.
    notices_target: Option<Target>,
    running: tokio::sync::Mutex<()>,
    live: Mutex<Live>,
}

/// The delivery worker of every configured destination.
pub struct Pusher {
    store: Store,
    audit: Arc<AuditLog>,
    custody: Arc<Custody>,
    calendar: WorkCalendar,
    shutdown: Shutdown,
    dests: Vec<Arc<Dest>>,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("destinations", &self.dests.len())
            .finish_non_exhaustive()
    }
}

/// A package ready to send.
struct Prepared {
    unit: String,
    package_id: String,
    body: Bytes,
    /// Record id and version per entry, in package order.
    sent: Vec<(String, u64, OutboxEntry, Op)>,
    /// The cases, in package order: a refused package is split and rebuilt from them.
    cases: Vec<Case>,
    /// The refused package this one is half of.
    split_from: Option<String>,
}

/// One record to pack: the case, its outbox entry, upsert or retraction.
type Item = (Case, OutboxEntry, Op);

/// One thing to send: a package or a report.
struct Outgoing<'a> {
    /// Idempotency key.
    id: &'a str,
    body: &'a Bytes,
    target: &'a Target,
    /// `package` or `report` (the audit detail naming `id`).
    kind: &'static str,
    /// More audit details.
    details: Vec<(&'static str, serde_json::Value)>,
    in_flight: u64,
}

/// The work a batch of outbox entries turned into.
struct Batch {
    packages: Vec<Prepared>,
    /// Settled without sending (skipped or dead-lettered locally).
    local: PushCommit,
    skipped: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn meta_key(destination: &str) -> String {
    format!("push_state/{destination}")
}

/// The idempotency key of a package: a digest of its destination and record versions.
fn package_id(destination: &str, sent: &[(String, u64, OutboxEntry, Op)]) -> String {
    let mut h = Sha256::new();
    h.update(destination.as_bytes());
    for (id, version, _, op) in sent {
        h.update([0]);
        h.update(id.as_bytes());
        h.update(version.to_be_bytes());
        h.update([u8::from(*op == Op::Retract)]);
    }
    format!("PKG-{}", hex::encode(&h.finalize()[..16]))
}

fn case_label(e: &OutboxEntry) -> String {
    format!("{}/{}", e.unit_code, e.case_id)
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Upsert => "upsert",
        Op::Retract => "retract",
    }
}

/// Full jitter: a wait drawn uniformly from zero to `min(max, initial × 2^attempt)`.
pub fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    use rand::Rng as _;
    let ceiling = initial
        .checked_mul(1u32 << attempt.min(20))
        .unwrap_or(max)
        .min(max);
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
}

fn dead_letter(
    destination: &str,
    e: &OutboxEntry,
    record_id: String,
    op: Op,
    code: &str,
    reason: String,
) -> DeadLetter {
    DeadLetter {
        id: 0,
        destination: destination.to_string(),
        unit_code: e.unit_code.clone(),
        case_id: e.case_id.clone(),
        version: e.version,
        change_seq: e.change_seq,
        batch: e.batch,
        record_id,
        op: op_name(op).into(),
        code: code.into(),
        reason,
        package_id: None,
        http_status: None,
        response: None,
        at: Utc::now(),
    }
}

impl Pusher {
    /// Sets up every destination's TLS client and URL; every problem is reported.
    pub fn new(
        destinations: &[Destination],
        calendar: WorkCalendar,
        store: Store,
        audit: Arc<AuditLog>,
        custody: Arc<Custody>,
        shutdown: Shutdown,
    ) -> Result<Self, Vec<SetupError>> {
        let today = chrono::Local::now().date_naive();
        for year in calendar.years_ahead(today).filter(|y| !calendar.covers(*y)) {
            warn!(
                year,
                "no official holiday table for {year}: push deadlines in it count Monday to Friday; \
                 add the State Council notice's dates to [calendar] holidays and workdays with \
                 years = [{year}], or upgrade"
            );
        }
        let mut problems = Vec::new();
        let mut dests = Vec::new();
        for d in destinations {
            let problem = |reason: String| SetupError {
                destination: d.name.clone(),
                reason,
            };
            let identity = d
                .client_identity
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path()));
            let tls = crate::tls::client_config(&d.ca, identity)
                .map_err(|e| problems.push(problem(e.to_string())))
                .ok();
            let target = Target::parse(&d.url)
                .map_err(|e| problems.push(problem(e.to_string())))
                .ok();
            let mut optional = |url: &Option<String>| match url {
                None => None,
                Some(u) => match Target::parse(u) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        problems.push(problem(e.to_string()));
                        None
                    }
                },
            };
            let reports_target = optional(&d.reports_url);
            let notices_target = optional(&d.supervision_url);
            if let (Some(tls), Some(target)) = (tls, target) {
                dests.push(Arc::new(Dest {
                    config: d.clone(),
                    tls,
                    target,
                    reports_target,
                    notices_target,
                    running: tokio::sync::Mutex::new(()),
                    live: Mutex::new(Live::default()),
                }));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            store,
            audit,
            custody,
            calendar,
            shutdown,
            dests,
        })
    }

    /// The configured destinations' names.
    pub fn names(&self) -> Vec<String> {
        self.dests.iter().map(|d| d.config.name.clone()).collect()
    }

    fn dest(&self, name: &str) -> Result<Arc<Dest>, PushError> {
        self.dests
            .iter()
            .find(|d| d.config.name == name)
            .cloned()
            .ok_or_else(|| PushError::Unknown(name.to_string()))
    }

    /// Waits until every running cycle has stopped at a safe point (after shutdown).
    pub async fn quiesce(&self) {
        for d in &self.dests {
            let _g = d.running.lock().await;
        }
    }

    /// The signing key's id and public key (base64), for the receiver's verification.
    pub fn public_key(&self, actor: &Actor) -> Result<(String, String), CustodyError> {
        let (kid, key) = self.custody.push_signing_key(actor)?;
        Ok((
            kid,
            base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes()),
        ))
    }

    /// Runs one delivery cycle for `destination`. With `wait`, waits for a running cycle to end
    /// first; without, returns at once (`busy`) when one is running (scheduled cycles).
    pub async fn cycle(
        &self,
        destination: &str,
        actor: &Actor,
        wait: bool,
    ) -> Result<CycleReport, PushError> {
        let d = self.dest(destination)?;
        let mut report = CycleReport {
            destination: destination.to_string(),
            ..CycleReport::default()
        };
        let _running = if wait {
            d.running.lock().await
        } else {
            match d.running.try_lock() {
                Ok(g) => g,
                Err(_) => {
                    report.busy = true;
                    return Ok(report);
                }
            }
        };
        let result = self.run_cycle(&d, actor, &mut report).await;
        lock(&d.live).in_flight = 0;
        lock(&d.live).deadlines = None;
        if let Err(e) = &result {
            report.error = Some(e.to_string());
        }
        if let Some(e) = &report.error {
            self.note_error(&d, e);
        }
        report.remaining = self.store.outbox_summary(destination)?.queued;
        info!(
            destination,
            packages = report.packages,
            accepted = report.accepted,
            duplicates = report.duplicates,
            dead = report.dead_lettered,
            remaining = report.remaining,
            held = report.held.as_deref().unwrap_or("-"),
            "push cycle ended"
        );
        result.map(|()| report)
    }

    fn persisted(&self, d: &Dest) -> Persisted {
        self.store
            .get_meta(&meta_key(&d.config.name))
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn note_error(&self, d: &Dest, error: &str) {
        let mut p = self.persisted(d);
        p.last_error = Some(error.to_string());
        p.last_error_at = Some(Utc::now());
        if let Err(e) = self.store.set_meta(&meta_key(&d.config.name), &p) {
            warn!(error = %e, "cannot record the push error");
        }
    }

    fn note_success(&self, d: &Dest) {
        let mut p = self.persisted(d);
        p.last_success = Some(Utc::now());
        if let Err(e) = self.store.set_meta(&meta_key(&d.config.name), &p) {
            warn!(error = %e, "cannot record the push success");
        }
    }

    fn hold(&self, d: &Dest, report: &mut CycleReport, why: &str) {
        lock(&d.live).held = Some(why.to_string());
        report.held = Some(why.to_string());
    }

    async fn run_cycle(
        &self,
        d: &Arc<Dest>,
        actor: &Actor,
        report: &mut CycleReport,
    ) -> Result<(), PushError> {
        let started = Instant::now();
        let name = d.config.name.clone();
        lock(&d.live).held = None;
        loop {
            if self.shutdown.is_triggered() {
                return Ok(());
            }
            if self.custody.is_sealed() {
                self.hold(
                    d,
                    report,
                    "keystore sealed: nothing is sent until it is unlocked",
                );
                return Ok(());
            }
            let batch = {
                let (store, dest) = (self.store.clone(), d.clone());
                tokio::task::spawn_blocking(move || prepare(&store, &dest))
                    .await
                    .map_err(|e| PushError::Task(e.to_string()))??
            };
            let Some(batch) = batch else {
                if self.send_reports(d, actor, started, report).await? {
                    self.send_notices(d, actor, started, report).await?;
                }
                if report.held.is_none() {
                    lock(&d.live).held = None;
                }
                return Ok(());
            };
            report.skipped += batch.skipped;
            if !batch.local.done.is_empty() {
                report.dead_lettered += batch.local.dead.len() as u64;
                for dl in &batch.local.dead {
                    warn!(destination = %name, case = %dl.case_id, reason = %dl.reason, "record dead-lettered before sending");
                }
                self.store.push_commit(&name, &batch.local)?;
            }
            for p in batch.packages {
                if !self.send(d, actor, p, started, report).await? {
                    return Ok(());
                }
            }
        }
    }

    /// Sends one package until it is settled; a package the receiver refuses as a whole is
    /// split in halves, and each half sent the same way (depth first, in package order), until
    /// the refusing records are alone. Returns false when the cycle must end (held, shut down,
    /// or out of retry time), with the reason in `report`; what was not settled stays queued.
    async fn send(
        &self,
        d: &Arc<Dest>,
        actor: &Actor,
        p: Prepared,
        started: Instant,
        report: &mut CycleReport,
    ) -> Result<bool, PushError> {
        let mut pending = vec![p];
        while let Some(p) = pending.pop() {
            let mut details = vec![
                ("unit", p.unit.clone().into()),
                ("records", (p.sent.len() as u64).into()),
            ];
            if let Some(parent) = &p.split_from {
                details.push(("split_from", parent.clone().into()));
            }
            let out = Outgoing {
                id: &p.package_id,
                body: &p.body,
                target: &d.target,
                kind: "package",
                details,
                in_flight: p.sent.len() as u64,
            };
            let mut refused = false;
            let go_on = self
                .deliver(d, actor, &out, started, report, &mut |a, report| {
                    self.settle(d, actor, &p, a, report, &mut refused)
                })
                .await?;
            if !go_on {
                return Ok(false);
            }
            if refused {
                let halves = self.split(d, p, report).await?;
                // Popped from the end: the first half goes first.
                pending.extend(halves.into_iter().rev());
            }
        }
        Ok(true)
    }

    /// The two halves of a refused package, each rebuilt as a package of its own.
    async fn split(
        &self,
        d: &Arc<Dest>,
        p: Prepared,
        report: &mut CycleReport,
    ) -> Result<Vec<Prepared>, PushError> {
        let name = d.config.name.clone();
        let items: Vec<Item> = p
            .cases
            .into_iter()
            .zip(p.sent)
            .map(|(c, (_, _, e, op))| (c, e, op))
            .collect();
        let parent = p.package_id;
        let (halves, local) = tokio::task::spawn_blocking(move || {
            let mut local = PushCommit::default();
            let mut first = items;
            let second = first.split_off(first.len() / 2);
            let mut halves = Vec::new();
            for half in [first, second] {
                halves.extend(pack(&name, half, Some(&parent), &mut local)?);
            }
            Ok::<_, PushError>((halves, local))
        })
        .await
        .map_err(|e| PushError::Task(e.to_string()))??;
        // The halves passed the same checks as the whole, so nothing is held back here unless
        // the rules changed in between; whatever is, is settled like any local dead letter.
        if !local.done.is_empty() {
            report.dead_lettered += local.dead.len() as u64;
            self.store.push_commit(&d.config.name, &local)?;
        }
        Ok(halves)
    }

    /// Sends `out` until `settle` says it is settled: signs it, audits each attempt and the
    /// credential's use, and retries transient failures with backoff. Returns false when the
    /// cycle must end (held, shut down, or out of retry time), with the reason in `report`.
    async fn deliver(
        &self,
        d: &Arc<Dest>,
        actor: &Actor,
        out: &Outgoing<'_>,
        started: Instant,
        report: &mut CycleReport,
        settle: &mut (dyn FnMut(&Answer, &mut CycleReport) -> Result<Settle, PushError> + Send),
    ) -> Result<bool, PushError> {
        let name = d.config.name.as_str();
        let policy = d.config.retry;
        let mut attempt = 0u32;
        lock(&d.live).in_flight = out.in_flight;
        loop {
            if self.shutdown.is_triggered() {
                return Ok(false);
            }
            if self.custody.is_sealed() {
                self.hold(
                    d,
                    report,
                    "keystore sealed: nothing is sent until it is unlocked",
                );
                return Ok(false);
            }
            let (kid, key) = match self.custody.push_signing_key(actor) {
                Ok(k) => k,
                Err(e) => {
                    self.hold(d, report, &format!("no signing key: {e}"));
                    return Ok(false);
                }
            };
            let credential = match self.custody.use_credential(&d.config.credential, actor) {
                Ok((secret, _version)) => secret,
                Err(e) => {
                    self.hold(d, report, &format!("credential unavailable: {e}"));
                    return Ok(false);
                }
            };
            let authorization = match d.config.auth {
                DestinationAuth::Bearer => format!("Bearer {}", credential.expose()),
                DestinationAuth::Basic => format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(credential.expose())
                ),
            };
            drop(credential);
            let digest = hex::encode(Sha256::digest(out.body));
            let mut event = Event::new(actor.clone(), "push.send", name)
                .detail(out.kind, out.id)
                .detail("attempt", u64::from(attempt) + 1)
                .digest(&digest);
            for (k, v) in &out.details {
                event = event.detail(k, v.clone());
            }
            self.audit.append(&event)?;
            let headers = [
                ("authorization", authorization),
                (
                    SIGNATURE_HEADER,
                    signature_header_value(&kid, &key, out.body),
                ),
                ("idempotency-key", out.id.to_string()),
                ("x-xianjie-package-id", out.id.to_string()),
            ];
            // Abandoning an exchange at shutdown is safe: the item stays queued and its resend
            // carries the same idempotency key.
            let answer = tokio::select! {
                a = client::post(&d.tls, out.target, &headers, out.body.clone(), policy.timeout) => a,
                _ = self.shutdown.wait() => return Ok(false),
            };
            let wait_hint = match &answer {
                Ok(a) => settle(a, report)?,
                Err(e) => {
                    self.audit.append(
                        &Event::new(actor.clone(), "push.receipt", name)
                            .outcome("failed")
                            .detail(out.kind, out.id)
                            .detail("error", e.to_string()),
                    )?;
                    Settle::Retry(None, e.to_string())
                }
            };
            match wait_hint {
                Settle::Done => return Ok(true),
                Settle::Stop(why) => {
                    self.note_error(d, &why);
                    report.error = Some(why);
                    return Ok(false);
                }
                Settle::Hold(why) => {
                    self.hold(d, report, &why);
                    report.error = Some(why);
                    return Ok(false);
                }
                Settle::Retry(retry_after, why) => {
                    let wait = backoff(policy.initial, policy.max, attempt)
                        .max(retry_after.unwrap_or_default());
                    warn!(destination = name, id = %out.id, attempt, wait_ms = wait.as_millis() as u64, error = %why, "push failed; retrying");
                    self.note_error(d, &why);
                    if started.elapsed() + wait > policy.give_up {
                        report.error = Some(format!(
                            "{why} (still failing after {} s; the next cycle resumes)",
                            started.elapsed().as_secs()
                        ));
                        return Ok(false);
                    }
                    report.retries += 1;
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.shutdown.wait() => return Ok(false),
                    }
                }
            }
        }
    }

    /// Sends the quarterly reports queued for `d` (when it takes reports), oldest first, as the
    /// port API's XML `<report>` document. Returns false when the cycle must end.
    async fn send_reports(
        &self,
        d: &Arc<Dest>,
        actor: &Actor,
        started: Instant,
        report: &mut CycleReport,
    ) -> Result<bool, PushError> {
        let Some(target) = d.reports_target.as_ref() else {
            return Ok(true);
        };
        let name = d.config.name.clone();
        for (q, unit, version) in self.store.report_outbox(&name)? {
            if self.shutdown.is_triggered() {
                return Ok(false);
            }
            let Some(r) = self.store.report_get(q, &unit, Some(version))? else {
                // Gone (cannot happen: versions are kept); nothing to send.
                self.store.report_outbox_done(&name, q, &unit, version)?;
                continue;
            };
            let value = serde_json::to_value(&r).map_err(|e| PushError::Task(e.to_string()))?;
            let id = format!("RPT-{q}-{unit}-v{version}");
            let body = match crate::api::xml::document("report", &value, &[]) {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    // A report is sent whole and in version order: it holds the report queue,
                    // as a refusal would, until the source is corrected and the report rebuilt.
                    let why = format!(
                        "report {id} cannot be written as XML: {e}; correct the record at its source and rebuild the report"
                    );
                    self.hold(d, report, &why);
                    report.error = Some(why);
                    return Ok(false);
                }
            };
            let out = Outgoing {
                id: &id,
                body: &body,
                target,
                kind: "report",
                details: vec![("cases", r.summary.total.into())],
                in_flight: r.summary.total,
            };
            let (store, name2) = (self.store.clone(), name.clone());
            let done = move |report: &mut CycleReport| {
                store.report_outbox_done(&name2, q, &unit, version)?;
                report.reports += 1;
                Ok(())
            };
            if !self
                .deliver_alone(d, actor, &out, started, report, done)
                .await?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Delivers a document sent alone (a report version, a notice, named by `out.kind` and
    /// `out.id`) until it is settled: a 2xx is delivered (`done` takes it out of its queue and
    /// counts it), 408, 429 and 5xx are retried, any other answer holds the queue with the
    /// receiver's words; each answer audited as `push.receipt`. Returns false when the cycle
    /// must end.
    async fn deliver_alone(
        &self,
        d: &Arc<Dest>,
        actor: &Actor,
        out: &Outgoing<'_>,
        started: Instant,
        report: &mut CycleReport,
        mut done: impl FnMut(&mut CycleReport) -> Result<(), PushError> + Send,
    ) -> Result<bool, PushError> {
        let (audit, destination) = (self.audit.clone(), d.config.name.clone());
        let (what, id, who) = (out.kind, out.id.to_string(), actor.clone());
        let mut settle = move |a: &Answer, report: &mut CycleReport| {
            let actor = &who;
            let event = Event::new(actor.clone(), "push.receipt", &destination)
                .detail(what, id.as_str())
                .detail("status", u64::from(a.status));
            match a.status {
                200..=299 => {
                    audit.append(&event)?;
                    done(report)?;
                    Ok(Settle::Done)
                }
                408 | 429 | 500..=599 => {
                    audit.append(&event.outcome("failed"))?;
                    Ok(Settle::Retry(
                        a.retry_after,
                        format!("HTTP {} from the receiver", a.status),
                    ))
                }
                status => {
                    audit.append(&event.outcome("refused"))?;
                    let text: String = String::from_utf8_lossy(&a.body).chars().take(200).collect();
                    Ok(Settle::Hold(format!(
                        "the receiver refused {what} {id} with HTTP {status}: {text}"
                    )))
                }
            }
        };
        self.deliver(d, actor, out, started, report, &mut settle)
            .await
    }

    /// Sends the supervision notices queued for `d`, oldest first; like reports, one at a time,
    /// in order, each until it is settled. Returns false when the cycle must end.
    async fn send_notices(
        &self,
        d: &Arc<Dest>,
        actor: &Actor,
        started: Instant,
        report: &mut CycleReport,
    ) -> Result<bool, PushError> {
        let Some(target) = d.notices_target.as_ref() else {
            return Ok(true);
        };
        let name = d.config.name.clone();
        for id in self.store.supervision_outbox(&name)? {
            if self.shutdown.is_triggered() {
                return Ok(false);
            }
            let action: Option<crate::supervision::actions::Action> =
                self.store.get_supervision(id)?;
            let Some(a) = action else {
                self.store.supervision_outbox_done(&name, id)?;
                continue;
            };
            let title = self
                .store
                .get_case(&a.unit_code, &a.case_id)?
                .map(|c| c.title);
            let nid = format!("SUP-{id}");
            let body = match crate::supervision::notice::xml(&a, title.as_deref()) {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    let why = format!(
                        "notice {nid} cannot be written as XML: {e}; correct the case title at its source"
                    );
                    self.hold(d, report, &why);
                    report.error = Some(why);
                    return Ok(false);
                }
            };
            let out = Outgoing {
                id: &nid,
                body: &body,
                target,
                kind: "notice",
                details: vec![("case", format!("{}/{}", a.unit_code, a.case_id).into())],
                in_flight: 1,
            };
            let (store, name2) = (self.store.clone(), name.clone());
            let done = move |report: &mut CycleReport| {
                store.supervision_outbox_done(&name2, id)?;
                report.notices += 1;
                Ok(())
            };
            if !self
                .deliver_alone(d, actor, &out, started, report, done)
                .await?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Decides on an answer and commits its outcome. A package of several records refused as a
    /// whole with a 4xx sets `refused` (the caller splits it); one of a single record, or an
    /// answer of another kind (a redirect, a 2xx without a receipt), is dead-lettered.
    fn settle(
        &self,
        d: &Dest,
        actor: &Actor,
        p: &Prepared,
        a: &Answer,
        report: &mut CycleReport,
        refused: &mut bool,
    ) -> Result<Settle, PushError> {
        let name = d.config.name.as_str();
        let receipt_event = |outcome: &str| {
            Event::new(actor.clone(), "push.receipt", name)
                .outcome(outcome)
                .detail("package", p.package_id.as_str())
                .detail("status", u64::from(a.status))
        };
        match a.status {
            200 | 201 => {}
            408 | 429 | 500..=599 => {
                self.audit.append(&receipt_event("failed"))?;
                return Ok(Settle::Retry(
                    a.retry_after,
                    format!("HTTP {} from the receiver", a.status),
                ));
            }
            401 | 403 => {
                self.audit.append(&receipt_event("denied"))?;
                return Ok(Settle::Hold(format!(
                    "the receiver refused the credential (HTTP {}); set it with `xianjie credentials set {}`",
                    a.status, d.config.credential
                )));
            }
            status @ 400..=499 if p.sent.len() > 1 => {
                // Some record in it, or several, made the receiver refuse it: find which.
                warn!(destination = name, package = %p.package_id, status, records = p.sent.len(), "package refused as a whole; splitting it");
                self.audit
                    .append(&receipt_event("refused").detail("split", p.sent.len() as u64))?;
                report.packages += 1;
                *refused = true;
                return Ok(Settle::Done);
            }
            status => {
                let text = String::from_utf8_lossy(&a.body);
                let kept: String = text.chars().take(RESPONSE_KEPT).collect();
                let said: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
                let said: String = said.chars().take(200).collect();
                let what = match (p.sent.len(), &p.split_from) {
                    (1, Some(_)) => "this record (sent alone after its package was refused)",
                    (1, None) => "this record",
                    _ => "the whole package",
                };
                let mut commit = PushCommit::default();
                for (id, _, e, op) in &p.sent {
                    let mut dl = dead_letter(
                        name,
                        e,
                        id.clone(),
                        *op,
                        &format!("HTTP-{status}"),
                        format!("the receiver refused {what} with HTTP {status}: {said}"),
                    );
                    dl.package_id = Some(p.package_id.clone());
                    dl.http_status = Some(status);
                    dl.response = Some(kept.clone());
                    commit.dead.push(dl);
                    commit.done.push(e.clone());
                }
                self.audit.append(
                    &receipt_event("refused").detail("dead_lettered", p.sent.len() as u64),
                )?;
                self.store.push_commit(name, &commit)?;
                report.packages += 1;
                report.dead_lettered += p.sent.len() as u64;
                return Ok(Settle::Done);
            }
        }
        let r = match receipt::parse(&a.body) {
            Ok(r) if r.package_id == p.package_id => r,
            Ok(r) => {
                self.audit.append(&receipt_event("failed"))?;
                return Ok(Settle::Retry(
                    None,
                    format!(
                        "the receipt answers package {}, not {}",
                        r.package_id, p.package_id
                    ),
                ));
            }
            Err(e) => {
                self.audit.append(&receipt_event("failed"))?;
                return Ok(Settle::Retry(None, e.to_string()));
            }
        };
        let results: HashMap<(&str, u64), &Outcome> = r
            .results
            .iter()
            .map(|x| ((x.id.as_str(), x.version), &x.outcome))
            .collect();
        let mut commit = PushCommit::default();
        let (mut accepted, mut duplicates, mut rejected, mut missing) = (0u64, 0u64, 0u64, 0u64);
        for (id, version, e, op) in &p.sent {
            match results.get(&(id.as_str(), *version)) {
                Some(Outcome::Accepted) | Some(Outcome::Duplicate) => {
                    if matches!(
                        results.get(&(id.as_str(), *version)),
                        Some(Outcome::Accepted)
                    ) {
                        accepted += 1;
                    } else {
                        duplicates += 1;
                    }
                    commit
                        .delivered
                        .push((e.unit_code.clone(), e.case_id.clone(), e.version));
                    commit.done.push(e.clone());
                }
                Some(Outcome::Rejected { code, reason }) => {
                    rejected += 1;
                    let mut dl = dead_letter(name, e, id.clone(), *op, code, reason.clone());
                    dl.package_id = Some(p.package_id.clone());
                    commit.dead.push(dl);
                    commit.done.push(e.clone());
                }
                // Left queued: the next package carries it again.
                None => missing += 1,
            }
        }
        self.audit.append(
            &receipt_event("ok")
                .detail("accepted", accepted)
                .detail("duplicates", duplicates)
                .detail("rejected", rejected)
                .detail("missing", missing),
        )?;
        self.store.push_commit(name, &commit)?;
        self.note_success(d);
        report.packages += 1;
        report.accepted += accepted;
        report.duplicates += duplicates;
        report.dead_lettered += rejected;
        if missing > 0 {
            // Sending the same package again would count its settled records twice; they stay
            // queued for the next cycle instead.
            return Ok(Settle::Stop(format!(
                "the receipt of {} lists no result for {missing} record(s); they stay queued for the next cycle",
                p.package_id
            )));
        }
        Ok(Settle::Done)
    }

    /// Puts dead letters `ids` back in their outboxes (audited first, as `push.requeue` on
    /// `destination` or `*`); returns those moved. Ids that are not dead letters are skipped.
    pub fn requeue(
        &self,
        ids: &[u64],
        destination: Option<&str>,
        actor: &crate::audit::Actor,
    ) -> Result<Vec<crate::store::DeadLetter>, PushError> {
        let listed = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        self.audit.append(
            &crate::audit::Event::new(actor.clone(), "push.requeue", destination.unwrap_or("*"))
                .detail("ids", listed.as_str()),
        )?;
        Ok(self.store.dead_requeue(ids)?)
    }

    /// Every destination's status (deadlines are recomputed at most every few seconds).
    pub fn status(&self) -> Result<Vec<DestinationStatus>, PushError> {
        let now = Utc::now();
        let mut out = Vec::new();
        for d in &self.dests {
            let name = &d.config.name;
            let summary = self.store.outbox_summary(name)?;
            let p = self.persisted(d);
            let cached = lock(&d.live)
                .deadlines
                .clone()
                .filter(|(at, _)| at.elapsed() < DEADLINE_TTL);
            let deadlines = match cached {
                Some((_, dl)) => dl,
                None => {
                    let dl = self.deadlines(name)?;
                    lock(&d.live).deadlines = Some((Instant::now(), dl.clone()));
                    dl
                }
            };
            let reports_queued = self.store.report_outbox(name)?.len() as u64;
            let delivered = self.store.delivered_count(name)?;
            let dead_letters = self.store.dead_count(name)?;
            let live = lock(&d.live);
            out.push(DestinationStatus {
                name: name.clone(),
                url: d.config.url.clone(),
                queued: summary.queued,
                reports_queued,
                oldest_age_secs: summary.oldest.map(|t| (now - t).num_seconds().max(0)),
                in_flight: live.in_flight,
                delivered,
                dead_letters,
                last_success: p.last_success,
                last_error: p.last_error,
                last_error_at: p.last_error_at,
                held: live
                    .held
                    .clone()
                    .or_else(|| {
                        self.custody
                            .is_sealed()
                            .then(|| "keystore sealed: nothing is sent until it is unlocked".into())
                    })
                    .filter(|_| summary.queued + reports_queued > 0),
                deadlines,
            });
        }
        Ok(out)
    }

    /// The statutory deadlines of `destination`'s queued records, as of today (local time).
    pub fn deadlines(&self, destination: &str) -> Result<Deadlines, PushError> {
        let (due, uncovered) = self.due_dates(destination)?;
        let today = chrono::Local::now().date_naive();
        let dates: Vec<NaiveDate> = due.into_iter().filter_map(|(_, d)| d).collect();
        let mut out = summarize_deadlines(&self.calendar, today, &dates);
        out.uncovered_years = uncovered.into_iter().collect();
        Ok(out)
    }

    /// [`Pusher::deadlines`] of `destination`'s queue, per unit, with how many records of each
    /// unit are queued (a unit's staff watch their own).
    pub fn deadlines_by_unit(
        &self,
        destination: &str,
    ) -> Result<BTreeMap<crate::model::Uscc, (u64, Deadlines)>, PushError> {
        let (due, uncovered) = self.due_dates(destination)?;
        let today = chrono::Local::now().date_naive();
        let mut by_unit: BTreeMap<crate::model::Uscc, (u64, Vec<NaiveDate>)> = BTreeMap::new();
        for (unit, d) in due {
            let e = by_unit.entry(unit).or_default();
            e.0 += 1;
            e.1.extend(d);
        }
        Ok(by_unit
            .into_iter()
            .map(|(u, (n, dates))| {
                let mut dl = summarize_deadlines(&self.calendar, today, &dates);
                dl.uncovered_years = uncovered.iter().copied().collect();
                (u, (n, dl))
            })
            .collect())
    }

    /// Every queued entry of `destination` with its unit and, when the destination will be sent
    /// it, its due date; and the years without a holiday table those dates are counted in.
    #[allow(clippy::type_complexity)]
    fn due_dates(
        &self,
        destination: &str,
    ) -> Result<(Vec<(crate::model::Uscc, Option<NaiveDate>)>, BTreeSet<i32>), PushError> {
        let today = chrono::Local::now().date_naive();
        let cal = &self.calendar;
        let mut due_dates = Vec::new();
        let mut uncovered: BTreeSet<i32> =
            cal.years_ahead(today).filter(|y| !cal.covers(*y)).collect();
        let public = self
            .dests
            .iter()
            .find(|d| d.config.name == destination)
            .is_none_or(|d| d.config.public);
        for (_, e) in self.store.outbox(destination, usize::MAX)? {
            let held = (self.store)
                .delivered_version(destination, &e.unit_code, &e.case_id)?
                .is_some();
            // Only what the destination will be sent has a deadline.
            let mut due = None;
            if let Some(case) = self.store.get_case(&e.unit_code, &e.case_id)?
                && needed(&case, public, || Ok::<_, PushError>(held))?.is_some()
                && let Some(d) = due_date(cal, &case, held)
            {
                due = Some(d);
                uncovered.extend(cal.uncovered_years(case.decided_on.unwrap_or(d), d));
            }
            due_dates.push((e.unit_code, due));
        }
        Ok((due_dates, uncovered))
    }

    /// The working-day calendar deadlines are counted in.
    pub fn calendar(&self) -> &WorkCalendar {
        &self.calendar
    }
}

enum Settle {
    Done,
    /// Settled as far as possible; end the cycle with this error.
    Stop(String),
    Hold(String),
    Retry(Option<Duration>, String),
}

/// Working days allowed to withdraw or replace a decision the destination holds, from the day
/// it was revoked or changed (the 双公示 rules).
pub const WITHDRAWAL_WORKING_DAYS: u32 = 3;

/// A queued record's statutory due date. When it withdraws or replaces a decision the
/// destination already holds (`replaces`): 3 working days from the day the gateway stored the
/// version that revoked or changed it. Otherwise the first publication: 7 or 20 working days
/// after its decision date.
pub fn due_date(calendar: &WorkCalendar, case: &Case, replaces: bool) -> Option<NaiveDate> {
    let days = statutory_working_days(case.action)?;
    Some(if replaces {
        let changed = super::package::version_date(case);
        calendar.add_working_days(changed, WITHDRAWAL_WORKING_DAYS)
    } else {
        calendar.add_working_days(case.decided_on?, days)
    })
}

/// Counts overdue (due before `today`) and at-risk (due today or on the next working day) dates.
pub fn summarize_deadlines(
    calendar: &WorkCalendar,
    today: NaiveDate,
    due: &[NaiveDate],
) -> Deadlines {
    let mut out = Deadlines::default();
    for &d in due {
        if d < today {
            out.overdue += 1;
        } else if calendar.working_days_between(today, d) <= 1 {
            out.at_risk += 1;
        }
        out.next_due = Some(out.next_due.map_or(d, |n| n.min(d)));
    }
    out
}

/// What a destination needs of a case's current version, `None` when nothing: a routine
/// inspection without a 双随机 result is not the platform's record; a revoked decision, and at a
/// public destination a restricted one or a minor's, is withdrawn if the destination holds it
/// (`held`, asked only then) and otherwise not sent at all.
fn needed<E>(
    case: &Case,
    public: bool,
    held: impl FnOnce() -> Result<bool, E>,
) -> Result<Option<Op>, E> {
    if case.action == crate::model::Action::Inspection && case.inspection.is_none() {
        return Ok(None);
    }
    let withdraw = case.status == CaseStatus::Revoked || (public && case.withheld().is_some());
    Ok(match (withdraw, withdraw && held()?) {
        (false, _) => Some(Op::Upsert),
        (true, true) => Some(Op::Retract),
        (true, false) => None,
    })
}

/// Reads the next batch of `d`'s outbox and turns it into packages. `None` when the outbox is
/// empty.
fn prepare(store: &Store, d: &Dest) -> Result<Option<Batch>, PushError> {
    let name = d.config.name.as_str();
    let entries = store.outbox(name, d.config.batch_size)?;
    if entries.is_empty() {
        return Ok(None);
    }
    let mut local = PushCommit::default();
    let mut skipped = 0u64;
    // Per unit, in order of first appearance: (unit, [(case, entry, op)]).
    let mut groups: Vec<(String, Vec<Item>)> = Vec::new();
    for (_, e) in entries {
        let Some(case) = store.get_case(&e.unit_code, &e.case_id)? else {
            local.dead.push(dead_letter(
                name,
                &e,
                String::new(),
                Op::Upsert,
                "LOCAL-NO-CASE",
                format!("case {} is no longer in the store", case_label(&e)),
            ));
            local.done.push(e);
            continue;
        };
        if case.version > e.version {
            // A newer version is queued behind it (or was delivered): this one is stale.
            skipped += 1;
            local.done.push(e);
            continue;
        }
        let held = || {
            Ok::<_, PushError>(
                store
                    .delivered_version(name, &e.unit_code, &e.case_id)?
                    .is_some(),
            )
        };
        let Some(op) = needed(&case, d.config.public, held)? else {
            skipped += 1;
            local.done.push(e);
            continue;
        };
        let unit = e.unit_code.to_string();
        match groups.iter_mut().find(|(u, _)| *u == unit) {
            Some((_, v)) => v.push((case, e, op)),
            None => groups.push((unit, vec![(case, e, op)])),
        }
    }
    let mut packages = Vec::new();
    for (_, items) in groups {
        packages.extend(pack(name, items, None, &mut local)?);
    }
    Ok(Some(Batch {
        packages,
        local,
        skipped,
    }))
}

/// Builds the package of `items` (one unit's records, in outbox order), holding back every
/// record that would break the platform's rules: each is dead-lettered alone in `local`, with
/// its reason, and the rest are packed. `None` when every record was held back.
fn pack(
    name: &str,
    items: Vec<Item>,
    split_from: Option<&str>,
    local: &mut PushCommit,
) -> Result<Option<Prepared>, PushError> {
    let Some((first, entry, _)) = items.first() else {
        return Ok(None);
    };
    let unit = entry.unit_code.to_string();
    let sending_unit = first.unit_code.clone();
    // The id, not the time, identifies the package; the time is when it was built.
    let created_at = Utc::now();
    let records: Vec<Record<'_>> = items
        .iter()
        .map(|(c, _, op)| Record { op: *op, case: c })
        .collect();
    let mut header = |kept: &[usize]| {
        let sent: Vec<(String, u64, OutboxEntry, Op)> = kept
            .iter()
            .map(|&i| {
                let (c, e, op) = &items[i];
                (package::record_id(c), c.version, e.clone(), *op)
            })
            .collect();
        Header {
            package_id: package_id(name, &sent),
            source_division: SOURCE_DIVISION.into(),
            sending_unit: sending_unit.clone(),
            created_at,
        }
    };
    let checked = package::build_checked(&records, &mut header)
        .map_err(|e| PushError::Task(e.to_string()))?;
    if let Some(problem) = &checked.unexplained {
        warn!(destination = name, unit = %unit, %problem, "the package fails the platform's rules though no record alone does; sending it for the receiver to decide");
    }
    for h in &checked.held {
        let (c, e, op) = &items[h.index];
        warn!(destination = name, case = %case_label(e), code = %h.code, reason = %h.reason, "record held back from its package");
        local.dead.push(dead_letter(
            name,
            e,
            package::record_id(c),
            *op,
            &h.code,
            h.reason.clone(),
        ));
        local.done.push(e.clone());
    }
    let Some((header, body)) = checked.package else {
        return Ok(None);
    };
    let mut items: Vec<Option<Item>> = items.into_iter().map(Some).collect();
    let mut sent = Vec::with_capacity(checked.kept.len());
    let mut cases = Vec::with_capacity(checked.kept.len());
    for &i in &checked.kept {
        if let Some((c, e, op)) = items.get_mut(i).and_then(Option::take) {
            sent.push((package::record_id(&c), c.version, e, op));
            cases.push(c);
        }
    }
    Ok(Some(Prepared {
        unit,
        package_id: header.package_id,
        body: Bytes::from(body),
        sent,
        cases,
        split_from: split_from.map(str::to_string),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_a_cap() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        for attempt in 0..40 {
            let ceiling = (100u64 << attempt.min(20)).min(1000);
            let draws: Vec<u64> = (0..200)
                .map(|_| backoff(initial, max, attempt).as_millis() as u64)
                .collect();
            assert!(draws.iter().all(|&w| w <= ceiling), "attempt {attempt}");
            // Full jitter spreads waits across the range instead of clustering at the ceiling.
            assert!(draws.iter().any(|&w| w < ceiling / 2), "attempt {attempt}");
        }
    }

    #[test]
    fn package_ids_depend_on_exactly_the_record_versions() {
        let e = |seq: u64| OutboxEntry {
            unit_code: crate::model::Uscc::parse("91350200776049653A").unwrap(),
            case_id: crate::model::CaseId::parse("C1").unwrap(),
            version: 1,
            change_seq: seq,
            batch: 1,
        };
        let a = vec![("XJ-1".to_string(), 1, e(1), Op::Upsert)];
        let b = vec![("XJ-1".to_string(), 2, e(1), Op::Upsert)];
        let c = vec![("XJ-1".to_string(), 1, e(1), Op::Retract)];
        assert_eq!(package_id("p", &a), package_id("p", &a.clone()));
        assert_ne!(package_id("p", &a), package_id("p", &b));
        assert_ne!(package_id("p", &a), package_id("p", &c));
        assert_ne!(package_id("p", &a), package_id("q", &a));
        let id = package_id("p", &a);
        assert!(id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn deadlines_count_working_days_across_a_weekend_and_a_holiday() {
        // 2026-10-01..07 National Day holidays (Thu 1, Fri 2, Mon 5 .. Wed 7 are weekdays off),
        // Sat 2026-10-10 worked (调休).
        let holidays: Vec<String> = [
            "2026-10-01",
            "2026-10-02",
            "2026-10-05",
            "2026-10-06",
            "2026-10-07",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cal = WorkCalendar::new(&holidays, &["2026-10-10".into()]).unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // A penalty decided on Wed 2026-09-30: working days after it are Thu 8, Fri 9, Sat 10,
        // Mon 12, Tue 13, Wed 14, Thu 15 → due Thu 2026-10-15.
        let mut case = crate::ingest::golden::golden_cases()
            .into_iter()
            .find(|c| c.action == crate::model::Action::Penalty)
            .unwrap();
        case.decided_on = Some(d("2026-09-30"));
        assert_eq!(due_date(&cal, &case, false), Some(d("2026-10-15")));
        let due = [d("2026-10-15")];
        // On Wed the 14th it is at risk (one working day left), on the 15th still (due today),
        // on Fri the 16th overdue; on Fri the 9th neither.
        assert_eq!(summarize_deadlines(&cal, d("2026-10-14"), &due).at_risk, 1);
        assert_eq!(summarize_deadlines(&cal, d("2026-10-15"), &due).at_risk, 1);
        let late = summarize_deadlines(&cal, d("2026-10-16"), &due);
        assert_eq!((late.overdue, late.at_risk), (1, 0));
        let early = summarize_deadlines(&cal, d("2026-10-09"), &due);
        assert_eq!(
            (early.overdue, early.at_risk, early.next_due),
            (0, 0, Some(d("2026-10-15")))
        );
        // Inspections get 20 working days; cases of other actions have no push deadline.
        case.action = crate::model::Action::Inspection;
        assert_eq!(
            due_date(&cal, &case, false),
            Some(cal.add_working_days(d("2026-09-30"), 20))
        );
        case.action = crate::model::Action::Compulsion;
        assert_eq!(due_date(&cal, &case, false), None);
    }

    #[test]
    fn what_a_destination_needs_of_a_case() {
        use crate::model::{CaseStatus, Disclosure};
        let need = |c: &Case, public: bool, held: bool| {
            needed(c, public, || Ok::<_, PushError>(held)).unwrap()
        };
        let mut case = crate::ingest::golden::golden_cases()
            .into_iter()
            .find(|c| c.action == crate::model::Action::Penalty && c.withheld().is_none())
            .unwrap();
        assert_eq!(need(&case, true, false), Some(Op::Upsert));
        // Restricted: withdrawn from a public destination that holds it, else not sent; a
        // closed exchange gets it.
        case.disclosure = Disclosure::Restricted;
        assert_eq!(need(&case, true, true), Some(Op::Retract));
        assert_eq!(need(&case, true, false), None);
        assert_eq!(need(&case, false, false), Some(Op::Upsert));
        // Revoked: withdrawn wherever it is held, and only there.
        case.disclosure = Disclosure::Public;
        case.status = CaseStatus::Revoked;
        assert_eq!(need(&case, false, true), Some(Op::Retract));
        assert_eq!(need(&case, false, false), None);
        // Whether the destination holds it is asked only when it matters.
        case.status = CaseStatus::Active;
        let asked = std::cell::Cell::new(false);
        let op = needed(&case, true, || {
            asked.set(true);
            Ok::<_, PushError>(true)
        });
        assert_eq!((op.unwrap(), asked.get()), (Some(Op::Upsert), false));
    }

    #[test]
    fn a_withdrawal_is_due_3_working_days_after_the_revocation() {
        // The shipped tables: National Day 2025 is 1–8 October; Sunday 28 September and Saturday
        // 11 October are worked (调休).
        let cal = WorkCalendar::official().unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let mut case = crate::ingest::golden::golden_cases()
            .into_iter()
            .find(|c| c.action == crate::model::Action::Penalty)
            .unwrap();
        case.decided_on = Some(d("2025-06-02"));
        case.status = crate::model::CaseStatus::Revoked;
        // Revoked on Tue 30 September (10:00 in Beijing, 02:00 UTC): Thu 9, Fri 10, Sat 11.
        case.updated_at = "2025-09-30T02:00:00Z".parse().unwrap();
        assert_eq!(due_date(&cal, &case, true), Some(d("2025-10-11")));
        // Revoked on Fri 26 September: Sun 28 (worked), Mon 29, Tue 30.
        case.updated_at = "2025-09-26T02:00:00Z".parse().unwrap();
        assert_eq!(due_date(&cal, &case, true), Some(d("2025-09-30")));
        // 16:30 on Thursday 25 in UTC is already 00:30 on Friday 26 in Beijing: counted from the
        // 26th (from the 25th it would be Mon 29).
        case.updated_at = "2025-09-25T16:30:00Z".parse().unwrap();
        assert_eq!(due_date(&cal, &case, true), Some(d("2025-09-30")));
        // A record the destination never held is a first publication: 7 days from the decision.
        assert_eq!(
            due_date(&cal, &case, false),
            Some(cal.add_working_days(d("2025-06-02"), 7))
        );
    }
}
