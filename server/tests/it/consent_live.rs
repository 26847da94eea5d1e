//! Step 12, live: the member's presence stream (server-sent events) while a session
//! on their behalf starts, runs and ends — on one instance, and across two instances
//! on PostgreSQL (`LISTEN/NOTIFY`); **End it now**, after which the actor is back in
//! their own session and told why; the member's own-use marks; and notices mailed to a
//! real SMTP listener the test runs (retried with back-off when the server fails).

use std::time::Duration;

use app::{
    clock::MINUTE,
    password::hasher::PasswordHasher,
    state::{AppState, MailSettings},
};
use reqwest::{header, Method, Response, StatusCode};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::mpsc,
};

use crate::{
    common::{Backend, Options, TestApp, PASSWORD},
    consent::{call, world},
    view_only::{code, on_behalf},
};

on_both_databases!(
    the_member_sees_sessions_on_their_behalf_start_and_end_live,
    end_it_now_returns_the_actor_to_their_own_session,
    notices_are_the_members_own_and_read_only_by_them,
    a_notice_is_mailed_to_a_real_smtp_server_naming_actor_and_reason,
    a_failing_mail_server_never_blocks_the_switch_and_is_retried,
);

/// How long an event may take at most before the test says it never came: well
/// under the streams' own 15-second look, so a wake is what brings it.
const EVENT_WITHIN: Duration = Duration::from_secs(10);

/// An open event stream, read event by event.
struct Events {
    response: Response,
    buffer: String,
}

impl Events {
    async fn open(app_url: &str, token: &str) -> Events {
        let response = reqwest::Client::new()
            .get(format!("{app_url}/api/v1/profile/events"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let kind = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (name and JSON data), skipping keep-alive comments; None when the
    /// stream ends or nothing comes within `EVENT_WITHIN`.
    async fn next(&mut self) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + EVENT_WITHIN;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = Some(value.trim().to_string());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim());
                    }
                }
                if let Some(name) = name {
                    return Some((name, serde_json::from_str(&data).unwrap()));
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?;
            match chunk.unwrap() {
                Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                None => return None,
            }
        }
    }
}

/// Who the region on the member's pages lists: `whoami`'s `someone_in`, in the
/// session of `token` (the page's cookie).
async fn someone_in(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, viewer) = app.viewer_with_token(token).await;
    assert_eq!(status, StatusCode::OK);
    viewer["someone_in"]
        .as_array()
        .cloned()
        .expect("whoami lists who is in")
}

