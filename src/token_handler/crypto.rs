//! Cookie encryption: `base64url-no-padding(version ‖ 12-byte random IV ‖ AES-256-GCM ciphertext ‖ 16-byte tag)`.
//!
//! Two formats ([`CookieFormat`]):
//! - **bound** (version `0x02`, the default): the cookie's name is the AEAD's associated data, so a value
//!   only decrypts under the name it was issued for: a refresh-token cookie moved into the access-token
//!   cookie, or the CSRF cookie moved anywhere, does not decrypt.
//! - **Curity v1** (version `0x01`, no associated data): byte-compatible with Curity's token handler, for
//!   deployments that share cookies with it. A moved value decrypts; only the checks on its content stop it.
//!
//! A cipher reads only its own format: switching formats logs every session out once.
//! The first configured key encrypts; every configured key is tried to decrypt, so keys can be rotated
//! without logging anyone out. Anything that does not decrypt under any key is rejected.

use crate::config::CookieFormat;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;

impl CookieFormat {
    fn version(self) -> u8 {
        match self {
            CookieFormat::CurityV1 => 1,
            CookieFormat::Bound => 2,
        }
    }

    /// The associated data of a cookie named `name`.
    fn aad(self, name: &str) -> &[u8] {
        match self {
            CookieFormat::CurityV1 => b"",
            CookieFormat::Bound => name.as_bytes(),
        }
    }
}

/// Encrypts and decrypts cookie values.
#[derive(Clone)]
pub struct CookieCipher {
    keys: Vec<Aes256Gcm>,
    format: CookieFormat,
}

impl CookieCipher {
    /// A cipher over `keys`, the first of which encrypts, writing and reading `format`. There must be at
    /// least one key.
    pub fn new(keys: &[[u8; 32]], format: CookieFormat) -> CookieCipher {
        assert!(!keys.is_empty(), "validated: at least one cookie key");
        CookieCipher { keys: keys.iter().map(|k| Aes256Gcm::new(k.into())).collect(), format }
    }

