//! Encryption at rest on SQLite and PostgreSQL: after the invented directory is
//! imported and a meeting runs with replies (by the engine and by the API's
//! webhook), no name, phone or email of it is in the bytes of the SQLite file,
//! its WAL and SHM, nor in a `pg_dump`; and everything still works. A database
//! in clear is sealed once at its first opening with a key; a wrong or missing
//! key is refused and changes nothing; `palabre key init` and `key rotate`, and
//! a rotation finished after it was interrupted.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use palabre_core::clock::VirtualClock;
use palabre_core::webhooks::InboundSms;
use palabre_engine::commands::InboundOutcome;
use palabre_lang::occurrence::occurrence_reference;
use palabre_store::{Key, Store};
use sqlx::Row;

use crate::erasure::every_value;
use crate::runtime::{Recorder, World, at, invite_to_the_seventh, worlds};
use crate::util::{TEST_KEY, api_request, palabre, repo, test_key, workspace_with_directory};

/// The directory's people as the file writes them: (id, name, phone, email).
fn people() -> Vec<(String, String, String, String)> {
    let csv = std::fs::read_to_string(repo().join("examples/directory.csv")).unwrap();
    csv.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 8, "{line}");
            (
                fields[0].to_owned(),
                fields[1].to_owned(),
                fields[4].to_owned(),
                fields[5].to_owned(),
            )
        })
        .collect()
}

/// What must appear nowhere: every name, every email, every phone as written,
/// as stored (`+223…`) and as its eight digits.
fn needles() -> Vec<String> {
    let mut needles = Vec::new();
    for (_, name, phone, email) in people() {
        needles.push(name);
        if !email.is_empty() {
            needles.push(email);
        }
        if !phone.is_empty() {
            let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
            needles.push(format!("+{digits}"));
            needles.push(digits[3..].to_owned());
            needles.push(phone);
        }
    }
    needles
}

/// The needles found in `haystack`. (Read as UTF-8 with invalid bytes
/// replaced: a replacement never swallows the first byte of a valid sequence,
/// so every needle present is still found.)
fn found_in(haystack: &[u8], needles: &[String]) -> Vec<String> {
    let text = String::from_utf8_lossy(haystack);
    needles
        .iter()
        .filter(|needle| text.contains(needle.as_str()))
        .cloned()
        .collect()
}

/// The SQLite files of a world's database, as bytes (those that exist).
fn sqlite_bytes(url: &str) -> Vec<(String, Vec<u8>)> {
    let file = url.strip_prefix("sqlite://").unwrap();
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let path = format!("{file}{suffix}");
            std::fs::read(&path).ok().map(|bytes| (path, bytes))
        })
        .collect()
}

