//! The console's HTTP side: its route table (merged into the port API's one router), the
//! security headers every console answer carries, the session and CSRF checks every page and
//! form goes through, and the sign-in, sign-out and password pages. The pages that show data are
//! in [`super::pages`]; each gets a [`Viewer`] (who asks, checked) and the narrow [`Console`]
//! handle, never the gateway.

// Page helpers return a ready page as their error: one per request, so its size costs nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use chrono::Utc;
use serde::Deserialize;
use tracing::{error, warn};

use super::directory::{Directory, SignInError, SignedIn};
use super::session::{Gone, Held, LOGIN_COOKIE, SessionId, Sessions, clear_cookie};
use super::users::Grant;
use crate::api::{ApiServices, Peer};
use crate::audit::{Actor, Event};
use crate::keys::secret::{SecretBytes, SecretString};

/// What the console's handlers work with: the port API's services (the same store, audit log,
/// custody and users), the sessions and the CSRF key.
pub struct Console {
    /// The gateway's parts the port API works with.
    pub svc: Arc<ApiServices>,
    /// Who is signed in.
    pub sessions: Sessions,
    /// The key CSRF tokens are made with (random per process, as sessions are).
    csrf_key: SecretBytes,
    /// Figures of the dashboards, computed at most once a minute.
    pub(super) summary: super::pages::SummaryCache,
    /// The listener's attempt buckets: sign-ins are throttled per address and per name as token
    /// requests are (`server.token_attempts_*`), before any password is hashed.
    attempts: Arc<crate::api::ApiState>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").finish_non_exhaustive()
    }
}

impl Console {
    /// The console over `svc`, sign-ins throttled with the listener's `attempts` buckets.
    pub fn new(svc: Arc<ApiServices>, attempts: Arc<crate::api::ApiState>) -> Self {
        let idle =
            chrono::Duration::from_std(svc.server.console_idle).unwrap_or(super::session::IDLE);
        Console {
            sessions: Sessions::new(idle),
            csrf_key: SecretBytes::random(32),
            summary: super::pages::SummaryCache::default(),
            attempts,
            svc,
        }
    }

    /// Who may sign in.
    pub fn users(&self) -> &Directory {
        &self.svc.users
    }

    /// Whether connections must show a client certificate (`client_auth = "required"`): a
    /// session is then bound to the certificate it signed in with.
    fn require_certificate(&self) -> bool {
        self.svc.server.tls.client_auth == crate::tls::ClientAuth::Required
    }

    /// The CSRF token of session `id`'s forms.
    pub(super) fn csrf(&self, id: &SessionId) -> String {
        id.csrf_token(&self.csrf_key)
    }
}

/// The console's state in handlers.
pub type Ctx = State<Arc<Console>>;

/// The style sheet, vendored: the console loads nothing from elsewhere.
const CSS: &str = include_str!("../../static/console.css");

/// Largest form body taken (a supervision text is at most 4,000 characters).
pub const MAX_FORM: usize = 64 * 1024;

/// The console's route table (rule 11: merged into the one router of the listener, so metrics
/// labels and 405s come from it as the API's do).
fn table() -> Vec<(&'static str, MethodRouter<Arc<Console>>)> {
    use super::{district, pages};
    vec![
        ("/console", get(|| async { Redirect::to("/console/") })),
        ("/console/", get(pages::dashboard)),
        ("/console/static/console.css", get(css)),
        ("/console/login", get(login_form).post(login)),
        ("/console/logout", post(logout)),
        ("/console/password", get(password_form).post(password)),
        ("/console/leads", get(pages::leads)),
        ("/console/leads/{unit}/{case_id}", get(pages::lead)),
        ("/console/cases/{unit}/{case_id}", get(pages::case)),
        (
            "/console/cases/{unit}/{case_id}/supervision",
            post(pages::supervise),
        ),
        ("/console/supervision/{id}/answer", post(pages::answer)),
        ("/console/search", get(pages::search)),
        ("/console/transfers", get(pages::transfers)),
        ("/console/push", get(district::push)),
        ("/console/push/dead/{id}/requeue", post(district::requeue)),
        ("/console/ports", get(district::ports)),
        ("/console/ports/open", post(district::port_open)),
        ("/console/ports/close", post(district::port_close)),
        ("/console/quarantine", get(district::quarantine)),
        ("/console/quarantine/{id}/retry", post(district::retry)),
        ("/console/reports", get(district::reports)),
        (
            "/console/reports/{quarter}/{file}",
            get(district::disclosure),
        ),
        ("/console/audit", get(district::audit)),
        ("/console/audit/proof", get(district::proof)),
    ]
}

