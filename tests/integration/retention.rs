//! Keeping texts no longer than `retention.yaml` says, on SQLite and PostgreSQL:
//! a message's text goes once it is past its keeping time (the row, its state
//! and times stay), a ledger entry's detail likewise, each pass's counts go to
//! the ledger, and a second pass removes nothing more.

use std::sync::Arc;

use palabre_core::clock::{Clock, VirtualClock};

use crate::runtime::{Recorder, at, invite_to_the_seventh, worlds};
use crate::util::{palabre, workspace_with_directory};

#[tokio::test]
async fn texts_past_their_keeping_time_are_removed_and_counted() {
    for world in worlds("retention", "once").await {
        std::fs::write(
            world.workflows.join("retention.yaml"),
            "message_texts_days: 30\nledger_details_days: 60\n",
        )
        .unwrap();
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (_sms, _email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        runtime.tick().await.unwrap();
        invite_to_the_seventh(&runtime, &clock).await;
        let commands = runtime.commands();
        let store = runtime.store();
        let bodies = || async {
            store
                .export_contact("c-3", "test", clock.now())
                .await
                .unwrap()
                .unwrap()
                .messages
                .into_iter()
                .map(|m| m.body)
                .collect::<Vec<_>>()
        };
        assert!(bodies().await.iter().any(|b| b.contains("Oumar Tall")));
        // Within their keeping time: nothing goes.
        let none = commands.purge_expired().await.unwrap();
        assert_eq!(none, Default::default());
        // 31 days later the texts of the invitations go, their rows stay.
        clock.advance_to(at("2027-01-05T10:00:00Z"));
        let first = commands.purge_expired().await.unwrap();
        assert!(first.message_texts >= 3, "{first:?}");
        assert_eq!(first.ledger_details, 0, "{first:?}");
        let kept = bodies().await;
        assert!(
            !kept.is_empty() && kept.iter().all(|b| b == "[expiré]"),
            "{kept:?}"
        );
        // 61 days later the ledger's details of then go too, its rows stay.
        clock.advance_to(at("2027-02-04T10:00:00Z"));
        let second = commands.purge_expired().await.unwrap();
        assert!(second.ledger_details > 0, "{second:?}");
        let ledger = store.ledger(Some("weekly-koro"), 1000).await.unwrap();
        assert!(
            ledger
                .iter()
                .any(|e| e.event == "sent" && e.detail.is_empty())
        );
        let passes: Vec<_> = store
            .ledger(None, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event == "personal-data" && e.detail.starts_with("retention: "))
            .collect();
        assert_eq!(passes.len(), 2, "one entry per pass that removed something");
        assert_eq!(commands.purge_expired().await.unwrap(), Default::default());
    }
}

#[test]
fn purge_expired_says_what_it_removed_and_purge_needs_a_mode() {
    let dir = workspace_with_directory();
    let run = palabre(dir.path(), &["purge", "--expired"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "past their keeping time: 0 message text(s), 0 ledger detail(s), 0 resolved case description(s) removed"
        ),
        "{}",
        run.stdout
    );
    let run = palabre(dir.path(), &["purge"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = palabre(
        dir.path(),
        &[
            "purge",
            "--expired",
            "--place",
            "mopti/koro",
            "--confirm",
            "mopti/koro",
        ],
    );
    assert_eq!(run.code, 2, "one or the other: {}", run.stderr);
}
