//! Quarterly reports: every version of every unit's report per quarter, kept (earlier versions
//! stay readable), and the submission window of each quarter.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cases::{abort, json};
use super::kv;
use super::{Store, StoreError, db_err};
use crate::model::{Quarter, Uscc};
use crate::reports::QuarterlyReport;

/// The submission window of a quarter, opened by the quarter-start job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportWindow {
    /// The quarter reported on.
    pub quarter: Quarter,
    /// When the window opened.
    pub opened_at: DateTime<Utc>,
    /// Submissions are due by the end of this day.
    pub deadline: chrono::NaiveDate,
}

/// What storing a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReportStored {
    /// A new version.
    New {
        /// Its version.
        version: u64,
    },
    /// Same content as the latest version: nothing stored.
    Unchanged {
        /// The latest version.
        version: u64,
    },
}

fn prefix(q: Quarter, unit: Option<&Uscc>) -> Vec<u8> {
    let mut k = q.to_string().into_bytes();
    k.push(0);
    if let Some(u) = unit {
        k.extend_from_slice(u.as_str().as_bytes());
        k.push(0);
    }
    k
}

fn report_key(q: Quarter, unit: &Uscc, version: u64) -> Vec<u8> {
    let mut k = prefix(q, Some(unit));
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn latest_key(q: Quarter, unit: &Uscc) -> String {
    format!("report_latest/{q}/{unit}")
}

fn report_outbox_key(destination: &str, q: Quarter, unit: &Uscc, version: u64) -> String {
    format!("report_outbox/{destination}/{q}/{unit}/{version:020}")
}

fn decode(k: &[u8], v: &[u8]) -> Result<QuarterlyReport, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        what: format!("report {}", String::from_utf8_lossy(k).replace('\0', "/")),
        reason: e.to_string(),
    })
}

impl Store {
    /// Stores `report` as the next version of its unit and quarter, unless its content equals the
    /// latest version's, and queues a new version for each of `destinations` in the same
    /// transaction. Sets `report.version`.
    pub fn report_put(
        &self,
        report: &mut QuarterlyReport,
        destinations: &[String],
    ) -> Result<ReportStored, StoreError> {
        let (q, unit) = (report.quarter, report.unit_code.clone());
        let lk = latest_key(q, &unit);
        kv::transaction(
            "report write",
            [&self.reports, &self.meta],
            |[trep, tmeta]| {
                let latest = tmeta
                    .get(lk.as_bytes())?
                    .and_then(|v| serde_json::from_slice::<u64>(&v).ok())
                    .unwrap_or(0);
                if latest > 0
                    && let Some(v) = trep.get(report_key(q, &unit, latest))?
                {
                    let prev = decode(b"latest", &v).map_err(|e| abort("report", e))?;
                    if prev.digest == report.digest {
                        return Ok(ReportStored::Unchanged { version: latest });
                    }
                }
                let mut r = report.clone();
                r.version = latest + 1;
                trep.insert(report_key(q, &unit, r.version), json("report", &r)?)?;
                tmeta.insert(lk.as_bytes(), json("report", &r.version)?)?;
                for d in destinations {
                    tmeta.insert(
                        report_outbox_key(d, q, &unit, r.version).as_bytes(),
                        json("report outbox", &r.generated_at)?,
                    )?;
                }
                Ok(ReportStored::New { version: r.version })
            },
        )
        .inspect(|stored| {
            report.version = match stored {
                ReportStored::New { version } | ReportStored::Unchanged { version } => *version,
            }
        })
    }

