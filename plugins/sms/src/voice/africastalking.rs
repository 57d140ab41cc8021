//! Africa's Talking Voice: the call placed with `POST /call` on its voice host
//! (a form with `username`, `from`, `to` and, as `clientRequestId`, the
//! message's outbox key; the `apiKey` header), answered `Queued` with a
//! `sessionId`. Africa's Talking then posts every event of the call to the
//! callback URL its number has in the Voice dashboard, the API's call URL:
//! `isActive=1` when the callee picks up (answered with XML actions: `<Play
//! url>` for each clip, `<GetDigits numDigits="1" callbackUrl>` for the key),
//! and `isActive=0` when the call ends, with its `status` and `hangupCause`
//! (`NO_ANSWER`, `USER_BUSY` …). Its requests are not signed: the webhook
//! secret in the path is what keeps others out.

use palabre_core::connector::{DeliveryError, OutgoingMessage, Redial};
use palabre_core::voice::{AfterPlaying, CallDocument, VoiceGateway, xml_escape};
use palabre_core::webhooks::{Receipt, WebhookError, WebhookRequest};
use serde::Deserialize;

use crate::gateways::africastalking::post_form;
use crate::gateways::exchange;
use crate::gateways::parse::Fields;

pub(super) fn default_base_url() -> String {
    "https://voice.africastalking.com".to_owned()
}

#[derive(Deserialize)]
struct Queued {
    #[serde(default)]
    entries: Vec<Entry>,
    #[serde(rename = "errorMessage", default)]
    error_message: String,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    status: String,
    #[serde(rename = "sessionId", default)]
    session_id: Option<String>,
}

/// Refusals of a call worth trying again later.
const PASSING: [&str; 3] = ["InsufficientCredit", "InternalServerError", "Timeout"];

/// Hang-up causes meaning nobody took the call.
const UNANSWERED: [&str; 4] = [
    "NO_ANSWER",
    "USER_BUSY",
    "NO_USER_RESPONSE",
    "CALL_REJECTED",
];

/// Africa's Talking Voice.
pub struct AfricasTalkingVoice {
    pub(super) client: reqwest::Client,
    pub(super) base_url: String,
    pub(super) username: String,
    pub(super) api_key: String,
    pub(super) from: String,
    pub(super) redial: Redial,
}

impl AfricasTalkingVoice {
    async fn call(&self, message: &OutgoingMessage) -> Result<String, DeliveryError> {
        let form = [
            ("username", self.username.as_str()),
            ("from", self.from.as_str()),
            ("to", message.to_address.as_str()),
            ("clientRequestId", message.key.as_str()),
        ];
        let request = post_form(
            &self.client,
            format!("{}/call", self.base_url),
            &self.api_key,
            &form,
        );
        let answer: Queued = exchange("africastalking", request)
            .await?
            .json("africastalking")?;
        match answer.entries.first() {
            Some(Entry {
                status,
                session_id: Some(id),
            }) if status == "Queued" => Ok(id.clone()),
            Some(Entry { status, .. }) if PASSING.contains(&status.as_str()) => Err(
                DeliveryError::Transient(format!("africastalking: {status}")),
            ),
            Some(Entry { status, .. }) => Err(DeliveryError::Permanent(format!(
                "africastalking: {status}"
            ))),
            None if PASSING.iter().any(|p| answer.error_message.contains(p)) => Err(
                DeliveryError::Transient(format!("africastalking: {}", answer.error_message)),
            ),
            None => Err(DeliveryError::Permanent(format!(
                "africastalking: no call queued: {}",
                answer.error_message
            ))),
        }
    }
}

crate::gateways::connector!(AfricasTalkingVoice, "africastalking-voice", Voice, call, redial: redial);

impl VoiceGateway for AfricasTalkingVoice {
    fn call_id(&self, request: &WebhookRequest<'_>) -> Result<String, WebhookError> {
        Fields::read(request)?.required("sessionId")
    }

    fn keys(&self, request: &WebhookRequest<'_>) -> Result<String, WebhookError> {
        Ok(Fields::read(request)?
            .get("dtmfDigits")
            .unwrap_or_default()
            .to_owned())
    }

    fn status(&self, request: &WebhookRequest<'_>) -> Result<Receipt, WebhookError> {
        let form = Fields::read(request)?;
        let cause = form.get("hangupCause").unwrap_or_default();
        // Answered and hung up is `Success`; a call nobody took says so in its
        // hang-up cause; anything else did not reach them.
        let status = if UNANSWERED.contains(&cause) {
            cause.to_owned()
        } else if form.get("status") == Some("Success") {
            "Success".to_owned()
        } else {
            "failed".to_owned()
        };
        Ok(Receipt {
            provider_id: form.required("sessionId")?,
            status,
            reason: (!cause.is_empty()).then(|| cause.to_owned()),
            opted_out: false,
        })
    }

