//! The console's pages that show data: the dashboard per role, leads, a lead with its facts next
//! to the thresholds, a case with its timeline, the search across ports, and the supervision and
//! answer forms. Each page reads only what the viewer's grant allows (an analyst: the open ports
//! of their client; a unit user: their unit) and is audited before it is sent, as an API read is.

// Page helpers return a ready page as their error: one per request, so its size costs nothing.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::directory::shown_time;
use super::users::Grant;
use super::web::{
    Chrome, Console, Ctx, Viewer, audited, blocking, csrf_ok, csrf_refused, failed, html, message,
    unavailable,
};
use crate::audit::Event;
use crate::model::{Case, CaseId, Fen, Uscc, case_key};
use crate::supervision::actions::{self, Action, Kind};
use crate::supervision::leads::{Lead, LeadStatus};
use crate::supervision::workbench::{self, SearchBy};

/// Rows of a list page.
const PAGE: usize = 50;
/// Results of a search page.
const SEARCH_LIMIT: usize = 100;
/// How long the dashboards' figures are reused.
const SUMMARY_TTL: Duration = Duration::from_secs(60);
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Money as people write it: yuan below ten thousand, else 万元 with the exact yuan after.
pub fn money(f: Fen) -> String {
    let fen = f.get();
    if fen < 1_000_000 {
        format!("{}元", f.yuan_string())
    } else {
        format!(
            "{}.{:02}万元（{}元）",
            fen / 1_000_000,
            (fen % 1_000_000) / 10_000,
            f.yuan_string()
        )
    }
}

/// A date as people write it: 2026年3月5日.
pub fn day(d: NaiveDate) -> String {
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

fn opt_day(d: Option<NaiveDate>) -> String {
    d.map(day).unwrap_or_else(|| "—".into())
}

/// The facts rules speak of, named as the thresholds' provisions name them.
const FACT_LABELS: [(&str, &str); 16] = [
    ("amounts.involved_fen", "涉案金额"),
    ("amounts.goods_value_fen", "货值金额"),
    ("amounts.sales_fen", "销售金额"),
    ("amounts.illegal_gains_fen", "违法所得"),
    ("amounts.evaded_tax_fen", "逃避缴纳税款数额"),
    ("amounts.evaded_tax_share", "逃税占应纳税额比例（%）"),
    ("harm.deaths", "死亡人数"),
    ("harm.serious_injuries", "重伤人数"),
    ("harm.direct_loss_fen", "直接经济损失"),
    ("penalty.fine_fen", "罚款金额"),
    ("penalty.confiscated_fen", "没收金额"),
    ("penalty.kinds", "处罚种类"),
    ("party.kind", "当事人类型"),
    ("earlier", "此前受行政处罚次数"),
    ("cause", "案由"),
    ("facts", "违法事实"),
];

/// A rule's fact in Chinese: a fact by its name; a sum of amounts with each path named.
fn fact_zh(fact: &str) -> String {
    if let Some((_, label)) = FACT_LABELS.iter().find(|(p, _)| *p == fact) {
        return (*label).to_string();
    }
    let mut out = fact.to_string();
    for (path, label) in FACT_LABELS.iter().filter(|(p, _)| p.contains('.')) {
        out = out.replace(path, label);
    }
    out
}

/// A rule's threshold in Chinese: the rule language's few English words by theirs.
fn threshold_zh(text: &str) -> String {
    text.replace("contains one of ", "含以下之一：")
        .replace("contains ", "含：")
        .replace(" within ", "（")
        .replace(" days", " 日内）")
}

// ---------------------------------------------------------------------------------------------
// Who may read what.

/// The units `v` may read case data of now: an analyst's client's open ports (none if the client
/// is revoked), a unit user's own unit, nothing for an administrator (the district view shows
/// counts, never case files).
fn readable(c: &Console, v: &Viewer) -> Result<Vec<Uscc>, Response> {
    match &v.user.grant {
        Grant::Analyst { client } => {
            let live = c
                .svc
                .custody
                .cached_client(client)
                .map_err(|_| unavailable(c, v))?
                .is_some_and(|ci| ci.revoked_at.is_none());
            if !live {
                return Ok(Vec::new());
            }
            c.svc.store.ports_of(client).map_err(|e| failed(c, v, e))
        }
        Grant::Unit { unit } => Ok(vec![unit.clone()]),
        Grant::Admin => Ok(Vec::new()),
    }
}

/// The unit `unit` if `v` may read its cases; else the refusal, audited.
fn port(c: &Console, v: &Viewer, unit: &str, target: &str) -> Result<Uscc, Response> {
    port_among(c, v, &readable(c, v)?, unit, target)
}

/// [`port`], with the units `v` may read already at hand.
fn port_among(
    c: &Console,
    v: &Viewer,
    readable: &[Uscc],
    unit: &str,
    target: &str,
) -> Result<Uscc, Response> {
    match Uscc::parse(unit).ok().filter(|u| readable.contains(u)) {
        Some(u) => Ok(u),
        None => {
            let _ = c.svc.audit.append(
                &Event::new(v.actor(), "console.case.read", target)
                    .outcome("denied")
                    .request(&v.request),
            );
            Err(message(
                StatusCode::FORBIDDEN,
                Some(v.chrome(c)),
                "无权查看",
                "您的账户无权查看该单位的案件：其端口未向您开放。",
            ))
        }
    }
}

fn unit_name(c: &Console, u: &Uscc) -> String {
    c.svc
        .unit_names
        .get(u)
        .cloned()
        .unwrap_or_else(|| u.to_string())
}

// ---------------------------------------------------------------------------------------------
// Dashboard.

/// Figures of every unit that cost a scan (open leads, their trend, actions awaiting an
/// answer), shared by all dashboards and computed at most once a [`SUMMARY_TTL`]: a dashboard
/// reads them, never the store's 1,000,000 cases. Only the very first dashboard waits for them;
/// later, stale figures are shown while a background thread computes fresh ones.
#[derive(Debug, Default, Clone)]
pub struct SummaryCache {
    held: Arc<Mutex<Option<Held>>>,
    refreshing: Arc<std::sync::atomic::AtomicBool>,
}

/// The figures and when they were computed.
type Held = (Instant, Arc<Summary>);

/// What [`SummaryCache`] holds.
#[derive(Debug, Default)]
pub struct Summary {
    /// Open leads per unit.
    pub open_leads: BTreeMap<Uscc, u64>,
    /// Leads raised per unit in each of the last 12 months (oldest first).
    pub trend: BTreeMap<Uscc, [u64; 12]>,
    /// The 12 months, `YYYY-MM`.
    pub months: Vec<String>,
    /// Supervision actions awaiting the unit's answer.
    pub awaiting: BTreeMap<Uscc, u64>,
    /// Per unit, each destination's records of the unit queued, their deadlines and the
    /// unit's dead letters there.
    pub push: BTreeMap<Uscc, Vec<UnitPush>>,
}

/// One unit's records queued for one destination.
#[derive(Debug, Clone)]
pub struct UnitPush {
    /// The destination.
    pub destination: String,
    /// Records queued.
    pub queued: u64,
    /// Their deadlines.
    pub deadlines: crate::push::worker::Deadlines,
    /// The unit's dead letters there.
    pub dead: u64,
}

fn month_index(months: &[(i32, u32)], t: DateTime<Utc>) -> Option<usize> {
    let local = crate::supervision::leads::cst(t);
    months
        .iter()
        .position(|(y, m)| local.year() == *y && local.month() == *m)
}

fn compute_summary(svc: &crate::api::ApiServices, now: DateTime<Utc>) -> Summary {
    let started = Instant::now();
    let store = &svc.store;
    let today = crate::supervision::leads::cst(now).date();
    let mut months: Vec<(i32, u32)> = Vec::with_capacity(12);
    let (mut y, mut m) = (today.year(), today.month());
    for _ in 0..12 {
        months.push((y, m));
        if m == 1 {
            (y, m) = (y - 1, 12);
        } else {
            m -= 1;
        }
    }
    months.reverse();
    let mut s = Summary {
        months: months.iter().map(|(y, m)| format!("{y}-{m:02}")).collect(),
        ..Summary::default()
    };
    for item in store.all_leads::<Lead>() {
        let Ok((key, lead)) = item else { continue };
        let Some(unit) = key
            .split(|b| *b == 0)
            .next()
            .and_then(|u| std::str::from_utf8(u).ok())
            .and_then(|u| Uscc::parse(u).ok())
        else {
            continue;
        };
        if lead.status.is_open() {
            *s.open_leads.entry(unit.clone()).or_default() += 1;
        }
        if let Some(i) = month_index(&months, lead.detected_at) {
            s.trend.entry(unit).or_insert([0; 12])[i] += 1;
        }
    }
    for a in store.all_supervision::<Action>() {
        let Ok(a) = a else { continue };
        if a.kind.asks_answer() && a.answers.is_empty() {
            *s.awaiting.entry(a.unit_code).or_default() += 1;
        }
    }
    let mut dead: BTreeMap<(Uscc, String), u64> = BTreeMap::new();
    for d in store.dead_list(None, usize::MAX).unwrap_or_default() {
        *dead.entry((d.unit_code, d.destination)).or_default() += 1;
    }
    for name in svc.push.names() {
        let by_unit = match svc.push.deadlines_by_unit(&name) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, destination = name.as_str(), "push deadlines not read");
                continue;
            }
        };
        for (unit, (queued, deadlines)) in by_unit {
            s.push.entry(unit.clone()).or_default().push(UnitPush {
                destination: name.clone(),
                queued,
                deadlines,
                dead: dead.remove(&(unit, name.clone())).unwrap_or(0),
            });
        }
    }
    for ((unit, destination), n) in dead {
        s.push.entry(unit).or_default().push(UnitPush {
            destination,
            queued: 0,
            deadlines: crate::push::worker::Deadlines::default(),
            dead: n,
        });
    }
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        "console dashboard figures computed"
    );
    s
}

