//! Passwords: argon2id at OWASP's parameters, computed off the async runtime with a
//! bounded number in flight, and a wrapper that never prints its content.

use std::sync::Arc;

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};
use tokio::sync::Semaphore;

use crate::error::AppError;

pub use crate::auth::Password;

/// OWASP's argon2id recommendation: m = 19456 KiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password (blocking: call from a blocking thread or via `PasswordHasher`).
pub fn hash_password_blocking(password: &Password) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.expose().as_bytes(), &salt)
        .expect("argon2id hashing with valid parameters cannot fail")
        .to_string()
}

/// Checks a password against a stored PHC string (blocking). A malformed stored
/// hash never matches.
pub fn verify_password_blocking(stored: &str, password: &Password) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Runs argon2 on tokio's blocking pool, at most `limit` at a time, so a flood of
/// sign-ins queues here instead of starving every other request of CPU and memory.
#[derive(Debug)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Verified against when the email is unknown, so that costs the same time.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(limit: usize) -> Self {
        PasswordHasher {
            permits: Arc::new(Semaphore::new(limit.max(1))),
            dummy_hash: hash_password_blocking(&Password::new("behalf dummy password for unknown emails")),
        }
    }

    /// One permit per available core.
    pub fn with_default_limit() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        PasswordHasher::new(cores)
    }

    pub async fn hash(&self, password: Password) -> Result<String, AppError> {
        let _permit = self.permits.acquire().await.map_err(|_| AppError::Internal)?;
        tokio::task::spawn_blocking(move || hash_password_blocking(&password))
            .await
            .map_err(|error| {
                tracing::error!(%error, "password hashing task failed");
                AppError::Internal
            })
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is
    /// no stored hash (unknown email), so both cases take the same time.
    pub async fn verify(&self, stored: Option<String>, password: Password) -> Result<bool, AppError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let _permit = self.permits.acquire().await.map_err(|_| AppError::Internal)?;
        let matched = tokio::task::spawn_blocking(move || verify_password_blocking(&stored, &password))
            .await
            .map_err(|error| {
                tracing::error!(%error, "password verification task failed");
                AppError::Internal
            })?;
        Ok(known && matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let password = Password::new("correct horse battery staple");
        let hash = hash_password_blocking(&password);
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password_blocking(&hash, &password));
        assert!(!verify_password_blocking(
            &hash,
            &Password::new("correct horse battery stapl")
        ));
        assert!(!verify_password_blocking(&hash, &Password::new("")));
    }

    #[test]
    fn the_same_password_gets_a_new_salt_each_time() {
        let password = Password::new("same");
        assert_ne!(
            hash_password_blocking(&password),
            hash_password_blocking(&password)
        );
    }

    #[test]
    fn a_malformed_stored_hash_never_matches() {
        assert!(!verify_password_blocking("not a hash", &Password::new("x")));
        assert!(!verify_password_blocking("", &Password::new("")));
    }

    #[test]
    fn non_ascii_passwords_work() {
        let password = Password::new("pässwörd 🔑 パスワード");
        let hash = hash_password_blocking(&password);
        assert!(verify_password_blocking(&hash, &password));
        assert!(!verify_password_blocking(&hash, &Password::new("passwort")));
    }

    #[tokio::test]
    async fn unknown_emails_never_verify_even_with_the_dummy_password() {
        let hasher = PasswordHasher::new(1);
        let dummy = Password::new("behalf dummy password for unknown emails");
        assert!(!hasher.verify(None, dummy).await.unwrap());
        let stored = hasher.hash(Password::new("pw-123456")).await.unwrap();
        assert!(hasher
            .verify(Some(stored.clone()), Password::new("pw-123456"))
            .await
            .unwrap());
        assert!(!hasher
            .verify(Some(stored), Password::new("pw-1234567"))
            .await
            .unwrap());
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let password = Password::new("hunter2");
        assert_eq!(format!("{password:?}"), "[redacted]");
    }
}
