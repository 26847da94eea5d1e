//! Oversight: the live sessions on behalf, with End (and End all for super users),
//! their history, and a member's sessions in the User information blade.

use leptos::{prelude::*, server_fn::codec::PostUrl};
use serde::{Deserialize, Serialize};

use crate::{error::AppError, role::Role};

#[cfg(feature = "ssr")]
pub mod service;
pub mod ui;

/// One session on behalf, live or ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Impersonation {
    pub id: i64,
    pub actor_id: i64,
    pub actor_name: String,
    pub actor_role: Role,
    pub member_id: i64,
    pub member_name: String,
    pub reason: String,
    /// When it started (UTC, for people) and in milliseconds since 1970.
    pub started: String,
    pub started_at: i64,
    /// Seconds until it ends by itself (0 once ended).
    pub seconds_left: i64,
    /// When and why it ended (None while live).
    pub ended: Option<String>,
    pub end_reason: Option<String>,
    /// Whether the viewer may end it.
    pub can_end: bool,
}

/// What the oversight page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImpersonationList {
    pub rows: Vec<Impersonation>,
    /// The viewer may end every live one at once (super users).
    pub can_end_all: bool,
}

/// One of a member's sessions, as the blade's Sessions panel shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberSession {
    pub id: i64,
    pub device: String,
    pub ip: Option<String>,
    pub started: String,
    pub last_seen: String,
    /// Set for a session on behalf of the member: who is acting.
    pub on_behalf_by: Option<String>,
    /// Their own session, waiting while they act on someone's behalf.
    pub waiting: bool,
}

/// The live sessions on behalf (`history = false`) or the latest ended ones.
#[server(prefix = "/api", endpoint = "oversight/impersonations", input = PostUrl)]
pub async fn impersonations(history: bool) -> Result<ImpersonationList, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::list(&state, &request, history).await
}

/// Ends one live session on behalf (reason `revoked`); its actor is back in their own
/// session at their next request.
#[server(prefix = "/api", endpoint = "oversight/end", input = PostUrl)]
pub async fn end_impersonation(id: i64) -> Result<(), AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::end(&state, &request, id).await
}

/// Ends every live session on behalf (super users). Answers how many ended.
#[server(prefix = "/api", endpoint = "oversight/end-all", input = PostUrl)]
pub async fn end_all_impersonations() -> Result<usize, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::end_all(&state, &request).await
}

/// A member's live sessions: their own and those on their behalf.
#[server(prefix = "/api", endpoint = "oversight/member-sessions", input = PostUrl)]
pub async fn member_sessions(member_id: i64) -> Result<Vec<MemberSession>, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::member_sessions(&state, &request, member_id).await
}

/// Ends one of a member's sessions (`session_id`), or all of them (`session_id` 0),
/// with the sessions on behalf on their account and those they act in.
#[server(prefix = "/api", endpoint = "oversight/revoke-member-sessions", input = PostUrl)]
pub async fn revoke_member_sessions(member_id: i64, session_id: i64) -> Result<usize, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    let only = (session_id != 0).then_some(session_id);
    service::revoke_member_sessions(&state, &request, member_id, only).await
}
