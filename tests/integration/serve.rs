//! `palabre serve` end to end, on the real clock, against a real SMTP server over
//! TCP: a meeting's mails arrive on schedule; a worker killed with SIGKILL in the
//! middle of a burst and restarted delivers the rest; an SMTP server refusing mail
//! for a while gets everything once it is back. On SQLite and on PostgreSQL.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Timelike, Utc};

use crate::smtp::SmtpServer;
use crate::util::{copy_dir, fresh_postgres_schema, palabre, postgres_url, repo};

/// A workflows folder with one meeting starting `lead` seconds from now, whose steps
/// are `offsets` seconds before it, for every leader and mayor of Koro.
pub(crate) fn workspace_with_meeting(lead: i64, offsets: &[i64]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    for file in ["places.yaml", "roles.yaml", "replies.yaml"] {
        std::fs::copy(repo().join("workflows").join(file), workflows.join(file)).unwrap();
    }
    copy_dir(
        &repo().join("workflows/templates"),
        &workflows.join("templates"),
    );
    let start = Utc::now() + TimeDelta::seconds(lead);
    let steps: String = offsets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "  - {{ id: step-{i}, at: -{s}s, template: meeting-reminder, channels: [email] }}\n"
            )
        })
        .collect();
    std::fs::write(
        workflows.join("soon.yaml"),
        format!(
            "kind: meeting\nid: soon\ntitle: Bientôt\nplace: mopti/koro\ntimezone: UTC\nvenue: Koro\n\
             recurrence: \"{} {} {} * * *\"\nrecipients: [{{ role: leader }}, {{ role: mayor }}]\nsteps:\n{steps}",
            start.second(),
            start.minute(),
            start.hour()
        ),
    )
    .unwrap();
    dir
}

/// Writes a directory of `count` leaders in Koro, all by email.
pub(crate) fn import_directory(dir: &Path, count: usize, db: &str) {
    let mut csv = String::from("id,name,roles,place,phone,email,language,channels\n");
    for i in 0..count {
        csv.push_str(&format!(
            "c-{i:04},Leader {i},leader,mopti/koro/koro,,leader{i}@example.org,fra,email\n"
        ));
    }
    std::fs::write(dir.join("people.csv"), csv).unwrap();
    let run = palabre(dir, &["contacts", "import", "people.csv", "--db", db]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Starts `palabre ARGS` in `dir` as a long-running process, logs on a pipe.
pub(crate) fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin!("palabre"));
    command
        .current_dir(dir)
        .args(args)
        .env_remove("PALABRE_DATABASE_URL")
        .env_remove("PALABRE_SMTP_HOST")
        .env_remove("PALABRE_KEY_FILE")
        .env("PALABRE_KEY", crate::util::TEST_KEY)
        .env("PALABRE_LOG", "info")
        // Each server gets a free port for its HTTP API: tests run side by side.
        .env("PALABRE_HTTP", "127.0.0.1:0")
        // `serve` writes to standard output only the demo's sign-in lines.
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().unwrap()
}

pub(crate) fn serve(dir: &Path, db: &str, smtp: &SmtpServer, extra: &[&str]) -> Child {
    let port = smtp.port.to_string();
    let mut args = vec![
        "serve",
        "--db",
        db,
        "--smtp-host",
        "127.0.0.1",
        "--smtp-security",
        "plain",
    ];
    args.extend(["--worker", "test-worker", "--smtp-port", &port]);
    args.extend(extra);
    spawn(dir, &args, &[])
}

/// Waits (bounded) until `done` holds; a real process is being watched, not timed.
pub(crate) fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

