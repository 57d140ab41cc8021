//! The HTTP API on SQLite and PostgreSQL: cases, milestones, events, the ledger,
//! metrics and health through real requests to the router; hostile requests (no
//! token, a wrong one, another region's, too weak a role, malformed and oversized
//! bodies) refused without side effects; the OpenAPI document matches the routes.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use palabre_api::auth::{Role, create_token};
use palabre_core::clock::VirtualClock;
use palabre_engine::runtime::Runtime;
use serde_json::{Value, json};

use crate::runtime::{Recorder, World, at, worlds};

const PLAN: &str = "\
kind: milestones
id: plan-koro
title: Plan de Koro
place: mopti/koro
milestones:
  - { id: ecole, title: École, owner: { role: mayor }, due: 2027-01-15 }
";

/// The API over one world, shared by the API tests (`api_hardening` adds its own
/// ways of calling it).
pub(crate) struct Api {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) clock: Arc<VirtualClock>,
}

impl Api {
    /// Sends the invitations of Monday 7 December (due Friday 4 at 09:00): its
    /// participants are then told of it, and hear of its changes.
    pub(crate) async fn invite_to_the_seventh(&self) {
        crate::runtime::invite_to_the_seventh(&self.runtime, &self.clock).await;
    }
}

impl Api {
    pub(crate) async fn new(world: &World) -> Api {
        std::fs::write(
            world.workflows.join("ladder.yaml"),
            crate::escalation::LADDER,
        )
        .unwrap();
        std::fs::write(world.workflows.join("plan.yaml"), PLAN).unwrap();
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T10:00:00Z")));
        let (_, _, connectors) = Recorder::pair();
        Api {
            runtime: Arc::new(world.runtime(&clock, connectors, "api").await),
            clock,
        }
    }

    pub(crate) async fn token(&self, role: Role, scope: &str) -> String {
        create_token(
            self.runtime.store(),
            role,
            scope,
            "test",
            at("2026-12-03T10:00:00Z"),
        )
        .await
        .unwrap()
    }

    /// Sends one request; returns the status and the body (JSON when it is JSON).
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, Body::from))
            .unwrap();
        let answered = crate::util::api_request(self.runtime.commands(), request).await;
        (answered.status, answered.body)
    }

    /// The ledger's `revealed` entries, oldest first.
    pub(crate) async fn reveals(&self) -> Vec<palabre_store::LedgerEntry> {
        let revealed = Some(palabre_store::LedgerEvent::Revealed);
        self.runtime
            .store()
            .ledger_of(None, revealed, 100)
            .await
            .unwrap()
    }

    pub(crate) async fn case_count(&self) -> usize {
        self.runtime
            .store()
            .cases("litiges-test")
            .await
            .unwrap()
            .len()
    }
}

fn new_case(place: &str) -> String {
    json!({
        "workflow": "litiges-test",
        "category": "foncier",
        "place": place,
        "parties": ["c-1"],
        "severity": 2,
        "description": "Deux familles et un champ"
    })
    .to_string()
}

