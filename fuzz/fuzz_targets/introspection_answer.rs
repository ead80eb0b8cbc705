//! Introspection answers in the three modes (`shroud::introspection::answer::interpret`) and the
//! `Cache-Control` header they come with: arbitrary bodies and statuses, and arbitrary claims inside
//! answers signed with the issuer's real key. Nothing panics, and an answer only counts as active when it
//! says so exactly (`active: true` with an accepted `token_type`, or a verified access-token JWT in `jwt` mode).
#![no_main]

use josekit::jws::alg::ecdsa::EcdsaJwsSigner;
use josekit::jws::{JwsHeader, ES256};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use shroud::config::ResponseMode;
use shroud::introspection::answer::{interpret, Context, Introspected};
use shroud::introspection::client::{max_age, RawAnswer};
use shroud::jose::keys::KeySet;
use std::sync::OnceLock;

const ISSUER: &str = "https://as.example";
const NOW: u64 = 1_700_000_000;

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
        Fixture { keys, signer: ES256.signer_from_jwk(&private).unwrap() }
    })
}

fn raw(status: u16, body: &[u8]) -> RawAnswer {
    RawAnswer { status, content_type: String::new(), max_age: None, body: bytes::Bytes::copy_from_slice(body) }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let selector = data.first().copied().unwrap_or(0);
    let body = data.get(1..).unwrap_or_default();
    let mode = [ResponseMode::Json, ResponseMode::Rfc9701, ResponseMode::Jwt][(selector % 3) as usize];
    let status = if selector & 4 != 0 { 204 } else { 200 };
    let token_types = ["bearer".to_string(), "dpop".to_string()];
    let ctx = Context { mode, issuer: ISSUER, client_id: "gateway", leeway: 30, now: NOW, token_types: &token_types };

    // The Cache-Control header of the answer.
    let _ = max_age(&String::from_utf8_lossy(body));

    // An arbitrary answer as it came off the wire.
    if let Ok(Introspected::Active { claims, .. }) = interpret(&raw(status, body), &f.keys, &ctx) {
        assert_eq!(mode, ResponseMode::Json, "only JSON can be active unsigned");
        assert_eq!(claims.get("active"), Some(&Value::Bool(true)), "active must be exactly true");
        let token_type = claims.get("token_type").or_else(|| claims.get("typ")).and_then(Value::as_str);
        let hydra = claims.get("token_use").and_then(Value::as_str) == Some("access_token");
        assert!(
            token_type.is_some_and(|t| token_types.contains(&t.to_ascii_lowercase())) || hydra,
            "an active answer shows an access token"
        );
    }

    // Arbitrary claims inside a signed answer: an RFC 9701 response, or an access-token JWT.
    let mut header = JwsHeader::new();
    header.set_key_id("k1");
    let signed_mode = if selector & 8 != 0 { ResponseMode::Jwt } else { ResponseMode::Rfc9701 };
    header.set_token_type(if signed_mode == ResponseMode::Jwt { "at+jwt" } else { "token-introspection+jwt" });
    let jws = josekit::jws::serialize_compact(body, &header, &f.signer).unwrap();
    let ctx = Context { mode: signed_mode, ..ctx };
    let outcome = interpret(&raw(200, jws.as_bytes()), &f.keys, &ctx);
    let sent: Option<serde_json::Map<String, Value>> = serde_json::from_slice(body).ok();
    match (signed_mode, outcome) {
        (ResponseMode::Rfc9701, Ok(Introspected::Active { claims, jwt })) => {
            let sent = sent.expect("accepted: a JSON object");
            assert_eq!(sent.get("token_introspection"), Some(&Value::Object(claims.clone())));
            assert_eq!(claims.get("active"), Some(&Value::Bool(true)));
            assert_eq!(
                sent.get("aud").and_then(Value::as_str).or_else(|| None),
                sent.get("aud").and_then(Value::as_str)
            );
            assert!(jwt.is_none(), "an RFC 9701 answer is never forwarded");
        }
        (ResponseMode::Rfc9701, Ok(Introspected::Inactive)) => {
            let sent = sent.expect("accepted: a JSON object");
            assert_eq!(sent["token_introspection"]["active"], Value::Bool(false));
        }
        (ResponseMode::Jwt, Ok(Introspected::Active { claims, jwt })) => {
            assert_eq!(jwt.as_deref(), Some(jws.as_str()), "the verified JWT is what is forwarded");
            assert_eq!(claims.get("iss").and_then(Value::as_str), Some(ISSUER));
            assert!(claims.get("exp").is_some_and(Value::is_number), "jwt mode requires exp");
        }
        (ResponseMode::Jwt, Ok(Introspected::Inactive)) => panic!("a signed JWT answer read as inactive"),
        _ => {}
    }
});
