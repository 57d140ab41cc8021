//! The peer benchmark's conductor: runs palabre and apalis side by side, on the
//! same database kinds, with the same N, alternating, each measurement in a
//! fresh child process (so that one's memory or caches never count for the
//! other), and prints medians and the ratio with the machine's load.
//!
//! ```text
//! cargo run --release --manifest-path benches/peers/Cargo.toml -- \
//!     [--timers 100000] [--rounds 3] [--idle-timers 1000000] \
//!     [--postgres postgres://postgres@127.0.0.1:5432/test] \
//!     [--postgres-socket 'postgres://postgres@localhost/test?host=/var/run/postgresql']
//! cargo run --release --manifest-path benches/peers/Cargo.toml -- national
//! ```

// A bench is a measurement harness: a broken set-up stops it with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apalis;
mod measure;
mod national;
mod palabre;

use std::process::Command;
use std::time::Duration;

use measure::Measured;

/// As in the palabre binary; apalis, measured in this same binary, runs on it too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU seconds this process uses over 10 s of wall time, after 2 s of settling.
async fn idle_cpu() -> f64 {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = measure::cpu_seconds();
    tokio::time::sleep(Duration::from_secs(10)).await;
    measure::cpu_seconds() - cpu
}

/// What one child process measures.
#[derive(Debug, Clone)]
struct Run {
    engine: &'static str,
    what: &'static str,
    /// A database URL; `sqlite` alone is a fresh file in a temporary folder.
    url: String,
    items: u64,
}

/// In a child: performs `run` and prints its result as one JSON line.
async fn measure_one(engine: &str, what: &str, url: &str, items: u64) {
    let dir = tempfile::tempdir().unwrap();
    let url = if url == "sqlite" {
        format!("sqlite://{}", dir.path().join("bench.db").display())
    } else if what.starts_with("shared") {
        // Several processes on one schema, made by the conductor.
        url.to_owned()
    } else {
        measure::fresh_schema(url, what).await
    };
    let measured = match (engine, what) {
        ("palabre", "throughput") => palabre::throughput(&url, items).await,
        ("palabre", "idle") => palabre::idle(&url, items).await,
        ("palabre", "lateness") => palabre::lateness(&url, 1_000, items).await,
        ("palabre", "shared-plan") => {
            palabre::plan_shared(&url, items).await;
            return;
        }
        ("palabre", "shared-work") => palabre::work_shared(&url, &format!("worker-{items}")).await,
        ("palabre", "shared-takeover") => {
            palabre::work_until_all_sent(&url, &format!("worker-{items}"), TAKEOVER_LEASE).await
        }
        ("apalis", "throughput") => apalis::throughput(&url, items).await,
        ("apalis", "idle") => apalis::idle(&url, items).await,
        other => panic!("no such measurement: {other:?}"),
    };
    println!("{}", serde_json::to_string(&measured).unwrap());
}

