//! The long-running gateway (`xianjie serve`): opens the store, schedules inbox scans, serves the admin
//! socket, and on SIGINT/SIGTERM stops every task at a safe point and flushes the store.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Mutex;
use tracing::{error, info, warn};

use crate::admin::{self, IngestEvent, ScanRecord};
use crate::audit::{Actor, AuditError, AuditLog, Event};
use crate::config::Config;
use crate::ingest::{self, Adapter, FileOutcome, IngestError, RunOptions, Summary};
use crate::keys::custody::Custody;
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};

/// How often the leads are refreshed without an ingest (for deadlines time alone breaks).
const LEADS_REFRESH: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// How often an instance sharing a keystore takes up the changes other instances made to it.
const KEYSTORE_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// The keystore's file name in the data directory.
pub const KEYSTORE_FILE: &str = "keystore.json";

/// Why the gateway could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The data directory could not be prepared.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// Directory.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The console's user directory could not be prepared.
    #[error("console users: {0}")]
    Console(#[from] crate::console::directory::DirectoryError),
    /// Another gateway answers on the admin socket.
    #[error("another xianjie gateway is already running on {0}")]
    AlreadyRunning(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The admin socket could not be served.
    #[error("admin socket {path}: {source}")]
    Socket {
        /// Socket path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The scheduler failed.
    #[error("scheduler: {0}")]
    Scheduler(String),
    /// The audit log cannot be opened or written; the gateway does not run unaudited.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The port API's certificates are unusable (every problem listed).
    #[error("port API TLS setup:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Tls(Vec<crate::tls::TlsError>),
    /// A push destination's client setup is unusable (every problem listed).
    #[error("push destinations:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Push(Vec<crate::push::worker::SetupError>),
    /// The port API cannot listen.
    #[error("port API cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// The shared state of a running gateway.
pub struct Gateway {
    /// Validated configuration.
    pub config: Config,
    /// The store.
    pub store: Store,
    /// Stop signal.
    pub shutdown: Shutdown,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// The keystore under custody (sealed until unlocked).
    pub custody: Arc<Custody>,
    /// The port API's TLS setup, loaded and checked at open (`None` when the API is off).
    pub tls: Option<Arc<crate::tls::ServerTls>>,
    /// The push delivery worker.
    pub push: Arc<crate::push::worker::Pusher>,
    /// Decodes every source file and submission in a separate process under `[ingest.limits]`.
    pub decoder: crate::ingest::decode::Decoder,
    /// The console's users (kept in the keystore).
    pub users: Arc<crate::console::directory::Directory>,
    /// Whether this instance leads (runs the scheduled work); always on sled.
    pub leader: crate::store::Leadership,
    /// One lock per adapter, so an adapter's inbox is never read by two runs at once.
    locks: HashMap<String, Arc<Mutex<()>>>,
    /// One leads refresh at a time (after an ingest, at start, a rebuild).
    leads_lock: Arc<Mutex<()>>,
}

impl Gateway {
    /// Opens the store, the audit log (refusing one that no longer matches its last signed
    /// checkpoint) and the keystore custody (sealed) in the configured data directory (created
    /// with mode 0700), and records the configuration load in the audit log.
    pub fn open(config: Config, shutdown: Shutdown) -> Result<Arc<Self>, GatewayError> {
        let dir = &config.data_dir;
        let io = |source| GatewayError::DataDir {
            path: dir.display().to_string(),
            source,
        };
        for d in &config.dangerous {
            tracing::warn!("insecure option set: {d}");
        }
        // Certificates first: a gateway that cannot serve its port API must not half-start.
        let tls = match &config.server {
            Some(s) => Some(Arc::new(
                crate::tls::load_server(&s.tls).map_err(GatewayError::Tls)?,
            )),
            None => None,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        let (store, leader) = match &config.store {
            crate::config::StoreConfig::Sled => (
                Store::open(dir)?,
                crate::store::Leadership::alone(&config.instance),
            ),
            crate::config::StoreConfig::Postgres(settings) => (
                Store::open_postgres((**settings).clone())?,
                crate::store::Leadership::shared(&config.instance, (**settings).clone()),
            ),
        };
        // One instance keeps its audit log in files; instances sharing a database keep one log
        // there, sequenced by the leader.
        let audit = match &config.store {
            crate::config::StoreConfig::Sled => {
                AuditLog::open(&dir.join("audit"), &config.audit_origin, config.audit_fsync)?
            }
            crate::config::StoreConfig::Postgres(_) => AuditLog::open_shared(
                store.clone(),
                leader.clone(),
                &dir.join("audit"),
                &config.audit_origin,
                config.audit_fsync,
            )?,
        };
        // One instance keeps its keystore in a file; instances sharing a database share it there.
        let home = match &config.store {
            crate::config::StoreConfig::Sled => {
                crate::keys::keystore::Home::File(dir.join(KEYSTORE_FILE))
            }
            crate::config::StoreConfig::Postgres(_) => {
                crate::keys::keystore::Home::Shared(Arc::new(store.clone()))
            }
        };
        let custody = Arc::new(Custody::new(home, audit.clone()));
        let push = Arc::new(
            crate::push::worker::Pusher::new(
                &config.destinations,
                config.calendar.clone(),
                store.clone(),
                audit.clone(),
                custody.clone(),
                shutdown.clone(),
            )
            .map_err(GatewayError::Push)?,
        );
        let mut load = Event::new(
            Actor::system("startup"),
            "config.load",
            config
                .source
                .as_ref()
                .map_or("(embedded defaults)".into(), |p| p.display().to_string()),
        )
        .detail("adapters", config.adapters.len() as u64)
        .detail("version", env!("CARGO_PKG_VERSION"));
        if let Some(bytes) = config.source.as_ref().and_then(|p| std::fs::read(p).ok()) {
            use sha2::{Digest, Sha256};
            load = load.digest(&hex::encode(Sha256::digest(&bytes)));
        }
        audit.append(&load)?;
        set_aside_interrupted(&config, &audit)?;
        let locks = config
            .adapters
            .iter()
            .map(|a| (a.name.clone(), Arc::new(Mutex::new(()))))
            .collect();
        // The decoding process is this same executable; /proc/self/exe names it even if the file
        // was replaced on disk since the gateway started.
        let decoder = crate::ingest::decode::Decoder::contained(
            config.ingest_limits.clone(),
            PathBuf::from("/proc/self/exe"),
        );
        let users = Arc::new(crate::console::directory::Directory::new(custody.clone())?);
        Ok(Arc::new(Self {
            users,
            leader,
            decoder,
            config,
            store,
            shutdown,
            audit,
            custody,
            tls,
            push,
            locks,
            leads_lock: Arc::new(Mutex::new(())),
        }))
    }

    /// The admin socket path.
    pub fn socket_path(&self) -> PathBuf {
        self.config.data_dir.join(admin::SOCKET_NAME)
    }

    /// The services the admin API works with: its handlers never see the gateway itself.
    pub fn admin_services(self: &Arc<Self>) -> Arc<admin::server::AdminServices> {
        Arc::new(admin::server::AdminServices {
            store: self.store.clone(),
            audit: self.audit.clone(),
            custody: self.custody.clone(),
            push: self.push.clone(),
            jobs: self.clone(),
            adapters: self.config.adapters.clone(),
            data_dir: self.config.data_dir.clone(),
            rotate_overlap: self.config.rotate_overlap,
            reports: self.config.reports.clone(),
            rules: self.config.rules.clone(),
            calendar: self.config.calendar.clone(),
            leads_lock: self.leads_lock.clone(),
            users: self.users.clone(),
            leader: self.leader.clone(),
        })
    }

    /// An adapter by name.
    pub fn adapter(&self, name: &str) -> Option<&Adapter> {
        self.config.adapters.iter().find(|a| a.name == name)
    }

    fn lock(&self, adapter: &str) -> Arc<Mutex<()>> {
        self.locks.get(adapter).cloned().unwrap_or_default()
    }

    /// Scans one adapter's inbox (or ingests `path` in place), sending events as it goes. Runs the
    /// blocking ingest on a blocking thread under the adapter's lock.
    ///
    /// Each file is audited (`ingest.file`) before it is read — a file whose entry cannot be
    /// written is not read — and again with its outcome.
    pub async fn run_ingest(
        self: &Arc<Self>,
        adapter: String,
        path: Option<PathBuf>,
        actor: Actor,
        events: tokio::sync::mpsc::Sender<IngestEvent>,
    ) -> Result<Summary, String> {
        let lock = self.lock(&adapter);
        let _guard = lock.lock().await;
        let gw = self.clone();
        let ev = events.clone();
        let name = adapter.clone();
        let who = actor.clone();
        let res = tokio::task::spawn_blocking(move || -> Result<Vec<FileOutcome>, IngestError> {
            let Some(a) = gw.adapter(&name) else {
                return Err(IngestError::Path {
                    path: name.clone(),
                    reason: "no such adapter".into(),
                });
            };
            let gate = |f: &Path| {
                gw.audit
                    .append(
                        &Event::new(who.clone(), "ingest.file", f.display().to_string())
                            .outcome("started")
                            .detail("adapter", name.as_str()),
                    )
                    .map(drop)
                    .map_err(|e| e.to_string())
            };
            let routes = |u: &crate::model::Uscc, a: crate::model::Action| {
                gw.config
                    .destinations
                    .iter()
                    .filter(|d| d.takes(u, a))
                    .map(|d| d.name.clone())
                    .collect()
            };
            // Leads are judged as the cases are mapped and stored in their own transaction;
            // the refresh that follows takes only what needs a party's other decisions.
            let now = chrono::Utc::now();
            let judge = |c: &crate::model::Case| {
                crate::supervision::leads::judge_new(c, &gw.config.rules, &gw.config.calendar, now)
            };
            let opts = RunOptions {
                batch_size: gw.config.batch_size,
                shutdown: Some(gw.shutdown.flag()),
                gate: Some(&gate),
                routes: Some(&routes),
                decoder: Some(&gw.decoder),
                judge: Some(&judge),
            };
            let progress = |s: &Summary| {
                let _ = ev.try_send(IngestEvent::Progress(*s));
            };
            match path {
                Some(p) => ingest::ingest_path(a, &p, &gw.store, opts, &progress),
                None => ingest::scan_inbox(a, &gw.config.data_dir, &gw.store, opts, &progress),
            }
        })
        .await
        .map_err(|e| format!("ingest task failed: {e}"))?;
        let outcomes = res.map_err(|e| e.to_string())?;
        let mut total = Summary::default();
        let mut refused = 0;
        for o in &outcomes {
            let mut e = Event::new(actor.clone(), "ingest.file", o.file.clone())
                .detail("adapter", adapter.as_str());
            match &o.summary {
                Some(s) => {
                    total.add(s);
                    e = e
                        .detail("rows", s.rows)
                        .detail("accepted", s.accepted)
                        .detail("updated", s.updated)
                        .detail("unchanged", s.unchanged)
                        .detail("rejected", s.rejected);
                }
                None => {
                    refused += 1;
                    e = e.outcome("refused");
                }
            }
            if let Err(err) = self.audit.append(&e) {
                error!(error = %err, file = %o.file, "cannot audit the outcome of an ingested file");
                return Err(err.to_string());
            }
            if let Some(r) = &o.refused {
                warn!(adapter = %adapter, file = %o.file, reason = %r, "file refused");
            }
            let _ = events
                .send(IngestEvent::File {
                    adapter: adapter.clone(),
                    outcome: o.clone(),
                })
                .await;
        }
        if !outcomes.is_empty() {
            info!(adapter = %adapter, files = outcomes.len(), refused, rows = total.rows, accepted = total.accepted,
                updated = total.updated, unchanged = total.unchanged, rejected = total.rejected, "ingest finished");
            let rec = ScanRecord {
                at: chrono::Utc::now(),
                files: outcomes.len() as u64,
                refused,
                summary: total,
            };
            if let Err(e) = self.store.set_meta(&format!("scan:{adapter}"), &rec) {
                error!(error = %e, "cannot record the scan");
            }
        }
        if total.accepted + total.updated > 0 {
            self.refresh_leads().await;
        }
        Ok(total)
    }

    /// Brings the party index and the supervision leads up to date with the cases written since
    /// the last refresh (right after ingest commits, and at start for anything a stop
    /// interrupted). It stops at a safe point on shutdown; a failure is logged and the next
    /// refresh takes it up again: the change log still says what is left.
    pub async fn refresh_leads(self: &Arc<Self>) {
        let _one = self.leads_lock.lock().await;
        let gw = self.clone();
        let res = tokio::task::spawn_blocking(move || {
            let stop = gw.shutdown.flag();
            crate::supervision::leads::refresh(
                &gw.store,
                &gw.config.rules,
                &gw.config.calendar,
                chrono::Utc::now(),
                &|| stop.load(std::sync::atomic::Ordering::Relaxed),
            )
        })
        .await;
        match res {
            Ok(Ok(r)) if r.cases > 0 => {
                info!(
                    cases = r.cases,
                    open = r.open,
                    "supervision leads refreshed"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => error!(error = %e, "cannot refresh the supervision leads"),
            Err(e) => error!(error = %e, "the leads refresh failed"),
        }
    }

    /// Serves until shutdown: scheduler, admin socket, signals. `ready` is told once the socket listens.
    pub async fn serve(
        self: Arc<Self>,
        ready: Option<tokio::sync::oneshot::Sender<PathBuf>>,
    ) -> Result<(), GatewayError> {
        let sock = self.socket_path();
        // Signals first: a stop asked as soon as the socket answers must find its handler.
        spawn_signal_handler(self.shutdown.clone());
        // The port API next: once the admin socket answers, everything the gateway serves is
        // up, `api.addr` included (callers wait on the socket).
        let api = self.start_api().await?;
        let listener = bind_socket(&sock).await?;
        let mut sched = self.schedule().await?;
        let (resign, resigned) = tokio::sync::oneshot::channel();
        let campaign = tokio::spawn(self.leader.clone().campaign(resigned));
        let keystore_refresh = self.spawn_keystore_refresh();
        let sequencer = self.spawn_audit_sequencer();
        let checkpoints = self.spawn_checkpoints();
        // Whatever a stop cut short (or a store from before leads) is taken up in the background,
        // then the leads are refreshed every quarter of an hour: time alone breaks a 310号令
        // deadline, with no ingest to notice it.
        let gw = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(LEADS_REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => if gw.leader.is_leader() { gw.refresh_leads().await },
                    _ = gw.shutdown.wait() => return,
                }
            }
        });
        info!(data_dir = %self.config.data_dir.display(), socket = %sock.display(), adapters = self.config.adapters.len(), "gateway running");
        if let Some(r) = ready {
            let _ = r.send(sock.clone());
        }
        let result =
            admin::server::serve(self.admin_services(), listener, self.shutdown.clone()).await;
        info!("shutting down: waiting for running ingests to reach a safe point");
        let _ = sched.shutdown().await;
        for lock in self.locks.values() {
            let _guard = lock.lock().await;
        }
        self.push.quiesce().await;
        let _ = checkpoints.await;
        let _ = keystore_refresh.await;
        let _ = sequencer.await;
        if let Some(api) = api {
            let _ = api.await;
        }
        self.store.flush()?;
        self.audit
            .append(&Event::new(Actor::system("shutdown"), "gateway.stop", "-"))?;
        match self.audit.checkpoint() {
            Ok(_) | Err(AuditError::NoCheckpoint) => {}
            Err(e) => error!(error = %e, "cannot sign the final checkpoint"),
        }
        // Leading until here: the stop entry is sequenced and checkpointed; then another
        // instance takes over at once.
        let _ = resign.send(());
        let _ = campaign.await;
        let _ = std::fs::remove_file(&sock);
        info!("stopped");
        result.map_err(|source| GatewayError::Socket {
            path: sock.display().to_string(),
            source,
        })
    }

    /// Builds `q`'s reports (a new version only where they changed) and opens its submission
    /// window; audited before and after.
    pub async fn build_reports(
        self: &Arc<Self>,
        q: crate::model::Quarter,
        actor: Actor,
    ) -> Result<Vec<(crate::reports::QuarterlyReport, crate::store::ReportStored)>, GatewayError>
    {
        let gw = self.clone();
        tokio::task::spawn_blocking(move || {
            gw.audit.append(
                &Event::new(actor.clone(), "reports.build", q.to_string()).outcome("started"),
            )?;
            let built = crate::reports::compute::build(
                &gw.store,
                q,
                &gw.config.report_destinations(),
                &gw.config.calendar,
                chrono::Utc::now(),
            )?;
            let deadline = crate::reports::status::deadline(q, &gw.config.reports);
            gw.store.report_window_open(q, deadline)?;
            let new = built
                .iter()
                .filter(|(_, s)| matches!(s, crate::store::ReportStored::New { .. }))
                .count() as u64;
            gw.audit.append(
                &Event::new(actor, "reports.build", q.to_string())
                    .detail("units", built.len() as u64)
                    .detail("new_versions", new),
            )?;
            Ok(built)
        })
        .await
        .map_err(|e| GatewayError::Scheduler(format!("report task failed: {e}")))?
    }

    /// Takes a submitted report (see [`crate::reports::intake::accept`]); audited before it is
    /// read (with the file's SHA-256) and after, with the version or the refusal.
    pub async fn submit_report(
        self: &Arc<Self>,
        unit: crate::model::Uscc,
        quarter: crate::model::Quarter,
        path: PathBuf,
        documents: Option<PathBuf>,
        actor: Actor,
    ) -> Result<
        (crate::reports::QuarterlyReport, crate::store::ReportStored),
        crate::reports::intake::IntakeError,
    > {
        use crate::reports::intake::{IntakeError, Submission, accept};
        let gw = self.clone();
        tokio::task::spawn_blocking(move || {
            use sha2::{Digest, Sha256};
            let target = format!("{quarter}/{unit}");
            let io = |source| IntakeError::Io {
                path: path.display().to_string(),
                source,
            };
            // The file is read whole below (its bytes are kept): refuse one over every format's
            // file limit before that; the decoder applies its own format's limit precisely.
            let limits = gw.decoder.limits();
            let max = (gw.config.reports.formats.iter())
                .map(|f| limits.file_bytes_for(&f.name))
                .max()
                .unwrap_or(limits.file_bytes);
            let len = std::fs::metadata(&path).map_err(io)?.len();
            if len > max {
                let too_big = crate::ingest::LimitError::new(
                    "file_mib",
                    crate::ingest::decode::bytes_shown(max),
                    format!("the file is {}", crate::ingest::decode::bytes_shown(len)),
                );
                return Err(IntakeError::Refused(
                    crate::reports::submit::SubmitError::Unreadable(too_big.to_string()),
                ));
            }
            let bytes = std::fs::read(&path).map_err(io)?;
            let digest = hex::encode(Sha256::digest(&bytes));
            gw.audit.append(
                &Event::new(actor.clone(), "reports.submit", &target)
                    .outcome("started")
                    .digest(&digest),
            )?;
            let today = chrono::Local::now().date_naive();
            let result = accept(
                &gw.decoder,
                &gw.store,
                &gw.config.reports,
                &gw.config.reports.formats,
                Submission {
                    unit: &unit,
                    quarter,
                    path: &path,
                    bytes: &bytes,
                    by: actor.id.clone(),
                    documents: documents.as_deref(),
                },
                &gw.config.report_destinations(),
                today,
            );
            let event = Event::new(actor, "reports.submit", &target);
            match &result {
                Ok((r, stored)) => gw.audit.append(
                    &event
                        .detail("version", r.version)
                        .detail(
                            "new",
                            matches!(stored, crate::store::ReportStored::New { .. }),
                        )
                        .detail("cases", r.summary.total)
                        .detail("documents", r.documents.len() as u64),
                )?,
                Err(e) => gw
                    .audit
                    .append(&event.outcome("refused").detail("reason", e.to_string()))?,
            };
            result
        })
        .await
        .unwrap_or_else(|e| Err(IntakeError::Task(e.to_string())))
    }

    /// Binds the port API (when configured), records the bound address in `DATA/api.addr` (so
    /// tools and tests find a port chosen by the OS), serves it, and reloads its certificate on
    /// SIGHUP.
    async fn start_api(
        self: &Arc<Self>,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, GatewayError> {
        let (Some(server), Some(tls)) = (&self.config.server, &self.tls) else {
            return Ok(None);
        };
        let listener = tokio::net::TcpListener::bind(server.listen)
            .await
            .map_err(|source| GatewayError::Listen {
                addr: server.listen.to_string(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| GatewayError::Listen {
                addr: server.listen.to_string(),
                source,
            })?;
        let addr_file = self.config.data_dir.join("api.addr");
        std::fs::write(&addr_file, format!("{addr}\n")).map_err(|source| {
            GatewayError::DataDir {
                path: addr_file.display().to_string(),
                source,
            }
        })?;
        info!(%addr, client_auth = ?tls.client_auth(), "port API listening (HTTPS)");
        spawn_reload_on_hup(tls.clone(), self.shutdown.clone());
        let services = crate::api::ApiServices {
            store: self.store.clone(),
            audit: self.audit.clone(),
            custody: self.custody.clone(),
            push: self.push.clone(),
            server: server.clone(),
            unit_names: (self.config.adapters.iter())
                .flat_map(|a| a.units.iter().map(|(u, n)| (u.clone(), n.clone())))
                .collect(),
            tmp_dir: self.config.data_dir.join(TMP_DIR),
            submissions: self.clone(),
            destinations: self.config.destinations.clone(),
            leads_lock: self.leads_lock.clone(),
            users: self.users.clone(),
            adapters: self.config.adapters.clone(),
            reports: self.config.reports.clone(),
            leader: self.leader.clone(),
        };
        let (tls, shutdown) = (tls.clone(), self.shutdown.clone());
        Ok(Some(tokio::spawn(async move {
            crate::api::serve(services, listener, tls, shutdown).await;
        })))
    }

    /// Runs `job` off the async threads every `period` (the first time one period after the
    /// start) until shutdown; a failure is logged as `what`.
    fn spawn_every<E: std::fmt::Display + Send + 'static>(
        self: &Arc<Self>,
        period: std::time::Duration,
        what: &'static str,
        job: fn(&Gateway) -> Result<(), E>,
    ) -> tokio::task::JoinHandle<()> {
        let gw = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = gw.shutdown.wait() => return,
                }
                let g = gw.clone();
                match tokio::task::spawn_blocking(move || job(&g)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => error!(error = %e, "{what} failed"),
                    Err(e) => error!(error = %e, "{what} task failed"),
                }
            }
        })
    }

    /// The leader sequences what other instances queued into a shared audit log, every
    /// [`crate::audit::SEQUENCE_EVERY`].
    fn spawn_audit_sequencer(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        // An audit log in files has no queue: no task, no wake-ups.
        if matches!(self.config.store, crate::config::StoreConfig::Sled) {
            return tokio::spawn(async {});
        }
        self.spawn_every(
            crate::audit::SEQUENCE_EVERY,
            "sequencing the shared audit log",
            |gw| match gw.leader.is_leader() {
                true => gw.audit.sequence(),
                false => Ok(()),
            },
        )
    }

    /// With a keystore shared with other instances, takes up their changes every
    /// [`KEYSTORE_REFRESH`] (a client added on one instance authenticates on every instance
    /// within that time).
    fn spawn_keystore_refresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        // A keystore file has no other writer: no task, no wake-ups.
        if matches!(self.config.store, crate::config::StoreConfig::Sled) {
            return tokio::spawn(async {});
        }
        self.spawn_every(KEYSTORE_REFRESH, "reading the shared keystore", |gw| {
            gw.custody.refresh().map(drop)
        })
    }

    /// The leader signs a checkpoint every `audit.checkpoint_interval_secs` (when entries were
    /// added and the keystore is unlocked).
    fn spawn_checkpoints(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        self.spawn_every(
            self.config.checkpoint_interval,
            "signing an audit checkpoint",
            |gw| match gw.leader.is_leader() {
                true => gw.audit.checkpoint_now(),
                false => Ok(()),
            },
        )
    }

    async fn schedule(
        self: &Arc<Self>,
    ) -> Result<tokio_cron_scheduler::JobScheduler, GatewayError> {
        use tokio_cron_scheduler::{Job, JobScheduler};
        let err =
            |e: tokio_cron_scheduler::JobSchedulerError| GatewayError::Scheduler(e.to_string());
        let sched = JobScheduler::new().await.map_err(err)?;
        for a in &self.config.adapters {
            let ingest::Transport::File { schedule, .. } = &a.transport;
            let gw = self.clone();
            let name = a.name.clone();
            let job = Job::new_async_tz(schedule.as_str(), chrono::Local, move |_, _| {
                let gw = gw.clone();
                let name = name.clone();
                Box::pin(async move {
                    if gw.shutdown.is_triggered() || !gw.leader.is_leader() {
                        return;
                    }
                    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
                    tokio::spawn(async move { while rx.recv().await.is_some() {} });
                    let actor = Actor::system(&format!("schedule:{name}"));
                    if let Err(e) = gw.run_ingest(name.clone(), None, actor, tx).await {
                        error!(adapter = %name, error = %e, "scheduled scan failed; the files stay in the inbox");
                    }
                })
            })
            .map_err(err)?;
            sched.add(job).await.map_err(err)?;
        }
        for d in &self.config.destinations {
            let gw = self.clone();
            let name = d.name.clone();
            let job = Job::new_async_tz(d.schedule.as_str(), chrono::Local, move |_, _| {
                let gw = gw.clone();
                let name = name.clone();
                Box::pin(async move {
                    if gw.shutdown.is_triggered() || !gw.leader.is_leader() {
                        return;
                    }
                    let actor = Actor::system(&format!("schedule:push:{name}"));
                    if let Err(e) = gw.push.cycle(&name, &actor, false).await {
                        error!(destination = %name, error = %e, "scheduled push cycle failed; the queue is kept");
                    }
                })
            })
            .map_err(err)?;
            sched.add(job).await.map_err(err)?;
        }
        {
            // At the start of each quarter: build the previous quarter, open its window.
            let gw = self.clone();
            let job = Job::new_async_tz(
                self.config.reports.schedule.as_str(),
                chrono::Local,
                move |_, _| {
                    let gw = gw.clone();
                    Box::pin(async move {
                        if gw.shutdown.is_triggered() || !gw.leader.is_leader() {
                            return;
                        }
                        let q = crate::model::Quarter::of(chrono::Local::now().date_naive()).previous();
                        match gw.build_reports(q, Actor::system("schedule:reports")).await {
                            Ok(built) => info!(quarter = %q, units = built.len(), "quarterly reports built; submission window open"),
                            Err(e) => error!(quarter = %q, error = %e, "building the quarterly reports failed"),
                        }
                    })
                },
            )
            .map_err(err)?;
            sched.add(job).await.map_err(err)?;
        }
        sched.start().await.map_err(err)?;
        Ok(sched)
    }
}

