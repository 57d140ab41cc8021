//! `palabre backup` and `palabre restore`: a consistent copy of the SQLite
//! database taken while `serve` runs, and a copy put back in place of the
//! database, checked first and swapped in one rename. On PostgreSQL both say
//! which PostgreSQL tools to use instead.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use palabre_core::clock::{Clock, SystemClock};
use palabre_store::{self as store, Store};

use super::args::Sources;
use super::context::required_store;

/// Copies the SQLite database into the new file `file` with `VACUUM INTO`, under
/// a temporary name in the same folder first, so that `file` only ever appears
/// complete; an existing `file` is never overwritten. On PostgreSQL, prints the
/// `pg_dump` and `pg_restore` commands for the configured database instead.
pub async fn backup(file: &Path, sources: &Sources, out: &mut String) -> anyhow::Result<()> {
    let url = sources.database_url();
    if is_postgres(url) {
        postgres_advice(url, file, out)?;
        return Ok(());
    }
    let Some(database) = store::sqlite_file(url) else {
        bail!("{url} is not a database file: there is nothing to back up");
    };
    if exists(file) {
        bail!(
            "{} already exists: palabre backup never overwrites a file; name a new file, \
             or move the old one away first",
            file.display()
        );
    }
    let folder = folder_of(file);
    if !folder.is_dir() {
        bail!(
            "the folder {} does not exist: create it first, or name a file in another folder",
            folder.display()
        );
    }
    let partial = beside(file, "partial")?;
    remove_database_files(&partial)?;
    let partial_name = partial
        .to_str()
        .with_context(|| format!("{} is not a name SQLite can open", partial.display()))?;
    let store = required_store(sources, "there is nothing to back up").await?;
    let copied = store.backup_into(partial_name).await;
    store.close().await;
    let placed = copied
        .with_context(|| format!("copying {database} into {}", file.display()))
        .and_then(|()| sync(&partial))
        .and_then(|()| place_new(&partial, file));
    if placed.is_err() {
        let _ = remove_database_files(&partial);
    }
    placed?;
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let db = sources
        .db
        .as_deref()
        .map(|url| format!(" --db {}", shell_quoted(url)))
        .unwrap_or_default();
    writeln!(
        out,
        "backed up {database} into {} ({}): a complete database file, to keep or copy as it is.\n\
         To restore it, stop palabre serve, then run: palabre restore {}{db}",
        file.display(),
        human_size(size),
        shell_quoted(&file.display().to_string()),
    )?;
    Ok(())
}

