//! Calls: what a voice call plays and what its keys do. The provider asks, once
//! the callee picks up, what to play for the message whose outbox key the call
//! URL carries: its clips, in its language, then the keypad's question. A key
//! pressed after an invitation answers it as an SMS reply would (the same
//! recording, the same quorum rule), and is thanked by a recorded clip; 9 plays
//! the message again; 0 asks never to be called again. What the call says is
//! only clips: no name, no party of a dispute, nothing typed by a person.

use std::sync::Arc;

use palabre_core::channel::Channel;
use palabre_lang::occurrence::occurrence_reference;
use palabre_lang::voice::{
    KEYS_CLIP, Key, NEVER_CLIP, NOT_UNDERSTOOD_CLIP, THANKS_NO_CLIP, THANKS_YES_CLIP, clips_of,
};
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
        Ok(Some(CallScript {
            clips: clips_of(&message.body).map(str::to_owned).collect(),
            question: vec![KEYS_CLIP.to_owned()],
            language: message.language,
        }))
    }

    /// Acts on `digits` pressed during the call about message `key`.
    pub async fn call_key(&self, key: &str, digits: &str) -> Result<KeyOutcome, CommandError> {
        let Some(message) = self.store().call_message(key).await? else {
            return Ok(KeyOutcome::Unknown);
        };
        let language = message.language.clone();
        let clip = |name: &str| vec![name.to_owned()];
        let not_understood = || KeyOutcome::NotUnderstood {
            language: language.clone(),
            said: vec![NOT_UNDERSTOOD_CLIP.to_owned(), KEYS_CLIP.to_owned()],
        };
        let yes = match Key::read(digits) {
            Some(Key::Again) => return Ok(KeyOutcome::Again),
            Some(Key::Never) => {
                self.stop_calls(&message).await?;
                return Ok(KeyOutcome::Stopped {
                    goodbye: clip(NEVER_CLIP),
                    language,
                });
            }
            None => return Ok(not_understood()),
            Some(Key::Yes) => true,
            Some(Key::No) => false,
        };
        match self.answer_call(&message, yes).await? {
            Some(outcome) => Ok(KeyOutcome::Answered {
                outcome,
                thanks: clip(if yes { THANKS_YES_CLIP } else { THANKS_NO_CLIP }),
                language,
            }),
            None => Ok(not_understood()),
        }
    }

    /// The answer to the meeting the call invited to, recorded as a reply by
    /// voice; `None` if the call was not about a meeting still to come.
    async fn answer_call(
        &self,
        message: &ClaimedMessage,
        yes: bool,
    ) -> Result<Option<InboundOutcome>, CommandError> {
        let definitions = self.definitions();
        if definitions.meeting(&message.workflow).is_none() {
            return Ok(None);
        }
        let directory = Arc::new(self.store().contacts().await?);
        let Some(contact) = directory.iter().find(|c| c.id == message.contact_id) else {
            return Ok(None);
        };
        let reference = occurrence_reference(&message.workflow, message.occurrence);
        self.answer_meeting(
            &definitions,
            contact,
            &directory,
            (yes, &reference),
            Channel::Voice,
            self.now(),
        )
        .await
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
