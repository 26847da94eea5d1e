//! The members list's engine (ssr): search by ID, name words or email prefix, sort,
//! filter by role and group, keyset pages over a million members.
//!
//! A page is found from a cursor (the last row of the previous page), never by
//! OFFSET, so page 10,000 costs what page 1 costs. A search is the union of streams:
//! the ID, and the member's search terms (name, later parts of the name, email; see
//! `search_terms`) starting with the text. The terms carry copies of the sort keys and
//! the role, and for each sort an index lists a bucket of terms (their first two
//! characters) in the page's order: a page walks the prefix's bucket from the cursor and
//! stops after a page of members. When a stream (narrowed by a rare role through the
//! terms index by role), or a role or group filter, holds at most COUNT_CAP members,
//! those are fetched and sorted instead, which is cheaper than walking past the others.
//! Without a search, the walk follows the sort's index on `members`.

use std::collections::BTreeSet;

use crate::{
    context::RequestContext,
    db::with_db,
    db::Db,
    error::AppError,
    guard::require_admin,
    members::{
        directory::summaries, ListParams, ListQuery, MemberPage, SortKey, COUNT_CAP, MIN_SEARCH_CHARS,
        PAGE_SIZE,
    },
    role::Role,
    state::AppState,
};

mod sql;
mod walk;

use sql::*;
use walk::{fetch_stream, walk_all, walk_terms};

/// One way a member can match the search.
#[derive(Clone, Debug)]
enum Stream {
    /// No search: everyone.
    All,
    /// One of the member's search terms (`search_terms`) starts with it — and, with a
    /// role rank, the member has that role: the terms index by role lists a rare
    /// role's matches without reading the others.
    Terms(String, Option<i64>),
    Id(i64),
}

impl Stream {
    /// A condition on a `members` row.
    fn predicate(&self, sql: &mut Sql) {
        match self {
            Stream::All => {
                sql.push("TRUE");
            }
            Stream::Terms(p, _) => {
                // The member's own few terms, by the primary key: `term || ''` keeps
                // PostgreSQL from scanning the whole term range for every member.
                sql.push("EXISTS (SELECT 1 FROM member_terms t WHERE t.member_id = members.id AND (t.term || '') >= ")
                    .text(p.as_str())
                    .push(" AND (t.term || '') < ")
                    .text(prefix_end(p))
                    .push(")");
            }
            Stream::Id(id) => {
                sql.push("id = ").int(*id);
            }
        }
    }

    /// A query for the IDs of the matching members (a member may come more than once).
    fn ids(&self, sql: &mut Sql, sqlite: bool) {
        match self {
            Stream::All => {
                sql.push("SELECT id FROM members WHERE deleted_at IS NULL");
            }
            Stream::Terms(p, None) => {
                sql.push("SELECT member_id FROM member_terms WHERE term >= ")
                    .text(p.as_str())
                    .push(" AND term < ")
                    .text(prefix_end(p));
            }
            Stream::Terms(p, Some(rank)) => {
                sql.push("SELECT member_id FROM member_terms");
                if sqlite {
                    sql.push(" INDEXED BY member_terms_by_role");
                }
                sql.push(" WHERE substr(term, 1, 2) = ")
                    .text(p.chars().take(2).collect::<String>())
                    .push(" AND role_rank = ")
                    .int(*rank)
                    .push(" AND term >= ")
                    .text(p.as_str())
                    .push(" AND term < ")
                    .text(prefix_end(p));
            }
            Stream::Id(id) => {
                sql.push("SELECT id FROM members WHERE deleted_at IS NULL AND id = ")
                    .int(*id);
            }
        }
    }

    /// How many members it holds, exactly up to COUNT_CAP (more is reported as
    /// COUNT_CAP + 1). Reads at most a few thousand entries of the terms index.
    async fn size(&self, db: &Db) -> Result<i64, AppError> {
        match self {
            Stream::Id(_) => Ok(1),
            Stream::All => {
                let mut sql = Sql::default();
                sql.push("SELECT COUNT(*) FROM (SELECT id FROM members WHERE deleted_at IS NULL LIMIT ")
                    .int(COUNT_CAP + 1)
                    .push(") AS s");
                fetch_count(db, sql).await
            }
            Stream::Terms(..) => {
                // A member has a few terms (name, later words, email): counting terms
                // up to a few times the cap finds every member up to the cap.
                let limit = (COUNT_CAP + 1) * 3;
                let mut sql = Sql::default();
                sql.push("SELECT COUNT(*), COUNT(DISTINCT member_id) FROM (");
                self.ids(&mut sql, matches!(db, Db::Sqlite(_)));
                sql.push(" LIMIT ").int(limit).push(") AS s");
                let (terms, members): (i64, i64) = with_db!(db, pool => {
                    bind_all!(sqlx::query_as(&sql.text), sql.binds).fetch_one(pool).await?
                });
                Ok(if terms >= limit { COUNT_CAP + 1 } else { members })
            }
        }
    }
}

