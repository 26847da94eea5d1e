//! The HTTP surface: pages (server-rendered, then hydrated), server functions,
//! static files, and the middleware in front of them.

use std::{net::SocketAddr, path::PathBuf, sync::OnceLock};

use app::{
    audit::{export, FilterParams},
    context::{Notice, RequestContext},
    error::{AppError, Refusal},
    session::{
        clearing_cookie, clearing_duplicates, cookie_from_headers, find_live, notice_cookie, session_cookie,
        session_from_headers, Lookup, SessionCookie, NOTICE_COOKIE,
    },
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
use leptos::{
    nonce::Nonce,
    prelude::{provide_context, LeptosOptions},
};
use leptos_axum::{generate_route_list, handle_server_fns_with_context, AxumRouteListing, LeptosRoutes};
use tower_http::{
    limit::RequestBodyLimitLayer, services::ServeDir, timeout::TimeoutLayer, trace::TraceLayer,
};

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
    let request_timeout = std::time::Duration::from_secs(app.settings.request_timeout_seconds.max(1));
    let (api, _) = crate::api::routes();
    let api = api.layer(cors(&app.settings.cors_origins));
    let pkg_dir = PathBuf::from(leptos_options.site_root.as_ref()).join(leptos_options.site_pkg_dir.as_ref());
    let state = ServerState {
        app,
        leptos_options,
        trust_proxy,
    };
    Router::new()
        .merge(api)
        // Server functions are POST only: no mutation is reachable with a GET.
        .route(
            "/api/{*fn_name}",
            post(server_fn_handler).fallback(api_method_not_allowed),
        )
        .route("/healthz", get(health))
        .route("/admin/audit.csv", get(export_audit_csv))
        .route(
            "/one-click/{member_id}/{token}",
            get(crate::one_click::open).post(crate::one_click::continue_with),
        )
        .leptos_routes_with_handler(routes, get(page_handler))
        .nest_service("/pkg", ServeDir::new(pkg_dir))
        .fallback(get(page_handler))
        .layer(middleware::from_fn(refuse_cross_site))
        .layer(RequestBodyLimitLayer::new(256 * 1024))
        // 503, not 408: browsers resend a request answered 408 on a kept-alive
        // connection, POSTs included, though its work may have been done.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(middleware::from_fn(api_errors_as_json))
        .layer(middleware::from_fn_with_state(state.clone(), security_headers))
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
/// `token` is the bearer token of an API request (it wins over the cookie), or
/// `None` to read the cookie.
pub(crate) async fn request_context(
    state: &ServerState,
    headers: &HeaderMap,
    peer: SocketAddr,
    token: Option<String>,
) -> Result<(RequestContext, Lookup, bool), AppError> {
    let https = request_is_https(state, headers);
    let mut clearing = Vec::new();
    let token = token.or_else(|| match session_from_headers(headers, https) {
        SessionCookie::One(token) => Some(token),
        SessionCookie::Absent => None,
        SessionCookie::Duplicated => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            clearing = clearing_duplicates(https, host);
            None
        }
    });
    let mut lookup = match token.as_deref() {
        Some(token) => find_live(&state.app, token).await?,
        None => Lookup::default(),
    };
    lookup.clearing = clearing;
    let session = lookup.session.take();
    // The entry the proxy added is the last one; earlier ones are whatever the client
    // sent. Only an address is taken.
    let forwarded_for = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.to_string());
    let ip = match (state.trust_proxy, forwarded_for) {
        (true, Some(forwarded)) => forwarded,
        _ => peer.ip().to_string(),
    };
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
            fetch_site: headers
                .get("sec-fetch-site")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            https,
        },
        lookup,
        carried.is_some(),
    ))
}

