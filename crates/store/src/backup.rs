//! Backups of a SQLite database: a consistent copy taken while the engine runs
//! (`VACUUM INTO`), and the checks a copy goes through before it is put in place
//! of a database (that it is a palabre database, that the database it replaces
//! is not in use). PostgreSQL has its own tools (`pg_dump`, `pg_restore`); the
//! store does not copy it.
//!
//! The files themselves (temporary names, renames) are the caller's: these are
//! the SQL side only.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteLockingMode};
use sqlx::{ConnectOptions, Connection, Executor, Row};

use super::{Backend, Store, StoreError};

/// Tables every palabre database has, whatever its version.
const PALABRE_TABLES: &[&str] = &["_sqlx_migrations", "contacts", "timers", "outbox", "ledger"];

/// The file a SQLite URL names (`sqlite://palabre.db?mode=rwc` → `palabre.db`,
/// percent-escapes decoded as the driver decodes them); `None` for PostgreSQL,
/// an in-memory database, or a name that is not UTF-8 once decoded.
pub fn sqlite_file(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    percent_decoded(path)
}

/// The SQLite URL of a file, escaped so that the driver reads the same name back
/// (`%`, `?` and `#` are the characters it would otherwise take for syntax).
pub fn sqlite_url_of(file: &str) -> String {
    let mut url = String::from("sqlite://");
    for c in file.chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            c => url.push(c),
        }
    }
    url
}

/// `%XX` escapes decoded; `None` if the result is not UTF-8.
fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// A connection to an existing SQLite file, outside any pool and without
/// migrations: for looking at a file, never for creating one.
async fn open_file(
    file: &Path,
    locking: SqliteLockingMode,
    busy_timeout: Duration,
) -> Result<sqlx::SqliteConnection, StoreError> {
    Ok(SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(false)
        .locking_mode(locking)
        .busy_timeout(busy_timeout)
        .connect()
        .await?)
}

/// Whether the SQLite file `file` holds a palabre database: it has the tables
/// every version of palabre creates. The file is opened for reading what it
/// holds, never migrated; a file that is not a SQLite database is an error.
pub async fn is_palabre_database(file: &Path) -> Result<bool, StoreError> {
    let mut conn = open_file(file, SqliteLockingMode::Normal, Duration::from_secs(5)).await?;
    let mut found = 0;
    for table in PALABRE_TABLES {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = $1",
        )
        .bind(*table)
        .fetch_one(&mut conn)
        .await?
        .try_get("n")?;
        found += n;
    }
    conn.close().await?;
    Ok(usize::try_from(found).is_ok_and(|n| n == PALABRE_TABLES.len()))
}

/// Whether another connection (a running `palabre serve`, a command in
/// progress, any SQLite program) has the SQLite file `file` open. A database in
/// WAL mode keeps a shared lock on its file for as long as a connection is
/// open, idle or not, so an exclusive lock is refused at once while one is; a
/// file left by a process that was killed is not in use.
pub async fn sqlite_in_use(file: &Path) -> Result<bool, StoreError> {
    let mut conn = match open_file(file, SqliteLockingMode::Exclusive, Duration::ZERO).await {
        Ok(conn) => conn,
        Err(StoreError::Database(error)) if is_busy(&error) => return Ok(true),
        Err(error) => return Err(error),
    };
    let locked = conn.execute("BEGIN EXCLUSIVE; COMMIT;").await;
    let closed = conn.close().await;
    match locked {
        Ok(_) => {
            closed?;
            Ok(false)
        }
        Err(error) if is_busy(&error) => Ok(true),
        Err(error) => Err(error.into()),
    }
}

/// SQLite's "busy" and "locked" answers (any of their extended codes).
fn is_busy(error: &sqlx::Error) -> bool {
    const SQLITE_BUSY: i64 = 5;
    const SQLITE_LOCKED: i64 = 6;
    match error {
        sqlx::Error::Database(error) => error
            .code()
            .and_then(|code| code.parse::<i64>().ok())
            .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED)),
        _ => false,
    }
}

impl Store {
    /// Writes a consistent copy of this SQLite database into the new file `file`
    /// (`VACUUM INTO`): one read transaction, so the engine keeps working
    /// meanwhile, and the copy is a standalone database file (nothing of it is in
    /// a `-wal` file). SQLite refuses a `file` that exists and is not empty;
    /// callers refuse any existing file before. The copy is not synced to disk.
    ///
    /// A PostgreSQL store is refused as an unsupported URL: its backups are
    /// `pg_dump`'s.
    pub async fn backup_into(&self, file: &str) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::UnsupportedUrl(
                "postgres://... (back it up with pg_dump)".to_owned(),
            ));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(file)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;

    #[test]
    fn a_sqlite_url_names_its_file_and_back() {
        assert_eq!(
            sqlite_file("sqlite://palabre.db").as_deref(),
            Some("palabre.db")
        );
        assert_eq!(
            sqlite_file("sqlite:data/palabre.db?mode=rwc").as_deref(),
            Some("data/palabre.db")
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/palabre.db").as_deref(),
            Some("/var/lib/palabre.db")
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://localhost/palabre"), None);
        for name in ["a b/c%d?e#f.db", "plain.db", "/tmp/été.db"] {
            assert_eq!(
                sqlite_file(&sqlite_url_of(name)).as_deref(),
                Some(name),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn a_backup_is_a_standalone_palabre_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("palabre.db");
        let store = Store::connect(
            &sqlite_url_of(db.to_str().unwrap()),
            &Key::from_bytes([7; 32]),
        )
        .await
        .unwrap();
        let copy = dir.path().join("copy.db");
        store.backup_into(copy.to_str().unwrap()).await.unwrap();
        assert!(sqlite_in_use(&db).await.unwrap(), "the store has it open");
        // SQLite never overwrites a database with VACUUM INTO.
        assert!(store.backup_into(copy.to_str().unwrap()).await.is_err());
        store.close().await;
        assert!(!sqlite_in_use(&db).await.unwrap(), "closed");
        assert!(is_palabre_database(&copy).await.unwrap());
        assert!(!sqlite_in_use(&copy).await.unwrap());

        let other = dir.path().join("other.db");
        let foreign = Store::connect(
            &sqlite_url_of(other.to_str().unwrap()),
            &Key::from_bytes([7; 32]),
        )
        .await
        .unwrap();
        sqlx::query("DROP TABLE ledger")
            .execute(&foreign.pool)
            .await
            .unwrap();
        foreign.close().await;
        assert!(!is_palabre_database(&other).await.unwrap());
        let text = dir.path().join("notes.txt");
        std::fs::write(
            &text,
            "not a database, but long enough to be read as one: ".repeat(200),
        )
        .unwrap();
        assert!(is_palabre_database(&text).await.is_err());
    }
}
