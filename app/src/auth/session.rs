//! Database sessions: lookup on every request, expiry, creation and ending.
//! The cookie holds a random token; the row holds its hash.

use axum::http::{header, HeaderMap};
use cookie::{time::Duration as CookieDuration, Cookie, SameSite};

use crate::{
    audit::service::{AuditTx, NewEvent},
    auth::token::{self, Token},
    clock::{Millis, MINUTE, SECOND},
    db::BeginWrite,
    error::AppError,
    members::{service::MemberRow, Role},
    state::{AppState, Settings},
    with_db,
};

pub const COOKIE_NAME: &str = "behalf_session";

/// Why a session ended; stored in `sessions.end_reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    SignedOut,
    Expired,
    /// A new sign-in from the same browser replaced it.
    Replaced,
    /// Ended because its member may no longer sign in (disabled or deleted).
    Revoked,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::SignedOut => "signed_out",
            EndReason::Expired => "expired",
            EndReason::Replaced => "replaced",
            EndReason::Revoked => "revoked",
        }
    }
}

/// The signed-in session of the current request.
#[derive(Clone, Debug)]
pub struct CurrentSession {
    pub id: i64,
    pub member: MemberRow,
    pub created_at: Millis,
    pub idle_expires_at: Millis,
    pub absolute_expires_at: Millis,
}

/// What the server learned about the request before any page or server function ran.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub session: Option<CurrentSession>,
    /// True when the browser sent a session cookie we could not honour (to clear it).
    pub stale_cookie: bool,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// True when the request reached us over https (directly or via a proxy).
    pub https: bool,
}

impl RequestContext {
    pub fn require_session(&self) -> Result<&CurrentSession, AppError> {
        self.session.as_ref().ok_or(AppError::Unauthenticated)
    }

    /// A session whose member may use the management screens.
    pub fn require_admin(&self) -> Result<&CurrentSession, AppError> {
        let session = self.require_session()?;
        if !session.member.admin_access {
            return Err(AppError::forbidden(
                "You do not have access to the management screens.",
            ));
        }
        Ok(session)
    }
}

// ---- expiry arithmetic (pure) -----------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Live,
    Ended,
    IdleExpired,
    LifetimeExpired,
}

/// Whether a session row is still usable at `now`.
pub fn liveness(
    now: Millis,
    ended_at: Option<Millis>,
    idle_expires_at: Millis,
    absolute_expires_at: Millis,
) -> Liveness {
    if ended_at.is_some() {
        Liveness::Ended
    } else if now >= absolute_expires_at {
        Liveness::LifetimeExpired
    } else if now >= idle_expires_at {
        Liveness::IdleExpired
    } else {
        Liveness::Live
    }
}

/// The idle expiry after activity at `now`: never past the absolute expiry.
pub fn next_idle_expiry(now: Millis, idle_timeout: Millis, absolute_expires_at: Millis) -> Millis {
    now.saturating_add(idle_timeout).min(absolute_expires_at)
}

/// Activity is written back at most once a minute (or a tenth of the idle timeout,
/// if that is shorter), so a busy page does not turn every request into a write.
pub fn needs_touch(now: Millis, last_seen_at: Millis, idle_timeout: Millis) -> bool {
    let interval = (idle_timeout / 10).clamp(SECOND, MINUTE);
    now - last_seen_at >= interval
}

// ---- cookies ------------------------------------------------------------------------

pub fn session_cookie(token: &Token, https: bool, lifetime: Millis) -> String {
    Cookie::build((COOKIE_NAME, token.expose().to_string()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https)
        .path("/")
        .max_age(CookieDuration::seconds(lifetime / SECOND))
        .build()
        .to_string()
}

pub fn clearing_cookie(https: bool) -> String {
    Cookie::build((COOKIE_NAME, ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https)
        .path("/")
        .max_age(CookieDuration::ZERO)
        .build()
        .to_string()
}

/// The session token from the `Cookie` headers, if one is there.
pub fn token_from_headers(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == COOKIE_NAME)
        .map(|cookie| cookie.value().to_string())
}

// ---- database -----------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct SessionLookup {
    id: i64,
    member_id: i64,
    created_at: i64,
    last_seen_at: i64,
    idle_expires_at: i64,
    absolute_expires_at: i64,
    ended_at: Option<i64>,
    email: String,
    display_name: String,
    role: String,
    admin_access: bool,
    login_enabled: bool,
    deleted_at: Option<i64>,
    member_created_at: i64,
    last_sign_in_at: Option<i64>,
}

