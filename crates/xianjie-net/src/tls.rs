//! TLS: the only place in the product that configures rustls.
//!
//! It owns loading and checking the server certificate, key and client CA bundle, the one
//! server configuration (TLS 1.3 and 1.2, ALPN `http/1.1`, ring as the crypto provider), the
//! client certificate policy ([`ClientAuth`]), replacing the server certificate at run time
//! (SIGHUP) without dropping connections, certificate fingerprints for pinning a client to its
//! certificate, and the client configuration used by tests and by outgoing connections.
//!
//! Client certificate revocation lists (CRLs) and OCSP are out of scope: a client is revoked by
//! removing it (and its pinned fingerprint) from the gateway, not through the PKI.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, InconsistentKeys, RootCertStore, ServerConfig, SignatureScheme,
    SupportedProtocolVersion,
};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// The protocol versions every configuration offers, newest first.
const PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The only application protocol the gateway speaks; advertised so that a client offering
/// ALPN (for example `h2` only) fails at the handshake instead of at the first request.
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// Client certificate policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Every client must present a certificate issued by the client CA bundle.
    Required,
    /// A client may present a certificate; if it does, it must be issued by the client CA
    /// bundle. Clients without one are let through to authenticate some other way.
    Optional,
    /// Client certificates are not requested.
    Off,
}

impl ClientAuth {
    /// The configuration spelling: `required`, `optional` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Required => "required",
            ClientAuth::Optional => "optional",
            ClientAuth::Off => "off",
        }
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientAuth {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "required" => Ok(ClientAuth::Required),
            "optional" => Ok(ClientAuth::Optional),
            "off" => Ok(ClientAuth::Off),
            other => Err(TlsError::InvalidClientAuth {
                value: other.to_owned(),
            }),
        }
    }
}

/// Where the server's certificate, key and client CA bundle are.
#[derive(Debug, Clone)]
pub struct ServerTlsFiles {
    /// PEM certificate chain: the server (leaf) certificate first, then any intermediates.
    pub cert: PathBuf,
    /// PEM private key of the leaf certificate (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// PEM bundle of the CA certificates that issue client certificates; needed unless
    /// `client_auth` is [`ClientAuth::Off`].
    pub client_ca: Option<PathBuf>,
    /// Whether clients must, may or need not present a certificate.
    pub client_auth: ClientAuth,
}

