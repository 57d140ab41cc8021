//! The outbox: messages to deliver, each under its idempotency key
//! (`workflow|occurrence|step|contact|channel`), with attempts, the next attempt's
//! time, and a lease so that one worker delivers a message at a time.
//!
//! Delivery is at-least-once: a worker that dies after a connector accepted a
//! message but before recording it leaves the message to be sent again when its
//! lease expires. The key travels with the message (email Message-ID, SMS
//! gateways' idempotency keys) so that receivers can recognise the repeat.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{AnyConnection, Row};

use super::lease::Claim;
use super::ledger::{LedgerEntry, LedgerEvent, append};
use super::states::{DEAD, QUEUED, SENT};
use super::wakeup::announce_work;
use palabre_core::channel::Channel;
use palabre_core::webhooks::DeliveryStatus;

use super::sealing::{
    FALLBACK_BODY, FALLBACK_SUBJECT, MESSAGE_BODY, MESSAGE_CALENDAR, MESSAGE_SUBJECT, Sealed,
    Sealer, fallback_row,
};
use super::{Backend, Params, Store, StoreError, Touched, instant, millis, parsed};

const TABLE: &str = "outbox";

/// A message to put in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub id: String,
    pub timer_id: String,
    pub workflow: String,
    pub occurrence: DateTime<Utc>,
    pub step: String,
    pub contact_id: String,
    pub channel: Channel,
    pub language: String,
    pub subject: Option<String>,
    pub body: String,
    /// An iCalendar text to attach (meeting invitations by email).
    pub calendar: Option<String>,
    /// The same message for the contact's next channel, sent if this one dies.
    pub fallback: Option<Fallback>,
}

/// Where one message is, as [`Store::occurrence_messages`] reads it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct MessageProgress {
    pub step: String,
    pub contact_id: String,
    pub channel: Channel,
    pub progress: Progress,
    /// Attempts made so far.
    pub attempts: i64,
    /// The connector's last error (addresses scrubbed by the connector), if any.
    pub last_error: Option<String>,
}

/// A message's lifecycle, as a coordinator reads it: queued (or retrying), sent,
/// then delivered or undelivered by a receipt; or dead (given up on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    Queued,
    Sent,
    Delivered,
    Undelivered,
    Dead,
}

impl Progress {
    fn of(state: &str, receipt: Option<String>) -> Progress {
        match (state, receipt.as_deref()) {
            (SENT, Some("delivered")) => Progress::Delivered,
            (SENT, Some("failed")) => Progress::Undelivered,
            (SENT, _) => Progress::Sent,
            (DEAD, _) => Progress::Dead,
            _ => Progress::Queued,
        }
    }
}

/// A message prepared for another channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    pub channel: Channel,
    pub subject: Option<String>,
    pub body: String,
}

impl QueuedMessage {
    /// The idempotency key of a message: its timer's key, the contact and the channel.
    pub fn key(timer_id: &str, contact_id: &str, channel: Channel) -> String {
        format!("{timer_id}|{contact_id}|{channel}")
    }
}

/// A message a worker holds the lease of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMessage {
    pub id: String,
    pub workflow: String,
    pub occurrence: DateTime<Utc>,
    pub step: String,
    pub contact_id: String,
    pub channel: Channel,
    pub language: String,
    pub subject: Option<String>,
    pub body: String,
    pub calendar: Option<String>,
    /// Attempts made before this one.
    pub attempts: i64,
    pub fallback: Option<Fallback>,
}

impl ClaimedMessage {
    /// A message just queued, as its first delivery attempt takes it.
    fn first_attempt(message: &QueuedMessage) -> ClaimedMessage {
        ClaimedMessage {
            id: message.id.clone(),
            workflow: message.workflow.clone(),
            occurrence: message.occurrence,
            step: message.step.clone(),
            contact_id: message.contact_id.clone(),
            channel: message.channel,
            language: message.language.clone(),
            subject: message.subject.clone(),
            body: message.body.clone(),
            calendar: message.calendar.clone(),
            attempts: 0,
            fallback: message.fallback.clone(),
        }
    }
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Accepted by the provider; with `awaiting_receipt_until`, a fallback is sent
    /// if no delivery receipt arrives by then.
    Sent {
        provider_id: String,
        awaiting_receipt_until: Option<DateTime<Utc>>,
    },
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Not tried: it waits until `until` (a call outside its callee's hours, or
    /// held by a rule); not counted as an attempt.
    Deferred {
        until: DateTime<Utc>,
        reason: String,
    },
    Dead {
        error: String,
    },
}

/// One delivery attempt's outcome and its ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub message_id: String,
    pub outcome: DeliveryOutcome,
    pub ledger: LedgerEntry,
    /// Whether the message's fallback copy is queued with this outcome (a dead letter).
    pub fall_back: bool,
}

