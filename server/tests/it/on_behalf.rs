//! Step 3 over HTTP: starting and leaving a session on behalf, every refusal, the
//! rule re-checked on every request, expiry, and what the audit trail says.

use crate::common::{json_of, session_cookie, token_of, Backend, Options, TestApp, PASSWORD};
use app::{clock::MINUTE, members::Role, state::Settings};
use reqwest::{Client, StatusCode};
use serde_json::Value;

on_both_databases!(
    start_and_leave_change_the_cookie_and_are_recorded,
    every_refusal_returns_its_code_and_changes_nothing,
    five_wrong_passwords_lock_login_on_behalf,
    the_rule_is_checked_again_on_every_request,
    a_session_on_behalf_expires_and_the_actor_comes_back,
    the_member_keeps_their_own_sessions_and_rights,
    on_behalf_the_members_permissions_apply,
    signing_out_on_behalf_ends_both_sessions,
    every_page_on_behalf_carries_the_banner_from_the_first_byte,
    the_login_as_menu_lists_explicit_grants_the_rule_allows,
    members_see_who_logged_in_on_their_behalf_and_only_that,
    strangers_are_refused_and_nothing_changes,
);

/// A server function call with the session cookie it set, if any.
async fn post(
    app: &TestApp,
    client: &Client,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value, Option<String>) {
    let response = app.post_form(client, path, form).await;
    let cookie = session_cookie(&response);
    let (status, body) = json_of(response).await;
    (status, body, cookie)
}

async fn signed_in(app: &TestApp, email: &str) -> (Client, String) {
    let client = app.client();
    let response = app.login(&client, email, PASSWORD).await;
    assert!(response.status().is_success());
    let token = token_of(&session_cookie(&response).expect("a session cookie"));
    (client, token)
}

async fn start(
    app: &TestApp,
    client: &Client,
    member: i64,
    password: &str,
) -> (StatusCode, Value, Option<String>) {
    post(
        app,
        client,
        "/api/on-behalf/start",
        &[
            ("member_id", &member.to_string()),
            ("password", password),
            ("reason", "Ticket T-42"),
            ("mode", "act"),
        ],
    )
    .await
}

async fn whoami(app: &TestApp, client: &Client) -> Value {
    let (status, body, _) = post(app, client, "/api/whoami", &[]).await;
    assert_eq!(status, StatusCode::OK);
    body
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.scalar(sql).await
}

