//! The `palabre` command line: wiring only. Every behaviour lives in
//! `palabre-engine`; this file parses arguments, calls the engine, prints, and
//! maps outcomes to exit codes (0 ok, 1 invalid input, 2 usage or I/O error).

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use palabre_core::channel::Channel;
use palabre_core::clock::{Clock, SystemClock, VirtualClock};
use palabre_core::connector::Connectors;
use palabre_core::diagnostic::Diagnostics;
use palabre_core::offset::Offset;
use palabre_core::redact;
use palabre_core::rule_function::RuleFunction;
use palabre_email::{EmailConnector, Security, SmtpConfig};
use palabre_engine::commands::{CommandError, Commands};
use palabre_engine::runtime::{Runtime, RuntimeConfig};
use palabre_lang::contacts::{self, Contact, DirectoryRules};
use palabre_lang::files::folder_fingerprint;
use palabre_lang::occurrence::Changes;
use palabre_lang::{milestones, places};
use palabre_plan::definitions::Definitions;
use palabre_plan::planner::{self, PlannedMessage, Planner};
use palabre_plan::schema::{self, SchemaKind};
use palabre_rules as engine_rules;
use palabre_sms::SmsOutbox;
use palabre_store::{self as store, DEFAULT_URL, Store};

/// What plugins add to the rule language. Plugins are linked in, so their
/// functions exist whether or not their connector is configured.
const RULE_EXTENSIONS: &[RuleFunction] = palabre_sms::RULE_FUNCTIONS;

#[derive(Parser)]
#[command(
    name = "palabre",
    version,
    about = "Workflows for a community dialogue mechanism: meetings, reminders, escalation."
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemaFor {
    Workflow,
    Places,
    Roles,
    Template,
    Calendar,
    RuleCases,
    Milestones,
    Escalation,
}

impl From<SchemaFor> for SchemaKind {
    fn from(kind: SchemaFor) -> Self {
        match kind {
            SchemaFor::Workflow => SchemaKind::Workflow,
            SchemaFor::Places => SchemaKind::Places,
            SchemaFor::Roles => SchemaKind::Roles,
            SchemaFor::Template => SchemaKind::Template,
            SchemaFor::Calendar => SchemaKind::Calendar,
            SchemaFor::RuleCases => SchemaKind::RuleCases,
            SchemaFor::Milestones => SchemaKind::Milestones,
            SchemaFor::Escalation => SchemaKind::Escalation,
        }
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Table,
    Json,
}

#[derive(clap::Args)]
struct Sources {
    /// The workflows folder (places.yaml, roles.yaml, templates/, workflow files).
    #[arg(long, default_value = "workflows", env = "PALABRE_WORKFLOWS")]
    workflows: PathBuf,
    /// Database URL: sqlite://FILE (the default) or postgres://...
    #[arg(long, env = "PALABRE_DATABASE_URL")]
    db: Option<String>,
}

impl Sources {
    fn database_url(&self) -> &str {
        self.db.as_deref().unwrap_or(DEFAULT_URL)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Check workflow files (default: the whole workflows folder) and report every problem.
    Validate {
        /// Workflow files or a workflows folder.
        paths: Vec<PathBuf>,
        #[command(flatten)]
        sources: Sources,
    },
    /// Print the JSON Schema of a kind of file (for editors: completion and hover docs).
    Schema {
        #[arg(long, value_enum, default_value_t = SchemaFor::Workflow)]
        kind: SchemaFor,
    },
    /// Run the engine: plan, fire and deliver, until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Show what the engine has done and has to do: due, late, sent, failed, dead letters.
    Status {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        sources: Sources,
    },
    /// Move or cancel one occurrence of a meeting; participants are told.
    #[command(subcommand)]
    Occurrence(OccurrenceCommand),
    /// Manage the contact directory.
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// Redeployment milestones: the timeline with status, lateness and what blocks what.
    Milestones {
        /// Only plans at this place or below (`mopti/koro`).
        #[arg(long)]
        place: Option<String>,
        #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
        format: TimelineFormat,
        #[command(flatten)]
        sources: Sources,
    },
    /// Change one milestone.
    #[command(subcommand)]
    Milestone(MilestoneCommand),
    /// API bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Disputes on an escalation ladder: open, act on, show.
    #[command(subcommand)]
    Case(CaseCommand),
    /// Local rules: which script answers a hook, and the rule language reference.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Run the rule tests (`*.test.yaml` beside the scripts) and report like a test runner.
    Test {
        /// A case file or a folder of them. Default: the workflows folder's rules/.
        path: Option<PathBuf>,
        #[command(flatten)]
        sources: Sources,
    },
    /// Show what would be sent, when, to whom and how, without sending anything.
    Preview {
        /// Start of the window: YYYY-MM-DD (00:00 UTC) or an RFC 3339 instant. Default: now.
        #[arg(long)]
        from: Option<String>,
        /// Length of the window in days (1 to 366).
        #[arg(long, default_value_t = 14)]
        days: u32,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Print each message's text under its line (table format).
        #[arg(long)]
        show_text: bool,
        /// Plan against this directory CSV instead of the database (nothing is imported).
        #[arg(long, value_name = "FILE.csv")]
        directory: Option<PathBuf>,
        #[command(flatten)]
        sources: Sources,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    sources: Sources,
    /// An SMS gateway's configuration (YAML: `provider: orange|twilio|infobip|africas_talking|generic`
    /// and its settings; secrets are named environment variables). Without it, SMS go to `outbox/sms/`.
    #[arg(long, env = "PALABRE_SMS_GATEWAY", value_name = "FILE.yaml")]
    sms_gateway: Option<PathBuf>,
    /// Where messages go when no gateway is configured: `.eml` files for email, `sms/` text files.
    #[arg(long, default_value = "outbox", env = "PALABRE_OUTBOX")]
    outbox: PathBuf,
    /// SMTP server; without it, emails are written to the outbox folder.
    #[arg(long, env = "PALABRE_SMTP_HOST")]
    smtp_host: Option<String>,
    #[arg(long, env = "PALABRE_SMTP_PORT", default_value_t = 587)]
    smtp_port: u16,
    #[arg(long, env = "PALABRE_SMTP_SECURITY", value_enum, default_value_t = SmtpSecurity::Starttls)]
    smtp_security: SmtpSecurity,
    #[arg(long, env = "PALABRE_SMTP_USER")]
    smtp_user: Option<String>,
    /// The NAME of the environment variable holding the SMTP password (never the password itself).
    #[arg(
        long,
        env = "PALABRE_SMTP_PASSWORD_ENV",
        default_value = "PALABRE_SMTP_PASSWORD"
    )]
    smtp_password_env: String,
    /// A CA certificate (PEM) to trust for the SMTP server, besides the public roots.
    #[arg(long, env = "PALABRE_SMTP_CA_FILE")]
    smtp_ca_file: Option<PathBuf>,
    /// Sender of emails.
    #[arg(
        long,
        env = "PALABRE_MAIL_FROM",
        default_value = "palabre <palabre@example.org>"
    )]
    from: String,
    /// This worker's name in leases (several workers can share a PostgreSQL database).
    #[arg(long, env = "PALABRE_WORKER")]
    worker: Option<String>,
    /// Also import examples/directory.csv and run a demo meeting starting in a few minutes.
    #[arg(long)]
    demo: bool,
    /// Delay before retrying a failed delivery the first time (doubles each time), e.g. 30s.
    #[arg(long, default_value = "30s")]
    retry_first_delay: Offset,
    /// Delivery attempts before a message is dead-lettered.
    #[arg(long, default_value_t = 8)]
    retry_max_attempts: i64,
    /// The NAME of the environment variable holding the secret inbound SMS webhooks
    /// put in their URL (`/inbound/sms/<secret>`); unset: no inbound SMS.
    #[arg(long, default_value = "PALABRE_INBOUND_SECRET")]
    inbound_secret_env: String,
    /// Address of the HTTP API (`off` to serve none).
    #[arg(long, default_value = "127.0.0.1:8080", env = "PALABRE_HTTP")]
    http: String,
    /// How often the workflows folder is looked at for edits, which take effect
    /// without a restart (`0s` turns hot reload off).
    #[arg(long, default_value = "2s", env = "PALABRE_RELOAD_EVERY")]
    reload_every: Offset,
}

