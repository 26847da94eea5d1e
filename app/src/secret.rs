//! The server's secret for keyed hashes (lower layer, server only): one-click login
//! links are stored as HMAC-SHA256 of their token under this key.
//!
//! The key is given by configuration (`BEHALF_SECRET`), or generated on first start
//! and kept in `server_secrets`, where every instance on one PostgreSQL finds the
//! same one. Only a configured key keeps a copy of the database from confirming a
//! guessed or leaked token; a generated one travels with the database. Changing it
//! makes every outstanding link unusable.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{
    clock::Millis,
    db::{with_db, Db},
};

/// The name of the generated key in `server_secrets`.
const LINK_KEY_NAME: &str = "one_click_link_key";

/// The shortest secret accepted from configuration.
pub const MIN_SECRET_LEN: usize = 32;

/// The key links are hashed with. Its `Debug` never prints it.
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey([redacted])")
    }
}

/// Where the key came from (the server logs it at start, never the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    Configured,
    Generated,
    Stored,
}

impl LinkKey {
    /// A key of its own, for a state that never met a database (unit tests).
    pub fn random() -> LinkKey {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        LinkKey(bytes)
    }

    /// The key derived from a configured secret (any text of at least
    /// `MIN_SECRET_LEN` bytes; it is hashed, so its alphabet does not matter).
    pub fn from_secret(secret: &str) -> Result<LinkKey, String> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "BEHALF_SECRET must be at least {MIN_SECRET_LEN} characters long (it has {})",
                secret.len()
            ));
        }
        let mut hasher = Sha256::new();
        hasher.update(b"behalf one-click link key v1\0");
        hasher.update(secret.as_bytes());
        Ok(LinkKey(hasher.finalize().into()))
    }

    /// The configured secret's key, or the one kept in the database (created there
    /// by the first instance to start; a concurrent start reads the winner's).
    pub async fn load_or_create(
        db: &Db,
        configured: Option<&str>,
        now: Millis,
    ) -> Result<(LinkKey, KeySource), String> {
        if let Some(secret) = configured {
            return Ok((LinkKey::from_secret(secret)?, KeySource::Configured));
        }
        let fresh = LinkKey::random();
        let stored: Result<(bool, Vec<u8>), sqlx::Error> = with_db!(db, pool => {
            async {
                let inserted = sqlx::query(
                    "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(LINK_KEY_NAME)
                .bind(&fresh.0[..])
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
                    == 1;
                let (value,): (Vec<u8>,) = sqlx::query_as("SELECT value FROM server_secrets WHERE name = $1")
                    .bind(LINK_KEY_NAME)
                    .fetch_one(pool)
                    .await?;
                Ok((inserted, value))
            }
            .await
        });
        let (inserted, value) = stored.map_err(|e| format!("cannot read the server secret: {e}"))?;
        let bytes: [u8; 32] = value
            .try_into()
            .map_err(|_| "the stored server secret is not 32 bytes long".to_string())?;
        let source = if inserted {
            KeySource::Generated
        } else {
            KeySource::Stored
        };
        Ok((LinkKey(bytes), source))
    }

    /// HMAC-SHA256 of `token` under this key: what is stored for a link.
    pub fn hash(&self, token: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_secrets_must_be_long_and_give_a_stable_key() {
        assert!(LinkKey::from_secret("short").is_err());
        let secret = "x".repeat(MIN_SECRET_LEN);
        let a = LinkKey::from_secret(&secret).unwrap();
        let b = LinkKey::from_secret(&secret).unwrap();
        assert_eq!(a.hash("token"), b.hash("token"));
        let other = LinkKey::from_secret(&"y".repeat(MIN_SECRET_LEN)).unwrap();
        assert_ne!(a.hash("token"), other.hash("token"));
    }

    #[test]
    fn the_hash_is_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        // HMAC pads a short key with zeros to the block size, so a zero-padded key
        // gives the same MAC as the short one.
        let mac = LinkKey(key).hash("what do ya want for nothing?");
        assert_eq!(mac[..8], [0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e]);
    }

    #[test]
    fn debug_never_shows_the_key() {
        assert_eq!(format!("{:?}", LinkKey::random()), "LinkKey([redacted])");
    }
}
