//! Starting and ending sessions. Every end is written with its audit record in the
//! same transaction.

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{clip_user_agent, flush_session, AuditTx, NewEvent},
    clock::Millis,
    context::{CurrentSession, OnBehalf, RequestContext},
    db::with_db,
    db::{
        tx::{with_tx, Tx},
        BeginWrite,
    },
    error::AppError,
    notice::write_ended,
    session::{next_idle_expiry, token::Token, EndReason},
    state::{AppState, Settings},
};

/// Ends session row `id` inside `tx` if it is still open, and says whether it was:
/// the one statement that ends a session.
pub async fn end_row<'a>(
    tx: impl Into<Tx<'a>>,
    now: Millis,
    id: i64,
    reason: EndReason,
) -> Result<bool, sqlx::Error> {
    let ended = with_tx!(tx.into(), tx => {
        sqlx::query("UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL")
            .bind(now)
            .bind(reason.as_str())
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected()
    });
    Ok(ended == 1)
}

/// The record of a member's own session ending without a more telling action of its
/// own (expired, revoked, replaced, or ended with the session on behalf it waited for).
pub(crate) fn session_ended(member_id: i64, request: &RequestContext) -> NewEvent {
    NewEvent::new(AuditAction::SessionEnded, request)
        .actor(member_id)
        .subject(member_id)
}

/// How a session on behalf ends.
pub struct EndOnBehalf {
    pub session_id: i64,
    pub member_id: i64,
    pub actor_id: i64,
    pub parent_id: i64,
    pub reason: EndReason,
    /// When set, only the holder of this token may end it (one winner among
    /// concurrent requests with the same cookie).
    pub token_hash: Option<Vec<u8>>,
    /// Give the actor's own session a new token.
    pub resume_parent: bool,
    /// End the actor's own session too, for this reason…
    pub parent_end: Option<EndReason>,
    /// …recorded as this (`session_ended` when not given).
    pub parent_event: Option<NewEvent>,
    /// The request to record (IP, user agent); none when the end was found by the
    /// session lookup rather than asked for.
    pub event_context: Option<RequestContext>,
}

impl EndOnBehalf {
    /// Ending `session` (a session on behalf) because its actor asked to, in
    /// `request`: the parent neither resumed nor ended unless the caller says so.
    pub fn asked(
        session: &CurrentSession,
        on_behalf: &OnBehalf,
        reason: EndReason,
        request: &RequestContext,
    ) -> Self {
        EndOnBehalf {
            session_id: session.id,
            member_id: session.member.id,
            actor_id: on_behalf.actor.id,
            parent_id: on_behalf.parent_id,
            reason,
            token_hash: None,
            resume_parent: false,
            parent_end: None,
            parent_event: None,
            event_context: Some(request.clone()),
        }
    }
}

pub enum EndOutcome {
    AlreadyTaken,
    Ended { parent_token: Option<Token> },
}

/// A session on behalf to end: whose it is, who was in it, why, and who ended it
/// when that was not its actor nor its lookup (`by`, in the record's details).
pub struct OnBehalfEnding {
    pub session_id: i64,
    pub member_id: i64,
    pub actor_id: i64,
    pub reason: EndReason,
    pub by: Option<i64>,
}

/// Ends a session on behalf inside `tx` if it is still open, with the member's notice
/// and its `on_behalf_end` record, and says whether it was open: the step shared by
/// `end_on_behalf` and `recheck` (End it now writes its own record between the end
/// and this one, so it keeps its own three steps).
pub async fn end_on_behalf_row<'a>(
    tx: impl Into<Tx<'a>>,
    now: Millis,
    ending: &OnBehalfEnding,
    context: &RequestContext,
) -> Result<bool, AppError> {
    let mut tx = tx.into();
    let (session, member, actor, reason) = (
        ending.session_id,
        ending.member_id,
        ending.actor_id,
        ending.reason,
    );
    if !end_row(&mut tx, now, session, reason).await? {
        return Ok(false);
    }
    write_ended(&mut tx, now, member, actor, session, reason.as_str()).await?;
    let mut details = serde_json::json!({ "reason": reason.as_str(), "ended_at": now });
    if let Some(by) = ending.by {
        details["by"] = by.into();
    }
    let event = NewEvent::new(AuditAction::OnBehalfEnd, context)
        .actor(actor)
        .subject(member)
        .on_behalf(session)
        .object(ObjectKind::Session, session)
        .details(details);
    tx.append_audit(now, event).await?;
    Ok(true)
}

