//! Milestone statuses: what `palabre milestone set` and the API record. A change
//! to done or cancelled drops the milestone's pending reminders and checks in the
//! same transaction as the status and its ledger entry.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::ledger::{LedgerEntry, LedgerEvent, append};
use super::sealing::MILESTONE_NOTE;
use super::states::PENDING;
use super::{Store, StoreError, instant, millis, parsed};
use palabre_lang::milestones::{MilestoneState, MilestoneStatus};

impl Store {
    /// Every recorded milestone status.
    pub async fn milestone_states(&self) -> Result<Vec<MilestoneState>, StoreError> {
        let rows =
            sqlx::query("SELECT workflow, milestone, status, note, changed FROM milestone_status")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                let plan: String = r.try_get("workflow")?;
                let milestone: String = r.try_get("milestone")?;
                Ok(MilestoneState {
                    status: parsed(
                        "milestone_status",
                        format!("{plan}/{milestone}"),
                        "status",
                        &status,
                        MilestoneStatus::parse(&status),
                    )?,
                    note: self.sealer.open(
                        "milestone_status",
                        &MILESTONE_NOTE,
                        &format!("{plan}|{milestone}"),
                        &r.try_get::<String, _>("note")?,
                    )?,
                    plan,
                    milestone,
                    changed: instant(r.try_get("changed")?),
                })
            })
            .collect()
    }

    /// Records a status change with its note; returns the previous status. Done and
    /// cancelled drop the milestone's pending timers (the drop in the ledger); a
    /// reopened milestone has its plan planned again.
    pub async fn set_milestone_status(
        &self,
        plan: &str,
        milestone: &str,
        status: MilestoneStatus,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<MilestoneStatus, StoreError> {
        self.set_milestone_status_by(plan, milestone, status, note, None, now)
            .await
    }

    /// [`Store::set_milestone_status`], naming who set it in the ledger entry
    /// (the note kept with the status stays theirs alone).
    pub async fn set_milestone_status_by(
        &self,
        plan: &str,
        milestone: &str,
        status: MilestoneStatus,
        note: &str,
        actor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<MilestoneStatus, StoreError> {
        let mut tx = self.write_transaction().await?;
        let previous = sqlx::query(
            "SELECT status FROM milestone_status WHERE workflow = $1 AND milestone = $2",
        )
        .bind(plan)
        .bind(milestone)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get::<String, _>("status"))
        .transpose()?;
        // No row: the milestone was never set, so it is planned.
        let previous = match previous {
            None => MilestoneStatus::Planned,
            Some(stored) => parsed(
                "milestone_status",
                format!("{plan}/{milestone}"),
                "status",
                &stored,
                MilestoneStatus::parse(&stored),
            )?,
        };
        sqlx::query(
            "INSERT INTO milestone_status (workflow, milestone, status, note, changed) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workflow, milestone) DO UPDATE \
             SET status = $3, note = $4, changed = $5",
        )
        .bind(plan)
        .bind(milestone)
        .bind(status.as_str())
        .bind(
            self.sealer
                .seal(&MILESTONE_NOTE, &format!("{plan}|{milestone}"), note)?,
        )
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        let mut ledger = vec![
            LedgerEntry::new(
                now,
                LedgerEvent::MilestoneStatus,
                match actor {
                    Some(actor) => format!("{previous} → {status} by {actor}: {note}"),
                    None => format!("{previous} → {status}: {note}"),
                },
            )
            .about(plan, milestone),
        ];
        if previous.is_closed() && !status.is_closed() {
            // Reopened: the plan is planned afresh from now (timers already there stay).
            sqlx::query("DELETE FROM schedules WHERE workflow = $1")
                .bind(plan)
                .execute(&mut *tx)
                .await?;
        }
        if status.is_closed() {
            let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM timers WHERE workflow = $1 AND state = '{PENDING}' AND step LIKE $2"
            )))
            .bind(plan)
            .bind(format!("{milestone}/%"))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if dropped > 0 {
                ledger.push(
                    LedgerEntry::new(
                        now,
                        LedgerEvent::Replanned,
                        format!("{dropped} pending reminder(s) and check(s) dropped: {status}"),
                    )
                    .about(plan, milestone),
                );
            }
        }
        append(&mut tx, self, &ledger).await?;
        tx.commit().await?;
        Ok(previous)
    }
}
