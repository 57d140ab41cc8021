//! A file outbox's one file per message, written exactly once: a message
//! delivered again after a crash (at-least-once delivery) finds its file there
//! and leaves it as it is, so anything that picks files up as they appear (a
//! script that forwards them) never sees one twice, nor a half-written one.

use std::io::ErrorKind;
use std::path::Path;

/// Writes `contents` as `folder/name` unless a file of that name exists; true
/// if it was written now. The file appears whole: it is written under a hidden
/// temporary name, then linked to its name, which fails if the name is taken.
pub fn write_once(folder: &Path, name: &str, contents: &[u8]) -> std::io::Result<bool> {
    let target = folder.join(name);
    if target.exists() {
        return Ok(false);
    }
    let temporary = folder.join(format!(".{name}.tmp"));
    std::fs::write(&temporary, contents)?;
    let linked = match std::fs::hard_link(&temporary, &target) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        // A file system without links: a rename, still whole, still once unless
        // another worker wrote the same message in the same instant.
        Err(_) if !target.exists() => std::fs::rename(&temporary, &target).map(|()| true),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&temporary);
    linked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_written_once_and_never_rewritten() {
        let dir = std::env::temp_dir().join(format!("palabre-outbox-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(write_once(&dir, "m.txt", b"first").unwrap());
        assert!(!write_once(&dir, "m.txt", b"second").unwrap());
        assert_eq!(std::fs::read(dir.join("m.txt")).unwrap(), b"first");
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
