//! `palabre contacts import` and `list`: good rows kept, bad rows reported by line,
//! re-import updates and never duplicates, personal data masked by default; the
//! directory as coordinators have it (French Excel's `;` and Windows-1252, an
//! `.xlsx`, values written by hand) read, and a file that is no table refused.

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
         c-4,Fanta Sow,mayor,mopti/koro/bondo,,fanta@example,xx,pigeon\n\
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
        "bad.csv:5:1: error: row 'c-4': language 'xx' is not an ISO 639-3 code",
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

/// Invented people and numbers, with the accents Excel's French CSV keeps.
const FRENCH_DIRECTORY: &str = "id;name;roles;place;phone;email;language;channels\r\n\
    c-1;Fatoumata Koné;leader;mopti/koro/koro;+223 70 00 00 01;;bam;sms\r\n\
    c-2;Aïssata Cissé;women-leader;mopti/koro/koro;+223 70 00 00 02;aissata@example.org;fra;sms,email\r\n\
    c-3;Sékou Traoré;mayor;mopti/koro/koro;+223 70 00 00 03;;ffm;sms\r\n";

/// `text` in Windows-1252, for text whose letters are all in Latin-1 (where
/// the two agree).
fn windows_1252(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 letter"))
        .collect()
}

/// What `contacts list --reveal --format json` holds, in the workspace `dir`.
fn listed(dir: &std::path::Path) -> serde_json::Value {
    let run = palabre(dir, &["contacts", "list", "--reveal", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn a_csv_from_french_excel_imports_every_row_with_its_accents() {
    let dir = workspace();
    std::fs::write(
        dir.path().join("annuaire.csv"),
        windows_1252(FRENCH_DIRECTORY),
    )
    .unwrap();
    let run = palabre(dir.path(), &["contacts", "import", "annuaire.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("3 contact(s) read: 3 new, 0 updated, 0 unchanged; 0 row(s) rejected"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("annuaire.csv: note: read as Windows-1252 (Excel's French default)"),
        "{}",
        run.stderr
    );
    let listed = listed(dir.path());
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Fatoumata Koné", "Aïssata Cissé", "Sékou Traoré"]);
    assert_eq!(listed[1]["channels"], serde_json::json!(["sms", "email"]));
    assert_eq!(listed[0]["phone"], "+22370000001");

    // Excel ends lines with CRLF: a bad row is still reported at its own line.
    let bad = FRENCH_DIRECTORY.replace(";mayor;", ";maire;");
    std::fs::write(dir.path().join("corrigé.csv"), windows_1252(&bad)).unwrap();
    let run = palabre(dir.path(), &["contacts", "import", "corrigé.csv"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("corrigé.csv:4:1: error: row 'c-3': unknown role 'maire'"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_xlsx_imports_the_contacts_its_csv_imports() {
    let csv = workspace();
    std::fs::write(csv.path().join("annuaire.csv"), FRENCH_DIRECTORY).unwrap();
    let run = palabre(csv.path(), &["contacts", "import", "annuaire.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let xlsx = workspace();
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, line) in FRENCH_DIRECTORY.lines().enumerate() {
        for (c, cell) in line.split(';').enumerate() {
            let (r, c) = (u32::try_from(r).unwrap(), u16::try_from(c).unwrap());
            // A phone typed without spaces is a number to Excel.
            match cell.strip_prefix("+223 ") {
                Some(local) => sheet
                    .write_number(r, c, local.replace(' ', "").parse::<f64>().unwrap())
                    .unwrap(),
                None => sheet.write_string(r, c, cell).unwrap(),
            };
        }
    }
    // A bad row, reported at the row number Excel shows.
    sheet.write_string(5, 0, "c-5").unwrap();
    sheet.write_string(5, 1, "Bintou Dembélé").unwrap();
    sheet.write_string(5, 2, "leadr").unwrap();
    sheet.write_string(5, 3, "mopti/koro/koro").unwrap();
    sheet.write_string(5, 4, "+223 70 00 00 05").unwrap();
    sheet.write_string(5, 6, "bam").unwrap();
    book.save(xlsx.path().join("annuaire.xlsx")).unwrap();
    let run = palabre(xlsx.path(), &["contacts", "import", "annuaire.xlsx"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("annuaire.xlsx:6:1: error: row 'c-5': unknown role 'leadr'"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("3 contact(s) read: 3 new"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("1 row(s) rejected"), "{}", run.stdout);
    assert_eq!(listed(xlsx.path()), listed(csv.path()));
}

#[test]
fn a_pdf_is_refused_with_how_to_save_the_directory() {
    let dir = workspace();
    std::fs::write(
        dir.path().join("annuaire.pdf"),
        b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    )
    .unwrap();
    let run = palabre(dir.path(), &["contacts", "import", "annuaire.pdf"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "annuaire.pdf:1:1: error: this file looks like a PDF document, not a table of \
             contacts: save it from Excel as 'CSV UTF-8 (délimité par des virgules)' or as .xlsx"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    // Nothing was imported: no database was even created.
    let run = palabre(dir.path(), &["contacts", "list"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("no contact imported yet"),
        "{}",
        run.stderr
    );
}

#[test]
fn values_written_by_hand_are_stored_normalized_and_noted() {
    let dir = workspace();
    std::fs::write(
        dir.path().join("d.csv"),
        "id,name,roles,place,phone,email,language,channels\n\
         c-1,Awa Diallo,Leader,Mopti/Koro/Koro,+223 70 00 00 01,,FRA,SMS\n\
         c-2,Hama Bocoum,Leader;Women Leader,Mopti / Koro / Koro,+223 70 00 00 02,hama.bocoum@example.org,Français,E-mail;sms\n\
         c-3,Issa Guindo,leader,mopti/koro/koro,+223 70 00 00 03,,Bambara,sms\n",
    )
    .unwrap();
    let run = palabre(dir.path(), &["contacts", "import", "d.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for expected in [
        "d.csv: note: role: 3 values written in capitals or with spaces, e.g. 'Leader' read as 'leader'",
        "d.csv: note: place: 2 values written in capitals or with spaces, \
         e.g. 'Mopti/Koro/Koro' read as 'mopti/koro/koro'",
        "d.csv: note: language: 3 values written in capitals or as a name rather than a code, \
         e.g. 'FRA' read as 'fra'",
        "d.csv: note: channel: 2 values written in capitals or in another spelling, \
         e.g. 'SMS' read as 'sms'",
    ] {
        assert!(
            run.stderr.contains(expected),
            "missing {expected:?} in\n{}",
            run.stderr
        );
    }
    // Notes never show an address.
    for address in ["70 00 00", "+2237000", "hama.bocoum", "example.org"] {
        assert!(!run.stderr.contains(address), "{}", run.stderr);
    }
    let listed = listed(dir.path());
    assert_eq!(listed[0]["roles"], serde_json::json!(["leader"]));
    assert_eq!(listed[0]["place"], "mopti/koro/koro");
    assert_eq!(listed[0]["language"], "fra");
    assert_eq!(listed[0]["channels"], serde_json::json!(["sms"]));
    assert_eq!(
        listed[1]["roles"],
        serde_json::json!(["leader", "women-leader"])
    );
    assert_eq!(listed[1]["place"], "mopti/koro/koro");
    assert_eq!(listed[1]["language"], "fra");
    assert_eq!(listed[1]["channels"], serde_json::json!(["email", "sms"]));
    assert_eq!(listed[2]["language"], "bam");
}

/// The databases a CLI test runs on: a SQLite file in `dir`, and a fresh
/// PostgreSQL schema when one is configured.
async fn cli_databases(dir: &std::path::Path, name: &str) -> Vec<String> {
    let mut urls = vec![format!("sqlite://{}", dir.join("reveal.db").display())];
    if let Some(base) = crate::util::postgres_url() {
        urls.push(crate::util::fresh_postgres_schema(&base, name).await);
    }
    urls
}

/// Every `revealed` entry of the ledger at `url`, and the whole ledger as text.
async fn revealed_entries(url: &str) -> (Vec<palabre_store::LedgerEntry>, String) {
    let store = palabre_store::Store::connect(url, &crate::util::test_key())
        .await
        .unwrap();
    let entries = crate::util::revealed_entries(&store).await;
    store.close().await;
    entries
}

#[tokio::test]
async fn revealing_the_directory_is_in_the_ledger_with_who_and_never_a_phone_or_email() {
    let dir = workspace();
    for url in cli_databases(dir.path(), "contacts_reveal").await {
        let run_on = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(["--db", url.as_str()]);
            palabre(dir.path(), &all)
        };
        let run = run_on(&["contacts", "import", &example_csv()]);
        assert_eq!(run.code, 0, "{}", run.stderr);

        // Masked: nothing revealed, nothing recorded.
        let run = run_on(&["contacts", "list", "--as", "Awa Traoré"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(!run.stdout.contains("+22376942303"), "masked");
        let run = run_on(&["contacts", "list", "--format", "json", "--as", "Awa Traoré"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let (revealed, _) = revealed_entries(&url).await;
        assert!(revealed.is_empty(), "{url}: {revealed:#?}");

        // In clear: one entry, with who and how many.
        let run = run_on(&["contacts", "list", "--reveal", "--as", "Awa Traoré"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.contains("+22376942303"), "{}", run.stdout);
        let (revealed, _) = revealed_entries(&url).await;
        assert_eq!(revealed.len(), 1, "{url}: {revealed:#?}");
        let detail = &revealed[0].detail;
        assert!(
            detail.starts_with("contacts list: 238 contacts' phones and emails")
                && detail.ends_with("to Awa Traoré"),
            "{detail}"
        );

        let run = run_on(&[
            "contacts",
            "list",
            "--reveal",
            "--format",
            "json",
            "--as",
            "Awa Traoré",
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let (revealed, ledger) = revealed_entries(&url).await;
        assert_eq!(revealed.len(), 2, "one entry per listing: {revealed:#?}");
        let listed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let values: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| [c["phone"].as_str(), c["email"].as_str()])
            .flatten()
            .collect();
        assert!(values.len() > 238, "phones and emails in clear");
        for value in values {
            assert!(!ledger.contains(value), "{value} in the ledger");
        }
    }
}
