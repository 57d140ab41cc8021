//! What gateways post back: delivery receipts and inbound SMS, as plain facts.
//!
//! Each provider posts them in its own format (Twilio and Africa's Talking as
//! forms, Infobip and Orange as JSON) and some sign them (Twilio's
//! `X-Twilio-Signature`). A plugin implements [`Webhooks`] to check a request and
//! read it into [`Receipt`]s and [`InboundSms`]; the API passes those to the
//! runtime. Neither the engine nor the API knows a provider's format. What a
//! receipt's word means (delivered, failed, still on its way) is decided here,
//! once, as a [`DeliveryStatus`].

/// One webhook request, as the API received it.
#[derive(Debug, Clone)]
pub struct WebhookRequest<'a> {
    /// The path and query the provider called (`/receipts/sms/<secret>?a=b`): a
    /// signature may cover the whole URL.
    pub path_and_query: &'a str,
    /// Header names in lower case, with their values.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl WebhookRequest<'_> {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the body is a URL-encoded form.
    pub fn is_form(&self) -> bool {
        self.header("content-type")
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
    }
}

/// A provider's word on a message it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The id the provider gave the message when it accepted it.
    pub provider_id: String,
    /// The provider's status word, as it said it.
    pub status: String,
    /// Why it failed, when the provider says (Twilio's error code, Africa's
    /// Talking's `failureReason`, Infobip's error name).
    pub reason: Option<String>,
    /// The provider says the recipient opted out of our messages (Twilio error
    /// 21610, Africa's Talking `UserInBlacklist`).
    pub opted_out: bool,
}

/// Provider statuses that mean delivered, and that mean it never will be
/// (Twilio, Infobip, Africa's Talking, Orange), compared without case, spaces,
/// dashes or underscores. A call answered and ended is `completed` at Twilio.
const DELIVERED: [&str; 5] = [
    "delivered",
    "success",
    "deliveredtoterminal",
    "read",
    "completed",
];
const UNDELIVERED: [&str; 9] = [
    "failed",
    "canceled",
    "undelivered",
    "undeliverable",
    "rejected",
    "expired",
    "deliveryimpossible",
    "absentsubscriber",
    "deliveryfailure",
];
/// Call statuses that mean nobody took the call: worth calling again later
/// (Twilio's `busy` and `no-answer`, Africa's Talking's `USER_BUSY`, `NO_ANSWER`).
const UNANSWERED: [&str; 4] = ["busy", "noanswer", "userbusy", "notanswered"];

impl Receipt {
    /// What this receipt says of the message.
    pub fn delivery_status(&self) -> DeliveryStatus {
        let status = self.status.trim();
        let word = status.to_lowercase().replace(['_', ' ', '-'], "");
        if DELIVERED.contains(&word.as_str()) {
            DeliveryStatus::Delivered
        } else if UNANSWERED.contains(&word.as_str()) && !self.opted_out {
            DeliveryStatus::Unanswered
        } else if UNDELIVERED.contains(&word.as_str()) || self.opted_out {
            DeliveryStatus::Failed
        } else {
            DeliveryStatus::Passing(status.to_owned())
        }
    }
}

/// What a receipt says of a sent message, as palabre records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatus {
    Delivered,
    Failed,
    /// A call nobody took (busy, no answer): called again later, or, after the
    /// last try, failed.
    Unanswered,
    /// A passing status in the provider's own word (`sent`, `Buffered` ...), or
    /// one palabre does not know: kept, never taken for final.
    Passing(String),
}

impl DeliveryStatus {
    /// As it was recorded (`delivered`, `failed`, or the provider's word).
    pub fn from_recorded(word: &str) -> DeliveryStatus {
        match word {
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            "unanswered" => DeliveryStatus::Unanswered,
            other => DeliveryStatus::Passing(other.to_owned()),
        }
    }

    /// The word recorded for it.
    pub fn as_recorded(&self) -> &str {
        match self {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Unanswered => "unanswered",
            DeliveryStatus::Passing(word) => word,
        }
    }

    /// Delivered or failed: nothing later changes it.
    pub fn is_final(&self) -> bool {
        matches!(self, DeliveryStatus::Delivered | DeliveryStatus::Failed)
    }
}

/// An SMS someone sent to palabre.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSms {
    /// The sender's number, as the provider wrote it.
    pub from: String,
    pub text: String,
    /// The provider's id for the message, when it gives one: a webhook the
    /// provider delivers twice is then confirmed once.
    pub id: Option<String>,
    /// The provider's own opt-out handling: `Some(true)` when it recorded this
    /// message as an opt-out (Twilio `OptOutType=STOP`), `Some(false)` as an
    /// opt-in; `None` when it says nothing and the text's keywords decide.
    pub opt_out: Option<bool>,
}

impl InboundSms {
    /// A message whose text alone says what it means.
    pub fn new(from: impl Into<String>, text: impl Into<String>) -> InboundSms {
        InboundSms {
            from: from.into(),
            text: text.into(),
            id: None,
            opt_out: None,
        }
    }

    /// This message, with the provider's id for it.
    pub fn with_id(self, id: Option<String>) -> InboundSms {
        InboundSms { id, ..self }
    }
}

/// A delivery receipt in palabre's plain format (JSON or form), read when no
/// provider format applies: without a gateway, or with the generic one.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
pub struct PlainReceipt {
    /// The id the gateway gave the message.
    pub id: String,
    pub status: String,
    /// Why it failed, if it did and the gateway says.
    #[serde(default)]
    pub reason: Option<String>,
}

/// An inbound SMS in palabre's plain format (JSON or form).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
pub struct PlainInbound {
    /// The sender's number.
    pub from: String,
    pub text: String,
    /// The gateway's id for the message, if it gives one.
    #[serde(default)]
    pub id: Option<String>,
}

/// Why a webhook request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The signature is missing or wrong.
    #[error("{0}")]
    Unauthenticated(String),
    /// The body is not what the provider sends.
    #[error("{0}")]
    Malformed(String),
    /// palabre is not set up to check this kind of request.
    #[error("{0}")]
    NotConfigured(String),
}

/// What a provider expects in answer to an inbound message, when it is not
/// palabre's JSON (Twilio expects TwiML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundAnswer {
    pub content_type: &'static str,
    pub body: &'static str,
}

/// Reads one provider's webhooks.
pub trait Webhooks: Send + Sync {
    /// The delivery receipts in a request (one or several).
    fn receipts(&self, request: &WebhookRequest<'_>) -> Result<Vec<Receipt>, WebhookError>;
    /// The inbound messages in a request (one or several).
    fn inbound(&self, request: &WebhookRequest<'_>) -> Result<Vec<InboundSms>, WebhookError>;
    /// The answer the provider expects to an inbound message; `None`: palabre's
    /// JSON list of what each message did.
    fn inbound_answer(&self) -> Option<InboundAnswer> {
        None
    }
}
