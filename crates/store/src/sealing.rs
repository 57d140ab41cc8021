//! Sealing: what can identify a person is encrypted at rest.
//!
//! A database has one [`Key`] (32 random bytes, kept outside the database).
//! From it are derived, by HKDF-SHA-256, the *sealing key* (AES-256-GCM) and
//! the *index key* (HMAC-SHA-256). Every value of a [`Sealed`] column (the
//! directory's names, phones and emails, the texts of messages, ledger details,
//! case descriptions, notes, reasons, kept API answers, the server's secrets,
//! token labels) is stored as `p1.<key id>.<base64 of nonce, ciphertext and
//! tag>`, each with a random nonce of its own and the column and row bound in
//! as associated data, so that a value copied to another row or column does not
//! open. A few public markers (the empty text, [`ERASED_TEXT`],
//! [`EXPIRED_TEXT`]) say nothing about anyone and are stored as they are, so
//! that SQL can still test for them.
//!
//! Equality lookups (an inbound SMS's sender by number) go through a *blind
//! index*: the HMAC of the normalised value under the index key, never the
//! value.
//!
//! The `sealing` table holds the key id and a check value sealed under the key,
//! so that a wrong key is refused before anything is read or written; a rotation
//! under way is recorded there too ([`Store::rotate_key`]).
//!
//! [`Store::rotate_key`]: crate::Store::rotate_key

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, hkdf, hmac};

use crate::StoreError;

/// What the text of an erased message, and the name of an erased contact, become.
pub const ERASED_TEXT: &str = "[effacé]";

/// What a message's texts become once expired.
pub const EXPIRED_TEXT: &str = "[expiré]";

/// How many bytes a key has.
pub const KEY_BYTES: usize = 32;

/// How a key is written in a key file or `PALABRE_KEY`: this word, a space,
/// then 64 hex digits.
const KEY_TEXT_PREFIX: &str = "palabre-key-v1";

/// How every sealed value begins.
const SEALED_PREFIX: &str = "p1.";

const NONCE_BYTES: usize = 12;

/// A key that is not one.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "this is not a palabre key: a key is one line, '{KEY_TEXT_PREFIX}' then a space and 64 hex digits (make one with `palabre key init`)"
    )]
    Malformed,
    #[error("the system gave no randomness to make a key with")]
    NoRandomness,
}

/// A database key. Its bytes are never shown: [`Key::id`] names it.
#[derive(Clone)]
pub struct Key([u8; KEY_BYTES]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.id())
    }
}

impl Key {
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Key {
        Key(bytes)
    }

    /// A new key from the system's randomness.
    pub fn generate() -> Result<Key, KeyError> {
        let mut bytes = [0_u8; KEY_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| KeyError::NoRandomness)?;
        Ok(Key(bytes))
    }

    /// A key as [`Key::to_text`] writes it (surrounding white space ignored).
    pub fn parse(text: &str) -> Result<Key, KeyError> {
        let digits = text
            .trim()
            .strip_prefix(KEY_TEXT_PREFIX)
            .map(str::trim_start)
            .ok_or(KeyError::Malformed)?;
        if digits.len() != KEY_BYTES * 2 || !digits.is_ascii() {
            return Err(KeyError::Malformed);
        }
        let mut bytes = [0_u8; KEY_BYTES];
        for (byte, pair) in bytes.iter_mut().zip(digits.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| KeyError::Malformed)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| KeyError::Malformed)?;
        }
        Ok(Key(bytes))
    }

    /// The key as a key file holds it: one line.
    pub fn to_text(&self) -> String {
        format!("{KEY_TEXT_PREFIX} {}\n", hex(&self.0))
    }

    /// The key's name: 8 hex digits that tell keys apart and reveal nothing of them.
    pub fn id(&self) -> String {
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &self.0),
            b"palabre key id v1",
        );
        hex(&tag.as_ref()[..4])
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A column whose values are sealed.
#[derive(Debug)]
pub(crate) struct Sealed {
    pub column: &'static str,
    /// The name bound into each value: the column's own, except for a text
    /// sealed already as the copy it will become (a fallback's body is sealed
    /// as the `body` of the row `<id>|fallback`, which SQL copies it to).
    pub sealed_as: &'static str,
    /// SQL giving the row key bound into each value, as the writers compute it.
    pub row_key: &'static str,
}

