//! The HTTPS listener of the port API: TLS handshakes (with a deadline), HTTP/1.1 with keep-alive,
//! header and body limits and a header-read timeout, so a slow or oversized client costs little.
//! Each connection carries the client certificate it presented, for pinned clients and
//! certificate-bound tokens.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tracing::debug;

use super::routes;
use crate::gateway::Gateway;
use crate::tls::ServerTls;

/// Handshake deadline: a client that does not finish its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers).
const MAX_HEAD: usize = 64 * 1024;

/// What the connection tells the routes about its client.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// SHA-256 of the client certificate, hex (for pinned clients).
    pub fingerprint: Option<String>,
    /// RFC 8705 thumbprint of the client certificate (for bound tokens).
    pub x5t_s256: Option<String>,
    /// The remote address.
    pub addr: Option<std::net::SocketAddr>,
}

/// Serves the port API on `listener` until shutdown.
pub async fn serve(
    gw: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    tls: Arc<ServerTls>,
) -> std::io::Result<()> {
    let state = Arc::new(routes::ApiState::new(&gw));
    loop {
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = gw.shutdown.wait() => return Ok(()),
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = tls.acceptor();
        let gw = gw.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    debug!(%addr, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%addr, "TLS handshake timed out");
                    return;
                }
            };
            let cert = crate::tls::peer_certificate(&stream);
            let peer = Arc::new(Peer {
                fingerprint: cert.as_deref().map(crate::tls::fingerprint),
                x5t_s256: cert.as_deref().map(super::jwt::x5t_s256),
                addr: Some(addr),
            });
            let svc = hyper::service::service_fn(move |req| {
                let gw = gw.clone();
                let state = state.clone();
                let peer = peer.clone();
                async move { Ok::<_, Infallible>(routes::handle(gw, state, peer, req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                debug!(%addr, error = %e, "connection ended");
            }
        });
    }
}
