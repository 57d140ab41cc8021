//! The store's conformance suite: the same assertions on a SQLite file and on
//! PostgreSQL, through the engine's API and through the binary.

use palabre_engine::contacts::Contact;
use palabre_engine::store::{Backend, ImportSummary, Store};
use palabre_engine::workflow::Channel;

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
    let store = Store::connect(url).await.unwrap();
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
    let again = Store::connect(url).await.unwrap();
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
    assert!(run.stdout.contains("236 new"), "{}", run.stdout);
    let run = palabre(
        dir.path(),
        &["contacts", "import", csv.to_str().unwrap(), "--db", &url],
    );
    assert!(run.stdout.contains("236 unchanged"), "{}", run.stdout);
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