/// A TLS setup problem. Each message names the file, what is wrong with it and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be opened or read.
    #[error(
        "{what} {}: cannot read: {source}; check the path and that the gateway's user may read it",
        path.display()
    )]
    Read {
        /// What the file is for (`server certificate`, `client CA bundle`, ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not well-formed PEM.
    #[error(
        "{what} {}: malformed PEM ({reason}); the file must hold -----BEGIN ...----- / \
         -----END ...----- blocks of base64",
        path.display()
    )]
    Pem {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the PEM parser found wrong.
        reason: String,
    },
    /// A certificate file holds no certificate.
    #[error(
        "{what} {}: no PEM certificate found; expected one or more -----BEGIN CERTIFICATE----- \
         blocks",
        path.display()
    )]
    NoCertificate {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A key file holds no private key.
    #[error(
        "{what} {}: no PEM private key found; expected a -----BEGIN PRIVATE KEY-----, \
         -----BEGIN EC PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY----- block",
        path.display()
    )]
    NoKey {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A private key is of a type or size that cannot sign handshakes.
    #[error(
        "{what} {}: unsupported private key ({reason}); use an ECDSA P-256 or P-384, Ed25519, \
         or RSA (2048 bits or more) key",
        path.display()
    )]
    UnsupportedKey {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why rustls refused it.
        reason: String,
    },
    /// The private key is not the one the leaf certificate was issued for.
    #[error(
        "{what} {}: key does not match the certificate {}: its public key differs from the \
         first (leaf) certificate's; use the key the certificate was issued for, and put the \
         leaf certificate first in the chain file",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// What the key is for (`server key`, `client key`).
        what: &'static str,
        /// The certificate chain file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// Whether the key matches the certificate could not be determined.
    #[error(
        "{what} {}: cannot check the key against the certificate {} ({reason}); make sure the \
         first certificate in that file is a valid X.509 certificate",
        key.display(),
        cert.display()
    )]
    KeyCheck {
        /// What the key is for.
        what: &'static str,
        /// The certificate chain file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why the check failed.
        reason: String,
    },
    /// Client certificates are wanted but no CA bundle says who may issue them.
    #[error(
        "client_auth = {client_auth} needs a client CA bundle (server.client_ca): set it to the \
         PEM file of the CA certificates that issue client certificates, or set \
         client_auth = \"off\""
    )]
    ClientCaMissing {
        /// The configured policy.
        client_auth: ClientAuth,
    },
    /// A certificate in a CA bundle cannot be used as a trust anchor.
    #[error(
        "{what} {}: certificate #{index} cannot be used as a trust anchor ({reason}); the \
         bundle must hold only valid CA certificates",
        path.display()
    )]
    BadTrustAnchor {
        /// What the bundle is for.
        what: &'static str,
        /// The bundle.
        path: PathBuf,
        /// 1-based position of the certificate in the bundle.
        index: usize,
        /// Why it was refused.
        reason: String,
    },
    /// The client certificate verifier could not be built from the CA bundle.
    #[error(
        "client CA bundle {}: cannot verify client certificates with it ({reason}); the bundle \
         must hold the CA certificates that issue client certificates",
        path.display()
    )]
    Verifier {
        /// The bundle.
        path: PathBuf,
        /// Why rustls refused it.
        reason: String,
    },
    /// rustls refused the configuration itself (a bug rather than a file problem).
    #[error("TLS configuration refused by rustls: {reason}; this is a bug, please report it")]
    Config {
        /// Why rustls refused it.
        reason: String,
    },
    /// A `client_auth` value other than the three known ones.
    #[error("invalid client_auth {value:?}: expected \"required\", \"optional\" or \"off\"")]
    InvalidClientAuth {
        /// The value given.
        value: String,
    },
}

/// Loads and checks everything in `files` and builds the server configuration.
///
/// Checks that the certificate chain parses, that the key parses and matches the leaf, and,
/// unless client auth is off, that the client CA bundle holds at least one usable CA. Every
/// problem found is returned, so the gateway can refuse to start with all reasons listed.
///
/// Reads the files synchronously; they are small, so this is fine to call at start-up.
pub fn load_server(files: &ServerTlsFiles) -> Result<ServerTls, Vec<TlsError>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut problems = Vec::new();

    let key = load_certified_key(&files.cert, &files.key, "server certificate", "server key")
        .map_err(|mut p| problems.append(&mut p))
        .ok();
    let verifier = client_verifier(files, &provider)
        .map_err(|p| problems.push(p))
        .ok();

    let (Some(key), Some(verifier)) = (key, verifier) else {
        return Err(problems);
    };

    let resolver = Arc::new(ReloadableCert {
        current: RwLock::new(Arc::new(key)),
    });
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| vec![config_error(&e)])?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];

    Ok(ServerTls {
        files: files.clone(),
        resolver,
        config: Arc::new(config),
    })
}

/// A loaded server TLS setup whose certificate can be replaced at run time (SIGHUP) without
/// dropping connections.
///
/// The rustls configuration asks a resolver for the certificate on every handshake, and the
/// resolver hands out whatever was loaded last: new handshakes get the new certificate, while
/// established connections keep the one they were set up with.
#[derive(Debug)]
pub struct ServerTls {
    files: ServerTlsFiles,
    resolver: Arc<ReloadableCert>,
    config: Arc<ServerConfig>,
}

impl ServerTls {
    /// An acceptor for the one server configuration: TLS 1.3 and 1.2, ALPN `http/1.1`, client
    /// certificates as configured. Every acceptor shares the reloadable certificate.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }

