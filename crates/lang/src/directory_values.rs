//! The words of a directory as coordinators write them, and the forms palabre
//! keeps: `Leader` is the role `leader`, `Mopti / Djenné / Djenné` the place
//! `mopti/djenne/djenne`, `Français` or `FRA` the language `fra`, `E-mail` the
//! channel `email`.
//!
//! A value is read another way only when what it becomes is known (a role of
//! roles.yaml, a place of places.yaml, whose ids are unaccented slugs, a
//! language code, a channel); anything else is left as written for the
//! validation to report. Each reading says how the value was written
//! ([`Written`]), so that the import can tell the coordinator what it read
//! differently, per column, with one example.

use std::collections::BTreeSet;
use std::fmt;

use crate::gsm::to_gsm_lookalikes;
use crate::language::is_language_code;
use crate::places::Places;
use palabre_core::channel::Channel;

/// How a value was written, when it is not the form palabre keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Written {
    /// With capital letters (`Leader`, `FRA`, `SMS`).
    Capitals,
    /// With accents (`Djenné`).
    Accents,
    /// With spaces inside (`mopti / koro`, `women leader`).
    Spaces,
    /// As a language's name or a two-letter code rather than its ISO 639-3 code
    /// (`Français`, `Bambara`, `fr`).
    Name,
    /// In another spelling of a channel (`e-mail`, `courriel`, `texto`).
    Spelling,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Written::Capitals => "in capitals",
            Written::Accents => "with accents",
            Written::Spaces => "with spaces",
            Written::Name => "as a name rather than a code",
            Written::Spelling => "in another spelling",
        })
    }
}

/// A value in the form palabre keeps, and how it had been written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading<T> {
    pub value: T,
    /// Empty when the value was written as palabre keeps it.
    pub written: BTreeSet<Written>,
}

/// Languages by the names and two-letter codes coordinators write, folded
/// (lower case, no accents), and their ISO 639-3 codes. Only names that mean
/// one language in central Mali: "dogon" or "songhay" name several, and need
/// the code of the one spoken.
const LANGUAGE_NAMES: &[(&str, &str)] = &[
    ("francais", "fra"),
    ("french", "fra"),
    ("fr", "fra"),
    ("fre", "fra"),
    ("bambara", "bam"),
    ("bamanankan", "bam"),
    ("bamana", "bam"),
    ("bm", "bam"),
    // Maasina Fulfulde, the Fulfulde of central Mali.
    ("fulfulde", "ffm"),
    ("peul", "ffm"),
    ("peulh", "ffm"),
    ("fula", "ffm"),
    ("fulani", "ffm"),
    ("ff", "ffm"),
    ("anglais", "eng"),
    ("english", "eng"),
    ("en", "eng"),
    // Jenaama, the Bozo of the inner delta of the Niger.
    ("bozo", "bze"),
    ("jenaama", "bze"),
    ("toro so", "dts"),
    ("koyraboro senni", "ses"),
    ("soninke", "snk"),
    ("sarakole", "snk"),
    ("tamasheq", "taq"),
    ("tamashek", "taq"),
    ("tamacheq", "taq"),
    ("arabe", "ara"),
    ("arabic", "ara"),
];

/// Channels by the other ways people write them, folded.
const CHANNEL_SPELLINGS: &[(&str, Channel)] = &[
    ("e-mail", Channel::Email),
    ("e mail", Channel::Email),
    ("mail", Channel::Email),
    ("courriel", Channel::Email),
    ("texto", Channel::Sms),
    ("appel", Channel::Voice),
    ("telephone", Channel::Voice),
    ("vocal", Channel::Voice),
    ("call", Channel::Voice),
];

/// Lower case, accents removed, runs of spaces made one; what was changed.
fn fold(text: &str) -> (String, BTreeSet<Written>) {
    let mut written = BTreeSet::new();
    let text = text.trim();
    if text.chars().any(char::is_uppercase) {
        written.insert(Written::Capitals);
    }
    let lower = text.to_lowercase();
    // The look-alikes strip what the GSM alphabet lacks; it keeps é è à ù ì ò.
    let plain: String = to_gsm_lookalikes(&lower)
        .chars()
        .map(|c| match c {
            'é' | 'è' => 'e',
            'à' | 'ä' => 'a',
            'ù' | 'ü' => 'u',
            'ì' => 'i',
            'ò' | 'ö' => 'o',
            'ñ' => 'n',
            other => other,
        })
        .collect();
    if plain != lower {
        written.insert(Written::Accents);
    }
    let mut folded = String::with_capacity(plain.len());
    for word in plain.split_whitespace() {
        if !folded.is_empty() {
            folded.push(' ');
        }
        folded.push_str(word);
    }
    (folded, written)
}

/// A folded text as a slug: spaces, underscores and apostrophes become dashes.
fn slug(folded: &str, written: &mut BTreeSet<Written>) -> String {
    let slug = folded
        .split([' ', '_', '\''])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if folded.contains(' ') {
        written.insert(Written::Spaces);
    }
    slug
}

