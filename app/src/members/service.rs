//! The User information blade and the member editor (ssr): what the blade shows, and
//! saving the editor with every check and one audit record.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use sqlx::QueryBuilder;

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{AuditTx, NewEvent},
    clock::{format_utc, Millis},
    context::{CurrentSession, RequestContext},
    db::with_db,
    db::{
        is_unique_violation, stored_role,
        tx::{with_tx, Tx},
        BeginWrite,
    },
    email::{email_key, Email},
    error::{AppError, Refusal},
    guard::{record_refusal, refuse, require_admin, require_editor},
    members::{
        directory::{groups_of, name_key, SummaryRow},
        store::{set_group_membership, write_terms},
        MemberDetail, MemberEdit, MemberRef,
    },
    names::DisplayName,
    one_click::store::revoke_member_links,
    policy::{assignable_roles, may_change_role, may_edit, may_grant},
    role::Role,
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
    detail_for(state, viewer, id).await
}

async fn detail_for(state: &AppState, viewer: &CurrentSession, id: i64) -> Result<MemberDetail, AppError> {
    let db = &state.db;
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
    let explicit = grant.map(|(_, _, by)| *by == Some(me.id));
    let (can_log_in_on_behalf, consent) =
        super::consent::blade_consent(state, viewer, &member, explicit).await?;
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
        consent,
    })
}

/// The first of `ids` that the query `select` (ending in `id IN (`) does not find,
/// inside `tx`.
async fn first_missing(tx: &mut Tx<'_>, select: &str, ids: &BTreeSet<i64>) -> Result<Option<i64>, AppError> {
    if ids.is_empty() {
        return Ok(None);
    }
    let found: Vec<(i64,)> = with_tx!(&mut *tx, t => {
        let mut query = QueryBuilder::new(select);
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        query.push(")");
        query.build_query_as().fetch_all(&mut ***t).await?
    });
    let found: BTreeSet<i64> = found.into_iter().map(|(id,)| id).collect();
    Ok(ids.iter().find(|id| !found.contains(id)).copied())
}

/// What to change about a member: each field given is set, each one left out keeps
/// what the database holds when the change is applied (read inside its transaction,
/// so two partial changes at once never undo each other). The editor's form gives
/// every field; the JSON API's PATCH only some. Every field is parsed at the edge.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemberChanges {
    pub display_name: Option<DisplayName>,
    pub email: Option<Email>,
    pub role: Option<Role>,
    pub admin_access: Option<bool>,
    pub login_enabled: Option<bool>,
    /// Group IDs.
    pub groups: Option<BTreeSet<i64>>,
    /// IDs of the members allowed to log in on this member's behalf.
    pub proxy_login_permission: Option<BTreeSet<i64>>,
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

/// What member `id` is now, read under the change's locks.
struct Current {
    row: SummaryRow,
    role: Role,
    groups: BTreeSet<i64>,
    proxies: BTreeSet<i64>,
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

impl CheckedEdit {
    /// What was not given stays as it is now, under this transaction's lock.
    fn decide(changes: MemberChanges, current: &Current) -> CheckedEdit {
        let row = &current.row;
        CheckedEdit {
            display_name: changes
                .display_name
                .map_or_else(|| row.display_name.clone(), String::from),
            email: changes.email.map_or_else(|| row.email.clone(), String::from),
            role: changes.role.unwrap_or(current.role),
            admin_access: changes.admin_access.unwrap_or(row.admin_access),
            login_enabled: changes.login_enabled.unwrap_or(row.login_enabled),
            groups: changes.groups.unwrap_or_else(|| current.groups.clone()),
            proxies: changes
                .proxy_login_permission
                .unwrap_or_else(|| current.proxies.clone()),
        }
    }
}

/// An editor's leave to change one member: `permit_edit` makes it once the caller is
/// known to be an editor or super user with admin access (a refusal is recorded), and
/// `update` and `change_member` take it. The edge parses its input in between, so a
/// caller who may not edit is refused before being told what is wrong with the input.
pub struct EditPermit<'a> {
    request: &'a RequestContext,
    session: &'a CurrentSession,
    id: i64,
}

const REFUSED: AuditAction = AuditAction::MemberUpdateRefused;

