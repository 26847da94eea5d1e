//! The filtered audit trail as CSV, streamed (see `app::audit::export`).

use app::{
    audit::{export, FilterParams},
    error::AppError,
};
use axum::{
    body::Body,
    extract::{Query, State},
    http::{header, StatusCode},
    response::Response,
};

use crate::{
    errors::{error_page, json_error},
    session::Caller,
    state::ServerState,
};

pub async fn export_audit_csv(
    State(state): State<ServerState>,
    caller: Caller,
    Query(params): Query<FilterParams>,
) -> Response {
    let export = match export::start(&state.app, &caller.context, &params).await {
        Ok(export) => export,
        Err(error) => return error_page(&error),
    };
    let filename = export.filename.clone();
    let chunks = futures_util::stream::unfold(export, |mut export| async move {
        let chunk = export.next_chunk().await?;
        let chunk = chunk
            .map(axum::body::Bytes::from)
            .map_err(|_| std::io::Error::other("the export stopped: database error"));
        Some((chunk, export))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(chunks))
        .unwrap_or_else(|_| json_error(&AppError::Internal))
}
