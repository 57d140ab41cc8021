//! The durable runtime on a virtual clock, on SQLite and PostgreSQL: timers fire
//! at their instant, messages are delivered once, failures are retried with
//! backoff then dead-lettered, misfire policies apply after downtime, edits
//! re-plan without re-sending, and a restarted worker resumes where it stopped.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use palabre_core::channel::Channel;
use palabre_core::clock::{Clock, VirtualClock};
use palabre_core::connector::{Connector, Connectors, Delivery, DeliveryError, OutgoingMessage};
use palabre_engine::runtime::{Runtime, RuntimeConfig};
use palabre_plan::definitions::Definitions;
use palabre_store::Store;

use crate::util::{copy_dir, fresh_postgres_schema, postgres_url, repo};

pub(crate) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// A connector that records what it is given and fails as told: the first
/// `failures` attempts of every message fail with `error`.
pub(crate) struct Recorder {
    channel: Channel,
    pub(crate) delivered: Mutex<Vec<OutgoingMessage>>,
    attempts: Mutex<BTreeMap<String, u32>>,
    failures: u32,
    error: DeliveryError,
}

impl Recorder {
    pub(crate) fn new(channel: Channel, failures: u32, error: DeliveryError) -> Arc<Recorder> {
        Arc::new(Recorder {
            channel,
            delivered: Mutex::new(Vec::new()),
            attempts: Mutex::new(BTreeMap::new()),
            failures,
            error,
        })
    }

    fn healthy(channel: Channel) -> Arc<Recorder> {
        Recorder::new(channel, 0, DeliveryError::Transient(String::new()))
    }

    /// A healthy SMS and email recorder, and the connectors that deliver through them.
    pub(crate) fn pair() -> (Arc<Recorder>, Arc<Recorder>, Connectors) {
        let sms = Recorder::healthy(Channel::Sms);
        let email = Recorder::healthy(Channel::Email);
        let connectors = Connectors::default().with(sms.clone()).with(email.clone());
        (sms, email, connectors)
    }

    pub(crate) fn keys(&self) -> Vec<String> {
        self.delivered
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.key.clone())
            .collect()
    }
}

impl Connector for Recorder {
    fn channel(&self) -> Channel {
        self.channel
    }

    fn name(&self) -> &str {
        "recorder"
    }

    fn deliver<'a>(&'a self, message: &'a OutgoingMessage) -> Delivery<'a> {
        Box::pin(async move {
            let mut attempts = self.attempts.lock().unwrap();
            let count = attempts.entry(message.key.clone()).or_default();
            *count += 1;
            if *count <= self.failures {
                return Err(self.error.clone());
            }
            self.delivered.lock().unwrap().push(message.clone());
            Ok(format!("rec-{}", message.key))
        })
    }
}

/// A small world: one weekly meeting at 09:00 on Mondays in Koro, with three
/// steps, and a directory of three people (two by SMS, one by email).
pub(crate) struct World {
    _dir: tempfile::TempDir,
    pub(crate) workflows: std::path::PathBuf,
    pub(crate) url: String,
}

const MEETING: &str = "\
kind: meeting
id: weekly-koro
title: Réunion hebdomadaire
place: mopti/koro
recurrence: \"0 9 * * MON\"
venue: Mairie de Koro
misfire: MISFIRE
recipients: [{ role: leader }, { role: mayor }]
steps:
  - { id: invitation, at: -3d, template: meeting-invitation, channels: [sms, email], calendar: true }
  - { id: reminder, at: -2h, template: meeting-reminder, channels: [sms, email] }
  - { id: minutes, at: +1d, template: minutes-due, channels: [email], recipients: [{ role: mayor }] }
";

const DIRECTORY: &str = "id,name,roles,place,phone,email,language,channels
c-1,Awa Diallo,leader,mopti/koro/koro,76 11 22 33,,bam,sms
c-2,Hama Bocoum,leader,mopti/koro/bondo,66 44 55 66,,ffm,sms
c-3,Oumar Tall,mayor,mopti/koro/koro,,oumar@example.org,fra,email
";

