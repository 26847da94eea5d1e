//! What the member does about access to their account (server only): the setting,
//! grants, notices, ending a session on their behalf, and the Access page. Access
//! requests are in `requests.rs`; expiry in `sweep.rs`; mail in `mail.rs`.

use serde_json::json;

pub use super::requests::{answer, request, requests, RequestForm};
use super::{AccessOverview, GranteeOption, NoticeView};
use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{AuditTx, NewEvent},
    clock::format_utc,
    context::{AccountUse, CurrentSession, RequestContext},
    db::{stored_role, with_db, BeginWrite},
    error::AppError,
    grant::{live_grants, may_be_granted, GrantDuration, GrantView, RoleGrants},
    mode::Mode,
    notice::{write_ended, NoticeKind},
    role::Role,
    session::{recheck::end_no_longer_allowed, store::end_row, EndReason},
    state::AppState,
};

/// The member themselves, in their own session: everything here is theirs alone (the
/// request pipeline refuses it on behalf first; this is the service's own check).
pub(super) fn own_session(request: &RequestContext) -> Result<&CurrentSession, AppError> {
    let session = request.require_session()?;
    match session.account_use() {
        AccountUse::Own => Ok(session),
        AccountUse::OnBehalf { .. } => Err(AppError::Refused(crate::error::Refusal::OnBehalfProtected)),
    }
}

/// The member's setting as stored (not the server's `--consent required`).
pub async fn setting(state: &AppState, request: &RequestContext) -> Result<RoleGrants, AppError> {
    let member = own_session(request)?.member.id;
    let stored: Option<(String,)> = with_db!(&state.db, pool => {
        sqlx::query_as("SELECT role_grants FROM members WHERE id = $1")
            .bind(member)
            .fetch_optional(pool)
            .await?
    });
    Ok(stored
        .and_then(|(text,)| RoleGrants::parse(&text))
        .unwrap_or_default())
}

/// Sets the member's setting. A change is recorded (`consent_setting_changed`, from
/// and to); setting what is already set changes nothing. Under `--consent required`
/// the member may still choose, but `ask` stays in force.
pub async fn set_role_grants(
    state: &AppState,
    request: &RequestContext,
    text: &str,
) -> Result<RoleGrants, AppError> {
    let session = own_session(request)?;
    let wanted = RoleGrants::parse(text.trim()).ok_or_else(|| {
        AppError::validation(
            "role_grants",
            "Choose allowed (role grants let staff in) or ask (ask me first).",
        )
    })?;
    let now = state.clock.now();
    let member = session.member.id;
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let changed = sqlx::query("UPDATE members SET role_grants = $1 WHERE id = $2 AND role_grants <> $1")
            .bind(wanted.as_str())
            .bind(member)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 1 {
            let event = NewEvent::new(AuditAction::ConsentSettingChanged, request)
                .by(session)
                .subject(member)
                .object(ObjectKind::Member, member)
                .details(json!({
                    "role_grants": wanted.as_str(),
                    "in_force": wanted.in_force(state.settings.consent_required).as_str(),
                }));
            tx.append_audit(now, event).await?;
        }
        tx.commit().await?;
    });
    // Asking first now: the sessions a role grant alone let in end at once.
    if wanted == RoleGrants::Ask {
        end_no_longer_allowed(state, member, Some(member), request).await;
    }
    Ok(wanted)
}

/// A grant as the member's form or the API sends it, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantForm {
    /// `None`: any support engineer.
    pub grantee: Option<i64>,
    pub mode: Mode,
    pub duration: GrantDuration,
}

/// The mode and duration fields, checked alike for grants and requests.
pub(super) fn mode_and_duration(mode: &str, duration: &str) -> Result<(Mode, GrantDuration), AppError> {
    let mode = Mode::parse(mode.trim())
        .ok_or_else(|| AppError::validation("mode", "Choose view (view only) or act (act on behalf)."))?;
    let duration = GrantDuration::parse(duration.trim())
        .ok_or_else(|| AppError::validation("duration", "Choose 1h, 1d or 1w."))?;
    Ok((mode, duration))
}

impl GrantForm {
    /// `grantee`: a member ID, or `any` (or empty) for any support engineer.
    pub fn parse(grantee: &str, mode: &str, duration: &str) -> Result<GrantForm, AppError> {
        let grantee = match grantee.trim() {
            "" | "any" => None,
            id => Some(id.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                AppError::validation(
                    "grantee_id",
                    "Choose a person by their member ID, or any support engineer.",
                )
            })?),
        };
        let (mode, duration) = mode_and_duration(mode, duration)?;
        Ok(GrantForm {
            grantee,
            mode,
            duration,
        })
    }
}

