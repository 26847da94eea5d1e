//! The credential check (server only): the same lookup and the same verifier for
//! sign-in and for re-authentication before a session on behalf.

use crate::{
    db::with_db,
    db::Db,
    email::email_key,
    error::AppError,
    password::{hasher::PasswordHasher, Password},
};

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

/// Looks up `email` and verifies `password` against it: the member's credentials (if
/// the email is known) and whether the password matched. An unknown email still
/// costs one verification against a dummy hash, so timing tells nothing.
pub async fn check(
    db: &Db,
    hasher: &PasswordHasher,
    email: &str,
    password: Password,
) -> Result<(Option<Credentials>, bool), AppError> {
    let credentials = find_credentials(db, email).await?;
    let stored = credentials.as_ref().map(|c| c.password_hash.clone());
    let verified = hasher.verify(stored, password).await?;
    Ok((credentials, verified))
}
