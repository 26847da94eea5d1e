//! The database: SQLite (the zero-setup default) or PostgreSQL (for several
//! instances). Queries are written once with `$1` placeholders, which both
//! accept, and run against whichever pool is configured through `with_db!`.

use std::{str::FromStr, time::Duration};

use log::LevelFilter;
use sqlx::{
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    ConnectOptions, PgPool, Postgres, Sqlite, SqlitePool, Transaction,
};

use crate::{error::AppError, role::Role};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub mod tx;

/// Runs `$body` with `$pool` bound to the concrete pool. The body is compiled once
/// per database, so it may use any sqlx API both support.
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_db;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL (expected sqlite:PATH or postgres://…); got one starting with {0:?}")]
    UnsupportedUrl(String),
    #[error("could not open the database at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Db {
    /// Opens (and for SQLite creates) the database named by `url`.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        Db::connect_in_schema(url, None).await
    }

    /// Like `connect`; on PostgreSQL every connection uses `schema` first in its
    /// search path (tests use one schema each so runs never collide).
    pub async fn connect_in_schema(url: &str, schema: Option<&str>) -> Result<Db, DbError> {
        let fail = |source| DbError::Connect {
            url: redact_url(url),
            source,
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // Plans are made for each query's values: the members list's queries are
            // only fast when the planner sees how many rows a prefix or filter selects.
            // No parallel workers: on a small machine, starting them costs a short
            // query (a page of members) more than they save.
            let mut options = PgConnectOptions::from_str(url)
                .map_err(fail)?
                // Every statement's log line was formatted (then dropped by the filter)
                // on every request; slow ones are still logged.
                .log_statements(LevelFilter::Off)
                .options([
                    ("plan_cache_mode", "force_custom_plan"),
                    ("max_parallel_workers_per_gather", "0"),
                ]);
            if let Some(schema) = schema {
                options = options.options([("search_path", schema)]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(fail)?;
            Ok(Db::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(fail)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // 32 MiB of page cache per connection (SQLite's default is 2 MiB): the
                // members list's indexes at a million members stay in memory.
                .pragma("cache_size", "-32768")
                .pragma("temp_store", "memory")
                .log_statements(LevelFilter::Off);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(fail)?;
            Ok(Db::Sqlite(pool))
        } else {
            let scheme: String = url.chars().take_while(|c| *c != ':').take(20).collect();
            Err(DbError::UnsupportedUrl(scheme))
        }
    }

    /// Applies every pending migration. Never skipped silently: a failure is an error.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// What a `SELECT` appends to lock the rows it reads until the transaction ends:
    /// `FOR NO KEY UPDATE` on PostgreSQL; nothing on SQLite, whose write transaction
    /// (`BEGIN IMMEDIATE`) already excludes every other writer. Not `FOR UPDATE`: no
    /// caller changes a key, and `FOR UPDATE` also waits on the key-share locks that
    /// foreign-key checks take (a session or link row inserted or updated for the same
    /// member), which closed lock circles with the chain head. Every locker uses this
    /// same clause, so they still exclude each other.
    pub fn for_update(&self) -> &'static str {
        self.locking(" FOR NO KEY UPDATE")
    }

    /// A row-locking clause (`" FOR SHARE OF a"`, say) on PostgreSQL; nothing on
    /// SQLite, for the same reason as `for_update`.
    pub fn locking(&self, clause: &'static str) -> &'static str {
        match self {
            Db::Sqlite(_) => "",
            Db::Postgres(_) => clause,
        }
    }

    /// A statement that makes the changes of members' roles and access one at a time
    /// (PostgreSQL: a transaction-level advisory lock; SQLite's write transaction does
    /// this already): two edits that each check the other's member cannot both pass
    /// on what they read before the other committed.
    pub fn serialize_member_edits(&self) -> Option<&'static str> {
        match self {
            Db::Sqlite(_) => None,
            Db::Postgres(_) => Some("SELECT pg_advisory_xact_lock(7425611)"),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// One round trip to the database (the health check).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        with_db!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    pub async fn close(&self) {
        with_db!(self, pool => pool.close().await)
    }
}

/// Starts a transaction that is going to write. On SQLite it takes the write lock
/// up front (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead
/// of failing when a read lock cannot be upgraded.
pub trait BeginWrite {
    type Database: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<Transaction<'static, Self::Database>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Database = Sqlite;
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Database = Postgres;
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// A role as stored in a member row. An unknown one (the column's CHECK makes it
/// impossible short of a hand edit) is logged here, once, and answered as internal.
pub fn stored_role(member_id: i64, text: &str) -> Result<Role, AppError> {
    Role::parse(text).ok_or_else(|| {
        tracing::error!(member = member_id, role = %text, "member has an unknown role");
        AppError::Internal
    })
}

/// True when `error` is a unique-constraint violation.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// The URL with any password replaced, fit for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            let tail = tail.split('?').next().unwrap_or("");
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => format!("{scheme}://{authority}{}", tail.split('?').next().unwrap_or("")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_appear_in_a_redacted_url() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.example:5432/behalf?sslmode=require&password=x"),
            "postgres://app:***@db.example:5432/behalf"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact_url("sqlite:behalf.db"), "sqlite:behalf.db");
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused_clearly() {
        let error = Db::connect("mysql://root@localhost/x").await.unwrap_err();
        assert!(error.to_string().contains("unsupported database URL"), "{error}");
        assert!(error.to_string().contains("\"mysql\""), "{error}");
    }
}