#[tokio::test]
async fn cases_milestones_events_and_reports_through_the_api() {
    for world in worlds("api", "once").await {
        let api = Api::new(&world).await;
        let coordinator = api.token(Role::Coordinator, "mopti").await;
        let observer = api.token(Role::Observer, "mopti/koro").await;

        let (status, case) = api
            .call(
                "POST",
                "/cases",
                Some(&coordinator),
                Some(new_case("mopti/koro/koro")),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{case}");
        assert_eq!(case["id"], "LT-0001");
        assert_eq!(case["level_id"], "chef");
        assert_eq!(case["description"], "Deux familles et un champ");
        let (status, seen) = api
            .call("GET", "/cases/LT-0001", Some(&observer), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            seen.get("description").is_none(),
            "observers do not read descriptions"
        );
        let (status, acked) = api
            .call(
                "POST",
                "/cases/LT-0001/acknowledge",
                Some(&coordinator),
                Some(r#"{"note":"vu"}"#.into()),
            )
            .await;
        assert_eq!(
            (status, acked["state"].as_str()),
            (StatusCode::OK, Some("acknowledged"))
        );
        let (status, escalated) = api
            .call("POST", "/cases/LT-0001/escalate", Some(&coordinator), None)
            .await;
        assert_eq!(
            (status, escalated["level_id"].as_str()),
            (StatusCode::OK, Some("maire"))
        );
        let (_, history) = api
            .call("GET", "/cases/LT-0001/history", Some(&observer), None)
            .await;
        let events: Vec<&str> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            events,
            [
                "case-opened",
                "case-escalated",
                "case-acknowledged",
                "case-escalated"
            ]
        );
        let (status, refused) = api
            .call(
                "POST",
                "/cases/LT-0001/acknowledge",
                Some(&coordinator),
                Some("{}".into()),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "acknowledged again at the new level: {refused}"
        );
        let (status, refused) = api
            .call("POST", "/cases/LT-0001/reopen", Some(&coordinator), None)
            .await;
        // The case exists but is not resolved: a conflict with its state.
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        let (status, _) = api
            .call(
                "POST",
                "/cases/LT-0001/frobnicate",
                Some(&coordinator),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let (status, change) = api
            .call(
                "POST",
                "/milestones/plan-koro/ecole/status",
                Some(&coordinator),
                Some(r#"{"status":"in_progress","note":"travaux commencés"}"#.into()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{change}");
        assert_eq!(
            (change["previous"].as_str(), change["status"].as_str()),
            (Some("planned"), Some("in_progress"))
        );
        let (_, rows) = api.call("GET", "/milestones", Some(&observer), None).await;
        assert_eq!(rows[0]["status"], "in_progress");

        api.invite_to_the_seventh().await;
        let (status, done) = api
            .call(
                "POST",
                "/workflows/weekly-koro/events/cancel",
                Some(&coordinator),
                Some(r#"{"occurrence":"2026-12-07T09:00:00Z","reason":"alerte"}"#.into()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{done}");
        assert_eq!(
            (done["sequence"].as_u64(), done["notified"].as_u64()),
            (Some(1), Some(3))
        );

        let (status, instances) = api
            .call(
                "GET",
                "/workflows/weekly-koro/instances",
                Some(&observer),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{instances}");
        assert_eq!(instances["kind"], "meeting");
        assert_eq!(
            instances["instances"][0]["occurrence"],
            "2026-12-07T09:00:00Z"
        );
        assert_eq!(
            instances["instances"][0]["starts_at"],
            Value::Null,
            "cancelled"
        );
        assert_eq!(instances["instances"][1]["sequence"], 0);
        let (_, cases) = api
            .call(
                "GET",
                "/workflows/litiges-test/instances",
                Some(&coordinator),
                None,
            )
            .await;
        assert_eq!(cases["instances"][0]["id"], "LT-0001");
        let (_, workflows) = api.call("GET", "/workflows", Some(&observer), None).await;
        let ids: Vec<&str> = workflows
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            ["weekly-koro", "plan-koro"],
            "the ladder covers Mopti, beyond mopti/koro"
        );
        let (_, ledger) = api.call("GET", "/ledger", Some(&observer), None).await;
        assert!(
            ledger
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["event"] == "cancelled")
        );

        let (status, health) = api.call("GET", "/healthz", None, None).await;
        assert_eq!(
            (status, health["status"].as_str()),
            (StatusCode::OK, Some("ok"))
        );
        let (status, metrics) = api.call("GET", "/metrics", None, None).await;
        assert_eq!(status, StatusCode::OK);
        let metrics = metrics.as_str().unwrap().to_owned();
        assert!(metrics.contains("# TYPE palabre_timers gauge"), "{metrics}");
        assert!(
            metrics.contains("palabre_messages{channel=\"sms\",state=\"queued\"}"),
            "{metrics}"
        );
        assert!(metrics.contains("palabre_rule_errors 0"), "{metrics}");
        // The counts cover every place: a national token's (see
        // `status_shows_no_national_totals_to_a_scoped_token`).
        let national = api.token(Role::Observer, "national").await;
        let (status, counts) = api.call("GET", "/status", Some(&national), None).await;
        assert_eq!(status, StatusCode::OK);
        let sms = counts["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == "sms")
            .unwrap();
        assert!(sms["queued"].as_i64().unwrap() > 0, "{counts}");
        assert_eq!(sms["delivered"], 0, "{counts}");
        let (status, _) = api.call("GET", "/status", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

/// method, path, token, body, the status expected, the field the error names.
type Hostile<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<String>,
    StatusCode,
    Option<&'a str>,
);

#[tokio::test]
async fn hostile_requests_are_refused_without_side_effects() {
    for world in worlds("api_hostile", "once").await {
        let api = Api::new(&world).await;
        let mopti = api.token(Role::Coordinator, "mopti").await;
        let segou = api.token(Role::Coordinator, "segou").await;
        let observer = api.token(Role::Observer, "national").await;
        let (status, _) = api
            .call(
                "POST",
                "/cases",
                Some(&mopti),
                Some(new_case("mopti/koro/koro")),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let ledger_before = api
            .runtime
            .store()
            .ledger(None, 10_000)
            .await
            .unwrap()
            .len();

        let forged = format!("{}x", &mopti[..mopti.len() - 1]);
        let huge = json!({ "workflow": "litiges-test", "category": "foncier", "place": "mopti/koro/koro", "description": "x".repeat(100_000) }).to_string();
        let cases: Vec<Hostile> = vec![
            ("POST", "/cases", None, Some(new_case("mopti/koro/koro")), StatusCode::UNAUTHORIZED, None),
            ("POST", "/cases", Some("plb_nope_nope"), Some(new_case("mopti/koro/koro")), StatusCode::UNAUTHORIZED, None),
            ("POST", "/cases", Some(forged.as_str()), Some(new_case("mopti/koro/koro")), StatusCode::UNAUTHORIZED, None),
            ("POST", "/cases", Some(segou.as_str()), Some(new_case("mopti/koro/koro")), StatusCode::FORBIDDEN, None),
            ("GET", "/cases/LT-0001", Some(segou.as_str()), None, StatusCode::FORBIDDEN, None),
            ("POST", "/cases/LT-0001/resolve", Some(segou.as_str()), None, StatusCode::FORBIDDEN, None),
            ("POST", "/cases", Some(observer.as_str()), Some(new_case("mopti/koro/koro")), StatusCode::FORBIDDEN, None),
            ("POST", "/milestones/plan-koro/ecole/status", Some(segou.as_str()), Some(r#"{"status":"done","note":"x"}"#.into()), StatusCode::FORBIDDEN, None),
            ("POST", "/workflows/weekly-koro/events/cancel", Some(segou.as_str()), Some(r#"{"occurrence":"2026-12-07T09:00:00Z","reason":"x"}"#.into()), StatusCode::FORBIDDEN, None),
            ("POST", "/cases", Some(mopti.as_str()), Some(r#"{"workflow":"litiges-test","category":3}"#.into()), StatusCode::BAD_REQUEST, Some("category")),
            ("POST", "/cases", Some(mopti.as_str()), Some(r#"{"workflow":"litiges-test","category":"foncier","place":"mopti/koro/koro"}"#.into()), StatusCode::BAD_REQUEST, Some("description")),
            ("POST", "/cases", Some(mopti.as_str()), Some(r#"{"workflow":"litiges-test","category":"foncier","place":"mopti/koro","parties":["c-1",4],"description":"x"}"#.into()), StatusCode::BAD_REQUEST, Some("parties[1]")),
            ("POST", "/cases", Some(mopti.as_str()), Some(r#"{"workflow":"litiges-test","colour":"red"}"#.into()), StatusCode::BAD_REQUEST, Some("colour")),
            ("POST", "/cases", Some(mopti.as_str()), Some("not json".into()), StatusCode::BAD_REQUEST, None),
            ("POST", "/milestones/plan-koro/ecole/status", Some(mopti.as_str()), Some(r#"{"status":"finished","note":"x"}"#.into()), StatusCode::BAD_REQUEST, Some("status")),
            ("POST", "/cases", Some(mopti.as_str()), Some(huge), StatusCode::PAYLOAD_TOO_LARGE, None),
        ];
        for (method, path, token, body, expected, field) in cases {
            let (status, answer) = api.call(method, path, token, body).await;
            assert_eq!(status, expected, "{method} {path}: {answer}");
            if let Some(field) = field {
                assert_eq!(answer["field"], field, "{method} {path}: {answer}");
            }
            if status != StatusCode::PAYLOAD_TOO_LARGE {
                assert!(answer["error"].is_string(), "a JSON error: {answer}");
            }
        }
        assert_eq!(api.case_count().await, 1, "nothing was opened");
        let case = api.runtime.store().case("LT-0001").await.unwrap().unwrap();
        assert_eq!(case.state.as_str(), "open", "nothing was resolved");
        let states = api.runtime.store().milestone_states().await.unwrap();
        assert!(states.is_empty(), "no milestone changed");
        let ledger_after = api
            .runtime
            .store()
            .ledger(None, 10_000)
            .await
            .unwrap()
            .len();
        assert_eq!(ledger_before, ledger_after, "nothing was written");
    }
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let worlds = worlds("api_doc", "once").await;
    let api = Api::new(&worlds[0]).await;
    let (status, document) = api.call("GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, methods) in paths {
        for (method, operation) in methods.as_object().unwrap() {
            operations += 1;
            let concrete = path
                .replace("{id}", "LT-0001")
                .replace("{event}", "cancel")
                .replace("{action}", "note")
                .replace("{plan}", "plan-koro")
                .replace("{secret}", "s3cret")
                .replace("{token}", "not-a-link");
            let (status, answer) = api
                .call(&method.to_uppercase(), &concrete, None, None)
                .await;
            // The router knows the route: no 405, no bare 404 from routing.
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            // (An answer link that is not valid is a page for people: HTML.)
            let link_page = answer
                .as_str()
                .is_some_and(|page| page.contains("<h1>Lien non valable</h1>"));
            assert!(
                status != StatusCode::NOT_FOUND || answer.is_object() || link_page,
                "{method} {path}: not routed"
            );
            let public = operation.get("security").is_none();
            assert_eq!(
                status == StatusCode::UNAUTHORIZED,
                !public,
                "{method} {path}: {status}"
            );
            if let Some(schema) = operation.pointer("/requestBody/content/application~1json/schema")
            {
                assert!(
                    schema.get("properties").is_some() || schema.get("$ref").is_some(),
                    "{method} {path}"
                );
            }
        }
    }
    assert_eq!(operations, palabre_api::ROUTES.len());
    let (status, _) = api.call("GET", "/no/such/route", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A weekly meeting in Ségou, for the scope of `/status`: its timers and
/// messages are none of a Mopti token's business.
const SEGOU_MEETING: &str = "\
kind: meeting
id: weekly-pelengana
title: Réunion de Pelengana
place: segou/segou/pelengana
recurrence: \"0 9 * * MON\"
venue: Mairie de Pelengana
misfire: once
recipients: [{ role: leader }]
steps:
  - { id: invitation, at: -3d, template: meeting-invitation, channels: [sms] }
  - { id: reminder, at: -2h, template: meeting-reminder, channels: [sms] }
";

/// An API over a world with a meeting in Mopti (Koro) and one in Ségou
/// (Pelengana), both planned, and a notice queued for each.
async fn mopti_and_segou(world: &World) -> Api {
    std::fs::write(world.workflows.join("pelengana.yaml"), SEGOU_MEETING).unwrap();
    world
        .add_csv(
            "id,name,roles,place,phone,email,language,channels\n\
             c-9,Fanta Coulibaly,leader,segou/segou/pelengana,76 99 88 77,,bam,sms\n",
        )
        .await;
    let api = Api::new(world).await;
    api.runtime.tick().await.unwrap();
    api.invite_to_the_seventh().await;
    let coordinator = api.token(Role::Coordinator, "national").await;
    for meeting in ["weekly-koro", "weekly-pelengana"] {
        let (status, done) = api
            .call(
                "POST",
                &format!("/workflows/{meeting}/events/cancel"),
                Some(&coordinator),
                Some(r#"{"occurrence":"2026-12-07T09:00:00Z","reason":"fête"}"#.into()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{meeting}: {done}");
    }
    api
}

/// The timers and messages `/status` counts for `token`, or its refusal.
async fn counted(api: &Api, token: &str) -> (StatusCode, i64, i64) {
    let (status, counts) = api.call("GET", "/status", Some(token), None).await;
    let timers = ["due_later", "late", "fired", "skipped"]
        .iter()
        .map(|k| counts[k].as_i64().unwrap_or_default())
        .sum();
    let messages = counts["channels"]
        .as_array()
        .map(|channels| {
            channels
                .iter()
                .map(|c| c["queued"].as_i64().unwrap_or_default())
                .sum()
        })
        .unwrap_or_default();
    (status, timers, messages)
}

/// What `/status` shows a scoped token: the timers and messages of the workflows
/// at or below its place only, Mopti's and Ségou's adding up to the national
/// totals (before, every token got the national totals).
#[tokio::test]
async fn status_counts_only_the_workflows_of_the_token_place() {
    for world in worlds("api_status_of", "once").await {
        let api = mopti_and_segou(&world).await;
        let national = api.token(Role::Observer, "national").await;
        let mopti = api.token(Role::Observer, "mopti").await;
        let segou = api.token(Role::Observer, "segou").await;
        let (_, timers, messages) = counted(&api, &national).await;
        let (status, mopti_timers, mopti_messages) = counted(&api, &mopti).await;
        assert_eq!(status, StatusCode::OK);
        let (status, segou_timers, segou_messages) = counted(&api, &segou).await;
        assert_eq!(status, StatusCode::OK);
        assert!(mopti_timers > 0 && segou_timers > 0 && mopti_messages > 0 && segou_messages > 0);
        assert_eq!(mopti_timers + segou_timers, timers);
        assert_eq!(mopti_messages + segou_messages, messages);
        let elsewhere = api.token(Role::Observer, "segou/macina").await;
        assert_eq!(counted(&api, &elsewhere).await, (StatusCode::OK, 0, 0));
    }
}

/// What the dashboard reads of a meeting, the directory and the ledger, over
/// the API with each role's and scope's refusals.
#[tokio::test]
async fn an_occurrence_the_directory_and_the_filtered_ledger_through_the_api() {
    use palabre_core::webhooks::InboundSms;
    use palabre_lang::occurrence::occurrence_reference;
    for world in worlds("api_occurrence", "once").await {
        let api = Api::new(&world).await;
        let observer = api.token(Role::Observer, "mopti/koro").await;
        let coordinator = api.token(Role::Coordinator, "mopti").await;
        let administrator = api.token(Role::Administrator, "national").await;
        let segou = api.token(Role::Administrator, "segou").await;
        let seventh = "/workflows/weekly-koro/occurrences/2026-12-07T09:00:00Z";

        // A meeting's occurrences from a past instant, it included.
        let (status, since) = api
            .call(
                "GET",
                "/workflows/weekly-koro/instances?since=2026-11-30T09:00:00Z",
                Some(&observer),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{since}");
        assert_eq!(since["instances"][0]["occurrence"], "2026-11-30T09:00:00Z");
        assert_eq!(since["instances"].as_array().unwrap().len(), 10);

        let (status, before) = api.call("GET", seventh, Some(&observer), None).await;
        assert_eq!(status, StatusCode::OK, "{before}");
        assert_eq!(before["messages"].as_array().unwrap().len(), 0);
        api.invite_to_the_seventh().await;
        let reference = occurrence_reference("weekly-koro", at("2026-12-07T09:00:00Z"));
        api.runtime
            .commands()
            .inbound_sms(&InboundSms::new("76 11 22 33", format!("oui {reference}")))
            .await
            .unwrap();
        let (status, report) = api.call("GET", seventh, Some(&observer), None).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["reference"], reference.as_str());
        let invitations: Vec<(&str, &str, &str)> = report["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["step"] == "invitation")
            .map(|m| {
                (
                    m["contact_id"].as_str().unwrap(),
                    m["channel"].as_str().unwrap(),
                    m["progress"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(invitations.len(), 3, "one invitation each: {invitations:?}");
        assert!(
            invitations.contains(&("c-3", "email", "sent")),
            "{invitations:?}"
        );
        let answers: Vec<(&str, &str)> = report["invited"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["contact_id"].as_str().unwrap(),
                    i["answer"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(answers, [("c-1", "yes"), ("c-2", "none"), ("c-3", "none")]);
        assert_eq!(report["quorum"]["reached"], false, "{report}");
        assert!(!report["quorum"]["reason"].as_str().unwrap().is_empty());
        let (status, _) = api
            .call(
                "GET",
                "/workflows/weekly-koro/occurrences/2026-12-08T09:00:00Z",
                Some(&observer),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "a Tuesday is no occurrence");
        let (status, _) = api.call("GET", seventh, Some(&segou), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "Koro is outside Ségou");

        // The directory: masked for coordinators, refused to observers.
        let (status, _) = api.call("GET", "/contacts", Some(&observer), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, listed) = api.call("GET", "/contacts", Some(&coordinator), None).await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        assert_eq!(listed.as_array().unwrap().len(), 3);
        let text = listed.to_string();
        for clear in ["76112233", "76 11 22 33", "oumar@example.org"] {
            assert!(!text.contains(clear), "{clear} in {text}");
        }
        assert_eq!(listed[2]["email"], "o•••@example.org");
        let (status, none_of_koro) = api.call("GET", "/contacts", Some(&segou), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            none_of_koro.as_array().unwrap().len(),
            0,
            "Koro is outside Ségou"
        );

        // One contact revealed to an administrator, after the ledger says so.
        let (status, _) = api
            .call("POST", "/contacts/c-1/reveal", Some(&coordinator), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, revealed) = api
            .call("POST", "/contacts/c-1/reveal", Some(&administrator), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{revealed}");
        assert_eq!(revealed["phone"], "+22376112233");
        let reveals = api.reveals().await;
        assert_eq!(reveals.len(), 1, "{reveals:?}");
        assert_eq!(reveals[0].contact_id.as_deref(), Some("c-1"));
        let detail = &reveals[0].detail;
        assert!(
            !detail.contains("76112233") && !detail.contains("+223"),
            "{detail}"
        );

        // A directory file imported: the good row kept, the bad one reported.
        let csv = "id,name,roles,place,phone,email,language,channels\n\
                   c-4,Fanta Cissé,leader,mopti/koro/koro,76 99 88 77,,fra,sms\n\
                   c-5,Sans Lieu,leader,nulle/part,76 99 88 78,,fra,sms\n";
        let (status, _) = api
            .call("POST", "/contacts/import", Some(&segou), Some(csv.into()))
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "national administrators only"
        );
        let (status, imported) = api
            .call(
                "POST",
                "/contacts/import?file=new.csv",
                Some(&administrator),
                Some(csv.into()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{imported}");
        assert_eq!(
            (
                imported["read"].as_u64(),
                imported["inserted"].as_u64(),
                imported["rejected"].as_u64()
            ),
            (Some(1), Some(1), Some(1)),
            "{imported}"
        );
        assert_eq!(imported["problems"][0]["line"], 3, "{imported}");
        assert!(!imported.to_string().contains("76 99"), "{imported}");
        let (_, listed) = api.call("GET", "/contacts", Some(&coordinator), None).await;
        assert_eq!(listed.as_array().unwrap().len(), 4);

        // The ledger by event and by place.
        let (status, replies) = api
            .call("GET", "/ledger?event=reply", Some(&observer), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let replies = replies.as_array().unwrap();
        assert!(!replies.is_empty());
        assert!(replies.iter().all(|e| e["event"] == "reply"), "{replies:?}");
        let (status, _) = api
            .call("GET", "/ledger?event=frobnicated", Some(&observer), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (_, elsewhere) = api
            .call(
                "GET",
                "/ledger?place=mopti/douentza",
                Some(&administrator),
                None,
            )
            .await;
        assert_eq!(elsewhere.as_array().unwrap().len(), 0, "{elsewhere}");
        let (_, koro) = api
            .call(
                "GET",
                "/ledger?place=mopti/koro",
                Some(&administrator),
                None,
            )
            .await;
        assert!(!koro.as_array().unwrap().is_empty());
    }
}
