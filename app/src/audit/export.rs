//! The CSV export of the audit trail (server only): who may export, the filters, the
//! record of the export itself, and the rows in chunks, oldest first. The HTTP layer
//! only streams what `CsvExport::next_chunk` gives it.

use serde_json::json;

use crate::{
    audit::{
        service::{csv_line, fetch, CSV_HEADER},
        AuditFilter, FilterParams,
    },
    audit_action::AuditAction,
    audit_writer::{record, NewEvent},
    clock::format_utc,
    context::RequestContext,
    db::Db,
    error::{AppError, Refusal},
    guard::require_auditor,
    state::AppState,
};

/// Rows fetched per round trip while streaming (a million records are never held in
/// memory).
pub const EXPORT_CHUNK: i64 = 1_000;

/// An export under way.
pub struct CsvExport {
    db: Db,
    filter: AuditFilter,
    /// The last record sent (0 before the first chunk); `None` once done.
    cursor: Option<i64>,
    /// The file name to offer.
    pub filename: String,
}

/// Starts an export for an editor or super user with admin access, and records it.
/// The link is a GET (a download), but it writes a record: it is refused when the
/// browser says another site sent it (`Sec-Fetch-Site` other than `same-origin`).
pub async fn start(
    state: &AppState,
    request: &RequestContext,
    params: &FilterParams,
) -> Result<CsvExport, AppError> {
    if request
        .fetch_site
        .as_deref()
        .is_some_and(|site| site != "same-origin")
    {
        return Err(AppError::Refused(Refusal::CrossSite));
    }
    let session = require_auditor(request)?;
    let filter = AuditFilter::parse(params)?;
    let now = state.clock.now();
    let event = NewEvent::new(AuditAction::AuditExported, request)
        .by(session)
        .subject(session.member.id)
        .details(json!({ "filter": filter.query_string() }));
    record(&state.db, now, event).await?;
    Ok(CsvExport {
        db: state.db.clone(),
        filter,
        cursor: Some(0),
        filename: format!("behalf-audit-{}.csv", format_utc(now).replace([' ', ':'], "-")),
    })
}

impl CsvExport {
    /// The next piece of the file (the header first), or `None` at the end.
    pub async fn next_chunk(&mut self) -> Option<Result<String, AppError>> {
        let after = self.cursor?;
        let rows = match fetch(&self.db, &self.filter, Some(after), EXPORT_CHUNK, true).await {
            Ok(rows) => rows,
            Err(error) => {
                self.cursor = None;
                return Some(Err(error));
            }
        };
        let mut text = if after == 0 {
            CSV_HEADER.to_string()
        } else {
            String::new()
        };
        for row in &rows {
            text.push_str(&csv_line(row));
        }
        self.cursor = (rows.len() as i64 == EXPORT_CHUNK)
            .then(|| rows.last().map(|r| r.record.id))
            .flatten();
        Some(Ok(text))
    }
}
