//! The contact directory: people, their roles, place, addresses, language and
//! channel preferences, and the CSV format coordinators import them from.
//!
//! Real contact lists never enter git; they are imported into the database with
//! `palabre contacts import`. A CSV row that is wrong is reported by its line and
//! skipped; the good rows are kept. Phone numbers are stored in E.164, validated
//! with libphonenumber's data (default region Mali).

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use serde::Serialize;

use crate::language::is_language_code;
use crate::places::{Places, is_slug};
use palabre_core::channel::Channel;
use palabre_core::diagnostic::{Diagnostic, Diagnostics, Position};

/// One person of the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    /// A place path from places.yaml.
    pub place: String,
    /// E.164, for example `+22376451234` (an invented number).
    pub phone: Option<String>,
    pub email: Option<String>,
    /// ISO 639-3 (`fra`, `bam`, `ffm`).
    pub language: String,
    /// Preferred channels, most preferred first.
    pub channels: Vec<Channel>,
}

impl Contact {
    /// The address this contact has on `channel`, if any.
    pub fn address(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Sms => self.phone.as_deref(),
            Channel::Email => self.email.as_deref(),
        }
    }
}

/// The columns of a directory CSV, in the order `contacts export` would write them.
pub const COLUMNS: [&str; 8] = [
    "id", "name", "roles", "place", "phone", "email", "language", "channels",
];

/// What the directory is checked against: the map and the known roles.
pub struct DirectoryRules<'a> {
    pub places: &'a Places,
    pub roles: &'a BTreeSet<String>,
}

/// Parses a phone number as written in Mali to E.164. For example (a fake number):
/// `76 45 12 34`, `0022376451234` and `+223 76 45 12 34` (doc example) give the same E.164.
pub fn normalize_phone(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text
        .strip_prefix("00")
        .map_or_else(|| text.to_owned(), |rest| format!("+{rest}"));
    let number = phonenumber::parse(Some(phonenumber::country::Id::ML), &text).ok()?;
    phonenumber::is_valid(&number)
        .then(|| number.format().mode(phonenumber::Mode::E164).to_string())
}

