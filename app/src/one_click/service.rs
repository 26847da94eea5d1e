//! What one-click links do (server only): create, list, revoke, open (GET, never
//! consumes) and continue (POST, consumes in one conditional statement and signs the
//! member in with a fresh session, in the same transaction).

use serde_json::json;

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{record, AuditTx, NewEvent},
    clock::{format_utc, Millis, MINUTE},
    context::{CurrentSession, RequestContext},
    db::with_db,
    db::{stored_role, BeginWrite},
    error::{AppError, Refusal},
    guard::{record_refusal, refuse, require_admin},
    one_click::{CreatedLink, LinkList, OneClickLink, PATH_PREFIX},
    policy::{may_create_link, may_manage_links, may_use_admin, LinkParty},
    role::Role,
    session::{
        end_on_behalf, open_own_session,
        token::{is_well_formed, Token},
        EndOnBehalf, EndReason, OwnSession,
    },
    state::AppState,
    throttle,
};

fn no_such_member(id: i64) -> AppError {
    AppError::NotFound(format!("No member has the ID {id}."))
}

fn party_of(session: &CurrentSession) -> LinkParty {
    LinkParty {
        role: session.member.role,
        admin_access: session.member.admin_access,
    }
}

/// The first of the checks that need no database: admin access and at least the
/// support role, so that nobody below learns which member IDs exist.
fn may_use_links(session: &CurrentSession) -> Result<(), Refusal> {
    may_use_admin(session.member.admin_access)?;
    if session.member.role < Role::Support {
        return Err(Refusal::NeedsSupportRole);
    }
    Ok(())
}

const MEMBER_PARTY: &str =
    "SELECT role, admin_access, login_enabled FROM members WHERE id = $1 AND deleted_at IS NULL";

