//! Answer links: the address in a meeting's email where its recipient answers
//! yes or no from a browser, for people who read email but cannot send the SMS
//! reply (officials reachable only by email). A link names the workflow, the
//! occurrence and the contact, signed with HMAC-SHA-256 under a key the server
//! keeps in its database (`secrets`), so it cannot be made up or changed: a link
//! is worth exactly one person's answer to one occurrence. Opening it only shows
//! the question; answering is a POST (mail scanners that open links answer
//! nothing).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use palabre_plan::planner::AnswerLinks;
use palabre_store::{Store, StoreError};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// The name of the signing key among the database's secrets.
const KEY_NAME: &str = "answer-links";

/// Bytes of the signature a link carries (128 bits).
const SIGNATURE_BYTES: usize = 16;

/// What a valid link is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSubject {
    pub workflow: String,
    pub occurrence: DateTime<Utc>,
    pub contact: String,
}

/// Makes and checks the answer links of one server.
pub struct AnswerLinkSigner {
    /// The server's public address, without a trailing slash.
    base: String,
    key: hmac::Key,
}

impl AnswerLinkSigner {
    /// The signer of the server at `base` (`https://palabre.example.org`), with
    /// the key kept in `store` (made on first use).
    pub async fn load(store: &Store, base: &str) -> Result<AnswerLinkSigner, StoreError> {
        let mut candidate = [0u8; 32];
        // Without randomness, the candidate stays zero; a stored key is used anyway.
        let _ = SystemRandom::new().fill(&mut candidate);
        let secret = store
            .kept_secret(KEY_NAME, &URL_SAFE_NO_PAD.encode(candidate))
            .await?;
        Ok(AnswerLinkSigner::new(base, secret.as_bytes()))
    }

    fn new(base: &str, secret: &[u8]) -> AnswerLinkSigner {
        AnswerLinkSigner {
            base: base.trim_end_matches('/').to_owned(),
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn sign(&self, payload: &str) -> Vec<u8> {
        hmac::sign(&self.key, payload.as_bytes()).as_ref()[..SIGNATURE_BYTES].to_vec()
    }

    /// The token of a link: the subject and its signature, URL-safe.
    pub fn token(&self, workflow: &str, occurrence: DateTime<Utc>, contact: &str) -> String {
        let payload = format!("{workflow}\n{}\n{contact}", occurrence.timestamp_millis());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(self.sign(&payload))
        )
    }

    /// What `token` is about, if this server signed it.
    pub fn verify(&self, token: &str) -> Option<LinkSubject> {
        let (payload, signature) = token.split_once('.')?;
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let expected = self.sign(&payload);
        if !palabre_core::secret::same_bytes(&signature, &expected) {
            return None;
        }
        let mut parts = payload.splitn(3, '\n');
        let workflow = parts.next()?.to_owned();
        let occurrence = DateTime::from_timestamp_millis(parts.next()?.parse().ok()?)?;
        let contact = parts.next()?.to_owned();
        Some(LinkSubject {
            workflow,
            occurrence,
            contact,
        })
    }
}

impl AnswerLinks for AnswerLinkSigner {
    fn url(&self, workflow: &str, occurrence: DateTime<Utc>, contact: &str) -> String {
        format!(
            "{}/answer/{}",
            self.base,
            self.token(workflow, occurrence, contact)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_says_whose_answer_it_is_and_cannot_be_changed_or_made_up() {
        let signer = AnswerLinkSigner::new("https://palabre.example.org/", b"key");
        let occurrence = DateTime::from_timestamp_millis(1_796_000_000_000).unwrap();
        let url = signer.url("dialogue-koro", occurrence, "c-0042");
        let token = url
            .strip_prefix("https://palabre.example.org/answer/")
            .unwrap();
        assert_eq!(
            signer.verify(token),
            Some(LinkSubject {
                workflow: "dialogue-koro".into(),
                occurrence,
                contact: "c-0042".into(),
            })
        );
        // Another contact's payload with this signature, another key, garbage: nothing.
        let (_, signature) = token.split_once('.').unwrap();
        let other = URL_SAFE_NO_PAD.encode(format!(
            "dialogue-koro\n{}\nc-0043",
            occurrence.timestamp_millis()
        ));
        assert_eq!(signer.verify(&format!("{other}.{signature}")), None);
        assert_eq!(AnswerLinkSigner::new("x", b"other").verify(token), None);
        assert_eq!(signer.verify("nothing"), None);
        assert_eq!(signer.verify("a.b.c"), None);
    }
}
