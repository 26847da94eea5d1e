//! Step 12 over HTTP: a member who asks first, member grants (creation, modes, any
//! support engineer, limits, expiry with the injectable clock, revocation ending the
//! sessions they allowed), `--consent required`, and access requests (approve, deny,
//! expire, one pending at a time under parallel requests). Live presence, **End it
//! now** and mail are in `consent_live`.

use app::{clock::MINUTE, members::Role, state::Settings};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{
    common::{Backend, Options, TestApp, PASSWORD},
    view_only::{code, on_behalf},
};

on_both_databases!(
    asking_first_needs_a_grant_which_caps_the_mode,
    a_grant_never_overcomes_the_rest_of_the_rule,
    revoking_a_grant_ends_the_sessions_it_allowed,
    a_grant_expires_with_the_clock,
    consent_required_makes_everyone_ask,
    requests_are_approved_or_denied_once,
    requests_expire_after_a_day_and_are_never_two_at_once,
    asking_first_holds_against_one_click_links_and_self_written_permissions,
    requests_are_for_members_who_ask_and_not_again_right_after_a_denial,
    asking_first_ends_at_once_the_sessions_it_no_longer_allows,
);

/// Ann (a member), Sam (support), Eve (editor), Mo (a member, no admin access).
pub struct World {
    pub ann: i64,
    pub sam: i64,
    pub eve: i64,
    pub mo: i64,
}

pub async fn world(app: &TestApp) -> World {
    World {
        ann: app
            .create_member("ann@example.com", "Ann Member", Role::Member)
            .await,
        sam: app
            .create_member("sam@example.com", "Sid Support", Role::Support)
            .await,
        eve: app
            .create_member("eve@example.com", "Eve Editor", Role::Editor)
            .await,
        mo: app
            .create_member("mo@example.com", "Mo Member", Role::Member)
            .await,
    }
}

/// An API call as `email` (signed in through the API).
pub async fn call(
    app: &TestApp,
    email: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let token = app.api_login(email).await;
    app.api(method, path, Some(&token), body).await
}

/// `alias_login` as `actor` for `member` in `mode`: the status and the answer.
pub async fn start(app: &TestApp, actor: &str, member: i64, mode: &str) -> (StatusCode, Value) {
    crate::view_only::alias_login(app, actor, member, Some(mode)).await
}

pub async fn ask_first(app: &TestApp, member: &str) {
    let body = json!({ "role_grants": "ask" });
    let (status, answer) = call(
        app,
        member,
        Method::PUT,
        "/api/v1/profile/on_behalf_settings",
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["role_grants"], "ask");
}

pub async fn grant(
    app: &TestApp,
    member: &str,
    grantee: Option<i64>,
    mode: &str,
    duration: &str,
) -> (StatusCode, Value) {
    let body = json!({ "grantee_id": grantee, "mode": mode, "duration": duration });
    call(
        app,
        member,
        Method::POST,
        "/api/v1/profile/access_grants",
        Some(body),
    )
    .await
}

async fn actions(app: &TestApp, action: &str) -> i64 {
    app.scalar(&format!(
        "SELECT COUNT(*) FROM audit_events WHERE action = '{action}'"
    ))
    .await
}

async fn asking_first_needs_a_grant_which_caps_the_mode(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let w = world(&app).await;
    // By default the role grant lets Sid in, as before.
    let (status, settings) = call(
        &app,
        "ann@example.com",
        Method::GET,
        "/api/v1/profile/on_behalf_settings",
        None,
    )
    .await;
    assert_eq!(
        (status, settings["role_grants"].clone()),
        (StatusCode::OK, json!("allowed"))
    );
    assert_eq!(
        start(&app, "sam@example.com", w.ann, "view").await.0,
        StatusCode::OK
    );
    ask_first(&app, "ann@example.com").await;
    assert_eq!(actions(&app, "consent_setting_changed").await, 1);
    let (status, body) = start(&app, "sam@example.com", w.ann, "view").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "consent_required".into())
    );
    // A grant to view for Sid by name.
    let (status, created) = grant(&app, "ann@example.com", Some(w.sam), "view", "1h").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["grant"]["grantee_id"], json!(w.sam));
    assert_eq!(created["grant"]["mode"], "view");
    assert!(created["grant"]["expires_at"].as_str().is_some());
    assert_eq!(actions(&app, "grant_created").await, 1);
    // It lets Sid view, not act: neither at the start nor by elevating.
    let (status, body) = start(&app, "sam@example.com", w.ann, "act").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "grant_view_only".into())
    );
    let token = on_behalf(&app, "sam@example.com", w.ann, Some("view")).await;
    let elevate = json!({ "password": PASSWORD, "reason": "Need to act" });
    let (status, body) = app
        .api(Method::POST, "/api/v1/alias_elevate", Some(&token), Some(elevate))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "grant_view_only".into())
    );
    // The member was told: started, and the grant used.
    let (_, notices) = call(
        &app,
        "ann@example.com",
        Method::GET,
        "/api/v1/profile/notices",
        None,
    )
    .await;
    let kinds: Vec<&str> = notices
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"grant_used") && kinds.contains(&"on_behalf_started"),
        "{notices}"
    );
    let used = notices
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "grant_used")
        .unwrap();
    assert_eq!(used["actor"]["display_name"], "Sid Support");
    assert_eq!(used["reason"], "Ticket T-11");
    assert_eq!(used["read"], false);
    // A grant to act lets Eve (an editor: by role she could) act.
    assert_eq!(
        grant(&app, "ann@example.com", Some(w.eve), "act", "1d").await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        start(&app, "eve@example.com", w.ann, "act").await.0,
        StatusCode::OK
    );
    app.finish().await;
}

