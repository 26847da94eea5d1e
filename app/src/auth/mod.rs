//! Signing in and out, and who the current visitor is.

use leptos::{prelude::*, server_fn::codec::PostUrl};

use crate::{context::Viewer, error::AppError, password::Password};

#[cfg(feature = "ssr")]
pub mod service;
pub mod ui;

/// Signs in with email and password. Sets a new session cookie and answers with
/// the validated path to continue to.
#[server(prefix = "/api", endpoint = "login", input = PostUrl)]
pub async fn login(email: String, password: Password, next: Option<String>) -> Result<String, AppError> {
    use crate::{server::server_context, session::session_cookie};

    let (state, request) = server_context()?;
    let token = service::sign_in(&state, &request, &email, password).await?;
    crate::server::set_cookie(&session_cookie(
        &token,
        request.https,
        state.settings.session_lifetime,
    ));
    Ok(crate::urls::safe_next(next.as_deref()))
}

/// Signs out: ends the current session and clears the cookie.
#[server(prefix = "/api", endpoint = "logout", input = PostUrl)]
pub async fn logout() -> Result<(), AppError> {
    use crate::{server::server_context, session::clearing_cookie};

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
    let Some(session) = request.session.as_ref() else {
        return Ok(None);
    };
    let mut viewer = service::viewer_of(session, now);
    // The member's own use only: who is in their account right now (asked only when
    // the request's session lookup found someone).
    if session.someone_in && matches!(session.account_use(), crate::context::AccountUse::Own) {
        viewer.someone_in =
            crate::session::presence::live_on_behalf_of(&state.db, session.member.id, now).await?;
    }
    Ok(Some(viewer))
}

/// The one-time notice for this page, if the server has one (why a session on
/// behalf ended).
#[server(prefix = "/api", endpoint = "notice", input = PostUrl)]
pub async fn notice() -> Result<Option<String>, AppError> {
    use crate::server::server_context;

    let (_, request) = server_context()?;
    Ok(request.notice.map(|notice| notice.message().to_string()))
}
