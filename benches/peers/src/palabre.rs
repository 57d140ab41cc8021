//! palabre's side: the durable runtime's end-to-end path, through its public API.
//!
//! *Throughput*: N timers are due now; one worker fires them (recipients
//! resolved, template rendered), writes the outbox and ledger, and delivers
//! every message to a null connector, recording each outcome. Timed from the
//! first claim to the last recorded delivery. *Idle*: M timers pending in the
//! future; the serve loop runs for 10 s of wall time.

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

use crate::measure::{self, Measured, percentile};

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

/// A meeting every 5 s (the most frequent recurrence palabre accepts) with one
/// step and one recipient: each timer is one message.
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

/// The repository's places, roles and reminder template, and `workflows`
/// (file name, text).
fn definitions(dir: &Path, workflows: &[(String, String)]) -> Definitions {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let root = dir.join("workflows");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("templates")).unwrap();
    for file in [
        "places.yaml",
        "roles.yaml",
        "templates/meeting-reminder.yaml",
    ] {
        std::fs::copy(repo.join(file), root.join(file)).unwrap();
    }
    for (name, text) in workflows {
        std::fs::write(root.join(name), text).unwrap();
    }
    let (definitions, diagnostics) = Definitions::load(&root, None, palabre_sms::RULE_FUNCTIONS);
    assert!(!diagnostics.has_errors(), "{:?}", diagnostics.sorted());
    definitions
}

/// An invented number from the tests' data (no one's; none is written here).
fn invented_phone() -> String {
    include_str!("../../../tests/data/phones.txt")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.split_once(" => ").map(|(_, kept)| kept.trim()))
        .filter(|kept| kept.starts_with('+'))
        .expect("tests/data/phones.txt has a number")
        .to_owned()
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
        phone: Some(invented_phone()),
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

/// Occurrences of the bench's recurrence, `count` of them, all due by `now`.
fn due_timers(now: chrono::DateTime<Utc>, count: u64) -> Vec<PlannedTimer> {
    (1..=i64::try_from(count).unwrap())
        .map(|i| {
            let occurrence = now - TimeDelta::seconds(5 * i);
            PlannedTimer {
                workflow: "bench".into(),
                occurrence,
                step: "send".into(),
                due: occurrence,
            }
        })
        .collect()
}

/// A store at `url` with the bench's contact and `timers` due at the bench's present.
async fn store_with_due(url: &str, timers: u64) -> (Store, chrono::DateTime<Utc>) {
    let store = store(url).await;
    let now = bench_now();
    store
        .plan_timers(&due_timers(now, timers), now)
        .await
        .unwrap();
    (store, now)
}

pub async fn throughput(url: &str, timers: u64) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let (store, now) = store_with_due(url, timers).await;
    let clock = Arc::new(VirtualClock::new(now));
    let connectors = Connectors::default().with(Arc::new(NullConnector));
    // A horizon of zero: this measures firing and delivery, not planning.
    let runtime = Runtime::new(
        store,
        definitions(dir.path(), &[("bench.yaml".into(), WORKFLOW.into())]),
        connectors,
        clock,
        config(TimeDelta::zero()),
    );
    let cpu = measure::cpu_seconds();
    let start = Instant::now();
    let report = runtime.tick().await.unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let cpu = measure::cpu_seconds() - cpu;
    assert_eq!(report.fired, usize::try_from(timers).unwrap());
    assert_eq!(report.sent, report.fired, "{report:?}");
    Measured {
        engine: "palabre".into(),
        backend: measure::backend(url),
        what: "throughput".into(),
        items: report.sent as u64,
        seconds,
        cpu_percent: cpu / seconds * 100.0,
        rss_mib: measure::resident_mib(),
        lateness_ms: Vec::new(),
    }
}

