//! Login on behalf: starting a session on behalf of a member (after re-entering
//! one's own password), leaving it, and the "Login as" menu.

use leptos::{prelude::*, server_fn::codec::PostUrl};
use serde::{Deserialize, Serialize};

use crate::{error::AppError, mode::Mode, password::Password, role::Role};

pub mod banner;
#[cfg(feature = "ssr")]
pub mod elevate;
#[cfg(feature = "ssr")]
pub mod reauth;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod targets;
pub mod ui;

/// A reason is required, and this long (characters).
pub const REASON_CHARS: std::ops::RangeInclusive<usize> = 3..=500;

/// What the `/on-behalf/{id}` window shows before asking for the password.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub actor_name: String,
    pub member_id: i64,
    pub member_name: String,
    pub member_email: String,
    pub member_role: Role,
    /// How long the session on behalf may last at most.
    pub max_minutes: i64,
    /// Whether the viewer may choose **Act on behalf** (else only **View only**).
    pub may_act: bool,
}

/// One entry of the "Login as" menu.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: i64,
    pub display_name: String,
    pub role: Role,
    /// The member's groups, by name (one person's accounts per group differ by these).
    pub groups: Vec<String>,
}

/// Checks a reason as typed: trimmed, 3 to 500 characters, no control characters.
pub fn check_reason(reason: &str) -> Result<String, AppError> {
    let reason = reason.trim();
    let chars = reason.chars().count();
    if !REASON_CHARS.contains(&chars) {
        return Err(AppError::validation(
            "reason",
            format!(
                "Give a reason of {} to {} characters (a ticket number will do).",
                REASON_CHARS.start(),
                REASON_CHARS.end()
            ),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(AppError::validation(
            "reason",
            "The reason cannot contain control characters or line breaks.",
        ));
    }
    Ok(reason.to_string())
}

/// Who the viewer is about to log in on behalf of, or why they may not.
#[server(prefix = "/api", endpoint = "on-behalf/preview", input = PostUrl)]
pub async fn preview_on_behalf(member_id: i64) -> Result<Preview, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::preview(&state, &request, member_id).await
}

/// Starts a session on behalf of `member_id` after checking the viewer's own
/// password: view only unless `mode` is `act`. Sets the new session's cookie and
/// answers with the page to open.
#[server(prefix = "/api", endpoint = "on-behalf/start", input = PostUrl)]
pub async fn start_on_behalf(
    member_id: i64,
    password: Password,
    reason: String,
    #[server(default)] mode: Option<Mode>,
) -> Result<String, AppError> {
    use crate::{server::server_context, session::session_cookie};

    let (state, request) = server_context()?;
    let mode = mode.unwrap_or_default();
    let token = service::start(&state, &request, member_id, password, &reason, mode).await?;
    crate::server::set_cookie(&session_cookie(
        &token,
        request.https,
        state.settings.on_behalf_max_duration,
    ));
    Ok("/".to_string())
}

/// Turns a view-only session on behalf into one that acts, after the actor's own
/// password again and a reason: the session's cookie is replaced (the old one is
/// dead from then on).
#[server(prefix = "/api", endpoint = "on-behalf/elevate", input = PostUrl)]
pub async fn elevate_on_behalf(password: Password, reason: String) -> Result<(), AppError> {
    use crate::{server::server_context, session::session_cookie};

    let (state, request) = server_context()?;
    let token = elevate::elevate(&state, &request, password, &reason).await?;
    crate::server::set_cookie(&session_cookie(
        &token,
        request.https,
        state.settings.on_behalf_max_duration,
    ));
    Ok(())
}

/// Leaves the session on behalf: the actor's own session comes back with a new
/// cookie. Answers with the page to open: the member's blade (or the sign-in page
/// when the actor's own session is over too).
#[server(prefix = "/api", endpoint = "on-behalf/leave", input = PostUrl)]
pub async fn leave_on_behalf() -> Result<String, AppError> {
    use crate::{
        server::server_context,
        session::{clearing_cookie, session_cookie},
    };

    let (state, request) = server_context()?;
    let (token, member_id) = service::leave(&state, &request).await?;
    match token {
        Some(token) => {
            crate::server::set_cookie(&session_cookie(
                &token,
                request.https,
                state.settings.session_lifetime,
            ));
            Ok(format!("/admin/members/{member_id}"))
        }
        None => {
            crate::server::set_cookie(&clearing_cookie(request.https));
            Ok("/login".to_string())
        }
    }
}

/// The "Login as" menu: the members with admin access whose proxy login permission
/// names the viewer and whom the rule lets them log in as.
#[server(prefix = "/api", endpoint = "on-behalf/candidates", input = PostUrl)]
pub async fn login_as_candidates() -> Result<Vec<Candidate>, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::candidates(&state, &request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_three_to_five_hundred_characters_on_one_line() {
        assert_eq!(check_reason("  T-42  ").unwrap(), "T-42");
        assert_eq!(check_reason("äöü").unwrap(), "äöü");
        assert!(check_reason(&"x".repeat(500)).is_ok());
        for bad in ["", "  ", "ab", "a\nbc", "abc\u{7}"] {
            assert_eq!(check_reason(bad).unwrap_err().field(), Some("reason"), "{bad:?}");
        }
        assert!(check_reason(&"x".repeat(501)).is_err());
    }
}