/// A `pg_dump` of the schema a world's PostgreSQL URL points at.
fn pg_dump(url: &str) -> Vec<u8> {
    let (base, options) = url.split_once("?options=").unwrap();
    let schema = options.rsplit("search_path%3D").next().unwrap();
    let output = std::process::Command::new("pg_dump")
        .args(["--dbname", base, "--schema", schema])
        .output()
        .expect("pg_dump runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dump = output.stdout;
    assert!(
        String::from_utf8_lossy(&dump).contains("COPY"),
        "the dump holds the tables"
    );
    dump
}

/// The directory imported into a world's database.
async fn import_the_directory(world: &World) {
    let csv = std::fs::read_to_string(repo().join("examples/directory.csv")).unwrap();
    world.add_csv(&csv).await;
}

#[tokio::test]
async fn no_name_phone_or_email_is_in_the_files_or_a_dump_and_everything_still_works() {
    let needles = needles();
    assert!(needles.len() > 600, "{}", needles.len());
    for world in worlds("sealed", "once").await {
        import_the_directory(&world).await;
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (sms, email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        invite_to_the_seventh(&runtime, &clock).await;
        // The invitations went to the directory's people of Koro, by their
        // numbers and addresses, read from the sealed directory.
        let texts = sms.delivered.lock().unwrap().clone();
        assert!(
            texts.iter().any(|m| m.to_address == "+22365138230"),
            "c-0109 was invited by SMS: {:?}",
            texts.iter().map(|m| &m.key).collect::<Vec<_>>()
        );
        assert!(
            email
                .delivered
                .lock()
                .unwrap()
                .iter()
                .any(|m| m.to_address == "allaye.barry.206@example.org"),
            "c-0206 was invited by email"
        );

        // Replies matched by number (through the blind index): one through the
        // engine, written as people write numbers, one through the API's webhook.
        let reference = occurrence_reference("weekly-koro", at("2026-12-07T09:00:00Z"));
        let answered = runtime
            .commands()
            .inbound_sms(&InboundSms::new("65 13 82 30", format!("awo {reference}")))
            .await
            .unwrap();
        assert!(
            matches!(&answered, InboundOutcome::Answered { contact, .. } if contact == "c-0109"),
            "{answered:?}"
        );
        let webhook = api_request(
            runtime.commands(),
            Request::builder()
                .method("POST")
                .uri("/inbound/sms/s3cret")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "from=%2B22373893443&text=EEY+{reference}"
                )))
                .unwrap(),
        )
        .await;
        assert_eq!(webhook.status, StatusCode::OK, "{:?}", webhook.body);
        let responses = runtime
            .store()
            .responses("weekly-koro", at("2026-12-07T09:00:00Z"))
            .await
            .unwrap();
        assert_eq!(responses.get("c-0109").map(String::as_str), Some("yes"));
        assert_eq!(responses.get("c-0110").map(String::as_str), Some("yes"));
        // The confirmations are delivered, to the numbers that wrote.
        crate::runtime::run_until(&runtime, &clock, at("2026-12-04T10:00:00Z")).await;
        assert!(
            sms.delivered.lock().unwrap().len() > texts.len(),
            "confirmations sent"
        );

        // Not one value in clear in any row of any table.
        let in_clear: Vec<String> = every_value(&world.url)
            .await
            .into_iter()
            .filter(|(_, value)| !found_in(value.as_bytes(), &needles).is_empty())
            .map(|(column, _)| column)
            .collect();
        assert!(in_clear.is_empty(), "in clear: {in_clear:?}");

        // Nor in the files (the WAL while the database is open, then closed), nor a dump.
        let store = runtime.store().clone();
        if world.url.starts_with("sqlite:") {
            for (path, bytes) in sqlite_bytes(&world.url) {
                let found = found_in(&bytes, &needles);
                assert!(found.is_empty(), "{path} holds {found:?}");
            }
            store.close().await;
            let files = sqlite_bytes(&world.url);
            assert!(
                files[0].1.len() > 100_000,
                "the database holds the directory"
            );
            for (path, bytes) in files {
                let found = found_in(&bytes, &needles);
                assert!(found.is_empty(), "{path} holds {found:?}");
            }
        } else {
            let dump = pg_dump(&world.url);
            let found = found_in(&dump, &needles);
            assert!(found.is_empty(), "pg_dump holds {found:?}");
        }

        // Everything reads back in clear with the key: the directory, with
        // --reveal, through the binary; the preview.
        let folder = world.workflows.to_str().unwrap();
        let listed = palabre(
            Path::new("."),
            &[
                "contacts",
                "list",
                "--reveal",
                "--db",
                &world.url,
                "--workflows",
                folder,
            ],
        );
        assert_eq!(listed.code, 0, "{}", listed.stderr);
        for (id, name, _, _) in people().iter().take(40) {
            let line = listed.stdout.lines().find(|l| l.contains(id.as_str()));
            assert!(
                line.is_some_and(|l| l.contains(name.as_str())),
                "{id} {name}: {line:?}"
            );
        }
        assert!(listed.stdout.contains("+22365138230"), "{}", listed.stdout);
        let preview = palabre(
            Path::new("."),
            &[
                "preview",
                "--db",
                &world.url,
                "--workflows",
                folder,
                "--from",
                "2026-12-04",
                "--days",
                "7",
            ],
        );
        assert_eq!(preview.code, 0, "{}", preview.stderr);
        assert!(preview.stdout.contains("c-0109"), "{}", preview.stdout);
    }
}

