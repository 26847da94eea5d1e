//! Step 8: the live sessions on behalf and their kill switch, a member's sessions in
//! the blade, and the session cookie's hardening (the __Host- name over https, a name
//! sent twice, CSP nonces and HSTS).

use crate::common::{json_of, session_cookie, Backend, Options, TestApp, PASSWORD};
use app::{members::Role, state::Settings};
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

on_both_databases!(
    overseers_see_live_sessions_on_behalf_and_end_one,
    only_a_super_user_ends_them_all_and_none_survives,
    an_editor_cannot_end_a_super_users_session_on_behalf,
    repeated_refusals_are_folded_into_one_record_with_a_count,
    revoking_a_members_sessions_ends_those_on_their_behalf_too,
    a_session_cookie_sent_twice_is_used_by_neither,
    over_https_the_cookie_is_host_prefixed_and_hsts_is_sent,
);

/// Starts a session on behalf of `member` through the API; its token.
async fn alias_login(app: &TestApp, actor_token: &str, member: i64) -> String {
    let body = json!({ "member_id": member, "password": PASSWORD, "reason": "Ticket T-8", "mode": "act" });
    let (status, body) = app
        .api(Method::POST, "/api/v1/alias_login", Some(actor_token), Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().unwrap().to_string()
}

async fn live(app: &TestApp, token: &str) -> (StatusCode, Value) {
    app.api(Method::GET, "/api/v1/impersonations", Some(token), None)
        .await
}

async fn overseers_see_live_sessions_on_behalf_and_end_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    app.create_member("sam@example.com", "Sam Support", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let eve = app.api_login("eve@example.com").await;
    let sam = app.api_login("sam@example.com").await;
    let on_behalf = alias_login(&app, &sam, ann).await;
    // (alias_login ends the token it was called with.)
    let sam = app.api_login("sam@example.com").await;

    let (status, body) = live(&app, &eve).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body["impersonations"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{body}");
    let row = &rows[0];
    assert_eq!(row["actor_name"], "Sam Support");
    assert_eq!(row["member_name"], "Ann Lee");
    assert_eq!(row["reason"], "Ticket T-8");
    assert_eq!(row["can_end"], true);
    let left = row["seconds_left"].as_i64().unwrap();
    assert!(left > 0 && left <= 30 * 60, "{left}");
    let id = row["id"].as_i64().unwrap();

    // A support engineer and the session on behalf itself may not look.
    let (status, body) = live(&app, &sam).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_overseer"))
    );
    let (status, _) = live(&app, &on_behalf).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .api(
            Method::DELETE,
            &format!("/api/v1/impersonations/{id}"),
            Some(&sam),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_overseer"))
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL AND actor_id IS NOT NULL")
            .await,
        1
    );

    let (status, _) = app
        .api(
            Method::DELETE,
            &format!("/api/v1/impersonations/{id}"),
            Some(&eve),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Ending it again finds nothing live.
    let (status, body) = app
        .api(
            Method::DELETE,
            &format!("/api/v1/impersonations/{id}"),
            Some(&eve),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (_, body) = live(&app, &eve).await;
    assert_eq!(body["impersonations"].as_array().unwrap().len(), 0);
    let (_, body) = app
        .api(
            Method::GET,
            "/api/v1/impersonations?history=true",
            Some(&eve),
            None,
        )
        .await;
    assert_eq!(body["impersonations"][0]["id"], id);
    assert_eq!(body["impersonations"][0]["end_reason"], "revoked");

    // The actor's next request acts as no one: a change is refused, and the actor's
    // own token comes back.
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/orders",
            Some(&on_behalf),
            Some(json!({ "product_id": 1, "quantity": 1 })),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("on_behalf_ended")),
        "{body}"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 0);
    // The record names both: the actor whose session ended and the editor who ended it.
    let eve_id = app
        .scalar("SELECT id FROM members WHERE email_key = 'eve@example.com'")
        .await;
    let sam_id = app
        .scalar("SELECT id FROM members WHERE email_key = 'sam@example.com'")
        .await;
    let details = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_end' AND actor_id = {sam_id} \
             AND subject_id = {ann} AND session_id = {id} AND details LIKE '%\"by\":{eve_id}%'"
        ))
        .await;
    assert_eq!(details, 1);
    // The page lists them for an editor.
    let browser = app.signed_in("eve@example.com").await;
    let page = browser
        .get(app.url("/admin/impersonations"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Sessions on behalf"));
    app.finish().await;
}

async fn only_a_super_user_ends_them_all_and_none_survives(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("root@example.com", "Root", Role::SuperUser)
        .await;
    app.create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let root = app.api_login("root@example.com").await;
    let eve = app.api_login("eve@example.com").await;
    let mut tokens = Vec::new();
    for i in 0..4 {
        let support = format!("s{i}@example.com");
        app.create_member(&support, &format!("Support {i}"), Role::Support)
            .await;
        let member = app
            .create_member(&format!("m{i}@example.com"), &format!("Member {i}"), Role::Member)
            .await;
        let token = app.api_login(&support).await;
        tokens.push(alias_login(&app, &token, member).await);
    }
    let (status, body) = app
        .post(
            &app.signed_in("eve@example.com").await,
            "/api/oversight/end-all",
            &[],
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("needs_super_user"))
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL AND actor_id IS NOT NULL")
            .await,
        4
    );
    let _ = eve;

    // Every live one ends, each end recorded once, with one record of the whole.
    let admin = app.signed_in("root@example.com").await;
    let (status, body) = app.post(&admin, "/api/oversight/end-all", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!(4));
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL AND actor_id IS NOT NULL")
            .await,
        0
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_end'")
            .await,
        4
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'impersonations_ended_all'")
            .await,
        1
    );
    for token in tokens {
        // The session on behalf is over: its token acts as no one.
        let (status, body) = app.api(Method::GET, "/api/v1/profile", Some(&token), None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("on_behalf_ended")),
            "{body}"
        );
    }
    let (_, body) = live(&app, &root).await;
    assert_eq!(body["impersonations"].as_array().unwrap().len(), 0);
    app.finish().await;
}

