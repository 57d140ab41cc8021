//! Time as an injected dependency.
//!
//! Nothing in the engine reads the system clock directly: it asks a [`Clock`].
//! The server gets [`SystemClock`]; `preview` and the tests get a
//! [`VirtualClock`] they move by hand, so the preview runs the same code the
//! server runs, at whatever speed it likes.

use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

/// A source of the current instant.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct VirtualClock {
    now: Mutex<DateTime<Utc>>,
}

impl VirtualClock {
    pub fn new(start: DateTime<Utc>) -> VirtualClock {
        VirtualClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `instant`; a virtual clock never goes backwards.
    pub fn advance_to(&self, instant: DateTime<Utc>) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if instant > *now {
            *now = instant;
        }
    }

    pub fn advance(&self, by: TimeDelta) {
        let target = self.now() + by;
        self.advance_to(target);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_moves_forward_only() {
        let start = DateTime::<Utc>::UNIX_EPOCH;
        let clock = VirtualClock::new(start);
        clock.advance(TimeDelta::hours(2));
        assert_eq!(clock.now(), start + TimeDelta::hours(2));
        clock.advance_to(start);
        assert_eq!(clock.now(), start + TimeDelta::hours(2));
    }
}
