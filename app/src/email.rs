//! Email addresses (lower layer): the lookup key and the checks.

use crate::error::AppError;

pub const MAX_EMAIL_LEN: usize = 254;

/// The lookup key for an email: emails are unique case-insensitively.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Trims an email and checks it is there and not too long (sign-in needs no more).
pub fn require_email(email: &str) -> Result<&str, AppError> {
    let email = email.trim();
    if email.is_empty() {
        return Err(AppError::validation("email", "Enter an email address."));
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(AppError::validation(
            "email",
            format!("An email address has at most {MAX_EMAIL_LEN} characters."),
        ));
    }
    Ok(email)
}

/// An email address that has passed the checks of sign-up and editing (trimmed). The
/// only way to make one is `parse`, so whoever takes an `Email` need not check it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Checks an email address for sign-up or editing. Deliberately modest: one `@`,
    /// something on each side, a dot in the domain, no spaces or control characters.
    /// Errors name the field `email`.
    pub fn parse(email: &str) -> Result<Email, AppError> {
        let email = require_email(email)?;
        let valid = match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            }
            None => false,
        };
        if !valid {
            return Err(AppError::validation(
                "email",
                "Enter an email address like name@example.com.",
            ));
        }
        Ok(Email(email.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

/// `Email::parse`, for callers that keep the address as text.
pub fn validate_email(email: &str) -> Result<String, AppError> {
    Email::parse(email).map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_keyed_case_insensitively() {
        assert_eq!(email_key("  Ann.Lee@Example.COM "), "ann.lee@example.com");
        assert_eq!(email_key("ÉLODIE@exemple.fr"), "élodie@exemple.fr");
    }

    #[test]
    fn email_validation_accepts_ordinary_addresses_and_refuses_the_rest() {
        assert_eq!(validate_email(" ann@example.com ").unwrap(), "ann@example.com");
        assert!(validate_email("o'brien+tag@example.co.uk").is_ok());
        assert!(validate_email("élodie@exemple.fr").is_ok());
        for bad in [
            "",
            "   ",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@b@c.com",
            "ann@.com",
            "ann@example.com.",
        ] {
            let error = validate_email(bad).unwrap_err();
            assert_eq!(error.field(), Some("email"), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(validate_email(&long).unwrap_err().to_string().contains("at most"));
    }
}
