//! What every handler takes from a request, checked once: the [`Caller`] (the
//! bearer token, its role checked by the router against the route's role in the
//! table) and a JSON body ([`JsonBody`]), whose errors name the field at fault.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

pub use crate::auth::Caller;
use crate::auth::{self, Role};
use crate::{ApiError, ApiState};

/// The state of a route's gate: the role the route's table entry asks for.
#[derive(Clone)]
pub(crate) struct RoleGate {
    pub(crate) state: ApiState,
    pub(crate) role: Role,
}

/// Lets a request through to its handler only with a good token whose role is
/// enough, and hands the handler its [`Caller`].
pub(crate) async fn require_role(
    State(gate): State<RoleGate>,
    mut request: Request,
    next: Next,
) -> Response {
    match authenticate(&gate.state, request.headers(), gate.role).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(refused) => refused.into_response(),
    }
}

/// The caller of a request, if its token is good and its role enough.
async fn authenticate(
    state: &ApiState,
    headers: &HeaderMap,
    need: Role,
) -> Result<Caller, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is needed");
    let bearer = bearer.ok_or_else(unauthorized)?;
    let caller = auth::check(state.commands.store(), bearer.trim(), state.commands.now())
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

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    /// The caller the route's gate let through; a route without a role has none.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Caller, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is needed")
        })
    }
}

/// The refusal of a caller outside its token's scope.
pub(crate) fn out_of_scope(caller: &Caller) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!("outside this token's scope ({})", caller.scope),
    )
}

/// A JSON request body of type `T`. A body that does not fit is refused with
/// 400 and the field at fault; an empty body reads as JSON `null`, so
/// `JsonBody<Option<T>>` takes a body that may be left out.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
        let body: &[u8] = if body.is_empty() { b"null" } else { &body };
        parse(body).map(JsonBody)
    }
}

/// Reads a JSON body, naming the field at fault when it does not fit.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
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
