//! The audit writer (lower layer, server only).
//!
//! Every record is appended inside the transaction of the change it records, by
//! `AuditTx::append_audit`. The appender holds the single `audit_head` row (SQLite:
//! the write transaction; PostgreSQL: `SELECT … FOR UPDATE`), gives the record the
//! next id, and stores `hash = HMAC-SHA256(key, previous hash ‖ record as JSON)`. So
//! the chain cannot fork under concurrent writers, any edit, insertion or removal
//! shows up in `audit::verify`, and someone who can write to the database but does not
//! hold the key (which is never stored there) cannot recompute the chain to hide one.
//! No code path updates or deletes audit records.
//!
//! Records written before the chain was keyed (by an older version) keep their plain
//! SHA-256 hashes. Which record is the first keyed one is kept with the key, outside the
//! database (`AuditKey::keyed_from`): the copy in `audit_head.keyed_from` is only
//! compared with it, so it cannot be moved to pass rewritten records off as old ones.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Sqlite, Transaction};

use crate::{
    audit_action::{AuditAction, ObjectKind},
    clock::Millis,
    context::{CurrentSession, RequestContext},
    db::with_db,
    db::{
        tx::{with_tx, Tx},
        BeginWrite, Db,
    },
    error::AppError,
};

/// The hash before the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// An event about to be recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub action: AuditAction,
    pub actor_id: Option<i64>,
    pub subject_id: Option<i64>,
    pub session_id: Option<i64>,
    pub object_type: Option<ObjectKind>,
    pub object_id: Option<String>,
    pub details: serde_json::Value,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session on behalf this change was made in, which must still be live.
    pub requires_live: Option<i64>,
}

/// A user agent as kept in the database and the audit trail: at most 512 characters.
pub fn clip_user_agent(user_agent: &str) -> String {
    user_agent.chars().take(512).collect()
}

impl NewEvent {
    /// An event with the client's address and user agent from `request`.
    pub fn new(action: AuditAction, request: &RequestContext) -> Self {
        NewEvent {
            action,
            actor_id: None,
            subject_id: None,
            session_id: None,
            object_type: None,
            object_id: None,
            details: serde_json::Value::Object(Default::default()),
            ip: request.ip.clone(),
            user_agent: request.user_agent.as_deref().map(clip_user_agent),
            requires_live: None,
        }
    }

    pub fn actor(mut self, id: i64) -> Self {
        self.actor_id = Some(id);
        self
    }

    /// Recorded as done by the real person behind `session`: the actor while on
    /// behalf (with the session on behalf named), else the member.
    ///
    /// While on behalf, the change is also tied to that session staying live: the
    /// append fails with `OnBehalfEnded` (and the whole change rolls back) if the
    /// session on behalf has ended since the request began.
    pub fn by(mut self, session: &CurrentSession) -> Self {
        self.actor_id = Some(session.actor().id);
        self.session_id = session.on_behalf_id();
        self.requires_live = session.on_behalf_id();
        self
    }

    /// Done within this session on behalf.
    pub fn on_behalf(mut self, session_id: i64) -> Self {
        self.session_id = Some(session_id);
        self
    }

    pub fn subject(mut self, id: i64) -> Self {
        self.subject_id = Some(id);
        self
    }