async fn a_grant_never_overcomes_the_rest_of_the_rule(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let w = world(&app).await;
    let peer = app
        .create_member("pat@example.com", "Pat Support", Role::Support)
        .await;
    for member in ["ann@example.com", "pat@example.com"] {
        ask_first(&app, member).await;
        assert_eq!(
            grant(&app, member, None, "act", "1h").await.0,
            StatusCode::CREATED
        );
    }
    // Any support engineer: Sid is in; Mo (a member without admin access) is not.
    assert_eq!(
        start(&app, "sam@example.com", w.ann, "act").await.0,
        StatusCode::OK
    );
    let (status, body) = start(&app, "mo@example.com", w.ann, "view").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "no_permission".into())
    );
    // Not a peer's rank.
    let (status, body) = start(&app, "sam@example.com", peer, "view").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "rank_not_lower".into())
    );
    // Not nesting: in a session on behalf, starting another is refused.
    let token = on_behalf(&app, "eve@example.com", w.ann, Some("view")).await;
    let body = json!({ "member_id": w.mo, "password": PASSWORD, "reason": "Nested try" });
    let (status, answer) = app
        .api(Method::POST, "/api/v1/alias_login", Some(&token), Some(body))
        .await;
    assert_eq!((status, code(&answer)), (StatusCode::FORBIDDEN, "nested".into()));
    // Not a disabled login.
    app.execute(&format!(
        "UPDATE members SET login_enabled = FALSE WHERE id = {}",
        w.ann
    ))
    .await;
    let (status, body) = start(&app, "sam@example.com", w.ann, "view").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "target_not_authorized_to_log_in".into())
    );
    // By name, a grant goes to staff who outrank the member only.
    let (status, body) = grant(&app, "pat@example.com", Some(w.mo), "view", "1h").await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("grantee_id"))
    );
    let (status, body) = grant(&app, "pat@example.com", Some(w.sam), "view", "1h").await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a peer cannot be granted: {body}"
    );
    let (status, body) = grant(&app, "mo@example.com", None, "view", "2h").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`1h`, `1d`, `1w`"),
        "{body}"
    );
    app.finish().await;
}

async fn revoking_a_grant_ends_the_sessions_it_allowed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let w = world(&app).await;
    ask_first(&app, "ann@example.com").await;
    let (_, created) = grant(&app, "ann@example.com", Some(w.sam), "act", "1h").await;
    let grant_id = created["grant"]["id"].as_i64().unwrap();
    let token = on_behalf(&app, "sam@example.com", w.ann, Some("act")).await;
    assert_eq!(
        app.api(Method::GET, "/api/v1/profile", Some(&token), None)
            .await
            .0,
        StatusCode::OK
    );
    let (status, listed) = call(
        &app,
        "ann@example.com",
        Method::GET,
        "/api/v1/profile/access_grants",
        None,
    )
    .await;
    assert_eq!((status, listed.as_array().unwrap().len()), (StatusCode::OK, 1));
    let path = format!("/api/v1/profile/access_grants/{grant_id}");
    assert_eq!(
        call(&app, "ann@example.com", Method::DELETE, &path, None).await.0,
        StatusCode::NO_CONTENT
    );
    // Ended at once, before its actor's next request: nobody is in Ann's account.
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE actor_id IS NOT NULL AND ended_at IS NULL")
            .await,
        0
    );
    // Again: nothing left to revoke.
    assert_eq!(
        call(&app, "ann@example.com", Method::DELETE, &path, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = app.api(Method::GET, "/api/v1/profile", Some(&token), None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "on_behalf_ended".into())
    );
    let reason =
        crate::view_only::text(&app, "SELECT end_reason FROM sessions WHERE actor_id IS NOT NULL").await;
    assert_eq!(reason, "revoked");
    assert_eq!(actions(&app, "grant_revoked").await, 1);
    let (status, body) = start(&app, "sam@example.com", w.ann, "view").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "consent_required".into())
    );
    app.finish().await;
}