async fn start_and_leave_change_the_cookie_and_are_recorded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sam = app
        .create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let (client, own_token) = signed_in(&app, "sam@example.com").await;

    let (status, body, cookie) = start(&app, &client, ann, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "/");
    let on_behalf_token = token_of(&cookie.expect("a new cookie"));
    assert_ne!(on_behalf_token, own_token);
    // The admin's previous token is refused; the new one is Ann, with Sam behind her.
    assert_eq!(app.whoami_with_token(&own_token).await, None);
    let me = whoami(&app, &client).await;
    assert_eq!(me["email"], "ann@example.com");
    assert_eq!(me["on_behalf"]["actor_name"], "Sam Ortiz");
    assert_eq!(me["on_behalf"]["actor_id"], sam);
    let session_id = me["on_behalf"]["session_id"].as_i64().unwrap();

    let (actor, subject, session, details): (Option<i64>, Option<i64>, Option<i64>, String) = with_db!(&app.state.db, pool => {
        sqlx::query_as("SELECT actor_id, subject_id, session_id, details FROM audit_events WHERE action = 'on_behalf_start'")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(
        (actor, subject, session),
        (Some(sam), Some(ann), Some(session_id))
    );
    let details: Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["reason"], "Ticket T-42");
    assert_eq!(details["grant"], "role");
    assert_eq!(
        details["expires_at"].as_i64().unwrap() - details["started_at"].as_i64().unwrap(),
        30 * MINUTE
    );

    let (status, body, cookie) = post(&app, &client, "/api/on-behalf/leave", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, format!("/admin/members/{ann}"));
    let back_token = token_of(&cookie.expect("a fresh cookie for the admin"));
    assert!(back_token != own_token && back_token != on_behalf_token);
    assert_eq!(app.whoami_with_token(&on_behalf_token).await, None);
    assert_eq!(app.whoami_with_token(&own_token).await, None);
    let me = whoami(&app, &client).await;
    assert_eq!(me["email"], "sam@example.com");
    assert!(me["on_behalf"].is_null());

    let (actor, subject, session, details): (Option<i64>, Option<i64>, Option<i64>, String) = with_db!(&app.state.db, pool => {
        sqlx::query_as("SELECT actor_id, subject_id, session_id, details FROM audit_events WHERE action = 'on_behalf_end'")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(
        (actor, subject, session),
        (Some(sam), Some(ann), Some(session_id))
    );
    assert_eq!(serde_json::from_str::<Value>(&details).unwrap()["reason"], "left");
    assert_eq!(
        count(&app, &format!("SELECT COUNT(*) FROM sessions WHERE id = {session_id} AND end_reason = 'left' AND token_hash IS NULL")).await,
        1
    );
    // Leaving twice is refused: there is nothing to leave.
    let (status, _, _) = post(&app, &client, "/api/on-behalf/leave", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.finish().await;
}

async fn every_refusal_returns_its_code_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sam = app
        .create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let pat = app
        .create_member("pat@example.com", "Pat Support", Role::Support)
        .await;
    let eve = app
        .create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let bob = app
        .create_member("bob@example.com", "Bob Member", Role::Member)
        .await;
    let dan = app
        .create_member("dan@example.com", "Dan Disabled", Role::Member)
        .await;
    let del = app
        .create_member("del@example.com", "Del Deleted", Role::Member)
        .await;
    app.execute(&format!(
        "UPDATE members SET login_enabled = FALSE WHERE id = {dan}"
    ))
    .await;
    app.execute(&format!("UPDATE members SET deleted_at = 1 WHERE id = {del}"))
        .await;
    // Sam's permission names Ann: an explicit grant to a higher rank.
    let now = app.clock.now();
    app.execute(&format!(
        "INSERT INTO proxy_permissions (member_id, actor_id, created_at) VALUES ({sam}, {ann}, {now})"
    ))
    .await;
    let _ = (pat, eve, bob);

    let cases: Vec<(&str, i64, &str, StatusCode)> = vec![
        ("sam@example.com", sam, "self", StatusCode::FORBIDDEN),
        ("sam@example.com", pat, "rank_not_lower", StatusCode::FORBIDDEN),
        ("sam@example.com", eve, "rank_not_lower", StatusCode::FORBIDDEN),
        (
            "sam@example.com",
            dan,
            "target_not_authorized_to_log_in",
            StatusCode::FORBIDDEN,
        ),
        ("sam@example.com", del, "target_deleted", StatusCode::FORBIDDEN),
        (
            "sam@example.com",
            999_999,
            "target_not_found",
            StatusCode::FORBIDDEN,
        ),
        (
            "ann@example.com",
            sam,
            "explicit_grant_to_higher_rank",
            StatusCode::FORBIDDEN,
        ),
        ("ann@example.com", bob, "no_permission", StatusCode::FORBIDDEN),
        // Ann can reach nobody (no role grant, no grant naming her beyond Sam's): she
        // learns nothing about a member's state, not even whether the ID exists.
        ("ann@example.com", dan, "no_permission", StatusCode::FORBIDDEN),
        ("ann@example.com", del, "no_permission", StatusCode::FORBIDDEN),
        ("ann@example.com", 999_999, "no_permission", StatusCode::FORBIDDEN),
    ];
    for (email, target, code, status_expected) in cases {
        let (client, token) = signed_in(&app, email).await;
        let sessions = count(&app, "SELECT COUNT(*) FROM sessions").await;
        let denials = count(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_denied'",
        )
        .await;
        let (status, body, cookie) = start(&app, &client, target, PASSWORD).await;
        assert_eq!(status, status_expected, "{email} → {target}: {body}");
        assert_eq!(error_code(&body), code, "{email} → {target}: {body}");
        assert!(cookie.is_none(), "no cookie on a refusal");
        assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, sessions);
        assert_eq!(app.whoami_with_token(&token).await.as_deref(), Some(email));
        assert_eq!(
            count(
                &app,
                "SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_denied'"
            )
            .await,
            denials + 1,
            "the refusal is recorded"
        );
        // The window itself refuses too.
        let (status, body, _) = post(
            &app,
            &client,
            "/api/on-behalf/preview",
            &[("member_id", &target.to_string())],
        )
        .await;
        assert_eq!((status, error_code(&body)), (status_expected, code.to_string()));
    }

    // Wrong password: a clear message, nothing switched.
    let (client, token) = signed_in(&app, "sam@example.com").await;
    let sessions = count(&app, "SELECT COUNT(*) FROM sessions").await;
    let (status, body, cookie) = start(&app, &client, ann, "not my password").await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::FORBIDDEN, "wrong_password")
    );
    assert!(cookie.is_none());
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, sessions);
    assert_eq!(
        app.whoami_with_token(&token).await.as_deref(),
        Some("sam@example.com")
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_reauth_failed'"
        )
        .await,
        1
    );
    // A missing reason is a validation error next to its field.
    let (status, body, _) = post(
        &app,
        &client,
        "/api/on-behalf/start",
        &[
            ("member_id", &ann.to_string()),
            ("password", PASSWORD),
            ("reason", " x "),
            ("mode", "act"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "reason");

    // Nesting: on behalf of Ann, Sam cannot start another.
    let (status, body, _) = start(&app, &client, ann, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sessions = count(&app, "SELECT COUNT(*) FROM sessions").await;
    let (status, body, cookie) = start(&app, &client, bob, PASSWORD).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::FORBIDDEN, "nested")
    );
    assert!(cookie.is_none());
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, sessions);
    assert_eq!(whoami(&app, &client).await["email"], "ann@example.com");
    app.finish().await;
}