/// Creates a link for `member_id` that lasts `minutes` (the configured default when
/// `None`), with its `one_click_created` record. The token is in the answer only.
pub async fn create(
    state: &AppState,
    request: &RequestContext,
    member_id: i64,
    minutes: Option<i64>,
) -> Result<CreatedLink, AppError> {
    const REFUSED: AuditAction = AuditAction::OneClickCreateRefused;
    let object = (ObjectKind::Member, member_id.to_string());
    let session = request.require_session()?;
    // Never on behalf: a link is a way into an account, for the real person only.
    if session.on_behalf.is_some() {
        return Err(refuse(state, request, session, REFUSED, object, Refusal::NotOnBehalf).await);
    }
    if let Err(refusal) = may_use_links(session) {
        return Err(refuse(state, request, session, REFUSED, object, refusal).await);
    }
    let settings = &state.settings;
    let minutes = minutes.unwrap_or(settings.one_click_default_minutes);
    if !(1..=settings.one_click_max_minutes).contains(&minutes) {
        return Err(AppError::validation(
            "expires_in_minutes",
            format!(
                "A link lasts from 1 to {} minutes.",
                settings.one_click_max_minutes
            ),
        ));
    }
    let token = Token::generate();
    let hash = state.link_key.hash(token.expose());
    let now = state.clock.now();
    let expires_at = now.saturating_add(minutes.saturating_mul(MINUTE));
    let for_update = state.db.for_update();
    let outcome: Result<i64, AppError> = with_db!(&state.db, pool => {
        async {
            let mut tx = pool.begin_write().await?;
            // The creator's row, then the member's, stay locked (PostgreSQL) until the
            // link is in: a change to either meanwhile comes first (and is seen here) or
            // waits and then revokes the new link. The creator is read again here, not
            // taken from the session loaded when the request began.
            let me: Option<(String, bool, bool)> = sqlx::query_as(&format!("{MEMBER_PARTY}{for_update}"))
                .bind(session.member.id)
                .fetch_optional(&mut *tx)
                .await?;
            let (role, admin_access, login_enabled) = me.ok_or(AppError::Unauthenticated)?;
            if !login_enabled {
                return Err(AppError::Unauthenticated);
            }
            let creator = LinkParty {
                role: stored_role(session.member.id, &role)?,
                admin_access,
            };
            let row: Option<(String, bool, bool)> = sqlx::query_as(&format!("{MEMBER_PARTY}{for_update}"))
                .bind(member_id)
                .fetch_optional(&mut *tx)
                .await?;
            let (role, admin_access, login_enabled) = row.ok_or_else(|| no_such_member(member_id))?;
            let member = LinkParty {
                role: stored_role(member_id, &role)?,
                admin_access,
            };
            may_create_link(creator, member, login_enabled).map_err(AppError::Refused)?;
            let (outstanding,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM one_click_links WHERE member_id = $1 AND used_at IS NULL \
                 AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(member_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            if outstanding >= MAX_OUTSTANDING {
                return Err(AppError::Conflict(format!(
                    "This member already has {MAX_OUTSTANDING} outstanding one-click links: revoke some first."
                )));
            }
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO one_click_links (token_hash, member_id, created_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(&hash)
            .bind(member_id)
            .bind(session.member.id)
            .bind(now)
            .bind(expires_at)
            .fetch_one(&mut *tx)
            .await?;
            let event = NewEvent::new(AuditAction::OneClickCreated, request)
                .by(session)
                .subject(member_id)
                .object(ObjectKind::OneClickLink, id)
                .details(json!({ "expires_at": expires_at, "expires_in_minutes": minutes }));
            tx.append_audit(now, event).await?;
            tx.commit().await?;
            Ok(id)
        }
        .await
    });
    let id = record_refusal(state, request, session, REFUSED, object, outcome).await?;
    tracing::info!(
        link = id,
        member = member_id,
        creator = session.member.id,
        "one-click link created"
    );
    Ok(CreatedLink {
        link: link_view(
            id,
            member_id,
            session.member.id,
            session.member.display_name.clone(),
            now,
            expires_at,
        ),
        path: format!("{PATH_PREFIX}{member_id}/{}", token.expose()),
    })
}

fn link_view(
    id: i64,
    member_id: i64,
    created_by_id: i64,
    created_by_name: String,
    created_at: Millis,
    expires_at: Millis,
) -> OneClickLink {
    OneClickLink {
        id,
        member_id,
        created_by_id,
        created_by_name,
        created_at,
        created_at_text: format_utc(created_at),
        expires_at,
        expires_at_text: format_utc(expires_at),
    }
}

/// A member has at most this many outstanding links at once (a stolen session cannot
/// mint them without end); the list shows them all.
pub const MAX_OUTSTANDING: i64 = 20;

/// The outstanding links of `member_id`, newest first, for someone who may manage them.
pub async fn list(state: &AppState, request: &RequestContext, member_id: i64) -> Result<LinkList, AppError> {
    let session = require_admin(request)?;
    if session.on_behalf.is_some() {
        return Err(AppError::Refused(Refusal::NotOnBehalf));
    }
    may_use_links(session).map_err(AppError::Refused)?;
    let now = state.clock.now();
    type Row = (i64, i64, i64, String, i64, i64);
    let (row, links): (Option<(String, bool, bool)>, Vec<Row>) = with_db!(&state.db, pool => {
        let row = sqlx::query_as(MEMBER_PARTY).bind(member_id).fetch_optional(pool).await?;
        let links = sqlx::query_as(
            "SELECT l.id, l.member_id, l.created_by, c.display_name, l.created_at, l.expires_at \
             FROM one_click_links l JOIN members c ON c.id = l.created_by \
             WHERE l.member_id = $1 AND l.used_at IS NULL AND l.revoked_at IS NULL AND l.expires_at > $2 \
             ORDER BY l.id DESC LIMIT $3",
        )
        .bind(member_id)
        .bind(now)
        .bind(MAX_OUTSTANDING)
        .fetch_all(pool)
        .await?;
        (row, links)
    });
    let (role, admin_access, _) = row.ok_or_else(|| no_such_member(member_id))?;
    let member = LinkParty {
        role: stored_role(member_id, &role)?,
        admin_access,
    };
    may_manage_links(party_of(session), member).map_err(AppError::Refused)?;
    Ok(LinkList {
        links: links
            .into_iter()
            .map(|(id, member_id, by, name, created, expires)| {
                link_view(id, member_id, by, name, created, expires)
            })
            .collect(),
        default_minutes: state.settings.one_click_default_minutes,
        max_minutes: state.settings.one_click_max_minutes,
    })
}

/// Revokes outstanding link `id`, with its `one_click_revoked` record.
pub async fn revoke(state: &AppState, request: &RequestContext, id: i64) -> Result<(), AppError> {
    const REFUSED: AuditAction = AuditAction::OneClickRevokeRefused;
    let object = (ObjectKind::OneClickLink, id.to_string());
    let session = request.require_session()?;
    if session.on_behalf.is_some() {
        return Err(refuse(state, request, session, REFUSED, object, Refusal::NotOnBehalf).await);
    }
    if let Err(refusal) = may_use_links(session) {
        return Err(refuse(state, request, session, REFUSED, object, refusal).await);
    }
    let now = state.clock.now();
    let for_update = state.db.for_update();
    let gone = || AppError::NotFound(format!("No outstanding one-click link has the ID {id}."));
    let outcome: Result<(), AppError> = with_db!(&state.db, pool => {
        async {
            let mut tx = pool.begin_write().await?;
            let row: Option<(i64, String, bool)> = sqlx::query_as(&format!(
                "SELECT l.member_id, m.role, m.admin_access FROM one_click_links l \
                 JOIN members m ON m.id = l.member_id \
                 WHERE l.id = $1 AND l.used_at IS NULL AND l.revoked_at IS NULL AND l.expires_at > $2{for_update}"
            ))
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let (member_id, role, admin_access) = row.ok_or_else(gone)?;
            let member = LinkParty {
                role: stored_role(member_id, &role)?,
                admin_access,
            };
            // As they are now, not as the session found them when the request began.
            let me: Option<(String, bool, bool)> = sqlx::query_as(MEMBER_PARTY)
                .bind(session.member.id)
                .fetch_optional(&mut *tx)
                .await?;
            let (role, admin_access, login_enabled) = me.ok_or(AppError::Unauthenticated)?;
            if !login_enabled {
                return Err(AppError::Unauthenticated);
            }
            let revoker = LinkParty {
                role: stored_role(session.member.id, &role)?,
                admin_access,
            };
            may_manage_links(revoker, member).map_err(AppError::Refused)?;
            let revoked = sqlx::query(
                "UPDATE one_click_links SET revoked_at = $1, revoked_by = $2, revoke_reason = 'revoked' \
                 WHERE id = $3 AND used_at IS NULL AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(session.member.id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if revoked == 0 {
                return Err(gone());
            }
            let event = NewEvent::new(AuditAction::OneClickRevoked, request)
                .by(session)
                .subject(member_id)
                .object(ObjectKind::OneClickLink, id)
                .details(json!({ "reason": "revoked" }));
            tx.append_audit(now, event).await?;
            tx.commit().await?;
            Ok(())
        }
        .await
    });
    record_refusal(state, request, session, REFUSED, object, outcome).await
}

/// Whether the link in an address is usable, and if not, why (for the audit record
/// only: every failure looks the same to the person holding the link).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    Usable,
    Unknown,
    OtherMember,
    Used,
    Revoked,
    Expired,
    MemberDeleted,
    LoginDisabled,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Usable => "usable",
            LinkState::Unknown => "unknown",
            LinkState::OtherMember => "other_member",
            LinkState::Used => "used",
            LinkState::Revoked => "revoked",
            LinkState::Expired => "expired",
            LinkState::MemberDeleted => "member_deleted",
            LinkState::LoginDisabled => "not_authorized_to_log_in",
        }
    }
}

