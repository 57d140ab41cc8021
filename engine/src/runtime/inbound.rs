//! SMS replies: an opt-out or opt-in word, or a yes/no to a meeting quoted by its
//! reference code. A reply is matched to the contact by their number and to the
//! occurrence by the code; an answer is recorded and the quorum rule weighs the
//! occurrence's answers again. What cannot be matched goes to the ledger for a
//! coordinator, with the number masked.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{Runtime, RuntimeError};
use crate::contacts::normalize_phone;
use crate::plan::{occurrence_reference, reach};
use crate::redact;
use crate::replies::Reply;
use crate::rules::{QuorumDecision, Subject, meeting_input, with_responses};
use crate::store::{LedgerEntry, LedgerEvent, ReceiptSubject};
use crate::webhooks::{InboundSms, Receipt};

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
    Unmatched {
        reason: String,
    },
}

/// How far ahead an answer's reference code is looked for.
const ANSWER_WINDOW: TimeDelta = TimeDelta::days(60);

impl Runtime {
    /// Reads one SMS reply and acts on it.
    pub async fn inbound_sms(&self, message: &InboundSms) -> Result<InboundOutcome, RuntimeError> {
        let InboundSms {
            from,
            text,
            opt_out,
        } = message;
        let definitions = self.definitions();
        let now = self.clock.now();
        let number = normalize_phone(from);
        let directory = self.store.contacts().await?;
        let contact = number
            .as_deref()
            .and_then(|n| directory.iter().find(|c| c.phone.as_deref() == Some(n)));
        let masked = redact::phone(number.as_deref().unwrap_or(from));
        let unmatched = |reason: String| async move {
            let entry = LedgerEntry::new(
                now,
                LedgerEvent::ReplyUnmatched,
                format!("from {masked}: {reason}"),
            );
            self.store.append_ledger(&[entry]).await?;
            Ok(InboundOutcome::Unmatched { reason })
        };
        let Some(contact) = contact else {
            return unmatched("no contact has this number".to_owned()).await;
        };
        let about_contact = |event, detail: String| {
            LedgerEntry::new(now, event, detail).recipient(&contact.id, Some("sms"))
        };
        let reply = match opt_out {
            Some(true) => Reply::Stop,
            Some(false) => Reply::Start,
            None => definitions.replies.read(text),
        };
        match reply {
            reply @ (Reply::Stop | Reply::Start) => {
                let stop = reply == Reply::Stop;
                let (event, detail) = if stop {
                    (LedgerEvent::SmsStopped, "asked to receive no more SMS")
                } else {
                    (LedgerEvent::SmsRestarted, "asked to receive SMS again")
                };
                let entry = about_contact(event, detail.to_owned());
                self.store
                    .set_sms_stopped(&contact.id, stop, now, &entry)
                    .await?;
                let contact = contact.id.clone();
                Ok(if stop {
                    InboundOutcome::Stopped { contact }
                } else {
                    InboundOutcome::Restarted { contact }
                })
            }
            Reply::NotUnderstood => unmatched(format!("{}: not understood", contact.id)).await,
            Reply::Answer { yes, reference } => {
                let Some(reference) = reference else {
                    return unmatched(format!(
                        "{}: an answer without a reference code",
                        contact.id
                    ))
                    .await;
                };
                // The occurrences this contact is invited to, with that reference.
                let found = definitions.meetings.iter().find_map(|meeting| {
                    let def = &meeting.definition;
                    reach(&def.recipients, &def.place, &directory)
                        .iter()
                        .any(|c| c.id == contact.id)
                        .then(|| {
                            meeting
                                .recurrence
                                .between(now - TimeDelta::days(1), now + ANSWER_WINDOW, 1_000)
                                .into_iter()
                                .find(|o| occurrence_reference(&def.id, *o) == reference)
                                .map(|o| (meeting, o))
                        })
                        .flatten()
                });
                let Some((meeting, occurrence)) = found else {
                    return unmatched(format!(
                        "{}: no meeting of theirs has the reference {reference}",
                        contact.id
                    ))
                    .await;
                };
                let def = &meeting.definition;
                let response = if yes { "yes" } else { "no" };
                let entry = about_contact(LedgerEvent::Reply, format!("{response} to {reference}"))
                    .slot(&def.id, occurrence, "reply")
                    .recipient(&contact.id, Some("sms"));
                self.store
                    .record_response(&def.id, occurrence, &contact.id, response, now, &[entry])
                    .await?;
                let answers = self.store.responses(&def.id, occurrence).await?;
                let invited = reach(&def.recipients, &def.place, &directory);
                let rules = &definitions.rules;
                let quorum = rules.decide::<QuorumDecision>(
                    &def.place,
                    def.rules.quorum.as_deref(),
                    || {
                        with_responses(
                            meeting_input(rules.world(), &meeting.facts, occurrence, now),
                            invited
                                .iter()
                                .map(|c| (*c, answers.get(&c.id).map_or("none", String::as_str))),
                        )
                    },
                    Subject {
                        workflow: &def.id,
                        occurrence: Some(occurrence),
                    },
                );
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
                ledger.extend(super::rule_failure_entries(rules, now));
                self.store.append_ledger(&ledger).await?;
                Ok(InboundOutcome::Answered {
                    contact: contact.id.clone(),
                    workflow: def.id.clone(),
                    occurrence,
                    response: response.to_owned(),
                    quorum_reached: reached,
                    quorum_reason: reason,
                })
            }
        }
    }
}

