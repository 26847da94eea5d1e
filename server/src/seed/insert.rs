//! Inserting the generated members, their group memberships, search terms and proxy
//! login permissions, in batches.

use app::db::{BeginWrite, Db};
use rand::{rngs::StdRng, SeedableRng};
use sqlx::QueryBuilder;

use super::{
    indexes::{defer_indexes, fill_terms, restore},
    population::{groups_of, member, proxy_grants, SeedMember, EPOCH_2024, GROUPS},
};
use crate::startup::CliResult;

/// Rows per INSERT statement (13 values each, well under both databases' limits).
const BATCH: usize = 1_000;

/// Inserts `count` generated members in batches; members whose email exists are
/// skipped. Returns how many were inserted.
pub async fn insert_members(
    db: &Db,
    seed: u64,
    count: u64,
    password_hash: &str,
    on_batch: impl FnMut(u64),
) -> CliResult<u64> {
    // Into an empty members table, many rows load faster with the secondary indexes
    // built once at the end (one sort each) than updated row by row.
    let (existing,): (i64,) = with_db!(db, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM (SELECT 1 FROM members LIMIT 1) AS any_member")
            .fetch_one(pool)
            .await?
    });
    let deferred = if existing == 0 && count >= BULK_AT_LEAST {
        defer_indexes(db).await?
    } else {
        Vec::new()
    };
    let bulk = !deferred.is_empty();
    let mut result = insert_all(db, seed, count, password_hash, !bulk, on_batch).await;
    if bulk && result.is_ok() {
        // One statement writes every member's search terms: far faster than the
        // batches' bound rows.
        if let Err(error) = fill_terms(db).await {
            result = Err(error);
        }
    }
    // Rebuilt whatever happened, so a failed seed leaves every index in place.
    restore(db, &deferred).await?;
    if !deferred.is_empty() {
        // Fresh statistics for the planner; on PostgreSQL also the visibility map, so
        // the list's walks read their indexes alone.
        match db {
            Db::Sqlite(pool) => {
                sqlx::query("ANALYZE").execute(pool).await?;
            }
            Db::Postgres(pool) => {
                sqlx::query("VACUUM (ANALYZE) members, member_terms, group_members")
                    .execute(pool)
                    .await?;
            }
        }
    }
    result
}

/// Seeds at least this large into an empty table build their indexes afterwards.
const BULK_AT_LEAST: u64 = 20_000;

