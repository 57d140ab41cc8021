//! The ledger: an append-only record of everything that happened, with its reason.
//!
//! Entries are written in the same transaction as the change they record, so the
//! ledger never says something happened that did not, nor misses what did.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use palabre_core::channel::Channel;

use super::sealing::{LEDGER_DETAIL, Sealer};
use super::{Params, Store, StoreError, instant, millis, parsed};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LedgerEvent {
    /// A step fired on time (or within its grace window).
    Fired,
    /// A slot passed while the engine was down and the misfire policy ran it late.
    FiredLate,
    /// A slot passed while the engine was down and the misfire policy dropped it.
    Missed,
    /// A message was put in the outbox.
    Queued,
    /// A recipient could not be reached on any channel the step allows.
    Unreachable,
    /// A connector accepted a message.
    Sent,
    /// A delivery attempt failed and will be retried.
    Retry,
    /// A call waits, untried, for its callee's call hours or a rule's leave.
    Deferred,
    /// A message will not be delivered: permanent error or attempts exhausted.
    DeadLetter,
    /// Pending timers were dropped because their workflow changed or disappeared.
    Replanned,
    /// A coordinator or a rule moved one occurrence.
    Moved,
    /// A coordinator or a rule cancelled one occurrence.
    Cancelled,
    /// A rule failed (an error, a limit, a wrong return value); its hook's default was applied.
    RuleError,
    /// A milestone's status changed (with the note).
    MilestoneStatus,
    /// An overdue milestone was looked at: what the rule decided, and why.
    Overdue,
    /// A dispute was opened.
    CaseOpened,
    /// A case reached a level (opened there, climbed there, or was sent there by hand).
    CaseEscalated,
    CaseAcknowledged,
    CaseNote,
    CaseResolved,
    CaseReopened,
    /// A case's level missed a deadline.
    DeadlineMissed,
    /// An SMS reply was understood (an answer to a meeting).
    Reply,
    /// An SMS reply could not be matched to a contact or a request: for a coordinator.
    ReplyUnmatched,
    /// A contact opted out of SMS (STOP), or back in (START).
    SmsStopped,
    SmsRestarted,
    /// A contact asked never to be called again (0 during a call).
    CallsStopped,
    /// The quorum rule weighed an occurrence's answers.
    Quorum,
    /// The provider reported the message delivered, or not, or something else (kept as said).
    Delivered,
    Undelivered,
    Receipt,
    /// Personal data was shown in clear (phones and emails, a case's
    /// description): who saw what, never the values themselves.
    Revealed,
    /// One person's data was erased (under a pseudonym) or exported (a
    /// subject-access request): who asked and why, never the data.
    PersonalData,
}

impl LedgerEvent {
    pub const ALL: [LedgerEvent; 33] = [
        LedgerEvent::Fired,
        LedgerEvent::FiredLate,
        LedgerEvent::Missed,
        LedgerEvent::Queued,
        LedgerEvent::Unreachable,
        LedgerEvent::Sent,
        LedgerEvent::Retry,
        LedgerEvent::Deferred,
        LedgerEvent::DeadLetter,
        LedgerEvent::Replanned,
        LedgerEvent::Moved,
        LedgerEvent::Cancelled,
        LedgerEvent::RuleError,
        LedgerEvent::MilestoneStatus,
        LedgerEvent::Overdue,
        LedgerEvent::CaseOpened,
        LedgerEvent::CaseEscalated,
        LedgerEvent::CaseAcknowledged,
        LedgerEvent::CaseNote,
        LedgerEvent::CaseResolved,
        LedgerEvent::CaseReopened,
        LedgerEvent::DeadlineMissed,
        LedgerEvent::Reply,
        LedgerEvent::ReplyUnmatched,
        LedgerEvent::SmsStopped,
        LedgerEvent::SmsRestarted,
        LedgerEvent::CallsStopped,
        LedgerEvent::Quorum,
        LedgerEvent::Delivered,
        LedgerEvent::Undelivered,
        LedgerEvent::Receipt,
        LedgerEvent::Revealed,
        LedgerEvent::PersonalData,
    ];

