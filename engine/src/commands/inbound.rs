//! SMS replies: an opt-out or opt-in word, a yes or no quoting a reference, or a
//! done. A reply is matched to the contact by their number, then by its
//! reference to what the contact is asked about: a meeting they are invited to
//! (the answer is recorded and the quorum rule weighs the answers again), a
//! dispute waiting for them at its current level (yes acknowledges it, no is
//! noted for the coordinator), or a milestone they own (done closes it, where its
//! plan allows). The sender gets a short confirmation by SMS
//! (`templates/reply-confirmation`). What cannot be matched goes to the ledger
//! for a coordinator, with the number masked.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{CommandError, Commands};
use crate::messages::{queue_messages, rule_failure_entry};
use palabre_core::channel::Channel;
use palabre_core::redact;
use palabre_core::webhooks::{DeliveryStatus, InboundSms, Receipt};
use palabre_lang::contacts::{Contact, normalize_phone};
use palabre_lang::escalation::{Case, CaseState, Ladder};
use palabre_lang::milestones::{MilestoneStatus, Statuses};
use palabre_lang::occurrence::occurrence_reference;
use palabre_lang::reply_words::Reply;
use palabre_lang::templates::{MessageContext, OccurrenceFacts, ReplyFacts, WorkflowFacts};
use palabre_plan::definitions::Definitions;
use palabre_plan::planner::{Slot, prepare_message};
use palabre_plan::recipients::reach;
use palabre_rules::QuorumDecision;
use palabre_store::{LedgerEntry, LedgerEvent, ReceiptSubject, StoreError};

use super::attendance::weigh_quorum;
use super::cases::CaseAction;

/// What a reply did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum InboundOutcome {
    Stopped {
        contact: String,
    },
    Restarted {
        contact: String,
    },
    Answered {
        contact: String,
        workflow: String,
        occurrence: DateTime<Utc>,
        response: String,
        quorum_reached: bool,
        quorum_reason: String,
    },
    /// A responder took the dispute on (`OUI LT-0007`).
    Acknowledged {
        contact: String,
        ladder: String,
        case: String,
    },
    /// A responder said they cannot take it (`NON LT-0007`): a note for the coordinator.
    Declined {
        contact: String,
        ladder: String,
        case: String,
    },
    /// An owner reported the milestone done (`FAIT 5127`).
    MilestoneDone {
        contact: String,
        plan: String,
        milestone: String,
    },
    /// An owner said during a call that the milestone is not done yet (2).
    MilestoneNotYet {
        contact: String,
        plan: String,
        milestone: String,
    },
    Unmatched {
        reason: String,
    },
    /// The provider posted a message already acted on: nothing is done again.
    Repeated {
        id: String,
    },
}

/// How an answer came, in ledger notes: "by SMS", "by call".
fn by_channel(via: Channel) -> &'static str {
    match via {
        Channel::Voice => "by call",
        Channel::Email => "by email",
        Channel::Sms => "by SMS",
    }
}

/// How far ahead an answer's reference code is looked for.
const ANSWER_WINDOW: TimeDelta = TimeDelta::days(60);

/// The template of the confirmation a sender gets.
const CONFIRMATION_TEMPLATE: &str = "reply-confirmation";
/// The template that tells a sender how to answer when their reply was not understood.
const HELP_TEMPLATE: &str = "reply-help";

impl Commands {
    /// Reads one SMS reply and acts on it.
    pub async fn inbound_sms(&self, message: &InboundSms) -> Result<InboundOutcome, CommandError> {
        let InboundSms {
            from,
            text,
            id,
            opt_out,
        } = message;
        // Marked seen only once acted on: a reply that failed half-way is acted
        // on when the provider posts it again.
        if let Some(id) = id
            && self.store().inbound_seen(id).await?
        {
            return Ok(InboundOutcome::Repeated { id: id.clone() });
        }
        let outcome = self
            .act_on_reply(from, text, *opt_out, id.as_deref())
            .await?;
        if let Some(id) = id {
            self.store().mark_inbound_seen(id, self.now()).await?;
        }
        Ok(outcome)
    }

