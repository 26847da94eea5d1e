//! `cargo bench -p server --bench signin`: sign-in latency over real HTTP on a
//! temporary SQLite file (and PostgreSQL when BEHALF_TEST_POSTGRES_URL is set), how
//! much of it is argon2id, and the cost of a signed-in request. Prints
//! median / p95 / p99 in milliseconds.

mod support;

use std::time::Instant;

use app::{
    clock::Clock,
    db::Db,
    members::directory::{create_member, NewMember},
    password::{
        hasher::{hash_password_blocking, verify_password_blocking, verify_password_in, PasswordHasher},
        Password,
    },
    role::Role,
    state::AppState,
};
use support::{bench_settings, on_each_database, summary};

const PASSWORD: &str = "benchmark password";

async fn run(db: Db, label: &str, argon2_median: f64) {
    db.migrate().await.expect("migrate");
    let state = AppState::new(
        db.clone(),
        Clock::system(),
        PasswordHasher::with_default_limit(),
        bench_settings(),
    );
    let new = NewMember {
        email: "bench@example.com".into(),
        display_name: "Bench Mark".into(),
        role: Role::Member,
        admin_access: false,
        login_enabled: true,
    };
    create_member(
        &db,
        &state.hasher,
        state.clock.now(),
        new,
        Password::new(PASSWORD),
        None,
    )
    .await
    .expect("member");
    for (email, name, role) in [
        ("sam@example.com", "Sam Ortiz", Role::Support),
        ("ann@example.com", "Ann Lee", Role::Member),
    ] {
        let new = NewMember {
            email: email.into(),
            display_name: name.into(),
            role,
            admin_access: role.default_admin_access(),
            login_enabled: true,
        };
        create_member(
            &db,
            &state.hasher,
            state.clock.now(),
            new,
            Password::new(PASSWORD),
            None,
        )
        .await
        .expect("member");
    }
    let addr = server::spawn_on_free_port(state, false).await.unwrap();
    let url = |path: &str| format!("http://{addr}{path}");
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();

    println!("-- {label}");
    let mut signin = Vec::new();
    for i in 0..60 {
        let started = Instant::now();
        let response = client
            .post(url("/api/login"))
            .form(&[("email", "bench@example.com"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        let _ = response.bytes().await;
        if i >= 10 {
            signin.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    let signin_median = summary("sign-in (POST /api/login, whole request)", signin);

    let mut unknown = Vec::new();
    for i in 0..30 {
        // A new unknown email each time: the same one would be throttled after five.
        let email = format!("nobody{i}@example.com");
        let started = Instant::now();
        let response = reqwest::Client::new()
            .post(url("/api/login"))
            .form(&[("email", email.as_str()), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        unknown.push(started.elapsed().as_secs_f64() * 1e3);
    }
    summary("refused sign-in, unknown email", unknown);

    let mut whoami = Vec::new();
    for i in 0..1_100 {
        let started = Instant::now();
        let response = client.post(url("/api/whoami")).send().await.unwrap();
        let _ = response.bytes().await;
        if i >= 100 {
            whoami.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    summary("signed-in server function (whoami)", whoami);

    let mut page = Vec::new();
    for i in 0..550 {
        let started = Instant::now();
        let response = client.get(url("/")).send().await.unwrap();
        assert!(response.status().is_success());
        let _ = response.bytes().await;
        if i >= 50 {
            page.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    summary("signed-in page, server-rendered (GET /)", page);
    println!(
        "sign-in median minus argon2 median (see above): {:.3} ms",
        signin_median - argon2_median
    );
    switch(&url, argon2_median).await;
    api(&url).await;
}

/// The JSON API: sign-in with a bearer token, then alias_login and alias_logout in turn.
async fn api(url: &dyn Fn(&str) -> String) {
    let client = reqwest::Client::new();
    let mut logins = Vec::new();
    let mut token = String::new();
    for i in 0..60 {
        let started = Instant::now();
        let response = client
            .post(url("/api/v1/login"))
            .json(&serde_json::json!({ "email": "sam@example.com", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "api login: {}", response.status());
        let body: serde_json::Value = response.json().await.unwrap();
        token = body["token"].as_str().unwrap().to_string();
        if i >= 10 {
            logins.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    summary("API sign-in (POST /api/v1/login)", logins);
    let me: serde_json::Value = client
        .get(url("/api/v1/profile"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ann = me["member"]["id"].as_i64().unwrap() + 1;
    let (mut aliases, mut backs) = (Vec::new(), Vec::new());
    for i in 0..70 {
        let t0 = Instant::now();
        let response = client
            .post(url("/api/v1/alias_login"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "member_id": ann, "password": PASSWORD, "reason": "benchmark" }))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "alias_login: {}",
            response.status()
        );
        let body: serde_json::Value = response.json().await.unwrap();
        let member = body["token"].as_str().unwrap().to_string();
        let t1 = Instant::now();
        let response = client
            .post(url("/api/v1/alias_logout"))
            .bearer_auth(&member)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "alias_logout: {}",
            response.status()
        );
        let body: serde_json::Value = response.json().await.unwrap();
        token = body["token"].as_str().unwrap().to_string();
        let t2 = Instant::now();
        if i >= 10 {
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
            aliases.push(ms(t0, t1));
            backs.push(ms(t1, t2));
        }
    }
    summary("API alias_login (re-authentication included)", aliases);
    summary("API alias_logout", backs);
    one_click(url, &token, ann).await;
}

/// One-click links: create one (API), open it (GET, the confirmation page), continue
/// (POST: consumed, and a new session); and a guess that fails.
async fn one_click(url: &dyn Fn(&str) -> String, token: &str, member: i64) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (mut creates, mut opens, mut continues, mut guesses) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
    for i in 0..220 {
        let t0 = Instant::now();
        let response = client
            .post(url(&format!("/api/v1/members/{member}/one_click_links")))
            .bearer_auth(token)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "create a link");
        let body: serde_json::Value = response.json().await.unwrap();
        let path = body["path"].as_str().unwrap().to_string();
        let t1 = Instant::now();
        let response = client.get(url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "open the link");
        let _ = response.bytes().await;
        let t2 = Instant::now();
        let response = client.post(url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 303, "continue with the link");
        let t3 = Instant::now();
        let guess = format!(
            "/one-click/{member}/{}",
            app::session::token::Token::generate().expose()
        );
        let response = client.post(url(&guess)).send().await.unwrap();
        assert_eq!(response.status(), 404, "a guess");
        let _ = response.bytes().await;
        let t4 = Instant::now();
        if i >= 20 {
            creates.push(ms(t0, t1));
            opens.push(ms(t1, t2));
            continues.push(ms(t2, t3));
            guesses.push(ms(t3, t4));
        }
    }
    summary(
        "one-click link: create (POST /api/v1/members/{id}/one_click_links)",
        creates,
    );
    summary("one-click link: open (GET, the confirmation page)", opens);
    summary(
        "one-click link: continue (POST: consumed, new session)",
        continues,
    );
    summary("one-click link: a guess refused (POST, recorded)", guesses);
}

/// A whole switch: start a session on behalf (with re-authentication), the first
/// page as the member, leave.
async fn switch(url: &dyn Fn(&str) -> String, argon2_median: f64) {
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let response = client
        .post(url("/api/login"))
        .form(&[("email", "sam@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let whoami = client.post(url("/api/whoami")).send().await.unwrap();
    let me: serde_json::Value = whoami.json().await.unwrap();
    let ann = me["id"].as_i64().unwrap() + 1;
    let (mut starts, mut pages, mut leaves, mut wholes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..70 {
        let t0 = Instant::now();
        let response = client
            .post(url("/api/on-behalf/start"))
            .form(&[
                ("member_id", ann.to_string().as_str()),
                ("password", PASSWORD),
                ("reason", "benchmark"),
            ])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "start: {}", response.status());
        let _ = response.bytes().await;
        let t1 = Instant::now();
        let response = client.get(url("/")).send().await.unwrap();
        assert!(response.status().is_success());
        let html = response.text().await.unwrap();
        assert!(html.contains("Impersonation banner"));
        let t2 = Instant::now();
        let response = client.post(url("/api/on-behalf/leave")).send().await.unwrap();
        assert!(response.status().is_success(), "leave: {}", response.status());
        let _ = response.bytes().await;
        let t3 = Instant::now();
        if i >= 10 {
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
            starts.push(ms(t0, t1));
            pages.push(ms(t1, t2));
            leaves.push(ms(t2, t3));
            wholes.push(ms(t0, t3));
        }
    }
    summary("login on behalf: start (re-authentication included)", starts);
    summary("login on behalf: first page as the member (GET /)", pages);
    summary("login on behalf: leave", leaves);
    let whole = summary("login on behalf: whole switch (start + page + leave)", wholes);
    println!(
        "whole switch median minus argon2 median: {:.3} ms",
        whole - argon2_median
    );
}

fn main() {
    println!(
        "machine: {} cores; argon2id m=19456 KiB, t=2, p=1",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let password = Password::new(PASSWORD);
    let hash = hash_password_blocking(&password);
    let mut fresh = Vec::new();
    for _ in 0..30 {
        let started = Instant::now();
        assert!(verify_password_blocking(&hash, &password));
        fresh.push(started.elapsed().as_secs_f64() * 1e3);
    }
    summary("argon2id verify, library (fresh memory)", fresh);
    let mut memory = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..40 {
        let started = Instant::now();
        assert!(verify_password_in(&hash, &password, &mut memory));
        warm.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let argon2_median = summary("argon2id verify, as served (warm memory)", warm);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(on_each_database(|db, label| run(db, label, argon2_median)));
}
