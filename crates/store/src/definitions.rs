//! The definitions in force: the last valid copy of the workflows folder, kept
//! so that a worker restarted on a folder that has become invalid (a typo saved
//! before a power cut) still runs every commune on the last good version; and
//! the folder's health (invalid since when, and why), which `status`, `/status`
//! and `/metrics` report.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Store, StoreError, instant, millis, parsed};

/// One file of a kept copy of the workflows folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionFile {
    /// Relative to the workflows folder (`meetings/koro.yaml`).
    pub path: String,
    pub text: String,
}

/// The last valid copy of the workflows folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionsCopy {
    pub fingerprint: String,
    pub taken: DateTime<Utc>,
    pub files: Vec<DefinitionFile>,
}

/// Whether the workflows folder is valid; if not, since when and why (the
/// diagnostics as `validate` prints them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct DefinitionsHealth {
    /// When the folder was first found invalid; `None` while it is valid.
    pub invalid_since: Option<DateTime<Utc>>,
    pub problems: String,
    /// When the definitions in force were taken from the folder.
    pub in_force_since: Option<DateTime<Utc>>,
}

impl Store {
    /// Keeps `files` as the last valid copy of the workflows folder, and marks the
    /// folder valid.
    pub async fn keep_valid_definitions(
        &self,
        fingerprint: &str,
        files: &[DefinitionFile],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let files = serde_json::to_string(files).map_err(|e| StoreError::Corrupt {
            table: "definitions_in_force",
            id: "1".to_owned(),
            reason: format!("the files cannot be written as JSON: {e}"),
        })?;
        sqlx::query(
            "INSERT INTO definitions_in_force (id, fingerprint, taken, files, invalid_since, problems) \
             VALUES (1, $1, $2, $3, NULL, '') ON CONFLICT (id) DO UPDATE \
             SET fingerprint = $1, taken = $2, files = $3, invalid_since = NULL, problems = ''",
        )
        .bind(fingerprint)
        .bind(millis(now))
        .bind(files)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks the workflows folder invalid (since `now`, unless it already was),
    /// with its problems. Nothing happens before a valid copy was ever kept.
    pub async fn mark_definitions_invalid(
        &self,
        problems: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE definitions_in_force SET problems = $1, \
             invalid_since = COALESCE(invalid_since, $2) WHERE id = 1",
        )
        .bind(problems)
        .bind(millis(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The last valid copy of the workflows folder, if one was ever kept.
    pub async fn valid_definitions(&self) -> Result<Option<DefinitionsCopy>, StoreError> {
        let Some(row) =
            sqlx::query("SELECT fingerprint, taken, files FROM definitions_in_force WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let files: String = row.try_get("files")?;
        Ok(Some(DefinitionsCopy {
            fingerprint: row.try_get("fingerprint")?,
            taken: instant(row.try_get("taken")?),
            files: parsed(
                "definitions_in_force",
                "1",
                "files",
                "(JSON)",
                serde_json::from_str(&files).ok(),
            )?,
        }))
    }

    /// Whether the workflows folder is valid, as the last worker found it.
    pub async fn definitions_health(&self) -> Result<DefinitionsHealth, StoreError> {
        let row = sqlx::query(
            "SELECT taken, invalid_since, problems FROM definitions_in_force WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => DefinitionsHealth::default(),
            Some(row) => DefinitionsHealth {
                invalid_since: row.try_get::<Option<i64>, _>("invalid_since")?.map(instant),
                problems: row.try_get("problems")?,
                in_force_since: Some(instant(row.try_get("taken")?)),
            },
        })
    }
}