    /// One version of a report (the latest when `version` is `None`).
    pub fn report_get(
        &self,
        q: Quarter,
        unit: &Uscc,
        version: Option<u64>,
    ) -> Result<Option<QuarterlyReport>, StoreError> {
        let v = match version {
            Some(v) => v,
            None => match self.get_meta::<u64>(&latest_key(q, unit))? {
                Some(v) => v,
                None => return Ok(None),
            },
        };
        let k = report_key(q, unit, v);
        match self.reports.get(&k).map_err(db_err("report read"))? {
            Some(v) => decode(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    /// The latest version of every unit's report for `q`, by unit code.
    pub fn reports_latest(&self, q: Quarter) -> Result<Vec<QuarterlyReport>, StoreError> {
        let mut out: Vec<QuarterlyReport> = Vec::new();
        for kv in self.reports.scan_prefix(prefix(q, None)) {
            let (k, v) = kv.map_err(db_err("report scan"))?;
            let r = decode(&k, &v)?;
            // Versions of a unit follow each other in key order: keep the last.
            match out.last_mut() {
                Some(last) if last.unit_code == r.unit_code => *last = r,
                _ => out.push(r),
            }
        }
        Ok(out)
    }

    /// Every version of a unit's report for `q`, oldest first.
    pub fn report_versions(
        &self,
        q: Quarter,
        unit: &Uscc,
    ) -> Result<Vec<QuarterlyReport>, StoreError> {
        self.reports
            .scan_prefix(prefix(q, Some(unit)))
            .map(|kv| {
                let (k, v) = kv.map_err(db_err("report scan"))?;
                decode(&k, &v)
            })
            .collect()
    }

    /// The report versions queued for `destination`, oldest quarter, unit and version first.
    pub fn report_outbox(
        &self,
        destination: &str,
    ) -> Result<Vec<(Quarter, Uscc, u64)>, StoreError> {
        let prefix = format!("report_outbox/{destination}/");
        let mut out = Vec::new();
        for kv in self.meta.scan_prefix(prefix.as_bytes()) {
            let (k, _) = kv.map_err(db_err("meta scan"))?;
            let key = String::from_utf8_lossy(&k);
            let mut parts = key[prefix.len()..].split('/');
            let parsed = (|| {
                let q = Quarter::parse(parts.next()?).ok()?;
                let unit = Uscc::parse(parts.next()?).ok()?;
                let version = parts.next()?.parse().ok()?;
                Some((q, unit, version))
            })();
            out.push(parsed.ok_or_else(|| StoreError::Corrupt {
                what: format!("report outbox key {key}"),
                reason: "not destination/quarter/unit/version".into(),
            })?);
        }
        Ok(out)
    }

    /// Takes a delivered report version out of `destination`'s queue.
    pub fn report_outbox_done(
        &self,
        destination: &str,
        q: Quarter,
        unit: &Uscc,
        version: u64,
    ) -> Result<(), StoreError> {
        self.meta
            .remove(report_outbox_key(destination, q, unit, version))
            .map(drop)
            .map_err(db_err("meta write"))
    }

    /// Opens (or re-opens, keeping the first opening time) the submission window of `q`.
    pub fn report_window_open(
        &self,
        q: Quarter,
        deadline: chrono::NaiveDate,
    ) -> Result<ReportWindow, StoreError> {
        let name = format!("report_window/{q}");
        let w = match self.get_meta::<ReportWindow>(&name)? {
            Some(mut w) => {
                w.deadline = deadline;
                w
            }
            None => ReportWindow {
                quarter: q,
                opened_at: Utc::now(),
                deadline,
            },
        };
        self.set_meta(&name, &w)?;
        Ok(w)
    }

    /// The submission window of `q`, if it was opened.
    pub fn report_window(&self, q: Quarter) -> Result<Option<ReportWindow>, StoreError> {
        self.get_meta(&format!("report_window/{q}"))
    }
}

/// What a [`ReportGrant`] allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportRight {
    /// Submit the unit's reports (scope `submit:<unit>`).
    Submit,
    /// Read the unit's reports without holding its port (scope `reports:read`; detail lines
    /// then come with ID numbers masked).
    Read,
}

impl ReportRight {
    fn prefix(self) -> &'static str {
        match self {
            ReportRight::Submit => "submit_grant",
            ReportRight::Read => "report_read_grant",
        }
    }
}

/// A client allowed to submit, or to read, a unit's reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportGrant {
    /// The unit.
    pub unit_code: Uscc,
    /// The client.
    pub client: String,
    /// Who allowed it.
    pub granted_by: String,
    /// When.
    pub granted_at: DateTime<Utc>,
}

fn grant_key(right: ReportRight, client: &str, unit: &Uscc) -> String {
    format!("{}/{client}/{unit}", right.prefix())
}

impl Store {
    /// Allows `g.client` `right` on `g.unit_code`'s reports; false when it already had it.
    pub fn report_grant(&self, right: ReportRight, g: &ReportGrant) -> Result<bool, StoreError> {
        let k = grant_key(right, &g.client, &g.unit_code);
        let existed = self.get_meta::<ReportGrant>(&k)?.is_some();
        self.set_meta(&k, g)?;
        Ok(!existed)
    }

    /// Withdraws it; false when there was none.
    pub fn report_revoke(
        &self,
        right: ReportRight,
        client: &str,
        unit: &Uscc,
    ) -> Result<bool, StoreError> {
        Ok(self
            .meta
            .remove(grant_key(right, client, unit))
            .map_err(db_err("meta write"))?
            .is_some())
    }

    /// The units whose reports `client` has `right` on.
    pub fn report_grants_of(
        &self,
        right: ReportRight,
        client: &str,
    ) -> Result<Vec<Uscc>, StoreError> {
        Ok(self
            .meta_with_prefix::<ReportGrant>(&format!("{}/{client}/", right.prefix()))?
            .into_iter()
            .map(|(_, g)| g.unit_code)
            .collect())
    }
}
