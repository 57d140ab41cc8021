//! Secrets the server makes for itself and keeps across restarts and workers
//! (the key that signs answer links). The first worker to ask stores its
//! candidate; every later one gets that same value back.

use sqlx::Row;

use super::sealing::SECRET_VALUE;
use super::{Store, StoreError};

impl Store {
    /// The secret `name`: the one stored, or `candidate`, stored now, if there is
    /// none yet (two workers asking at once both get the first stored).
    pub async fn kept_secret(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(self.sealer.seal(&SECRET_VALUE, name, candidate)?)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT value FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        self.sealer.open(
            "secrets",
            &SECRET_VALUE,
            name,
            &row.try_get::<String, _>("value")?,
        )
    }
}
