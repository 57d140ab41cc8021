//! Failures that say what is wrong, at once: a database server that is down or
//! lacks the database, a mistyped SQLite path on a command that only reads (no
//! empty database is created), a second server on a taken HTTP port, and a
//! worker's graceful stop, which gives its unfinished work back.

use std::sync::Arc;

use chrono::TimeDelta;
use palabre_core::clock::VirtualClock;

use crate::runtime::{Recorder, at, worlds};
use crate::util::{palabre, postgres_url, workspace};

#[test]
fn an_unreachable_or_missing_database_is_named_at_once() {
    let dir = workspace();
    // Nothing listens on port 1: refused at once, not after a pool's timeout.
    let down = palabre(
        dir.path(),
        &["status", "--db", "postgres://postgres@127.0.0.1:1/test"],
    );
    assert_eq!(down.code, 2, "{}", down.stderr);
    assert!(
        down.stderr
            .contains("cannot reach the database at 127.0.0.1:1: connection refused"),
        "{}",
        down.stderr
    );
    let Some(base) = postgres_url() else { return };
    let (server, _) = base.rsplit_once('/').unwrap();
    let missing = palabre(
        dir.path(),
        &[
            "status",
            "--db",
            &format!("{server}/palabre_no_such_database"),
        ],
    );
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert_eq!(
        missing.stderr.matches("palabre_no_such_database").count(),
        2,
        "named once, with the way to create it: {}",
        missing.stderr
    );
    assert!(
        missing
            .stderr
            .contains("there is no database 'palabre_no_such_database'")
            && !missing.stderr.contains("line"),
        "no internal line numbers: {}",
        missing.stderr
    );
}

#[test]
fn reading_commands_never_create_a_database() {
    let dir = workspace();
    let typo = "sqlite://typo.db";
    let listed = palabre(dir.path(), &["contacts", "list", "--db", typo]);
    assert_eq!(listed.code, 2, "{}", listed.stderr);
    assert!(
        listed.stderr.contains("no database at sqlite://typo.db"),
        "{}",
        listed.stderr
    );
    let validated = palabre(dir.path(), &["validate", "--db", typo]);
    assert_eq!(validated.code, 0, "{}", validated.stderr);
    assert!(
        validated
            .stderr
            .contains("no database at sqlite://typo.db: recipients not checked"),
        "{}",
        validated.stderr
    );
    let previewed = palabre(dir.path(), &["preview", "--db", typo]);
    assert_eq!(previewed.code, 0, "{}", previewed.stderr);
    assert!(
        !dir.path().join("typo.db").exists(),
        "a reading command created it"
    );

    // A command that writes creates it, and says so.
    std::fs::write(
        dir.path().join("people.csv"),
        "id,name,roles,place,phone,email,language,channels\n\
         c-1,Awa Diallo,leader,mopti/koro/koro,76 11 22 33,,bam,sms\n",
    )
    .unwrap();
    let imported = palabre(
        dir.path(),
        &["contacts", "import", "people.csv", "--db", typo],
    );
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    assert!(
        imported
            .stderr
            .contains("created a new, empty database at sqlite://typo.db"),
        "{}",
        imported.stderr
    );
    assert!(dir.path().join("typo.db").exists());
    let again = palabre(
        dir.path(),
        &["contacts", "import", "people.csv", "--db", typo],
    );
    assert!(!again.stderr.contains("created a new"), "{}", again.stderr);
}

#[test]
fn a_second_server_on_a_taken_port_says_how_to_run_it() {
    let dir = workspace();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let second = palabre(
        dir.path(),
        &["serve", "--http", &address, "--reload-every", "0s"],
    );
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains(&format!("the HTTP API's address {address} is taken"))
            && second.stderr.contains("--http off"),
        "{}",
        second.stderr
    );
}

/// A worker that stops gracefully gives back what it had claimed and not
/// finished: another worker takes it at once, without waiting for the lease.
#[tokio::test]
async fn a_graceful_stop_gives_its_leases_back() {
    for world in worlds("graceful_stop", "once").await {
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (_sms, _email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "worker-a").await;
        runtime.tick().await.unwrap();
        // worker-a holds next week's timers, as if claimed in the batch it was
        // working on when asked to stop (claimed as of their due time; the
        // worker's own clock is before it, so its ticks leave them alone).
        let later = at("2026-12-07T08:00:00Z");
        let store = runtime.store().clone();
        let holds = {
            let store = store.clone();
            async move {
                let held = store
                    .claim_due_timers(later, "worker-a", TimeDelta::hours(1), 10)
                    .await
                    .unwrap();
                assert!(!held.is_empty(), "timers are due by then");
            }
        };
        runtime.run(holds).await.unwrap();
        let taken = store
            .claim_due_timers(later, "worker-b", TimeDelta::hours(1), 10)
            .await
            .unwrap();
        assert!(
            !taken.is_empty(),
            "another worker takes the work at once, not after worker-a's lease"
        );
    }
}
