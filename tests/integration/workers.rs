//! Several workers on one PostgreSQL hear each other: work one of them adds
//! (a timer planned, a message queued) wakes the others at once, through
//! `LISTEN/NOTIFY`, instead of waiting for their next look at the database.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use palabre_core::channel::Channel;
use palabre_core::clock::{Clock, VirtualClock};
use palabre_engine::runtime::{Runtime, RuntimeConfig};
use palabre_store::{PlannedTimer, Store};

use crate::runtime::{Recorder, World, at};
use crate::util::{fresh_postgres_schema, postgres_url};

#[tokio::test]
async fn a_timer_planned_by_one_worker_wakes_another_at_once() {
    let Some(base) = postgres_url() else { return };
    let world = World::new("all", Some(fresh_postgres_schema(&base, "wake").await)).await;
    let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
    let (sms, _email, connectors) = Recorder::pair();
    // Worker b looks at the database on its own once an hour: only news from
    // another worker can wake it within the test's bound.
    let b = Runtime::new(
        Store::connect(&world.url, &crate::util::test_key())
            .await
            .unwrap(),
        world.definitions().0,
        connectors,
        clock.clone(),
        RuntimeConfig {
            owner: "b".into(),
            horizon: TimeDelta::days(14),
            max_sleep: TimeDelta::hours(1),
            ..RuntimeConfig::default()
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let other_worker = async {
        let store = Store::connect(&world.url, &crate::util::test_key())
            .await
            .unwrap();
        // b's first tick plans the next weeks; then it falls asleep until the
        // first invitation, tomorrow.
        while store.schedules().await.unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(sms.keys().is_empty(), "nothing was due yet");
        // Another worker plans a reminder due now (as a coordinator's change
        // would), for a meeting beyond b's horizon.
        let occurrence = at("2027-03-01T09:00:00Z");
        let reminder = PlannedTimer {
            workflow: "weekly-koro".into(),
            occurrence,
            step: "reminder".into(),
            due: clock.now(),
        };
        assert_eq!(
            store.plan_timers(&[reminder], clock.now()).await.unwrap(),
            1
        );
        // Its two SMS recipients (the third contact is reached by email).
        let delivered = async {
            while sms.keys().len() < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let woken = tokio::time::timeout(Duration::from_secs(20), delivered).await;
        stop.send(()).unwrap();
        woken
    };
    let (ran, woken) = tokio::join!(
        b.run(async {
            stopped.await.ok();
        }),
        other_worker
    );
    ran.unwrap();
    assert!(
        woken.is_ok(),
        "worker b slept through another worker's new timer"
    );
    let keys = sms.keys();
    assert!(
        keys.iter().all(|k| k.contains("|reminder|")),
        "only the reminder was due: {keys:?}"
    );
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter()
            .all(|k| k.ends_with(&format!("|{}", Channel::Sms)))
    );
}
