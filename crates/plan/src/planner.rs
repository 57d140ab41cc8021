//! The scheduling module: which step of which occurrence is due when, and what
//! it sends to whom.
//!
//! [`Planner`] turns definitions into *fires* (a step of an occurrence, due at an
//! instant) and a fire into *planned messages* (one per recipient, with channel,
//! language and rendered text). `palabre preview` drives it over a
//! [`VirtualClock`]; the server drives the very same code over the system clock,
//! so what the preview shows is what the server does.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::definitions::{
    Definitions, MAX_OCCURRENCES_PER_WINDOW, MAX_RULE_REMINDER_LEAD, Meeting,
};
use crate::recipients::{choose_channel, reach, reach_indices};
use palabre_core::channel::Channel;
use palabre_core::clock::{Clock, VirtualClock};
use palabre_lang::contacts::Contact;
use palabre_lang::meeting::{RecipientGroup, Step};
use palabre_lang::occurrence::{Changes, OccurrenceChange, occurrence_reference};
use palabre_lang::templates::{
    AnswerFacts, ChangeFacts, MessageContext, OccurrenceFacts, Templates, WorkflowFacts,
};
use palabre_rules::{
    Answer, InviteesDecision, RemindersDecision, RuleFailure, ScheduleDecision, Subject,
    meeting_input, with_participants,
};

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

/// Where each recipient of a meeting answers it from a browser: a link of their
/// own, made by the server (which signs it and serves the page).
pub trait AnswerLinks: Send + Sync {
    fn url(&self, workflow: &str, occurrence: DateTime<Utc>, contact: &str) -> String;
}

/// One planning pass: fires and messages from one snapshot of the definitions
/// and one of the contact directory. The rule failures met along the way are
/// kept for the pass's caller ([`Planner::take_failures`]), which writes them to
/// the ledger with what the pass produced.
pub struct Planner<'d> {
    definitions: &'d Definitions,
    directory: Arc<Vec<Contact>>,
    failures: Mutex<Vec<RuleFailure>>,
    /// How long reminders rules may run in this pass (real time), if bounded.
    rule_time: Option<Duration>,
    /// How long they ran so far.
    rule_time_spent: Mutex<Duration>,
    /// Answer links for meeting messages, when the server has a public address.
    answer_links: Option<&'d dyn AnswerLinks>,
    /// Each workflow's own recipients (positions in `directory`), once asked.
    reached: Mutex<HashMap<String, Arc<[usize]>>>,
}

/// The fires one meeting has in a window, and how far they are complete.
#[derive(Debug)]
pub struct Window<'d> {
    /// Fires due in the window, ordered by occurrence.
    pub fires: Vec<Fire<'d>>,
    /// Every fire due before this instant is in `fires` (or was before the
    /// window): where the next window starts. Before the window's end when the
    /// window held more than [`MAX_OCCURRENCES_PER_WINDOW`] occurrences, or when
    /// the pass's rule time ran out before every occurrence's reminders were asked.
    pub complete_until: DateTime<Utc>,
}

impl<'d> Planner<'d> {
    pub fn new(definitions: &'d Definitions, directory: Arc<Vec<Contact>>) -> Planner<'d> {
        Planner {
            definitions,
            directory,
            failures: Mutex::default(),
            rule_time: None,
            rule_time_spent: Mutex::default(),
            answer_links: None,
            reached: Mutex::new(HashMap::new()),
        }
    }

    /// Gives each recipient of a meeting message their answer link
    /// (`{{ answer.url }}` in templates).
    pub fn with_answer_links(mut self, links: &'d dyn AnswerLinks) -> Planner<'d> {
        self.answer_links = Some(links);
        self
    }

    /// Bounds the real time reminders rules may run in this pass: once spent, the
    /// occurrences not yet asked about are left to the next pass
    /// ([`Window::complete_until`]). A pass always asks about one occurrence at
    /// least, and what was asked is kept ([`Definitions::reminders`]), so passes
    /// move forward.
    pub fn with_rule_time(mut self, budget: Duration) -> Planner<'d> {
        self.rule_time = Some(budget);
        self
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
        fires.sort_by(fire_order);
        fires
    }

    /// [`Planner::fires_between`] for one meeting, unsorted.
    fn fires_of(
        &self,
        meeting: &'d Meeting,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        changes: &Changes,
        now: DateTime<Utc>,
    ) -> Vec<Fire<'d>> {
        let mut fires = Vec::new();
        let mut start = from;
        // Window after window: a crowded one is complete only part of the way.
        while start < to {
            let window = self.window_of(meeting, start, to, changes, now);
            fires.extend(
                window
                    .fires
                    .into_iter()
                    .filter(|f| start <= f.due && f.due < window.complete_until),
            );
            if window.complete_until <= start {
                break;
            }
            start = window.complete_until;
        }
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
        self.decided_steps(meeting, occurrence, start, now).0
    }