    /// The event a stored word names.
    pub fn parse(text: &str) -> Option<LedgerEvent> {
        LedgerEvent::ALL.into_iter().find(|e| e.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LedgerEvent::Fired => "fired",
            LedgerEvent::FiredLate => "fired-late",
            LedgerEvent::Missed => "missed",
            LedgerEvent::Queued => "queued",
            LedgerEvent::Unreachable => "unreachable",
            LedgerEvent::Sent => "sent",
            LedgerEvent::Retry => "retry",
            LedgerEvent::Deferred => "deferred",
            LedgerEvent::DeadLetter => "dead-letter",
            LedgerEvent::Replanned => "replanned",
            LedgerEvent::Moved => "moved",
            LedgerEvent::Cancelled => "cancelled",
            LedgerEvent::RuleError => "rule-error",
            LedgerEvent::MilestoneStatus => "milestone-status",
            LedgerEvent::Overdue => "overdue",
            LedgerEvent::CaseOpened => "case-opened",
            LedgerEvent::CaseEscalated => "case-escalated",
            LedgerEvent::CaseAcknowledged => "case-acknowledged",
            LedgerEvent::CaseNote => "case-note",
            LedgerEvent::CaseResolved => "case-resolved",
            LedgerEvent::CaseReopened => "case-reopened",
            LedgerEvent::DeadlineMissed => "deadline-missed",
            LedgerEvent::Reply => "reply",
            LedgerEvent::ReplyUnmatched => "reply-unmatched",
            LedgerEvent::SmsStopped => "sms-stopped",
            LedgerEvent::SmsRestarted => "sms-restarted",
            LedgerEvent::CallsStopped => "calls-stopped",
            LedgerEvent::Quorum => "quorum",
            LedgerEvent::Delivered => "delivered",
            LedgerEvent::Undelivered => "undelivered",
            LedgerEvent::Receipt => "receipt",
            LedgerEvent::PersonalData => "personal-data",
            LedgerEvent::Revealed => "revealed",
        }
    }
}

impl std::fmt::Display for LedgerEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event is the word it is stored and shown as (`rule-error`).
impl PartialEq<&str> for LedgerEvent {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LedgerEntry {
    pub at: DateTime<Utc>,
    pub event: LedgerEvent,
    pub workflow: Option<String>,
    pub occurrence: Option<DateTime<Utc>>,
    pub step: Option<String>,
    pub contact_id: Option<String>,
    pub channel: Option<Channel>,
    pub detail: String,
}

impl LedgerEntry {
    /// The `revealed` entry of `how` (`read through GET /cases by hotline (token
    /// …)`) showing the descriptions of `cases` (ladder, reference): under the case
    /// when there is one, else naming them per ladder. Never a description.
    pub fn case_reveal(now: DateTime<Utc>, cases: &[(&str, &str)], how: &str) -> LedgerEntry {
        if let [(workflow, id)] = cases {
            return LedgerEntry::new(
                now,
                LedgerEvent::Revealed,
                format!("case {id} ({workflow}): description, {how}"),
            )
            .about(workflow, id);
        }
        // Per ladder, in the order listed: `litiges-mopti: LM-0001, LM-0003`.
        let mut ladders: Vec<(&str, Vec<&str>)> = Vec::new();
        for (workflow, id) in cases {
            match ladders.iter_mut().find(|(w, _)| w == workflow) {
                Some((_, ids)) => ids.push(id),
                None => ladders.push((workflow, vec![id])),
            }
        }
        let named = ladders
            .iter()
            .map(|(workflow, ids)| format!("{workflow}: {}", ids.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        let mut entry = LedgerEntry::new(
            now,
            LedgerEvent::Revealed,
            format!("{} cases' descriptions ({named}), {how}", cases.len()),
        );
        if let [(workflow, _)] = ladders.as_slice() {
            entry.workflow = Some((*workflow).to_owned());
        }
        entry
    }

    pub fn new(at: DateTime<Utc>, event: LedgerEvent, detail: impl Into<String>) -> LedgerEntry {
        LedgerEntry {
            at,
            event,
            workflow: None,
            occurrence: None,
            step: None,
            contact_id: None,
            channel: None,
            detail: detail.into(),
        }
    }

    /// Names the workflow slot the entry is about.
    pub fn slot(mut self, workflow: &str, occurrence: DateTime<Utc>, step: &str) -> LedgerEntry {
        self.workflow = Some(workflow.to_owned());
        self.occurrence = Some(occurrence);
        self.step = Some(step.to_owned());
        self
    }

    /// Names what the entry is about: a milestone of a plan, a case of a ladder
    /// (in the `workflow` and `step` columns).
    pub fn about(mut self, workflow: &str, subject: &str) -> LedgerEntry {
        self.workflow = Some(workflow.to_owned());
        self.step = Some(subject.to_owned());
        self
    }

    /// The key its detail is sealed under: what [`LEDGER_DETAIL`]'s SQL computes.
    pub(crate) fn row_key(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}|{}",
            millis(self.at),
            self.event.as_str(),
            self.workflow.as_deref().unwrap_or_default(),
            self.occurrence
                .map(|o| millis(o).to_string())
                .unwrap_or_default(),
            self.step.as_deref().unwrap_or_default(),
            self.contact_id.as_deref().unwrap_or_default(),
            self.channel.map(Channel::as_str).unwrap_or_default(),
        )
    }

