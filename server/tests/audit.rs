//! The audit trail: one record per event, in the change's transaction, nothing
//! secret in it, and a hash chain that detects tampering and survives concurrency.

mod common;

use app::{
    audit::service::{verify, Verdict},
    members::Role,
};
use common::{Backend, TestApp, PASSWORD};

on_both_databases!(
    sign_in_and_sign_out_each_write_exactly_one_record,
    refusals_are_recorded_without_secrets_and_validation_errors_are_not,
    tampering_with_a_record_is_detected,
    concurrent_writers_never_fork_the_chain,
);

async fn actions(app: &TestApp) -> Vec<(String, Option<i64>, Option<i64>)> {
    app::with_db!(&app.state.db, pool => {
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
    let (object_type, ip): (Option<String>, Option<String>) = app::with_db!(&app.state.db, pool => {
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
    let stored: Vec<(String, Option<String>)> = app::with_db!(&app.state.db, pool => {
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
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
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
            client
                .post(url)
                .form(&[("email", "ann@example.com"), ("password", password.as_str())])
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
