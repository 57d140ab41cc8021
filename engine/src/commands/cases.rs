//! Cases on an escalation ladder: opening one, acting on it (acknowledge, note,
//! resolve, reopen, escalate by hand), and what a missed deadline does.
//!
//! Every action is one store transaction: the case row, its deadline timers (the
//! old ones dropped, the new ones planned, never duplicated), the messages to the
//! level it reaches and the ledger entries. A case reaching a level asks
//! `escalation_deadlines` for that level's deadlines, counted in working time; a
//! missed deadline asks `escalation_missed` how far to climb.
//!
//! The ledger says in English what happened and who did it. The level's
//! responders get facts their template words in their language (`case.why`, the
//! title of the level it came from, a person's note as written): never an actor,
//! a level id or the ledger's words.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::info;

use super::{CommandError, Commands};
use crate::messages::{queue_messages, rule_failure_entry};
use palabre_lang::escalation::{Arrival, Case, CaseState, Deadline, Ladder};
use palabre_lang::templates::{CaseFacts, MessageContext, OccurrenceFacts, WorkflowFacts};
use palabre_plan::definitions::{CASE_TEMPLATE, Definitions};
use palabre_plan::planner::{Planner, Slot};
use palabre_plan::recipients::reach;
use palabre_rules::{DeadlinesDecision, EntryDecision, RuleFailure, Subject, case_input};
use palabre_store::{CaseWrite, DropTimers, LedgerEntry, LedgerEvent, PlannedTimer, QueuedMessage};

/// A dispute to open.
#[derive(Debug, Clone)]
pub struct NewCase {
    /// The ladder's id.
    pub workflow: String,
    pub category: String,
    pub place: String,
    /// Contact ids of the parties.
    pub parties: Vec<String>,
    /// 1 (low) to 5 (grave).
    pub severity: i64,
    /// Stays in the database; never sent.
    pub description: String,
}

/// What someone does to a case; the texts go to the ledger.
#[derive(Debug, Clone)]
pub enum CaseAction {
    Acknowledge(String),
    Note(String),
    Resolve(String),
    Reopen(String),
    Escalate(String),
}

/// The longest description kept with a case.
const MAX_DESCRIPTION: usize = 10_000;

/// Why a case reaches a level: the ledger's words, and what its responders'
/// template is told.
struct Why<'a> {
    arrival: Arrival,
    /// The title of the level it came from (climbs), or empty.
    from_level: &'a str,
    /// A person's note, as written (sent by hand, reopened), or empty.
    note: &'a str,
    /// The ledger's detail, in English; never sent.
    ledger: &'a str,
}

/// What reaching a level writes: its deadline timers, the messages to its
/// responders, the ledger entry.
struct Reached {
    timers: Vec<PlannedTimer>,
    messages: Vec<QueuedMessage>,
    ledger: Vec<LedgerEntry>,
}

impl Commands {
    /// Records that the descriptions of `cases` (ladder, reference) were shown,
    /// `how` and to whom (`read through GET /cases by hotline (token …)`).
    pub async fn record_case_reveal(
        &self,
        cases: &[(&str, &str)],
        how: &str,
    ) -> Result<(), CommandError> {
        let entry = LedgerEntry::case_reveal(self.now(), cases, how);
        self.store().append_ledger(&[entry]).await?;
        Ok(())
    }
}

