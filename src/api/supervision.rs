//! The procuratorate's workbench routes: leads, transfers and their deadlines, the search for a
//! party across ports, a case's timeline, and supervision actions. Each reads only the ports the
//! caller may read (scope and open port, as every data route), is audited before its answer is
//! sent, and answers JSON or, on `Accept: application/xml`, XML (`schemas/port-api.xsd`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::ApiServices;
use super::problem::Problem;
use super::query;
use super::routes::{
    Caller, Ctx, DataReq, Resp, Work, audit_problem, audited_answer, audited_value, authenticate,
    custody_problem, data, keys_digest, read_body, store_problem,
};
use crate::audit::Event;
use crate::model::{CaseId, Uscc};
use crate::supervision::actions::{self, Request};
use crate::supervision::leads::{Lead, LeadStatus};
use crate::supervision::workbench::{self, SearchBy, WorkError};

/// Most entries of a search or transfer list (no cursor: a party or a district's transfers
/// are few; `truncated` says when there were more).
const MAX_RESULTS: usize = 200;

fn bad(field: &str, reason: impl Into<String>) -> Problem {
    Problem::BadParameter {
        field: field.into(),
        reason: reason.into(),
    }
}

fn work_problem(e: WorkError) -> Problem {
    match e {
        WorkError::NoCase { .. } | WorkError::NoAction(_) => Problem::NotFound(e.to_string()),
        WorkError::UnknownLead { .. } => bad("leads", e.to_string()),
        WorkError::Invalid(i) => bad(&i.field, i.reason),
        WorkError::Store(e) => store_problem(e),
    }
}

/// A `limit` parameter in `1..=max`.
fn limit(v: &str, max: usize) -> Result<usize, Problem> {
    v.parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| bad("limit", format!("{v:?} is not in 1..={max}")))
}

/// The units a list reads: the caller's readable ports, or the one asked for (which must be one
/// of them).
fn units_of(svc: &ApiServices, caller: &Caller, unit: Option<&str>) -> Result<Vec<Uscc>, Problem> {
    match unit {
        Some(u) => Ok(vec![caller.port(svc, u)?]),
        None => caller.readable(svc),
    }
}

/// The filters of `GET /v1/leads`.
#[derive(Debug, Default)]
struct LeadFilter {
    unit: Option<String>,
    rule: Option<String>,
    status: Option<String>,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
}

impl LeadFilter {
    fn describe(&self) -> String {
        format!(
            "unit={};rule={};status={};from={};to={}",
            self.unit.as_deref().unwrap_or(""),
            self.rule.as_deref().unwrap_or(""),
            self.status.as_deref().unwrap_or(""),
            self.from.map(|t| t.to_rfc3339()).unwrap_or_default(),
            self.to.map(|t| t.to_rfc3339()).unwrap_or_default()
        )
    }

    fn matches(&self, l: &Lead) -> bool {
        let rule_ok = self
            .rule
            .as_ref()
            .is_none_or(|r| l.key == *r || l.key.strip_prefix("rule:") == Some(r.as_str()));
        rule_ok
            && self.status.as_ref().is_none_or(|s| l.status.code() == s)
            && self.from.is_none_or(|t| l.detected_at >= t)
            && self.to.is_none_or(|t| l.detected_at <= t)
    }
}

/// The cursor's MAC input: the filter and the last key, each with its length.
fn lead_cursor_payload(f: &LeadFilter, last: &str) -> Vec<u8> {
    let d = f.describe();
    format!("leads\n{}:{d}\n{last}", d.len()).into_bytes()
}

/// `GET /v1/leads`.
pub(super) async fn leads_h(State(ctx): State<Arc<Ctx>>, d: DataReq) -> Result<Resp, Problem> {
    data(ctx, d, Work::Bulk, |svc, c, d| {
        list_leads(svc, c, &d.query, &d.rid, d.xml)
    })
    .await
}

