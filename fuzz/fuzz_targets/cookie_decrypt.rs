//! Token-handler cookie decryption (bound format): arbitrary cookie values never panic; any plaintext
//! encrypts and decrypts back exactly, also under a rotated key list; a flipped bit never decrypts.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use shroud::config::CookieFormat;
use shroud::token_handler::crypto::CookieCipher;
use std::sync::OnceLock;

/// The cookie name every value is bound to.
const N: &str = "shroud-at";

struct Ciphers {
    current: CookieCipher,
    rotated: CookieCipher,
    other: CookieCipher,
}

fn ciphers() -> &'static Ciphers {
    static CIPHERS: OnceLock<Ciphers> = OnceLock::new();
    CIPHERS.get_or_init(|| Ciphers {
        current: CookieCipher::new(&[[7; 32]], CookieFormat::Bound),
        rotated: CookieCipher::new(&[[9; 32], [7; 32]], CookieFormat::Bound),
        other: CookieCipher::new(&[[8; 32]], CookieFormat::Bound),
    })
}

fuzz_target!(|data: &[u8]| {
    let c = ciphers();
    let text = String::from_utf8_lossy(data);
    // An arbitrary cookie value, as a client may send it.
    let _ = c.current.decrypt(N, &text);
    let _ = c.rotated.decrypt(N, &text);

    // Round trip of an arbitrary plaintext.
    let sealed = c.current.encrypt(N, &text);
    assert_eq!(c.current.decrypt(N, &sealed).as_deref(), Some(text.as_ref()));
    assert_eq!(c.rotated.decrypt(N, &sealed).as_deref(), Some(text.as_ref()), "old keys still decrypt");
    assert_eq!(c.other.decrypt(N, &sealed), None, "another key never decrypts");

    // One flipped bit, chosen by the input, never decrypts.
    let mut raw = URL_SAFE_NO_PAD.decode(&sealed).expect("our own encoding");
    let bit = data.iter().fold(0usize, |acc, b| acc.wrapping_mul(31).wrapping_add(*b as usize)) % (raw.len() * 8);
    raw[bit / 8] ^= 1 << (bit % 8);
    assert_eq!(c.current.decrypt(N, &URL_SAFE_NO_PAD.encode(&raw)), None, "a tampered cookie decrypted");
});
