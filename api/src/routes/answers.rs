//! The page an email's answer link opens (`GET /answer/{token}`), and the answer
//! its buttons post (`POST /answer/{token}`, a form with `answer=yes` or `no`):
//! plain HTML for any browser, a phone's included, no script, in the recipient's
//! language. The token is the credential; opening the page records nothing.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use palabre_engine::commands::AnswerPage;
use serde::Deserialize;

use crate::extract::{Path, RawBody};
use crate::{ApiError, ApiState};

/// What the page's buttons post.
#[derive(Debug, Deserialize)]
struct AnswerForm {
    answer: String,
}

pub(super) async fn page(
    State(state): State<ApiState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    Ok(html(&state.commands.answer_page(&token, None).await?))
}

pub(super) async fn answer(
    State(state): State<ApiState>,
    Path(token): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let form: AnswerForm = serde_urlencoded::from_bytes(&body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "the form needs answer=yes or answer=no",
        )
        .field("answer")
    })?;
    let yes = match form.answer.as_str() {
        "yes" => true,
        "no" => false,
        _ => {
            return Err(
                ApiError::new(StatusCode::BAD_REQUEST, "answer must be yes or no").field("answer"),
            );
        }
    };
    Ok(html(&state.commands.answer_page(&token, Some(yes)).await?))
}

/// The page, small enough for a slow phone link: its text, and the two buttons
/// while the meeting is still to come.
fn html(page: &AnswerPage) -> Response {
    let buttons = if page.open {
        format!(
            "<form method=\"post\"><button name=\"answer\" value=\"yes\">{}</button> \
             <button name=\"answer\" value=\"no\">{}</button></form>",
            escape(&page.yes),
            escape(&page.no)
        )
    } else {
        String::new()
    };
    let paragraphs: String = page
        .text
        .split("\n\n")
        .map(|p| format!("<p>{}</p>", escape(p).replace('\n', "<br>")))
        .collect();
    let body = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>body{{font-family:sans-serif;max-width:32em;margin:1em auto;\
         padding:0 1em;line-height:1.4}}button{{font-size:1.2em;padding:.6em 1.6em;margin:.4em .4em 0 0}}\
         </style></head><body><h1>{}</h1>{paragraphs}{buttons}</body></html>",
        escape(&page.language),
        escape(&page.title),
        escape(&page.title),
    );
    let status = if page.open {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Text as HTML, in an element or a double-quoted attribute.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
