//! A gateway's pace: at most `max_per_second` messages a second, and a whole
//! channel that waits when the provider says it is sending too fast (429 with
//! `Retry-After`), instead of each message discovering it on its own. Also where
//! the gateway's receipt timeout is declared to the runtime.

use std::sync::Arc;
use std::time::Duration;

use palabre_engine::connector::{Connector, Delivery, DeliveryError, OutgoingMessage};
use palabre_engine::workflow::Channel;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A connector sent through at a limited pace.
pub struct Paced {
    inner: Arc<dyn Connector>,
    /// The least time between two sends; zero for no limit.
    spacing: Duration,
    /// When the next send may start.
    next: Mutex<Instant>,
    receipt_timeout: Option<Duration>,
}

impl Paced {
    pub fn new(
        inner: Arc<dyn Connector>,
        max_per_second: Option<u32>,
        receipt_timeout: Option<Duration>,
    ) -> Paced {
        Paced {
            inner,
            spacing: max_per_second
                .filter(|n| *n > 0)
                .map_or(Duration::ZERO, |n| Duration::from_secs(1) / n),
            next: Mutex::new(Instant::now()),
            receipt_timeout,
        }
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<String, DeliveryError> {
        {
            let mut next = self.next.lock().await;
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
}