pub async fn idle(url: &str, timers: u64) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let store = store(url).await;
    let now = Utc::now();
    for chunk_start in (0..timers).step_by(100_000) {
        let planned: Vec<PlannedTimer> = (chunk_start..(chunk_start + 100_000).min(timers))
            .map(|i| {
                let occurrence =
                    now + TimeDelta::days(1) + TimeDelta::seconds(i64::try_from(i).unwrap());
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
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let connectors = Connectors::default().with(Arc::new(NullConnector));
    let runtime = Runtime::new(
        store,
        definitions(dir.path(), &[]),
        connectors,
        clock,
        config(TimeDelta::days(40)),
    );
    // Let the loop start and go to sleep, then measure 10 s of idling.
    let run = runtime.run(tokio::time::sleep(Duration::from_secs(12)));
    let (result, cpu) = tokio::join!(run, crate::idle_cpu());
    result.unwrap();
    Measured {
        engine: "palabre".into(),
        backend: measure::backend(url),
        what: "idle".into(),
        items: timers,
        seconds: 10.0,
        cpu_percent: cpu / 10.0 * 100.0,
        rss_mib: measure::resident_mib(),
        lateness_ms: Vec::new(),
    }
}

/// Workflows firing `per_second` timers every second, all at the second: each
/// of `per_second` meetings recurs every 5 s with a step at 0, 1, 2, 3 and 4 s.
fn every_second(per_second: usize) -> Vec<(String, String)> {
    let steps: String = (0..5)
        .map(|s| {
            format!("  - {{ id: s{s}, at: +{s}s, template: meeting-reminder, channels: [sms] }}\n")
        })
        .collect();
    (1..=per_second)
        .map(|i| {
            let text = WORKFLOW
                .replace("id: bench", &format!("id: w{i:04}"))
                .replace(
                    "steps: [{ id: send, at: 0, template: meeting-reminder, channels: [sms] }]\n",
                    &format!("steps:\n{steps}"),
                );
            (format!("w{i:04}.yaml"), text)
        })
        .collect()
}

/// *Lateness*: `per_second` timers due every second (planned by the worker
/// itself, two minutes ahead), the serve loop on the real clock for
/// `seconds` after 10 s of warming up; from the ledger, how late each timer
/// was picked up to fire, and how late its message was recorded delivered.
pub async fn lateness(url: &str, per_second: usize, seconds: u64) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let store = store(url).await;
    let connectors = Connectors::default().with(Arc::new(NullConnector));
    let runtime = Runtime::new(
        store,
        definitions(dir.path(), &every_second(per_second)),
        connectors,
        Arc::new(SystemClock),
        config(TimeDelta::minutes(2)),
    );
    let start = Utc::now();
    let from = start + TimeDelta::seconds(10);
    let until = from + TimeDelta::seconds(i64::try_from(seconds).unwrap());
    let cpu = measure::cpu_seconds();
    let run_for = Duration::from_secs(seconds + 12);
    runtime.run(tokio::time::sleep(run_for)).await.unwrap();
    let cpu = measure::cpu_seconds() - cpu;
    let entries = runtime.store().ledger(None, 10_000_000).await.unwrap();
    let due = |e: &palabre_store::LedgerEntry| {
        let step = e.step.as_deref()?.strip_prefix('s')?.parse::<i64>().ok()?;
        Some(e.occurrence? + TimeDelta::seconds(step))
    };
    let mut fire = Vec::new();
    let mut delivery = Vec::new();
    for entry in &entries {
        let Some(due) = due(entry) else { continue };
        if due < from || due >= until {
            continue;
        }
        let late = (entry.at - due).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0;
        match entry.event {
            palabre_store::LedgerEvent::Fired => fire.push(late),
            palabre_store::LedgerEvent::Sent => delivery.push(late),
            _ => {}
        }
    }
    fire.sort_by(f64::total_cmp);
    delivery.sort_by(f64::total_cmp);
    let expected = per_second * usize::try_from(seconds).unwrap();
    assert_eq!(fire.len(), expected, "every timer of the window fired");
    assert_eq!(
        delivery.len(),
        expected,
        "every message of the window was delivered"
    );
    let mut lateness_ms = Vec::new();
    for (what, samples) in [("fire", &fire), ("delivery", &delivery)] {
        for (name, p) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
            lateness_ms.push((format!("{what} {name}"), percentile(samples, p)));
        }
    }
    Measured {
        engine: "palabre".into(),
        backend: measure::backend(url),
        what: "lateness".into(),
        items: fire.len() as u64,
        seconds: run_for.as_secs_f64(),
        cpu_percent: cpu / run_for.as_secs_f64() * 100.0,
        rss_mib: measure::resident_mib(),
        lateness_ms,
    }
}

