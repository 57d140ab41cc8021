//! palabre's SMS connectors. This crate starts with the SMS outbox: with no
//! gateway configured, each SMS is written as `<folder>/<hash>.txt` (recipient
//! and text), so the embedded default loses nothing and shows exactly what would
//! have been sent. Gateways (Orange, Twilio, Infobip, Africa's Talking, generic
//! HTTP) will sit beside it behind the same connector trait. [`encoding`] counts
//! what an SMS costs, and [`RULE_FUNCTIONS`] lets rules ask it.

pub mod encoding;
pub mod gateways;
pub mod voice;

use std::path::PathBuf;

use palabre_core::channel::Channel;
use palabre_core::connector::{Connector, Delivery, DeliveryError, OutgoingMessage};
use palabre_core::outbox_file::write_once;
use palabre_core::rule_function::{RuleFunction, RuleFunctionBody};

/// Why the SMS outbox could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the SMS outbox folder {path}: {reason}")]
pub struct SmsOutboxError {
    pub path: PathBuf,
    pub reason: String,
}

/// The SMS plugin's functions in the rule language.
pub const RULE_FUNCTIONS: &[RuleFunction] = &[RuleFunction {
    name: "sms_segments",
    doc: "How many SMS segments `text` is sent in: GSM-7 (160, then 153 per segment,\n\
          extension characters counting double) or UCS-2 (70, then 67) as soon as one\n\
          character is outside the GSM alphabet.",
    body: RuleFunctionBody::TextToInteger(segments),
}];

/// `sms_segments` in the rule language.
fn segments(text: &str) -> i64 {
    i64::try_from(encoding::sms_size(text).segments).unwrap_or(i64::MAX)
}

/// Writes each SMS to a file instead of a gateway.
pub struct SmsOutbox {
    folder: PathBuf,
}

impl SmsOutbox {
    pub fn new(folder: PathBuf) -> Result<SmsOutbox, SmsOutboxError> {
        std::fs::create_dir_all(&folder).map_err(|e| SmsOutboxError {
            path: folder.clone(),
            reason: e.to_string(),
        })?;
        Ok(SmsOutbox { folder })
    }

    async fn write(&self, message: &OutgoingMessage) -> Result<String, DeliveryError> {
        let name = format!("{}.txt", message.key_hash());
        let text = format!(
            "To: {} <{}>\nLanguage: {}\nKey: {}\n\n{}\n",
            message.to_name, message.to_address, message.language, message.key, message.body
        );
        let (folder, file) = (self.folder.clone(), name.clone());
        tokio::task::spawn_blocking(move || write_once(&folder, &file, text.as_bytes()))
            .await
            .map_err(|e| DeliveryError::Transient(format!("writing {name}: {e}")))?
            .map_err(|e| DeliveryError::Transient(format!("writing {name}: {e}")))?;
        Ok(name)
    }
}

impl Connector for SmsOutbox {
    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn name(&self) -> &str {
        "sms-outbox"
    }

    fn deliver<'a>(&'a self, message: &'a OutgoingMessage) -> Delivery<'a> {
        Box::pin(self.write(message))
    }

    fn idempotent(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_one_file_per_message_key() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = SmsOutbox::new(dir.path().join("sms")).unwrap();
        let message = OutgoingMessage {
            key: "w|1|s|c-1|sms".to_owned(),
            channel: Channel::Sms,
            to_address: "+22376112233".to_owned(), // a fake number
            to_name: "Awa Diallo".to_owned(),
            language: "fra".to_owned(),
            subject: None,
            body: "Rappel: réunion demain".to_owned(),
            calendar: None,
        };
        let name = outbox.deliver(&message).await.unwrap();
        let path = dir.path().join("sms").join(&name);
        let first = std::fs::read(&path).unwrap();
        // Whatever picked it up may have touched it: the repeat must not write again.
        std::fs::write(&path, b"picked up").unwrap();
        assert_eq!(
            outbox.deliver(&message).await.unwrap(),
            name,
            "a repeat names the same file"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"picked up",
            "and leaves it as it was"
        );
        std::fs::write(&path, first).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("sms")).unwrap().count(),
            1
        );
        let text = std::fs::read_to_string(dir.path().join("sms").join(name)).unwrap();
        assert!(text.ends_with("\n\nRappel: réunion demain\n"), "{text}");
    }
}
