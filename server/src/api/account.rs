//! The member's own area (products, orders, sessions, access history) and the audit
//! trail: the services of the account pages and the audit viewer.

use app::{
    account::{service as account, AccessRecord},
    audit::{service as audit, FilterParams},
    audit_action::AuditAction,
    error::AppError,
    orders::service as orders,
};
use axum::{extract::State, http::StatusCode, response::IntoResponse, Json};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    extract::{positive, ApiJson, ApiPath, ApiQuery, ApiResult},
    types::*,
    Errors,
};
// The next page's cursor rides in a header (security.rs lets other origins read it):
// the body stays the array of orders it always was.
use crate::{security::NEXT_CURSOR_HEADER, session::Caller, state::ServerState};

/// The catalogue.
#[utoipa::path(get, path = "/api/v1/products", tag = "orders",
    responses((status = 200, body = Vec<ProductView>), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn products(State(state): State<ServerState>, caller: Caller) -> ApiResult<Json<Vec<ProductView>>> {
    let view = orders::list(&state.app, &caller.context).await?;
    Ok(Json(
        view.products
            .into_iter()
            .map(|p| ProductView {
                id: p.id,
                name: p.name,
                price_cents: p.price_cents,
            })
            .collect(),
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// The `next_cursor` of the previous page (its `Behalf-Next-Cursor` header).
    #[param(max_length = 20)]
    pub cursor: Option<String>,
    /// Orders per page, 1 to 100 (default 100).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// The caller's orders, newest first, up to 100 a page. On behalf: the member's. When
/// more follow, the `Behalf-Next-Cursor` header holds the `cursor` of the next page.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(OrdersQuery),
    responses((status = 200, body = Vec<OrderView>,
        headers(("Behalf-Next-Cursor" = String,
            description = "The next_cursor: pass it as `cursor` for the next (older) page; absent on the last page."))),
        Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list_orders(
    State(state): State<ServerState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<OrdersQuery>,
) -> ApiResult<impl IntoResponse> {
    let before = super::cursor(&query.cursor)?;
    let limit = super::limit(query.limit, orders::PAGE_MAX, orders::PAGE_MAX)?;
    let page = orders::page(&state.app, &caller.context, before, limit).await?;
    let mut response = Json(page.orders.into_iter().map(OrderView::from).collect::<Vec<_>>()).into_response();
    if let Some(next) = page.next {
        response.headers_mut().insert(
            axum::http::HeaderName::from_static(NEXT_CURSOR_HEADER),
            axum::http::HeaderValue::from(next),
        );
    }
    Ok(response)
}

/// Place an order for the caller (on behalf: for the member, placed by the actor).
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders",
    request_body = NewOrder,
    responses((status = 201, body = OrderCreated), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn place_order(
    State(state): State<ServerState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewOrder>,
) -> ApiResult<impl IntoResponse> {
    let id = orders::place(
        &state.app,
        &caller.context,
        &body.product_id.to_string(),
        &body.quantity.to_string(),
    )
    .await?;
    let view = orders::list(&state.app, &caller.context).await?;
    let order = view
        .orders
        .into_iter()
        .find(|o| o.id == id)
        .ok_or(AppError::Internal)?;
    Ok((StatusCode::CREATED, Json(OrderCreated { order: order.into() })))
}

/// The caller's live sessions: their own, and those on their behalf.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "account",
    responses((status = 200, body = Vec<SessionItem>), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn sessions(State(state): State<ServerState>, caller: Caller) -> ApiResult<Json<Vec<SessionItem>>> {
    let list = account::sessions(&state.app, &caller.context).await?;
    Ok(Json(list.into_iter().map(SessionItem::from).collect()))
}

/// End one of the caller's other sessions (a session on behalf of them ends too).
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "account",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 204, description = "Ended"), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn revoke_session(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let id = positive(id, "session")?;
    account::revoke(&state.app, &caller.context, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who logged in on the caller's behalf, when and why (newest first).
#[utoipa::path(get, path = "/api/v1/access_history", tag = "account",
    responses((status = 200, body = Vec<AccessRecord>), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn access_history(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Json<Vec<AccessRecord>>> {
    Ok(Json(account::access_history(&state.app, &caller.context).await?))
}

/// The audit actions, as an OpenAPI enum built from the same list the viewer's filter
/// offers (`AuditAction::ALL`), so the two cannot drift.
fn audit_action_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(AuditAction::ALL.iter().map(|action| action.as_str())))
        .build()
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The real person's member ID.
    #[param(max_length = 20)]
    pub actor: Option<String>,
    /// The member concerned.
    #[param(max_length = 20)]
    pub subject: Option<String>,
    /// An action, e.g. `on_behalf_start` (one of the names the audit trail writes).
    #[param(schema_with = audit_action_schema)]
    pub action: Option<String>,
    /// First day, `YYYY-MM-DD` (UTC).
    #[param(max_length = 10)]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC).
    #[param(max_length = 10)]
    pub to: Option<String>,
    /// A session on behalf's ID.
    #[param(max_length = 20)]
    pub session: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 20)]
    pub cursor: Option<String>,
}

/// The audit trail, newest first, 50 a page (editors and super users).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditList), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn audit_list(
    State(state): State<ServerState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditList>> {
    let before = super::cursor(&query.cursor)?;
    let params = FilterParams {
        actor: query.actor,
        subject: query.subject,
        action: query.action,
        from: query.from,
        to: query.to,
        session: query.session,
    };
    let page = audit::page(&state.app, &caller.context, &params, before).await?;
    Ok(Json(AuditList {
        records: page.records.into_iter().map(AuditItem::from).collect(),
        next_cursor: page.older.map(|id| id.to_string()),
    }))
}
