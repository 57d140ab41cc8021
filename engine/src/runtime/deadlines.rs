//! A case's deadline comes: the worker fires it like any timer. Nothing happens
//! if the case moved on, was acknowledged (for the acknowledgement deadline) or
//! resolved; otherwise the `escalation_missed` rule decides how far it climbs,
//! and the climb is applied, as a command, once the timer's batch is recorded.

use chrono::{DateTime, Utc};
use palabre_lang::escalation::{CaseState, Deadline, Ladder};
use palabre_plan::definitions::Definitions;
use palabre_plan::planner::Planner;
use palabre_rules::{MissedDecision, Subject, case_input};
use palabre_store::{ClaimedTimer, LedgerEntry, LedgerEvent, TimerCompletion, TimerOutcome};

use super::firing::{Fired, FollowUp};
use super::{Runtime, RuntimeError};
use crate::messages::rule_failure_entry;

impl Runtime {
    /// A case deadline came: nothing if the case moved on, was acknowledged (for
    /// the acknowledgement deadline) or resolved; else the missed rule decides how
    /// far it climbs, applied once the batch is recorded.
    pub(super) async fn fire_case_deadline(
        &self,
        planner: &Planner<'_>,
        definitions: &Definitions,
        ladder: &Ladder,
        timer: ClaimedTimer,
        now: DateTime<Utc>,
    ) -> Result<Fired, RuntimeError> {
        let entry = |event, detail: String| {
            LedgerEntry::new(now, event, detail).slot(
                &timer.workflow,
                timer.occurrence,
                &timer.step,
            )
        };
        let done = |outcome, ledger: LedgerEntry, follow_up| Fired {
            completion: TimerCompletion {
                timer_id: timer.id.clone(),
                outcome,
                messages: Vec::new(),
                ledger: vec![ledger],
            },
            follow_up,
        };
        let Some((id, level, deadline)) = Deadline::parse(&timer.step) else {
            let ledger = entry(LedgerEvent::Replanned, "not a case deadline".to_owned());
            return Ok(done(TimerOutcome::Cancelled, ledger, None));
        };
        let case = self.store().case(id).await?;
        let moved_on = match &case {
            None => Some("no such case".to_owned()),
            Some(c) if c.state == CaseState::Resolved => Some("the case is resolved".to_owned()),
            Some(c) if c.level != level => Some(format!("the case is at level {} now", c.level)),
            Some(c) if deadline == Deadline::Acknowledge && c.state == CaseState::Acknowledged => {
                Some("the case was acknowledged".to_owned())
            }
            Some(_) => None,
        };
        let (Some(case), None) = (case, moved_on.clone()) else {
            let ledger = entry(LedgerEvent::Replanned, moved_on.unwrap_or_default());
            return Ok(done(TimerOutcome::Cancelled, ledger, None));
        };
        let rules = &definitions.rules;
        let answer = rules.decide::<MissedDecision>(
            &case.place,
            None,
            || case_input(rules.world(), ladder, &case, Some(deadline.as_str()), now),
            Subject {
                workflow: &ladder.definition.id,
                occurrence: Some(case.opened),
            },
            planner.directory(),
        );
        let failure = answer.failure.clone().map(|f| rule_failure_entry(f, now));
        let by = answer.by.as_deref().unwrap_or("the built-in default");
        let MissedDecision { climb, reason } = answer.decision;
        let level_id = ladder.level(level).map_or("?", |l| l.id.as_str());
        let ledger = entry(
            LedgerEvent::DeadlineMissed,
            format!(
                "{} deadline missed at level {level_id}: climb {climb}: {reason} ({by})",
                deadline.as_str()
            ),
        );
        let follow_up = FollowUp::Climb {
            case: case.id.clone(),
            climb,
            missed: deadline,
            reason: deadline.missed(level_id, &reason),
        };
        let mut fired = done(TimerOutcome::Fired, ledger, Some(follow_up));
        fired.completion.ledger.extend(failure);
        Ok(fired)
    }
}