/// The console's paths, for tests and the route list.
pub fn paths() -> Vec<&'static str> {
    table().into_iter().map(|(p, _)| p).collect()
}

/// The console's router, with its security headers on every answer.
pub fn router(console: Arc<Console>) -> axum::Router {
    table()
        .into_iter()
        .fold(axum::Router::new(), |r, (path, m)| r.route(path, m))
        .layer(axum::middleware::from_fn(headers))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM))
        .with_state(console)
}

/// The content security policy: nothing but the gateway's own style sheet and inline SVG; no
/// script at all, no framing, forms only to the gateway.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the console's security headers to every answer.
async fn headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    // Pages carry case data: never kept by the browser or a proxy. The style sheet may be.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// A rendered page, or a plain message when a template fails (it never should).
pub(super) fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            error!(error = %e, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "页面生成失败").into_response()
        }
    }
}

/// What every signed-in page's frame shows: who, the menu for their role, the sign-out form.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The user's name.
    pub user: String,
    /// Their role, in Chinese.
    pub role: &'static str,
    /// The session's CSRF token.
    pub csrf: String,
    /// The menu: link and label.
    pub nav: Vec<(&'static str, &'static str)>,
}

/// A page with only a heading and a sentence (refusals, errors, confirmations).
#[derive(Template)]
#[template(path = "console/message.html")]
pub(super) struct Message {
    pub(super) chrome: Option<Chrome>,
    pub(super) heading: String,
    pub(super) text: String,
}

/// A message page with `status`.
pub(super) fn message(
    status: StatusCode,
    chrome: Option<Chrome>,
    heading: &str,
    text: impl Into<String>,
) -> Response {
    html(
        status,
        &Message {
            chrome,
            heading: heading.into(),
            text: text.into(),
        },
    )
}

/// A signed-in person asking for a page: their session checked (alive, its grant current, its
/// certificate shown again), its last request moved to now.
pub struct Viewer {
    /// The session's id (for its CSRF token).
    pub id: SessionId,
    /// Who, with their grant.
    pub user: SignedIn,
    /// The request id, for audit entries.
    pub request: String,
    /// The peer's address, for audit entries.
    pub peer: String,
}

impl Viewer {
    /// The audit actor.
    pub fn actor(&self) -> Actor {
        Actor::user(self.user.name.as_str())
    }

    /// The page frame for this viewer.
    pub fn chrome(&self, c: &Console) -> Chrome {
        let mut nav = vec![("/console/", "首页")];
        match self.user.grant {
            Grant::Analyst { .. } => nav.extend([
                ("/console/leads", "线索"),
                ("/console/search", "查询"),
                ("/console/transfers?overdue=1", "逾期移送"),
            ]),
            Grant::Unit { .. } => nav.extend([
                ("/console/leads", "本单位线索"),
                ("/console/transfers", "移送期限"),
            ]),
            Grant::Admin => nav.extend([
                ("/console/push", "推送"),
                ("/console/quarantine", "隔离区"),
                ("/console/reports", "季度统计"),
                ("/console/ports", "端口与客户端"),
                ("/console/audit", "审计日志"),
            ]),
        }
        Chrome {
            user: self.user.name.as_str().to_string(),
            role: self.user.grant.role_label(),
            csrf: c.csrf(&self.id),
            nav,
        }
    }
}

