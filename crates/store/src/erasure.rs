//! One person's data: erased (a subject's right to be forgotten, or a leader
//! whose contact with the programme must leave no trace) or exported (a
//! subject-access request).
//!
//! Erasure keeps the counts and the history meaningful: the contact's id is
//! replaced everywhere it appears by a pseudonym that carries no information
//! (`erased-` and 12 random hex digits, the randomness the caller's), the row
//! keeps its roles, place and language ("a leader of Koro answered yes"), and
//! the name, phone and email are destroyed: in the row, in the bodies of the
//! messages sent to them, and wherever a free text quotes them (ledger details,
//! case descriptions, notes, reasons, kept API answers). Their queued messages
//! are dropped. All of it in one transaction; on SQLite with `secure_delete`
//! on, then the database rewritten (`VACUUM`) and the WAL checkpointed and
//! truncated, so that the bytes are gone from the files too. An emergency
//! purge erases every contact at or below a place the same way (the same
//! code), all of them in one transaction, with one ledger entry for the purge.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AnyConnection, Connection as _, Row};

use super::ledger::{LedgerEntry, LedgerEvent, append, entry_of};
use super::rekey::rewrite_sealed;
use super::sealing::{
    CASE_DESCRIPTION, CHANGE_REASON, CONTACT_EMAIL, CONTACT_NAME, CONTACT_PHONE, KEPT_ANSWER,
    LEDGER_DETAIL, MESSAGE_BODY, MESSAGE_SUBJECT, MILESTONE_NOTE, Sealed,
};
use super::states::QUEUED;
use super::{Backend, DirectoryEntry, Store, StoreError, instant, rewrite_sqlite_file};
use palabre_core::channel::Channel;
use palabre_lang::places::Places;

pub use super::sealing::ERASED_TEXT;

/// The prefix of every pseudonym.
pub const PSEUDONYM_PREFIX: &str = "erased-";

/// The pseudonym made of 6 random bytes: `erased-` and 12 hex digits.
pub fn pseudonym(random: [u8; 6]) -> String {
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{PSEUDONYM_PREFIX}{hex}")
}

/// One erasure asked for.
#[derive(Debug, Clone)]
pub struct Erasure<'a> {
    pub id: &'a str,
    /// Why, as the ledger records it (occurrences of the erased values removed).
    pub reason: &'a str,
    /// Who asks, as the ledger records it.
    pub operator: &'a str,
    /// The pseudonym's randomness (from the caller: the store draws none).
    pub random: [u8; 6],
    pub now: DateTime<Utc>,
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureSummary {
    /// The id that now stands for the person everywhere.
    pub pseudonym: String,
    /// Their answers, kept under the pseudonym.
    pub responses: u64,
    /// Their messages already sent or given up on, kept under the pseudonym, texts emptied.
    pub messages_kept: u64,
    /// Their queued messages, dropped (each with a `dead-letter` entry).
    pub messages_dropped: u64,
    /// The ledger entries about them, kept under the pseudonym.
    pub ledger_entries: u64,
    /// The cases they are a party to, the party renamed.
    pub cases: u64,
    /// On SQLite: whether the file was rewritten and the WAL checkpoint
    /// completed (false while another process held the database open: the old
    /// bytes may stay in the `-wal` file until its next checkpoint). `None` on
    /// PostgreSQL, whose old row versions stay on disk until it vacuums them.
    pub files_rewritten: Option<bool>,
}

