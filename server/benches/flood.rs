//! `cargo bench -p server --bench flood`: 200 wrong-password sign-ins sent at once
//! while 20 signed-in members keep loading pages. Prints the pages' latency during
//! the flood (target: p99 at most 50 ms on 2 cores), and how fast the refusals come:
//! the 401s (checked, argon2 included) and the 429s (the argon2 line was full, nothing
//! hashed). The server and the clients share the machine, as they would under attack.

mod support;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Instant,
};

use app::{
    clock::Clock,
    db::Db,
    members::directory::{create_member, NewMember},
    password::{hasher::PasswordHasher, Password},
    role::Role,
    state::AppState,
};
use support::{bench_settings, on_each_database, summary};

const PASSWORD: &str = "benchmark password";
const MEMBERS: usize = 20;
const FLOOD: usize = 200;

async fn run(db: Db, label: &str) {
    db.migrate().await.expect("migrate");
    let state = AppState::new(
        db.clone(),
        Clock::system(),
        PasswordHasher::with_default_limit(),
        bench_settings(),
    );
    let hash_once = PasswordHasher::new(1);
    for n in 0..MEMBERS {
        let new = NewMember {
            email: format!("reader{n}@example.com"),
            display_name: format!("Reader {n}"),
            role: Role::Member,
            admin_access: false,
            login_enabled: true,
        };
        create_member(
            &db,
            &hash_once,
            state.clock.now(),
            new,
            Password::new(PASSWORD),
            None,
        )
        .await
        .expect("member");
    }
    let addr = server::spawn_on_free_port(state, false).await.unwrap();
    let url = move |path: &str| format!("http://{addr}{path}");
    let mut readers = Vec::new();
    for n in 0..MEMBERS {
        let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let response = client
            .post(url("/api/login"))
            .form(&[
                ("email", format!("reader{n}@example.com").as_str()),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        readers.push(client);
    }
    println!("-- {label}");
    // Pages before the flood, for comparison.
    let mut calm = Vec::new();
    for i in 0..220 {
        let client = &readers[i % MEMBERS];
        let started = Instant::now();
        let response = client.get(url("/")).send().await.unwrap();
        assert!(response.status().is_success());
        let _ = response.bytes().await;
        if i >= 20 {
            calm.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    summary("signed-in page, no flood (GET /)", calm);

    let flooding = Arc::new(AtomicBool::new(true));
    let page_tasks: Vec<_> = readers
        .into_iter()
        .map(|client| {
            let flooding = flooding.clone();
            let page = url("/");
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while flooding.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let response = client.get(&page).send().await.unwrap();
                    assert!(response.status().is_success());
                    let _ = response.bytes().await;
                    samples.push(started.elapsed().as_secs_f64() * 1e3);
                }
                samples
            })
        })
        .collect();
    let attacker = reqwest::Client::new();
    let flood_started = Instant::now();
    let attempts: Vec<_> = (0..FLOOD)
        .map(|n| {
            let request = attacker
                .post(url("/api/v1/login"))
                .json(&serde_json::json!({ "email": format!("guess{n}@example.com"), "password": "guess" }));
            tokio::spawn(async move {
                let started = Instant::now();
                let status = request.send().await.unwrap().status();
                (status.as_u16(), started.elapsed().as_secs_f64() * 1e3)
            })
        })
        .collect();
    let mut refused = Vec::new();
    let mut checked = Vec::new();
    for attempt in attempts {
        let (status, ms) = attempt.await.unwrap();
        match status {
            429 => refused.push(ms),
            401 => checked.push(ms),
            other => panic!("unexpected status {other}"),
        }
    }
    let flood_took = flood_started.elapsed().as_secs_f64() * 1e3;
    flooding.store(false, Ordering::SeqCst);
    let mut during = Vec::new();
    for task in page_tasks {
        during.extend(task.await.unwrap());
    }
    println!(
        "flood of {FLOOD}: {} checked (401), {} refused at once (429), over {flood_took:.0} ms",
        checked.len(),
        refused.len()
    );
    summary("signed-in page during the flood (GET /)", during);
    if !refused.is_empty() {
        summary("429 answer (argon2 line full)", refused);
    }
    summary("401 answer (checked, argon2 included)", checked);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(on_each_database(run));
}