/// Why a request has no viewer: it is sent to sign in (a page), or refused (a form).
pub enum NoViewer {
    /// Sign in first (the reason shown on the form).
    SignIn(&'static str),
    /// The gateway cannot check now.
    Unavailable,
    /// A one-time password must be replaced first.
    MustChange,
}

impl IntoResponse for NoViewer {
    fn into_response(self) -> Response {
        match self {
            NoViewer::SignIn(why) => {
                let mut r = Redirect::to(&format!("/console/login?why={why}")).into_response();
                if let Ok(v) = clear_cookie().parse() {
                    r.headers_mut().insert(header::SET_COOKIE, v);
                }
                r
            }
            NoViewer::MustChange => Redirect::to("/console/password").into_response(),
            NoViewer::Unavailable => message(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "暂不可用",
                "网关的密钥库已封存或审计日志不可写，控制台暂不可用，请联系管理员。",
            ),
        }
    }
}

fn cookie_header(headers: &HeaderMap) -> &str {
    headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn peer_of(parts: &Parts) -> (Option<String>, String) {
    let peer = parts.extensions.get::<Arc<Peer>>();
    (
        peer.and_then(|p| p.fingerprint.clone()),
        peer.and_then(|p| p.addr)
            .map(|a| a.ip().to_string())
            .unwrap_or_default(),
    )
}

/// The session of a request, checked; `allow_must_change` for the password page itself.
fn viewer(c: &Console, parts: &Parts, allow_must_change: bool) -> Result<Viewer, NoViewer> {
    let id = SessionId::from_cookie_header(cookie_header(&parts.headers))
        .ok_or(NoViewer::SignIn("none"))?;
    let now = Utc::now();
    let held = c.sessions.touch(&id, now).map_err(|g| match g {
        Gone::Unknown => NoViewer::SignIn("none"),
        Gone::Ended(_) => NoViewer::SignIn("expired"),
    })?;
    let (fingerprint, peer) = peer_of(parts);
    if held.certificate.is_some() && held.certificate != fingerprint {
        c.sessions.remove(&id);
        return Err(NoViewer::SignIn("certificate"));
    }
    let epoch = c.svc.custody.epoch();
    let user = if held.epoch == epoch {
        held.user
    } else {
        // The keystore changed since the grant was read: a user disabled or reset, a client
        // revoked. Read it again.
        match c.users().current(&held.user.name, held.times.started) {
            Ok(Some(u)) => {
                c.sessions.set_user(&id, u.clone(), epoch);
                u
            }
            Ok(None) => {
                c.sessions.remove(&id);
                return Err(NoViewer::SignIn("disabled"));
            }
            Err(_) => return Err(NoViewer::Unavailable),
        }
    };
    if user.must_change && !allow_must_change {
        return Err(NoViewer::MustChange);
    }
    let request = parts
        .extensions
        .get::<crate::api::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    Ok(Viewer {
        id,
        user,
        request,
        peer,
    })
}

impl FromRequestParts<Arc<Console>> for Viewer {
    type Rejection = NoViewer;

    async fn from_request_parts(parts: &mut Parts, c: &Arc<Console>) -> Result<Self, NoViewer> {
        viewer(c, parts, false)
    }
}

/// A viewer who may still have to replace a one-time password (the password page only).
pub struct Changing(pub Viewer);

impl FromRequestParts<Arc<Console>> for Changing {
    type Rejection = NoViewer;

    async fn from_request_parts(parts: &mut Parts, c: &Arc<Console>) -> Result<Self, NoViewer> {
        viewer(c, parts, true).map(Changing)
    }
}

/// The page shown when the keystore is sealed or the audit log cannot be written.
pub(super) fn unavailable(c: &Console, v: &Viewer) -> Response {
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        Some(v.chrome(c)),
        "暂不可用",
        "网关的密钥库已封存或审计日志不可写，请联系管理员。",
    )
}

/// The page shown when reading or writing failed (the cause goes to the log, not the page).
pub(super) fn failed(c: &Console, v: &Viewer, e: impl std::fmt::Display) -> Response {
    error!(error = %e, "console page failed");
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        Some(v.chrome(c)),
        "出错了",
        "读取数据失败，已记录日志，请稍后重试或联系管理员。",
    )
}

/// Records `event` before the page is sent; no entry, no page.
pub(super) fn audited(c: &Console, v: &Viewer, event: Event) -> Result<(), Response> {
    c.svc
        .audit
        .append(&event.request(&v.request).detail("peer", v.peer.as_str()))
        .map(|_| ())
        .map_err(|e| {
            error!(error = %e, "audit append failed; refusing to show data");
            unavailable(c, v)
        })
}

