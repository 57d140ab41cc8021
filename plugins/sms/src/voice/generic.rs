//! A generic voice platform that speaks VoiceXML 2.1 (an Asterisk or
//! FreeSWITCH IVR, a local aggregator): the call is placed by the request the
//! generic gateway's templates make, which also see `{{ call_url }}` (where the
//! platform fetches the call's document, by POST) and `{{ status_url }}`. The
//! document is VoiceXML: an `<audio>` for each clip, then a one-digit `<field>`
//! whose value is submitted as `digits` to the keys URL. The platform posts the
//! call's end to the status URL as a form: `id` (the call's id, as the call
//! request answered it) and `status` (`completed`, `busy`, `no-answer`,
//! `failed`), with `reason` if it has one. Its requests are not signed: the
//! webhook secret in the path keeps others out.

use palabre_core::connector::{DeliveryError, OutgoingMessage, Redial};
use palabre_core::voice::{AfterPlaying, CallDocument, VoiceGateway, xml_escape};
use palabre_core::webhooks::{Receipt, WebhookError, WebhookRequest};

use super::call_path;
use crate::gateways::GenericHttp;
use crate::gateways::parse::Fields;

/// A VoiceXML platform reached through the generic gateway's templates.
pub struct GenericVoice {
    pub(super) http: GenericHttp,
    pub(super) public_url: String,
    pub(super) webhook_secret: String,
    pub(super) redial: Redial,
}

impl GenericVoice {
    async fn call(&self, message: &OutgoingMessage) -> Result<String, DeliveryError> {
        let query =
            serde_urlencoded::to_string([("message", message.key.as_str())]).unwrap_or_default();
        let extra = minijinja::context! {
            call_url => format!("{}{}?{query}", self.public_url, call_path(&self.webhook_secret)),
            status_url => format!("{}/voice/{}/status", self.public_url, self.webhook_secret),
        };
        self.http.request(message, &extra).await
    }
}

crate::gateways::connector!(GenericVoice, "generic-voice", Voice, call, redial: redial);

impl VoiceGateway for GenericVoice {
    fn call_id(&self, request: &WebhookRequest<'_>) -> Result<String, WebhookError> {
        // The document is fetched with no form of ours: the secret in the
        // path is the check, and the call is named by the URL.
        Ok(Fields::read(request)
            .ok()
            .and_then(|form| form.get("id").map(str::to_owned))
            .unwrap_or_default())
    }

    fn keys(&self, request: &WebhookRequest<'_>) -> Result<String, WebhookError> {
        Ok(Fields::read(request)?
            .get("digits")
            .unwrap_or_default()
            .to_owned())
    }

    fn status(&self, request: &WebhookRequest<'_>) -> Result<Receipt, WebhookError> {
        let form = Fields::read(request)?;
        Ok(Receipt {
            provider_id: form.required("id")?,
            status: form.required("status")?,
            reason: form.get("reason").map(str::to_owned),
            opted_out: false,
        })
    }

    fn play(&self, clips: &[String], then: &AfterPlaying) -> CallDocument {
        let audio = |clips: &[String]| -> String {
            clips
                .iter()
                .map(|url| format!("<audio src=\"{}\"/>", xml_escape(url)))
                .collect()
        };
        let mut body = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><vxml version=\"2.1\" xmlns=\"http://www.w3.org/2001/vxml\"><form>",
        );
        body.push_str(&format!("<block>{}</block>", audio(clips)));
        match then {
            AfterPlaying::AskForKey { question, keys_url } => body.push_str(&format!(
                "<field name=\"digits\" type=\"digits?length=1\"><prompt>{}</prompt>\
                 <noinput count=\"2\"><exit/></noinput><nomatch><reprompt/></nomatch>\
                 <filled><submit next=\"{}\" method=\"post\" namelist=\"digits\"/></filled></field>",
                audio(question),
                xml_escape(keys_url)
            )),
            AfterPlaying::Replay { call_url } => body.push_str(&format!(
                "<block><submit next=\"{}\" method=\"post\"/></block>",
                xml_escape(call_url)
            )),
            AfterPlaying::HangUp => body.push_str("<block><exit/></block>"),
        }
        body.push_str("</form></vxml>");
        CallDocument {
            content_type: "application/voicexml+xml",
            body,
        }
    }
}
