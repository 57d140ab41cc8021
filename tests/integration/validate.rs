//! `palabre validate`: the shipped workflows pass; a corpus of broken files is
//! rejected with exactly the expected positions and messages; calendars about to
//! end are warned about (by `status` too).

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{NaiveDate, TimeDelta, Utc};
use palabre_core::diagnostic::Severity;
use palabre_plan::definitions::{Definitions, calendar_endings};

use crate::util::{palabre, repo, workspace, workspace_with_directory};

#[test]
fn shipped_workflows_are_valid() {
    let run = palabre(&repo(), &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("ok: 17 workflow(s) valid"),
        "{}",
        run.stderr
    );
}

/// One problem the corpus announces, or palabre reports: file, line, column,
/// severity (`error` or `warning`) and the words of the message.
type Problem = (String, usize, usize, &'static str, String);

/// Every `# expect: LINE:COL: words` line of the corpus (`// expect:` in rule
/// scripts); `# expect: LINE:COL: warning: words` announces a warning.
fn expectations(root: &Path) -> BTreeSet<Problem> {
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
                let words = parts.next().unwrap().trim();
                let (severity, words) = match words.strip_prefix("warning: ") {
                    Some(words) => ("warning", words),
                    None => ("error", words),
                };
                let relative = path.strip_prefix(repo()).unwrap().display().to_string();
                found.insert((relative, line_no, column, severity, words.to_owned()));
            }
        }
    }
    found
}

/// Every `FILE:LINE:COL: error: message` (or `warning:`) line of `stderr`.
fn reported(stderr: &str) -> Vec<Problem> {
    stderr
        .lines()
        .filter_map(|line| {
            let (location, severity, message) =
                [": error: ", ": warning: "].into_iter().find_map(|mark| {
                    let (location, message) = line.split_once(mark)?;
                    Some((location, mark.trim_matches([':', ' ']), message))
                })?;
            let severity = if severity == "error" {
                "error"
            } else {
                "warning"
            };
            let mut parts = location.rsplitn(3, ':');
            let column = parts.next()?.parse().ok()?;
            let line_no = parts.next()?.parse().ok()?;
            Some((
                parts.next()?.to_owned(),
                line_no,
                column,
                severity,
                message.to_owned(),
            ))
        })
        .collect()
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
    let reported = reported(&run.stderr);
    for (file, line, column, severity, words) in &expected {
        assert!(
            reported.iter().any(|(f, l, c, s, m)| f == file
                && l == line
                && c == column
                && s == severity
                && m.contains(words.as_str())),
            "expected {file}:{line}:{column}: {severity}: {words}\nbut palabre reported:\n{}",
            run.stderr
        );
    }
    assert_eq!(
        reported.len(),
        expected.len(),
        "palabre reported problems the corpus does not expect:\n{}",
        run.stderr
    );
    let count = |severity: &str| expected.iter().filter(|e| e.3 == severity).count();
    assert!(
        count("warning") >= 4,
        "the corpus lost its warnings: {expected:#?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "{} error(s), {} warning(s)",
            count("error"),
            count("warning")
        )),
        "{}",
        run.stderr
    );
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
    // The shipped calendars warn from 90 days before their end, as of the real
    // date this test runs on: count the other warnings only.
    let calendar_warnings = run.stderr.matches("calendars/holidays.yaml:").count();
    assert!(
        run.stderr
            .contains(&format!("1 error(s), {} warning(s)", 1 + calendar_warnings)),
        "{}",
        run.stderr
    );
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

#[test]
fn the_shipped_calendars_do_not_end_within_ninety_days_of_2026_12_01() {
    let root = repo().join("workflows");
    let (definitions, diagnostics) = Definitions::load(&root, None, palabre_sms::RULE_FUNCTIONS);
    let problems: Vec<String> = diagnostics.sorted().iter().map(|d| d.to_string()).collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(definitions.calendars_ending(date("2026-12-01")), []);
    assert_eq!(definitions.workflow_ids().count(), 17);
    assert_eq!(calendar_endings(&root, date("2026-12-01")), []);
    // Their last dated entry is Baptême du Prophète 2027: 90 days before it, they warn.
    assert_eq!(calendar_endings(&root, date("2027-05-23")), []);
    let endings = calendar_endings(&root, date("2027-05-24"));
    assert_eq!(endings.len(), 1, "{endings:#?}");
    assert_eq!(endings[0].last_date, date("2027-08-22"));
    assert_eq!(endings[0].days_left, 90);
}

