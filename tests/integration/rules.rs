//! Local rules in Rhai: the shipped rules pass their cases, resolution along the
//! place hierarchy, the reference, hostile scripts stopped by the sandbox, and
//! rule decisions carried out by the runtime on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use palabre_core::clock::{Clock, VirtualClock};
use palabre_core::diagnostic::Diagnostics;
use palabre_lang::calendars::Calendars;
use palabre_plan::definitions::Definitions;
use palabre_rules::{
    Answer, InviteesDecision, Limits, MeetingFacts, Rules, ScheduleDecision, World, meeting_input,
};

use crate::runtime::{Recorder, World as RuntimeWorld, at, events, run_until, worlds};
use crate::util::{palabre, repo, workspace};

const EXTENSIONS: &[palabre_core::rule_function::RuleFunction] = palabre_sms::RULE_FUNCTIONS;

#[test]
fn the_shipped_rules_pass_their_cases() {
    let run = palabre(&repo(), &["test"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("test result: ok. 39 passed; 0 failed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "case workflows/rules/mopti/djenne/djenne.test.yaml:2 a meeting on market Monday moves to Tuesday, same time ... ok"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn a_failing_case_is_reported_like_a_test_runner() {
    let dir = workspace();
    let cases = dir
        .path()
        .join("workflows/rules/mopti/koro/dinangourou.test.yaml");
    let mut text = std::fs::read_to_string(&cases).unwrap();
    text.push_str(
        "\n- name: wrongly expects a quorum\n  hook: meeting_quorum\n  date: 2026-12-05\n  \
         participants: [{ id: c-1, roles: [leader], response: \"yes\" }]\n  \
         expect: { reached: true, reason: \"ok\" }\n",
    );
    std::fs::write(&cases, text).unwrap();
    let run = palabre(dir.path(), &["test", "workflows/rules/mopti/koro"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("running 4 rule case(s)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "---- workflows/rules/mopti/koro/dinangourou.test.yaml:30 wrongly expects a quorum ----\n\
             expected: {\"reached\":true,\"reason\":\"ok\"}\n     \
             got: {\"reached\":false,\"reason\":\"le maire n'a pas confirmé\"} (answered by rules/mopti/koro/dinangourou.rhai)"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("test result: FAILED. 3 passed; 1 failed"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_case_that_no_rule_could_satisfy_is_a_positioned_error() {
    let dir = workspace();
    std::fs::write(
        dir.path().join("workflows/rules/mopti.test.yaml"),
        "- name: impossible\n  hook: meeting_schedule\n  date: 2026-12-02\n  expect: { skip: 3 }\n\
         - name: unknown hook\n  hook: meeting_shedule\n  date: 2026-12-02\n",
    )
    .unwrap();
    let run = palabre(dir.path(), &["test", "workflows/rules/mopti.test.yaml"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "mopti.test.yaml:4:11: error: no rule could return this: 'skip': expected a string, got an integer"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "mopti.test.yaml:6:9: error: unknown hook 'meeting_shedule' (did you mean 'meeting_schedule'?)"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_case_file_that_cannot_be_read_is_an_error_not_a_failed_case() {
    let dir = workspace();
    // Beside the shipped case files, which all still run.
    let cases = dir.path().join("workflows/rules/segou/macina.test.yaml");
    std::fs::write(
        &cases,
        "- name: a colon: in a name\n  hook: meeting_schedule\n  date: 2026-12-02\n",
    )
    .unwrap();
    let run = palabre(dir.path(), &["test", "workflows/rules"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "macina.test.yaml:1:16: error: mapping values are not allowed in this context: if a value contains ': ', put it in quotes"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains(
            "test result: error. 39 passed; 0 failed; 1 error(s) in the case files: fix them to run their cases"
        ),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("FAILED"), "{}", run.stdout);
    let run = palabre(dir.path(), &["test", "workflows/rules/no-such.test.yaml"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("test result: error. 0 passed; 0 failed; 1 error(s)"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("FAILED"), "{}", run.stdout);
}

#[test]
fn the_reference_documents_the_rule_test_format() {
    let reference = palabre_rules::reference(EXTENSIONS);
    let section = reference
        .split("\n## Rule tests\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap_or_else(|| panic!("no '## Rule tests' section:\n{reference}"));
    // Every field a case may have is documented.
    for field in [
        "`name`",
        "`hook`",
        "`function`",
        "`place`",
        "`date`",
        "`time`",
        "`timezone`",
        "`now`",
        "`participants`",
        "`input`",
        "`expect`",
        "`expect_error`",
        "`response`",
        "palabre test",
        ".test.yaml",
    ] {
        assert!(
            section.contains(field),
            "{field} is not documented:\n{section}"
        );
    }
    // Its example is a case file `palabre test` runs and passes.
    let example = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an example case file");
    let dir = workspace();
    std::fs::write(
        dir.path()
            .join("workflows/rules/mopti/djenne/djenne.test.yaml"),
        example,
    )
    .unwrap();
    let run = palabre(
        dir.path(),
        &["test", "workflows/rules/mopti/djenne/djenne.test.yaml"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(" 0 failed"), "{}", run.stdout);
}

#[test]
fn explain_shows_which_script_answers_and_what_parent_reaches() {
    let run = palabre(
        &repo(),
        &[
            "rules",
            "explain",
            "segou/macina/kolongo",
            "meeting_invitees",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "meeting_invitees at segou/macina/kolongo:\n  \
         workflows/rules/segou/macina/kolongo.rhai: line 6: defines it; answers\n  \
         workflows/rules/segou/macina.rhai: no such script\n  \
         workflows/rules/segou.rhai: line 5: defines it; reached through parent()\n  \
         workflows/rules/national.rhai: does not define meeting_invitees\n  \
         built-in default (reached through parent()): nobody beyond the YAML groups\n"
    );
    let run = palabre(
        &repo(),
        &[
            "rules",
            "explain",
            "mopti/koro/dinangourou",
            "meeting_quorum",
        ],
    );
    assert!(
        run.stdout.contains(
            "workflows/rules/national.rhai: line 21: defines it; not reached (the rule below does not call parent())"
        ),
        "{}",
        run.stdout
    );
    let run = palabre(&repo(), &["rules", "explain", "mopti/nowhere", "x"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("unknown place 'mopti/nowhere'"));
}

#[test]
fn the_reference_is_current_and_documents_every_hook_and_function() {
    let run = palabre(&repo(), &["rules", "docs"]);
    assert_eq!(run.code, 0);
    let committed = std::fs::read_to_string(repo().join("docs/rules.md")).unwrap();
    assert_eq!(
        run.stdout, committed,
        "docs/rules.md is stale: run `cargo run -- rules docs > docs/rules.md`"
    );
    for name in [
        "### `meeting_schedule(input)`",
        "### `meeting_invitees(input)`",
        "### `meeting_quorum(input)`",
        "### `meeting_reminders(input)`",
        "### `is_holiday(date: &str) -> bool`",
        "### `is_market_day(date: &str, place: &str) -> bool`",
        "### `alert(date: &str, place: &str) -> String`",
        "### `contacts_with_role(role: &str, place: &str) -> Array`",
        "### `parent(input: Map) -> Dynamic`",
        // Registered by the SMS plugin, not by the engine.
        "### `sms_segments(text: &str) -> i64`",
    ] {
        assert!(run.stdout.contains(name), "missing {name}");
    }
    // Every function has its doc comment.
    for section in run.stdout.split("\n### ").skip(1) {
        let doc = section.lines().nth(2).unwrap_or_default();
        assert!(!doc.trim().is_empty(), "undocumented: {section}");
    }
}

/// The shipped definitions, with more scripts written at their places.
fn rules_with(scripts: &[(&str, &str)], limits: Limits) -> (tempfile::TempDir, Rules) {
    let dir = workspace();
    let root = dir.path().join("workflows");
    for (place, script) in scripts {
        let file = root.join(format!("rules/{place}.rhai"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, script).unwrap();
    }
    let (definitions, diagnostics) = Definitions::load(&root, None, EXTENSIONS);
    assert!(!diagnostics.has_errors(), "{:?}", diagnostics.sorted());
    let mut diagnostics = Diagnostics::default();
    let world = World::new(
        definitions.places.clone(),
        Calendars::load(
            &root.join("calendars"),
            &definitions.places,
            &mut diagnostics,
        ),
        definitions.roles.clone(),
        definitions.templates.names().map(str::to_owned).collect(),
    );
    let rules = Rules::load(&root, world, EXTENSIONS, limits, &mut diagnostics);
    assert!(!diagnostics.has_errors(), "{:?}", diagnostics.sorted());
    (dir, rules)
}

fn schedule_at(rules: &Rules, place: &str, start: DateTime<Utc>) -> Answer<ScheduleDecision> {
    let facts = MeetingFacts::new("test", "Test", place, "", chrono_tz::Africa::Bamako);
    let input = meeting_input(rules.world(), &facts, start, start);
    rules.ask::<ScheduleDecision>(place, None, input, &Default::default())
}

/// Each hostile script is stopped, the decision is the default, and the error
/// names the script and the line: where a runtime error happened, or for a limit
/// the line of the hook function that was stopped (Rhai does not keep the position
/// of a limit across calls).
#[test]
fn hostile_rules_are_stopped_and_the_default_applies() {
    let cases: [(&str, &str, &str); 8] = [
        (
            "fn meeting_schedule(input) {\n    let n = 0;\n    loop { n += 1; }\n}\n",
            ":1:",
            "stopped after 100000 operations (an endless loop?)",
        ),
        (
            "fn deeper(n) {\n    deeper(n + 1)\n}\nfn meeting_schedule(input) {\n    deeper(0)\n}\n",
            ":4:",
            "too many nested calls (endless recursion?)",
        ),
        (
            "fn meeting_schedule(input) {\n    let text = \"palabre\";\n    loop { text += text; }\n}\n",
            ":1:",
            "grew past its limit",
        ),
        (
            "fn meeting_schedule(input) {\n    let list = [];\n    loop { list.push(input); }\n}\n",
            ":1:",
            "grew past its limit",
        ),
        (
            "fn meeting_schedule(input) {\n    let map = #{};\n    let i = 0;\n    loop { map[`k${i}`] = i; i += 1; }\n}\n",
            ":1:",
            // Rhai measures a map when it is passed or returned, not on each
            // indexed insertion: the operation limit may come first.
            "grew past its limit | stopped after 100000 operations",
        ),
        (
            "fn meeting_schedule(input) {\n    #{ skip: 42 }\n}\n",
            ":1:",
            "returned a wrong value: 'skip': expected a string, got an integer",
        ),
        (
            "fn meeting_schedule(input) {\n    #{ mov_to: \"2026-12-03\" }\n}\n",
            ":1:",
            "unknown key 'mov_to' (did you mean 'move_to'?)",
        ),
        (
            "fn meeting_schedule(input) {\n    if is_holiday(\"tomorrow\") { #{ skip: \"x\" } }\n}\n",
            ":2:",
            "'tomorrow' is not a date: write YYYY-MM-DD",
        ),
    ];
    // The time budget has its own test; here it is generous, so that on a slow or
    // busy machine the limit under test is the one that stops the script.
    let limits = Limits {
        time: Duration::from_secs(30),
        ..Limits::default()
    };
    for (script, line, message) in cases {
        let messages: Vec<&str> = message.split(" | ").collect();
        let (_dir, rules) = rules_with(&[("mopti/koro/bondo", script)], limits);
        let started = std::time::Instant::now();
        let answer = schedule_at(&rules, "mopti/koro/bondo", at("2026-12-07T09:00:00Z"));
        assert!(started.elapsed() < Duration::from_secs(30), "{script}");
        assert_eq!(answer.decision, ScheduleDecision::Hold, "{script}");
        assert_eq!(answer.by, None, "the default answered");
        let error = answer.failure.expect("a failure is reported").to_string();
        assert!(
            error.contains("rules/mopti/koro/bondo.rhai")
                && error.contains(line)
                && messages.iter().any(|m| error.contains(m)),
            "{script}\n{error}"
        );
    }
}

#[test]
fn a_rule_that_runs_out_of_time_is_stopped_by_the_time_budget() {
    let limits = Limits {
        operations: 0, // unlimited: only the clock can stop it
        time: Duration::from_millis(20),
        ..Limits::default()
    };
    let (_dir, rules) = rules_with(
        &[(
            "mopti/koro/bondo",
            "fn meeting_schedule(input) {\n    let n = 0;\n    loop { n += 1; }\n}\n",
        )],
        limits,
    );
    let started = std::time::Instant::now();
    let answer = schedule_at(&rules, "mopti/koro/bondo", at("2026-12-07T09:00:00Z"));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(answer.decision, ScheduleDecision::Hold);
    let error = answer.failure.unwrap().to_string();
    assert!(error.contains("took longer than 20 ms"), "{error}");
}

#[test]
fn eval_is_not_reachable_through_function_pointers() {
    let (_dir, rules) = rules_with(
        &[(
            "mopti/koro/bondo",
            "fn meeting_schedule(input) {\n    call(Fn(\"ev\" + \"al\"), \"#{ skip: `x` }\")\n}\n",
        )],
        Limits::default(),
    );
    let answer = schedule_at(&rules, "mopti/koro/bondo", at("2026-12-07T09:00:00Z"));
    assert_eq!(answer.decision, ScheduleDecision::Hold);
    assert!(answer.failure.is_some());
}

#[test]
fn a_failure_in_the_script_above_is_located_there() {
    // The commune asks its cercle, whose rule loops: the error names the cercle's script.
    let (_dir, rules) = rules_with(
        &[
            (
                "mopti/koro/bondo",
                "fn meeting_invitees(input) {\n    parent(input) + [\"c-0001\"]\n}\n",
            ),
            (
                "mopti/koro",
                "fn meeting_invitees(input) {\n    loop { }\n}\n",
            ),
        ],
        Limits::default(),
    );
    let facts = MeetingFacts::new(
        "test",
        "Test",
        "mopti/koro/bondo",
        "",
        chrono_tz::Africa::Bamako,
    );
    let start = at("2026-12-07T09:00:00Z");
    let input = meeting_input(rules.world(), &facts, start, start);
    let answer =
        rules.ask::<InviteesDecision>("mopti/koro/bondo", None, input, &Default::default());
    assert_eq!(answer.decision, InviteesDecision(Vec::new()));
    let error = answer.failure.unwrap().error;
    assert!(error.file.ends_with("rules/mopti/koro.rhai"), "{error}");
    assert_eq!(error.line, 1, "the cercle's function: {error}");
}

/// The time budget stays per decision: many quick decisions in a row all succeed.
#[test]
fn quick_rules_are_not_stopped() {
    let (_dir, rules) = rules_with(
        &[(
            "mopti/koro/bondo",
            "fn meeting_schedule(input) {\n    parent(input)\n}\n",
        )],
        Limits::default(),
    );
    for _ in 0..1000 {
        let answer = schedule_at(&rules, "mopti/koro/bondo", at("2026-12-07T09:00:00Z"));
        assert!(answer.failure.is_none());
    }
    let answer = schedule_at(&rules, "mopti/koro/bondo", at("2027-09-22T09:00:00Z"));
    assert_eq!(
        answer.decision,
        ScheduleDecision::Skip {
            reason: "Jour férié : Fête de l'Indépendance".to_owned()
        },
        "parent() reached the national rule"
    );
    assert!(answer.by.unwrap().ends_with("rules/mopti/koro/bondo.rhai"));
}

const RULES_NATIONAL: &str = "\
fn meeting_schedule(input) {
    let feast = holiday(input.occurrence.date);
    if feast != \"\" { return #{ skip: `Jour férié : ${feast}` }; }
    ()
}
";

const RULES_MOPTI: &str = "\
fn meeting_invitees(input) {
    parent(input) + [\"c-4\"]
}
fn meeting_reminders(input) {
    [#{ at: \"-1d\", template: \"meeting-reminder\", channels: [\"sms\"] }]
}
";

const RULES_KORO: &str = "\
fn meeting_schedule(input) {
    let decision = parent(input);
    if type_of(decision) != \"()\" { return decision; }
    if period(input.occurrence.date) == \"Foire annuelle\" {
        return #{ move_to: add_days(input.occurrence.date, 1), reason: \"Foire annuelle\" };
    }
    ()
}
";

/// A rule that never ends, for a second workflow that must keep running.
const RULES_MACINA: &str = "\
fn meeting_schedule(input) {
    loop { }
}
";

const HOSTILE_MEETING: &str = "\
kind: meeting
id: weekly-macina
title: Réunion de Macina
place: segou/macina
recurrence: \"0 10 * * MON\"
venue: Mairie de Macina
recipients: [{ role: leader }]
steps:
  - { id: reminder, at: -1h, template: meeting-reminder, channels: [sms] }
";

const CALENDAR: &str = "\
dated:
  - { date: 2026-12-14, name: \"Journée test\" }
periods:
  - { from: 2026-12-20, to: 2026-12-21, name: \"Foire annuelle\" }
";

const MORE_CONTACTS: &str = "id,name,roles,place,phone,email,language,channels
c-4,Fanta Keita,partner,mopti,76 00 00 04,,fra,sms
c-5,Sidi Coulibaly,leader,segou/macina/macina,76 00 00 05,,bam,sms
";

/// Gives `world` the rules above, their calendar, the Macina workflow and its
/// contacts.
async fn with_rules(world: &RuntimeWorld) {
    for (file, text) in [
        ("rules/national.rhai", RULES_NATIONAL),
        ("rules/mopti.rhai", RULES_MOPTI),
        ("rules/mopti/koro.rhai", RULES_KORO),
        ("rules/segou/macina.rhai", RULES_MACINA),
        ("calendars/test.yaml", CALENDAR),
        ("macina.yaml", HOSTILE_MEETING),
    ] {
        let path = world.workflows.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    world.add_csv(MORE_CONTACTS).await;
}

/// Two weeks due at once (a worker that was down), fired a timer per batch
/// (each batch fired while the one before is written and delivered, the
/// rules' skip and move applied between) or all in one batch: the same
/// messages reach the same people, once each.
#[tokio::test]
async fn firing_in_small_batches_sends_what_one_batch_sends() {
    let mut sent_by_batch = Vec::new();
    for batch in [500, 1] {
        // Every missed slot runs, however late, so that all of them are due at once.
        let misfire = "all\nmisfire_grace: 30d";
        for world in worlds(&format!("rules_batch_{batch}"), misfire).await {
            with_rules(&world).await;
            let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
            let (_, _, connectors) = Recorder::pair();
            let runtime = world
                .runtime_in_batches(&clock, connectors, "a", batch)
                .await;
            runtime.tick().await.unwrap();
            clock.advance_to(at("2026-12-16T00:00:00Z"));
            let report = runtime.tick().await.unwrap();
            assert!(report.fired >= 5 && report.sent >= 10, "{report:?}");
            let mut sent: Vec<String> = runtime
                .store()
                .ledger(None, 10_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.event == "sent")
                .map(|e| {
                    format!(
                        "{} {:?} {} {} {}",
                        e.workflow.unwrap_or_default(),
                        e.occurrence,
                        e.step.unwrap_or_default(),
                        e.contact_id.unwrap_or_default(),
                        e.channel.map(|c| c.as_str()).unwrap_or_default()
                    )
                })
                .collect();
            sent.sort();
            let before = sent.len();
            sent.dedup();
            assert_eq!(sent.len(), before, "each message is sent once: {sent:#?}");
            sent_by_batch.push((batch, world.url.clone(), sent));
        }
    }
    let backends = sent_by_batch.len() / 2;
    for (one_batch, small_batches) in sent_by_batch[..backends]
        .iter()
        .zip(&sent_by_batch[backends..])
    {
        assert_eq!(
            one_batch.2, small_batches.2,
            "{} against {}",
            one_batch.1, small_batches.1
        );
        let sent = &one_batch.2;
        assert!(
            sent.iter()
                .any(|s| s.starts_with("weekly-koro Some(2026-12-07T09:00:00Z) invitation c-4")),
            "the region's guest is invited to the 7th: {sent:#?}"
        );
        assert!(
            !sent
                .iter()
                .any(|s| s.contains("2026-12-14T09:00:00Z") && s.contains(" reminder ")),
            "no reminder of the cancelled 14th: {sent:#?}"
        );
    }
}

/// Three Mondays in Koro under rules: the first held (with a guest and an extra
/// reminder from the region's rules), the second skipped for a holiday, the third
/// moved a day for the annual fair; meanwhile a Macina workflow whose rule never
/// ends keeps being served with the default decision.
#[tokio::test]
async fn the_runtime_carries_out_rule_decisions_and_survives_failing_rules() {
    for world in worlds("rules", "once").await {
        with_rules(&world).await;
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let (sms, email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        run_until(&runtime, &clock, at("2026-12-23T00:00:00Z")).await;

        let koro = events(&runtime).await;
        let count = |wanted: &str| koro.iter().filter(|e| *e == wanted).count();
        // The region's guest gets every invitation; the region's extra reminder goes by SMS.
        assert_eq!(count("sent invitation c-4"), 2, "{koro:#?}");
        assert_eq!(count("sent invitation c-3"), 2, "{koro:#?}");
        assert_eq!(count("sent rule-reminder-1d c-4"), 2, "{koro:#?}");
        assert_eq!(
            count("unreachable rule-reminder-1d c-3"),
            2,
            "email-only: {koro:#?}"
        );
        // The holiday: no reminder of 14 December. The rule decided it at the
        // first step, before anyone had heard of the 14th or the 21st: no notice
        // (a "change" to a meeting nobody knew of would only confuse).
        assert_eq!(
            count("sent reminder c-1"),
            2,
            "7 and 22 December: {koro:#?}"
        );
        assert_eq!(count("sent cancelled-1 c-4"), 0, "{koro:#?}");
        assert_eq!(count("sent moved-1 c-1"), 0, "{koro:#?}");
        let ledger = runtime
            .store()
            .ledger(Some("weekly-koro"), 1000)
            .await
            .unwrap();
        let cancelled = ledger
            .iter()
            .find(|e| e.event == "cancelled" && e.step.as_deref() == Some("cancelled-1"))
            .expect("the occurrence change is in the ledger");
        assert_eq!(cancelled.occurrence, Some(at("2026-12-14T09:00:00Z")));
        assert!(
            cancelled.detail.contains("Jour férié : Journée test")
                && cancelled.detail.contains("rules/mopti/koro.rhai")
                && cancelled.detail.contains("nobody had been told of it yet"),
            "{}",
            cancelled.detail
        );
        let mails = email.delivered.lock().unwrap().clone();
        assert!(
            !mails.iter().any(|m| m.body.contains("Jour férié")),
            "nobody is told of a change to a meeting they never heard of"
        );
        let moved_invitation = mails
            .iter()
            .find(|m| {
                m.subject.as_deref().is_some_and(|s| {
                    s.starts_with("Invitation") && s.contains("mardi 22 décembre 2026")
                })
            })
            .expect("the moved meeting's invitation is sent for its new date");
        assert!(
            moved_invitation
                .calendar
                .as_deref()
                .unwrap()
                .contains("SEQUENCE:1")
        );
        let texts = sms.delivered.lock().unwrap().clone();
        let stray: Vec<_> = texts
            .iter()
            .filter(|m| m.body.contains("Koro") || m.body.contains("hebdomadaire"))
            .filter(|m| m.body.contains("14 décembre") || m.body.contains("14 Desanburukalo"))
            .map(|m| &m.body)
            .collect();
        assert!(
            stray.is_empty(),
            "nothing mentions the cancelled 14 December: {stray:#?}"
        );

        // The never-ending rule: stopped, recorded, and its workflow still served.
        let macina = runtime
            .store()
            .ledger(Some("weekly-macina"), 1000)
            .await
            .unwrap();
        let errors: Vec<_> = macina.iter().filter(|e| e.event == "rule-error").collect();
        assert_eq!(errors.len(), 3, "one per Monday: {macina:#?}");
        assert!(
            errors[0].detail.contains("rules/segou/macina.rhai:1:")
                // Stopped by the operation limit, or by the time budget on a busy machine.
                && (errors[0].detail.contains("stopped after 100000 operations")
                    || errors[0].detail.contains("took longer than 50 ms"))
                && errors[0]
                    .detail
                    .contains("applied instead: hold the meeting"),
            "{}",
            errors[0].detail
        );
        assert_eq!(
            macina
                .iter()
                .filter(|e| e.event == "sent" && e.contact_id.as_deref() == Some("c-5"))
                .count(),
            3
        );
        let status = runtime.store().status(clock.now()).await.unwrap();
        assert_eq!(status.rule_errors, 3);
    }
}

/// A plugin extends the rule language: with the SMS plugin's extension a rule may
/// call `sms_segments`; without it, the same script is refused at load.
#[test]
fn plugins_register_rule_functions() {
    let dir = workspace();
    let root = dir.path().join("workflows");
    std::fs::write(
        root.join("rules/mopti/koro.rhai"),
        "fn meeting_reminders(input) {\n    \
         if sms_segments(`Rappel : ${input.workflow.title} le ${input.occurrence.date}`) > 1 { return []; }\n    \
         [#{ at: \"-6h\", channels: [\"sms\"] }]\n}\n",
    )
    .unwrap();
    let (definitions, diagnostics) = Definitions::load(&root, None, EXTENSIONS);
    assert!(!diagnostics.has_errors(), "{:?}", diagnostics.sorted());
    let meeting = definitions
        .meetings
        .iter()
        .find(|m| m.definition.id == "dialogue-koro")
        .unwrap();
    let start = at("2026-12-07T09:00:00Z");
    let input = meeting_input(definitions.rules.world(), &meeting.facts, start, start);
    let answer = definitions.rules.ask::<palabre_rules::RemindersDecision>(
        "mopti/koro",
        None,
        input,
        &Default::default(),
    );
    assert!(answer.failure.is_none(), "{:?}", answer.failure);
    assert_eq!(
        answer.decision.0.len(),
        1,
        "a one-segment text: the reminder is added"
    );

    let (_, diagnostics) = Definitions::load(&root, None, &[]);
    let problems: Vec<String> = diagnostics.sorted().iter().map(|d| d.to_string()).collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("koro.rhai:2:8: error: unknown function 'sms_segments'")),
        "{problems:#?}"
    );
}

/// `preview` asks the schedule rule as the server does: the Djenné communal
/// dialogue of Monday 15 March 2027 (market day) shows its move notice instead of
/// the invitation, then the invitation for Tuesday 16.
#[test]
fn preview_shows_what_the_rules_decide() {
    let csv = repo().join("examples/directory.csv");
    let run = palabre(
        &repo(),
        &[
            "preview",
            "--from",
            "2027-03-01",
            "--days",
            "16",
            "--format",
            "json",
            "--directory",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let planned: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let djenne: Vec<(&str, &str)> = planned
        .iter()
        .filter(|m| m["workflow"] == "commune-djenne" && m["contact_id"] == "c-0027")
        .map(|m| (m["step"].as_str().unwrap(), m["due_utc"].as_str().unwrap()))
        .collect();
    assert_eq!(
        djenne,
        [
            ("moved-1", "2027-03-08T09:00:00Z"),
            ("invitation", "2027-03-09T09:00:00Z"),
            ("rule-reminder-3d", "2027-03-13T09:00:00Z"),
            ("reminder-1d", "2027-03-15T09:00:00Z"),
        ],
        "{planned:#?}"
    );
    let notice = planned
        .iter()
        .find(|m| m["step"] == "moved-1" && m["channel"] == "email")
        .expect("an email notice");
    assert!(
        notice["body"]
            .as_str()
            .unwrap()
            .contains("Jour de foire à Djenné"),
        "{notice:#?}"
    );
}

/// An SMS connector that reloads the definitions from disk while it delivers,
/// that is, in the middle of a tick, as `serve`'s hot reload can.
struct ReloadingConnector {
    workflows: std::path::PathBuf,
    runtime: std::sync::OnceLock<std::sync::Weak<palabre_engine::runtime::Runtime>>,
    reloads: std::sync::atomic::AtomicUsize,
}

impl palabre_core::connector::Connector for ReloadingConnector {
    fn channel(&self) -> palabre_core::channel::Channel {
        palabre_core::channel::Channel::Sms
    }

    fn name(&self) -> &str {
        "reloading"
    }

    fn deliver<'a>(
        &'a self,
        message: &'a palabre_core::connector::OutgoingMessage,
    ) -> palabre_core::connector::Delivery<'a> {
        Box::pin(async move {
            if let Some(runtime) = self.runtime.get().and_then(std::sync::Weak::upgrade) {
                let (reloaded, diagnostics) = Definitions::load(&self.workflows, None, EXTENSIONS);
                assert!(!diagnostics.has_errors(), "{:?}", diagnostics.sorted());
                runtime.commands().replace_definitions(reloaded);
                self.reloads
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Ok(format!("reloading-{}", message.key_hash()))
        })
    }
}

/// A hot reload in the middle of a tick loses no rule failure: the tick works on
/// one snapshot of the definitions, and each failure travels with the answer that
/// met it into the ledger. (Before, failures waited in the rules of the snapshot
/// that met them, and the tick's end collected them from whatever definitions
/// were current then: a reload during delivery dropped them.)
#[tokio::test]
async fn a_reload_during_a_tick_keeps_its_rule_failures() {
    for world in worlds("reload_failures", "once").await {
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let sms = Arc::new(ReloadingConnector {
            workflows: world.workflows.clone(),
            runtime: std::sync::OnceLock::new(),
            reloads: std::sync::atomic::AtomicUsize::new(0),
        });
        let email = Recorder::new(
            palabre_core::channel::Channel::Email,
            0,
            palabre_core::connector::DeliveryError::Transient(String::new()),
        );
        let connectors = palabre_core::connector::Connectors::default()
            .with(sms.clone())
            .with(email);
        let runtime = Arc::new(world.runtime(&clock, connectors, "a").await);
        sms.runtime.set(Arc::downgrade(&runtime)).unwrap();
        runtime.tick().await.unwrap();
        // The invitations of the 7th go out: its participants are told of it.
        crate::runtime::invite_to_the_seventh(&runtime, &clock).await;
        let reloads_before = sms.reloads.load(std::sync::atomic::Ordering::SeqCst);
        // A coordinator's move queues notices now: the next tick delivers them.
        runtime
            .commands()
            .change_occurrence(
                "weekly-koro",
                at("2026-12-07T09:00:00Z"),
                Some(at("2026-12-08T09:00:00Z")),
                "salle occupée",
            )
            .await
            .unwrap();
        // A broken reminders rule arrives: the next tick re-plans with it and it fails.
        let rules = world.workflows.join("rules");
        std::fs::create_dir_all(&rules).unwrap();
        std::fs::write(
            rules.join("national.rhai"),
            "fn meeting_reminders(input) {\n    throw \"cassé exprès\";\n}\n",
        )
        .unwrap();
        runtime
            .commands()
            .replace_definitions(world.definitions().0);
        let report = runtime.tick().await.unwrap();
        assert!(report.planned > 0, "the changed rules re-plan the meeting");
        assert!(
            sms.reloads.load(std::sync::atomic::Ordering::SeqCst) > reloads_before,
            "the definitions were reloaded while the tick delivered"
        );
        let errors: Vec<_> = runtime
            .store()
            .ledger(Some("weekly-koro"), 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event == "rule-error")
            .collect();
        // One per occurrence planned in the 14-day horizon (7 or 8, 14 December).
        assert!(errors.len() >= 2, "{errors:#?}");
        assert!(
            errors
                .iter()
                .all(|e| e.step.as_deref() == Some("meeting_reminders")
                    && e.detail.contains("rules/national.rhai:2")
                    && e.detail.contains("cassé exprès")),
            "{errors:#?}"
        );
    }
}