/// Everything stored about one person, for a subject-access request.
#[derive(Debug, Clone, Serialize)]
pub struct ContactExport {
    /// The contact as the directory holds it, in clear.
    pub contact: DirectoryEntry,
    /// Since when they have opted out of SMS (STOP); `None` if they have not.
    pub sms_stopped_since: Option<DateTime<Utc>>,
    /// Since when they have asked never to be called again (0 during a call).
    pub calls_stopped_since: Option<DateTime<Utc>>,
    pub responses: Vec<ExportedResponse>,
    pub messages: Vec<ExportedMessage>,
    /// The ledger entries about them, oldest first.
    pub ledger: Vec<LedgerEntry>,
    /// The cases they are a party to.
    pub cases: Vec<ExportedCase>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedResponse {
    pub workflow: String,
    pub occurrence: DateTime<Utc>,
    pub response: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedMessage {
    pub workflow: String,
    pub occurrence: DateTime<Utc>,
    pub step: String,
    pub channel: String,
    pub state: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub subject: Option<String>,
    pub body: String,
    /// What the provider last reported (`delivered`, `failed` ...).
    pub receipt: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedCase {
    pub reference: String,
    pub workflow: String,
    pub category: String,
    pub place: String,
    pub state: String,
    pub level: i64,
    pub description: String,
    pub opened: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// The sealed free texts any erased value may be quoted in, whoever they are
/// about (ledger details are scrubbed with the ledger, below).
const SEALED_FREE_TEXTS: [(&str, &Sealed); 4] = [
    ("cases", &CASE_DESCRIPTION),
    ("milestone_status", &MILESTONE_NOTE),
    ("occurrence_changes", &CHANGE_REASON),
    ("idempotency_keys", &KEPT_ANSWER),
];

/// The strings an erasure removes from free texts: the name, the email, the
/// phone as stored and without its `+`. Values too short to be told apart
/// from ordinary words are left out.
fn needles(name: &str, phone: Option<&str>, email: Option<&str>) -> Vec<String> {
    let mut found = Vec::new();
    let name = name.trim();
    if name.chars().count() >= 4 {
        found.push(name.to_owned());
    }
    if let Some(email) = email.map(str::trim).filter(|e| e.len() >= 4) {
        found.push(email.to_owned());
    }
    if let Some(phone) = phone.map(str::trim).filter(|p| p.len() >= 6) {
        found.push(phone.to_owned());
        if let Some(bare) = phone.strip_prefix('+').filter(|p| p.len() >= 6) {
            found.push(bare.to_owned());
        }
    }
    found
}

/// `text` with every needle replaced by `by`.
fn scrub(text: &str, needles: &[String], by: &str) -> String {
    needles.iter().fold(text.to_owned(), |text, needle| {
        text.replace(needle.as_str(), by)
    })
}

/// An emergency purge asked for: every contact at or below a place erased, as
/// [`Store::erase_contact`] erases one, all in one transaction.
pub struct Purge<'a> {
    /// A place path (`mopti/koro`): the contacts at it and below it go.
    pub place: &'a str,
    /// Who asks, as the ledger records it.
    pub operator: &'a str,
    /// The randomness of each pseudonym, drawn once per contact (from the
    /// caller: the store draws none).
    pub random: &'a mut (dyn FnMut() -> [u8; 6] + Send),
    pub now: DateTime<Utc>,
}

/// What a purge did, in counts only (never who).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeSummary {
    /// The contacts erased, each under a pseudonym of its own.
    pub contacts: u64,
    pub responses: u64,
    pub messages_kept: u64,
    pub messages_dropped: u64,
    pub ledger_entries: u64,
    pub cases: u64,
    /// As [`ErasureSummary::files_rewritten`].
    pub files_rewritten: Option<bool>,
}

/// Whom one erasing transaction is for.
enum Whom<'a> {
    /// One contact, by id.
    Contact(&'a str),
    /// Every contact at or below a place (pseudonyms of earlier erasures left out).
    Place(&'a str),
}

/// One contact erased inside the transaction: what was done, what the free
/// texts were scrubbed of, and the ledger entries to add.
struct Erased {
    summary: ErasureSummary,
    needles: Vec<String>,
    entries: Vec<LedgerEntry>,
}

impl Store {
    /// Erases one contact (see the module); `None` if there is none by that id.
    pub async fn erase_contact(
        &self,
        erasure: &Erasure<'_>,
    ) -> Result<Option<ErasureSummary>, StoreError> {
        let mut random = || erasure.random;
        let done = self
            .erase_whom(
                Whom::Contact(erasure.id),
                &mut random,
                erasure.now,
                |erased| {
                    erased
                        .iter()
                        .map(|one| {
                            let (summary, needles) = (&one.summary, &one.needles);
                            let pseudonym = &summary.pseudonym;
                            LedgerEntry::new(
                                erasure.now,
                                LedgerEvent::PersonalData,
                                format!(
                                    "erased by {}: {}; {} answer(s), {} message(s) and {} \
                                     ledger entries kept under the pseudonym, {} queued \
                                     message(s) dropped, {} case(s)",
                                    scrub(erasure.operator, needles, pseudonym),
                                    scrub(erasure.reason, needles, pseudonym),
                                    summary.responses,
                                    summary.messages_kept,
                                    summary.ledger_entries,
                                    summary.messages_dropped,
                                    summary.cases,
                                ),
                            )
                            .recipient(pseudonym, None)
                        })
                        .collect()
                },
            )
            .await?;
        Ok(done.and_then(|(summaries, rewritten)| {
            summaries.into_iter().next().map(|summary| ErasureSummary {
                files_rewritten: rewritten,
                ..summary
            })
        }))
    }

    /// Erases every contact at or below `purge.place` (the place itself, or a
    /// path under it followed by `/`), each as [`Store::erase_contact`] would,
    /// in one transaction, with one `personal-data` ledger entry for them all
    /// (the place, how many, who; never a name); `None` if there is no contact
    /// there (nothing done).
    pub async fn purge_place(&self, purge: Purge<'_>) -> Result<Option<PurgeSummary>, StoreError> {
        let (place, operator, now) = (purge.place, purge.operator, purge.now);
        let done = self
            .erase_whom(Whom::Place(place), purge.random, now, |erased| {
                let total = sum(erased.iter().map(|one| &one.summary), None);
                let needles: Vec<String> = erased
                    .iter()
                    .flat_map(|one| one.needles.iter().cloned())
                    .collect();
                vec![LedgerEntry::new(
                    now,
                    LedgerEvent::PersonalData,
                    format!(
                        "purged {place} by {}: {} contact(s) erased, each under a pseudonym; \
                         {} answer(s), {} message(s) and {} ledger entries kept under the \
                         pseudonyms, {} queued message(s) dropped, {} case(s)",
                        scrub(operator, &needles, ERASED_TEXT),
                        total.contacts,
                        total.responses,
                        total.messages_kept,
                        total.ledger_entries,
                        total.messages_dropped,
                        total.cases,
                    ),
                )]
            })
            .await?;
        Ok(done.map(|(summaries, rewritten)| sum(&summaries, rewritten)))
    }

    /// The one way contacts are erased: on a connection of its own (with
    /// `secure_delete` on SQLite), in one transaction, each contact of `whom`
    /// erased with a pseudonym from `random`, the entries `record` makes of
    /// them added to the ledger; then on SQLite the file rewritten and the WAL
    /// truncated. `None` if `whom` names no contact (nothing done). The
    /// summaries, and whether the files were rewritten.
    async fn erase_whom(
        &self,
        whom: Whom<'_>,
        random: &mut (dyn FnMut() -> [u8; 6] + Send),
        now: DateTime<Utc>,
        record: impl FnOnce(&[Erased]) -> Vec<LedgerEntry>,
    ) -> Result<Option<(Vec<ErasureSummary>, Option<bool>)>, StoreError> {
        let mut conn = self.scrubbing_connection().await?;
        let result = self.erase_on(&mut conn, whom, random, now, record).await;
        let result = match result {
            Ok(Some(summaries)) if self.backend == Backend::Sqlite => {
                // Pages freed or rewritten before this erasure still hold the old
                // texts in their free space: rewrite the whole file, then empty
                // the WAL into it.
                let rewritten = rewrite_sqlite_file(&mut conn).await?;
                Ok(Some((summaries, Some(rewritten))))
            }
            Ok(done) => Ok(done.map(|summaries| (summaries, None))),
            Err(e) => Err(e),
        };
        // The connection had secure_delete on: it goes, rather than back to the pool.
        let _ = conn.close().await;
        result
    }

    async fn erase_on(
        &self,
        conn: &mut AnyConnection,
        whom: Whom<'_>,
        random: &mut (dyn FnMut() -> [u8; 6] + Send),
        now: DateTime<Utc>,
        record: impl FnOnce(&[Erased]) -> Vec<LedgerEntry>,
    ) -> Result<Option<Vec<ErasureSummary>>, StoreError> {
        let backend = self.backend;
        let mut tx = match backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.begin().await?,
        };
        let ids: Vec<String> = match whom {
            Whom::Contact(id) => sqlx::query("SELECT id FROM contacts WHERE id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| row.try_get("id"))
                .collect::<Result<_, _>>()?,
            Whom::Place(place) => {
                let mut ids = Vec::new();
                for row in sqlx::query("SELECT id, place FROM contacts ORDER BY id")
                    .fetch_all(&mut *tx)
                    .await?
                {
                    let id: String = row.try_get("id")?;
                    let at: String = row.try_get("place")?;
                    if Places::contains(place, &at) && !id.starts_with(PSEUDONYM_PREFIX) {
                        ids.push(id);
                    }
                }
                ids
            }
        };
        if ids.is_empty() {
            return Ok(None);
        }
        let mut erased = Vec::with_capacity(ids.len());
        for id in &ids {
            erased.push(self.erase_one(&mut tx, id, random(), now).await?);
        }
        let mut ledger: Vec<LedgerEntry> = erased
            .iter_mut()
            .flat_map(|one| std::mem::take(&mut one.entries))
            .collect();
        ledger.extend(record(&erased));
        append(&mut tx, self, &ledger).await?;
        tx.commit().await?;
        Ok(Some(erased.into_iter().map(|one| one.summary).collect()))
    }

    /// Everything stored about one contact, and a ledger entry saying who asked
    /// for it and when (never what it holds); `None` if there is none by that id.
    pub async fn export_contact(
        &self,
        id: &str,
        operator: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ContactExport>, StoreError> {
        let Some(contact) = self.contact(id).await? else {
            return Ok(None);
        };
        let active = !self.inactive_contacts().await?.contains(id);
        let pool = &self.pool;
        let since = async |table: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
            let sql = format!("SELECT since FROM {table} WHERE contact_id = $1");
            Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .map(|row| row.try_get::<i64, _>("since").map(instant))
                .transpose()?)
        };
        let stopped = since("sms_stopped").await?;
        let calls_stopped = since("voice_stopped").await?;
        let responses = sqlx::query(
            "SELECT workflow, occurrence, response, at FROM responses WHERE contact_id = $1 \
             ORDER BY at, workflow, occurrence",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            Ok(ExportedResponse {
                workflow: row.try_get("workflow")?,
                occurrence: instant(row.try_get("occurrence")?),
                response: row.try_get("response")?,
                at: instant(row.try_get("at")?),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let sealer = &*self.sealer;
        let messages = sqlx::query(
            "SELECT id, workflow, occurrence, step, channel, state, created, updated, subject, \
             body, receipt FROM outbox WHERE contact_id = $1 ORDER BY created, id",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            let message: String = row.try_get("id")?;
            Ok(ExportedMessage {
                workflow: row.try_get("workflow")?,
                occurrence: instant(row.try_get("occurrence")?),
                step: row.try_get("step")?,
                channel: row.try_get("channel")?,
                state: row.try_get("state")?,
                created: instant(row.try_get("created")?),
                updated: instant(row.try_get("updated")?),
                subject: sealer.open_some(
                    "outbox",
                    &MESSAGE_SUBJECT,
                    &message,
                    row.try_get::<Option<String>, _>("subject")?.as_deref(),
                )?,
                body: sealer.open(
                    "outbox",
                    &MESSAGE_BODY,
                    &message,
                    &row.try_get::<String, _>("body")?,
                )?,
                receipt: row.try_get("receipt")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let ledger = self.ledger_of_contact(id).await?;
        let cases = sqlx::query(
            "SELECT id, workflow, category, place, parties, state, level, description, opened, \
             updated FROM cases WHERE parties LIKE $1 ORDER BY opened, id",
        )
        .bind(format!("%\"{id}\"%"))
        .fetch_all(pool)
        .await?
        .iter()
        .filter(|row| {
            row.try_get::<String, _>("parties")
                .ok()
                .and_then(|p| serde_json::from_str::<Vec<String>>(&p).ok())
                .is_some_and(|parties| parties.iter().any(|p| p == id))
        })
        .map(|row| {
            let reference: String = row.try_get("id")?;
            Ok(ExportedCase {
                description: sealer.open(
                    "cases",
                    &CASE_DESCRIPTION,
                    &reference,
                    &row.try_get::<String, _>("description")?,
                )?,
                reference,
                workflow: row.try_get("workflow")?,
                category: row.try_get("category")?,
                place: row.try_get("place")?,
                state: row.try_get("state")?,
                level: row.try_get("level")?,
                opened: instant(row.try_get("opened")?),
                updated: instant(row.try_get("updated")?),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        self.append_ledger(&[LedgerEntry::new(
            now,
            LedgerEvent::PersonalData,
            format!("exported by {operator} (a subject-access request)"),
        )
        .recipient(id, None)])
            .await?;
        Ok(Some(ContactExport {
            contact: DirectoryEntry { contact, active },
            sms_stopped_since: stopped,
            calls_stopped_since: calls_stopped,
            responses,
            messages,
            ledger,
            cases,
        }))
    }

    /// The ledger entries about one contact, oldest first.
    async fn ledger_of_contact(&self, id: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, event, workflow, occurrence, step, contact_id, channel, detail \
             FROM ledger WHERE contact_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| entry_of(&self.sealer, row)).collect()
    }
}

impl Store {
    /// Erases one contact inside the transaction `tx` (see the module): the
    /// pseudonym for their id everywhere, their texts emptied, their queued
    /// messages dropped (the `dead-letter` entries returned, not yet added).
    async fn erase_one(
        &self,
        tx: &mut AnyConnection,
        id: &str,
        random: [u8; 6],
        now: DateTime<Utc>,
    ) -> Result<Erased, StoreError> {
        let sealer = &*self.sealer;
        let row = sqlx::query("SELECT name, phone, email FROM contacts WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let open = |column: &Sealed, name: &str| -> Result<Option<String>, StoreError> {
            let stored: Option<String> = row.try_get(name)?;
            sealer.open_some("contacts", column, id, stored.as_deref())
        };
        let name = open(&CONTACT_NAME, "name")?.unwrap_or_default();
        let phone = open(&CONTACT_PHONE, "phone")?;
        let email = open(&CONTACT_EMAIL, "email")?;
        let pseudonym = pseudonym(random);
        let taken = sqlx::query("SELECT id FROM contacts WHERE id = $1")
            .bind(&pseudonym)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Corrupt {
                table: "contacts",
                id: pseudonym,
                reason: "this pseudonym is already taken: erase again".to_owned(),
            });
        }
        let needles = needles(&name, phone.as_deref(), email.as_deref());
        let mut entries = Vec::new();

        // Queued messages: dropped, each said in the ledger.
        let queued = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT workflow, occurrence, step, channel FROM outbox \
             WHERE contact_id = $1 AND state = '{QUEUED}' ORDER BY id"
        )))
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for row in &queued {
            let workflow: String = row.try_get("workflow")?;
            let step: String = row.try_get("step")?;
            let channel: String = row.try_get("channel")?;
            entries.push(
                LedgerEntry::new(
                    now,
                    LedgerEvent::DeadLetter,
                    "dropped: the contact was erased",
                )
                .slot(&workflow, instant(row.try_get("occurrence")?), &step)
                .recipient(&pseudonym, Channel::parse(&channel)),
            );
        }
        let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM outbox WHERE contact_id = $1 AND state = '{QUEUED}'"
        )))
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();

        // The others: kept under the pseudonym (their keys name the contact),
        // their texts emptied, the invitation dropped.
        let kept = sqlx::query(
            "SELECT id, timer_id, provider_id, last_error FROM outbox WHERE contact_id = $1",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let (from, to) = (format!("|{id}|"), format!("|{pseudonym}|"));
        for row in &kept {
            let message: String = row.try_get("id")?;
            let timer: String = row.try_get("timer_id")?;
            let error: Option<String> = row.try_get("last_error")?;
            // A provider id that echoes the key names the contact too.
            let provider: Option<String> = row.try_get("provider_id")?;
            sqlx::query(
                "UPDATE outbox SET id = $2, timer_id = $3, contact_id = $4, body = $5, \
                 subject = CASE WHEN subject IS NULL THEN NULL ELSE $5 END, \
                 fallback_subject = CASE WHEN fallback_subject IS NULL THEN NULL ELSE $5 END, \
                 fallback_body = CASE WHEN fallback_body IS NULL THEN NULL ELSE $5 END, \
                 calendar = NULL, last_error = $6, provider_id = $7 WHERE id = $1",
            )
            .bind(&message)
            .bind(message.replace(&from, &to))
            .bind(timer.replace(&from, &to))
            .bind(&pseudonym)
            .bind(ERASED_TEXT)
            .bind(error.map(|e| scrub(&e, &needles, &pseudonym)))
            .bind(provider.map(|p| p.replace(&from, &to)))
            .execute(&mut *tx)
            .await?;
        }

        // Answers and opt-out: the pseudonym for the id.
        let mut renamed = [0_u64; 3];
        for (count, sql) in renamed.iter_mut().zip([
            "UPDATE responses SET contact_id = $2 WHERE contact_id = $1",
            "UPDATE sms_stopped SET contact_id = $2 WHERE contact_id = $1",
            "UPDATE voice_stopped SET contact_id = $2 WHERE contact_id = $1",
        ]) {
            *count = sqlx::query(sql)
                .bind(id)
                .bind(&pseudonym)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        // The ledger entries about them: the pseudonym for the id, also in their
        // details, which may name them by their id or by a message key (sealed
        // again, as the row they are bound to changed).
        let about = sqlx::query(
            "SELECT seq, at, event, workflow, occurrence, step, contact_id, channel, detail \
             FROM ledger WHERE contact_id = $1",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for row in &about {
            let seq: i64 = row.try_get("seq")?;
            let mut entry = entry_of(sealer, row)?;
            entry.contact_id = Some(pseudonym.clone());
            entry.detail = scrub(&entry.detail.replace(id, &pseudonym), &needles, &pseudonym);
            sqlx::query("UPDATE ledger SET contact_id = $1, detail = $2 WHERE seq = $3")
                .bind(&pseudonym)
                .bind(sealer.seal(&LEDGER_DETAIL, &entry.row_key(), &entry.detail)?)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        let ledger_entries = u64::try_from(about.len()).unwrap_or(u64::MAX);

        // Cases: the party renamed.
        let cases = sqlx::query("SELECT id, parties FROM cases WHERE parties LIKE $1")
            .bind(format!("%\"{id}\"%"))
            .fetch_all(&mut *tx)
            .await?;
        let mut case_count = 0;
        for row in &cases {
            let case: String = row.try_get("id")?;
            let parties: String = row.try_get("parties")?;
            let Ok(mut parties) = serde_json::from_str::<Vec<String>>(&parties) else {
                continue;
            };
            if !parties.iter().any(|p| p == id) {
                continue;
            }
            for party in &mut parties {
                if party == id {
                    party.clone_from(&pseudonym);
                }
            }
            sqlx::query("UPDATE cases SET parties = $2 WHERE id = $1")
                .bind(&case)
                .bind(serde_json::to_string(&parties).unwrap_or_else(|_| "[]".to_owned()))
                .execute(&mut *tx)
                .await?;
            case_count += 1;
        }

        // Every free text quoting them, whoever it is about.
        for needle in &needles {
            sqlx::query(
                "UPDATE outbox SET last_error = REPLACE(last_error, $1, $2) \
                 WHERE last_error <> REPLACE(last_error, $1, $2)",
            )
            .bind(needle)
            .bind(&pseudonym)
            .execute(&mut *tx)
            .await?;
        }
        if !needles.is_empty() {
            let scrubbed = |text: &str| scrub(text, &needles, &pseudonym);
            self.rewrite_ledger_details(tx, &scrubbed).await?;
            for (table, column) in SEALED_FREE_TEXTS {
                rewrite_sealed(tx, self.backend, sealer, table, column, &scrubbed).await?;
            }
        }

        // The row itself: what they are kept, who they are destroyed.
        sqlx::query(
            "UPDATE contacts SET id = $2, name = $3, phone = NULL, email = NULL, phone_index = NULL, \
             email_index = NULL, channels = '[]', active = FALSE WHERE id = $1",
        )
        .bind(id)
        .bind(&pseudonym)
        .bind(ERASED_TEXT)
        .execute(&mut *tx)
        .await?;

        let summary = ErasureSummary {
            pseudonym: pseudonym.clone(),
            responses: renamed[0],
            messages_kept: u64::try_from(kept.len()).unwrap_or(u64::MAX),
            messages_dropped: dropped,
            ledger_entries,
            cases: case_count,
            files_rewritten: None,
        };
        Ok(Erased {
            summary,
            needles,
            entries,
        })
    }

    /// Every ledger detail `scrubbed` changes, sealed again, page by page.
    async fn rewrite_ledger_details(
        &self,
        tx: &mut AnyConnection,
        scrubbed: &dyn Fn(&str) -> String,
    ) -> Result<(), StoreError> {
        let mut after = 0_i64;
        loop {
            let rows = sqlx::query(
                "SELECT seq, at, event, workflow, occurrence, step, contact_id, channel, detail \
                 FROM ledger WHERE seq > $1 AND detail <> '' ORDER BY seq LIMIT 1000",
            )
            .bind(after)
            .fetch_all(&mut *tx)
            .await?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.try_get("seq")?;
            for row in &rows {
                let entry = entry_of(&self.sealer, row)?;
                let detail = scrubbed(&entry.detail);
                if detail != entry.detail {
                    sqlx::query("UPDATE ledger SET detail = $1 WHERE seq = $2")
                        .bind(
                            self.sealer
                                .seal(&LEDGER_DETAIL, &entry.row_key(), &detail)?,
                        )
                        .bind(row.try_get::<i64, _>("seq")?)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
    }
}

/// The counts of many erasures added up.
fn sum<'a>(
    summaries: impl IntoIterator<Item = &'a ErasureSummary>,
    files_rewritten: Option<bool>,
) -> PurgeSummary {
    summaries.into_iter().fold(
        PurgeSummary {
            contacts: 0,
            responses: 0,
            messages_kept: 0,
            messages_dropped: 0,
            ledger_entries: 0,
            cases: 0,
            files_rewritten,
        },
        |total, one| PurgeSummary {
            contacts: total.contacts + 1,
            responses: total.responses + one.responses,
            messages_kept: total.messages_kept + one.messages_kept,
            messages_dropped: total.messages_dropped + one.messages_dropped,
            ledger_entries: total.ledger_entries + one.ledger_entries,
            cases: total.cases + one.cases,
            files_rewritten,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pseudonym_is_twelve_hex_digits_of_the_random_bytes() {
        assert_eq!(
            pseudonym([0, 1, 0xab, 0xcd, 0xef, 0xff]),
            "erased-0001abcdefff"
        );
    }

    #[test]
    fn short_values_are_not_scrubbed_and_phones_are_also_found_without_plus() {
        let found = needles("Al", Some("+invented-phone"), Some("a@b.c"));
        assert_eq!(found, ["a@b.c", "+invented-phone", "invented-phone"]);
        assert_eq!(
            scrub("from invented-phone to a@b.c", &found, "erased-x"),
            "from erased-x to erased-x"
        );
    }
}