/// A lease given to messages as they are queued: the worker that fired them
/// delivers them next, without claiming them first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held<'a> {
    pub owner: &'a str,
    pub until: DateTime<Utc>,
}

/// Rows per outbox INSERT (21 values a row).
const ENQUEUE_CHUNK: usize = 200;

/// Inserts messages inside the caller's transaction; a key already present is left alone.
pub(crate) async fn enqueue<'m>(
    conn: &mut AnyConnection,
    store: &Store,
    messages: impl IntoIterator<Item = &'m QueuedMessage>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let messages: Vec<&QueuedMessage> = messages.into_iter().collect();
    for chunk in messages.chunks(ENQUEUE_CHUNK) {
        insert_messages(store, chunk, now, None, "")?
            .execute(&mut *conn)
            .await?;
    }
    if !messages.is_empty() {
        announce_work(conn, store).await?;
    }
    Ok(())
}

/// [`enqueue`], the messages leased to `held`'s owner: those inserted come back
/// as claimed (a key already present does not: it was queued before, perhaps
/// by someone else). `None` when `touched` counted short.
pub(crate) async fn enqueue_held<'m>(
    conn: &mut AnyConnection,
    store: &Store,
    messages: impl IntoIterator<Item = &'m QueuedMessage>,
    now: DateTime<Utc>,
    held: Held<'_>,
    touched: Touched,
) -> Result<Option<Vec<ClaimedMessage>>, StoreError> {
    let messages: Vec<&QueuedMessage> = messages.into_iter().collect();
    let mut claimed = Vec::with_capacity(messages.len());
    for chunk in messages.chunks(ENQUEUE_CHUNK) {
        let query = insert_messages(store, chunk, now, Some(held), &touched.clause("id"))?;
        let Some(inserted) = touched
            .run(conn, query, chunk.iter().map(|m| m.id.as_str()))
            .await?
        else {
            return Ok(None);
        };
        let inserted: BTreeSet<String> = inserted.into_iter().collect();
        claimed.extend(
            chunk
                .iter()
                .filter(|m| inserted.contains(&m.id))
                .map(|m| ClaimedMessage::first_attempt(m)),
        );
    }
    Ok(Some(claimed))
}

