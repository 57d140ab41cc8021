//! `palabre preview`: what would be sent, when, to whom, on which channel, in which
//! language, computed by the planner over a virtual clock, with no side effects.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::util::{palabre, repo, workspace, workspace_with_directory};

fn preview_json(dir: &std::path::Path, from: &str, days: &str) -> Vec<Value> {
    let run = palabre(
        dir,
        &[
            "preview", "--from", from, "--days", days, "--format", "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stdout.contains('@'),
        "an email address leaked into the preview"
    );
    assert!(
        !run.stdout.contains("+223"),
        "a phone number leaked into the preview"
    );
    serde_json::from_str::<Value>(&run.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The ids of directory rows holding one of `roles` at or below `place`, read from the
/// CSV directly: an independent answer to "who is invited".
fn expected_recipients(place: &str, roles: &[&str]) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("examples/directory.csv")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let in_place = cells[3] == place || cells[3].starts_with(&format!("{place}/"));
            let has_role = cells[2].split(';').any(|r| roles.contains(&r));
            (in_place && has_role).then(|| cells[0].to_owned())
        })
        .collect()
}

fn messages_of<'a>(planned: &'a [Value], workflow: &str, step: &str) -> Vec<&'a Value> {
    planned
        .iter()
        .filter(|m| m["workflow"] == workflow && m["step"] == step)
        .collect()
}

