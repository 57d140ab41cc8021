//! What every measurement shares: the process's CPU time and resident memory
//! (from /proc), the machine's load, a fresh PostgreSQL schema per run, and the
//! one-line result a measuring child process prints for the conductor.

use serde::{Deserialize, Serialize};

/// One measurement, as a child process reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measured {
    pub engine: String,
    pub backend: String,
    pub what: String,
    /// Items done (messages delivered, jobs acknowledged) or pending (idle).
    pub items: u64,
    /// Wall time of the timed part.
    pub seconds: f64,
    /// Percent of one core used over the timed part.
    pub cpu_percent: f64,
    /// Resident memory at the end.
    pub rss_mib: f64,
    /// Lateness percentiles in milliseconds (lateness runs only): to fire, to delivery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lateness_ms: Vec<(String, f64)>,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        self.items as f64 / self.seconds
    }
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat.
pub fn cpu_seconds() -> f64 {
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

pub fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The 1-, 5- and 15-minute load averages, as /proc/loadavg says them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A fresh schema for one run on PostgreSQL, so that runs never see each other's
/// rows; the URL's connections use it.
pub async fn fresh_schema(base: &str, name: &str) -> String {
    use sqlx::Connection;
    let schema = format!("palabre_bench_{name}_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
    for sql in [
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
        // apalis-postgres keeps its tables in a schema of its own.
        "DROP SCHEMA IF EXISTS apalis CASCADE".to_owned(),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let separator = if base.contains('?') { '&' } else { '?' };
    // `public` after it: where apalis's extensions (hstore, pgcrypto) live.
    format!("{base}{separator}options=-c%20search_path%3D{schema}%2Cpublic")
}

/// Drops the schemas earlier runs left (and apalis's), and makes sure the
/// extensions apalis-postgres needs are in `public`, where every run sees them.
pub async fn clean_postgres(base: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
    let leftovers: Vec<(String,)> = sqlx::query_as(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'palabre\\_bench\\_%' OR nspname = 'apalis'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for (schema,) in leftovers {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for extension in ["hstore", "pgcrypto"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE EXTENSION IF NOT EXISTS {extension} SCHEMA public"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

/// What a database URL names, for the tables.
pub fn backend(url: &str) -> String {
    if url.starts_with("sqlite") {
        "sqlite".to_owned()
    } else if url.contains("host=/") {
        "postgres (socket)".to_owned()
    } else {
        "postgres (tcp)".to_owned()
    }
}

/// The `p`-th percentile (0..=100) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