    /// Reloads the certificate and key from the same files; on any error keeps the old ones
    /// and returns the errors.
    ///
    /// The client CA bundle and client auth policy are fixed at [`load_server`]: changing them
    /// changes who may connect, which needs a restart.
    pub fn reload(&self) -> Result<(), Vec<TlsError>> {
        let key = load_certified_key(
            &self.files.cert,
            &self.files.key,
            "server certificate",
            "server key",
        )?;
        let leaf = key.cert.first().map(|c| fingerprint(c)).unwrap_or_default();
        self.resolver.replace(Arc::new(key));
        tracing::info!(
            cert = %self.files.cert.display(),
            sha256 = %leaf,
            "server certificate reloaded; new connections use it"
        );
        Ok(())
    }

    /// The client certificate policy this setup was loaded with.
    pub fn client_auth(&self) -> ClientAuth {
        self.files.client_auth
    }
}

/// Hands every handshake the most recently loaded certificate and key.
#[derive(Debug)]
struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    fn replace(&self, key: Arc<CertifiedKey>) {
        // A poisoned lock only means a panic elsewhere while holding it; the value is a
        // single Arc, which is always whole, so keep using it.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = key;
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// SHA-256 of a DER certificate, lowercase hex (for pinning a client to its certificate).
///
/// Equals `openssl x509 -in CERT.pem -outform DER | sha256sum`.
pub fn fingerprint(cert_der: &[u8]) -> String {
    hex::encode(Sha256::digest(cert_der))
}

/// The names a certificate (DER) gives its subject: its common names, and the DNS names and
/// URIs of its subject alternative names. Empty when it cannot be parsed. Used to bind an API
/// client to its certificate by name.
pub fn certificate_names(der: &[u8]) -> Vec<String> {
    use x509_cert::der::asn1::ObjectIdentifier;
    use x509_cert::der::{Decode, Tag, Tagged};
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
    let Ok(cert) = x509_cert::Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for rdn in cert.tbs_certificate.subject.0.iter() {
        for atv in rdn.0.iter() {
            let text = matches!(
                atv.value.tag(),
                Tag::Utf8String | Tag::PrintableString | Tag::Ia5String
            );
            if atv.oid == COMMON_NAME
                && text
                && let Ok(s) = std::str::from_utf8(atv.value.value())
            {
                names.push(s.to_string());
            }
        }
    }
    if let Ok(Some((_, san))) = cert.tbs_certificate.get::<SubjectAltName>() {
        for n in san.0 {
            if let GeneralName::DnsName(s) | GeneralName::UniformResourceIdentifier(s) = n {
                names.push(s.to_string());
            }
        }
    }
    names
}

/// The peer's leaf certificate (DER) of an accepted connection, if it presented one.
///
/// With client auth required or optional, a certificate returned here has already been
/// verified against the client CA bundle.
pub fn peer_certificate<IO>(conn: &tokio_rustls::server::TlsStream<IO>) -> Option<Vec<u8>> {
    conn.get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| leaf.to_vec())
}

/// A client configuration (for tests and for outgoing connections): trusts only the
/// certificates in the `ca` PEM bundle and, with `identity` = `(cert, key)` PEM files,
/// presents that client certificate. TLS 1.3 and 1.2, ALPN `http/1.1`.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    client_config_with_versions(ca, identity, PROTOCOL_VERSIONS)
}

/// The client side of a connection to the database (the PostgreSQL backend): as
/// [`client_config`], the server checked against `ca`, presenting `identity` when given, with
/// PostgreSQL's ALPN name instead of HTTP's.
pub fn database_client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = (*client_config(ca, identity)?).clone();
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Arc::new(config))
}

/// [`client_config`] restricted to some protocol versions (tests check each version alone).
fn client_config_with_versions(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = load_roots(ca, "server CA bundle")?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| config_error(&e))?
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            // Only the first problem fits the signature; the client side is for tests and
            // tools, where one message at a time is enough.
            let key = load_certified_key(cert, key, "client certificate", "client key")
                .map_err(|problems| problems.into_iter().next())
                .map_err(|first| {
                    first.unwrap_or_else(|| TlsError::Config {
                        reason: "client identity refused without a reason".to_owned(),
                    })
                })?;
            builder.with_client_cert_resolver(Arc::new(FixedClientCert(Arc::new(key))))
        }
    };
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Arc::new(config))
}

