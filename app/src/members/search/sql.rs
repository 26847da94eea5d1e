//! The SQL side of the members list: statements built with their bound values, the
//! rows they read, and each sort's columns and indexes.

use crate::{
    db::with_db,
    db::Db,
    error::AppError,
    members::{directory::SummaryRow, SortKey},
};

/// The exclusive upper bound of the keys starting with `prefix` (keys compare
/// byte-wise: SQLite's BINARY collation, PostgreSQL's COLLATE "C").
pub(super) fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// A value bound into the generated SQL.
pub(super) enum Bind {
    Text(String),
    Int(i64),
}

/// SQL text with `$n` placeholders and their values, built up in order.
#[derive(Default)]
pub(super) struct Sql {
    pub(super) text: String,
    pub(super) binds: Vec<Bind>,
}

impl Sql {
    pub(super) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub(super) fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.binds.push(Bind::Text(value.into()));
        self.text.push_str(&format!("${}", self.binds.len()));
        self
    }

    pub(super) fn int(&mut self, value: i64) -> &mut Self {
        self.binds.push(Bind::Int(value));
        self.text.push_str(&format!("${}", self.binds.len()));
        self
    }
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Int(value) => query.bind(value),
            };
        }
        query
    }};
}
pub(super) use bind_all;

pub(super) async fn fetch_rows(db: &Db, sql: Sql) -> Result<Vec<ListRow>, AppError> {
    let rows = with_db!(db, pool => {
        bind_all!(sqlx::query_as::<_, ListRow>(&sql.text), sql.binds).fetch_all(pool).await?
    });
    Ok(rows)
}

pub(super) async fn fetch_count(db: &Db, sql: Sql) -> Result<i64, AppError> {
    let (count,): (i64,) = with_db!(db, pool => {
        bind_all!(sqlx::query_as::<_, (i64,)>(&sql.text), sql.binds).fetch_one(pool).await?
    });
    Ok(count)
}

#[derive(sqlx::FromRow)]
pub(super) struct ListRow {
    pub(super) id: i64,
    pub(super) email: String,
    pub(super) display_name: String,
    pub(super) role: String,
    pub(super) admin_access: bool,
    pub(super) login_enabled: bool,
    pub(super) last_sign_in_at: Option<i64>,
    pub(super) name_key: String,
    pub(super) email_key: String,
    pub(super) role_rank: i64,
    pub(super) sign_in_key: i64,
}

impl ListRow {
    pub(super) fn into_summary(self) -> SummaryRow {
        SummaryRow {
            id: self.id,
            email: self.email,
            display_name: self.display_name,
            role: self.role,
            admin_access: self.admin_access,
            login_enabled: self.login_enabled,
            last_sign_in_at: self.last_sign_in_at,
        }
    }
}

pub(super) const LIST_COLUMNS: &str =
    "id, email, display_name, role, admin_access, login_enabled, last_sign_in_at, \
                            name_key, email_key, role_rank, sign_in_key";

/// A row's position in a sort: the sort column and the ID.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Key {
    Text(String, i64),
    Int(i64, i64),
}

pub(super) fn key_of(sort: SortKey, row: &ListRow) -> Key {
    match sort {
        SortKey::Id => Key::Int(row.id, row.id),
        SortKey::Name => Key::Text(row.name_key.clone(), row.id),
        SortKey::Email => Key::Text(row.email_key.clone(), row.id),
        SortKey::Role => Key::Int(row.role_rank, row.id),
        SortKey::LastSignIn => Key::Int(row.sign_in_key, row.id),
    }
}

/// The sort's columns (the last is always the ID, or the unique email).
pub(super) fn sort_columns(sort: SortKey) -> &'static [&'static str] {
    match sort {
        SortKey::Id => &["id"],
        SortKey::Name => &["name_key", "id"],
        SortKey::Email => &["email_key"],
        SortKey::Role => &["role_rank", "id"],
        SortKey::LastSignIn => &["sign_in_key", "id"],
    }
}

/// The index a walk in this sort's order reads (SQLite is told; PostgreSQL chooses).
pub(super) fn sort_index(sort: SortKey) -> &'static str {
    match sort {
        SortKey::Id => " NOT INDEXED",
        SortKey::Name => " INDEXED BY members_name_key",
        SortKey::Email => " INDEXED BY members_email_key",
        SortKey::Role => " INDEXED BY members_role_rank",
        SortKey::LastSignIn => " INDEXED BY members_sign_in",
    }
}
