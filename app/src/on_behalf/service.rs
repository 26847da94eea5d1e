//! What starting and leaving a session on behalf do (server only).

use serde_json::json;

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{clip_user_agent, record, AuditTx, NewEvent},
    clock::MINUTE,
    context::{CurrentSession, RequestContext},
    db::with_db,
    db::{is_unique_violation, stored_role, BeginWrite},
    error::{AppError, Refusal},
    grant::{asks_first, grant_mode, member_grant_sql},
    members::directory::groups_of,
    mode::Mode,
    notice::{write_notice, NewNotice, NoticeKind},
    on_behalf::{check_reason, reauth::reauthenticate, Candidate, Preview},
    password::{check_entered, Password},
    role::Role,
    rule::{self, may_act, Denial, Grant},
    session::{end_on_behalf, next_idle_expiry, token::Token, EndOnBehalf, EndOutcome, EndReason},
    state::AppState,
};

/// A member as the rule sees them, with whether the actor (`$2` in the query) is named
/// in their proxy login permission and wrote that entry themselves.
#[derive(sqlx::FromRow)]
pub(super) struct TargetRow {
    pub id: i64,
    pub display_name: String,
    pub email: String,
    pub role: String,
    pub login_enabled: bool,
    pub deleted_at: Option<i64>,
    pub grants_actor: i64,
    pub grant_by_actor: i64,
    pub role_grants: String,
    pub member_grant: Option<i64>,
}

/// The columns of a `TargetRow` from `members m`, for the actor bound as `$2` and the
/// time bound as `now` (a placeholder such as `$3`).
pub(super) fn target_columns(now: &str) -> String {
    format!(
        "m.id, m.display_name, m.email, m.role, m.login_enabled, m.deleted_at, \
         (SELECT COUNT(*) FROM proxy_permissions p WHERE p.member_id = m.id AND p.actor_id = $2) AS grants_actor, \
         (SELECT COUNT(*) FROM proxy_permissions p WHERE p.member_id = m.id AND p.actor_id = $2 \
          AND p.granted_by = $2) AS grant_by_actor, m.role_grants, {} AS member_grant",
        member_grant_sql("m.id", "$2", now)
    )
}

impl TargetRow {
    /// The target as the rule sees it; `consent_required` is the server's setting.
    pub(super) fn rule_target(&self, consent_required: bool) -> Result<rule::Target, AppError> {
        Ok(rule::Target {
            id: self.id,
            role: stored_role(self.id, &self.role)?,
            deleted: self.deleted_at.is_some(),
            login_enabled: self.login_enabled,
            grants_actor: self.grants_actor > 0,
            grant_written_by_actor: self.grant_by_actor > 0,
            asks_first: asks_first(&self.role_grants, consent_required),
            member_grant: grant_mode(self.member_grant),
        })
    }
}

/// The real person behind the session, as the rule sees them.
pub(super) fn rule_actor(session: &CurrentSession) -> rule::Actor {
    let actor = session.actor();
    rule::Actor {
        id: actor.id,
        role: actor.role,
        admin_access: actor.admin_access,
        on_behalf: session.on_behalf.is_some(),
    }
}

/// The rule for the viewer and `member_id`, with what the target row says.
async fn check_rule(
    state: &AppState,
    session: &CurrentSession,
    member_id: i64,
) -> Result<(Result<Grant, Denial>, Option<TargetRow>), AppError> {
    let row: Option<TargetRow> = with_db!(&state.db, pool => {
        sqlx::query_as(&format!("SELECT {} FROM members m WHERE m.id = $1", target_columns("$3")))
            .bind(member_id)
            .bind(session.actor().id)
            .bind(state.clock.now())
            .fetch_optional(pool)
            .await?
    });
    let consent_required = state.settings.consent_required;
    let target = row
        .as_ref()
        .map(|row| row.rule_target(consent_required))
        .transpose()?;
    let actor = rule_actor(session);
    let verdict = rule::can_log_in_on_behalf(&actor, target.as_ref());
    // Someone who could not log in on this member's behalf whatever the member's state
    // (no role grant within reach, no explicit grant naming them) learns nothing about
    // the member: not whether the ID exists, is deleted or may sign in.
    let could_reach = (actor.role >= Role::Support && actor.admin_access)
        || target.as_ref().is_some_and(|t| t.grants_actor);
    let verdict = match verdict {
        Err(Denial::NotFound | Denial::Deleted | Denial::LoginDisabled) if !could_reach => {
            Err(Denial::NoPermission)
        }
        other => other,
    };
    Ok((verdict, row))
}

