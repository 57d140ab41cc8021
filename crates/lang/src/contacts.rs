//! The contact directory: people, their roles, place, addresses, language and
//! channel preferences, and the table coordinators import them from.
//!
//! Real contact lists never enter git; they are imported into the database with
//! `palabre contacts import`, from a CSV or a workbook as Excel saves them
//! ([`crate::table`] reads either into the same rows, which one validation
//! checks). A row that is wrong is reported by its line (its row number in a
//! workbook) and skipped; the good rows are kept. Roles, places, languages and
//! channels written in capitals, with accents or by name are read in the form
//! palabre keeps ([`crate::directory_values`]), and the import says so in
//! [`Note`]s. Phone numbers are stored in E.164, validated with
//! libphonenumber's data (default region Mali).

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::directory_values::{self, Reading, Written};
use crate::places::{Places, is_slug};
use crate::table::{self, Source, Table, TableError, TextEncoding};
use palabre_core::channel::Channel;
use palabre_core::diagnostic::{Diagnostic, Diagnostics, Position};

/// One person of the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Contact {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    /// A place path from places.yaml.
    pub place: String,
    /// E.164: `+223` and the 8 digits, for a Mali number.
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
            Channel::Sms | Channel::Voice => self.phone.as_deref(),
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

/// Parses a phone number as written in Mali to E.164: the 8 digits with or
/// without spaces, after `00223`, `+223` or nothing, give the same number (the
/// cases are in `tests/data/phones.txt`).
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

/// A directory file read: the good rows, and what the coordinator should know
/// about how it was read (none of it an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    pub contacts: Vec<Contact>,
    pub notes: Vec<Note>,
}

/// Something the import read differently from how it is written, said once
/// per file or per column. Notes never quote a phone number or an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A CSV that was not in UTF-8.
    ReadAs(TextEncoding),
    /// A workbook with several sheets, of which this one was read.
    Sheet { name: String, sheets: usize },
    /// Values of a column read in the form palabre keeps.
    Normalized(Normalized),
}

/// The values of one column read in the form palabre keeps: how many, how
/// they were written, and the first of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// `role`, `place`, `language` or `channel`.
    pub column: &'static str,
    pub count: usize,
    pub written: BTreeSet<Written>,
    /// The first value read another way, as written and as read.
    pub example: (String, String),
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::ReadAs(encoding) => write!(f, "read as {encoding}"),
            Note::Sheet { name, sheets } => {
                write!(
                    f,
                    "read the first sheet, '{name}' (the workbook has {sheets})"
                )
            }
            Note::Normalized(n) => {
                // `in capitals, with accents or with spaces`.
                let mut how = n
                    .written
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>();
                let last = how.pop().unwrap_or_default();
                let how = if how.is_empty() {
                    last
                } else {
                    format!("{} or {last}", how.join(", "))
                };
                let values = if n.count == 1 { "value" } else { "values" };
                write!(
                    f,
                    "{}: {} {values} written {how}, e.g. '{}' read as '{}'",
                    n.column, n.count, n.example.0, n.example.1
                )
            }
        }
    }
}

/// The per-column tallies of values read another way, in column order.
#[derive(Default)]
struct Tally {
    columns: Vec<Normalized>,
}

impl Tally {
    fn add<T: fmt::Display>(&mut self, column: &'static str, text: &str, reading: &Reading<T>) {
        if reading.written.is_empty() {
            return;
        }
        match self.columns.iter_mut().find(|n| n.column == column) {
            Some(n) => {
                n.count += 1;
                n.written.extend(reading.written.iter().copied());
            }
            None => self.columns.push(Normalized {
                column,
                count: 1,
                written: reading.written.clone(),
                example: (text.trim().to_owned(), reading.value.to_string()),
            }),
        }
    }

    fn notes(mut self) -> impl Iterator<Item = Note> {
        let order = ["role", "place", "language", "channel"];
        self.columns
            .sort_by_key(|n| order.iter().position(|c| *c == n.column));
        self.columns.into_iter().map(Note::Normalized)
    }
}

