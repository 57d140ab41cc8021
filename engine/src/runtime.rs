//! The runtime: planning timers, firing them, delivering the outbox.
//!
//! One [`Runtime`] is one worker. Several workers (processes) may share one
//! PostgreSQL database: they coordinate only through leases in the store.
//!
//! - **Planning** materialises the [`Planner`]'s fires as timers up to a horizon,
//!   from a per-workflow watermark, so a slot that passed while no worker ran is
//!   still planned (and then handled as a misfire), never forgotten. A changed
//!   definition re-plans its pending timers; fired ones stay, so nothing is sent
//!   twice. A removed workflow loses its pending timers. Each is in the ledger.
//! - **Firing** claims due timers by lease, applies the misfire policy to late
//!   ones, expands the fire into messages (recipients, channel, language, text,
//!   calendar) and writes outbox rows, ledger entries and the timer's state in one
//!   transaction.
//! - **Delivery** claims ready messages, reads the recipient's current address,
//!   hands the message to the channel's connector and records the outcome:
//!   sent; retried with exponential backoff and jitter; or dead-lettered.
//!
//! Time comes from the injected [`Clock`]; [`Runtime::tick`] does everything due
//! *now*, so tests drive the runtime with a virtual clock, and [`Runtime::run`]
//! loops ticks, sleeping until the next due instant or a change.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tracing::{Instrument, debug, info, info_span, warn};

mod deadlines;

use palabre_core::channel::Channel;
use palabre_core::clock::Clock;
use palabre_core::connector::{Connectors, DeliveryError, OutgoingMessage};
use palabre_lang::contacts::Contact;
use palabre_lang::ics::{self, CalendarEvent, CalendarMethod};
use palabre_lang::meeting::{Misfire, RecipientGroup};
use palabre_lang::milestones::{Milestone, MilestoneStep, Plan, Statuses};
use palabre_lang::occurrence::Changes;
use palabre_lang::occurrence::OccurrenceChange;
use palabre_lang::templates::{MessageContext, MilestoneFacts};
use palabre_plan::definitions::Definitions;
use palabre_plan::planner::{Fire, Planner, Slot};
use palabre_plan::recipients::reach;
use palabre_rules::{OverdueDecision, Rules, Subject, milestone_input};

use crate::commands::{CommandError, Commands, PROVIDER_OPT_OUT, about_sent};
use crate::messages::{queue_messages, rule_failure_entries, rule_failure_entry};
use palabre_store::{
    ClaimedMessage, ClaimedTimer, DeliveryOutcome, DeliveryRecord, LedgerEntry, LedgerEvent,
    PlannedTimer, Store, StoreError, TimerCompletion, TimerOutcome,
};

/// What can stop the worker: the database. (Refusals of the commands it gives
/// itself, a schedule rule's move or a missed deadline's climb, are written to
/// the ledger, not raised.)
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// When and how often a failed delivery is tried again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay after the first failure; doubles with each further failure.
    pub first_delay: TimeDelta,
    pub max_delay: TimeDelta,
    /// Attempts in all, after which a message is dead-lettered.
    pub max_attempts: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_delay: TimeDelta::seconds(30),
            max_delay: TimeDelta::hours(1),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt, after `failures` failures, with ±20 %
    /// jitter derived from the message key (spread out, yet reproducible).
    pub fn delay(&self, key: &str, failures: i64) -> TimeDelta {
        let exponent = u32::try_from(failures.clamp(1, 30) - 1).unwrap_or(0);
        let base = self
            .first_delay
            .checked_mul(2_i32.saturating_pow(exponent))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let spread =
            palabre_core::fingerprint::fnv1a([key.as_bytes(), &failures.to_le_bytes()]) % 401; // 0..=400
        let permille = 800 + i64::try_from(spread).unwrap_or(200); // 800..=1200
        TimeDelta::milliseconds(base.num_milliseconds() * permille / 1000)
    }
}

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// This worker's name in leases.
    pub owner: String,
    /// Timers are planned this far ahead.
    pub horizon: TimeDelta,
    /// How long a claimed timer or message stays this worker's.
    pub lease: TimeDelta,
    /// Timers or messages claimed at once.
    pub batch: i64,
    /// How long (real time) deliveries keep starting from one claimed batch: a
    /// slow channel must not hold messages past their lease, or another worker
    /// sends them too. The rest is given back and claimed afresh. Half the lease.
    pub batch_time: std::time::Duration,
    pub retry: RetryPolicy,
    /// The longest the loop sleeps without looking (other workers may add work).
    pub max_sleep: TimeDelta,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            owner: default_worker_name(),
            horizon: TimeDelta::days(40),
            lease: TimeDelta::seconds(60),
            batch: 500,
            batch_time: std::time::Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_sleep: TimeDelta::seconds(60),
        }
    }
}

/// `palabre-<hostname>`: stable across restarts, so a restarted worker recognises
/// its own leases. Several workers on one host need distinct names.
pub fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("palabre-{host}")
}

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub planned: u64,
    pub fired: usize,
    pub missed: usize,
    pub queued: usize,
    pub sent: usize,
    pub retried: usize,
    pub dead: usize,
}