pub async fn preview(
    state: &AppState,
    request: &RequestContext,
    member_id: i64,
) -> Result<Preview, AppError> {
    let session = request.require_session()?;
    let (verdict, row) = check_rule(state, session, member_id).await?;
    let grant = verdict.map_err(AppError::Denied)?;
    let row = row.ok_or(AppError::Denied(Denial::NotFound))?;
    Ok(Preview {
        may_act: may_act(session.actor().role, grant, state.settings.act_min_role),
        actor_name: session.actor().display_name.clone(),
        member_id: row.id,
        member_name: row.display_name,
        member_email: row.email,
        member_role: stored_role(row.id, &row.role)?,
        max_minutes: state.settings.on_behalf_max_duration / MINUTE,
    })
}

/// Why acting is refused to a session allowed by `grant`: a member's view-only grant,
/// or the actor's role (`--act-min-role`).
pub(super) fn act_refusal(grant: Option<Grant>) -> Refusal {
    match grant {
        Some(Grant::Member(Mode::View)) => Refusal::GrantViewOnly,
        _ => Refusal::ActNeedsRole,
    }
}

/// Records a refused start (no change but this record) and returns the error.
pub(super) async fn refuse(
    state: &AppState,
    request: &RequestContext,
    session: &CurrentSession,
    member_id: i64,
    error: AppError,
) -> AppError {
    tracing::info!(
        actor = session.actor().id,
        member_id,
        code = error.code(),
        "login on behalf refused"
    );
    let event = NewEvent::new(AuditAction::OnBehalfDenied, request)
        .by(session)
        .subject(member_id)
        .object(ObjectKind::Member, member_id)
        .details(json!({ "code": error.code() }));
    match crate::audit_writer::record_folded(&state.db, &state.refusals, state.clock.now(), event).await {
        Ok(_) => error,
        Err(db_error) => db_error,
    }
}

/// Starts a session on behalf: the reason and the password's length, the rule, the
/// lockout (the attempt is counted first), the actor's own password (checked exactly
/// as at sign-in), then in one transaction the actor's token ends, the session on
/// behalf begins and the start is recorded. Of parallel starts from one session, one
/// wins; the others change nothing.
#[tracing::instrument(skip_all, fields(member_id))]
pub async fn start(
    state: &AppState,
    request: &RequestContext,
    member_id: i64,
    password: Password,
    reason: &str,
    mode: Mode,
) -> Result<Token, AppError> {
    let session = request.require_session()?;
    let reason = check_reason(reason)?;
    check_entered(&password, "password", "Enter your own password.")?;
    let actor = session.actor();
    let (verdict, row) = check_rule(state, session, member_id).await?;
    let grant = match verdict {
        Ok(grant) => grant,
        Err(denial) => {
            return Err(refuse(state, request, session, member_id, AppError::Denied(denial)).await)
        }
    };
    if mode == Mode::Act && !may_act(actor.role, grant, state.settings.act_min_role) {
        let error = AppError::Refused(act_refusal(Some(grant)));
        return Err(refuse(state, request, session, member_id, error).await);
    }
    let target = row.ok_or(AppError::Internal)?;
    let verified = match reauthenticate(state, actor.id, &actor.email, password).await {
        Ok(verified) => verified,
        Err(error @ (AppError::LockedOut { .. } | AppError::Conflict(_))) => {
            return Err(refuse(state, request, session, member_id, error).await)
        }
        Err(error) => return Err(error),
    };
    if !verified {
        return Err(wrong_password(state, request, session, member_id).await);
    }
    let token = Token::generate();
    let start = Start {
        target: target.id,
        grant,
        reason: &reason,
        mode,
    };
    switch(state, request, session, start, &token).await?;
    tracing::info!(actor = actor.id, member = target.id, "session on behalf started");
    Ok(token)
}

