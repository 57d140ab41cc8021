//! The reminders a `meeting_reminders` rule added to each occurrence, asked once.
//!
//! A [`ReminderMemo`] belongs to one snapshot of the definitions (a reload starts
//! a new one, so a changed script is asked afresh). Planning passes and firings
//! share it: a slow rule is not asked again at every pass, and the step a timer
//! finds when it fires is the one that was planned, even when the rule reads the
//! present. Entries of occurrences long past are dropped ([`ReminderMemo::forget_before`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use palabre_lang::meeting::Step;

/// An occurrence of a workflow: its id, its nominal start and its actual start.
type Key = (String, DateTime<Utc>, DateTime<Utc>);

/// The extra steps decided for each occurrence so far.
#[derive(Debug, Default)]
pub struct ReminderMemo {
    decided: Mutex<HashMap<Key, Arc<[Step]>>>,
}

impl ReminderMemo {
    fn decided(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<[Step]>>> {
        self.decided.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The steps decided for the occurrence of `workflow` nominally at `occurrence`
    /// and starting at `start`, if they were.
    pub fn get(
        &self,
        workflow: &str,
        occurrence: DateTime<Utc>,
        start: DateTime<Utc>,
    ) -> Option<Arc<[Step]>> {
        self.decided()
            .get(&(workflow.to_owned(), occurrence, start))
            .cloned()
    }

    pub fn insert(
        &self,
        workflow: &str,
        occurrence: DateTime<Utc>,
        start: DateTime<Utc>,
        steps: Arc<[Step]>,
    ) {
        self.decided()
            .insert((workflow.to_owned(), occurrence, start), steps);
    }

    /// Drops what was decided for occurrences that started before `instant`.
    pub fn forget_before(&self, instant: DateTime<Utc>) {
        self.decided().retain(|(_, _, start), _| *start >= instant);
    }

    pub fn len(&self) -> usize {
        self.decided().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn keeps_each_occurrence_apart_and_forgets_the_past() {
        let memo = ReminderMemo::default();
        let (early, late) = (at("2026-12-01T09:00:00Z"), at("2026-12-08T09:00:00Z"));
        memo.insert("reunion", early, early, Arc::from(Vec::new()));
        memo.insert("reunion", late, late, Arc::from(Vec::new()));
        assert!(memo.get("reunion", early, early).is_some());
        assert!(
            memo.get("reunion", early, late).is_none(),
            "a moved occurrence is asked again"
        );
        assert!(memo.get("autre", early, early).is_none());
        memo.forget_before(at("2026-12-05T00:00:00Z"));
        assert_eq!(memo.len(), 1);
        assert!(memo.get("reunion", late, late).is_some());
    }
}
