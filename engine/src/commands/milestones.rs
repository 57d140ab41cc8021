//! A milestone's status, as its owner or a coordinator reports it: the CLI
//! (`palabre milestone set`), the API, or the owner's `FAIT <ref>` by SMS.

use palabre_lang::milestones::MilestoneStatus;

use super::{CommandError, Commands};

/// What setting a milestone's status changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MilestoneChange {
    pub previous: MilestoneStatus,
    pub status: MilestoneStatus,
}

impl Commands {
    /// Records `status` for `milestone` of `plan`, with `note` (why, or what was
    /// done), as `actor` did it (the ledger names them; the note stays theirs); the worker's reminders and overdue checks follow it from the next
    /// tick. Refused for a milestone no plan has, or without a note.
    pub async fn set_milestone_status(
        &self,
        plan: &str,
        milestone: &str,
        status: MilestoneStatus,
        note: &str,
        actor: &str,
    ) -> Result<MilestoneChange, CommandError> {
        let definitions = self.definitions();
        if definitions
            .plan(plan)
            .and_then(|p| p.milestone(milestone))
            .is_none()
        {
            return CommandError::not_found(format!("no milestone '{plan}/{milestone}'"));
        }
        if note.trim().is_empty() {
            return CommandError::invalid("a note is needed: say why, or what was done");
        }
        let previous = self
            .store()
            .set_milestone_status_by(plan, milestone, status, note, Some(actor), self.now())
            .await?;
        self.wake();
        Ok(MilestoneChange { previous, status })
    }
}
