//! What many commands share: the rule functions plugins add, loading the
//! definitions (their diagnostics on stderr), reading files and directory CSVs,
//! the database's key (`--key-file`, else `PALABRE_KEY`, else a refusal that
//! says how to make one) and opening the database, the engine's commands over
//! it and their refusals, who acts, how a command's end maps to an exit code
//! (0 ok, 1 invalid input, 2 usage or I/O error), and printing tables.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use palabre_core::clock::SystemClock;
use palabre_core::diagnostic::Diagnostics;
use palabre_core::rule_function::RuleFunction;
use palabre_engine::commands::{CommandError, Commands};
use palabre_lang::contacts::{self, Contact, DirectoryRules};
use palabre_plan::definitions::Definitions;
use palabre_store::{self as store, Key, Store, StoreError};

use super::args::Sources;

/// What plugins add to the rule language. Plugins are linked in, so their
/// functions exist whether or not their connector is configured.
pub const RULE_EXTENSIONS: &[RuleFunction] = palabre_sms::RULE_FUNCTIONS;

/// The target of the binary's log events, whichever module logs them: filters
/// (`PALABRE_LOG=palabre=debug`) and JSON logs name the binary, not its modules.
pub const LOG_TARGET: &str = "palabre";

/// A command stopped on invalid input whose problems are already on stderr:
/// exit code 1, and nothing more is said.
#[derive(Debug)]
pub struct Invalid;

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid input (reported above)")
    }
}

impl std::error::Error for Invalid {}

/// Writes what a command printed to stdout, then maps how it ended to the exit
/// code: 0 done, 1 invalid input (already reported), 2 any other error (said
/// here).
pub fn finish(out: &str, result: anyhow::Result<()>) -> ExitCode {
    // A reader that stops early (`| head`) is not an error of ours.
    if let Err(e) = std::io::stdout().lock().write_all(out.as_bytes())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write output: {e}");
        return ExitCode::from(2);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Invalid>() => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Prints diagnostics to stderr with a summary; [`Invalid`] if there were errors.
pub fn report(diagnostics: Diagnostics) -> Result<(), Invalid> {
    let errors = diagnostics.error_count();
    let warnings = diagnostics.warning_count();
    let mut err = std::io::stderr().lock();
    for d in diagnostics.sorted() {
        let _ = writeln!(err, "{d}\n");
    }
    if errors > 0 || warnings > 0 {
        let _ = writeln!(err, "{errors} error(s), {warnings} warning(s)");
    }
    if errors > 0 { Err(Invalid) } else { Ok(()) }
}

/// Loads definitions, reporting their problems; [`Invalid`] if they have errors.
pub fn load_definitions(root: &Path) -> anyhow::Result<Definitions> {
    if !root.is_dir() {
        bail!("workflows folder '{}' does not exist", root.display());
    }
    let (definitions, diagnostics) = Definitions::load(root, None, RULE_EXTENSIONS);
    report(diagnostics)?;
    Ok(definitions)
}

/// A file's bytes; the error names the file.
pub fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The contacts of a directory CSV, checked against the definitions' places and
/// roles; the problems of rejected rows go to `diagnostics`.
pub fn parse_directory(
    csv: &Path,
    bytes: &[u8],
    definitions: &Definitions,
    diagnostics: &mut Diagnostics,
) -> Vec<Contact> {
    let rules = DirectoryRules {
        places: &definitions.places,
        roles: &definitions.roles,
    };
    contacts::parse_csv(csv, bytes, &rules, diagnostics)
}

/// The environment variable that may hold the key itself.
const KEY_VARIABLE: &str = "PALABRE_KEY";

/// The key in the file at `path`, which only its owner may read.
pub fn read_key_file(path: &Path) -> anyhow::Result<Key> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("reading the key file {}", path.display()))?;
    let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "the key file {} can be read by others (mode {mode:o}): make it yours alone \
             (chmod 600 {}) and check who may have copied it",
            path.display(),
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the key file {}", path.display()))?;
    Key::parse(&text).with_context(|| format!("the key file {}", path.display()))
}

/// Whether a key is given at all (`--key-file`, `PALABRE_KEY_FILE` or `PALABRE_KEY`).
pub fn has_key(sources: &Sources) -> bool {
    sources.key_file.is_some() || std::env::var_os(KEY_VARIABLE).is_some()
}

/// The key of the database `sources` names: its key file, else `PALABRE_KEY`.
pub fn database_key(sources: &Sources) -> anyhow::Result<Key> {
    if let Some(path) = &sources.key_file {
        return read_key_file(path);
    }
    match std::env::var(KEY_VARIABLE) {
        Ok(text) => Key::parse(&text).with_context(|| format!("the key in {KEY_VARIABLE}")),
        Err(_) => {
            let url = sources.database_url();
            // The demo's database is opened by hand too, to look at it.
            let demo = if url.trim_start_matches("sqlite://").trim_start_matches("./")
                == "demo/palabre.db"
            {
                " (the demo's key is demo/palabre.key: --key-file demo/palabre.key)"
            } else {
                ""
            };
            bail!(
                "no key for the database {url}{demo}: palabre keeps the directory and every \
                 personal text encrypted, and needs the database's key. Give its key file with \
                 --key-file FILE (or PALABRE_KEY_FILE); for a new database, make one first with \
                 `palabre key init --key-file FILE`"
            )
        }
    }
}