/// A table with sealed columns, and the blind indexes kept beside them.
#[derive(Debug)]
pub(crate) struct SealedTable {
    pub table: &'static str,
    pub columns: &'static [Sealed],
    /// (the column's position in `columns`, the index column, what is indexed).
    pub indexes: &'static [(usize, &'static str, Indexed)],
}

/// What a blind index holds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Indexed {
    Phone,
    Email,
}

impl Indexed {
    fn word(self) -> &'static str {
        match self {
            Indexed::Phone => "phone",
            Indexed::Email => "email",
        }
    }

    /// The form compared: phones are stored normalised; emails compare without case.
    fn normalised(self, value: &str) -> String {
        match self {
            Indexed::Phone => value.trim().to_owned(),
            Indexed::Email => value.trim().to_lowercase(),
        }
    }
}

const fn sealed(column: &'static str, sealed_as: &'static str, row_key: &'static str) -> Sealed {
    Sealed {
        column,
        sealed_as,
        row_key,
    }
}

pub(crate) const CONTACT_NAME: Sealed = sealed("name", "contacts.name", "id");
pub(crate) const CONTACT_PHONE: Sealed = sealed("phone", "contacts.phone", "id");
pub(crate) const CONTACT_EMAIL: Sealed = sealed("email", "contacts.email", "id");
pub(crate) const MESSAGE_SUBJECT: Sealed = sealed("subject", "outbox.subject", "id");
pub(crate) const MESSAGE_BODY: Sealed = sealed("body", "outbox.body", "id");
pub(crate) const MESSAGE_CALENDAR: Sealed = sealed("calendar", "outbox.calendar", "id");
/// The row a message's fallback copy becomes (`queue_fallbacks` writes it by
/// SQL, as [`FALLBACK_SUBJECT`] and [`FALLBACK_BODY`]'s row key computes it):
/// its texts are sealed under this row key from the start.
pub(crate) fn fallback_row(id: &str) -> String {
    format!("{id}|fallback")
}

pub(crate) const FALLBACK_SUBJECT: Sealed =
    sealed("fallback_subject", "outbox.subject", "id || '|fallback'");
pub(crate) const FALLBACK_BODY: Sealed =
    sealed("fallback_body", "outbox.body", "id || '|fallback'");
/// A ledger row's number is the database's, known only after the insert: the
/// detail is bound to everything else the row says.
pub(crate) const LEDGER_DETAIL: Sealed = sealed(
    "detail",
    "ledger.detail",
    "CAST(at AS TEXT) || '|' || event || '|' || COALESCE(workflow, '') || '|' \
     || COALESCE(CAST(occurrence AS TEXT), '') || '|' || COALESCE(step, '') || '|' \
     || COALESCE(contact_id, '') || '|' || COALESCE(channel, '')",
);
pub(crate) const CASE_DESCRIPTION: Sealed = sealed("description", "cases.description", "id");
pub(crate) const MILESTONE_NOTE: Sealed = sealed(
    "note",
    "milestone_status.note",
    "workflow || '|' || milestone",
);
pub(crate) const CHANGE_REASON: Sealed = sealed(
    "reason",
    "occurrence_changes.reason",
    "workflow || '|' || CAST(occurrence AS TEXT)",
);
pub(crate) const KEPT_ANSWER: Sealed =
    sealed("body", "idempotency_keys.body", "scope || '|' || idem_key");
pub(crate) const SECRET_VALUE: Sealed = sealed("value", "secrets.value", "name");
pub(crate) const TOKEN_LABEL: Sealed = sealed("label", "api_tokens.label", "id");