fn list_leads(
    svc: &ApiServices,
    caller: &Caller,
    q: &str,
    request_id: &str,
    xml: bool,
) -> Result<Resp, Problem> {
    let mut f = LeadFilter::default();
    let mut n = query::DEFAULT_LIMIT;
    let mut cursor = None;
    for (k, v) in query::unique_pairs(q)? {
        match k.as_str() {
            "unit" => f.unit = Some(v),
            "rule" => {
                if v.is_empty() || v.len() > 128 {
                    return Err(bad("rule", "a rule id or lead key of 1 to 128 bytes"));
                }
                f.rule = Some(v);
            }
            "status" => {
                if !LeadStatus::CODES.contains(&v.as_str()) {
                    return Err(bad(
                        "status",
                        format!("{v:?} is not one of {}", LeadStatus::CODES.join(", ")),
                    ));
                }
                f.status = Some(v);
            }
            "detected_from" => f.from = Some(query::instant("detected_from", &v, false)?),
            "detected_to" => f.to = Some(query::instant("detected_to", &v, true)?),
            "limit" => n = limit(&v, query::MAX_LIMIT)?,
            "cursor" => cursor = Some(v),
            other => {
                return Err(bad(
                    other,
                    "unknown parameter (known: unit, rule, status, detected_from, detected_to, limit, cursor)",
                ));
            }
        }
    }
    let units = units_of(svc, caller, f.unit.as_deref())?;
    let after = match &cursor {
        None => None,
        Some(c) => {
            let (last, mac) = query::decode_cursor(c)?;
            let expected = svc
                .custody
                .mac("cursor", &lead_cursor_payload(&f, &last))
                .map_err(|e| custody_problem(&e))?;
            if !crate::keys::secret::constant_time_eq(&mac, &expected) {
                return Err(bad(
                    "cursor",
                    "not a cursor this gateway issued for this filter",
                ));
            }
            Some(last.into_bytes())
        }
    };
    let mut page: Vec<(Vec<u8>, Lead)> = Vec::new();
    let mut more = false;
    'units: for u in &units {
        // Keys sort by unit first: units before the cursor's are done.
        if let Some(a) = &after
            && a.as_slice() >= [u.as_str().as_bytes(), &[1]].concat().as_slice()
        {
            continue;
        }
        for item in svc.store.unit_leads_after::<Lead>(u, after.as_deref()) {
            let (key, lead) = item.map_err(store_problem)?;
            if !f.matches(&lead) {
                continue;
            }
            if page.len() == n {
                more = true;
                break 'units;
            }
            page.push((key, lead));
        }
    }
    let next = match (more, page.last()) {
        (true, Some((k, _))) => {
            let last = String::from_utf8_lossy(k).into_owned();
            let mac = svc
                .custody
                .mac("cursor", &lead_cursor_payload(&f, &last))
                .map_err(|e| custody_problem(&e))?;
            Some(query::encode_cursor(&last, &mac))
        }
        _ => None,
    };
    let (count, digest) = keys_digest(page.iter().map(|(k, l)| (k.clone(), l.case_version)));
    let leads: Vec<serde_json::Value> = page
        .into_iter()
        .map(|(k, l)| {
            let mut parts = k.split(|b| *b == 0);
            let unit = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let case = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let mut v = serde_json::to_value(&l).unwrap_or_default();
            if let Some(m) = v.as_object_mut() {
                m.insert("unit_code".into(), json!(unit));
                m.insert("case_id".into(), json!(case));
                if let Some(r) = l.key.strip_prefix("rule:") {
                    m.insert("rule".into(), json!(r));
                }
            }
            v
        })
        .collect();
    audited_value(
        svc,
        Event::new(caller.actor(), "leads.list", &caller.client.name)
            .request(request_id)
            .digest(&digest)
            .detail("filter", f.describe())
            .detail("count", count),
        xml,
        "leads",
        &json!({ "leads": leads, "next": next }),
        &[],
    )
}