impl Commands {
    /// Opens a dispute at the level the entry rule chooses; its responders are told.
    pub async fn open_case(&self, new: NewCase, actor: &str) -> Result<Case, CommandError> {
        let definitions = self.definitions();
        let now = self.now();
        let Some(ladder) = definitions.ladder(&new.workflow) else {
            return CommandError::not_found(format!("no escalation ladder '{}'", new.workflow));
        };
        let def = &ladder.definition;
        if !def.categories.contains(&new.category) {
            return CommandError::invalid(format!(
                "unknown category '{}': one of {}",
                new.category,
                def.categories.join(", ")
            ));
        }
        if definitions.places.get(&new.place).is_none() {
            return CommandError::invalid(definitions.places.unknown_message(&new.place));
        }
        if !palabre_lang::places::Places::contains(&def.place, &new.place) {
            return CommandError::invalid(format!(
                "'{}' is outside this ladder's place '{}'",
                new.place, def.place
            ));
        }
        if !(1..=5).contains(&new.severity) {
            return CommandError::invalid("severity goes from 1 (low) to 5 (grave)");
        }
        let mut new = new;
        // A party named twice is one party.
        let mut seen = std::collections::BTreeSet::new();
        new.parties.retain(|p| seen.insert(p.clone()));
        if new.description.trim().is_empty() || new.description.len() > MAX_DESCRIPTION {
            return CommandError::invalid(format!(
                "a description is needed, at most {MAX_DESCRIPTION} bytes"
            ));
        }
        let planner = Planner::new(&definitions, Arc::new(self.store().contacts().await?));
        let directory = planner.directory();
        if let Some(unknown) = new
            .parties
            .iter()
            .find(|p| directory.iter().all(|c| &c.id != *p))
        {
            return CommandError::invalid(format!("no contact '{unknown}' in the directory"));
        }
        let mut case = Case {
            id: String::new(),
            workflow: new.workflow,
            category: new.category,
            place: new.place,
            parties: new.parties,
            severity: new.severity,
            description: new.description,
            level: 0,
            state: CaseState::Open,
            opened: now,
            updated: now,
        };
        let rules = &definitions.rules;
        let subject = Subject {
            workflow: &def.id,
            occurrence: Some(now),
        };
        let entry = rules.decide::<EntryDecision>(
            &case.place,
            None,
            || case_input(rules.world(), ladder, &case, None, now),
            subject,
            directory,
        );
        let mut failures: Vec<RuleFailure> = entry.failure.into_iter().collect();
        if let Some(level) = &entry.decision.level {
            match ladder.level_index(level) {
                Some(index) => case.level = index,
                None => failures.push(rules.reject::<EntryDecision>(
                    entry.by.as_deref().unwrap_or_default(),
                    subject,
                    format!("no level '{level}' in the ladder '{}'", def.id),
                )),
            }
        }
        let reason = if entry.decision.reason.is_empty() {
            "opened".to_owned()
        } else {
            entry.decision.reason
        };
        let prefix: String = def
            .id
            .split('-')
            .filter_map(|w| w.chars().next())
            .collect::<String>()
            .to_uppercase();
        let id = self
            .store()
            .open_case(&case, &prefix, |id| {
                let mut opened = case.clone();
                opened.id = id.to_owned();
                let why = Why {
                    arrival: Arrival::Opened,
                    from_level: "",
                    note: "",
                    ledger: &reason,
                };
                let reached = self.reach_level(&planner, &definitions, ladder, &opened, &why, now);
                let mut ledger = vec![
                    LedgerEntry::new(
                        now,
                        LedgerEvent::CaseOpened,
                        format!(
                            "{} at {}, severity {}, {} party(ies), by {actor}",
                            opened.category,
                            opened.place,
                            opened.severity,
                            opened.parties.len()
                        ),
                    )
                    .about(&opened.workflow, id),
                ];
                ledger.extend(reached.ledger);
                ledger.extend(failures.iter().map(|f| rule_failure_entry(f.clone(), now)));
                (reached.timers, reached.messages, ledger)
            })
            .await?;
        case.id = id;
        info!(case = %case.id, level = case.level, "case opened");
        self.wake();
        Ok(case)
    }

