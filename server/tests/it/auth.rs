//! Sign-in, sessions and sign-out over real HTTP, on SQLite and PostgreSQL.

use crate::common::{session_cookie, token_of, Backend, Options, TestApp, PASSWORD};
use app::{clock::MINUTE, members::Role, state::Settings};
use reqwest::{header, StatusCode};
use serde_json::Value;

on_both_databases!(
    right_passwords_at_once_never_end_in_a_server_error,
    guessed_emails_leave_no_throttle_rows_behind_once_their_streak_is_over,
    signing_in_sets_a_safe_cookie_and_the_page_shows_the_name,
    wrong_password_and_unknown_email_get_the_same_answer,
    a_member_not_authorized_to_log_in_is_refused,
    bad_input_gets_a_clear_message_and_changes_nothing,
    the_token_changes_at_every_sign_in,
    signing_out_revokes_the_session,
    idle_and_lifetime_expiry_end_sessions,
    disabling_a_member_ends_their_running_session,
    protected_pages_send_strangers_to_sign_in,
    cookies_are_secure_behind_https,
    cross_site_and_get_mutations_are_refused,
);

async fn error_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body: Value = response.json().await.expect("error body is JSON");
    (status, body)
}

async fn signing_in_sets_a_safe_cookie_and_the_page_shows_the_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann.lee@example.com", "Ann Lee", Role::Member)
        .await;
    let client = app.client();

    // Email matching is case-insensitive.
    let response = app.login(&client, "  ANN.LEE@example.com ", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(&response).expect("a session cookie is set");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain http gets no Secure flag: {cookie}"
    );
    let token = token_of(&cookie);
    assert_eq!(token.len(), 43, "256 bits, base64url");
    // Only the hash is stored.
    let stored = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM sessions WHERE token_hash = '{token}'"
        ))
        .await;
    assert_eq!(stored, 0);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL")
            .await,
        1
    );
    let next: Value = response.json().await.unwrap();
    assert_eq!(next, Value::String("/".into()));

    assert_eq!(app.whoami(&client).await.as_deref(), Some("ann.lee@example.com"));
    let page = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers().get(header::CACHE_CONTROL).unwrap(), "no-store");
    let html = page.text().await.unwrap();
    assert!(html.contains("Ann Lee"), "the page names the member");
    assert!(html.contains("Sign out"));
    assert!(
        app.scalar("SELECT COUNT(*) FROM members WHERE last_sign_in_at IS NOT NULL")
            .await
            == 1
    );

    // A safe `next` is followed, a hostile one is not.
    let other = app.client();
    let response = other
        .post(app.url("/api/login"))
        .form(&[
            ("email", "ann.lee@example.com"),
            ("password", PASSWORD),
            ("next", "//evil.example/x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap(), Value::String("/".into()));
    let response = other
        .post(app.url("/api/login"))
        .form(&[
            ("email", "ann.lee@example.com"),
            ("password", PASSWORD),
            ("next", "/?tab=2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        Value::String("/?tab=2".into())
    );
    app.finish().await;
}

async fn wrong_password_and_unknown_email_get_the_same_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let client = app.client();

    let wrong = app.login(&client, "sam@example.com", "not the password").await;
    assert!(session_cookie(&wrong).is_none(), "no cookie on failure");
    let (wrong_status, wrong_body) = error_of(wrong).await;
    let unknown = app.login(&client, "nobody@example.com", "not the password").await;
    let (unknown_status, unknown_body) = error_of(unknown).await;

    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_body, unknown_body,
        "nothing tells a wrong password from an unknown email"
    );
    assert_eq!(wrong_body["error"]["code"], "invalid_credentials");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 0);
    assert_eq!(app.whoami(&client).await, None);
    app.finish().await;
}

async fn a_member_not_authorized_to_log_in_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_member("off@example.com", "Off Duty", Role::Member)
        .await;
    app.execute(&format!(
        "UPDATE members SET login_enabled = FALSE WHERE id = {id}"
    ))
    .await;
    let client = app.client();

    let response = app.login(&client, "off@example.com", PASSWORD).await;
    assert!(session_cookie(&response).is_none());
    let (status, body) = error_of(response).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "not_authorized_to_log_in", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not authorized to sign in"),
        "{body}"
    );
    // The wrong password still gets the generic answer: no account probing.
    let (status, _) = error_of(app.login(&client, "off@example.com", "wrong").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A deleted member is unknown.
    app.execute(&format!(
        "UPDATE members SET login_enabled = TRUE, deleted_at = 1 WHERE id = {id}"
    ))
    .await;
    let (status, _) = error_of(app.login(&client, "off@example.com", PASSWORD).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 0);
    app.finish().await;
}

