//! The database's key over time: the first sealing of a database that holds
//! values in clear (once, in place, in one transaction), the key checked at
//! every opening, and the rotation to a new key (batch by batch, each in its
//! own transaction, resumable after a crash with both keys).

use serde::Serialize;
use sqlx::{AnyConnection, AnyPool, Connection as _, Row};

use super::sealing::{
    CHECK, CHECK_TEXT, ERASED_TEXT, EXPIRED_TEXT, Key, SEALED_PATTERN, SEALED_TABLES, Sealed,
    SealedTable, Sealer, is_public, is_sealed, sealed_under,
};
use super::{Backend, Store, StoreError, connect_pool, rewrite_sqlite_file, scrubbing_connection};

/// How many rows a rotation re-encrypts per transaction.
const BATCH: i64 = 500;

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotated {
    /// The rows re-encrypted (by this run: a resumed rotation counts what was left).
    pub rows: u64,
    /// False when the database was under the new key already: nothing to do.
    pub changed: bool,
    /// On SQLite: whether the file was rewritten and its WAL emptied (false
    /// while another process held the database open); `None` on PostgreSQL.
    pub files_rewritten: Option<bool>,
}

/// The `sealing` row.
struct SealingState {
    key_id: String,
    key_check: String,
    rotating_to: Option<String>,
}

async fn state(conn: &mut AnyConnection) -> Result<Option<SealingState>, StoreError> {
    let row = sqlx::query("SELECT key_id, key_check, rotating_to FROM sealing WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|row| {
        Ok(SealingState {
            key_id: row.try_get("key_id")?,
            key_check: row.try_get("key_check")?,
            rotating_to: row.try_get("rotating_to")?,
        })
    })
    .transpose()
}

/// Whether `sealer` holds the key `state` names: its id, and its check value opening.
fn check(sealer: &Sealer, state: &SealingState) -> Result<(), StoreError> {
    let wrong = || StoreError::WrongKey {
        given: sealer.key_id().to_owned(),
        expected: state.key_id.clone(),
    };
    if state.key_id != sealer.key_id() {
        return Err(wrong());
    }
    match sealer.open("sealing", &CHECK, "1", &state.key_check) {
        Ok(text) if text == CHECK_TEXT => Ok(()),
        _ => Err(wrong()),
    }
}

/// At opening: the key checked, or, for a database never sealed, every value
/// in clear sealed under it now. How many rows were sealed.
pub(crate) async fn open_sealing(
    pool: &AnyPool,
    backend: Backend,
    sealer: &Sealer,
) -> Result<u64, StoreError> {
    let mut conn = pool.acquire().await?;
    if let Some(state) = state(&mut conn).await? {
        if let Some(to) = state.rotating_to {
            return Err(StoreError::RotationUnfinished {
                from: state.key_id,
                to,
            });
        }
        return check(sealer, &state).map(|()| 0);
    }
    drop(conn);
    let mut conn = scrubbing_connection(pool, backend).await?;
    let sealed = first_sealing(&mut conn, backend, sealer).await;
    let sealed = match sealed {
        Ok(Some(rows)) if rows > 0 && backend == Backend::Sqlite => {
            // The clear values are still in free pages and in the WAL.
            rewrite_sqlite_file(&mut conn).await.map(|_| rows)
        }
        Ok(Some(rows)) => Ok(rows),
        // Another process sealed it first: its key must be this one.
        Ok(None) => match state(&mut conn).await? {
            Some(state) => check(sealer, &state).map(|()| 0),
            None => Ok(0),
        },
        Err(e) => Err(e),
    };
    let _ = conn.close().await;
    sealed
}

/// Claims the sealing of the database for `sealer`'s key and seals every value
/// in clear, in one transaction; `None` if another process claimed it first.
async fn first_sealing(
    conn: &mut AnyConnection,
    backend: Backend,
    sealer: &Sealer,
) -> Result<Option<u64>, StoreError> {
    let mut tx = match backend {
        Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => conn.begin().await?,
    };
    let claimed = sqlx::query(
        "INSERT INTO sealing (id, key_id, key_check) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
    )
    .bind(sealer.key_id())
    .bind(sealer.seal(&CHECK, "1", CHECK_TEXT)?)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(None);
    }
    let mut rows = 0;
    for table in SEALED_TABLES {
        loop {
            let done = reseal(&mut tx, backend, sealer, table, &Which::Clear).await?;
            rows += done;
            if done == 0 {
                break;
            }
        }
    }
    tx.commit().await?;
    Ok(Some(rows))
}

