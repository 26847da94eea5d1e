//! The holes a security review found, each closed and shown closed over real HTTP on
//! both databases: throttled sign-in, no self-grant to a peer, no racing the
//! re-authentication lockout or the start of a session on behalf, no change of
//! identity mid-request, the role grant's admin access, and the smaller ones.

use crate::common::{json_of, session_cookie, Backend, Options, TestApp, PASSWORD};
use app::{clock::SECOND, members::Role, orders::service::ensure_catalogue, state::Settings};
use futures_util::future::join_all;
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

on_both_databases!(
    forty_parallel_wrong_passwords_lock_an_account_after_five,
    an_unknown_email_is_throttled_exactly_like_a_known_one,
    sign_in_is_throttled_per_client_address,
    nobody_grants_themselves_access_to_a_peer,
    forty_parallel_wrong_reauthentications_verify_only_five,
    parallel_starts_from_one_session_leave_one_session_on_behalf,
    a_request_whose_session_on_behalf_ended_acts_as_no_one,
    a_change_in_flight_when_its_session_on_behalf_ends_rolls_back,
    the_role_grant_needs_admin_access_and_keeps_needing_it,
    two_super_users_demoting_each_other_at_once_leave_one,
    deleting_a_group_follows_the_rank_rules,
    the_csv_export_is_refused_to_other_sites,
    every_end_of_a_session_is_recorded,
    re_authentication_checks_the_password_length,
    an_editor_cannot_demote_a_peer_to_reach_them,
    a_late_request_with_an_ended_session_on_behalf_keeps_the_actors_cookie,
    every_api_error_has_the_one_shape,
    the_group_choices_need_admin_access,
);

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.scalar(sql).await
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    count(
        app,
        &format!("SELECT COUNT(*) FROM audit_events WHERE action = '{action}'"),
    )
    .await
}

async fn login_raw(app: &TestApp, email: &str, password: &str) -> Response {
    app.login(&app.client(), email, password).await
}

fn retry_after(response: &Response) -> Option<u64> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Statuses of `n` parallel wrong sign-ins to `email`, with the 429 bodies.
async fn parallel_wrong_sign_ins(app: &TestApp, email: &str, n: usize) -> (Vec<StatusCode>, Vec<Value>) {
    let attempts = (0..n).map(|_| async {
        let response = login_raw(app, email, "wrong password!").await;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(
                retry_after(&response).is_some_and(|s| s > 0),
                "429 carries Retry-After"
            );
        }
        let (_, body) = json_of(response).await;
        (status, body)
    });
    let results = join_all(attempts).await;
    let statuses = results.iter().map(|(s, _)| *s).collect();
    let throttled = results
        .into_iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .map(|(_, b)| b)
        .collect();
    (statuses, throttled)
}

fn tally(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

async fn forty_parallel_wrong_passwords_lock_an_account_after_five(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let (statuses, throttled) = parallel_wrong_sign_ins(&app, "ann@example.com", 40).await;
    // However many arrive at once, five passwords are checked, then none.
    assert_eq!(tally(&statuses, StatusCode::UNAUTHORIZED), 5, "{statuses:?}");
    assert_eq!(
        tally(&statuses, StatusCode::TOO_MANY_REQUESTS),
        35,
        "{statuses:?}"
    );
    assert_eq!(audit_count(&app, "sign_in_failed").await, 5);
    for body in &throttled {
        // Locked (30 s), or refused for a second while five checks were under way.
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        let wait = body["error"]["retry_after"].as_u64().unwrap();
        assert!(wait == 30 || wait == 1, "{body}");
    }
    // The lock is recorded once, naming the account.
    assert_eq!(audit_count(&app, "sign_in_locked").await, 1);
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT COUNT(*) FROM audit_events WHERE action = 'sign_in_locked' AND subject_id = {ann}"
            )
        )
        .await,
        1
    );
    // While locked even the right password is not checked, and nothing is started.
    let response = login_raw(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&response), Some(30));
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, 0);
    // After the lock, one more try; wrong again, it locks twice as long.
    app.clock.advance(31 * SECOND);
    let response = login_raw(&app, "ann@example.com", "still wrong").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = login_raw(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&response), Some(60));
    // Then the right password works and clears the streak.
    app.clock.advance(61 * SECOND);
    let response = login_raw(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sign_in_throttle").await, 0);
    app.finish().await;
}

