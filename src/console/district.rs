//! The district administrator's pages: push status with the dead letters (requeue), ports and
//! clients (open, close), quarantine (reasons, retry), quarterly reports (status per unit,
//! disclosure downloads) and the audit log (entries, filters, the latest signed checkpoint, an
//! inclusion proof checked on the server). Only the admin role reaches them. Custody (unlock,
//! seal, keys, credentials, clients' secrets) has no page: it stays on the gateway host's command
//! line.

// Page helpers return a ready page as their error: one per request, so its size costs nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;

use super::directory::shown_time;
use super::pages::day;
use super::users::Grant;
use super::web::{
    Chrome, Console, Ctx, Viewer, audited, blocking, csrf_ok, csrf_refused, failed, html, message,
};
use crate::admin::grants::{self, GrantError};
use crate::audit::Event;
use crate::model::{Quarter, Uscc};

/// Rows of a list page.
const PAGE: usize = 50;
/// Audit entries scanned for one page of a filtered list (the log has no index: a page reads
/// at most this many entries back from its place; "earlier" goes on from there).
const AUDIT_SCAN: u64 = 5_000;

fn admin_only(c: &Console, v: &Viewer) -> Result<(), Response> {
    if matches!(v.user.grant, Grant::Admin) {
        Ok(())
    } else {
        Err(message(
            StatusCode::FORBIDDEN,
            Some(v.chrome(c)),
            "无权访问",
            "此页面仅供司法局管理员使用。",
        ))
    }
}

/// Runs an admin page's blocking work, the role checked first.
async fn admin_page(
    c: Arc<Console>,
    v: Viewer,
    f: impl FnOnce(&Console, &Viewer) -> Result<Response, Response> + Send + 'static,
) -> Response {
    blocking(c, v, move |c, v| admin_only(c, v).and_then(|()| f(c, v))).await
}

/// Runs an admin form: its CSRF token checked first, then as [`admin_page`].
async fn admin_form(
    c: Arc<Console>,
    v: Viewer,
    csrf: &str,
    f: impl FnOnce(&Console, &Viewer) -> Result<Response, Response> + Send + 'static,
) -> Response {
    if !csrf_ok(&c, &v, csrf) {
        return csrf_refused(&c, &v);
    }
    admin_page(c, v, f).await
}

/// A notice carried to the next page after a form (`?done=…`), from a fixed list: the query
/// never puts text of its own on the page.
fn notice(done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "requeued" => "已重新排队，下一次推送时发送。",
            "not-dead" => "该死信已不存在（可能已被重新排队）。",
            "opened" => "端口已开放。",
            "already-open" => "端口原已开放，授权已更新。",
            "closed" => "端口已关闭。",
            "not-open" => "端口原未开放。",
            "accepted" => "重试成功，记录已入库。",
            "still-bad" => "重试仍未通过校验，记录留在隔离区。",
            "gone" => "该隔离记录已不存在。",
            _ => return None,
        }
        .to_string(),
    )
}

/// The `?done=` of a page.
#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
    after: Option<u64>,
}

/// A form with only its CSRF token.
#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
}

// ---------------------------------------------------------------------------------------------
// Push.

/// A destination's row.
pub struct DestRow {
    name: String,
    queued: u64,
    overdue: u64,
    at_risk: u64,
    next_due: String,
    delivered: u64,
    dead: u64,
    last_success: String,
    last_error: String,
}

/// A dead letter's row.
pub struct DeadRow {
    id: u64,
    destination: String,
    unit: String,
    case_id: String,
    version: u64,
    code: String,
    reason: String,
    at: String,
    /// What the receiver answered (HTTP status and body), shown on request.
    answer: String,
}

#[derive(Template)]
#[template(path = "console/push.html")]
struct PushPage {
    chrome: Option<Chrome>,
    csrf: String,
    notice: Option<String>,
    destinations: Vec<DestRow>,
    dead: Vec<DeadRow>,
    next: Option<String>,
}

