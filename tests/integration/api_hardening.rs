//! The API's hardening (issue 13) on SQLite and PostgreSQL, through the router
//! in-process: control characters refused in bodies, paths, queries and
//! webhooks with a JSON error naming the field and nothing written; every
//! refusal the API makes (413, 404, 405, bad queries, bad paths) as JSON; an
//! `Idempotency-Key` replaying the first answer, refusing another request, and
//! belonging to its token.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use palabre_api::auth::Role;
use serde_json::{Value, json};

use crate::api::Api;
use crate::runtime::{World, worlds};

/// One request: method, path, token, headers, body and its content type.
struct Call<'a> {
    method: &'a str,
    path: &'a str,
    token: Option<&'a str>,
    headers: Vec<(&'a str, &'a str)>,
    body: Option<Vec<u8>>,
    content_type: &'a str,
}

impl<'a> Call<'a> {
    fn new(method: &'a str, path: &'a str, token: Option<&'a str>) -> Call<'a> {
        Call {
            method,
            path,
            token,
            headers: Vec::new(),
            body: None,
            content_type: "application/json",
        }
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Call<'a> {
        self.body = Some(body.into());
        self
    }

    fn header(mut self, name: &'a str, value: &'a str) -> Call<'a> {
        self.headers.push((name, value));
        self
    }

    fn form(mut self) -> Call<'a> {
        self.content_type = "application/x-www-form-urlencoded";
        self
    }
}

/// An answer: its status, whether it said it was JSON, and its body (JSON when
/// it parses, else the text as a JSON string).
struct Answer {
    status: StatusCode,
    json: bool,
    body: Value,
}

impl Answer {
    /// Asserts a JSON `ApiError` with `status` (and `field`, when given).
    fn refused(&self, status: StatusCode, field: Option<&str>, what: &str) {
        assert_eq!(self.status, status, "{what}: {}", self.body);
        assert!(self.json, "{what}: not JSON: {}", self.body);
        assert!(self.body["error"].is_string(), "{what}: {}", self.body);
        if let Some(field) = field {
            assert_eq!(self.body["field"], field, "{what}: {}", self.body);
        }
    }
}

impl Api {
    /// Sends one request to a router made afresh (nothing kept between calls
    /// but the database, as between workers).
    async fn send(&self, call: Call<'_>) -> Answer {
        let mut request = Request::builder().method(call.method).uri(call.path);
        if let Some(token) = call.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in call.headers {
            request = request.header(name, value);
        }
        let request = request
            .header("content-type", call.content_type)
            .body(call.body.map_or_else(Body::empty, Body::from))
            .unwrap();
        let answered = crate::util::api_request(self.runtime.commands(), request).await;
        Answer {
            status: answered.status,
            json: answered.json,
            body: answered.body,
        }
    }

    async fn ledger_len(&self) -> usize {
        self.runtime
            .store()
            .ledger(None, 10_000)
            .await
            .unwrap()
            .len()
    }
}

fn case_body(description: &str, parties: &[&str]) -> String {
    json!({
        "workflow": "litiges-test",
        "category": "foncier",
        "place": "mopti/koro/koro",
        "parties": parties,
        "severity": 2,
        "description": description,
    })
    .to_string()
}

/// The worlds of a test: SQLite, and PostgreSQL when its URL is given (checked,
/// so that a PostgreSQL run cannot be skipped unseen).
async fn both(name: &str) -> Vec<World> {
    let worlds = worlds(name, "once").await;
    let expected = if std::env::var_os("PALABRE_TEST_POSTGRES_URL").is_some() {
        2
    } else {
        1
    };
    assert_eq!(worlds.len(), expected, "SQLite, and PostgreSQL when given");
    worlds
}

