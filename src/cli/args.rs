//! The command line's shape: every command, subcommand and flag with its help
//! text (clap derive), and the small conversions that belong to a flag's type
//! (`--db`'s default, `--kind` to the engine's schema kind). Nothing here runs.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use palabre_core::offset::Offset;
use palabre_plan::schema::SchemaKind;
use palabre_store::DEFAULT_URL;

#[derive(Parser)]
#[command(
    name = "palabre",
    version,
    about = "Workflows for a community dialogue mechanism: meetings, reminders, escalation."
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Who acts, as the ledger records it (default: the system user, `USER` then
    /// `LOGNAME`, else `cli`). Never put in messages people receive.
    #[arg(
        long = "as",
        global = true,
        env = "PALABRE_OPERATOR",
        value_name = "NAME"
    )]
    pub operator: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SchemaFor {
    Workflow,
    Places,
    Roles,
    Template,
    Calendar,
    RuleCases,
    Milestones,
    Escalation,
    Retention,
    Calls,
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
            SchemaFor::Retention => SchemaKind::Retention,
            SchemaFor::Calls => SchemaKind::Calls,
        }
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(clap::Args)]
pub struct Sources {
    /// The workflows folder (places.yaml, roles.yaml, templates/, workflow files).
    #[arg(long, default_value = "workflows", env = "PALABRE_WORKFLOWS")]
    pub workflows: PathBuf,
    /// Database URL: sqlite://FILE (the default) or postgres://...
    #[arg(long, env = "PALABRE_DATABASE_URL")]
    pub db: Option<String>,
    /// The database's key file (made by `palabre key init`). Without it the
    /// key is read from PALABRE_KEY (the key file's one line).
    #[arg(long, env = "PALABRE_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

impl Sources {
    pub fn database_url(&self) -> &str {
        self.db.as_deref().unwrap_or(DEFAULT_URL)
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Check workflow files (default: the whole workflows folder) and report every problem.
    Validate {
        /// Workflow files or a workflows folder.
        paths: Vec<PathBuf>,
        #[command(flatten)]
        sources: Sources,
    },
    /// List every recorded clip calls can play, per language, with its length
    /// or MISSING: what a programme records (workflows/audio/<language>/<clip>.wav).
    Clips {
        /// The workflows folder.
        #[arg(long, default_value = "workflows", env = "PALABRE_WORKFLOWS")]
        workflows: PathBuf,
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
    /// The key the directory and every personal text are encrypted with.
    #[command(subcommand)]
    Key(KeyCommand),
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
    Preview(PreviewArgs),
    /// Emergency purge: erase every contact at or below a place, as `contacts
    /// erase` erases one, in one transaction.
    ///
    /// Names, phones and emails of everyone at PLACE and below (`mopti/koro`
    /// takes in `mopti/koro/bondo`) are destroyed everywhere, their ids replaced
    /// by pseudonyms (roles and places kept, so counts stay), their queued
    /// messages dropped; on SQLite the file is rewritten so the bytes are gone.
    /// One ledger entry says where, how many and who, never a name. This cannot
    /// be undone; backups made before still hold everything.
    Purge {
        /// The place path (`mopti/koro`), as in places.yaml: erase everyone at or below it.
        #[arg(
            long,
            required_unless_present = "expired",
            conflicts_with = "expired",
            requires = "confirm"
        )]
        place: Option<String>,
        /// The same place again, exactly: nothing is done otherwise.
        #[arg(long, value_name = "PLACE")]
        confirm: Option<String>,
        /// Remove instead the texts past the keeping times of `retention.yaml`.
        #[arg(long)]
        expired: bool,
        #[command(flatten)]
        sources: Sources,
    },
    /// Copy the database into a new file, even while `serve` runs (on PostgreSQL: how to use pg_dump).
    ///
    /// The copy is consistent and a complete database file of its own, to keep or
    /// copy as it is. FILE must not exist: it is never overwritten. On PostgreSQL
    /// nothing is copied; the pg_dump and pg_restore commands for the database are
    /// printed instead.
    Backup {
        /// The new file to write the copy to.
        file: PathBuf,
        #[command(flatten)]
        sources: Sources,
    },
    /// Put a backup made by `palabre backup` in place of the database (stop `serve` first).
    ///
    /// FILE is checked to be a palabre database first, then the database file
    /// (--db) is replaced in one step, never left half-written; stale -wal and
    /// -shm files beside it are removed. An existing database is replaced only
    /// with --force, and never while a program has it open.
    Restore {
        /// The backup file to restore.
        file: PathBuf,
        /// Replace the database if it exists (what it holds is lost).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        sources: Sources,
    },
}

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub sources: Sources,
    /// An SMS gateway's configuration (YAML: `provider: orange|twilio|infobip|africas_talking|generic`
    /// and its settings; secrets are named environment variables). Without it, SMS go to `outbox/sms/`.
    #[arg(long, env = "PALABRE_SMS_GATEWAY", value_name = "FILE.yaml")]
    pub sms_gateway: Option<PathBuf>,
    /// A voice gateway's configuration (YAML: `gateway: {provider: twilio, …}`, `tries`,
    /// `spacing`; secrets are named environment variables), for contacts reached by
    /// calls. It needs the webhook secret (`--inbound-secret-env`): the provider
    /// fetches each call's clips under it. Without it, calls are not made and go by
    /// the contact's next channel.
    #[arg(long, env = "PALABRE_VOICE_GATEWAY", value_name = "FILE.yaml")]
    pub voice_gateway: Option<PathBuf>,
    /// Where messages go when no gateway is configured: `.eml` files for email, `sms/` text files.
    #[arg(long, default_value = "outbox", env = "PALABRE_OUTBOX")]
    pub outbox: PathBuf,
    /// SMTP server; without it, emails are written to the outbox folder.
    #[arg(long, env = "PALABRE_SMTP_HOST")]
    pub smtp_host: Option<String>,
    #[arg(long, env = "PALABRE_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,
    #[arg(long, env = "PALABRE_SMTP_SECURITY", value_enum, default_value_t = SmtpSecurity::Starttls)]
    pub smtp_security: SmtpSecurity,
    #[arg(long, env = "PALABRE_SMTP_USER")]
    pub smtp_user: Option<String>,
    /// The NAME of the environment variable holding the SMTP password (never the password itself).
    #[arg(
        long,
        env = "PALABRE_SMTP_PASSWORD_ENV",
        default_value = "PALABRE_SMTP_PASSWORD"
    )]
    pub smtp_password_env: String,
    /// A CA certificate (PEM) to trust for the SMTP server, besides the public roots.
    #[arg(long, env = "PALABRE_SMTP_CA_FILE")]
    pub smtp_ca_file: Option<PathBuf>,
    /// Sender of emails.
    #[arg(
        long,
        env = "PALABRE_MAIL_FROM",
        default_value = "palabre <palabre@example.org>"
    )]
    pub from: String,
    /// This worker's name in leases (several workers can share a PostgreSQL database).
    #[arg(long, env = "PALABRE_WORKER")]
    pub worker: Option<String>,
    /// Run the demo: its own database and outbox under demo/ (the real ones are not
    /// touched), examples/directory.csv imported there, and a demo meeting starting
    /// in a few minutes. A real SMTP server or SMS gateway is refused.
    #[arg(long)]
    pub demo: bool,
    /// With --demo, send through the configured SMTP server or SMS gateway anyway
    /// (to the invented addresses and numbers of examples/directory.csv).
    #[arg(long, requires = "demo")]
    pub demo_with_real_connectors: bool,
    /// Delay before retrying a failed delivery the first time (doubles each time), e.g. 30s.
    #[arg(long, default_value = "30s")]
    pub retry_first_delay: Offset,
    /// Delivery attempts before a message is dead-lettered.
    #[arg(long, default_value_t = 8)]
    pub retry_max_attempts: i64,
    /// The NAME of the environment variable holding the secret inbound SMS webhooks
    /// put in their URL (`/inbound/sms/<secret>`); unset: no inbound SMS.
    #[arg(long, default_value = "PALABRE_INBOUND_SECRET")]
    pub inbound_secret_env: String,
    /// Address of the HTTP API (`off` to serve none).
    #[arg(long, default_value = "127.0.0.1:8080", env = "PALABRE_HTTP")]
    pub http: String,
    /// The address people reach this server's API at (`https://palabre.example.org`):
    /// meeting emails then carry each recipient's link to answer yes or no.
    /// Without it, emails ask people to confirm with the secretariat.
    #[arg(long, env = "PALABRE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How often the workflows folder is looked at for edits, which take effect
    /// without a restart (`0s` turns hot reload off).
    #[arg(long, default_value = "2s", env = "PALABRE_RELOAD_EVERY")]
    pub reload_every: Offset,
}

