//! Cases (disputes): their rows, and every change to one applied with its
//! timers, messages and ledger entries in one transaction.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::ledger::{LedgerEntry, append};
use super::outbox::{QueuedMessage, enqueue};
use super::sealing::{CASE_DESCRIPTION, Sealer};
use super::states::PENDING;
use super::timers::{PlannedTimer, insert_timers};
use super::{Store, StoreError, instant, millis, parsed};
use palabre_lang::escalation::{Case, CaseState};
use palabre_lang::places::Places;

/// What a case change does to the case's pending deadline timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropTimers {
    None,
    /// The acknowledgement deadline of the current level only.
    Acknowledge,
    /// Every pending deadline of the case.
    All,
}

/// Everything one case change writes.
#[derive(Debug, Default)]
pub struct CaseWrite<'a> {
    pub timers: &'a [PlannedTimer],
    pub messages: &'a [QueuedMessage],
    pub ledger: &'a [LedgerEntry],
}

/// Which cases [`Store::list_cases`] lists.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Resolved cases too (by default only open and acknowledged ones).
    pub all: bool,
    /// Only cases with a pending deadline due before this instant.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only the cases of this ladder.
    pub workflow: Option<String>,
    /// Only cases at each of these places or below (a place asked for, a token's scope).
    pub within: Vec<String>,
}

