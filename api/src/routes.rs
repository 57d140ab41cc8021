//! The routes: one table ([`ROUTES`]) from which the router and the OpenAPI
//! document are both made, and the handlers.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use chrono::{DateTime, Utc};
use palabre_core::webhooks::{PlainInbound, PlainReceipt, WebhookError, WebhookRequest};
use palabre_engine::commands::{CaseAction, InboundOutcome, NewCase};
use palabre_lang::escalation::{Case, CaseState};
use palabre_lang::milestones::{MilestoneStatus, Statuses, TimelineRow};
use palabre_store::{LedgerEntry, StatusCounts};
use schemars::{JsonSchema, Schema, schema_for};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::auth::{self, Caller, Role};
use crate::{ApiError, ApiState, MAX_BODY_BYTES};

/// One route, as both the router and the OpenAPI document see it.
pub struct RouteDoc {
    pub method: &'static str,
    /// axum and OpenAPI path syntax (`/cases/{id}`).
    pub path: &'static str,
    pub summary: &'static str,
    /// The least role needed; `None` for public routes.
    pub role: Option<Role>,
    pub request: Option<fn() -> Schema>,
    pub response: fn() -> Schema,
    /// The HTTP status of success.
    pub success: u16,
    handler: fn() -> MethodRouter<ApiState>,
}

fn schema<T: JsonSchema>() -> Schema {
    schema_for!(T)
}

fn text() -> Schema {
    schemars::json_schema!({ "type": "string" })
}

/// Every route of the API.
pub static ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "get",
        path: "/healthz",
        summary: "Liveness and database reachability",
        role: None,
        request: None,
        response: schema::<Health>,
        success: 200,
        handler: || get(healthz),
    },
    RouteDoc {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics: timers, messages by channel and state, rule errors",
        role: None,
        request: None,
        response: text,
        success: 200,
        handler: || get(crate::metrics::metrics),
    },
    RouteDoc {
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        role: None,
        request: None,
        response: || schemars::json_schema!({ "type": "object" }),
        success: 200,
        handler: || get(crate::openapi_document),
    },
    RouteDoc {
        method: "get",
        path: "/workflows",
        summary: "The workflows in the caller's scope",
        role: Some(Role::Observer),
        request: None,
        response: schema::<Vec<WorkflowView>>,
        success: 200,
        handler: || get(workflows),
    },
    RouteDoc {
        method: "get",
        path: "/workflows/{id}/instances",
        summary: "A workflow's instances: a meeting's next occurrences, a plan's milestones, a ladder's cases in scope",
        role: Some(Role::Observer),
        request: None,
        response: schema::<Instances>,
        success: 200,
        handler: || get(instances),
    },
    RouteDoc {
        method: "post",
        path: "/workflows/{id}/events/{event}",
        summary: "Fire a named event on a workflow: `move` or `cancel` one occurrence of a meeting",
        role: Some(Role::Coordinator),
        request: Some(schema::<EventBody>),
        response: schema::<EventDone>,
        success: 200,
        handler: || post(fire_event),
    },
    RouteDoc {
        method: "post",
        path: "/cases",
        summary: "Open a dispute on an escalation ladder",
        role: Some(Role::Coordinator),
        request: Some(schema::<NewCaseBody>),
        response: schema::<CaseView>,
        success: 201,
        handler: || post(open_case),
    },
    RouteDoc {
        method: "get",
        path: "/cases/{id}",
        summary: "A case (its description for coordinators and administrators only)",
        role: Some(Role::Observer),
        request: None,
        response: schema::<CaseView>,
        success: 200,
        handler: || get(read_case),
    },
    RouteDoc {
        method: "get",
        path: "/cases/{id}/history",
        summary: "Everything the ledger says about a case",
        role: Some(Role::Observer),
        request: None,
        response: schema::<Vec<LedgerEntry>>,
        success: 200,
        handler: || get(case_history),
    },
    RouteDoc {
        method: "post",
        path: "/cases/{id}/{action}",
        summary: "Act on a case: `acknowledge`, `note`, `resolve`, `reopen` or `escalate`",
        role: Some(Role::Coordinator),
        request: Some(schema::<NoteBody>),
        response: schema::<CaseView>,
        success: 200,
        handler: || post(act_on_case),
    },
    RouteDoc {
        method: "get",
        path: "/milestones",
        summary: "The milestone timeline (`?place=` narrows it)",
        role: Some(Role::Observer),
        request: None,
        response: schema::<Vec<TimelineRow>>,
        success: 200,
        handler: || get(milestones),
    },
    RouteDoc {
        method: "post",
        path: "/milestones/{plan}/{id}/status",
        summary: "Record a milestone's status, with a note",
        role: Some(Role::Coordinator),
        request: Some(schema::<MilestoneStatusBody>),
        response: schema::<MilestoneChange>,
        success: 200,
        handler: || post(set_milestone),
    },
    RouteDoc {
        method: "post",
        path: "/inbound/sms/{secret}",
        summary: "SMS replies from the gateway's webhook, in the configured provider's format (without a gateway: JSON or form `from`, `text`); authenticated by the secret in the URL, and by Twilio's signature for Twilio. Answers what each message did, or for Twilio the empty TwiML it expects",
        role: None,
        request: Some(schema::<PlainInbound>),
        response: schema::<Vec<InboundOutcome>>,
        success: 200,
        handler: || post(inbound_sms),
    },
    RouteDoc {
        method: "post",
        path: "/receipts/sms/{secret}",
        summary: "Delivery receipts from the gateway's webhook, in the configured provider's format: Orange `deliveryInfoNotification`, Twilio status callbacks (signed), Infobip `results`, Africa's Talking forms; without a gateway JSON or form `id`, `status`",
        role: None,
        request: Some(schema::<PlainReceipt>),
        response: schema::<ReceiptsDone>,
        success: 200,
        handler: || post(receipts),
    },
    RouteDoc {
        method: "get",
        path: "/status",
        summary: "What `palabre status` counts: timers by state, messages by state, and each channel's messages queued, sent, delivered, undelivered and dead",
        role: Some(Role::Observer),
        request: None,
        response: schema::<StatusCounts>,
        success: 200,
        handler: || get(status),
    },
    RouteDoc {
        method: "get",
        path: "/ledger",
        summary: "The latest ledger entries in the caller's scope (`?workflow=`, `?limit=`)",
        role: Some(Role::Observer),
        request: None,
        response: schema::<Vec<LedgerEntry>>,
        success: 200,
        handler: || get(ledger),
    },
];

