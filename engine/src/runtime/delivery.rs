//! Delivery: ready messages claimed by lease, the recipient's current address
//! read from the directory, the message handed to its channel's connector (each
//! channel's messages up to the connector's `max_in_flight` at once, channels side
//! by side), and the outcome recorded: sent (perhaps waiting for a receipt),
//! retried with exponential backoff and jitter, or dead-lettered. A call
//! outside its callee's hours (`calls.yaml`), or that the `call_time` rule
//! holds, is not placed: it waits, and that is not an attempt. What an
//! attempt's result means is decided by [`judge`], a pure function.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::Ordering;

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::stream::{FuturesUnordered, StreamExt};
use palabre_core::channel::Channel;
use palabre_core::connector::{DeliveryError, OutgoingMessage};
use palabre_lang::contacts::Contact;
use palabre_rules::{CallTimeDecision, Decision, Subject, call_input};
use palabre_store::{ClaimedMessage, DeliveryOutcome, DeliveryRecord, LedgerEntry, LedgerEvent};
use tracing::{Instrument, debug, info, info_span, warn};

use super::{Directory, Runtime, RuntimeError, TickReport};
use crate::commands::{PROVIDER_OPT_OUT, about_sent};
use crate::messages::rule_failure_entry;

/// When and how often a failed delivery is tried again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay after the first failure; doubles with each further failure.
    pub first_delay: TimeDelta,
    pub max_delay: TimeDelta,
    /// Attempts in all, after which a message is dead-lettered.
    pub max_attempts: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_delay: TimeDelta::seconds(30),
            max_delay: TimeDelta::hours(1),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt, after `failures` failures, with ±20 %
    /// jitter derived from the message key (spread out, yet reproducible).
    pub fn delay(&self, key: &str, failures: i64) -> TimeDelta {
        let exponent = u32::try_from(failures.clamp(1, 30) - 1).unwrap_or(0);
        let base = self
            .first_delay
            .checked_mul(2_i32.saturating_pow(exponent))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let spread =
            palabre_core::fingerprint::fnv1a([key.as_bytes(), &failures.to_le_bytes()]) % 401; // 0..=400
        let permille = 800 + i64::try_from(spread).unwrap_or(200); // 800..=1200
        TimeDelta::milliseconds(base.num_milliseconds() * permille / 1000)
    }
}

/// One channel's messages of a claimed batch: those waiting, and how many may be
/// (and are) in flight.
struct Lane {
    limit: usize,
    busy: usize,
    queue: VecDeque<ClaimedMessage>,
}

/// One delivery attempt, ready to record.
struct Delivered {
    /// The channel it went on.
    channel: Channel,
    record: DeliveryRecord,
    /// Whether repeating it is harmless.
    idempotent: bool,
    /// The recipient, when the provider reported they opted out.
    opted_out: Option<String>,
}

