//! Orange SMS API (Orange Developer, the largest operator in Mali): an OAuth2
//! client-credentials token (its `expires_in` comes as a string), cached and
//! renewed before it expires or when refused, then
//! `POST /smsmessaging/v1/outbound/tel%3A%2B{sender}/requests` with an
//! `outboundSMSMessageRequest`. With a `notify_url`, each request asks for a
//! delivery receipt carrying our message's key hash as `callbackData`: Orange's
//! `deliveryInfoNotification` names no message id, so that hash is the id palabre
//! records. Inbound messages come as an `inboundSMSMessageNotification`.

use std::time::{Duration, Instant};

use palabre_core::connector::{DeliveryError, OutgoingMessage};
use palabre_core::webhooks::{InboundSms, Receipt, WebhookError};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::parse::text_at;
use super::{GatewayError, client, digits, exchange};

pub(crate) fn default_base_url() -> String {
    "https://api.orange.com".to_owned()
}

/// Renew a token this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    /// Seconds, as a string ("7776000") — or a number, to be safe.
    expires_in: serde_json::Value,
}

pub struct Orange {
    client: reqwest::Client,
    base_url: String,
    sender: String,
    sender_name: Option<String>,
    /// Where Orange posts delivery receipts, if anywhere.
    notify_url: Option<String>,
    /// `Basic base64(client_id:client_secret)`.
    authorization: String,
    token: Mutex<Option<(String, Instant)>>,
}

impl Orange {
    pub fn new(
        base_url: &str,
        sender: &str,
        sender_name: Option<String>,
        notify_url: Option<String>,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Orange, GatewayError> {
        use base64::Engine as _;
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{client_id}:{client_secret}"));
        Ok(Orange {
            client: client()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            sender: digits(sender),
            sender_name,
            notify_url,
            authorization: format!("Basic {credentials}"),
            token: Mutex::new(None),
        })
    }

    /// A valid token: the cached one, or a new one.
    async fn token(&self, renew: bool) -> Result<String, DeliveryError> {
        let mut cached = self.token.lock().await;
        if !renew
            && let Some((token, until)) = cached.as_ref()
            && Instant::now() + RENEW_BEFORE < *until
        {
            return Ok(token.clone());
        }
        let request = self
            .client
            .post(format!("{}/oauth/v3/token", self.base_url))
            .header("Authorization", &self.authorization)
            .header("Accept", "application/json")
            .form(&[("grant_type", "client_credentials")]);
        let answer: TokenAnswer = exchange("orange (token)", request)
            .await?
            .json("orange (token)")?;
        let seconds = match &answer.expires_in {
            serde_json::Value::String(s) => s.trim().parse().unwrap_or(0),
            serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
            _ => 0,
        };
        let until = Instant::now() + Duration::from_secs(seconds);
        *cached = Some((answer.access_token.clone(), until));
        Ok(answer.access_token)
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<String, DeliveryError> {
        let url = format!(
            "{}/smsmessaging/v1/outbound/tel%3A%2B{}/requests",
            self.base_url, self.sender
        );
        let mut request = json!({
            "address": format!("tel:+{}", digits(&message.to_address)),
            "senderAddress": format!("tel:+{}", self.sender),
            "outboundSMSTextMessage": { "message": message.body },
        });
        if let Some(name) = &self.sender_name {
            request["senderName"] = json!(name);
        }
        let callback = self.notify_url.as_ref().map(|url| {
            let data = message.key_hash();
            request["receiptRequest"] = json!({ "notifyURL": url, "callbackData": data });
            data
        });
        let body = json!({ "outboundSMSMessageRequest": request });
        let mut renew = false;
        loop {
            let token = self.token(renew).await?;
            let request = self.client.post(&url).bearer_auth(&token).json(&body);
            let answer = exchange("orange", request).await?;
            if answer.status == StatusCode::UNAUTHORIZED && !renew {
                // The token was revoked or expired early: renew it once.
                renew = true;
                continue;
            }
            let answer: Value = answer.json("orange")?;
            if let Some(data) = callback {
                return Ok(data);
            }
            let id = answer
                .pointer("/outboundSMSMessageRequest/resourceURL")
                .and_then(Value::as_str)
                .and_then(|url| url.rsplit('/').next())
                .unwrap_or("accepted")
                .to_owned();
            return Ok(id);
        }
    }
}

super::connector!(Orange, "orange", Sms, send);

/// A `deliveryInfoNotification`: our `callbackData` and the `deliveryStatus`.
pub(crate) fn receipt(body: &Value) -> Result<Receipt, WebhookError> {
    Ok(Receipt {
        provider_id: text_at(body, "/deliveryInfoNotification/callbackData")?,
        status: text_at(
            body,
            "/deliveryInfoNotification/deliveryInfo/deliveryStatus",
        )?,
        reason: None,
        opted_out: false,
    })
}

/// An `inboundSMSMessageNotification`: `senderAddress` (`tel:+223…`) and `message`.
pub(crate) fn inbound(body: &Value) -> Result<InboundSms, WebhookError> {
    let message = "/inboundSMSMessageNotification/inboundSMSMessage";
    let sender = text_at(body, &format!("{message}/senderAddress"))?;
    Ok(InboundSms::new(
        sender.trim_start_matches("tel:"),
        text_at(body, &format!("{message}/message"))?,
    )
    .with_id(text_at(body, &format!("{message}/messageId")).ok()))
}
