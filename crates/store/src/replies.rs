//! What people answer by SMS: opt-outs, yes/no to meetings, the inbound messages
//! already acted on; and what providers report of what we sent (receipts).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::ledger::{LedgerEntry, append};
use super::outbox::{ReceiptSubject, queue_fallbacks};
use super::{Store, StoreError, millis};
use palabre_core::webhooks::DeliveryStatus;

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
        let rows = sqlx::query("SELECT contact_id FROM sms_stopped")
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
        let mut tx = self.write_transaction().await?;
        if stopped {
            sqlx::query(
                "INSERT INTO sms_stopped (contact_id, since) VALUES ($1, $2) \
                 ON CONFLICT (contact_id) DO NOTHING",
            )
            .bind(contact_id)
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("DELETE FROM sms_stopped WHERE contact_id = $1")
                .bind(contact_id)
                .execute(&mut *tx)
                .await?;
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
    pub async fn record_receipt(
        &self,
        provider_id: &str,
        status: &DeliveryStatus,
        now: DateTime<Utc>,
        entry: impl FnOnce(&ReceiptSubject) -> LedgerEntry,
    ) -> Result<Option<ReceiptSubject>, StoreError> {
        let mut tx = self.write_transaction().await?;
        let row = sqlx::query(
            "SELECT id, workflow, occurrence, step, contact_id, channel, fallback_channel, receipt \
             FROM outbox WHERE provider_id = $1",
        )
        .bind(provider_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
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
