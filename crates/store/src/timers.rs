//! Timers: durable "run step S of occurrence O of workflow W at T" rows.
//!
//! Planning inserts timers under their idempotency key (planning a slot twice is
//! a no-op); workers claim due timers by lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, so several workers never take the same one; a crashed worker's
//! lease simply expires); completing a timer writes its outbox rows, its ledger
//! entries and its new state in one transaction, and only while the lease is
//! still held.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::lease::Claim;
use super::ledger::{LedgerEntry, append};
use super::outbox::{ClaimedMessage, Held, QueuedMessage, enqueue, enqueue_held};
use super::states::{DEAD, FIRED, PENDING, QUEUED, SENT, SKIPPED, TimerState};
use super::wakeup::announce_work;
use super::{Backend, Params, Store, StoreError, Touched, instant, millis};

/// A timer to plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTimer {
    pub workflow: String,
    pub occurrence: DateTime<Utc>,
    pub step: String,
    pub due: DateTime<Utc>,
}

impl PlannedTimer {
    /// The idempotency key of a slot: `workflow|occurrence-seconds|step`.
    pub fn key(workflow: &str, occurrence: DateTime<Utc>, step: &str) -> String {
        format!("{workflow}|{}|{step}", occurrence.timestamp())
    }

    pub fn id(&self) -> String {
        PlannedTimer::key(&self.workflow, self.occurrence, &self.step)
    }
}

/// A timer a worker holds the lease of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedTimer {
    pub id: String,
    pub workflow: String,
    pub occurrence: DateTime<Utc>,
    pub step: String,
    pub due: DateTime<Utc>,
}

/// What a worker decided for one claimed timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerCompletion {
    pub timer_id: String,
    pub outcome: TimerOutcome,
    pub messages: Vec<QueuedMessage>,
    pub ledger: Vec<LedgerEntry>,
}

/// Where a workflow's planning stands: the hash of the definition it was
/// planned from, and how far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub workflow: String,
    pub hash: String,
    pub planned_until: DateTime<Utc>,
}

/// What completing a batch of timers did.
#[derive(Debug, Default)]
pub struct Completed {
    /// Timers completed (this worker still held their lease).
    pub timers: usize,
    /// The messages queued already leased to this worker, when it asked for them.
    pub held: Vec<ClaimedMessage>,
}

/// How a claimed timer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerOutcome {
    Fired,
    Skipped,
    Cancelled,
}

impl TimerOutcome {
    /// The state a timer ends in.
    fn state(self) -> TimerState {
        match self {
            TimerOutcome::Fired => TimerState::Fired,
            TimerOutcome::Skipped => TimerState::Skipped,
            TimerOutcome::Cancelled => TimerState::Cancelled,
        }
    }
}

/// What `palabre status` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct StatusCounts {
    /// Timers planned and not yet due.
    pub due_later: i64,
    /// Timers due now or in the past, not yet fired.
    pub late: i64,
    pub fired: i64,
    pub skipped: i64,
    /// Messages waiting for a first attempt.
    pub queued: i64,
    /// Messages that failed at least once and will be retried.
    pub retrying: i64,
    pub sent: i64,
    pub dead_lettered: i64,
    /// Rules that failed (their hook's default was applied), in the ledger.
    pub rule_errors: i64,
    /// The messages' lifecycle on each channel.
    pub channels: Vec<ChannelCounts>,
    /// Whether the workflows folder is valid, or the engine runs on its last
    /// good copy (since when, and why).
    pub definitions: super::DefinitionsHealth,
}

/// Where the messages of one channel are: queued → sent → delivered or failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ChannelCounts {
    pub channel: String,
    /// Waiting for an attempt (first or retry).
    pub queued: i64,
    /// Of those queued, the ones that failed before and will be retried.
    pub retrying: i64,
    /// Accepted by the provider.
    pub sent: i64,
    /// Of those sent, confirmed delivered by a receipt.
    pub delivered: i64,
    /// Of those sent, reported undeliverable by a receipt.
    pub undelivered: i64,
    /// Refused for good or out of attempts.
    pub dead_lettered: i64,
}

/// Rows per multi-row INSERT: well under both backends' parameter limits.
const INSERT_CHUNK: usize = 500;

/// Inserts timers inside the caller's transaction, leaving keys already present alone.
pub(crate) async fn insert_timers(
    conn: &mut AnyConnection,
    store: &Store,
    timers: &[PlannedTimer],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut inserted = 0;
    for chunk in timers.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO timers (id, workflow, occurrence, step, due, updated, state) VALUES {} \
             ON CONFLICT (id) DO NOTHING",
            Params::new(store.backend).rows(chunk.len(), 7)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for timer in chunk {
            query = query
                .bind(timer.id())
                .bind(&timer.workflow)
                .bind(millis(timer.occurrence))
                .bind(&timer.step)
                .bind(millis(timer.due))
                .bind(millis(now))
                .bind(PENDING);
        }
        inserted += query.execute(&mut *conn).await?.rows_affected();
    }
    if inserted > 0 {
        announce_work(conn, store).await?;
    }
    Ok(inserted)
}

