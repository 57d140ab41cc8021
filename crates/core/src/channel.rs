//! The delivery channels: what a step allows, a contact prefers, a connector serves.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A delivery channel.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// An SMS to the contact's phone.
    Sms,
    /// An email to the contact's address.
    Email,
    /// A call to the contact's phone that plays recorded clips in their language
    /// and takes their answer from the keypad.
    Voice,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Sms, Channel::Email, Channel::Voice];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Voice => "voice",
        }
    }

    /// Whether the channel reaches the contact's phone (SMS and calls).
    pub fn uses_phone(self) -> bool {
        matches!(self, Channel::Sms | Channel::Voice)
    }

    pub fn parse(text: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
