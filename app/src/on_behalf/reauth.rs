//! Re-authentication for login on behalf (server only): the actor's own password,
//! checked exactly as at sign-in, under a lockout that counts every attempt however
//! many arrive at once (starts and elevations together).

use crate::{
    clock::{Millis, MINUTE, SECOND},
    db::{with_db, BeginWrite},
    error::AppError,
    password::{credentials, Password},
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
