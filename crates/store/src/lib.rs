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
use sqlx::AnyConnection;
use sqlx::AnyPool;
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

use sealing::Sealer;

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
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(sqlx::migrate::MigrateError),
    /// The database server cannot be reached (down, wrong host or port).
    #[error("cannot reach the database at {at}: {reason}")]
    Unreachable { at: String, reason: String },
    /// The server answers, but has no database of that name.
    #[error(
        "there is no database '{name}' at {at}: create it (createdb {name}) or name another one in the URL"
    )]
    NoDatabase { name: String, at: String },
    /// The key given is not the one the database was sealed with.
    #[error(
        "the key given (key {given}) is not this database's key (key {expected}): give the key it was encrypted with (--key-file or PALABRE_KEY_FILE); nothing was read or written"
    )]
    WrongKey { given: String, expected: String },
    /// A key rotation was interrupted: the database holds values under both keys.
    #[error(
        "a key rotation from key {from} to key {to} did not finish: run `palabre key rotate` again with both keys to finish it; nothing was read or written"
    )]
    RotationUnfinished { from: String, to: String },
    /// A rotation asked for while another, to a third key, is unfinished.
    #[error(
        "a rotation to key {unfinished} did not finish: finish it first, with that key as the new one"
    )]
    RotationToAnother { unfinished: String },
    /// Encrypting a value failed (the system gave no randomness).
    #[error("encryption failed: {0}")]
    Sealing(String),
    #[error("row '{id}' in table {table} is corrupt: {reason}")]
    Corrupt {
        table: &'static str,
        id: String,
        reason: String,
    },
}

// Not `#[from]`: the error's text is already in ours, and a source would print
// it again in every error chain.
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        StoreError::Database(error)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> StoreError {
        StoreError::Migration(error)
    }
}

/// Where a PostgreSQL URL points, for people: `host:port`, or the socket folder.
fn server_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if !host_port.is_empty() {
        return if host_port.contains(':') {
            host_port.to_owned()
        } else {
            format!("{host_port}:5432")
        };
    }
    url.split_once("host=")
        .map(|(_, socket)| socket.split('&').next().unwrap_or(socket).to_owned())
        .unwrap_or_else(|| "localhost:5432".to_owned())
}

/// What a first connection's failure means, said once and without the server's
/// internal details.
fn first_connection_failed(url: &str, error: sqlx::Error) -> StoreError {
    let at = server_of(url);
    if let Some(database) = error.as_database_error()
        && database.code().as_deref() == Some("3D000")
    {
        let name = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('/'))
            .map(|(_, path)| path.split('?').next().unwrap_or(path).to_owned())
            .unwrap_or_default();
        return StoreError::NoDatabase { name, at };
    }
    let reason = match &error {
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            std::io::ErrorKind::TimedOut => "no answer".to_owned(),
            std::io::ErrorKind::NotFound => "no server there".to_owned(),
            _ => io.to_string(),
        },
        sqlx::Error::Database(database) => database.message().to_owned(),
        other => other.to_string(),
    };
    StoreError::Unreachable { at, reason }
}

/// What an import changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// A connection pool to the palabre database, migrated to the current schema,
/// with the key its personal values are sealed under.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    pub(crate) sealer: std::sync::Arc<Sealer>,
    sealed_at_opening: u64,
    /// On PostgreSQL, where to listen for other workers' news ([`wakeup`]).
    listen_url: Option<String>,
    /// This store's name in the news it announces.
    announcer: std::sync::Arc<str>,
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

/// How a batch statement (an `UPDATE` or `INSERT` of many rows at once) tells
/// which rows it touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Touched {
    /// By its count: when every row was touched, as when no other worker holds
    /// them, no ids cross back from the database (on SQLite each row returned
    /// is a message between threads); when not, the caller gives up.
    Counted,
    /// By the ids it returns (`RETURNING`).
    Returned,
}

impl Touched {
    /// The clause to end the statement with: ` RETURNING {column}`, or nothing.
    pub(crate) fn clause(self, column: &str) -> String {
        match self {
            Touched::Counted => String::new(),
            Touched::Returned => format!(" RETURNING {column}"),
        }
    }

