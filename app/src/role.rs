//! A member's role and its rank (lower layer: imports nothing of the app).

use serde::{Deserialize, Serialize};

/// A member's role. The order of the variants is the order of their ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Support,
    Editor,
    SuperUser,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Member, Role::Support, Role::Editor, Role::SuperUser];

    /// member (0) < support (1) < editor (2) < super_user (3).
    pub fn rank(self) -> u8 {
        match self {
            Role::Member => 0,
            Role::Support => 1,
            Role::Editor => 2,
            Role::SuperUser => 3,
        }
    }

    /// The name stored in the database and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Support => "support",
            Role::Editor => "editor",
            Role::SuperUser => "super_user",
        }
    }

    /// The name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Role::Member => "Member",
            Role::Support => "Support engineer",
            Role::Editor => "Editor",
            Role::SuperUser => "Super user",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// Every role above member may use the management screens by default.
    pub fn default_admin_access(self) -> bool {
        self != Role::Member
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::parse(text)
            .ok_or_else(|| format!("unknown role '{text}' (expected member, support, editor or super_user)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_the_design() {
        let ranks: Vec<u8> = Role::ALL.iter().map(|r| r.rank()).collect();
        assert_eq!(ranks, vec![0, 1, 2, 3]);
        assert!(Role::Member < Role::Support && Role::Editor < Role::SuperUser);
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("admin".parse::<Role>().is_err());
        assert!("Member".parse::<Role>().is_err());
        assert!(Role::parse("").is_none());
    }
}
