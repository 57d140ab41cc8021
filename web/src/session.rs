//! Signing in and out, and who is looking at a page. A browser signs in by
//! posting an API token (`palabre token create`) to `/sign-in`; the token is
//! exchanged for a session ([`palabre_api::auth::open_session`]) whose secret
//! goes in the `palabre_session` cookie (HttpOnly, SameSite=Strict, `Secure`
//! when served over TLS, ending with the session). The sign-in form itself
//! carries a one-time secret matched by a cookie, so no other site can sign a
//! browser in. Every page checks the session and its token again
//! ([`Viewer`]); a missing, wrong, expired or revoked one goes back to the
//! sign-in page. Every form a page posts carries the session's CSRF secret,
//! compared in constant time ([`Viewer::check_form`]).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use palabre_api::auth::{self, Caller};
use serde::Deserialize;

use crate::look::{Look, cookie, look_of, set_cookie};
use crate::{Dashboard, api};

pub(crate) const SESSION_COOKIE: &str = "palabre_session";
const SIGN_IN_COOKIE: &str = "palabre_sign_in";

/// The person looking at a page: the caller their session stands for, the
/// secret their forms carry, and their language.
pub(crate) struct Viewer {
    pub(crate) caller: Caller,
    pub(crate) csrf: String,
    pub(crate) look: Look,
}

impl FromRequestParts<Dashboard> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        dashboard: &Dashboard,
    ) -> Result<Viewer, Response> {
        let look = look_of(&parts.headers, &parts.uri);
        let back_to_sign_in = || {
            let mut response = Redirect::to("/sign-in").into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, "", 0, dashboard.config.secure_cookies),
            );
            response
        };
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE).filter(|s| !s.is_empty()) else {
            return Err(Redirect::to("/sign-in").into_response());
        };
        let commands = &dashboard.state.commands;
        match auth::check_session(commands.store(), secret, commands.now()).await {
            Ok(Ok(session)) => Ok(Viewer {
                caller: session.caller,
                csrf: session.csrf,
                look,
            }),
            Ok(Err(refusal)) => {
                tracing::info!(reason = %refusal, path = %parts.uri.path(), "dashboard session refused");
                Err(back_to_sign_in())
            }
            Err(error) => {
                tracing::warn!(%error, "store error checking a dashboard session");
                Err(dashboard.pages.refusal(
                    &look,
                    None,
                    &api::Refused {
                        status: StatusCode::SERVICE_UNAVAILABLE,
                        reason: String::new(),
                    },
                ))
            }
        }
    }
}

/// A form that carries nothing but its CSRF secret.
#[derive(Debug, Deserialize)]
pub(crate) struct Nothing {}

/// The field every form carries.
#[derive(Debug, Deserialize)]
struct Csrf {
    #[serde(default)]
    csrf: String,
}

impl Viewer {
    /// The form `body` read as `T`, if it carries this session's CSRF secret;
    /// else the page of a refused form (403).
    pub(crate) fn check_form<T: serde::de::DeserializeOwned>(
        &self,
        dashboard: &Dashboard,
        body: &[u8],
    ) -> Result<T, Response> {
        let given = serde_urlencoded::from_bytes::<Csrf>(body)
            .map(|c| c.csrf)
            .unwrap_or_default();
        self.check_csrf(dashboard, &given)?;
        serde_urlencoded::from_bytes::<T>(body).map_err(|e| {
            dashboard.refused(
                self,
                &api::Refused {
                    status: StatusCode::BAD_REQUEST,
                    reason: e.to_string(),
                },
            )
        })
    }

    /// Refuses (403) a form without this session's CSRF secret.
    pub(crate) fn check_csrf(&self, dashboard: &Dashboard, given: &str) -> Result<(), Response> {
        if auth::same_secret(given, &self.csrf) {
            return Ok(());
        }
        tracing::warn!(token = %self.caller.token, path = %self.look.path, "dashboard form without its CSRF secret refused");
        Err(dashboard.refused(
            self,
            &api::Refused {
                status: StatusCode::FORBIDDEN,
                reason: "the form's CSRF secret is missing or wrong".to_owned(),
            },
        ))
    }
}

/// `GET /sign-in`: the form, with a one-time secret its cookie matches.
pub(crate) async fn sign_in_page(
    State(dashboard): State<Dashboard>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    sign_in_form(&dashboard, &look_of(&headers, &uri), None, StatusCode::OK)
}

fn sign_in_form(
    dashboard: &Dashboard,
    look: &Look,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    // Without randomness the form cannot be posted back (its cookie is empty).
    let nonce = auth::random_secret().unwrap_or_default();
    let mut response = dashboard.pages.page(
        look,
        None,
        "sign_in.html",
        minijinja::context! { nonce => &nonce, error => error },
        status,
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, &nonce, 600, dashboard.config.secure_cookies),
    );
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    nonce: String,
}

/// `POST /sign-in`: a session for a good token, or the form again saying why not.
pub(crate) async fn sign_in(
    State(dashboard): State<Dashboard>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Bytes,
) -> Response {
    let look = look_of(&headers, &uri);
    let form: SignInForm = serde_urlencoded::from_bytes(&body).unwrap_or(SignInForm {
        token: String::new(),
        nonce: String::new(),
    });
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !auth::same_secret(&form.nonce, expected) {
        tracing::warn!("dashboard sign-in without its form's secret refused");
        return sign_in_form(
            &dashboard,
            &look,
            Some("sign_in_again"),
            StatusCode::FORBIDDEN,
        );
    }
    let commands = &dashboard.state.commands;
    let now = commands.now();
    match auth::open_session(commands.store(), form.token.trim(), now).await {
        Ok(Ok(opened)) => {
            tracing::info!(token = %opened.caller.token, role = %opened.caller.role, "dashboard signed in");
            let mut response = Redirect::to("/").into_response();
            let secure = dashboard.config.secure_cookies;
            let headers = response.headers_mut();
            let lasts = (opened.expires - now).num_seconds().max(0);
            headers.append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, &opened.cookie, lasts, secure),
            );
            headers.append(
                header::SET_COOKIE,
                set_cookie(SIGN_IN_COOKIE, "", 0, secure),
            );
            response
        }
        Ok(Err(refusal)) => {
            tracing::warn!(reason = %refusal, "dashboard sign-in refused");
            sign_in_form(
                &dashboard,
                &look,
                Some("sign_in_refused"),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(error) => {
            tracing::warn!(%error, "dashboard sign-in failed");
            dashboard.pages.refusal(
                &look,
                None,
                &api::Refused {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    reason: String::new(),
                },
            )
        }
    }
}

/// `POST /sign-out`: the session ended, its cookie removed.
pub(crate) async fn sign_out(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = viewer.check_form::<Nothing>(&dashboard, &body) {
        return refused;
    }
    if let Some(secret) = cookie(&headers, SESSION_COOKIE)
        && let Err(error) = auth::close_session(dashboard.state.commands.store(), secret).await
    {
        tracing::warn!(%error, "ending a dashboard session failed");
    }
    let mut response = Redirect::to("/sign-in").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, dashboard.config.secure_cookies),
    );
    response
}
