//! The scheduling module: which step of which occurrence is due when, and what
//! it sends to whom.
//!
//! [`Planner`] turns definitions into *fires* (a step of an occurrence, due at an
//! instant) and a fire into *planned messages* (one per recipient, with channel,
//! language and rendered text). `palabre preview` drives it over a
//! [`VirtualClock`]; the server drives the very same code over the system clock,
//! so what the preview shows is what the server does.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::definitions::{Definitions, Meeting};
use crate::recipients::{choose_channel, reach};
use palabre_core::channel::Channel;
use palabre_core::clock::{Clock, VirtualClock};
use palabre_lang::contacts::Contact;
use palabre_lang::meeting::{RecipientGroup, Step};
use palabre_lang::occurrence::{Changes, OccurrenceChange, occurrence_reference};
use palabre_lang::templates::{
    ChangeFacts, MessageContext, OccurrenceFacts, Templates, WorkflowFacts,
};
use palabre_rules::{
    Answer, InviteesDecision, RemindersDecision, RuleFailure, ScheduleDecision, Subject,
    meeting_input, with_participants,
};

/// The most occurrences one workflow may produce in one planning window; a
/// recurrence every second over a year is a mistake, not a plan.
pub const MAX_OCCURRENCES_PER_WINDOW: usize = 20_000;

/// How long before a meeting a rule's extra reminder may come.
pub const MAX_RULE_REMINDER_LEAD: TimeDelta = TimeDelta::days(30);

/// The prefix of the ids of steps that rules add (`rule-reminder-3h`).
pub const RULE_STEP_PREFIX: &str = "rule-";

/// One step of one occurrence of one workflow, due at `due`.
#[derive(Debug, Clone)]
pub struct Fire<'d> {
    pub meeting: &'d Meeting,
    /// A step of the workflow, or one a rule added for this occurrence.
    pub step: Cow<'d, Step>,
    /// The occurrence's nominal start: its key.
    pub occurrence: DateTime<Utc>,
    /// When it actually starts (differs from `occurrence` once moved).
    pub start: DateTime<Utc>,
    /// iCalendar SEQUENCE of the occurrence (0 until it is moved).
    pub sequence: u32,
    pub due: DateTime<Utc>,
}

/// What is sent, to whom, on which channels: a step, or a change notice.
struct Sending<'a> {
    step_id: &'a str,
    template: &'a str,
    channels: &'a [Channel],
    groups: &'a [RecipientGroup],
    /// Whether the invitees rule adds to `groups`.
    invitees: bool,
}

/// Where a message belongs and how it is sent, whoever receives it.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    pub due: DateTime<Utc>,
    /// The zone `due_local` is shown in.
    pub zone: chrono_tz::Tz,
    pub workflow: &'a str,
    pub occurrence: DateTime<Utc>,
    pub step: &'a str,
    pub template: &'a str,
    pub channels: &'a [Channel],
}

/// What one recipient would receive for one fire.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedMessage {
    pub due_utc: DateTime<Utc>,
    /// Due time in the workflow's time zone, RFC 3339 with offset.
    pub due_local: String,
    pub workflow: String,
    pub occurrence: DateTime<Utc>,
    pub step: String,
    pub contact_id: String,
    pub contact_name: String,
    /// `None` when the contact has no address on any channel the step allows.
    pub channel: Option<Channel>,
    pub language: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    /// Why this message could not be prepared, when it could not.
    pub problem: Option<String>,
    /// The same message on the contact's next channel the step allows, to send if
    /// this one ends as a dead letter: channel, subject, body.
    #[serde(skip)]
    pub fallback: Option<(Channel, Option<String>, String)>,
}

/// One planning pass: fires and messages from one snapshot of the definitions
/// and one of the contact directory. The rule failures met along the way are
/// kept for the pass's caller ([`Planner::take_failures`]), which writes them to
/// the ledger with what the pass produced.
pub struct Planner<'d> {
    definitions: &'d Definitions,
    directory: Arc<Vec<Contact>>,
    failures: Mutex<Vec<RuleFailure>>,
}

