//! What a voice provider calls during a call, under the webhook secret: the
//! call's document (its clips, then the keypad's question), the key pressed,
//! the final status (posted to its own route, or to the call's by providers
//! that post everything there), and the recordings themselves. The provider's signature is
//! checked by the plugin; the clips' URLs carry the secret, so no one else can
//! fetch them, and they name only a language and a clip.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use palabre_core::voice::{AfterPlaying, CallDocument};
use palabre_engine::commands::KeyOutcome;
use serde::Deserialize;

use super::webhooks::{check_fact, webhook, webhook_secret};
use crate::extract::{Path, Query, RawBody};
use crate::{ApiError, ApiState, VoiceCalls};

#[derive(Debug, Deserialize)]
pub(super) struct CallQuery {
    /// The outbox key of the message the call carries, when the URL carries it.
    message: Option<String>,
}

/// What a request to the call URL is about: the message being answered, or
/// the end of a call (providers that post everything there).
enum CallRequest {
    Answered(Option<String>),
    Ended(palabre_core::webhooks::Receipt),
}

fn configured(state: &ApiState) -> Result<&VoiceCalls, ApiError> {
    state
        .voice
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "calls are not configured"))
}

fn document(document: CallDocument) -> Response {
    (
        [(header::CONTENT_TYPE, document.content_type)],
        document.body,
    )
        .into_response()
}

/// The URLs of `clips` in `language`, as the provider fetches them.
fn clip_urls(voice: &VoiceCalls, secret: &str, language: &str, clips: &[String]) -> Vec<String> {
    clips
        .iter()
        .map(|clip| {
            format!(
                "{}/voice/{secret}/audio/{language}/{clip}.wav",
                voice.public_url
            )
        })
        .collect()
}

fn call_url(voice: &VoiceCalls, secret: &str, key: &str, page: &str) -> String {
    let query = serde_urlencoded::to_string([("message", key)]).unwrap_or_default();
    format!("{}/voice/{secret}/{page}?{query}", voice.public_url)
}

pub(super) async fn call(
    State(state): State<ApiState>,
    Path(secret): Path<String>,
    Query(query): Query<CallQuery>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let voice = configured(&state)?;
    let hang_up = || document(voice.gateway.play(&[], &AfterPlaying::HangUp));
    let asked = webhook(&state, &secret, &uri, &headers, &body, |request| {
        voice.gateway.call_id(request)?;
        if let Some(receipt) = voice.gateway.ended(request)? {
            return Ok(CallRequest::Ended(receipt));
        }
        let key = match &query.message {
            Some(key) => Some(key.clone()),
            None => voice.gateway.message_key(request)?,
        };
        Ok(CallRequest::Answered(key))
    })?;
    let key = match asked {
        CallRequest::Ended(receipt) => {
            check_fact("sessionId", &receipt.provider_id)?;
            state.commands.delivery_receipt(&receipt).await?;
            return Ok(hang_up());
        }
        CallRequest::Answered(Some(key)) => key,
        CallRequest::Answered(None) => return Ok(hang_up()),
    };
    let Some(script) = state.commands.call_script(&key).await? else {
        return Ok(hang_up());
    };
    let then = AfterPlaying::AskForKey {
        question: clip_urls(voice, &secret, &script.language, &script.question),
        keys_url: call_url(voice, &secret, &key, "keys"),
    };
    let clips = clip_urls(voice, &secret, &script.language, &script.clips);
    Ok(document(voice.gateway.play(&clips, &then)))
}

pub(super) async fn keys(
    State(state): State<ApiState>,
    Path(secret): Path<String>,
    Query(query): Query<CallQuery>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let voice = configured(&state)?;
    let digits = webhook(&state, &secret, &uri, &headers, &body, |request| {
        voice.gateway.keys(request)
    })?;
    check_fact("Digits", &digits)?;
    let Some(key) = query.message else {
        return Ok(document(voice.gateway.play(&[], &AfterPlaying::HangUp)));
    };
    let outcome = state.commands.call_key(&key, &digits).await?;
    let (language, clips, then) = match outcome {
        KeyOutcome::Answered {
            language, thanks, ..
        } => (language, thanks, AfterPlaying::HangUp),
        KeyOutcome::Stopped { language, goodbye } => (language, goodbye, AfterPlaying::HangUp),
        KeyOutcome::NotUnderstood { language, said } => {
            let keys_url = call_url(voice, &secret, &key, "keys");
            (
                language,
                said,
                AfterPlaying::AskForKey {
                    question: Vec::new(),
                    keys_url,
                },
            )
        }
        KeyOutcome::Again => {
            let call_url = call_url(voice, &secret, &key, "call");
            return Ok(document(
                voice.gateway.play(&[], &AfterPlaying::Replay { call_url }),
            ));
        }
        KeyOutcome::Unknown => {
            return Ok(document(voice.gateway.play(&[], &AfterPlaying::HangUp)));
        }
    };
    let clips = clip_urls(voice, &secret, &language, &clips);
    Ok(document(voice.gateway.play(&clips, &then)))
}

pub(super) async fn status(
    State(state): State<ApiState>,
    Path(secret): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let voice = configured(&state)?;
    let receipt = webhook(&state, &secret, &uri, &headers, &body, |request| {
        voice.gateway.status(request)
    })?;
    check_fact("CallSid", &receipt.provider_id)?;
    check_fact("CallStatus", &receipt.status)?;
    state.commands.delivery_receipt(&receipt).await?;
    Ok(document(voice.gateway.play(&[], &AfterPlaying::HangUp)))
}

pub(super) async fn audio(
    State(state): State<ApiState>,
    Path((secret, language, file)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    configured(&state)?;
    webhook_secret(&state, &secret)?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "no such recording");
    let clip = file.strip_suffix(".wav").ok_or_else(not_found)?;
    let definitions = state.commands.definitions();
    let recording = definitions
        .audio
        .clip(&language, clip)
        .ok_or_else(not_found)?;
    let bytes = tokio::fs::read(&recording.path)
        .await
        .map_err(|_| not_found())?;
    Ok(([(header::CONTENT_TYPE, "audio/wav")], bytes).into_response())
}