async fn the_member_sees_sessions_on_their_behalf_start_and_end_live(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let w = world(&app).await;
    let ann = app.api_login("ann@example.com").await;
    assert_eq!(
        someone_in(&app, &ann).await,
        Vec::<Value>::new(),
        "nobody is in yet"
    );
    let mut events = Events::open(&app.url(""), &ann).await;
    let sam = on_behalf(&app, "sam@example.com", w.ann, Some("view")).await;
    let (name, data) = events.next().await.expect("the start is sent");
    assert_eq!(name, "on_behalf_started");
    assert_eq!(data["actor"]["display_name"], "Sid Support");
    assert_eq!(data["actor"]["role"], "support");
    assert_eq!(data["reason"], "Ticket T-11");
    let session_id = data["session_id"].as_i64().unwrap();
    // A page opened while it runs is told at once.
    let mut late = Events::open(&app.url(""), &ann).await;
    let (name, data) = late.next().await.expect("the running session is sent");
    assert_eq!(
        (name.as_str(), data["session_id"].as_i64()),
        ("on_behalf_started", Some(session_id))
    );
    // The member's own pages say so (whoami carries it for the region).
    let (_, me) = call(&app, "ann@example.com", Method::GET, "/api/v1/profile", None).await;
    assert_eq!(me["member"]["email"], "ann@example.com");
    let in_now = someone_in(&app, &ann).await;
    assert_eq!(in_now.len(), 1, "{in_now:?}");
    assert_eq!(
        (
            in_now[0]["session_id"].as_i64(),
            &in_now[0]["actor_name"],
            &in_now[0]["reason"]
        ),
        (Some(session_id), &json!("Sid Support"), &json!("Ticket T-11"))
    );
    // Leaving ends it, live.
    assert_eq!(
        app.api(Method::POST, "/api/v1/alias_logout", Some(&sam), None)
            .await
            .0,
        StatusCode::OK
    );
    let (name, data) = events.next().await.expect("the end is sent");
    assert_eq!(
        (name.as_str(), data["session_id"].as_i64()),
        ("on_behalf_ended", Some(session_id))
    );
    assert_eq!(data["end_reason"], "left");
    assert_eq!(
        someone_in(&app, &ann).await,
        Vec::<Value>::new(),
        "nobody is in any more"
    );
    // On behalf, the stream is refused (protected); signed out, it closes.
    let sam = on_behalf(&app, "sam@example.com", w.ann, Some("view")).await;
    let (status, body) = app
        .api(Method::GET, "/api/v1/profile/events", Some(&sam), None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "on_behalf_protected_action".into())
    );
    assert!(events
        .next()
        .await
        .is_some_and(|(name, _)| name == "on_behalf_started"));
    assert_eq!(
        app.api(Method::POST, "/api/v1/logout", Some(&ann), None).await.0,
        StatusCode::NO_CONTENT
    );
    // Its next look (at the latest on its 15-second keep-alive) finds it over.
    let ended = tokio::time::timeout(Duration::from_secs(40), async {
        while let Ok(Some(_)) = events.response.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream closes when its session ends");
    app.finish().await;
}

async fn end_it_now_returns_the_actor_to_their_own_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let w = world(&app).await;
    // Sid works in the browser (cookies), on Ann's behalf.
    let sid = app.signed_in("sam@example.com").await;
    let form = [
        ("member_id", w.ann.to_string()),
        ("password", PASSWORD.to_string()),
        ("reason", "ticket 4711".to_string()),
        ("mode", "view".to_string()),
    ];
    let (status, body) = app
        .post(&sid, "/api/on-behalf/start", &crate::view_only::pairs(&form))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session_id = app
        .scalar("SELECT id FROM sessions WHERE actor_id IS NOT NULL AND ended_at IS NULL")
        .await;
    // Someone else's session (or one that is not on behalf) is not Ann's to end.
    let path = format!("/api/v1/profile/on_behalf/{session_id}");
    assert_eq!(
        call(&app, "mo@example.com", Method::DELETE, &path, None).await.0,
        StatusCode::NOT_FOUND
    );
    // Ann's page shows who is in, with the reason; she ends it.
    let ann = app.signed_in("ann@example.com").await;
    let (_, viewer) = app.post(&ann, "/api/whoami", &[]).await;
    assert_eq!(viewer["someone_in"][0]["actor_name"], "Sid Support");
    assert_eq!(viewer["someone_in"][0]["reason"], "ticket 4711");
    let id = session_id.to_string();
    let (status, body) = app
        .post(&ann, "/api/consent/end", &[("session_id", id.as_str())])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, viewer) = app.post(&ann, "/api/whoami", &[]).await;
    assert_eq!(viewer["someone_in"], json!([]));
    // Sid's next request: back in his own session, told that the member ended it.
    let (_, notice) = app.post(&sid, "/api/notice", &[]).await;
    assert!(
        notice
            .as_str()
            .unwrap_or_default()
            .contains("member ended your session"),
        "{notice}"
    );
    assert_eq!(app.whoami(&sid).await.as_deref(), Some("sam@example.com"));
    let reason = crate::view_only::text(
        &app,
        &format!("SELECT end_reason FROM sessions WHERE id = {session_id}"),
    )
    .await;
    assert_eq!(reason, "ended_by_member");
    let by_member = app
        .scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'on_behalf_ended_by_member'")
        .await;
    assert_eq!(by_member, 1);
    // Ending it again: nothing left.
    let (status, _) = app
        .post(&ann, "/api/consent/end", &[("session_id", id.as_str())])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, notices) = call(
        &app,
        "ann@example.com",
        Method::GET,
        "/api/v1/profile/notices",
        None,
    )
    .await;
    assert_eq!(notices[0]["kind"], "on_behalf_ended");
    assert_eq!(notices[0]["reason"], "you ended it");
    app.finish().await;
}

async fn notices_are_the_members_own_and_read_only_by_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let w = world(&app).await;
    let sam = on_behalf(&app, "sam@example.com", w.ann, Some("act")).await;
    let (_, notices) = call(
        &app,
        "ann@example.com",
        Method::GET,
        "/api/v1/profile/notices",
        None,
    )
    .await;
    let id = notices[0]["id"].as_i64().unwrap();
    let path = format!("/api/v1/profile/notices/{id}/read");
    // Not on her behalf, not by someone else.
    let (status, body) = app.api(Method::POST, &path, Some(&sam), None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "on_behalf_protected_action".into())
    );
    assert_eq!(
        call(&app, "mo@example.com", Method::POST, &path, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, notices) = call(
        &app,
        "ann@example.com",
        Method::GET,
        "/api/v1/profile/notices",
        None,
    )
    .await;
    assert_eq!(notices[0]["read"], false);
    assert_eq!(
        call(&app, "ann@example.com", Method::POST, &path, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, notices) = call(
        &app,
        "ann@example.com",
        Method::GET,
        "/api/v1/profile/notices",
        None,
    )
    .await;
    assert_eq!(notices[0]["read"], true);
    app.finish().await;
}

/// A small SMTP server: it answers as a mail server would and hands each message's
/// text to the test. `fail` answers every message 451 (try again later).
async fn smtp_listener(fail: bool) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink.test ESMTP\r\n").await.ok()?;
                let mut message: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(text) = message.as_mut() {
                        if line == "." {
                            let reply: &[u8] = if fail {
                                b"451 4.3.0 try again later\r\n"
                            } else {
                                b"250 2.0.0 queued\r\n"
                            };
                            if !fail {
                                sender.send(message.take().unwrap_or_default()).ok()?;
                            }
                            message = None;
                            write.write_all(reply).await.ok()?;
                        } else {
                            text.push_str(&line);
                            text.push('\n');
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink.test\r\n250 8BITMIME\r\n",
                        "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 2.0.0 ok\r\n",
                        "DATA" => {
                            message = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.ok()?;
                            return Some(());
                        }
                        _ => b"502 not implemented\r\n",
                    };
                    write.write_all(reply).await.ok()?;
                }
                Some(())
            });
        }
    });
    (url, receiver)
}