/// Whether the member's browser reached us over https: the configured public URL
/// says so, or (behind a trusted proxy) the proxy's X-Forwarded-Proto does.
pub(crate) fn request_is_https(state: &ServerState, headers: &HeaderMap) -> bool {
    state.app.settings.public_https()
        || (state.trust_proxy
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https")))
}

/// The cookies that follow from the session lookup: the actor's new token after a
/// session on behalf ended, clearing a cookie that names no usable session, or
/// clearing both of a session cookie sent twice.
pub(crate) fn session_cookies(context: &RequestContext, lookup: &Lookup, settings: &Settings) -> Vec<String> {
    let mut cookies = Vec::new();
    if !lookup.clearing.is_empty() {
        cookies.extend(lookup.clearing.iter().cloned());
    } else if let Some(token) = &lookup.reissued {
        cookies.push(session_cookie(token, context.https, settings.session_lifetime));
    } else if context.stale_cookie {
        cookies.push(clearing_cookie(context.https));
    }
    cookies
}

pub(crate) fn append_cookies(response: &mut Response, cookies: &[String]) {
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
    let (context, lookup, notice_carried) = match request_context(&state, request.headers(), peer, None).await
    {
        Ok(found) => found,
        Err(error) => return crate::pages::error_page(&error),
    };
    let mut cookies = session_cookies(&context, &lookup, &state.app.settings);
    let https = context.https;
    let notice = context.notice;
    let options = state.leptos_options.clone();
    // Every page renders completely before the first byte (async SSR): the status
    // (302 to sign in, 403, 404) and the banner are right from the start. Matched
    // routes and the not-found fallback go through the same renderer.
    // One nonce per page: Leptos puts it on the inline scripts it writes, and the
    // policy allows those and no other.
    let nonce = Nonce::new();
    let csp = page_csp(&nonce);
    let provide = provide_request(state.app.clone(), context);
    let render = leptos_axum::render_app_async_with_context(
        move || {
            provide();
            provide_context(nonce.clone());
        },
        move || shell(options.clone()),
    );
    let mut response = render(request).await;
    no_store(&mut response);
    if let Ok(value) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
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
    let (context, lookup, _) = match request_context(&state, request.headers(), peer, None).await {
        Ok(found) => found,
        Err(error) => return json_error(&error),
    };
    let mut cookies = session_cookies(&context, &lookup, &state.app.settings);
    if lookup.notice.is_some() {
        cookies.push(notice_cookie(lookup.notice, context.https));
    }
    // The request came in a session on behalf that is over: it acts as no one. The
    // browser gets the actor's own session back, and the call is not carried out —
    // except the two that only say who the browser is now.
    if lookup.ended_on_behalf && !IDENTITY_READS.contains(&request.uri().path()) {
        let mut response = json_error(&AppError::OnBehalfEnded);
        no_store(&mut response);
        append_cookies(&mut response, &cookies);
        return response;
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

/// Server functions are POST only; any other method gets the one error shape.
async fn api_method_not_allowed() -> Response {
    let mut response = json_error_as(
        StatusCode::METHOD_NOT_ALLOWED,
        &AppError::BadRequest("Server functions are called with POST.".to_string()),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// Server functions that change nothing and act for no one: they report who the
/// browser is (and why that changed), so they answer even on the request that found
/// its session on behalf over.
const IDENTITY_READS: [&str; 2] = ["/api/whoami", "/api/notice"];

/// Whether a response's body is JSON (by its content type).
fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

async fn with_error_status(response: Response) -> Response {
    let is_json = is_json(&response);
    if !is_json && response.status().is_client_error() {
        // Not a server function's answer: leptos's own, for a name it does not know.
        return json_error(&AppError::NotFound(
            "There is no such server function.".to_string(),
        ));
    }
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, 64 * 1024).await else {
        return json_error(&AppError::Internal);
    };
    match serde_json::from_slice::<AppError>(&bytes) {
        Ok(error) => {
            parts.status =
                StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if let Some(seconds) = error.retry_after() {
                parts
                    .headers
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            Response::from_parts(parts, Body::from(bytes))
        }
        // Not one of ours (it cannot happen: every server function returns AppError).
        Err(_) => json_error(&AppError::Internal),
    }
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `{"error": {"code", "message", "field"?, "retry_after"?}}` with the error's status
/// (and `Retry-After` on a 429): the one error shape, as server functions send it.
pub fn json_error(error: &AppError) -> Response {
    let status = StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(error.wire())).into_response();
    if let Some(seconds) = error.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The one error shape, answered with `status` instead of the error's own (a 405, or
/// the status a layer chose).
pub fn json_error_as(status: StatusCode, error: &AppError) -> Response {
    let mut response = json_error(error);
    *response.status_mut() = status;
    response
}

/// The filtered audit trail as CSV, streamed (see `app::audit::export`).
async fn export_audit_csv(
    State(state): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(params): Query<FilterParams>,
    request: Request,
) -> Response {
    let (context, lookup, _) = match request_context(&state, request.headers(), peer, None).await {
        Ok(found) => found,
        Err(error) => return crate::pages::error_page(&error),
    };
    let cookies = session_cookies(&context, &lookup, &state.app.settings);
    let refused = |error: AppError| {
        let mut response = crate::pages::error_page(&error);
        append_cookies(&mut response, &cookies);
        response
    };
    // A download is a request like any other: sent in a session on behalf that is
    // over, it acts as no one.
    if lookup.ended_on_behalf {
        return refused(AppError::OnBehalfEnded);
    }
    let export = match export::start(&state.app, &context, &params).await {
        Ok(export) => export,
        Err(error) => return refused(error),
    };
    let filename = export.filename.clone();
    let chunks = futures_util::stream::unfold(export, |mut export| async move {
        let chunk = export.next_chunk().await?;
        let chunk = chunk
            .map(axum::body::Bytes::from)
            .map_err(|_| std::io::Error::other("the export stopped: database error"));
        Some((chunk, export))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(chunks))
        .map(|mut response| {
            append_cookies(&mut response, &cookies);
            response
        })
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
    // A bearer token is not sent by the browser on its own, so it needs no origin
    // check (and it is the only credential an API request with one uses).
    if request.uri().path().starts_with("/api/v1/") && headers.contains_key(header::AUTHORIZATION) {
        return next.run(request).await;
    }
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
        let refused = AppError::Refused(Refusal::CrossSite);
        // A page (the one-click link's Continue) gets a page; the API, JSON.
        if request.uri().path().starts_with("/api/") {
            return json_error(&refused);
        }
        return crate::pages::error_page(&refused);
    }
    next.run(request).await
}

/// Under `/api`, every answer is JSON: an error from a layer (a body over the limit,
/// a method axum refused) is put in the one error shape with its status.
async fn api_errors_as_json(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    if !api || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    if is_json(&response) {
        return response;
    }
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge {
            limit_kib: crate::api::extract::BODY_LIMIT as u64 / 1024,
        },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::NotJson,
        StatusCode::NOT_FOUND => AppError::NotFound("There is no such API endpoint.".to_string()),
        StatusCode::SERVICE_UNAVAILABLE => AppError::Conflict(
            "The server took too long to answer. What was asked may or may not have been done: check before trying again."
                .to_string(),
        ),
        s if s.is_server_error() => AppError::Internal,
        _ => AppError::BadRequest("The request was refused.".to_string()),
    };
    json_error_as(status, &error)
}

/// CORS for the JSON API: off unless origins are configured.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if allowed.is_empty() {
        return CorsLayer::new();
    }
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([
            header::RETRY_AFTER,
            header::HeaderName::from_static(crate::api::extract::TOKEN_HEADER),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

/// "https://a.example:8080" → "a.example:8080"; "null" and the like → None.
fn origin_authority(origin: &str) -> Option<&str> {
    origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'))
}

/// The Content-Security-Policy: scripts from this origin only — inline ones only with
/// `nonce` (a page's: Leptos puts it on its hydration and resource scripts) — our own
/// WebAssembly, and nothing framed, based elsewhere or posted elsewhere.
fn csp(nonce: Option<&str>) -> String {
    let inline = nonce.map(|nonce| format!(" 'nonce-{nonce}'")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'{inline} 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
}

/// A page's policy, with its nonce.
pub fn page_csp(nonce: &str) -> String {
    csp(Some(nonce))
}

/// The policy of every other answer (JSON, files, the server's own small pages): no
/// inline script at all. Built once.
static DEFAULT_CSP: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
    HeaderValue::from_str(&csp(None)).expect("the policy is a valid header value")
});

/// HSTS for two years, sent on every answer once members come over https.
const HSTS: &str = "max-age=63072000";

async fn security_headers(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    let https = request_is_https(&state, request.headers());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if https {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // A page may ask for less (a one-click link's address is not sent on at all).
    if !headers.contains_key("referrer-policy") {
        headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    }
    // A page sets its own, with its nonce.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, DEFAULT_CSP.clone());
    }
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
