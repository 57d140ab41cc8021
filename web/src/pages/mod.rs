//! The pages, one module per part of the dashboard. A handler reads what it
//! shows through [`crate::api`] as its [`Viewer`], and a form it takes is
//! checked for the session's CSRF secret, sent to the API as the same call a
//! tool would make, and answered with a redirect back to the page (303), or
//! the refusal's page.

pub(crate) mod deliveries;
pub(crate) mod directory;
pub(crate) mod disputes;
pub(crate) mod meetings;
pub(crate) mod plans;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::Value;
use serde::de::DeserializeOwned;

use crate::Dashboard;
use crate::api::{self, Refused};
use crate::session::Viewer;

impl Dashboard {
    /// `GET path` as `viewer`, or the refusal's page.
    pub(crate) async fn read<T: DeserializeOwned>(
        &self,
        viewer: &Viewer,
        path: &str,
    ) -> Result<T, Response> {
        api::get(&self.api, &viewer.caller, path)
            .await
            .map_err(|refused| self.refused(viewer, &refused))
    }

    /// `POST path` with `body` as `viewer`, or the refusal's page.
    pub(crate) async fn act<T: DeserializeOwned>(
        &self,
        viewer: &Viewer,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, Response> {
        api::post(&self.api, &viewer.caller, path, body)
            .await
            .map_err(|refused| self.refused(viewer, &refused))
    }

    pub(crate) fn refused(&self, viewer: &Viewer, refused: &Refused) -> Response {
        self.pages.refusal(&viewer.look, Some(viewer), refused)
    }

    /// The page `template` for `viewer`, with `context` and the present.
    pub(crate) fn show(&self, viewer: &Viewer, template: &str, context: Value) -> Response {
        let context = minijinja::context! {
            now => self.state.commands.now().to_rfc3339(),
            ..context
        };
        self.pages.page(
            &viewer.look,
            Some(viewer),
            template,
            context,
            StatusCode::OK,
        )
    }
}

/// Anything serializable, as a template value.
pub(crate) fn ser<T: serde::Serialize>(value: &T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// Back to `path` after a form was taken, saying what was done (`?done=`).
pub(crate) fn done(path: &str, what: &str) -> Response {
    Redirect::to(&format!("{path}?done={what}")).into_response()
}

/// Either side of a handler's result is a page.
pub(crate) fn page(result: Result<Response, Response>) -> Response {
    result.unwrap_or_else(|refusal| refusal)
}
