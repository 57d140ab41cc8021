//! Meetings: the coming occurrences of the meetings in scope, as a month's
//! calendar and as a list by place; one occurrence with what was sent about
//! it, to whom, how far each message got, the answers and the quorum rule's
//! verdict; and its move or cancellation with a reason (coordinators).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::{done, page, ser};
use crate::Dashboard;
use crate::api::segment;
use crate::calendar::{month_of, parse_month};
use crate::session::Viewer;

/// A workflow, as `GET /workflows` lists it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct Workflow {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) title: String,
    pub(crate) place: String,
    #[serde(default)]
    pub(crate) levels: Vec<serde_json::Value>,
    #[serde(default)]
    pub(crate) categories: Vec<String>,
}

/// An occurrence, as `GET /workflows/{id}/instances` lists it.
#[derive(Debug, Clone, Deserialize, Serialize)]
struct Coming {
    occurrence: String,
    starts_at: Option<String>,
    sequence: u32,
}

#[derive(Debug, Deserialize)]
struct Instances {
    #[serde(default)]
    instances: Vec<Coming>,
}

/// One occurrence as the calendar and the list show it.
#[derive(Debug, Clone, Serialize)]
struct Listed {
    workflow: String,
    title: String,
    place: String,
    occurrence: String,
    /// When it starts: its start after a move, else its nominal one.
    shown_at: String,
    cancelled: bool,
    moved: bool,
    /// It has started.
    past: bool,
    link: String,
}

/// How many days back the list keeps a session whose answers may still be followed.
const RECENT_DAYS: i64 = 7;

#[derive(Debug, Deserialize)]
pub(crate) struct MonthQuery {
    month: Option<String>,
    done: Option<String>,
}

/// The day of an RFC 3339 instant.
fn day_of(instant: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(instant.get(..10)?, "%Y-%m-%d").ok()
}

/// The workflows of `kind` in the viewer's scope.
pub(crate) async fn workflows_of(
    dashboard: &Dashboard,
    viewer: &Viewer,
    kind: &str,
) -> Result<Vec<Workflow>, Response> {
    let all: Vec<Workflow> = dashboard.read(viewer, "/workflows").await?;
    Ok(all.into_iter().filter(|w| w.kind == kind).collect())
}

/// `GET /`: the month's calendar and the coming occurrences by place.
pub(crate) async fn overview(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Query(query): Query<MonthQuery>,
) -> Response {
    page(overview_page(&dashboard, &viewer, query).await)
}

async fn overview_page(
    dashboard: &Dashboard,
    viewer: &Viewer,
    query: MonthQuery,
) -> Result<Response, Response> {
    let today = dashboard.state.commands.now().date_naive();
    let shown = query
        .month
        .as_deref()
        .and_then(parse_month)
        .unwrap_or(today);
    let month = month_of(shown);
    // The month shown from its first day, and the last week's sessions (whose
    // answers are still being followed) with the coming ones.
    let now = dashboard.state.commands.now();
    let since = month
        .first
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .min(now - chrono::TimeDelta::days(RECENT_DAYS));
    let mut coming: Vec<Listed> = Vec::new();
    for meeting in workflows_of(dashboard, viewer, "meeting").await? {
        let path = format!(
            "/workflows/{}/instances?since={}",
            segment(&meeting.id),
            segment(&since.to_rfc3339())
        );
        let instances: Instances = dashboard.read(viewer, &path).await?;
        for c in instances.instances {
            let shown_at = c.starts_at.clone().unwrap_or_else(|| c.occurrence.clone());
            let past = chrono::DateTime::parse_from_rfc3339(&shown_at).is_ok_and(|t| t < now);
            coming.push(Listed {
                link: format!(
                    "/meeting/{}/{}",
                    segment(&meeting.id),
                    segment(&c.occurrence)
                ),
                past,
                shown_at,
                cancelled: c.starts_at.is_none(),
                moved: c.starts_at.as_ref().is_some_and(|s| *s != c.occurrence),
                occurrence: c.occurrence,
                workflow: meeting.id.clone(),
                title: meeting.title.clone(),
                place: meeting.place.clone(),
            });
        }
    }
    coming.sort_by(|a, b| a.shown_at.cmp(&b.shown_at));
    let mut by_day: BTreeMap<NaiveDate, Vec<&Listed>> = BTreeMap::new();
    for listed in &coming {
        if let Some(day) = day_of(&listed.shown_at) {
            by_day.entry(day).or_default().push(listed);
        }
    }
    let weeks: Vec<Vec<minijinja::Value>> = month
        .weeks
        .iter()
        .map(|week| {
            week.iter()
                .map(|day| match day {
                    Some(day) => minijinja::context! {
                        day => day.format("%-d").to_string(),
                        date => day.to_string(),
                        today => *day == today,
                        items => ser(&by_day.get(day).cloned().unwrap_or_default()),
                    },
                    None => minijinja::context! { day => "" },
                })
                .collect()
        })
        .collect();
    // The list: the last week's and the coming ones (the calendar also shows
    // the month's earlier days).
    let recent = now - chrono::TimeDelta::days(RECENT_DAYS);
    let mut by_place: BTreeMap<&str, Vec<&Listed>> = BTreeMap::new();
    for listed in coming
        .iter()
        .filter(|l| chrono::DateTime::parse_from_rfc3339(&l.shown_at).is_ok_and(|t| t >= recent))
    {
        by_place.entry(&listed.place).or_default().push(listed);
    }
    let places: Vec<minijinja::Value> = by_place
        .into_iter()
        .map(|(place, items)| minijinja::context! { place => place, items => ser(&items) })
        .collect();
    dashboard
        .show(
            viewer,
            "meetings.html",
            minijinja::context! {
                month => month.first.to_string(),
                month_number => month.first.format("%-m").to_string(),
                year => month.first.format("%Y").to_string(),
                previous => month.previous,
                next => month.next,
                weeks => weeks,
                places => places,
                done => query.done,
            },
        )
        .await
}