/// Every sealed column, table by table.
pub(crate) const SEALED_TABLES: &[SealedTable] = &[
    SealedTable {
        table: "contacts",
        columns: &[CONTACT_NAME, CONTACT_PHONE, CONTACT_EMAIL],
        indexes: &[
            (1, "phone_index", Indexed::Phone),
            (2, "email_index", Indexed::Email),
        ],
    },
    SealedTable {
        table: "outbox",
        columns: &[
            MESSAGE_SUBJECT,
            MESSAGE_BODY,
            MESSAGE_CALENDAR,
            FALLBACK_SUBJECT,
            FALLBACK_BODY,
        ],
        indexes: &[],
    },
    SealedTable {
        table: "ledger",
        columns: &[LEDGER_DETAIL],
        indexes: &[],
    },
    SealedTable {
        table: "cases",
        columns: &[CASE_DESCRIPTION],
        indexes: &[],
    },
    SealedTable {
        table: "milestone_status",
        columns: &[MILESTONE_NOTE],
        indexes: &[],
    },
    SealedTable {
        table: "occurrence_changes",
        columns: &[CHANGE_REASON],
        indexes: &[],
    },
    SealedTable {
        table: "idempotency_keys",
        columns: &[KEPT_ANSWER],
        indexes: &[],
    },
    SealedTable {
        table: "secrets",
        columns: &[SECRET_VALUE],
        indexes: &[],
    },
    SealedTable {
        table: "api_tokens",
        columns: &[TOKEN_LABEL],
        indexes: &[],
    },
];

/// Values stored as they are: they say nothing about anyone.
pub(crate) fn is_public(value: &str) -> bool {
    value.is_empty() || value == ERASED_TEXT || value == EXPIRED_TEXT
}

/// Whether a stored value has the sealed form (under any key): the prefix, a
/// key id of 8 hex digits, a dot.
pub(crate) fn is_sealed(value: &str) -> bool {
    value.strip_prefix(SEALED_PREFIX).is_some_and(|rest| {
        rest.len() > 9
            && rest.as_bytes()[8] == b'.'
            && rest.as_bytes()[..8].iter().all(u8::is_ascii_hexdigit)
    })
}

/// `LIKE` pattern of the values of the sealed form (under any key).
pub(crate) const SEALED_PATTERN: &str = "p1.________.%";

/// `LIKE` pattern of the values sealed under the key `id`.
pub(crate) fn sealed_under(id: &str) -> String {
    format!("{SEALED_PREFIX}{id}.%")
}

/// The keys derived from one [`Key`].
struct Derived {
    id: String,
    sealing: aead::LessSafeKey,
    index: hmac::Key,
}

impl Derived {
    fn of(key: &Key) -> Result<Derived, StoreError> {
        let failed = |_| StoreError::Sealing("the key derivation failed".to_owned());
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"palabre").extract(&key.0);
        let sealing: aead::UnboundKey = prk
            .expand(&[b"sealing v1"], &aead::AES_256_GCM)
            .map_err(failed)?
            .into();
        let index: hmac::Key = prk
            .expand(&[b"index v1"], hmac::HMAC_SHA256)
            .map_err(failed)?
            .into();
        Ok(Derived {
            id: key.id(),
            sealing: aead::LessSafeKey::new(sealing),
            index,
        })
    }
}

/// Seals and opens values, and computes blind indexes, under a database's key
/// (during a rotation: opens under either key, seals under the new one).
pub(crate) struct Sealer {
    current: Derived,
    previous: Option<Derived>,
    random: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({})", self.current.id)
    }
}

/// The associated data of one value: its column and its row.
fn bound(column: &Sealed, row: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(column.sealed_as.len() + 1 + row.len());
    aad.extend_from_slice(column.sealed_as.as_bytes());
    aad.push(0);
    aad.extend_from_slice(row.as_bytes());
    aad
}

impl Sealer {
    pub(crate) fn new(key: &Key) -> Result<Sealer, StoreError> {
        Ok(Sealer {
            current: Derived::of(key)?,
            previous: None,
            random: SystemRandom::new(),
        })
    }

    /// Opens under `from` or `to`, seals under `to`.
    pub(crate) fn rotating(from: &Key, to: &Key) -> Result<Sealer, StoreError> {
        Ok(Sealer {
            previous: Some(Derived::of(from)?),
            ..Sealer::new(to)?
        })
    }

    /// The id of the key values are sealed under.
    pub(crate) fn key_id(&self) -> &str {
        &self.current.id
    }