async fn an_editor_cannot_end_a_super_users_session_on_behalf(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("root@example.com", "Root", Role::SuperUser)
        .await;
    app.create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let root = app.api_login("root@example.com").await;
    let eve = app.api_login("eve@example.com").await;
    alias_login(&app, &root, ann).await;
    let (_, body) = live(&app, &eve).await;
    let row = &body["impersonations"][0];
    assert_eq!(row["can_end"], false, "{body}");
    let id = row["id"].as_i64().unwrap();
    let (status, body) = app
        .api(
            Method::DELETE,
            &format!("/api/v1/impersonations/{id}"),
            Some(&eve),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("session_outranks_you"))
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL AND actor_id IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'impersonation_end_refused'")
            .await,
        1,
        "the refusal is recorded"
    );
    // Nor through the blade's Sessions for the member: it is not shown, ending it by its
    // ID is refused, and ending all of Ann's sessions leaves it.
    let browser = app.signed_in("eve@example.com").await;
    let ann_id = ann.to_string();
    let (status, body) = app
        .post(
            &browser,
            "/api/oversight/member-sessions",
            &[("member_id", &ann_id)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.as_array().unwrap().iter().all(|row| row["id"] != id),
        "{body}"
    );
    let (status, body) = app
        .post(
            &browser,
            "/api/oversight/revoke-member-sessions",
            &[("member_id", &ann_id), ("session_id", &id.to_string())],
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("session_outranks_you"))
    );
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'member_sessions_revoke_refused' \
             AND details LIKE '%session_outranks_you%'"
        )
        .await,
        1,
        "that refusal is recorded too"
    );
    let (status, body) = app
        .post(
            &browser,
            "/api/oversight/revoke-member-sessions",
            &[("member_id", &ann_id), ("session_id", "0")],
        )
        .await;
    assert_eq!((status, body.clone()), (StatusCode::OK, json!(0)), "{body}");
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM sessions WHERE id = {id} AND ended_at IS NULL"
        ))
        .await,
        1,
        "the super user's session on behalf is still live"
    );
    app.finish().await;
}

