//! The User information blade and the member editor (ssr): what the blade shows, and
//! saving the editor with every check and one audit record.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use sqlx::QueryBuilder;

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{AuditTx, NewEvent},
    clock::format_utc,
    context::{CurrentSession, RequestContext},
    db::with_db,
    db::{is_unique_violation, stored_role, BeginWrite, Db},
    email::{email_key, validate_email},
    error::{AppError, Refusal},
    guard::{record_refusal, refuse, require_admin, require_editor},
    members::{
        directory::{groups_of, name_key, validate_display_name, SummaryRow},
        parse_id_list,
        store::{set_group_membership, write_terms},
        IdLookup, MemberDetail, MemberEdit, MemberRef,
    },
    one_click::store::revoke_member_links,
    policy::{assignable_roles, may_change_role, may_edit, may_grant},
    role::Role,
    rule,
    session::end_member_sessions,
    state::AppState,
};

#[derive(sqlx::FromRow)]
struct DetailRow {
    #[sqlx(flatten)]
    member: SummaryRow,
    created_at: i64,
}

const DETAIL: &str = "SELECT id, email, display_name, role, admin_access, login_enabled, created_at, \
                      last_sign_in_at FROM members WHERE id = $1 AND deleted_at IS NULL";

fn no_such_member(id: i64) -> AppError {
    AppError::NotFound(format!("No member has the ID {id}."))
}

/// Everything the blade shows about member `id`. Admin access.
pub async fn detail(state: &AppState, request: &RequestContext, id: i64) -> Result<MemberDetail, AppError> {
    let viewer = require_admin(request)?;
    detail_for(&state.db, viewer, id).await
}

async fn detail_for(db: &Db, viewer: &CurrentSession, id: i64) -> Result<MemberDetail, AppError> {
    let row: Option<DetailRow> = with_db!(db, pool => {
        sqlx::query_as(DETAIL).bind(id).fetch_optional(pool).await?
    });
    let row = row.ok_or_else(|| no_such_member(id))?;
    let proxies: Vec<(i64, String, Option<i64>)> = with_db!(db, pool => {
        sqlx::query_as(
            "SELECT m.id, m.display_name, p.granted_by FROM proxy_permissions p JOIN members m ON m.id = p.actor_id \
             WHERE p.member_id = $1 AND m.deleted_at IS NULL ORDER BY m.id",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
    });
    let groups = groups_of(db, &[id]).await?.remove(&id).unwrap_or_default();
    let member = row.member.summary(groups)?;
    let me = &viewer.member;
    let can_edit = may_edit(me.role, member.role);
    let grant = proxies.iter().find(|(actor, _, _)| *actor == me.id);
    let can_log_in_on_behalf = rule::can_log_in_on_behalf(
        &rule::Actor {
            id: me.id,
            role: me.role,
            admin_access: me.admin_access,
            on_behalf: viewer.on_behalf.is_some(),
        },
        Some(&rule::Target {
            id: member.id,
            role: member.role,
            deleted: false,
            login_enabled: member.login_enabled,
            grants_actor: grant.is_some(),
            grant_written_by_actor: grant.is_some_and(|(_, _, by)| *by == Some(me.id)),
        }),
    )
    .is_ok();
    let can_create_link = viewer.on_behalf.is_none()
        && crate::policy::may_create_link(
            crate::policy::LinkParty {
                role: me.role,
                admin_access: me.admin_access,
            },
            crate::policy::LinkParty {
                role: member.role,
                admin_access: member.admin_access,
            },
            member.login_enabled,
        )
        .is_ok();
    let can_see_sessions = crate::policy::may_oversee(me.role, me.admin_access, viewer.on_behalf.is_some())
        .and_then(|()| crate::policy::may_end_session(me.role, member.role))
        .is_ok();
    Ok(MemberDetail {
        member,
        member_since: format_utc(row.created_at),
        proxy_login_permission: proxies
            .into_iter()
            .map(|(id, display_name, _)| MemberRef { id, display_name })
            .collect(),
        can_edit,
        can_log_in_on_behalf,
        can_create_link,
        can_see_sessions,
        assignable_roles: if can_edit {
            assignable_roles(me.role)
        } else {
            Vec::new()
        },
    })
}

/// Names the members behind typed `ids` (deleted members count as unknown). Admin
/// access.
pub async fn lookup(
    state: &AppState,
    request: &RequestContext,
    ids: &str,
) -> Result<Vec<IdLookup>, AppError> {
    require_admin(request)?;
    let ids = parse_id_list(ids).map_err(|message| AppError::validation("ids", message))?;
    let found = names_of(&state.db, &ids).await?;
    Ok(ids
        .iter()
        .map(|id| IdLookup {
            id: *id,
            display_name: found.get(id).cloned(),
        })
        .collect())
}

async fn names_of(db: &Db, ids: &[i64]) -> Result<BTreeMap<i64, String>, AppError> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<(i64, String)> = with_db!(db, pool => {
        let mut query =
            QueryBuilder::new("SELECT id, display_name FROM members WHERE deleted_at IS NULL AND id IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        query.push(")");
        query.build_query_as().fetch_all(pool).await?
    });
    Ok(rows.into_iter().collect())
}