/// Puts the backup `file` in place of the configured SQLite database. The
/// backup is copied beside the database under a temporary name, checked there
/// (palabre's tables, then opened as palabre opens it and its status read;
/// a backup from an older version is brought up to date), and renamed over the
/// database in one step; stale `-wal` and `-shm` files of the database are
/// removed first, as SQLite would otherwise apply them to the restored file. An
/// existing database is replaced only with `force`, and never while it is in use.
pub async fn restore(
    file: &Path,
    force: bool,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let url = sources.database_url();
    if is_postgres(url) {
        let shown = single_quoted(&without_password(url));
        bail!(
            "palabre restore puts a backup file in place of a SQLite database, and the database \
             configured is PostgreSQL. Restore a pg_dump archive with PostgreSQL's own tool, \
             after stopping palabre serve:\n  pg_restore --clean --if-exists --no-owner --dbname={shown} {}",
            shell_quoted(&file.display().to_string())
        );
    }
    let Some(target) = store::sqlite_file(url) else {
        bail!("{url} is not a database file: there is nothing to restore into");
    };
    let target = PathBuf::from(target);
    if !file.is_file() {
        bail!("no backup file at {}", file.display());
    }
    if non_empty(&with_suffix(file, "-wal")) {
        bail!(
            "{} has a {} file beside it: it is in use, or was not closed cleanly, and the file \
             alone may miss its latest changes. Restore a copy made by palabre backup instead",
            file.display(),
            with_suffix(file, "-wal").display()
        );
    }
    if same_file(file, &target) {
        bail!(
            "{} is the database itself ({url}): there is nothing to restore",
            file.display()
        );
    }
    if exists(&target) {
        if !force {
            bail!(
                "{} already exists: palabre restore does not replace a database unless asked. \
                 Add --force to replace it (what it holds now is lost: back it up first with \
                 palabre backup), or restore into a new file with --db sqlite://NEW-FILE",
                target.display()
            );
        }
        // A file that is not a database cannot be opened as one: only a
        // database in use stops a forced restore.
        if store::sqlite_in_use(&target).await.unwrap_or(false) {
            bail!(
                "{} is in use (is palabre serve running on it?): stop it, then restore",
                target.display()
            );
        }
    }
    let folder = folder_of(&target);
    if !folder.is_dir() {
        bail!(
            "the folder {} does not exist (for {}): create it first",
            folder.display(),
            target.display()
        );
    }
    let temporary = beside(&target, "restoring")?;
    remove_database_files(&temporary)?;
    let checked = copy_and_check(file, &temporary, sources).await;
    let contents = match checked {
        Ok(contents) => contents,
        Err(error) => {
            let _ = remove_database_files(&temporary);
            return Err(error);
        }
    };
    let swapped = remove_sidecars(&target)
        .and_then(|()| {
            std::fs::rename(&temporary, &target).with_context(|| {
                format!("putting the restored copy in place of {}", target.display())
            })
        })
        .map(|()| {
            // Makes the rename itself durable where folders can be synced.
            let _ = std::fs::File::open(&folder).and_then(|f| f.sync_all());
        });
    if swapped.is_err() {
        let _ = remove_database_files(&temporary);
    }
    swapped?;
    writeln!(
        out,
        "restored {} into {}: {contents}",
        file.display(),
        target.display()
    )?;
    Ok(())
}

/// Copies the backup to `temporary` and checks the copy: a palabre database,
/// which palabre opens and reads. Closing it folds everything into the file.
/// Returns what it holds, for people.
async fn copy_and_check(
    file: &Path,
    temporary: &Path,
    sources: &Sources,
) -> anyhow::Result<String> {
    let key = super::context::database_key(sources)?;
    std::fs::copy(file, temporary).with_context(|| {
        format!(
            "copying {} to {} before putting it in place",
            file.display(),
            temporary.display()
        )
    })?;
    let not_palabre = || format!("{} is not a palabre database", file.display());
    match store::is_palabre_database(temporary).await {
        Ok(true) => {}
        Ok(false) => bail!(
            "{} (it lacks the tables palabre keeps its timers, messages and ledger in)",
            not_palabre()
        ),
        Err(error) => return Err(error).with_context(not_palabre),
    }
    let name = temporary
        .to_str()
        .with_context(|| format!("{} is not a name SQLite can open", temporary.display()))?;
    let store = Store::connect(&store::sqlite_url_of(name), &key)
        .await
        .with_context(not_palabre)?;
    let read = async {
        let counts = store.status(SystemClock.now()).await?;
        let contacts = store.contacts().await?.len();
        anyhow::Ok((counts, contacts))
    }
    .await;
    store.close().await;
    let (counts, contacts) = read.with_context(not_palabre)?;
    if non_empty(&with_suffix(temporary, "-wal")) {
        bail!(
            "{} could not be written into one file (its {} file stayed)",
            temporary.display(),
            with_suffix(temporary, "-wal").display()
        );
    }
    remove_sidecars(temporary)?;
    sync(temporary)?;
    let timers = counts.due_later + counts.late + counts.fired + counts.skipped;
    let messages = counts.queued + counts.retrying + counts.sent + counts.dead_lettered;
    Ok(format!(
        "{contacts} contact(s), {timers} timer(s) ({} still to fire), {messages} message(s)",
        counts.due_later + counts.late
    ))
}

