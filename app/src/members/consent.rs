//! The blade's view of a member's consent (Step 12): whether the rule lets the viewer
//! in now (the member's setting and grants included), the member's live grants, and
//! whether a request is what the viewer needs.

use crate::{
    context::CurrentSession,
    db::with_db,
    error::AppError,
    grant::{asks_first, grant_mode, live_grants, member_grant_sql, BladeConsent, RoleGrants},
    members::MemberSummary,
    rule::{self, Denial},
    state::AppState,
};

/// What the blade needs of the rule for `member`, whose proxy login permission names
/// the viewer as `explicit` (`Some(written by the viewer)`) or not (`None`).
pub(super) async fn blade_consent(
    state: &AppState,
    viewer: &CurrentSession,
    member: &MemberSummary,
    explicit: Option<bool>,
) -> Result<(bool, BladeConsent), AppError> {
    let now = state.clock.now();
    let me = &viewer.member;
    let row: Option<(String, Option<i64>, i64)> = with_db!(&state.db, pool => {
        sqlx::query_as(&format!(
            "SELECT m.role_grants, {} AS member_grant, \
             (SELECT COUNT(*) FROM access_requests r WHERE r.member_id = m.id AND r.requester_id = $2 \
              AND r.status = 'pending' AND r.expires_at > $3) FROM members m WHERE m.id = $1",
            member_grant_sql("m.id", "$2", "$3")
        ))
        .bind(member.id)
        .bind(me.id)
        .bind(now)
        .fetch_optional(pool)
        .await?
    });
    let (stored, member_grant, pending) = row.unwrap_or_else(|| ("allowed".to_string(), None, 0));
    let consent_required = state.settings.consent_required;
    let verdict = rule::can_log_in_on_behalf(
        &rule::Actor {
            id: me.id,
            role: me.role,
            admin_access: me.admin_access,
            on_behalf: viewer.on_behalf.is_some(),
        },
        Some(&rule::Target {
            id: member.id,
            role: member.role,
            deleted: false,
            login_enabled: member.login_enabled,
            grants_actor: explicit.is_some(),
            grant_written_by_actor: explicit == Some(true),
            asks_first: asks_first(&stored, consent_required),
            member_grant: grant_mode(member_grant),
        }),
    );
    let consent = BladeConsent {
        role_grants: RoleGrants::parse(&stored)
            .unwrap_or_default()
            .in_force(consent_required),
        grants: live_grants(&state.db, member.id, now).await?,
        can_request: verdict == Err(Denial::ConsentRequired) && pending == 0,
        pending_request: pending > 0,
    };
    Ok((verdict.is_ok(), consent))
}
