//! The routes: one table ([`ROUTES`]) from which the router, the role each
//! route needs and the OpenAPI document are all made, and the handlers, one
//! module per resource. A route's role is enforced once, by the router (the
//! [`crate::extract::Caller`] its handler reads was checked against it).

mod answers;
mod cases;
mod directory;
mod health;
mod milestones;
mod reports;
mod voice;
mod webhooks;
mod workflows;

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{MethodRouter, get, post};
use palabre_core::webhooks::{PlainInbound, PlainReceipt};
use palabre_engine::commands::InboundOutcome;
use palabre_lang::milestones::TimelineRow;
use palabre_store::{LedgerEntry, StatusCounts};
use schemars::{JsonSchema, Schema, schema_for};

use crate::auth::{Caller, Role};
use crate::extract::RoleGate;
use crate::{ApiError, ApiState, MAX_BODY_BYTES, MAX_IMPORT_BYTES};

/// One route, as both the router and the OpenAPI document see it.
pub struct RouteDoc {
    pub method: &'static str,
    /// axum and OpenAPI path syntax (`/cases/{id}`).
    pub path: &'static str,
    pub summary: &'static str,
    /// The least role needed; `None` for public routes.
    pub role: Option<Role>,
    pub request: Option<fn() -> Schema>,
    /// The query parameters it reads: name and meaning (all optional).
    pub query: &'static [(&'static str, &'static str)],
    pub response: fn() -> Schema,
    /// The HTTP status of success.
    pub success: u16,
    /// The largest body it takes, when not [`MAX_BODY_BYTES`].
    pub body_limit: Option<usize>,
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
        query: &[],
        response: schema::<health::Health>,
        success: 200,
        body_limit: None,
        handler: || get(health::healthz),
    },
    RouteDoc {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics: timers, messages by channel and state, rule errors",
        role: None,
        request: None,
        query: &[],
        response: text,
        success: 200,
        body_limit: None,
        handler: || get(crate::metrics::metrics),
    },
    RouteDoc {
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        role: None,
        request: None,
        query: &[],
        response: || schemars::json_schema!({ "type": "object" }),
        success: 200,
        body_limit: None,
        handler: || get(crate::openapi_document),
    },
    RouteDoc {
        method: "get",
        path: "/answer/{token}",
        summary: "The page of an email's answer link (HTML, in the recipient's language): the meeting and two buttons. Records nothing; 404 when the link is not valid or its meeting has started",
        role: None,
        request: None,
        query: &[],
        response: text,
        success: 200,
        body_limit: None,
        handler: || get(answers::page),
    },
    RouteDoc {
        method: "post",
        path: "/answer/{token}",
        summary: "The answer the page's buttons post (form `answer=yes` or `answer=no`), recorded as an SMS reply would be (the same quorum rule); answers with the page again",
        role: None,
        request: None,
        query: &[],
        response: text,
        success: 200,
        body_limit: None,
        handler: || post(answers::answer),
    },
    RouteDoc {
        method: "get",
        path: "/places",
        summary: "The map (`places.yaml`): every region, cercle and commune with its path, name and level",
        role: Some(Role::Observer),
        request: None,
        query: &[],
        response: schema::<Vec<palabre_lang::places::Place>>,
        success: 200,
        body_limit: None,
        handler: || get(workflows::places),
    },
    RouteDoc {
        method: "get",
        path: "/workflows",
        summary: "The workflows in the caller's scope",
        role: Some(Role::Observer),
        request: None,
        query: &[],
        response: schema::<Vec<workflows::WorkflowView>>,
        success: 200,
        body_limit: None,
        handler: || get(workflows::workflows),
    },
    RouteDoc {
        method: "get",
        path: "/workflows/{id}/instances",
        summary: "A workflow's instances: a meeting's next ten occurrences (from `?since=`, the present by default), a plan's milestones, a ladder's cases in scope",
        role: Some(Role::Observer),
        request: None,
        query: &[(
            "since",
            "a meeting's: the first instant listed (RFC 3339); the present by default",
        )],
        response: schema::<workflows::Instances>,
        success: 200,
        body_limit: None,
        handler: || get(workflows::instances),
    },
    RouteDoc {
        method: "get",
        path: "/workflows/{id}/occurrences/{occurrence}",
        summary: "One occurrence of a meeting (its nominal start, RFC 3339): every message queued about it with its step, channel and progress (queued, sent, delivered, undelivered, dead), the invited with their answers (yes, no, none) and whether any channel reaches them, and the quorum rule's verdict on the answers so far",
        role: Some(Role::Observer),
        request: None,
        query: &[],
        response: schema::<palabre_engine::commands::OccurrenceReport>,
        success: 200,
        body_limit: None,
        handler: || get(workflows::occurrence),
    },
    RouteDoc {
        method: "post",
        path: "/workflows/{id}/events/{event}",
        summary: "Fire a named event on a workflow: `move` or `cancel` one occurrence of a meeting",
        role: Some(Role::Coordinator),
        request: Some(schema::<workflows::EventBody>),
        query: &[],
        response: schema::<workflows::EventDone>,
        success: 200,
        body_limit: None,
        handler: || post(workflows::fire_event),
    },
    RouteDoc {
        method: "post",
        path: "/cases",
        summary: "Open a dispute on an escalation ladder",
        role: Some(Role::Coordinator),
        request: Some(schema::<cases::NewCaseBody>),
        query: &[],
        response: schema::<cases::CaseView>,
        success: 201,
        body_limit: None,
        handler: || post(cases::open_case),
    },
    RouteDoc {
        method: "get",
        path: "/cases",
        summary: "The cases in the caller's scope, oldest first, with their next deadline: open ones unless `?state=all`; `?overdue=true` (a deadline passed), `?workflow=`, `?place=` (at or below) narrow it. Descriptions for coordinators and administrators only",
        role: Some(Role::Observer),
        request: None,
        query: &[
            (
                "state",
                "`open` (the default: open and acknowledged cases) or `all`",
            ),
            ("overdue", "`true`: only cases with a deadline passed"),
            ("workflow", "only this ladder's cases"),
            ("place", "only cases at this place or below"),
            (
                "descriptions",
                "`false`: none, and no reading of them written to the ledger",
            ),
        ],
        response: schema::<Vec<cases::ListedCaseView>>,
        success: 200,
        body_limit: None,
        handler: || get(cases::list_cases),
    },
    RouteDoc {
        method: "get",
        path: "/cases/{id}",
        summary: "A case (its description for coordinators and administrators only)",
        role: Some(Role::Observer),
        request: None,
        query: &[],
        response: schema::<cases::CaseView>,
        success: 200,
        body_limit: None,
        handler: || get(cases::read_case),
    },
    RouteDoc {
        method: "get",
        path: "/cases/{id}/history",
        summary: "Everything the ledger says about a case",
        role: Some(Role::Observer),
        request: None,
        query: &[],
        response: schema::<Vec<LedgerEntry>>,
        success: 200,
        body_limit: None,
        handler: || get(cases::case_history),
    },
    RouteDoc {
        method: "post",
        path: "/cases/{id}/{action}",
        summary: "Act on a case: `acknowledge`, `note`, `resolve`, `reopen` or `escalate`",
        role: Some(Role::Coordinator),
        request: Some(schema::<cases::NoteBody>),
        query: &[],
        response: schema::<cases::CaseView>,
        success: 200,
        body_limit: None,
        handler: || post(cases::act_on_case),
    },
    RouteDoc {
        method: "get",
        path: "/milestones",
        summary: "The milestone timeline (`?place=` narrows it)",
        role: Some(Role::Observer),
        request: None,
        query: &[("place", "only plans at this place or below")],
        response: schema::<Vec<TimelineRow>>,
        success: 200,
        body_limit: None,
        handler: || get(milestones::milestones),
    },
    RouteDoc {
        method: "post",
        path: "/milestones/{plan}/{id}/status",
        summary: "Record a milestone's status, with a note",
        role: Some(Role::Coordinator),
        request: Some(schema::<milestones::MilestoneStatusBody>),
        query: &[],
        response: schema::<milestones::MilestoneChange>,
        success: 200,
        body_limit: None,
        handler: || post(milestones::set_milestone),
    },
    RouteDoc {
        method: "post",
        path: "/inbound/sms/{secret}",
        summary: "SMS replies from the gateway's webhook, in the configured provider's format (without a gateway: JSON or form `from`, `text`); authenticated by the secret in the URL, and by Twilio's signature for Twilio. Answers what each message did, or for Twilio the empty TwiML it expects",
        role: None,
        request: Some(schema::<PlainInbound>),
        query: &[],
        response: schema::<Vec<InboundOutcome>>,
        success: 200,
        body_limit: None,
        handler: || post(webhooks::inbound_sms),
    },
    RouteDoc {
        method: "post",
        path: "/receipts/sms/{secret}",
        summary: "Delivery receipts from the gateway's webhook, in the configured provider's format: Orange `deliveryInfoNotification`, Twilio status callbacks (signed), Infobip `results`, Africa's Talking forms; without a gateway JSON or form `id`, `status`",
        role: None,
        request: Some(schema::<PlainReceipt>),
        query: &[],
        response: schema::<webhooks::ReceiptsDone>,
        success: 200,
        body_limit: None,
        handler: || post(webhooks::receipts),
    },
    RouteDoc {
        method: "post",
        path: "/voice/{secret}/call",
        summary: "The voice provider's request once a call is answered (`?message=` the call's outbox key): the document that plays the message's recorded clips, then asks for a key (Twilio TwiML). Signed by the provider",
        role: None,
        request: None,
        query: &[("message", "the outbox key of the message the call carries")],
        response: text,
        success: 200,
        body_limit: None,
        handler: || post(voice::call),
    },
    RouteDoc {
        method: "post",
        path: "/voice/{secret}/keys",
        summary: "The key pressed during a call (`?message=`): 1 yes and 2 no, recorded as an SMS reply would be; 9 the message again; 0 never to be called again. Answers with the document that thanks, repeats or asks again",
        role: None,
        request: None,
        query: &[("message", "the outbox key of the message the call carries")],
        response: text,
        success: 200,
        body_limit: None,
        handler: || post(voice::keys),
    },
    RouteDoc {
        method: "post",
        path: "/voice/{secret}/status",
        summary: "A call's final status from the voice provider (signed): completed counts as delivered; busy or no answer is called again later, then goes by the contact's next channel; failed goes by the next channel at once",
        role: None,
        request: None,
        query: &[],
        response: text,
        success: 200,
        body_limit: None,
        handler: || post(voice::status),
    },
    RouteDoc {
        method: "get",
        path: "/voice/{secret}/audio/{language}/{clip}",
        summary: "A recorded clip (`workflows/audio/<language>/<clip>.wav`), fetched by the voice provider during a call; under the webhook secret",
        role: None,
        request: None,
        query: &[],
        response: text,
        success: 200,
        body_limit: None,
        handler: || get(voice::audio),
    },
    RouteDoc {
        method: "get",
        path: "/status",
        summary: "What `palabre status` counts: timers by state, messages by state, and each channel's messages queued, sent, delivered, undelivered and dead. National tokens only: the counts cover every place (a token scoped to a place is refused with 403)",
        role: Some(Role::Observer),
        request: None,
        query: &[],
        response: schema::<StatusCounts>,
        success: 200,
        body_limit: None,
        handler: || get(reports::status),
    },
    RouteDoc {
        method: "get",
        path: "/ledger",
        summary: "The latest ledger entries in the caller's scope (`?workflow=`, `?event=`, `?place=`, `?limit=`)",
        role: Some(Role::Observer),
        request: None,
        query: &[
            ("workflow", "only this workflow's entries"),
            (
                "event",
                "only entries of this event (`dead-letter`, `rule-error` …)",
            ),
            (
                "place",
                "only entries of workflows (or cases) at this place or below",
            ),
            (
                "limit",
                "at most this many entries (default 200, at most 5000)",
            ),
        ],
        response: schema::<Vec<LedgerEntry>>,
        success: 200,
        body_limit: None,
        handler: || get(reports::ledger),
    },
    RouteDoc {
        method: "get",
        path: "/contacts",
        summary: "The directory in the caller's scope: each contact's roles, place, language, channels, whether active and whether they stopped SMS; phones and emails masked",
        role: Some(Role::Coordinator),
        request: None,
        query: &[],
        response: schema::<Vec<directory::ContactView>>,
        success: 200,
        body_limit: None,
        handler: || get(directory::contacts),
    },
    RouteDoc {
        method: "post",
        path: "/contacts/{id}/reveal",
        summary: "One contact with their phone and email in clear, for an administrator; written to the ledger (who, which contact; never the values) before it is answered",
        role: Some(Role::Administrator),
        request: None,
        query: &[],
        response: schema::<directory::ContactView>,
        success: 200,
        body_limit: None,
        handler: || post(directory::reveal),
    },
    RouteDoc {
        method: "post",
        path: "/contacts/import",
        summary: "Import a directory file (the body: CSV with `,` `;` or tab, UTF-8 or Windows-1252, or `.xlsx`) as `palabre contacts import` does: good rows added or updated, each bad row reported with its line and column. National administrators only",
        role: Some(Role::Administrator),
        request: None,
        query: &[(
            "file",
            "the file's name, which tells a workbook (`.xlsx`) from a CSV",
        )],
        response: schema::<palabre_engine::commands::DirectoryImport>,
        success: 200,
        body_limit: Some(MAX_IMPORT_BYTES),
        handler: || post(directory::import),
    },
];

