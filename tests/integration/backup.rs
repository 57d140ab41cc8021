//! Backups that restore: after `serve` stops cleanly the `.db` file alone holds
//! everything; `palabre backup` takes a consistent copy while `serve` fires a
//! burst, and `palabre restore` puts it in place of a database, read in full;
//! both refuse to overwrite, restore refuses a database in use and a file that
//! is not a palabre database; on PostgreSQL, backup says which tools to use.

use std::path::Path;
use std::time::Duration;

use sqlx::Connection;

use crate::serve::{
    import_directory, read_log, serve, spawn, terminate, wait_until, workspace_with_meeting,
};
use crate::smtp::SmtpServer;
use crate::util::{palabre, postgres_url, workspace_with_directory};

/// `palabre status --format json`'s counts for `db`, with the timers still to
/// fire counted together (whether one is "due later" or "late" depends on the
/// instant `status` runs, not on what the database holds).
fn counts(dir: &Path, db: &str) -> serde_json::Value {
    let run = palabre(dir, &["status", "--db", db, "--format", "json"]);
    assert_eq!(run.code, 0, "status --db {db}: {}", run.stderr);
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let mut counts = status["counts"].clone();
    let pending = counts["due_later"].as_i64().unwrap_or(0) + counts["late"].as_i64().unwrap_or(0);
    let map = counts.as_object_mut().unwrap();
    map.remove("due_later");
    map.remove("late");
    map.insert("pending".to_owned(), pending.into());
    counts
}

/// The ledger's length, read straight from a SQLite file.
async fn ledger_entries(file: &Path) -> i64 {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(false);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    n
}

/// The names in a folder, sorted.
fn names_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Waits until `serve` in `dir` has planned timers into `db`; their number.
fn wait_for_planning(dir: &Path, db: &str) -> i64 {
    let mut planned = 0;
    let done = wait_until(Duration::from_secs(60), || {
        let run = palabre(dir, &["status", "--db", db, "--format", "json"]);
        planned = serde_json::from_str::<serde_json::Value>(&run.stdout)
            .map(|v| v["counts"]["due_later"].as_i64().unwrap_or(0))
            .unwrap_or(0);
        planned > 0
    });
    assert!(done, "serve planned no timer");
    planned
}

/// After SIGTERM the WAL has been written into `palabre.db`: a copy of that one
/// file, and of nothing beside it, holds every timer `serve` planned. Nothing
/// else opens the database before the copy (the planning is seen in the log),
/// so only `serve`'s own stop can have put the timers into the file.
#[test]
fn a_clean_stop_leaves_everything_in_the_database_file() {
    let dir = workspace_with_directory();
    let db = "sqlite://palabre.db";
    let mut child = spawn(
        dir.path(),
        &["serve", "--db", db, "--reload-every", "0s"],
        &[("PALABRE_LOG", "info,palabre_engine::runtime=debug")],
    );
    let (log, _reader) = read_log(&mut child);
    let planned = || {
        let log = log.lock().unwrap();
        log.lines()
            .find(|l| l.contains("timers planned"))
            .and_then(|l| l.split("planned=").nth(1))
            .and_then(|n| n.split_whitespace().next())
            .and_then(|n| n.parse::<i64>().ok())
    };
    // Planned, and the tick over: an idle server, as most are when stopped.
    let seen = wait_until(Duration::from_secs(60), || {
        planned().is_some() && log.lock().unwrap().contains("sleeping")
    });
    assert!(seen, "serve planned no timer:\n{}", log.lock().unwrap());
    let planned = planned().unwrap();
    assert!(
        dir.path().join("palabre.db-wal").exists(),
        "serve keeps its writes in palabre.db-wal while it runs"
    );
    terminate(child);

    let wal = dir.path().join("palabre.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "palabre.db-wal still holds data after a clean stop"
    );
    // Only the .db file, copied before anything opens the original again.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("copy.db");
    std::fs::copy(dir.path().join("palabre.db"), &copy).unwrap();
    let copy_url = format!("sqlite://{}", copy.display());
    let copied = counts(dir.path(), &copy_url);
    let timers = ["pending", "fired", "skipped"]
        .iter()
        .map(|k| copied[k].as_i64().unwrap())
        .sum::<i64>();
    assert!(
        copied["pending"].as_i64().unwrap() > 0 && timers >= planned,
        "the copy of palabre.db lost the {planned} planned timers: {copied}"
    );
    assert_eq!(copied, counts(dir.path(), db), "the copy differs");
    let contacts = palabre(dir.path(), &["contacts", "list", "--db", &copy_url]);
    assert!(
        contacts.stdout.lines().count() > 200,
        "the copy lost the directory: {}",
        contacts.stdout
    );
}

