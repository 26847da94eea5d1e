//! What starting and leaving a session on behalf do (server only).

use serde_json::json;

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{clip_user_agent, record, AuditTx, NewEvent},
    clock::{Millis, MINUTE, SECOND},
    context::{CurrentSession, RequestContext},
    db::with_db,
    db::{is_unique_violation, stored_role, BeginWrite},
    error::{AppError, Refusal},
    members::directory::groups_of,
    mode::{may_act, Mode},
    on_behalf::{check_reason, Candidate, Preview},
    password::{check_entered, credentials, Password},
    role::Role,
    rule::{self, Denial, Grant},
    session::{end_on_behalf, next_idle_expiry, token::Token, EndOnBehalf, EndOutcome, EndReason},
    state::AppState,
};

/// Failed re-authentications that lock login on behalf…
pub const LOCKOUT_FAILURES: usize = 5;
/// …when they fall within this window…
pub const LOCKOUT_WINDOW: Millis = 15 * MINUTE;
/// …for this long after the last of them.
pub const LOCKOUT_FOR: Millis = 15 * MINUTE;

/// Until when login on behalf is locked, given the times of the actor's most
/// recent failed re-authentications (newest first, at most `LOCKOUT_FAILURES`).
pub fn locked_until(now: Millis, recent_failures: &[Millis]) -> Option<Millis> {
    if recent_failures.len() < LOCKOUT_FAILURES {
        return None;
    }
    let newest = recent_failures[0];
    let oldest = recent_failures[LOCKOUT_FAILURES - 1];
    let until = newest + LOCKOUT_FOR;
    (newest - oldest <= LOCKOUT_WINDOW && now < until).then_some(until)
}

/// A member as the rule sees them, with whether the actor (`$2` in the query) is named
/// in their proxy login permission and wrote that entry themselves.
#[derive(sqlx::FromRow)]
pub(super) struct TargetRow {
    pub id: i64,
    pub display_name: String,
    pub email: String,
    pub role: String,
    pub login_enabled: bool,
    pub deleted_at: Option<i64>,
    pub grants_actor: i64,
    pub grant_by_actor: i64,
}

/// The columns of a `TargetRow` from `members m`, for the actor bound as `$2`.
pub(super) const TARGET_COLUMNS: &str = "m.id, m.display_name, m.email, m.role, m.login_enabled, m.deleted_at, \
     (SELECT COUNT(*) FROM proxy_permissions p WHERE p.member_id = m.id AND p.actor_id = $2) AS grants_actor, \
     (SELECT COUNT(*) FROM proxy_permissions p WHERE p.member_id = m.id AND p.actor_id = $2 \
      AND p.granted_by = $2) AS grant_by_actor";

impl TargetRow {
    pub(super) fn rule_target(&self) -> Result<rule::Target, AppError> {
        Ok(rule::Target {
            id: self.id,
            role: stored_role(self.id, &self.role)?,
            deleted: self.deleted_at.is_some(),
            login_enabled: self.login_enabled,
            grants_actor: self.grants_actor > 0,
            grant_written_by_actor: self.grant_by_actor > 0,
        })
    }
}

/// The real person behind the session, as the rule sees them.
pub(super) fn rule_actor(session: &CurrentSession) -> rule::Actor {
    let actor = session.actor();
    rule::Actor {
        id: actor.id,
        role: actor.role,
        admin_access: actor.admin_access,
        on_behalf: session.on_behalf.is_some(),
    }
}

/// The rule for the viewer and `member_id`, with what the target row says.
async fn check_rule(
    state: &AppState,
    session: &CurrentSession,
    member_id: i64,
) -> Result<(Result<Grant, Denial>, Option<TargetRow>), AppError> {
    let row: Option<TargetRow> = with_db!(&state.db, pool => {
        sqlx::query_as(&format!("SELECT {TARGET_COLUMNS} FROM members m WHERE m.id = $1"))
            .bind(member_id)
            .bind(session.actor().id)
            .fetch_optional(pool)
            .await?
    });
    let target = row.as_ref().map(TargetRow::rule_target).transpose()?;
    let actor = rule_actor(session);
    let verdict = rule::can_log_in_on_behalf(&actor, target.as_ref());
    // Someone who could not log in on this member's behalf whatever the member's state
    // (no role grant within reach, no explicit grant naming them) learns nothing about
    // the member: not whether the ID exists, is deleted or may sign in.
    let could_reach = (actor.role >= Role::Support && actor.admin_access)
        || target.as_ref().is_some_and(|t| t.grants_actor);
    let verdict = match verdict {
        Err(Denial::NotFound | Denial::Deleted | Denial::LoginDisabled) if !could_reach => {
            Err(Denial::NoPermission)
        }
        other => other,
    };
    Ok((verdict, row))
}

