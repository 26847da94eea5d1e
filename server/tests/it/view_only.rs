//! Step 11 over HTTP: a session on behalf views only unless started (`mode: act`) or
//! elevated (password and reason) to act; protected actions are refused in every
//! mode and change nothing; and the member's own marks (last sign-in, last seen of
//! their own sessions) are left alone. Elevation and `--act-min-role` are in
//! `view_elevation`, the view trail in `view_trail`.

use crate::common::{json_of, session_cookie, token_of, Backend, TestApp, PASSWORD};
use app::{clock::MINUTE, members::Role, mode::Access, state::AppState};
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};
use server::access::{RouteAccess, ROUTES};

on_both_databases!(
    each_mode_reads_and_only_acting_writes,
    protected_actions_are_refused_in_every_mode_and_change_nothing,
    the_members_own_marks_are_left_alone,
);

/// A form's fields as `reqwest` takes them.
pub fn pairs<'a>(fields: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The stable code of an error (the body itself when it has none).
pub fn code(body: &Value) -> String {
    body["error"]["code"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{body}"))
}

/// The catalogue's first product.
pub async fn product(app: &TestApp) -> i64 {
    app::orders::service::ensure_catalogue(&app.state.db, 0)
        .await
        .unwrap();
    app.scalar("SELECT MIN(id) FROM products").await
}

/// One text value of a query.
pub async fn text(app: &TestApp, sql: &str) -> String {
    let (value,): (String,) = with_db!(&app.state.db, pool => {
        sqlx::query_as(sql).fetch_one(pool).await.expect(sql)
    });
    value
}

/// The live session on behalf (there is one at a time in these tests).
pub async fn live_on_behalf(app: &TestApp) -> i64 {
    app.scalar("SELECT id FROM sessions WHERE actor_id IS NOT NULL AND ended_at IS NULL")
        .await
}

/// `actor` signs in through the API and calls `alias_login` for `member` (with
/// `mode`, if any): the status and the answer.
pub async fn alias_login(app: &TestApp, actor: &str, member: i64, mode: Option<&str>) -> (StatusCode, Value) {
    let token = app.api_login(actor).await;
    let mut body = json!({ "member_id": member, "password": PASSWORD, "reason": "Ticket T-11" });
    if let Some(mode) = mode {
        body["mode"] = json!(mode);
    }
    app.api(Method::POST, "/api/v1/alias_login", Some(&token), Some(body))
        .await
}

/// A session on behalf in `mode` (None: the default): its token.
pub async fn on_behalf(app: &TestApp, actor: &str, member: i64, mode: Option<&str>) -> String {
    let (status, body) = alias_login(app, actor, member, mode).await;
    assert_eq!(status, StatusCode::OK, "{actor} → {member} ({mode:?}): {body}");
    body["token"].as_str().unwrap().to_string()
}

/// A server function call carrying `token` as the session cookie.
pub async fn form(app: &TestApp, token: &str, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = app
        .bare_client()
        .post(app.url(path))
        .header(header::COOKIE, format!("behalf_session={token}"))
        .form(form)
        .send()
        .await
        .expect("request");
    json_of(response).await
}

/// A page (or download) with `token` as the session cookie: the status and the text.
pub async fn page(app: &TestApp, token: &str, path: &str) -> (StatusCode, String) {
    let response = app
        .bare_client()
        .get(app.url(path))
        .header(header::COOKIE, format!("behalf_session={token}"))
        .send()
        .await
        .expect("request");
    (response.status(), response.text().await.unwrap())
}

async fn orders_of(app: &TestApp, member: i64) -> i64 {
    app.scalar(&format!("SELECT COUNT(*) FROM orders WHERE member_id = {member}"))
        .await
}

/// Reads work; both ways of placing an order are refused as view only.
async fn check_view_only(app: &TestApp, token: &str, member: i64, product: &str) {
    for path in ["/", "/account/orders"] {
        assert_eq!(page(app, token, path).await.0, StatusCode::OK, "{path}");
    }
    let (status, body) = form(app, token, "/api/orders/list", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.api(Method::GET, "/api/v1/orders", Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, profile) = app.api(Method::GET, "/api/v1/profile", Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    let session = live_on_behalf(app).await;
    assert_eq!(profile["on_behalf"]["mode"], "view", "{profile}");
    assert_eq!(profile["on_behalf"]["session_id"], session, "{profile}");
    let stored = text(app, &format!("SELECT mode FROM sessions WHERE id = {session}")).await;
    assert_eq!(stored, "view");

    let before = orders_of(app, member).await;
    let order = [("product_id", product), ("quantity", "1")];
    let (status, body) = form(app, token, "/api/orders/place", &order).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::FORBIDDEN, "on_behalf_view_only")
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("view only"));
    let body = json!({ "product_id": product.parse::<i64>().unwrap(), "quantity": 1 });
    let (status, body) = app
        .api(Method::POST, "/api/v1/orders", Some(token), Some(body))
        .await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::FORBIDDEN, "on_behalf_view_only")
    );
    assert_eq!(orders_of(app, member).await, before, "no order placed");
}