impl SummaryCache {
    fn set(&self, fresh: Arc<Summary>) {
        *self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), fresh));
    }

    /// The figures: the held ones (fresh, or stale while a background refresh runs); computed
    /// here only when there are none yet.
    pub fn get(&self, svc: &Arc<crate::api::ApiServices>) -> Arc<Summary> {
        use std::sync::atomic::Ordering;
        let held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match held {
            Some((at, s)) => {
                if at.elapsed() >= SUMMARY_TTL && !self.refreshing.swap(true, Ordering::SeqCst) {
                    let (me, svc) = (self.clone(), svc.clone());
                    let spawned = std::thread::Builder::new()
                        .name("console-figures".into())
                        .spawn(move || {
                            me.set(Arc::new(compute_summary(&svc, Utc::now())));
                            me.refreshing.store(false, Ordering::SeqCst);
                        });
                    if spawned.is_err() {
                        self.refreshing.store(false, Ordering::SeqCst);
                    }
                }
                s
            }
            None => {
                let fresh = Arc::new(compute_summary(svc, Utc::now()));
                self.set(fresh.clone());
                fresh
            }
        }
    }

    /// Drops the figures (after a write a person will look for at once).
    pub fn invalidate(&self) {
        *self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// One figure on a dashboard.
pub struct Tile {
    value: String,
    label: &'static str,
    href: Option<&'static str>,
    alert: bool,
}

/// One unit's row.
pub struct UnitRow {
    name: String,
    code: String,
    cases: u64,
    open_leads: u64,
}

/// One destination's push row.
pub struct PushRow {
    name: String,
    queued: u64,
    overdue: u64,
    at_risk: u64,
    next_due: String,
    dead: u64,
    last_success: String,
}

/// A bar of the cases-per-unit chart.
pub struct Bar {
    y: u32,
    w: u32,
    label: String,
    value: u64,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    chrome: Option<Chrome>,
    heading: String,
    tiles: Vec<Tile>,
    units: Vec<UnitRow>,
    units_chart: String,
    show_trend: bool,
    trend_chart: String,
    pushes: Vec<PushRow>,
    reports: Vec<(String, String)>,
    quarter: String,
}

#[derive(Template)]
#[template(path = "console/bars.svg", escape = "html")]
struct BarsSvg {
    height: u32,
    bars: Vec<Bar>,
}

/// A point of the trend chart.
pub struct Point {
    x: u32,
    y: u32,
    label: String,
    value: u64,
}

#[derive(Template)]
#[template(path = "console/trend.svg", escape = "html")]
struct TrendSvg {
    points: Vec<Point>,
    line: String,
}

fn bars_chart(rows: &[UnitRow]) -> String {
    let max = rows.iter().map(|r| r.cases).max().unwrap_or(0).max(1);
    let bars: Vec<Bar> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| Bar {
            y: 10 + 26 * u32::try_from(i).unwrap_or(0),
            w: u32::try_from(r.cases.saturating_mul(560) / max).unwrap_or(560),
            label: r.name.chars().take(16).collect(),
            value: r.cases,
        })
        .collect();
    let height = 20 + 26 * u32::try_from(bars.len()).unwrap_or(0);
    BarsSvg { height, bars }.render().unwrap_or_default()
}

