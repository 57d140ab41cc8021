//! Helpers shared by the integration tests: running the binary, temporary
//! workflows folders and databases.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The database key every test runs with (given to the binary as `PALABRE_KEY`).
pub const TEST_KEY: &str =
    "palabre-key-v1 0707070707070707070707070707070707070707070707070707070707070707";

pub fn test_key() -> palabre_store::Key {
    palabre_store::Key::parse(TEST_KEY).unwrap()
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `palabre ARGS` in `dir` with a clean environment. Every run must end on its
/// own (a hang fails the test) and never panic, whatever the input.
pub fn palabre(dir: &Path, args: &[&str]) -> Run {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("palabre");
    cmd.current_dir(dir)
        .args(args)
        .env_remove("PALABRE_DATABASE_URL")
        .env_remove("PALABRE_WORKFLOWS")
        .env_remove("PALABRE_LOG")
        .env_remove("PALABRE_KEY_FILE")
        .env("PALABRE_KEY", TEST_KEY)
        .timeout(Duration::from_secs(120));
    let output = cmd.output().expect("the palabre binary runs");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked") && run.code >= 0,
        "palabre {args:?} crashed:\n{}",
        run.stderr
    );
    run
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A temporary folder holding a copy of the shipped `workflows/`.
pub fn workspace() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("workflows"), &dir.path().join("workflows"));
    dir
}

/// A temporary folder with the shipped workflows and the invented directory imported
/// into its default SQLite database.
pub fn workspace_with_directory() -> TempDir {
    let dir = workspace();
    let csv = repo().join("examples/directory.csv");
    let run = palabre(dir.path(), &["contacts", "import", csv.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    dir
}

/// The PostgreSQL URL for tests, or `None` outside CI when it is not configured.
/// In CI (`CI` set) a missing URL fails the test: both backends are tested on every run.
pub fn postgres_url() -> Option<String> {
    match std::env::var("PALABRE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("PALABRE_TEST_POSTGRES_URL must be set in CI")
        }
        _ => {
            eprintln!("PALABRE_TEST_POSTGRES_URL is not set: PostgreSQL part skipped");
            None
        }
    }
}

/// A fresh, empty PostgreSQL schema for one test; returns a URL whose connections use it.
pub async fn fresh_postgres_schema(base: &str, name: &str) -> String {
    use sqlx::Connection;
    let schema = format!("palabre_test_{name}_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .expect("PostgreSQL is reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}

/// What the API answered an in-process request: status, whether it is JSON,
/// and the body (JSON when it is JSON, else its text as a JSON string).
pub(crate) struct Answered {
    pub status: axum::http::StatusCode,
    pub json: bool,
    pub body: serde_json::Value,
}

/// Sends `request` to a router made afresh over `commands` (nothing kept between
/// calls but the database, as between workers), with the inbound secret
/// `s3cret` and the plain webhook format.
pub(crate) async fn api_request(
    commands: &palabre_engine::commands::Commands,
    request: axum::http::Request<axum::body::Body>,
) -> Answered {
    use tower::ServiceExt;
    let response = palabre_api::router(palabre_api::ApiState {
        commands: commands.clone(),
        inbound_secret: Some("s3cret".into()),
        webhooks: palabre_sms::gateways::webhooks(None).unwrap(),
        voice: None,
    })
    .oneshot(request)
    .await
    .unwrap();
    let status = response.status();
    let json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    });
    Answered { status, json, body }
}

/// Every `revealed` entry of the ledger, and the whole ledger as text.
pub(crate) async fn revealed_entries(
    store: &palabre_store::Store,
) -> (Vec<palabre_store::LedgerEntry>, String) {
    let ledger = store.ledger(None, 10_000).await.unwrap();
    let text = serde_json::to_string(&ledger).unwrap();
    let revealed = ledger
        .into_iter()
        .filter(|e| e.event == "revealed")
        .collect();
    (revealed, text)
}
