//! Workers waking each other: on PostgreSQL, a transaction that plans timers
//! or queues messages sends `NOTIFY palabre_work` (delivered when it commits),
//! and every worker listens, so that work one worker adds is seen by the
//! others at once rather than at their next poll. SQLite has one worker: its
//! own bell (the engine's) is enough. An announcement carries the name of the
//! store that made it, so a worker is not woken by its own (its own work wakes
//! it through the engine's bell already).

use sqlx::AnyConnection;
use sqlx::postgres::PgListener;

use super::{Backend, Store, StoreError};

/// The channel workers listen on.
const CHANNEL: &str = "palabre_work";

/// Inside the caller's transaction: tells the other workers, once it commits,
/// that there is new work (a no-op on SQLite).
pub(crate) async fn announce_work(
    conn: &mut AnyConnection,
    store: &Store,
) -> Result<(), StoreError> {
    if store.backend == Backend::Postgres {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT pg_notify('{CHANNEL}', $1)"
        )))
        .bind(store.announcer.as_ref())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A name for one opened store, unlike any other process's: its announcements
/// are told apart from the others'.
pub(crate) fn announcer_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}

/// A worker's ear for [`announce_work`]: a connection of its own, listening.
pub struct WorkListener {
    listener: PgListener,
    /// Its own store's name: what it announced itself is not news.
    announcer: std::sync::Arc<str>,
}

impl WorkListener {
    /// Resolves when a transaction announced new work. A lost connection is
    /// reconnected at the next call; one that cannot be is an error, and
    /// announcements made meanwhile are lost (the worker's regular poll makes
    /// up for them).
    pub async fn announced(&mut self) -> Result<(), StoreError> {
        loop {
            // `None`: the connection was lost; the next call reconnects.
            if let Some(news) = self.listener.try_recv().await?
                && news.payload() != self.announcer.as_ref()
            {
                return Ok(());
            }
        }
    }
}

impl Store {
    /// On PostgreSQL, a listener for other workers' announcements of new work;
    /// `None` on SQLite.
    pub async fn work_listener(&self) -> Result<Option<WorkListener>, StoreError> {
        let Some(url) = &self.listen_url else {
            return Ok(None);
        };
        let mut listener = PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(WorkListener {
            listener,
            announcer: self.announcer.clone(),
        }))
    }
}
