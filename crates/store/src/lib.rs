//! The durable store: one schema, two backends.
//!
//! `contacts` holds the directory; `timers`, `outbox` and `ledger` hold the
//! runtime: what is due, what is to be delivered, and what happened.
//!
//! SQLite (a file, WAL) is the embedded default; PostgreSQL serves several
//! workers sharing one database. Both are reached through sqlx's `Any` driver
//! with runtime queries written once in the SQL both accept (`$1` parameters,
//! `ON CONFLICT`), and each backend has its own migrations folder under
//! `migrations/`, embedded in the binary at build time.

use serde::Serialize;
use sqlx::AnyPool;
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

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
    pub(crate) pool: AnyPool,
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

/// An instant as stored: milliseconds since the Unix epoch.
pub(crate) fn millis(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored instant back (out-of-range values clamp to the epoch rather than panic).
pub(crate) fn instant(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A stored value read back as what it means, or the row is corrupt: a value no
/// version of palabre writes is reported with its table and row, never replaced
/// by a default.
pub(crate) fn parsed<T>(
    table: &'static str,
    id: impl Into<String>,
    column: &str,
    stored: impl std::fmt::Display,
    read: Option<T>,
) -> Result<T, StoreError> {
    read.ok_or_else(|| StoreError::Corrupt {
        table,
        id: id.into(),
        reason: format!("{column} '{stored}' is not a value palabre writes"),
    })
}

/// Placeholders for the values of a statement, produced in the order the values
/// are bound: `?` on SQLite, `$1, $2, ...` on PostgreSQL. (SQLite looks numbered
/// parameters up by a linear scan per bind, which makes a multi-row statement with
/// thousands of `$n` quadratic; anonymous `?` are bound positionally.)
pub(crate) struct Params {
    backend: Backend,
    count: usize,
}

impl Params {
    pub(crate) fn new(backend: Backend) -> Params {
        Params { backend, count: 0 }
    }

    /// The next placeholder.
    pub(crate) fn next(&mut self) -> String {
        self.count += 1;
        match self.backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${}", self.count),
        }
    }

    /// `(p, p, ...)` for one row of `columns` values.
    pub(crate) fn row(&mut self, columns: usize) -> String {
        let row: Vec<String> = (0..columns).map(|_| self.next()).collect();
        format!("({})", row.join(", "))
    }

    /// `(p, ...), (p, ...)` for `rows` rows of `columns` values.
    pub(crate) fn rows(&mut self, rows: usize, columns: usize) -> String {
        (0..rows)
            .map(|_| self.row(columns))
            .collect::<Vec<_>>()
            .join(", ")
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
                sqlx::migrate!("../../migrations/sqlite").run(&pool).await?;
            }
            Backend::Postgres => {
                sqlx::migrate!("../../migrations/postgres")
                    .run(&pool)
                    .await?
            }
        }
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a transaction that reads first and writes later would
    /// otherwise fail at once, without waiting, when another connection wrote in
    /// between.
    pub(crate) async fn write_transaction(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

mod cases;
mod changes;
mod contacts;
mod lease;
mod ledger;
mod milestones;
mod outbox;
mod replies;
mod states;
mod timers;
mod tokens;

pub use cases::{CaseWrite, DropTimers};
pub use ledger::{LedgerEntry, LedgerEvent};
pub use outbox::ReceiptSubject;
pub use outbox::{ClaimedMessage, DeliveryOutcome, DeliveryRecord, Fallback, QueuedMessage};
pub use timers::{
    ChannelCounts, ClaimedTimer, PlannedTimer, StatusCounts, TimerCompletion, TimerOutcome,
};
pub use tokens::StoredToken;
