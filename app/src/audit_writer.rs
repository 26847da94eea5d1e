//! The audit writer (lower layer, server only).
//!
//! Every record is appended inside the transaction of the change it records, by
//! `AuditTx::append_audit`. The appender holds the single `audit_head` row (SQLite:
//! the write transaction; PostgreSQL: `SELECT … FOR UPDATE`), gives the record the
//! next id, and stores `hash = SHA-256(previous hash ‖ record as JSON)`. So the chain
//! cannot fork under concurrent writers, and any edit, insertion or removal shows
//! up in `audit::verify`. No code path updates or deletes audit records.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Sqlite, Transaction};

use crate::{
    clock::Millis,
    context::{CurrentSession, RequestContext},
    db::{BeginWrite, Db},
    error::AppError,
    with_db,
};

/// The hash before the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// An event about to be recorded.
#[derive(Clone, Debug, Default)]
pub struct NewEvent {
    pub action: &'static str,
    pub actor_id: Option<i64>,
    pub subject_id: Option<i64>,
    pub session_id: Option<i64>,
    pub object_type: Option<&'static str>,
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
    pub fn new(action: &'static str, request: &RequestContext) -> Self {
        NewEvent {
            action,
            details: serde_json::Value::Object(Default::default()),
            ip: request.ip.clone(),
            user_agent: request.user_agent.as_deref().map(clip_user_agent),
            ..NewEvent::default()
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

    pub fn object(mut self, kind: &'static str, id: impl ToString) -> Self {
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

/// SHA-256 over the previous hash and the record's JSON.
pub fn chain_hash(prev: &[u8], record: &AuditRecord) -> Vec<u8> {
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
                let (last_id, prev): (i64, Vec<u8>) =
                    sqlx::query_as($lock_head).fetch_one(&mut **self).await?;
                let record = AuditRecord {
                    id: last_id + 1,
                    at,
                    actor_id: event.actor_id,
                    subject_id: event.subject_id,
                    session_id: event.session_id,
                    action: event.action.to_string(),
                    object_type: event.object_type.map(str::to_string),
                    object_id: event.object_id,
                    details: event.details.to_string(),
                    ip: event.ip,
                    user_agent: event.user_agent,
                };
                let hash = chain_hash(&prev, &record);
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
