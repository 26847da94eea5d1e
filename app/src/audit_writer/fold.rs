//! Folding of repeated refusals, so that a looping client cannot flood the chain.

use super::{chain::record, event::NewEvent};
use crate::{clock::Millis, db::Db, error::AppError};

/// Identical refusals within this long of the first are folded into it.
pub const FOLD_WINDOW: Millis = 60_000;
/// The most refusal windows kept in memory; past it, refusals are written unfolded
/// (nothing is dropped).
const MAX_WINDOWS: usize = 10_000;

/// Folds repeated identical refusals (same action, actor, session on behalf, address,
/// subject, object and details) so that a client looping a refused request cannot
/// flood the chain: the first of a minute is written at once; the repeats within that
/// minute are only counted, and written as one record of the same action with
/// `repeats`, `first_at` and `last_at` added, when the minute is over (by the next
/// identical refusal, or by `flush_folded`, which the server runs every few seconds
/// and at shutdown). In memory, per instance.
///
/// A client that varies the refused request (another object each time) is not
/// repeating one refusal, but it cannot flood the chain either: past
/// `DISTINCT_PER_MINUTE` refusals of one action from one source (actor, session,
/// address, user agent) in a minute, the rest of that minute's are folded into one
/// record of the action with `various: true` and the count.
#[derive(Default)]
pub struct Folder {
    folds: std::sync::Mutex<Folds>,
}

/// Distinct refusals of one action from one source written per minute before the
/// rest are folded together.
pub const DISTINCT_PER_MINUTE: u64 = 20;

#[derive(Default)]
struct Folds {
    windows: std::collections::HashMap<String, Window>,
    /// Per source and action: when its minute started and how many were written.
    sources: std::collections::HashMap<String, (Millis, u64)>,
}

struct Window {
    started: Millis,
    last: Millis,
    repeats: u64,
    event: NewEvent,
}

impl Window {
    /// A window opened at `at` for `event`, with `repeats` counted in it already.
    fn open(at: Millis, repeats: u64, event: NewEvent) -> Window {
        Window {
            started: at,
            last: at,
            repeats,
            event,
        }
    }

    /// Counts a repeat at `at` if this window's minute is still running; false if the
    /// minute is over.
    fn absorbs(&mut self, at: Millis) -> bool {
        let running = at - self.started < FOLD_WINDOW;
        if running {
            self.repeats += 1;
            self.last = self.last.max(at);
        }
        running
    }

    /// The record of this window's repeats, if there were any (their count, and when
    /// the first and the last came, in its details).
    fn summary(self) -> Option<NewEvent> {
        if self.repeats == 0 {
            return None;
        }
        let mut event = self.event;
        let mut details = match event.details {
            serde_json::Value::Object(map) => map,
            other => {
                let mut map = serde_json::Map::new();
                map.insert("details".into(), other);
                map
            }
        };
        details.insert("repeats".into(), self.repeats.into());
        details.insert("first_at".into(), self.started.into());
        details.insert("last_at".into(), self.last.into());
        event.details = serde_json::Value::Object(details);
        // A summary is written after the fact: it is not tied to the session on
        // behalf still being live.
        event.requires_live = None;
        Some(event)
    }
}

impl Folder {
    fn key(event: &NewEvent) -> String {
        serde_json::json!([
            event.action,
            event.actor_id,
            event.session_id,
            event.ip,
            event.user_agent,
            event.subject_id,
            event.object_type,
            event.object_id,
            event.details,
        ])
        .to_string()
    }

    /// Who a refusal comes from, and which action.
    fn source(event: &NewEvent) -> String {
        serde_json::json!([
            event.action,
            event.actor_id,
            event.session_id,
            event.ip,
            event.user_agent
        ])
        .to_string()
    }

    /// Whether `event` is to be written now (the first of its window), and the summary
    /// of the window it closes, if any.
    fn admit(&self, at: Millis, event: &NewEvent) -> (bool, Option<NewEvent>) {
        let key = Folder::key(event);
        let mut folds = self.folds.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Folds { windows, sources } = &mut *folds;
        if windows.get_mut(&key).is_some_and(|window| window.absorbs(at)) {
            return (false, None);
        }
        if windows.len() >= MAX_WINDOWS && !windows.contains_key(&key) {
            return (true, None);
        }
        // The source's budget of distinct refusals for this minute.
        let source = Folder::source(event);
        if sources.len() < MAX_WINDOWS || sources.contains_key(&source) {
            let budget = sources.entry(source.clone()).or_insert((at, 0));
            if at - budget.0 >= FOLD_WINDOW {
                *budget = (at, 0);
            }
            if budget.1 >= DISTINCT_PER_MINUTE {
                let overflow = format!("various:{source}");
                if windows
                    .get_mut(&overflow)
                    .is_some_and(|window| window.absorbs(at))
                {
                    return (false, None);
                }
                let mut various = event.clone();
                various.subject_id = None;
                various.object_type = None;
                various.object_id = None;
                various.details = serde_json::json!({ "various": true });
                let fresh = Window::open(at, 1, various);
                return (false, windows.insert(overflow, fresh).and_then(Window::summary));
            }
            budget.1 += 1;
        }
        let fresh = Window::open(at, 0, event.clone());
        (true, windows.insert(key, fresh).and_then(Window::summary))
    }

