//! palabre's email connector: SMTP through lettre (STARTTLS, implicit TLS, or
//! plain for a local relay), or `.eml` files in an outbox folder, the embedded
//! default when no SMTP server is configured.
//!
//! Every message carries a Message-ID derived from its outbox key, so a message
//! sent again after a crash is recognisable as the same message; in the file
//! outbox its file is written once, and a repeat leaves it as it is. Meeting
//! invitations carry their `.ics` as the `text/calendar; method=…` alternative
//! of a `multipart/alternative` (the part mail clients act on), naming this
//! connector's sender as ORGANIZER and the recipient as ATTENDEE, and again as
//! an `invitation.ics` attachment. Errors are classified for the engine's retry
//! policy (4xx and network trouble: transient; 5xx: permanent) and scrubbed of
//! email addresses before they reach the ledger or the logs.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use palabre_core::channel::Channel;
use palabre_core::connector::{Connector, Delivery, DeliveryError, OutgoingMessage};
use palabre_core::outbox_file::write_once;

mod invitation;
use invitation::Party;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (required); usually port 587.
    StartTls,
    /// TLS from the first byte; usually port 465.
    Tls,
    /// No encryption: only for a relay on the same machine or in tests.
    Plain,
}

/// An SMTP server to send through.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    /// The password itself, read by the caller from the environment variable the
    /// configuration names; never written in a file.
    pub password: Option<String>,
    /// The sender, `Name <address>` or `address`.
    pub from: String,
    pub timeout: Duration,
    /// A CA certificate (PEM) to trust besides the public roots: for a relay whose
    /// certificate comes from an organisation's own CA.
    pub ca_certificate_pem: Option<Vec<u8>>,
}

/// Why the connector could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EmailConfigError {
    #[error("sender address '{0}' is not valid")]
    From(String),
    #[error("TLS setup for '{host}': {reason}")]
    Tls { host: String, reason: String },
    #[error("cannot create the outbox folder {path}: {reason}")]
    Outbox { path: PathBuf, reason: String },
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

/// Delivers email messages through SMTP or into an outbox folder.
pub struct EmailConnector {
    from: Mailbox,
    transport: Transport,
}

fn mailbox(from: &str) -> Result<Mailbox, EmailConfigError> {
    from.parse()
        .map_err(|_| EmailConfigError::From(from.to_owned()))
}

