//! Step 8's cases beside the matrix: stored XSS in members' names (the banner, the
//! Login as menu, the members list, the audit viewer, the CSV), SQL metacharacters in
//! every search and filter, open redirects on `next`, and session fixation.

use crate::common::{json_of, session_cookie, token_of, Backend, TestApp, PASSWORD};
use app::members::Role;
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

on_both_databases!(
    hostile_names_are_shown_as_text_everywhere,
    sql_metacharacters_in_searches_and_filters_are_only_text,
    next_never_leaves_the_site_and_a_planted_token_is_never_adopted,
);

const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "\"><img src=x onerror=alert(1)>";

/// What an HTML page must never contain when it shows the hostile names.
fn assert_escaped(html: &str, page: &str) {
    assert!(!html.contains(SCRIPT), "{page} carries a raw <script>");
    assert!(
        !html.contains("<img src=x onerror"),
        "{page} carries a raw <img onerror>"
    );
}

async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let response = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap()
}

async fn hostile_names_are_shown_as_text_everywhere(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("root@example.com", "Root", Role::SuperUser)
        .await;
    let script = app.create_member("x1@example.com", SCRIPT, Role::Member).await;
    let img = app.create_member("x2@example.com", IMG, Role::Support).await;
    // The hostile support engineer is in the permission of a member with admin access,
    // so their name is in that member's Login as menu… and in the audit trail.
    let target = app
        .create_member("tia@example.com", "Tia Target", Role::Member)
        .await;
    let root = app.api_login("root@example.com").await;
    let (status, body) = app
        .api(
            Method::PATCH,
            &format!("/api/v1/members/{target}"),
            Some(&root),
            Some(json!({ "admin_access": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .api(
            Method::PUT,
            &format!("/api/v1/members/{target}/proxy_login_permission"),
            Some(&root),
            Some(json!({ "member_ids": [img] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let admin = app.signed_in("root@example.com").await;
    let members = page(&app, &admin, "/admin/members").await;
    assert_escaped(&members, "the members list");
    assert!(
        members.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name is shown, as text"
    );
    for id in [script, img] {
        assert_escaped(
            &page(&app, &admin, &format!("/admin/members/{id}")).await,
            "the blade",
        );
    }
    // The banner: a session on behalf of the member named <script>.
    let (status, body) = app
        .post(
            &admin,
            "/api/on-behalf/start",
            &[
                ("member_id", &script.to_string()),
                ("password", PASSWORD),
                ("reason", "XSS check"),
                ("mode", "act"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let home = page(&app, &admin, "/").await;
    assert_escaped(&home, "the banner");
    assert!(
        home.contains("&lt;script&gt;"),
        "the banner names the member, as text"
    );
    let (status, _) = app.post(&admin, "/api/on-behalf/leave", &[]).await;
    assert_eq!(status, StatusCode::OK);
    // The Login as menu answers JSON, which the page renders as text nodes; a signed-in
    // page of the hostile actor carries their name escaped too.
    let hostile = app.signed_in("x2@example.com").await;
    let (status, menu) = app.post(&hostile, "/api/on-behalf/candidates", &[]).await;
    assert_eq!(status, StatusCode::OK, "{menu}");
    assert!(menu.to_string().contains("Tia Target"), "{menu}");
    assert_escaped(&page(&app, &hostile, "/").await, "the hostile member's own page");
    // The audit viewer and the CSV.
    let audit = page(&app, &admin, "/admin/audit").await;
    assert_escaped(&audit, "the audit viewer");
    let csv = admin.get(app.url("/admin/audit.csv")).send().await.unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(csv.headers()["x-content-type-options"], "nosniff");
    assert!(csv.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let text = csv.text().await.unwrap();
    assert!(text.contains("XSS check"), "the CSV holds the on-behalf records");
    app.finish().await;
}

async fn sql_metacharacters_in_searches_and_filters_are_only_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("eve@example.com", "Eve Editor", Role::Editor)
        .await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    app.create_member("pct@example.com", "Per%cent_Under", Role::Member)
        .await;
    let eve = app.api_login("eve@example.com").await;
    let members_before = app.scalar("SELECT COUNT(*) FROM members").await;
    let hostile = [
        "' OR '1'='1",
        "'; DROP TABLE members; --",
        "\" OR \"\"=\"",
        "%",
        "_",
        "\\",
        "%' --",
        "1) OR (1=1",
        "\u{0}",
        "ann' UNION SELECT email FROM members --",
    ];
    let encode = |text: &str| text.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    for text in hostile {
        let q = encode(text);
        for query in [
            format!("q={q}"),
            format!("role={q}"),
            format!("group={q}"),
            format!("sort={q}"),
            format!("q=ann&sort=name&dir={q}"),
        ] {
            let (status, body) = app
                .api(Method::GET, &format!("/api/v1/members?{query}"), Some(&eve), None)
                .await;
            assert!(
                status == StatusCode::OK
                    || status == StatusCode::UNPROCESSABLE_ENTITY
                    || status == StatusCode::BAD_REQUEST,
                "members?{query}: {status} {body}"
            );
            if status == StatusCode::OK && query.starts_with("q=") {
                // A metacharacter matches itself, not everything.
                let names: Vec<&str> = body["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|m| m["display_name"].as_str())
                    .collect();
                assert!(names.is_empty(), "{text:?} matched {names:?}");
            }
        }
        for filter in ["actor", "subject", "action", "from", "to", "session"] {
            let (status, body) = app
                .api(
                    Method::GET,
                    &format!("/api/v1/audit?{filter}={q}"),
                    Some(&eve),
                    None,
                )
                .await;
            assert!(
                status == StatusCode::OK
                    || status == StatusCode::UNPROCESSABLE_ENTITY
                    || status == StatusCode::BAD_REQUEST,
                "audit?{filter}={text:?}: {status} {body}"
            );
            if status == StatusCode::OK && filter == "action" {
                assert_eq!(
                    body["records"].as_array().unwrap().len(),
                    0,
                    "{text:?} is no action"
                );
            }
        }
        // The web list and the CSV take the same filters.
        let browser = app.signed_in("eve@example.com").await;
        let (status, body) = app.post(&browser, "/api/members/list", &[("q", text)]).await;
        assert!(
            status == StatusCode::OK || status.is_client_error(),
            "{status} {body}"
        );
        let csv = browser
            .get(app.url(&format!("/admin/audit.csv?action={q}")))
            .send()
            .await
            .unwrap();
        assert!(!csv.status().is_server_error(), "{}", csv.status());
    }
    // `%` and `_` match themselves only.
    for (q, expected) in [
        ("per%25c", vec!["Per%cent_Under"]),
        ("per%25cent_u", vec!["Per%cent_Under"]),
        ("per_c", vec![]),
        ("pe%25t", vec![]),
        ("p_r", vec![]),
    ] {
        let (status, body) = app
            .api(Method::GET, &format!("/api/v1/members?q={q}"), Some(&eve), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let names: Vec<&str> = body["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["display_name"].as_str())
            .collect();
        assert_eq!(names, expected, "q={q}");
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM members").await,
        members_before,
        "nothing was dropped or added"
    );
    assert!(matches!(
        app::audit::verify::verify(&app.state.db).await.unwrap(),
        app::audit::verify::Verdict::Intact { .. }
    ));
    app.finish().await;
}

async fn next_never_leaves_the_site_and_a_planted_token_is_never_adopted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    for next in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/%2F%2Fevil.example",
        " //evil.example",
        "http:evil.example",
        "/\t/evil.example",
    ] {
        let response = app
            .bare_client()
            .post(app.url("/api/login"))
            .form(&[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::OK);
        let target = body.as_str().unwrap();
        // A path on this site: never `//host`, `/\\host` or a scheme, nothing a browser
        // would read as another origin.
        assert!(
            target.starts_with('/') && !target.starts_with("//") && !target.contains('\\'),
            "{next:?} → {target:?}"
        );
        assert!(
            !target.chars().any(char::is_control) && !target.contains(':'),
            "{next:?} → {target:?}"
        );
        // The sign-in page's redirect after a 302 keeps only a path too.
        let response = app
            .bare_client()
            .get(app.url(&format!("/login?next={}", next.replace(' ', "%20"))))
            .send()
            .await
            .unwrap();
        assert!(!response.status().is_server_error());
    }
    // Session fixation: a token planted before sign-in is never adopted, and the one
    // the server gives is new.
    let planted = "B".repeat(43);
    let response = app
        .bare_client()
        .post(app.url("/api/login"))
        .header(header::COOKIE, format!("behalf_session={planted}"))
        .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let given = token_of(&session_cookie(&response).expect("a new cookie"));
    assert_ne!(given, planted);
    assert_eq!(app.whoami_with_token(&planted).await, None);
    // Through the API too: the token is the server's.
    let (status, body) = app
        .api(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({ "email": "ann@example.com", "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(body["token"], Value::String(planted));
    app.finish().await;
}