async fn an_unknown_email_is_throttled_exactly_like_a_known_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let mut answers = Vec::new();
    for email in ["ann@example.com", "nobody@example.com"] {
        let mut statuses = Vec::new();
        let mut last = None;
        for _ in 0..6 {
            let response = login_raw(&app, email, "wrong password!").await;
            statuses.push(response.status());
            let wait = retry_after(&response);
            last = Some((wait, json_of(response).await.1));
        }
        assert_eq!(
            statuses,
            [
                [StatusCode::UNAUTHORIZED; 5].as_slice(),
                &[StatusCode::TOO_MANY_REQUESTS]
            ]
            .concat(),
            "{email}"
        );
        answers.push(last.unwrap());
    }
    // The same answer, word for word and header for header: nothing tells whether the
    // account exists.
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, Some(30));
    // Nothing typed is kept: the throttle holds hashes only.
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sign_in_throttle").await, 2);
    let stored: Vec<(Vec<u8>,)> = with_db!(&app.state.db, pool => {
        sqlx::query_as("SELECT key_hash FROM sign_in_throttle").fetch_all(pool).await.unwrap()
    });
    for (key,) in stored {
        assert_eq!(key.len(), 32);
        assert!(!String::from_utf8_lossy(&key).contains("nobody"));
    }
    app.finish().await;
}

async fn sign_in_is_throttled_per_client_address(backend: Backend) {
    let settings = Settings {
        sign_in_per_ip_per_minute: 3,
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
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    // Different accounts from one address: the address runs out.
    for email in ["a@example.com", "b@example.com", "ann@example.com"] {
        let response = login_raw(&app, email, "wrong password!").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{email}");
    }
    let response = login_raw(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&response).is_some_and(|s| (1..=60).contains(&s)));
    let (_, body) = json_of(response).await;
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, 0);
    assert_eq!(
        audit_count(&app, "sign_in_failed").await,
        3,
        "the refused one checked no password"
    );
    app.finish().await;
}

fn edit_form(id: i64, fields: &[(&str, String)]) -> Vec<(String, String)> {
    let mut form = vec![("id".to_string(), id.to_string())];
    for (key, value) in fields {
        form.push((format!("edit[{key}]"), value.clone()));
    }
    form
}

async fn save(app: &TestApp, client: &Client, id: i64, fields: &[(&str, String)]) -> (StatusCode, Value) {
    let form = edit_form(id, fields);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    app.post(client, "/api/members/update", &form).await
}

fn member_fields(email: &str, name: &str, role: &str, proxies: &str) -> Vec<(&'static str, String)> {
    vec![
        ("display_name", name.to_string()),
        ("email", email.to_string()),
        ("role", role.to_string()),
        ("admin_access", "true".to_string()),
        ("login_enabled", "true".to_string()),
        ("groups", String::new()),
        ("proxy_login_permission", proxies.to_string()),
    ]
}