pub async fn preview(
    state: &AppState,
    request: &RequestContext,
    member_id: i64,
) -> Result<Preview, AppError> {
    let session = request.require_session()?;
    let (verdict, row) = check_rule(state, session, member_id).await?;
    let grant = verdict.map_err(AppError::Denied)?;
    let row = row.ok_or(AppError::Denied(Denial::NotFound))?;
    Ok(Preview {
        may_act: may_act(session.actor().role, grant, state.settings.act_min_role),
        actor_name: session.actor().display_name.clone(),
        member_id: row.id,
        member_name: row.display_name,
        member_email: row.email,
        member_role: stored_role(row.id, &row.role)?,
        max_minutes: state.settings.on_behalf_max_duration / MINUTE,
    })
}

/// Records a refused start (no change but this record) and returns the error.
pub(super) async fn refuse(
    state: &AppState,
    request: &RequestContext,
    session: &CurrentSession,
    member_id: i64,
    error: AppError,
) -> AppError {
    tracing::info!(
        actor = session.actor().id,
        member_id,
        code = error.code(),
        "login on behalf refused"
    );
    let event = NewEvent::new(AuditAction::OnBehalfDenied, request)
        .by(session)
        .subject(member_id)
        .object(ObjectKind::Member, member_id)
        .details(json!({ "code": error.code() }));
    match crate::audit_writer::record_folded(&state.db, &state.refusals, state.clock.now(), event).await {
        Ok(_) => error,
        Err(db_error) => db_error,
    }
}

/// Holds actor `$actor`'s member row inside `$tx` until it ends (PostgreSQL; `$for_update`
/// is empty on SQLite, whose write transaction serialises anyway): the one lock that
/// claiming and settling re-authentication attempts share.
macro_rules! lock_actor {
    ($tx:expr, $for_update:expr, $actor:expr) => {
        sqlx::query(&format!("SELECT id FROM members WHERE id = $1{}", $for_update))
            .bind($actor)
            .fetch_optional(&mut *$tx)
            .await?;
    };
}

/// A pending attempt older than this is a check that never finished (the checks run
/// in a task of their own, so only a crash leaves one).
pub const PENDING_FOR: Millis = 10 * SECOND;

/// Counts a re-authentication attempt as pending before its password is checked (a
/// row of `reauth_attempts`, kept as a failure if the password was wrong, removed if
/// it was right), or refuses it while login on behalf is locked. The actor's member
/// row is locked meanwhile (PostgreSQL; SQLite's write lock serialises anyway), and
/// no more attempts are checked at once than could still fail before the lock: however
/// many arrive together, no more than `LOCKOUT_FAILURES` are ever verified in a window.
async fn claim_attempt(state: &AppState, actor_id: i64) -> Result<i64, AppError> {
    let now = state.clock.now();
    let for_update = state.db.for_update();
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        lock_actor!(tx, for_update, actor_id);
        let recent: Vec<(i64,)> = sqlx::query_as(
            "SELECT failed_at FROM reauth_attempts WHERE actor_id = $1 AND NOT pending \
             ORDER BY failed_at DESC LIMIT 5",
        )
        .bind(actor_id)
        .fetch_all(&mut *tx)
        .await?;
        let recent: Vec<Millis> = recent.into_iter().map(|(at,)| at).collect();
        if let Some(until) = locked_until(now, &recent) {
            tx.rollback().await?;
            let retry_after = u64::try_from((until - now + SECOND - 1) / SECOND).unwrap_or(1).max(1);
            return Err(AppError::LockedOut { retry_after });
        }
        let (pending,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM reauth_attempts WHERE actor_id = $1 AND pending AND failed_at > $2",
        )
        .bind(actor_id)
        .bind(now - PENDING_FOR)
        .fetch_one(&mut *tx)
        .await?;
        if pending >= checks_allowed(now, &recent) {
            tx.rollback().await?;
            return Err(AppError::Conflict(
                "Your other attempts to log in on behalf are being checked right now. Try again in a moment.".into(),
            ));
        }
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO reauth_attempts (actor_id, failed_at, pending) VALUES ($1, $2, TRUE) RETURNING id",
        )
        .bind(actor_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    })
}

