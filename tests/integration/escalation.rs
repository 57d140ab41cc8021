//! Dispute escalation on the virtual clock, on SQLite and PostgreSQL: a dispute
//! climbs the whole ladder with working-time deadlines across a holiday and a
//! weekend; an acknowledged one stops climbing; messages never carry the
//! description; `palabre case` end to end.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use palabre_core::clock::{Clock, VirtualClock};
use palabre_engine::commands::{CaseAction, NewCase};

use crate::runtime::{Recorder, at, run_until, worlds};
use crate::util::{palabre, workspace_with_directory};

pub(crate) const LADDER: &str = "\
kind: escalation
id: litiges-test
title: Litiges
place: mopti
categories: [foncier, violence]
levels:
  - { id: chef, title: Chef, responders: [{ role: leader }], acknowledge_within: 4h, resolve_within: 10d }
  - { id: maire, title: Maire, responders: [{ role: mayor }], acknowledge_within: 4h, resolve_within: 10d }
  - { id: prefet, title: Préfet, scope: cercle, responders: [{ role: prefect }], acknowledge_within: 1d, resolve_within: 10d }
  - { id: comite, title: Comité, scope: region, responders: [{ role: governor }], acknowledge_within: 1d, resolve_within: 20d }
  - { id: mediateur, title: Médiateur, scope: region, responders: [{ role: mediator }], acknowledge_within: 2d, resolve_within: 20d }
";

const CONTACTS: &str = "id,name,roles,place,phone,email,language,channels
c-4,Préfet Test,prefect,mopti/koro,76 00 00 14,,fra,sms
c-5,Gouverneur Test,governor,mopti,76 00 00 15,,fra,sms
c-6,Médiateur Test,mediator,mopti,76 00 00 16,,fra,sms
";

fn dispute(description: &str) -> NewCase {
    NewCase {
        workflow: "litiges-test".into(),
        category: "foncier".into(),
        place: "mopti/koro/koro".into(),
        parties: vec!["c-1".into()],
        severity: 2,
        description: description.into(),
    }
}