/// Replaces every word that looks like an email address with its masked form.
fn scrub(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.contains('@') {
                let trimmed = word
                    .trim_matches(|c: char| matches!(c, '<' | '>' | ',' | ';' | ':' | '(' | ')'));
                word.replace(trimmed, &palabre_core::redact::email(trimmed))
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl EmailConnector {
    /// A connector sending through an SMTP server.
    pub fn smtp(config: &SmtpConfig) -> Result<EmailConnector, EmailConfigError> {
        let tls = |host: &str| {
            let failed = |reason: String| EmailConfigError::Tls {
                host: host.to_owned(),
                reason,
            };
            let mut builder = TlsParameters::builder(host.to_owned());
            if let Some(pem) = &config.ca_certificate_pem {
                let certificate = Certificate::from_pem(pem)
                    .map_err(|e| failed(format!("CA certificate: {e}")))?;
                builder = builder.add_root_certificate(certificate);
            }
            builder.build().map_err(|e| failed(e.to_string()))
        };
        let security = match config.security {
            Security::StartTls => Tls::Required(tls(&config.host)?),
            Security::Tls => Tls::Wrapper(tls(&config.host)?),
            Security::Plain => Tls::None,
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
                .port(config.port)
                .tls(security)
                .timeout(Some(config.timeout));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(EmailConnector {
            from: mailbox(&config.from)?,
            transport: Transport::Smtp(builder.build()),
        })
    }

    /// A connector writing each message as `<folder>/<hash>.eml`.
    pub fn files(folder: PathBuf, from: &str) -> Result<EmailConnector, EmailConfigError> {
        std::fs::create_dir_all(&folder).map_err(|e| EmailConfigError::Outbox {
            path: folder.clone(),
            reason: e.to_string(),
        })?;
        Ok(EmailConnector {
            from: mailbox(from)?,
            transport: Transport::Files(folder),
        })
    }

    fn build(&self, message: &OutgoingMessage) -> Result<Message, DeliveryError> {
        let address: Address = message.to_address.parse().map_err(|_| {
            DeliveryError::Permanent("the recipient's email address is not valid".to_owned())
        })?;
        let name: String = message
            .to_name
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let name = name.trim();
        let to = Mailbox::new((!name.is_empty()).then(|| name.to_owned()), address);
        let domain = self.from.email.domain().to_owned();
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to.clone())
            .subject(message.subject.clone().unwrap_or_default())
            .message_id(Some(format!("<{}@{domain}>", message.key_hash())));
        let text = SinglePart::plain(message.body.clone());
        let built = match &message.calendar {
            None => builder.singlepart(text),
            Some(ics) => builder.multipart(self.invitation(ics, text, &to)?),
        };
        built.map_err(|e| {
            DeliveryError::Permanent(format!("cannot build the email: {}", scrub(&e.to_string())))
        })
    }

    /// The body of an email carrying an invitation, as mail clients act on it:
    ///
    /// ```text
    /// multipart/mixed
    /// ├── multipart/alternative
    /// │   ├── text/plain                                      the message
    /// │   └── text/calendar; method=REQUEST; charset=UTF-8    what calendars act on
    /// └── application/ics  invitation.ics                     for clients that show only attachments
    /// ```
    ///
    /// The calendar names this connector's sender as ORGANIZER and the recipient
    /// as ATTENDEE ([`invitation::addressed`]).
    fn invitation(
        &self,
        ics: &str,
        text: SinglePart,
        to: &Mailbox,
    ) -> Result<MultiPart, DeliveryError> {
        let organizer = self.from.email.to_string();
        let attendee = to.email.to_string();
        let ics = invitation::addressed(
            ics,
            &Party {
                name: self.from.name.as_deref().unwrap_or_default(),
                address: &organizer,
            },
            &Party {
                name: to.name.as_deref().unwrap_or_default(),
                address: &attendee,
            },
        );
        let calendar_type = match invitation::method(&ics) {
            Some(method) => format!("text/calendar; method={method}; charset=UTF-8"),
            None => "text/calendar; charset=UTF-8".to_owned(),
        };
        let content_type = |text: &str| {
            ContentType::parse(text)
                .map_err(|e| DeliveryError::Permanent(format!("calendar content type: {e}")))
        };
        let calendar = SinglePart::builder()
            .header(content_type(&calendar_type)?)
            .body(ics.clone());
        let attachment = Attachment::new("invitation.ics".to_owned()).body(
            ics,
            content_type("application/ics; name=\"invitation.ics\"")?,
        );
        Ok(MultiPart::mixed()
            .multipart(
                MultiPart::alternative()
                    .singlepart(text)
                    .singlepart(calendar),
            )
            .singlepart(attachment))
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<String, DeliveryError> {
        let email = self.build(message)?;
        match &self.transport {
            Transport::Files(folder) => {
                let name = format!("{}.eml", message.key_hash());
                let (folder, file, bytes) = (folder.clone(), name.clone(), email.formatted());
                tokio::task::spawn_blocking(move || write_once(&folder, &file, &bytes))
                    .await
                    .map_err(|e| DeliveryError::Transient(format!("writing {name}: {e}")))?
                    .map_err(|e| DeliveryError::Transient(format!("writing {name}: {e}")))?;
                Ok(name)
            }
            Transport::Smtp(transport) => match transport.send(email).await {
                Ok(response) => Ok(format!(
                    "smtp {}",
                    scrub(response.first_line().unwrap_or("accepted"))
                )),
                Err(e) => {
                    let text = scrub(&e.to_string());
                    if e.is_permanent() {
                        Err(DeliveryError::Permanent(text))
                    } else {
                        Err(DeliveryError::Transient(text))
                    }
                }
            },
        }
    }
}

impl Connector for EmailConnector {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    fn name(&self) -> &str {
        match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Files(_) => "file",
        }
    }

    fn deliver<'a>(&'a self, message: &'a OutgoingMessage) -> Delivery<'a> {
        Box::pin(self.send(message))
    }

    fn idempotent(&self) -> bool {
        matches!(self.transport, Transport::Files(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(calendar: Option<&str>) -> OutgoingMessage {
        OutgoingMessage {
            key: "dialogue-koro|1796634000|invitation|c-3|email".to_owned(),
            channel: Channel::Email,
            to_address: "oumar@example.org".to_owned(),
            to_name: "Oumar Tall".to_owned(),
            language: "fra".to_owned(),
            subject: Some("Invitation : réunion".to_owned()),
            body: "Bonjour Oumar,\nà bientôt.".to_owned(),
            calendar: calendar.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn file_outbox_writes_one_eml_per_message_key() {
        let dir = tempfile::tempdir().unwrap();
        let connector =
            EmailConnector::files(dir.path().join("outbox"), "palabre <palabre@example.org>")
                .unwrap();
        let ics = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:u@palabre\r\n\
                   END:VEVENT\r\nEND:VCALENDAR\r\n";
        let id = connector.deliver(&message(Some(ics))).await.unwrap();
        // Delivering the same message again (after a crash) leaves its file as it is.
        let eml_path = dir.path().join("outbox").join(&id);
        let first = std::fs::read(&eml_path).unwrap();
        // Whatever picked it up may have touched it: the repeat must not write again.
        std::fs::write(&eml_path, b"picked up").unwrap();
        assert_eq!(connector.deliver(&message(Some(ics))).await.unwrap(), id);
        assert_eq!(
            std::fs::read(&eml_path).unwrap(),
            b"picked up",
            "not rewritten"
        );
        std::fs::write(&eml_path, first).unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1);
        let eml = std::fs::read_to_string(dir.path().join("outbox").join(&id)).unwrap();
        assert!(
            eml.contains("To: \"Oumar Tall\" <oumar@example.org>")
                || eml.contains("To: Oumar Tall <oumar@example.org>"),
            "{eml}"
        );
        assert!(eml.contains("Message-ID: <"), "{eml}");
        assert!(eml.contains("Content-Type: multipart/mixed;"), "{eml}");
        assert!(
            eml.contains("Content-Type: multipart/alternative;"),
            "{eml}"
        );
        // Charset names are case-insensitive (RFC 2046 §4.1.2); lettre writes `utf-8`.
        assert!(
            eml.to_ascii_lowercase()
                .contains("content-type: text/calendar; method=request; charset=utf-8\r\n"),
            "{eml}"
        );
        assert!(eml.contains("Content-Type: application/ics;"), "{eml}");
        assert!(eml.contains("filename=\"invitation.ics\""), "{eml}");
        // What a client reads, the transfer encoding undone.
        use mail_parser::MimeHeaders;
        let parsed = mail_parser::MessageParser::default()
            .parse(eml.as_bytes())
            .unwrap();
        let calendar = parsed
            .parts
            .iter()
            .find(|p| {
                p.content_type()
                    .is_some_and(|t| t.subtype() == Some("calendar"))
            })
            .and_then(|p| p.text_contents())
            .unwrap()
            .replace("\r\n ", "");
        assert!(
            calendar.contains("ORGANIZER;CN=palabre:mailto:palabre@example.org\r\n"),
            "{calendar}"
        );
        assert!(
            calendar.contains(
                "ATTENDEE;CN=Oumar Tall;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;\
                 RSVP=FALSE:mailto:oumar@example.org\r\nEND:VEVENT\r\n"
            ),
            "{calendar}"
        );
    }

    #[tokio::test]
    async fn a_malformed_address_is_a_permanent_error() {
        let dir = tempfile::tempdir().unwrap();
        let connector =
            EmailConnector::files(dir.path().to_path_buf(), "palabre@example.org").unwrap();
        let mut bad = message(None);
        bad.to_address = "not an address".to_owned();
        assert!(matches!(
            connector.deliver(&bad).await,
            Err(DeliveryError::Permanent(_))
        ));
    }

    #[test]
    fn scrubs_addresses_from_server_replies() {
        assert_eq!(
            scrub("550 5.1.1 <awa.diallo@example.org>: user unknown"),
            "550 5.1.1 <a•••@example.org>: user unknown"
        );
        assert!(matches!(mailbox("nope"), Err(EmailConfigError::From(_))));
    }
}
