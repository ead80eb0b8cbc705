//! What a client controls in a request's head: `Authorization` (RFC 6750 bearer parsing), `Cookie` (the
//! token handler's cookies, and the other cookies forwarded without them), `Origin`, and the path (route
//! normalisation). Input: lines, each `a<value>` (Authorization), `c<value>` (Cookie), `o<value>` (Origin)
//! or `p<path>`. Nothing panics, and:
//! - an accepted bearer token is a non-empty RFC 6750 b64token of at most 4 KiB, and one header's worth;
//! - the `Cookie` value forwarded upstream never carries one of the token handler's (named) cookies;
//! - a normalised path is normalised already (normalising is idempotent), starts with `/` and has no dot
//!   segment.
#![no_main]

use actix_web::http::header::{HeaderMap, HeaderValue, AUTHORIZATION, COOKIE, ORIGIN};
use libfuzzer_sys::fuzz_target;
use shroud::pipeline::credential::{bearer, MAX_TOKEN_LEN};
use shroud::pipeline::route::normalize_path;
use shroud::token_handler::cookies::{CookieJar, Kind, ALL};
use shroud::token_handler::cors::Cors;
use shroud::token_handler::crypto::CookieCipher;
use std::sync::OnceLock;

struct Fixture {
    jar: CookieJar,
    cors: Cors,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let jar = CookieJar::new("shroud", "/oauth-agent", "", true, CookieCipher::new(&[[5; 32]]));
        let cors = Cors::new(&["https://app.example".to_string()], jar.csrf_header());
        Fixture { jar, cors }
    })
}

fn b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut headers = HeaderMap::new();
    let mut cookie_values = Vec::new();
    for line in data.split(|b| *b == b'\n') {
        let Some((&kind, value)) = line.split_first() else { continue };
        if kind == b'p' {
            if let Ok(path) = normalize_path(&String::from_utf8_lossy(value)) {
                assert!(path.starts_with('/'), "{path:?}");
                assert!(!path.split('/').any(|s| s == "." || s == ".."), "dot segment in {path:?}");
                assert_eq!(normalize_path(&path).as_deref(), Ok(path.as_str()), "not idempotent");
            }
            continue;
        }
        let Ok(value) = HeaderValue::from_bytes(value) else { continue };
        match kind {
            b'a' => headers.append(AUTHORIZATION, value),
            b'c' => {
                cookie_values.push(value.clone());
                headers.append(COOKIE, value)
            }
            b'o' => headers.append(ORIGIN, value),
            _ => {}
        }
    }

    if let Ok(credential) = bearer(&headers) {
        let token = credential.token().expect("a bearer credential has a token");
        assert!(token.len() <= MAX_TOKEN_LEN && b64token(token), "{token:?}");
        assert_eq!(headers.get_all(AUTHORIZATION).count(), 1, "one Authorization header");
    }
    for kind in ALL {
        let _ = f.jar.read(&headers, kind);
    }
    let _ = f.jar.raw(&headers, Kind::AccessToken);
    for value in &cookie_values {
        if let Some(kept) = value.to_str().ok().and_then(|v| f.jar.without_own(v)) {
            for pair in kept.split(';') {
                // A pair without `=` is a bare value (RFC 6265bis: a cookie with an empty name), never one of
                // the token handler's cookies, which always carry a value.
                if let Some((name, _)) = pair.split_once('=') {
                    assert!(!f.jar.owns(name.trim()), "{name:?} forwarded in {kept:?}");
                }
            }
        }
    }
    let _ = f.cors.check(&headers);
});