/// A deliberately modest email check: one `@`, something on both sides, a dot in the domain, no spaces.
pub fn is_plausible_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !text.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split([';', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads a directory CSV. Returns the good rows; every bad row becomes a diagnostic.
pub fn parse_csv(
    file: &Path,
    bytes: &[u8],
    rules: &DirectoryRules<'_>,
    diagnostics: &mut Diagnostics,
) -> Vec<Contact> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            diagnostics.push(Diagnostic::error(
                file,
                Position::START,
                format!("cannot read the header row: {e}"),
            ));
            return Vec::new();
        }
    };
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let mut index = [0usize; COLUMNS.len()];
    let mut missing = Vec::new();
    for (slot, name) in index.iter_mut().zip(COLUMNS) {
        match column(name) {
            Some(i) => *slot = i,
            None if matches!(name, "phone" | "email" | "channels") => *slot = usize::MAX,
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        diagnostics.push(Diagnostic::error(
            file,
            Position::START,
            format!(
                "missing column(s): {}; expected {}",
                missing.join(", "),
                COLUMNS.join(",")
            ),
        ));
        return Vec::new();
    }
    let [
        id_at,
        name_at,
        roles_at,
        place_at,
        phone_at,
        email_at,
        language_at,
        channels_at,
    ] = index;
    let mut contacts = Vec::new();
    let mut seen = HashSet::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e
                    .position()
                    .map_or(1, |p| usize::try_from(p.line()).unwrap_or(1));
                diagnostics.push(Diagnostic::error(
                    file,
                    Position { line, column: 1 },
                    format!("unreadable row: {e}"),
                ));
                continue;
            }
        };
        let line = record
            .position()
            .map_or(1, |p| usize::try_from(p.line()).unwrap_or(1));
        let field = |i: usize| record.get(i).unwrap_or("");
        let id = field(id_at).to_owned();
        let mut problems = Vec::new();
        if !is_slug(&id) {
            problems.push(format!(
                "id '{id}' must be lower-case letters, digits and dashes"
            ));
        } else if !seen.insert(id.clone()) {
            problems.push(format!("id '{id}' appears twice in this file"));
        }
        let name = field(name_at).to_owned();
        if name.is_empty() {
            problems.push("name is empty".to_owned());
        }
        let roles = split_list(field(roles_at));
        for role in &roles {
            if !rules.roles.contains(role) {
                problems.push(format!(
                    "unknown role '{role}'{}",
                    palabre_core::suggest::did_you_mean(
                        role,
                        rules.roles.iter().map(String::as_str)
                    )
                ));
            }
        }
        let place = field(place_at).to_owned();
        if rules.places.get(&place).is_none() {
            problems.push(rules.places.unknown_message(&place));
        }
        let phone = match field(phone_at) {
            "" => None,
            raw => {
                let normalized = normalize_phone(raw);
                if normalized.is_none() {
                    // The value itself is not echoed: it may be a real, if mistyped, number.
                    problems.push(
                        "phone is not a valid number (Mali numbers are +223 and 8 digits)"
                            .to_owned(),
                    );
                }
                normalized
            }
        };
        let email = match field(email_at) {
            "" => None,
            raw if is_plausible_email(raw) => Some(raw.to_owned()),
            _ => {
                problems.push("email is not a valid address".to_owned());
                None
            }
        };
        let language = field(language_at).to_ascii_lowercase();
        if !is_language_code(&language) {
            problems.push(format!(
                "language '{language}' is not an ISO 639-3 code (fra, bam, ffm, eng ...)"
            ));
        }
        let mut channels = Vec::new();
        for text in split_list(field(channels_at)) {
            match Channel::parse(&text.to_ascii_lowercase()) {
                Some(c) if !channels.contains(&c) => channels.push(c),
                Some(_) => {}
                None => problems.push(format!("unknown channel '{text}' (sms, email)")),
            }
        }
        if channels.is_empty() {
            channels = Channel::ALL.to_vec();
        }
        for channel in &channels {
            let has = match channel {
                Channel::Sms => phone.is_some(),
                Channel::Email => email.is_some(),
            };
            if !has && problems.is_empty() {
                diagnostics.push(Diagnostic::warning(
                    file,
                    Position { line, column: 1 },
                    format!("contact '{id}' prefers {channel} but has no address for it"),
                ));
            }
        }
        if phone.is_none() && email.is_none() && problems.is_empty() {
            problems.push("neither phone nor email: this contact cannot be reached".to_owned());
        }
        if problems.is_empty() {
            contacts.push(Contact {
                id,
                name,
                roles,
                place,
                phone,
                email,
                language,
                channels,
            });
        } else {
            for problem in problems {
                diagnostics.push(Diagnostic::error(
                    file,
                    Position { line, column: 1 },
                    format!("row '{id}': {problem}"),
                ));
            }
        }
    }
    contacts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_the_ways_people_write_mali_numbers() {
        // One fake number, written four ways.
        let fake = "+22376451234";
        for written in [
            "76 45 12 34",
            "+223 76 45 12 34", // fake
            "0022376451234",
            fake,
        ] {
            assert_eq!(normalize_phone(written).as_deref(), Some(fake), "{written}");
        }
        for wrong in ["7645123", "+223 12", "hello", ""] {
            assert_eq!(normalize_phone(wrong), None, "{wrong}");
        }
    }

    #[test]
    fn emails() {
        assert!(is_plausible_email("awa@example.org"));
        for wrong in [
            "awa",
            "@example.org",
            "awa@example",
            "a wa@example.org",
            "awa@.org",
        ] {
            assert!(!is_plausible_email(wrong), "{wrong}");
        }
    }
}
