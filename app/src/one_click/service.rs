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
    db::{
        stored_role,
        tx::{with_tx, Tx},
        BeginWrite,
    },
    error::{AppError, Refusal},
    grant::{link_allowed, link_consent},
    guard::{record_refusal, require, require_admin},
    one_click::{CreatedLink, LinkList, OneClickLink, PATH_PREFIX},
    policy::{may_create_link, may_manage_links, may_use_admin, LinkParty},
    role::Role,
    session::{end_on_behalf, open_own_session, token::Token, EndOnBehalf, EndReason, OwnSession},
    state::{AppState, Settings},
};

mod address;

use address::{check_address, failed, find};
pub use address::{parse_address, LinkState};

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

/// The checks of a change to links that need no database: never on behalf (a link is
/// a way into an account, for the real person only), then `may_use_links`.
fn may_change_links(session: &CurrentSession) -> Result<(), Refusal> {
    if session.on_behalf.is_some() {
        return Err(Refusal::OnBehalfProtected);
    }
    may_use_links(session)
}

const MEMBER_PARTY: &str =
    "SELECT role, admin_access, login_enabled FROM members WHERE id = $1 AND deleted_at IS NULL";

/// Member `id`'s role, admin access and whether they may sign in (`MEMBER_PARTY`),
/// read in `tx` with `lock` appended (`Db::for_update()`, or empty).
async fn party_row<'a>(
    tx: impl Into<Tx<'a>>,
    id: i64,
    lock: &str,
) -> Result<Option<(String, bool, bool)>, AppError> {
    Ok(with_tx!(tx.into(), tx => {
        sqlx::query_as(&format!("{MEMBER_PARTY}{lock}")).bind(id).fetch_optional(&mut **tx).await?
    }))
}

/// Member `id` as the link policy sees them.
fn party(id: i64, role: &str, admin_access: bool) -> Result<LinkParty, AppError> {
    Ok(LinkParty {
        role: stored_role(id, role)?,
        admin_access,
    })
}

/// The person changing links as they are now, read in `tx` (not as the session found
/// them when the request began): gone or no longer allowed to sign in is
/// `Unauthenticated`.
async fn current_party<'a>(
    tx: impl Into<Tx<'a>>,
    session: &CurrentSession,
    lock: &str,
) -> Result<LinkParty, AppError> {
    let row = party_row(tx, session.member.id, lock).await?;
    let (role, admin_access, login_enabled) = row.ok_or(AppError::Unauthenticated)?;
    if !login_enabled {
        return Err(AppError::Unauthenticated);
    }
    party(session.member.id, &role, admin_access)
}

/// The record of something done with `link`, a link of `member_id`.
fn link_event(action: AuditAction, request: &RequestContext, member_id: i64, link: i64) -> NewEvent {
    NewEvent::new(action, request)
        .subject(member_id)
        .object(ObjectKind::OneClickLink, link)
}

/// A link about to be made: whose, its token's hash, and its lifetime.
struct NewLink {
    member_id: i64,
    hash: Vec<u8>,
    minutes: i64,
    now: Millis,
    expires_at: Millis,
}

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
    let session = require(state, request, REFUSED, object.clone(), may_change_links).await?;
    let minutes = lifetime(&state.settings, minutes)?;
    // A member who asks first (Step 12): a link signs in as them fully, so only a grant
    // to act (or an explicit permission someone else wrote) lets its maker make one.
    let consent = link_consent(&state.db, member_id, session.actor().id, state.clock.now()).await?;
    if !link_allowed(&consent, state.settings.consent_required) {
        return Err(AppError::Denied(crate::rule::Denial::ConsentRequired));
    }
    let token = Token::generate();
    let now = state.clock.now();
    let link = NewLink {
        member_id,
        hash: state.link_key.hash(token.expose()),
        minutes,
        now,
        expires_at: now.saturating_add(minutes.saturating_mul(MINUTE)),
    };
    let outcome = make_link(state, request, session, &link).await;
    let id = record_refusal(state, request, session, REFUSED, object, outcome).await?;
    tracing::info!(
        link = id,
        member = member_id,
        creator = session.member.id,
        "one-click link created"
    );
    let creator = session.member.display_name.clone();
    Ok(CreatedLink {
        link: link_view(id, member_id, session.member.id, creator, now, link.expires_at),
        path: format!("{PATH_PREFIX}{member_id}/{}", token.expose()),
    })
}

