//! Oversight (server only): the service decides who may see and end which sessions;
//! the server functions and API handlers only pass the request on.

use serde_json::json;

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{AuditTx, NewEvent},
    clock::{format_utc, Millis, SECOND},
    context::{CurrentSession, RequestContext},
    db::with_db,
    db::{stored_role, BeginWrite},
    error::{AppError, Refusal},
    guard::{refuse, require},
    notice::write_ended,
    oversight::{Impersonation, ImpersonationList, MemberSession},
    policy,
    session::{
        device_of,
        store::{end_row, session_ended},
        EndReason,
    },
    state::AppState,
};

/// The most rows a list shows.
const LIMIT: i64 = 200;

/// Whether the session may oversee: an editor or super user with admin access, in
/// their own session.
fn may_oversee(session: &CurrentSession) -> Result<(), Refusal> {
    let member = &session.member;
    policy::may_oversee(member.role, member.admin_access, session.on_behalf.is_some())
}

/// The overseer asking: signed in, and `may_oversee`. A refusal is recorded as `action`.
async fn overseer<'a>(
    state: &AppState,
    request: &'a RequestContext,
    action: AuditAction,
    object: (ObjectKind, String),
) -> Result<&'a CurrentSession, AppError> {
    require(state, request, action, object, may_oversee).await
}

/// A session on behalf, with its actor and member.
#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    actor_id: i64,
    actor_name: String,
    actor_role: String,
    member_id: i64,
    member_name: String,
    reason: Option<String>,
    created_at: i64,
    expires_at: i64,
    ended_at: Option<i64>,
    end_reason: Option<String>,
}

const SELECT: &str =
    "SELECT s.id, s.actor_id, a.display_name AS actor_name, a.role AS actor_role, s.member_id, \
     m.display_name AS member_name, s.reason, s.created_at, \
     CASE WHEN s.idle_expires_at < s.absolute_expires_at THEN s.idle_expires_at \
     ELSE s.absolute_expires_at END AS expires_at, s.ended_at, s.end_reason \
     FROM sessions s JOIN members a ON a.id = s.actor_id JOIN members m ON m.id = s.member_id";

/// The live sessions on behalf, newest first, or (`history`) the latest that ended.
pub async fn list(
    state: &AppState,
    request: &RequestContext,
    history: bool,
) -> Result<ImpersonationList, AppError> {
    let session = overseer(
        state,
        request,
        AuditAction::ImpersonationsRefused,
        (ObjectKind::Sessions, "on_behalf".into()),
    )
    .await?;
    let viewer = session.member.role;
    let now = state.clock.now();
    let live = "s.actor_id IS NOT NULL AND s.ended_at IS NULL AND s.idle_expires_at > $1 AND s.absolute_expires_at > $1";
    let query = if history {
        format!("{SELECT} WHERE s.actor_id IS NOT NULL AND NOT ({live}) ORDER BY s.id DESC LIMIT $2")
    } else {
        format!("{SELECT} WHERE {live} ORDER BY s.id DESC LIMIT $2")
    };
    let rows: Vec<Row> = with_db!(&state.db, pool => {
        sqlx::query_as(&query).bind(now).bind(LIMIT).fetch_all(pool).await?
    });
    let rows = rows
        .into_iter()
        .map(|row| impersonation(row, viewer, now, !history))
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok(ImpersonationList {
        rows,
        can_end_all: !history && policy::may_end_all(viewer).is_ok(),
    })
}

