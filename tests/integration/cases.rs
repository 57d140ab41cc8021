//! The case list and who did what, on SQLite and PostgreSQL: `list_cases`'
//! filters (open or all, overdue, ladder, place) in one query; `GET /cases`
//! within a token's scope, descriptions for coordinators only; the API's token
//! label in the ledger and never in the texts participants receive; `palabre
//! case list`, and `--as`, `PALABRE_OPERATOR` and the system user in the ledger
//! and in `palabre case show`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use palabre_api::auth::{Role, create_token};
use palabre_core::clock::{Clock, VirtualClock};
use palabre_engine::commands::{CaseAction, NewCase};
use palabre_engine::runtime::Runtime;
use palabre_store::CaseFilter;
use serde_json::{Value, json};

use crate::runtime::{Recorder, World, at, run_until, worlds};
use crate::util::{Run, revealed_entries, workspace_with_directory};

const PLAN: &str = "\
kind: milestones
id: plan-koro
title: Plan de Koro
place: mopti/koro
milestones:
  - { id: ecole, title: École, owner: { role: mayor }, due: 2027-01-15 }
";

/// The Mopti test ladder, and the same ladder for Ségou.
fn ladders(world: &World) {
    let mopti = crate::escalation::LADDER;
    std::fs::write(world.workflows.join("ladder.yaml"), mopti).unwrap();
    std::fs::write(
        world.workflows.join("ladder-segou.yaml"),
        mopti
            .replace("id: litiges-test", "id: litiges-segou-test")
            .replace("place: mopti", "place: segou"),
    )
    .unwrap();
    std::fs::write(world.workflows.join("plan.yaml"), PLAN).unwrap();
}

fn dispute(workflow: &str, place: &str, description: &str) -> NewCase {
    NewCase {
        workflow: workflow.into(),
        category: "foncier".into(),
        place: place.into(),
        parties: Vec::new(),
        severity: 2,
        description: description.into(),
    }
}

/// The ladders in `world`, a runtime over it on a clock at Thursday 3 December
/// 2026 10:00, and [`four_cases`] opened.
async fn with_four_cases(world: &World) -> (Arc<VirtualClock>, Runtime) {
    ladders(world);
    let clock = Arc::new(VirtualClock::new(at("2026-12-03T10:00:00Z")));
    let (_, _, connectors) = Recorder::pair();
    let runtime = world.runtime(&clock, connectors, "a").await;
    four_cases(&runtime).await;
    (clock, runtime)
}

/// Opens, on Thursday 3 December 2026 at 10:00 (Bamako is UTC): LT-0001 at
/// Koro, LT-0002 at Koro then resolved, LT-0003 at Djenné, and LST-0001 in
/// Ségou (the Ségou ladder's prefix).
async fn four_cases(runtime: &Runtime) {
    let commands = runtime.commands();
    for (workflow, place, what) in [
        (
            "litiges-test",
            "mopti/koro/koro",
            "Deux familles et un champ",
        ),
        ("litiges-test", "mopti/koro/koro", "Un puits partagé"),
        (
            "litiges-test",
            "mopti/djenne/djenne",
            "Un couloir de passage",
        ),
        (
            "litiges-segou-test",
            "segou/macina/kolongo",
            "Un litige à Kolongo",
        ),
    ] {
        commands
            .open_case(dispute(workflow, place, what), "test")
            .await
            .unwrap();
    }
    commands
        .act_on_case("LT-0002", CaseAction::Resolve("accord".into()), "test")
        .await
        .unwrap();
}

fn ids(listed: &[palabre_store::ListedCase]) -> Vec<&str> {
    listed.iter().map(|l| l.case.id.as_str()).collect()
}

