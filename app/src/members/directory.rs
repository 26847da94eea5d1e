//! Members on the server (ssr): creating them, their names and search terms, their
//! groups, and the one summary row every list shows. What other areas may use of
//! members lives here; the list engine is `search`, the blade and editor `service`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use sqlx::QueryBuilder;

use crate::{
    audit_action::{AuditAction, ObjectKind},
    audit_writer::{AuditTx, NewEvent},
    clock::{format_utc, Millis},
    context::RequestContext,
    db::with_db,
    db::{is_unique_violation, stored_role, BeginWrite, Db},
    email::{email_key, validate_email},
    error::AppError,
    members::{parse_id_list, store::write_terms, GroupRef, IdLookup, MemberSummary},
    names::DisplayName,
    password::{hasher::PasswordHasher, validate_new_password, Password},
    role::Role,
    state::AppState,
};

/// The search and sort key for a display name.
pub fn name_key(display_name: &str) -> String {
    display_name.trim().to_lowercase()
}

/// The later words of a name key, each with the rest of the name ("maria de la cruz"
/// -> "de la cruz", "la cruz", "cruz").
pub fn name_terms(name_key: &str) -> Vec<String> {
    let mut terms: Vec<String> = name_key
        .char_indices()
        .filter(|(_, c)| *c == ' ')
        .map(|(at, _)| name_key[at + 1..].to_string())
        .filter(|rest| !rest.is_empty())
        .collect();
    terms.dedup();
    terms
}

/// Every term a member is found by, each once: the name, each later part of it
/// (`name_terms`), and the email. A search matches a member when one of these starts
/// with it.
pub fn search_terms(name_key: &str, email_key: &str) -> BTreeSet<String> {
    std::iter::once(name_key.to_string())
        .chain(name_terms(name_key))
        .chain(std::iter::once(email_key.to_string()))
        .filter(|term| !term.is_empty())
        .collect()
}

/// `DisplayName::parse`, for callers that keep the name as text.
pub fn validate_display_name(name: &str) -> Result<String, AppError> {
    DisplayName::parse(name).map(String::from)
}

/// What is needed to create a member.
#[derive(Debug)]
pub struct NewMember {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub admin_access: bool,
    pub login_enabled: bool,
}

/// Validates and creates a member, hashing the password. `Conflict` when the
/// email is taken (case-insensitively). `record`, when given, is appended (with the
/// new member as its subject and object) in the same transaction: the CLI's
/// `create-member` and `init-admin` are recorded like any other change.
pub async fn create_member(
    db: &Db,
    hasher: &PasswordHasher,
    now: Millis,
    new: NewMember,
    password: Password,
    record: Option<NewEvent>,
) -> Result<i64, AppError> {
    let email = validate_email(&new.email)?;
    let display_name = validate_display_name(&new.display_name)?;
    validate_new_password(&password)?;
    let hash = hasher.hash(password).await?;
    let key = email_key(&email);
    let id = with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let inserted: Result<(i64,), sqlx::Error> = sqlx::query_as(
            "INSERT INTO members (email, email_key, display_name, name_key, password_hash, role, role_rank, \
             admin_access, login_enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
        )
        .bind(&email)
        .bind(&key)
        .bind(&display_name)
        .bind(name_key(&display_name))
        .bind(&hash)
        .bind(new.role.as_str())
        .bind(new.role.rank() as i64)
        .bind(new.admin_access)
        .bind(new.login_enabled)
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let id = match inserted {
            Ok((id,)) => id,
            Err(error) if is_unique_violation(&error) => {
                return Err(AppError::Conflict(format!("A member with the email {email} already exists.")))
            }
            Err(error) => return Err(error.into()),
        };
        write_terms(&mut tx, id).await?;
        if let Some(event) = record {
            let mut event = event.subject(id).object(ObjectKind::Member, id);
            if let Some(details) = event.details.as_object_mut() {
                details.insert("email".into(), json!(email));
                details.insert("role".into(), json!(new.role.as_str()));
                details.insert("admin_access".into(), json!(new.admin_access));
            }
            tx.append_audit(now, event).await?;
        }
        tx.commit().await?;
        id
    });
    Ok(id)
}

/// How many members have the super user role (for first-run set-up).
pub async fn count_with_role(db: &Db, role: Role) -> Result<i64, AppError> {
    let (count,): (i64,) = with_db!(db, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM members WHERE role = $1 AND deleted_at IS NULL")
            .bind(role.as_str())
            .fetch_one(pool)
            .await?
    });
    Ok(count)
}

/// The columns of a member that every list shows.
pub const SUMMARY_COLUMNS: &str =
    "id, email, display_name, role, admin_access, login_enabled, last_sign_in_at";

/// A member as every list reads them (`SUMMARY_COLUMNS`).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SummaryRow {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub admin_access: bool,
    pub login_enabled: bool,
    pub last_sign_in_at: Option<i64>,
}

impl SummaryRow {
    /// The row as the lists show it, with its groups.
    pub fn summary(self, groups: Vec<GroupRef>) -> Result<MemberSummary, AppError> {
        Ok(MemberSummary {
            role: stored_role(self.id, &self.role)?,
            id: self.id,
            display_name: self.display_name,
            email: self.email,
            admin_access: self.admin_access,
            login_enabled: self.login_enabled,
            last_sign_in: self.last_sign_in_at.map(format_utc),
            groups,
        })
    }
}

