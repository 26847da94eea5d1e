//! Step 7: one-click login links. Who may create one (each role against each target
//! rank), GET never consumes, POST consumes once (also under 40 parallel POSTs),
//! every failure looks the same and is recorded with its reason, the per-address
//! throttle, revocation (by hand, by a password change, by disabling the login), and
//! the keyed hash kept instead of the token.

use crate::common::{session_cookie, Backend, Options, TestApp};
use app::{clock::MINUTE, members::Role, session::token::Token, state::Settings};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_databases!(
    who_may_create_a_link_follows_rank_admin_access_and_login,
    opening_never_consumes_and_continuing_signs_in_once,
    every_failure_looks_the_same_and_is_recorded_with_its_reason,
    parallel_continues_let_exactly_one_in,
    a_flood_of_guesses_is_throttled_before_any_lookup,
    changes_to_the_member_revoke_their_links,
    links_are_listed_and_revoked_by_those_allowed,
    the_link_key_is_generated_once_and_kept,
    a_demotion_racing_creations_leaves_no_link_of_the_demoted,
    links_used_over_a_session_while_others_are_made_never_deadlock,
);

const CARD: &str = "Continue as";

struct People {
    sup: i64,
    ed: i64,
    mem: i64,
}

/// A super user, two editors, a support engineer with admin access, one without, and
/// a member.
async fn people(app: &TestApp) -> People {
    app.create_member("root@example.com", "Root Super", Role::SuperUser)
        .await;
    app.create_member("root2@example.com", "Second Super", Role::SuperUser)
        .await;
    let ed = app
        .create_member("ed@example.com", "Ed Editor", Role::Editor)
        .await;
    app.create_member("ed2@example.com", "Eda Editor", Role::Editor)
        .await;
    let sup = app
        .create_member("sup@example.com", "Sam Support", Role::Support)
        .await;
    let plain = app
        .create_member("plain@example.com", "Pat Plain", Role::Support)
        .await;
    app.execute(&format!(
        "UPDATE members SET admin_access = FALSE WHERE id = {plain}"
    ))
    .await;
    let mem = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    People { sup, ed, mem }
}

async fn id_of(app: &TestApp, email: &str) -> i64 {
    app.scalar(&format!("SELECT id FROM members WHERE email = '{email}'"))
        .await
}

/// Creates a link as `token`'s member for `member`: the status and the body.
async fn create(app: &TestApp, token: &str, member: i64, body: Value) -> (StatusCode, Value) {
    app.api(
        Method::POST,
        &format!("/api/v1/members/{member}/one_click_links"),
        Some(token),
        Some(body),
    )
    .await
}

