//! `palabre purge --place PLACE --confirm PLACE`: the emergency purge. Every
//! contact at or below a place erased as `contacts erase` erases one (name,
//! phone and email destroyed everywhere, ids replaced by pseudonyms, queued
//! messages dropped), all in one transaction, with one ledger entry saying
//! where, how many and who; never a name. `--confirm` must repeat the place
//! exactly, else nothing is done. Only `places.yaml` is read: a broken workflow
//! file elsewhere does not stand in the way of a purge.
//!
//! `palabre purge --expired`: the texts past the keeping times of
//! `retention.yaml` removed (what `serve` does once a day).

use std::fmt::Write as _;

use palabre_core::clock::Clock as _;
use palabre_core::diagnostic::Diagnostics;
use palabre_lang::places::Places;
use palabre_store::Store;
use palabre_store::erasure::Purge;

use super::args::Sources;
use super::context::{Invalid, report, required_store};

/// `purge --place PLACE --confirm PLACE`, as `operator`.
pub async fn run(
    place: &str,
    confirm: &str,
    operator: &str,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    if confirm != place {
        eprintln!(
            "error: --confirm must repeat the place exactly: --place {place} --confirm {place} \
             (it was '{confirm}'); nothing erased"
        );
        return Err(Invalid.into());
    }
    let mut diagnostics = Diagnostics::default();
    let places = Places::load(&sources.workflows.join("places.yaml"), &mut diagnostics);
    report(diagnostics)?;
    if places.get(place).is_none() {
        eprintln!("error: {}; nothing erased", places.unknown_message(place));
        return Err(Invalid.into());
    }
    let random = super::context::pseudonyms()?;
    let store = required_store(sources, "no contact imported yet").await?;
    let result = purge_in(&store, place, operator, random, out).await;
    store.close().await;
    result
}

async fn purge_in(
    store: &Store,
    place: &str,
    operator: &str,
    mut random: impl FnMut() -> [u8; 6] + Send,
    out: &mut String,
) -> anyhow::Result<()> {
    let done = store
        .purge_place(Purge {
            place,
            operator,
            random: &mut random,
            now: palabre_core::clock::SystemClock.now(),
        })
        .await?;
    let Some(done) = done else {
        eprintln!(
            "error: there is no contact at or below '{place}' in the directory: nothing erased"
        );
        return Err(Invalid.into());
    };
    writeln!(
        out,
        "{place} purged: {} contact(s) erased, {} queued message(s) dropped; {} answer(s), \
         {} message(s) and {} ledger entry(ies) kept under pseudonyms, {} case(s)",
        done.contacts,
        done.messages_dropped,
        done.responses,
        done.messages_kept,
        done.ledger_entries,
        done.cases,
    )?;
    match done.files_rewritten {
        Some(false) => eprintln!(
            "warning: another process has the database open: the old values may stay in \
             its -wal file until the last process using it closes it (stop `serve`)"
        ),
        Some(true) => {}
        None => eprintln!(
            "note: PostgreSQL keeps old row versions on disk until it vacuums them: \
             run VACUUM FULL on contacts, outbox and ledger to rewrite them now"
        ),
    }
    Ok(())
}

/// `palabre purge --expired`: removes the texts past the keeping times of
/// `retention.yaml` (what `serve` does once a day), and says how many.
pub async fn expired(sources: &Sources, out: &mut String) -> anyhow::Result<()> {
    required_store(sources, "no database here: nothing to purge")
        .await?
        .close()
        .await;
    let commands = super::context::offline_commands(sources).await?;
    let done = commands.purge_expired().await?;
    commands.store().close().await;
    writeln!(
        out,
        "past their keeping time: {} message text(s), {} ledger detail(s), {} resolved case description(s) removed",
        done.message_texts, done.ledger_details, done.case_descriptions
    )?;
    Ok(())
}
