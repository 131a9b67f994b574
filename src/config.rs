//! Configuration: `xianjie.toml` parsed with unknown keys refused, then validated together with the
//! adapters it names, reporting every problem at once (file, key, reason) before anything listens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::audit::Fsync;
use crate::ingest::{self, Adapter};

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigProblem {
    /// The file.
    pub file: String,
    /// The key, or `-`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// Every problem found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} configuration problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<PathBuf>,
    adapters_dir: Option<PathBuf>,
    rules_dir: Option<PathBuf>,
    #[serde(default)]
    ingest: RawIngest,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    clients: RawClients,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    destinations: Vec<RawDestination>,
    #[serde(default)]
    calendar: RawCalendar,
    #[serde(default)]
    reports: RawReports,
    #[serde(default)]
    store: RawStore,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    kind: Option<String>,
    url: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    pool_size: Option<usize>,
    instance: Option<String>,
    #[serde(default)]
    dangerous_plaintext: bool,
}

/// Where the store lives (`[store]`).
#[derive(Debug, Clone, Default)]
pub enum StoreConfig {
    /// Embedded sled under the data directory (the default).
    #[default]
    Sled,
    /// A PostgreSQL database, shared by every instance that names it.
    Postgres(Box<crate::store::PgSettings>),
}

/// `[store]`, validated: the database's address parsed, its password read from its file (which
/// must be private to the gateway's user), its TLS configured. A password over TCP to another
/// host without TLS is refused unless `dangerous_plaintext` says otherwise.
fn store_config(
    raw: RawStore,
    rel: &dyn Fn(PathBuf) -> PathBuf,
    push: &mut dyn FnMut(&str, String),
) -> StoreConfig {
    match raw.kind.as_deref().unwrap_or("sled") {
        "sled" => {
            if raw.url.is_some() || raw.password_file.is_some() || raw.ca_file.is_some() {
                push(
                    "store.kind",
                    "url, password_file and ca_file are for kind = \"postgres\"; the store is sled"
                        .into(),
                );
            }
            return StoreConfig::Sled;
        }
        "postgres" => {}
        other => {
            push(
                "store.kind",
                format!("{other:?} is neither \"sled\" nor \"postgres\""),
            );
            return StoreConfig::Sled;
        }
    }
    let Some(url) = raw.url else {
        push(
            "store.url",
            "missing: the database to use, e.g. \"postgresql://xianjie@db.example/xianjie\" or \
             \"host=/var/run/postgresql dbname=xianjie\" (peer authentication over the socket)"
                .into(),
        );
        return StoreConfig::Sled;
    };
    let mut config: tokio_postgres::Config = match url.parse() {
        Ok(c) => c,
        Err(e) => {
            // The url may hold a password: it is not repeated here.
            push("store.url", format!("not a PostgreSQL address: {e}"));
            return StoreConfig::Sled;
        }
    };
    if config.get_password().is_some() {
        push(
            "store.url",
            "holds a password: put it in store.password_file (mode 0600) instead".into(),
        );
    }
    if let Some(file) = raw.password_file.map(rel) {
        match read_private(&file) {
            Ok(password) => {
                config.password(password.trim_end_matches(['\r', '\n']));
            }
            Err(reason) => push(
                "store.password_file",
                format!("{}: {reason}", file.display()),
            ),
        }
    }
    let pool_size = raw.pool_size.unwrap_or(8);
    if !(1..=256).contains(&pool_size) {
        push("store.pool_size", format!("{pool_size} is outside 1..=256"));
    }
    let tls = match raw.ca_file.map(rel) {
        Some(ca) => match crate::tls::database_client_config(&ca, None) {
            Ok(t) => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Some(t)
            }
            Err(e) => {
                push("store.ca_file", e.to_string());
                None
            }
        },
        None => {
            if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
                push(
                    "store.url",
                    "asks for TLS (sslmode=require): set store.ca_file to the CA that signed the \
                     database server's certificate"
                        .into(),
                );
            }
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let remote = config.get_hosts().iter().any(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => !is_loopback(name),
                tokio_postgres::config::Host::Unix(_) => false,
            });
            if remote && !raw.dangerous_plaintext {
                push(
                    "store.ca_file",
                    "missing: the database is on another host and would be reached without TLS; \
                     set ca_file (or dangerous_plaintext = true on a network you trust)"
                        .into(),
                );
            }
            None
        }
    };
    StoreConfig::Postgres(Box::new(crate::store::PgSettings {
        config,
        tls,
        pool_size,
    }))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A secret file's text, refused when others than its owner may read it.
