//! One person's data on SQLite and PostgreSQL: erased (name, phone and email
//! in no row of any table, nor in the bytes of the SQLite files; the id
//! replaced by a pseudonym so that counts stay; queued messages dropped) and
//! exported for a subject-access request (recorded in the ledger); and the
//! `contacts erase` and `contacts export` commands; and the emergency purge
//! (`palabre purge`: everyone at or below a place erased at once, through the
//! binary on both backends).

use std::sync::Arc;

use palabre_core::clock::{Clock, VirtualClock};
use palabre_core::webhooks::InboundSms;
use palabre_engine::commands::InboundOutcome;
use palabre_lang::escalation::{Case, CaseState};
use palabre_lang::occurrence::occurrence_reference;
use palabre_store::erasure::Erasure;
use palabre_store::{LedgerEntry, LedgerEvent, Store};

use crate::runtime::{Recorder, at, invite_to_the_seventh, worlds};
use crate::util::{palabre, repo, workspace_with_directory};

const FANTA: &str = "id,name,roles,place,phone,email,language,channels
c-9,Fanta Kansaye,leader,mopti/koro/koro,76 55 44 33,fanta.kansaye@example.org,fra,sms;email
";
const NAME: &str = "Fanta Kansaye";
const EMAIL: &str = "fanta.kansaye@example.org";

/// Every value of every row of every table, as text, with its table and column.
pub(crate) async fn every_value(url: &str) -> Vec<(String, String)> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let sqlite = url.starts_with("sqlite:");
    let tables_sql = if sqlite {
        "SELECT name AS t FROM sqlite_master WHERE type = 'table'"
    } else {
        "SELECT CAST(table_name AS TEXT) AS t FROM information_schema.tables \
         WHERE table_schema = current_schema()"
    };
    let tables: Vec<String> = sqlx::query(tables_sql)
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("t"))
        .collect();
    assert!(tables.iter().any(|t| t == "outbox"), "{tables:?}");
    let mut values = Vec::new();
    // sqlx's own table of migrations (checksums as bytes) holds no one's data.
    for table in tables.iter().filter(|t| !t.starts_with("_sqlx")) {
        let columns_sql = if sqlite {
            format!("SELECT name AS c FROM pragma_table_info('{table}')")
        } else {
            format!(
                "SELECT CAST(column_name AS TEXT) AS c FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = '{table}'"
            )
        };
        let columns: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(columns_sql))
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("c"))
            .collect();
        for column in columns {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT CAST({column} AS TEXT) AS v FROM {table}"
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            for row in rows {
                if let Some(value) = row.get::<Option<String>, _>("v") {
                    values.push((format!("{table}.{column}"), value));
                }
            }
        }
    }
    pool.close().await;
    values
}

/// How many messages to `contact` wait in the outbox.
async fn queued_to(url: &str, contact: &str) -> i64 {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let n: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE contact_id = $1 AND state = 'queued'")
            .bind(contact)
            .fetch_one(&pool)
            .await
            .unwrap()
            .get("n");
    pool.close().await;
    n
}

