//! Admin routes for supervision: rebuild every lead after the rules changed.

// Handlers return a ready response as their error: one per request, so its size costs nothing.
#![allow(clippy::result_large_err)]

use axum::extract::State;

use super::server::{Admin, Resp, Services, blocking_json, internal};
use crate::supervision::leads::{self, Refreshed};

/// What `POST /leads/rebuild` answers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RebuildAnswer {
    /// Cases evaluated.
    pub cases: u64,
    /// Leads open among them afterwards.
    pub open: u64,
    /// Rules evaluated.
    pub rules: usize,
}

/// `POST /leads/rebuild`: every stored case evaluated again under the loaded rules, keeping what
/// people did with each lead. Audited before and after.
pub(super) async fn rebuild(State(s): Services, Admin(actor): Admin) -> Resp {
    let lock = s.leads_lock.clone();
    let _one = lock.lock().await;
    blocking_json(move || {
        let target = format!("{} rule(s)", s.rules.len());
        s.audit
            .append(
                &crate::audit::Event::new(actor.clone(), "leads.rebuild", &target)
                    .outcome("started"),
            )
            .map_err(internal)?;
        let Refreshed { cases, open } =
            leads::rebuild(&s.store, &s.rules, &s.calendar, chrono::Utc::now(), &|| {
                false
            })
            .map_err(internal)?;
        s.audit
            .append(
                &crate::audit::Event::new(actor, "leads.rebuild", &target)
                    .detail("cases", cases)
                    .detail("open", open),
            )
            .map_err(internal)?;
        Ok(RebuildAnswer {
            cases,
            open,
            rules: s.rules.len(),
        })
    })
    .await
}