    /// Runs a statement ending with [`Touched::clause`] for `ids`; the ids it
    /// touched, or `None` when it was counted and came short.
    pub(crate) async fn run<'q, 'i>(
        self,
        conn: &mut AnyConnection,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
        ids: impl ExactSizeIterator<Item = &'i str>,
    ) -> Result<Option<Vec<String>>, StoreError> {
        use sqlx::Row;
        match self {
            Touched::Counted => {
                let expected = ids.len();
                let touched = query.execute(&mut *conn).await?.rows_affected();
                Ok((usize::try_from(touched).ok() == Some(expected))
                    .then(|| ids.map(str::to_owned).collect()))
            }
            Touched::Returned => {
                let rows = query.fetch_all(&mut *conn).await?;
                let ids = rows
                    .iter()
                    .map(|row| row.try_get::<String, _>(0))
                    .collect::<Result<_, _>>()?;
                Ok(Some(ids))
            }
        }
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
    /// Connects to `url` (`sqlite://palabre.db`, `postgres://...`), applies
    /// pending migrations and checks `key` against the database's: a wrong key,
    /// or an unfinished rotation, is refused before anything is read or written.
    /// A database never sealed (new, or from a version before encryption) is
    /// sealed under `key` now, in one transaction
    /// ([`Store::rows_sealed_at_opening`] says how many rows were).
    pub async fn connect(url: &str, key: &Key) -> Result<Store, StoreError> {
        let (pool, backend) = connect_pool(url).await?;
        let sealer = Sealer::new(key)?;
        let sealed_at_opening = rekey::open_sealing(&pool, backend, &sealer).await?;
        Ok(Store {
            pool,
            backend,
            sealer: std::sync::Arc::new(sealer),
            sealed_at_opening,
            listen_url: (backend == Backend::Postgres).then(|| url.to_owned()),
            announcer: wakeup::announcer_name().into(),
        })
    }

    /// How many rows held values in clear that this opening sealed (0 but the
    /// first time a database is opened with a key).
    pub fn rows_sealed_at_opening(&self) -> u64 {
        self.sealed_at_opening
    }
}

async fn scrubbing_connection(
    pool: &AnyPool,
    backend: Backend,
) -> Result<sqlx::AnyConnection, StoreError> {
    let mut conn = pool.acquire().await?.detach();
    if backend == Backend::Sqlite {
        conn.execute("PRAGMA secure_delete = ON").await?;
    }
    Ok(conn)
}

/// Rewrites a SQLite database file (`VACUUM`: free pages holding old texts go)
/// and empties its WAL into it; whether the WAL checkpoint completed (not while
/// another process reads the database: the old bytes may then stay in the
/// `-wal` file until its next checkpoint).
async fn rewrite_sqlite_file(conn: &mut sqlx::AnyConnection) -> Result<bool, StoreError> {
    use sqlx::Row;
    conn.execute("VACUUM").await?;
    let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&mut *conn)
        .await?;
    let busy: i64 = row.try_get(0)?;
    Ok(busy == 0)
}

/// A pool to `url`, migrated.
async fn connect_pool(url: &str) -> Result<(AnyPool, Backend), StoreError> {
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
                // A 16 MiB page cache per connection (SQLite's default is 2 MiB):
                // a busy outbox's pages stay in memory rather than being read
                // again from the file at every statement.
                conn.execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384;",
                )
                .await?;
                Ok(())
            })
        })
    } else {
        options
    };
    if backend == Backend::Postgres {
        // One connection first: a server that is down, or a database that does
        // not exist, is said at once, not after the pool's half minute of retries.
        use sqlx::Connection;
        let first = sqlx::AnyConnection::connect(&url)
            .await
            .map_err(|e| first_connection_failed(&url, e))?;
        first.close().await?;
    }
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
    Ok((pool, backend))
}

