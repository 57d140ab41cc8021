//! Pages made: the templates (`web/templates/`, embedded at build time) in one
//! minijinja environment with the dashboard's filters (instants as people read
//! them, in the page's language), every page given its catalogue (`t`), its
//! language and who is looking; the headers every page carries (no caching, a
//! content security policy that allows no script, the language cookie when it
//! was asked for); the refusal page; the stylesheet.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use minijinja::{Environment, State, Value};
use palabre_api::auth::Role;

use crate::api::Refused;
use crate::catalogue::Language;
use crate::look::{LANGUAGE_COOKIE, Look, set_cookie};
use crate::session::Viewer;

/// The templates, compiled once.
pub(crate) struct Pages {
    environment: Environment<'static>,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("sign_in.html", include_str!("../templates/sign_in.html")),
    ("refused.html", include_str!("../templates/refused.html")),
    ("meetings.html", include_str!("../templates/meetings.html")),
    (
        "occurrence.html",
        include_str!("../templates/occurrence.html"),
    ),
    ("plans.html", include_str!("../templates/plans.html")),
    ("disputes.html", include_str!("../templates/disputes.html")),
    ("case.html", include_str!("../templates/case.html")),
    (
        "deliveries.html",
        include_str!("../templates/deliveries.html"),
    ),
    (
        "directory.html",
        include_str!("../templates/directory.html"),
    ),
];

const STYLESHEET: &str = include_str!("../assets/style.css");

/// The language a template is rendered in.
fn language_of(state: &State<'_, '_>) -> Language {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(Language::parse))
        .unwrap_or(Language::French)
}

fn text(language: Language, key: &str) -> String {
    language
        .catalogue()
        .texts
        .get(key)
        .cloned()
        .unwrap_or_default()
}

/// "mercredi 2 décembre 2026, 9 h": an RFC 3339 instant, in UTC (Mali's time).
fn when(state: &State<'_, '_>, value: String) -> String {
    let language = language_of(state);
    match DateTime::parse_from_rfc3339(&value) {
        Ok(instant) => {
            let local = instant
                .with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M")
                .to_string();
            let code = language.dates_code();
            format!(
                "{}, {}",
                palabre_lang::dates::date_long(code, &local),
                palabre_lang::dates::clock(code, &local)
            )
        }
        Err(_) => day(state, value),
    }
}

/// "Koro › Dinangourou": a place path by its name (the page's `place_names`), or
/// the path as it is when the map does not know it.
fn place(state: &State<'_, '_>, path: String) -> String {
    state
        .lookup("place_names")
        .and_then(|places| places.get_attr(&path).ok())
        .and_then(|name| name.as_str().map(str::to_owned))
        .unwrap_or(path)
}

/// "mercredi 2 décembre 2026": a date (`2026-12-02`), or an instant's date.
fn day(state: &State<'_, '_>, value: String) -> String {
    let date = value.get(..10).unwrap_or(&value);
    palabre_lang::dates::date_long(language_of(state).dates_code(), date)
}

/// "dans 2 j 4 h", "il y a 3 h": from the page's present to an instant.
fn from_now(state: &State<'_, '_>, value: String) -> String {
    let language = language_of(state);
    let now = state.lookup("now").and_then(|v| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    });
    let (Some(now), Ok(then)) = (now, DateTime::parse_from_rfc3339(&value)) else {
        return value;
    };
    let span = then.signed_duration_since(now);
    let total = span.num_minutes().abs();
    if total == 0 {
        return text(language, "just_now");
    }
    let (days, hours, minutes) = (total / 1440, total % 1440 / 60, total % 60);
    let unit = |n: i64, key: &str| format!("{n} {}", text(language, key));
    let amount = match (days, hours) {
        (0, 0) => unit(minutes, "unit_minutes"),
        (0, _) => format!(
            "{} {}",
            unit(hours, "unit_hours"),
            unit(minutes, "unit_minutes")
        ),
        _ => format!("{} {}", unit(days, "unit_days"), unit(hours, "unit_hours")),
    };
    let frame = if span.num_seconds() >= 0 {
        "in_time"
    } else {
        "time_ago"
    };
    text(language, frame).replace("{}", &amount)
}

impl Pages {
    pub(crate) fn new() -> Pages {
        let mut environment = Environment::new();
        for (name, source) in TEMPLATES {
            // Every template is rendered by the tests: one that does not
            // compile is a build's bug, and its pages say so.
            if let Err(error) = environment.add_template(name, source) {
                tracing::error!(%error, template = name, "a dashboard template does not compile");
            }
        }
        environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        environment.add_filter("when", when);
        environment.add_filter("day", day);
        environment.add_filter("from_now", from_now);
        environment.add_filter("place", place);
        Pages { environment }
    }

