//! `/metrics` in the Prometheus text format, read from the database at each
//! scrape, so that every worker sharing a database reports the same figures.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ApiState;

pub(crate) async fn metrics(State(state): State<ApiState>) -> Response {
    let store = state.commands.store();
    let Ok(counts) = store.status(state.commands.now()).await else {
        return crate::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable",
        )
        .into_response();
    };
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, i64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    gauge(
        "palabre_definitions_invalid_since_seconds",
        "When the workflows folder became invalid (Unix seconds; the engine then runs on the last good definitions), 0 while it is valid.",
        &[(
            String::new(),
            counts
                .definitions
                .invalid_since
                .map_or(0, |t| t.timestamp()),
        )],
    );
    gauge(
        "palabre_timers",
        "Timers by state: due later, due and not fired (late), fired, skipped.",
        &[
            ("{state=\"due\"}".to_owned(), counts.due_later),
            ("{state=\"late\"}".to_owned(), counts.late),
            ("{state=\"fired\"}".to_owned(), counts.fired),
            ("{state=\"skipped\"}".to_owned(), counts.skipped),
        ],
    );
    let by_channel: Vec<(String, i64)> = counts
        .channels
        .iter()
        .flat_map(|c| {
            [
                ("queued", c.queued),
                ("sent", c.sent),
                ("delivered", c.delivered),
                ("undelivered", c.undelivered),
                ("failed", c.dead_lettered),
            ]
            .map(|(state, n)| {
                (
                    format!("{{channel=\"{}\",state=\"{state}\"}}", c.channel),
                    n,
                )
            })
        })
        .collect();
    gauge(
        "palabre_messages",
        "Messages by channel and state: queued, sent (accepted by the provider), of those \
         delivered or undelivered by its receipts, failed (dead letters).",
        &by_channel,
    );
    gauge(
        "palabre_rule_errors",
        "Rules that failed and whose hook's default was applied.",
        &[(String::new(), counts.rule_errors)],
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
