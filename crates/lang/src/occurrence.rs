//! Occurrences of a meeting: the reference people quote for one, and the changes
//! (moved, cancelled) a coordinator or a rule made to it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

/// A short, stable reference for an occurrence, that people quote in replies.
pub fn occurrence_reference(workflow: &str, occurrence: DateTime<Utc>) -> String {
    let hash = palabre_core::fingerprint::fnv1a([
        workflow.as_bytes(),
        &occurrence.timestamp().to_le_bytes(),
    ]);
    format!("{:04}", hash % 10_000)
}

/// A coordinator's change to one occurrence: moved to `starts_at`, or cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccurrenceChange {
    pub workflow: String,
    /// The nominal start, as the recurrence gives it: the key of the occurrence.
    pub occurrence: DateTime<Utc>,
    /// The new start; `None` when cancelled.
    pub starts_at: Option<DateTime<Utc>>,
    /// iCalendar SEQUENCE of the latest change: 1, 2, ...
    pub sequence: u32,
    pub reason: String,
}

impl OccurrenceChange {
    /// The notice template and the id its messages go under (`moved-2`, `cancelled-1`).
    pub fn notice(&self) -> (&'static str, String) {
        match self.starts_at {
            Some(_) => ("meeting-moved", format!("moved-{}", self.sequence)),
            None => ("meeting-cancelled", format!("cancelled-{}", self.sequence)),
        }
    }
}

/// All occurrence changes, by workflow and nominal start.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    by_occurrence: HashMap<(String, DateTime<Utc>), OccurrenceChange>,
}

impl Changes {
    pub fn new(changes: impl IntoIterator<Item = OccurrenceChange>) -> Changes {
        Changes {
            by_occurrence: changes
                .into_iter()
                .map(|c| ((c.workflow.clone(), c.occurrence), c))
                .collect(),
        }
    }

    pub fn get(&self, workflow: &str, occurrence: DateTime<Utc>) -> Option<&OccurrenceChange> {
        self.by_occurrence.get(&(workflow.to_owned(), occurrence))
    }

    /// Records a change (preview applies rule decisions as it goes).
    pub fn insert(&mut self, change: OccurrenceChange) {
        self.by_occurrence
            .insert((change.workflow.clone(), change.occurrence), change);
    }

    /// The changes made to `workflow`'s occurrences.
    pub fn of<'c>(&'c self, workflow: &'c str) -> impl Iterator<Item = &'c OccurrenceChange> + 'c {
        self.by_occurrence
            .values()
            .filter(move |c| c.workflow == workflow)
    }
}
