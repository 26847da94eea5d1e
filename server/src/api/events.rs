//! Live presence over server-sent events (Step 12). One stream per open page:
//! `GET /api/v1/profile/events` tells the member when a session on their behalf starts
//! or ends (and, when the stream opens, the ones already running);
//! `GET /api/on-behalf/events` tells an actor's window when its own session on behalf
//! is over, so it can go back to the actor's own session at once. Both look again on
//! every wake (`Presence`, fed by `NOTIFY` across instances on PostgreSQL) and on the
//! keep-alive, and close when the session they belong to is over.

use std::{collections::BTreeMap, convert::Infallible, time::Duration};

use app::{
    context::PresenceItem,
    error::AppError,
    session::presence::{self, live_on_behalf_of},
    state::AppState,
};
use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
};
use futures_util::stream::{self, Stream};
use serde_json::json;
use tokio::sync::broadcast::{error::RecvError, Receiver};

use super::{extract::ApiResult, types::rfc3339, Errors};
use crate::{session::Caller, state::ServerState};

/// A stream looks again at least this often (and sends a keep-alive comment).
const LOOK_AGAIN: Duration = Duration::from_secs(15);

struct Watch {
    state: AppState,
    /// Whose presence is watched, and the session the stream belongs to.
    member: i64,
    session: i64,
    /// For the actor's stream: the session on behalf whose end is awaited.
    awaited: Option<i64>,
    wakes: Receiver<i64>,
    tick: tokio::time::Interval,
    known: BTreeMap<i64, PresenceItem>,
    pending: Vec<Event>,
    closing: bool,
}

fn event(name: &str, item: &PresenceItem, end_reason: Option<&str>) -> Event {
    let mut data = json!({
        "session_id": item.session_id,
        "actor": { "id": item.actor_id, "display_name": item.actor_name, "role": item.actor_role.as_str() },
        "reason": item.reason,
        "mode": item.mode.as_str(),
        "started_at": rfc3339(item.started_at),
    });
    if let Some(why) = end_reason {
        data["end_reason"] = why.into();
    }
    Event::default().event(name).data(data.to_string())
}

/// Whether session `id` is still live now, and why it ended if it did.
async fn session_state(state: &AppState, id: i64) -> Result<(bool, Option<String>), AppError> {
    presence::session_state(&state.db, id, state.clock.now()).await
}

impl Watch {
    /// Looks again: the events for what changed since the last look.
    async fn look(&mut self) -> Result<(), AppError> {
        if let Some(awaited) = self.awaited {
            let (live, why) = session_state(&self.state, awaited).await?;
            if !live {
                let data = json!({ "session_id": awaited, "end_reason": why });
                self.pending
                    .push(Event::default().event("on_behalf_ended").data(data.to_string()));
                self.closing = true;
            }
            return Ok(());
        }
        if !session_state(&self.state, self.session).await?.0 {
            self.closing = true;
            return Ok(());
        }
        let now = self.state.clock.now();
        let live: BTreeMap<i64, PresenceItem> = live_on_behalf_of(&self.state.db, self.member, now)
            .await?
            .into_iter()
            .map(|item| (item.session_id, item))
            .collect();
        for (id, item) in &self.known {
            if !live.contains_key(id) {
                let why = session_state(&self.state, *id).await?.1;
                self.pending.push(event("on_behalf_ended", item, why.as_deref()));
            }
        }
        for (id, item) in &live {
            if !self.known.contains_key(id) {
                self.pending.push(event("on_behalf_started", item, None));
            }
        }
        self.known = live;
        Ok(())
    }

    /// Waits for a wake about this member, or the keep-alive's turn.
    async fn wait(&mut self) -> bool {
        loop {
            tokio::select! {
                woke = self.wakes.recv() => match woke {
                    Ok(member) if member != self.member => continue,
                    Ok(_) | Err(RecvError::Lagged(_)) => return true,
                    Err(RecvError::Closed) => return false,
                },
                _ = self.tick.tick() => return true,
            }
        }
    }

    fn stream(self) -> impl Stream<Item = Result<Event, Infallible>> {
        stream::unfold(self, |mut watch| async move {
            loop {
                if !watch.pending.is_empty() {
                    let next = watch.pending.remove(0);
                    return Some((Ok(next), watch));
                }
                if watch.closing || !watch.wait().await {
                    return None;
                }
                if let Err(error) = watch.look().await {
                    tracing::warn!(%error, "a presence stream could not look again; it closes");
                    return None;
                }
            }
        })
    }
}

fn watch(state: &ServerState, member: i64, session: i64, awaited: Option<i64>) -> Watch {
    let mut tick = tokio::time::interval(LOOK_AGAIN);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Watch {
        state: state.app.clone(),
        member,
        session,
        awaited,
        wakes: state.app.presence.subscribe(),
        tick,
        known: BTreeMap::new(),
        pending: Vec::new(),
        closing: false,
    }
}

/// Live presence: `on_behalf_started` and `on_behalf_ended` events (the session id,
/// the actor and the reason as JSON) while a session on behalf of the caller starts,
/// runs or ends. The stream closes when the caller's session ends.
#[utoipa::path(get, path = "/api/v1/profile/events", tag = "consent",
    responses((status = 200, content_type = "text/event-stream", body = String,
        description = "Server-sent events `on_behalf_started` and `on_behalf_ended`, data: \
                       {session_id, actor: {id, display_name, role}, reason, mode, started_at, end_reason?}"),
        Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn profile_events(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let session = caller.context.require_session()?;
    let mut watch = watch(&state, session.member.id, session.id, None);
    // The first tick is now: the first look reports what is running already.
    watch.look().await?;
    Ok(Sse::new(watch.stream()).keep_alive(KeepAlive::new().interval(LOOK_AGAIN)))
}

/// The actor's window: one `on_behalf_ended` event when its session on behalf is
/// over (whoever ended it), then the stream closes.
pub async fn actor_events(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let session = caller.context.require_session()?;
    if session.on_behalf.is_none() {
        return Err(AppError::BadRequest("You are not acting on anyone's behalf.".to_string()).into());
    }
    let mut watch = watch(&state, session.member.id, session.id, Some(session.id));
    watch.look().await?;
    Ok(Sse::new(watch.stream()).keep_alive(KeepAlive::new().interval(LOOK_AGAIN)))
}
