//! The directory's life and the tokens' life: contacts removed, deactivated and
//! activated again (store on both backends, and the CLI), `import --sync` with
//! its count, confirmation and refusals, messages queued for removed or inactive
//! contacts dead-lettered with the reason (runtime, virtual clock, both
//! backends); tokens listed without secrets, revoked and expired tokens refused
//! with 401 through the API router (virtual clock, both backends).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, TimeDelta, Utc};
use palabre_api::auth::{Role, create_token, create_token_expiring};
use palabre_api::{ApiState, router};
use palabre_core::channel::Channel;
use palabre_core::clock::{Clock, VirtualClock};
use palabre_core::connector::{Connectors, DeliveryError};
use palabre_store::{LedgerEntry, LedgerEvent, Store};
use serde_json::Value;
use tower::ServiceExt;

use crate::runtime::{Recorder, at, events, run_until, worlds};
use crate::util::{palabre, repo, workspace, workspace_with_directory};

fn ids(contacts: &[palabre_lang::contacts::Contact]) -> Vec<&str> {
    contacts.iter().map(|c| c.id.as_str()).collect()
}

#[tokio::test]
async fn the_store_deactivates_removes_and_syncs_on_both_backends() {
    for world in worlds("directory_store", "once").await {
        let store = Store::connect(&world.url, &crate::util::test_key())
            .await
            .unwrap();
        let everyone: Vec<_> = store
            .directory()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.contact)
            .collect();
        assert_eq!(ids(&everyone), ["c-1", "c-2", "c-3"]);

        assert_eq!(
            store.set_contact_active("c-1", false).await.unwrap(),
            Some(true)
        );
        assert_eq!(
            store.set_contact_active("c-1", false).await.unwrap(),
            Some(false)
        );
        assert_eq!(
            store.set_contact_active("nobody", false).await.unwrap(),
            None
        );
        // Planning reads the active contacts; the listing holds everyone, marked.
        assert_eq!(ids(&store.contacts().await.unwrap()), ["c-2", "c-3"]);
        let listed = store.directory().await.unwrap();
        let states: Vec<(&str, bool)> = listed
            .iter()
            .map(|e| (e.contact.id.as_str(), e.active))
            .collect();
        assert_eq!(states, [("c-1", false), ("c-2", true), ("c-3", true)]);
        assert!(store.contact("c-1").await.unwrap().is_some());
        assert_eq!(
            store
                .inactive_contacts()
                .await
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["c-1"]
        );

        // The file holds c-1 and c-2: c-3 goes inactive, c-1 comes back.
        let file = vec![everyone[0].clone(), everyone[1].clone()];
        let preview = store.sync_preview(&file).await.unwrap();
        assert_eq!(preview.deactivate.into_iter().collect::<Vec<_>>(), ["c-3"]);
        assert_eq!(preview.reactivate.into_iter().collect::<Vec<_>>(), ["c-1"]);
        let summary = store.sync_contacts(&file).await.unwrap();
        assert_eq!((summary.deactivated, summary.reactivated), (1, 1));
        assert_eq!(summary.import.unchanged, 2);
        assert_eq!(ids(&store.contacts().await.unwrap()), ["c-1", "c-2"]);
        let again = store.sync_contacts(&file).await.unwrap();
        assert_eq!((again.deactivated, again.reactivated), (0, 0));

        assert!(store.remove_contact("c-2").await.unwrap());
        assert!(!store.remove_contact("c-2").await.unwrap());
        assert_eq!(ids(&store.contacts().await.unwrap()), ["c-1"]);
        assert_eq!(store.directory().await.unwrap().len(), 2);
        store.close().await;
    }
}

