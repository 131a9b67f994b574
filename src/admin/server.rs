//! The admin socket server: routes admin requests to the gateway. Only the gateway's own OS user may
//! connect (checked with the peer's credentials on every connection).

use std::convert::Infallible;
use std::os::unix::fs::MetadataExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{
    ApiError, ClientRequest, CredentialRequest, ExportRequest, IngestEvent, IngestRequest,
    PortRequest, RetryRequest, RotateRequest, ScanRequest, Status, UnitStatus, UnlockRequest, keys,
};
use crate::api::query::percent_decode;
use crate::audit::Actor;
use crate::gateway::Gateway;
use crate::ingest::{self, Summary};
use crate::model::{CaseId, Uscc};

pub(super) type Resp = Response<BoxBody<Bytes, Infallible>>;

/// Largest admin request body accepted.
const MAX_BODY: usize = 1024 * 1024;

/// A response body fed by a channel: lets long runs stream NDJSON progress lines.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

pub(super) fn json<T: Serialize>(status: StatusCode, v: &T) -> Resp {
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

pub(super) fn error(status: StatusCode, msg: impl Into<String>) -> Resp {
    json(status, &ApiError { error: msg.into() })
}

/// Runs blocking store, custody or audit work off the async threads; its error is the answer.
// A ready response as the error: one per request, so its size costs nothing.
#[allow(clippy::result_large_err)]
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Resp> + Send + 'static,
) -> Result<T, Resp> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("task failed: {e}"),
        ))
    })
}

/// [`blocking`], answering its value as JSON.
pub(super) async fn blocking_json<T: Serialize + Send + 'static>(
    f: impl FnOnce() -> Result<T, Resp> + Send + 'static,
) -> Resp {
    match blocking(f).await {
        Ok(v) => json(StatusCode::OK, &v),
        Err(resp) => resp,
    }
}

/// A 500 answer naming what failed.
pub(super) fn internal(e: impl std::fmt::Display) -> Resp {
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Serves the admin API on `listener` until the gateway's shutdown is triggered.
pub async fn serve(gw: Arc<Gateway>, listener: tokio::net::UnixListener) -> std::io::Result<()> {
    let own_uid = std::fs::metadata("/proc/self")?.uid();
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = gw.shutdown.wait() => return Ok(()),
        };
        match stream.peer_cred() {
            Ok(c) if c.uid() == own_uid => {}
            Ok(c) => {
                warn!(
                    peer_uid = c.uid(),
                    "admin connection from another OS user refused"
                );
                continue;
            }
            Err(e) => {
                warn!(error = %e, "admin connection without peer credentials refused");
                continue;
            }
        }
        let gw = gw.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let gw = gw.clone();
                async move { Ok::<_, Infallible>(route(gw, req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                debug!(error = %e, "admin connection ended");
            }
        });
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, Resp> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body unreadable or over 1 MiB: {e}"),
            )
        })?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("bad request body: {e}")))
}