/// The stable code of an error as the server function answers it.
fn error_code(body: &Value) -> String {
    body["error"]["code"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{body}"))
}

async fn five_wrong_passwords_lock_login_on_behalf(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let (client, _) = signed_in(&app, "sam@example.com").await;
    for _ in 0..5 {
        let (status, body, _) = start(&app, &client, ann, "wrong").await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (StatusCode::FORBIDDEN, "wrong_password")
        );
        app.clock.advance(MINUTE);
    }
    // Even the right password is refused now, without being checked.
    let (status, body, cookie) = start(&app, &client, ann, PASSWORD).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "locked_out")
    );
    assert!(cookie.is_none());
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM sessions WHERE actor_id IS NOT NULL").await,
        0
    );
    // Fifteen minutes after the last failure it opens again.
    app.clock.advance(14 * MINUTE);
    let (status, _, _) = start(&app, &client, ann, PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    app.finish().await;
}

async fn the_rule_is_checked_again_on_every_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sam = app
        .create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let bob = app
        .create_member("bob@example.com", "Bob Member", Role::Member)
        .await;
    let now = app.clock.now();
    // Ann's permission names Bob (member to member: an explicit grant).
    app.execute(&format!(
        "INSERT INTO proxy_permissions (member_id, actor_id, created_at) VALUES ({ann}, {bob}, {now})"
    ))
    .await;

    let changes: Vec<(&str, i64, String, String)> = vec![
        (
            "sam@example.com",
            ann,
            format!("UPDATE members SET role = 'member' WHERE id = {sam}"),
            format!("UPDATE members SET role = 'support' WHERE id = {sam}"),
        ),
        (
            "bob@example.com",
            ann,
            format!("DELETE FROM proxy_permissions WHERE member_id = {ann} AND actor_id = {bob}"),
            format!("INSERT INTO proxy_permissions (member_id, actor_id, created_at) VALUES ({ann}, {bob}, {now})"),
        ),
        (
            "sam@example.com",
            ann,
            format!("UPDATE members SET login_enabled = FALSE WHERE id = {ann}"),
            format!("UPDATE members SET login_enabled = TRUE WHERE id = {ann}"),
        ),
    ];
    for (email, target, change, undo) in changes {
        let (client, _) = signed_in(&app, email).await;
        let (status, body, _) = start(&app, &client, target, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(whoami(&app, &client).await["email"], "ann@example.com");
        app.execute(&change).await;
        // The very next request ends it and gives the actor their own session back.
        let response = client.post(app.url("/api/whoami")).send().await.unwrap();
        assert!(
            session_cookie(&response).is_some(),
            "a fresh cookie for the actor ({change})"
        );
        let me: Value = response.json().await.unwrap();
        assert_eq!(me["email"], email, "{change}");
        assert!(me["on_behalf"].is_null());
        assert_eq!(
            count(
                &app,
                "SELECT COUNT(*) FROM sessions WHERE actor_id IS NOT NULL AND ended_at IS NULL"
            )
            .await,
            0,
            "{change}"
        );
        let reason: String = with_db!(&app.state.db, pool => {
            let (details,): (String,) = sqlx::query_as(
                "SELECT details FROM audit_events WHERE action = 'on_behalf_end' ORDER BY id DESC LIMIT 1",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            details
        });
        assert_eq!(
            serde_json::from_str::<Value>(&reason).unwrap()["reason"],
            "revoked",
            "{change}"
        );
        app.execute(&undo).await;
    }

    // Revoked elsewhere (the row ended by someone else): the same at the next request.
    let (client, _) = signed_in(&app, "sam@example.com").await;
    start(&app, &client, ann, PASSWORD).await;
    app.execute("UPDATE sessions SET ended_at = 1, end_reason = 'revoked' WHERE actor_id IS NOT NULL AND ended_at IS NULL")
        .await;
    assert_eq!(whoami(&app, &client).await["email"], "sam@example.com");
    app.finish().await;
}

async fn a_session_on_behalf_expires_and_the_actor_comes_back(backend: Backend) {
    let settings = Settings {
        session_idle_timeout: 20 * MINUTE,
        on_behalf_max_duration: 30 * MINUTE,
        ..Settings::default()
    };
    let app = TestApp::spawn_with(
        backend,
        Options {
            settings,
            ..Options::default()
        },
    )
    .await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let (client, _) = signed_in(&app, "sam@example.com").await;
    start(&app, &client, ann, PASSWORD).await;
    // Active on behalf: both sessions stay alive…
    app.clock.advance(15 * MINUTE);
    assert_eq!(whoami(&app, &client).await["email"], "ann@example.com");
    // …until the maximum duration passes.
    app.clock.advance(16 * MINUTE);
    let response = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(session_cookie(&response).is_some());
    let html = response.text().await.unwrap();
    assert!(html.contains("its time was up"), "the page says why");
    assert!(!html.contains("Impersonation banner"));
    assert_eq!(whoami(&app, &client).await["email"], "sam@example.com");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM sessions WHERE actor_id IS NOT NULL AND end_reason = 'expired'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_end' AND details LIKE '%expired%'"
        )
        .await,
        1
    );

    // Idle past both timeouts: the actor's own session is over too; sign in again.
    let (status, body, _) = start(&app, &client, ann, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.clock.advance(21 * MINUTE);
    // (leptos_axum redirects a page only for a browser, which asks for HTML.)
    let response = client
        .get(app.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("behalf_notice=on_behalf_expired")),
        "{cookies:?}"
    );
    assert!(whoami(&app, &client).await.is_null());
    let login = client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("its time was up"), "the sign-in page says why");
    app.finish().await;
}