/// `GET /console/push`: each destination's queue and deadlines, and the dead letters.
pub async fn push(State(c): Ctx, v: Viewer, Query(q): Query<Done>) -> Response {
    admin_page(c, v, move |c, v| {
        let destinations = c
            .svc
            .push
            .status()
            .map_err(|e| failed(c, v, e))?
            .into_iter()
            .map(|d| DestRow {
                next_due: d.deadlines.next_due.map(day).unwrap_or_else(|| "—".into()),
                overdue: d.deadlines.overdue,
                at_risk: d.deadlines.at_risk,
                last_success: d.last_success.map(shown_time).unwrap_or("—".into()),
                last_error: d.last_error.unwrap_or_default(),
                name: d.name,
                queued: d.queued,
                delivered: d.delivered,
                dead: d.dead_letters,
            })
            .collect();
        let mut page = c
            .svc
            .store
            .dead_page(q.after, PAGE + 1)
            .map_err(|e| failed(c, v, e))?;
        let more = page.len() > PAGE;
        page.truncate(PAGE);
        audited(
            c,
            v,
            Event::new(v.actor(), "console.push.read", "dead-letters")
                .detail("count", page.len() as u64),
        )?;
        let p = PushPage {
            chrome: Some(v.chrome(c)),
            csrf: c.csrf(&v.id),
            notice: notice(q.done.as_deref()),
            destinations,
            next: more
                .then(|| page.last().map(|d| format!("/console/push?after={}", d.id)))
                .flatten(),
            dead: page
                .into_iter()
                .map(|d| DeadRow {
                    id: d.id,
                    destination: d.destination,
                    unit: d.unit_code.to_string(),
                    case_id: d.case_id.to_string(),
                    version: d.version,
                    answer: format!(
                        "{}{}{}",
                        d.http_status
                            .map(|h| format!("HTTP {h}"))
                            .unwrap_or_default(),
                        d.package_id
                            .map(|p| format!("，数据包 {p}"))
                            .unwrap_or_default(),
                        d.response.map(|r| format!("\n{r}")).unwrap_or_default()
                    ),
                    code: d.code,
                    reason: d.reason,
                    at: shown_time(d.at),
                })
                .collect(),
        };
        Ok(html(StatusCode::OK, &p))
    })
    .await
}

