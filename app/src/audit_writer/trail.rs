//! The view trail (Step 11): what was read in a session on behalf, written behind the
//! request. The request pipeline only notes a view in memory ([`ViewTrail::note`], a
//! short lock and no I/O); a task writes the batch at least every second
//! ([`flush_trail`]), a session's own views are written when it ends
//! ([`flush_session`]), and a clean shutdown writes everything ([`flush_trail`] with
//! `all`).
//!
//! Folding: the first view of a path (with its query) in a session is recorded at the
//! next flush, as `on_behalf_viewed` with `count: 1`. The repeats of that path within
//! the minute that follows are only counted, and written as one more record with
//! their `count`, `first_at` and `last_at` when the minute is over (or the session
//! ends, or the server stops). So what was viewed is written within a second; a crash
//! loses at most the last second's first views and the running minute's repeat
//! counts, never the record of a change (changes are recorded in their own
//! transaction).

use std::collections::HashMap;

use percent_encoding::percent_decode_str;

use super::{chain::AuditTx, event::NewEvent};
use crate::{
    audit_action::{AuditAction, ObjectKind},
    clock::Millis,
    context::RequestContext,
    db::{with_db, BeginWrite, Db},
    error::AppError,
};

/// Repeats of one path in one session within this long of its first view fold into
/// one record.
pub const TRAIL_WINDOW: Millis = 60_000;
/// The most records waiting to be written; past it, views are dropped (and logged)
/// rather than let memory grow without bound if the database stays unreachable.
const MAX_PENDING: usize = 100_000;
/// The most open windows kept; past it a view is recorded without folding.
const MAX_WINDOWS: usize = 100_000;
/// Distinct paths of one session recorded each minute; past it, the rest of that
/// minute's new paths fold into one window of the session (path `[various]`), so a
/// client varying the query cannot flood the chain.
pub const DISTINCT_PATHS_PER_MINUTE: u64 = 30;
/// The path under which the session's views past `DISTINCT_PATHS_PER_MINUTE` fold.
pub const VARIOUS: &str = "[various]";

/// One read in a session on behalf, as the pipeline saw it.
#[derive(Clone, Debug)]
pub struct View {
    pub session_id: i64,
    pub actor_id: i64,
    pub member_id: i64,
    /// The path and the query string (with secrets removed: `trail_path`).
    pub path: String,
    /// What the member will read in their Access history ("Orders"), if known.
    pub label: Option<&'static str>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl View {
    fn event(&self, details: serde_json::Value) -> NewEvent {
        let mut event = NewEvent::new(AuditAction::OnBehalfViewed, &RequestContext::default())
            .actor(self.actor_id)
            .subject(self.member_id)
            .on_behalf(self.session_id)
            .object(ObjectKind::Session, self.session_id)
            .details(details);
        event.ip = self.ip.clone();
        event.user_agent = self.user_agent.clone();
        event
    }

    fn first(&self, at: Millis) -> NewEvent {
        self.event(serde_json::json!({
            "path": self.path,
            "label": self.label,
            "count": 1,
            "at": at,
        }))
    }
}

struct Window {
    started: Millis,
    last: Millis,
    repeats: u64,
    view: View,
}

impl Window {
    fn summary(self) -> Option<NewEvent> {
        (self.repeats > 0).then(|| {
            self.view.event(serde_json::json!({
                "path": self.view.path,
                "label": self.view.label,
                "count": self.repeats,
                "repeats": true,
                "first_at": self.started,
                "last_at": self.last,
            }))
        })
    }
}

#[derive(Default)]
struct Trail {
    pending: Vec<(i64, NewEvent)>,
    windows: HashMap<(i64, String), Window>,
    /// Per session: when its minute began, and how many distinct paths it recorded.
    distinct: HashMap<i64, (Millis, u64)>,
    dropped: u64,
}

/// The views noted and not yet written (in memory, per instance).
#[derive(Default)]
pub struct ViewTrail {
    trail: std::sync::Mutex<Trail>,
}

impl ViewTrail {
    /// Notes a view at `at`: no I/O, a short lock.
    pub fn note(&self, mut view: View, at: Millis) {
        let mut trail = self.trail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut key = (view.session_id, view.path.clone());
        if !trail.windows.contains_key(&key) && !trail.admits_new_path(view.session_id, at) {
            view.path = VARIOUS.to_string();
            view.label = None;
            key = (view.session_id, view.path.clone());
        }
        if let Some(window) = trail.windows.get_mut(&key) {
            if at - window.started < TRAIL_WINDOW {
                window.repeats += 1;
                window.last = window.last.max(at);
                return;
            }
            let over = trail.windows.remove(&key).and_then(Window::summary);
            if let Some(summary) = over {
                trail.push(view.session_id, summary);
            }
        }
        let first = view.first(at);
        trail.push(view.session_id, first);
        if trail.windows.len() < MAX_WINDOWS {
            trail.windows.insert(
                key,
                Window {
                    started: at,
                    last: at,
                    repeats: 0,
                    view,
                },
            );
        }
    }

