//! Reading webhook bodies as providers send them: forms (Twilio, Africa's
//! Talking, palabre's plain format) and JSON (Infobip, Orange), with errors that
//! name the missing field. The provider modules and the dispatcher share these.

use palabre_core::webhooks::{WebhookError, WebhookRequest};
use serde_json::Value;

/// A form's fields, in their order.
pub(crate) struct Fields(pub(crate) Vec<(String, String)>);

impl Fields {
    /// A form's fields (Twilio and Africa's Talking post forms).
    pub(crate) fn read(request: &WebhookRequest<'_>) -> Result<Fields, WebhookError> {
        plain(request).map(Fields)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn required(&self, name: &str) -> Result<String, WebhookError> {
        self.get(name)
            .map(str::to_owned)
            .ok_or_else(|| WebhookError::Malformed(format!("no `{name}` field")))
    }
}

/// A request in palabre's plain format: a form or a JSON object.
pub(crate) fn plain<T: serde::de::DeserializeOwned>(
    request: &WebhookRequest<'_>,
) -> Result<T, WebhookError> {
    if request.is_form() {
        serde_urlencoded::from_bytes(request.body)
            .map_err(|e| WebhookError::Malformed(format!("malformed form: {e}")))
    } else {
        serde_json::from_slice(request.body)
            .map_err(|e| WebhookError::Malformed(format!("malformed JSON: {e}")))
    }
}

pub(crate) fn json(request: &WebhookRequest<'_>) -> Result<Value, WebhookError> {
    serde_json::from_slice(request.body)
        .map_err(|e| WebhookError::Malformed(format!("malformed JSON: {e}")))
}

/// The string at `pointer` in `value`, or a malformed-request error naming it.
pub(crate) fn text_at(value: &Value, pointer: &str) -> Result<String, WebhookError> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| WebhookError::Malformed(format!("no `{pointer}` in the JSON body")))
}