async fn route(gw: Arc<Gateway>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let actor = Actor::admin(
        &req.headers()
            .get(super::ADMIN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(percent_decode)
            .filter(|n| !n.is_empty() && n.len() <= 64)
            .unwrap_or_else(|| "unknown".into()),
    );
    match (req.method().clone(), segs.as_slice()) {
        (Method::GET, ["status"]) => status(&gw),
        (Method::POST, ["unlock"]) => match read_json::<UnlockRequest>(req).await {
            Ok(r) => keys::unlock(gw, actor, r).await,
            Err(resp) => resp,
        },
        (Method::POST, ["seal"]) => keys::seal(gw, actor).await,
        (Method::POST, ["keys", "rotate", "jwt"]) => keys::rotate_jwt(gw, actor).await,
        (Method::GET, ["credentials"]) => keys::credentials(gw).await,
        (Method::POST, ["credentials", dest]) => {
            let dest = dest.to_string();
            match read_json::<CredentialRequest>(req).await {
                Ok(r) => keys::set_credential(gw, actor, dest, r).await,
                Err(resp) => resp,
            }
        }
        (Method::GET, ["clients"]) => keys::clients(gw).await,
        (Method::POST, ["clients"]) => match read_json::<ClientRequest>(req).await {
            Ok(r) => keys::add_client(gw, actor, r).await,
            Err(resp) => resp,
        },
        (Method::POST, ["clients", name, "rotate-secret"]) => {
            let name = name.to_string();
            match read_json::<RotateRequest>(req).await {
                Ok(r) => keys::rotate_client(gw, actor, name, r).await,
                Err(resp) => resp,
            }
        }
        (Method::POST, ["clients", name, "revoke"]) => {
            keys::revoke_client(gw, actor, name.to_string()).await
        }
        (Method::GET, ["ports"]) => keys::ports(gw).await,
        (Method::POST, ["push", "run"]) => match read_json::<super::push::RunRequest>(req).await {
            Ok(r) => super::push::run(gw, actor, r).await,
            Err(resp) => resp,
        },
        (Method::GET, ["push", "status"]) => super::push::status(gw).await,
        (Method::POST, ["reports", "build"]) => {
            match read_json::<super::reports::BuildRequest>(req).await {
                Ok(r) => super::reports::build(gw, actor, r).await,
                Err(resp) => resp,
            }
        }
        (Method::GET, ["reports", "status"]) => super::reports::status(gw, query).await,
        (Method::POST, ["reports", "submitters", op @ ("allow" | "deny")]) => {
            let open = *op == "allow";
            match read_json::<PortRequest>(req).await {
                Ok(r) => keys::grant(gw, actor, r, open, keys::Grant::Submit).await,
                Err(resp) => resp,
            }
        }
        (Method::POST, ["reports", "submit"]) => {
            match read_json::<super::reports::SubmitRequest>(req).await {
                Ok(r) => super::reports::submit(gw, actor, r).await,
                Err(resp) => resp,
            }
        }
        (Method::POST, ["reports", "disclose"]) => {
            match read_json::<super::reports::DiscloseRequest>(req).await {
                Ok(r) => super::reports::disclose(gw, actor, r).await,
                Err(resp) => resp,
            }
        }
        (Method::GET, ["reports", "show"]) => super::reports::show(gw, query).await,
        (Method::GET, ["push", "key"]) => super::push::key(gw, actor).await,
        (Method::GET, ["push", "dead"]) => super::push::dead_list(gw, query).await,
        (Method::GET, ["push", "dead", id]) => super::push::dead_show(gw, id).await,
        (Method::POST, ["push", "dead", "requeue"]) => {
            match read_json::<super::push::RequeueRequest>(req).await {
                Ok(r) => super::push::requeue(gw, actor, r).await,
                Err(resp) => resp,
            }
        }
        (Method::POST, ["ports", op @ ("open" | "close")]) => {
            let open = *op == "open";
            match read_json::<PortRequest>(req).await {
                Ok(r) => keys::port(gw, actor, r, open).await,
                Err(resp) => resp,
            }
        }
        (Method::GET, ["audit", "tail"]) => keys::tail(gw, query).await,
        (Method::GET, ["audit", "checkpoint"]) => keys::checkpoint(gw).await,
        (Method::GET, ["audit", "proof", kind @ ("inclusion" | "consistency")]) => {
            keys::proof(gw, kind, query).await
        }
        (Method::POST, ["audit", "export"]) => match read_json::<ExportRequest>(req).await {
            Ok(r) => keys::export(gw, actor, r).await,
            Err(resp) => resp,
        },
        (Method::POST, ["ingest"]) => match read_json::<IngestRequest>(req).await {
            Ok(r) => {
                if gw.adapter(&r.adapter).is_none() {
                    return error(StatusCode::NOT_FOUND, unknown_adapter(&gw, &r.adapter));
                }
                stream_runs(gw, actor, vec![(r.adapter, Some(r.path.into()))])
            }
            Err(resp) => resp,
        },
        (Method::POST, ["scan"]) => match read_json::<ScanRequest>(req).await {
            Ok(r) => {
                let names: Vec<String> = match r.adapter {
                    Some(a) if gw.adapter(&a).is_none() => {
                        return error(StatusCode::NOT_FOUND, unknown_adapter(&gw, &a));
                    }
                    Some(a) => vec![a],
                    None => gw.config.adapters.iter().map(|a| a.name.clone()).collect(),
                };
                stream_runs(gw, actor, names.into_iter().map(|n| (n, None)).collect())
            }
            Err(resp) => resp,
        },
        (Method::GET, ["cases", unit, case_id]) => {
            let unit = match Uscc::parse(unit) {
                Ok(u) => u,
                Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
            };
            let case_id = match CaseId::parse(case_id) {
                Ok(c) => c,
                Err(e) => return error(StatusCode::BAD_REQUEST, e),
            };
            match gw.store.get_case(&unit, &case_id) {
                Ok(Some(c)) => json(StatusCode::OK, &c),
                Ok(None) => error(
                    StatusCode::NOT_FOUND,
                    format!("no case {case_id} of unit {unit}"),
                ),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        (Method::GET, ["quarantine"]) => {
            let mut adapter = None;
            let mut limit = 100usize;
            for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
                match k {
                    "adapter" => adapter = Some(percent_decode(v)),
                    "limit" => limit = v.parse().unwrap_or(100),
                    _ => {}
                }
            }
            match gw.store.quarantine_list(adapter.as_deref(), limit) {
                Ok(l) => json(StatusCode::OK, &l),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        (Method::GET, ["quarantine", id]) => match id.parse::<u64>() {
            Err(_) => error(
                StatusCode::BAD_REQUEST,
                format!("'{id}' is not a quarantine id"),
            ),
            Ok(id) => match gw.store.quarantine_get(id) {
                Ok(Some(e)) => json(StatusCode::OK, &e),
                Ok(None) => error(StatusCode::NOT_FOUND, format!("no quarantine entry {id}")),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            },
        },
        (Method::POST, ["quarantine", "retry"]) => match read_json::<RetryRequest>(req).await {
            Ok(r) => retry(gw, actor, r).await,
            Err(resp) => resp,
        },
        _ => error(
            StatusCode::NOT_FOUND,
            format!("no admin route {} {path}", req.method()),
        ),
    }
}

fn unknown_adapter(gw: &Gateway, name: &str) -> String {
    let known: Vec<&str> = gw.config.adapters.iter().map(|a| a.name.as_str()).collect();
    format!("no adapter '{name}' (configured: {})", known.join(", "))
}

fn status(gw: &Gateway) -> Resp {
    let counts = match gw.store.unit_counts() {
        Ok(c) => c,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let name_of = |u: &Uscc| {
        gw.config
            .adapters
            .iter()
            .find_map(|a| a.units.get(u).cloned())
            .unwrap_or_else(|| u.to_string())
    };
    let units = counts
        .into_iter()
        .map(|(u, counts)| UnitStatus {
            unit_code: u.to_string(),
            unit_name: name_of(&u),
            counts,
        })
        .collect();
    let adapters = gw
        .config
        .adapters
        .iter()
        .map(|a| super::AdapterStatus {
            name: a.name.clone(),
            system: a.system.clone(),
            inbox: ingest::inbox_dir(a, &gw.config.data_dir)
                .display()
                .to_string(),
            last_scan: gw
                .store
                .get_meta(&format!("scan:{}", a.name))
                .ok()
                .flatten(),
        })
        .collect();
    let keys = gw.custody.status();
    json(
        StatusCode::OK,
        &Status {
            version: env!("CARGO_PKG_VERSION").into(),
            data_dir: gw.config.data_dir.display().to_string(),
            cases: gw.store.case_count() as u64,
            changes: gw.store.change_count().unwrap_or(0),
            quarantine: gw.store.quarantine_len() as u64,
            units,
            adapters,
            sealed: keys.sealed,
            keystore_exists: keys.keystore_exists,
            keystore_version: keys.version,
            audit_entries: gw.audit.size(),
        },
    )
}

/// Runs ingests one after the other and streams their events as NDJSON lines.
fn stream_runs(
    gw: Arc<Gateway>,
    actor: Actor,
    runs: Vec<(String, Option<std::path::PathBuf>)>,
) -> Resp {
    let (btx, brx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let line = |ev: &IngestEvent| {
            let mut v = serde_json::to_vec(ev).unwrap_or_default();
            v.push(b'\n');
            Bytes::from(v)
        };
        let mut total = Summary::default();
        for (adapter, path) in runs {
            let (etx, mut erx) = mpsc::channel::<IngestEvent>(64);
            let fwd = btx.clone();
            let forward = tokio::spawn(async move {
                while let Some(ev) = erx.recv().await {
                    let _ = fwd.send(line(&ev)).await;
                }
            });
            let res = gw.run_ingest(adapter, path, actor.clone(), etx).await;
            let _ = forward.await;
            match res {
                Ok(s) => total.add(&s),
                Err(e) => {
                    let _ = btx.send(line(&IngestEvent::Error(e))).await;
                    return;
                }
            }
        }
        let _ = btx.send(line(&IngestEvent::Done(total))).await;
    });
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(ChannelBody(brx).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

async fn retry(gw: Arc<Gateway>, actor: Actor, r: RetryRequest) -> Resp {
    let g = gw.clone();
    let target = if r.all {
        format!(
            "all{}",
            r.adapter
                .as_ref()
                .map_or(String::new(), |a| format!(" of {a}"))
        )
    } else {
        format!("{:?}", r.ids)
    };
    if let Err(e) = gw
        .audit
        .append(&crate::audit::Event::new(actor, "quarantine.retry", target))
    {
        return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    }
    let res = tokio::task::spawn_blocking(move || {
        let ids: Vec<u64> = if r.all {
            g.store
                .quarantine_list(r.adapter.as_deref(), usize::MAX)?
                .into_iter()
                .map(|e| e.id)
                .collect()
        } else {
            r.ids
        };
        let mut out = Vec::new();
        for id in ids {
            match ingest::retry_quarantined(&g.config.adapters, &g.store, id)? {
                Some(o) => out.push(o),
                None => out.push(ingest::RetryOutcome {
                    id,
                    accepted: false,
                    reasons: vec![crate::store::QuarantineReason {
                        field: "record".into(),
                        column: None,
                        reason: format!("no quarantine entry {id}"),
                    }],
                }),
            }
        }
        Ok::<_, ingest::IngestError>(out)
    })
    .await;
    match res {
        Ok(Ok(out)) => json(StatusCode::OK, &out),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("retry task failed: {e}"),
        ),
    }
}