/// The runs an administrator may start, as the admin API sees them (see [`admin::server::Jobs`]).
impl admin::server::Jobs for Gateway {
    fn ingest(
        self: Arc<Self>,
        adapter: String,
        path: Option<PathBuf>,
        actor: Actor,
        events: tokio::sync::mpsc::Sender<IngestEvent>,
    ) -> admin::server::JobFuture<Result<Summary, String>> {
        Box::pin(async move { self.run_ingest(adapter, path, actor, events).await })
    }

    fn build_reports(
        self: Arc<Self>,
        q: crate::model::Quarter,
        actor: Actor,
    ) -> admin::server::JobFuture<Result<admin::server::Built, admin::server::BuildError>> {
        Box::pin(async move { Ok(Gateway::build_reports(&self, q, actor).await?) })
    }

    fn submit_report(
        self: Arc<Self>,
        unit: crate::model::Uscc,
        quarter: crate::model::Quarter,
        path: PathBuf,
        documents: Option<PathBuf>,
        actor: Actor,
    ) -> admin::server::JobFuture<
        Result<
            (crate::reports::QuarterlyReport, crate::store::ReportStored),
            crate::reports::intake::IntakeError,
        >,
    > {
        Box::pin(async move {
            Gateway::submit_report(&self, unit, quarter, path, documents, actor).await
        })
    }
}