/// Presents one already-checked certificate and key whenever the server asks for one.
#[derive(Debug)]
struct FixedClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for FixedClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Builds the client certificate verifier for the policy in `files`; `None` when client
/// certificates are not requested.
fn client_verifier(
    files: &ServerTlsFiles,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, TlsError> {
    if files.client_auth == ClientAuth::Off {
        if let Some(ca) = &files.client_ca {
            // Only debug: the configuration fills in a default bundle path whether or not one
            // was written, so this is not necessarily a mistake.
            tracing::debug!(
                client_ca = %ca.display(),
                "client_auth = \"off\": client certificates are not requested and the client CA \
                 bundle is not read"
            );
        }
        return Ok(None);
    }
    let Some(path) = &files.client_ca else {
        return Err(TlsError::ClientCaMissing {
            client_auth: files.client_auth,
        });
    };
    let roots = load_roots(path, "client CA bundle")?;
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    // No `.with_crls(...)`: revocation lists are out of scope (see the module comment).
    let builder = match files.client_auth {
        ClientAuth::Optional => builder.allow_unauthenticated(),
        ClientAuth::Required | ClientAuth::Off => builder,
    };
    builder.build().map(Some).map_err(|e| TlsError::Verifier {
        path: path.clone(),
        reason: e.to_string(),
    })
}

/// Loads a certificate chain and its key and checks that they belong together. Reports the
/// problems of both files at once.
fn load_certified_key(
    cert: &Path,
    key: &Path,
    cert_what: &'static str,
    key_what: &'static str,
) -> Result<CertifiedKey, Vec<TlsError>> {
    let chain = read_certs(cert, cert_what);
    let signing_key = read_key(key, key_what).and_then(|der| {
        rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| TlsError::UnsupportedKey {
            what: key_what,
            path: key.to_path_buf(),
            reason: e.to_string(),
        })
    });
    let (chain, signing_key) = match (chain, signing_key) {
        (Ok(chain), Ok(signing_key)) => (chain, signing_key),
        (chain, signing_key) => {
            return Err([chain.err(), signing_key.err()]
                .into_iter()
                .flatten()
                .collect());
        }
    };

    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(vec![TlsError::KeyMismatch {
                what: key_what,
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            }])
        }
        Err(e) => Err(vec![TlsError::KeyCheck {
            what: key_what,
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason: e.to_string(),
        }]),
    }
}

/// Reads every certificate in a PEM file; at least one is required.
fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(e, path, what))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Reads the first private key in a PEM file.
fn read_key(path: &Path, what: &'static str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            what,
            path: path.to_path_buf(),
        },
        other => pem_error(other, path, what),
    })
}

