//! Infobip SMS API v3: `POST /sms/3/messages`, JSON, `Authorization: App {key}`.
//! A message whose status group comes back `REJECTED` is refused for good.

use palabre_engine::connector::{Connector, Delivery, DeliveryError, OutgoingMessage};
use palabre_engine::workflow::Channel;
use serde_json::json;

use super::{GatewayError, client, digits, refused, unreachable};

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
        let response = self
            .client
            .post(format!("{}/sms/3/messages", self.base_url))
            .header("Authorization", format!("App {}", self.api_key))
            .header("Accept", "application/json")
            .json(&json!({ "messages": [sms] }))
            .send()
            .await
            .map_err(|e| unreachable("infobip", e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(refused("infobip", status, &headers, &text));
        }
        let answer: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| DeliveryError::Transient(format!("infobip: unreadable answer: {e}")))?;
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

impl Connector for Infobip {
    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn name(&self) -> &str {
        "infobip"
    }

    fn deliver<'a>(&'a self, message: &'a OutgoingMessage) -> Delivery<'a> {
        Box::pin(self.send(message))
    }
}