#[tokio::test]
async fn queued_messages_to_deactivated_or_removed_contacts_become_dead_letters() {
    for world in worlds("directory_dead", "once").await {
        // Friday 09:00: the invitations for Monday go out; every SMS fails once,
        // so the two SMS invitations wait in the outbox for their retry.
        let clock = Arc::new(VirtualClock::new(at("2026-12-04T09:00:00Z")));
        let sms = Recorder::new(
            Channel::Sms,
            1,
            DeliveryError::Transient("gateway timeout".to_owned()),
        );
        let (_, email, _) = Recorder::pair();
        let connectors = Connectors::default().with(sms.clone()).with(email.clone());
        let runtime = world.runtime(&clock, connectors, "a").await;
        let report = runtime.tick().await.unwrap();
        assert_eq!((report.sent, report.retried), (1, 2), "{report:?}");

        let store = runtime.store();
        assert_eq!(
            store.set_contact_active("c-1", false).await.unwrap(),
            Some(true)
        );
        assert!(store.remove_contact("c-2").await.unwrap());
        run_until(&runtime, &clock, at("2026-12-07T12:00:00Z")).await;

        assert!(sms.keys().is_empty(), "no SMS delivered: {:?}", sms.keys());
        let ledger = store.ledger(Some("weekly-koro"), 1000).await.unwrap();
        let dead: Vec<(String, String, String)> = ledger
            .iter()
            .filter(|e| e.event == "dead-letter")
            .map(|e| {
                (
                    e.step.clone().unwrap_or_default(),
                    e.contact_id.clone().unwrap_or_default(),
                    e.detail.clone(),
                )
            })
            .collect();
        assert_eq!(dead.len(), 2, "{dead:?}");
        assert!(
            dead.iter().any(|(step, who, why)| step == "invitation"
                && who == "c-1"
                && why.contains("the contact is deactivated")),
            "{dead:?}"
        );
        assert!(
            dead.iter().any(|(step, who, why)| step == "invitation"
                && who == "c-2"
                && why.contains("the contact is no longer in the directory")),
            "{dead:?}"
        );
        // Monday's reminder (07:00) was planned after the change: it reaches the
        // mayor alone, and nobody out of the directory at all.
        let log = events(&runtime).await;
        assert!(log.contains(&"sent reminder c-3".to_owned()), "{log:?}");
        assert!(
            !log.iter()
                .any(|e| e.contains("reminder c-1") || e.contains("reminder c-2")),
            "{log:?}"
        );
        let status = store.status(clock.now()).await.unwrap();
        assert_eq!(status.dead_lettered, 2, "{status:?}");
    }
}

