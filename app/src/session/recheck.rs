//! Ending at once the sessions on a member's behalf that the rule no longer allows,
//! when the member (or the clock) takes their consent back: a grant revoked or
//! expired, or **Ask me first** turned on. The lookup would end each at its next
//! request anyway; ending them now keeps the member's region **Someone is signed in on
//! your behalf** true at once, and the actor's next request finds the session over and
//! gets their own session back, told why (as after **End it now**).

use crate::{
    audit_writer::flush_session,
    context::RequestContext,
    db::{with_db, BeginWrite},
    error::AppError,
    session::{
        lookup::no_longer_allowed,
        store::{end_on_behalf_row, OnBehalfEnding},
        EndReason,
    },
    state::AppState,
};

/// Ends, reason `revoked`, every live session on behalf of `member` the rule no longer
/// allows, each in its own transaction with the member's notice and its
/// `on_behalf_end` record (`store::end_on_behalf_row`) (`by`: the member whose change it was; none for the clock).
/// Called once the change is committed: if this fails, the change stands and each
/// session still ends at its next request (the lookup re-checks the rule), so the
/// failure is logged, not returned. Returns how many it ended.
pub async fn end_no_longer_allowed(
    state: &AppState,
    member: i64,
    by: Option<i64>,
    request: &RequestContext,
) -> usize {
    match end_each(state, member, by, request).await {
        Ok(ended) => ended,
        Err(error) => {
            tracing::error!(%error, member, "could not end the sessions on behalf a consent change no longer allows");
            0
        }
    }
}

async fn end_each(
    state: &AppState,
    member: i64,
    by: Option<i64>,
    request: &RequestContext,
) -> Result<usize, AppError> {
    let mut ended_count = 0;
    for (session_id, actor) in no_longer_allowed(state, member).await? {
        let now = state.clock.now();
        // What was viewed in it is written first, so the trail comes before its end.
        if let Err(error) = flush_session(&state.db, &state.trail, session_id, now).await {
            tracing::error!(%error, session = session_id, "could not write the view trail of a session ending");
        }
        let ending = OnBehalfEnding {
            session_id,
            member_id: member,
            actor_id: actor,
            reason: EndReason::Revoked,
            by,
        };
        let ended = with_db!(&state.db, pool => {
            let mut tx = pool.begin_write().await?;
            let ended = end_on_behalf_row(&mut tx, now, &ending, request).await?;
            if ended {
                tx.commit().await?;
            }
            ended
        });
        // Told at once, whatever happens to the next one.
        if ended {
            ended_count += 1;
            state.presence.wake(&state.db, member).await;
        }
    }
    Ok(ended_count)
}
