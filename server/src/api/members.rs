//! Members and groups (admin access; changes for editors and super users): the
//! services of the members list, the blade, the editor and the group pages.

use app::{
    error::AppError,
    groups::service as groups,
    members::{directory::proxies_of, search, service as members, ListParams, MemberSummary, PAGE_SIZE},
};
use axum::{extract::State, http::StatusCode, response::IntoResponse, Json};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    extract::{positive, ApiJson, ApiPath, ApiQuery, ApiResult},
    types::*,
    Errors,
};
use crate::{session::Caller, state::ServerState};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// Search text: name or email prefixes, or an ID.
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// `member`, `support`, `editor` or `super_user`.
    #[param(max_length = 20)]
    pub role: Option<String>,
    /// A group ID.
    #[param(max_length = 20)]
    pub group: Option<String>,
    /// `id`, `name` (default), `email`, `role` or `last_sign_in`.
    #[param(max_length = 20)]
    pub sort: Option<String>,
    /// `asc` (default) or `desc`.
    #[param(max_length = 4)]
    pub dir: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 20)]
    pub cursor: Option<String>,
    /// Members per page, 1 to 25 (default 25).
    #[param(minimum = 1, maximum = 25)]
    pub limit: Option<i64>,
}

/// Rows of a list as the API shows members: each with its proxy login permission
/// (one query for all of them).
async fn with_permissions(state: &ServerState, rows: Vec<MemberSummary>) -> ApiResult<Vec<ApiMember>> {
    let ids: Vec<i64> = rows.iter().map(|m| m.id).collect();
    let mut proxies = proxies_of(&state.app.db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|m| {
            let permission = proxies.remove(&m.id).unwrap_or_default();
            ApiMember::of(m, permission)
        })
        .collect())
}

/// One page of members, in the list's order.
#[utoipa::path(get, path = "/api/v1/members", tag = "members", params(MembersQuery),
    responses((status = 200, body = MemberList), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list(
    State(state): State<ServerState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<MembersQuery>,
) -> ApiResult<Json<MemberList>> {
    let limit = super::limit(query.limit, PAGE_SIZE, PAGE_SIZE)?;
    let params = ListParams {
        q: query.q,
        role: query.role,
        group: query.group,
        sort: query.sort,
        dir: query.dir,
        page: None,
        after: super::cursor(&query.cursor)?.map(|id| id.to_string()),
        before: None,
    };
    let page = search::list(&state.app, &caller.context, &params).await?;
    let mut rows = page.members;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|m| m.id)
    } else {
        page.next
    };
    Ok(Json(MemberList {
        members: with_permissions(&state, rows).await?,
        next_cursor: next.map(|id| id.to_string()),
    }))
}

/// One member.
#[utoipa::path(get, path = "/api/v1/members/{id}", tag = "members",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = ApiMember), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn get(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ApiMember>> {
    let id = positive(id, "member")?;
    let detail = members::detail(&state.app, &caller.context, id).await?;
    Ok(Json(ApiMember::from_detail(detail)))
}

