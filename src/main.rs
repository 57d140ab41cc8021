//! The `palabre` command line: wiring only. Every behaviour lives in the
//! engine's crates; `cli` parses arguments, calls the engine and prints; this
//! file starts the process and sends each command to its module. Exit codes: 0
//! ok, 1 invalid input, 2 usage or I/O error.

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::args::{
    Cli, Command, ContactsCommand, MilestoneCommand, OccurrenceCommand, RulesCommand, TokenCommand,
};
use cli::{
    backup, case, contacts, context, logging, milestones, occurrence, preview, rules, schema,
    serve, status, test, token, validate,
};

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
    let mut out = String::new();
    let result = runtime.block_on(run(cli.command, &mut out));
    context::finish(&out, result)
}

/// Runs one command; what it prints goes into `out`.
async fn run(command: Command, out: &mut String) -> anyhow::Result<()> {
    match command {
        Command::Validate { paths, sources } => validate::run(&paths, &sources).await,
        Command::Schema { kind } => schema::run(kind, out),
        Command::Serve(args) => serve::run(args).await,
        Command::Status { format, sources } => status::run(format, &sources, out).await,
        Command::Occurrence(OccurrenceCommand::Move {
            workflow,
            at,
            to,
            reason,
            sources,
        }) => occurrence::change(&workflow, &at, Some(&to), &reason, &sources, out).await,
        Command::Occurrence(OccurrenceCommand::Cancel {
            workflow,
            at,
            reason,
            sources,
        }) => occurrence::change(&workflow, &at, None, &reason, &sources, out).await,
        Command::Contacts(ContactsCommand::Import { file, sources }) => {
            contacts::import(&file, &sources, out).await
        }
        Command::Contacts(ContactsCommand::List {
            reveal,
            format,
            sources,
        }) => contacts::list(reveal, format, &sources, out).await,
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
        }) => milestones::set(&id, &status, &note, &sources, out).await,
        Command::Case(command) => case::run(command, out).await,
        Command::Token(TokenCommand::Create {
            role,
            scope,
            label,
            sources,
        }) => token::create(&role, &scope, &label, &sources, out).await,
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
        Command::Backup { file, sources } => backup::backup(&file, &sources, out).await,
        Command::Restore {
            file,
            force,
            sources,
        } => backup::restore(&file, force, &sources, out).await,
    }
}