/// The database `--db` names, created if it does not exist yet.
pub async fn open_store(sources: &Sources) -> anyhow::Result<Store> {
    let url = sources.database_url();
    let new = !store::exists(url);
    let key = database_key(sources)?;
    let store = Store::connect(url, &key)
        .await
        .context("opening the database")?;
    if new {
        // Only commands that write get here: a mistyped --db shows at once.
        tracing::warn!(
            target: LOG_TARGET,
            "created a new, empty database at {url}, encrypted under key {}",
            key.id()
        );
    } else if store.rows_sealed_at_opening() > 0 {
        tracing::warn!(
            target: LOG_TARGET,
            "encrypted {} row(s) of {url} that were in clear, under key {}: from now on it \
             opens with this key only",
            store.rows_sealed_at_opening(),
            key.id()
        );
    }
    Ok(store)
}

/// The database if there is one: commands that only read do not create it.
pub async fn existing_store(sources: &Sources) -> anyhow::Result<Option<Store>> {
    if !store::exists(sources.database_url()) {
        return Ok(None);
    }
    open_store(sources).await.map(Some)
}

/// The database, which must already exist; `absent` says what its absence means.
pub async fn required_store(sources: &Sources, absent: &str) -> anyhow::Result<Store> {
    match existing_store(sources).await? {
        Some(store) => Ok(store),
        None => bail!("no database at {}: {absent}", sources.database_url()),
    }
}

/// What `read` gives from the database, closed after; without a database
/// nothing has been recorded, and the default is the answer.
pub async fn read_if_exists<T: Default>(
    sources: &Sources,
    read: impl AsyncFnOnce(&Store) -> Result<T, StoreError>,
) -> anyhow::Result<T> {
    let Some(store) = existing_store(sources).await? else {
        return Ok(T::default());
    };
    let value = read(&store).await?;
    store.close().await;
    Ok(value)
}

/// The engine's commands over the database with these definitions.
pub async fn commands_over(
    sources: &Sources,
    definitions: Definitions,
) -> anyhow::Result<Commands> {
    let store = open_store(sources).await?;
    Ok(Commands::new(store, definitions, Arc::new(SystemClock)))
}

/// The engine's commands over the database, for CLI commands that change
/// things and leave the sending to `serve`.
pub async fn offline_commands(sources: &Sources) -> anyhow::Result<Commands> {
    let definitions = load_definitions(&sources.workflows)?;
    commands_over(sources, definitions).await
}

/// Ends a change made through `commands`: a refusal is the user's to mend (the
/// reason on stderr, exit code 1), a database error is an error; then the
/// database is closed.
pub async fn refused<T>(commands: &Commands, result: Result<T, CommandError>) -> anyhow::Result<T> {
    let result = match result {
        Ok(done) => Ok(done),
        Err(CommandError::Store(error)) => Err(error.into()),
        Err(refusal) => {
            eprintln!("error: {refusal}");
            Err(Invalid.into())
        }
    };
    commands.store().close().await;
    result
}

/// Who acts, as the ledger names them: `--as NAME` (or `PALABRE_OPERATOR`),
/// else the system user (`USER`, then `LOGNAME`), else `cli`.
pub fn operator(named: Option<&str>) -> String {
    let given = |name: String| {
        let name = name.trim().to_owned();
        (!name.is_empty()).then_some(name)
    };
    named
        .map(str::to_owned)
        .and_then(given)
        .or_else(|| std::env::var("USER").ok().and_then(given))
        .or_else(|| std::env::var("LOGNAME").ok().and_then(given))
        .unwrap_or_else(|| "cli".to_owned())
}

/// `text` at the end of `out`, moved rather than copied when `out` is empty
/// (a preview's JSON can be tens of megabytes).
pub fn append(out: &mut String, text: String) {
    if out.is_empty() {
        *out = text;
    } else {
        out.push_str(&text);
    }
}

/// Prints rows as a left-aligned text table.
pub fn print_table(out: &mut String, headers: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    for line in table_lines(headers, rows) {
        let _ = writeln!(out, "{line}");
    }
}

/// A table's lines, columns padded to their widest cell: the header line, then
/// one line per row.
pub fn table_lines(headers: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Vec<String> {
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let capacity = widths.iter().map(|w| w + 2).sum();
    let line = |cells: Vec<String>| {
        let mut line = String::with_capacity(capacity);
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let padding = width.saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', padding));
        }
        line.truncate(line.trim_end().len());
        line
    };
    std::iter::once(headers.iter().map(|h| (*h).to_owned()).collect())
        .chain(rows)
        .map(line)
        .collect()
}

/// The randomness of the pseudonyms: a key of 32 bytes from the operating
/// system, and for the n-th pseudonym the first 6 bytes of HMAC-SHA256(key, n),
/// so that drawing one cannot fail halfway through the transaction.
pub fn pseudonyms() -> anyhow::Result<impl FnMut() -> [u8; 6] + Send> {
    use ring::rand::SecureRandom as _;
    let mut seed = [0_u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| anyhow::anyhow!("the system gave no random bytes for pseudonyms"))?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &seed);
    let mut n: u64 = 0;
    Ok(move || {
        n += 1;
        let tag = ring::hmac::sign(&key, &n.to_be_bytes());
        let mut bytes = [0_u8; 6];
        for (byte, from) in bytes.iter_mut().zip(tag.as_ref()) {
            *byte = *from;
        }
        bytes
    })
}
