//! A link's address, read (server only): its parts parsed, the link found by its
//! token's hash and the state it is in, and every failure recorded with its reason
//! while the person holding the link gets the one answer everyone gets.

use serde_json::json;

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{record, NewEvent},
    clock::Millis,
    context::RequestContext,
    db::with_db,
    error::AppError,
    session::token::is_well_formed,
    state::AppState,
    throttle,
};

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

/// The link an address names, found by its token's hash.
pub(super) struct Found {
    pub link: i64,
    pub member_id: i64,
    pub created_by: i64,
    pub state: LinkState,
    pub display_name: String,
    pub expires_at: Millis,
}

/// The link with this token hash, and what state it is in for `member_id` at `now`.
pub(super) async fn find(
    state: &AppState,
    member_id: i64,
    hash: &[u8],
    now: Millis,
) -> Result<Option<Found>, AppError> {
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
pub(super) async fn failed(
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
pub(super) async fn check_address(
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
