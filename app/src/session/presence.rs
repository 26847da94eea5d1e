//! Who is in a member's account right now (Step 12): the live sessions on their
//! behalf, and whether a session is still live — what the presence streams read when
//! the hub (`crate::presence`) wakes them.

use crate::{
    clock::{format_utc, Millis},
    context::PresenceItem,
    db::{stored_role, with_db, Db},
    error::AppError,
    mode::Mode,
};

type LiveRow = (i64, i64, String, String, i64, Option<String>, Option<String>);

/// The live sessions on behalf of `member` at `now`, oldest first.
pub async fn live_on_behalf_of(db: &Db, member: i64, now: Millis) -> Result<Vec<PresenceItem>, AppError> {
    let rows: Vec<LiveRow> = with_db!(db, pool => {
        sqlx::query_as(
            "SELECT s.id, a.id, a.display_name, a.role, s.created_at, s.reason, s.mode \
             FROM sessions s JOIN members a ON a.id = s.actor_id \
             WHERE s.member_id = $1 AND s.actor_id IS NOT NULL AND s.ended_at IS NULL \
             AND s.token_hash IS NOT NULL AND s.idle_expires_at > $2 AND s.absolute_expires_at > $2 \
             ORDER BY s.id LIMIT 20",
        )
        .bind(member)
        .bind(now)
        .fetch_all(pool)
        .await?
    });
    rows.into_iter()
        .map(
            |(session_id, actor_id, actor_name, role, started_at, reason, mode)| {
                Ok(PresenceItem {
                    session_id,
                    actor_id,
                    actor_name,
                    actor_role: stored_role(actor_id, &role)?,
                    since: clock_time(started_at),
                    started_at,
                    reason: reason.unwrap_or_default(),
                    mode: mode.as_deref().and_then(Mode::parse).unwrap_or_default(),
                })
            },
        )
        .collect()
}

/// Whether session `id` is live at `now`, and why it ended if it did ("expired" for
/// one past its expiry that no request has ended yet).
pub async fn session_state(db: &Db, id: i64, now: Millis) -> Result<(bool, Option<String>), AppError> {
    let row: Option<(Option<i64>, i64, i64, Option<String>)> = with_db!(db, pool => {
        sqlx::query_as("SELECT ended_at, idle_expires_at, absolute_expires_at, end_reason FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    Ok(match row {
        Some((ended, idle, absolute, why)) => {
            let live = super::liveness(now, ended, idle, absolute) == super::Liveness::Live;
            (live, why.or_else(|| (!live).then(|| "expired".to_string())))
        }
        None => (false, None),
    })
}

/// "10:42": the time of day (UTC) of `at`.
fn clock_time(at: Millis) -> String {
    let full = format_utc(at);
    // "2026-12-03 10:42 UTC" → "10:42".
    full.split(' ').nth(1).unwrap_or(&full).to_string()
}
