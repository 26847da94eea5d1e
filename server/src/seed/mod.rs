//! `behalf seed`: realistic demo members, the same ones for the same seed, inserted
//! in batches. Every seeded member shares one hash of the given password (hashing
//! each would take hours at argon2id's cost).

use std::fmt;

use app::{
    audit_action::AuditAction,
    audit_writer::record,
    db::{BeginWrite, Db},
    password::{hasher::hash_password_blocking, validate_new_password, Password},
    role::Role,
};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{rngs::StdRng, Rng, SeedableRng};
use sqlx::QueryBuilder;

use crate::{
    cli::command_record,
    config::SeedArgs,
    startup::{describe, open_database, CliResult},
};

mod names;

use names::{FIRST_NAMES, LAST_NAMES};

/// Runs `$body` with `$pool` bound to the concrete pool (the seed's bulk statements
/// are its own, not the app's write steps); the body is compiled once per database.
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

/// The seeded groups (companies and teams a member can belong to).
pub const GROUPS: &[&str] = &[
    "Acme Retail",
    "Northwind Traders",
    "Contoso Pharmacy",
    "Globex Logistics",
    "Initech Software",
    "Umbrella Garden Centres",
    "Wayne Hardware",
    "Stark Electronics",
    "Tyrell Books",
    "Hooli Cloud",
    "Pied Piper Studio",
    "Wonka Confectionery",
];