pub(crate) fn terminate(mut child: Child) -> String {
    // SAFETY-free: `kill -TERM` through the shell's command, to test graceful shutdown.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    // A test that reads the log as it comes has taken stderr already.
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        pipe.read_to_string(&mut stderr).unwrap();
    }
    assert!(
        status.success(),
        "serve did not stop cleanly on SIGTERM: {status}\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

async fn databases(dir: &Path, name: &str) -> Vec<String> {
    let mut urls = vec![format!("sqlite://{}", dir.join("palabre.db").display())];
    if let Some(base) = postgres_url() {
        urls.push(fresh_postgres_schema(&base, name).await);
    }
    urls
}

#[tokio::test]
async fn a_meetings_mails_arrive_on_schedule_through_smtp() {
    let dir = workspace_with_meeting(9, &[6, 4, 2]);
    for (i, db) in databases(dir.path(), "serve_smtp")
        .await
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            // The second backend gets a meeting of its own, later.
            std::fs::remove_file(dir.path().join("workflows/soon.yaml")).unwrap();
            let other = workspace_with_meeting(9, &[6, 4, 2]);
            std::fs::copy(
                other.path().join("workflows/soon.yaml"),
                dir.path().join("workflows/soon.yaml"),
            )
            .unwrap();
        }
        import_directory(dir.path(), 3, &db);
        let smtp = SmtpServer::start();
        let child = serve(dir.path(), &db, &smtp, &[]);
        let all_arrived = wait_until(Duration::from_secs(40), || smtp.mails().len() >= 9);
        let stderr = terminate(child);
        assert!(
            all_arrived,
            "{} of 9 mails arrived\n{stderr}",
            smtp.mails().len()
        );
        let ids: BTreeSet<String> = smtp.message_ids().into_iter().collect();
        assert_eq!(ids.len(), 9, "each message once");
        assert!(
            smtp.mails().iter().all(|m| m.contains("Subject: Rappel")),
            "{:?}",
            smtp.mails()
        );
        // Logs never carry an address in clear.
        assert!(!stderr.contains("@example.org"), "{stderr}");
        assert!(stderr.contains("timer fired"), "{stderr}");
        let status = palabre(dir.path(), &["status", "--db", &db, "--format", "json"]);
        let counts: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        assert_eq!(counts["counts"]["sent"], 9, "{}", status.stdout);
        assert_eq!(counts["counts"]["fired"], 3, "{}", status.stdout);
        assert_eq!(
            counts["counts"]["channels"],
            serde_json::json!([{ "channel": "email", "queued": 0, "retrying": 0, "sent": 9, "delivered": 0,
                "undelivered": 0, "dead_lettered": 0 }]),
            "{}",
            status.stdout
        );
        let table = palabre(dir.path(), &["status", "--db", &db]).stdout;
        assert!(
            table
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["email", "0", "0", "9", "0", "0", "0"]),
            "{table}"
        );
    }
}

#[tokio::test]
async fn a_worker_killed_mid_burst_and_restarted_delivers_everything() {
    let base = tempfile::tempdir().unwrap();
    for db in databases(base.path(), "serve_kill").await {
        killed_mid_burst(&db).await;
    }
}

async fn killed_mid_burst(db: &str) {
    // The reminder is due 9 s from now: after the import of 300 contacts and the
    // server's start, even on a loaded machine (a slot due before the server
    // first plans the workflow is not sent, and the burst would never come).
    let dir = workspace_with_meeting(12, &[3]);
    let db = db.to_owned();
    let recipients = 300;
    import_directory(dir.path(), recipients, &db);
    let smtp = SmtpServer::start();
    let mut child = serve(dir.path(), &db, &smtp, &[]);
    // Bounded by a loaded machine's pace (PostgreSQL over TCP records each mail in
    // its own round trips), not timed: the kill must come mid-burst, that is all.
    let started = wait_until(Duration::from_secs(90), || smtp.mails().len() >= 40);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill = smtp.mails().len();
    let mut log = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        use std::io::Read as _;
        let _ = stderr.read_to_string(&mut log);
    }
    assert!(
        started && at_kill < recipients,
        "the kill came too late to be mid-burst ({at_kill})\n{log}"
    );
    let child = serve(dir.path(), &db, &smtp, &[]);
    let complete = wait_until(Duration::from_secs(60), || {
        smtp.message_ids()
            .into_iter()
            .collect::<BTreeSet<_>>()
            .len()
            >= recipients
    });
    terminate(child);
    let ids = smtp.message_ids();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert!(
        complete,
        "{} of {recipients} delivered after the restart",
        unique.len()
    );
    assert_eq!(unique.len(), recipients, "every message delivered");
    // At-least-once: only a message in flight at the kill (accepted by SMTP, not yet
    // recorded) can be sent again; delivery is sequential, so at most one.
    let repeats = ids.len() - unique.len();
    assert!(repeats <= 1, "{repeats} messages delivered twice");
    let backend = db.split(':').next().unwrap_or_default();
    eprintln!(
        "{backend}: killed after {at_kill} of {recipients} mails; {repeats} repeat(s) after the restart"
    );
}