/// A row of the list as an overseer of role `viewer` sees it at `now`: `live`, or
/// over.
fn impersonation(
    row: Row,
    viewer: crate::role::Role,
    now: Millis,
    live: bool,
) -> Result<Impersonation, AppError> {
    let actor_role = stored_role(row.actor_id, &row.actor_role)?;
    let (started, expires) = (row.created_at, row.expires_at);
    Ok(Impersonation {
        id: row.id,
        actor_id: row.actor_id,
        actor_name: row.actor_name,
        actor_role,
        member_id: row.member_id,
        member_name: row.member_name,
        reason: row.reason.unwrap_or_default(),
        started: format_utc(started),
        started_at: started,
        seconds_left: if live {
            ((expires - now) / SECOND).max(0)
        } else {
            0
        },
        // One that expired without a request to notice is shown as expired.
        ended: match row.ended_at {
            Some(at) => Some(format_utc(at)),
            None if !live => Some(format_utc(expires.min(now))),
            None => None,
        },
        end_reason: match (row.ended_at, row.end_reason) {
            (Some(_), Some(why)) => Some(why.replace('_', " ")),
            _ if !live => Some("expired".to_string()),
            _ => None,
        },
        can_end: live && policy::may_end_session(viewer, actor_role).is_ok(),
    })
}

/// The record of a session on behalf ended by an overseer: its actor is the person
/// who was acting (as for every end), and `by` names the overseer.
fn ended_by(request: &RequestContext, by: i64, id: i64, actor: i64, member: i64, now: Millis) -> NewEvent {
    NewEvent::new(AuditAction::OnBehalfEnd, request)
        .actor(actor)
        .subject(member)
        .on_behalf(id)
        .object(ObjectKind::Session, id)
        .details(json!({ "reason": EndReason::Revoked.as_str(), "ended_at": now, "by": by }))
}

/// Ends one live session on behalf. Its token stays, so that the actor's next request
/// finds it over and gets their own session back, with a notice.
pub async fn end(state: &AppState, request: &RequestContext, id: i64) -> Result<(), AppError> {
    const REFUSED: AuditAction = AuditAction::ImpersonationEndRefused;
    let object = (ObjectKind::Session, id.to_string());
    let session = overseer(state, request, REFUSED, object.clone()).await?;
    let viewer = session.member.role;
    let now = state.clock.now();
    let lock = state.db.locking(" FOR SHARE OF a");
    let outcome: Result<(), AppError> = with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        // The actor's role is read under a share lock on PostgreSQL (SQLite's write
        // transaction already excludes writers), so a promotion cannot slip in between.
        let found: Option<(i64, i64, String)> = sqlx::query_as(&format!(
            "SELECT s.actor_id, s.member_id, a.role FROM sessions s JOIN members a ON a.id = s.actor_id \
             WHERE s.id = $1 AND s.ended_at IS NULL AND s.idle_expires_at > $2 AND s.absolute_expires_at > $2{lock}"
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        match found {
            None => Err(AppError::NotFound("There is no such live session on behalf.".to_string())),
            Some((actor, member, role)) => match policy::may_end_session(viewer, stored_role(actor, &role)?) {
                Err(refusal) => Err(AppError::Refused(refusal)),
                Ok(()) => {
                    if end_row(&mut tx, now, id, EndReason::Revoked).await? {
                        write_ended(&mut tx, now, member, actor, id, EndReason::Revoked.as_str()).await?;
                        tx.append_audit(now, ended_by(request, session.member.id, id, actor, member, now)).await?;
                        // And the overseer's own record, found under their name.
                        let event = NewEvent::new(AuditAction::ImpersonationEnded, request)
                            .by(session)
                            .subject(member)
                            .object(ObjectKind::Session, id)
                            .details(json!({ "actor": actor }));
                        tx.append_audit(now, event).await?;
                        tx.commit().await?;
                        state.presence.wake(&state.db, member).await;
                        Ok(())
                    } else {
                        Err(AppError::NotFound("There is no such live session on behalf.".to_string()))
                    }
                }
            },
        }
    });
    crate::guard::record_refusal(state, request, session, REFUSED, object, outcome).await
}

