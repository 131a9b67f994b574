//! Computing every fed unit's report for a quarter from the store: a case belongs to the quarter
//! of its decision date. Exact and reproducible — the same cases give the same report, byte for
//! byte, and a new version only when late data changes it.

use chrono::{DateTime, Utc};

use super::model::{CaseView, Origin, QuarterlyReport};
use crate::model::{Quarter, Uscc};
use crate::push::calendar::WorkCalendar;
use crate::store::{ReportStored, Store, StoreError};

/// The reports of every unit whose cases the gateway holds, for `q` (a unit without decisions in
/// the quarter gets an empty report), by unit code.
pub fn compute(
    store: &Store,
    q: Quarter,
    cal: &WorkCalendar,
    now: DateTime<Utc>,
) -> Result<Vec<QuarterlyReport>, StoreError> {
    // The quarter's cases are found by the text of their decision dates before anything is
    // decoded; the decoded date is then checked (the text could occur in a free-text field).
    let first = q.first_day();
    let needles: Vec<String> = (0..3)
        .map(|i| {
            use chrono::Datelike;
            format!(
                "\"decided_on\":\"{:04}-{:02}-",
                first.year(),
                first.month() + i
            )
        })
        .collect();
    let units: Vec<Uscc> = store.unit_counts()?.into_keys().collect();
    let actions = store
        .all_supervision::<crate::supervision::actions::Action>()
        .collect::<Result<Vec<_>, _>>()?;
    // Units are independent: two workers take every other unit (the machine has two cores).
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    let results: Vec<Result<Vec<QuarterlyReport>, StoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (units, needles, actions) = (&units, &needles, &actions);
                s.spawn(move || {
                    let finders: Vec<memchr::memmem::Finder<'_>> = needles
                        .iter()
                        .map(|n| memchr::memmem::Finder::new(n.as_bytes()))
                        .collect();
                    units
                        .iter()
                        .skip(w)
                        .step_by(workers)
                        .map(|unit| unit_report(store, q, unit, &finders, actions, cal, now))
                        .filter_map(Result::transpose)
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(StoreError::Corrupt {
                        what: "report computation".into(),
                        reason: "a worker panicked".into(),
                    })
                })
            })
            .collect()
    });
    let mut reports = Vec::new();
    for r in results {
        reports.extend(r?);
    }
    reports.sort_by(|a, b| a.unit_code.cmp(&b.unit_code));
    Ok(reports)
}