/// Provider statuses that mean delivered, and that mean it never will be
/// (Twilio, Infobip, Africa's Talking, Orange), compared without case.
const DELIVERED: [&str; 4] = ["delivered", "success", "deliveredtoterminal", "read"];
const UNDELIVERED: [&str; 8] = [
    "failed",
    "undelivered",
    "undeliverable",
    "rejected",
    "expired",
    "deliveryimpossible",
    "absentsubscriber",
    "deliveryfailure",
];

impl Runtime {
    /// Records a delivery receipt: `delivered`, `failed`, or the provider's own
    /// word when it is neither (kept, not dropped). A failed message goes once
    /// more on its fallback channel; an opt-out the provider reports stops SMS to
    /// the contact. False if no message has this provider id.
    pub async fn delivery_receipt(&self, receipt: &Receipt) -> Result<bool, RuntimeError> {
        let now = self.clock.now();
        let status = receipt.status.trim();
        let word = status.to_lowercase().replace(['_', ' ', '-'], "");
        let (recorded, event) = if DELIVERED.contains(&word.as_str()) {
            ("delivered".to_owned(), LedgerEvent::Delivered)
        } else if UNDELIVERED.contains(&word.as_str()) || receipt.opted_out {
            ("failed".to_owned(), LedgerEvent::Undelivered)
        } else {
            (status.to_owned(), LedgerEvent::Receipt)
        };
        let failed = event == LedgerEvent::Undelivered;
        let subject = self
            .store
            .record_receipt(&receipt.provider_id, &recorded, failed, now, |about| {
                about_sent(now, event, format!("the provider reports: {status}"), about)
            })
            .await?;
        let Some(subject) = subject else {
            return Ok(false);
        };
        if receipt.opted_out && subject.channel == "sms" {
            let entry = LedgerEntry::new(
                now,
                LedgerEvent::SmsStopped,
                "the provider reports they opted out: no more SMS".to_owned(),
            )
            .recipient(&subject.contact_id, Some("sms"));
            self.store
                .set_sms_stopped(&subject.contact_id, true, now, &entry)
                .await?;
        }
        Ok(true)
    }

    /// Sends again on their fallback channel the messages whose delivery receipt
    /// did not come in time.
    pub(super) async fn fall_back_unconfirmed(&self) -> Result<usize, RuntimeError> {
        let now = self.clock.now();
        Ok(self
            .store
            .fall_back_unconfirmed(now, |about| {
                let detail = "no delivery receipt in time".to_owned();
                about_sent(now, LedgerEvent::Undelivered, detail, about)
            })
            .await?)
    }
}

/// The ledger entry about a sent message, saying where it went next if anywhere.
fn about_sent(
    now: DateTime<Utc>,
    event: LedgerEvent,
    mut detail: String,
    about: &ReceiptSubject,
) -> LedgerEntry {
    if let Some(channel) = &about.fell_back_to {
        detail.push_str(&format!("; sent again by {channel} instead"));
    }
    LedgerEntry::new(now, event, detail)
        .slot(&about.workflow, about.occurrence, &about.step)
        .recipient(&about.contact_id, Some(&about.channel))
}
