//! Step 11's view trail over HTTP: every read in a session on behalf is recorded as
//! `on_behalf_viewed` (within about a second), repeats of a path within a minute fold
//! into one more record with their count, a session's views are written when it ends
//! and everything at a clean shutdown; secrets in a query are hidden; refusals and
//! writes are not views; the member reads what was viewed in their Access history.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use crate::{
    common::{session_cookie, token_of, Backend, TestApp, PASSWORD},
    served::{text as output_text, Database},
    view_only::{code, form, leave, live_on_behalf, on_behalf, pairs, product},
};
use app::members::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_databases!(
    reads_on_behalf_join_the_trail_folded_and_written_at_leave,
    a_clean_shutdown_writes_the_trail,
);

/// An `on_behalf_viewed` record: its actor, subject, session and details.
type Viewed = (Option<i64>, Option<i64>, Option<i64>, Value);
/// The same as stored.
type ViewedRow = (Option<i64>, Option<i64>, Option<i64>, String);

/// The `on_behalf_viewed` records, oldest first.
async fn views(app: &TestApp) -> Vec<Viewed> {
    let rows: Vec<ViewedRow> = with_db!(&app.state.db, pool => {
        sqlx::query_as(
            "SELECT actor_id, subject_id, session_id, details FROM audit_events \
             WHERE action = 'on_behalf_viewed' ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    rows.into_iter()
        .map(|(a, s, session, details)| (a, s, session, serde_json::from_str(&details).unwrap()))
        .collect()
}

/// Polls `count` until it returns `expected` (5 s at most); the last value seen.
async fn eventually<F, Fut>(expected: i64, count: F) -> i64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = count().await;
        if seen == expected || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const VIEWED: &str = "SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_viewed'";

/// What leaving wrote (at once, no waiting): every first view and the repeats' count,
/// by `ids` (actor, member, session), before the session's end.
async fn written_at_leave(app: &TestApp, ids: (i64, i64, i64)) {
    let (sam, ann, session) = ids;
    let views = views(app).await;
    let summary: Vec<(&str, &str, u64, bool)> = views
        .iter()
        .map(|(_, _, _, d)| {
            (
                d["path"].as_str().unwrap(),
                d["label"].as_str().unwrap_or("-"),
                d["count"].as_u64().unwrap(),
                d["repeats"] == true,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("/account/orders", "Orders", 1, false),
            ("/", "Profile", 1, false),
            ("/api/v1/orders", "Orders", 1, false),
            ("/account/orders?token=[hidden]&page=2", "Orders", 1, false),
            ("/account/orders", "Orders", 2, true),
        ],
        "{views:?}"
    );
    for (actor, subject, on_behalf, details) in &views {
        assert_eq!(
            (*actor, *subject, *on_behalf),
            (Some(sam), Some(ann), Some(session)),
            "{details}"
        );
        assert!(!details.to_string().contains("abc"), "{details}");
    }
    let folded = &views[4].3;
    assert!(folded["first_at"].as_i64().unwrap() <= folded["last_at"].as_i64().unwrap());
    assert!(views[0].3["at"].is_i64());
    // The trail comes before the session's end.
    let end = app
        .scalar(&format!(
            "SELECT id FROM audit_events WHERE action = 'on_behalf_end' AND session_id = {session}"
        ))
        .await;
    let last = app
        .scalar("SELECT MAX(id) FROM audit_events WHERE action = 'on_behalf_viewed'")
        .await;
    assert!(last < end, "viewed {last} before the end {end}");
}

/// Ann reads what was viewed, by the pages' names, in both ways.
async fn access_history_lists_the_views(app: &TestApp) {
    let ann_client = app.signed_in("ann@example.com").await;
    let (status, history) = app.post(&ann_client, "/api/account/access-history", &[]).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history[0]["viewed"], json!(["Orders", "Profile"]), "{history}");
    assert_eq!(history[0]["mode"], "view");
    assert_eq!(history[0]["actions"], 0, "views are not changes");
    let ann_token = app.api_login("ann@example.com").await;
    let (status, history) = app
        .api(Method::GET, "/api/v1/access_history", Some(&ann_token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history[0]["viewed"], json!(["Orders", "Profile"]), "{history}");
}

async fn reads_on_behalf_join_the_trail_folded_and_written_at_leave(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sam = app
        .create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let client = app.signed_in("sam@example.com").await;
    let start = [
        ("member_id", ann.to_string()),
        ("password", PASSWORD.into()),
        ("reason", "T-17".into()),
    ];
    let start = pairs(&start);
    let response = app.post_form(&client, "/api/on-behalf/start", &start).await;
    assert_eq!(response.status(), StatusCode::OK);
    let token = token_of(&session_cookie(&response).expect("a cookie"));
    let session = live_on_behalf(&app).await;

    for path in ["/account/orders", "/account/orders", "/account/orders", "/"] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let (status, body) = app.api(Method::GET, "/api/v1/orders", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = client
        .get(app.url("/account/orders?token=abc&page=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Not views: a refused read (Ann has no admin access) and a refused write.
    let (status, body) = app.api(Method::GET, "/api/v1/members", Some(&token), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = form(
        &app,
        &token,
        "/api/orders/place",
        &[("product_id", "1"), ("quantity", "1")],
    )
    .await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::FORBIDDEN, "on_behalf_view_only")
    );

    // The first view of each path is written within a second or so; the repeats wait
    // for their minute (the test clock does not move).
    assert_eq!(eventually(4, || app.scalar(VIEWED)).await, 4);
    assert!(views(&app).await.iter().all(|v| v.3["count"] == 1));

    // Leaving writes the rest at once: the repeats' count.
    let (status, _) = app.post(&client, "/api/on-behalf/leave", &[]).await;
    assert_eq!(status, StatusCode::OK);
    written_at_leave(&app, (sam, ann, session)).await;
    access_history_lists_the_views(&app).await;
    // Her own reads are no views, nor is a change made acting on her behalf.
    let token = on_behalf(&app, "sam@example.com", ann, Some("act")).await;
    let order = json!({ "product_id": product(&app).await, "quantity": 1 });
    let (status, body) = app
        .api(Method::POST, "/api/v1/orders", Some(&token), Some(order))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    leave(&app, &token).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(app.scalar(VIEWED).await, 5);
    app.finish().await;
}

/// A `behalf serve` process, killed if the test fails before it stops.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `behalf serve` on `db`, started; its process and its address.
fn serve(db: &Database) -> (Process, String) {
    let mut child = Process(
        db.command(&["serve", "--addr", "127.0.0.1:0", "--no-demo"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("behalf serve starts"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    loop {
        let line = lines.recv_timeout(Duration::from_secs(120)).expect("serving");
        if let Some(base) = line.strip_prefix("Behalf is serving on ") {
            return (child, base.trim().to_string());
        }
    }
}

async fn api(
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    crate::common::json_of(request.send().await.expect("request")).await
}

async fn a_clean_shutdown_writes_the_trail(backend: Backend) {
    let Some(db) = Database::new(backend).await else {
        return;
    };
    let out = db.behalf(&["migrate"]);
    assert!(out.status.success(), "{}", output_text(&out));
    for (email, role) in [("sam@example.com", "support"), ("ann@example.com", "member")] {
        let out = db.behalf(&[
            "create-member",
            "--email",
            email,
            "--password",
            PASSWORD,
            "--role",
            role,
        ]);
        assert!(out.status.success(), "{}", output_text(&out));
    }
    let ann = db
        .scalar("SELECT id FROM members WHERE email_key = 'ann@example.com'")
        .await;
    let (mut child, base) = serve(&db);
    let login = json!({ "email": "sam@example.com", "password": PASSWORD });
    let (status, body) = api(&base, Method::POST, "/api/v1/login", None, Some(login)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let start = json!({ "member_id": ann, "password": PASSWORD, "reason": "T-18" });
    let sam = body["token"].as_str().unwrap().to_string();
    let (status, body) = api(
        &base,
        Method::POST,
        "/api/v1/alias_login",
        Some(&sam),
        Some(start),
    )
    .await;
    assert_eq!(
        (status, &body["mode"]),
        (StatusCode::OK, &json!("view")),
        "{body}"
    );
    let token = body["token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let (status, body) = api(&base, Method::GET, "/api/v1/orders", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // The first view within a second or so; the repeat waits for its minute…
    let first = "SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_viewed' \
                 AND details LIKE '%\"count\":1%' AND details NOT LIKE '%repeats%'";
    assert_eq!(eventually(1, || db.scalar(first)).await, 1);
    let folded = "SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_viewed' \
                  AND details LIKE '%\"count\":1%' AND details LIKE '%\"repeats\":true%'";
    assert_eq!(db.scalar(folded).await, 0);

    // …or for the server to stop.
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "behalf serve did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
    assert_eq!(db.scalar(first).await, 1);
    assert_eq!(
        db.scalar(folded).await,
        1,
        "the repeat's count is written at shutdown"
    );
    assert_eq!(db.scalar(VIEWED).await, 2);
    db.finish().await;
}
