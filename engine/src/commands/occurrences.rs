//! Moving and cancelling one occurrence of a meeting, as a coordinator (CLI,
//! API) or a schedule rule asks: the change is recorded with its iCalendar
//! sequence, every participant already told of the occurrence gets a notice (and
//! an updated invitation by email; before its first message the change is
//! silent), and the occurrence's remaining steps are planned for the new start.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use palabre_core::channel::Channel;
use palabre_lang::ics::{self, CalendarEvent, CalendarMethod};
use palabre_lang::occurrence::{Changes, OccurrenceChange};
use palabre_plan::planner::Planner;
use palabre_store::{LedgerEntry, LedgerEvent, PlannedTimer};
use tracing::info;

use super::{CommandError, Commands};
use crate::messages::{queue_messages, rule_failure_entries};

/// What changing an occurrence did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeReport {
    /// The iCalendar SEQUENCE the occurrence now has.
    pub sequence: u32,
    /// Participants a notice was queued for.
    pub notified: usize,
    /// Participants with no address on the workflow's channels.
    pub unreachable: usize,
    /// False when the occurrence already starts at the asked time: nothing was
    /// changed and nobody told again (a repeated request is harmless).
    pub changed: bool,
}

/// The longest reason people are sent (it goes in an SMS and an email).
pub const MAX_REASON_CHARS: usize = 300;

/// How far ahead an occurrence may be moved.
pub const MOVE_HORIZON: TimeDelta = TimeDelta::days(366);

impl Commands {
    /// Moves one occurrence to `new_start`, or cancels it when `new_start` is `None`:
    /// its pending steps are re-planned relative to the new start (or dropped),
    /// steps already sent stay sent, and every participant already told of it
    /// is sent the `meeting-moved` or `meeting-cancelled` notice, by email with the updated
    /// calendar entry (same UID, next SEQUENCE). All in one transaction, in the ledger.
    /// For changes no person made (a schedule rule's); people's go through
    /// [`Commands::change_occurrence_by`].
    pub async fn change_occurrence(
        &self,
        workflow: &str,
        occurrence: DateTime<Utc>,
        new_start: Option<DateTime<Utc>>,
        reason: &str,
    ) -> Result<ChangeReport, CommandError> {
        self.change_occurrence_as(workflow, occurrence, new_start, reason, None)
            .await
    }

    /// [`Commands::change_occurrence`] as `actor` asks it: the ledger entry names
    /// them; the notice participants get carries the reason alone.
    pub async fn change_occurrence_by(
        &self,
        workflow: &str,
        occurrence: DateTime<Utc>,
        new_start: Option<DateTime<Utc>>,
        reason: &str,
        actor: &str,
    ) -> Result<ChangeReport, CommandError> {
        self.change_occurrence_as(workflow, occurrence, new_start, reason, Some(actor))
            .await
    }