#[tokio::test]
async fn the_case_list_filters_in_the_store() {
    for world in worlds("case_list", "once").await {
        let (_, runtime) = with_four_cases(&world).await;
        let store = runtime.store();
        let list = |filter: CaseFilter| async move { store.list_cases(&filter).await.unwrap() };

        let open = list(CaseFilter::default()).await;
        // Opened at the same instant: in the order of their ids.
        assert_eq!(ids(&open), ["LST-0001", "LT-0001", "LT-0003"], "open only");
        // Four working hours to acknowledge: 14:00 the same day.
        assert!(
            open.iter()
                .all(|l| l.next_deadline == Some(at("2026-12-03T14:00:00Z"))),
            "{open:#?}"
        );
        let all = list(CaseFilter {
            all: true,
            ..CaseFilter::default()
        })
        .await;
        assert_eq!(ids(&all), ["LST-0001", "LT-0001", "LT-0002", "LT-0003"]);
        assert_eq!(
            all[2].next_deadline, None,
            "a resolved case has no deadline"
        );
        let ladder = list(CaseFilter {
            workflow: Some("litiges-segou-test".into()),
            ..CaseFilter::default()
        })
        .await;
        assert_eq!(ids(&ladder), ["LST-0001"]);
        let koro = list(CaseFilter {
            all: true,
            within: vec!["mopti/koro".into()],
            ..CaseFilter::default()
        })
        .await;
        assert_eq!(ids(&koro), ["LT-0001", "LT-0002"], "at or below mopti/koro");
        let nowhere = list(CaseFilter {
            within: vec!["mopti/kor".into()],
            ..CaseFilter::default()
        })
        .await;
        assert!(nowhere.is_empty(), "a prefix is not a parent place");
        let both = list(CaseFilter {
            within: vec!["mopti".into(), "mopti/djenne".into()],
            ..CaseFilter::default()
        })
        .await;
        assert_eq!(ids(&both), ["LT-0003"], "every place given applies");

        // At 13:59 no deadline has passed; at 14:01 the open cases' have.
        let overdue = |instant| {
            list(CaseFilter {
                overdue_at: Some(at(instant)),
                ..CaseFilter::default()
            })
        };
        assert!(overdue("2026-12-03T13:59:00Z").await.is_empty());
        runtime
            .commands()
            .act_on_case("LT-0003", CaseAction::Acknowledge("vu".into()), "test")
            .await
            .unwrap();
        assert_eq!(
            ids(&overdue("2026-12-03T14:01:00Z").await),
            ["LST-0001", "LT-0001"],
            "LT-0003 was acknowledged: only its resolve deadline is left"
        );
        let open = list(CaseFilter::default()).await;
        let acknowledged = &open[2];
        assert_eq!(
            (
                acknowledged.case.id.as_str(),
                acknowledged
                    .next_deadline
                    .map(|d| d > at("2026-12-10T00:00:00Z"))
            ),
            ("LT-0003", Some(true)),
            "the next deadline is now the resolve one"
        );
    }
}

async fn call(
    runtime: &Runtime,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let answered = crate::util::api_request(runtime.commands(), request).await;
    (answered.status, answered.body)
}

