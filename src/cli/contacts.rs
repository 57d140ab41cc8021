//! `palabre contacts import|list|remove|deactivate|activate`: the contact
//! directory in the database, imported from a CSV or a workbook as Excel saves
//! them (how the file was read and the values read another way said as notes;
//! bad rows reported, exit code 1, the good ones kept; a file that is no table
//! refused whole), or synced with it (`--sync`: the file is the whole
//! directory, the missing contacts deactivated after confirmation); listed with
//! phones and emails masked unless asked, inactive contacts and SMS opt-outs
//! marked; a contact removed, or deactivated (kept for the record, sent
//! nothing), and activated again.

use std::fmt::Write as _;
use std::io::{BufRead as _, IsTerminal as _};
use std::path::Path;

use anyhow::bail;
use palabre_core::diagnostic::{Diagnostic, Diagnostics, Position};
use palabre_core::redact;
use palabre_lang::contacts::{self, Contact, DirectoryRules};
use palabre_store::Store;

use super::args::{Format, Sources};
use super::context::{
    Invalid, load_definitions, open_store, print_table, read_file, report, required_store,
};

pub async fn import(
    file: &Path,
    sync: bool,
    yes: bool,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let bytes = read_file(file)?;
    let definitions = load_definitions(&sources.workflows)?;
    let mut diagnostics = Diagnostics::default();
    let rules = DirectoryRules {
        places: &definitions.places,
        roles: &definitions.roles,
    };
    let good = match contacts::read_directory(file, &bytes, &rules, &mut diagnostics) {
        Ok(directory) => {
            // How the file was read, before what is wrong in it; never an address.
            for note in &directory.notes {
                eprintln!("{}: note: {note}", file.display());
            }
            directory.contacts
        }
        Err(refused) => {
            // Not a table at all: nothing to import, and no database to open.
            diagnostics.push(Diagnostic::error(
                file,
                Position::START,
                refused.to_string(),
            ));
            report(diagnostics)?;
            return Err(Invalid.into());
        }
    };
    let rejected = contacts::rejected_rows(&diagnostics);
    let reported = report(diagnostics);
    if sync {
        if rejected > 0 {
            eprintln!(
                "error: {rejected} row(s) rejected: nothing imported, since with --sync \
                 the contacts of rejected rows would be deactivated; fix them first"
            );
            return Err(Invalid.into());
        }
        return import_sync(&good, yes, sources, out).await;
    }
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

/// `import --sync`: says what would be deactivated (and reactivated), asks for
/// confirmation unless `yes`, then syncs in one transaction.
async fn import_sync(
    good: &[Contact],
    yes: bool,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let store = open_store(sources).await?;
    let result = sync(&store, good, yes, out).await;
    store.close().await;
    result
}

async fn sync(store: &Store, good: &[Contact], yes: bool, out: &mut String) -> anyhow::Result<()> {
    let preview = store.sync_preview(good).await?;
    let (deactivate, reactivate) = (preview.deactivate.len(), preview.reactivate.len());
    eprintln!(
        "{deactivate} contact(s) missing from the file would be deactivated, \
         {reactivate} reactivated"
    );
    if deactivate > 0 && !yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            bail!(
                "not deactivating {deactivate} contact(s) without confirmation: \
                 no terminal to ask on; run again with --yes to confirm"
            );
        }
        eprint!("type yes to go on: ");
        let mut answer = String::new();
        stdin.lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            bail!("not confirmed: nothing changed");
        }
    }
    let summary = store.sync_contacts(good).await?;
    writeln!(
        out,
        "{} contact(s) read: {} new, {} updated, {} unchanged; {} deactivated, {} reactivated",
        good.len(),
        summary.import.inserted,
        summary.import.updated,
        summary.import.unchanged,
        summary.deactivated,
        summary.reactivated,
    )?;
    Ok(())
}

