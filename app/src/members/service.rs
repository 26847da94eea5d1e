//! Members on the server: rows, validation, creation.

use sqlx::QueryBuilder;

use crate::{
    auth::{password::PasswordHasher, Password},
    clock::{format_utc, Millis},
    db::{is_unique_violation, BeginWrite, Db},
    error::AppError,
    members::{ListQuery, MemberPage, MemberSummary, Role, SortKey, COUNT_CAP, PAGE_SIZE},
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

pub fn validate_display_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
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
                "INSERT INTO members (email, email_key, display_name, name_key, password_hash, role, \
                 admin_access, login_enabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
            )
            .bind(&email)
            .bind(&key)
            .bind(&display_name)
            .bind(name_key(&display_name))
            .bind(&hash)
            .bind(new.role.as_str())
            .bind(new.admin_access)
            .bind(new.login_enabled)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
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

/// Appends the WHERE clause of a list query (the same for the page and the count).
macro_rules! push_member_filters {
    ($builder:expr, $query:expr, $prefix:expr) => {{
        $builder.push(" WHERE deleted_at IS NULL");
        if let Some(prefix) = $prefix {
            let end = prefix_end(prefix);
            $builder.push(" AND ((name_key >= ").push_bind(prefix.to_string());
            $builder.push(" AND name_key < ").push_bind(end.clone());
            $builder.push(") OR (email_key >= ").push_bind(prefix.to_string());
            $builder.push(" AND email_key < ").push_bind(end);
            $builder.push(")");
            if let Ok(id) = $query.q.trim_start_matches('#').parse::<i64>() {
                $builder.push(" OR id = ").push_bind(id);
            }
            $builder.push(")");
        }
        if let Some(role) = $query.role {
            $builder.push(" AND role = ").push_bind(role.as_str());
        }
    }};
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: i64,
    email: String,
    display_name: String,
    role: String,
    admin_access: bool,
    login_enabled: bool,
    last_sign_in_at: Option<i64>,
}

/// One page of the members list: ID exactly, or name or email by prefix,
/// case-insensitively; `%`, `_` and quotes are plain characters (bound values,
/// range comparisons, no LIKE).
pub async fn list(db: &Db, query: ListQuery) -> Result<MemberPage, AppError> {
    let prefix = (!query.q.is_empty()).then(|| query.q.to_lowercase());
    let prefix = prefix.as_deref();
    let direction = if query.descending { " DESC" } else { " ASC" };
    let order = match query.sort {
        SortKey::Id => format!("id{direction}"),
        SortKey::Name => format!("name_key{direction}, id{direction}"),
        SortKey::Email => format!("email_key{direction}"),
        SortKey::Role => format!(
            "CASE role WHEN 'member' THEN 0 WHEN 'support' THEN 1 WHEN 'editor' THEN 2 ELSE 3 END{direction}, \
             name_key ASC, id ASC"
        ),
        SortKey::LastSignIn if query.descending => "last_sign_in_at DESC NULLS LAST, id DESC".to_string(),
        SortKey::LastSignIn => "last_sign_in_at ASC NULLS FIRST, id ASC".to_string(),
    };
    let offset = (query.page - 1) * PAGE_SIZE;
    let (rows, total): (Vec<SummaryRow>, i64) = with_db!(db, pool => {
        let mut page = QueryBuilder::new(
            "SELECT id, email, display_name, role, admin_access, login_enabled, last_sign_in_at FROM members",
        );
        push_member_filters!(page, query, prefix);
        page.push(" ORDER BY ").push(&order);
        page.push(" LIMIT ").push_bind(PAGE_SIZE).push(" OFFSET ").push_bind(offset);
        let rows = page.build_query_as().fetch_all(pool).await?;
        let mut count = QueryBuilder::new("SELECT COUNT(*) FROM (SELECT 1 FROM members");
        push_member_filters!(count, query, prefix);
        count.push(" LIMIT ").push_bind(COUNT_CAP + 1).push(") AS matching");
        let (total,): (i64,) = count.build_query_as().fetch_one(pool).await?;
        (rows, total)
    });
    let members = rows
        .into_iter()
        .map(|row| {
            let role = Role::parse(&row.role).ok_or_else(|| {
                tracing::error!(member = row.id, role = %row.role, "member has an unknown role");
                AppError::Internal
            })?;
            Ok(MemberSummary {
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
        total: total.min(COUNT_CAP),
        more: total > COUNT_CAP,
    })
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
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_display_name("  Ann Lee ").unwrap(), "Ann Lee");
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
