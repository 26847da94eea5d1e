//! The one error type that crosses the wire: server functions return it, the
//! JSON API renders it as `{"error": {"code", "message"}}`, and the UI shows its
//! message. Internal details never leave the server: a database error becomes
//! `Internal` after it has been logged once, where it was converted.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

use crate::rule::Denial;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
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
    /// Signed in, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("Too many attempts. Try again in a few minutes.")]
    RateLimited,
    /// The impersonation rule refused (see `rule::Denial` for the codes).
    #[error("{0}")]
    Denied(Denial),
    /// Re-authentication for a session on behalf failed: the password was not the
    /// actor's. (Not 401: the actor's own session is fine.)
    #[error("Your password is incorrect. Nothing was switched.")]
    WrongPassword,
    /// Too many wrong passwords: login on behalf is locked for a while.
    #[error("Too many wrong passwords. Login on behalf is locked for {0} minutes.")]
    LockedOut(i64),
    /// The browser could not reach the server (client side only).
    #[error("Could not reach the server. Check your connection and try again.")]
    Unreachable,
    /// Something failed on our side; the details are in the server log only.
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
}

impl AppError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        AppError::Validation {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden(message.into())
    }

    /// The HTTP status this error is answered with.
    pub fn status_code(&self) -> u16 {
        match self {
            AppError::Validation { .. } => 422,
            AppError::BadRequest(_) => 400,
            AppError::InvalidCredentials | AppError::Unauthenticated => 401,
            AppError::Forbidden(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::Conflict(_) => 409,
            AppError::RateLimited | AppError::LockedOut(_) => 429,
            AppError::Denied(_) | AppError::WrongPassword => 403,
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
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::RateLimited => "rate_limited",
            AppError::Denied(denial) => denial.code(),
            AppError::WrongPassword => "wrong_password",
            AppError::LockedOut(_) => "locked_out",
            AppError::Unreachable => "unreachable",
            AppError::Internal => "internal",
        }
    }

    /// The field a validation error belongs to, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Validation { field, .. } => Some(field),
            AppError::WrongPassword => Some("password"),
            _ => None,
        }
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
            AppError::forbidden("no"),
            AppError::NotFound("no".into()),
            AppError::Conflict("no".into()),
            AppError::RateLimited,
            AppError::Denied(Denial::Nested),
            AppError::WrongPassword,
            AppError::LockedOut(15),
            AppError::Unreachable,
            AppError::Internal,
        ];
        for error in all {
            assert!((400..600).contains(&error.status_code()), "{error:?}");
            assert!(!error.code().is_empty());
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn the_wire_form_round_trips() {
        let error = AppError::validation("password", "Enter your password.");
        let bytes = error.ser();
        assert_eq!(AppError::de(bytes), error);
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
