//! A meeting reaches leaders whose first channel is voice, on SQLite and
//! PostgreSQL, on the virtual clock: the call is placed to a fake Twilio
//! (wiremock, its documented Calls API), the TwiML the API answers plays the
//! clips the invitation is assembled from (the French placeholders of
//! `scripts/ensure-clips`), a keypad "1" posted back, signed, counts as
//! attendance, and a call nobody answers is made again, then goes by SMS.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use palabre_api::{ApiState, VoiceCalls, router};
use palabre_core::clock::VirtualClock;
use palabre_engine::runtime::Runtime;
use palabre_sms::voice::VoiceGatewayFile;
use tower::ServiceExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::runtime::{Recorder, World, at, run_until, worlds};
use crate::sms_flow::signed_post;

const TOKEN: &str = "twilio-voice-token";
const PUBLIC_URL: &str = "https://palabre.example";

/// Invented people who asked to be called.
const CALLED: &str = "id,name,roles,place,phone,email,language,channels
c-7,Binta Sow,leader,mopti/koro/koro,76 00 00 07,,fra,voice;sms
c-8,Issa Maiga,leader,mopti/koro/koro,76 00 00 08,,fra,voice;sms
";

const MEETING: &str = "\
kind: meeting
id: weekly-koro
title: Réunion hebdomadaire
place: mopti/koro
recurrence: \"0 9 * * MON\"
venue: Mairie de Koro
misfire: once
recipients: [{ role: leader }, { role: mayor }]
steps:
  - { id: invitation, at: -3d, template: meeting-invitation, channels: [voice, sms, email] }
";

/// What the fake Twilio was asked to call: (To, Url, sid).
type Calls = Arc<Mutex<Vec<(String, String, String)>>>;

/// The numbers called so far, in order.
fn numbers_called(calls: &Calls) -> Vec<String> {
    calls.lock().unwrap().iter().map(|c| c.0.clone()).collect()
}

/// The SMS texts sent to `number`.
fn texts_to(sms: &Recorder, number: &str) -> Vec<String> {
    sms.delivered
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.to_address == number)
        .map(|m| m.body.clone())
        .collect()
}

/// The ledger entries about `contact`, as "event detail".
async fn ledger_about(runtime: &Runtime, contact: &str) -> Vec<String> {
    let ledger = runtime.store().ledger(None, 10_000).await.unwrap();
    ledger
        .iter()
        .filter(|e| e.contact_id.as_deref() == Some(contact))
        .map(|e| format!("{} {}", e.event, e.detail))
        .collect()
}

async fn fake_twilio() -> (MockServer, Calls) {
    let server = MockServer::start().await;
    let calls: Calls = Arc::default();
    let record = calls.clone();
    Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC-voice/Calls.json"))
        .respond_with(move |request: &wiremock::Request| {
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&request.body).unwrap();
            let field = |name: &str| form.iter().find(|(k, _)| k == name).unwrap().1.clone();
            assert_eq!(
                field("StatusCallback"),
                format!("{PUBLIC_URL}/voice/s3cret/status")
            );
            // Twilio's answer to a number it cannot call (error 21211).
            if field("To").ends_with("0010") {
                return ResponseTemplate::new(400).set_body_json(serde_json::json!({
                    "code": 21211,
                    "message": "Invalid 'To' Phone Number",
                    "more_info": "https://www.twilio.com/docs/errors/21211",
                    "status": 400
                }));
            }
            let mut calls = record.lock().unwrap();
            let sid = format!("CA{:032}", calls.len());
            calls.push((field("To"), field("Url"), sid.clone()));
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({ "sid": sid, "status": "queued" }))
        })
        .mount(&server)
        .await;
    (server, calls)
}

/// Posts a form to `route` as Twilio would, signed; the TwiML answered.
async fn twilio_posts(state: &ApiState, route: &str, form: &[(&str, &str)]) -> String {
    let (content_type, text) = signed_post(state, (TOKEN, PUBLIC_URL), route, form).await;
    assert_eq!(content_type, "text/xml");
    text
}

/// The clip names a TwiML document plays, in order (the Gather's included).
fn played(twiml: &str) -> Vec<String> {
    twiml
        .split("<Play>")
        .skip(1)
        .map(|part| {
            let url = part.split("</Play>").next().unwrap();
            let prefix = format!("{PUBLIC_URL}/voice/s3cret/audio/fra/");
            url.strip_prefix(&prefix)
                .and_then(|clip| clip.strip_suffix(".wav"))
                .unwrap_or_else(|| panic!("{url} is not a French clip"))
                .to_owned()
        })
        .collect()
}