async fn created_path(app: &TestApp, token: &str, member: i64) -> String {
    let (status, body) = create(app, token, member, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["path"].as_str().unwrap().to_string()
}

async fn count(app: &TestApp, action: &str) -> i64 {
    app.scalar(&format!(
        "SELECT COUNT(*) FROM audit_events WHERE action = '{action}'"
    ))
    .await
}

/// The reasons of the `one_click_failed` records, oldest first.
async fn failure_reasons(app: &TestApp) -> Vec<String> {
    let rows: Vec<(String,)> = with_db!(&app.state.db, pool => {
        sqlx::query_as("SELECT details FROM audit_events WHERE action = 'one_click_failed' ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap()
    });
    rows.into_iter()
        .map(|(details,)| {
            let details: Value = serde_json::from_str(&details).unwrap();
            details["reason"].as_str().unwrap().to_string()
        })
        .collect()
}

async fn get(app: &TestApp, client: &reqwest::Client, path: &str) -> (StatusCode, String) {
    let response = client.get(app.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn post(app: &TestApp, client: &reqwest::Client, path: &str) -> reqwest::Response {
    client.post(app.url(path)).send().await.unwrap()
}

async fn who_may_create_a_link_follows_rank_admin_access_and_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = people(&app).await;
    let root = app.api_login("root@example.com").await;
    let ed = app.api_login("ed@example.com").await;
    let sup = app.api_login("sup@example.com").await;
    let plain = app.api_login("plain@example.com").await;
    let ann = app.api_login("ann@example.com").await;
    let [root2, ed2, plain_id] = [
        id_of(&app, "root2@example.com").await,
        id_of(&app, "ed2@example.com").await,
        id_of(&app, "plain@example.com").await,
    ];
    let disabled = app
        .create_member("off@example.com", "Off Member", Role::Member)
        .await;
    app.execute(&format!(
        "UPDATE members SET login_enabled = FALSE WHERE id = {disabled}"
    ))
    .await;
    // (creator, target, expected status, expected code)
    let table: Vec<(&str, &str, i64, StatusCode, &str)> = vec![
        ("member", &ann, p.mem, StatusCode::FORBIDDEN, "no_admin_access"),
        (
            "support without admin access",
            &plain,
            p.mem,
            StatusCode::FORBIDDEN,
            "no_admin_access",
        ),
        ("support", &sup, p.mem, StatusCode::CREATED, ""),
        (
            "support",
            &sup,
            plain_id,
            StatusCode::FORBIDDEN,
            "target_rank_not_lower",
        ),
        (
            "support",
            &sup,
            p.ed,
            StatusCode::FORBIDDEN,
            "target_rank_not_lower",
        ),
        ("editor", &ed, p.mem, StatusCode::CREATED, ""),
        ("editor", &ed, plain_id, StatusCode::CREATED, ""),
        (
            "editor",
            &ed,
            p.sup,
            StatusCode::FORBIDDEN,
            "target_has_admin_access",
        ),
        ("editor", &ed, ed2, StatusCode::FORBIDDEN, "target_rank_not_lower"),
        (
            "editor",
            &ed,
            root2,
            StatusCode::FORBIDDEN,
            "target_rank_not_lower",
        ),
        (
            "editor",
            &ed,
            disabled,
            StatusCode::FORBIDDEN,
            "not_authorized_to_log_in",
        ),
        ("super user", &root, p.sup, StatusCode::CREATED, ""),
        ("super user", &root, p.ed, StatusCode::CREATED, ""),
        (
            "super user",
            &root,
            root2,
            StatusCode::FORBIDDEN,
            "target_rank_not_lower",
        ),
    ];
    let mut refused = 0;
    let mut made = 0;
    for (who, token, target, status, code) in &table {
        let (got, body) = create(&app, token, *target, json!({})).await;
        assert_eq!(got, *status, "{who} → member {target}: {body}");
        if got == StatusCode::CREATED {
            made += 1;
            let path = body["path"].as_str().unwrap();
            assert!(path.starts_with(&format!("/one-click/{target}/")), "{path}");
            assert!(body["link"]["created_by_name"].is_string());
        } else {
            refused += 1;
            assert_eq!(body["error"]["code"], *code, "{who} → member {target}");
        }
    }
    assert_eq!(count(&app, "one_click_created").await, made);
    assert_eq!(count(&app, "one_click_create_refused").await, refused);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM one_click_links").await, made);
    // Unknown members, and lifetimes out of range.
    let (status, body) = create(&app, &ed, 999_999, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    for minutes in [0, -5, 10_081] {
        let (status, body) = create(&app, &ed, p.mem, json!({ "expires_in_minutes": minutes })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{minutes}: {body}");
        assert_eq!(body["error"]["field"], "expires_in_minutes");
    }
    let (status, body) = create(&app, &ed, p.mem, json!({ "expires_in_minutes": "soon" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM one_click_links").await,
        made,
        "refusals add no link"
    );
    // The default lifetime is 15 minutes; a chosen one is kept.
    let (_, body) = create(&app, &ed, p.mem, json!({ "expires_in_minutes": 60 })).await;
    let id = body["link"]["id"].as_i64().unwrap();
    let lifetime = app
        .scalar(&format!(
            "SELECT expires_at - created_at FROM one_click_links WHERE id = {id}"
        ))
        .await;
    assert_eq!(lifetime, 60 * MINUTE);
    let first = app
        .scalar("SELECT expires_at - created_at FROM one_click_links ORDER BY id LIMIT 1")
        .await;
    assert_eq!(first, 15 * MINUTE);
    app.finish().await;
}

async fn opening_never_consumes_and_continuing_signs_in_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = people(&app).await;
    let ed = app.api_login("ed@example.com").await;
    let path = created_path(&app, &ed, p.mem).await;
    // Only a keyed hash of the token is stored, and not its plain SHA-256.
    let token = path.rsplit('/').next().unwrap().to_string();
    let stored: Vec<u8> = with_db!(&app.state.db, pool => {
        let (hash,): (Vec<u8>,) = sqlx::query_as("SELECT token_hash FROM one_click_links")
            .fetch_one(pool)
            .await
            .unwrap();
        hash
    });
    assert_eq!(stored, app.state.link_key.hash(&token));
    assert_ne!(stored, app::session::token::hash_token(&token));

    // A link scanner fetches it twice: nothing is used up.
    let scanner = app.bare_client();
    for _ in 0..2 {
        let (status, body) = get(&app, &scanner, &path).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains(&format!("{CARD} Ann Lee")), "{body}");
        assert!(body.contains("<button type=\"submit\" class=\"button primary\">Continue</button>"));
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM one_click_links WHERE used_at IS NULL")
            .await,
        1
    );
    assert_eq!(count(&app, "one_click_opened").await, 2);

    // The editor who made it cannot use it in their own browser (a session as the
    // member with no banner): refused like any failure, and not used up.
    let maker = app.signed_in("ed@example.com").await;
    assert_eq!(post(&app, &maker, &path).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM one_click_links WHERE used_at IS NULL")
            .await,
        1
    );
    // A cross-site POST gets the refusal as a page, and changes nothing.
    let cross = app
        .client()
        .post(app.url(&path))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert!(cross
        .text()
        .await
        .unwrap()
        .contains("Cross-site request refused."));
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM one_click_links WHERE used_at IS NULL")
            .await,
        1
    );
    // A browser signed in as somebody else is told whose session ends.
    let browser = app.signed_in("sup@example.com").await;
    let (_, body) = get(&app, &browser, &path).await;
    assert!(body.contains("signed in as Sam Support"), "{body}");
    let response = post(&app, &browser, &path).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
    assert!(session_cookie(&response).is_some());
    assert_eq!(response.headers()["x-robots-tag"], "noindex, nofollow");
    assert_eq!(app.whoami(&browser).await.as_deref(), Some("ann@example.com"));
    // Sam's session ended (replaced), and the sign-in says how it came about.
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM sessions WHERE member_id = {} AND ended_at IS NULL",
            p.sup
        ))
        .await,
        0
    );
    assert_eq!(count(&app, "one_click_used").await, 1);
    let method = app
        .scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'sign_in' AND details LIKE '%one_click%'")
        .await;
    assert_eq!(method, 1);

    // Replayed: the generic failure, and nothing changes.
    let sessions = app.scalar("SELECT COUNT(*) FROM sessions").await;
    let again = post(&app, &app.client(), &path).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert!(session_cookie(&again).is_none());
    let (status, body) = get(&app, &scanner, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("This link cannot be used"), "{body}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, sessions);
    assert_eq!(
        failure_reasons(&app).await,
        vec!["creators_browser", "used", "used"]
    );
    app.finish().await;
}

async fn every_failure_looks_the_same_and_is_recorded_with_its_reason(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = people(&app).await;
    let ed = app.api_login("ed@example.com").await;
    let client = app.bare_client();
    let good = created_path(&app, &ed, p.mem).await;
    let token = good.rsplit('/').next().unwrap().to_string();
    let revoked = created_path(&app, &ed, p.mem).await;
    let (_, list) = app
        .api(
            Method::GET,
            &format!("/api/v1/members/{}/one_click_links", p.mem),
            Some(&ed),
            None,
        )
        .await;
    let revoked_id = list["links"][0]["id"].as_i64().unwrap();
    let (status, _) = app
        .api(
            Method::DELETE,
            &format!("/api/v1/one_click_links/{revoked_id}"),
            Some(&ed),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut tampered = token.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cases = [
        ("malformed", format!("/one-click/{}/abc", p.mem)),
        ("malformed", format!("/one-click/x{}/{token}", p.mem)),
        ("malformed", format!("/one-click/{}/{}%FF", p.mem, &token[..42])),
        ("unknown", format!("/one-click/{}/{tampered}", p.mem)),
        (
            "unknown",
            format!("/one-click/{}/{}", p.mem, Token::generate().expose()),
        ),
        ("other_member", format!("/one-click/{}/{token}", p.sup)),
        ("revoked", revoked.clone()),
    ];
    let mut pages = Vec::new();
    let mut expected = Vec::new();
    for (reason, path) in &cases {
        let (status, body) = get(&app, &client, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{reason}: {path}");
        pages.push(body);
        let response = post(&app, &client, path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{reason}: POST {path}");
        assert!(session_cookie(&response).is_none());
        pages.push(response.text().await.unwrap());
        expected.extend([reason.to_string(), reason.to_string()]);
    }
    // Expired: the clock moves past the 15 minutes.
    app.clock.advance(15 * MINUTE + 1);
    let (status, body) = get(&app, &client, &good).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    pages.push(body);
    let response = post(&app, &client, &good).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    pages.push(response.text().await.unwrap());
    expected.extend(["expired".to_string(), "expired".to_string()]);
    assert!(
        pages.iter().all(|page| page == &pages[0]),
        "every failure shows the same page"
    );
    assert!(pages[0].contains("This link cannot be used"));
    assert_eq!(failure_reasons(&app).await, expected);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM one_click_links WHERE used_at IS NOT NULL")
            .await,
        0
    );
    app.finish().await;
}

async fn parallel_continues_let_exactly_one_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = people(&app).await;
    let ed = app.api_login("ed@example.com").await;
    let path = created_path(&app, &ed, p.mem).await;
    let url = app.url(&path);
    let client = app.bare_client();
    let attempts = (0..40).map(|_| {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let response = client.post(url).send().await.unwrap();
            (response.status(), session_cookie(&response).is_some())
        })
    });
    let results: Vec<(StatusCode, bool)> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let wins = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(wins, 1, "{results:?}");
    assert!(results
        .iter()
        .all(|(s, cookie)| (*s == StatusCode::SEE_OTHER) == *cookie
            && (*s == StatusCode::SEE_OTHER || *s == StatusCode::NOT_FOUND)));
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM sessions WHERE member_id = {}",
            p.mem
        ))
        .await,
        1
    );
    assert_eq!(count(&app, "one_click_used").await, 1);
    assert_eq!(failure_reasons(&app).await.len(), 39);
    app.finish().await;
}

