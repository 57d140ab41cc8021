//! Twilio Messages API: `POST /2010-04-01/Accounts/{sid}/Messages.json`, a form
//! body with Basic auth, an optional `StatusCallback`. Error 21610 means the
//! recipient replied STOP: they have opted out, and palabre stops too. Status
//! callbacks and inbound messages are forms signed with `X-Twilio-Signature`
//! (HMAC-SHA1 of the full URL and the sorted parameters, keyed by the auth
//! token), checked against the configured `public_url`.

use palabre_core::connector::{DeliveryError, OutgoingMessage};
use palabre_core::webhooks::{InboundAnswer, InboundSms, Receipt, WebhookError, WebhookRequest};
use serde::Deserialize;

use super::parse::Fields;
use super::{GatewayError, client, exchange};

pub(crate) fn default_base_url() -> String {
    "https://api.twilio.com".to_owned()
}

/// Twilio's answer to an inbound message that needs no reply from it (palabre
/// confirms through the outbox, durably): empty TwiML.
pub(crate) const EMPTY_TWIML: InboundAnswer = InboundAnswer {
    content_type: "text/xml",
    body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
};

/// The error code of a recipient who replied STOP to our number.
const STOPPED: i64 = 21610;

#[derive(Deserialize)]
struct Created {
    sid: String,
}

#[derive(Deserialize)]
struct Refusal {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

pub struct Twilio {
    client: reqwest::Client,
    base_url: String,
    account_sid: String,
    auth_token: String,
    from: String,
    status_callback: Option<String>,
}

impl Twilio {
    pub fn new(
        base_url: &str,
        account_sid: &str,
        auth_token: &str,
        from: &str,
        status_callback: Option<String>,
    ) -> Result<Twilio, GatewayError> {
        Ok(Twilio {
            client: client()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            from: from.to_owned(),
            status_callback,
        })
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<String, DeliveryError> {
        let mut form = vec![
            ("To", message.to_address.as_str()),
            ("From", self.from.as_str()),
            ("Body", message.body.as_str()),
        ];
        if let Some(callback) = &self.status_callback {
            form.push(("StatusCallback", callback));
        }
        let request = self
            .client
            .post(format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                self.base_url, self.account_sid
            ))
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form);
        let answer = exchange("twilio", request).await?;
        if answer.status.is_success() {
            return Ok(answer.json::<Created>("twilio")?.sid);
        }
        if let Ok(refusal) = serde_json::from_str::<Refusal>(&answer.text)
            && refusal.code == STOPPED
        {
            return Err(DeliveryError::OptedOut(format!(
                "twilio: the recipient has opted out (21610): {}",
                refusal.message
            )));
        }
        Err(answer.refusal("twilio"))
    }
}

super::connector!(Twilio, "twilio", Sms, send);

/// Whether `signature` (the `X-Twilio-Signature` header) signs a request to `url`
/// with form parameters `params`, by the account's `auth_token`.
pub fn valid_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    use base64::Engine as _;
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        auth_token.as_bytes(),
    );
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature) else {
        return false;
    };
    ring::hmac::verify(&key, data.as_bytes(), &given).is_ok()
}

/// A webhook request's form, once its signature shows Twilio sent it.
pub(crate) fn signed_form(
    request: &WebhookRequest<'_>,
    auth_token: &str,
    public_url: &Option<String>,
) -> Result<Fields, WebhookError> {
    let fields = Fields::read(request)?;
    let Some(base) = public_url else {
        return Err(WebhookError::NotConfigured(
            "Twilio signs the full URL it calls: set `public_url` in the Twilio gateway configuration"
                .to_owned(),
        ));
    };
    let signature = request
        .header("x-twilio-signature")
        .ok_or_else(|| WebhookError::Unauthenticated("no X-Twilio-Signature header".to_owned()))?;
    let url = format!("{}{}", base.trim_end_matches('/'), request.path_and_query);
    if valid_signature(auth_token, &url, &fields.0, signature) {
        Ok(fields)
    } else {
        Err(WebhookError::Unauthenticated(
            "the X-Twilio-Signature does not match".to_owned(),
        ))
    }
}

/// A status callback: `MessageSid`, `MessageStatus`, and `ErrorCode` 21610 when
/// the recipient had opted out.
pub(crate) fn receipt(fields: &Fields) -> Result<Receipt, WebhookError> {
    Ok(Receipt {
        provider_id: fields.required("MessageSid")?,
        status: fields.required("MessageStatus")?,
        reason: fields.get("ErrorCode").map(|code| format!("error {code}")),
        opted_out: fields.get("ErrorCode") == Some(&STOPPED.to_string()),
    })
}

/// An incoming message: `From`, `Body`, and `OptOutType` when Twilio's own
/// opt-out handling recognised the text.
pub(crate) fn inbound(fields: &Fields) -> Result<InboundSms, WebhookError> {
    Ok(InboundSms {
        from: fields.required("From")?,
        text: fields.required("Body")?,
        id: fields.get("MessageSid").map(str::to_owned),
        opt_out: match fields.get("OptOutType") {
            Some("STOP") => Some(true),
            Some("START") => Some(false),
            _ => None,
        },
    })
}
