//! The deadlines of a suspected-crime transfer under the 310号令 (《行政执法机关移送涉嫌犯罪案件的规定》,
//! 国务院令第310号, revised 2020): hand over within 24 hours of the approval (art. 5); the police
//! decide within 3 days of accepting the case (art. 8); a refusal may be put to reconsideration
//! within 3 days (art. 9), and the police decide that within 3 days (art. 9).
//!
//! How the days are counted. The order sets no rule of its own, and "3日" are calendar days: the
//! laws that count in working days say so for their own periods only (行政处罚法第八十五条,
//! 行政许可法第八十二条, 行政强制法第六十九条). So, as the general rule of periods has it
//! (《民法典》第二百零一条、第二百零三条; 《刑事诉讼法》第一百零五条 alike), the day the period starts
//! does not count, and a period whose last day is a statutory holiday or a weekend ends on the
//! next working day of the [`WorkCalendar`]. The 24 hours run by the clock, with no holiday
//! extension; when the source gives only days, a hand-over on the day after the approval is
//! taken as within them (it may be), and only a later day breaks the deadline.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

use crate::model::{Moment, PoliceDecision, Transfer};
use crate::push::calendar::WorkCalendar;

/// A step with a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Hand the approved case over to the police (24 hours, art. 5).
    Transfer,
    /// The police's filing decision (3 days from acceptance, art. 8).
    PoliceDecision,
    /// The unit's request for reconsideration of a refusal (3 days, art. 9).
    ReconsiderationRequest,
    /// The police's decision on reconsideration (3 days, art. 9).
    ReconsiderationDecision,
}

impl Step {
    /// What the step is, in Chinese as the order says it.
    pub fn label(self) -> &'static str {
        match self {
            Step::Transfer => "批准后24小时内移送",
            Step::PoliceDecision => "受理后3日内作出立案决定",
            Step::ReconsiderationRequest => "不予立案后3日内提请复议",
            Step::ReconsiderationDecision => "提请复议后3日内作出复议决定",
        }
    }
}

/// Where a deadline stands on a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Done in time.
    Met,
    /// Done, late.
    Late,
    /// Not done, still in time.
    Open,
    /// Not done, and the time has passed.
    Overdue,
}

/// One deadline of a transfer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Deadline {
    /// The step.
    pub step: Step,
    /// The moment it counts from.
    pub from: Moment,
    /// The last moment it may be done (China Standard Time).
    pub due: NaiveDateTime,
    /// When it was done, if it was.
    pub done: Option<Moment>,
    /// Where it stands.
    pub state: State,
}

impl Deadline {
    /// Whether it is broken: done late, or not done in time.
    pub fn broken(&self) -> bool {
        matches!(self.state, State::Late | State::Overdue)
    }
}

/// The end of a period of `days` calendar days after `from`'s day, moved to the next working
/// day when it falls on a day off: the last second of that day.
fn days_after(cal: &WorkCalendar, from: NaiveDate, days: i64) -> NaiveDateTime {
    let mut last = from + Duration::days(days);
    while !cal.is_working_day(last) {
        last += Duration::days(1);
    }
    end_of(last)
}

fn end_of(d: NaiveDate) -> NaiveDateTime {
    d.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN))
}

/// Whether `done` is within `due`: a day-only moment is within when its day is `due`'s day or
/// earlier.
fn within(done: Moment, due: NaiveDateTime) -> bool {
    match done {
        Moment::At(t) => t <= due,
        Moment::Day(d) => d <= due.date(),
    }
}

fn deadline(
    step: Step,
    from: Moment,
    due: NaiveDateTime,
    done: Option<Moment>,
    now: NaiveDateTime,
) -> Deadline {
    let state = match done {
        Some(d) if within(d, due) => State::Met,
        Some(_) => State::Late,
        None if now <= due => State::Open,
        None => State::Overdue,
    };
    Deadline {
        step,
        from,
        due,
        done,
        state,
    }
}