/// Gives `partial` the name `file` without ever replacing a file of that name:
/// a hard link fails if `file` exists; where links are not supported, a rename
/// after one more look.
fn place_new(partial: &Path, file: &Path) -> anyhow::Result<()> {
    let refused = || {
        anyhow::anyhow!(
            "{} appeared while the backup was written: it is left as it is, and the backup \
             not kept; run palabre backup again with a new file name",
            file.display()
        )
    };
    match std::fs::hard_link(partial, file) {
        Ok(()) => {
            std::fs::remove_file(partial)
                .with_context(|| format!("removing {}", partial.display()))?;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(refused()),
        Err(_) if exists(file) => Err(refused()),
        Err(_) => std::fs::rename(partial, file)
            .with_context(|| format!("naming the backup {}", file.display())),
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// What to run instead of `palabre backup` on PostgreSQL.
fn postgres_advice(url: &str, file: &Path, out: &mut String) -> std::fmt::Result {
    let shown = single_quoted(&without_password(url));
    let file = shell_quoted(&file.display().to_string());
    writeln!(
        out,
        "The database is PostgreSQL: palabre backup copies SQLite files only, and has copied \
         nothing. PostgreSQL's own tools take a consistent copy while palabre serve runs:\n\n\
         \x20 back up:  pg_dump --format=custom --file={file} {shown}\n\
         \x20 restore:  pg_restore --clean --if-exists --no-owner --dbname={shown} {file}\n\n\
         Stop palabre serve before restoring. The password is not shown here: both tools ask \
         for it, or read it from PGPASSWORD or ~/.pgpass."
    )
}

/// A PostgreSQL URL without its password (`user:secret@` → `user@`, and no
/// `password=` parameter), to be shown.
fn without_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|p| !p.to_ascii_lowercase().starts_with("password="))
                .collect();
            if kept.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => tail.to_owned(),
    };
    if scheme.is_empty() {
        format!("{authority}{tail}")
    } else {
        format!("{scheme}://{authority}{tail}")
    }
}

/// `text` in single quotes, as one shell word (a URL's `?` and `&` would
/// otherwise be read by the shell).
fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `text` as one shell word: as it is when that is safe, else in single quotes.
fn shell_quoted(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c));
    if plain {
        text.to_owned()
    } else {
        single_quoted(text)
    }
}

/// Whether anything (a file, a folder, a dangling link) has this name.
fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

fn non_empty(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The folder a file is in (`.` for a bare name).
fn folder_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `file` with `suffix` appended to its name (`palabre.db` → `palabre.db-wal`).
fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A temporary name for `file` in its folder, naming what it is for and this
/// process (`palabre.db.restoring-4242`): a rename from there is atomic.
fn beside(file: &Path, what: &str) -> anyhow::Result<PathBuf> {
    if file.file_name().is_none() {
        bail!("{} does not name a file", file.display());
    }
    Ok(with_suffix(
        file,
        &format!(".{what}-{}", std::process::id()),
    ))
}

/// Removes the `-wal`, `-shm` and `-journal` files SQLite may keep beside `file`.
fn remove_sidecars(file: &Path) -> anyhow::Result<()> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let sidecar = with_suffix(file, suffix);
        match std::fs::remove_file(&sidecar) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("removing {}", sidecar.display()));
            }
        }
    }
    Ok(())
}

/// Removes a database file and what SQLite keeps beside it, if they exist.
fn remove_database_files(file: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", file.display())),
    }
    remove_sidecars(file)
}

/// Writes a file's contents through to the disk.
fn sync(file: &Path) -> anyhow::Result<()> {
    std::fs::File::open(file)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("writing {} to disk", file.display()))
}

fn human_size(bytes: u64) -> String {
    const KB: u64 = 1024;
    const MB: u64 = 1024 * KB;
    if bytes >= MB {
        format!("{}.{} MB", bytes / MB, (bytes % MB) * 10 / MB)
    } else if bytes >= KB {
        format!("{} KB", bytes.div_ceil(KB))
    } else {
        format!("{bytes} bytes")
    }
}