fn listed_ids(body: &Value) -> Vec<&str> {
    body.as_array()
        .unwrap_or_else(|| panic!("a list: {body}"))
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn get_cases_keeps_to_the_token_scope_and_role() {
    for world in worlds("case_list_api", "once").await {
        let (clock, runtime) = with_four_cases(&world).await;
        let now = clock.now();
        let store = runtime.store();
        let mopti = create_token(store, Role::Coordinator, "mopti", "mopti", now)
            .await
            .unwrap();
        let national = create_token(store, Role::Administrator, "national", "", now)
            .await
            .unwrap();
        let observer = create_token(store, Role::Observer, "mopti/koro", "", now)
            .await
            .unwrap();

        let (status, cases) = call(&runtime, "GET", "/cases", &mopti, None).await;
        assert_eq!(status, StatusCode::OK, "{cases}");
        assert_eq!(listed_ids(&cases), ["LT-0001", "LT-0003"], "no Ségou case");
        assert_eq!(cases[0]["description"], "Deux familles et un champ");
        assert_eq!(cases[0]["level_id"], "chef");
        assert_eq!(cases[0]["next_deadline"], "2026-12-03T14:00:00Z");
        // A ladder of another region is out of scope, as its meetings would be;
        // a ladder over the token's place shows the cases within its scope.
        let (status, _) = call(
            &runtime,
            "GET",
            "/workflows/litiges-segou-test/instances",
            &mopti,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = call(
            &runtime,
            "GET",
            "/workflows/litiges-test/instances",
            &observer,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (_, cases) = call(&runtime, "GET", "/cases?state=all", &national, None).await;
        assert_eq!(
            listed_ids(&cases),
            ["LST-0001", "LT-0001", "LT-0002", "LT-0003"]
        );
        let (_, cases) = call(
            &runtime,
            "GET",
            "/cases?workflow=litiges-segou-test",
            &mopti,
            None,
        )
        .await;
        assert!(listed_ids(&cases).is_empty(), "Ségou's ladder: {cases}");
        let (_, cases) = call(&runtime, "GET", "/cases?place=segou", &national, None).await;
        assert_eq!(listed_ids(&cases), ["LST-0001"]);

        let (status, cases) = call(&runtime, "GET", "/cases?state=all", &observer, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            listed_ids(&cases),
            ["LT-0001", "LT-0002"],
            "within mopti/koro"
        );
        assert!(
            cases
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c.get("description").is_none() && c["category"] == "foncier"),
            "observers never read descriptions: {cases}"
        );

        let (_, cases) = call(&runtime, "GET", "/cases?overdue=true", &national, None).await;
        assert!(listed_ids(&cases).is_empty(), "nothing is overdue at 10:00");
        clock.advance_to(at("2026-12-03T15:00:00Z"));
        let (_, cases) = call(&runtime, "GET", "/cases?overdue=true", &mopti, None).await;
        assert_eq!(
            listed_ids(&cases),
            ["LT-0001", "LT-0003"],
            "14:00 has passed"
        );

        let (status, refused) = call(&runtime, "GET", "/cases?state=closed", &mopti, None).await;
        assert_eq!(
            (status, refused["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("state")),
            "{refused}"
        );
        let (status, _) = call(&runtime, "GET", "/cases", "plb_nothing_here", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // One route table: the OpenAPI document has it, for observers, with its filters.
        let (_, document) = call(&runtime, "GET", "/openapi.json", &mopti, None).await;
        let operation = &document["paths"]["/cases"]["get"];
        assert_eq!(operation["x-palabre-role"], "observer", "{operation}");
        let parameters: Vec<&str> = operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            parameters,
            ["state", "overdue", "workflow", "place", "descriptions"]
        );
    }
}

#[tokio::test]
async fn the_api_records_the_token_label_and_never_sends_it() {
    for world in worlds("case_actor_api", "once").await {
        ladders(&world);
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T10:00:00Z")));
        let (sms, email, connectors) = Recorder::pair();
        let runtime = world.runtime(&clock, connectors, "a").await;
        let store = runtime.store();
        let token = create_token(store, Role::Coordinator, "mopti", "hotline", clock.now())
            .await
            .unwrap();
        let token_id = token.split('_').nth(1).unwrap().to_owned();
        let by = format!("by hotline (token {token_id})");

        let (status, case) = call(
            &runtime,
            "POST",
            "/cases",
            &token,
            Some(json!({
                "workflow": "litiges-test", "category": "foncier",
                "place": "mopti/koro/koro", "description": "Un champ"
            })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{case}");
        let (status, _) = call(
            &runtime,
            "POST",
            "/cases/LT-0001/escalate",
            &token,
            Some(json!({ "note": "pas de réponse" })),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let history = store.ledger_about("litiges-test", "LT-0001").await.unwrap();
        let opened = history.iter().find(|e| e.event == "case-opened").unwrap();
        assert!(opened.detail.ends_with(&by), "{}", opened.detail);
        let escalated = history
            .iter()
            .rfind(|e| e.event == "case-escalated")
            .unwrap();
        assert!(
            escalated.detail.contains("pas de réponse") && escalated.detail.ends_with(&by),
            "{}",
            escalated.detail
        );

        // The invitations of the 7th go out on the 4th (its participants are then
        // told of it, and hear of its move).
        crate::runtime::invite_to_the_seventh(&runtime, &clock).await;
        let (status, done) = call(
            &runtime,
            "POST",
            "/workflows/weekly-koro/events/move",
            &token,
            Some(json!({
                "occurrence": "2026-12-07T09:00:00Z",
                "to": "2026-12-08T10:00:00Z",
                "reason": "jour de marché"
            })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{done}");
        let (status, _) = call(
            &runtime,
            "POST",
            "/milestones/plan-koro/ecole/status",
            &token,
            Some(json!({ "status": "in_progress", "note": "travaux commencés" })),
        )
        .await;
        assert_eq!(status, StatusCode::OK);

        let ledger = store.ledger(None, 100).await.unwrap();
        let moved = ledger.iter().find(|e| e.event == "moved").unwrap();
        assert!(
            moved.detail.contains(&by) && moved.detail.ends_with(": jour de marché"),
            "{}",
            moved.detail
        );
        let status_entry = ledger
            .iter()
            .find(|e| e.event == "milestone-status")
            .unwrap();
        assert_eq!(
            status_entry.detail,
            format!("planned → in_progress {by}: travaux commencés")
        );
        let states = store.milestone_states().await.unwrap();
        assert_eq!(states[0].note, "travaux commencés", "the note stays theirs");

        // What participants and responders receive names no one.
        run_until(&runtime, &clock, clock.now()).await;
        let sent: Vec<String> = sms
            .delivered
            .lock()
            .unwrap()
            .iter()
            .chain(email.delivered.lock().unwrap().iter())
            .map(|m| m.body.clone())
            .collect();
        // The mayor reads, in French, that the coordinator sent it on, and their note as written.
        let mayor = sent
            .iter()
            .find(|b| b.contains("LT-0001") && b.contains("Oumar Tall"))
            .unwrap_or_else(|| panic!("the mayor was told: {sent:#?}"));
        assert!(
            mayor.contains("Transmis par le coordinateur depuis le niveau « Chef »")
                && mayor.contains("« pas de réponse »"),
            "{mayor}"
        );
        // No one reads the engine's own words: the ledger's English, a level id.
        for body in &sent {
            for word in ["by hand", "by api", "level chef", "from level", "opened"] {
                assert!(!body.contains(word), "{word:?} in {body}");
            }
        }
        // The email notice carries the reason (the SMS ones do not), and the reason only.
        let reasons: Vec<&str> = sent
            .iter()
            .flat_map(|b| b.lines())
            .filter(|l| l.trim_start().starts_with("Motif"))
            .collect();
        assert_eq!(reasons, ["Motif : jour de marché"], "{sent:#?}");
        assert!(
            sent.len() >= 4,
            "notices and the case's messages: {sent:#?}"
        );
        for body in &sent {
            assert!(
                !body.contains(&token_id)
                    && !body.contains("via the API")
                    && !body.contains("hotline"),
                "{body}"
            );
        }
    }
}

/// Runs the binary in `dir` with `env` set (and `remove` removed).
fn palabre_with(dir: &Path, args: &[&str], env: &[(&str, &str)], remove: &[&str]) -> Run {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("palabre");
    cmd.current_dir(dir)
        .args(args)
        .env_remove("PALABRE_DATABASE_URL")
        .env_remove("PALABRE_WORKFLOWS")
        .env_remove("PALABRE_LOG")
        .env_remove("PALABRE_OPERATOR")
        .env_remove("PALABRE_KEY_FILE")
        .env("PALABRE_KEY", crate::util::TEST_KEY)
        .timeout(Duration::from_secs(120));
    for name in remove {
        cmd.env_remove(name);
    }
    for (name, value) in env {
        cmd.env(name, value);
    }
    let output = cmd.output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn the_operator_is_recorded_and_cases_are_listed_from_the_command_line() {
    let dir = workspace_with_directory();
    let dir = dir.path();
    let user = [("USER", "awa"), ("LOGNAME", "ignored")];
    let open = |place: &str, extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "case",
            "open",
            "--workflow",
            "litiges-mopti",
            "--category",
            "foncier",
            "--place",
            place,
            "--description",
            "Conflit de limites",
        ];
        args.extend(extra);
        palabre_with(dir, &args, env, &[])
    };
    let run = open("mopti/koro/koro", &["--as", "Fatoumata Koné"], &user);
    assert_eq!(run.stdout, "LM-0001 opened at level 0\n", "{}", run.stderr);
    let run = palabre_with(
        dir,
        &["case", "ack", "LM-0001", "--note", "vu"],
        &[("PALABRE_OPERATOR", "ops-mopti"), ("USER", "awa")],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = palabre_with(
        dir,
        &["case", "note", "LM-0001", "--note", "appel"],
        &user,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = palabre_with(
        dir,
        &["case", "note", "LM-0001", "--note", "rappel"],
        &[("LOGNAME", "bakary")],
        &["USER"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = palabre_with(
        dir,
        &["case", "escalate", "LM-0001", "--note", "sans suite"],
        &[],
        &["USER", "LOGNAME"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);

    let run = palabre_with(dir, &["case", "show", "LM-0001"], &[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let line = |event: &str, nth: usize| {
        run.stdout
            .lines()
            .filter(|l| l.split_whitespace().nth(2) == Some(event))
            .nth(nth)
            .unwrap_or_else(|| panic!("no {event} #{nth}:\n{}", run.stdout))
            .to_owned()
    };
    assert!(
        line("case-opened", 0).ends_with("by Fatoumata Koné"),
        "--as wins over USER:\n{}",
        run.stdout
    );
    assert!(line("case-acknowledged", 0).contains("by ops-mopti: vu"));
    assert!(line("case-note", 0).ends_with("by awa: appel"), "USER");
    assert!(
        line("case-note", 1).ends_with("by bakary: rappel"),
        "LOGNAME"
    );
    assert!(
        line("case-escalated", 1).ends_with("; by cli"),
        "neither: {}",
        run.stdout
    );

    // The list: open cases, a row a coordinator reads.
    let run = open("mopti/djenne/djenne", &[], &user);
    assert_eq!(run.stdout, "LM-0002 opened at level 0\n", "{}", run.stderr);
    let run = palabre_with(
        dir,
        &["case", "resolve", "LM-0002", "--note", "ok"],
        &user,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = palabre_with(dir, &["case", "list"], &[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    let header: Vec<&str> = lines[0]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "id",
            "ladder",
            "level",
            "state",
            "place",
            "category",
            "age",
            "next deadline"
        ]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row[..8],
        [
            "LM-0001",
            "litiges-mopti",
            "maire",
            "open",
            "mopti/koro/koro",
            "foncier",
            "0",
            "d"
        ],
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("Conflit"),
        "no description: {}",
        run.stdout
    );
    let json = |args: &[&str]| {
        let mut all = vec!["case", "list", "--format", "json"];
        all.extend(args);
        let run = palabre_with(dir, &all, &[], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let rows: Value = serde_json::from_str(&run.stdout).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(json(&["--all"]), ["LM-0001", "LM-0002"]);
    assert_eq!(json(&["--all", "--place", "mopti/djenne"]), ["LM-0002"]);
    assert_eq!(json(&["--workflow", "litiges-segou"]), Vec::<String>::new());
    assert_eq!(
        json(&["--overdue"]),
        Vec::<String>::new(),
        "deadlines ahead"
    );
    let run = palabre_with(dir, &["case", "list", "--place", "tombouctou"], &[], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("unknown place"), "{}", run.stderr);
}

#[tokio::test]
async fn reading_descriptions_through_the_api_is_in_the_ledger_with_the_token() {
    for world in worlds("case_reveal_api", "once").await {
        let (clock, runtime) = with_four_cases(&world).await;
        let now = clock.now();
        let store = runtime.store();
        let hotline = create_token(store, Role::Coordinator, "mopti", "hotline", now)
            .await
            .unwrap();
        let by = format!("by hotline (token {})", hotline.split('_').nth(1).unwrap());
        let national = create_token(store, Role::Administrator, "national", "", now)
            .await
            .unwrap();
        let national_id = national.split('_').nth(1).unwrap().to_owned();
        let observer = create_token(store, Role::Observer, "mopti/koro", "koro", now)
            .await
            .unwrap();

        // Observers read no description: nothing to account for.
        let (status, case) = call(&runtime, "GET", "/cases/LT-0001", &observer, None).await;
        assert_eq!(status, StatusCode::OK, "{case}");
        assert!(case.get("description").is_none(), "{case}");
        let (status, _) = call(&runtime, "GET", "/cases?state=all", &observer, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(revealed_entries(store).await.0.is_empty());

        // A coordinator's reading of one case: one entry, in the case's history.
        let (status, case) = call(&runtime, "GET", "/cases/LT-0001", &hotline, None).await;
        assert_eq!(status, StatusCode::OK, "{case}");
        assert_eq!(case["description"], "Deux familles et un champ");
        let (revealed, _) = revealed_entries(store).await;
        assert_eq!(revealed.len(), 1, "{revealed:#?}");
        assert_eq!(
            revealed[0].detail,
            format!(
                "case LT-0001 (litiges-test): description, read through GET /cases/LT-0001 {by}"
            )
        );
        let history = store.ledger_about("litiges-test", "LT-0001").await.unwrap();
        assert_eq!(
            history.iter().filter(|e| e.event == "revealed").count(),
            1,
            "{history:#?}"
        );

        // A list: one entry naming the cases it showed, and those only.
        let (_, cases) = call(&runtime, "GET", "/cases", &hotline, None).await;
        assert_eq!(listed_ids(&cases), ["LT-0001", "LT-0003"]);
        let (revealed, _) = revealed_entries(store).await;
        assert_eq!(revealed.len(), 2, "{revealed:#?}");
        assert_eq!(
            revealed[1].detail,
            format!(
                "2 cases' descriptions (litiges-test: LT-0001, LT-0003), read through GET /cases {by}"
            )
        );
        assert_eq!(revealed[1].workflow.as_deref(), Some("litiges-test"));
        // An empty list shows nothing.
        let (_, cases) = call(
            &runtime,
            "GET",
            "/cases?workflow=litiges-segou-test",
            &hotline,
            None,
        )
        .await;
        assert!(listed_ids(&cases).is_empty(), "{cases}");
        assert_eq!(revealed_entries(store).await.0.len(), 2);

        // Across ladders, an unlabelled token: named by its id.
        let (_, cases) = call(&runtime, "GET", "/cases?state=all", &national, None).await;
        assert_eq!(listed_ids(&cases).len(), 4);
        let (revealed, ledger) = revealed_entries(store).await;
        assert_eq!(revealed.len(), 3, "{revealed:#?}");
        assert_eq!(
            revealed[2].detail,
            format!(
                "4 cases' descriptions (litiges-segou-test: LST-0001; litiges-test: LT-0001, \
                 LT-0002, LT-0003), read through GET /cases by token {national_id}"
            )
        );
        assert_eq!(revealed[2].workflow, None);

        for description in [
            "Deux familles",
            "Un puits",
            "Un couloir",
            "Un litige à Kolongo",
        ] {
            assert!(!ledger.contains(description), "{description} in the ledger");
        }
    }
}

#[tokio::test]
async fn case_show_reveal_is_in_the_ledger_with_the_operator() {
    let dir = workspace_with_directory();
    let dir = dir.path();
    let mut urls = vec![format!("sqlite://{}", dir.join("reveal.db").display())];
    if let Some(base) = crate::util::postgres_url() {
        urls.push(crate::util::fresh_postgres_schema(&base, "case_show_reveal").await);
    }
    let csv = crate::util::repo().join("examples/directory.csv");
    for url in urls {
        let run_on = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(["--db", url.as_str()]);
            palabre_with(dir, &all, &[("USER", "awa")], &[])
        };
        let run = run_on(&["contacts", "import", csv.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let run = run_on(&[
            "case",
            "open",
            "--workflow",
            "litiges-mopti",
            "--category",
            "foncier",
            "--place",
            "mopti/koro/koro",
            "--party",
            "c-0001",
            "--description",
            "Conflit de limites entre Dioura et Koro",
        ]);
        assert_eq!(run.stdout, "LM-0001 opened at level 0\n", "{}", run.stderr);
        let revealed = async || {
            let store = palabre_store::Store::connect(&url, &crate::util::test_key())
                .await
                .unwrap();
            let ledger = store.ledger(None, 10_000).await.unwrap();
            store.close().await;
            let text = serde_json::to_string(&ledger).unwrap();
            let entries: Vec<_> = ledger
                .into_iter()
                .filter(|e| e.event == "revealed")
                .collect();
            (entries, text)
        };

        let run = run_on(&["case", "show", "LM-0001", "--as", "Awa Traoré"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(!run.stdout.contains("Conflit"), "{}", run.stdout);
        assert!(revealed().await.0.is_empty(), "{url}: no reveal, no entry");

        let run = run_on(&["case", "show", "LM-0001", "--reveal", "--as", "Awa Traoré"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout
                .contains("description: Conflit de limites entre Dioura et Koro"),
            "{}",
            run.stdout
        );
        let (entries, ledger) = revealed().await;
        assert_eq!(entries.len(), 1, "{url}: {entries:#?}");
        let entry = &entries[0];
        assert_eq!(
            (entry.workflow.as_deref(), entry.step.as_deref()),
            (Some("litiges-mopti"), Some("LM-0001"))
        );
        assert!(
            entry
                .detail
                .starts_with("case LM-0001 (litiges-mopti): description")
                && entry.detail.ends_with("to Awa Traoré"),
            "{}",
            entry.detail
        );
        // The show that revealed it lists it in the case's history.
        assert!(
            run.stdout
                .lines()
                .any(|l| l.contains("revealed") && l.ends_with("to Awa Traoré")),
            "{}",
            run.stdout
        );
        for secret in [
            "Conflit",
            "Dioura",
            "+22376942303",
            "boubacar.sow.1@example.org",
        ] {
            assert!(!ledger.contains(secret), "{secret} in the ledger");
        }
    }
}
