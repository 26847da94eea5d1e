//! Signing in and out, and who the current visitor is.

use leptos::{prelude::*, server_fn::codec::PostUrl};
use serde::{Deserialize, Serialize};

use crate::{error::AppError, members::Role};

#[cfg(feature = "ssr")]
pub mod password;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod session;
#[cfg(feature = "ssr")]
pub mod token;
pub mod ui;

/// A password on its way to the server. Its `Debug` never prints it, so neither
/// a log line nor a panic message can leak one.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Password(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The signed-in member, as the pages see them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Viewer {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub admin_access: bool,
    pub member_since: String,
    pub last_sign_in: Option<String>,
    /// Set while this is a session on behalf of the member above.
    pub on_behalf: Option<crate::on_behalf::OnBehalfView>,
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
        format!("/login?next={}", crate::ui::encode_query_value(&next))
    }
}

/// Signs in with email and password. Sets a new session cookie and answers with
/// the validated path to continue to.
#[server(prefix = "/api", endpoint = "login", input = PostUrl)]
pub async fn login(email: String, password: Password, next: Option<String>) -> Result<String, AppError> {
    use crate::{auth::session::session_cookie, server::server_context};

    let (state, request) = server_context()?;
    let token = service::sign_in(&state, &request, &email, password).await?;
    crate::server::set_cookie(&session_cookie(
        &token,
        request.https,
        state.settings.session_lifetime,
    ));
    Ok(safe_next(next.as_deref()))
}

/// Signs out: ends the current session and clears the cookie.
#[server(prefix = "/api", endpoint = "logout", input = PostUrl)]
pub async fn logout() -> Result<(), AppError> {
    use crate::{auth::session::clearing_cookie, server::server_context};

    let (state, request) = server_context()?;
    crate::server::set_cookie(&clearing_cookie(request.https));
    service::sign_out(&state, &request).await
}

/// Who is signed in, if anyone. Reveals nothing without a session.
#[server(prefix = "/api", endpoint = "whoami", input = PostUrl)]
pub async fn whoami() -> Result<Option<Viewer>, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    let now = state.clock.now();
    Ok(request
        .session
        .as_ref()
        .map(|session| service::viewer_of(session, now)))
}

/// The one-time notice for this page, if the server has one (why a session on
/// behalf ended).
#[server(prefix = "/api", endpoint = "notice", input = PostUrl)]
pub async fn notice() -> Result<Option<String>, AppError> {
    use crate::server::server_context;

    let (_, request) = server_context()?;
    Ok(request.notice.map(|notice| notice.message().to_string()))
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
}
