//! `palabre case`: disputes on an escalation ladder, opened and acted on through
//! the engine's commands (the sending is left to `serve`), and one case shown
//! with its whole history from the ledger.

use std::fmt::Write as _;

use anyhow::bail;
use palabre_engine::commands::{CaseAction, NewCase};

use super::args::{CaseCommand, Sources};
use super::context::{actor, offline_commands, refused, required_store};

pub async fn run(command: CaseCommand, out: &mut String) -> anyhow::Result<()> {
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
            return open(new, &sources, out).await;
        }
        CaseCommand::Show {
            id,
            reveal,
            sources,
        } => return show(&id, reveal, &sources, out).await,
        CaseCommand::Ack(n) => (n.sources, n.id, CaseAction::Acknowledge(n.note)),
        CaseCommand::Note(n) => (n.sources, n.id, CaseAction::Note(n.note)),
        CaseCommand::Resolve(n) => (n.sources, n.id, CaseAction::Resolve(n.note)),
        CaseCommand::Reopen(n) => (n.sources, n.id, CaseAction::Reopen(n.note)),
        CaseCommand::Escalate(n) => (n.sources, n.id, CaseAction::Escalate(n.note)),
    };
    let commands = offline_commands(&sources).await?;
    let acted = commands.act_on_case(&id, action, &actor()).await;
    let case = refused(&commands, acted).await?;
    writeln!(out, "{}: {} at level {}", case.id, case.state, case.level)?;
    Ok(())
}

async fn open(new: NewCase, sources: &Sources, out: &mut String) -> anyhow::Result<()> {
    let commands = offline_commands(sources).await?;
    let opened = commands.open_case(new, &actor()).await;
    let case = refused(&commands, opened).await?;
    writeln!(out, "{} opened at level {}", case.id, case.level)?;
    Ok(())
}

async fn show(id: &str, reveal: bool, sources: &Sources, out: &mut String) -> anyhow::Result<()> {
    let store = required_store(sources, "no case yet").await?;
    let Some(case) = store.case(id).await? else {
        bail!("no case '{id}'");
    };
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