/// One channel's messages of a claimed batch: those waiting, and how many may be
/// (and are) in flight.
struct Lane {
    limit: usize,
    busy: usize,
    queue: VecDeque<ClaimedMessage>,
}

/// One delivery attempt, ready to record.
struct Delivered {
    /// The channel it went on, as the outbox names it.
    channel: String,
    record: DeliveryRecord,
    /// Whether repeating it is harmless.
    idempotent: bool,
    /// The recipient, when the provider reported they opted out.
    opted_out: Option<String>,
}

/// The contact directory as one tick sees it: read once, indexed by id.
struct Directory {
    /// Shared with the planner and the rules of this tick.
    contacts: Arc<Vec<Contact>>,
    by_id: HashMap<String, usize>,
    /// Contacts who opted out of SMS.
    stopped: std::collections::BTreeSet<String>,
}

impl Directory {
    fn new(contacts: Vec<Contact>, stopped: std::collections::BTreeSet<String>) -> Directory {
        let by_id = contacts
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        Directory {
            contacts: Arc::new(contacts),
            by_id,
            stopped,
        }
    }

    fn get(&self, id: &str) -> Option<&Contact> {
        self.by_id.get(id).map(|&i| &self.contacts[i])
    }
}

/// Whether two follow-ups are about the same occurrence or case (only the first applies).
fn same_subject(a: &FollowUp, b: &FollowUp) -> bool {
    match (a, b) {
        (FollowUp::Occurrence(a), FollowUp::Occurrence(b)) => {
            a.workflow == b.workflow && a.occurrence == b.occurrence
        }
        (FollowUp::Climb { case: a, .. }, FollowUp::Climb { case: b, .. }) => a == b,
        _ => false,
    }
}

/// What a tick reads once and every phase shares.
struct TickState {
    changes: Changes,
    statuses: Statuses,
}

/// What firing one timer gives: its completion, and a change to apply after it.
struct Fired {
    completion: TimerCompletion,
    follow_up: Option<FollowUp>,
}

/// A change a fired timer asks for, applied once its batch is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FollowUp {
    /// A schedule rule skipped or moved an occurrence.
    Occurrence(OccurrenceChange),
    /// A case missed a deadline and climbs (`climb` levels; 0 tells its level again).
    Climb {
        case: String,
        climb: u32,
        reason: String,
    },
}

/// Rows written in one go beyond which the database's statistics are refreshed.
const BURST: u64 = 5_000;

/// One worker of the durable engine.
pub struct Runtime {
    /// The store, the definitions, the clock and the wake-up bell, shared with
    /// whoever changes things meanwhile (the API, inbound webhooks).
    commands: Commands,
    connectors: Connectors,
    config: RuntimeConfig,
    /// Set when a shutdown was asked for: work stops at the next safe point.
    stopping: AtomicBool,
}

/// A fingerprint of everything that shapes a workflow's timers and messages: its
/// definition, and the rule scripts and calendars its place reaches.
fn definition_hash(definition: &impl serde::Serialize, place: &str, rules: &Rules) -> String {
    let text = serde_json::to_string(definition).unwrap_or_default();
    let rules = rules.fingerprint(place).to_le_bytes();
    format!(
        "{:016x}",
        palabre_core::fingerprint::fnv1a([text.as_bytes(), &rules])
    )
}

