//! The dashboard in a real browser: Debian's Chromium, headless, driven through
//! ChromeDriver (both installed by `scripts/ensure-browser`, whose folder
//! `PALABRE_TEST_BROWSER` names) against the dashboard and the API served over
//! TCP on a real database, SQLite and PostgreSQL, on the virtual clock. A
//! coordinator signs in, follows a meeting from its invitations to a leader's
//! answer sent through the inbound webhook, moves it, opens and acknowledges a
//! dispute, sets a milestone, reads the directory with numbers masked, reveals
//! one contact, is refused outside a token's scope, and signs out. Every page is
//! checked by axe-core (no serious or critical violation), weighed (under 60 KB
//! transferred), looked at 360 px wide (no page-wide horizontal scroll) and
//! photographed at laptop and phone widths (`target/screenshots/`, or the
//! folder `PALABRE_SCREENSHOTS` names: `docs/screenshots` for the README); the
//! first page is timed on a 256 kbit/s link.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use palabre_api::auth::Role;
use serde_json::{Value, json};

use crate::api::Api;
use crate::runtime::worlds;

/// The folder `scripts/ensure-browser` prepared, or `None` (skipped) outside CI.
fn browser_folder() -> Option<PathBuf> {
    match std::env::var("PALABRE_TEST_BROWSER") {
        Ok(folder) if !folder.is_empty() => Some(PathBuf::from(folder)),
        _ if std::env::var_os("CI").is_some() => {
            panic!("PALABRE_TEST_BROWSER must be set in CI (scripts/ensure-browser)")
        }
        _ => {
            eprintln!("PALABRE_TEST_BROWSER is not set: browser tests skipped");
            None
        }
    }
}

/// ChromeDriver on a port of its own, stopped with the test.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver(folder: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(folder.join("chromedriver"))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver { child, port };
    // Waiting for a process to listen, not for time to pass.
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not listen on {port}");
}