#[test]
fn a_calendar_ending_soon_is_a_warning_at_its_last_entry() {
    let dir = workspace();
    let root = dir.path().join("workflows");
    std::fs::write(
        root.join("calendars/fetes-locales.yaml"),
        "# Local feasts.\n\
         dated:\n  \
         - { date: 2027-02-10, name: \"Fête du fleuve\" }\n  \
         - { date: 2027-01-05, name: \"Fête des semences\" }\n\
         periods:\n  \
         - { from: 2026-12-20, to: 2027-01-31, name: \"Pêche collective\" }\n",
    )
    .unwrap();
    let warnings_on = |today: &str| -> Vec<String> {
        let (definitions, mut diagnostics) =
            Definitions::load(&root, None, palabre_sms::RULE_FUNCTIONS);
        assert!(!diagnostics.has_errors(), "{:?}", diagnostics.sorted());
        for ending in definitions.calendars_ending(date(today)) {
            diagnostics.push(ending.diagnostic());
        }
        diagnostics
            .sorted()
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .map(|d| d.to_string())
            .collect()
    };
    assert_eq!(
        warnings_on("2026-11-11"),
        [] as [String; 0],
        "91 days ahead: no warning"
    );
    let file = root.join("calendars/fetes-locales.yaml");
    let expected = format!(
        "{}:3:13: warning: calendar fetes-locales.yaml ends on 2027-02-10 (Fête du fleuve), \
         in 90 days: after that date the rules and case deadlines know none of its holidays or \
         periods; add next year's holidays and feasts under `dated:` (the Islamic feasts with \
         `estimated: true` until they are announced) and next year's periods (Ramadan) under \
         `periods:`\n  |\n3 |   - {{ date: 2027-02-10, name: \"Fête du fleuve\" }}\n  |             ^^^^^^^^^^",
        file.display()
    );
    assert_eq!(warnings_on("2026-11-12"), [expected]);
    let ended = warnings_on("2027-02-13");
    assert_eq!(ended.len(), 1, "{ended:#?}");
    assert!(
        ended[0].contains(
            "calendar fetes-locales.yaml ended on 2027-02-10 (Fête du fleuve), 3 days ago"
        ),
        "{}",
        ended[0]
    );
    // The shipped holidays end too by then: both calendars are listed for status.
    let endings = calendar_endings(&root, date("2027-06-01"));
    let files: Vec<_> = endings.iter().map(|e| e.file.clone()).collect();
    assert_eq!(
        files,
        [
            root.join("calendars/fetes-locales.yaml"),
            root.join("calendars/holidays.yaml")
        ]
    );
    assert_eq!((endings[1].line, endings[1].column), (27, 13));
    assert_eq!(endings[1].last_entry, "Baptême du Prophète");
}

#[test]
fn validate_and_status_warn_about_a_calendar_ending_soon() {
    let dir = workspace_with_directory();
    // Relative to the real date, so that the outcome does not depend on it.
    let last = (Utc::now() + TimeDelta::days(30)).date_naive();
    std::fs::write(
        dir.path().join("workflows/calendars/fetes-locales.yaml"),
        format!("dated:\n  - {{ date: {last}, name: \"Fête du fleuve\" }}\n"),
    )
    .unwrap();
    let run = palabre(dir.path(), &["validate"]);
    assert_eq!(run.code, 0, "a warning, not an error: {}", run.stderr);
    let said = format!(
        "workflows/calendars/fetes-locales.yaml:2:13: warning: calendar fetes-locales.yaml ends on {last} (Fête du fleuve)"
    );
    assert!(run.stderr.contains(&said), "{}", run.stderr);
    let run = palabre(dir.path(), &["status"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let counts_end = run.stdout.find("rule errors (default applied)").unwrap();
    let warned = run.stdout[counts_end..]
        .lines()
        .find(|l| l.starts_with("warning: "))
        .unwrap_or_else(|| panic!("no warning after the counts:\n{}", run.stdout));
    assert!(
        warned.starts_with(&format!(
            "warning: workflows/calendars/fetes-locales.yaml:2:13: calendar fetes-locales.yaml ends on {last}"
        )),
        "{}",
        run.stdout
    );
    let run = palabre(dir.path(), &["status", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let ending = status["calendars_ending"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["file"] == "workflows/calendars/fetes-locales.yaml")
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(ending["last_date"], last.to_string());
    assert_eq!(ending["last_entry"], "Fête du fleuve");
    assert_eq!(
        (ending["line"].as_u64(), ending["column"].as_u64()),
        (Some(2), Some(13))
    );
    assert!(
        ending["message"]
            .as_str()
            .unwrap()
            .contains("add next year's holidays")
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
    // A letter with no GSM look-alike: the whole text goes in UCS-2.
    let long = format!("Rappel : {}", "ʃ".repeat(150));
    let text = std::fs::read_to_string(&file).unwrap().replacen(
        "sms: \"Rappel :",
        &format!("sms: \"{long} Rappel :"),
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

#[test]
fn a_recurrence_that_fills_more_than_one_planning_pass_is_a_warning() {
    let dir = workspace();
    std::fs::write(
        dir.path().join("workflows/meetings/trop-souvent.yaml"),
        "kind: meeting\n\
         id: trop-souvent\n\
         title: Point\n\
         place: mopti/koro\n\
         venue: Mairie\n\
         recurrence: \"*/3 * * * *\"\n\
         recipients: [{ role: mayor }]\n\
         steps:\n  \
         - { id: rappel, at: -1h, template: meeting-reminder, channels: [sms] }\n",
    )
    .unwrap();
    let run = palabre(dir.path(), &["validate"]);
    assert_eq!(run.code, 0, "a warning, not an error: {}", run.stderr);
    assert!(
        run.stderr.contains(
            "meetings/trop-souvent.yaml:6:13: warning: '*/3 * * * *' gives 33580 occurrences to plan for the server's 40-day horizon"
        ),
        "{}",
        run.stderr
    );
}