async fn revoking_a_members_sessions_ends_those_on_their_behalf_too(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    app.create_member("sam@example.com", "Sam Support", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let _ann_browser = app.signed_in("ann@example.com").await;
    let _ann_phone = app.signed_in("ann@example.com").await;
    let sam = app.api_login("sam@example.com").await;
    alias_login(&app, &sam, ann).await;
    let eve = app.signed_in("eve@example.com").await;
    let ann_id = ann.to_string();

    let (status, body) = app
        .post(&eve, "/api/oversight/member-sessions", &[("member_id", &ann_id)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body.as_array().unwrap();
    assert_eq!(rows.len(), 3, "two own and one on behalf: {body}");
    assert_eq!(
        rows.iter().filter(|r| r["on_behalf_by"] == "Sam Support").count(),
        1
    );

    // A support engineer may not; nor may anyone end sessions of a higher rank.
    let sam_browser = app.signed_in("sam@example.com").await;
    let (status, body) = app
        .post(
            &sam_browser,
            "/api/oversight/revoke-member-sessions",
            &[("member_id", &ann_id), ("session_id", "0")],
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_overseer"))
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM sessions WHERE member_id = {ann} AND ended_at IS NULL"
        ))
        .await,
        3
    );

    // One, then all.
    let one = rows.iter().find(|r| r["on_behalf_by"].is_null()).unwrap()["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let (status, body) = app
        .post(
            &eve,
            "/api/oversight/revoke-member-sessions",
            &[("member_id", &ann_id), ("session_id", &one)],
        )
        .await;
    assert_eq!((status, body.clone()), (StatusCode::OK, json!(1)), "{body}");
    let (status, body) = app
        .post(
            &eve,
            "/api/oversight/revoke-member-sessions",
            &[("member_id", &ann_id), ("session_id", &one)],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .post(
            &eve,
            "/api/oversight/revoke-member-sessions",
            &[("member_id", &ann_id), ("session_id", "0")],
        )
        .await;
    assert_eq!((status, body.clone()), (StatusCode::OK, json!(2)), "{body}");
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM sessions WHERE member_id = {ann} AND ended_at IS NULL"
        ))
        .await,
        0
    );
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_end' AND details LIKE '%revoked%'"
        )
        .await,
        1
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'member_sessions_revoked'")
            .await,
        2
    );
    // The editor's own session is untouched.
    assert_eq!(app.whoami(&eve).await.as_deref(), Some("eve@example.com"));
    app.finish().await;
}

async fn a_session_cookie_sent_twice_is_used_by_neither(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let response = app.login(&app.client(), "ann@example.com", PASSWORD).await;
    let token = crate::common::token_of(&session_cookie(&response).unwrap());
    // As if a sibling subdomain had planted its own (a fixation attempt).
    let planted = "0".repeat(43);
    let response = app
        .bare_client()
        .post(app.url("/api/whoami"))
        .header(
            header::COOKIE,
            format!("behalf_session={token}; behalf_session={planted}"),
        )
        .header(header::HOST, "app.example:3000")
        .send()
        .await
        .unwrap();
    let cleared: Vec<String> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .filter(|v| v.starts_with("behalf_session=;"))
        .collect();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_null(), "signed in as no one: {body}");
    // Both cleared: the host-only one, and one planted with Domain= or another path.
    assert!(cleared.iter().all(|c| c.contains("Max-Age=0")));
    assert!(
        cleared
            .iter()
            .any(|c| !c.contains("Domain=") && !c.contains("Path=/a")),
        "{cleared:?}"
    );
    assert!(
        cleared.iter().any(|c| c.contains("Domain=app.example")),
        "{cleared:?}"
    );
    // Alone, the real cookie still works: the duplicate ended nothing.
    assert_eq!(
        app.whoami_with_token(&token).await.as_deref(),
        Some("ann@example.com")
    );
    app.finish().await;
}

