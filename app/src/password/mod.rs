//! Passwords (lower layer): the type that never prints its content, the limits a
//! new password must meet, and (server only) the argon2id hasher and the one
//! credential check that sign-in and re-authentication share.

use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[cfg(feature = "ssr")]
pub mod credentials;
#[cfg(feature = "ssr")]
pub mod hasher;

/// A password on its way to the server. Its `Debug` never prints it, so neither
/// a log line nor a panic message can leak one.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Password(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a password as typed at sign-in or re-authentication: present, and not so
/// long that hashing it would be a way to make the server work (new passwords also
/// meet `validate_new_password`).
pub fn check_entered(password: &Password, field: &str, empty: &str) -> Result<(), AppError> {
    if password.expose().is_empty() {
        return Err(AppError::validation(field, empty));
    }
    if password.expose().len() > MAX_PASSWORD_BYTES {
        return Err(AppError::validation(
            field,
            format!("A password has at most {MAX_PASSWORD_BYTES} bytes."),
        ));
    }
    Ok(())
}

/// Rules for a new password (sign-in accepts whatever was set).
pub fn validate_new_password(password: &Password) -> Result<(), AppError> {
    let text = password.expose();
    if text.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::validation(
            "password",
            format!("A password has at least {MIN_PASSWORD_CHARS} characters."),
        ));
    }
    if text.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::validation(
            "password",
            format!("A password has at most {MAX_PASSWORD_BYTES} bytes."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_have_a_minimum_and_a_maximum() {
        assert!(validate_new_password(&Password::new("1234567")).is_err());
        assert!(validate_new_password(&Password::new("12345678")).is_ok());
        assert!(validate_new_password(&Password::new("x".repeat(1024))).is_ok());
        assert!(validate_new_password(&Password::new("x".repeat(1025))).is_err());
    }

    #[test]
    fn entered_passwords_are_present_and_bounded() {
        assert!(check_entered(&Password::new("x"), "password", "Enter it.").is_ok());
        assert_eq!(
            check_entered(&Password::new(""), "password", "Enter it.")
                .unwrap_err()
                .to_string(),
            "Enter it."
        );
        let long = Password::new("x".repeat(MAX_PASSWORD_BYTES + 1));
        assert_eq!(
            check_entered(&long, "password", "Enter it.").unwrap_err().field(),
            Some("password")
        );
    }

    #[test]
    fn debug_output_never_shows_a_password() {
        assert_eq!(format!("{:?}", Password::new("hunter2")), "[redacted]");
    }
}
