//! The three ways of reading a page in order from a position: a walk of a search
//! prefix's bucket in the terms index, a small stream fetched and sorted, and a walk of
//! the whole list by the sort's index.

use std::collections::BTreeSet;

use super::{columns_in, sql::*, Filters, Position, Stream};
use crate::{
    db::with_db,
    db::Db,
    error::AppError,
    members::{SortKey, PAGE_SIZE},
};

/// The terms index that lists a bucket (the terms' first two characters) in this
/// sort's order.
fn terms_index(sort: SortKey) -> &'static str {
    match sort {
        SortKey::Id => "member_terms_by_id",
        SortKey::Name => "member_terms_by_name",
        SortKey::Email => "member_terms_by_email",
        SortKey::Role => "member_terms_by_role",
        SortKey::LastSignIn => "member_terms_by_sign_in",
    }
}

/// The members whose term starts with `prefix`, up to PAGE_SIZE + 1 of them from
/// `position`, in order: a walk of the prefix's bucket in the terms index of the sort,
/// which holds the sort key, the role and the term, so only the group filter reads
/// another table. A member found by several terms comes once (their rows are
/// neighbours: same sort key, same ID).
pub(super) async fn walk_terms(
    db: &Db,
    prefix: &str,
    filters: &Filters,
    sort: SortKey,
    position: &Position,
) -> Result<Vec<ListRow>, AppError> {
    let wanted = PAGE_SIZE as usize + 1;
    let batch = 2 * (PAGE_SIZE + 1);
    let mut ids = Vec::new();
    let mut seen = BTreeSet::new();
    let mut from = position.clone();
    loop {
        let keys = term_keys(db, prefix, filters, sort, &from, batch).await?;
        let exhausted = (keys.len() as i64) < batch;
        for (id, _) in &keys {
            if seen.insert(*id) {
                ids.push(*id);
            }
        }
        match keys.into_iter().last() {
            Some((_, key)) if !exhausted && ids.len() < wanted => from.key = Some(key),
            _ => break,
        }
    }
    ids.truncate(wanted);
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::default();
    sql.push(&format!(
        "SELECT {LIST_COLUMNS} FROM members WHERE deleted_at IS NULL AND id IN ("
    ));
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.int(*id);
    }
    sql.push(")");
    let mut rows = fetch_rows(db, sql).await?;
    rows.sort_by_key(|row| key_of(sort, row));
    if !position.ascending {
        rows.reverse();
    }
    Ok(rows)
}

/// The next `batch` terms of the walk from `from`: each with its member and the
/// member's sort key.
async fn term_keys(
    db: &Db,
    prefix: &str,
    filters: &Filters,
    sort: SortKey,
    from: &Position,
    batch: i64,
) -> Result<Vec<(i64, Key)>, AppError> {
    let bucket: String = prefix.chars().take(2).collect();
    let sort_column = columns_in(sort, "member_id")[0].clone();
    let mut sql = Sql::default();
    sql.push(&format!("SELECT member_id, {sort_column} FROM member_terms"));
    if matches!(db, Db::Sqlite(_)) {
        sql.push(&format!(" INDEXED BY {}", terms_index(sort)));
    }
    // `term || ''`: PostgreSQL misjudges how many terms a prefix holds and would
    // read them all by the term index and sort them; the bucket index it is left
    // with reads in order and stops after a page.
    sql.push(" WHERE substr(term, 1, 2) = ")
        .text(bucket.as_str())
        .push(" AND (term || '') >= ")
        .text(prefix)
        .push(" AND (term || '') < ")
        .text(prefix_end(prefix));
    filters.predicate(&mut sql, "member_terms", "member_id");
    from.predicate(sort, &mut sql, "member_id");
    from.order(sort, &mut sql, false, "member_id");
    sql.push(" LIMIT ").int(batch);
    Ok(match sort {
        SortKey::Name | SortKey::Email => {
            let rows: Vec<(i64, String)> = with_db!(db, pool => {
                bind_all!(sqlx::query_as(&sql.text), sql.binds).fetch_all(pool).await?
            });
            rows.into_iter()
                .map(|(id, text)| (id, Key::Text(text, id)))
                .collect()
        }
        _ => {
            let rows: Vec<(i64, i64)> = with_db!(db, pool => {
                bind_all!(sqlx::query_as(&sql.text), sql.binds).fetch_all(pool).await?
            });
            rows.into_iter()
                .map(|(id, value)| (id, Key::Int(value, id)))
                .collect()
        }
    })
}

/// Up to PAGE_SIZE + 1 members of a small stream from `position`, in order: its
/// members fetched by ID and sorted.
pub(super) async fn fetch_stream(
    db: &Db,
    stream: &Stream,
    filters: &Filters,
    sort: SortKey,
    position: &Position,
) -> Result<Vec<ListRow>, AppError> {
    let sqlite = matches!(db, Db::Sqlite(_));
    let mut sql = Sql::default();
    sql.push(&format!("SELECT {LIST_COLUMNS} FROM members"));
    if sqlite {
        sql.push(" NOT INDEXED");
    }
    sql.push(" WHERE deleted_at IS NULL AND id IN (");
    stream.ids(&mut sql, sqlite);
    sql.push(")");
    filters.predicate(&mut sql, "members", "id");
    position.predicate(sort, &mut sql, "id");
    position.order(sort, &mut sql, !sqlite, "id");
    sql.push(" LIMIT ").int(PAGE_SIZE + 1);
    fetch_rows(db, sql).await
}

/// Up to PAGE_SIZE + 1 members of the whole list (no search) from `position`, in
/// order: a walk of the sort's index on `members`.
pub(super) async fn walk_all(
    db: &Db,
    filters: &Filters,
    sort: SortKey,
    position: &Position,
) -> Result<Vec<ListRow>, AppError> {
    let mut sql = Sql::default();
    sql.push(&format!("SELECT {LIST_COLUMNS} FROM members"));
    if matches!(db, Db::Sqlite(_)) {
        sql.push(sort_index(sort));
    }
    sql.push(" WHERE deleted_at IS NULL");
    filters.predicate(&mut sql, "members", "id");
    position.predicate(sort, &mut sql, "id");
    position.order(sort, &mut sql, false, "id");
    sql.push(" LIMIT ").int(PAGE_SIZE + 1);
    fetch_rows(db, sql).await
}
