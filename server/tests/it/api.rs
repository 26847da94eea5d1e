//! Step 6's JSON API v1 over real HTTP: the Kuroco sequence (login, profile with
//! aliaslogin_target, alias_login, alias_logout), bearer and cookie authentication,
//! the one error shape with the right status for every kind of bad input, and the
//! OpenAPI document covering every route.

use crate::common::{json_of, Backend, TestApp, PASSWORD};
use app::members::Role;
use reqwest::{header, Client, StatusCode};
use serde_json::{json, Value};

on_both_databases!(
    the_kuroco_sequence_switches_tokens_and_refuses_the_old_ones,
    aliaslogin_target_comes_from_the_rule_and_pages_by_cursor,
    alias_login_keeps_every_check_of_the_web_flow,
    a_cross_origin_cookie_post_is_refused_but_a_bearer_one_works,
    a_bearer_token_wins_over_a_cookie,
    bad_input_gets_the_one_error_shape_and_the_right_status,
    api_sign_in_is_throttled_like_the_form,
    a_revoked_session_on_behalf_acts_as_no_one,
    an_ended_session_on_behalf_hands_the_actor_token_back_to_a_bearer_client_of_another_origin,
);

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.api(method, path, token, body).await
}

/// The catalogue, as `behalf serve` creates it on start; returns the first product.
async fn first_product(app: &TestApp) -> i64 {
    app::orders::service::ensure_catalogue(&app.state.db, 0)
        .await
        .unwrap();
    app.scalar("SELECT MIN(id) FROM products").await
}

async fn api_login(app: &TestApp, email: &str) -> String {
    app.api_login(email).await
}

async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    call(app, reqwest::Method::GET, path, Some(token), None).await
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    call(app, reqwest::Method::POST, path, Some(token), Some(body)).await
}

