//! A generic HTTP gateway, for local aggregators and SMPP-to-HTTP bridges
//! (Kannel, Jasmin): the URL, method, headers and body are templates over the
//! message (`{{ to }}`, `{{ to_digits }}`, `{{ text }}`, `{{ key }}`); success is
//! a set of statuses and, optionally, a text the answer must contain; the message
//! id is read from the answer by a JSON pointer, or is the answer's first line.

use minijinja::Environment;
use palabre_core::connector::{DeliveryError, OutgoingMessage};
use serde::Deserialize;

use super::{GatewayError, Headers, digits, exchange};

fn post() -> String {
    "POST".to_owned()
}

fn ok_statuses() -> Vec<u16> {
    vec![200, 201, 202]
}

/// The generic gateway's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericConfig {
    /// URL template (`http://kannel:13013/cgi-bin/sendsms?to={{ to | urlencode }}&text={{ text | urlencode }}`).
    pub url: String,
    #[serde(default = "post")]
    pub method: String,
    /// Header templates; secrets come from `{{ env.NAME }}` (only the variables listed in `env`).
    #[serde(default)]
    pub headers: Headers,
    /// Body template; none for GET.
    #[serde(default)]
    pub body: Option<String>,
    /// Environment variables the templates may read as `env.NAME`.
    #[serde(default)]
    pub env: Vec<String>,
    /// Statuses that mean accepted. Default 200, 201, 202.
    #[serde(default = "ok_statuses")]
    pub success_status: Vec<u16>,
    /// A text the answer must contain to count as accepted (Kannel: `Accepted`).
    #[serde(default)]
    pub success_contains: Option<String>,
    /// JSON pointer to the message id in the answer (`/messages/0/id`).
    #[serde(default)]
    pub id_pointer: Option<String>,
}

pub struct GenericHttp {
    client: reqwest::Client,
    config: GenericConfig,
    environment: Environment<'static>,
    secrets: std::collections::BTreeMap<String, String>,
}

impl GenericHttp {
    pub fn new(config: GenericConfig) -> Result<GenericHttp, GatewayError> {
        let mut environment = Environment::new();
        environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let mut templates = vec![("url".to_owned(), config.url.clone())];
        templates.extend(
            config
                .headers
                .iter()
                .map(|(n, v)| (format!("header:{n}"), v.clone())),
        );
        templates.extend(config.body.clone().map(|b| ("body".to_owned(), b)));
        for (name, source) in templates {
            environment
                .add_template_owned(name.clone(), source)
                .map_err(|e| GatewayError::Config(format!("generic gateway, {name}: {e}")))?;
        }
        let secrets = config
            .env
            .iter()
            .map(|name| super::secret(name).map(|v| (name.clone(), v)))
            .collect::<Result<_, _>>()?;
        if reqwest::Method::from_bytes(config.method.as_bytes()).is_err() {
            return Err(GatewayError::Config(format!(
                "generic gateway: '{}' is not an HTTP method",
                config.method
            )));
        }
        Ok(GenericHttp {
            client: super::client()?,
            config,
            environment,
            secrets,
        })
    }

    fn render(
        &self,
        name: &str,
        message: &OutgoingMessage,
        extra: &minijinja::Value,
    ) -> Result<String, DeliveryError> {
        let context = minijinja::context! {
            to => &message.to_address,
            to_digits => digits(&message.to_address),
            text => &message.body,
            key => message.key_hash(),
            env => &self.secrets,
            ..extra.clone()
        };
        self.environment
            .get_template(name)
            .and_then(|t| t.render(context))
            .map_err(|e| DeliveryError::Permanent(format!("generic gateway, {name}: {e}")))
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<String, DeliveryError> {
        self.request(message, &minijinja::Value::UNDEFINED).await
    }

    /// Sends the request the templates make of `message`, with `extra` values
    /// beside the message's (a call's `call_url` and `status_url`); returns the
    /// provider's id of it.
    pub(crate) async fn request(
        &self,
        message: &OutgoingMessage,
        extra: &minijinja::Value,
    ) -> Result<String, DeliveryError> {
        let method = reqwest::Method::from_bytes(self.config.method.as_bytes())
            .unwrap_or(reqwest::Method::POST);
        let mut request = self
            .client
            .request(method, self.render("url", message, extra)?);
        for name in self.config.headers.keys() {
            request = request.header(
                name,
                self.render(&format!("header:{name}"), message, extra)?,
            );
        }
        if self.config.body.is_some() {
            request = request.body(self.render("body", message, extra)?);
        }
        let answer = exchange("gateway", request).await?;
        let (status, text) = (answer.status, &answer.text);
        let accepted = self.config.success_status.contains(&status.as_u16())
            && self
                .config
                .success_contains
                .as_ref()
                .is_none_or(|wanted| text.contains(wanted.as_str()));
        if !accepted {
            if status.is_success() {
                return Err(DeliveryError::Permanent(format!(
                    "gateway answered {status} without accepting: {}",
                    text.trim()
                )));
            }
            return Err(answer.refusal("gateway"));
        }
        let id = match &self.config.id_pointer {
            Some(pointer) => serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| {
                    v.pointer(pointer)
                        .map(|id| id.as_str().map_or_else(|| id.to_string(), str::to_owned))
                }),
            None => text.lines().next().map(|l| l.trim().to_owned()),
        };
        Ok(id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| "accepted".to_owned()))
    }
}

super::connector!(GenericHttp, "generic-http", Sms, send);