/// The deadlines a transfer has reached, as of `now` (China Standard Time).
pub fn of(t: &Transfer, cal: &WorkCalendar, now: NaiveDateTime) -> Vec<Deadline> {
    let mut out = Vec::new();
    let handed = t.transferred_at.or(t.transferred_on.map(Moment::Day));
    if let Some(approved) = t.approved_at {
        let due = match approved {
            Moment::At(a) => a + Duration::hours(24),
            Moment::Day(d) => end_of(d + Duration::days(1)),
        };
        out.push(deadline(Step::Transfer, approved, due, handed, now));
    }
    if let Some(accepted) = t.accepted_at {
        let due = days_after(cal, accepted.date(), 3);
        let decided = t.police_decided_at.filter(|_| t.police_decision.is_some());
        out.push(deadline(Step::PoliceDecision, accepted, due, decided, now));
    }
    if let (Some(PoliceDecision::NotFiled), Some(refused)) =
        (t.police_decision, t.police_decided_at)
    {
        let due = days_after(cal, refused.date(), 3);
        let asked = t.reconsideration_requested_at;
        out.push(deadline(
            Step::ReconsiderationRequest,
            refused,
            due,
            asked,
            now,
        ));
        if let Some(asked) = asked {
            let due = days_after(cal, asked.date(), 3);
            let decided = t.reconsideration_decided_at;
            out.push(deadline(
                Step::ReconsiderationDecision,
                asked,
                due,
                decided,
                now,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TransferStatus;

    fn m(s: &str) -> Moment {
        Moment::parse(s).unwrap()
    }

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap()
    }

    fn transfer() -> Transfer {
        Transfer {
            suspected_crime: true,
            transferred_on: None,
            receiving_organ: None,
            document_number: None,
            suspected_charge: None,
            status: TransferStatus::None,
            approved_at: None,
            transferred_at: None,
            accepted_at: None,
            police_decision: None,
            police_decided_at: None,
            reconsideration_requested_at: None,
            reconsideration_decided_at: None,
        }
    }

    fn cal() -> WorkCalendar {
        WorkCalendar::official().unwrap()
    }

    #[test]
    fn twenty_four_hours_by_the_clock_or_by_the_day() {
        let now = at("2025-12-31T00:00:00");
        let mut t = transfer();
        t.approved_at = Some(m("2025-03-07T16:00:00")); // a Friday
        t.transferred_at = Some(m("2025-03-08T16:00:00"));
        assert_eq!(of(&t, &cal(), now)[0].state, State::Met);
        // One minute past the 24 hours: late, weekend or not.
        t.transferred_at = Some(m("2025-03-08T16:01:00"));
        let d = &of(&t, &cal(), now)[0];
        assert_eq!((d.step, d.state), (Step::Transfer, State::Late));
        assert!(d.broken());
        // Days only: the next day may be within 24 hours; the day after is not.
        t.approved_at = Some(m("2025-03-07"));
        t.transferred_at = None;
        t.transferred_on = NaiveDate::from_ymd_opt(2025, 3, 8);
        assert_eq!(of(&t, &cal(), now)[0].state, State::Met);
        t.transferred_on = NaiveDate::from_ymd_opt(2025, 3, 9);
        assert_eq!(of(&t, &cal(), now)[0].state, State::Late);
        // Not handed over: open until the 24 hours pass, then overdue.
        t.transferred_on = None;
        t.approved_at = Some(m("2025-03-07T16:00:00"));
        assert_eq!(
            of(&t, &cal(), at("2025-03-08T15:59:59"))[0].state,
            State::Open
        );
        assert_eq!(
            of(&t, &cal(), at("2025-03-08T16:00:01"))[0].state,
            State::Overdue
        );
    }

    #[test]
    fn three_days_end_on_a_working_day_across_a_weekend_and_a_holiday() {
        let now = at("2025-12-31T00:00:00");
        let mut t = transfer();
        // Accepted Wednesday 2025-03-05: the 3 days end Saturday 03-08, so Monday 03-10.
        t.accepted_at = Some(m("2025-03-05T10:00:00"));
        t.police_decision = Some(PoliceDecision::Filed);
        t.police_decided_at = Some(m("2025-03-10T17:00:00"));
        let d = &of(&t, &cal(), now)[0];
        assert_eq!(d.step, Step::PoliceDecision);
        assert_eq!(d.due, at("2025-03-10T23:59:59"));
        assert_eq!(d.state, State::Met);
        t.police_decided_at = Some(m("2025-03-11"));
        assert_eq!(of(&t, &cal(), now)[0].state, State::Late);
        // Accepted Monday 2025-03-03: ends Thursday 03-06, no weekend in between.
        t.accepted_at = Some(m("2025-03-03"));
        t.police_decided_at = Some(m("2025-03-07"));
        assert_eq!(of(&t, &cal(), now)[0].state, State::Late);
        // Across National Day 2025 (1-8 October off): accepted 29 September, the 3 days end on
        // 2 October, a holiday, so the period runs to Thursday 9 October.
        t.accepted_at = Some(m("2025-09-29"));
        t.police_decided_at = Some(m("2025-10-09"));
        let d = &of(&t, &cal(), now)[0];
        assert_eq!(
            (d.due.date(), d.state),
            (NaiveDate::from_ymd_opt(2025, 10, 9).unwrap(), State::Met)
        );
        // Undecided: overdue once the day has passed.
        t.police_decision = None;
        t.police_decided_at = None;
        assert_eq!(
            of(&t, &cal(), at("2025-10-09T23:00:00"))[0].state,
            State::Open
        );
        assert_eq!(
            of(&t, &cal(), at("2025-10-10T00:00:00"))[0].state,
            State::Overdue
        );
    }

    #[test]
    fn a_refusal_starts_the_reconsideration_deadlines() {
        let mut t = transfer();
        t.accepted_at = Some(m("2025-03-03"));
        t.police_decision = Some(PoliceDecision::NotFiled);
        t.police_decided_at = Some(m("2025-03-05")); // Wednesday: request by Monday 03-10
        let now = at("2025-03-10T12:00:00");
        let steps: Vec<(Step, State)> = of(&t, &cal(), now)
            .iter()
            .map(|d| (d.step, d.state))
            .collect();
        assert_eq!(
            steps,
            [
                (Step::PoliceDecision, State::Met),
                (Step::ReconsiderationRequest, State::Open)
            ]
        );
        let later = at("2025-03-11T00:00:00");
        assert_eq!(of(&t, &cal(), later)[1].state, State::Overdue);
        t.reconsideration_requested_at = Some(m("2025-03-10"));
        let d = of(&t, &cal(), later);
        assert_eq!(
            (d[1].state, d[2].step, d[2].state),
            (State::Met, Step::ReconsiderationDecision, State::Open)
        );
        // Requested Thursday 03-06: the police's 3 days end Sunday 03-09, so Monday 03-10.
        t.reconsideration_requested_at = Some(m("2025-03-06"));
        t.reconsideration_decided_at = Some(m("2025-03-10T16:00:00"));
        let d = of(&t, &cal(), later);
        assert_eq!(
            (d[2].step, d[2].due.date(), d[2].state),
            (
                Step::ReconsiderationDecision,
                NaiveDate::from_ymd_opt(2025, 3, 10).unwrap(),
                State::Met
            )
        );
        t.reconsideration_decided_at = Some(m("2025-03-11T09:00:00"));
        assert_eq!(of(&t, &cal(), later)[2].state, State::Late);
        t.reconsideration_decided_at = None;
        assert_eq!(of(&t, &cal(), later)[2].state, State::Overdue);
        // A filed case has no reconsideration.
        t.reconsideration_decided_at = None;
        t.police_decision = Some(PoliceDecision::Filed);
        t.reconsideration_requested_at = None;
        assert_eq!(of(&t, &cal(), later).len(), 1);
    }
}