/// `contacts remove ID`.
pub async fn remove(id: &str, sources: &Sources, out: &mut String) -> anyhow::Result<()> {
    let store = required_store(sources, "no contact imported yet").await?;
    let removed = store.remove_contact(id).await;
    store.close().await;
    if !removed? {
        return no_such_contact(id);
    }
    writeln!(
        out,
        "{id} removed from the directory; messages queued for them will not be delivered"
    )?;
    Ok(())
}

/// `contacts deactivate ID` (`active` false) and `contacts activate ID`.
pub async fn set_active(
    id: &str,
    active: bool,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let store = required_store(sources, "no contact imported yet").await?;
    let changed = store.set_contact_active(id, active).await;
    store.close().await;
    let Some(changed) = changed? else {
        return no_such_contact(id);
    };
    let line = match (active, changed) {
        (false, true) => "deactivated: kept for the record, sent nothing more",
        (false, false) => "already inactive",
        (true, true) => "activated: reached again",
        (true, false) => "already active",
    };
    writeln!(out, "{id} {line}")?;
    Ok(())
}

fn no_such_contact(id: &str) -> anyhow::Result<()> {
    eprintln!("error: there is no contact '{id}' in the directory");
    Err(Invalid.into())
}

/// One contact as listed: the directory's columns, then its state.
struct Listed {
    contact: Contact,
    /// False for a deactivated contact, kept for the record.
    active: bool,
    /// Whether they opted out of SMS (STOP).
    sms_stopped: bool,
}

/// The `revealed` ledger entry of `contacts list --reveal` showing `count`
/// contacts to `operator`: what was shown, never a phone or an email.
fn revealed(count: usize, operator: &str) -> palabre_store::LedgerEntry {
    use palabre_core::clock::Clock as _;
    palabre_store::LedgerEntry::new(
        palabre_core::clock::SystemClock.now(),
        palabre_store::LedgerEvent::Revealed,
        format!(
            "contacts list: {count} contacts' phones and emails, shown by \
             `palabre contacts list --reveal` to {operator}"
        ),
    )
}

pub async fn list(
    reveal: bool,
    format: Format,
    operator: &str,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let store = required_store(
        sources,
        "no contact imported yet (`palabre contacts import FILE` creates it)",
    )
    .await?;
    let read = async {
        let entries = store.directory().await?;
        if reveal {
            // Accounted for before anything is shown: who, and how many; never a value.
            store
                .append_ledger(&[revealed(entries.len(), operator)])
                .await?;
        }
        Ok::<_, palabre_store::StoreError>((entries, store.sms_stopped().await?))
    }
    .await;
    store.close().await;
    let (entries, stopped) = read?;
    let mut directory: Vec<Listed> = entries
        .into_iter()
        .map(|entry| Listed {
            sms_stopped: stopped.contains(&entry.contact.id),
            active: entry.active,
            contact: entry.contact,
        })
        .collect();
    if !reveal {
        for listed in &mut directory {
            let contact = &mut listed.contact;
            contact.phone = contact.phone.as_deref().map(redact::phone);
            contact.email = contact.email.as_deref().map(redact::email);
        }
    }
    match format {
        Format::Json => {
            let json = directory
                .iter()
                .map(|listed| {
                    let mut value = serde_json::to_value(&listed.contact)?;
                    if let Some(fields) = value.as_object_mut() {
                        fields.insert("active".into(), listed.active.into());
                        fields.insert("sms_stopped".into(), listed.sms_stopped.into());
                    }
                    Ok(value)
                })
                .collect::<Result<Vec<_>, serde_json::Error>>()?;
            writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        }
        Format::Table => {
            let rows = directory.iter().map(|listed| {
                let c = &listed.contact;
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
                    if listed.sms_stopped { "stopped" } else { "" }.to_owned(),
                    if listed.active { "" } else { "inactive" }.to_owned(),
                ]
            });
            let mut headers = contacts::COLUMNS.to_vec();
            headers.extend(["sms", "state"]);
            print_table(out, &headers, rows);
            let inactive = directory.iter().filter(|l| !l.active).count();
            writeln!(out, "{} contact(s), {inactive} inactive", directory.len())?;
        }
    }
    Ok(())
}

