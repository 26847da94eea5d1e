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
    rule::{self, Grant},
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
    /// Ended because its member may no longer sign in (disabled or deleted), or, on
    /// behalf, because the rule no longer holds or someone ended it.
    Revoked,
    /// The actor left a session on behalf.
    Left,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::SignedOut => "signed_out",
            EndReason::Expired => "expired",
            EndReason::Replaced => "replaced",
            EndReason::Revoked => "revoked",
            EndReason::Left => "left",
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
    /// Set when this is a session on behalf of `member`.
    pub on_behalf: Option<OnBehalf>,
}

/// The real person behind a session on behalf, and how it came about.
#[derive(Clone, Debug)]
pub struct OnBehalf {
    pub actor: MemberRow,
    /// The actor's own session, resumed when this one ends.
    pub parent_id: i64,
    pub reason: String,
    /// Why the rule holds now (`None`: it no longer does).
    pub grant: Option<Grant>,
    /// The actor is neither deleted nor barred from signing in.
    pub actor_usable: bool,
}

impl CurrentSession {
    /// The real person acting: the actor while on behalf, else the member.
    pub fn actor(&self) -> &MemberRow {
        self.on_behalf.as_ref().map_or(&self.member, |o| &o.actor)
    }

    /// The session on behalf, if this is one.
    pub fn on_behalf_id(&self) -> Option<i64> {
        self.on_behalf.as_ref().map(|_| self.id)
    }
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
    /// Why the identity changed since the last page, to tell the person once.
    pub notice: Option<Notice>,
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
    cookie_from_headers(headers, COOKIE_NAME)
}

/// The value of cookie `name` from the `Cookie` headers, if one is there.
pub fn cookie_from_headers(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_string())
}

/// A one-time notice carried to the next page (after a redirect) in this cookie.
pub const NOTICE_COOKIE: &str = "behalf_notice";

/// Sets the notice cookie for five minutes, or (with `None`) clears it.
pub fn notice_cookie(notice: Option<Notice>, https: bool) -> String {
    let (value, max_age) = match notice {
        Some(notice) => (notice.code(), CookieDuration::minutes(5)),
        None => ("", CookieDuration::ZERO),
    };
    Cookie::build((NOTICE_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(https)
        .path("/")
        .max_age(max_age)
        .build()
        .to_string()
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
    actor_id: Option<i64>,
    parent_id: Option<i64>,
    reason: Option<String>,
    email: String,
    display_name: String,
    role: String,
    admin_access: bool,
    login_enabled: bool,
    deleted_at: Option<i64>,
    member_created_at: i64,
    last_sign_in_at: Option<i64>,
    actor_email: Option<String>,
    actor_name: Option<String>,
    actor_role: Option<String>,
    actor_admin_access: Option<bool>,
    actor_login_enabled: Option<bool>,
    actor_deleted_at: Option<i64>,
    actor_created_at: Option<i64>,
    actor_last_sign_in_at: Option<i64>,
    parent_ended_at: Option<i64>,
    parent_idle_expires_at: Option<i64>,
    parent_absolute_expires_at: Option<i64>,
    explicit_grant: i64,
}

/// One round trip loads the session, its member and, for a session on behalf, the
/// actor, the actor's own (parent) session and the explicit grant: everything the
/// rule needs to be re-checked on every request.
const LOOKUP: &str = "SELECT s.id, s.member_id, s.created_at, s.last_seen_at, s.idle_expires_at, \
     s.absolute_expires_at, s.ended_at, s.actor_id, s.parent_id, s.reason, m.email, m.display_name, m.role, \
     m.admin_access, m.login_enabled, m.deleted_at, m.created_at AS member_created_at, m.last_sign_in_at, \
     a.email AS actor_email, a.display_name AS actor_name, a.role AS actor_role, \
     a.admin_access AS actor_admin_access, a.login_enabled AS actor_login_enabled, \
     a.deleted_at AS actor_deleted_at, a.created_at AS actor_created_at, \
     a.last_sign_in_at AS actor_last_sign_in_at, p.ended_at AS parent_ended_at, \
     p.idle_expires_at AS parent_idle_expires_at, p.absolute_expires_at AS parent_absolute_expires_at, \
     (SELECT COUNT(*) FROM proxy_permissions g WHERE g.member_id = s.member_id AND g.actor_id = s.actor_id) \
     AS explicit_grant \
     FROM sessions s JOIN members m ON m.id = s.member_id \
     LEFT JOIN members a ON a.id = s.actor_id LEFT JOIN sessions p ON p.id = s.parent_id \
     WHERE s.token_hash = $1";

/// What the session cookie turned out to be.
#[derive(Debug, Default)]
pub struct Lookup {
    pub session: Option<CurrentSession>,
    /// A session on behalf ended on this request and the actor's own session took
    /// its place: the browser gets this new token.
    pub reissued: Option<Token>,
    /// Why the identity changed on this request, to tell the person.
    pub notice: Option<Notice>,
    /// The cookie names no usable session and should be cleared.
    pub stale: bool,
}

/// Why a session on behalf ended without its actor asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    OnBehalfExpired,
    OnBehalfRevoked,
}

impl Notice {
    pub fn code(self) -> &'static str {
        match self {
            Notice::OnBehalfExpired => "on_behalf_expired",
            Notice::OnBehalfRevoked => "on_behalf_revoked",
        }
    }

    pub fn parse(code: &str) -> Option<Notice> {
        [Notice::OnBehalfExpired, Notice::OnBehalfRevoked]
            .into_iter()
            .find(|n| n.code() == code)
    }

    pub fn message(self) -> &'static str {
        match self {
            Notice::OnBehalfExpired => {
                "Your session on behalf of another member has ended: its time was up. You are acting as yourself again."
            }
            Notice::OnBehalfRevoked => {
                "Your session on behalf of another member has ended: it was revoked, or the permission that allowed it no longer holds. You are acting as yourself again."
            }
        }
    }
}