#[tokio::test]
async fn a_dispute_climbs_the_ladder_in_working_time_and_acknowledgement_stops_it() {
    for world in worlds("escalation", "once").await {
        std::fs::write(world.workflows.join("ladder.yaml"), LADDER).unwrap();
        // A second ladder whose ids start with the same letters.
        std::fs::write(
            world.workflows.join("ladder-2.yaml"),
            LADDER.replace("id: litiges-test", "id: litiges-tessit"),
        )
        .unwrap();
        std::fs::create_dir_all(world.workflows.join("calendars")).unwrap();
        std::fs::write(
            world.workflows.join("calendars/test.yaml"),
            "dated: [{ date: 2026-12-25, name: Noël }]\n",
        )
        .unwrap();
        world.add_csv(CONTACTS).await;

        // Thursday 24 December 2026, 15:00; Friday 25 is a holiday, then a weekend.
        let clock = Arc::new(VirtualClock::new(at("2026-12-24T15:00:00Z")));
        let (sms, _email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        let climbing = runtime
            .commands()
            .open_case(dispute("Deux familles se disputent un champ"), "test")
            .await
            .unwrap();
        let quiet = runtime
            .commands()
            .open_case(dispute("Un puits partagé"), "test")
            .await
            .unwrap();
        assert_eq!(
            (climbing.id.as_str(), quiet.id.as_str()),
            ("LT-0001", "LT-0002")
        );
        // Another ladder with the same prefix continues the numbering.
        let mut other = dispute("un autre litige");
        other.workflow = "litiges-tessit".into();
        // A party named twice (a form sent twice over) is one party.
        other.parties = vec!["c-1".into(), "c-1".into()];
        let other = runtime.commands().open_case(other, "test").await.unwrap();
        assert_eq!(other.id, "LT-0003");
        assert_eq!(other.parties, ["c-1"]);
        // Cases opened at the same moment each get their own id.
        let at_once = futures::future::join_all((0..6).map(|i| {
            runtime
                .commands()
                .open_case(dispute(&format!("litige {i}")), "test")
        }))
        .await;
        let mut ids: Vec<String> = at_once.into_iter().map(|c| c.unwrap().id).collect();
        ids.sort();
        assert_eq!(
            ids,
            [
                "LT-0004", "LT-0005", "LT-0006", "LT-0007", "LT-0008", "LT-0009"
            ]
        );
        for id in ids.iter().chain([&other.id]) {
            runtime
                .commands()
                .act_on_case(id, CaseAction::Resolve("test".into()), "test")
                .await
                .unwrap();
        }

        // Monday 28, 09:00: the second case is acknowledged before its deadline.
        run_until(&runtime, &clock, at("2026-12-28T09:00:00Z")).await;
        runtime
            .commands()
            .act_on_case(
                "LT-0002",
                CaseAction::Acknowledge("vu par le chef".into()),
                "test",
            )
            .await
            .unwrap();
        run_until(&runtime, &clock, at("2027-01-04T00:00:00Z")).await;

        let store = runtime.store();
        let history = store.ledger_about("litiges-test", "LT-0001").await.unwrap();
        let reached: Vec<&str> = history
            .iter()
            .filter(|e| e.event == "case-escalated")
            .map(|e| e.detail.as_str())
            .collect();
        let deadlines = [
            ("chef", "2026-12-28 10:00"), // 2 h on Thursday, Friday a holiday, weekend, 2 h Monday
            ("maire", "2026-12-28 14:00"),
            ("prefet", "2026-12-29 14:00"), // a working day: 3 h Monday, 6 h Tuesday
            ("comite", "2026-12-30 14:00"),
            ("mediateur", "2027-01-01 14:00"),
            ("mediateur", "2027-01-05 14:00"), // at the top: told again
        ];
        assert_eq!(reached.len(), deadlines.len(), "{history:#?}");
        for (detail, (level, by)) in reached.iter().zip(deadlines) {
            assert!(
                detail.starts_with(&format!("level {level} "))
                    && detail.contains(&format!("acknowledge by {by}")),
                "{level} {by}: {detail}"
            );
        }
        let missed: Vec<DateTime<Utc>> = history
            .iter()
            .filter(|e| e.event == "deadline-missed")
            .map(|e| e.at)
            .collect();
        assert_eq!(
            missed,
            [
                at("2026-12-28T10:00:00Z"),
                at("2026-12-28T14:00:00Z"),
                at("2026-12-29T14:00:00Z"),
                at("2026-12-30T14:00:00Z"),
                at("2027-01-01T14:00:00Z"),
            ]
        );
        let case = store.case("LT-0001").await.unwrap().unwrap();
        assert_eq!(case.level, 4);
        // Each level's responders were told, by reference and category only.
        let texts = sms.delivered.lock().unwrap().clone();
        for phone in ["+22376000014", "+22376000015", "+22376000016"] {
            let told: Vec<_> = texts.iter().filter(|m| m.to_address == phone).collect();
            assert!(!told.is_empty(), "{phone} was told");
            assert!(
                told.iter()
                    .all(|m| m.body.contains("LT-0001") && m.body.contains("foncier"))
            );
        }
        assert!(
            texts
                .iter()
                .all(|m| !m.body.contains("familles") && !m.body.contains("puits"))
        );

        // The acknowledged case stayed where it was.
        let quiet = store.case("LT-0002").await.unwrap().unwrap();
        assert_eq!((quiet.level, quiet.state.as_str()), (0, "acknowledged"));
        let quiet_history = store.ledger_about("litiges-test", "LT-0002").await.unwrap();
        assert!(
            quiet_history.iter().all(|e| e.event != "deadline-missed"),
            "{quiet_history:#?}"
        );

        // Resolving drops both deadlines; reopening plans two fresh ones, never twice.
        let pending = || async { store.status(clock.now()).await.unwrap().due_later };
        let before = pending().await;
        runtime
            .commands()
            .act_on_case(
                "LT-0001",
                CaseAction::Resolve("accord signé".into()),
                "test",
            )
            .await
            .unwrap();
        assert_eq!(pending().await, before - 2);
        runtime
            .commands()
            .act_on_case(
                "LT-0001",
                CaseAction::Reopen("l'accord n'est pas appliqué".into()),
                "test",
            )
            .await
            .unwrap();
        assert_eq!(pending().await, before);
        let refused = runtime
            .commands()
            .act_on_case("LT-0001", CaseAction::Reopen("encore".into()), "test")
            .await;
        assert!(refused.is_err(), "an open case cannot be reopened");
        let history = store.ledger_about("litiges-test", "LT-0001").await.unwrap();
        assert!(
            history
                .iter()
                .any(|e| e.event == "case-resolved" && e.detail.ends_with("accord signé"))
        );
        assert!(history.iter().any(|e| e.event == "case-reopened"));
    }
}

#[test]
fn cases_from_the_command_line() {
    let dir = workspace_with_directory();
    let open = |args: &[&str]| {
        let mut all = vec![
            "case",
            "open",
            "--workflow",
            "litiges-mopti",
            "--place",
            "mopti/koro/koro",
            "--description",
            "Conflit de limites",
        ];
        all.extend(args);
        palabre(dir.path(), &all)
    };
    let run = open(&["--category", "foncier", "--party", "c-0100"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "LM-0001 opened at level 0\n");
    let run = open(&["--category", "violence"]);
    assert_eq!(
        run.stdout, "LM-0002 opened at level 2\n",
        "violence goes straight to the prefect"
    );
    for (args, error) in [
        (&["--category", "vol"][..], "unknown category 'vol'"),
        (
            &["--category", "foncier", "--party", "c-9999"],
            "no contact 'c-9999'",
        ),
        (
            &["--category", "foncier", "--severity", "9"],
            "severity goes from 1",
        ),
    ] {
        let run = open(args);
        assert_eq!(run.code, 1, "{args:?}");
        assert!(run.stderr.contains(error), "{}", run.stderr);
    }
    let run = palabre(dir.path(), &["case", "ack", "LM-0001", "--note", "vu"]);
    assert_eq!(
        run.stdout, "LM-0001: acknowledged at level 0\n",
        "{}",
        run.stderr
    );
    let run = palabre(
        dir.path(),
        &["case", "escalate", "LM-0001", "--note", "pas de réponse"],
    );
    assert_eq!(run.stdout, "LM-0001: open at level 1\n", "{}", run.stderr);
    let run = palabre(dir.path(), &["case", "show", "LM-0001"]);
    assert_eq!(run.code, 0);
    let events: Vec<&str> = run
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(2).unwrap_or_default())
        .collect();
    assert_eq!(
        events,
        [
            "case-opened",
            "case-escalated",
            "case-acknowledged",
            "case-escalated"
        ],
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("Conflit de limites"),
        "the description needs --reveal"
    );
    let run = palabre(dir.path(), &["case", "show", "LM-0001", "--reveal"]);
    assert!(run.stdout.contains("description: Conflit de limites"));
}

/// A ladder whose level titles are what people read, unlike its ids.
const WORDED_LADDER: &str = "\
kind: escalation
id: litiges-textes
title: Litiges
place: mopti
categories: [foncier]
levels:
  - { id: chef, title: Chef de village, responders: [{ role: leader }], acknowledge_within: 4h, resolve_within: 10d }
  - { id: maire, title: Maire de la commune, responders: [{ role: mayor }], acknowledge_within: 4h, resolve_within: 10d }
  - { id: prefet, title: Préfet du cercle, scope: cercle, responders: [{ role: prefect }], acknowledge_within: 1d, resolve_within: 2d }
  - { id: comite, title: Comité régional, scope: region, responders: [{ role: governor }], acknowledge_within: 1d, resolve_within: 10d }
";

/// Besides the world's Awa Diallo (leader, Bambara SMS) and Oumar Tall (mayor,
/// French email): a leader, a prefect and a governor by French email, a mayor by
/// English email, a prefect by French SMS.
const WORDED_CONTACTS: &str = "id,name,roles,place,phone,email,language,channels
c-4,Préfet Test,prefect,mopti/koro,,prefet@example.org,fra,email
c-5,Gouverneur Test,governor,mopti,,gouverneur@example.org,fra,email
c-6,Chef Test,leader,mopti/koro/koro,,chef@example.org,fra,email
c-7,Mayor Test,mayor,mopti/koro/koro,,mayor@example.org,eng,email
c-8,Préfet Sms,prefect,mopti/koro,76 00 00 18,,fra,sms
";

/// Words no responder may read: actors, the ledger's English, level ids.
const INTERNAL: [&str; 17] = [
    "by hand",
    "by cli",
    "by api",
    "level chef",
    "deadline missed",
    "missed deadline",
    "token",
    "3f9a",
    "hotline",
    "Fatoumata",
    "Koné",
    "from level",
    "chef",
    "maire",
    "prefet",
    "comite",
    "cli",
];

#[tokio::test]
async fn responders_read_why_a_dispute_reaches_them_in_their_language_and_never_who_did_it() {
    for world in worlds("escalation_texts", "once").await {
        std::fs::write(world.workflows.join("ladder.yaml"), WORDED_LADDER).unwrap();
        world.add_csv(WORDED_CONTACTS).await;
        // Thursday 3 December 2026, 10:00 in Bamako (UTC).
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T10:00:00Z")));
        let (sms, email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        let commands = runtime.commands();
        let mut new = dispute("Deux familles se disputent un champ");
        new.workflow = "litiges-textes".into();
        // Opened through the API: its actor is the token's label and id.
        let case = commands
            .open_case(new, "hotline (token 3f9a)")
            .await
            .unwrap();
        assert_eq!(case.id, "LT-0001");
        // 14:00: the village chief did not acknowledge in time; the mayor is told.
        run_until(&runtime, &clock, at("2026-12-03T14:30:00Z")).await;
        assert_eq!(store_level(&runtime).await, 1);
        // The coordinator sends it on to the prefect by hand, with a note.
        commands
            .act_on_case(
                "LT-0001",
                CaseAction::Escalate("Les familles demandent le préfet".into()),
                "Fatoumata Koné",
            )
            .await
            .unwrap();
        run_until(&runtime, &clock, at("2026-12-03T14:45:00Z")).await;
        commands
            .act_on_case("LT-0001", CaseAction::Resolve("accord".into()), "cli")
            .await
            .unwrap();
        commands
            .act_on_case(
                "LT-0001",
                CaseAction::Reopen("L'accord n'est pas appliqué".into()),
                "cli",
            )
            .await
            .unwrap();
        run_until(&runtime, &clock, at("2026-12-03T15:15:00Z")).await;
        commands
            .act_on_case("LT-0001", CaseAction::Acknowledge("vu".into()), "cli")
            .await
            .unwrap();
        // Two working days to resolve from Thursday 14:45: Monday 14:45. Missed,
        // the regional committee is told.
        run_until(&runtime, &clock, at("2026-12-07T16:00:00Z")).await;
        assert_eq!(store_level(&runtime).await, 3);

        let sent: Vec<palabre_core::connector::OutgoingMessage> = sms
            .delivered
            .lock()
            .unwrap()
            .iter()
            .chain(email.delivered.lock().unwrap().iter())
            .filter(|m| m.body.contains("LT-0001"))
            .cloned()
            .collect();
        let to = |address: &str| -> Vec<String> {
            let mut texts: Vec<(String, String)> = sent
                .iter()
                .filter(|m| m.to_address == address)
                .map(|m| (m.key.clone(), m.body.clone()))
                .collect();
            texts.sort();
            texts.into_iter().map(|(_, body)| body).collect()
        };
        assert_eq!(sent.len(), 9, "{sent:#?}");
        let chef = to("chef@example.org");
        assert_eq!(chef.len(), 1, "{chef:#?}");
        assert!(chef[0].contains("Nouveau litige"), "{}", chef[0]);
        assert!(
            chef[0].contains("vous est confié au niveau « Chef de village »"),
            "{}",
            chef[0]
        );
        let mayor = to("oumar@example.org");
        assert_eq!(mayor.len(), 1, "{mayor:#?}");
        assert!(
            mayor[0].contains("Le niveau « Chef de village » n'a pas accusé réception à temps"),
            "{}",
            mayor[0]
        );
        assert!(mayor[0].contains("au niveau « Maire de la commune »"));
        let english = to("mayor@example.org");
        assert_eq!(english.len(), 1, "{english:#?}");
        assert!(
            english[0].contains("The level \"Chef de village\" did not acknowledge it in time"),
            "{}",
            english[0]
        );
        let prefect = to("prefet@example.org");
        assert_eq!(
            prefect.len(),
            2,
            "sent by hand, then reopened: {prefect:#?}"
        );
        let (by_hand, reopened) = if prefect[0].contains("Rouvert") {
            (&prefect[1], &prefect[0])
        } else {
            (&prefect[0], &prefect[1])
        };
        assert!(
            by_hand
                .contains("Transmis par le coordinateur depuis le niveau « Maire de la commune »"),
            "{by_hand}"
        );
        assert!(
            by_hand.contains("« Les familles demandent le préfet »"),
            "the note, as written: {by_hand}"
        );
        assert!(reopened.contains("Rouvert"), "{reopened}");
        assert!(
            reopened.contains("« L'accord n'est pas appliqué »"),
            "{reopened}"
        );
        let committee = to("gouverneur@example.org");
        assert_eq!(committee.len(), 1, "{committee:#?}");
        assert!(
            committee[0].contains("Le niveau « Préfet du cercle » ne l'a pas réglé à temps"),
            "{}",
            committee[0]
        );
        let texts = to("+22376000018");
        assert_eq!(texts.len(), 2, "{texts:#?}");
        assert!(
            texts.iter().any(|t| t.contains("transmis"))
                && texts.iter().any(|t| t.contains("rouvert")),
            "{texts:#?}"
        );
        let bambara = to("+22376112233");
        assert_eq!(bambara.len(), 1, "{bambara:#?}");
        assert!(bambara[0].contains("kura"), "{}", bambara[0]);

        for message in &sent {
            let text = format!(
                "{}\n{}",
                message.subject.as_deref().unwrap_or_default(),
                message.body
            );
            for word in INTERNAL {
                assert!(
                    !text.contains(word),
                    "{word:?} reached {}:\n{text}",
                    message.to_address
                );
            }
            // English has its own words for these; nowhere else may they appear.
            if message.language != "eng" {
                for word in ["opened", "reopened", "Dispute", "level"] {
                    assert!(
                        !text.contains(word),
                        "{word:?} reached {}:\n{text}",
                        message.to_address
                    );
                }
            }
        }

        // The ledger keeps who did it and the English detail.
        let history = runtime
            .store()
            .ledger_about("litiges-textes", "LT-0001")
            .await
            .unwrap();
        let escalated: Vec<&str> = history
            .iter()
            .filter(|e| e.event == "case-escalated")
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(escalated.len(), 5, "{escalated:#?}");
        assert!(escalated[0].starts_with("level chef (Chef de village): "));
        assert!(
            escalated[1].contains(
                "from level chef (missed deadline): acknowledge deadline missed at level chef"
            ),
            "{}",
            escalated[1]
        );
        assert!(
            escalated[2].contains("from level maire (by hand): Les familles demandent le préfet")
                && escalated[2].ends_with("; by Fatoumata Koné"),
            "{}",
            escalated[2]
        );
        assert!(
            escalated[3].contains("reopened: L'accord n'est pas appliqué"),
            "{}",
            escalated[3]
        );
        assert!(
            escalated[4].contains(
                "from level prefet (missed deadline): resolve deadline missed at level prefet"
            ),
            "{}",
            escalated[4]
        );
        let opened = history.iter().find(|e| e.event == "case-opened").unwrap();
        assert!(opened.detail.ends_with("by hotline (token 3f9a)"));
        let reopened = history.iter().find(|e| e.event == "case-reopened").unwrap();
        assert_eq!(reopened.detail, "by cli: L'accord n'est pas appliqué");
    }
}

async fn store_level(runtime: &palabre_engine::runtime::Runtime) -> usize {
    runtime
        .store()
        .case("LT-0001")
        .await
        .unwrap()
        .unwrap()
        .level
}