/// Which seeded groups member `index` belongs to: none, one or two of them.
pub fn groups_of(seed: u64, index: u64) -> Vec<usize> {
    // splitmix64: a cheap, well-mixed hash, so memberships need no RNG state.
    let mut z = (index ^ seed.rotate_left(32)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let n = GROUPS.len() as u64;
    let first = ((z >> 8) % n) as usize;
    let second = ((z >> 24) % n) as usize;
    match z % 4 {
        0 => vec![],
        3 if second != first => vec![first, second],
        _ => vec![first],
    }
}

/// 2024-01-01T00:00:00Z: seeded times are spread over the years after it, so they
/// do not depend on when the seed ran.
const EPOCH_2024: i64 = 1_704_067_200_000;
const YEAR: i64 = 365 * 24 * 3_600_000;

/// Rows per INSERT statement (13 values each, well under both databases' limits).
const BATCH: usize = 1_000;

#[derive(Debug, Clone, PartialEq)]
pub struct SeedMember {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub admin_access: bool,
    pub login_enabled: bool,
    pub created_at: i64,
    pub last_sign_in_at: Option<i64>,
}

/// The `index`-th member of the seed `seed`'s population (0-based). The first few
/// members cover every role, so a new user sees each.
pub fn member(rng: &mut StdRng, seed: u64, index: u64) -> SeedMember {
    let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
    let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
    let role = match index {
        0 => Role::SuperUser,
        1 | 2 => Role::Editor,
        3..=6 => Role::Support,
        _ => match rng.random_range(0..1000) {
            0 => Role::SuperUser,
            1..=4 => Role::Editor,
            5..=24 => Role::Support,
            _ => Role::Member,
        },
    };
    let login_enabled = index < 10 || rng.random_range(0..100) >= 3;
    let created_at = EPOCH_2024 + rng.random_range(0..2 * YEAR);
    let last_sign_in_at = rng
        .random_bool(0.8)
        .then(|| created_at + rng.random_range(0..YEAR / 2));
    let local = format!("{}.{}", ascii_lower(first), ascii_lower(last));
    let email = if seed == 1 {
        format!("{local}{}@example.com", index + 1)
    } else {
        format!("{local}{}.s{seed}@example.com", index + 1)
    };
    SeedMember {
        email,
        display_name: format!("{first} {last}"),
        role,
        admin_access: role.default_admin_access(),
        login_enabled,
        created_at,
        last_sign_in_at,
    }
}

/// "Ramírez" → "ramirez", "O'Brien" → "obrien".
fn ascii_lower(name: &str) -> String {
    name.chars()
        .filter_map(|c| match c {
            'á' | 'à' | 'â' | 'ä' => Some('a'),
            'é' | 'è' | 'ê' | 'ë' | 'É' => Some('e'),
            'í' | 'ï' => Some('i'),
            'ó' | 'ö' | 'ô' => Some('o'),
            'ú' | 'ü' => Some('u'),
            'ç' => Some('c'),
            c if c.is_ascii_alphabetic() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

pub struct SeedReport {
    pub requested: u64,
    pub inserted: u64,
    pub seconds: f64,
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

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Seeded {} of {} members in {:.1} s",
            self.inserted, self.requested, self.seconds
        )?;
        if self.inserted < self.requested {
            write!(
                f,
                " ({} already existed: same seed run before?)",
                self.requested - self.inserted
            )?;
        }
        Ok(())
    }
}

pub async fn run(database_url: &str, args: SeedArgs) -> CliResult<SeedReport> {
    let password = Password::new(args.password);
    validate_new_password(&password).map_err(describe)?;
    let db = open_database(database_url).await?;
    let started = std::time::Instant::now();
    let hash = tokio::task::spawn_blocking(move || hash_password_blocking(&password)).await?;
    let progress = ProgressBar::new(args.members);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} seeding [{bar:40}] {pos}/{len} members ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let inserted = insert_members(&db, args.seed, args.members, &hash, |n| progress.inc(n)).await?;
    progress.finish_and_clear();
    app::orders::service::ensure_catalogue(&db, EPOCH_2024).await?;
    // One record for the whole run (a million member records would say less).
    let mut event = command_record(AuditAction::MembersSeeded, "seed");
    if let Some(details) = event.details.as_object_mut() {
        details.insert("requested".into(), args.members.into());
        details.insert("inserted".into(), inserted.into());
        details.insert("seed".into(), args.seed.into());
    }
    record(&db, app::clock::system_now(), event)
        .await
        .map_err(describe)?;
    db.close().await;
    Ok(SeedReport {
        requested: args.members,
        inserted,
        seconds: started.elapsed().as_secs_f64(),
    })
}

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

/// Recreates what `defer_indexes` dropped: the indexes (on PostgreSQL two at a time,
/// one per core), then the foreign keys (each checked by one join).
async fn restore(db: &Db, deferred: &[String]) -> CliResult<()> {
    let (constraints, indexes): (Vec<&String>, Vec<&String>) =
        deferred.iter().partition(|sql| sql.starts_with("ALTER TABLE"));
    match db {
        Db::Sqlite(pool) => {
            for sql in indexes {
                sqlx::query(sql).execute(pool).await?;
            }
        }
        Db::Postgres(pool) => {
            async fn run(pool: &sqlx::PgPool, part: &[&String]) -> Result<(), sqlx::Error> {
                for sql in part {
                    sqlx::query(sql).execute(pool).await?;
                }
                Ok(())
            }
            let half = indexes.len().div_ceil(2);
            tokio::try_join!(run(pool, &indexes[..half]), run(pool, &indexes[half..]))?;
            for sql in constraints {
                sqlx::query(sql).execute(pool).await?;
            }
        }
    }
    Ok(())
}

/// Drops the non-unique indexes of the tables the seed fills (and, on PostgreSQL, the
/// foreign keys of the terms and memberships, whose row-by-row checks tripled the
/// terms' insert) and returns the SQL that recreates them, read from the database's own
/// catalogue (so they cannot drift from the migrations). Unique indexes and primary
/// keys stay: ON CONFLICT needs them.
async fn defer_indexes(db: &Db) -> CliResult<Vec<String>> {
    let indexes: Vec<(String, String)> = match db {
        Db::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
                 AND tbl_name IN ('members', 'member_terms', 'group_members') AND sql NOT LIKE 'CREATE UNIQUE%'",
            )
            .fetch_all(pool)
            .await?
        }
        Db::Postgres(pool) => {
            sqlx::query_as(
                "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = current_schema() \
                 AND tablename IN ('members', 'member_terms', 'group_members') AND indexdef NOT LIKE 'CREATE UNIQUE%'",
            )
            .fetch_all(pool)
            .await?
        }
    };
    let mut recreate = Vec::new();
    for (name, sql) in indexes {
        with_db!(db, pool => {
            sqlx::query(&format!("DROP INDEX \"{}\"", name.replace('"', ""))).execute(pool).await?;
        });
        recreate.push(sql);
    }
    if let Db::Postgres(pool) = db {
        let keys: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE contype = 'f' AND conrelid IN ('member_terms'::regclass, 'group_members'::regclass)",
        )
        .fetch_all(pool)
        .await?;
        for (table, name, definition) in keys {
            let name = name.replace('"', "");
            sqlx::query(&format!("ALTER TABLE {table} DROP CONSTRAINT \"{name}\""))
                .execute(pool)
                .await?;
            recreate.push(format!(
                "ALTER TABLE {table} ADD CONSTRAINT \"{name}\" {definition}"
            ));
        }
    }
    Ok(recreate)
}