/// Finds the live session for `token`, ending it on the way if it has expired or its
/// member may no longer sign in. A session on behalf is also ended when the rule no
/// longer holds; the actor then gets their own session back (with a new token).
#[tracing::instrument(skip_all)]
pub async fn find_live(state: &AppState, token: &str) -> Result<Lookup, AppError> {
    let stale = Lookup {
        stale: true,
        ..Lookup::default()
    };
    if !token::is_well_formed(token) {
        return Ok(stale);
    }
    let hash = token::hash_token(token);
    let row: Option<SessionLookup> = with_db!(&state.db, pool => {
        sqlx::query_as(LOOKUP).bind(&hash).fetch_optional(pool).await?
    });
    let Some(row) = row else { return Ok(stale) };
    let now = state.clock.now();
    let Some(role) = Role::parse(&row.role) else {
        tracing::error!(member = row.member_id, role = %row.role, "member has an unknown role");
        return Err(AppError::Internal);
    };
    let member = MemberRow {
        id: row.member_id,
        email: row.email.clone(),
        display_name: row.display_name.clone(),
        role,
        admin_access: row.admin_access,
        login_enabled: row.login_enabled,
        created_at: row.member_created_at,
        last_sign_in_at: row.last_sign_in_at,
    };
    let liveness = liveness(now, row.ended_at, row.idle_expires_at, row.absolute_expires_at);
    let on_behalf = match (row.actor_id, row.parent_id) {
        (Some(actor_id), Some(parent_id)) => Some(on_behalf_of(&row, actor_id, parent_id, &member)?),
        _ => None,
    };
    if let Some(on_behalf) = on_behalf {
        return find_live_on_behalf(state, &row, &hash, liveness, member, on_behalf).await;
    }
    match liveness {
        Liveness::Ended => return Ok(stale),
        Liveness::IdleExpired | Liveness::LifetimeExpired => {
            end_session(state, row.id, EndReason::Expired, None).await?;
            return Ok(stale);
        }
        Liveness::Live => {}
    }
    if row.deleted_at.is_some() || !row.login_enabled {
        end_session(state, row.id, EndReason::Revoked, None).await?;
        return Ok(stale);
    }
    let idle_expires_at = touch(state, now, &row, None).await?;
    Ok(Lookup {
        session: Some(CurrentSession {
            id: row.id,
            created_at: row.created_at,
            idle_expires_at,
            absolute_expires_at: row.absolute_expires_at,
            member,
            on_behalf: None,
        }),
        ..Lookup::default()
    })
}