impl Store {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether two connections write at once (PostgreSQL), rather than take
    /// turns for one lock (SQLite, where a write waiting for another only
    /// waits, in the busy handler's sleeps).
    pub fn writes_side_by_side(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// A connection of its own, out of the pool, for work that must leave no
    /// old bytes behind: on SQLite with `secure_delete` on (what it frees or
    /// overwrites is zeroed). Close it after, rather than give it back.
    pub(crate) async fn scrubbing_connection(&self) -> Result<sqlx::AnyConnection, StoreError> {
        scrubbing_connection(&self.pool, self.backend).await
    }

    /// Runs `work` in a write transaction, first learning what its batch
    /// statements touched by their counts alone ([`Touched::Counted`]); when a
    /// count comes short (rows another worker took meanwhile), `work` gives up,
    /// and is done again in a new transaction reading the ids back
    /// ([`Touched::Returned`]).
    pub(crate) async fn write_batches<T: Default>(
        &self,
        work: impl AsyncFn(&mut AnyConnection, Touched) -> Result<Option<T>, StoreError>,
    ) -> Result<T, StoreError> {
        let mut tx = self.write_transaction().await?;
        if let Some(done) = work(&mut tx, Touched::Counted).await? {
            tx.commit().await?;
            return Ok(done);
        }
        tx.rollback().await?;
        let mut tx = self.write_transaction().await?;
        // Reading ids back never comes short.
        let done = work(&mut tx, Touched::Returned).await?.unwrap_or_default();
        tx.commit().await?;
        Ok(done)
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

    /// Closes the pool. A SQLite database is checkpointed first
    /// (`PRAGMA wal_checkpoint(TRUNCATE)`): what the `-wal` file holds is written
    /// into the database file and the `-wal` file emptied, so that after a clean
    /// stop the `.db` file alone holds everything and can be copied as it is.
    ///
    /// The checkpoint runs on a connection of its own that does not wait: while
    /// another process reads the database (a `palabre status` while `serve`
    /// runs, or the reverse) it gives up at once instead of holding up that
    /// process's writes, and the data stays safe in the `-wal` file, where every
    /// opening finds it; SQLite checkpoints again when the last connection to the
    /// file closes.
    pub async fn close(&self) {
        if self.backend == Backend::Sqlite && !self.pool.is_closed() {
            use sqlx::Connection;
            if let Ok(conn) = self.pool.acquire().await {
                let mut conn = conn.detach();
                if conn.execute("PRAGMA busy_timeout = 0").await.is_ok() {
                    let _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await;
                }
                let _ = conn.close().await;
            }
        }
        self.pool.close().await;
    }
}

mod backup;
mod cases;
mod changes;
mod contacts;
mod definitions;
pub mod erasure;
mod idempotency;
mod lease;
mod ledger;
mod milestones;
mod outbox;
mod rekey;
mod replies;
pub mod retention;
pub mod sealing;
mod secrets;
mod sessions;
mod states;
mod timers;
mod tokens;
mod wakeup;

pub use backup::{is_palabre_database, sqlite_file, sqlite_in_use, sqlite_url_of};
pub use cases::{CaseFilter, CaseWrite, DropTimers, ListedCase};
pub use contacts::{DirectoryEntry, SyncPreview, SyncSummary};
pub use definitions::{DefinitionFile, DefinitionsCopy, DefinitionsHealth};
pub use idempotency::{IdempotencyClaim, StoredAnswer};
pub use ledger::{LedgerEntry, LedgerEvent};
pub use outbox::{ClaimedMessage, DeliveryOutcome, DeliveryRecord, Fallback, QueuedMessage};
pub use outbox::{MessageProgress, Progress, ReceiptSubject};
pub use rekey::Rotated;
pub use sealing::{Key, KeyError};
pub use sessions::StoredSession;
pub use timers::{
    ChannelCounts, ClaimedTimer, Completed, PlannedTimer, Schedule, StatusCounts, TimerCompletion,
    TimerOutcome,
};
pub use tokens::{LAST_USED_PRECISION, StoredToken};
pub use wakeup::WorkListener;
