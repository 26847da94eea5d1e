//! The defences every answer shares: the origin check of state-changing requests,
//! the Content-Security-Policy (a nonce per page), the security headers, CORS for the
//! JSON API, and the body limits.

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, Method},
    middleware::Next,
    response::Response,
};

use app::error::{AppError, Refusal};

use crate::{
    errors::{error_page, json_error},
    state::ServerState,
};

/// The response header that hands a bearer client its actor's new token, when the
/// session on behalf its token belonged to has ended (a cookie client gets a cookie).
pub const TOKEN_HEADER: &str = "behalf-token";
/// The header that holds the cursor of a list's next page (`GET /api/v1/orders`).
pub const NEXT_CURSOR_HEADER: &str = "behalf-next-cursor";

/// Whether the member's browser reached us over https: the configured public URL
/// says so, or (behind a trusted proxy) the proxy's X-Forwarded-Proto does.
pub fn request_is_https(state: &ServerState, headers: &HeaderMap) -> bool {
    state.app.settings.public_https()
        || (state.trust_proxy
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https")))
}

/// Refuses state-changing requests sent from another site (defence in depth next
/// to SameSite=Lax cookies): a browser's Origin or Sec-Fetch-Site gives them away.
pub async fn refuse_cross_site(request: Request, next: Next) -> Response {
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
        return error_page(&refused);
    }
    next.run(request).await
}

/// "https://a.example:8080" → "a.example:8080"; "null" and the like → None.
fn origin_authority(origin: &str) -> Option<&str> {
    origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'))
}

/// CORS for the JSON API: off unless origins are configured.
pub fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
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
            header::HeaderName::from_static(TOKEN_HEADER),
            header::HeaderName::from_static(NEXT_CURSOR_HEADER),
        ])
        .max_age(std::time::Duration::from_secs(600))
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

pub async fn security_headers(State(state): State<ServerState>, request: Request, next: Next) -> Response {
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

/// An answer whose address holds a secret (a one-click link): not kept by a cache or
/// indexed, and not sent on as a referrer, not even to the app itself (the
/// stylesheet's request): only the origin is. (Not `no-referrer`: a browser then sends
/// `Origin: null` with the Continue form, which the origin check rightly refuses.)
pub fn private(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin"));
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex, nofollow"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
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
