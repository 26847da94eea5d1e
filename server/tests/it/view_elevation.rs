//! Step 11's elevation over HTTP: a view-only session on behalf acts after the actor's
//! own password and a reason (a new token, the old one dead, recorded once), shares
//! the lockout with starts, is elevated once however many ask at once; and
//! `--act-min-role` lets a lower role view only, re-checked on every request.

use crate::{
    common::{session_cookie, token_of, Backend, Options, TestApp, PASSWORD},
    view_only::{alias_login, code, leave, live_on_behalf, on_behalf, pairs, product, text},
};
use app::{clock::MINUTE, members::Role, state::Settings};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_databases!(
    elevating_by_the_api_needs_the_password_and_replaces_the_token,
    elevating_in_the_web_window_replaces_the_cookie,
    starts_and_elevations_share_the_lockout,
    parallel_elevations_of_one_session_elevate_it_once,
    act_min_role_lets_lower_roles_view_only,
    a_session_whose_actor_may_no_longer_act_views_only,
);

async fn elevate(app: &TestApp, token: &str, password: &str) -> (StatusCode, Value) {
    let body = json!({ "password": password, "reason": "Ticket T-12: change the address" });
    app.api(Method::POST, "/api/v1/alias_elevate", Some(token), Some(body))
        .await
}

async fn mode_of(app: &TestApp, token: &str) -> Value {
    let (status, profile) = app.api(Method::GET, "/api/v1/profile", Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    profile["on_behalf"]["mode"].clone()
}

async fn order(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let body = json!({ "product_id": product(app).await, "quantity": 1 });
    app.api(Method::POST, "/api/v1/orders", Some(token), Some(body))
        .await
}

fn elevated(session: i64) -> String {
    format!(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_elevated' AND session_id = {session}"
    )
}

async fn elevating_by_the_api_needs_the_password_and_replaces_the_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let token = on_behalf(&app, "sam@example.com", ann, None).await;
    let session = live_on_behalf(&app).await;

    let (status, body) = elevate(&app, &token, "not my password").await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::FORBIDDEN, "wrong_password")
    );
    let failed = "SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_reauth_failed'";
    assert_eq!(app.scalar(failed).await, 1);
    assert_eq!(mode_of(&app, &token).await, "view");
    let (status, body) = order(&app, &token).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::FORBIDDEN, "on_behalf_view_only")
    );

    let (status, body) = elevate(&app, &token, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["mode"], &body["on_behalf"]["mode"]),
        (&json!("act"), &json!("act"))
    );
    assert_eq!(body["session_id"], session, "the same session");
    assert_eq!(body["on_behalf"]["session_id"], session);
    let new_token = body["token"].as_str().unwrap().to_string();
    assert_ne!(new_token, token);
    let (status, body) = app.api(Method::GET, "/api/v1/profile", Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old token is dead: {body}");
    assert_eq!(mode_of(&app, &new_token).await, "act");
    let (status, body) = order(&app, &new_token).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let details = text(
        &app,
        "SELECT details FROM audit_events WHERE action = 'on_behalf_elevated'",
    )
    .await;
    let details: Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["reason"], "Ticket T-12: change the address");
    assert_eq!(app.scalar(&elevated(session)).await, 1);
    let mode = text(&app, &format!("SELECT mode FROM sessions WHERE id = {session}")).await;
    assert_eq!(mode, "act");

    let (status, body) = elevate(&app, &new_token, PASSWORD).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::CONFLICT, "conflict"));
    assert_eq!(app.scalar(&elevated(session)).await, 1);
    leave(&app, &new_token).await;
    app.finish().await;
}