async fn the_kuroco_sequence_switches_tokens_and_refuses_the_old_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let agent = app
        .create_member("sam@example.com", "Sam Support", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;

    // 1. Log in as an agent.
    let (status, body) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/login",
        None,
        Some(json!({ "email": "sam@example.com", "password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["member"]["id"], agent);
    assert_eq!(body["member"]["role"], "support");
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    let agent_token = body["token"].as_str().unwrap().to_string();

    // 2. Profile with aliaslogin_target.
    let (status, profile) = get(&app, "/api/v1/profile?basic_info=aliaslogin_target", &agent_token).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["member"]["id"], agent);
    assert_eq!(profile["on_behalf"], Value::Null);
    let targets = profile["aliaslogin_target"].as_array().unwrap();
    assert_eq!(targets.len(), 1, "{profile}");
    assert_eq!(targets[0]["id"], ann);
    assert_eq!(targets[0]["email"], "ann@example.com");

    // 3. alias_login.
    let (status, switched) = post(
        &app,
        "/api/v1/alias_login",
        &agent_token,
        json!({ "member_id": ann, "password": PASSWORD, "reason": "T-42 checkout fails", "mode": "act" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{switched}");
    assert_eq!(switched["member"]["id"], ann);
    assert_eq!(switched["on_behalf"]["actor"]["id"], agent);
    assert_eq!(switched["on_behalf"]["reason"], "T-42 checkout fails");
    let ann_token = switched["token"].as_str().unwrap().to_string();
    assert_ne!(ann_token, agent_token);
    let (status, refused) = get(&app, "/api/v1/profile", &agent_token).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the agent's token ended: {refused}"
    );
    assert_eq!(refused["error"]["code"], "unauthenticated");

    // 4. Profile shows the member and on_behalf.
    let (status, profile) = get(&app, "/api/v1/profile", &ann_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(profile["member"]["email"], "ann@example.com");
    assert_eq!(profile["on_behalf"]["actor"]["display_name"], "Sam Support");
    assert!(profile.get("aliaslogin_target").is_none());

    // 5. An admin endpoint is refused: Ann has no admin access.
    let (status, refused) = get(&app, "/api/v1/members", &ann_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "no_admin_access");
    // Orders placed now are Ann's, placed by Sam.
    let product = first_product(&app).await;
    let (status, created) = post(
        &app,
        "/api/v1/orders",
        &ann_token,
        json!({ "product_id": product, "quantity": 2 }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["order"]["placed_by"], "Sam Support");
    let (status, orders) = get(&app, "/api/v1/orders", &ann_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(orders[0]["id"], created["order"]["id"]);
    assert_eq!(orders[0]["quantity"], 2);
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM orders WHERE member_id = {ann} AND placed_by = {agent}"
        ))
        .await,
        1
    );

    // 6. alias_logout.
    let (status, back) = post(&app, "/api/v1/alias_logout", &ann_token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["member"]["id"], agent);
    let agent_again = back["token"].as_str().unwrap().to_string();
    assert_ne!(agent_again, agent_token);
    // The on-behalf token is refused: it acts as no one, and hands nothing back.
    let response = app
        .bare_client()
        .get(app.url("/api/v1/profile"))
        .bearer_auth(&ann_token)
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("behalf-token").is_none());
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::CONFLICT, "the on-behalf token ended: {body}");
    assert_eq!(body["error"]["code"], "on_behalf_ended");

    // Ann's own view of it: the session on her behalf, with one action in it.
    let ann_own = api_login(&app, "ann@example.com").await;
    let (status, history) = get(&app, "/api/v1/access_history", &ann_own).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history[0]["actor_name"], "Sam Support");
    assert_eq!(history[0]["reason"], "T-42 checkout fails");
    assert_eq!(history[0]["actions"], 1);
    for path in [
        "/api/v1/orders",
        "/api/v1/products",
        "/api/v1/sessions",
        "/api/v1/access_history",
    ] {
        let (status, body) = call(&app, reqwest::Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} without a token: {body}");
    }

    // 7. Profile shows the agent again.
    let (status, profile) = get(&app, "/api/v1/profile", &agent_again).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(profile["member"]["id"], agent);
    assert_eq!(profile["on_behalf"], Value::Null);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_start'")
            .await,
        1
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_end'")
            .await,
        1
    );

    // Logout ends the token.
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/logout",
        Some(&agent_again),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = get(&app, "/api/v1/profile", &agent_again).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.finish().await;
}

async fn aliaslogin_target_comes_from_the_rule_and_pages_by_cursor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let boss = app
        .create_member("boss@example.com", "Boss", Role::SuperUser)
        .await;
    let mut lower = Vec::new();
    for n in 0..7 {
        let role = [Role::Member, Role::Support, Role::Editor][n % 3];
        lower.push(
            app.create_member(&format!("m{n}@example.com"), &format!("M {n}"), role)
                .await,
        );
    }
    let peer = app
        .create_member("peer@example.com", "Peer", Role::SuperUser)
        .await;
    let disabled = app.create_member("off@example.com", "Off", Role::Member).await;
    app.execute(&format!(
        "UPDATE members SET login_enabled = FALSE WHERE id = {disabled}"
    ))
    .await;
    let token = api_login(&app, "boss@example.com").await;

    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let path = format!("/api/v1/profile?basic_info=aliaslogin_target&limit=3&cursor={cursor}");
        let (status, page) = get(&app, &path, &token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for target in page["aliaslogin_target"].as_array().unwrap() {
            seen.push(target["id"].as_i64().unwrap());
        }
        match page["aliaslogin_target_next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(
        seen, lower,
        "every lower rank, once, in ID order; not the peer, the disabled or self"
    );
    assert!(!seen.contains(&peer) && !seen.contains(&boss));

    // A plain member with an explicit grant from another member (Kuroco: no admin screen).
    let kim = app.create_member("kim@example.com", "Kim", Role::Member).await;
    let lee = app.create_member("lee@example.com", "Lee", Role::Member).await;
    app.execute(&format!(
        "INSERT INTO proxy_permissions (member_id, actor_id, created_at, granted_by) VALUES ({lee}, {kim}, 0, {boss})"
    ))
    .await;
    let kim_token = api_login(&app, "kim@example.com").await;
    let (status, page) = get(&app, "/api/v1/profile?basic_info=aliaslogin_target", &kim_token).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = page["aliaslogin_target"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![lee]);
    // Unknown basic_info, bad limits and cursors are refused with the field.
    for (query, field) in [
        ("basic_info=everything", "basic_info"),
        ("basic_info=aliaslogin_target&limit=0", "limit"),
        ("basic_info=aliaslogin_target&limit=101", "limit"),
        ("basic_info=aliaslogin_target&cursor=-4", "cursor"),
    ] {
        let (status, body) = get(&app, &format!("/api/v1/profile?{query}"), &kim_token).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}");
    }
    app.finish().await;
}

