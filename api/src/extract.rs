//! What every handler takes from a request, checked once: the [`Caller`] (the
//! bearer token, its role checked by the router against the route's role in the
//! table), a JSON body ([`JsonBody`]), path parameters ([`Path`]), a query
//! ([`Query`]) and a raw body ([`RawBody`]), whose errors are JSON [`ApiError`]s
//! naming the field at fault. No text reaches a handler with a control character
//! other than newline and tab ([`forbidden_char`]): [`JsonBody`] walks every
//! string of the body, and [`check_uri`] every path segment and query value.
//! Every 401 and 403 is logged once, by [`log_refusals`].

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, MatchedPath};
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
    let signed_in = request.extensions().get::<SignedIn>().map(|s| s.0.clone());
    let caller = match signed_in {
        Some(caller) => Ok(caller),
        None => bearer_caller(&gate.state, request.headers()).await,
    };
    match caller.and_then(|caller| enough(caller, gate.role)) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(refused) => refused.into_response(),
    }
}

/// A caller the dashboard signed in (its session checked by
/// [`crate::auth::check_session`]), carried by a request the dashboard makes of
/// the API within the process: a request from outside cannot carry one, so the
/// API's routes take it in place of a bearer token, and check its role and
/// scope as they check a token's.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Caller);

/// The caller of a request's bearer token, if it is good.
async fn bearer_caller(state: &ApiState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is needed");
    let Some(authorization) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized().logged_as("no Authorization header"));
    };
    let Some(bearer) = authorization
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Err(unauthorized().logged_as("an Authorization header but no bearer token"));
    };
    auth::check_token(state.commands.store(), bearer.trim(), state.commands.now())
        .await?
        .map_err(|refusal| unauthorized().logged_as(refusal.to_string()))
}

/// `caller`, if its role is at least `need`.
fn enough(caller: Caller, need: Role) -> Result<Caller, ApiError> {
    if caller.role < need {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this needs the {need} role; the token is {}", caller.role),
        )
        .logged_as(format!(
            "token {} is {}, this needs {need}",
            caller.token, caller.role
        )));
    }
    Ok(caller)
}

/// Logs every refused request, 401 (warn) and 403 (info), once, whichever
/// part of the API refused it: the method, the path without its query (a
/// webhook's secret masked), the client's address and the reason, never a
/// token or a secret, so that guessing leaves a trace.
pub(crate) async fn log_refusals(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = logged_path(&request);
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.to_string());
    let response = next.run(request).await;
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        let reason = response
            .extensions()
            .get::<crate::Refusal>()
            .map_or("", |r| r.0.as_str());
        let status = status.as_u16();
        if status == 401 {
            tracing::warn!(status, %method, %path, %remote, %reason, "API request refused");
        } else {
            tracing::info!(status, %method, %path, %remote, %reason, "API request refused");
        }
    }
    response
}

/// The path of a request as the log shows it: without its query, and a route
/// whose path holds a secret (`/inbound/sms/{secret}`) as its template.
fn logged_path(request: &Request) -> String {
    match request.extensions().get::<MatchedPath>() {
        Some(matched) if matched.as_str().contains("{secret}") => matched.as_str().to_owned(),
        _ => request.uri().path().to_owned(),
    }
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

/// Whether `c` is refused in text the API takes: the C0 controls but newline
/// and tab, DEL, the C1 controls, and the bidirectional controls (embeddings,
/// overrides and isolates, U+202A–U+202E and U+2066–U+2069) that can make a text
/// read otherwise than it is. PostgreSQL cannot store NUL at all.
pub(crate) fn forbidden_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The refusal of a text holding a [`forbidden_char`].
pub(crate) fn control_refused(field: Option<String>, c: char) -> ApiError {
    let refused = ApiError::new(
        StatusCode::BAD_REQUEST,
        format!(
            "control character U+{:04X} is not allowed (only newline and tab are)",
            u32::from(c)
        ),
    );
    match field {
        Some(field) => refused.field(field),
        None => refused,
    }
}

/// The first string in `value` (object keys included) holding a
/// [`forbidden_char`], refused with its path (`parties[1]`, `a.b`).
fn check_value(value: &serde_json::Value, path: &str) -> Result<(), ApiError> {
    let named = |path: &str| (!path.is_empty()).then(|| path.to_owned());
    match value {
        serde_json::Value::String(text) => match text.chars().find(|c| forbidden_char(*c)) {
            Some(c) => Err(control_refused(named(path), c)),
            None => Ok(()),
        },
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_value(item, &format!("{path}[{i}]"))),
        serde_json::Value::Object(fields) => fields.iter().try_for_each(|(key, item)| {
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if let Some(c) = key.chars().find(|c| forbidden_char(*c)) {
                return Err(control_refused(Some(field.escape_debug().to_string()), c));
            }
            check_value(item, &field)
        }),
        _ => Ok(()),
    }
}

/// A JSON request body of type `T`. A body that does not fit is refused with
/// 400 and the field at fault, and so is one with a [`forbidden_char`] in any
/// string; an empty body reads as JSON `null`, so `JsonBody<Option<T>>` takes a
/// body that may be left out.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        let RawBody(body) = RawBody::from_request(request, state).await?;
        let body: &[u8] = if body.is_empty() { b"null" } else { &body };
        // Not JSON at all: the typed reading below says where.
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
            check_value(&value, "")?;
        }
        parse(body).map(JsonBody)
    }
}

/// A raw request body, at most [`crate::MAX_BODY_BYTES`]; over it, 413 as JSON;
/// not all there within the body read timeout ([`crate::BODY_READ_TIMEOUT`]),
/// 408 as JSON.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<RawBody, ApiError> {
        Bytes::from_request(request, state)
            .await
            .map(RawBody)
            .map_err(|rejection| match crate::serve::body_timed_out(&rejection) {
                Some(timeout) => ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the body did not arrive within {} s of the headers",
                        timeout.as_secs_f64()
                    ),
                ),
                None => body_refused(rejection.status(), rejection.body_text()),
            })
    }
}

