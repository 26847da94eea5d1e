//! One-click login links (support engineers and above, for members of lower rank):
//! create, list and revoke. The links themselves are used in the browser, at
//! `/one-click/{member_id}/{token}`, outside the API.

use app::one_click::{service as one_click, OneClickLink};
use axum::{extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    extract::{positive, ApiJson, ApiPath, ApiResult},
    types::rfc3339,
    Errors,
};
use crate::{session::Caller, state::ServerState};

/// An outstanding link (its token is never shown again).
#[derive(Serialize, ToSchema)]
pub struct LinkView {
    pub id: i64,
    pub member_id: i64,
    pub created_by: i64,
    pub created_by_name: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

impl From<OneClickLink> for LinkView {
    fn from(link: OneClickLink) -> Self {
        LinkView {
            id: link.id,
            member_id: link.member_id,
            created_by: link.created_by_id,
            created_by_name: link.created_by_name,
            created_at: rfc3339(link.created_at),
            expires_at: rfc3339(link.expires_at),
        }
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    /// Minutes the link lasts: 1 to the configured maximum (at most 10,080, seven
    /// days); the configured default (15 unless set) when left out.
    #[schema(minimum = 1, maximum = 10080)]
    pub expires_in_minutes: Option<i64>,
}

/// A new link: `path` holds the token, and this is the only time it is shown.
#[derive(Serialize, ToSchema)]
pub struct LinkCreated {
    pub link: LinkView,
    /// `/one-click/{member_id}/{token}`, to put after the server's address.
    pub path: String,
}

#[derive(Serialize, ToSchema)]
pub struct LinkListView {
    /// Newest first (a member has at most 20 outstanding).
    pub links: Vec<LinkView>,
    pub default_minutes: i64,
    pub max_minutes: i64,
}

/// Create a one-click login link for a member. Support engineers and above, for
/// members of strictly lower rank who may sign in; for a member with admin access,
/// super users only. Never in a session on behalf.
#[utoipa::path(post, path = "/api/v1/members/{id}/one_click_links", tag = "one-click links",
    params(("id" = i64, Path, minimum = 1)),
    request_body = NewLink,
    responses((status = 201, body = LinkCreated), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn create(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<NewLink>,
) -> ApiResult<(StatusCode, Json<LinkCreated>)> {
    let id = positive(id, "member")?;
    let created = one_click::create(&state.app, &caller.context, id, body.expires_in_minutes).await?;
    Ok((
        StatusCode::CREATED,
        Json(LinkCreated {
            link: created.link.into(),
            path: created.path,
        }),
    ))
}

/// A member's outstanding one-click links.
#[utoipa::path(get, path = "/api/v1/members/{id}/one_click_links", tag = "one-click links",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = LinkListView), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<LinkListView>> {
    let id = positive(id, "member")?;
    let list = one_click::list(&state.app, &caller.context, id).await?;
    Ok(Json(LinkListView {
        links: list.links.into_iter().map(LinkView::from).collect(),
        default_minutes: list.default_minutes,
        max_minutes: list.max_minutes,
    }))
}

/// Revoke an outstanding one-click link.
#[utoipa::path(delete, path = "/api/v1/one_click_links/{id}", tag = "one-click links",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 204, description = "Revoked"), Errors),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn revoke(
    State(state): State<ServerState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let id = positive(id, "one-click link")?;
    one_click::revoke(&state.app, &caller.context, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