/// What a milestone timer does: a reminder to the owner, or an overdue check
/// (the `milestone_overdue` rule decides: remind, escalate or wait; at the first
/// check the owners of dependent milestones are told it slipped). Nothing for a
/// milestone done or cancelled.
fn fire_milestone(
    planner: &Planner<'_>,
    definitions: &Definitions,
    plan: &Plan,
    statuses: &Statuses,
    timer: ClaimedTimer,
    now: DateTime<Utc>,
) -> Fired {
    let def = &plan.definition;
    let entry = |event, detail: String| {
        LedgerEntry::new(now, event, detail).slot(&timer.workflow, timer.occurrence, &timer.step)
    };
    let dropped = |entry| Fired {
        completion: TimerCompletion {
            timer_id: timer.id.clone(),
            outcome: TimerOutcome::Cancelled,
            messages: Vec::new(),
            ledger: vec![entry],
        },
        follow_up: None,
    };
    let Some((milestone, step)) = MilestoneStep::parse(&timer.step)
        .and_then(|(id, step)| plan.milestone(id).map(|m| (m, step)))
    else {
        return dropped(entry(
            LedgerEvent::Replanned,
            "the milestone is no longer in the plan".to_owned(),
        ));
    };
    let status = statuses.status(&def.id, &milestone.id);
    if status.is_closed() {
        return dropped(entry(
            LedgerEvent::Replanned,
            format!("the milestone is {status}"),
        ));
    }
    let directory = planner.directory();
    let place_name = definitions
        .places
        .get(&def.place)
        .map_or_else(|| def.place.clone(), |p| p.name.clone());
    let days_late = plan.days_late(milestone, now);
    // Messages of `template` about `about` to everyone `groups` reach.
    let send = |about: &Milestone,
                groups: &[RecipientGroup],
                template: &str,
                blocked_by: String,
                escalation: &str| {
        let facts = MilestoneFacts {
            id: about.id.clone(),
            title: about.title.clone(),
            due: palabre_lang::calendars::format_iso_date(about.due),
            status: statuses.status(&def.id, &about.id).as_str().to_owned(),
            days_late: plan.days_late(about, now),
            reference: plan.reference(about),
            blocked_by,
            escalation: escalation.to_owned(),
            done_by_sms: def.done_by_sms,
        };
        let slot = Slot {
            due: timer.due,
            zone: plan.zone,
            workflow: &def.id,
            occurrence: timer.occurrence,
            step: &timer.step,
            template,
            channels: &def.channels,
        };
        let shared = MessageContext::about_milestone(
            &def.id,
            &def.title,
            &def.place,
            &place_name,
            &timer.step,
            facts,
        );
        reach(groups, &def.place, directory)
            .into_iter()
            .map(|contact| planner.prepare(&slot, contact, &shared.to(contact)))
            .collect::<Vec<_>>()
    };
    let owner = std::slice::from_ref(&milestone.owner);
    let waiting_for = milestone
        .depends_on
        .iter()
        .filter(|d| !statuses.status(&def.id, d).is_closed())
        .filter_map(|d| plan.milestone(d).map(|m| m.title.clone()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut ledger = Vec::new();
    let mut slipped = Vec::new();
    let planned = match step {
        MilestoneStep::Reminder(_) => send(milestone, owner, "milestone-reminder", waiting_for, ""),
        MilestoneStep::Overdue(check) => {
            let rules = &definitions.rules;
            let answer = rules.decide::<OverdueDecision>(
                &def.place,
                None,
                || milestone_input(rules.world(), plan, milestone, status, check, now),
                Subject {
                    workflow: &def.id,
                    occurrence: Some(timer.occurrence),
                },
                directory,
            );
            ledger.extend(answer.failure.clone().map(|f| rule_failure_entry(f, now)));
            let by = answer.by.as_deref().unwrap_or("the built-in default");
            let (what, planned) = match &answer.decision {
                OverdueDecision::Remind { reason } => (
                    format!("remind the owner: {reason}"),
                    send(milestone, owner, "milestone-overdue", waiting_for, reason),
                ),
                OverdueDecision::Escalate { to, reason } => (
                    format!(
                        "escalate to {} at {}: {reason}",
                        to.role.as_deref().unwrap_or("contacts"),
                        to.place.as_deref().unwrap_or(&def.place)
                    ),
                    send(
                        milestone,
                        std::slice::from_ref(to),
                        "milestone-escalated",
                        waiting_for,
                        reason,
                    ),
                ),
                OverdueDecision::Wait { reason } => (format!("wait: {reason}"), Vec::new()),
            };
            ledger.push(entry(
                LedgerEvent::Overdue,
                format!("check {check}, {days_late} day(s) late: {what} ({by})"),
            ));
            if check == 1 {
                for dependant in plan.dependants(&milestone.id) {
                    if !statuses.status(&def.id, &dependant.id).is_closed() {
                        slipped.extend(send(
                            dependant,
                            std::slice::from_ref(&dependant.owner),
                            "milestone-slipped",
                            milestone.title.clone(),
                            "",
                        ));
                    }
                }
            }
            planned
        }
    };
    let (mut messages, unreachable) = queue_messages(planned, &timer.id, now, |_| None);
    ledger.extend(unreachable);
    let (slip_messages, unreachable) =
        queue_messages(slipped, &format!("{}#slipped", timer.id), now, |_| None);
    messages.extend(slip_messages);
    ledger.extend(unreachable);
    ledger.insert(
        0,
        entry(
            LedgerEvent::Fired,
            format!("{} message(s) queued", messages.len()),
        ),
    );
    Fired {
        completion: TimerCompletion {
            timer_id: timer.id,
            outcome: TimerOutcome::Fired,
            messages,
            ledger,
        },
        follow_up: None,
    }
}

impl Runtime {
    pub fn new(
        store: Store,
        definitions: Definitions,
        connectors: Connectors,
        clock: Arc<dyn Clock>,
        config: RuntimeConfig,
    ) -> Runtime {
        Runtime {
            commands: Commands::new(store, definitions, clock),
            connectors,
            config,
            stopping: AtomicBool::new(false),
        }
    }

    /// The command service this worker shares: changes given to it are planned,
    /// fired and delivered by this worker.
    pub fn commands(&self) -> &Commands {
        &self.commands
    }

    pub fn store(&self) -> &Store {
        self.commands.store()
    }

    fn now(&self) -> DateTime<Utc> {
        self.commands.now()
    }

    fn definitions(&self) -> Arc<Definitions> {
        self.commands.definitions()
    }

    /// Does everything due now: plan, fire due timers, deliver ready messages.
    ///
    /// A tick works on one snapshot of the definitions from start to end: a hot
    /// reload meanwhile takes effect at the next tick, and every rule failure of
    /// this one is written with what it concerns.
    pub async fn tick(&self) -> Result<TickReport, RuntimeError> {
        let definitions = self.definitions();
        let state = TickState {
            changes: Changes::new(self.store().occurrence_changes().await?),
            statuses: Statuses::new(self.store().milestone_states().await?),
        };
        // The directory is read once per tick (again after opt-outs during delivery).
        let mut directory = None;
        let mut report = TickReport {
            planned: self.plan(&definitions, &state, &mut directory).await?,
            ..TickReport::default()
        };
        if report.planned > BURST {
            self.store().refresh_statistics().await?;
        }
        self.fire_due(&definitions, &state, &mut directory, &mut report)
            .await?;
        self.deliver_ready(&mut directory, &mut report).await?;
        self.fall_back_unconfirmed().await?;
        Ok(report)
    }

    /// Plans every workflow up to `now + horizon`; returns how many timers are new.
    async fn plan(
        &self,
        definitions: &Definitions,
        state: &TickState,
        directory: &mut Option<Directory>,
    ) -> Result<u64, RuntimeError> {
        let now = self.now();
        let until = now + self.config.horizon;
        let mut planned = 0;
        let contacts = self.directory(directory).await?.contacts.clone();
        let planner = Planner::new(definitions, contacts);
        for meeting in &definitions.meetings {
            let id = &meeting.definition.id;
            let hash = definition_hash(
                &meeting.definition,
                &meeting.definition.place,
                &definitions.rules,
            );
            planned += self
                .plan_workflow(id, &hash, until, |from| {
                    planner
                        .fires_of(meeting, from, until, &state.changes, now)
                        .into_iter()
                        .map(|fire| PlannedTimer {
                            workflow: id.clone(),
                            occurrence: fire.occurrence,
                            step: fire.step.id.clone(),
                            due: fire.due,
                        })
                        .collect()
                })
                .await?;
        }
        for plan in &definitions.plans {
            let id = &plan.definition.id;
            let hash =
                definition_hash(&plan.definition, &plan.definition.place, &definitions.rules);
            planned += self
                .plan_workflow(id, &hash, until, |from| {
                    plan.fires_between(from, until, &state.statuses)
                        .into_iter()
                        .map(|fire| PlannedTimer {
                            workflow: id.clone(),
                            occurrence: fire.due_at,
                            step: fire.step.id(&fire.milestone.id),
                            due: fire.due,
                        })
                        .collect()
                })
                .await?;
        }
        for workflow in self.store().scheduled_workflows().await? {
            if definitions.workflow_ids().all(|id| id != workflow) {
                let entry =
                    LedgerEntry::new(now, LedgerEvent::Replanned, "the workflow was removed");
                self.store()
                    .unplan_pending(&workflow, DateTime::<Utc>::MIN_UTC, &entry)
                    .await?;
                self.store().forget_schedule(&workflow).await?;
            }
        }
        let failures = rule_failure_entries(&planner, now);
        if !failures.is_empty() {
            self.store().append_ledger(&failures).await?;
        }
        if planned > 0 {
            info!(planned, "timers planned");
        }
        Ok(planned)
    }

    /// Plans one workflow from its watermark to `until` (re-planning its pending
    /// timers first when its definition changed); returns how many timers are new.
    async fn plan_workflow(
        &self,
        id: &str,
        hash: &str,
        until: DateTime<Utc>,
        timers: impl FnOnce(DateTime<Utc>) -> Vec<PlannedTimer>,
    ) -> Result<u64, RuntimeError> {
        let now = self.now();
        let from = match self.store().schedule(id).await? {
            None => now,
            Some((known, watermark)) if known == hash => watermark,
            Some((_, watermark)) => {
                let entry = LedgerEntry::new(
                    now,
                    LedgerEvent::Replanned,
                    "the workflow definition changed",
                );
                self.store().unplan_pending(id, now, &entry).await?;
                watermark.min(now)
            }
        };
        if from >= until {
            return Ok(0);
        }
        let planned = self.store().plan_timers(&timers(from), now).await?;
        self.store().set_schedule(id, hash, until).await?;
        Ok(planned)
    }

    async fn fire_due(
        &self,
        definitions: &Definitions,
        state: &TickState,
        directory: &mut Option<Directory>,
        report: &mut TickReport,
    ) -> Result<(), RuntimeError> {
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            let now = self.now();
            let claimed = self
                .store()
                .claim_due_timers(
                    now,
                    &self.config.owner,
                    self.config.lease,
                    self.config.batch,
                )
                .await?;
            if claimed.is_empty() {
                return Ok(());
            }
            let contacts = self.directory(directory).await?;
            let planner = Planner::new(definitions, contacts.contacts.clone());
            let mut completions = Vec::with_capacity(claimed.len());
            let mut follow_ups: Vec<FollowUp> = Vec::new();
            for timer in claimed {
                let span = info_span!("timer", workflow = %timer.workflow, step = %timer.step, occurrence = %timer.occurrence);
                let mut fired = self
                    .fire(&planner, definitions, state, timer, now)
                    .instrument(span)
                    .await?;
                // A rule's failure is written with the timer whose firing met it.
                fired
                    .completion
                    .ledger
                    .extend(rule_failure_entries(&planner, now));
                completions.push(fired.completion);
                if let Some(follow_up) = fired.follow_up
                    && !follow_ups
                        .iter()
                        .any(|known| same_subject(known, &follow_up))
                {
                    follow_ups.push(follow_up);
                }
            }
            // One transaction for the whole batch: timers, outbox rows and ledger together.
            let completed = self
                .store()
                .complete_timers(&self.config.owner, &completions, now)
                .await?;
            if completed < completions.len() {
                warn!(
                    lost = completions.len() - completed,
                    "leases lost before completion; other workers have these timers"
                );
            }
            let queued_before = report.queued;
            for completion in &completions {
                match completion.outcome {
                    TimerOutcome::Fired => {
                        report.fired += 1;
                        report.queued += completion.messages.len();
                    }
                    TimerOutcome::Skipped => report.missed += 1,
                    TimerOutcome::Cancelled => {}
                }
            }
            if queued_before <= BURST as usize && report.queued > BURST as usize {
                self.store().refresh_statistics().await?;
            }
            for follow_up in follow_ups {
                match follow_up {
                    FollowUp::Occurrence(change) => self.apply_rule_change(&change).await?,
                    FollowUp::Climb {
                        case,
                        climb,
                        reason,
                    } => match self
                        .commands
                        .climb_case(&case, climb, &reason, "missed deadline")
                        .await
                    {
                        Ok(_) => {}
                        Err(CommandError::Store(error)) => return Err(error.into()),
                        Err(refusal) => {
                            warn!(%case, %refusal, "a missed deadline could not move the case");
                        }
                    },
                }
            }
        }
    }

    /// Applies what a schedule rule decided, as a coordinator's change would be.
    async fn apply_rule_change(&self, change: &OccurrenceChange) -> Result<(), RuntimeError> {
        match self
            .commands
            .change_occurrence(
                &change.workflow,
                change.occurrence,
                change.starts_at,
                &change.reason,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(CommandError::Store(error)) => Err(error.into()),
            Err(refusal) => {
                warn!(workflow = %change.workflow, %refusal, "a rule's change could not be applied");
                let entry = LedgerEntry::new(
                    self.now(),
                    LedgerEvent::RuleError,
                    format!("the schedule rule's decision could not be applied: {refusal}"),
                )
                .slot(&change.workflow, change.occurrence, "meeting_schedule");
                self.store().append_ledger(&[entry]).await?;
                Ok(())
            }
        }
    }

    /// The tick's directory, read from the store the first time it is needed.
    async fn directory<'c>(
        &self,
        cache: &'c mut Option<Directory>,
    ) -> Result<&'c Directory, RuntimeError> {
        if cache.is_none() {
            let contacts = self.store().contacts().await?;
            let stopped = self.store().sms_stopped().await?;
            *cache = Some(Directory::new(contacts, stopped));
        }
        Ok(cache.get_or_insert_with(|| Directory::new(Vec::new(), Default::default())))
    }

    /// Decides the fate of a late timer under its workflow's misfire policy:
    /// `None` to run it, or the reason it is dropped.
    async fn misfire_verdict(
        &self,
        fire: &Fire<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<&'static str>, RuntimeError> {
        let def = &fire.meeting.definition;
        if now - fire.due <= def.misfire_grace.as_delta() {
            return Ok(None);
        }
        if fire.step.at.is_negative() && fire.occurrence <= now {
            return Ok(Some("the meeting has already started"));
        }
        Ok(match def.misfire {
            Misfire::Skip => Some("missed while the engine was down (misfire: skip)"),
            Misfire::All => None,
            Misfire::Once => {
                let later = self
                    .store()
                    .later_slot_due(&def.id, &fire.step.id, fire.due, now)
                    .await?;
                later.then_some("a later slot of the same step runs instead (misfire: once)")
            }
        })
    }

    /// Decides what a claimed timer does: its messages and ledger entries, or why it
    /// is dropped; and the change a schedule rule asks for, if any.
    async fn fire(
        &self,
        planner: &Planner<'_>,
        definitions: &Definitions,
        state: &TickState,
        timer: ClaimedTimer,
        now: DateTime<Utc>,
    ) -> Result<Fired, RuntimeError> {
        if let Some(ladder) = definitions.ladder(&timer.workflow) {
            return self
                .fire_case_deadline(planner, definitions, ladder, timer, now)
                .await;
        }
        if let Some(plan) = definitions.plan(&timer.workflow) {
            return Ok(fire_milestone(
                planner,
                definitions,
                plan,
                &state.statuses,
                timer,
                now,
            ));
        }
        let changes = &state.changes;
        let slot = |event, detail: String| {
            LedgerEntry::new(now, event, detail).slot(
                &timer.workflow,
                timer.occurrence,
                &timer.step,
            )
        };
        let dropped = |outcome, entry| Fired {
            completion: TimerCompletion {
                timer_id: timer.id.clone(),
                outcome,
                messages: Vec::new(),
                ledger: vec![entry],
            },
            follow_up: None,
        };
        let change = changes.get(&timer.workflow, timer.occurrence);
        if change.is_some_and(|c| c.starts_at.is_none()) {
            let entry = slot(
                LedgerEvent::Cancelled,
                "the occurrence is cancelled".to_owned(),
            );
            return Ok(dropped(TimerOutcome::Cancelled, entry));
        }
        let start = change.and_then(|c| c.starts_at).unwrap_or(timer.occurrence);
        let meeting = definitions
            .meetings
            .iter()
            .find(|m| m.definition.id == timer.workflow);
        let Some((meeting, step)) = meeting.and_then(|m| {
            planner
                .step_of(m, timer.occurrence, start, &timer.step, now)
                .map(|s| (m, s))
        }) else {
            let entry = slot(
                LedgerEvent::Replanned,
                "workflow or step no longer defined".to_owned(),
            );
            return Ok(dropped(TimerOutcome::Cancelled, entry));
        };
        let fire = Fire {
            meeting,
            step,
            occurrence: timer.occurrence,
            start,
            sequence: change.map_or(0, |c| c.sequence),
            due: timer.due,
        };
        if let Some(reason) = self.misfire_verdict(&fire, now).await? {
            info!(reason, "slot missed");
            let entry = slot(
                LedgerEvent::Missed,
                format!("due {}: {reason}", timer.due.to_rfc3339()),
            );
            return Ok(dropped(TimerOutcome::Skipped, entry));
        }
        // Before the meeting, and until a coordinator or a rule changed it, the
        // schedule rule may still skip or move it.
        if change.is_none()
            && fire.due < fire.start
            && let Some(rule_change) =
                planner.schedule_change(meeting, timer.occurrence, fire.start, now)
        {
            let what = if rule_change.starts_at.is_some() {
                "moved"
            } else {
                "cancelled"
            };
            let entry = slot(
                LedgerEvent::Cancelled,
                format!(
                    "not sent: the schedule rule {what} the meeting: {}",
                    rule_change.reason
                ),
            );
            info!(what, "the schedule rule changed the meeting");
            let mut fired = dropped(TimerOutcome::Cancelled, entry);
            fired.follow_up = Some(FollowUp::Occurrence(rule_change));
            return Ok(fired);
        }
        let late = now - timer.due > meeting.definition.misfire_grace.as_delta();
        let calendar = |channel: Channel| {
            (fire.step.calendar && channel == Channel::Email).then(|| {
                let event = CalendarEvent {
                    workflow: &meeting.definition.id,
                    occurrence: timer.occurrence,
                    start: fire.start,
                    duration: meeting.definition.duration.as_delta(),
                    title: &meeting.definition.title,
                    venue: &meeting.definition.venue,
                    sequence: fire.sequence,
                    method: CalendarMethod::Request,
                };
                ics::render(&event, now)
            })
        };
        let (messages, mut ledger) =
            queue_messages(planner.messages(&fire, now), &timer.id, now, calendar);
        let (event, when) = if late {
            (
                LedgerEvent::FiredLate,
                format!("late by {}s", (now - timer.due).num_seconds()),
            )
        } else {
            (LedgerEvent::Fired, "on time".to_owned())
        };
        let unreachable = ledger.len();
        let summary = format!(
            "{when}: {} message(s) queued, {unreachable} unreachable",
            messages.len()
        );
        ledger.insert(0, slot(event, summary));
        info!(queued = messages.len(), unreachable, late, "timer fired");
        Ok(Fired {
            completion: TimerCompletion {
                timer_id: timer.id,
                outcome: TimerOutcome::Fired,
                messages,
                ledger,
            },
            follow_up: None,
        })
    }

    async fn deliver_ready(
        &self,
        directory: &mut Option<Directory>,
        report: &mut TickReport,
    ) -> Result<(), RuntimeError> {
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            let now = self.now();
            let claimed = self
                .store()
                .claim_messages(
                    now,
                    &self.config.owner,
                    self.config.lease,
                    self.config.batch,
                )
                .await?;
            if claimed.is_empty() {
                return Ok(());
            }
            let contacts = self.directory(directory).await?;
            // Past `batch_time`, nothing more of this batch starts (but at least
            // one message does, so that every batch makes progress).
            let claimed_at = std::time::Instant::now();
            let mut started = 0_usize;
            let mut pending = Vec::new();
            let mut opted_out = Vec::new();
            // Each channel's messages in claim order, up to its connector's limit
            // in flight at once; channels go side by side.
            let mut waiting: BTreeMap<String, Lane> = BTreeMap::new();
            for message in claimed {
                let lane = waiting
                    .entry(message.channel.clone())
                    .or_insert_with(|| Lane {
                        limit: Channel::parse(&message.channel)
                            .and_then(|c| self.connectors.get(c))
                            .map_or(1, |c| c.max_in_flight().max(1)),
                        busy: 0,
                        queue: VecDeque::new(),
                    });
                lane.queue.push_back(message);
            }
            let mut running = FuturesUnordered::new();
            loop {
                // Claimed but not started when stopping: their leases expire, or
                // are taken back when this worker starts again.
                let in_time = started == 0 || claimed_at.elapsed() < self.config.batch_time;
                if !self.stopping.load(Ordering::SeqCst) && in_time {
                    for lane in waiting.values_mut() {
                        while lane.busy < lane.limit
                            && let Some(message) = lane.queue.pop_front()
                        {
                            lane.busy += 1;
                            started += 1;
                            let span = info_span!("delivery", key = %message.id, channel = %message.channel);
                            running.push(self.deliver(contacts, message).instrument(span));
                        }
                    }
                }
                let Some(delivered) = running.next().await else {
                    break;
                };
                if let Some(lane) = waiting.get_mut(&delivered.channel) {
                    lane.busy -= 1;
                }
                match delivered.record.outcome {
                    DeliveryOutcome::Sent { .. } => report.sent += 1,
                    DeliveryOutcome::Retry { .. } => report.retried += 1,
                    DeliveryOutcome::Dead { .. } => report.dead += 1,
                }
                pending.push(delivered.record);
                opted_out.extend(delivered.opted_out);
                // A delivery that must not be repeated is recorded at once; repeatable
                // ones (file outboxes) are recorded with the rest of the batch.
                if !delivered.idempotent
                    && let Err(error) = self.record(&mut pending).await
                {
                    // Let the deliveries under way finish rather than cut them off
                    // mid-request, and try once more to record what they did.
                    while let Some(delivered) = running.next().await {
                        pending.push(delivered.record);
                    }
                    if let Err(again) = self.record(&mut pending).await {
                        warn!(%again, "delivery outcomes not recorded; their leases will expire");
                    }
                    return Err(error);
                }
            }
            drop(running);
            self.record(&mut pending).await?;
            let unstarted: Vec<String> = waiting
                .into_values()
                .flat_map(|lane| lane.queue)
                .map(|message| message.id)
                .collect();
            if !unstarted.is_empty() && !self.stopping.load(Ordering::SeqCst) {
                // Out of time for this batch: give them back to be claimed afresh.
                self.store()
                    .release_messages(&self.config.owner, &unstarted)
                    .await?;
            }
            // Recorded after the outcomes: a crash in between only means the next
            // message to them is refused by the provider again, and stops them then.
            if !opted_out.is_empty() {
                for contact in &opted_out {
                    self.commands
                        .switch_sms(contact, true, PROVIDER_OPT_OUT)
                        .await?;
                }
                *directory = None;
            }
        }
    }

    /// Records pending delivery outcomes in one transaction.
    async fn record(&self, pending: &mut Vec<DeliveryRecord>) -> Result<(), RuntimeError> {
        if pending.is_empty() {
            return Ok(());
        }
        let recorded = self
            .store()
            .record_deliveries(&self.config.owner, pending, self.now())
            .await?;
        if recorded < pending.len() {
            warn!(
                lost = pending.len() - recorded,
                "leases lost before outcomes were recorded"
            );
        }
        pending.clear();
        Ok(())
    }

    /// Delivers one message; returns its outcome to record.
    async fn deliver(&self, directory: &Directory, message: ClaimedMessage) -> Delivered {
        let channel = Channel::parse(&message.channel);
        let contact = directory.get(&message.contact_id);
        let address = channel.and_then(|c| contact.and_then(|contact| contact.address(c)));
        let connector = channel.and_then(|c| self.connectors.get(c));
        let idempotent = connector.is_some_and(|c| c.idempotent());
        let receipt_timeout = connector.and_then(|c| c.receipt_timeout());
        let stopped =
            channel == Some(Channel::Sms) && directory.stopped.contains(&message.contact_id);
        let result = match (channel, contact, address) {
            _ if stopped => Err(DeliveryError::Permanent(
                "the contact opted out of SMS (STOP)".to_owned(),
            )),
            (Some(channel), Some(contact), Some(address)) => match connector {
                Some(connector) => {
                    let outgoing = OutgoingMessage {
                        key: message.id.clone(),
                        channel,
                        to_address: address.to_owned(),
                        to_name: contact.name.clone(),
                        language: message.language.clone(),
                        subject: message.subject.clone(),
                        body: message.body.clone(),
                        calendar: message.calendar.clone(),
                    };
                    connector.deliver(&outgoing).await
                }
                None => Err(DeliveryError::Transient(format!(
                    "no connector configured for {channel}"
                ))),
            },
            (None, _, _) => Err(DeliveryError::Permanent(format!(
                "unknown channel '{}'",
                message.channel
            ))),
            (_, None, _) => Err(DeliveryError::Permanent(
                "the contact is no longer in the directory".to_owned(),
            )),
            (_, _, None) => Err(DeliveryError::Permanent(format!(
                "the contact has no {} address any more",
                message.channel
            ))),
        };
        let now = self.now();
        let failures = message.attempts + 1;
        let fallback = message
            .fallback
            .as_ref()
            .filter(|f| f.channel != message.channel);
        let opted_out = channel == Some(Channel::Sms)
            && matches!(result, Err(DeliveryError::OptedOut(_)))
            && !stopped;
        let (outcome, event, detail) = match result {
            Ok(provider_id) => {
                let detail = format!("accepted as {provider_id}");
                let awaiting_receipt_until = receipt_timeout
                    .filter(|_| fallback.is_some())
                    .and_then(|t| TimeDelta::from_std(t).ok())
                    .map(|t| now + t);
                (
                    DeliveryOutcome::Sent {
                        provider_id,
                        awaiting_receipt_until,
                    },
                    LedgerEvent::Sent,
                    detail,
                )
            }
            Err(DeliveryError::Permanent(error) | DeliveryError::OptedOut(error)) => (
                DeliveryOutcome::Dead {
                    error: error.clone(),
                },
                LedgerEvent::DeadLetter,
                error,
            ),
            Err(error) if failures >= self.config.retry.max_attempts => {
                let error = format!("{error}; gave up after {failures} attempts");
                (
                    DeliveryOutcome::Dead {
                        error: error.clone(),
                    },
                    LedgerEvent::DeadLetter,
                    error,
                )
            }
            Err(error) => {
                let delay = match &error {
                    DeliveryError::RateLimited {
                        retry_after: Some(after),
                        ..
                    } => TimeDelta::from_std(*after).map_or(self.config.retry.max_delay, |after| {
                        after.min(self.config.retry.max_delay)
                    }),
                    _ => self.config.retry.delay(&message.id, failures),
                };
                let at = now + delay;
                let detail = format!(
                    "{error}; attempt {failures} failed, next at {}",
                    at.to_rfc3339()
                );
                (
                    DeliveryOutcome::Retry {
                        at,
                        error: error.to_string(),
                    },
                    LedgerEvent::Retry,
                    detail,
                )
            }
        };
        match event {
            LedgerEvent::Sent => debug!("delivered"),
            LedgerEvent::DeadLetter => warn!(detail, "dead letter"),
            _ => info!(detail, "delivery failed, will retry"),
        }
        // A dead letter with a fallback goes once more, on the contact's next channel.
        let fall_back = event == LedgerEvent::DeadLetter && fallback.is_some();
        let detail = match fallback {
            Some(next) if fall_back => format!("{detail}; sent again by {} instead", next.channel),
            _ => detail,
        };
        let ledger = LedgerEntry::new(now, event, detail)
            .slot(&message.workflow, message.occurrence, &message.step)
            .recipient(&message.contact_id, Some(&message.channel));
        let opted_out = opted_out.then(|| message.contact_id.clone());
        let record = DeliveryRecord {
            message_id: message.id,
            outcome,
            ledger,
            fall_back,
        };
        Delivered {
            channel: message.channel,
            record,
            idempotent,
            opted_out,
        }
    }

    /// Sends again on their fallback channel the messages whose delivery receipt
    /// did not come in time.
    async fn fall_back_unconfirmed(&self) -> Result<usize, RuntimeError> {
        let now = self.now();
        Ok(self
            .store()
            .fall_back_unconfirmed(now, |about| {
                let detail = "no delivery receipt in time".to_owned();
                about_sent(now, LedgerEvent::Undelivered, detail, about)
            })
            .await?)
    }

    /// Runs ticks until `shutdown` completes, sleeping until the next due instant,
    /// a change, or `max_sleep`. A tick in progress finishes before the loop ends.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), RuntimeError> {
        tokio::pin!(shutdown);
        let released = self.store().release_leases(&self.config.owner).await?;
        if released > 0 {
            info!(released, owner = %self.config.owner, "took back the leases of a previous run");
        }
        loop {
            let tick = self.tick();
            tokio::pin!(tick);
            tokio::select! {
                result = &mut tick => { result?; }
                () = &mut shutdown => {
                    // Finish what is in hand (record what was delivered), then stop.
                    self.stopping.store(true, Ordering::SeqCst);
                    tick.await?;
                    return Ok(());
                }
            }
            let now = self.now();
            let next = self
                .store()
                .next_wakeup()
                .await?
                .unwrap_or(now + self.config.max_sleep);
            let wake_at = next.min(now + self.config.max_sleep).max(now);
            let sleep = (wake_at - now).to_std().unwrap_or_default();
            debug!(?sleep, "sleeping");
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = self.commands.woken() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy::default();
        let first = policy.delay("k", 1).num_seconds();
        assert!((24..=36).contains(&first), "{first}");
        let third = policy.delay("k", 3).num_seconds();
        assert!((96..=144).contains(&third), "{third}");
        let late = policy.delay("k", 20).num_seconds();
        assert!((2880..=4320).contains(&late), "{late}");
        assert_eq!(policy.delay("k", 3), policy.delay("k", 3), "reproducible");
        let spread: std::collections::BTreeSet<i64> = (0..20)
            .map(|i| policy.delay(&format!("m{i}"), 2).num_milliseconds())
            .collect();
        assert!(spread.len() > 10, "jitter spreads messages apart");
    }
}
