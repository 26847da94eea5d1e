//! Resolving the session cookie on every request: one query loads the session, its
//! member and, for a session on behalf, the actor, the actor's own (parent) session
//! and the explicit grant, so the rule is re-checked on every request.

use crate::{
    audit_writer::NewEvent,
    clock::Millis,
    context::{AccountUse, CurrentSession, MemberRow, Notice, OnBehalf, RequestContext},
    db::stored_role,
    db::with_db,
    error::AppError,
    mode::Mode,
    rule,
    session::{
        liveness, needs_touch, next_idle_expiry,
        store::{end_on_behalf, end_session, EndOnBehalf, EndOutcome},
        token::{self, Token},
        EndReason, Liveness,
    },
    state::AppState,
};

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
    mode: Option<String>,
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
    self_written_grant: i64,
    role_grants: String,
    member_grant: Option<i64>,
    end_reason: Option<String>,
    someone_in: i64,
}

/// One round trip loads the session, its member and, for a session on behalf, the
/// actor, the actor's own (parent) session and the explicit grant: everything the
/// rule needs to be re-checked on every request.
/// The lookup's query (built once): `LOOKUP`, the member's consent inputs to the rule
/// (their setting, and — for a session on behalf only — the actor's live member
/// grant at `$2`), and why the session ended.
fn lookup_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| lookup_where("s.token_hash = $1"))
}

/// The lookup's query for the sessions `WHERE` says (with `$1`; the time is `$2`).
fn lookup_where(condition: &str) -> String {
    format!(
        "{LOOKUP}, m.role_grants, CASE WHEN s.actor_id IS NULL THEN NULL ELSE {} END AS member_grant, \
         s.end_reason, CASE WHEN s.actor_id IS NULL THEN {SOMEONE_IN} ELSE 0 END AS someone_in \
         {LOOKUP_FROM} WHERE {condition}",
        crate::grant::member_grant_sql("s.member_id", "s.actor_id", "$2")
    )
}

/// The live sessions on behalf of member `$1` (expired ones are the lookup's to end,
/// as `expired`), for `no_longer_allowed`.
fn on_behalf_of_member_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        lookup_where(
            "s.member_id = $1 AND s.actor_id IS NOT NULL AND s.ended_at IS NULL AND s.token_hash IS NOT NULL \
             AND s.idle_expires_at > $2 AND s.absolute_expires_at > $2",
        )
    })
}

const LOOKUP: &str = "SELECT s.id, s.member_id, s.created_at, s.last_seen_at, s.idle_expires_at, \
     s.absolute_expires_at, s.ended_at, s.actor_id, s.parent_id, s.reason, s.mode, m.email, m.display_name, m.role, \
     m.admin_access, m.login_enabled, m.deleted_at, m.created_at AS member_created_at, m.last_sign_in_at, \
     a.email AS actor_email, a.display_name AS actor_name, a.role AS actor_role, \
     a.admin_access AS actor_admin_access, a.login_enabled AS actor_login_enabled, \
     a.deleted_at AS actor_deleted_at, a.created_at AS actor_created_at, \
     a.last_sign_in_at AS actor_last_sign_in_at, p.ended_at AS parent_ended_at, \
     p.idle_expires_at AS parent_idle_expires_at, p.absolute_expires_at AS parent_absolute_expires_at, \
     (SELECT COUNT(*) FROM proxy_permissions g WHERE g.member_id = s.member_id AND g.actor_id = s.actor_id) \
     AS explicit_grant, \
     (SELECT COUNT(*) FROM proxy_permissions g WHERE g.member_id = s.member_id AND g.actor_id = s.actor_id \
      AND g.granted_by = s.actor_id) AS self_written_grant";

/// For the member's own session: how many live sessions on their behalf there are (at
/// most one is counted: on the `sessions_member` index), so that `whoami` lists them,
/// in a query of its own, only when someone is in.
const SOMEONE_IN: &str = "(SELECT COUNT(*) FROM (SELECT 1 FROM sessions o WHERE o.member_id = s.member_id \
     AND o.ended_at IS NULL AND o.actor_id IS NOT NULL AND o.token_hash IS NOT NULL \
     AND o.idle_expires_at > $2 AND o.absolute_expires_at > $2 LIMIT 1) AS live)";