/// The role and group filters.
struct Filters {
    role: Option<Role>,
    group: Option<i64>,
}

impl Filters {
    /// Conditions on a row of `members` (`id_column` "id") or of `member_terms`
    /// ("member_id"): both carry role_rank.
    fn predicate(&self, sql: &mut Sql, table: &str, id_column: &str) {
        if let Some(role) = self.role {
            sql.push(" AND role_rank = ").int(role.rank() as i64);
        }
        if let Some(group) = self.group {
            sql.push(" AND EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = ")
                .int(group)
                .push(&format!(" AND gm.member_id = {table}.{id_column})"));
        }
    }
}

/// Where a page starts: the cursor row's sort values, and which way to read.
#[derive(Clone)]
struct Position {
    key: Option<Key>,
    /// Reading towards larger keys.
    ascending: bool,
}

/// The sort's columns in a table whose member ID column is `id_column`.
fn columns_in(sort: SortKey, id_column: &str) -> Vec<String> {
    sort_columns(sort)
        .iter()
        .map(|column| {
            if *column == "id" {
                id_column.to_string()
            } else {
                column.to_string()
            }
        })
        .collect()
}

impl Position {
    fn predicate(&self, sort: SortKey, sql: &mut Sql, id_column: &str) {
        let Some(key) = &self.key else { return };
        let (op, bound) = if self.ascending { (">", ">=") } else { ("<", "<=") };
        let columns = columns_in(sort, id_column);
        match (key, columns.len()) {
            (Key::Int(_, id), 1) if sort == SortKey::Id => {
                sql.push(&format!(" AND {id_column} {op} ")).int(*id);
            }
            (Key::Text(text, _), 1) => {
                sql.push(&format!(" AND {} {op} ", columns[0]))
                    .text(text.as_str());
            }
            (Key::Text(text, id), _) => {
                sql.push(&format!(" AND {} {bound} ", columns[0]))
                    .text(text.as_str());
                sql.push(&format!(" AND ({}, {id_column}) {op} (", columns[0]))
                    .text(text.as_str())
                    .push(", ")
                    .int(*id)
                    .push(")");
            }
            (Key::Int(value, id), _) => {
                sql.push(&format!(" AND {} {bound} ", columns[0])).int(*value);
                sql.push(&format!(" AND ({}, {id_column}) {op} (", columns[0]))
                    .int(*value)
                    .push(", ")
                    .int(*id)
                    .push(")");
            }
        }
    }

