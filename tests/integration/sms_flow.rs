//! A meeting run end to end over SMS, on SQLite and PostgreSQL, with every part
//! real but the providers: the Twilio connector against a fake Twilio (wiremock)
//! that refuses one number for good, email through a real SMTP server over TCP,
//! the HTTP API's webhooks taking Twilio's signed status callbacks and replies,
//! and the virtual clock. Invitations go out by SMS; leaders answer OUI / NON and
//! change their minds; the quorum rule decides on the answers; the refused SMS
//! goes by email instead, and so does one whose receipt never comes; an opt-out
//! reported by Twilio is honoured for the reminder.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use palabre_api::{ApiState, router};
use palabre_core::clock::VirtualClock;
use palabre_core::connector::Connectors;
use palabre_email::{EmailConnector, Security, SmtpConfig};
use palabre_lang::occurrence::occurrence_reference;
use palabre_sms::gateways::SmsGatewayFile;
use tower::ServiceExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::gateways::twilio_signature;
use crate::runtime::{at, run_until, worlds};
use crate::smtp::SmtpServer;
use axum::http::header::CONTENT_TYPE;
use palabre_engine::runtime::Runtime;

/// Invented people: Binta's number is refused by the provider; Issa's and
/// Fanta's SMS are accepted, and both could also be reached by email.
const MORE_LEADERS: &str = "id,name,roles,place,phone,email,language,channels
c-7,Binta Sow,leader,mopti/koro/koro,76 00 00 07,binta@example.org,fra,sms;email
c-8,Issa Maiga,leader,mopti/koro/koro,76 00 00 08,issa@example.org,fra,sms;email
c-9,Fanta Coulibaly,leader,mopti/koro/koro,76 00 00 09,fanta@example.org,fra,sms;email
";

const TOKEN: &str = "twilio-test-token";
const PUBLIC_URL: &str = "https://palabre.example";

/// What the fake Twilio accepted: (To, Body, sid).
type Accepted = Arc<Mutex<Vec<(String, String, String)>>>;

/// A fake Twilio Messages API: one sid per accepted message, error 21211 (not a
/// valid number) for Binta's number, as Twilio documents both.
async fn fake_twilio() -> (MockServer, Accepted) {
    let server = MockServer::start().await;
    let accepted: Accepted = Arc::default();
    let record = accepted.clone();
    Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC-e2e/Messages.json"))
        .respond_with(move |request: &wiremock::Request| {
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&request.body).unwrap();
            let field = |name: &str| form.iter().find(|(k, _)| k == name).unwrap().1.clone();
            let to = field("To");
            if to == "+22376000007" {
                return ResponseTemplate::new(400).set_body_json(serde_json::json!({
                    "code": 21211, "message": "The 'To' number is not a valid phone number.",
                    "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400
                }));
            }
            let mut accepted = record.lock().unwrap();
            let sid = format!("SM{:032}", accepted.len());
            accepted.push((to, field("Body"), sid.clone()));
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({ "sid": sid, "status": "queued" }))
        })
        .mount(&server)
        .await;
    (server, accepted)
}

/// Posts a form to a webhook route as Twilio would, signed; the answer's
/// content type and text.
async fn twilio_posts(state: &ApiState, route: &str, form: &[(&str, &str)]) -> (String, String) {
    signed_post(state, (TOKEN, PUBLIC_URL), route, form).await
}

/// Posts a form to `route` signed as Twilio signs it, by the auth token of a
/// gateway whose public address is the one given; the answer's content type
/// and text (which must come with 200).
pub(crate) async fn signed_post(
    state: &ApiState,
    (token, public_url): (&str, &str),
    route: &str,
    form: &[(&str, &str)],
) -> (String, String) {
    let params: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let signature = twilio_signature(token, &format!("{public_url}{route}"), &params);
    let request = Request::builder()
        .method("POST")
        .uri(route)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(Body::from(serde_urlencoded::to_string(&params).unwrap()))
        .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{route}");
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (content_type, String::from_utf8(bytes.to_vec()).unwrap())
}

/// A status callback from Twilio; what the API recorded.
async fn twilio_reports(state: &ApiState, form: &[(&str, &str)]) -> serde_json::Value {
    let (_, text) = twilio_posts(state, "/receipts/sms/s3cret", form).await;
    serde_json::from_str(&text).unwrap()
}