    async fn change_occurrence_as(
        &self,
        workflow: &str,
        occurrence: DateTime<Utc>,
        new_start: Option<DateTime<Utc>>,
        reason: &str,
        actor: Option<&str>,
    ) -> Result<ChangeReport, CommandError> {
        let now = self.now();
        let reason = reason.trim();
        if reason.is_empty() {
            return CommandError::invalid("a reason is needed: participants are told why");
        }
        let length = reason.chars().count();
        if length > MAX_REASON_CHARS {
            return CommandError::invalid(format!(
                "the reason is {length} characters: at most {MAX_REASON_CHARS}, as participants read it in an SMS"
            ));
        }
        if new_start.is_some_and(|start| start > now + MOVE_HORIZON) {
            return CommandError::invalid(format!(
                "the new start is more than {} days ahead: move it within a year, or cancel it",
                MOVE_HORIZON.num_days()
            ));
        }
        let definitions = self.definitions();
        let Some(meeting) = definitions.meeting(workflow) else {
            return CommandError::not_found(format!("no workflow '{workflow}'"));
        };
        if !meeting.recurrence.is_occurrence(occurrence) {
            let next = meeting
                .recurrence
                .next_after(occurrence)
                .map_or_else(|| "none".to_owned(), |t| t.to_rfc3339());
            return CommandError::not_found(format!(
                "{} is not an occurrence of '{workflow}' (the next one after it is {next})",
                occurrence.to_rfc3339()
            ));
        }
        let changes = Changes::new(self.store().occurrence_changes().await?);
        let previous = changes.get(workflow, occurrence);
        let Some(previous_start) = previous.map_or(Some(occurrence), |c| c.starts_at) else {
            return CommandError::conflict("this occurrence is already cancelled");
        };
        if previous_start <= now {
            return CommandError::conflict("this occurrence has already started");
        }
        if new_start.is_some_and(|start| start <= now) {
            return CommandError::invalid("the new start is in the past");
        }
        if new_start == Some(previous_start) {
            return Ok(ChangeReport {
                sequence: previous.map_or(0, |c| c.sequence),
                notified: 0,
                unreachable: 0,
                changed: false,
            });
        }
        let change = OccurrenceChange {
            workflow: workflow.to_owned(),
            occurrence,
            starts_at: new_start,
            sequence: previous.map_or(1, |c| c.sequence + 1),
            reason: reason.to_owned(),
        };
        let (template, notice_id) = change.notice();
        let (kind, event) = match new_start {
            Some(_) => ("moved", LedgerEvent::Moved),
            None => ("cancelled", LedgerEvent::Cancelled),
        };
        if !definitions.templates.contains(template) {
            return CommandError::invalid(format!(
                "the template '{template}' is missing from templates/"
            ));
        }
        let directory = Arc::new(self.store().contacts().await?);
        let links = self.answer_links();
        let mut planner = Planner::new(&definitions, directory);
        if let Some(links) = &links {
            planner = planner.with_answer_links(links.as_ref());
        }
        let timers: Vec<PlannedTimer> = new_start
            .map(|start| {
                planner
                    .steps_of(meeting, occurrence, start, now)
                    .iter()
                    .map(|step| PlannedTimer {
                        workflow: workflow.to_owned(),
                        occurrence,
                        step: step.id.clone(),
                        due: start + step.at.as_delta(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let timer_key = PlannedTimer::key(workflow, occurrence, &notice_id);
        // Only people already told about the occurrence hear of its change: before
        // its first message, a move or a cancellation is silent (the ledger has it).
        let told = self.store().told_about(workflow, occurrence).await?;
        let planned: Vec<_> = planner
            .notice(meeting, &change, previous_start, template, &notice_id, now)
            .into_iter()
            .filter(|message| told.contains(&message.contact_id))
            .collect();
        let slot = |event, detail: String| {
            LedgerEntry::new(now, event, detail).slot(workflow, occurrence, &notice_id)
        };
        let what = match new_start {
            Some(start) => format!(
                "moved from {} to {}",
                previous_start.to_rfc3339(),
                start.to_rfc3339()
            ),
            None => format!("cancelled (was {})", previous_start.to_rfc3339()),
        };
        let by = actor.map(|a| format!(" by {a}")).unwrap_or_default();
        let silent = if told.is_empty() {
            " (nobody had been told of it yet: no notice)"
        } else {
            ""
        };
        let mut ledger = vec![slot(event, format!("{what}{by}{silent}: {reason}"))];
        ledger.extend(rule_failure_entries(&planner, now));
        let calendar = |channel: Channel| {
            (channel == Channel::Email).then(|| {
                let event = CalendarEvent {
                    workflow,
                    occurrence,
                    start: new_start.unwrap_or(previous_start),
                    duration: meeting.definition.duration.as_delta(),
                    title: &meeting.definition.title,
                    venue: &meeting.definition.venue,
                    sequence: change.sequence,
                    method: if new_start.is_some() {
                        CalendarMethod::Request
                    } else {
                        CalendarMethod::Cancel
                    },
                };
                ics::render(&event, now)
            })
        };
        let (notices, unreachable) = queue_messages(planned, &timer_key, now, calendar);
        ledger.extend(unreachable);
        if !self
            .store()
            .apply_occurrence_change(&change, &timers, &notices, &ledger, now)
            .await?
        {
            return CommandError::conflict(
                "another change of this occurrence was applied at the same time; try again"
                    .to_owned(),
            );
        }
        info!(workflow, %occurrence, kind, notified = notices.len(), "occurrence changed");
        self.wake();
        Ok(ChangeReport {
            changed: true,
            sequence: change.sequence,
            notified: notices.len(),
            unreachable: ledger
                .iter()
                .filter(|e| e.event == LedgerEvent::Unreachable.as_str())
                .count(),
        })
    }
}
