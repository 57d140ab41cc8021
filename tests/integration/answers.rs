//! Answering a meeting from its email, on SQLite and PostgreSQL: the invitation
//! carries the recipient's own link; opening it shows the question in their
//! language and records nothing; its buttons record yes or no as an SMS reply
//! would (the same response, the same quorum); a link changed by one character,
//! or opened after the meeting started, records nothing.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use palabre_core::clock::VirtualClock;
use palabre_engine::answer_links::AnswerLinkSigner;

use crate::runtime::{Recorder, at, worlds};
use crate::util::api_request;

const PUBLIC: &str = "https://palabre.example.org";

async fn open(
    commands: &palabre_engine::commands::Commands,
    path: &str,
    form: Option<&str>,
) -> (StatusCode, String) {
    let request = match form {
        None => Request::get(path).body(Body::empty()),
        Some(form) => Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned())),
    }
    .unwrap();
    let answered = api_request(commands, request).await;
    (
        answered.status,
        answered.body.as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn an_official_reachable_only_by_email_answers_from_the_invitation() {
    for world in worlds("answer_links", "once").await {
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (_sms, email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        let signer = AnswerLinkSigner::load(runtime.store(), PUBLIC)
            .await
            .unwrap();
        runtime.commands().set_answer_links(signer);
        runtime.tick().await.unwrap();
        // Friday 4 December 09:00: the invitations of Monday the 7th.
        clock.advance_to(at("2026-12-04T09:00:00Z"));
        runtime.tick().await.unwrap();
        let invitation = email
            .delivered
            .lock()
            .unwrap()
            .iter()
            .find(|m| m.to_address == "oumar@example.org")
            .cloned()
            .expect("Oumar Tall (email only) is invited");
        assert!(
            !invitation.body.contains("répondant OUI"),
            "no reply word an email cannot carry: {}",
            invitation.body
        );
        let url = invitation
            .body
            .split_whitespace()
            .find(|w| w.starts_with(PUBLIC))
            .expect("the invitation carries the answer link")
            .to_owned();
        let path = url.strip_prefix(PUBLIC).unwrap().to_owned();
        let commands = runtime.commands();

        // Opening the link (as a mail scanner would) shows the question, in French.
        let (status, page) = open(commands, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(
            page.contains("Serez-vous présent(e) à la réunion « Réunion hebdomadaire »")
                && page.contains("lundi 7 décembre 2026 à 9 h")
                && page.contains(">OUI</button>")
                && page.contains(">NON</button>"),
            "{page}"
        );
        let responses = || async {
            runtime
                .store()
                .responses("weekly-koro", at("2026-12-07T09:00:00Z"))
                .await
                .unwrap()
        };
        assert!(responses().await.is_empty(), "opening records nothing");

        // Yes, then a change of mind: the latest answer counts, as by SMS.
        let (status, page) = open(commands, &path, Some("answer=yes")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("Merci, votre présence est notée"), "{page}");
        let (_, page) = open(commands, &path, Some("answer=no")).await;
        assert!(page.contains("Merci, votre absence est notée"), "{page}");
        let answered = responses().await;
        assert_eq!(answered.len(), 1, "{answered:?}");
        assert_eq!(answered.get("c-3").map(String::as_str), Some("no"));
        let ledger = runtime
            .store()
            .ledger(Some("weekly-koro"), 100)
            .await
            .unwrap();
        assert!(
            ledger
                .iter()
                .any(|e| e.event == "reply"
                    && e.channel == Some(palabre_core::channel::Channel::Email)),
            "the answer is in the ledger, by email"
        );

        // One character changed: not valid, nothing recorded.
        let mut forged = path.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        let (status, page) = open(commands, &forged, Some("answer=yes")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
        assert!(page.contains("Ce lien n'est plus valable"), "{page}");
        let (status, _) = open(commands, &path, Some("answer=peut-être")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(responses().await["c-3"], "no");

        // Once the meeting has started, the link is closed.
        clock.advance_to(at("2026-12-07T09:00:00Z"));
        let (status, page) = open(commands, &path, Some("answer=yes")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
        assert_eq!(responses().await["c-3"], "no");
    }
}