/// Ends every live session on behalf, in one statement (so a session started while
/// it runs is either ended by it or started after it), each end recorded, and then
/// one record of the whole by the super user.
pub async fn end_all(state: &AppState, request: &RequestContext) -> Result<usize, AppError> {
    const REFUSED: AuditAction = AuditAction::ImpersonationEndAllRefused;
    let object = (ObjectKind::Sessions, "on_behalf".to_string());
    // Overseers only, and of them super users only: either refusal is recorded alike.
    let session = require(state, request, REFUSED, object, |session| {
        may_oversee(session)?;
        policy::may_end_all(session.member.role)
    })
    .await?;
    let now = state.clock.now();
    let by = session.member.id;
    let count = with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let ended: Vec<(i64, i64, i64)> = sqlx::query_as(
            "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE actor_id IS NOT NULL AND ended_at IS NULL \
             AND idle_expires_at > $1 AND absolute_expires_at > $1 RETURNING id, actor_id, member_id",
        )
        .bind(now)
        .bind(EndReason::Revoked.as_str())
        .fetch_all(&mut *tx)
        .await?;
        for (id, actor, member) in &ended {
            write_ended(&mut tx, now, *member, *actor, *id, EndReason::Revoked.as_str()).await?;
            tx.append_audit(now, ended_by(request, by, *id, *actor, *member, now)).await?;
        }
        let event = NewEvent::new(AuditAction::ImpersonationsEndedAll, request)
            .by(session)
            .object(ObjectKind::Sessions, "on_behalf")
            .details(json!({ "count": ended.len() }));
        tx.append_audit(now, event).await?;
        tx.commit().await?;
        ended
    });
    for (_, _, member) in &count {
        state.presence.wake(&state.db, *member).await;
    }
    let count = count.len();
    Ok(count)
}

/// The member `member_id`'s role, if they exist.
async fn member_role(state: &AppState, member_id: i64) -> Result<crate::role::Role, AppError> {
    let row: Option<(String,)> = with_db!(&state.db, pool => {
        sqlx::query_as("SELECT role FROM members WHERE id = $1 AND deleted_at IS NULL")
            .bind(member_id)
            .fetch_optional(pool)
            .await?
    });
    let (role,) = row.ok_or_else(|| AppError::NotFound("There is no such member.".to_string()))?;
    stored_role(member_id, &role)
}

/// The overseer asking about member `member_id`'s sessions: as `overseer`, and for a
/// member whose role is at most their own. A refusal is recorded as `action`.
async fn member_overseer<'a>(
    state: &AppState,
    request: &'a RequestContext,
    member_id: i64,
    action: AuditAction,
) -> Result<&'a CurrentSession, AppError> {
    let object = (ObjectKind::Member, member_id.to_string());
    let session = overseer(state, request, action, object.clone()).await?;
    let role = member_role(state, member_id).await?;
    if let Err(refusal) = policy::may_end_session(session.member.role, role) {
        return Err(refuse(state, request, session, action, object, refusal).await);
    }
    Ok(session)
}

/// A member's live session, with the role of whoever acts in it on their behalf.
#[derive(sqlx::FromRow)]
struct LiveRow {
    id: i64,
    member_id: i64,
    actor_id: Option<i64>,
    actor_role: Option<String>,
    actor_name: Option<String>,
    created_at: i64,
    last_seen_at: i64,
    user_agent: Option<String>,
    ip: Option<String>,
    parked: bool,
}

/// The live sessions of member `$member` — their own, those on their behalf and (with
/// `$acting`) those they act in — but the overseer's own `$keep`, in `$executor`.
macro_rules! live_rows {
    ($executor:expr, $member:expr, $now:expr, $keep:expr, $acting:expr) => {
        sqlx::query_as::<_, LiveRow>(
            "SELECT s.id, s.member_id, s.actor_id, a.role AS actor_role, a.display_name AS actor_name, \
             s.created_at, s.last_seen_at, s.user_agent, s.ip, s.token_hash IS NULL AS parked \
             FROM sessions s LEFT JOIN members a ON a.id = s.actor_id \
             WHERE (s.member_id = $1 OR ($4 AND s.actor_id = $1)) AND s.ended_at IS NULL \
             AND s.idle_expires_at > $2 AND s.absolute_expires_at > $2 AND s.id <> $3 \
             ORDER BY s.id DESC LIMIT 200",
        )
        .bind($member)
        .bind($now)
        .bind($keep)
        .bind($acting)
        .fetch_all($executor)
        .await?
    };
}

