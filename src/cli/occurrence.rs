//! `palabre occurrence move|cancel`: changes one occurrence of a meeting through
//! the engine's commands, against the database; a running server picks up the
//! new timers and notices.

use std::fmt::Write as _;

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::args::Sources;
use super::context::{offline_commands, refused};

/// Moves the occurrence at `at` to `to`, or cancels it without `to`, as `operator`.
pub async fn change(
    workflow: &str,
    at: &str,
    to: Option<&str>,
    reason: &str,
    operator: &str,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let occurrence = parse_instant("at", at)?;
    let new_start = to.map(|to| parse_instant("to", to)).transpose()?;
    let commands = offline_commands(sources).await?;
    let changed = commands
        .change_occurrence_by(workflow, occurrence, new_start, reason, operator)
        .await;
    let report = refused(&commands, changed).await?;
    if !report.changed {
        writeln!(
            out,
            "{workflow} {}: already starts at that time (sequence {}): nothing changed, nobody told again",
            occurrence.to_rfc3339(),
            report.sequence
        )?;
        return Ok(());
    }
    let what = if new_start.is_some() {
        "moved"
    } else {
        "cancelled"
    };
    if report.notified == 0 && report.unreachable == 0 {
        writeln!(
            out,
            "{workflow} {}: {what} (sequence {}); no notice: nobody had been told of it yet",
            occurrence.to_rfc3339(),
            report.sequence,
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{workflow} {}: {what} (sequence {}); notice queued for {} participant(s), {} unreachable",
        occurrence.to_rfc3339(),
        report.sequence,
        report.notified,
        report.unreachable
    )?;
    Ok(())
}

fn parse_instant(flag: &str, text: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| {
            format!("--{flag} '{text}': write an RFC 3339 instant, e.g. 2026-12-09T09:00:00Z")
        })
}
