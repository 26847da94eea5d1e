//! How an `AppError` is answered: the one JSON error shape (`{"error": {"code",
//! "message", "field"?, "retry_after"?}}`, the app's `WireError`, whose OpenAPI schema
//! the API documents), or a page in the app's frame for a browser that navigated.

use app::error::AppError;
use axum::{
    extract::Request,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};

use crate::{
    html::{escape_html, page},
    state::API_BODY_LIMIT,
};

/// The HTTP status an error is answered with.
pub fn status_of(error: &AppError) -> StatusCode {
    StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// `Retry-After` for an error that has one (a 429).
pub fn set_retry_after(headers: &mut HeaderMap, error: &AppError) {
    if let Some(seconds) = error.retry_after() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
}

/// The one error shape with the error's status (and `Retry-After` on a 429), as
/// server functions send it. Every JSON error answer is made here (and counted by its
/// code, `crate::metrics`), but a server function's own (`server_fns.rs`).
pub fn json_error(error: &AppError) -> Response {
    crate::metrics::count_refusal(error);
    let mut response = (status_of(error), Json(error.wire())).into_response();
    set_retry_after(response.headers_mut(), error);
    response
}

/// The one error shape, answered with `status` instead of the error's own (a 405, or
/// the status a layer chose).
pub fn json_error_as(status: StatusCode, error: &AppError) -> Response {
    let mut response = json_error(error);
    *response.status_mut() = status;
    response
}

/// The page for an error: its message, escaped, with the error's status (and
/// `Retry-After` on a 429). Counted by its code, as `json_error`.
pub fn error_page(error: &AppError) -> Response {
    crate::metrics::count_refusal(error);
    let status = status_of(error);
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        StatusCode::UNAUTHORIZED => "Please sign in",
        StatusCode::FORBIDDEN => "Not allowed",
        s if s.is_server_error() => "Something went wrong",
        _ => "Cannot do that",
    };
    let body = format!(
        "<h1>{}</h1><p role=\"alert\">{}</p><p><a href=\"/\">Go to My account</a></p>",
        escape_html(title),
        escape_html(&error.to_string())
    );
    let mut response = page(status, title, &body);
    set_retry_after(response.headers_mut(), error);
    response
}

/// Whether a response's body is JSON (by its content type).
pub fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Never kept by a cache on the way.
pub fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Under `/api`, every answer is JSON: an error from a layer (a body over the limit,
/// a method axum refused) is put in the one error shape with its status.
pub async fn api_errors_as_json(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    if !api || !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge {
            limit_kib: API_BODY_LIMIT as u64 / 1024,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_pages_carry_the_status_and_retry_after() {
        let page = error_page(&AppError::NotFound("<b>no</b>".into()));
        assert_eq!(page.status(), StatusCode::NOT_FOUND);
        let throttled = error_page(&AppError::RateLimited { retry_after: 7 });
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(throttled.headers()[header::RETRY_AFTER], "7");
        let json = json_error(&AppError::RateLimited { retry_after: 3 });
        assert_eq!(json.headers()[header::RETRY_AFTER], "3");
        assert!(is_json(&json));
    }
}
