//! Whom the viewer may log in on behalf of, as a list (server only): Kuroco's
//! `aliaslogin_target`. The SQL only narrows the members down (the role grant's lower
//! ranks, or an explicit grant naming the viewer); the rule decides each one, so the
//! list can never promise more than a start would allow.

use crate::{
    context::RequestContext,
    db::with_db,
    error::AppError,
    on_behalf::service::{rule_actor, target_columns, TargetRow},
    role::Role,
    rule,
};

/// The longest page of targets one request returns.
pub const MAX_TARGETS: i64 = 100;

/// A member the viewer may log in on behalf of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasTarget {
    pub id: i64,
    pub display_name: String,
    pub email: String,
    pub role: Role,
}

/// One page of targets in ID order, after member `after`. `next` is the cursor of the
/// next page (the last member looked at), set while more may follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetPage {
    pub targets: Vec<AliasTarget>,
    pub next: Option<i64>,
}

/// The members the viewer may log in on behalf of, `limit` (1..=100) at a time. A
/// session on behalf may not start another, so it has none.
pub async fn aliaslogin_targets(
    state: &crate::state::AppState,
    request: &RequestContext,
    after: Option<i64>,
    limit: i64,
) -> Result<TargetPage, AppError> {
    let session = request.require_session()?;
    let empty = TargetPage {
        targets: Vec::new(),
        next: None,
    };
    if session.on_behalf.is_some() {
        return Ok(empty);
    }
    let me = &session.member;
    let limit = limit.clamp(1, MAX_TARGETS);
    let actor = rule_actor(session);
    // The role grant reaches every lower rank (support and above, with admin access).
    let lower: Vec<String> = if me.role >= Role::Support && me.admin_access {
        Role::ALL
            .into_iter()
            .filter(|r| r.rank() < me.role.rank())
            .map(|r| format!("'{}'", r.as_str()))
            .collect()
    } else {
        Vec::new()
    };
    let by_role = if lower.is_empty() {
        String::new()
    } else {
        format!("m.role IN ({}) OR ", lower.join(", "))
    };
    // The actor is bound as $2, as `target_columns` expects, and the time as $4.
    let columns = target_columns("$4");
    let sql = format!(
        "SELECT {columns} FROM members m \
         WHERE m.deleted_at IS NULL AND m.login_enabled AND m.id <> $2 AND m.id > $1 \
         AND ({by_role}m.id IN (SELECT member_id FROM proxy_permissions WHERE actor_id = $2)) \
         ORDER BY m.id LIMIT $3"
    );
    let rows: Vec<TargetRow> = with_db!(&state.db, pool => {
        sqlx::query_as(&sql)
            .bind(after.unwrap_or(0))
            .bind(me.id)
            .bind(limit)
            .bind(state.clock.now())
            .fetch_all(pool)
            .await?
    });
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let mut targets = Vec::with_capacity(rows.len());
    for row in rows {
        let target = row.rule_target(state.settings.consent_required)?;
        if rule::can_log_in_on_behalf(&actor, Some(&target)).is_ok() {
            targets.push(AliasTarget {
                id: row.id,
                display_name: row.display_name,
                email: row.email,
                role: target.role,
            });
        }
    }
    Ok(TargetPage { targets, next })
}
