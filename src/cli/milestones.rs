//! `palabre milestones` and `palabre milestone set`: the redeployment timeline
//! (status, lateness, what blocks what) as a table, JSON or iCalendar (all-day
//! events on the due dates), and one milestone's status change through the
//! engine's commands.

use std::fmt::Write as _;

use anyhow::bail;
use palabre_core::clock::{Clock, SystemClock};
use palabre_lang::milestones::{MilestoneStatus, Statuses, TimelineRow};
use palabre_lang::places::Places;
use palabre_store::Store;

use super::args::{Sources, TimelineFormat};
use super::context::{commands_over, load_definitions, print_table, read_if_exists, refused};

pub async fn timeline(
    place: Option<&str>,
    format: TimelineFormat,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let definitions = load_definitions(&sources.workflows)?;
    if let Some(place) = place
        && definitions.places.get(place).is_none()
    {
        bail!("{}", definitions.places.unknown_message(place));
    }
    // Without a database nothing has been recorded: every milestone is planned.
    let statuses = Statuses::new(read_if_exists(sources, Store::milestone_states).await?);
    let now = SystemClock.now();
    let rows: Vec<TimelineRow> = definitions
        .plans
        .iter()
        .filter(|p| place.is_none_or(|place| Places::contains(place, &p.definition.place)))
        .flat_map(|p| p.timeline(&statuses, now))
        .collect();
    match format {
        TimelineFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
        TimelineFormat::Ics => out.push_str(&palabre_lang::ics::milestone_events(&rows, now)),
        TimelineFormat::Table => print_table(
            out,
            &[
                "plan",
                "milestone",
                "owner",
                "start",
                "due",
                "status",
                "late",
                "waits for",
                "blocks",
            ],
            rows.iter().map(|r| {
                vec![
                    r.plan.clone(),
                    r.id.clone(),
                    r.owner.clone(),
                    r.start.map(|d| d.to_string()).unwrap_or_default(),
                    r.due.to_string(),
                    r.status.to_string(),
                    if r.days_late > 0 {
                        format!("{} d", r.days_late)
                    } else {
                        String::new()
                    },
                    r.blocked_by.join(", "),
                    r.blocks.join(", "),
                ]
            }),
        ),
    }
    Ok(())
}

/// Records `status` with its note for the milestone `id` names
/// (`PLAN/MILESTONE`, or the milestone alone when only one plan has it), as
/// `operator`.
pub async fn set(
    id: &str,
    status: &str,
    note: &str,
    operator: &str,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let definitions = load_definitions(&sources.workflows)?;
    let Some(status) = MilestoneStatus::parse(status) else {
        bail!(
            "unknown status '{status}': one of {}",
            MilestoneStatus::ALL.map(|s| s.as_str()).join(", ")
        );
    };
    let candidates: Vec<(&str, &str)> = match id.split_once('/') {
        Some((plan, milestone)) => definitions
            .plan(plan)
            .and_then(|p| p.milestone(milestone))
            .map(|m| vec![(plan, m.id.as_str())])
            .unwrap_or_default(),
        None => definitions
            .plans
            .iter()
            .filter_map(|p| {
                p.milestone(id)
                    .map(|m| (p.definition.id.as_str(), m.id.as_str()))
            })
            .collect(),
    };
    let (plan, milestone) = match candidates.as_slice() {
        [(plan, milestone)] => ((*plan).to_owned(), (*milestone).to_owned()),
        [] => bail!("no milestone '{id}' in any plan (write PLAN/MILESTONE)"),
        _ => bail!("'{id}' is in several plans: write PLAN/MILESTONE"),
    };
    if note.trim().is_empty() {
        bail!("--note cannot be empty: say why, or what was done");
    }
    let commands = commands_over(sources, definitions).await?;
    let changed = commands
        .set_milestone_status(&plan, &milestone, status, note, operator)
        .await;
    let previous = refused(&commands, changed).await?.previous;
    writeln!(out, "{plan}/{milestone}: {previous} → {status}")?;
    Ok(())
}