/// The refusal of a body that could not be read: over the limit, or cut short.
pub(crate) fn body_refused(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            format!(
                "the body is over the limit of {} KiB",
                crate::MAX_BODY_BYTES / 1024
            ),
        )
    } else {
        ApiError::new(status, text)
    }
}

/// The field a serde error at `path` is about: the path, or for an error about
/// the whole (a missing or unknown field) the field its message names.
fn field_of(path: String, message: &str) -> Option<String> {
    if path == "." {
        message.split('`').nth(1).map(str::to_owned)
    } else {
        Some(path)
    }
}

/// Reads a JSON body, naming the field at fault when it does not fit.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        let bad = ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("malformed body: {message}"),
        );
        match field_of(path, &message) {
            Some(field) => bad.field(field),
            None => bad,
        }
    })
}

/// Path parameters of type `T`; one that does not fit (a bad encoding) is
/// refused with 400 as JSON, naming the parameter.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Path<T>, ApiError> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                let field = match error.kind() {
                    ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::DeserializeError { key, .. } => Some(key.clone()),
                    _ => None,
                };
                let refused = ApiError::new(error.status(), error.body_text());
                Err(match field {
                    Some(field) => refused.field(field),
                    None => refused,
                })
            }
            Err(other) => Err(ApiError::new(other.status(), other.body_text())),
        }
    }
}

/// A query string of type `T`; a value that does not fit is refused with 400
/// as JSON, naming the parameter (`limit`).
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Query<T>, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        read_query(query).map(Query)
    }
}

/// Reads a query string into `T`, naming the parameter at fault.
fn read_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("malformed query string: {error}"),
        )
    })?;
    let deserializer = serde::de::value::MapDeserializer::new(
        pairs
            .into_iter()
            .map(|(key, value)| (key, query_value::QueryValue(value))),
    );
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        let bad = ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("malformed query string: {message}"),
        );
        match field_of(path, &message) {
            Some(field) => bad.field(field),
            None => bad,
        }
    })
}

mod query_value {
    //! One query value, read as what the field asks for: a number, a boolean,
    //! an option (present: `Some`), or text.

    use serde::de::value::{Error, StringDeserializer};
    use serde::de::{self, Error as _, IntoDeserializer, Visitor};

    pub(super) struct QueryValue(pub(super) String);

    impl<'de> IntoDeserializer<'de, Error> for QueryValue {
        type Deserializer = QueryValue;
        fn into_deserializer(self) -> QueryValue {
            self
        }
    }

    macro_rules! number {
        ($($method:ident $visit:ident $ty:ty),*) => {$(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                let n: $ty = self.0.trim().parse().map_err(|_| {
                    Error::custom(format!("expected a number, not `{}`", self.0))
                })?;
                visitor.$visit(n)
            }
        )*};
    }

    impl<'de> de::Deserializer<'de> for QueryValue {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_string(self.0)
        }

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_some(self)
        }

        fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0.as_str() {
                "true" => visitor.visit_bool(true),
                "false" => visitor.visit_bool(false),
                other => Err(Error::custom(format!(
                    "expected `true` or `false`, not `{other}`"
                ))),
            }
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            let text: StringDeserializer<Error> = self.0.into_deserializer();
            visitor.visit_enum(text)
        }

        number! {
            deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16,
            deserialize_i32 visit_i32 i32, deserialize_i64 visit_i64 i64,
            deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
            deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64,
            deserialize_f32 visit_f32 f32, deserialize_f64 visit_f64 f64
        }

        serde::forward_to_deserialize_any! {
            char str string bytes byte_buf unit unit_struct newtype_struct seq
            tuple tuple_struct map struct identifier ignored_any
        }
    }
}

/// Decodes `%XX` escapes (a path segment's); `None` for a bad escape.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Refuses, before any handler runs, a request whose path segments or query
/// keys and values are badly encoded or hold a [`forbidden_char`]: 400 as JSON,
/// naming the path parameter (`id`) or the query parameter.
pub(crate) async fn check_uri(request: Request, next: Next) -> Response {
    match uri_refusal(&request) {
        Some(refused) => refused.into_response(),
        None => next.run(request).await,
    }
}

fn uri_refusal(request: &Request) -> Option<ApiError> {
    let template: Vec<&str> = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().split('/').collect())
        .unwrap_or_default();
    for (i, segment) in request.uri().path().split('/').enumerate() {
        let field = template
            .get(i)
            .and_then(|t| t.strip_prefix('{')?.strip_suffix('}'))
            .unwrap_or("path")
            .to_owned();
        let bad_encoding = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "the path is not percent-encoded UTF-8",
            )
            .field(field.clone())
        };
        let Some(decoded) = percent_decode(segment) else {
            return Some(bad_encoding());
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return Some(bad_encoding());
        };
        if let Some(c) = decoded.chars().find(|c| forbidden_char(*c)) {
            return Some(control_refused(Some(field), c));
        }
    }
    let query = request.uri().query().unwrap_or_default();
    let pairs: Vec<(String, String)> = match serde_urlencoded::from_str(query) {
        Ok(pairs) => pairs,
        Err(error) => {
            return Some(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("malformed query string: {error}"),
            ));
        }
    };
    for (key, value) in &pairs {
        if let Some(c) = key
            .chars()
            .chain(value.chars())
            .find(|c| forbidden_char(*c))
        {
            return Some(control_refused(Some(key.escape_debug().to_string()), c));
        }
    }
    None
}
