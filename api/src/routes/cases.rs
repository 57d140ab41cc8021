//! Disputes: opening a case, reading it and its history, acting on it
//! (acknowledge, note, resolve, reopen, escalate). Descriptions are shown to
//! coordinators and administrators only, and each reading of them is written
//! in the ledger (`revealed`: which cases, by which token; never the text).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use palabre_engine::commands::{CaseAction, NewCase};
use palabre_lang::escalation::{Case, CaseState};
use palabre_store::{CaseFilter, LedgerEntry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, Role};
use crate::extract::{JsonBody, Path, Query, out_of_scope};
use crate::{ApiError, ApiState};

fn two() -> i64 {
    2
}

/// A dispute to open.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCaseBody {
    /// The escalation ladder's id.
    pub workflow: String,
    pub category: String,
    /// Where the dispute is, a place path.
    pub place: String,
    /// Contact ids of the parties.
    #[serde(default)]
    pub parties: Vec<String>,
    /// 1 (low) to 5 (grave). Default 2.
    #[serde(default = "two")]
    pub severity: i64,
    /// What happened. Kept in the database, never sent in a message.
    pub description: String,
}

/// A case, as the API shows it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CaseView {
    pub id: String,
    pub workflow: String,
    pub category: String,
    pub place: String,
    pub parties: Vec<String>,
    pub severity: i64,
    /// Index of its level on the ladder, and that level's id.
    pub level: usize,
    pub level_id: String,
    pub state: CaseState,
    pub opened: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// Only for coordinators and administrators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

pub(super) fn case_view(state: &ApiState, case: Case, caller: &Caller) -> CaseView {
    let level_id = state
        .commands
        .definitions()
        .ladder(&case.workflow)
        .and_then(|l| l.level(case.level).map(|level| level.id.clone()))
        .unwrap_or_default();
    CaseView {
        id: case.id,
        workflow: case.workflow,
        category: case.category,
        place: case.place,
        parties: case.parties,
        severity: case.severity,
        level: case.level,
        level_id,
        state: case.state,
        opened: case.opened,
        updated: case.updated,
        description: reads_descriptions(caller).then_some(case.description),
    }
}

/// Whether `caller`'s role reads descriptions (what [`case_view`] shows them).
fn reads_descriptions(caller: &Caller) -> bool {
    caller.role >= Role::Coordinator
}

/// Writes one `revealed` ledger entry when `caller` is about to read the
/// descriptions of `cases` through `route`: the token's label and id, the
/// cases' ladders and references, never a description. Nothing when their role
/// reads none, or there is no case. Written before the answer goes out: a
/// description whose reading could not be recorded is not shown.
pub(crate) async fn record_reveal(
    state: &ApiState,
    caller: &Caller,
    route: &str,
    cases: &[&Case],
) -> Result<(), ApiError> {
    if !reads_descriptions(caller) || cases.is_empty() {
        return Ok(());
    }
    let actor = super::actor(state, caller).await?;
    let shown: Vec<(&str, &str)> = cases
        .iter()
        .map(|c| (c.workflow.as_str(), c.id.as_str()))
        .collect();
    state
        .commands
        .record_case_reveal(&shown, &format!("read through {route} by {actor}"))
        .await?;
    Ok(())
}

pub(super) async fn open_case(
    State(state): State<ApiState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewCaseBody>,
) -> Result<(StatusCode, Json<CaseView>), ApiError> {
    if !caller.covers(&body.place) {
        return Err(out_of_scope(&caller));
    }
    let new = NewCase {
        workflow: body.workflow,
        category: body.category,
        place: body.place,
        parties: body.parties,
        severity: body.severity,
        description: body.description,
    };
    let actor = super::actor(&state, &caller).await?;
    let case = state.commands.open_case(new, &actor).await?;
    Ok((StatusCode::CREATED, Json(case_view(&state, case, &caller))))
}