async fn the_member_keeps_their_own_sessions_and_rights(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("root@example.com", "Rita Root", Role::SuperUser)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let (ann_client, ann_token) = signed_in(&app, "ann@example.com").await;
    let (client, _) = signed_in(&app, "root@example.com").await;
    start(&app, &client, ann, PASSWORD).await;
    // Ann's own session is untouched, and a new sign-in of hers is hers alone.
    assert_eq!(
        app.whoami_with_token(&ann_token).await.as_deref(),
        Some("ann@example.com")
    );
    let (second, _) = signed_in(&app, "ann@example.com").await;
    let me = whoami(&app, &second).await;
    assert!(me["on_behalf"].is_null());
    assert_eq!(me["admin_access"], false);
    let (status, _, _) = post(&app, &second, "/api/members/list", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // And the session on behalf goes on.
    assert_eq!(
        whoami(&app, &client).await["on_behalf"]["actor_name"],
        "Rita Root"
    );
    let _ = ann_client;
    app.finish().await;
}

async fn on_behalf_the_members_permissions_apply(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("root@example.com", "Rita Root", Role::SuperUser)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let (client, _) = signed_in(&app, "root@example.com").await;
    let (status, _, _) = post(&app, &client, "/api/members/get", &[("id", &ann.to_string())]).await;
    assert_eq!(status, StatusCode::OK);
    start(&app, &client, ann, PASSWORD).await;
    let (status, _, _) = post(&app, &client, "/api/members/get", &[("id", &ann.to_string())]).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "Ann has no admin access, whatever Rita has"
    );
    let page = client.get(app.url("/admin/members")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    app.finish().await;
}

async fn signing_out_on_behalf_ends_both_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let (client, _) = signed_in(&app, "sam@example.com").await;
    start(&app, &client, ann, PASSWORD).await;
    let response = app.logout(&client).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(whoami(&app, &client).await.is_null());
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL").await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM sessions WHERE end_reason = 'signed_out'"
        )
        .await,
        2
    );
    app.finish().await;
}

