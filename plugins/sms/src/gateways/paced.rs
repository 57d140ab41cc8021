//! A gateway's pace: at most `max_per_second` messages a second, at most
//! `max_in_flight` at once per worker, and a whole channel that waits when the
//! provider says it is sending too fast (429 with `Retry-After`), instead of each
//! message discovering it on its own. Also where the gateway's receipt timeout,
//! and for calls how many may ring or be listened to at once, are declared to
//! the runtime.

use std::sync::Arc;
use std::time::Duration;

use palabre_core::channel::Channel;
use palabre_core::connector::{Connector, Delivery, DeliveryError, OutgoingMessage};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The longest a send waits for its turn; a channel paused for longer answers
/// "rate limited" at once, and the runtime tries the message again after the pause
/// (so that claimed messages do not wait out their leases).
const MAX_WAIT: Duration = Duration::from_secs(5);

/// A connector sent through at a limited pace.
pub struct Paced {
    inner: Arc<dyn Connector>,
    /// The least time between two sends; zero for no limit.
    spacing: Duration,
    /// When the next send may start.
    next: Mutex<Instant>,
    receipt_timeout: Option<Duration>,
    max_in_flight: usize,
    max_simultaneous: Option<usize>,
}

impl Paced {
    pub fn new(
        inner: Arc<dyn Connector>,
        max_per_second: Option<u32>,
        max_in_flight: Option<usize>,
        receipt_timeout: Option<Duration>,
    ) -> Paced {
        Paced {
            inner,
            spacing: max_per_second
                .filter(|n| *n > 0)
                .map_or(Duration::ZERO, |n| Duration::from_secs(1) / n),
            next: Mutex::new(Instant::now()),
            receipt_timeout,
            max_in_flight: max_in_flight.unwrap_or(1).max(1),
            max_simultaneous: None,
        }
    }

    /// At most `limit` messages under way at once, until their final receipt.
    pub fn simultaneous(mut self, limit: Option<usize>) -> Paced {
        self.max_simultaneous = limit.map(|n| n.max(1));
        self
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<String, DeliveryError> {
        {
            let mut next = self.next.lock().await;
            let wait = next.saturating_duration_since(Instant::now());
            if wait > MAX_WAIT {
                return Err(DeliveryError::RateLimited {
                    retry_after: Some(wait),
                    reason: "the channel is paused: the provider asked to slow down".to_owned(),
                });
            }
            tokio::time::sleep_until(*next).await;
            *next = Instant::now() + self.spacing;
        }
        let result = self.inner.deliver(message).await;
        if let Err(DeliveryError::RateLimited {
            retry_after: Some(after),
            ..
        }) = &result
        {
            // The provider wants the whole channel slower: nothing more before then.
            let mut next = self.next.lock().await;
            *next = (*next).max(Instant::now() + *after);
        }
        result
    }
}

impl Connector for Paced {
    fn channel(&self) -> Channel {
        self.inner.channel()
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn deliver<'a>(&'a self, message: &'a OutgoingMessage) -> Delivery<'a> {
        Box::pin(self.send(message))
    }

    fn idempotent(&self) -> bool {
        self.inner.idempotent()
    }

    fn receipt_timeout(&self) -> Option<Duration> {
        self.receipt_timeout
    }

    fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    fn redial(&self) -> Option<palabre_core::connector::Redial> {
        self.inner.redial()
    }

    fn max_simultaneous(&self) -> Option<usize> {
        self.max_simultaneous
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Answers each delivery with the next of `answers`, then with success.
    struct Scripted {
        answers: Mutex<Vec<Result<String, DeliveryError>>>,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl Connector for Scripted {
        fn channel(&self) -> Channel {
            Channel::Sms
        }

        fn name(&self) -> &str {
            "scripted"
        }

        fn deliver<'a>(&'a self, _: &'a OutgoingMessage) -> Delivery<'a> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = self.answers.lock().unwrap().pop();
            Box::pin(async move { answer.unwrap_or_else(|| Ok("ok".to_owned())) })
        }
    }

    fn message() -> OutgoingMessage {
        OutgoingMessage {
            key: "k".to_owned(),
            channel: Channel::Sms,
            to_address: "+22376000001".to_owned(), // an invented test number
            to_name: "Awa".to_owned(),
            language: "fra".to_owned(),
            subject: None,
            body: "Rappel".to_owned(),
            calendar: None,
        }
    }

    /// On tokio's paused clock: sends are spaced by the rate, and a 429's
    /// `Retry-After` holds back the whole channel, not just the message: the
    /// next ones are not sent but answered "rate limited" until the pause ends.
    #[tokio::test(start_paused = true)]
    async fn sends_keep_the_pace_and_a_rate_limit_pauses_the_channel() {
        let limited = Err(DeliveryError::RateLimited {
            retry_after: Some(Duration::from_secs(120)),
            reason: "429".to_owned(),
        });
        let inner = Arc::new(Scripted {
            answers: Mutex::new(vec![
                limited,
                Ok("a".into()),
                Ok("b".into()),
                Ok("c".into()),
            ]),
            calls: Default::default(),
        });
        let paced = Paced::new(inner.clone(), Some(4), Some(3), None);
        assert_eq!(paced.max_in_flight(), 3);
        let start = Instant::now();
        for _ in 0..3 {
            paced.deliver(&message()).await.unwrap();
        }
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(500),
            "three sends at 4/s"
        );
        assert!(matches!(
            paced.deliver(&message()).await,
            Err(DeliveryError::RateLimited { .. })
        ));
        let held = paced.deliver(&message()).await;
        assert!(
            matches!(&held, Err(DeliveryError::RateLimited { retry_after: Some(after), reason })
                if *after == Duration::from_secs(120) && reason.contains("paused")),
            "{held:?}"
        );
        assert_eq!(
            inner.calls.load(std::sync::atomic::Ordering::SeqCst),
            4,
            "the held message never reached the provider"
        );
        tokio::time::advance(Duration::from_secs(118)).await;
        let start = Instant::now();
        assert_eq!(paced.deliver(&message()).await, Ok("ok".to_owned()));
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(2),
            "waited out the pause's end"
        );
    }
}
