//! Infobip SMS API v3: `POST /sms/3/messages`, JSON, `Authorization: App {key}`.
//! A message whose status group comes back `REJECTED` is refused for good.

use palabre_engine::connector::{DeliveryError, OutgoingMessage};
use serde_json::json;

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

super::sms_connector!(Infobip, "infobip");
