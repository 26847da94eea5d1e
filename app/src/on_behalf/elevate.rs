//! Elevating a view-only session on behalf to act (server only): the actor's own
//! password again (the same check and lockout as a start), a reason, a new token.

use serde_json::json;

use super::{
    check_reason,
    reauth::reauthenticate,
    service::{refuse, wrong_password},
};
use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{AuditTx, NewEvent},
    context::RequestContext,
    db::{with_db, BeginWrite},
    error::AppError,
    mode::Mode,
    password::{check_entered, Password},
    session::token::Token,
    state::AppState,
};

/// Turns the request's view-only session on behalf into one that acts. In order: the
/// reason and the password's length, whether the actor may act (the rule's grant and
/// `--act-min-role`, as at a start), the lockout (the attempt is counted first), the
/// password; then in one transaction the session's token is replaced (the old one is
/// dead from then on), its mode becomes `act` and the elevation is recorded with its
/// reason. Of parallel elevations of one session, one wins; the others change nothing.
#[tracing::instrument(skip_all)]
pub async fn elevate(
    state: &AppState,
    request: &RequestContext,
    password: Password,
    reason: &str,
) -> Result<Token, AppError> {
    let session = request.require_session()?;
    let Some(on_behalf) = &session.on_behalf else {
        return Err(AppError::BadRequest(
            "You are not acting on anyone's behalf: there is nothing to elevate.".to_string(),
        ));
    };
    let reason = check_reason(reason)?;
    check_entered(&password, "password", "Enter your own password.")?;
    let member_id = session.member.id;
    if on_behalf.mode == Mode::Act {
        return Err(already_acting());
    }
    if !on_behalf.may_act {
        let error = AppError::Refused(super::service::act_refusal(on_behalf.grant));
        return Err(refuse(state, request, session, member_id, error).await);
    }
    let actor = session.actor();
    let verified = match reauthenticate(state, actor.id, &actor.email, password).await {
        Ok(verified) => verified,
        Err(error @ (AppError::LockedOut { .. } | AppError::Conflict(_))) => {
            return Err(refuse(state, request, session, member_id, error).await)
        }
        Err(error) => return Err(error),
    };
    if !verified {
        return Err(wrong_password(state, request, session, member_id).await);
    }
    let token = Token::generate();
    let now = state.clock.now();
    let event = NewEvent::new(AuditAction::OnBehalfElevated, request)
        .by(session)
        .subject(member_id)
        .object(ObjectKind::Session, session.id)
        .details(json!({ "reason": reason, "mode": Mode::Act.as_str() }));
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        // Only a live, still view-only session is elevated, once.
        let elevated = sqlx::query(
            "UPDATE sessions SET token_hash = $2, mode = 'act' \
             WHERE id = $1 AND ended_at IS NULL AND token_hash IS NOT NULL AND mode = 'view'",
        )
        .bind(session.id)
        .bind(token.hash())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if elevated != 1 {
            tx.rollback().await?;
            return Err(already_acting());
        }
        tx.append_audit(now, event).await?;
        tx.commit().await?;
    });
    tracing::info!(
        actor = actor.id,
        member = member_id,
        "session on behalf elevated to act"
    );
    Ok(token)
}

fn already_acting() -> AppError {
    AppError::Conflict(
        "This session on behalf is already acting (or has just been elevated by another request); nothing was changed."
            .into(),
    )
}