/// A message from a phone, through Twilio: Twilio is answered the empty TwiML it
/// expects (palabre confirms by SMS through the outbox, durably).
async fn twilio_relays(state: &ApiState, form: &[(&str, &str)]) {
    let answer = twilio_posts(state, "/inbound/sms/s3cret", form).await;
    assert_eq!(
        answer,
        (
            "text/xml".to_owned(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>".to_owned()
        )
    );
}

/// The latest quorum verdict in the ledger.
async fn latest_quorum(runtime: &Runtime) -> String {
    let ledger = runtime
        .store()
        .ledger(Some("weekly-koro"), 10_000)
        .await
        .unwrap();
    ledger
        .iter()
        .rev()
        .find(|e| e.event == "quorum")
        .map(|e| e.detail.clone())
        .unwrap_or_default()
}

/// The gateway file of the fake Twilio, read as `palabre serve` reads it.
fn gateway_file(folder: &Path, twilio: &MockServer) -> SmsGatewayFile {
    // SAFETY of the test: these variable names are used by this test only, always
    // with the same values.
    unsafe {
        std::env::set_var("PALABRE_TEST_E2E_SID", "AC-e2e");
        std::env::set_var("PALABRE_TEST_E2E_TOKEN", TOKEN);
    }
    let yaml = format!(
        "gateway:
  provider: twilio
  base_url: {}
  account_sid_env: PALABRE_TEST_E2E_SID
  auth_token_env: PALABRE_TEST_E2E_TOKEN
  from: \"+15005550006\"
  status_callback: {PUBLIC_URL}/receipts/sms/s3cret
  public_url: {PUBLIC_URL}
receipt_timeout: 1h
",
        twilio.uri()
    );
    let file = folder.join("gateway.yaml");
    std::fs::write(&file, yaml).unwrap();
    palabre_lang::yaml::parse_file::<SmsGatewayFile>(&file)
        .unwrap()
        .value
}

/// The sid the fake Twilio gave the message to `to` whose text starts with `start`.
fn sid(accepted: &Accepted, to: &str, start: &str) -> String {
    accepted
        .lock()
        .unwrap()
        .iter()
        .find(|(number, body, _)| number == to && body.starts_with(start))
        .unwrap_or_else(|| panic!("no message to {to} starting with {start}"))
        .2
        .clone()
}

/// What the fake Twilio sent, from the `from`-th message on: number and text.
fn sent_since(accepted: &Accepted, from: usize) -> Vec<(String, String)> {
    accepted.lock().unwrap()[from..]
        .iter()
        .map(|(to, body, _)| (to.clone(), body.clone()))
        .collect()
}

fn mails_to(smtp: &SmtpServer, address: &str) -> Vec<String> {
    smtp.mails()
        .into_iter()
        .filter(|m| m.contains(&format!("To: {address}")) || m.contains(&format!("<{address}>")))
        .collect()
}

#[tokio::test]
async fn a_meeting_runs_over_sms_with_replies_quorum_fallbacks_and_an_opt_out() {
    for world in worlds("sms_flow", "once").await {
        world.add_csv(MORE_LEADERS).await;
        std::fs::copy(
            crate::util::repo().join("workflows/replies.yaml"),
            world.workflows.join("replies.yaml"),
        )
        .unwrap();
        let (twilio, accepted) = fake_twilio().await;
        let smtp = SmtpServer::start();
        let email = EmailConnector::smtp(&SmtpConfig {
            host: "127.0.0.1".into(),
            port: smtp.port,
            security: Security::Plain,
            username: None,
            password: None,
            from: "palabre@example.org".into(),
            timeout: std::time::Duration::from_secs(10),
            ca_certificate_pem: None,
        })
        .unwrap();
        let gateway = gateway_file(world.workflows.parent().unwrap(), &twilio);
        let connectors = Connectors::default()
            .with(Arc::new(email))
            .with(gateway.connector().unwrap());
        let clock = Arc::new(VirtualClock::new(at("2026-12-03T12:00:00Z")));
        let runtime = Arc::new(world.runtime(&clock, connectors, "a").await);
        let state = ApiState {
            commands: runtime.commands().clone(),
            inbound_secret: Some("s3cret".into()),
            webhooks: palabre_sms::gateways::webhooks(Some(&gateway.gateway)).unwrap(),
            voice: None,
        };
        let occurrence = at("2026-12-07T09:00:00Z");
        let reference = occurrence_reference("weekly-koro", occurrence);

        // Invitations, three days ahead. Six are invited: five leaders, one mayor.
        run_until(&runtime, &clock, at("2026-12-04T09:30:00Z")).await;
        let numbers: Vec<String> = accepted
            .lock()
            .unwrap()
            .iter()
            .map(|(to, _, _)| to.clone())
            .collect();
        assert_eq!(
            numbers,
            [
                "+22376112233",
                "+22366445566",
                "+22376000008",
                "+22376000009"
            ],
            "every leader with a valid number is invited by SMS"
        );
        // Binta's number is refused for good: she gets the invitation by email.
        let to_binta = mails_to(&smtp, "binta@example.org");
        assert_eq!(to_binta.len(), 1, "{:#?}", smtp.mails());
        assert!(to_binta[0].contains("Invitation"), "{}", to_binta[0]);
        assert_eq!(
            mails_to(&smtp, "oumar@example.org").len(),
            1,
            "the mayor by email"
        );

        // Twilio reports Fanta's invitation delivered; Issa's receipt never comes.
        let done = twilio_reports(
            &state,
            &[
                ("MessageSid", &sid(&accepted, "+22376000009", "Invitation")),
                ("MessageStatus", "delivered"),
                ("AccountSid", "AC-e2e"),
            ],
        )
        .await;
        assert_eq!(done, serde_json::json!({ "recorded": 1, "unknown": 0 }));
        // Passing statuses neither end the wait for a receipt (Issa's `sent`) nor
        // replace a final one (Fanta's `sent`, arriving after `delivered`).
        for to in ["+22376000008", "+22376000009"] {
            let done = twilio_reports(
                &state,
                &[
                    ("MessageSid", &sid(&accepted, to, "Invitation")),
                    ("MessageStatus", "sent"),
                ],
            )
            .await;
            assert_eq!(done, serde_json::json!({ "recorded": 1, "unknown": 0 }));
        }

        // Replies: yes, no, yes in Fulfulde, yes, then Issa changes his mind.
        let answers = [
            ("+22376112233", format!("Awo {reference}"), false),
            ("+22376000008", format!("NON {reference}"), false),
            ("+22366445566", format!("eey {reference}"), false),
            ("+22376000009", format!("oui {reference}"), false),
            ("+22376000008", format!("Oui {reference}"), true),
        ];
        for (n, (from, text, reached)) in answers.iter().enumerate() {
            let sid = format!("SMin{n}");
            let form = [
                ("MessageSid", sid.as_str()),
                ("From", from),
                ("To", "+15005550006"),
                ("Body", text),
            ];
            twilio_relays(&state, &form).await;
            let verdict = latest_quorum(&runtime).await;
            assert_eq!(
                verdict.starts_with("reached"),
                *reached,
                "{from} {text}: {verdict}"
            );
            if n == 3 {
                // Twilio posts Fanta's message again (it did not hear our answer):
                // recognised by its id, nothing is done twice.
                twilio_relays(&state, &form).await;
            }
        }
        let ledger = runtime.store().ledger(None, 10_000).await.unwrap();
        let replies_of = |contact: &str| {
            ledger
                .iter()
                .filter(|e| e.event == "reply" && e.contact_id.as_deref() == Some(contact))
                .count()
        };
        assert_eq!(replies_of("c-9"), 1, "Fanta's repeat was not acted on");
        assert_eq!(replies_of("c-8"), 2, "Issa's two answers");
        let responses = runtime
            .store()
            .responses("weekly-koro", occurrence)
            .await
            .unwrap();
        assert_eq!(
            responses.values().filter(|r| *r == "yes").count(),
            4,
            "{responses:?}"
        );

        // An hour after sending, Issa's invitation has no receipt: it goes by
        // email; Fanta's was delivered and does not.
        run_until(&runtime, &clock, at("2026-12-04T11:00:00Z")).await;
        assert_eq!(
            mails_to(&smtp, "issa@example.org").len(),
            1,
            "{:#?}",
            smtp.mails()
        );
        assert!(mails_to(&smtp, "fanta@example.org").is_empty());
        // Each answer was confirmed to its sender, in their language (Hama's
        // Fulfulde has no text: French).
        let presence = format!("Merci, votre présence est notée (réf {reference}).");
        assert_eq!(
            sent_since(&accepted, 4),
            [
                (
                    "+22376112233",
                    format!("I ni ce (ref {reference}). An y'a soro.")
                ),
                (
                    "+22376000008",
                    format!("Merci, votre absence est notée (réf {reference}).")
                ),
                ("+22366445566", presence.clone()),
                ("+22376000009", presence.clone()),
                ("+22376000008", presence),
            ]
            .map(|(to, text)| (to.to_owned(), text)),
            "one per reply, in the order of the replies"
        );

        // Hama answers ARRÊTER, which Twilio's own opt-out handling recognises.
        twilio_relays(
            &state,
            &[
                ("MessageSid", "SMstop"),
                ("From", "+22366445566"),
                ("Body", "Arrêter"),
                ("OptOutType", "STOP"),
            ],
        )
        .await;
        assert!(runtime.store().sms_stopped().await.unwrap().contains("c-2"));

        // The reminder, two hours ahead: by SMS to all but Hama.
        run_until(&runtime, &clock, at("2026-12-07T07:10:00Z")).await;
        let reminded: Vec<String> = sent_since(&accepted, 9)
            .into_iter()
            .map(|(to, _)| to)
            .collect();
        assert_eq!(
            reminded,
            ["+22376112233", "+22376000008", "+22376000009"],
            "no SMS to the contact who opted out"
        );
        // Twilio reports Fanta's reminder undelivered: it goes by email at once.
        twilio_reports(
            &state,
            &[
                ("MessageSid", &sid(&accepted, "+22376000009", "Rappel")),
                ("MessageStatus", "undelivered"),
                ("ErrorCode", "30003"),
            ],
        )
        .await;
        run_until(&runtime, &clock, at("2026-12-07T07:11:00Z")).await;
        let to_fanta = mails_to(&smtp, "fanta@example.org");
        assert_eq!(to_fanta.len(), 1, "{:#?}", smtp.mails());
        assert!(to_fanta[0].contains("Rappel"), "{}", to_fanta[0]);

        // The ledger tells the story, numbers masked.
        let ledger = runtime.store().ledger(None, 10_000).await.unwrap();
        let has = |event: &str, contact: &str, detail: &str| {
            ledger.iter().any(|e| {
                e.event == event
                    && e.contact_id.as_deref() == Some(contact)
                    && e.detail.contains(detail)
            })
        };
        assert!(
            has("dead-letter", "c-7", "sent again by email instead"),
            "{ledger:#?}"
        );
        assert!(has(
            "undelivered",
            "c-8",
            "no delivery receipt in time; sent again by email instead"
        ));
        assert!(has("delivered", "c-9", "the provider reports: delivered"));
        assert!(has(
            "undelivered",
            "c-9",
            "the provider reports: undelivered (error 30003); sent again by email instead"
        ));
        assert!(has("sms-stopped", "c-2", "asked to receive no more SMS"));
        assert!(has("dead-letter", "c-2", "opted out"));
        assert!(
            ledger
                .iter()
                .any(|e| e.event == "quorum" && e.detail.starts_with("reached: 4 of 6")),
            "{ledger:#?}"
        );
        assert!(
            ledger.iter().all(|e| !e.detail.contains("76000008")),
            "no number in the ledger"
        );

        // Each channel's lifecycle, as `palabre status` and /metrics show it.
        let counts = runtime
            .store()
            .status(runtime.commands().now())
            .await
            .unwrap();
        let sms = counts.channels.iter().find(|c| c.channel == "sms").unwrap();
        assert_eq!(
            (sms.sent, sms.delivered, sms.undelivered, sms.dead_lettered),
            (12, 1, 1, 3)
        );
        let mail = counts
            .channels
            .iter()
            .find(|c| c.channel == "email")
            .unwrap();
        assert_eq!((mail.sent, mail.dead_lettered), (6, 0));
    }
}
