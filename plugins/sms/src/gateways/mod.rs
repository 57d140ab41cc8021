//! SMS gateways over HTTP, one module per provider, each a [`Connector`].
//!
//! What they share lives here: building a gateway from its configuration (secrets
//! read from environment variables named in it, never from the file), the HTTP
//! client with its timeout, and the classification of failures the retry policy
//! needs: network trouble, timeouts and 5xx replies are transient; 429 is rate
//! limiting (with `Retry-After` honoured); other 4xx and the providers' own
//! refusal codes are permanent; a recipient who opted out at the provider is
//! reported as such. [`webhooks()`] reads what each provider posts back. Phone
//! numbers and texts never reach the logs.

pub(crate) mod africastalking;
pub(crate) mod generic;
mod infobip;
mod orange;
mod paced;
pub(crate) mod parse;
mod twilio;
mod webhooks;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use palabre_core::connector::{Connector, DeliveryError};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;

pub use africastalking::AfricasTalking;
pub use generic::GenericHttp;
pub use infobip::Infobip;
pub use orange::Orange;
pub use paced::Paced;
pub use twilio::{Twilio, valid_signature};
pub(crate) use twilio::{default_base_url as twilio_base_url, signed_form};
pub use webhooks::webhooks;

/// The file `--sms-gateway FILE.yaml` names: a gateway, and how it is used.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsGatewayFile {
    pub gateway: GatewayConfig,
    /// At most this many messages a second through the gateway.
    #[serde(default)]
    pub max_per_second: Option<u32>,
    /// At most this many requests to the gateway at once, per worker (default 1:
    /// a crash repeats at most the message in flight).
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// A sent message with no delivery receipt after this long (`6h`) counts as
    /// undelivered and goes once more on the contact's next channel. Set it only
    /// when the provider's receipts reach palabre's receipt webhook.
    #[serde(default)]
    pub receipt_timeout: Option<palabre_core::offset::Offset>,
}

impl SmsGatewayFile {
    /// The connector this file describes: its gateway, at its pace.
    pub fn connector(&self) -> Result<Arc<dyn Connector>, GatewayError> {
        let receipt_timeout = self
            .receipt_timeout
            .map(|t| t.as_delta().to_std())
            .transpose()
            .map_err(|_| GatewayError::Config("receipt_timeout must be positive".to_owned()))?;
        Ok(Arc::new(Paced::new(
            gateway(&self.gateway)?,
            self.max_per_second,
            self.max_in_flight,
            receipt_timeout,
        )))
    }
}

/// A gateway's configuration (the `gateway:` of an [`SmsGatewayFile`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
pub enum GatewayConfig {
    /// Orange SMS API: OAuth2 client credentials.
    Orange {
        #[serde(default = "orange::default_base_url")]
        base_url: String,
        /// The sender number, international digits without `+` (`22370000000`).
        sender: String,
        #[serde(default)]
        sender_name: Option<String>,
        /// Where Orange posts delivery receipts (the API's receipt route), if anywhere.
        #[serde(default)]
        notify_url: Option<String>,
        /// Environment variables holding the credentials.
        client_id_env: String,
        client_secret_env: String,
    },
    /// Twilio Messages API.
    Twilio {
        #[serde(default = "twilio::default_base_url")]
        base_url: String,
        account_sid_env: String,
        auth_token_env: String,
        /// The sender number (E.164).
        from: String,
        /// Where Twilio posts status callbacks (the API's receipt route), if any.
        #[serde(default)]
        status_callback: Option<String>,
        /// The address palabre's API is reached at from the internet
        /// (`https://palabre.example.org`): Twilio signs the full URL of its
        /// webhooks, so their signatures can only be checked knowing it.
        #[serde(default)]
        public_url: Option<String>,
    },
    /// Infobip SMS API v3.
    Infobip {
        base_url: String,
        api_key_env: String,
        sender: String,
        #[serde(default)]
        notify_url: Option<String>,
    },
    /// Africa's Talking.
    AfricasTalking {
        #[serde(default = "africastalking::default_base_url")]
        base_url: String,
        username: String,
        api_key_env: String,
        #[serde(default)]
        sender: Option<String>,
    },
    /// Any HTTP gateway (Kannel, Jasmin, a local aggregator): the request is a
    /// template, success and the message id are read from the answer.
    Generic(generic::GenericConfig),
}

/// Why a gateway cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the environment variable {0} is not set (it must hold the gateway's secret)")]
    MissingSecret(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("{0}")]
    Config(String),
}

/// Reads a secret from the environment variable `name`.
pub(crate) fn secret(name: &str) -> Result<String, GatewayError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| GatewayError::MissingSecret(name.to_owned()))
}

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn client() -> Result<reqwest::Client, GatewayError> {
    // rustls over ring, as everywhere in palabre; installed once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| GatewayError::Client(e.to_string()))
}