#[derive(clap::Args)]
pub struct PreviewArgs {
    /// Start of the window: YYYY-MM-DD (00:00 UTC) or an RFC 3339 instant. Default: now.
    #[arg(long)]
    pub from: Option<String>,
    /// Length of the window in days (1 to 366).
    #[arg(long, default_value_t = 14)]
    pub days: u32,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print each message's text under its line (table format).
    #[arg(long)]
    pub show_text: bool,
    /// Plan against this directory CSV instead of the database (nothing is imported).
    #[arg(long, value_name = "FILE.csv")]
    pub directory: Option<PathBuf>,
    #[command(flatten)]
    pub sources: Sources,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SmtpSecurity {
    Starttls,
    Tls,
    Plain,
}

#[derive(Subcommand)]
pub enum OccurrenceCommand {
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
pub enum TimelineFormat {
    Table,
    Json,
    Ics,
}

#[derive(Subcommand)]
pub enum CaseCommand {
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
    /// The cases a coordinator follows: open ones by default, with their level,
    /// state, place, age and next deadline.
    List {
        /// Resolved cases too.
        #[arg(long)]
        all: bool,
        /// Only cases with a deadline passed.
        #[arg(long)]
        overdue: bool,
        /// Only this ladder's cases.
        #[arg(long, value_name = "LADDER")]
        workflow: Option<String>,
        /// Only cases at this place or below (`mopti/koro`).
        #[arg(long)]
        place: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        sources: Sources,
    },
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
pub enum KeyCommand {
    /// Write a new random key to FILE, readable by its owner only; an existing
    /// file is never overwritten.
    ///
    /// Keep the key apart from the database and its backups (a USB stick, a
    /// password manager, the server's secrets): whoever has both reads the
    /// directory; whoever loses the key loses the database.
    Init {
        /// The key file to write.
        #[arg(long, env = "PALABRE_KEY_FILE", value_name = "FILE")]
        key_file: PathBuf,
    },
    /// Re-encrypt everything under a new key (stop `serve` first).
    ///
    /// The database's key is --key-file (or PALABRE_KEY); the new one
    /// --new-key-file (make it with `palabre key init`). Batch by batch, each in
    /// its own transaction: interrupted, run the same command again to finish.
    /// Until it finishes the database opens for nothing else. After it, the old
    /// key opens nothing; backups made before still need it.
    Rotate {
        /// The new key file.
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
        #[command(flatten)]
        sources: Sources,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once and only its hash is kept.
    Create {
        /// observer (reads, never a case's description), coordinator (also acts and reads descriptions), administrator (everything).
        #[arg(long)]
        role: String,
        /// A place path the token is limited to (`mopti`), or `national`.
        #[arg(long)]
        scope: String,
        /// Who or what the token is for.
        #[arg(long, default_value = "")]
        label: String,
        /// How long the token is good for (`30d`, `12h`, `1w`; at most a year);
        /// it never expires without this.
        #[arg(long)]
        expires: Option<String>,
        #[command(flatten)]
        sources: Sources,
    },
    /// List the tokens (never their secrets): label, role, scope, created, last
    /// used, expiry, revoked.
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        sources: Sources,
    },
    /// Revoke a token: refused at once from then on, kept in the list for the record.
    Revoke {
        id: String,
        #[command(flatten)]
        sources: Sources,
    },
}

#[derive(clap::Args)]
pub struct CaseNote {
    pub id: String,
    /// What was done, or why.
    #[arg(long, default_value = "")]
    pub note: String,
    #[command(flatten)]
    pub sources: Sources,
}

#[derive(Subcommand)]
pub enum MilestoneCommand {
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
pub enum RulesCommand {
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
pub enum ContactsCommand {
    /// Import (or re-import) a directory CSV: id,name,roles,place,phone,email,language,channels.
    Import {
        file: PathBuf,
        /// The file is the whole directory: contacts missing from it are
        /// deactivated (and those back in it reactivated), after confirmation.
        #[arg(long)]
        sync: bool,
        /// With --sync: do not ask for confirmation (for scripts).
        #[arg(long, requires = "sync")]
        yes: bool,
        #[command(flatten)]
        sources: Sources,
    },
    /// List the directory, inactive contacts included and marked, with who
    /// stopped SMS; phones and emails are masked unless --reveal.
    List {
        #[arg(long)]
        reveal: bool,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        sources: Sources,
    },
    /// Remove a contact from the directory; messages queued for them become dead letters.
    Remove {
        id: String,
        #[command(flatten)]
        sources: Sources,
    },
    /// Deactivate a contact (a replaced mayor): kept for the record, sent nothing more.
    Deactivate {
        id: String,
        #[command(flatten)]
        sources: Sources,
    },
    /// Reactivate a deactivated contact.
    Activate {
        id: String,
        #[command(flatten)]
        sources: Sources,
    },
    /// Erase a person: name, phone and email destroyed everywhere (the
    /// directory, the texts of their messages, the ledger), their id replaced
    /// by a pseudonym that says nothing, so counts and history stay (role and
    /// place kept); their queued messages dropped. After confirmation.
    Erase {
        id: String,
        /// Why (up to 300 characters), as the ledger records it.
        #[arg(long)]
        reason: String,
        /// Do not ask for confirmation (for scripts).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        sources: Sources,
    },
    /// Print everything stored about one person as JSON, for a subject-access
    /// request (in clear); the ledger records who exported whom, not what.
    Export {
        id: String,
        #[command(flatten)]
        sources: Sources,
    },
}