#[tokio::test]
async fn mail_refused_for_a_while_is_delivered_after_backoff() {
    let dir = workspace_with_meeting(5, &[3]);
    for db in databases(dir.path(), "serve_refuse").await {
        let dir = workspace_with_meeting(5, &[3]);
        import_directory(dir.path(), 5, &db);
        let smtp = SmtpServer::start();
        smtp.refuse(true);
        let child = serve(dir.path(), &db, &smtp, &["--retry-first-delay", "1s"]);
        // Wait until deliveries have been attempted and refused, then bring the server back.
        let refused = wait_until(Duration::from_secs(30), || {
            let status = palabre(dir.path(), &["status", "--db", &db, "--format", "json"]);
            serde_json::from_str::<serde_json::Value>(&status.stdout)
                .is_ok_and(|v| v["counts"]["retrying"].as_i64().unwrap_or(0) >= 5)
        });
        assert!(refused, "deliveries were never retried");
        assert!(smtp.mails().is_empty());
        smtp.refuse(false);
        let delivered = wait_until(Duration::from_secs(30), || smtp.mails().len() >= 5);
        terminate(child);
        assert!(
            delivered,
            "{} of 5 delivered after the server came back",
            smtp.mails().len()
        );
        let status = palabre(dir.path(), &["status", "--db", &db, "--format", "json"]);
        let counts: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        assert_eq!(counts["counts"]["sent"], 5);
        assert_eq!(counts["counts"]["dead_lettered"], 0);
    }
    drop(dir);
}

/// Runs `serve` against `smtp` with `security` until `count` mails arrived (or a
/// bounded wait ran out); returns the `status` counts.
fn serve_until(
    dir: &Path,
    db: &str,
    smtp: &SmtpServer,
    security: &str,
    password: &str,
    count: usize,
) -> serde_json::Value {
    std::fs::write(dir.join("ca.pem"), &smtp.certificate_pem).unwrap();
    let port = smtp.port.to_string();
    let args = [
        "serve",
        "--db",
        db,
        "--smtp-host",
        "127.0.0.1",
        "--worker",
        "tls-worker",
        "--smtp-port",
        &port,
        "--smtp-security",
        security,
        "--smtp-ca-file",
        "ca.pem",
        "--smtp-user",
        "palabre",
        "--smtp-password-env",
        "TEST_SMTP_SECRET",
    ];
    let child = spawn(dir, &args, &[("TEST_SMTP_SECRET", password)]);
    let arrived = wait_until(Duration::from_secs(30), || {
        let status = palabre(dir, &["status", "--db", db, "--format", "json"]);
        let done = serde_json::from_str::<serde_json::Value>(&status.stdout)
            .map(|v| {
                v["counts"]["sent"].as_i64().unwrap_or(0)
                    + v["counts"]["dead_lettered"].as_i64().unwrap_or(0)
            })
            .unwrap_or(0);
        done >= i64::try_from(count).unwrap()
    });
    let stderr = terminate(child);
    assert!(arrived, "not every message was settled\n{stderr}");
    assert!(!stderr.contains(password), "the password was logged");
    let status = palabre(dir, &["status", "--db", db, "--format", "json"]);
    serde_json::from_str(&status.stdout).unwrap()
}

#[tokio::test]
async fn smtp_over_starttls_and_implicit_tls_with_a_password_from_the_environment() {
    for (security, mode) in [
        ("starttls", crate::smtp::Security::StartTls),
        ("tls", crate::smtp::Security::ImplicitTls),
    ] {
        let dir = workspace_with_meeting(5, &[3]);
        let db = format!("sqlite://{}", dir.path().join("palabre.db").display());
        import_directory(dir.path(), 3, &db);
        let smtp = SmtpServer::with(mode, Some(("palabre", "s3cret")));
        let status = serve_until(dir.path(), &db, &smtp, security, "s3cret", 3);
        assert_eq!(status["counts"]["sent"], 3, "{security}: {status}");
        let received = smtp.received();
        assert_eq!(received.len(), 3);
        assert!(
            received
                .iter()
                .all(|r| r.encrypted && r.user.as_deref() == Some("palabre")),
            "{security}: {received:?}"
        );
    }
}

