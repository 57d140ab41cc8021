//! The peer's side: apalis 1.0 with apalis-sqlite and apalis-postgres, as its
//! READMEs set them up, fetching batches of 1,000 and running a no-op handler.
//!
//! *Throughput*: N jobs are due now; one worker runs them all. Timed from the
//! worker's start until the database says every job is done (apalis
//! acknowledges in batches, after the handler returns: the handler's count
//! alone would stop the clock before the outcomes are durable, which palabre's
//! figure does not). *Idle*: M jobs due in a day; the worker runs for 10 s.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::{SqlitePool, SqliteStorage};
use sqlx::PgPool;

use crate::measure::{self, Measured};

const QUEUE: &str = "bench";
const BATCH: usize = 1_000;
/// How often the worker looks for due jobs (apalis's default strategy waits
/// far longer between fetches, even with a backlog).
const POLL: Duration = Duration::from_millis(10);

/// The no-op handler: counts, so that the clock knows when to look at the database.
async fn handle(_job: u64, done: Data<Arc<AtomicU64>>) -> Result<(), BoxDynError> {
    done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Tasks due now (`delay` zero) or later, `count` of them, encoded as the
/// storage keeps them.
fn tasks(count: u64, delay: Duration) -> Vec<Task<Vec<u8>>> {
    (0..count)
        .map(|i| {
            TaskBuilder::new(serde_json::to_vec(&i).unwrap())
                .run_after(delay)
                .build()
        })
        .collect()
}

/// Resolves when `count` jobs are done: waits for the handler's count, then asks
/// the database every 2 ms until it agrees.
async fn all_done<F, Fut>(handled: Arc<AtomicU64>, count: u64, done_in_database: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    while handled.load(Ordering::Relaxed) < count {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while done_in_database().await < count {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn measured(backend: &str, what: &str, items: u64, seconds: f64, cpu: f64) -> Measured {
    Measured {
        engine: "apalis".into(),
        backend: backend.into(),
        what: what.into(),
        items,
        seconds,
        cpu_percent: cpu / seconds * 100.0,
        rss_mib: measure::resident_mib(),
        lateness_ms: Vec::new(),
    }
}

async fn sqlite_storage(
    url: &str,
    count: u64,
    delay: Duration,
) -> (SqlitePool, SqliteStorage<u64>) {
    let pool = SqlitePool::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    SqliteStorage::setup(&pool).await.unwrap();
    let config = apalis_sqlite::Config::default()
        .queue(QUEUE)
        .batch_size(BATCH);
    let storage = SqliteStorage::<u64>::new(&pool).with_config(config);
    let mut tx = pool.begin().await.unwrap();
    apalis_sqlite::queries::push_tasks(&mut *tx, QUEUE, &tasks(count, delay))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (pool, storage)
}

async fn postgres_storage(url: &str, count: u64) -> (PgPool, PostgresStorage<u64>) {
    let pool = PgPool::connect(url).await.unwrap();
    PostgresStorage::setup(&pool).await.unwrap();
    let config = apalis_postgres::Config::default()
        .queue(QUEUE)
        .batch_size(BATCH);
    let mut storage = PostgresStorage::<u64>::new(&pool).with_config(config);
    let jobs: Vec<u64> = (0..count).collect();
    for chunk in jobs.chunks(BATCH) {
        storage.push_bulk(chunk.to_vec()).await.unwrap();
    }
    (pool, storage)
}

async fn done_in_sqlite(pool: SqlitePool) -> u64 {
    let (done,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM Jobs WHERE status = 'Done'")
        .fetch_one(&pool)
        .await
        .unwrap();
    done as u64
}

async fn done_in_postgres(pool: PgPool) -> u64 {
    let (done,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM apalis.jobs WHERE status = 'Done'")
        .fetch_one(&pool)
        .await
        .unwrap();
    done as u64
}

/// Runs a worker over `storage` until `done_in_database` counts `count` jobs
/// done; the wall time. (A macro: the two storages' worker types differ, and
/// apalis's bounds on them are long to spell.)
macro_rules! run_to_the_end {
    ($storage:expr, $handled:expr, $count:expr, $done_in_database:expr) => {{
        let worker = WorkerBuilder::new("bench")
            .backend($storage.poll_with_interval(POLL))
            .data($handled.clone())
            .build(handle);
        let start = Instant::now();
        let done = all_done($handled.clone(), $count, $done_in_database);
        worker
            .run_until(async move {
                done.await;
                Ok::<(), std::io::Error>(())
            })
            .await
            .unwrap();
        start.elapsed()
    }};
}

pub async fn throughput(url: &str, count: u64) -> Measured {
    let handled = Arc::new(AtomicU64::new(0));
    let cpu = measure::cpu_seconds();
    let seconds = if url.starts_with("sqlite") {
        let (pool, storage) = sqlite_storage(url, count, Duration::ZERO).await;
        run_to_the_end!(storage, handled, count, move || done_in_sqlite(
            pool.clone()
        ))
    } else {
        let (pool, storage) = postgres_storage(url, count).await;
        run_to_the_end!(storage, handled, count, move || done_in_postgres(
            pool.clone()
        ))
    };
    let cpu = measure::cpu_seconds() - cpu;
    measured(
        &measure::backend(url),
        "throughput",
        count,
        seconds.as_secs_f64(),
        cpu,
    )
}

pub async fn idle(url: &str, count: u64) -> Measured {
    let handled = Arc::new(AtomicU64::new(0));
    let (_pool, storage) = sqlite_storage(url, count, Duration::from_secs(86_400)).await;
    let worker = WorkerBuilder::new("bench")
        .backend(storage.poll_with_interval(POLL))
        .data(handled.clone())
        .build(handle);
    let run = worker.run_until(async {
        tokio::time::sleep(Duration::from_secs(12)).await;
        Ok::<(), std::io::Error>(())
    });
    let (result, cpu) = tokio::join!(run, crate::idle_cpu());
    result.unwrap();
    assert_eq!(handled.load(Ordering::Relaxed), 0, "no job was due");
    measured(&measure::backend(url), "idle", count, 10.0, cpu)
}
