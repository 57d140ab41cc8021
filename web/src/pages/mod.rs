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

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::Value;
use serde::de::DeserializeOwned;

use crate::Dashboard;
use crate::api::{self, Refused};
use crate::catalogue::Language;
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

    /// The page `template` for `viewer`, with `context`, the present, the
    /// names of places (`mopti/koro/dinangourou` reads `Koro › Dinangourou`)
    /// and the paths of those in the viewer's scope (`scope_places`, for forms).
    pub(crate) async fn show(
        &self,
        viewer: &Viewer,
        template: &str,
        context: Value,
    ) -> Result<Response, Response> {
        let places: Vec<Place> = self.read(viewer, "/places").await?;
        let in_scope: Vec<String> = places
            .iter()
            .filter(|p| viewer.caller.covers(&p.path))
            .map(|p| p.path.clone())
            .collect();
        let context = minijinja::context! {
            scope_places => in_scope,
            now => self.state.commands.now().to_rfc3339(),
            place_names => place_names(&places, viewer.look.language),
            ..context
        };
        Ok(self.pages.page(
            &viewer.look,
            Some(viewer),
            template,
            context,
            StatusCode::OK,
        ))
    }
}

/// A place, as `GET /places` lists it.
#[derive(Debug, serde::Deserialize)]
struct Place {
    path: String,
    name: String,
    /// `region`, `cercle` or `commune`.
    level: String,
}

/// Each place's name as people say where it is, in `language`: a commune
/// within its cercle (`Koro › Dinangourou`), a cercle or a region by its level
/// (`Cercle de Mopti`, `Région de Mopti`: they often share a name).
fn place_names(places: &[Place], language: Language) -> BTreeMap<String, String> {
    let names: BTreeMap<&str, &str> = places
        .iter()
        .map(|p| (p.path.as_str(), p.name.as_str()))
        .collect();
    let texts = &language.catalogue().texts;
    places
        .iter()
        .map(|p| {
            let shown = match (p.level.as_str(), p.path.rsplit_once('/')) {
                ("commune", Some((cercle, _))) => {
                    format!("{} › {}", names.get(cercle).unwrap_or(&cercle), p.name)
                }
                (level, _) => texts
                    .get(&format!("place_{level}"))
                    .map_or_else(|| p.name.clone(), |frame| frame.replace("{}", &p.name)),
            };
            (p.path.clone(), shown)
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commune_is_named_within_its_cercle() {
        let place = |path: &str, name: &str, level: &str| Place {
            path: path.to_owned(),
            name: name.to_owned(),
            level: level.to_owned(),
        };
        let map = [
            place("mopti", "Mopti", "region"),
            place("mopti/mopti", "Mopti", "cercle"),
            place("mopti/koro", "Koro", "cercle"),
            place("mopti/koro/dinangourou", "Dinangourou", "commune"),
        ];
        let names = place_names(&map, Language::French);
        assert_eq!(names["mopti"], "Région de Mopti");
        assert_eq!(names["mopti/mopti"], "Cercle de Mopti");
        assert_eq!(names["mopti/koro/dinangourou"], "Koro › Dinangourou");
        let names = place_names(&map, Language::English);
        assert_eq!(names["mopti/koro"], "Koro cercle");
    }
}