    /// `clear`, sealed as `column` of `row` (a public marker as it is).
    pub(crate) fn seal(
        &self,
        column: &Sealed,
        row: &str,
        clear: &str,
    ) -> Result<String, StoreError> {
        if is_public(clear) {
            return Ok(clear.to_owned());
        }
        let mut nonce = [0_u8; NONCE_BYTES];
        self.random
            .fill(&mut nonce)
            .map_err(|_| StoreError::Sealing("the system gave no randomness".to_owned()))?;
        // Nonce, ciphertext and tag in one buffer, encrypted in place.
        let mut sealed = Vec::with_capacity(NONCE_BYTES + clear.len() + aead::MAX_TAG_LEN);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(clear.as_bytes());
        let tag = self
            .current
            .sealing
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(bound(column, row)),
                &mut sealed[NONCE_BYTES..],
            )
            .map_err(|_| StoreError::Sealing("a value could not be sealed".to_owned()))?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(format!(
            "{SEALED_PREFIX}{}.{}",
            self.current.id,
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(sealed)
        ))
    }

    pub(crate) fn seal_some(
        &self,
        column: &Sealed,
        row: &str,
        clear: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        clear.map(|clear| self.seal(column, row, clear)).transpose()
    }

    /// The clear value of `stored`, read as `column` of `row` of `table`.
    pub(crate) fn open(
        &self,
        table: &'static str,
        column: &Sealed,
        row: &str,
        stored: &str,
    ) -> Result<String, StoreError> {
        if is_public(stored) {
            return Ok(stored.to_owned());
        }
        let corrupt = |reason: String| StoreError::Corrupt {
            table,
            id: row.to_owned(),
            reason: format!("{}: {reason}", column.column),
        };
        let rest = stored
            .strip_prefix(SEALED_PREFIX)
            .ok_or_else(|| corrupt("stored in clear in an encrypted database".to_owned()))?;
        let (id, encoded) = rest
            .split_once('.')
            .ok_or_else(|| corrupt("not a sealed value".to_owned()))?;
        let derived = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|derived| derived.id == id)
            .ok_or_else(|| corrupt(format!("sealed under another key ({id})")))?;
        let mut bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| corrupt("not a sealed value".to_owned()))?;
        if bytes.len() < NONCE_BYTES {
            return Err(corrupt("not a sealed value".to_owned()));
        }
        let mut text = bytes.split_off(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = bytes
            .try_into()
            .map_err(|_| corrupt("not a sealed value".to_owned()))?;
        let clear = derived
            .sealing
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(bound(column, row)),
                &mut text,
            )
            .map_err(|_| corrupt("does not open: altered, or moved from another row".to_owned()))?;
        String::from_utf8(clear.to_vec()).map_err(|_| corrupt("not text".to_owned()))
    }

    pub(crate) fn open_some(
        &self,
        table: &'static str,
        column: &Sealed,
        row: &str,
        stored: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        stored
            .map(|stored| self.open(table, column, row, stored))
            .transpose()
    }

    /// The blind index of a value: what lookups by equality compare.
    pub(crate) fn index(&self, indexed: Indexed, value: &str) -> String {
        let mut message = indexed.word().as_bytes().to_vec();
        message.push(0);
        message.extend_from_slice(indexed.normalised(value).as_bytes());
        hex(&hmac::sign(&self.current.index, &message).as_ref()[..16])
    }

    pub(crate) fn index_some(&self, indexed: Indexed, value: Option<&str>) -> Option<String> {
        value.map(|value| self.index(indexed, value))
    }
}