impl World {
    pub(crate) async fn new(misfire: &str, url: Option<String>) -> World {
        let dir = tempfile::tempdir().unwrap();
        let workflows = dir.path().join("workflows");
        std::fs::create_dir_all(workflows.join("templates")).unwrap();
        for file in ["places.yaml", "roles.yaml", "replies.yaml"] {
            std::fs::copy(repo().join("workflows").join(file), workflows.join(file)).unwrap();
        }
        copy_dir(
            &repo().join("workflows/templates"),
            &workflows.join("templates"),
        );
        std::fs::write(
            workflows.join("weekly.yaml"),
            MEETING.replace("MISFIRE", misfire),
        )
        .unwrap();
        let url =
            url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("palabre.db").display()));
        let world = World {
            _dir: dir,
            workflows,
            url,
        };
        let (definitions, _) = world.definitions();
        let rules = palabre_lang::contacts::DirectoryRules {
            places: &definitions.places,
            roles: &definitions.roles,
        };
        let mut diagnostics = Default::default();
        let contacts = palabre_lang::contacts::parse_csv(
            Path::new("d.csv"),
            DIRECTORY.as_bytes(),
            &rules,
            &mut diagnostics,
        );
        assert_eq!(contacts.len(), 3);
        world.add_contacts(&contacts).await;
        world
    }

    /// Imports more contacts, written as directory CSV rows (with the header).
    pub(crate) async fn add_csv(&self, csv: &str) {
        let (definitions, _) = self.definitions();
        let rules = palabre_lang::contacts::DirectoryRules {
            places: &definitions.places,
            roles: &definitions.roles,
        };
        let contacts = palabre_lang::contacts::parse_csv(
            Path::new("more.csv"),
            csv.as_bytes(),
            &rules,
            &mut Default::default(),
        );
        assert_eq!(contacts.len(), csv.lines().count() - 1, "every row imports");
        self.add_contacts(&contacts).await;
    }

    pub(crate) async fn add_contacts(&self, contacts: &[palabre_lang::contacts::Contact]) {
        Store::connect(&self.url, &crate::util::test_key())
            .await
            .unwrap()
            .upsert_contacts(contacts)
            .await
            .unwrap();
    }

    pub(crate) fn definitions(&self) -> (Definitions, palabre_core::diagnostic::Diagnostics) {
        let (definitions, diagnostics) =
            Definitions::load(&self.workflows, None, palabre_sms::RULE_FUNCTIONS);
        assert!(!diagnostics.has_errors(), "{:?}", diagnostics.sorted());
        (definitions, diagnostics)
    }

    pub(crate) async fn runtime(
        &self,
        clock: &Arc<VirtualClock>,
        connectors: Connectors,
        owner: &str,
    ) -> Runtime {
        self.runtime_in_batches(clock, connectors, owner, RuntimeConfig::default().batch)
            .await
    }

    /// [`World::runtime`], claiming `batch` timers or messages at a time.
    pub(crate) async fn runtime_in_batches(
        &self,
        clock: &Arc<VirtualClock>,
        connectors: Connectors,
        owner: &str,
        batch: i64,
    ) -> Runtime {
        let store = Store::connect(&self.url, &crate::util::test_key())
            .await
            .unwrap();
        let config = RuntimeConfig {
            owner: owner.to_owned(),
            horizon: TimeDelta::days(14),
            batch,
            ..RuntimeConfig::default()
        };
        Runtime::new(
            store,
            self.definitions().0,
            connectors,
            clock.clone(),
            config,
        )
    }
}

/// Ticks `runtime` at every instant something is due until `end`, moving `clock`
/// there each time, as the serve loop would wake.
pub(crate) async fn run_until(runtime: &Runtime, clock: &VirtualClock, end: DateTime<Utc>) {
    runtime.tick().await.unwrap();
    while let Some(next) = runtime.store().next_wakeup().await.unwrap() {
        if next > end {
            break;
        }
        clock.advance_to(next);
        runtime.tick().await.unwrap();
    }
    clock.advance_to(end);
    runtime.tick().await.unwrap();
}

/// Sends the invitations of Monday 7 December (due Friday 4 at 09:00): its
/// participants are then told of it, and hear of its changes.
pub(crate) async fn invite_to_the_seventh(runtime: &Runtime, clock: &VirtualClock) {
    clock.advance_to(at("2026-12-04T09:00:00Z"));
    runtime.tick().await.unwrap();
}

pub(crate) async fn worlds(name: &str, misfire: &str) -> Vec<World> {
    let mut worlds = vec![World::new(misfire, None).await];
    if let Some(base) = postgres_url() {
        worlds.push(World::new(misfire, Some(fresh_postgres_schema(&base, name).await)).await);
    }
    worlds
}

