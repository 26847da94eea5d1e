//! Groups on the server: listing, one group's members, and the changes editors make
//! (each with its audit record in the same transaction).

use serde_json::json;

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{AuditTx, NewEvent},
    context::RequestContext,
    db::with_db,
    db::{is_unique_violation, stored_role, BeginWrite, Db},
    error::{AppError, Refusal},
    groups::{validate_group_name, GroupList, GroupPage, GroupSummary, GROUP_MAX_PAGE, GROUP_PAGE_SIZE},
    guard::{record_refusal, require_admin, require_editor},
    members::{
        directory::{summaries, SummaryRow, SUMMARY_COLUMNS},
        store::set_group_membership,
    },
    policy::{may_edit, may_manage},
    state::AppState,
};

/// The most groups listed on /admin/groups.
pub const MAX_GROUPS_LISTED: i64 = 1_000;

const REFUSED: AuditAction = AuditAction::GroupChangeRefused;

fn no_such_group(id: i64) -> AppError {
    AppError::NotFound(format!("No group has the ID {id}."))
}

pub fn group_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Every group with its member count, by name. Admin access.
pub async fn list(state: &AppState, request: &RequestContext) -> Result<GroupList, AppError> {
    let viewer = &require_admin(request)?.member;
    let rows: Vec<(i64, String, i64)> = with_db!(&state.db, pool => {
        sqlx::query_as("SELECT id, name, member_count FROM groups ORDER BY name_key, id LIMIT $1")
            .bind(MAX_GROUPS_LISTED)
            .fetch_all(pool)
            .await?
    });
    Ok(GroupList {
        groups: rows
            .into_iter()
            .map(|(id, name, member_count)| GroupSummary {
                id,
                name,
                member_count,
            })
            .collect(),
        can_edit: may_manage(viewer.role, viewer.admin_access).is_ok(),
    })
}

