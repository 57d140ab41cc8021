//! Calls: what a voice call plays and what its keys do. The provider asks, once
//! the callee picks up, what to play for the message whose outbox key the call
//! URL carries: its clips, in its language, then the keypad's question, which
//! depends on what the call is about. A key pressed answers as an SMS reply
//! would, through the same recording: after an invitation, 1 or 2 is the
//! answer (the same quorum rule); after a dispute reaching its responders, 1
//! acknowledges it and 2 is a note for the coordinator; after a milestone
//! reminder whose plan lets owners report it, 1 closes it and 2 is noted. Each
//! is thanked by a recorded clip; 9 plays the message again; 0 asks never to be
//! called again. What the call says is only clips: no name, no party of a
//! dispute, nothing typed by a person.

use std::sync::Arc;

use palabre_core::channel::Channel;
use palabre_lang::milestones::MilestoneStep;
use palabre_lang::occurrence::occurrence_reference;
use palabre_lang::voice::{Key, Keypad, NEVER_CLIP, NOT_UNDERSTOOD_CLIP, clips_of};
use palabre_plan::definitions::Definitions;
use palabre_store::{ClaimedMessage, LedgerEntry, LedgerEvent};

use super::{CommandError, Commands, InboundOutcome};

/// What a call plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallScript {
    /// ISO 639-3 code of the recordings.
    pub language: String,
    /// The clips, in the order they play.
    pub clips: Vec<String>,
    /// What is asked after them, and played again if nothing is pressed.
    pub question: Vec<String>,
}

/// What a key pressed during a call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    /// Recorded; `thanks` is played, then the call ends.
    Answered {
        outcome: InboundOutcome,
        language: String,
        thanks: Vec<String>,
    },
    /// 9: the message again.
    Again,
    /// 0: no more calls; `goodbye` is played, then the call ends.
    Stopped {
        language: String,
        goodbye: Vec<String>,
    },
    /// A key with no meaning, or nothing to answer (the meeting is past):
    /// `said` is played, then the question again.
    NotUnderstood { language: String, said: Vec<String> },
    /// No call has this key.
    Unknown,
}

impl Commands {
    /// What the call about message `key` plays; `None` if no call has this key.
    pub async fn call_script(&self, key: &str) -> Result<Option<CallScript>, CommandError> {
        let Some(message) = self.store().call_message(key).await? else {
            return Ok(None);
        };
        let keypad = self.definitions().keypad(&message.workflow);
        Ok(Some(CallScript {
            clips: clips_of(&message.body).map(str::to_owned).collect(),
            question: vec![keypad.question().to_owned()],
            language: message.language,
        }))
    }

    /// Acts on `digits` pressed during the call about message `key`.
    pub async fn call_key(&self, key: &str, digits: &str) -> Result<KeyOutcome, CommandError> {
        let Some(message) = self.store().call_message(key).await? else {
            return Ok(KeyOutcome::Unknown);
        };
        let definitions = self.definitions();
        let keypad = definitions.keypad(&message.workflow);
        let language = message.language.clone();
        let not_understood = || KeyOutcome::NotUnderstood {
            language: language.clone(),
            said: vec![NOT_UNDERSTOOD_CLIP.to_owned(), keypad.question().to_owned()],
        };
        let yes = match Key::read(digits) {
            Some(Key::Again) => return Ok(KeyOutcome::Again),
            Some(Key::Never) => {
                self.stop_calls(&message).await?;
                return Ok(KeyOutcome::Stopped {
                    goodbye: vec![NEVER_CLIP.to_owned()],
                    language,
                });
            }
            None => return Ok(not_understood()),
            Some(Key::Yes) => true,
            Some(Key::No) => false,
        };
        let Some(thanks) = keypad.thanks(yes) else {
            return Ok(not_understood());
        };
        match self
            .answer_call(&definitions, &message, keypad, yes)
            .await?
        {
            Some(outcome) => Ok(KeyOutcome::Answered {
                outcome,
                thanks: vec![thanks.to_owned()],
                language,
            }),
            None => Ok(not_understood()),
        }
    }

    /// The answer the keys gave, recorded as a reply by voice; `None` if there
    /// is nothing to answer any more (the meeting is past, the dispute has
    /// moved on, the milestone is closed).
    async fn answer_call(
        &self,
        definitions: &Definitions,
        message: &ClaimedMessage,
        keypad: Keypad,
        yes: bool,
    ) -> Result<Option<InboundOutcome>, CommandError> {
        let directory = Arc::new(self.store().contacts().await?);
        let Some(contact) = directory.iter().find(|c| c.id == message.contact_id) else {
            return Ok(None);
        };
        let via = Channel::Voice;
        match keypad {
            Keypad::Attendance => {
                let reference = occurrence_reference(&message.workflow, message.occurrence);
                self.answer_meeting(
                    definitions,
                    contact,
                    &directory,
                    (yes, &reference),
                    via,
                    self.now(),
                )
                .await
            }
            Keypad::Dispute => {
                // The step of a case's message is `<case>/L<level>`.
                let Some((case, _)) = message.step.rsplit_once("/L") else {
                    return Ok(None);
                };
                match self
                    .case_waiting_for(definitions, contact, &directory, case)
                    .await?
                {
                    Some(case) => Ok(Some(self.answer_case(case, contact, yes, via).await?)),
                    None => Ok(None),
                }
            }
            Keypad::Milestone => {
                let Some(plan) = definitions.plan(&message.workflow) else {
                    return Ok(None);
                };
                let Some(milestone) =
                    MilestoneStep::parse(&message.step).and_then(|(id, _)| plan.milestone(id))
                else {
                    return Ok(None);
                };
                let reference = plan.reference(milestone);
                if yes {
                    return self
                        .milestone_done(definitions, contact, &directory, &reference, via)
                        .await;
                }
                let entry = LedgerEntry::new(
                    self.now(),
                    LedgerEvent::Reply,
                    format!("not done yet, said during a call, to {reference}"),
                )
                .slot(&message.workflow, message.occurrence, &message.step)
                .recipient(&contact.id, Some(via));
                self.store().append_ledger(&[entry]).await?;
                Ok(Some(InboundOutcome::MilestoneNotYet {
                    contact: contact.id.clone(),
                    plan: plan.definition.id.clone(),
                    milestone: milestone.id.clone(),
                }))
            }
            Keypad::ListenOnly => Ok(None),
        }
    }

    /// Calls stop for the contact of `message`: they pressed 0.
    async fn stop_calls(&self, message: &ClaimedMessage) -> Result<(), CommandError> {
        let now = self.now();
        let entry = LedgerEntry::new(
            now,
            LedgerEvent::CallsStopped,
            "pressed 0 during a call: asked never to be called again".to_owned(),
        )
        .slot(&message.workflow, message.occurrence, &message.step)
        .recipient(&message.contact_id, Some(Channel::Voice));
        self.store()
            .set_stopped(Channel::Voice, &message.contact_id, true, now, &entry)
            .await?;
        Ok(())
    }
}