/// `GET /v1/transfers`.
pub(super) async fn transfers_h(State(ctx): State<Arc<Ctx>>, d: DataReq) -> Result<Resp, Problem> {
    data(ctx, d, Work::Bulk, |svc, c, d| {
        let (mut overdue, mut unit, mut n) = (false, None, MAX_RESULTS);
        for (k, v) in query::unique_pairs(&d.query)? {
            match k.as_str() {
                "overdue" => overdue = query::boolean("overdue", &v)?,
                "unit" => unit = Some(v),
                "limit" => n = limit(&v, MAX_RESULTS)?,
                other => {
                    return Err(bad(
                        other,
                        "unknown parameter (known: overdue, unit, limit)",
                    ));
                }
            }
        }
        let units = units_of(svc, c, unit.as_deref())?;
        let (list, truncated) = workbench::transfers(
            &svc.store,
            &units,
            svc.push.calendar(),
            chrono::Utc::now(),
            overdue,
            n,
        )
        .map_err(store_problem)?;
        let (count, digest) = keys_digest(
            list.iter()
                .map(|t| (crate::model::case_key(&t.unit_code, &t.case_id), t.version)),
        );
        audited_answer(
            svc,
            Event::new(c.actor(), "transfers.list", &c.client.name)
                .request(&d.rid)
                .digest(&digest)
                .detail("overdue", overdue)
                .detail("count", count),
            d.xml,
            "transfers",
            &json!({ "transfers": list, "truncated": truncated }),
        )
    })
    .await
}

/// `GET /v1/search`.
pub(super) async fn search_h(State(ctx): State<Arc<Ctx>>, d: DataReq) -> Result<Resp, Problem> {
    data(ctx, d, Work::Point, |svc, c, d| {
        let mut by = None;
        let mut n = 50;
        let mut set = |field: &str, v: SearchBy| {
            if by.is_some() {
                return Err(bad(
                    field,
                    "give exactly one of uscc, id_number, party_name",
                ));
            }
            by = Some(v);
            Ok(())
        };
        for (k, v) in query::unique_pairs(&d.query)? {
            match k.as_str() {
                "uscc" => set(
                    "uscc",
                    SearchBy::Uscc(Uscc::parse(&v).map_err(|e| bad("uscc", e.to_string()))?),
                )?,
                "id_number" => {
                    let t = v.trim();
                    if t.is_empty() || t.chars().count() > 64 {
                        return Err(bad("id_number", "a document number of 1 to 64 characters"));
                    }
                    set("id_number", SearchBy::IdNumber(t.to_string()))?
                }
                "party_name" => {
                    let t = v.trim();
                    if t.is_empty() || t.chars().count() > 100 {
                        return Err(bad(
                            "party_name",
                            "a name or part of one, 1 to 100 characters",
                        ));
                    }
                    set("party_name", SearchBy::PartyName(t.to_string()))?
                }
                "limit" => n = limit(&v, MAX_RESULTS)?,
                other => {
                    return Err(bad(
                        other,
                        "unknown parameter (known: uscc, id_number, party_name, limit)",
                    ));
                }
            }
        }
        let by = by.ok_or_else(|| bad("uscc", "give one of uscc, id_number, party_name"))?;
        let units = c.readable(svc)?;
        let (found, truncated) =
            workbench::search(&svc.store, &units, &by, n).map_err(store_problem)?;
        // What was looked for is recorded: a company by its code, a name as given; a person's
        // document number by its SHA-256 only (the audit log is exported and kept for years).
        let (kind, value) = match &by {
            SearchBy::Uscc(u) => ("uscc", u.as_str().to_string()),
            SearchBy::IdNumber(x) => (
                "id_number",
                format!("sha256:{}", hex::encode(Sha256::digest(x.as_bytes()))),
            ),
            SearchBy::PartyName(x) => ("party_name", x.clone()),
        };
        let (count, digest) = keys_digest(
            found
                .iter()
                .map(|f| (crate::model::case_key(&f.unit_code, &f.case_id), f.version)),
        );
        audited_answer(
            svc,
            Event::new(c.actor(), "search", &c.client.name)
                .request(&d.rid)
                .digest(&digest)
                .detail("by", kind)
                .detail("value", value)
                .detail("ports", units.len() as u64)
                .detail("count", count),
            d.xml,
            "results",
            &json!({ "cases": found, "truncated": truncated }),
        )
    })
    .await
}

