//! What a port API connection tells its routes about the client ([`Peer`]). The serving loop
//! itself (TLS handshakes, HTTP/1.1, connection limits, body deadlines) is shared with the
//! simulator and lives in `xianjie_net::serve`; its pieces are re-exported here.

use std::net::SocketAddr;
use std::sync::Arc;

pub use xianjie_net::serve::{ConnLimits, DropConnection, body_timeout, media_type, serve_tls};

/// What the connection tells the routes about its client.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// SHA-256 of the client certificate, hex (for pinned clients).
    pub fingerprint: Option<String>,
    /// RFC 8705 thumbprint of the client certificate (for bound tokens).
    pub x5t_s256: Option<String>,
    /// The client certificate (DER), for subject rules.
    pub certificate: Option<Arc<Vec<u8>>>,
    /// The remote address.
    pub addr: Option<SocketAddr>,
}

impl Peer {
    /// The peer of a connection that presented `cert` (DER) from `addr`.
    pub fn of(cert: Option<Vec<u8>>, addr: SocketAddr) -> Self {
        Peer {
            fingerprint: cert.as_deref().map(crate::tls::fingerprint),
            x5t_s256: cert.as_deref().map(super::jwt::x5t_s256),
            certificate: cert.map(Arc::new),
            addr: Some(addr),
        }
    }
}