fn on_behalf_of(
    row: &SessionLookup,
    actor_id: i64,
    parent_id: i64,
    member: &MemberRow,
) -> Result<OnBehalf, AppError> {
    let actor_role = row.actor_role.as_deref().and_then(Role::parse);
    let (Some(actor_role), Some(actor_name), Some(actor_email)) =
        (actor_role, row.actor_name.clone(), row.actor_email.clone())
    else {
        tracing::error!(session = row.id, "session on behalf without a readable actor");
        return Err(AppError::Internal);
    };
    let grant = rule::can_log_in_on_behalf(
        &rule::Actor {
            id: actor_id,
            role: actor_role,
            on_behalf: false,
        },
        Some(&rule::Target {
            id: member.id,
            role: member.role,
            deleted: row.deleted_at.is_some(),
            login_enabled: member.login_enabled,
            grants_actor: row.explicit_grant > 0,
        }),
    );
    Ok(OnBehalf {
        actor: MemberRow {
            id: actor_id,
            email: actor_email,
            display_name: actor_name,
            role: actor_role,
            admin_access: row.actor_admin_access.unwrap_or(false),
            login_enabled: row.actor_login_enabled.unwrap_or(false),
            created_at: row.actor_created_at.unwrap_or_default(),
            last_sign_in_at: row.actor_last_sign_in_at,
        },
        parent_id,
        reason: row.reason.clone().unwrap_or_default(),
        grant: grant.ok(),
        actor_usable: row.actor_deleted_at.is_none() && row.actor_login_enabled == Some(true),
    })
}

async fn find_live_on_behalf(
    state: &AppState,
    row: &SessionLookup,
    hash: &[u8],
    liveness: Liveness,
    member: MemberRow,
    on_behalf: OnBehalf,
) -> Result<Lookup, AppError> {
    let now = state.clock.now();
    let parent_liveness = match (row.parent_idle_expires_at, row.parent_absolute_expires_at) {
        (Some(idle), Some(absolute)) => self::liveness(now, row.parent_ended_at, idle, absolute),
        _ => Liveness::Ended,
    };
    let parent_usable = parent_liveness == Liveness::Live && on_behalf.actor_usable;
    let ending = match liveness {
        Liveness::Ended => Some((EndReason::Revoked, Notice::OnBehalfRevoked)),
        Liveness::IdleExpired | Liveness::LifetimeExpired => {
            Some((EndReason::Expired, Notice::OnBehalfExpired))
        }
        Liveness::Live if on_behalf.grant.is_none() || !parent_usable => {
            Some((EndReason::Revoked, Notice::OnBehalfRevoked))
        }
        Liveness::Live => None,
    };
    let Some((reason, notice)) = ending else {
        let idle_expires_at = touch(state, now, row, Some(on_behalf.parent_id)).await?;
        return Ok(Lookup {
            session: Some(CurrentSession {
                id: row.id,
                created_at: row.created_at,
                idle_expires_at,
                absolute_expires_at: row.absolute_expires_at,
                member,
                on_behalf: Some(on_behalf),
            }),
            ..Lookup::default()
        });
    };
    tracing::info!(
        session = row.id,
        reason = reason.as_str(),
        "session on behalf over"
    );
    let parent_end = match parent_liveness {
        Liveness::Live if !on_behalf.actor_usable => Some(EndReason::Revoked),
        Liveness::Live | Liveness::Ended => None,
        Liveness::IdleExpired | Liveness::LifetimeExpired => Some(EndReason::Expired),
    };
    let ended = EndOnBehalf {
        session_id: row.id,
        member_id: member.id,
        actor_id: on_behalf.actor.id,
        parent_id: on_behalf.parent_id,
        reason,
        token_hash: Some(hash.to_vec()),
        resume_parent: parent_usable,
        parent_end,
        event_context: None,
    };
    match end_on_behalf(state, ended).await? {
        // Another request with the same cookie got there first: leave its cookie be.
        EndOutcome::AlreadyTaken => Ok(Lookup::default()),
        EndOutcome::Ended { parent_token } => {
            let session = match &parent_token {
                Some(_) => Some(CurrentSession {
                    id: on_behalf.parent_id,
                    created_at: row.created_at,
                    idle_expires_at: next_idle_expiry(
                        now,
                        state.settings.session_idle_timeout,
                        row.parent_absolute_expires_at.unwrap_or(now),
                    ),
                    absolute_expires_at: row.parent_absolute_expires_at.unwrap_or(now),
                    member: on_behalf.actor,
                    on_behalf: None,
                }),
                None => None,
            };
            Ok(Lookup {
                stale: session.is_none(),
                session,
                reissued: parent_token,
                notice: Some(notice),
            })
        }
    }
}

