//! The sign-in throttle (server only): per client address in memory (governor), and
//! per account in the database, so that it holds across instances.
//!
//! An attempt on an account is counted as pending *before* its password is checked,
//! in a transaction that holds the account's throttle row, and no more attempts are
//! checked at once than could still fail before the lock: however many arrive
//! together, after the fifth failure in a row no further password is checked until
//! the lock expires. A right password clears the row. The account is named by the
//! SHA-256 of its lower-cased email, whether or not such a member exists, so an
//! unknown email is throttled exactly like a known one and nothing typed is kept.
//!
//! Each hit is counted for operators as `behalf_throttle_hits_total{kind}`: `address`
//! (too many attempts from one address this minute), `account_locked` (the account's
//! lock is running), `account_busy` (as many checks under way as could still fail
//! before the lock) and `argon2_queue_full` (no place in argon2's line).

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::{
    clock::{Millis, HOUR, MINUTE, SECOND},
    db::with_db,
    db::BeginWrite,
    email::email_key,
    error::AppError,
    password::{
        credentials::{self, Credentials},
        Password,
    },
    state::AppState,
};

/// Failed attempts in a row before the account locks…
pub const FREE_ATTEMPTS: i64 = 5;
/// …for this long, doubling with each further failure…
pub const FIRST_LOCK: Millis = 30 * SECOND;
/// …up to this long.
pub const LONGEST_LOCK: Millis = 15 * MINUTE;
/// A streak whose last failure is older than this starts again from nothing.
pub const STREAK_FORGOTTEN_AFTER: Millis = HOUR;

/// How long the account stays locked after failure number `failures` of a streak
/// (none before `FREE_ATTEMPTS`): exponential back-off, capped.
pub fn lock_after(failures: i64) -> Option<Millis> {
    if failures < FREE_ATTEMPTS {
        return None;
    }
    let doublings = u32::try_from(failures - FREE_ATTEMPTS)
        .unwrap_or(u32::MAX)
        .min(20);
    Some(FIRST_LOCK.saturating_mul(1_i64 << doublings).min(LONGEST_LOCK))
}

/// Whole seconds to wait until `until`, at least one.
pub fn seconds_until(now: Millis, until: Millis) -> u64 {
    let millis = (until - now).max(0);
    u64::try_from((millis + SECOND - 1) / SECOND).unwrap_or(1).max(1)
}

/// The account's key in the throttle table.
pub fn account_key(email: &str) -> Vec<u8> {
    Sha256::digest(email_key(email).as_bytes()).to_vec()
}

/// The key an address is throttled under: an IPv6 address by its /64 (one client
/// usually holds a whole /64), an IPv4 address as it is.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
    }
}

/// Refuses an address that has made too many attempts this minute.
pub fn check_address(state: &AppState, ip: Option<&str>) -> Result<(), AppError> {
    let Some(ip) = ip.and_then(|ip| ip.parse::<IpAddr>().ok()) else {
        return Ok(());
    };
    let ip = client_key(ip);
    // Forget addresses that have been quiet (the map would grow without bound).
    if state.sign_in_per_ip.len() > 10_000 {
        state.sign_in_per_ip.retain_recent();
    }
    match state.sign_in_per_ip.check_key(&ip) {
        Ok(()) => Ok(()),
        Err(not_until) => {
            use governor::clock::{Clock as _, DefaultClock};
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            tracing::warn!(%ip, "sign-in throttled for this address");
            metrics::counter!("behalf_throttle_hits_total", "kind" => "address").increment(1);
            Err(AppError::RateLimited {
                retry_after: wait.as_secs().max(1),
            })
        }
    }
}

/// A pending count older than this is a check that never finished (the checks run in
/// a task of their own, so only a crash leaves one): it no longer holds anyone back.
pub const PENDING_FOR: Millis = 10 * SECOND;

/// How many attempts may have their password checked at once, after `failures` in a
/// row: the free attempts left, and one at a time once they are used up (after a
/// lock has run out).
pub fn checks_allowed(failures: i64) -> i64 {
    (FREE_ATTEMPTS - failures).max(1)
}