impl Runtime {
    /// Claims ready messages, batch after batch, and delivers them.
    pub(super) async fn deliver_ready(
        &self,
        directory: &mut Option<Directory>,
        report: &mut TickReport,
    ) -> Result<(), RuntimeError> {
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            let now = self.now();
            let claimed = self
                .store()
                .claim_messages(
                    now,
                    &self.config.owner,
                    self.config.lease,
                    self.config.batch,
                )
                .await?;
            if claimed.is_empty() {
                return Ok(());
            }
            self.deliver_claimed(claimed, directory, report).await?;
        }
    }

    /// Delivers messages this worker holds the lease of (claimed, or queued
    /// already leased to it by firing) and records their outcomes.
    pub(super) async fn deliver_claimed(
        &self,
        claimed: Vec<ClaimedMessage>,
        directory: &mut Option<Directory>,
        report: &mut TickReport,
    ) -> Result<(), RuntimeError> {
        if claimed.is_empty() {
            return Ok(());
        }
        let contacts = self.directory(directory).await?;
        // The tick's directory holds the active contacts only: for a message to
        // someone not in it, whether they were deactivated or removed.
        let inactive = if claimed
            .iter()
            .any(|m| contacts.get(&m.contact_id).is_none())
        {
            self.store().inactive_contacts().await?
        } else {
            BTreeSet::new()
        };
        // Past `batch_time`, nothing more of this batch starts (but at least
        // one message does, so that every batch makes progress).
        let claimed_at = std::time::Instant::now();
        let mut started = 0_usize;
        let mut pending = Vec::new();
        let mut opted_out = Vec::new();
        // Each channel's messages in claim order, up to its connector's limit
        // in flight at once; channels go side by side.
        let mut waiting: BTreeMap<Channel, Lane> = BTreeMap::new();
        for message in claimed {
            let lane = waiting.entry(message.channel).or_insert_with(|| Lane {
                limit: self
                    .connectors
                    .get(message.channel)
                    .map_or(1, |c| c.max_in_flight().max(1)),
                busy: 0,
                queue: VecDeque::new(),
            });
            lane.queue.push_back(message);
        }
        // Calls beyond what may ring at once wait, spread a minute per line.
        for (channel, lane) in &mut waiting {
            let Some(limit) = self
                .connectors
                .get(*channel)
                .and_then(|c| c.max_simultaneous())
            else {
                continue;
            };
            let now = self.now();
            let window = self
                .connectors
                .get(*channel)
                .and_then(|c| c.receipt_timeout())
                .and_then(|t| TimeDelta::from_std(t).ok())
                .unwrap_or(TimeDelta::hours(1));
            let under_way = self.store().under_way(*channel, now - window).await?;
            let room = limit.saturating_sub(under_way);
            for (i, message) in lane
                .queue
                .split_off(room.min(lane.queue.len()))
                .into_iter()
                .enumerate()
            {
                let minutes = 1 + i64::try_from(i / limit).unwrap_or(0);
                let wait = CallWait {
                    until: now + TimeDelta::minutes(minutes),
                    reason: format!("{under_way} call(s) under way, at most {limit} at once"),
                };
                let deferred = deferred(message, wait, now);
                report.deferred += 1;
                pending.push(deferred.record);
            }
        }
        let mut running = FuturesUnordered::new();
        loop {
            // Claimed but not started when stopping: their leases expire, or
            // are taken back when this worker starts again.
            let in_time = started == 0 || claimed_at.elapsed() < self.config.batch_time;
            if !self.stopping.load(Ordering::SeqCst) && in_time {
                for lane in waiting.values_mut() {
                    while lane.busy < lane.limit
                        && let Some(message) = lane.queue.pop_front()
                    {
                        lane.busy += 1;
                        started += 1;
                        let span =
                            info_span!("delivery", key = %message.id, channel = %message.channel);
                        running.push(self.deliver(contacts, &inactive, message).instrument(span));
                    }
                }
            }
            let Some(delivered) = running.next().await else {
                break;
            };
            if let Some(lane) = waiting.get_mut(&delivered.channel) {
                lane.busy -= 1;
            }
            match delivered.record.outcome {
                DeliveryOutcome::Sent { .. } => report.sent += 1,
                DeliveryOutcome::Retry { .. } => report.retried += 1,
                DeliveryOutcome::Deferred { .. } => report.deferred += 1,
                DeliveryOutcome::Dead { .. } => report.dead += 1,
            }
            pending.push(delivered.record);
            opted_out.extend(delivered.opted_out);
            // A delivery that must not be repeated is recorded at once; repeatable
            // ones (file outboxes) are recorded with the rest of the batch.
            if !delivered.idempotent
                && let Err(error) = self.record(&mut pending).await
            {
                // Let the deliveries under way finish rather than cut them off
                // mid-request, and try once more to record what they did.
                while let Some(delivered) = running.next().await {
                    pending.push(delivered.record);
                }
                if let Err(again) = self.record(&mut pending).await {
                    warn!(%again, "delivery outcomes not recorded; their leases will expire");
                }
                return Err(error);
            }
        }
        drop(running);
        self.record(&mut pending).await?;
        let unstarted: Vec<String> = waiting
            .into_values()
            .flat_map(|lane| lane.queue)
            .map(|message| message.id)
            .collect();
        if !unstarted.is_empty() && !self.stopping.load(Ordering::SeqCst) {
            // Out of time for this batch: give them back to be claimed afresh.
            self.store()
                .release_messages(&self.config.owner, &unstarted)
                .await?;
        }
        // Recorded after the outcomes: a crash in between only means the next
        // message to them is refused by the provider again, and stops them then.
        if !opted_out.is_empty() {
            for contact in &opted_out {
                self.commands
                    .switch_sms(contact, true, PROVIDER_OPT_OUT)
                    .await?;
            }
            *directory = None;
        }
        Ok(())
    }

    /// Records pending delivery outcomes in one transaction.
    async fn record(&self, pending: &mut Vec<DeliveryRecord>) -> Result<(), RuntimeError> {
        if pending.is_empty() {
            return Ok(());
        }
        let recorded = self
            .store()
            .record_deliveries(&self.config.owner, pending, self.now())
            .await?;
        if recorded < pending.len() {
            warn!(
                lost = pending.len() - recorded,
                "leases lost before outcomes were recorded"
            );
        }
        pending.clear();
        Ok(())
    }

    /// Delivers one message; returns its outcome to record. A message to a
    /// contact removed from the directory, or deactivated (one of `inactive`), is
    /// a dead letter saying which, with no fallback copy.
    async fn deliver(
        &self,
        directory: &Directory,
        inactive: &BTreeSet<String>,
        message: ClaimedMessage,
    ) -> Delivered {
        let channel = message.channel;
        let contact = directory.get(&message.contact_id);
        let address = contact.and_then(|contact| contact.address(channel));
        let connector = self.connectors.get(channel);
        let idempotent = connector.is_some_and(|c| c.idempotent());
        let receipt_timeout = connector.and_then(|c| c.receipt_timeout());
        let stopped = match channel {
            Channel::Sms => directory.stopped.contains(&message.contact_id),
            Channel::Voice => directory.calls_stopped.contains(&message.contact_id),
            Channel::Email => false,
        };
        let unrecorded = (channel == Channel::Voice)
            .then(|| self.unrecorded_clips(&message))
            .filter(|missing| !missing.is_empty());
        if channel == Channel::Voice
            && !stopped
            && unrecorded.is_none()
            && connector.is_some()
            && let Some(contact) = contact.filter(|_| address.is_some())
            && let Some(wait) = self.call_wait(&message, contact, directory).await
        {
            return deferred(message, wait, self.now());
        }
        let result = match (contact, address) {
            _ if stopped && channel == Channel::Voice => Err(DeliveryError::Permanent(
                "the contact asked never to be called again (0 during a call)".to_owned(),
            )),
            _ if stopped => Err(DeliveryError::Permanent(
                "the contact opted out of SMS (STOP)".to_owned(),
            )),
            _ if let Some(missing) = &unrecorded => Err(DeliveryError::Permanent(format!(
                "the call cannot be made: no recording in {} of {}",
                message.language,
                missing.join(", ")
            ))),
            (Some(contact), Some(address)) => match connector {
                Some(connector) => {
                    let outgoing = OutgoingMessage {
                        key: message.id.clone(),
                        channel,
                        to_address: address.to_owned(),
                        to_name: contact.name.clone(),
                        language: message.language.clone(),
                        subject: message.subject.clone(),
                        body: message.body.clone(),
                        calendar: message.calendar.clone(),
                    };
                    connector.deliver(&outgoing).await
                }
                // Calls are set up or not: without, the next channel at once.
                None if channel == Channel::Voice => Err(DeliveryError::Permanent(
                    "calls are not set up on this server (serve --voice-gateway)".to_owned(),
                )),
                None => Err(DeliveryError::Transient(format!(
                    "no connector configured for {channel}"
                ))),
            },
            (None, _) if inactive.contains(&message.contact_id) => Err(DeliveryError::Permanent(
                "the contact is deactivated".to_owned(),
            )),
            (None, _) => Err(DeliveryError::Permanent(
                "the contact is no longer in the directory".to_owned(),
            )),
            (_, None) => Err(DeliveryError::Permanent(format!(
                "the contact has no {} address any more",
                message.channel
            ))),
        };
        let now = self.now();
        // No copy on another channel for someone out of the directory.
        let fallback = message
            .fallback
            .as_ref()
            .filter(|f| f.channel != message.channel && contact.is_some());
        let opted_out = channel == Channel::Sms
            && matches!(result, Err(DeliveryError::OptedOut(_)))
            && !stopped;
        let attempt = Attempt {
            key: &message.id,
            failures: message.attempts + 1,
            now,
            receipt_timeout,
            has_fallback: fallback.is_some(),
        };
        let (outcome, event, detail) = judge(result, &attempt, &self.config.retry);
        match event {
            LedgerEvent::Sent => debug!("delivered"),
            LedgerEvent::DeadLetter => warn!(detail, "dead letter"),
            _ => info!(detail, "delivery failed, will retry"),
        }
        // A dead letter with a fallback goes once more, on the contact's next channel.
        let fall_back = event == LedgerEvent::DeadLetter && fallback.is_some();
        let detail = match fallback {
            Some(next) if fall_back => format!("{detail}; sent again by {} instead", next.channel),
            _ => detail,
        };
        let ledger = LedgerEntry::new(now, event, detail)
            .slot(&message.workflow, message.occurrence, &message.step)
            .recipient(&message.contact_id, Some(channel));
        let opted_out = opted_out.then(|| message.contact_id.clone());
        let record = DeliveryRecord {
            message_id: message.id,
            outcome,
            ledger,
            fall_back,
        };
        Delivered {
            channel: message.channel,
            record,
            idempotent,
            opted_out,
        }
    }

    /// Whether the call of `message` to `contact` waits, and until when: outside
    /// their call hours, until these start again; inside them, as long as the
    /// `call_time` rule of their place says (or the function the meeting names
    /// for it; a failing rule is recorded, and the call goes).
    async fn call_wait(
        &self,
        message: &ClaimedMessage,
        contact: &Contact,
        directory: &Directory,
    ) -> Option<CallWait> {
        let now = self.now();
        let definitions = self.definitions();
        let hours = &definitions.calls;
        let start = hours.next_allowed(&contact.place, now);
        if start > now {
            return Some(CallWait {
                until: start,
                reason: format!(
                    "outside the call hours ({} {}) of {}",
                    hours.window(&contact.place),
                    hours.zone().name(),
                    contact.place
                ),
            });
        }
        let rules = &definitions.rules;
        // A meeting may name its own function for the hook.
        let function = definitions
            .meeting(&message.workflow)
            .and_then(|m| m.definition.rules.named(CallTimeDecision::HOOK.slot));
        let answer = rules.decide::<CallTimeDecision>(
            &contact.place,
            function,
            || {
                call_input(
                    rules.world(),
                    contact,
                    &message.workflow,
                    message.attempts + 1,
                    hours.zone(),
                    now,
                )
            },
            Subject {
                workflow: &message.workflow,
                occurrence: Some(message.occurrence),
            },
            &directory.contacts,
        );
        if let Some(failure) = answer.failure {
            let entry = rule_failure_entry(failure, now);
            if let Err(error) = self.store().append_ledger(&[entry]).await {
                warn!(%error, "a failed call_time rule could not be recorded");
            }
        }
        let wait = answer.decision.wait?;
        let by = answer.by.unwrap_or_default();
        let reason = match answer.decision.reason.as_str() {
            "" => format!("held by {by}"),
            why => format!("held by {by}: {why}"),
        };
        Some(CallWait {
            until: now + wait.as_delta(),
            reason,
        })
    }

    /// The clips a call would play that have no recording in its language.
    fn unrecorded_clips(&self, message: &ClaimedMessage) -> Vec<String> {
        let definitions = self.definitions();
        let keypad = definitions.keypad(&message.workflow);
        palabre_lang::voice::call_clips(&message.body, keypad)
            .filter(|clip| definitions.audio.clip(&message.language, clip).is_none())
            .map(str::to_owned)
            .collect()
    }

    /// Sends again on their fallback channel the messages whose delivery receipt
    /// did not come in time.
    pub(super) async fn fall_back_unconfirmed(&self) -> Result<usize, RuntimeError> {
        let now = self.now();
        Ok(self
            .store()
            .fall_back_unconfirmed(now, |about| {
                let detail = "no delivery receipt in time".to_owned();
                about_sent(now, LedgerEvent::Undelivered, detail, about)
            })
            .await?)
    }
}

