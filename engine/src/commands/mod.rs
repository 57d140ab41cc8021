//! Commands: every change that people or messages ask of the engine, in one
//! service. A coordinator's move or cancellation of an occurrence, a milestone's
//! status, a dispute's actions, an inbound SMS and a delivery receipt all go
//! through [`Commands`], whether they come from the CLI, the API or a gateway's
//! webhook: the checks are made once, here. Each refusal is a typed
//! [`CommandError`], which the API maps once to an HTTP status and the CLI to its
//! exit code. A command writes through the store in one transaction and wakes
//! the worker; it never delivers anything itself.

mod answers;
mod attendance;
mod calls;
mod cases;
mod directory;
mod inbound;
mod milestones;
mod occurrences;

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use palabre_core::clock::Clock;
use palabre_core::connector::Redial;
use palabre_plan::definitions::Definitions;
use palabre_store::{Store, StoreError};
use tokio::sync::Notify;

use crate::answer_links::AnswerLinkSigner;

pub use answers::{ANSWER_PAGE_TEMPLATE, AnswerPage};
pub use attendance::{Invitee, OccurrenceReport, QuorumVerdict};
pub use calls::{CallScript, KeyOutcome};
pub use cases::{CaseAction, NewCase};
pub use directory::{DirectoryImport, ImportProblem};
pub use inbound::InboundOutcome;
pub(crate) use inbound::{PROVIDER_OPT_OUT, about_sent};
pub use milestones::MilestoneChange;
pub use occurrences::ChangeReport;

/// Why a command was refused, or could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// What the command names does not exist: a workflow, an occurrence, a case,
    /// a milestone.
    #[error("{0}")]
    NotFound(String),
    /// It exists, but its state does not allow this now: already started,
    /// resolved, changed by someone else at the same time.
    #[error("{0}")]
    Conflict(String),
    /// The request itself is wrong: a start in the past, an unknown category, an
    /// empty note.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CommandError {
    pub(crate) fn not_found<T>(message: impl Into<String>) -> Result<T, CommandError> {
        Err(CommandError::NotFound(message.into()))
    }

    pub(crate) fn conflict<T>(message: impl Into<String>) -> Result<T, CommandError> {
        Err(CommandError::Conflict(message.into()))
    }

    pub(crate) fn invalid<T>(message: impl Into<String>) -> Result<T, CommandError> {
        Err(CommandError::Invalid(message.into()))
    }
}

/// The engine's command service: the store, the definitions in force (hot reload
/// replaces them), the clock, and the bell that wakes the worker. Cheap to clone;
/// every clone is the same service.
#[derive(Clone)]
pub struct Commands {
    shared: Arc<Shared>,
}

struct Shared {
    store: Store,
    definitions: RwLock<Arc<Definitions>>,
    clock: Arc<dyn Clock>,
    wake: Notify,
    /// Set when the server has a public address: emails carry answer links.
    answer_links: RwLock<Option<Arc<AnswerLinkSigner>>>,
    /// How calls nobody took are made again (the voice connector's).
    redial: Option<Redial>,
}

impl Commands {
    pub fn new(store: Store, definitions: Definitions, clock: Arc<dyn Clock>) -> Commands {
        Commands::redialling(store, definitions, clock, None)
    }

    /// [`Commands::new`], with calls nobody took made again as `redial` says.
    pub fn redialling(
        store: Store,
        definitions: Definitions,
        clock: Arc<dyn Clock>,
        redial: Option<Redial>,
    ) -> Commands {
        Commands {
            shared: Arc::new(Shared {
                store,
                definitions: RwLock::new(Arc::new(definitions)),
                clock,
                wake: Notify::new(),
                answer_links: RwLock::new(None),
                redial,
            }),
        }
    }

    /// Makes meeting messages carry answer links signed by `signer`, and lets
    /// [`Commands::answer_page`] read them.
    pub fn set_answer_links(&self, signer: AnswerLinkSigner) {
        *self
            .shared
            .answer_links
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(signer));
    }

    /// The answer links' signer, when the server has a public address.
    pub fn answer_links(&self) -> Option<Arc<AnswerLinkSigner>> {
        self.shared
            .answer_links
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |l| l.clone())
    }

    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The engine's clock's present.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// The definitions in force (hot reload may replace them).
    pub fn definitions(&self) -> Arc<Definitions> {
        self.shared
            .definitions
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |d| d.clone())
    }

    /// Puts new definitions in force (hot reload); the worker plans with them at
    /// its next tick.
    pub fn replace_definitions(&self, definitions: Definitions) {
        let mut slot = self
            .shared
            .definitions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = Arc::new(definitions);
        drop(slot);
        self.wake();
    }

    /// Removes the texts past the keeping times of `retention.yaml`, as of now;
    /// the counts go to the ledger.
    pub async fn purge_expired(&self) -> Result<palabre_store::retention::Expired, CommandError> {
        let now = self.now();
        let retention = self.definitions().retention;
        let days = |n: u32| now - chrono::TimeDelta::days(i64::from(n));
        let cutoffs = palabre_store::retention::ExpiryCutoffs {
            message_texts: days(retention.message_texts_days),
            ledger_details: days(retention.ledger_details_days),
            resolved_case_descriptions: days(retention.resolved_case_descriptions_days),
        };
        Ok(self.store().purge_expired(now, cutoffs).await?)
    }

    /// Wakes a sleeping worker (something changed).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Completes when [`Commands::wake`] is called.
    pub(crate) async fn woken(&self) {
        self.shared.wake.notified().await;
    }
}
