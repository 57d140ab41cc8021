//! Milestones: the timeline in the caller's scope, and a milestone's status.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use palabre_lang::milestones::{MilestoneStatus, Statuses, TimelineRow};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::extract::{JsonBody, Path, Query, out_of_scope};
use crate::{ApiError, ApiState};

#[derive(Debug, Deserialize)]
pub struct PlaceQuery {
    pub place: Option<String>,
}

pub(super) async fn milestones(
    State(state): State<ApiState>,
    caller: Caller,
    Query(query): Query<PlaceQuery>,
) -> Result<Json<Vec<TimelineRow>>, ApiError> {
    let definitions = state.commands.definitions();
    let statuses = Statuses::new(state.commands.store().milestone_states().await?);
    let now = state.commands.now();
    let rows = definitions
        .plans
        .iter()
        .filter(|p| caller.covers(&p.definition.place))
        .filter(|p| {
            query.place.as_deref().is_none_or(|place| {
                palabre_lang::places::Places::contains(place, &p.definition.place)
            })
        })
        .flat_map(|p| p.timeline(&statuses, now))
        .collect();
    Ok(Json(rows))
}

/// A milestone status change.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MilestoneStatusBody {
    pub status: MilestoneStatus,
    /// Why, or what was done.
    pub note: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MilestoneChange {
    pub plan: String,
    pub milestone: String,
    pub previous: MilestoneStatus,
    pub status: MilestoneStatus,
}

pub(super) async fn set_milestone(
    State(state): State<ApiState>,
    caller: Caller,
    Path((plan, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<MilestoneStatusBody>,
) -> Result<Json<MilestoneChange>, ApiError> {
    let definitions = state.commands.definitions();
    let Some(found) = definitions
        .plan(&plan)
        .filter(|p| p.milestone(&id).is_some())
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no milestone '{plan}/{id}'"),
        ));
    };
    if !caller.covers(&found.definition.place) {
        return Err(out_of_scope(&caller));
    }
    if body.note.trim().is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "a note is needed").field("note"));
    }
    let actor = super::actor(&state, &caller).await?;
    let change = state
        .commands
        .set_milestone_status(&plan, &id, body.status, &body.note, &actor)
        .await?;
    Ok(Json(MilestoneChange {
        plan,
        milestone: id,
        previous: change.previous,
        status: change.status,
    }))
}
