//! The frame of the pages the server writes itself, without the app (an error found
//! before the app could render, the one-click confirmation): the app's stylesheet and
//! frame, no script, every shown text escaped.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        assert_eq!(
            escape_html("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        let framed = page(StatusCode::NOT_FOUND, "<b>no</b>", "<p>x</p>");
        assert_eq!(framed.status(), StatusCode::NOT_FOUND);
        assert_eq!(framed.headers()[header::CACHE_CONTROL], "no-store");
    }
}
