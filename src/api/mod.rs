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
pub mod xml;

pub use routes::paths;
pub use server::{ConnLimits, DropConnection, Peer, media_type, serve_tls};

/// Serves the port API on `listener` until shutdown, under `limits`; returns when every
/// connection has ended (see [`serve_tls`]).
pub async fn serve(
    gw: std::sync::Arc<crate::gateway::Gateway>,
    listener: tokio::net::TcpListener,
    tls: std::sync::Arc<crate::tls::ServerTls>,
    limits: ConnLimits,
) {
    let shutdown = gw.shutdown.clone();
    let router = routes::router(gw);
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