async fn a_flood_of_guesses_is_throttled_before_any_lookup(backend: Backend) {
    let options = Options {
        settings: Settings {
            sign_in_per_ip_per_minute: 5,
            ..Settings::default()
        },
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    let p = people(&app).await;
    let client = app.bare_client();
    let guesses = (0..40).map(|n| {
        let client = client.clone();
        let url = app.url(&format!("/one-click/{}/{}", p.mem, Token::generate().expose()));
        tokio::spawn(async move {
            let response = if n % 2 == 0 {
                client.get(url).send().await.unwrap()
            } else {
                client.post(url).send().await.unwrap()
            };
            (response.status(), response.headers().contains_key("retry-after"))
        })
    });
    let results: Vec<(StatusCode, bool)> = futures_util::future::join_all(guesses)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let checked = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::NOT_FOUND)
        .count();
    let throttled = results
        .iter()
        .filter(|(s, retry)| *s == StatusCode::TOO_MANY_REQUESTS && *retry)
        .count();
    assert!(checked <= 5, "at most the quota is looked up: {results:?}");
    assert_eq!(checked + throttled, 40, "{results:?}");
    // Only the guesses that were looked up left a record.
    assert_eq!(failure_reasons(&app).await.len(), checked);
    app.finish().await;
}

async fn changes_to_the_member_revoke_their_links(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = people(&app).await;
    let ed = app.api_login("ed@example.com").await;
    let first = created_path(&app, &ed, p.mem).await;
    let second = created_path(&app, &ed, p.mem).await;
    let ann = app.api_login("ann@example.com").await;
    let other_device = app.api_login("ann@example.com").await;
    // A wrong current password changes nothing.
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/profile/password",
            Some(&ann),
            Some(json!({ "current_password": "not it at all", "new_password": "a brand new one" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "current_password");
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/profile/password",
            Some(&ann),
            Some(json!({ "current_password": crate::common::PASSWORD, "new_password": "short" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "new_password");
    assert_eq!(count(&app, "one_click_revoked").await, 0);
    // The password changes: both links are revoked with it.
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/profile/password",
            Some(&ann),
            Some(json!({ "current_password": crate::common::PASSWORD, "new_password": "a brand new one" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(count(&app, "password_changed").await, 1);
    // Every other session of Ann's ended with it; the one that changed it goes on.
    let (status, _) = app
        .api(Method::GET, "/api/v1/profile", Some(&other_device), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.api(Method::GET, "/api/v1/profile", Some(&ann), None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [&first, &second] {
        let response = post(&app, &app.bare_client(), path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(failure_reasons(&app).await, vec!["revoked", "revoked"]);
    let reasons = app
        .scalar("SELECT COUNT(*) FROM one_click_links WHERE revoke_reason = 'password_changed'")
        .await;
    assert_eq!(reasons, 2);
    assert_eq!(count(&app, "one_click_revoked").await, 2);
    // The new password works.
    let (status, _) = app
        .api(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({ "email": "ann@example.com", "password": "a brand new one" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Disabling the login revokes a new link; a rename does not.
    let third = created_path(&app, &ed, p.mem).await;
    let (status, _) = app
        .api(
            Method::PATCH,
            &format!("/api/v1/members/{}", p.mem),
            Some(&ed),
            Some(json!({ "display_name": "Ann Lee-Smith" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(count(&app, "one_click_revoked").await, 2);
    let (status, _) = app
        .api(
            Method::PATCH,
            &format!("/api/v1/members/{}", p.mem),
            Some(&ed),
            Some(json!({ "login_enabled": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(count(&app, "one_click_revoked").await, 3);
    let response = post(&app, &app.bare_client(), &third).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM one_click_links WHERE revoke_reason = 'login_disabled'")
            .await,
        1
    );
    // Disabling the login ended Ann's sessions there and then (no request needed),
    // each with its record.
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM sessions WHERE member_id = {} AND ended_at IS NULL",
            p.mem
        ))
        .await,
        0
    );
    assert!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'session_ended' AND details LIKE '%login_disabled%'")
            .await
            >= 1
    );

    // Demoting the creator revokes the links they made.
    let root = app.api_login("root@example.com").await;
    let plain_id = id_of(&app, "plain@example.com").await;
    let by_ed = created_path(&app, &ed, plain_id).await;
    let (status, body) = app
        .api(
            Method::PATCH,
            &format!("/api/v1/members/{}", p.ed),
            Some(&root),
            Some(json!({ "role": "support" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = post(&app, &app.bare_client(), &by_ed).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // The demotion signed Ed out everywhere; the super user who made it goes on.
    let (status, _) = app.api(Method::GET, "/api/v1/profile", Some(&ed), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.api(Method::GET, "/api/v1/profile", Some(&root), None).await;
    assert_eq!(status, StatusCode::OK);
    app.finish().await;
}

async fn links_are_listed_and_revoked_by_those_allowed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = people(&app).await;
    let ed = app.api_login("ed@example.com").await;
    let sup = app.api_login("sup@example.com").await;
    let ann = app.api_login("ann@example.com").await;
    created_path(&app, &ed, p.mem).await;
    let list_path = format!("/api/v1/members/{}/one_click_links", p.mem);
    let (status, list) = app.api(Method::GET, &list_path, Some(&sup), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["links"].as_array().unwrap().len(), 1);
    assert_eq!(list["links"][0]["created_by_name"], "Ed Editor");
    assert_eq!(list["default_minutes"], 15);
    assert!(
        list["links"][0].get("path").is_none(),
        "the token is never listed"
    );
    let id = list["links"][0]["id"].as_i64().unwrap();
    // The member themselves (no admin access) may neither list nor revoke.
    let (status, _) = app.api(Method::GET, &list_path, Some(&ann), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let revoke = format!("/api/v1/one_click_links/{id}");
    let (status, _) = app.api(Method::DELETE, &revoke, Some(&ann), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An editor may not list a support engineer's with admin access (only super users).
    let (status, _) = app
        .api(
            Method::GET,
            &format!("/api/v1/members/{}/one_click_links", p.sup),
            Some(&ed),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Support may revoke what the editor made; a second revoke finds nothing.
    let (status, _) = app.api(Method::DELETE, &revoke, Some(&sup), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.api(Method::DELETE, &revoke, Some(&sup), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = app.api(Method::GET, &list_path, Some(&sup), None).await;
    assert!(list["links"].as_array().unwrap().is_empty());
    assert_eq!(count(&app, "one_click_revoked").await, 1);
    assert_eq!(count(&app, "one_click_revoke_refused").await, 1);
    // At most 20 outstanding links a member.
    for _ in 0..20 {
        created_path(&app, &sup, p.mem).await;
    }
    let (status, body) = create(&app, &sup, p.mem, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, list) = app.api(Method::GET, &list_path, Some(&sup), None).await;
    assert_eq!(list["links"].as_array().unwrap().len(), 20);
    // Not on behalf: Sam, on Ann's behalf, can create no link (and no password).
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/alias_login",
            Some(&sup),
            Some(json!({ "member_id": p.mem, "password": crate::common::PASSWORD, "reason": "Ticket 42", "mode": "act" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let on_behalf = body["token"].as_str().unwrap().to_string();
    let (status, body) = create(&app, &on_behalf, p.mem, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "on_behalf_protected_action");
    let (status, _) = app.api(Method::GET, &list_path, Some(&on_behalf), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/profile/password",
            Some(&on_behalf),
            Some(json!({ "current_password": crate::common::PASSWORD, "new_password": "taken over now" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "on_behalf_protected_action");
    assert_eq!(count(&app, "password_changed").await, 0);
    app.finish().await;
}

async fn the_link_key_is_generated_once_and_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // The harness loaded the key as `behalf serve` does; a second instance on the same
    // database finds the same one.
    let again = server::link_key(&app.state.db, app.clock.now()).await.unwrap();
    assert_eq!(again.hash("some token"), app.state.link_key.hash("some token"));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM server_secrets").await, 1);
    // A link made under it stops working once the key changes (documented: rotating
    // the secret invalidates outstanding links).
    let other = app::secret::LinkKey::from_secret(&"r".repeat(40)).unwrap();
    assert_ne!(other.hash("some token"), again.hash("some token"));
    app.finish().await;
}

/// Creations by a support engineer racing their own demotion: every link they made
/// before it is revoked by it, and none is made after it.
async fn a_demotion_racing_creations_leaves_no_link_of_the_demoted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = people(&app).await;
    let mut targets = vec![p.mem];
    for n in 0..3 {
        targets.push(
            app.create_member(&format!("t{n}@example.com"), &format!("Target {n}"), Role::Member)
                .await,
        );
    }
    let sup = app.api_login("sup@example.com").await;
    let root = app.api_login("root@example.com").await;
    let url = |path: String| app.url(&path);
    let client = app.bare_client();
    let mut tasks = Vec::new();
    for n in 0..32 {
        let request = client
            .post(url(format!(
                "/api/v1/members/{}/one_click_links",
                targets[n % targets.len()]
            )))
            .bearer_auth(&sup)
            .json(&json!({}));
        tasks.push(tokio::spawn(
            async move { request.send().await.unwrap().status() },
        ));
        if n == 12 {
            let demote = client
                .patch(url(format!("/api/v1/members/{}", p.sup)))
                .bearer_auth(&root)
                .json(&json!({ "role": "member" }));
            tasks.push(tokio::spawn(async move { demote.send().await.unwrap().status() }));
        }
    }
    for task in tasks {
        let status = task.await.unwrap();
        assert!(
            [
                StatusCode::CREATED,
                StatusCode::OK,
                StatusCode::FORBIDDEN,
                StatusCode::UNAUTHORIZED
            ]
            .contains(&status),
            "{status}"
        );
    }
    assert_eq!(
        app.scalar(&format!("SELECT role_rank FROM members WHERE id = {}", p.sup))
            .await,
        Role::Member.rank() as i64
    );
    let outstanding = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM one_click_links WHERE created_by = {} AND used_at IS NULL AND revoked_at IS NULL",
            p.sup
        ))
        .await;
    assert_eq!(
        outstanding, 0,
        "no link of the demoted creator outlives the demotion"
    );
    app.finish().await;
}

/// Four of the member's browsers, each signed in, use fresh links again and again while
/// an editor makes more for the member. Using a link over a session writes the member's
/// row and appends records; making one locks the member's row, then appends: with the
/// rows taken before the chain's head in both, nothing waits in a circle (on PostgreSQL
/// it did: "deadlock detected", a 500, found by `behalf bench`).
async fn links_used_over_a_session_while_others_are_made_never_deadlock(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = people(&app).await;
    let ed = app.api_login("ed@example.com").await;
    let browser = |_| async {
        let client = app.signed_in("ann@example.com").await;
        let mut answers = Vec::new();
        for _ in 0..6 {
            let (status, body) = create(&app, &ed, p.mem, json!({})).await;
            answers.push(status);
            if let Some(path) = body["path"].as_str() {
                answers.push(post(&app, &client, path).await.status());
            }
        }
        answers
    };
    let answers: Vec<StatusCode> = futures_util::future::join_all((0..4).map(browser))
        .await
        .into_iter()
        .flatten()
        .collect();
    let used = answers.iter().filter(|s| **s == StatusCode::SEE_OTHER).count();
    assert!(
        answers
            .iter()
            .all(|s| [StatusCode::CREATED, StatusCode::SEE_OTHER, StatusCode::CONFLICT].contains(s)),
        "{answers:?}"
    );
    assert!(used >= 4, "links were used: {answers:?}");
    assert_eq!(count(&app, "one_click_used").await as usize, used);
    app.finish().await;
}