/// Whether the overseer of role `viewer` may see and end `row`: not a session in which
/// someone of a higher role acts on the member's behalf.
fn within_rank(viewer: crate::role::Role, row: &LiveRow) -> Result<bool, AppError> {
    match (row.actor_id, &row.actor_role) {
        (Some(actor), Some(role)) => Ok(policy::may_end_session(viewer, stored_role(actor, role)?).is_ok()),
        _ => Ok(true),
    }
}

/// A member's live sessions, newest first: their own and those on their behalf (not
/// those of an actor who outranks the overseer, whose address and device they may not
/// see).
pub async fn member_sessions(
    state: &AppState,
    request: &RequestContext,
    member_id: i64,
) -> Result<Vec<MemberSession>, AppError> {
    let session = member_overseer(state, request, member_id, AuditAction::MemberSessionsRefused).await?;
    let viewer = session.member.role;
    let now = state.clock.now();
    let rows: Vec<LiveRow> = with_db!(&state.db, pool => live_rows!(pool, member_id, now, session.id, false));
    let mut shown = Vec::new();
    for row in rows {
        if !within_rank(viewer, &row)? {
            continue;
        }
        shown.push(MemberSession {
            id: row.id,
            device: device_of(row.user_agent.as_deref()),
            ip: row.ip,
            started: format_utc(row.created_at),
            last_seen: format_utc(row.last_seen_at),
            on_behalf_by: row.actor_name,
            waiting: row.parked,
        });
    }
    Ok(shown)
}

/// Ends one of a member's sessions (`only`) or all of them: their own, those on their
/// behalf and those they act in — never the overseer's own, and never one in which
/// someone of a higher role than the overseer acts (one of those asked for by ID is
/// refused with `session_outranks_you`). Each end is recorded, then the whole by the
/// overseer. Returns how many ended.
pub async fn revoke_member_sessions(
    state: &AppState,
    request: &RequestContext,
    member_id: i64,
    only: Option<i64>,
) -> Result<usize, AppError> {
    let action = AuditAction::MemberSessionsRevokeRefused;
    let session = member_overseer(state, request, member_id, action).await?;
    let viewer = session.member.role;
    let now = state.clock.now();
    let by = session.member.id;
    // A refusal leaves the block as its value (not by `return`), so that it is recorded
    // below like every other refusal.
    let outcome: Result<usize, AppError> = with_db!(&state.db, pool => 'revoke: {
        let mut tx = pool.begin_write().await?;
        // Read in the write transaction (SQLite: no other writer until it ends), so what
        // is ended is what was checked.
        let rows: Vec<LiveRow> = live_rows!(&mut *tx, member_id, now, session.id, only.is_none());
        let mut chosen = Vec::new();
        for row in rows.into_iter().filter(|row| only.is_none_or(|id| row.id == id)) {
            if within_rank(viewer, &row)? {
                chosen.push(row);
            } else if only.is_some() {
                break 'revoke Err(AppError::Refused(Refusal::SessionOutranksViewer));
            }
        }
        if only.is_some() && chosen.is_empty() {
            break 'revoke Err(AppError::NotFound("There is no such live session of this member.".to_string()));
        }
        let mut ended = 0;
        for row in &chosen {
            if !end_row(&mut tx, now, row.id, EndReason::Revoked).await? {
                continue;
            }
            ended += 1;
            let event = match row.actor_id {
                Some(actor) => ended_by(request, by, row.id, actor, row.member_id, now),
                None => session_ended(row.member_id, request)
                    .object(ObjectKind::Session, row.id)
                    .details(json!({ "reason": EndReason::Revoked.as_str(), "by": by })),
            };
            tx.append_audit(now, event).await?;
        }
        let event = NewEvent::new(AuditAction::MemberSessionsRevoked, request)
            .by(session)
            .subject(member_id)
            .object(ObjectKind::Member, member_id)
            .details(json!({ "count": ended, "session": only }));
        tx.append_audit(now, event).await?;
        tx.commit().await?;
        Ok(ended)
    });
    crate::guard::record_refusal(
        state,
        request,
        session,
        action,
        (ObjectKind::Member, member_id.to_string()),
        outcome,
    )
    .await
}