    /// Applies one action to a case.
    pub async fn act_on_case(
        &self,
        id: &str,
        action: CaseAction,
        actor: &str,
    ) -> Result<Case, CommandError> {
        let definitions = self.definitions();
        let now = self.now();
        let Some(mut case) = self.store().case(id).await? else {
            return CommandError::not_found(format!("no case '{id}'"));
        };
        let Some(ladder) = definitions.ladder(&case.workflow) else {
            return CommandError::not_found(format!(
                "the ladder '{}' is no longer defined",
                case.workflow
            ));
        };
        let seen = case.updated;
        case.updated = now;
        let entry =
            |event, detail: String| LedgerEntry::new(now, event, detail).about(&case.workflow, id);
        let (drop, reached, ledger) = match action {
            CaseAction::Acknowledge(note) => {
                if case.state != CaseState::Open {
                    return CommandError::conflict(format!("the case is {}", case.state));
                }
                case.state = CaseState::Acknowledged;
                let level = ladder.level(case.level).map_or("?", |l| l.id.as_str());
                let detail = format!("at level {level} by {actor}: {note}");
                (
                    DropTimers::Acknowledge,
                    None,
                    vec![entry(LedgerEvent::CaseAcknowledged, detail)],
                )
            }
            CaseAction::Note(note) => (
                DropTimers::None,
                None,
                vec![entry(LedgerEvent::CaseNote, format!("by {actor}: {note}"))],
            ),
            CaseAction::Resolve(note) => {
                if case.state == CaseState::Resolved {
                    return CommandError::conflict("the case is already resolved");
                }
                case.state = CaseState::Resolved;
                (
                    DropTimers::All,
                    None,
                    vec![entry(
                        LedgerEvent::CaseResolved,
                        format!("by {actor}: {note}"),
                    )],
                )
            }
            CaseAction::Reopen(note) => {
                if case.state != CaseState::Resolved {
                    return CommandError::conflict(format!(
                        "the case is {}, not resolved",
                        case.state
                    ));
                }
                case.state = CaseState::Open;
                let planner = Planner::new(&definitions, Arc::new(self.store().contacts().await?));
                // The responders read the note, never who reopened it.
                let why = Why {
                    arrival: Arrival::Reopened,
                    from_level: "",
                    note: &note,
                    ledger: &format!("reopened: {note}"),
                };
                let reached = self.reach_level(&planner, &definitions, ladder, &case, &why, now);
                (
                    DropTimers::All,
                    Some(reached),
                    vec![entry(
                        LedgerEvent::CaseReopened,
                        format!("by {actor}: {note}"),
                    )],
                )
            }
            CaseAction::Escalate(note) => {
                return match self
                    .climb_case_by(id, 1, &note, "by hand", Arrival::SentByHand, Some(actor))
                    .await?
                {
                    Some(case) => Ok(case),
                    None => CommandError::conflict("the case is resolved: reopen it first"),
                };
            }
        };
        self.save_case(&case, seen, drop, reached, ledger).await?;
        self.wake();
        Ok(case)
    }

    /// Moves a case `climb` levels up after a missed deadline (0: its level is
    /// told again; the top level stays the top), planning that level's deadlines.
    /// Its responders are told which deadline was `missed`; `reason` (the
    /// worker's [`Deadline::missed`] words) and `how` go to the ledger.
    /// `None` if there is no such case, or it is resolved (then nothing happens).
    pub(crate) async fn climb_case(
        &self,
        id: &str,
        climb: u32,
        missed: Deadline,
        reason: &str,
        how: &str,
    ) -> Result<Option<Case>, CommandError> {
        self.climb_case_by(id, climb, reason, how, Arrival::missed(missed), None)
            .await
    }

    /// [`Commands::climb_case`] for `arrival`, by `actor` when a person asked it:
    /// the ledger entry names them, the message to the level's responders does
    /// not. Sent by hand, `reason` is their note, which the responders read as
    /// written.
    async fn climb_case_by(
        &self,
        id: &str,
        climb: u32,
        reason: &str,
        how: &str,
        arrival: Arrival,
        actor: Option<&str>,
    ) -> Result<Option<Case>, CommandError> {
        let definitions = self.definitions();
        let now = self.now();
        let Some(mut case) = self.store().case(id).await? else {
            return Ok(None);
        };
        let Some(ladder) = definitions.ladder(&case.workflow) else {
            return Ok(None);
        };
        if case.state == CaseState::Resolved {
            return Ok(None);
        }
        let seen = case.updated;
        let top = ladder.definition.levels.len().saturating_sub(1);
        let from = case.level;
        case.level = (case.level + usize::try_from(climb).unwrap_or(usize::MAX)).min(top);
        case.state = CaseState::Open;
        case.updated = now;
        let planner = Planner::new(&definitions, Arc::new(self.store().contacts().await?));
        let from = ladder.level(from);
        let ledger = format!(
            "from level {} ({how}): {reason}",
            from.map_or("?", |l| l.id.as_str())
        );
        let why = Why {
            arrival,
            from_level: from.map_or("", |l| l.title.as_str()),
            note: if arrival == Arrival::SentByHand {
                reason
            } else {
                ""
            },
            ledger: &ledger,
        };
        let mut reached = self.reach_level(&planner, &definitions, ladder, &case, &why, now);
        if let (Some(actor), Some(entry)) = (actor, reached.ledger.first_mut()) {
            entry.detail.push_str(&format!("; by {actor}"));
        }
        self.save_case(&case, seen, DropTimers::All, Some(reached), Vec::new())
            .await?;
        info!(case = %id, level = case.level, "case escalated");
        self.wake();
        Ok(Some(case))
    }