/// Checks that `grantee` may be given access to `member` (of role `member_role`): a
/// support engineer or above, with admin access, ranking above the member.
async fn check_grantee(state: &AppState, member_role: Role, grantee: i64) -> Result<(), AppError> {
    let row: Option<(String, bool)> = with_db!(&state.db, pool => {
        sqlx::query_as("SELECT role, admin_access FROM members WHERE id = $1 AND deleted_at IS NULL")
            .bind(grantee)
            .fetch_optional(pool)
            .await?
    });
    let ok = match row {
        Some((role, admin_access)) => may_be_granted(member_role, stored_role(grantee, &role)?, admin_access),
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(AppError::validation(
            "grantee_id",
            "Access can be granted to support engineers and above (with admin access) whose role ranks above yours only.",
        ))
    }
}

/// Inserts a grant inside `tx` and records `grant_created`; returns its ID and expiry.
pub(super) async fn insert_grant<'a>(
    tx: impl Into<crate::db::tx::Tx<'a>>,
    now: i64,
    member: i64,
    form: GrantForm,
    request_id: Option<i64>,
    event: NewEvent,
) -> Result<(i64, i64), AppError> {
    let expires_at = now.saturating_add(form.duration.millis());
    let mut tx = tx.into();
    let (id,): (i64,) = crate::db::tx::with_tx!(&mut tx, tx => {
        let id = sqlx::query_as(
            "INSERT INTO member_grants (member_id, grantee_id, mode, duration, created_at, expires_at, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(member)
        .bind(form.grantee)
        .bind(form.mode.as_str())
        .bind(form.duration.as_str())
        .bind(now)
        .bind(expires_at)
        .bind(request_id)
        .fetch_one(&mut ***tx)
        .await?;
        id
    });
    let event = event
        .subject(member)
        .object(ObjectKind::MemberGrant, id)
        .details(json!({
            "grantee_id": form.grantee,
            "mode": form.mode.as_str(),
            "duration": form.duration.as_str(),
            "expires_at": expires_at,
            "request_id": request_id,
        }));
    crate::db::tx::with_tx!(&mut tx, tx => { tx.append_audit(now, event).await?; });
    Ok((id, expires_at))
}

/// The member grants access (`grant_created`).
pub async fn create_grant(
    state: &AppState,
    request: &RequestContext,
    form: GrantForm,
) -> Result<GrantView, AppError> {
    let session = own_session(request)?;
    let member = &session.member;
    if let Some(grantee) = form.grantee {
        check_grantee(state, member.role, grantee).await?;
    }
    let now = state.clock.now();
    let (id, _) = with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let event = NewEvent::new(AuditAction::GrantCreated, request).by(session);
        let created = insert_grant(&mut tx, now, member.id, form, None, event).await?;
        tx.commit().await?;
        created
    });
    live_grants(&state.db, member.id, now)
        .await?
        .into_iter()
        .find(|grant| grant.id == id)
        .ok_or(AppError::Internal)
}

/// The member revokes a live grant (`grant_revoked`): the sessions it allowed end at
/// once (and would at their next request anyway: the rule, re-checked, no longer holds).
pub async fn revoke_grant(state: &AppState, request: &RequestContext, id: i64) -> Result<(), AppError> {
    let session = own_session(request)?;
    let member = session.member.id;
    let now = state.clock.now();
    let revoked = with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let revoked = sqlx::query(
            "UPDATE member_grants SET revoked_at = $1 WHERE id = $2 AND member_id = $3 \
             AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(id)
        .bind(member)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if revoked {
            let event = NewEvent::new(AuditAction::GrantRevoked, request)
                .by(session)
                .subject(member)
                .object(ObjectKind::MemberGrant, id);
            tx.append_audit(now, event).await?;
            tx.commit().await?;
        }
        revoked
    });
    if revoked {
        end_no_longer_allowed(state, member, Some(member), request).await;
        Ok(())
    } else {
        Err(AppError::NotFound(
            "There is no such live grant of yours.".to_string(),
        ))
    }
}

/// The member's live grants.
pub async fn grants(state: &AppState, request: &RequestContext) -> Result<Vec<GrantView>, AppError> {
    let member = own_session(request)?.member.id;
    live_grants(&state.db, member, state.clock.now()).await
}