fn read_private(file: &Path) -> Result<zeroize::Zeroizing<String>, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(file).map_err(|e| format!("cannot read: {e}"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!("mode {mode:04o} lets others read it: chmod 600 it"));
    }
    std::fs::read_to_string(file)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| format!("cannot read: {e}"))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReports {
    schedule: Option<String>,
    deadline_days: Option<u32>,
    formats_dir: Option<PathBuf>,
    #[serde(default)]
    submitters: Vec<RawSubmitter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubmitter {
    unit: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDestination {
    name: String,
    url: String,
    ca: PathBuf,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    schedule: Option<String>,
    actions: Vec<String>,
    units: Option<Vec<String>>,
    batch_size: Option<usize>,
    credential: String,
    auth: Option<String>,
    reports_url: Option<String>,
    supervision_url: Option<String>,
    public: Option<bool>,
    retry_initial_ms: Option<u64>,
    retry_max_ms: Option<u64>,
    timeout_secs: Option<u64>,
    give_up_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    workdays: Vec<String>,
    #[serde(default)]
    years: Vec<i32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    client_auth: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    token_lifetime_secs: Option<u64>,
    rate_per_sec: Option<u32>,
    rate_burst: Option<u32>,
    handshake_timeout_secs: Option<u64>,
    header_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    body_min_bytes_per_sec: Option<u64>,
    max_connections: Option<u64>,
    max_connections_per_peer: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    data_concurrency: Option<u64>,
    token_attempts_per_min: Option<u64>,
    token_attempts_burst: Option<u64>,
    console_idle_timeout_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    /// `"always"` or a number of milliseconds.
    fsync: Option<toml::Value>,
    checkpoint_interval_secs: Option<u64>,
    origin: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawClients {
    rotate_overlap_hours: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIngest {
    batch_size: Option<usize>,
    #[serde(default)]
    limits: crate::ingest::limits::RawLimits,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the store, inboxes and admin socket live.
    pub data_dir: PathBuf,
    /// Where the adapter folders are.
    pub adapters_dir: PathBuf,
    /// Records per store transaction.
    pub batch_size: usize,
    /// Decoding limits (`[ingest.limits]`).
    pub ingest_limits: crate::ingest::Limits,
    /// Log filter (`info`, `xianjie=debug`, ...).
    pub log_level: String,
    /// When audit appends reach the disk.
    pub audit_fsync: Fsync,
    /// How often a checkpoint is signed (when entries were added).
    pub checkpoint_interval: Duration,
    /// The checkpoint origin line and the audit key's name.
    pub audit_origin: String,
    /// How long a client's previous secret keeps working after `clients rotate-secret`.
    pub rotate_overlap: Duration,
    /// Where pushes go (DESIGN §8).
    pub destinations: Vec<Destination>,
    /// The HTTPS port API, or `None` when `server.listen = "off"`.
    pub server: Option<ServerConfig>,
    /// Quarterly statistics: the quarter-start job, the submission deadline, who must submit.
    pub reports: ReportsConfig,
    /// Working days, for statutory push deadlines: the shipped State Council tables with
    /// `[calendar] holidays`, `workdays` and `years` over them.
    pub calendar: crate::push::calendar::WorkCalendar,
    /// The adapters, loaded and validated.
    pub adapters: Vec<Adapter>,
    /// Where the supervision rules are.
    pub rules_dir: PathBuf,
    /// The supervision rules, loaded and validated (none when the default `./rules` is absent).
    pub rules: Vec<crate::supervision::Rule>,
    /// Where the store lives.
    pub store: StoreConfig,
    /// The insecure (`dangerous_`) options set, each with what it allows: the gateway warns of
    /// each at start.
    pub dangerous: Vec<String>,
    /// This instance's name among those sharing a database (`store.instance`, default the host
    /// name): `status` and `/healthz` name the leader by it.
    pub instance: String,
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
}

/// How a destination's credential is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationAuth {
    /// `Authorization: Bearer <credential>`.
    Bearer,
    /// `Authorization: Basic base64(<credential>)` (the credential is `user:password`).
    Basic,
}

/// A push destination.
#[derive(Debug, Clone)]
pub struct Destination {
    /// Name (also the keystore credential's default name).
    pub name: String,
    /// Where packages are POSTed (https only).
    pub url: String,
    /// CA bundle the receiver's certificate must chain to.
    pub ca: PathBuf,
    /// Client certificate and key, when the receiver asks for one.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// Cron schedule of delivery cycles.
    pub schedule: String,
    /// Actions it takes.
    pub actions: Vec<crate::model::Action>,
    /// Units it takes (all when `None`).
    pub units: Option<Vec<crate::model::Uscc>>,
    /// Records per package.
    pub batch_size: usize,
    /// Keystore credential name.
    pub credential: String,
    /// How the credential is sent.
    pub auth: DestinationAuth,
    /// Retry policy for 408, 429, 5xx and network errors.
    pub retry: RetryPolicy,
    /// Where quarterly reports are POSTed (https), when the destination takes them.
    pub reports_url: Option<String>,
    /// Where the procuratorate's supervision notices on its units' cases are POSTed (https),
    /// when the destination takes them (a unit's own case system).
    pub supervision_url: Option<String>,
    /// Whether the receiver publishes what it gets (a credit platform: the default). A public
    /// destination never receives a restricted decision or a minor's, and has one withdrawn
    /// when a delivered decision becomes so; a closed exchange (`public = false`) gets them.
    pub public: bool,
}

/// Quarterly statistics settings (`[reports]`).
#[derive(Debug, Clone)]
pub struct ReportsConfig {
    /// Cron of the quarter-start job that builds the previous quarter and opens its window.
    pub schedule: String,
    /// Submissions are due this many days after the quarter's last day.
    pub deadline_days: u32,
    /// Units without a feed that must submit their reports: (USCC, name).
    pub submitters: Vec<(crate::model::Uscc, String)>,
    /// The submission formats (adapter folders: csv, xlsx, xml), loaded and checked at start.
    pub formats: Vec<crate::ingest::Adapter>,
}

/// Default quarter-start schedule: 01:00 on the first day of each quarter.
pub const DEFAULT_REPORTS_SCHEDULE: &str = "0 0 1 1 1,4,7,10 *";

impl Default for ReportsConfig {
    fn default() -> Self {
        Self {
            schedule: DEFAULT_REPORTS_SCHEDULE.into(),
            deadline_days: 15,
            submitters: Vec::new(),
            formats: Vec::new(),
        }
    }
}

/// How a destination's transient failures are retried: capped exponential backoff with full
/// jitter (a wait drawn uniformly from zero to `min(max, initial × 2^attempt)`), never shorter than
/// the receiver's `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first backoff ceiling.
    pub initial: Duration,
    /// The largest backoff ceiling.
    pub max: Duration,
    /// Timeout of one request (connect, send, receipt).
    pub timeout: Duration,
    /// How long one delivery cycle keeps retrying before it ends with the error; the next
    /// scheduled cycle starts again where it stopped.
    pub give_up: Duration,
}

impl Default for RetryPolicy {
    /// The configuration defaults: 1 s first ceiling, 5 min largest, 30 s per request, 10 min
    /// per cycle.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            timeout: Duration::from_secs(30),
            give_up: Duration::from_secs(600),
        }
    }
}