/// Runs a page's blocking store work off the async threads.
pub(super) async fn blocking(
    c: Arc<Console>,
    v: Viewer,
    f: impl FnOnce(&Console, &Viewer) -> Result<Response, Response> + Send + 'static,
) -> Response {
    tokio::task::spawn_blocking(move || f(&c, &v).unwrap_or_else(|r| r))
        .await
        .unwrap_or_else(|e| {
            error!(error = %e, "console task failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "内部错误").into_response()
        })
}

/// The 403 of a form without its session's CSRF token.
pub(super) fn csrf_refused(c: &Console, v: &Viewer) -> Response {
    warn!(
        user = v.user.name.as_str(),
        "console form without a valid CSRF token"
    );
    let _ = c.svc.audit.append(
        &Event::new(v.actor(), "console.csrf", v.user.name.as_str())
            .outcome("denied")
            .detail("peer", v.peer.as_str()),
    );
    message(
        StatusCode::FORBIDDEN,
        Some(v.chrome(c)),
        "请求被拒绝",
        "表单缺少有效的安全令牌（CSRF）。请从控制台页面重新提交。",
    )
}

/// Whether `token` is `v`'s session's CSRF token.
pub(super) fn csrf_ok(c: &Console, v: &Viewer, token: &str) -> bool {
    v.id.csrf_ok(&c.csrf_key, token)
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    chrome: Option<Chrome>,
    csrf: String,
    name: String,
    message: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    why: Option<String>,
}

/// The sign-in form, with a fresh login cookie its CSRF token is made from.
fn login_page(status: StatusCode, c: &Console, name: &str, message: Option<String>) -> Response {
    let nonce = SessionId::generate();
    let mut r = html(
        status,
        &LoginPage {
            chrome: None,
            csrf: c.csrf(&nonce),
            name: name.to_string(),
            message,
        },
    );
    if let Ok(v) = nonce.set_cookie_as(LOGIN_COOKIE).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn login_form(
    State(c): Ctx,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    let msg = match q.why.as_deref() {
        Some("expired") => Some("会话已超时，请重新登录。".to_string()),
        Some("disabled") => Some("账户已被停用或权限已变更，请重新登录。".to_string()),
        Some("certificate") => Some("客户端证书与登录时不一致，请重新登录。".to_string()),
        Some("out") => Some("您已安全退出。".to_string()),
        _ => None,
    };
    login_page(StatusCode::OK, &c, "", msg)
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

impl Drop for LoginForm {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.password.zeroize();
    }
}

async fn login(
    State(c): Ctx,
    headers: HeaderMap,
    peer: Option<axum::Extension<Arc<Peer>>>,
    Form(mut f): Form<LoginForm>,
) -> Response {
    let nonce = SessionId::from_cookie_header_as(cookie_header(&headers), LOGIN_COOKIE);
    if !nonce.is_some_and(|n| n.csrf_ok(&c.csrf_key, &f.csrf)) {
        return message(
            StatusCode::FORBIDDEN,
            None,
            "请求被拒绝",
            "登录表单缺少有效的安全令牌（CSRF），请刷新登录页后重试。",
        );
    }
    let peer = peer.map(|p| p.0).unwrap_or_default();
    if c.require_certificate() && peer.fingerprint.is_none() {
        return message(
            StatusCode::FORBIDDEN,
            None,
            "需要客户端证书",
            "本网关要求使用客户端证书（UKey）登录。",
        );
    }
    let addr = peer.addr.map(|a| a.ip().to_string()).unwrap_or_default();
    let name = f.name.trim().chars().take(64).collect::<String>();
    // Throttled per address and per name before any password is hashed; each episode of
    // refusals is audited once, at its first.
    let keys = [
        format!("console-peer:{addr}"),
        format!("console-user:{name}"),
    ];
    if let crate::api::Throttle::Refused { retry, first, .. } = c.attempts.attempt(&keys) {
        if first {
            let _ = c.svc.audit.append(
                &Event::new(Actor::user(&name), "console.login", &name)
                    .outcome("denied")
                    .detail("reason", "throttled")
                    .detail("peer", addr.as_str()),
            );
        }
        let mut r = login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &c,
            &name,
            Some(format!("登录尝试过于频繁，请 {retry} 秒后再试。")),
        );
        if let Ok(v) = retry.to_string().parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let password = SecretString::new(std::mem::take(&mut f.password));
    let code = f.code.trim().to_string();
    let c2 = c.clone();
    let who = name.clone();
    let res = tokio::task::spawn_blocking(move || {
        c2.users()
            .sign_in(&who, &password, &code, Utc::now(), &addr)
    })
    .await
    .unwrap_or(Err(SignInError::Unavailable));
    let user = match res {
        Ok(u) => u,
        Err(e) => {
            let status = match e {
                SignInError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            return login_page(status, &c, &name, Some(e.to_string()));
        }
    };
    let id = SessionId::generate();
    let now = Utc::now();
    let must_change = user.must_change;
    let held = Held {
        user,
        times: super::session::Times::new(now),
        epoch: c.svc.custody.epoch(),
        certificate: peer.fingerprint.clone(),
    };
    if !c.sessions.insert(&id, held, now) {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "暂不可用",
            "同时在线的会话过多，请稍后再试。",
        );
    }
    let to = if must_change {
        "/console/password"
    } else {
        "/console/"
    };
    let mut r = Redirect::to(to).into_response();
    let h = r.headers_mut();
    for cookie in [
        id.set_cookie(),
        format!("{LOGIN_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"),
    ] {
        if let Ok(v) = cookie.parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    r
}

/// A form with only its CSRF token.
#[derive(Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(State(c): Ctx, v: Viewer, Form(f): Form<TokenForm>) -> Response {
    if !csrf_ok(&c, &v, &f.csrf) {
        return csrf_refused(&c, &v);
    }
    c.sessions.remove(&v.id);
    let _ = c.svc.audit.append(
        &Event::new(v.actor(), "console.logout", v.user.name.as_str())
            .detail("peer", v.peer.as_str()),
    );
    let mut r = Redirect::to("/console/login?why=out").into_response();
    if let Ok(h) = clear_cookie().parse() {
        r.headers_mut().insert(header::SET_COOKIE, h);
    }
    r
}

#[derive(Template)]
#[template(path = "console/password.html")]
struct PasswordPage {
    chrome: Option<Chrome>,
    csrf: String,
    message: Option<String>,
}

async fn password_form(State(c): Ctx, Changing(v): Changing) -> Response {
    html(
        StatusCode::OK,
        &PasswordPage {
            chrome: Some(v.chrome(&c)),
            csrf: c.csrf(&v.id),
            message: None,
        },
    )
}

/// The password form's fields.
#[derive(Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    again: String,
}

impl Drop for PasswordForm {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.password.zeroize();
        self.again.zeroize();
    }
}