/// Records a wrong password given to start a session on behalf of `member_id` and
/// returns the error.
pub(super) async fn wrong_password(
    state: &AppState,
    request: &RequestContext,
    session: &CurrentSession,
    member_id: i64,
) -> AppError {
    tracing::info!(
        actor = session.actor().id,
        "login on behalf refused: wrong password"
    );
    let event = NewEvent::new(AuditAction::OnBehalfReauthFailed, request)
        .by(session)
        .subject(member_id)
        .object(ObjectKind::Member, member_id)
        .details(json!({ "code": "wrong_password" }));
    match record(&state.db, state.clock.now(), event).await {
        Ok(_) => AppError::WrongPassword,
        Err(error) => error,
    }
}

/// What a session on behalf starts with.
struct Start<'a> {
    target: i64,
    grant: Grant,
    reason: &'a str,
    mode: Mode,
}

/// In one transaction: the actor's token ends (the request that still finds it
/// goes on), the session on behalf of `target` begins with `token`, and the start is
/// recorded.
async fn switch(
    state: &AppState,
    request: &RequestContext,
    session: &CurrentSession,
    start: Start<'_>,
    token: &Token,
) -> Result<(), AppError> {
    let Start {
        target,
        grant,
        reason,
        mode,
    } = start;
    let actor = session.actor().id;
    let now = state.clock.now();
    let absolute = now.saturating_add(state.settings.on_behalf_max_duration);
    let idle = next_idle_expiry(now, state.settings.session_idle_timeout, absolute);
    let user_agent = request.user_agent.as_deref().map(clip_user_agent);
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        // The actor's own session stays, without a token, until they come back. Only
        // the request that still finds its token parks it: of parallel starts from
        // one session, one goes on.
        let parked = sqlx::query(
            "UPDATE sessions SET token_hash = NULL WHERE id = $1 AND ended_at IS NULL AND token_hash IS NOT NULL",
        )
        .bind(session.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if parked != 1 {
            tx.rollback().await?;
            return Err(already_switched());
        }
        let inserted: Result<(i64,), sqlx::Error> = sqlx::query_as(
            "INSERT INTO sessions (token_hash, member_id, actor_id, parent_id, reason, created_at, last_seen_at, \
             idle_expires_at, absolute_expires_at, user_agent, ip, mode) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(token.hash())
        .bind(target)
        .bind(actor)
        .bind(session.id)
        .bind(reason)
        .bind(now)
        .bind(idle)
        .bind(absolute)
        .bind(user_agent)
        .bind(request.ip.as_deref())
        .bind(mode.as_str())
        .fetch_one(&mut *tx)
        .await;
        // The unique index on live sessions on behalf per parent says the same.
        let id = match inserted {
            Ok((id,)) => id,
            Err(error) if is_unique_violation(&error) => return Err(already_switched()),
            Err(error) => return Err(error.into()),
        };
        // The member is told (and, with SMTP configured, mailed), in the same
        // transaction; a member grant's use is a notice of its own.
        let mail = state.settings.mail.is_some();
        let notice = NewNotice {
            member_id: target,
            kind: NoticeKind::OnBehalfStarted,
            actor_id: Some(actor),
            reason,
            mode: Some(mode),
            session_id: Some(id),
            request_id: None,
        };
        write_notice(&mut tx, now, mail, notice.clone()).await?;
        if let Grant::Member(_) = grant {
            let used = NewNotice {
                kind: NoticeKind::GrantUsed,
                ..notice
            };
            write_notice(&mut tx, now, mail, used).await?;
        }
        let event = NewEvent::new(AuditAction::OnBehalfStart, request)
            .actor(actor)
            .subject(target)
            .on_behalf(id)
            .object(ObjectKind::Session, id)
            .details(json!({
                "reason": reason,
                "grant": grant.as_str(),
                "mode": mode.as_str(),
                "started_at": now,
                "expires_at": absolute,
            }));
        tx.append_audit(now, event).await?;
        tx.commit().await?;
        state.presence.wake(&state.db, target).await;
        Ok(())
    })
}

