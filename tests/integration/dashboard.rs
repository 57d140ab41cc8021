//! The dashboard's sessions and forms through its router, on both backends,
//! on the virtual clock: a session ends at its time, with its token's
//! revocation and at sign-out; a form without the session's CSRF secret, or a
//! sign-in without its form's secret, is refused and changes nothing.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::TimeDelta;
use palabre_api::auth::{self, Role};
use palabre_core::clock::Clock as _;
use tower::ServiceExt as _;

use crate::api::Api;
use crate::runtime::worlds;

/// What the dashboard answered: status, where it sends the browser, the body.
struct Answer {
    status: StatusCode,
    location: String,
    body: String,
}

async fn send(api: &Api, method: &str, path: &str, cookie: &str, form: &str) -> Answer {
    let state = palabre_api::ApiState {
        commands: api.runtime.commands().clone(),
        inbound_secret: None,
        webhooks: palabre_sms::gateways::webhooks(None).unwrap(),
        voice: None,
    };
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    let response = palabre_web::app(state, palabre_web::DashboardConfig::default())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        location,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

#[tokio::test]
async fn sessions_end_on_time_with_their_token_and_at_sign_out() {
    for world in worlds("dashboard_sessions", "once").await {
        let api = Api::new(&world).await;
        let store = api.runtime.store();
        let token = api.token(Role::Coordinator, "mopti").await;
        let now = api.clock.now();
        let opened = auth::open_session(store, &token, now)
            .await
            .unwrap()
            .unwrap();
        let cookie = format!("palabre_session={}", opened.cookie);
        assert_eq!(
            send(&api, "GET", "/plans", &cookie, "").await.status,
            StatusCode::OK
        );
        assert_eq!(opened.expires, now + auth::SESSION_LIFETIME);

        // Twelve hours on, the session is over: back to the sign-in page.
        api.clock.advance(auth::SESSION_LIFETIME);
        let late = send(&api, "GET", "/plans", &cookie, "").await;
        assert_eq!(
            (late.status, late.location.as_str()),
            (StatusCode::SEE_OTHER, "/sign-in")
        );

        // A revoked token ends its sessions at once.
        let now = api.clock.now();
        let again = auth::open_session(store, &token, now)
            .await
            .unwrap()
            .unwrap();
        let cookie = format!("palabre_session={}", again.cookie);
        let home = send(&api, "GET", "/", &cookie, "").await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.body);
        let id = token.split('_').nth(1).unwrap();
        store.revoke_token(id, now).await.unwrap();
        let revoked = send(&api, "GET", "/", &cookie, "").await;
        assert_eq!(revoked.location, "/sign-in");
        assert!(
            auth::open_session(store, &token, now)
                .await
                .unwrap()
                .is_err(),
            "a revoked token opens no session"
        );

        // Sign-out ends the session in the database, not only in the browser.
        let token = api.token(Role::Coordinator, "mopti").await;
        let third = auth::open_session(store, &token, now)
            .await
            .unwrap()
            .unwrap();
        let cookie = format!("palabre_session={}", third.cookie);
        let refused = send(&api, "POST", "/sign-out", &cookie, "csrf=wrong").await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "sign-out is a form too"
        );
        let out = send(
            &api,
            "POST",
            "/sign-out",
            &cookie,
            &format!("csrf={}", third.csrf),
        )
        .await;
        assert_eq!(out.location, "/sign-in");
        assert_eq!(
            send(&api, "GET", "/", &cookie, "").await.location,
            "/sign-in"
        );

        // A token that expires sooner than twelve hours bounds its sessions.
        let short = auth::create_token_expiring(
            store,
            Role::Observer,
            "mopti",
            "short",
            now,
            Some(now + TimeDelta::hours(1)),
        )
        .await
        .unwrap();
        let bounded = auth::open_session(store, &short, now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bounded.expires, now + TimeDelta::hours(1));
    }
}

#[tokio::test]
async fn a_form_without_its_csrf_secret_changes_nothing() {
    for world in worlds("dashboard_csrf", "once").await {
        let api = Api::new(&world).await;
        let token = api.token(Role::Coordinator, "mopti").await;
        let store = api.runtime.store();
        let opened = auth::open_session(store, &token, api.clock.now())
            .await
            .unwrap()
            .unwrap();
        let cookie = format!("palabre_session={}", opened.cookie);
        let case = "workflow=litiges-test&category=foncier&place=mopti%2Fkoro%2Fkoro\
                    &severity=2&description=Un+champ";
        for csrf in ["", "&csrf=", "&csrf=0123456789abcdef"] {
            let refused = send(&api, "POST", "/disputes", &cookie, &format!("{case}{csrf}")).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{csrf}");
            assert!(refused.body.contains("Accès refusé"), "{}", refused.body);
        }
        assert_eq!(api.case_count().await, 0, "nothing opened");
        let opened_case = send(
            &api,
            "POST",
            "/disputes",
            &cookie,
            &format!("{case}&csrf={}", opened.csrf),
        )
        .await;
        assert_eq!(
            opened_case.status,
            StatusCode::SEE_OTHER,
            "{}",
            opened_case.body
        );
        assert_eq!(opened_case.location, "/disputes/LT-0001?done=opened");
        assert_eq!(api.case_count().await, 1);

        // The board shows no description, and the ledger says none was read;
        // the case's page shows it, and the ledger says so.
        let board = send(&api, "GET", "/disputes", &cookie, "").await;
        assert_eq!(board.status, StatusCode::OK);
        assert!(board.body.contains("LT-0001") && !board.body.contains("Un champ"));
        assert!(api.reveals().await.is_empty(), "{:?}", api.reveals().await);
        let page = send(&api, "GET", "/disputes/LT-0001", &cookie, "").await;
        assert!(page.body.contains("Un champ"), "{}", page.body);
        let reveals = api.reveals().await;
        assert_eq!(reveals.len(), 1, "{reveals:?}");
        assert!(
            reveals[0].detail.contains("GET /cases/LT-0001"),
            "{reveals:?}"
        );

        // Signing in needs the sign-in form's own secret, matched by its cookie.
        let forged = send(&api, "POST", "/sign-in", "", &format!("token={token}")).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert!(!forged.body.contains(&token), "the token is not echoed");
        let form = send(&api, "GET", "/sign-in", "", "").await;
        let nonce = form
            .body
            .split("name=\"nonce\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        let signed_in = send(
            &api,
            "POST",
            "/sign-in",
            &format!("palabre_sign_in={nonce}"),
            &format!("token={token}&nonce={nonce}"),
        )
        .await;
        assert_eq!(
            (signed_in.status, signed_in.location.as_str()),
            (StatusCode::SEE_OTHER, "/")
        );
    }
}
