//! JWT/JWS parsing and verification (`shroud::jose`): arbitrary compact JWS text, arbitrary JWKS documents,
//! and arbitrary claims signed with the issuer's real key. Nothing panics; a JWT is only accepted when the
//! claims really satisfy the expectations (checked here independently of the code under test).
#![no_main]

use josekit::jws::alg::ecdsa::EcdsaJwsSigner;
use josekit::jws::{JwsHeader, ES256};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use shroud::jose::keys::KeySet;
use shroud::jose::verify::{verify, Expectations, TypRule};
use std::sync::OnceLock;

const ISSUER: &str = "https://as.example";
const NOW: u64 = 1_700_000_000;
const LEEWAY: u64 = 30;

struct Fixture {
    keys: KeySet,
    signer: EcdsaJwsSigner,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let pair = ES256.generate_key_pair().unwrap();
        let mut public = pair.to_jwk_public_key();
        public.set_key_id("k1");
        let keys = KeySet::from_jwks(format!("{{\"keys\":[{public}]}}").as_bytes()).unwrap();
        let mut private = pair.to_jwk_private_key();
        private.set_key_id("k1");
        let signer = ES256.signer_from_jwk(&private).unwrap();
        Fixture { keys, signer }
    })
}

const RULES: [TypRule; 4] =
    [TypRule::AccessToken, TypRule::IntrospectionResponse, TypRule::IdToken, TypRule::LogoutToken];

fn expectations(selector: u8) -> Expectations<'static> {
    Expectations {
        issuer: ISSUER,
        audience: (selector & 4 != 0).then_some("gateway"),
        typ: RULES[(selector & 3) as usize],
        require_exp: selector & 8 != 0,
        require_iat: selector & 16 != 0,
        leeway: LEEWAY,
        now: NOW,
    }
}

/// A numeric date claim, as the verifier reads it (`None` when absent or null).
fn date(claims: &serde_json::Map<String, Value>, name: &str) -> Option<u64> {
    claims.get(name).filter(|v| !v.is_null()).map(|v| v.as_f64().expect("accepted: numeric") as u64)
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let selector = data.first().copied().unwrap_or(0);
    let expect = expectations(selector);
    let body = data.get(1..).unwrap_or_default();

    // Arbitrary JWKS documents.
    let _ = KeySet::from_jwks(body);

    // Arbitrary compact JWS text, against the real key set.
    if let Ok(text) = std::str::from_utf8(body) {
        if let Ok(verified) = verify(text, &f.keys, &expect) {
            panic!("an unsigned input verified: {:?}", verified.claims);
        }
    }

    // Arbitrary claims bytes, signed with the issuer's key and a type chosen by the input.
    let mut header = JwsHeader::new();
    header.set_key_id("k1");
    match selector >> 5 {
        0 => {}
        1 => header.set_token_type("JWT"),
        2 => header.set_token_type("at+jwt"),
        3 => header.set_token_type("token-introspection+jwt"),
        4 => header.set_token_type("application/token-introspection+jwt"),
        5 => header.set_token_type("logout+jwt"),
        _ => header.set_token_type("Token-Introspection+JWT"),
    }
    let jws = josekit::jws::serialize_compact(body, &header, &f.signer).unwrap();
    if let Ok(verified) = verify(&jws, &f.keys, &expect) {
        let c = &verified.claims;
        assert_eq!(c.get("iss").and_then(Value::as_str), Some(ISSUER), "issuer");
        if let Some(aud) = expect.audience {
            let ok = match c.get("aud") {
                Some(Value::String(s)) => s == aud,
                Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(aud)),
                _ => false,
            };
            assert!(ok, "audience");
        }
        let typ = verified.header.token_type().map(|t| t.to_ascii_lowercase());
        let typ = typ.as_deref().map(|t| t.strip_prefix("application/").unwrap_or(t));
        match expect.typ {
            TypRule::IntrospectionResponse => assert_eq!(typ, Some("token-introspection+jwt")),
            _ => assert_ne!(typ, Some("token-introspection+jwt")),
        }
        match date(c, "exp") {
            Some(exp) => assert!(NOW < exp.saturating_add(LEEWAY), "expired"),
            None => assert!(!expect.require_exp, "exp required"),
        }
        if let Some(nbf) = date(c, "nbf") {
            assert!(nbf <= NOW + LEEWAY, "not yet valid");
        }
        match date(c, "iat") {
            Some(iat) => assert!(iat <= NOW + LEEWAY, "issued in the future"),
            None => assert!(!expect.require_iat, "iat required"),
        }
    }
});
