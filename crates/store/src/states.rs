//! The states a timer and an outbox message go through, as the store writes
//! them, in one place: the SQL of every module names a state through these (a
//! literal in the statement, so that SQLite's partial indexes on the state still
//! apply), never as a word of its own.

/// Where a timer is: planned and waiting, or done one way or another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerState {
    Pending,
    Fired,
    Skipped,
    Cancelled,
}

impl TimerState {
    pub const fn as_str(self) -> &'static str {
        match self {
            TimerState::Pending => "pending",
            TimerState::Fired => "fired",
            TimerState::Skipped => "skipped",
            TimerState::Cancelled => "cancelled",
        }
    }
}

/// Where an outbox message is: waiting for an attempt (a first one or a retry),
/// accepted by the provider, or given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    Queued,
    Sent,
    Dead,
}

impl MessageState {
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Sent => "sent",
            MessageState::Dead => "dead",
        }
    }
}

/// The states' words, for the SQL of the store's modules (`state = '{PENDING}'`).
pub(crate) const PENDING: &str = TimerState::Pending.as_str();
pub(crate) const FIRED: &str = TimerState::Fired.as_str();
pub(crate) const SKIPPED: &str = TimerState::Skipped.as_str();
pub(crate) const CANCELLED: &str = TimerState::Cancelled.as_str();
pub(crate) const QUEUED: &str = MessageState::Queued.as_str();
pub(crate) const SENT: &str = MessageState::Sent.as_str();
pub(crate) const DEAD: &str = MessageState::Dead.as_str();