    /// What [`Runtime::inbound_sms`] does with a message not seen before.
    async fn act_on_reply(
        &self,
        from: &str,
        text: &str,
        opt_out: Option<bool>,
        id: Option<&str>,
    ) -> Result<InboundOutcome, CommandError> {
        let definitions = self.definitions();
        let now = self.now();
        let number = normalize_phone(from);
        // Found by the number's blind index: the directory's numbers are sealed.
        let contact = match number.as_deref() {
            Some(number) => self.store().contact_by_phone(number).await?,
            None => None,
        };
        let masked = redact::phone(number.as_deref().unwrap_or(from));
        let Some(contact) = &contact else {
            return self
                .unmatched(now, &masked, "no contact has this number".to_owned())
                .await;
        };
        let directory = Arc::new(self.store().contacts().await?);
        let reply = match opt_out {
            Some(true) => Reply::Stop,
            Some(false) => Reply::Start,
            None => definitions.replies.read(text),
        };
        let outcome = match reply {
            reply @ (Reply::Stop | Reply::Start) => {
                let stop = reply == Reply::Stop;
                let why = if stop {
                    "asked to receive no more SMS"
                } else {
                    "asked to receive SMS again"
                };
                self.switch_sms(&contact.id, stop, why).await?;
                let contact = contact.id.clone();
                if stop {
                    InboundOutcome::Stopped { contact }
                } else {
                    InboundOutcome::Restarted { contact }
                }
            }
            Reply::NotUnderstood => {
                self.help(&definitions, contact, now).await?;
                let reason = format!("{}: not understood", contact.id);
                return self.unmatched(now, &masked, reason).await;
            }
            Reply::Answer {
                reference: None, ..
            }
            | Reply::Done { reference: None } => {
                self.help(&definitions, contact, now).await?;
                let reason = format!("{}: a reply without a reference code", contact.id);
                return self.unmatched(now, &masked, reason).await;
            }
            Reply::Answer {
                yes,
                reference: Some(reference),
            } => {
                if let Some(answered) = self
                    .answer_meeting(
                        &definitions,
                        contact,
                        &directory,
                        (yes, &reference),
                        Channel::Sms,
                        now,
                    )
                    .await?
                {
                    answered
                } else if let Some(case) = self
                    .case_waiting_for(&definitions, contact, &directory, &reference)
                    .await?
                {
                    self.answer_case(case, contact, yes, Channel::Sms).await?
                } else {
                    self.help(&definitions, contact, now).await?;
                    let reason = format!(
                        "{}: no meeting or dispute of theirs has the reference {reference}",
                        contact.id
                    );
                    return self.unmatched(now, &masked, reason).await;
                }
            }
            Reply::Done {
                reference: Some(reference),
            } => match self
                .milestone_done(&definitions, contact, &directory, &reference, Channel::Sms)
                .await?
            {
                Some(done) => done,
                None => {
                    self.help(&definitions, contact, now).await?;
                    let reason = format!(
                        "{}: no open milestone they may close by SMS has the reference {reference}",
                        contact.id
                    );
                    return self.unmatched(now, &masked, reason).await;
                }
            },
        };
        self.confirm(&definitions, contact, &outcome, id, now)
            .await?;
        Ok(outcome)
    }

    /// Records a reply nobody could act on, for a coordinator.
    async fn unmatched(
        &self,
        now: DateTime<Utc>,
        masked: &str,
        reason: String,
    ) -> Result<InboundOutcome, CommandError> {
        let entry = LedgerEntry::new(
            now,
            LedgerEvent::ReplyUnmatched,
            format!("from {masked}: {reason}"),
        );
        self.store().append_ledger(&[entry]).await?;
        Ok(InboundOutcome::Unmatched { reason })
    }