#[tokio::test]
async fn control_characters_are_refused_with_the_field_before_any_sql() {
    for world in both("api_hardening_controls").await {
        let api = Api::new(&world).await;
        let coordinator = api.token(Role::Coordinator, "mopti").await;
        let observer = api.token(Role::Observer, "national").await;
        let ledger_before = api.ledger_len().await;

        let bodies = [
            (case_body("deux\u{0}familles", &["c-1"]), "description"),
            (case_body("un champ", &["c-1", "c-\u{202e}2"]), "parties[1]"),
            (case_body("un\u{1b}[31m champ", &["c-1"]), "description"),
            (case_body("un champ\u{7f}", &["c-1"]), "description"),
            (case_body("un champ\u{85}", &["c-1"]), "description"),
            (case_body("\u{2066}isolé", &["c-1"]), "description"),
            (
                json!({ "workflow": "litiges-test", "category": "fon\u{0}cier", "place": "mopti/koro/koro", "description": "x" }).to_string(),
                "category",
            ),
        ];
        for (body, field) in bodies {
            let answer = api
                .send(Call::new("POST", "/cases", Some(&coordinator)).body(body.clone()))
                .await;
            answer.refused(StatusCode::BAD_REQUEST, Some(field), &body);
        }
        assert_eq!(api.case_count().await, 0, "no case was opened");
        assert_eq!(api.ledger_len().await, ledger_before, "nothing was written");

        // Newline and tab are text.
        let answer = api
            .send(
                Call::new("POST", "/cases", Some(&coordinator))
                    .body(case_body("deux familles\n\tun champ", &["c-1"])),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        assert_eq!(answer.body["description"], "deux familles\n\tun champ");
        let id = answer.body["id"].as_str().unwrap().to_owned();

        // A note on the case, refused the same way.
        let answer = api
            .send(
                Call::new("POST", &format!("/cases/{id}/note"), Some(&coordinator))
                    .body(r#"{"note":"vu\u0000"}"#),
            )
            .await;
        answer.refused(StatusCode::BAD_REQUEST, Some("note"), "a note with NUL");

        // Paths and queries.
        for (path, field) in [
            ("/cases/LT%000001", "id"),
            ("/cases/LT-0001%E2%80%AE", "id"),
            ("/cases/LT%00/history", "id"),
            ("/cases/%FF%FE", "id"),
            ("/cases?place=mopti%00", "place"),
            ("/cases?workflow=%E2%80%AElitiges", "workflow"),
            ("/ledger?workflow=x%00y", "workflow"),
            ("/workflows/weekly%00/instances", "id"),
        ] {
            let answer = api.send(Call::new("GET", path, Some(&observer))).await;
            answer.refused(StatusCode::BAD_REQUEST, Some(field), path);
        }
        let answer = api
            .send(
                Call::new("POST", &format!("/cases/{id}/note%00"), Some(&coordinator))
                    .body(r#"{"note":"vu"}"#),
            )
            .await;
        answer.refused(
            StatusCode::BAD_REQUEST,
            Some("action"),
            "an action with NUL",
        );

        // The inbound SMS webhook: a NUL in the form, and a raw one.
        let ledger_before = api.ledger_len().await;
        for (body, field) in [
            (b"from=%2B22376112233&text=NON%00".to_vec(), "text"),
            (b"from=%2B22376112233&text=NON\0".to_vec(), "body"),
            (b"from=%2B223761%0012233&text=NON".to_vec(), "from"),
        ] {
            let answer = api
                .send(
                    Call::new("POST", "/inbound/sms/s3cret", None)
                        .form()
                        .body(body),
                )
                .await;
            answer.refused(StatusCode::BAD_REQUEST, Some(field), "inbound SMS");
        }
        let answer = api
            .send(
                Call::new("POST", "/receipts/sms/s3cret", None)
                    .body(r#"{"id":"abc\u0000","status":"delivered"}"#),
            )
            .await;
        answer.refused(StatusCode::BAD_REQUEST, Some("id"), "a receipt with NUL");
        let answer = api
            .send(Call::new("POST", "/inbound/sms/s3cret%00", None).form())
            .await;
        answer.refused(StatusCode::BAD_REQUEST, Some("secret"), "a secret with NUL");
        assert_eq!(api.ledger_len().await, ledger_before, "no reply recorded");
        assert_eq!(api.case_count().await, 1);
        let case = api.runtime.store().case(&id).await.unwrap().unwrap();
        assert_eq!(case.state.as_str(), "open");
    }
}

#[tokio::test]
async fn every_refusal_of_the_api_is_json() {
    for world in both("api_hardening_json").await {
        let api = Api::new(&world).await;
        let coordinator = api.token(Role::Coordinator, "mopti").await;
        let observer = api.token(Role::Observer, "national").await;

        let huge = case_body(&"x".repeat(100_000), &["c-1"]);
        let answer = api
            .send(Call::new("POST", "/cases", Some(&coordinator)).body(huge.clone()))
            .await;
        answer.refused(StatusCode::PAYLOAD_TOO_LARGE, None, "a huge case");
        let answer = api
            .send(
                Call::new("POST", "/inbound/sms/s3cret", None)
                    .form()
                    .body(format!("from=%2B22376112233&text={}", "x".repeat(100_000))),
            )
            .await;
        answer.refused(StatusCode::PAYLOAD_TOO_LARGE, None, "a huge SMS");
        let answer = api
            .send(
                Call::new("POST", "/cases", Some(&coordinator))
                    .header("idempotency-key", "huge")
                    .body(huge),
            )
            .await;
        answer.refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            "a huge case with a key",
        );
        assert_eq!(api.case_count().await, 0);

        let answer = api.send(Call::new("GET", "/no/such/route", None)).await;
        answer.refused(StatusCode::NOT_FOUND, None, "an unknown route");
        let answer = api
            .send(Call::new("DELETE", "/cases", Some(&coordinator)))
            .await;
        answer.refused(StatusCode::METHOD_NOT_ALLOWED, None, "DELETE /cases");

        for (path, field) in [
            ("/ledger?limit=abc", "limit"),
            ("/ledger?limit=1.5", "limit"),
            ("/cases?overdue=maybe", "overdue"),
            ("/cases?colour=red", "colour"),
        ] {
            let answer = api.send(Call::new("GET", path, Some(&observer))).await;
            answer.refused(StatusCode::BAD_REQUEST, Some(field), path);
        }
        // The right values still read.
        let answer = api
            .send(Call::new("GET", "/ledger?limit=5", Some(&observer)))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let answer = api
            .send(Call::new(
                "GET",
                "/cases?overdue=true&state=all",
                Some(&observer),
            ))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

        // The document says so.
        let answer = api.send(Call::new("GET", "/openapi.json", None)).await;
        let paths = &answer.body["paths"];
        let responses = |path: &str, method: &str| paths[path][method]["responses"].clone();
        for status in ["400", "401", "413", "422", "503"] {
            assert!(
                responses("/cases", "post")[status].is_object(),
                "POST /cases lists {status}"
            );
        }
        for path in ["/inbound/sms/{secret}", "/receipts/sms/{secret}"] {
            for status in ["400", "401", "404", "413", "503"] {
                assert!(
                    responses(path, "post")[status].is_object(),
                    "{path} lists {status}"
                );
            }
        }
        assert!(responses("/ledger", "get")["400"].is_object());
        assert!(
            responses("/cases", "post")["413"]["content"]["application/json"].is_object(),
            "413 is a JSON error"
        );
        let parameters = paths["/cases"]["post"]["parameters"].as_array().unwrap();
        assert!(
            parameters
                .iter()
                .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
            "{parameters:?}"
        );
    }
}

#[tokio::test]
async fn an_idempotency_key_answers_a_retry_once_and_belongs_to_its_token() {
    for world in both("api_hardening_idempotency").await {
        let api = Api::new(&world).await;
        let hotline = api.token(Role::Coordinator, "mopti").await;
        let form = api.token(Role::Coordinator, "mopti").await;
        let body = case_body("Deux familles et un champ", &["c-1"]);

        let first = api
            .send(
                Call::new("POST", "/cases", Some(&hotline))
                    .header("idempotency-key", "retry-7")
                    .body(body.clone()),
            )
            .await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        let ledger_after_first = api.ledger_len().await;
        let again = api
            .send(
                Call::new("POST", "/cases", Some(&hotline))
                    .header("idempotency-key", "retry-7")
                    .body(body.clone()),
            )
            .await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
        assert!(again.json);
        assert_eq!(again.body, first.body, "the first answer again");
        assert_eq!(api.case_count().await, 1, "one case, not two");
        assert_eq!(
            api.ledger_len().await,
            ledger_after_first,
            "the command did not run again"
        );

        let other = api
            .send(
                Call::new("POST", "/cases", Some(&hotline))
                    .header("idempotency-key", "retry-7")
                    .body(case_body("Un autre litige", &["c-1"])),
            )
            .await;
        other.refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Idempotency-Key"),
            "the key with another body",
        );
        assert_eq!(
            other.body["error"],
            "this Idempotency-Key was used for another request"
        );
        assert_eq!(api.case_count().await, 1);

        // Another route with the same key is another request too.
        let id = first.body["id"].as_str().unwrap();
        let other = api
            .send(
                Call::new("POST", &format!("/cases/{id}/note"), Some(&hotline))
                    .header("idempotency-key", "retry-7")
                    .body(body.clone()),
            )
            .await;
        other.refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Idempotency-Key"),
            "the key on another route",
        );

        // Another token's key is its own.
        let theirs = api
            .send(
                Call::new("POST", "/cases", Some(&form))
                    .header("idempotency-key", "retry-7")
                    .body(body.clone()),
            )
            .await;
        assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.body);
        assert_ne!(theirs.body["id"], first.body["id"], "its own case");
        assert_eq!(api.case_count().await, 2);

        // An action replayed: one note, not two.
        let note = r#"{"note":"appelé le chef"}"#;
        let before_note = api.ledger_len().await;
        let mut answers = Vec::new();
        let mut ledger = Vec::new();
        for _ in 0..2 {
            answers.push(
                api.send(
                    Call::new("POST", &format!("/cases/{id}/note"), Some(&hotline))
                        .header("idempotency-key", "note-1")
                        .body(note),
                )
                .await,
            );
            ledger.push(api.ledger_len().await);
        }
        assert_eq!(answers[0].status, StatusCode::OK, "{}", answers[0].body);
        assert_eq!(answers[1].status, answers[0].status);
        assert_eq!(answers[1].body, answers[0].body);
        assert!(ledger[0] > before_note, "the note was recorded");
        assert_eq!(ledger[1], ledger[0], "once");

        // Without a key, a POST sent twice runs twice, as before.
        for _ in 0..2 {
            let answer = api
                .send(Call::new("POST", "/cases", Some(&hotline)).body(body.clone()))
                .await;
            assert_eq!(answer.status, StatusCode::CREATED);
        }
        assert_eq!(api.case_count().await, 4);

        // A key that is not one.
        let answer = api
            .send(
                Call::new("POST", "/cases", Some(&hotline))
                    .header("idempotency-key", "")
                    .body(body),
            )
            .await;
        answer.refused(
            StatusCode::BAD_REQUEST,
            Some("Idempotency-Key"),
            "an empty key",
        );
        assert_eq!(api.case_count().await, 4);
    }
}

