//! Liveness: whether the server answers and its database does.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::ApiState;

#[derive(Debug, Serialize, JsonSchema)]
pub struct Health {
    pub status: String,
}

pub(super) async fn healthz(State(state): State<ApiState>) -> Response {
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