impl<'d> Planner<'d> {
    pub fn new(definitions: &'d Definitions, directory: Arc<Vec<Contact>>) -> Planner<'d> {
        Planner {
            definitions,
            directory,
            failures: Mutex::default(),
        }
    }

    /// The contact directory this pass reads.
    pub fn directory(&self) -> &Arc<Vec<Contact>> {
        &self.directory
    }

    /// The rule failures of this pass so far, oldest first.
    pub fn take_failures(&self) -> Vec<RuleFailure> {
        std::mem::take(&mut *self.failures.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Keeps an answer's failure for the pass and gives its decision.
    fn kept<D>(&self, answer: Answer<D>) -> (D, Option<String>) {
        if let Some(failure) = answer.failure {
            self.keep(failure);
        }
        (answer.decision, answer.by)
    }

    fn keep(&self, failure: RuleFailure) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(failure);
    }

    /// Every fire due in `[from, to)`, ordered by due time, then workflow, then step.
    pub fn fires_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        changes: &Changes,
        now: DateTime<Utc>,
    ) -> Vec<Fire<'d>> {
        let mut fires: Vec<Fire<'d>> = self
            .definitions
            .meetings
            .iter()
            .flat_map(|meeting| self.fires_of(meeting, from, to, changes, now))
            .collect();
        fires.sort_by(|a, b| {
            (a.due, &a.meeting.definition.id, a.step.at).cmp(&(
                b.due,
                &b.meeting.definition.id,
                b.step.at,
            ))
        });
        fires
    }

    /// The steps of one occurrence starting at `start`: the workflow's, then the
    /// reminders its rules add (`meeting_reminders`).
    pub fn steps_of(
        &self,
        meeting: &'d Meeting,
        occurrence: DateTime<Utc>,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<Cow<'d, Step>> {
        let def = &meeting.definition;
        let rules = &self.definitions.rules;
        let (decision, _) = self.kept(rules.decide::<RemindersDecision>(
            &def.place,
            def.rules.reminders.as_deref(),
            || meeting_input(rules.world(), &meeting.facts, start, now),
            Subject {
                workflow: &def.id,
                occurrence: Some(occurrence),
            },
            &self.directory,
        ));
        let extra = decision
            .0
            .into_iter()
            .filter(|r| -r.at.as_delta() <= MAX_RULE_REMINDER_LEAD)
            .map(|reminder| {
                Cow::Owned(Step {
                    id: reminder.step_id(),
                    at: reminder.at,
                    template: reminder.template,
                    channels: reminder.channels,
                    recipients: None,
                    calendar: false,
                })
            });
        def.steps.iter().map(Cow::Borrowed).chain(extra).collect()
    }