async fn a_grant_expires_with_the_clock(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let w = world(&app).await;
    ask_first(&app, "ann@example.com").await;
    assert_eq!(
        grant(&app, "ann@example.com", None, "view", "1h").await.0,
        StatusCode::CREATED
    );
    app.clock.advance(59 * MINUTE);
    let token = on_behalf(&app, "sam@example.com", w.ann, Some("view")).await;
    app.clock.advance(2 * MINUTE);
    // The grant is over: the sweep ends the session it allowed at once, and its
    // next request finds it over.
    app::consent::sweep::expire_due(&app.state).await.unwrap();
    assert_eq!(
        crate::view_only::text(&app, "SELECT end_reason FROM sessions WHERE actor_id IS NOT NULL").await,
        "revoked"
    );
    let (status, body) = app.api(Method::GET, "/api/v1/orders", Some(&token), None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "on_behalf_ended".into())
    );
    let (status, body) = start(&app, "sam@example.com", w.ann, "view").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "consent_required".into())
    );
    // Its expiry is recorded once, however often the sweep runs.
    app::consent::sweep::expire_due(&app.state).await.unwrap();
    app::consent::sweep::expire_due(&app.state).await.unwrap();
    let (_, listed) = call(
        &app,
        "ann@example.com",
        Method::GET,
        "/api/v1/profile/access_grants",
        None,
    )
    .await;
    assert_eq!(listed, json!([]));
    assert_eq!(actions(&app, "grant_expired").await, 1);
    app.finish().await;
}

async fn consent_required_makes_everyone_ask(backend: Backend) {
    let options = Options {
        settings: Settings {
            consent_required: true,
            ..Options::default().settings
        },
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    let w = world(&app).await;
    let (_, settings) = call(
        &app,
        "ann@example.com",
        Method::GET,
        "/api/v1/profile/on_behalf_settings",
        None,
    )
    .await;
    assert_eq!(
        (settings["role_grants"].clone(), settings["in_force"].clone()),
        (json!("allowed"), json!("ask"))
    );
    let (status, body) = start(&app, "sam@example.com", w.ann, "view").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "consent_required".into())
    );
    // The member cannot loosen it.
    let body = json!({ "role_grants": "allowed" });
    let (_, settings) = call(
        &app,
        "ann@example.com",
        Method::PUT,
        "/api/v1/profile/on_behalf_settings",
        Some(body),
    )
    .await;
    assert_eq!(settings["in_force"], "ask");
    assert_eq!(
        start(&app, "sam@example.com", w.ann, "view").await.0,
        StatusCode::FORBIDDEN
    );
    // An explicit proxy login permission needs no consent.
    app.execute(&format!(
        "INSERT INTO proxy_permissions (member_id, actor_id, created_at, granted_by) VALUES ({}, {}, 0, {})",
        w.ann, w.sam, w.eve
    ))
    .await;
    assert_eq!(
        start(&app, "sam@example.com", w.ann, "act").await.0,
        StatusCode::OK
    );
    app.finish().await;
}

pub async fn ask(app: &TestApp, actor: &str, member: i64) -> (StatusCode, Value) {
    let body = json!({ "reason": "Ticket 4711", "mode": "act", "duration": "1d" });
    call(
        app,
        actor,
        Method::POST,
        &format!("/api/v1/members/{member}/access_requests"),
        Some(body),
    )
    .await
}

