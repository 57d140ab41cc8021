//! API tokens: id, role, scope, and a hash of the secret (never the secret).

use chrono::{DateTime, Utc};
use sqlx::Row;

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
}

impl Store {
    pub async fn add_token(&self, token: &StoredToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, secret_sha256, role, scope, label, created) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.id)
        .bind(&token.secret_sha256)
        .bind(&token.role)
        .bind(&token.scope)
        .bind(&token.label)
        .bind(millis(token.created))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn token(&self, id: &str) -> Result<Option<StoredToken>, StoreError> {
        let row = sqlx::query(
            "SELECT id, secret_sha256, role, scope, label, created FROM api_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(StoredToken {
                id: r.try_get("id")?,
                secret_sha256: r.try_get("secret_sha256")?,
                role: r.try_get("role")?,
                scope: r.try_get("scope")?,
                label: r.try_get("label")?,
                created: instant(r.try_get("created")?),
            })
        })
        .transpose()
    }
}
