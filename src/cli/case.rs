//! `palabre case`: disputes on an escalation ladder, opened and acted on through
//! the engine's commands as the operator (the sending is left to `serve`), the
//! list a coordinator follows, and one case shown with its whole history from
//! the ledger (who did what included); its description only with `--reveal`,
//! which the ledger records (`revealed`, with the operator).

use std::fmt::Write as _;

use anyhow::bail;
use chrono::{DateTime, Utc};
use palabre_core::clock::{Clock, SystemClock};
use palabre_engine::commands::{CaseAction, NewCase};
use palabre_lang::escalation::CaseState;
use palabre_store::{CaseFilter, LedgerEntry, ListedCase, Store};

use super::args::{CaseCommand, Format, Sources};
use super::context::{
    load_definitions, offline_commands, print_table, read_if_exists, refused, required_store,
};

pub async fn run(command: CaseCommand, operator: &str, out: &mut String) -> anyhow::Result<()> {
    let (sources, id, action) = match command {
        CaseCommand::Open {
            workflow,
            category,
            place,
            parties,
            severity,
            description,
            sources,
        } => {
            let new = NewCase {
                workflow,
                category,
                place,
                parties,
                severity,
                description,
            };
            return open(new, operator, &sources, out).await;
        }
        CaseCommand::List {
            all,
            overdue,
            workflow,
            place,
            format,
            sources,
        } => {
            let filter = CaseFilter {
                all,
                overdue_at: overdue.then(|| SystemClock.now()),
                workflow,
                within: place.into_iter().collect(),
            };
            return list(filter, format, &sources, out).await;
        }
        CaseCommand::Show {
            id,
            reveal,
            sources,
        } => return show(&id, reveal, operator, &sources, out).await,
        CaseCommand::Ack(n) => (n.sources, n.id, CaseAction::Acknowledge(n.note)),
        CaseCommand::Note(n) => (n.sources, n.id, CaseAction::Note(n.note)),
        CaseCommand::Resolve(n) => (n.sources, n.id, CaseAction::Resolve(n.note)),
        CaseCommand::Reopen(n) => (n.sources, n.id, CaseAction::Reopen(n.note)),
        CaseCommand::Escalate(n) => (n.sources, n.id, CaseAction::Escalate(n.note)),
    };
    let commands = offline_commands(&sources).await?;
    let acted = commands.act_on_case(&id, action, operator).await;
    let case = refused(&commands, acted).await?;
    writeln!(out, "{}: {} at level {}", case.id, case.state, case.level)?;
    Ok(())
}

async fn open(
    new: NewCase,
    operator: &str,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let commands = offline_commands(sources).await?;
    let opened = commands.open_case(new, operator).await;
    let case = refused(&commands, opened).await?;
    writeln!(out, "{} opened at level {}", case.id, case.level)?;
    Ok(())
}

/// A case as `palabre case list` prints it (never its description).
struct CaseRow {
    id: String,
    workflow: String,
    level: usize,
    level_id: String,
    state: CaseState,
    place: String,
    category: String,
    severity: i64,
    opened: DateTime<Utc>,
    age_days: i64,
    next_deadline: Option<DateTime<Utc>>,
}

async fn list(
    filter: CaseFilter,
    format: Format,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let definitions = load_definitions(&sources.workflows)?;
    if let Some(place) = filter.within.first()
        && definitions.places.get(place).is_none()
    {
        bail!("{}", definitions.places.unknown_message(place));
    }
    if let Some(workflow) = &filter.workflow
        && definitions.ladder(workflow).is_none()
    {
        bail!("no escalation ladder '{workflow}'");
    }
    // Without a database no case was opened.
    let listed: Vec<ListedCase> = read_if_exists(sources, async |store: &Store| {
        store.list_cases(&filter).await
    })
    .await?;
    let now = SystemClock.now();
    let rows: Vec<CaseRow> = listed
        .into_iter()
        .map(
            |ListedCase {
                 case,
                 next_deadline,
             }| CaseRow {
                level_id: definitions
                    .ladder(&case.workflow)
                    .and_then(|l| l.level(case.level))
                    .map_or_else(|| "?".to_owned(), |l| l.id.clone()),
                age_days: (now - case.opened).num_days(),
                id: case.id,
                workflow: case.workflow,
                level: case.level,
                state: case.state,
                place: case.place,
                category: case.category,
                severity: case.severity,
                opened: case.opened,
                next_deadline,
            },
        )
        .collect();
    match format {
        Format::Json => {
            let rows: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id,
                        "workflow": r.workflow,
                        "level": r.level,
                        "level_id": r.level_id,
                        "state": r.state,
                        "place": r.place,
                        "category": r.category,
                        "severity": r.severity,
                        "opened": r.opened,
                        "age_days": r.age_days,
                        "next_deadline": r.next_deadline,
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        }
        Format::Table => {
            let local = |row: &CaseRow, at: DateTime<Utc>| match definitions.ladder(&row.workflow) {
                Some(ladder) => at
                    .with_timezone(&ladder.zone)
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
                None => at.format("%Y-%m-%d %H:%M UTC").to_string(),
            };
            print_table(
                out,
                &[
                    "id",
                    "ladder",
                    "level",
                    "state",
                    "place",
                    "category",
                    "age",
                    "next deadline",
                ],
                rows.iter().map(|r| {
                    let deadline = r.next_deadline.map_or_else(String::new, |at| {
                        let late = if at < now { " (passed)" } else { "" };
                        format!("{}{late}", local(r, at))
                    });
                    vec![
                        r.id.clone(),
                        r.workflow.clone(),
                        r.level_id.clone(),
                        r.state.to_string(),
                        r.place.clone(),
                        r.category.clone(),
                        format!("{} d", r.age_days),
                        deadline,
                    ]
                }),
            );
        }
    }
    Ok(())
}

/// `case show`; with `reveal`, the description too, and a `revealed` ledger
/// entry naming `operator` (never the description itself).
async fn show(
    id: &str,
    reveal: bool,
    operator: &str,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let store = required_store(sources, "no case yet").await?;
    let Some(case) = store.case(id).await? else {
        bail!("no case '{id}'");
    };
    if reveal {
        // Accounted for before it is shown, and in the case's own history.
        let entry = LedgerEntry::case_reveal(
            SystemClock.now(),
            &[(&case.workflow, &case.id)],
            &format!("shown by `palabre case show --reveal` to {operator}"),
        );
        store.append_ledger(&[entry]).await?;
    }
    let history = store.ledger_about(&case.workflow, &case.id).await?;
    store.close().await;
    writeln!(
        out,
        "{} ({}): {} at {}, severity {}, {} party(ies); level {}, {}; opened {}",
        case.id,
        case.workflow,
        case.category,
        case.place,
        case.severity,
        case.parties.len(),
        case.level,
        case.state,
        case.opened.to_rfc3339()
    )?;
    if reveal {
        writeln!(out, "description: {}", case.description)?;
    }
    for e in &history {
        writeln!(
            out,
            "  {} {:<18} {}{}",
            e.at.format("%Y-%m-%d %H:%M"),
            e.event,
            e.contact_id
                .as_deref()
                .map(|c| format!("{c}: "))
                .unwrap_or_default(),
            e.detail
        )?;
    }
    Ok(())
}