#[tokio::test]
async fn an_erased_contact_leaves_no_trace_and_their_counts_stay_under_a_pseudonym() {
    for world in worlds("erasure", "once").await {
        world.add_csv(FANTA).await;
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (sms, _email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        let store = runtime.store().clone();
        let phone = store.contact("c-9").await.unwrap().unwrap().phone.unwrap();
        let bare_phone = phone.trim_start_matches('+').to_owned();

        // The invitation goes to Fanta by SMS; she answers yes; her
        // confirmation waits in the outbox.
        invite_to_the_seventh(&runtime, &clock).await;
        assert!(
            sms.delivered
                .lock()
                .unwrap()
                .iter()
                .any(|m| m.to_address == phone),
            "Fanta was invited"
        );
        let occurrence = at("2026-12-07T09:00:00Z");
        let reference = occurrence_reference("weekly-koro", occurrence);
        let answer = runtime
            .commands()
            .inbound_sms(&InboundSms::new("76 55 44 33", format!("oui {reference}")))
            .await
            .unwrap();
        assert!(
            matches!(&answer, InboundOutcome::Answered { contact, .. } if contact == "c-9"),
            "{answer:?}"
        );
        assert!(
            queued_to(&world.url, "c-9").await >= 1,
            "a queued confirmation"
        );
        // A coordinator's note quoting her, and a dispute she is a party to.
        let now = clock.now();
        store
            .append_ledger(&[LedgerEntry::new(
                now,
                LedgerEvent::CaseNote,
                format!("called {NAME} at {phone}, wrote to {EMAIL}"),
            )
            .recipient("c-9", None)])
            .await
            .unwrap();
        let case = Case {
            id: String::new(),
            workflow: "koro-disputes".into(),
            category: "land".into(),
            place: "mopti/koro/koro".into(),
            parties: vec!["c-9".into(), "c-2".into()],
            severity: 3,
            description: format!("{NAME} says the well's field was taken"),
            level: 0,
            state: CaseState::Open,
            opened: now,
            updated: now,
        };
        let reference_of_case = store
            .open_case(&case, "KOR", |_| (vec![], vec![], vec![]))
            .await
            .unwrap();
        let answers_before = store.responses("weekly-koro", occurrence).await.unwrap();
        assert_eq!(answers_before.get("c-9").map(String::as_str), Some("yes"));

        // The export holds her data, in clear, and the ledger says it was made.
        let export = store
            .export_contact("c-9", "coordinator-a", now)
            .await
            .unwrap()
            .unwrap();
        let json = serde_json::to_string(&export).unwrap();
        for value in [NAME, phone.as_str(), EMAIL, reference_of_case.as_str()] {
            assert!(json.contains(value), "{value} in {json}");
        }
        assert_eq!(export.responses.len(), 1);
        assert_eq!(export.cases.len(), 1);
        assert!(export.cases[0].description.contains(NAME));
        assert!(export.messages.iter().any(|m| m.state == "sent"));
        assert!(export.messages.iter().any(|m| m.state == "queued"));
        assert!(!export.ledger.is_empty());
        let ledger = store.ledger(None, 10_000).await.unwrap();
        let exported = ledger.last().unwrap();
        assert_eq!(exported.event, LedgerEvent::PersonalData);
        assert_eq!(exported.contact_id.as_deref(), Some("c-9"));
        assert!(exported.detail.contains("exported by coordinator-a"));
        assert!(!exported.detail.contains(NAME) && !exported.detail.contains(&phone));

        // Erased.
        let none = store
            .erase_contact(&Erasure {
                id: "c-404",
                reason: "asked",
                operator: "coordinator-a",
                random: [9; 6],
                now,
            })
            .await
            .unwrap();
        assert!(none.is_none(), "an unknown id erases nothing");
        let done = store
            .erase_contact(&Erasure {
                id: "c-9",
                reason: "she asked to be forgotten after threats (not Fanta Kansaye's words)",
                operator: "coordinator-a",
                random: [0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6],
                now,
            })
            .await
            .unwrap()
            .unwrap();
        let pseudonym = "erased-a1b2c3d4e5f6";
        assert_eq!(done.pseudonym, pseudonym);
        assert!(done.messages_dropped >= 1, "{done:?}");
        assert_eq!(done.responses, 1);
        assert_eq!(done.cases, 1);

        // Counts stay, under the pseudonym; role and place kept; nothing queued.
        let answers = store.responses("weekly-koro", occurrence).await.unwrap();
        assert_eq!(answers.len(), answers_before.len());
        assert_eq!(answers.get(pseudonym).map(String::as_str), Some("yes"));
        assert!(store.contact("c-9").await.unwrap().is_none());
        let kept = store.contact(pseudonym).await.unwrap().unwrap();
        assert_eq!(
            (kept.roles, kept.place.as_str(), kept.phone, kept.email),
            (vec!["leader".to_owned()], "mopti/koro/koro", None, None)
        );
        assert!(
            !store
                .contacts()
                .await
                .unwrap()
                .iter()
                .any(|c| c.id == pseudonym)
        );
        assert_eq!(queued_to(&world.url, pseudonym).await, 0);
        assert_eq!(queued_to(&world.url, "c-9").await, 0);
        let case = store.case(&reference_of_case).await.unwrap().unwrap();
        assert_eq!(case.parties, [pseudonym, "c-2"]);
        let ledger = store.ledger(None, 10_000).await.unwrap();
        assert!(
            ledger.iter().any(|e| e.event == LedgerEvent::DeadLetter
                && e.contact_id.as_deref() == Some(pseudonym)
                && e.detail.contains("erased")),
            "the dropped message is said"
        );
        let erased = ledger.last().unwrap();
        assert_eq!(erased.event, LedgerEvent::PersonalData);
        assert_eq!(erased.contact_id.as_deref(), Some(pseudonym));
        assert!(
            erased.detail.contains("erased by coordinator-a")
                && erased.detail.contains("asked to be forgotten"),
            "{}",
            erased.detail
        );

        // Her name, phone, email and id are in no row of any table.
        let values = every_value(&world.url).await;
        assert!(values.len() > 100, "{}", values.len());
        for needle in [NAME, phone.as_str(), bare_phone.as_str(), EMAIL, "c-9"] {
            // (A key kept in `secrets` is random text: it may hold `c-9` by chance.)
            let found: Vec<_> = values
                .iter()
                .filter(|(at, v)| v.contains(needle) && !at.starts_with("secrets."))
                .collect();
            assert!(found.is_empty(), "{needle} still in {found:#?}");
        }
        // Nor in the bytes of the SQLite files, once closed.
        drop(runtime);
        store.close().await;
        if let Some(path) = world.url.strip_prefix("sqlite://") {
            for suffix in ["", "-wal", "-shm"] {
                let file = format!("{path}{suffix}");
                let Ok(bytes) = std::fs::read(&file) else {
                    continue;
                };
                for needle in [NAME, phone.as_str(), bare_phone.as_str(), EMAIL] {
                    assert!(
                        !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                        "{needle} still in the bytes of {file}"
                    );
                }
            }
        }
    }
}

#[test]
fn contacts_erase_asks_refuses_an_unknown_id_and_export_is_recorded() {
    let dir = workspace_with_directory();
    let path = dir.path();
    // c-0001 is Boubacar Sow in the invented directory.
    let run = palabre(path, &["contacts", "export", "c-0001"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let export: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(export["contact"]["name"], "Boubacar Sow");
    assert_eq!(export["contact"]["email"], "boubacar.sow.1@example.org");

    let run = palabre(path, &["contacts", "export", "c-9999"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("no contact 'c-9999'"), "{}", run.stderr);

    // The reason is required, and short.
    let run = palabre(path, &["contacts", "erase", "c-0001"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let long = "x".repeat(301);
    let run = palabre(
        path,
        &["contacts", "erase", "c-0001", "--reason", &long, "--yes"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("300"), "{}", run.stderr);
    // An unknown id: exit 1, said.
    let run = palabre(
        path,
        &["contacts", "erase", "c-9999", "--reason", "asked", "--yes"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("no contact 'c-9999'"), "{}", run.stderr);
    // No terminal and no --yes: refused, nothing done.
    let run = palabre(path, &["contacts", "erase", "c-0001", "--reason", "asked"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    let run = palabre(path, &["contacts", "list", "--format", "json"]);
    assert!(run.stdout.contains("Boubacar Sow"));

    let run = palabre(
        path,
        &[
            "--as",
            "mariam",
            "contacts",
            "erase",
            "c-0001",
            "--reason",
            "asked to be forgotten",
            "--yes",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("c-0001 erased: now erased-"),
        "{}",
        run.stdout
    );
    let run = palabre(path, &["contacts", "list", "--format", "json", "--reveal"]);
    assert!(!run.stdout.contains("Boubacar Sow"), "{}", run.stdout);
    assert!(!run.stdout.contains("boubacar.sow.1@example.org"));
    assert!(!run.stdout.contains("\"c-0001\""));

    // The ledger holds who exported and who erased, never the values.
    let bytes = std::fs::read(path.join("palabre.db")).unwrap();
    for needle in ["Boubacar Sow", "boubacar.sow.1@example.org", "+22376942303"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} in palabre.db"
        );
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ledger = rt.block_on(async {
        let url = format!("sqlite://{}", path.join("palabre.db").display());
        let store = Store::connect(&url, &crate::util::test_key())
            .await
            .unwrap();
        let ledger = store.ledger(None, 1000).await.unwrap();
        store.close().await;
        ledger
    });
    let personal: Vec<&str> = ledger
        .iter()
        .filter(|e| e.event == LedgerEvent::PersonalData)
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(personal.len(), 2, "{personal:?}");
    assert!(personal[0].starts_with("exported by "), "{personal:?}");
    assert!(
        personal[1].starts_with("erased by mariam: asked to be forgotten"),
        "{personal:?}"
    );
}

/// `palabre purge ARGS` against a world's workflows and database.
fn purge(world: &crate::runtime::World, args: &[&str]) -> crate::util::Run {
    let workflows = world.workflows.to_str().unwrap();
    let mut all = vec!["--as", "mariam", "purge"];
    all.extend(args);
    all.extend(["--workflows", workflows, "--db", world.url.as_str()]);
    palabre(world.workflows.parent().unwrap(), &all)
}

/// Every value of every table, sorted, to compare before and after.
async fn snapshot(url: &str) -> Vec<(String, String)> {
    let mut values = every_value(url).await;
    values.sort();
    values
}

#[tokio::test]
async fn a_purge_erases_everyone_at_or_below_a_place_in_one_go_and_no_one_else() {
    use palabre_lang::places::Places;
    for world in worlds("purge", "once").await {
        let directory = std::fs::read_to_string(repo().join("examples/directory.csv")).unwrap();
        world.add_csv(&directory).await;
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (sms, _email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        let store = runtime.store().clone();

        // The invitations go to Koro's leaders and mayors; one answers yes and
        // her confirmation waits in the outbox; a note quotes her.
        invite_to_the_seventh(&runtime, &clock).await;
        assert!(sms.delivered.lock().unwrap().len() > 10, "Koro was invited");
        let reference = occurrence_reference("weekly-koro", at("2026-12-07T09:00:00Z"));
        let answer = runtime
            .commands()
            .inbound_sms(&InboundSms::new("76 11 22 33", format!("oui {reference}")))
            .await
            .unwrap();
        assert!(
            matches!(&answer, InboundOutcome::Answered { contact, .. } if contact == "c-1"),
            "{answer:?}"
        );
        assert!(queued_to(&world.url, "c-1").await >= 1);
        store
            .append_ledger(&[LedgerEntry::new(
                clock.now(),
                LedgerEvent::CaseNote,
                "called Awa Diallo at +22376112233 about the well".to_owned(),
            )
            .recipient("c-1", None)])
            .await
            .unwrap();

        let before = store.directory().await.unwrap();
        let (koro, elsewhere): (Vec<_>, Vec<_>) = before
            .iter()
            .cloned()
            .partition(|e| Places::contains("mopti/koro", &e.contact.place));
        assert_eq!(
            koro.len(),
            34 + 3,
            "the example's Koro and the world's three"
        );
        assert!(
            elsewhere
                .iter()
                .any(|e| e.contact.place.starts_with("mopti/djenne/"))
        );
        assert!(
            elsewhere
                .iter()
                .all(|e| !e.contact.place.starts_with("mopti/koro"))
        );
        // What of Koro's people must go: names, phones (with and without
        // `+`), emails; but not a value someone elsewhere shares (a namesake
        // in Djenné keeps their name).
        let values_of = |e: &palabre_store::DirectoryEntry| {
            let c = &e.contact;
            let mut values = vec![c.name.clone()];
            values.extend(c.phone.clone());
            values.extend(
                c.phone
                    .as_deref()
                    .map(|p| p.trim_start_matches('+').to_owned()),
            );
            values.extend(c.email.clone());
            values
        };
        let kept: Vec<String> = elsewhere.iter().flat_map(values_of).collect();
        let needles: Vec<String> = koro
            .iter()
            .flat_map(values_of)
            .filter(|n| !kept.iter().any(|k| k.contains(n.as_str())))
            .collect();
        assert!(needles.len() > 80, "{}", needles.len());
        drop(runtime);
        store.close().await;

        // A --confirm that is not the place exactly: refused, nothing changed.
        let untouched = snapshot(&world.url).await;
        for wrong in [
            "mopti/kor",
            "mopti/koro/koro",
            "mopti",
            "Mopti/Koro",
            "mopti/koro/",
        ] {
            let run = purge(&world, &["--place", "mopti/koro", "--confirm", wrong]);
            assert_eq!(run.code, 1, "{wrong}: {}", run.stderr);
            assert!(
                run.stderr
                    .contains("--confirm must repeat the place exactly"),
                "{}",
                run.stderr
            );
        }
        let run = purge(&world, &["--place", "mopti/koro"]);
        assert_eq!(run.code, 2, "--confirm is required: {}", run.stderr);
        // An unknown place: said, with a suggestion; nothing changed.
        let run = purge(
            &world,
            &["--place", "mopti/koor", "--confirm", "mopti/koor"],
        );
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr.contains("unknown place 'mopti/koor'") && run.stderr.contains("mopti/koro"),
            "{}",
            run.stderr
        );
        assert_eq!(snapshot(&world.url).await, untouched, "nothing changed");

        // Purged.
        let run = purge(
            &world,
            &["--place", "mopti/koro", "--confirm", "mopti/koro"],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let summary = run.stdout.trim();
        assert_eq!(summary.lines().count(), 1, "{summary}");
        assert!(
            summary.starts_with(&format!(
                "mopti/koro purged: {} contact(s) erased, ",
                koro.len()
            )),
            "{summary}"
        );
        assert!(summary.contains("queued message(s) dropped"), "{summary}");
        assert!(!summary.contains("0 queued message(s)"), "{summary}");
        for needle in &needles {
            assert!(!run.stdout.contains(needle.as_str()) && !run.stderr.contains(needle.as_str()));
        }
        // Nobody is left there to purge: said, exit 1.
        let run = purge(
            &world,
            &[
                "--place",
                "mopti/koro/bondo",
                "--confirm",
                "mopti/koro/bondo",
            ],
        );
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("no contact at or below 'mopti/koro/bondo'"),
            "{}",
            run.stderr
        );

        let store = Store::connect(&world.url, &crate::util::test_key())
            .await
            .unwrap();
        let after = store.directory().await.unwrap();
        // Everyone elsewhere exactly as they were; Koro's people under
        // pseudonyms, roles and places kept, nothing else.
        let (erased, rest): (Vec<_>, Vec<_>) = after
            .iter()
            .cloned()
            .partition(|e| e.contact.id.starts_with("erased-"));
        assert_eq!(rest, elsewhere);
        assert_eq!(erased.len(), koro.len());
        for entry in &erased {
            let c = &entry.contact;
            assert!(Places::contains("mopti/koro", &c.place), "{c:?}");
            assert_eq!(
                (c.phone.as_ref(), c.email.as_ref(), entry.active),
                (None, None, false)
            );
        }
        let mut places_before: Vec<_> = koro.iter().map(|e| e.contact.place.clone()).collect();
        let mut places_after: Vec<_> = erased.iter().map(|e| e.contact.place.clone()).collect();
        places_before.sort();
        places_after.sort();
        assert_eq!(places_before, places_after);
        for entry in &koro {
            assert!(store.contact(&entry.contact.id).await.unwrap().is_none());
            assert_eq!(queued_to(&world.url, &entry.contact.id).await, 0);
        }
        // One ledger entry for the purge: where, how many, who; no one named.
        let ledger = store.ledger(None, 100_000).await.unwrap();
        let personal: Vec<_> = ledger
            .iter()
            .filter(|e| e.event == LedgerEvent::PersonalData)
            .collect();
        assert_eq!(personal.len(), 1, "{personal:#?}");
        let entry = personal[0];
        assert!(
            entry.detail.starts_with(&format!(
                "purged mopti/koro by mariam: {} contact(s) erased",
                koro.len()
            )),
            "{}",
            entry.detail
        );
        assert_eq!(entry.contact_id, None);
        assert!(
            ledger.iter().any(|e| e.event == LedgerEvent::DeadLetter
                && e.detail.contains("erased")
                && e.contact_id
                    .as_deref()
                    .is_some_and(|c| c.starts_with("erased-"))),
            "the dropped messages are said"
        );
        store.close().await;

        // No name, phone or email of Koro's people in any row of any table.
        let values = every_value(&world.url).await;
        for needle in &needles {
            let found: Vec<_> = values
                .iter()
                .filter(|(at, v)| v.contains(needle.as_str()) && !at.starts_with("secrets."))
                .collect();
            assert!(found.is_empty(), "{needle} still in {found:#?}");
        }
        // Nor in the bytes of the SQLite files, once closed.
        if let Some(path) = world.url.strip_prefix("sqlite://") {
            for suffix in ["", "-wal", "-shm"] {
                let file = format!("{path}{suffix}");
                let Ok(bytes) = std::fs::read(&file) else {
                    continue;
                };
                for needle in &needles {
                    assert!(
                        !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                        "{needle} still in the bytes of {file}"
                    );
                }
            }
        }
    }
}