async fn insert_all(
    db: &Db,
    seed: u64,
    count: u64,
    password_hash: &str,
    write_terms: bool,
    mut on_batch: impl FnMut(u64),
) -> CliResult<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let group_ids = ensure_groups(db, EPOCH_2024).await?;
    let mut inserted = 0;
    let mut index = 0;
    while index < count {
        let size = (count - index).min(BATCH as u64);
        let first_index = index;
        let batch: Vec<SeedMember> = (index..index + size).map(|i| member(&mut rng, seed, i)).collect();
        inserted += with_db!(db, pool => {
            let mut tx = pool.begin_write().await?;
            let mut query = QueryBuilder::new(
                "INSERT INTO members (email, email_key, display_name, name_key, password_hash, role, role_rank, \
                 admin_access, login_enabled, created_at, updated_at, last_sign_in_at, sign_in_key) ",
            );
            query.push_values(&batch, |mut row, m| {
                row.push_bind(&m.email)
                    .push_bind(m.email.to_lowercase())
                    .push_bind(&m.display_name)
                    .push_bind(m.display_name.to_lowercase())
                    .push_bind(password_hash)
                    .push_bind(m.role.as_str())
                    .push_bind(m.role.rank() as i64)
                    .push_bind(m.admin_access)
                    .push_bind(m.login_enabled)
                    .push_bind(m.created_at)
                    .push_bind(m.created_at)
                    .push_bind(m.last_sign_in_at)
                    .push_bind(m.last_sign_in_at.unwrap_or(0));
            });
            query.push(" ON CONFLICT (email_key) DO NOTHING RETURNING id, email_key");
            let new_rows: Vec<(i64, String)> = query.build_query_as().fetch_all(&mut *tx).await?;
            // Group memberships of the members just inserted (a re-run adds none twice).
            let index_of: std::collections::HashMap<String, u64> = batch
                .iter()
                .enumerate()
                .map(|(i, m)| (m.email.to_lowercase(), first_index + i as u64))
                .collect();
            let mut memberships = Vec::new();
            let mut terms = Vec::new();
            for (id, key) in &new_rows {
                if let Some(i) = index_of.get(key) {
                    let m = &batch[(*i - first_index) as usize];
                    let name = m.display_name.to_lowercase();
                    for term in app::members::directory::search_terms(&name, key).into_iter().filter(|_| write_terms) {
                        terms.push((*id, term, name.clone(), key.clone(), m.role.rank() as i64, m.last_sign_in_at.unwrap_or(0)));
                    }
                    for g in groups_of(seed, *i) {
                        memberships.push((group_ids[g], *id, batch[(*i - first_index) as usize].created_at));
                    }
                }
            }
            if !terms.is_empty() {
                let mut query = QueryBuilder::new(
                    "INSERT INTO member_terms (member_id, term, name_key, email_key, role_rank, sign_in_key) ",
                );
                query.push_values(&terms, |mut row, (member, term, name_key, email_key, rank, sign_in)| {
                    row.push_bind(*member)
                        .push_bind(term)
                        .push_bind(name_key)
                        .push_bind(email_key)
                        .push_bind(*rank)
                        .push_bind(*sign_in);
                });
                query.push(" ON CONFLICT DO NOTHING");
                query.build().execute(&mut *tx).await?;
            }
            if !memberships.is_empty() {
                let mut query = QueryBuilder::new("INSERT INTO group_members (group_id, member_id, added_at) ");
                query.push_values(&memberships, |mut row, (group, member, at)| {
                    row.push_bind(*group).push_bind(*member).push_bind(*at);
                });
                query.push(" ON CONFLICT DO NOTHING");
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            new_rows.len() as u64
        });
        on_batch(size);
        index += size;
    }
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query(
            "UPDATE groups SET member_count = (SELECT COUNT(*) FROM group_members gm WHERE gm.group_id = groups.id)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    });
    grant_proxy_permissions(db, seed, count).await?;
    Ok(inserted)
}

/// Creates the seeded groups (those missing) and returns their IDs in `GROUPS` order.
async fn ensure_groups(db: &Db, now: i64) -> CliResult<Vec<i64>> {
    let mut ids = Vec::new();
    for name in GROUPS {
        let key = name.to_lowercase();
        let id: i64 = with_db!(db, pool => {
            sqlx::query(
                "INSERT INTO groups (name, name_key, member_count, created_at, updated_at) \
                 VALUES ($1, $2, 0, $3, $3) ON CONFLICT (name_key) DO NOTHING",
            )
            .bind(*name)
            .bind(&key)
            .bind(now)
            .execute(pool)
            .await?;
            let (id,): (i64,) = sqlx::query_as("SELECT id FROM groups WHERE name_key = $1")
                .bind(&key)
                .fetch_one(pool)
                .await?;
            id
        });
        ids.push(id);
    }
    Ok(ids)
}

async fn grant_proxy_permissions(db: &Db, seed: u64, count: u64) -> CliResult<()> {
    if count < 25 {
        return Ok(());
    }
    let pairs = proxy_grants(seed, count);
    let mut rng = StdRng::seed_from_u64(seed);
    let wanted = pairs.iter().map(|(t, a)| (*t).max(*a)).max().unwrap_or(0) + 1;
    let keys: Vec<String> = (0..wanted as u64)
        .map(|i| member(&mut rng, seed, i).email.to_lowercase())
        .collect();
    let mut ids = Vec::new();
    for key in &keys {
        let found: Option<(i64,)> = with_db!(db, pool => {
            sqlx::query_as("SELECT id FROM members WHERE email_key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await?
        });
        ids.push(found.map(|(id,)| id));
    }
    let granted_by = ids[0];
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        for (target, actor) in pairs {
            if let (Some(target), Some(actor)) = (ids[target], ids[actor]) {
                sqlx::query(
                    "INSERT INTO proxy_permissions (member_id, actor_id, created_at, granted_by) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(target)
                .bind(actor)
                .bind(EPOCH_2024)
                .bind(granted_by)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
    });
    Ok(())
}
