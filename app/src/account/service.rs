//! The member's own area (server only).

use crate::{
    account::AccessRecord,
    clock::{format_utc, MINUTE},
    error::AppError,
    state::AppState,
    with_db,
};

type Row = (i64, String, i64, Option<i64>, Option<String>, Option<String>, i64);

/// The sessions on behalf of `member_id`, newest first (at most 100).
pub async fn access_history(state: &AppState, member_id: i64) -> Result<Vec<AccessRecord>, AppError> {
    let rows: Vec<Row> = with_db!(&state.db, pool => {
        sqlx::query_as(
            "SELECT s.id, a.display_name, s.created_at, s.ended_at, s.end_reason, s.reason, \
             (SELECT COUNT(*) FROM audit_events e WHERE e.session_id = s.id \
              AND e.action NOT IN ('on_behalf_start', 'on_behalf_end')) \
             FROM sessions s JOIN members a ON a.id = s.actor_id \
             WHERE s.member_id = $1 AND s.actor_id IS NOT NULL ORDER BY s.id DESC LIMIT 100",
        )
        .bind(member_id)
        .fetch_all(pool)
        .await?
    });
    let now = state.clock.now();
    Ok(rows
        .into_iter()
        .map(
            |(session_id, actor_name, started, ended, end_reason, reason, actions)| AccessRecord {
                session_id,
                actor_name,
                started: format_utc(started),
                ended: ended.map(format_utc),
                end_reason: end_reason.map(|r| r.replace('_', " ")),
                minutes: (ended.unwrap_or(now) - started) / MINUTE,
                reason: reason.unwrap_or_default(),
                actions,
            },
        )
        .collect())
}