fn example_rows(count: usize) -> String {
    let text = std::fs::read_to_string(repo().join("examples/directory.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().take(count + 1).collect();
    lines.push("");
    lines.join("\n")
}

fn listed(dir: &std::path::Path) -> Vec<Value> {
    let run = palabre(dir, &["contacts", "list", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str::<Value>(&run.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn inactive(listed: &[Value]) -> usize {
    listed.iter().filter(|c| c["active"] == false).count()
}

#[tokio::test]
async fn contacts_are_removed_deactivated_and_listed_with_their_state() {
    let dir = workspace_with_directory();
    let path = dir.path();
    let run = palabre(path, &["contacts", "deactivate", "c-0001"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("c-0001 deactivated"), "{}", run.stdout);
    let run = palabre(path, &["contacts", "deactivate", "c-0001"]);
    assert!(run.stdout.contains("already inactive"), "{}", run.stdout);

    // An opt-out, as a STOP would record it.
    let url = format!("sqlite://{}", path.join("palabre.db").display());
    let store = Store::connect(&url, &crate::util::test_key())
        .await
        .unwrap();
    let now = at("2026-12-01T10:00:00Z");
    let entry = LedgerEntry::new(now, LedgerEvent::SmsStopped, "STOP").recipient("c-0003", None);
    store
        .set_sms_stopped("c-0003", true, now, &entry)
        .await
        .unwrap();
    store.close().await;

    let all = listed(path);
    assert_eq!(all.len(), 238);
    let by_id = |id: &str| all.iter().find(|c| c["id"] == id).unwrap().clone();
    assert_eq!(by_id("c-0001")["active"], false);
    assert_eq!(by_id("c-0001")["sms_stopped"], false);
    assert_eq!(by_id("c-0003")["sms_stopped"], true);
    assert_eq!(by_id("c-0003")["active"], true);
    assert_eq!(inactive(&all), 1);

    let run = palabre(path, &["contacts", "list"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        &header[header.len() - 2..],
        ["sms", "state"],
        "{}",
        lines[0]
    );
    let row = |id: &str| *lines.iter().find(|l| l.starts_with(id)).unwrap();
    assert!(row("c-0001").ends_with("inactive"), "{}", row("c-0001"));
    assert!(row("c-0003").ends_with("stopped"), "{}", row("c-0003"));
    assert!(!row("c-0004").contains("inactive"), "{}", row("c-0004"));
    assert!(
        run.stdout.contains("238 contact(s), 1 inactive"),
        "{}",
        run.stdout
    );

    let run = palabre(path, &["contacts", "activate", "c-0001"]);
    assert!(run.stdout.contains("c-0001 activated"), "{}", run.stdout);
    assert_eq!(inactive(&listed(path)), 0);

    let run = palabre(path, &["contacts", "remove", "c-0002"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let all = listed(path);
    assert_eq!(all.len(), 237);
    assert!(!all.iter().any(|c| c["id"] == "c-0002"));
    for command in ["remove", "deactivate", "activate"] {
        let run = palabre(path, &["contacts", command, "c-0002"]);
        assert_eq!(run.code, 1, "{command}: {}", run.stdout);
        assert!(
            run.stderr.contains("no contact 'c-0002'"),
            "{command}: {}",
            run.stderr
        );
    }
}

#[test]
fn import_sync_says_how_many_it_deactivates_and_asks_first() {
    let dir = workspace_with_directory();
    let path = dir.path();
    let first_200 = path.join("first-200.csv");
    std::fs::write(&first_200, example_rows(200)).unwrap();
    let file = first_200.to_str().unwrap();

    // No terminal (the test's stdin is empty) and no --yes: refused, nothing done.
    let run = palabre(path, &["contacts", "import", file, "--sync"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("38 contact(s) missing from the file would be deactivated"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no terminal") && run.stderr.contains("--yes"),
        "{}",
        run.stderr
    );
    assert_eq!(inactive(&listed(path)), 0);

    let run = palabre(path, &["contacts", "import", file, "--sync", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "200 contact(s) read: 0 new, 0 updated, 200 unchanged; 38 deactivated, 0 reactivated"
        ),
        "{}",
        run.stdout
    );
    let all = listed(path);
    assert_eq!(all.len(), 238, "kept for the record");
    assert_eq!(inactive(&all), 38);
    assert!(
        all.iter()
            .filter(|c| c["active"] == false)
            .all(|c| c["id"].as_str().unwrap() > "c-0200")
    );

    // A rejected row would deactivate its contact: --sync refuses the whole file.
    let broken = path.join("broken.csv");
    let mut text = example_rows(238);
    text = text.replacen("mopti/mopti/mopti", "nowhere/at/all", 1);
    std::fs::write(&broken, text).unwrap();
    let run = palabre(
        path,
        &[
            "contacts",
            "import",
            broken.to_str().unwrap(),
            "--sync",
            "--yes",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stderr.contains("nothing imported"), "{}", run.stderr);
    assert_eq!(inactive(&listed(path)), 38);

    // The whole file again: everyone is back, nothing to confirm.
    let whole = repo().join("examples/directory.csv");
    let run = palabre(
        path,
        &["contacts", "import", whole.to_str().unwrap(), "--sync"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("0 deactivated, 38 reactivated"),
        "{}",
        run.stdout
    );
    assert_eq!(inactive(&listed(path)), 0);
}

fn sha256_hex(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The id and the secret of `plb_<id>_<secret>`.
fn parts(token: &str) -> (String, String) {
    let (id, secret) = token
        .trim()
        .strip_prefix("plb_")
        .unwrap()
        .split_once('_')
        .unwrap();
    (id.to_owned(), secret.to_owned())
}

#[test]
fn tokens_are_listed_without_secrets_and_revoked_for_the_record() {
    let dir = workspace();
    let path = dir.path();
    let create = |args: &[&str]| {
        let mut all = vec!["token", "create"];
        all.extend(args);
        let run = palabre(path, &all);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout.trim().to_owned()
    };
    let forever = create(&[
        "--role",
        "observer",
        "--scope",
        "national",
        "--label",
        "field office",
    ]);
    let month = create(&[
        "--role",
        "coordinator",
        "--scope",
        "mopti",
        "--label",
        "ops",
        "--expires",
        "30d",
    ]);
    for bad in ["0d", "banana", "-3d"] {
        let run = palabre(
            path,
            &[
                "token",
                "create",
                "--role",
                "observer",
                "--scope",
                "national",
                "--expires",
                bad,
            ],
        );
        assert_eq!(run.code, 2, "--expires {bad}: {}", run.stdout);
    }

    let table = palabre(path, &["token", "list"]);
    let json = palabre(path, &["token", "list", "--format", "json"]);
    for (token, label) in [(&forever, "field office"), (&month, "ops")] {
        let (id, secret) = parts(token);
        for run in [&table, &json] {
            assert!(run.stdout.contains(&id), "{}", run.stdout);
            assert!(run.stdout.contains(label), "{}", run.stdout);
            assert!(
                !run.stdout.contains(&secret),
                "secret shown: {}",
                run.stdout
            );
            assert!(
                !run.stdout.contains(&sha256_hex(&secret)),
                "hash shown: {}",
                run.stdout
            );
        }
    }
    let header: Vec<&str> = table.stdout.lines().next().unwrap().split("  ").collect();
    let header: Vec<&str> = header
        .iter()
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "id",
            "label",
            "role",
            "scope",
            "created",
            "last used",
            "expires",
            "state"
        ]
    );
    let listed: Vec<Value> = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(listed.len(), 2);
    let instant = |v: &Value| v.as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    assert!(listed[0]["expires"].is_null());
    assert_eq!(
        instant(&listed[1]["expires"]) - instant(&listed[1]["created"]),
        TimeDelta::days(30)
    );
    assert!(
        listed
            .iter()
            .all(|t| t["last_used"].is_null() && t["state"] == "active")
    );
    assert!(listed.iter().all(|t| t.get("secret_sha256").is_none()));

    let (id, _) = parts(&forever);
    let run = palabre(path, &["token", "revoke", &id]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("revoked"), "{}", run.stdout);
    let run = palabre(path, &["token", "revoke", &id]);
    assert!(run.stdout.contains("already revoked"), "{}", run.stdout);
    let run = palabre(path, &["token", "revoke", "000000000000"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let json = palabre(path, &["token", "list", "--format", "json"]);
    let listed: Vec<Value> = serde_json::from_str(&json.stdout).unwrap();
    let revoked = listed.iter().find(|t| t["id"] == id.as_str()).unwrap();
    assert_eq!(revoked["state"], "revoked");
    assert!(revoked["revoked"].is_string());
    assert_eq!(listed.len(), 2, "a revoked token stays listed");
}

/// Sends `GET /workflows` with `token`; the status.
async fn get_workflows(runtime: &palabre_engine::runtime::Runtime, token: &str) -> StatusCode {
    let request = Request::builder()
        .method("GET")
        .uri("/workflows")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    router(ApiState {
        commands: runtime.commands().clone(),
        inbound_secret: None,
        webhooks: palabre_sms::gateways::webhooks(None).unwrap(),
        voice: None,
    })
    .oneshot(request)
    .await
    .unwrap()
    .status()
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused_at_once() {
    for world in worlds("directory_tokens", "once").await {
        let start = at("2026-12-03T10:00:00Z");
        let clock = Arc::new(VirtualClock::new(start));
        let (_, _, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "api").await;
        let store = runtime.store();
        let forever = create_token(store, Role::Observer, "national", "t", start)
            .await
            .unwrap();
        let hour = create_token_expiring(
            store,
            Role::Observer,
            "national",
            "h",
            start,
            Some(start + TimeDelta::hours(1)),
        )
        .await
        .unwrap();
        let (forever_id, _) = parts(&forever);
        let last_used = async |id: &str| store.token(id).await.unwrap().unwrap().last_used;

        assert_eq!(get_workflows(&runtime, &forever).await, StatusCode::OK);
        assert_eq!(get_workflows(&runtime, &hour).await, StatusCode::OK);
        assert_eq!(last_used(&forever_id).await, Some(start));
        // Within the minute, no new write; after it, the new instant.
        clock.advance(TimeDelta::seconds(30));
        assert_eq!(get_workflows(&runtime, &forever).await, StatusCode::OK);
        assert_eq!(last_used(&forever_id).await, Some(start));
        clock.advance(TimeDelta::seconds(90));
        assert_eq!(get_workflows(&runtime, &forever).await, StatusCode::OK);
        assert_eq!(
            last_used(&forever_id).await,
            Some(start + TimeDelta::minutes(2))
        );

        assert_eq!(
            store.revoke_token(&forever_id, clock.now()).await.unwrap(),
            Some(true)
        );
        assert_eq!(
            get_workflows(&runtime, &forever).await,
            StatusCode::UNAUTHORIZED
        );
        let kept = store.token(&forever_id).await.unwrap().unwrap();
        assert_eq!(kept.revoked, Some(start + TimeDelta::minutes(2)));

        clock.advance_to(start + TimeDelta::minutes(59));
        assert_eq!(get_workflows(&runtime, &hour).await, StatusCode::OK);
        clock.advance_to(start + TimeDelta::hours(1));
        assert_eq!(
            get_workflows(&runtime, &hour).await,
            StatusCode::UNAUTHORIZED
        );
    }
}
