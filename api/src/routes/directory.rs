//! The directory: contacts in the caller's scope with their phones and emails
//! masked, one contact revealed to an administrator (written to the ledger
//! before it is shown: who, which contact, never the values), and a directory
//! file imported (the dashboard's form, as `palabre contacts import`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use palabre_core::redact;
use palabre_engine::commands::DirectoryImport;
use palabre_lang::contacts::Contact;
use palabre_store::DirectoryEntry;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::extract::{Path, Query, RawBody, out_of_scope};
use crate::{ApiError, ApiState};

/// A contact as listed: phone and email masked (`+223 •• •• 22 33`,
/// `a•••@example.org`) unless revealed.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ContactView {
    #[serde(flatten)]
    pub contact: Contact,
    /// False for a contact kept for the record only.
    pub active: bool,
    /// They answered STOP: no SMS until START.
    pub sms_stopped: bool,
}

fn view(entry: DirectoryEntry, sms_stopped: bool, reveal: bool) -> ContactView {
    let mut contact = entry.contact;
    if !reveal {
        contact.phone = contact.phone.as_deref().map(redact::phone);
        contact.email = contact.email.as_deref().map(redact::email);
    }
    ContactView {
        contact,
        active: entry.active,
        sms_stopped,
    }
}

pub(super) async fn contacts(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<ContactView>>, ApiError> {
    let store = state.commands.store();
    let stopped = store.sms_stopped().await?;
    let listed = store
        .directory()
        .await?
        .into_iter()
        .filter(|e| caller.covers(&e.contact.place))
        .map(|e| {
            let stop = stopped.contains(&e.contact.id);
            view(e, stop, false)
        })
        .collect();
    Ok(Json(listed))
}

pub(super) async fn reveal(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ContactView>, ApiError> {
    let store = state.commands.store();
    let Some(entry) = store
        .directory()
        .await?
        .into_iter()
        .find(|e| e.contact.id == id)
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no contact '{id}'"),
        ));
    };
    if !caller.covers(&entry.contact.place) {
        return Err(out_of_scope(&caller));
    }
    let actor = super::actor(&state, &caller).await?;
    // Accounted for before it is shown.
    let how = format!("shown through POST /contacts/{id}/reveal to {actor}");
    state.commands.record_contact_reveal(&id, &how).await?;
    let stopped = store.sms_stopped().await?.contains(&id);
    Ok(Json(view(entry, stopped, true)))
}

/// The file's name, for how to read it (`.xlsx` or CSV).
#[derive(Debug, Deserialize)]
pub struct ImportQuery {
    pub file: Option<String>,
}

pub(super) async fn import(
    State(state): State<ApiState>,
    caller: Caller,
    Query(query): Query<ImportQuery>,
    RawBody(body): RawBody,
) -> Result<Json<DirectoryImport>, ApiError> {
    if caller.scope != crate::auth::NATIONAL {
        return Err(out_of_scope(&caller));
    }
    let file = query.file.unwrap_or_else(|| "directory.csv".to_owned());
    Ok(Json(state.commands.import_directory(&file, &body).await?))
}
