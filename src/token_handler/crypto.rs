//! Cookie encryption, byte-compatible with Curity's token-handler v1 format:
//! `base64url-no-padding(0x01 ‖ 12-byte random IV ‖ AES-256-GCM ciphertext ‖ 16-byte tag)`.
//!
//! The first configured key encrypts; every configured key is tried to decrypt, so keys can be rotated
//! without logging anyone out. Anything that does not decrypt under any key is rejected.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

const VERSION: u8 = 1;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Encrypts and decrypts cookie values.
#[derive(Clone)]
pub struct CookieCipher {
    keys: Vec<Aes256Gcm>,
}

impl CookieCipher {
    /// A cipher over `keys`, the first of which encrypts. There must be at least one.
    pub fn new(keys: &[[u8; 32]]) -> CookieCipher {
        assert!(!keys.is_empty(), "validated: at least one cookie key");
        CookieCipher { keys: keys.iter().map(|k| Aes256Gcm::new(k.into())).collect() }
    }

    /// Encrypts `plaintext` under the current key.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let mut iv = [0u8; IV_LEN];
        openssl::rand::rand_bytes(&mut iv).expect("the system CSPRNG is available");
        let sealed = self.keys[0]
            .encrypt(Nonce::from_slice(&iv), plaintext.as_bytes())
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut raw = Vec::with_capacity(1 + IV_LEN + sealed.len());
        raw.push(VERSION);
        raw.extend_from_slice(&iv);
        raw.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Decrypts a cookie value under any configured key; `None` when it is malformed, of another version,
    /// tampered with, or encrypted under an unknown key.
    pub fn decrypt(&self, value: &str) -> Option<String> {
        let raw = URL_SAFE_NO_PAD.decode(value.trim()).ok()?;
        if raw.len() < 1 + IV_LEN + TAG_LEN || raw[0] != VERSION {
            return None;
        }
        let (iv, sealed) = raw[1..].split_at(IV_LEN);
        let plaintext = self.keys.iter().find_map(|key| key.decrypt(Nonce::from_slice(iv), sealed).ok())?;
        String::from_utf8(plaintext).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Kat {
        key_hex: String,
        vectors: Vec<Vector>,
    }

    #[derive(serde::Deserialize)]
    struct Vector {
        plaintext: String,
        cookie: String,
    }

    fn key(hex_key: &str) -> [u8; 32] {
        hex::decode(hex_key).unwrap().try_into().unwrap()
    }

    #[test]
    fn decrypts_values_made_by_an_independent_implementation() {
        let kat: Kat = serde_json::from_str(include_str!("../../tests/fixtures/cookie_kat.json")).unwrap();
        let cipher = CookieCipher::new(&[key(&kat.key_hex)]);
        for v in &kat.vectors {
            assert_eq!(cipher.decrypt(&v.cookie).as_deref(), Some(v.plaintext.as_str()));
        }
    }

    #[test]
    fn round_trips_and_rotates() {
        let old = CookieCipher::new(&[[1; 32]]);
        let rotated = CookieCipher::new(&[[2; 32], [1; 32]]);
        let from_old = old.encrypt("token");
        assert_eq!(rotated.decrypt(&from_old).as_deref(), Some("token"), "old keys still decrypt");
        let from_new = rotated.encrypt("token");
        assert_eq!(old.decrypt(&from_new), None, "new cookies use the new key");
        assert_eq!(CookieCipher::new(&[[2; 32]]).decrypt(&from_new).as_deref(), Some("token"));
        assert_ne!(rotated.encrypt("token"), from_new, "fresh IV each time");
    }

    #[test]
    fn any_tampering_is_rejected() {
        let cipher = CookieCipher::new(&[[3; 32]]);
        let good = cipher.encrypt("secret-token");
        let raw = URL_SAFE_NO_PAD.decode(&good).unwrap();
        for bit in 0..raw.len() * 8 {
            let mut flipped = raw.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(cipher.decrypt(&URL_SAFE_NO_PAD.encode(&flipped)), None, "bit {bit}");
        }
        assert_eq!(cipher.decrypt(&good[..good.len() - 2]), None, "truncated");
        assert_eq!(cipher.decrypt("not base64 !"), None);
        let mut v2 = raw.clone();
        v2[0] = 2;
        assert_eq!(cipher.decrypt(&URL_SAFE_NO_PAD.encode(&v2)), None, "unknown version");
    }
}
