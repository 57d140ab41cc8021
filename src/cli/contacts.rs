//! `palabre contacts import|list`: the contact directory in the database,
//! imported from a CSV (bad rows reported, exit code 1, the good ones kept) and
//! listed with phones and emails masked unless asked.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use palabre_core::diagnostic::Diagnostics;
use palabre_core::redact;
use palabre_lang::contacts;

use super::args::{Format, Sources};
use super::context::{
    load_definitions, open_store, parse_directory, print_table, read_file, report, required_store,
};

pub async fn import(file: &Path, sources: &Sources, out: &mut String) -> anyhow::Result<()> {
    let bytes = read_file(file)?;
    let definitions = load_definitions(&sources.workflows)?;
    let mut diagnostics = Diagnostics::default();
    let good = parse_directory(file, &bytes, &definitions, &mut diagnostics);
    let rejected = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.position.line)
        .collect::<BTreeSet<_>>()
        .len();
    let reported = report(diagnostics);
    let store = open_store(sources).await?;
    let summary = store.upsert_contacts(&good).await?;
    store.close().await;
    writeln!(
        out,
        "{} contact(s) read: {} new, {} updated, {} unchanged; {} row(s) rejected",
        good.len(),
        summary.inserted,
        summary.updated,
        summary.unchanged,
        rejected
    )?;
    Ok(reported?)
}

pub async fn list(
    reveal: bool,
    format: Format,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let store = required_store(
        sources,
        "no contact imported yet (`palabre contacts import FILE` creates it)",
    )
    .await?;
    let mut directory = store.contacts().await?;
    store.close().await;
    if !reveal {
        for contact in &mut directory {
            contact.phone = contact.phone.as_deref().map(redact::phone);
            contact.email = contact.email.as_deref().map(redact::email);
        }
    }
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&directory)?)?,
        Format::Table => {
            let rows = directory.iter().map(|c| {
                vec![
                    c.id.clone(),
                    c.name.clone(),
                    c.roles.join(";"),
                    c.place.clone(),
                    c.phone.clone().unwrap_or_default(),
                    c.email.clone().unwrap_or_default(),
                    c.language.clone(),
                    c.channels
                        .iter()
                        .map(|ch| ch.as_str())
                        .collect::<Vec<_>>()
                        .join(";"),
                ]
            });
            print_table(out, &contacts::COLUMNS, rows);
            writeln!(out, "{} contact(s)", directory.len())?;
        }
    }
    Ok(())
}
