//! Access requests (server only): someone the rule would otherwise allow asks the
//! member; the member approves (a member grant for that person, mode and duration) or
//! denies; unanswered, a request expires after a day. One pending request per person
//! and member (a unique index: however many arrive at once, one is made).

use serde_json::json;

use super::{
    service::{insert_grant, mode_and_duration, own_session, GrantForm},
    sweep, RequestStatus, RequestView,
};
use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{AuditTx, NewEvent},
    clock::{format_utc, Millis, HOUR},
    context::RequestContext,
    db::{is_unique_violation, stored_role, with_db, BeginWrite},
    error::AppError,
    grant::GrantDuration,
    mode::Mode,
    notice::{write_notice, NewNotice, NoticeKind},
    role::Role,
    rule::{self, Denial, Grant},
    state::AppState,
};

/// A request waits this long for an answer.
pub const REQUEST_LIFETIME: Millis = 24 * HOUR;

/// After a denial, the same person waits this long before asking the same member again
/// (no stream of requests, notices and mails).
pub const ASK_AGAIN_AFTER: Millis = HOUR;

/// A reason is required, and this long (characters).
const REASON_CHARS: std::ops::RangeInclusive<usize> = 3..=500;

/// A request as the blade's form or the API sends it, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestForm {
    pub reason: String,
    pub mode: Mode,
    pub duration: GrantDuration,
}

impl RequestForm {
    pub fn parse(reason: &str, mode: &str, duration: &str) -> Result<RequestForm, AppError> {
        let reason = reason.trim();
        if !REASON_CHARS.contains(&reason.chars().count()) {
            return Err(AppError::validation(
                "reason",
                "Give a reason of 3 to 500 characters: the member reads it.",
            ));
        }
        let (mode, duration) = mode_and_duration(mode, duration)?;
        Ok(RequestForm {
            reason: reason.to_string(),
            mode,
            duration,
        })
    }
}

type RequestRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
);

const REQUEST_COLUMNS: &str =
    "r.id, r.requester_id, a.display_name, a.role, r.reason, r.mode, r.duration, r.status, \
     r.created_at, r.expires_at, r.grant_id FROM access_requests r JOIN members a ON a.id = r.requester_id";

fn request_view(row: RequestRow) -> Result<RequestView, AppError> {
    let (id, requester_id, name, role, reason, mode, duration, status, created, expires_at, grant_id) = row;
    Ok(RequestView {
        id,
        requester_id,
        requester_name: name,
        requester_role: stored_role(requester_id, &role)?,
        reason,
        mode: Mode::parse(&mode).unwrap_or_default(),
        duration: GrantDuration::parse(&duration).unwrap_or(GrantDuration::Hour),
        status: RequestStatus::parse(&status).unwrap_or(RequestStatus::Expired),
        created: format_utc(created),
        expires_at,
        grant_id,
    })
}

async fn one(state: &AppState, id: i64) -> Result<RequestView, AppError> {
    let row: RequestRow = with_db!(&state.db, pool => {
        sqlx::query_as(&format!("SELECT {REQUEST_COLUMNS} WHERE r.id = $1"))
            .bind(id)
            .fetch_one(pool)
            .await?
    });
    request_view(row)
}

/// The member's requests: pending first, then the latest answered (at most 100).
pub async fn requests(state: &AppState, request: &RequestContext) -> Result<Vec<RequestView>, AppError> {
    let member = own_session(request)?.member.id;
    sweep::expire_due(state).await?;
    let rows: Vec<RequestRow> = with_db!(&state.db, pool => {
        sqlx::query_as(&format!(
            "SELECT {REQUEST_COLUMNS} WHERE r.member_id = $1 \
             ORDER BY CASE WHEN r.status = 'pending' THEN 0 ELSE 1 END, r.id DESC LIMIT 100"
        ))
        .bind(member)
        .fetch_all(pool)
        .await?
    });
    rows.into_iter().map(request_view).collect()
}

/// Whether the requester could log in on behalf of `member_id` but for the member's
/// consent: the rule as if the member did not ask first must give the role grant.
/// Someone it would refuse anyway learns nothing they could not learn by trying.
async fn check_requester(state: &AppState, request: &RequestContext, member_id: i64) -> Result<(), AppError> {
    let session = request.require_session()?;
    let actor = session.actor();
    let row: Option<(String, bool, Option<i64>, String)> = with_db!(&state.db, pool => {
        sqlx::query_as("SELECT role, login_enabled, deleted_at, role_grants FROM members WHERE id = $1")
            .bind(member_id)
            .fetch_optional(pool)
            .await?
    });
    let asks = row
        .as_ref()
        .is_some_and(|row| crate::grant::asks_first(&row.3, state.settings.consent_required));
    let target = row
        .map(|(role, login_enabled, deleted_at, _)| {
            Ok::<_, AppError>(rule::Target {
                id: member_id,
                role: stored_role(member_id, &role)?,
                deleted: deleted_at.is_some(),
                login_enabled,
                grants_actor: false,
                grant_written_by_actor: false,
                asks_first: false,
                member_grant: None,
            })
        })
        .transpose()?;
    let rule_actor = rule::Actor {
        id: actor.id,
        role: actor.role,
        admin_access: actor.admin_access,
        on_behalf: session.on_behalf.is_some(),
    };
    let could_reach = actor.role >= Role::Support && actor.admin_access;
    match rule::can_log_in_on_behalf(&rule_actor, target.as_ref()) {
        Ok(Grant::Role) if asks => Ok(()),
        Ok(Grant::Role) => Err(AppError::Conflict(
            "This member lets support staff in by their role: no request is needed.".to_string(),
        )),
        Err(Denial::NotFound | Denial::Deleted | Denial::LoginDisabled) if !could_reach => {
            Err(AppError::Denied(Denial::NoPermission))
        }
        Err(denial) => Err(AppError::Denied(denial)),
        // Only a role grant is ever asked for.
        Ok(_) => Err(AppError::Denied(Denial::NoPermission)),
    }
}

