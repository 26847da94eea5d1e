//! The JSON API's request and response bodies. They are the API's own contract,
//! mapped from the app's types, so a change to a page cannot silently change the API;
//! the OpenAPI document is generated from them.

use app::{
    clock::Millis,
    context::{CurrentSession, MemberRow},
    email::Email,
    error::AppError,
    members::{check_id_list, service::MemberChanges, MemberDetail, MemberSummary},
    mode::Mode,
    names::DisplayName,
    role::Role,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A role, lowest rank first.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApiRole {
    Member,
    Support,
    Editor,
    SuperUser,
}

impl From<Role> for ApiRole {
    fn from(role: Role) -> Self {
        match role {
            Role::Member => ApiRole::Member,
            Role::Support => ApiRole::Support,
            Role::Editor => ApiRole::Editor,
            Role::SuperUser => ApiRole::SuperUser,
        }
    }
}

impl From<ApiRole> for Role {
    fn from(role: ApiRole) -> Self {
        match role {
            ApiRole::Member => Role::Member,
            ApiRole::Support => Role::Support,
            ApiRole::Editor => Role::Editor,
            ApiRole::SuperUser => Role::SuperUser,
        }
    }
}

/// A time as RFC 3339 in UTC, e.g. `2026-12-01T14:05:09Z`.
pub fn rfc3339(at: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

// ---- authentication and login on behalf ----------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(max_length = 254)]
    pub email: String,
    #[schema(max_length = 1024)]
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(max_length = 1024)]
    pub current_password: String,
    /// At least 8 characters, at most 1,024 bytes.
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

/// The caller as themselves or, on behalf, the member they act as.
#[derive(Serialize, ToSchema)]
pub struct Me {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: ApiRole,
    pub admin_access: bool,
}

impl From<&MemberRow> for Me {
    fn from(member: &MemberRow) -> Self {
        Me {
            id: member.id,
            email: member.email.clone(),
            display_name: member.display_name.clone(),
            role: member.role.into(),
            admin_access: member.admin_access,
        }
    }
}

/// A member named by ID.
#[derive(Serialize, ToSchema)]
pub struct Named {
    pub id: i64,
    pub display_name: String,
}

/// The session on behalf the token acts in.
#[derive(Serialize, ToSchema)]
pub struct OnBehalfInfo {
    /// The session on behalf (as oversight and the audit trail name it).
    pub session_id: i64,
    /// `view` (reads only) or `act` (changes too, except protected actions).
    pub mode: Mode,
    /// The real person acting.
    pub actor: Named,
    pub started_at: String,
    pub expires_at: String,
    pub reason: String,
}

fn expires_at(session: &CurrentSession) -> String {
    rfc3339(session.absolute_expires_at.min(session.idle_expires_at))
}

impl OnBehalfInfo {
    pub fn of(session: &CurrentSession) -> Option<OnBehalfInfo> {
        session.on_behalf.as_ref().map(|on_behalf| OnBehalfInfo {
            session_id: session.id,
            mode: on_behalf.mode,
            actor: Named {
                id: on_behalf.actor.id,
                display_name: on_behalf.actor.display_name.clone(),
            },
            started_at: rfc3339(session.created_at),
            expires_at: expires_at(session),
            reason: on_behalf.reason.clone(),
        })
    }
}

/// A new bearer token and whom it acts as.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// Send it as `Authorization: Bearer <token>`. Shown once; only its hash is stored.
    pub token: String,
    /// When the session ends at the latest without activity (it also ends at its
    /// lifetime or when revoked).
    pub expires_at: String,
    pub member: Me,
}

impl TokenResponse {
    pub fn new(token: &str, session: &CurrentSession) -> TokenResponse {
        TokenResponse {
            token: token.to_string(),
            expires_at: expires_at(session),
            member: Me::from(&session.member),
        }
    }
}

/// `alias_login`'s and `alias_elevate`'s answer: a token acting as the member.
#[derive(Serialize, ToSchema)]
pub struct AliasLoginResponse {
    pub token: String,
    /// The session on behalf's mode: `view` unless `act` was asked for (or elevated to).
    pub mode: Mode,
    /// The session on behalf.
    pub session_id: i64,
    pub expires_at: String,
    pub member: Me,
    pub on_behalf: OnBehalfInfo,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasLoginRequest {
    /// The member to act as.
    #[schema(minimum = 1)]
    pub member_id: i64,
    /// The caller's own password, entered again.
    #[schema(max_length = 1024)]
    pub password: String,
    /// Why (3 to 500 characters, one line), kept in the audit trail.
    #[schema(max_length = 2000)]
    pub reason: String,
    /// `view` (the default: reads only) or `act` (changes too).
    #[serde(default)]
    pub mode: Mode,
}

/// Elevate the caller's view-only session on behalf to act.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasElevateRequest {
    /// The caller's own password, entered again.
    #[schema(max_length = 1024)]
    pub password: String,
    /// Why (3 to 500 characters, one line), kept in the audit trail.
    #[schema(max_length = 2000)]
    pub reason: String,
}

/// A member the caller may log in on behalf of.
#[derive(Serialize, ToSchema)]
pub struct AliasTargetView {
    pub id: i64,
    pub display_name: String,
    pub email: String,
}

#[derive(Serialize, ToSchema)]
pub struct Profile {
    pub member: Me,
    pub on_behalf: Option<OnBehalfInfo>,
    /// With `basic_info=aliaslogin_target`: whom the caller may log in on behalf of
    /// (one page, by ID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aliaslogin_target: Option<Vec<AliasTargetView>>,
    /// With `basic_info=aliaslogin_target`: the `cursor` of the next page, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aliaslogin_target_next_cursor: Option<String>,
}

