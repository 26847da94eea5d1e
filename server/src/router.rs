//! The whole application as an axum router: which handler answers which route, and
//! the layers in front of them, in order.

use std::{path::PathBuf, sync::OnceLock};

use app::{error::AppError, state::AppState, App};
use axum::{
    extract::State,
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use leptos::prelude::LeptosOptions;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use tower_http::{
    limit::RequestBodyLimitLayer, services::ServeDir, timeout::TimeoutLayer, trace::TraceLayer,
};

use crate::{
    api,
    errors::{api_errors_as_json, json_error},
    pages::{app::page_handler, export::export_audit_csv, one_click},
    security::{cors, refuse_cross_site, security_headers},
    server_fns::{method_not_allowed, server_fn_handler},
    session,
    state::{ServerState, BODY_LIMIT},
};

/// The whole application. Every route that acts for someone sits behind the request
/// pipeline (`session::pipeline`); the health check and the built files do not.
/// Layers, innermost first: the pipeline (and, for the JSON API, CORS around it); the
/// origin check; the body limit; the request timeout; JSON errors under /api; the
/// security headers; tracing; the request metrics.
pub fn router(app: AppState, leptos_options: LeptosOptions, trust_proxy: bool) -> Router {
    let request_timeout = std::time::Duration::from_secs(app.settings.request_timeout_seconds.max(1));
    let (api, _) = api::routes();
    let pkg_dir = PathBuf::from(leptos_options.site_root.as_ref()).join(leptos_options.site_pkg_dir.as_ref());
    let cors = cors(&app.settings.cors_origins);
    let state = ServerState {
        app,
        leptos_options,
        trust_proxy,
    };
    let pipeline = middleware::from_fn_with_state(state.clone(), session::pipeline);
    // CORS outside the pipeline: a refusal the pipeline answers (409 on_behalf_ended,
    // with the actor's new token) reaches a frontend of another allowed origin too.
    let api = api.layer(pipeline.clone()).layer(cors);
    let for_someone = Router::new()
        // Server functions are POST only: no mutation is reachable with a GET.
        .route(
            "/api/{*fn_name}",
            post(server_fn_handler).fallback(method_not_allowed),
        )
        .route("/admin/audit.csv", get(export_audit_csv))
        .route("/api/on-behalf/events", get(api::events::actor_events))
        .route(
            "/one-click/{member_id}/{token}",
            get(one_click::open).post(one_click::continue_with),
        )
        .leptos_routes_with_handler(route_list(), get(page_handler))
        .fallback(get(page_handler))
        .layer(pipeline);
    Router::new()
        .merge(api)
        .merge(for_someone)
        .route("/healthz", get(health))
        .nest_service("/pkg", ServeDir::new(pkg_dir))
        .layer(middleware::from_fn(refuse_cross_site))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        // 503, not 408: browsers resend a request answered 408 on a kept-alive
        // connection, POSTs included, though its work may have been done.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(middleware::from_fn(api_errors_as_json))
        .layer(middleware::from_fn_with_state(state.clone(), security_headers))
        .layer(TraceLayer::new_for_http())
        // Outermost: counts every answer by its route's template (a no-op without
        // --metrics-addr).
        .layer(crate::metrics::layer())
        .with_state(state)
}

/// The app's routes, generated once per process. Generating them runs the app with
/// a process-wide switch that parks every resource first polled meanwhile for good
/// (leptos-rs/leptos#4773): a second server started while another one renders a
/// page (the tests run several in one process) would hang that page forever.
fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

async fn health(State(state): State<ServerState>) -> Response {
    match state.app.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ok", "database": state.app.db.kind() })),
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "health check failed");
            json_error(&AppError::Internal)
        }
    }
}
