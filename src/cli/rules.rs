//! `palabre rules`: which script answers a hook at a place (`explain`), and the
//! rule language reference (`docs`).

use std::fmt::Write as _;

use anyhow::bail;

use super::args::Sources;
use super::context::{RULE_EXTENSIONS, load_definitions};

pub fn explain(place: &str, hook: &str, sources: &Sources, out: &mut String) -> anyhow::Result<()> {
    let definitions = load_definitions(&sources.workflows)?;
    if definitions.places.get(place).is_none() {
        bail!("{}", definitions.places.unknown_message(place));
    }
    writeln!(out, "{}", definitions.rules.explain(place, hook))?;
    Ok(())
}

pub fn docs(out: &mut String) {
    out.push_str(&palabre_rules::reference(RULE_EXTENSIONS));
}
