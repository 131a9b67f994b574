//! The HTTPS client that POSTs packages: one TLS connection per package (a connection reset
//! loses at most the receipt of one package), a deadline on the whole exchange, and the answer
//! reduced to what the delivery worker decides on — status, `Retry-After`, body.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

/// Largest receipt read.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// Why no answer arrived. Every variant is a transient, network-level failure to the worker.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The URL is not `https://host[:port]/path`.
    #[error("destination URL {0:?} is not https://host[:port]/path")]
    Url(String),
    /// TCP connect failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// host:port.
        addr: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// TLS handshake failed (certificate not trusted, wrong name, ...).
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls {
        /// host:port.
        addr: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// HTTP exchange failed (connection reset, malformed response, ...).
    #[error("HTTP exchange with {addr} failed: {reason}")]
    Http {
        /// host:port.
        addr: String,
        /// What happened.
        reason: String,
    },
    /// The whole exchange took longer than the destination's timeout.
    #[error("no answer from {addr} within {secs} s")]
    Timeout {
        /// host:port.
        addr: String,
        /// The timeout.
        secs: u64,
    },
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After`, when given (seconds or an HTTP date).
    pub retry_after: Option<Duration>,
    /// The body.
    pub body: Bytes,
}

/// Host, port and path of an https URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    host: String,
    port: u16,
    path: String,
}

impl Target {
    /// Parses `https://host[:port]/path` (IPv6 hosts in brackets).
    pub fn parse(url: &str) -> Result<Self, SendError> {
        let bad = || SendError::Url(url.to_string());
        let rest = url.strip_prefix("https://").ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') || authority.is_empty() {
            return Err(bad());
        }
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            let (h, after) = h.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => 443,
                None => return Err(bad()),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
                None => (authority.to_string(), 443),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            host,
            port,
            path: path.to_string(),
        })
    }

    fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// POSTs `body` to `target` with `headers`, trusting `tls`; the whole exchange must finish within
/// `timeout`.
pub async fn post(
    tls: &Arc<ClientConfig>,
    target: &Target,
    headers: &[(&str, String)],
    body: Bytes,
    timeout: Duration,
) -> Result<Answer, SendError> {
    let addr = target.addr();
    match tokio::time::timeout(timeout, exchange(tls, target, &addr, headers, body)).await {
        Ok(r) => r,
        Err(_) => Err(SendError::Timeout {
            addr,
            secs: timeout.as_secs(),
        }),
    }
}

async fn exchange(
    tls: &Arc<ClientConfig>,
    target: &Target,
    addr: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<Answer, SendError> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| SendError::Connect {
            addr: addr.to_string(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(target.host.clone()).map_err(|e| SendError::Tls {
        addr: addr.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
    })?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|source| SendError::Tls {
            addr: addr.to_string(),
            source,
        })?;
    let http = |e: hyper::Error| SendError::Http {
        addr: addr.to_string(),
        reason: e.to_string(),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    let driver = tokio::spawn(conn);
    let mut req = hyper::Request::post(target.path.as_str())
        .header("host", target.addr())
        .header("content-type", "application/xml; charset=utf-8")
        .header("user-agent", concat!("xianjie/", env!("CARGO_PKG_VERSION")));
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req.body(Full::new(body)).map_err(|e| SendError::Http {
        addr: addr.to_string(),
        reason: e.to_string(),
    })?;
    let resp = sender.send_request(req).await.map_err(http)?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| SendError::Http {
            addr: addr.to_string(),
            reason: format!("response body: {e}"),
        })?
        .to_bytes();
    driver.abort();
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// `Retry-After`: delta-seconds, or an HTTP date (RFC 9110 §10.2.3).
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t = Target::parse("https://127.0.0.1:9443/packages").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 9443, "/packages")
        );
        let t = Target::parse("https://platform.example").unwrap();
        assert_eq!((t.port, t.path.as_str()), (443, "/"));
        let t = Target::parse("https://[::1]:8443/p?q=1").unwrap();
        assert_eq!((t.host.as_str(), t.addr()), ("::1", "[::1]:8443".into()));
        for bad in [
            "http://x/",
            "https://",
            "https://:80/",
            "https://u:p@x/",
            "https://x:port/",
            "https://[::1/",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
