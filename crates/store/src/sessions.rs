//! Dashboard sessions: a browser signed in with an API token holds a cookie
//! whose secret's SHA-256 is kept here with the token's id, the secret its
//! forms carry against cross-site requests, and when it ends. The token itself
//! is checked again on every request by its caller (a revoked token ends its
//! sessions at once); this module only keeps the rows.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError, instant, millis};

/// A stored session, without its cookie's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// Hex SHA-256 of the cookie's secret.
    pub id_sha256: String,
    /// The API token it was opened with.
    pub token_id: String,
    /// What every form of the session carries back (compared in constant time).
    pub csrf: String,
    pub created: DateTime<Utc>,
    /// From then on the session is refused.
    pub expires: DateTime<Utc>,
}

impl Store {
    /// Keeps a new session, and forgets the sessions that ended before `now`.
    pub async fn add_session(
        &self,
        session: &StoredSession,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        sqlx::query("DELETE FROM web_sessions WHERE expires <= $1")
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO web_sessions (id_sha256, token_id, csrf, created, expires) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.id_sha256)
        .bind(&session.token_id)
        .bind(&session.csrf)
        .bind(millis(session.created))
        .bind(millis(session.expires))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session whose secret has this SHA-256, ended or not.
    pub async fn session(&self, id_sha256: &str) -> Result<Option<StoredSession>, StoreError> {
        let row = sqlx::query(
            "SELECT id_sha256, token_id, csrf, created, expires FROM web_sessions \
             WHERE id_sha256 = $1",
        )
        .bind(id_sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(StoredSession {
                id_sha256: r.try_get("id_sha256")?,
                token_id: r.try_get("token_id")?,
                csrf: r.try_get("csrf")?,
                created: instant(r.try_get("created")?),
                expires: instant(r.try_get("expires")?),
            })
        })
        .transpose()
    }

    /// Ends a session (sign-out): whether there was one.
    pub async fn end_session(&self, id_sha256: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE id_sha256 = $1")
            .bind(id_sha256)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