/// A backup taken while `serve` delivers a burst of 300 mails is a consistent,
/// standalone database: restored into a new file, `status` reads it in full
/// (the same counts as the backup itself, a non-empty ledger), and the
/// restore leaves nothing beside it.
#[tokio::test]
async fn a_backup_taken_during_a_burst_restores_in_full() {
    let dir = workspace_with_meeting(5, &[3]);
    let db = format!("sqlite://{}", dir.path().join("palabre.db").display());
    import_directory(dir.path(), 300, &db);
    let smtp = SmtpServer::start();
    let mut child = serve(dir.path(), &db, &smtp, &[]);
    let firing = wait_until(Duration::from_secs(30), || smtp.mails().len() >= 20);
    std::fs::create_dir(dir.path().join("backups")).unwrap();
    let backup = palabre(dir.path(), &["backup", "backups/during.db", "--db", &db]);
    let at_backup = smtp.mails().len();
    let still_serving = child.try_wait().unwrap().is_none();
    let stderr = terminate(child);
    assert!(firing, "the burst never started\n{stderr}");
    assert_eq!(backup.code, 0, "{}", backup.stderr);
    assert!(still_serving, "serve stopped during the backup\n{stderr}");
    assert!(
        backup.stdout.contains("backups/during.db") && backup.stdout.contains("palabre restore"),
        "{}",
        backup.stdout
    );
    eprintln!("backup taken when {at_backup} of 300 mails had arrived");
    assert_eq!(
        names_in(&dir.path().join("backups")),
        ["during.db"],
        "the backup is one file, nothing beside it"
    );

    std::fs::create_dir(dir.path().join("restored")).unwrap();
    let restored_url = "sqlite://restored/palabre.db";
    let restore = palabre(
        dir.path(),
        &["restore", "backups/during.db", "--db", restored_url],
    );
    assert_eq!(restore.code, 0, "{}", restore.stderr);
    assert!(
        restore
            .stdout
            .contains("restored backups/during.db into restored/palabre.db")
            && restore.stdout.contains("300 contact(s)"),
        "{}",
        restore.stdout
    );
    assert_eq!(
        names_in(&dir.path().join("restored")),
        ["palabre.db"],
        "the restore left temporary or stale files"
    );
    let ledger = ledger_entries(&dir.path().join("restored/palabre.db")).await;
    assert!(ledger > 0, "the restored ledger is empty");
    assert_eq!(
        ledger,
        ledger_entries(&dir.path().join("backups/during.db")).await
    );

    let restored = counts(dir.path(), restored_url);
    let backed_up = counts(dir.path(), "sqlite://backups/during.db");
    assert_eq!(
        restored, backed_up,
        "the restored database differs from its backup"
    );
    assert_eq!(
        restored["fired"], 1,
        "the burst's timer had fired: {restored}"
    );
    let messages = ["queued", "retrying", "sent", "dead_lettered"]
        .iter()
        .map(|k| restored[k].as_i64().unwrap())
        .sum::<i64>();
    assert_eq!(
        messages, 300,
        "the burst's messages, all of them: {restored}"
    );
    assert!(
        restored["sent"].as_i64().unwrap() > 0,
        "the mails sent before the backup are recorded in it: {restored}"
    );
}