/// What kind of step a message's step is, as the catalogue names it
/// (`step_<kind>`): a workflow's own step as written, and the engine's own
/// messages without their instants and sequences (`reply@1796374800000-yes` is
/// a `reply`, `moved-2` a `moved`).
fn step_kind(step: &str) -> &str {
    let base = step.split('@').next().unwrap_or(step);
    match base.rsplit_once('-') {
        Some((kind @ ("moved" | "cancelled"), sequence))
            if sequence.chars().all(|c| c.is_ascii_digit()) =>
        {
            kind
        }
        _ => base,
    }
}

/// One message of an occurrence, as the API reports it.
#[derive(Debug, Clone, Deserialize, Serialize)]
struct Message {
    step: String,
    /// [`step_kind`] of `step`, filled after reading.
    #[serde(default)]
    kind: String,
    contact_id: String,
    channel: String,
    progress: String,
    attempts: i64,
    last_error: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Invitee {
    contact_id: String,
    name: String,
    answer: String,
    unreachable: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Report {
    workflow: String,
    title: String,
    place: String,
    occurrence: String,
    starts_at: Option<String>,
    sequence: u32,
    reference: String,
    messages: Vec<Message>,
    invited: Vec<Invitee>,
    quorum: serde_json::Value,
}

/// The counts of one step on one channel.
#[derive(Debug, Clone, Default, Serialize)]
struct StepCounts {
    step: String,
    channel: String,
    queued: usize,
    sent: usize,
    delivered: usize,
    undelivered: usize,
    dead: usize,
}

fn step_counts(messages: &[Message]) -> Vec<StepCounts> {
    let mut rows: Vec<StepCounts> = Vec::new();
    for m in messages {
        let kind = step_kind(&m.step);
        let index = match rows
            .iter()
            .position(|r| r.step == kind && r.channel == m.channel)
        {
            Some(index) => index,
            None => {
                rows.push(StepCounts {
                    step: kind.to_owned(),
                    channel: m.channel.clone(),
                    ..StepCounts::default()
                });
                rows.len() - 1
            }
        };
        let row = &mut rows[index];
        match m.progress.as_str() {
            "sent" => row.sent += 1,
            "delivered" => row.delivered += 1,
            "undelivered" => row.undelivered += 1,
            "dead" => row.dead += 1,
            _ => row.queued += 1,
        }
    }
    rows
}

#[derive(Debug, Deserialize)]
pub(crate) struct DoneQuery {
    pub(crate) done: Option<String>,
}

/// `GET /meeting/{id}/{occurrence}`.
pub(crate) async fn occurrence(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    axum::extract::Path((id, occurrence)): axum::extract::Path<(String, String)>,
    Query(query): Query<DoneQuery>,
) -> Response {
    page(occurrence_page(&dashboard, &viewer, &id, &occurrence, query.done).await)
}

async fn occurrence_page(
    dashboard: &Dashboard,
    viewer: &Viewer,
    id: &str,
    occurrence: &str,
    done: Option<String>,
) -> Result<Response, Response> {
    let path = format!(
        "/workflows/{}/occurrences/{}",
        segment(id),
        segment(occurrence)
    );
    let mut report: Report = dashboard.read(viewer, &path).await?;
    for message in &mut report.messages {
        message.kind = step_kind(&message.step).to_owned();
    }
    let names: BTreeMap<&str, &str> = report
        .invited
        .iter()
        .map(|i| (i.contact_id.as_str(), i.name.as_str()))
        .collect();
    let people: Vec<minijinja::Value> = report
        .invited
        .iter()
        .map(|person| {
            let theirs: Vec<&Message> = report
                .messages
                .iter()
                .filter(|m| m.contact_id == person.contact_id)
                .collect();
            minijinja::context! { person => ser(person), messages => ser(&theirs) }
        })
        .collect();
    let dead: Vec<minijinja::Value> = report
        .messages
        .iter()
        .filter(|m| m.progress == "dead")
        .map(|m| {
            minijinja::context! {
                message => ser(m),
                name => names.get(m.contact_id.as_str()).copied().unwrap_or(&m.contact_id),
            }
        })
        .collect();
    let yes = report.invited.iter().filter(|i| i.answer == "yes").count();
    let no = report.invited.iter().filter(|i| i.answer == "no").count();
    let now = dashboard.state.commands.now();
    let still_to_come = report
        .starts_at
        .as_deref()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .is_some_and(|start| start > now);
    dashboard
        .show(
        viewer,
        "occurrence.html",
        minijinja::context! {
            report => ser(&report),
            steps => ser(&step_counts(&report.messages)),
            people => people,
            dead => dead,
            yes => yes,
            no => no,
            unanswered => report.invited.len() - yes - no,
            unreachable => report.invited.iter().filter(|i| i.unreachable).count(),
            changeable => still_to_come,
            starts_input => report.starts_at.as_deref().and_then(|s| s.get(..16)).unwrap_or_default(),
            done => done,
        },
        )
        .await
}

/// A move or a cancellation, as the occurrence page's forms post it.
#[derive(Debug, Deserialize)]
struct ChangeForm {
    event: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    reason: String,
}

/// `POST /meeting/{id}/{occurrence}`: `POST /workflows/{id}/events/{event}`.
pub(crate) async fn change(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    axum::extract::Path((id, occurrence)): axum::extract::Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    page(change_occurrence(&dashboard, &viewer, &id, &occurrence, &body).await)
}

async fn change_occurrence(
    dashboard: &Dashboard,
    viewer: &Viewer,
    id: &str,
    occurrence: &str,
    body: &[u8],
) -> Result<Response, Response> {
    let form: ChangeForm = viewer.check_form(dashboard, body)?;
    // The form's time is Mali's, which is UTC.
    let to = NaiveDateTime::parse_from_str(form.to.trim(), "%Y-%m-%dT%H:%M")
        .ok()
        .map(|t| t.and_utc().to_rfc3339());
    let event = if form.event == "move" {
        "move"
    } else {
        "cancel"
    };
    let body = serde_json::json!({
        "occurrence": occurrence,
        "to": to,
        "reason": form.reason,
    });
    let path = format!("/workflows/{}/events/{event}", segment(id));
    let _: serde_json::Value = dashboard.act(viewer, &path, &body).await?;
    let back = format!("/meeting/{}/{}", segment(id), segment(occurrence));
    Ok(done(
        &back,
        if event == "move" {
            "moved"
        } else {
            "cancelled"
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(step: &str, channel: &str, progress: &str) -> Message {
        Message {
            step: step.to_owned(),
            kind: String::new(),
            contact_id: "c".to_owned(),
            channel: channel.to_owned(),
            progress: progress.to_owned(),
            attempts: 1,
            last_error: None,
        }
    }

    #[test]
    fn the_engines_own_steps_are_named_by_their_kind() {
        assert_eq!(step_kind("reply@1796374800000-yes"), "reply");
        assert_eq!(step_kind("reply-help@2026-12-04"), "reply-help");
        assert_eq!(step_kind("moved-2"), "moved");
        assert_eq!(step_kind("cancelled-1"), "cancelled");
        assert_eq!(step_kind("reminder-1d"), "reminder-1d");
        assert_eq!(step_kind("moved-soon"), "moved-soon");
    }

    #[test]
    fn messages_are_counted_per_step_and_channel_in_the_order_first_seen() {
        let rows = step_counts(&[
            message("invitation", "sms", "delivered"),
            message("invitation", "email", "sent"),
            message("invitation", "sms", "dead"),
            message("reminder", "sms", "queued"),
            message("invitation", "sms", "undelivered"),
            message("moved-1", "sms", "sent"),
            message("moved-2", "sms", "sent"),
        ]);
        let seen: Vec<(&str, &str, usize, usize, usize, usize, usize)> = rows
            .iter()
            .map(|r| {
                (
                    r.step.as_str(),
                    r.channel.as_str(),
                    r.queued,
                    r.sent,
                    r.delivered,
                    r.undelivered,
                    r.dead,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("invitation", "sms", 0, 0, 1, 1, 1),
                ("invitation", "email", 0, 1, 0, 0, 0),
                ("reminder", "sms", 1, 0, 0, 0, 0),
                ("moved", "sms", 0, 2, 0, 0, 0),
            ]
        );
    }
}