    /// Names the recipient and channel the entry is about.
    pub fn recipient(mut self, contact_id: &str, channel: Option<Channel>) -> LedgerEntry {
        self.contact_id = Some(contact_id.to_owned());
        self.channel = channel;
        self
    }
}

/// Appends entries inside the caller's transaction, many rows per statement.
pub(crate) async fn append(
    conn: &mut AnyConnection,
    store: &Store,
    entries: &[LedgerEntry],
) -> Result<(), StoreError> {
    const COLUMNS: usize = 8;
    for chunk in entries.chunks(500) {
        let sql = format!(
            "INSERT INTO ledger (at, event, workflow, occurrence, step, contact_id, channel, detail) VALUES {}",
            Params::new(store.backend).rows(chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for entry in chunk {
            let detail = store
                .sealer
                .seal(&LEDGER_DETAIL, &entry.row_key(), &entry.detail)?;
            query = query
                .bind(millis(entry.at))
                .bind(entry.event.as_str())
                .bind(entry.workflow.as_deref())
                .bind(entry.occurrence.map(millis))
                .bind(entry.step.as_deref())
                .bind(entry.contact_id.as_deref())
                .bind(entry.channel.map(Channel::as_str))
                .bind(detail);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// One ledger row read back.
pub(crate) fn entry_of(
    sealer: &Sealer,
    row: &sqlx::any::AnyRow,
) -> Result<LedgerEntry, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    let event: String = row.try_get("event")?;
    let channel: Option<String> = row.try_get("channel")?;
    let mut entry = LedgerEntry {
        at: instant(row.try_get("at")?),
        event: parsed(
            "ledger",
            seq.to_string(),
            "event",
            &event,
            LedgerEvent::parse(&event),
        )?,
        channel: channel
            .map(|c| parsed("ledger", seq.to_string(), "channel", &c, Channel::parse(&c)))
            .transpose()?,
        workflow: row.try_get("workflow")?,
        occurrence: row.try_get::<Option<i64>, _>("occurrence")?.map(instant),
        step: row.try_get("step")?,
        contact_id: row.try_get("contact_id")?,
        detail: String::new(),
    };
    let stored: String = row.try_get("detail")?;
    entry.detail = sealer
        .open("ledger", &LEDGER_DETAIL, &entry.row_key(), &stored)
        .map_err(|e| match e {
            StoreError::Corrupt { table, reason, .. } => StoreError::Corrupt {
                table,
                id: seq.to_string(),
                reason,
            },
            other => other,
        })?;
    Ok(entry)
}

impl Store {
    /// Every entry of `workflow` about `subject` (a case, a milestone) or one of
    /// its timers (`subject/...`), oldest first.
    pub async fn ledger_about(
        &self,
        workflow: &str,
        subject: &str,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, event, workflow, occurrence, step, contact_id, channel, detail FROM ledger \
             WHERE workflow = $1 AND (step = $2 OR step LIKE $3) ORDER BY seq",
        )
        .bind(workflow)
        .bind(subject)
        .bind(format!("{subject}/%"))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| entry_of(&self.sealer, row)).collect()
    }

    /// The most recent `limit` entries (of one workflow, if given), oldest first.
    pub async fn ledger(
        &self,
        workflow: Option<&str>,
        limit: i64,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        self.ledger_of(workflow, None, limit).await
    }

    /// The most recent `limit` entries of one workflow and of one event, each
    /// if given, oldest first.
    pub async fn ledger_of(
        &self,
        workflow: Option<&str>,
        event: Option<LedgerEvent>,
        limit: i64,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, event, workflow, occurrence, step, contact_id, channel, detail FROM ledger \
             WHERE ($1 IS NULL OR workflow = $1) AND ($2 IS NULL OR event = $2) \
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(workflow)
        .bind(event.map(LedgerEvent::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut entries = rows
            .iter()
            .map(|row| entry_of(&self.sealer, row))
            .collect::<Result<Vec<_>, _>>()?;
        entries.reverse();
        Ok(entries)
    }

    /// Appends entries on their own (for events not tied to another change).
    pub async fn append_ledger(&self, entries: &[LedgerEntry]) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        append(&mut conn, self, entries).await
    }
}