/// Neither command overwrites by default: backup refuses an existing file,
/// restore an existing database without --force, and a file that is not a
/// palabre database whatever the flags; what they refused is left as it was.
#[test]
fn backup_and_restore_refuse_to_overwrite_or_to_restore_something_else() {
    let dir = workspace_with_directory();
    std::fs::write(dir.path().join("kept.db"), "keep me").unwrap();
    let refused = palabre(dir.path(), &["backup", "kept.db"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("kept.db already exists")
            && refused.stderr.contains("never overwrites"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("kept.db")).unwrap(),
        "keep me"
    );

    let made = palabre(dir.path(), &["backup", "copy.db"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let before = counts(dir.path(), "sqlite://palabre.db");
    let refused = palabre(dir.path(), &["restore", "copy.db"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("palabre.db already exists") && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );

    let refused = palabre(
        dir.path(),
        &["restore", "kept.db", "--db", "sqlite://new.db"],
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("kept.db is not a palabre database"),
        "{}",
        refused.stderr
    );
    assert!(!dir.path().join("new.db").exists());
    let refused = palabre(dir.path(), &["restore", "missing.db", "--force"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("no backup file at missing.db"),
        "{}",
        refused.stderr
    );
    assert_eq!(counts(dir.path(), "sqlite://palabre.db"), before);
    let names = names_in(dir.path());
    assert!(
        !names
            .iter()
            .any(|n| n.contains(".restoring-") || n.contains(".partial-")),
        "temporary files left: {names:?}"
    );
}

/// A forced restore is refused while `serve` has the database open, and done
/// once it stopped: the database is then the backup's.
#[test]
fn a_forced_restore_waits_for_the_database_to_be_free() {
    let dir = workspace_with_directory();
    let made = palabre(dir.path(), &["backup", "before.db"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let backed_up = counts(dir.path(), "sqlite://before.db");
    let child = spawn(
        dir.path(),
        &[
            "serve",
            "--db",
            "sqlite://palabre.db",
            "--reload-every",
            "0s",
        ],
        &[],
    );
    wait_for_planning(dir.path(), "sqlite://palabre.db");
    let refused = palabre(dir.path(), &["restore", "before.db", "--force"]);
    terminate(child);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("palabre.db is in use") && refused.stderr.contains("stop it"),
        "{}",
        refused.stderr
    );
    assert_ne!(
        counts(dir.path(), "sqlite://palabre.db"),
        backed_up,
        "serve planned timers the backup does not have"
    );

    let restored = palabre(dir.path(), &["restore", "before.db", "--force"]);
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert_eq!(counts(dir.path(), "sqlite://palabre.db"), backed_up);
}

/// A `-wal` file left beside the database's name (by a process killed while it
/// wrote another database there) is removed, not applied to the restored file,
/// which SQLite would otherwise do at its next opening.
#[tokio::test]
async fn a_stale_wal_file_is_not_applied_to_the_restored_database() {
    let dir = workspace_with_directory();
    let made = palabre(dir.path(), &["backup", "copy.db"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let backed_up = counts(dir.path(), "sqlite://copy.db");
    // A real WAL with committed frames: another database's, not checkpointed.
    let other = dir.path().join("other.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&other)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE notes (text TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO notes VALUES ('not palabre')")
        .execute(&mut conn)
        .await
        .unwrap();
    let wal = std::fs::read(dir.path().join("other.db-wal")).unwrap();
    assert!(!wal.is_empty());
    conn.close().await.unwrap();
    std::fs::write(dir.path().join("fresh.db-wal"), &wal).unwrap();

    let restored = palabre(
        dir.path(),
        &["restore", "copy.db", "--db", "sqlite://fresh.db"],
    );
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert!(!dir.path().join("fresh.db-wal").exists(), "stale -wal kept");
    assert_eq!(counts(dir.path(), "sqlite://fresh.db"), backed_up);
    let contacts = palabre(
        dir.path(),
        &["contacts", "list", "--db", "sqlite://fresh.db"],
    );
    assert!(
        contacts.stdout.lines().count() > 200,
        "the restored directory was overwritten: {}",
        contacts.stdout
    );
}

/// On PostgreSQL, backup copies nothing and says so, with the pg_dump and
/// pg_restore commands for the configured database (its password not shown),
/// and exits 0; restore refuses with the pg_restore command.
#[test]
fn on_postgres_backup_gives_the_pg_dump_commands() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![(
        "postgres://palabre:s3cret@db.example.org:5433/palabre?sslmode=require".to_owned(),
        "postgres://palabre@db.example.org:5433/palabre?sslmode=require".to_owned(),
    )];
    if let Some(url) = postgres_url() {
        urls.push((url.clone(), url));
    }
    for (url, shown) in urls {
        let run = palabre(dir.path(), &["backup", "palabre.dump", "--db", &url]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout.contains(&format!(
                "pg_dump --format=custom --file=palabre.dump '{shown}'"
            )) && run.stdout.contains(&format!(
                "pg_restore --clean --if-exists --no-owner --dbname='{shown}' palabre.dump"
            )) && run.stdout.contains("has copied nothing"),
            "{}",
            run.stdout
        );
        assert!(!run.stdout.contains("s3cret"), "the password was shown");
        assert!(!dir.path().join("palabre.dump").exists());

        let run = palabre(dir.path(), &["restore", "palabre.dump", "--db", &url]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains("pg_restore"), "{}", run.stderr);
    }
}