async fn start(app: &TestApp, client: &Client, member: i64, password: &str) -> (StatusCode, Value) {
    app.post(
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

async fn nobody_grants_themselves_access_to_a_peer(backend: Backend) {
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
    app.create_member("root@example.com", "Rita Root", Role::SuperUser)
        .await;
    let eve_client = app.signed_in("eve@example.com").await;

    // Eve writes her own ID into her peer Ed's permission: refused at the field,
    // recorded, and nothing changes.
    let fields = member_fields("ed@example.com", "Ed Editor", "editor", &eve.to_string());
    let (status, body) = save(&app, &eve_client, ed, &fields).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "self_grant_to_peer");
    assert_eq!(body["error"]["field"], "proxy_login_permission");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM proxy_permissions").await, 0);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM audit_events WHERE action = 'member_update_refused' AND details LIKE '%self_grant_to_peer%'").await,
        1
    );
    assert_eq!(audit_count(&app, "member_updated").await, 0);
    // Kuroco's own example still works: herself into a lower-ranked member's permission.
    let fields = member_fields("ann@example.com", "Ann Lee", "member", &eve.to_string());
    let (status, body) = save(&app, &eve_client, ann, &fields).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        count(&app, &format!("SELECT COUNT(*) FROM proxy_permissions WHERE member_id = {ann} AND actor_id = {eve} AND granted_by = {eve}")).await,
        1,
        "the entry records who wrote it"
    );
    // Someone else may grant Eve access to her peer, and then it works.
    let root = app.signed_in("root@example.com").await;
    let fields = member_fields("ed@example.com", "Ed Editor", "editor", &eve.to_string());
    let (status, body) = save(&app, &root, ed, &fields).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = start(&app, &eve_client, ed, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.post(&eve_client, "/api/on-behalf/leave", &[]).await;
    // An equal-rank entry written by its own holder is refused by the rule itself, even
    // if one got into the database: at the start, and on the next request of a session.
    app.execute(&format!(
        "UPDATE proxy_permissions SET granted_by = {eve} WHERE member_id = {ed}"
    ))
    .await;
    let (status, body) = start(&app, &eve_client, ed, PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "self_written_grant");
    app.execute(&format!(
        "UPDATE proxy_permissions SET granted_by = NULL WHERE member_id = {ed}"
    ))
    .await;
    let (status, body) = start(&app, &eve_client, ed, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.execute(&format!(
        "UPDATE proxy_permissions SET granted_by = {eve} WHERE member_id = {ed}"
    ))
    .await;
    let (_, me) = app.post(&eve_client, "/api/whoami", &[]).await;
    assert_eq!(me["email"], "eve@example.com", "the session on behalf ended");
    app.finish().await;
}

async fn forty_parallel_wrong_reauthentications_verify_only_five(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sam = app
        .create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let client = app.signed_in("sam@example.com").await;
    let attempts = (0..40).map(|_| start(&app, &client, ann, "not my password"));
    let results = join_all(attempts).await;
    let statuses: Vec<StatusCode> = results.iter().map(|(s, _)| *s).collect();
    let codes: Vec<String> = results
        .iter()
        .map(|(_, b)| b["error"]["code"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        codes.iter().filter(|c| *c == "wrong_password").count(),
        5,
        "{codes:?}"
    );
    // The others were refused without a check: locked out, or (while five checks
    // were under way) asked to try again in a moment.
    for (status, code) in statuses
        .iter()
        .zip(&codes)
        .filter(|(_, c)| *c != "wrong_password")
    {
        assert!(
            (*status, code.as_str()) == (StatusCode::TOO_MANY_REQUESTS, "locked_out")
                || (*status, code.as_str()) == (StatusCode::CONFLICT, "conflict"),
            "{status} {code}"
        );
    }
    assert_eq!(audit_count(&app, "on_behalf_reauth_failed").await, 5);
    assert_eq!(
        count(
            &app,
            &format!("SELECT COUNT(*) FROM reauth_attempts WHERE actor_id = {sam} AND NOT pending")
        )
        .await,
        5
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM reauth_attempts WHERE pending").await,
        0
    );
    // Locked: the right password is not checked either.
    let (status, body) = start(&app, &client, ann, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM sessions WHERE actor_id IS NOT NULL").await,
        0
    );
    app.finish().await;
}

async fn parallel_starts_from_one_session_leave_one_session_on_behalf(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let client = app.signed_in("sam@example.com").await;
    let results = join_all((0..8).map(|_| start(&app, &client, ann, PASSWORD))).await;
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::OK) {
        // Refused: either it saw the switch already made, or its cookie was gone.
        assert!(
            [StatusCode::CONFLICT, StatusCode::UNAUTHORIZED].contains(status),
            "{status} {body}"
        );
    }
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM sessions WHERE actor_id IS NOT NULL").await,
        1,
        "one session on behalf, no leftovers"
    );
    assert_eq!(audit_count(&app, "on_behalf_start").await, 1);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM reauth_attempts").await,
        0,
        "right passwords are no failures"
    );
    app.finish().await;
}

