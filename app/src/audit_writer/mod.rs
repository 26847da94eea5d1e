//! The audit writer (lower layer, server only).
//!
//! Every record is appended inside the transaction of the change it records, by
//! `AuditTx::append_audit`. The appender holds the single `audit_head` row (SQLite:
//! the write transaction; PostgreSQL: `SELECT … FOR UPDATE`), gives the record the
//! next id, and stores `hash = HMAC-SHA256(key, previous hash ‖ record as JSON)`. So
//! the chain cannot fork under concurrent writers, any edit, insertion or removal
//! shows up in `audit::verify`, and someone who can write to the database but does not
//! hold the key (which is never stored there) cannot recompute the chain to hide one.
//! No code path updates or deletes audit records. Each append is counted for operators
//! (`behalf_audit_records_total{action}`, a no-op unless the server exports metrics).
//!
//! Records written before the chain was keyed (by an older version) keep their plain
//! SHA-256 hashes. Which record is the first keyed one is kept with the key, outside the
//! database (`AuditKey::keyed_from`): the copy in `audit_head.keyed_from` is only
//! compared with it, so it cannot be moved to pass rewritten records off as old ones.
//!
//! On PostgreSQL a change may instead hand its work to the group commit
//! (`GroupCommit`, in `group.rs` and `batch.rs`): concurrent changes run in one
//! transaction, each in a savepoint, and their records are appended together under
//! one hold of the head, committed once.

mod batch;
mod chain;
mod event;
mod fold;
mod group;
mod key;
mod trail;

pub use batch::{BatchTx, BoxFuture, DEFERRED_ID};
pub use chain::{chain_hash, record, unkeyed_hash, AuditRecord, AuditTx, GENESIS};
pub use event::{clip_user_agent, NewEvent};
pub use fold::{flush_folded, record_folded, Folder, DISTINCT_PER_MINUTE, FOLD_WINDOW};
pub use group::{BatchWork, GroupCommit};
pub use key::{claim_key_check, hex, install_key, installed_key, parse_hex32, AuditKey};
pub use trail::{flush_session, flush_trail, trail_path, View, ViewTrail, TRAIL_WINDOW};
