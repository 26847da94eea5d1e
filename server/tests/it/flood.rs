//! Step 8, abuse resistance: argon2 work waits in a bounded line. A flood of sign-ins
//! bigger than the line gets fast 429s, before any hashing and before anything is
//! counted against an account or recorded; what fits is checked as usual. And a
//! client sending its headers a byte at a time (slowloris), or nothing at all, is
//! dropped while other requests are served.

use crate::common::{Backend, Options, TestApp};
use app::state::Settings;
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_databases!(a_flood_beyond_the_argon2_line_gets_fast_429s_and_leaves_no_trace);

/// Not a database matter: SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_dropped_and_others_are_served() {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::spawn(Backend::Sqlite).await;
    let limits = server::listen::Limits {
        header_read_timeout: Duration::from_secs(1),
        ..server::listen::Limits::default()
    };
    let addr = server::spawn_with_limits(app.state.clone(), false, limits)
        .await
        .unwrap();
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = slow.split();
    let headers = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nAccept: */*\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let dribble = async {
        for byte in headers.iter() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let mut answer = Vec::new();
    let read = reader.read_to_end(&mut answer);
    // Meanwhile, others are served as usual.
    let client = app.bare_client();
    let others = async {
        let mut statuses = Vec::new();
        for _ in 0..10 {
            let response = client.get(format!("http://{addr}/healthz")).send().await.unwrap();
            statuses.push(response.status());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        statuses
    };
    // And one that opens a connection and sends nothing at all.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut nothing = Vec::new();
    let silence = tokio::time::timeout(Duration::from_secs(8), silent.read_to_end(&mut nothing));
    let (_, read, statuses, silence) = tokio::join!(dribble, read, others, silence);
    assert!(
        silence.is_ok(),
        "a silent connection is closed by the header-read timeout"
    );
    assert!(nothing.is_empty());
    // The server closed the connection before the headers were complete (they take
    // about 13 s to dribble in): nothing was answered on it.
    let _ = read;
    let dropped_after = started.elapsed();
    assert!(
        !String::from_utf8_lossy(&answer).contains("\"status\":\"ok\""),
        "the slow request was never served: {}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        dropped_after < Duration::from_secs(headers.len() as u64 / 10),
        "dropped before it finished dribbling"
    );
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    app.finish().await;
}

async fn a_flood_beyond_the_argon2_line_gets_fast_429s_and_leaves_no_trace(backend: Backend) {
    // Two checks at once (the harness's hasher) and two waiting: four places.
    let options = Options {
        settings: Settings {
            sign_in_per_ip_per_minute: 100_000,
            argon2_queue: 2,
            ..Settings::default()
        },
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    let client = app.bare_client();
    let attempts = (0..60).map(|n| {
        let request = client
            .post(app.url("/api/v1/login"))
            .json(&json!({ "email": format!("nobody{n}@example.com"), "password": "not the password" }));
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let retry = response.headers().contains_key("retry-after");
            let body: serde_json::Value = response.json().await.unwrap();
            (
                status,
                retry,
                body["error"]["code"].as_str().unwrap_or("").to_string(),
            )
        })
    });
    let results: Vec<(StatusCode, bool, String)> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let checked = results
        .iter()
        .filter(|(s, _, code)| *s == StatusCode::UNAUTHORIZED && code == "invalid_credentials")
        .count();
    let refused = results
        .iter()
        .filter(|(s, retry, code)| *s == StatusCode::TOO_MANY_REQUESTS && *retry && code == "rate_limited")
        .count();
    assert_eq!(checked + refused, 60, "{results:?}");
    assert!(refused > 0, "the line overflowed: {results:?}");
    assert!(checked >= 4, "what fitted was checked: {results:?}");
    // Only the checked attempts were counted and recorded.
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sign_in_throttle").await,
        checked as i64
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'sign_in_failed'")
            .await,
        checked as i64
    );
    // The line empties again: a sign-in afterwards is checked.
    let (status, _) = app
        .api(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({ "email": "later@example.com", "password": "not the password" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.finish().await;
}