fn with_mail(url: String) -> Options {
    let mut options = Options::default();
    options.settings.mail = Some(MailSettings {
        smtp_url: url,
        from: "Behalf <behalf@example.com>".into(),
    });
    options.settings.public_url = Some("https://behalf.example".into());
    options
}

async fn a_notice_is_mailed_to_a_real_smtp_server_naming_actor_and_reason(backend: Backend) {
    let (url, mut mails) = smtp_listener(false).await;
    let app = TestApp::spawn_with(backend, with_mail(url)).await;
    let w = world(&app).await;
    on_behalf(&app, "sam@example.com", w.ann, Some("view")).await;
    let mail = tokio::time::timeout(Duration::from_secs(30), mails.recv())
        .await
        .expect("a mail arrives")
        .unwrap()
        // Quoted-printable: soft line breaks joined, `=3D` is `=`.
        .replace("=\n", "")
        .replace("=3D", "=");
    assert!(mail.contains("To: ann@example.com"), "{mail}");
    assert!(
        mail.contains("Subject: Sid Support signed in on your behalf"),
        "{mail}"
    );
    assert!(
        mail.contains("Sid Support (support) signed in on your behalf"),
        "{mail}"
    );
    assert!(mail.contains("Reason: Ticket T-11"), "{mail}");
    assert!(mail.contains("Mode: view only"), "{mail}");
    assert!(
        mail.contains("https://behalf.example/account/access-history"),
        "{mail}"
    );
    // Recorded once sent (the record is written just after the server's answer).
    let mut sent = 0;
    for _ in 0..100 {
        sent = app
            .scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'mail_sent'")
            .await;
        if sent == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sent, 1);
    app.finish().await;
}

async fn a_failing_mail_server_never_blocks_the_switch_and_is_retried(backend: Backend) {
    let (url, _mails) = smtp_listener(true).await;
    let app = TestApp::spawn_with(backend, with_mail(url)).await;
    let w = world(&app).await;
    // The switch is made whatever the mail does.
    on_behalf(&app, "sam@example.com", w.ann, Some("view")).await;
    let attempts = "SELECT CAST(mail_attempts AS BIGINT) FROM notices WHERE mail_status IS NOT NULL";
    // Each try waits longer; moving the clock past each wait brings the next try, and
    // the sixth failure gives up (recorded).
    for tries in 1..=6 {
        let mut seen = 0;
        for _ in 0..200 {
            seen = app.scalar(attempts).await;
            if seen >= tries {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen, tries, "try {tries} made");
        app.clock.advance(2 * MINUTE);
    }
    let status = crate::view_only::text(
        &app,
        "SELECT mail_status FROM notices WHERE mail_status IS NOT NULL",
    )
    .await;
    assert_eq!(status, "failed");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'mail_failed'")
            .await,
        1
    );
    app.finish().await;
}

/// Two instances on one PostgreSQL database, each with its own presence hub: the
/// member's stream is on B, the session on behalf starts and ends on A, and the wake
/// crosses by `LISTEN/NOTIFY` (well within the streams' own 15-second look).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_on_one_instance_sees_a_session_started_on_another() {
    if std::env::var("BEHALF_TEST_POSTGRES_URL").is_err() {
        eprintln!("skipped: BEHALF_TEST_POSTGRES_URL is not set, so there is no PostgreSQL to test against");
        return;
    }
    let a = TestApp::spawn(Backend::Postgres).await;
    let settings = Options::default().settings;
    let b_state = AppState::new(
        a.state.db.clone(),
        a.clock.clone(),
        PasswordHasher::new(2),
        settings,
    )
    .with_link_key(server::link_key(&a.state.db, a.clock.now()).await.unwrap());
    let b = server::spawn_on_free_port(b_state, false).await.unwrap();
    let w = world(&a).await;
    let ann = a.api_login("ann@example.com").await;
    let mut events = Events::open(&format!("http://{b}"), &ann).await;
    let sam = on_behalf(&a, "sam@example.com", w.ann, Some("view")).await;
    let (name, data) = events.next().await.expect("instance B hears of the start on A");
    assert_eq!(
        (name.as_str(), data["actor"]["display_name"].as_str()),
        ("on_behalf_started", Some("Sid Support"))
    );
    assert_eq!(
        a.api(Method::POST, "/api/v1/alias_logout", Some(&sam), None)
            .await
            .0,
        StatusCode::OK
    );
    let (name, _) = events.next().await.expect("and of the end");
    assert_eq!(name, "on_behalf_ended");
    a.finish().await;
}