    /// The steps of one occurrence, and whether the rule's are among them (not
    /// when this pass's rule time is spent and the rule was not asked before).
    fn decided_steps(
        &self,
        meeting: &'d Meeting,
        occurrence: DateTime<Utc>,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> (Vec<Cow<'d, Step>>, bool) {
        let def = &meeting.definition;
        let mut steps: Vec<Cow<'d, Step>> = def.steps.iter().map(Cow::Borrowed).collect();
        if !meeting.reach.rule_reminders {
            return (steps, true);
        }
        let memo = &self.definitions.reminders;
        let extra = match memo.get(&def.id, occurrence, start) {
            Some(extra) => extra,
            None if self.rule_time_is_spent() => return (steps, false),
            None => {
                let extra = self.ask_reminders(meeting, occurrence, start, now);
                memo.insert(&def.id, occurrence, start, extra.clone());
                extra
            }
        };
        steps.extend(extra.iter().cloned().map(Cow::Owned));
        (steps, true)
    }

    fn rule_time_is_spent(&self) -> bool {
        self.rule_time.is_some_and(|budget| {
            *self
                .rule_time_spent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                > budget
        })
    }

    /// Asks the reminders rule about one occurrence, timing it.
    fn ask_reminders(
        &self,
        meeting: &Meeting,
        occurrence: DateTime<Utc>,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Arc<[Step]> {
        let def = &meeting.definition;
        let rules = &self.definitions.rules;
        let asked = Instant::now();
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
        *self
            .rule_time_spent
            .lock()
            .unwrap_or_else(|p| p.into_inner()) += asked.elapsed();
        decision
            .0
            .into_iter()
            .filter(|r| -r.at.as_delta() <= MAX_RULE_REMINDER_LEAD)
            .map(|reminder| Step {
                id: reminder.step_id(),
                at: reminder.at,
                template: reminder.template,
                channels: reminder.channels,
                recipients: None,
                calendar: false,
            })
            .collect()
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

    /// The fires of one meeting due in `[from, to)`: its occurrences as the
    /// recurrence gives them, less those moved or cancelled, plus the moved ones at
    /// their new start; complete up to [`Window::complete_until`].
    pub fn window_of(
        &self,
        meeting: &'d Meeting,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        changes: &Changes,
        now: DateTime<Utc>,
    ) -> Window<'d> {
        let id = &meeting.definition.id;
        let reach = meeting.reach;
        // An occurrence matters if any of its steps falls in the window.
        let nominal = meeting.recurrence.between(
            from - reach.latest,
            to - reach.earliest,
            MAX_OCCURRENCES_PER_WINDOW,
        );
        let mut complete_until = to;
        if nominal.len() == MAX_OCCURRENCES_PER_WINDOW
            && let Some(last) = nominal.last()
        {
            // The occurrences after the last one were not looked at: theirs
            // come no earlier than its earliest step.
            complete_until =
                complete_until.min(*last + reach.earliest + TimeDelta::milliseconds(1));
        }
        let nominal = nominal
            .into_iter()
            .filter(|occurrence| changes.get(id, *occurrence).is_none())
            .map(|occurrence| (occurrence, occurrence, 0));
        let moved = changes
            .of(id)
            .filter_map(|c| c.starts_at.map(|start| (c.occurrence, start, c.sequence)));
        let mut fires = Vec::new();
        for (occurrence, start, sequence) in nominal.chain(moved) {
            let (steps, decided) = self.decided_steps(meeting, occurrence, start, now);
            if !decided {
                // Its rule's reminders are asked for in a later pass.
                complete_until = complete_until.min(start - MAX_RULE_REMINDER_LEAD);
            }
            for step in steps {
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
        Window {
            fires,
            complete_until,
        }
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

    /// What a message about one occurrence of `meeting` (starting at `start`)
    /// tells every recipient: the workflow and the occurrence.
    pub fn meeting_context(
        &self,
        meeting: &Meeting,
        occurrence: DateTime<Utc>,
        start: DateTime<Utc>,
        step: &str,
    ) -> MessageContext {
        let def = &meeting.definition;
        let zone = meeting.recurrence.zone();
        let local_start = start.with_timezone(&zone);
        let place_name = self
            .definitions
            .places
            .get(&def.place)
            .map_or_else(|| def.place.clone(), |p| p.name.clone());
        MessageContext::new(
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
            step,
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
        let mut recipients = if std::ptr::eq(sending.groups, def.recipients.as_slice()) {
            // The workflow's own recipients: the same for every occurrence, asked once.
            let mut known = self.reached.lock().unwrap_or_else(|p| p.into_inner());
            let indices = known
                .entry(def.id.clone())
                .or_insert_with(|| {
                    reach_indices(sending.groups, &def.place, &self.directory).into()
                })
                .clone();
            indices.iter().map(|&i| &self.directory[i]).collect()
        } else {
            reach(sending.groups, &def.place, &self.directory)
        };
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
        let slot = Slot {
            due,
            zone: meeting.recurrence.zone(),
            workflow: &def.id,
            occurrence,
            step: sending.step_id,
            template: sending.template,
            channels: sending.channels,
        };
        // What every recipient shares is made once.
        let shared = MessageContext {
            change,
            ..self.meeting_context(meeting, occurrence, start, sending.step_id)
        };
        recipients
            .into_iter()
            .map(|contact| {
                let mut context = shared.to(contact);
                context.answer = self.answer_links.map(|links| AnswerFacts {
                    url: links.url(&def.id, occurrence, &contact.id),
                });
                self.prepare(&slot, contact, &context)
            })
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
        use std::cmp::Reverse;
        let mut changes = changes.clone();
        let mut planned = Vec::new();
        // Every fire once in `fires`; `queue` orders them. A schedule change
        // re-plans its meeting alone: its fires come again under a new
        // generation, and the older ones are passed over.
        let mut fires = self.fires_between(clock.now(), until, &changes, clock.now());
        let mut queue: std::collections::BinaryHeap<Reverse<Queued<'d>>> = fires
            .iter()
            .enumerate()
            .map(|(index, fire)| Reverse(Queued::of(fire, index, 0)))
            .collect();
        let mut generations: HashMap<&'d str, u32> = HashMap::new();
        // Fires handled at the current instant (workflow, nominal occurrence,
        // step), so that a re-plan does not repeat them.
        let mut handled: HashSet<(&'d str, DateTime<Utc>, String)> = HashSet::new();
        while let Some(Reverse(queued)) = queue.pop() {
            if generations.get(queued.workflow).copied().unwrap_or(0) != queued.generation {
                continue;
            }
            let fire = &fires[queued.index];
            let meeting = fire.meeting;
            let key = (
                meeting.definition.id.as_str(),
                fire.occurrence,
                fire.step.id.clone(),
            );
            if clock.now() < fire.due {
                handled.clear();
            }
            if !handled.insert(key) {
                continue;
            }
            clock.advance_to(fire.due);
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
            let generation = generations
                .entry(meeting.definition.id.as_str())
                .or_insert(0);
            *generation += 1;
            let generation = *generation;
            for fire in self.fires_of(meeting, now, until, &changes, now) {
                queue.push(Reverse(Queued::of(&fire, fires.len(), generation)));
                fires.push(fire);
            }
        }
        clock.advance_to(until);
        planned
    }
}

/// A fire waiting in [`Planner::preview`]'s queue, in the order fires happen
/// (then in the order they were planned), with the generation of its
/// meeting's plan it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Queued<'d> {
    due: DateTime<Utc>,
    workflow: &'d str,
    at: palabre_core::offset::Offset,
    index: usize,
    generation: u32,
}

impl<'d> Queued<'d> {
    fn of(fire: &Fire<'d>, index: usize, generation: u32) -> Queued<'d> {
        Queued {
            due: fire.due,
            workflow: fire.meeting.definition.id.as_str(),
            at: fire.step.at,
            index,
            generation,
        }
    }
}

/// The order fires happen in: by due instant, then workflow, then step offset.
fn fire_order(a: &Fire<'_>, b: &Fire<'_>) -> std::cmp::Ordering {
    (a.due, &a.meeting.definition.id, a.step.at).cmp(&(b.due, &b.meeting.definition.id, b.step.at))
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::path::Path;

    const PLACES: &str = "\
version: \"test\"
regions:
  - id: mopti
    name: Mopti
    cercles:
      - id: koro
        name: Koro
        communes:
          - { id: koro, name: Koro }
";

    const ROLES: &str = "\
roles:
  leader: Leader
  mayor: Maire
";

    /// A weekly meeting at 09:00 on Mondays in Africa/Bamako (UTC, no DST).
    const WEEKLY: &str = "\
kind: meeting
id: weekly-koro
title: Réunion hebdomadaire
place: mopti/koro
recurrence: \"0 9 * * MON\"
venue: Mairie de Koro
recipients: [{ role: leader }]
steps:
  - { id: invitation, at: -3d, template: meeting-invitation, channels: [sms, email] }
  - { id: reminder, at: -2h, template: meeting-reminder, channels: [sms] }
  - { id: minutes, at: +1d, template: minutes-due, channels: [email] }
";

    /// The same steps, at the same time, under an id that sorts first.
    const TWIN: &str = "\
kind: meeting
id: another-weekly
title: Autre réunion
place: mopti/koro
recurrence: \"0 9 * * MON\"
venue: Mairie de Koro
recipients: [{ role: mayor }]
steps:
  - { id: invitation, at: -3d, template: meeting-invitation, channels: [sms, email] }
  - { id: reminder, at: -2h, template: meeting-reminder, channels: [sms] }
  - { id: minutes, at: +1d, template: minutes-due, channels: [email] }
";

    fn template(subject: &str) -> String {
        format!(
            "fra:\n  subject: \"{subject} {{{{ workflow.title }}}}\"\n  email: \"{subject} {{{{ occurrence.date }}}}\"\n  sms: \"{subject} {{{{ occurrence.time }}}}\"\n"
        )
    }

    /// A workflows folder with the given meetings, loaded without errors.
    fn load(meetings: &[(&str, &str)]) -> (tempfile::TempDir, Definitions) {
        load_with_rules(meetings, None)
    }

    /// The same, with `rules/national.rhai` when `national` is given.
    fn load_with_rules(
        meetings: &[(&str, &str)],
        national: Option<&str>,
    ) -> (tempfile::TempDir, Definitions) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |path: &str, text: &str| std::fs::write(root.join(path), text).unwrap();
        std::fs::create_dir(root.join("templates")).unwrap();
        write("places.yaml", PLACES);
        write("roles.yaml", ROLES);
        for name in ["meeting-invitation", "meeting-reminder", "minutes-due"] {
            write(&format!("templates/{name}.yaml"), &template(name));
        }
        for (file, text) in meetings {
            write(file, text);
        }
        if let Some(script) = national {
            std::fs::create_dir(root.join("rules")).unwrap();
            write("rules/national.rhai", script);
        }
        let (definitions, diagnostics) = Definitions::load(Path::new(root), None, &[]);
        assert!(!diagnostics.has_errors(), "{:?}", diagnostics.sorted());
        assert_eq!(definitions.meetings.len(), meetings.len());
        (dir, definitions)
    }

    fn at(text: &str) -> DateTime<Utc> {
        let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        Utc.from_utc_datetime(&naive)
    }

    fn meeting<'d>(definitions: &'d Definitions, id: &str) -> &'d Meeting {
        definitions.meeting(id).unwrap()
    }

    fn moved(occurrence: &str, to: &str) -> OccurrenceChange {
        OccurrenceChange {
            workflow: "weekly-koro".to_owned(),
            occurrence: at(occurrence),
            starts_at: Some(at(to)),
            sequence: 1,
            reason: "market day".to_owned(),
        }
    }

    fn cancelled(workflow: &str, occurrence: &str) -> OccurrenceChange {
        OccurrenceChange {
            workflow: workflow.to_owned(),
            occurrence: at(occurrence),
            starts_at: None,
            sequence: 1,
            reason: "flood".to_owned(),
        }
    }

    /// (due, step, occurrence key) of a fire.
    type Shown = (DateTime<Utc>, String, DateTime<Utc>);

    /// (due, step, occurrence key) as written in a table.
    type Row = (&'static str, &'static str, &'static str);

    /// (due, step, occurrence key) of each fire, in the order given.
    fn shown(fires: &[Fire<'_>]) -> Vec<Shown> {
        fires
            .iter()
            .map(|f| (f.due, f.step.id.clone(), f.occurrence))
            .collect()
    }

    fn expected(rows: &[Row]) -> Vec<Shown> {
        rows.iter()
            .map(|(due, step, occurrence)| (at(due), (*step).to_owned(), at(occurrence)))
            .collect()
    }

    fn sorted(mut fires: Vec<Shown>) -> Vec<Shown> {
        fires.sort();
        fires
    }

    #[test]
    fn fires_of_a_weekly_meeting_in_a_window() {
        let (_dir, definitions) = load(&[("weekly.yaml", WEEKLY)]);
        let planner = Planner::new(&definitions, Arc::new(Vec::new()));
        let weekly = meeting(&definitions, "weekly-koro");
        let now = at("2025-02-01 00:00");
        // Mondays: 2025-02-24, 03-03, 03-10, 03-17. Steps at -3d, -2h, +1d.
        // (from, to, expected (due, step, occurrence))
        let table: [(&str, &str, &[Row]); 8] = [
            (
                "2025-03-01 00:00",
                "2025-03-08 00:00",
                &[
                    ("2025-03-03 07:00", "reminder", "2025-03-03 09:00"),
                    ("2025-03-04 09:00", "minutes", "2025-03-03 09:00"),
                    ("2025-03-07 09:00", "invitation", "2025-03-10 09:00"),
                ],
            ),
            // a whole week from a due instant: its start is inclusive
            (
                "2025-03-03 07:00",
                "2025-03-10 07:00",
                &[
                    ("2025-03-03 07:00", "reminder", "2025-03-03 09:00"),
                    ("2025-03-04 09:00", "minutes", "2025-03-03 09:00"),
                    ("2025-03-07 09:00", "invitation", "2025-03-10 09:00"),
                ],
            ),
            // its end is exclusive
            ("2025-03-03 06:00", "2025-03-03 07:00", &[]),
            (
                "2025-03-03 07:00",
                "2025-03-03 07:01",
                &[("2025-03-03 07:00", "reminder", "2025-03-03 09:00")],
            ),
            ("2025-03-03 07:01", "2025-03-04 09:00", &[]),
            (
                "2025-03-04 08:59",
                "2025-03-04 09:01",
                &[("2025-03-04 09:00", "minutes", "2025-03-03 09:00")],
            ),
            // an empty window
            ("2025-03-03 07:00", "2025-03-03 07:00", &[]),
            // the occurrence itself sends nothing at its start
            ("2025-03-03 08:00", "2025-03-03 10:00", &[]),
        ];
        for (from, to, want) in table {
            let fires = planner
                .window_of(weekly, at(from), at(to), &Changes::default(), now)
                .fires;
            assert_eq!(
                sorted(shown(&fires)),
                expected(want),
                "window [{from}, {to})"
            );
            for fire in &fires {
                assert_eq!(fire.start, fire.occurrence, "unchanged, so not moved");
                assert_eq!(fire.sequence, 0);
                assert_eq!(fire.due, fire.start + fire.step.at.as_delta());
            }
        }
    }

    #[test]
    fn fires_of_moved_and_cancelled_occurrences() {
        let (_dir, definitions) = load(&[("weekly.yaml", WEEKLY)]);
        let planner = Planner::new(&definitions, Arc::new(Vec::new()));
        let weekly = meeting(&definitions, "weekly-koro");
        let now = at("2025-02-01 00:00");
        let (from, to) = (at("2025-03-08 00:00"), at("2025-03-15 00:00"));
        // (changes, expected (due, step, occurrence)) in [03-08, 03-15)
        let table: Vec<(Vec<OccurrenceChange>, &[Row])> = vec![
            (
                vec![],
                &[
                    ("2025-03-10 07:00", "reminder", "2025-03-10 09:00"),
                    ("2025-03-11 09:00", "minutes", "2025-03-10 09:00"),
                    ("2025-03-14 09:00", "invitation", "2025-03-17 09:00"),
                ],
            ),
            // moved to Wednesday 15:00: every step follows the new start, the key stays
            (
                vec![moved("2025-03-10 09:00", "2025-03-12 15:00")],
                &[
                    ("2025-03-09 15:00", "invitation", "2025-03-10 09:00"),
                    ("2025-03-12 13:00", "reminder", "2025-03-10 09:00"),
                    ("2025-03-13 15:00", "minutes", "2025-03-10 09:00"),
                    ("2025-03-14 09:00", "invitation", "2025-03-17 09:00"),
                ],
            ),
            // moved out of the window: nothing left of it here
            (
                vec![moved("2025-03-10 09:00", "2025-04-20 09:00")],
                &[("2025-03-14 09:00", "invitation", "2025-03-17 09:00")],
            ),
            // moved into the window from far away
            (
                vec![moved("2025-06-02 09:00", "2025-03-12 15:00")],
                &[
                    ("2025-03-09 15:00", "invitation", "2025-06-02 09:00"),
                    ("2025-03-10 07:00", "reminder", "2025-03-10 09:00"),
                    ("2025-03-11 09:00", "minutes", "2025-03-10 09:00"),
                    ("2025-03-12 13:00", "reminder", "2025-06-02 09:00"),
                    ("2025-03-13 15:00", "minutes", "2025-06-02 09:00"),
                    ("2025-03-14 09:00", "invitation", "2025-03-17 09:00"),
                ],
            ),
            // cancelled: not at all
            (
                vec![cancelled("weekly-koro", "2025-03-10 09:00")],
                &[("2025-03-14 09:00", "invitation", "2025-03-17 09:00")],
            ),
            (
                vec![
                    cancelled("weekly-koro", "2025-03-10 09:00"),
                    cancelled("weekly-koro", "2025-03-17 09:00"),
                ],
                &[],
            ),
            // another workflow's change does not touch this one
            (
                vec![cancelled("another-weekly", "2025-03-10 09:00")],
                &[
                    ("2025-03-10 07:00", "reminder", "2025-03-10 09:00"),
                    ("2025-03-11 09:00", "minutes", "2025-03-10 09:00"),
                    ("2025-03-14 09:00", "invitation", "2025-03-17 09:00"),
                ],
            ),
        ];
        for (changes, want) in table {
            let changes = Changes::new(changes);
            let fires = planner.window_of(weekly, from, to, &changes, now).fires;
            assert_eq!(sorted(shown(&fires)), expected(want), "{changes:?}");
            for fire in &fires {
                let change = changes.get("weekly-koro", fire.occurrence);
                assert!(
                    change.is_none_or(|c| c.starts_at.is_some()),
                    "a cancelled occurrence fired: {fire:?}"
                );
                let start = change.and_then(|c| c.starts_at).unwrap_or(fire.occurrence);
                assert_eq!(fire.start, start);
                assert_eq!(fire.sequence, change.map_or(0, |c| c.sequence));
                assert_eq!(fire.due, start + fire.step.at.as_delta());
            }
        }
    }

    #[test]
    fn fires_between_orders_by_due_then_workflow_then_step() {
        let (_dir, definitions) = load(&[("weekly.yaml", WEEKLY), ("another.yaml", TWIN)]);
        let planner = Planner::new(&definitions, Arc::new(Vec::new()));
        let now = at("2025-02-01 00:00");
        // The occurrence of 03-10 moved to Tuesday 11:00: its reminder (-2h) is due
        // with the minutes (+1d) of 03-03, at 03-04 09:00.
        let changes = Changes::new([moved("2025-03-10 09:00", "2025-03-04 11:00")]);
        let fires = planner.fires_between(
            at("2025-03-03 00:00"),
            at("2025-03-08 00:00"),
            &changes,
            now,
        );
        let got: Vec<(DateTime<Utc>, &str, &str, DateTime<Utc>)> = fires
            .iter()
            .map(|f| {
                (
                    f.due,
                    f.meeting.definition.id.as_str(),
                    f.step.id.as_str(),
                    f.occurrence,
                )
            })
            .collect();
        let want: Vec<(DateTime<Utc>, &str, &str, DateTime<Utc>)> = [
            (
                "2025-03-03 07:00",
                "another-weekly",
                "reminder",
                "2025-03-03 09:00",
            ),
            (
                "2025-03-03 07:00",
                "weekly-koro",
                "reminder",
                "2025-03-03 09:00",
            ),
            (
                "2025-03-04 09:00",
                "another-weekly",
                "minutes",
                "2025-03-03 09:00",
            ),
            (
                "2025-03-04 09:00",
                "weekly-koro",
                "reminder",
                "2025-03-10 09:00",
            ),
            (
                "2025-03-04 09:00",
                "weekly-koro",
                "minutes",
                "2025-03-03 09:00",
            ),
            (
                "2025-03-05 11:00",
                "weekly-koro",
                "minutes",
                "2025-03-10 09:00",
            ),
            (
                "2025-03-07 09:00",
                "another-weekly",
                "invitation",
                "2025-03-10 09:00",
            ),
        ]
        .into_iter()
        .map(|(due, workflow, step, occurrence)| (at(due), workflow, step, at(occurrence)))
        .collect();
        assert_eq!(got, want);
        // The moved invitation (due 03-01) is before the window: not there.
        assert!(fires.iter().all(|f| f.due >= at("2025-03-03 00:00")));
    }

    fn leader() -> Contact {
        Contact {
            id: "c-1".to_owned(),
            name: "Awa Diallo".to_owned(),
            roles: vec!["leader".to_owned()],
            place: "mopti/koro/koro".to_owned(),
            phone: Some("+22376112233".to_owned()), // a fake number
            email: Some("awa@example.org".to_owned()),
            language: "fra".to_owned(),
            channels: vec![Channel::Sms],
        }
    }

    #[test]
    fn rule_reminders_fire_at_their_offset_within_their_lead() {
        let script = "fn meeting_reminders(input) {
            [#{ at: \"-3h\", channels: [\"sms\"] }, #{ at: \"-31d\" }]
        }";
        let (_dir, definitions) = load_with_rules(&[("weekly.yaml", WEEKLY)], Some(script));
        let planner = Planner::new(&definitions, Arc::new(vec![leader()]));
        let weekly = meeting(&definitions, "weekly-koro");
        let now = at("2025-02-01 00:00");
        let fires = planner
            .window_of(
                weekly,
                at("2025-03-03 00:00"),
                at("2025-03-03 09:00"),
                &Changes::default(),
                now,
            )
            .fires;
        assert_eq!(
            sorted(shown(&fires)),
            expected(&[
                ("2025-03-03 06:00", "rule-reminder-3h", "2025-03-03 09:00"),
                ("2025-03-03 07:00", "reminder", "2025-03-03 09:00"),
            ])
        );
        // -31d is beyond MAX_RULE_REMINDER_LEAD: never a step.
        let month = planner
            .window_of(
                weekly,
                at("2025-01-01 00:00"),
                at("2025-03-01 00:00"),
                &Changes::default(),
                now,
            )
            .fires;
        assert!(month.iter().all(|f| f.step.id != "rule-reminder-31d"));
        assert!(planner.take_failures().is_empty());
    }

    #[test]
    fn a_rule_reminder_without_channels_is_a_rule_failure() {
        let script = "fn meeting_reminders(input) { [#{ at: \"-3h\", channels: [] }] }";
        let (_dir, definitions) = load_with_rules(&[("weekly.yaml", WEEKLY)], Some(script));
        let planner = Planner::new(&definitions, Arc::new(vec![leader()]));
        let weekly = meeting(&definitions, "weekly-koro");
        let now = at("2025-02-01 00:00");
        let fires = planner
            .window_of(
                weekly,
                at("2025-03-03 06:00"),
                at("2025-03-03 06:01"),
                &Changes::default(),
                now,
            )
            .fires;
        // Expected as for a YAML step with `channels: []` ("channels is empty"):
        // refused, the default (no extra reminder) applied, and a rule failure kept.
        let messages: Vec<_> = fires
            .iter()
            .flat_map(|f| planner.messages(f, now))
            .collect();
        assert!(
            messages.is_empty(),
            "{:?}",
            messages
                .iter()
                .map(|m| (&m.step, m.channel, &m.problem))
                .collect::<Vec<_>>()
        );
        assert!(!planner.take_failures().is_empty());
    }

    const EVERY_MINUTE: &str = "\
kind: meeting
id: every-minute
title: Trop souvent
place: mopti/koro
recurrence: \"* * * * *\"
venue: Mairie de Koro
recipients: [{ role: leader }]
steps:
  - { id: reminder, at: -2h, template: meeting-reminder, channels: [sms] }
";

    #[test]
    fn a_crowded_window_is_complete_only_as_far_as_its_occurrences_reach() {
        let (_dir, definitions) = load(&[("minute.yaml", EVERY_MINUTE)]);
        let planner = Planner::new(&definitions, Arc::new(vec![leader()]));
        let minute = meeting(&definitions, "every-minute");
        let (from, to) = (at("2026-12-01 00:00"), at("2027-01-10 00:00"));
        let window = planner.window_of(minute, from, to, &Changes::default(), from);
        // 20,000 occurrences from 02:00 on (their reminders fall from midnight):
        // the last one starts at 02:00 + 19,999 minutes, its reminder two hours before.
        let last_start = at("2026-12-01 02:00") + TimeDelta::minutes(19_999);
        assert_eq!(
            window.complete_until,
            last_start - TimeDelta::hours(2) + TimeDelta::milliseconds(1)
        );
        // Preview goes window after window: every minute of the 40 days, once.
        let fires = planner.fires_between(from, to, &Changes::default(), from);
        assert_eq!(fires.len(), 40 * 1_440);
        assert!(
            fires
                .windows(2)
                .all(|pair| pair[1].due - pair[0].due == TimeDelta::minutes(1))
        );
    }

    #[test]
    fn a_pass_out_of_rule_time_leaves_the_rest_to_the_next_and_never_asks_twice() {
        let script = "fn meeting_reminders(input) { [#{ at: \"-3h\", channels: [\"sms\"] }] }";
        let (_dir, definitions) = load_with_rules(&[("weekly.yaml", WEEKLY)], Some(script));
        let weekly = meeting(&definitions, "weekly-koro");
        let (from, to) = (at("2025-03-01 00:00"), at("2025-03-29 00:00"));
        let pass = || {
            Planner::new(&definitions, Arc::new(vec![leader()]))
                .with_rule_time(Duration::ZERO)
                .window_of(weekly, from, to, &Changes::default(), from)
        };
        // With no rule time, a pass asks about one occurrence only (the first whose
        // steps reach the window, Monday 3 March), and is complete up to 30 days
        // before the next one; the workflow's own steps are all there.
        let first = pass();
        assert_eq!(definitions.reminders.len(), 1);
        assert_eq!(
            first.complete_until,
            at("2025-03-10 09:00") - MAX_RULE_REMINDER_LEAD
        );
        let own = |w: &Window<'_>| {
            w.fires
                .iter()
                .filter(|f| !f.step.id.starts_with(RULE_STEP_PREFIX))
                .count()
        };
        assert_eq!(
            own(&first),
            12,
            "the invitations, reminders and minutes due in March"
        );
        // Each pass asks about one more, until the window is complete.
        let mut passes = 1;
        let last = loop {
            let window = pass();
            passes += 1;
            if window.complete_until == to {
                break window;
            }
            assert_eq!(definitions.reminders.len(), passes);
        };
        // The Mondays from 3 March to 21 April (30 days after the window): 8.
        assert_eq!(definitions.reminders.len(), 8);
        assert_eq!(passes, 8);
        let rule_fires = last
            .fires
            .iter()
            .filter(|f| f.step.id == "rule-reminder-3h")
            .count();
        assert_eq!(rule_fires, 4, "one per Monday of March");
    }
}