// ---- members and groups -----------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct GroupRefView {
    pub id: i64,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct ApiMember {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: ApiRole,
    pub admin_access: bool,
    pub login_enabled: bool,
    pub groups: Vec<GroupRefView>,
    /// IDs of the members allowed to log in on this member's behalf.
    pub proxy_login_permission: Vec<i64>,
    /// As `YYYY-MM-DD HH:MM UTC`, or null if never.
    pub last_sign_in_at: Option<String>,
}

impl ApiMember {
    pub fn of(summary: MemberSummary, proxy_login_permission: Vec<i64>) -> ApiMember {
        ApiMember {
            id: summary.id,
            email: summary.email,
            display_name: summary.display_name,
            role: summary.role.into(),
            admin_access: summary.admin_access,
            login_enabled: summary.login_enabled,
            groups: summary
                .groups
                .into_iter()
                .map(|g| GroupRefView {
                    id: g.id,
                    name: g.name,
                })
                .collect(),
            proxy_login_permission,
            last_sign_in_at: summary.last_sign_in,
        }
    }

    pub fn from_detail(detail: MemberDetail) -> ApiMember {
        let proxies = detail.proxy_login_permission.iter().map(|m| m.id).collect();
        ApiMember::of(detail.member, proxies)
    }
}

#[derive(Serialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<ApiMember>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Any of the fields; the others stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
    #[schema(max_length = 254)]
    pub email: Option<String>,
    pub role: Option<ApiRole>,
    pub admin_access: Option<bool>,
    pub login_enabled: Option<bool>,
}

impl MemberPatch {
    /// The changes the service takes, each text parsed as the editor's form parses it
    /// (same fields, same messages).
    pub fn into_changes(self) -> Result<MemberChanges, AppError> {
        Ok(MemberChanges {
            display_name: self.display_name.as_deref().map(DisplayName::parse).transpose()?,
            email: self.email.as_deref().map(Email::parse).transpose()?,
            role: self.role.map(Role::from),
            admin_access: self.admin_access,
            login_enabled: self.login_enabled,
            ..MemberChanges::default()
        })
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyPermission {
    /// The whole permission: IDs of the members who may log in on this member's behalf.
    #[schema(max_items = 100)]
    pub member_ids: Vec<i64>,
}

impl ProxyPermission {
    /// The whole permission as the service takes it, checked as the editor's list is
    /// (positive IDs, none twice, at most 100).
    pub fn into_changes(self) -> Result<MemberChanges, AppError> {
        let ids =
            check_id_list(&self.member_ids).map_err(|message| AppError::validation("member_ids", message))?;
        Ok(MemberChanges {
            proxy_login_permission: Some(ids),
            ..MemberChanges::default()
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct GroupView {
    pub id: i64,
    pub name: String,
    pub member_count: i64,
}

impl From<app::groups::GroupSummary> for GroupView {
    fn from(group: app::groups::GroupSummary) -> Self {
        GroupView {
            id: group.id,
            name: group.name,
            member_count: group.member_count,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct GroupMembers {
    pub group: GroupView,
    pub members: Vec<ApiMember>,
    pub page: i64,
    pub pages: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupName {
    #[schema(max_length = 200)]
    pub name: String,
}

// ---- the member's own area ----------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct ProductView {
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct OrderView {
    pub id: i64,
    pub product: String,
    pub quantity: i64,
    pub total_cents: i64,
    /// As `YYYY-MM-DD HH:MM UTC`.
    pub placed_at: String,
    /// The real person who placed it on the member's behalf (display name), or null.
    pub placed_by: Option<String>,
}

impl From<app::orders::Order> for OrderView {
    fn from(order: app::orders::Order) -> Self {
        OrderView {
            id: order.id,
            product: order.product,
            quantity: order.quantity,
            total_cents: order.total_cents,
            placed_at: order.placed,
            placed_by: order.placed_on_behalf_by,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OrderCreated {
    pub order: OrderView,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    #[schema(minimum = 1)]
    pub product_id: i64,
    #[schema(minimum = 1, maximum = 999)]
    pub quantity: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SessionItem {
    pub id: i64,
    pub device: String,
    pub ip: Option<String>,
    pub started: String,
    pub last_seen: String,
    /// The session this request came with.
    pub current: bool,
    /// On behalf of the member: who is acting (display name).
    pub on_behalf_by: Option<String>,
    /// The caller's own session, waiting while they act on someone's behalf.
    pub waiting: bool,
}

impl From<app::account::SessionView> for SessionItem {
    fn from(s: app::account::SessionView) -> Self {
        SessionItem {
            id: s.id,
            device: s.device,
            ip: s.ip,
            started: s.started,
            last_seen: s.last_seen,
            current: s.current,
            on_behalf_by: s.on_behalf_by,
            waiting: s.waiting,
        }
    }
}

// ---- audit ------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct AuditItem {
    pub id: i64,
    pub at: String,
    /// The real person who acted.
    pub actor: Option<Named>,
    /// Whose account it concerned.
    pub subject: Option<Named>,
    /// The session on behalf it happened in.
    pub session_id: Option<i64>,
    pub action: String,
    pub object: Option<String>,
    /// The record's details (JSON text).
    pub details: String,
    pub ip: Option<String>,
}

impl From<app::audit::AuditRow> for AuditItem {
    fn from(r: app::audit::AuditRow) -> Self {
        let named = |(id, display_name): (i64, String)| Named { id, display_name };
        AuditItem {
            id: r.id,
            at: r.at,
            actor: r.actor.map(named),
            subject: r.subject.map(named),
            session_id: r.session_id,
            action: r.action,
            object: r.object,
            details: r.details,
            ip: r.ip,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub records: Vec<AuditItem>,
    /// Pass as `cursor` for the next (older) page; null on the last.
    pub next_cursor: Option<String>,
}