impl Config {
    /// The destinations that take quarterly reports.
    pub fn report_destinations(&self) -> Vec<String> {
        self.destinations
            .iter()
            .filter(|d| d.reports_url.is_some())
            .map(|d| d.name.clone())
            .collect()
    }
}

impl Config {
    /// The destinations that take supervision notices on `unit`'s cases.
    pub fn notice_destinations(&self, unit: &crate::model::Uscc) -> Vec<String> {
        notice_destinations(&self.destinations, unit)
    }
}

/// The destinations of `all` that take supervision notices on `unit`'s cases.
pub fn notice_destinations(all: &[Destination], unit: &crate::model::Uscc) -> Vec<String> {
    all.iter()
        .filter(|d| {
            d.supervision_url.is_some() && d.units.as_ref().is_none_or(|u| u.contains(unit))
        })
        .map(|d| d.name.clone())
        .collect()
}

impl Destination {
    /// Whether a case of `unit` and `action` goes to this destination.
    pub fn takes(&self, unit: &crate::model::Uscc, action: crate::model::Action) -> bool {
        self.actions.contains(&action) && self.units.as_ref().is_none_or(|u| u.contains(unit))
    }
}

/// The HTTPS port API's settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: std::net::SocketAddr,
    /// Certificate, key, client CA and client-auth mode.
    pub tls: crate::tls::ServerTlsFiles,
    /// `iss` of the tokens.
    pub issuer: String,
    /// `aud` of the tokens.
    pub audience: String,
    /// Token lifetime (at most 15 minutes).
    pub token_lifetime: Duration,
    /// Requests per second per client (token bucket refill).
    pub rate_per_sec: u32,
    /// Bucket size.
    pub rate_burst: u32,
    /// Connection and body limits of the listener.
    pub limits: crate::api::ConnLimits,
    /// Data requests worked on at once.
    pub data_concurrency: usize,
    /// `POST /oauth/token` attempts per minute, per peer address and per claimed client name,
    /// before any secret is checked.
    pub token_attempts_per_min: u32,
    /// Burst of token attempts allowed at once.
    pub token_attempts_burst: u32,
    /// A console session ends after this long without a request (at most 30 minutes).
    pub console_idle: Duration,
}

/// Default listen address of the port API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// Default certificate directory.
pub const DEFAULT_CERTS_DIR: &str = "./certs";

/// Embedded defaults: data in `./data`, adapters in `./adapters`.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Default checkpoint origin (the district's division code names the log).
pub const DEFAULT_AUDIT_ORIGIN: &str = "xianjie.320102/audit";
/// Embedded default directory of the quarterly submission formats.
pub const DEFAULT_SUBMISSIONS_DIR: &str = "./submissions";
/// Embedded default adapters directory.
pub const DEFAULT_ADAPTERS_DIR: &str = "./adapters";

impl Config {
    /// The data directory a configuration file names (relative to the file), without loading
    /// the rest — what the admin commands need to find the gateway's socket. `None` when there is
    /// no file or it names none.
    pub fn data_dir_of(file: Option<&Path>) -> Option<PathBuf> {
        let implicit = Path::new("xianjie.toml");
        let chosen = file.or_else(|| implicit.is_file().then_some(implicit))?;
        let value: toml::Table = toml::from_str(&std::fs::read_to_string(chosen).ok()?).ok()?;
        let dir = PathBuf::from(value.get("data_dir")?.as_str()?);
        Some(if dir.is_absolute() {
            dir
        } else {
            chosen.parent().unwrap_or(Path::new("")).join(dir)
        })
    }

