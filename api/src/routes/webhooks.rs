//! What SMS gateways post back: replies and delivery receipts, authenticated by
//! the secret in the URL (and the provider's own signature, which the plugin
//! checks), read in the configured provider's format by the plugin.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use palabre_core::webhooks::{WebhookError, WebhookRequest};
use schemars::JsonSchema;
use serde::Serialize;

use crate::auth;
use crate::extract::{Path, RawBody, control_refused, forbidden_char};
use crate::{ApiError, ApiState};

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReceiptsDone {
    /// Receipts matched to a message.
    pub recorded: usize,
    /// Receipts for ids no message has.
    pub unknown: usize,
}

/// Checks the webhook secret in the URL, in constant time.
pub(super) fn webhook_secret(state: &ApiState, secret: &str) -> Result<(), ApiError> {
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
pub(super) fn webhook<T>(
    state: &ApiState,
    secret: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    read: impl FnOnce(&WebhookRequest<'_>) -> Result<T, WebhookError>,
) -> Result<T, ApiError> {
    webhook_secret(state, secret)?;
    if body.contains(&0) {
        return Err(control_refused(Some("body".into()), '\0'));
    }
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

/// Refuses a fact a provider's body gave with a control character, however the
/// body encoded it (`%00` in a form, `\u0000` in JSON): the API's rule, but a
/// carriage return is let through, which an SMS may hold.
pub(super) fn check_fact(field: &str, text: &str) -> Result<(), ApiError> {
    match text.chars().find(|&c| c != '\r' && forbidden_char(c)) {
        Some(c) => Err(control_refused(Some(field.to_owned()), c)),
        None => Ok(()),
    }
}

pub(super) async fn receipts(
    State(state): State<ApiState>,
    Path(secret): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<ReceiptsDone>, ApiError> {
    let receipts = webhook(&state, &secret, &uri, &headers, &body, |request| {
        state.webhooks.receipts(request)
    })?;
    for receipt in &receipts {
        check_fact("id", &receipt.provider_id)?;
        check_fact("status", &receipt.status)?;
        if let Some(reason) = &receipt.reason {
            check_fact("reason", reason)?;
        }
    }
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

pub(super) async fn inbound_sms(
    State(state): State<ApiState>,
    Path(secret): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let messages = webhook(&state, &secret, &uri, &headers, &body, |request| {
        state.webhooks.inbound(request)
    })?;
    for message in &messages {
        check_fact("from", &message.from)?;
        check_fact("text", &message.text)?;
        if let Some(id) = &message.id {
            check_fact("id", id)?;
        }
    }
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