/// Writes the search terms (`app::members::directory::search_terms`) of every member
/// that has none, in SQL: the name, each later part of it, the email.
async fn fill_terms(db: &Db) -> CliResult<()> {
    const SQL: &str = "WITH RECURSIVE words (member_id, rest) AS ( \
             SELECT id, name_key FROM members m WHERE deleted_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM member_terms t WHERE t.member_id = m.id) \
             UNION ALL \
             SELECT member_id, substr(rest, POSITION(' ' IN rest) + 1) FROM words WHERE POSITION(' ' IN rest) > 0 \
         ), terms (member_id, term) AS ( \
             SELECT member_id, rest FROM words WHERE rest <> '' \
             UNION ALL \
             SELECT id, email_key FROM members m WHERE deleted_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM member_terms t WHERE t.member_id = m.id) \
         ) \
         INSERT INTO member_terms (member_id, term, name_key, email_key, role_rank, sign_in_key) \
         SELECT terms.member_id, terms.term, m.name_key, m.email_key, m.role_rank, m.sign_in_key \
         FROM terms JOIN members m ON m.id = terms.member_id WHERE TRUE \
         ON CONFLICT DO NOTHING";
    with_db!(db, pool => {
        sqlx::query(SQL.replace("POSITION(' ' IN rest)", if matches!(db, Db::Sqlite(_)) { "instr(rest, ' ')" } else { "strpos(rest, ' ')" }).as_str())
            .execute(pool)
            .await?;
    });
    Ok(())
}

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

/// Whose proxy login permission names whom, among the first `count` seeded members:
/// the first support engineer (member 4) and the first editor (member 2) each get a
/// few colleagues with admin access (listed in their **Login as** menu) and a few
/// plain members (reached from the blade, or by `alias_login`). Written by the first
/// super user, as a new installation would set them up. Pairs of (target, actor)
/// indexes, from the roles the seed gives.
pub fn proxy_grants(seed: u64, count: u64) -> Vec<(usize, usize)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let people: Vec<SeedMember> = (0..count.min(400)).map(|i| member(&mut rng, seed, i)).collect();
    let usable = |i: usize| people.get(i).is_some_and(|m| m.login_enabled);
    let plain: Vec<usize> = (10..people.len())
        .filter(|i| usable(*i) && people[*i].role == Role::Member)
        .take(10)
        .collect();
    let (support, editor) = (3, 1);
    let mut pairs = Vec::new();
    // Colleagues with admin access: the other support engineers for the support
    // engineer; an editor and two support engineers for the editor.
    for target in [4, 5, 6] {
        if usable(target) && usable(support) {
            pairs.push((target, support));
        }
    }
    for target in [2, 5, 6] {
        if usable(target) && usable(editor) {
            pairs.push((target, editor));
        }
    }
    for (n, target) in plain.into_iter().enumerate() {
        pairs.push((target, if n < 5 { support } else { editor }));
    }
    pairs
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

#[cfg(test)]
mod tests {
    use super::*;

    fn population(seed: u64, n: u64) -> Vec<SeedMember> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|i| member(&mut rng, seed, i)).collect()
    }

    #[test]
    fn the_demo_agents_get_colleagues_for_login_as_and_members_for_the_blade() {
        for seed in [1, 7, 42] {
            let people = population(seed, 400);
            let pairs = proxy_grants(seed, 400);
            for actor in [1, 3] {
                let targets: Vec<&SeedMember> = pairs
                    .iter()
                    .filter(|(_, a)| *a == actor)
                    .map(|(t, _)| &people[*t])
                    .collect();
                let with_access = targets.iter().filter(|m| m.admin_access).count();
                let plain = targets.iter().filter(|m| !m.admin_access).count();
                assert!(
                    with_access >= 2,
                    "seed {seed}, actor {actor}: {with_access} in Login as"
                );
                assert_eq!(plain, 5, "seed {seed}, actor {actor}");
                for target in targets {
                    assert!(target.login_enabled);
                    assert!(
                        target.role.rank() <= people[actor].role.rank(),
                        "no grant to a higher rank"
                    );
                }
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_members() {
        assert_eq!(population(7, 200), population(7, 200));
        assert_ne!(population(7, 50), population(8, 50));
    }

    #[test]
    fn seeded_members_look_real_and_cover_every_role() {
        let members = population(1, 2_000);
        for role in Role::ALL {
            assert!(members.iter().any(|m| m.role == role), "no {role}");
        }
        let emails: std::collections::HashSet<_> = members.iter().map(|m| m.email.to_lowercase()).collect();
        assert_eq!(emails.len(), members.len(), "emails are unique");
        for m in &members {
            assert!(app::email::validate_email(&m.email).is_ok(), "{}", m.email);
            assert!(m.email.is_ascii());
            assert!(m.display_name.contains(' '));
            assert_eq!(m.admin_access, m.role != Role::Member);
        }
        let disabled = members.iter().filter(|m| !m.login_enabled).count();
        assert!(disabled > 0 && disabled < members.len() / 10, "{disabled}");
        assert_eq!(ascii_lower("Ramírez"), "ramirez");
        let in_groups = (0..2_000).filter(|i| !groups_of(1, *i).is_empty()).count();
        assert!((1_200..1_800).contains(&in_groups), "{in_groups}");
        assert!((0..2_000).any(|i| groups_of(1, i).len() == 2));
        assert_eq!(groups_of(1, 17), groups_of(1, 17));
        assert_eq!(ascii_lower("O'Brien"), "obrien");
    }
}
