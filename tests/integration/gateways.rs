//! Each SMS gateway against a fake server (wiremock) that checks the exact
//! request its provider documents and answers with the provider's documented
//! answers: accepted, refused for good, transient, rate limited; and what each
//! provider posts back (delivery receipts, inbound messages) in its own format.

use std::time::Duration;

use palabre_core::channel::Channel;
use palabre_core::connector::{Connector, DeliveryError, OutgoingMessage};
use palabre_core::webhooks::{InboundSms, Receipt, WebhookError, WebhookRequest};
use palabre_sms::gateways::{
    AfricasTalking, GatewayConfig, Infobip, Orange, Twilio, valid_signature, webhooks,
};
use serde_json::json;
use wiremock::matchers::{body_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sms() -> OutgoingMessage {
    OutgoingMessage {
        key: "dialogue-koro|1765098000|invitation|c-0001|sms".into(),
        channel: Channel::Sms,
        to_address: "+22376000001".into(), // an invented test number
        to_name: "Awa".into(),
        language: "fra".into(),
        subject: None,
        body: "Invitation: Cadre de concertation le 2026-12-07".into(),
        calendar: None,
    }
}

#[tokio::test]
async fn orange_takes_a_token_once_sends_and_renews_a_refused_token() {
    let server = MockServer::start().await;
    // "Basic base64(id:secret)" and a form body, as Orange documents; expires_in is a string.
    Mock::given(method("POST"))
        .and(path("/oauth/v3/token"))
        .and(header("authorization", "Basic aWQ6c2VjcmV0"))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "access_token": "tok-1", "expires_in": "7776000"
        })))
        .expect(2)
        .mount(&server)
        .await;
    let sent = Mock::given(method("POST"))
        .and(path("/smsmessaging/v1/outbound/tel%3A%2B22370000000/requests"))
        .and(header("authorization", "Bearer tok-1"))
        .and(body_json(json!({ "outboundSMSMessageRequest": {
            "address": "tel:+22376000001",
            "senderAddress": "tel:+22370000000",
            "senderName": "PALABRE",
            "outboundSMSTextMessage": { "message": "Invitation: Cadre de concertation le 2026-12-07" }
        }})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "outboundSMSMessageRequest": {
            "resourceURL": "https://api.orange.com/smsmessaging/v1/outbound/tel%3A%2B22370000000/requests/req-42"
        }})));
    let orange = Orange::new(
        &server.uri(),
        "+223 70 00 00 00",
        Some("PALABRE".into()),
        None,
        "id",
        "secret",
    )
    .unwrap();
    {
        let _guard = sent.mount_as_scoped(&server).await;
        assert_eq!(orange.deliver(&sms()).await, Ok("req-42".into()));
        assert_eq!(
            orange.deliver(&sms()).await,
            Ok("req-42".into()),
            "the cached token serves again"
        );
    }
    // A token refused mid-way is renewed once; the provider's refusals are classified.
    Mock::given(method("POST"))
        .and(path(
            "/smsmessaging/v1/outbound/tel%3A%2B22370000000/requests",
        ))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({ "code": 42, "message": "Expired credentials" })),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/smsmessaging/v1/outbound/tel%3A%2B22370000000/requests"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "requestError": { "serviceException": { "messageId": "SVC0004", "text": "No valid addresses" } }
        })))
        .mount(&server)
        .await;
    let error = orange.deliver(&sms()).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Permanent(e) if e.contains("SVC0004")),
        "{error:?}"
    );
    server.verify().await;
}

/// With a `notify_url`, Orange is asked for a delivery receipt carrying the
/// message's key hash, which becomes the id its receipt is matched by.
#[tokio::test]
async fn orange_asks_for_a_receipt_with_our_callback_data() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v3/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({ "token_type": "Bearer", "access_token": "tok", "expires_in": "7776000" }),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/smsmessaging/v1/outbound/tel%3A%2B22370000000/requests"))
        .and(body_json(json!({ "outboundSMSMessageRequest": {
            "address": "tel:+22376000001",
            "senderAddress": "tel:+22370000000",
            "outboundSMSTextMessage": { "message": "Invitation: Cadre de concertation le 2026-12-07" },
            "receiptRequest": { "notifyURL": "https://palabre.example/receipts/sms/s", "callbackData": sms().key_hash() }
        }})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "outboundSMSMessageRequest": {
            "resourceURL": "https://api.orange.com/smsmessaging/v1/outbound/tel%3A%2B22370000000/requests/req-43"
        }})))
        .expect(1)
        .mount(&server)
        .await;
    let orange = Orange::new(
        &server.uri(),
        "22370000000",
        None,
        Some("https://palabre.example/receipts/sms/s".into()),
        "id",
        "secret",
    )
    .unwrap();
    assert_eq!(orange.deliver(&sms()).await, Ok(sms().key_hash()));
}