    /// A yes or no to the occurrence with this reference among the meetings the
    /// contact is invited to; `None` if there is none.
    pub(super) async fn answer_meeting(
        &self,
        definitions: &Definitions,
        contact: &Contact,
        directory: &Arc<Vec<Contact>>,
        (yes, reference): (bool, &str),
        via: Channel,
        now: DateTime<Utc>,
    ) -> Result<Option<InboundOutcome>, CommandError> {
        let found = definitions.meetings.iter().find_map(|meeting| {
            let def = &meeting.definition;
            let invited = reach(&def.recipients, &def.place, directory);
            if !invited.iter().any(|c| c.id == contact.id) {
                return None;
            }
            meeting
                .recurrence
                .between(now - TimeDelta::days(1), now + ANSWER_WINDOW, 1_000)
                .into_iter()
                .find(|o| occurrence_reference(&def.id, *o) == reference)
                .map(|o| (meeting, o, invited))
        });
        let Some((meeting, occurrence, invited)) = found else {
            return Ok(None);
        };
        let def = &meeting.definition;
        let response = if yes { "yes" } else { "no" };
        let entry = LedgerEntry::new(
            now,
            LedgerEvent::Reply,
            format!("{response} to {reference}"),
        )
        .slot(&def.id, occurrence, "reply")
        .recipient(&contact.id, Some(via));
        self.store()
            .record_response(&def.id, occurrence, &contact.id, response, now, &[entry])
            .await?;
        let answers = self.store().responses(&def.id, occurrence).await?;
        let quorum = weigh_quorum(
            definitions,
            meeting,
            occurrence,
            &invited,
            &answers,
            directory,
            now,
        );
        let failure = quorum.failure.map(|f| rule_failure_entry(f, now));
        let QuorumDecision { reached, reason } = quorum.decision;
        let by = quorum
            .by
            .unwrap_or_else(|| "the built-in default".to_owned());
        let verdict = if reached { "reached" } else { "not reached" };
        let mut ledger = vec![
            LedgerEntry::new(
                now,
                LedgerEvent::Quorum,
                format!("{verdict}: {reason} ({by})"),
            )
            .slot(&def.id, occurrence, "quorum"),
        ];
        ledger.extend(failure);
        self.store().append_ledger(&ledger).await?;
        Ok(Some(InboundOutcome::Answered {
            contact: contact.id.clone(),
            workflow: def.id.clone(),
            occurrence,
            response: response.to_owned(),
            quorum_reached: reached,
            quorum_reason: reason,
        }))
    }

    /// The open dispute with this reference whose current level the contact
    /// answers for.
    pub(super) async fn case_waiting_for(
        &self,
        definitions: &Definitions,
        contact: &Contact,
        directory: &[Contact],
        reference: &str,
    ) -> Result<Option<Case>, CommandError> {
        let case = match self.store().case(reference).await? {
            Some(case) => Some(case),
            None => self.store().case(&reference.to_uppercase()).await?,
        };
        Ok(case.filter(|case| {
            let level = definitions
                .ladder(&case.workflow)
                .and_then(|ladder| ladder.level(case.level));
            case.state == CaseState::Open
                && level.is_some_and(|level| {
                    let scope = Ladder::scope_place(level, &case.place);
                    reach(&level.responders, &scope, directory)
                        .iter()
                        .any(|c| c.id == contact.id)
                })
        }))
    }

    /// A responder's yes (acknowledged) or no (a note for the coordinator).
    pub(super) async fn answer_case(
        &self,
        case: Case,
        contact: &Contact,
        yes: bool,
        via: Channel,
    ) -> Result<InboundOutcome, CommandError> {
        let by = by_channel(via);
        let action = if yes {
            CaseAction::Acknowledge(by.to_owned())
        } else {
            CaseAction::Note(format!("declined {by}"))
        };
        self.act_on_case(&case.id, action, &contact.id).await?;
        let (contact, ladder, case) = (contact.id.clone(), case.workflow, case.id);
        Ok(if yes {
            InboundOutcome::Acknowledged {
                contact,
                ladder,
                case,
            }
        } else {
            InboundOutcome::Declined {
                contact,
                ladder,
                case,
            }
        })
    }