/// What `LOOKUP` reads from (the time is bound as `$2`).
const LOOKUP_FROM: &str = "FROM sessions s JOIN members m ON m.id = s.member_id \
     LEFT JOIN members a ON a.id = s.actor_id LEFT JOIN sessions p ON p.id = s.parent_id";

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
    /// The cookie named a session on behalf that is over (ended by this request or
    /// by another one): the request acts as no one, so a server function is refused
    /// with `on_behalf_ended` rather than carried out as the actor.
    pub ended_on_behalf: bool,
    /// The session cookie came twice, so neither was used: these `Set-Cookie` values
    /// clear both.
    pub clearing: Vec<String>,
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
        sqlx::query_as(lookup_sql()).bind(&hash).bind(state.clock.now()).fetch_optional(pool).await?
    });
    let Some(row) = row else {
        return ended_on_behalf(state, &hash).await.map(|ended| {
            if ended {
                Lookup {
                    ended_on_behalf: true,
                    notice: Some(Notice::OnBehalfRevoked),
                    ..Lookup::default()
                }
            } else {
                stale
            }
        });
    };
    let now = state.clock.now();
    let member = member_of(&row)?;
    let liveness = liveness(now, row.ended_at, row.idle_expires_at, row.absolute_expires_at);
    let on_behalf = match (row.actor_id, row.parent_id) {
        (Some(actor_id), Some(parent_id)) => {
            Some(on_behalf_of(&row, actor_id, parent_id, &member, &state.settings)?)
        }
        _ => None,
    };
    if let Some(on_behalf) = on_behalf {
        return find_live_on_behalf(state, &row, &hash, liveness, member, on_behalf).await;
    }
    match liveness {
        Liveness::Ended => return Ok(stale),
        Liveness::IdleExpired | Liveness::LifetimeExpired => {
            end_session(state, row.id, EndReason::Expired, ended_by_lookup(&member)).await?;
            return Ok(stale);
        }
        Liveness::Live => {}
    }
    if row.deleted_at.is_some() || !row.login_enabled {
        end_session(state, row.id, EndReason::Revoked, ended_by_lookup(&member)).await?;
        return Ok(stale);
    }
    found_live(state, now, &row, member, None).await
}

/// The session's member, as the request sees them.
fn member_of(row: &SessionLookup) -> Result<MemberRow, AppError> {
    Ok(MemberRow {
        id: row.member_id,
        email: row.email.clone(),
        display_name: row.display_name.clone(),
        role: stored_role(row.member_id, &row.role)?,
        admin_access: row.admin_access,
        login_enabled: row.login_enabled,
        created_at: row.member_created_at,
        last_sign_in_at: row.last_sign_in_at,
    })
}

/// The live sessions on behalf of `member` that the rule, re-checked as the lookup
/// does, no longer allows (a grant revoked or expired, Ask me first turned on): their
/// IDs and actors, for `recheck::end_no_longer_allowed`.
pub(super) async fn no_longer_allowed(state: &AppState, member: i64) -> Result<Vec<(i64, i64)>, AppError> {
    let rows: Vec<SessionLookup> = with_db!(&state.db, pool => {
        sqlx::query_as(on_behalf_of_member_sql())
            .bind(member)
            .bind(state.clock.now())
            .fetch_all(pool)
            .await?
    });
    let mut over = Vec::new();
    for row in rows {
        let (Some(actor_id), Some(parent_id)) = (row.actor_id, row.parent_id) else {
            continue;
        };
        let on_behalf = on_behalf_of(&row, actor_id, parent_id, &member_of(&row)?, &state.settings)?;
        if on_behalf.grant.is_none() {
            over.push((row.id, actor_id));
        }
    }
    Ok(over)
}

/// The session found live: its activity written back (`touch`), and handed to the
/// request.
async fn found_live(
    state: &AppState,
    now: Millis,
    row: &SessionLookup,
    member: MemberRow,
    on_behalf: Option<OnBehalf>,
) -> Result<Lookup, AppError> {
    let mut session = CurrentSession {
        id: row.id,
        created_at: row.created_at,
        idle_expires_at: row.idle_expires_at,
        absolute_expires_at: row.absolute_expires_at,
        member,
        on_behalf,
        someone_in: row.someone_in > 0,
    };
    session.idle_expires_at = touch(state, now, row, &session).await?;
    Ok(Lookup {
        session: Some(session),
        ..Lookup::default()
    })
}

/// True when `hash` was the token of a session on behalf that has ended. Its cookie
/// is not cleared: the browser may hold the actor's own new one by the time this
/// answer arrives, and a late request must not sign them out.
async fn ended_on_behalf(state: &AppState, hash: &[u8]) -> Result<bool, AppError> {
    let found: Option<(i64,)> = with_db!(&state.db, pool => {
        sqlx::query_as("SELECT id FROM sessions WHERE ended_token_hash = $1")
            .bind(hash)
            .fetch_optional(pool)
            .await?
    });
    Ok(found.is_some())
}

/// The record of a member's own session found over (expired, or its member may no
/// longer sign in) by the lookup, not asked for by anyone.
fn ended_by_lookup(member: &MemberRow) -> NewEvent {
    crate::session::store::session_ended(member.id, &RequestContext::default())
}