async fn on_behalf_client(app: &TestApp, actor: &str, member: i64) -> Client {
    let client = app.signed_in(actor).await;
    let (status, body) = start(app, &client, member, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    client
}

async fn first_product(app: &TestApp) -> String {
    ensure_catalogue(&app.state.db, 0).await.unwrap();
    count(app, "SELECT MIN(id) FROM products").await.to_string()
}

async fn a_request_whose_session_on_behalf_ended_acts_as_no_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sam = app
        .create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let product = first_product(&app).await;
    let client = on_behalf_client(&app, "sam@example.com", ann).await;
    // A super user disables Ann's login; Sam's next order must land on nobody's account.
    app.execute(&format!(
        "UPDATE members SET login_enabled = FALSE WHERE id = {ann}"
    ))
    .await;
    let response = app
        .post_form(
            &client,
            "/api/orders/place",
            &[("product_id", &product), ("quantity", "1")],
        )
        .await;
    assert!(
        session_cookie(&response).is_some(),
        "Sam gets his own session back"
    );
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "on_behalf_ended");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(
        count(&app, &format!("SELECT COUNT(*) FROM audit_events WHERE action = 'order_placed' OR (actor_id = {sam} AND action NOT IN ('sign_in', 'on_behalf_start', 'on_behalf_end'))")).await,
        0
    );
    // The next request is Sam's own, knowingly.
    let (_, me) = app.post(&client, "/api/whoami", &[]).await;
    assert_eq!(me["email"], "sam@example.com");

    // A page sent with an ended session on behalf shows the notice and Sam's own page.
    app.execute(&format!(
        "UPDATE members SET login_enabled = TRUE WHERE id = {ann}"
    ))
    .await;
    let client = on_behalf_client(&app, "sam@example.com", ann).await;
    app.execute(&format!(
        "UPDATE members SET login_enabled = FALSE WHERE id = {ann}"
    ))
    .await;
    let page = client
        .get(app.url("/account/orders"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Sam Ortiz") && !html.contains("Impersonation banner"),
        "Sam's own page"
    );
    assert!(html.contains("no longer holds"), "with the notice");
    app.finish().await;
}

async fn a_change_in_flight_when_its_session_on_behalf_ends_rolls_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let product = first_product(&app).await;
    let client = app.client();
    app.login(&client, "sam@example.com", PASSWORD).await;
    let response = app
        .post_form(
            &client,
            "/api/on-behalf/start",
            &[
                ("member_id", &ann.to_string()),
                ("password", PASSWORD),
                ("reason", "Ticket T-42"),
                ("mode", "act"),
            ],
        )
        .await;
    let token = crate::common::token_of(&session_cookie(&response).unwrap());
    // The request has found its session live…
    let lookup = app::session::find_live(&app.state, &token).await.unwrap();
    let request = app::context::RequestContext {
        session: lookup.session,
        ..Default::default()
    };
    assert!(request.session.as_ref().unwrap().on_behalf.is_some());
    // …and the session on behalf ends before its change is written.
    app.execute("UPDATE sessions SET ended_at = 1, end_reason = 'revoked' WHERE actor_id IS NOT NULL")
        .await;
    let error = app::orders::service::place(&app.state, &request, &product, "2")
        .await
        .unwrap_err();
    assert_eq!(error.code(), "on_behalf_ended");
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM orders").await,
        0,
        "the change rolled back"
    );
    assert_eq!(audit_count(&app, "order_placed").await, 0);
    app.finish().await;
}