/// An account's throttle row, made when missing (the row must exist to be locked on
/// PostgreSQL; SQLite's write lock is enough).
const CREATE_ROW: &str = "INSERT INTO sign_in_throttle (key_hash, failures, pending, pending_until, \
     last_failure_at, locked_until) VALUES ($1, 0, 0, 0, 0, 0) ON CONFLICT (key_hash) DO NOTHING";

/// Counts an attempt on the account `key` as being checked, or refuses it while the
/// account is locked, or while as many checks are under way as could still fail
/// before the lock (then only for a second: they are about to finish).
pub async fn claim(state: &AppState, key: &[u8]) -> Result<(), AppError> {
    let now = state.clock.now();
    let for_update = state.db.for_update();
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let created = sqlx::query(CREATE_ROW).bind(key).execute(&mut *tx).await?.rows_affected();
        if created == 1 {
            // A new account key (guessed emails make them too): forget the rows whose
            // streak is over and that hold nothing back, so the table only keeps what
            // still matters, however many emails are tried.
            sqlx::query(
                "DELETE FROM sign_in_throttle WHERE key_hash <> $1 AND last_failure_at < $2 \
                 AND locked_until < $3 AND pending_until < $3",
            )
            .bind(key)
            .bind(now - STREAK_FORGOTTEN_AFTER)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let select = format!(
            "SELECT failures, pending, pending_until, last_failure_at, locked_until FROM sign_in_throttle \
             WHERE key_hash = $1{for_update}"
        );
        type Row = (i64, i64, i64, i64, i64);
        let mut row: Option<Row> = sqlx::query_as(&select).bind(key).fetch_optional(&mut *tx).await?;
        if row.is_none() {
            // A right password elsewhere cleared (deleted) the row between the insert
            // above and this read (PostgreSQL, READ COMMITTED): make it again.
            sqlx::query(CREATE_ROW).bind(key).execute(&mut *tx).await?;
            row = sqlx::query_as(&select).bind(key).fetch_optional(&mut *tx).await?;
        }
        let Some((failures, pending, pending_until, last_failure_at, locked_until)) = row else {
            // Cleared again at once: ask the client to try again rather than fail.
            tx.rollback().await?;
            return Err(AppError::RateLimited { retry_after: 1 });
        };
        if now < locked_until {
            tx.rollback().await?;
            metrics::counter!("behalf_throttle_hits_total", "kind" => "account_locked").increment(1);
            return Err(AppError::RateLimited {
                retry_after: seconds_until(now, locked_until),
            });
        }
        let failures = if now - last_failure_at > STREAK_FORGOTTEN_AFTER { 0 } else { failures };
        let pending = if now < pending_until { pending } else { 0 };
        if pending >= checks_allowed(failures) {
            tx.rollback().await?;
            metrics::counter!("behalf_throttle_hits_total", "kind" => "account_busy").increment(1);
            return Err(AppError::RateLimited { retry_after: 1 });
        }
        sqlx::query(
            "UPDATE sign_in_throttle SET failures = $2, pending = $3, pending_until = $4 WHERE key_hash = $1",
        )
        .bind(key)
        .bind(failures)
        .bind(pending + 1)
        .bind(now + PENDING_FOR)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    })
}

/// The password was wrong: one more failure in the streak, and the lock it brings.
/// Returns the failures so far and, when this one locked the account, for how long.
pub async fn failed(state: &AppState, key: &[u8]) -> Result<(i64, Option<Millis>), AppError> {
    let now = state.clock.now();
    let for_update = state.db.for_update();
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let row: Option<(i64, i64)> = sqlx::query_as(&format!(
            "SELECT failures, pending FROM sign_in_throttle WHERE key_hash = $1{for_update}"
        ))
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        let (failures, pending) = row.unwrap_or((0, 1));
        let failures = failures + 1;
        let locks_for = lock_after(failures);
        sqlx::query(
            "INSERT INTO sign_in_throttle (key_hash, failures, pending, pending_until, last_failure_at, locked_until) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key_hash) DO UPDATE SET failures = $2, pending = $3, \
             last_failure_at = $5, locked_until = $6",
        )
        .bind(key)
        .bind(failures)
        .bind((pending - 1).max(0))
        .bind(now + PENDING_FOR)
        .bind(now)
        .bind(locks_for.map_or(0, |lock| now + lock))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((failures, locks_for))
    })
}