/// The INSERT of a chunk of messages, sealed, leased to `held`'s owner if
/// given, the statement ending with `ending`.
fn insert_messages<'q>(
    store: &Store,
    chunk: &[&'q QueuedMessage],
    now: DateTime<Utc>,
    held: Option<Held<'q>>,
    ending: &str,
) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>, StoreError> {
    let (backend, sealer) = (store.backend, &*store.sealer);
    const COLUMNS: usize = 21;
    let sql = format!(
        "INSERT INTO outbox (id, timer_id, workflow, occurrence, step, contact_id, channel, language, subject, body, \
         calendar, state, attempts, next_attempt, created, updated, fallback_channel, fallback_subject, fallback_body, \
         lease_owner, lease_until) \
         VALUES {} ON CONFLICT (id) DO NOTHING{ending}",
        Params::new(backend).rows(chunk.len(), COLUMNS)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for m in chunk {
        let fallback = m.fallback.as_ref();
        let fallback_row = fallback.map(|_| fallback_row(&m.id)).unwrap_or_default();
        query = query
            .bind(&m.id)
            .bind(&m.timer_id)
            .bind(&m.workflow)
            .bind(millis(m.occurrence))
            .bind(&m.step)
            .bind(&m.contact_id)
            .bind(m.channel.as_str())
            .bind(&m.language)
            .bind(sealer.seal_some(&MESSAGE_SUBJECT, &m.id, m.subject.as_deref())?)
            .bind(sealer.seal(&MESSAGE_BODY, &m.id, &m.body)?)
            .bind(sealer.seal_some(&MESSAGE_CALENDAR, &m.id, m.calendar.as_deref())?)
            .bind(QUEUED)
            .bind(0_i64)
            .bind(millis(now))
            .bind(millis(now))
            .bind(millis(now))
            .bind(fallback.map(|f| f.channel.as_str()))
            .bind(sealer.seal_some(
                &FALLBACK_SUBJECT,
                &fallback_row,
                fallback.and_then(|f| f.subject.as_deref()),
            )?)
            .bind(sealer.seal_some(
                &FALLBACK_BODY,
                &fallback_row,
                fallback.map(|f| f.body.as_str()),
            )?)
            .bind(held.map(|h| h.owner))
            .bind(held.map(|h| millis(h.until)));
    }
    Ok(query)
}

/// Queues, for each message of `ids` that has a fallback on another channel, its
/// copy there (`<id>|fallback`), once: a second call for the same message does
/// nothing. Returns how many were queued.
pub(crate) async fn queue_fallbacks(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: &[&str],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut queued = 0;
    for chunk in ids.chunks(500) {
        let mut params = Params::new(backend);
        let (created, updated, next_attempt) = (params.next(), params.next(), params.next());
        let list = params.row(chunk.len());
        let sql = format!(
            "INSERT INTO outbox (id, timer_id, workflow, occurrence, step, contact_id, channel, language, \
             subject, body, state, attempts, next_attempt, created, updated) \
             SELECT id || '|fallback', id, workflow, occurrence, step, contact_id, fallback_channel, language, \
             fallback_subject, fallback_body, '{QUEUED}', 0, CAST({next_attempt} AS BIGINT), \
             CAST({created} AS BIGINT), CAST({updated} AS BIGINT) \
             FROM outbox WHERE id IN {list} AND fallback_channel IS NOT NULL \
             AND fallback_body IS NOT NULL AND fallback_channel <> channel \
             ON CONFLICT (id) DO NOTHING"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(millis(now))
            .bind(millis(now))
            .bind(millis(now));
        for id in chunk {
            query = query.bind(*id);
        }
        queued += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(queued)
}

impl Store {
    /// Gives back the leases `owner` holds on these messages, unattempted.
    pub async fn release_messages(&self, owner: &str, ids: &[String]) -> Result<(), StoreError> {
        for chunk in ids.chunks(500) {
            let mut params = Params::new(self.backend);
            let owner_param = params.next();
            let list = params.row(chunk.len());
            let sql = format!(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL \
                 WHERE lease_owner = {owner_param} AND id IN {list}"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(owner);
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Where each message about one occurrence of a workflow is, in the order
    /// they were queued: what the dashboard shows of an occurrence's deliveries.
    /// No text: the step, the contact, the channel, the state and the last word
    /// of the provider or of the connector's error.
    pub async fn occurrence_messages(
        &self,
        workflow: &str,
        occurrence: DateTime<Utc>,
    ) -> Result<Vec<MessageProgress>, StoreError> {
        let rows = sqlx::query(
            "SELECT step, contact_id, channel, state, attempts, receipt, last_error FROM outbox \
             WHERE workflow = $1 AND occurrence = $2 ORDER BY created, id",
        )
        .bind(workflow)
        .bind(millis(occurrence))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get("state")?;
                let channel: String = r.try_get("channel")?;
                let contact_id: String = r.try_get("contact_id")?;
                Ok(MessageProgress {
                    step: r.try_get("step")?,
                    channel: parsed(
                        TABLE,
                        &contact_id,
                        "channel",
                        &channel,
                        Channel::parse(&channel),
                    )?,
                    contact_id,
                    progress: Progress::of(&state, r.try_get("receipt")?),
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }

    /// The contacts something was queued or sent to about one occurrence of a
    /// workflow: those a change of it must be told about.
    pub async fn told_about(
        &self,
        workflow: &str,
        occurrence: DateTime<Utc>,
    ) -> Result<BTreeSet<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT contact_id FROM outbox WHERE workflow = $1 AND occurrence = $2",
        )
        .bind(workflow)
        .bind(millis(occurrence))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("contact_id")?)).collect()
    }

    /// Queues messages outside any timer (a reply's confirmation), with ledger
    /// entries, in one transaction.
    pub async fn queue_messages(
        &self,
        messages: &[QueuedMessage],
        ledger: &[LedgerEntry],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        enqueue(&mut tx, self, messages, now).await?;
        append(&mut tx, self, ledger).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sends again on their fallback channel the messages that waited for a
    /// delivery receipt until `now` in vain; `entry` makes the ledger entry of
    /// each. Returns how many.
    pub async fn fall_back_unconfirmed(
        &self,
        now: DateTime<Utc>,
        entry: impl Fn(&ReceiptSubject) -> LedgerEntry,
    ) -> Result<usize, StoreError> {
        // Asked at every tick: a read on the partial index first, so that a tick
        // with nothing to do takes no write lock.
        let due = sqlx::query(
            "SELECT 1 AS due FROM outbox \
             WHERE awaiting_receipt_until IS NOT NULL AND awaiting_receipt_until <= $1 LIMIT 1",
        )
        .bind(millis(now))
        .fetch_optional(&self.pool)
        .await?;
        if due.is_none() {
            return Ok(0);
        }
        let mut tx = self.write_transaction().await?;
        let rows = sqlx::query(
            "UPDATE outbox SET awaiting_receipt_until = NULL \
             WHERE awaiting_receipt_until IS NOT NULL AND awaiting_receipt_until <= $1 \
             RETURNING id, workflow, occurrence, step, contact_id, channel, fallback_channel",
        )
        .bind(millis(now))
        .fetch_all(&mut *tx)
        .await?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut ledger = Vec::with_capacity(rows.len());
        for row in &rows {
            ids.push(row.try_get::<String, _>("id")?);
            ledger.push(entry(&ReceiptSubject::read(row)?));
        }
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        queue_fallbacks(&mut tx, self.backend, &ids, now).await?;
        append(&mut tx, self, &ledger).await?;
        tx.commit().await?;
        Ok(ledger.len())
    }

    /// The call `id` (its outbox key), as its TwiML plays it; `None` if no call
    /// has this key.
    pub async fn call_message(&self, id: &str) -> Result<Option<ClaimedMessage>, StoreError> {
        let row = sqlx::query(
            "SELECT id, workflow, occurrence, step, contact_id, channel, language, subject, body, \
             calendar, attempts, fallback_channel, fallback_subject, fallback_body FROM outbox \
             WHERE id = $1 AND channel = $2",
        )
        .bind(id)
        .bind(Channel::Voice.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| claimed_message(&self.sealer, &row))
            .transpose()
    }

    /// How many messages of `channel` are under way: accepted by the provider
    /// since `since`, with no final receipt yet (calls ringing or being heard).
    pub async fn under_way(
        &self,
        channel: Channel,
        since: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE channel = $1 AND state = $2 AND updated >= $3 \
             AND (receipt IS NULL OR receipt NOT IN ($4, $5))",
        )
        .bind(channel.as_str())
        .bind(SENT)
        .bind(millis(since))
        .bind(DeliveryStatus::Delivered.as_recorded())
        .bind(DeliveryStatus::Failed.as_recorded())
        .fetch_one(&self.pool)
        .await?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// Takes the lease of up to `limit` messages ready at `now`, oldest first.
    pub async fn claim_messages(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease: TimeDelta,
        limit: i64,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        let claim = Claim {
            table: "outbox",
            state: QUEUED,
            time: "next_attempt",
            returning: "id, workflow, occurrence, step, contact_id, channel, language, subject, body, calendar, attempts, fallback_channel, fallback_subject, fallback_body",
        };
        let rows = self.claim(claim, now, owner, lease, limit).await?;
        let mut messages = Vec::with_capacity(rows.len());
        let mut corrupt = Vec::new();
        for row in &rows {
            match claimed_message(&self.sealer, row) {
                Ok(message) => messages.push(message),
                Err(StoreError::Corrupt { id, reason, .. }) => corrupt.push((id, reason)),
                Err(other) => return Err(other),
            }
        }
        if !corrupt.is_empty() {
            self.bury_corrupt(&corrupt, now).await?;
        }
        messages.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(messages)
    }

    /// Records the outcomes of delivery attempts, with their ledger entries, in one
    /// transaction. An outcome whose lease was lost is ignored. Returns how many
    /// were recorded.
    pub async fn record_deliveries(
        &self,
        owner: &str,
        records: &[DeliveryRecord],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.write_batches(async |conn, touched| {
            self.record_in(conn, owner, records, now, touched).await
        })
        .await
    }

    /// [`Store::record_deliveries`] inside a transaction; `None` when `touched`
    /// counted short.
    async fn record_in(
        &self,
        conn: &mut AnyConnection,
        owner: &str,
        records: &[DeliveryRecord],
        now: DateTime<Utc>,
        touched: Touched,
    ) -> Result<Option<usize>, StoreError> {
        let mut recorded = std::collections::HashSet::new();
        for chunk in records.chunks(500) {
            // One statement per chunk: the outcomes as a table of values, joined to the
            // outbox; only rows still leased by this worker and queued are touched.
            let mut params = Params::new(self.backend);
            let values: Vec<String> = (0..chunk.len())
                .map(|_| {
                    let (id, state, next_attempt, provider_id, last_error, awaiting, tried) = (
                        params.next(),
                        params.next(),
                        params.next(),
                        params.next(),
                        params.next(),
                        params.next(),
                        params.next(),
                    );
                    format!(
                        "({id}, {state}, CAST({next_attempt} AS BIGINT), {provider_id}, {last_error}, \
                         CAST({awaiting} AS BIGINT), CAST({tried} AS BIGINT))"
                    )
                })
                .collect();
            let (updated, owner_param) = (params.next(), params.next());
            let sql = format!(
                "WITH outcome (id, state, next_attempt, provider_id, last_error, awaiting, tried) AS (VALUES {}) \
                 UPDATE outbox SET state = outcome.state, attempts = outbox.attempts + outcome.tried, \
                 next_attempt = outcome.next_attempt, provider_id = outcome.provider_id, \
                 last_error = outcome.last_error, awaiting_receipt_until = outcome.awaiting, \
                 lease_owner = NULL, lease_until = NULL, updated = {updated} \
                 FROM outcome WHERE outbox.id = outcome.id AND outbox.state = '{QUEUED}' \
                 AND outbox.lease_owner = {owner_param}{}",
                values.join(", "),
                touched.clause("outbox.id")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for record in chunk {
                let (state, next_attempt, provider_id, error, awaiting) = match &record.outcome {
                    DeliveryOutcome::Sent {
                        provider_id,
                        awaiting_receipt_until,
                    } => (
                        SENT,
                        now,
                        Some(provider_id.as_str()),
                        None,
                        awaiting_receipt_until.map(millis),
                    ),
                    DeliveryOutcome::Retry { at, error } => {
                        (QUEUED, *at, None, Some(error.as_str()), None)
                    }
                    DeliveryOutcome::Deferred { until, reason } => {
                        (QUEUED, *until, None, Some(reason.as_str()), None)
                    }
                    DeliveryOutcome::Dead { error } => {
                        (DEAD, now, None, Some(error.as_str()), None)
                    }
                };
                let tried = i64::from(!matches!(record.outcome, DeliveryOutcome::Deferred { .. }));
                query = query
                    .bind(&record.message_id)
                    .bind(state)
                    .bind(millis(next_attempt))
                    .bind(provider_id)
                    .bind(error)
                    .bind(awaiting)
                    .bind(tried);
            }
            query = query.bind(millis(now)).bind(owner);
            let ids = chunk.iter().map(|r| r.message_id.as_str());
            let Some(ids) = touched.run(conn, query, ids).await? else {
                return Ok(None);
            };
            recorded.extend(ids);
        }
        let ledger: Vec<LedgerEntry> = records
            .iter()
            .filter(|r| recorded.contains(&r.message_id))
            .map(|r| r.ledger.clone())
            .collect();
        let fall_back: Vec<&str> = records
            .iter()
            .filter(|r| r.fall_back && recorded.contains(&r.message_id))
            .map(|r| r.message_id.as_str())
            .collect();
        queue_fallbacks(conn, self.backend, &fall_back, now).await?;
        append(conn, self, &ledger).await?;
        Ok(Some(ledger.len()))
    }

    /// [`Store::record_deliveries`] for one message; false if the lease was lost.
    pub async fn record_delivery(
        &self,
        message_id: &str,
        owner: &str,
        outcome: &DeliveryOutcome,
        ledger: &LedgerEntry,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let record = DeliveryRecord {
            message_id: message_id.to_owned(),
            outcome: outcome.clone(),
            ledger: ledger.clone(),
            fall_back: false,
        };
        Ok(self
            .record_deliveries(owner, std::slice::from_ref(&record), now)
            .await?
            == 1)
    }
}

/// A claimed outbox row as a message; a channel no version writes makes the row
/// corrupt.
fn claimed_message(sealer: &Sealer, r: &sqlx::any::AnyRow) -> Result<ClaimedMessage, StoreError> {
    let id: String = r.try_get("id")?;
    let open = |column: &Sealed, row: &str, name: &str| -> Result<Option<String>, StoreError> {
        let stored: Option<String> = r.try_get(name)?;
        sealer.open_some(TABLE, column, row, stored.as_deref())
    };
    let channel: String = r.try_get("channel")?;
    let fallback_channel: Option<String> = r.try_get("fallback_channel")?;
    let fallback_row = fallback_channel.as_ref().map(|_| fallback_row(&id));
    let fallback_body = match &fallback_row {
        Some(row) => open(&FALLBACK_BODY, row, "fallback_body")?,
        None => None,
    };
    let fallback = match (fallback_channel, fallback_body, &fallback_row) {
        (Some(channel), Some(body), Some(row)) => Some(Fallback {
            channel: parsed(
                "outbox",
                &id,
                "fallback_channel",
                &channel,
                Channel::parse(&channel),
            )?,
            subject: open(&FALLBACK_SUBJECT, row, "fallback_subject")?,
            body,
        }),
        _ => None,
    };
    Ok(ClaimedMessage {
        channel: parsed("outbox", &id, "channel", &channel, Channel::parse(&channel))?,
        workflow: r.try_get("workflow")?,
        occurrence: instant(r.try_get("occurrence")?),
        step: r.try_get("step")?,
        contact_id: r.try_get("contact_id")?,
        language: r.try_get("language")?,
        subject: open(&MESSAGE_SUBJECT, &id, "subject")?,
        body: open(&MESSAGE_BODY, &id, "body")?.unwrap_or_default(),
        calendar: open(&MESSAGE_CALENDAR, &id, "calendar")?,
        attempts: r.try_get("attempts")?,
        fallback,
        id,
    })
}

impl Store {
    /// Dead-letters claimed rows that cannot be read (one bad row must not stop
    /// every delivery), each with a ledger entry saying why.
    async fn bury_corrupt(
        &self,
        corrupt: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        let mut ledger = Vec::with_capacity(corrupt.len());
        for (id, reason) in corrupt {
            let error = format!("the outbox row cannot be read: {reason}");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE outbox SET state = '{DEAD}', last_error = $1, lease_owner = NULL, \
                 lease_until = NULL, updated = $2 WHERE id = $3"
            )))
            .bind(&error)
            .bind(millis(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let mut entry = LedgerEntry::new(now, LedgerEvent::DeadLetter, error);
            entry.step = Some(id.clone());
            ledger.push(entry);
        }
        append(&mut tx, self, &ledger).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The sent message a delivery receipt (or its absence) is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSubject {
    pub workflow: String,
    pub occurrence: DateTime<Utc>,
    pub step: String,
    pub contact_id: String,
    pub channel: Channel,
    /// The channel its fallback copy was queued on, when the receipt said it
    /// failed and it had one.
    pub fell_back_to: Option<Channel>,
    /// When a call nobody took is made again.
    pub redial_at: Option<DateTime<Utc>>,
}

impl ReceiptSubject {
    /// From an outbox row with these columns; `fell_back_to` is its fallback channel.
    pub(crate) fn read(row: &sqlx::any::AnyRow) -> Result<ReceiptSubject, StoreError> {
        let id: String = row.try_get("id")?;
        let channel: String = row.try_get("channel")?;
        let fell_back_to: Option<String> = row.try_get("fallback_channel")?;
        Ok(ReceiptSubject {
            channel: parsed("outbox", &id, "channel", &channel, Channel::parse(&channel))?,
            fell_back_to: fell_back_to
                .map(|c| parsed("outbox", &id, "fallback_channel", &c, Channel::parse(&c)))
                .transpose()?,
            workflow: row.try_get("workflow")?,
            occurrence: super::instant(row.try_get("occurrence")?),
            step: row.try_get("step")?,
            contact_id: row.try_get("contact_id")?,
            redial_at: None,
        })
    }
}