async fn the_role_grant_needs_admin_access_and_keeps_needing_it(backend: Backend) {
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
    // Mid-session: admin access removed, the session on behalf ends at the next request.
    let client = on_behalf_client(&app, "sam@example.com", ann).await;
    app.execute(&format!(
        "UPDATE members SET admin_access = FALSE WHERE id = {sam}"
    ))
    .await;
    let (_, me) = app.post(&client, "/api/whoami", &[]).await;
    assert_eq!(me["email"], "sam@example.com");
    assert!(me["on_behalf"].is_null());
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM sessions WHERE actor_id IS NOT NULL AND ended_at IS NULL"
        )
        .await,
        0
    );
    // Without admin access the role grant no longer opens a session…
    let (status, body) = start(&app, &client, ann, PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "role_grant_needs_admin_access");
    // …but an explicit grant still does (Kuroco's alias_login for frontends).
    let now = app.clock.now();
    app.execute(&format!(
        "INSERT INTO proxy_permissions (member_id, actor_id, created_at) VALUES ({bob}, {sam}, {now})"
    ))
    .await;
    let (status, body) = start(&app, &client, bob, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.finish().await;
}

async fn two_super_users_demoting_each_other_at_once_leave_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rita = app
        .create_member("rita@example.com", "Rita Root", Role::SuperUser)
        .await;
    let sue = app
        .create_member("sue@example.com", "Sue Super", Role::SuperUser)
        .await;
    let rita_client = app.signed_in("rita@example.com").await;
    let sue_client = app.signed_in("sue@example.com").await;
    for round in 0..5 {
        let demote_sue = member_fields("sue@example.com", "Sue Super", "editor", "");
        let demote_rita = member_fields("rita@example.com", "Rita Root", "editor", "");
        let (a, b) = tokio::join!(
            save(&app, &rita_client, sue, &demote_sue),
            save(&app, &sue_client, rita, &demote_rita),
        );
        let supers = count(&app, "SELECT COUNT(*) FROM members WHERE role = 'super_user'").await;
        assert!(supers >= 1, "round {round}: {a:?} {b:?}");
        // Put both back for the next round (directly: whoever won is a super user).
        app.execute("UPDATE members SET role = 'super_user', role_rank = 3")
            .await;
    }
    app.finish().await;
}