fn on_behalf_of(
    row: &SessionLookup,
    actor_id: i64,
    parent_id: i64,
    member: &MemberRow,
    settings: &crate::state::Settings,
) -> Result<OnBehalf, AppError> {
    let (act_min_role, consent_required) = (settings.act_min_role, settings.consent_required);
    let (Some(actor_role), Some(actor_name), Some(actor_email)) = (
        row.actor_role.as_deref(),
        row.actor_name.clone(),
        row.actor_email.clone(),
    ) else {
        tracing::error!(session = row.id, "session on behalf without a readable actor");
        return Err(AppError::Internal);
    };
    let actor_role = stored_role(actor_id, actor_role)?;
    let grant = rule::can_log_in_on_behalf(
        &rule::Actor {
            id: actor_id,
            role: actor_role,
            admin_access: row.actor_admin_access == Some(true),
            on_behalf: false,
        },
        Some(&rule::Target {
            id: member.id,
            role: member.role,
            deleted: row.deleted_at.is_some(),
            login_enabled: member.login_enabled,
            grants_actor: row.explicit_grant > 0,
            grant_written_by_actor: row.self_written_grant > 0,
            asks_first: crate::grant::asks_first(&row.role_grants, consent_required),
            member_grant: crate::grant::grant_mode(row.member_grant),
        }),
    );
    // The mode is re-checked with the rule: a session that may no longer act views.
    let may_act = grant.is_ok_and(|grant| rule::may_act(actor_role, grant, act_min_role));
    let stored = row.mode.as_deref().and_then(Mode::parse).unwrap_or_default();
    let act_lost = stored == Mode::Act && !may_act;
    Ok(OnBehalf {
        mode: if act_lost { Mode::View } else { stored },
        may_act,
        act_lost,
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
        Liveness::Ended if row.end_reason.as_deref() == Some(EndReason::EndedByMember.as_str()) => {
            Some((EndReason::EndedByMember, Notice::OnBehalfEndedByMember))
        }
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
        let act_lost = on_behalf.act_lost;
        let mut found = found_live(state, now, row, member, Some(on_behalf)).await?;
        if act_lost {
            found.notice = fall_back_to_viewing(state, row.id).await?;
        }
        return Ok(found);
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
        parent_event: None,
        event_context: None,
    };
    match end_on_behalf(state, ended).await? {
        // Another request with the same cookie got there first: leave its cookie be.
        EndOutcome::AlreadyTaken => Ok(Lookup {
            ended_on_behalf: true,
            ..Lookup::default()
        }),
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
                    // Not looked up for the actor's own session: `whoami` looks.
                    someone_in: true,
                }),
                None => None,
            };
            Ok(Lookup {
                stale: session.is_none(),
                session,
                reissued: parent_token,
                notice: Some(notice),
                ended_on_behalf: true,
                clearing: Vec::new(),
            })
        }
    }
}

/// A session on behalf that was acting, whose actor may no longer act (their role,
/// their grant or `--act-min-role` changed), views only from now on: its mode is
/// written back, so acting again takes an elevation (password and reason) even if
/// the actor may act again later. The request that makes the change says so once.
async fn fall_back_to_viewing(state: &AppState, session_id: i64) -> Result<Option<Notice>, AppError> {
    let changed = with_db!(&state.db, pool => {
        sqlx::query("UPDATE sessions SET mode = 'view' WHERE id = $1 AND mode = 'act' AND ended_at IS NULL")
            .bind(session_id)
            .execute(pool)
            .await?
            .rows_affected()
    });
    if changed == 1 {
        tracing::info!(
            session = session_id,
            "session on behalf may no longer act: view only now"
        );
    }
    Ok((changed == 1).then_some(Notice::OnBehalfActLost))
}

/// Writes activity back (at most once per interval). Which rows move is the
/// context's switch (`CurrentSession::account_use`): the member's own use moves their
/// own session; a use on their behalf moves the session on behalf and the actor's own
/// (parked) session — never one of the member's own sessions. Returns the session's
/// idle expiry.
async fn touch(
    state: &AppState,
    now: Millis,
    row: &SessionLookup,
    session: &CurrentSession,
) -> Result<Millis, AppError> {
    let idle_timeout = state.settings.session_idle_timeout;
    if !needs_touch(now, row.last_seen_at, idle_timeout) {
        return Ok(row.idle_expires_at);
    }
    let other = match session.account_use() {
        AccountUse::Own => row.id,
        AccountUse::OnBehalf { .. } => session.on_behalf.as_ref().map_or(row.id, |o| o.parent_id),
    };
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
        .bind(other)
        .execute(pool)
        .await?;
    });
    Ok(idle_expires_at)
}