impl Store {
    /// Plans timers; those already planned (same key) are left alone. Returns how many are new.
    pub async fn plan_timers(
        &self,
        timers: &[PlannedTimer],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_transaction().await?;
        let inserted = insert_timers(&mut tx, self, timers, now).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Removes a workflow's pending timers due at or after `from` (before re-planning
    /// it); fired timers stay, so a re-plan never re-sends. Records it in the ledger.
    pub async fn unplan_pending(
        &self,
        workflow: &str,
        from: DateTime<Utc>,
        ledger: &LedgerEntry,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_transaction().await?;
        let removed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM timers WHERE workflow = $1 AND state = '{PENDING}' AND due >= $2"
        )))
        .bind(workflow)
        .bind(millis(from))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if removed > 0 {
            let mut entry = ledger.clone();
            entry.workflow = Some(workflow.to_owned());
            entry.detail = format!("{} ({removed} pending timer(s) removed)", entry.detail);
            append(&mut tx, self, &[entry]).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Every workflow's definition hash and planning watermark, read at once.
    pub async fn schedules(
        &self,
    ) -> Result<std::collections::HashMap<String, (String, DateTime<Utc>)>, StoreError> {
        let rows = sqlx::query("SELECT workflow, definition_hash, planned_until FROM schedules")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("workflow")?,
                    (
                        r.try_get("definition_hash")?,
                        instant(r.try_get("planned_until")?),
                    ),
                ))
            })
            .collect()
    }

    /// A planning pass's writes in one transaction: its new timers (those
    /// already planned are left alone) and each workflow's new hash and
    /// watermark. Returns how many timers are new.
    pub async fn plan_pass(
        &self,
        timers: &[PlannedTimer],
        schedules: &[Schedule],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_transaction().await?;
        let inserted = insert_timers(&mut tx, self, timers, now).await?;
        for chunk in schedules.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO schedules (workflow, definition_hash, planned_until) VALUES {} \
                 ON CONFLICT (workflow) DO UPDATE SET definition_hash = excluded.definition_hash, \
                 planned_until = excluded.planned_until",
                Params::new(self.backend).rows(chunk.len(), 3)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for schedule in chunk {
                query = query
                    .bind(&schedule.workflow)
                    .bind(&schedule.hash)
                    .bind(millis(schedule.planned_until));
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    pub async fn forget_schedule(&self, workflow: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM schedules WHERE workflow = $1")
            .bind(workflow)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes the lease of up to `limit` timers due at `now`, oldest first.
    pub async fn claim_due_timers(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease: TimeDelta,
        limit: i64,
    ) -> Result<Vec<ClaimedTimer>, StoreError> {
        let claim = Claim {
            table: "timers",
            state: PENDING,
            time: "due",
            returning: "id, workflow, occurrence, step, due",
        };
        let rows = self.claim(claim, now, owner, lease, limit).await?;
        let mut timers = rows
            .iter()
            .map(|r| {
                Ok(ClaimedTimer {
                    id: r.try_get("id")?,
                    workflow: r.try_get("workflow")?,
                    occurrence: instant(r.try_get("occurrence")?),
                    step: r.try_get("step")?,
                    due: instant(r.try_get("due")?),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        timers.sort_by(|a, b| (a.due, &a.id).cmp(&(b.due, &b.id)));
        Ok(timers)
    }

    /// Completes claimed timers in one transaction: each timer whose lease this
    /// worker still holds gets its new state, its messages enter the outbox (a key
    /// already queued is left alone) and its ledger entries are appended. A timer
    /// whose lease was lost is left untouched, messages and all.
    ///
    /// With `hold_until`, the messages are queued already leased to `owner` until
    /// then and come back as [`Completed::held`]: the worker delivers them
    /// without claiming them (one statement less per batch, and nothing read
    /// back). Not delivered by then, they are anyone's again, like any lease.
    pub async fn complete_timers(
        &self,
        owner: &str,
        completions: &[TimerCompletion],
        now: DateTime<Utc>,
        hold_until: Option<DateTime<Utc>>,
    ) -> Result<Completed, StoreError> {
        self.write_batches(async |conn, touched| {
            self.complete_in(conn, owner, completions, now, hold_until, touched)
                .await
        })
        .await
    }

    /// [`Store::complete_timers`] inside a transaction; `None` when `touched`
    /// counted short.
    async fn complete_in(
        &self,
        conn: &mut AnyConnection,
        owner: &str,
        completions: &[TimerCompletion],
        now: DateTime<Utc>,
        hold_until: Option<DateTime<Utc>>,
        touched: Touched,
    ) -> Result<Option<Completed>, StoreError> {
        let mut completed = std::collections::HashSet::new();
        for outcome in [
            TimerOutcome::Fired,
            TimerOutcome::Skipped,
            TimerOutcome::Cancelled,
        ] {
            let ids: Vec<&str> = completions
                .iter()
                .filter(|c| c.outcome == outcome)
                .map(|c| c.timer_id.as_str())
                .collect();
            for chunk in ids.chunks(INSERT_CHUNK) {
                let mut params = Params::new(self.backend);
                let (state, updated, owner_param) = (params.next(), params.next(), params.next());
                let list: Vec<String> = chunk.iter().map(|_| params.next()).collect();
                let sql = format!(
                    "UPDATE timers SET state = {state}, lease_owner = NULL, lease_until = NULL, updated = {updated} \
                     WHERE state = '{PENDING}' AND lease_owner = {owner_param} AND id IN ({}){}",
                    list.join(", "),
                    touched.clause("id")
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(outcome.state().as_str())
                    .bind(millis(now))
                    .bind(owner);
                for id in chunk {
                    query = query.bind(*id);
                }
                let Some(ids) = touched.run(conn, query, chunk.iter().copied()).await? else {
                    return Ok(None);
                };
                completed.extend(ids);
            }
        }
        let done: Vec<&TimerCompletion> = completions
            .iter()
            .filter(|c| completed.contains(&c.timer_id))
            .collect();
        let messages = done.iter().flat_map(|c| c.messages.iter());
        let held = match hold_until {
            Some(until) => {
                let held = Held { owner, until };
                match enqueue_held(conn, self, messages, now, held, touched).await? {
                    Some(held) => held,
                    None => return Ok(None),
                }
            }
            None => {
                enqueue(conn, self, messages, now).await?;
                Vec::new()
            }
        };
        let ledger: Vec<LedgerEntry> = done.iter().flat_map(|c| c.ledger.iter().cloned()).collect();
        append(conn, self, &ledger).await?;
        Ok(Some(Completed {
            timers: done.len(),
            held,
        }))
    }

    /// [`Store::complete_timers`] for one timer; false if the lease was lost.
    pub async fn complete_timer(
        &self,
        timer_id: &str,
        owner: &str,
        outcome: TimerOutcome,
        messages: &[QueuedMessage],
        ledger: &[LedgerEntry],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let completion = TimerCompletion {
            timer_id: timer_id.to_owned(),
            outcome,
            messages: messages.to_vec(),
            ledger: ledger.to_vec(),
        };
        let completed = self
            .complete_timers(owner, std::slice::from_ref(&completion), now, None)
            .await?;
        Ok(completed.timers == 1)
    }

    /// Whether a later slot of the same workflow step is also due by `now` (so that,
    /// under `misfire: once`, only the latest missed slot runs).
    pub async fn later_slot_due(
        &self,
        workflow: &str,
        step: &str,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS later FROM timers WHERE workflow = $1 AND step = $2 AND state = '{PENDING}' \
             AND due > $3 AND due <= $4")),
        )
        .bind(workflow)
        .bind(step)
        .bind(millis(due))
        .bind(millis(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("later")? > 0)
    }

    /// Refreshes the planner's statistics after a burst of writes. PostgreSQL plans
    /// the claim queries from statistics that autovacuum refreshes only minutes
    /// later; on a freshly filled table it picks a scan-and-sort over every pending
    /// row for each batch (quadratic over a burst). SQLite's planner needs nothing.
    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("ANALYZE timers, outbox")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Releases every lease held under `owner`: a restarted worker takes back at
    /// once what it held when it stopped (its leases would otherwise have to expire).
    pub async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let mut released = 0;
        for table in ["timers", "outbox"] {
            let sql = format!(
                "UPDATE {table} SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1"
            );
            released += sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(owner)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(released)
    }

    /// The earliest instant anything is due: a pending timer or a queued message.
    pub async fn next_wakeup(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT MIN(t) AS t FROM (\
               SELECT MIN(due) AS t FROM timers WHERE state = '{PENDING}' \
               UNION ALL SELECT MIN(next_attempt) AS t FROM outbox WHERE state = '{QUEUED}' \
               UNION ALL SELECT MIN(awaiting_receipt_until) AS t FROM outbox \
               WHERE awaiting_receipt_until IS NOT NULL) AS wakeups"
        )))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("t")?.map(instant))
    }

    /// Counts for `palabre status`, as of `now`.
    pub async fn status(&self, now: DateTime<Utc>) -> Result<StatusCounts, StoreError> {
        self.counts(now, None).await
    }

    /// Counts for `palabre status`, as of `now`, of these workflows only: their
    /// timers, their outbox rows and their rule errors (an empty list counts
    /// nothing); the definitions' health as in [`Store::status`].
    pub async fn status_of(
        &self,
        now: DateTime<Utc>,
        workflows: &[&str],
    ) -> Result<StatusCounts, StoreError> {
        self.counts(now, Some(workflows)).await
    }

    async fn counts(
        &self,
        now: DateTime<Utc>,
        workflows: Option<&[&str]>,
    ) -> Result<StatusCounts, StoreError> {
        // Each sub-query names the workflows again (SQLite binds positionally).
        let among = |params: &mut Params| among(workflows, params);
        let mut params = Params::new(self.backend);
        let due_later = format!("due > {}{}", params.next(), among(&mut params));
        let late = format!("due <= {}{}", params.next(), among(&mut params));
        let (fired, skipped, errors) = (among(&mut params), among(&mut params), among(&mut params));
        let sql = format!(
            "SELECT \
               (SELECT COUNT(*) FROM timers WHERE state = '{PENDING}' AND {due_later}) AS due_later, \
               (SELECT COUNT(*) FROM timers WHERE state = '{PENDING}' AND {late}) AS late, \
               (SELECT COUNT(*) FROM timers WHERE state = '{FIRED}'{fired}) AS fired, \
               (SELECT COUNT(*) FROM timers WHERE state = '{SKIPPED}'{skipped}) AS skipped, \
               (SELECT COUNT(*) FROM ledger WHERE event = 'rule-error'{errors}) AS rule_errors"
        );
        let list = workflows.unwrap_or_default();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for with_instant in [true, true, false, false, false] {
            if with_instant {
                query = query.bind(millis(now));
            }
            for workflow in list {
                query = query.bind(*workflow);
            }
        }
        let row = query.fetch_one(&self.pool).await?;
        // The outbox is read once, by channel; the totals are their sums.
        let channels = self.channel_counts(workflows).await?;
        let total = |count: fn(&ChannelCounts) -> i64| channels.iter().map(count).sum::<i64>();
        Ok(StatusCounts {
            due_later: row.try_get("due_later")?,
            late: row.try_get("late")?,
            fired: row.try_get("fired")?,
            skipped: row.try_get("skipped")?,
            queued: total(|c| c.queued - c.retrying),
            retrying: total(|c| c.retrying),
            sent: total(|c| c.sent),
            dead_lettered: total(|c| c.dead_lettered),
            rule_errors: row.try_get("rule_errors")?,
            channels,
            definitions: self.definitions_health().await?,
        })
    }

    /// [`ChannelCounts`] for every channel that has messages.
    async fn channel_counts(
        &self,
        workflows: Option<&[&str]>,
    ) -> Result<Vec<ChannelCounts>, StoreError> {
        let filter = among(workflows, &mut Params::new(self.backend));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT channel, \
               SUM(CASE WHEN state = '{QUEUED}' THEN 1 ELSE 0 END) AS queued, \
               SUM(CASE WHEN state = '{QUEUED}' AND attempts > 0 THEN 1 ELSE 0 END) AS retrying, \
               SUM(CASE WHEN state = '{SENT}' THEN 1 ELSE 0 END) AS sent, \
               SUM(CASE WHEN state = '{SENT}' AND receipt = 'delivered' THEN 1 ELSE 0 END) AS delivered, \
               SUM(CASE WHEN state = '{SENT}' AND receipt = 'failed' THEN 1 ELSE 0 END) AS undelivered, \
               SUM(CASE WHEN state = '{DEAD}' THEN 1 ELSE 0 END) AS dead_lettered \
             FROM outbox WHERE 1 = 1{filter} GROUP BY channel ORDER BY channel"
        )));
        for workflow in workflows.unwrap_or_default() {
            query = query.bind(*workflow);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(ChannelCounts {
                    channel: r.try_get("channel")?,
                    queued: r.try_get("queued")?,
                    retrying: r.try_get("retrying")?,
                    sent: r.try_get("sent")?,
                    delivered: r.try_get("delivered")?,
                    undelivered: r.try_get("undelivered")?,
                    dead_lettered: r.try_get("dead_lettered")?,
                })
            })
            .collect()
    }
}

/// ` AND workflow IN (…)` for the placeholders of `workflows` (nothing when all
/// are counted, a clause true of no row when none are).
fn among(workflows: Option<&[&str]>, params: &mut Params) -> String {
    match workflows {
        None => String::new(),
        Some([]) => " AND 1 = 0".to_owned(),
        Some(list) => format!(" AND workflow IN {}", params.row(list.len())),
    }
}