async fn requests_are_approved_or_denied_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let w = world(&app).await;
    ask_first(&app, "ann@example.com").await;
    let (status, made) = ask(&app, "sam@example.com", w.ann).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["request"]["status"], "pending");
    let id = made["request"]["id"].as_i64().unwrap();
    // Someone the rule refuses anyway cannot ask.
    assert_eq!(ask(&app, "mo@example.com", w.ann).await.0, StatusCode::FORBIDDEN);
    let (_, listed) = call(
        &app,
        "ann@example.com",
        Method::GET,
        "/api/v1/profile/access_requests",
        None,
    )
    .await;
    assert_eq!(listed[0]["requester"]["display_name"], "Sid Support");
    let (_, notices) = call(
        &app,
        "ann@example.com",
        Method::GET,
        "/api/v1/profile/notices",
        None,
    )
    .await;
    assert_eq!(notices[0]["kind"], "access_requested");
    // Ten parallel approvals: one is made, one grant.
    let token = app.api_login("ann@example.com").await;
    let path = format!("/api/v1/profile/access_requests/{id}/approve");
    let answers =
        futures_util::future::join_all((0..10).map(|_| app.api(Method::POST, &path, Some(&token), None)))
            .await;
    let ok: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(ok.len(), 1, "{answers:?}");
    assert!(answers
        .iter()
        .all(|(s, _)| *s == StatusCode::OK || *s == StatusCode::CONFLICT));
    assert_eq!(ok[0]["request"]["status"], "approved");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM member_grants").await, 1);
    // The approval is a grant for Sid, to act, for a day.
    assert_eq!(
        start(&app, "sam@example.com", w.ann, "act").await.0,
        StatusCode::OK
    );
    // Eve asks; Ann denies; Eve stays out.
    let (_, made) = ask(&app, "eve@example.com", w.ann).await;
    let path = format!("/api/v1/profile/access_requests/{}/deny", made["request"]["id"]);
    let (status, denied) = app.api(Method::POST, &path, Some(&token), None).await;
    assert_eq!(
        (status, denied["request"]["status"].clone()),
        (StatusCode::OK, json!("denied"))
    );
    let (status, body) = start(&app, "eve@example.com", w.ann, "view").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "consent_required".into())
    );
    // Someone else's request is not Sid's to answer.
    let path = format!("/api/v1/profile/access_requests/{id}/deny");
    assert_eq!(
        call(&app, "sam@example.com", Method::POST, &path, None).await.0,
        StatusCode::NOT_FOUND
    );
    for action in [
        "access_requested",
        "access_request_approved",
        "access_request_denied",
    ] {
        assert!(actions(&app, action).await >= 1, "{action} recorded");
    }
    app.finish().await;
}

async fn requests_expire_after_a_day_and_are_never_two_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let w = world(&app).await;
    ask_first(&app, "ann@example.com").await;
    // Forty at once from one person: one request is made, the rest are conflicts.
    let token = app.api_login("sam@example.com").await;
    let path = format!("/api/v1/members/{}/access_requests", w.ann);
    let body = json!({ "reason": "Ticket 4711", "mode": "view", "duration": "1h" });
    let answers = futures_util::future::join_all(
        (0..40).map(|_| app.api(Method::POST, &path, Some(&token), Some(body.clone()))),
    )
    .await;
    let made = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    let conflicts = answers.iter().filter(|(s, _)| *s == StatusCode::CONFLICT).count();
    assert_eq!((made, conflicts), (1, 39), "{answers:?}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM access_requests").await, 1);
    // A day later it has expired unanswered: recorded once, and Sid may ask again.
    app.clock.advance(24 * 60 * MINUTE + MINUTE);
    let (_, listed) = call(
        &app,
        "ann@example.com",
        Method::GET,
        "/api/v1/profile/access_requests",
        None,
    )
    .await;
    assert_eq!(listed[0]["status"], "expired");
    let id = listed[0]["id"].as_i64().unwrap();
    let path = format!("/api/v1/profile/access_requests/{id}/approve");
    assert_eq!(
        call(&app, "ann@example.com", Method::POST, &path, None).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(actions(&app, "access_request_expired").await, 1);
    assert_eq!(ask(&app, "sam@example.com", w.ann).await.0, StatusCode::CREATED);
    let _ = w.eve;
    app.finish().await;
}

