//! The store's conformance suite: the same assertions on a SQLite file and on
//! PostgreSQL, through the engine's API and through the binary.

use palabre_core::channel::Channel;
use palabre_lang::contacts::Contact;
use palabre_store::{Backend, ImportSummary, Store};

use crate::util::{fresh_postgres_schema, palabre, postgres_url, repo, workspace};

fn contact(id: &str, name: &str) -> Contact {
    Contact {
        id: id.to_owned(),
        name: name.to_owned(),
        roles: vec!["leader".to_owned(), "focal-point".to_owned()],
        place: "mopti/koro/koro".to_owned(),
        phone: Some("+22376112233".to_owned()),
        email: None,
        language: "ffm".to_owned(),
        channels: vec![Channel::Sms, Channel::Email],
    }
}

async fn conformance(url: &str, backend: Backend) {
    let store = Store::connect(url, &crate::util::test_key()).await.unwrap();
    assert_eq!(store.backend(), backend);
    let mut contacts = vec![contact("c-2", "Hama Bocoum"), contact("c-1", "Awa Diallo")];
    contacts[1].email = Some("awa@example.org".to_owned());
    contacts[1].channels = vec![Channel::Email];
    let summary = store.upsert_contacts(&contacts).await.unwrap();
    assert_eq!(
        summary,
        ImportSummary {
            inserted: 2,
            updated: 0,
            unchanged: 0
        }
    );
    let summary = store.upsert_contacts(&contacts).await.unwrap();
    assert_eq!(
        summary,
        ImportSummary {
            inserted: 0,
            updated: 0,
            unchanged: 2
        }
    );

    contacts[0].roles.push("mayor".to_owned());
    contacts.push(contact("c-3", "Issa Guindo"));
    let summary = store.upsert_contacts(&contacts).await.unwrap();
    assert_eq!(
        summary,
        ImportSummary {
            inserted: 1,
            updated: 1,
            unchanged: 1
        }
    );

    let stored = store.contacts().await.unwrap();
    let ids: Vec<&str> = stored.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c-1", "c-2", "c-3"], "ordered by id, no duplicates");
    assert_eq!(stored[0], contacts[1], "every field round-trips");
    assert_eq!(stored[1], contacts[0]);
    store.close().await;

    // Reconnecting runs no migration twice and finds the same rows.
    let again = Store::connect(url, &crate::util::test_key()).await.unwrap();
    assert_eq!(again.contacts().await.unwrap().len(), 3);
    again.close().await;
}

#[tokio::test]
async fn sqlite_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    conformance(&url, Backend::Sqlite).await;
    assert!(dir.path().join("store.db").exists());
}

#[tokio::test]
async fn postgres_conformance() {
    let Some(base) = postgres_url() else { return };
    let url = fresh_postgres_schema(&base, "conformance").await;
    conformance(&url, Backend::Postgres).await;
}

