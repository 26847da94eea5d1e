//! The one error type that crosses the wire. Server functions, the JSON routes and
//! the middleware all answer with `{"error": {"code", "message", "field"?,
//! "retry_after"?}}` and the error's own HTTP status; the codes are stable
//! snake_case strings. Internal details never leave the server: a database error
//! becomes `Internal` after it has been logged once, where it was converted.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

use crate::rule::Denial;

/// Why a change or a read was refused to someone signed in: a stable code and a
/// sentence for people (like `rule::Denial` for the impersonation rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The member may not use the management screens.
    NoAdminAccess,
    /// Only editors and super users change members and groups.
    NeedsEditorRole,
    /// The member (or a member of the group) ranks above the editor.
    TargetOutranksEditor,
    /// The role given ranks above the editor's own.
    RoleAboveOwnRank,
    /// An editor wrote their own ID into the proxy login permission of a peer.
    SelfGrantToPeer,
    /// An editor changed the role of a peer (only a higher rank may).
    PeerRoleChange,
    /// Only editors and super users read the audit trail.
    NotAuditor,
    /// The session or record belongs to someone else.
    NotYours,
    /// A request from another site.
    CrossSite,
    /// The account is not authorized to sign in.
    LoginDisabled,
    /// Only support engineers and above create one-click links.
    NeedsSupportRole,
    /// A one-click link is only for a member of strictly lower rank.
    LinkTargetNotLower,
    /// A one-click link for a member with admin access needs a super user.
    LinkTargetHasAdminAccess,
    /// A protected action (password, email, the member's own sessions, one-click
    /// links, roles, groups, permissions, the audit viewer, oversight): never on
    /// behalf, whatever the mode.
    OnBehalfProtected,
    /// A change in a view-only session on behalf.
    OnBehalfViewOnly,
    /// Acting (not only viewing) on behalf needs a higher role (`--act-min-role`).
    ActNeedsRole,
    /// The member's grant that lets the actor in is for viewing only (Step 12).
    GrantViewOnly,
    /// Only editors and super users oversee sessions.
    NotOverseer,
    /// Only a super user may (end every session on behalf at once).
    NeedsSuperUser,
    /// The session's actor ranks above the one ending it.
    SessionOutranksViewer,
}

