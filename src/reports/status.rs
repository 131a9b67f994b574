//! Where each unit's report for a quarter stands: computed, submitted, missing (the window is
//! open and the deadline ahead) or overdue.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::model::Origin;
use crate::config::ReportsConfig;
use crate::model::Quarter;
use crate::store::{ReportWindow, Store, StoreError};

/// A unit's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Computed from the gateway's cases.
    Computed,
    /// Submitted by the unit.
    Submitted,
    /// Expected from the unit; the deadline has not passed.
    Missing,
    /// Expected from the unit; the deadline has passed.
    Overdue,
}

/// One unit's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitState {
    /// Unit.
    pub unit_code: String,
    /// Its name.
    pub unit_name: String,
    /// Where its report stands.
    pub state: State,
    /// Latest version, if any.
    pub version: Option<u64>,
    /// When that version was made.
    pub generated_at: Option<DateTime<Utc>>,
    /// Cases in it.
    pub total: Option<u64>,
    /// Submitted after the deadline.
    pub late: bool,
}

/// A quarter's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarterStatus {
    /// The quarter.
    pub quarter: Quarter,
    /// Its submission window, once opened.
    pub window: Option<ReportWindow>,
    /// Submissions due by the end of this day.
    pub deadline: NaiveDate,
    /// Units, by code.
    pub units: Vec<UnitState>,
}

/// The deadline of `q`'s submissions.
pub fn deadline(q: Quarter, cfg: &ReportsConfig) -> NaiveDate {
    q.last_day() + chrono::Duration::days(i64::from(cfg.deadline_days))
}

/// The status of `q` as of `today`.
pub fn status(
    store: &Store,
    q: Quarter,
    cfg: &ReportsConfig,
    today: NaiveDate,
) -> Result<QuarterStatus, StoreError> {
    let due = deadline(q, cfg);
    let mut units: Vec<UnitState> = store
        .reports_latest(q)?
        .into_iter()
        .map(|r| {
            let (state, late) = match &r.origin {
                Origin::Computed => (State::Computed, false),
                Origin::Submitted { .. } => (State::Submitted, r.generated_at.date_naive() > due),
            };
            UnitState {
                unit_code: r.unit_code.to_string(),
                unit_name: r.unit_name.clone(),
                state,
                version: Some(r.version),
                generated_at: Some(r.generated_at),
                total: Some(r.summary.total),
                late,
            }
        })
        .collect();
    for (unit, name) in &cfg.submitters {
        if !units.iter().any(|u| u.unit_code == unit.as_str()) {
            units.push(UnitState {
                unit_code: unit.to_string(),
                unit_name: name.clone(),
                state: if today > due {
                    State::Overdue
                } else {
                    State::Missing
                },
                version: None,
                generated_at: None,
                total: None,
                late: false,
            });
        }
    }
    units.sort_by(|a, b| a.unit_code.cmp(&b.unit_code));
    Ok(QuarterStatus {
        quarter: q,
        window: store.report_window(q)?,
        deadline: due,
        units,
    })
}
