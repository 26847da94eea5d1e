//! Appending to and verifying the audit trail (server only).
//!
//! Every record is appended inside the transaction of the change it records, by
//! `AuditTx::append_audit`. The appender holds the single `audit_head` row (SQLite:
//! the write transaction; PostgreSQL: `SELECT … FOR UPDATE`), gives the record the
//! next id, and stores `hash = SHA-256(previous hash ‖ record as JSON)`. So the chain
//! cannot fork under concurrent writers, and any edit, insertion or removal shows
//! up in `verify`. No code path updates or deletes audit records.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Sqlite, Transaction};

use crate::{
    auth::session::RequestContext,
    clock::Millis,
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
}

impl NewEvent {
    /// An event with the client's address and user agent from `request`.
    pub fn new(action: &'static str, request: &RequestContext) -> Self {
        NewEvent {
            action,
            details: serde_json::Value::Object(Default::default()),
            ip: request.ip.clone(),
            user_agent: request
                .user_agent
                .as_deref()
                .map(|ua| ua.chars().take(512).collect()),
            ..NewEvent::default()
        }
    }

    pub fn actor(mut self, id: i64) -> Self {
        self.actor_id = Some(id);
        self
    }

    /// Recorded as done by the real person behind `session`: the actor while on
    /// behalf (with the session on behalf named), else the member.
    pub fn by(mut self, session: &crate::auth::session::CurrentSession) -> Self {
        self.actor_id = Some(session.actor().id);
        self.session_id = session.on_behalf_id();
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
    ) -> impl std::future::Future<Output = Result<i64, sqlx::Error>> + Send;
}