    /// Takes what is due at `now`: every pending first view, and the summaries of
    /// the windows over (all of them with `all`).
    fn take_due(&self, now: Millis, all: bool) -> Vec<NewEvent> {
        let mut trail = self.trail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut due: Vec<NewEvent> = trail.pending.drain(..).map(|(_, event)| event).collect();
        let over: Vec<(i64, String)> = trail
            .windows
            .iter()
            .filter(|(_, window)| all || now - window.started >= TRAIL_WINDOW)
            .map(|(key, _)| key.clone())
            .collect();
        due.extend(
            over.into_iter()
                .filter_map(|key| trail.windows.remove(&key))
                .filter_map(Window::summary),
        );
        due
    }

    /// Takes everything noted for one session (its first views and its windows).
    fn take_session(&self, session_id: i64) -> Vec<NewEvent> {
        let mut trail = self.trail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (mine, others): (Vec<_>, Vec<_>) = trail
            .pending
            .drain(..)
            .partition(|(session, _)| *session == session_id);
        trail.pending = others;
        let mut due: Vec<NewEvent> = mine.into_iter().map(|(_, event)| event).collect();
        trail.distinct.remove(&session_id);
        let keys: Vec<(i64, String)> = trail
            .windows
            .keys()
            .filter(|(session, _)| *session == session_id)
            .cloned()
            .collect();
        due.extend(
            keys.into_iter()
                .filter_map(|key| trail.windows.remove(&key))
                .filter_map(Window::summary),
        );
        due
    }

    /// Puts records that could not be written back, to be tried at the next flush.
    fn put_back(&self, events: Vec<NewEvent>) {
        let mut trail = self.trail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for event in events {
            let session = event.session_id.unwrap_or_default();
            trail.push(session, event);
        }
    }

    /// How many views were dropped since the start (the database was unreachable for
    /// long).
    pub fn dropped(&self) -> u64 {
        self.trail.lock().map(|trail| trail.dropped).unwrap_or_default()
    }
}

impl Trail {
    /// Whether a path the session has no open window for may be recorded on its own:
    /// fewer than `DISTINCT_PATHS_PER_MINUTE` this minute (counted if so).
    fn admits_new_path(&mut self, session: i64, at: Millis) -> bool {
        if self.distinct.len() >= MAX_WINDOWS {
            self.distinct
                .retain(|_, (started, _)| at - *started < TRAIL_WINDOW);
        }
        let (started, count) = self.distinct.entry(session).or_insert((at, 0));
        if at - *started >= TRAIL_WINDOW {
            (*started, *count) = (at, 0);
        }
        *count += 1;
        *count <= DISTINCT_PATHS_PER_MINUTE
    }

    fn push(&mut self, session: i64, event: NewEvent) {
        if self.pending.len() >= MAX_PENDING {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                tracing::error!(
                    dropped = self.dropped,
                    "view trail records dropped: the database is not taking them"
                );
            }
            return;
        }
        self.pending.push((session, event));
    }
}

/// Writes what is due (every noted view; every window with `all`, at shutdown) in one
/// transaction. Returns how many records were written. On failure they are kept for
/// the next flush.
pub async fn flush_trail(db: &Db, trail: &ViewTrail, now: Millis, all: bool) -> Result<usize, AppError> {
    write(db, trail, now, trail.take_due(now, all)).await
}

/// Writes everything noted for `session_id` (it is ending).
pub async fn flush_session(
    db: &Db,
    trail: &ViewTrail,
    session_id: i64,
    now: Millis,
) -> Result<usize, AppError> {
    write(db, trail, now, trail.take_session(session_id)).await
}