/// Puts a world's database back as a version before encryption left it: the
/// directory and a ledger detail in clear, no key recorded, no blind index.
async fn unseal_by_hand(world: &World) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&world.url).await.unwrap();
    for (id, name, phone, email) in [
        ("c-1", "Awa Diallo", Some("+22376112233"), None),
        ("c-2", "Hama Bocoum", Some("+22366445566"), None),
        ("c-3", "Oumar Tall", None, Some("oumar@example.org")),
    ] {
        sqlx::query(
            "UPDATE contacts SET name = $1, phone = $2, email = $3, phone_index = NULL, \
             email_index = NULL WHERE id = $4",
        )
        .bind(name)
        .bind(phone)
        .bind(email)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    run_sql(
        &world.url,
        &[
            "INSERT INTO ledger (at, event, workflow, occurrence, step, contact_id, channel, \
             detail) VALUES (1, 'reply', NULL, NULL, NULL, 'c-1', NULL, 'Awa Diallo said yes')",
            "DELETE FROM sealing",
        ],
    )
    .await;
}

/// Runs statements on the database at `url`, as another program would.
async fn run_sql(url: &str, statements: &[&str]) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement.to_string()))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

/// The stored values of one column.
async fn stored(url: &str, sql: &str) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let values = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<Option<String>, _>(0).unwrap_or_default())
        .collect();
    pool.close().await;
    values
}

#[tokio::test]
async fn a_database_in_clear_is_sealed_once_at_its_first_opening_with_a_key() {
    for world in worlds("unsealed", "once").await {
        unseal_by_hand(&world).await;
        let names = stored(&world.url, "SELECT name FROM contacts ORDER BY id").await;
        assert_eq!(names, ["Awa Diallo", "Hama Bocoum", "Oumar Tall"]);
        if world.url.starts_with("sqlite:") {
            // The search of the files finds what is there in clear.
            let files = sqlite_bytes(&world.url);
            assert!(
                files
                    .iter()
                    .any(|(_, bytes)| !found_in(bytes, &["Awa Diallo".into()]).is_empty()),
                "the clear name is in the files before sealing"
            );
        }

        let store = Store::connect(&world.url, &test_key()).await.unwrap();
        // Three contacts and one ledger entry.
        assert_eq!(store.rows_sealed_at_opening(), 4);
        store.close().await;
        for sql in [
            "SELECT name FROM contacts",
            "SELECT phone FROM contacts WHERE phone IS NOT NULL",
            "SELECT detail FROM ledger",
        ] {
            let values = stored(&world.url, sql).await;
            assert!(!values.is_empty());
            assert!(
                values.iter().all(|v| v.starts_with("p1.")),
                "{sql}: {values:?}"
            );
        }
        if world.url.starts_with("sqlite:") {
            for (path, bytes) in sqlite_bytes(&world.url) {
                let found = found_in(&bytes, &["Awa Diallo".into(), "76112233".into()]);
                assert!(found.is_empty(), "{path} still holds {found:?}");
            }
        }

        // Once: the next opening seals nothing; the values read back, the
        // number is found again by its index.
        let again = Store::connect(&world.url, &test_key()).await.unwrap();
        assert_eq!(again.rows_sealed_at_opening(), 0);
        let found = again
            .contact_by_phone("+22376112233")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.id.as_str(), found.name.as_str()),
            ("c-1", "Awa Diallo")
        );
        let ledger = again.ledger(None, 10).await.unwrap();
        assert!(ledger.iter().any(|e| e.detail == "Awa Diallo said yes"));
        again.close().await;
    }
}