    /// `ORDER BY` the sort. With `sorted_here`, each column is wrapped so no index can
    /// supply the order: PostgreSQL then joins from the few candidates and sorts them,
    /// instead of walking the sort's index hoping to meet them (which, when they are
    /// few, reads the whole table).
    fn order(&self, sort: SortKey, sql: &mut Sql, sorted_here: bool, id_column: &str) {
        let direction = if self.ascending { " ASC" } else { " DESC" };
        let order = columns_in(sort, id_column)
            .iter()
            .map(|column| match (sorted_here, column.as_str()) {
                (false, column) => format!("{column}{direction}"),
                (true, text @ ("name_key" | "email_key")) => format!("({text} || ''){direction}"),
                (true, number) => format!("({number} + 0){direction}"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        sql.push(" ORDER BY ").push(&order);
    }
}

/// One page of the members list: ID exactly, or any word of the name or the email
/// by prefix, case-insensitively; `%`, `_` and quotes are plain characters (bound
/// values compared as ranges: no LIKE).
/// Admin access.
pub async fn list(
    state: &AppState,
    request: &RequestContext,
    params: &ListParams,
) -> Result<MemberPage, AppError> {
    require_admin(request)?;
    let query = ListQuery::parse(params)?;
    list_with_threshold(&state.db, query, FETCH_AT_MOST).await
}

/// Up to this many candidates, a page is found by fetching them all and sorting;
/// beyond, by walking an index in the page's order (measured at a million members:
/// fetching 1,400 members cost 17–37 ms, a walk a few).
pub const FETCH_AT_MOST: i64 = 400;

/// `list`, with the size up to which a stream (or filter) is fetched and sorted
/// rather than read in order. Tests run both ways and compare.
pub async fn list_with_threshold(db: &Db, query: ListQuery, threshold: i64) -> Result<MemberPage, AppError> {
    let (streams, hint) = streams_of(&query);
    let start = start_of(db, &query).await?;
    let plan = Plan::new(db, &query, streams, threshold).await?;
    let (rows, total) = plan.rows(db, query.sort, &start.position, threshold).await?;
    page_of(db, query, rows, total, &start, hint).await
}

/// The streams whose union the search is, or (for a search too short to search
/// names) the hint why it finds nothing.
fn streams_of(query: &ListQuery) -> (Vec<Stream>, Option<String>) {
    let text = query.q.to_lowercase();
    if text.is_empty() {
        return (vec![Stream::All], None);
    }
    let mut streams = Vec::new();
    if let Ok(id) = text.trim_start_matches('#').parse::<i64>() {
        streams.push(Stream::Id(id));
    }
    if text.chars().count() >= MIN_SEARCH_CHARS {
        let rank = query.role.map(|role| role.rank() as i64);
        streams.push(Stream::Terms(text, rank));
    } else if streams.is_empty() {
        let hint =
            format!("Type at least {MIN_SEARCH_CHARS} characters to search names and emails (or an ID).");
        return (streams, Some(hint));
    }
    (streams, None)
}

/// Where the page starts, and whether it is read backwards (towards the start of the
/// list, from a `before` cursor that names a member).
struct Start {
    position: Position,
    backwards: bool,
}

async fn start_of(db: &Db, query: &ListQuery) -> Result<Start, AppError> {
    let key = match query.after.or(query.before) {
        None => None,
        Some(id) => {
            let mut sql = Sql::default();
            sql.push(&format!("SELECT {LIST_COLUMNS} FROM members WHERE id = "))
                .int(id);
            fetch_rows(db, sql)
                .await?
                .first()
                .map(|row| key_of(query.sort, row))
        }
    };
    let backwards = query.before.is_some() && key.is_some();
    let ascending = query.descending == backwards;
    Ok(Start {
        position: Position { key, ascending },
        backwards,
    })
}

/// How a search finds its candidates: the streams that hold anybody, with their sizes,
/// and the filters with theirs. The smallest drives the query.
struct Plan {
    streams: Vec<Stream>,
    sizes: Vec<i64>,
    streams_total: i64,
    filters: Filters,
    role_size: i64,
    group_size: i64,
    sqlite: bool,
}

impl Plan {
    async fn new(db: &Db, query: &ListQuery, streams: Vec<Stream>, threshold: i64) -> Result<Plan, AppError> {
        let role_size = match query.role {
            Some(role) => {
                let mut sql = Sql::default();
                sql.push(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM members WHERE deleted_at IS NULL AND role_rank = ",
                )
                .int(role.rank() as i64)
                .push(" LIMIT ")
                .int(threshold.saturating_mul(4).saturating_add(1))
                .push(") AS s");
                fetch_count(db, sql).await?
            }
            None => i64::MAX,
        };
        let group_size = match query.group {
            Some(group) => {
                let mut sql = Sql::default();
                sql.push("SELECT COALESCE(MAX(member_count), 0) FROM groups WHERE id = ")
                    .int(group);
                fetch_count(db, sql).await?
            }
            None => i64::MAX,
        };
        // Streams that hold nobody are left out: reading them in order would read everything.
        let mut sizes = Vec::new();
        let mut kept = Vec::new();
        for stream in streams {
            let size = stream.size(db).await?;
            if size > 0 {
                sizes.push(size);
                kept.push(stream);
            }
        }
        Ok(Plan {
            streams: kept,
            streams_total: sizes.iter().fold(0i64, |sum, size| sum.saturating_add(*size)),
            sizes,
            filters: Filters {
                role: query.role,
                group: query.group,
            },
            role_size,
            group_size,
            sqlite: matches!(db, Db::Sqlite(_)),
        })
    }

    fn filter_size(&self) -> i64 {
        self.role_size.min(self.group_size)
    }

    /// `members` (told to use no index on SQLite), for the statements `driver` drives.
    fn members_table(&self) -> &'static str {
        if self.sqlite {
            "members NOT INDEXED"
        } else {
            "members"
        }
    }

    /// The condition that picks the candidates: the streams' own members (the filters
    /// follow), or the smaller filter's members that match the search.
    fn driver(&self, sql: &mut Sql) {
        sql.push("id IN (");
        if self.streams_total <= self.filter_size() {
            for (i, stream) in self.streams.iter().enumerate() {
                if i > 0 {
                    sql.push(" UNION ");
                }
                stream.ids(sql, self.sqlite);
            }
            sql.push(")");
            return;
        }
        if self.role_size <= self.group_size {
            sql.push("SELECT id FROM members WHERE deleted_at IS NULL AND role_rank = ")
                .int(self.filters.role.map(|r| r.rank() as i64).unwrap_or(0));
        } else {
            sql.push("SELECT member_id FROM group_members WHERE group_id = ")
                .int(self.filters.group.unwrap_or(0));
        }
        sql.push(") AND (");
        for (i, stream) in self.streams.iter().enumerate() {
            if i > 0 {
                sql.push(" OR ");
            }
            stream.predicate(sql);
        }
        sql.push(")");
    }

    /// The exact number of matches (with the filters), for at most COUNT_CAP candidates.
    async fn count_matches(&self, db: &Db) -> Result<i64, AppError> {
        let mut count = Sql::default();
        count.push(&format!(
            "SELECT COUNT(*) FROM {} WHERE deleted_at IS NULL AND ",
            self.members_table()
        ));
        self.driver(&mut count);
        self.filters.predicate(&mut count, "members", "id");
        fetch_count(db, count).await
    }

    /// Up to PAGE_SIZE + 1 rows from `position`, in order, and the number of matches
    /// (`None`: more than COUNT_CAP).
    async fn rows(
        &self,
        db: &Db,
        sort: SortKey,
        position: &Position,
        threshold: i64,
    ) -> Result<(Vec<ListRow>, Option<i64>), AppError> {
        if self.streams.is_empty() {
            return Ok((Vec::new(), Some(0)));
        }
        // With a filter and a broad search, a walk keeps only rows matching both, which
        // can be rare: a filter of a few thousand is cheaper fetched and sorted.
        let filter_threshold = if self.streams_total > threshold {
            threshold.saturating_mul(4)
        } else {
            threshold
        };
        if self.streams_total <= threshold || self.filter_size() <= filter_threshold {
            let rows = self.fetch_sorted(db, sort, position).await?;
            Ok((rows, Some(self.count_matches(db).await?)))
        } else {
            self.merge_walks(db, sort, position, threshold).await
        }
    }

    /// Few candidates: fetch them (by the streams, or by the filter) and sort.
    async fn fetch_sorted(
        &self,
        db: &Db,
        sort: SortKey,
        position: &Position,
    ) -> Result<Vec<ListRow>, AppError> {
        let mut sql = Sql::default();
        sql.push(&format!(
            "SELECT {LIST_COLUMNS} FROM {} WHERE deleted_at IS NULL AND ",
            self.members_table()
        ));
        self.driver(&mut sql);
        self.filters.predicate(&mut sql, "members", "id");
        position.predicate(sort, &mut sql, "id");
        position.order(sort, &mut sql, !self.sqlite, "id");
        sql.push(" LIMIT ").int(PAGE_SIZE + 1);
        fetch_rows(db, sql).await
    }

    /// Many: read each stream in the page's order and merge their first rows.
    async fn merge_walks(
        &self,
        db: &Db,
        sort: SortKey,
        position: &Position,
        threshold: i64,
    ) -> Result<(Vec<ListRow>, Option<i64>), AppError> {
        let filters = &self.filters;
        let mut rows = Vec::new();
        for (stream, size) in self.streams.iter().zip(&self.sizes) {
            rows.extend(match stream {
                Stream::All => walk_all(db, filters, sort, position).await?,
                Stream::Terms(prefix, _) if *size > threshold => {
                    walk_terms(db, prefix, filters, sort, position).await?
                }
                _ => fetch_stream(db, stream, filters, sort, position).await?,
            });
        }
        rows.sort_by_key(|row| key_of(sort, row));
        if !position.ascending {
            rows.reverse();
        }
        let mut seen = BTreeSet::new();
        rows.retain(|row| seen.insert(row.id));
        rows.truncate(PAGE_SIZE as usize + 1);
        // A stream's size is exact up to COUNT_CAP; alone and unfiltered (or narrowed
        // by the role filter) it is the count, otherwise the candidates are counted.
        let total = if self.streams_total > COUNT_CAP {
            None
        } else if self.streams.len() == 1
            && filters.group.is_none()
            && (filters.role.is_none() || matches!(self.streams[0], Stream::Terms(_, Some(_))))
        {
            Some(self.streams_total)
        } else {
            Some(self.count_matches(db).await?)
        };
        Ok((rows, total))
    }
}

/// The page: at most PAGE_SIZE rows in the list's order, the cursors of the pages
/// either side, and the count.
async fn page_of(
    db: &Db,
    query: ListQuery,
    mut rows: Vec<ListRow>,
    total: Option<i64>,
    start: &Start,
    hint: Option<String>,
) -> Result<MemberPage, AppError> {
    let more_this_way = rows.len() > PAGE_SIZE as usize;
    rows.truncate(PAGE_SIZE as usize);
    if start.backwards {
        rows.reverse();
    }
    let first = rows.first().map(|row| row.id);
    let last = rows.last().map(|row| row.id);
    let (next, previous) = if start.backwards {
        (last, if more_this_way { first } else { None })
    } else {
        (
            if more_this_way { last } else { None },
            if start.position.key.is_some() { first } else { None },
        )
    };
    let members = summaries(db, rows.into_iter().map(ListRow::into_summary).collect()).await?;
    Ok(MemberPage {
        query,
        members,
        total: total.unwrap_or(COUNT_CAP),
        more: total.is_none(),
        next,
        previous,
        hint,
    })
}
