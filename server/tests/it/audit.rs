//! The audit trail: one record per event, in the change's transaction, nothing
//! secret in it, and a hash chain that detects tampering and survives concurrency.

use crate::common::{Backend, TestApp, PASSWORD};
use app::{
    audit::verify::{verify, Verdict},
    members::Role,
};

on_both_databases!(
    sign_in_and_sign_out_each_write_exactly_one_record,
    refusals_are_recorded_without_secrets_and_validation_errors_are_not,
    tampering_with_a_record_is_detected,
    concurrent_writers_never_fork_the_chain,
    the_viewer_filters_and_pages_for_editors_only,
    the_csv_export_streams_the_filtered_records,
);

/// Rita (super user) and Sam (support) exist; Sam logged in on behalf of Ann and left.
/// Returns the session on behalf's ID.
async fn a_session_on_behalf(app: &TestApp) -> i64 {
    app.create_member("rita@example.com", "Rita Root", Role::SuperUser)
        .await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let sam = app.signed_in("sam@example.com").await;
    let (status, body) = app
        .post(
            &sam,
            "/api/on-behalf/start",
            &[
                ("member_id", &ann.to_string()),
                ("password", PASSWORD),
                ("reason", "Ticket 7"),
                ("mode", "act"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.post(&sam, "/api/on-behalf/leave", &[]).await.0, 200);
    app.scalar("SELECT id FROM sessions WHERE actor_id IS NOT NULL")
        .await
}

async fn actions(app: &TestApp) -> Vec<(String, Option<i64>, Option<i64>)> {
    with_db!(&app.state.db, pool => {
        sqlx::query_as("SELECT action, actor_id, subject_id FROM audit_events ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap()
    })
}

async fn sign_in_and_sign_out_each_write_exactly_one_record(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let client = app.client();
    assert!(app
        .login(&client, "ann@example.com", PASSWORD)
        .await
        .status()
        .is_success());
    assert_eq!(
        actions(&app).await,
        vec![("sign_in".to_string(), Some(ann), Some(ann))]
    );
    // The record names the session it opened and where the request came from.
    let (object_type, ip): (Option<String>, Option<String>) = with_db!(&app.state.db, pool => {
        sqlx::query_as("SELECT object_type, ip FROM audit_events WHERE id = 1").fetch_one(pool).await.unwrap()
    });
    assert_eq!(object_type.as_deref(), Some("session"));
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));

    assert!(app.logout(&client).await.status().is_success());
    assert_eq!(actions(&app).await.len(), 2);
    assert_eq!(
        actions(&app).await[1],
        ("sign_out".to_string(), Some(ann), Some(ann))
    );
    // Signing out again changes nothing and records nothing.
    assert!(!app.logout(&client).await.status().is_success());
    assert_eq!(actions(&app).await.len(), 2);
    assert_eq!(
        verify(&app.state.db).await.unwrap(),
        Verdict::Intact { records: 2 }
    );
    app.finish().await;
}

async fn refusals_are_recorded_without_secrets_and_validation_errors_are_not(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let off = app
        .create_member("off@example.com", "Off Duty", Role::Member)
        .await;
    app.execute(&format!(
        "UPDATE members SET login_enabled = FALSE WHERE id = {off}"
    ))
    .await;
    let client = app.client();

    // Validation errors are not events.
    app.login(&client, "", PASSWORD).await;
    app.login(&client, "ann@example.com", "").await;
    assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_events").await, 0);

    app.login(&client, "ann@example.com", "secret-guess-1").await;
    app.login(&client, "my-password-pasted-here", "secret-guess-2")
        .await;
    app.login(&client, "off@example.com", PASSWORD).await;
    assert_eq!(
        actions(&app).await,
        vec![
            ("sign_in_failed".to_string(), None, Some(ann)),
            ("sign_in_failed".to_string(), None, None),
            ("sign_in_refused".to_string(), None, Some(off)),
        ]
    );
    let stored: Vec<(String, Option<String>)> = with_db!(&app.state.db, pool => {
        sqlx::query_as("SELECT details, object_id FROM audit_events").fetch_all(pool).await.unwrap()
    });
    let all = format!("{stored:?}");
    for secret in ["secret-guess", "my-password-pasted-here", PASSWORD, "argon2"] {
        assert!(!all.contains(secret), "{secret} leaked into {all}");
    }
    assert!(
        all.contains("wrong_password")
            && all.contains("unknown_email")
            && all.contains("not_authorized_to_log_in")
    );
    // Nothing else changed.
    assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 0);
    app.finish().await;
}

