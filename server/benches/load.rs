//! `cargo bench -p server --bench load`: nothing lost under load. 50 sessions on
//! behalf (`BEHALF_BENCH_SESSIONS`) place 10,000 orders in all (`BEHALF_BENCH_ORDERS`)
//! over real HTTP, all at once; then the counts and the audit chain are checked. Then
//! the chain is grown to 1,000,000 records (`BEHALF_BENCH_AUDIT_RECORDS`) and
//! `audit verify` is timed. SQLite, then PostgreSQL when BEHALF_TEST_POSTGRES_URL is set.

mod support;

use std::time::Instant;

use app::{
    audit::verify::{verify, Verdict},
    audit_action::AuditAction,
    audit_writer::{AuditTx, NewEvent},
    clock::Clock,
    context::RequestContext,
    db::{BeginWrite, Db},
    members::directory::{create_member, NewMember},
    orders::service::ensure_catalogue,
    password::{hasher::PasswordHasher, Password},
    role::Role,
    state::AppState,
};
use support::{bench_settings, on_each_database, summary, with_db};

const PASSWORD: &str = "benchmark password";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn scalar(db: &Db, sql: &str) -> i64 {
    let (n,): (i64,) = with_db!(db, pool => { sqlx::query_as(sql).fetch_one(pool).await.unwrap() });
    n
}

async fn run(db: Db, label: &'static str) {
    let sessions = env("BEHALF_BENCH_SESSIONS", 50);
    let orders = env("BEHALF_BENCH_ORDERS", 10_000);
    let chain = env("BEHALF_BENCH_AUDIT_RECORDS", 1_000_000) as i64;
    db.migrate().await.expect("migrate");
    let state = AppState::new(
        db.clone(),
        Clock::system(),
        PasswordHasher::with_default_limit(),
        bench_settings(),
    );
    ensure_catalogue(&db, 0).await.unwrap();
    let product = scalar(&db, "SELECT MIN(id) FROM products").await.to_string();
    let addr = server::spawn_on_free_port(state.clone(), false).await.unwrap();
    let url = move |path: &str| format!("http://{addr}{path}");
    println!("-- {label}: {sessions} sessions on behalf, {orders} orders");

    let mut clients = Vec::new();
    for i in 0..sessions {
        let mut ids = Vec::new();
        for (kind, role) in [("support", Role::Support), ("member", Role::Member)] {
            let new = NewMember {
                email: format!("{kind}{i}@example.com"),
                display_name: format!("{kind} {i}"),
                role,
                admin_access: role.default_admin_access(),
                login_enabled: true,
            };
            ids.push(
                create_member(
                    &db,
                    &state.hasher,
                    state.clock.now(),
                    new,
                    Password::new(PASSWORD),
                    None,
                )
                .await
                .unwrap(),
            );
        }
        let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let response = client
            .post(url("/api/login"))
            .form(&[
                ("email", format!("support{i}@example.com").as_str()),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        let response = client
            .post(url("/api/on-behalf/start"))
            .form(&[
                ("member_id", ids[1].to_string().as_str()),
                ("password", PASSWORD),
                ("reason", "load"),
            ])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        clients.push(client);
    }
    let orders_before = scalar(&db, "SELECT COUNT(*) FROM orders").await;
    let records_before = scalar(&db, "SELECT COUNT(*) FROM audit_events").await;
    let per_session = orders / sessions;
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let (place, product) = (url("/api/orders/place"), product.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_session);
                for n in 0..per_session {
                    let quantity = (n % 9 + 1).to_string();
                    let t = Instant::now();
                    let response = client
                        .post(&place)
                        .form(&[("product_id", product.as_str()), ("quantity", quantity.as_str())])
                        .send()
                        .await
                        .unwrap();
                    assert!(response.status().is_success(), "{}", response.status());
                    let _ = response.bytes().await;
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let seconds = started.elapsed().as_secs_f64();
    let placed = (per_session * sessions) as i64;
    let new_orders = scalar(&db, "SELECT COUNT(*) FROM orders").await - orders_before;
    let new_records = scalar(&db, "SELECT COUNT(*) FROM audit_events").await - records_before;
    summary("place order, one request (50 at once)", latencies);
    println!(
        "{placed} orders in {seconds:.2} s: {:.0} orders/s, {:.0} audit records/s; stored: {new_orders} orders, {new_records} records",
        placed as f64 / seconds,
        new_records as f64 / seconds
    );
    assert_eq!((new_orders, new_records), (placed, placed), "nothing lost");
    let t = Instant::now();
    let verdict = verify(&db).await.unwrap();
    println!(
        "chain after the load: {verdict:?} in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert!(matches!(verdict, Verdict::Intact { .. }));

    // Grow the chain to `chain` records (transactions of 5,000 appends), then verify it.
    let mut have = scalar(&db, "SELECT COUNT(*) FROM audit_events").await;
    let t = Instant::now();
    let filler = RequestContext {
        ip: Some("127.0.0.1".into()),
        ..RequestContext::default()
    };
    let event = NewEvent::new(AuditAction::MembersSeeded, &filler)
        .details(serde_json::json!({ "note": "benchmark filler" }));
    while have < chain {
        let batch = (chain - have).min(5_000);
        with_db!(&db, pool => {
            let mut tx = pool.begin_write().await.unwrap();
            for _ in 0..batch {
                tx.append_audit(1_700_000_000_000, event.clone()).await.unwrap();
            }
            tx.commit().await.unwrap();
        });
        have += batch;
    }
    let filled = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let verdict = verify(&db).await.unwrap();
    println!(
        "audit verify over {have} records: {verdict:?} in {:.1} s ({:.0} records/s; filling took {filled:.1} s)",
        t.elapsed().as_secs_f64(),
        have as f64 / t.elapsed().as_secs_f64()
    );
    assert!(matches!(verdict, Verdict::Intact { .. }));
}

fn main() {
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(on_each_database(run));
}