/// One unit's report for `q`; `None` when the unit has no case at all.
fn unit_report(
    store: &Store,
    q: Quarter,
    unit: &Uscc,
    finders: &[memchr::memmem::Finder<'_>],
    actions: &[crate::supervision::actions::Action],
    cal: &WorkCalendar,
    now: DateTime<Utc>,
) -> Result<Option<QuarterlyReport>, StoreError> {
    let mut name = None;
    let mut details = Vec::new();
    let mut facts = Vec::new();
    store.unit_contents_containing(unit, finders, |content| {
        let view: CaseView = serde_json::from_slice(content).map_err(|e| StoreError::Corrupt {
            what: format!("a case of {unit}"),
            reason: e.to_string(),
        })?;
        name.get_or_insert_with(|| view.unit_name.clone());
        if view.decided_on.is_some_and(|d| q.contains(d)) {
            facts.push(view.facts());
            if let Some(d) = view.detail() {
                details.push(d);
            }
        }
        Ok(())
    })?;
    let name = match name {
        Some(n) => n,
        None => match store.unit_cases(unit).next().transpose()? {
            Some(c) => c.unit_name,
            None => return Ok(None),
        },
    };
    let mut r = QuarterlyReport::new(q, unit.clone(), name, Origin::Computed, details, Vec::new());
    r.supervision = Some(super::supervision::figures(
        store, unit, q, &facts, actions, cal, now,
    )?);
    r.digest = r.content_digest();
    Ok(Some(r))
}

/// Computes and stores `q`'s reports; a unit's report gets a new version only when it changed,
/// and each new version is queued for `destinations` (those that take reports).
pub fn build(
    store: &Store,
    q: Quarter,
    destinations: &[String],
    cal: &WorkCalendar,
    now: DateTime<Utc>,
) -> Result<Vec<(QuarterlyReport, ReportStored)>, StoreError> {
    compute(store, q, cal, now)?
        .into_iter()
        .map(|mut r| {
            let stored = store.report_put(&mut r, destinations)?;
            Ok((r, stored))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{RunOptions, Summary as IngestSummary, ingest_file, load};
    use crate::model::{Action, Case, CaseId, CaseStatus};
    use std::collections::BTreeMap;
    use std::path::Path;

    /// A store holding the generated sample of every adapter.
    fn sample_store(dir: &Path, cases: u64) -> Store {
        let samples = dir.join("samples");
        let files = crate::sample::generate(
            &samples,
            &crate::sample::SampleOptions {
                cases,
                bad_fraction: 0.0,
                seed: 11,
            },
        )
        .unwrap();
        let store = Store::open(&dir.join("data")).unwrap();
        for f in files {
            let adapter = load(
                &Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("adapters")
                    .join(&f.adapter),
            )
            .unwrap();
            ingest_file(
                &adapter,
                &f.path,
                &store,
                RunOptions::default(),
                &|_: &IngestSummary| {},
            )
            .unwrap();
        }
        store
    }

    fn cal() -> WorkCalendar {
        WorkCalendar::official().unwrap()
    }

    /// The quarter with the most decisions.
    fn busiest(cases: &[Case]) -> Quarter {
        let mut n: BTreeMap<Quarter, u64> = BTreeMap::new();
        for c in cases {
            if let Some(d) = c.decided_on {
                *n.entry(Quarter::of(d)).or_default() += 1;
            }
        }
        n.into_iter().max_by_key(|(_, n)| *n).unwrap().0
    }

    #[test]
    fn counts_equal_an_independent_count_of_the_stored_cases() {
        let tmp = tempfile::tempdir().unwrap();
        let store = sample_store(tmp.path(), 1500);
        let all: Vec<Case> = store.all_cases().map(Result::unwrap).collect();
        let q = busiest(&all);
        // Leads, and the procuratorate's actions on some of the quarter's cases (every third
        // recommendation answered), for the supervision block.
        let rules =
            crate::supervision::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
                .unwrap();
        crate::supervision::leads::refresh(&store, &rules, &cal(), Utc::now(), &|| false).unwrap();
        let in_q: Vec<&Case> = all
            .iter()
            .filter(|c| c.decided_on.is_some_and(|d| q.contains(d)))
            .collect();
        let at = q.first_day().and_hms_opt(12, 0, 0).unwrap().and_utc();
        let mut written = Vec::new();
        for (i, c) in in_q.iter().step_by(7).take(30).enumerate() {
            let kind = ["recommend_transfer", "request_reasons", "note"][i % 3];
            let req = crate::supervision::actions::Request::parse(
                format!("{{\"kind\":\"{kind}\",\"text\":\"t{i}\"}}").as_bytes(),
            )
            .unwrap();
            let a = crate::supervision::workbench::write(
                &store,
                &c.unit_code,
                &c.case_id,
                "procuratorate",
                req,
                &[],
                at,
            )
            .unwrap();
            if i % 2 == 0 {
                crate::supervision::workbench::answer(
                    &store,
                    a.id,
                    "officer",
                    "ok".into(),
                    &[],
                    at,
                )
                .unwrap();
            }
            written.push(
                store
                    .get_supervision::<crate::supervision::actions::Action>(a.id)
                    .unwrap()
                    .unwrap(),
            );
        }
        let leads: Vec<(Vec<u8>, crate::supervision::leads::Lead)> =
            store.all_leads().collect::<Result<_, _>>().unwrap();
        let now = Utc::now();
        let reports = compute(&store, q, &cal(), now).unwrap();
        // Every unit with data has a report, with or without decisions in the quarter.
        let units: std::collections::BTreeSet<&Uscc> = all.iter().map(|c| &c.unit_code).collect();
        assert_eq!(reports.len(), units.len());
        let mut grand_total = 0;
        for r in &reports {
            let mine: Vec<&Case> = all
                .iter()
                .filter(|c| {
                    c.unit_code == r.unit_code && c.decided_on.is_some_and(|d| q.contains(d))
                })
                .collect();
            let s = &r.summary;
            assert_eq!(s.total, mine.len() as u64, "{}", r.unit_code);
            assert_eq!(r.details.len(), mine.len());
            grand_total += s.total;
            for a in Action::ALL {
                let truth = mine.iter().filter(|c| c.action == *a).count() as u64;
                assert_eq!(
                    s.by_action.get(a.code()).copied().unwrap_or(0),
                    truth,
                    "{a:?}"
                );
            }
            // Money of the decisions that stand, and of the revoked ones apart.
            let sum = |revoked: bool, f: &dyn Fn(&Case) -> Option<crate::model::Fen>| -> u64 {
                mine.iter()
                    .filter(|c| (c.status == CaseStatus::Revoked) == revoked)
                    .filter_map(|c| f(c))
                    .map(|f| f.get())
                    .sum()
            };
            let fine = |c: &Case| c.penalty.as_ref()?.fine_fen;
            let confiscated = |c: &Case| c.penalty.as_ref()?.confiscated_fen;
            assert_eq!(s.fines_fen.get(), sum(false, &fine));
            assert_eq!(s.confiscations_fen.get(), sum(false, &confiscated));
            assert_eq!(s.revoked_fines_fen.get(), sum(true, &fine));
            assert_eq!(s.revoked_confiscations_fen.get(), sum(true, &confiscated));
            let count = |f: &dyn Fn(&Case) -> bool| mine.iter().filter(|c| f(c)).count() as u64;
            assert_eq!(s.major, count(&|c| c.major));
            assert_eq!(s.legal_reviews, count(&|c| c.legal_review));
            assert_eq!(s.suspected_crime, count(&|c| c.transfer.suspected_crime));
            assert_eq!(s.revoked, count(&|c| c.status == CaseStatus::Revoked));
            assert_eq!(s.corrected, count(&|c| c.status == CaseStatus::Corrected));
            let transferred: u64 = s.transfers_by_status.values().sum();
            assert_eq!(transferred, s.suspected_crime);
            let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
            for c in mine.iter().filter(|c| c.action == Action::Penalty) {
                for k in &c.penalty.as_ref().unwrap().kinds {
                    *kinds.entry(k.code().to_string()).or_default() += 1;
                }
            }
            assert_eq!(s.penalties_by_kind, kinds);
            // Details are ordered by case number.
            assert!(r.details.windows(2).all(|w| w[0].case_id < w[1].case_id));
            // The supervision block, counted again from the full cases, the leads and the
            // actions as stored.
            let f = r
                .supervision
                .as_ref()
                .expect("a computed report has the block");
            use crate::supervision::deadlines::{self, State, Step};
            let dl =
                |c: &Case| deadlines::of(&c.transfer, &cal(), crate::supervision::leads::cst(now));
            let handed = |c: &Case| {
                c.transfer.transferred_on.is_some()
                    || c.transfer.transferred_at.is_some()
                    || !matches!(
                        c.transfer.status,
                        crate::model::TransferStatus::None
                            | crate::model::TransferStatus::Recommended
                    )
            };
            assert_eq!(f.suspected_crime, s.suspected_crime);
            assert_eq!(f.transferred, count(&|c| handed(c)));
            assert_eq!(
                f.transferred_on_time,
                count(&|c| handed(c)
                    && dl(c)
                        .iter()
                        .any(|d| d.step == Step::Transfer && d.state == State::Met))
            );
            assert_eq!(
                f.transferred_on_time + f.transferred_late + f.transfer_timing_unknown,
                f.transferred
            );
            assert_eq!(
                f.police_decisions_overdue,
                count(&|c| dl(c)
                    .iter()
                    .any(|d| d.step == Step::PoliceDecision && d.broken()))
            );
            let mut open: BTreeMap<String, u64> = BTreeMap::new();
            for (k, l) in &leads {
                if l.status.is_open() && mine.iter().any(|c| &c.key() == k) {
                    *open.entry(l.key.clone()).or_default() += 1;
                }
            }
            let listed: BTreeMap<String, u64> = f
                .open_leads
                .iter()
                .map(|l| (l.key.clone(), l.count))
                .collect();
            assert_eq!(listed, open, "{}", r.unit_code);
            let acts: Vec<_> = written
                .iter()
                .filter(|a| a.unit_code == r.unit_code)
                .collect();
            let rec = |answered: bool| {
                acts.iter()
                    .filter(|a| a.kind == crate::supervision::actions::Kind::RecommendTransfer)
                    .filter(|a| !answered || !a.answers.is_empty())
                    .count() as u64
            };
            assert_eq!(
                (f.recommendations_issued, f.recommendations_answered),
                (rec(false), rec(true))
            );
            assert_eq!(
                f.actions_issued,
                acts.iter().filter(|a| a.kind.asks_answer()).count() as u64
            );
            assert_eq!(f.major, s.major);
            assert_eq!(f.major_reviewed, count(&|c| c.major && c.legal_review));
            match &f.major_reviewed_percent {
                None => assert_eq!(f.major, 0),
                Some(p) => {
                    let exact = 100.0 * f.major_reviewed as f64 / f.major as f64;
                    let shown: f64 = p.parse().unwrap();
                    assert!((shown - exact).abs() <= 0.005 + 1e-9, "{p} vs {exact}");
                }
            }
        }
        let truth = all
            .iter()
            .filter(|c| c.decided_on.is_some_and(|d| q.contains(d)))
            .count() as u64;
        assert!(truth > 0);
        assert_eq!(grand_total, truth);
        let issued: u64 = reports
            .iter()
            .map(|r| r.supervision.as_ref().unwrap().recommendations_issued)
            .sum();
        let recommended = written
            .iter()
            .filter(|a| a.kind == crate::supervision::actions::Kind::RecommendTransfer)
            .count() as u64;
        assert!(recommended >= 3, "{recommended}");
        assert_eq!(
            issued, recommended,
            "every recommendation written is counted once"
        );
        // Reproducible.
        let again = compute(&store, q, &cal(), Utc::now()).unwrap();
        assert_eq!(
            reports.iter().map(|r| &r.digest).collect::<Vec<_>>(),
            again.iter().map(|r| &r.digest).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_late_record_makes_a_new_version_and_the_old_one_stays_readable() {
        let tmp = tempfile::tempdir().unwrap();
        let store = sample_store(tmp.path(), 300);
        let all: Vec<Case> = store.all_cases().map(Result::unwrap).collect();
        let q = busiest(&all);
        let first = build(&store, q, &[], &cal(), Utc::now()).unwrap();
        assert!(
            first
                .iter()
                .all(|(r, s)| *s == ReportStored::New { version: 1 } && r.version == 1)
        );
        // Nothing changed: nothing new.
        let second = build(&store, q, &[], &cal(), Utc::now()).unwrap();
        assert!(
            second
                .iter()
                .all(|(_, s)| *s == ReportStored::Unchanged { version: 1 })
        );
        // A late case of one unit, decided in the quarter.
        let mut late = all
            .iter()
            .find(|c| c.decided_on.is_some_and(|d| q.contains(d)))
            .unwrap()
            .clone();
        late.case_id = CaseId::parse("LATE-0001").unwrap();
        let unit = late.unit_code.clone();
        store.upsert_cases(&[late], &|_, _| Vec::new()).unwrap();
        let third = build(&store, q, &[], &cal(), Utc::now()).unwrap();
        for (r, s) in &third {
            if r.unit_code == unit {
                assert_eq!(*s, ReportStored::New { version: 2 });
            } else {
                assert_eq!(*s, ReportStored::Unchanged { version: 1 });
            }
        }
        let v1 = store.report_get(q, &unit, Some(1)).unwrap().unwrap();
        let v2 = store.report_get(q, &unit, None).unwrap().unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(v2.summary.total, v1.summary.total + 1);
        assert!(v2.details.iter().any(|d| d.case_id == "LATE-0001"));
        assert_eq!(store.report_versions(q, &unit).unwrap().len(), 2);
        let latest = store.reports_latest(q).unwrap();
        assert_eq!(latest.len(), first.len());
        assert!(
            latest
                .iter()
                .all(|r| r.version == if r.unit_code == unit { 2 } else { 1 })
        );
    }
}
