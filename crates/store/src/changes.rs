//! Occurrence changes: a coordinator moved or cancelled one occurrence. Applying
//! a change replaces the occurrence's pending timers, queues the notices to its
//! participants and records it in the ledger, in one transaction.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::ledger::{LedgerEntry, append};
use super::outbox::{QueuedMessage, enqueue};
use super::sealing::CHANGE_REASON;
use super::states::{CANCELLED, PENDING};
use super::timers::{PlannedTimer, insert_timers};
use super::{Store, StoreError, instant, millis, parsed};
use palabre_lang::occurrence::OccurrenceChange;

impl Store {
    /// Every occurrence change.
    pub async fn occurrence_changes(&self) -> Result<Vec<OccurrenceChange>, StoreError> {
        let rows = sqlx::query(
            "SELECT workflow, occurrence, starts_at, sequence, reason FROM occurrence_changes",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let workflow: String = r.try_get("workflow")?;
                let occurrence = instant(r.try_get("occurrence")?);
                let sequence: i64 = r.try_get("sequence")?;
                Ok(OccurrenceChange {
                    sequence: parsed(
                        "occurrence_changes",
                        format!("{workflow}@{}", occurrence.to_rfc3339()),
                        "sequence",
                        sequence,
                        u32::try_from(sequence).ok().filter(|s| *s > 0),
                    )?,
                    reason: self.sealer.open(
                        "occurrence_changes",
                        &CHANGE_REASON,
                        &format!("{workflow}|{}", millis(occurrence)),
                        &r.try_get::<String, _>("reason")?,
                    )?,
                    workflow,
                    occurrence,
                    starts_at: r.try_get::<Option<i64>, _>("starts_at")?.map(instant),
                })
            })
            .collect()
    }

    /// Applies a change in one transaction: records it (refused, changing nothing, if
    /// another change of the same occurrence got in first), removes the occurrence's
    /// pending and cancelled timers (neither sent anything), plans `timers` (those
    /// already fired or missed stay as they are), queues
    /// `notices` and appends `ledger`. Returns false if the change was refused.
    pub async fn apply_occurrence_change(
        &self,
        change: &OccurrenceChange,
        timers: &[PlannedTimer],
        notices: &[QueuedMessage],
        ledger: &[LedgerEntry],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_transaction().await?;
        let current: Option<i64> = sqlx::query(
            "SELECT sequence FROM occurrence_changes WHERE workflow = $1 AND occurrence = $2",
        )
        .bind(&change.workflow)
        .bind(millis(change.occurrence))
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("sequence"))
        .transpose()?;
        if current.unwrap_or(0) + 1 != i64::from(change.sequence) {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO occurrence_changes (workflow, occurrence, starts_at, sequence, reason, changed) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workflow, occurrence) DO UPDATE \
             SET starts_at = $3, sequence = $4, reason = $5, changed = $6",
        )
        .bind(&change.workflow)
        .bind(millis(change.occurrence))
        .bind(change.starts_at.map(millis))
        .bind(i64::from(change.sequence))
        .bind(self.sealer.seal(
            &CHANGE_REASON,
            &format!("{}|{}", change.workflow, millis(change.occurrence)),
            &change.reason,
        )?)
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM timers WHERE workflow = $1 AND occurrence = $2 \
             AND state IN ('{PENDING}', '{CANCELLED}')"
        )))
        .bind(&change.workflow)
        .bind(millis(change.occurrence))
        .execute(&mut *tx)
        .await?;
        insert_timers(&mut tx, self, timers, now).await?;
        enqueue(&mut tx, self, notices, now).await?;
        append(&mut tx, self, ledger).await?;
        tx.commit().await?;
        Ok(true)
    }
}