#[tokio::test]
async fn the_binary_imports_and_lists_on_postgres() {
    let Some(base) = postgres_url() else { return };
    let url = fresh_postgres_schema(&base, "binary").await;
    let dir = workspace();
    let csv = repo().join("examples/directory.csv");
    let run = palabre(
        dir.path(),
        &["contacts", "import", csv.to_str().unwrap(), "--db", &url],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("238 new"), "{}", run.stdout);
    let run = palabre(
        dir.path(),
        &["contacts", "import", csv.to_str().unwrap(), "--db", &url],
    );
    assert!(run.stdout.contains("238 unchanged"), "{}", run.stdout);
    let run = palabre(
        dir.path(),
        &[
            "preview",
            "--from",
            "2026-11-30",
            "--days",
            "7",
            "--db",
            &url,
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("dialogue-mopti"), "{}", run.stdout);
    assert!(
        !dir.path().join("palabre.db").exists(),
        "the SQLite default was used instead"
    );
}

mod runtime {
    //! Timers, outbox and ledger: the same assertions on both backends.

    use chrono::{DateTime, TimeDelta, Utc};
    use palabre_core::channel::Channel;
    use palabre_store::{
        DeliveryOutcome, LedgerEntry, LedgerEvent, PlannedTimer, QueuedMessage, Store, TimerOutcome,
    };

    use crate::util::{fresh_postgres_schema, postgres_url};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn timer(step: &str, due: &str) -> PlannedTimer {
        PlannedTimer {
            workflow: "dialogue-koro".to_owned(),
            occurrence: at("2026-12-09T09:00:00Z"),
            step: step.to_owned(),
            due: at(due),
        }
    }

    fn message(timer_id: &str, contact: &str) -> QueuedMessage {
        QueuedMessage {
            id: QueuedMessage::key(timer_id, contact, Channel::Email),
            timer_id: timer_id.to_owned(),
            workflow: "dialogue-koro".to_owned(),
            occurrence: at("2026-12-09T09:00:00Z"),
            step: "reminder-1d".to_owned(),
            contact_id: contact.to_owned(),
            channel: Channel::Email,
            language: "fra".to_owned(),
            subject: Some("Rappel".to_owned()),
            body: "Bonjour".to_owned(),
            calendar: None,
            fallback: None,
        }
    }

    async fn conformance(store: Store) {
        let now = at("2026-12-08T08:00:00Z");
        let lease = TimeDelta::seconds(30);
        let timers = [
            timer("invitation", "2026-12-02T09:00:00Z"),
            timer("reminder-1d", "2026-12-08T09:00:00Z"),
        ];
        assert_eq!(store.plan_timers(&timers, now).await.unwrap(), 2);
        assert_eq!(
            store.plan_timers(&timers, now).await.unwrap(),
            0,
            "planning twice is a no-op"
        );
        assert_eq!(
            store.next_wakeup().await.unwrap(),
            Some(at("2026-12-02T09:00:00Z"))
        );

        // Only what is due is claimed, and a claimed timer is not claimed again while leased.
        let claimed = store
            .claim_due_timers(now, "worker-a", lease, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].step, "invitation");
        assert!(
            store
                .claim_due_timers(now, "worker-b", lease, 10)
                .await
                .unwrap()
                .is_empty()
        );
        // Its lease expires: another worker takes over, and the first can no longer complete it.
        let later = now + TimeDelta::seconds(31);
        let taken = store
            .claim_due_timers(later, "worker-b", lease, 10)
            .await
            .unwrap();
        assert_eq!(taken.len(), 1);
        let entry = LedgerEntry::new(later, LedgerEvent::Fired, "on time").slot(
            "dialogue-koro",
            taken[0].occurrence,
            "invitation",
        );
        let messages = [message(&taken[0].id, "c-1"), message(&taken[0].id, "c-2")];
        assert!(
            !store
                .complete_timer(
                    &taken[0].id,
                    "worker-a",
                    TimerOutcome::Fired,
                    &messages,
                    std::slice::from_ref(&entry),
                    later
                )
                .await
                .unwrap()
        );
        assert!(
            store
                .complete_timer(
                    &taken[0].id,
                    "worker-b",
                    TimerOutcome::Fired,
                    &messages,
                    &[entry],
                    later
                )
                .await
                .unwrap()
        );
        assert!(
            !store
                .complete_timer(
                    &taken[0].id,
                    "worker-b",
                    TimerOutcome::Fired,
                    &messages,
                    &[],
                    later
                )
                .await
                .unwrap(),
            "a timer completes once"
        );

        // Delivery: one succeeds, one fails and is retried later, then dies.
        let ready = store
            .claim_messages(later, "worker-b", lease, 10)
            .await
            .unwrap();
        assert_eq!(ready.len(), 2);
        assert!(
            store
                .claim_messages(later, "worker-c", lease, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let sent = DeliveryOutcome::Sent {
            provider_id: "smtp-1".to_owned(),
            awaiting_receipt_until: None,
        };
        let log =
            |event| LedgerEntry::new(later, event, "x").recipient("c-1", Some(Channel::Email));
        assert!(
            store
                .record_delivery(
                    &ready[0].id,
                    "worker-b",
                    &sent,
                    &log(LedgerEvent::Sent),
                    later
                )
                .await
                .unwrap()
        );
        let retry_at = later + TimeDelta::minutes(1);
        let retry = DeliveryOutcome::Retry {
            at: retry_at,
            error: "421 busy".to_owned(),
        };
        assert!(
            store
                .record_delivery(
                    &ready[1].id,
                    "worker-b",
                    &retry,
                    &log(LedgerEvent::Retry),
                    later
                )
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_messages(later, "worker-b", lease, 10)
                .await
                .unwrap()
                .is_empty(),
            "not before its retry time"
        );
        assert_eq!(store.next_wakeup().await.unwrap(), Some(retry_at));
        let again = store
            .claim_messages(retry_at, "worker-b", lease, 10)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 1);
        let dead = DeliveryOutcome::Dead {
            error: "550 no such user".to_owned(),
        };
        assert!(
            store
                .record_delivery(
                    &again[0].id,
                    "worker-b",
                    &dead,
                    &log(LedgerEvent::DeadLetter),
                    retry_at
                )
                .await
                .unwrap()
        );

        let status = store.status(later).await.unwrap();
        assert_eq!(
            (
                status.fired,
                status.due_later,
                status.sent,
                status.dead_lettered,
                status.queued
            ),
            (1, 1, 1, 1, 0)
        );

        // Re-planning removes pending timers only; the fired one stays and cannot be planned again.
        let replanned = LedgerEntry::new(later, LedgerEvent::Replanned, "definition changed");
        assert_eq!(
            store
                .unplan_pending("dialogue-koro", later, &replanned)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store.plan_timers(&timers, later).await.unwrap(),
            1,
            "only the unfired slot comes back"
        );

        let events: Vec<String> = store
            .ledger(Some("dialogue-koro"), 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event.to_string())
            .collect();
        assert_eq!(events, ["fired", "replanned"]);
        let all: Vec<String> = store
            .ledger(None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event.to_string())
            .collect();
        assert_eq!(all, ["fired", "sent", "retry", "dead-letter", "replanned"]);

        // A pass's schedules are written with its timers; a later pass's win.
        let schedule = |hash: &str, until| palabre_store::Schedule {
            workflow: "dialogue-koro".to_owned(),
            hash: hash.to_owned(),
            planned_until: until,
        };
        let more = [timer("reminder-2h", "2026-12-09T07:00:00Z")];
        assert_eq!(
            store
                .plan_pass(&more, &[schedule("hash-1", later)], later)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .plan_pass(&more, &[schedule("hash-2", retry_at)], later)
                .await
                .unwrap(),
            0,
            "a timer planned twice is new once"
        );
        let schedules = store.schedules().await.unwrap();
        assert_eq!(schedules.len(), 1);
        assert_eq!(
            schedules.get("dialogue-koro"),
            Some(&("hash-2".to_owned(), retry_at))
        );
    }

    /// Messages queued already leased to the worker that fired them: only the
    /// timers it still held count, their messages come back as claimed (no
    /// claim query), nobody else can claim them while the lease runs, and their
    /// outcomes record as any claimed message's. A batch partly taken by
    /// another worker still completes the rest (the short count is read again
    /// by ids, in a new transaction).
    async fn held_messages(store: Store) {
        use palabre_store::{DeliveryRecord, TimerCompletion};
        let now = at("2026-12-08T08:00:00Z");
        let lease = TimeDelta::seconds(30);
        let timers = [
            timer("invitation", "2026-12-02T09:00:00Z"),
            timer("reminder-7d", "2026-12-02T09:00:00Z"),
            timer("reminder-3d", "2026-12-06T09:00:00Z"),
        ];
        store.plan_timers(&timers, now).await.unwrap();
        // worker-a claims one timer, then 20 s later the two others; the first
        // lease runs out before the others, and worker-b takes that timer.
        let mut claimed = store
            .claim_due_timers(now, "worker-a", lease, 1)
            .await
            .unwrap();
        let second = now + TimeDelta::seconds(20);
        claimed.extend(
            store
                .claim_due_timers(second, "worker-a", lease, 10)
                .await
                .unwrap(),
        );
        assert_eq!(claimed.len(), 3);
        let later = now + TimeDelta::seconds(31);
        let taken = store
            .claim_due_timers(later, "worker-b", lease, 10)
            .await
            .unwrap();
        assert_eq!(taken.len(), 1, "{taken:?}");
        assert_eq!(taken[0].id, claimed[0].id);
        let completions: Vec<TimerCompletion> = claimed
            .iter()
            .map(|timer| TimerCompletion {
                timer_id: timer.id.clone(),
                outcome: TimerOutcome::Fired,
                messages: vec![message(&timer.id, "c-1")],
                ledger: Vec::new(),
            })
            .collect();
        let completed = store
            .complete_timers("worker-a", &completions, later, Some(later + lease))
            .await
            .unwrap();
        assert_eq!(completed.timers, 2);
        let mut held: Vec<&str> = completed.held.iter().map(|m| m.id.as_str()).collect();
        held.sort_unstable();
        let mut expected = vec![
            completions[1].messages[0].id.as_str(),
            completions[2].messages[0].id.as_str(),
        ];
        expected.sort_unstable();
        assert_eq!(held, expected);
        assert!(
            completed
                .held
                .iter()
                .all(|m| m.attempts == 0 && m.body == "Bonjour")
        );
        assert!(
            store
                .claim_messages(later, "worker-b", lease, 10)
                .await
                .unwrap()
                .is_empty(),
            "held messages are worker-a's while the lease runs"
        );
        let records: Vec<DeliveryRecord> = completed
            .held
            .iter()
            .map(|m| DeliveryRecord {
                message_id: m.id.clone(),
                outcome: DeliveryOutcome::Sent {
                    provider_id: "p".to_owned(),
                    awaiting_receipt_until: None,
                },
                ledger: LedgerEntry::new(later, LedgerEvent::Sent, "sent"),
                fall_back: false,
            })
            .collect();
        assert_eq!(
            store
                .record_deliveries("worker-b", &records, later)
                .await
                .unwrap(),
            0,
            "another worker cannot record them"
        );
        assert_eq!(
            store
                .record_deliveries("worker-a", &records, later)
                .await
                .unwrap(),
            2
        );
        assert_eq!(store.status(later).await.unwrap().sent, 2);
    }

    #[tokio::test]
    async fn sqlite_runtime_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("runtime.db").display());
        conformance(
            Store::connect(&url, &crate::util::test_key())
                .await
                .unwrap(),
        )
        .await;
        let url = format!("sqlite://{}", dir.path().join("held.db").display());
        held_messages(
            Store::connect(&url, &crate::util::test_key())
                .await
                .unwrap(),
        )
        .await;
    }

    #[tokio::test]
    async fn postgres_runtime_conformance() {
        let Some(base) = postgres_url() else { return };
        let url = fresh_postgres_schema(&base, "runtime").await;
        conformance(
            Store::connect(&url, &crate::util::test_key())
                .await
                .unwrap(),
        )
        .await;
        let url = fresh_postgres_schema(&base, "held").await;
        held_messages(
            Store::connect(&url, &crate::util::test_key())
                .await
                .unwrap(),
        )
        .await;
    }
}

