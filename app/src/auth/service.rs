//! What signing in and out do (server only).

use serde_json::json;

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{record, AuditTx, NewEvent},
    clock::{format_utc, SECOND},
    context::{CurrentSession, OnBehalfView, RequestContext, Viewer},
    db::with_db,
    db::BeginWrite,
    email::require_email,
    error::{AppError, Refusal},
    guard::refuse,
    one_click::store::revoke_member_links,
    password::{check_entered, validate_new_password, Password},
    session::{
        end_member_sessions, end_on_behalf, end_session, start_own_session, token::Token, EndOnBehalf,
        EndReason,
    },
    state::AppState,
    throttle,
};

/// Checks the credentials and starts a new session. The browser's previous
/// session, if any, ends (no session fixation: the token always changes). Attempts
/// are throttled per client address and per account (see `throttle`).
#[tracing::instrument(skip_all)]
pub async fn sign_in(
    state: &AppState,
    request: &RequestContext,
    email: &str,
    password: Password,
) -> Result<Token, AppError> {
    let email = require_email(email)?;
    check_entered(&password, "password", "Enter your password.")?;
    throttle::check_address(state, request.ip.as_deref())?;
    let checked = throttle::check_password(state, email, password).await?;
    let known_id = checked.credentials.as_ref().map(|c| c.id);
    let Some(credentials) = checked.credentials.filter(|_| checked.verified) else {
        tracing::info!(known = known_id.is_some(), "sign-in refused: bad credentials");
        // What was typed into an unknown email is not kept: people paste passwords there.
        let failed = match known_id {
            Some(id) => NewEvent::new(AuditAction::SignInFailed, request)
                .subject(id)
                .details(json!({ "reason": "wrong_password" })),
            None => NewEvent::new(AuditAction::SignInFailed, request)
                .details(json!({ "reason": "unknown_email" })),
        };
        record(&state.db, state.clock.now(), failed).await?;
        if let Some(lock) = checked.locks_for {
            let mut locked = NewEvent::new(AuditAction::SignInLocked, request).details(json!({
                "failures": checked.failures,
                "locked_for_seconds": lock / SECOND,
            }));
            locked.subject_id = known_id;
            record(&state.db, state.clock.now(), locked).await?;
        }
        return Err(AppError::InvalidCredentials);
    };
    if !credentials.login_enabled {
        tracing::info!(
            member = credentials.id,
            "sign-in refused: not authorized to log in"
        );
        let event = NewEvent::new(AuditAction::SignInRefused, request)
            .subject(credentials.id)
            .details(json!({ "reason": "not_authorized_to_log_in" }));
        record(&state.db, state.clock.now(), event).await?;
        return Err(AppError::Refused(Refusal::LoginDisabled));
    }
    // A sign-in from a browser in a session on behalf ends it and the actor's own.
    if let Some(current) = &request.session {
        if let Some(on_behalf) = &current.on_behalf {
            let end = EndOnBehalf {
                parent_end: Some(EndReason::Replaced),
                ..EndOnBehalf::asked(current, on_behalf, EndReason::Replaced, request)
            };
            end_on_behalf(state, end).await?;
        }
    }
    let replacing = request
        .session
        .as_ref()
        .filter(|s| s.on_behalf.is_none())
        .map(|s| (s.id, s.member.id));
    let token = start_own_session(state, credentials.id, replacing, request).await?;
    tracing::info!(member = credentials.id, "signed in");
    Ok(token)
}

/// Changes the signed-in member's own password. The current one is checked under the
/// sign-in throttle (a stolen session cannot guess it faster than a sign-in could);
/// in the change's transaction the member's outstanding one-click links, and those
/// they created, are revoked, and every other session of theirs ends. Never on behalf.
pub async fn change_password(
    state: &AppState,
    request: &RequestContext,
    current: Password,
    new: Password,
) -> Result<(), AppError> {
    const REFUSED: AuditAction = AuditAction::PasswordChangeRefused;
    let session = request.require_session()?;
    let member = session.member.id;
    if session.on_behalf.is_some() {
        let object = (ObjectKind::Member, member.to_string());
        return Err(refuse(
            state,
            request,
            session,
            REFUSED,
            object,
            Refusal::OnBehalfProtected,
        )
        .await);
    }
    check_entered(&current, "current_password", "Enter your current password.")?;
    validate_new_password(&new).map_err(|error| match error {
        AppError::Validation { message, .. } => AppError::validation("new_password", message),
        other => other,
    })?;
    throttle::check_address(state, request.ip.as_deref())?;
    let checked = throttle::check_password(state, &session.member.email, current).await?;
    if !checked.verified || checked.credentials.as_ref().map(|c| c.id) != Some(member) {
        let event = NewEvent::new(AuditAction::PasswordChangeFailed, request)
            .by(session)
            .subject(member)
            .details(json!({ "reason": "wrong_password" }));
        record(&state.db, state.clock.now(), event).await?;
        return Err(AppError::validation(
            "current_password",
            "Your current password is incorrect.",
        ));
    }
    let hash = {
        let _place = state.hasher.reserve()?;
        state.hasher.hash(new).await?
    };
    let now = state.clock.now();
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query("UPDATE members SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(&hash)
            .bind(now)
            .bind(member)
            .execute(&mut *tx)
            .await?;
        revoke_member_links(&mut tx, now, member, "password_changed", Some(session), request).await?;
        // Whoever else holds a session of the member (on another device, on their
        // behalf, or the member's own sessions on behalf of others) is signed out:
        // a new password is how a member takes their account back.
        let ended = end_member_sessions(&mut tx, now, member, [session.id, session.id], "password_changed", request).await?;
        let event = NewEvent::new(AuditAction::PasswordChanged, request)
            .by(session)
            .subject(member)
            .details(json!({ "sessions_ended": ended }));
        tx.append_audit(now, event).await?;
        tx.commit().await?;
    });
    tracing::info!(member, "password changed");
    Ok(())
}

/// Ends the current session. On behalf, it ends the session on behalf and the
/// actor's own session too.
pub async fn sign_out(state: &AppState, request: &RequestContext) -> Result<(), AppError> {
    let current = request.require_session()?;
    if let Some(on_behalf) = &current.on_behalf {
        let actor = on_behalf.actor.id;
        let end = EndOnBehalf {
            parent_end: Some(EndReason::SignedOut),
            parent_event: Some(
                NewEvent::new(AuditAction::SignOut, request)
                    .actor(actor)
                    .subject(actor),
            ),
            ..EndOnBehalf::asked(current, on_behalf, EndReason::SignedOut, request)
        };
        end_on_behalf(state, end).await?;
        tracing::info!(member = actor, "signed out while on behalf");
        return Ok(());
    }
    let member = current.member.id;
    let event = NewEvent::new(AuditAction::SignOut, request)
        .actor(member)
        .subject(member);
    end_session(state, current.id, EndReason::SignedOut, event).await?;
    tracing::info!(member, "signed out");
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
            mode: on_behalf.mode,
            may_act: on_behalf.may_act,
            act_lost: on_behalf.act_lost,
        }),
        someone_in: Vec::new(),
    }
}
