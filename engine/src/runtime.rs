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
//!   transaction. The outbox rows are written already leased to this worker,
//!   which delivers them next, with no claim between (unless a rule's change or
//!   a case's climb follows the batch: then they are claimed afresh after it).
//! - **Delivery** claims ready messages, reads the recipient's current address,
//!   hands the message to the channel's connector and records the outcome:
//!   sent; retried with exponential backoff and jitter; or dead-lettered.
//!
//! Time comes from the injected [`Clock`]; [`Runtime::tick`] does everything due
//! *now*, so tests drive the runtime with a virtual clock, and [`Runtime::run`]
//! loops ticks, sleeping until the next due instant, a change, or (PostgreSQL)
//! another worker's news of new work (not while planning is behind: a planning
//! pass is bounded, and the next goes on).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use palabre_core::clock::Clock;
use palabre_core::connector::Connectors;
use palabre_lang::contacts::Contact;
use palabre_lang::milestones::Statuses;
use palabre_lang::occurrence::Changes;
use palabre_plan::definitions::Definitions;
use palabre_store::{Store, StoreError, WorkListener};
use tracing::{debug, info, warn};

use crate::commands::Commands;

mod deadlines;
mod delivery;
mod firing;
mod planning;

pub use delivery::RetryPolicy;

/// What can stop the worker: the database. (Refusals of the commands it gives
/// itself, a schedule rule's move or a missed deadline's climb, are written to
/// the ledger, not raised.)
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Store(#[from] StoreError),
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
    /// How long (real time) reminders rules may run in one planning pass; what
    /// they did not reach is planned at the next ticks, due timers firing between.
    pub rule_time: std::time::Duration,
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
            rule_time: std::time::Duration::from_secs(2),
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
    /// Workflows whose planning goes on at the next tick.
    pub planning_behind: usize,
    pub fired: usize,
    pub missed: usize,
    pub queued: usize,
    pub sent: usize,
    pub retried: usize,
    /// Calls that wait for their callee's hours, or a rule's leave.
    pub deferred: usize,
    pub dead: usize,
}

/// The contact directory as one tick sees it: read once, indexed by id.
struct Directory {
    /// Shared with the planner and the rules of this tick.
    contacts: Arc<Vec<Contact>>,
    by_id: HashMap<String, usize>,
    /// Contacts who opted out of SMS.
    stopped: std::collections::BTreeSet<String>,
    /// Contacts who asked never to be called again.
    calls_stopped: std::collections::BTreeSet<String>,
}

impl Directory {
    fn new(
        contacts: Vec<Contact>,
        stopped: std::collections::BTreeSet<String>,
        calls_stopped: std::collections::BTreeSet<String>,
    ) -> Directory {
        let by_id = contacts
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        Directory {
            contacts: Arc::new(contacts),
            by_id,
            stopped,
            calls_stopped,
        }
    }

    fn get(&self, id: &str) -> Option<&Contact> {
        self.by_id.get(id).map(|&i| &self.contacts[i])
    }
}