async fn deleting_a_group_follows_the_rank_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let rita = app
        .create_member("rita@example.com", "Rita Root", Role::SuperUser)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let root = app.signed_in("rita@example.com").await;
    let eve = app.signed_in("eve@example.com").await;
    let (_, board) = app.post(&root, "/api/groups/create", &[("name", "Board")]).await;
    let (_, shop) = app.post(&root, "/api/groups/create", &[("name", "Shop")]).await;
    let (board, shop) = (board["id"].to_string(), shop["id"].to_string());
    for (group, member) in [(&board, rita), (&board, ann), (&shop, ann)] {
        let (status, body) = app
            .post(
                &root,
                "/api/groups/add-member",
                &[("group_id", group), ("member_id", &member.to_string())],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // The Board holds a super user: Eve may not remove her, so she may not delete it.
    let (status, body) = app.post(&eve, "/api/groups/delete", &[("id", &board)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "target_outranks_editor");
    assert_eq!(
        count(&app, &format!("SELECT COUNT(*) FROM groups WHERE id = {board}")).await,
        1
    );
    assert_eq!(
        count(
            &app,
            &format!("SELECT COUNT(*) FROM group_members WHERE group_id = {board}")
        )
        .await,
        2
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM audit_events WHERE action = 'group_change_refused' AND details LIKE '%target_outranks_editor%'").await,
        1
    );
    // A group of members she may edit, she may delete.
    let (status, body) = app.post(&eve, "/api/groups/delete", &[("id", &shop)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        count(&app, &format!("SELECT COUNT(*) FROM groups WHERE id = {shop}")).await,
        0
    );
    app.finish().await;
}

async fn the_csv_export_is_refused_to_other_sites(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let eve = app.signed_in("eve@example.com").await;
    for site in ["cross-site", "same-site", "none"] {
        let response = eve
            .get(app.url("/admin/audit.csv"))
            .header("sec-fetch-site", site)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{site}");
        let html = response.text().await.unwrap();
        assert!(html.contains("Cross-site request refused."), "{html}");
    }
    assert_eq!(
        audit_count(&app, "audit_exported").await,
        0,
        "a refused export writes nothing"
    );
    for site in [Some("same-origin"), None] {
        let mut request = eve.get(app.url("/admin/audit.csv"));
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{site:?}");
        assert!(response.text().await.unwrap().starts_with("id,time_utc"));
    }
    assert_eq!(audit_count(&app, "audit_exported").await, 2);
    app.finish().await;
}

async fn every_end_of_a_session_is_recorded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sam = app
        .create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let ended = |reason: &'static str, member: i64| {
        format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'session_ended' AND subject_id = {member} \
             AND details LIKE '%\"reason\":\"{reason}\"%'"
        )
    };
    // A member's own session expiring.
    let ann_client = app.signed_in("ann@example.com").await;
    app.clock.advance(31 * 60 * SECOND);
    let (_, me) = app.post(&ann_client, "/api/whoami", &[]).await;
    assert!(me.is_null());
    assert_eq!(count(&app, &ended("expired", ann)).await, 1);
    // Revoked: its member may no longer sign in.
    let ann_client = app.signed_in("ann@example.com").await;
    app.execute(&format!(
        "UPDATE members SET login_enabled = FALSE WHERE id = {ann}"
    ))
    .await;
    app.post(&ann_client, "/api/whoami", &[]).await;
    assert_eq!(count(&app, &ended("revoked", ann)).await, 1);
    app.execute(&format!(
        "UPDATE members SET login_enabled = TRUE WHERE id = {ann}"
    ))
    .await;
    // Replaced by a new sign-in in the same browser.
    let ann_client = app.signed_in("ann@example.com").await;
    app.login(&ann_client, "ann@example.com", PASSWORD).await;
    assert_eq!(count(&app, &ended("replaced", ann)).await, 1);
    // The parent of a session on behalf, ended with it (the actor was disabled).
    let sam_client = on_behalf_client(&app, "sam@example.com", ann).await;
    app.execute(&format!(
        "UPDATE members SET login_enabled = FALSE WHERE id = {sam}"
    ))
    .await;
    app.post(&sam_client, "/api/whoami", &[]).await;
    assert_eq!(count(&app, &ended("revoked", sam)).await, 1, "the parent's end");
    app.execute(&format!(
        "UPDATE members SET login_enabled = TRUE WHERE id = {sam}"
    ))
    .await;
    // A member ending a session on their behalf from Sessions: on_behalf_end too.
    let _sam_client = on_behalf_client(&app, "sam@example.com", ann).await;
    let live: i64 = count(
        &app,
        "SELECT MAX(id) FROM sessions WHERE actor_id IS NOT NULL AND ended_at IS NULL",
    )
    .await;
    let ends_before = audit_count(&app, "on_behalf_end").await;
    let (status, body) = app
        .post(
            &ann_client,
            "/api/account/revoke-session",
            &[("id", &live.to_string())],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(audit_count(&app, "on_behalf_end").await, ends_before + 1);
    assert_eq!(
        count(&app, &format!("SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_end' AND session_id = {live} AND actor_id = {sam} AND subject_id = {ann}")).await,
        1
    );
    app.finish().await;
}

async fn re_authentication_checks_the_password_length(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let client = app.signed_in("sam@example.com").await;
    let long = "x".repeat(1025);
    let (status, body) = start(&app, &client, ann, &long).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "password");
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM reauth_attempts").await,
        0,
        "no attempt counted"
    );
    assert_eq!(audit_count(&app, "on_behalf_reauth_failed").await, 0);
    app.finish().await;
}