/// A role of `roles`, however its capitals, accents and spaces were written.
pub fn role(text: &str, roles: &BTreeSet<String>) -> Option<Reading<String>> {
    let text = text.trim();
    if roles.contains(text) {
        return Some(Reading {
            value: text.to_owned(),
            written: BTreeSet::new(),
        });
    }
    let (folded, mut written) = fold(text);
    let value = slug(&folded, &mut written);
    roles.contains(&value).then_some(Reading { value, written })
}

/// A place of `places`, each segment of its path read like a role's name.
pub fn place(text: &str, places: &Places) -> Option<Reading<String>> {
    let text = text.trim();
    if places.get(text).is_some() {
        return Some(Reading {
            value: text.to_owned(),
            written: BTreeSet::new(),
        });
    }
    let mut written = BTreeSet::new();
    let segments: Vec<String> = text
        .split('/')
        .map(|segment| {
            if segment.trim() != segment {
                written.insert(Written::Spaces);
            }
            let (folded, changed) = fold(segment);
            written.extend(changed);
            slug(&folded, &mut written)
        })
        .collect();
    let value = segments.join("/");
    places
        .get(&value)
        .is_some()
        .then_some(Reading { value, written })
}

/// An ISO 639-3 code, from itself in any case or from a language's name.
pub fn language(text: &str) -> Option<Reading<String>> {
    let (folded, written) = fold(text);
    if let Some((_, code)) = LANGUAGE_NAMES.iter().find(|(name, _)| *name == folded) {
        return Some(Reading {
            value: (*code).to_owned(),
            written: BTreeSet::from([Written::Name]),
        });
    }
    // A code written with accents is no code.
    if written.contains(&Written::Accents) || !is_language_code(&folded) {
        return None;
    }
    Some(Reading {
        value: folded,
        written,
    })
}

/// A channel, in any case or in another usual spelling.
pub fn channel(text: &str) -> Option<Reading<Channel>> {
    let (folded, mut written) = fold(text);
    if let Some(channel) = Channel::parse(&folded) {
        return Some(Reading {
            value: channel,
            written,
        });
    }
    let (_, channel) = CHANNEL_SPELLINGS
        .iter()
        .find(|(spelling, _)| *spelling == folded)?;
    written.insert(Written::Spelling);
    Some(Reading {
        value: *channel,
        written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(reading: Option<Reading<String>>) -> Option<(String, Vec<Written>)> {
        reading.map(|r| (r.value, r.written.into_iter().collect()))
    }

    #[test]
    fn roles_are_read_without_capitals_or_spaces() {
        let roles: BTreeSet<String> = ["leader", "women-leader"].map(String::from).into();
        assert_eq!(
            written(role("leader", &roles)),
            Some(("leader".into(), vec![]))
        );
        assert_eq!(
            written(role(" Leader ", &roles)),
            Some(("leader".into(), vec![Written::Capitals]))
        );
        assert_eq!(
            written(role("Women leader", &roles)),
            Some((
                "women-leader".into(),
                vec![Written::Capitals, Written::Spaces]
            ))
        );
        assert_eq!(role("Leadr", &roles), None);
    }

    #[test]
    fn languages_by_code_or_name() {
        for (text, code, how) in [
            ("fra", "fra", vec![]),
            ("FRA", "fra", vec![Written::Capitals]),
            ("Français", "fra", vec![Written::Name]),
            ("francais", "fra", vec![Written::Name]),
            ("French", "fra", vec![Written::Name]),
            ("Bambara", "bam", vec![Written::Name]),
            ("Fulfulde", "ffm", vec![Written::Name]),
            ("Peul", "ffm", vec![Written::Name]),
            ("bze", "bze", vec![]),
        ] {
            assert_eq!(
                written(language(text)),
                Some((code.to_owned(), how)),
                "{text}"
            );
        }
        for wrong in ["dogon", "", "françois", "frà"] {
            assert_eq!(language(wrong), None, "{wrong}");
        }
    }

    #[test]
    fn channels_in_their_usual_spellings() {
        for (text, channel, how) in [
            ("sms", Channel::Sms, vec![]),
            ("SMS", Channel::Sms, vec![Written::Capitals]),
            (
                "E-mail",
                Channel::Email,
                vec![Written::Capitals, Written::Spelling],
            ),
            ("email", Channel::Email, vec![]),
            ("courriel", Channel::Email, vec![Written::Spelling]),
            ("voice", Channel::Voice, vec![]),
            (
                "Appel",
                Channel::Voice,
                vec![Written::Capitals, Written::Spelling],
            ),
        ] {
            let reading = channel_of(text);
            assert_eq!(reading, Some((channel, how)), "{text}");
        }
        assert_eq!(channel_of("pigeon"), None);
    }

    fn channel_of(text: &str) -> Option<(Channel, Vec<Written>)> {
        channel(text).map(|r| (r.value, r.written.into_iter().collect()))
    }
}
