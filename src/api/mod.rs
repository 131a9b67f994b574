//! The port API for the procuratorate (DESIGN §7): HTTPS on rustls, OAuth2 client credentials with
//! EdDSA JWTs, ports opened per client, cases with filters and cursors, the change feed. Every
//! data response is audited before it is sent.

pub mod jwt;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod query;
mod routes;
mod server;
mod supervision;
pub mod xml;

pub use routes::{ApiState, RequestId, Throttle, keys_digest, paths};
pub use server::{ConnLimits, DropConnection, Peer, media_type, serve_tls};

/// What a submission through the API becomes: the report and whether it is a new version, or
/// why it was not taken.
pub type Submitted = Result<
    (crate::reports::QuarterlyReport, crate::store::ReportStored),
    crate::reports::intake::IntakeError,
>;

/// Takes a report submitted through the API (the gateway does it: through its decoding
/// process, audited before and after).
pub trait Submissions: Send + Sync {
    /// Takes the file at `path` as `unit`'s report for `quarter`, from `actor`.
    fn submit(
        self: std::sync::Arc<Self>,
        unit: crate::model::Uscc,
        quarter: crate::model::Quarter,
        path: std::path::PathBuf,
        actor: crate::audit::Actor,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Submitted> + Send>>;
}

/// What the port API works with: narrow handles the gateway builds from its parts.
pub struct ApiServices {
    /// The store.
    pub store: crate::store::Store,
    /// The audit log.
    pub audit: std::sync::Arc<crate::audit::AuditLog>,
    /// The keystore under custody.
    pub custody: std::sync::Arc<crate::keys::custody::Custody>,
    /// The push worker (its status, for the metrics).
    pub push: std::sync::Arc<crate::push::worker::Pusher>,
    /// The API's settings.
    pub server: crate::config::ServerConfig,
    /// Unit names by code (from the adapters), for the list of ports.
    pub unit_names: std::collections::BTreeMap<crate::model::Uscc, String>,
    /// Where submissions are kept while they are decoded.
    pub tmp_dir: std::path::PathBuf,
    /// Takes submitted reports.
    pub submissions: std::sync::Arc<dyn Submissions>,
    /// The destinations (with the units they take) that get supervision notices.
    pub destinations: Vec<crate::config::Destination>,
    /// Held while leads are refreshed or written, so a status a person sets is never
    /// overwritten by a refresh that read the lead before.
    pub leads_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The console's users.
    pub users: std::sync::Arc<crate::console::directory::Directory>,
    /// The adapters (the console's quarantine retry maps a record again with its adapter).
    pub adapters: Vec<crate::ingest::Adapter>,
    /// The quarterly statistics settings (the console's report status).
    pub reports: crate::config::ReportsConfig,
    /// Leadership among the instances sharing the store (`/healthz` names the leader).
    pub leader: crate::store::Leadership,
}

/// Serves the port API on `listener` until `shutdown`; returns when every connection has
/// ended (see [`serve_tls`]).
pub async fn serve(
    services: ApiServices,
    listener: tokio::net::TcpListener,
    tls: std::sync::Arc<crate::tls::ServerTls>,
    shutdown: crate::shutdown::Shutdown,
) {
    let limits = services.server.limits.clone();
    let router = routes::router(std::sync::Arc::new(services));
    serve_tls(
        listener,
        move || tls.acceptor(),
        shutdown,
        limits,
        router,
        |cert, addr| std::sync::Arc::new(Peer::of(cert, addr)),
    )
    .await;
}
