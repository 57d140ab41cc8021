//! End-to-end throughput and idle cost of the durable runtime, as a bench binary.
//!
//! ```text
//! cargo bench --bench throughput                         # SQLite, 100,000 timers, 1,000,000 idle
//! cargo bench --bench throughput -- --postgres URL       # the same on PostgreSQL too
//! cargo bench --bench throughput -- --timers 20000 --idle-timers 100000
//! ```
//!
//! *Throughput*: N timers are due now; one worker fires them (recipients resolved,
//! template rendered), writes the outbox and ledger, and delivers every message to
//! a null connector, recording each outcome. Timed from the first claim to the
//! last recorded delivery. *Idle*: M timers pending in the future; the serve loop
//! runs for 10 s of wall time; CPU time and resident memory are read from /proc.

// A bench is a measurement harness: a broken set-up stops it with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use palabre_core::channel::Channel;
use palabre_core::clock::{Clock, SystemClock, VirtualClock};
use palabre_core::connector::{Connector, Connectors, Delivery, OutgoingMessage};
use palabre_engine::runtime::{Runtime, RuntimeConfig};
use palabre_lang::contacts::Contact;
use palabre_plan::definitions::Definitions;
use palabre_store::{PlannedTimer, Store};

/// Accepts everything, instantly.
struct NullConnector;

impl Connector for NullConnector {
    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn name(&self) -> &str {
        "null"
    }

    fn deliver<'a>(&'a self, message: &'a OutgoingMessage) -> Delivery<'a> {
        let id = message.key_hash();
        Box::pin(async move { Ok(id) })
    }

    fn idempotent(&self) -> bool {
        true
    }
}

const WORKFLOW: &str = "kind: meeting
id: bench
title: Bench
place: mopti/koro
recurrence: \"*/5 * * * * *\"
timezone: UTC
venue: Koro
misfire: all
misfire_grace: 30d
recipients: [{ contacts: [c-1] }]
steps: [{ id: send, at: 0, template: meeting-reminder, channels: [sms] }]
";

fn definitions(dir: &Path, with_workflow: bool) -> Definitions {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let root = dir.join("workflows");
    std::fs::create_dir_all(root.join("templates")).unwrap();
    for file in [
        "places.yaml",
        "roles.yaml",
        "templates/meeting-reminder.yaml",
    ] {
        std::fs::copy(repo.join(file), root.join(file)).unwrap();
    }
    if with_workflow {
        std::fs::write(root.join("bench.yaml"), WORKFLOW).unwrap();
    }
    let (definitions, diagnostics) = Definitions::load(&root, None, palabre_sms::RULE_FUNCTIONS);
    assert!(!diagnostics.has_errors(), "{:?}", diagnostics.sorted());
    definitions
}

async fn store(url: &str) -> Store {
    let store = Store::connect(url, &palabre_store::Key::from_bytes([7; 32]))
        .await
        .unwrap();
    let contact = Contact {
        id: "c-1".into(),
        name: "Awa Diallo".into(),
        roles: vec!["leader".into()],
        place: "mopti/koro/koro".into(),
        phone: Some("+22376112233".into()), // a fake number
        email: None,
        language: "fra".into(),
        channels: vec![Channel::Sms],
    };
    store.upsert_contacts(&[contact]).await.unwrap();
    store
}

fn config(horizon: TimeDelta) -> RuntimeConfig {
    RuntimeConfig {
        owner: "bench".into(),
        horizon,
        batch: 1000,
        ..RuntimeConfig::default()
    }
}