/// The check value of the `sealing` table: a known text sealed under the key.
pub(crate) const CHECK: Sealed = sealed("key_check", "sealing.key_check", "1");
pub(crate) const CHECK_TEXT: &str = "palabre";

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&Key::from_bytes([byte; KEY_BYTES])).unwrap()
    }

    #[test]
    fn a_value_opens_in_its_own_row_and_column_only() {
        let sealer = sealer(1);
        let stored = sealer
            .seal(&CONTACT_NAME, "c-0001", "Aïssata Cissé")
            .unwrap();
        assert!(
            stored.starts_with("p1.") && !stored.contains("Cissé"),
            "{stored}"
        );
        assert_eq!(
            sealer
                .open("contacts", &CONTACT_NAME, "c-0001", &stored)
                .unwrap(),
            "Aïssata Cissé"
        );
        for (column, row) in [(&CONTACT_NAME, "c-0002"), (&CONTACT_EMAIL, "c-0001")] {
            let error = sealer.open("contacts", column, row, &stored).unwrap_err();
            assert!(error.to_string().contains("does not open"), "{error}");
        }
    }

    #[test]
    fn each_value_has_its_own_nonce_and_markers_stay_as_they_are() {
        let sealer = sealer(1);
        let once = sealer.seal(&MESSAGE_BODY, "m", "Bonjour").unwrap();
        let twice = sealer.seal(&MESSAGE_BODY, "m", "Bonjour").unwrap();
        assert_ne!(once, twice);
        for marker in ["", ERASED_TEXT, EXPIRED_TEXT] {
            assert_eq!(sealer.seal(&MESSAGE_BODY, "m", marker).unwrap(), marker);
            assert_eq!(
                sealer.open("outbox", &MESSAGE_BODY, "m", marker).unwrap(),
                marker
            );
        }
    }

    #[test]
    fn another_key_a_clear_value_and_an_altered_one_are_refused() {
        let (one, two) = (sealer(1), sealer(2));
        let stored = one.seal(&CASE_DESCRIPTION, "LM-0001", "un litige").unwrap();
        let error = two
            .open("cases", &CASE_DESCRIPTION, "LM-0001", &stored)
            .unwrap_err();
        assert!(error.to_string().contains("another key"), "{error}");
        let error = one
            .open("cases", &CASE_DESCRIPTION, "LM-0001", "un litige")
            .unwrap_err();
        assert!(error.to_string().contains("in clear"), "{error}");
        let mut altered = stored.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        let error = one
            .open("cases", &CASE_DESCRIPTION, "LM-0001", &altered)
            .unwrap_err();
        assert!(error.to_string().contains("does not open"), "{error}");
        assert!(!error.to_string().contains("un litige"));
    }

    #[test]
    fn a_rotating_sealer_opens_both_keys_and_seals_under_the_new_one() {
        let (old, new) = (
            Key::from_bytes([1; KEY_BYTES]),
            Key::from_bytes([2; KEY_BYTES]),
        );
        let before = sealer(1).seal(&LEDGER_DETAIL, "r", "sent").unwrap();
        let rotating = Sealer::rotating(&old, &new).unwrap();
        assert_eq!(
            rotating
                .open("ledger", &LEDGER_DETAIL, "r", &before)
                .unwrap(),
            "sent"
        );
        let after = rotating.seal(&LEDGER_DETAIL, "r", "sent").unwrap();
        assert!(after.starts_with(&format!("p1.{}.", new.id())), "{after}");
        assert!(
            sealer(1)
                .open("ledger", &LEDGER_DETAIL, "r", &after)
                .is_err()
        );
    }

    #[test]
    fn the_sealed_form_is_told_from_a_text_that_begins_like_it() {
        let stored = sealer(1)
            .seal(&MILESTONE_NOTE, "p|m", "p1. faire le point")
            .unwrap();
        assert!(is_sealed(&stored));
        assert!(!is_sealed("p1. faire le point"));
        assert!(!is_sealed("p1.notahexid.rest"));
    }

    #[test]
    fn blind_indexes_are_keyed_and_ignore_an_emails_case() {
        let (one, two) = (sealer(1), sealer(2));
        assert_eq!(
            one.index(Indexed::Email, "Awa.Traore@example.org"),
            one.index(Indexed::Email, "awa.traore@example.org ")
        );
        assert_ne!(
            one.index(Indexed::Phone, "+223-invented-1"),
            two.index(Indexed::Phone, "+223-invented-1")
        );
        assert_ne!(
            one.index(Indexed::Phone, "+223-invented-1"),
            one.index(Indexed::Email, "+223-invented-1")
        );
    }

    #[test]
    fn a_key_reads_back_from_its_text_and_its_id_shows_nothing_of_it() {
        let key = Key::generate().unwrap();
        let text = key.to_text();
        assert!(text.starts_with("palabre-key-v1 ") && text.ends_with('\n'));
        assert_eq!(Key::parse(&text).unwrap().0, key.0);
        assert_eq!(key.id().len(), 8);
        assert!(!text.contains(&key.id()));
        assert!(!format!("{key:?}").contains(&text[15..40]));
        for bad in [
            "",
            "palabre-key-v1 abc",
            "3f",
            &text.replace("palabre", "other"),
        ] {
            assert!(matches!(Key::parse(bad), Err(KeyError::Malformed)), "{bad}");
        }
    }
}