    /// Encrypts `plaintext` under the current key, for the cookie named `name`.
    pub fn encrypt(&self, name: &str, plaintext: &str) -> String {
        let mut iv = [0u8; IV_LEN];
        openssl::rand::rand_bytes(&mut iv).expect("the system CSPRNG is available");
        let payload = Payload { msg: plaintext.as_bytes(), aad: self.format.aad(name) };
        let sealed = self.keys[0]
            .encrypt(Nonce::from_slice(&iv), payload)
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut raw = Vec::with_capacity(1 + IV_LEN + sealed.len());
        raw.push(self.format.version());
        raw.extend_from_slice(&iv);
        raw.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Decrypts the value of the cookie named `name` under any configured key; `None` when it is
    /// malformed, of another format, tampered with, issued for another name (bound format), or encrypted
    /// under an unknown key.
    pub fn decrypt(&self, name: &str, value: &str) -> Option<String> {
        let raw = URL_SAFE_NO_PAD.decode(value.trim()).ok()?;
        if raw.len() < 1 + IV_LEN + TAG_LEN || raw[0] != self.format.version() {
            return None;
        }
        let (iv, sealed) = raw[1..].split_at(IV_LEN);
        let aad = self.format.aad(name);
        let plaintext =
            self.keys.iter().find_map(|key| key.decrypt(Nonce::from_slice(iv), Payload { msg: sealed, aad }).ok())?;
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
        #[serde(default)]
        name: String,
        plaintext: String,
        cookie: String,
    }

    fn key(hex_key: &str) -> [u8; 32] {
        hex::decode(hex_key).unwrap().try_into().unwrap()
    }

    fn bound(keys: &[[u8; 32]]) -> CookieCipher {
        CookieCipher::new(keys, CookieFormat::Bound)
    }

    #[test]
    fn decrypts_values_made_by_an_independent_implementation() {
        let kat: Kat = serde_json::from_str(include_str!("../../tests/fixtures/cookie_kat.json")).unwrap();
        let cipher = CookieCipher::new(&[key(&kat.key_hex)], CookieFormat::CurityV1);
        for v in &kat.vectors {
            for name in ["shroud-at", "any-name"] {
                assert_eq!(cipher.decrypt(name, &v.cookie).as_deref(), Some(v.plaintext.as_str()));
            }
            assert_eq!(bound(&[key(&kat.key_hex)]).decrypt("shroud-at", &v.cookie), None, "v1 is not read as bound");
        }
    }

    #[test]
    fn decrypts_bound_values_made_by_an_independent_implementation() {
        let kat: Kat = serde_json::from_str(include_str!("../../tests/fixtures/cookie_kat_bound.json")).unwrap();
        let cipher = bound(&[key(&kat.key_hex)]);
        for v in &kat.vectors {
            assert_eq!(cipher.decrypt(&v.name, &v.cookie).as_deref(), Some(v.plaintext.as_str()), "{}", v.name);
            assert_eq!(cipher.decrypt("shroud-other", &v.cookie), None, "bound to {}", v.name);
        }
    }

    #[test]
    fn curity_v1_round_trips_without_binding() {
        let v1 = CookieCipher::new(&[[4; 32]], CookieFormat::CurityV1);
        let value = v1.encrypt("shroud-auth", "token");
        assert_eq!(URL_SAFE_NO_PAD.decode(&value).unwrap()[0], 1, "version byte 1");
        assert_eq!(v1.decrypt("shroud-at", &value).as_deref(), Some("token"), "v1 has no associated data");
        assert_eq!(bound(&[[4; 32]]).decrypt("shroud-auth", &value), None, "bound does not read v1");
    }

    #[test]
    fn bound_values_decrypt_only_under_their_name() {
        let cipher = bound(&[[5; 32]]);
        let value = cipher.encrypt("shroud-auth", "refresh-token");
        assert_eq!(URL_SAFE_NO_PAD.decode(&value).unwrap()[0], 2, "version byte 2");
        assert_eq!(cipher.decrypt("shroud-auth", &value).as_deref(), Some("refresh-token"));
        for other in ["shroud-at", "shroud-id", "shroud-csrf", "__Host-shroud-auth", ""] {
            assert_eq!(cipher.decrypt(other, &value), None, "{other}");
        }
        let v1 = CookieCipher::new(&[[5; 32]], CookieFormat::CurityV1);
        assert_eq!(v1.decrypt("shroud-auth", &value), None, "v1 does not read bound values");
    }

    #[test]
    fn round_trips_and_rotates() {
        let old = bound(&[[1; 32]]);
        let rotated = bound(&[[2; 32], [1; 32]]);
        let from_old = old.encrypt("n", "token");
        assert_eq!(rotated.decrypt("n", &from_old).as_deref(), Some("token"), "old keys still decrypt");
        let from_new = rotated.encrypt("n", "token");
        assert_eq!(old.decrypt("n", &from_new), None, "new cookies use the new key");
        assert_eq!(bound(&[[2; 32]]).decrypt("n", &from_new).as_deref(), Some("token"));
        assert_ne!(rotated.encrypt("n", "token"), from_new, "fresh IV each time");
    }

    #[test]
    fn any_tampering_is_rejected() {
        for format in [CookieFormat::Bound, CookieFormat::CurityV1] {
            let cipher = CookieCipher::new(&[[3; 32]], format);
            let good = cipher.encrypt("n", "secret-token");
            let raw = URL_SAFE_NO_PAD.decode(&good).unwrap();
            for bit in 0..raw.len() * 8 {
                let mut flipped = raw.clone();
                flipped[bit / 8] ^= 1 << (bit % 8);
                assert_eq!(cipher.decrypt("n", &URL_SAFE_NO_PAD.encode(&flipped)), None, "bit {bit}");
            }
            assert_eq!(cipher.decrypt("n", &good[..good.len() - 2]), None, "truncated");
            assert_eq!(cipher.decrypt("n", "not base64 !"), None);
            let mut v3 = raw.clone();
            v3[0] = 3;
            assert_eq!(cipher.decrypt("n", &URL_SAFE_NO_PAD.encode(&v3)), None, "unknown version");
        }
    }
}
