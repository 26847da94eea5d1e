//! The HTTP surface: pages (server-rendered, then hydrated), server functions,
//! static files, and the middleware in front of them.

use std::{net::SocketAddr, path::PathBuf, sync::OnceLock};

use app::{
    auth::session::{clearing_cookie, find_live, token_from_headers, RequestContext},
    error::AppError,
    shell,
    state::AppState,
    App,
};
use axum::{
    body::{to_bytes, Body},
    extract::{ConnectInfo, FromRef, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use leptos::prelude::{provide_context, LeptosOptions};
use leptos_axum::{generate_route_list, handle_server_fns_with_context, AxumRouteListing, LeptosRoutes};
use tower_http::{limit::RequestBodyLimitLayer, services::ServeDir, trace::TraceLayer};

/// Everything a handler can reach.
#[derive(Clone, FromRef)]
pub struct ServerState {
    pub app: AppState,
    pub leptos_options: LeptosOptions,
    /// Trust X-Forwarded-For / X-Forwarded-Proto.
    pub trust_proxy: bool,
}

/// The whole application as an axum router.
pub fn router(app: AppState, leptos_options: LeptosOptions, trust_proxy: bool) -> Router {
    let routes = route_list();
    let pkg_dir = PathBuf::from(leptos_options.site_root.as_ref()).join(leptos_options.site_pkg_dir.as_ref());
    let state = ServerState {
        app,
        leptos_options,
        trust_proxy,
    };
    Router::new()
        // Server functions are POST only: no mutation is reachable with a GET.
        .route("/api/{*fn_name}", post(server_fn_handler))
        .route("/healthz", get(health))
        .leptos_routes_with_handler(routes, get(page_handler))
        .nest_service("/pkg", ServeDir::new(pkg_dir))
        .fallback(get(page_handler))
        .layer(middleware::from_fn(refuse_cross_site))
        .layer(middleware::from_fn(security_headers))
        .layer(RequestBodyLimitLayer::new(256 * 1024))
        .layer(TraceLayer::new_for_http())
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

/// Resolves the session cookie (and client details) before anything renders.
async fn request_context(
    state: &ServerState,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<RequestContext, AppError> {
    let token = token_from_headers(headers);
    let session = match token.as_deref() {
        Some(token) => find_live(&state.app, token).await?,
        None => None,
    };
    let forwarded_for = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 64);
    let ip = match (state.trust_proxy, forwarded_for) {
        (true, Some(forwarded)) => forwarded,
        _ => peer.ip().to_string(),
    };
    let https = state.trust_proxy
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    Ok(RequestContext {
        stale_cookie: token.is_some() && session.is_none(),
        session,
        ip: Some(ip),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        https,
    })
}

fn provide_request(app: AppState, context: RequestContext) -> impl Fn() + Clone + Send + Sync + 'static {
    move || {
        provide_context(app.clone());
        provide_context(context.clone());
    }
}

/// Renders a page with the request's session in context.
async fn page_handler(
    State(state): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let context = match request_context(&state, request.headers(), peer).await {
        Ok(context) => context,
        Err(error) => return plain_error_page(&error),
    };
    let stale_cookie = context.stale_cookie.then(|| clearing_cookie(context.https));
    let options = state.leptos_options.clone();
    // Every page renders completely before the first byte (async SSR): the status
    // (302 to sign in, 403, 404) and the banner are right from the start. Matched
    // routes and the not-found fallback go through the same renderer.
    let render =
        leptos_axum::render_app_async_with_context(provide_request(state.app.clone(), context), move || {
            shell(options.clone())
        });
    let mut response = render(request).await;
    no_store(&mut response);
    if let Some(cookie) = stale_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Runs a server function with the request's session in context, and answers its
/// errors with their own HTTP status (server_fn would send 500 for all of them).
async fn server_fn_handler(
    State(state): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let context = match request_context(&state, request.headers(), peer).await {
        Ok(context) => context,
        Err(error) => return json_error(&error),
    };
    let response = handle_server_fns_with_context(provide_request(state.app.clone(), context), request)
        .await
        .into_response();
    let mut response = with_error_status(response).await;
    no_store(&mut response);
    response
}

async fn with_error_status(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, 64 * 1024).await else {
        return json_error(&AppError::Internal);
    };
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `{"error": {"code", "message"}}` with the error's status.
pub fn json_error(error: &AppError) -> Response {
    let status = StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({ "error": { "code": error.code(), "message": error.to_string() } });
    (status, Json(body)).into_response()
}

fn plain_error_page(error: &AppError) -> Response {
    let status = StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Behalf</title></head>\
         <body><main><h1>Behalf</h1><p role=\"alert\">{}</p></main></body></html>",
        error
    );
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

async fn health(State(state): State<ServerState>) -> Response {
    let ok: Result<(), sqlx::Error> = app::with_db!(&state.app.db, pool => {
        sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
    });
    match ok {
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

/// Refuses state-changing requests sent from another site (defence in depth next
/// to SameSite=Lax cookies): a browser's Origin or Sec-Fetch-Site gives them away.
async fn refuse_cross_site(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let cross_site_fetch = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let foreign_origin = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => false,
        Some(origin) => origin_authority(origin) != host,
    };
    if cross_site_fetch || foreign_origin {
        return json_error(&AppError::forbidden("Cross-site request refused."));
    }
    next.run(request).await
}

/// "https://a.example:8080" → "a.example:8080"; "null" and the like → None.
fn origin_authority(origin: &str) -> Option<&str> {
    origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'))
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
             style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; \
             frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_by_authority() {
        assert_eq!(origin_authority("http://127.0.0.1:3000"), Some("127.0.0.1:3000"));
        assert_eq!(origin_authority("https://a.example/"), Some("a.example"));
        assert_eq!(origin_authority("null"), None);
    }
}
