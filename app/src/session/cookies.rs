//! The session cookie and the one-time notice cookie.

use axum::http::{header, HeaderMap};
use cookie::{time::Duration as CookieDuration, Cookie, SameSite};

use crate::{
    clock::{Millis, SECOND},
    context::Notice,
    session::token::Token,
};

pub const COOKIE_NAME: &str = "behalf_session";
/// The name over https: the `__Host-` prefix makes the browser accept it only with
/// `Secure`, `Path=/` and no `Domain`, so a sibling subdomain cannot plant one.
pub const SECURE_COOKIE_NAME: &str = "__Host-behalf_session";

/// The session cookie's name: `__Host-behalf_session` over https.
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    }
}

pub fn session_cookie(token: &Token, https: bool, lifetime: Millis) -> String {
    Cookie::build((cookie_name(https), token.expose().to_string()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https)
        .path("/")
        .max_age(CookieDuration::seconds(lifetime / SECOND))
        .build()
        .to_string()
}

pub fn clearing_cookie(https: bool) -> String {
    clearing_cookie_at(https, None, "/")
}

/// The `Set-Cookie` value that clears the session cookie set with `domain` (none:
/// host-only) and `path`.
fn clearing_cookie_at(https: bool, domain: Option<&str>, path: &str) -> String {
    let mut cookie = Cookie::build((cookie_name(https), ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https)
        .path(path.to_string())
        .max_age(CookieDuration::ZERO);
    if let Some(domain) = domain {
        cookie = cookie.domain(domain.to_string());
    }
    cookie.build().to_string()
}

/// What the `Cookie` headers say about the session.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionCookie {
    Absent,
    One(String),
    /// The name came twice (one of them planted, say, by a sibling subdomain with
    /// `Domain=`): neither is used, and both are cleared.
    Duplicated,
}

/// The session token from the `Cookie` headers, under the name used over `https` or
/// plain http.
pub fn session_from_headers(headers: &HeaderMap, https: bool) -> SessionCookie {
    let name = cookie_name(https);
    let mut values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|cookie| cookie.name() == name);
    match (values.next(), values.next()) {
        (None, _) => SessionCookie::Absent,
        (Some(one), None) => SessionCookie::One(one.value().to_string()),
        (Some(_), Some(_)) => SessionCookie::Duplicated,
    }
}

/// Paths a planted cookie may have been given beside `/` (the areas of the app).
const PLANTED_PATHS: [&str; 3] = ["/", "/api", "/admin"];

/// The `Set-Cookie` values that clear a duplicated session cookie. Over https the name
/// is `__Host-`, which browsers only accept host-only with `Path=/`: that one cookie. On
/// plain http a planted one may carry `Domain=` (this host or a parent domain) or a
/// deeper path, so every such combination is cleared too.
pub fn clearing_duplicates(https: bool, host: Option<&str>) -> Vec<String> {
    if https {
        return vec![clearing_cookie(true)];
    }
    let name = host
        .map(|host| host.rsplit_once(':').map_or(host, |(name, _)| name))
        .filter(|name| {
            !name.is_empty() && name.parse::<std::net::IpAddr>().is_err() && !name.starts_with('[')
        });
    // The host and each parent domain that still has a dot (never a bare top level).
    let mut domains: Vec<&str> = Vec::new();
    if let Some(name) = name {
        let mut rest = name;
        while rest.contains('.') {
            domains.push(rest);
            rest = rest.split_once('.').map_or("", |(_, parent)| parent);
        }
    }
    let mut cookies = Vec::new();
    for path in PLANTED_PATHS {
        cookies.push(clearing_cookie_at(false, None, path));
        for domain in &domains {
            cookies.push(clearing_cookie_at(false, Some(domain), path));
        }
    }
    cookies
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
        assert_eq!(
            session_from_headers(&headers, false),
            SessionCookie::One("abc".into())
        );
        // Over https only the __Host- name counts.
        assert_eq!(session_from_headers(&headers, true), SessionCookie::Absent);
        assert_eq!(
            session_from_headers(&HeaderMap::new(), false),
            SessionCookie::Absent
        );
    }

    #[test]
    fn a_name_sent_twice_is_used_by_neither() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("behalf_session=mine; behalf_session=planted"),
        );
        assert_eq!(session_from_headers(&headers, false), SessionCookie::Duplicated);
        let mut split = HeaderMap::new();
        split.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-behalf_session=a"),
        );
        split.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-behalf_session=b"),
        );
        assert_eq!(session_from_headers(&split, true), SessionCookie::Duplicated);
        let cleared = clearing_duplicates(false, Some("a.app.example:3000"));
        assert!(cleared.iter().all(|c| c.contains("Max-Age=0")));
        for wanted in [
            "Domain=a.app.example",
            "Domain=app.example",
            "Path=/api",
            "Path=/admin",
        ] {
            assert!(
                cleared.iter().any(|c| c.contains(wanted)),
                "{wanted}: {cleared:?}"
            );
        }
        assert!(
            !cleared.iter().any(|c| c.contains("Domain=example;")),
            "never a top level: {cleared:?}"
        );
        // 3 paths × (host-only + 2 domains)
        assert_eq!(cleared.len(), 9);
        assert_eq!(clearing_duplicates(false, Some("127.0.0.1:3000")).len(), 3);
        assert_eq!(
            clearing_duplicates(true, Some("app.example")),
            vec![clearing_cookie(true)]
        );
    }

    #[test]
    fn over_https_the_cookie_is_secure_and_host_prefixed() {
        let token = Token::generate();
        let cookie = session_cookie(&token, true, HOUR);
        assert!(cookie.starts_with("__Host-behalf_session="), "{cookie}");
        assert!(cookie.contains("Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"));
        assert!(clearing_cookie(true).starts_with("__Host-behalf_session=;"));
    }
}
