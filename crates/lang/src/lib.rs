//! The workflow language: what coordinators and administrators write, read
//! safely and typed.
//!
//! [`yaml`] reads one file with positions ([`source_map`]) and turns every
//! mistake into a [`palabre_core::diagnostic::Diagnostic`]; one module per
//! workflow kind holds its model ([`meeting`], [`milestones`], [`escalation`]);
//! around them sit the shared files: [`places`], [`calendars`], [`contacts`] and
//! the files coordinators keep the directory in ([`table`], read as CSV or
//! workbook; [`directory_values`], the ways they write its words),
//! [`templates`] per language, [`reply_words`], and the time pieces
//! ([`recurrence`], [`occurrence`], [`ics`]). Nothing here touches a
//! database, runs a script or plans a timer: checks that need several files
//! together live in `palabre-plan`.

pub mod calendars;
pub mod calls;
pub mod contacts;
pub mod dates;
pub mod directory_values;
pub mod escalation;
pub mod files;
pub mod gsm;
pub mod ics;
pub mod language;
pub mod meeting;
pub mod milestones;
pub mod occurrence;
pub mod places;
pub mod recurrence;
pub mod reply_words;
pub mod retention;
pub mod source_map;
pub mod table;
pub mod templates;
pub mod voice;
pub mod yaml;

/// What the unit tests of several modules share.
#[cfg(test)]
mod test_support {
    use chrono::{DateTime, Utc};

    /// The instant an RFC 3339 text names.
    pub(crate) fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }
}
