//! SMS replies on SQLite and PostgreSQL: yes and no in several languages matched
//! by number and reference code and weighed by the quorum rule; STOP honoured
//! until START; unmatched replies kept for a coordinator with the number masked;
//! the inbound webhook authenticated by the secret in its URL.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use palabre_api::{ApiState, router};
use palabre_core::clock::VirtualClock;
use palabre_core::webhooks::InboundSms;
use palabre_engine::commands::InboundOutcome;
use palabre_lang::occurrence::occurrence_reference;
use tower::ServiceExt;

use crate::runtime::{Recorder, at, run_until, worlds};

const REPLIES: &str = "yes: { fra: [OUI], eng: [YES], bam: [AWO], ffm: [EEY] }\nno: { fra: [NON], eng: [\"NO\"], bam: [AYI] }\ndone: { fra: [FAIT], eng: [DONE], bam: [BANNA] }\nstop: [STOP, ARRÊT]\nstart: [START]\n";

#[tokio::test]
async fn replies_answer_meetings_feed_the_quorum_and_stop_means_stop() {
    for world in worlds("replies", "once").await {
        std::fs::write(world.workflows.join("replies.yaml"), REPLIES).unwrap();
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (sms, _email, connectors) = Recorder::pair();
        let runtime = Arc::new(world.runtime(&clock, connectors, "a").await);
        let occurrence = at("2026-12-07T09:00:00Z");
        let reference = occurrence_reference("weekly-koro", occurrence);

        // c-1 says yes (1 of 3 invited: no quorum yet), c-2 says yes in Fulfulde (2 of 3).
        let first = runtime
            .commands()
            .inbound_sms(&InboundSms::new(
                "+223 76 11 22 33",
                format!("oui {reference}"),
            ))
            .await
            .unwrap();
        assert!(
            matches!(&first, InboundOutcome::Answered { contact, response, quorum_reached: false, .. }
            if contact == "c-1" && response == "yes"),
            "{first:?}"
        );
        let second = runtime
            .commands()
            .inbound_sms(&InboundSms::new("66445566", format!("Eey {reference}")))
            .await
            .unwrap();
        assert!(
            matches!(&second, InboundOutcome::Answered { quorum_reached: true, quorum_reason, .. }
            if quorum_reason == "2 of 3 invited confirmed; more than half needed"),
            "{second:?}"
        );
        // Changing one's mind counts: the latest answer wins.
        let third = runtime
            .commands()
            .inbound_sms(&InboundSms::new("66445566", format!("AYI {reference}")))
            .await
            .unwrap();
        assert!(
            matches!(
                &third,
                InboundOutcome::Answered {
                    quorum_reached: false,
                    ..
                }
            ),
            "{third:?}"
        );

        // What cannot be matched is kept for a coordinator, the number masked.
        let unknown = runtime
            .commands()
            .inbound_sms(&InboundSms::new("+22399887766", "OUI 1234"))
            .await
            .unwrap();
        assert_eq!(
            unknown,
            InboundOutcome::Unmatched {
                reason: "no contact has this number".into()
            }
        );
        let wrong = runtime
            .commands()
            .inbound_sms(&InboundSms::new("76112233", "OUI 0000"))
            .await
            .unwrap();
        assert!(
            matches!(&wrong, InboundOutcome::Unmatched { reason } if reason.contains("reference 0000")),
            "{wrong:?}"
        );
        let ledger = runtime.store().ledger(None, 1000).await.unwrap();
        let unmatched: Vec<&str> = ledger
            .iter()
            .filter(|e| e.event == "reply-unmatched")
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(unmatched.len(), 2);
        assert!(
            unmatched[0].starts_with("from +223 •• •• 77 66:"),
            "{}",
            unmatched[0]
        );
        assert!(
            ledger.iter().all(|e| !e.detail.contains("99887766")),
            "no number in clear"
        );
        let quorum: Vec<&str> = ledger
            .iter()
            .filter(|e| e.event == "quorum")
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(quorum.len(), 3, "{quorum:?}");

        // STOP: the invitation (Friday 09:00) is not sent to c-1 by SMS, and says why.
        assert!(matches!(
            runtime
                .commands()
                .inbound_sms(&InboundSms::new("76112233", "Arrêt"))
                .await
                .unwrap(),
            InboundOutcome::Stopped { .. }
        ));
        run_until(&runtime, &clock, at("2026-12-04T10:00:00Z")).await;
        // Messages of the meeting to c-1 (replies' confirmations aside).
        let to_c1 = |sms: &Recorder| {
            sms.delivered
                .lock()
                .unwrap()
                .iter()
                .filter(|m| m.to_address == "+22376112233" && !m.key.contains("|reply@"))
                .count()
        };
        assert_eq!(to_c1(&sms), 0);
        let ledger = runtime
            .store()
            .ledger(Some("weekly-koro"), 1000)
            .await
            .unwrap();
        assert!(
            ledger.iter().any(|e| e.event == "dead-letter"
                && e.contact_id.as_deref() == Some("c-1")
                && e.detail.contains("opted out of SMS")),
            "{ledger:#?}"
        );
        // START: the reminder (Monday 07:00) reaches c-1 again.
        assert!(matches!(
            runtime
                .commands()
                .inbound_sms(&InboundSms::new("76112233", "start"))
                .await
                .unwrap(),
            InboundOutcome::Restarted { .. }
        ));
        run_until(&runtime, &clock, at("2026-12-07T08:00:00Z")).await;
        assert_eq!(to_c1(&sms), 1);
        // Each reply acted on was confirmed to its sender, in their language:
        // c-2's two in French (there is no Fulfulde text), c-1's START in Bambara
        // in the GSM alphabet. c-1's yes was not: c-1 said STOP before it left.
        let confirmations: Vec<(String, String)> = sms
            .delivered
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.key.contains("|reply@"))
            .map(|m| (m.to_address.clone(), m.body.clone()))
            .collect();
        assert_eq!(
            confirmations,
            [
                (
                    "+22366445566".to_owned(),
                    format!("Merci, votre absence est notée (réf {reference}).")
                ),
                (
                    "+22366445566".to_owned(),
                    format!("Merci, votre présence est notée (réf {reference}).")
                ),
                (
                    "+22376112233".to_owned(),
                    "I ni ce. An y'a soro.".to_owned()
                ),
            ],
            "in the order of their keys"
        );

        // The webhook: the secret in the URL, a form in the plain format.
        let state = ApiState {
            commands: runtime.commands().clone(),
            inbound_secret: Some("s3cret".into()),
            webhooks: palabre_sms::gateways::webhooks(None).unwrap(),
            voice: None,
        };
        let post = |path: &str| {
            Request::builder()
                .method("POST")
                .uri(path)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "from=%2B22376112233&text=NON+{reference}"
                )))
                .unwrap()
        };
        let before = runtime.store().ledger(None, 10_000).await.unwrap().len();
        let refused = router(state.clone())
            .oneshot(post("/inbound/sms/guess"))
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            runtime.store().ledger(None, 10_000).await.unwrap().len(),
            before,
            "nothing recorded"
        );
        let accepted = router(state)
            .oneshot(post("/inbound/sms/s3cret"))
            .await
            .unwrap();
        assert_eq!(accepted.status(), StatusCode::OK);
        let answers = runtime
            .store()
            .responses("weekly-koro", occurrence)
            .await
            .unwrap();
        assert_eq!(answers.get("c-1").map(String::as_str), Some("no"));
    }
}

