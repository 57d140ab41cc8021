//! The directory: contacts in scope with their roles, place, language,
//! channels, SMS opt-out and whether active, phones and emails masked; one
//! contact revealed to an administrator who asks (the API writes it to the
//! ledger first); a directory file imported, with the line-numbered report of
//! `palabre contacts import`.

use axum::extract::{Multipart, Path, State};
use axum::response::Response;

use super::{page, ser};
use crate::Dashboard;
use crate::api::{self, Refused, segment};
use crate::session::{Nothing, Viewer};

/// `GET /directory`.
pub(crate) async fn list(State(dashboard): State<Dashboard>, viewer: Viewer) -> Response {
    page(directory_page(&dashboard, &viewer, None, None).await)
}

async fn directory_page(
    dashboard: &Dashboard,
    viewer: &Viewer,
    revealed: Option<serde_json::Value>,
    imported: Option<serde_json::Value>,
) -> Result<Response, Response> {
    let contacts: Vec<serde_json::Value> = dashboard.read(viewer, "/contacts").await?;
    dashboard
        .show(
            viewer,
            "directory.html",
            minijinja::context! {
                contacts => ser(&contacts),
                revealed => ser(&revealed),
                imported => ser(&imported),
            },
        )
        .await
}

/// `POST /directory/{id}/reveal`: `POST /contacts/{id}/reveal`, shown above the list.
pub(crate) async fn reveal(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    page(reveal_one(&dashboard, &viewer, &id, &body).await)
}

async fn reveal_one(
    dashboard: &Dashboard,
    viewer: &Viewer,
    id: &str,
    body: &[u8],
) -> Result<Response, Response> {
    let _: Nothing = viewer.check_form(dashboard, body)?;
    let path = format!("/contacts/{}/reveal", segment(id));
    let contact: serde_json::Value = dashboard
        .act(viewer, &path, &serde_json::json!(null))
        .await?;
    directory_page(dashboard, viewer, Some(contact), None).await
}

/// A file posted with the form's CSRF secret.
struct Uploaded {
    csrf: String,
    name: String,
    bytes: Vec<u8>,
}

/// The import form's fields: its CSRF secret and its file.
async fn read_upload(mut form: Multipart) -> Option<Uploaded> {
    let (mut csrf, mut file) = (String::new(), None);
    while let Ok(Some(field)) = form.next_field().await {
        match field.name() {
            Some("csrf") => csrf = field.text().await.ok()?,
            Some("file") => {
                let name = field.file_name().unwrap_or("directory.csv").to_owned();
                file = Some((name, field.bytes().await.ok()?.to_vec()));
            }
            _ => {}
        }
    }
    let (name, bytes) = file?;
    Some(Uploaded { csrf, name, bytes })
}

/// `POST /directory/import` (a file form): `POST /contacts/import`, its report
/// shown above the list.
pub(crate) async fn import(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    form: Multipart,
) -> Response {
    page(import_file(&dashboard, &viewer, form).await)
}

async fn import_file(
    dashboard: &Dashboard,
    viewer: &Viewer,
    form: Multipart,
) -> Result<Response, Response> {
    let Some(uploaded) = read_upload(form).await else {
        return Err(dashboard.refused(
            viewer,
            &Refused {
                status: axum::http::StatusCode::BAD_REQUEST,
                reason: "the form has no file".to_owned(),
            },
        ));
    };
    viewer.check_csrf(dashboard, &uploaded.csrf)?;
    let path = format!("/contacts/import?file={}", segment(&uploaded.name));
    let report: serde_json::Value = api::call(
        &dashboard.api,
        &viewer.caller,
        axum::http::Method::POST,
        &path,
        Some(("text/csv", uploaded.bytes)),
    )
    .await
    .map_err(|refused| dashboard.refused(viewer, &refused))?;
    directory_page(dashboard, viewer, None, Some(report)).await
}
