//! Step 4's orders over HTTP: placing them (validated, one audit record each), orders
//! placed on behalf (the member's, naming the real person), and nothing lost when
//! many sessions on behalf place orders at once.

use crate::common::{Backend, TestApp, PASSWORD};
use app::{
    audit::verify::{verify, Verdict},
    members::Role,
    orders::service::ensure_catalogue,
};
use reqwest::StatusCode;

on_both_databases!(
    members_place_orders_and_each_writes_one_record,
    orders_on_behalf_belong_to_the_member_and_name_the_real_person,
    concurrent_sessions_on_behalf_lose_no_order_and_no_record,
    the_profile_and_sessions_of_my_account,
    the_api_pages_orders_by_cursor_newest_first,
);

async fn first_product(app: &TestApp) -> i64 {
    app.scalar("SELECT MIN(id) FROM products").await
}

async fn counts(app: &TestApp) -> (i64, i64) {
    (
        app.scalar("SELECT COUNT(*) FROM orders").await,
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'order_placed'")
            .await,
    )
}

async fn members_place_orders_and_each_writes_one_record(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(ensure_catalogue(&app.state.db, 0).await.unwrap(), 6);
    assert_eq!(
        ensure_catalogue(&app.state.db, 0).await.unwrap(),
        0,
        "twice adds nothing"
    );
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let client = app.signed_in("ann@example.com").await;
    let product = first_product(&app).await.to_string();

    let (status, view) = app.post(&client, "/api/orders/list", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["products"].as_array().unwrap().len(), 6);
    assert_eq!(view["orders"], serde_json::json!([]));

    let (status, id) = app
        .post(
            &client,
            "/api/orders/place",
            &[("product_id", &product), ("quantity", "3")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{id}");
    assert_eq!(counts(&app).await, (1, 1));
    let (actor, subject, session): (Option<i64>, Option<i64>, Option<i64>) = with_db!(&app.state.db, pool => {
        sqlx::query_as("SELECT actor_id, subject_id, session_id FROM audit_events WHERE action = 'order_placed'")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!((actor, subject, session), (Some(ann), Some(ann), None));
    let (_, view) = app.post(&client, "/api/orders/list", &[]).await;
    assert_eq!(view["orders"][0]["id"], id);
    assert_eq!(view["orders"][0]["quantity"], 3);
    assert!(view["orders"][0]["placed_on_behalf_by"].is_null());

    // Refused: a clear message next to the field, and nothing written.
    for (product, quantity, field) in [
        (product.as_str(), "0", "quantity"),
        (product.as_str(), "1000", "quantity"),
        (product.as_str(), "two", "quantity"),
        ("999999", "1", "product_id"),
        ("", "1", "product_id"),
    ] {
        let (status, body) = app
            .post(
                &client,
                "/api/orders/place",
                &[("product_id", product), ("quantity", quantity)],
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{product} × {quantity}: {body}"
        );
        assert_eq!(body["error"]["field"], field);
        assert_eq!(counts(&app).await, (1, 1));
    }
    let (status, _) = app
        .post(
            &app.client(),
            "/api/orders/place",
            &[("product_id", &product), ("quantity", "1")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.post(&app.client(), "/api/orders/list", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(counts(&app).await, (1, 1));
    app.finish().await;
}

async fn orders_on_behalf_belong_to_the_member_and_name_the_real_person(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    ensure_catalogue(&app.state.db, 0).await.unwrap();
    let sam = app
        .create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let client = app.signed_in("sam@example.com").await;
    let (status, body) = app
        .post(
            &client,
            "/api/on-behalf/start",
            &[
                ("member_id", &ann.to_string()),
                ("password", PASSWORD),
                ("reason", "Order by phone"),
                ("mode", "act"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let product = first_product(&app).await.to_string();
    let (status, id) = app
        .post(
            &client,
            "/api/orders/place",
            &[("product_id", &product), ("quantity", "2")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{id}");
    let session: i64 = app
        .scalar("SELECT id FROM sessions WHERE actor_id IS NOT NULL")
        .await;
    let order: (i64, i64, Option<i64>) = with_db!(&app.state.db, pool => {
        sqlx::query_as("SELECT member_id, placed_by, on_behalf_session_id FROM orders")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(order, (ann, sam, Some(session)));
    let record: (Option<i64>, Option<i64>, Option<i64>) = with_db!(&app.state.db, pool => {
        sqlx::query_as("SELECT actor_id, subject_id, session_id FROM audit_events WHERE action = 'order_placed'")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(record, (Some(sam), Some(ann), Some(session)));
    app.post(&client, "/api/on-behalf/leave", &[]).await;

    // Ann sees it as hers, placed by Sam on her behalf, and the session in her history.
    let ann_client = app.signed_in("ann@example.com").await;
    let (_, view) = app.post(&ann_client, "/api/orders/list", &[]).await;
    assert_eq!(view["orders"][0]["id"], id);
    assert_eq!(view["orders"][0]["placed_on_behalf_by"], "Sam Ortiz");
    let (_, history) = app.post(&ann_client, "/api/account/access-history", &[]).await;
    assert_eq!(history[0]["actions"], 1);
    // Sam's own orders list is empty: the order is not his.
    let (_, view) = app.post(&client, "/api/orders/list", &[]).await;
    assert_eq!(view["orders"], serde_json::json!([]));
    app.finish().await;
}

/// Step 4's "nothing lost under load", at a size for every test run: 8 sessions on
/// behalf × 50 orders, all at once.
async fn concurrent_sessions_on_behalf_lose_no_order_and_no_record(backend: Backend) {
    const SESSIONS: usize = 8;
    const ORDERS: usize = 50;
    let app = TestApp::spawn(backend).await;
    ensure_catalogue(&app.state.db, 0).await.unwrap();
    let product = first_product(&app).await.to_string();
    let mut clients = Vec::new();
    for i in 0..SESSIONS {
        app.create_member(
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
        let (status, body) = app
            .post(
                &client,
                "/api/on-behalf/start",
                &[
                    ("member_id", &member.to_string()),
                    ("password", PASSWORD),
                    ("reason", "load test"),
                    ("mode", "act"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        clients.push(client);
    }
    let records_before = app.scalar("SELECT COUNT(*) FROM audit_events").await;
    let url = app.url("/api/orders/place");
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            let (url, product) = (url.clone(), product.clone());
            tokio::spawn(async move {
                for n in 0..ORDERS {
                    let quantity = (n % 9 + 1).to_string();
                    let response = client
                        .post(&url)
                        .form(&[("product_id", product.as_str()), ("quantity", quantity.as_str())])
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(
                        response.status(),
                        StatusCode::OK,
                        "{}",
                        response.text().await.unwrap()
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let total = (SESSIONS * ORDERS) as i64;
    assert_eq!(counts(&app).await, (total, total));
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events").await,
        records_before + total
    );
    // Every order names its session's actor, and its record matches it.
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM orders o JOIN sessions s ON s.id = o.on_behalf_session_id \
             WHERE o.placed_by = s.actor_id AND o.member_id = s.member_id"
        )
        .await,
        total
    );
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM audit_events e JOIN orders o ON e.object_id = CAST(o.id AS TEXT) \
             WHERE e.action = 'order_placed' AND e.actor_id = o.placed_by AND e.subject_id = o.member_id \
             AND e.session_id = o.on_behalf_session_id"
        )
        .await,
        total
    );
    let verdict = verify(&app.state.db).await.unwrap();
    assert!(matches!(verdict, Verdict::Intact { .. }), "{verdict:?}");
    app.finish().await;
}

async fn the_profile_and_sessions_of_my_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_member("sam@example.com", "Sam Ortiz", Role::Support)
        .await;
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let ann_client = app.signed_in("ann@example.com").await;
    let other_device = app.signed_in("ann@example.com").await;

    // Profile: the new name is searchable; one record with before and after; none for no change.
    let (status, body) = app
        .post(
            &ann_client,
            "/api/account/profile",
            &[("display_name", "  Ann   Marie Lee ")],
        )
        .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, Some("Ann Marie Lee")));
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM member_terms WHERE member_id = {ann} AND term = 'marie lee'"
        ))
        .await,
        1
    );
    app.post(
        &ann_client,
        "/api/account/profile",
        &[("display_name", "Ann Marie Lee")],
    )
    .await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'profile_updated'")
            .await,
        1
    );
    let (status, body) = app
        .post(&ann_client, "/api/account/profile", &[("display_name", "   ")])
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("display_name"))
    );

    // Sessions: her two, then one on her behalf, marked with who acts.
    let (_, list) = app.post(&ann_client, "/api/account/sessions", &[]).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let sam = app.signed_in("sam@example.com").await;
    let (status, _) = app
        .post(
            &sam,
            "/api/on-behalf/start",
            &[
                ("member_id", &ann.to_string()),
                ("password", PASSWORD),
                ("reason", "Ticket 9"),
                ("mode", "act"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = app.post(&ann_client, "/api/account/sessions", &[]).await;
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let on_behalf = rows
        .iter()
        .find(|r| r["on_behalf_by"] == "Sam Ortiz")
        .expect("the session on behalf is listed");
    assert_eq!(rows.iter().filter(|r| r["current"] == true).count(), 1);

    // Ann ends it: Sam's next request finds himself again; one record.
    let id = on_behalf["id"].as_i64().unwrap().to_string();
    let (status, body) = app
        .post(&ann_client, "/api/account/revoke-session", &[("id", &id)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, me) = app.post(&sam, "/api/whoami", &[]).await;
    assert_eq!(me["email"], "sam@example.com");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'session_revoked'")
            .await,
        1
    );
    // Not the current one, not twice, not someone else's.
    let current = rows.iter().find(|r| r["current"] == true).unwrap()["id"]
        .as_i64()
        .unwrap()
        .to_string();
    assert_eq!(
        app.post(&ann_client, "/api/account/revoke-session", &[("id", &current)])
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.post(&ann_client, "/api/account/revoke-session", &[("id", &id)])
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let sam_session = app.scalar("SELECT MAX(id) FROM sessions WHERE member_id = (SELECT id FROM members WHERE email_key = 'sam@example.com')").await;
    assert_eq!(
        app.post(
            &ann_client,
            "/api/account/revoke-session",
            &[("id", &sam_session.to_string())]
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'session_revoked'")
            .await,
        1
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'session_revoke_refused'")
            .await,
        2
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM sessions WHERE id = {sam_session} AND ended_at IS NULL"
        ))
        .await,
        1
    );
    // Strangers get nothing and change nothing.
    for (path, form) in [
        ("/api/account/profile", vec![("display_name", "Mallory")]),
        ("/api/account/sessions", vec![]),
        ("/api/account/revoke-session", vec![("id", current.as_str())]),
    ] {
        assert_eq!(
            app.post(&app.client(), path, &form).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM members WHERE id = {ann} AND display_name = 'Ann Marie Lee'"
        ))
        .await,
        1
    );
    // Her other device is still signed in.
    let (_, me) = app.post(&other_device, "/api/whoami", &[]).await;
    assert_eq!(me["email"], "ann@example.com");
    app.finish().await;
}

/// One page of `GET /api/v1/orders` with `query`: the status, the body and the
/// `Behalf-Next-Cursor` header.
async fn orders_page(
    app: &TestApp,
    token: &str,
    query: &str,
) -> (StatusCode, serde_json::Value, Option<String>) {
    let response = app
        .bare_client()
        .get(app.url(&format!("/api/v1/orders{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let next = response
        .headers()
        .get("behalf-next-cursor")
        .map(|v| v.to_str().unwrap().to_string());
    let (status, body) = crate::common::json_of(response).await;
    (status, body, next)
}

async fn the_api_pages_orders_by_cursor_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    ensure_catalogue(&app.state.db, 0).await.unwrap();
    let ann = app
        .create_member("ann@example.com", "Ann Lee", Role::Member)
        .await;
    let bob = app
        .create_member("bob@example.com", "Bob Stone", Role::Member)
        .await;
    let product = first_product(&app).await;
    // 250 of Ann's orders, with five of Bob's in between.
    let rows: Vec<String> = (0..255)
        .map(|i| {
            let who = if i % 51 == 0 { bob } else { ann };
            format!("({who}, {product}, {}, {who}, {})", 1 + i % 9, 1_000 + i)
        })
        .collect();
    app.execute(&format!(
        "INSERT INTO orders (member_id, product_id, quantity, placed_by, created_at) VALUES {}",
        rows.join(", ")
    ))
    .await;
    let token = app.api_login("ann@example.com").await;

    // Three pages of at most 100, newest first, each order once, none of Bob's.
    let mut seen: Vec<i64> = Vec::new();
    let mut query = String::new();
    let mut sizes = Vec::new();
    loop {
        let (status, body, next) = orders_page(&app, &token, &query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        let page = body.as_array().expect("the body is the array of orders");
        sizes.push(page.len());
        for order in page {
            assert!(
                order["product"].is_string() && order["placed_at"].is_string(),
                "{order}"
            );
            seen.push(order["id"].as_i64().unwrap());
        }
        match next {
            Some(cursor) => {
                assert_eq!(cursor, seen.last().unwrap().to_string());
                query = format!("?cursor={cursor}");
            }
            None => break,
        }
    }
    assert_eq!(sizes, [100, 100, 50]);
    let expected: Vec<i64> = with_db!(&app.state.db, pool => {
        sqlx::query_scalar(&format!("SELECT id FROM orders WHERE member_id = {ann} ORDER BY id DESC"))
            .fetch_all(pool)
            .await
            .unwrap()
    });
    assert_eq!(expected.len(), 250);
    assert_eq!(seen, expected, "every order once, newest first");

    // A smaller page, and the cursor of a page that ends exactly at the last order.
    let (_, body, next) = orders_page(&app, &token, "?limit=7").await;
    assert_eq!(body.as_array().unwrap().len(), 7);
    assert_eq!(next, Some(expected[6].to_string()));
    let (_, body, next) = orders_page(&app, &token, &format!("?cursor={}&limit=50", expected[199])).await;
    assert_eq!(body.as_array().unwrap().len(), 50);
    assert_eq!(next, None, "no page after the last");

    // A bad cursor or limit is a 422 in the one error shape, naming the field.
    for (query, field) in [
        ("?cursor=abc", "cursor"),
        ("?cursor=0", "cursor"),
        ("?cursor=-5", "cursor"),
        ("?cursor=1.5", "cursor"),
        ("?cursor=99999999999999999999", "cursor"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
    ] {
        let (status, body, next) = orders_page(&app, &token, query).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["error"]["code"], "validation", "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
        assert!(body["error"]["message"].is_string(), "{body}");
        assert_eq!(next, None);
    }
    app.finish().await;
}
