//! Redeployment milestones: a plan run a quarter forward on the virtual clock on
//! SQLite and PostgreSQL (reminders, overdue checks decided by the rule, a
//! dependency slip, done stopping everything), and the CLI timeline.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use palabre_core::clock::VirtualClock;
use palabre_lang::milestones::MilestoneStatus;

use crate::runtime::{Recorder, at, run_until, worlds};
use crate::util::{palabre, workspace};

const PLAN: &str = "\
kind: milestones
id: plan-koro
title: Plan de Koro
place: mopti/koro
reminders: [-14d, -3d]
overdue_every: 7d
milestones:
  - { id: logement, title: Logements, owner: { contacts: [c-1] }, due: 2027-01-15 }
  - { id: ecole, title: École, owner: { contacts: [c-2] }, due: 2027-02-15, depends_on: [logement] }
  - { id: etat-civil, title: État civil, owner: { contacts: [c-3] }, due: 2027-01-05 }
";

const RULE: &str = "\
fn milestone_overdue(input) {
    let late = input.milestone.days_late;
    if late > 14 {
        return #{ action: \"escalate\", to: #{ role: \"mayor\", place: \"mopti/koro\" }, reason: `${late} jours` };
    }
    #{ action: \"remind\", reason: `${late} jours` }
}
";