    /// Closes the milestone with this reference that the contact owns, if its
    /// plan lets owners do it by SMS.
    pub(super) async fn milestone_done(
        &self,
        definitions: &Definitions,
        contact: &Contact,
        directory: &[Contact],
        reference: &str,
        via: Channel,
    ) -> Result<Option<InboundOutcome>, CommandError> {
        let statuses = Statuses::new(self.store().milestone_states().await?);
        let found = definitions
            .plans
            .iter()
            .filter(|plan| plan.definition.done_by_sms)
            .find_map(|plan| {
                let def = &plan.definition;
                def.milestones
                    .iter()
                    .find(|m| {
                        plan.reference(m) == reference
                            && !statuses.status(&def.id, &m.id).is_closed()
                            && reach(std::slice::from_ref(&m.owner), &def.place, directory)
                                .iter()
                                .any(|c| c.id == contact.id)
                    })
                    .map(|m| (def, m))
            });
        let Some((plan, milestone)) = found else {
            return Ok(None);
        };
        let note = format!("reported done {} by {}", by_channel(via), contact.id);
        self.set_milestone_status(
            &plan.id,
            &milestone.id,
            MilestoneStatus::Done,
            &note,
            &contact.id,
        )
        .await?;
        Ok(Some(InboundOutcome::MilestoneDone {
            contact: contact.id.clone(),
            plan: plan.id.clone(),
            milestone: milestone.id.clone(),
        }))
    }

    /// Confirms a reply palabre acted on, by SMS in the sender's language.
    async fn confirm(
        &self,
        definitions: &Definitions,
        contact: &Contact,
        outcome: &InboundOutcome,
        provider_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        let (kind, reference, workflow, occurrence) = match outcome {
            InboundOutcome::Answered {
                workflow,
                occurrence,
                response,
                ..
            } => (
                response.as_str(),
                occurrence_reference(workflow, *occurrence),
                workflow.as_str(),
                *occurrence,
            ),
            InboundOutcome::Acknowledged { ladder, case, .. } => {
                ("acknowledged", case.clone(), ladder.as_str(), now)
            }
            InboundOutcome::Declined { ladder, case, .. } => {
                ("declined", case.clone(), ladder.as_str(), now)
            }
            InboundOutcome::MilestoneDone { plan, .. } => {
                ("done", String::new(), plan.as_str(), now)
            }
            InboundOutcome::Restarted { .. } => ("restarted", String::new(), "replies", now),
            InboundOutcome::Stopped { .. }
            | InboundOutcome::MilestoneNotYet { .. }
            | InboundOutcome::Unmatched { .. }
            | InboundOutcome::Repeated { .. } => return Ok(()),
        };
        let step = format!("reply@{}-{kind}", now.timestamp_millis());
        // One confirmation per reply: a message the provider posts twice (same
        // id) is confirmed once.
        let key = match provider_id {
            Some(id) => format!("reply|{id}"),
            None => format!("{workflow}|{}|{step}", occurrence.timestamp_millis()),
        };
        let answer = Answer {
            template: CONFIRMATION_TEMPLATE,
            kind,
            reference,
            workflow,
            occurrence,
            step: &step,
        };
        self.answer_sender(definitions, contact, &answer, &key, now)
            .await
    }

    /// Tells a known sender whose reply could not be acted on how to answer, in
    /// their language: once a day at most, however many such replies they send
    /// (the key is the contact and the day), so a conversation gets one help.
    async fn help(
        &self,
        definitions: &Definitions,
        contact: &Contact,
        now: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        if self.store().sms_stopped().await?.contains(&contact.id) {
            return Ok(());
        }
        let day = now.format("%Y-%m-%d");
        let answer = Answer {
            template: HELP_TEMPLATE,
            kind: "not-understood",
            reference: String::new(),
            workflow: "replies",
            occurrence: now,
            step: &format!("reply-help@{day}"),
        };
        let key = format!("reply-help|{}|{day}", contact.id);
        self.answer_sender(definitions, contact, &answer, &key, now)
            .await
    }

