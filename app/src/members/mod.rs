//! Members: the wire types of the members list, the blade and the editor, and their
//! server functions (thin: read the context, call the service).
// `list_members` takes the list's URL parameters one by one (so the form and URL keys stay
// plain `q`, `role`, …) and gathers them into `ListParams`; the server macro repeats
// them in code it generates.
#![allow(clippy::too_many_arguments)]

use std::collections::BTreeSet;

use leptos::{prelude::*, server_fn::codec::PostUrl};
use serde::{Deserialize, Serialize};

pub use crate::role::Role;
use crate::{
    email::Email,
    error::AppError,
    names::DisplayName,
    urls::{given, optional_id},
};

pub mod blade;
#[cfg(feature = "ssr")]
mod consent;
#[cfg(feature = "ssr")]
pub mod directory;
#[cfg(feature = "ssr")]
pub mod search;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
pub mod ui;

/// A group named by ID, as a member's groups are shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRef {
    pub id: i64,
    pub name: String,
}

/// Rows on one page of the members list.
pub const PAGE_SIZE: i64 = 25;
/// The page number shown is at most this (pages themselves are not limited).
pub const MAX_PAGE: i64 = 1_000_000;
/// Searches of fewer characters match IDs only.
pub const MIN_SEARCH_CHARS: usize = 2;
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
    /// Only members of this group.
    pub group: Option<i64>,
    pub sort: SortKey,
    pub descending: bool,
    /// The page number to show (1-based, clamped to 1..=MAX_PAGE); the page itself
    /// is found from the cursor.
    pub page: i64,
    /// The page starts after this member (the previous page's last row)…
    pub after: Option<i64>,
    /// …or ends before this one (the next page's first row).
    pub before: Option<i64>,
}

/// The members list's URL parameters as they came (each may be missing or empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListParams {
    pub q: Option<String>,
    pub role: Option<String>,
    pub group: Option<String>,
    pub sort: Option<String>,
    pub dir: Option<String>,
    pub page: Option<i64>,
    pub after: Option<String>,
    pub before: Option<String>,
}

impl ListQuery {
    /// Validates raw URL parameters. Unknown roles, sort columns and directions are
    /// refused with a message; a page number out of range is clamped.
    pub fn parse(params: &ListParams) -> Result<ListQuery, AppError> {
        let id_param = |name: &str, value: &Option<String>| {
            optional_id(
                name,
                value,
                "A page cursor is the ID of a member (a whole number).",
            )
        };
        let after = id_param("after", &params.after)?;
        let before = id_param("before", &params.before)?;
        if after.is_some() && before.is_some() {
            return Err(AppError::validation(
                "before",
                "Give either after or before, not both.",
            ));
        }
        let (q, role, group, sort, dir) = (
            params.q.as_deref(),
            given(&params.role),
            given(&params.group),
            given(&params.sort),
            given(&params.dir),
        );
        let page = params.page;
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
        let role = match role.as_deref() {
            None => None,
            Some(text) => Some(Role::parse(text).ok_or_else(|| {
                AppError::validation(
                    "role",
                    "Unknown role: choose member, support, editor or super_user.",
                )
            })?),
        };
        let group = optional_id("group", &group, "A group is chosen by its numeric ID.")?;
        let sort = match sort.as_deref() {
            None => SortKey::Name,
            Some(text) => SortKey::parse(text).ok_or_else(|| {
                AppError::validation(
                    "sort",
                    "Unknown sort column: use id, name, email, role or last_sign_in.",
                )
            })?,
        };
        let descending = match dir.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(AppError::validation("dir", "The sort direction is asc or desc.")),
        };
        Ok(ListQuery {
            q: q.to_string(),
            role,
            group,
            sort,
            descending,
            page: page.unwrap_or(1).clamp(1, MAX_PAGE),
            after,
            before,
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
    /// The groups the member belongs to, by name.
    pub groups: Vec<GroupRef>,
}

/// A member named by ID, as shown in lists of members (proxy login permission).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRef {
    pub id: i64,
    pub display_name: String,
}

/// Everything the User information blade shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberDetail {
    pub member: MemberSummary,
    pub member_since: String,
    /// The members allowed to log in on this member's behalf.
    pub proxy_login_permission: Vec<MemberRef>,
    /// Whether the viewer may edit this member.
    pub can_edit: bool,
    /// Whether the rule lets the viewer log in on this member's behalf (the server
    /// checks again when it is tried).
    pub can_log_in_on_behalf: bool,
    /// Whether the viewer may create one-click login links for this member (and see
    /// and revoke theirs); the server checks again.
    pub can_create_link: bool,
    /// Whether the viewer may see and end this member's sessions (the server checks
    /// again).
    pub can_see_sessions: bool,
    /// The roles the viewer may give (those up to their own rank).
    pub assignable_roles: Vec<Role>,
    /// The member's consent (Step 12): their setting in force, live grants, and
    /// whether the viewer needs to request access.
    pub consent: crate::grant::BladeConsent,
}

