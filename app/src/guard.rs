//! The services' checks of who is asking (lower layer, server only): a session, admin
//! access, editor or auditor rank. A refusal of a change is recorded in the audit
//! trail; the predicates themselves are the pure ones of `policy`.

use serde_json::json;

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{record_folded, NewEvent},
    context::{CurrentSession, RequestContext},
    error::{AppError, Refusal},
    policy,
    state::AppState,
};

/// A signed-in session whose member may use the management screens (reads).
pub fn require_admin(request: &RequestContext) -> Result<&CurrentSession, AppError> {
    let session = request.require_session()?;
    policy::may_use_admin(session.member.admin_access).map_err(AppError::Refused)?;
    Ok(session)
}

/// Editors and super users with admin access (acting as themselves or, on behalf, as
/// a member who is one) may read the audit trail.
pub fn require_auditor(request: &RequestContext) -> Result<&CurrentSession, AppError> {
    let session = request.require_session()?;
    let member = &session.member;
    policy::may_audit(member.role, member.admin_access).map_err(AppError::Refused)?;
    // The request pipeline refuses the audit trail on behalf before any handler runs;
    // this says so again where the records are read.
    if session.on_behalf.is_some() {
        return Err(AppError::Refused(Refusal::OnBehalfProtected));
    }
    Ok(session)
}

/// A signed-in editor or super user with admin access. Anyone else signed in is
/// refused, and the refusal is recorded as `action` (the change itself writes nothing).
pub async fn require_editor<'a>(
    state: &AppState,
    request: &'a RequestContext,
    action: AuditAction,
    object: (ObjectKind, String),
) -> Result<&'a CurrentSession, AppError> {
    require(state, request, action, object, |session| {
        policy::may_manage(session.member.role, session.member.admin_access)
    })
    .await
}

/// A signed-in session that `check` (a pure predicate of `policy`, or several) lets
/// through. Anyone else signed in is refused, and the refusal is recorded as `action`
/// (the change itself writes nothing).
pub async fn require<'a>(
    state: &AppState,
    request: &'a RequestContext,
    action: AuditAction,
    object: (ObjectKind, String),
    check: impl FnOnce(&CurrentSession) -> Result<(), Refusal>,
) -> Result<&'a CurrentSession, AppError> {
    let session = request.require_session()?;
    if let Err(refusal) = check(session) {
        return Err(refuse(state, request, session, action, object, refusal).await);
    }
    Ok(session)
}

/// Records a refused change (`action`, with the refusal's code) and returns the error
/// to answer with. Call it after the change's transaction has rolled back.
pub async fn refuse(
    state: &AppState,
    request: &RequestContext,
    session: &CurrentSession,
    action: AuditAction,
    (kind, id): (ObjectKind, String),
    refusal: Refusal,
) -> AppError {
    tracing::info!(
        actor = session.actor().id,
        action = action.as_str(),
        reason = refusal.code(),
        "change refused"
    );
    let event = NewEvent::new(action, request)
        .by(session)
        .object(kind, id)
        .details(json!({ "reason": refusal.code() }));
    // A refusal repeated within a minute is counted, not written again.
    match record_folded(&state.db, &state.refusals, state.clock.now(), event).await {
        Ok(_) => AppError::Refused(refusal),
        Err(error) => error,
    }
}

/// A change's outcome, with its refusal (if it was one) recorded: call it after the
/// change's transaction has rolled back.
pub async fn record_refusal<T>(
    state: &AppState,
    request: &RequestContext,
    session: &CurrentSession,
    action: AuditAction,
    object: (ObjectKind, String),
    outcome: Result<T, AppError>,
) -> Result<T, AppError> {
    match outcome {
        Err(AppError::Refused(refusal)) => {
            Err(refuse(state, request, session, action, object, refusal).await)
        }
        other => other,
    }
}
