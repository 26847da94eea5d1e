//! Member groups (Virto's companies, Kuroco's member groups): shared types and the
//! server functions of /admin/groups.

use leptos::{prelude::*, server_fn::codec::PostUrl};
use serde::{Deserialize, Serialize};

use crate::{error::AppError, members::MemberSummary};

#[cfg(feature = "ssr")]
pub mod service;
pub mod ui;

/// Longest group name accepted.
pub const MAX_GROUP_NAME_CHARS: usize = 80;
/// Members on one page of a group.
pub const GROUP_PAGE_SIZE: i64 = 25;
/// Pages reachable in a group (10,000 members); past that, use the members list's filter.
pub const GROUP_MAX_PAGE: i64 = 400;

/// A row of the groups list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    pub id: i64,
    pub name: String,
    pub member_count: i64,
}

/// The groups list, and whether the viewer may change groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupList {
    pub groups: Vec<GroupSummary>,
    pub can_edit: bool,
}

/// A group's page: the group and one page of its members (by ID).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupPage {
    pub group: GroupSummary,
    pub members: Vec<MemberSummary>,
    pub page: i64,
    pub pages: i64,
    pub can_edit: bool,
}

/// Checks a group name: trimmed, present, bounded, printable.
pub fn validate_group_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AppError::validation("name", "Enter a group name."));
    }
    if name.chars().count() > MAX_GROUP_NAME_CHARS {
        return Err(AppError::validation(
            "name",
            format!("A group name has at most {MAX_GROUP_NAME_CHARS} characters."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::validation(
            "name",
            "A group name cannot contain control characters.",
        ));
    }
    Ok(name.to_string())
}

/// Every group with its member count, by name. Needs admin access.
#[server(prefix = "/api", endpoint = "groups/list", input = PostUrl)]
pub async fn list_groups() -> Result<GroupList, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::list(&state, &request).await
}

/// A group and a page of its members. Needs admin access.
#[server(prefix = "/api", endpoint = "groups/get", input = PostUrl)]
pub async fn get_group(id: i64, page: Option<i64>) -> Result<GroupPage, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::page(&state, &request, id, page.unwrap_or(1)).await
}

/// Creates a group. Editors and super users.
#[server(prefix = "/api", endpoint = "groups/create", input = PostUrl)]
pub async fn create_group(name: String) -> Result<GroupSummary, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::create(&state, &request, &name).await
}

/// Renames a group. Editors and super users.
#[server(prefix = "/api", endpoint = "groups/rename", input = PostUrl)]
pub async fn rename_group(id: i64, name: String) -> Result<GroupSummary, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::rename(&state, &request, id, &name).await
}

/// Deletes a group (its members stay; they leave the group). Editors and super users,
/// for groups whose members all rank at most their own (as adding and removing).
#[server(prefix = "/api", endpoint = "groups/delete", input = PostUrl)]
pub async fn delete_group(id: i64) -> Result<(), AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::delete(&state, &request, id).await
}

/// Adds a member to a group. Editors and super users, for members up to their rank.
#[server(prefix = "/api", endpoint = "groups/add-member", input = PostUrl)]
pub async fn add_group_member(group_id: i64, member_id: i64) -> Result<(), AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::set_membership(&state, &request, group_id, member_id, true).await
}

/// Removes a member from a group. Editors and super users, for members up to their rank.
#[server(prefix = "/api", endpoint = "groups/remove-member", input = PostUrl)]
pub async fn remove_group_member(group_id: i64, member_id: i64) -> Result<(), AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::set_membership(&state, &request, group_id, member_id, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_trimmed_and_bounded() {
        assert_eq!(validate_group_name("  Acme Ltd ").unwrap(), "Acme Ltd");
        assert!(validate_group_name(" ").is_err());
        assert!(validate_group_name(&"é".repeat(80)).is_ok());
        assert_eq!(
            validate_group_name(&"é".repeat(81)).unwrap_err().field(),
            Some("name")
        );
        assert!(validate_group_name("a\nb").is_err());
    }
}
