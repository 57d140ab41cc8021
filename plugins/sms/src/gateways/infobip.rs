//! Infobip SMS API v3: `POST /sms/3/messages`, JSON, `Authorization: App {key}`.
//! A message whose status group comes back `REJECTED` is refused for good.
//! Delivery reports and inbound messages arrive as JSON `results` lists; numbers
//! in them are international digits without `+`.

use palabre_core::connector::{DeliveryError, OutgoingMessage};
use palabre_core::webhooks::{InboundSms, Receipt, WebhookError};
use serde_json::{Value, json};

use super::parse::text_at;
use super::{GatewayError, client, digits, exchange};

pub struct Infobip {
    client: reqwest::Client,
    base_url: String,
    api_key: String,
    sender: String,
    notify_url: Option<String>,
}

impl Infobip {
    pub fn new(
        base_url: &str,
        api_key: &str,
        sender: &str,
        notify_url: Option<String>,
    ) -> Result<Infobip, GatewayError> {
        Ok(Infobip {
            client: client()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            sender: sender.to_owned(),
            notify_url,
        })
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<String, DeliveryError> {
        let mut sms = json!({
            "sender": self.sender,
            "destinations": [{ "to": digits(&message.to_address), "messageId": message.key_hash() }],
            "content": { "text": message.body },
        });
        if let Some(url) = &self.notify_url {
            sms["webhooks"] = json!({ "delivery": { "url": url } });
        }
        let request = self
            .client
            .post(format!("{}/sms/3/messages", self.base_url))
            .header("Authorization", format!("App {}", self.api_key))
            .header("Accept", "application/json")
            .json(&json!({ "messages": [sms] }));
        let answer: serde_json::Value = exchange("infobip", request).await?.json("infobip")?;
        let first = &answer["messages"][0];
        let group = first["status"]["groupName"].as_str().unwrap_or_default();
        if group == "REJECTED" {
            return Err(DeliveryError::Permanent(format!(
                "infobip: rejected: {}",
                first["status"]["description"].as_str().unwrap_or_default()
            )));
        }
        Ok(first["messageId"]
            .as_str()
            .unwrap_or(answer["bulkId"].as_str().unwrap_or("accepted"))
            .to_owned())
    }
}

super::connector!(Infobip, "infobip", Sms, send);

/// The `results` of a webhook body.
fn results(body: &Value) -> Result<&Vec<Value>, WebhookError> {
    body["results"]
        .as_array()
        .ok_or_else(|| WebhookError::Malformed("no `results` list in the JSON body".to_owned()))
}

/// A delivery report: `results[].messageId`, `status.groupName`, and
/// `error.name` when it is not `NO_ERROR`.
pub(crate) fn receipts(body: &Value) -> Result<Vec<Receipt>, WebhookError> {
    results(body)?
        .iter()
        .map(|result| {
            Ok(Receipt {
                provider_id: text_at(result, "/messageId")?,
                status: text_at(result, "/status/groupName")?,
                reason: text_at(result, "/error/name")
                    .ok()
                    .filter(|name| name != "NO_ERROR"),
                opted_out: false,
            })
        })
        .collect()
}

/// Inbound messages: `results[].from` and `text`.
pub(crate) fn inbound(body: &Value) -> Result<Vec<InboundSms>, WebhookError> {
    results(body)?
        .iter()
        .map(|result| {
            Ok(InboundSms::new(
                format!("+{}", digits(&text_at(result, "/from")?)),
                text_at(result, "/text")?,
            )
            .with_id(text_at(result, "/messageId").ok()))
        })
        .collect()
}