/// What the member editor sends, as typed (the wire type of `update_member`). Lists
/// of IDs come as text (comma or space separated) exactly as typed, so the server can
/// say what is wrong with them. `parse` turns it into a `MemberEdit`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberForm {
    pub display_name: String,
    pub email: String,
    pub role: String,
    pub admin_access: bool,
    pub login_enabled: bool,
    /// Group IDs.
    pub groups: String,
    /// IDs of the members allowed to log in on this member's behalf.
    pub proxy_login_permission: String,
}

/// A member's details as the editor sets them, every field checked: what the
/// service takes. Made by `MemberForm::parse` (the editor) or from the JSON API's
/// typed request; never sent to the browser.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberEdit {
    pub display_name: DisplayName,
    pub email: Email,
    pub role: Role,
    pub admin_access: bool,
    pub login_enabled: bool,
    /// Group IDs.
    pub groups: BTreeSet<i64>,
    /// IDs of the members allowed to log in on this member's behalf.
    pub proxy_login_permission: BTreeSet<i64>,
}

impl MemberForm {
    /// Checks every field, in the order of the form; the first error names its field.
    /// Whether the IDs name groups and members is for the service to say.
    pub fn parse(self) -> Result<MemberEdit, AppError> {
        let id_set = |field: &'static str, text: &str| {
            parse_id_list(text)
                .map(|ids| ids.into_iter().collect())
                .map_err(|message| AppError::validation(field, message))
        };
        Ok(MemberEdit {
            display_name: DisplayName::parse(&self.display_name)?,
            email: Email::parse(&self.email)?,
            role: Role::parse(self.role.trim()).ok_or_else(|| {
                AppError::validation("role", "Choose a role: member, support, editor or super_user.")
            })?,
            admin_access: self.admin_access,
            login_enabled: self.login_enabled,
            groups: id_set("groups", &self.groups)?,
            proxy_login_permission: id_set("proxy_login_permission", &self.proxy_login_permission)?,
        })
    }
}

/// One ID typed into the proxy login permission, and whose it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdLookup {
    pub id: i64,
    /// `None` when no member has this ID.
    pub display_name: Option<String>,
}

/// The most IDs a proxy login permission (or a group list) may hold.
pub const MAX_IDS: usize = 100;

/// Parses a list of IDs typed by a person: separated by commas or spaces, each a
/// positive whole number, none twice. The message names the offending entry.
pub fn parse_id_list(text: &str) -> Result<Vec<i64>, String> {
    let mut ids = Vec::new();
    for part in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
    {
        let id = part
            .trim_start_matches('#')
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| not_an_id(part))?;
        add_id(&mut ids, id)?;
    }
    Ok(ids)
}

