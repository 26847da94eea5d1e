//! Expiry (server only): requests unanswered for a day become `expired`, and grants
//! past their end are recorded as expired, each once (a conditional UPDATE … RETURNING:
//! however many sweeps run at once, on however many instances, one records it). The
//! server sweeps every half minute, and every list and answer sweeps first, so what a
//! member reads is what holds. A grant stops letting anyone in at its end whatever the
//! sweep: the rule reads its expiry.

use serde_json::json;

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{AuditTx, NewEvent},
    context::RequestContext,
    db::{with_db, BeginWrite},
    error::AppError,
    session::recheck::end_no_longer_allowed,
    state::AppState,
};

/// Records what has expired by now: (requests, grants).
pub async fn expire_due(state: &AppState) -> Result<(usize, usize), AppError> {
    let now = state.clock.now();
    let system = RequestContext::default();
    // Most of the time nothing is due: found without taking the write lock.
    let due: Option<(i64,)> = with_db!(&state.db, pool => {
        sqlx::query_as(
            "SELECT id FROM access_requests WHERE status = 'pending' AND expires_at <= $1 \
             UNION ALL SELECT id FROM member_grants WHERE revoked_at IS NULL AND NOT expiry_recorded \
             AND expires_at <= $1 LIMIT 1",
        )
        .bind(now)
        .fetch_optional(pool)
        .await?
    });
    if due.is_none() {
        return Ok((0, 0));
    }
    let (requests, grants) = with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let requests: Vec<(i64, i64, i64)> = sqlx::query_as(
            "UPDATE access_requests SET status = 'expired', answered_at = $1 \
             WHERE status = 'pending' AND expires_at <= $1 RETURNING id, member_id, requester_id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let grants: Vec<(i64, i64, Option<i64>)> = sqlx::query_as(
            "UPDATE member_grants SET expiry_recorded = TRUE \
             WHERE revoked_at IS NULL AND NOT expiry_recorded AND expires_at <= $1 \
             RETURNING id, member_id, grantee_id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        if requests.is_empty() && grants.is_empty() {
            tx.rollback().await?;
            return Ok((0, 0));
        }
        for (id, member, requester) in &requests {
            let event = NewEvent::new(AuditAction::AccessRequestExpired, &system)
                .actor(*requester)
                .subject(*member)
                .object(ObjectKind::AccessRequest, *id);
            tx.append_audit(now, event).await?;
        }
        for (id, member, grantee) in &grants {
            let event = NewEvent::new(AuditAction::GrantExpired, &system)
                .actor(*member)
                .subject(*member)
                .object(ObjectKind::MemberGrant, *id)
                .details(json!({ "grantee_id": grantee }));
            tx.append_audit(now, event).await?;
        }
        tx.commit().await?;
        (requests, grants)
    });
    // The sessions the expired grants allowed end now (each member once).
    let mut members: Vec<i64> = grants.iter().map(|(_, member, _)| *member).collect();
    members.sort_unstable();
    members.dedup();
    for member in members {
        end_no_longer_allowed(state, member, None, &system).await;
    }
    Ok((requests.len(), grants.len()))
}
