//! API tokens: id, role, scope, and a hash of the secret (never the secret);
//! when each expires, was revoked, and was last accepted.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::Row;

use super::sealing::{Sealer, TOKEN_LABEL};
use super::{Store, StoreError, instant, millis};

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub id: String,
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
    pub role: String,
    pub scope: String,
    pub label: String,
    pub created: DateTime<Utc>,
    /// From then on the token is refused.
    pub expires: Option<DateTime<Utc>>,
    /// When it was revoked: refused from then on, the row kept for the record.
    pub revoked: Option<DateTime<Utc>>,
    /// When it was last accepted, to the minute (see [`Store::token_used`]).
    pub last_used: Option<DateTime<Utc>>,
}

impl StoredToken {
    /// Whether the token may be accepted at `now`: neither revoked nor expired.
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked.is_none() && self.expires.is_none_or(|expires| now < expires)
    }
}

/// How stale `last_used` may grow before an accepted request writes it again.
pub const LAST_USED_PRECISION: TimeDelta = TimeDelta::minutes(1);

const TOKEN_COLUMNS: &str =
    "id, secret_sha256, role, scope, label, created, expires, revoked, last_used";

fn token_from_row(sealer: &Sealer, r: &sqlx::any::AnyRow) -> Result<StoredToken, StoreError> {
    let id: String = r.try_get("id")?;
    let at = |column: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(r.try_get::<Option<i64>, _>(column)?.map(instant))
    };
    Ok(StoredToken {
        secret_sha256: r.try_get("secret_sha256")?,
        role: r.try_get("role")?,
        scope: r.try_get("scope")?,
        label: sealer.open(
            "api_tokens",
            &TOKEN_LABEL,
            &id,
            &r.try_get::<String, _>("label")?,
        )?,
        created: instant(r.try_get("created")?),
        expires: at("expires")?,
        revoked: at("revoked")?,
        last_used: at("last_used")?,
        id,
    })
}

impl Store {
    pub async fn add_token(&self, token: &StoredToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens \
             (id, secret_sha256, role, scope, label, created, expires, revoked, last_used) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&token.id)
        .bind(&token.secret_sha256)
        .bind(&token.role)
        .bind(&token.scope)
        .bind(self.sealer.seal(&TOKEN_LABEL, &token.id, &token.label)?)
        .bind(millis(token.created))
        .bind(token.expires.map(millis))
        .bind(token.revoked.map(millis))
        .bind(token.last_used.map(millis))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn token(&self, id: &str) -> Result<Option<StoredToken>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| token_from_row(&self.sealer, &r)).transpose()
    }

    /// Every token, revoked and expired ones included, oldest first.
    pub async fn tokens(&self) -> Result<Vec<StoredToken>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| token_from_row(&self.sealer, r))
            .collect()
    }

    /// Revokes a token at `now`: `None` if there is none by that id, else whether
    /// this revoked it (false: it already was). The row stays, for the record.
    pub async fn revoke_token(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, StoreError> {
        let done =
            sqlx::query("UPDATE api_tokens SET revoked = $2 WHERE id = $1 AND revoked IS NULL")
                .bind(id)
                .bind(millis(now))
                .execute(&self.pool)
                .await?;
        if done.rows_affected() > 0 {
            return Ok(Some(true));
        }
        Ok(self.token(id).await?.map(|_| false))
    }

    /// Records that `token` was accepted at `now`, unless its `last_used` is
    /// already within [`LAST_USED_PRECISION`]: at most one write a minute per
    /// token, not one per request.
    pub async fn token_used(
        &self,
        token: &StoredToken,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if token
            .last_used
            .is_some_and(|last| now - last < LAST_USED_PRECISION)
        {
            return Ok(());
        }
        sqlx::query("UPDATE api_tokens SET last_used = $2 WHERE id = $1")
            .bind(&token.id)
            .bind(millis(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
