//! Pages the server writes itself, without the app (an error found before the app
//! could render, the one-click confirmation): the app's stylesheet and frame, no
//! script, every shown text escaped.

use app::error::AppError;
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

/// Text made safe to put in HTML (element content and quoted attributes).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page in the app's frame: `title` (plain text) and `body` (HTML, already escaped
/// by the caller), answered with `status` and never cached.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let title = escape_html(title);
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Behalf</title><link rel=\"stylesheet\" href=\"/pkg/behalf.css\">\
         <link rel=\"icon\" href=\"data:,\"></head><body>\
         <header class=\"site-header\"><a class=\"brand\" href=\"/\">Behalf</a></header>\
         <main id=\"main\"><section class=\"card narrow\">{body}</section></main></body></html>"
    );
    let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The page for an error: its message, escaped, with the error's status (and
/// `Retry-After` on a 429).
pub fn error_page(error: &AppError) -> Response {
    let status = StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
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
    if let Some(seconds) = error.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        assert_eq!(
            escape_html("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        let page = error_page(&AppError::NotFound("<b>no</b>".into()));
        assert_eq!(page.status(), StatusCode::NOT_FOUND);
        let throttled = error_page(&AppError::RateLimited { retry_after: 7 });
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(throttled.headers()[header::RETRY_AFTER], "7");
    }
}
