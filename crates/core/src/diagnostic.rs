//! Diagnostics: a problem found in a user's file, with its position and a snippet.
//!
//! Everything that reads user input (workflows, places, templates, contact lists)
//! reports through [`Diagnostic`], so the CLI prints every problem the same way:
//! `FILE:LINE:COL: error: message`, then the offending source line with a caret
//! under the position, the way compilers do. Lines and columns are 1-based and
//! count characters, not bytes.

use std::fmt;
use std::path::{Path, PathBuf};

/// How serious a problem is. Errors make `palabre validate` fail; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A 1-based line and column, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The start of a file, for problems that concern a file as a whole.
    pub const START: Position = Position { line: 1, column: 1 };

    /// The position of the byte offset `offset` in `text` (clamped to its length).
    pub fn of_byte_offset(text: &[u8], offset: usize) -> Position {
        let before = &text[..offset.min(text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        Position { line, column }
    }
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub position: Position,
    /// How many characters the caret underlines (at least one).
    pub width: usize,
    pub severity: Severity,
    pub message: String,
    /// The source line the position points into, when it is known and printable.
    #[serde(skip)]
    pub source_line: Option<String>,
}

/// The longest source line a snippet shows; longer lines are cut around the caret.
const SNIPPET_MAX_CHARS: usize = 120;

impl Diagnostic {
    pub fn error(file: impl AsRef<Path>, position: Position, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.as_ref().to_path_buf(),
            position,
            width: 1,
            severity: Severity::Error,
            message: message.into(),
            source_line: None,
        }
    }

    pub fn warning(file: impl AsRef<Path>, position: Position, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, position, message)
        }
    }

    /// Underlines `width` characters instead of one.
    pub fn with_width(mut self, width: usize) -> Self {
        self.width = width.max(1);
        self
    }

    /// Attaches the source line the position points into, taken from `text`.
    pub fn with_source(mut self, text: &str) -> Self {
        self.source_line = text
            .lines()
            .nth(self.position.line.saturating_sub(1))
            .map(str::to_owned);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `FILE:LINE:COL: severity: message`, then a snippet when the source line is known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.position.line,
            self.position.column,
            self.severity,
            self.message
        )?;
        let Some(line) = &self.source_line else {
            return Ok(());
        };
        let chars: Vec<char> = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let caret_at = self.position.column.saturating_sub(1).min(chars.len());
        // Cut long lines to a window around the caret so a 5 MB line prints as one screen line.
        let start = caret_at.saturating_sub(SNIPPET_MAX_CHARS / 2);
        let end = (start + SNIPPET_MAX_CHARS).min(chars.len());
        let shown: String = chars[start..end].iter().collect();
        let gutter = self.position.line.to_string().len();
        let width = self.width.min(end.saturating_sub(caret_at)).max(1);
        let lead = if start > 0 { "…" } else { "" };
        write!(
            f,
            "\n{:gutter$} |\n{} | {lead}{shown}\n{:gutter$} | {}{}",
            "",
            self.position.line,
            "",
            " ".repeat(caret_at - start + lead.chars().count()),
            "^".repeat(width),
        )
    }
}

/// Diagnostics gathered over a whole run, so every problem is reported, not just the first.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The diagnostics in a stable order: by file, then position.
    pub fn sorted(mut self) -> Vec<Diagnostic> {
        self.items
            .sort_by(|a, b| (&a.file, a.position).cmp(&(&b.file, b.position)));
        self.items
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_position_and_caret_under_the_column() {
        let text = "id: x\nplace: mopti/korro\n";
        let d = Diagnostic::error("w.yaml", Position { line: 2, column: 8 }, "unknown place")
            .with_width(11)
            .with_source(text);
        assert_eq!(
            d.to_string(),
            "w.yaml:2:8: error: unknown place\n  |\n2 | place: mopti/korro\n  |        ^^^^^^^^^^^"
        );
    }

    #[test]
    fn cuts_a_huge_line_around_the_caret() {
        let line = "x".repeat(5_000_000);
        let d = Diagnostic::error(
            "big.yaml",
            Position {
                line: 1,
                column: 4_000_000,
            },
            "boom",
        )
        .with_source(&line);
        let rendered = d.to_string();
        assert!(rendered.len() < 400, "snippet was {} bytes", rendered.len());
        assert!(rendered.contains('^'));
    }

    #[test]
    fn byte_offset_maps_to_character_columns() {
        let text = "a: é\nbb: ɲ\n";
        let offset = text.find('ɲ').unwrap();
        assert_eq!(
            Position::of_byte_offset(text.as_bytes(), offset),
            Position { line: 2, column: 5 }
        );
    }
}
