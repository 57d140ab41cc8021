//! No input, however broken or malicious, makes `palabre validate` panic or hang:
//! deep nesting, huge lines, binary garbage, YAML bombs. Each is rejected with a
//! positioned error (or, for the large but legal ones, accepted).

use crate::util::{palabre, workspace};

/// A valid meeting with the given id and title.
fn meeting_with_title(id: &str, title_value: &str) -> String {
    format!(
        "kind: meeting\nid: {id}\ntitle: {title_value}\nplace: mopti/koro\nrecurrence: \"0 9 * * 1\"\nvenue: V\n\
         recipients: [{{ role: leader }}]\nsteps: [{{ id: r, at: -1d, template: meeting-reminder, channels: [sms] }}]\n"
    )
}

/// Deterministic pseudo-random bytes (no seed file, no flakiness).
fn garbage(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

fn billion_laughs() -> String {
    let mut text =
        String::from("kind: meeting\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text.push_str("id: *a9\n");
    text
}

/// `(name, contents, must be rejected)`.
fn cases() -> Vec<(&'static str, Vec<u8>, bool)> {
    let mut deep_block = String::from("kind: meeting\nid:\n");
    for depth in 0..1_000 {
        deep_block.push_str(&" ".repeat(depth + 2));
        deep_block.push_str("a:\n");
    }
    vec![
        (
            "deep-flow.yaml",
            format!("kind: meeting\nid: {}", "[".repeat(200_000)).into_bytes(),
            true,
        ),
        ("deep-block.yaml", deep_block.into_bytes(), true),
        (
            "five-megabyte-line.yaml",
            meeting_with_title("huge", &"x".repeat(5 * 1024 * 1024)).into_bytes(),
            true,
        ),
        (
            "long-legal-line.yaml",
            meeting_with_title("long", &"x".repeat(900 * 1024)).into_bytes(),
            false,
        ),
        ("garbage.yaml", garbage(64 * 1024, 7), true),
        (
            "garbage-utf8.yaml",
            String::from_utf8_lossy(&garbage(64 * 1024, 11))
                .into_owned()
                .into_bytes(),
            true,
        ),
        (
            "nul-bytes.yaml",
            b"kind: meeting\0\0\0\nid: x\n".to_vec(),
            true,
        ),
        ("billion-laughs.yaml", billion_laughs().into_bytes(), true),
        (
            "many-aliases.yaml",
            format!(
                "kind: meeting\nx: &x 1\ny: [{}]\n",
                vec!["*x"; 50_000].join(",")
            )
            .into_bytes(),
            true,
        ),
        ("empty.yaml", Vec::new(), true),
        ("only-marker.yaml", b"---\n".to_vec(), true),
        (
            "two-documents.yaml",
            b"kind: meeting\n---\nkind: meeting\n".to_vec(),
            true,
        ),
        (
            "bom.yaml",
            [
                &b"\xEF\xBB\xBF"[..],
                meeting_with_title("bom", "T").as_bytes(),
            ]
            .concat(),
            false,
        ),
        (
            "huge-number.yaml",
            meeting_with_title("huge-number", "T")
                .replace("-1d", "-99999999999999999999999d")
                .into_bytes(),
            true,
        ),
        (
            "long-key.yaml",
            format!("kind: meeting\n{}: 1\n", "k".repeat(100_000)).into_bytes(),
            true,
        ),
        (
            "json.yaml",
            br#"{"kind": "meeting", "id": 1}"#.to_vec(),
            true,
        ),
    ]
}

#[test]
fn hostile_inputs_end_with_a_positioned_error_never_a_crash() {
    let dir = workspace();
    let meetings = dir.path().join("workflows/meetings");
    let mut files = Vec::new();
    for (name, contents, _) in cases() {
        std::fs::write(meetings.join(name), contents).unwrap();
        files.push(format!("workflows/meetings/{name}"));
    }
    // One run over all of them: every problem of the run is reported.
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let run = palabre(dir.path(), &args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for (name, _, rejected) in cases() {
        let prefix = format!("workflows/meetings/{name}:");
        let reported = run
            .stderr
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains(": error: "));
        assert_eq!(
            reported, rejected,
            "{name}: rejected={reported}\n{}",
            run.stderr
        );
    }
    assert!(
        run.stderr
            .contains("five-megabyte-line.yaml:1:1: error: file is"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("billion-laughs.yaml:7:15: error: document too large"),
        "{}",
        run.stderr
    );
    // Snippets of huge lines stay one screen wide.
    assert!(
        run.stderr.lines().all(|l| l.chars().count() < 400),
        "a diagnostic line is too long"
    );
}
