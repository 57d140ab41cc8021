//! An occurrence as its coordinator follows it: who is invited, what was sent
//! to each of them on which channel and how far it got, who answered yes or
//! no, who cannot be reached on any channel the meeting uses, and the verdict
//! of the quorum rule on the answers so far. Reading it changes nothing (a
//! failing quorum rule is reported here, and written to the ledger only when an
//! answer makes it count). The quorum is weighed by [`weigh_quorum`], the one
//! place an SMS reply, an answer link and this report ask the rule.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use palabre_core::channel::Channel;
use palabre_lang::contacts::Contact;
use palabre_lang::occurrence::{Changes, occurrence_reference};
use palabre_plan::definitions::{Definitions, Meeting};
use palabre_plan::recipients::{choose_channel, reach};
use palabre_rules::{Answer, QuorumDecision, Subject, meeting_input, with_responses};
use palabre_store::MessageProgress;
use serde::Serialize;

use super::{CommandError, Commands};

/// One occurrence of a meeting, for the people following it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct OccurrenceReport {
    pub workflow: String,
    pub title: String,
    pub place: String,
    /// The nominal start: the occurrence's key.
    pub occurrence: DateTime<Utc>,
    /// When it starts (after a move); `None` when cancelled.
    pub starts_at: Option<DateTime<Utc>>,
    /// iCalendar SEQUENCE: 0 until it is changed.
    pub sequence: u32,
    /// What replies quote (`OUI DEMO-0412`).
    pub reference: String,
    /// Everything queued about it, in the order it was queued.
    pub messages: Vec<MessageProgress>,
    /// The invited, by name.
    pub invited: Vec<Invitee>,
    pub quorum: QuorumVerdict,
}

/// One invited person.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Invitee {
    pub contact_id: String,
    pub name: String,
    /// `yes`, `no`, or `none` (no answer yet).
    pub answer: String,
    /// No channel the meeting's steps use has an address for them.
    pub unreachable: bool,
}

/// What the quorum rule says of the answers so far.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct QuorumVerdict {
    pub reached: bool,
    pub reason: String,
    /// The script that decided, or `None` for the built-in default.
    pub by: Option<String>,
    /// Why the rule failed, when its default was applied.
    pub rule_error: Option<String>,
}

/// The quorum rule of `meeting` asked about `occurrence`, with the answers of
/// the `invited` (`none` for those who did not answer).
pub(crate) fn weigh_quorum(
    definitions: &Definitions,
    meeting: &Meeting,
    occurrence: DateTime<Utc>,
    invited: &[&Contact],
    answers: &BTreeMap<String, String>,
    directory: &Arc<Vec<Contact>>,
    now: DateTime<Utc>,
) -> Answer<QuorumDecision> {
    let def = &meeting.definition;
    let rules = &definitions.rules;
    rules.decide::<QuorumDecision>(
        &def.place,
        def.rules.quorum.as_deref(),
        || {
            with_responses(
                meeting_input(rules.world(), &meeting.facts, occurrence, now),
                invited
                    .iter()
                    .map(|c| (*c, answers.get(&c.id).map_or("none", String::as_str))),
            )
        },
        Subject {
            workflow: &def.id,
            occurrence: Some(occurrence),
        },
        directory,
    )
}

impl Commands {
    /// The report of one occurrence of the meeting `workflow`: refused if there
    /// is no such meeting, or its recurrence has no such occurrence.
    pub async fn occurrence_report(
        &self,
        workflow: &str,
        occurrence: DateTime<Utc>,
    ) -> Result<OccurrenceReport, CommandError> {
        let definitions = self.definitions();
        let Some(meeting) = definitions.meeting(workflow) else {
            return CommandError::not_found(format!("no meeting workflow '{workflow}'"));
        };
        if !meeting.recurrence.is_occurrence(occurrence) {
            return CommandError::not_found(format!(
                "'{workflow}' has no occurrence at {}",
                occurrence.to_rfc3339()
            ));
        }
        let def = &meeting.definition;
        let store = self.store();
        let now = self.now();
        let directory = Arc::new(store.contacts().await?);
        let invited = reach(&def.recipients, &def.place, &directory);
        let answers = store.responses(workflow, occurrence).await?;
        let messages = store.occurrence_messages(workflow, occurrence).await?;
        let changes = Changes::new(store.occurrence_changes().await?);
        let change = changes.get(workflow, occurrence);
        let channels: Vec<Channel> = def.steps.iter().flat_map(|s| s.channels.clone()).collect();
        let quorum = weigh_quorum(
            &definitions,
            meeting,
            occurrence,
            &invited,
            &answers,
            &directory,
            now,
        );
        Ok(OccurrenceReport {
            workflow: def.id.clone(),
            title: def.title.clone(),
            place: def.place.clone(),
            occurrence,
            starts_at: change.map_or(Some(occurrence), |c| c.starts_at),
            sequence: change.map_or(0, |c| c.sequence),
            reference: occurrence_reference(&def.id, occurrence),
            messages,
            invited: invited
                .iter()
                .map(|c| Invitee {
                    contact_id: c.id.clone(),
                    name: c.name.clone(),
                    answer: answers
                        .get(&c.id)
                        .cloned()
                        .unwrap_or_else(|| "none".to_owned()),
                    unreachable: choose_channel(c, &channels).is_none(),
                })
                .collect(),
            quorum: QuorumVerdict {
                reached: quorum.decision.reached,
                reason: quorum.decision.reason,
                by: quorum.by,
                rule_error: quorum.failure.map(|f| f.to_string()),
            },
        })
    }
}