/// Acting: both ways of placing an order work, placed by the actor.
async fn check_acting(app: &TestApp, token: &str, member: i64, actor: i64, product: &str) {
    let (_, profile) = app.api(Method::GET, "/api/v1/profile", Some(token), None).await;
    let session = live_on_behalf(app).await;
    assert_eq!(profile["on_behalf"]["mode"], "act", "{profile}");
    assert_eq!(profile["on_behalf"]["session_id"], session);
    let before = orders_of(app, member).await;
    let order = [("product_id", product), ("quantity", "1")];
    let (status, body) = form(app, token, "/api/orders/place", &order).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body = json!({ "product_id": product.parse::<i64>().unwrap(), "quantity": 2 });
    let (status, body) = app
        .api(Method::POST, "/api/v1/orders", Some(token), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(orders_of(app, member).await, before + 2);
    let by_actor = format!("SELECT COUNT(*) FROM orders WHERE member_id = {member} AND placed_by = {actor}");
    assert!(app.scalar(&by_actor).await >= 2);
}

pub async fn leave(app: &TestApp, token: &str) {
    let (status, body) = app
        .api(Method::POST, "/api/v1/alias_logout", Some(token), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn each_mode_reads_and_only_acting_writes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sam = app
        .create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let product = product(&app).await.to_string();

    // The web window without a mode: view only.
    let client = app.signed_in("sam@example.com").await;
    let start = [
        ("member_id", ann.to_string()),
        ("password", PASSWORD.to_string()),
        ("reason", "Ticket T-11".to_string()),
    ];
    let start = pairs(&start);
    let response = app.post_form(&client, "/api/on-behalf/start", &start).await;
    assert_eq!(response.status(), StatusCode::OK);
    let token = token_of(&session_cookie(&response).expect("a cookie"));
    check_view_only(&app, &token, ann, &product).await;
    let (status, _) = app.post(&client, "/api/on-behalf/leave", &[]).await;
    assert_eq!(status, StatusCode::OK);

    // The API, with no mode and with "view": view only, said in the answer.
    for mode in [None, Some("view")] {
        let (status, body) = alias_login(&app, "sam@example.com", ann, mode).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let session = live_on_behalf(&app).await;
        assert_eq!(body["mode"], "view", "{mode:?}: {body}");
        assert_eq!(body["on_behalf"]["mode"], "view", "{body}");
        assert_eq!(body["session_id"], session, "{body}");
        assert_eq!(body["on_behalf"]["session_id"], session, "{body}");
        let token = body["token"].as_str().unwrap();
        check_view_only(&app, token, ann, &product).await;
        leave(&app, token).await;
    }

    // "act", by the API and by the web window: orders are placed.
    let (status, body) = alias_login(&app, "sam@example.com", ann, Some("act")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["mode"], &body["on_behalf"]["mode"]),
        (&json!("act"), &json!("act"))
    );
    assert_eq!(body["session_id"], live_on_behalf(&app).await);
    let token = body["token"].as_str().unwrap().to_string();
    check_acting(&app, &token, ann, sam, &product).await;
    leave(&app, &token).await;
    let client = app.signed_in("sam@example.com").await;
    let mut act = start.clone();
    act.push(("mode", "act"));
    let response = app.post_form(&client, "/api/on-behalf/start", &act).await;
    assert_eq!(response.status(), StatusCode::OK);
    let token = token_of(&session_cookie(&response).expect("a cookie"));
    check_acting(&app, &token, ann, sam, &product).await;
    let live = live_on_behalf(&app).await;
    assert_eq!(
        text(&app, &format!("SELECT mode FROM sessions WHERE id = {live}")).await,
        "act"
    );
    let (status, _) = app.post(&client, "/api/on-behalf/leave", &[]).await;
    assert_eq!(status, StatusCode::OK);

    // An unknown mode starts nothing.
    let sessions = app
        .scalar("SELECT COUNT(*) FROM sessions WHERE actor_id IS NOT NULL")
        .await;
    let (status, body) = alias_login(&app, "sam@example.com", ann, Some("write")).await;
    assert!(status.is_client_error(), "{status}: {body}");
    let mut bad = start.clone();
    bad.push(("mode", "write"));
    let (status, body) = app.post(&client, "/api/on-behalf/start", &bad).await;
    assert!(status.is_client_error(), "{status}: {body}");
    let after = app
        .scalar("SELECT COUNT(*) FROM sessions WHERE actor_id IS NOT NULL")
        .await;
    assert_eq!(after, sessions);
    app.finish().await;
}

/// A member row: id, email, name, password hash, role, admin access, login enabled,
/// deleted, updated, last sign-in.
type MemberRow = (
    i64,
    String,
    String,
    String,
    String,
    bool,
    bool,
    Option<i64>,
    i64,
    Option<i64>,
);
/// A session row: id, ended, why, token hash, mode.
type SessionRow = (i64, Option<i64>, Option<String>, Option<Vec<u8>>, Option<String>);

/// What a protected action could change, to compare before and after.
#[derive(Debug, PartialEq)]
struct Snapshot {
    members: Vec<MemberRow>,
    sessions: Vec<SessionRow>,
    counts: Vec<i64>,
}

async fn snapshot(app: &TestApp) -> Snapshot {
    let (members, sessions) = with_db!(&app.state.db, pool => {
        let members = sqlx::query_as(
            "SELECT id, email, display_name, password_hash, role, admin_access, login_enabled, deleted_at, \
             updated_at, last_sign_in_at FROM members ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let sessions = sqlx::query_as("SELECT id, ended_at, end_reason, token_hash, mode FROM sessions ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
        (members, sessions)
    });
    let mut counts = Vec::new();
    for table in [
        "groups",
        "group_members",
        "proxy_permissions",
        "one_click_links",
        "orders",
        "reauth_attempts",
        "audit_events WHERE action NOT IN ('on_behalf_viewed', 'on_behalf_refused')",
    ] {
        counts.push(app.scalar(&format!("SELECT COUNT(*) FROM {table}")).await);
    }
    Snapshot {
        members,
        sessions,
        counts,
    }
}

/// The IDs a protected route's path and body are filled with.
struct Ids {
    member: i64,
    group: i64,
    own_session: i64,
    on_behalf: i64,
}

fn fill(path: &str, ids: &Ids) -> String {
    let target = if path.contains("/sessions/") {
        ids.own_session
    } else if path.contains("/groups/") {
        ids.group
    } else if path.contains("/impersonations/") {
        ids.on_behalf
    } else {
        ids.member
    };
    path.replace("{member_id}", &ids.member.to_string())
        .replace("{id}", &target.to_string())
}

/// A plausible form for a protected server function.
fn form_for(path: &str, ids: &Ids) -> Vec<(&'static str, String)> {
    let (member, group) = (ids.member.to_string(), ids.group.to_string());
    match path {
        "/api/account/revoke-session" => vec![("id", ids.own_session.to_string())],
        "/api/members/update" => vec![
            ("id", member),
            ("display_name", "Changed".into()),
            ("role", "super_user".into()),
        ],
        "/api/audit/session" | "/api/oversight/end" => vec![("session_id", ids.on_behalf.to_string())],
        path if path.starts_with("/api/groups/") => {
            vec![("id", group), ("member_id", member), ("name", "Renamed".into())]
        }
        _ => vec![("member_id", member), ("minutes", "15".into())],
    }
}

/// A plausible JSON body for a protected API operation.
fn body_for(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("GET" | "DELETE", _) => None,
        (_, "/api/v1/profile/password") => {
            Some(json!({ "current_password": PASSWORD, "new_password": "another long passphrase 42" }))
        }
        ("PATCH", "/api/v1/members/{id}") => Some(json!({ "display_name": "Changed", "role": "super_user" })),
        (_, "/api/v1/groups") | ("PATCH", _) => Some(json!({ "name": "Made on behalf" })),
        (_, "/api/v1/members/{id}/one_click_links") => Some(json!({ "minutes": 15 })),
        _ => Some(json!({})),
    }
}

/// Calls one protected route from the session of `token`: the status and the body.
async fn call_protected(app: &TestApp, route: &RouteAccess, ids: &Ids, token: &str) -> (StatusCode, String) {
    let path = fill(route.path, ids);
    if route.path.starts_with("/api/v1/") {
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        let (status, body) = app
            .api(method, &path, Some(token), body_for(route.method, route.path))
            .await;
        assert_eq!(
            code(&body),
            "on_behalf_protected_action",
            "{} {path}: {body}",
            route.method
        );
        (status, body.to_string())
    } else if route.path.starts_with("/api/") {
        let fields = form_for(route.path, ids);
        let fields = pairs(&fields);
        let (status, body) = form(app, token, &path, &fields).await;
        assert_eq!(code(&body), "on_behalf_protected_action", "POST {path}: {body}");
        (status, body.to_string())
    } else {
        assert_eq!(route.method, "GET", "{}", route.path);
        page(app, token, &path).await
    }
}

async fn protected_actions_are_refused_in_every_mode_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("root@example.com", "Rita Root", Role::SuperUser)
        .await;
    // Eve is an editor with admin access: as herself, most of these would succeed.
    let eve = app
        .create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    app.api_login("eve@example.com").await;
    let own_session = app
        .scalar(&format!("SELECT MAX(id) FROM sessions WHERE member_id = {eve}"))
        .await;
    let now = app.clock.now();
    app.execute(&format!(
        "INSERT INTO groups (name, name_key, member_count, created_at, updated_at) VALUES ('Acme', 'acme', 1, {now}, {now})"
    ))
    .await;
    let group = app.scalar("SELECT MIN(id) FROM groups").await;
    app.execute(&format!(
        "INSERT INTO group_members (group_id, member_id, added_at) VALUES ({group}, {ann}, {now})"
    ))
    .await;
    let protected: Vec<&RouteAccess> = ROUTES.iter().filter(|r| r.access == Access::Protected).collect();
    assert!(protected.len() >= 30, "{} protected routes", protected.len());
    for mode in ["view", "act"] {
        let token = on_behalf(&app, "root@example.com", eve, Some(mode)).await;
        let ids = Ids {
            member: ann,
            group,
            own_session,
            on_behalf: live_on_behalf(&app).await,
        };
        let before = snapshot(&app).await;
        for route in &protected {
            let (status, body) = call_protected(&app, route, &ids, &token).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{mode}: {} {}: {body}",
                route.method,
                route.path
            );
            assert!(!body.contains("not_on_behalf"), "{body}");
        }
        for path in [
            "/admin/audit",
            "/admin/impersonations",
            &format!("/admin/audit/sessions/{}", ids.on_behalf),
        ] {
            let (status, body) = page(&app, &token, path).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{mode}: {path}");
            assert!(!body.contains("not_on_behalf"));
        }
        assert_eq!(snapshot(&app).await, before, "{mode}: nothing changed");
        // Only the refusals were recorded, under the actor's name.
        let refused = app
            .scalar(&format!(
                "SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_refused' AND session_id = {} \
                 AND details LIKE '%on_behalf_protected_action%'",
                ids.on_behalf
            ))
            .await;
        assert!(refused >= 20, "{mode}: the refusals are recorded ({refused})");
        // The session goes on, in its mode.
        let (status, profile) = app.api(Method::GET, "/api/v1/profile", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(profile["on_behalf"]["mode"], mode);
        leave(&app, &token).await;
    }
    for sql in [
        "SELECT COUNT(*) FROM audit_events WHERE action = 'password_changed'",
        "SELECT COUNT(*) FROM one_click_links",
        "SELECT COUNT(*) FROM groups WHERE name <> 'Acme'",
    ] {
        assert_eq!(app.scalar(sql).await, 0, "{sql}");
    }
    let (_, openapi) = app.api(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert!(!openapi.to_string().contains("not_on_behalf"));
    assert!(openapi.to_string().contains("alias_elevate"));
    app.finish().await;
}

async fn member_marks(state: &AppState, member: i64, session: i64) -> (Option<i64>, i64, i64) {
    with_db!(&state.db, pool => {
        let (signed_in,): (Option<i64>,) = sqlx::query_as(&format!("SELECT last_sign_in_at FROM members WHERE id = {member}"))
            .fetch_one(pool)
            .await
            .unwrap();
        let (seen, idle): (i64, i64) = sqlx::query_as(&format!("SELECT last_seen_at, idle_expires_at FROM sessions WHERE id = {session}"))
            .fetch_one(pool)
            .await
            .unwrap();
        (signed_in, seen, idle)
    })
}

async fn the_members_own_marks_are_left_alone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sam = app
        .create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let product = product(&app).await.to_string();
    let ann_client = app.signed_in("ann@example.com").await;
    let (status, _) = app.post(&ann_client, "/api/orders/list", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let own = app
        .scalar(&format!(
            "SELECT MAX(id) FROM sessions WHERE member_id = {ann} AND actor_id IS NULL"
        ))
        .await;
    let before = member_marks(&app.state, ann, own).await;
    assert!(before.0.is_some(), "Ann's sign-in is recorded");

    app.clock.advance(10 * MINUTE);
    let client = app.signed_in("sam@example.com").await;
    let act = [
        ("member_id", ann.to_string()),
        ("password", PASSWORD.into()),
        ("reason", "T-16".into()),
        ("mode", "act".into()),
    ];
    let act = pairs(&act);
    let (status, body) = app.post(&client, "/api/on-behalf/start", &act).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = live_on_behalf(&app).await;
    let started = member_marks(&app.state, ann, session).await.1;
    for path in ["/", "/account/orders", "/"] {
        app.clock.advance(2 * MINUTE);
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    app.clock.advance(2 * MINUTE);
    let place = [("product_id", product.as_str()), ("quantity", "1")];
    let (status, body) = app.post(&client, "/api/orders/place", &place).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let placed = format!("SELECT COUNT(*) FROM orders WHERE member_id = {ann} AND placed_by = {sam}");
    assert_eq!(app.scalar(&placed).await, 1);

    assert_eq!(
        member_marks(&app.state, ann, own).await,
        before,
        "Ann's own marks did not move"
    );
    // (While the session on behalf's own activity is written back.)
    assert!(member_marks(&app.state, ann, session).await.1 > started);
    let (status, _) = app.post(&client, "/api/on-behalf/leave", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(member_marks(&app.state, ann, own).await, before);
    app.finish().await;
}