/// How many re-authentications may be checked at once, given the actor's most recent
/// failures (newest first): as many as could still fail before the lockout, at least one.
pub fn checks_allowed(now: Millis, recent_failures: &[Millis]) -> i64 {
    let in_window = recent_failures
        .iter()
        .filter(|at| now - **at < LOCKOUT_WINDOW)
        .count();
    (LOCKOUT_FAILURES.saturating_sub(in_window) as i64).max(1)
}

/// Settles a pending attempt: kept as a failure (wrong password) or removed. Under the
/// same lock as `claim_attempt`, so a claim never reads the failures before an attempt
/// settles and the pending ones after (missing it in both and letting one more in).
async fn settle_attempt(state: &AppState, actor_id: i64, attempt: i64, failed: bool) -> Result<(), AppError> {
    let now = state.clock.now();
    let for_update = state.db.for_update();
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        lock_actor!(tx, for_update, actor_id);
        if failed {
            sqlx::query("UPDATE reauth_attempts SET pending = FALSE, failed_at = $2 WHERE id = $1")
                .bind(attempt)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query("DELETE FROM reauth_attempts WHERE id = $1")
                .bind(attempt)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Starts a session on behalf: the reason and the password's length, the rule, the
/// lockout (the attempt is counted first), the actor's own password (checked exactly
/// as at sign-in), then in one transaction the actor's token ends, the session on
/// behalf begins and the start is recorded. Of parallel starts from one session, one
/// wins; the others change nothing.
#[tracing::instrument(skip_all, fields(member_id))]
pub async fn start(
    state: &AppState,
    request: &RequestContext,
    member_id: i64,
    password: Password,
    reason: &str,
    mode: Mode,
) -> Result<Token, AppError> {
    let session = request.require_session()?;
    let reason = check_reason(reason)?;
    check_entered(&password, "password", "Enter your own password.")?;
    let actor = session.actor();
    let (verdict, row) = check_rule(state, session, member_id).await?;
    let grant = match verdict {
        Ok(grant) => grant,
        Err(denial) => {
            return Err(refuse(state, request, session, member_id, AppError::Denied(denial)).await)
        }
    };
    if mode == Mode::Act && !may_act(actor.role, grant, state.settings.act_min_role) {
        let error = AppError::Refused(Refusal::ActNeedsRole);
        return Err(refuse(state, request, session, member_id, error).await);
    }
    let target = row.ok_or(AppError::Internal)?;
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
    let start = Start {
        target: target.id,
        grant,
        reason: &reason,
        mode,
    };
    switch(state, request, session, start, &token).await?;
    tracing::info!(actor = actor.id, member = target.id, "session on behalf started");
    Ok(token)
}

/// Whether `password` is actor `actor_id`'s own (`email`'s), checked exactly as at
/// sign-in after the attempt is counted (`claim_attempt`), or the lockout's refusal.
/// Claimed, checked and settled in a task of its own, so that a client dropping the
/// connection half-way can never leave the attempt pending.
pub(super) async fn reauthenticate(
    state: &AppState,
    actor_id: i64,
    email: &str,
    password: Password,
) -> Result<bool, AppError> {
    let place = state.hasher.reserve()?;
    let (state, email) = (state.clone(), email.to_string());
    tokio::spawn(async move {
        let _place = place;
        let attempt = claim_attempt(&state, actor_id).await?;
        // The sign-in check itself: the same lookup and the same verifier.
        let (credentials, verified) = credentials::check(&state.db, &state.hasher, &email, password).await?;
        let verified = verified && credentials.is_some_and(|c| c.id == actor_id);
        settle_attempt(&state, actor_id, attempt, !verified).await?;
        Ok::<bool, AppError>(verified)
    })
    .await
    .map_err(|error| {
        tracing::error!(%error, "the re-authentication check stopped");
        AppError::Internal
    })?
}

/// Records a wrong password given to start a session on behalf of `member_id` and
/// returns the error.
pub(super) async fn wrong_password(
    state: &AppState,
    request: &RequestContext,
    session: &CurrentSession,
    member_id: i64,
) -> AppError {
    tracing::info!(
        actor = session.actor().id,
        "login on behalf refused: wrong password"
    );
    let event = NewEvent::new(AuditAction::OnBehalfReauthFailed, request)
        .by(session)
        .subject(member_id)
        .object(ObjectKind::Member, member_id)
        .details(json!({ "code": "wrong_password" }));
    match record(&state.db, state.clock.now(), event).await {
        Ok(_) => AppError::WrongPassword,
        Err(error) => error,
    }
}

/// What a session on behalf starts with.
struct Start<'a> {
    target: i64,
    grant: Grant,
    reason: &'a str,
    mode: Mode,
}

/// In one transaction: the actor's token ends (the request that still finds it
/// goes on), the session on behalf of `target` begins with `token`, and the start is
/// recorded.
async fn switch(
    state: &AppState,
    request: &RequestContext,
    session: &CurrentSession,
    start: Start<'_>,
    token: &Token,
) -> Result<(), AppError> {
    let Start {
        target,
        grant,
        reason,
        mode,
    } = start;
    let actor = session.actor().id;
    let now = state.clock.now();
    let absolute = now.saturating_add(state.settings.on_behalf_max_duration);
    let idle = next_idle_expiry(now, state.settings.session_idle_timeout, absolute);
    let user_agent = request.user_agent.as_deref().map(clip_user_agent);
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        // The actor's own session stays, without a token, until they come back. Only
        // the request that still finds its token parks it: of parallel starts from
        // one session, one goes on.
        let parked = sqlx::query(
            "UPDATE sessions SET token_hash = NULL WHERE id = $1 AND ended_at IS NULL AND token_hash IS NOT NULL",
        )
        .bind(session.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if parked != 1 {
            tx.rollback().await?;
            return Err(already_switched());
        }
        let inserted: Result<(i64,), sqlx::Error> = sqlx::query_as(
            "INSERT INTO sessions (token_hash, member_id, actor_id, parent_id, reason, created_at, last_seen_at, \
             idle_expires_at, absolute_expires_at, user_agent, ip, mode) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(token.hash())
        .bind(target)
        .bind(actor)
        .bind(session.id)
        .bind(reason)
        .bind(now)
        .bind(idle)
        .bind(absolute)
        .bind(user_agent)
        .bind(request.ip.as_deref())
        .bind(mode.as_str())
        .fetch_one(&mut *tx)
        .await;
        // The unique index on live sessions on behalf per parent says the same.
        let id = match inserted {
            Ok((id,)) => id,
            Err(error) if is_unique_violation(&error) => return Err(already_switched()),
            Err(error) => return Err(error.into()),
        };
        let event = NewEvent::new(AuditAction::OnBehalfStart, request)
            .actor(actor)
            .subject(target)
            .on_behalf(id)
            .object(ObjectKind::Session, id)
            .details(json!({
                "reason": reason,
                "grant": grant.as_str(),
                "mode": mode.as_str(),
                "started_at": now,
                "expires_at": absolute,
            }));
        tx.append_audit(now, event).await?;
        tx.commit().await?;
        Ok(())
    })
}

/// Another request from this session has already switched it to a session on behalf.
fn already_switched() -> AppError {
    AppError::Conflict(
        "This session has just started a session on behalf in another request; nothing more was switched."
            .into(),
    )
}

/// Leaves the session on behalf. Returns the actor's new token (none when their own
/// session is over too) and the member's ID.
pub async fn leave(state: &AppState, request: &RequestContext) -> Result<(Option<Token>, i64), AppError> {
    let session = request.require_session()?;
    let Some(on_behalf) = &session.on_behalf else {
        return Err(AppError::BadRequest(
            "You are not acting on anyone's behalf.".to_string(),
        ));
    };
    let end = EndOnBehalf {
        resume_parent: true,
        ..EndOnBehalf::asked(session, on_behalf, EndReason::Left, request)
    };
    let token = match end_on_behalf(state, end).await? {
        EndOutcome::AlreadyTaken => return Err(AppError::Unauthenticated),
        EndOutcome::Ended { parent_token } => parent_token,
    };
    tracing::info!(
        actor = on_behalf.actor.id,
        member = session.member.id,
        "left session on behalf"
    );
    Ok((token, session.member.id))
}

/// The "Login as" menu: members with admin access whose proxy login permission names
/// the viewer and whom the rule allows, by name (at most 50), each with its groups (a
/// person with one account per group tells them apart so). As in Kuroco, members
/// without admin access are not listed: they are reached from their blade, or by a
/// frontend through `alias_login`.
pub async fn candidates(state: &AppState, request: &RequestContext) -> Result<Vec<Candidate>, AppError> {
    let session = request.require_session()?;
    if session.on_behalf.is_some() {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, String, String, bool, Option<i64>)> = with_db!(&state.db, pool => {
        sqlx::query_as(
            "SELECT m.id, m.display_name, m.role, m.login_enabled, p.granted_by FROM proxy_permissions p \
             JOIN members m ON m.id = p.member_id \
             WHERE p.actor_id = $1 AND m.deleted_at IS NULL AND m.admin_access \
             ORDER BY m.name_key, m.id LIMIT 200",
        )
        .bind(session.member.id)
        .fetch_all(pool)
        .await?
    });
    let actor = rule_actor(session);
    let mut list: Vec<Candidate> = rows
        .into_iter()
        .filter_map(|(id, display_name, role, login_enabled, granted_by)| {
            let role = stored_role(id, &role).ok()?;
            let target = rule::Target {
                id,
                role,
                deleted: false,
                login_enabled,
                grants_actor: true,
                grant_written_by_actor: granted_by == Some(session.member.id),
            };
            rule::can_log_in_on_behalf(&actor, Some(&target)).ok()?;
            Some(Candidate {
                id,
                display_name,
                role,
                groups: Vec::new(),
            })
        })
        .take(50)
        .collect();
    let ids: Vec<i64> = list.iter().map(|c| c.id).collect();
    let mut groups = groups_of(&state.db, &ids).await?;
    for candidate in &mut list {
        candidate.groups = groups
            .remove(&candidate.id)
            .unwrap_or_default()
            .into_iter()
            .map(|group| group.name)
            .collect();
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_more_reauthentications_run_at_once_than_could_fail_before_the_lockout() {
        let t = 100 * MINUTE;
        assert_eq!(checks_allowed(t, &[]), 5);
        assert_eq!(checks_allowed(t, &[t - MINUTE, t - 2 * MINUTE]), 3);
        // Failures older than the window no longer count.
        assert_eq!(checks_allowed(t, &[t - 16 * MINUTE]), 5);
        let five = [t; 5];
        assert_eq!(checks_allowed(t, &five), 1);
    }

    #[test]
    fn five_failures_within_fifteen_minutes_lock_for_fifteen_minutes() {
        let t = 100 * MINUTE;
        let five = [t, t - MINUTE, t - 2 * MINUTE, t - 3 * MINUTE, t - 4 * MINUTE];
        assert_eq!(locked_until(t, &five), Some(t + 15 * MINUTE));
        assert_eq!(locked_until(t + 15 * MINUTE - 1, &five), Some(t + 15 * MINUTE));
        assert_eq!(locked_until(t + 15 * MINUTE, &five), None);
        // Four are not enough.
        assert_eq!(locked_until(t, &five[..4]), None);
        // Five spread over more than fifteen minutes are not a lockout.
        let spread = [t, t - MINUTE, t - 2 * MINUTE, t - 3 * MINUTE, t - 16 * MINUTE];
        assert_eq!(locked_until(t, &spread), None);
        assert_eq!(locked_until(t, &[]), None);
    }
}