    /// Loads `file` (or, when `None`, `./xianjie.toml` if present, else the embedded defaults),
    /// applies `data_override`, and validates everything including the adapters.
    pub fn load(file: Option<&Path>, data_override: Option<&Path>) -> Result<Config, ConfigErrors> {
        let implicit = Path::new("xianjie.toml");
        let chosen = file
            .map(Path::to_path_buf)
            .or_else(|| implicit.is_file().then(|| implicit.to_path_buf()));
        let shown = chosen
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(embedded defaults)".into());
        let mut problems = Vec::new();
        let mut push = |key: &str, reason: String| {
            problems.push(ConfigProblem {
                file: shown.clone(),
                key: key.into(),
                reason,
            })
        };
        let raw: RawConfig = match &chosen {
            None => RawConfig::default(),
            Some(p) => match std::fs::read_to_string(p) {
                Err(e) => {
                    push("-", format!("cannot read: {e}"));
                    RawConfig::default()
                }
                Ok(text) => match toml::from_str(&text) {
                    Ok(r) => r,
                    Err(e) => {
                        let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
                        push(
                            &line.map(|l| format!("line {l}")).unwrap_or("-".into()),
                            e.message().to_string(),
                        );
                        RawConfig::default()
                    }
                },
            },
        };
        let batch_size = raw.ingest.batch_size.unwrap_or(1000);
        if !(1..=100_000).contains(&batch_size) {
            push(
                "ingest.batch_size",
                format!("{batch_size} is outside 1..=100000"),
            );
        }
        let log_level = raw.log.level.unwrap_or_else(|| "info".into());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            push(
                "log.level",
                format!("'{log_level}' is not a log filter (e.g. info, debug, xianjie=debug)"),
            );
        }
        let audit_fsync = match &raw.audit.fsync {
            None => Fsync::Interval(Duration::from_millis(5)),
            Some(toml::Value::String(s)) if s == "always" => Fsync::Always,
            Some(toml::Value::Integer(ms)) if (1..=10_000).contains(ms) => {
                Fsync::Interval(Duration::from_millis(*ms as u64))
            }
            Some(other) => {
                push(
                    "audit.fsync",
                    format!(
                        "{other} is neither \"always\" nor a number of milliseconds in 1..=10000"
                    ),
                );
                Fsync::Always
            }
        };
        let secs = raw.audit.checkpoint_interval_secs.unwrap_or(10);
        if !(1..=86_400).contains(&secs) {
            push(
                "audit.checkpoint_interval_secs",
                format!("{secs} is outside 1..=86400"),
            );
        }
        let audit_origin = raw
            .audit
            .origin
            .unwrap_or_else(|| DEFAULT_AUDIT_ORIGIN.into());
        if audit_origin.is_empty()
            || audit_origin.contains(char::is_whitespace)
            || audit_origin.contains('+')
        {
            push(
                "audit.origin",
                format!(
                    "{audit_origin:?} must be non-empty, without spaces or '+' (it names the signing key)"
                ),
            );
        }
        let hours = raw.clients.rotate_overlap_hours.unwrap_or(24);
        if hours > 24 * 90 {
            push(
                "clients.rotate_overlap_hours",
                format!("{hours} is more than 90 days"),
            );
        }
        let server_raw = raw.server;
        let mut destinations = Vec::new();
        for (i, d) in raw.destinations.into_iter().enumerate() {
            let key = |k: &str| format!("destinations[{i}].{k}");
            if d.name.is_empty()
                || !d
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            {
                push(
                    &key("name"),
                    format!("{:?} must be letters, digits, '-' or '_'", d.name),
                );
            }
            if destinations.iter().any(|x: &Destination| x.name == d.name) {
                push(
                    &key("name"),
                    format!("{:?} is used by another destination", d.name),
                );
            }
            if !d.url.starts_with("https://") {
                push(&key("url"), format!("{:?} must be an https:// URL", d.url));
            }
            let schedule = d.schedule.unwrap_or_else(|| "0 */5 * * * *".into());
            if schedule.split_whitespace().count() != 6
                || tokio_cron_scheduler::Job::new(schedule.as_str(), |_, _| {}).is_err()
            {
                push(
                    &key("schedule"),
                    format!(
                        "{schedule:?} is not a 6-field cron expression (sec min hour day month weekday)"
                    ),
                );
            }
            let mut actions = Vec::new();
            for a in &d.actions {
                match crate::model::Action::parse(a) {
                    Ok(a) => actions.push(a),
                    Err(e) => push(&key("actions"), e.to_string()),
                }
            }
            if let Some(u) = &d.reports_url
                && !u.starts_with("https://")
            {
                push(
                    &key("reports_url"),
                    format!("{u:?} must be an https:// URL"),
                );
            }
            if let Some(u) = &d.supervision_url
                && !u.starts_with("https://")
            {
                push(
                    &key("supervision_url"),
                    format!("{u:?} must be an https:// URL"),
                );
            }
            if actions.is_empty() && d.reports_url.is_none() && d.supervision_url.is_none() {
                push(
                    &key("actions"),
                    "name at least one action (penalty, licensing, inspection, …)".into(),
                );
            }
            let units = d.units.map(|us| {
                us.iter()
                    .filter_map(|u| match crate::model::Uscc::parse(u) {
                        Ok(u) => Some(u),
                        Err(e) => {
                            push(&key("units"), e.to_string());
                            None
                        }
                    })
                    .collect()
            });
            let batch_size = d.batch_size.unwrap_or(1000);
            if !(1..=10_000).contains(&batch_size) {
                push(
                    &key("batch_size"),
                    format!("{batch_size} is outside 1..=10000"),
                );
            }
            let auth = match d.auth.as_deref().unwrap_or("bearer") {
                "bearer" => DestinationAuth::Bearer,
                "basic" => DestinationAuth::Basic,
                other => {
                    push(&key("auth"), format!("{other:?} is not bearer or basic"));
                    DestinationAuth::Bearer
                }
            };
            let client_identity = match (d.client_cert, d.client_key) {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) => None,
                _ => {
                    push(
                        &key("client_cert"),
                        "client_cert and client_key go together".into(),
                    );
                    None
                }
            };
            let initial = d.retry_initial_ms.unwrap_or(1000);
            let max = d.retry_max_ms.unwrap_or(300_000);
            if initial == 0 || max < initial {
                push(
                    &key("retry_initial_ms"),
                    format!(
                        "retry_initial_ms ({initial}) must be at least 1 and at most retry_max_ms ({max})"
                    ),
                );
            }
            let timeout = d.timeout_secs.unwrap_or(30);
            if !(1..=600).contains(&timeout) {
                push(
                    &key("timeout_secs"),
                    format!("{timeout} is outside 1..=600"),
                );
            }
            let give_up = d.give_up_secs.unwrap_or(600);
            if give_up == 0 {
                push(&key("give_up_secs"), "must be at least 1".into());
            }
            destinations.push(Destination {
                name: d.name,
                url: d.url,
                ca: d.ca,
                client_identity,
                schedule,
                actions,
                units,
                batch_size,
                credential: d.credential,
                auth,
                reports_url: d.reports_url,
                supervision_url: d.supervision_url,
                public: d.public.unwrap_or(true),
                retry: RetryPolicy {
                    initial: Duration::from_millis(initial.max(1)),
                    max: Duration::from_millis(max.max(initial.max(1))),
                    timeout: Duration::from_secs(timeout),
                    give_up: Duration::from_secs(give_up.max(1)),
                },
            });
        }
        // Relative paths in a config file are relative to the file, so the gateway behaves the same
        // whatever directory it is started from.
        let base = chosen
            .as_ref()
            .and_then(|p| p.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let data_dir = data_override
            .map(Path::to_path_buf)
            .unwrap_or_else(|| rel(raw.data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.into())));
        let adapters_dir = rel(raw
            .adapters_dir
            .unwrap_or_else(|| DEFAULT_ADAPTERS_DIR.into()));
        let server = match server_raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN) {
            "off" => None,
            addr => {
                let listen = addr.parse().unwrap_or_else(|e| {
                    push(
                        "server.listen",
                        format!("{addr:?} is not an address:port ({e}), nor \"off\""),
                    );
                    std::net::SocketAddr::from(([127, 0, 0, 1], 8443))
                });
                let certs = Path::new(DEFAULT_CERTS_DIR);
                let client_auth = match server_raw.client_auth.as_deref().unwrap_or("required") {
                    "required" => crate::tls::ClientAuth::Required,
                    "optional" => crate::tls::ClientAuth::Optional,
                    "off" => crate::tls::ClientAuth::Off,
                    other => {
                        push(
                            "server.client_auth",
                            format!("{other:?} is not one of required, optional, off"),
                        );
                        crate::tls::ClientAuth::Required
                    }
                };
                let lifetime = server_raw.token_lifetime_secs.unwrap_or(900);
                if !(60..=900).contains(&lifetime) {
                    push(
                        "server.token_lifetime_secs",
                        format!("{lifetime} is outside 60..=900 (tokens live at most 15 minutes)"),
                    );
                }
                let rate = server_raw.rate_per_sec.unwrap_or(200);
                let burst = server_raw.rate_burst.unwrap_or(400);
                if rate == 0 || burst == 0 {
                    push(
                        "server.rate_per_sec",
                        "rate_per_sec and rate_burst must be at least 1".into(),
                    );
                }
                let mut num =
                    |key: &str, v: Option<u64>, range: std::ops::RangeInclusive<u64>, d: u64| {
                        match v {
                            None => d,
                            Some(v) if range.contains(&v) => v,
                            Some(v) => {
                                push(
                                    &format!("server.{key}"),
                                    format!("{v} is outside {}..={}", range.start(), range.end()),
                                );
                                d
                            }
                        }
                    };
                let secs = Duration::from_secs;
                let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
                let d = crate::api::ConnLimits::default();
                let limits = crate::api::ConnLimits {
                    handshake: secs(num(
                        "handshake_timeout_secs",
                        server_raw.handshake_timeout_secs,
                        1..=120,
                        d.handshake.as_secs(),
                    )),
                    header: secs(num(
                        "header_timeout_secs",
                        server_raw.header_timeout_secs,
                        1..=120,
                        d.header.as_secs(),
                    )),
                    idle: secs(num(
                        "idle_timeout_secs",
                        server_raw.idle_timeout_secs,
                        1..=3600,
                        d.idle.as_secs(),
                    )),
                    body: secs(num(
                        "body_timeout_secs",
                        server_raw.body_timeout_secs,
                        1..=3600,
                        d.body.as_secs(),
                    )),
                    body_min_rate: num(
                        "body_min_bytes_per_sec",
                        server_raw.body_min_bytes_per_sec,
                        0..=100_000_000,
                        d.body_min_rate,
                    ),
                    max_connections: num(
                        "max_connections",
                        server_raw.max_connections,
                        1..=1_000_000,
                        d.max_connections as u64,
                    ) as usize,
                    max_per_peer: num(
                        "max_connections_per_peer",
                        server_raw.max_connections_per_peer,
                        1..=1_000_000,
                        d.max_per_peer as u64,
                    ) as usize,
                    grace: secs(num(
                        "shutdown_grace_secs",
                        server_raw.shutdown_grace_secs,
                        0..=600,
                        d.grace.as_secs(),
                    )),
                };
                // On PostgreSQL a data request mostly waits for the database, so more of them at
                // once keep the cores busy: four per pooled connection.
                let on_database = raw.store.kind.as_deref() == Some("postgres");
                let pool = raw.store.pool_size.unwrap_or(8).clamp(1, 256) as u64;
                let data_concurrency = num(
                    "data_concurrency",
                    server_raw.data_concurrency,
                    1..=4096,
                    if on_database {
                        (cores * 2).max(4 * pool)
                    } else {
                        cores * 2
                    },
                ) as usize;
                let token_attempts_per_min = num(
                    "token_attempts_per_min",
                    server_raw.token_attempts_per_min,
                    1..=100_000,
                    30,
                ) as u32;
                let token_attempts_burst = num(
                    "token_attempts_burst",
                    server_raw.token_attempts_burst,
                    1..=100_000,
                    10,
                ) as u32;
                let console_idle = secs(num(
                    "console_idle_timeout_secs",
                    server_raw.console_idle_timeout_secs,
                    1..=1800,
                    1800,
                ));
                Some(ServerConfig {
                    console_idle,
                    limits,
                    data_concurrency,
                    token_attempts_per_min,
                    token_attempts_burst,
                    listen,
                    tls: crate::tls::ServerTlsFiles {
                        cert: server_raw
                            .cert
                            .map(&rel)
                            .unwrap_or_else(|| certs.join("server.pem")),
                        key: server_raw
                            .key
                            .map(&rel)
                            .unwrap_or_else(|| certs.join("server-key.pem")),
                        client_ca: Some(
                            server_raw
                                .client_ca
                                .map(&rel)
                                .unwrap_or_else(|| certs.join("ca.pem")),
                        ),
                        client_auth,
                    },
                    issuer: server_raw.issuer.unwrap_or_else(|| "xianjie.320102".into()),
                    audience: server_raw
                        .audience
                        .unwrap_or_else(|| "xianjie-port-api".into()),
                    token_lifetime: Duration::from_secs(lifetime),
                    rate_per_sec: rate.max(1),
                    rate_burst: burst.max(1),
                })
            }
        };
        let reports = {
            let schedule = raw
                .reports
                .schedule
                .clone()
                .unwrap_or_else(|| DEFAULT_REPORTS_SCHEDULE.into());
            if schedule.split_whitespace().count() != 6
                || tokio_cron_scheduler::Job::new(schedule.as_str(), |_, _| {}).is_err()
            {
                push(
                    "reports.schedule",
                    format!(
                        "{schedule:?} is not a 6-field cron expression (sec min hour day month weekday)"
                    ),
                );
            }
            let deadline_days = raw.reports.deadline_days.unwrap_or(15);
            if !(1..=90).contains(&deadline_days) {
                push(
                    "reports.deadline_days",
                    format!("{deadline_days} is outside 1..=90"),
                );
            }
            let mut submitters = Vec::new();
            for (i, s) in raw.reports.submitters.iter().enumerate() {
                match crate::model::Uscc::parse(&s.unit) {
                    Ok(u) if !s.name.trim().is_empty() => submitters.push((u, s.name.clone())),
                    Ok(_) => push(
                        &format!("reports.submitters[{i}].name"),
                        "must not be empty".into(),
                    ),
                    Err(e) => push(&format!("reports.submitters[{i}].unit"), e.to_string()),
                }
            }
            let explicit = raw.reports.formats_dir.is_some();
            let dir = rel(raw
                .reports
                .formats_dir
                .clone()
                .unwrap_or_else(|| DEFAULT_SUBMISSIONS_DIR.into()));
            // The formats are needed when someone must submit; otherwise an absent default
            // folder only means submissions are not taken.
            let needed = explicit || !submitters.is_empty() || dir.is_dir();
            let formats = match needed.then(|| crate::reports::submit::load_formats(&dir)) {
                None => Vec::new(),
                Some(Ok(f)) => f,
                Some(Err(errs)) => {
                    for e in errs {
                        push(
                            &format!("reports.formats_dir ({}): {}", e.file, e.key),
                            e.reason,
                        );
                    }
                    Vec::new()
                }
            };
            ReportsConfig {
                schedule,
                deadline_days,
                submitters,
                formats,
            }
        };
        let calendar = crate::push::calendar::WorkCalendar::official()
            .and_then(|c| {
                c.overlay(
                    &raw.calendar.holidays,
                    &raw.calendar.workdays,
                    &raw.calendar.years,
                )
            })
            .unwrap_or_else(|errs| {
                for e in errs {
                    push("calendar", e.to_string());
                }
                crate::push::calendar::WorkCalendar::default()
            });
        let adapters = match ingest::load_all(&adapters_dir) {
            Ok(a) => a,
            Err(errs) => {
                problems.extend(errs.into_iter().map(|e| ConfigProblem {
                    file: e.file,
                    key: e.key,
                    reason: e.reason,
                }));
                Vec::new()
            }
        };
        // The rules are checked before anything listens, like the adapters. A configured
        // directory must exist; the default one may be absent (a gateway without supervision).
        let rules_configured = raw.rules_dir.is_some();
        let rules_dir = rel(raw
            .rules_dir
            .unwrap_or_else(|| crate::supervision::DEFAULT_RULES_DIR.into()));
        let rules = if !rules_configured && !rules_dir.exists() {
            Vec::new()
        } else {
            match crate::supervision::load_dir(&rules_dir) {
                Ok(r) => r,
                Err(errs) => {
                    problems.extend(errs.into_iter().map(|e| ConfigProblem {
                        file: e.file,
                        key: e.at,
                        reason: e.reason,
                    }));
                    Vec::new()
                }
            }
        };
        let names: Vec<&str> = (adapters.iter().chain(&reports.formats))
            .map(|a| a.name.as_str())
            .collect();
        let instance = match raw.store.instance.clone() {
            Some(name) => name,
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
        };
        let instance = if instance.is_empty() {
            "xianjie".to_string()
        } else {
            instance
        };
        if instance.len() > 63
            || !instance
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            problems.push(ConfigProblem {
                file: shown.clone(),
                key: "store.instance".into(),
                reason: format!(
                    "{instance:?} is not an instance name (at most 63 letters, digits, '.', '-', '_')"
                ),
            });
        }
        let mut dangerous = Vec::new();
        if raw.store.dangerous_plaintext {
            dangerous.push(
                "store.dangerous_plaintext: the connection to the database may be unencrypted"
                    .to_string(),
            );
        }
        let store = store_config(raw.store, &rel, &mut |key, reason| {
            problems.push(ConfigProblem {
                file: shown.clone(),
                key: key.into(),
                reason,
            })
        });
        let ingest_limits = raw.ingest.limits.validate(&names, &mut |key, reason| {
            problems.push(ConfigProblem {
                file: shown.clone(),
                key: key.into(),
                reason,
            })
        });
        if problems.is_empty() {
            Ok(Config {
                data_dir,
                adapters_dir,
                rules_dir,
                rules,
                batch_size,
                ingest_limits,
                log_level,
                audit_fsync,
                checkpoint_interval: Duration::from_secs(secs),
                audit_origin,
                rotate_overlap: Duration::from_secs(hours * 3600),
                server,
                reports,
                calendar,
                destinations: destinations
                    .into_iter()
                    .map(|mut d| {
                        d.ca = rel(d.ca);
                        d.client_identity = d.client_identity.map(|(c, k)| (rel(c), rel(k)));
                        d
                    })
                    .collect(),
                adapters,
                store,
                instance,
                dangerous,
                source: chosen,
            })
        } else {
            Err(ConfigErrors(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("xianjie.toml");
        std::fs::write(
            &cfg,
            "adapters_dir = \"nowhere\"\n[ingest]\nbatch_size = 0\n[log]\nlevel = \"[[\"\n",
        )
        .unwrap();
        let errs = Config::load(Some(&cfg), None).unwrap_err();
        let text = errs.to_string();
        assert_eq!(errs.0.len(), 3, "{text}");
        assert!(text.contains("ingest.batch_size: 0 is outside"), "{text}");
        assert!(text.contains("log.level"), "{text}");
        assert!(
            text.contains("cannot read the adapters directory"),
            "{text}"
        );
    }

    #[test]
    fn a_postgres_store_is_checked_whole_and_its_password_never_repeated() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let adapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
        let cfg = dir.path().join("xianjie.toml");
        let pass = dir.path().join("db-password");
        std::fs::write(&pass, "s3cret-Pass\n").unwrap();
        let load_listening = |listen: &str, store: &str| {
            std::fs::write(
                &cfg,
                format!(
                    "adapters_dir = {:?}\n[server]\nlisten = {listen:?}\n[store]\n{store}\n",
                    adapters.display().to_string()
                ),
            )
            .unwrap();
            Config::load(Some(&cfg), None)
        };
        let load = |store: &str| load_listening("off", store);
        // Readable by others: refused, and so is a password in the url and a remote host
        // without TLS; every problem at once, none repeating a password.
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
        let errs = load(
            "kind = \"postgres\"\nurl = \"postgresql://xj:hunter2-url@db.example.gov.cn/xj\"\npassword_file = \"db-password\"\npool_size = 0",
        )
        .unwrap_err();
        let text = errs.to_string();
        assert_eq!(errs.0.len(), 4, "{text}");
        for needle in [
            "store.url: holds a password: put it in store.password_file",
            "store.password_file",
            "mode 0644 lets others read it: chmod 600 it",
            "store.pool_size: 0 is outside 1..=256",
            "store.ca_file: missing: the database is on another host",
        ] {
            assert!(text.contains(needle), "{needle:?} not in {text}");
        }
        assert!(
            !text.contains("hunter2") && !text.contains("s3cret"),
            "{text}"
        );
        assert!(
            load("kind = \"mysql\"")
                .unwrap_err()
                .to_string()
                .contains("store.kind")
        );
        assert!(
            load("kind = \"postgres\"")
                .unwrap_err()
                .to_string()
                .contains("store.url: missing")
        );
        assert!(
            load("kind = \"postgres\"\nurl = \"host=localhost sslmode=require dbname=xj\"")
                .unwrap_err()
                .to_string()
                .contains("set store.ca_file")
        );
        // Private, on loopback: accepted, the password read (and kept out of Debug).
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = load(
            "kind = \"postgres\"\nurl = \"host=127.0.0.1 user=xj dbname=xj\"\npassword_file = \"db-password\"",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let StoreConfig::Postgres(pg) = &c.store else {
            panic!("not postgres: {:?}", c.store)
        };
        assert_eq!(pg.config.get_password(), Some(&b"s3cret-Pass"[..]));
        assert_eq!(pg.pool_size, 8);
        assert!(!format!("{c:?}").contains("s3cret"));
        // Remote without TLS, when the operator says so: then the gateway warns at start.
        let c = load("kind = \"postgres\"\nurl = \"host=db.example.gov.cn dbname=xj\"\ndangerous_plaintext = true")
            .unwrap();
        assert_eq!(c.dangerous.len(), 1);
        assert!(c.dangerous[0].starts_with("store.dangerous_plaintext"));
        assert!(matches!(load("").unwrap().store, StoreConfig::Sled));
        // Requests on the database mostly wait for it: four at once per pooled connection.
        let concurrency = |store: &str| {
            let c = load_listening("127.0.0.1:0", store).unwrap_or_else(|e| panic!("{e}"));
            c.server.map(|s| s.data_concurrency)
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert_eq!(concurrency(""), Some(2 * cores));
        let pg = "kind = \"postgres\"\nurl = \"host=127.0.0.1 dbname=xj\"";
        assert_eq!(concurrency(pg), Some((2 * cores).max(32)));
        assert_eq!(
            concurrency(&format!("{pg}\npool_size = 2")),
            Some((2 * cores).max(8))
        );
    }

    #[test]
    fn the_example_configuration_loads() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("xianjie.example.toml");
        let c = Config::load(Some(&example), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.ingest_limits, crate::ingest::Limits::default());
    }

    #[test]
    fn ingest_limits_are_read_in_their_units_and_every_bad_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let adapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
        let cfg = dir.path().join("xianjie.toml");
        let write = |limits: &str| {
            std::fs::write(
                &cfg,
                format!(
                    "adapters_dir = {:?}\n[server]\nlisten = \"off\"\n[ingest.limits]\n{limits}\n",
                    adapters.display().to_string()
                ),
            )
            .unwrap();
        };
        write("field_kib = 16\ndecode_memory_mib = 300\nfile_mib_by_adapter = { tax = 8 }");
        let l = Config::load(Some(&cfg), None).unwrap().ingest_limits;
        assert_eq!(l.field_bytes, 16 * 1024);
        assert_eq!(l.decode_memory_bytes, 300 << 20);
        assert_eq!(l.file_bytes_for("tax"), 8 << 20);
        assert_eq!(l.file_bytes_for("sunshine"), 1024 << 20, "the default");
        assert_eq!(l.xml_depth, 64);

        write(
            "xml_depth = 1\nfield_kib = 0\ndecode_memory_mib = 10\nfile_mib_by_adapter = { nosuch = 5 }",
        );
        let text = Config::load(Some(&cfg), None).unwrap_err().to_string();
        for needle in [
            "ingest.limits.xml_depth: 1 is outside 2..=4096",
            "ingest.limits.field_kib: 0 is outside",
            "ingest.limits.decode_memory_mib: 10 is outside 64..=65536",
            "ingest.limits.file_mib_by_adapter.nosuch: no adapter is named \"nosuch\"",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        write("fields_kib = 16");
        let text = Config::load(Some(&cfg), None).unwrap_err().to_string();
        assert!(text.contains("unknown field `fields_kib`"), "{text}");
    }

    #[test]
    fn destinations_parse_and_every_problem_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let adapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
        let cfg = dir.path().join("xianjie.toml");
        std::fs::write(
            &cfg,
            format!(
                "adapters_dir = {:?}\n[server]\nlisten = \"off\"\n[[destinations]]\nname = \"province\"\nurl = \"https://127.0.0.1:9443/packages\"\nca = \"certs/ca.pem\"\nactions = [\"inspection\", \"penalty\", \"licensing\"]\ncredential = \"province\"\n",
                adapters.display().to_string()
            ),
        )
        .unwrap();
        let c = Config::load(Some(&cfg), None).unwrap();
        let d = &c.destinations[0];
        assert_eq!(
            (d.batch_size, d.schedule.as_str(), d.auth),
            (1000, "0 */5 * * * *", DestinationAuth::Bearer)
        );
        assert_eq!(
            d.ca,
            dir.path().join("certs/ca.pem"),
            "relative to the config file"
        );
        let unit = crate::model::Uscc::parse("91350200776049653A").unwrap();
        assert!(d.takes(&unit, crate::model::Action::Penalty));
        assert!(!d.takes(&unit, crate::model::Action::Levy));

        std::fs::write(
            &cfg,
            format!(
                "adapters_dir = {:?}\n[server]\nlisten = \"off\"\n[[destinations]]\nname = \"a b\"\nurl = \"http://x\"\nca = \"ca.pem\"\nschedule = \"*/5 * * * *\"\nactions = [\"fine\"]\nunits = [\"91350200776049653B\"]\nbatch_size = 0\ncredential = \"p\"\nauth = \"digest\"\n",
                adapters.display().to_string()
            ),
        )
        .unwrap();
        let errs = Config::load(Some(&cfg), None).unwrap_err();
        let keys: Vec<&str> = errs.0.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "name",
            "url",
            "schedule",
            "actions",
            "units",
            "batch_size",
            "auth",
        ] {
            assert!(
                keys.contains(&format!("destinations[0].{k}").as_str()),
                "{k} not reported: {errs}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("xianjie.toml");
        std::fs::write(&cfg, "data_dir = \"d\"\n\n[ingest]\nbatchsize = 5\n").unwrap();
        let errs = Config::load(Some(&cfg), None).unwrap_err();
        assert!(
            errs.0[0].key == "line 4" && errs.0[0].reason.contains("batchsize"),
            "{errs}"
        );
    }
}