/// Change any of a member's details; the rest stay. The editor's rules apply.
#[utoipa::path(patch, path = "/api/v1/members/{id}", tag = "members",
    params(("id" = i64, Path, minimum = 1)),
    request_body = MemberPatch,
    responses((status = 200, body = ApiMember), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn patch(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<MemberPatch>,
) -> ApiResult<Json<ApiMember>> {
    let id = positive(id, "member")?;
    let permit = members::permit_edit(&state.app, &caller.context, id).await?;
    let changes = body.into_changes()?;
    let saved = members::change_member(&state.app, permit, changes).await?;
    Ok(Json(ApiMember::from_detail(saved)))
}

/// Replace a member's proxy login permission. The editor's rules apply, including
/// that no one adds themselves to a peer's permission.
#[utoipa::path(put, path = "/api/v1/members/{id}/proxy_login_permission", tag = "members",
    params(("id" = i64, Path, minimum = 1)),
    request_body = ProxyPermission,
    responses((status = 200, body = ApiMember), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn put_proxy_permission(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ProxyPermission>,
) -> ApiResult<Json<ApiMember>> {
    let id = positive(id, "member")?;
    let permit = members::permit_edit(&state.app, &caller.context, id).await?;
    let changes = body.into_changes()?;
    let saved = members::change_member(&state.app, permit, changes)
        .await
        .map_err(|error| match error {
            // The editor's field is called proxy_login_permission; here it is member_ids.
            AppError::Validation { field, message } if field == "proxy_login_permission" => {
                AppError::Validation {
                    field: "member_ids".into(),
                    message,
                }
            }
            other => other,
        })?;
    Ok(Json(ApiMember::from_detail(saved)))
}

/// All groups, by name (at most 1,000).
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups",
    responses((status = 200, body = Vec<GroupView>), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list_groups(
    State(state): State<ServerState>,
    caller: Caller,
) -> ApiResult<Json<Vec<GroupView>>> {
    let list = groups::list(&state.app, &caller.context).await?;
    Ok(Json(list.groups.into_iter().map(GroupView::from).collect()))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GroupPageQuery {
    /// 1-based page of 25 members, by ID.
    #[param(minimum = 1, maximum = 400)]
    pub page: Option<i64>,
}

/// A group and one page of its members.
#[utoipa::path(get, path = "/api/v1/groups/{id}/members", tag = "groups",
    params(("id" = i64, Path, minimum = 1), GroupPageQuery),
    responses((status = 200, body = GroupMembers), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn group_members(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<GroupPageQuery>,
) -> ApiResult<Json<GroupMembers>> {
    let id = positive(id, "group")?;
    let page = super::limit(query.page, 1, app::groups::GROUP_MAX_PAGE).map_err(|_| {
        AppError::validation("page", format!("A page is 1 to {}.", app::groups::GROUP_MAX_PAGE))
    })?;
    let page = groups::page(&state.app, &caller.context, id, page).await?;
    Ok(Json(GroupMembers {
        group: page.group.into(),
        members: with_permissions(&state, page.members).await?,
        page: page.page,
        pages: page.pages,
    }))
}

/// Create a group (editors and super users).
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups",
    request_body = GroupName,
    responses((status = 201, body = GroupView), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn create_group(
    State(state): State<ServerState>,
    caller: Caller,
    ApiJson(body): ApiJson<GroupName>,
) -> ApiResult<impl IntoResponse> {
    let group = groups::create(&state.app, &caller.context, &body.name).await?;
    Ok((StatusCode::CREATED, Json(GroupView::from(group))))
}

/// Rename a group (editors and super users).
#[utoipa::path(patch, path = "/api/v1/groups/{id}", tag = "groups",
    params(("id" = i64, Path, minimum = 1)),
    request_body = GroupName,
    responses((status = 200, body = GroupView), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn rename_group(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<GroupName>,
) -> ApiResult<Json<GroupView>> {
    let id = positive(id, "group")?;
    let group = groups::rename(&state.app, &caller.context, id, &body.name).await?;
    Ok(Json(group.into()))
}

/// Delete a group (editors and super users, when no member of it outranks them).
#[utoipa::path(delete, path = "/api/v1/groups/{id}", tag = "groups",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 204, description = "Deleted"), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn delete_group(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let id = positive(id, "group")?;
    groups::delete(&state.app, &caller.context, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Put a member in a group (editors and super users, for members up to their rank).
#[utoipa::path(put, path = "/api/v1/groups/{id}/members/{member_id}", tag = "groups",
    params(("id" = i64, Path, minimum = 1), ("member_id" = i64, Path, minimum = 1)),
    responses((status = 204, description = "Added"), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn add_group_member(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath((id, member_id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let (id, member_id) = (positive(id, "group")?, positive(member_id, "member")?);
    groups::set_membership(&state.app, &caller.context, id, member_id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Take a member out of a group.
#[utoipa::path(delete, path = "/api/v1/groups/{id}/members/{member_id}", tag = "groups",
    params(("id" = i64, Path, minimum = 1), ("member_id" = i64, Path, minimum = 1)),
    responses((status = 204, description = "Removed"), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn remove_group_member(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath((id, member_id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let (id, member_id) = (positive(id, "group")?, positive(member_id, "member")?);
    groups::set_membership(&state.app, &caller.context, id, member_id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
