//! Planning under load, on SQLite and PostgreSQL: a workflow planned late in a
//! long pass still starts from the pass's present (no slot falls between two
//! instants), a recurrence too frequent for one pass is planned over several with
//! no gap, and reminders rules out of time leave the rest to the next ticks while
//! due timers keep firing.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use palabre_core::clock::Clock;
use palabre_engine::runtime::{Runtime, RuntimeConfig};
use palabre_store::Store;

use crate::runtime::{Recorder, World, at, worlds};

/// A clock that moves on by `step` each time it is read, as the present does
/// while a long planning pass runs.
struct Hurried {
    now: Mutex<DateTime<Utc>>,
    step: TimeDelta,
}

impl Clock for Hurried {
    fn now(&self) -> DateTime<Utc> {
        let mut now = self.now.lock().unwrap();
        let read = *now;
        *now += self.step;
        read
    }
}

async fn runtime_on(world: &World, clock: Arc<dyn Clock>, config: RuntimeConfig) -> Runtime {
    let (_, _, connectors) = Recorder::pair();
    Runtime::new(
        Store::connect(&world.url, &crate::util::test_key())
            .await
            .unwrap(),
        world.definitions().0,
        connectors,
        clock,
        config,
    )
}

/// Every pending timer of `workflow`, by due time (claimed to read them).
async fn timers_of(runtime: &Runtime, workflow: &str) -> Vec<DateTime<Utc>> {
    runtime
        .store()
        .claim_due_timers(
            at("2100-01-01T00:00:00Z"),
            "reader",
            TimeDelta::hours(1),
            1_000_000,
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.workflow == workflow)
        .map(|t| t.due)
        .collect()
}

fn write(world: &World, file: &str, text: &str) {
    std::fs::write(world.workflows.join(file), text).unwrap();
}

#[tokio::test]
async fn a_workflow_planned_late_in_a_pass_still_plans_from_the_start_of_the_pass() {
    for world in worlds("planning_now", "once").await {
        // Monday 7 December, 08:00: a short meeting starts at 08:05.
        write(
            &world,
            "point.yaml",
            "kind: meeting\nid: point-du-matin\ntitle: Point\nplace: mopti/koro\n\
             venue: Mairie\nrecurrence: \"5 8 * * MON\"\nrecipients: [{ role: mayor }]\n\
             steps:\n  - { id: rappel, at: 0s, template: meeting-reminder, channels: [email] }\n",
        );
        // Each reading of the clock takes ten minutes: planning the first workflow
        // ends after 08:05. Planned from a present read then, the 08:05 slot
        // would have no timer and leave no trace.
        let clock = Arc::new(Hurried {
            now: Mutex::new(at("2026-12-07T08:00:00Z")),
            step: TimeDelta::minutes(10),
        });
        let runtime = runtime_on(&world, clock, RuntimeConfig::default()).await;
        runtime.tick().await.unwrap();
        let log = runtime
            .store()
            .ledger(Some("point-du-matin"), 100)
            .await
            .unwrap();
        let fates: Vec<&str> = log.iter().map(|e| e.event.as_str()).collect();
        assert!(
            fates
                .iter()
                .any(|e| e.starts_with("fired") || *e == "missed"),
            "the 08:05 slot has its fate in the ledger: {fates:?}"
        );
    }
}

#[tokio::test]
async fn a_recurrence_too_frequent_for_one_pass_is_planned_over_several_without_a_gap() {
    for world in worlds("planning_crowded", "once").await {
        write(
            &world,
            "souvent.yaml",
            "kind: meeting\nid: souvent\ntitle: Point\nplace: mopti/koro\nvenue: Mairie\n\
             recurrence: \"*/2 * * * *\"\nrecipients: [{ role: mayor }]\n\
             steps:\n  - { id: rappel, at: -1h, template: meeting-reminder, channels: [email] }\n",
        );
        let start = at("2026-12-07T08:00:30Z");
        let clock = Arc::new(palabre_core::clock::VirtualClock::new(start));
        let config = RuntimeConfig {
            horizon: TimeDelta::days(40),
            ..RuntimeConfig::default()
        };
        let runtime = runtime_on(&world, clock, config).await;
        // 40 days of reminders every two minutes: 28,800, more than the 20,000
        // occurrences one pass holds.
        let first = runtime.tick().await.unwrap();
        assert_eq!(first.planning_behind, 1, "{first:?}");
        assert!(first.planned < 28_800, "{first:?}");
        let second = runtime.tick().await.unwrap();
        assert_eq!(second.planning_behind, 0, "{second:?}");
        let mut dues = timers_of(&runtime, "souvent").await;
        dues.sort();
        // From the first reminder due after the start, every two minutes.
        assert_eq!(dues.first(), Some(&at("2026-12-07T08:02:00Z")));
        assert_eq!(dues.len(), 28_800, "every two minutes for 40 days");
        assert!(
            dues.windows(2)
                .all(|w| w[1] - w[0] == TimeDelta::minutes(2)),
            "no gap between the passes"
        );
    }
}

#[tokio::test]
async fn reminders_rules_out_of_time_leave_the_rest_to_the_next_ticks_while_timers_fire() {
    for world in worlds("planning_rule_time", "once").await {
        std::fs::create_dir_all(world.workflows.join("rules")).unwrap();
        write(
            &world,
            "rules/national.rhai",
            "fn meeting_reminders(input) { [#{ at: \"-5h\", channels: [\"sms\"] }] }\n",
        );
        // Monday 7 December 06:00: the weekly meeting's 07:00 reminder (-2h) is due
        // in an hour; with no rule time, each pass asks the rule about one
        // occurrence only.
        let clock = Arc::new(palabre_core::clock::VirtualClock::new(at(
            "2026-12-07T07:00:00Z",
        )));
        let config = RuntimeConfig {
            horizon: TimeDelta::days(14),
            rule_time: std::time::Duration::ZERO,
            ..RuntimeConfig::default()
        };
        let runtime = runtime_on(&world, clock, config).await;
        let first = runtime.tick().await.unwrap();
        assert_eq!(first.planning_behind, 1, "{first:?}");
        assert_eq!(
            first.fired, 1,
            "the 07:00 reminder fired meanwhile: {first:?}"
        );
        // The next ticks go on until every occurrence within reach was asked:
        // the seven Mondays from 7 December to 18 January (14 days, and the 30
        // days a rule's reminder may come ahead).
        let mut ticks = 1;
        while runtime.tick().await.unwrap().planning_behind > 0 {
            ticks += 1;
            assert!(ticks < 20, "planning moves on at each tick");
        }
        let dues = timers_of(&runtime, "weekly-koro").await;
        for monday in ["2026-12-14", "2026-12-21"] {
            let rule_reminder = at(&format!("{monday}T04:00:00Z"));
            assert!(dues.contains(&rule_reminder), "{monday}: {dues:?}");
        }
    }
}
