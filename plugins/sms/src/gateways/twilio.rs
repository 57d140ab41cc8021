//! Twilio Messages API: `POST /2010-04-01/Accounts/{sid}/Messages.json`, a form
//! body with Basic auth, an optional `StatusCallback`. Error 21610 means the
//! recipient replied STOP: permanent, and said so. Status callbacks are checked
//! with [`Twilio::valid_signature`] (`X-Twilio-Signature`, HMAC-SHA1 of the URL
//! and the sorted parameters).

use palabre_engine::connector::{DeliveryError, OutgoingMessage};
use serde::Deserialize;

use super::{GatewayError, client, exchange};

pub(crate) fn default_base_url() -> String {
    "https://api.twilio.com".to_owned()
}

/// Error codes that mean the number will never take our messages.
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

    /// Whether `signature` (the `X-Twilio-Signature` header) signs a callback to
    /// `url` with form parameters `params`, by this account's auth token.
    pub fn valid_signature(&self, url: &str, params: &[(String, String)], signature: &str) -> bool {
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
            self.auth_token.as_bytes(),
        );
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature) else {
            return false;
        };
        ring::hmac::verify(&key, data.as_bytes(), &given).is_ok()
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
            return Err(DeliveryError::Permanent(format!(
                "twilio: the recipient has opted out (21610): {}",
                refusal.message
            )));
        }
        Err(answer.refusal("twilio"))
    }
}

super::sms_connector!(Twilio, "twilio");