#[test]
fn the_first_opening_of_a_clear_database_says_how_many_rows_it_sealed() {
    let dir = workspace_with_directory();
    let url = format!("sqlite://{}", dir.path().join("palabre.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(run_sql(
        &url,
        &[
            "UPDATE contacts SET name = 'Boubacar Sow' WHERE id = 'c-0001'",
            "DELETE FROM sealing",
        ],
    ));
    let run = palabre(dir.path(), &["contacts", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("encrypted 1 row(s) of sqlite://palabre.db that were in clear"),
        "{}",
        run.stderr
    );
    let run = palabre(dir.path(), &["contacts", "list"]);
    assert!(!run.stderr.contains("encrypted"), "{}", run.stderr);
}

/// Runs the binary in `dir` with the key in `key_file` (no `PALABRE_KEY`).
fn with_key_file(dir: &Path, args: &[&str], key_file: &str) -> crate::util::Run {
    let mut all = args.to_vec();
    all.extend(["--key-file", key_file]);
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("palabre");
    let output = cmd
        .current_dir(dir)
        .args(&all)
        .env_remove("PALABRE_KEY")
        .env_remove("PALABRE_KEY_FILE")
        .env_remove("PALABRE_DATABASE_URL")
        .env_remove("PALABRE_WORKFLOWS")
        .output()
        .unwrap();
    crate::util::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn database_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("palabre.db")).unwrap()
}

#[test]
fn a_wrong_or_missing_key_is_refused_at_start_and_changes_nothing() {
    let dir = workspace_with_directory();
    let before = database_bytes(dir.path());

    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("palabre");
    let missing = cmd
        .current_dir(dir.path())
        .args(["contacts", "list"])
        .env_remove("PALABRE_KEY")
        .env_remove("PALABRE_KEY_FILE")
        .env_remove("PALABRE_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(
        said.contains("no key for the database sqlite://palabre.db")
            && said.contains("palabre key init --key-file FILE"),
        "{said}"
    );

    let other = with_key_file(dir.path(), &["key", "init"], "other.key");
    assert_eq!(other.code, 0, "{}", other.stderr);
    for args in [
        &["contacts", "list", "--reveal"][..],
        &["serve", "--http", "off"][..],
        &["status"][..],
    ] {
        let run = with_key_file(dir.path(), args, "other.key");
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("is not this database's key")
                && run.stderr.contains("nothing was read or written"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stdout.contains("Boubacar"), "{}", run.stdout);
    }
    let malformed = dir.path().join("bad.key");
    std::fs::write(&malformed, "not a key\n").unwrap();
    std::fs::set_permissions(
        &malformed,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let run = with_key_file(dir.path(), &["status"], "bad.key");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("the key file bad.key") && run.stderr.contains("not a palabre key"),
        "{}",
        run.stderr
    );
    assert_eq!(database_bytes(dir.path()), before, "nothing was written");
}

