//! Members: the shared types every area uses (roles and their ranks).

use leptos::{prelude::*, server_fn::codec::PostUrl};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[cfg(feature = "ssr")]
pub mod service;
pub mod ui;

/// Rows on one page of the members list.
pub const PAGE_SIZE: i64 = 25;
/// Pages reachable by paging (10,000 rows); past that, narrow the search.
pub const MAX_PAGE: i64 = 400;
/// Longest search text accepted.
pub const MAX_SEARCH_CHARS: usize = 100;

/// The columns the members list can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKey {
    Id,
    Name,
    Email,
    Role,
    LastSignIn,
}

impl SortKey {
    pub const ALL: [SortKey; 5] = [
        SortKey::Id,
        SortKey::Name,
        SortKey::Email,
        SortKey::Role,
        SortKey::LastSignIn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Id => "id",
            SortKey::Name => "name",
            SortKey::Email => "email",
            SortKey::Role => "role",
            SortKey::LastSignIn => "last_sign_in",
        }
    }

    pub fn parse(text: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|key| key.as_str() == text)
    }
}

/// A validated members-list query: what the URL asked for, made safe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListQuery {
    /// Search text, trimmed (may be empty).
    pub q: String,
    pub role: Option<Role>,
    pub sort: SortKey,
    pub descending: bool,
    /// 1-based, clamped to 1..=MAX_PAGE.
    pub page: i64,
}

impl ListQuery {
    /// Validates raw URL parameters. Unknown roles, sort columns and directions are
    /// refused with a message; a page number out of range is clamped.
    pub fn parse(
        q: Option<&str>,
        role: Option<&str>,
        sort: Option<&str>,
        dir: Option<&str>,
        page: Option<i64>,
    ) -> Result<ListQuery, AppError> {
        let q = q.unwrap_or("").trim();
        if q.chars().count() > MAX_SEARCH_CHARS {
            return Err(AppError::validation(
                "q",
                format!("Search for at most {MAX_SEARCH_CHARS} characters."),
            ));
        }
        if q.chars().any(char::is_control) {
            return Err(AppError::validation(
                "q",
                "The search cannot contain control characters.",
            ));
        }
        let role = match role.filter(|r| !r.is_empty()) {
            None => None,
            Some(text) => Some(Role::parse(text).ok_or_else(|| {
                AppError::validation(
                    "role",
                    "Unknown role: choose member, support, editor or super_user.",
                )
            })?),
        };
        let sort = match sort.filter(|s| !s.is_empty()) {
            None => SortKey::Name,
            Some(text) => SortKey::parse(text).ok_or_else(|| {
                AppError::validation(
                    "sort",
                    "Unknown sort column: use id, name, email, role or last_sign_in.",
                )
            })?,
        };
        let descending = match dir.filter(|d| !d.is_empty()) {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(AppError::validation("dir", "The sort direction is asc or desc.")),
        };
        Ok(ListQuery {
            q: q.to_string(),
            role,
            sort,
            descending,
            page: page.unwrap_or(1).clamp(1, MAX_PAGE),
        })
    }
}

/// One row of the members list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberSummary {
    pub id: i64,
    pub display_name: String,
    pub email: String,
    pub role: Role,
    pub admin_access: bool,
    pub login_enabled: bool,
    pub last_sign_in: Option<String>,
}

/// One page of the members list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberPage {
    pub query: ListQuery,
    pub members: Vec<MemberSummary>,
    /// Matching members, counted up to `COUNT_CAP`.
    pub total: i64,
    /// True when there are more than `total` (the count stopped at the cap).
    pub more: bool,
}

/// Counting stops here: "10,000+ members" is as useful as an exact million, and cheap.
pub const COUNT_CAP: i64 = PAGE_SIZE * MAX_PAGE;

impl MemberPage {
    pub fn pages(&self) -> i64 {
        ((self.total + PAGE_SIZE - 1) / PAGE_SIZE).clamp(1, MAX_PAGE)
    }
}

/// One page of members, for the management screens. Needs admin access.
#[server(prefix = "/api", endpoint = "members/list", input = PostUrl)]
pub async fn list_members(
    q: Option<String>,
    role: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<i64>,
) -> Result<MemberPage, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    request.require_admin()?;
    let query = ListQuery::parse(
        q.as_deref(),
        role.as_deref(),
        sort.as_deref(),
        dir.as_deref(),
        page,
    )?;
    service::list(&state.db, query).await
}

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

    #[test]
    fn list_queries_are_validated_and_pages_clamped() {
        let query = ListQuery::parse(
            Some("  ann "),
            Some("support"),
            Some("email"),
            Some("desc"),
            Some(3),
        )
        .unwrap();
        assert_eq!(query.q, "ann");
        assert_eq!(query.role, Some(Role::Support));
        assert_eq!(query.sort, SortKey::Email);
        assert!(query.descending);
        assert_eq!(query.page, 3);
        let default = ListQuery::parse(None, Some(""), None, None, None).unwrap();
        assert_eq!(
            (default.sort, default.descending, default.page, default.role),
            (SortKey::Name, false, 1, None)
        );
        assert_eq!(
            ListQuery::parse(None, None, None, None, Some(-5)).unwrap().page,
            1
        );
        assert_eq!(
            ListQuery::parse(None, None, None, None, Some(1_000_000))
                .unwrap()
                .page,
            MAX_PAGE
        );
        for (role, sort, dir, field) in [
            (Some("god"), None, None, "role"),
            (None, Some("password_hash"), None, "sort"),
            (None, None, Some("sideways"), "dir"),
        ] {
            let error = ListQuery::parse(None, role, sort, dir, None).unwrap_err();
            assert_eq!(error.field(), Some(field));
        }
        assert_eq!(
            ListQuery::parse(Some(&"x".repeat(101)), None, None, None, None)
                .unwrap_err()
                .field(),
            Some("q")
        );
        assert!(ListQuery::parse(Some("a\u{7}b"), None, None, None, None).is_err());
    }

    #[test]
    fn only_members_lack_admin_access_by_default() {
        assert!(!Role::Member.default_admin_access());
        assert!(Role::Support.default_admin_access());
        assert!(Role::SuperUser.default_admin_access());
    }
}
