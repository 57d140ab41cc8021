//! What a voice gateway answers and reads during a call, as plain values.
//!
//! A call is placed by a [`Connector`](crate::connector::Connector) on the
//! `voice` channel; once the callee picks up, the provider asks palabre's API
//! what to play, then posts the keys pressed and, at the end, the call's
//! status. Each provider speaks its own document language (Twilio TwiML,
//! Africa's Talking XML actions) and signs its requests its own way: a plugin
//! implements [`VoiceGateway`] to write the one and check and read the other.
//! The engine decides what is played; the plugin only says it.

use crate::webhooks::{Receipt, WebhookError, WebhookRequest};

/// What to do once the clips are played.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterPlaying {
    /// Wait for one key, posted to `keys_url`; `question` (clip URLs) is
    /// played while waiting, twice if nothing is pressed, then the call ends.
    AskForKey {
        question: Vec<String>,
        keys_url: String,
    },
    /// Play the message from the start again (`call_url`).
    Replay { call_url: String },
    /// End the call.
    HangUp,
}

/// A document for the provider, with its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallDocument {
    pub content_type: &'static str,
    pub body: String,
}

/// One voice provider's side of a call.
pub trait VoiceGateway: Send + Sync {
    /// Checks that the provider sent `request` (its signature), and returns
    /// the id of the call it is about.
    fn call_id(&self, request: &WebhookRequest<'_>) -> Result<String, WebhookError>;
    /// The keys pressed, from a request `call_id` accepted.
    fn keys(&self, request: &WebhookRequest<'_>) -> Result<String, WebhookError>;
    /// The call's outcome from its status callback (answered, busy, no answer, failed).
    fn status(&self, request: &WebhookRequest<'_>) -> Result<Receipt, WebhookError>;
    /// The document that plays `clips` (URLs), then does `then`.
    fn play(&self, clips: &[String], then: &AfterPlaying) -> CallDocument;
    /// The outbox key of the message a request to the call URL is about, when
    /// the provider posts it back rather than the URL carrying it (Africa's
    /// Talking's `clientRequestId`).
    fn message_key(&self, _request: &WebhookRequest<'_>) -> Result<Option<String>, WebhookError> {
        Ok(None)
    }
    /// The call's outcome, when the provider posts it to the call URL itself
    /// (Africa's Talking's last request, `isActive=0`); `None` for a call
    /// being answered.
    fn ended(&self, _request: &WebhookRequest<'_>) -> Result<Option<Receipt>, WebhookError> {
        Ok(None)
    }
}

/// XML text and attribute escaping, for the providers' call documents.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_special_characters_are_escaped() {
        assert_eq!(
            xml_escape("https://x/a?b=1&c=<2>\"'"),
            "https://x/a?b=1&amp;c=&lt;2&gt;&quot;&apos;"
        );
    }
}