async fn elevating_in_the_web_window_replaces_the_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let product = product(&app).await.to_string();
    let client = app.signed_in("sam@example.com").await;
    let start = [
        ("member_id", ann.to_string()),
        ("password", PASSWORD.into()),
        ("reason", "T-13".into()),
    ];
    let response = app
        .post_form(&client, "/api/on-behalf/start", &pairs(&start))
        .await;
    let old = token_of(&session_cookie(&response).expect("a cookie"));
    let session = live_on_behalf(&app).await;

    let wrong = [("password", "not mine at all"), ("reason", "Ticket T-13 fix")];
    let (status, body) = app.post(&client, "/api/on-behalf/elevate", &wrong).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::FORBIDDEN, "wrong_password")
    );
    assert_eq!(
        app.whoami_with_token(&old).await.as_deref(),
        Some("ann@example.com")
    );

    let right = [("password", PASSWORD), ("reason", "Ticket T-13 fix")];
    let response = app.post_form(&client, "/api/on-behalf/elevate", &right).await;
    assert_eq!(response.status(), StatusCode::OK);
    let new = token_of(&session_cookie(&response).expect("the cookie is replaced"));
    assert_ne!(new, old);
    assert_eq!(app.whoami_with_token(&old).await, None, "the old cookie is dead");
    assert_eq!(
        app.whoami_with_token(&new).await.as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(live_on_behalf(&app).await, session, "the same session");
    let place = [("product_id", product.as_str()), ("quantity", "1")];
    let (status, body) = app.post(&client, "/api/orders/place", &place).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post(&client, "/api/on-behalf/elevate", &right).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::CONFLICT, "conflict"));
    let details = text(
        &app,
        "SELECT details FROM audit_events WHERE action = 'on_behalf_elevated'",
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&details).unwrap()["reason"],
        "Ticket T-13 fix"
    );
    assert_eq!(app.scalar(&elevated(session)).await, 1);
    app.finish().await;
}

async fn starts_and_elevations_share_the_lockout(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("lea@example.com", "Lea Support", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    // Two wrong starts and three wrong elevations: five wrong passwords in the window.
    for _ in 0..2 {
        let token = app.api_login("lea@example.com").await;
        let body = json!({ "member_id": ann, "password": "wrong", "reason": "T-14" });
        let (status, body) = app
            .api(Method::POST, "/api/v1/alias_login", Some(&token), Some(body))
            .await;
        assert_eq!(
            (status, code(&body).as_str()),
            (StatusCode::FORBIDDEN, "wrong_password")
        );
    }
    let token = on_behalf(&app, "lea@example.com", ann, Some("view")).await;
    let session = live_on_behalf(&app).await;
    for _ in 0..3 {
        app.clock.advance(MINUTE);
        let (status, body) = elevate(&app, &token, "wrong").await;
        assert_eq!(
            (status, code(&body).as_str()),
            (StatusCode::FORBIDDEN, "wrong_password")
        );
    }
    // Even the right password is refused now, and the session goes on viewing.
    let (status, body) = elevate(&app, &token, PASSWORD).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "locked_out")
    );
    assert_eq!(
        mode_of(&app, &token).await,
        "view",
        "still viewing, the token alive"
    );
    assert_eq!(app.scalar(&elevated(session)).await, 0);
    // Fifteen minutes after the last failure it opens again.
    app.clock.advance(14 * MINUTE);
    let (status, body) = elevate(&app, &token, PASSWORD).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "locked_out")
    );
    app.clock.advance(MINUTE);
    let (status, body) = elevate(&app, &token, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "the lock is over: {body}");
    assert_eq!(app.scalar(&elevated(session)).await, 1);
    app.finish().await;
}

async fn parallel_elevations_of_one_session_elevate_it_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let token = on_behalf(&app, "sam@example.com", ann, None).await;
    let session = live_on_behalf(&app).await;
    let answers = futures_util::future::join_all((0..10).map(|_| elevate(&app, &token, PASSWORD))).await;
    let won: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    let allowed = [
        StatusCode::OK,
        // Lost the race, or waited on the attempt limiter:
        StatusCode::CONFLICT,
        StatusCode::TOO_MANY_REQUESTS,
        // or came after the winner killed the old token.
        StatusCode::UNAUTHORIZED,
    ];
    for (status, body) in &answers {
        assert!(allowed.contains(status), "{status}: {body}");
    }
    assert_eq!(app.scalar(&elevated(session)).await, 1);
    let winner = won[0]["token"].as_str().unwrap();
    assert_eq!(mode_of(&app, winner).await, "act");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE actor_id IS NOT NULL")
            .await,
        1
    );
    app.finish().await;
}

async fn spawn_with_act_min_role(backend: Backend, role: Role) -> TestApp {
    let settings = Settings {
        act_min_role: Some(role),
        ..Options::default().settings
    };
    TestApp::spawn_with(
        backend,
        Options {
            settings,
            ..Options::default()
        },
    )
    .await
}

