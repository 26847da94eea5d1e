//! One-click login links: a link that lets one member into their own account once,
//! without a password (support, onboarding). It signs the member in as themselves;
//! it is not a session on behalf.
//!
//! A link is `/one-click/{member_id}/{token}` with a 256-bit random token, stored only
//! as HMAC-SHA256 under the server's secret (`secret`). Opening it (GET) never uses it
//! up; confirming (POST) consumes it in one conditional statement. Who may create one
//! is `policy::may_create_link`.

use leptos::{prelude::*, server_fn::codec::PostUrl};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
pub mod ui;

/// Where one-click links live: `/one-click/{member_id}/{token}`.
pub const PATH_PREFIX: &str = "/one-click/";

/// An outstanding link, as the blade lists it (never its token).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OneClickLink {
    pub id: i64,
    pub member_id: i64,
    pub created_by_id: i64,
    pub created_by_name: String,
    /// Milliseconds since the Unix epoch (UTC), and the same for people.
    pub created_at: i64,
    pub created_at_text: String,
    pub expires_at: i64,
    pub expires_at_text: String,
}

/// A member's outstanding links, and the lifetimes a new one may have.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkList {
    pub links: Vec<OneClickLink>,
    pub default_minutes: i64,
    pub max_minutes: i64,
}

/// A link just created: the only time its address (with the token) is shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatedLink {
    pub link: OneClickLink,
    /// `/one-click/{member_id}/{token}`.
    pub path: String,
}

/// The outstanding links of member `member_id`. Support engineers and above, for
/// members they could create a link for.
#[server(prefix = "/api", endpoint = "one_click/list", input = PostUrl)]
pub async fn one_click_links(member_id: i64) -> Result<LinkList, AppError> {
    let (state, request) = crate::server::server_context()?;
    service::list(&state, &request, member_id).await
}

/// Creates a link for member `member_id`, lasting `expires_in_minutes` (the configured
/// default when empty). Its address is in the answer and nowhere else.
#[server(prefix = "/api", endpoint = "one_click/create", input = PostUrl)]
pub async fn create_one_click_link(
    member_id: i64,
    expires_in_minutes: Option<i64>,
) -> Result<CreatedLink, AppError> {
    let (state, request) = crate::server::server_context()?;
    service::create(&state, &request, member_id, expires_in_minutes).await
}

/// Revokes an outstanding link.
#[server(prefix = "/api", endpoint = "one_click/revoke", input = PostUrl)]
pub async fn revoke_one_click_link(id: i64) -> Result<(), AppError> {
    let (state, request) = crate::server::server_context()?;
    service::revoke(&state, &request, id).await
}