#[tokio::test]
async fn gateways_classify_transient_rate_limited_and_permanent_failures() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/version1/messaging"))
        .respond_with(ResponseTemplate::new(503).set_body_string("maintenance"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/version1/messaging"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let at = AfricasTalking::new(&server.uri(), "sandbox", "key", None).unwrap();
    assert!(matches!(
        at.deliver(&sms()).await,
        Err(DeliveryError::Transient(_))
    ));
    assert_eq!(
        at.deliver(&sms()).await,
        Err(DeliveryError::RateLimited {
            retry_after: Some(Duration::from_secs(120)),
            reason: "africastalking answered 429 Too Many Requests: ".into()
        })
    );
    // Nobody listening: transient, and the error does not carry the URL.
    let closed = AfricasTalking::new("http://127.0.0.1:9", "sandbox", "key", None).unwrap();
    let error = closed.deliver(&sms()).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Transient(e) if !e.contains("127.0.0.1")),
        "{error:?}"
    );
}

/// Every gateway, built from its configuration as `palabre serve` builds it,
/// meets the same failing provider: 503 is transient, 429 waits for its
/// `Retry-After`, 400 is permanent.
#[tokio::test]
async fn every_gateway_classifies_the_same_failures_alike() {
    // SAFETY of the test: the variable name is unique to this test.
    unsafe { std::env::set_var("PALABRE_TEST_CLASS_SECRET", "s") };
    let secret = "PALABRE_TEST_CLASS_SECRET";
    for provider in ["orange", "twilio", "infobip", "africas_talking", "generic"] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/v3/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({ "token_type": "Bearer", "access_token": "tok", "expires_in": "3600" }),
            ))
            .mount(&server)
            .await;
        for answer in [
            ResponseTemplate::new(503).set_body_string("maintenance"),
            ResponseTemplate::new(429).insert_header("Retry-After", "120"),
            ResponseTemplate::new(400).set_body_json(json!({ "message": "invalid destination" })),
        ] {
            Mock::given(method("POST"))
                .respond_with(answer)
                .up_to_n_times(1)
                .mount(&server)
                .await;
        }
        let uri = server.uri();
        let config = config(match provider {
            "orange" => json!({ "provider": provider, "base_url": uri, "sender": "22370000000",
                "client_id_env": secret, "client_secret_env": secret }),
            "twilio" => json!({ "provider": provider, "base_url": uri, "account_sid_env": secret,
                "auth_token_env": secret, "from": "+15005550006" }),
            "infobip" => json!({ "provider": provider, "base_url": uri, "api_key_env": secret,
                "sender": "PALABRE" }),
            "africas_talking" => json!({ "provider": provider, "base_url": uri,
                "username": "sandbox", "api_key_env": secret }),
            _ => json!({ "provider": provider, "url": format!("{uri}/send?to={{{{ to_digits }}}}"),
                "method": "POST" }),
        });
        let gateway = palabre_sms::gateways::gateway(&config).unwrap();
        let first = gateway.deliver(&sms()).await;
        assert!(
            matches!(first, Err(DeliveryError::Transient(_))),
            "{provider}: {first:?}"
        );
        let second = gateway.deliver(&sms()).await;
        assert!(
            matches!(second, Err(DeliveryError::RateLimited { retry_after: Some(after), .. })
                if after == Duration::from_secs(120)),
            "{provider}: {second:?}"
        );
        let third = gateway.deliver(&sms()).await;
        assert!(
            matches!(&third, Err(DeliveryError::Permanent(e)) if e.contains("invalid destination")),
            "{provider}: {third:?}"
        );
    }
}

