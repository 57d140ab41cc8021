//! Firing: due timers claimed by lease, the misfire policy applied to late
//! ones, each fire expanded into messages (recipients, channel, language, text,
//! calendar) and written with the timer's state and its ledger entries in one
//! transaction per batch, two batches in flight (one fired while the one
//! before is written and delivered). A schedule rule's change and a missed
//! deadline's climb follow, as commands, once the batch is recorded.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, TimeDelta, Utc};
use palabre_core::channel::Channel;
use palabre_lang::contacts::Contact;
use palabre_lang::ics::{self, CalendarEvent, CalendarMethod};
use palabre_lang::meeting::{Misfire, RecipientGroup};
use palabre_lang::milestones::{Milestone, MilestoneStep, Plan, Statuses};
use palabre_lang::occurrence::OccurrenceChange;
use palabre_lang::templates::{MessageContext, MilestoneFacts};
use palabre_plan::definitions::Definitions;
use palabre_plan::planner::{Fire, Planner, Slot};
use palabre_plan::recipients::reach;
use palabre_rules::{OverdueDecision, Subject, milestone_input};
use palabre_store::{ClaimedTimer, LedgerEntry, LedgerEvent, TimerCompletion, TimerOutcome};
use tracing::{Instrument, info, info_span, warn};

use super::{BURST, Directory, Runtime, RuntimeError, TickReport, TickState};
use crate::commands::CommandError;
use crate::messages::{queue_messages, rule_failure_entries, rule_failure_entry};

/// How many timers a batch fires between two yields to the batch being
/// written meanwhile (each of whose statements waits for the next poll).
const YIELD_EVERY: usize = 4;

/// A batch of fired timers, not yet written.
struct FiredBatch {
    /// When the batch was claimed: the instant its timers fired at.
    now: DateTime<Utc>,
    completions: Vec<TimerCompletion>,
    follow_ups: Vec<FollowUp>,
}

/// What firing one timer gives: its completion, and a change to apply after it.
pub(super) struct Fired {
    pub(super) completion: TimerCompletion,
    pub(super) follow_up: Option<FollowUp>,
}

/// A change a fired timer asks for, applied once its batch is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FollowUp {
    /// A schedule rule skipped or moved an occurrence.
    Occurrence(OccurrenceChange),
    /// A case missed a deadline and climbs (`climb` levels; 0 tells its level again).
    Climb {
        case: String,
        climb: u32,
        /// The deadline missed, which its responders' message words.
        missed: palabre_lang::escalation::Deadline,
        reason: String,
    },
}

/// Whether two follow-ups are about the same occurrence or case (only the first applies).
fn same_subject(a: &FollowUp, b: &FollowUp) -> bool {
    match (a, b) {
        (FollowUp::Occurrence(a), FollowUp::Occurrence(b)) => {
            a.workflow == b.workflow && a.occurrence == b.occurrence
        }
        (FollowUp::Climb { case: a, .. }, FollowUp::Climb { case: b, .. }) => a == b,
        _ => false,
    }
}