/// Asks member `member_id` for access (`access_requested`, and the member's notice,
/// mailed when SMTP is configured). A second pending request from the same person to
/// the same member is a conflict.
pub async fn request(
    state: &AppState,
    request: &RequestContext,
    member_id: i64,
    form: RequestForm,
) -> Result<RequestView, AppError> {
    let session = own_session(request)?;
    check_requester(state, request, member_id).await?;
    sweep::expire_due(state).await?;
    let requester = session.member.id;
    let now = state.clock.now();
    let mail = state.settings.mail.is_some();
    let id = with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let (denied,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM access_requests WHERE member_id = $1 AND requester_id = $2 \
             AND status = 'denied' AND answered_at > $3",
        )
        .bind(member_id)
        .bind(requester)
        .bind(now - ASK_AGAIN_AFTER)
        .fetch_one(&mut *tx)
        .await?;
        if denied > 0 {
            return Err(AppError::Conflict(
                "This member denied your request less than an hour ago: ask again later.".to_string(),
            ));
        }
        let inserted: Result<(i64,), sqlx::Error> = sqlx::query_as(
            "INSERT INTO access_requests (member_id, requester_id, reason, mode, duration, status, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) RETURNING id",
        )
        .bind(member_id)
        .bind(requester)
        .bind(&form.reason)
        .bind(form.mode.as_str())
        .bind(form.duration.as_str())
        .bind(now)
        .bind(now.saturating_add(REQUEST_LIFETIME))
        .fetch_one(&mut *tx)
        .await;
        let (id,) = match inserted {
            Ok(id) => id,
            Err(error) if is_unique_violation(&error) => {
                return Err(AppError::Conflict(
                    "You already have a request waiting for this member's answer.".to_string(),
                ))
            }
            Err(error) => return Err(error.into()),
        };
        let notice = NewNotice {
            member_id,
            kind: NoticeKind::AccessRequested,
            actor_id: Some(requester),
            reason: &form.reason,
            mode: Some(form.mode),
            session_id: None,
            request_id: Some(id),
        };
        write_notice(&mut tx, now, mail, notice).await?;
        let event = NewEvent::new(AuditAction::AccessRequested, request)
            .by(session)
            .subject(member_id)
            .object(ObjectKind::AccessRequest, id)
            .details(json!({
                "reason": form.reason,
                "mode": form.mode.as_str(),
                "duration": form.duration.as_str(),
            }));
        tx.append_audit(now, event).await?;
        tx.commit().await?;
        id
    });
    one(state, id).await
}

/// The member approves (a grant for the requester, mode and duration asked) or denies
/// a pending request. Of parallel answers, one is made; a request already answered
/// or expired is a conflict.
pub async fn answer(
    state: &AppState,
    request: &RequestContext,
    id: i64,
    approve: bool,
) -> Result<RequestView, AppError> {
    let session = own_session(request)?;
    let member = session.member.id;
    sweep::expire_due(state).await?;
    let now = state.clock.now();
    let status = if approve {
        RequestStatus::Approved
    } else {
        RequestStatus::Denied
    };
    let outcome = with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let taken: Option<(i64, String, String, String)> = sqlx::query_as(
            "UPDATE access_requests SET status = $1, answered_at = $2 WHERE id = $3 AND member_id = $4 \
             AND status = 'pending' AND expires_at > $2 RETURNING requester_id, mode, duration, reason",
        )
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .bind(member)
        .fetch_optional(&mut *tx)
        .await?;
        match taken {
            None => {
                let exists: Option<(String,)> =
                    sqlx::query_as("SELECT status FROM access_requests WHERE id = $1 AND member_id = $2")
                        .bind(id)
                        .bind(member)
                        .fetch_optional(&mut *tx)
                        .await?;
                Err(exists)
            }
            Some((requester, mode, duration, reason)) => {
                if approve {
                    let form = GrantForm::parse(&requester.to_string(), &mode, &duration)?;
                    let event = NewEvent::new(AuditAction::GrantCreated, request).by(session);
                    let (grant, _) = insert_grant(&mut tx, now, member, form, Some(id), event).await?;
                    sqlx::query("UPDATE access_requests SET grant_id = $1 WHERE id = $2")
                        .bind(grant)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                let action = if approve {
                    AuditAction::AccessRequestApproved
                } else {
                    AuditAction::AccessRequestDenied
                };
                let event = NewEvent::new(action, request)
                    .by(session)
                    .subject(member)
                    .object(ObjectKind::AccessRequest, id)
                    .details(json!({ "requester": requester, "reason": reason, "mode": mode, "duration": duration }));
                tx.append_audit(now, event).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    });
    match outcome {
        Ok(()) => one(state, id).await,
        Err(None) => Err(AppError::NotFound(
            "There is no such request of yours.".to_string(),
        )),
        Err(Some((status,))) => Err(AppError::Conflict(format!(
            "This request is {status} already: it can be answered once, while it waits."
        ))),
    }
}
