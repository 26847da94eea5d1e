//! The session cookie and the one-time notice cookie.

use axum::http::{header, HeaderMap};
use cookie::{time::Duration as CookieDuration, Cookie, SameSite};

use crate::{
    clock::{Millis, SECOND},
    context::Notice,
    session::token::Token,
};

pub const COOKIE_NAME: &str = "behalf_session";

pub fn session_cookie(token: &Token, https: bool, lifetime: Millis) -> String {
    Cookie::build((COOKIE_NAME, token.expose().to_string()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https)
        .path("/")
        .max_age(CookieDuration::seconds(lifetime / SECOND))
        .build()
        .to_string()
}

pub fn clearing_cookie(https: bool) -> String {
    Cookie::build((COOKIE_NAME, ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https)
        .path("/")
        .max_age(CookieDuration::ZERO)
        .build()
        .to_string()
}

/// The session token from the `Cookie` headers, if one is there.
pub fn token_from_headers(headers: &HeaderMap) -> Option<String> {
    cookie_from_headers(headers, COOKIE_NAME)
}

/// The value of cookie `name` from the `Cookie` headers, if one is there.
pub fn cookie_from_headers(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_string())
}

/// A one-time notice carried to the next page (after a redirect) in this cookie.
pub const NOTICE_COOKIE: &str = "behalf_notice";

/// Sets the notice cookie for five minutes, or (with `None`) clears it.
pub fn notice_cookie(notice: Option<Notice>, https: bool) -> String {
    let (value, max_age) = match notice {
        Some(notice) => (notice.code(), CookieDuration::minutes(5)),
        None => ("", CookieDuration::ZERO),
    };
    Cookie::build((NOTICE_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https)
        .path("/")
        .max_age(max_age)
        .build()
        .to_string()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::clock::HOUR;

    #[test]
    fn the_session_cookie_has_the_safe_flags() {
        let token = Token::generate();
        let cookie = session_cookie(&token, false, 12 * HOUR);
        assert!(cookie.starts_with(&format!("{COOKIE_NAME}={}", token.expose())));
        for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
            assert!(cookie.contains(flag), "{cookie} lacks {flag}");
        }
        assert!(!cookie.contains("Secure"));
        assert!(session_cookie(&token, true, HOUR).contains("Secure"));
        assert!(clearing_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn the_notice_cookie_lives_five_minutes_and_can_be_cleared() {
        let set = notice_cookie(Some(Notice::OnBehalfExpired), true);
        assert!(set.starts_with("behalf_notice=on_behalf_expired"), "{set}");
        for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=300", "Secure"] {
            assert!(set.contains(flag), "{set} lacks {flag}");
        }
        let cleared = notice_cookie(None, false);
        assert!(
            cleared.starts_with("behalf_notice=;") && cleared.contains("Max-Age=0"),
            "{cleared}"
        );
        assert!(!cleared.contains("Secure"));
    }

    #[test]
    fn the_token_is_read_from_any_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; theme=dark"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("behalf_session=abc; b=2"),
        );
        assert_eq!(token_from_headers(&headers).as_deref(), Some("abc"));
        assert_eq!(token_from_headers(&HeaderMap::new()), None);
    }
}