/// Which of `ids` the query `select` (ending in `id IN (`) finds, inside a transaction.
macro_rules! found_ids {
    ($tx:expr, $select:expr, $ids:expr) => {{
        let mut query = QueryBuilder::new($select);
        let mut list = query.separated(", ");
        for id in $ids {
            list.push_bind(*id);
        }
        query.push(")");
        let found: Vec<(i64,)> = query.build_query_as().fetch_all(&mut *$tx).await?;
        found.into_iter().map(|(id,)| id).collect::<BTreeSet<i64>>()
    }};
}

/// What to change about a member: each field given is set, each one left out keeps
/// what the database holds when the change is applied (read inside its transaction,
/// so two partial changes at once never undo each other). The editor's form gives
/// every field; the JSON API's PATCH only some.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemberChanges {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub role: Option<String>,
    pub admin_access: Option<bool>,
    pub login_enabled: Option<bool>,
    /// Group IDs, as typed.
    pub groups: Option<String>,
    /// IDs of the members allowed to log in on this member's behalf, as typed.
    pub proxy_login_permission: Option<String>,
}

impl From<MemberEdit> for MemberChanges {
    fn from(edit: MemberEdit) -> Self {
        MemberChanges {
            display_name: Some(edit.display_name),
            email: Some(edit.email),
            role: Some(edit.role),
            admin_access: Some(edit.admin_access),
            login_enabled: Some(edit.login_enabled),
            groups: Some(edit.groups),
            proxy_login_permission: Some(edit.proxy_login_permission),
        }
    }
}

/// Validated changes, ready to apply.
struct CheckedChanges {
    display_name: Option<String>,
    email: Option<String>,
    role: Option<Role>,
    admin_access: Option<bool>,
    login_enabled: Option<bool>,
    groups: Option<BTreeSet<i64>>,
    proxies: Option<BTreeSet<i64>>,
}

/// A member's details after a change, every field decided.
struct CheckedEdit {
    display_name: String,
    email: String,
    role: Role,
    admin_access: bool,
    login_enabled: bool,
    groups: BTreeSet<i64>,
    proxies: BTreeSet<i64>,
}

/// Checks what can be checked without the database. The role's rank is checked
/// against the editor's by the caller (it is a refusal, not a typo).
fn check_changes(id: i64, changes: MemberChanges) -> Result<CheckedChanges, AppError> {
    let display_name = changes
        .display_name
        .as_deref()
        .map(validate_display_name)
        .transpose()?;
    let email = changes.email.as_deref().map(validate_email).transpose()?;
    let role = changes
        .role
        .as_deref()
        .map(|text| {
            Role::parse(text.trim()).ok_or_else(|| {
                AppError::validation("role", "Choose a role: member, support, editor or super_user.")
            })
        })
        .transpose()?;
    let groups = changes
        .groups
        .as_deref()
        .map(|text| parse_id_list(text).map_err(|message| AppError::validation("groups", message)))
        .transpose()?;
    let proxies = changes
        .proxy_login_permission
        .as_deref()
        .map(|text| {
            parse_id_list(text).map_err(|message| AppError::validation("proxy_login_permission", message))
        })
        .transpose()?;
    if proxies.as_ref().is_some_and(|p| p.contains(&id)) {
        return Err(AppError::validation(
            "proxy_login_permission",
            format!("ID {id} is this member: nobody needs permission to be themselves."),
        ));
    }
    Ok(CheckedChanges {
        display_name,
        email,
        role,
        admin_access: changes.admin_access,
        login_enabled: changes.login_enabled,
        groups: groups.map(|g| g.into_iter().collect()),
        proxies: proxies.map(|p| p.into_iter().collect()),
    })
}

/// Before/after of one changed field, for the audit record.
fn change(changes: &mut serde_json::Map<String, Value>, field: &str, before: Value, after: Value) {
    if before != after {
        changes.insert(field.to_string(), json!({ "before": before, "after": after }));
    }
}

/// Saves the member editor: every check, then the member, their groups and their
/// proxy login permission and one `member_updated` audit record, in one transaction.
/// A save that changes nothing writes nothing.
pub async fn update(
    state: &AppState,
    request: &RequestContext,
    id: i64,
    edit: MemberEdit,
) -> Result<MemberDetail, AppError> {
    change_member(state, request, id, MemberChanges::from(edit)).await
}

