//! The one-click links' shared write step: revoking a member's links inside another
//! area's transaction (a change to the member's login, role, admin access or password).

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{AuditTx, NewEvent},
    clock::Millis,
    context::{CurrentSession, RequestContext},
    db::tx::{with_tx, Tx},
    error::AppError,
};

/// Revokes, inside `tx`, every outstanding link for `member` and every one they
/// created, recording each as `one_click_revoked` with `reason` (what changed about
/// the member) and the revoking `session`. For a change to a member in that change's
/// own transaction.
pub async fn revoke_member_links<'a>(
    tx: impl Into<Tx<'a>>,
    now: Millis,
    member: i64,
    reason: &str,
    session: Option<&CurrentSession>,
    request: &RequestContext,
) -> Result<(), AppError> {
    let mut tx = tx.into();
    let revoked: Vec<(i64, i64)> = with_tx!(&mut tx, tx => {
        sqlx::query_as(
            "UPDATE one_click_links SET revoked_at = $1, revoked_by = $2, revoke_reason = $3 \
             WHERE (member_id = $4 OR created_by = $4) AND used_at IS NULL AND revoked_at IS NULL \
             AND expires_at > $1 RETURNING id, member_id",
        )
        .bind(now)
        .bind(session.map(|s| s.actor().id))
        .bind(reason)
        .bind(member)
        .fetch_all(&mut ***tx)
        .await?
    });
    for (link, link_member) in revoked {
        let mut event = NewEvent::new(AuditAction::OneClickRevoked, request)
            .subject(link_member)
            .object(ObjectKind::OneClickLink, link)
            .details(serde_json::json!({ "reason": reason }));
        if let Some(session) = session {
            event = event.by(session);
        }
        tx.append_audit(now, event).await?;
    }
    Ok(())
}