/// `contacts erase` and `contacts export`: one person's data, as `operator`.
pub async fn personal_data(
    command: super::args::ContactsCommand,
    operator: &str,
    out: &mut String,
) -> anyhow::Result<()> {
    use super::args::ContactsCommand;
    match command {
        ContactsCommand::Erase {
            id,
            reason,
            yes,
            sources,
        } => erase(&id, &reason, yes, operator, &sources, out).await,
        ContactsCommand::Export { id, sources } => export(&id, operator, &sources, out).await,
        _ => bail!("not a command on one person's data"),
    }
}

/// The longest reason `contacts erase` takes.
const MAX_ERASE_REASON: usize = 300;

/// `contacts erase ID --reason TEXT [--yes]`: says what will go, asks for
/// confirmation unless `yes`, then erases in one transaction.
async fn erase(
    id: &str,
    reason: &str,
    yes: bool,
    operator: &str,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_ERASE_REASON {
        eprintln!(
            "error: --reason must say why, in 1 to {MAX_ERASE_REASON} characters \
             (it has {})",
            reason.chars().count()
        );
        return Err(Invalid.into());
    }
    if reason.chars().any(char::is_control) {
        eprintln!("error: --reason must be one line of text, without control characters");
        return Err(Invalid.into());
    }
    let store = required_store(sources, "no contact imported yet").await?;
    let result = erase_in(&store, id, reason, yes, operator, out).await;
    store.close().await;
    result
}

async fn erase_in(
    store: &Store,
    id: &str,
    reason: &str,
    yes: bool,
    operator: &str,
    out: &mut String,
) -> anyhow::Result<()> {
    if store.contact(id).await?.is_none() {
        return no_such_contact(id);
    }
    eprintln!(
        "{id} will be erased: their name, phone and email destroyed everywhere, their id \
         replaced by a pseudonym, their queued messages dropped; this cannot be undone"
    );
    if !yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            bail!(
                "not erasing {id} without confirmation: no terminal to ask on; \
                 run again with --yes to confirm"
            );
        }
        eprint!("type yes to go on: ");
        let mut answer = String::new();
        stdin.lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            bail!("not confirmed: nothing changed");
        }
    }
    use palabre_core::clock::Clock as _;
    let erasure = palabre_store::erasure::Erasure {
        id,
        reason,
        operator,
        random: super::context::pseudonyms()?(),
        now: palabre_core::clock::SystemClock.now(),
    };
    let Some(done) = store.erase_contact(&erasure).await? else {
        return no_such_contact(id);
    };
    writeln!(
        out,
        "{id} erased: now {}; {} answer(s), {} message(s) and {} ledger entry(ies) kept \
         under the pseudonym, {} queued message(s) dropped, {} case(s)",
        done.pseudonym,
        done.responses,
        done.messages_kept,
        done.ledger_entries,
        done.messages_dropped,
        done.cases,
    )?;
    match done.files_rewritten {
        Some(true) | None => {}
        Some(false) => eprintln!(
            "warning: another process has the database open: the old values may stay in \
             its -wal file until the last process using it closes it"
        ),
    }
    if done.files_rewritten.is_none() {
        eprintln!(
            "note: PostgreSQL keeps old row versions on disk until it vacuums them: \
             run VACUUM FULL on contacts, outbox and ledger to rewrite them now"
        );
    }
    Ok(())
}

/// Six random bytes for a pseudonym: from the operating system (`/dev/urandom`),
/// else from the keys std draws from it for its hash maps.
/// `contacts export ID`: everything stored about them, as JSON.
async fn export(
    id: &str,
    operator: &str,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    use palabre_core::clock::Clock as _;
    let store = required_store(sources, "no contact imported yet").await?;
    let exported = store
        .export_contact(id, operator, palabre_core::clock::SystemClock.now())
        .await;
    store.close().await;
    let Some(exported) = exported? else {
        return no_such_contact(id);
    };
    writeln!(out, "{}", serde_json::to_string_pretty(&exported)?)?;
    Ok(())
}
