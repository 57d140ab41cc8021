//! Milestones: each plan in scope as a timeline (see [`crate::timeline`]) and
//! a table of its milestones with owners, what each waits for, and a form to
//! set a status with a note (coordinators).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use palabre_lang::milestones::{MilestoneStatus, TimelineRow};
use serde::Deserialize;

use super::meetings::{DoneQuery, workflows_of};
use super::{done, page, ser};
use crate::Dashboard;
use crate::api::segment;
use crate::session::Viewer;
use crate::timeline::draw;

/// `GET /plans`.
pub(crate) async fn timeline(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Query(query): Query<DoneQuery>,
) -> Response {
    page(timeline_page(&dashboard, &viewer, query).await)
}

async fn timeline_page(
    dashboard: &Dashboard,
    viewer: &Viewer,
    query: DoneQuery,
) -> Result<Response, Response> {
    let rows: Vec<TimelineRow> = dashboard.read(viewer, "/milestones").await?;
    let titles: BTreeMap<String, String> = workflows_of(dashboard, viewer, "milestones")
        .await?
        .into_iter()
        .map(|w| (w.id, w.title))
        .collect();
    let mut plans: BTreeMap<&str, Vec<TimelineRow>> = BTreeMap::new();
    for row in &rows {
        plans.entry(&row.plan).or_default().push(row.clone());
    }
    let today = dashboard.state.commands.now().date_naive();
    let late = viewer
        .look
        .language
        .catalogue()
        .texts
        .get("late")
        .cloned()
        .unwrap_or_default();
    let shown: Vec<minijinja::Value> = plans
        .into_iter()
        .map(|(plan, rows)| {
            let title = titles.get(plan).cloned().unwrap_or_else(|| plan.to_owned());
            minijinja::context! {
                id => plan,
                title => &title,
                place => rows.first().map(|r| r.place.clone()).unwrap_or_default(),
                svg => minijinja::Value::from_safe_string(draw(&rows, today, &title, &late)),
                rows => ser(&rows),
            }
        })
        .collect();
    let statuses: Vec<&str> = MilestoneStatus::ALL.iter().map(|s| s.as_str()).collect();
    dashboard
        .show(
            viewer,
            "plans.html",
            minijinja::context! { plans => shown, statuses => statuses, done => query.done },
        )
        .await
}

#[derive(Debug, Deserialize)]
struct StatusForm {
    status: String,
    #[serde(default)]
    note: String,
}

/// `POST /plans/{plan}/{id}`: `POST /milestones/{plan}/{id}/status`.
pub(crate) async fn set_status(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Path((plan, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    page(set(&dashboard, &viewer, &plan, &id, &body).await)
}

async fn set(
    dashboard: &Dashboard,
    viewer: &Viewer,
    plan: &str,
    id: &str,
    body: &[u8],
) -> Result<Response, Response> {
    let form: StatusForm = viewer.check_form(dashboard, body)?;
    let path = format!("/milestones/{}/{}/status", segment(plan), segment(id));
    let body = serde_json::json!({ "status": form.status, "note": form.note });
    let _: serde_json::Value = dashboard.act(viewer, &path, &body).await?;
    Ok(done("/plans", "status"))
}