/// Reads a directory file as coordinators have it (a CSV in UTF-8,
/// Windows-1252 or UTF-16, separated by `,`, `;` or tabs; or a workbook: see
/// [`crate::table`]). Every bad row becomes a diagnostic at its line (its row
/// number in a workbook) and is skipped; a file that is no table at all is an
/// error.
/// How many rows of a directory file `diagnostics` (of [`read_directory`])
/// refuse: the lines with at least one error.
pub fn rejected_rows(diagnostics: &Diagnostics) -> usize {
    diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.position.line)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

pub fn read_directory(
    file: &Path,
    bytes: &[u8],
    rules: &DirectoryRules<'_>,
    diagnostics: &mut Diagnostics,
) -> Result<Directory, TableError> {
    let table = table::read(bytes, &COLUMNS)?;
    let mut notes = Vec::new();
    match &table.source {
        Source::Csv { encoding, .. } if *encoding != TextEncoding::Utf8 => {
            notes.push(Note::ReadAs(*encoding));
        }
        Source::Spreadsheet { sheet, sheets } if *sheets > 1 => notes.push(Note::Sheet {
            name: sheet.clone(),
            sheets: *sheets,
        }),
        _ => {}
    }
    let (contacts, tally) = validate(file, &table, rules, diagnostics);
    notes.extend(tally.notes());
    Ok(Directory { contacts, notes })
}

/// [`read_directory`] for callers that need only the contacts: a file that is
/// no table at all becomes one diagnostic at its start.
pub fn parse_csv(
    file: &Path,
    bytes: &[u8],
    rules: &DirectoryRules<'_>,
    diagnostics: &mut Diagnostics,
) -> Vec<Contact> {
    match read_directory(file, bytes, rules, diagnostics) {
        Ok(directory) => directory.contacts,
        Err(e) => {
            diagnostics.push(Diagnostic::error(file, Position::START, e.to_string()));
            Vec::new()
        }
    }
}

