//! The dashboard's calls to the API, within the process: a request to the
//! API's router carrying the session's caller ([`SignedIn`]), so that every
//! page is allowed, scoped and refused exactly as the same call over HTTP with
//! the session's token would be. An answer is read into the type the page
//! needs; a refusal keeps its status and the API's reason.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use palabre_api::SignedIn;
use palabre_api::auth::Caller;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;
use tower::ServiceExt as _;

/// A call the API refused, or could not answer.
#[derive(Debug, Clone)]
pub(crate) struct Refused {
    pub(crate) status: StatusCode,
    /// The API's reason (`error`), in English, for the page's details.
    pub(crate) reason: String,
}

/// What a path segment or a query value escapes: all but RFC 3986's
/// unreserved characters.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One path segment or query value, escaped (an id or an instant in a path).
pub(crate) fn segment(text: &str) -> String {
    utf8_percent_encode(text, ESCAPED).to_string()
}

/// The largest answer a page reads (the API's are far smaller).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

pub(crate) async fn call<T: DeserializeOwned>(
    api: &Router,
    caller: &Caller,
    method: Method,
    path_and_query: &str,
    body: Option<(&'static str, Vec<u8>)>,
) -> Result<T, Refused> {
    let mut request = Request::builder().method(method).uri(path_and_query);
    let body = match body {
        Some((content_type, bytes)) => {
            request = request.header(header::CONTENT_TYPE, content_type);
            Body::from(bytes)
        }
        None => Body::empty(),
    };
    let mut request = request.body(body).map_err(|e| Refused {
        status: StatusCode::BAD_REQUEST,
        reason: e.to_string(),
    })?;
    request.extensions_mut().insert(SignedIn(caller.clone()));
    let Ok(response) = api.clone().oneshot(request).await;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
        .await
        .map_err(|e| Refused {
            status: StatusCode::BAD_GATEWAY,
            reason: e.to_string(),
        })?;
    if !status.is_success() {
        let reason = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_default();
        return Err(Refused { status, reason });
    }
    serde_json::from_slice(&bytes).map_err(|e| Refused {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        reason: format!("the API's answer did not read: {e}"),
    })
}

/// `GET path` as `caller`.
pub(crate) async fn get<T: DeserializeOwned>(
    api: &Router,
    caller: &Caller,
    path_and_query: &str,
) -> Result<T, Refused> {
    call(api, caller, Method::GET, path_and_query, None).await
}

/// `POST path` with a JSON body, as `caller`.
pub(crate) async fn post<T: DeserializeOwned>(
    api: &Router,
    caller: &Caller,
    path: &str,
    body: &serde_json::Value,
) -> Result<T, Refused> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    call(
        api,
        caller,
        Method::POST,
        path,
        Some(("application/json", bytes)),
    )
    .await
}
