//! How a page is looked at: its language (`?lang=`, then the remembered
//! cookie, then `Accept-Language`; see [`crate::catalogue::Language::choose`]),
//! its path, and the dashboard's cookies, read and written.

use axum::http::{HeaderMap, HeaderValue, Uri, header};

use crate::catalogue::Language;

pub(crate) const LANGUAGE_COOKIE: &str = "palabre_lang";

/// How a page is to be shown: its language, whether it was asked for in the
/// address (then remembered), and the page's path (for the language links).
#[derive(Debug, Clone)]
pub(crate) struct Look {
    pub(crate) language: Language,
    pub(crate) remember: bool,
    pub(crate) path: String,
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, for the whole site, `Secure`
/// when asked, lasting `max_age` seconds (0: removed).
pub(crate) fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The language of a request: `?lang=`, the cookie, `Accept-Language`.
pub(crate) fn look_of(headers: &HeaderMap, uri: &Uri) -> Look {
    let asked = uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "lang")
            .map(|(_, value)| value)
    });
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let language = Language::choose(asked, cookie(headers, LANGUAGE_COOKIE), accept);
    Look {
        language,
        remember: asked.and_then(Language::parse).is_some(),
        path: uri.path().to_owned(),
    }
}
