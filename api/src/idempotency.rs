//! `Idempotency-Key` on every POST: a client that sends a request again (a
//! retry after a timeout) with the same key gets the first answer again, its
//! status and body, and the command does not run twice. The same key with
//! another request (another route or body) is refused with 422. Keys belong to
//! the caller's token: one token's key is not another's. The answers are kept in
//! the database for a day, so every worker and a restarted one honour them.
//!
//! Answers of 5xx are not kept (the request may be tried again); everything
//! else is, refusals included: the same request would be refused the same way.

use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;
use palabre_store::{IdempotencyClaim, StoredAnswer};

use crate::auth::Caller;
use crate::extract::RawBody;
use crate::{ApiError, ApiState};

/// The header.
pub const HEADER: &str = "Idempotency-Key";

/// How long an answer is kept.
const LIFE: TimeDelta = TimeDelta::hours(24);

/// How long a first request may take before its key is taken as abandoned (its
/// worker stopped midway) and another request may claim it.
const ABANDONED: TimeDelta = TimeDelta::minutes(5);

/// The middleware of every POST route, inside the route's role gate.
pub(crate) async fn idempotent(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    match answer(&state, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

fn refused(error: ApiError) -> Response {
    error.into_response()
}

async fn answer(state: &ApiState, request: Request, next: Next) -> Result<Response, Response> {
    let Some(key) = request.headers().get(HEADER) else {
        return Ok(next.run(request).await);
    };
    let key = key
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            refused(
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "an Idempotency-Key is 1 to 255 visible ASCII characters",
                )
                .field(HEADER),
            )
        })?
        .to_owned();
    let scope = request
        .extensions()
        .get::<Caller>()
        .map_or_else(|| "public".to_owned(), |c| format!("token {}", c.token));
    let method = request.method().clone();
    let target = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let (parts, body) = request.into_parts();
    let RawBody(body) = RawBody::from_request(Request::from_parts(parts.clone(), body), state)
        .await
        .map_err(refused)?;
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(method.as_str().as_bytes());
    context.update(b"\n");
    context.update(target.as_bytes());
    context.update(b"\n");
    context.update(&body);
    let fingerprint: String = context
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let store = state.commands.store();
    let claim = store
        .claim_idempotency_key(
            &scope,
            &key,
            &fingerprint,
            state.commands.now(),
            LIFE,
            ABANDONED,
        )
        .await
        .map_err(|e| refused(e.into()))?;
    match claim {
        IdempotencyClaim::Taken {
            fingerprint: first,
            answer,
        } => {
            if first != fingerprint {
                return Err(refused(
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "this Idempotency-Key was used for another request",
                    )
                    .field(HEADER),
                ));
            }
            let Some(answer) = answer else {
                return Err(refused(
                    ApiError::new(
                        StatusCode::CONFLICT,
                        "a request with this Idempotency-Key is still being answered",
                    )
                    .field(HEADER),
                ));
            };
            Ok(replay(answer))
        }
        IdempotencyClaim::Claimed => {
            let response = next.run(Request::from_parts(parts, Body::from(body))).await;
            Ok(keep(state, &scope, &key, response).await)
        }
    }
}

/// The kept answer, sent again.
fn replay(answer: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, answer.body).into_response();
    if let Ok(content_type) = HeaderValue::from_str(&answer.content_type) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// Keeps `response` as the key's answer (or frees the key for a 5xx), and
/// hands it on.
async fn keep(state: &ApiState, scope: &str, key: &str, response: Response) -> Response {
    let store = state.commands.store();
    let release = || async {
        if let Err(error) = store.release_idempotency_key(scope, key).await {
            tracing::warn!(%error, "could not free an idempotency key");
        }
    };
    if response.status().is_server_error() {
        release().await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        release().await;
        return refused(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the answer could not be read",
        ));
    };
    match std::str::from_utf8(&bytes) {
        Ok(text) => {
            let answer = StoredAnswer {
                status: parts.status.as_u16(),
                content_type: parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
                body: text.to_owned(),
            };
            if let Err(error) = store.complete_idempotency_key(scope, key, &answer).await {
                tracing::warn!(%error, "could not keep the answer of an idempotency key");
            }
        }
        Err(_) => release().await,
    }
    Response::from_parts(parts, Body::from(bytes))
}
