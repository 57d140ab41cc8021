//! Planning: every workflow's timers materialised up to the horizon, from its
//! watermark, so that a slot that passed while no worker ran is still planned
//! (and then handled as a misfire), never forgotten. A changed definition, or a
//! changed script or calendar its place reaches, re-plans its pending timers;
//! fired ones stay, so nothing is sent twice. A removed workflow loses its
//! pending timers. Each of these is in the ledger.
//!
//! A pass is bounded: a workflow's window stops where its occurrences stop being
//! complete (a crowded recurrence, or reminders rules out of time), the watermark
//! moves only that far, and the next tick goes on from there.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use palabre_plan::definitions::Definitions;
use palabre_plan::planner::Planner;
use palabre_rules::Rules;
use palabre_store::{LedgerEntry, LedgerEvent, PlannedTimer, Schedule};
use tracing::info;

use super::{Directory, Runtime, RuntimeError, TickState};
use crate::messages::rule_failure_entries;

/// A fingerprint of everything that shapes a workflow's timers and messages: its
/// definition, and the rule scripts and calendars its place reaches.
fn definition_hash(definition: &impl serde::Serialize, place: &str, rules: &Rules) -> String {
    let text = serde_json::to_string(definition).unwrap_or_default();
    let rules = rules.fingerprint(place).to_le_bytes();
    format!(
        "{:016x}",
        palabre_core::fingerprint::fnv1a([text.as_bytes(), &rules])
    )
}

/// How long after an occurrence's start what its reminders rule decided is kept.
const REMINDERS_KEPT: TimeDelta = TimeDelta::days(7);

/// What one planning pass did.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Planning {
    /// Timers new in this pass.
    pub planned: u64,
    /// Workflows not yet planned to the horizon (their rules' time ran out, or
    /// they recur too often for one pass): the next tick goes on at once.
    pub behind: usize,
}

impl Runtime {
    /// Plans every workflow up to `now + horizon`, `now` the tick's present, read
    /// before the tick fired what was due: a workflow planned late in a long
    /// pass (or after a long burst) still starts from it, so none of its slots
    /// falls between two instants. Reminders rules run for at most
    /// [`RuntimeConfig::rule_time`](super::RuntimeConfig) in all; what they did not
    /// reach is planned by the next passes, and due timers fire in between.
    pub(super) async fn plan(
        &self,
        definitions: &Definitions,
        state: &TickState,
        directory: &mut Option<Directory>,
        now: DateTime<Utc>,
    ) -> Result<Planning, RuntimeError> {
        let until = now + self.config.horizon;
        let mut pass = Planning::default();
        let contacts = self.directory(directory).await?.contacts.clone();
        definitions.reminders.forget_before(now - REMINDERS_KEPT);
        let planner = Planner::new(definitions, contacts).with_rule_time(self.config.rule_time);
        // Read once, written once: a pass over many workflows is two statements
        // and one transaction, not three per workflow.
        let known = self.store().schedules().await?;
        let mut writes = PassWrites::default();
        for meeting in &definitions.meetings {
            let id = &meeting.definition.id;
            let hash = definition_hash(
                &meeting.definition,
                &meeting.definition.place,
                &definitions.rules,
            );
            let behind = self
                .plan_workflow(&known, &mut writes, id, &hash, now, until, |from| {
                    let window = planner.window_of(meeting, from, until, &state.changes, now);
                    let timers = window
                        .fires
                        .into_iter()
                        .map(|fire| PlannedTimer {
                            workflow: id.clone(),
                            occurrence: fire.occurrence,
                            step: fire.step.id.clone(),
                            due: fire.due,
                        })
                        .collect();
                    (timers, window.complete_until)
                })
                .await?;
            pass.behind += usize::from(behind);
        }
        for plan in &definitions.plans {
            let id = &plan.definition.id;
            let hash =
                definition_hash(&plan.definition, &plan.definition.place, &definitions.rules);
            let behind = self
                .plan_workflow(&known, &mut writes, id, &hash, now, until, |from| {
                    let timers = plan
                        .fires_between(from, until, &state.statuses)
                        .into_iter()
                        .map(|fire| PlannedTimer {
                            workflow: id.clone(),
                            occurrence: fire.due_at,
                            step: fire.step.id(&fire.milestone.id),
                            due: fire.due,
                        })
                        .collect();
                    (timers, until)
                })
                .await?;
            pass.behind += usize::from(behind);
        }
        pass.planned = self
            .store()
            .plan_pass(&writes.timers, &writes.schedules, now)
            .await?;
        for workflow in known.keys() {
            if definitions.workflow_ids().all(|id| id != workflow) {
                let entry =
                    LedgerEntry::new(now, LedgerEvent::Replanned, "the workflow was removed");
                self.store()
                    .unplan_pending(workflow, DateTime::<Utc>::MIN_UTC, &entry)
                    .await?;
                self.store().forget_schedule(workflow).await?;
            }
        }
        let failures = rule_failure_entries(&planner, now);
        if !failures.is_empty() {
            self.store().append_ledger(&failures).await?;
        }
        if pass.planned > 0 {
            info!(planned = pass.planned, "timers planned");
        }
        if pass.behind > 0 {
            info!(
                workflows = pass.behind,
                "planning goes on at the next tick (rules' time or a crowded recurrence)"
            );
        }
        Ok(pass)
    }

    /// Plans one workflow from its watermark to `until` (re-planning its pending
    /// timers first when its definition changed), into the pass's `writes`.
    /// `timers` gives the timers from an instant on and how far they are
    /// complete: the watermark moves that far, not further, so what was not
    /// planned yet is planned by the next pass. Whether it is behind (not
    /// planned to `until`).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn plan_workflow(
        &self,
        known: &HashMap<String, (String, DateTime<Utc>)>,
        writes: &mut PassWrites,
        id: &str,
        hash: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        timers: impl FnOnce(DateTime<Utc>) -> (Vec<PlannedTimer>, DateTime<Utc>),
    ) -> Result<bool, RuntimeError> {
        let from = match known.get(id) {
            None => now,
            Some((known, watermark)) if known == hash => *watermark,
            Some((_, watermark)) => {
                let entry = LedgerEntry::new(
                    now,
                    LedgerEvent::Replanned,
                    "the workflow definition changed",
                );
                self.store().unplan_pending(id, now, &entry).await?;
                (*watermark).min(now)
            }
        };
        if from >= until {
            return Ok(false);
        }
        let (timers, complete_until) = timers(from);
        writes.timers.extend(timers);
        let watermark = complete_until.min(until).max(from);
        writes.schedules.push(Schedule {
            workflow: id.to_owned(),
            hash: hash.to_owned(),
            planned_until: watermark,
        });
        Ok(watermark < until)
    }
}

/// What a planning pass writes at its end, in one transaction.
#[derive(Debug, Default)]
pub(super) struct PassWrites {
    timers: Vec<PlannedTimer>,
    schedules: Vec<Schedule>,
}
