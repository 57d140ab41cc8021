//! The coordinators' dashboard, served by `palabre serve` at `/` beside the
//! HTTP API: meetings (a month calendar and a list, each occurrence with its
//! deliveries, answers and quorum), milestone plans drawn as timelines, the
//! disputes' board, deliveries and health, and the directory.
//!
//! Pages are HTML rendered on the server (minijinja templates under
//! `web/templates/`, one stylesheet, no script), in French or English, every
//! text from a catalogue (`web/catalogue/`). A browser signs in with an API
//! token, exchanged for a session cookie ([`session`]). Every page reads, and
//! every form acts, through the API's own routes, called within the process
//! with the session's caller ([`palabre_api::SignedIn`], see [`api`]): the
//! role each route asks, the token's place scope, the ledger entries of
//! reveals and the commands' refusals are the API's, not a second copy. Forms
//! carry the session's CSRF secret.

// A handler's refusal is the page it answers with: a `Response` as the error
// side of a `Result`, made once per request, not worth boxing.
#![allow(clippy::result_large_err)]

mod api;
mod calendar;
mod catalogue;
mod look;
mod pages;
mod render;
mod session;
mod timeline;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use palabre_api::ApiState;

pub use catalogue::{Catalogue, Language};

/// How the dashboard is served.
#[derive(Debug, Clone, Copy, Default)]
pub struct DashboardConfig {
    /// The public address is `https://`: cookies are marked `Secure`.
    pub secure_cookies: bool,
}

/// What every page handler shares.
#[derive(Clone)]
pub(crate) struct Dashboard {
    pub(crate) state: ApiState,
    /// The API's router, which pages call within the process.
    pub(crate) api: Router,
    pub(crate) config: DashboardConfig,
    pub(crate) pages: std::sync::Arc<render::Pages>,
}

/// The largest form the import page takes (a directory file); every other
/// form is held to the API's own limit.
const MAX_FORM_BYTES: usize = palabre_api::MAX_IMPORT_BYTES + 64 * 1024;

/// The API's router and the dashboard's pages together: what `palabre serve`
/// serves on its `--http` address.
pub fn app(state: ApiState, config: DashboardConfig) -> Router {
    let api = palabre_api::router(state.clone());
    api.clone().merge(dashboard(state, api, config))
}

/// The dashboard's pages alone, calling `api` for everything they read or do.
fn dashboard(state: ApiState, api: Router, config: DashboardConfig) -> Router {
    let shared = Dashboard {
        state,
        api,
        config,
        pages: std::sync::Arc::new(render::Pages::new()),
    };
    Router::new()
        .route("/", get(pages::meetings::overview))
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/sign-out", post(session::sign_out))
        .route("/assets/style.css", get(render::stylesheet))
        .route(
            "/meeting/{id}/{occurrence}",
            get(pages::meetings::occurrence).post(pages::meetings::change),
        )
        .route("/plans", get(pages::plans::timeline))
        .route("/plans/{plan}/{id}", post(pages::plans::set_status))
        .route(
            "/disputes",
            get(pages::disputes::board).post(pages::disputes::open),
        )
        .route(
            "/disputes/{id}",
            get(pages::disputes::case).post(pages::disputes::act),
        )
        .route("/deliveries", get(pages::deliveries::health))
        .route("/directory", get(pages::directory::list))
        .route(
            "/directory/import",
            post(pages::directory::import).layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route("/directory/{id}/reveal", post(pages::directory::reveal))
        .layer(DefaultBodyLimit::max(palabre_api::MAX_BODY_BYTES))
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(shared)
}
