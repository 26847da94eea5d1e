//! Members on the server: rows, validation, creation.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use sqlx::QueryBuilder;

use crate::{
    audit::service::{self as audit, AuditTx, NewEvent},
    auth::{
        password::PasswordHasher,
        session::{CurrentSession, RequestContext},
        Password,
    },
    clock::{format_utc, Millis},
    db::{is_unique_violation, BeginWrite, Db},
    error::AppError,
    groups::GroupRef,
    members::{
        assignable_roles, may_edit, parse_id_list, IdLookup, ListQuery, MemberDetail, MemberEdit, MemberPage,
        MemberRef, MemberSummary, Role, SortKey, COUNT_CAP, MIN_SEARCH_CHARS, PAGE_SIZE,
    },
    state::AppState,
    with_db,
};

pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_NAME_CHARS: usize = 100;
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A member as the server knows them (never with the password hash).
#[derive(Clone, Debug, PartialEq)]
pub struct MemberRow {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub admin_access: bool,
    pub login_enabled: bool,
    pub created_at: Millis,
    pub last_sign_in_at: Option<Millis>,
}

/// The lookup key for an email: emails are unique case-insensitively.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

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

/// Rewrites member `id`'s search terms inside `tx` from the member's row as it now is
/// (none for a deleted member). Call it after any change of name, email, role or
/// last sign-in: the terms carry copies of those sort keys.
macro_rules! write_terms {
    ($tx:expr, $id:expr) => {{
        sqlx::query("DELETE FROM member_terms WHERE member_id = $1")
            .bind($id)
            .execute(&mut *$tx)
            .await?;
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT name_key, email_key, role_rank, sign_in_key FROM members \
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind($id)
        .fetch_optional(&mut *$tx)
        .await?;
        if let Some((name_key, email_key, role_rank, sign_in_key)) = row {
            for term in search_terms(&name_key, &email_key) {
                sqlx::query(
                    "INSERT INTO member_terms (member_id, term, name_key, email_key, role_rank, sign_in_key) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind($id)
                .bind(term)
                .bind(&name_key)
                .bind(&email_key)
                .bind(role_rank)
                .bind(sign_in_key)
                .execute(&mut *$tx)
                .await?;
            }
        }
    }};
}

/// Trims an email and checks it is there and not too long (sign-in needs no more).
pub fn require_email(email: &str) -> Result<&str, AppError> {
    let email = email.trim();
    if email.is_empty() {
        return Err(AppError::validation("email", "Enter an email address."));
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(AppError::validation(
            "email",
            format!("An email address has at most {MAX_EMAIL_LEN} characters."),
        ));
    }
    Ok(email)
}

/// Checks an email address for sign-up or editing. Deliberately modest: one `@`,
/// something on each side, a dot in the domain, no spaces or control characters.
pub fn validate_email(email: &str) -> Result<String, AppError> {
    let email = require_email(email)?;
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if !valid {
        return Err(AppError::validation(
            "email",
            "Enter an email address like name@example.com.",
        ));
    }
    Ok(email.to_string())
}

/// Checks a display name; runs of spaces become one space.
pub fn validate_display_name(name: &str) -> Result<String, AppError> {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let name = name.as_str();
    if name.is_empty() {
        return Err(AppError::validation("display_name", "Enter a name."));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::validation(
            "display_name",
            format!("A name has at most {MAX_NAME_CHARS} characters."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::validation(
            "display_name",
            "A name cannot contain control characters.",
        ));
    }
    Ok(name.to_string())
}

/// Rules for a new password (sign-in accepts whatever was set).
pub fn validate_new_password(password: &Password) -> Result<(), AppError> {
    let text = password.expose();
    if text.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::validation(
            "password",
            format!("A password has at least {MIN_PASSWORD_CHARS} characters."),
        ));
    }
    if text.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::validation(
            "password",
            format!("A password has at most {MAX_PASSWORD_BYTES} bytes."),
        ));
    }
    Ok(())
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
/// email is taken (case-insensitively).
pub async fn create_member(
    db: &Db,
    hasher: &PasswordHasher,
    now: Millis,
    new: NewMember,
    password: Password,
) -> Result<i64, AppError> {
    let email = validate_email(&new.email)?;
    let display_name = validate_display_name(&new.display_name)?;
    validate_new_password(&password)?;
    let hash = hasher.hash(password).await?;
    let key = email_key(&email);
    let result: Result<i64, sqlx::Error> = with_db!(db, pool => {
        async {
            let mut tx = pool.begin_write().await?;
            let (id,): (i64,) = sqlx::query_as(
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
            .await?;
            write_terms!(tx, id);
            tx.commit().await?;
            Ok(id)
        }
        .await
    });
    match result {
        Ok(id) => Ok(id),
        Err(error) if is_unique_violation(&error) => Err(AppError::Conflict(format!(
            "A member with the email {email} already exists."
        ))),
        Err(error) => Err(error.into()),
    }
}

#[derive(sqlx::FromRow)]
pub struct Credentials {
    pub id: i64,
    pub password_hash: String,
    pub login_enabled: bool,
}

/// The credentials of the (not deleted) member with this email, if any.
pub async fn find_credentials(db: &Db, email: &str) -> Result<Option<Credentials>, AppError> {
    let key = email_key(email);
    let found = with_db!(db, pool => {
        sqlx::query_as::<_, Credentials>(
            "SELECT id, password_hash, login_enabled FROM members WHERE email_key = $1 AND deleted_at IS NULL",
        )
        .bind(&key)
        .fetch_optional(pool)
        .await?
    });
    Ok(found)
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

/// The exclusive upper bound of the keys starting with `prefix` (keys compare
/// byte-wise: SQLite's BINARY collation, PostgreSQL's COLLATE "C").
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

// ---- the members list ------------------------------------------------------------------
//
// A page is found from a cursor (the last row of the previous page), never by
// OFFSET, so page 10,000 costs what page 1 costs. A search is the union of streams:
// the ID, and the member's search terms (name, later parts of the name, email; see
// `search_terms`) starting with the text. The terms carry copies of the sort keys and
// the role, and for each sort an index lists a bucket of terms (their first two
// characters) in the page's order: a page walks the prefix's bucket from the cursor and
// stops after a page of members. When a stream (narrowed by a rare role through the
// terms index by role), or a role or group filter, holds at most COUNT_CAP members,
// those are fetched and sorted instead, which is cheaper than walking past the others.
// Without a search, the walk follows the sort's index on `members`.

/// A value bound into the generated SQL.
enum Bind {
    Text(String),
    Int(i64),
}

/// SQL text with `$n` placeholders and their values, built up in order.
#[derive(Default)]
struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.binds.push(Bind::Text(value.into()));
        self.text.push_str(&format!("${}", self.binds.len()));
        self
    }

    fn int(&mut self, value: i64) -> &mut Self {
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

async fn fetch_rows(db: &Db, sql: Sql) -> Result<Vec<ListRow>, AppError> {
    let rows = with_db!(db, pool => {
        bind_all!(sqlx::query_as::<_, ListRow>(&sql.text), sql.binds).fetch_all(pool).await?
    });
    Ok(rows)
}

async fn fetch_count(db: &Db, sql: Sql) -> Result<i64, AppError> {
    let (count,): (i64,) = with_db!(db, pool => {
        bind_all!(sqlx::query_as::<_, (i64,)>(&sql.text), sql.binds).fetch_one(pool).await?
    });
    Ok(count)
}

#[derive(sqlx::FromRow)]
struct ListRow {
    id: i64,
    email: String,
    display_name: String,
    role: String,
    admin_access: bool,
    login_enabled: bool,
    last_sign_in_at: Option<i64>,
    name_key: String,
    email_key: String,
    role_rank: i64,
    sign_in_key: i64,
}

const LIST_COLUMNS: &str = "id, email, display_name, role, admin_access, login_enabled, last_sign_in_at, \
                            name_key, email_key, role_rank, sign_in_key";

/// A row's position in a sort: the sort column and the ID.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Text(String, i64),
    Int(i64, i64),
}

fn key_of(sort: SortKey, row: &ListRow) -> Key {
    match sort {
        SortKey::Id => Key::Int(row.id, row.id),
        SortKey::Name => Key::Text(row.name_key.clone(), row.id),
        SortKey::Email => Key::Text(row.email_key.clone(), row.id),
        SortKey::Role => Key::Int(row.role_rank, row.id),
        SortKey::LastSignIn => Key::Int(row.sign_in_key, row.id),
    }
}

/// The sort's columns (the last is always the ID, or the unique email).
fn sort_columns(sort: SortKey) -> &'static [&'static str] {
    match sort {
        SortKey::Id => &["id"],
        SortKey::Name => &["name_key", "id"],
        SortKey::Email => &["email_key"],
        SortKey::Role => &["role_rank", "id"],
        SortKey::LastSignIn => &["sign_in_key", "id"],
    }
}

