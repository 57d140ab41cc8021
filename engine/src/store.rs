//! The durable store: one schema, two backends.
//!
//! SQLite (a file, WAL) is the embedded default; PostgreSQL serves several
//! workers sharing one database. Both are reached through sqlx's `Any` driver
//! with runtime queries written once in the SQL both accept (`$1` parameters,
//! `ON CONFLICT`), and each backend has its own migrations folder under
//! `migrations/`, embedded in the binary at build time.

use serde::Serialize;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::{Executor, Row};

use crate::contacts::Contact;
use crate::workflow::Channel;

/// The default database: a SQLite file in the working folder.
pub const DEFAULT_URL: &str = "sqlite://palabre.db";

/// Which database is behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL '{0}': use sqlite://FILE or postgres://...")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("row '{id}' in table {table} is corrupt: {reason}")]
    Corrupt {
        table: &'static str,
        id: String,
        reason: String,
    },
}

/// What an import changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// A connection pool to the palabre database, migrated to the current schema.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Adds `mode=rwc` to a SQLite URL so that a missing file is created.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Whether the database at `url` already exists. Only a SQLite file can be missing;
/// read-only commands use this to avoid creating one as a side effect.
pub fn exists(url: &str) -> bool {
    match url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Some(rest) => {
            let path = rest.split('?').next().unwrap_or(rest);
            path == ":memory:" || std::path::Path::new(path).exists()
        }
        None => true,
    }
}

const CONTACT_COLUMNS: &str = "id, name, roles, place, phone, email, language, channels";

impl Store {
    /// Connects to `url` (`sqlite://palabre.db`, `postgres://...`) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            (Backend::Sqlite, sqlite_url(url))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let options =
            AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 4 } else { 8 });
        let options = if backend == Backend::Sqlite {
            options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;")
                        .await?;
                    Ok(())
                })
            })
        } else {
            options
        };
        let pool = options.connect(&url).await?;
        match backend {
            Backend::Sqlite => {
                pool.execute("PRAGMA journal_mode = WAL").await?;
                sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
            }
            Backend::Postgres => sqlx::migrate!("../migrations/postgres").run(&pool).await?,
        }
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Inserts new contacts and updates changed ones, in one transaction; re-importing
    /// the same file changes nothing and never duplicates.
    pub async fn upsert_contacts(&self, contacts: &[Contact]) -> Result<ImportSummary, StoreError> {
        let mut summary = ImportSummary::default();
        let mut tx = self.pool.begin().await?;
        for contact in contacts {
            let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1"
            )))
            .bind(&contact.id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| contact_from_row(&row))
            .transpose()?;
            let roles = json_list(contact.roles.iter().map(String::as_str));
            let channels = json_list(contact.channels.iter().map(|c| c.as_str()));
            let sql = match existing {
                Some(ref stored) if stored == contact => {
                    summary.unchanged += 1;
                    continue;
                }
                Some(_) => {
                    summary.updated += 1;
                    "UPDATE contacts SET name = $2, roles = $3, place = $4, phone = $5, email = $6, \
                     language = $7, channels = $8 WHERE id = $1"
                }
                None => {
                    summary.inserted += 1;
                    "INSERT INTO contacts (id, name, roles, place, phone, email, language, channels) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                }
            };
            sqlx::query(sql)
                .bind(&contact.id)
                .bind(&contact.name)
                .bind(roles)
                .bind(&contact.place)
                .bind(contact.phone.as_deref())
                .bind(contact.email.as_deref())
                .bind(&contact.language)
                .bind(channels)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(summary)
    }

    /// The whole directory, ordered by id.
    pub async fn contacts(&self) -> Result<Vec<Contact>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(contact_from_row).collect()
    }
}

fn json_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    serde_json::Value::Array(
        items
            .map(|s| serde_json::Value::String(s.to_owned()))
            .collect(),
    )
    .to_string()
}

fn contact_from_row(row: &sqlx::any::AnyRow) -> Result<Contact, StoreError> {
    let id: String = row.try_get("id")?;
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "contacts",
        id: id.clone(),
        reason,
    };
    let list = |column: &str| -> Result<Vec<String>, StoreError> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(|e| corrupt(format!("{column}: {e}")))
    };
    let channels = list("channels")?
        .iter()
        .map(|c| Channel::parse(c).ok_or_else(|| corrupt(format!("unknown channel '{c}'"))))
        .collect::<Result<_, _>>()?;
    Ok(Contact {
        roles: list("roles")?,
        channels,
        name: row.try_get("name")?,
        place: row.try_get("place")?,
        phone: row.try_get("phone")?,
        email: row.try_get("email")?,
        language: row.try_get("language")?,
        id,
    })
}
