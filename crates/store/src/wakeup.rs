//! Workers waking each other: on PostgreSQL, a transaction that plans timers
//! or queues messages sends `NOTIFY palabre_work` (delivered when it commits),
//! and every worker listens, so that work one worker adds is seen by the
//! others at once rather than at their next poll. SQLite has one worker: its
//! own bell (the engine's) is enough.

use sqlx::AnyConnection;
use sqlx::Executor;
use sqlx::postgres::PgListener;

use super::{Backend, Store, StoreError};

/// The channel workers listen on.
const CHANNEL: &str = "palabre_work";

/// Inside the caller's transaction: tells the other workers, once it commits,
/// that there is new work (a no-op on SQLite).
pub(crate) async fn announce_work(
    conn: &mut AnyConnection,
    backend: Backend,
) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        conn.execute(sqlx::AssertSqlSafe(format!("NOTIFY {CHANNEL}")))
            .await?;
    }
    Ok(())
}

/// A worker's ear for [`announce_work`]: a connection of its own, listening.
pub struct WorkListener {
    listener: PgListener,
}

impl WorkListener {
    /// Resolves when a transaction announced new work. A lost connection is
    /// reconnected at the next call; one that cannot be is an error, and
    /// announcements made meanwhile are lost (the worker's regular poll makes
    /// up for them).
    pub async fn announced(&mut self) -> Result<(), StoreError> {
        // `None`: the connection was lost; the next call reconnects.
        while self.listener.try_recv().await?.is_none() {}
        Ok(())
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
        Ok(Some(WorkListener { listener }))
    }
}
