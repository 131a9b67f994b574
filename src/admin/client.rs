//! The admin client the CLI uses: finds the gateway's socket in the data directory and speaks HTTP/1.1
//! over it.

use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ApiError, IngestEvent, SOCKET_NAME};

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No gateway answers in that data directory.
    #[error(
        "no xianjie gateway is running for data directory {dir} (no answer on {socket}); start one with `xianjie serve --data {dir}` or pass the right --data / XIANJIE_DATA"
    )]
    NotRunning {
        /// Data directory.
        dir: String,
        /// Socket path.
        socket: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The connection failed mid-way.
    #[error("admin connection failed: {0}")]
    Http(String),
    /// The gateway refused the request.
    #[error("{0}")]
    Refused(String),
    /// The answer was not what the client expected.
    #[error("unexpected answer from the gateway: {0}")]
    Protocol(String),
}

/// A connection target.
#[derive(Debug, Clone)]
pub struct AdminClient {
    dir: PathBuf,
    actor: String,
}

impl AdminClient {
    /// The client for the gateway serving `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.to_path_buf(),
            actor: super::default_admin_name(),
        }
    }

    /// Attributes the requests to administrator `name` (`--as NAME`) in the audit log.
    pub fn acting_as(mut self, name: &str) -> Self {
        self.actor = name.to_string();
        self
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>, ClientError> {
        let socket = self.dir.join(SOCKET_NAME);
        let stream = tokio::net::UnixStream::connect(&socket)
            .await
            .map_err(|source| ClientError::NotRunning {
                dir: self.dir.display().to_string(),
                socket: socket.display().to_string(),
                source,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "xianjie-admin")
            .header(super::ADMIN_HEADER, percent_encode(&self.actor))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Http(e.to_string()))?
                .to_bytes();
            let msg = serde_json::from_slice::<ApiError>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| format!("HTTP {status}"));
            Err(ClientError::Refused(msg))
        }
    }

    /// GET returning JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let resp = self.send(Method::GET, path, None).await?;
        decode(resp).await
    }

    /// POST a JSON body returning JSON.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = self.send(Method::POST, path, Some(bytes)).await?;
        decode(resp).await
    }

    /// POST a JSON body and read the NDJSON event stream, calling `on_event` per event.
    pub async fn post_stream<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        mut on_event: impl FnMut(IngestEvent),
    ) -> Result<(), ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut body = self
            .send(Method::POST, path, Some(bytes))
            .await?
            .into_body();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::Http(e.to_string()))?;
            if let Some(data) = frame.data_ref() {
                buf.extend_from_slice(data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let ev: IngestEvent = serde_json::from_slice(&line)
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    on_event(ev);
                }
            }
        }
        Ok(())
    }
}

/// Header values are ASCII: a Chinese administrator name travels percent-encoded.
use crate::api::query::percent_encode;

async fn decode<T: DeserializeOwned>(resp: Response<Incoming>) -> Result<T, ClientError> {
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))
}
