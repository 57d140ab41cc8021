//! Reading one YAML file into a typed value, safely, with positioned errors.
//!
//! Every user-written YAML file goes through [`parse_file`]: a size cap, a UTF-8
//! check that names the first bad byte's position, serde-saphyr with duplicate
//! keys refused and its alias/depth budget on (so YAML bombs and deep nesting
//! end with an error, not a hang), and a [`SourceMap`] for the checks that run
//! after parsing.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::source_map::SourceMap;
use palabre_core::diagnostic::{Diagnostic, Position};

/// Definitions are small; anything larger is a mistake (or an attack) and is refused unread.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// A parsed file: its text, its typed value and where each value stands.
#[derive(Debug)]
pub struct Parsed<T> {
    pub value: T,
    pub text: String,
    pub map: SourceMap,
}

/// A located problem in `file`, with its source line.
pub fn problem(
    file: &Path,
    text: &str,
    at: crate::source_map::Located,
    message: impl Into<String>,
) -> Diagnostic {
    Diagnostic::error(file, at.position, message)
        .with_width(at.width)
        .with_source(text)
}

/// Checks size and encoding of raw bytes and returns the text.
pub fn decode(file: &Path, bytes: Vec<u8>) -> Result<String, Box<Diagnostic>> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Box::new(Diagnostic::error(
            file,
            Position::START,
            format!(
                "file is {} bytes; definition files are limited to {} bytes",
                bytes.len(),
                MAX_FILE_BYTES
            ),
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let bytes = e.into_bytes();
        Box::new(Diagnostic::error(
            file,
            Position::of_byte_offset(&bytes, offset),
            "file is not valid UTF-8 text (save it as UTF-8)",
        ))
    })
}

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: 64,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_nodes: 200_000,
            max_documents: 1,
        },
    }
}

/// Parses `text` (already decoded) as one `T`.
pub fn parse_text<T: DeserializeOwned>(
    file: &Path,
    text: String,
) -> Result<Parsed<T>, Box<Diagnostic>> {
    match serde_saphyr::from_str_with_options::<T>(&text, options()) {
        Ok(value) => {
            let map = SourceMap::index(&text);
            Ok(Parsed { value, text, map })
        }
        Err(error) => {
            let position = error
                .location()
                .filter(|l| l.line() > 0)
                .map_or(Position::START, |l| Position {
                    line: usize::try_from(l.line()).unwrap_or(usize::MAX),
                    column: usize::try_from(l.column()).unwrap_or(1).max(1),
                });
            let message = error.render_with_options(serde_saphyr::render_options! {
                snippets: serde_saphyr::SnippetMode::Off,
            });
            let width = token_width(&text, position);
            Err(Box::new(
                Diagnostic::error(file, position, clean_message(&message))
                    .with_width(width)
                    .with_source(&text),
            ))
        }
    }
}

/// Reads and parses a file; I/O problems are diagnostics too.
pub fn parse_file<T: DeserializeOwned>(file: &Path) -> Result<Parsed<T>, Box<Diagnostic>> {
    let bytes = std::fs::read(file).map_err(|e| {
        Box::new(Diagnostic::error(
            file,
            Position::START,
            format!("cannot read file: {e}"),
        ))
    })?;
    parse_text(file, decode(file, bytes)?)
}

/// serde-saphyr appends " at line X column Y" to its messages (we print positions
/// ourselves) and speaks to Rust programmers about duplicate keys.
fn clean_message(message: &str) -> String {
    let first_line = message.lines().next().unwrap_or(message);
    let message = match first_line.find(" at line ") {
        Some(cut) => &first_line[..cut],
        None => first_line,
    };
    match message {
        "expected sequence start" => {
            return "expected a list here (`- item` lines or `[a, b]`)".to_owned();
        }
        "expected mapping start" => {
            return "expected a mapping here (`key: value` lines)".to_owned();
        }
        _ => {}
    }
    // `title: Réunion: budget` reads as a key inside a value: the fix is quotes.
    if message.contains("mapping values are not allowed") {
        return format!(
            "{message}: if a value contains ': ', put it in quotes, like title: \"Réunion: budget\""
        );
    }
    if let Some(limit) = message.strip_prefix("budget breached: ") {
        return format!(
            "document too large or too deeply nested once anchors and aliases are expanded ({limit}); definition files must stay small"
        );
    }
    match message.strip_prefix("duplicate mapping key: ") {
        Some(rest) => {
            let key = rest
                .split(", set DuplicateKeyPolicy")
                .next()
                .unwrap_or(rest);
            format!("duplicate key '{key}': each key may appear once")
        }
        None => message.to_owned(),
    }
}

/// How many characters the word at `position` covers, to underline it whole.
fn token_width(text: &str, position: Position) -> usize {
    text.lines()
        .nth(position.line.saturating_sub(1))
        .map(|line| {
            line.chars()
                .skip(position.column.saturating_sub(1))
                .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']' | '}' | ':'))
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meeting::MeetingWorkflow;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the text, parsing ends with a value or a diagnostic, never a panic.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            let _ = parse_text::<MeetingWorkflow>(Path::new("x.yaml"), text.clone());
            let _ = SourceMap::index(&text);
        }

        /// The same for YAML-ish text built from YAML's own punctuation.
        #[test]
        fn yaml_punctuation_never_panics(text in "[-:?&*!|>'\"%@`#,\\[\\]{} \\n\\ta-z0-9]{0,300}") {
            let _ = parse_text::<MeetingWorkflow>(Path::new("x.yaml"), text.clone());
            let _ = SourceMap::index(&text);
        }
    }

    #[test]
    fn a_colon_in_a_value_comes_with_the_advice_to_quote_it() {
        let text = "kind: meeting\ntitle: Réunion: budget\n".to_owned();
        let d = parse_text::<MeetingWorkflow>(Path::new("x.yaml"), text).unwrap_err();
        assert_eq!(
            d.message,
            "mapping values are not allowed in this context: if a value contains ': ', put it in quotes, like title: \"Réunion: budget\""
        );
        assert_eq!(
            d.position,
            Position {
                line: 2,
                column: 15
            }
        );
    }

    #[test]
    fn a_file_over_the_limit_is_refused_unread() {
        let big = vec![b'a'; MAX_FILE_BYTES + 1];
        let d = decode(Path::new("big.yaml"), big).unwrap_err();
        assert!(d.message.contains("limited to"), "{}", d.message);
        assert_eq!(d.position, Position::START);
    }
}
