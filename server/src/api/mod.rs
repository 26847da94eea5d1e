//! The JSON API v1 under `/api/v1`, for frontends without the admin screens. Each
//! handler reads the caller, calls the same service as the web pages and maps the
//! answer: no rule, check or audit record is implemented twice. The OpenAPI document
//! is generated from these handlers and types (utoipa), so it cannot drift.

pub mod account;
pub mod auth;
pub mod consent;
pub mod events;
pub mod extract;
pub mod members;
pub mod one_click;
pub mod oversight;
pub mod types;

use app::{
    error::{AppError, WireError as ErrorBody},
    urls::optional_id,
};
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::Response,
    routing::any,
    Json, Router,
};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::{
    openapi::{
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
        OpenApi as Document,
    },
    IntoResponses, Modify, OpenApi,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use self::extract::ApiError;
use crate::{
    errors::{json_error, json_error_as},
    state::ServerState,
};

/// Every error status an operation can answer with, each in the one error shape.
#[allow(dead_code)]
#[derive(IntoResponses)]
pub enum Errors {
    /// Malformed: a body that is not JSON text, a bad query string or path.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No token, or a bad or ended one; or wrong credentials at sign-in.
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// Refused by the rule (`code` is its denial code) or a permission; in a session
    /// on behalf, `on_behalf_view_only` (a change while view only),
    /// `on_behalf_protected_action` (never on behalf) or `act_needs_role`.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// A conflict, or `on_behalf_ended`: the session on behalf this token belonged
    /// to is over, so nothing was done (the actor's new token is in `Behalf-Token`).
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// The body is over 16 KiB.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not `application/json`.
    #[response(status = 415)]
    NotJson(ErrorBody),
    /// Validation failed; `field` names the field.
    #[response(status = 422)]
    Validation(ErrorBody),
    /// Locked out or throttled; wait `Retry-After` seconds.
    #[response(status = 429)]
    Throttled(ErrorBody),
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The token from login or alias_login."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("behalf_session"))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Behalf API",
        version = "1",
        description = "Log in on behalf of another member, from a frontend of your own. \
                       Authenticate with `Authorization: Bearer <token>` (from login) or the \
                       session cookie; cookie requests that change something must come from \
                       the app's own origin. Every error is `{\"error\": {\"code\", \"message\", \"field\"?}}`."
    ),
    modifiers(&Security),
    components(schemas(app::error::WireError, app::error::WireBody)),
    tags(
        (name = "authentication", description = "Sign in, profile and login on behalf"),
        (name = "members", description = "Members (admin access; editors and super users for changes)"),
        (name = "groups", description = "Member groups"),
        (name = "one-click links", description = "One-click login links (support engineers and above)"),
        (name = "orders", description = "The caller's own orders"),
        (name = "account", description = "The caller's sessions and access history"),
        (name = "audit", description = "The audit trail (editors and super users)"),
        (name = "oversight", description = "Live sessions on behalf, and ending them (editors and super users)"),
        (name = "consent", description = "The member in the loop: asking first, access requests, grants, notices, live presence and ending a session on one's behalf"),
    )
)]
struct ApiDoc;

/// The API's routes and its OpenAPI document, built from the same list.
pub fn routes() -> (Router<ServerState>, Document) {
    let (router, document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::profile))
        .routes(routes!(auth::alias_login))
        .routes(routes!(auth::alias_elevate))
        .routes(routes!(auth::alias_logout))
        .routes(routes!(auth::change_password))
        .routes(routes!(members::list))
        .routes(routes!(members::get, members::patch))
        .routes(routes!(members::put_proxy_permission))
        .routes(routes!(members::list_groups, members::create_group))
        .routes(routes!(members::rename_group, members::delete_group))
        .routes(routes!(members::group_members))
        .routes(routes!(members::add_group_member, members::remove_group_member))
        .routes(routes!(one_click::create, one_click::list))
        .routes(routes!(one_click::revoke))
        .routes(routes!(account::products))
        .routes(routes!(account::list_orders, account::place_order))
        .routes(routes!(account::sessions))
        .routes(routes!(account::revoke_session))
        .routes(routes!(account::access_history))
        .routes(routes!(account::audit_list))
        .routes(routes!(oversight::list))
        .routes(routes!(oversight::end))
        .routes(routes!(consent::get_settings, consent::put_settings))
        .routes(routes!(consent::create_request))
        .routes(routes!(consent::list_requests))
        .routes(routes!(consent::approve))
        .routes(routes!(consent::deny))
        .routes(routes!(consent::create_grant, consent::list_grants))
        .routes(routes!(consent::revoke_grant))
        .routes(routes!(consent::list_notices))
        .routes(routes!(consent::read_notice))
        .routes(routes!(consent::end_on_behalf))
        .routes(routes!(events::profile_events))
        .split_for_parts();
    let json = serde_json::to_value(&document).unwrap_or_default();
    let router = router
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let json = json.clone();
                async move { Json(json) }
            }),
        )
        .route("/api/v1/{*rest}", any(not_found))
        .route("/api/v1", any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        // Tokens and members' details: never kept by a cache on the way.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    (router, document)
}

async fn not_found() -> Response {
    json_error(&AppError::NotFound(
        "There is no such API endpoint; see /api/v1/openapi.json.".to_string(),
    ))
}

async fn method_not_allowed() -> Response {
    json_error_as(
        StatusCode::METHOD_NOT_ALLOWED,
        &AppError::BadRequest(
            "This endpoint does not take that method; see /api/v1/openapi.json.".to_string(),
        ),
    )
}

/// A page cursor: the ID the previous page ended at.
pub fn cursor(text: &Option<String>) -> Result<Option<i64>, ApiError> {
    Ok(optional_id(
        "cursor",
        text,
        "A cursor is the next_cursor of a previous page.",
    )?)
}

/// A page size: `default` when absent, else 1 to `max`.
pub fn limit(value: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(AppError::validation("limit", format!("A limit is 1 to {max}.")).into()),
    }
}