/// The API served over TCP on a free port of 127.0.0.1 within `config`'s
/// limits, stopped (and checked to stop) by [`Served::stop`].
struct Served {
    address: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    async fn new(api: &Api, config: palabre_api::ServeConfig) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = palabre_api::ApiState {
            commands: api.runtime.commands().clone(),
            inbound_secret: Some("s3cret".into()),
            webhooks: palabre_sms::gateways::webhooks(None).unwrap(),
            voice: None,
        };
        let server = tokio::spawn(palabre_api::serve_with(
            listener,
            state,
            config,
            async move {
                let _ = stopped.await;
            },
        ));
        Served {
            address,
            stop,
            server,
        }
    }

    async fn connect(&self) -> tokio::net::TcpStream {
        tokio::net::TcpStream::connect(self.address).await.unwrap()
    }

    /// Stops the server, which must be done within a few seconds.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(std::time::Duration::from_secs(10), self.server)
            .await
            .expect("the server stops gracefully")
            .unwrap()
            .unwrap();
    }
}

/// Limits for a test: `changed` on the production ones.
fn limits(changed: impl FnOnce(&mut palabre_api::ServeConfig)) -> palabre_api::ServeConfig {
    let mut config = palabre_api::ServeConfig::default();
    changed(&mut config);
    config
}

