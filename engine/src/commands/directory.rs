//! The directory as the API changes it: one contact's details shown to an
//! administrator, recorded in the ledger first ([`Commands::record_contact_reveal`]),
//! and a file sent over the API (the dashboard's import form), read as `palabre contacts import` reads a file (CSV with `,`
//! `;` or tab, UTF-8 or Windows-1252, or a workbook), the good rows kept, each
//! bad row reported with its line and column, and a file that is no table
//! refused whole. Nothing in the report quotes a phone number or an email.

use std::path::Path;

use palabre_lang::contacts::{self, DirectoryRules};
use palabre_store::{LedgerEntry, LedgerEvent};
use serde::Serialize;

use super::{CommandError, Commands};

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct DirectoryImport {
    /// Contacts read from good rows.
    pub read: usize,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Rows with at least one error: not imported.
    pub rejected: usize,
    /// How the file was read, when it was read another way than it says.
    pub notes: Vec<String>,
    /// What is wrong with which row.
    pub problems: Vec<ImportProblem>,
}

/// One thing wrong in the file, where it is.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ImportProblem {
    pub line: usize,
    pub column: usize,
    /// `error` (the row is not imported) or `warning`.
    pub severity: String,
    pub message: String,
}

impl Commands {
    /// Records that contact `id`'s phone and email were shown, `how` and to
    /// whom (`shown through POST /contacts/c-1/reveal to …`); never the values.
    pub async fn record_contact_reveal(&self, id: &str, how: &str) -> Result<(), CommandError> {
        let entry = LedgerEntry::new(
            self.now(),
            LedgerEvent::Revealed,
            format!("contact {id}: phone and email, {how}"),
        )
        .recipient(id, None);
        self.store().append_ledger(&[entry]).await?;
        Ok(())
    }

    /// Imports the directory file `file_name` (its name tells a workbook from a
    /// CSV) holding `bytes`: new contacts added, known ones updated.
    pub async fn import_directory(
        &self,
        file_name: &str,
        bytes: &[u8],
    ) -> Result<DirectoryImport, CommandError> {
        let definitions = self.definitions();
        let rules = DirectoryRules {
            places: &definitions.places,
            roles: &definitions.roles,
        };
        let mut diagnostics = palabre_core::diagnostic::Diagnostics::default();
        let directory =
            match contacts::read_directory(Path::new(file_name), bytes, &rules, &mut diagnostics) {
                Ok(directory) => directory,
                Err(refused) => return CommandError::invalid(refused.to_string()),
            };
        let rejected = contacts::rejected_rows(&diagnostics);
        let summary = self.store().upsert_contacts(&directory.contacts).await?;
        self.wake();
        Ok(DirectoryImport {
            read: directory.contacts.len(),
            inserted: summary.inserted,
            updated: summary.updated,
            unchanged: summary.unchanged,
            rejected,
            notes: directory.notes.iter().map(ToString::to_string).collect(),
            problems: diagnostics
                .iter()
                .map(|d| ImportProblem {
                    line: d.position.line,
                    column: d.position.column,
                    severity: if d.is_error() { "error" } else { "warning" }.to_owned(),
                    message: d.message.clone(),
                })
                .collect(),
        })
    }
}