/// Checks a list of IDs given as numbers (the JSON API's) as `parse_id_list` checks
/// typed ones, with the same messages: each positive, none twice, at most `MAX_IDS`.
pub fn check_id_list(given: &[i64]) -> Result<BTreeSet<i64>, String> {
    let mut ids = Vec::new();
    for id in given {
        if *id <= 0 {
            return Err(not_an_id(&id.to_string()));
        }
        add_id(&mut ids, *id)?;
    }
    Ok(ids.into_iter().collect())
}

fn not_an_id(part: &str) -> String {
    format!(
        "\"{}\" is not a member ID (IDs are whole numbers).",
        part.chars().take(20).collect::<String>()
    )
}

fn add_id(ids: &mut Vec<i64>, id: i64) -> Result<(), String> {
    if ids.contains(&id) {
        return Err(format!("ID {id} is listed twice."));
    }
    ids.push(id);
    if ids.len() > MAX_IDS {
        return Err(format!("List at most {MAX_IDS} IDs."));
    }
    Ok(())
}

/// One page of the members list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberPage {
    pub query: ListQuery,
    pub members: Vec<MemberSummary>,
    /// Matching members, exact when `more` is false.
    pub total: i64,
    /// True when more than `COUNT_CAP` members match (they are not counted).
    pub more: bool,
    /// The cursor (`after`) of the next page, if there is one.
    pub next: Option<i64>,
    /// The cursor (`before`) of the previous page, if there is one.
    pub previous: Option<i64>,
    /// Why the search found nothing, when it was too short to search names.
    pub hint: Option<String>,
}

/// Counting stops here: "more than 2,000" is as useful as an exact million, and cheap.
pub const COUNT_CAP: i64 = 2_000;

impl MemberPage {
    /// The number of pages, when the count is exact.
    pub fn pages(&self) -> Option<i64> {
        (!self.more).then(|| ((self.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1))
    }
}

/// One page of members, for the management screens. Needs admin access.
#[server(prefix = "/api", endpoint = "members/list", input = PostUrl)]
pub async fn list_members(
    q: Option<String>,
    role: Option<String>,
    group: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<i64>,
    after: Option<String>,
    before: Option<String>,
) -> Result<MemberPage, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    let params = ListParams {
        q,
        role,
        group,
        sort,
        dir,
        page,
        after,
        before,
    };
    search::list(&state, &request, &params).await
}

/// The User information blade's content. Needs admin access.
#[server(prefix = "/api", endpoint = "members/get", input = PostUrl)]
pub async fn get_member(id: i64) -> Result<MemberDetail, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::detail(&state, &request, id).await
}

/// Saves the member editor. Editors and super users only, for members whose rank is
/// at most their own; writes one audit record with what changed. The form is parsed
/// here, once the caller may edit (a refusal comes first, and is recorded).
#[server(prefix = "/api", endpoint = "members/update", input = PostUrl)]
pub async fn update_member(id: i64, edit: MemberForm) -> Result<MemberDetail, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    let permit = service::permit_edit(&state, &request, id).await?;
    service::update(&state, permit, edit.parse()?).await
}

/// Names the members behind typed IDs (the editor shows them back). Admin access.
#[server(prefix = "/api", endpoint = "members/lookup", input = PostUrl)]
pub async fn lookup_members(ids: String) -> Result<Vec<IdLookup>, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    directory::lookup(&state, &request, &ids).await
}