    fn message_key(&self, request: &WebhookRequest<'_>) -> Result<Option<String>, WebhookError> {
        Ok(Fields::read(request)?
            .get("clientRequestId")
            .map(str::to_owned))
    }

    fn ended(&self, request: &WebhookRequest<'_>) -> Result<Option<Receipt>, WebhookError> {
        if Fields::read(request)?.get("isActive") == Some("0") {
            return self.status(request).map(Some);
        }
        Ok(None)
    }

    fn play(&self, clips: &[String], then: &AfterPlaying) -> CallDocument {
        let plays = |clips: &[String]| -> String {
            clips
                .iter()
                .map(|url| format!("<Play url=\"{}\"/>", xml_escape(url)))
                .collect()
        };
        let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
        body.push_str(&plays(clips));
        match then {
            AfterPlaying::AskForKey { question, keys_url } => {
                let ask = format!(
                    "<GetDigits numDigits=\"1\" timeout=\"8\" callbackUrl=\"{}\">{}</GetDigits>",
                    xml_escape(keys_url),
                    plays(question)
                );
                // Asked twice when nothing is pressed; the call then ends with
                // the document.
                body.push_str(&ask);
                body.push_str(&ask);
            }
            AfterPlaying::Replay { call_url } => {
                body.push_str(&format!("<Redirect>{}</Redirect>", xml_escape(call_url)));
            }
            AfterPlaying::HangUp => {}
        }
        body.push_str("</Response>");
        CallDocument {
            content_type: "application/xml",
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(body: &'a [u8], headers: &'a [(String, String)]) -> WebhookRequest<'a> {
        WebhookRequest {
            path_and_query: "/voice/s3cret/call",
            headers,
            body,
        }
    }

    fn form() -> Vec<(String, String)> {
        vec![(
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        )]
    }

    fn gateway() -> AfricasTalkingVoice {
        AfricasTalkingVoice {
            client: crate::gateways::client().unwrap(),
            base_url: "http://at".into(),
            username: "palabre".into(),
            api_key: "key".into(),
            from: "the-number".into(),
            redial: Redial {
                tries: 3,
                spacing: std::time::Duration::from_secs(7200),
            },
        }
    }

    #[test]
    fn the_xml_plays_each_clip_then_asks_for_one_digit_twice() {
        let document = gateway().play(
            &["https://p/a.wav".into()],
            &AfterPlaying::AskForKey {
                question: vec!["https://p/keys.wav".into()],
                keys_url: "https://p/keys?message=k&x=1".into(),
            },
        );
        assert_eq!(
            document.body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Play url=\"https://p/a.wav\"/>\
             <GetDigits numDigits=\"1\" timeout=\"8\" callbackUrl=\"https://p/keys?message=k&amp;x=1\"><Play url=\"https://p/keys.wav\"/></GetDigits>\
             <GetDigits numDigits=\"1\" timeout=\"8\" callbackUrl=\"https://p/keys?message=k&amp;x=1\"><Play url=\"https://p/keys.wav\"/></GetDigits></Response>"
        );
    }

    #[test]
    fn the_last_request_of_a_call_is_its_outcome() {
        let headers = form();
        let answered =
            b"isActive=1&sessionId=ATVId_1&clientRequestId=key-1&callerNumber=%2B22376000007";
        let gateway = gateway();
        assert_eq!(gateway.ended(&request(answered, &headers)).unwrap(), None);
        assert_eq!(
            gateway
                .message_key(&request(answered, &headers))
                .unwrap()
                .as_deref(),
            Some("key-1")
        );
        for (body, word) in [
            (
                &b"isActive=0&sessionId=ATVId_1&status=Success&hangupCause=NORMAL_CLEARING"[..],
                "delivered",
            ),
            (
                b"isActive=0&sessionId=ATVId_1&status=Failed&hangupCause=NO_ANSWER",
                "unanswered",
            ),
            (
                b"isActive=0&sessionId=ATVId_1&status=Failed&hangupCause=USER_BUSY",
                "unanswered",
            ),
            (
                b"isActive=0&sessionId=ATVId_1&status=Failed&hangupCause=UNALLOCATED_NUMBER",
                "failed",
            ),
        ] {
            let receipt = gateway.ended(&request(body, &headers)).unwrap().unwrap();
            assert_eq!(receipt.provider_id, "ATVId_1");
            assert_eq!(receipt.delivery_status().as_recorded(), word, "{receipt:?}");
        }
    }
}
