//! The three introspection modes, end to end: an opaque token in, a verifiable JWT at the upstream.

use crate::support::*;
use shroud::config::{AuthMethod, ResponseMode};
use shroud_testkit::TokenSpec;

async fn phantom_jwt_reaches_upstream(mode: ResponseMode) {
    let env = Env::new(mode);
    let mut spec = TokenSpec::active("alice", "read write", 3600);
    spec.aud = Some(serde_json::json!(["orders-api"]));
    spec.extra.insert("roles".into(), serde_json::json!(["admin"]));
    env.idp.issue("opaque-1", spec);
    let resp = env.get("/api/orders?x=1", Some("opaque-1")).await;
    assert_eq!(resp.status(), 200);
    let jwt = forwarded_jwt(&env.api);
    assert_ne!(jwt, "opaque-1", "the opaque token never reaches the API");
    let jwks: serde_json::Value =
        env.http.get(format!("{}/.well-known/jwks.json", env.shroud.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(verify_against(&jwt, &jwks).as_deref(), Some("at+jwt"), "phantom JWT verifies against Shroud's JWKS");
    assert_eq!(verify_against(&jwt, &env.idp.public_jwks()), None, "and not against the AS's keys");
    let claims = claims_of(&jwt);
    assert_eq!(claims["iss"], "https://shroud.local");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["scope"], "read write");
    assert_eq!(claims["client_id"], "client-1");
    assert_eq!(claims["aud"], serde_json::json!(["orders-api"]));
    assert_eq!(claims["roles"], serde_json::json!(["admin"]));
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
    assert_eq!(exp - iat, 300, "exp = now + phantom.max_ttl_seconds when the token lives longer");
    assert!(claims.get("active").is_none() && claims.get("token_type").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9701_mode_mints_a_phantom_jwt() {
    phantom_jwt_reaches_upstream(ResponseMode::Rfc9701).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_mode_mints_a_phantom_jwt() {
    phantom_jwt_reaches_upstream(ResponseMode::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_forwards_the_issuers_jwt() {
    let env = Env::new(ResponseMode::Jwt);
    env.token("opaque-2", "read");
    assert_eq!(env.get("/api/x", Some("opaque-2")).await.status(), 200);
    let jwt = forwarded_jwt(&env.api);
    assert_eq!(verify_against(&jwt, &env.idp.public_jwks()).as_deref(), Some("at+jwt"));
    assert_eq!(claims_of(&jwt)["iss"], env.idp.url());
    let record = env.idp.last_introspection().unwrap();
    assert_eq!(record.accept, "application/jwt");
    assert_eq!(record.auth_method, "client_secret_basic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modes_send_their_accept_header_and_never_forward_the_introspection_jwt() {
    let env = Env::new(ResponseMode::Rfc9701);
    env.token("opaque-3", "read");
    assert_eq!(env.get("/api/x", Some("opaque-3")).await.status(), 200);
    assert_eq!(env.idp.last_introspection().unwrap().accept, "application/token-introspection+jwt");
    let jwt = forwarded_jwt(&env.api);
    assert!(claims_of(&jwt).get("token_introspection").is_none());
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.introspection.auth_method = AuthMethod::ClientSecretPost;
        c
    });
    env.token("opaque-4", "read");
    assert_eq!(env.get("/api/x", Some("opaque-4")).await.status(), 200);
    let record = env.idp.last_introspection().unwrap();
    assert_eq!(record.accept, "application/json");
    assert_eq!(record.auth_method, "client_secret_post");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_tokens_bound_the_phantom_exp() {
    let env = Env::new(ResponseMode::Rfc9701);
    env.idp.issue("short", TokenSpec::active("bob", "read", 40));
    assert_eq!(env.get("/api/x", Some("short")).await.status(), 200);
    let claims = claims_of(&forwarded_jwt(&env.api));
    let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
    assert!(exp - iat <= 40 && exp - iat >= 38, "exp follows the token's exp ({})", exp - iat);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_without_exp_get_the_phantom_max_ttl() {
    let env = Env::new(ResponseMode::Json);
    let mut spec = TokenSpec::active("carol", "read", 0);
    spec.exp = None;
    env.idp.issue("no-exp", spec);
    assert_eq!(env.get("/api/x", Some("no-exp")).await.status(), 200);
    let claims = claims_of(&forwarded_jwt(&env.api));
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_discovery_is_the_fallback() {
    let idp = shroud_testkit::FakeAs::start_with(shroud_testkit::FakeAsOptions {
        discovery: shroud_testkit::Discovery::Oauth,
        ..Default::default()
    });
    let api = shroud_testkit::EchoUpstream::start();
    let shroud = start(config(&idp, &api, ResponseMode::Rfc9701));
    idp.issue("t", TokenSpec::active("a", "read", 300));
    let resp = client().get(format!("{}/api/x", shroud.url())).bearer_auth("t").send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_and_eddsa_issuers_verify() {
    for alg in ["RS256", "EdDSA"] {
        let idp = shroud_testkit::FakeAs::start_with(shroud_testkit::FakeAsOptions { alg, ..Default::default() });
        let api = shroud_testkit::EchoUpstream::start();
        for mode in [ResponseMode::Rfc9701, ResponseMode::Jwt] {
            let shroud = start(config(&idp, &api, mode));
            idp.issue("t", TokenSpec::active("a", "read", 300));
            let resp = client().get(format!("{}/api/x", shroud.url())).bearer_auth("t").send().await.unwrap();
            assert_eq!(resp.status(), 200, "{alg} {mode:?}");
        }
    }
}
