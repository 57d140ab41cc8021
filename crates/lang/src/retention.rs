//! How long palabre keeps what can identify people, from `workflows/retention.yaml`
//! (every field optional; without the file, the defaults): the texts of messages
//! once sent or given up (they quote names: "Bonjour Awa Traoré"), the details of
//! ledger entries (the entry, its kind, time and ids stay, so counts stay), and
//! the descriptions of resolved cases. `palabre purge --expired`, and `serve`
//! once a day, remove what is older.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::yaml;
use palabre_core::diagnostic::Diagnostics;

/// `retention.yaml`: how many days each kind of text is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Days the text of a message is kept once sent or given up (at least 1).
    pub message_texts_days: u32,
    /// Days the detail of a ledger entry is kept (at least 1).
    pub ledger_details_days: u32,
    /// Days a resolved case keeps its description (at least 1).
    pub resolved_case_descriptions_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            message_texts_days: 90,
            ledger_details_days: 730,
            resolved_case_descriptions_days: 365,
        }
    }
}

impl Retention {
    /// Loads `file`; without it, the defaults. A zero is an error at its
    /// position (keeping nothing would lose the delivery record itself).
    pub fn load(file: &Path, diagnostics: &mut Diagnostics) -> Retention {
        if !file.exists() {
            return Retention::default();
        }
        let parsed = match yaml::parse_file::<Retention>(file) {
            Ok(parsed) => parsed,
            Err(d) => {
                diagnostics.push(*d);
                return Retention::default();
            }
        };
        let value = parsed.value;
        for (field, days) in [
            ("message_texts_days", value.message_texts_days),
            ("ledger_details_days", value.ledger_details_days),
            (
                "resolved_case_descriptions_days",
                value.resolved_case_descriptions_days,
            ),
        ] {
            if days == 0 {
                diagnostics.push(yaml::problem(
                    file,
                    &parsed.text,
                    parsed.map.value(field),
                    format!("{field} is 0: keep texts at least one day"),
                ));
            }
        }
        value
    }
}