/// The router of every route in [`ROUTES`].
pub fn router(state: ApiState) -> Router {
    let mut paths: BTreeMap<&str, MethodRouter<ApiState>> = BTreeMap::new();
    for route in ROUTES {
        let method = (route.handler)();
        let merged = match paths.remove(route.path) {
            Some(existing) => existing.merge(method),
            None => method,
        };
        paths.insert(route.path, merged);
    }
    paths
        .into_iter()
        .fold(Router::new(), |router, (path, method)| {
            router.route(path, method)
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The caller of a request, if its token is good and its role enough.
async fn caller(state: &ApiState, headers: &HeaderMap, need: Role) -> Result<Caller, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is needed");
    let bearer = bearer.ok_or_else(unauthorized)?;
    let caller = auth::check(state.commands.store(), bearer.trim())
        .await?
        .ok_or_else(unauthorized)?;
    if caller.role < need {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this needs the {need} role; the token is {}", caller.role),
        ));
    }
    Ok(caller)
}

fn out_of_scope(caller: &Caller) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!("outside this token's scope ({})", caller.scope),
    )
}

/// Reads a JSON body, naming the field at fault when it does not fit.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        let field = if path == "." {
            message.split('`').nth(1).map(str::to_owned)
        } else {
            Some(path)
        };
        let bad = ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("malformed body: {message}"),
        );
        match field {
            Some(field) => bad.field(field),
            None => bad,
        }
    })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Health {
    pub status: String,
}

async fn healthz(State(state): State<ApiState>) -> Response {
    match state.commands.store().status(state.commands.now()).await {
        Ok(_) => Json(Health {
            status: "ok".to_owned(),
        })
        .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "database unavailable".to_owned(),
            }),
        )
            .into_response(),
    }
}

/// A workflow, as listed.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WorkflowView {
    pub id: String,
    /// `meeting`, `milestones` or `escalation`.
    pub kind: String,
    pub title: String,
    pub place: String,
}

