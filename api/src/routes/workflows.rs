//! Workflows: the list in the caller's scope, a workflow's instances (a
//! meeting's next occurrences, a plan's milestones, a ladder's cases), and the
//! events a coordinator fires on a meeting (`move`, `cancel`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use palabre_engine::commands::OccurrenceReport;
use palabre_lang::milestones::{Statuses, TimelineRow};
use palabre_lang::places::Place;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cases::{CaseView, case_view, record_reveal};
use crate::auth::Caller;
use crate::extract::{JsonBody, Path, Query, out_of_scope};
use crate::{ApiError, ApiState};

/// A workflow, as listed.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WorkflowView {
    pub id: String,
    /// `meeting`, `milestones` or `escalation`.
    pub kind: String,
    pub title: String,
    pub place: String,
    /// A ladder's levels, from the closest to the highest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<LevelView>,
    /// A ladder's categories of disputes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

/// A level of a ladder.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LevelView {
    pub id: String,
    pub title: String,
}

/// The workflows in `caller`'s scope: those at or below its place. What
/// `/workflows` lists, and what a scoped caller's counts are to be made of.
pub(super) fn in_scope(state: &ApiState, caller: &Caller) -> Vec<WorkflowView> {
    let definitions = state.commands.definitions();
    definitions
        .workflows()
        .filter(|w| caller.covers(w.place))
        .map(|w| {
            let ladder = definitions.ladder(w.id).map(|l| &l.definition);
            WorkflowView {
                id: w.id.to_owned(),
                kind: w.kind.to_owned(),
                title: w.title.to_owned(),
                place: w.place.to_owned(),
                levels: ladder.map_or_else(Vec::new, |l| {
                    l.levels
                        .iter()
                        .map(|level| LevelView {
                            id: level.id.clone(),
                            title: level.title.clone(),
                        })
                        .collect()
                }),
                categories: ladder.map_or_else(Vec::new, |l| l.categories.clone()),
            }
        })
        .collect()
}

/// The map: every place with its name and level, in path order.
pub(super) async fn places(State(state): State<ApiState>) -> Json<Vec<Place>> {
    Json(
        state
            .commands
            .definitions()
            .places
            .iter()
            .cloned()
            .collect(),
    )
}

pub(super) async fn workflows(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<WorkflowView>>, ApiError> {
    Ok(Json(in_scope(&state, &caller)))
}

/// A meeting occurrence, as the API lists it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct OccurrenceView {
    /// The nominal start: the occurrence's key.
    pub occurrence: DateTime<Utc>,
    /// When it starts (after a move); `None` when cancelled.
    pub starts_at: Option<DateTime<Utc>>,
    /// iCalendar SEQUENCE: 0 until it is changed.
    pub sequence: u32,
}

/// A workflow's instances, by kind.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "kind", content = "instances", rename_all = "snake_case")]
pub enum Instances {
    /// Ten occurrences from `?since=` (the present by default).
    Meeting(Vec<OccurrenceView>),
    Milestones(Vec<TimelineRow>),
    Escalation(Vec<CaseView>),
}

/// How many coming occurrences a meeting lists.
const NEXT_OCCURRENCES: usize = 10;

/// From when a meeting's occurrences are listed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstancesQuery {
    /// The first instant listed (RFC 3339); the present when not given.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
}

