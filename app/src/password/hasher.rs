//! Passwords: argon2id at OWASP's parameters, computed off the async runtime with a
//! bounded number in flight, and a wrapper that never prints its content.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Mutex,
};

use argon2::{
    password_hash::{
        rand_core::OsRng, Output, PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString,
    },
    Algorithm, Argon2, Block, Params, Version,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::AppError;

use crate::password::Password;

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

/// Largest argon2 memory we agree to fill for a stored hash (1 GiB), so a corrupt
/// row cannot make us allocate without bound.
const MAX_BLOCKS: usize = 1 << 20;

/// Verifies like `verify_password_blocking`, but in `memory`, a buffer kept from
/// call to call. A fresh 19 MiB allocation costs ~5,000 page faults (about a third
/// of a verification on these machines); reusing warm memory avoids them.
pub fn verify_password_in(stored: &str, password: &Password, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(stored_params) = Params::try_from(&parsed) else {
        return false;
    };
    let Ok(params) = Params::new(
        stored_params.m_cost(),
        stored_params.t_cost(),
        stored_params.p_cost(),
        Some(expected.len()),
    ) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = [0u8; 64];
    let out = &mut out[..expected.len()];
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.expose().as_bytes(),
        salt,
        out,
        &mut memory[..blocks],
    );
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(out).is_ok_and(|out| out == expected)
}

/// Runs argon2 on tokio's blocking pool, at most `limit` at a time, so a flood of
/// sign-ins queues here instead of starving every other request of CPU and memory.
/// The queue is bounded: a password check first takes a place in line (`reserve`),
/// and when every place is taken it is refused at once, before any hashing and before
/// it counts against an account.
#[derive(Debug)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Places in line: the checks running plus those waiting, at most `places`.
    in_line: Arc<AtomicUsize>,
    places: usize,
    /// Warm argon2 memory, at most one block per permit.
    memory: Mutex<Vec<Vec<Block>>>,
    /// Verified against when the email is unknown, so that costs the same time.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        PasswordHasher {
            permits: Arc::new(Semaphore::new(limit)),
            in_line: Arc::new(AtomicUsize::new(0)),
            places: limit + DEFAULT_QUEUE,
            memory: Mutex::new(Vec::new()),
            dummy_hash: hash_password_blocking(&Password::new("behalf dummy password for unknown emails")),
        }
    }

    /// One permit per available core.
    pub fn with_default_limit() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        PasswordHasher::new(cores)
    }

    /// The same hasher with room for `queue` checks waiting behind the running ones.
    pub fn with_queue(mut self, queue: usize) -> Self {
        self.places = self.permits.available_permits().saturating_add(queue);
        self
    }

    /// A place in line for one password check, held until it is dropped; or, when
    /// the line is full, a 429 at once (nothing hashed, nothing counted).
    pub fn reserve(&self) -> Result<Reservation, AppError> {
        let taken = self.in_line.fetch_add(1, Ordering::SeqCst);
        let reservation = Reservation(self.in_line.clone());
        if taken >= self.places {
            drop(reservation);
            tracing::debug!("password check refused: the argon2 queue is full");
            return Err(AppError::RateLimited { retry_after: 1 });
        }
        Ok(reservation)
    }

    fn take_memory(&self) -> Vec<Block> {
        self.memory
            .lock()
            .map(|mut pool| pool.pop().unwrap_or_default())
            .unwrap_or_default()
    }

    fn give_back_memory(&self, memory: Vec<Block>) {
        if let Ok(mut pool) = self.memory.lock() {
            pool.push(memory);
        }
    }

    /// A core for one argon2 computation, once one is free.
    async fn core(&self) -> Result<OwnedSemaphorePermit, AppError> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::Internal)
    }

    /// Runs `work` (`what`: "hashing" or "verification", for the log) on the blocking
    /// pool. The permit goes with the work: a caller that gives up does not free a
    /// core that argon2 is still using.
    async fn on_core<T: Send + 'static>(
        core: OwnedSemaphorePermit,
        what: &'static str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        tokio::task::spawn_blocking(move || {
            let _core = core;
            work()
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "password {what} task failed");
            AppError::Internal
        })
    }

    pub async fn hash(&self, password: Password) -> Result<String, AppError> {
        let core = self.core().await?;
        Self::on_core(core, "hashing", move || hash_password_blocking(&password)).await
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is
    /// no stored hash (unknown email), so both cases take the same time.
    pub async fn verify(&self, stored: Option<String>, password: Password) -> Result<bool, AppError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let core = self.core().await?;
        // Warm memory is taken once the core is ours: at most one block per permit.
        let mut memory = self.take_memory();
        let (memory, matched) = Self::on_core(core, "verification", move || {
            let matched = verify_password_in(&stored, &password, &mut memory);
            (memory, matched)
        })
        .await?;
        self.give_back_memory(memory);
        Ok(known && matched)
    }
}

/// Checks that may wait behind the running ones unless configured otherwise.
pub const DEFAULT_QUEUE: usize = 32;

/// A place in the hasher's line (see `PasswordHasher::reserve`).
#[derive(Debug)]
pub struct Reservation(Arc<AtomicUsize>);

impl Drop for Reservation {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_bounded_and_places_come_back() {
        let hasher = PasswordHasher::new(1).with_queue(2);
        let held: Vec<Reservation> = (0..3).map(|_| hasher.reserve().unwrap()).collect();
        assert_eq!(
            hasher.reserve().unwrap_err(),
            AppError::RateLimited { retry_after: 1 }
        );
        drop(held);
        assert!(hasher.reserve().is_ok());
        assert_eq!(hasher.in_line.load(Ordering::SeqCst), 0);
    }

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
    fn reused_memory_verifies_exactly_like_the_library() {
        let mut memory = Vec::new();
        let password = Password::new("correct horse battery staple");
        let ours = hash_password_blocking(&password);
        // A hash made with other parameters (smaller memory, more passes, another variant).
        let params = Params::new(4_096, 3, 1, None).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(password.expose().as_bytes(), &salt)
            .unwrap()
            .to_string();
        for stored in [&ours, &other, &ours] {
            for candidate in [
                "correct horse battery staple",
                "correct horse battery stapl",
                "",
                "pässwörd",
            ] {
                let candidate = Password::new(candidate);
                assert_eq!(
                    verify_password_in(stored, &candidate, &mut memory),
                    verify_password_blocking(stored, &candidate),
                    "{stored} / {candidate:?}"
                );
            }
        }
        assert!(verify_password_in(&ours, &password, &mut memory));
        assert!(!verify_password_in("garbage", &password, &mut memory));
        assert!(!verify_password_in(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$",
            &password,
            &mut memory
        ));
        // A stored hash asking for absurd memory is refused, not honoured.
        let huge =
            "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$ZmFrZWZha2VmYWtlZmFrZWZha2VmYWtlZmFrZWZha2U";
        assert!(!verify_password_in(huge, &password, &mut memory));
        assert!(memory.len() <= MAX_BLOCKS);
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
