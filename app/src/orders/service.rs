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

/// The catalogue and the signed-in member's orders (on behalf: the member's), newest
/// first (at most 100).
pub async fn list(state: &AppState, request: &RequestContext) -> Result<OrdersView, AppError> {
    let member_id = request.require_session()?.member.id;
    let (products, rows): (Vec<(i64, String, i64)>, Vec<OrderRow>) = with_db!(&state.db, pool => {
        let products = sqlx::query_as("SELECT id, name, price_cents FROM products ORDER BY name")
            .fetch_all(pool)
            .await?;
        let rows = sqlx::query_as(
            "SELECT o.id, p.name, o.quantity, p.price_cents, o.created_at, o.placed_by, \
             CASE WHEN o.placed_by <> o.member_id THEN b.display_name END \
             FROM orders o JOIN products p ON p.id = o.product_id JOIN members b ON b.id = o.placed_by \
             WHERE o.member_id = $1 ORDER BY o.id DESC LIMIT 100",
        )
        .bind(member_id)
        .fetch_all(pool)
        .await?;
        (products, rows)
    });
    Ok(OrdersView {
        products: products
            .into_iter()
            .map(|(id, name, price_cents)| Product {
                id,
                name,
                price_cents,
            })
            .collect(),
        orders: rows
            .into_iter()
            .map(|(id, product, quantity, price, created_at, _, by)| Order {
                id,
                product,
                quantity,
                total_cents: price * quantity,
                placed: format_utc(created_at),
                placed_on_behalf_by: by,
            })
            .collect(),
    })
}

/// Places an order for the session's member; the real person (the actor, on behalf)
/// is stored as `placed_by` and in the audit record, written in the same transaction.
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
    let member = session.member.id;
    let placed_by = session.actor().id;
    let now = state.clock.now();
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM products WHERE id = $1")
            .bind(product_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(AppError::validation("product_id", "There is no such product. Choose one from the list."));
        }
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO orders (member_id, product_id, quantity, placed_by, on_behalf_session_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(member)
        .bind(product_id)
        .bind(quantity)
        .bind(placed_by)
        .bind(session.on_behalf_id())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let event = NewEvent::new(AuditAction::OrderPlaced, request)
            .by(session)
            .subject(member)
            .object(ObjectKind::Order, id)
            .details(json!({ "product_id": product_id, "quantity": quantity }));
        tx.append_audit(now, event).await?;
        tx.commit().await?;
        Ok(id)
    })
}