    async fn save_case(
        &self,
        case: &Case,
        seen: DateTime<Utc>,
        drop: DropTimers,
        reached: Option<Reached>,
        mut ledger: Vec<LedgerEntry>,
    ) -> Result<(), CommandError> {
        let (timers, messages) = match reached {
            Some(reached) => {
                ledger.extend(reached.ledger);
                (reached.timers, reached.messages)
            }
            None => (Vec::new(), Vec::new()),
        };
        let write = CaseWrite {
            timers: &timers,
            messages: &messages,
            ledger: &ledger,
        };
        if !self.store().update_case(case, seen, drop, write).await? {
            return CommandError::conflict("the case was changed at the same time; try again");
        }
        Ok(())
    }

    /// What `case` reaching its current level writes: the level's deadlines (as the
    /// deadlines rule sets them, in working time), the message to its responders,
    /// the ledger entry.
    fn reach_level(
        &self,
        planner: &Planner<'_>,
        definitions: &Definitions,
        ladder: &Ladder,
        case: &Case,
        why: &Why<'_>,
        now: DateTime<Utc>,
    ) -> Reached {
        let def = &ladder.definition;
        let Some(level) = ladder.level(case.level) else {
            return Reached {
                timers: Vec::new(),
                messages: Vec::new(),
                ledger: Vec::new(),
            };
        };
        let rules = &definitions.rules;
        let answer = rules.decide::<DeadlinesDecision>(
            &case.place,
            None,
            || case_input(rules.world(), ladder, case, None, now),
            Subject {
                workflow: &def.id,
                occurrence: Some(case.opened),
            },
            planner.directory(),
        );
        let failure = answer.failure.map(|f| rule_failure_entry(f, now));
        let deadlines = answer.decision;
        let calendars = rules.world().calendars();
        let acknowledge_by = ladder.add_working_time(
            now,
            deadlines.acknowledge.unwrap_or(level.acknowledge_within),
            calendars,
        );
        let resolve_by = ladder.add_working_time(
            now,
            deadlines.resolve.unwrap_or(level.resolve_within),
            calendars,
        );
        let timers = [
            (Deadline::Acknowledge, acknowledge_by),
            (Deadline::Resolve, resolve_by),
        ]
        .map(|(deadline, due)| PlannedTimer {
            workflow: def.id.clone(),
            occurrence: case.opened,
            step: deadline.step(&case.id, case.level, now),
            due,
        })
        .to_vec();
        let local = |t: DateTime<Utc>| {
            t.with_timezone(&ladder.zone)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        };
        let place_name = definitions
            .places
            .get(&case.place)
            .map_or_else(|| case.place.clone(), |p| p.name.clone());
        let facts = CaseFacts {
            reference: case.id.clone(),
            category: case.category.clone(),
            place_name: place_name.clone(),
            level: level.title.clone(),
            severity: case.severity,
            acknowledge_by: local(acknowledge_by),
            resolve_by: local(resolve_by),
            why: why.arrival.as_str().to_owned(),
            from_level: why.from_level.to_owned(),
            note: why.note.to_owned(),
        };
        let step = format!("{}/L{}", case.id, case.level);
        let slot = Slot {
            due: now,
            zone: ladder.zone,
            workflow: &def.id,
            occurrence: case.opened,
            step: &step,
            template: CASE_TEMPLATE,
            channels: &def.channels,
        };
        let scope = Ladder::scope_place(level, &case.place);
        let responders = reach(&level.responders, &scope, planner.directory());
        let shared = MessageContext {
            case: Some(facts),
            ..MessageContext::new(
                WorkflowFacts {
                    id: def.id.clone(),
                    title: def.title.clone(),
                    venue: String::new(),
                    place: case.place.clone(),
                    place_name,
                },
                OccurrenceFacts {
                    timezone: ladder.zone.name().to_owned(),
                    reference: case.id.clone(),
                    ..OccurrenceFacts::default()
                },
                &step,
            )
        };
        let planned = responders
            .into_iter()
            .map(|contact| planner.prepare(&slot, contact, &shared.to(contact)))
            .collect();
        let key = format!("{}@{}", step, now.timestamp_millis());
        let (messages, unreachable) = queue_messages(planned, &key, now, |_| None);
        let mut ledger = vec![
            LedgerEntry::new(
                now,
                LedgerEvent::CaseEscalated,
                format!(
                    "level {} ({}): {}; {} responder(s) told; acknowledge by {}, resolve by {}",
                    level.id,
                    level.title,
                    why.ledger,
                    messages.len(),
                    local(acknowledge_by),
                    local(resolve_by)
                ),
            )
            .about(&def.id, &case.id),
        ];
        ledger.extend(unreachable);
        ledger.extend(failure);
        Reached {
            timers,
            messages,
            ledger,
        }
    }
}
