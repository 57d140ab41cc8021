//! Africa's Talking: `POST /version1/messaging` (form body, `apiKey` header).
//! Each recipient comes back with a `statusCode`: 100–102 accepted, 401–409
//! refused for good (invalid number, blacklisted, do-not-disturb, no balance ...),
//! 500/501 worth retrying; 406 (`UserInBlacklist`) means the recipient opted
//! out. Delivery reports and inbound messages are forms (`id`, `status`,
//! `failureReason`; `from`, `text`).

use palabre_core::connector::{DeliveryError, OutgoingMessage};
use palabre_core::webhooks::{Receipt, WebhookError};
use serde::Deserialize;

use super::parse::Fields;
use super::{GatewayError, client, exchange};

pub(crate) fn default_base_url() -> String {
    "https://api.africastalking.com".to_owned()
}

#[derive(Deserialize)]
struct Sent {
    #[serde(rename = "SMSMessageData")]
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "Message", default)]
    message: String,
    #[serde(rename = "Recipients", default)]
    recipients: Vec<Recipient>,
}

#[derive(Deserialize)]
struct Recipient {
    #[serde(rename = "statusCode")]
    status_code: i64,
    #[serde(default)]
    status: String,
    #[serde(rename = "messageId", default)]
    message_id: String,
}

pub struct AfricasTalking {
    client: reqwest::Client,
    base_url: String,
    username: String,
    api_key: String,
    sender: Option<String>,
}

impl AfricasTalking {
    pub fn new(
        base_url: &str,
        username: &str,
        api_key: &str,
        sender: Option<String>,
    ) -> Result<AfricasTalking, GatewayError> {
        Ok(AfricasTalking {
            client: client()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            username: username.to_owned(),
            api_key: api_key.to_owned(),
            sender,
        })
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<String, DeliveryError> {
        let mut form = vec![
            ("username", self.username.as_str()),
            ("to", message.to_address.as_str()),
            ("message", message.body.as_str()),
        ];
        if let Some(sender) = &self.sender {
            form.push(("from", sender));
        }
        let request = post_form(
            &self.client,
            format!("{}/version1/messaging", self.base_url),
            &self.api_key,
            &form,
        );
        let answer: Sent = exchange("africastalking", request)
            .await?
            .json("africastalking")?;
        let Some(recipient) = answer.data.recipients.first() else {
            return Err(DeliveryError::Permanent(format!(
                "africastalking: no recipient accepted: {}",
                answer.data.message
            )));
        };
        let reason = || {
            format!(
                "africastalking: {} ({})",
                recipient.status, recipient.status_code
            )
        };
        match recipient.status_code {
            100..=102 => Ok(recipient.message_id.clone()),
            500 | 501 => Err(DeliveryError::Transient(reason())),
            OPTED_OUT => Err(DeliveryError::OptedOut(reason())),
            _ => Err(DeliveryError::Permanent(reason())),
        }
    }
}

super::connector!(AfricasTalking, "africastalking", Sms, send);

/// `form` posted to Africa's Talking at `url` under its `apiKey` header, the
/// answer asked for in JSON (its SMS and voice APIs alike).
pub(crate) fn post_form<T: serde::Serialize + ?Sized>(
    client: &reqwest::Client,
    url: String,
    api_key: &str,
    form: &T,
) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("apiKey", api_key)
        .header("Accept", "application/json")
        .form(form)
}

/// What Africa's Talking calls a recipient who opted out of our messages, as a
/// send status code and as a delivery report's failure reason.
const OPTED_OUT: i64 = 406;
const BLACKLISTED: &str = "UserInBlacklist";

/// A delivery report: `id`, `status`, and `failureReason` when it failed.
pub(crate) fn receipt(fields: &Fields) -> Result<Receipt, WebhookError> {
    Ok(Receipt {
        provider_id: fields.required("id")?,
        status: fields.required("status")?,
        reason: fields.get("failureReason").map(str::to_owned),
        opted_out: fields.get("failureReason") == Some(BLACKLISTED),
    })
}