#[tokio::test]
async fn africas_talking_reads_each_recipients_status_code() {
    let server = MockServer::start().await;
    let answer = |code: i64, status: &str| {
        ResponseTemplate::new(201).set_body_json(json!({ "SMSMessageData": {
            "Message": "Sent to 1/1 Total Cost: XOF 20",
            "Recipients": [{ "statusCode": code, "number": "+22376000001", "status": status,
                             "cost": "XOF 20", "messageId": "ATXid_1" }]
        }}))
    };
    for (code, status) in [
        (101, "Success"),
        (406, "UserInBlacklist"),
        (500, "InternalServerError"),
    ] {
        let _guard = Mock::given(method("POST"))
            .and(path("/version1/messaging"))
            .and(header("apiKey", "key"))
            .and(header("accept", "application/json"))
            .and(body_string_contains("username=sandbox"))
            .and(body_string_contains("to=%2B22376000001"))
            .respond_with(answer(code, status))
            .mount_as_scoped(&server)
            .await;
        let at = AfricasTalking::new(&server.uri(), "sandbox", "key", None).unwrap();
        let result = at.deliver(&sms()).await;
        match code {
            101 => assert_eq!(result, Ok("ATXid_1".into())),
            406 => assert!(
                matches!(&result, Err(DeliveryError::OptedOut(e)) if e.contains("UserInBlacklist (406)")),
                "{result:?}"
            ),
            _ => assert!(
                matches!(result, Err(DeliveryError::Transient(_))),
                "{result:?}"
            ),
        }
    }
}

#[tokio::test]
async fn twilio_posts_a_form_with_basic_auth_and_knows_a_stopped_recipient() {
    let server = MockServer::start().await;
    let _guard = Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC123/Messages.json"))
        .and(header("authorization", "Basic QUMxMjM6dG9rZW4="))
        .and(body_string_contains("To=%2B22376000001"))
        .and(body_string_contains("From=%2B15005550006"))
        .and(body_string_contains(
            "StatusCallback=https%3A%2F%2Fpalabre.example%2Freceipts%2Ftwilio",
        ))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({ "sid": "SM1", "status": "queued" })),
        )
        .mount_as_scoped(&server)
        .await;
    let twilio = Twilio::new(
        &server.uri(),
        "AC123",
        "token",
        "+15005550006",
        Some("https://palabre.example/receipts/twilio".into()),
    )
    .unwrap();
    assert_eq!(twilio.deliver(&sms()).await, Ok("SM1".into()));
    drop(_guard);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400
        })))
        .mount(&server)
        .await;
    let error = twilio.deliver(&sms()).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::OptedOut(e) if e.contains("opted out (21610)")),
        "{error:?}"
    );
    // Status callbacks are signed with the auth token over the URL and sorted parameters.
    let url = "https://palabre.example/receipts/twilio";
    let params = vec![
        ("MessageSid".to_owned(), "SM1".to_owned()),
        ("MessageStatus".to_owned(), "delivered".to_owned()),
    ];
    let signature = twilio_signature("token", url, &params);
    assert!(valid_signature("token", url, &params, &signature));
    assert!(
        !valid_signature("token", url, &params[..1], &signature),
        "a changed parameter list fails"
    );
    assert!(!valid_signature("other-token", url, &params, &signature));
    assert!(!valid_signature("token", url, &params, "bm9wZQ=="));
}

