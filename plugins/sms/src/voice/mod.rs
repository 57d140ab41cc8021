//! Calls placed through a voice provider, set up from the file `serve
//! --voice-gateway FILE.yaml` names: its pace (calls a second, at once), its
//! redials (tries, spacing) and how long a call may go without a final status.
//! Each provider is a module: the connector placing its calls, the documents
//! that play the clips and wait for a key, and the reading of what it posts
//! back. Phone numbers never reach the logs.

use palabre_core::connector::{Connector, Redial};
use palabre_core::offset::Offset;
use palabre_core::voice::VoiceGateway;
use serde::Deserialize;
use std::sync::Arc;

use crate::gateways::generic::GenericConfig;
use crate::gateways::{GatewayError, GenericHttp, Paced, client, secret};

mod africastalking;
mod generic;
mod twilio;

pub use africastalking::AfricasTalkingVoice;
pub use generic::GenericVoice;
pub use twilio::TwilioVoice;

/// The file `--voice-gateway FILE.yaml` names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceGatewayFile {
    pub gateway: VoiceGatewayConfig,
    /// At most this many calls placed a second.
    #[serde(default)]
    pub max_per_second: Option<u32>,
    /// At most this many calls being placed at once, per worker.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// At most this many calls ringing or being listened to at once, across
    /// workers (the provider's or the line's limit of simultaneous calls).
    #[serde(default)]
    pub max_simultaneous: Option<usize>,
    /// Calls in all to someone who does not pick up (default 3).
    #[serde(default = "default_tries")]
    pub tries: u32,
    /// Time between them (default `2h`).
    #[serde(default = "default_spacing")]
    pub spacing: Offset,
    /// A call with no final status after this long (default `1h`) counts as not
    /// made and goes by the contact's next channel.
    #[serde(default = "default_status_timeout")]
    pub status_timeout: Offset,
}

fn default_tries() -> u32 {
    3
}

fn default_spacing() -> Offset {
    Offset::from_seconds(2 * 3600)
}

fn default_status_timeout() -> Offset {
    Offset::from_seconds(3600)
}

/// A voice provider's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
pub enum VoiceGatewayConfig {
    /// Twilio Programmable Voice.
    Twilio {
        #[serde(default = "crate::gateways::twilio_base_url")]
        base_url: String,
        account_sid_env: String,
        auth_token_env: String,
        /// The number calls come from (E.164).
        from: String,
        /// The address palabre's API is reached at from the internet: Twilio
        /// fetches the call's TwiML and clips there and signs what it posts.
        public_url: String,
    },
    /// Africa's Talking Voice. Its number's callback URL, in the Voice
    /// dashboard, must be the API's call URL (`{public_url}/voice/{secret}/call`):
    /// Africa's Talking posts there when a call is answered and when it ends.
    AfricasTalking {
        #[serde(default = "africastalking::default_base_url")]
        base_url: String,
        username: String,
        api_key_env: String,
        /// The Africa's Talking number calls come from (E.164).
        from: String,
        /// The address palabre's API is reached at from the internet.
        public_url: String,
    },
    /// A VoiceXML 2.1 platform; `call` is the generic gateway's request
    /// (its templates also see `call_url` and `status_url`).
    Generic {
        call: GenericConfig,
        /// The address palabre's API is reached at from the internet.
        public_url: String,
    },
}

/// A voice gateway, set up: the connector placing calls (at its pace) and the
/// provider's side of them, for the API.
pub struct Calling {
    pub connector: Arc<dyn Connector>,
    pub gateway: Arc<dyn VoiceGateway>,
    /// Where the provider reaches the API, without a trailing `/`.
    pub public_url: String,
}

impl VoiceGatewayFile {
    /// The connector placing the calls, at its pace, and the gateway reading
    /// what the provider posts back; `webhook_secret` is the API's.
    pub fn gateway(&self, webhook_secret: &str) -> Result<Calling, GatewayError> {
        let positive = |offset: Offset, name: &str| {
            offset
                .as_delta()
                .to_std()
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| GatewayError::Config(format!("{name} must be positive")))
        };
        let redial = Redial {
            tries: self.tries.max(1),
            spacing: positive(self.spacing, "spacing")?,
        };
        let status_timeout = positive(self.status_timeout, "status_timeout")?;
        let (gateway, connector, public_url): (Arc<dyn VoiceGateway>, Arc<dyn Connector>, &str) =
            match &self.gateway {
                VoiceGatewayConfig::Twilio {
                    base_url,
                    account_sid_env,
                    auth_token_env,
                    from,
                    public_url,
                } => {
                    let twilio = Arc::new(TwilioVoice {
                        client: client()?,
                        base_url: base_url.trim_end_matches('/').to_owned(),
                        account_sid: secret(account_sid_env)?,
                        auth_token: secret(auth_token_env)?,
                        from: from.clone(),
                        public_url: public_url.trim_end_matches('/').to_owned(),
                        webhook_secret: webhook_secret.to_owned(),
                        redial,
                    });
                    (twilio.clone(), twilio, public_url)
                }
                VoiceGatewayConfig::AfricasTalking {
                    base_url,
                    username,
                    api_key_env,
                    from,
                    public_url,
                } => {
                    let at = Arc::new(AfricasTalkingVoice {
                        client: client()?,
                        base_url: base_url.trim_end_matches('/').to_owned(),
                        username: username.clone(),
                        api_key: secret(api_key_env)?,
                        from: from.clone(),
                        redial,
                    });
                    (at.clone(), at, public_url)
                }
                VoiceGatewayConfig::Generic { call, public_url } => {
                    let generic = Arc::new(GenericVoice {
                        http: GenericHttp::new(call.clone())?,
                        public_url: public_url.trim_end_matches('/').to_owned(),
                        webhook_secret: webhook_secret.to_owned(),
                        redial,
                    });
                    (generic.clone(), generic, public_url)
                }
            };
        let connector = Arc::new(
            Paced::new(
                connector,
                self.max_per_second,
                self.max_in_flight,
                Some(status_timeout),
            )
            .simultaneous(self.max_simultaneous),
        );
        Ok(Calling {
            connector,
            public_url: public_url.trim_end_matches('/').to_owned(),
            gateway,
        })
    }
}

/// The API's routes a voice provider calls, under the webhook secret.
pub fn call_path(secret: &str) -> String {
    format!("/voice/{secret}/call")
}