/// An SMS refused for good (an invalid number) goes once more by email, when the
/// contact has an address and the step allows email; the ledger says so.
#[tokio::test]
async fn a_permanently_refused_sms_goes_by_email_once() {
    use palabre_core::channel::Channel;
    use palabre_core::connector::{Connectors, DeliveryError};
    for world in worlds("fallback", "once").await {
        world
            .add_csv("id,name,roles,place,phone,email,language,channels\nc-7,Binta Sow,leader,mopti/koro/koro,76 00 00 07,binta@example.org,fra,sms;email\n")
            .await;
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let sms = Recorder::new(
            Channel::Sms,
            100,
            DeliveryError::Permanent("invalid number".into()),
        );
        let email = Recorder::new(Channel::Email, 0, DeliveryError::Transient(String::new()));
        let connectors = Connectors::default().with(sms.clone()).with(email.clone());
        let runtime = world.runtime(&clock, connectors, "a").await;
        run_until(&runtime, &clock, at("2026-12-04T10:00:00Z")).await;
        let mails = email.delivered.lock().unwrap().clone();
        let to_c7: Vec<_> = mails
            .iter()
            .filter(|m| m.to_address == "binta@example.org")
            .collect();
        assert_eq!(
            to_c7.len(),
            1,
            "the invitation by email instead: {mails:#?}"
        );
        assert!(
            to_c7[0]
                .subject
                .as_deref()
                .unwrap()
                .starts_with("Invitation")
        );
        // Those with no email address have nothing to fall back to.
        assert!(mails.iter().all(|m| m.to_address != "+22376112233"));
        let ledger = runtime
            .store()
            .ledger(Some("weekly-koro"), 1000)
            .await
            .unwrap();
        assert!(
            ledger.iter().any(|e| e.event == "dead-letter"
                && e.contact_id.as_deref() == Some("c-7")
                && e.detail.ends_with("sent again by email instead")),
            "{ledger:#?}"
        );
        assert!(ledger.iter().any(|e| e.event == "sent"
            && e.contact_id.as_deref() == Some("c-7")
            && e.channel == Some(Channel::Email)));
    }
}