/// A case as listed, with its next pending deadline.
#[derive(Debug, Clone)]
pub struct ListedCase {
    pub case: Case,
    /// The earliest of its pending deadline timers; `None` when it has none.
    pub next_deadline: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, workflow, category, place, parties, severity, description, level, state, opened, updated";

fn case_of(sealer: &Sealer, row: &AnyRow) -> Result<Case, StoreError> {
    let id: String = row.try_get("id")?;
    let parties: String = row.try_get("parties")?;
    let state: String = row.try_get("state")?;
    let level: i64 = row.try_get("level")?;
    Ok(Case {
        parties: parsed(
            "cases",
            &id,
            "parties",
            &parties,
            serde_json::from_str(&parties).ok(),
        )?,
        level: parsed("cases", &id, "level", level, usize::try_from(level).ok())?,
        state: parsed("cases", &id, "state", &state, CaseState::parse(&state))?,
        workflow: row.try_get("workflow")?,
        category: row.try_get("category")?,
        place: row.try_get("place")?,
        severity: row.try_get("severity")?,
        description: sealer.open(
            "cases",
            &CASE_DESCRIPTION,
            &id,
            &row.try_get::<String, _>("description")?,
        )?,
        opened: instant(row.try_get("opened")?),
        updated: instant(row.try_get("updated")?),
        id,
    })
}

impl Store {
    /// Inserts a new case under the next free id `PREFIX-0001`, `PREFIX-0002` ...
    /// (the id given in `case` is replaced), with what opening it writes; the ledger
    /// and timer entries name the case by `{case}` until the id is known.
    pub async fn open_case(
        &self,
        case: &Case,
        prefix: &str,
        write: impl FnOnce(&str) -> (Vec<PlannedTimer>, Vec<QueuedMessage>, Vec<LedgerEntry>),
    ) -> Result<String, StoreError> {
        let mut tx = self.write_transaction().await?;
        // The next free number under the prefix. Two ladders may share a prefix,
        // and two workers may open cases at once: an id already taken (or being
        // taken by a transaction that commits first) moves on to the next number.
        let taken: i64 = sqlx::query("SELECT COUNT(*) AS n FROM cases WHERE id LIKE $1")
            .bind(format!("{prefix}-%"))
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        let mut number = taken + 1;
        let id = loop {
            let id = format!("{prefix}-{number:04}");
            let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO cases ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (id) DO NOTHING"
            )))
            .bind(&id)
            .bind(&case.workflow)
            .bind(&case.category)
            .bind(&case.place)
            .bind(serde_json::to_string(&case.parties).unwrap_or_else(|_| "[]".to_owned()))
            .bind(case.severity)
            .bind(self.sealer.seal(&CASE_DESCRIPTION, &id, &case.description)?)
            .bind(i64::try_from(case.level).unwrap_or(0))
            .bind(case.state.as_str())
            .bind(millis(case.opened))
            .bind(millis(case.updated))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                break id;
            }
            number += 1;
        };
        let (timers, messages, ledger) = write(&id);
        insert_timers(&mut tx, self, &timers, case.opened).await?;
        enqueue(&mut tx, self, &messages, case.opened).await?;
        append(&mut tx, self, &ledger).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn case(&self, id: &str) -> Result<Option<Case>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM cases WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|row| case_of(&self.sealer, row))
            .transpose()
    }

    /// Cases of a ladder, oldest first.
    pub async fn cases(&self, workflow: &str) -> Result<Vec<Case>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM cases WHERE workflow = $1 ORDER BY opened, id"
        )))
        .bind(workflow)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| case_of(&self.sealer, row)).collect()
    }

    /// The cases `filter` keeps, oldest first, each with its next pending
    /// deadline: one query, the filters in SQL.
    pub async fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<ListedCase>, StoreError> {
        let mut conditions: Vec<String> = Vec::new();
        let mut next = 1;
        let mut param = || {
            let p = format!("${next}");
            next += 1;
            p
        };
        if !filter.all {
            conditions.push(format!("c.state <> '{}'", CaseState::Resolved.as_str()));
        }
        if filter.workflow.is_some() {
            conditions.push(format!("c.workflow = {}", param()));
        }
        for _ in &filter.within {
            let (exact, below) = (param(), param());
            conditions.push(format!("(c.place = {exact} OR c.place LIKE {below})"));
        }
        let overdue = filter.overdue_at.map(|_| param());
        let mut sql = format!(
            "SELECT c.id, c.workflow, c.category, c.place, c.parties, c.severity, c.description, \
             c.level, c.state, c.opened, c.updated, \
             (SELECT MIN(t.due) FROM timers t WHERE t.workflow = c.workflow \
              AND t.state = '{PENDING}' AND t.step LIKE c.id || '/%') AS next_deadline \
             FROM cases c"
        );
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        if let Some(overdue) = overdue {
            sql = format!("SELECT * FROM ({sql}) listed WHERE next_deadline < {overdue}");
        }
        sql.push_str(" ORDER BY opened, id");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(workflow) = &filter.workflow {
            query = query.bind(workflow);
        }
        for place in &filter.within {
            query = query.bind(place).bind(format!("{place}/%"));
        }
        if let Some(at) = filter.overdue_at {
            query = query.bind(millis(at));
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut listed = Vec::with_capacity(rows.len());
        for row in &rows {
            let case = case_of(&self.sealer, row)?;
            // LIKE reads `_` as any one character: keep only true descendants.
            if !filter
                .within
                .iter()
                .all(|place| Places::contains(place, &case.place))
            {
                continue;
            }
            let next_deadline: Option<i64> = row.try_get("next_deadline")?;
            listed.push(ListedCase {
                case,
                next_deadline: next_deadline.map(instant),
            });
        }
        Ok(listed)
    }

    /// Saves `case` (level, state) if nobody changed it since `seen` (its `updated`
    /// when read), with its timers, messages and ledger entries; false if refused.
    pub async fn update_case(
        &self,
        case: &Case,
        seen: DateTime<Utc>,
        drop: DropTimers,
        write: CaseWrite<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_transaction().await?;
        let updated = sqlx::query(
            "UPDATE cases SET level = $1, state = $2, updated = $3 WHERE id = $4 AND updated = $5",
        )
        .bind(i64::try_from(case.level).unwrap_or(0))
        .bind(case.state.as_str())
        .bind(millis(case.updated))
        .bind(&case.id)
        .bind(millis(seen))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let pattern = match drop {
            DropTimers::None => None,
            DropTimers::Acknowledge => Some(format!("{}/L{}-%/ack", case.id, case.level)),
            DropTimers::All => Some(format!("{}/%", case.id)),
        };
        if let Some(pattern) = pattern {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM timers WHERE workflow = $1 AND state = '{PENDING}' AND step LIKE $2"
            )))
            .bind(&case.workflow)
            .bind(pattern)
            .execute(&mut *tx)
            .await?;
        }
        insert_timers(&mut tx, self, write.timers, case.updated).await?;
        enqueue(&mut tx, self, write.messages, case.updated).await?;
        append(&mut tx, self, write.ledger).await?;
        tx.commit().await?;
        Ok(true)
    }
}