/// How long a new link lasts: `minutes`, or the configured default, within the
/// configured bounds.
fn lifetime(settings: &Settings, minutes: Option<i64>) -> Result<i64, AppError> {
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
    Ok(minutes)
}

/// Inserts `link` and its record in one transaction, when the creator and the member,
/// both read again in it, still allow it.
async fn make_link(
    state: &AppState,
    request: &RequestContext,
    session: &CurrentSession,
    link: &NewLink,
) -> Result<i64, AppError> {
    // FOR NO KEY UPDATE (`Db::for_update`), not FOR UPDATE: a link being used takes a
    // key-share lock on its creator's row (the foreign key, checked again when its row
    // is updated twice in one transaction) while holding its member's row; FOR UPDATE
    // would wait on that in a circle with a link being made ("deadlock detected").
    let for_update = state.db.for_update();
    let member_id = link.member_id;
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        // The creator's row, then the member's, stay locked (PostgreSQL) until the
        // link is in: a change to either meanwhile comes first (and is seen here) or
        // waits and then revokes the new link. The creator is read again here, not
        // taken from the session loaded when the request began.
        let creator = current_party(&mut tx, session, for_update).await?;
        let row = party_row(&mut tx, member_id, for_update).await?;
        let (role, admin_access, login_enabled) = row.ok_or_else(|| no_such_member(member_id))?;
        let member = party(member_id, &role, admin_access)?;
        may_create_link(creator, member, login_enabled).map_err(AppError::Refused)?;
        let id = write_link(&mut tx, request, session, link).await?;
        tx.commit().await?;
        Ok(id)
    })
}

/// Writes `link` and its `one_click_created` record in `tx`, unless the member has
/// `MAX_OUTSTANDING` links already.
async fn write_link<'a>(
    tx: impl Into<Tx<'a>>,
    request: &RequestContext,
    session: &CurrentSession,
    link: &NewLink,
) -> Result<i64, AppError> {
    let mut tx = tx.into();
    let (member_id, now) = (link.member_id, link.now);
    let id = with_tx!(&mut tx, tx => {
        let (outstanding,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM one_click_links WHERE member_id = $1 AND used_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(member_id)
        .bind(now)
        .fetch_one(&mut ***tx)
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
        .bind(&link.hash)
        .bind(member_id)
        .bind(session.member.id)
        .bind(now)
        .bind(link.expires_at)
        .fetch_one(&mut ***tx)
        .await?;
        id
    });
    let event = link_event(AuditAction::OneClickCreated, request, member_id, id)
        .by(session)
        .details(json!({ "expires_at": link.expires_at, "expires_in_minutes": link.minutes }));
    tx.append_audit(now, event).await?;
    Ok(id)
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
        return Err(AppError::Refused(Refusal::OnBehalfProtected));
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
    let member = party(member_id, &role, admin_access)?;
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
    let session = require(state, request, REFUSED, object.clone(), may_change_links).await?;
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
            let member = party(member_id, &role, admin_access)?;
            let revoker = current_party(&mut tx, session, "").await?;
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
            let event = link_event(AuditAction::OneClickRevoked, request, member_id, id)
                .by(session)
                .details(json!({ "reason": "revoked" }));
            tx.append_audit(now, event).await?;
            tx.commit().await?;
            Ok(())
        }
        .await
    });
    record_refusal(state, request, session, REFUSED, object, outcome).await
}