impl Refusal {
    pub const ALL: [Refusal; 20] = [
        Refusal::NoAdminAccess,
        Refusal::NeedsEditorRole,
        Refusal::TargetOutranksEditor,
        Refusal::RoleAboveOwnRank,
        Refusal::SelfGrantToPeer,
        Refusal::PeerRoleChange,
        Refusal::NotAuditor,
        Refusal::NotYours,
        Refusal::CrossSite,
        Refusal::LoginDisabled,
        Refusal::NeedsSupportRole,
        Refusal::LinkTargetNotLower,
        Refusal::LinkTargetHasAdminAccess,
        Refusal::OnBehalfProtected,
        Refusal::OnBehalfViewOnly,
        Refusal::ActNeedsRole,
        Refusal::GrantViewOnly,
        Refusal::NotOverseer,
        Refusal::NeedsSuperUser,
        Refusal::SessionOutranksViewer,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Refusal::NoAdminAccess => "no_admin_access",
            Refusal::NeedsEditorRole => "needs_editor_role",
            Refusal::TargetOutranksEditor => "target_outranks_editor",
            Refusal::RoleAboveOwnRank => "role_above_own_rank",
            Refusal::SelfGrantToPeer => "self_grant_to_peer",
            Refusal::PeerRoleChange => "peer_role_change",
            Refusal::NotAuditor => "not_auditor",
            Refusal::NotYours => "not_yours",
            Refusal::CrossSite => "cross_site",
            Refusal::LoginDisabled => "not_authorized_to_log_in",
            Refusal::NeedsSupportRole => "needs_support_role",
            Refusal::LinkTargetNotLower => "target_rank_not_lower",
            Refusal::LinkTargetHasAdminAccess => "target_has_admin_access",
            Refusal::OnBehalfProtected => "on_behalf_protected_action",
            Refusal::OnBehalfViewOnly => "on_behalf_view_only",
            Refusal::ActNeedsRole => "act_needs_role",
            Refusal::GrantViewOnly => "grant_view_only",
            Refusal::NotOverseer => "not_overseer",
            Refusal::NeedsSuperUser => "needs_super_user",
            Refusal::SessionOutranksViewer => "session_outranks_you",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::NoAdminAccess => "You do not have access to the management screens.",
            Refusal::NeedsEditorRole => "Only editors and super users may change members and groups.",
            Refusal::TargetOutranksEditor => "You cannot change a member whose role is above your own.",
            Refusal::RoleAboveOwnRank => "You cannot give a role above your own.",
            Refusal::SelfGrantToPeer => {
                "You cannot add yourself to the proxy login permission of a member whose role equals yours: someone else must."
            }
            Refusal::PeerRoleChange => {
                "You cannot change the role of a member whose role equals yours: someone of a higher role must."
            }
            Refusal::NotAuditor => "Only editors and super users may read the audit trail.",
            Refusal::NotYours => "That is not yours to change.",
            Refusal::CrossSite => "Cross-site request refused.",
            Refusal::LoginDisabled => {
                "This account is not authorized to sign in. Ask an administrator to enable it."
            }
            Refusal::NeedsSupportRole => {
                "Only support engineers, editors and super users may create one-click links."
            }
            Refusal::LinkTargetNotLower => "One-click links are only for members whose role is below your own.",
            Refusal::LinkTargetHasAdminAccess => {
                "Only a super user may create or manage one-click links for a member with admin access."
            }
            Refusal::OnBehalfProtected => {
                "This is never done on someone's behalf (passwords, email, sessions, login links, roles, groups, permissions, consent and access grants, the audit trail and oversight): leave the session on behalf to do it as yourself."
            }
            Refusal::OnBehalfViewOnly => {
                "This session on behalf is view only, so nothing was changed. Choose Act on behalf (with your password) to make changes."
            }
            Refusal::ActNeedsRole => {
                "Your role may view on this member's behalf but not act: acting needs a higher role on this server."
            }
            Refusal::GrantViewOnly => {
                "The member granted you access to view only: this session cannot act. Ask the member for access to act."
            }
            Refusal::NotOverseer => "Only editors and super users may see and end other members' sessions.",
            Refusal::NeedsSuperUser => "Only a super user may do this.",
            Refusal::SessionOutranksViewer => {
                "You cannot end the session of someone whose role is above your own."
            }
        }
    }

    /// The form field the refusal belongs to, if any.
    pub fn field(self) -> Option<&'static str> {
        match self {
            Refusal::SelfGrantToPeer => Some("proxy_login_permission"),
            Refusal::RoleAboveOwnRank | Refusal::PeerRoleChange => Some("role"),
            _ => None,
        }
    }

    pub fn parse(code: &str) -> Option<Refusal> {
        Refusal::ALL.into_iter().find(|r| r.code() == code)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// A field failed validation; `field` names the form field so the UI can show the
    /// message next to it.
    #[error("{message}")]
    Validation { field: String, message: String },
    /// The request itself was malformed (wrong types, missing fields).
    #[error("{0}")]
    BadRequest(String),
    /// Sign-in failed. Unknown email and wrong password share this, deliberately.
    #[error("Email or password is incorrect.")]
    InvalidCredentials,
    /// No valid session: missing, revoked or expired.
    #[error("Please sign in to continue.")]
    Unauthenticated,
    /// Signed in, but not allowed to do this (see `Refusal` for the codes).
    #[error("{}", .0.message())]
    Refused(Refusal),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The request came with a session on behalf that has ended: it acts as no one,
    /// so nothing was done (the browser has been given its actor's own session back).
    #[error("Your session on behalf of another member has ended, so nothing was done. You are acting as yourself again.")]
    OnBehalfEnded,
    /// Sign-in throttled (per account or per client address): the same answer
    /// whether or not the account exists.
    #[error("Too many sign-in attempts. Try again in {}.", wait_text(*.retry_after))]
    RateLimited { retry_after: u64 },
    /// The impersonation rule refused (see `rule::Denial` for the codes).
    #[error("{0}")]
    Denied(Denial),
    /// Re-authentication for a session on behalf failed: the password was not the
    /// actor's. (Not 401: the actor's own session is fine.)
    #[error("Your password is incorrect. Nothing was switched.")]
    WrongPassword,
    /// Too many wrong passwords: login on behalf is locked for a while.
    #[error("Too many wrong passwords. Login on behalf is locked for {}.", wait_text(*.retry_after))]
    LockedOut { retry_after: u64 },
    /// A request body over the limit (the JSON API takes 16 KiB).
    #[error("The request body is too large (at most {limit_kib} KiB).")]
    PayloadTooLarge { limit_kib: u64 },
    /// A request body that is not JSON (the JSON API takes `application/json` only).
    #[error("Send the request body as JSON, with Content-Type: application/json.")]
    NotJson,
    /// A one-click login link that cannot be used: unknown, expired, used, revoked,
    /// malformed, or another member's. One answer for all (the audit record says which).
    #[error("This login link cannot be used. It may have expired or been used already: ask for a new one.")]
    LinkUnusable,
    /// The browser could not reach the server (client side only).
    #[error("Could not reach the server. Check your connection and try again.")]
    Unreachable,
    /// Something failed on our side; the details are in the server log only.
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
}

