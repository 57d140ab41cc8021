//! Planning: every workflow's timers materialised up to the horizon, from its
//! watermark, so that a slot that passed while no worker ran is still planned
//! (and then handled as a misfire), never forgotten. A changed definition, or a
//! changed script or calendar its place reaches, re-plans its pending timers;
//! fired ones stay, so nothing is sent twice. A removed workflow loses its
//! pending timers. Each of these is in the ledger.

use chrono::{DateTime, Utc};
use palabre_plan::definitions::Definitions;
use palabre_plan::planner::Planner;
use palabre_rules::Rules;
use palabre_store::{LedgerEntry, LedgerEvent, PlannedTimer};
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

impl Runtime {
    /// Plans every workflow up to `now + horizon`; returns how many timers are new.
    pub(super) async fn plan(
        &self,
        definitions: &Definitions,
        state: &TickState,
        directory: &mut Option<Directory>,
    ) -> Result<u64, RuntimeError> {
        let now = self.now();
        let until = now + self.config.horizon;
        let mut planned = 0;
        let contacts = self.directory(directory).await?.contacts.clone();
        let planner = Planner::new(definitions, contacts);
        for meeting in &definitions.meetings {
            let id = &meeting.definition.id;
            let hash = definition_hash(
                &meeting.definition,
                &meeting.definition.place,
                &definitions.rules,
            );
            planned += self
                .plan_workflow(id, &hash, until, |from| {
                    planner
                        .fires_of(meeting, from, until, &state.changes, now)
                        .into_iter()
                        .map(|fire| PlannedTimer {
                            workflow: id.clone(),
                            occurrence: fire.occurrence,
                            step: fire.step.id.clone(),
                            due: fire.due,
                        })
                        .collect()
                })
                .await?;
        }
        for plan in &definitions.plans {
            let id = &plan.definition.id;
            let hash =
                definition_hash(&plan.definition, &plan.definition.place, &definitions.rules);
            planned += self
                .plan_workflow(id, &hash, until, |from| {
                    plan.fires_between(from, until, &state.statuses)
                        .into_iter()
                        .map(|fire| PlannedTimer {
                            workflow: id.clone(),
                            occurrence: fire.due_at,
                            step: fire.step.id(&fire.milestone.id),
                            due: fire.due,
                        })
                        .collect()
                })
                .await?;
        }
        for workflow in self.store().scheduled_workflows().await? {
            if definitions.workflow_ids().all(|id| id != workflow) {
                let entry =
                    LedgerEntry::new(now, LedgerEvent::Replanned, "the workflow was removed");
                self.store()
                    .unplan_pending(&workflow, DateTime::<Utc>::MIN_UTC, &entry)
                    .await?;
                self.store().forget_schedule(&workflow).await?;
            }
        }
        let failures = rule_failure_entries(&planner, now);
        if !failures.is_empty() {
            self.store().append_ledger(&failures).await?;
        }
        if planned > 0 {
            info!(planned, "timers planned");
        }
        Ok(planned)
    }
    /// Plans one workflow from its watermark to `until` (re-planning its pending
    /// timers first when its definition changed); returns how many timers are new.
    pub(super) async fn plan_workflow(
        &self,
        id: &str,
        hash: &str,
        until: DateTime<Utc>,
        timers: impl FnOnce(DateTime<Utc>) -> Vec<PlannedTimer>,
    ) -> Result<u64, RuntimeError> {
        let now = self.now();
        let from = match self.store().schedule(id).await? {
            None => now,
            Some((known, watermark)) if known == hash => watermark,
            Some((_, watermark)) => {
                let entry = LedgerEntry::new(
                    now,
                    LedgerEvent::Replanned,
                    "the workflow definition changed",
                );
                self.store().unplan_pending(id, now, &entry).await?;
                watermark.min(now)
            }
        };
        if from >= until {
            return Ok(0);
        }
        let planned = self.store().plan_timers(&timers(from), now).await?;
        self.store().set_schedule(id, hash, until).await?;
        Ok(planned)
    }
}