/// Ends a session on behalf in one transaction: the session row (its token forgotten,
/// so the cookie can never be used again), the `on_behalf_end` record, and then either
/// a fresh token for the actor's own session or the end of that one too.
pub async fn end_on_behalf(state: &AppState, end: EndOnBehalf) -> Result<EndOutcome, AppError> {
    let now = state.clock.now();
    // What was viewed in it is written first, so the trail comes before its end.
    if let Err(error) = flush_session(&state.db, &state.trail, end.session_id, now).await {
        tracing::error!(%error, session = end.session_id, "could not write the view trail of a session ending");
    }
    let parent_token = end.resume_parent.then(Token::generate);
    let parent_hash = parent_token.as_ref().map(|t| t.hash());
    let parent_idle = next_idle_expiry(now, state.settings.session_idle_timeout, i64::MAX);
    let context = end.event_context.clone().unwrap_or_default();
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let taken = sqlx::query(
            "UPDATE sessions SET ended_token_hash = token_hash, token_hash = NULL WHERE id = $1 \
             AND token_hash IS NOT NULL AND ($2 IS NULL OR token_hash = $2)",
        )
        .bind(end.session_id)
        .bind(end.token_hash.as_deref())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if taken == 0 {
            return Ok(EndOutcome::AlreadyTaken);
        }
        let ending = OnBehalfEnding {
            session_id: end.session_id,
            member_id: end.member_id,
            actor_id: end.actor_id,
            reason: end.reason,
            by: None,
        };
        let ended = end_on_behalf_row(&mut tx, now, &ending, &context).await?;
        let mut resumed = false;
        if let Some(hash) = &parent_hash {
            resumed = sqlx::query(
                "UPDATE sessions SET token_hash = $1, last_seen_at = $2, \
                 idle_expires_at = CASE WHEN $3 < absolute_expires_at THEN $3 ELSE absolute_expires_at END \
                 WHERE id = $4 AND ended_at IS NULL AND token_hash IS NULL",
            )
            .bind(hash)
            .bind(now)
            .bind(parent_idle)
            .bind(end.parent_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
        }
        if let Some(reason) = end.parent_end {
            if end_row(&mut tx, now, end.parent_id, reason).await? {
                let event = end
                    .parent_event
                    .clone()
                    .unwrap_or_else(|| session_ended(end.actor_id, &context))
                    .object(ObjectKind::Session, end.parent_id)
                    .details(serde_json::json!({ "reason": reason.as_str() }));
                tx.append_audit(now, event).await?;
            }
        }
        tx.commit().await?;
        if ended {
            state.presence.wake(&state.db, end.member_id).await;
        }
        Ok(EndOutcome::Ended {
            parent_token: parent_token.filter(|_| resumed),
        })
    })
}

/// Ends a session if it is still open, recording `event` (with the session as its
/// object and the reason added to its details) in the same transaction. Returns
/// whether it was open.
pub async fn end_session(
    state: &AppState,
    session_id: i64,
    reason: EndReason,
    event: NewEvent,
) -> Result<bool, AppError> {
    let now = state.clock.now();
    let mut event = event.object(ObjectKind::Session, session_id);
    if let Some(details) = event.details.as_object_mut() {
        details.insert("reason".into(), reason.as_str().into());
    }
    let ended = with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let ended = end_row(&mut tx, now, session_id, reason).await?;
        if ended {
            tx.append_audit(now, event).await?;
        }
        tx.commit().await?;
        ended
    });
    Ok(ended)
}

/// Who signs in, and from where, when a session of their own is opened.
pub struct OwnSession<'a> {
    pub member_id: i64,
    /// The browser's previous session and its member, if any: ended (replaced) first.
    pub replacing: Option<(i64, i64)>,
    pub context: &'a RequestContext,
    /// The details of the `sign_in` record.
    pub details: serde_json::Value,
}