#[tokio::test]
async fn a_wrong_smtp_password_dead_letters_instead_of_retrying_forever() {
    let dir = workspace_with_meeting(5, &[3]);
    let db = format!("sqlite://{}", dir.path().join("palabre.db").display());
    import_directory(dir.path(), 2, &db);
    let smtp = SmtpServer::with(crate::smtp::Security::StartTls, Some(("palabre", "s3cret")));
    let status = serve_until(dir.path(), &db, &smtp, "starttls", "wrong", 2);
    assert_eq!(status["counts"]["dead_lettered"], 2, "{status}");
    assert!(smtp.received().is_empty());
    let dead = status["recent_dead_letters"].to_string();
    assert!(dead.contains("535"), "{dead}");
}

/// The README's run command, in a fresh copy of the repository's layout: the engine
/// starts on SQLite with the invented directory and delivers the demo meeting's
/// invitations as `.eml` files within a minute, all under `demo/` (its own
/// database and outbox); its logs are JSON when asked.
#[test]
fn the_readme_demo_delivers_mail_within_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("workflows"), &dir.path().join("workflows"));
    copy_dir(&repo().join("examples"), &dir.path().join("examples"));
    let mut child = spawn(
        dir.path(),
        &["--log-format", "json", "serve", "--demo"],
        &[],
    );
    let started = Instant::now();
    let outbox = dir.path().join("demo/outbox");
    let mailed = wait_until(Duration::from_secs(75), || {
        std::fs::read_dir(&outbox).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "eml"))
        })
    });
    let waited = started.elapsed();
    let mut stdout = child.stdout.take().unwrap();
    let stderr = terminate(child);
    assert!(mailed, "no .eml in demo/outbox/ after {waited:?}\n{stderr}");
    // The dashboard's address and the demo's own sign-in token, for people.
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut printed).unwrap();
    assert!(
        printed.contains("dashboard: http://127.0.0.1:"),
        "{printed}"
    );
    assert!(printed.contains("  plb_"), "{printed}");
    assert!(!stderr.contains("plb_"), "a token in the logs:\n{stderr}");
    assert!(waited < Duration::from_secs(70), "took {waited:?}");
    assert!(dir.path().join("demo/palabre.db").exists());
    assert!(
        !dir.path().join("palabre.db").exists() && !dir.path().join("outbox").exists(),
        "the demo wrote outside demo/"
    );
    assert!(
        std::fs::read_dir(outbox.join("sms")).unwrap().count() > 0,
        "SMS went to demo/outbox/sms"
    );
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(entry["level"].is_string(), "{line}");
    }
    assert!(stderr.contains("palabre serving"), "{stderr}");
    assert!(
        !stderr.contains("@example.org") && !stderr.contains("+223"),
        "personal data in the logs:\n{stderr}"
    );
}

