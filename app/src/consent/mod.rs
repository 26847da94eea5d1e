//! The member in the loop (Step 12): the member's setting (let role grants in, or be
//! asked first), access requests and their answers, member grants, notices, and ending
//! a session on one's own behalf. Everything here a member does for themselves is a
//! protected action (never on behalf, `server/src/access.rs`).

use leptos::{prelude::*, server_fn::codec::PostUrl};
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    grant::{GrantDuration, GrantView, RoleGrants},
    mode::Mode,
    role::Role,
};

pub use crate::notice::NoticeKind;

#[cfg(feature = "ssr")]
pub mod mail;
pub mod presence_ui;
#[cfg(feature = "ssr")]
mod requests;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod sweep;
pub mod ui;

/// Where an access request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum RequestStatus {
    Pending,
    Approved,
    Denied,
    /// Unanswered for a day.
    Expired,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 4] = [
        RequestStatus::Pending,
        RequestStatus::Approved,
        RequestStatus::Denied,
        RequestStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Approved => "approved",
            RequestStatus::Denied => "denied",
            RequestStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<RequestStatus> {
        RequestStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// An access request, as the member (and the API) sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    pub id: i64,
    pub requester_id: i64,
    pub requester_name: String,
    pub requester_role: Role,
    pub reason: String,
    pub mode: Mode,
    pub duration: GrantDuration,
    pub status: RequestStatus,
    pub created: String,
    /// When it expires unanswered (ms since the epoch).
    pub expires_at: i64,
    /// The grant an approval created.
    pub grant_id: Option<i64>,
}

/// A notice, as the member's Access page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeView {
    pub id: i64,
    pub kind: NoticeKind,
    /// ms since the epoch, and as people read it (UTC).
    pub at: i64,
    pub at_text: String,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub reason: String,
    pub mode: Option<Mode>,
    pub session_id: Option<i64>,
    pub read: bool,
}

/// Someone the member may grant access to by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GranteeOption {
    pub id: i64,
    pub display_name: String,
    pub role: Role,
}

/// Everything the member's **Access** page shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessOverview {
    /// The member's own setting…
    pub role_grants: RoleGrants,
    /// …and whether the server asks on everyone's behalf (`--consent required`): then
    /// `ask` is in force whatever the setting.
    pub consent_required: bool,
    /// Pending requests first, then the latest answered ones.
    pub requests: Vec<RequestView>,
    pub grants: Vec<GrantView>,
    pub notices: Vec<NoticeView>,
    /// People who may be given a grant by name (at most 50, by name).
    pub grantees: Vec<GranteeOption>,
}

/// The member's Access page.
#[server(prefix = "/api", endpoint = "consent/page", input = PostUrl)]
pub async fn load_access() -> Result<AccessOverview, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::page(&state, &request).await
}

/// Sets the member's setting: `allowed` or `ask`.
#[server(prefix = "/api", endpoint = "consent/setting", input = PostUrl)]
pub async fn set_role_grants(role_grants: String) -> Result<RoleGrants, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::set_role_grants(&state, &request, &role_grants).await
}

/// Approves (`approve` true) or denies one of the member's pending requests.
#[server(prefix = "/api", endpoint = "consent/answer", input = PostUrl)]
pub async fn answer_request(id: i64, approve: bool) -> Result<RequestView, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::answer(&state, &request, id, approve).await
}

/// Grants access: `grantee` is a member ID, or `any` (any support engineer).
#[server(prefix = "/api", endpoint = "consent/grant", input = PostUrl)]
pub async fn create_grant(grantee: String, mode: String, duration: String) -> Result<GrantView, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    let form = service::GrantForm::parse(&grantee, &mode, &duration)?;
    service::create_grant(&state, &request, form).await
}

/// Revokes one of the member's grants (the sessions it allowed end at their next request).
#[server(prefix = "/api", endpoint = "consent/revoke", input = PostUrl)]
pub async fn revoke_grant(id: i64) -> Result<(), AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::revoke_grant(&state, &request, id).await
}

/// Marks one of the member's notices read (never on their behalf).
#[server(prefix = "/api", endpoint = "consent/read", input = PostUrl)]
pub async fn mark_notice_read(id: i64) -> Result<(), AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::mark_read(&state, &request, id).await.map(|_| ())
}

/// **End it now**: ends a session on the member's own behalf.
#[server(prefix = "/api", endpoint = "consent/end", input = PostUrl)]
pub async fn end_on_my_behalf(session_id: i64) -> Result<(), AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::end_by_member(&state, &request, session_id).await
}

/// **Request access** (from the blade): asks member `member_id` for access.
#[server(prefix = "/api", endpoint = "consent/request", input = PostUrl)]
pub async fn request_access(
    member_id: i64,
    reason: String,
    mode: String,
    duration: String,
) -> Result<RequestView, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    let form = service::RequestForm::parse(&reason, &mode, &duration)?;
    service::request(&state, &request, member_id, form).await
}