    /// Takes the windows that are over at `now` (all of them with `all`), and returns
    /// the summaries to write.
    fn take_due(&self, now: Millis, all: bool) -> Vec<NewEvent> {
        let mut folds = self.folds.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Folds { windows, sources } = &mut *folds;
        sources.retain(|_, (started, _)| !all && now - *started < FOLD_WINDOW);
        let due: Vec<String> = windows
            .iter()
            .filter(|(_, w)| all || now - w.started >= FOLD_WINDOW)
            .map(|(key, _)| key.clone())
            .collect();
        due.into_iter()
            .filter_map(|key| windows.remove(&key))
            .filter_map(Window::summary)
            .collect()
    }
}

/// Records a refusal through `folder` (see `Folder`). Returns whether it was written
/// now rather than counted.
pub async fn record_folded(db: &Db, folder: &Folder, at: Millis, event: NewEvent) -> Result<bool, AppError> {
    let (write, summary) = folder.admit(at, &event);
    // The summary of the minute before is written first, at this time (records stay in
    // time order); the refusal itself is written even if that fails.
    let summarized = match summary {
        Some(summary) => record(db, at, summary).await.map(|_| ()),
        None => Ok(()),
    };
    if write {
        record(db, at, event).await?;
    }
    summarized?;
    Ok(write)
}

/// Writes the summaries of the refusal windows that are over at `now` (every one with
/// `all`, at shutdown). Returns how many were written.
pub async fn flush_folded(db: &Db, folder: &Folder, now: Millis, all: bool) -> Result<usize, AppError> {
    let due = folder.take_due(now, all);
    let count = due.len();
    let mut failed = None;
    for event in due {
        // Each is tried: one failure does not drop the others.
        if let Err(error) = record(db, now, event).await {
            failed = Some(error);
        }
    }
    failed.map_or(Ok(count), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        audit_action::{AuditAction, ObjectKind},
        context::RequestContext,
    };

    fn refusal(ip: &str) -> NewEvent {
        let request = RequestContext {
            ip: Some(ip.to_string()),
            ..RequestContext::default()
        };
        NewEvent::new(AuditAction::MemberUpdateRefused, &request)
            .actor(7)
            .details(serde_json::json!({ "reason": "target_outranks_editor" }))
    }

    #[test]
    fn identical_refusals_within_a_minute_fold_into_one_count() {
        let folder = Folder::default();
        assert_eq!(
            folder.admit(1_000, &refusal("10.0.0.1")),
            (true, None),
            "the first is written"
        );
        for at in 1_001..1_030 {
            assert_eq!(
                folder.admit(at, &refusal("10.0.0.1")),
                (false, None),
                "repeats are counted"
            );
        }
        // Another address, or other details, is not the same refusal.
        assert!(folder.admit(1_031, &refusal("10.0.0.2")).0);
        let mut other = refusal("10.0.0.1");
        other.details = serde_json::json!({ "reason": "role_above_own_rank" });
        assert!(folder.admit(1_032, &other).0);
        // Nothing is due before the minute is over…
        assert!(folder.take_due(1_000 + FOLD_WINDOW - 1, false).is_empty());
        // …then the repeats come out as one record with their count.
        let (write, summary) = folder.admit(1_000 + FOLD_WINDOW, &refusal("10.0.0.1"));
        assert!(write, "the first of a new minute is written");
        let summary = summary.expect("a summary");
        assert_eq!(summary.details["last_at"], 1_029);
        assert_eq!(summary.details["repeats"], 29);
        assert_eq!(summary.details["first_at"], 1_000);
        assert_eq!(summary.details["reason"], "target_outranks_editor");
        // Windows without repeats write nothing at shutdown; the new one has none yet.
        assert!(folder.take_due(0, true).is_empty());
    }

    #[test]
    fn distinct_refusals_past_the_budget_fold_together() {
        let folder = Folder::default();
        let on = |object: i64| {
            let mut event = refusal("10.0.0.9");
            event.object_type = Some(ObjectKind::Session);
            event.object_id = Some(object.to_string());
            event
        };
        for object in 0..DISTINCT_PER_MINUTE as i64 {
            assert!(
                folder.admit(1_000 + object, &on(object)).0,
                "the first {DISTINCT_PER_MINUTE} are written"
            );
        }
        for object in 100..130 {
            assert_eq!(
                folder.admit(2_000 + object, &on(object)),
                (false, None),
                "then counted"
            );
        }
        // Another source keeps its own budget.
        assert!(folder.admit(2_500, &refusal("10.0.0.10")).0);
        let due = folder.take_due(2_100 + FOLD_WINDOW, false);
        let various: Vec<_> = due.iter().filter(|e| e.details["various"] == true).collect();
        assert_eq!(various.len(), 1, "{due:?}");
        assert_eq!(various[0].details["repeats"], 30);
        assert_eq!(various[0].object_id, None);
        // A new minute: a new budget.
        assert!(folder.admit(2_100 + FOLD_WINDOW + 5, &on(500)).0);
    }
}