/// The demo never touches real data: a contact imported into the real database
/// keeps its name and number after a demo run (the invented directory has a
/// contact of the same id), the demo refuses a configured SMTP server, and it
/// leaves nothing in the system's temporary folder.
#[test]
fn the_demo_never_touches_the_real_database_or_real_connectors() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("workflows"), &dir.path().join("workflows"));
    copy_dir(&repo().join("examples"), &dir.path().join("examples"));
    std::fs::write(
        dir.path().join("real.csv"),
        "id,name,roles,place,phone,email,language,channels\n\
         c-0001,Vraie Personne,leader,mopti/koro/koro,76 00 00 01,,fra,sms\n",
    )
    .unwrap();
    let imported = palabre(dir.path(), &["contacts", "import", "real.csv"]);
    assert_eq!(imported.code, 0, "{}", imported.stderr);

    let refused = palabre(
        dir.path(),
        &[
            "serve",
            "--demo",
            "--smtp-host",
            "127.0.0.1",
            "--http",
            "off",
        ],
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("will not send through an SMTP server")
            && refused.stderr.contains("--demo-with-real-connectors"),
        "{}",
        refused.stderr
    );

    let (mut child, log) = {
        let mut child = spawn(dir.path(), &["serve", "--demo"], &[]);
        let (log, _reader) = read_log(&mut child);
        (child, log)
    };
    let started = wait_until(Duration::from_secs(30), || {
        log.lock().unwrap().contains("palabre serving")
    });
    let pid = child.id();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    child.wait().unwrap();
    let log = log.lock().unwrap().clone();
    assert!(started, "{log}");
    assert!(log.contains("the real database is not touched"), "{log}");
    assert!(
        !std::env::temp_dir()
            .join(format!("palabre-demo-{pid}"))
            .exists(),
        "the demo left a temporary folder"
    );

    let listed = palabre(dir.path(), &["contacts", "list", "--reveal"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let real = listed
        .stdout
        .lines()
        .find(|l| l.contains("c-0001"))
        .unwrap_or_default();
    assert!(
        real.contains("Vraie Personne") && real.contains("+22376000001"),
        "the real contact changed: {}",
        listed.stdout
    );
    assert_eq!(
        listed.stdout.lines().filter(|l| l.contains("c-0")).count(),
        1
    );
    let demo = palabre(
        dir.path(),
        &[
            "contacts",
            "list",
            "--db",
            "sqlite://demo/palabre.db",
            "--key-file",
            "demo/palabre.key",
        ],
    );
    assert!(demo.stdout.lines().count() > 200, "{}", demo.stdout);
    assert!(dir.path().join("demo/demo-meeting.yaml").exists());
}

/// Collects a child's stderr as it comes, for tests that wait on its log.
pub(crate) fn read_log(
    child: &mut Child,
) -> (
    std::sync::Arc<std::sync::Mutex<String>>,
    std::thread::JoinHandle<()>,
) {
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut buffer = [0_u8; 4096];
        while let Ok(n) = stderr.read(&mut buffer) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    (log, reader)
}

/// One HTTP/1.1 request over a plain TCP connection; the status line and body.
fn http(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `serve` answers the HTTP API over TCP, with a token made by `palabre token create`.
#[tokio::test]
async fn serve_answers_the_http_api_over_tcp() {
    let dir = crate::util::workspace_with_directory();
    let run = palabre(
        dir.path(),
        &[
            "token",
            "create",
            "--role",
            "coordinator",
            "--scope",
            "mopti",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let token = run.stdout.trim().to_owned();
    assert!(token.starts_with("plb_"), "{token}");
    let run = palabre(
        dir.path(),
        &["token", "create", "--role", "king", "--scope", "mopti"],
    );
    assert_eq!(run.code, 2);
    let mut child = spawn(dir.path(), &["serve", "--reload-every", "0s"], &[]);
    let (log, reader) = read_log(&mut child);
    let address = || {
        let log = log.lock().unwrap();
        log.split("address=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    };
    assert!(
        wait_until(Duration::from_secs(30), || address().is_some()),
        "{}",
        log.lock().unwrap()
    );
    let address = address().unwrap();
    let (status, body) = http(&address, "GET", "/healthz", None, "");
    assert!(status.contains("200"), "{status} {body}");
    let (status, _) = http(&address, "POST", "/cases", None, "{}");
    assert!(status.contains("401"), "{status}");
    let case = r#"{"workflow":"litiges-mopti","category":"eau","place":"mopti/koro/koro","description":"Un puits"}"#;
    let (status, body) = http(&address, "POST", "/cases", Some(&token), case);
    assert!(status.contains("201"), "{status} {body}");
    assert!(body.contains("\"id\":\"LM-0001\""), "{body}");
    terminate(child);
    reader.join().unwrap();
    let log = log.lock().unwrap().clone();
    assert!(
        !log.contains(&token[10..]),
        "the token's secret is never logged"
    );
}

/// Edits reach a running server without a restart: a broken rule is refused with
/// its position in the log while the last good definitions keep running; once
/// fixed, the new rule and a new workflow that names it take effect.
#[tokio::test]
async fn edited_rules_and_workflows_are_reloaded_and_broken_ones_refused() {
    let dir = workspace_with_meeting(3600, &[1800]);
    let db = format!("sqlite://{}", dir.path().join("palabre.db").display());
    import_directory(dir.path(), 3, &db);
    let smtp = SmtpServer::start();
    let mut child = serve(dir.path(), &db, &smtp, &["--reload-every", "1s"]);
    let (log, reader) = read_log(&mut child);
    let logged = |text: &str| log.lock().unwrap().contains(text);
    assert!(wait_until(Duration::from_secs(30), || logged(
        "palabre serving"
    )));

    let rules = dir.path().join("workflows/rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("national.rhai"),
        "fn extra_guests(input) {\n    [\n}\n",
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || logged(
            "the last good ones keep running"
        )),
        "{}",
        log.lock().unwrap()
    );

    std::fs::write(
        rules.join("national.rhai"),
        "fn extra_guests(input) {\n    []\n}\n",
    )
    .unwrap();
    let soon = workspace_with_meeting(8, &[4]);
    let text = std::fs::read_to_string(soon.path().join("workflows/soon.yaml"))
        .unwrap()
        .replace("id: soon", "id: soon-two")
        + "rules: { invitees: extra_guests }\n";
    std::fs::write(dir.path().join("workflows/soon-two.yaml"), text).unwrap();
    let arrived = wait_until(Duration::from_secs(40), || smtp.mails().len() >= 3);

    terminate(child);
    reader.join().unwrap();
    let log = log.lock().unwrap().clone();
    assert!(arrived, "{} of 3 mails\n{log}", smtp.mails().len());
    assert!(
        log.contains("rules/national.rhai")
            && log.contains("line=3")
            && log.contains("syntax error"),
        "the refusal names the script and the line:\n{log}"
    );
    assert!(log.contains("definitions reloaded"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// One broken file must not stop every commune after a restart: `serve` starts
/// on the last good definitions the database kept, says so in its log, in
/// `palabre status` (table and JSON) and in `/metrics`, and takes the folder up
/// again as soon as it is mended. With no good copy kept (a first start), an
/// invalid folder is still refused.
#[test]
fn a_restart_on_a_broken_folder_runs_the_last_good_definitions() {
    let dir = crate::util::workspace();
    let meeting = dir.path().join("workflows/meetings/dialogue-koro.yaml");
    let good = std::fs::read_to_string(&meeting).unwrap();

    // A first start on a broken folder: nothing good to fall back on.
    std::fs::write(&meeting, format!("{good}\nsteps_typo: [\n")).unwrap();
    let refused = palabre(dir.path(), &["serve", "--http", "off"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("dialogue-koro.yaml"),
        "{}",
        refused.stderr
    );

    // A good run keeps a copy of the definitions.
    std::fs::write(&meeting, &good).unwrap();
    let mut child = spawn(dir.path(), &["serve"], &[]);
    let (log, reader) = read_log(&mut child);
    assert!(wait_until(Duration::from_secs(30), || log
        .lock()
        .unwrap()
        .contains("palabre serving")));
    terminate(child);
    reader.join().unwrap();

    // The power comes back on a folder someone broke meanwhile.
    std::fs::write(&meeting, format!("{good}\nsteps_typo: [\n")).unwrap();
    let mut child = spawn(dir.path(), &["serve", "--reload-every", "1s"], &[]);
    let (log, reader) = read_log(&mut child);
    let logged = |text: &str| log.lock().unwrap().contains(text);
    assert!(
        wait_until(Duration::from_secs(30), || logged("palabre serving")),
        "{}",
        log.lock().unwrap()
    );
    assert!(
        logged("running on the last good definitions"),
        "{}",
        log.lock().unwrap()
    );
    assert!(logged("dialogue-koro.yaml"), "{}", log.lock().unwrap());
    let status = palabre(dir.path(), &["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status
            .stdout
            .contains("the workflows folder has been invalid since")
            && status.stdout.contains("dialogue-koro.yaml"),
        "{}",
        status.stdout
    );
    let json = palabre(dir.path(), &["status", "--format", "json"]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(
        value["counts"]["definitions"]["invalid_since"].is_string(),
        "{}",
        json.stdout
    );
    let address = {
        let log = log.lock().unwrap();
        log.split("address=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .unwrap()
    };
    let (_, metrics) = http(&address, "GET", "/metrics", None, "");
    let gauge = metrics
        .lines()
        .find(|l| l.starts_with("palabre_definitions_invalid_since_seconds "))
        .unwrap_or_default();
    assert!(!gauge.ends_with(" 0") && !gauge.is_empty(), "{metrics}");

    // Mended: taken up at once, and the warning is gone.
    std::fs::write(&meeting, &good).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || logged("definitions reloaded")),
        "{}",
        log.lock().unwrap()
    );
    let status = palabre(dir.path(), &["status"]);
    assert!(
        !status.stdout.contains("invalid since"),
        "{}",
        status.stdout
    );
    terminate(child);
    reader.join().unwrap();
}