    /// One step of an occurrence by id, the rule-added ones included.
    pub fn step_of(
        &self,
        meeting: &'d Meeting,
        occurrence: DateTime<Utc>,
        start: DateTime<Utc>,
        step: &str,
        now: DateTime<Utc>,
    ) -> Option<Cow<'d, Step>> {
        if let Some(found) = meeting.definition.steps.iter().find(|s| s.id == step) {
            return Some(Cow::Borrowed(found));
        }
        if !step.starts_with(RULE_STEP_PREFIX) {
            return None;
        }
        self.steps_of(meeting, occurrence, start, now)
            .into_iter()
            .find(|s| s.id == step)
    }

    /// The fires of one meeting due in `[from, to)`: its occurrences as the recurrence
    /// gives them, less those moved or cancelled, plus the moved ones at their new start.
    pub fn fires_of(
        &self,
        meeting: &'d Meeting,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        changes: &Changes,
        now: DateTime<Utc>,
    ) -> Vec<Fire<'d>> {
        let id = &meeting.definition.id;
        let steps = &meeting.definition.steps;
        // Rules may add reminders up to MAX_RULE_REMINDER_LEAD before a start.
        let earliest = steps
            .iter()
            .map(|s| s.at.as_delta())
            .min()
            .unwrap_or_default()
            .min(-MAX_RULE_REMINDER_LEAD);
        let latest = steps
            .iter()
            .map(|s| s.at.as_delta())
            .max()
            .unwrap_or_default();
        // An occurrence matters if any of its steps falls in the window.
        let nominal = meeting
            .recurrence
            .between(from - latest, to - earliest, MAX_OCCURRENCES_PER_WINDOW)
            .into_iter()
            .filter(|occurrence| changes.get(id, *occurrence).is_none())
            .map(|occurrence| (occurrence, occurrence, 0));
        let moved = changes
            .of(id)
            .filter_map(|c| c.starts_at.map(|start| (c.occurrence, start, c.sequence)));
        let mut fires = Vec::new();
        for (occurrence, start, sequence) in nominal.chain(moved) {
            for step in self.steps_of(meeting, occurrence, start, now) {
                let due = start + step.at.as_delta();
                if from <= due && due < to {
                    fires.push(Fire {
                        meeting,
                        step,
                        occurrence,
                        start,
                        sequence,
                        due,
                    });
                }
            }
        }
        fires
    }

    /// What the schedule rule decides for an occurrence starting at `start`, as a
    /// change to apply (`None` to hold it). A move to a time that does not exist,
    /// or that is not in the future, is a rule error: the meeting is held.
    pub fn schedule_change(
        &self,
        meeting: &Meeting,
        occurrence: DateTime<Utc>,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<OccurrenceChange> {
        let def = &meeting.definition;
        let zone = meeting.recurrence.zone();
        let rules = &self.definitions.rules;
        let subject = Subject {
            workflow: &def.id,
            occurrence: Some(occurrence),
        };
        let (decision, by) = self.kept(rules.decide::<ScheduleDecision>(
            &def.place,
            def.rules.schedule.as_deref(),
            || meeting_input(rules.world(), &meeting.facts, start, now),
            subject,
            &self.directory,
        ));
        let by = by.unwrap_or_default();
        let (starts_at, reason) = match decision {
            ScheduleDecision::Hold => return None,
            ScheduleDecision::Skip { reason } => (None, reason),
            ScheduleDecision::Move { date, time, reason } => {
                let local_time = time.unwrap_or_else(|| start.with_timezone(&zone).time());
                let target = date
                    .and_time(local_time)
                    .and_local_timezone(zone)
                    .earliest()
                    .map(|t| t.with_timezone(&Utc));
                match target {
                    Some(target) if target > now => (Some(target), reason),
                    _ => {
                        self.keep(rules.reject::<ScheduleDecision>(
                            &by,
                            subject,
                            format!(
                                "moved the meeting to {date} {local_time}, which is not a future time in {}",
                                zone.name()
                            ),
                        ));
                        return None;
                    }
                }
            }
        };
        Some(OccurrenceChange {
            workflow: def.id.clone(),
            occurrence,
            starts_at,
            sequence: 1,
            reason: format!("{reason} ({by})"),
        })
    }

    /// The messages a fire sends at `now`, one per distinct recipient, ordered by
    /// contact id. A step without its own recipients goes to the workflow's groups
    /// and to those the invitees rule adds.
    pub fn messages(&self, fire: &Fire<'_>, now: DateTime<Utc>) -> Vec<PlannedMessage> {
        let def = &fire.meeting.definition;
        let sending = Sending {
            step_id: &fire.step.id,
            template: &fire.step.template,
            channels: &fire.step.channels,
            groups: fire.step.recipients.as_ref().unwrap_or(&def.recipients),
            invitees: fire.step.recipients.is_none(),
        };
        self.expand(
            fire.meeting,
            fire.occurrence,
            fire.start,
            (fire.due, now),
            &sending,
            None,
        )
    }

    /// The notice sent to every participant when an occurrence is moved or cancelled,
    /// on the channels the workflow's steps use; `notice_id` names it (`moved-1`).
    #[allow(clippy::too_many_arguments)]
    pub fn notice(
        &self,
        meeting: &Meeting,
        change: &OccurrenceChange,
        previous_start: DateTime<Utc>,
        template: &str,
        notice_id: &str,
        now: DateTime<Utc>,
    ) -> Vec<PlannedMessage> {
        let def = &meeting.definition;
        let mut channels: Vec<Channel> = Vec::new();
        for channel in def.steps.iter().flat_map(|s| s.channels.iter()) {
            if !channels.contains(channel) {
                channels.push(*channel);
            }
        }
        let sending = Sending {
            step_id: notice_id,
            template,
            channels: &channels,
            groups: &def.recipients,
            invitees: true,
        };
        let local = previous_start.with_timezone(&meeting.recurrence.zone());
        let facts = ChangeFacts {
            previous_date: local.format("%Y-%m-%d").to_string(),
            previous_time: local.format("%H:%M").to_string(),
            reason: change.reason.clone(),
        };
        let start = change.starts_at.unwrap_or(previous_start);
        self.expand(
            meeting,
            change.occurrence,
            start,
            (now, now),
            &sending,
            Some(facts),
        )
    }

    /// Everyone a sending reaches: its groups, plus what the invitees rule adds.
    fn recipients(
        &self,
        meeting: &Meeting,
        occurrence: DateTime<Utc>,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
        sending: &Sending<'_>,
    ) -> Vec<&Contact> {
        let def = &meeting.definition;
        let mut recipients = reach(sending.groups, &def.place, &self.directory);
        if sending.invitees {
            let rules = &self.definitions.rules;
            let input = || {
                with_participants(
                    meeting_input(rules.world(), &meeting.facts, start, now),
                    recipients.iter().copied(),
                )
            };
            let (decision, _) = self.kept(rules.decide::<InviteesDecision>(
                &def.place,
                def.rules.invitees.as_deref(),
                input,
                Subject {
                    workflow: &def.id,
                    occurrence: Some(occurrence),
                },
                &self.directory,
            ));
            if !decision.0.is_empty() {
                recipients.extend(reach(&decision.0, &def.place, &self.directory));
                recipients.sort_by(|a, b| a.id.cmp(&b.id));
                recipients.dedup_by(|a, b| a.id == b.id);
            }
        }
        recipients
    }

    /// `when` is (due, now): when the message is due, and the clock's time.
    #[allow(clippy::too_many_arguments)]
    fn expand(
        &self,
        meeting: &Meeting,
        occurrence: DateTime<Utc>,
        start: DateTime<Utc>,
        (due, now): (DateTime<Utc>, DateTime<Utc>),
        sending: &Sending<'_>,
        change: Option<ChangeFacts>,
    ) -> Vec<PlannedMessage> {
        let def = &meeting.definition;
        let recipients = self.recipients(meeting, occurrence, start, now, sending);
        let zone = meeting.recurrence.zone();
        let local_start = start.with_timezone(&zone);
        let place_name = self
            .definitions
            .places
            .get(&def.place)
            .map_or_else(|| def.place.clone(), |p| p.name.clone());
        let slot = Slot {
            due,
            zone,
            workflow: &def.id,
            occurrence,
            step: sending.step_id,
            template: sending.template,
            channels: sending.channels,
        };
        // What every recipient shares is made once.
        let shared = MessageContext {
            change,
            ..MessageContext::new(
                WorkflowFacts {
                    id: def.id.clone(),
                    title: def.title.clone(),
                    venue: def.venue.clone(),
                    place: def.place.clone(),
                    place_name,
                },
                OccurrenceFacts {
                    date: local_start.format("%Y-%m-%d").to_string(),
                    time: local_start.format("%H:%M").to_string(),
                    timezone: zone.name().to_owned(),
                    starts_at: start.to_rfc3339(),
                    reference: occurrence_reference(&def.id, occurrence),
                },
                sending.step_id,
            )
        };
        recipients
            .into_iter()
            .map(|contact| self.prepare(&slot, contact, &shared.to(contact)))
            .collect()
    }

    /// The message `slot` sends `contact`: the first of the slot's channels they can
    /// be reached on, the template rendered in their language; or why it cannot be
    /// sent. `context` is what the template sees.
    pub fn prepare(
        &self,
        slot: &Slot<'_>,
        contact: &Contact,
        context: &MessageContext,
    ) -> PlannedMessage {
        prepare_message(&self.definitions.templates, slot, contact, context)
    }

    /// Runs the plan from the clock's present to `until` on a virtual clock: the clock
    /// is moved to each fire's due time before that fire is expanded, exactly as the
    /// server's clock reaches it, and the schedule rule is asked as the server asks
    /// it (a skipped or moved meeting shows its notice). Nothing is written anywhere.
    pub fn preview(
        &self,
        clock: &VirtualClock,
        until: DateTime<Utc>,
        changes: &Changes,
    ) -> Vec<PlannedMessage> {
        let mut changes = changes.clone();
        let mut planned = Vec::new();
        let mut fires = self.fires_between(clock.now(), until, &changes, clock.now());
        // Fires handled at the current instant, so that a re-plan does not repeat them.
        let mut handled: Vec<(String, DateTime<Utc>, String)> = Vec::new();
        let mut index = 0;
        while let Some(fire) = fires.get(index) {
            index += 1;
            let key = (
                fire.meeting.definition.id.clone(),
                fire.occurrence,
                fire.step.id.clone(),
            );
            if handled.contains(&key) {
                continue;
            }
            if clock.now() < fire.due {
                handled.clear();
            }
            clock.advance_to(fire.due);
            handled.push(key);
            let now = clock.now();
            let unchanged = changes
                .get(&fire.meeting.definition.id, fire.occurrence)
                .is_none();
            let change = unchanged
                .then(|| self.schedule_change(fire.meeting, fire.occurrence, fire.start, now))
                .flatten();
            let Some(change) = change else {
                planned.extend(self.messages(fire, now));
                continue;
            };
            let (template, notice_id) = change.notice();
            planned.extend(self.notice(
                fire.meeting,
                &change,
                fire.start,
                template,
                &notice_id,
                now,
            ));
            changes.insert(change);
            fires = self.fires_between(now, until, &changes, now);
            index = 0;
        }
        clock.advance_to(until);
        planned
    }
}

