//! The HTTPS serving loop of the port API and the simulator: TLS handshakes under a deadline,
//! HTTP/1.1 with keep-alive serving an axum [`Router`], and the limits that keep a slow or greedy
//! client cheap — caps on connections (in all and per peer address), header, idle and body
//! deadlines, a minimum body rate. Connection tasks are tracked, so that a stop waits for the
//! requests in flight (up to a grace deadline) and then for nothing else.

use std::collections::HashMap;
use std::future::Future as _;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::Request;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinSet;
use tower::ServiceExt;
use tracing::debug;

use crate::shutdown::Shutdown;

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

/// A response carrying this extension is not sent: its connection is dropped instead (the
/// simulator's fault injection uses it to imitate a peer that resets).
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// The limits of one listener (`[server]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnLimits {
    /// A client that does not finish its TLS handshake by then is dropped.
    pub handshake: Duration,
    /// Deadline for a request's head (request line and headers).
    pub header: Duration,
    /// A keep-alive connection with no traffic for this long is closed (requests in flight
    /// finish first).
    pub idle: Duration,
    /// Deadline for reading a whole request body.
    pub body: Duration,
    /// After the first [`BODY_GRACE`], a body must arrive at least this fast (bytes per second).
    pub body_min_rate: u64,
    /// Connections open at once, in all.
    pub max_connections: usize,
    /// Connections open at once from one address.
    pub max_per_peer: usize,
    /// At a stop, how long requests in flight may take to finish.
    pub grace: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            handshake: Duration::from_secs(10),
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            body: Duration::from_secs(30),
            body_min_rate: 1024,
            max_connections: 1024,
            max_per_peer: 128,
            grace: Duration::from_secs(10),
        }
    }
}

/// Largest request head (request line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// How long a body may take before the minimum rate applies.
pub const BODY_GRACE: Duration = Duration::from_secs(5);

/// Counts connections per peer address; a slot is given back when its guard drops.
#[derive(Default)]
struct PeerCounts(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`PeerCounts`].
struct PeerSlot {
    counts: Arc<PeerCounts>,
    ip: IpAddr,
}