async fn tampering_with_a_record_is_detected(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let client = app.client();
    for _ in 0..3 {
        app.login(&client, "ann@example.com", PASSWORD).await;
        app.logout(&client).await;
    }
    assert_eq!(
        verify(&app.state.db).await.unwrap(),
        Verdict::Intact { records: 6 }
    );

    // Rewriting history: one changed field in record 3.
    app.execute("UPDATE audit_events SET actor_id = 999 WHERE id = 3")
        .await;
    assert!(matches!(
        verify(&app.state.db).await.unwrap(),
        Verdict::Broken { id: 3, .. }
    ));
    app.execute("UPDATE audit_events SET actor_id = subject_id WHERE id = 3")
        .await;
    assert_eq!(
        verify(&app.state.db).await.unwrap(),
        Verdict::Intact { records: 6 }
    );

    // Removing a record leaves a gap.
    app.execute("DELETE FROM audit_events WHERE id = 5").await;
    match verify(&app.state.db).await.unwrap() {
        Verdict::Broken { id, problem } => {
            assert_eq!(id, 5);
            assert!(problem.contains("missing"), "{problem}");
        }
        intact => panic!("a deletion went unnoticed: {intact:?}"),
    }
    app.finish().await;
}

async fn concurrent_writers_never_fork_the_chain(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // One account each: the sign-in throttle checks at most five passwords of one
    // account at once, and this is about the chain, not the throttle.
    for i in (0..24).step_by(2) {
        app.create_member(&format!("ann{i}@example.com"), "Ann Lee", Role::Member)
            .await;
    }
    let mut tasks = Vec::new();
    for i in 0..24 {
        let client = app.client();
        let url = app.url("/api/login");
        tasks.push(tokio::spawn(async move {
            let password = if i % 2 == 0 {
                PASSWORD.to_string()
            } else {
                format!("wrong {i}")
            };
            // Wrong passwords for unknown emails, each its own (one account would be
            // throttled after five).
            let email = if i % 2 == 0 {
                format!("ann{i}@example.com")
            } else {
                format!("nobody{i}@example.com")
            };
            client
                .post(url)
                .form(&[("email", email.as_str()), ("password", password.as_str())])
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for task in tasks {
        let status = task.await.unwrap();
        assert!(status == 200 || status == 401, "{status}");
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_events").await, 24);
    assert_eq!(
        app.scalar("SELECT MAX(id) FROM audit_events").await,
        24,
        "ids are contiguous"
    );
    assert_eq!(
        verify(&app.state.db).await.unwrap(),
        Verdict::Intact { records: 24 }
    );
    app.finish().await;
}

async fn the_viewer_filters_and_pages_for_editors_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let session = a_session_on_behalf(&app).await;
    let sam: i64 = app
        .scalar("SELECT id FROM members WHERE email_key = 'sam@example.com'")
        .await;
    let ann: i64 = app
        .scalar("SELECT id FROM members WHERE email_key = 'ann@example.com'")
        .await;
    let rita = app.signed_in("rita@example.com").await;

    let (status, page) = app
        .post(&rita, "/api/audit/list", &[("action", "on_behalf_start")])
        .await;
    assert_eq!(status, 200, "{page}");
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["actor"], serde_json::json!([sam, "Sam Ortiz"]));
    assert_eq!(records[0]["subject"], serde_json::json!([ann, "Ann Lee"]));
    assert_eq!(records[0]["session_id"], session);

    let (_, page) = app
        .post(&rita, "/api/audit/list", &[("session", &session.to_string())])
        .await;
    let actions: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["on_behalf_end", "on_behalf_start"], "newest first");
    let (_, page) = app
        .post(
            &rita,
            "/api/audit/list",
            &[("actor", &sam.to_string()), ("subject", &sam.to_string())],
        )
        .await;
    assert_eq!(page["records"][0]["action"], "sign_in");
    // Dates are whole UTC days: nothing before the records' day, all of it on that day.
    let (_, page) = app.post(&rita, "/api/audit/list", &[("to", "2001-01-01")]).await;
    assert_eq!(page["records"], serde_json::json!([]));
    let (status, body) = app
        .post(&rita, "/api/audit/list", &[("from", "2026-02-30")])
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (reqwest::StatusCode::UNPROCESSABLE_ENTITY, Some("from")),
        "{body}"
    );
    let (status, body) = app.post(&rita, "/api/audit/list", &[("actor", "1 OR 1=1")]).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (reqwest::StatusCode::UNPROCESSABLE_ENTITY, Some("actor"))
    );

    // Pages of 50, newest first, each older than the last.
    for i in 0..55 {
        // A new unknown email each time (one would be throttled after five).
        let email = format!("nobody{i}@example.com");
        app.post(
            &app.client(),
            "/api/login",
            &[("email", &email), ("password", "x")],
        )
        .await;
    }
    let (_, first) = app
        .post(&rita, "/api/audit/list", &[("action", "sign_in_failed")])
        .await;
    assert_eq!(first["records"].as_array().unwrap().len(), 50);
    let older = first["older"].as_i64().unwrap();
    let (_, second) = app
        .post(
            &rita,
            "/api/audit/list",
            &[("action", "sign_in_failed"), ("before", &older.to_string())],
        )
        .await;
    assert_eq!(second["records"].as_array().unwrap().len(), 5);
    assert!(second["older"].is_null());
    assert!(second["records"][0]["id"].as_i64().unwrap() < older);

    // The timeline: the session from start to end.
    let (status, timeline) = app
        .post(&rita, "/api/audit/session", &[("id", &session.to_string())])
        .await;
    assert_eq!(status, 200, "{timeline}");
    assert_eq!(timeline["actor"], serde_json::json!([sam, "Sam Ortiz"]));
    assert_eq!(timeline["reason"], "Ticket 7");
    assert_eq!(timeline["end_reason"], "left");
    assert_eq!(timeline["records"][0]["action"], "on_behalf_start");
    let page = rita
        .get(app.url(&format!("/admin/audit/sessions/{session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Ticket 7"));

    // Support engineers, members and strangers may not read it.
    let sam_client = app.signed_in("sam@example.com").await;
    let ann_client = app.signed_in("ann@example.com").await;
    assert_eq!(app.post(&sam_client, "/api/audit/list", &[]).await.0, 403);
    assert_eq!(app.post(&ann_client, "/api/audit/list", &[]).await.0, 403);
    assert_eq!(
        app.post(&ann_client, "/api/audit/session", &[("id", &session.to_string())])
            .await
            .0,
        403
    );
    assert_eq!(app.post(&app.client(), "/api/audit/list", &[]).await.0, 401);
    assert_eq!(
        ann_client
            .get(app.url("/admin/audit"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    app.finish().await;
}

async fn the_csv_export_streams_the_filtered_records(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let session = a_session_on_behalf(&app).await;
    let rita = app.signed_in("rita@example.com").await;
    let response = rita
        .get(app.url(&format!("/admin/audit.csv?session={session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("id,time_utc,actor_id,actor_name"));
    assert!(
        lines[1].contains(",on_behalf_start,") && lines[1].contains("Sam Ortiz"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains("\"\"reason\"\":\"\"Ticket 7\"\""),
        "JSON details are quoted: {}",
        lines[1]
    );
    assert!(lines[2].contains(",on_behalf_end,"));
    // The export is recorded; unfiltered, it holds every record (this one included).
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'audit_exported'")
            .await,
        1
    );
    let all = rita
        .get(app.url("/admin/audit.csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let total = app.scalar("SELECT COUNT(*) FROM audit_events").await;
    assert_eq!(all.lines().count() as i64, total + 1);
    // Refused: support engineers, strangers, bad filters.
    let sam = app.signed_in("sam@example.com").await;
    assert_eq!(
        sam.get(app.url("/admin/audit.csv"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        app.client()
            .get(app.url("/admin/audit.csv"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        rita.get(app.url("/admin/audit.csv?from=yesterday"))
            .send()
            .await
            .unwrap()
            .status(),
        422
    );
    app.finish().await;
}
