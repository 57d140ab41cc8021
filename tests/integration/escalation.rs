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
