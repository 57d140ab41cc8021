//! `palabre status`: what the engine has done and has to do (timers, messages
//! per channel, rule errors) and the latest dead letters and rule errors, read
//! from an existing database; and the calendars of the workflows folder that
//! end within 90 days.

use std::fmt::Write as _;

use palabre_core::clock::{Clock, SystemClock};
use palabre_plan::definitions::calendar_endings;
use palabre_store::LedgerEntry;

use super::args::{Format, Sources};
use super::context::{print_table, required_store};

pub async fn run(format: Format, sources: &Sources, out: &mut String) -> anyhow::Result<()> {
    let store = required_store(sources, "nothing has run yet").await?;
    let now = SystemClock.now();
    let counts = store.status(now).await?;
    let calendars = calendar_endings(&sources.workflows, now.date_naive());
    let recent = store.ledger(None, 2000).await?;
    store.close().await;
    let latest = |event: &str| -> Vec<_> {
        recent
            .iter()
            .filter(|e| e.event == event)
            .rev()
            .take(10)
            .collect()
    };
    let dead = latest("dead-letter");
    let rule_errors = latest("rule-error");
    match format {
        Format::Json => {
            let value = serde_json::json!({
                "counts": counts,
                "recent_dead_letters": dead,
                "recent_rule_errors": rule_errors,
                "calendars_ending": calendars,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        }
        Format::Table => {
            let rows = [
                ("timers due later", counts.due_later),
                ("timers late (due, not fired)", counts.late),
                ("timers fired", counts.fired),
                ("timers skipped (missed)", counts.skipped),
                ("messages queued", counts.queued),
                ("messages failed, retrying", counts.retrying),
                ("messages sent", counts.sent),
                ("messages dead-lettered", counts.dead_lettered),
                ("rule errors (default applied)", counts.rule_errors),
            ];
            print_table(
                out,
                &["", "count"],
                rows.iter()
                    .map(|(k, v)| vec![(*k).to_owned(), v.to_string()]),
            );
            if let Some(since) = counts.definitions.invalid_since {
                writeln!(
                    out,
                    "warning: the workflows folder has been invalid since {}: the engine runs on \
                     the last good definitions (kept {}); mend these and they are taken up at once:",
                    since.to_rfc3339(),
                    counts
                        .definitions
                        .in_force_since
                        .map_or_else(|| "?".to_owned(), |t| t.to_rfc3339())
                )?;
                for problem in counts.definitions.problems.lines() {
                    writeln!(out, "  {problem}")?;
                }
            }
            for c in &calendars {
                let file = c.file.display();
                writeln!(
                    out,
                    "warning: {file}:{}:{}: {}",
                    c.line, c.column, c.message
                )?;
            }
            if !counts.channels.is_empty() {
                writeln!(out)?;
                print_table(
                    out,
                    &[
                        "channel",
                        "queued",
                        "retrying",
                        "sent",
                        "delivered",
                        "undelivered",
                        "dead",
                    ],
                    counts.channels.iter().map(|c| {
                        vec![
                            c.channel.clone(),
                            c.queued.to_string(),
                            c.retrying.to_string(),
                            c.sent.to_string(),
                            c.delivered.to_string(),
                            c.undelivered.to_string(),
                            c.dead_lettered.to_string(),
                        ]
                    }),
                );
            }
            print_recent(out, "recent dead letters", &dead)?;
            print_recent(out, "recent rule errors", &rule_errors)?;
        }
    }
    Ok(())
}

/// Lists ledger entries under a title, if there are any.
fn print_recent(out: &mut String, title: &str, entries: &[&LedgerEntry]) -> std::fmt::Result {
    if entries.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{title}:")?;
    for e in entries {
        writeln!(
            out,
            "  {} {} {} {} {}: {}",
            e.at.format("%Y-%m-%d %H:%M"),
            e.workflow.as_deref().unwrap_or("-"),
            e.step.as_deref().unwrap_or("-"),
            e.contact_id.as_deref().unwrap_or("-"),
            e.channel.map_or("-", |c| c.as_str()),
            e.detail
        )?;
    }
    Ok(())
}