/// Lets an editor or super user with admin access go on to change member `id`;
/// refuses (and records the refusal of) anyone else signed in.
pub async fn permit_edit<'a>(
    state: &AppState,
    request: &'a RequestContext,
    id: i64,
) -> Result<EditPermit<'a>, AppError> {
    let session = require_editor(state, request, REFUSED, (ObjectKind::Member, id.to_string())).await?;
    Ok(EditPermit { request, session, id })
}

/// One change in the making: whose, by whom, when.
struct Change<'a> {
    id: i64,
    session: &'a CurrentSession,
    request: &'a RequestContext,
    now: Millis,
    /// The database's row-locking clause (PostgreSQL's `FOR UPDATE`).
    for_update: &'static str,
}

/// Saves the member editor: every check, then the member, their groups and their
/// proxy login permission and one `member_updated` audit record, in one transaction.
/// A save that changes nothing writes nothing.
pub async fn update(
    state: &AppState,
    permit: EditPermit<'_>,
    edit: MemberEdit,
) -> Result<MemberDetail, AppError> {
    change_member(state, permit, MemberChanges::from(edit)).await
}

/// Applies `changes` to the permit's member with every check of the editor; the
/// fields left out keep what the database holds inside the same transaction.
pub async fn change_member(
    state: &AppState,
    permit: EditPermit<'_>,
    changes: MemberChanges,
) -> Result<MemberDetail, AppError> {
    let EditPermit { request, session, id } = permit;
    let object = (ObjectKind::Member, id.to_string());
    let proxies = changes.proxy_login_permission.as_ref();
    if proxies.is_some_and(|p| p.contains(&id)) {
        return Err(AppError::validation(
            "proxy_login_permission",
            format!("ID {id} is this member: nobody needs permission to be themselves."),
        ));
    }
    // The role's rank against the editor's is a refusal, not a typo.
    if changes
        .role
        .is_some_and(|role| role.rank() > session.member.role.rank())
    {
        let refusal = Refusal::RoleAboveOwnRank;
        return Err(refuse(state, request, session, REFUSED, object, refusal).await);
    }
    let change = Change {
        id,
        session,
        request,
        now: state.clock.now(),
        for_update: state.db.for_update(),
    };
    let one_at_a_time = state.db.serialize_member_edits();
    let outcome: Result<(), AppError> = with_db!(&state.db, pool => {
        async {
            let mut tx = pool.begin_write().await?;
            if let Some(lock) = one_at_a_time {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            // A save that changes nothing is rolled back.
            if apply(Tx::from(&mut tx), &change, changes).await? {
                tx.commit().await?;
            }
            Ok(())
        }
        .await
    });
    record_refusal(state, request, session, REFUSED, object, outcome).await?;
    detail_for(state, session, id).await
}

/// The change inside `tx`: read and lock what is, check, write, end what the member
/// was allowed under what held before, record. False when nothing changes (and
/// nothing is written).
async fn apply(mut tx: Tx<'_>, change: &Change<'_>, changes: MemberChanges) -> Result<bool, AppError> {
    let current = read_current(&mut tx, change).await?;
    let edit = CheckedEdit::decide(changes, &current);
    // The editor edits members up to their own rank, and gives no role above it.
    let editor = change.session.member.role;
    if !may_edit(editor, current.role) {
        return Err(AppError::Refused(Refusal::TargetOutranksEditor));
    }
    may_change_role(editor, current.role, edit.role).map_err(AppError::Refused)?;
    check_exist(&mut tx, &edit).await?;
    check_grants(change, &current, &edit)?;
    keep_a_super_user(&mut tx, change, &current, &edit).await?;
    let changes = audit_changes(&current, &edit);
    if changes.is_empty() {
        return Ok(false);
    }
    write_member(&mut tx, change, &edit).await?;
    write_memberships(&mut tx, change, &current, &edit).await?;
    end_what_was_allowed(&mut tx, change, &current, &edit).await?;
    let event = NewEvent::new(AuditAction::MemberUpdated, change.request)
        .by(change.session)
        .subject(change.id)
        .object(ObjectKind::Member, change.id)
        .details(json!({ "changes": changes }));
    tx.append_audit(change.now, event).await?;
    Ok(true)
}

/// The member's row, groups and proxy login permission as they are. The row stays
/// locked (PostgreSQL) until the change commits: a member renaming themselves
/// meanwhile waits, rather than being written over with what was read.
async fn read_current(tx: &mut Tx<'_>, change: &Change<'_>) -> Result<Current, AppError> {
    let id = change.id;
    let row: Option<DetailRow> = with_tx!(&mut *tx, t => {
        sqlx::query_as(&format!("{DETAIL}{}", change.for_update))
            .bind(id)
            .fetch_optional(&mut ***t)
            .await?
    });
    let row = row.ok_or_else(|| no_such_member(id))?.member;
    let role = stored_role(id, &row.role)?;
    let (groups, proxies): (Vec<(i64,)>, Vec<(i64,)>) = with_tx!(&mut *tx, t => {
        let groups = sqlx::query_as("SELECT group_id FROM group_members WHERE member_id = $1")
            .bind(id)
            .fetch_all(&mut ***t)
            .await?;
        // Deleted members are left out, as the blade shows the permission.
        let proxies = sqlx::query_as(
            "SELECT p.actor_id FROM proxy_permissions p JOIN members a ON a.id = p.actor_id \
             WHERE p.member_id = $1 AND a.deleted_at IS NULL",
        )
        .bind(id)
        .fetch_all(&mut ***t)
        .await?;
        (groups, proxies)
    });
    Ok(Current {
        row,
        role,
        groups: groups.into_iter().map(|(group,)| group).collect(),
        proxies: proxies.into_iter().map(|(actor,)| actor).collect(),
    })
}

/// Groups and permitted members must exist (deleted members do not).
async fn check_exist(tx: &mut Tx<'_>, edit: &CheckedEdit) -> Result<(), AppError> {
    if let Some(missing) = first_missing(tx, "SELECT id FROM groups WHERE id IN (", &edit.groups).await? {
        return Err(AppError::validation(
            "groups",
            format!("No group has the ID {missing}."),
        ));
    }
    let members = "SELECT id FROM members WHERE deleted_at IS NULL AND id IN (";
    if let Some(missing) = first_missing(tx, members, &edit.proxies).await? {
        return Err(AppError::validation(
            "proxy_login_permission",
            format!("No member has the ID {missing}."),
        ));
    }
    Ok(())
}

/// Nobody adds themselves to a peer's permission (as the member in effect, or as the
/// real person behind a session on behalf).
fn check_grants(change: &Change<'_>, current: &Current, edit: &CheckedEdit) -> Result<(), AppError> {
    let session = change.session;
    let own_ids = [session.member.id, session.actor().id];
    // The member's rank before or after the save, whichever is higher: a peer demoted
    // and granted in one save is still a peer.
    let grant_rank = current.role.max(edit.role);
    for added in edit.proxies.difference(&current.proxies) {
        for own in own_ids.into_iter().filter(|own| own == added) {
            may_grant(own, session.member.role, grant_rank, *added).map_err(AppError::Refused)?;
        }
    }
    Ok(())
}

/// Somebody must stay able to administer: the last super user who can sign in and
/// use the management screens keeps all three.
async fn keep_a_super_user(
    tx: &mut Tx<'_>,
    change: &Change<'_>,
    current: &Current,
    edit: &CheckedEdit,
) -> Result<(), AppError> {
    let row = &current.row;
    let stays_super = edit.role == Role::SuperUser && edit.admin_access && edit.login_enabled;
    if current.role != Role::SuperUser || !row.admin_access || !row.login_enabled || stays_super {
        return Ok(());
    }
    // Locks every such super user's row (PostgreSQL; SQLite's write lock already
    // serialises): two super users demoting each other at once queue here, and the
    // second sees the first one's change.
    let supers: Vec<(i64,)> = with_tx!(&mut *tx, t => {
        sqlx::query_as(&format!(
            "SELECT id FROM members WHERE role = 'super_user' AND admin_access AND login_enabled \
             AND deleted_at IS NULL ORDER BY id{}",
            change.for_update
        ))
        .fetch_all(&mut ***t)
        .await?
    });
    let others = supers.iter().filter(|(other,)| *other != change.id).count();
    if others == 0 {
        return Err(AppError::Conflict(
            "This is the last super user who can sign in and manage members: keep their role, \
             admin access and authorization to log in, or make someone else a super user first."
                .into(),
        ));
    }
    Ok(())
}

/// Before and after of every field the edit changes (none: nothing to write), for
/// the audit record.
fn audit_changes(current: &Current, edit: &CheckedEdit) -> serde_json::Map<String, Value> {
    let (row, mut changes) = (&current.row, serde_json::Map::new());
    let mut change = |field: &str, before: Value, after: Value| {
        if before != after {
            changes.insert(field.to_string(), json!({ "before": before, "after": after }));
        }
    };
    change("display_name", json!(row.display_name), json!(edit.display_name));
    change("email", json!(row.email), json!(edit.email));
    change("role", json!(current.role.as_str()), json!(edit.role.as_str()));
    change("admin_access", json!(row.admin_access), json!(edit.admin_access));
    change(
        "login_enabled",
        json!(row.login_enabled),
        json!(edit.login_enabled),
    );
    change("groups", json!(current.groups), json!(edit.groups));
    change(
        "proxy_login_permission",
        json!(current.proxies),
        json!(edit.proxies),
    );
    changes
}

/// Writes the member's row and search terms; an email another member uses is the
/// editor's to fix.
async fn write_member(tx: &mut Tx<'_>, change: &Change<'_>, edit: &CheckedEdit) -> Result<(), AppError> {
    let updated = with_tx!(&mut *tx, t => {
        sqlx::query(
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
        .bind(change.now)
        .bind(change.id)
        .bind(edit.role.rank() as i64)
        .execute(&mut ***t)
        .await
        .map(|_| ())
    });
    match updated {
        Err(error) if is_unique_violation(&error) => {
            return Err(AppError::validation(
                "email",
                "Another member already uses this email address.",
            ))
        }
        other => other?,
    }
    write_terms(&mut *tx, change.id).await?;
    Ok(())
}

/// Puts the member in the groups added and out of those removed; adds (granted by
/// the real person) and removes entries of the proxy login permission.
async fn write_memberships(
    tx: &mut Tx<'_>,
    change: &Change<'_>,
    current: &Current,
    edit: &CheckedEdit,
) -> Result<(), AppError> {
    let (id, now) = (change.id, change.now);
    for group in edit.groups.difference(&current.groups) {
        set_group_membership(&mut *tx, *group, id, now, true).await?;
    }
    for group in current.groups.difference(&edit.groups) {
        set_group_membership(&mut *tx, *group, id, now, false).await?;
    }
    for actor in edit.proxies.difference(&current.proxies) {
        with_tx!(&mut *tx, t => {
            sqlx::query(
                "INSERT INTO proxy_permissions (member_id, actor_id, created_at, granted_by) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(*actor)
            .bind(now)
            .bind(change.session.actor().id)
            .execute(&mut ***t)
            .await?;
        });
    }
    for actor in current.proxies.difference(&edit.proxies) {
        with_tx!(&mut *tx, t => {
            sqlx::query("DELETE FROM proxy_permissions WHERE member_id = $1 AND actor_id = $2")
                .bind(id)
                .bind(*actor)
                .execute(&mut ***t)
                .await?;
        });
    }
    Ok(())
}

/// A change to what the member may do ends the one-click links for them and those
/// they created (they were allowed under what held before), every session of theirs
/// (but the one this change comes from), and any session on their behalf.
async fn end_what_was_allowed(
    tx: &mut Tx<'_>,
    change: &Change<'_>,
    current: &Current,
    edit: &CheckedEdit,
) -> Result<(), AppError> {
    let reason = if current.row.login_enabled && !edit.login_enabled {
        "login_disabled"
    } else if current.role != edit.role {
        "role_changed"
    } else if current.row.admin_access != edit.admin_access {
        "admin_access_changed"
    } else {
        return Ok(());
    };
    let (session, request) = (change.session, change.request);
    revoke_member_links(&mut *tx, change.now, change.id, reason, Some(session), request).await?;
    let keep = [
        session.id,
        session.on_behalf.as_ref().map_or(session.id, |o| o.parent_id),
    ];
    end_member_sessions(&mut *tx, change.now, change.id, keep, reason, request).await?;
    Ok(())
}