fn trend_chart(months: &[String], counts: &[u64; 12]) -> String {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let points: Vec<Point> = counts
        .iter()
        .enumerate()
        .map(|(i, n)| Point {
            x: 40 + 60 * u32::try_from(i).unwrap_or(0),
            y: 150 - u32::try_from(n.saturating_mul(120) / max).unwrap_or(120),
            label: months
                .get(i)
                .map(|m| m[2..].to_string())
                .unwrap_or_default(),
            value: *n,
        })
        .collect();
    let line = points
        .iter()
        .map(|p| format!("{},{}", p.x, p.y))
        .collect::<Vec<_>>()
        .join(" ");
    TrendSvg { points, line }.render().unwrap_or_default()
}

/// `GET /console/`: the dashboard of the viewer's role.
pub async fn dashboard(State(c): Ctx, v: Viewer) -> Response {
    blocking(c, v, |c, v| {
        let summary = c.summary.get(&c.svc);
        let counts = c.svc.store.unit_counts().map_err(|e| failed(c, v, e))?;
        let (units, heading): (Vec<Uscc>, String) = match &v.user.grant {
            Grant::Admin => {
                let mut all: Vec<Uscc> = c.svc.unit_names.keys().cloned().collect();
                for u in counts.keys() {
                    if !all.contains(u) {
                        all.push(u.clone());
                    }
                }
                (all, "全区概况".into())
            }
            Grant::Analyst { client } => (readable(c, v)?, format!("检察监督（经 {client} 端口）")),
            Grant::Unit { unit } => (vec![unit.clone()], format!("{} 工作台", unit_name(c, unit))),
        };
        let rows: Vec<UnitRow> = units
            .iter()
            .map(|u| UnitRow {
                name: unit_name(c, u),
                code: u.to_string(),
                cases: counts.get(u).map_or(0, |n| n.total),
                open_leads: summary.open_leads.get(u).copied().unwrap_or(0),
            })
            .collect();
        let cases: u64 = rows.iter().map(|r| r.cases).sum();
        let open: u64 = rows.iter().map(|r| r.open_leads).sum();
        let awaiting: u64 = units
            .iter()
            .map(|u| summary.awaiting.get(u).copied().unwrap_or(0))
            .sum();
        let mut trend = [0u64; 12];
        for u in &units {
            if let Some(t) = summary.trend.get(u) {
                for (a, b) in trend.iter_mut().zip(t) {
                    *a += b;
                }
            }
        }
        let mut tiles = vec![Tile {
            value: cases.to_string(),
            label: "案件",
            href: None,
            alert: false,
        }];
        let mut pushes = Vec::new();
        match &v.user.grant {
            Grant::Analyst { .. } => {
                tiles.push(Tile {
                    value: units.len().to_string(),
                    label: "已开放端口",
                    href: None,
                    alert: false,
                });
                tiles.push(Tile {
                    value: open.to_string(),
                    label: "待处理线索",
                    href: Some("/console/leads?status=open"),
                    alert: false,
                });
                tiles.push(Tile {
                    value: awaiting.to_string(),
                    label: "待单位答复",
                    href: None,
                    alert: false,
                });
            }
            Grant::Unit { unit } => {
                let mine = summary.push.get(unit).cloned().unwrap_or_default();
                let late: u64 = mine
                    .iter()
                    .map(|p| p.deadlines.overdue + p.deadlines.at_risk)
                    .sum();
                tiles.push(Tile {
                    value: late.to_string(),
                    label: "本单位推送逾期或临近期限",
                    href: None,
                    alert: late > 0,
                });
                for p in mine {
                    pushes.push(PushRow {
                        name: p.destination,
                        queued: p.queued,
                        overdue: p.deadlines.overdue,
                        at_risk: p.deadlines.at_risk,
                        next_due: opt_day(p.deadlines.next_due),
                        dead: p.dead,
                        last_success: "—".into(),
                    });
                }
                tiles.push(Tile {
                    value: open.to_string(),
                    label: "本单位待处理线索",
                    href: Some("/console/leads?status=open"),
                    alert: false,
                });
                tiles.push(Tile {
                    value: awaiting.to_string(),
                    label: "待本单位答复的监督意见",
                    href: Some("/console/leads?status=recommended"),
                    alert: awaiting > 0,
                });
            }
            Grant::Admin => {
                let quarantined = c.svc.store.quarantine_len().map_err(|e| failed(c, v, e))? as u64;
                tiles.push(Tile {
                    value: open.to_string(),
                    label: "待处理线索（全区）",
                    href: None,
                    alert: false,
                });
                tiles.push(Tile {
                    value: quarantined.to_string(),
                    label: "隔离区待处理",
                    href: None,
                    alert: quarantined > 0,
                });
                for d in c.svc.push.status().map_err(|e| failed(c, v, e))? {
                    pushes.push(PushRow {
                        name: d.name,
                        queued: d.queued,
                        overdue: d.deadlines.overdue,
                        at_risk: d.deadlines.at_risk,
                        next_due: opt_day(d.deadlines.next_due),
                        dead: d.dead_letters,
                        last_success: d.last_success.map(shown_time).unwrap_or("—".into()),
                    });
                }
                let dead: u64 = pushes.iter().map(|p| p.dead).sum();
                let at_risk: u64 = pushes.iter().map(|p| p.at_risk + p.overdue).sum();
                tiles.push(Tile {
                    value: at_risk.to_string(),
                    label: "推送逾期或临近期限",
                    href: None,
                    alert: at_risk > 0,
                });
                tiles.push(Tile {
                    value: dead.to_string(),
                    label: "推送死信",
                    href: None,
                    alert: dead > 0,
                });
            }
        }
        let page = DashboardPage {
            chrome: Some(v.chrome(c)),
            heading,
            tiles,
            units_chart: bars_chart(&rows),
            units: rows,
            show_trend: !units.is_empty(),
            trend_chart: trend_chart(&summary.months, &trend),
            pushes,
            reports: Vec::new(),
            quarter: String::new(),
        };
        // Counts only, but per unit: recorded as a read of the district's figures.
        audited(
            c,
            v,
            Event::new(v.actor(), "console.dashboard", v.user.name.as_str())
                .detail("units", units.len() as u64),
        )?;
        Ok(html(StatusCode::OK, &page))
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Leads.

/// A row of the leads list.
pub struct LeadRow {
    detected: String,
    unit_name: String,
    case_id: String,
    href: String,
    title: String,
    source: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "console/leads.html")]
struct LeadsPage {
    chrome: Option<Chrome>,
    unit_options: Vec<(String, String, bool)>,
    status_options: Vec<(String, &'static str, bool)>,
    filter_rule: String,
    rows: Vec<LeadRow>,
    next: Option<String>,
}

/// The filters of the leads list.
#[derive(Deserialize, Default)]
pub struct LeadsQuery {
    #[serde(default)]
    unit: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    after: String,
}

fn enc(s: &str) -> String {
    crate::api::query::percent_encode(s)
}

/// `GET /console/leads`: the leads of the viewer's units, filtered, a page at a time.
pub async fn leads(State(c): Ctx, v: Viewer, Query(q): Query<LeadsQuery>) -> Response {
    blocking(c, v, move |c, v| {
        let all = readable(c, v)?;
        if matches!(v.user.grant, Grant::Admin) {
            return Err(message(
                StatusCode::FORBIDDEN,
                Some(v.chrome(c)),
                "无权查看",
                "管理员账户查看全区统计，不查看案件与线索。",
            ));
        }
        let units: Vec<Uscc> = if q.unit.is_empty() {
            all.clone()
        } else {
            vec![port_among(c, v, &all, &q.unit, &q.unit)?]
        };
        let status = LeadStatus::CODES.iter().find(|s| **s == q.status).copied();
        let rule = q.rule.trim().chars().take(128).collect::<String>();
        let after: Option<Vec<u8>> = B64
            .decode(q.after.as_bytes())
            .ok()
            .filter(|a| !a.is_empty());
        let mut rows = Vec::new();
        let mut keys = Vec::new();
        let mut more = false;
        'units: for u in &units {
            if let Some(a) = &after
                && a.as_slice() >= [u.as_str().as_bytes(), &[1]].concat().as_slice()
            {
                continue;
            }
            for item in c.svc.store.unit_leads_after::<Lead>(u, after.as_deref()) {
                let (key, l) = item.map_err(|e| failed(c, v, e))?;
                if status.is_some_and(|s| l.status.code() != s)
                    || (!rule.is_empty()
                        && l.key != rule
                        && l.key.strip_prefix("rule:") != Some(rule.as_str()))
                {
                    continue;
                }
                if rows.len() == PAGE {
                    more = true;
                    break 'units;
                }
                let mut parts = key.split(|b| *b == 0);
                let _ = parts.next();
                let case = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
                rows.push(LeadRow {
                    detected: shown_time(l.detected_at),
                    unit_name: unit_name(c, u),
                    href: format!("/console/leads/{u}/{}", enc(&case)),
                    case_id: case,
                    title: l.title.clone(),
                    source: l.source.clone(),
                    status: l.status.label(),
                });
                keys.push((key, l.case_version));
            }
        }
        let next = match (more, keys.last()) {
            (true, Some((k, _))) => Some(format!(
                "/console/leads?unit={}&status={}&rule={}&after={}",
                enc(&q.unit),
                enc(status.unwrap_or("")),
                enc(&rule),
                B64.encode(k)
            )),
            _ => None,
        };
        let (count, digest) = crate::api::keys_digest(keys.into_iter());
        audited(
            c,
            v,
            Event::new(v.actor(), "console.leads", v.user.name.as_str())
                .digest(&digest)
                .detail("count", count)
                .detail(
                    "filter",
                    format!(
                        "unit={};status={};rule={rule}",
                        q.unit,
                        status.unwrap_or("")
                    ),
                ),
        )?;
        let page = LeadsPage {
            chrome: Some(v.chrome(c)),
            unit_options: all
                .iter()
                .map(|u| (u.to_string(), unit_name(c, u), q.unit == u.as_str()))
                .collect(),
            status_options: LeadStatus::CODES
                .iter()
                .map(|s| (s.to_string(), LeadStatus::label_of(s), Some(*s) == status))
                .collect(),
            filter_rule: rule,
            rows,
            next,
        };
        Ok(html(StatusCode::OK, &page))
    })
    .await
}

/// A lead as the lead page shows it.
pub struct LeadView {
    title: String,
    source: String,
    review: bool,
    status: &'static str,
    facts: Vec<(String, String, String)>,
    detected: String,
}

#[derive(Template)]
#[template(path = "console/lead.html")]
struct LeadPage {
    chrome: Option<Chrome>,
    csrf: String,
    unit_name: String,
    case_id: String,
    title: String,
    party: String,
    cause: String,
    decided: String,
    money: String,
    transfer: String,
    case_href: String,
    supervise_href: String,
    leads: Vec<LeadView>,
    can_supervise: bool,
    kinds: Vec<(&'static str, &'static str)>,
    message: Option<String>,
}

/// The case `unit`/`case_id` if `v` may read it; a refusal or a 404 page otherwise.
fn readable_case(c: &Console, v: &Viewer, unit: &str, case_id: &str) -> Result<Case, Response> {
    let target = format!("{unit}/{case_id}");
    let unit = port(c, v, unit, &target)?;
    let not_found = || {
        message(
            StatusCode::NOT_FOUND,
            Some(v.chrome(c)),
            "未找到",
            format!("端口 {unit} 中没有案件 {case_id}。"),
        )
    };
    let id = CaseId::parse(case_id).map_err(|_| not_found())?;
    c.svc
        .store
        .get_case(&unit, &id)
        .map_err(|e| failed(c, v, e))?
        .ok_or_else(not_found)
}

/// Whether `v` may write supervision actions on `unit` (an analyst whose client's port was
/// opened with `--supervise`).
fn may_supervise(c: &Console, v: &Viewer, unit: &Uscc) -> bool {
    match &v.user.grant {
        Grant::Analyst { client } => c
            .svc
            .store
            .port_grant(unit, client)
            .ok()
            .flatten()
            .is_some_and(|g| g.supervise),
        _ => false,
    }
}

fn amount(case: &Case) -> String {
    case.penalty
        .as_ref()
        .map(|p| {
            let parts: Vec<String> = [("罚款", p.fine_fen), ("没收", p.confiscated_fen)]
                .into_iter()
                .filter_map(|(k, f)| f.map(|f| format!("{k} {}", money(f))))
                .collect();
            if parts.is_empty() {
                "—".to_string()
            } else {
                parts.join("；")
            }
        })
        .unwrap_or_else(|| "—".into())
}

fn lead_page(
    c: &Console,
    v: &Viewer,
    case: &Case,
    msg: Option<String>,
) -> Result<Response, Response> {
    let key = case.key();
    let leads: Vec<Lead> = c.svc.store.case_leads(&key).map_err(|e| failed(c, v, e))?;
    let unit = &case.unit_code;
    let id = enc(case.case_id.as_str());
    audited(
        c,
        v,
        Event::new(
            v.actor(),
            "console.lead.read",
            format!("{unit}/{}", case.case_id),
        )
        .detail("version", case.version)
        .detail("leads", leads.len() as u64),
    )?;
    let page = LeadPage {
        chrome: Some(v.chrome(c)),
        csrf: c.csrf(&v.id),
        unit_name: unit_name(c, unit),
        case_id: case.case_id.to_string(),
        title: case.title.clone(),
        party: case.party.name.clone(),
        cause: case.cause.clone().unwrap_or_else(|| "—".into()),
        decided: opt_day(case.decided_on),
        money: amount(case),
        transfer: case.transfer.status.label().to_string(),
        case_href: format!("/console/cases/{unit}/{id}"),
        supervise_href: format!("/console/cases/{unit}/{id}/supervision"),
        leads: leads
            .into_iter()
            .map(|l| LeadView {
                status: l.status.label(),
                facts: l
                    .facts
                    .into_iter()
                    .map(|f| (fact_zh(&f.fact), f.value, threshold_zh(&f.threshold)))
                    .collect(),
                detected: shown_time(l.detected_at),
                title: l.title,
                source: l.source,
                review: l.review,
            })
            .collect(),
        can_supervise: may_supervise(c, v, unit),
        kinds: Kind::ALL.iter().map(|k| (k.code(), k.label())).collect(),
        message: msg,
    };
    Ok(html(
        if page.message.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        &page,
    ))
}

/// `GET /console/leads/{unit}/{case_id}`: a case's leads, each fact next to its threshold, and
/// the supervision form.
pub async fn lead(
    State(c): Ctx,
    v: Viewer,
    Path((unit, case_id)): Path<(String, String)>,
) -> Response {
    blocking(c, v, move |c, v| {
        let case = readable_case(c, v, &unit, &case_id)?;
        lead_page(c, v, &case, None)
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// A case and its timeline.

/// An action as the case page shows it.
pub struct ActionView {
    id: u64,
    kind: &'static str,
    by: String,
    at: String,
    text: String,
    answers: Vec<(String, String, String)>,
    answerable: bool,
    answer_href: String,
}

/// A timeline entry as shown.
pub struct EntryView {
    at: String,
    kind: &'static str,
    title: String,
    text: Option<String>,
}

#[derive(Template)]
#[template(path = "console/case.html")]
struct CasePage {
    chrome: Option<Chrome>,
    csrf: String,
    unit_name: String,
    case_id: String,
    version: u64,
    title: String,
    fields: Vec<(&'static str, String)>,
    has_leads: bool,
    lead_href: String,
    deadlines: Vec<(&'static str, String, &'static str, &'static str)>,
    entries: Vec<EntryView>,
    actions: Vec<ActionView>,
}

fn party_id(case: &Case) -> String {
    use crate::model::PartyId;
    match &case.party.id {
        Some(PartyId::Uscc(u)) => u.to_string(),
        // Masked as on every page: the whole number is in the case file, not on a screen.
        Some(PartyId::Resident(r)) => r.masked(),
        Some(PartyId::Other { number, .. }) => crate::model::mask_id(number),
        None => "—".into(),
    }
}

/// `GET /console/cases/{unit}/{case_id}`: the case, its timeline and its supervision actions
/// (with the answer form for the unit).
pub async fn case(
    State(c): Ctx,
    v: Viewer,
    Path((unit, case_id)): Path<(String, String)>,
) -> Response {
    blocking(c, v, move |c, v| {
        let case = readable_case(c, v, &unit, &case_id)?;
        let key = case.key();
        let t = workbench::timeline(&c.svc.store, &case, c.svc.push.calendar(), Utc::now())
            .map_err(|e| failed(c, v, e))?;
        let acts: Vec<Action> = c
            .svc
            .store
            .case_supervision(&key)
            .map_err(|e| failed(c, v, e))?;
        let has_leads = !c
            .svc
            .store
            .case_leads::<Lead>(&key)
            .map_err(|e| failed(c, v, e))?
            .is_empty();
        audited(
            c,
            v,
            Event::new(
                v.actor(),
                "console.case.read",
                format!("{}/{}", case.unit_code, case.case_id),
            )
            .detail("version", case.version)
            .detail("entries", t.entries.len() as u64),
        )?;
        let is_unit = matches!(v.user.grant, Grant::Unit { .. });
        let u = &case.unit_code;
        let id = enc(case.case_id.as_str());
        let fields = vec![
            ("当事人", case.party.name.clone()),
            ("证件号码", party_id(&case)),
            ("类别", case.action.label().to_string()),
            ("案由", case.cause.clone().unwrap_or_else(|| "—".into())),
            (
                "决定文书号",
                case.decision_number.clone().unwrap_or_else(|| "—".into()),
            ),
            ("立案日期", opt_day(case.filed_on)),
            ("决定日期", opt_day(case.decided_on)),
            ("罚没金额", amount(&case)),
            (
                "处罚依据",
                case.legal_basis.clone().unwrap_or_else(|| "—".into()),
            ),
            ("违法事实", case.facts.clone().unwrap_or_else(|| "—".into())),
            ("移送状态", case.transfer.status.label().to_string()),
        ];
        let page = CasePage {
            chrome: Some(v.chrome(c)),
            csrf: c.csrf(&v.id),
            unit_name: unit_name(c, u),
            case_id: case.case_id.to_string(),
            version: case.version,
            title: case.title.clone(),
            fields,
            has_leads,
            lead_href: format!("/console/leads/{u}/{id}"),
            deadlines: t
                .deadlines
                .iter()
                .map(|d| {
                    use crate::supervision::deadlines::State as S;
                    let (label, class) = match d.state {
                        S::Met => ("按期完成", "ok"),
                        S::Late => ("逾期完成", "warn"),
                        S::Open => ("进行中", ""),
                        S::Overdue => ("已逾期", "bad"),
                    };
                    (
                        d.step.label(),
                        d.due.format("%Y-%m-%d %H:%M").to_string(),
                        label,
                        class,
                    )
                })
                .collect(),
            entries: t
                .entries
                .into_iter()
                .map(|e| EntryView {
                    at: e.at.replace('T', " ").replace("+08:00", ""),
                    kind: e.kind,
                    title: e.title,
                    text: e.text,
                })
                .collect(),
            actions: acts
                .into_iter()
                .map(|a| ActionView {
                    answerable: is_unit && a.kind.asks_answer(),
                    answer_href: format!("/console/supervision/{}/answer", a.id),
                    id: a.id,
                    kind: a.kind.label(),
                    by: a.client,
                    at: shown_time(a.at),
                    text: a.text,
                    answers: a
                        .answers
                        .into_iter()
                        .map(|x| (x.by, shown_time(x.at), x.text))
                        .collect(),
                })
                .collect(),
        };
        Ok(html(StatusCode::OK, &page))
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Forms.

/// The supervision form.
#[derive(Deserialize)]
pub struct SuperviseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    text: String,
}

/// `POST /console/cases/{unit}/{case_id}/supervision`: an analyst's supervision action, audited
/// before and after, as through the API.
pub async fn supervise(
    State(c): Ctx,
    v: Viewer,
    Path((unit, case_id)): Path<(String, String)>,
    Form(f): Form<SuperviseForm>,
) -> Response {
    if !csrf_ok(&c, &v, &f.csrf) {
        return csrf_refused(&c, &v);
    }
    let lock = c.svc.leads_lock.clone().lock_owned().await;
    blocking(c, v, move |c, v| {
        let _lock = lock;
        let case = readable_case(c, v, &unit, &case_id)?;
        let u = case.unit_code.clone();
        if !may_supervise(c, v, &u) {
            return Err(message(
                StatusCode::FORBIDDEN,
                Some(v.chrome(c)),
                "无权提交",
                "您的端口未开放监督权限（管理员以 ports open --supervise 开放）。",
            ));
        }
        let Grant::Analyst { client } = &v.user.grant else {
            return Err(failed(c, v, "not an analyst"));
        };
        let kind = Kind::ALL.into_iter().find(|k| k.code() == f.kind);
        let checked = kind
            .ok_or_else(|| "请选择监督意见的类型".to_string())
            .and_then(|k| {
                actions::check_text("text", &f.text)
                    .map(|t| (k, t))
                    .map_err(|e| format!("意见内容{}", e.reason))
            });
        let (kind, text) = match checked {
            Ok(x) => x,
            Err(m) => return lead_page(c, v, &case, Some(m)),
        };
        let req = actions::Request {
            kind,
            text,
            documents: Vec::new(),
            leads: None,
            dismiss: false,
        };
        let target = format!("{u}/{}", case.case_id);
        let event = Event::new(v.actor(), "supervision.write", &target)
            .request(&v.request)
            .detail("kind", kind.code())
            .detail("client", client.as_str());
        c.svc
            .audit
            .append(&event.clone().outcome("started"))
            .map_err(|_| unavailable(c, v))?;
        let destinations = crate::config::notice_destinations(&c.svc.destinations, &u);
        match workbench::write(
            &c.svc.store,
            &u,
            &case.case_id,
            client,
            req,
            &destinations,
            Utc::now(),
        ) {
            Ok(a) => {
                c.svc
                    .audit
                    .append(&event.detail("id", a.id).detail("leads", a.leads.join(" ")))
                    .map_err(|_| unavailable(c, v))?;
                c.summary.invalidate();
                Ok(Redirect::to(&format!(
                    "/console/cases/{u}/{}#action-{}",
                    enc(case.case_id.as_str()),
                    a.id
                ))
                .into_response())
            }
            Err(e) => {
                let _ = c
                    .svc
                    .audit
                    .append(&event.outcome("failed").detail("error", e.to_string()));
                lead_page(c, v, &case, Some(format!("未能保存：{e}")))
            }
        }
    })
    .await
}

/// The answer form.
#[derive(Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

/// `POST /console/supervision/{id}/answer`: the unit's answer to an action on one of its cases.
pub async fn answer(
    State(c): Ctx,
    v: Viewer,
    Path(id): Path<String>,
    Form(f): Form<AnswerForm>,
) -> Response {
    if !csrf_ok(&c, &v, &f.csrf) {
        return csrf_refused(&c, &v);
    }
    blocking(c, v, move |c, v| {
        let Grant::Unit { unit } = &v.user.grant else {
            return Err(message(
                StatusCode::FORBIDDEN,
                Some(v.chrome(c)),
                "无权答复",
                "只有案件所属执法单位的人员可以答复监督意见。",
            ));
        };
        let not_found = || {
            message(
                StatusCode::NOT_FOUND,
                Some(v.chrome(c)),
                "未找到",
                format!("没有本单位的第 {id} 号监督意见。"),
            )
        };
        let n: u64 = id.parse().map_err(|_| not_found())?;
        let action: Action = c
            .svc
            .store
            .get_supervision(n)
            .map_err(|e| failed(c, v, e))?
            .filter(|a: &Action| a.unit_code == *unit)
            .ok_or_else(not_found)?;
        let text = actions::check_text("text", &f.text).map_err(|e| {
            message(
                StatusCode::BAD_REQUEST,
                Some(v.chrome(c)),
                "答复未保存",
                format!("答复内容{}。", e.reason),
            )
        })?;
        let target = format!("{}/{}", action.unit_code, action.case_id);
        let event = Event::new(v.actor(), "supervision.answer", &target)
            .request(&v.request)
            .detail("id", n);
        c.svc
            .audit
            .append(&event.clone().outcome("started"))
            .map_err(|_| unavailable(c, v))?;
        let a = workbench::answer(&c.svc.store, n, v.user.name.as_str(), text, &[], Utc::now())
            .map_err(|e| failed(c, v, e))?;
        c.svc
            .audit
            .append(&event.detail("answers", a.answers.len() as u64))
            .map_err(|_| unavailable(c, v))?;
        c.summary.invalidate();
        Ok(Redirect::to(&format!(
            "/console/cases/{}/{}#action-{n}",
            a.unit_code,
            enc(a.case_id.as_str())
        ))
        .into_response())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Transfers and their deadlines.

#[derive(Template)]
#[template(path = "console/transfers.html")]
struct TransfersPage {
    chrome: Option<Chrome>,
    overdue_only: bool,
    rows: Vec<(String, String, String, &'static str, String, bool)>,
    truncated: bool,
}

/// Whether a transfers list shows only overdue cases.
#[derive(Deserialize, Default)]
pub struct TransfersQuery {
    overdue: Option<String>,
}

/// `GET /console/transfers[?overdue=1]`: the viewer's units' transferred cases with their
/// 310号令 deadlines (an analyst's ports; a unit's own).
pub async fn transfers(State(c): Ctx, v: Viewer, Query(q): Query<TransfersQuery>) -> Response {
    blocking(c, v, move |c, v| {
        let units = readable(c, v)?;
        let overdue = q.overdue.is_some_and(|x| x == "1");
        let (list, truncated) = workbench::transfers(
            &c.svc.store,
            &units,
            c.svc.push.calendar(),
            Utc::now(),
            overdue,
            200,
        )
        .map_err(|e| failed(c, v, e))?;
        let (count, digest) = crate::api::keys_digest(
            list.iter()
                .map(|t| (case_key(&t.unit_code, &t.case_id), t.version)),
        );
        audited(
            c,
            v,
            Event::new(v.actor(), "console.transfers", v.user.name.as_str())
                .digest(&digest)
                .detail("overdue", overdue)
                .detail("count", count),
        )?;
        let rows = list
            .into_iter()
            .map(|t| {
                let next = t
                    .deadlines
                    .iter()
                    .find(|d| d.done.is_none())
                    .or(t.deadlines.last());
                let due = next
                    .map(|d| format!("{}：{}", d.step.label(), d.due.format("%Y-%m-%d %H:%M")))
                    .unwrap_or_else(|| "—".into());
                (
                    unit_name(c, &t.unit_code),
                    format!("/console/cases/{}/{}", t.unit_code, enc(t.case_id.as_str())),
                    format!("{}（{}）", t.case_id, t.party_name),
                    t.transfer.status.label(),
                    due,
                    t.overdue,
                )
            })
            .collect();
        let page = TransfersPage {
            chrome: Some(v.chrome(c)),
            overdue_only: overdue,
            rows,
            truncated,
        };
        Ok(html(StatusCode::OK, &page))
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Search.

/// A search result row.
pub struct FoundRow {
    unit_name: String,
    case_id: String,
    href: String,
    party: String,
    title: String,
    decided: String,
    leads: String,
}

#[derive(Template)]
#[template(path = "console/search.html")]
struct SearchPage {
    chrome: Option<Chrome>,
    by_options: Vec<(&'static str, &'static str, bool)>,
    q: String,
    message: Option<String>,
    searched: bool,
    rows: Vec<FoundRow>,
    truncated: bool,
}

/// The search form.
#[derive(Deserialize, Default)]
pub struct SearchQuery {
    #[serde(default)]
    by: String,
    #[serde(default)]
    q: String,
}

/// `GET /console/search?by=uscc|id_number|party_name&q=…`: cases across the viewer's ports.
pub async fn search(State(c): Ctx, v: Viewer, Query(q): Query<SearchQuery>) -> Response {
    blocking(c, v, move |c, v| {
        if matches!(v.user.grant, Grant::Admin) {
            return Err(message(
                StatusCode::FORBIDDEN,
                Some(v.chrome(c)),
                "无权查询",
                "管理员账户查看全区统计，不查询案件。",
            ));
        }
        let by_code = if q.by.is_empty() {
            "uscc"
        } else {
            q.by.as_str()
        };
        let mut page = SearchPage {
            chrome: Some(v.chrome(c)),
            by_options: [
                ("uscc", "统一社会信用代码"),
                ("id_number", "身份证件号码"),
                ("party_name", "当事人名称"),
            ]
            .into_iter()
            .map(|(k, l)| (k, l, k == by_code))
            .collect(),
            q: q.q.chars().take(100).collect(),
            message: None,
            searched: false,
            rows: Vec::new(),
            truncated: false,
        };
        let text = q.q.trim();
        if text.is_empty() {
            return Ok(html(StatusCode::OK, &page));
        }
        let by = match by_code {
            "uscc" => Uscc::parse(text)
                .map(SearchBy::Uscc)
                .map_err(|e| format!("统一社会信用代码有误：{e}")),
            "id_number" if text.chars().count() <= 64 => Ok(SearchBy::IdNumber(text.to_string())),
            "party_name" if text.chars().count() <= 100 => {
                Ok(SearchBy::PartyName(text.to_string()))
            }
            "id_number" | "party_name" => Err("查询内容过长".to_string()),
            _ => Err("请选择查询方式".to_string()),
        };
        let by = match by {
            Ok(b) => b,
            Err(m) => {
                page.message = Some(m);
                return Ok(html(StatusCode::BAD_REQUEST, &page));
            }
        };
        let units = readable(c, v)?;
        let (found, truncated) = workbench::search(&c.svc.store, &units, &by, SEARCH_LIMIT)
            .map_err(|e| failed(c, v, e))?;
        let (kind, value) = match &by {
            SearchBy::Uscc(u) => ("uscc", u.to_string()),
            SearchBy::IdNumber(x) => (
                "id_number",
                format!("sha256:{}", hex::encode(Sha256::digest(x.as_bytes()))),
            ),
            SearchBy::PartyName(x) => ("party_name", x.clone()),
        };
        let (count, digest) = crate::api::keys_digest(
            found
                .iter()
                .map(|f| (case_key(&f.unit_code, &f.case_id), f.version)),
        );
        audited(
            c,
            v,
            Event::new(v.actor(), "console.search", v.user.name.as_str())
                .digest(&digest)
                .detail("by", kind)
                .detail("value", value)
                .detail("ports", units.len() as u64)
                .detail("count", count),
        )?;
        page.searched = true;
        page.truncated = truncated;
        for f in found {
            let key = case_key(&f.unit_code, &f.case_id);
            let leads = c
                .svc
                .store
                .case_leads::<Lead>(&key)
                .map(|l| l.iter().filter(|l| l.status.is_open()).count())
                .unwrap_or(0);
            let id = enc(f.case_id.as_str());
            page.rows.push(FoundRow {
                href: if leads > 0 {
                    format!("/console/leads/{}/{id}", f.unit_code)
                } else {
                    format!("/console/cases/{}/{id}", f.unit_code)
                },
                unit_name: f.unit_name,
                case_id: f.case_id.to_string(),
                party: f.party_name,
                title: f.title,
                decided: opt_day(f.decided_on),
                leads: if leads > 0 {
                    format!("{leads} 条待处理")
                } else {
                    "—".into()
                },
            });
        }
        Ok(html(StatusCode::OK, &page))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_dates_and_facts_read_as_people_write_them() {
        assert_eq!(money(Fen::new(123_450)), "1234.50元");
        assert_eq!(money(Fen::new(999_999)), "9999.99元");
        assert_eq!(money(Fen::new(67_378_055)), "67.37万元（673780.55元）");
        assert_eq!(money(Fen::new(1_000_000)), "1.00万元（10000.00元）");
        assert_eq!(
            day(NaiveDate::from_ymd_opt(2026, 3, 5).unwrap()),
            "2026年3月5日"
        );
        assert_eq!(fact_zh("harm.serious_injuries"), "重伤人数");
        assert_eq!(fact_zh("cause"), "案由");
        assert_eq!(
            fact_zh("3 × amounts.sales_fen + amounts.goods_value_fen"),
            "3 × 销售金额 + 货值金额"
        );
        assert_eq!(fact_zh("something.else"), "something.else");
        assert_eq!(
            threshold_zh("contains one of 逃税, 偷税"),
            "含以下之一：逃税, 偷税"
        );
        assert_eq!(threshold_zh("≥ 2 within 365 days"), "≥ 2（365 日内）");
    }
}
