//! Removing texts past their keeping time (the policy is the caller's:
//! `retention.yaml`): the texts of messages once sent or given up, the details
//! of old ledger entries, the descriptions of cases resolved long ago. Rows stay,
//! so counts and history stay; what they said is gone. What was removed, counts
//! only, goes to the ledger in the same transaction.

use chrono::{DateTime, Utc};
use palabre_lang::escalation::CaseState;
use serde::Serialize;

use super::ledger::{LedgerEntry, LedgerEvent, append};
use super::states::{DEAD, SENT};
use super::{Store, StoreError, millis};

pub use super::sealing::EXPIRED_TEXT;

/// The instants before which each kind of text expires.
#[derive(Debug, Clone, Copy)]
pub struct ExpiryCutoffs {
    pub message_texts: DateTime<Utc>,
    pub ledger_details: DateTime<Utc>,
    pub resolved_case_descriptions: DateTime<Utc>,
}

/// How many texts an expiry pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Expired {
    pub message_texts: u64,
    pub ledger_details: u64,
    pub case_descriptions: u64,
}

impl Store {
    /// Removes the texts older than `cutoffs`, in one transaction, and writes
    /// the counts to the ledger when anything was removed.
    pub async fn purge_expired(
        &self,
        now: DateTime<Utc>,
        cutoffs: ExpiryCutoffs,
    ) -> Result<Expired, StoreError> {
        let mut tx = self.write_transaction().await?;
        let message_texts = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET body = '{EXPIRED_TEXT}', subject = NULL, calendar = NULL, \
             fallback_subject = NULL, fallback_body = NULL, last_error = NULL \
             WHERE state IN ('{SENT}', '{DEAD}') AND updated < $1 AND body <> '{EXPIRED_TEXT}'"
        )))
        .bind(millis(cutoffs.message_texts))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let ledger_details =
            sqlx::query("UPDATE ledger SET detail = '' WHERE at < $1 AND detail <> ''")
                .bind(millis(cutoffs.ledger_details))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let case_descriptions = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE cases SET description = '' WHERE state = '{}' AND updated < $1 \
             AND description <> ''",
            CaseState::Resolved.as_str()
        )))
        .bind(millis(cutoffs.resolved_case_descriptions))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let expired = Expired {
            message_texts,
            ledger_details,
            case_descriptions,
        };
        if expired != Expired::default() {
            let entry = LedgerEntry::new(
                now,
                LedgerEvent::PersonalData,
                format!(
                    "retention: {message_texts} message text(s), {ledger_details} ledger detail(s) \
                     and {case_descriptions} resolved case description(s) past their keeping time removed"
                ),
            );
            append(&mut tx, self, &[entry]).await?;
        }
        tx.commit().await?;
        Ok(expired)
    }
}
