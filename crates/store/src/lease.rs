//! Leases: a worker claims due rows (timers, outbox messages) for a while, so
//! that no other worker takes them meanwhile and a crashed worker's rows come
//! back when its lease runs out.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::any::AnyRow;

use super::{Backend, Store, StoreError, millis};

/// What a claim takes: rows of `table` in `state` whose `time` column is due.
pub(crate) struct Claim<'a> {
    pub table: &'a str,
    pub state: &'a str,
    pub time: &'a str,
    pub returning: &'a str,
}

impl Store {
    /// Leases up to `limit` rows that are due at `now`, oldest first, to `owner`
    /// until `now + lease`, and returns them. On PostgreSQL, rows another worker is
    /// claiming are skipped, not waited for.
    pub(crate) async fn claim(
        &self,
        claim: Claim<'_>,
        now: DateTime<Utc>,
        owner: &str,
        lease: TimeDelta,
        limit: i64,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let Claim {
            table,
            state,
            time,
            returning,
        } = claim;
        let sql = format!(
            "UPDATE {table} SET lease_owner = $1, lease_until = $2, updated = $3 WHERE id IN (\
               SELECT id FROM {table} WHERE state = '{state}' AND {time} <= $3 \
               AND (lease_until IS NULL OR lease_until < $3) ORDER BY {time} LIMIT $4 {lock}) \
             RETURNING {returning}"
        );
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(millis(now + lease))
            .bind(millis(now))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }
}