pub(crate) async fn events(runtime: &Runtime) -> Vec<String> {
    runtime
        .store()
        .ledger(Some("weekly-koro"), 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e.event,
                e.step.unwrap_or_default(),
                e.contact_id.unwrap_or_default()
            )
            .trim()
            .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn each_step_fires_at_its_instant_and_each_message_is_delivered_once() {
    for world in worlds("fires", "once").await {
        // Thursday 2026-12-03 12:00; the next meeting is Monday 2026-12-07 09:00.
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (sms, email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;

        let report = runtime.tick().await.unwrap();
        assert!(report.planned >= 6, "{report:?}");
        assert_eq!(report.fired, 0);
        assert_eq!(
            runtime.store().next_wakeup().await.unwrap(),
            Some(at("2026-12-04T09:00:00Z"))
        );

        clock.advance_to(at("2026-12-04T08:59:59Z"));
        assert_eq!(runtime.tick().await.unwrap().fired, 0, "not a second early");
        clock.advance_to(at("2026-12-04T09:00:00Z"));
        let report = runtime.tick().await.unwrap();
        assert_eq!(
            (report.fired, report.queued, report.sent),
            (1, 3, 3),
            "{report:?}"
        );
        assert_eq!(sms.keys().len(), 2);
        let invitation = email.delivered.lock().unwrap()[0].clone();
        assert_eq!(invitation.to_address, "oumar@example.org");
        assert!(
            invitation
                .subject
                .as_deref()
                .unwrap()
                .starts_with("Invitation : Réunion hebdomadaire le lundi 7 décembre 2026")
        );
        assert!(
            invitation
                .calendar
                .as_deref()
                .unwrap()
                .contains("UID:weekly-koro-20261207T090000Z@palabre")
        );
        assert!(
            sms.delivered
                .lock()
                .unwrap()
                .iter()
                .all(|m| m.calendar.is_none()),
            "no .ics by SMS"
        );

        // The rest of the week, tick by tick: reminders at 07:00 on Monday, minutes on Tuesday.
        for hour in 0..120 {
            clock.advance(TimeDelta::hours(1));
            runtime.tick().await.unwrap();
            let _ = hour;
        }
        let sms_keys = sms.keys();
        let email_keys = email.keys();
        assert_eq!(sms_keys.len(), 4, "{sms_keys:?}");
        assert_eq!(email_keys.len(), 3, "{email_keys:?}");
        let mut all: Vec<String> = sms_keys.into_iter().chain(email_keys).collect();
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count, "a message was delivered twice");
        assert!(
            all.contains(&"weekly-koro|1796634000|minutes|c-3|email".to_owned()),
            "{all:?}"
        );

        let status = runtime.store().status(clock.now()).await.unwrap();
        assert_eq!(
            (
                status.fired,
                status.sent,
                status.queued,
                status.dead_lettered
            ),
            (3, 7, 0, 0)
        );
        let log = events(&runtime).await;
        assert_eq!(
            log.iter().filter(|e| e.starts_with("fired ")).count(),
            3,
            "{log:?}"
        );
        assert_eq!(
            log.iter().filter(|e| e.starts_with("sent ")).count(),
            7,
            "{log:?}"
        );
    }
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff_then_delivered() {
    for world in worlds("retry", "once").await {
        let clock = Arc::new(VirtualClock::new(at("2026-12-04T09:00:00Z")));
        let email = Recorder::new(
            Channel::Email,
            3,
            DeliveryError::Transient("421 try later".to_owned()),
        );
        let sms = Recorder::healthy(Channel::Sms);
        let runtime = world
            .runtime(
                &clock,
                Connectors::default().with(sms.clone()).with(email.clone()),
                "a",
            )
            .await;
        // First tick plans from now: the invitation due exactly now fires.
        let report = runtime.tick().await.unwrap();
        assert_eq!(
            (report.fired, report.sent, report.retried),
            (1, 2, 1),
            "{report:?}"
        );
        let status = runtime.store().status(clock.now()).await.unwrap();
        assert_eq!(status.retrying, 1);
        // Backoff: ~30 s, ~60 s, ~120 s (±20 %). Nothing happens before the next attempt is due.
        let mut waits = Vec::new();
        for _ in 0..3 {
            let next = runtime.store().next_wakeup().await.unwrap().unwrap();
            waits.push((next - clock.now()).num_seconds());
            clock.advance_to(next - TimeDelta::seconds(1));
            assert_eq!(
                runtime.tick().await.unwrap().sent + runtime.tick().await.unwrap().retried,
                0
            );
            clock.advance_to(next);
            runtime.tick().await.unwrap();
        }
        assert!(
            (24..=36).contains(&waits[0])
                && (48..=72).contains(&waits[1])
                && (96..=144).contains(&waits[2]),
            "{waits:?}"
        );
        assert_eq!(email.keys().len(), 1, "delivered on the fourth attempt");
        let log = events(&runtime).await;
        assert_eq!(
            log.iter()
                .filter(|e| e.starts_with("retry invitation c-3"))
                .count(),
            3,
            "{log:?}"
        );
        assert!(log.contains(&"sent invitation c-3".to_owned()), "{log:?}");
    }
}

#[tokio::test]
async fn permanent_failures_and_exhausted_retries_become_dead_letters() {
    for world in worlds("dead", "once").await {
        let clock = Arc::new(VirtualClock::new(at("2026-12-04T09:00:00Z")));
        let email = Recorder::new(
            Channel::Email,
            99,
            DeliveryError::Permanent("550 no such mailbox".to_owned()),
        );
        let sms = Recorder::new(
            Channel::Sms,
            99,
            DeliveryError::Transient("gateway timeout".to_owned()),
        );
        let runtime = world
            .runtime(&clock, Connectors::default().with(sms).with(email), "a")
            .await;
        let report = runtime.tick().await.unwrap();
        assert_eq!((report.dead, report.retried), (1, 2), "{report:?}");
        for _ in 0..20 {
            if let Some(next) = runtime
                .store()
                .next_wakeup()
                .await
                .unwrap()
                .filter(|t| *t < at("2026-12-06T00:00:00Z"))
            {
                clock.advance_to(next);
            }
            runtime.tick().await.unwrap();
        }
        let status = runtime.store().status(clock.now()).await.unwrap();
        assert_eq!(
            (status.sent, status.retrying, status.dead_lettered),
            (0, 0, 3),
            "{status:?}"
        );
        let ledger = runtime
            .store()
            .ledger(Some("weekly-koro"), 1000)
            .await
            .unwrap();
        let dead: Vec<&str> = ledger
            .iter()
            .filter(|e| e.event == "dead-letter")
            .map(|e| e.detail.as_str())
            .collect();
        assert!(
            dead.iter().any(|d| d.contains("550 no such mailbox")),
            "{dead:?}"
        );
        assert_eq!(
            dead.iter()
                .filter(|d| d.contains("gave up after 8 attempts"))
                .count(),
            2,
            "{dead:?}"
        );
    }
}

#[tokio::test]
async fn misfire_policies_after_downtime() {
    // The engine runs on Thursday 3 December, then is down until Wednesday 16 December 10:00:
    // the meetings of 7 and 14 December passed, with all their steps.
    for (misfire, expected) in [
        // Both invitations and both reminders belong to meetings that already took place:
        // never sent late. The minutes of 7 and 14 December (due 8 and 15 December) are:
        // none under skip, the latest under once, both under all.
        ("skip", vec![]),
        ("once", vec!["fired-late minutes"]),
        ("all", vec!["fired-late minutes", "fired-late minutes"]),
    ] {
        for world in worlds(&format!("misfire_{misfire}"), misfire).await {
            let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
            let connectors = Connectors::default()
                .with(Recorder::healthy(Channel::Sms))
                .with(Recorder::healthy(Channel::Email));
            let runtime = world.runtime(&clock, connectors, "a").await;
            runtime.tick().await.unwrap();
            clock.advance_to(at("2026-12-16T10:00:00Z"));
            runtime.tick().await.unwrap();
            let log = events(&runtime).await;
            let fired: Vec<String> = log
                .iter()
                .filter(|e| e.starts_with("fired"))
                .map(|e| e.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
                .collect();
            assert_eq!(fired, expected, "misfire: {misfire}\n{log:#?}");
            // Every slot that passed is in the ledger with its fate; reminders of meetings that
            // already took place are never sent late, whatever the policy.
            let missed = log.iter().filter(|e| e.starts_with("missed")).count();
            assert_eq!(fired.len() + missed, 6, "misfire: {misfire}\n{log:#?}");
            assert_eq!(
                log.iter()
                    .filter(|e| e.starts_with("missed reminder"))
                    .count(),
                2,
                "{log:#?}"
            );
        }
    }
}

#[tokio::test]
async fn editing_a_workflow_replans_the_future_and_never_resends_the_past() {
    for world in worlds("edit", "once").await {
        let clock = Arc::new(VirtualClock::new(at("2026-12-04T09:00:00Z")));
        let (sms, email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        assert_eq!(runtime.tick().await.unwrap().fired, 1, "the invitation");
        // The coordinator moves the reminder from 2 hours to 1 day before.
        let file = world.workflows.join("weekly.yaml");
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("at: -2h", "at: -1d");
        std::fs::write(&file, text).unwrap();
        runtime
            .commands()
            .replace_definitions(world.definitions().0);
        runtime.tick().await.unwrap();
        assert_eq!(
            runtime.store().next_wakeup().await.unwrap(),
            Some(at("2026-12-06T09:00:00Z"))
        );
        clock.advance_to(at("2026-12-06T09:00:00Z"));
        let report = runtime.tick().await.unwrap();
        assert_eq!(
            (report.fired, report.sent),
            (1, 3),
            "the reminder, at its new time"
        );
        let log = events(&runtime).await;
        assert!(log.iter().any(|e| e.starts_with("replanned")), "{log:?}");
        assert_eq!(
            log.iter()
                .filter(|e| e.starts_with("sent invitation"))
                .count(),
            3,
            "invitations not re-sent: {log:?}"
        );
        assert_eq!(sms.keys().len() + email.keys().len(), 6);
    }
}

#[tokio::test]
async fn a_restarted_worker_resumes_and_two_workers_never_share_a_message() {
    for world in worlds("restart", "once").await {
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (sms, email, connectors) = Recorder::pair();
        let first = world.runtime(&clock, connectors.clone(), "first").await;
        first.tick().await.unwrap();
        drop(first);
        // A new process: same database, another worker name. Two of them now share the work.
        let a = world.runtime(&clock, connectors.clone(), "a").await;
        let b = world.runtime(&clock, connectors, "b").await;
        for _ in 0..(24 * 6) {
            clock.advance(TimeDelta::hours(1));
            let (ra, rb) = tokio::join!(a.tick(), b.tick());
            ra.unwrap();
            rb.unwrap();
        }
        let mut keys: Vec<String> = sms.keys().into_iter().chain(email.keys()).collect();
        assert_eq!(keys.len(), 7);
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 7, "a message was delivered twice");
    }
}

#[tokio::test]
async fn moving_an_occurrence_moves_its_reminders_and_tells_the_participants() {
    for world in worlds("move", "once").await {
        let clock = Arc::new(VirtualClock::new(at("2026-12-04T09:00:00Z")));
        let (sms, email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        assert_eq!(
            runtime.tick().await.unwrap().sent,
            3,
            "the invitation for Monday 7 December"
        );

        clock.advance_to(at("2026-12-05T10:00:00Z"));
        let monday = at("2026-12-07T09:00:00Z");
        let report = runtime
            .commands()
            .change_occurrence(
                "weekly-koro",
                monday,
                Some(at("2026-12-08T10:00:00Z")),
                "jour de marché",
            )
            .await
            .unwrap();
        assert_eq!(
            (report.sequence, report.notified, report.unreachable),
            (1, 3, 0)
        );
        assert_eq!(runtime.tick().await.unwrap().sent, 3, "the notices");
        let notice = email.delivered.lock().unwrap().last().unwrap().clone();
        assert_eq!(
            notice.subject.as_deref(),
            Some("Changement de date : Réunion hebdomadaire le mardi 8 décembre 2026 à 10 h")
        );
        assert!(
            notice
                .body
                .contains("prévue le lundi 7 décembre 2026 à 9 h"),
            "{}",
            notice.body
        );
        assert!(
            notice.body.contains("Motif : jour de marché"),
            "{}",
            notice.body
        );
        let ics = notice.calendar.unwrap();
        assert!(
            ics.contains("UID:weekly-koro-20261207T090000Z@palabre"),
            "same event: {ics}"
        );
        assert!(
            ics.contains("SEQUENCE:1")
                && ics.contains("DTSTART:20261208T100000Z")
                && ics.contains("METHOD:REQUEST")
        );
        assert!(
            sms.delivered
                .lock()
                .unwrap()
                .iter()
                .any(|m| m.body.contains("déplacé au mardi 8 décembre à 10 h"))
        );

        // The two-hour reminder follows the meeting: not Monday 07:00, Tuesday 08:00.
        clock.advance_to(at("2026-12-07T07:00:00Z"));
        assert_eq!(runtime.tick().await.unwrap().fired, 0);
        clock.advance_to(at("2026-12-08T08:00:00Z"));
        let report = runtime.tick().await.unwrap();
        assert_eq!((report.fired, report.sent), (1, 3));
        assert!(
            sms.delivered
                .lock()
                .unwrap()
                .last()
                .unwrap()
                .body
                .contains("le mardi 8 décembre à 10 h")
        );
        // Minutes a day after the new start; the invitation was never sent again.
        clock.advance_to(at("2026-12-09T10:00:00Z"));
        assert_eq!(runtime.tick().await.unwrap().sent, 1);
        let log = events(&runtime).await;
        assert_eq!(
            log.iter()
                .filter(|e| e.starts_with("sent invitation"))
                .count(),
            3,
            "{log:#?}"
        );
        assert!(
            log.iter().any(|e| e.starts_with("moved moved-1")),
            "{log:#?}"
        );

        // Moved again: the next sequence. Refused: what is not an occurrence, or already past.
        let report = runtime
            .commands()
            .change_occurrence(
                "weekly-koro",
                at("2026-12-14T09:00:00Z"),
                Some(at("2026-12-15T09:00:00Z")),
                "x",
            )
            .await
            .unwrap();
        assert_eq!(
            report.sequence, 1,
            "another occurrence starts its own sequence"
        );
        let again = runtime
            .commands()
            .change_occurrence(
                "weekly-koro",
                at("2026-12-14T09:00:00Z"),
                Some(at("2026-12-16T09:00:00Z")),
                "y",
            )
            .await
            .unwrap();
        assert_eq!(again.sequence, 2);
        for (occurrence, to, needle) in [
            (
                "2026-12-14T10:00:00Z",
                Some("2026-12-16T09:00:00Z"),
                "is not an occurrence",
            ),
            (
                "2026-12-07T09:00:00Z",
                Some("2026-12-20T09:00:00Z"),
                "already started",
            ),
            (
                "2026-12-21T09:00:00Z",
                Some("2026-12-01T09:00:00Z"),
                "in the past",
            ),
        ] {
            let error = runtime
                .commands()
                .change_occurrence("weekly-koro", at(occurrence), to.map(at), "z")
                .await
                .unwrap_err()
                .to_string();
            assert!(error.contains(needle), "{error}");
        }
    }
}

#[tokio::test]
async fn cancelling_an_occurrence_drops_its_steps_and_tells_the_participants() {
    for world in worlds("cancel", "once").await {
        let clock = Arc::new(VirtualClock::new(at("2026-12-10T12:00:00Z")));
        let (_sms, email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        runtime.tick().await.unwrap();
        // The invitations of the 14th go out on the 11th: the three are told of it.
        clock.advance_to(at("2026-12-11T09:00:00Z"));
        assert_eq!(runtime.tick().await.unwrap().sent, 3);
        let report = runtime
            .commands()
            .change_occurrence(
                "weekly-koro",
                at("2026-12-14T09:00:00Z"),
                None,
                "alerte de sécurité",
            )
            .await
            .unwrap();
        assert_eq!((report.sequence, report.notified), (1, 3));
        assert_eq!(runtime.tick().await.unwrap().sent, 3);
        let notice = email.delivered.lock().unwrap().last().unwrap().clone();
        assert_eq!(
            notice.subject.as_deref(),
            Some("Annulation : Réunion hebdomadaire du lundi 14 décembre 2026")
        );
        let ics = notice.calendar.unwrap();
        assert!(
            ics.contains("METHOD:CANCEL")
                && ics.contains("STATUS:CANCELLED")
                && ics.contains("SEQUENCE:1"),
            "{ics}"
        );
        // Nothing more of the 14th is sent: not the reminder, not the minutes.
        for day in ["2026-12-14T07:00:00Z", "2026-12-15T09:00:00Z"] {
            clock.advance_to(at(day));
            assert_eq!(runtime.tick().await.unwrap().sent, 0, "{day}");
        }
        // The next week goes on as planned.
        clock.advance_to(at("2026-12-18T09:00:00Z"));
        assert_eq!(
            runtime.tick().await.unwrap().sent,
            3,
            "the invitation for the 21st"
        );
        let error = runtime
            .commands()
            .change_occurrence("weekly-koro", at("2026-12-14T09:00:00Z"), None, "again")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("already cancelled") || error.contains("already started"),
            "{error}"
        );
        let log = events(&runtime).await;
        assert!(
            log.iter().any(|e| e.starts_with("cancelled cancelled-1")),
            "{log:#?}"
        );
    }
}

/// A connector that counts how many deliveries it has at once: each one yields
/// to the scheduler before it completes, so deliveries the runtime runs side by
/// side overlap.
struct Gauge {
    channel: Channel,
    limit: usize,
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    delivered: std::sync::atomic::AtomicUsize,
}

impl Connector for Gauge {
    fn channel(&self) -> Channel {
        self.channel
    }

    fn name(&self) -> &str {
        "gauge"
    }

    fn deliver<'a>(&'a self, message: &'a OutgoingMessage) -> Delivery<'a> {
        use std::sync::atomic::Ordering::SeqCst;
        Box::pin(async move {
            let now = self.now.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(now, SeqCst);
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            self.now.fetch_sub(1, SeqCst);
            self.delivered.fetch_add(1, SeqCst);
            Ok(format!("gauge-{}", message.key))
        })
    }

    fn max_in_flight(&self) -> usize {
        self.limit
    }
}

/// Thirty more leaders, half by SMS first and half by email first.
async fn world_with_thirty_more_leaders() -> World {
    let world = World::new("once", None).await;
    let more: String = (10..40)
        .map(|n| {
            let channels = if n < 25 { "sms;email" } else { "email;sms" };
            format!("c-{n},Leader {n},leader,mopti/koro/koro,76 00 01 {n},l{n}@example.org,fra,{channels}\n")
        })
        .collect();
    world
        .add_csv(&format!(
            "id,name,roles,place,phone,email,language,channels\n{more}"
        ))
        .await;
    world
}

fn gauge(channel: Channel, limit: usize) -> Arc<Gauge> {
    Arc::new(Gauge {
        channel,
        limit,
        now: Default::default(),
        most: Default::default(),
        delivered: Default::default(),
    })
}

/// Each connector's `max_in_flight` bounds how many of its messages one worker
/// sends at once; the default is one at a time.
#[tokio::test]
async fn deliveries_run_side_by_side_up_to_each_connectors_limit() {
    use std::sync::atomic::Ordering::SeqCst;
    let world = world_with_thirty_more_leaders().await;
    let (sms, email) = (gauge(Channel::Sms, 4), gauge(Channel::Email, 1));
    let connectors = Connectors::default().with(sms.clone()).with(email.clone());
    let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
    let runtime = world.runtime(&clock, connectors, "a").await;
    run_until(&runtime, &clock, at("2026-12-04T10:00:00Z")).await;
    assert_eq!(
        sms.delivered.load(SeqCst),
        17,
        "15 new leaders, c-1 and c-2"
    );
    assert_eq!(sms.most.load(SeqCst), 4, "four SMS at once");
    assert_eq!(
        email.delivered.load(SeqCst),
        16,
        "15 new leaders and the mayor"
    );
    assert_eq!(email.most.load(SeqCst), 1, "one email at a time");
}

/// A batch that runs out of time (`batch_time`) gives its unstarted messages
/// back instead of holding them to the end of their lease: with no time at all,
/// each claim starts one message per channel, and one tick still delivers
/// everything, each message once.
#[tokio::test]
async fn a_batch_out_of_time_gives_its_messages_back() {
    use std::sync::atomic::Ordering::SeqCst;
    let world = world_with_thirty_more_leaders().await;
    let (sms, email) = (gauge(Channel::Sms, 1), gauge(Channel::Email, 1));
    let connectors = Connectors::default().with(sms.clone()).with(email.clone());
    let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
    let config = RuntimeConfig {
        owner: "a".to_owned(),
        horizon: TimeDelta::days(14),
        lease: TimeDelta::hours(1),
        batch_time: std::time::Duration::ZERO,
        ..RuntimeConfig::default()
    };
    let store = Store::connect(&world.url, &crate::util::test_key())
        .await
        .unwrap();
    let runtime = Runtime::new(
        store,
        world.definitions().0,
        connectors,
        clock.clone(),
        config,
    );
    runtime.tick().await.unwrap();
    clock.advance_to(at("2026-12-04T10:00:00Z"));
    let report = runtime.tick().await.unwrap();
    assert_eq!(report.sent, 33, "{report:?}");
    assert_eq!(sms.delivered.load(SeqCst), 17);
    assert_eq!(email.delivered.load(SeqCst), 16);
}

/// A request repeated (a client that retried after a timeout) tells nobody
/// twice: a move to the start the occurrence already has changes nothing. And
/// what people receive has bounds: no empty reason, none longer than an SMS can
/// carry, no move years ahead. Nothing refused is written.
#[tokio::test]
async fn a_repeated_move_is_a_no_op_and_reasons_and_moves_have_bounds() {
    use palabre_engine::commands::CommandError;
    for world in worlds("move_twice", "once").await {
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (sms, email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        runtime.tick().await.unwrap();
        // The invitations of the 7th go out on the 4th: the three are told of it.
        invite_to_the_seventh(&runtime, &clock).await;
        let invited = sms.keys().len() + email.keys().len();
        let commands = runtime.commands();
        let monday = at("2026-12-07T09:00:00Z");
        let tuesday = at("2026-12-08T10:00:00Z");
        let first = commands
            .change_occurrence("weekly-koro", monday, Some(tuesday), "jour de marché")
            .await
            .unwrap();
        assert_eq!(
            (first.sequence, first.notified, first.changed),
            (1, 3, true)
        );
        let again = commands
            .change_occurrence("weekly-koro", monday, Some(tuesday), "jour de marché")
            .await
            .unwrap();
        assert_eq!(
            (again.sequence, again.notified, again.changed),
            (1, 0, false),
            "the same move again is no change"
        );
        runtime.tick().await.unwrap();
        let told = sms.keys().len() + email.keys().len() - invited;
        assert_eq!(told, 3, "each participant told of the move once");

        for (reason, to, wanted) in [
            (
                "   ",
                Some(at("2026-12-09T10:00:00Z")),
                "a reason is needed",
            ),
            (
                &"x".repeat(301)[..],
                Some(at("2026-12-09T10:00:00Z")),
                "at most 300",
            ),
            (
                "crue",
                Some(at("9999-12-31T09:00:00Z")),
                "more than 366 days ahead",
            ),
        ] {
            match commands
                .change_occurrence("weekly-koro", monday, to, reason)
                .await
            {
                Err(CommandError::Invalid(message)) => {
                    assert!(message.contains(wanted), "{message}");
                }
                other => panic!("refused as invalid ({wanted}), not {other:?}"),
            }
        }
        let moves = runtime
            .store()
            .ledger(Some("weekly-koro"), 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event == "moved")
            .count();
        assert_eq!(moves, 1, "refused and repeated requests write nothing");
    }
}

/// A change is news only to those who heard of the occurrence: before its first
/// message it is silent (in the ledger), after it the notice goes to those
/// already told, not to someone who joined the directory since.
#[tokio::test]
async fn only_people_told_of_an_occurrence_hear_of_its_change() {
    for world in worlds("told_only", "once").await {
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (sms, email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        runtime.tick().await.unwrap();
        let commands = runtime.commands();
        // The 14th: nothing was sent about it yet.
        let silent = commands
            .change_occurrence_by(
                "weekly-koro",
                at("2026-12-14T09:00:00Z"),
                Some(at("2026-12-15T09:00:00Z")),
                "jour de marché",
                "Awa Traoré",
            )
            .await
            .unwrap();
        assert_eq!(
            (silent.sequence, silent.notified, silent.changed),
            (1, 0, true)
        );
        // The 7th: the invitations go out on the 4th, then a leader joins.
        invite_to_the_seventh(&runtime, &clock).await;
        world
            .add_csv(
                "id,name,roles,place,phone,email,language,channels\n\
                 c-9,Fanta Kodio,leader,mopti/koro/koro,76 99 88 77,,fra,sms\n",
            )
            .await;
        let told = commands
            .change_occurrence(
                "weekly-koro",
                at("2026-12-07T09:00:00Z"),
                Some(at("2026-12-08T09:00:00Z")),
                "salle occupée",
            )
            .await
            .unwrap();
        assert_eq!(told.notified, 3, "the three invited, not the newcomer");
        runtime.tick().await.unwrap();
        let to_newcomer = sms
            .delivered
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.to_address == "+22376998877")
            .count();
        assert_eq!(to_newcomer, 0);
        let ledger = runtime
            .store()
            .ledger(Some("weekly-koro"), 100)
            .await
            .unwrap();
        let moves: Vec<&str> = ledger
            .iter()
            .filter(|e| e.event == "moved")
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(moves.len(), 2, "both changes are in the ledger: {moves:?}");
        assert!(
            moves.iter().any(|d| d.contains(
                "by Awa Traoré (nobody had been told of it yet: no notice): jour de marché"
            )),
            "{moves:?}"
        );
        let _ = email;
    }
}
