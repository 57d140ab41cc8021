//! The OpenAPI 3.1 document, made from [`crate::ROUTES`] and the request and
//! response types' JSON Schemas.

use serde_json::{Map, Value, json};

use crate::ROUTES;
use crate::routes::RouteDoc;

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schemars::schema_for!(crate::ApiError) } }
    })
}

fn operation(route: &RouteDoc) -> Value {
    let mut responses = Map::new();
    responses.insert(
        route.success.to_string(),
        json!({
            "description": "success",
            "content": { "application/json": { "schema": (route.response)() } }
        }),
    );
    let webhook = route.path.contains("{secret}");
    if route.role.is_some() {
        responses.insert("401".into(), error_response("no token, or not a valid one"));
        responses.insert(
            "403".into(),
            error_response("the token's role or scope does not allow it"),
        );
        responses.insert("404".into(), error_response("no such thing"));
    }
    if webhook {
        responses.insert(
            "401".into(),
            error_response("wrong secret in the URL, or a bad provider signature"),
        );
        responses.insert("404".into(), error_response("webhooks are not configured"));
    }
    let has_parameters = route.path.contains('{') || !route.query.is_empty();
    if has_parameters {
        responses.insert(
            "400".into(),
            error_response(
                "a path or query parameter that does not fit, is badly encoded or holds a control character: the error names it",
            ),
        );
    }
    match route.path {
        "/openapi.json" => {}
        "/healthz" => {
            responses.insert(
                "503".into(),
                json!({
                    "description": "the database is unavailable",
                    "content": { "application/json": { "schema": (route.response)() } }
                }),
            );
        }
        _ => {
            responses.insert("503".into(), error_response("the database is unavailable"));
        }
    }
    let mut op = json!({
        "summary": route.summary,
        "operationId": format!("{} {}", route.method, route.path),
        "responses": responses,
    });
    if let Some(role) = route.role {
        op["security"] = json!([{ "bearer": [] }]);
        op["x-palabre-role"] = json!(role.as_str());
    }
    if let Some(request) = route.request {
        op["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": request() } }
        });
        op["responses"]["400"] = error_response(
            "malformed body, or a text in it with a control character (other than newline and tab), or a bad parameter: the error names the field",
        );
        if route.role.is_some() {
            // Bodies with a role are commands: their refusals.
            op["responses"]["409"] = error_response(
                "the thing's state does not allow it now (already started, resolved, changed meanwhile), or a request with this Idempotency-Key is still being answered",
            );
            op["responses"]["422"] = error_response(
                "well formed, but it cannot be done (a start in the past, an unknown category), or this Idempotency-Key was used for another request",
            );
        }
        op["responses"]["413"] = error_response("body over 64 KiB");
    }
    if route.method == "post" && route.role.is_none() {
        op["responses"]["409"] =
            error_response("a request with this Idempotency-Key is still being answered");
        op["responses"]["422"] =
            error_response("this Idempotency-Key was used for another request");
    }
    let parameters: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .chain(route.query.iter().map(|(name, description)| {
            json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } })
        }))
        .chain((route.method == "post").then(|| {
            json!({ "name": crate::idempotency::HEADER, "in": "header", "required": false, "description": "the same key, route and body within 24 hours: the first answer again (status and body), the command not run again; the same key with another request: 422. Keys are the token's own", "schema": { "type": "string", "minLength": 1, "maxLength": 255 } })
        }))
        .collect();
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    op
}

/// The OpenAPI document of every route.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[route.method] = operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "palabre",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Disputes, milestones, workflow events and the ledger of a community dialogue mechanism. Bearer tokens come from `palabre token create`; each has a role and a scope."
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        }
    })
}
