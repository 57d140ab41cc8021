//! palabre's HTTP API, served by `palabre serve`: other tools (a form, a
//! hotline, a dashboard) open disputes and act on them, report milestone
//! progress, fire workflow events, and read cases, timelines and the ledger.
//!
//! Every route is declared once in [`ROUTES`], which both builds the axum router
//! and the OpenAPI document (`/openapi.json`), so the two cannot drift; request
//! and response schemas come from the Rust types (schemars). Calls are
//! authenticated by bearer tokens (`palabre token create`), each with a role and
//! a scope: no token or a wrong one is 401, a right token outside its role or
//! scope is 403, a malformed body is 400 with a JSON error naming the field, a
//! body over 64 KiB is 413. Text with a control character (but newline and
//! tab) in a body, a path or a query is refused with 400 before any SQL. Every
//! refusal, unknown routes and methods included, is a JSON [`ApiError`]. A POST
//! may carry an `Idempotency-Key`: sent again, it gets the first answer again.
//! Nothing is changed by a refused request. Every 401 and 403 is logged (warn
//! and info) with the method, the path (without its query; a webhook's secret
//! masked), the client's address and the reason, never a token's secret.
//!
//! Over TCP ([`serve`], [`serve_with`]) slow and numerous clients are bounded
//! ([`ServeConfig`]): a request's headers must arrive within
//! [`HEADER_READ_TIMEOUT`] (10 s), its body within [`BODY_READ_TIMEOUT`] (30 s,
//! else 408), a connection silent for [`KEEP_ALIVE_IDLE`] (5 s) is closed, and
//! at most [`MAX_CONNECTIONS`] (512) are served at once, the next ones waiting
//! in the listener's queue.

pub mod auth;
mod extract;
mod idempotency;
mod metrics;
mod openapi;
mod routes;
mod serve;

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use palabre_core::webhooks::Webhooks;
use palabre_engine::commands::{CommandError, Commands};
use schemars::JsonSchema;
use serde::Serialize;

pub use extract::SignedIn;
pub use openapi::document;
/// The words `GET /ledger?event=` takes.
pub use palabre_store::LedgerEvent;
pub use routes::{ROUTES, RouteDoc, router};
pub use serve::{
    BODY_READ_TIMEOUT, HEADER_READ_TIMEOUT, KEEP_ALIVE_IDLE, MAX_CONNECTIONS, ServeConfig,
    serve_router, serve_with,
};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The largest directory file `POST /contacts/import` takes (a national
/// directory of some thousands of people is well under it).
pub const MAX_IMPORT_BYTES: usize = 4 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    /// Everything the API changes goes through the engine's commands; what it
    /// reads comes from their store and definitions.
    pub commands: Commands,
    /// The secret inbound SMS webhooks put in their URL (`/inbound/sms/{secret}`);
    /// `None`: inbound SMS are not taken.
    pub inbound_secret: Option<String>,
    /// Reads the configured gateway's receipts and replies (its format, its signature).
    pub webhooks: Arc<dyn Webhooks>,
    /// The voice gateway's side of calls, when calls are configured.
    pub voice: Option<VoiceCalls>,
}

/// What the API needs to answer a voice provider during a call.
#[derive(Clone)]
pub struct VoiceCalls {
    pub gateway: Arc<dyn palabre_core::voice::VoiceGateway>,
    /// The address the provider reaches the API at (`https://palabre.example.org`).
    pub public_url: String,
}

/// An error answer: `{"error": "...", "field": "..."}`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    /// Why, for the server's log when it says more than `error` (which token
    /// was refused, and why); never a secret. Not sent.
    #[serde(skip)]
    pub(crate) logged: Option<String>,
    /// What went wrong, for people.
    pub error: String,
    /// The request field at fault, as a path (`parties[1]`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status: status.as_u16(),
            logged: None,
            error: error.into(),
            field: None,
        }
    }

    /// Says `reason` in the log of a refusal instead of the error sent.
    pub(crate) fn logged_as(mut self, reason: impl Into<String>) -> ApiError {
        self.logged = Some(reason.into());
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }
}

/// Why a request was refused, as the answer carries it to the log of refusals
/// ([`extract::log_refusals`]).
#[derive(Debug, Clone)]
pub(crate) struct Refusal(pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reason = self.logged.clone().unwrap_or_else(|| self.error.clone());
        let mut response = (status, Json(self)).into_response();
        response.extensions_mut().insert(Refusal(reason));
        response
    }
}

impl From<palabre_store::StoreError> for ApiError {
    fn from(error: palabre_store::StoreError) -> ApiError {
        tracing::warn!(%error, "store error in an API call");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable",
        )
    }
}

/// The one place a command's refusal becomes an HTTP status.
impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> ApiError {
        match error {
            CommandError::NotFound(refusal) => ApiError::new(StatusCode::NOT_FOUND, refusal),
            CommandError::Conflict(refusal) => ApiError::new(StatusCode::CONFLICT, refusal),
            CommandError::Invalid(refusal) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, refusal)
            }
            CommandError::Store(store) => store.into(),
        }
    }
}

/// `GET /openapi.json`.
async fn openapi_document() -> Json<serde_json::Value> {
    Json(openapi::document())
}

/// Serves the API on `listener` until `shutdown` completes, within the
/// production limits ([`ServeConfig::default`]); see [`serve_with`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, ServeConfig::default(), shutdown).await
}
