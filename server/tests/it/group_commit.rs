//! Group commit on PostgreSQL (`audit_writer::GroupCommit`): orders placed at the same
//! moment share one transaction and one COMMIT, and still each order is written once
//! with exactly one record naming it, the chain verifies with gapless ids, a failing
//! order fails alone, an order racing the end of its session on behalf is refused and
//! leaves nothing, and an order waiting for its session's row does not hold up the
//! rest of its batch. Over real HTTP; skipped without BEHALF_TEST_POSTGRES_URL.

use std::time::Duration;

use app::{
    audit::verify::{verify, Verdict},
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{AuditTx, NewEvent},
    context::RequestContext,
    members::Role,
    orders::service::ensure_catalogue,
    session::{store::end_row, EndReason},
};
use futures_util::future::join_all;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sqlx::PgPool;
use tokio::task::JoinHandle;

use crate::common::{json_of, Backend, TestApp, PASSWORD};

/// A session on behalf, from its actor's client.
struct OnBehalf {
    client: Client,
    session: i64,
}

/// A fresh PostgreSQL app with the catalogue, or None (and why) without PostgreSQL.
async fn postgres_app() -> Option<TestApp> {
    if std::env::var("BEHALF_TEST_POSTGRES_URL").is_err() {
        eprintln!("skipped: BEHALF_TEST_POSTGRES_URL is not set, so there is no PostgreSQL to test against");
        return None;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    ensure_catalogue(&app.state.db, 0).await.unwrap();
    Some(app)
}

fn pool(app: &TestApp) -> &PgPool {
    match &app.state.db {
        app::db::Db::Postgres(pool) => pool,
        app::db::Db::Sqlite(_) => unreachable!("group commit is PostgreSQL's"),
    }
}

/// `count` support engineers, each in a session on behalf of a member of their own.
async fn sessions_on_behalf(app: &TestApp, count: usize) -> Vec<OnBehalf> {
    join_all((0..count).map(|i| async move {
        let support = app
            .create_member(
                &format!("support{i}@example.com"),
                &format!("Support {i}"),
                Role::Support,
            )
            .await;
        let member = app
            .create_member(
                &format!("member{i}@example.com"),
                &format!("Member {i}"),
                Role::Member,
            )
            .await;
        let client = app.signed_in(&format!("support{i}@example.com")).await;
        let form = [
            ("member_id", member.to_string()),
            ("password", PASSWORD.to_string()),
            ("reason", "group commit".to_string()),
            ("mode", "act".to_string()),
        ];
        let (status, body) = json_of(
            client
                .post(app.url("/api/on-behalf/start"))
                .form(&form)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let session = app
            .scalar(&format!(
                "SELECT id FROM sessions WHERE actor_id = {support} AND ended_at IS NULL"
            ))
            .await;
        OnBehalf { client, session }
    }))
    .await
}

/// Places an order from `client`: the status and the body.
async fn place(app: &TestApp, client: &Client, product: i64) -> (StatusCode, Value) {
    let product = product.to_string();
    let form = [("product_id", product.as_str()), ("quantity", "2")];
    json_of(
        client
            .post(app.url("/api/orders/place"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The chain verifies, its ids run 1, 2, 3… without a gap, and the head names the last.
async fn chain_is_whole(app: &TestApp) {
    let records = app.scalar("SELECT COUNT(*) FROM audit_events").await;
    assert_eq!(app.scalar("SELECT MIN(id) FROM audit_events").await, 1);
    assert_eq!(
        app.scalar("SELECT MAX(id) FROM audit_events").await,
        records,
        "gapless ids"
    );
    assert_eq!(app.scalar("SELECT last_id FROM audit_head").await, records);
    assert_eq!(verify(&app.state.db).await.unwrap(), Verdict::Intact { records });
}

/// Every order has exactly one `order_placed` record naming it, made by its placer,
/// for its member, in its session on behalf; and there is no other such record.
async fn one_record_per_order(app: &TestApp, orders: i64) {
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, orders);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'order_placed'")
            .await,
        orders
    );
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM orders o WHERE (SELECT COUNT(*) FROM audit_events e \
             WHERE e.action = 'order_placed' AND e.object_id = CAST(o.id AS TEXT) \
             AND e.actor_id = o.placed_by AND e.subject_id = o.member_id \
             AND e.session_id = o.on_behalf_session_id) = 1"
        )
        .await,
        orders
    );
}

/// In how many transactions the orders' records were written (a batch's records
/// share its transaction id).
async fn order_transactions(app: &TestApp) -> i64 {
    app.scalar("SELECT COUNT(DISTINCT xmin::text) FROM audit_events WHERE action = 'order_placed'")
        .await
}

/// The queries of the backends waiting, directly or behind another waiter (a row's
/// later waiters queue behind its first), for a lock that backend `holder` holds.
async fn waiting_for(app: &TestApp, holder: i32) -> Vec<String> {
    sqlx::query_scalar(
        "WITH RECURSIVE behind (pid) AS (SELECT $1 UNION \
         SELECT a.pid FROM pg_stat_activity a JOIN behind b ON b.pid = ANY(pg_blocking_pids(a.pid))) \
         SELECT query FROM pg_stat_activity WHERE pid IN (SELECT pid FROM behind) AND pid <> $1",
    )
    .bind(holder)
    .fetch_all(pool(app))
    .await
    .unwrap()
}

/// Waits (up to 10 s) until `count` backends wait for a lock `holder` holds; their
/// queries.
async fn blocked_by(app: &TestApp, holder: i32, count: usize) -> Vec<String> {
    for _ in 0..200 {
        let waiting = waiting_for(app, holder).await;
        if waiting.len() >= count {
            return waiting;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} backends came to wait for backend {holder}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_sessions_on_behalf_share_commits_and_keep_one_whole_chain() {
    const ORDERS: usize = 10;
    let Some(app) = postgres_app().await else { return };
    let product = app.scalar("SELECT MIN(id) FROM products").await;
    let sessions = sessions_on_behalf(&app, 40).await;
    let placed: Vec<Vec<i64>> = join_all(sessions.iter().map(|on_behalf| {
        let app = &app;
        async move {
            let mut ids = Vec::new();
            for _ in 0..ORDERS {
                let (status, body) = place(app, &on_behalf.client, product).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                ids.push(body.as_i64().unwrap());
            }
            ids
        }
    }))
    .await;
    let mut ids: Vec<i64> = placed.into_iter().flatten().collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40 * ORDERS, "every answer names another order");
    let stored: Vec<i64> = sqlx::query_scalar("SELECT id FROM orders ORDER BY id")
        .fetch_all(pool(&app))
        .await
        .unwrap();
    assert_eq!(stored, ids, "every order answered is stored, once");
    one_record_per_order(&app, ids.len() as i64).await;
    chain_is_whole(&app).await;
    let transactions = order_transactions(&app).await;
    eprintln!("{} orders in {transactions} transactions", ids.len());
    assert!(
        transactions < ids.len() as i64,
        "orders placed at once shared commits"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_that_fails_in_a_batch_fails_alone() {
    let Some(app) = postgres_app().await else { return };
    let product = app.scalar("SELECT MIN(id) FROM products").await;
    let sessions = sessions_on_behalf(&app, 10).await;
    let records_before = app.scalar("SELECT COUNT(*) FROM audit_events").await;
    // The head held here: the first batches wait for it, and the orders sent meanwhile
    // gather into batches of good and bad orders mixed.
    let mut holder = pool(&app).begin().await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *holder)
        .await
        .unwrap();
    sqlx::query("SELECT last_id FROM audit_head WHERE id = 1 FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let requests = sessions.iter().flat_map(|on_behalf| {
        [product, 999_999, product].map(|product| place(&app, &on_behalf.client, product))
    });
    let release = async {
        blocked_by(&app, pid, 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        holder.rollback().await.unwrap();
    };
    let (answers, ()) = tokio::join!(join_all(requests), release);
    for (n, (status, body)) in answers.iter().enumerate() {
        if n % 3 == 1 {
            assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(body["error"]["field"], "product_id", "{body}");
        } else {
            assert_eq!(*status, StatusCode::OK, "{body}");
        }
    }
    one_record_per_order(&app, 20).await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events").await,
        records_before + 20,
        "the failed orders left no record"
    );
    chain_is_whole(&app).await;
    let transactions = order_transactions(&app).await;
    eprintln!("20 orders (and 10 refused) in {transactions} transactions");
    assert!(transactions < 20, "the orders shared batches");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_racing_the_end_of_its_session_on_behalf_is_refused_and_leaves_nothing() {
    let Some(app) = postgres_app().await else { return };
    let product = app.scalar("SELECT MIN(id) FROM products").await;
    let sessions = sessions_on_behalf(&app, 10).await;
    let ended = sessions[0].session;
    // The end is committing while the orders come: its transaction holds the session
    // row and the chain's head (as `end_on_behalf` holds them) until released below.
    let mut ending = pool(&app).begin().await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *ending)
        .await
        .unwrap();
    let now = app.clock.now();
    assert!(end_row(&mut ending, now, ended, EndReason::Revoked)
        .await
        .unwrap());
    let event = NewEvent::new(AuditAction::OnBehalfEnd, &RequestContext::default())
        .on_behalf(ended)
        .object(ObjectKind::Session, ended)
        .details(serde_json::json!({ "reason": "revoked" }));
    ending.append_audit(now, event).await.unwrap();
    let requests = sessions
        .iter()
        .flat_map(|on_behalf| [product, product].map(|product| place(&app, &on_behalf.client, product)));
    let release = async {
        let waiting = blocked_by(&app, pid, 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        ending.commit().await.unwrap();
        waiting
    };
    let (answers, waiting) = tokio::join!(join_all(requests), release);
    eprintln!("waiting for the end: {waiting:?}");
    for (n, (status, body)) in answers.iter().enumerate() {
        if n < 2 {
            assert_eq!(*status, StatusCode::CONFLICT, "{body}");
            assert_eq!(body["error"]["code"], "on_behalf_ended", "{body}");
        } else {
            assert_eq!(*status, StatusCode::OK, "{body}");
        }
    }
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM orders WHERE on_behalf_session_id = {ended}"
        ))
        .await,
        0
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'order_placed' AND session_id = {ended}"
        ))
        .await,
        0
    );
    one_record_per_order(&app, 18).await;
    chain_is_whole(&app).await;
    app.finish().await;
}

