//! What signing in and out do (server only).

use serde_json::json;

use crate::{
    audit::service::{self as audit, NewEvent},
    auth::{
        session::{self, CurrentSession, EndReason, RequestContext},
        token::Token,
        Password, Viewer,
    },
    clock::format_utc,
    error::AppError,
    members::service::{find_credentials, require_email, MAX_PASSWORD_BYTES},
    on_behalf::OnBehalfView,
    state::AppState,
};

/// Checks the credentials and starts a new session. The browser's previous
/// session, if any, ends (no session fixation: the token always changes).
#[tracing::instrument(skip_all)]
pub async fn sign_in(
    state: &AppState,
    request: &RequestContext,
    email: &str,
    password: Password,
) -> Result<Token, AppError> {
    let email = require_email(email)?;
    if password.expose().is_empty() {
        return Err(AppError::validation("password", "Enter your password."));
    }
    if password.expose().len() > MAX_PASSWORD_BYTES {
        return Err(AppError::validation(
            "password",
            format!("A password has at most {MAX_PASSWORD_BYTES} bytes."),
        ));
    }
    let credentials = find_credentials(&state.db, email).await?;
    let known_id = credentials.as_ref().map(|c| c.id);
    let stored = credentials.as_ref().map(|c| c.password_hash.clone());
    let verified = state.hasher.verify(stored, password).await?;
    let Some(credentials) = credentials.filter(|_| verified) else {
        tracing::info!(known = known_id.is_some(), "sign-in refused: bad credentials");
        // What was typed into an unknown email is not kept: people paste passwords there.
        let event = match known_id {
            Some(id) => NewEvent::new("sign_in_failed", request)
                .subject(id)
                .details(json!({ "reason": "wrong_password" })),
            None => NewEvent::new("sign_in_failed", request).details(json!({ "reason": "unknown_email" })),
        };
        audit::record(&state.db, state.clock.now(), event).await?;
        return Err(AppError::InvalidCredentials);
    };
    if !credentials.login_enabled {
        tracing::info!(
            member = credentials.id,
            "sign-in refused: not authorized to log in"
        );
        let event = NewEvent::new("sign_in_refused", request)
            .subject(credentials.id)
            .details(json!({ "reason": "not_authorized_to_log_in" }));
        audit::record(&state.db, state.clock.now(), event).await?;
        return Err(AppError::forbidden(
            "This account is not authorized to sign in. Ask an administrator to enable it.",
        ));
    }
    // A sign-in from a browser in a session on behalf ends it and the actor's own.
    if let Some(current) = &request.session {
        if let Some(on_behalf) = &current.on_behalf {
            let end = session::EndOnBehalf {
                parent_end: Some(EndReason::Replaced),
                ..session::EndOnBehalf::asked(current, on_behalf, EndReason::Replaced, request)
            };
            session::end_on_behalf(state, end).await?;
        }
    }
    let replacing = request
        .session
        .as_ref()
        .filter(|s| s.on_behalf.is_none())
        .map(|s| s.id);
    let token = session::start_own_session(state, credentials.id, replacing, request).await?;
    tracing::info!(member = credentials.id, "signed in");
    Ok(token)
}

/// Ends the current session.
pub async fn sign_out(state: &AppState, request: &RequestContext) -> Result<(), AppError> {
    let current = request.require_session()?;
    if current.on_behalf.is_some() {
        crate::on_behalf::service::sign_out_on_behalf(state, request).await?;
        tracing::info!(member = current.actor().id, "signed out while on behalf");
        return Ok(());
    }
    let member = current.member.id;
    let event = NewEvent::new("sign_out", request).actor(member).subject(member);
    session::end_session(state, current.id, EndReason::SignedOut, Some(event)).await?;
    tracing::info!(member = current.member.id, "signed out");
    Ok(())
}

pub fn viewer_of(session: &CurrentSession, now: crate::clock::Millis) -> Viewer {
    let member = &session.member;
    Viewer {
        id: member.id,
        email: member.email.clone(),
        display_name: member.display_name.clone(),
        role: member.role,
        admin_access: member.admin_access,
        member_since: format_utc(member.created_at),
        last_sign_in: member.last_sign_in_at.map(format_utc),
        on_behalf: session.on_behalf.as_ref().map(|on_behalf| OnBehalfView {
            session_id: session.id,
            actor_id: on_behalf.actor.id,
            actor_name: on_behalf.actor.display_name.clone(),
            ends_at: session.absolute_expires_at.min(session.idle_expires_at),
            server_now: now,
        }),
    }
}