async fn alias_login_keeps_every_check_of_the_web_flow(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Support", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let eve = app
        .create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let token = api_login(&app, "sam@example.com").await;
    let attempt = |member: i64, password: &str, reason: &str| json!({ "member_id": member, "password": password, "reason": reason });
    // The rule: a higher rank is refused with its denial code.
    let (status, body) = post(
        &app,
        "/api/v1/alias_login",
        &token,
        attempt(eve, PASSWORD, "T-1 check"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "rank_not_lower");
    // A reason is required.
    let (status, body) = post(&app, "/api/v1/alias_login", &token, attempt(ann, PASSWORD, "x")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "reason");
    // Wrong passwords, then the lockout with Retry-After.
    for _ in 0..5 {
        let (status, body) = post(
            &app,
            "/api/v1/alias_login",
            &token,
            attempt(ann, "wrong password!", "T-1 check"),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["code"], "wrong_password");
    }
    let response = app
        .bare_client()
        .post(app.url("/api/v1/alias_login"))
        .bearer_auth(&token)
        .json(&attempt(ann, PASSWORD, "T-1 check"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get(header::RETRY_AFTER).is_some());
    let (_, body) = json_of(response).await;
    assert_eq!(body["error"]["code"], "locked_out");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE actor_id IS NOT NULL")
            .await,
        0,
        "no session on behalf began"
    );
    // Nesting: a session on behalf cannot start another (a fresh agent, unlocked).
    app.create_member("sue@example.com", "Sue Support", Role::Support)
        .await;
    let sue = api_login(&app, "sue@example.com").await;
    let (status, body) = post(
        &app,
        "/api/v1/alias_login",
        &sue,
        attempt(ann, PASSWORD, "T-2 check"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let on_behalf = body["token"].as_str().unwrap().to_string();
    let other = app.create_member("bob@example.com", "Bob", Role::Member).await;
    let (status, body) = post(
        &app,
        "/api/v1/alias_login",
        &on_behalf,
        attempt(other, PASSWORD, "T-3 nest"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "nested");
    app.finish().await;
}

async fn a_cross_origin_cookie_post_is_refused_but_a_bearer_one_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let product = first_product(&app).await;
    let order = json!({ "product_id": product, "quantity": 1 });
    // Cookie: sign in through the API with a cookie-keeping client.
    let browser = app.client();
    let response = browser
        .post(app.url("/api/v1/login"))
        .json(&json!({ "email": "ann@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert!(
        crate::common::session_cookie(&response).is_some(),
        "the API login sets the cookie too"
    );
    let (_, login) = json_of(response).await;
    let token = login["token"].as_str().unwrap().to_string();
    let response = browser
        .post(app.url("/api/v1/orders"))
        .header(header::ORIGIN, "https://evil.example")
        .json(&order)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "cross_site");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 0);
    // The same cookie from the app's own origin works.
    let response = browser
        .post(app.url("/api/v1/orders"))
        .header(header::ORIGIN, format!("http://{}", app.addr))
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // A bearer token from another origin works: it is not sent by the browser itself.
    let response = app
        .bare_client()
        .post(app.url("/api/v1/orders"))
        .header(header::ORIGIN, "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .bearer_auth(&token)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 2);
    app.finish().await;
}

async fn a_bearer_token_wins_over_a_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    app.create_member("bob@example.com", "Bob Hall", Role::Member)
        .await;
    let ann = api_login(&app, "ann@example.com").await;
    let bob = api_login(&app, "bob@example.com").await;
    let response = app
        .bare_client()
        .get(app.url("/api/v1/profile"))
        .header(header::COOKIE, format!("behalf_session={ann}"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["member"]["email"], "bob@example.com");
    // A bad bearer token is a 401 even with a good cookie.
    let response = app
        .bare_client()
        .get(app.url("/api/v1/profile"))
        .header(header::COOKIE, format!("behalf_session={ann}"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = call(&app, reqwest::Method::GET, "/api/v1/profile", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no token");
    app.finish().await;
}

async fn send_raw(
    app: &TestApp,
    client: &Client,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    token: &str,
) -> (StatusCode, Value) {
    let response = client
        .post(app.url(path))
        .bearer_auth(token)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (status, body) = json_of(response).await;
    assert!(is_json, "{path}: always JSON under /api ({status}: {body})");
    (status, body)
}

async fn bad_input_gets_the_one_error_shape_and_the_right_status(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let token = api_login(&app, "ann@example.com").await;
    // A fresh connection for every request: a 413 answered before a 300 KiB body was
    // read closes its connection (as it should), and a pooled client could otherwise
    // race that close with its next request.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .timeout(crate::common::REQUEST_TIMEOUT)
        .build()
        .unwrap();
    let cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "/api/v1/orders",
            "text/plain",
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "/api/v1/orders",
            "application/json",
            b"{\"product_id\":".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/api/v1/orders",
            "application/json",
            br#"{"product_id":1,"quantity":1,"price":0}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            "/api/v1/orders",
            "application/json",
            br#"{"product_id":"1","quantity":1}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            "/api/v1/orders",
            "application/json",
            br#"{"product_id":1,"quantity":1000}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            "/api/v1/orders",
            "application/json",
            vec![b' '; 17 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "/api/v1/orders",
            "application/json",
            vec![b' '; 300 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "/api/v1/nothing-here",
            "application/json",
            b"{}".to_vec(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (path, content_type, body, status, code) in cases {
        let size = body.len();
        let (got, answer) = send_raw(&app, &client, path, content_type, body, &token).await;
        assert_eq!(got, status, "{path} {content_type} ({size} bytes): {answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, body) = send_raw(
        &app,
        &client,
        "/api/v1/orders",
        "application/json",
        br#"{"product_id":1,"quantity":1,"price":0}"#.to_vec(),
        &token,
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("price"))
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM orders").await,
        0,
        "a rejected request changes nothing"
    );
    // Paths and methods.
    let (status, body) = call(
        &app,
        reqwest::Method::DELETE,
        "/api/v1/sessions/abc",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = call(
        &app,
        reqwest::Method::DELETE,
        "/api/v1/sessions/99999999999999999999",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = call(&app, reqwest::Method::PUT, "/api/v1/profile", Some(&token), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert!(body["error"]["code"].is_string());
    let (status, body) = get(&app, "/api/v1/profile?unknown=1", &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    app.finish().await;
}

async fn api_sign_in_is_throttled_like_the_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let wrong = |email: &str| json!({ "email": email, "password": "not the password" });
    let mut last = (StatusCode::OK, Value::Null);
    for _ in 0..6 {
        last = call(
            &app,
            reqwest::Method::POST,
            "/api/v1/login",
            None,
            Some(wrong("ann@example.com")),
        )
        .await;
    }
    assert_eq!(last.0, StatusCode::TOO_MANY_REQUESTS, "{}", last.1);
    assert_eq!(last.1["error"]["code"], "rate_limited");
    let (status, body) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/login",
        None,
        Some(wrong("nobody@example.com")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invalid_credentials");
    assert!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'sign_in_locked'")
            .await
            >= 1
    );
    app.finish().await;
}

async fn a_revoked_session_on_behalf_acts_as_no_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Support", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let token = api_login(&app, "sam@example.com").await;
    let (_, body) = post(
        &app,
        "/api/v1/alias_login",
        &token,
        json!({ "member_id": ann, "password": PASSWORD, "reason": "T-9 check", "mode": "act" }),
    )
    .await;
    let on_behalf = body["token"].as_str().unwrap().to_string();
    // A super user disables Ann's login: the rule no longer holds.
    app.execute(&format!(
        "UPDATE members SET login_enabled = FALSE WHERE id = {ann}"
    ))
    .await;
    let product = first_product(&app).await;
    let response = app
        .bare_client()
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&on_behalf)
        .json(&json!({ "product_id": product, "quantity": 1 }))
        .send()
        .await
        .unwrap();
    let actor_token = response
        .headers()
        .get("behalf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "on_behalf_ended");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM orders").await,
        0,
        "placed for no one"
    );
    let actor_token = actor_token.expect("the actor's own token comes back");
    let (status, profile) = get(&app, "/api/v1/profile", &actor_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(profile["member"]["email"], "sam@example.com");
    assert_eq!(profile["on_behalf"], Value::Null);
    app.finish().await;
}

/// The actor's new token reaches a bearer client whatever its next request is: one the
/// API still answers (its own description), or one refused with `on_behalf_ended` —
/// and a frontend of another allowed origin can read both (CORS covers the refusal).
async fn an_ended_session_on_behalf_hands_the_actor_token_back_to_a_bearer_client_of_another_origin(
    backend: Backend,
) {
    const FRONT: &str = "https://front.example";
    let mut options = crate::common::Options::default();
    options.settings.cors_origins = vec![FRONT.to_string()];
    let app = TestApp::spawn_with(backend, options).await;
    app.create_member("sam@example.com", "Sam Support", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let bob = app
        .create_member("bob@example.com", "Bob Lee", Role::Member)
        .await;
    let mut token = api_login(&app, "sam@example.com").await;
    for (member, path) in [(ann, "/api/v1/openapi.json"), (bob, "/api/v1/orders")] {
        let (status, body) = post(
            &app,
            "/api/v1/alias_login",
            &token,
            json!({ "member_id": member, "password": PASSWORD, "reason": "T-9 check", "mode": "act" }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let on_behalf = body["token"].as_str().unwrap().to_string();
        app.execute(&format!(
            "UPDATE members SET login_enabled = FALSE WHERE id = {member}"
        ))
        .await;
        let response = app
            .bare_client()
            .get(app.url(path))
            .bearer_auth(&on_behalf)
            .header(header::ORIGIN, FRONT)
            .send()
            .await
            .unwrap();
        let headers = response.headers().clone();
        let expected = if path.ends_with("openapi.json") {
            StatusCode::OK
        } else {
            StatusCode::CONFLICT
        };
        assert_eq!(response.status(), expected, "{path}");
        assert_eq!(
            headers
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .and_then(|v| v.to_str().ok()),
            Some(FRONT),
            "{path}: readable by the allowed origin"
        );
        let exposed = headers
            .get(header::ACCESS_CONTROL_EXPOSE_HEADERS)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(exposed.contains("behalf-token"), "{path}: {exposed}");
        token = headers
            .get("behalf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("{path}: the actor's own token comes back"));
        let (status, profile) = get(&app, "/api/v1/profile", &token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {profile}");
        assert_eq!(profile["member"]["email"], "sam@example.com");
        assert_eq!(profile["on_behalf"], Value::Null);
    }
    app.finish().await;
}
