//! A simulator on a loopback port and one-request HTTPS calls to it: the test harness of this
//! crate's tests and (feature `test-harness`) of the gateway's tests of the simulator with real
//! packages. Test code: a setup that fails panics, with the reason.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::header;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use ed25519_dalek::VerifyingKey;
use http_body_util::{BodyExt as _, Full};
use xianjie_net::secret::SecretString;
use xianjie_net::shutdown::Shutdown;

use crate::receipt::{self, Receipt};
use crate::{SimError, SimOptions, Simulator, parse_faults};

/// A running simulator on a loopback port, with development certificates in a temporary
/// directory (removed when the harness is dropped).
pub struct Harness {
    /// Where it listens.
    pub addr: SocketAddr,
    /// A client configuration that trusts its certificate.
    pub cfg: Arc<rustls::ClientConfig>,
    /// The simulator itself, for its records, stats and fault plan.
    pub sim: Simulator,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<Result<(), SimError>>,
    _dir: tempfile::TempDir,
}

/// An HTTP answer.
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as text (lossily).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Starts a simulator on `127.0.0.1:0` with a new development CA: `credential` and
/// `verify_key` as in [`SimOptions`], `faults` a fault spec ([`parse_faults`]).
pub async fn start(
    credential: Option<&str>,
    verify_key: Option<(String, VerifyingKey)>,
    faults: &str,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    xianjie_devca::generate_dev(dir.path(), &[], false).unwrap();
    let (sim, addr) = Simulator::bind(SimOptions {
        listen: "127.0.0.1:0".into(),
        certs: dir.path().to_path_buf(),
        credential: credential.map(|c| SecretString::new(c.to_string())),
        verify_key,
        faults: parse_faults(faults).unwrap(),
    })
    .await
    .unwrap();
    let shutdown = Shutdown::new();
    let task = tokio::spawn(sim.clone().run(shutdown.clone()));
    let cfg = xianjie_net::tls::client_config(&dir.path().join("ca.pem"), None).unwrap();
    Harness {
        addr,
        cfg,
        sim,
        shutdown,
        task,
        _dir: dir,
    }
}

impl Harness {
    /// One request on a fresh HTTPS connection.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(self.cfg.clone())
            .connect(
                rustls_pki_types::ServerName::try_from("localhost").unwrap(),
                tcp,
            )
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| format!("http: {e}"))?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = send
            .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes()
            .to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// `POST /packages` of `xml` with `extra` headers.
    pub async fn post(&self, xml: &[u8], extra: &[(&str, String)]) -> Result<Answer, String> {
        let mut headers = vec![("content-type", "application/xml".to_string())];
        headers.extend(extra.iter().cloned());
        self.request(Method::POST, "/packages", &headers, xml.to_vec())
            .await
    }

    /// `POST /packages` of `xml`, which must be answered 200 with a receipt.
    pub async fn receipt(&self, xml: &[u8], extra: &[(&str, String)]) -> Receipt {
        let a = self.post(xml, extra).await.unwrap();
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        assert_eq!(a.headers[header::CONTENT_TYPE], "application/xml");
        receipt::parse(&a.body).unwrap()
    }

    /// `GET path`, which must be answered 200 with JSON.
    pub async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let a = self
            .request(Method::GET, path, &[], Vec::new())
            .await
            .unwrap();
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        serde_json::from_slice(&a.body).unwrap()
    }

    /// Stops the simulator, which must end cleanly within 5 s.
    pub async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the simulator stops on shutdown")
            .unwrap()
            .unwrap();
    }
}
