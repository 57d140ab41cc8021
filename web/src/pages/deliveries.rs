//! Deliveries and health: each channel's messages queued, sent, delivered,
//! undelivered and dead (what `palabre status` counts), the last dead letters
//! with their reasons (addresses scrubbed by the connectors), the last rule
//! errors with their script and line, and the ledger's last entries filtered
//! by workflow, place and event.

use axum::extract::{Query, State};
use axum::response::Response;
use palabre_api::LedgerEvent;
use serde::Deserialize;

use super::meetings::Workflow;
use super::{page, ser};
use crate::Dashboard;
use crate::api::{self, segment};
use crate::session::Viewer;

/// The ledger's filter, as the page's form sends it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LedgerFilter {
    #[serde(default)]
    workflow: String,
    #[serde(default)]
    place: String,
    #[serde(default)]
    event: String,
}

/// `GET /deliveries`.
pub(crate) async fn health(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Query(filter): Query<LedgerFilter>,
) -> Response {
    page(health_page(&dashboard, &viewer, filter).await)
}

async fn health_page(
    dashboard: &Dashboard,
    viewer: &Viewer,
    filter: LedgerFilter,
) -> Result<Response, Response> {
    // A token of a place reads the counts of its own workflows.
    let counts: serde_json::Value = dashboard.read(viewer, "/status").await?;
    let dead: Vec<serde_json::Value> = dashboard
        .read(viewer, "/ledger?event=dead-letter&limit=20")
        .await?;
    let rule_errors: Vec<serde_json::Value> = dashboard
        .read(viewer, "/ledger?event=rule-error&limit=20")
        .await?;
    let query = format!(
        "/ledger?limit=50&workflow={}&place={}&event={}",
        segment(filter.workflow.trim()),
        segment(filter.place.trim()),
        segment(filter.event.trim()),
    );
    let entries: Vec<serde_json::Value> =
        match api::get(&dashboard.api, &viewer.caller, &query).await {
            Ok(entries) => entries,
            // A filter naming no event is the form's mistake: said on the page.
            Err(refused) if refused.status.as_u16() == 400 => Vec::new(),
            Err(refused) => return Err(dashboard.refused(viewer, &refused)),
        };
    let workflows: Vec<Workflow> = dashboard.read(viewer, "/workflows").await?;
    dashboard
        .show(
            viewer,
            "deliveries.html",
            minijinja::context! {
                counts => ser(&counts),
                dead => ser(&dead.into_iter().rev().collect::<Vec<_>>()),
                rule_errors => ser(&rule_errors.into_iter().rev().collect::<Vec<_>>()),
                entries => ser(&entries.into_iter().rev().collect::<Vec<_>>()),
                workflows => ser(&workflows),
                events => LedgerEvent::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
                filter => minijinja::context! {
                    workflow => filter.workflow, place => filter.place, event => filter.event,
                },
            },
        )
        .await
}