/// *Several workers*, set-up: `timers` due now in the shared database at `url`.
pub async fn plan_shared(url: &str, timers: u64) {
    store_with_due(url, timers).await;
}

/// The bench's present, on the recurrence's 5-second grid, shared by the
/// processes of one run (they start within the same minute).
fn bench_now() -> chrono::DateTime<Utc> {
    let now = Utc::now();
    now - TimeDelta::seconds(now.timestamp() % 60)
}

/// A worker of the shared database at `url`, named `owner`, on `clock`, its
/// leases `lease` long.
async fn shared_worker(url: &str, owner: &str, clock: Arc<dyn Clock>, lease: TimeDelta) -> Runtime {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(url, &palabre_store::Key::from_bytes([7; 32]))
        .await
        .unwrap();
    Runtime::new(
        store,
        definitions(dir.path(), &[("bench.yaml".into(), WORKFLOW.into())]),
        Connectors::default().with(Arc::new(NullConnector)),
        clock,
        RuntimeConfig {
            owner: owner.into(),
            lease,
            ..config(TimeDelta::zero())
        },
    )
}

/// *Several workers*, one of them: ticks until it finds nothing more to fire
/// or deliver; how many messages it delivered.
pub async fn work_shared(url: &str, owner: &str) -> Measured {
    let clock = Arc::new(VirtualClock::new(bench_now()));
    let runtime = shared_worker(url, owner, clock, RuntimeConfig::default().lease).await;
    ticks(&runtime, url, false).await
}

/// *Takeover*, one of the workers: on the real clock with leases of `lease`,
/// ticks until the database holds nothing left to send (another worker's
/// leases expire meanwhile, and their work comes to this one); how many
/// messages it delivered.
pub async fn work_until_all_sent(url: &str, owner: &str, lease: TimeDelta) -> Measured {
    let runtime = shared_worker(url, owner, Arc::new(SystemClock), lease).await;
    ticks(&runtime, url, true).await
}

/// Ticks `runtime` until a tick fires and sends nothing (and, if
/// `until_all_sent`, the database holds nothing left to send); what it delivered.
async fn ticks(runtime: &Runtime, url: &str, until_all_sent: bool) -> Measured {
    let start = Instant::now();
    let mut delivered = 0;
    loop {
        let report = runtime.tick().await.unwrap();
        delivered += report.sent;
        if report.fired == 0 && report.sent == 0 {
            if !until_all_sent || left(&runtime.store().status(Utc::now()).await.unwrap()) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Measured {
        engine: "palabre".into(),
        backend: measure::backend(url),
        what: "worker".into(),
        items: delivered as u64,
        seconds: start.elapsed().as_secs_f64(),
        cpu_percent: 0.0,
        rss_mib: measure::resident_mib(),
        lateness_ms: Vec::new(),
    }
}

/// How many times the ledger of the shared database at `url` records a message sent.
pub async fn sent_in_ledger(url: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM ledger WHERE event = 'sent'")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// What the shared database says at the end: messages sent, and still queued.
pub async fn sent_and_queued(url: &str) -> (i64, i64) {
    let store = Store::connect(url, &palabre_store::Key::from_bytes([7; 32]))
        .await
        .unwrap();
    let status = store.status(bench_now()).await.unwrap();
    (status.sent, left(&status))
}

/// Timers not yet fired and messages not yet sent.
fn left(status: &palabre_store::StatusCounts) -> i64 {
    status.late + status.queued + status.retrying
}