/// A stored value no version of palabre writes is a corrupt row, named with its
/// table and row, never read back as a default (a lost case state read as
/// `open`, an unknown milestone status as `planned`).
async fn corrupt_rows(url: &str) {
    use palabre_lang::escalation::{Case, CaseState};
    use palabre_lang::milestones::MilestoneStatus;
    use palabre_store::StoreError;
    let store = Store::connect(url, &crate::util::test_key()).await.unwrap();
    let now = chrono::Utc::now();
    store
        .set_milestone_status("plan-a", "m-1", MilestoneStatus::Done, "fait", now)
        .await
        .unwrap();
    let case = Case {
        id: String::new(),
        workflow: "litiges".to_owned(),
        category: "foncier".to_owned(),
        place: "mopti/koro/koro".to_owned(),
        parties: vec!["c-1".to_owned()],
        severity: 2,
        description: "un champ".to_owned(),
        level: 0,
        state: CaseState::Open,
        opened: now,
        updated: now,
    };
    let id = store
        .open_case(&case, "LT", |_| (Vec::new(), Vec::new(), Vec::new()))
        .await
        .unwrap();
    assert_eq!(
        store.case(&id).await.unwrap().unwrap().state,
        CaseState::Open
    );

    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::query("UPDATE milestone_status SET status = 'finished'")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE cases SET state = 'lost'")
        .execute(&raw)
        .await
        .unwrap();
    // A message on a channel no version writes, ready to go.
    sqlx::query(
        "INSERT INTO outbox (id, timer_id, workflow, occurrence, step, contact_id, channel, \
         language, body, state, attempts, next_attempt, created, updated) \
         VALUES ('m-1', 't-1', 'w', 0, 's', 'c-1', 'pigeon', 'fra', 'x', 'queued', 0, 0, 0, 0)",
    )
    .execute(&raw)
    .await
    .unwrap();
    raw.close().await;

    // One unreadable message does not stop delivery: it is a dead letter, and
    // the ledger says why.
    let claimed = store
        .claim_messages(now, "w-1", chrono::TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert!(claimed.is_empty(), "{claimed:?}");
    let dead = store.ledger(None, 10).await.unwrap();
    let buried = dead.last().unwrap();
    assert_eq!(buried.event, "dead-letter");
    assert_eq!(buried.step.as_deref(), Some("m-1"));
    assert!(
        buried
            .detail
            .contains("channel 'pigeon' is not a value palabre writes"),
        "{}",
        buried.detail
    );
    let status = store.status(now).await.unwrap();
    assert_eq!(status.dead_lettered, 1, "{status:?}");
    // A ledger entry of an event no version writes.
    let raw = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::query("UPDATE ledger SET event = 'teleported' WHERE step = 'm-1'")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    match store.ledger(None, 10).await.unwrap_err() {
        StoreError::Corrupt { table, reason, .. } => {
            assert_eq!(table, "ledger");
            assert!(reason.contains("event 'teleported'"), "{reason}");
        }
        other => panic!("a corrupt ledger row, not {other}"),
    }

    let corrupt = |error: StoreError, table: &str, row: &str| match error {
        StoreError::Corrupt {
            table: t,
            id,
            reason,
        } => {
            assert_eq!((t, id.as_str()), (table, row), "{reason}");
            assert!(reason.contains("is not a value palabre writes"), "{reason}");
        }
        other => panic!("a corrupt row, not {other}"),
    };
    corrupt(
        store.milestone_states().await.unwrap_err(),
        "milestone_status",
        "plan-a/m-1",
    );
    corrupt(
        store
            .set_milestone_status("plan-a", "m-1", MilestoneStatus::Blocked, "x", now)
            .await
            .unwrap_err(),
        "milestone_status",
        "plan-a/m-1",
    );
    corrupt(store.case(&id).await.unwrap_err(), "cases", &id);
    store.close().await;
}

#[tokio::test]
async fn sqlite_corrupt_rows_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    corrupt_rows(&format!(
        "sqlite://{}",
        dir.path().join("corrupt.db").display()
    ))
    .await;
}

