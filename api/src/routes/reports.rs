//! What the engine did, for observers: the counts of `palabre status` and the
//! ledger, both within the caller's scope.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use palabre_store::{LedgerEntry, LedgerEvent, StatusCounts};
use serde::Deserialize;

use crate::auth::{self, Caller};
use crate::extract::Query;
use crate::{ApiError, ApiState};

#[derive(Debug, Deserialize)]
pub struct LedgerQuery {
    pub workflow: Option<String>,
    pub event: Option<String>,
    pub place: Option<String>,
    pub limit: Option<i64>,
}

/// The counts of `palabre status`, of the workflows in the caller's scope only
/// (all of them for a national token).
pub(super) async fn status(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<StatusCounts>, ApiError> {
    let store = state.commands.store();
    let now = state.commands.now();
    if caller.scope == auth::NATIONAL {
        return Ok(Json(store.status(now).await?));
    }
    let views = super::workflows::in_scope(&state, &caller);
    let ids: Vec<&str> = views.iter().map(|w| w.id.as_str()).collect();
    Ok(Json(store.status_of(now, &ids).await?))
}

pub(super) async fn ledger(
    State(state): State<ApiState>,
    caller: Caller,
    Query(query): Query<LedgerQuery>,
) -> Result<Json<Vec<LedgerEntry>>, ApiError> {
    let definitions = state.commands.definitions();
    let places: BTreeMap<&str, &str> = definitions.workflows().map(|w| (w.id, w.place)).collect();
    let limit = query.limit.unwrap_or(200).clamp(1, 5_000);
    let event = match query.event.as_deref().filter(|e| !e.is_empty()) {
        None => None,
        Some(word) => Some(LedgerEvent::parse(word).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("no ledger event '{word}'"))
                .field("event")
        })?),
    };
    let workflow = query.workflow.as_deref().filter(|w| !w.is_empty());
    let within = query.place.as_deref().filter(|p| !p.is_empty());
    let entries = state
        .commands
        .store()
        .ledger_of(workflow, event, limit)
        .await?;
    // An entry is visible when its workflow's place is in scope; ladders cover a
    // region, so a case's own place is what counts for case entries.
    let mut case_places: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut visible = Vec::new();
    for entry in entries {
        let Some(workflow) = entry.workflow.as_deref() else {
            if caller.scope == auth::NATIONAL && within.is_none() {
                visible.push(entry);
            }
            continue;
        };
        let place = if definitions.ladder(workflow).is_some() {
            let id = entry
                .step
                .as_deref()
                .and_then(|s| s.split('/').next())
                .unwrap_or_default()
                .to_owned();
            if !case_places.contains_key(&id) {
                let place = state.commands.store().case(&id).await?.map(|c| c.place);
                case_places.insert(id.clone(), place);
            }
            case_places.get(&id).cloned().flatten()
        } else {
            places.get(workflow).map(|p| (*p).to_owned())
        };
        if place.is_some_and(|p| {
            caller.covers(&p)
                && within.is_none_or(|w| palabre_lang::places::Places::contains(w, &p))
        }) {
            visible.push(entry);
        }
    }
    Ok(Json(visible))
}