impl crate::api::Submissions for Gateway {
    fn submit(
        self: Arc<Self>,
        unit: crate::model::Uscc,
        quarter: crate::model::Quarter,
        path: PathBuf,
        actor: Actor,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = crate::api::Submitted> + Send>> {
        Box::pin(
            async move { Gateway::submit_report(&self, unit, quarter, path, None, actor).await },
        )
    }
}

async fn bind_socket(sock: &Path) -> Result<tokio::net::UnixListener, GatewayError> {
    let shown = sock.display().to_string();
    if sock.exists() {
        if tokio::net::UnixStream::connect(sock).await.is_ok() {
            return Err(GatewayError::AlreadyRunning(shown));
        }
        // A socket left by a gateway that was killed: nobody answers, so it is safe to replace.
        let _ = std::fs::remove_file(sock);
    }
    let io = |source| GatewayError::Socket {
        path: shown.clone(),
        source,
    };
    let listener = tokio::net::UnixListener::bind(sock).map_err(io)?;
    std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// SIGHUP reloads the port API's certificate and key; a failed reload keeps the old ones.
fn spawn_reload_on_hup(tls: Arc<crate::tls::ServerTls>, shutdown: Shutdown) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {}
                _ = shutdown.wait() => return,
            }
            match tls.reload() {
                Ok(()) => info!("SIGHUP: port API certificate reloaded"),
                Err(errs) => {
                    for e in errs {
                        error!(error = %e, "SIGHUP: certificate reload failed; keeping the old one");
                    }
                }
            }
        }
    });
}

