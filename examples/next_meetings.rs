//! Using palabre's engine as a library: load the shipped workflows and print the
//! next occurrence of every meeting, in UTC and in the meeting's own time zone.
//!
//! ```text
//! cargo run --example next_meetings [WORKFLOWS_DIR]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use palabre_core::clock::{Clock, SystemClock};
use palabre_plan::definitions::Definitions;

fn main() -> ExitCode {
    let root = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("workflows"), PathBuf::from);
    let (definitions, diagnostics) = Definitions::load(&root, None, palabre_sms::RULE_FUNCTIONS);
    if diagnostics.has_errors() {
        for d in diagnostics.sorted() {
            eprintln!("{d}\n");
        }
        return ExitCode::FAILURE;
    }
    let now = SystemClock.now();
    for meeting in &definitions.meetings {
        let zone = meeting.recurrence.zone();
        match meeting.recurrence.next_after(now) {
            Some(next) => println!(
                "{:<22} {}  ({} {})",
                meeting.definition.id,
                next.format("%Y-%m-%d %H:%M UTC"),
                next.with_timezone(&zone).format("%Y-%m-%d %H:%M"),
                zone.name()
            ),
            None => println!("{:<22} never again", meeting.definition.id),
        }
    }
    ExitCode::SUCCESS
}
