//! People's names (lower layer: imports nothing of the app but the error): the display
//! name a member is shown by.

use crate::error::AppError;

pub const MAX_NAME_CHARS: usize = 100;

/// A display name that has passed the checks (runs of spaces made one, not empty, not
/// too long, no control characters). The only way to make one is `parse`, so whoever
/// takes a `DisplayName` need not check it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Checks a display name; runs of spaces become one space. Errors name the field
    /// `display_name`.
    pub fn parse(name: &str) -> Result<DisplayName, AppError> {
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() {
            return Err(AppError::validation("display_name", "Enter a name."));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(AppError::validation(
                "display_name",
                format!("A name has at most {MAX_NAME_CHARS} characters."),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(AppError::validation(
                "display_name",
                "A name cannot contain control characters.",
            ));
        }
        Ok(DisplayName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for DisplayName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<DisplayName> for String {
    fn from(name: DisplayName) -> String {
        name.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_tidied_and_checked_with_their_field() {
        assert_eq!(DisplayName::parse("  Ann   Lee ").unwrap().as_str(), "Ann Lee");
        for bad in ["", "   ", "Ann\u{0}Lee"] {
            let error = DisplayName::parse(bad).unwrap_err();
            assert_eq!(error.field(), Some("display_name"), "{bad:?}");
        }
        assert!(DisplayName::parse(&"é".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(MAX_NAME_CHARS + 1)).is_err());
    }
}