async fn write(db: &Db, trail: &ViewTrail, now: Millis, events: Vec<NewEvent>) -> Result<usize, AppError> {
    if events.is_empty() {
        return Ok(0);
    }
    let count = events.len();
    let written: Result<(), AppError> = async {
        with_db!(db, pool => {
            let mut tx = pool.begin_write().await?;
            for event in events.iter().cloned() {
                tx.append_audit(now, event).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
    .await;
    match written {
        Ok(()) => Ok(count),
        Err(error) => {
            trail.put_back(events);
            Err(error)
        }
    }
}

/// A path and query as kept in the trail: at most 300 characters, and the value of
/// any query parameter whose name suggests a secret replaced by `[hidden]`.
pub fn trail_path(path: &str, query: Option<&str>) -> String {
    const SECRET_NAMES: [&str; 6] = ["token", "password", "secret", "key", "code", "session"];
    let mut kept = path.to_string();
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        let parts: Vec<String> = query
            .split('&')
            .map(|pair| {
                let name = pair.split('=').next().unwrap_or_default();
                // As the server reads it: `%74oken` is `token`.
                let lower = percent_decode_str(&name.replace('+', " "))
                    .decode_utf8_lossy()
                    .to_ascii_lowercase();
                if SECRET_NAMES.iter().any(|secret| lower.contains(secret)) {
                    format!("{name}=[hidden]")
                } else {
                    pair.to_string()
                }
            })
            .collect();
        kept.push('?');
        kept.push_str(&parts.join("&"));
    }
    kept.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(session_id: i64, path: &str) -> View {
        View {
            session_id,
            actor_id: 2,
            member_id: 3,
            path: path.to_string(),
            label: Some("Orders"),
            ip: None,
            user_agent: None,
        }
    }

    fn count(event: &NewEvent) -> u64 {
        event.details["count"].as_u64().unwrap()
    }

    #[test]
    fn repeats_of_a_path_within_a_minute_fold_into_one_record_with_a_count() {
        let trail = ViewTrail::default();
        trail.note(view(1, "/account/orders"), 1_000);
        trail.note(view(1, "/account/orders"), 2_000);
        trail.note(view(1, "/account/orders"), 30_000);
        trail.note(view(1, "/"), 30_000);
        // Within the minute, the first views only.
        let due = trail.take_due(31_000, false);
        assert_eq!(due.len(), 2);
        assert!(due.iter().all(|e| count(e) == 1));
        // The minute over: one record of the two repeats.
        let due = trail.take_due(61_000, false);
        assert_eq!(due.len(), 1);
        assert_eq!(count(&due[0]), 2);
        assert_eq!(due[0].details["first_at"], 1_000);
        assert_eq!(due[0].details["last_at"], 30_000);
        // A view after the window opens a new one.
        trail.note(view(1, "/account/orders"), 62_000);
        assert_eq!(trail.take_due(62_500, false).len(), 1);
    }

    #[test]
    fn a_session_ending_takes_its_own_views_only() {
        let trail = ViewTrail::default();
        trail.note(view(1, "/a"), 1_000);
        trail.note(view(1, "/a"), 1_500);
        trail.note(view(2, "/a"), 1_000);
        let mine = trail.take_session(1);
        assert_eq!(mine.len(), 2, "the first view and the repeat's summary");
        assert!(mine.iter().all(|e| e.session_id == Some(1)));
        let rest = trail.take_due(1_001, true);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].session_id, Some(2));
    }

    #[test]
    fn a_client_varying_the_path_cannot_flood_the_trail() {
        let trail = ViewTrail::default();
        for i in 0..100 {
            trail.note(view(1, &format!("/api/v1/products?n={i}")), 1_000 + i);
        }
        let due = trail.take_due(2_000, true);
        let various: Vec<_> = due.iter().filter(|e| e.details["path"] == VARIOUS).collect();
        assert_eq!(
            due.len() as u64,
            DISTINCT_PATHS_PER_MINUTE + 2,
            "30 paths, [various] and its count"
        );
        assert_eq!(various.len(), 2);
        assert_eq!(count(various[1]), 100 - DISTINCT_PATHS_PER_MINUTE - 1);
        // The next minute records distinct paths again.
        trail.note(view(1, "/account/orders"), 70_000);
        assert_eq!(
            trail.take_due(70_001, false)[0].details["path"],
            "/account/orders"
        );
    }

    #[test]
    fn secrets_in_the_query_are_hidden() {
        assert_eq!(trail_path("/account/orders", None), "/account/orders");
        assert_eq!(
            trail_path("/api/v1/members", Some("q=smi&token=abc&apiKey=x")),
            "/api/v1/members?q=smi&token=[hidden]&apiKey=[hidden]"
        );
        assert_eq!(
            trail_path("/x", Some("%74oken=S1&access%5Ftoken=S2&pass+word=S3")),
            "/x?%74oken=[hidden]&access%5Ftoken=[hidden]&pass+word=S3"
        );
        assert_eq!(trail_path(&"/x".repeat(400), None).chars().count(), 300);
    }
}