/// The index a walk in this sort's order reads (SQLite is told; PostgreSQL chooses).
fn sort_index(sort: SortKey) -> &'static str {
    match sort {
        SortKey::Id => " NOT INDEXED",
        SortKey::Name => " INDEXED BY members_name_key",
        SortKey::Email => " INDEXED BY members_email_key",
        SortKey::Role => " INDEXED BY members_role_rank",
        SortKey::LastSignIn => " INDEXED BY members_sign_in",
    }
}

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
async fn walk_terms(
    db: &Db,
    prefix: &str,
    filters: &Filters,
    sort: SortKey,
    position: &Position,
) -> Result<Vec<ListRow>, AppError> {
    let sqlite = matches!(db, Db::Sqlite(_));
    let bucket: String = prefix.chars().take(2).collect();
    let wanted = PAGE_SIZE as usize + 1;
    let batch = 2 * (PAGE_SIZE + 1);
    let sort_column = columns_in(sort, "member_id")[0].clone();
    let mut ids = Vec::new();
    let mut seen = BTreeSet::new();
    let mut from = position.clone();
    loop {
        let mut sql = Sql::default();
        sql.push(&format!("SELECT member_id, {sort_column} FROM member_terms"));
        if sqlite {
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
        let keys: Vec<(i64, Key)> = match sort {
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
        };
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

/// Up to PAGE_SIZE + 1 members of a small stream from `position`, in order: its
/// members fetched by ID and sorted.
async fn fetch_stream(
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
async fn walk_all(
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

/// One page of the members list: ID exactly, or any word of the name or the email
/// by prefix, case-insensitively; `%`, `_` and quotes are plain characters (bound
/// values compared as ranges: no LIKE).
pub async fn list(db: &Db, query: ListQuery) -> Result<MemberPage, AppError> {
    list_with_threshold(db, query, FETCH_AT_MOST).await
}

/// Up to this many candidates, a page is found by fetching them all and sorting;
/// beyond, by walking an index in the page's order (measured at a million members:
/// fetching 1,400 members cost 17–37 ms, a walk a few).
const FETCH_AT_MOST: i64 = 400;

/// `list`, with the size up to which a stream (or filter) is fetched and sorted
/// rather than read in order. Tests run both ways and compare.
pub async fn list_with_threshold(db: &Db, query: ListQuery, threshold: i64) -> Result<MemberPage, AppError> {
    let filters = Filters {
        role: query.role,
        group: query.group,
    };
    let text = query.q.to_lowercase();
    let mut streams = Vec::new();
    let mut hint = None;
    if text.is_empty() {
        streams.push(Stream::All);
    } else {
        if let Ok(id) = text.trim_start_matches('#').parse::<i64>() {
            streams.push(Stream::Id(id));
        }
        if text.chars().count() >= MIN_SEARCH_CHARS {
            streams.push(Stream::Terms(
                text.clone(),
                query.role.map(|role| role.rank() as i64),
            ));
        } else if streams.is_empty() {
            hint = Some(format!(
                "Type at least {MIN_SEARCH_CHARS} characters to search names and emails (or an ID)."
            ));
        }
    }

    // Where the page starts.
    let cursor = query.after.or(query.before);
    let key = match cursor {
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
    let position = Position {
        key,
        ascending: query.descending == backwards,
    };

    // The smallest filter can drive the whole search.
    let role_size = match query.role {
        Some(role) => {
            let mut sql = Sql::default();
            sql.push("SELECT COUNT(*) FROM (SELECT 1 FROM members WHERE deleted_at IS NULL AND role_rank = ")
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
    let streams = kept;
    let streams_total = sizes.iter().fold(0i64, |sum, size| sum.saturating_add(*size));
    let filter_size = role_size.min(group_size);
    let sqlite = matches!(db, Db::Sqlite(_));
    // With a filter and a broad search, a walk keeps only rows matching both, which can
    // be rare: a filter of a few thousand is cheaper fetched and sorted.
    let filter_threshold = if streams_total > threshold {
        threshold.saturating_mul(4)
    } else {
        threshold
    };

    let driver = |sql: &mut Sql| {
        sql.push("id IN (");
        if streams_total <= filter_size {
            // The streams' own members (the filters follow).
            for (i, stream) in streams.iter().enumerate() {
                if i > 0 {
                    sql.push(" UNION ");
                }
                stream.ids(sql, sqlite);
            }
            sql.push(")");
            return;
        }
        // The filter's members that match the search.
        if role_size <= group_size {
            sql.push("SELECT id FROM members WHERE deleted_at IS NULL AND role_rank = ")
                .int(query.role.map(|r| r.rank() as i64).unwrap_or(0));
        } else {
            sql.push("SELECT member_id FROM group_members WHERE group_id = ")
                .int(query.group.unwrap_or(0));
        }
        sql.push(") AND (");
        for (i, stream) in streams.iter().enumerate() {
            if i > 0 {
                sql.push(" OR ");
            }
            stream.predicate(sql);
        }
        sql.push(")");
    };
    let not_indexed = if matches!(db, Db::Sqlite(_)) {
        " NOT INDEXED"
    } else {
        ""
    };
    // The exact number of matches (with the filters), for at most COUNT_CAP candidates.
    let count_matches = || async {
        let mut count = Sql::default();
        count.push(&format!(
            "SELECT COUNT(*) FROM members{not_indexed} WHERE deleted_at IS NULL AND "
        ));
        driver(&mut count);
        filters.predicate(&mut count, "members", "id");
        fetch_count(db, count).await
    };

    let (mut rows, total) = if streams.is_empty() {
        (Vec::new(), Some(0))
    } else if streams_total <= threshold || filter_size <= filter_threshold {
        // Few candidates: fetch them (by the streams, or by the filter) and sort.
        let mut sql = Sql::default();
        sql.push(&format!(
            "SELECT {LIST_COLUMNS} FROM members{not_indexed} WHERE deleted_at IS NULL AND "
        ));
        driver(&mut sql);
        filters.predicate(&mut sql, "members", "id");
        position.predicate(query.sort, &mut sql, "id");
        position.order(query.sort, &mut sql, !sqlite, "id");
        sql.push(" LIMIT ").int(PAGE_SIZE + 1);
        let rows = fetch_rows(db, sql).await?;
        (rows, Some(count_matches().await?))
    } else {
        // Many: read each stream in the page's order and merge their first rows.
        let mut rows = Vec::new();
        for (stream, size) in streams.iter().zip(&sizes) {
            rows.extend(match stream {
                Stream::All => walk_all(db, &filters, query.sort, &position).await?,
                Stream::Terms(prefix, _) if *size > threshold => {
                    walk_terms(db, prefix, &filters, query.sort, &position).await?
                }
                _ => fetch_stream(db, stream, &filters, query.sort, &position).await?,
            });
        }
        rows.sort_by_key(|row| key_of(query.sort, row));
        if !position.ascending {
            rows.reverse();
        }
        let mut seen = BTreeSet::new();
        rows.retain(|row| seen.insert(row.id));
        rows.truncate(PAGE_SIZE as usize + 1);
        // A stream's size is exact up to COUNT_CAP; alone and unfiltered (or narrowed
        // by the role filter) it is the count, otherwise the candidates are counted.
        let total = if streams_total > COUNT_CAP {
            None
        } else if streams.len() == 1
            && filters.group.is_none()
            && (filters.role.is_none() || matches!(streams[0], Stream::Terms(_, Some(_))))
        {
            Some(streams_total)
        } else {
            Some(count_matches().await?)
        };
        (rows, total)
    };

    let more_this_way = rows.len() > PAGE_SIZE as usize;
    rows.truncate(PAGE_SIZE as usize);
    if backwards {
        rows.reverse();
    }
    let first = rows.first().map(|row| row.id);
    let last = rows.last().map(|row| row.id);
    let (next, previous) = if backwards {
        (last, if more_this_way { first } else { None })
    } else {
        (
            if more_this_way { last } else { None },
            if position.key.is_some() { first } else { None },
        )
    };
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let mut groups = groups_of(db, &ids).await?;
    let members = rows
        .into_iter()
        .map(|row| {
            let role = parse_role(row.id, &row.role)?;
            Ok(MemberSummary {
                groups: groups.remove(&row.id).unwrap_or_default(),
                id: row.id,
                display_name: row.display_name,
                email: row.email,
                role,
                admin_access: row.admin_access,
                login_enabled: row.login_enabled,
                last_sign_in: row.last_sign_in_at.map(format_utc),
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
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

// ---- the User information blade and the member editor --------------------------------

/// A signed-in editor or super user with admin access. Anyone else signed in is
/// refused, and the refusal is recorded as `action` (the change itself writes nothing).
pub async fn require_editor<'a>(
    state: &AppState,
    request: &'a RequestContext,
    action: &'static str,
    object: (&'static str, String),
) -> Result<&'a CurrentSession, AppError> {
    let session = request.require_session()?;
    if !session.member.admin_access {
        return Err(refuse(state, request, session, action, object, "no_admin_access").await);
    }
    if session.member.role < Role::Editor {
        return Err(refuse(state, request, session, action, object, "needs_editor_role").await);
    }
    Ok(session)
}

/// Records a refused change (`action`, with why) and returns the 403 to answer with.
pub async fn refuse(
    state: &AppState,
    request: &RequestContext,
    session: &CurrentSession,
    action: &'static str,
    (kind, id): (&'static str, String),
    reason: &'static str,
) -> AppError {
    tracing::info!(actor = session.member.id, action, reason, "change refused");
    let event = NewEvent::new(action, request)
        .by(session)
        .object(kind, id)
        .details(json!({ "reason": reason }));
    if let Err(error) = audit::record(&state.db, state.clock.now(), event).await {
        return error;
    }
    AppError::forbidden(match reason {
        "no_admin_access" => "You do not have access to the management screens.",
        "needs_editor_role" => "Only editors and super users may change members and groups.",
        "target_outranks_editor" => "You cannot change a member whose role is above your own.",
        "role_above_own_rank" => "You cannot give a role above your own.",
        _ => "You may not do this.",
    })
}

#[derive(sqlx::FromRow)]
struct DetailRow {
    id: i64,
    email: String,
    display_name: String,
    role: String,
    admin_access: bool,
    login_enabled: bool,
    created_at: i64,
    last_sign_in_at: Option<i64>,
}

const DETAIL: &str = "SELECT id, email, display_name, role, admin_access, login_enabled, created_at, \
                      last_sign_in_at FROM members WHERE id = $1 AND deleted_at IS NULL";

fn parse_role(id: i64, text: &str) -> Result<Role, AppError> {
    Role::parse(text).ok_or_else(|| {
        tracing::error!(member = id, role = %text, "member has an unknown role");
        AppError::Internal
    })
}

fn no_such_member(id: i64) -> AppError {
    AppError::NotFound(format!("No member has the ID {id}."))
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

/// Everything the blade shows about member `id`, for a viewer with role `viewer`.
pub async fn detail(db: &Db, viewer: &CurrentSession, id: i64) -> Result<MemberDetail, AppError> {
    let row: Option<DetailRow> = with_db!(db, pool => {
        sqlx::query_as(DETAIL).bind(id).fetch_optional(pool).await?
    });
    let row = row.ok_or_else(|| no_such_member(id))?;
    let role = parse_role(row.id, &row.role)?;
    let proxies: Vec<(i64, String)> = with_db!(db, pool => {
        sqlx::query_as(
            "SELECT m.id, m.display_name FROM proxy_permissions p JOIN members m ON m.id = p.actor_id \
             WHERE p.member_id = $1 AND m.deleted_at IS NULL ORDER BY m.id",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
    });
    let groups = groups_of(db, &[id]).await?.remove(&id).unwrap_or_default();
    let can_edit = may_edit(viewer.member.role, role);
    let can_log_in_on_behalf = crate::rule::can_log_in_on_behalf(
        &crate::rule::Actor {
            id: viewer.member.id,
            role: viewer.member.role,
            on_behalf: viewer.on_behalf.is_some(),
        },
        Some(&crate::rule::Target {
            id: row.id,
            role,
            deleted: false,
            login_enabled: row.login_enabled,
            grants_actor: proxies.iter().any(|(actor, _)| *actor == viewer.member.id),
        }),
    )
    .is_ok();
    Ok(MemberDetail {
        member: MemberSummary {
            id: row.id,
            display_name: row.display_name,
            email: row.email,
            role,
            admin_access: row.admin_access,
            login_enabled: row.login_enabled,
            last_sign_in: row.last_sign_in_at.map(format_utc),
            groups,
        },
        member_since: format_utc(row.created_at),
        proxy_login_permission: proxies
            .into_iter()
            .map(|(id, display_name)| MemberRef { id, display_name })
            .collect(),
        can_edit,
        can_log_in_on_behalf,
        assignable_roles: if can_edit {
            assignable_roles(viewer.member.role)
        } else {
            Vec::new()
        },
    })
}

/// Names the members behind `ids` (deleted members count as unknown).
pub async fn lookup(db: &Db, ids: &[i64]) -> Result<Vec<IdLookup>, AppError> {
    let found = names_of(db, ids).await?;
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

/// Puts member `member` in group `group` (or takes them out), keeping the group's
/// member count, inside a transaction. Shared by the member editor and group pages.
macro_rules! set_group_membership {
    ($tx:expr, $group:expr, $member:expr, $now:expr, $add:expr) => {{
        if $add {
            sqlx::query("INSERT INTO group_members (group_id, member_id, added_at) VALUES ($1, $2, $3)")
                .bind($group)
                .bind($member)
                .bind($now)
                .execute(&mut *$tx)
                .await?;
        } else {
            sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND member_id = $2")
                .bind($group)
                .bind($member)
                .execute(&mut *$tx)
                .await?;
        }
        let change = if $add { 1_i64 } else { -1_i64 };
        sqlx::query("UPDATE groups SET member_count = member_count + $2, updated_at = $3 WHERE id = $1")
            .bind($group)
            .bind(change)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(crate) use set_group_membership;

/// A validated edit, ready to apply.
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
fn check_edit(id: i64, edit: MemberEdit) -> Result<CheckedEdit, AppError> {
    let display_name = validate_display_name(&edit.display_name)?;
    let email = validate_email(&edit.email)?;
    let role = Role::parse(edit.role.trim()).ok_or_else(|| {
        AppError::validation("role", "Choose a role: member, support, editor or super_user.")
    })?;
    let groups = parse_id_list(&edit.groups).map_err(|message| AppError::validation("groups", message))?;
    let proxies = parse_id_list(&edit.proxy_login_permission)
        .map_err(|message| AppError::validation("proxy_login_permission", message))?;
    if proxies.contains(&id) {
        return Err(AppError::validation(
            "proxy_login_permission",
            format!("ID {id} is this member: nobody needs permission to be themselves."),
        ));
    }
    Ok(CheckedEdit {
        display_name,
        email,
        role,
        admin_access: edit.admin_access,
        login_enabled: edit.login_enabled,
        groups: groups.into_iter().collect(),
        proxies: proxies.into_iter().collect(),
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
    const REFUSED: &str = "member_update_refused";
    let object = ("member", id.to_string());
    let session = require_editor(state, request, REFUSED, object.clone()).await?;
    let editor = session.member.role;
    let edit = check_edit(id, edit)?;
    if edit.role.rank() > editor.rank() {
        return Err(refuse(state, request, session, REFUSED, object, "role_above_own_rank").await);
    }
    let now = state.clock.now();
    let outcome: Result<(), Refusal> = with_db!(&state.db, pool => {
        async {
            let mut tx = pool.begin_write().await?;
            let row: Option<DetailRow> = sqlx::query_as(DETAIL).bind(id).fetch_optional(&mut *tx).await?;
            let row = row.ok_or_else(|| no_such_member(id))?;
            let before_role = parse_role(id, &row.role)?;
            if !may_edit(editor, before_role) {
                return Err(Refusal::Refused("target_outranks_editor"));
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
            if !edit.groups.is_empty() {
                let found = found_ids!(tx, "SELECT id FROM groups WHERE id IN (", &edit.groups);
                if let Some(missing) = edit.groups.iter().find(|g| !found.contains(g)) {
                    return Err(AppError::validation("groups", format!("No group has the ID {missing}.")).into());
                }
            }
            let mut proxies_before = BTreeSet::new();
            for (actor,) in sqlx::query_as::<_, (i64,)>("SELECT actor_id FROM proxy_permissions WHERE member_id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?
            {
                proxies_before.insert(actor);
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
                    )
                    .into());
                }
            }
            // Somebody must stay able to administer: the last super user who can sign in
            // and use the management screens keeps all three.
            let stays_super = edit.role == Role::SuperUser && edit.admin_access && edit.login_enabled;
            if before_role == Role::SuperUser && row.admin_access && row.login_enabled && !stays_super {
                let (others,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM members WHERE role = 'super_user' AND admin_access AND login_enabled \
                     AND deleted_at IS NULL AND id <> $1",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                if others == 0 {
                    return Err(AppError::Conflict(
                        "This is the last super user who can sign in and manage members: keep their role, \
                         admin access and authorization to log in, or make someone else a super user first."
                            .into(),
                    )
                    .into());
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
                    return Err(AppError::validation("email", "Another member already uses this email address.").into())
                }
                other => {
                    other?;
                }
            }
            write_terms!(tx, id);
            for group in edit.groups.difference(&groups_before) {
                set_group_membership!(tx, *group, id, now, true);
            }
            for group in groups_before.difference(&edit.groups) {
                set_group_membership!(tx, *group, id, now, false);
            }
            for actor in edit.proxies.difference(&proxies_before) {
                sqlx::query("INSERT INTO proxy_permissions (member_id, actor_id, created_at) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(*actor)
                    .bind(now)
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
            let event = NewEvent::new("member_updated", request)
                .by(session)
                .subject(id)
                .object("member", id)
                .details(json!({ "changes": changes }));
            tx.append_audit(now, event).await?;
            tx.commit().await?;
            Ok(())
        }
        .await
    });
    match outcome {
        Ok(()) => detail(&state.db, session, id).await,
        Err(Refusal::Refused(reason)) => Err(refuse(state, request, session, REFUSED, object, reason).await),
        Err(Refusal::Error(error)) => Err(error),
    }
}

/// Why a transaction stopped: a refusal to record (after the rollback), or an error.
pub enum Refusal {
    Refused(&'static str),
    Error(AppError),
}

impl From<AppError> for Refusal {
    fn from(error: AppError) -> Self {
        Refusal::Error(error)
    }
}

impl From<sqlx::Error> for Refusal {
    fn from(error: sqlx::Error) -> Self {
        Refusal::Error(error.into())
    }
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
        write_terms!(tx, id);
        let event = NewEvent::new("profile_updated", request)
            .by(session)
            .subject(id)
            .object("member", id)
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
    fn emails_are_keyed_case_insensitively() {
        assert_eq!(email_key("  Ann.Lee@Example.COM "), "ann.lee@example.com");
        assert_eq!(email_key("ÉLODIE@exemple.fr"), "élodie@exemple.fr");
    }

    #[test]
    fn email_validation_accepts_ordinary_addresses_and_refuses_the_rest() {
        assert_eq!(validate_email(" ann@example.com ").unwrap(), "ann@example.com");
        assert!(validate_email("o'brien+tag@example.co.uk").is_ok());
        assert!(validate_email("élodie@exemple.fr").is_ok());
        for bad in [
            "",
            "   ",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@b@c.com",
            "ann@.com",
            "ann@example.com.",
        ] {
            let error = validate_email(bad).unwrap_err();
            assert_eq!(error.field(), Some("email"), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(validate_email(&long).unwrap_err().to_string().contains("at most"));
    }

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

    #[test]
    fn new_passwords_have_a_minimum_and_a_maximum() {
        assert!(validate_new_password(&Password::new("1234567")).is_err());
        assert!(validate_new_password(&Password::new("12345678")).is_ok());
        assert!(validate_new_password(&Password::new("x".repeat(1024))).is_ok());
        assert!(validate_new_password(&Password::new("x".repeat(1025))).is_err());
    }
}