async fn summary(db: &Db, id: i64) -> Result<GroupSummary, AppError> {
    let row: Option<(i64, String, i64)> = with_db!(db, pool => {
        sqlx::query_as("SELECT id, name, member_count FROM groups WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    let (id, name, member_count) = row.ok_or_else(|| no_such_group(id))?;
    Ok(GroupSummary {
        id,
        name,
        member_count,
    })
}

/// A group and one page of its members in ID order (page clamped to 1..=400). Admin
/// access.
pub async fn page(
    state: &AppState,
    request: &RequestContext,
    id: i64,
    page: i64,
) -> Result<GroupPage, AppError> {
    let viewer = &require_admin(request)?.member;
    let db = &state.db;
    let group = summary(db, id).await?;
    let pages = ((group.member_count + GROUP_PAGE_SIZE - 1) / GROUP_PAGE_SIZE).clamp(1, GROUP_MAX_PAGE);
    let page = page.clamp(1, pages);
    let columns = SUMMARY_COLUMNS.replace("id, ", "m.id, ");
    let rows: Vec<SummaryRow> = with_db!(db, pool => {
        sqlx::query_as(&format!(
            "SELECT {columns} FROM group_members gm JOIN members m ON m.id = gm.member_id \
             WHERE gm.group_id = $1 AND m.deleted_at IS NULL ORDER BY gm.member_id LIMIT $2 OFFSET $3"
        ))
        .bind(id)
        .bind(GROUP_PAGE_SIZE)
        .bind((page - 1) * GROUP_PAGE_SIZE)
        .fetch_all(pool)
        .await?
    });
    Ok(GroupPage {
        group,
        members: summaries(db, rows).await?,
        page,
        pages,
        can_edit: may_manage(viewer.role, viewer.admin_access).is_ok(),
    })
}

fn taken(name: &str) -> AppError {
    AppError::validation("name", format!("A group named \"{name}\" already exists."))
}

pub async fn create(
    state: &AppState,
    request: &RequestContext,
    name: &str,
) -> Result<GroupSummary, AppError> {
    let session = require_editor(state, request, REFUSED, (ObjectKind::Group, "new".into())).await?;
    let name = validate_group_name(name)?;
    let now = state.clock.now();
    let result: Result<i64, AppError> = with_db!(&state.db, pool => {
        async {
            let mut tx = pool.begin_write().await?;
            let inserted: Result<(i64,), sqlx::Error> = sqlx::query_as(
                "INSERT INTO groups (name, name_key, member_count, created_at, updated_at) \
                 VALUES ($1, $2, 0, $3, $3) RETURNING id",
            )
            .bind(&name)
            .bind(group_key(&name))
            .bind(now)
            .fetch_one(&mut *tx)
            .await;
            let (id,) = match inserted {
                Err(error) if is_unique_violation(&error) => return Err(taken(&name)),
                other => other?,
            };
            let event = NewEvent::new(AuditAction::GroupCreated, request)
                .by(session)
                .object(ObjectKind::Group, id)
                .details(json!({ "name": name }));
            tx.append_audit(now, event).await?;
            tx.commit().await?;
            Ok(id)
        }
        .await
    });
    let id = result?;
    Ok(GroupSummary {
        id,
        name,
        member_count: 0,
    })
}

pub async fn rename(
    state: &AppState,
    request: &RequestContext,
    id: i64,
    name: &str,
) -> Result<GroupSummary, AppError> {
    let session = require_editor(state, request, REFUSED, (ObjectKind::Group, id.to_string())).await?;
    let name = validate_group_name(name)?;
    let now = state.clock.now();
    let result: Result<(), AppError> = with_db!(&state.db, pool => {
        async {
            let mut tx = pool.begin_write().await?;
            let before: Option<(String,)> = sqlx::query_as("SELECT name FROM groups WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let (before,) = before.ok_or_else(|| no_such_group(id))?;
            if before == name {
                return Ok(());
            }
            let updated = sqlx::query("UPDATE groups SET name = $1, name_key = $2, updated_at = $3 WHERE id = $4")
                .bind(&name)
                .bind(group_key(&name))
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await;
            match updated {
                Err(error) if is_unique_violation(&error) => return Err(taken(&name)),
                other => {
                    other?;
                }
            }
            let event = NewEvent::new(AuditAction::GroupRenamed, request)
                .by(session)
                .object(ObjectKind::Group, id)
                .details(json!({ "name": { "before": before, "after": name } }));
            tx.append_audit(now, event).await?;
            tx.commit().await?;
            Ok(())
        }
        .await
    });
    result?;
    summary(&state.db, id).await
}

/// Deletes a group: refused (and recorded) when any member of it ranks above the
/// editor, exactly as removing that member would be.
pub async fn delete(state: &AppState, request: &RequestContext, id: i64) -> Result<(), AppError> {
    let object = (ObjectKind::Group, id.to_string());
    let session = require_editor(state, request, REFUSED, object.clone()).await?;
    let editor = session.member.role;
    let now = state.clock.now();
    let result: Result<(), AppError> = with_db!(&state.db, pool => {
        async {
            let mut tx = pool.begin_write().await?;
            let before: Option<(String, i64)> = sqlx::query_as("SELECT name, member_count FROM groups WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let (name, member_count) = before.ok_or_else(|| no_such_group(id))?;
            let (highest,): (Option<i64>,) = sqlx::query_as(
                "SELECT MAX(m.role_rank) FROM group_members gm JOIN members m ON m.id = gm.member_id \
                 WHERE gm.group_id = $1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            if highest.is_some_and(|rank| rank > i64::from(editor.rank())) {
                return Err(AppError::Refused(Refusal::TargetOutranksEditor));
            }
            sqlx::query("DELETE FROM group_members WHERE group_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM groups WHERE id = $1").bind(id).execute(&mut *tx).await?;
            let event = NewEvent::new(AuditAction::GroupDeleted, request)
                .by(session)
                .object(ObjectKind::Group, id)
                .details(json!({ "name": name, "member_count": member_count }));
            tx.append_audit(now, event).await?;
            tx.commit().await?;
            Ok(())
        }
        .await
    });
    record_refusal(state, request, session, REFUSED, object, result).await
}

/// Adds (`add`) or removes a member. Adding someone already in the group, or removing
/// someone who is not, is a conflict and changes nothing.
pub async fn set_membership(
    state: &AppState,
    request: &RequestContext,
    group_id: i64,
    member_id: i64,
    add: bool,
) -> Result<(), AppError> {
    let object = (ObjectKind::Group, group_id.to_string());
    let session = require_editor(state, request, REFUSED, object.clone()).await?;
    let editor = session.member.role;
    let now = state.clock.now();
    let result: Result<(), AppError> = with_db!(&state.db, pool => {
        async {
            let mut tx = pool.begin_write().await?;
            let group: Option<(String,)> = sqlx::query_as("SELECT name FROM groups WHERE id = $1")
                .bind(group_id)
                .fetch_optional(&mut *tx)
                .await?;
            let (group_name,) = group.ok_or_else(|| no_such_group(group_id))?;
            let member: Option<(String, String)> =
                sqlx::query_as("SELECT display_name, role FROM members WHERE id = $1 AND deleted_at IS NULL")
                    .bind(member_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let (member_name, role) = member.ok_or_else(|| {
                AppError::validation("member_id", format!("No member has the ID {member_id}."))
            })?;
            let role = stored_role(member_id, &role)?;
            if !may_edit(editor, role) {
                return Err(AppError::Refused(Refusal::TargetOutranksEditor));
            }
            let (present,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM group_members WHERE group_id = $1 AND member_id = $2")
                    .bind(group_id)
                    .bind(member_id)
                    .fetch_one(&mut *tx)
                    .await?;
            match (add, present > 0) {
                (true, true) => {
                    return Err(AppError::Conflict(format!("{member_name} is already in {group_name}.")))
                }
                (false, false) => {
                    return Err(AppError::Conflict(format!("{member_name} is not in {group_name}.")))
                }
                _ => set_group_membership(&mut tx, group_id, member_id, now, add).await?,
            }
            let action = if add { AuditAction::GroupMemberAdded } else { AuditAction::GroupMemberRemoved };
            let event = NewEvent::new(action, request)
                .by(session)
                .subject(member_id)
                .object(ObjectKind::Group, group_id)
                .details(json!({ "group": group_name, "member_id": member_id }));
            tx.append_audit(now, event).await?;
            tx.commit().await?;
            Ok(())
        }
        .await
    });
    record_refusal(state, request, session, REFUSED, object, result).await
}