/// The message `slot` sends `contact`: the first of the slot's channels they can
/// be reached on, the template rendered in their language; or why it cannot be
/// sent. `context` is what the template sees.
pub fn prepare_message(
    templates: &Templates,
    slot: &Slot<'_>,
    contact: &Contact,
    context: &MessageContext,
) -> PlannedMessage {
    let channel = choose_channel(contact, slot.channels);
    let mut message = PlannedMessage {
        due_utc: slot.due,
        due_local: slot.due.with_timezone(&slot.zone).to_rfc3339(),
        workflow: slot.workflow.to_owned(),
        occurrence: slot.occurrence,
        step: slot.step.to_owned(),
        contact_id: contact.id.clone(),
        contact_name: contact.name.clone(),
        channel,
        language: None,
        subject: None,
        body: None,
        problem: None,
        fallback: None,
    };
    let Some(channel) = channel else {
        message.problem = Some(format!(
            "no address on {}",
            slot.channels
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        ));
        return message;
    };
    match templates.render(slot.template, channel, &contact.language, context) {
        Ok(rendered) => {
            message.language = Some(rendered.language);
            message.subject = rendered.subject;
            message.body = Some(rendered.body);
        }
        Err(e) => message.problem = Some(e.to_string()),
    }
    message.fallback = slot
        .channels
        .iter()
        .copied()
        .find(|c| *c != channel && contact.address(*c).is_some())
        .and_then(|next| {
            let rendered = templates
                .render(slot.template, next, &contact.language, context)
                .ok()?;
            Some((next, rendered.subject, rendered.body))
        });
    message
}

/// The length of a preview window in days, bounded to keep a preview a preview.
pub fn window(from: DateTime<Utc>, days: u32) -> (DateTime<Utc>, DateTime<Utc>) {
    (from, from + TimeDelta::days(i64::from(days.clamp(1, 366))))
}