pub(super) async fn instances(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<InstancesQuery>,
) -> Result<Json<Instances>, ApiError> {
    let definitions = state.commands.definitions();
    let store = state.commands.store();
    let now = state.commands.now();
    if let Some(meeting) = definitions.meeting(&id) {
        if !caller.covers(&meeting.definition.place) {
            return Err(out_of_scope(&caller));
        }
        let changes = palabre_lang::occurrence::Changes::new(store.occurrence_changes().await?);
        let mut next = Vec::new();
        // `next_after` is strict: an occurrence at `since` itself is listed.
        let mut cursor = query
            .since
            .map_or(now, |since| since - chrono::TimeDelta::seconds(1));
        while next.len() < NEXT_OCCURRENCES {
            let Some(occurrence) = meeting.recurrence.next_after(cursor) else {
                break;
            };
            let change = changes.get(&id, occurrence);
            next.push(OccurrenceView {
                occurrence,
                starts_at: change.map_or(Some(occurrence), |c| c.starts_at),
                sequence: change.map_or(0, |c| c.sequence),
            });
            cursor = occurrence;
        }
        return Ok(Json(Instances::Meeting(next)));
    }
    if let Some(plan) = definitions.plan(&id) {
        if !caller.covers(&plan.definition.place) {
            return Err(out_of_scope(&caller));
        }
        let statuses = Statuses::new(store.milestone_states().await?);
        return Ok(Json(Instances::Milestones(plan.timeline(&statuses, now))));
    }
    if let Some(ladder) = definitions.ladder(&id) {
        // A ladder covers a region: a token of a place within it sees the cases
        // in its scope; a token of another region has no business with it.
        let place = &ladder.definition.place;
        if !caller.covers(place) && !palabre_lang::places::Places::contains(place, &caller.scope) {
            return Err(out_of_scope(&caller));
        }
        let cases: Vec<_> = store
            .cases(&id)
            .await?
            .into_iter()
            .filter(|c| caller.covers(&c.place))
            .collect();
        let shown: Vec<&_> = cases.iter().collect();
        let route = format!("GET /workflows/{id}/instances");
        record_reveal(&state, &caller, &route, &shown).await?;
        let views = cases
            .into_iter()
            .map(|c| case_view(&state, c, &caller))
            .collect();
        return Ok(Json(Instances::Escalation(views)));
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no workflow '{id}'"),
    ))
}

/// One occurrence of a meeting as its coordinator follows it: what was sent to
/// whom and how far it got, the answers, the quorum rule's verdict.
pub(super) async fn occurrence(
    State(state): State<ApiState>,
    caller: Caller,
    Path((id, occurrence)): Path<(String, DateTime<Utc>)>,
) -> Result<Json<OccurrenceReport>, ApiError> {
    let definitions = state.commands.definitions();
    let meeting = definitions.meeting(&id);
    if let Some(meeting) = meeting
        && !caller.covers(&meeting.definition.place)
    {
        return Err(out_of_scope(&caller));
    }
    Ok(Json(
        state.commands.occurrence_report(&id, occurrence).await?,
    ))
}

/// `move` or `cancel` one occurrence of a meeting.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// The occurrence, as its recurrence gives it (RFC 3339).
    pub occurrence: DateTime<Utc>,
    /// The new start (`move` only).
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    /// Why, as participants will read it.
    pub reason: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EventDone {
    pub workflow: String,
    pub event: String,
    /// The iCalendar SEQUENCE the occurrence now has.
    pub sequence: u32,
    /// Participants a notice was queued for.
    pub notified: usize,
    pub unreachable: usize,
    /// False when the occurrence already started at the asked time: nothing was
    /// changed and nobody was told again (a repeated request is harmless).
    pub changed: bool,
}

pub(super) async fn fire_event(
    State(state): State<ApiState>,
    caller: Caller,
    Path((id, event)): Path<(String, String)>,
    JsonBody(body): JsonBody<EventBody>,
) -> Result<Json<EventDone>, ApiError> {
    let definitions = state.commands.definitions();
    let Some(meeting) = definitions.meeting(&id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no meeting workflow '{id}'"),
        ));
    };
    if !caller.covers(&meeting.definition.place) {
        return Err(out_of_scope(&caller));
    }
    let new_start = match (event.as_str(), body.to) {
        ("move", Some(to)) => Some(to),
        ("move", None) => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "`move` needs `to`").field("to"));
        }
        ("cancel", _) => None,
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no event '{event}': `move` or `cancel`"),
            ));
        }
    };
    // The reason goes to every participant as it was written; who asked goes
    // to the ledger only.
    let actor = super::actor(&state, &caller).await?;
    let report = state
        .commands
        .change_occurrence_by(&id, body.occurrence, new_start, &body.reason, &actor)
        .await?;
    Ok(Json(EventDone {
        workflow: id,
        event,
        sequence: report.sequence,
        notified: report.notified,
        unreachable: report.unreachable,
        changed: report.changed,
    }))
}