async fn bad_input_gets_a_clear_message_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let before = app.scalar("SELECT COUNT(*) FROM members").await;
    let client = app.client();
    let long_email = format!("{}@example.com", "a".repeat(300));
    let long_password = "p".repeat(2_000);

    type Form<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Form, StatusCode, &str)> = vec![
        (
            vec![("email", ""), ("password", PASSWORD)],
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            vec![("email", "   "), ("password", PASSWORD)],
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            vec![("email", "ann@example.com"), ("password", "")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "password",
        ),
        (
            vec![("email", &long_email), ("password", PASSWORD)],
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            vec![("email", "ann@example.com"), ("password", &long_password)],
            StatusCode::UNPROCESSABLE_ENTITY,
            "password",
        ),
    ];
    for (form, status, field) in cases {
        let response = client
            .post(app.url("/api/login"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let (got, body) = error_of(response).await;
        assert_eq!(got, status, "{form:?}");
        assert_eq!(body["error"]["field"], field, "{body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }

    // SQL metacharacters and non-ASCII are data, not code: a plain "incorrect".
    for email in [
        "' OR '1'='1",
        "ann@example.com'; DROP TABLE members; --",
        "élodie@exemple.fr",
        "🔑@例え.jp",
        "%_\\",
    ] {
        let (status, body) = error_of(app.login(&client, email, "x' OR 1=1 --").await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{email}: {body}");
    }

    // Missing fields and wrong shapes are a 400, not a 500.
    let response = client
        .post(app.url("/api/login"))
        .form(&[("email", "ann@example.com")])
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let response = client
        .post(app.url("/api/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("email[x]=1&&&password=%%%")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());

    assert_eq!(app.scalar("SELECT COUNT(*) FROM members").await, before);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, 0);
    app.finish().await;
}

async fn the_token_changes_at_every_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let client = app.client();

    let first = token_of(&session_cookie(&app.login(&client, "ann@example.com", PASSWORD).await).unwrap());
    let second = token_of(&session_cookie(&app.login(&client, "ann@example.com", PASSWORD).await).unwrap());
    assert_ne!(first, second);
    // Signing in again from the same browser replaces the old session.
    assert_eq!(
        app.whoami_with_token(&first).await,
        None,
        "the old token is refused"
    );
    assert_eq!(
        app.whoami_with_token(&second).await.as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE end_reason = 'replaced'")
            .await,
        1
    );

    // A fixed token planted before sign-in is never adopted.
    let planted = "A".repeat(43);
    let response = app
        .bare_client()
        .post(app.url("/api/login"))
        .header(header::COOKIE, format!("behalf_session={planted}"))
        .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_ne!(token_of(&session_cookie(&response).unwrap()), planted);
    assert_eq!(app.whoami_with_token(&planted).await, None);
    app.finish().await;
}

async fn signing_out_revokes_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let client = app.client();
    let token = token_of(&session_cookie(&app.login(&client, "ann@example.com", PASSWORD).await).unwrap());

    let response = app.logout(&client).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cleared = session_cookie(&response).expect("the cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(
        app.whoami_with_token(&token).await,
        None,
        "the revoked token is refused"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE end_reason = 'signed_out'")
            .await,
        1
    );

    // Signing out again, or without a session, is refused clearly.
    let (status, body) = error_of(app.logout(&app.client()).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthenticated");
    app.finish().await;
}

async fn idle_and_lifetime_expiry_end_sessions(backend: Backend) {
    let settings = Settings {
        session_idle_timeout: 10 * MINUTE,
        session_lifetime: 60 * MINUTE,
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

    // Idle: activity keeps it alive, silence ends it.
    let client = app.client();
    app.login(&client, "ann@example.com", PASSWORD).await;
    app.clock.advance(9 * MINUTE);
    assert!(
        app.whoami(&client).await.is_some(),
        "still alive after 9 idle minutes"
    );
    app.clock.advance(9 * MINUTE);
    assert!(
        app.whoami(&client).await.is_some(),
        "activity pushed the idle expiry"
    );
    app.clock.advance(10 * MINUTE);
    assert_eq!(app.whoami(&client).await, None, "10 idle minutes end it");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE end_reason = 'expired'")
            .await,
        1
    );

    // Lifetime: even a busy session ends after an hour.
    let busy = app.client();
    app.login(&busy, "ann@example.com", PASSWORD).await;
    for _ in 0..6 {
        app.clock.advance(9 * MINUTE);
        assert!(app.whoami(&busy).await.is_some());
    }
    app.clock.advance(7 * MINUTE);
    assert_eq!(
        app.whoami(&busy).await,
        None,
        "61 minutes after sign-in it is over"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE end_reason = 'expired'")
            .await,
        2
    );
    app.finish().await;
}

async fn disabling_a_member_ends_their_running_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let client = app.client();
    app.login(&client, "ann@example.com", PASSWORD).await;
    app.execute(&format!(
        "UPDATE members SET login_enabled = FALSE WHERE id = {id}"
    ))
    .await;
    assert_eq!(app.whoami(&client).await, None);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE end_reason = 'revoked'")
            .await,
        1
    );
    app.finish().await;
}

async fn protected_pages_send_strangers_to_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.client();
    let response = client
        .get(app.url("/"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers().get(header::LOCATION).unwrap(), "/login");
    let response = client
        .get(app.url("/?tab=2"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers().get(header::LOCATION).unwrap(),
        "/login?next=/%3Ftab%3D2"
    );

    // A stale cookie is refused and cleared.
    let response = app
        .bare_client()
        .get(app.url("/"))
        .header(header::ACCEPT, "text/html")
        .header(header::COOKIE, format!("behalf_session={}", "B".repeat(43)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(session_cookie(&response).unwrap().contains("Max-Age=0"));

    let login = client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let html = login.text().await.unwrap();
    for text in ["Email", "Password", "Sign in"] {
        assert!(html.contains(text), "the sign-in page shows {text}");
    }
    let missing = client.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().await.unwrap().contains("Page not found"));
    app.finish().await;
}

async fn cookies_are_secure_behind_https(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options {
            trust_proxy: true,
            ..Options::default()
        },
    )
    .await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let response = app
        .client()
        .post(app.url("/api/login"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-for", "203.0.113.9")
        .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&response).unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sessions WHERE ip = '203.0.113.9'")
            .await,
        1
    );
    app.finish().await;
}

async fn cross_site_and_get_mutations_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let client = app.client();
    let response = client
        .post(app.url("/api/login"))
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(session_cookie(&response).is_none());
    let same_origin = client
        .post(app.url("/api/login"))
        .header(header::ORIGIN, format!("http://{}", app.addr))
        .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), StatusCode::OK);
    // Mutations are POST only.
    let response = client.get(app.url("/api/logout")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(app.whoami(&client).await.is_some(), "the GET signed nobody out");
    app.finish().await;
}

/// Every email tried gets a throttle row (unknown ones too, so they are throttled alike).
/// Rows whose streak is over and that hold nothing back are forgotten when a new one
/// is made, so guessing emails cannot grow the table without end.
async fn guessed_emails_leave_no_throttle_rows_behind_once_their_streak_is_over(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    for n in 0..3 {
        let response = app
            .login(&app.client(), &format!("guess{n}@example.com"), "wrong password!")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Ann locks herself out: her row must stay while the lock holds.
    for _ in 0..5 {
        app.login(&app.client(), "ann@example.com", "wrong password!")
            .await;
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM sign_in_throttle").await, 4);
    // An hour and a minute later, the guesses' streaks are over; Ann's lock (30 s) too.
    app.clock.advance(61 * MINUTE);
    let response = app
        .login(&app.client(), "new@example.com", "wrong password!")
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sign_in_throttle").await,
        1,
        "only the new guess's row is left"
    );
    // A fresh streak for Ann starts from nothing: she signs in.
    let response = app.login(&app.client(), "ann@example.com", PASSWORD).await;
    assert!(response.status().is_success());
    app.finish().await;
}

/// Four clients signing in to one account again and again, with the right password:
/// each attempt is signed in (200) or told to try again in a second (429), never a
/// 500. On PostgreSQL a right password clears (deletes) the account's throttle row
/// while another attempt, which found the row there a moment before, was about to
/// lock it (`behalf bench` found the 500).
async fn right_passwords_at_once_never_end_in_a_server_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("many@example.com", "Many Tabs", Role::Member)
        .await;
    let client = |_| async {
        let mut answers = Vec::new();
        for _ in 0..25 {
            let body = serde_json::json!({ "email": "many@example.com", "password": PASSWORD });
            answers.push(
                app.api(reqwest::Method::POST, "/api/v1/login", None, Some(body))
                    .await,
            );
        }
        answers
    };
    let answers = futures_util::future::join_all((0..4).map(client)).await;
    let mut signed_in = 0;
    for (status, body) in answers.into_iter().flatten() {
        assert!(
            status == StatusCode::OK || status == StatusCode::TOO_MANY_REQUESTS,
            "a right password gets 200 or 429, not {status}: {body}"
        );
        signed_in += usize::from(status == StatusCode::OK);
    }
    assert!(signed_in >= 25, "most sign-ins succeed ({signed_in} of 100)");
    app.finish().await;
}