/// Which values a pass reseals.
enum Which {
    /// Those in clear (not public markers).
    Clear,
    /// Those sealed under the key of this id.
    UnderKey(String),
}

impl Which {
    /// SQL selecting a row with such a value in `column`.
    fn condition(&self, column: &str) -> String {
        match self {
            Which::Clear => format!(
                "({column} IS NOT NULL AND {column} NOT LIKE '{SEALED_PATTERN}' \
                 AND {column} NOT IN ('', '{ERASED_TEXT}', '{EXPIRED_TEXT}'))"
            ),
            Which::UnderKey(id) => format!("{column} LIKE '{}'", sealed_under(id)),
        }
    }

    fn selects(&self, stored: &str) -> bool {
        match self {
            Which::Clear => !is_public(stored) && !is_sealed(stored),
            Which::UnderKey(id) => stored.starts_with(sealed_under(id).trim_end_matches('%')),
        }
    }
}

/// How a row is named for an `UPDATE` that follows a `SELECT` (the column
/// expression, and the condition on `$1`): SQLite's `rowid`, PostgreSQL's `ctid`.
fn row_handle(backend: Backend) -> (&'static str, &'static str) {
    match backend {
        Backend::Sqlite => ("CAST(rowid AS TEXT)", "rowid = CAST($1 AS INTEGER)"),
        Backend::Postgres => ("CAST(ctid AS TEXT)", "ctid = CAST($1 AS tid)"),
    }
}