/// From the attacker review: a one-click link (which signs in as the member) and an
/// editor's own entry in the member's proxy login permission are not the member's
/// consent.
async fn asking_first_holds_against_one_click_links_and_self_written_permissions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let w = world(&app).await;
    // A link made before the member asked first cannot be used after.
    let links = format!("/api/v1/members/{}/one_click_links", w.ann);
    let (status, made) = call(&app, "sam@example.com", Method::POST, &links, Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let path = made["path"].as_str().unwrap().to_string();
    ask_first(&app, "ann@example.com").await;
    let stranger = app.client();
    let used = stranger.post(app.url(&path)).send().await.unwrap();
    assert_eq!(used.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM one_click_links WHERE used_at IS NOT NULL")
            .await,
        0
    );
    // Nor can a new one be made, not even with a grant to view only…
    let (status, body) = call(&app, "sam@example.com", Method::POST, &links, Some(json!({}))).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "consent_required".into())
    );
    assert_eq!(
        grant(&app, "ann@example.com", Some(w.sam), "view", "1h").await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        call(&app, "sam@example.com", Method::POST, &links, Some(json!({})))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // …only with a grant to act.
    assert_eq!(
        grant(&app, "ann@example.com", Some(w.sam), "act", "1h").await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        call(&app, "sam@example.com", Method::POST, &links, Some(json!({})))
            .await
            .0,
        StatusCode::CREATED
    );
    // An editor writing herself into Ann's permission is not Ann's consent.
    let body = json!({ "member_ids": [w.eve] });
    let permission = format!("/api/v1/members/{}/proxy_login_permission", w.ann);
    assert_eq!(
        call(&app, "eve@example.com", Method::PUT, &permission, Some(body))
            .await
            .0,
        StatusCode::OK
    );
    let (status, body) = start(&app, "eve@example.com", w.ann, "act").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "consent_required".into())
    );
    app.finish().await;
}

async fn requests_are_for_members_who_ask_and_not_again_right_after_a_denial(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let w = world(&app).await;
    // Ann lets role grants in: Sid needs no request.
    let (status, body) = ask(&app, "sam@example.com", w.ann).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "conflict".into()));
    ask_first(&app, "ann@example.com").await;
    let (_, made) = ask(&app, "sam@example.com", w.ann).await;
    let path = format!("/api/v1/profile/access_requests/{}/deny", made["request"]["id"]);
    assert_eq!(
        call(&app, "ann@example.com", Method::POST, &path, None).await.0,
        StatusCode::OK
    );
    // Denied: not again within the hour (no stream of notices and mails)…
    assert_eq!(ask(&app, "sam@example.com", w.ann).await.0, StatusCode::CONFLICT);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM notices WHERE kind = 'access_requested'")
            .await,
        1
    );
    // …but after it.
    app.clock.advance(61 * MINUTE);
    assert_eq!(ask(&app, "sam@example.com", w.ann).await.0, StatusCode::CREATED);
    app.finish().await;
}

/// Turning **Ask me first** on ends at once the sessions a role grant alone let in,
/// and only those: one allowed by an explicit permission someone else wrote goes on.
/// The actor's next request is back in their own session, told why.
async fn asking_first_ends_at_once_the_sessions_it_no_longer_allows(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let w = world(&app).await;
    let mia = app
        .create_member("mia@example.com", "Mia Member", Role::Member)
        .await;
    // Eve (an editor) is in Ann's account by her role; Sam in Mia's by a permission
    // Eve wrote for him.
    app.execute(&format!(
        "INSERT INTO proxy_permissions (member_id, actor_id, created_at, granted_by) VALUES ({mia}, {}, 0, {})",
        w.sam, w.eve
    ))
    .await;
    let eve_for_ann = on_behalf(&app, "eve@example.com", w.ann, Some("view")).await;
    let sam_for_mia = on_behalf(&app, "sam@example.com", mia, Some("view")).await;
    ask_first(&app, "ann@example.com").await;
    ask_first(&app, "mia@example.com").await;
    // Ann's session on her behalf ended with her change; Mia's goes on.
    let live = |member: i64| {
        format!("SELECT COUNT(*) FROM sessions WHERE member_id = {member} AND actor_id IS NOT NULL AND ended_at IS NULL")
    };
    assert_eq!(app.scalar(&live(w.ann)).await, 0);
    assert_eq!(app.scalar(&live(mia)).await, 1);
    assert_eq!(
        crate::view_only::text(
            &app,
            &format!(
                "SELECT end_reason FROM sessions WHERE member_id = {} AND actor_id IS NOT NULL",
                w.ann
            )
        )
        .await,
        "revoked"
    );
    let notices = format!(
        "SELECT COUNT(*) FROM notices WHERE member_id = {} AND kind = 'on_behalf_ended'",
        w.ann
    );
    assert_eq!(app.scalar(&notices).await, 1);
    let (status, body) = app
        .api(Method::GET, "/api/v1/profile", Some(&eve_for_ann), None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "on_behalf_ended".into())
    );
    assert_eq!(
        app.api(Method::GET, "/api/v1/profile", Some(&sam_for_mia), None)
            .await
            .0,
        StatusCode::OK
    );
    // Recorded once: the actor's request found it over and wrote no second end.
    assert_eq!(actions(&app, "on_behalf_end").await, 1);
    assert_eq!(app.scalar(&notices).await, 1);
    app.finish().await;
}