async fn password(
    State(c): Ctx,
    Changing(v): Changing,
    Form(mut f): Form<PasswordForm>,
) -> Response {
    if !csrf_ok(&c, &v, &f.csrf) {
        return csrf_refused(&c, &v);
    }
    let again_page = |msg: String| {
        html(
            StatusCode::BAD_REQUEST,
            &PasswordPage {
                chrome: Some(v.chrome(&c)),
                csrf: c.csrf(&v.id),
                message: Some(msg),
            },
        )
    };
    if f.password != f.again {
        return again_page("两次输入的密码不一致。".into());
    }
    let new = SecretString::new(std::mem::take(&mut f.password));
    let (c2, name) = (c.clone(), v.user.name.clone());
    let res = tokio::task::spawn_blocking(move || c2.users().set_password(&name, &new))
        .await
        .map_err(|e| e.to_string());
    match res {
        Ok(Ok(())) => {
            let mut user = v.user.clone();
            user.must_change = false;
            c.sessions.set_user(&v.id, user, c.svc.custody.epoch());
            Redirect::to("/console/").into_response()
        }
        Ok(Err(super::directory::DirectoryError::Password(m))) => again_page(m),
        Ok(Err(e)) => again_page(format!("未能保存：{e}")),
        Err(e) => again_page(format!("未能保存：{e}")),
    }
}