/// Reads a CA bundle into a root store, refusing an empty bundle and unusable certificates.
fn load_roots(path: &Path, what: &'static str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in read_certs(path, what)?.into_iter().enumerate() {
        roots.add(cert).map_err(|e| TlsError::BadTrustAnchor {
            what,
            path: path.to_path_buf(),
            index: i + 1,
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

fn pem_error(e: pem::Error, path: &Path, what: &'static str) -> TlsError {
    match e {
        pem::Error::Io(source) => TlsError::Read {
            what,
            path: path.to_path_buf(),
            source,
        },
        other => TlsError::Pem {
            what,
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

fn config_error(e: &rustls::Error) -> TlsError {
    TlsError::Config {
        reason: e.to_string(),
    }
}

/// Loopback client and server helpers shared by the TLS and certificate tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::net::SocketAddr;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;

    use super::{ClientAuth, ServerTls, ServerTlsFiles, peer_certificate};

    /// Bounds every network step so a broken handshake fails the test instead of hanging it.
    pub(crate) const STEP: Duration = Duration::from_secs(10);

    /// What the server saw of one connection: the client's leaf certificate, or why the
    /// handshake failed.
    pub(crate) type Outcome = Result<Option<Vec<u8>>, String>;

    /// Server files of a `xianjie_devca::generate_dev` directory.
    pub(crate) fn dev_files(dir: &Path, client_auth: ClientAuth) -> ServerTlsFiles {
        ServerTlsFiles {
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
            client_ca: Some(dir.join("ca.pem")),
            client_auth,
        }
    }

    /// The first certificate of a PEM file, as DER.
    pub(crate) fn cert_der(path: &Path) -> Vec<u8> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        CertificateDer::from_pem_file(path).unwrap().to_vec()
    }

    /// Starts an echo server on 127.0.0.1 (port 0); each connection's outcome is sent on the
    /// returned channel.
    pub(crate) async fn serve(tls: &ServerTls) -> (SocketAddr, mpsc::UnboundedReceiver<Outcome>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tls.acceptor();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut conn = match acceptor.accept(tcp).await {
                        Ok(conn) => conn,
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(peer_certificate(&conn)));
                    let mut buf = [0u8; 64];
                    while let Ok(n @ 1..) = conn.read(&mut buf).await {
                        if conn.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (addr, rx)
    }

    /// The server's verdict on the next connection.
    pub(crate) async fn outcome(rx: &mut mpsc::UnboundedReceiver<Outcome>) -> Outcome {
        tokio::time::timeout(STEP, rx.recv())
            .await
            .expect("server reported no outcome in time")
            .expect("server task ended")
    }

    /// Connects to `addr` as `localhost` with `config`.
    pub(crate) async fn connect(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let step = async {
            let tcp = TcpStream::connect(addr).await?;
            tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
        };
        tokio::time::timeout(STEP, step).await?
    }

    /// Sends a few bytes and checks they come back.
    pub(crate) async fn ping(
        conn: &mut tokio_rustls::client::TlsStream<TcpStream>,
    ) -> std::io::Result<()> {
        let step = async {
            conn.write_all(b"ping").await?;
            conn.flush().await?;
            let mut back = [0u8; 4];
            conn.read_exact(&mut back).await?;
            if &back != b"ping" {
                return Err(std::io::Error::other("echo mismatch"));
            }
            Ok(())
        };
        tokio::time::timeout(STEP, step).await?
    }

    /// Connects and exchanges a few bytes; the first failure is returned.
    pub(crate) async fn connect_and_ping(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let mut conn = connect(addr, config).await?;
        ping(&mut conn).await?;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use rustls::ProtocolVersion;

    use super::testing::{cert_der, connect_and_ping, dev_files, outcome, serve};
    use super::*;
    use xianjie_devca::generate_dev;

    /// A development directory with the two clients the tests use.
    fn dev_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        generate_dev(
            dir.path(),
            &["procuratorate".to_owned(), "other".to_owned()],
            false,
        )
        .unwrap();
        dir
    }

    fn identity(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}-key.pem")),
        )
    }

    fn client(dir: &Path, name: Option<&str>) -> Arc<ClientConfig> {
        client_from(dir, dir, name)
    }

    /// A client trusting `ca_dir`'s CA and presenting `name`'s certificate from `id_dir`.
    fn client_from(ca_dir: &Path, id_dir: &Path, name: Option<&str>) -> Arc<ClientConfig> {
        let id = name.map(|n| identity(id_dir, n));
        client_config(
            &ca_dir.join("ca.pem"),
            id.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        )
        .unwrap()
    }

    fn server_leaf(conn: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> Vec<u8> {
        conn.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }

    #[test]
    fn client_auth_parses_and_prints() {
        for auth in [ClientAuth::Required, ClientAuth::Optional, ClientAuth::Off] {
            assert_eq!(auth.to_string().parse::<ClientAuth>().unwrap(), auth);
        }
        let err = "Required".parse::<ClientAuth>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid client_auth \"Required\": expected \"required\", \"optional\" or \"off\""
        );
    }

    #[test]
    fn fingerprint_is_lowercase_sha256_hex() {
        assert_eq!(
            fingerprint(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn required_accepts_a_client_certificate_and_reports_it() {
        let dir = dev_dir();
        let tls = load_server(&dev_files(dir.path(), ClientAuth::Required)).unwrap();
        assert_eq!(tls.client_auth(), ClientAuth::Required);
        let (addr, mut seen) = serve(&tls).await;

        let conn = connect_and_ping(addr, client(dir.path(), Some("procuratorate")))
            .await
            .unwrap();
        assert_eq!(conn.get_ref().1.alpn_protocol(), Some(ALPN_HTTP_1_1));
        let peer = outcome(&mut seen).await.unwrap().unwrap();
        assert_eq!(
            fingerprint(&peer),
            fingerprint(&cert_der(&dir.path().join("procuratorate.pem")))
        );
    }

    #[tokio::test]
    async fn required_refuses_a_client_without_certificate() {
        let dir = dev_dir();
        let tls = load_server(&dev_files(dir.path(), ClientAuth::Required)).unwrap();
        let (addr, mut seen) = serve(&tls).await;

        // TLS 1.3 finishes the client's side of the handshake before the server has looked at
        // the (missing) certificate, so the refusal may only show on the first read.
        assert!(
            connect_and_ping(addr, client(dir.path(), None))
                .await
                .is_err()
        );
        let refused = outcome(&mut seen).await.unwrap_err();
        assert!(refused.contains("no certificates"), "{refused}");

        // TLS 1.2 refuses during the handshake itself.
        let tls12 = client_config_with_versions(
            &dir.path().join("ca.pem"),
            None,
            &[&rustls::version::TLS12],
        )
        .unwrap();
        assert!(super::testing::connect(addr, tls12).await.is_err());
        let refused = outcome(&mut seen).await.unwrap_err();
        assert!(refused.contains("no certificates"), "{refused}");
    }

    #[tokio::test]
    async fn a_certificate_from_another_ca_is_refused_under_required_and_optional() {
        let dir = dev_dir();
        let foreign = dev_dir();
        for auth in [ClientAuth::Required, ClientAuth::Optional] {
            let tls = load_server(&dev_files(dir.path(), auth)).unwrap();
            let (addr, mut seen) = serve(&tls).await;
            let config = client_from(dir.path(), foreign.path(), Some("procuratorate"));
            assert!(
                connect_and_ping(addr, config).await.is_err(),
                "{auth}: foreign client certificate accepted"
            );
            // Both development CAs share a name, so the chain is built and the CA's signature
            // is what fails; a CA with another name would fail as UnknownIssuer instead.
            let refused = outcome(&mut seen).await.unwrap_err();
            assert!(
                refused.contains("invalid peer certificate"),
                "{auth}: {refused}"
            );
        }
    }

    #[tokio::test]
    async fn optional_lets_clients_without_certificate_through() {
        let dir = dev_dir();
        let tls = load_server(&dev_files(dir.path(), ClientAuth::Optional)).unwrap();
        let (addr, mut seen) = serve(&tls).await;

        connect_and_ping(addr, client(dir.path(), None))
            .await
            .unwrap();
        assert_eq!(outcome(&mut seen).await.unwrap(), None);

        connect_and_ping(addr, client(dir.path(), Some("other")))
            .await
            .unwrap();
        let peer = outcome(&mut seen).await.unwrap().unwrap();
        assert_eq!(peer, cert_der(&dir.path().join("other.pem")));
    }

    #[tokio::test]
    async fn off_serves_tls12_and_tls13_clients_without_certificates() {
        let dir = dev_dir();
        let mut files = dev_files(dir.path(), ClientAuth::Off);
        files.client_ca = None;
        let tls = load_server(&files).unwrap();
        let (addr, mut seen) = serve(&tls).await;

        connect_and_ping(addr, client(dir.path(), None))
            .await
            .unwrap();
        assert_eq!(outcome(&mut seen).await.unwrap(), None);

        let ca = dir.path().join("ca.pem");
        for (version, expected) in [
            (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
            (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
        ] {
            let config = client_config_with_versions(&ca, None, &[version]).unwrap();
            let conn = connect_and_ping(addr, config).await.unwrap();
            assert_eq!(conn.get_ref().1.protocol_version(), Some(expected));
            assert_eq!(outcome(&mut seen).await.unwrap(), None);
        }

        // A client certificate offered anyway is simply not asked for.
        connect_and_ping(addr, client(dir.path(), Some("procuratorate")))
            .await
            .unwrap();
        assert_eq!(outcome(&mut seen).await.unwrap(), None);
    }

    #[test]
    fn load_server_reports_every_problem_at_once() {
        let dir = dev_dir();
        let empty_ca = dir.path().join("empty-ca.pem");
        std::fs::write(&empty_ca, "").unwrap();
        let files = ServerTlsFiles {
            cert: dir.path().join("server.pem"),
            key: dir.path().join("missing-key.pem"),
            client_ca: Some(empty_ca.clone()),
            client_auth: ClientAuth::Required,
        };
        let problems = load_server(&files).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            matches!(&problems[0], TlsError::Read { what: "server key", path, .. }
                if *path == files.key),
            "{problems:?}"
        );
        assert!(
            matches!(&problems[1], TlsError::NoCertificate { what: "client CA bundle", path }
                if *path == empty_ca),
            "{problems:?}"
        );
        assert_eq!(
            problems[1].to_string(),
            format!(
                "client CA bundle {}: no PEM certificate found; expected one or more \
                 -----BEGIN CERTIFICATE----- blocks",
                empty_ca.display()
            )
        );
    }

    #[test]
    fn load_server_refuses_a_key_that_does_not_match_the_certificate() {
        let dir = dev_dir();
        let mut files = dev_files(dir.path(), ClientAuth::Required);
        files.key = dir.path().join("procuratorate-key.pem");
        let problems = load_server(&files).unwrap_err();
        assert!(
            matches!(
                problems.as_slice(),
                [TlsError::KeyMismatch {
                    what: "server key",
                    ..
                }]
            ),
            "{problems:?}"
        );
        assert!(
            problems[0]
                .to_string()
                .contains("does not match the certificate")
        );
    }

    #[test]
    fn load_server_needs_a_client_ca_unless_client_auth_is_off() {
        let dir = dev_dir();
        for auth in [ClientAuth::Required, ClientAuth::Optional] {
            let mut files = dev_files(dir.path(), auth);
            files.client_ca = None;
            let problems = load_server(&files).unwrap_err();
            assert!(
                matches!(problems.as_slice(), [TlsError::ClientCaMissing { client_auth }]
                    if *client_auth == auth),
                "{problems:?}"
            );
            assert!(problems[0].to_string().starts_with(&format!(
                "client_auth = {auth} needs a client CA bundle (server.client_ca)"
            )));
        }
    }

    #[test]
    fn load_server_explains_files_without_pem() {
        let dir = dev_dir();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let files = ServerTlsFiles {
            cert: junk.clone(),
            key: junk.clone(),
            client_ca: Some(dir.path().join("ca.pem")),
            client_auth: ClientAuth::Required,
        };
        let problems = load_server(&files).unwrap_err();
        assert!(
            matches!(
                problems.as_slice(),
                [
                    TlsError::NoCertificate {
                        what: "server certificate",
                        ..
                    },
                    TlsError::NoKey {
                        what: "server key",
                        ..
                    }
                ]
            ),
            "{problems:?}"
        );
    }

    #[test]
    fn client_config_refuses_a_mismatched_identity() {
        let dir = dev_dir();
        let err = client_config(
            &dir.path().join("ca.pem"),
            Some((
                &dir.path().join("procuratorate.pem"),
                &dir.path().join("other-key.pem"),
            )),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::KeyMismatch {
                    what: "client key",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn reload_switches_new_handshakes_and_keeps_open_connections() {
        let dir = dev_dir();
        let tls = load_server(&dev_files(dir.path(), ClientAuth::Required)).unwrap();
        let (addr, mut seen) = serve(&tls).await;
        let old_leaf = cert_der(&dir.path().join("server.pem"));

        let mut before = connect_and_ping(addr, client(dir.path(), Some("procuratorate")))
            .await
            .unwrap();
        assert!(outcome(&mut seen).await.unwrap().is_some());
        assert_eq!(server_leaf(&before), old_leaf);

        generate_dev(dir.path(), &[], true).unwrap();
        let new_leaf = cert_der(&dir.path().join("server.pem"));
        assert_ne!(new_leaf, old_leaf);
        tls.reload().unwrap();

        // A fresh client config, so the handshake is not a resumption of an old session.
        let after = connect_and_ping(addr, client(dir.path(), Some("procuratorate")))
            .await
            .unwrap();
        assert!(outcome(&mut seen).await.unwrap().is_some());
        assert_eq!(server_leaf(&after), new_leaf);

        // The connection opened before the reload still works, on its old certificate.
        super::testing::ping(&mut before).await.unwrap();
        super::testing::ping(&mut before).await.unwrap();
        assert_eq!(server_leaf(&before), old_leaf);

        // A broken key is refused and the current certificate stays in use.
        std::fs::write(dir.path().join("server-key.pem"), "garbage\n").unwrap();
        let problems = tls.reload().unwrap_err();
        assert!(
            matches!(
                problems.as_slice(),
                [TlsError::NoKey {
                    what: "server key",
                    ..
                }]
            ),
            "{problems:?}"
        );
        let still = connect_and_ping(addr, client(dir.path(), Some("procuratorate")))
            .await
            .unwrap();
        assert!(outcome(&mut seen).await.unwrap().is_some());
        assert_eq!(server_leaf(&still), new_leaf);
    }

    #[test]
    fn reload_refuses_a_key_that_no_longer_matches() {
        let dir = dev_dir();
        let tls = load_server(&dev_files(dir.path(), ClientAuth::Off)).unwrap();
        std::fs::copy(
            dir.path().join("other-key.pem"),
            dir.path().join("server-key.pem"),
        )
        .unwrap();
        let problems = tls.reload().unwrap_err();
        assert!(
            matches!(problems.as_slice(), [TlsError::KeyMismatch { .. }]),
            "{problems:?}"
        );
    }

    /// Handshakes as `client` against a server using `dir`'s files, with `ca` as the client CA
    /// bundle and the trust anchor of the client; returns the client leaf the server saw.
    async fn dev_handshake(dir: &Path, ca: &Path, client: &str) -> Vec<u8> {
        let mut files = dev_files(dir, ClientAuth::Required);
        files.client_ca = Some(ca.to_path_buf());
        let tls = load_server(&files).unwrap();
        let (addr, mut seen) = serve(&tls).await;
        let config = client_config(
            ca,
            Some((
                &dir.join(format!("{client}.pem")),
                &dir.join(format!("{client}-key.pem")),
            )),
        )
        .unwrap();
        connect_and_ping(addr, config).await.unwrap();
        outcome(&mut seen).await.unwrap().unwrap()
    }

    /// `certs dev` run again (a new client, then `--force`) signs with the same CA, so what the
    /// first run's `ca.pem` trusts keeps working; with the CA gone, `--force` starts a new one
    /// that the gateway loads.
    #[tokio::test]
    async fn dev_certificates_verify_under_a_reused_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("certs");
        generate_dev(&out, &["procuratorate".to_owned()], false).unwrap();
        // Keep the first CA aside: what later runs sign must verify against it.
        let first_ca = tmp.path().join("first-ca.pem");
        std::fs::copy(out.join("ca.pem"), &first_ca).unwrap();

        generate_dev(
            &out,
            &["procuratorate".to_owned(), "third".to_owned()],
            false,
        )
        .unwrap();
        let seen = dev_handshake(&out, &first_ca, "third").await;
        assert_eq!(
            fingerprint(&seen),
            fingerprint(&cert_der(&out.join("third.pem")))
        );
        dev_handshake(&out, &first_ca, "procuratorate").await;

        generate_dev(&out, &["third".to_owned()], true).unwrap();
        dev_handshake(&out, &first_ca, "third").await;
        dev_handshake(&out, &first_ca, "procuratorate").await;

        std::fs::remove_file(out.join("ca.pem")).unwrap();
        std::fs::remove_file(out.join("ca-key.pem")).unwrap();
        generate_dev(&out, &["third".to_owned()], true).unwrap();
        let seen = dev_handshake(&out, &out.join("ca.pem"), "third").await;
        assert_eq!(
            fingerprint(&seen),
            fingerprint(&cert_der(&out.join("third.pem")))
        );
    }
}