/// Applies `changes` to member `id` with every check of the editor; the fields left
/// out keep what the database holds inside the same transaction.
pub async fn change_member(
    state: &AppState,
    request: &RequestContext,
    id: i64,
    changes: MemberChanges,
) -> Result<MemberDetail, AppError> {
    const REFUSED: AuditAction = AuditAction::MemberUpdateRefused;
    let object = (ObjectKind::Member, id.to_string());
    let session = require_editor(state, request, REFUSED, object.clone()).await?;
    let editor = session.member.role;
    let changes = check_changes(id, changes)?;
    if changes.role.is_some_and(|role| role.rank() > editor.rank()) {
        return Err(refuse(
            state,
            request,
            session,
            REFUSED,
            object,
            Refusal::RoleAboveOwnRank,
        )
        .await);
    }
    // Nobody adds themselves to a peer's permission (as the member in effect, or as
    // the real person behind a session on behalf).
    let own_ids = [session.member.id, session.actor().id];
    let now = state.clock.now();
    let for_update = state.db.for_update();
    let one_at_a_time = state.db.serialize_member_edits();
    let outcome: Result<(), AppError> = with_db!(&state.db, pool => {
        async {
            let mut tx = pool.begin_write().await?;
            if let Some(lock) = one_at_a_time {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            // The row stays locked (PostgreSQL) until the change commits: a member renaming
            // themselves meanwhile waits, rather than being written over with what was read.
            let row: Option<DetailRow> = sqlx::query_as(&format!("{DETAIL}{for_update}"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let row = row.ok_or_else(|| no_such_member(id))?.member;
            let before_role = stored_role(id, &row.role)?;
            if !may_edit(editor, before_role) {
                return Err(AppError::Refused(Refusal::TargetOutranksEditor));
            }
            // Groups and permitted members must exist.
            let mut groups_before = BTreeSet::new();
            for (group,) in sqlx::query_as::<_, (i64,)>("SELECT group_id FROM group_members WHERE member_id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?
            {
                groups_before.insert(group);
            }
            let mut proxies_before = BTreeSet::new();
            // Deleted members are left out, as the blade shows the permission.
            for (actor,) in sqlx::query_as::<_, (i64,)>(
                "SELECT p.actor_id FROM proxy_permissions p JOIN members a ON a.id = p.actor_id \
                 WHERE p.member_id = $1 AND a.deleted_at IS NULL",
            )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?
            {
                proxies_before.insert(actor);
            }
            // What was not given stays as it is now, under this transaction's lock.
            let edit = CheckedEdit {
                display_name: changes.display_name.clone().unwrap_or_else(|| row.display_name.clone()),
                email: changes.email.clone().unwrap_or_else(|| row.email.clone()),
                role: changes.role.unwrap_or(before_role),
                admin_access: changes.admin_access.unwrap_or(row.admin_access),
                login_enabled: changes.login_enabled.unwrap_or(row.login_enabled),
                groups: changes.groups.clone().unwrap_or_else(|| groups_before.clone()),
                proxies: changes.proxies.clone().unwrap_or_else(|| proxies_before.clone()),
            };
            may_change_role(editor, before_role, edit.role).map_err(AppError::Refused)?;
            if !edit.groups.is_empty() {
                let found = found_ids!(tx, "SELECT id FROM groups WHERE id IN (", &edit.groups);
                if let Some(missing) = edit.groups.iter().find(|g| !found.contains(g)) {
                    return Err(AppError::validation("groups", format!("No group has the ID {missing}.")));
                }
            }
            if !edit.proxies.is_empty() {
                let found = found_ids!(
                    tx,
                    "SELECT id FROM members WHERE deleted_at IS NULL AND id IN (",
                    &edit.proxies
                );
                if let Some(missing) = edit.proxies.iter().find(|m| !found.contains(m)) {
                    return Err(AppError::validation(
                        "proxy_login_permission",
                        format!("No member has the ID {missing}."),
                    ));
                }
            }
            // The member's rank before or after the save, whichever is higher: a
            // peer demoted and granted in one save is still a peer.
            let grant_rank = before_role.max(edit.role);
            for added in edit.proxies.difference(&proxies_before) {
                for own in own_ids.into_iter().filter(|own| own == added) {
                    may_grant(own, editor, grant_rank, *added).map_err(AppError::Refused)?;
                }
            }
            // Somebody must stay able to administer: the last super user who can sign in
            // and use the management screens keeps all three.
            let stays_super = edit.role == Role::SuperUser && edit.admin_access && edit.login_enabled;
            if before_role == Role::SuperUser && row.admin_access && row.login_enabled && !stays_super {
                // Locks every such super user's row (PostgreSQL; SQLite's write lock
                // already serialises): two super users demoting each other at once
                // queue here, and the second sees the first one's change.
                let supers: Vec<(i64,)> = sqlx::query_as(&format!(
                    "SELECT id FROM members WHERE role = 'super_user' AND admin_access AND login_enabled \
                     AND deleted_at IS NULL ORDER BY id{for_update}"
                ))
                .fetch_all(&mut *tx)
                .await?;
                let others = supers.iter().filter(|(other,)| *other != id).count();
                if others == 0 {
                    return Err(AppError::Conflict(
                        "This is the last super user who can sign in and manage members: keep their role, \
                         admin access and authorization to log in, or make someone else a super user first."
                            .into(),
                    ));
                }
            }

            let mut changes = serde_json::Map::new();
            change(&mut changes, "display_name", json!(row.display_name), json!(edit.display_name));
            change(&mut changes, "email", json!(row.email), json!(edit.email));
            change(&mut changes, "role", json!(before_role.as_str()), json!(edit.role.as_str()));
            change(&mut changes, "admin_access", json!(row.admin_access), json!(edit.admin_access));
            change(&mut changes, "login_enabled", json!(row.login_enabled), json!(edit.login_enabled));
            change(&mut changes, "groups", json!(groups_before), json!(edit.groups));
            change(&mut changes, "proxy_login_permission", json!(proxies_before), json!(edit.proxies));
            if changes.is_empty() {
                return Ok(());
            }

            let updated = sqlx::query(
                "UPDATE members SET display_name = $1, name_key = $2, email = $3, email_key = $4, role = $5, \
                 role_rank = $10, admin_access = $6, login_enabled = $7, updated_at = $8 WHERE id = $9",
            )
            .bind(&edit.display_name)
            .bind(name_key(&edit.display_name))
            .bind(&edit.email)
            .bind(email_key(&edit.email))
            .bind(edit.role.as_str())
            .bind(edit.admin_access)
            .bind(edit.login_enabled)
            .bind(now)
            .bind(id)
            .bind(edit.role.rank() as i64)
            .execute(&mut *tx)
            .await;
            match updated {
                Err(error) if is_unique_violation(&error) => {
                    return Err(AppError::validation("email", "Another member already uses this email address."))
                }
                other => {
                    other?;
                }
            }
            write_terms(&mut tx, id).await?;
            for group in edit.groups.difference(&groups_before) {
                set_group_membership(&mut tx, *group, id, now, true).await?;
            }
            for group in groups_before.difference(&edit.groups) {
                set_group_membership(&mut tx, *group, id, now, false).await?;
            }
            for actor in edit.proxies.difference(&proxies_before) {
                sqlx::query(
                    "INSERT INTO proxy_permissions (member_id, actor_id, created_at, granted_by) VALUES ($1, $2, $3, $4)",
                )
                .bind(id)
                .bind(*actor)
                .bind(now)
                .bind(session.actor().id)
                .execute(&mut *tx)
                .await?;
            }
            for actor in proxies_before.difference(&edit.proxies) {
                sqlx::query("DELETE FROM proxy_permissions WHERE member_id = $1 AND actor_id = $2")
                    .bind(id)
                    .bind(*actor)
                    .execute(&mut *tx)
                    .await?;
            }
            // A change to what the member may do ends the one-click links for them and
            // those they created (they were allowed under what held before).
            let revoke_reason = if row.login_enabled && !edit.login_enabled {
                Some("login_disabled")
            } else if before_role != edit.role {
                Some("role_changed")
            } else if row.admin_access != edit.admin_access {
                Some("admin_access_changed")
            } else {
                None
            };
            if let Some(reason) = revoke_reason {
                revoke_member_links(&mut tx, now, id, reason, Some(session), request).await?;
                // What they may do changed: every session of theirs ends (but the one
                // this change comes from), and so does any session on their behalf.
                let keep = [session.id, session.on_behalf.as_ref().map_or(session.id, |o| o.parent_id)];
                end_member_sessions(&mut tx, now, id, keep, reason, request).await?;
            }
            let event = NewEvent::new(AuditAction::MemberUpdated, request)
                .by(session)
                .subject(id)
                .object(ObjectKind::Member, id)
                .details(json!({ "changes": changes }));
            tx.append_audit(now, event).await?;
            tx.commit().await?;
            Ok(())
        }
        .await
    });
    record_refusal(state, request, session, REFUSED, object, outcome).await?;
    detail_for(&state.db, session, id).await
}