/// The one validation of directory rows, whatever file they came from.
fn validate(
    file: &Path,
    table: &Table,
    rules: &DirectoryRules<'_>,
    diagnostics: &mut Diagnostics,
) -> (Vec<Contact>, Tally) {
    let mut tally = Tally::default();
    let column = |name: &str| {
        table
            .headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
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
        return (Vec::new(), tally);
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
    for row in &table.rows {
        let row = match row {
            Ok(row) => row,
            Err(unreadable) => {
                diagnostics.push(Diagnostic::error(
                    file,
                    Position {
                        line: unreadable.line,
                        column: 1,
                    },
                    format!("unreadable row: {}", unreadable.message),
                ));
                continue;
            }
        };
        // Spreadsheets and CSVs saved from them end with rows of empty cells.
        if row.cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let line = row.line;
        let field = |i: usize| row.cells.get(i).map_or("", |c| c.trim());
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
        let mut roles = Vec::new();
        for text in split_list(field(roles_at)) {
            match directory_values::role(&text, rules.roles) {
                Some(reading) => {
                    tally.add("role", &text, &reading);
                    if !roles.contains(&reading.value) {
                        roles.push(reading.value);
                    }
                }
                None => problems.push(format!(
                    "unknown role '{text}'{}",
                    palabre_core::suggest::did_you_mean(
                        &text.to_lowercase(),
                        rules.roles.iter().map(String::as_str)
                    )
                )),
            }
        }
        let written_place = field(place_at);
        let place = match directory_values::place(written_place, rules.places) {
            Some(reading) => {
                tally.add("place", written_place, &reading);
                reading.value
            }
            None => {
                problems.push(rules.places.unknown_message(written_place));
                written_place.to_owned()
            }
        };
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
        let written_language = field(language_at);
        let language = match directory_values::language(written_language) {
            Some(reading) => {
                tally.add("language", written_language, &reading);
                reading.value
            }
            None => {
                problems.push(format!(
                    "language '{written_language}' is not an ISO 639-3 code (fra, bam, ffm, eng ...)"
                ));
                written_language.to_owned()
            }
        };
        let mut channels = Vec::new();
        for text in split_list(field(channels_at)) {
            match directory_values::channel(&text) {
                Some(reading) => {
                    tally.add("channel", &text, &reading);
                    if !channels.contains(&reading.value) {
                        channels.push(reading.value);
                    }
                }
                None => problems.push(format!("unknown channel '{text}' (sms, email, voice)")),
            }
        }
        if channels.is_empty() {
            // Calls are made only to those who asked for them.
            channels = vec![Channel::Sms, Channel::Email];
        }
        for channel in &channels {
            let has = match channel {
                Channel::Sms | Channel::Voice => phone.is_some(),
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
    (contacts, tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases of `tests/data/phones.txt`: invented numbers as people write
    /// them, and what is kept.
    #[test]
    fn normalizes_the_ways_people_write_mali_numbers() {
        let cases = include_str!("../../../tests/data/phones.txt");
        let mut checked = 0;
        for line in cases.lines().filter(|l| !l.starts_with('#')) {
            let (written, kept) = line.split_once(" => ").unwrap();
            let kept = (kept != "none").then_some(kept);
            assert_eq!(normalize_phone(written).as_deref(), kept, "{line}");
            checked += 1;
        }
        assert_eq!(checked, 10);
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

    /// The map and roles the directory tests check against.
    struct World {
        _dir: tempfile::TempDir,
        places: Places,
        roles: BTreeSet<String>,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("places.yaml");
        std::fs::write(
            &file,
            "version: \"2023\"\nregions:\n  - id: mopti\n    name: Mopti\n    cercles:\n      \
             - id: koro\n        name: Koro\n        communes:\n          - { id: koro, name: Koro }\n      \
             - id: djenne\n        name: Djenné\n        communes:\n          - { id: djenne, name: Djenné }\n",
        )
        .unwrap();
        let mut diagnostics = Diagnostics::default();
        let places = Places::load(&file, &mut diagnostics);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let roles = ["leader", "women-leader", "mayor"].map(String::from).into();
        World {
            _dir: dir,
            places,
            roles,
        }
    }

    fn read(world: &World, file: &str, bytes: &[u8]) -> (Directory, Diagnostics) {
        let rules = DirectoryRules {
            places: &world.places,
            roles: &world.roles,
        };
        let mut diagnostics = Diagnostics::default();
        let directory = read_directory(Path::new(file), bytes, &rules, &mut diagnostics).unwrap();
        (directory, diagnostics)
    }

    /// Invented people and numbers, as French Excel would save them.
    const FRENCH_EXCEL: &str = include_str!("../../../tests/data/directory/french-excel.csv");

    #[test]
    fn a_semicolon_windows_1252_csv_reads_every_row_with_its_accents() {
        let world = world();
        let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(FRENCH_EXCEL);
        assert!(!unmappable);
        let (directory, diagnostics) = read(&world, "annuaire.csv", &bytes);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let names: Vec<&str> = directory.contacts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["Fatoumata Koné", "Aïssata Cissé", "Hamadoun Dicko, fils"]
        );
        assert_eq!(
            directory.contacts[1].channels,
            [Channel::Sms, Channel::Email]
        );
        assert_eq!(directory.notes, [Note::ReadAs(TextEncoding::Windows1252)]);
        assert_eq!(
            directory.notes[0].to_string(),
            "read as Windows-1252 (Excel's French default)"
        );
        // The same file in UTF-8 with a byte-order mark reads the same, without a note.
        let mut utf8 = b"\xEF\xBB\xBF".to_vec();
        utf8.extend(FRENCH_EXCEL.as_bytes());
        let (same, _) = read(&world, "annuaire.csv", &utf8);
        assert_eq!(same.contacts, directory.contacts);
        assert!(same.notes.is_empty(), "{:?}", same.notes);
    }

    #[test]
    fn an_xlsx_gives_the_contacts_its_csv_gives_and_excel_row_numbers() {
        let world = world();
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (r, line) in FRENCH_EXCEL.lines().enumerate() {
            let r = u32::try_from(r).unwrap();
            for (c, cell) in line.split(';').enumerate() {
                let c = u16::try_from(c).unwrap();
                if !cell.is_empty() {
                    sheet.write_string(r, c, cell).unwrap();
                }
            }
        }
        // A phone typed without spaces is a number to Excel; a bad row at
        // row 6, after an empty one.
        sheet.write_string(5, 0, "c-4").unwrap();
        sheet.write_string(5, 1, "Oumou Sangaré").unwrap();
        sheet.write_string(5, 2, "leader").unwrap();
        sheet.write_string(5, 3, "mopti/koro/korro").unwrap();
        sheet.write_number(5, 4, 70_000_004).unwrap();
        sheet.write_string(5, 6, "bam").unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let (from_xlsx, diagnostics) = read(&world, "annuaire.xlsx", &bytes);
        let (from_csv, _) = read(&world, "annuaire.csv", FRENCH_EXCEL.as_bytes());
        assert_eq!(from_xlsx.contacts, from_csv.contacts);
        assert!(from_xlsx.notes.is_empty(), "{:?}", from_xlsx.notes);
        let errors: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "annuaire.xlsx:6:1: error: row 'c-4': unknown place 'mopti/koro/korro'"
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn values_written_by_hand_are_kept_normalized_and_said_per_column() {
        let world = world();
        // Invented people and numbers, written as people write them.
        let csv = include_str!("../../../tests/data/directory/written-by-hand.csv");
        let (directory, diagnostics) = read(&world, "d.csv", csv.as_bytes());
        let contacts = &directory.contacts;
        assert_eq!(contacts.len(), 3);
        assert_eq!(contacts[0].roles, ["leader"]);
        assert_eq!(contacts[0].place, "mopti/koro/koro");
        assert_eq!(contacts[0].language, "fra");
        assert_eq!(contacts[0].channels, [Channel::Sms]);
        assert_eq!(contacts[1].roles, ["leader", "women-leader"]);
        assert_eq!(contacts[1].place, "mopti/djenne/djenne");
        assert_eq!(contacts[1].language, "fra");
        assert_eq!(contacts[1].channels, [Channel::Email, Channel::Sms]);
        assert_eq!(contacts[2].language, "ffm");
        let notes: Vec<String> = directory.notes.iter().map(ToString::to_string).collect();
        assert_eq!(
            notes,
            [
                "role: 3 values written in capitals or with spaces, e.g. 'Leader' read as 'leader'",
                "place: 2 values written in capitals, with accents or with spaces, \
                 e.g. 'Mopti/Koro/Koro' read as 'mopti/koro/koro'",
                "language: 3 values written in capitals or as a name rather than a code, \
                 e.g. 'FRA' read as 'fra'",
                "channel: 2 values written in capitals or in another spelling, \
                 e.g. 'SMS' read as 'sms'",
            ]
        );
        // What cannot be read stays an error, as written.
        let errors: Vec<String> = diagnostics.iter().map(|d| d.message.clone()).collect();
        for expected in [
            "row 'c-4': unknown role 'Leadr' (did you mean 'leader'?)",
            "row 'c-4': unknown place 'Mopti/Korro'",
            "row 'c-4': language 'Dogon' is not an ISO 639-3 code",
            "row 'c-4': unknown channel 'pigeon'",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(expected)),
                "missing {expected:?} in {errors:?}"
            );
        }
    }

    #[test]
    fn a_file_that_is_no_table_is_refused_with_how_to_save_it() {
        let world = world();
        let rules = DirectoryRules {
            places: &world.places,
            roles: &world.roles,
        };
        let pdf = b"%PDF-1.4\n%\xC7\xEC\x8F\xA2\n5 0 obj\n<</Length 6 0 R>>\nstream\n";
        let mut diagnostics = Diagnostics::default();
        let refused = read_directory(Path::new("annuaire.pdf"), pdf, &rules, &mut diagnostics)
            .unwrap_err()
            .to_string();
        assert_eq!(
            refused,
            "this file looks like a PDF document, not a table of contacts: \
             save it from Excel as 'CSV UTF-8 (délimité par des virgules)' or as .xlsx"
        );
        // The callers that only want contacts get it as one error.
        let contacts = parse_csv(Path::new("annuaire.pdf"), pdf, &rules, &mut diagnostics);
        assert!(contacts.is_empty());
        assert_eq!(diagnostics.error_count(), 1);
    }
}