#[tokio::test]
async fn infobip_sends_json_with_its_app_key_and_reads_rejections() {
    let server = MockServer::start().await;
    let sent = Mock::given(method("POST"))
        .and(path("/sms/3/messages"))
        .and(header("authorization", "App key"))
        .and(body_json(json!({ "messages": [{
            "sender": "PALABRE",
            "destinations": [{ "to": "22376000001", "messageId": sms().key_hash() }],
            "content": { "text": "Invitation: Cadre de concertation le 2026-12-07" }
        }]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "bulkId": "b-1",
            "messages": [{ "messageId": "m-1", "status": { "groupName": "PENDING", "name": "PENDING_ACCEPTED" } }]
        })))
        .mount_as_scoped(&server)
        .await;
    let infobip = Infobip::new(&server.uri(), "key", "PALABRE", None).unwrap();
    assert_eq!(infobip.deliver(&sms()).await, Ok("m-1".into()));
    drop(sent);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messages": [{ "messageId": "m-2", "status": { "groupName": "REJECTED", "description": "Destination not registered" } }]
        })))
        .mount(&server)
        .await;
    let error = infobip.deliver(&sms()).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Permanent(e) if e.contains("Destination not registered")),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_generic_gateway_speaks_kannel() {
    let server = MockServer::start().await;
    // Kannel's sendsms: a GET with the text in the query, "0: Accepted for delivery" on success.
    let _guard = Mock::given(method("GET"))
        .and(path("/cgi-bin/sendsms"))
        .and(wiremock::matchers::query_param("to", "22376000001"))
        .and(wiremock::matchers::query_param(
            "text",
            "Invitation: Cadre de concertation le 2026-12-07",
        ))
        .and(wiremock::matchers::query_param("password", "kannel-secret"))
        .respond_with(ResponseTemplate::new(202).set_body_string("0: Accepted for delivery"))
        .mount_as_scoped(&server)
        .await;
    // SAFETY of the test: the variable name is unique to this test.
    unsafe { std::env::set_var("PALABRE_TEST_KANNEL_PASSWORD", "kannel-secret") };
    let config: palabre_sms::gateways::GatewayConfig = serde_json::from_value(json!({
        "provider": "generic",
        "url": format!("{}/cgi-bin/sendsms?username=palabre&password={{{{ env.PALABRE_TEST_KANNEL_PASSWORD | urlencode }}}}&to={{{{ to_digits }}}}&text={{{{ text | urlencode }}}}", server.uri()),
        "method": "GET",
        "env": ["PALABRE_TEST_KANNEL_PASSWORD"],
        "success_contains": "Accepted"
    }))
    .unwrap();
    let kannel = palabre_sms::gateways::gateway(&config).unwrap();
    assert_eq!(kannel.name(), "generic-http");
    assert_eq!(
        kannel.deliver(&sms()).await,
        Ok("0: Accepted for delivery".into())
    );
    drop(_guard);
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_string("3: Queued for later delivery? no: Not routable"),
        )
        .mount(&server)
        .await;
    let error = kannel.deliver(&sms()).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Permanent(e) if e.contains("without accepting")),
        "{error:?}"
    );
    let missing: palabre_sms::gateways::GatewayConfig = serde_json::from_value(json!({
        "provider": "generic", "url": "http://x/{{ env.NOPE }}", "env": ["PALABRE_TEST_UNSET_VARIABLE"]
    }))
    .unwrap();
    let error = palabre_sms::gateways::gateway(&missing)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("PALABRE_TEST_UNSET_VARIABLE"), "{error}");
}

/// What Twilio puts in `X-Twilio-Signature`, computed as its documentation says
/// (independently of the code under test).
pub(crate) fn twilio_signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    use base64::Engine as _;
    let mut sorted = params.to_vec();
    sorted.sort();
    let data: String = sorted.iter().map(|(n, v)| format!("{n}{v}")).collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    base64::engine::general_purpose::STANDARD
        .encode(ring::hmac::sign(&key, format!("{url}{data}").as_bytes()).as_ref())
}

/// A webhook request as the API hands it to the plugin.
fn request<'a>(
    path: &'a str,
    headers: &'a [(String, String)],
    body: &'a str,
) -> WebhookRequest<'a> {
    WebhookRequest {
        path_and_query: path,
        headers,
        body: body.as_bytes(),
    }
}