    pub fn object(mut self, kind: ObjectKind, id: impl ToString) -> Self {
        self.object_type = Some(kind);
        self.object_id = Some(id.to_string());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A record exactly as stored and hashed (the field order is part of the hash).
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor_id: Option<i64>,
    pub subject_id: Option<i64>,
    pub session_id: Option<i64>,
    pub action: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub details: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The key of the audit chain: 32 bytes that live outside the database (the server
/// reads them from `BEHALF_AUDIT_KEY` or a key file, see the server's `load_audit_key`),
/// and the first record written with it.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey {
    bytes: [u8; 32],
    /// Records before this one predate the key (plain SHA-256 links).
    pub keyed_from: i64,
}

/// 64 hex digits as 32 bytes (strictly: no sign, no spaces inside): a key, or a hash.
pub fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut bytes = [0; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

impl AuditKey {
    /// A key for a chain keyed from its first record.
    pub fn from_bytes(bytes: [u8; 32]) -> AuditKey {
        AuditKey { bytes, keyed_from: 1 }
    }

    /// The same key, for a chain whose records before `first` predate it.
    pub fn keyed_from(mut self, first: i64) -> AuditKey {
        self.keyed_from = first.max(1);
        self
    }

    /// A key from configuration: 64 hex digits are the key itself; anything else is a
    /// passphrase, whose SHA-256 is the key.
    pub fn from_secret(secret: &str) -> AuditKey {
        match parse_hex32(secret.trim()) {
            Some(bytes) => AuditKey::from_bytes(bytes),
            None => AuditKey::from_bytes(Sha256::digest(secret.as_bytes()).into()),
        }
    }

    /// A new random key.
    pub fn generate() -> AuditKey {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        let mut bytes = [0; 32];
        OsRng.fill_bytes(&mut bytes);
        AuditKey::from_bytes(bytes)
    }

    pub fn to_hex(&self) -> String {
        hex(&self.bytes)
    }

    /// A key as written by `to_hex` (64 hex digits), keyed from record 1, or None.
    pub fn from_hex(text: &str) -> Option<AuditKey> {
        parse_hex32(text.trim()).map(AuditKey::from_bytes)
    }

    /// The key file's text: the key, and the first record written with it.
    pub fn to_key_file(&self) -> String {
        format!("{}\nkeyed-from {}\n", self.to_hex(), self.keyed_from)
    }

    /// A key file as `to_key_file` writes it (a file of the key alone is keyed from 1).
    pub fn from_key_file(text: &str) -> Option<AuditKey> {
        let mut lines = text.lines();
        let key = AuditKey::from_hex(lines.next()?)?;
        match lines.next().map(str::trim).filter(|line| !line.is_empty()) {
            None => Some(key),
            Some(line) => {
                let first: i64 = line.strip_prefix("keyed-from ")?.trim().parse().ok()?;
                (first >= 1).then(|| key.keyed_from(first))
            }
        }
    }

    /// What the database keeps to tell whether an instance holds the chain's key (an
    /// HMAC of a fixed text: it says nothing about the key).
    pub fn check_value(&self) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(b"behalf audit key check");
        mac.finalize().into_bytes().to_vec()
    }

    /// An HMAC-SHA256 under this key, to feed.
    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes).expect("HMAC takes a key of any length")
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey(…, keyed_from: {})", self.keyed_from)
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

static KEY: OnceLock<AuditKey> = OnceLock::new();

/// Makes `key` the process's audit key (one process, one chain). A second call with
/// another key is refused: records must never be written with two keys.
pub fn install_key(key: AuditKey) -> Result<(), AppError> {
    let installed = KEY.get_or_init(|| key.clone());
    if *installed == key {
        Ok(())
    } else {
        tracing::error!("a second, different audit key was offered to this process");
        Err(AppError::Internal)
    }
}

/// Writes `key`'s check value into the chain's head if none is there yet (the first
/// process to start), and says whether the head's is `key`'s: false for an instance
/// holding another key than the one the chain is kept with.
pub async fn claim_key_check(db: &Db, key: &AuditKey) -> Result<bool, AppError> {
    let check = key.check_value();
    let stored: Option<Vec<u8>> = with_db!(db, pool => {
        sqlx::query("UPDATE audit_head SET key_check = $1 WHERE id = 1 AND key_check IS NULL")
            .bind(&check)
            .execute(pool)
            .await?;
        let (stored,): (Option<Vec<u8>>,) =
            sqlx::query_as("SELECT key_check FROM audit_head WHERE id = 1").fetch_one(pool).await?;
        stored
    });
    Ok(stored.as_deref() == Some(check.as_slice()))
}

/// The process's audit key.
pub fn installed_key() -> Result<&'static AuditKey, AppError> {
    KEY.get().ok_or_else(|| {
        tracing::error!("no audit key is loaded: nothing can be recorded");
        AppError::Internal
    })
}

/// HMAC-SHA256, keyed with the audit key, over the previous hash and the record's JSON.
pub fn chain_hash(key: &AuditKey, prev: &[u8], record: &AuditRecord) -> Vec<u8> {
    let json = serde_json::to_vec(record).expect("an audit record always serializes");
    let mut mac = key.mac();
    mac.update(prev);
    mac.update(&json);
    mac.finalize().into_bytes().to_vec()
}

/// The unkeyed SHA-256 link of records written before the chain was keyed.
pub fn unkeyed_hash(prev: &[u8], record: &AuditRecord) -> Vec<u8> {
    let json = serde_json::to_vec(record).expect("an audit record always serializes");
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(&json);
    hasher.finalize().to_vec()
}

/// Appends one record inside an open write transaction. Returns its id.
pub trait AuditTx {
    fn append_audit(
        &mut self,
        at: Millis,
        event: NewEvent,
    ) -> impl std::future::Future<Output = Result<i64, AppError>> + Send;
}

macro_rules! impl_audit_tx {
    ($database:ty, $lock_head:literal, $session_live:literal) => {
        impl AuditTx for Transaction<'_, $database> {
            async fn append_audit(&mut self, at: Millis, event: NewEvent) -> Result<i64, AppError> {
                if let Some(session) = event.requires_live {
                    // Checked before the chain head is taken, holding the session row
                    // (PostgreSQL: FOR SHARE, so an end that is committing now is waited
                    // for and seen; every writer takes the session row before the head,
                    // so no two wait on each other). An end found rolls the change back.
                    let ended: Option<(Option<i64>,)> =
                        sqlx::query_as($session_live)
                            .bind(session)
                            .fetch_optional(&mut **self)
                            .await?;
                    if !matches!(ended, Some((None,))) {
                        return Err(AppError::OnBehalfEnded);
                    }
                }
                let key = installed_key()?;
                let (last_id, prev): (i64, Vec<u8>) =
                    sqlx::query_as($lock_head).fetch_one(&mut **self).await?;
                let record = AuditRecord {
                    id: last_id + 1,
                    at,
                    actor_id: event.actor_id,
                    subject_id: event.subject_id,
                    session_id: event.session_id,
                    action: event.action.as_str().to_string(),
                    object_type: event.object_type.map(|kind| kind.as_str().to_string()),
                    object_id: event.object_id,
                    details: event.details.to_string(),
                    ip: event.ip,
                    user_agent: event.user_agent,
                };
                let hash = chain_hash(key, &prev, &record);
                sqlx::query(
                    "INSERT INTO audit_events (id, at, actor_id, subject_id, session_id, action, object_type, \
                     object_id, details, ip, user_agent, prev_hash, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(record.id)
                .bind(record.at)
                .bind(record.actor_id)
                .bind(record.subject_id)
                .bind(record.session_id)
                .bind(&record.action)
                .bind(&record.object_type)
                .bind(&record.object_id)
                .bind(&record.details)
                .bind(&record.ip)
                .bind(&record.user_agent)
                .bind(&prev)
                .bind(&hash)
                .execute(&mut **self)
                .await?;
                sqlx::query("UPDATE audit_head SET last_id = $1, hash = $2 WHERE id = 1")
                    .bind(record.id)
                    .bind(&hash)
                    .execute(&mut **self)
                    .await?;
                Ok(record.id)
            }
        }
    };
}

// SQLite: the write transaction (BEGIN IMMEDIATE) already excludes other writers.
impl_audit_tx!(
    Sqlite,
    "SELECT last_id, hash FROM audit_head WHERE id = 1",
    "SELECT ended_at FROM sessions WHERE id = $1"
);
// PostgreSQL: the row lock queues concurrent appenders, across instances too.
impl_audit_tx!(
    Postgres,
    "SELECT last_id, hash FROM audit_head WHERE id = 1 FOR UPDATE",
    "SELECT ended_at FROM sessions WHERE id = $1 FOR SHARE"
);

// A borrowed transaction of either backend (the shared write steps').
impl AuditTx for Tx<'_> {
    async fn append_audit(&mut self, at: Millis, event: NewEvent) -> Result<i64, AppError> {
        with_tx!(self, tx => tx.append_audit(at, event).await)
    }
}

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

/// Records an event that comes with no other change (a refused sign-in, say), in a
/// transaction of its own.
pub async fn record(db: &Db, at: Millis, event: NewEvent) -> Result<i64, AppError> {
    let id = with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let id = tx.append_audit(at, event).await?;
        tx.commit().await?;
        id
    });
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

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
