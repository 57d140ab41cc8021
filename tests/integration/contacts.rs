//! `palabre contacts import` and `list`: good rows kept, bad rows reported by line,
//! re-import updates and never duplicates, personal data masked by default.

use crate::util::{palabre, repo, workspace};

fn example_csv() -> String {
    repo().join("examples/directory.csv").display().to_string()
}

#[test]
fn import_is_idempotent_and_updates_changed_rows() {
    let dir = workspace();
    let run = palabre(dir.path(), &["contacts", "import", &example_csv()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("238 contact(s) read: 238 new, 0 updated, 0 unchanged; 0 row(s) rejected"),
        "{}",
        run.stdout
    );

    let run = palabre(dir.path(), &["contacts", "import", &example_csv()]);
    assert!(
        run.stdout.contains("0 new, 0 updated, 238 unchanged"),
        "{}",
        run.stdout
    );

    let original = std::fs::read_to_string(example_csv()).unwrap();
    let changed = original.replacen("c-0002,Mariam Ongoïba", "c-0002,Mariam Ongoïba Kassogué", 1);
    assert_ne!(
        original, changed,
        "the example directory changed: update this test"
    );
    let changed_csv = dir.path().join("changed.csv");
    std::fs::write(&changed_csv, changed).unwrap();
    let run = palabre(
        dir.path(),
        &["contacts", "import", changed_csv.to_str().unwrap()],
    );
    assert!(
        run.stdout.contains("0 new, 1 updated, 237 unchanged"),
        "{}",
        run.stdout
    );

    let run = palabre(dir.path(), &["contacts", "list", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 238);
    assert!(
        listed
            .iter()
            .any(|c| c["name"] == "Mariam Ongoïba Kassogué")
    );
}

#[test]
fn bad_rows_are_reported_by_line_and_good_rows_kept() {
    let dir = workspace();
    let csv = dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        "id,name,roles,place,phone,email,language,channels\n\
         c-1,Awa Diallo,leader,mopti/koro/koro,76 11 22 33,,bam,sms\n\
         c-2,Hama Bocoum,leader,mopti/koro/koro,12,,ffm,sms\n\
         c-3,Issa Guindo,leadr,mopti/korro,,issa@example.org,fra,email\n\
         c-4,Fanta Sow,mayor,mopti/koro/bondo,,fanta@example,french,pigeon\n\
         C 5,,leader,mopti/koro/koro,,,fra,sms\n\
         c-1,Awa Diallo,leader,mopti/koro/koro,76 11 22 33,,bam,sms\n\
         c-7,Oumar Tall,mayor,segou/macina/kolongo,+223 66 12 34 56,oumar@example.org,fra,email;sms\n",
    )
    .unwrap();
    let run = palabre(dir.path(), &["contacts", "import", "bad.csv"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for expected in [
        "bad.csv:3:1: error: row 'c-2': phone is not a valid number",
        "bad.csv:4:1: error: row 'c-3': unknown role 'leadr' (did you mean 'leader'?)",
        "bad.csv:4:1: error: row 'c-3': unknown place 'mopti/korro' (did you mean 'mopti/koro'?)",
        "bad.csv:5:1: error: row 'c-4': email is not a valid address",
        "bad.csv:5:1: error: row 'c-4': language 'french' is not an ISO 639-3 code",
        "bad.csv:5:1: error: row 'c-4': unknown channel 'pigeon'",
        "bad.csv:6:1: error: row 'C 5': id 'C 5' must be lower-case",
        "bad.csv:6:1: error: row 'C 5': name is empty",
        "bad.csv:7:1: error: row 'c-1': id 'c-1' appears twice",
    ] {
        assert!(
            run.stderr.contains(expected),
            "missing {expected:?} in\n{}",
            run.stderr
        );
    }
    // A wrong phone number is never echoed back: it may be a real one, mistyped.
    assert!(!run.stderr.contains("'12'"), "{}", run.stderr);
    assert!(
        run.stdout.contains("2 contact(s) read: 2 new"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("5 row(s) rejected"), "{}", run.stdout);
    let run = palabre(
        dir.path(),
        &["contacts", "list", "--reveal", "--format", "json"],
    );
    let listed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(listed[0]["id"], "c-1");
    assert_eq!(listed[0]["phone"], "+22376112233");
    assert_eq!(listed[1]["id"], "c-7");
    assert_eq!(listed[1]["channels"], serde_json::json!(["email", "sms"]));
}

#[test]
fn a_file_without_the_required_columns_is_refused_whole() {
    let dir = workspace();
    std::fs::write(dir.path().join("x.csv"), "name,phone\nAwa,76112233\n").unwrap();
    let run = palabre(dir.path(), &["contacts", "import", "x.csv"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("x.csv:1:1: error: missing column(s): id, roles, place, language"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("0 contact(s) read"), "{}", run.stdout);
    let run = palabre(dir.path(), &["contacts", "import", "missing.csv"]);
    assert_eq!(run.code, 2);
}

#[test]
fn listing_masks_phones_and_emails_unless_revealed() {
    let dir = crate::util::workspace_with_directory();
    let run = palabre(dir.path(), &["contacts", "list"]);
    assert!(run.stdout.contains("238 contact(s)"));
    assert!(run.stdout.contains("+223 •• ••"));
    assert!(run.stdout.contains("b•••@example.org"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("boubacar.sow.1@example.org"),
        "an email in clear:\n{}",
        run.stdout
    );
    let clear_phone = run
        .stdout
        .split_whitespace()
        .any(|w| w.starts_with("+223") && w.len() == 12);
    assert!(!clear_phone, "a phone number in clear:\n{}", run.stdout);
    let run = palabre(dir.path(), &["contacts", "list", "--reveal"]);
    assert!(
        run.stdout.contains("boubacar.sow.1@example.org"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("+22376942303"), "{}", run.stdout);
}