fn form_headers(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut headers = vec![(
        "content-type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    )];
    headers.extend(
        extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    headers
}

fn json_headers() -> Vec<(String, String)> {
    vec![("content-type".to_owned(), "application/json".to_owned())]
}

fn config(value: serde_json::Value) -> GatewayConfig {
    serde_json::from_value(value).unwrap()
}

fn receipt(id: &str, status: &str, reason: Option<&str>, opted_out: bool) -> Receipt {
    Receipt {
        provider_id: id.into(),
        status: status.into(),
        reason: reason.map(str::to_owned),
        opted_out,
    }
}

/// Each provider's delivery receipts and inbound messages, as its documentation
/// shows them, read into the same facts; what is not theirs is refused.
#[test]
fn webhooks_are_read_in_each_providers_format() {
    // Orange: GSMA OneAPI notifications.
    let orange = webhooks(Some(&config(json!({
        "provider": "orange", "sender": "22370000000",
        "client_id_env": "PALABRE_TEST_UNUSED", "client_secret_env": "PALABRE_TEST_UNUSED"
    }))))
    .unwrap();
    let json = json_headers();
    let dr = json!({ "deliveryInfoNotification": {
        "callbackData": "00ab12cd34ef5678",
        "deliveryInfo": { "address": "tel:+22376000001", "deliveryStatus": "DeliveredToTerminal" }
    }})
    .to_string();
    assert_eq!(
        orange.receipts(&request("/receipts/sms/s", &json, &dr)),
        Ok(vec![receipt(
            "00ab12cd34ef5678",
            "DeliveredToTerminal",
            None,
            false
        )])
    );
    let mo = json!({ "inboundSMSMessageNotification": { "inboundSMSMessage": {
        "dateTime": "2026-12-04T10:00:00Z", "destinationAddress": "tel:+22370000000",
        "messageId": "mo-1", "message": "OUI 4821", "senderAddress": "tel:+22376000001"
    }}})
    .to_string();
    assert_eq!(
        orange.inbound(&request("/inbound/sms/s", &json, &mo)),
        Ok(vec![
            InboundSms::new("+22376000001", "OUI 4821").with_id(Some("mo-1".into()))
        ])
    );
    assert!(matches!(
        orange.receipts(&request("/receipts/sms/s", &json, "{\"results\": []}")),
        Err(WebhookError::Malformed(e)) if e.contains("deliveryInfoNotification")
    ));

    // Infobip: `results` lists, numbers without `+`.
    let infobip = webhooks(Some(&config(json!({
        "provider": "infobip", "base_url": "https://x.api.infobip.com",
        "api_key_env": "PALABRE_TEST_UNUSED", "sender": "PALABRE"
    }))))
    .unwrap();
    let dr = json!({ "results": [
        { "messageId": "ib-1", "to": "22376000001", "status": { "groupId": 3, "groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET" },
          "error": { "groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "permanent": false } },
        { "messageId": "ib-2", "to": "22376000002", "status": { "groupId": 2, "groupName": "UNDELIVERABLE", "name": "UNDELIVERABLE_NOT_DELIVERED" },
          "error": { "groupId": 1, "groupName": "HANDSET_ERRORS", "id": 27, "name": "EC_ABSENT_SUBSCRIBER", "permanent": false } }
    ]})
    .to_string();
    assert_eq!(
        infobip.receipts(&request("/receipts/sms/s", &json, &dr)),
        Ok(vec![
            receipt("ib-1", "DELIVERED", None, false),
            receipt("ib-2", "UNDELIVERABLE", Some("EC_ABSENT_SUBSCRIBER"), false)
        ])
    );
    let mo = json!({ "results": [
        { "messageId": "mo-2", "from": "22376000001", "to": "22370000000", "text": "NON 4821", "cleanText": "4821", "keyword": "NON" }
    ], "messageCount": 1, "pendingMessageCount": 0 })
    .to_string();
    assert_eq!(
        infobip.inbound(&request("/inbound/sms/s", &json, &mo)),
        Ok(vec![
            InboundSms::new("+22376000001", "NON 4821").with_id(Some("mo-2".into()))
        ])
    );

    // Africa's Talking: forms; a blacklisted recipient has opted out.
    let at = webhooks(Some(&config(json!({
        "provider": "africas_talking", "username": "sandbox", "api_key_env": "PALABRE_TEST_UNUSED"
    }))))
    .unwrap();
    let form = form_headers(&[]);
    assert_eq!(
        at.receipts(&request(
            "/receipts/sms/s",
            &form,
            "id=ATXid_1&status=Failed&phoneNumber=%2B22376000001&networkCode=61001&failureReason=UserInBlacklist&retryCount=0"
        )),
        Ok(vec![receipt("ATXid_1", "Failed", Some("UserInBlacklist"), true)])
    );
    assert_eq!(
        at.receipts(&request(
            "/receipts/sms/s",
            &form,
            "id=ATXid_2&status=Success"
        )),
        Ok(vec![receipt("ATXid_2", "Success", None, false)])
    );
    assert_eq!(
        at.inbound(&request(
            "/inbound/sms/s",
            &form,
            "from=%2B22376000001&to=12345&text=AW+4821&date=2026-12-04+10%3A00%3A00&id=mo-3&linkId=l-1"
        )),
        Ok(vec![
            InboundSms::new("+22376000001", "AW 4821").with_id(Some("mo-3".into()))
        ])
    );

    // No gateway: palabre's plain format.
    let plain = webhooks(None).unwrap();
    assert_eq!(
        plain.inbound(&request(
            "/inbound/sms/s",
            &json,
            "{\"from\": \"+22376000001\", \"text\": \"STOP\"}"
        )),
        Ok(vec![InboundSms::new("+22376000001", "STOP")])
    );
    assert!(matches!(
        plain.inbound(&request("/inbound/sms/s", &json, "{\"from\": \"+22376000001\"}")),
        Err(WebhookError::Malformed(e)) if e.contains("text")
    ));
}

/// Twilio signs its webhooks over the public URL: unsigned, wrongly signed or
/// unverifiable requests are refused; signed ones are read, opt-outs included.
#[test]
fn twilio_webhooks_are_read_only_when_signed() {
    // SAFETY of the test: the variable name is unique to this test.
    unsafe { std::env::set_var("PALABRE_TEST_TWILIO_TOKEN", "token") };
    let twilio_config = |public_url: Option<&str>| {
        config(json!({
            "provider": "twilio", "account_sid_env": "PALABRE_TEST_TWILIO_TOKEN",
            "auth_token_env": "PALABRE_TEST_TWILIO_TOKEN", "from": "+15005550006",
            "public_url": public_url
        }))
    };
    let twilio = webhooks(Some(&twilio_config(Some("https://palabre.example/")))).unwrap();
    let path = "/receipts/sms/s3cret";
    let body = "SmsSid=SM1&SmsStatus=undelivered&MessageStatus=undelivered&To=%2B22376000001&MessageSid=SM1&AccountSid=AC123&From=%2B15005550006&ApiVersion=2010-04-01&ErrorCode=21610";
    let params: Vec<(String, String)> = serde_urlencoded::from_str(body).unwrap();
    let sign = |url: &str, params: &[(String, String)]| twilio_signature("token", url, params);
    let signature = sign("https://palabre.example/receipts/sms/s3cret", &params);
    let signed = form_headers(&[("x-twilio-signature", &signature)]);
    assert_eq!(
        twilio.receipts(&request(path, &signed, body)),
        Ok(vec![receipt(
            "SM1",
            "undelivered",
            Some("error 21610"),
            true
        )])
    );
    assert!(matches!(
        twilio.receipts(&request(path, &form_headers(&[]), body)),
        Err(WebhookError::Unauthenticated(_))
    ));
    assert!(
        matches!(
            twilio.receipts(&request("/receipts/sms/other", &signed, body)),
            Err(WebhookError::Unauthenticated(_))
        ),
        "the signature covers the URL"
    );
    let tampered = body.replace("undelivered", "delivered");
    assert!(matches!(
        twilio.receipts(&request(path, &signed, &tampered)),
        Err(WebhookError::Unauthenticated(_))
    ));
    let unverifiable = webhooks(Some(&twilio_config(None))).unwrap();
    assert!(matches!(
        unverifiable.receipts(&request(path, &signed, body)),
        Err(WebhookError::NotConfigured(e)) if e.contains("public_url")
    ));

    // An inbound STOP that Twilio's own opt-out handling recognised.
    let inbound =
        "MessageSid=SM9&From=%2B22376000001&To=%2B15005550006&Body=Arr%C3%AAter&OptOutType=STOP";
    let params: Vec<(String, String)> = serde_urlencoded::from_str(inbound).unwrap();
    let signature = sign("https://palabre.example/inbound/sms/s3cret", &params);
    assert_eq!(
        twilio.inbound(&request(
            "/inbound/sms/s3cret",
            &form_headers(&[("x-twilio-signature", &signature)]),
            inbound
        )),
        Ok(vec![InboundSms {
            from: "+22376000001".into(),
            text: "Arrêter".into(),
            id: Some("SM9".into()),
            opt_out: Some(true),
        }])
    );
}