#[tokio::test]
async fn postgres_corrupt_rows_are_reported() {
    let Some(base) = postgres_url() else { return };
    corrupt_rows(&fresh_postgres_schema(&base, "corrupt").await).await;
}

/// The last good definitions and the folder's health, on both backends.
async fn definitions_in_force(url: &str) {
    use palabre_store::DefinitionFile;
    let store = Store::connect(url, &crate::util::test_key()).await.unwrap();
    assert_eq!(store.valid_definitions().await.unwrap(), None);
    // Before any good copy, an invalid folder is not recorded (nothing runs).
    let t0 = chrono::Utc::now();
    store.mark_definitions_invalid("x", t0).await.unwrap();
    assert_eq!(
        store.definitions_health().await.unwrap().invalid_since,
        None
    );
    let files = vec![DefinitionFile {
        path: "meetings/koro.yaml".to_owned(),
        text: "kind: meeting\nid: « é »\n".to_owned(),
    }];
    store
        .keep_valid_definitions("abc", &files, t0)
        .await
        .unwrap();
    let copy = store.valid_definitions().await.unwrap().unwrap();
    assert_eq!(
        (copy.fingerprint.as_str(), copy.files),
        ("abc", files.clone())
    );
    let t1 = t0 + chrono::TimeDelta::minutes(5);
    store
        .mark_definitions_invalid("a.yaml:1:1: bad", t1)
        .await
        .unwrap();
    store
        .mark_definitions_invalid("a.yaml:2:1: worse", t1 + chrono::TimeDelta::minutes(1))
        .await
        .unwrap();
    let health = store.definitions_health().await.unwrap();
    assert_eq!(
        health.invalid_since.map(|t| t.timestamp_millis()),
        Some(t1.timestamp_millis()),
        "invalid since the first time it was found so"
    );
    assert_eq!(health.problems, "a.yaml:2:1: worse");
    assert_eq!(store.status(t1).await.unwrap().definitions, health);
    store
        .keep_valid_definitions("def", &files, t1)
        .await
        .unwrap();
    assert_eq!(
        store.definitions_health().await.unwrap().invalid_since,
        None
    );
    store.close().await;
}

#[tokio::test]
async fn sqlite_definitions_in_force() {
    let dir = tempfile::tempdir().unwrap();
    definitions_in_force(&format!("sqlite://{}", dir.path().join("d.db").display())).await;
}

#[tokio::test]
async fn postgres_definitions_in_force() {
    let Some(base) = postgres_url() else { return };
    definitions_in_force(&fresh_postgres_schema(&base, "definitions").await).await;
}