    /// Queues the SMS `answer` for `contact` under `key` (a key already queued
    /// is left alone); nothing when the template is not in the workflows folder.
    async fn answer_sender(
        &self,
        definitions: &Definitions,
        contact: &Contact,
        answer: &Answer<'_>,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        if !definitions.templates.contains(answer.template) {
            return Ok(());
        }
        let title = definitions
            .workflow(answer.workflow)
            .map_or_else(String::new, |w| w.title.to_owned());
        let slot = Slot {
            due: now,
            zone: chrono_tz::UTC,
            workflow: answer.workflow,
            occurrence: answer.occurrence,
            step: answer.step,
            template: answer.template,
            channels: &[Channel::Sms],
        };
        let context = MessageContext {
            reply: Some(ReplyFacts {
                kind: answer.kind.to_owned(),
                reference: answer.reference.clone(),
            }),
            ..MessageContext::new(
                WorkflowFacts {
                    id: answer.workflow.to_owned(),
                    title,
                    venue: String::new(),
                    place: contact.place.clone(),
                    place_name: String::new(),
                },
                OccurrenceFacts {
                    reference: answer.reference.clone(),
                    ..OccurrenceFacts::default()
                },
                answer.step,
            )
        }
        .to(contact);
        let planned = prepare_message(&definitions.templates, &slot, contact, &context);
        let (messages, unreachable) = queue_messages(vec![planned], key, now, |_| None);
        self.store()
            .queue_messages(&messages, &unreachable, now)
            .await?;
        self.wake();
        Ok(())
    }
}

/// An SMS answering the sender of a reply.
struct Answer<'a> {
    template: &'a str,
    /// What the template is told (`reply.kind`): yes, no, acknowledged, declined,
    /// done, restarted, not-understood.
    kind: &'a str,
    reference: String,
    workflow: &'a str,
    occurrence: DateTime<Utc>,
    step: &'a str,
}

/// Why SMS to a contact stop when their provider says they opted out.
pub(crate) const PROVIDER_OPT_OUT: &str = "the provider reports they opted out: no more SMS";

impl Commands {
    /// Stops SMS to a contact (or starts them again), saying why in the ledger.
    pub(crate) async fn switch_sms(
        &self,
        contact: &str,
        stop: bool,
        why: &str,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let event = if stop {
            LedgerEvent::SmsStopped
        } else {
            LedgerEvent::SmsRestarted
        };
        let entry =
            LedgerEntry::new(now, event, why.to_owned()).recipient(contact, Some(Channel::Sms));
        self.store()
            .set_sms_stopped(contact, stop, now, &entry)
            .await
    }
}

impl Commands {
    /// Records a delivery receipt: `delivered`, `failed`, or the provider's own
    /// word when it is neither (kept, not dropped). A failed message goes once
    /// more on its fallback channel; an opt-out the provider reports stops SMS to
    /// the contact. False if no message has this provider id.
    pub async fn delivery_receipt(&self, receipt: &Receipt) -> Result<bool, CommandError> {
        let now = self.now();
        let status = receipt.delivery_status();
        let said = receipt.status.trim();
        let redial = self.shared.redial.and_then(|redial| {
            let spacing = TimeDelta::from_std(redial.spacing).ok()?;
            Some((now + spacing, redial.tries))
        });
        let subject = self
            .store()
            .record_receipt(&receipt.provider_id, &status, now, redial, |about| {
                let event = match status {
                    DeliveryStatus::Delivered => LedgerEvent::Delivered,
                    DeliveryStatus::Unanswered if about.redial_at.is_some() => LedgerEvent::Receipt,
                    DeliveryStatus::Failed | DeliveryStatus::Unanswered => LedgerEvent::Undelivered,
                    DeliveryStatus::Passing(_) => LedgerEvent::Receipt,
                };
                let detail = match &receipt.reason {
                    Some(reason) => format!("the provider reports: {said} ({reason})"),
                    None => format!("the provider reports: {said}"),
                };
                about_sent(now, event, detail, about)
            })
            .await?;
        let Some(subject) = subject else {
            return Ok(false);
        };
        if receipt.opted_out && subject.channel == Channel::Sms {
            self.switch_sms(&subject.contact_id, true, PROVIDER_OPT_OUT)
                .await?;
        }
        Ok(true)
    }
}

/// The ledger entry about a sent message, saying where it went next if anywhere.
pub(crate) fn about_sent(
    now: DateTime<Utc>,
    event: LedgerEvent,
    mut detail: String,
    about: &ReceiptSubject,
) -> LedgerEntry {
    if let Some(channel) = &about.fell_back_to {
        detail.push_str(&format!("; sent again by {channel} instead"));
    }
    if let Some(at) = about.redial_at {
        detail.push_str(&format!(
            "; called again at {}",
            at.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    LedgerEntry::new(now, event, detail)
        .slot(&about.workflow, about.occurrence, &about.step)
        .recipient(&about.contact_id, Some(about.channel))
}
