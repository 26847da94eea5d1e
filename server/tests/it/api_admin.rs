//! Step 6's JSON API v1, the admin half: members (list by cursor, get, patch, the
//! proxy login permission with Step 5's rule on self-grants), groups, sessions, the
//! audit trail, and the OpenAPI document naming every route the router serves.

use crate::common::{Backend, TestApp};
use app::members::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_databases!(
    members_are_listed_by_cursor_and_read_one_by_one,
    member_changes_follow_the_editor_rules,
    the_proxy_login_permission_refuses_a_self_grant_to_a_peer,
    groups_are_managed_as_on_the_web,
    sessions_and_access_history_are_the_callers_own,
    the_audit_trail_is_for_editors,
    parallel_partial_changes_never_undo_each_other,
);

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.api(method, path, Some(token), body).await
}

async fn api_login(app: &TestApp, email: &str) -> String {
    app.api_login(email).await
}

async fn members_are_listed_by_cursor_and_read_one_by_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sam = app
        .create_member("sam@example.com", "Sam Support", Role::Support)
        .await;
    let mut ids = vec![sam];
    for n in 0..5 {
        ids.push(
            app.create_member(&format!("m{n}@example.com"), &format!("Member {n}"), Role::Member)
                .await,
        );
    }
    let token = api_login(&app, "sam@example.com").await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = call(
            &app,
            Method::GET,
            &format!("/api/v1/members?sort=id&limit=2&cursor={cursor}"),
            &token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let members = page["members"].as_array().unwrap();
        assert!(members.len() <= 2);
        seen.extend(members.iter().map(|m| m["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
        assert!(seen.len() <= ids.len(), "the cursor ends");
    }
    assert_eq!(seen, ids);
    let (status, member) = call(
        &app,
        Method::GET,
        &format!("/api/v1/members/{}", ids[1]),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(member["email"], "m0@example.com");
    assert_eq!(member["role"], "member");
    assert_eq!(member["proxy_login_permission"], json!([]));
    for key in [
        "admin_access",
        "login_enabled",
        "groups",
        "last_sign_in_at",
        "display_name",
    ] {
        assert!(member.get(key).is_some(), "{key}");
    }
    let (status, body) = call(&app, Method::GET, "/api/v1/members/999999", &token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = call(&app, Method::GET, "/api/v1/members?role=boss", &token, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "role");
    let (status, _) = call(&app, Method::GET, "/api/v1/members?limit=26", &token, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.finish().await;
}

async fn member_changes_follow_the_editor_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Support", Role::Support)
        .await;
    app.create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let boss = app
        .create_member("boss@example.com", "Boss", Role::SuperUser)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let support = api_login(&app, "sam@example.com").await;
    let editor = api_login(&app, "eve@example.com").await;
    let path = format!("/api/v1/members/{ann}");

    let (status, body) = call(
        &app,
        Method::PATCH,
        &path,
        &support,
        Some(json!({ "display_name": "Ann B" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "needs_editor_role");

    let (status, body) = call(
        &app,
        Method::PATCH,
        &path,
        &editor,
        Some(json!({ "display_name": "Ann Brown", "admin_access": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["display_name"], "Ann Brown");
    assert_eq!(body["admin_access"], true);
    assert_eq!(body["email"], "ann@example.com", "what was not sent stays");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'member_updated'")
            .await,
        1
    );
    let (status, body) = call(
        &app,
        Method::PATCH,
        &path,
        &editor,
        Some(json!({ "role": "super_user" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "role_above_own_rank");
    let (status, body) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/members/{boss}"),
        &editor,
        Some(json!({ "display_name": "B" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = call(
        &app,
        Method::PATCH,
        &path,
        &editor,
        Some(json!({ "email": "not an email" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "email");
    let (status, body) = call(
        &app,
        Method::PATCH,
        &path,
        &editor,
        Some(json!({ "role": "boss" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = call(
        &app,
        Method::PATCH,
        &path,
        &editor,
        Some(json!({ "password": "x" })),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'member_updated'")
            .await,
        1,
        "refusals changed nothing"
    );
    app.finish().await;
}

async fn the_proxy_login_permission_refuses_a_self_grant_to_a_peer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let eve = app
        .create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let ed = app
        .create_member("ed@example.com", "Ed Editor", Role::Editor)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let token = api_login(&app, "eve@example.com").await;
    let (status, body) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/members/{ed}/proxy_login_permission"),
        &token,
        Some(json!({ "member_ids": [eve] })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "self_grant_to_peer");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM proxy_permissions").await, 0);
    // Kuroco's example: yourself into a lower rank's permission works.
    let (status, body) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/members/{ann}/proxy_login_permission"),
        &token,
        Some(json!({ "member_ids": [eve, ed] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["proxy_login_permission"], json!([eve, ed]));
    let (status, body) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/members/{ann}/proxy_login_permission"),
        &token,
        Some(json!({ "member_ids": [424242] })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "member_ids");
    let (status, body) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/members/{ann}/proxy_login_permission"),
        &token,
        Some(json!({ "member_ids": [0] })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM proxy_permissions").await, 2);
    app.finish().await;
}

async fn groups_are_managed_as_on_the_web(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    app.create_member("sam@example.com", "Sam Support", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let boss = app
        .create_member("boss@example.com", "Boss", Role::SuperUser)
        .await;
    let editor = api_login(&app, "eve@example.com").await;
    let support = api_login(&app, "sam@example.com").await;

    let (status, group) = call(
        &app,
        Method::POST,
        "/api/v1/groups",
        &editor,
        Some(json!({ "name": "Acme" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let id = group["id"].as_i64().unwrap();
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v1/groups",
        &editor,
        Some(json!({ "name": "Acme" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/v1/groups",
        &support,
        Some(json!({ "name": "Other" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/groups/{id}/members/{ann}"),
        &editor,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/groups/{id}/members/{ann}"),
        &editor,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "twice: {body}");
    let (status, body) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/groups/{id}/members/{boss}"),
        &editor,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a higher rank: {body}");

    let (status, page) = call(
        &app,
        Method::GET,
        &format!("/api/v1/groups/{id}/members"),
        &support,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["group"]["member_count"], 1);
    assert_eq!(page["members"][0]["id"], ann);
    assert_eq!(page["members"][0]["groups"][0]["name"], "Acme");
    let (status, list) = call(&app, Method::GET, "/api/v1/groups", &support, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["name"], "Acme");

    let (status, renamed) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/groups/{id}"),
        &editor,
        Some(json!({ "name": "Acme Inc" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Acme Inc");
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/groups/{id}/members/{ann}"),
        &editor,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/groups/{id}"),
        &editor,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/groups/{id}/members"),
        &editor,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.finish().await;
}

async fn sessions_and_access_history_are_the_callers_own(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    app.create_member("bob@example.com", "Bob Hall", Role::Member)
        .await;
    let first = api_login(&app, "ann@example.com").await;
    let second = api_login(&app, "ann@example.com").await;
    let bob = api_login(&app, "bob@example.com").await;
    let (status, sessions) = call(&app, Method::GET, "/api/v1/sessions", &first, None).await;
    assert_eq!(status, StatusCode::OK, "{sessions}");
    let sessions = sessions.as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_i64()
        .unwrap();
    let current = sessions.iter().find(|s| s["current"] == true).unwrap()["id"]
        .as_i64()
        .unwrap();
    // Bob cannot end Ann's session.
    let (status, body) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/sessions/{other}"),
        &bob,
        None,
    )
    .await;
    assert!(
        matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{status} {body}"
    );
    let (status, body) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/sessions/{current}"),
        &first,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the current one is logout: {body}"
    );
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/sessions/{other}"),
        &first,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&app, Method::GET, "/api/v1/profile", &second, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the ended session's token is refused"
    );
    let (status, history) = call(&app, Method::GET, "/api/v1/access_history", &first, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history, json!([]));
    let (status, products) = call(&app, Method::GET, "/api/v1/products", &first, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(products.is_array());
    app.finish().await;
}

async fn the_audit_trail_is_for_editors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    app.create_member("sam@example.com", "Sam Support", Role::Support)
        .await;
    let editor = api_login(&app, "eve@example.com").await;
    let support = api_login(&app, "sam@example.com").await;
    let (status, body) = call(&app, Method::GET, "/api/v1/audit", &support, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "not_auditor");
    let (status, page) = call(&app, Method::GET, "/api/v1/audit?action=sign_in", &editor, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{page}");
    assert!(records.iter().all(|r| r["action"] == "sign_in"));
    let (status, body) = call(&app, Method::GET, "/api/v1/audit?from=yesterday", &editor, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "from");

    // The document names every route, each with the error shape.
    let response = app
        .bare_client()
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/login",
        "/api/v1/logout",
        "/api/v1/profile",
        "/api/v1/alias_login",
        "/api/v1/alias_elevate",
        "/api/v1/alias_logout",
        "/api/v1/members",
        "/api/v1/members/{id}",
        "/api/v1/members/{id}/proxy_login_permission",
        "/api/v1/groups",
        "/api/v1/groups/{id}",
        "/api/v1/groups/{id}/members",
        "/api/v1/groups/{id}/members/{member_id}",
        "/api/v1/products",
        "/api/v1/orders",
        "/api/v1/sessions",
        "/api/v1/sessions/{id}",
        "/api/v1/access_history",
        "/api/v1/audit",
        "/api/v1/members/{id}/one_click_links",
        "/api/v1/one_click_links/{id}",
        "/api/v1/profile/password",
        "/api/v1/profile/on_behalf_settings",
        "/api/v1/members/{id}/access_requests",
        "/api/v1/profile/access_requests",
        "/api/v1/profile/access_requests/{id}/approve",
        "/api/v1/profile/access_requests/{id}/deny",
        "/api/v1/profile/access_grants",
        "/api/v1/profile/access_grants/{id}",
        "/api/v1/profile/notices",
        "/api/v1/profile/notices/{id}/read",
        "/api/v1/profile/on_behalf/{session_id}",
        "/api/v1/profile/events",
    ] {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} is documented"));
        for (method, operation) in item.as_object().unwrap() {
            for status in ["400", "401", "403", "422", "429"] {
                assert!(
                    operation["responses"].get(status).is_some(),
                    "{method} {path} documents {status}"
                );
            }
        }
    }
    assert_eq!(
        paths.len(),
        35,
        "no undocumented extra: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
    app.finish().await;
}

/// A rename and a permission change of one member, sent together many times: each is
/// applied to what the other left (the fields a request leaves out are read inside
/// its own transaction), so neither is ever undone — above all not a revocation.
async fn parallel_partial_changes_never_undo_each_other(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("boss@example.com", "Boss", Role::SuperUser)
        .await;
    app.create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let sam = app
        .create_member("sam@example.com", "Sam Support", Role::Support)
        .await;
    let boss = api_login(&app, "boss@example.com").await;
    let editor = api_login(&app, "eve@example.com").await;
    let path = format!("/api/v1/members/{ann}");
    let permission = format!("/api/v1/members/{ann}/proxy_login_permission");
    for round in 0..12 {
        // Grant, then revoke while someone else renames.
        let (status, _) = call(
            &app,
            Method::PUT,
            &permission,
            &boss,
            Some(json!({ "member_ids": [sam] })),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let name = format!("Ann Round {round}");
        let (revoked, renamed) = tokio::join!(
            call(
                &app,
                Method::PUT,
                &permission,
                &boss,
                Some(json!({ "member_ids": [] }))
            ),
            call(
                &app,
                Method::PATCH,
                &path,
                &editor,
                Some(json!({ "display_name": name }))
            ),
        );
        assert_eq!(revoked.0, StatusCode::OK, "{}", revoked.1);
        assert_eq!(renamed.0, StatusCode::OK, "{}", renamed.1);
        let (_, member) = call(&app, Method::GET, &path, &boss, None).await;
        assert_eq!(
            member["proxy_login_permission"],
            json!([]),
            "round {round}: the revocation holds"
        );
        assert_eq!(
            member["display_name"],
            name.as_str(),
            "round {round}: the rename holds"
        );
    }
    // The API's answers are never cached on the way.
    let response = app
        .bare_client()
        .get(app.url(&path))
        .bearer_auth(&boss)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    app.finish().await;
}