/// The gateway file of a fake Twilio.
fn twilio_gateway(twilio: &MockServer) -> String {
    // SAFETY of the test: these variable names are used by this test only, always
    // with the same values.
    unsafe {
        std::env::set_var("PALABRE_TEST_VOICE_SID", "AC-voice");
        std::env::set_var("PALABRE_TEST_VOICE_TOKEN", TOKEN);
    }
    format!(
        "gateway:
  provider: twilio
  base_url: {}
  account_sid_env: PALABRE_TEST_VOICE_SID
  auth_token_env: PALABRE_TEST_VOICE_TOKEN
  from: \"+15005550006\"
  public_url: {PUBLIC_URL}
tries: 2
spacing: 2h
",
        twilio.uri()
    )
}

/// `yaml` as the file `serve --voice-gateway` reads.
fn voice_gateway(folder: &std::path::Path, yaml: &str) -> VoiceGatewayFile {
    let file = folder.join("voice.yaml");
    std::fs::write(&file, yaml).unwrap();
    palabre_lang::yaml::parse_file::<VoiceGatewayFile>(&file)
        .unwrap()
        .value
}

/// A world's runtime and API with calls through a fake Twilio, its meeting
/// `meeting`, the French clips and the people of `CALLED`; the clock starts
/// on Thursday 3 December at 12:00.
struct Calling {
    runtime: Runtime,
    state: ApiState,
    calls: Calls,
    sms: Arc<Recorder>,
    clock: Arc<VirtualClock>,
    _server: MockServer,
}

async fn calling(world: &World, meeting: &str) -> Calling {
    let (twilio, calls) = fake_twilio().await;
    let yaml = twilio_gateway(&twilio);
    calling_through(world, meeting, &yaml, twilio, calls).await
}

