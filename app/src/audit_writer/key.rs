//! The key of the audit chain: parsing, the process's installed key, and the check
//! value the database keeps.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{
    db::{with_db, Db},
    error::AppError,
};

/// The key of the audit chain: 32 bytes that live outside the database (the server
/// reads them from `BEHALF_AUDIT_KEY` or a key file, see the server's `load_audit_key`),
/// and the first record written with it.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey {
    bytes: [u8; 32],
    /// Records before this one predate the key (plain SHA-256 links).
    pub keyed_from: i64,
}

/// 64 hex digits as 32 bytes (strictly: no sign, no spaces inside): a key, or a hash.
pub fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut bytes = [0; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

impl AuditKey {
    /// A key for a chain keyed from its first record.
    pub fn from_bytes(bytes: [u8; 32]) -> AuditKey {
        AuditKey { bytes, keyed_from: 1 }
    }

    /// The same key, for a chain whose records before `first` predate it.
    pub fn keyed_from(mut self, first: i64) -> AuditKey {
        self.keyed_from = first.max(1);
        self
    }

    /// A key from configuration: 64 hex digits are the key itself; anything else is a
    /// passphrase, whose SHA-256 is the key.
    pub fn from_secret(secret: &str) -> AuditKey {
        match parse_hex32(secret.trim()) {
            Some(bytes) => AuditKey::from_bytes(bytes),
            None => AuditKey::from_bytes(Sha256::digest(secret.as_bytes()).into()),
        }
    }

    /// A new random key.
    pub fn generate() -> AuditKey {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        let mut bytes = [0; 32];
        OsRng.fill_bytes(&mut bytes);
        AuditKey::from_bytes(bytes)
    }

    pub fn to_hex(&self) -> String {
        hex(&self.bytes)
    }

    /// A key as written by `to_hex` (64 hex digits), keyed from record 1, or None.
    pub fn from_hex(text: &str) -> Option<AuditKey> {
        parse_hex32(text.trim()).map(AuditKey::from_bytes)
    }

    /// The key file's text: the key, and the first record written with it.
    pub fn to_key_file(&self) -> String {
        format!("{}\nkeyed-from {}\n", self.to_hex(), self.keyed_from)
    }

    /// A key file as `to_key_file` writes it (a file of the key alone is keyed from 1).
    pub fn from_key_file(text: &str) -> Option<AuditKey> {
        let mut lines = text.lines();
        let key = AuditKey::from_hex(lines.next()?)?;
        match lines.next().map(str::trim).filter(|line| !line.is_empty()) {
            None => Some(key),
            Some(line) => {
                let first: i64 = line.strip_prefix("keyed-from ")?.trim().parse().ok()?;
                (first >= 1).then(|| key.keyed_from(first))
            }
        }
    }

    /// What the database keeps to tell whether an instance holds the chain's key (an
    /// HMAC of a fixed text: it says nothing about the key).
    pub fn check_value(&self) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(b"behalf audit key check");
        mac.finalize().into_bytes().to_vec()
    }

    /// An HMAC-SHA256 under this key, to feed.
    pub(super) fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes).expect("HMAC takes a key of any length")
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey(…, keyed_from: {})", self.keyed_from)
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

static KEY: OnceLock<AuditKey> = OnceLock::new();

/// Makes `key` the process's audit key (one process, one chain). A second call with
/// another key is refused: records must never be written with two keys.
pub fn install_key(key: AuditKey) -> Result<(), AppError> {
    let installed = KEY.get_or_init(|| key.clone());
    if *installed == key {
        Ok(())
    } else {
        tracing::error!("a second, different audit key was offered to this process");
        Err(AppError::Internal)
    }
}

/// Writes `key`'s check value into the chain's head if none is there yet (the first
/// process to start), and says whether the head's is `key`'s: false for an instance
/// holding another key than the one the chain is kept with.
pub async fn claim_key_check(db: &Db, key: &AuditKey) -> Result<bool, AppError> {
    let check = key.check_value();
    let stored: Option<Vec<u8>> = with_db!(db, pool => {
        sqlx::query("UPDATE audit_head SET key_check = $1 WHERE id = 1 AND key_check IS NULL")
            .bind(&check)
            .execute(pool)
            .await?;
        let (stored,): (Option<Vec<u8>>,) =
            sqlx::query_as("SELECT key_check FROM audit_head WHERE id = 1").fetch_one(pool).await?;
        stored
    });
    Ok(stored.as_deref() == Some(check.as_slice()))
}

/// The process's audit key.
pub fn installed_key() -> Result<&'static AuditKey, AppError> {
    KEY.get().ok_or_else(|| {
        tracing::error!("no audit key is loaded: nothing can be recorded");
        AppError::Internal
    })
}