/// Reads until the server closes the connection (end of file, or a reset when
/// it closed with bytes unread), at most `within`; what was read, or `None`
/// if the connection was still open then.
async fn read_until_closed(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    within: std::time::Duration,
) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut read = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buffer = [0_u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    closed.ok().map(|()| read)
}

/// Reads one whole answer (its headers and its `Content-Length` body) from a
/// connection that stays open; its text.
async fn read_answer(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> String {
    use tokio::io::AsyncReadExt;
    let mut read = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&read).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(n > 0, "closed before the whole answer: {text}");
        read.extend_from_slice(&buffer[..n]);
    }
}

/// One request on a connection of its own, `Connection: close`; the answer.
async fn exchange(served: &Served, request: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let mut stream = served.connect().await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let read = read_until_closed(&mut stream, std::time::Duration::from_secs(10))
        .await
        .expect("answered and closed within 10 s");
    String::from_utf8_lossy(&read).into_owned()
}

/// A client that sends half a header and then nothing, one that trickles its
/// header a byte at a time, and one that sends nothing at all are all
/// disconnected after the header read timeout, without an answer.
#[tokio::test]
async fn clients_slow_with_their_headers_are_disconnected() {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncWriteExt;
    let world = World::new("once", None).await;
    let api = Api::new(&world).await;
    let served = Served::new(
        &api,
        limits(|c| {
            c.header_read_timeout = Duration::from_millis(200);
            c.keep_alive_idle = Duration::from_secs(60);
        }),
    )
    .await;

    let started = Instant::now();
    let mut half = served.connect().await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    let (mut trickled, mut writer) = served.connect().await.into_split();
    writer
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut silent = served.connect().await;

    for (what, read) in [
        (
            "half a header",
            read_until_closed(&mut half, Duration::from_secs(3)).await,
        ),
        (
            "a trickled header",
            read_until_closed(&mut trickled, Duration::from_secs(3)).await,
        ),
        (
            "nothing",
            read_until_closed(&mut silent, Duration::from_secs(3)).await,
        ),
    ] {
        let read = read.unwrap_or_else(|| panic!("a client sending {what} is still connected"));
        assert!(
            read.is_empty(),
            "{what}: answered {}",
            String::from_utf8_lossy(&read)
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "not before the timeout"
    );
    trickle.abort();
    // A client that takes its time within the limit is answered.
    let answer = exchange(
        &served,
        "GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    served.stop().await;
}

/// A body that does not arrive whole within the body read timeout is refused
/// with a JSON 408, and the connection closed.
#[tokio::test]
async fn a_body_sent_too_slowly_is_refused_with_408() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let world = World::new("once", None).await;
    let api = Api::new(&world).await;
    let served = Served::new(
        &api,
        limits(|c| {
            c.body_read_timeout = Duration::from_millis(300);
            c.keep_alive_idle = Duration::from_secs(60);
        }),
    )
    .await;
    let mut stream = served.connect().await;
    stream
        .write_all(
            b"POST /inbound/sms/s3cret HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"from\": \"+223",
        )
        .await
        .unwrap();
    let read = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered and closed within 5 s");
    let answer = String::from_utf8_lossy(&read);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(r#""error":"the body did not arrive"#),
        "{answer}"
    );
    served.stop().await;
}

/// A kept-alive connection on which no new request comes is closed after the
/// idle limit, well before the header read timeout.
#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncWriteExt;
    let world = World::new("once", None).await;
    let api = Api::new(&world).await;
    let served = Served::new(
        &api,
        limits(|c| {
            c.keep_alive_idle = Duration::from_millis(500);
            c.header_read_timeout = Duration::from_secs(30);
        }),
    )
    .await;
    let mut stream = served.connect().await;
    for _ in 0..2 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        let answer = read_answer(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let idle = Instant::now();
    let read = read_until_closed(&mut stream, Duration::from_secs(3))
        .await
        .expect("an idle connection is closed within 3 s");
    assert!(read.is_empty(), "{}", String::from_utf8_lossy(&read));
    assert!(
        idle.elapsed() >= Duration::from_millis(300),
        "not before the limit"
    );
    served.stop().await;
}

/// With a limit of two connections, a third is not served while two are open,
/// and is as soon as one of them closes.
#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_one() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let world = World::new("once", None).await;
    let api = Api::new(&world).await;
    let served = Served::new(&api, limits(|c| c.max_connections = 2)).await;
    // Two clients in the middle of their headers hold both connections.
    let mut first = served.connect().await;
    first.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let mut second = served.connect().await;
    second
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let mut third = served.connect().await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0_u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(700), third.read(&mut byte)).await;
    assert!(early.is_err(), "the third connection was served: {early:?}");
    drop(first);
    let read = read_until_closed(&mut third, Duration::from_secs(5))
        .await
        .expect("served within 5 s of a free connection");
    let answer = String::from_utf8_lossy(&read);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The second is still held, its header unfinished.
    second
        .write_all(b"Host: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let read = read_until_closed(&mut second, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&read).starts_with("HTTP/1.1 200"));
    served.stop().await;
}