/// What checking a password for an account found.
pub struct Checked {
    pub credentials: Option<Credentials>,
    pub verified: bool,
    /// After a wrong password: the failures in the streak, and the lock this one
    /// started (if it did).
    pub failures: i64,
    pub locks_for: Option<Millis>,
}

/// Claims an attempt on the account of `email`, checks the password with the one
/// credential check, and settles the attempt — in a task of its own, so that a
/// client dropping the connection half-way can never leave the attempt pending (it
/// would hold the account back for everyone).
pub async fn check_password(state: &AppState, email: &str, password: Password) -> Result<Checked, AppError> {
    // A place in argon2's line first: when it is full, the attempt is refused before
    // it is counted against the account or hashed.
    let place = state.hasher.reserve().inspect_err(|_| {
        metrics::counter!("behalf_throttle_hits_total", "kind" => "argon2_queue_full").increment(1);
    })?;
    let state = state.clone();
    let email = email.to_string();
    let task = tokio::spawn(async move {
        let _place = place;
        let key = account_key(&email);
        claim(&state, &key).await?;
        let (credentials, verified) = credentials::check(&state.db, &state.hasher, &email, password).await?;
        if verified && credentials.is_some() {
            clear(&state, &key).await?;
            return Ok(Checked {
                credentials,
                verified,
                failures: 0,
                locks_for: None,
            });
        }
        let (failures, locks_for) = failed(&state, &key).await?;
        Ok(Checked {
            credentials,
            verified: false,
            failures,
            locks_for,
        })
    });
    task.await.map_err(|error| {
        tracing::error!(%error, "the password check stopped");
        AppError::Internal
    })?
}

/// The password was right: the streak is over.
pub async fn clear(state: &AppState, key: &[u8]) -> Result<(), AppError> {
    with_db!(&state.db, pool => {
        sqlx::query("DELETE FROM sign_in_throttle WHERE key_hash = $1")
            .bind(key)
            .execute(pool)
            .await?;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_are_free_then_the_lock_doubles_up_to_fifteen_minutes() {
        for failures in 0..FREE_ATTEMPTS {
            assert_eq!(lock_after(failures), None, "{failures}");
        }
        assert_eq!(lock_after(5), Some(30 * SECOND));
        assert_eq!(lock_after(6), Some(MINUTE));
        assert_eq!(lock_after(7), Some(2 * MINUTE));
        assert_eq!(lock_after(9), Some(8 * MINUTE));
        assert_eq!(lock_after(10), Some(LONGEST_LOCK));
        assert_eq!(lock_after(i64::MAX), Some(LONGEST_LOCK));
    }

    #[test]
    fn no_more_checks_run_at_once_than_could_fail_before_the_lock() {
        assert_eq!(checks_allowed(0), 5);
        assert_eq!(checks_allowed(4), 1);
        // After a lock has run out, one at a time.
        assert_eq!(checks_allowed(5), 1);
        assert_eq!(checks_allowed(12), 1);
    }

    #[test]
    fn accounts_are_keyed_by_their_email_whatever_its_case() {
        assert_eq!(account_key(" Ann@Example.com"), account_key("ann@example.com"));
        assert_ne!(account_key("ann@example.com"), account_key("bob@example.com"));
        assert_eq!(account_key("x").len(), 32);
    }

    #[test]
    fn an_ipv6_client_is_throttled_by_its_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(client_key(v4), v4);
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(seconds_until(0, 1), 1);
        assert_eq!(seconds_until(0, 30 * SECOND), 30);
        assert_eq!(seconds_until(0, 30 * SECOND + 1), 31);
        assert_eq!(seconds_until(10, 0), 1);
    }
}