/// Triggers `shutdown` on SIGINT or SIGTERM. The handlers are installed before this returns:
/// a signal sent once the caller goes on (e.g. once the admin socket answers) stops the gateway
/// cleanly instead of killing it by the signal's default action.
pub fn spawn_signal_handler(shutdown: Shutdown) {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let (int, term) = (
        signal(SignalKind::interrupt()).ok(),
        signal(SignalKind::terminate()).ok(),
    );
    let received = |s: Option<Signal>| async move {
        match s {
            Some(mut s) => drop(s.recv().await),
            None => std::future::pending::<()>().await,
        }
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = received(int) => info!("SIGINT received"),
            _ = received(term) => info!("SIGTERM received"),
            _ = shutdown.wait() => return,
        }
        shutdown.trigger();
    });
}

/// Sets aside what an unclean stop left behind, before anything is read: inbox files found in
/// `processing/` go to `failed/` (each audited and logged), and the port API's temporary
/// submission files are removed.
fn set_aside_interrupted(config: &Config, audit: &AuditLog) -> Result<(), GatewayError> {
    for a in &config.adapters {
        match crate::ingest::set_aside_interrupted(a, &config.data_dir) {
            Ok(moved) => {
                for (file, to) in moved {
                    warn!(adapter = %a.name, file = %file, moved_to = %to,
                        "the gateway stopped while reading this file; set aside, not read again");
                    audit.append(
                        &Event::new(Actor::system("startup"), "ingest.file", &file)
                            .outcome("set_aside")
                            .detail("adapter", a.name.as_str())
                            .detail("moved_to", to.as_str()),
                    )?;
                }
            }
            // The files stay in processing/, which no scan reads.
            Err(e) => error!(adapter = %a.name, error = %e, "cannot set aside interrupted files"),
        }
    }
    let tmp = config.data_dir.join(TMP_DIR);
    if let Ok(rd) = std::fs::read_dir(&tmp) {
        for e in rd.filter_map(Result::ok) {
            if let Err(err) = std::fs::remove_file(e.path()) {
                warn!(file = %e.path().display(), error = %err, "cannot remove a temporary file");
            }
        }
    }
    Ok(())
}

/// The data directory's folder for temporary files (submissions received over the port API
/// while they are decoded); emptied at every start.
pub const TMP_DIR: &str = "tmp";
