//! The connector trait: how a plugin delivers a rendered message on a channel.
//!
//! A connector receives an [`OutgoingMessage`] (address, texts, idempotency key,
//! optional calendar attachment) and answers with the provider's id for the
//! message, or a [`DeliveryError`] that says what to do next: retry later
//! (transient), retry after a given delay (rate limited), or give up (permanent,
//! or opted out: then nothing more is sent to that recipient on the channel).
//! Connectors live in their own crates under `plugins/`; the engine only knows
//! this trait.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::channel::Channel;

/// A message ready to leave, with the recipient's current address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The outbox idempotency key; connectors pass it on where the provider accepts one
    /// (email Message-ID, SMS gateway idempotency keys) so repeats can be recognised.
    pub key: String,
    pub channel: Channel,
    pub to_address: String,
    pub to_name: String,
    pub language: String,
    pub subject: Option<String>,
    pub body: String,
    /// An iCalendar (.ics) text to attach (meeting invitations).
    pub calendar: Option<String>,
}

impl OutgoingMessage {
    /// A short, stable name for this message's key (file names, Message-IDs).
    pub fn key_hash(&self) -> String {
        format!("{:016x}", crate::fingerprint::fnv1a([self.key.as_bytes()]))
    }
}

/// Why a delivery failed, classified for the retry policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying with backoff: network trouble, a 4xx SMTP reply, a 5xx HTTP reply.
    #[error("transient: {0}")]
    Transient(String),
    /// The provider asked us to slow down.
    #[error("rate limited: {reason}")]
    RateLimited {
        retry_after: Option<Duration>,
        reason: String,
    },
    /// Retrying cannot help: invalid address, recipient refused, blocked.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The provider says the recipient opted out of our messages (replied STOP to
    /// it): permanent, and nothing more goes to them on this channel.
    #[error("opted out: {0}")]
    OptedOut(String),
}

/// The future a connector returns.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<String, DeliveryError>> + Send + 'a>>;

/// A delivery plugin for one channel.
pub trait Connector: Send + Sync {
    /// The channel this connector serves.
    fn channel(&self) -> Channel;
    /// A short name for logs and the ledger (`smtp`, `file`, `orange`).
    fn name(&self) -> &str;
    /// Delivers one message; returns the provider's id for it.
    fn deliver<'a>(&'a self, message: &'a OutgoingMessage) -> Delivery<'a>;
    /// Whether delivering the same message twice is harmless (a file rewritten in
    /// place). The runtime records such deliveries in batches; for the others
    /// (SMTP, SMS gateways) it records each outcome as soon as it has it, so that a
    /// crash can repeat at most the message in flight.
    fn idempotent(&self) -> bool {
        false
    }
    /// How long a sent message waits for the provider's delivery receipt before it
    /// counts as undelivered and goes once more on the contact's next channel;
    /// `None` (the default) for connectors that get no receipts.
    fn receipt_timeout(&self) -> Option<Duration> {
        None
    }
    /// How many messages one worker may have in flight on this connector at once.
    /// Default 1: a crash repeats at most the one message in flight.
    fn max_in_flight(&self) -> usize {
        1
    }
    /// How a call nobody took is tried again (voice connectors); `None`: a
    /// message is placed once.
    fn redial(&self) -> Option<Redial> {
        None
    }
    /// How many of this connector's messages may be under way at once across
    /// all workers, from being accepted until their final receipt (calls
    /// ringing or being listened to); `None`: no such limit.
    fn max_simultaneous(&self) -> Option<usize> {
        None
    }
}

/// How a call nobody took (busy, no answer) is tried again: `tries` calls in
/// all, `spacing` apart; after the last, it goes by the contact's next channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redial {
    pub tries: u32,
    pub spacing: Duration,
}

/// The connectors the runtime delivers through, one per channel.
#[derive(Clone, Default)]
pub struct Connectors {
    by_channel: HashMap<Channel, Arc<dyn Connector>>,
}

impl Connectors {
    pub fn with(mut self, connector: Arc<dyn Connector>) -> Connectors {
        self.by_channel.insert(connector.channel(), connector);
        self
    }

    pub fn get(&self, channel: Channel) -> Option<&Arc<dyn Connector>> {
        self.by_channel.get(&channel)
    }
}

impl std::fmt::Debug for Connectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<String> = self
            .by_channel
            .values()
            .map(|c| format!("{}:{}", c.channel(), c.name()))
            .collect();
        names.sort();
        f.debug_tuple("Connectors").field(&names).finish()
    }
}