/// A log that keeps what is written to it.
#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Refused requests leave a line each in the log (401 at warn, 403 at info):
/// method, path without its query, the client's address and why, but neither
/// the token nor its secret, nor a webhook's secret.
#[tokio::test]
async fn refused_requests_are_logged_without_their_secrets() {
    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    // This test's runtime has one thread: the server's tasks log here too.
    let _logging = tracing::subscriber::set_default(subscriber);
    let world = World::new("once", None).await;
    let api = Api::new(&world).await;
    let served = Served::new(&api, palabre_api::ServeConfig::default()).await;
    let observer = api.token(Role::Observer, "mopti").await;
    let (id, secret) = observer
        .strip_prefix("plb_")
        .and_then(|rest| rest.split_once('_'))
        .unwrap();
    let wrong = format!("plb_{id}_{}", "0".repeat(secret.len()));
    let answer = exchange(
        &served,
        &format!(
            "GET /cases?access_token={observer} HTTP/1.1\r\nHost: test\r\n\
             Authorization: Bearer {wrong}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let answer = exchange(
        &served,
        "POST /inbound/sms/guessed-secret HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let body = r#"{"workflow":"litiges-test","category":"foncier","place":"mopti/koro/koro","description":"x"}"#;
    let answer = exchange(
        &served,
        &format!(
            "POST /cases HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {observer}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    served.stop().await;

    let text = log.text();
    let refused: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("API request refused"))
        .collect();
    assert_eq!(refused.len(), 3, "one line a refusal:\n{text}");
    let wrong_secret = refused[0];
    for expected in [
        "WARN",
        "status=401",
        "method=GET",
        "path=/cases ",
        "remote=127.0.0.1:",
        &format!("wrong secret for token {id}"),
    ] {
        assert!(
            wrong_secret.contains(expected),
            "{expected} in {wrong_secret}"
        );
    }
    let webhook = refused[1];
    for expected in [
        "WARN",
        "status=401",
        "method=POST",
        "path=/inbound/sms/{secret}",
        "wrong webhook secret",
    ] {
        assert!(webhook.contains(expected), "{expected} in {webhook}");
    }
    let role = refused[2];
    for expected in [
        "INFO",
        "status=403",
        "method=POST",
        "path=/cases ",
        "this needs coordinator",
    ] {
        assert!(role.contains(expected), "{expected} in {role}");
    }
    for secret in [
        secret,
        &"0".repeat(secret.len()),
        "guessed-secret",
        "access_token",
        "plb_",
    ] {
        assert!(!text.contains(secret), "{secret} in the log:\n{text}");
    }
}
