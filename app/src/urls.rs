//! Small URL helpers (lower layer): query values, the sign-in page's `next`, and
//! numeric IDs in paths and queries.

use crate::error::AppError;

/// Percent-encodes a query-string value (slashes kept, for readable `next` paths).
pub fn encode_query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Where to go after signing in: only a path on this site, never another origin
/// (`//evil.example`, `https://…`, `/\evil`), and never back to the sign-in page.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/login")
                && path.len() <= 2048
                && !path
                    .chars()
                    .any(|c| c == '\\' || c.is_control() || c.is_whitespace()) =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

/// The sign-in page's address that comes back to `path` afterwards.
pub fn login_url(path: &str) -> String {
    let next = safe_next(Some(path));
    if next == "/" {
        "/login".to_string()
    } else {
        format!("/login?next={}", encode_query_value(&next))
    }
}

/// A parameter as it came, trimmed; `None` when it is missing or empty.
pub fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// An optional ID parameter: missing or empty is `None`; anything but a positive whole
/// number is a validation error of `field`, saying `message`.
pub fn optional_id(field: &str, value: &Option<String>, message: &str) -> Result<Option<i64>, AppError> {
    match given(value) {
        None => Ok(None),
        Some(text) => parse_id(&text)
            .map(Some)
            .ok_or_else(|| AppError::validation(field, message)),
    }
}

/// A numeric ID from a path segment or query value: a positive whole number, or None.
pub fn parse_id(text: &str) -> Option<i64> {
    text.trim().parse::<i64>().ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/admin/members?q=ann")), "/admin/members?q=ann");
        assert_eq!(safe_next(Some("/")), "/");
        for hostile in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "evil",
            "",
            "/login",
            "/login?next=/x",
            "/a\nb",
            "/a b",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(3000)))), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn the_login_url_carries_the_page_to_come_back_to() {
        assert_eq!(login_url("/"), "/login");
        assert_eq!(
            login_url("/admin/members?q=a&b"),
            "/login?next=/admin/members%3Fq%3Da%26b"
        );
        assert_eq!(login_url("//evil"), "/login");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode_query_value("/a?b=c&d"), "/a%3Fb%3Dc%26d");
        assert_eq!(encode_query_value("é %_'"), "%C3%A9%20%25_%27");
    }

    #[test]
    fn optional_ids_are_missing_or_valid() {
        let some = |v: &str| Some(v.to_string());
        assert_eq!(optional_id("actor", &None, "m").unwrap(), None);
        assert_eq!(optional_id("actor", &some("  "), "m").unwrap(), None);
        assert_eq!(optional_id("actor", &some(" 12 "), "m").unwrap(), Some(12));
        let error = optional_id("actor", &some("x"), "Enter an ID.").unwrap_err();
        assert_eq!(
            (error.field(), error.to_string().as_str()),
            (Some("actor"), "Enter an ID.")
        );
    }

    #[test]
    fn ids_are_positive_whole_numbers() {
        assert_eq!(parse_id("42"), Some(42));
        assert_eq!(parse_id(" 7 "), Some(7));
        for bad in ["", "0", "-3", "1.5", "abc", "99999999999999999999"] {
            assert_eq!(parse_id(bad), None, "{bad:?}");
        }
    }
}