async fn every_page_on_behalf_carries_the_banner_from_the_first_byte(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let (client, _) = signed_in(&app, "sam@example.com").await;
    let page = client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Impersonation banner"));
    start(&app, &client, ann, PASSWORD).await;
    for path in ["/", "/no-such-page", "/admin/members"] {
        let html = client
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains(r#"aria-label="Impersonation banner""#), "{path}");
        assert!(
            html.contains("<strong>Ann Lee</strong>") && html.contains("<strong>Sam Ortiz</strong>"),
            "{path}"
        );
        assert!(html.contains("Leave impersonation"), "{path}");
        assert!(html.contains("<title>[On behalf]"), "{path}: the title says so");
    }
    app.finish().await;
}

async fn the_login_as_menu_lists_explicit_grants_the_rule_allows(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sam = app
        .create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let zoe = app
        .create_member("zoe@example.com", "Zoe Member", Role::Member)
        .await;
    let amy = app
        .create_member("amy@example.com", "Amy Member", Role::Member)
        .await;
    let pat = app
        .create_member("pat@example.com", "Pat Support", Role::Support)
        .await;
    let eve = app
        .create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let dan = app
        .create_member("dan@example.com", "Dan Disabled", Role::Member)
        .await;
    app.create_member("nog@example.com", "No Grant", Role::Member)
        .await;
    app.execute(&format!(
        "UPDATE members SET login_enabled = FALSE WHERE id = {dan}"
    ))
    .await;
    let now = app.clock.now();
    for member in [zoe, amy, pat, eve, dan] {
        app.execute(&format!(
            "INSERT INTO proxy_permissions (member_id, actor_id, created_at) VALUES ({member}, {sam}, {now})"
        ))
        .await;
    }
    // As in Kuroco, the menu lists members with admin access only (Zoe has none; she
    // is reached from her blade). Amy is a member given admin access.
    app.execute(&format!(
        "UPDATE members SET admin_access = TRUE WHERE id = {amy}"
    ))
    .await;
    // Pat's groups come with the entry (one person's accounts per group differ by them).
    app.execute(&format!(
        "INSERT INTO groups (name, name_key, member_count, created_at, updated_at) VALUES ('Acme', 'acme', 1, {now}, {now})"
    ))
    .await;
    app.execute(&format!(
        "INSERT INTO group_members (group_id, member_id, added_at) SELECT id, {pat}, {now} FROM groups WHERE name = 'Acme'"
    ))
    .await;
    let (client, _) = signed_in(&app, "sam@example.com").await;
    let (status, body, _) = post(&app, &client, "/api/on-behalf/candidates", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["display_name"].as_str().unwrap())
        .collect();
    // By name; an equal rank by explicit grant is allowed, a higher one, a disabled
    // member and a member without admin access are not.
    assert_eq!(names, ["Amy Member", "Pat Support"]);
    assert_eq!(body[1]["groups"], serde_json::json!(["Acme"]));
    assert_eq!(body[0]["groups"], serde_json::json!([]));
    // Nobody without a session.
    let (status, _, _) = post(&app, &app.client(), "/api/on-behalf/candidates", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.finish().await;
}

async fn members_see_who_logged_in_on_their_behalf_and_only_that(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    app.create_member("bob@example.com", "Bob Member", Role::Member)
        .await;
    let (client, _) = signed_in(&app, "sam@example.com").await;
    start(&app, &client, ann, PASSWORD).await;
    app.clock.advance(7 * MINUTE);
    let (status, _, _) = post(&app, &client, "/api/on-behalf/leave", &[]).await;
    assert_eq!(status, StatusCode::OK);

    let (ann_client, _) = signed_in(&app, "ann@example.com").await;
    let (status, body, _) = post(&app, &ann_client, "/api/account/access-history", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{body}");
    assert_eq!(rows[0]["actor_name"], "Sam Ortiz");
    assert_eq!(rows[0]["reason"], "Ticket T-42");
    assert_eq!(rows[0]["end_reason"], "left");
    assert_eq!(rows[0]["minutes"], 7);
    let page = ann_client
        .get(app.url("/account/access-history"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sam Ortiz") && page.contains("Ticket T-42"));

    let (bob_client, _) = signed_in(&app, "bob@example.com").await;
    let (_, body, _) = post(&app, &bob_client, "/api/account/access-history", &[]).await;
    assert_eq!(body, serde_json::json!([]), "Bob sees nothing of Ann's");
    let (status, _, _) = post(&app, &app.client(), "/api/account/access-history", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.finish().await;
}

async fn strangers_are_refused_and_nothing_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await
        .to_string();
    let stranger = app.client();
    let sessions = count(&app, "SELECT COUNT(*) FROM sessions").await;
    for (path, form) in [
        ("/api/on-behalf/preview", vec![("member_id", ann.as_str())]),
        (
            "/api/on-behalf/start",
            vec![
                ("member_id", ann.as_str()),
                ("password", PASSWORD),
                ("reason", "Ticket 1"),
                ("mode", "act"),
            ],
        ),
        ("/api/on-behalf/leave", vec![]),
        ("/api/on-behalf/candidates", vec![]),
        ("/api/account/access-history", vec![]),
    ] {
        let (status, body, cookie) = post(&app, &stranger, path, &form).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert!(cookie.is_none(), "{path}");
    }
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, sessions);
    app.finish().await;
}