/// How long a call waits before it is placed, and why.
struct CallWait {
    until: DateTime<Utc>,
    reason: String,
}

/// The outcome of a call that waits: no attempt made, its lease given back.
fn deferred(message: ClaimedMessage, wait: CallWait, now: DateTime<Utc>) -> Delivered {
    let CallWait { until, reason } = wait;
    let detail = format!("{reason}; called from {}", until.to_rfc3339());
    debug!(detail, "call deferred");
    let ledger = LedgerEntry::new(now, LedgerEvent::Deferred, detail);
    Delivered {
        channel: message.channel,
        record: DeliveryRecord {
            outcome: DeliveryOutcome::Deferred { until, reason },
            ledger: ledger
                .slot(&message.workflow, message.occurrence, &message.step)
                .recipient(&message.contact_id, Some(message.channel)),
            message_id: message.id,
            fall_back: false,
        },
        // Nothing went out: recorded with the rest of the batch.
        idempotent: true,
        opted_out: None,
    }
}

/// One delivery attempt, as far as its meaning goes.
struct Attempt<'a> {
    /// The outbox key: the retry delay's jitter derives from it.
    key: &'a str,
    /// Attempts made, this one included.
    failures: i64,
    now: DateTime<Utc>,
    /// How long the connector waits for a delivery receipt, if it sends them.
    receipt_timeout: Option<std::time::Duration>,
    /// Whether the message has a copy for another channel.
    has_fallback: bool,
}