/// Who a caller is, as the ledger names them: its token's label and id
/// (`hotline (token 3f2a…)`), or the id alone for a token without a label.
pub(crate) async fn actor(state: &ApiState, caller: &Caller) -> Result<String, ApiError> {
    let label = state
        .commands
        .store()
        .token(&caller.token)
        .await?
        .map(|t| t.label.trim().to_owned())
        .unwrap_or_default();
    Ok(if label.is_empty() {
        format!("token {}", caller.token)
    } else {
        format!("{label} (token {})", caller.token)
    })
}

/// The answer to a path no route has.
async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route").field("path")
}

/// The answer to a route asked with a method it does not take.
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take this method",
    )
}

/// The router of every route in [`ROUTES`], each behind the gate of its role;
/// POST routes take an `Idempotency-Key` ([`crate::idempotency`]); every path
/// and query is checked first ([`crate::extract::check_uri`]), and every refusal
/// is a JSON [`ApiError`], unknown routes and methods included; every 401 and
/// 403 is logged ([`crate::extract::log_refusals`]).
pub fn router(state: ApiState) -> Router {
    let mut paths: BTreeMap<&str, MethodRouter<ApiState>> = BTreeMap::new();
    for route in ROUTES {
        let mut method = (route.handler)();
        if let Some(limit) = route.body_limit {
            method = method.layer(DefaultBodyLimit::max(limit));
        }
        if route.method == "post" {
            method = method.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::idempotency::idempotent,
            ));
        }
        if let Some(role) = route.role {
            method = method.route_layer(axum::middleware::from_fn_with_state(
                RoleGate {
                    state: state.clone(),
                    role,
                },
                crate::extract::require_role,
            ));
        }
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
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(crate::extract::check_uri))
        .layer(axum::middleware::from_fn(crate::extract::log_refusals))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
