//! The audit viewer's queries (server only): filtered pages, a session's timeline
//! and the CSV export's rows.

use crate::{
    audit::{AuditFilter, AuditPage, AuditRow, FilterParams, Timeline, PAGE_SIZE},
    audit_writer::AuditRecord,
    clock::{format_utc_seconds, Millis, HOUR},
    context::RequestContext,
    db::with_db,
    db::Db,
    error::AppError,
    guard::require_auditor,
    state::AppState,
};

/// A record with the names of its actor and subject.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NamedRecord {
    #[sqlx(flatten)]
    pub record: AuditRecord,
    pub actor_name: Option<String>,
    pub subject_name: Option<String>,
}

impl NamedRecord {
    pub fn row(self) -> AuditRow {
        let record = self.record;
        AuditRow {
            id: record.id,
            at: format_utc_seconds(record.at),
            actor: record
                .actor_id
                .map(|id| (id, self.actor_name.unwrap_or_default())),
            subject: record
                .subject_id
                .map(|id| (id, self.subject_name.unwrap_or_default())),
            session_id: record.session_id,
            action: record.action,
            object: record.object_type.map(|kind| match record.object_id {
                Some(id) => format!("{kind} {id}"),
                None => kind,
            }),
            details: record.details,
            ip: record.ip,
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
    filter: &AuditFilter,
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
        .map(|start| start + 24 * HOUR);
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
            query.push(" AND e.action = ").push_bind(action.as_str());
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

/// A page of the audit trail, newest first, older than `before`. Editors and super
/// users with admin access.
pub async fn page(
    state: &AppState,
    request: &RequestContext,
    params: &FilterParams,
    before: Option<i64>,
) -> Result<AuditPage, AppError> {
    require_auditor(request)?;
    let filter = AuditFilter::parse(params)?;
    let size = PAGE_SIZE;
    let mut rows = fetch(&state.db, &filter, before.filter(|b| *b > 0), size + 1, false).await?;
    let older = (rows.len() as i64 > size).then(|| {
        rows.truncate(size as usize);
        rows.last().map(|r| r.record.id)
    });
    Ok(AuditPage {
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
/// Editors and super users with admin access.
pub async fn timeline(state: &AppState, request: &RequestContext, id: i64) -> Result<Timeline, AppError> {
    require_auditor(request)?;
    let db = &state.db;
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
    let filter = AuditFilter {
        session: Some(session_id),
        ..Default::default()
    };
    let records = fetch(db, &filter, None, 1_000, true).await?;
    Ok(Timeline {
        session_id,
        actor: (actor_id, actor_name),
        member: (member_id, member_name),
        reason: reason.unwrap_or_default(),
        started: format_utc_seconds(started),
        ended: ended.map(format_utc_seconds),
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
pub fn csv_line(named: &NamedRecord) -> String {
    let opt = |v: &Option<String>| v.as_deref().map(csv_field).unwrap_or_default();
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let record = &named.record;
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
        record.id,
        format_utc_seconds(record.at),
        num(record.actor_id),
        opt(&named.actor_name),
        num(record.subject_id),
        opt(&named.subject_name),
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
