//! The member in the loop (Step 12): the member's setting, access requests, member
//! grants, notices, and ending a session on one's own behalf. Each handler reads the
//! caller and calls `app::consent::service`; everything here a member does for
//! themselves is protected (never on behalf, `crate::access`).

use app::{
    consent::{service as consent, NoticeKind, NoticeView, RequestStatus, RequestView},
    grant::{GrantDuration, GrantView, RoleGrants},
    mode::Mode,
};
use axum::{extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    extract::{positive, ApiJson, ApiPath, ApiResult},
    types::rfc3339,
    Errors,
};
use crate::{session::Caller, state::ServerState};

/// The member's setting.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnBehalfSettings {
    /// `allowed`: a role grant lets support staff in (the default). `ask`: a role grant
    /// alone does not; a member grant (or an approved access request) is needed.
    pub role_grants: RoleGrants,
}

/// The setting and what is in force.
#[derive(Serialize, ToSchema)]
pub struct OnBehalfSettingsView {
    pub role_grants: RoleGrants,
    /// `ask` when the server requires consent of everyone (`--consent required`),
    /// whatever the member's own setting.
    pub in_force: RoleGrants,
}

/// Someone named, with their role.
#[derive(Serialize, ToSchema)]
pub struct PersonRef {
    pub id: i64,
    pub display_name: String,
    /// member, support, editor or super_user (absent for a notice's actor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// An access request.
#[derive(Serialize, ToSchema)]
pub struct RequestItem {
    pub id: i64,
    pub status: RequestStatus,
    pub requester: PersonRef,
    pub reason: String,
    pub mode: Mode,
    pub duration: GrantDuration,
    /// When it expires unanswered (RFC 3339, UTC).
    pub expires_at: String,
    /// The grant an approval created.
    pub grant_id: Option<i64>,
}

impl From<RequestView> for RequestItem {
    fn from(view: RequestView) -> Self {
        RequestItem {
            id: view.id,
            status: view.status,
            requester: PersonRef {
                id: view.requester_id,
                display_name: view.requester_name,
                role: Some(view.requester_role.as_str().to_string()),
            },
            reason: view.reason,
            mode: view.mode,
            duration: view.duration,
            expires_at: rfc3339(view.expires_at),
            grant_id: view.grant_id,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RequestAnswer {
    pub request: RequestItem,
}

/// A request for access to a member's account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccessRequest {
    /// Why (3 to 500 characters): the member reads it.
    #[schema(max_length = 2000)]
    pub reason: String,
    pub mode: Mode,
    pub duration: GrantDuration,
}

/// A member grant.
#[derive(Serialize, ToSchema)]
pub struct GrantItem {
    pub id: i64,
    /// `null`: any support engineer.
    pub grantee_id: Option<i64>,
    pub grantee_name: String,
    pub mode: Mode,
    pub duration: GrantDuration,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

impl From<GrantView> for GrantItem {
    fn from(view: GrantView) -> Self {
        GrantItem {
            id: view.id,
            grantee_id: view.grantee_id,
            grantee_name: view.grantee_name,
            mode: view.mode,
            duration: view.duration,
            expires_at: rfc3339(view.expires_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct GrantCreated {
    pub grant: GrantItem,
}

/// A grant the member gives.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    /// A support engineer (or above, with admin access, ranking above you) by member
    /// ID; `null` or absent: any support engineer.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub grantee_id: Option<i64>,
    pub mode: Mode,
    pub duration: GrantDuration,
}

/// A notice.
#[derive(Serialize, ToSchema)]
pub struct NoticeItem {
    pub id: i64,
    pub kind: NoticeKind,
    /// RFC 3339, UTC.
    pub at: String,
    pub actor: Option<PersonRef>,
    pub reason: String,
    pub session_id: Option<i64>,
    pub read: bool,
}

impl From<NoticeView> for NoticeItem {
    fn from(view: NoticeView) -> Self {
        NoticeItem {
            id: view.id,
            kind: view.kind,
            at: rfc3339(view.at),
            actor: view.actor_id.map(|id| PersonRef {
                id,
                display_name: view.actor_name,
                role: None,
            }),
            reason: view.reason,
            session_id: view.session_id,
            read: view.read,
        }
    }
}

/// The caller's setting: may a role grant alone let support staff in?
#[utoipa::path(get, path = "/api/v1/profile/on_behalf_settings", tag = "consent",
    responses((status = 200, body = OnBehalfSettingsView), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn get_settings(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Json<OnBehalfSettingsView>> {
    let role_grants = consent::setting(&state.app, &caller.context).await?;
    Ok(Json(OnBehalfSettingsView {
        role_grants,
        in_force: role_grants.in_force(state.app.settings.consent_required),
    }))
}

/// Sets the caller's setting (`consent_setting_changed` when it changes).
#[utoipa::path(put, path = "/api/v1/profile/on_behalf_settings", tag = "consent",
    request_body = OnBehalfSettings,
    responses((status = 200, body = OnBehalfSettingsView), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn put_settings(
    State(state): State<ServerState>,
    caller: Caller,
    ApiJson(body): ApiJson<OnBehalfSettings>,
) -> ApiResult<Json<OnBehalfSettingsView>> {
    let role_grants =
        consent::set_role_grants(&state.app, &caller.context, body.role_grants.as_str()).await?;
    Ok(Json(OnBehalfSettingsView {
        role_grants,
        in_force: role_grants.in_force(state.app.settings.consent_required),
    }))
}

/// Ask a member for access (someone the rule would otherwise allow). A second
/// pending request to the same member is 409; unanswered, a request expires after a day.
#[utoipa::path(post, path = "/api/v1/members/{id}/access_requests", tag = "consent",
    params(("id" = i64, Path, minimum = 1)),
    request_body = NewAccessRequest,
    responses((status = 201, body = RequestAnswer), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn create_request(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<NewAccessRequest>,
) -> ApiResult<(StatusCode, Json<RequestAnswer>)> {
    let id = positive(id, "member")?;
    let form = consent::RequestForm::parse(&body.reason, body.mode.as_str(), body.duration.as_str())?;
    let request = consent::request(&state.app, &caller.context, id, form).await?;
    Ok((
        StatusCode::CREATED,
        Json(RequestAnswer {
            request: request.into(),
        }),
    ))
}

/// The caller's access requests: pending first, then the latest answered.
#[utoipa::path(get, path = "/api/v1/profile/access_requests", tag = "consent",
    responses((status = 200, body = Vec<RequestItem>), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list_requests(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Json<Vec<RequestItem>>> {
    let list = consent::requests(&state.app, &caller.context).await?;
    Ok(Json(list.into_iter().map(RequestItem::from).collect()))
}

async fn answer(
    state: ServerState,
    caller: Caller,
    id: i64,
    approve: bool,
) -> ApiResult<Json<RequestAnswer>> {
    let id = positive(id, "request")?;
    let request = consent::answer(&state.app, &caller.context, id, approve).await?;
    Ok(Json(RequestAnswer {
        request: request.into(),
    }))
}

/// Approve a pending request: a grant for that person, mode and duration.
#[utoipa::path(post, path = "/api/v1/profile/access_requests/{id}/approve", tag = "consent",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = RequestAnswer), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn approve(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<RequestAnswer>> {
    answer(state, caller, id, true).await
}

/// Deny a pending request.
#[utoipa::path(post, path = "/api/v1/profile/access_requests/{id}/deny", tag = "consent",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = RequestAnswer), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn deny(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<RequestAnswer>> {
    answer(state, caller, id, false).await
}

/// Grant access: to one person, or (`grantee_id` null) any support engineer, for a
/// time. A grant never lets in anyone the rest of the rule refuses.
#[utoipa::path(post, path = "/api/v1/profile/access_grants", tag = "consent",
    request_body = NewGrant,
    responses((status = 201, body = GrantCreated), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn create_grant(
    State(state): State<ServerState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewGrant>,
) -> ApiResult<(StatusCode, Json<GrantCreated>)> {
    let grantee = match body.grantee_id {
        Some(id) if id > 0 => id.to_string(),
        Some(_) => {
            let message = "Choose a person by their member ID, or null for any support engineer.";
            return Err(app::error::AppError::validation("grantee_id", message).into());
        }
        None => "any".to_string(),
    };
    let form = consent::GrantForm::parse(&grantee, body.mode.as_str(), body.duration.as_str())?;
    let grant = consent::create_grant(&state.app, &caller.context, form).await?;
    Ok((StatusCode::CREATED, Json(GrantCreated { grant: grant.into() })))
}

/// The caller's live grants.
#[utoipa::path(get, path = "/api/v1/profile/access_grants", tag = "consent",
    responses((status = 200, body = Vec<GrantItem>), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list_grants(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Json<Vec<GrantItem>>> {
    let list = consent::grants(&state.app, &caller.context).await?;
    Ok(Json(list.into_iter().map(GrantItem::from).collect()))
}

/// Revoke a grant: the sessions it allowed end at their next request.
#[utoipa::path(delete, path = "/api/v1/profile/access_grants/{id}", tag = "consent",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 204, description = "Revoked"), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn revoke_grant(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let id = positive(id, "grant")?;
    consent::revoke_grant(&state.app, &caller.context, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's notices, newest first (at most 100).
#[utoipa::path(get, path = "/api/v1/profile/notices", tag = "consent",
    responses((status = 200, body = Vec<NoticeItem>), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list_notices(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Json<Vec<NoticeItem>>> {
    let list = consent::notices(&state.app, &caller.context).await?;
    Ok(Json(list.into_iter().map(NoticeItem::from).collect()))
}

/// Mark a notice read (never on the member's behalf).
#[utoipa::path(post, path = "/api/v1/profile/notices/{id}/read", tag = "consent",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 204, description = "Read"), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn read_notice(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let id = positive(id, "notice")?;
    consent::mark_read(&state.app, &caller.context, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End a session on the caller's behalf (**End it now**), recorded as
/// `ended_by_member`; its actor returns to their own session.
#[utoipa::path(delete, path = "/api/v1/profile/on_behalf/{session_id}", tag = "consent",
    params(("session_id" = i64, Path, minimum = 1)),
    responses((status = 204, description = "Ended"), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn end_on_behalf(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(session_id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let id = positive(session_id, "session")?;
    consent::end_by_member(&state.app, &caller.context, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