/// `GET /v1/ports/{unit}/cases/{case_id}/timeline`.
pub(super) async fn timeline_h(
    State(ctx): State<Arc<Ctx>>,
    Path((unit, case_id)): Path<(String, String)>,
    d: DataReq,
) -> Result<Resp, Problem> {
    data(ctx, d, Work::Bulk, move |svc, c, d| {
        let unit = c.port(svc, &unit)?;
        let id =
            CaseId::parse(&case_id).map_err(|_| Problem::NotFound(format!("no case {case_id}")))?;
        let case = svc
            .store
            .get_case(&unit, &id)
            .map_err(store_problem)?
            .ok_or_else(|| Problem::NotFound(format!("no case {id} in port {unit}")))?;
        let t = workbench::timeline(&svc.store, &case, svc.push.calendar(), chrono::Utc::now())
            .map_err(store_problem)?;
        audited_answer(
            svc,
            Event::new(c.actor(), "case.timeline", format!("{unit}/{id}"))
                .request(&d.rid)
                .detail("version", case.version)
                .detail("entries", t.entries.len() as u64),
            d.xml,
            "timeline",
            &t,
        )
    })
    .await
}

/// `POST /v1/ports/{unit}/cases/{case_id}/supervision`: needs the scope
/// `port:<unit>:supervise` and the port opened with `--supervise`.
pub(super) async fn supervise_h(
    State(ctx): State<Arc<Ctx>>,
    Path((unit, case_id)): Path<(String, String)>,
    d: DataReq,
    headers: HeaderMap,
    body: Body,
) -> Result<Resp, Problem> {
    let svc = ctx.svc.clone();
    let (state, peer, auth) = (ctx.state.clone(), d.peer.clone(), d.auth.clone());
    // Who asks and may they, before the body is read.
    let (caller, unit) = {
        let svc = svc.clone();
        tokio::task::spawn_blocking(move || {
            let caller = authenticate(&svc, &state, &peer, auth.as_deref())?;
            let unit = caller.port(&svc, &unit)?;
            let granted = svc
                .store
                .port_grant(&unit, &caller.client.name)
                .map_err(store_problem)?
                .is_some_and(|g| g.supervise);
            if !caller.claims.has_scope(&format!("port:{unit}:supervise")) || !granted {
                return Err(Problem::Forbidden(format!(
                    "the client may read port {unit} but not write supervision actions on it{}",
                    if granted {
                        " (the token lacks the scope port:<unit>:supervise: get a new token)"
                    } else {
                        " (an administrator grants it with `xianjie ports open UNIT --client NAME --supervise`)"
                    }
                )));
            }
            Ok((caller, unit))
        })
        .await
        .map_err(|_| Problem::Internal)??
    };
    let id =
        CaseId::parse(&case_id).map_err(|_| Problem::NotFound(format!("no case {case_id}")))?;
    if super::media_type(&headers).as_deref() != Some("application/json") {
        return Err(bad("content-type", "send the action as application/json"));
    }
    let bytes = read_body(body, actions::MAX_BODY).await?;
    let req = Request::parse(&bytes).map_err(|e| bad(&e.field, e.reason))?;
    let destinations = crate::config::notice_destinations(&svc.destinations, &unit);
    // A status set here must not be overwritten by a refresh that read the lead before.
    let _leads = svc.leads_lock.clone().lock_owned().await;
    let rid = d.rid.clone();
    let xml = d.xml;
    tokio::task::spawn_blocking(move || {
        let target = format!("{unit}/{id}");
        let event = Event::new(caller.actor(), "supervision.write", &target)
            .request(&rid)
            .digest(&hex::encode(Sha256::digest(&bytes)))
            .detail("kind", req.kind.code())
            .detail("documents", req.documents.len() as u64);
        // Recorded before it is stored: no write without its entry.
        svc.audit
            .append(&event.clone().outcome("started"))
            .map_err(|e| audit_problem(&e))?;
        let action = match workbench::write(
            &svc.store,
            &unit,
            &id,
            &caller.client.name,
            req,
            &destinations,
            chrono::Utc::now(),
        ) {
            Ok(a) => a,
            Err(e) => {
                let _ = svc
                    .audit
                    .append(&event.outcome("failed").detail("error", e.to_string()));
                return Err(work_problem(e));
            }
        };
        let mut r = audited_answer(
            &svc,
            event
                .detail("id", action.id)
                .detail("leads", action.leads.join(" "))
                .detail("notices", action.notified.len() as u64),
            xml,
            "supervision",
            &action,
        )?;
        *r.status_mut() = StatusCode::CREATED;
        Ok(r)
    })
    .await
    .map_err(|_| Problem::Internal)?
}