const LOOKUP: &str = "SELECT s.id, s.member_id, s.created_at, s.last_seen_at, s.idle_expires_at, \
     s.absolute_expires_at, s.ended_at, m.email, m.display_name, m.role, m.admin_access, \
     m.login_enabled, m.deleted_at, m.created_at AS member_created_at, m.last_sign_in_at \
     FROM sessions s JOIN members m ON m.id = s.member_id WHERE s.token_hash = $1";

/// Finds the live session for `token`, ending it on the way if it has expired or its
/// member may no longer sign in. `None` for anything that is not a live session.
#[tracing::instrument(skip_all)]
pub async fn find_live(state: &AppState, token: &str) -> Result<Option<CurrentSession>, AppError> {
    if !token::is_well_formed(token) {
        return Ok(None);
    }
    let hash = token::hash_token(token);
    let row: Option<SessionLookup> = with_db!(&state.db, pool => {
        sqlx::query_as(LOOKUP).bind(&hash).fetch_optional(pool).await?
    });
    let Some(row) = row else { return Ok(None) };
    let now = state.clock.now();
    match liveness(now, row.ended_at, row.idle_expires_at, row.absolute_expires_at) {
        Liveness::Ended => return Ok(None),
        Liveness::IdleExpired | Liveness::LifetimeExpired => {
            end_session(state, row.id, EndReason::Expired, None).await?;
            return Ok(None);
        }
        Liveness::Live => {}
    }
    let Some(role) = Role::parse(&row.role) else {
        tracing::error!(member = row.member_id, role = %row.role, "member has an unknown role");
        return Err(AppError::Internal);
    };
    if row.deleted_at.is_some() || !row.login_enabled {
        end_session(state, row.id, EndReason::Revoked, None).await?;
        return Ok(None);
    }
    let mut idle_expires_at = row.idle_expires_at;
    let idle_timeout = state.settings.session_idle_timeout;
    if needs_touch(now, row.last_seen_at, idle_timeout) {
        idle_expires_at = next_idle_expiry(now, idle_timeout, row.absolute_expires_at);
        with_db!(&state.db, pool => {
            sqlx::query("UPDATE sessions SET last_seen_at = $1, idle_expires_at = $2 WHERE id = $3 AND ended_at IS NULL")
                .bind(now)
                .bind(idle_expires_at)
                .bind(row.id)
                .execute(pool)
                .await?;
        });
    }
    Ok(Some(CurrentSession {
        id: row.id,
        created_at: row.created_at,
        idle_expires_at,
        absolute_expires_at: row.absolute_expires_at,
        member: MemberRow {
            id: row.member_id,
            email: row.email,
            display_name: row.display_name,
            role,
            admin_access: row.admin_access,
            login_enabled: row.login_enabled,
            created_at: row.member_created_at,
            last_sign_in_at: row.last_sign_in_at,
        },
    }))
}

/// Ends a session if it is still open, recording `event` (if any) in the same
/// transaction. Returns whether it was open.
pub async fn end_session(
    state: &AppState,
    session_id: i64,
    reason: EndReason,
    event: Option<NewEvent>,
) -> Result<bool, AppError> {
    let now = state.clock.now();
    let ended = with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let ended = sqlx::query("UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL")
            .bind(now)
            .bind(reason.as_str())
            .bind(session_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if let (true, Some(event)) = (ended, event) {
            tx.append_audit(now, event.object("session", session_id)).await?;
        }
        tx.commit().await?;
        ended
    });
    Ok(ended)
}