/// `POST /console/push/dead/{id}/requeue`: audited (`push.requeue`) before the letter moves.
pub async fn requeue(
    State(c): Ctx,
    v: Viewer,
    Path(id): Path<u64>,
    Form(f): Form<TokenForm>,
) -> Response {
    admin_form(c, v, &f.csrf.clone(), move |c, v| {
        let moved = c
            .svc
            .push
            .requeue(&[id], None, &v.actor())
            .map_err(|e| failed(c, v, e))?;
        c.summary.invalidate();
        let done = if moved.is_empty() {
            "not-dead"
        } else {
            "requeued"
        };
        Ok(Redirect::to(&format!("/console/push?done={done}")).into_response())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Ports and clients.

/// A port's row.
pub struct PortRow {
    unit: String,
    unit_name: String,
    client: String,
    supervise: bool,
    by: String,
    at: String,
}

#[derive(Template)]
#[template(path = "console/ports.html")]
struct PortsPage {
    chrome: Option<Chrome>,
    csrf: String,
    notice: Option<String>,
    units: Vec<(String, String)>,
    active_clients: Vec<String>,
    ports: Vec<PortRow>,
    clients: Vec<(String, String, String, String, String)>,
}

/// `GET /console/ports`: the ports open, the form to open one, and the clients.
pub async fn ports(State(c): Ctx, v: Viewer, Query(q): Query<Done>) -> Response {
    admin_page(c, v, move |c, v| {
        let grants = c.svc.store.ports().map_err(|e| failed(c, v, e))?;
        let clients = c.svc.custody.clients().map_err(|e| failed(c, v, e))?;
        audited(
            c,
            v,
            Event::new(v.actor(), "console.ports.read", "ports")
                .detail("count", grants.len() as u64),
        )?;
        let name = |u: &Uscc| {
            c.svc
                .unit_names
                .get(u)
                .cloned()
                .unwrap_or_else(|| u.to_string())
        };
        let p = PortsPage {
            chrome: Some(v.chrome(c)),
            csrf: c.csrf(&v.id),
            notice: notice(q.done.as_deref()),
            units: c
                .svc
                .unit_names
                .iter()
                .map(|(u, n)| (u.to_string(), n.clone()))
                .collect(),
            active_clients: clients
                .iter()
                .filter(|x| x.revoked_at.is_none())
                .map(|x| x.name.clone())
                .collect(),
            ports: grants
                .into_iter()
                .map(|g| PortRow {
                    unit_name: name(&g.unit_code),
                    unit: g.unit_code.to_string(),
                    client: g.client,
                    supervise: g.supervise,
                    by: g.opened_by,
                    at: shown_time(g.opened_at),
                })
                .collect(),
            clients: clients
                .into_iter()
                .map(|x| {
                    let granted = |right| {
                        c.svc
                            .store
                            .report_grants_of(right, &x.name)
                            .unwrap_or_default()
                            .iter()
                            .map(&name)
                            .collect::<Vec<_>>()
                    };
                    let (submit, read) = (
                        granted(crate::store::ReportRight::Submit),
                        granted(crate::store::ReportRight::Read),
                    );
                    let grants = match (submit.is_empty(), read.is_empty()) {
                        (true, true) => "—".to_string(),
                        _ => format!(
                            "报送：{}；查阅：{}",
                            if submit.is_empty() {
                                "—".into()
                            } else {
                                submit.join("、")
                            },
                            if read.is_empty() {
                                "—".into()
                            } else {
                                read.join("、")
                            }
                        ),
                    };
                    (
                        x.name.clone(),
                        match (&x.cert_fingerprint, &x.cert_subject) {
                            (Some(fp), _) => {
                                format!("指纹 {}…", fp.chars().take(16).collect::<String>())
                            }
                            (None, Some(s)) => format!("证书名称 {s}"),
                            (None, None) => format!("证书名称 {}", x.name),
                        },
                        format!("{} · {}", x.created_by, shown_time(x.created_at)),
                        match x.revoked_at {
                            Some(t) => format!("已吊销（{}）", shown_time(t)),
                            None => "有效".into(),
                        },
                        grants,
                    )
                })
                .collect(),
        };
        Ok(html(StatusCode::OK, &p))
    })
    .await
}

/// The port forms.
#[derive(Deserialize)]
pub struct PortForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    supervise: Option<String>,
}

async fn port_change(c: Arc<Console>, v: Viewer, f: PortForm, open: bool) -> Response {
    admin_form(c, v, &f.csrf.clone(), move |c, v| {
        let refused =
            |text: String| message(StatusCode::BAD_REQUEST, Some(v.chrome(c)), "未能执行", text);
        let unit = Uscc::parse(&f.unit).map_err(|e| refused(format!("单位代码有误：{e}")))?;
        let changed = grants::change(
            &c.svc.store,
            &c.svc.audit,
            &c.svc.custody,
            v.actor(),
            &unit,
            &f.client,
            open && f.supervise.is_some(),
            open,
            grants::Grant::Port,
        )
        .map_err(|e| match e {
            GrantError::NoClient(_) => refused(format!("客户端 {} 不存在或已吊销。", f.client)),
            other => failed(c, v, other),
        })?;
        let done = match (open, changed) {
            (true, true) => "opened",
            (true, false) => "already-open",
            (false, true) => "closed",
            (false, false) => "not-open",
        };
        Ok(Redirect::to(&format!("/console/ports?done={done}")).into_response())
    })
    .await
}

/// `POST /console/ports/open`.
pub async fn port_open(State(c): Ctx, v: Viewer, Form(f): Form<PortForm>) -> Response {
    port_change(c, v, f, true).await
}

/// `POST /console/ports/close`.
pub async fn port_close(State(c): Ctx, v: Viewer, Form(f): Form<PortForm>) -> Response {
    port_change(c, v, f, false).await
}

// ---------------------------------------------------------------------------------------------
// Quarantine.

/// A quarantined record's row (its reasons; never its raw values, which may hold ID numbers).
pub struct QuarantineRow {
    id: u64,
    adapter: String,
    file: String,
    location: String,
    reasons: Vec<String>,
    at: String,
}

#[derive(Template)]
#[template(path = "console/quarantine.html")]
struct QuarantinePage {
    chrome: Option<Chrome>,
    csrf: String,
    notice: Option<String>,
    rows: Vec<QuarantineRow>,
    next: Option<String>,
}

/// `GET /console/quarantine`.
pub async fn quarantine(State(c): Ctx, v: Viewer, Query(q): Query<Done>) -> Response {
    admin_page(c, v, move |c, v| {
        let mut page = c
            .svc
            .store
            .quarantine_page(q.after, PAGE + 1)
            .map_err(|e| failed(c, v, e))?;
        let more = page.len() > PAGE;
        page.truncate(PAGE);
        audited(
            c,
            v,
            Event::new(v.actor(), "console.quarantine.read", "quarantine")
                .detail("count", page.len() as u64),
        )?;
        let p = QuarantinePage {
            chrome: Some(v.chrome(c)),
            csrf: c.csrf(&v.id),
            notice: notice(q.done.as_deref()),
            next: more
                .then(|| {
                    page.last()
                        .map(|e| format!("/console/quarantine?after={}", e.id))
                })
                .flatten(),
            rows: page
                .into_iter()
                .map(|e| QuarantineRow {
                    id: e.id,
                    adapter: e.adapter,
                    file: e.file,
                    location: e.location,
                    reasons: e
                        .reasons
                        .into_iter()
                        .map(|r| match r.column {
                            Some(col) => format!("{}（列“{col}”）：{}", r.field, r.reason),
                            None => format!("{}：{}", r.field, r.reason),
                        })
                        .collect(),
                    at: shown_time(e.at),
                })
                .collect(),
        };
        Ok(html(StatusCode::OK, &p))
    })
    .await
}

/// `POST /console/quarantine/{id}/retry`: audited (`quarantine.retry`) before the retry.
pub async fn retry(
    State(c): Ctx,
    v: Viewer,
    Path(id): Path<u64>,
    Form(f): Form<TokenForm>,
) -> Response {
    admin_form(c, v, &f.csrf.clone(), move |c, v| {
        audited(
            c,
            v,
            Event::new(v.actor(), "quarantine.retry", format!("[{id}]")),
        )?;
        let out = crate::ingest::retry_quarantined(&c.svc.adapters, &c.svc.store, id)
            .map_err(|e| failed(c, v, e))?;
        c.summary.invalidate();
        let done = match out {
            None => "gone",
            Some(o) if o.accepted => "accepted",
            Some(_) => "still-bad",
        };
        Ok(Redirect::to(&format!("/console/quarantine?done={done}")).into_response())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Quarterly reports.

#[derive(Template)]
#[template(path = "console/reports.html")]
struct ReportsPage {
    chrome: Option<Chrome>,
    quarters: Vec<(String, bool)>,
    quarter: String,
    due: String,
    rows: Vec<(String, &'static str, String, String, &'static str)>,
    has_reports: bool,
}

/// The quarter asked for.
#[derive(Deserialize, Default)]
pub struct QuarterQuery {
    quarter: Option<String>,
}

/// `GET /console/reports?quarter=2026Q3`: each unit's report for the quarter (default: the last
/// one ended) and the disclosure downloads.
pub async fn reports(State(c): Ctx, v: Viewer, Query(q): Query<QuarterQuery>) -> Response {
    admin_page(c, v, move |c, v| {
        let today = crate::supervision::leads::cst(Utc::now()).date();
        let last = Quarter::of(today).previous();
        let quarter = q
            .quarter
            .as_deref()
            .and_then(|s| Quarter::parse(s).ok())
            .unwrap_or(last);
        let st = crate::reports::status::status(&c.svc.store, quarter, &c.svc.reports, today)
            .map_err(|e| failed(c, v, e))?;
        audited(
            c,
            v,
            Event::new(v.actor(), "console.reports.read", quarter.to_string())
                .detail("units", st.units.len() as u64),
        )?;
        let mut quarters = Vec::new();
        let mut at = Quarter::of(today);
        for _ in 0..8 {
            quarters.push((at.to_string(), at == quarter));
            at = at.previous();
        }
        use crate::reports::status::State as S;
        let p = ReportsPage {
            chrome: Some(v.chrome(c)),
            quarters,
            quarter: quarter.to_string(),
            due: day(st.deadline),
            has_reports: st.units.iter().any(|u| u.version.is_some()),
            rows: st
                .units
                .into_iter()
                .map(|u| {
                    let (label, class) = match (u.state, u.late) {
                        (S::Computed, _) => ("网关计算", ""),
                        (S::Submitted, false) => ("单位已报送", "ok"),
                        (S::Submitted, true) => ("逾期报送", "warn"),
                        (S::Missing, _) => ("待报送", ""),
                        (S::Overdue, _) => ("逾期未报", "bad"),
                    };
                    (
                        format!("{}（{}）", u.unit_name, u.unit_code),
                        label,
                        u.version.map(|n| n.to_string()).unwrap_or_default(),
                        u.generated_at.map(shown_time).unwrap_or_default(),
                        class,
                    )
                })
                .collect(),
        };
        Ok(html(StatusCode::OK, &p))
    })
    .await
}

/// `GET /console/reports/{quarter}/disclosure.{csv,xlsx,html}`: the quarter's 双公示
/// disclosure (ID numbers masked), made now, audited as `reports.disclose`. Several CSV files
/// (one per department) come as one ZIP.
pub async fn disclosure(
    State(c): Ctx,
    v: Viewer,
    Path((quarter, file)): Path<(String, String)>,
) -> Response {
    admin_page(c, v, move |c, v| {
        let not_found = || {
            message(
                StatusCode::NOT_FOUND,
                Some(v.chrome(c)),
                "未找到",
                "没有该季度或该格式的公示文件。",
            )
        };
        let q = Quarter::parse(&quarter).map_err(|_| not_found())?;
        let format = file
            .strip_prefix("disclosure.")
            .and_then(|f| crate::reports::disclose::Format::parse(f).ok())
            .ok_or_else(not_found)?;
        let reports = c.svc.store.reports_latest(q).map_err(|e| failed(c, v, e))?;
        if reports.is_empty() {
            return Err(not_found());
        }
        audited(
            c,
            v,
            Event::new(v.actor(), "reports.disclose", q.to_string())
                .detail("format", format.as_str())
                .detail("out", "console download"),
        )?;
        let dir = tempfile::tempdir().map_err(|e| failed(c, v, e))?;
        let paths = crate::reports::disclose::write(q, &reports, format, dir.path())
            .map_err(|e| failed(c, v, e))?;
        let (name, ctype, body) = match paths.as_slice() {
            [one] => (
                one.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                match format {
                    crate::reports::disclose::Format::Csv => "text/csv; charset=utf-8",
                    crate::reports::disclose::Format::Xlsx => {
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                    }
                    crate::reports::disclose::Format::Html => "text/html; charset=utf-8",
                },
                std::fs::read(one).map_err(|e| failed(c, v, e))?,
            ),
            many => {
                use std::io::Write;
                let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                for p in many {
                    let n = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    z.start_file(n, zip::write::SimpleFileOptions::default())
                        .map_err(|e| failed(c, v, e))?;
                    z.write_all(&std::fs::read(p).map_err(|e| failed(c, v, e))?)
                        .map_err(|e| failed(c, v, e))?;
                }
                let bytes = z.finish().map_err(|e| failed(c, v, e))?.into_inner();
                (
                    format!("disclosure-{q}-{}.zip", format.as_str()),
                    "application/zip",
                    bytes,
                )
            }
        };
        Ok((
            [
                (header::CONTENT_TYPE, ctype.to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"disclosure-{q}.{}\"; filename*=UTF-8''{}",
                        name.rsplit('.').next().unwrap_or("bin"),
                        crate::api::query::percent_encode(&name)
                    ),
                ),
            ],
            body,
        )
            .into_response())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// The audit log.

/// An inclusion check's outcome.
pub struct ProofView {
    ok: bool,
    verdict: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Option<Chrome>,
    checkpoint: Option<String>,
    size: u64,
    proof_index: String,
    proof: Option<ProofView>,
    filter_action: String,
    filter_actor: String,
    entries: Vec<(u64, String, String, String, String, String)>,
    next: Option<String>,
}

/// The audit page's filters and place.
#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    before: Option<u64>,
    index: Option<String>,
}

fn audit_page(
    c: &Console,
    v: &Viewer,
    q: &AuditQuery,
    proof: Option<ProofView>,
) -> Result<Response, Response> {
    let size = c.svc.audit.size();
    let before = q.before.unwrap_or(size).min(size);
    let action = q.action.trim().chars().take(64).collect::<String>();
    let actor = q.actor.trim().chars().take(64).collect::<String>();
    // Newest first: one read of a bounded stretch back from `before`, filtered.
    let scanned = c
        .svc
        .audit
        .range(before.saturating_sub(AUDIT_SCAN), before)
        .map_err(|e| failed(c, v, e))?;
    let mut entries = Vec::new();
    let mut end = before.saturating_sub(AUDIT_SCAN);
    for (i, e) in scanned.into_iter().rev() {
        if entries.len() == PAGE {
            end = i + 1;
            break;
        }
        if (action.is_empty() || e.action.starts_with(&action))
            && (actor.is_empty() || e.actor.id == actor)
        {
            entries.push((
                i,
                e.time.replace('T', " ").chars().take(19).collect(),
                format!("{}:{}", e.actor.kind, e.actor.id),
                e.action,
                e.target,
                e.outcome,
            ));
        }
    }
    let next = (end > 0).then(|| {
        format!(
            "/console/audit?action={}&actor={}&before={end}",
            crate::api::query::percent_encode(&action),
            crate::api::query::percent_encode(&actor)
        )
    });
    audited(
        c,
        v,
        Event::new(v.actor(), "console.audit.read", "audit")
            .detail("before", before)
            .detail("count", entries.len() as u64),
    )?;
    let p = AuditPage {
        chrome: Some(v.chrome(c)),
        checkpoint: c.svc.audit.last_signed(),
        size,
        proof_index: q
            .index
            .clone()
            .unwrap_or_default()
            .chars()
            .take(20)
            .collect(),
        proof,
        filter_action: action,
        filter_actor: actor,
        entries,
        next,
    };
    Ok(html(StatusCode::OK, &p))
}

/// `GET /console/audit`: entries newest first, filtered by action prefix and actor.
pub async fn audit(State(c): Ctx, v: Viewer, Query(q): Query<AuditQuery>) -> Response {
    admin_page(c, v, move |c, v| audit_page(c, v, &q, None)).await
}

/// Checks on the server that entry `index` is in the tree the latest signed checkpoint signs:
/// the checkpoint's signature under the log's key, then the inclusion proof against its root.
fn check_inclusion(c: &Console, index: u64) -> ProofView {
    use base64::Engine as _;
    let b64 = |h: &[u8]| base64::engine::general_purpose::STANDARD.encode(h);
    let bad = |verdict: &str, detail: String| ProofView {
        ok: false,
        verdict: verdict.into(),
        detail,
    };
    let Some(note) = c.svc.audit.last_signed() else {
        return bad("无法验证", "尚无签名检查点。".into());
    };
    let Some(verifier) = c
        .svc
        .audit
        .verifier_text()
        .and_then(|t| crate::audit::note::NoteVerifier::parse(&t).ok())
    else {
        return bad("无法验证", "没有日志的验证公钥（密钥库未解锁）。".into());
    };
    let cp = match verifier.verify_checkpoint(&note) {
        Ok(cp) => cp,
        Err(e) => return bad("检查点签名无效", e.to_string()),
    };
    if index >= cp.size {
        return bad(
            "不在检查点范围内",
            format!("条目 {index} 不在最新检查点覆盖的前 {} 条之内。", cp.size),
        );
    }
    let proved = c
        .svc
        .audit
        .inclusion(index, Some(cp.size))
        .and_then(|(size, _, proof)| {
            let leaf = c.svc.audit.inclusion_leaf(index)?;
            crate::audit::merkle::verify_inclusion(&leaf, index, size, &proof, &cp.root)?;
            Ok((leaf, proof))
        });
    match proved {
        Ok((leaf, proof)) => ProofView {
            ok: true,
            verdict: format!("条目 {index} 包含在第 {} 条的签名检查点中", cp.size),
            detail: format!(
                "叶哈希 {}\n检查点根 {}\n证明（{} 个哈希）：\n{}",
                b64(&leaf),
                b64(&cp.root),
                proof.len(),
                proof.iter().map(|h| b64(h)).collect::<Vec<_>>().join("\n")
            ),
        },
        Err(e) => bad("验证失败", e.to_string()),
    }
}

/// `GET /console/audit/proof?index=N`.
pub async fn proof(State(c): Ctx, v: Viewer, Query(q): Query<AuditQuery>) -> Response {
    admin_page(c, v, move |c, v| {
        let view = match q.index.as_deref().map(str::trim).map(str::parse::<u64>) {
            Some(Ok(i)) => check_inclusion(c, i),
            _ => ProofView {
                ok: false,
                verdict: "请输入条目序号".into(),
                detail: String::new(),
            },
        };
        audit_page(c, v, &q, Some(view))
    })
    .await
}