#[test]
fn key_init_writes_a_private_file_once_and_rotate_moves_everything_to_the_new_key() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = workspace_with_directory();
    std::fs::write(dir.path().join("old.key"), format!("{TEST_KEY}\n")).unwrap();
    std::fs::set_permissions(
        dir.path().join("old.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();

    let init = with_key_file(dir.path(), &["key", "init"], "new.key");
    assert_eq!(init.code, 0, "{}", init.stderr);
    assert!(
        init.stdout.contains("readable by you only"),
        "{}",
        init.stdout
    );
    let mode = std::fs::metadata(dir.path().join("new.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let written = std::fs::read_to_string(dir.path().join("new.key")).unwrap();
    let again = with_key_file(dir.path(), &["key", "init"], "new.key");
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("never overwritten"),
        "{}",
        again.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new.key")).unwrap(),
        written
    );

    // A key file others can read is refused.
    std::fs::set_permissions(
        dir.path().join("new.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let open = with_key_file(dir.path(), &["status"], "new.key");
    assert!(
        open.stderr.contains("can be read by others"),
        "{}",
        open.stderr
    );
    std::fs::set_permissions(
        dir.path().join("new.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();

    let rotated = with_key_file(
        dir.path(),
        &["key", "rotate", "--new-key-file", "new.key"],
        "old.key",
    );
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    let new_id = Key::parse(&written).unwrap().id();
    assert!(
        rotated.stdout.contains("re-encrypted") && rotated.stdout.contains(&new_id),
        "{}",
        rotated.stdout
    );
    // The old key opens nothing; the new one everything.
    let old = with_key_file(dir.path(), &["contacts", "list", "--reveal"], "old.key");
    assert!(
        old.stderr.contains("is not this database's key"),
        "{}",
        old.stderr
    );
    let new = with_key_file(dir.path(), &["contacts", "list", "--reveal"], "new.key");
    assert_eq!(new.code, 0, "{}", new.stderr);
    assert!(new.stdout.contains("Boubacar Sow"), "{}", new.stdout);
    let url = format!("sqlite://{}", dir.path().join("palabre.db").display());
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let names = tokio.block_on(stored(&url, "SELECT name FROM contacts"));
    assert!(
        names
            .iter()
            .all(|n| n.starts_with(&format!("p1.{new_id}."))),
        "{names:?}"
    );
    let twice = with_key_file(
        dir.path(),
        &["key", "rotate", "--new-key-file", "new.key"],
        "new.key",
    );
    assert!(
        twice.stderr.contains("holds the database's key already"),
        "{}",
        twice.stderr
    );
}

#[tokio::test]
async fn an_interrupted_rotation_blocks_openings_and_finishes_when_run_again() {
    for world in worlds("rotation", "once").await {
        let (old, new) = (test_key(), Key::generate().unwrap());
        // The state a crash after the first batches leaves: the rotation
        // recorded (its check value taken from a database sealed under the new key).
        let other = tempfile::tempdir().unwrap();
        let other_url = format!("sqlite://{}", other.path().join("new.db").display());
        Store::connect(&other_url, &new)
            .await
            .unwrap()
            .close()
            .await;
        let check = stored(&other_url, "SELECT key_check FROM sealing").await;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&world.url).await.unwrap();
        sqlx::query("UPDATE sealing SET rotating_to = $1, rotating_check = $2")
            .bind(new.id())
            .bind(&check[0])
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;

        for key in [&old, &new] {
            let refused = Store::connect(&world.url, key).await.unwrap_err();
            assert!(refused.to_string().contains("did not finish"), "{refused}");
        }
        let rotated = Store::rotate_key(&world.url, &old, &new).await.unwrap();
        assert!(rotated.changed);
        assert!(rotated.rows >= 3, "{rotated:?}");
        let store = Store::connect(&world.url, &new).await.unwrap();
        let c1 = store
            .contact_by_phone("+22376112233")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c1.name, "Awa Diallo");
        store.close().await;
        let refused = Store::connect(&world.url, &old).await.unwrap_err();
        assert!(refused.to_string().contains("is not this database's key"));
    }
}

#[test]
fn validate_without_the_key_checks_the_files_and_says_the_directory_was_not_read() {
    let dir = workspace_with_directory();
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("palabre");
    let output = cmd
        .current_dir(dir.path())
        .arg("validate")
        .env_remove("PALABRE_KEY")
        .env_remove("PALABRE_KEY_FILE")
        .env_remove("PALABRE_DATABASE_URL")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(
        said.contains("recipients not checked against the directory in sqlite://palabre.db")
            && said.contains("workflow(s) valid"),
        "{said}"
    );
    // With the key, the directory is read.
    let with_key = palabre(dir.path(), &["validate"]);
    assert_eq!(with_key.code, 0, "{}", with_key.stderr);
    assert!(
        with_key
            .stderr
            .contains("recipients checked against 238 contacts"),
        "{}",
        with_key.stderr
    );
}