/// Every value of `column` in `table` that `rewritten` changes, sealed again.
pub(crate) async fn rewrite_sealed(
    conn: &mut AnyConnection,
    backend: Backend,
    sealer: &Sealer,
    table: &'static str,
    column: &Sealed,
    rewritten: &dyn Fn(&str) -> String,
) -> Result<(), StoreError> {
    let (handle, by_handle) = row_handle(backend);
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {handle} AS handle, {} AS row_key, {} AS value FROM {table} \
         WHERE {} IS NOT NULL",
        column.row_key, column.column, column.column
    )))
    .fetch_all(&mut *conn)
    .await?;
    for row in &rows {
        let key: String = row.try_get("row_key")?;
        let clear = sealer.open(table, column, &key, &row.try_get::<String, _>("value")?)?;
        let changed = rewritten(&clear);
        if changed != clear {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET {} = $2 WHERE {by_handle}",
                column.column
            )))
            .bind(row.try_get::<String, _>("handle")?)
            .bind(sealer.seal(column, &key, &changed)?)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Reseals up to [`BATCH`] rows of `table` holding a value `which` selects (and
/// their blind indexes); how many rows.
async fn reseal(
    conn: &mut AnyConnection,
    backend: Backend,
    sealer: &Sealer,
    table: &SealedTable,
    which: &Which,
) -> Result<u64, StoreError> {
    let (handle, by_handle) = row_handle(backend);
    let selected: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} AS key_{i}, {} AS value_{i}", c.row_key, c.column))
        .collect();
    let conditions: Vec<String> = table
        .columns
        .iter()
        .map(|c| which.condition(c.column))
        .collect();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {handle} AS handle, {} FROM {} WHERE {} LIMIT {BATCH}",
        selected.join(", "),
        table.table,
        conditions.join(" OR ")
    )))
    .fetch_all(&mut *conn)
    .await?;
    for row in &rows {
        let mut sets: Vec<(&str, String)> = Vec::new();
        let mut clear: Vec<Option<String>> = vec![None; table.columns.len()];
        for (i, column) in table.columns.iter().enumerate() {
            let Some(stored) = row.try_get::<Option<String>, _>(format!("value_{i}").as_str())?
            else {
                continue;
            };
            if !which.selects(&stored) {
                continue;
            }
            let key: String = row.try_get(format!("key_{i}").as_str())?;
            let value = match which {
                Which::Clear => stored,
                Which::UnderKey(_) => sealer.open(table.table, column, &key, &stored)?,
            };
            sets.push((column.column, sealer.seal(column, &key, &value)?));
            clear[i] = Some(value);
        }
        for &(i, index_column, indexed) in table.indexes {
            if let Some(value) = &clear[i] {
                sets.push((index_column, sealer.index(indexed, value)));
            }
        }
        let assignments: Vec<String> = sets
            .iter()
            .enumerate()
            .map(|(n, (column, _))| format!("{column} = ${}", n + 2))
            .collect();
        let sql = format!(
            "UPDATE {} SET {} WHERE {by_handle}",
            table.table,
            assignments.join(", ")
        );
        let mut query =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(row.try_get::<String, _>("handle")?);
        for (_, value) in &sets {
            query = query.bind(value);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(u64::try_from(rows.len()).unwrap_or(u64::MAX))
}

impl Store {
    /// Re-encrypts everything sealed under `from` under `to`: the database first
    /// records the rotation (openings are refused until it is finished), then
    /// moves the values batch by batch, each batch its own transaction, so a
    /// crash loses nothing and running it again with both keys finishes it; at
    /// the end `to` is the database's key and `from` opens nothing. On SQLite
    /// the file is then rewritten, so no value under `from` stays in it.
    pub async fn rotate_key(url: &str, from: &Key, to: &Key) -> Result<Rotated, StoreError> {
        let (pool, backend) = connect_pool(url).await?;
        let result = rotate(&pool, backend, from, to).await;
        pool.close().await;
        result
    }
}

async fn rotate(
    pool: &AnyPool,
    backend: Backend,
    from: &Key,
    to: &Key,
) -> Result<Rotated, StoreError> {
    let (old, new) = (Sealer::new(from)?, Sealer::new(to)?);
    let mut conn = scrubbing_connection(pool, backend).await?;
    let result = async {
        let Some(state) = state(&mut conn).await? else {
            // Never sealed: sealed under the new key at once.
            let rows = first_sealing(&mut conn, backend, &new).await?.unwrap_or(0);
            return Ok(Rotated {
                rows,
                changed: true,
                files_rewritten: None,
            });
        };
        if state.key_id == new.key_id() && state.rotating_to.is_none() {
            check(&new, &state)?;
            return Ok(Rotated {
                rows: 0,
                changed: false,
                files_rewritten: None,
            });
        }
        check(&old, &state)?;
        match &state.rotating_to {
            Some(unfinished) if unfinished != new.key_id() => {
                return Err(StoreError::RotationToAnother {
                    unfinished: unfinished.clone(),
                });
            }
            Some(_) => {}
            None => {
                sqlx::query(
                    "UPDATE sealing SET rotating_to = $1, rotating_check = $2 WHERE id = 1",
                )
                .bind(new.key_id())
                .bind(new.seal(&CHECK, "1", CHECK_TEXT)?)
                .execute(&mut conn)
                .await?;
            }
        }
        let both = Sealer::rotating(from, to)?;
        let which = Which::UnderKey(old.key_id().to_owned());
        let mut rows = 0;
        for table in SEALED_TABLES {
            loop {
                let mut tx = match backend {
                    Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
                    Backend::Postgres => conn.begin().await?,
                };
                let done = reseal(&mut tx, backend, &both, table, &which).await?;
                tx.commit().await?;
                rows += done;
                if done == 0 {
                    break;
                }
            }
        }
        sqlx::query(
            "UPDATE sealing SET key_id = rotating_to, key_check = rotating_check, \
             rotating_to = NULL, rotating_check = NULL WHERE id = 1",
        )
        .execute(&mut conn)
        .await?;
        let files_rewritten = match backend {
            Backend::Sqlite => Some(rewrite_sqlite_file(&mut conn).await?),
            Backend::Postgres => None,
        };
        Ok(Rotated {
            rows,
            changed: true,
            files_rewritten,
        })
    }
    .await;
    let _ = conn.close().await;
    result
}