/// A new session for `member_id` signing in as themselves. In one transaction it
/// ends `replacing` (the browser's previous session, if any), inserts the new row,
/// records the sign-in time on the member and appends the `sign_in` audit record.
pub async fn start_own_session(
    state: &AppState,
    member_id: i64,
    replacing: Option<i64>,
    context: &RequestContext,
) -> Result<Token, AppError> {
    let now = state.clock.now();
    let settings: &Settings = &state.settings;
    let token = Token::generate();
    let absolute = now.saturating_add(settings.session_lifetime);
    let idle = next_idle_expiry(now, settings.session_idle_timeout, absolute);
    let user_agent = context.user_agent.as_deref().map(|ua| clip(ua, 512));
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        if let Some(old) = replacing {
            sqlx::query("UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL")
                .bind(now)
                .bind(EndReason::Replaced.as_str())
                .bind(old)
                .execute(&mut *tx)
                .await?;
        }
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
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE members SET last_sign_in_at = $1, sign_in_key = $1 WHERE id = $2")
            .bind(now)
            .bind(member_id)
            .execute(&mut *tx)
            .await?;
        // The search terms carry the members list's sort keys.
        sqlx::query("UPDATE member_terms SET sign_in_key = $1 WHERE member_id = $2")
            .bind(now)
            .bind(member_id)
            .execute(&mut *tx)
            .await?;
        let event = NewEvent::new("sign_in", context).actor(member_id).subject(member_id).object("session", session_id);
        tx.append_audit(now, event).await?;
        tx.commit().await?;
    });
    Ok(token)
}

fn clip(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::clock::HOUR;

    #[test]
    fn a_session_lives_until_the_first_of_its_two_expiries() {
        let (idle, absolute) = (10 * MINUTE, 2 * HOUR);
        assert_eq!(liveness(0, None, idle, absolute), Liveness::Live);
        assert_eq!(liveness(idle - 1, None, idle, absolute), Liveness::Live);
        assert_eq!(liveness(idle, None, idle, absolute), Liveness::IdleExpired);
        assert_eq!(
            liveness(absolute, None, absolute + 1, absolute),
            Liveness::LifetimeExpired
        );
        assert_eq!(liveness(0, Some(0), idle, absolute), Liveness::Ended);
    }

    #[test]
    fn activity_pushes_idle_expiry_but_never_past_the_lifetime() {
        assert_eq!(
            next_idle_expiry(1_000, 30 * MINUTE, 10 * HOUR),
            1_000 + 30 * MINUTE
        );
        assert_eq!(
            next_idle_expiry(10 * HOUR - MINUTE, 30 * MINUTE, 10 * HOUR),
            10 * HOUR
        );
        assert_eq!(next_idle_expiry(i64::MAX - 5, 30 * MINUTE, i64::MAX), i64::MAX);
    }

    #[test]
    fn activity_is_written_back_at_most_once_per_interval() {
        assert!(!needs_touch(59 * SECOND, 0, 30 * MINUTE));
        assert!(needs_touch(60 * SECOND, 0, 30 * MINUTE));
        // A short idle timeout shortens the interval to a tenth of it, at least a second.
        assert!(needs_touch(6 * SECOND, 0, MINUTE));
        assert!(!needs_touch(999, 0, 2 * SECOND));
        assert!(needs_touch(SECOND, 0, 2 * SECOND));
    }

    #[test]
    fn the_session_cookie_has_the_safe_flags() {
        let token = Token::generate();
        let cookie = session_cookie(&token, false, 12 * HOUR);
        assert!(cookie.starts_with(&format!("{COOKIE_NAME}={}", token.expose())));
        for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
            assert!(cookie.contains(flag), "{cookie} lacks {flag}");
        }
        assert!(!cookie.contains("Secure"));
        assert!(session_cookie(&token, true, HOUR).contains("Secure"));
        assert!(clearing_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn the_token_is_read_from_any_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; theme=dark"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("behalf_session=abc; b=2"),
        );
        assert_eq!(token_from_headers(&headers).as_deref(), Some("abc"));
        assert_eq!(token_from_headers(&HeaderMap::new()), None);
    }
}