/// "45 seconds", "1 minute", "15 minutes" (rounded up to whole minutes past one).
fn wait_text(seconds: u64) -> String {
    match seconds {
        0..=1 => "a second".to_string(),
        2..=59 => format!("{seconds} seconds"),
        _ => {
            let minutes = seconds.div_ceil(60);
            if minutes == 1 {
                "1 minute".to_string()
            } else {
                format!("{minutes} minutes")
            }
        }
    }
}

impl AppError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        AppError::Validation {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status_code(&self) -> u16 {
        match self {
            AppError::Validation { .. } => 422,
            AppError::BadRequest(_) => 400,
            AppError::InvalidCredentials | AppError::Unauthenticated => 401,
            AppError::Refused(_) => 403,
            AppError::NotFound(_) | AppError::LinkUnusable => 404,
            AppError::Conflict(_) | AppError::OnBehalfEnded => 409,
            AppError::RateLimited { .. } | AppError::LockedOut { .. } => 429,
            AppError::Denied(_) | AppError::WrongPassword => 403,
            AppError::PayloadTooLarge { .. } => 413,
            AppError::NotJson => 415,
            AppError::Unreachable => 503,
            AppError::Internal => 500,
        }
    }

    /// A stable, machine-readable code (used by the JSON API and by tests).
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation { .. } => "validation",
            AppError::BadRequest(_) => "bad_request",
            AppError::InvalidCredentials => "invalid_credentials",
            AppError::Unauthenticated => "unauthenticated",
            AppError::Refused(refusal) => refusal.code(),
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::OnBehalfEnded => "on_behalf_ended",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Denied(denial) => denial.code(),
            AppError::WrongPassword => "wrong_password",
            AppError::LockedOut { .. } => "locked_out",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::NotJson => "unsupported_media_type",
            AppError::LinkUnusable => "link_unusable",
            AppError::Unreachable => "unreachable",
            AppError::Internal => "internal",
        }
    }

    /// The field a validation error belongs to, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Validation { field, .. } => Some(field),
            AppError::WrongPassword => Some("password"),
            AppError::Refused(refusal) => refusal.field(),
            _ => None,
        }
    }

    /// Seconds to wait before trying again (the `Retry-After` of a 429).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::RateLimited { retry_after } | AppError::LockedOut { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The error as it goes on the wire.
    pub fn wire(&self) -> WireError {
        WireError {
            error: WireBody {
                code: self.code().to_string(),
                message: self.to_string(),
                field: self.field().map(str::to_string),
                retry_after: self.retry_after(),
            },
        }
    }

    /// The error a wire body stands for (what a browser or client makes of it). The
    /// codes are `code()`'s: every kind is built from the body and the one whose code
    /// matches is taken, so the two directions cannot drift.
    pub fn from_wire(wire: WireError) -> AppError {
        let WireBody {
            code,
            message,
            field,
            retry_after,
        } = wire.error;
        let retry_after = retry_after.unwrap_or(0);
        if let Some(refusal) = Refusal::parse(&code) {
            return AppError::Refused(refusal);
        }
        if let Some(denial) = Denial::parse(&code) {
            return AppError::Denied(denial);
        }
        let kinds = [
            AppError::Validation {
                field: field.unwrap_or_default(),
                message: message.clone(),
            },
            AppError::BadRequest(message.clone()),
            AppError::InvalidCredentials,
            AppError::Unauthenticated,
            AppError::NotFound(message.clone()),
            AppError::Conflict(message),
            AppError::OnBehalfEnded,
            AppError::RateLimited { retry_after },
            AppError::WrongPassword,
            AppError::LockedOut { retry_after },
            AppError::PayloadTooLarge { limit_kib: 16 },
            AppError::NotJson,
            AppError::LinkUnusable,
            AppError::Unreachable,
        ];
        kinds
            .into_iter()
            .find(|kind| kind.code() == code)
            .unwrap_or(AppError::Internal)
    }
}

/// Every error: `{"error": {"code", "message", "field"?, "retry_after"?}}` (the JSON
/// API documents it as `ErrorBody`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema), schema(as = ErrorBody))]
pub struct WireError {
    pub error: WireBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema), schema(as = ErrorDetail))]
