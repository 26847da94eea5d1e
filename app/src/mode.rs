//! What a session on behalf may do (Step 11), beside the rule and as pure as it: its
//! mode (view only unless chosen, or elevated, to act), what kind of thing each route
//! does, and the one predicate that decides. The server's request pipeline calls
//! [`on_behalf_allows`] before any handler runs; the pages call it to show their
//! controls disabled with the same reason.

use serde::{Deserialize, Serialize};

/// How far a session on behalf may go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum Mode {
    /// Reads only: every change is refused (`on_behalf_view_only`). The default.
    #[default]
    View,
    /// Changes as the member too, except the protected actions.
    Act,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::View, Mode::Act];

    /// The name stored in the database and used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::View => "view",
            Mode::Act => "act",
        }
    }

    pub fn parse(text: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|mode| mode.as_str() == text)
    }

    /// The word the banner uses: "viewing" or "acting".
    pub fn verb(self) -> &'static str {
        match self {
            Mode::View => "viewing",
            Mode::Act => "acting",
        }
    }
}

/// What a route does, as far as a session on behalf is concerned. Every route the
/// server has is given one (`server/src/access.rs`, checked against the route
/// registries by the security matrix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads the member's data: allowed in both modes, and joins the view trail.
    Read,
    /// Changes the member's data: only when acting.
    Write,
    /// Never on behalf, whatever the mode: passwords and email, the member's own
    /// sessions, one-click links, roles, groups, admin access, proxy login
    /// permissions, the audit viewer and oversight.
    Protected,
    /// About the session itself (sign in or out, who am I, leave, elevate, start
    /// another — which the rule refuses as nesting): the mode does not apply, and it
    /// is not a view of the member's data.
    Session,
}

/// Why a session on behalf may not do something: the two refusals of Step 11.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnBehalfLimit {
    /// A change in a view-only session.
    ViewOnly,
    /// A protected action, in any session on behalf.
    Protected,
}

/// The sentence the pages show beside a control disabled in a view-only session.
pub const VIEW_ONLY_REASON: &str = "Viewing only — choose Act on behalf to make changes.";

/// May a request of this kind run? `mode` is the mode of the request's session on
/// behalf (`None`: the member's own session, or no session).
pub fn on_behalf_allows(mode: Option<Mode>, access: Access) -> Result<(), OnBehalfLimit> {
    match (mode, access) {
        (None, _) => Ok(()),
        (Some(_), Access::Protected) => Err(OnBehalfLimit::Protected),
        (Some(Mode::View), Access::Write) => Err(OnBehalfLimit::ViewOnly),
        (Some(_), Access::Read | Access::Write | Access::Session) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_on_behalf_reads_in_both_modes_writes_only_acting_and_never_protected() {
        use Access::*;
        let table = [
            // mode, access, expected
            (None, Read, Ok(())),
            (None, Write, Ok(())),
            (None, Protected, Ok(())),
            (None, Session, Ok(())),
            (Some(Mode::View), Read, Ok(())),
            (Some(Mode::View), Write, Err(OnBehalfLimit::ViewOnly)),
            (Some(Mode::View), Protected, Err(OnBehalfLimit::Protected)),
            (Some(Mode::View), Session, Ok(())),
            (Some(Mode::Act), Read, Ok(())),
            (Some(Mode::Act), Write, Ok(())),
            (Some(Mode::Act), Protected, Err(OnBehalfLimit::Protected)),
            (Some(Mode::Act), Session, Ok(())),
        ];
        for (mode, access, expected) in table {
            assert_eq!(on_behalf_allows(mode, access), expected, "{mode:?} {access:?}");
        }
    }

    #[test]
    fn modes_have_stable_names() {
        for mode in Mode::ALL {
            assert_eq!(Mode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(Mode::default(), Mode::View);
        assert_eq!(Mode::parse("write"), None);
        assert_eq!(serde_json::to_string(&Mode::Act).unwrap(), "\"act\"");
    }
}
