//! Metrics for operators: `GET /metrics` on `--metrics-addr` only, never on the public
//! address, and nothing listening for them without it. The recorder is global to a
//! process, so these run the real `behalf` binary; the database count behind the live
//! sessions gauge is also checked in-process on both databases.

use std::{
    collections::HashSet,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use crate::common::{Backend, TestApp, PASSWORD};
use app::members::Role;
use reqwest::{header, Method, StatusCode};
use serde_json::json;

on_both_databases!(live_sessions_on_behalf_are_counted_in_the_database);

/// A `behalf serve` process on a fresh SQLite database, killed when dropped.
struct Served {
    child: Child,
    public: String,
    metrics: Option<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on port 0, with metrics on another port 0 when `metrics`, and
/// reads the addresses it prints.
fn serve(metrics: bool) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--sign-in-per-ip-per-minute",
        "2",
    ];
    if metrics {
        args.extend(["--metrics-addr", "127.0.0.1:0"]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_behalf"))
        .args(&args)
        .env(
            "BEHALF_DATABASE_URL",
            format!("sqlite:{}", dir.path().join("metrics.db").display()),
        )
        .env("BEHALF_AUDIT_KEY_FILE", dir.path().join("metrics.db.audit-key"))
        .env("BEHALF_DEMO", "0")
        .env("BEHALF_LOG", "warn")
        .env_remove("BEHALF_METRICS_ADDR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("behalf starts");
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut served = Served {
        child,
        public: String::new(),
        metrics: None,
        _dir: dir,
    };
    // The metrics line, if any, comes before the serving line.
    while served.public.is_empty() {
        let line = received
            .recv_timeout(Duration::from_secs(120))
            .expect("behalf prints where it serves");
        if let Some(url) = line.strip_prefix("Metrics on ") {
            served.metrics = Some(url.to_string());
        } else if let Some(url) = line.strip_prefix("Behalf is serving on ") {
            served.public = url.to_string();
        }
    }
    served
}

/// How many TCP sockets the process `pid` listens on (Linux: its descriptors matched
/// with the kernel's table of sockets).
fn listening_sockets(pid: u32) -> usize {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's descriptors")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            Some(target.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .map(|table| {
            table
                .lines()
                .skip(1)
                .filter(|row| {
                    let fields: Vec<&str> = row.split_whitespace().collect();
                    // State 0A is LISTEN; field 9 the socket's inode.
                    fields.get(3) == Some(&"0A") && fields.get(9).is_some_and(|inode| inodes.contains(*inode))
                })
                .count()
        })
        .sum()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn metrics_are_served_on_their_own_address_only() {
    let served = serve(true);
    let metrics = served.metrics.clone().expect("a metrics address is printed");
    assert_ne!(metrics, format!("{}/metrics", served.public));
    #[cfg(target_os = "linux")]
    assert_eq!(
        listening_sockets(served.child.id()),
        2,
        "the public port and the metrics port"
    );
    let client = client();
    let public = |path: &str| format!("{}{path}", served.public);

    // A page, a refused API call, failed sign-ins until the address is throttled.
    let page = client.get(public("/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let refused = client.get(public("/api/v1/profile")).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let body = json!({ "email": "nobody@example.com", "password": "not the password" });
        let sign_in = client
            .post(public("/api/v1/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
        statuses.push(sign_in.status());
        if sign_in.status() == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED, "{statuses:?}");
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Never on the public address.
    let there = client.get(public("/metrics")).send().await.unwrap();
    assert_eq!(there.status(), StatusCode::NOT_FOUND);

    let scraped = client.get(&metrics).send().await.unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    let content_type = scraped.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = scraped.text().await.unwrap();
    let failed = (statuses.len() - 1).to_string();
    for expected in [
        "behalf_http_requests_total{route=\"/login\",method=\"GET\",status=\"200\"} 1",
        "behalf_http_requests_total{route=\"/api/v1/profile\",method=\"GET\",status=\"401\"} 1",
        &format!(
            "behalf_http_requests_total{{route=\"/api/v1/login\",method=\"POST\",status=\"401\"}} {failed}"
        ),
        "behalf_http_requests_total{route=\"/api/v1/login\",method=\"POST\",status=\"429\"} 1",
        "behalf_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "behalf_http_request_duration_seconds_bucket{route=\"/login\",method=\"GET\",le=\"0.0005\"}",
        "behalf_http_request_duration_seconds_bucket{route=\"/login\",method=\"GET\",le=\"5\"} 1",
        "behalf_http_request_duration_seconds_count{route=\"/login\",method=\"GET\"} 1",
        "behalf_refusals_total{code=\"unauthenticated\"} 1",
        &format!("behalf_refusals_total{{code=\"invalid_credentials\"}} {failed}"),
        "behalf_refusals_total{code=\"rate_limited\"} 1",
        "behalf_throttle_hits_total{kind=\"address\"} 1",
        &format!("behalf_audit_records_total{{action=\"sign_in_failed\"}} {failed}"),
        "behalf_on_behalf_sessions_live 0",
        "# TYPE behalf_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }
    // Nothing a client typed becomes a label.
    assert!(
        !text.contains("nobody@example.com") && !text.contains("\"/metrics\""),
        "{text}"
    );

    // The metrics address answers GET /metrics and nothing else.
    let other = client
        .get(metrics.replace("/metrics", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let posted = client.post(&metrics).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_a_metrics_address_nothing_else_listens() {
    let served = serve(false);
    assert_eq!(served.metrics, None, "no metrics address is printed");
    #[cfg(target_os = "linux")]
    assert_eq!(listening_sockets(served.child.id()), 1, "only the public port");
    let there = client()
        .get(format!("{}/metrics", served.public))
        .send()
        .await
        .unwrap();
    assert_eq!(there.status(), StatusCode::NOT_FOUND);
}

/// The gauge's count: live sessions on behalf in the whole database, none once expired.
async fn live_sessions_on_behalf_are_counted_in_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let live = || server::metrics::live_on_behalf(&app.state.db, app.clock.now());
    assert_eq!(live().await.unwrap(), 0);
    app.create_member("sam@example.com", "Sam Support", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let sam = app.api_login("sam@example.com").await;
    assert_eq!(live().await.unwrap(), 0, "an own session is not on behalf");
    let body = json!({ "member_id": ann, "password": PASSWORD, "reason": "Ticket T-10", "mode": "act" });
    let (status, body) = app
        .api(Method::POST, "/api/v1/alias_login", Some(&sam), Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(live().await.unwrap(), 1);
    // Past the longest session on behalf (30 minutes), though no request ended it.
    app.clock.advance(31 * 60 * 1000);
    assert_eq!(live().await.unwrap(), 0);
    if let app::db::Db::Sqlite(pool) = &app.state.db {
        let explain = format!("EXPLAIN QUERY PLAN {}", server::metrics::LIVE_ON_BEHALF);
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&explain)
            .bind(app.clock.now())
            .fetch_all(pool)
            .await
            .unwrap();
        assert!(
            plan.iter()
                .any(|row| row.3.contains("sessions_one_live_on_behalf")),
            "the count reads the partial index: {plan:?}"
        );
    }
    app.finish().await;
}