/// Summaries of `rows` with the groups of each.
pub async fn summaries(db: &Db, rows: Vec<SummaryRow>) -> Result<Vec<MemberSummary>, AppError> {
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let mut groups = groups_of(db, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let member_groups = groups.remove(&row.id).unwrap_or_default();
            row.summary(member_groups)
        })
        .collect()
}

/// The groups of each of `ids`, by group name.
pub async fn groups_of(db: &Db, ids: &[i64]) -> Result<BTreeMap<i64, Vec<GroupRef>>, AppError> {
    let mut out: BTreeMap<i64, Vec<GroupRef>> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(i64, i64, String)> = with_db!(db, pool => {
        let mut query = QueryBuilder::new(
            "SELECT gm.member_id, g.id, g.name FROM group_members gm JOIN groups g ON g.id = gm.group_id \
             WHERE gm.member_id IN (",
        );
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        query.push(") ORDER BY g.name_key, g.id");
        query.build_query_as().fetch_all(pool).await?
    });
    for (member, id, name) in rows {
        out.entry(member).or_default().push(GroupRef { id, name });
    }
    Ok(out)
}

/// The proxy login permission of each of `ids`: the members allowed to log in on
/// their behalf, by ID (deleted members left out, as the blade shows them).
pub async fn proxies_of(db: &Db, ids: &[i64]) -> Result<BTreeMap<i64, Vec<i64>>, AppError> {
    let mut out: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(i64, i64)> = with_db!(db, pool => {
        let mut query = QueryBuilder::new(
            "SELECT p.member_id, p.actor_id FROM proxy_permissions p JOIN members a ON a.id = p.actor_id \
             WHERE a.deleted_at IS NULL AND p.member_id IN (",
        );
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        query.push(") ORDER BY p.member_id, p.actor_id");
        query.build_query_as().fetch_all(pool).await?
    });
    for (member, actor) in rows {
        out.entry(member).or_default().push(actor);
    }
    Ok(out)
}

/// The groups one can choose in the members list's filter and the editor: ID and
/// name, by name (at most 1,000). Admin access.
pub async fn group_choices(state: &AppState, request: &RequestContext) -> Result<Vec<GroupRef>, AppError> {
    crate::guard::require_admin(request)?;
    let rows: Vec<(i64, String)> = with_db!(&state.db, pool => {
        sqlx::query_as("SELECT id, name FROM groups ORDER BY name_key, id LIMIT 1000")
            .fetch_all(pool)
            .await?
    });
    Ok(rows.into_iter().map(|(id, name)| GroupRef { id, name }).collect())
}

/// Names the members behind typed `ids` (deleted members count as unknown). Admin
/// access.
pub async fn lookup(
    state: &AppState,
    request: &RequestContext,
    ids: &str,
) -> Result<Vec<IdLookup>, AppError> {
    crate::guard::require_admin(request)?;
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

/// A member changes their own display name (in My account; on behalf, the actor does
/// it for the member). One record with before and after; no change, no record.
pub async fn update_own_name(
    state: &AppState,
    request: &RequestContext,
    display_name: &str,
) -> Result<String, AppError> {
    let session = request.require_session()?;
    let name = validate_display_name(display_name)?;
    let id = session.member.id;
    let now = state.clock.now();
    with_db!(&state.db, pool => {
        let mut tx = pool.begin_write().await?;
        let (before,): (String,) = sqlx::query_as("SELECT display_name FROM members WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if before == name {
            return Ok(name);
        }
        sqlx::query("UPDATE members SET display_name = $1, name_key = $2, updated_at = $3 WHERE id = $4")
            .bind(&name)
            .bind(name_key(&name))
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        write_terms(&mut tx, id).await?;
        let event = NewEvent::new(AuditAction::ProfileUpdated, request)
            .by(session)
            .subject(id)
            .object(ObjectKind::Member, id)
            .details(json!({ "changes": { "display_name": { "before": before, "after": name } } }));
        tx.append_audit(now, event).await?;
        tx.commit().await?;
    });
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_words_of_a_name_are_search_terms() {
        assert_eq!(name_terms("ann lee"), vec!["lee"]);
        assert_eq!(
            name_terms("maria de la cruz"),
            vec!["de la cruz", "la cruz", "cruz"]
        );
        assert!(name_terms("cher").is_empty());
        let terms: Vec<String> = search_terms("ann lee", "ann.lee@example.com")
            .into_iter()
            .collect();
        assert_eq!(terms, vec!["ann lee", "ann.lee@example.com", "lee"]);
        assert_eq!(search_terms("cher", "cher@example.com").len(), 2);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_display_name("  Ann   Lee ").unwrap(), "Ann Lee");
        assert!(validate_display_name("").is_err());
        assert!(validate_display_name(&"é".repeat(100)).is_ok());
        assert!(validate_display_name(&"é".repeat(101)).is_err());
        assert!(validate_display_name("Ann\u{0}Lee").is_err());
    }
}
