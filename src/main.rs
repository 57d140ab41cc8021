//! The `palabre` command line: wiring only. Every behaviour lives in the
//! engine's crates; `cli` parses arguments, calls the engine and prints; this
//! file starts the process and sends each command to its module. Exit codes: 0
//! ok, 1 invalid input, 2 usage or I/O error.

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::args::{
    Cli, Command, ContactsCommand, KeyCommand, MilestoneCommand, OccurrenceCommand, RulesCommand,
    TokenCommand,
};
use cli::{
    backup, case, clips, contacts, context, key, logging, milestones, occurrence, preview, purge,
    rules, schema, serve, status, test, token, validate,
};

/// mimalloc instead of the system's allocator: planning and sending make and
/// drop many small strings, which glibc's malloc serves slowly (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server reports what it does; one-shot commands only warn.
    let level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    logging::init(cli.log_format, level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let operator = context::operator(cli.operator.as_deref());
    let mut out = String::new();
    let result = runtime.block_on(run(cli.command, &operator, &mut out));
    context::finish(&out, result)
}

/// Runs one command as `operator` (who the ledger says acted); what it prints
/// goes into `out`.
async fn run(command: Command, operator: &str, out: &mut String) -> anyhow::Result<()> {
    match command {
        Command::Validate { paths, sources } => validate::run(&paths, &sources).await,
        Command::Schema { kind } => schema::run(kind, out),
        Command::Clips { workflows } => clips::run(&workflows, out),
        Command::Serve(args) => serve::run(args).await,
        Command::Status { format, sources } => status::run(format, &sources, out).await,
        Command::Occurrence(OccurrenceCommand::Move {
            workflow,
            at,
            to,
            reason,
            sources,
        }) => occurrence::change(&workflow, &at, Some(&to), &reason, operator, &sources, out).await,
        Command::Occurrence(OccurrenceCommand::Cancel {
            workflow,
            at,
            reason,
            sources,
        }) => occurrence::change(&workflow, &at, None, &reason, operator, &sources, out).await,
        Command::Contacts(ContactsCommand::Import {
            file,
            sync,
            yes,
            sources,
        }) => contacts::import(&file, sync, yes, &sources, out).await,
        Command::Contacts(ContactsCommand::List {
            reveal,
            format,
            sources,
        }) => contacts::list(reveal, format, operator, &sources, out).await,
        Command::Contacts(ContactsCommand::Remove { id, sources }) => {
            contacts::remove(&id, &sources, out).await
        }
        Command::Contacts(ContactsCommand::Deactivate { id, sources }) => {
            contacts::set_active(&id, false, &sources, out).await
        }
        Command::Contacts(ContactsCommand::Activate { id, sources }) => {
            contacts::set_active(&id, true, &sources, out).await
        }
        Command::Contacts(
            command @ (ContactsCommand::Erase { .. } | ContactsCommand::Export { .. }),
        ) => contacts::personal_data(command, operator, out).await,
        Command::Milestones {
            place,
            format,
            sources,
        } => milestones::timeline(place.as_deref(), format, &sources, out).await,
        Command::Milestone(MilestoneCommand::Set {
            id,
            status,
            note,
            sources,
        }) => milestones::set(&id, &status, &note, operator, &sources, out).await,
        Command::Case(command) => case::run(command, operator, out).await,
        Command::Token(TokenCommand::Create {
            role,
            scope,
            label,
            expires,
            sources,
        }) => token::create(&role, &scope, &label, expires.as_deref(), &sources, out).await,
        Command::Token(TokenCommand::List { format, sources }) => {
            token::list(format, &sources, out).await
        }
        Command::Token(TokenCommand::Revoke { id, sources }) => {
            token::revoke(&id, &sources, out).await
        }
        Command::Rules(RulesCommand::Explain {
            place,
            hook,
            sources,
        }) => rules::explain(&place, &hook, &sources, out),
        Command::Rules(RulesCommand::Docs) => {
            rules::docs(out);
            Ok(())
        }
        Command::Test { path, sources } => test::run(path.as_deref(), &sources, out),
        Command::Preview(args) => preview::run(&args, out).await,
        Command::Purge {
            place: Some(place),
            confirm: Some(confirm),
            sources,
            ..
        } => purge::run(&place, &confirm, operator, &sources, out).await,
        Command::Purge { sources, .. } => purge::expired(&sources, out).await,
        Command::Key(KeyCommand::Init { key_file }) => key::init(&key_file, out),
        Command::Key(KeyCommand::Rotate {
            new_key_file,
            sources,
        }) => key::rotate(&new_key_file, &sources, out).await,
        Command::Backup { file, sources } => backup::backup(&file, &sources, out).await,
        Command::Restore {
            file,
            force,
            sources,
        } => backup::restore(&file, force, &sources, out).await,
    }
}