#[derive(Clone, Copy, ValueEnum)]
enum SmtpSecurity {
    Starttls,
    Tls,
    Plain,
}

#[derive(Subcommand)]
enum OccurrenceCommand {
    /// Move one occurrence: its pending reminders follow, participants get a notice.
    Move {
        /// The workflow id.
        workflow: String,
        /// The occurrence, as its recurrence gives it (RFC 3339, e.g. 2026-12-09T09:00:00Z).
        #[arg(long)]
        at: String,
        /// The new start (RFC 3339).
        #[arg(long)]
        to: String,
        /// Why, as participants will read it.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sources: Sources,
    },
    /// Cancel one occurrence: its pending reminders are dropped, participants get a notice.
    Cancel {
        workflow: String,
        #[arg(long)]
        at: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        sources: Sources,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum TimelineFormat {
    Table,
    Json,
    Ics,
}

#[derive(Subcommand)]
enum CaseCommand {
    /// Open a dispute; its first responders are told (reference and category only).
    Open {
        /// The ladder's id (`litiges-mopti`).
        #[arg(long)]
        workflow: String,
        #[arg(long)]
        category: String,
        /// Where the dispute is, a place path.
        #[arg(long)]
        place: String,
        /// A party's contact id (repeat for each).
        #[arg(long = "party")]
        parties: Vec<String>,
        /// 1 (low) to 5 (grave).
        #[arg(long, default_value_t = 2)]
        severity: i64,
        /// What happened. Kept in the database, never sent.
        #[arg(long)]
        description: String,
        #[command(flatten)]
        sources: Sources,
    },
    /// Acknowledge a case at its current level: its climb stops there.
    Ack(CaseNote),
    /// Add a note to a case's history.
    Note(CaseNote),
    /// Resolve a case: every pending deadline is dropped.
    Resolve(CaseNote),
    /// Reopen a resolved case at its level, with fresh deadlines.
    Reopen(CaseNote),
    /// Send a case one level up now.
    Escalate(CaseNote),
    /// A case and its whole history, from the ledger.
    Show {
        id: String,
        /// Also print the description.
        #[arg(long)]
        reveal: bool,
        #[command(flatten)]
        sources: Sources,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once and only its hash is kept.
    Create {
        /// observer (reads), coordinator (also acts), administrator (also reads descriptions everywhere).
        #[arg(long)]
        role: String,
        /// A place path the token is limited to (`mopti`), or `national`.
        #[arg(long)]
        scope: String,
        /// Who or what the token is for.
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        sources: Sources,
    },
}

#[derive(clap::Args)]
struct CaseNote {
    id: String,
    /// What was done, or why.
    #[arg(long, default_value = "")]
    note: String,
    #[command(flatten)]
    sources: Sources,
}

#[derive(Subcommand)]
enum MilestoneCommand {
    /// Record a status change with its note: planned, in_progress, done, blocked,
    /// cancelled. Done and cancelled stop every pending reminder of the milestone.
    Set {
        /// `PLAN/MILESTONE`, or the milestone id alone when only one plan has it.
        id: String,
        status: String,
        /// Why, or what was done: kept with the status and in the ledger.
        #[arg(long)]
        note: String,
        #[command(flatten)]
        sources: Sources,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Which script answers HOOK at PLACE, which ones it reaches through parent(), and the default.
    Explain {
        /// A place path (`mopti/djenne/djenne`).
        place: String,
        /// A hook (`meeting_schedule`) or any function name a workflow uses for one.
        hook: String,
        #[command(flatten)]
        sources: Sources,
    },
    /// Print the reference of every hook and every function rules can call (Markdown).
    Docs,
}

#[derive(Subcommand)]
enum ContactsCommand {
    /// Import (or re-import) a directory CSV: id,name,roles,place,phone,email,language,channels.
    Import {
        file: PathBuf,
        #[command(flatten)]
        sources: Sources,
    },
    /// List the directory; phones and emails are masked unless --reveal.
    List {
        #[arg(long)]
        reveal: bool,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        sources: Sources,
    },
}

/// How a command ended, beyond errors.
enum Outcome {
    Ok,
    Invalid,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server reports what it does; one-shot commands only warn.
    let level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    init_tracing(cli.log_format, level);
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
    // A reader that stops early (`| head`) is not an error of ours.
    if let Err(e) = std::io::stdout().lock().write_all(out.as_bytes())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write output: {e}");
        return ExitCode::from(2);
    }
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Invalid) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PALABRE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(command: Command, out: &mut String) -> anyhow::Result<Outcome> {
    match command {
        Command::Validate { paths, sources } => validate(&paths, &sources).await,
        Command::Schema { kind } => {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&schema::schema(kind.into()))?
            )?;
            Ok(Outcome::Ok)
        }
        Command::Serve(args) => serve(args).await,
        Command::Status { format, sources } => status(format, &sources, out).await,
        Command::Occurrence(OccurrenceCommand::Move {
            workflow,
            at,
            to,
            reason,
            sources,
        }) => change_occurrence(&workflow, &at, Some(&to), &reason, &sources, out).await,
        Command::Occurrence(OccurrenceCommand::Cancel {
            workflow,
            at,
            reason,
            sources,
        }) => change_occurrence(&workflow, &at, None, &reason, &sources, out).await,
        Command::Contacts(ContactsCommand::Import { file, sources }) => {
            import_contacts(&file, &sources, out).await
        }
        Command::Contacts(ContactsCommand::List {
            reveal,
            format,
            sources,
        }) => list_contacts(reveal, format, &sources, out).await,
        Command::Milestones {
            place,
            format,
            sources,
        } => milestones(place.as_deref(), format, &sources, out).await,
        Command::Milestone(MilestoneCommand::Set {
            id,
            status,
            note,
            sources,
        }) => set_milestone(&id, &status, &note, &sources, out).await,
        Command::Case(command) => case_command(command, out).await,
        Command::Token(TokenCommand::Create {
            role,
            scope,
            label,
            sources,
        }) => create_token(&role, &scope, &label, &sources, out).await,
        Command::Rules(RulesCommand::Explain {
            place,
            hook,
            sources,
        }) => explain_rule(&place, &hook, &sources, out),
        Command::Rules(RulesCommand::Docs) => {
            out.push_str(&engine_rules::reference(RULE_EXTENSIONS));
            Ok(Outcome::Ok)
        }
        Command::Test { path, sources } => rule_tests(path.as_deref(), &sources, out),
        Command::Preview {
            from,
            days,
            format,
            show_text,
            directory,
            sources,
        } => {
            let options = PreviewOptions {
                from,
                days,
                format,
                show_text,
                directory,
            };
            preview(&options, &sources, out).await
        }
    }
}

/// Prints diagnostics to stderr with a summary; returns whether there were errors.
fn report(diagnostics: Diagnostics) -> bool {
    let errors = diagnostics.error_count();
    let warnings = diagnostics.warning_count();
    let mut err = std::io::stderr().lock();
    for d in diagnostics.sorted() {
        let _ = writeln!(err, "{d}\n");
    }
    if errors > 0 || warnings > 0 {
        let _ = writeln!(err, "{errors} error(s), {warnings} warning(s)");
    }
    errors > 0
}

/// Loads definitions and stops with exit code 1 if they have errors.
fn load_definitions(root: &Path) -> anyhow::Result<Result<Definitions, Outcome>> {
    if !root.is_dir() {
        bail!("workflows folder '{}' does not exist", root.display());
    }
    let (definitions, diagnostics) = Definitions::load(root, None, RULE_EXTENSIONS);
    if report(diagnostics) {
        return Ok(Err(Outcome::Invalid));
    }
    Ok(Ok(definitions))
}

async fn validate(paths: &[PathBuf], sources: &Sources) -> anyhow::Result<Outcome> {
    for path in paths {
        if !path.exists() {
            bail!("'{}' does not exist", path.display());
        }
    }
    let (root, only) = match paths {
        [] => (sources.workflows.clone(), None),
        [dir] if dir.is_dir() => (dir.clone(), None),
        files => {
            if let Some(dir) = files.iter().find(|p| p.is_dir()) {
                bail!(
                    "'{}' is a folder: give one workflows folder, or workflow files",
                    dir.display()
                );
            }
            (sources.workflows.clone(), Some(files.to_vec()))
        }
    };
    if !root.is_dir() {
        bail!(
            "workflows folder '{}' does not exist (use --workflows)",
            root.display()
        );
    }
    let (definitions, mut diagnostics) = Definitions::load(&root, only.as_deref(), RULE_EXTENSIONS);
    // Recipients are checked against the directory when there is one to check against.
    let directory_url = sources.db.clone().or_else(|| {
        Path::new("palabre.db")
            .exists()
            .then(|| DEFAULT_URL.to_owned())
    });
    if let Some(url) = directory_url {
        let store = Store::connect(&url)
            .await
            .context("opening the contact directory")?;
        let directory = store.contacts().await?;
        diagnostics.extend(definitions.check_directory(&directory));
        eprintln!("recipients checked against {} contacts", directory.len());
    }
    sms_segments(&definitions, &root, &mut diagnostics)?;
    let invalid = report(diagnostics);
    let workflows = definitions.workflow_ids().count();
    if invalid {
        Ok(Outcome::Invalid)
    } else {
        eprintln!("ok: {workflows} workflow(s) valid in {}", root.display());
        Ok(Outcome::Ok)
    }
}

async fn milestones(
    place: Option<&str>,
    format: TimelineFormat,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<Outcome> {
    let definitions = match load_definitions(&sources.workflows)? {
        Ok(d) => d,
        Err(outcome) => return Ok(outcome),
    };
    if let Some(place) = place
        && definitions.places.get(place).is_none()
    {
        bail!("{}", definitions.places.unknown_message(place));
    }
    // Without a database nothing has been recorded: every milestone is planned.
    let states = if store::exists(sources.database_url()) {
        let store = Store::connect(sources.database_url())
            .await
            .context("opening the database")?;
        let states = store.milestone_states().await?;
        store.close().await;
        states
    } else {
        Vec::new()
    };
    let statuses = milestones::Statuses::new(states);
    let now = SystemClock.now();
    let rows: Vec<milestones::TimelineRow> = definitions
        .plans
        .iter()
        .filter(|p| place.is_none_or(|place| places::Places::contains(place, &p.definition.place)))
        .flat_map(|p| p.timeline(&statuses, now))
        .collect();
    match format {
        TimelineFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
        TimelineFormat::Ics => out.push_str(&palabre_lang::ics::todos(&rows, now)),
        TimelineFormat::Table => print_table(
            out,
            &[
                "plan",
                "milestone",
                "owner",
                "start",
                "due",
                "status",
                "late",
                "waits for",
                "blocks",
            ],
            rows.iter().map(|r| {
                vec![
                    r.plan.clone(),
                    r.id.clone(),
                    r.owner.clone(),
                    r.start.map(|d| d.to_string()).unwrap_or_default(),
                    r.due.to_string(),
                    r.status.to_string(),
                    if r.days_late > 0 {
                        format!("{} d", r.days_late)
                    } else {
                        String::new()
                    },
                    r.blocked_by.join(", "),
                    r.blocks.join(", "),
                ]
            }),
        ),
    }
    Ok(Outcome::Ok)
}

async fn set_milestone(
    id: &str,
    status: &str,
    note: &str,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<Outcome> {
    let definitions = match load_definitions(&sources.workflows)? {
        Ok(d) => d,
        Err(outcome) => return Ok(outcome),
    };
    let Some(status) = milestones::MilestoneStatus::parse(status) else {
        bail!(
            "unknown status '{status}': one of {}",
            milestones::MilestoneStatus::ALL
                .map(|s| s.as_str())
                .join(", ")
        );
    };
    let candidates: Vec<(&str, &str)> = match id.split_once('/') {
        Some((plan, milestone)) => definitions
            .plan(plan)
            .and_then(|p| p.milestone(milestone))
            .map(|m| vec![(plan, m.id.as_str())])
            .unwrap_or_default(),
        None => definitions
            .plans
            .iter()
            .filter_map(|p| {
                p.milestone(id)
                    .map(|m| (p.definition.id.as_str(), m.id.as_str()))
            })
            .collect(),
    };
    let (plan, milestone) = match candidates.as_slice() {
        [(plan, milestone)] => ((*plan).to_owned(), (*milestone).to_owned()),
        [] => bail!("no milestone '{id}' in any plan (write PLAN/MILESTONE)"),
        _ => bail!("'{id}' is in several plans: write PLAN/MILESTONE"),
    };
    if note.trim().is_empty() {
        bail!("--note cannot be empty: say why, or what was done");
    }
    let store = Store::connect(sources.database_url())
        .await
        .context("opening the database")?;
    let commands = Commands::new(store, definitions, Arc::new(SystemClock));
    let changed = refused(
        commands
            .set_milestone_status(&plan, &milestone, status, note)
            .await,
    );
    commands.store().close().await;
    let previous = match changed? {
        Ok(change) => change.previous,
        Err(outcome) => return Ok(outcome),
    };
    writeln!(out, "{plan}/{milestone}: {previous} → {status}")?;
    Ok(Outcome::Ok)
}

async fn create_token(
    role: &str,
    scope: &str,
    label: &str,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<Outcome> {
    use palabre_api::auth::{self, Role};
    let Some(role) = Role::parse(role) else {
        bail!(
            "unknown role '{role}': one of {}",
            Role::ALL.map(|r| r.as_str()).join(", ")
        );
    };
    let definitions = match load_definitions(&sources.workflows)? {
        Ok(d) => d,
        Err(outcome) => return Ok(outcome),
    };
    if scope != auth::NATIONAL && definitions.places.get(scope).is_none() {
        bail!(
            "{} (or `national`)",
            definitions.places.unknown_message(scope)
        );
    }
    let store = Store::connect(sources.database_url())
        .await
        .context("opening the database")?;
    let token = auth::create_token(&store, role, scope, label, SystemClock.now()).await?;
    store.close().await;
    writeln!(out, "{token}")?;
    eprintln!("a {role} token for {scope}: keep it secret, it is not shown again");
    Ok(Outcome::Ok)
}

/// Who acts, as the ledger names them: the system user.
fn actor() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .map_or_else(|| "cli".to_owned(), |u| format!("cli:{u}"))
}

/// The engine's commands over the database, for CLI commands that change
/// things and leave the sending to `serve`.
async fn offline_commands(sources: &Sources) -> anyhow::Result<Result<Commands, Outcome>> {
    let definitions = match load_definitions(&sources.workflows)? {
        Ok(d) => d,
        Err(outcome) => return Ok(Err(outcome)),
    };
    let store = Store::connect(sources.database_url())
        .await
        .context("opening the database")?;
    Ok(Ok(Commands::new(store, definitions, Arc::new(SystemClock))))
}

/// A command's refusal is the user's to mend (the reason on stderr, exit code
/// 1); a database error is an error.
fn refused<T>(result: Result<T, CommandError>) -> anyhow::Result<Result<T, Outcome>> {
    match result {
        Ok(done) => Ok(Ok(done)),
        Err(CommandError::Store(error)) => Err(error.into()),
        Err(refusal) => {
            eprintln!("error: {refusal}");
            Ok(Err(Outcome::Invalid))
        }
    }
}

async fn case_command(command: CaseCommand, out: &mut String) -> anyhow::Result<Outcome> {
    use palabre_engine::commands::{CaseAction, NewCase};
    let (sources, act) = match command {
        CaseCommand::Open {
            workflow,
            category,
            place,
            parties,
            severity,
            description,
            sources,
        } => {
            let commands = match offline_commands(&sources).await? {
                Ok(c) => c,
                Err(outcome) => return Ok(outcome),
            };
            let new = NewCase {
                workflow,
                category,
                place,
                parties,
                severity,
                description,
            };
            let opened = refused(commands.open_case(new, &actor()).await);
            commands.store().close().await;
            let case = match opened? {
                Ok(case) => case,
                Err(outcome) => return Ok(outcome),
            };
            writeln!(out, "{} opened at level {}", case.id, case.level)?;
            return Ok(Outcome::Ok);
        }
        CaseCommand::Show {
            id,
            reveal,
            sources,
        } => return show_case(&id, reveal, &sources, out).await,
        CaseCommand::Ack(n) => (n.sources, (n.id, CaseAction::Acknowledge(n.note))),
        CaseCommand::Note(n) => (n.sources, (n.id, CaseAction::Note(n.note))),
        CaseCommand::Resolve(n) => (n.sources, (n.id, CaseAction::Resolve(n.note))),
        CaseCommand::Reopen(n) => (n.sources, (n.id, CaseAction::Reopen(n.note))),
        CaseCommand::Escalate(n) => (n.sources, (n.id, CaseAction::Escalate(n.note))),
    };
    let (id, action) = act;
    let commands = match offline_commands(&sources).await? {
        Ok(c) => c,
        Err(outcome) => return Ok(outcome),
    };
    let result = refused(commands.act_on_case(&id, action, &actor()).await);
    commands.store().close().await;
    match result? {
        Ok(case) => {
            writeln!(out, "{}: {} at level {}", case.id, case.state, case.level)?;
            Ok(Outcome::Ok)
        }
        Err(outcome) => Ok(outcome),
    }
}

async fn show_case(
    id: &str,
    reveal: bool,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<Outcome> {
    if !store::exists(sources.database_url()) {
        bail!("no database at {}: no case yet", sources.database_url());
    }
    let store = Store::connect(sources.database_url())
        .await
        .context("opening the database")?;
    let Some(case) = store.case(id).await? else {
        bail!("no case '{id}'");
    };
    let history = store.ledger_about(&case.workflow, &case.id).await?;
    store.close().await;
    writeln!(
        out,
        "{} ({}): {} at {}, severity {}, {} party(ies); level {}, {}; opened {}",
        case.id,
        case.workflow,
        case.category,
        case.place,
        case.severity,
        case.parties.len(),
        case.level,
        case.state,
        case.opened.to_rfc3339()
    )?;
    if reveal {
        writeln!(out, "description: {}", case.description)?;
    }
    for e in &history {
        writeln!(
            out,
            "  {} {:<18} {}{}",
            e.at.format("%Y-%m-%d %H:%M"),
            e.event,
            e.contact_id
                .as_deref()
                .map(|c| format!("{c}: "))
                .unwrap_or_default(),
            e.detail
        )?;
    }
    Ok(Outcome::Ok)
}

fn explain_rule(
    place: &str,
    hook: &str,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<Outcome> {
    let definitions = match load_definitions(&sources.workflows)? {
        Ok(d) => d,
        Err(outcome) => return Ok(outcome),
    };
    if definitions.places.get(place).is_none() {
        bail!("{}", definitions.places.unknown_message(place));
    }
    writeln!(out, "{}", definitions.rules.explain(place, hook))?;
    Ok(Outcome::Ok)
}

fn rule_tests(path: Option<&Path>, sources: &Sources, out: &mut String) -> anyhow::Result<Outcome> {
    let definitions = match load_definitions(&sources.workflows)? {
        Ok(d) => d,
        Err(outcome) => return Ok(outcome),
    };
    let rules_dir = sources.workflows.join(engine_rules::RULES_DIR);
    let path = path.unwrap_or(&rules_dir);
    let mut diagnostics = Diagnostics::default();
    let reports = engine_rules::run_cases(&definitions.rules, path, &mut diagnostics);
    let broken_cases = report(diagnostics);
    writeln!(out, "running {} rule case(s)", reports.len())?;
    for case in &reports {
        let verdict = if case.failure.is_some() {
            "FAILED"
        } else {
            "ok"
        };
        writeln!(
            out,
            "case {}:{} {} ... {verdict}",
            case.file.display(),
            case.line,
            case.name
        )?;
    }
    let failed: Vec<_> = reports.iter().filter(|r| r.failure.is_some()).collect();
    if !failed.is_empty() {
        writeln!(out, "\nfailures:")?;
        for case in &failed {
            if let Some(failure) = &case.failure {
                writeln!(
                    out,
                    "\n---- {}:{} {} ----\nexpected: {}\n     got: {}",
                    case.file.display(),
                    case.line,
                    case.name,
                    failure.expected,
                    failure.got
                )?;
            }
        }
    }
    let passed = reports.len() - failed.len();
    let verdict = if failed.is_empty() && !broken_cases {
        "ok"
    } else {
        "FAILED"
    };
    writeln!(
        out,
        "\ntest result: {verdict}. {passed} passed; {} failed",
        failed.len()
    )?;
    Ok(if verdict == "ok" {
        Outcome::Ok
    } else {
        Outcome::Invalid
    })
}

/// SMS above this many segments get a warning (they cost as many messages).
const SMS_MAX_SEGMENTS: usize = 2;

/// Prints the size of every SMS text, per template and language, rendered with
/// the sample values; a text over [`SMS_MAX_SEGMENTS`] is a warning.
fn sms_segments(
    definitions: &Definitions,
    root: &Path,
    diagnostics: &mut Diagnostics,
) -> anyhow::Result<()> {
    let sample = palabre_lang::templates::MessageContext::sample();
    let mut err = std::io::stderr().lock();
    for template in definitions.templates.names() {
        for language in definitions.templates.sms_languages(template) {
            let Ok(rendered) =
                definitions
                    .templates
                    .render(template, Channel::Sms, language, &sample)
            else {
                continue;
            };
            let size = palabre_sms::encoding::sms_size(&rendered.body);
            let encoding = match size.encoding {
                palabre_sms::encoding::Encoding::Gsm7 => "GSM-7",
                palabre_sms::encoding::Encoding::Ucs2 => "UCS-2",
            };
            std::io::Write::write_fmt(
                &mut err,
                format_args!(
                    "sms {template:<22} {language}  {} segment(s), {encoding}, {} units\n",
                    size.segments, size.units
                ),
            )?;
            if size.segments > SMS_MAX_SEGMENTS {
                diagnostics.push(palabre_core::diagnostic::Diagnostic::warning(
                    root.join("templates").join(format!("{template}.yaml")),
                    palabre_core::diagnostic::Position::START,
                    format!(
                        "the {language} SMS is {} segments ({encoding}) with sample values; more than {SMS_MAX_SEGMENTS} costs more (shorten it, or set sms_gsm: true)",
                        size.segments
                    ),
                ));
            }
        }
    }
    Ok(())
}

async fn import_contacts(
    file: &Path,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<Outcome> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let definitions = match load_definitions(&sources.workflows)? {
        Ok(d) => d,
        Err(outcome) => return Ok(outcome),
    };
    let mut diagnostics = Diagnostics::default();
    let rules = DirectoryRules {
        places: &definitions.places,
        roles: &definitions.roles,
    };
    let good = contacts::parse_csv(file, &bytes, &rules, &mut diagnostics);
    let rejected = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.position.line)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let had_errors = report(diagnostics);
    let store = Store::connect(sources.database_url())
        .await
        .context("opening the database")?;
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
    Ok(if had_errors {
        Outcome::Invalid
    } else {
        Outcome::Ok
    })
}

async fn list_contacts(
    reveal: bool,
    format: Format,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<Outcome> {
    let store = Store::connect(sources.database_url())
        .await
        .context("opening the database")?;
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
    Ok(Outcome::Ok)
}

fn parse_from(text: Option<&str>, clock: &dyn Clock) -> anyhow::Result<DateTime<Utc>> {
    let Some(text) = text else {
        return Ok(clock.now());
    };
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("--from '{text}': write YYYY-MM-DD or an RFC 3339 instant"))
}

/// What `palabre preview` was asked for.
struct PreviewOptions {
    from: Option<String>,
    days: u32,
    format: Format,
    show_text: bool,
    directory: Option<PathBuf>,
}

/// The directory a preview plans against: a CSV given on the command line, else the
/// database, else nobody. A preview has no side effects: it does not even create a
/// missing database.
async fn preview_directory(
    csv: Option<&Path>,
    definitions: &Definitions,
    sources: &Sources,
) -> anyhow::Result<Result<Vec<Contact>, Outcome>> {
    if let Some(csv) = csv {
        let bytes = std::fs::read(csv).with_context(|| format!("reading {}", csv.display()))?;
        let mut diagnostics = Diagnostics::default();
        let rules = DirectoryRules {
            places: &definitions.places,
            roles: &definitions.roles,
        };
        let directory = contacts::parse_csv(csv, &bytes, &rules, &mut diagnostics);
        if report(diagnostics) {
            return Ok(Err(Outcome::Invalid));
        }
        return Ok(Ok(directory));
    }
    if !store::exists(sources.database_url()) {
        return Ok(Ok(Vec::new()));
    }
    let store = Store::connect(sources.database_url())
        .await
        .context("opening the database")?;
    let directory = store.contacts().await?;
    store.close().await;
    Ok(Ok(directory))
}

async fn preview(
    options: &PreviewOptions,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<Outcome> {
    if !(1..=366).contains(&options.days) {
        bail!("--days must be between 1 and 366");
    }
    let (start, until) = planner::window(
        parse_from(options.from.as_deref(), &SystemClock)?,
        options.days,
    );
    let definitions = match load_definitions(&sources.workflows)? {
        Ok(d) => d,
        Err(outcome) => return Ok(outcome),
    };
    let directory =
        match preview_directory(options.directory.as_deref(), &definitions, sources).await? {
            Ok(directory) => directory,
            Err(outcome) => return Ok(outcome),
        };
    if directory.is_empty() {
        eprintln!(
            "note: the directory is empty, so nobody receives anything; import one with `palabre contacts import FILE.csv` or pass --directory FILE.csv"
        );
    }
    // Moved and cancelled occurrences, when there is a database to read them from.
    let changes = if store::exists(sources.database_url()) {
        let store = Store::connect(sources.database_url())
            .await
            .context("opening the database")?;
        let changes = store.occurrence_changes().await?;
        store.close().await;
        Changes::new(changes)
    } else {
        Changes::default()
    };
    let clock = VirtualClock::new(start);
    let planned = Planner::new(&definitions, Arc::new(directory)).preview(&clock, until, &changes);
    match options.format {
        Format::Json => {
            // Each SMS with its size in segments.
            let with_segments: Vec<serde_json::Value> = planned
                .iter()
                .map(|m| {
                    let mut value = serde_json::to_value(m).unwrap_or_default();
                    if let Some(segments) = sms_segment_count(m) {
                        value["segments"] = segments.into();
                    }
                    value
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&with_segments)?)?;
        }
        Format::Table => print_preview(out, &planned, options.show_text),
    }
    Ok(Outcome::Ok)
}

/// The segments an SMS is sent in; `None` for other channels.
fn sms_segment_count(message: &PlannedMessage) -> Option<usize> {
    (message.channel == Some(Channel::Sms))
        .then_some(message.body.as_deref())
        .flatten()
        .map(|body| palabre_sms::encoding::sms_size(body).segments)
}

fn print_preview(out: &mut String, planned: &[PlannedMessage], show_text: bool) {
    let headers = [
        "due (UTC)",
        "local",
        "workflow",
        "step",
        "contact",
        "name",
        "channel",
        "lang",
        "seg",
    ];
    let row = |m: &PlannedMessage| {
        vec![
            m.due_utc.format("%Y-%m-%d %H:%M").to_string(),
            m.due_local
                .get(..16)
                .unwrap_or(&m.due_local)
                .replace('T', " "),
            m.workflow.clone(),
            m.step.clone(),
            m.contact_id.clone(),
            m.contact_name.clone(),
            m.channel.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            m.language.clone().unwrap_or_else(|| "-".to_owned()),
            sms_segment_count(m).map_or_else(String::new, |s| s.to_string()),
        ]
    };
    if show_text {
        for m in planned {
            print_table(out, &headers, std::iter::once(row(m)));
            if let Some(subject) = &m.subject {
                let _ = writeln!(out, "    subject: {subject}");
            }
            for line in m.body.as_deref().unwrap_or_default().lines() {
                let _ = writeln!(out, "    | {line}");
            }
            if let Some(problem) = &m.problem {
                let _ = writeln!(out, "    problem: {problem}");
            }
        }
    } else {
        print_table(out, &headers, planned.iter().map(row));
    }
    let problems = planned.iter().filter(|m| m.problem.is_some()).count();
    let _ = writeln!(
        out,
        "{} message(s) planned, {problems} cannot be prepared",
        planned.len()
    );
    for m in planned.iter().filter(|m| m.problem.is_some()) {
        let _ = writeln!(
            out,
            "  {} {} {}: {}",
            m.workflow,
            m.step,
            m.contact_id,
            m.problem.as_deref().unwrap_or_default()
        );
    }
}

/// Prints rows as a left-aligned text table.
fn print_table(out: &mut String, headers: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row);
    }
}

/// The connectors `serve` delivers through: SMTP if configured, else `.eml` files;
/// SMS into the SMS outbox until gateways are configured.
/// The SMS gateway file `--sms-gateway` names, read and checked.
fn sms_gateway_file(
    args: &ServeArgs,
) -> anyhow::Result<Option<palabre_sms::gateways::SmsGatewayFile>> {
    args.sms_gateway
        .as_ref()
        .map(|file| {
            palabre_lang::yaml::parse_file::<palabre_sms::gateways::SmsGatewayFile>(file)
                .map(|parsed| parsed.value)
                .map_err(|d| anyhow::anyhow!("{d}"))
        })
        .transpose()
}

fn connectors(
    args: &ServeArgs,
    gateway: Option<&palabre_sms::gateways::SmsGatewayFile>,
) -> anyhow::Result<Connectors> {
    let email = match &args.smtp_host {
        Some(host) => EmailConnector::smtp(&SmtpConfig {
            host: host.clone(),
            port: args.smtp_port,
            security: match args.smtp_security {
                SmtpSecurity::Starttls => Security::StartTls,
                SmtpSecurity::Tls => Security::Tls,
                SmtpSecurity::Plain => Security::Plain,
            },
            username: args.smtp_user.clone(),
            password: std::env::var(&args.smtp_password_env).ok(),
            from: args.from.clone(),
            timeout: std::time::Duration::from_secs(30),
            ca_certificate_pem: args
                .smtp_ca_file
                .as_ref()
                .map(|f| std::fs::read(f).with_context(|| format!("reading {}", f.display())))
                .transpose()?,
        })?,
        None => EmailConnector::files(args.outbox.clone(), &args.from)?,
    };
    let sms: Arc<dyn palabre_core::connector::Connector> = match gateway {
        Some(file) => file.connector()?,
        None => Arc::new(SmsOutbox::new(args.outbox.join("sms"))?),
    };
    Ok(Connectors::default().with(Arc::new(email)).with(sms))
}

/// A meeting starting a few minutes from `now`, with steps one to four minutes
/// before, written to a file so that it goes through the same loader as any other.
fn demo_workflow(now: DateTime<Utc>) -> anyhow::Result<PathBuf> {
    let start = now + chrono::TimeDelta::minutes(5);
    let yaml = format!(
        "kind: meeting\nid: demo\ntitle: \"Démonstration palabre\"\nplace: mopti/mopti\n\
         recurrence: \"{} {} {} {} *\"\ntimezone: UTC\nduration: 1h\nvenue: \"Salle de démonstration\"\n\
         recipients:\n  - role: leader\n  - role: mayor\n  - role: prefect\n\
         steps:\n  - {{ id: invitation, at: -4m, template: meeting-invitation, channels: [email, sms], calendar: true }}\n\
         \x20 - {{ id: reminder, at: -2m, template: meeting-reminder, channels: [sms, email] }}\n",
        start.minute(),
        start.hour(),
        start.day(),
        start.month()
    );
    let dir = std::env::temp_dir().join(format!("palabre-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("demo.yaml");
    std::fs::write(&file, yaml)?;
    Ok(file)
}

/// Reloads the definitions whenever a file of the workflows folder changes: a valid
/// new version replaces the running one, an invalid one is logged and ignored.
async fn reload_on_change(
    runtime: &Runtime,
    root: &Path,
    demo: Option<&Path>,
    every: std::time::Duration,
    mut known: u64,
) {
    if every.is_zero() {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(every).await;
        let fingerprint = folder_fingerprint(root);
        if fingerprint == known {
            continue;
        }
        known = fingerprint;
        let (mut loaded, mut diagnostics) = Definitions::load(root, None, RULE_EXTENSIONS);
        if let Some(demo) = demo {
            diagnostics.extend(loaded.add_workflow_file(demo));
        }
        if diagnostics.has_errors() {
            for d in diagnostics.sorted().iter().filter(|d| d.is_error()) {
                tracing::warn!(
                    file = %d.file.display(),
                    line = d.position.line,
                    column = d.position.column,
                    problem = %d.message,
                    "invalid definition"
                );
            }
            tracing::warn!("the edited definitions are invalid; the last good ones keep running");
        } else {
            tracing::info!(
                workflows = loaded.meetings.len(),
                rule_scripts = loaded.rules.scripts().count(),
                "definitions reloaded"
            );
            runtime.commands().replace_definitions(loaded);
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<Outcome> {
    let fingerprint = folder_fingerprint(&args.sources.workflows);
    let mut definitions = match load_definitions(&args.sources.workflows)? {
        Ok(d) => d,
        Err(outcome) => return Ok(outcome),
    };
    let store = Store::connect(args.sources.database_url())
        .await
        .context("opening the database")?;
    let mut demo = None;
    if args.demo {
        let csv = Path::new("examples/directory.csv");
        let bytes = std::fs::read(csv).with_context(|| format!("reading {}", csv.display()))?;
        let rules = DirectoryRules {
            places: &definitions.places,
            roles: &definitions.roles,
        };
        let contacts = contacts::parse_csv(csv, &bytes, &rules, &mut Diagnostics::default());
        store.upsert_contacts(&contacts).await?;
        let file = demo_workflow(SystemClock.now())?;
        if report(definitions.add_workflow_file(&file)) {
            return Ok(Outcome::Invalid);
        }
        demo = Some(file);
        tracing::info!(
            "demo: {} contacts imported; meeting 'demo' starts in 5 minutes, invitations in about a minute",
            contacts.len()
        );
    }
    let gateway = sms_gateway_file(&args)?;
    let connectors = connectors(&args, gateway.as_ref())?;
    let webhooks = palabre_sms::gateways::webhooks(gateway.as_ref().map(|g| &g.gateway))?;
    tracing::info!(
        workflows = definitions.meetings.len(),
        email = if args.smtp_host.is_some() { "smtp" } else { "file outbox" },
        sms = if args.sms_gateway.is_some() { "gateway" } else { "file outbox" },
        outbox = %args.outbox.display(),
        "palabre serving"
    );
    let mut config = RuntimeConfig::default();
    if args.retry_first_delay.seconds() <= 0 || args.retry_max_attempts < 1 {
        bail!("--retry-first-delay must be positive and --retry-max-attempts at least 1");
    }
    config.retry.first_delay = args.retry_first_delay.as_delta();
    config.retry.max_attempts = args.retry_max_attempts;
    if let Some(worker) = &args.worker {
        config.owner.clone_from(worker);
    }
    let signal = shutdown_signal()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        signal.await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let runtime = Arc::new(Runtime::new(
        store,
        definitions,
        connectors,
        Arc::new(SystemClock),
        config,
    ));
    if args.http != "off" {
        let listener = tokio::net::TcpListener::bind(&args.http)
            .await
            .with_context(|| format!("listening on {} for the HTTP API", args.http))?;
        tracing::info!(address = %listener.local_addr()?, "HTTP API listening");
        let state = palabre_api::ApiState {
            commands: runtime.commands().clone(),
            inbound_secret: std::env::var(&args.inbound_secret_env)
                .ok()
                .filter(|s| !s.is_empty()),
            webhooks,
        };
        let api = palabre_api::serve(listener, state, until_stopped(stopped.clone()));
        tokio::spawn(async move {
            if let Err(error) = api.await {
                tracing::warn!(%error, "the HTTP API stopped");
            }
        });
    }
    let reload_every = args.reload_every.as_delta().to_std().unwrap_or_default();
    let reload = reload_on_change(
        &runtime,
        &args.sources.workflows,
        demo.as_deref(),
        reload_every,
        fingerprint,
    );
    tokio::select! {
        result = runtime.run(until_stopped(stopped)) => result?,
        () = reload => {}
    }
    tracing::info!("stopped");
    Ok(Outcome::Ok)
}

/// A future that completes on SIGINT or SIGTERM. The handlers are installed now,
/// before the engine starts, so a signal that comes during the first tick is not
/// lost (nor does it kill the process outright).
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut interrupt =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            tracing::info!("shutting down: finishing the work in hand");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

async fn status(format: Format, sources: &Sources, out: &mut String) -> anyhow::Result<Outcome> {
    if !store::exists(sources.database_url()) {
        bail!(
            "no database at {}: nothing has run yet",
            sources.database_url()
        );
    }
    let store = Store::connect(sources.database_url())
        .await
        .context("opening the database")?;
    let counts = store.status(SystemClock.now()).await?;
    let recent = store.ledger(None, 2000).await?;
    store.close().await;
    let latest = |event: &str| -> Vec<_> {
        recent
            .iter()
            .filter(|e| e.event == event)
            .rev()
            .take(10)
            .collect()
    };
    let dead = latest("dead-letter");
    let rule_errors = latest("rule-error");
    match format {
        Format::Json => {
            let value = serde_json::json!({
                "counts": counts,
                "recent_dead_letters": dead,
                "recent_rule_errors": rule_errors,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        }
        Format::Table => {
            let rows = [
                ("timers due later", counts.due_later),
                ("timers late (due, not fired)", counts.late),
                ("timers fired", counts.fired),
                ("timers skipped (missed)", counts.skipped),
                ("messages queued", counts.queued),
                ("messages failed, retrying", counts.retrying),
                ("messages sent", counts.sent),
                ("messages dead-lettered", counts.dead_lettered),
                ("rule errors (default applied)", counts.rule_errors),
            ];
            print_table(
                out,
                &["", "count"],
                rows.iter()
                    .map(|(k, v)| vec![(*k).to_owned(), v.to_string()]),
            );
            if !counts.channels.is_empty() {
                writeln!(out)?;
                print_table(
                    out,
                    &[
                        "channel",
                        "queued",
                        "retrying",
                        "sent",
                        "delivered",
                        "undelivered",
                        "dead",
                    ],
                    counts.channels.iter().map(|c| {
                        vec![
                            c.channel.clone(),
                            c.queued.to_string(),
                            c.retrying.to_string(),
                            c.sent.to_string(),
                            c.delivered.to_string(),
                            c.undelivered.to_string(),
                            c.dead_lettered.to_string(),
                        ]
                    }),
                );
            }
            print_recent(out, "recent dead letters", &dead)?;
            print_recent(out, "recent rule errors", &rule_errors)?;
        }
    }
    Ok(Outcome::Ok)
}

/// Lists ledger entries under a title, if there are any.
fn print_recent(
    out: &mut String,
    title: &str,
    entries: &[&store::LedgerEntry],
) -> std::fmt::Result {
    if entries.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{title}:")?;
    for e in entries {
        writeln!(
            out,
            "  {} {} {} {} {}: {}",
            e.at.format("%Y-%m-%d %H:%M"),
            e.workflow.as_deref().unwrap_or("-"),
            e.step.as_deref().unwrap_or("-"),
            e.contact_id.as_deref().unwrap_or("-"),
            e.channel.as_deref().unwrap_or("-"),
            e.detail
        )?;
    }
    Ok(())
}

fn parse_instant(flag: &str, text: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| {
            format!("--{flag} '{text}': write an RFC 3339 instant, e.g. 2026-12-09T09:00:00Z")
        })
}

/// Applies a move or a cancellation through the runtime's rules, against the
/// database; a running server picks up the new timers and notices.
async fn change_occurrence(
    workflow: &str,
    at: &str,
    to: Option<&str>,
    reason: &str,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<Outcome> {
    let occurrence = parse_instant("at", at)?;
    let new_start = to.map(|to| parse_instant("to", to)).transpose()?;
    let commands = match offline_commands(sources).await? {
        Ok(c) => c,
        Err(outcome) => return Ok(outcome),
    };
    let changed = refused(
        commands
            .change_occurrence(workflow, occurrence, new_start, reason)
            .await,
    );
    commands.store().close().await;
    match changed? {
        Ok(report) => {
            let what = if new_start.is_some() {
                "moved"
            } else {
                "cancelled"
            };
            writeln!(
                out,
                "{workflow} {}: {what} (sequence {}); notice queued for {} participant(s), {} unreachable",
                occurrence.to_rfc3339(),
                report.sequence,
                report.notified,
                report.unreachable
            )?;
            Ok(Outcome::Ok)
        }
        Err(outcome) => Ok(outcome),
    }
}