async fn open_browser(driver: &Driver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--lang=fr-FR"],
            "prefs": { "intl.accept_languages": "fr-FR,fr" }
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

/// A Chrome DevTools command sent through ChromeDriver (`goog/cdp/execute`).
#[derive(Debug)]
struct DevTools {
    command: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.command, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// What a page is checked for, and where its pictures go.
struct Checks {
    axe: String,
    shots: PathBuf,
}

impl Checks {
    fn new(folder: &Path) -> Checks {
        let shots = std::env::var_os("PALABRE_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::util::repo().join("target/screenshots"));
        std::fs::create_dir_all(&shots).unwrap();
        Checks {
            axe: std::fs::read_to_string(folder.join("axe.min.js")).expect("axe-core"),
            shots,
        }
    }

    /// The page now shown: no serious or critical accessibility violation,
    /// under 60 KB transferred, no page-wide horizontal scroll at 360 px, and
    /// photographed at both widths as `name`.
    async fn page(&self, browser: &Client, name: &str) {
        let violations = browser
            .execute_async(
                &format!(
                    "{}\n;const done = arguments[arguments.length - 1];\
                     axe.run(document, {{ resultTypes: ['violations'] }})\
                       .then(r => done(r.violations\
                         .filter(v => v.impact === 'serious' || v.impact === 'critical')\
                         .map(v => v.id + ' (' + v.nodes.length + '): ' + v.nodes[0].html)))\
                       .catch(e => done(['axe failed: ' + e]));",
                    self.axe
                ),
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(violations, json!([]), "{name}: accessibility");
        let weight = browser
            .execute(
                "const nav = performance.getEntriesByType('navigation')[0];\
                 return performance.getEntriesByType('resource')\
                   .reduce((sum, r) => sum + r.transferSize, nav.transferSize);",
                vec![],
            )
            .await
            .unwrap()
            .as_f64()
            .unwrap();
        assert!(weight < 60_000.0, "{name}: {weight} bytes transferred");
        std::fs::write(
            self.shots.join(format!("{name}-laptop.png")),
            browser.screenshot().await.unwrap(),
        )
        .unwrap();
        browser.set_window_size(360, 780).await.unwrap();
        std::fs::write(
            self.shots.join(format!("{name}-phone.png")),
            browser.screenshot().await.unwrap(),
        )
        .unwrap();
        let overflow = browser
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .unwrap()
            .as_f64()
            .unwrap();
        if overflow > 1.0 {
            let widest = browser
                .execute(
                    "const w = document.documentElement.clientWidth;\
                     return [...document.querySelectorAll('body *')]\
                       .filter(e => e.getBoundingClientRect().right > w + 1 && !e.closest('.scroll, figure'))\
                       .slice(0, 8).map(e => e.tagName + '.' + e.getAttribute('class') + ' ' + Math.round(e.getBoundingClientRect().right));",
                    vec![],
                )
                .await
                .unwrap();
            panic!("{name}: {overflow} px wider than a phone: {widest}");
        }
        browser.set_window_size(1280, 900).await.unwrap();
    }
}

/// What `css` finds on the page, once the page holds it.
async fn element(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

async fn text_of(browser: &Client, css: &str) -> String {
    element(browser, css).await.text().await.unwrap()
}

async fn fill(browser: &Client, css: &str, value: &str) {
    element(browser, css).await.send_keys(value).await.unwrap();
}

/// Clicks what `css` finds (a link, a form's button: every click here leaves
/// the page) and waits until the next page has replaced this one, so that
/// nothing is read from the page being left (on a loaded machine the click
/// returns before the browser has navigated).
async fn click(browser: &Client, css: &str) {
    let leaving = element(browser, "html").await;
    element(browser, css).await.click().await.unwrap();
    for _ in 0..1_000 {
        if leaving.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{css}: the page did not change");
}

/// Sets a field's value as a person choosing it would (a date picker, a list).
async fn choose(browser: &Client, css: &str, value: &str) {
    browser
        .execute(
            "document.querySelector(arguments[0]).value = arguments[1];",
            vec![json!(css), json!(value)],
        )
        .await
        .unwrap();
}

async fn path_of(browser: &Client) -> String {
    browser.current_url().await.unwrap().path().to_owned()
}

async fn sign_in(browser: &Client, base: &str, token: &str) {
    browser.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(
        path_of(browser).await,
        "/sign-in",
        "signed out, / asks to sign in"
    );
    fill(browser, "#token", token).await;
    click(browser, "form.stacked button").await;
}

/// Sends an SMS reply through the inbound webhook, over HTTP.
async fn inbound_sms(address: std::net::SocketAddr, from: &str, text: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = json!({ "from": from, "text": text }).to_string();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST /inbound/sms/s3cret HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("answered"), "{answer}");
}

#[tokio::test]
async fn a_coordinator_follows_a_meeting_and_acts_in_a_real_browser() {
    let Some(folder) = browser_folder() else {
        return;
    };
    let checks = Checks::new(&folder);
    let driver = start_driver(&folder).await;
    for (index, world) in worlds("browser", "once").await.into_iter().enumerate() {
        let api = Api::new(&world).await;
        let administrator = api.token(Role::Administrator, "national").await;
        let elsewhere = api.token(Role::Coordinator, "segou").await;
        api.invite_to_the_seventh().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let state = palabre_api::ApiState {
            commands: api.runtime.commands().clone(),
            inbound_secret: Some("s3cret".into()),
            webhooks: palabre_sms::gateways::webhooks(None).unwrap(),
            voice: None,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(palabre_api::serve_router(
            listener,
            palabre_web::app(state, palabre_web::DashboardConfig::default()),
            palabre_api::ServeConfig::default(),
            async {
                let _ = stopped.await;
            },
        ));
        let base = format!("http://{address}");
        let browser = open_browser(&driver).await;
        // Photographs and accessibility once (SQLite); the flow on every backend.
        let check = |name: &'static str| {
            let (browser, checks) = (&browser, &checks);
            async move {
                if index == 0 {
                    checks.page(browser, name).await;
                }
            }
        };

        // A wrong token is refused; the right one signs in.
        sign_in(&browser, &base, "plb_000000000000_wrong").await;
        assert!(text_of(&browser, ".error").await.contains("pas valide"));
        check("sign-in").await;
        fill(&browser, "#token", &administrator).await;
        click(&browser, "form.stacked button").await;
        assert_eq!(path_of(&browser).await, "/");
        assert_eq!(text_of(&browser, "h1").await, "Réunions à venir");
        let listed = text_of(&browser, ".occurrences").await;
        assert!(
            listed.contains("lundi 30 novembre 2026, 9 h passée"),
            "last week's session is still listed: {listed}"
        );
        check("meetings").await;

        // The meeting of Monday 7 December: its invitations went out.
        click(&browser, ".occurrences a[href*='2026-12-07']").await;
        assert_eq!(text_of(&browser, "h1").await, "Réunion hebdomadaire");
        assert_eq!(
            text_of(&browser, ".crumbs").await,
            "Réunions › Cercle de Koro",
            "places by name"
        );
        let sent = text_of(&browser, "#sent-heading + .scroll table").await;
        assert!(sent.contains("invitation"), "{sent}");
        let people = text_of(&browser, "#people-heading + .scroll table").await;
        assert!(people.contains("Awa Diallo"), "{people}");
        assert!(!people.contains("oui"), "nobody answered yet: {people}");

        // Awa answers yes by SMS; the page shows it.
        let reference = text_of(&browser, ".facts code").await;
        inbound_sms(address, "76 11 22 33", &format!("OUI {reference}")).await;
        browser.refresh().await.unwrap();
        let yes = browser.find_all(Locator::Css(".answer.yes")).await.unwrap();
        assert_eq!(yes.len(), 1, "one yes");
        let row = browser
            .find(Locator::XPath("//tr[th='Awa Diallo']"))
            .await
            .unwrap();
        assert!(row.text().await.unwrap().contains("oui"));
        assert!(text_of(&browser, ".quorum").await.contains("Quorum"));
        check("occurrence").await;

        // Moved to Tuesday 10:00, with a reason.
        choose(&browser, "#to", "2026-12-08T10:00").await;
        fill(&browser, "#move-reason", "Marché le lundi").await;
        click(&browser, "form.stacked:nth-of-type(1) button").await;
        assert!(text_of(&browser, ".saved").await.contains("déplacée"));
        let when = text_of(&browser, ".facts").await;
        assert!(when.contains("mardi 8 décembre 2026, 10 h"), "{when}");

        // A dispute opened, then acknowledged.
        browser.goto(&format!("{base}/disputes")).await.unwrap();
        choose(&browser, "#place", "mopti/koro/koro").await;
        fill(
            &browser,
            "#description",
            "Un champ disputé entre deux familles",
        )
        .await;
        click(&browser, "#open-heading + form button").await;
        assert_eq!(text_of(&browser, "h1").await, "LT-0001");
        assert!(text_of(&browser, ".saved").await.contains("ouvert"));
        choose(&browser, "#action", "acknowledge").await;
        fill(&browser, "#note", "Le chef s'en occupe").await;
        click(&browser, "#act-heading + form button").await;
        assert!(text_of(&browser, ".facts").await.contains("pris en charge"));
        check("case").await;
        browser.goto(&format!("{base}/disputes")).await.unwrap();
        assert!(text_of(&browser, ".board").await.contains("LT-0001"));
        check("disputes").await;

        // A milestone set in progress.
        browser.goto(&format!("{base}/plans")).await.unwrap();
        choose(&browser, "#status-plan-koro-ecole", "in_progress").await;
        fill(&browser, "#note-plan-koro-ecole", "Travaux commencés").await;
        click(&browser, "tr#ecole button").await;
        assert!(text_of(&browser, ".saved").await.contains("jalon"));
        assert!(text_of(&browser, "tr#ecole").await.contains("en cours"));
        assert_eq!(
            browser
                .find_all(Locator::Css("svg.timeline .bar"))
                .await
                .unwrap()
                .len(),
            1
        );
        check("plans").await;

        // Deliveries and health.
        browser.goto(&format!("{base}/deliveries")).await.unwrap();
        assert!(
            text_of(&browser, "#channels-heading + .scroll")
                .await
                .contains("SMS")
        );
        check("deliveries").await;

        // The directory: numbers masked in the page and its source; one revealed.
        browser.goto(&format!("{base}/directory")).await.unwrap();
        let source = browser.source().await.unwrap();
        for clear in ["76112233", "76 11 22 33", "oumar@example.org"] {
            assert!(!source.contains(clear), "{clear} in the directory's source");
        }
        assert!(
            source.contains("+223 •• •• 22 33"),
            "masked numbers are shown"
        );
        check("directory").await;
        click(&browser, "button[aria-label$='Awa Diallo']").await;
        assert!(
            text_of(&browser, ".revealed")
                .await
                .contains("+22376112233")
        );
        let reveals = api.reveals().await;
        assert!(
            reveals
                .iter()
                .any(|e| e.contact_id.as_deref() == Some("c-1"))
        );

        // English on asking, remembered.
        browser.goto(&format!("{base}/?lang=en")).await.unwrap();
        assert_eq!(text_of(&browser, "h1").await, "Coming meetings");
        browser.goto(&format!("{base}/plans")).await.unwrap();
        assert_eq!(text_of(&browser, "h1").await, "Redeployment milestones");
        browser.goto(&format!("{base}/?lang=fr")).await.unwrap();

        // The first page on a 256 kbit/s link, nothing cached.
        if index == 0 {
            for (command, params) in [
                ("Network.enable", json!({})),
                ("Network.setCacheDisabled", json!({ "cacheDisabled": true })),
                (
                    "Network.emulateNetworkConditions",
                    json!({ "offline": false, "latency": 150,
                            "downloadThroughput": 32_000, "uploadThroughput": 32_000 }),
                ),
            ] {
                browser
                    .issue_cmd(DevTools { command, params })
                    .await
                    .unwrap();
            }
            browser.goto(&format!("{base}/")).await.unwrap();
            let usable = browser
                .execute(
                    "const n = performance.getEntriesByType('navigation')[0];\
                     return [n.domContentLoadedEventEnd, n.loadEventEnd, n.transferSize];",
                    vec![],
                )
                .await
                .unwrap();
            eprintln!("the first page on 256 kbit/s: {usable}");
            let loaded = usable[1].as_f64().unwrap();
            assert!(loaded < 2_000.0, "usable after {loaded} ms on 256 kbit/s");
            browser
                .issue_cmd(DevTools {
                    command: "Network.emulateNetworkConditions",
                    params: json!({ "offline": false, "latency": 0,
                                    "downloadThroughput": -1, "uploadThroughput": -1 }),
                })
                .await
                .unwrap();
        }

        // Signed out, the pages ask to sign in again.
        click(&browser, "form[action='/sign-out'] button").await;
        assert_eq!(path_of(&browser).await, "/sign-in");
        browser.goto(&format!("{base}/plans")).await.unwrap();
        assert_eq!(path_of(&browser).await, "/sign-in");

        // A token of Ségou is refused Koro's meeting, as the API refuses it.
        fill(&browser, "#token", &elsewhere).await;
        click(&browser, "form.stacked button").await;
        browser
            .goto(&format!("{base}/meeting/weekly-koro/2026-12-07T09:00:00Z"))
            .await
            .unwrap();
        assert_eq!(text_of(&browser, "h1").await, "Accès refusé");
        check("refused").await;

        browser.close().await.unwrap();
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
