//! The chain itself: the record as hashed, its links, and the appender.

use hmac::Mac;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Sqlite, Transaction};

use super::{
    event::NewEvent,
    key::{installed_key, AuditKey},
};
use crate::{
    clock::Millis,
    db::with_db,
    db::{
        tx::{with_tx, Tx},
        BeginWrite, Db,
    },
    error::AppError,
};

/// The hash before the first record.
pub const GENESIS: [u8; 32] = [0; 32];

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

impl AuditRecord {
    /// The record `event` becomes as record `id`, written at `at` (both appenders,
    /// `AuditTx` here and a group commit's batch, build it so).
    pub(super) fn of(id: i64, at: Millis, event: NewEvent) -> AuditRecord {
        AuditRecord {
            id,
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
        }
    }
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
                let action = event.action;
                let record = AuditRecord::of(last_id + 1, at, event);
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
                // Counted once appended, before the transaction commits: a change that
                // rolls back after its record was appended is counted all the same.
                metrics::counter!("behalf_audit_records_total", "action" => action.as_str())
                    .increment(1);
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
