//! Session tokens: 256 random bits, sent to the browser once, stored only as a
//! SHA-256 hash (a stolen database does not yield a usable cookie).

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};

/// Length of an encoded token: 32 bytes in unpadded base64url.
pub const TOKEN_LEN: usize = 43;

/// A fresh token. Its `Debug` never prints the value.
pub struct Token(String);

impl Token {
    pub fn generate() -> Token {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Token(Base64UrlUnpadded::encode_string(&bytes))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> Vec<u8> {
        hash_token(&self.0)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `text` could be one of our tokens; anything else is not looked up.
pub fn is_well_formed(text: &str) -> bool {
    text.len() == TOKEN_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn tokens_carry_256_bits_and_are_well_formed() {
        let token = Token::generate();
        assert_eq!(token.expose().len(), TOKEN_LEN);
        assert!(is_well_formed(token.expose()));
        let decoded = Base64UrlUnpadded::decode_vec(token.expose()).unwrap();
        assert_eq!(decoded.len(), 32);
    }

    #[test]
    fn tokens_do_not_repeat() {
        let tokens: HashSet<String> = (0..1_000).map(|_| Token::generate().0).collect();
        assert_eq!(tokens.len(), 1_000);
    }

    #[test]
    fn the_stored_hash_is_sha256_and_not_the_token() {
        let token = Token::generate();
        let hash = token.hash();
        assert_eq!(hash.len(), 32);
        assert_ne!(hash, token.expose().as_bytes());
        assert_eq!(hash, hash_token(token.expose()));
        // A known vector: SHA-256("abc").
        assert_eq!(hash_token("abc")[..4], [0xba, 0x78, 0x16, 0xbf],);
    }

    #[test]
    fn malformed_tokens_are_recognised() {
        assert!(!is_well_formed(""));
        assert!(!is_well_formed(&"a".repeat(42)));
        assert!(!is_well_formed(&"a".repeat(44)));
        assert!(!is_well_formed(&format!("{}'", "a".repeat(42))));
        assert!(!is_well_formed(&format!("{}é", "a".repeat(41))));
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        assert_eq!(format!("{:?}", Token::generate()), "[redacted]");
    }
}