/// What a tick reads once and every phase shares.
struct TickState {
    changes: Changes,
    statuses: Statuses,
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

impl Runtime {
    pub fn new(
        store: Store,
        definitions: Definitions,
        connectors: Connectors,
        clock: Arc<dyn Clock>,
        config: RuntimeConfig,
    ) -> Runtime {
        Runtime {
            commands: Commands::redialling(
                store,
                definitions,
                clock,
                connectors
                    .get(palabre_core::channel::Channel::Voice)
                    .and_then(|c| c.redial()),
            ),
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
        // The tick's present, read before anything: planning starts from it,
        // however long firing takes first.
        let started = self.now();
        // The directory is read once per tick (again after opt-outs during delivery).
        let mut directory = None;
        let mut report = TickReport::default();
        // What is due goes first: planning the horizon can wait, a due timer
        // must not wait for a pass over every workflow.
        self.fire_due(&definitions, &state, &mut directory, &mut report)
            .await?;
        self.deliver_ready(&mut directory, &mut report).await?;
        let planning = self
            .plan(&definitions, &state, &mut directory, started)
            .await?;
        report.planned = planning.planned;
        report.planning_behind = planning.behind;
        if report.planned > BURST {
            self.store().refresh_statistics().await?;
        }
        // Then what planning found already due (a slot missed while no worker
        // ran); nothing new can be due when it planned nothing.
        if report.planned > 0 {
            self.fire_due(&definitions, &state, &mut directory, &mut report)
                .await?;
            self.deliver_ready(&mut directory, &mut report).await?;
        }
        self.fall_back_unconfirmed().await?;
        Ok(report)
    }

    /// The tick's directory, read from the store the first time it is needed.
    async fn directory<'c>(
        &self,
        cache: &'c mut Option<Directory>,
    ) -> Result<&'c Directory, RuntimeError> {
        if cache.is_none() {
            let contacts = self.store().contacts().await?;
            let stopped = self.store().sms_stopped().await?;
            let calls_stopped = self
                .store()
                .stopped(palabre_core::channel::Channel::Voice)
                .await?;
            *cache = Some(Directory::new(contacts, stopped, calls_stopped));
        }
        Ok(cache.get_or_insert_with(|| {
            Directory::new(Vec::new(), Default::default(), Default::default())
        }))
    }

    /// Gives back the leases this worker holds (claimed work it will not finish).
    async fn release_leases(&self) -> Result<(), RuntimeError> {
        let released = self.store().release_leases(&self.config.owner).await?;
        if released > 0 {
            info!(released, owner = %self.config.owner, "gave back unfinished work for another worker");
        }
        Ok(())
    }

    /// Runs ticks until `shutdown` completes, sleeping until the next due instant,
    /// a change, or `max_sleep`. A tick in progress finishes before the loop ends.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), RuntimeError> {
        tokio::pin!(shutdown);
        let released = self.store().release_leases(&self.config.owner).await?;
        if released > 0 {
            info!(released, owner = %self.config.owner, "took back the leases of a previous run");
        }
        let mut listener = None;
        loop {
            if listener.is_none() {
                listener = self.listen().await;
            }
            let tick = self.tick();
            tokio::pin!(tick);
            let report = tokio::select! {
                result = &mut tick => result?,
                () = &mut shutdown => {
                    // Finish what is in hand (record what was delivered), then give
                    // back every lease still held, so another worker takes over at once.
                    self.stopping.store(true, Ordering::SeqCst);
                    tick.await?;
                    return self.release_leases().await;
                }
            };
            if report.planning_behind > 0 {
                // Planning goes on; yield so the API and shutdown get their turn.
                tokio::task::yield_now().await;
                continue;
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
                () = &mut shutdown => return self.release_leases().await,
                () = self.commands.woken() => {}
                () = tokio::time::sleep(sleep) => {}
                heard = announced(&mut listener) => {
                    if let Err(error) = heard {
                        warn!(%error, "no longer hearing other workers' news; looking every {} s until it comes back", self.config.max_sleep.num_seconds());
                        listener = None;
                    }
                }
            }
        }
    }

    /// On PostgreSQL, an ear for other workers' news (new timers, new
    /// messages); `None` on SQLite, or when the database refuses it (said once
    /// per try: the loop then looks every `max_sleep`).
    async fn listen(&self) -> Option<WorkListener> {
        match self.store().work_listener().await {
            Ok(listener) => listener,
            Err(error) => {
                warn!(%error, "cannot hear other workers' news");
                None
            }
        }
    }
}

/// Resolves when another worker (or this one) announced new work; never
/// without a listener.
async fn announced(listener: &mut Option<WorkListener>) -> Result<(), StoreError> {
    match listener {
        Some(listener) => listener.announced().await,
        None => std::future::pending().await,
    }
}