/// What a milestone timer does: a reminder to the owner, or an overdue check
/// (the `milestone_overdue` rule decides: remind, escalate or wait; at the first
/// check the owners of dependent milestones are told it slipped). Nothing for a
/// milestone done or cancelled.
fn fire_milestone(
    planner: &Planner<'_>,
    definitions: &Definitions,
    plan: &Plan,
    statuses: &Statuses,
    timer: ClaimedTimer,
    now: DateTime<Utc>,
) -> Fired {
    let def = &plan.definition;
    let entry = |event, detail: String| {
        LedgerEntry::new(now, event, detail).slot(&timer.workflow, timer.occurrence, &timer.step)
    };
    let dropped = |entry| Fired {
        completion: TimerCompletion {
            timer_id: timer.id.clone(),
            outcome: TimerOutcome::Cancelled,
            messages: Vec::new(),
            ledger: vec![entry],
        },
        follow_up: None,
    };
    let Some((milestone, step)) = MilestoneStep::parse(&timer.step)
        .and_then(|(id, step)| plan.milestone(id).map(|m| (m, step)))
    else {
        return dropped(entry(
            LedgerEvent::Replanned,
            "the milestone is no longer in the plan".to_owned(),
        ));
    };
    let status = statuses.status(&def.id, &milestone.id);
    if status.is_closed() {
        return dropped(entry(
            LedgerEvent::Replanned,
            format!("the milestone is {status}"),
        ));
    }
    let directory = planner.directory();
    let place_name = definitions
        .places
        .get(&def.place)
        .map_or_else(|| def.place.clone(), |p| p.name.clone());
    let days_late = plan.days_late(milestone, now);
    // Messages of `template` about `about` to everyone `groups` reach.
    let send = |about: &Milestone,
                groups: &[RecipientGroup],
                template: &str,
                blocked_by: String,
                escalation: &str| {
        let facts = MilestoneFacts {
            id: about.id.clone(),
            title: about.title.clone(),
            due: palabre_lang::calendars::format_iso_date(about.due),
            status: statuses.status(&def.id, &about.id).as_str().to_owned(),
            days_late: plan.days_late(about, now),
            reference: plan.reference(about),
            blocked_by,
            escalation: escalation.to_owned(),
            done_by_sms: def.done_by_sms,
        };
        let slot = Slot {
            due: timer.due,
            zone: plan.zone,
            workflow: &def.id,
            occurrence: timer.occurrence,
            step: &timer.step,
            template,
            channels: &def.channels,
        };
        let shared = MessageContext::about_milestone(
            &def.id,
            &def.title,
            &def.place,
            &place_name,
            &timer.step,
            facts,
        );
        reach(groups, &def.place, directory)
            .into_iter()
            .map(|contact| planner.prepare(&slot, contact, &shared.to(contact)))
            .collect::<Vec<_>>()
    };
    let owner = std::slice::from_ref(&milestone.owner);
    let waiting_for = milestone
        .depends_on
        .iter()
        .filter(|d| !statuses.status(&def.id, d).is_closed())
        .filter_map(|d| plan.milestone(d).map(|m| m.title.clone()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut ledger = Vec::new();
    let mut slipped = Vec::new();
    let planned = match step {
        MilestoneStep::Reminder(_) => send(milestone, owner, "milestone-reminder", waiting_for, ""),
        MilestoneStep::Overdue(check) => {
            let rules = &definitions.rules;
            let answer = rules.decide::<OverdueDecision>(
                &def.place,
                None,
                || milestone_input(rules.world(), plan, milestone, status, check, now),
                Subject {
                    workflow: &def.id,
                    occurrence: Some(timer.occurrence),
                },
                directory,
            );
            ledger.extend(answer.failure.clone().map(|f| rule_failure_entry(f, now)));
            let by = answer.by.as_deref().unwrap_or("the built-in default");
            let (what, planned) = match &answer.decision {
                OverdueDecision::Remind { reason } => (
                    format!("remind the owner: {reason}"),
                    send(milestone, owner, "milestone-overdue", waiting_for, reason),
                ),
                OverdueDecision::Escalate { to, reason } => (
                    format!(
                        "escalate to {} at {}: {reason}",
                        to.role.as_deref().unwrap_or("contacts"),
                        to.place.as_deref().unwrap_or(&def.place)
                    ),
                    send(
                        milestone,
                        std::slice::from_ref(to),
                        "milestone-escalated",
                        waiting_for,
                        reason,
                    ),
                ),
                OverdueDecision::Wait { reason } => (format!("wait: {reason}"), Vec::new()),
            };
            ledger.push(entry(
                LedgerEvent::Overdue,
                format!("check {check}, {days_late} day(s) late: {what} ({by})"),
            ));
            if check == 1 {
                for dependant in plan.dependants(&milestone.id) {
                    if !statuses.status(&def.id, &dependant.id).is_closed() {
                        slipped.extend(send(
                            dependant,
                            std::slice::from_ref(&dependant.owner),
                            "milestone-slipped",
                            milestone.title.clone(),
                            "",
                        ));
                    }
                }
            }
            planned
        }
    };
    let (mut messages, unreachable) = queue_messages(planned, &timer.id, now, |_| None);
    ledger.extend(unreachable);
    let (slip_messages, unreachable) =
        queue_messages(slipped, &format!("{}#slipped", timer.id), now, |_| None);
    messages.extend(slip_messages);
    ledger.extend(unreachable);
    ledger.insert(
        0,
        entry(
            LedgerEvent::Fired,
            format!("{} message(s) queued", messages.len()),
        ),
    );
    Fired {
        completion: TimerCompletion {
            timer_id: timer.id,
            outcome: TimerOutcome::Fired,
            messages,
            ledger,
        },
        follow_up: None,
    }
}

impl Runtime {
    /// Fires everything due, a batch at a time, two batches in flight: while
    /// one is written and delivered, the next is fired, so the database's
    /// work and this worker's overlap. Where writes run side by side
    /// (PostgreSQL), the batch after is claimed meanwhile too; SQLite, with
    /// one writer at a time, claims it once the written batch is done. A
    /// batch with follow-ups (a rule's move or cancellation, a case's climb)
    /// is finished before the next is claimed, since they may change what it
    /// fires.
    pub(super) async fn fire_due(
        &self,
        definitions: &Definitions,
        state: &TickState,
        directory: &mut Option<Directory>,
        report: &mut TickReport,
    ) -> Result<(), RuntimeError> {
        let mut unwritten: Option<FiredBatch> = None;
        let mut claimed_ahead = None;
        let claim_ahead = self.store().writes_side_by_side();
        loop {
            // Stopping, a batch claimed ahead is left: its leases expire, or
            // are taken back when this worker starts again.
            let ahead = claimed_ahead
                .take()
                .filter(|_| !self.stopping.load(Ordering::SeqCst));
            let (timers, now) = match ahead {
                Some(claimed) => claimed,
                None => {
                    if unwritten.as_ref().is_some_and(|b| !b.follow_ups.is_empty()) {
                        self.finish_batch(unwritten.take(), directory, report)
                            .await?;
                    }
                    self.claim_batch(self.config.lease).await?
                }
            };
            if timers.is_empty() {
                return self.finish_batch(unwritten, directory, report).await;
            }
            let contacts = Arc::clone(&self.directory(directory).await?.contacts);
            let previous = self.finish_batch(unwritten.take(), directory, report);
            let next = async {
                let batch = self
                    .fire_batch(definitions, state, contacts, timers, now)
                    .await?;
                let ahead = if claim_ahead && batch.follow_ups.is_empty() {
                    // Claimed ahead, a batch may wait for two batches to be
                    // delivered (up to `batch_time`, half the lease, each)
                    // before it is written: it is leased for twice as long.
                    Some(self.claim_batch(self.config.lease * 2).await?)
                } else {
                    None
                };
                Ok::<_, RuntimeError>((batch, ahead))
            };
            let (finished, next) = tokio::join!(previous, next);
            finished?;
            let (batch, ahead) = next?;
            unwritten = Some(batch);
            claimed_ahead = ahead;
        }
    }

    /// Claims the next batch of due timers for `lease` (none when the worker
    /// is stopping), with the instant it claimed them at.
    async fn claim_batch(
        &self,
        lease: TimeDelta,
    ) -> Result<(Vec<ClaimedTimer>, DateTime<Utc>), RuntimeError> {
        let now = self.now();
        if self.stopping.load(Ordering::SeqCst) {
            return Ok((Vec::new(), now));
        }
        let timers = self
            .store()
            .claim_due_timers(now, &self.config.owner, lease, self.config.batch)
            .await?;
        Ok((timers, now))
    }

    /// Fires timers claimed at `now` into their completions, yielding now and
    /// then so that the batch written meanwhile makes progress.
    async fn fire_batch(
        &self,
        definitions: &Definitions,
        state: &TickState,
        contacts: Arc<Vec<Contact>>,
        claimed: Vec<ClaimedTimer>,
        now: DateTime<Utc>,
    ) -> Result<FiredBatch, RuntimeError> {
        let links = self.commands.answer_links();
        let mut planner = Planner::new(definitions, contacts);
        if let Some(links) = &links {
            planner = planner.with_answer_links(links.as_ref());
        }
        let mut completions = Vec::with_capacity(claimed.len());
        let mut follow_ups: Vec<FollowUp> = Vec::new();
        for (i, timer) in claimed.into_iter().enumerate() {
            if i % YIELD_EVERY == YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
            let span = info_span!("timer", workflow = %timer.workflow, step = %timer.step, occurrence = %timer.occurrence);
            let mut fired = self
                .fire(&planner, definitions, state, timer, now)
                .instrument(span)
                .await?;
            // A rule's failure is written with the timer whose firing met it.
            fired
                .completion
                .ledger
                .extend(rule_failure_entries(&planner, now));
            completions.push(fired.completion);
            if let Some(follow_up) = fired.follow_up
                && !follow_ups
                    .iter()
                    .any(|known| same_subject(known, &follow_up))
            {
                follow_ups.push(follow_up);
            }
        }
        Ok(FiredBatch {
            now,
            completions,
            follow_ups,
        })
    }

    /// Writes a fired batch, if there is one, applies its follow-ups and
    /// delivers its messages.
    async fn finish_batch(
        &self,
        batch: Option<FiredBatch>,
        directory: &mut Option<Directory>,
        report: &mut TickReport,
    ) -> Result<(), RuntimeError> {
        let Some(FiredBatch {
            now,
            completions,
            follow_ups,
        }) = batch
        else {
            return Ok(());
        };
        // One transaction for the whole batch: timers, outbox rows and ledger
        // together. The messages are queued already leased to this worker,
        // which delivers them next, unless a follow-up may change them first
        // (a rule's move or cancellation, a case's climb): then they are
        // claimed afresh after it, like any ready message. Their lease counts
        // from now, not from the claim of their timers: a batch may wait for
        // the one before it to be delivered.
        let hold_until = follow_ups
            .is_empty()
            .then(|| self.now() + self.config.lease);
        let completed = self
            .store()
            .complete_timers(&self.config.owner, &completions, now, hold_until)
            .await?;
        if completed.timers < completions.len() {
            warn!(
                lost = completions.len() - completed.timers,
                "leases lost before completion; other workers have these timers"
            );
        }
        let queued_before = report.queued;
        for completion in &completions {
            match completion.outcome {
                TimerOutcome::Fired => {
                    report.fired += 1;
                    report.queued += completion.messages.len();
                }
                TimerOutcome::Skipped => report.missed += 1,
                TimerOutcome::Cancelled => {}
            }
        }
        if queued_before <= BURST as usize && report.queued > BURST as usize {
            self.store().refresh_statistics().await?;
        }
        for follow_up in follow_ups {
            match follow_up {
                FollowUp::Occurrence(change) => self.apply_rule_change(&change).await?,
                FollowUp::Climb {
                    case,
                    climb,
                    missed,
                    reason,
                } => match self
                    .commands
                    .climb_case(&case, climb, missed, &reason, "missed deadline")
                    .await
                {
                    Ok(_) => {}
                    Err(CommandError::Store(error)) => return Err(error.into()),
                    Err(refusal) => {
                        warn!(%case, %refusal, "a missed deadline could not move the case");
                    }
                },
            }
        }
        self.deliver_claimed(completed.held, directory, report)
            .await
    }

    /// Applies what a schedule rule decided, as a coordinator's change would be.
    async fn apply_rule_change(&self, change: &OccurrenceChange) -> Result<(), RuntimeError> {
        match self
            .commands
            .change_occurrence(
                &change.workflow,
                change.occurrence,
                change.starts_at,
                &change.reason,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(CommandError::Store(error)) => Err(error.into()),
            Err(refusal) => {
                warn!(workflow = %change.workflow, %refusal, "a rule's change could not be applied");
                let entry = LedgerEntry::new(
                    self.now(),
                    LedgerEvent::RuleError,
                    format!("the schedule rule's decision could not be applied: {refusal}"),
                )
                .slot(&change.workflow, change.occurrence, "meeting_schedule");
                self.store().append_ledger(&[entry]).await?;
                Ok(())
            }
        }
    }

    /// Decides the fate of a late timer under its workflow's misfire policy:
    /// `None` to run it, or the reason it is dropped.
    async fn misfire_verdict(
        &self,
        fire: &Fire<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<&'static str>, RuntimeError> {
        let def = &fire.meeting.definition;
        if now - fire.due <= def.misfire_grace.as_delta() {
            return Ok(None);
        }
        if fire.step.at.is_negative() && fire.occurrence <= now {
            return Ok(Some("the meeting has already started"));
        }
        Ok(match def.misfire {
            Misfire::Skip => Some("missed while the engine was down (misfire: skip)"),
            Misfire::All => None,
            Misfire::Once => {
                let later = self
                    .store()
                    .later_slot_due(&def.id, &fire.step.id, fire.due, now)
                    .await?;
                later.then_some("a later slot of the same step runs instead (misfire: once)")
            }
        })
    }

    /// Decides what a claimed timer does: its messages and ledger entries, or why it
    /// is dropped; and the change a schedule rule asks for, if any.
    async fn fire(
        &self,
        planner: &Planner<'_>,
        definitions: &Definitions,
        state: &TickState,
        timer: ClaimedTimer,
        now: DateTime<Utc>,
    ) -> Result<Fired, RuntimeError> {
        if let Some(ladder) = definitions.ladder(&timer.workflow) {
            return self
                .fire_case_deadline(planner, definitions, ladder, timer, now)
                .await;
        }
        if let Some(plan) = definitions.plan(&timer.workflow) {
            return Ok(fire_milestone(
                planner,
                definitions,
                plan,
                &state.statuses,
                timer,
                now,
            ));
        }
        let changes = &state.changes;
        let slot = |event, detail: String| {
            LedgerEntry::new(now, event, detail).slot(
                &timer.workflow,
                timer.occurrence,
                &timer.step,
            )
        };
        let dropped = |outcome, entry| Fired {
            completion: TimerCompletion {
                timer_id: timer.id.clone(),
                outcome,
                messages: Vec::new(),
                ledger: vec![entry],
            },
            follow_up: None,
        };
        let change = changes.get(&timer.workflow, timer.occurrence);
        if change.is_some_and(|c| c.starts_at.is_none()) {
            let entry = slot(
                LedgerEvent::Cancelled,
                "the occurrence is cancelled".to_owned(),
            );
            return Ok(dropped(TimerOutcome::Cancelled, entry));
        }
        let start = change.and_then(|c| c.starts_at).unwrap_or(timer.occurrence);
        let meeting = definitions.meeting(&timer.workflow);
        let Some((meeting, step)) = meeting.and_then(|m| {
            planner
                .step_of(m, timer.occurrence, start, &timer.step, now)
                .map(|s| (m, s))
        }) else {
            let entry = slot(
                LedgerEvent::Replanned,
                "workflow or step no longer defined".to_owned(),
            );
            return Ok(dropped(TimerOutcome::Cancelled, entry));
        };
        let fire = Fire {
            meeting,
            step,
            occurrence: timer.occurrence,
            start,
            sequence: change.map_or(0, |c| c.sequence),
            due: timer.due,
        };
        if let Some(reason) = self.misfire_verdict(&fire, now).await? {
            info!(reason, "slot missed");
            let entry = slot(
                LedgerEvent::Missed,
                format!("due {}: {reason}", timer.due.to_rfc3339()),
            );
            return Ok(dropped(TimerOutcome::Skipped, entry));
        }
        // Before the meeting, and until a coordinator or a rule changed it, the
        // schedule rule may still skip or move it.
        if change.is_none()
            && fire.due < fire.start
            && let Some(rule_change) =
                planner.schedule_change(meeting, timer.occurrence, fire.start, now)
        {
            let what = if rule_change.starts_at.is_some() {
                "moved"
            } else {
                "cancelled"
            };
            let entry = slot(
                LedgerEvent::Cancelled,
                format!(
                    "not sent: the schedule rule {what} the meeting: {}",
                    rule_change.reason
                ),
            );
            info!(what, "the schedule rule changed the meeting");
            let mut fired = dropped(TimerOutcome::Cancelled, entry);
            fired.follow_up = Some(FollowUp::Occurrence(rule_change));
            return Ok(fired);
        }
        let late = now - timer.due > meeting.definition.misfire_grace.as_delta();
        let calendar = |channel: Channel| {
            (fire.step.calendar && channel == Channel::Email).then(|| {
                let event = CalendarEvent {
                    workflow: &meeting.definition.id,
                    occurrence: timer.occurrence,
                    start: fire.start,
                    duration: meeting.definition.duration.as_delta(),
                    title: &meeting.definition.title,
                    venue: &meeting.definition.venue,
                    sequence: fire.sequence,
                    method: CalendarMethod::Request,
                };
                ics::render(&event, now)
            })
        };
        let (messages, mut ledger) =
            queue_messages(planner.messages(&fire, now), &timer.id, now, calendar);
        let (event, when) = if late {
            (
                LedgerEvent::FiredLate,
                format!("late by {}s", (now - timer.due).num_seconds()),
            )
        } else {
            (LedgerEvent::Fired, "on time".to_owned())
        };
        let unreachable = ledger.len();
        let summary = format!(
            "{when}: {} message(s) queued, {unreachable} unreachable",
            messages.len()
        );
        ledger.insert(0, slot(event, summary));
        info!(queued = messages.len(), unreachable, late, "timer fired");
        Ok(Fired {
            completion: TimerCompletion {
                timer_id: timer.id,
                outcome: TimerOutcome::Fired,
                messages,
                ledger,
            },
            follow_up: None,
        })
    }
}
