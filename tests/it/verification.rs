//! Hostile or broken JWT answers from the authorization server, in the modes that verify JWTs.
//! `jwt` mode: the access token is unusable → 401 `invalid_token`. `rfc9701` mode: the answer addressed
//! to Shroud cannot be trusted → 502 `authorization_server_error`. Never forwarded either way.

use crate::support::*;
use shroud::config::ResponseMode;
use shroud_testkit::{Behaviour, Tamper};

async fn refused(mode: ResponseMode, tamper: Tamper, status: u16, code: &str) {
    let env = Env::new(mode);
    env.token("t", "read");
    env.idp.set_behaviour(Behaviour { tamper: tamper.clone(), ..Default::default() });
    let resp = env.get("/api/x", Some("t")).await;
    assert_eq!(resp.status().as_u16(), status, "{mode:?} {tamper:?}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], code, "{mode:?} {tamper:?}");
    assert_eq!(env.api.hits(), 0, "{mode:?} {tamper:?}: nothing forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_refuses_tampered_access_tokens() {
    for tamper in [
        Tamper::AlgNone,
        Tamper::WrongKey,
        Tamper::UnknownKid,
        Tamper::Hs256WithPublicKey,
        Tamper::Hs256WithJwkJson,
        Tamper::WrongIss,
        Tamper::Expired,
        Tamper::MissingExp,
        Tamper::NotYetValid,
        Tamper::BadSignature,
    ] {
        refused(ResponseMode::Jwt, tamper, 401, "invalid_token").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_jwt_mode_tokens_are_cached_as_inactive() {
    let env = Env::new(ResponseMode::Jwt);
    env.token("forged", "read");
    env.idp.set_behaviour(Behaviour { tamper: Tamper::BadSignature, ..Default::default() });
    for _ in 0..3 {
        let resp = env.get("/api/x", Some("forged")).await;
        assert_refusal(resp, 401, "invalid_token", Some("Bearer realm=\"shroud\", error=\"invalid_token\"")).await;
    }
    assert_eq!(env.idp.introspections(), 1, "a forged token floods nobody: cached for negative_ttl_seconds");
    assert_eq!(env.api.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9701_mode_refuses_untrustworthy_answers() {
    for tamper in [
        Tamper::AlgNone,
        Tamper::WrongKey,
        Tamper::UnknownKid,
        Tamper::Hs256WithPublicKey,
        Tamper::WrongIss,
        Tamper::WrongAud,
        Tamper::TypJwt,
        Tamper::FutureIat,
        Tamper::MissingIat,
        Tamper::ActiveString,
        Tamper::BadSignature,
    ] {
        refused(ResponseMode::Rfc9701, tamper, 502, "authorization_server_error").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_named_in_headers_are_ignored_and_genuine_tokens_pass() {
    for mode in [ResponseMode::Jwt, ResponseMode::Rfc9701] {
        for tamper in [Tamper::JkuHeader, Tamper::NoKid] {
            let env = Env::new(mode);
            env.token("t", "read");
            env.idp.set_behaviour(Behaviour { tamper: tamper.clone(), ..Default::default() });
            assert_eq!(env.get("/api/x", Some("t")).await.status(), 200, "{mode:?} {tamper:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_is_picked_up_on_unknown_kid_at_most_once_per_30s() {
    let env = Env::new(ResponseMode::Jwt);
    env.token("before", "read");
    assert_eq!(env.get("/api/x", Some("before")).await.status(), 200);
    assert_eq!(env.idp.jwks_fetches(), 1);
    env.idp.rotate_key();
    env.token("after", "read");
    assert_eq!(env.get("/api/x", Some("after")).await.status(), 200, "unknown kid → JWKS refreshed");
    assert_eq!(env.idp.jwks_fetches(), 2);
    env.idp.rotate_key();
    env.token("third", "read");
    let resp = env.get("/api/x", Some("third")).await;
    assert_refusal(resp, 401, "invalid_token", Some("Bearer realm=\"shroud\", error=\"invalid_token\"")).await;
    assert_eq!(env.idp.jwks_fetches(), 2, "no second refresh within 30 s");
}