/// What an attempt's result means, with its ledger event and detail: sent
/// (waiting for a receipt until the connector's receipt timeout, when there is a
/// fallback copy to send if none comes), tried again later (exponential backoff
/// with jitter, or the provider's `Retry-After`, both capped), or a dead letter
/// (a permanent refusal, an opt-out, or the last attempt).
fn judge(
    result: Result<String, DeliveryError>,
    attempt: &Attempt<'_>,
    retry: &RetryPolicy,
) -> (DeliveryOutcome, LedgerEvent, String) {
    let (now, failures) = (attempt.now, attempt.failures);
    match result {
        Ok(provider_id) => {
            let detail = format!("accepted as {provider_id}");
            let awaiting_receipt_until = attempt
                .receipt_timeout
                .filter(|_| attempt.has_fallback)
                .and_then(|t| TimeDelta::from_std(t).ok())
                .map(|t| now + t);
            (
                DeliveryOutcome::Sent {
                    provider_id,
                    awaiting_receipt_until,
                },
                LedgerEvent::Sent,
                detail,
            )
        }
        Err(DeliveryError::Permanent(error) | DeliveryError::OptedOut(error)) => (
            DeliveryOutcome::Dead {
                error: error.clone(),
            },
            LedgerEvent::DeadLetter,
            error,
        ),
        Err(error) if failures >= retry.max_attempts => {
            let error = format!("{error}; gave up after {failures} attempts");
            (
                DeliveryOutcome::Dead {
                    error: error.clone(),
                },
                LedgerEvent::DeadLetter,
                error,
            )
        }
        Err(error) => {
            let delay = match &error {
                DeliveryError::RateLimited {
                    retry_after: Some(after),
                    ..
                } => TimeDelta::from_std(*after)
                    .map_or(retry.max_delay, |after| after.min(retry.max_delay)),
                _ => retry.delay(attempt.key, failures),
            };
            let at = now + delay;
            let detail = format!(
                "{error}; attempt {failures} failed, next at {}",
                at.to_rfc3339()
            );
            (
                DeliveryOutcome::Retry {
                    at,
                    error: error.to_string(),
                },
                LedgerEvent::Retry,
                detail,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy::default();
        let first = policy.delay("k", 1).num_seconds();
        assert!((24..=36).contains(&first), "{first}");
        let third = policy.delay("k", 3).num_seconds();
        assert!((96..=144).contains(&third), "{third}");
        let late = policy.delay("k", 20).num_seconds();
        assert!((2880..=4320).contains(&late), "{late}");
        assert_eq!(policy.delay("k", 3), policy.delay("k", 3), "reproducible");
        let spread: std::collections::BTreeSet<i64> = (0..20)
            .map(|i| policy.delay(&format!("m{i}"), 2).num_milliseconds())
            .collect();
        assert!(spread.len() > 10, "jitter spreads messages apart");
    }

    /// Each kind of result, on the first attempt and on the last, with and
    /// without a receipt to wait for.
    #[test]
    fn what_an_attempt_means() {
        use std::time::Duration;
        let now: DateTime<Utc> = "2026-12-01T10:00:00Z".parse().unwrap();
        let retry = RetryPolicy::default();
        let attempt = |failures, receipt_timeout, has_fallback| Attempt {
            key: "k",
            failures,
            now,
            receipt_timeout,
            has_fallback,
        };
        let hour = Some(Duration::from_secs(3600));
        let transient = || DeliveryError::Transient("503".to_owned());
        let limited = |after: Option<u64>| DeliveryError::RateLimited {
            reason: "429".to_owned(),
            retry_after: after.map(Duration::from_secs),
        };
        // (result, attempt, expected outcome, expected event)
        let cases: Vec<(
            Result<String, DeliveryError>,
            Attempt<'_>,
            DeliveryOutcome,
            LedgerEvent,
        )> = vec![
            (
                Ok("p1".into()),
                attempt(1, None, true),
                DeliveryOutcome::Sent {
                    provider_id: "p1".into(),
                    awaiting_receipt_until: None,
                },
                LedgerEvent::Sent,
            ),
            (
                Ok("p2".into()),
                attempt(1, hour, true),
                DeliveryOutcome::Sent {
                    provider_id: "p2".into(),
                    awaiting_receipt_until: Some(now + TimeDelta::hours(1)),
                },
                LedgerEvent::Sent,
            ),
            // No copy to send: nothing to wait for.
            (
                Ok("p3".into()),
                attempt(1, hour, false),
                DeliveryOutcome::Sent {
                    provider_id: "p3".into(),
                    awaiting_receipt_until: None,
                },
                LedgerEvent::Sent,
            ),
            (
                Err(DeliveryError::Permanent("550".into())),
                attempt(1, None, true),
                DeliveryOutcome::Dead {
                    error: "550".into(),
                },
                LedgerEvent::DeadLetter,
            ),
            (
                Err(DeliveryError::OptedOut("21610".into())),
                attempt(1, None, false),
                DeliveryOutcome::Dead {
                    error: "21610".into(),
                },
                LedgerEvent::DeadLetter,
            ),
            (
                Err(transient()),
                attempt(8, None, false),
                DeliveryOutcome::Dead {
                    error: "transient: 503; gave up after 8 attempts".into(),
                },
                LedgerEvent::DeadLetter,
            ),
            // The provider's Retry-After, as given, then capped at the longest delay.
            (
                Err(limited(Some(120))),
                attempt(2, None, false),
                DeliveryOutcome::Retry {
                    at: now + TimeDelta::seconds(120),
                    error: "rate limited: 429".into(),
                },
                LedgerEvent::Retry,
            ),
            (
                Err(limited(Some(86_400))),
                attempt(2, None, false),
                DeliveryOutcome::Retry {
                    at: now + retry.max_delay,
                    error: "rate limited: 429".into(),
                },
                LedgerEvent::Retry,
            ),
            (
                Err(limited(None)),
                attempt(3, None, false),
                DeliveryOutcome::Retry {
                    at: now + retry.delay("k", 3),
                    error: "rate limited: 429".into(),
                },
                LedgerEvent::Retry,
            ),
            (
                Err(transient()),
                attempt(1, None, false),
                DeliveryOutcome::Retry {
                    at: now + retry.delay("k", 1),
                    error: "transient: 503".into(),
                },
                LedgerEvent::Retry,
            ),
        ];
        for (result, attempt, outcome, event) in cases {
            let said = format!("{result:?} after {} attempt(s)", attempt.failures);
            let (got, got_event, detail) = judge(result, &attempt, &retry);
            assert_eq!((got, got_event), (outcome, event), "{said}: {detail}");
        }
    }
}