#[test]
fn plans_who_gets_what_when_on_which_channel_in_which_language() {
    let dir = workspace_with_directory();
    let planned = preview_json(dir.path(), "2026-11-30", "7");
    assert!(!planned.is_empty());
    let dues: Vec<&str> = planned
        .iter()
        .map(|m| m["due_utc"].as_str().unwrap())
        .collect();
    assert!(dues.windows(2).all(|w| w[0] <= w[1]), "not in time order");
    assert!(
        dues.iter()
            .all(|d| ("2026-11-30".."2026-12-07").contains(d)),
        "outside the window"
    );

    // dialogue-mopti meets on the first Tuesday, 2026-12-01 09:00 in Bamako (UTC).
    let reminder = messages_of(&planned, "dialogue-mopti", "reminder-1d");
    assert!(
        reminder
            .iter()
            .all(|m| m["due_utc"] == "2026-11-30T09:00:00Z")
    );
    assert!(
        reminder
            .iter()
            .all(|m| m["occurrence"] == "2026-12-01T09:00:00Z")
    );
    let invited: BTreeSet<String> = reminder
        .iter()
        .map(|m| m["contact_id"].as_str().unwrap().to_owned())
        .collect();
    let roles = [
        "leader",
        "women-leader",
        "youth-leader",
        "religious-leader",
        "mayor",
        "sub-prefect",
        "prefect",
        "service-head",
        "focal-point",
    ];
    assert_eq!(invited, expected_recipients("mopti/mopti", &roles));
    assert_eq!(invited.len(), reminder.len(), "somebody was invited twice");

    // Two hours before, by SMS only.
    let two_hours = messages_of(&planned, "dialogue-mopti", "reminder-2h");
    assert_eq!(two_hours.len(), invited.len());
    for m in &two_hours {
        assert_eq!(m["due_utc"], "2026-12-01T07:00:00Z");
        assert!(
            m["channel"] == "sms" || m["problem"].as_str().unwrap().contains("no address on sms"),
            "{m}"
        );
    }

    // Minutes are due three days after, and go only to the secretary and focal points.
    let minutes = messages_of(&planned, "dialogue-mopti", "minutes-due");
    let expected = expected_recipients("mopti/mopti", &["secretary", "focal-point"]);
    let got: BTreeSet<String> = minutes
        .iter()
        .map(|m| m["contact_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, expected);
    assert!(
        minutes
            .iter()
            .all(|m| m["due_utc"] == "2026-12-04T09:00:00Z")
    );

    // Every SMS comes with its size in segments; the shipped texts fit in one.
    for m in planned.iter().filter(|m| m["channel"] == "sms") {
        assert_eq!(m["segments"], 1, "{m}");
    }
    assert!(
        planned
            .iter()
            .filter(|m| m["channel"] == "email")
            .all(|m| m.get("segments").is_none())
    );
    // Bambara speakers get their SMS in Bambara, written in the GSM alphabet.
    let bambara: Vec<&str> = planned
        .iter()
        .filter(|m| m["language"] == "bam")
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert!(!bambara.is_empty());
    assert!(
        bambara.iter().all(|b| !b.contains('ɛ') && !b.contains('ɔ')),
        "{bambara:?}"
    );
    // Languages: the templates have fra and eng, and Bambara for SMS; everyone else
    // gets French.
    for m in planned.iter().filter(|m| m["channel"].is_string()) {
        let language = m["language"].as_str().unwrap();
        assert!(
            language == "fra" || language == "eng" || (language == "bam" && m["channel"] == "sms"),
            "{m}"
        );
        assert!(
            m["body"]
                .as_str()
                .unwrap()
                .contains(m["contact_name"].as_str().unwrap())
                || m["channel"] == "sms"
        );
    }
    let texts: Vec<&str> = reminder.iter().filter_map(|m| m["body"].as_str()).collect();
    assert!(
        texts.iter().any(|t| t.starts_with(
            "Rappel : Cadre de concertation du cercle de Mopti le mardi 1er décembre à 9 h"
        )),
        "{texts:?}"
    );
}

#[test]
fn a_geneva_schedule_follows_swiss_summer_time() {
    let dir = workspace_with_directory();
    let planned = preview_json(dir.path(), "2027-01-01", "120");
    let reminders = messages_of(&planned, "mediator-briefing", "reminder-1d");
    let dues: BTreeSet<(&str, &str)> = reminders
        .iter()
        .map(|m| {
            (
                m["due_utc"].as_str().unwrap(),
                m["due_local"].as_str().unwrap(),
            )
        })
        .collect();
    // 10:00 in Geneva the day before each first Monday: 09:00 UTC in winter, 08:00 UTC in summer.
    assert_eq!(
        dues.into_iter().collect::<Vec<_>>(),
        [
            ("2027-01-03T09:00:00Z", "2027-01-03T10:00:00+01:00"),
            ("2027-01-31T09:00:00Z", "2027-01-31T10:00:00+01:00"),
            ("2027-02-28T09:00:00Z", "2027-02-28T10:00:00+01:00"),
            ("2027-04-04T08:00:00Z", "2027-04-04T10:00:00+02:00"),
        ]
    );
    assert!(
        reminders.iter().any(|m| m["language"] == "eng"),
        "the mediator reads English"
    );
}

#[test]
fn preview_has_no_side_effects() {
    let dir = workspace();
    let run = palabre(dir.path(), &["preview", "--days", "30"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("the directory is empty"),
        "{}",
        run.stderr
    );
    assert!(
        !dir.path().join("palabre.db").exists(),
        "preview created a database"
    );
    let csv = repo().join("examples/directory.csv");
    let run = palabre(
        dir.path(),
        &[
            "preview",
            "--from",
            "2026-11-30",
            "--days",
            "7",
            "--directory",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("dialogue-mopti"), "{}", run.stdout);
    assert!(
        !dir.path().join("palabre.db").exists(),
        "preview --directory created a database"
    );

    let dir = workspace_with_directory();
    let before = palabre(
        dir.path(),
        &["contacts", "list", "--format", "json", "--reveal"],
    )
    .stdout;
    let first = palabre(
        dir.path(),
        &["preview", "--from", "2026-12-01", "--days", "31"],
    );
    let second = palabre(
        dir.path(),
        &["preview", "--from", "2026-12-01", "--days", "31"],
    );
    assert_eq!(first.stdout, second.stdout);
    assert!(first.stdout.contains("due (UTC)"));
    assert!(first.stdout.contains("message(s) planned"));
    let after = palabre(
        dir.path(),
        &["contacts", "list", "--format", "json", "--reveal"],
    )
    .stdout;
    assert_eq!(before, after);
}

#[test]
fn bad_preview_arguments_exit_with_two() {
    let dir = workspace();
    for args in [
        &["preview", "--days", "0"][..],
        &["preview", "--days", "400"],
        &["preview", "--from", "next tuesday"],
        &["preview", "--workflows", "nowhere"],
    ] {
        let run = palabre(dir.path(), args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
}

#[test]
fn a_recipient_out_of_reach_on_the_steps_channels_is_flagged_not_dropped() {
    let dir = workspace_with_directory();
    std::fs::write(
        dir.path().join("extra.csv"),
        "id,name,roles,place,phone,email,language,channels\n\
         c-9001,Kadidia Maïga,leader,mopti/mopti/socoura,,kadidia@example.org,bam,email\n",
    )
    .unwrap();
    assert_eq!(
        palabre(dir.path(), &["contacts", "import", "extra.csv"]).code,
        0
    );
    let planned = preview_json(dir.path(), "2026-11-30", "7");
    let two_hours = messages_of(&planned, "dialogue-mopti", "reminder-2h");
    let kadidia = two_hours
        .iter()
        .find(|m| m["contact_id"] == "c-9001")
        .expect("still planned");
    assert!(kadidia["channel"].is_null());
    assert_eq!(kadidia["problem"], "no address on sms");
    // The day before, email is allowed: she gets it there, in French (no Bambara text yet).
    let day_before = messages_of(&planned, "dialogue-mopti", "reminder-1d");
    let kadidia = day_before
        .iter()
        .find(|m| m["contact_id"] == "c-9001")
        .unwrap();
    assert_eq!(kadidia["channel"], "email");
    assert_eq!(kadidia["language"], "fra");
    let run = palabre(
        dir.path(),
        &["preview", "--from", "2026-11-30", "--days", "7"],
    );
    assert!(
        run.stdout.contains("1 cannot be prepared"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("dialogue-mopti reminder-2h c-9001: no address on sms"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_moved_occurrence_is_previewed_at_its_new_time() {
    let dir = workspace_with_directory();
    // dialogue-koro meets on the second Wednesday: 13 January 2027, 09:00.
    let run = palabre(
        dir.path(),
        &[
            "occurrence",
            "move",
            "dialogue-koro",
            "--at",
            "2027-01-13T09:00:00Z",
            "--to",
            "2027-01-14T09:00:00Z",
            "--reason",
            "fête",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Nothing was sent about the 13th yet: the move tells nobody.
    assert!(
        run.stdout
            .contains("moved (sequence 1); no notice: nobody had been told of it yet"),
        "{}",
        run.stdout
    );
    let planned = preview_json(dir.path(), "2027-01-12", "3");
    let reminders = messages_of(&planned, "dialogue-koro", "reminder-1d");
    assert!(!reminders.is_empty());
    assert!(
        reminders
            .iter()
            .all(|m| m["due_utc"] == "2027-01-13T09:00:00Z"),
        "a day before the new start"
    );
    let status = palabre(dir.path(), &["status", "--format", "json"]);
    let counts: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        counts["counts"]["queued"].as_i64(),
        Some(0),
        "no notice waits in the outbox"
    );

    let run = palabre(
        dir.path(),
        &[
            "occurrence",
            "cancel",
            "dialogue-koro",
            "--at",
            "2027-01-13T10:00:00Z",
            "--reason",
            "x",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("is not an occurrence of 'dialogue-koro'"),
        "{}",
        run.stderr
    );
    let run = palabre(
        dir.path(),
        &[
            "occurrence",
            "cancel",
            "dialogue-koro",
            "--at",
            "13/01/2027",
            "--reason",
            "x",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[tokio::test]
async fn the_text_table_has_one_header_marks_french_fallbacks_and_honours_stop() {
    let dir = workspace_with_directory();
    // Boubacar (c-0001: SMS then email) and Mariam (c-0002: SMS only) sent STOP.
    let url = format!("sqlite://{}", dir.path().join("palabre.db").display());
    let store = palabre_store::Store::connect(&url, &crate::util::test_key())
        .await
        .unwrap();
    let now = chrono::Utc::now();
    for contact in ["c-0001", "c-0002"] {
        let entry = palabre_store::LedgerEntry::new(
            now,
            palabre_store::LedgerEvent::SmsStopped,
            "asked to receive no more SMS",
        );
        store
            .set_sms_stopped(contact, true, now, &entry)
            .await
            .unwrap();
    }
    store.close().await;

    let planned = preview_json(dir.path(), "2026-11-30", "7");
    let of = |contact: &str| -> Vec<&Value> {
        planned
            .iter()
            .filter(|m| m["contact_id"] == contact)
            .collect()
    };
    assert!(!of("c-0001").is_empty() && !of("c-0002").is_empty());
    for m in of("c-0001").into_iter().chain(of("c-0002")) {
        assert_ne!(m["channel"], "sms", "no SMS after STOP: {m}");
        if m["channel"].is_null() || m["contact_id"] == "c-0002" {
            assert!(m["problem"].as_str().unwrap().contains("sent STOP"), "{m}");
        }
    }
    assert!(of("c-0001").iter().any(|m| m["channel"] == "email"));

    let run = palabre(
        dir.path(),
        &[
            "preview",
            "--from",
            "2026-11-30",
            "--days",
            "7",
            "--show-text",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let headers = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("due (UTC)"))
        .count();
    assert_eq!(headers, 1, "one header for the whole table");
    // Fulfulde speakers read French, marked, and counted by language.
    let mariam_like = run
        .stdout
        .lines()
        .find(|l| l.contains(" c-0003 ") || l.contains("ffm"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        run.stdout.lines().any(|l| l.contains(" fra*")),
        "{mariam_like}\n{}",
        run.stdout
    );
    let summary = run
        .stdout
        .lines()
        .find(|l| l.starts_with("* "))
        .expect("a summary of the messages in French");
    assert!(
        summary.contains(" ffm") && summary.contains(" bze"),
        "{summary}"
    );
}

/// A call in the preview: the clips it plays, its length read from the
/// recordings, the hour it is placed when due at night, and what the calls cost
/// at the price of `calls.yaml`.
#[test]
fn calls_show_their_clips_length_hour_and_cost() {
    let dir = workspace();
    let workflows = dir.path().join("workflows");
    let audio = std::env::var_os("PALABRE_TEST_CLIPS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo().join("workflows/audio"));
    assert!(
        audio.join("fra/keys.wav").exists(),
        "run scripts/ensure-clips (the README's test command does)"
    );
    crate::util::copy_dir(&audio, &workflows.join("audio"));
    // Koro's reminder calls, the evening before at 20:00, when calls are over.
    let meeting = workflows.join("meetings/dialogue-koro.yaml");
    let text = std::fs::read_to_string(&meeting).unwrap();
    let text = text
        .replace("channels: [sms, email]", "channels: [voice, sms, email]")
        .replace("    at: -1d\n", "    at: -1d13h\n");
    std::fs::write(&meeting, text).unwrap();
    let calls = workflows.join("calls.yaml");
    let mut text = std::fs::read_to_string(&calls).unwrap();
    text.push_str("price_per_minute: { amount: 75, currency: XOF }\n");
    std::fs::write(&calls, text).unwrap();
    // Invented people who asked to be called.
    std::fs::write(
        dir.path().join("called.csv"),
        "id,name,roles,place,phone,email,language,channels
c-1,Fanta Kassogué,leader,mopti/koro/koro,76 00 00 01,,fra,voice;sms
c-2,Hamadoun Guindo,leader,mopti/koro/koro,76 00 00 02,,fra,voice;sms
",
    )
    .unwrap();
    let args = [
        "preview",
        "--directory",
        "called.csv",
        "--from",
        "2026-12-07",
        "--days",
        "2",
    ];
    let run = palabre(dir.path(), &[&args[..], &["--format", "json"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let planned: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    let called: Vec<&Value> = planned.iter().filter(|m| m["channel"] == "voice").collect();
    assert_eq!(called.len(), 2, "{planned:#?}");
    for call in &called {
        assert_eq!(call["step"], "reminder-1d");
        assert!(
            call["body"]
                .as_str()
                .unwrap()
                .starts_with("reminder weekday-3")
        );
        let seconds = call["call_seconds"].as_f64().unwrap();
        assert!((5.0..60.0).contains(&seconds), "{seconds}");
        assert_eq!(call["call_from"], "2026-12-08T08:00:00Z");
    }
    let run = palabre(dir.path(), &[&args[..], &["--show-text"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "    called from 2026-12-08 08:00 UTC: outside the call hours of calls.yaml\n    plays: reminder weekday-3 number-9 month-12 at number-9 hours, then the keypad's question"
        ),
        "{}",
        run.stdout
    );
    // Each call is under a minute: a minute each, at 75.
    let summary = run.stdout.lines().last().unwrap();
    assert!(
        summary.starts_with("2 call(s), ")
            && summary.ends_with(" min in all; about 150 XOF if each is answered once"),
        "{summary}"
    );
}