/// Builds the connector a configuration describes.
pub fn gateway(config: &GatewayConfig) -> Result<Arc<dyn Connector>, GatewayError> {
    Ok(match config {
        GatewayConfig::Orange {
            base_url,
            sender,
            sender_name,
            notify_url,
            client_id_env,
            client_secret_env,
        } => Arc::new(Orange::new(
            base_url,
            sender,
            sender_name.clone(),
            notify_url.clone(),
            &secret(client_id_env)?,
            &secret(client_secret_env)?,
        )?),
        GatewayConfig::Twilio {
            base_url,
            account_sid_env,
            auth_token_env,
            from,
            status_callback,
            ..
        } => Arc::new(Twilio::new(
            base_url,
            &secret(account_sid_env)?,
            &secret(auth_token_env)?,
            from,
            status_callback.clone(),
        )?),
        GatewayConfig::Infobip {
            base_url,
            api_key_env,
            sender,
            notify_url,
        } => Arc::new(Infobip::new(
            base_url,
            &secret(api_key_env)?,
            sender,
            notify_url.clone(),
        )?),
        GatewayConfig::AfricasTalking {
            base_url,
            username,
            api_key_env,
            sender,
        } => Arc::new(AfricasTalking::new(
            base_url,
            username,
            &secret(api_key_env)?,
            sender.clone(),
        )?),
        GatewayConfig::Generic(config) => Arc::new(GenericHttp::new(config.clone())?),
    })
}

/// A provider's whole answer to one request.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    headers: HeaderMap,
    pub(crate) text: String,
}

/// Sends `request` and reads the whole answer; no answer at all is transient.
pub(crate) async fn exchange(
    provider: &str,
    request: reqwest::RequestBuilder,
) -> Result<Answer, DeliveryError> {
    let response = request.send().await.map_err(|e| unreachable(provider, e))?;
    Ok(Answer {
        status: response.status(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap_or_default(),
    })
}

impl Answer {
    /// The failure this answer means, classified.
    pub(crate) fn refusal(&self, provider: &str) -> DeliveryError {
        refused(provider, self.status, &self.headers, &self.text)
    }

    /// The JSON body of a successful answer, or the failure it means.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        self,
        provider: &str,
    ) -> Result<T, DeliveryError> {
        if !self.status.is_success() {
            return Err(self.refusal(provider));
        }
        serde_json::from_str(&self.text)
            .map_err(|e| DeliveryError::Transient(format!("{provider}: unreadable answer: {e}")))
    }
}

/// The `Connector` of a gateway on `$channel` whose `$method` delivers one
/// message (an SMS sent, a call placed); a voice gateway also names its
/// `Redial` field, how a call nobody took is made again.
macro_rules! connector {
    ($gateway:ty, $name:literal, $channel:ident, $method:ident $(, redial: $redial:ident)?) => {
        impl palabre_core::connector::Connector for $gateway {
            fn channel(&self) -> palabre_core::channel::Channel {
                palabre_core::channel::Channel::$channel
            }

            fn name(&self) -> &str {
                $name
            }

            fn deliver<'a>(
                &'a self,
                message: &'a palabre_core::connector::OutgoingMessage,
            ) -> palabre_core::connector::Delivery<'a> {
                Box::pin(self.$method(message))
            }

            $(
                fn redial(&self) -> Option<palabre_core::connector::Redial> {
                    Some(self.$redial)
                }
            )?
        }
    };
}
pub(crate) use connector;

/// `Retry-After` in seconds, if the answer has one.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .map(Duration::from_secs)
}

/// The class of a failed HTTP answer.
fn refused(provider: &str, status: StatusCode, headers: &HeaderMap, detail: &str) -> DeliveryError {
    let reason = format!("{provider} answered {status}: {}", shorten(detail));
    if status == StatusCode::TOO_MANY_REQUESTS {
        DeliveryError::RateLimited {
            retry_after: retry_after(headers),
            reason,
        }
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        DeliveryError::Transient(reason)
    } else {
        DeliveryError::Permanent(reason)
    }
}

/// A request that got no answer: transient. The URL is left out (it may hold a
/// phone number or a key).
fn unreachable(provider: &str, error: reqwest::Error) -> DeliveryError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    DeliveryError::Transient(format!("{provider}: {kind}: {}", error.without_url()))
}

/// A provider's error text, cut short for the ledger, with any phone number in it
/// masked (providers quote the number they refused).
fn shorten(text: &str) -> String {
    let masked = mask_numbers(text);
    let text = masked.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Masks every run of eight or more digits (a phone number, with or without `+`).
fn mask_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let digits = run.chars().filter(char::is_ascii_digit).count();
        if digits >= 8 {
            out.push_str(&palabre_core::redact::phone(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || (c == '+' && run.is_empty()) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Digits of an E.164 number without the `+` (what several providers want).
pub(crate) fn digits(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}

/// Headers of the generic gateway's requests, by name.
pub(crate) type Headers = BTreeMap<String, String>;

#[cfg(test)]
mod tests {
    use super::mask_numbers;

    #[test]
    fn numbers_in_provider_errors_are_masked() {
        // An invented test number.
        assert_eq!(
            mask_numbers("Invalid address tel:+22376451234 (code 400)"), // a fake test number
            "Invalid address tel:+223 •• •• 12 34 (code 400)"
        );
        assert_eq!(mask_numbers("retry in 120 s"), "retry in 120 s");
    }
}