/// A fresh PostgreSQL schema named after `name` in `base`, with `timers` due
/// (planned by a child process): its URL.
fn planned_schema(
    runtime: &tokio::runtime::Runtime,
    base: &str,
    name: &str,
    timers: u64,
) -> String {
    let url = runtime.block_on(measure::fresh_schema(base, name));
    let exe = std::env::current_exe().unwrap();
    let status = Command::new(&exe)
        .args(["one", "palabre", "shared-plan", &url, &timers.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    url
}

/// A worker process `i` of the shared schema at `url`, measuring `what`.
fn worker(what: &str, url: &str, i: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["one", "palabre", what, url, &i.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// What a worker process measured, once it has exited.
fn measured_by(child: std::process::Child) -> Measured {
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let line = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    serde_json::from_str(&line).unwrap()
}

/// The lease of the workers of the takeover measurement (the engine's default
/// is 60 s; shorter, the measurement is shorter, and nothing else changes).
const TAKEOVER_LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// Two worker processes sharing one PostgreSQL schema with `timers` due, on the
/// real clock; one is SIGKILLed after `kill_after`, mid-burst. The survivor
/// takes over its work when its leases expire: how long after the kill the
/// last message was sent, whether every message was sent, and how often the
/// ledger records a message sent.
fn takeover(base: &str, timers: u64, kill_after: Duration) {
    println!(
        "\n## A worker SIGKILLed mid-burst, PostgreSQL (TCP), {timers} due, 2 workers, leases of {} s\n",
        TAKEOVER_LEASE.num_seconds()
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = planned_schema(&runtime, base, "takeover", timers);
    let (mut killed, survivor) = (
        worker("shared-takeover", &url, 0),
        worker("shared-takeover", &url, 1),
    );
    std::thread::sleep(kill_after);
    // `Child::kill` is SIGKILL on Unix: no clean stop, no lease given back.
    killed.kill().unwrap();
    let killed_at = std::time::Instant::now();
    killed.wait().unwrap();
    let (sent_before, _) = runtime.block_on(palabre::sent_and_queued(&url));
    let survived = measured_by(survivor);
    let after_kill = killed_at.elapsed().as_secs_f64();
    let (sent, left) = runtime.block_on(palabre::sent_and_queued(&url));
    let in_ledger = runtime.block_on(palabre::sent_in_ledger(&url));
    println!(
        "| killed after | sent at the kill | all sent, after the kill | delivered by the survivor | sent in the database | sent in the ledger | left |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {:.1} s | {sent_before} | {after_kill:.1} s | {} | {sent} | {in_ledger} | {left} |",
        kill_after.as_secs_f64(),
        survived.items
    );
}

/// 1, 2 and 4 worker processes sharing one PostgreSQL schema with `timers` due:
/// the time until all have stopped, and what the database says was sent.
fn several_workers(base: &str, timers: u64) {
    println!("\n## Several workers on one PostgreSQL (TCP), {timers} due\n");
    println!(
        "| workers | messages/s | delivered (sum over workers) | sent in the database | left |"
    );
    println!("|---|---|---|---|---|");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for workers in [1_u64, 2, 4] {
        let url = planned_schema(&runtime, base, &format!("workers{workers}"), timers);
        let start = std::time::Instant::now();
        let children: Vec<_> = (0..workers)
            .map(|i| worker("shared-work", &url, i))
            .collect();
        let delivered: u64 = children.into_iter().map(|c| measured_by(c).items).sum();
        let seconds = start.elapsed().as_secs_f64();
        let (sent, left) = runtime.block_on(palabre::sent_and_queued(&url));
        println!(
            "| {workers} | {:.0} | {delivered} | {sent} | {left} |",
            timers as f64 / seconds
        );
    }
}

/// Runs one measurement in a fresh child process.
fn child(run: &Run) -> Measured {
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(exe)
        .args([
            "one",
            run.engine,
            run.what,
            &run.url,
            &run.items.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{run:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{run:?} printed {line:?}: {e}"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("one") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let items = args[5].parse().unwrap();
        runtime.block_on(measure_one(&args[2], &args[3], &args[4], items));
        return;
    }
    if args.get(1).map(String::as_str) == Some("national") {
        // The release binary beside this one (cargo build --release first).
        let exe = std::env::current_exe().unwrap();
        let palabre = exe.with_file_name("palabre");
        assert!(
            palabre.exists(),
            "{} is missing: build it first (cargo build --release)",
            palabre.display()
        );
        let runtime = tokio::runtime::Runtime::new().unwrap();
        println!("load average before: {}", measure::load_average());
        let keep = args.get(2).map(std::path::Path::new);
        runtime.block_on(national::run(&palabre, keep));
        println!("load average after: {}", measure::load_average());
        return;
    }
    if args.get(1).map(String::as_str) == Some("takeover") {
        let url = args.get(2).expect("takeover needs a PostgreSQL URL");
        let timers = args.get(3).map_or(100_000, |n| n.parse().unwrap());
        println!("load average before: {}", measure::load_average());
        takeover(url, timers, Duration::from_millis(1500));
        println!("load average after: {}", measure::load_average());
        return;
    }
    if args.iter().any(|a| a == "--help") {
        println!("{}", include_str!("usage.txt"));
        return;
    }
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number = |flag: &str, default: u64| value(flag).map_or(default, |v| v.parse().unwrap());
    let timers = number("--timers", 100_000);
    // apalis-sqlite 1.0.0 acknowledges with a plan that scans every job its
    // worker ever locked (`UPDATE Jobs ... FROM json_each(?) WHERE lock_by = ?`,
    // the lock_by index first): its time grows with the square of N (20,000
    // jobs take 90 s here). It runs with fewer jobs, which can only favour it.
    let apalis_sqlite_timers = number("--apalis-sqlite-timers", 10_000);
    let rounds = number("--rounds", 3);
    let idle_timers = number("--idle-timers", 1_000_000);
    let mut databases = vec!["sqlite".to_owned()];
    databases.extend(value("--postgres"));
    databases.extend(value("--postgres-socket"));

    if databases.len() > 1 {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        for url in &databases[1..] {
            runtime.block_on(measure::clean_postgres(url));
        }
    }
    println!("load average before: {}", measure::load_average());
    println!("\n## Throughput: {timers} due, one worker, median of {rounds} (alternating)\n");
    println!("| backend | palabre messages/s | apalis jobs/s | ratio |");
    println!("|---|---|---|---|");
    for url in &databases {
        let mut rates = [Vec::new(), Vec::new()];
        for _ in 0..rounds {
            for (i, engine) in ["palabre", "apalis"].into_iter().enumerate() {
                let items = if engine == "apalis" && url == "sqlite" {
                    apalis_sqlite_timers.min(timers)
                } else {
                    timers
                };
                let run = Run {
                    engine,
                    what: "throughput",
                    url: url.clone(),
                    items,
                };
                let measured = child(&run);
                eprintln!(
                    "  {engine:<8} {:<18} {:>7} {:>9.0}/s ({:.2} s, {:.0} % CPU)",
                    measured.backend,
                    measured.items,
                    measured.rate(),
                    measured.seconds,
                    measured.cpu_percent
                );
                rates[i].push(measured.rate());
            }
        }
        let [palabre, apalis] = rates.map(median);
        println!(
            "| {} | {palabre:.0} | {apalis:.0} | {:.2}× |",
            measure::backend(url),
            palabre / apalis
        );
    }
    if apalis_sqlite_timers < timers {
        println!(
            "\napalis on SQLite ran {apalis_sqlite_timers} jobs, not {timers}: its acknowledgements \
             slow down with the square of the jobs done (see --apalis-sqlite-timers)."
        );
    }
    if idle_timers > 0 {
        println!("\n## Idle: {idle_timers} pending in the future, SQLite, 10 s\n");
        println!("| engine | CPU (% of one core) | RSS (MiB) |");
        println!("|---|---|---|");
        for engine in ["palabre", "apalis"] {
            let run = Run {
                engine,
                what: "idle",
                url: "sqlite".into(),
                items: idle_timers,
            };
            let measured = child(&run);
            println!(
                "| {engine} | {:.2} | {:.1} |",
                measured.cpu_percent, measured.rss_mib
            );
        }
    }
    if let Some(pg) = value("--postgres").filter(|_| number("--workers", 1) > 0) {
        several_workers(&pg, timers);
        takeover(&pg, timers, Duration::from_millis(1500));
    }
    let lateness_seconds = number("--lateness-seconds", 60);
    if lateness_seconds > 0 {
        println!(
            "\n## Lateness: 1,000 timers due every second for {lateness_seconds} s, serve loop on the real clock\n"
        );
        println!(
            "| backend | fire p50 | fire p99 | fire max | delivery p50 | delivery p99 | delivery max | CPU |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for url in &databases {
            let run = Run {
                engine: "palabre",
                what: "lateness",
                url: url.clone(),
                items: lateness_seconds,
            };
            let measured = child(&run);
            let cells: Vec<String> = measured
                .lateness_ms
                .iter()
                .map(|(_, ms)| format!("{ms:.0} ms"))
                .collect();
            println!(
                "| {} | {} | {:.0} % |",
                measured.backend,
                cells.join(" | "),
                measured.cpu_percent
            );
        }
    }
    println!("\nload average after: {}", measure::load_average());
}