/// The groups a member can be filtered by or put in (ID and name, by name, at most
/// 1,000). Admin access.
#[server(prefix = "/api", endpoint = "members/groups", input = PostUrl)]
pub async fn group_choices() -> Result<Vec<GroupRef>, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    directory::group_choices(&state, &request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{assignable_roles, may_edit};

    /// The parameters one by one, as the old signature took them.
    fn parse(
        q: Option<&str>,
        role: Option<&str>,
        group: Option<&str>,
        sort: Option<&str>,
        dir: Option<&str>,
        page: Option<i64>,
        (after, before): (Option<&str>, Option<&str>),
    ) -> Result<ListQuery, AppError> {
        let own = |v: Option<&str>| v.map(str::to_string);
        ListQuery::parse(&ListParams {
            q: own(q),
            role: own(role),
            group: own(group),
            sort: own(sort),
            dir: own(dir),
            page,
            after: own(after),
            before: own(before),
        })
    }

    #[test]
    fn list_queries_are_validated_and_pages_clamped() {
        let query = parse(
            Some("  ann "),
            Some("support"),
            Some("7"),
            Some("email"),
            Some("desc"),
            Some(3),
            (Some("120"), None),
        )
        .unwrap();
        assert_eq!(query.after, Some(120));
        assert_eq!(query.q, "ann");
        assert_eq!(query.role, Some(Role::Support));
        assert_eq!(query.sort, SortKey::Email);
        assert!(query.descending);
        assert_eq!(query.page, 3);
        assert_eq!(query.group, Some(7));
        let default = parse(None, Some(""), Some(""), None, None, None, (Some(""), None)).unwrap();
        assert_eq!(
            (default.sort, default.descending, default.page, default.role),
            (SortKey::Name, false, 1, None)
        );
        assert_eq!(
            parse(None, None, None, None, None, Some(-5), (None, None))
                .unwrap()
                .page,
            1
        );
        assert_eq!(
            parse(None, None, None, None, None, Some(i64::MAX), (None, None))
                .unwrap()
                .page,
            MAX_PAGE
        );
        for (role, group, sort, dir, field) in [
            (Some("god"), None, None, None, "role"),
            (None, Some("staff"), None, None, "group"),
            (None, Some("-1"), None, None, "group"),
            (None, None, Some("password_hash"), None, "sort"),
            (None, None, None, Some("sideways"), "dir"),
        ] {
            let error = parse(None, role, group, sort, dir, None, (None, None)).unwrap_err();
            assert_eq!(error.field(), Some(field));
        }
        for (after, before, field) in [
            (Some("x"), None, "after"),
            (None, Some("-2"), "before"),
            (Some("3"), Some("4"), "before"),
        ] {
            let error = parse(None, None, None, None, None, None, (after, before)).unwrap_err();
            assert_eq!(error.field(), Some(field));
        }
        assert_eq!(
            parse(Some(&"x".repeat(101)), None, None, None, None, None, (None, None))
                .unwrap_err()
                .field(),
            Some("q")
        );
        assert!(parse(Some("a\u{7}b"), None, None, None, None, None, (None, None)).is_err());
    }

    #[test]
    fn editors_edit_up_to_their_own_rank_and_give_no_higher_role() {
        use Role::*;
        assert!(may_edit(Editor, Member) && may_edit(Editor, Support) && may_edit(Editor, Editor));
        assert!(!may_edit(Editor, SuperUser));
        assert!(may_edit(SuperUser, SuperUser));
        assert!(!may_edit(Support, Member) && !may_edit(Member, Member));
        assert_eq!(assignable_roles(Editor), vec![Member, Support, Editor]);
        assert_eq!(assignable_roles(SuperUser), Role::ALL.to_vec());
        assert!(assignable_roles(Support).is_empty());
    }

    #[test]
    fn id_lists_are_parsed_strictly() {
        assert_eq!(parse_id_list(""), Ok(vec![]));
        assert_eq!(parse_id_list(" 3, 5 7,,#9 "), Ok(vec![3, 5, 7, 9]));
        assert!(parse_id_list("3, 3").unwrap_err().contains("twice"));
        assert!(parse_id_list("3, ann").unwrap_err().contains("\"ann\""));
        assert!(parse_id_list("0").is_err());
        assert!(parse_id_list("-4").is_err());
        assert!(parse_id_list("99999999999999999999").is_err());
        let many = (1..=101).map(|n| n.to_string()).collect::<Vec<_>>().join(",");
        assert!(parse_id_list(&many).is_err());
    }

    #[test]
    fn only_members_lack_admin_access_by_default() {
        assert!(!Role::Member.default_admin_access());
        assert!(Role::Support.default_admin_access());
        assert!(Role::SuperUser.default_admin_access());
    }
}