/// Writes activity back (at most once per interval), to the actor's own session too
/// while on behalf. Returns the session's idle expiry.
async fn touch(
    state: &AppState,
    now: Millis,
    row: &SessionLookup,
    parent: Option<i64>,
) -> Result<Millis, AppError> {
    let idle_timeout = state.settings.session_idle_timeout;
    if !needs_touch(now, row.last_seen_at, idle_timeout) {
        return Ok(row.idle_expires_at);
    }
    let idle_expires_at = next_idle_expiry(now, idle_timeout, row.absolute_expires_at);
    with_db!(&state.db, pool => {
        sqlx::query(
            "UPDATE sessions SET last_seen_at = $1, \
             idle_expires_at = CASE WHEN $1 + $2 < absolute_expires_at THEN $1 + $2 ELSE absolute_expires_at END \
             WHERE id IN ($3, $4) AND ended_at IS NULL",
        )
        .bind(now)
        .bind(idle_timeout)
        .bind(row.id)
        .bind(parent.unwrap_or(row.id))
        .execute(pool)
        .await?;
    });
    Ok(idle_expires_at)
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
    /// End the actor's own session too, for this reason.
    pub parent_end: Option<EndReason>,
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
            event_context: Some(request.clone()),
        }
    }
}

pub enum EndOutcome {
    AlreadyTaken,
    Ended { parent_token: Option<Token> },
}

/// Ends a session on behalf in one transaction: the session row (its token forgotten,
/// so the cookie can never be used again), the `on_behalf_end` record, and then either
/// a fresh token for the actor's own session or the end of that one too.
pub async fn end_on_behalf(state: &AppState, end: EndOnBehalf) -> Result<EndOutcome, AppError> {
    let now = state.clock.now();
    let parent_token = end.resume_parent.then(Token::generate);
    let parent_hash = parent_token.as_ref().map(|t| t.hash());
    let parent_idle = next_idle_expiry(now, state.settings.session_idle_timeout, i64::MAX);
    let context = end.event_context.clone().unwrap_or_default();
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let taken = sqlx::query(
            "UPDATE sessions SET token_hash = NULL WHERE id = $1 AND token_hash IS NOT NULL \
             AND ($2 IS NULL OR token_hash = $2)",
        )
        .bind(end.session_id)
        .bind(end.token_hash.as_deref())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if taken == 0 {
            return Ok(EndOutcome::AlreadyTaken);
        }
        let ended = sqlx::query("UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL")
            .bind(now)
            .bind(end.reason.as_str())
            .bind(end.session_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if ended {
            let event = NewEvent::new("on_behalf_end", &context)
                .actor(end.actor_id)
                .subject(end.member_id)
                .on_behalf(end.session_id)
                .object("session", end.session_id)
                .details(serde_json::json!({ "reason": end.reason.as_str(), "ended_at": now }));
            tx.append_audit(now, event).await?;
        }
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
            sqlx::query("UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL")
                .bind(now)
                .bind(reason.as_str())
                .bind(end.parent_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(EndOutcome::Ended {
            parent_token: parent_token.filter(|_| resumed),
        })
    })
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
    fn the_notice_cookie_lives_five_minutes_and_can_be_cleared() {
        let set = notice_cookie(Some(Notice::OnBehalfExpired), true);
        assert!(set.starts_with("behalf_notice=on_behalf_expired"), "{set}");
        for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=300", "Secure"] {
            assert!(set.contains(flag), "{set} lacks {flag}");
        }
        let cleared = notice_cookie(None, false);
        assert!(
            cleared.starts_with("behalf_notice=;") && cleared.contains("Max-Age=0"),
            "{cleared}"
        );
        assert!(!cleared.contains("Secure"));
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
