//! `palabre validate`: the shipped workflows pass; a corpus of broken files is
//! rejected with exactly the expected positions and messages.

use std::collections::BTreeSet;
use std::path::Path;

use crate::util::{palabre, repo, workspace_with_directory};

#[test]
fn shipped_workflows_are_valid() {
    let run = palabre(&repo(), &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("ok: 15 workflow(s) valid"),
        "{}",
        run.stderr
    );
}

/// `(file, line, column, words)` for every `# expect: LINE:COL: words` line of the
/// corpus (`// expect:` in rule scripts).
fn expectations(root: &Path) -> BTreeSet<(String, usize, usize, String)> {
    let mut found = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            for line in text.lines() {
                let Some(rest) = line
                    .strip_prefix("# expect: ")
                    .or_else(|| line.strip_prefix("// expect: "))
                else {
                    continue;
                };
                let mut parts = rest.splitn(3, ':');
                let line_no = parts.next().unwrap().parse().unwrap();
                let column = parts.next().unwrap().parse().unwrap();
                let words = parts.next().unwrap().trim().to_owned();
                let relative = path.strip_prefix(repo()).unwrap().display().to_string();
                found.insert((relative, line_no, column, words));
            }
        }
    }
    found
}

#[test]
fn broken_corpus_reports_every_problem_at_its_position() {
    let corpus = repo().join("tests/data/invalid");
    let expected = expectations(&corpus);
    assert!(
        expected.len() >= 30,
        "the corpus shrank to {}",
        expected.len()
    );
    let run = palabre(&repo(), &["validate", "tests/data/invalid"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let reported: Vec<(String, usize, usize, String)> = run
        .stderr
        .lines()
        .filter_map(|line| {
            let (location, message) = line.split_once(": error: ")?;
            let mut parts = location.rsplitn(3, ':');
            let column = parts.next()?.parse().ok()?;
            let line_no = parts.next()?.parse().ok()?;
            Some((
                parts.next()?.to_owned(),
                line_no,
                column,
                message.to_owned(),
            ))
        })
        .collect();
    for (file, line, column, words) in &expected {
        assert!(
            reported.iter().any(|(f, l, c, m)| f == file
                && l == line
                && c == column
                && m.contains(words.as_str())),
            "expected {file}:{line}:{column}: {words}\nbut palabre reported:\n{}",
            run.stderr
        );
    }
    assert_eq!(
        reported.len(),
        expected.len(),
        "palabre reported errors the corpus does not expect:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains(&format!("{} error(s)", expected.len())));
    // Each error comes with its source line and a caret.
    assert!(
        run.stderr
            .contains("5 | place: mopti/korro\n  |        ^^^^^^^^^^^"),
        "{}",
        run.stderr
    );
}

#[test]
fn single_files_are_checked_against_the_default_workflows_folder() {
    let run = palabre(
        &repo(),
        &["validate", "tests/data/invalid/meetings/bad-offset.yaml"],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("bad-offset.yaml:11:9: error: '-7x' is not an offset"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("1 error(s)"), "{}", run.stderr);
    let run = palabre(
        &repo(),
        &["validate", "workflows/meetings/dialogue-koro.yaml"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn usage_and_io_errors_exit_with_two() {
    for args in [
        &["validate", "no/such/file.yaml"][..],
        &["validate", "--workflows", "no/such/folder"],
        &["validate", "--no-such-flag"],
        &["frobnicate"],
    ] {
        let run = palabre(&repo(), args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
}

#[test]
fn recipients_are_checked_against_the_imported_directory() {
    let dir = workspace_with_directory();
    std::fs::write(
        dir.path().join("workflows/meetings/extra.yaml"),
        "kind: meeting\nid: extra\ntitle: T\nplace: mopti/koro\nrecurrence: \"0 9 * * 1\"\nvenue: V\n\
         recipients:\n  - contacts: [c-0001, c-9999]\n  - role: governor\n    place: mopti/koro\n\
         steps:\n  - { id: reminder, at: -1d, template: meeting-reminder, channels: [sms] }\n",
    )
    .unwrap();
    let run = palabre(dir.path(), &["validate"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("recipients checked against 238 contacts"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("extra.yaml:8:24: error: no contact 'c-9999' in the directory"),
        "{}",
        run.stderr
    );
    // A governor is a regional post: nobody holds it at cercle level.
    assert!(
        run.stderr
            .contains("extra.yaml:9:5: warning: this group reaches nobody in the directory"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("1 error(s), 1 warning(s)"),
        "{}",
        run.stderr
    );
}

#[test]
fn sms_texts_are_measured_in_segments_and_long_ones_warned() {
    let run = palabre(&repo(), &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("sms meeting-invitation     bam  1 segment(s), GSM-7"),
        "Bambara written in the GSM alphabet: {}",
        run.stderr
    );
    let dir = crate::util::workspace();
    let file = dir.path().join("workflows/templates/meeting-reminder.yaml");
    let long = format!("Rappel: {}", "ɛ".repeat(150));
    let text = std::fs::read_to_string(&file).unwrap().replacen(
        "sms: \"Rappel:",
        &format!("sms: \"{long} Rappel:"),
        1,
    );
    std::fs::write(&file, text).unwrap();
    let run = palabre(dir.path(), &["validate"]);
    assert_eq!(run.code, 0, "a warning, not an error: {}", run.stderr);
    assert!(
        run.stderr
            .contains("meeting-reminder.yaml:1:1: warning: the fra SMS is 4 segments (UCS-2)"),
        "{}",
        run.stderr
    );
}