const LIVE: &str = "SELECT COUNT(*) FROM sessions WHERE actor_id IS NOT NULL AND ended_at IS NULL";

async fn act_min_role_lets_lower_roles_view_only(backend: Backend) {
    let app = spawn_with_act_min_role(backend, Role::Editor).await;
    let sam = app
        .create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    app.create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let pat = app
        .create_member("pat@example.com", "Pat Support", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let bob = app
        .create_member("bob@example.com", "Bob Member", Role::Member)
        .await;
    let now = app.clock.now();
    // Explicit grants: Pat's names Sam, Ann's names Bob.
    for (member, actor) in [(pat, sam), (ann, bob)] {
        app.execute(&format!(
            "INSERT INTO proxy_permissions (member_id, actor_id, created_at) VALUES ({member}, {actor}, {now})"
        ))
        .await;
    }

    // Sam (support, by role): acting is refused before anything starts; viewing works.
    let (status, body) = alias_login(&app, "sam@example.com", ann, Some("act")).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::FORBIDDEN, "act_needs_role")
    );
    assert_eq!(app.scalar(LIVE).await, 0, "no session started");
    let client = app.signed_in("sam@example.com").await;
    let act = [
        ("member_id", ann.to_string()),
        ("password", PASSWORD.into()),
        ("reason", "T-15".into()),
        ("mode", "act".into()),
    ];
    let (status, body) = app.post(&client, "/api/on-behalf/start", &pairs(&act)).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::FORBIDDEN, "act_needs_role")
    );
    assert_eq!(app.scalar(LIVE).await, 0, "no session started");
    let token = on_behalf(&app, "sam@example.com", ann, Some("view")).await;
    let (status, body) = elevate(&app, &token, PASSWORD).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::FORBIDDEN, "act_needs_role")
    );
    assert_eq!(mode_of(&app, &token).await, "view");
    leave(&app, &token).await;

    // An editor acts; an explicit grant may act whatever the role: Sam on Pat, Bob on Ann.
    for (actor, member) in [
        ("eve@example.com", ann),
        ("sam@example.com", pat),
        ("bob@example.com", ann),
    ] {
        let token = on_behalf(&app, actor, member, Some("act")).await;
        assert_eq!(mode_of(&app, &token).await, "act", "{actor}");
        let (status, body) = order(&app, &token).await;
        assert_eq!(status, StatusCode::CREATED, "{actor}: {body}");
        leave(&app, &token).await;
    }
    app.finish().await;
}

/// Eve (editor) acts; demoted to support mid-session, the same session views only (it
/// goes on: the rule still lets a support engineer in) and says so once. The fall back
/// is written: made editor again, it still views until she elevates (password, reason).
async fn a_session_whose_actor_may_no_longer_act_views_only(backend: Backend) {
    let app = spawn_with_act_min_role(backend, Role::Editor).await;
    let eve = app
        .create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let token = on_behalf(&app, "eve@example.com", ann, Some("act")).await;
    let (status, body) = order(&app, &token).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let session = live_on_behalf(&app).await;

    app.execute(&format!("UPDATE members SET role = 'support' WHERE id = {eve}"))
        .await;
    // The request that finds it says so (the one-time notice).
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(json!({"product_id": 1, "quantity": 1})),
        )
        .await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::FORBIDDEN, "on_behalf_view_only"),
        "{body}"
    );
    assert_eq!(mode_of(&app, &token).await, "view");
    let (status, body) = order(&app, &token).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::FORBIDDEN, "on_behalf_view_only")
    );
    assert_eq!(live_on_behalf(&app).await, session, "the session goes on");
    let stored = text(&app, &format!("SELECT mode FROM sessions WHERE id = {session}")).await;
    assert_eq!(stored, "view", "the fall back is written");
    let (status, body) = elevate(&app, &token, PASSWORD).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::FORBIDDEN, "act_needs_role")
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 1);

    app.execute(&format!("UPDATE members SET role = 'editor' WHERE id = {eve}"))
        .await;
    assert_eq!(
        mode_of(&app, &token).await,
        "view",
        "acting again takes an elevation"
    );
    let (status, body) = elevate(&app, &token, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    let (status, body) = order(&app, &token).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.finish().await;
}
