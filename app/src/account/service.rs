//! The member's own area (server only).

use std::collections::BTreeMap;

use sqlx::QueryBuilder;

use crate::{
    account::{AccessRecord, SessionView},
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{AuditTx, NewEvent},
    clock::{format_utc, MINUTE},
    context::RequestContext,
    db::with_db,
    db::BeginWrite,
    error::AppError,
    mode::Mode,
    notice::write_ended,
    session::{device_of, store::end_row, EndReason},
    state::AppState,
};

type Row = (
    i64,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
);

/// The records that are not changes to the member's data: the start, the end, an
/// elevation, the view trail, and every refusal or failure (nothing changed).
const NOT_CHANGES: &str = "('on_behalf_start', 'on_behalf_end', 'on_behalf_elevated', 'on_behalf_viewed') \
     AND e.action NOT LIKE '%refused' AND e.action NOT LIKE '%denied' AND e.action NOT LIKE '%failed'";

/// The sessions on behalf of the signed-in member, newest first (at most 100).
pub async fn access_history(
    state: &AppState,
    request: &RequestContext,
) -> Result<Vec<AccessRecord>, AppError> {
    let member_id = request.require_session()?.member.id;
    let rows: Vec<Row> = with_db!(&state.db, pool => {
        sqlx::query_as(&format!(
            "SELECT s.id, a.display_name, s.created_at, s.ended_at, s.end_reason, s.reason, \
             (SELECT COUNT(*) FROM audit_events e WHERE e.session_id = s.id \
              AND e.action NOT IN {NOT_CHANGES}), s.mode \
             FROM sessions s JOIN members a ON a.id = s.actor_id \
             WHERE s.member_id = $1 AND s.actor_id IS NOT NULL ORDER BY s.id DESC LIMIT 100",
        ))
        .bind(member_id)
        .fetch_all(pool)
        .await?
    });
    let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
    let mut viewed = viewed_in(state, &ids).await?;
    let now = state.clock.now();
    Ok(rows
        .into_iter()
        .map(
            |(session_id, actor_name, started, ended, end_reason, reason, actions, mode)| AccessRecord {
                session_id,
                actor_name,
                started: format_utc(started),
                ended: ended.map(format_utc),
                end_reason: end_reason.map(|r| r.replace('_', " ")),
                minutes: (ended.unwrap_or(now) - started) / MINUTE,
                reason: reason.unwrap_or_default(),
                actions,
                mode: mode.as_deref().and_then(Mode::parse).unwrap_or_default(),
                viewed: viewed.remove(&session_id).unwrap_or_default(),
            },
        )
        .collect())
}

/// What was viewed in each of the sessions `ids` (the view trail), as the member
/// reads it: the pages' labels ("Orders", "Profile"), each once, in the order first
/// viewed; a read with no label by its path.
async fn viewed_in(state: &AppState, ids: &[i64]) -> Result<BTreeMap<i64, Vec<String>>, AppError> {
    let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(i64, String)> = with_db!(&state.db, pool => {
        let mut query = QueryBuilder::new(
            "SELECT session_id, details FROM audit_events WHERE action = 'on_behalf_viewed' AND session_id IN (",
        );
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        query.push(") ORDER BY id");
        query.build_query_as().fetch_all(pool).await?
    });
    for (session, details) in rows {
        let details: serde_json::Value = serde_json::from_str(&details).unwrap_or_default();
        let label = details["label"]
            .as_str()
            .or_else(|| details["path"].as_str())
            .unwrap_or("a page")
            .to_string();
        let seen = out.entry(session).or_default();
        if !seen.contains(&label) {
            seen.push(label);
        }
    }
    Ok(out)
}

type SessionRow = (
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

/// The signed-in member's live sessions, newest first: their own, and those on their
/// behalf.
pub async fn sessions(state: &AppState, request: &RequestContext) -> Result<Vec<SessionView>, AppError> {
    let session = request.require_session()?;
    let now = state.clock.now();
    let rows: Vec<SessionRow> = with_db!(&state.db, pool => {
        sqlx::query_as(
            "SELECT s.id, s.created_at, s.last_seen_at, s.user_agent, s.ip, a.display_name, s.token_hash IS NULL \
             FROM sessions s LEFT JOIN members a ON a.id = s.actor_id \
             WHERE s.member_id = $1 AND s.ended_at IS NULL AND s.idle_expires_at > $2 AND s.absolute_expires_at > $2 \
             ORDER BY s.id DESC LIMIT 100",
        )
        .bind(session.member.id)
        .bind(now)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(id, created, seen, agent, ip, by, parked)| SessionView {
            id,
            device: device_of(agent.as_deref()),
            ip,
            started: format_utc(created),
            last_seen: format_utc(seen),
            current: id == session.id,
            on_behalf_by: by,
            waiting: parked,
        })
        .collect())
}

/// Ends one of the member's sessions (not the current one: that is Sign out). A
/// session on behalf of the member ends too: its actor returns to their own.
pub async fn revoke(state: &AppState, request: &RequestContext, id: i64) -> Result<(), AppError> {
    let session = request.require_session()?;
    if id == session.id {
        return Err(AppError::BadRequest(
            "This is the session you are using: sign out instead.".to_string(),
        ));
    }
    let now = state.clock.now();
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let found: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT actor_id FROM sessions WHERE id = $1 AND member_id = $2 AND ended_at IS NULL")
                .bind(id)
                .bind(session.member.id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((actor,)) = found {
            if end_row(&mut tx, now, id, EndReason::Revoked).await? {
                let event = NewEvent::new(AuditAction::SessionRevoked, request)
                    .by(session)
                    .subject(session.member.id)
                    .object(ObjectKind::Session, id);
                tx.append_audit(now, event).await?;
                // A session on behalf of the member: its end is recorded here, as every
                // end is. (Its token stays until the actor's next request, which finds
                // it over and gives the actor their own session back, with a notice.)
                if let Some(actor) = actor {
                    write_ended(&mut tx, now, session.member.id, actor, id, EndReason::Revoked.as_str()).await?;
                    let event = NewEvent::new(AuditAction::OnBehalfEnd, request)
                        .actor(actor)
                        .subject(session.member.id)
                        .on_behalf(id)
                        .object(ObjectKind::Session, id)
                        .details(serde_json::json!({ "reason": EndReason::Revoked.as_str(), "ended_at": now, "by": session.actor().id }));
                    tx.append_audit(now, event).await?;
                }
                tx.commit().await?;
                state.presence.wake(&state.db, session.member.id).await;
                return Ok(());
            }
        }
    });
    // Not theirs, or over already: nothing changes, and the refusal is recorded.
    let event = NewEvent::new(AuditAction::SessionRevokeRefused, request)
        .by(session)
        .subject(session.member.id)
        .object(ObjectKind::Session, id);
    crate::audit_writer::record_folded(&state.db, &state.refusals, now, event).await?;
    Err(AppError::NotFound(
        "There is no such session of yours, or it has ended.".to_string(),
    ))
}