/// Inside `tx`, at `now`: ends the session `own` replaces, inserts a new own session
/// for the member with `token`, records the sign-in time on the member and appends the
/// `sign_in` record. Returns the new session's ID. Any area's transaction may open a
/// session this way (a one-click link's does).
pub async fn open_own_session<'a>(
    tx: impl Into<Tx<'a>>,
    now: Millis,
    settings: &Settings,
    token: &Token,
    own: OwnSession<'_>,
) -> Result<i64, AppError> {
    let OwnSession {
        member_id,
        replacing,
        context,
        details,
    } = own;
    let absolute = now.saturating_add(settings.session_lifetime);
    let idle = next_idle_expiry(now, settings.session_idle_timeout, absolute);
    let user_agent = context.user_agent.as_deref().map(clip_user_agent);
    let mut tx = tx.into();
    // The member's row is written before any record is appended: every writer takes
    // the rows it changes before the chain's head, or two of them (this sign-in and a
    // one-click link being made for the same member, say) wait on each other until
    // PostgreSQL ends one with "deadlock detected" (`behalf bench` found it).
    let session_id = with_tx!(&mut tx, tx => {
        let (session_id,): (i64,) = sqlx::query_as(
            "INSERT INTO sessions (token_hash, member_id, created_at, last_seen_at, idle_expires_at, \
             absolute_expires_at, user_agent, ip) VALUES ($1, $2, $3, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(token.hash())
        .bind(member_id)
        .bind(now)
        .bind(idle)
        .bind(absolute)
        .bind(user_agent)
        .bind(context.ip.as_deref())
        .fetch_one(&mut ***tx)
        .await?;
        sqlx::query("UPDATE members SET last_sign_in_at = $1, sign_in_key = $1 WHERE id = $2")
            .bind(now)
            .bind(member_id)
            .execute(&mut ***tx)
            .await?;
        // The search terms carry the members list's sort keys.
        sqlx::query("UPDATE member_terms SET sign_in_key = $1 WHERE member_id = $2")
            .bind(now)
            .bind(member_id)
            .execute(&mut ***tx)
            .await?;
        session_id
    });
    if let Some((old, old_member)) = replacing {
        let reason = EndReason::Replaced;
        if end_row(&mut tx, now, old, reason).await? {
            let event = session_ended(old_member, context)
                .object(ObjectKind::Session, old)
                .details(serde_json::json!({ "reason": reason.as_str() }));
            tx.append_audit(now, event).await?;
        }
    }
    let event = NewEvent::new(AuditAction::SignIn, context)
        .actor(member_id)
        .subject(member_id)
        .object(ObjectKind::Session, session_id)
        .details(details);
    tx.append_audit(now, event).await?;
    Ok(session_id)
}

/// A new session for `member_id` signing in as themselves. In one transaction it
/// ends `replacing` (the browser's previous session and its member, if any), inserts the new row,
/// records the sign-in time on the member and appends the `sign_in` audit record.
pub async fn start_own_session(
    state: &AppState,
    member_id: i64,
    replacing: Option<(i64, i64)>,
    context: &RequestContext,
) -> Result<Token, AppError> {
    let now = state.clock.now();
    let token = Token::generate();
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let own = OwnSession {
            member_id,
            replacing,
            context,
            details: serde_json::json!({}),
        };
        open_own_session(&mut tx, now, &state.settings, &token, own).await?;
        tx.commit().await?;
    });
    Ok(token)
}

/// Ends, inside `tx`, every open session of `member` — their own, those on their
/// behalf, and their own sessions on behalf of others — except those in `keep` (the
/// request's own), recording each (reason `revoked`, `because` what changed). For a
/// change to what the member may do, in that change's own transaction. Returns how
/// many ended.
pub async fn end_member_sessions<'a>(
    tx: impl Into<Tx<'a>>,
    now: Millis,
    member: i64,
    keep: [i64; 2],
    because: &str,
    request: &RequestContext,
) -> Result<usize, AppError> {
    let mut tx = tx.into();
    let ended: Vec<(i64, i64, Option<i64>)> = with_tx!(&mut tx, tx => {
        sqlx::query_as(
            "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE ended_at IS NULL \
             AND id <> $3 AND id <> $4 AND (member_id = $5 OR actor_id = $5) RETURNING id, member_id, actor_id",
        )
        .bind(now)
        .bind(EndReason::Revoked.as_str())
        .bind(keep[0])
        .bind(keep[1])
        .bind(member)
        .fetch_all(&mut ***tx)
        .await?
    });
    for (ended_id, ended_member, actor) in &ended {
        if let Some(actor) = actor {
            write_ended(
                &mut tx,
                now,
                *ended_member,
                *actor,
                *ended_id,
                EndReason::Revoked.as_str(),
            )
            .await?;
        }
        let action = if actor.is_some() {
            AuditAction::OnBehalfEnd
        } else {
            AuditAction::SessionEnded
        };
        let mut event = NewEvent::new(action, request)
            .actor(actor.unwrap_or(*ended_member))
            .subject(*ended_member)
            .object(ObjectKind::Session, *ended_id)
            .details(serde_json::json!({
                "reason": EndReason::Revoked.as_str(),
                "because": because,
                "ended_at": now,
            }));
        if actor.is_some() {
            event = event.on_behalf(*ended_id);
        }
        tx.append_audit(now, event).await?;
    }
    Ok(ended.len())
}