/// The parts of `/one-click/{member_id}/{token}`, or `None` when they cannot be ours.
pub fn parse_address(member_id: &str, token: &str) -> Option<(i64, String)> {
    if member_id.is_empty() || member_id.len() > 18 || !member_id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: i64 = member_id.parse().ok().filter(|id| *id > 0)?;
    is_well_formed(token).then(|| (id, token.to_string()))
}

/// What the confirmation page shows.
#[derive(Clone, Debug)]
pub struct Preview {
    pub member_id: i64,
    pub display_name: String,
    pub expires_at: Millis,
}

struct Found {
    link: i64,
    member_id: i64,
    created_by: i64,
    state: LinkState,
    display_name: String,
    expires_at: Millis,
}

/// The link with this token hash, and what state it is in for `member_id` at `now`.
async fn find(state: &AppState, member_id: i64, hash: &[u8], now: Millis) -> Result<Option<Found>, AppError> {
    type Row = (i64, i64, i64, Option<i64>, Option<i64>, i64, bool, bool, String);
    let row: Option<Row> = with_db!(&state.db, pool => {
        sqlx::query_as(
            "SELECT l.id, l.member_id, l.created_by, l.used_at, l.revoked_at, l.expires_at, m.login_enabled, \
             m.deleted_at IS NOT NULL, m.display_name \
             FROM one_click_links l JOIN members m ON m.id = l.member_id WHERE l.token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(
        |(link, owner, created_by, used, revoked, expires_at, login_enabled, deleted, display_name)| {
            let state = if owner != member_id {
                LinkState::OtherMember
            } else if used.is_some() {
                LinkState::Used
            } else if revoked.is_some() {
                LinkState::Revoked
            } else if expires_at <= now {
                LinkState::Expired
            } else if deleted {
                LinkState::MemberDeleted
            } else if !login_enabled {
                LinkState::LoginDisabled
            } else {
                LinkState::Usable
            };
            Found {
                link,
                member_id: owner,
                created_by,
                state,
                display_name,
                expires_at,
            }
        },
    ))
}

/// Records a failed attempt (`step`: "open" or "continue") and answers with the one
/// failure everyone gets.
async fn failed(
    state: &AppState,
    request: &RequestContext,
    step: &'static str,
    address_member: Option<i64>,
    found: Option<&Found>,
    reason: &'static str,
) -> AppError {
    tracing::info!(step, reason, "one-click link refused");
    let mut event = NewEvent::new(AuditAction::OneClickFailed, request)
        .details(json!({ "reason": reason, "step": step, "member_in_address": address_member }));
    if let Some(found) = found {
        event = event
            .subject(found.member_id)
            .object(ObjectKind::OneClickLink, found.link);
    }
    match record(&state.db, state.clock.now(), event).await {
        Ok(_) => AppError::LinkUnusable,
        Err(error) => error,
    }
}

/// The link's address, checked (throttled per client address first): the member it
/// lets in, or the generic failure (recorded with its reason).
async fn check_address(
    state: &AppState,
    request: &RequestContext,
    step: &'static str,
    member_id: &str,
    token: &str,
) -> Result<(i64, String, Result<Found, AppError>), AppError> {
    throttle::check_address(state, request.ip.as_deref())?;
    let Some((member_id, token)) = parse_address(member_id, token) else {
        return Err(failed(state, request, step, None, None, "malformed").await);
    };
    let hash = state.link_key.hash(&token);
    let found = match find(state, member_id, &hash, state.clock.now()).await? {
        None => Err(failed(
            state,
            request,
            step,
            Some(member_id),
            None,
            LinkState::Unknown.as_str(),
        )
        .await),
        Some(found) if found.state != LinkState::Usable => Err(failed(
            state,
            request,
            step,
            Some(member_id),
            Some(&found),
            found.state.as_str(),
        )
        .await),
        Some(found) => Ok(found),
    };
    Ok((member_id, token, found))
}

/// Opening a link (GET): says whom it signs in as, and uses nothing up. Link
/// scanners and chat previews fetch links; only `continue_with` consumes one.
pub async fn preview(
    state: &AppState,
    request: &RequestContext,
    member_id: &str,
    token: &str,
) -> Result<Preview, AppError> {
    let (_, _, found) = check_address(state, request, "open", member_id, token).await?;
    let found = found?;
    let event = NewEvent::new(AuditAction::OneClickOpened, request)
        .subject(found.member_id)
        .object(ObjectKind::OneClickLink, found.link);
    record(&state.db, state.clock.now(), event).await?;
    Ok(Preview {
        member_id: found.member_id,
        display_name: found.display_name,
        expires_at: found.expires_at,
    })
}

/// Continuing with a link (POST): consumes it in one statement that succeeds only
/// while it is unused, unexpired, unrevoked, for that member, and the member may
/// sign in; in the same transaction, the member gets a fresh session of their own and
/// the browser's previous session ends. Of concurrent attempts, exactly one wins.
pub async fn continue_with(
    state: &AppState,
    request: &RequestContext,
    member_id: &str,
    token: &str,
) -> Result<Token, AppError> {
    let (member_id, token, found) = check_address(state, request, "continue", member_id, token).await?;
    let found = found?;
    // The one who made the link does not use it themselves (that would be a session
    // as the member with no banner and no reason: login on behalf is the way for that).
    if let Some(current) = &request.session {
        if current.actor().id == found.created_by {
            return Err(failed(
                state,
                request,
                "continue",
                Some(member_id),
                Some(&found),
                "creators_browser",
            )
            .await);
        }
    }
    let hash = state.link_key.hash(&token);
    let now = state.clock.now();
    let session = Token::generate();
    let replacing = request
        .session
        .as_ref()
        .filter(|s| s.on_behalf.is_none())
        .map(|s| (s.id, s.member.id));
    let used: Option<i64> = with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let claimed: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE one_click_links SET used_at = $1 WHERE token_hash = $2 AND member_id = $3 \
             AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
             AND EXISTS (SELECT 1 FROM members m WHERE m.id = $3 AND m.login_enabled AND m.deleted_at IS NULL) \
             RETURNING id, created_by",
        )
        .bind(now)
        .bind(&hash)
        .bind(member_id)
        .fetch_optional(&mut *tx)
        .await?;
        match claimed {
            None => {
                tx.rollback().await?;
                None
            }
            Some((link, created_by)) => {
                let own = OwnSession {
                    member_id,
                    replacing,
                    context: request,
                    details: json!({ "method": "one_click", "one_click_link": link }),
                };
                let session_id = open_own_session(&mut tx, now, &state.settings, &session, own).await?;
                sqlx::query("UPDATE one_click_links SET used_session = $1 WHERE id = $2")
                    .bind(session_id)
                    .bind(link)
                    .execute(&mut *tx)
                    .await?;
                let event = NewEvent::new(AuditAction::OneClickUsed, request)
                    .actor(member_id)
                    .subject(member_id)
                    .object(ObjectKind::OneClickLink, link)
                    .details(json!({ "created_by": created_by, "session": session_id }));
                tx.append_audit(now, event).await?;
                tx.commit().await?;
                Some(link)
            }
        }
    });
    let Some(link) = used else {
        // Another request used it (or it changed) between the check and the claim.
        let found = find(state, member_id, &hash, state.clock.now()).await?;
        let reason = found.as_ref().map_or("unknown", |f| f.state.as_str());
        return Err(failed(
            state,
            request,
            "continue",
            Some(member_id),
            found.as_ref(),
            reason,
        )
        .await);
    };
    // A browser in a session on behalf: that one and the actor's own end too.
    if let Some(current) = &request.session {
        if let Some(on_behalf) = &current.on_behalf {
            let end = EndOnBehalf {
                parent_end: Some(EndReason::Replaced),
                ..EndOnBehalf::asked(current, on_behalf, EndReason::Replaced, request)
            };
            if let Err(error) = end_on_behalf(state, end).await {
                tracing::error!(%error, "the session on behalf replaced by a one-click sign-in did not end");
            }
        }
    }
    tracing::info!(link, member = member_id, "signed in with a one-click link");
    Ok(session)
}