impl PeerCounts {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PeerSlot> {
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut m = (self.counts.0.lock()).unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Accepts TLS connections on `listener` until `shutdown` and serves each with `router` over
/// HTTP/1.1 under `limits`. `acceptor` is asked per connection (so a reloaded certificate
/// applies to new ones); `ext` makes, from the client certificate a connection presented (DER)
/// and its address, the value every request of that connection carries as an extension.
///
/// A connection over a cap is closed at once. At shutdown the listener stops accepting, every
/// connection finishes the request it is serving (idle ones close), and the call returns when
/// all have ended or `limits.grace` has passed (the rest are cut): after it returns, no request
/// of this listener runs any more.
pub async fn serve_tls<E>(
    listener: tokio::net::TcpListener,
    acceptor: impl Fn() -> tokio_rustls::TlsAcceptor,
    shutdown: Shutdown,
    limits: ConnLimits,
    router: Router,
    ext: impl Fn(Option<Vec<u8>>, SocketAddr) -> E + Send + Sync + 'static,
) where
    E: Clone + Send + Sync + 'static,
{
    let ext = Arc::new(ext);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let peers = Arc::new(PeerCounts::default());
    let mut tasks = JoinSet::new();
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
            _ = shutdown.wait() => break,
        };
        // Reap what has ended, so the set holds only live connections.
        while tasks.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(%addr, "connection refused: the connection cap is reached");
            continue;
        };
        let Some(peer_slot) = peers.take(addr.ip(), limits.max_per_peer) else {
            debug!(%addr, "connection refused: the per-address cap is reached");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, ext, router) = (acceptor(), ext.clone(), router.clone());
        let (shutdown, limits) = (shutdown.clone(), limits.clone());
        tasks.spawn(async move {
            let _held = (slot, peer_slot);
            let stream = match tokio::time::timeout(limits.handshake, acceptor.accept(tcp)).await {
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
            let e = ext(crate::tls::peer_certificate(&stream), addr);
            serve_connection(stream, router, e, &limits, &shutdown, addr).await;
        });
    }
    drop(listener);
    let grace = tokio::time::sleep(limits.grace);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            r = tasks.join_next() => if r.is_none() { break },
            _ = &mut grace => {
                debug!(left = tasks.len(), "grace deadline passed; cutting the connections left");
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
}

/// Serves one connection until it ends, is idle for `limits.idle`, or the stop comes.
async fn serve_connection<S, E>(
    stream: S,
    router: Router,
    ext: E,
    limits: &ConnLimits,
    shutdown: &Shutdown,
    addr: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    E: Clone + Send + Sync + 'static,
{
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let io = Activity {
        inner: stream,
        started,
        last: last.clone(),
    };
    let (body_deadline, min_rate) = (limits.body, limits.body_min_rate);
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ext.clone());
        let req = req.map(|b| axum::body::Body::new(TimedBody::new(b, body_deadline, min_rate)));
        let router = router.clone();
        async move {
            let Ok(resp) = router.oneshot(req).await;
            if resp.extensions().get::<DropConnection>().is_some() {
                return Err(DropConnection);
            }
            Ok(resp)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let idle = limits.idle;
    let ended = loop {
        let quiet_since = started + Duration::from_millis(last.load(Ordering::Relaxed));
        tokio::select! {
            r = conn.as_mut() => break r,
            _ = shutdown.wait() => {
                conn.as_mut().graceful_shutdown();
                break conn.as_mut().await;
            }
            _ = tokio::time::sleep_until((quiet_since + idle).into()) => {
                let now = started + Duration::from_millis(last.load(Ordering::Relaxed));
                if now + idle <= Instant::now() {
                    // No traffic for the idle time: a request in flight still finishes.
                    debug!(%addr, "idle connection closed");
                    conn.as_mut().graceful_shutdown();
                    break conn.as_mut().await;
                }
            }
        }
    };
    if let Err(e) = ended {
        debug!(%addr, error = %e, "connection ended");
    }
}

/// A stream that notes when bytes last went either way (milliseconds since `started`).
struct Activity<S> {
    inner: S,
    started: Instant,
    last: Arc<AtomicU64>,
}

impl<S> Activity<S> {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Activity<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Activity<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

/// Why a request body stopped: it took too long in all, or arrived too slowly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BodyTimeout(pub String);

/// Finds a [`BodyTimeout`] in the error a body read returned.
pub fn body_timeout<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyTimeout> {
    let mut e: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(x) = e {
        if let Some(t) = x.downcast_ref::<BodyTimeout>() {
            return Some(t);
        }
        e = x.source();
    }
    None
}

/// A request body held to a total deadline and, after [`BODY_GRACE`], a minimum rate: a client
/// that sends one byte every few seconds is cut off instead of holding the connection.
pub struct TimedBody {
    inner: Incoming,
    started: tokio::time::Instant,
    deadline: Duration,
    min_rate: u64,
    received: u64,
    timer: Pin<Box<tokio::time::Sleep>>,
    done: bool,
}

impl TimedBody {
    fn new(inner: Incoming, deadline: Duration, min_rate: u64) -> Self {
        let started = tokio::time::Instant::now();
        let mut b = TimedBody {
            inner,
            started,
            deadline,
            min_rate,
            received: 0,
            timer: Box::pin(tokio::time::sleep_until(started + deadline)),
            done: false,
        };
        b.rearm();
        b
    }

    /// When the body next falls short: at its deadline, or when what has arrived no longer
    /// meets the minimum rate.
    fn due(&self) -> tokio::time::Instant {
        let total = self.started + self.deadline;
        if self.min_rate == 0 {
            return total;
        }
        let allowed = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        (self.started + BODY_GRACE + allowed).min(total)
    }

    fn rearm(&mut self) {
        let due = self.due();
        self.timer.as_mut().reset(due);
    }
}

impl Body for TimedBody {
    type Data = hyper::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    self.received += d.len() as u64;
                    self.rearm();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if self.timer.as_mut().poll(cx).is_ready() {
                    self.done = true;
                    let elapsed = self.started.elapsed();
                    let why = if elapsed >= self.deadline {
                        format!(
                            "the request body was not complete after {} s",
                            self.deadline.as_secs()
                        )
                    } else {
                        format!(
                            "the request body arrived at less than {} bytes per second ({} bytes in {} s)",
                            self.min_rate,
                            self.received,
                            elapsed.as_secs()
                        )
                    };
                    return Poll::Ready(Some(Err(Box::new(BodyTimeout(why)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_peer_slots_are_counted_and_given_back() {
        let counts = Arc::new(PeerCounts::default());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = counts.take(ip, 2).unwrap();
        let _b = counts.take(ip, 2).unwrap();
        assert!(counts.take(ip, 2).is_none(), "the third is over the cap");
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(
            counts.take(other, 2).is_some(),
            "another address has its own count"
        );
        drop(a);
        assert!(
            counts.take(ip, 2).is_some(),
            "a slot given back is taken again"
        );
    }
}