pub struct WireBody {
    /// A stable snake_case code, e.g. `invalid_credentials`, `rank_not_lower`.
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// The request field the error is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait (with a 429; also in `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Serialize for AppError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.wire().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AppError {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        WireError::deserialize(deserializer).map(AppError::from_wire)
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(message) => {
                AppError::BadRequest(format!("The request was malformed: {}", truncate(&message)))
            }
            ServerFnErrorErr::MissingArg(name) => {
                AppError::BadRequest(format!("The request is missing the field {}.", truncate(&name)))
            }
            ServerFnErrorErr::Request(_) => AppError::Unreachable,
            other => {
                #[cfg(feature = "ssr")]
                tracing::error!(error = %other, "server function failed");
                let _ = other;
                AppError::Internal
            }
        }
    }
}

fn truncate(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(feature = "ssr")]
impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        tracing::error!(%error, "database error");
        AppError::Internal
    }
}

impl From<crate::mode::OnBehalfLimit> for AppError {
    fn from(limit: crate::mode::OnBehalfLimit) -> Self {
        AppError::Refused(match limit {
            crate::mode::OnBehalfLimit::ViewOnly => Refusal::OnBehalfViewOnly,
            crate::mode::OnBehalfLimit::Protected => Refusal::OnBehalfProtected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_status_and_a_code() {
        let all = [
            AppError::validation("email", "Enter your email."),
            AppError::BadRequest("x".into()),
            AppError::InvalidCredentials,
            AppError::Unauthenticated,
            AppError::Refused(Refusal::NotAuditor),
            AppError::NotFound("no".into()),
            AppError::Conflict("no".into()),
            AppError::RateLimited { retry_after: 30 },
            AppError::OnBehalfEnded,
            AppError::Denied(Denial::Nested),
            AppError::WrongPassword,
            AppError::LockedOut { retry_after: 900 },
            AppError::PayloadTooLarge { limit_kib: 16 },
            AppError::NotJson,
            AppError::LinkUnusable,
            AppError::Unreachable,
            AppError::Internal,
        ];
        for error in all {
            assert!((400..600).contains(&error.status_code()), "{error:?}");
            assert!(!error.code().is_empty());
            assert!(!error.to_string().is_empty());
            assert_eq!(AppError::de(error.ser()), error, "{error:?} round-trips");
        }
        for refusal in Refusal::ALL {
            let error = AppError::Refused(refusal);
            assert_eq!(AppError::de(error.ser()), error, "{refusal:?} round-trips");
            assert!(refusal.message().ends_with('.'), "{refusal:?}");
        }
        for denial in Denial::ALL {
            let error = AppError::Denied(denial);
            assert_eq!(AppError::de(error.ser()), error, "{denial:?} round-trips");
        }
    }

    #[test]
    fn the_wire_form_is_one_error_object() {
        let error = AppError::validation("password", "Enter your password.");
        let value: serde_json::Value = serde_json::from_slice(&error.ser()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({ "error": { "code": "validation", "message": "Enter your password.", "field": "password" } })
        );
        let value: serde_json::Value =
            serde_json::to_value(AppError::RateLimited { retry_after: 90 }).unwrap();
        assert_eq!(value["error"]["code"], "rate_limited");
        assert_eq!(value["error"]["retry_after"], 90);
        assert_eq!(
            value["error"]["message"],
            "Too many sign-in attempts. Try again in 2 minutes."
        );
        let value: serde_json::Value = serde_json::to_value(AppError::Internal).unwrap();
        assert!(value["error"].get("field").is_none());
    }

    #[test]
    fn codes_are_distinct_snake_case() {
        let mut codes: Vec<&str> = Refusal::ALL.iter().map(|r| r.code()).collect();
        codes.extend(Denial::ALL.iter().map(|d| d.code()));
        codes.extend([
            "validation",
            "bad_request",
            "invalid_credentials",
            "unauthenticated",
            "not_found",
        ]);
        codes.extend([
            "conflict",
            "on_behalf_ended",
            "rate_limited",
            "wrong_password",
            "locked_out",
        ]);
        codes.extend([
            "payload_too_large",
            "unsupported_media_type",
            "unreachable",
            "internal",
        ]);
        let distinct: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), codes.len());
        for code in codes {
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code}");
        }
    }

    #[test]
    fn argument_errors_are_bad_requests_not_internal() {
        let error = AppError::from_server_fn_error(ServerFnErrorErr::Args("missing field `email`".into()));
        assert_eq!(error.status_code(), 400);
        let long = "x".repeat(10_000);
        let error = AppError::from_server_fn_error(ServerFnErrorErr::Args(long));
        assert!(error.to_string().chars().count() < 300);
    }
}
