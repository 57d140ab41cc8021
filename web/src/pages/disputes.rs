//! Disputes: the open cases in scope on a board, one column per level of their
//! ladder (village chief, mayor, prefect …), each with its category, place,
//! age and the time left before its next deadline (counted in working time by
//! the engine); a case with its history; opening a case and acting on one
//! (acknowledge, note, resolve, reopen, escalate) for coordinators.
//! Descriptions are shown as the API shows them (coordinators and
//! administrators, each reading written to the ledger).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::meetings::{DoneQuery, workflows_of};
use super::{done, page, ser};
use crate::Dashboard;
use crate::api::segment;
use crate::session::Viewer;

/// A case, as `GET /cases` lists it.
#[derive(Debug, Clone, Deserialize, Serialize)]
struct Listed {
    id: String,
    workflow: String,
    category: String,
    place: String,
    severity: i64,
    level: usize,
    level_id: String,
    state: String,
    opened: String,
    next_deadline: Option<String>,
}

/// `GET /disputes`.
pub(crate) async fn board(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Query(query): Query<DoneQuery>,
) -> Response {
    page(board_page(&dashboard, &viewer, query).await)
}

async fn board_page(
    dashboard: &Dashboard,
    viewer: &Viewer,
    query: DoneQuery,
) -> Result<Response, Response> {
    // The board shows no description: none is asked for, none is "read".
    let cases: Vec<Listed> = dashboard.read(viewer, "/cases?descriptions=false").await?;
    let ladders = workflows_of(dashboard, viewer, "escalation").await?;
    let mut by_ladder: BTreeMap<&str, Vec<&Listed>> = BTreeMap::new();
    for case in &cases {
        by_ladder.entry(&case.workflow).or_default().push(case);
    }
    let mut boards: Vec<minijinja::Value> = Vec::new();
    for ladder in &ladders {
        let theirs = by_ladder.remove(ladder.id.as_str()).unwrap_or_default();
        let columns: Vec<minijinja::Value> = ladder
            .levels
            .iter()
            .enumerate()
            .map(|(index, level)| {
                let here: Vec<&&Listed> = theirs.iter().filter(|c| c.level == index).collect();
                minijinja::context! { level => ser(level), cases => ser(&here) }
            })
            .collect();
        boards.push(minijinja::context! {
            id => &ladder.id,
            title => &ladder.title,
            columns => columns,
            count => theirs.len(),
        });
    }
    // Cases of ladders outside the token's scope (a commune's token on a
    // regional ladder), by their levels as the cases name them.
    for (ladder, theirs) in by_ladder {
        let mut levels: BTreeMap<usize, (&str, Vec<&Listed>)> = BTreeMap::new();
        for case in &theirs {
            levels
                .entry(case.level)
                .or_insert((&case.level_id, Vec::new()))
                .1
                .push(case);
        }
        let columns: Vec<minijinja::Value> = levels
            .into_values()
            .map(|(id, cases)| {
                minijinja::context! { level => minijinja::context! { id => id, title => id }, cases => ser(&cases) }
            })
            .collect();
        boards.push(minijinja::context! {
            id => ladder, title => ladder, columns => columns, count => theirs.len(),
        });
    }
    dashboard
        .show(
            viewer,
            "disputes.html",
            minijinja::context! {
                boards => boards,
                ladders => ser(&ladders),
                total => cases.len(),
                done => query.done,
            },
        )
        .await
}

/// A new case, as the board's form posts it.
#[derive(Debug, Deserialize)]
struct OpenForm {
    workflow: String,
    category: String,
    place: String,
    #[serde(default)]
    parties: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    description: String,
}

/// `POST /disputes`: `POST /cases`, then the new case's page.
pub(crate) async fn open(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    body: axum::body::Bytes,
) -> Response {
    page(open_case(&dashboard, &viewer, &body).await)
}

async fn open_case(
    dashboard: &Dashboard,
    viewer: &Viewer,
    body: &[u8],
) -> Result<Response, Response> {
    let form: OpenForm = viewer.check_form(dashboard, body)?;
    let parties: Vec<&str> = form
        .parties
        .split([',', ';', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let body = serde_json::json!({
        "workflow": form.workflow,
        "category": form.category,
        "place": form.place.trim(),
        "parties": parties,
        "severity": form.severity.trim().parse::<i64>().unwrap_or(2),
        "description": form.description,
    });
    #[derive(Deserialize)]
    struct Opened {
        id: String,
    }
    let opened: Opened = dashboard.act(viewer, "/cases", &body).await?;
    Ok(Redirect::to(&format!("/disputes/{}?done=opened", segment(&opened.id))).into_response())
}

/// `GET /disputes/{id}`: the case and its history.
pub(crate) async fn case(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Response {
    page(case_page(&dashboard, &viewer, &id, query).await)
}

async fn case_page(
    dashboard: &Dashboard,
    viewer: &Viewer,
    id: &str,
    query: DoneQuery,
) -> Result<Response, Response> {
    let case: serde_json::Value = dashboard
        .read(viewer, &format!("/cases/{}", segment(id)))
        .await?;
    let history: Vec<serde_json::Value> = dashboard
        .read(viewer, &format!("/cases/{}/history", segment(id)))
        .await?;
    // The level by its title, when the ladder is in the viewer's scope.
    let ladders = workflows_of(dashboard, viewer, "escalation").await?;
    let level = case["level_id"].as_str().unwrap_or_default();
    let level_title = ladders
        .iter()
        .filter(|l| Some(l.id.as_str()) == case["workflow"].as_str())
        .flat_map(|l| &l.levels)
        .find(|l| l["id"].as_str() == Some(level))
        .and_then(|l| l["title"].as_str())
        .unwrap_or(level)
        .to_owned();
    dashboard
        .show(
            viewer,
            "case.html",
            minijinja::context! {
                case => ser(&case),
                level_title => level_title,
                history => ser(&history),
                actions => ["acknowledge", "note", "escalate", "resolve", "reopen"],
                done => query.done,
            },
        )
        .await
}

#[derive(Debug, Deserialize)]
struct ActForm {
    action: String,
    #[serde(default)]
    note: String,
}

/// `POST /disputes/{id}`: `POST /cases/{id}/{action}`.
pub(crate) async fn act(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    page(act_on(&dashboard, &viewer, &id, &body).await)
}

async fn act_on(
    dashboard: &Dashboard,
    viewer: &Viewer,
    id: &str,
    body: &[u8],
) -> Result<Response, Response> {
    let form: ActForm = viewer.check_form(dashboard, body)?;
    let path = format!("/cases/{}/{}", segment(id), segment(&form.action));
    let _: serde_json::Value = dashboard
        .act(viewer, &path, &serde_json::json!({ "note": form.note }))
        .await?;
    Ok(done(
        &format!("/disputes/{}", segment(id)),
        &segment(&form.action),
    ))
}
