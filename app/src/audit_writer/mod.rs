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

mod chain;
mod event;
mod fold;
mod key;

pub use chain::{chain_hash, record, unkeyed_hash, AuditRecord, AuditTx, GENESIS};
pub use event::{clip_user_agent, NewEvent};
pub use fold::{flush_folded, record_folded, Folder, DISTINCT_PER_MINUTE, FOLD_WINDOW};
pub use key::{claim_key_check, hex, install_key, installed_key, parse_hex32, AuditKey};
