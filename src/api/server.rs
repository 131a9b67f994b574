//! The HTTPS listener of the port API: TLS handshakes (with a deadline), HTTP/1.1 with keep-alive,
//! header and body limits and a header-read timeout, so a slow or oversized client costs little.
//! Each connection carries the client certificate it presented, for pinned clients and
//! certificate-bound tokens.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tracing::debug;

use super::routes;
use crate::gateway::Gateway;
use crate::shutdown::Shutdown;
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

/// The media type of a request's `Content-Type`, lowercase, without parameters.
pub fn media_type(headers: &hyper::HeaderMap) -> Option<String> {
    headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Accepts TLS connections on `listener` until `shutdown` and serves each with HTTP/1.1 under
/// the limits above: a handshake deadline (a slow client is dropped), a header-read timeout and a
/// bounded request head. `acceptor` is asked per connection (so a reloaded certificate applies to
/// new ones); `service` makes a connection's service from the client certificate it presented
/// (DER) and its address. At shutdown, connections finish the request in progress.
pub async fn serve_tls<S, B>(
    listener: tokio::net::TcpListener,
    acceptor: impl Fn() -> tokio_rustls::TlsAcceptor,
    shutdown: Shutdown,
    service: impl Fn(Option<Vec<u8>>, SocketAddr) -> S + Send + Sync + 'static,
) where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = Arc::new(service);
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
            _ = shutdown.wait() => return,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor();
        let (service, shutdown) = (service.clone(), shutdown.clone());
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
            let svc = service(crate::tls::peer_certificate(&stream), addr);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                _ = shutdown.wait() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                debug!(%addr, error = %e, "connection ended");
            }
        });
    }
}

/// Serves the port API on `listener` until shutdown.
pub async fn serve(gw: Arc<Gateway>, listener: tokio::net::TcpListener, tls: Arc<ServerTls>) {
    let state = Arc::new(routes::ApiState::new(&gw));
    let shutdown = gw.shutdown.clone();
    serve_tls(
        listener,
        move || tls.acceptor(),
        shutdown,
        move |cert, addr| {
            let peer = Arc::new(Peer {
                fingerprint: cert.as_deref().map(crate::tls::fingerprint),
                x5t_s256: cert.as_deref().map(super::jwt::x5t_s256),
                addr: Some(addr),
            });
            let (gw, state) = (gw.clone(), state.clone());
            hyper::service::service_fn(move |req| {
                let (gw, state, peer) = (gw.clone(), state.clone(), peer.clone());
                async move { Ok::<_, Infallible>(routes::handle(gw, state, peer, req).await) }
            })
        },
    )
    .await
}
