//! Orders (server only): the catalogue, listing and placing.

use serde_json::json;

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{AuditTx, NewEvent},
    clock::{format_utc, Millis},
    context::RequestContext,
    db::with_db,
    db::{BeginWrite, Db},
    error::AppError,
    orders::{check_quantity, Order, OrdersView, Product},
    state::AppState,
};

/// The small catalogue `behalf seed` creates: name and price in cents.
pub const CATALOGUE: [(&str, i64); 6] = [
    ("Printer paper, 500 sheets", 699),
    ("Ballpoint pens, box of 50", 1_250),
    ("Stapler", 1_499),
    ("Desk lamp", 3_900),
    ("Office chair", 18_900),
    ("Coffee beans, 1 kg", 2_450),
];

/// Adds the catalogue's products that are missing. Returns how many were added.
pub async fn ensure_catalogue(db: &Db, now: Millis) -> Result<u64, AppError> {
    let mut added = 0;
    for (name, price) in CATALOGUE {
        added += with_db!(db, pool => {
            sqlx::query(
                "INSERT INTO products (name, price_cents, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(price)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
    }
    Ok(added)
}

type OrderRow = (i64, String, i64, i64, i64, i64, Option<String>);

/// The most orders one page holds: the Orders page shows this many, and the JSON API
/// pages by up to this many.
pub const PAGE_MAX: i64 = 100;

/// One page of a member's orders, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct OrdersPage {
    pub orders: Vec<Order>,
    /// The ID the next (older) page starts below, when there is one.
    pub next: Option<i64>,
}

/// The catalogue and the signed-in member's orders (on behalf: the member's), newest
/// first (at most `PAGE_MAX`).
pub async fn list(state: &AppState, request: &RequestContext) -> Result<OrdersView, AppError> {
    request.require_session()?;
    let products: Vec<(i64, String, i64)> = with_db!(&state.db, pool => {
        sqlx::query_as("SELECT id, name, price_cents FROM products ORDER BY name")
            .fetch_all(pool)
            .await?
    });
    let page = page(state, request, None, PAGE_MAX).await?;
    Ok(OrdersView {
        products: products
            .into_iter()
            .map(|(id, name, price_cents)| Product {
                id,
                name,
                price_cents,
            })
            .collect(),
        orders: page.orders,
    })
}

/// One page of the signed-in member's orders (on behalf: the member's), newest first:
/// up to `limit` (1 to `PAGE_MAX`) of those older than the order `before` (from the
/// newest when None), and where the next page starts.
pub async fn page(
    state: &AppState,
    request: &RequestContext,
    before: Option<i64>,
    limit: i64,
) -> Result<OrdersPage, AppError> {
    let member_id = request.require_session()?.member.id;
    let limit = limit.clamp(1, PAGE_MAX);
    // One more than asked, to know whether another page follows.
    let mut rows: Vec<OrderRow> = with_db!(&state.db, pool => {
        sqlx::query_as(
            "SELECT o.id, p.name, o.quantity, p.price_cents, o.created_at, o.placed_by, \
             CASE WHEN o.placed_by <> o.member_id THEN b.display_name END \
             FROM orders o JOIN products p ON p.id = o.product_id JOIN members b ON b.id = o.placed_by \
             WHERE o.member_id = $1 AND o.id < $2 ORDER BY o.id DESC LIMIT $3",
        )
        .bind(member_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit + 1)
        .fetch_all(pool)
        .await?
    });
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(|row| row.0) } else { None };
    let orders = rows
        .into_iter()
        .map(|(id, product, quantity, price, created_at, _, by)| Order {
            id,
            product,
            quantity,
            total_cents: price * quantity,
            placed: format_utc(created_at),
            placed_on_behalf_by: by,
        })
        .collect();
    Ok(OrdersPage { orders, next })
}

/// An order about to be written, with its record (which names it once it has an id).
#[derive(Clone)]
struct NewOrder {
    member: i64,
    product_id: i64,
    quantity: i64,
    placed_by: i64,
    on_behalf: Option<i64>,
    at: Millis,
    event: NewEvent,
}

/// Writes `$order` (a `NewOrder`) and appends its record in `$tx` (a `&mut` to a
/// write transaction of either database, or to a group commit's `BatchTx`: each
/// derefs to its connection and is an `AuditTx`). Evaluates to the order's id.
macro_rules! write_order {
    ($tx:expr, $order:expr) => {{
        let (tx, order) = ($tx, $order);
        // Inserted only if the product exists (one round trip for both).
        let inserted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO orders (member_id, product_id, quantity, placed_by, on_behalf_session_id, created_at) \
             SELECT $1, id, $3, $4, $5, $6 FROM products WHERE id = $2 RETURNING id",
        )
        .bind(order.member)
        .bind(order.product_id)
        .bind(order.quantity)
        .bind(order.placed_by)
        .bind(order.on_behalf)
        .bind(order.at)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((id,)) = inserted else {
            return Err(AppError::validation(
                "product_id",
                "There is no such product. Choose one from the list.",
            ));
        };
        tx.append_audit(order.at, order.event.object(ObjectKind::Order, id))
            .await?;
        id
    }};
}

/// Places an order for the session's member; the real person (the actor, on behalf)
/// is stored as `placed_by` and in the audit record, written in the same transaction.
/// On PostgreSQL the transaction is a group commit's batch, shared with the orders
/// placed at the same moment; the order is reported placed once that has committed.
pub async fn place(
    state: &AppState,
    request: &RequestContext,
    product: &str,
    quantity: &str,
) -> Result<i64, AppError> {
    let session = request.require_session()?;
    let product_id = product
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::validation("product_id", "Choose a product."))?;
    let quantity = check_quantity(quantity)?;
    let order = NewOrder {
        member: session.member.id,
        product_id,
        quantity,
        placed_by: session.actor().id,
        on_behalf: session.on_behalf_id(),
        at: state.clock.now(),
        event: NewEvent::new(AuditAction::OrderPlaced, request)
            .by(session)
            .subject(session.member.id)
            .details(json!({ "product_id": product_id, "quantity": quantity })),
    };
    if state.group_commit.is_on() {
        return state
            .group_commit
            .run(move |tx| {
                let order = order.clone();
                Box::pin(async move { Ok(write_order!(tx, order)) })
            })
            .await;
    }
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let id = write_order!(&mut tx, order);
        tx.commit().await?;
        Ok(id)
    })
}