/// What the confirmation page shows.
#[derive(Clone, Debug)]
pub struct Preview {
    pub member_id: i64,
    pub display_name: String,
    pub expires_at: Millis,
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
    let event = link_event(AuditAction::OneClickOpened, request, found.member_id, found.link);
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
    let browser = request.session.as_ref().map(|current| current.actor().id);
    if browser == Some(found.created_by) {
        let reason = "creators_browser";
        return Err(failed(state, request, "continue", Some(member_id), Some(&found), reason).await);
    }
    // The member may have asked to be asked first since the link was made.
    let consent = link_consent(&state.db, member_id, found.created_by, state.clock.now()).await?;
    if !link_allowed(&consent, state.settings.consent_required) {
        let reason = "consent_required";
        return Err(failed(state, request, "continue", Some(member_id), Some(&found), reason).await);
    }
    let hash = state.link_key.hash(&token);
    let session = Token::generate();
    let Some(link) = claim(state, request, member_id, &hash, &session).await? else {
        // Another request used it (or it changed) between the check and the claim.
        let found = find(state, member_id, &hash, state.clock.now()).await?;
        let found = found.as_ref();
        let reason = found.map_or("unknown", |f| f.state.as_str());
        return Err(failed(state, request, "continue", Some(member_id), found, reason).await);
    };
    end_replaced_on_behalf(state, request).await;
    tracing::info!(link, member = member_id, "signed in with a one-click link");
    Ok(session)
}

/// Consumes the link with `hash` for `member_id` (see `continue_with`) and, in the
/// same transaction, opens the member's fresh session with `token`, ending the
/// browser's previous one of its own. `None` when there was nothing to consume.
async fn claim(
    state: &AppState,
    request: &RequestContext,
    member_id: i64,
    hash: &[u8],
    token: &Token,
) -> Result<Option<i64>, AppError> {
    let now = state.clock.now();
    let replacing = request
        .session
        .as_ref()
        .filter(|s| s.on_behalf.is_none())
        .map(|s| (s.id, s.member.id));
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let claimed: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE one_click_links SET used_at = $1 WHERE token_hash = $2 AND member_id = $3 \
             AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
             AND EXISTS (SELECT 1 FROM members m WHERE m.id = $3 AND m.login_enabled AND m.deleted_at IS NULL) \
             RETURNING id, created_by",
        )
        .bind(now)
        .bind(hash)
        .bind(member_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((link, created_by)) = claimed else {
            tx.rollback().await?;
            return Ok(None);
        };
        let own = OwnSession {
            member_id,
            replacing,
            context: request,
            details: json!({ "method": "one_click", "one_click_link": link }),
        };
        let session_id = open_own_session(&mut tx, now, &state.settings, token, own).await?;
        sqlx::query("UPDATE one_click_links SET used_session = $1 WHERE id = $2")
            .bind(session_id)
            .bind(link)
            .execute(&mut *tx)
            .await?;
        let event = link_event(AuditAction::OneClickUsed, request, member_id, link)
            .actor(member_id)
            .details(json!({ "created_by": created_by, "session": session_id }));
        tx.append_audit(now, event).await?;
        tx.commit().await?;
        Ok(Some(link))
    })
}

/// A browser in a session on behalf that a one-click sign-in replaced: that session
/// and the actor's own end too.
async fn end_replaced_on_behalf(state: &AppState, request: &RequestContext) {
    let Some(current) = &request.session else {
        return;
    };
    let Some(on_behalf) = &current.on_behalf else {
        return;
    };
    let end = EndOnBehalf {
        parent_end: Some(EndReason::Replaced),
        ..EndOnBehalf::asked(current, on_behalf, EndReason::Replaced, request)
    };
    if let Err(error) = end_on_behalf(state, end).await {
        tracing::error!(%error, "the session on behalf replaced by a one-click sign-in did not end");
    }
}
