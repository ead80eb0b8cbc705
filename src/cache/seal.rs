//! Cache keys and sealed values.
//!
//! - The key of a token is HMAC-SHA256(`key_secret`, token): the raw token is never a key, in memory or
//!   in Redis.
//! - A value stored in Redis is AES-256-GCM encrypted under a key derived by HKDF-SHA256 from the opaque
//!   token itself (salt: `key_secret`), with the cache key as associated data. A copy of Redis, even with
//!   `key_secret`, yields nothing usable without the token; an entry moved to another key fails to open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A cache key: HMAC-SHA256 of a token.
pub type CacheKey = [u8; 32];

const NONCE_LEN: usize = 12;
const HKDF_INFO: &[u8] = b"shroud cache value v1";

/// Derives cache keys and seals/opens cache values.
#[derive(Clone)]
pub struct Sealer {
    mac: Hmac<Sha256>,
    secret: [u8; 32],
}

impl Sealer {
    /// A sealer under `secret` (`cache.key_secret`).
    pub fn new(secret: [u8; 32]) -> Sealer {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret).expect("HMAC accepts any key length");
        Sealer { mac, secret }
    }

    /// A sealer under a random secret (memory-only deployments).
    pub fn random() -> Sealer {
        let mut secret = [0u8; 32];
        openssl::rand::rand_bytes(&mut secret).expect("the system CSPRNG is available");
        Sealer::new(secret)
    }

    /// The cache key of `token`.
    pub fn key(&self, token: &str) -> CacheKey {
        self.key_bytes(token.as_bytes())
    }

    /// The keyed hash of any identifier (what Redis sees instead of it).
    pub fn key_bytes(&self, value: &[u8]) -> CacheKey {
        let mut mac = self.mac.clone();
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    fn cipher(&self, token: &str) -> Aes256Gcm {
        let mut okm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&self.secret), token.as_bytes())
            .expand(HKDF_INFO, &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Aes256Gcm::new(&okm.into())
    }

    /// Encrypts `plaintext` for `token`, bound to `key`: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, token: &str, key: &CacheKey, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        openssl::rand::rand_bytes(&mut nonce).expect("the system CSPRNG is available");
        let sealed = self
            .cipher(token)
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: key })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a value sealed by [`Sealer::seal`] for the same token and key; `None` if it does not open.
    pub fn open(&self, token: &str, key: &CacheKey, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher(token).decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: key }).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_keyed_hashes() {
        let a = Sealer::new([1; 32]);
        let b = Sealer::new([2; 32]);
        assert_eq!(a.key("tok"), a.key("tok"));
        assert_ne!(a.key("tok"), a.key("tok2"));
        assert_ne!(a.key("tok"), b.key("tok"));
    }

    #[test]
    fn values_open_only_with_the_token_and_key() {
        let s = Sealer::new([7; 32]);
        let key = s.key("token-a");
        let sealed = s.seal("token-a", &key, b"payload");
        assert!(!sealed.windows(7).any(|w| w == b"payload"));
        assert_eq!(s.open("token-a", &key, &sealed).as_deref(), Some(&b"payload"[..]));
        assert_eq!(s.open("token-b", &key, &sealed), None);
        assert_eq!(s.open("token-a", &s.key("token-b"), &sealed), None);
        assert_eq!(Sealer::new([8; 32]).open("token-a", &key, &sealed), None);
        assert_eq!(s.open("token-a", &key, &sealed[..5]), None);
    }
}