type NoticeRow = (
    i64,
    String,
    i64,
    Option<i64>,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

/// The member's notices, newest first (at most 100).
pub async fn notices(state: &AppState, request: &RequestContext) -> Result<Vec<NoticeView>, AppError> {
    let member = own_session(request)?.member.id;
    let rows: Vec<NoticeRow> = with_db!(&state.db, pool => {
        sqlx::query_as(
            "SELECT n.id, n.kind, n.at, n.actor_id, a.display_name, n.reason, n.mode, n.session_id, n.read_at \
             FROM notices n LEFT JOIN members a ON a.id = n.actor_id WHERE n.member_id = $1 \
             ORDER BY n.id DESC LIMIT 100",
        )
        .bind(member)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .filter_map(
            |(id, kind, at, actor_id, actor_name, reason, mode, session_id, read_at)| {
                Some(NoticeView {
                    id,
                    kind: NoticeKind::parse(&kind)?,
                    at,
                    at_text: format_utc(at),
                    actor_id,
                    actor_name: actor_name.unwrap_or_default(),
                    reason,
                    mode: mode.as_deref().and_then(Mode::parse),
                    session_id,
                    read: read_at.is_some(),
                })
            },
        )
        .collect())
}

/// Marks one of the member's notices read, in their own use only: a read on their
/// behalf leaves it unread (`CurrentSession::account_use`). Returns whether it moved.
pub async fn mark_read(state: &AppState, request: &RequestContext, id: i64) -> Result<bool, AppError> {
    let session = request.require_session()?;
    let member = session.member.id;
    let (found, moved) = with_db!(&state.db, pool => {
        let found: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT read_at FROM notices WHERE id = $1 AND member_id = $2")
                .bind(id)
                .bind(member)
                .fetch_optional(pool)
                .await?;
        let moved = match (&found, session.account_use()) {
            (Some((None,)), AccountUse::Own) => {
                sqlx::query("UPDATE notices SET read_at = $1 WHERE id = $2 AND member_id = $3 AND read_at IS NULL")
                    .bind(state.clock.now())
                    .bind(id)
                    .bind(member)
                    .execute(pool)
                    .await?
                    .rows_affected()
                    == 1
            }
            _ => false,
        };
        (found.is_some(), moved)
    });
    if found {
        Ok(moved)
    } else {
        Err(AppError::NotFound(
            "There is no such notice of yours.".to_string(),
        ))
    }
}

/// **End it now**: the member ends a live session on their behalf. In one
/// transaction the session ends (reason `ended_by_member`), the member's notice and
/// both records are written: `on_behalf_ended_by_member` under the member's name and
/// the session's `on_behalf_end`. Its token stays until the actor's next request,
/// which finds it over and gives the actor their own session back, saying why.
pub async fn end_by_member(
    state: &AppState,
    request: &RequestContext,
    session_id: i64,
) -> Result<(), AppError> {
    let session = own_session(request)?;
    let member = session.member.id;
    let now = state.clock.now();
    let reason = EndReason::EndedByMember;
    let ended = with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT actor_id FROM sessions WHERE id = $1 AND member_id = $2 AND actor_id IS NOT NULL \
             AND ended_at IS NULL",
        )
        .bind(session_id)
        .bind(member)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((actor,)) = found else {
            return Err(AppError::NotFound("There is no such live session on your behalf.".to_string()));
        };
        let ended = end_row(&mut tx, now, session_id, reason).await?;
        if ended {
            write_ended(&mut tx, now, member, actor, session_id, reason.as_str()).await?;
            let event = NewEvent::new(AuditAction::OnBehalfEndedByMember, request)
                .by(session)
                .subject(member)
                .object(ObjectKind::Session, session_id)
                .details(json!({ "actor": actor }));
            tx.append_audit(now, event).await?;
            let event = NewEvent::new(AuditAction::OnBehalfEnd, request)
                .actor(actor)
                .subject(member)
                .on_behalf(session_id)
                .object(ObjectKind::Session, session_id)
                .details(json!({ "reason": reason.as_str(), "ended_at": now, "by": member }));
            tx.append_audit(now, event).await?;
            tx.commit().await?;
        }
        ended
    });
    if !ended {
        return Err(AppError::NotFound(
            "There is no such live session on your behalf.".to_string(),
        ));
    }
    state.presence.wake(&state.db, member).await;
    Ok(())
}

/// People the member may grant access to by name: staff with admin access ranking
/// above the member (at most 50, by name).
async fn grantees(state: &AppState, member_role: Role) -> Result<Vec<GranteeOption>, AppError> {
    let above: Vec<String> = Role::ALL
        .into_iter()
        .filter(|role| *role >= Role::Support && role.rank() > member_role.rank())
        .map(|role| format!("'{}'", role.as_str()))
        .collect();
    if above.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, String, String)> = with_db!(&state.db, pool => {
        sqlx::query_as(&format!(
            "SELECT id, display_name, role FROM members WHERE deleted_at IS NULL AND admin_access \
             AND role IN ({}) ORDER BY name_key, id LIMIT 50",
            above.join(", ")
        ))
        .fetch_all(pool)
        .await?
    });
    rows.into_iter()
        .map(|(id, display_name, role)| {
            Ok(GranteeOption {
                id,
                display_name,
                role: stored_role(id, &role)?,
            })
        })
        .collect()
}

/// Everything the member's Access page shows. Expired requests and grants are
/// recorded first (by `requests`, which sweeps before it reads, and is read before the
/// grants), so the page shows what is so.
pub async fn page(state: &AppState, request: &RequestContext) -> Result<AccessOverview, AppError> {
    let session = own_session(request)?;
    Ok(AccessOverview {
        role_grants: setting(state, request).await?,
        consent_required: state.settings.consent_required,
        requests: requests(state, request).await?,
        grants: grants(state, request).await?,
        notices: notices(state, request).await?,
        grantees: grantees(state, session.member.role).await?,
    })
}