async fn over_https_the_cookie_is_host_prefixed_and_hsts_is_sent(backend: Backend) {
    let mut options = Options::default();
    options.settings = Settings {
        public_url: Some("https://behalf.example".to_string()),
        ..options.settings
    };
    let app = TestApp::spawn_with(backend, options).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let response = app
        .bare_client()
        .post(app.url("/api/login"))
        .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get(header::STRICT_TRANSPORT_SECURITY)
            .and_then(|v| v.to_str().ok()),
        Some("max-age=63072000")
    );
    let cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-behalf_session="))
        .expect("the __Host- cookie")
        .to_string();
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"),
        "{cookie}"
    );
    let token = cookie["__Host-behalf_session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // Only that name is read; the plain name is ignored over https.
    let who = |name: &'static str, token: String| {
        let client = app.bare_client();
        let url = app.url("/api/whoami");
        async move {
            let response = client
                .post(url)
                .header(header::COOKIE, format!("{name}={token}"))
                .send()
                .await
                .unwrap();
            json_of(response).await.1
        }
    };
    assert_eq!(
        who("__Host-behalf_session", token.clone()).await["email"],
        "ann@example.com"
    );
    assert!(who("behalf_session", token).await.is_null());
    // A page's policy allows its scripts by nonce only, and the nonce is the page's.
    let page = app.bare_client().get(app.url("/login")).send().await.unwrap();
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    let html = page.text().await.unwrap();
    let script_src = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap();
    assert!(!script_src.contains("unsafe-inline"), "{csp}");
    for directive in [
        "'wasm-unsafe-eval'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(directive), "{csp} lacks {directive}");
    }
    let nonce = script_src
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(nonce.len() >= 16, "{nonce}");
    let inline = html.matches("<script").count();
    assert!(inline > 0);
    assert_eq!(
        html.matches(&format!("nonce=\"{nonce}\"")).count(),
        html.matches("<script").count(),
        "every script carries this page's nonce"
    );
    let again = app.bare_client().get(app.url("/login")).send().await.unwrap();
    let other = again.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(csp, other, "a new nonce per page");
    app.finish().await;
}

async fn repeated_refusals_are_folded_into_one_record_with_a_count(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("root@example.com", "Root", Role::SuperUser)
        .await;
    app.create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let root = app.api_login("root@example.com").await;
    let eve = app.api_login("eve@example.com").await;
    alias_login(&app, &root, ann).await;
    let id = app
        .scalar("SELECT id FROM sessions WHERE actor_id IS NOT NULL")
        .await;
    let before = app.scalar("SELECT COUNT(*) FROM audit_events").await;
    // 40 identical refused requests at once.
    let path = format!("/api/v1/impersonations/{id}");
    let answers =
        futures_util::future::join_all((0..40).map(|_| app.api(Method::DELETE, &path, Some(&eve), None)))
            .await;
    assert!(answers.iter().all(|(status, _)| *status == StatusCode::FORBIDDEN));
    let refused = "SELECT COUNT(*) FROM audit_events WHERE action = 'impersonation_end_refused'";
    assert_eq!(app.scalar(refused).await, 1, "one record for the minute");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_events").await, before + 1);
    // When the minute is over, the repeats are written as one record with their count.
    app.clock.advance(app::audit_writer::FOLD_WINDOW);
    let written = app::audit_writer::flush_folded(&app.state.db, &app.state.refusals, app.clock.now(), false)
        .await
        .unwrap();
    assert_eq!(written, 1);
    assert_eq!(app.scalar(refused).await, 2);
    assert_eq!(
        app.scalar(&format!("{refused} AND details LIKE '%\"repeats\":39%'"))
            .await,
        1,
        "the count of the 39 repeats"
    );
    // A new minute starts over: the next refusal is written at once.
    let (status, _) = app.api(Method::DELETE, &path, Some(&eve), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(app.scalar(refused).await, 3);
    assert!(matches!(
        app::audit::verify::verify(&app.state.db).await.unwrap(),
        app::audit::verify::Verdict::Intact { .. }
    ));
    app.finish().await;
}