async fn an_editor_cannot_demote_a_peer_to_reach_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let eve = app
        .create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    let ed = app
        .create_member("ed@example.com", "Ed Editor", Role::Editor)
        .await;
    let eve_client = app.signed_in("eve@example.com").await;
    // Demoting a peer (who could then be reached by the role grant) is refused…
    let fields = member_fields("ed@example.com", "Ed Editor", "support", "");
    let (status, body) = save(&app, &eve_client, ed, &fields).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "peer_role_change");
    assert_eq!(body["error"]["field"], "role");
    // …and so is demoting and granting oneself in one save.
    let fields = member_fields("ed@example.com", "Ed Editor", "support", &eve.to_string());
    let (status, body) = save(&app, &eve_client, ed, &fields).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM proxy_permissions").await, 0);
    assert_eq!(
        count(
            &app,
            &format!("SELECT COUNT(*) FROM members WHERE id = {ed} AND role = 'editor'")
        )
        .await,
        1
    );
    // A super user may change an editor's role.
    app.create_member("root@example.com", "Rita Root", Role::SuperUser)
        .await;
    let root = app.signed_in("root@example.com").await;
    let (status, body) = save(
        &app,
        &root,
        ed,
        &member_fields("ed@example.com", "Ed Editor", "support", ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.finish().await;
}

async fn a_late_request_with_an_ended_session_on_behalf_keeps_the_actors_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let client = app.signed_in("sam@example.com").await;
    let response = app
        .post_form(
            &client,
            "/api/on-behalf/start",
            &[
                ("member_id", &ann.to_string()),
                ("password", PASSWORD),
                ("reason", "Ticket T-42"),
                ("mode", "act"),
            ],
        )
        .await;
    let on_behalf_token = crate::common::token_of(&session_cookie(&response).unwrap());
    let (status, _) = app.post(&client, "/api/on-behalf/leave", &[]).await;
    assert_eq!(status, StatusCode::OK);
    // A request still carrying the old cookie (sent before the browser saw the new one):
    let late = app
        .bare_client()
        .post(app.url("/api/orders/list"))
        .header("cookie", format!("behalf_session={on_behalf_token}"))
        .send()
        .await
        .unwrap();
    let clears = late
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("behalf_session=;"));
    assert!(!clears, "the browser's cookie (by now Sam's own) is left alone");
    let (status, body) = json_of(late).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "on_behalf_ended");
    // The old token never works again, and Sam's own session is his.
    assert_eq!(app.whoami_with_token(&on_behalf_token).await, None);
    let (_, me) = app.post(&client, "/api/whoami", &[]).await;
    assert_eq!(me["email"], "sam@example.com");
    app.finish().await;
}

async fn every_api_error_has_the_one_shape(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.client();
    let (status, body) = app.post(&client, "/api/no-such-function", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let response = client.get(app.url("/api/whoami")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let (_, body) = json_of(response).await;
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    // A malformed call is a 400 with the shape too, and a missing session a 401.
    let (status, body) = app
        .post(&client, "/api/members/get", &[("id", "not a number")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
    let (status, body) = app.post(&client, "/api/members/get", &[("id", "1")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    app.finish().await;
}

async fn the_group_choices_need_admin_access(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let (status, body) = app.post(&app.client(), "/api/members/groups", &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let ann = app.signed_in("ann@example.com").await;
    let (status, body) = app.post(&ann, "/api/members/groups", &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("no_admin_access"))
    );
    let sam = app.signed_in("sam@example.com").await;
    let (status, body) = app.post(&sam, "/api/members/groups", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, serde_json::json!([]));
    app.finish().await;
}
