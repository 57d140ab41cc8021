//! Twilio Programmable Voice: the call placed with
//! `POST /2010-04-01/Accounts/{sid}/Calls.json` (Basic auth, a form naming the
//! API's call URL and status callback), the TwiML that plays the clips
//! (`<Play>`) and waits for a key (`<Gather numDigits="1">`), and the signed
//! forms Twilio posts back: the call's answer, the keys, the final status. The
//! call URL carries the outbox key of the message; the path carries the API's
//! webhook secret, so that no one else can fetch a call's clips.

use palabre_core::connector::{DeliveryError, OutgoingMessage, Redial};
use palabre_core::voice::{AfterPlaying, CallDocument, VoiceGateway, xml_escape};
use palabre_core::webhooks::{Receipt, WebhookError, WebhookRequest};
use serde::Deserialize;

use super::call_path;
use crate::gateways::parse::Fields;
use crate::gateways::{exchange, signed_form};

/// How long the phone rings before Twilio gives up (`no-answer`).
const RING_SECONDS: &str = "30";

#[derive(Deserialize)]
struct Created {
    sid: String,
}

/// Twilio Programmable Voice.
pub struct TwilioVoice {
    pub(super) client: reqwest::Client,
    pub(super) base_url: String,
    pub(super) account_sid: String,
    pub(super) auth_token: String,
    pub(super) from: String,
    pub(super) public_url: String,
    pub(super) webhook_secret: String,
    pub(super) redial: Redial,
}

impl TwilioVoice {
    async fn call(&self, message: &OutgoingMessage) -> Result<String, DeliveryError> {
        let call_url = format!(
            "{}{}?message={}",
            self.public_url,
            call_path(&self.webhook_secret),
            url_encoded(&message.key)
        );
        let status_url = format!("{}/voice/{}/status", self.public_url, self.webhook_secret);
        let form = [
            ("To", message.to_address.as_str()),
            ("From", self.from.as_str()),
            ("Url", call_url.as_str()),
            ("StatusCallback", status_url.as_str()),
            ("Timeout", RING_SECONDS),
        ];
        let request = self
            .client
            .post(format!(
                "{}/2010-04-01/Accounts/{}/Calls.json",
                self.base_url, self.account_sid
            ))
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form);
        exchange("twilio", request)
            .await?
            .json::<Created>("twilio")
            .map(|created| created.sid)
    }

    fn form(&self, request: &WebhookRequest<'_>) -> Result<Fields, WebhookError> {
        signed_form(request, &self.auth_token, &Some(self.public_url.clone()))
    }
}

fn url_encoded(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|pair| pair.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

crate::gateways::connector!(TwilioVoice, "twilio-voice", Voice, call, redial: redial);

impl VoiceGateway for TwilioVoice {
    fn call_id(&self, request: &WebhookRequest<'_>) -> Result<String, WebhookError> {
        self.form(request)?.required("CallSid")
    }

    fn keys(&self, request: &WebhookRequest<'_>) -> Result<String, WebhookError> {
        Ok(self
            .form(request)?
            .get("Digits")
            .unwrap_or_default()
            .to_owned())
    }

    fn status(&self, request: &WebhookRequest<'_>) -> Result<Receipt, WebhookError> {
        let form = self.form(request)?;
        Ok(Receipt {
            provider_id: form.required("CallSid")?,
            status: form.required("CallStatus")?,
            reason: form
                .get("SipResponseCode")
                .map(|code| format!("SIP {code}")),
            opted_out: false,
        })
    }

    fn play(&self, clips: &[String], then: &AfterPlaying) -> CallDocument {
        let plays = |clips: &[String]| -> String {
            clips
                .iter()
                .map(|url| format!("<Play>{}</Play>", xml_escape(url)))
                .collect()
        };
        let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
        body.push_str(&plays(clips));
        match then {
            AfterPlaying::AskForKey { question, keys_url } => {
                let gather = format!(
                    "<Gather numDigits=\"1\" timeout=\"8\" action=\"{}\" method=\"POST\">{}</Gather>",
                    xml_escape(keys_url),
                    plays(question)
                );
                // Asked twice when nothing is pressed, then the call ends.
                body.push_str(&gather);
                body.push_str(&gather);
                body.push_str("<Hangup/>");
            }
            AfterPlaying::Replay { call_url } => body.push_str(&format!(
                "<Redirect method=\"POST\">{}</Redirect>",
                xml_escape(call_url)
            )),
            AfterPlaying::HangUp => body.push_str("<Hangup/>"),
        }
        body.push_str("</Response>");
        CallDocument {
            content_type: "text/xml",
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn twilio() -> TwilioVoice {
        TwilioVoice {
            client: crate::gateways::client().unwrap(),
            base_url: "http://twilio".into(),
            account_sid: "AC1".into(),
            auth_token: "token".into(),
            from: "+15005550006".into(),
            public_url: "https://palabre.example.org".into(),
            webhook_secret: "s3cret".into(),
            redial: Redial {
                tries: 3,
                spacing: Duration::from_secs(7200),
            },
        }
    }

    #[test]
    fn twiml_plays_the_clips_then_asks_twice_and_hangs_up() {
        let document = twilio().play(
            &["https://p/a.wav".into(), "https://p/b.wav?x=1&y=2".into()],
            &AfterPlaying::AskForKey {
                question: vec!["https://p/keys.wav".into()],
                keys_url: "https://p/keys?message=k".into(),
            },
        );
        assert_eq!(document.content_type, "text/xml");
        assert!(document.body.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Play>https://p/a.wav</Play><Play>https://p/b.wav?x=1&amp;y=2</Play><Gather numDigits=\"1\""
        ));
        assert_eq!(document.body.matches("<Gather ").count(), 2);
        assert!(document.body.ends_with("<Hangup/></Response>"));
    }

    #[test]
    fn a_key_is_read_from_a_signed_form_only() {
        let gateway = twilio();
        let body = b"CallSid=CA1&Digits=1";
        let params = vec![
            ("CallSid".to_owned(), "CA1".to_owned()),
            ("Digits".to_owned(), "1".to_owned()),
        ];
        let url = "https://palabre.example.org/voice/s3cret/keys?message=k";
        let signature = {
            use base64::Engine as _;
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, b"token");
            let data = format!("{url}CallSidCA1Digits1");
            base64::engine::general_purpose::STANDARD
                .encode(ring::hmac::sign(&key, data.as_bytes()))
        };
        assert!(crate::gateways::valid_signature(
            "token", url, &params, &signature
        ));
        let headers = vec![
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("x-twilio-signature".to_owned(), signature),
        ];
        let request = WebhookRequest {
            path_and_query: "/voice/s3cret/keys?message=k",
            headers: &headers,
            body,
        };
        assert_eq!(gateway.keys(&request).unwrap(), "1");
        assert_eq!(gateway.call_id(&request).unwrap(), "CA1");
        let forged = WebhookRequest {
            headers: &headers[..1],
            ..request
        };
        assert!(matches!(
            gateway.keys(&forged),
            Err(WebhookError::Unauthenticated(_))
        ));
    }
}