#[tokio::test]
async fn a_plan_runs_a_quarter_with_reminders_escalation_slips_and_done() {
    for world in worlds("milestones", "once").await {
        std::fs::write(world.workflows.join("plan.yaml"), PLAN).unwrap();
        std::fs::create_dir_all(world.workflows.join("rules")).unwrap();
        std::fs::write(world.workflows.join("rules/national.rhai"), RULE).unwrap();
        let clock = Arc::new(VirtualClock::new(at("2026-12-01T08:00:00Z")));
        let (sms, email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;

        run_until(&runtime, &clock, at("2026-12-20T10:00:00Z")).await;
        let store = runtime.store();
        store
            .set_milestone_status(
                "plan-koro",
                "etat-civil",
                MilestoneStatus::Done,
                "registres rouverts",
                clock_now(&clock),
            )
            .await
            .unwrap();
        run_until(&runtime, &clock, at("2027-02-08T10:00:00Z")).await;
        store
            .set_milestone_status(
                "plan-koro",
                "logement",
                MilestoneStatus::Done,
                "logements livrés",
                clock_now(&clock),
            )
            .await
            .unwrap();
        run_until(&runtime, &clock, at("2027-03-01T00:00:00Z")).await;

        let ledger = store.ledger(Some("plan-koro"), 1000).await.unwrap();
        let sent = |step: &str, contact: &str| {
            ledger
                .iter()
                .filter(|e| {
                    e.event == "sent"
                        && e.step.as_deref() == Some(step)
                        && e.contact_id.as_deref() == Some(contact)
                })
                .count()
        };
        // Reminders before the due date, to the owner.
        assert_eq!(sent("logement/reminder-14d", "c-1"), 1, "{ledger:#?}");
        assert_eq!(sent("logement/reminder-3d", "c-1"), 1);
        assert_eq!(sent("ecole/reminder-14d", "c-2"), 1);
        // Overdue: reminded for two weeks, then escalated to the mayor (c-3), then done.
        let overdue: Vec<&str> = ledger
            .iter()
            .filter(|e| {
                e.event == "overdue"
                    && e.step
                        .as_deref()
                        .is_some_and(|s| s.starts_with("logement/"))
            })
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(overdue.len(), 4, "{overdue:#?}");
        assert!(
            overdue[0].starts_with("check 1, 0 day(s) late: remind the owner"),
            "{}",
            overdue[0]
        );
        assert!(
            overdue[3]
                .starts_with("check 4, 21 day(s) late: escalate to mayor at mopti/koro: 21 jours"),
            "{}",
            overdue[3]
        );
        assert!(overdue[3].contains("rules/national.rhai"), "{}", overdue[3]);
        assert_eq!(sent("logement/overdue-1", "c-1"), 1);
        assert_eq!(
            sent("logement/overdue-4", "c-3"),
            1,
            "the escalation reaches the mayor"
        );
        assert_eq!(
            sent("logement/overdue-5", "c-1") + sent("logement/overdue-5", "c-3"),
            0,
            "done stops the checks"
        );
        // The dependency slipped: the owner of the school is told at the first check.
        assert_eq!(sent("logement/overdue-1", "c-2"), 1);
        let slip = sms
            .delivered
            .lock()
            .unwrap()
            .iter()
            .find(|m| m.body.starts_with("Logements en retard"))
            .cloned()
            .expect("the slip SMS");
        assert!(slip.body.contains("École peut glisser"), "{}", slip.body);
        // Done before its reminders: none of them is sent.
        assert_eq!(
            ledger
                .iter()
                .filter(|e| e.event == "sent"
                    && e.step
                        .as_deref()
                        .is_some_and(|s| s.starts_with("etat-civil/")))
                .count(),
            0
        );
        assert!(ledger.iter().any(|e| e.event == "milestone-status"
            && e.step.as_deref() == Some("etat-civil")
            && e.detail == "planned → done: registres rouverts"));
        assert!(ledger.iter().any(|e| {
            e.event == "replanned"
                && e.step.as_deref() == Some("etat-civil")
                && e.detail
                    .contains("pending reminder(s) and check(s) dropped")
        }));
        let escalation = email
            .delivered
            .lock()
            .unwrap()
            .iter()
            .find(|m| {
                m.subject
                    .as_deref()
                    .is_some_and(|s| s.starts_with("Jalon en retard signalé"))
            })
            .cloned()
            .expect("the escalation email");
        assert!(
            escalation.body.contains("21 jours de retard"),
            "{}",
            escalation.body
        );
    }
}

fn clock_now(clock: &VirtualClock) -> DateTime<Utc> {
    use palabre_core::clock::Clock;
    clock.now()
}

#[test]
fn the_timeline_shows_status_lateness_and_what_blocks_what() {
    let dir = workspace();
    let run = palabre(
        dir.path(),
        &[
            "milestone",
            "set",
            "logement-enseignants",
            "done",
            "--note",
            "livrés le 10",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "redeploiement-koro/logement-enseignants: planned → done\n"
    );
    let run = palabre(
        dir.path(),
        &["milestones", "--place", "mopti", "--format", "json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(row("logement-enseignants")["status"], "done");
    assert_eq!(row("logement-enseignants")["note"], "livrés le 10");
    assert_eq!(row("ecole-reouverte")["blocked_by"], serde_json::json!([]));
    assert_eq!(
        row("centre-sante")["blocked_by"],
        serde_json::json!(["etat-civil"])
    );
    let run = palabre(dir.path(), &["milestones", "--place", "segou"]);
    assert_eq!(
        run.stdout.lines().count(),
        5,
        "the header and the four milestones of Macina, none of Koro's: {}",
        run.stdout
    );
    assert!(!run.stdout.contains("redeploiement-koro"), "{}", run.stdout);
    let run = palabre(dir.path(), &["milestones", "--format", "ics"]);
    assert!(
        run.stdout
            .contains("UID:redeploiement-koro.ecole-reouverte.due@palabre\r\n"),
        "{}",
        run.stdout
    );
    for (args, error) in [
        (
            &["milestone", "set", "nowhere", "done", "--note", "x"][..],
            "no milestone 'nowhere'",
        ),
        (
            &["milestone", "set", "etat-civil", "finished", "--note", "x"],
            "unknown status 'finished'",
        ),
        (
            &["milestone", "set", "etat-civil", "done", "--note", " "],
            "--note cannot be empty",
        ),
    ] {
        let run = palabre(dir.path(), args);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(run.stderr.contains(error), "{}", run.stderr);
    }
}

/// The timeline as iCalendar, read back with a maintained parser: one all-day
/// VEVENT per milestone on its due date (what Google Calendar and Outlook
/// import; they ignore VTODO), with stable UIDs, transparent (a due date does not
/// make anyone busy), cancelled milestones marked so.
#[test]
fn the_timeline_as_ics_is_all_day_events_calendars_import() {
    use icalendar::{Calendar, Component, DatePerhapsTime};

    let dir = workspace();
    let run = palabre(
        dir.path(),
        &[
            "milestone",
            "set",
            "redeploiement-koro/etat-civil",
            "cancelled",
            "--note",
            "reporté",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = palabre(dir.path(), &["milestones", "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json.stdout).unwrap();
    assert!(rows.len() >= 8, "both plans: {}", json.stdout);
    let run = palabre(dir.path(), &["milestones", "--format", "ics"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ics = run.stdout;
    for line in ics.split_terminator("\r\n") {
        assert!(line.len() <= 75, "folded at 75 octets: {line}");
    }
    assert!(!ics.contains("BEGIN:VTODO"), "VEVENTs only: {ics}");
    let calendar: Calendar = ics.parse().unwrap();
    assert_eq!(calendar.property_value("VERSION"), Some("2.0"));
    let events: Vec<_> = calendar.events().collect();
    assert_eq!(events.len(), rows.len(), "one event per milestone: {ics}");
    for row in &rows {
        let (plan, id) = (row["plan"].as_str().unwrap(), row["id"].as_str().unwrap());
        let uid = format!("{plan}.{id}.due@palabre");
        let event = events
            .iter()
            .find(|e| e.get_uid() == Some(&uid))
            .unwrap_or_else(|| panic!("no event {uid}: {ics}"));
        let due: chrono::NaiveDate = row["due"].as_str().unwrap().parse().unwrap();
        assert_eq!(event.get_start(), Some(DatePerhapsTime::Date(due)), "{uid}");
        assert_eq!(
            event.get_end(),
            Some(DatePerhapsTime::Date(due.succ_opt().unwrap())),
            "{uid}: all day, DTEND the next day"
        );
        assert_eq!(event.property_value("TRANSP"), Some("TRANSPARENT"));
        assert!(event.get_timestamp().is_some(), "DTSTAMP");
        assert_eq!(event.get_summary(), row["title"].as_str(), "{uid}");
        let status = if row["status"] == "cancelled" {
            "CANCELLED"
        } else {
            "CONFIRMED"
        };
        assert_eq!(event.property_value("STATUS"), Some(status), "{uid}");
        let description = event.get_description().unwrap_or_default();
        for part in [
            format!("owner: {}", row["owner"].as_str().unwrap()),
            format!("status: {}", row["status"].as_str().unwrap()),
        ] {
            assert!(description.contains(&part), "{uid}: {description}");
        }
    }
    // The same milestone keeps its UID from one export to the next.
    let again = palabre(dir.path(), &["milestones", "--format", "ics"]).stdout;
    let uids = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("UID:"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(uids(&again), uids(&ics));
}
