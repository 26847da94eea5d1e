//! Deferring the secondary indexes (and foreign keys) of a bulk seed, and what is
//! done in one statement once the rows are in: the search terms, then the rebuild.

use app::db::Db;

use crate::startup::CliResult;

/// Recreates what `defer_indexes` dropped: the indexes (on PostgreSQL two at a time,
/// one per core), then the foreign keys (each checked by one join).
pub(super) async fn restore(db: &Db, deferred: &[String]) -> CliResult<()> {
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
pub(super) async fn defer_indexes(db: &Db) -> CliResult<Vec<String>> {
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
pub(super) async fn fill_terms(db: &Db) -> CliResult<()> {
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
