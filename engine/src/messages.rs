//! From what the planner prepared to what the store keeps: outbox rows for the
//! messages that can leave, `unreachable` ledger entries for those that cannot,
//! and the ledger entries of rules that failed. The worker and the commands
//! both queue messages this way.

use chrono::{DateTime, Utc};
use palabre_core::channel::Channel;
use palabre_plan::planner::{PlannedMessage, Planner};
use palabre_rules::RuleFailure;
use palabre_store::{Fallback, LedgerEntry, LedgerEvent, QueuedMessage};

/// Turns prepared messages into outbox rows of the timer `timer_key`; a message
/// that cannot be sent becomes an `unreachable` ledger entry instead.
pub(crate) fn queue_messages(
    planned: Vec<PlannedMessage>,
    timer_key: &str,
    now: DateTime<Utc>,
    calendar: impl Fn(Channel) -> Option<String>,
) -> (Vec<QueuedMessage>, Vec<LedgerEntry>) {
    let mut queued = Vec::with_capacity(planned.len());
    let mut unreachable = Vec::new();
    for message in planned {
        let (Some(channel), Some(body)) = (message.channel, message.body) else {
            unreachable.push(
                LedgerEntry::new(
                    now,
                    LedgerEvent::Unreachable,
                    message.problem.unwrap_or_default(),
                )
                .slot(&message.workflow, message.occurrence, &message.step)
                .recipient(&message.contact_id, None),
            );
            continue;
        };
        queued.push(QueuedMessage {
            id: QueuedMessage::key(timer_key, &message.contact_id, channel),
            timer_id: timer_key.to_owned(),
            workflow: message.workflow,
            occurrence: message.occurrence,
            step: message.step,
            contact_id: message.contact_id,
            channel,
            language: message.language.unwrap_or_default(),
            subject: message.subject,
            body,
            calendar: calendar(channel),
            fallback: message.fallback.map(|(channel, subject, body)| Fallback {
                channel,
                subject,
                body,
            }),
        });
    }
    (queued, unreachable)
}

/// The ledger entry of a rule that failed (its default was applied).
pub(crate) fn rule_failure_entry(failure: RuleFailure, now: DateTime<Utc>) -> LedgerEntry {
    let mut entry = LedgerEntry::new(
        now,
        LedgerEvent::RuleError,
        format!("{}; applied instead: {}", failure.error, failure.fallback),
    );
    entry.workflow = Some(failure.workflow);
    entry.occurrence = failure.occurrence;
    entry.step = Some(failure.hook.to_owned());
    entry
}

/// The ledger entries of the rule failures a planning pass met.
pub(crate) fn rule_failure_entries(planner: &Planner<'_>, now: DateTime<Utc>) -> Vec<LedgerEntry> {
    planner
        .take_failures()
        .into_iter()
        .map(|failure| rule_failure_entry(failure, now))
        .collect()
}
