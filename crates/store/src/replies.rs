//! What people answer by SMS: opt-outs, yes/no to meetings, the inbound messages
//! already acted on; and what providers report of what we sent (receipts).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::ledger::{LedgerEntry, append};
use super::outbox::{ReceiptSubject, queue_fallbacks};
use super::states::QUEUED;
use super::{Store, StoreError, millis};
use palabre_core::channel::Channel;
use palabre_core::webhooks::DeliveryStatus;

/// The table of those who opted out of `channel`.
pub(crate) fn stops_table(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Sms => Some("sms_stopped"),
        Channel::Voice => Some("voice_stopped"),
        Channel::Email => None,
    }
}

impl Store {
    /// Whether an inbound message with this provider id was already acted on.
    pub async fn inbound_seen(&self, provider_id: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT 1 AS seen FROM inbound_seen WHERE provider_id = $1")
                .bind(provider_id)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Remembers that the inbound message with this provider id was acted on.
    pub async fn mark_inbound_seen(
        &self,
        provider_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO inbound_seen (provider_id, received) VALUES ($1, $2) \
             ON CONFLICT (provider_id) DO NOTHING",
        )
        .bind(provider_id)
        .bind(millis(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Contacts who opted out of SMS.
    pub async fn sms_stopped(&self) -> Result<BTreeSet<String>, StoreError> {
        self.stopped(Channel::Sms).await
    }

    /// Contacts who opted out of `channel` (SMS by STOP, calls by pressing 0);
    /// nobody opts out of email here.
    pub async fn stopped(&self, channel: Channel) -> Result<BTreeSet<String>, StoreError> {
        let Some(table) = stops_table(channel) else {
            return Ok(BTreeSet::new());
        };
        let sql = format!("SELECT contact_id FROM {table}");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("contact_id")?)).collect()
    }

    /// Opts a contact out of SMS (`stopped`) or back in, with its ledger entry.
    pub async fn set_sms_stopped(
        &self,
        contact_id: &str,
        stopped: bool,
        now: DateTime<Utc>,
        entry: &LedgerEntry,
    ) -> Result<(), StoreError> {
        self.set_stopped(Channel::Sms, contact_id, stopped, now, entry)
            .await
    }

    /// Opts a contact out of `channel` (`stopped`) or back in, with its ledger
    /// entry; on email, only the entry is written.
    pub async fn set_stopped(
        &self,
        channel: Channel,
        contact_id: &str,
        stopped: bool,
        now: DateTime<Utc>,
        entry: &LedgerEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        if let Some(table) = stops_table(channel) {
            if stopped {
                let sql = format!(
                    "INSERT INTO {table} (contact_id, since) VALUES ($1, $2) \
                     ON CONFLICT (contact_id) DO NOTHING"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(contact_id)
                    .bind(millis(now))
                    .execute(&mut *tx)
                    .await?;
            } else {
                let sql = format!("DELETE FROM {table} WHERE contact_id = $1");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(contact_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        append(&mut tx, self, std::slice::from_ref(entry)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a contact's answer to an occurrence (the latest counts), with the ledger.
    pub async fn record_response(
        &self,
        workflow: &str,
        occurrence: DateTime<Utc>,
        contact_id: &str,
        response: &str,
        now: DateTime<Utc>,
        ledger: &[LedgerEntry],
    ) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        sqlx::query(
            "INSERT INTO responses (workflow, occurrence, contact_id, response, at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workflow, occurrence, contact_id) \
             DO UPDATE SET response = $4, at = $5",
        )
        .bind(workflow)
        .bind(millis(occurrence))
        .bind(contact_id)
        .bind(response)
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        append(&mut tx, self, ledger).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The answers to one occurrence, by contact id.
    pub async fn responses(
        &self,
        workflow: &str,
        occurrence: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let rows = sqlx::query(
            "SELECT contact_id, response FROM responses WHERE workflow = $1 AND occurrence = $2",
        )
        .bind(workflow)
        .bind(millis(occurrence))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("contact_id")?, r.try_get("response")?)))
            .collect()
    }
}

impl Store {
    /// Records a provider's receipt for the message it knows as `provider_id`.
    /// A final one (`delivered` or `failed`) ends the wait for a receipt, and a
    /// failed one queues the message's fallback copy; a passing status (`sent`,
    /// `buffered` ...) is kept only until a final one arrives, and never replaces
    /// it (providers' callbacks can come out of order). `entry` makes the ledger
    /// entry. `None` if no message has this id.
    ///
    /// A call nobody took ([`DeliveryStatus::Unanswered`]) is queued again at
    /// `redial.0` while it has been tried fewer than `redial.1` times, and
    /// counts as failed after that (or with no `redial`).
    pub async fn record_receipt(
        &self,
        provider_id: &str,
        status: &DeliveryStatus,
        now: DateTime<Utc>,
        redial: Option<(DateTime<Utc>, u32)>,
        entry: impl FnOnce(&ReceiptSubject) -> LedgerEntry,
    ) -> Result<Option<ReceiptSubject>, StoreError> {
        let mut tx = self.write_transaction().await?;
        let row = sqlx::query(
            "SELECT id, workflow, occurrence, step, contact_id, channel, fallback_channel, receipt, \
             attempts FROM outbox WHERE provider_id = $1",
        )
        .bind(provider_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        let attempts: i64 = row.try_get("attempts")?;
        if *status == DeliveryStatus::Unanswered
            && let Some((at, tries)) = redial
            && attempts < i64::from(tries)
        {
            sqlx::query(
                "UPDATE outbox SET state = $1, next_attempt = $2, provider_id = NULL, \
                 receipt = NULL, awaiting_receipt_until = NULL, lease_owner = NULL, \
                 lease_until = NULL, updated = $3 WHERE id = $4",
            )
            .bind(QUEUED)
            .bind(millis(at))
            .bind(millis(now))
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            let mut subject = ReceiptSubject::read(&row)?;
            subject.fell_back_to = None;
            subject.redial_at = Some(at);
            append(&mut tx, self, &[entry(&subject)]).await?;
            tx.commit().await?;
            return Ok(Some(subject));
        }
        // Not taken, and no more tries: failed.
        let status = match status {
            DeliveryStatus::Unanswered => &DeliveryStatus::Failed,
            other => other,
        };
        let known: Option<String> = row.try_get("receipt")?;
        let known_final = known
            .as_deref()
            .is_some_and(|word| DeliveryStatus::from_recorded(word).is_final());
        if status.is_final() {
            sqlx::query(
                "UPDATE outbox SET receipt = $1, awaiting_receipt_until = NULL WHERE id = $2",
            )
            .bind(status.as_recorded())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        } else if !known_final {
            sqlx::query("UPDATE outbox SET receipt = $1 WHERE id = $2")
                .bind(status.as_recorded())
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        let failed = *status == DeliveryStatus::Failed;
        let fell_back = failed && queue_fallbacks(&mut tx, self.backend, &[&id], now).await? > 0;
        let mut subject = ReceiptSubject::read(&row)?;
        if !fell_back {
            subject.fell_back_to = None;
        }
        append(&mut tx, self, &[entry(&subject)]).await?;
        tx.commit().await?;
        Ok(Some(subject))
    }
}
