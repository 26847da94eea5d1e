//! Oversight (editors and super users): the live sessions on behalf and their
//! history, and ending one.

use app::oversight::{service as oversight, Impersonation};
use axum::{extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    extract::{positive, ApiPath, ApiQuery, ApiResult},
    types::rfc3339,
    Errors,
};
use crate::{session::Caller, state::ServerState};

/// A session on behalf.
#[derive(Serialize, ToSchema)]
pub struct ImpersonationView {
    pub id: i64,
    pub actor_id: i64,
    pub actor_name: String,
    /// member, support, editor or super_user.
    pub actor_role: String,
    pub member_id: i64,
    pub member_name: String,
    pub reason: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// Seconds until it ends by itself (0 once ended).
    pub seconds_left: i64,
    /// Why it ended (left, expired, revoked, signed out, replaced); absent while live.
    pub end_reason: Option<String>,
    /// Whether the caller may end it.
    pub can_end: bool,
}

impl From<Impersonation> for ImpersonationView {
    fn from(row: Impersonation) -> Self {
        ImpersonationView {
            id: row.id,
            actor_id: row.actor_id,
            actor_name: row.actor_name,
            actor_role: row.actor_role.as_str().to_string(),
            member_id: row.member_id,
            member_name: row.member_name,
            reason: row.reason,
            started_at: rfc3339(row.started_at),
            seconds_left: row.seconds_left,
            end_reason: row.end_reason,
            can_end: row.can_end,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ImpersonationList {
    /// Newest first, at most 200.
    pub impersonations: Vec<ImpersonationView>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImpersonationQuery {
    /// `true` for the latest ended sessions on behalf instead of the live ones.
    pub history: Option<bool>,
}

/// The live sessions on behalf (or, with `history=true`, the latest ended ones).
/// Editors and super users with admin access, in their own session.
#[utoipa::path(get, path = "/api/v1/impersonations", tag = "oversight", params(ImpersonationQuery),
    responses((status = 200, body = ImpersonationList), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list(
    State(state): State<ServerState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ImpersonationQuery>,
) -> ApiResult<Json<ImpersonationList>> {
    let list = oversight::list(&state.app, &caller.context, query.history.unwrap_or(false)).await?;
    Ok(Json(ImpersonationList {
        impersonations: list.rows.into_iter().map(ImpersonationView::from).collect(),
    }))
}

/// End a live session on behalf (reason `revoked`): its actor is back in their own
/// session at their next request. Not one whose actor ranks above the caller.
#[utoipa::path(delete, path = "/api/v1/impersonations/{id}", tag = "oversight",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 204, description = "Ended"), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn end(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let id = positive(id, "session on behalf")?;
    oversight::end(&state.app, &caller.context, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