    /// The page `template` with `context`, for `viewer` (none on the sign-in
    /// page), answered with `status`.
    pub(crate) fn page(
        &self,
        look: &Look,
        viewer: Option<&Viewer>,
        template: &str,
        context: Value,
        status: StatusCode,
    ) -> Response {
        let language = look.language;
        let viewer_value = viewer.map(|v| {
            minijinja::context! {
                role => v.caller.role.as_str(),
                scope => &v.caller.scope,
                csrf => &v.csrf,
                acts => v.caller.role >= Role::Coordinator,
                administers => v.caller.role >= Role::Administrator,
            }
        });
        let languages: Vec<Value> = Language::ALL
            .iter()
            .map(|l| {
                minijinja::context! {
                    code => l.code(),
                    name => text(*l, "language_name"),
                    current => *l == language,
                }
            })
            .collect();
        let full = minijinja::context! {
            t => Value::from(minijinja::value::Serde(&language.catalogue().texts)),
            lang => language.code(),
            languages => languages,
            path => &look.path,
            viewer => viewer_value,
            ..context
        };
        let rendered = self
            .environment
            .get_template(template)
            .and_then(|t| t.render(full));
        let (status, body) = match rendered {
            Ok(body) => (status, body),
            Err(error) => {
                tracing::error!(%error, template, "a dashboard page failed to render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    text(language, "page_failed"),
                )
            }
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        if look.remember {
            headers.append(
                header::SET_COOKIE,
                set_cookie(LANGUAGE_COOKIE, language.code(), 365 * 24 * 3600, false),
            );
        }
        response
    }

    /// The page of a refusal: what it means in the page's language, the API's
    /// reason in a detail, the refusal's status.
    pub(crate) fn refusal(
        &self,
        look: &Look,
        viewer: Option<&Viewer>,
        refused: &Refused,
    ) -> Response {
        let key = match refused.status.as_u16() {
            403 => "refused_forbidden",
            404 => "refused_not_found",
            409 => "refused_conflict",
            400 | 413 | 422 => "refused_invalid",
            _ => "refused_unavailable",
        };
        self.page(
            look,
            viewer,
            "refused.html",
            minijinja::context! {
                heading => text(look.language, key),
                reason => &refused.reason,
                status => refused.status.as_u16(),
            },
            refused.status,
        )
    }
}

/// `GET /assets/style.css`: the one stylesheet, cached for a day.
pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        STYLESHEET,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys a template names literally: `t.key` and `t["key"]`.
    fn literal_keys(source: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let bytes = source.as_bytes();
        for (at, _) in source.match_indices("t.") {
            let before = at.checked_sub(1).map(|i| bytes[i]);
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
                continue;
            }
            let key: String = source[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            keys.push(key);
        }
        for (at, _) in source.match_indices("t[\"") {
            let rest = &source[at + 3..];
            if let Some(end) = rest.find('"')
                && rest[end + 1..].starts_with(']')
            {
                keys.push(rest[..end].to_owned());
            }
        }
        keys
    }

    #[test]
    fn every_text_a_template_names_is_in_both_catalogues() {
        let mut named = Vec::new();
        for (name, source) in TEMPLATES {
            for key in literal_keys(source) {
                named.push((*name, key));
            }
        }
        assert!(named.len() > 100, "{} texts named", named.len());
        for language in Language::ALL {
            for (template, key) in &named {
                assert!(
                    language.catalogue().texts.contains_key(key),
                    "{template} names t.{key}, missing in {}",
                    language.code()
                );
            }
        }
    }

    #[test]
    fn every_word_a_template_looks_up_by_prefix_is_in_both_catalogues() {
        let listed = |prefix: &str, values: &[&str]| -> Vec<String> {
            values.iter().map(|v| format!("{prefix}{v}")).collect()
        };
        let numbered = |prefix: &str, last: u32| -> Vec<String> {
            (1..=last).map(|n| format!("{prefix}{n}")).collect()
        };
        let words: Vec<String> = [
            listed("role_", &Role::ALL.map(Role::as_str)),
            listed(
                "channel_",
                &palabre_core::channel::Channel::ALL.map(|c| c.as_str()),
            ),
            listed(
                "progress_",
                &["queued", "sent", "delivered", "undelivered", "dead"],
            ),
            listed("answer_", &["yes", "no", "none"]),
            listed(
                "status_",
                &palabre_lang::milestones::MilestoneStatus::ALL.map(|s| s.as_str()),
            ),
            listed("state_", &["open", "acknowledged", "resolved"]),
            listed(
                "action_",
                &["acknowledge", "note", "escalate", "resolve", "reopen"],
            ),
            numbered("severity_", 5),
            numbered("weekday_", 7),
            numbered("weekday_short_", 7),
            numbered("month_", 12),
        ]
        .concat();
        for language in Language::ALL {
            for word in &words {
                assert!(
                    language.catalogue().texts.contains_key(word),
                    "{word} missing in {}",
                    language.code()
                );
            }
        }
    }

    #[test]
    fn instants_and_spans_read_as_people_say_them() {
        let mut environment = Environment::new();
        environment.add_filter("when", when);
        environment.add_filter("from_now", from_now);
        let render = |lang: &str, template: &str| {
            environment
                .render_str(
                    template,
                    minijinja::context! { lang => lang, now => "2026-12-02T09:00:00+00:00" },
                )
                .unwrap()
        };
        assert_eq!(
            render("fr", "{{ '2026-12-07T09:30:00Z' | when }}"),
            "lundi 7 décembre 2026, 9 h 30"
        );
        assert_eq!(
            render("en", "{{ '2026-12-07T09:30:00Z' | when }}"),
            "Monday 7 December 2026, 9:30"
        );
        assert_eq!(
            render("fr", "{{ '2026-12-04T13:00:00Z' | from_now }}"),
            "dans 2 j 4 h"
        );
        assert_eq!(
            render("en", "{{ '2026-12-02T06:15:00Z' | from_now }}"),
            "2 h 45 min ago"
        );
        assert_eq!(
            render("fr", "{{ '2026-12-02T09:00:20Z' | from_now }}"),
            "à l'instant"
        );
    }
}