/// Another request from this session has already switched it to a session on behalf.
fn already_switched() -> AppError {
    AppError::Conflict(
        "This session has just started a session on behalf in another request; nothing more was switched."
            .into(),
    )
}

/// Leaves the session on behalf. Returns the actor's new token (none when their own
/// session is over too) and the member's ID.
pub async fn leave(state: &AppState, request: &RequestContext) -> Result<(Option<Token>, i64), AppError> {
    let session = request.require_session()?;
    let Some(on_behalf) = &session.on_behalf else {
        return Err(AppError::BadRequest(
            "You are not acting on anyone's behalf.".to_string(),
        ));
    };
    let end = EndOnBehalf {
        resume_parent: true,
        ..EndOnBehalf::asked(session, on_behalf, EndReason::Left, request)
    };
    let token = match end_on_behalf(state, end).await? {
        EndOutcome::AlreadyTaken => return Err(AppError::Unauthenticated),
        EndOutcome::Ended { parent_token } => parent_token,
    };
    tracing::info!(
        actor = on_behalf.actor.id,
        member = session.member.id,
        "left session on behalf"
    );
    Ok((token, session.member.id))
}

/// The "Login as" menu: members with admin access whose proxy login permission names
/// the viewer and whom the rule allows, by name (at most 50), each with its groups (a
/// person with one account per group tells them apart so). As in Kuroco, members
/// without admin access are not listed: they are reached from their blade, or by a
/// frontend through `alias_login`.
pub async fn candidates(state: &AppState, request: &RequestContext) -> Result<Vec<Candidate>, AppError> {
    let session = request.require_session()?;
    if session.on_behalf.is_some() {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, String, String, bool, Option<i64>)> = with_db!(&state.db, pool => {
        sqlx::query_as(
            "SELECT m.id, m.display_name, m.role, m.login_enabled, p.granted_by FROM proxy_permissions p \
             JOIN members m ON m.id = p.member_id \
             WHERE p.actor_id = $1 AND m.deleted_at IS NULL AND m.admin_access \
             ORDER BY m.name_key, m.id LIMIT 200",
        )
        .bind(session.member.id)
        .fetch_all(pool)
        .await?
    });
    let actor = rule_actor(session);
    let mut list: Vec<Candidate> = rows
        .into_iter()
        .filter_map(|(id, display_name, role, login_enabled, granted_by)| {
            let role = stored_role(id, &role).ok()?;
            let target = rule::Target {
                id,
                role,
                deleted: false,
                login_enabled,
                grants_actor: true,
                grant_written_by_actor: granted_by == Some(session.member.id),
                // An explicit grant needs no consent.
                asks_first: false,
                member_grant: None,
            };
            rule::can_log_in_on_behalf(&actor, Some(&target)).ok()?;
            Some(Candidate {
                id,
                display_name,
                role,
                groups: Vec::new(),
            })
        })
        .take(50)
        .collect();
    let ids: Vec<i64> = list.iter().map(|c| c.id).collect();
    let mut groups = groups_of(&state.db, &ids).await?;
    for candidate in &mut list {
        candidate.groups = groups
            .remove(&candidate.id)
            .unwrap_or_default()
            .into_iter()
            .map(|group| group.name)
            .collect();
    }
    Ok(list)
}