/// Places an order from `client` in a task of its own (it goes on while the test waits).
fn spawn_place(app: &TestApp, client: &Client, product: i64) -> JoinHandle<(StatusCode, Value)> {
    let (url, client) = (app.url("/api/orders/place"), client.clone());
    tokio::spawn(async move {
        let product = product.to_string();
        let form = [("product_id", product.as_str()), ("quantity", "1")];
        json_of(client.post(url).form(&form).send().await.unwrap()).await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_waiting_for_its_session_row_does_not_hold_up_its_batch() {
    let Some(app) = postgres_app().await else { return };
    let product = app.scalar("SELECT MIN(id) FROM products").await;
    let sessions = sessions_on_behalf(&app, 10).await;
    let ended = sessions[0].session;
    // One transaction ends the session (its row held), another holds the head.
    let mut ending = pool(&app).begin().await.unwrap();
    let ending_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *ending)
        .await
        .unwrap();
    let now = app.clock.now();
    assert!(end_row(&mut ending, now, ended, EndReason::Revoked)
        .await
        .unwrap());
    let mut head = pool(&app).begin().await.unwrap();
    let head_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *head)
        .await
        .unwrap();
    sqlx::query("SELECT last_id FROM audit_head WHERE id = 1 FOR UPDATE")
        .execute(&mut *head)
        .await
        .unwrap();
    // Both batches in flight wait for the head (one order each); then more orders
    // queue, and behind them the order of the ended session: it comes after others in
    // its batch.
    let others = &sessions[1..];
    let mut first = Vec::new();
    for (n, plug) in others[..2].iter().enumerate() {
        first.push(spawn_place(&app, &plug.client, product));
        blocked_by(&app, head_pid, n + 1).await;
    }
    first.extend(others.iter().map(|s| spawn_place(&app, &s.client, product)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = spawn_place(&app, &sessions[0].client, product);
    tokio::time::sleep(Duration::from_millis(300)).await;
    head.rollback().await.unwrap();
    // Its batch commits without it (it waited 50 ms at most, then was set aside)…
    for answer in first {
        let (status, body) = tokio::time::timeout(Duration::from_secs(20), answer)
            .await
            .expect("its batch waited for the ended session's row")
            .unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert!(!refused.is_finished(), "it waits for the end, alone");
    blocked_by(&app, ending_pid, 1).await;
    // …and, run again alone, it waits for the end and finds it.
    let event = NewEvent::new(AuditAction::OnBehalfEnd, &RequestContext::default())
        .on_behalf(ended)
        .object(ObjectKind::Session, ended)
        .details(serde_json::json!({ "reason": "revoked" }));
    ending.append_audit(now, event).await.unwrap();
    ending.commit().await.unwrap();
    let (status, body) = refused.await.unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "on_behalf_ended", "{body}");
    one_record_per_order(&app, 11).await;
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM orders WHERE on_behalf_session_id = {ended}"
        ))
        .await,
        0
    );
    chain_is_whole(&app).await;
    app.finish().await;
}