async fn throughput(url: &str, timers: i64) {
    let dir = tempfile::tempdir().unwrap();
    let store = store(url).await;
    // Occurrences of the bench's recurrence (every 5 s: a recurrence more
    // frequent than that is refused at load), all due.
    let now = Utc::now();
    let now = now - TimeDelta::seconds(now.timestamp() % 5);
    let planned: Vec<PlannedTimer> = (1..=timers)
        .map(|i| {
            let occurrence = now - TimeDelta::seconds(5 * i);
            PlannedTimer {
                workflow: "bench".into(),
                occurrence,
                step: "send".into(),
                due: occurrence,
            }
        })
        .collect();
    store.plan_timers(&planned, now).await.unwrap();
    let clock = Arc::new(VirtualClock::new(now));
    let connectors = Connectors::default().with(Arc::new(NullConnector));
    // A horizon of zero: the bench measures firing and delivery, not planning.
    let runtime = Runtime::new(
        store,
        definitions(dir.path(), true),
        connectors,
        clock,
        config(TimeDelta::zero()),
    );
    let start = Instant::now();
    let report = runtime.tick().await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(report.fired, usize::try_from(timers).unwrap());
    assert_eq!(report.sent, report.fired, "{report:?}");
    let rate = report.sent as f64 / elapsed.as_secs_f64();
    println!(
        "throughput {:<8} {timers:>7} timers -> {} messages delivered in {:>6.2} s: {rate:>8.0} messages/s",
        backend(url),
        report.sent,
        elapsed.as_secs_f64()
    );
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0 // utime, stime (fields 14 and 15 of stat); USER_HZ = 100
}

fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn idle(url: &str, timers: i64) {
    let dir = tempfile::tempdir().unwrap();
    let store = store(url).await;
    let now = Utc::now();
    let load = Instant::now();
    for chunk_start in (0..timers).step_by(100_000) {
        let planned: Vec<PlannedTimer> = (chunk_start..(chunk_start + 100_000).min(timers))
            .map(|i| {
                let occurrence = now + TimeDelta::days(1) + TimeDelta::seconds(i);
                PlannedTimer {
                    workflow: "future".into(),
                    occurrence,
                    step: "send".into(),
                    due: occurrence,
                }
            })
            .collect();
        store.plan_timers(&planned, now).await.unwrap();
    }
    let loaded_in = load.elapsed();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let connectors = Connectors::default().with(Arc::new(NullConnector));
    let runtime = Runtime::new(
        store,
        definitions(dir.path(), false),
        connectors,
        clock,
        config(TimeDelta::days(40)),
    );
    // Let the loop start and go to sleep, then measure 10 s of idling.
    let run = runtime.run(tokio::time::sleep(Duration::from_secs(12)));
    let measure = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let cpu = cpu_seconds();
        tokio::time::sleep(Duration::from_secs(10)).await;
        cpu_seconds() - cpu
    };
    let (result, cpu) = tokio::join!(run, measure);
    result.unwrap();
    println!(
        "idle       {:<8} {timers:>7} timers pending (loaded in {:.1} s): {:.2} % of one core over 10 s, RSS {:.1} MiB",
        backend(url),
        loaded_in.as_secs_f64(),
        cpu / 10.0 * 100.0,
        resident_mib()
    );
}

/// A fresh schema for one run on PostgreSQL, so that runs never see each other's rows.
async fn fresh_schema(base: &str, name: &str) -> String {
    use sqlx::Connection;
    let schema = format!("palabre_bench_{name}_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
    for sql in [
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}

fn backend(url: &str) -> &str {
    if url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let timers: i64 = value("--timers")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let idle_timers: i64 = value("--idle-timers")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!(
        "sqlite://{}",
        dir.path().join("throughput.db").display()
    )];
    if let Some(pg) = value("--postgres") {
        urls.push(fresh_schema(&pg, "throughput").await);
    }
    for url in &urls {
        throughput(url, timers).await;
    }
    let idle_dir = tempfile::tempdir().unwrap();
    let mut idle_urls = vec![format!(
        "sqlite://{}",
        idle_dir.path().join("idle.db").display()
    )];
    if let Some(pg) = value("--postgres-idle") {
        idle_urls.push(fresh_schema(&pg, "idle").await);
    }
    for url in &idle_urls {
        idle(url, idle_timers).await;
    }
}
