//! The HTTP surface: pages (server-rendered, then hydrated), server functions,
//! static files, and the middleware in front of them.

use std::{net::SocketAddr, path::PathBuf, sync::OnceLock};

use app::{
    auth::session::{
        clearing_cookie, cookie_from_headers, find_live, notice_cookie, session_cookie, token_from_headers,
        Lookup, Notice, RequestContext, NOTICE_COOKIE,
    },
    error::AppError,
    shell,
    state::{AppState, Settings},
    App,
};
use axum::{
    body::{to_bytes, Body},
    extract::{ConnectInfo, FromRef, Query, Request, State},
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
        .route("/admin/audit.csv", get(export_audit_csv))
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

/// Resolves the session cookie (and client details) before anything renders. Also
/// returns the session lookup (a new token when a session on behalf ended and the
/// actor's own came back, and the notice saying why) and whether the browser sent a
/// notice cookie (to clear once shown).
async fn request_context(
    state: &ServerState,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<(RequestContext, Lookup, bool), AppError> {
    let token = token_from_headers(headers);
    let mut lookup = match token.as_deref() {
        Some(token) => find_live(&state.app, token).await?,
        None => Lookup::default(),
    };
    let session = lookup.session.take();
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
    let carried = cookie_from_headers(headers, NOTICE_COOKIE).filter(|value| !value.is_empty());
    let notice = lookup
        .notice
        .or_else(|| carried.as_deref().and_then(Notice::parse));
    Ok((
        RequestContext {
            stale_cookie: lookup.stale,
            notice,
            session,
            ip: Some(ip),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            https,
        },
        lookup,
        carried.is_some(),
    ))
}

/// The cookies that follow from the session lookup: the actor's new token after a
/// session on behalf ended, or clearing a cookie that names no usable session.
fn session_cookies(context: &RequestContext, lookup: &Lookup, settings: &Settings) -> Vec<String> {
    let mut cookies = Vec::new();
    if let Some(token) = &lookup.reissued {
        cookies.push(session_cookie(token, context.https, settings.session_lifetime));
    } else if context.stale_cookie {
        cookies.push(clearing_cookie(context.https));
    }
    cookies
}

fn append_cookies(response: &mut Response, cookies: &[String]) {
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
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
    let (context, lookup, notice_carried) = match request_context(&state, request.headers(), peer).await {
        Ok(found) => found,
        Err(error) => return plain_error_page(&error),
    };
    let mut cookies = session_cookies(&context, &lookup, &state.app.settings);
    let https = context.https;
    let notice = context.notice;
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
    // A notice is shown once: on this page, or on the next one after a redirect.
    if response.status().is_redirection() {
        if notice.is_some() {
            cookies.push(notice_cookie(notice, https));
        }
    } else if notice_carried {
        cookies.push(notice_cookie(None, https));
    }
    append_cookies(&mut response, &cookies);
    response
}

/// Runs a server function with the request's session in context, and answers its
/// errors with their own HTTP status (server_fn would send 500 for all of them).
async fn server_fn_handler(
    State(state): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (context, lookup, _) = match request_context(&state, request.headers(), peer).await {
        Ok(found) => found,
        Err(error) => return json_error(&error),
    };
    let mut cookies = session_cookies(&context, &lookup, &state.app.settings);
    if lookup.notice.is_some() {
        cookies.push(notice_cookie(lookup.notice, context.https));
    }
    let response = handle_server_fns_with_context(provide_request(state.app.clone(), context), request)
        .await
        .into_response();
    let mut response = with_error_status(response).await;
    no_store(&mut response);
    // Set before the server function's own cookies, so a sign-in or a switch made by
    // this very request wins.
    let own: Vec<HeaderValue> = match response.headers_mut().entry(header::SET_COOKIE) {
        header::Entry::Occupied(entry) => entry.remove_entry_mult().1.collect(),
        header::Entry::Vacant(_) => Vec::new(),
    };
    append_cookies(&mut response, &cookies);
    for value in own {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
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

/// Rows fetched per round trip while streaming the CSV export.
const EXPORT_CHUNK: i64 = 1_000;

/// The filtered audit trail as CSV, oldest first, streamed in chunks (a million
/// records are never held in memory). Editors and super users; the export itself is
/// recorded.
async fn export_audit_csv(
    State(state): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    request: Request,
) -> Response {
    use app::audit::{
        service::{self as audit, csv_line, NewEvent, CSV_HEADER},
        AuditFilter,
    };
    let (context, _, _) = match request_context(&state, request.headers(), peer).await {
        Ok(found) => found,
        Err(error) => return plain_error_page(&error),
    };
    if let Err(error) = audit::require_auditor(&context) {
        return plain_error_page(&error);
    }
    let get = |key: &str| query.get(key).map(String::as_str);
    let filter = match AuditFilter::parse(
        get("actor"),
        get("subject"),
        get("action"),
        get("from"),
        get("to"),
        get("session"),
    ) {
        Ok(filter) => filter,
        Err(error) => return plain_error_page(&error),
    };
    let Some(session) = context.session.as_ref() else {
        return plain_error_page(&AppError::Unauthenticated);
    };
    let event = NewEvent::new("audit_exported", &context)
        .by(session)
        .subject(session.member.id)
        .details(serde_json::json!({ "filter": filter.query_string() }));
    if let Err(error) = audit::record(&state.app.db, state.app.clock.now(), event).await {
        return plain_error_page(&error);
    }
    let db = state.app.db.clone();
    let chunks = futures_util::stream::unfold(Some(0_i64), move |cursor| {
        let (db, filter) = (db.clone(), filter.clone());
        async move {
            let after = cursor?;
            let mut text = if after == 0 {
                CSV_HEADER.to_string()
            } else {
                String::new()
            };
            match audit::fetch(&db, &filter, Some(after), EXPORT_CHUNK, true).await {
                Ok(rows) => {
                    let next = (rows.len() as i64 == EXPORT_CHUNK)
                        .then(|| rows.last().map(|r| r.id))
                        .flatten();
                    for row in &rows {
                        text.push_str(&csv_line(row));
                    }
                    Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(text)), next))
                }
                Err(_) => Some((
                    Err(std::io::Error::other("the export stopped: database error")),
                    None,
                )),
            }
        }
    });
    let name = format!(
        "behalf-audit-{}.csv",
        app::clock::format_utc(state.app.clock.now()).replace([' ', ':'], "-")
    );
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(chunks))
        .unwrap_or_else(|_| json_error(&AppError::Internal))
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
