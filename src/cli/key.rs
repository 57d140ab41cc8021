//! `palabre key`: the database's encryption key. `init` writes a new key file
//! readable by its owner only; `rotate` re-encrypts the database under a new
//! key; `serve --demo` gets its own key file beside its database.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::{Context, bail};
use palabre_store::{Key, Store};

use super::args::Sources;
use super::context::{LOG_TARGET, database_key, read_key_file};

/// Writes a new key to `path`, readable and writable by its owner only; an
/// existing file is left as it is and refused.
pub fn init(path: &Path, out: &mut String) -> anyhow::Result<()> {
    let key = write_new_key(path)?;
    writeln!(
        out,
        "wrote a new key (key {}) to {}, readable by you only.\n\
         Give it to palabre with --key-file {} (or PALABRE_KEY_FILE). Keep a copy apart from \
         the database and its backups: without the key, nothing in them can be read.",
        key.id(),
        path.display(),
        path.display()
    )?;
    Ok(())
}

/// A new key, written to a new file at `path` (mode 0600).
pub fn write_new_key(path: &Path) -> anyhow::Result<Key> {
    let key = Key::generate()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| match path.exists() {
            true => format!(
                "{} exists already: a key file is never overwritten (the data under that key \
                 would be lost); name another file",
                path.display()
            ),
            false => format!("writing the key file {}", path.display()),
        })?;
    file.write_all(key.to_text().as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing the key file {}", path.display()))?;
    Ok(key)
}

/// The key of the demo's own database: the file at `path`, made now if there is
/// none (and said so).
pub fn demo_key(path: &Path) -> anyhow::Result<Key> {
    if path.exists() {
        return read_key_file(path);
    }
    let key = write_new_key(path)?;
    tracing::info!(
        target: LOG_TARGET,
        "demo: made the demo database's key, {} (a real database needs its own: palabre key init)",
        path.display()
    );
    Ok(key)
}

/// Re-encrypts the database under the key in `new_key_file`.
pub async fn rotate(
    new_key_file: &Path,
    sources: &Sources,
    out: &mut String,
) -> anyhow::Result<()> {
    let old = database_key(sources)?;
    let new = read_key_file(new_key_file)?;
    if old.id() == new.id() {
        bail!(
            "{} holds the database's key already: make a new key with `palabre key init`",
            new_key_file.display()
        );
    }
    let url = sources.database_url();
    if !palabre_store::exists(url) {
        bail!("no database at {url}: nothing to re-encrypt");
    }
    if let Some(file) = palabre_store::sqlite_file(url)
        && palabre_store::sqlite_in_use(Path::new(&file)).await?
    {
        bail!(
            "another program has {file} open: stop `palabre serve` (and any other palabre \
             command on it) first, then rotate"
        );
    }
    let rotated = Store::rotate_key(url, &old, &new)
        .await
        .context("re-encrypting the database")?;
    if !rotated.changed {
        writeln!(
            out,
            "{url} is under key {} already: nothing to do",
            new.id()
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "re-encrypted {} row(s) of {url} under key {} (from key {}): it opens with {} only now. \
         Backups made before still need the old key.",
        rotated.rows,
        new.id(),
        old.id(),
        new_key_file.display()
    )?;
    if rotated.files_rewritten == Some(false) {
        writeln!(
            out,
            "another program had the database open: old values may stay in its -wal file until \
             it closes"
        )?;
    }
    Ok(())
}