/// [`calling`] through the provider `server` fakes, set up by `yaml`.
async fn calling_through(
    world: &World,
    meeting: &str,
    yaml: &str,
    server: MockServer,
    calls: Calls,
) -> Calling {
    // The folder `scripts/ensure-clips` printed, else the repository's.
    let audio = std::env::var_os("PALABRE_TEST_CLIPS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::util::repo().join("workflows/audio"));
    assert!(
        audio.join("fra/keys.wav").exists(),
        "the French placeholder clips are missing from {}: run scripts/ensure-clips (the README's test command does)",
        audio.display()
    );
    std::fs::write(world.workflows.join("weekly.yaml"), meeting).unwrap();
    crate::util::copy_dir(&audio, &world.workflows.join("audio"));
    world.add_csv(CALLED).await;
    let file = voice_gateway(world.workflows.parent().unwrap(), yaml);
    let calling = file.gateway("s3cret").unwrap();
    let (sms, _email, connectors) = Recorder::pair();
    let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
    let runtime = world
        .runtime(&clock, connectors.with(calling.connector), "a")
        .await;
    let state = ApiState {
        commands: runtime.commands().clone(),
        inbound_secret: Some("s3cret".into()),
        webhooks: palabre_sms::gateways::webhooks(None).unwrap(),
        voice: Some(VoiceCalls {
            gateway: calling.gateway,
            public_url: calling.public_url,
        }),
    };
    Calling {
        runtime,
        state,
        calls,
        sms,
        clock,
        _server: server,
    }
}

#[tokio::test]
async fn a_call_plays_the_clips_takes_a_key_and_an_unanswered_one_goes_by_sms() {
    for world in worlds("voice", "once").await {
        let Calling {
            runtime,
            state,
            calls,
            sms,
            clock,
            _server,
        } = calling(&world, MEETING).await;
        let occurrence = at("2026-12-07T09:00:00Z");

        // The invitations, Friday at 09:00: Binta and Issa are called, not texted.
        run_until(&runtime, &clock, at("2026-12-04T09:00:30Z")).await;
        let called = numbers_called(&calls);
        assert_eq!(called, ["+22376000007", "+22376000008"]);
        let texted: Vec<String> = sms
            .delivered
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.to_address.clone())
            .collect();
        assert!(
            !texted
                .iter()
                .any(|n| n.ends_with("0007") || n.ends_with("0008"))
        );

        // Binta picks up: the TwiML plays the invitation, Monday 7 December at
        // 9 o'clock, then asks for a key (twice if nothing is pressed).
        let (_, binta_url, binta_sid) = calls.lock().unwrap()[0].clone();
        let route = binta_url.strip_prefix(PUBLIC_URL).unwrap().to_owned();
        let twiml = twilio_posts(
            &state,
            &route,
            &[("CallSid", &binta_sid), ("CallStatus", "in-progress")],
        )
        .await;
        assert_eq!(
            played(&twiml),
            [
                "invitation",
                "weekday-1",
                "number-7",
                "month-12",
                "at",
                "number-9",
                "hours",
                "keys",
                "keys"
            ],
            "{twiml}"
        );
        assert!(twiml.ends_with("<Hangup/></Response>"), "{twiml}");
        for private in ["Binta", "0007"] {
            assert!(!twiml.contains(private), "{private} in {twiml}");
        }
        // Twilio fetches the clips from the API.
        let clip = router(state.clone())
            .oneshot(
                Request::builder()
                    .uri("/voice/s3cret/audio/fra/keys.wav")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(clip.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(clip.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&bytes[..4], b"RIFF");
        let wrong = router(state.clone())
            .oneshot(
                Request::builder()
                    .uri("/voice/guess/audio/fra/keys.wav")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

        // 9 plays the message again; 1 confirms, thanked by a recording.
        let keys_route = route.replace("/call?", "/keys?");
        let again = twilio_posts(
            &state,
            &keys_route,
            &[("CallSid", &binta_sid), ("Digits", "9")],
        )
        .await;
        assert!(again.contains("<Redirect method=\"POST\">"), "{again}");
        let thanks = twilio_posts(
            &state,
            &keys_route,
            &[("CallSid", &binta_sid), ("Digits", "1")],
        )
        .await;
        assert_eq!(played(&thanks), ["thanks-yes"], "{thanks}");
        let responses = runtime
            .store()
            .responses("weekly-koro", occurrence)
            .await
            .unwrap();
        assert_eq!(
            responses.get("c-7").map(String::as_str),
            Some("yes"),
            "{responses:?}"
        );
        let ledger = runtime.store().ledger(None, 10_000).await.unwrap();
        assert!(
            ledger.iter().any(|e| e.event == "reply"
                && e.contact_id.as_deref() == Some("c-7")
                && e.channel == Some(palabre_core::channel::Channel::Voice)),
            "the keypad's answer is in the ledger as a reply by voice"
        );
        twilio_posts(
            &state,
            "/voice/s3cret/status",
            &[("CallSid", &binta_sid), ("CallStatus", "completed")],
        )
        .await;

        // Issa does not answer: called again two hours later, then, not
        // answering again (the second and last try), invited by SMS.
        let issa_sid = calls.lock().unwrap()[1].2.clone();
        twilio_posts(
            &state,
            "/voice/s3cret/status",
            &[("CallSid", &issa_sid), ("CallStatus", "no-answer")],
        )
        .await;
        run_until(&runtime, &clock, at("2026-12-04T10:59:00Z")).await;
        assert_eq!(calls.lock().unwrap().len(), 2, "not before the spacing");
        run_until(&runtime, &clock, at("2026-12-04T11:01:00Z")).await;
        let (to, _, second_sid) = calls.lock().unwrap()[2].clone();
        assert_eq!(to, "+22376000008");
        twilio_posts(
            &state,
            "/voice/s3cret/status",
            &[("CallSid", &second_sid), ("CallStatus", "busy")],
        )
        .await;
        run_until(&runtime, &clock, at("2026-12-04T11:02:00Z")).await;
        assert_eq!(calls.lock().unwrap().len(), 3, "two tries in all");
        let to_issa = texts_to(&sms, "+22376000008");
        assert_eq!(to_issa.len(), 1, "{to_issa:?}");
        assert!(to_issa[0].starts_with("Invitation"), "{}", to_issa[0]);
        let about_issa = ledger_about(&runtime, "c-8").await;
        assert!(
            about_issa
                .iter()
                .any(|e| e.contains("no-answer; called again at 2026-12-04 11:00 UTC")),
            "{about_issa:#?}"
        );
        assert!(
            about_issa
                .iter()
                .any(|e| e.starts_with("undelivered")
                    && e.contains("busy; sent again by sms instead")),
            "{about_issa:#?}"
        );
    }
}

#[tokio::test]
async fn calls_wait_for_the_callees_hours_and_for_what_a_rule_forbids() {
    // The invitation is due on Thursday at 20:00, when calls are over.
    let meeting = MEETING.replace("at: -3d,", "at: -3d13h,");
    for world in worlds("voice_hours", "once").await {
        // Bondo is called from 09:30; in Koro, Friday's market keeps people
        // out until 09:00.
        std::fs::write(
            world.workflows.join("calls.yaml"),
            "hours: \"08:00-20:00\"\nplaces:\n  mopti/koro/bondo: \"09:30-18:00\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(world.workflows.join("rules")).unwrap();
        std::fs::write(
            world.workflows.join("rules/mopti.rhai"),
            "fn call_time(input) {\n    if input.weekday == \"friday\" && input.time < \"09:00\" {\n        return #{ wait: \"1h\", reason: \"jour de marché\" };\n    }\n    ()\n}\n",
        )
        .unwrap();
        let (definitions, diagnostics) = world.definitions();
        assert!(!diagnostics.has_errors(), "{diagnostics:?}");
        assert_eq!(
            definitions.calls.window("mopti/koro/bondo").to_string(),
            "09:30-18:00"
        );
        world
            .add_csv("id,name,roles,place,phone,email,language,channels\nc-9,Awa Cissé,leader,mopti/koro/bondo,76 00 00 09,,fra,voice;sms\n")
            .await;
        let Calling {
            runtime,
            calls,
            sms,
            clock,
            _server,
            ..
        } = calling(&world, &meeting).await;
        let called = || numbers_called(&calls);

        // Thursday 20:00: nobody is called, and nobody is texted instead.
        run_until(&runtime, &clock, at("2026-12-04T07:59:00Z")).await;
        assert!(called().is_empty(), "{:?}", called());
        assert!(
            !sms.delivered
                .lock()
                .unwrap()
                .iter()
                .any(|m| ["0007", "0008", "0009"]
                    .iter()
                    .any(|n| m.to_address.ends_with(n))),
            "a call that waits does not fall back"
        );
        // Friday 08:00, Koro's hours begin, but the market rule holds the calls an hour.
        run_until(&runtime, &clock, at("2026-12-04T08:59:00Z")).await;
        assert!(called().is_empty(), "{:?}", called());
        // 09:00: Koro's leaders are called; Bondo's at 09:30.
        run_until(&runtime, &clock, at("2026-12-04T09:29:00Z")).await;
        assert_eq!(called(), ["+22376000007", "+22376000008"]);
        run_until(&runtime, &clock, at("2026-12-04T09:31:00Z")).await;
        assert_eq!(called(), ["+22376000007", "+22376000008", "+22376000009"]);

        let ledger = runtime.store().ledger(None, 10_000).await.unwrap();
        let waits: Vec<String> = ledger
            .iter()
            .filter(|e| e.event == "deferred")
            .map(|e| format!("{} {}", e.contact_id.clone().unwrap_or_default(), e.detail))
            .collect();
        assert!(
            waits.iter().any(|w| w.starts_with("c-7 outside the call hours (08:00-20:00 Africa/Bamako) of mopti/koro/koro; called from 2026-12-04T08:00:00+00:00")),
            "{waits:#?}"
        );
        assert!(
            waits.iter().any(|w| w.starts_with("c-7 held by rules/mopti.rhai: jour de marché; called from 2026-12-04T09:00:00+00:00")),
            "{waits:#?}"
        );
        assert!(
            waits
                .iter()
                .any(|w| w.starts_with("c-9 outside the call hours (09:30-18:00 Africa/Bamako)")),
            "{waits:#?}"
        );
        // Waiting is not trying: no retry, and the first call is the first attempt.
        assert!(
            !ledger
                .iter()
                .any(|e| e.event == "retry" || e.event == "dead-letter")
        );
    }
}

/// The plan whose owners, the leaders of Koro, are called about its well.
const PLAN: &str = "\
kind: milestones
id: plan-appel
title: Plan test
place: mopti/koro
timezone: Africa/Bamako
send_at: \"09:00\"
reminders: [-7d]
channels: [voice, sms]
done_by_sms: true
milestones:
  - { id: puits, title: Puits, owner: { role: leader, place: mopti/koro/koro }, due: 2026-12-11 }
";

#[tokio::test]
async fn keys_acknowledge_a_dispute_and_report_a_milestone_done() {
    use palabre_lang::escalation::CaseState;
    use palabre_lang::milestones::{MilestoneStatus, Statuses};
    // The meeting is far off: these calls are about the dispute and the plan.
    let meeting = MEETING.replace("0 9 * * MON", "0 9 1 2 *");
    for world in worlds("voice_keys", "once").await {
        let ladder =
            crate::escalation::LADDER.replace("categories:", "channels: [voice, sms]\ncategories:");
        std::fs::write(world.workflows.join("ladder.yaml"), ladder).unwrap();
        std::fs::write(world.workflows.join("plan.yaml"), PLAN).unwrap();
        let Calling {
            runtime,
            state,
            calls,
            clock,
            _server,
            ..
        } = calling(&world, &meeting).await;
        let call = |i: usize| calls.lock().unwrap()[i].clone();
        let answer = |i: usize| {
            let (_, url, sid) = call(i);
            (url.strip_prefix(PUBLIC_URL).unwrap().to_owned(), sid)
        };

        // A dispute in Koro reaches its first level, the leaders: called at once.
        let case = runtime
            .commands()
            .open_case(
                palabre_engine::commands::NewCase {
                    workflow: "litiges-test".into(),
                    category: "foncier".into(),
                    place: "mopti/koro/koro".into(),
                    parties: vec!["c-1".into()],
                    severity: 2,
                    description: "Un champ disputé entre deux familles".into(),
                },
                "test",
            )
            .await
            .unwrap();
        run_until(&runtime, &clock, at("2026-12-03T12:01:00Z")).await;
        let called = numbers_called(&calls);
        assert_eq!(called, ["+22376000007", "+22376000008"]);
        let (route, sid) = answer(0);
        let twiml = twilio_posts(&state, &route, &[("CallSid", &sid)]).await;
        let clips = played(&twiml);
        // The reference said digit by digit, then by when to acknowledge it;
        // neither the parties nor the description are spoken.
        assert_eq!(
            clips[..6],
            [
                "dispute",
                "number-0",
                "number-0",
                "number-0",
                "number-1",
                "acknowledge-by"
            ],
            "{clips:?}"
        );
        assert_eq!(clips[clips.len() - 2..], ["keys-dispute", "keys-dispute"]);
        assert!(case.id.ends_with("0001"), "{}", case.id);
        let keys = route.replace("/call?", "/keys?");
        let thanks = twilio_posts(&state, &keys, &[("CallSid", &sid), ("Digits", "1")]).await;
        assert_eq!(played(&thanks), ["thanks-dispute-yes"], "{thanks}");
        let stored = runtime.store().case(&case.id).await.unwrap().unwrap();
        assert_eq!(stored.state, CaseState::Acknowledged);
        let ledger = runtime.store().ledger(None, 10_000).await.unwrap();
        assert!(
            ledger
                .iter()
                .any(|e| e.event == "case-acknowledged" && e.detail.contains("by call")),
            "{:#?}",
            ledger
                .iter()
                .map(|e| format!("{} {}", e.event, e.detail))
                .collect::<Vec<_>>()
        );
        // Issa presses 1 too late: the dispute is taken; the choice is asked again.
        let (route, sid) = answer(1);
        let keys = route.replace("/call?", "/keys?");
        let again = twilio_posts(&state, &keys, &[("CallSid", &sid), ("Digits", "1")]).await;
        assert_eq!(
            played(&again),
            ["not-understood", "keys-dispute"],
            "{again}"
        );

        // Friday 09:00, a week before the well is due: its owners are called.
        run_until(&runtime, &clock, at("2026-12-04T09:01:00Z")).await;
        assert_eq!(calls.lock().unwrap().len(), 4);
        let (route, sid) = answer(2);
        let twiml = twilio_posts(&state, &route, &[("CallSid", &sid)]).await;
        let clips = played(&twiml);
        assert_eq!(clips[0], "milestone", "{clips:?}");
        assert_eq!(clips[clips.len() - 1], "keys-milestone", "{clips:?}");
        // One owner says not yet (noted), the other that it is done (closed).
        let (second, second_sid) = answer(3);
        let not_yet = twilio_posts(
            &state,
            &second.replace("/call?", "/keys?"),
            &[("CallSid", &second_sid), ("Digits", "2")],
        )
        .await;
        assert_eq!(played(&not_yet), ["thanks-not-yet"], "{not_yet}");
        let statuses = Statuses::new(runtime.store().milestone_states().await.unwrap());
        assert_eq!(
            statuses.status("plan-appel", "puits"),
            MilestoneStatus::Planned
        );
        let done = twilio_posts(
            &state,
            &route.replace("/call?", "/keys?"),
            &[("CallSid", &sid), ("Digits", "1")],
        )
        .await;
        assert_eq!(played(&done), ["thanks-done"], "{done}");
        let statuses = Statuses::new(runtime.store().milestone_states().await.unwrap());
        assert_eq!(
            statuses.status("plan-appel", "puits"),
            MilestoneStatus::Done
        );
        let ledger = runtime.store().ledger(None, 10_000).await.unwrap();
        assert!(ledger.iter().any(|e| e.event == "reply"
            && e.detail.starts_with("not done yet, said during a call")
            && e.channel == Some(palabre_core::channel::Channel::Voice)));
        assert!(
            ledger.iter().any(
                |e| e.event == "milestone-status" && e.detail.contains("reported done by call")
            )
        );
    }
}

/// A fake Africa's Talking Voice: `POST /call` with its `apiKey` header and
/// form, answered `Queued` with a session id, except for a number it does not
/// serve (`InvalidPhoneNumber`). What it was asked: (to, clientRequestId, sessionId).
async fn fake_africastalking() -> (MockServer, Calls) {
    let server = MockServer::start().await;
    let calls: Calls = Arc::default();
    let record = calls.clone();
    Mock::given(method("POST"))
        .and(path("/call"))
        .and(wiremock::matchers::header("apiKey", "at-voice-key"))
        .respond_with(move |request: &wiremock::Request| {
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&request.body).unwrap();
            let field = |name: &str| form.iter().find(|(k, _)| k == name).unwrap().1.clone();
            assert_eq!(field("username"), "palabre");
            assert_eq!(field("from"), "+22320000000");
            let to = field("to");
            if to.ends_with("0009") {
                return ResponseTemplate::new(201).set_body_json(serde_json::json!({
                    "entries": [{ "phoneNumber": to, "status": "InvalidPhoneNumber" }],
                    "errorMessage": "None"
                }));
            }
            let mut calls = record.lock().unwrap();
            let session = format!("ATVId_{}", calls.len());
            calls.push((to.clone(), field("clientRequestId"), session.clone()));
            ResponseTemplate::new(201).set_body_json(serde_json::json!({
                "entries": [{ "phoneNumber": to, "status": "Queued", "sessionId": session }],
                "errorMessage": "None"
            }))
        })
        .mount(&server)
        .await;
    (server, calls)
}

/// The clip names of an Africa's Talking document, in order.
fn played_by_africastalking(xml: &str) -> Vec<String> {
    let prefix = format!("{PUBLIC_URL}/voice/s3cret/audio/fra/");
    xml.split("<Play url=\"")
        .skip(1)
        .map(|part| {
            let url = part.split('"').next().unwrap();
            url.strip_prefix(&prefix)
                .and_then(|clip| clip.strip_suffix(".wav"))
                .unwrap_or_else(|| panic!("{url} is not a French clip"))
                .to_owned()
        })
        .collect()
}

/// Africa's Talking posts unsigned forms; the webhook secret in the path is the check.
async fn africastalking_posts(state: &ApiState, route: &str, form: &[(&str, &str)]) -> String {
    let (content_type, text) = signed_post(state, ("unused", PUBLIC_URL), route, form).await;
    assert_eq!(content_type, "application/xml");
    text
}

#[tokio::test]
async fn a_call_through_africas_talking_plays_takes_a_key_and_redials_a_busy_one() {
    for world in worlds("voice_at", "once").await {
        world
            .add_csv("id,name,roles,place,phone,email,language,channels\nc-9,Awa Cissé,leader,mopti/koro/koro,76 00 00 09,,fra,voice;sms\n")
            .await;
        let (server, calls) = fake_africastalking().await;
        // SAFETY of the test: this variable is used by this test only.
        unsafe { std::env::set_var("PALABRE_TEST_AT_VOICE_KEY", "at-voice-key") };
        let yaml = format!(
            "gateway:
  provider: africas_talking
  base_url: {}
  username: palabre
  api_key_env: PALABRE_TEST_AT_VOICE_KEY
  from: \"+22320000000\"
  public_url: {PUBLIC_URL}
tries: 2
spacing: 2h
",
            server.uri()
        );
        let Calling {
            runtime,
            state,
            calls,
            sms,
            clock,
            _server,
            ..
        } = calling_through(&world, MEETING, &yaml, server, calls).await;
        let occurrence = at("2026-12-07T09:00:00Z");

        // Friday 09:00: Binta and Issa are called; Africa's Talking refuses
        // Awa's number, so she is invited by SMS at once.
        run_until(&runtime, &clock, at("2026-12-04T09:00:30Z")).await;
        let called = numbers_called(&calls);
        assert_eq!(called, ["+22376000007", "+22376000008"]);
        let to_awa = texts_to(&sms, "+22376000009");
        assert_eq!(to_awa.len(), 1, "{to_awa:?}");
        let ledger = runtime.store().ledger(None, 10_000).await.unwrap();
        assert!(
            ledger.iter().any(|e| e.contact_id.as_deref() == Some("c-9")
                && e.detail.contains("africastalking: InvalidPhoneNumber")),
            "the refusal is in the ledger"
        );

        // Binta picks up: Africa's Talking posts to the number's callback URL,
        // the API's call URL, with the message's key as clientRequestId.
        let (_, binta_key, binta_session) = calls.lock().unwrap()[0].clone();
        let answered = [
            ("isActive", "1"),
            ("sessionId", binta_session.as_str()),
            ("direction", "Outbound"),
            ("callerNumber", "+22376000007"),
            ("destinationNumber", "+22320000000"),
            ("clientRequestId", binta_key.as_str()),
        ];
        let xml = africastalking_posts(&state, "/voice/s3cret/call", &answered).await;
        assert_eq!(
            played_by_africastalking(&xml),
            [
                "invitation",
                "weekday-1",
                "number-7",
                "month-12",
                "at",
                "number-9",
                "hours",
                "keys",
                "keys"
            ],
            "{xml}"
        );
        for private in ["Binta", "0007"] {
            assert!(!xml.contains(private), "{private} in {xml}");
        }
        let keys_url = xml
            .split("callbackUrl=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
        let keys_route = keys_url.strip_prefix(PUBLIC_URL).unwrap().to_owned();
        let thanks = africastalking_posts(
            &state,
            &keys_route,
            &[
                ("isActive", "1"),
                ("sessionId", &binta_session),
                ("dtmfDigits", "1"),
            ],
        )
        .await;
        assert_eq!(
            played_by_africastalking(&thanks),
            ["thanks-yes"],
            "{thanks}"
        );
        let responses = runtime
            .store()
            .responses("weekly-koro", occurrence)
            .await
            .unwrap();
        assert_eq!(responses.get("c-7").map(String::as_str), Some("yes"));
        // The call's end, posted to the same URL: delivered.
        africastalking_posts(
            &state,
            "/voice/s3cret/call",
            &[
                ("isActive", "0"),
                ("sessionId", &binta_session),
                ("status", "Success"),
                ("hangupCause", "NORMAL_CLEARING"),
                ("durationInSeconds", "31"),
            ],
        )
        .await;

        // Issa's line is busy: called again two hours later.
        let issa_session = calls.lock().unwrap()[1].2.clone();
        africastalking_posts(
            &state,
            "/voice/s3cret/call",
            &[
                ("isActive", "0"),
                ("sessionId", &issa_session),
                ("status", "Failed"),
                ("hangupCause", "USER_BUSY"),
            ],
        )
        .await;
        run_until(&runtime, &clock, at("2026-12-04T11:01:00Z")).await;
        let called = numbers_called(&calls);
        let about_issa = ledger_about(&runtime, "c-8").await;
        assert_eq!(
            called,
            ["+22376000007", "+22376000008", "+22376000008"],
            "{about_issa:#?}"
        );
        let about_binta = ledger_about(&runtime, "c-7").await;
        assert!(
            about_binta.iter().any(|e| e.starts_with("delivered ")),
            "{about_binta:#?}"
        );
    }
}

/// A fake VoiceXML platform behind the generic gateway: `POST /calls` with a
/// JSON body and a bearer token, answered with the call's id. What it was
/// asked: (to, call_url, id).
async fn fake_voicexml_platform() -> (MockServer, Calls) {
    let server = MockServer::start().await;
    let calls: Calls = Arc::default();
    let record = calls.clone();
    Mock::given(method("POST"))
        .and(path("/calls"))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer ivr-token",
        ))
        .respond_with(move |request: &wiremock::Request| {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(
                body["status_url"],
                format!("{PUBLIC_URL}/voice/s3cret/status")
            );
            let mut calls = record.lock().unwrap();
            let id = format!("ivr-{}", calls.len());
            let to = body["to"].as_str().unwrap().to_owned();
            let url = body["call_url"].as_str().unwrap().to_owned();
            calls.push((to, url, id.clone()));
            ResponseTemplate::new(202).set_body_json(serde_json::json!({ "call": { "id": id } }))
        })
        .mount(&server)
        .await;
    (server, calls)
}

#[tokio::test]
async fn a_call_through_a_generic_voicexml_platform_plays_and_takes_a_key() {
    for world in worlds("voice_generic", "once").await {
        let (server, calls) = fake_voicexml_platform().await;
        // SAFETY of the test: this variable is used by this test only.
        unsafe { std::env::set_var("PALABRE_TEST_IVR_TOKEN", "ivr-token") };
        let yaml = format!(
            "gateway:
  provider: generic
  public_url: {PUBLIC_URL}
  call:
    url: {}/calls
    env: [PALABRE_TEST_IVR_TOKEN]
    headers:
      Authorization: \"Bearer {{{{ env.PALABRE_TEST_IVR_TOKEN }}}}\"
      Content-Type: application/json
    body: '{{\"to\": \"{{{{ to }}}}\", \"call_url\": \"{{{{ call_url }}}}\", \"status_url\": \"{{{{ status_url }}}}\"}}'
    id_pointer: /call/id
tries: 2
spacing: 2h
",
            server.uri()
        );
        let Calling {
            runtime,
            state,
            calls,
            clock,
            _server,
            ..
        } = calling_through(&world, MEETING, &yaml, server, calls).await;
        run_until(&runtime, &clock, at("2026-12-04T09:00:30Z")).await;
        let placed = calls.lock().unwrap().clone();
        let called: Vec<&str> = placed.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(called, ["+22376000007", "+22376000008"]);

        // The platform fetches Binta's document: VoiceXML playing the clips,
        // then a one-digit field submitted to the keys URL.
        let route = placed[0].1.strip_prefix(PUBLIC_URL).unwrap().to_owned();
        let (content_type, vxml) = signed_post(&state, ("unused", PUBLIC_URL), &route, &[]).await;
        assert_eq!(content_type, "application/voicexml+xml");
        let prefix = format!("{PUBLIC_URL}/voice/s3cret/audio/fra/");
        let clips: Vec<&str> = vxml
            .split("<audio src=\"")
            .skip(1)
            .map(|part| {
                let url = part.split('"').next().unwrap();
                url.strip_prefix(&prefix)
                    .unwrap()
                    .strip_suffix(".wav")
                    .unwrap()
            })
            .collect();
        assert_eq!(
            clips,
            [
                "invitation",
                "weekday-1",
                "number-7",
                "month-12",
                "at",
                "number-9",
                "hours",
                "keys"
            ],
            "{vxml}"
        );
        assert!(
            vxml.contains("<field name=\"digits\" type=\"digits?length=1\">"),
            "{vxml}"
        );
        // 2: she cannot come, thanked, and counted as such.
        let keys = route.replace("/call?", "/keys?");
        let (_, thanks) =
            signed_post(&state, ("unused", PUBLIC_URL), &keys, &[("digits", "2")]).await;
        assert!(thanks.contains("thanks-no.wav"), "{thanks}");
        let responses = runtime
            .store()
            .responses("weekly-koro", at("2026-12-07T09:00:00Z"))
            .await
            .unwrap();
        assert_eq!(responses.get("c-7").map(String::as_str), Some("no"));
        // Issa does not answer: the platform says so, and he is called again.
        signed_post(
            &state,
            ("unused", PUBLIC_URL),
            "/voice/s3cret/status",
            &[("id", placed[1].2.as_str()), ("status", "no-answer")],
        )
        .await;
        run_until(&runtime, &clock, at("2026-12-04T11:01:00Z")).await;
        assert_eq!(calls.lock().unwrap().len(), 3);
        assert_eq!(calls.lock().unwrap()[2].0, "+22376000008");
    }
}

#[tokio::test]
async fn calls_beyond_the_lines_at_once_wait_for_one_to_end() {
    for world in worlds("voice_lines", "once").await {
        let (twilio, calls) = fake_twilio().await;
        let yaml = format!("{}max_simultaneous: 1\n", twilio_gateway(&twilio));
        let Calling {
            runtime,
            state,
            calls,
            clock,
            _server,
            ..
        } = calling_through(&world, MEETING, &yaml, twilio, calls).await;
        let called = || numbers_called(&calls);
        // One line: Binta is called, Issa waits while her call is under way.
        run_until(&runtime, &clock, at("2026-12-04T09:03:00Z")).await;
        assert_eq!(called(), ["+22376000007"]);
        let binta_sid = calls.lock().unwrap()[0].2.clone();
        twilio_posts(
            &state,
            "/voice/s3cret/status",
            &[("CallSid", &binta_sid), ("CallStatus", "completed")],
        )
        .await;
        run_until(&runtime, &clock, at("2026-12-04T09:05:00Z")).await;
        assert_eq!(called(), ["+22376000007", "+22376000008"]);
        let ledger = runtime.store().ledger(None, 10_000).await.unwrap();
        assert!(
            ledger.iter().any(|e| e.event == "deferred"
                && e.contact_id.as_deref() == Some("c-8")
                && e.detail
                    .starts_with("1 call(s) under way, at most 1 at once")),
            "the wait is in the ledger"
        );
        assert!(
            !ledger.iter().any(|e| e.event == "retry"),
            "waiting is not a failed attempt"
        );
        assert!(
            ledger
                .iter()
                .any(|e| e.event == "delivered" && e.contact_id.as_deref() == Some("c-7")),
            "a completed call is delivered"
        );
    }
}

#[tokio::test]
async fn a_number_twilio_refuses_is_invited_by_sms_at_once() {
    for world in worlds("voice_refused", "once").await {
        world
            .add_csv("id,name,roles,place,phone,email,language,channels\nc-10,Kadia Traoré,leader,mopti/koro/koro,76 00 00 10,,fra,voice;sms\n")
            .await;
        let Calling {
            runtime,
            calls,
            sms,
            clock,
            _server,
            ..
        } = calling(&world, MEETING).await;
        run_until(&runtime, &clock, at("2026-12-04T09:00:30Z")).await;
        let called = numbers_called(&calls);
        assert_eq!(called, ["+22376000007", "+22376000008"]);
        let texted = texts_to(&sms, "+22376000010");
        assert_eq!(texted.len(), 1, "{texted:?}");
        assert!(texted[0].starts_with("Invitation"), "{}", texted[0]);
        let about_kadia = ledger_about(&runtime, "c-10").await;
        assert!(
            about_kadia.iter().any(|e| e.starts_with("dead-letter")
                && e.contains("21211")
                && e.contains("sent again by sms instead")),
            "{about_kadia:#?}"
        );
        assert!(
            !about_kadia.iter().any(|e| e.starts_with("retry")),
            "a refused number is not tried again: {about_kadia:#?}"
        );
    }
}

/// `palabre clips`: the list a programme records from, each clip with its
/// length or MISSING, and who needs it.
#[test]
fn clips_lists_what_to_record_and_who_needs_it() {
    let dir = crate::util::workspace();
    let french = dir.path().join("workflows/audio/fra");
    for entry in std::fs::read_dir(&french).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wav") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let run = crate::util::palabre(dir.path(), &["clips"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let line = |clip: &str| {
        run.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(clip))
            .unwrap_or_else(|| panic!("no {clip} in {}", run.stdout))
            .to_owned()
    };
    assert!(
        run.stdout.starts_with("fra: 99 clips in "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .lines()
            .next()
            .unwrap()
            .ends_with("(99 to record)")
    );
    let invitation = line("invitation");
    assert!(
        invitation.contains("MISSING") && invitation.ends_with("meeting-invitation"),
        "{invitation}"
    );
    for keypad in ["keys", "keys-dispute", "thanks-done", "never-again"] {
        assert!(
            line(keypad).ends_with("every call (the keypad)"),
            "{}",
            line(keypad)
        );
    }
    assert!(
        line("dispute").ends_with("case-assigned"),
        "{}",
        line("dispute")
    );
}