async fn workflows(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<Vec<WorkflowView>>, ApiError> {
    let caller = caller(&state, &headers, Role::Observer).await?;
    let definitions = state.commands.definitions();
    Ok(Json(
        definitions
            .workflows()
            .filter(|w| caller.covers(w.place))
            .map(|w| WorkflowView {
                id: w.id.to_owned(),
                kind: w.kind.to_owned(),
                title: w.title.to_owned(),
                place: w.place.to_owned(),
            })
            .collect(),
    ))
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
    /// The next ten occurrences.
    Meeting(Vec<OccurrenceView>),
    Milestones(Vec<TimelineRow>),
    Escalation(Vec<CaseView>),
}

/// How many coming occurrences a meeting lists.
const NEXT_OCCURRENCES: usize = 10;

async fn instances(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Instances>, ApiError> {
    let caller = caller(&state, &headers, Role::Observer).await?;
    let definitions = state.commands.definitions();
    let store = state.commands.store();
    let now = state.commands.now();
    if let Some(meeting) = definitions.meetings.iter().find(|m| m.definition.id == id) {
        if !caller.covers(&meeting.definition.place) {
            return Err(out_of_scope(&caller));
        }
        let changes = palabre_lang::occurrence::Changes::new(store.occurrence_changes().await?);
        let mut next = Vec::new();
        let mut cursor = now;
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
    if definitions.ladder(&id).is_some() {
        let cases = store
            .cases(&id)
            .await?
            .into_iter()
            .filter(|c| caller.covers(&c.place))
            .map(|c| case_view(&state, c, &caller))
            .collect();
        return Ok(Json(Instances::Escalation(cases)));
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no workflow '{id}'"),
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
}

async fn fire_event(
    State(state): State<ApiState>,
    Path((id, event)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<EventDone>, ApiError> {
    let caller = caller(&state, &headers, Role::Coordinator).await?;
    let definitions = state.commands.definitions();
    let Some(meeting) = definitions.meetings.iter().find(|m| m.definition.id == id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no meeting workflow '{id}'"),
        ));
    };
    if !caller.covers(&meeting.definition.place) {
        return Err(out_of_scope(&caller));
    }
    let body: EventBody = parse(&body)?;
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
    let reason = format!("{} (via the API, token {})", body.reason, caller.token);
    let report = state
        .commands
        .change_occurrence(&id, body.occurrence, new_start, &reason)
        .await?;
    Ok(Json(EventDone {
        workflow: id,
        event,
        sequence: report.sequence,
        notified: report.notified,
        unreachable: report.unreachable,
    }))
}

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

fn case_view(state: &ApiState, case: Case, caller: &Caller) -> CaseView {
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
        description: (caller.role >= Role::Coordinator).then_some(case.description),
    }
}

async fn open_case(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<CaseView>), ApiError> {
    let caller = caller(&state, &headers, Role::Coordinator).await?;
    let body: NewCaseBody = parse(&body)?;
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
    let case = state
        .commands
        .open_case(new, &format!("api:{}", caller.token))
        .await?;
    Ok((StatusCode::CREATED, Json(case_view(&state, case, &caller))))
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

async fn read_case(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<CaseView>, ApiError> {
    let caller = caller(&state, &headers, Role::Observer).await?;
    let case = visible_case(&state, &caller, &id).await?;
    Ok(Json(case_view(&state, case, &caller)))
}

async fn case_history(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Vec<LedgerEntry>>, ApiError> {
    let caller = caller(&state, &headers, Role::Observer).await?;
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

async fn act_on_case(
    State(state): State<ApiState>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<CaseView>, ApiError> {
    let caller = caller(&state, &headers, Role::Coordinator).await?;
    visible_case(&state, &caller, &id).await?;
    let NoteBody { note } = if body.is_empty() {
        NoteBody::default()
    } else {
        parse(&body)?
    };
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
    let case = state
        .commands
        .act_on_case(&id, action, &format!("api:{}", caller.token))
        .await?;
    Ok(Json(case_view(&state, case, &caller)))
}

#[derive(Debug, Deserialize)]
pub struct PlaceQuery {
    pub place: Option<String>,
}

async fn milestones(
    State(state): State<ApiState>,
    Query(query): Query<PlaceQuery>,
    headers: HeaderMap,
) -> Result<Json<Vec<TimelineRow>>, ApiError> {
    let caller = caller(&state, &headers, Role::Observer).await?;
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

async fn set_milestone(
    State(state): State<ApiState>,
    Path((plan, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<MilestoneChange>, ApiError> {
    let caller = caller(&state, &headers, Role::Coordinator).await?;
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
    let body: MilestoneStatusBody = parse(&body)?;
    if body.note.trim().is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "a note is needed").field("note"));
    }
    let note = format!("{} (via the API, token {})", body.note, caller.token);
    let change = state
        .commands
        .set_milestone_status(&plan, &id, body.status, &note)
        .await?;
    Ok(Json(MilestoneChange {
        plan,
        milestone: id,
        previous: change.previous,
        status: change.status,
    }))
}

#[derive(Debug, Deserialize)]
pub struct LedgerQuery {
    pub workflow: Option<String>,
    pub limit: Option<i64>,
}

async fn status(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<StatusCounts>, ApiError> {
    caller(&state, &headers, Role::Observer).await?;
    Ok(Json(
        state.commands.store().status(state.commands.now()).await?,
    ))
}

async fn ledger(
    State(state): State<ApiState>,
    Query(query): Query<LedgerQuery>,
    headers: HeaderMap,
) -> Result<Json<Vec<LedgerEntry>>, ApiError> {
    let caller = caller(&state, &headers, Role::Observer).await?;
    let definitions = state.commands.definitions();
    let places: BTreeMap<&str, &str> = definitions.workflows().map(|w| (w.id, w.place)).collect();
    let limit = query.limit.unwrap_or(200).clamp(1, 5_000);
    let entries = state
        .commands
        .store()
        .ledger(query.workflow.as_deref(), limit)
        .await?;
    // An entry is visible when its workflow's place is in scope; ladders cover a
    // region, so a case's own place is what counts for case entries.
    let mut case_places: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut visible = Vec::new();
    for entry in entries {
        let Some(workflow) = entry.workflow.as_deref() else {
            if caller.scope == auth::NATIONAL {
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
        if place.is_some_and(|p| caller.covers(&p)) {
            visible.push(entry);
        }
    }
    Ok(Json(visible))
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReceiptsDone {
    /// Receipts matched to a message.
    pub recorded: usize,
    /// Receipts for ids no message has.
    pub unknown: usize,
}

/// Checks the webhook secret in the URL, in constant time.
fn webhook_secret(state: &ApiState, secret: &str) -> Result<(), ApiError> {
    let Some(expected) = state.inbound_secret.as_deref() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "webhooks are not configured",
        ));
    };
    if auth::same_secret(secret, expected) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong webhook secret",
        ))
    }
}

/// Checks a webhook request's secret and hands it to `read` as the plugin sees it.
fn webhook<T>(
    state: &ApiState,
    secret: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    read: impl FnOnce(&WebhookRequest<'_>) -> Result<T, WebhookError>,
) -> Result<T, ApiError> {
    webhook_secret(state, secret)?;
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let request = WebhookRequest {
        path_and_query: uri.path_and_query().map_or(uri.path(), |p| p.as_str()),
        headers: &headers,
        body,
    };
    read(&request).map_err(|e| {
        let status = match e {
            WebhookError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            WebhookError::Malformed(_) => StatusCode::BAD_REQUEST,
            WebhookError::NotConfigured(_) => StatusCode::NOT_IMPLEMENTED,
        };
        ApiError::new(status, e.to_string())
    })
}

async fn receipts(
    State(state): State<ApiState>,
    Path(secret): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReceiptsDone>, ApiError> {
    let receipts = webhook(&state, &secret, &uri, &headers, &body, |request| {
        state.webhooks.receipts(request)
    })?;
    let mut done = ReceiptsDone {
        recorded: 0,
        unknown: 0,
    };
    for receipt in &receipts {
        if state.commands.delivery_receipt(receipt).await? {
            done.recorded += 1;
        } else {
            done.unknown += 1;
        }
    }
    Ok(Json(done))
}

async fn inbound_sms(
    State(state): State<ApiState>,
    Path(secret): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let messages = webhook(&state, &secret, &uri, &headers, &body, |request| {
        state.webhooks.inbound(request)
    })?;
    let mut outcomes = Vec::with_capacity(messages.len());
    for message in &messages {
        outcomes.push(state.commands.inbound_sms(message).await?);
    }
    Ok(match state.webhooks.inbound_answer() {
        Some(answer) => {
            ([(header::CONTENT_TYPE, answer.content_type)], answer.body).into_response()
        }
        None => Json(outcomes).into_response(),
    })
}
