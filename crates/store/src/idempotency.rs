//! The answers to requests sent with an idempotency key: a key is claimed by
//! its first request (within a scope, the API token), answered once, and the
//! stored answer replayed to the same request sent again within the key's life.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::Row;

use super::sealing::KEPT_ANSWER;
use super::{Store, StoreError, millis};

/// An answer kept for a key: its HTTP status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key was free: this request owns it, and must
    /// [`complete`](Store::complete_idempotency_key) or
    /// [`release`](Store::release_idempotency_key) it.
    Claimed,
    /// The key was taken, by a request of this `fingerprint`; `answer` is
    /// `None` while that request is still being answered.
    Taken {
        fingerprint: String,
        answer: Option<StoredAnswer>,
    },
}

impl Store {
    /// Claims `key` in `scope` for a request of `fingerprint` at `now`. Keys
    /// older than `life` are forgotten first (all of them, so the table stays
    /// small), and so is this key if its first request claimed it more than
    /// `abandoned` ago and never answered (a worker that stopped midway).
    pub async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        life: TimeDelta,
        abandoned: TimeDelta,
    ) -> Result<IdempotencyClaim, StoreError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE created < $1")
            .bind(millis(now - life))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "DELETE FROM idempotency_keys \
             WHERE scope = $1 AND idem_key = $2 AND status IS NULL AND created < $3",
        )
        .bind(scope)
        .bind(key)
        .bind(millis(now - abandoned))
        .execute(&self.pool)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, idem_key, fingerprint, created) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (scope, idem_key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .bind(millis(now))
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() > 0 {
            return Ok(IdempotencyClaim::Claimed);
        }
        let row = sqlx::query(
            "SELECT fingerprint, status, content_type, body FROM idempotency_keys \
             WHERE scope = $1 AND idem_key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            // Forgotten between the insert and the read: taken by nobody now,
            // but not ours either; the caller may simply try again.
            return Ok(IdempotencyClaim::Taken {
                fingerprint: fingerprint.to_owned(),
                answer: None,
            });
        };
        let status: Option<i64> = row.try_get("status")?;
        let answer = match status {
            Some(status) => Some(StoredAnswer {
                status: u16::try_from(status).map_err(|_| StoreError::Corrupt {
                    table: "idempotency_keys",
                    id: key.to_owned(),
                    reason: format!("status {status}"),
                })?,
                content_type: row
                    .try_get::<Option<String>, _>("content_type")?
                    .unwrap_or_default(),
                body: self
                    .sealer
                    .open_some(
                        "idempotency_keys",
                        &KEPT_ANSWER,
                        &format!("{scope}|{key}"),
                        row.try_get::<Option<String>, _>("body")?.as_deref(),
                    )?
                    .unwrap_or_default(),
            }),
            None => None,
        };
        Ok(IdempotencyClaim::Taken {
            fingerprint: row.try_get("fingerprint")?,
            answer,
        })
    }

    /// Keeps the answer to the request that claimed `key` in `scope`.
    pub async fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        answer: &StoredAnswer,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $3, content_type = $4, body = $5 \
             WHERE scope = $1 AND idem_key = $2",
        )
        .bind(scope)
        .bind(key)
        .bind(i64::from(answer.status))
        .bind(&answer.content_type)
        .bind(
            self.sealer
                .seal(&KEPT_ANSWER, &format!("{scope}|{key}"), &answer.body)?,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Frees `key` in `scope` without an answer (the request failed in a way
    /// worth trying again), so that its next request runs.
    pub async fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND status IS NULL",
        )
        .bind(scope)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
