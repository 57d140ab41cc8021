//! Finding definition files: folder walks that skip hidden entries, bounded in
//! depth, and the fingerprint of a folder's contents that hot reload watches.

use std::path::{Path, PathBuf};

use palabre_core::diagnostic::{Diagnostic, Diagnostics, Position};

/// Deepest folder nesting searched for YAML files (and a guard against link loops).
const MAX_DIR_DEPTH: usize = 8;

/// Every file below `dir` whose extension is one of `extensions`, sorted,
/// skipping hidden entries.
pub fn files_below(dir: &Path, extensions: &[&str], diagnostics: &mut Diagnostics) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), 0)];
    while let Some((folder, depth)) = pending.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) => {
                diagnostics.push(Diagnostic::error(
                    &folder,
                    Position::START,
                    format!("cannot read folder: {e}"),
                ));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if hidden {
                continue;
            }
            if path.is_dir() {
                if depth < MAX_DIR_DEPTH {
                    pending.push((path, depth + 1));
                }
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Every `.yaml`/`.yml` file below `dir`, sorted, skipping hidden entries.
pub fn yaml_files(dir: &Path, diagnostics: &mut Diagnostics) -> Vec<PathBuf> {
    files_below(dir, &["yaml", "yml"], diagnostics)
}

/// A fingerprint of every definition file below `root` (names and contents):
/// `serve` reloads when it changes.
pub fn folder_fingerprint(root: &Path) -> u64 {
    let files = files_below(root, &["yaml", "yml", "rhai"], &mut Diagnostics::default());
    let mut hash = 0_u64;
    for file in files {
        let contents = std::fs::read(&file).unwrap_or_default();
        hash = palabre_core::fingerprint::fnv1a([
            &hash.to_le_bytes()[..],
            file.to_string_lossy().as_bytes(),
            &contents,
        ]);
    }
    hash
}