macro_rules! impl_audit_tx {
    ($database:ty, $lock_head:literal) => {
        impl AuditTx for Transaction<'_, $database> {
            async fn append_audit(&mut self, at: Millis, event: NewEvent) -> Result<i64, sqlx::Error> {
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
impl_audit_tx!(Sqlite, "SELECT last_id, hash FROM audit_head WHERE id = 1");
// PostgreSQL: the row lock queues concurrent appenders, across instances too.
impl_audit_tx!(
    Postgres,
    "SELECT last_id, hash FROM audit_head WHERE id = 1 FOR UPDATE"
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

/// What `verify` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every record matches; this many were checked.
    Intact { records: i64 },
    /// The first record that does not match, and why.
    Broken { id: i64, problem: String },
}

#[derive(sqlx::FromRow)]
struct StoredRecord {
    #[sqlx(flatten)]
    record: AuditRecord,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

/// Walks the whole chain in id order, in pages (memory stays flat however long it
/// is), and reports the first record whose content, link or position is wrong.
pub async fn verify(db: &Db) -> Result<Verdict, AppError> {
    const PAGE: i64 = 5_000;
    let mut expected_prev = GENESIS.to_vec();
    let mut expected_id = 1;
    loop {
        let page: Vec<StoredRecord> = with_db!(db, pool => {
            sqlx::query_as(
                "SELECT id, at, actor_id, subject_id, session_id, action, object_type, object_id, details, ip, \
                 user_agent, prev_hash, hash FROM audit_events WHERE id >= $1 ORDER BY id LIMIT $2",
            )
            .bind(expected_id)
            .bind(PAGE)
            .fetch_all(pool)
            .await?
        });
        let done = (page.len() as i64) < PAGE;
        for stored in page {
            let id = stored.record.id;
            if id != expected_id {
                return Ok(Verdict::Broken {
                    id: expected_id,
                    problem: format!("record {expected_id} is missing (the next one is {id})"),
                });
            }
            if stored.prev_hash != expected_prev {
                return Ok(Verdict::Broken {
                    id,
                    problem: "its link to the previous record does not match".into(),
                });
            }
            let hash = chain_hash(&expected_prev, &stored.record);
            if hash != stored.hash {
                return Ok(Verdict::Broken {
                    id,
                    problem: "its content does not match its hash".into(),
                });
            }
            expected_prev = hash;
            expected_id += 1;
        }
        if done {
            break;
        }
    }
    let (last_id, head): (i64, Vec<u8>) = with_db!(db, pool => {
        sqlx::query_as("SELECT last_id, hash FROM audit_head WHERE id = 1").fetch_one(pool).await?
    });
    if last_id != expected_id - 1 || head != expected_prev {
        return Ok(Verdict::Broken {
            id: expected_id,
            problem: format!(
                "the chain ends at record {} but its head says {last_id}",
                expected_id - 1
            ),
        });
    }
    Ok(Verdict::Intact {
        records: expected_id - 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: i64) -> AuditRecord {
        AuditRecord {
            id,
            at: 1_000,
            actor_id: Some(1),
            subject_id: Some(2),
            session_id: None,
            action: "sign_in".into(),
            object_type: Some("session".into()),
            object_id: Some("9".into()),
            details: "{}".into(),
            ip: Some("127.0.0.1".into()),
            user_agent: None,
        }
    }

    #[test]
    fn the_hash_covers_every_field_and_the_previous_hash() {
        let base = chain_hash(&GENESIS, &record(1));
        assert_eq!(base.len(), 32);
        assert_eq!(base, chain_hash(&GENESIS, &record(1)), "deterministic");
        assert_ne!(
            base,
            chain_hash(&[1; 32], &record(1)),
            "depends on the previous hash"
        );
        let variants: Vec<fn(&mut AuditRecord)> = vec![
            |r| r.id = 2,
            |r| r.at = 1_001,
            |r| r.actor_id = None,
            |r| r.subject_id = Some(3),
            |r| r.session_id = Some(1),
            |r| r.action = "sign_out".into(),
            |r| r.object_type = None,
            |r| r.object_id = Some("10".into()),
            |r| r.details = "{\"x\":1}".into(),
            |r| r.ip = None,
            |r| r.user_agent = Some("curl".into()),
        ];
        for change in variants {
            let mut changed = record(1);
            change(&mut changed);
            assert_ne!(chain_hash(&GENESIS, &changed), base, "{changed:?}");
        }
    }
}

// ---- the viewer ----------------------------------------------------------------------

/// Editors and super users with admin access (acting as themselves or, on behalf, as
/// a member who is one).
pub fn require_auditor(request: &RequestContext) -> Result<(), AppError> {
    let session = request.require_admin()?;
    if session.member.role < crate::members::Role::Editor {
        return Err(AppError::forbidden(
            "Only editors and super users may read the audit trail.",
        ));
    }
    Ok(())
}

/// A record with the names of its actor and subject.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NamedRecord {
    pub id: i64,
    pub at: i64,
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    pub subject_id: Option<i64>,
    pub subject_name: Option<String>,
    pub session_id: Option<i64>,
    pub action: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub details: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl NamedRecord {
    pub fn row(self) -> crate::audit::AuditRow {
        crate::audit::AuditRow {
            id: self.id,
            at: crate::clock::format_utc_seconds(self.at),
            actor: self.actor_id.map(|id| (id, self.actor_name.unwrap_or_default())),
            subject: self
                .subject_id
                .map(|id| (id, self.subject_name.unwrap_or_default())),
            session_id: self.session_id,
            action: self.action,
            object: self.object_type.map(|kind| match self.object_id {
                Some(id) => format!("{kind} {id}"),
                None => kind,
            }),
            details: self.details,
            ip: self.ip,
        }
    }
}

/// The first millisecond of a `YYYY-MM-DD` day (UTC).
fn day_start(date: &str) -> Result<Millis, AppError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(date, &format)
        .map(|d| (d.midnight().assume_utc().unix_timestamp_nanos() / 1_000_000) as Millis)
        .map_err(|_| AppError::validation("from", "There is no such date."))
}

/// Records matching `filter`, newest first, older than `before` (an id), at most `limit`.
pub async fn fetch(
    db: &Db,
    filter: &crate::audit::AuditFilter,
    before: Option<i64>,
    limit: i64,
    oldest_first: bool,
) -> Result<Vec<NamedRecord>, AppError> {
    let from = filter.from.as_deref().map(day_start).transpose()?;
    let to = filter
        .to
        .as_deref()
        .map(day_start)
        .transpose()
        .map_err(|_| AppError::validation("to", "There is no such date."))?
        .map(|start| start + 24 * crate::clock::HOUR);
    let rows = with_db!(db, pool => {
        let mut query = sqlx::QueryBuilder::new(
            "SELECT e.id, e.at, e.actor_id, a.display_name AS actor_name, e.subject_id, \
             s.display_name AS subject_name, e.session_id, e.action, e.object_type, e.object_id, \
             e.details, e.ip, e.user_agent FROM audit_events e \
             LEFT JOIN members a ON a.id = e.actor_id LEFT JOIN members s ON s.id = e.subject_id WHERE TRUE",
        );
        if let Some(actor) = filter.actor {
            query.push(" AND e.actor_id = ").push_bind(actor);
        }
        if let Some(subject) = filter.subject {
            query.push(" AND e.subject_id = ").push_bind(subject);
        }
        if let Some(action) = &filter.action {
            query.push(" AND e.action = ").push_bind(action.clone());
        }
        if let Some(session) = filter.session {
            query.push(" AND e.session_id = ").push_bind(session);
        }
        if let Some(from) = from {
            query.push(" AND e.at >= ").push_bind(from);
        }
        if let Some(to) = to {
            query.push(" AND e.at < ").push_bind(to);
        }
        if let Some(before) = before {
            query.push(if oldest_first { " AND e.id > " } else { " AND e.id < " }).push_bind(before);
        }
        query.push(if oldest_first { " ORDER BY e.id ASC LIMIT " } else { " ORDER BY e.id DESC LIMIT " });
        query.push_bind(limit);
        query.build_query_as::<NamedRecord>().fetch_all(pool).await?
    });
    Ok(rows)
}

pub async fn page(
    db: &Db,
    filter: &crate::audit::AuditFilter,
    before: Option<i64>,
    size: i64,
) -> Result<crate::audit::AuditPage, AppError> {
    let mut rows = fetch(db, filter, before.filter(|b| *b > 0), size + 1, false).await?;
    let older = (rows.len() as i64 > size).then(|| {
        rows.truncate(size as usize);
        rows.last().map(|r| r.id)
    });
    Ok(crate::audit::AuditPage {
        records: rows.into_iter().map(NamedRecord::row).collect(),
        older: older.flatten(),
    })
}

type SessionRow = (
    i64,
    i64,
    String,
    i64,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<String>,
);

/// A session on behalf: who, for whom, why, when, and every record made in it.
pub async fn timeline(db: &Db, id: i64) -> Result<crate::audit::Timeline, AppError> {
    let row: Option<SessionRow> = with_db!(db, pool => {
        sqlx::query_as(
            "SELECT s.id, s.actor_id, a.display_name, s.member_id, m.display_name, s.reason, s.created_at, \
             s.ended_at, s.end_reason FROM sessions s JOIN members a ON a.id = s.actor_id \
             JOIN members m ON m.id = s.member_id WHERE s.id = $1 AND s.actor_id IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
    });
    let Some((session_id, actor_id, actor_name, member_id, member_name, reason, started, ended, end_reason)) =
        row
    else {
        return Err(AppError::NotFound(format!(
            "There is no session on behalf with ID {id}."
        )));
    };
    let filter = crate::audit::AuditFilter {
        session: Some(session_id),
        ..Default::default()
    };
    let records = fetch(db, &filter, None, 1_000, true).await?;
    Ok(crate::audit::Timeline {
        session_id,
        actor: (actor_id, actor_name),
        member: (member_id, member_name),
        reason: reason.unwrap_or_default(),
        started: crate::clock::format_utc_seconds(started),
        ended: ended.map(crate::clock::format_utc_seconds),
        end_reason,
        records: records.into_iter().map(NamedRecord::row).collect(),
    })
}

/// One CSV field: quoted when needed, and a leading `=`, `+`, `-` or `@` defused so a
/// spreadsheet never runs it as a formula.
pub fn csv_field(text: &str) -> String {
    let defused = match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    };
    if defused.contains([',', '"', '\n', '\r']) || defused != defused.trim() {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

pub const CSV_HEADER: &str =
    "id,time_utc,actor_id,actor_name,subject_id,subject_name,on_behalf_session_id,action,object_type,object_id,details,ip,user_agent\n";

/// One record as a CSV line.
pub fn csv_line(record: &NamedRecord) -> String {
    let opt = |v: &Option<String>| v.as_deref().map(csv_field).unwrap_or_default();
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
        record.id,
        crate::clock::format_utc_seconds(record.at),
        num(record.actor_id),
        opt(&record.actor_name),
        num(record.subject_id),
        opt(&record.subject_name),
        num(record.session_id),
        csv_field(&record.action),
        opt(&record.object_type),
        opt(&record.object_id),
        csv_field(&record.details),
        opt(&record.ip),
        opt(&record.user_agent),
    )
}

#[cfg(test)]
mod viewer_tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-2"), "'-2");
        assert_eq!(
            csv_field("{\"reason\":\"left\"}"),
            "\"{\"\"reason\"\":\"\"left\"\"}\""
        );
    }
}