/// Which cases `GET /cases` lists.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseListQuery {
    /// `open` (the default: open and acknowledged cases) or `all`.
    #[serde(default)]
    pub state: Option<String>,
    /// Only cases with a deadline passed.
    #[serde(default)]
    pub overdue: Option<bool>,
    /// Only this ladder's cases.
    #[serde(default)]
    pub workflow: Option<String>,
    /// Only cases at this place or below.
    #[serde(default)]
    pub place: Option<String>,
    /// `false`: no descriptions, and so no reading of them in the ledger (a
    /// board that shows none).
    #[serde(default)]
    pub descriptions: Option<bool>,
}

/// A case as listed: the case, and its next deadline.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListedCaseView {
    #[serde(flatten)]
    pub case: CaseView,
    /// The earliest of its pending deadlines (acknowledge or resolve); none when resolved.
    pub next_deadline: Option<DateTime<Utc>>,
}

pub(super) async fn list_cases(
    State(state): State<ApiState>,
    caller: Caller,
    Query(query): Query<CaseListQuery>,
) -> Result<Json<Vec<ListedCaseView>>, ApiError> {
    let all = match query.state.as_deref() {
        None | Some("open") => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("no state '{other}': `open` or `all`"),
            )
            .field("state"));
        }
    };
    let mut within: Vec<String> = query.place.into_iter().collect();
    if caller.scope != crate::auth::NATIONAL {
        within.push(caller.scope.clone());
    }
    let filter = CaseFilter {
        all,
        overdue_at: query.overdue.unwrap_or(false).then(|| state.commands.now()),
        workflow: query.workflow,
        within,
    };
    let listed: Vec<_> = state
        .commands
        .store()
        .list_cases(&filter)
        .await?
        .into_iter()
        .filter(|l| caller.covers(&l.case.place))
        .collect();
    let described = query.descriptions.unwrap_or(true);
    if described {
        let shown: Vec<&Case> = listed.iter().map(|l| &l.case).collect();
        record_reveal(&state, &caller, "GET /cases", &shown).await?;
    }
    Ok(Json(
        listed
            .into_iter()
            .map(|l| {
                let mut case = case_view(&state, l.case, &caller);
                if !described {
                    case.description = None;
                }
                ListedCaseView {
                    next_deadline: l.next_deadline,
                    case,
                }
            })
            .collect(),
    ))
}

/// A case the caller may see, or why not.
async fn visible_case(state: &ApiState, caller: &Caller, id: &str) -> Result<Case, ApiError> {
    let case = state.commands.store().case(id).await?;
    match case {
        Some(case) if caller.covers(&case.place) => Ok(case),
        Some(_) => Err(out_of_scope(caller)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no case '{id}'"),
        )),
    }
}

pub(super) async fn read_case(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CaseView>, ApiError> {
    let case = visible_case(&state, &caller, &id).await?;
    record_reveal(
        &state,
        &caller,
        &format!("GET /cases/{}", case.id),
        &[&case],
    )
    .await?;
    Ok(Json(case_view(&state, case, &caller)))
}

pub(super) async fn case_history(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<LedgerEntry>>, ApiError> {
    let case = visible_case(&state, &caller, &id).await?;
    Ok(Json(
        state
            .commands
            .store()
            .ledger_about(&case.workflow, &case.id)
            .await?,
    ))
}

/// What was done, or why.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    #[serde(default)]
    pub note: String,
}

pub(super) async fn act_on_case(
    State(state): State<ApiState>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
    JsonBody(body): JsonBody<Option<NoteBody>>,
) -> Result<Json<CaseView>, ApiError> {
    visible_case(&state, &caller, &id).await?;
    let NoteBody { note } = body.unwrap_or_default();
    let action = match action.as_str() {
        "acknowledge" => CaseAction::Acknowledge(note),
        "note" => CaseAction::Note(note),
        "resolve" => CaseAction::Resolve(note),
        "reopen" => CaseAction::Reopen(note),
        "escalate" => CaseAction::Escalate(note),
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no action '{other}': acknowledge, note, resolve, reopen or escalate"),
            ));
        }
    };
    let actor = super::actor(&state, &caller).await?;
    let case = state.commands.act_on_case(&id, action, &actor).await?;
    Ok(Json(case_view(&state, case, &caller)))
}