/// Delivery receipts: a provider's word for a sent message is recorded against
/// it, known words as delivered or failed, others as they were said.
#[tokio::test]
async fn delivery_receipts_are_recorded_against_their_message() {
    for world in worlds("receipts", "once").await {
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (sms, _email, connectors) = Recorder::pair();
        let runtime = Arc::new(world.runtime(&clock, connectors, "a").await);
        run_until(&runtime, &clock, at("2026-12-04T10:00:00Z")).await;
        let keys = sms.keys();
        assert_eq!(keys.len(), 2, "two invitations by SMS");
        let state = ApiState {
            commands: runtime.commands().clone(),
            inbound_secret: Some("s3cret".into()),
            webhooks: palabre_sms::gateways::webhooks(None).unwrap(),
            voice: None,
        };
        let post = |content_type: &str, body: String| {
            Request::builder()
                .method("POST")
                .uri("/receipts/sms/s3cret")
                .header("content-type", content_type)
                .body(Body::from(body))
                .unwrap()
        };
        let form = "application/x-www-form-urlencoded";
        let answer = |response: axum::response::Response| async move {
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        };
        // Without a gateway, receipts come in palabre's plain format, as a form or
        // JSON (the providers' own formats are in `gateways.rs`).
        let delivered = post(
            form,
            format!("id=rec-{}&status=delivered", urlencode(&keys[0])),
        );
        let done = answer(router(state.clone()).oneshot(delivered).await.unwrap()).await;
        assert_eq!(done, serde_json::json!({ "recorded": 1, "unknown": 0 }));
        let absent = post(
            form,
            format!("id=rec-{}&status=AbsentSubscriber", urlencode(&keys[1])),
        );
        answer(router(state.clone()).oneshot(absent).await.unwrap()).await;
        let new_word = post(
            "application/json",
            serde_json::json!({ "id": format!("rec-{}", keys[1]), "status": "SOMETHING_NEW" })
                .to_string(),
        );
        let done = answer(router(state.clone()).oneshot(new_word).await.unwrap()).await;
        assert_eq!(done, serde_json::json!({ "recorded": 1, "unknown": 0 }));
        let nobody = post(
            "application/json",
            serde_json::json!({ "id": "nobody", "status": "DELIVERED" }).to_string(),
        );
        let done = answer(router(state.clone()).oneshot(nobody).await.unwrap()).await;
        assert_eq!(done, serde_json::json!({ "recorded": 0, "unknown": 1 }));
        let malformed = post("application/json", "{\"id\": 7}".to_owned());
        assert_eq!(
            router(state).oneshot(malformed).await.unwrap().status(),
            StatusCode::BAD_REQUEST
        );
        let ledger = runtime
            .store()
            .ledger(Some("weekly-koro"), 1000)
            .await
            .unwrap();
        let events: Vec<(&str, &str)> = ledger
            .iter()
            .filter(|e| ["delivered", "undelivered", "receipt"].contains(&e.event.as_str()))
            .map(|e| (e.event.as_str(), e.detail.as_str()))
            .collect();
        assert_eq!(
            events,
            [
                ("delivered", "the provider reports: delivered"),
                ("undelivered", "the provider reports: AbsentSubscriber"),
                ("receipt", "the provider reports: SOMETHING_NEW"),
            ]
        );
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A recipient the provider reports as opted out (Twilio 21610, Africa's
/// Talking 406) is stopped like one who answered STOP: the next SMS to them is
/// not attempted.
#[tokio::test]
async fn an_opt_out_reported_by_the_provider_stops_sms_to_the_contact() {
    use palabre_core::channel::Channel;
    use palabre_core::connector::{Connectors, DeliveryError};
    for world in worlds("provider_opt_out", "once").await {
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let sms = Recorder::new(
            Channel::Sms,
            100,
            DeliveryError::OptedOut("twilio: the recipient has opted out (21610)".into()),
        );
        let email = Recorder::new(Channel::Email, 0, DeliveryError::Transient(String::new()));
        let connectors = Connectors::default().with(sms.clone()).with(email);
        let runtime = world.runtime(&clock, connectors, "a").await;
        run_until(&runtime, &clock, at("2026-12-07T08:00:00Z")).await;
        let ledger = runtime.store().ledger(None, 1000).await.unwrap();
        let about = |event: &str, contact: &str| -> Vec<&str> {
            ledger
                .iter()
                .filter(|e| e.event == event && e.contact_id.as_deref() == Some(contact))
                .map(|e| e.detail.as_str())
                .collect()
        };
        for contact in ["c-1", "c-2"] {
            assert_eq!(
                about("sms-stopped", contact),
                ["the provider reports they opted out: no more SMS"],
                "{ledger:#?}"
            );
            let dead = about("dead-letter", contact);
            assert_eq!(dead.len(), 2, "invitation and reminder: {dead:?}");
            assert!(dead[0].contains("opted out (21610)"), "{dead:?}");
            assert_eq!(
                dead[1], "the contact opted out of SMS (STOP)",
                "the reminder is not attempted"
            );
        }
        assert_eq!(runtime.store().sms_stopped().await.unwrap().len(), 2);
    }
}

const PLANS: &str = "\
kind: milestones
id: plan-sms
title: Plan test
place: mopti/koro
timezone: Africa/Bamako
send_at: \"08:00\"
done_by_sms: true
milestones:
  - { id: puits, title: Puits, owner: { role: leader, place: mopti/koro/koro }, due: 2026-12-20 }
  - { id: ecole, title: Ecole, owner: { role: leader, place: mopti/koro/koro }, due: 2026-12-20 }
";

/// A yes quoting a dispute's reference acknowledges it when the sender answers
/// for its current level; a no is a note for the coordinator. A done quoting a
/// milestone's reference closes it when the sender owns it and its plan allows.
/// Anyone else's reply is unmatched; every reply acted on is confirmed.
#[tokio::test]
async fn replies_acknowledge_disputes_and_close_milestones() {
    use palabre_engine::commands::NewCase;
    use palabre_lang::escalation::CaseState;
    use palabre_lang::milestones::MilestoneStatus;
    for world in worlds("replies_cases", "once").await {
        std::fs::write(
            world.workflows.join("ladder.yaml"),
            crate::escalation::LADDER,
        )
        .unwrap();
        std::fs::write(world.workflows.join("plan.yaml"), PLANS).unwrap();
        std::fs::write(
            world.workflows.join("plan-closed.yaml"),
            PLANS
                .replace("id: plan-sms", "id: plan-closed")
                .replace("done_by_sms: true", "done_by_sms: false"),
        )
        .unwrap();
        std::fs::write(world.workflows.join("replies.yaml"), REPLIES).unwrap();
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (sms, _email, connectors) = Recorder::pair();
        let runtime = Arc::new(world.runtime(&clock, connectors, "a").await);
        let case = runtime
            .commands()
            .open_case(
                NewCase {
                    workflow: "litiges-test".into(),
                    category: "foncier".into(),
                    place: "mopti/koro/koro".into(),
                    parties: vec!["c-3".into()],
                    severity: 2,
                    description: "Un champ disputé".into(),
                },
                "test",
            )
            .await
            .unwrap();
        let reply = |from: &'static str, text: String| {
            let runtime = runtime.clone();
            async move {
                runtime
                    .commands()
                    .inbound_sms(&InboundSms::new(from, text))
                    .await
                    .unwrap()
            }
        };
        // c-2 leads another village: the first level is not theirs.
        let outcome = reply("66445566", format!("OUI {}", case.id)).await;
        assert!(
            matches!(&outcome, InboundOutcome::Unmatched { reason }
            if reason == "c-2: no meeting or dispute of theirs has the reference LT-0001"),
            "{outcome:?}"
        );
        // c-1 first declines (noted), then takes it on, in lower case.
        let outcome = reply("76112233", format!("non {}", case.id)).await;
        assert!(
            matches!(&outcome, InboundOutcome::Declined { contact, case, .. }
            if contact == "c-1" && case == "LT-0001"),
            "{outcome:?}"
        );
        let outcome = reply("76112233", "oui lt-0001".to_owned()).await;
        assert!(
            matches!(&outcome, InboundOutcome::Acknowledged { case, .. } if case == "LT-0001"),
            "{outcome:?}"
        );
        let stored = runtime.store().case("LT-0001").await.unwrap().unwrap();
        assert_eq!(stored.state, CaseState::Acknowledged);
        let outcome = reply("76112233", "OUI LT-0001".to_owned()).await;
        assert!(
            matches!(outcome, InboundOutcome::Unmatched { .. }),
            "acknowledged once"
        );

        // Milestones: the owner closes one by SMS where the plan allows it.
        let definitions = runtime.commands().definitions();
        let reference = |plan: &str, milestone: &str| {
            let plan = definitions.plan(plan).unwrap();
            plan.reference(plan.milestone(milestone).unwrap())
        };
        assert_ne!(
            reference("plan-sms", "puits"),
            reference("plan-sms", "ecole"),
            "due the same day, told apart"
        );
        let outcome = reply(
            "66445566",
            format!("FAIT {}", reference("plan-sms", "puits")),
        )
        .await;
        assert!(
            matches!(outcome, InboundOutcome::Unmatched { .. }),
            "c-2 does not own it"
        );
        let outcome = reply(
            "76112233",
            format!("FAIT {}", reference("plan-closed", "puits")),
        )
        .await;
        assert!(
            matches!(outcome, InboundOutcome::Unmatched { .. }),
            "that plan does not allow it"
        );
        let outcome = reply(
            "76112233",
            format!("fait {}", reference("plan-sms", "puits")),
        )
        .await;
        assert!(
            matches!(&outcome, InboundOutcome::MilestoneDone { plan, milestone, .. }
            if plan == "plan-sms" && milestone == "puits"),
            "{outcome:?}"
        );
        let outcome = reply(
            "76112233",
            format!("FAIT {}", reference("plan-sms", "puits")),
        )
        .await;
        assert!(
            matches!(&outcome, InboundOutcome::Unmatched { reason } if reason.contains("no open milestone")),
            "already done: {outcome:?}"
        );
        let states = runtime.store().milestone_states().await.unwrap();
        let puits: Vec<_> = states.iter().filter(|s| s.milestone == "puits").collect();
        assert_eq!(puits.len(), 1, "{states:?}");
        assert_eq!(
            (puits[0].plan.as_str(), puits[0].status),
            ("plan-sms", MilestoneStatus::Done)
        );
        assert_eq!(puits[0].note, "reported done by SMS by c-1");

        // The ledger keeps who did what; c-1 got three confirmations.
        let history = runtime
            .store()
            .ledger(Some("litiges-test"), 100)
            .await
            .unwrap();
        assert!(
            history
                .iter()
                .any(|e| e.event == "case-note" && e.detail == "by c-1: declined by SMS"),
            "{history:#?}"
        );
        assert!(
            history
                .iter()
                .any(|e| e.event == "case-acknowledged" && e.detail.ends_with("by c-1: by SMS")),
            "{history:#?}"
        );
        run_until(&runtime, &clock, at("2026-12-03T12:05:00Z")).await;
        let confirmations = sms
            .delivered
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.key.contains("|reply@"))
            .count();
        assert_eq!(confirmations, 3);
    }
}

#[tokio::test]
async fn a_reply_not_understood_is_answered_once_a_day_in_the_senders_language() {
    for world in worlds("reply_help", "once").await {
        std::fs::write(world.workflows.join("replies.yaml"), REPLIES).unwrap();
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (sms, _email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        runtime.tick().await.unwrap();
        let before = sms.keys().len();
        let say = |from: &'static str, text: &'static str| {
            let runtime = &runtime;
            async move {
                runtime
                    .commands()
                    .inbound_sms(&InboundSms::new(from, text))
                    .await
                    .unwrap()
            }
        };
        // Awa (Bambara) writes a greeting, then a yes with no reference, then a
        // reference that is not hers: all unmatched, and one help, in Bambara.
        for text in ["I ni ce", "AWO", "AWO 0000"] {
            assert!(matches!(
                say("76112233", text).await,
                InboundOutcome::Unmatched { .. }
            ));
        }
        // Hama writes in Fulfulde, which the help text does not have: French.
        say("66445566", "jam tan").await;
        // A number nobody has gets nothing back.
        say("+22399887766", "allo").await;
        runtime.tick().await.unwrap();
        let bodies = |from: usize| -> Vec<(String, String)> {
            let delivered = sms.delivered.lock().unwrap();
            delivered[from..]
                .iter()
                .map(|m| (m.to_address.clone(), m.body.clone()))
                .collect()
        };
        let helps = bodies(before);
        assert_eq!(helps.len(), 2, "{helps:?}");
        assert!(
            helps.iter().any(|(to, body)| to == "+22376112233"
                && body.starts_with("An ma i ka cikan faamu. Jaabi AWO walima AYI")),
            "{helps:?}"
        );
        assert!(
            helps.iter().any(|(to, body)| to == "+22366445566"
                && body.starts_with("Message non compris. Pour répondre, envoyez OUI ou NON")),
            "{helps:?}"
        );
        // The next day, a new conversation: one more help.
        clock.advance_to(at("2026-12-04T08:00:00Z"));
        say("76112233", "?").await;
        runtime.tick().await.unwrap();
        assert_eq!(bodies(before).len(), 3);
    }
}
