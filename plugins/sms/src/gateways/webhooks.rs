//! Reading what gateways post back, per provider: delivery receipts and inbound
//! SMS in each one's documented format, with Twilio's signature checked. The
//! format follows the configured gateway; with none (the SMS outbox) or the
//! generic gateway, palabre's own plain format is read: a JSON object or a form
//! with `id` and `status` (receipts) or `from` and `text` (replies).

use std::sync::Arc;

use palabre_core::webhooks::{
    InboundAnswer, InboundSms, PlainInbound, PlainReceipt, Receipt, WebhookError, WebhookRequest,
    Webhooks,
};

use super::parse::{Fields, json, plain};
use super::{GatewayConfig, GatewayError, secret};

/// The webhook reader for a configured gateway (`None`: the SMS outbox).
pub fn webhooks(config: Option<&GatewayConfig>) -> Result<Arc<dyn Webhooks>, GatewayError> {
    let format = match config {
        None | Some(GatewayConfig::Generic(_)) => Format::Plain,
        Some(GatewayConfig::Twilio {
            auth_token_env,
            public_url,
            ..
        }) => Format::Twilio {
            auth_token: secret(auth_token_env)?,
            public_url: public_url.clone(),
        },
        Some(GatewayConfig::Infobip { .. }) => Format::Infobip,
        Some(GatewayConfig::AfricasTalking { .. }) => Format::AfricasTalking,
        Some(GatewayConfig::Orange { .. }) => Format::Orange,
    };
    Ok(Arc::new(ProviderWebhooks(format)))
}

enum Format {
    Plain,
    Twilio {
        auth_token: String,
        /// The public address palabre is reached at; Twilio signs the full URL.
        public_url: Option<String>,
    },
    Infobip,
    AfricasTalking,
    Orange,
}

struct ProviderWebhooks(Format);

impl Webhooks for ProviderWebhooks {
    fn receipts(&self, request: &WebhookRequest<'_>) -> Result<Vec<Receipt>, WebhookError> {
        match &self.0 {
            Format::Plain => {
                let PlainReceipt { id, status, reason } = plain(request)?;
                Ok(vec![Receipt {
                    provider_id: id,
                    status,
                    reason,
                    opted_out: false,
                }])
            }
            Format::Twilio {
                auth_token,
                public_url,
            } => {
                let fields = super::twilio::signed_form(request, auth_token, public_url)?;
                super::twilio::receipt(&fields).map(|r| vec![r])
            }
            Format::AfricasTalking => {
                super::africastalking::receipt(&Fields::read(request)?).map(|r| vec![r])
            }
            Format::Infobip => super::infobip::receipts(&json(request)?),
            Format::Orange => super::orange::receipt(&json(request)?).map(|r| vec![r]),
        }
    }

    fn inbound(&self, request: &WebhookRequest<'_>) -> Result<Vec<InboundSms>, WebhookError> {
        match &self.0 {
            Format::Plain | Format::AfricasTalking => {
                let PlainInbound { from, text, id } = plain(request)?;
                Ok(vec![InboundSms::new(from, text).with_id(id)])
            }
            Format::Twilio {
                auth_token,
                public_url,
            } => {
                let fields = super::twilio::signed_form(request, auth_token, public_url)?;
                super::twilio::inbound(&fields).map(|m| vec![m])
            }
            Format::Infobip => super::infobip::inbound(&json(request)?),
            Format::Orange => super::orange::inbound(&json(request)?).map(|m| vec![m]),
        }
    }

    fn inbound_answer(&self) -> Option<InboundAnswer> {
        matches!(self.0, Format::Twilio { .. }).then_some(super::twilio::EMPTY_TWIML)
    }
}
