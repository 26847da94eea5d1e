//! What starting and leaving a session on behalf do (server only).

use serde_json::json;

use crate::{
    audit::service::{self as audit, AuditTx, NewEvent},
    auth::{
        session::{
            end_on_behalf, end_session, next_idle_expiry, CurrentSession, EndOnBehalf, EndOutcome, EndReason,
            RequestContext,
        },
        token::Token,
        Password,
    },
    clock::{Millis, MINUTE},
    db::BeginWrite,
    error::AppError,
    members::{service::find_credentials, Role},
    on_behalf::{check_reason, Candidate, Preview},
    rule::{self, Denial, Grant},
    state::AppState,
    with_db,
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

#[derive(sqlx::FromRow)]
struct TargetRow {
    id: i64,
    display_name: String,
    email: String,
    role: String,
    login_enabled: bool,
    deleted_at: Option<i64>,
    grants_actor: i64,
}

/// The rule for the viewer and `member_id`, with what the target row says.
async fn check_rule(
    state: &AppState,
    session: &CurrentSession,
    member_id: i64,
) -> Result<(Result<Grant, Denial>, Option<TargetRow>), AppError> {
    let row: Option<TargetRow> = with_db!(&state.db, pool => {
        sqlx::query_as(
            "SELECT id, display_name, email, role, login_enabled, deleted_at, \
             (SELECT COUNT(*) FROM proxy_permissions p WHERE p.member_id = m.id AND p.actor_id = $2) AS grants_actor \
             FROM members m WHERE id = $1",
        )
        .bind(member_id)
        .bind(session.actor().id)
        .fetch_optional(pool)
        .await?
    });
    let target = match &row {
        Some(row) => Some(rule::Target {
            id: row.id,
            role: Role::parse(&row.role).ok_or(AppError::Internal)?,
            deleted: row.deleted_at.is_some(),
            login_enabled: row.login_enabled,
            grants_actor: row.grants_actor > 0,
        }),
        None => None,
    };
    let actor = rule::Actor {
        id: session.actor().id,
        role: session.actor().role,
        on_behalf: session.on_behalf.is_some(),
    };
    Ok((rule::can_log_in_on_behalf(&actor, target.as_ref()), row))
}

pub async fn preview(
    state: &AppState,
    request: &RequestContext,
    member_id: i64,
) -> Result<Preview, AppError> {
    let session = request.require_session()?;
    let (verdict, row) = check_rule(state, session, member_id).await?;
    verdict.map_err(AppError::Denied)?;
    let row = row.ok_or(AppError::Denied(Denial::NotFound))?;
    Ok(Preview {
        actor_name: session.actor().display_name.clone(),
        member_id: row.id,
        member_name: row.display_name,
        member_email: row.email,
        member_role: Role::parse(&row.role).ok_or(AppError::Internal)?,
        max_minutes: state.settings.on_behalf_max_duration / MINUTE,
    })
}

/// Records a refused start (no change but this record) and returns the error.
async fn refuse(
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
    let event = NewEvent::new("on_behalf_denied", request)
        .by(session)
        .subject(member_id)
        .object("member", member_id)
        .details(json!({ "code": error.code() }));
    match audit::record(&state.db, state.clock.now(), event).await {
        Ok(_) => error,
        Err(db_error) => db_error,
    }
}

/// Starts a session on behalf: the rule, the lockout, the actor's own password
/// (checked exactly as at sign-in), then in one transaction the actor's token ends,
/// the session on behalf begins and the start is recorded.
#[tracing::instrument(skip_all, fields(member_id))]
pub async fn start(
    state: &AppState,
    request: &RequestContext,
    member_id: i64,
    password: Password,
    reason: &str,
) -> Result<Token, AppError> {
    let session = request.require_session()?;
    let reason = check_reason(reason)?;
    if password.expose().is_empty() {
        return Err(AppError::validation("password", "Enter your own password."));
    }
    let actor = session.actor().clone();
    let now = state.clock.now();
    let recent: Vec<(i64,)> = with_db!(&state.db, pool => {
        sqlx::query_as("SELECT failed_at FROM reauth_failures WHERE actor_id = $1 ORDER BY failed_at DESC LIMIT 5")
            .bind(actor.id)
            .fetch_all(pool)
            .await?
    });
    let recent: Vec<Millis> = recent.into_iter().map(|(at,)| at).collect();
    if let Some(until) = locked_until(now, &recent) {
        let minutes = ((until - now + MINUTE - 1) / MINUTE).max(1);
        return Err(refuse(state, request, session, member_id, AppError::LockedOut(minutes)).await);
    }
    let (verdict, row) = check_rule(state, session, member_id).await?;
    let grant = match verdict {
        Ok(grant) => grant,
        Err(denial) => {
            return Err(refuse(state, request, session, member_id, AppError::Denied(denial)).await)
        }
    };
    let target = row.ok_or(AppError::Internal)?;
    // The sign-in check itself: the same lookup and the same verifier.
    let credentials = find_credentials(&state.db, &actor.email).await?;
    let verified = match credentials.filter(|c| c.id == actor.id) {
        Some(credentials) => {
            state
                .hasher
                .verify(Some(credentials.password_hash), password)
                .await?
        }
        None => false,
    };
    if !verified {
        tracing::info!(actor = actor.id, "login on behalf refused: wrong password");
        with_db!(&state.db, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("INSERT INTO reauth_failures (actor_id, failed_at) VALUES ($1, $2)")
                .bind(actor.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let event = NewEvent::new("on_behalf_reauth_failed", request)
                .by(session)
                .subject(member_id)
                .object("member", member_id)
                .details(json!({ "code": "wrong_password" }));
            tx.append_audit(now, event).await?;
            tx.commit().await?;
        });
        return Err(AppError::WrongPassword);
    }
    let now = state.clock.now();
    let token = Token::generate();
    let absolute = now.saturating_add(state.settings.on_behalf_max_duration);
    let idle = next_idle_expiry(now, state.settings.session_idle_timeout, absolute);
    let user_agent = request
        .user_agent
        .as_deref()
        .map(|ua| ua.chars().take(512).collect::<String>());
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        // The actor's own session stays, without a token, until they come back.
        let parked = sqlx::query("UPDATE sessions SET token_hash = NULL WHERE id = $1 AND ended_at IS NULL")
            .bind(session.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if parked != 1 {
            return Err(AppError::Unauthenticated);
        }
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO sessions (token_hash, member_id, actor_id, parent_id, reason, created_at, last_seen_at, \
             idle_expires_at, absolute_expires_at, user_agent, ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(token.hash())
        .bind(target.id)
        .bind(actor.id)
        .bind(session.id)
        .bind(&reason)
        .bind(now)
        .bind(idle)
        .bind(absolute)
        .bind(user_agent)
        .bind(request.ip.as_deref())
        .fetch_one(&mut *tx)
        .await?;
        let event = NewEvent::new("on_behalf_start", request)
            .actor(actor.id)
            .subject(target.id)
            .on_behalf(id)
            .object("session", id)
            .details(json!({
                "reason": reason,
                "grant": grant.as_str(),
                "started_at": now,
                "expires_at": absolute,
            }));
        tx.append_audit(now, event).await?;
        tx.commit().await?;
    });
    tracing::info!(actor = actor.id, member = target.id, "session on behalf started");
    Ok(token)
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

/// Signing out while on behalf ends the session on behalf and the actor's own.
pub async fn sign_out_on_behalf(state: &AppState, request: &RequestContext) -> Result<(), AppError> {
    let session = request.require_session()?;
    let Some(on_behalf) = &session.on_behalf else {
        return Err(AppError::Internal);
    };
    let end = EndOnBehalf::asked(session, on_behalf, EndReason::SignedOut, request);
    end_on_behalf(state, end).await?;
    let actor = on_behalf.actor.id;
    let event = NewEvent::new("sign_out", request).actor(actor).subject(actor);
    end_session(state, on_behalf.parent_id, EndReason::SignedOut, Some(event)).await?;
    Ok(())
}

/// The "Login as" menu: members whose proxy login permission names the viewer and
/// whom the rule allows, by name (at most 50).
pub async fn candidates(state: &AppState, request: &RequestContext) -> Result<Vec<Candidate>, AppError> {
    let session = request.require_session()?;
    if session.on_behalf.is_some() {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, String, String, bool)> = with_db!(&state.db, pool => {
        sqlx::query_as(
            "SELECT m.id, m.display_name, m.role, m.login_enabled FROM proxy_permissions p \
             JOIN members m ON m.id = p.member_id \
             WHERE p.actor_id = $1 AND m.deleted_at IS NULL ORDER BY m.name_key, m.id LIMIT 200",
        )
        .bind(session.member.id)
        .fetch_all(pool)
        .await?
    });
    let actor = rule::Actor {
        id: session.member.id,
        role: session.member.role,
        on_behalf: false,
    };
    Ok(rows
        .into_iter()
        .filter_map(|(id, display_name, role, login_enabled)| {
            let role = Role::parse(&role)?;
            let target = rule::Target {
                id,
                role,
                deleted: false,
                login_enabled,
                grants_actor: true,
            };
            rule::can_log_in_on_behalf(&actor, Some(&target)).ok()?;
            Some(Candidate {
                id,
                display_name,
                role,
            })
        })
        .take(50)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
