//! RFC 6750 credential handling: every refusal's status, JSON body and challenge, and nothing forwarded.

use crate::support::*;
use shroud::config::ResponseMode;

async fn send_raw(env: &Env, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = env.http.get(format!("{}/api/x", env.shroud.url()));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_foreign_credentials_are_401_without_error_code() {
    let env = Env::new(ResponseMode::Rfc9701);
    assert_refusal(send_raw(&env, &[]).await, 401, "unauthorized", Some("Bearer realm=\"shroud\"")).await;
    let basic = send_raw(&env, &[("authorization", "Basic dXNlcjpwYXNz")]).await;
    let challenge = basic.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert_eq!(challenge, "Bearer realm=\"shroud\"", "no error code (RFC 6750 §3.1)");
    assert_refusal(basic, 401, "unauthorized", Some("Bearer realm")).await;
    assert_eq!(env.api.hits(), 0);
    assert_eq!(env.idp.introspections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bearer_credentials_are_400_invalid_request() {
    let env = Env::new(ResponseMode::Rfc9701);
    let long = format!("Bearer {}", "a".repeat(4097));
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("authorization", "Bearer")],
        vec![("authorization", "Bearer a b")],
        vec![("authorization", "Bearer tok@en")],
        vec![("authorization", "Bearer =abc")],
        vec![("authorization", &long)],
        vec![("authorization", "Bearer a"), ("authorization", "Bearer b")],
    ];
    for headers in cases {
        let resp = send_raw(&env, &headers).await;
        assert_refusal(resp, 400, "invalid_request", Some("Bearer realm=\"shroud\", error=\"invalid_request\"")).await;
    }
    assert_eq!(env.api.hits(), 0, "nothing reached the upstream");
    assert_eq!(env.idp.introspections(), 0, "nothing was introspected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_allowed_token_is_introspected() {
    let env = Env::new(ResponseMode::Rfc9701);
    let token = "a".repeat(4096);
    env.token(&token, "read");
    assert_eq!(env.get("/api/x", Some(&token)).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_and_unknown_tokens_are_401_invalid_token() {
    let env = Env::new(ResponseMode::Rfc9701);
    env.token("revoked", "read");
    env.idp.revoke("revoked");
    for token in ["revoked", "never-issued"] {
        let resp = env.get("/api/x", Some(token)).await;
        assert_refusal(resp, 401, "invalid_token", Some("Bearer realm=\"shroud\", error=\"invalid_token\"")).await;
    }
    assert_eq!(env.api.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_scope_is_403_insufficient_scope() {
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.routes.push(route("/admin", &c.routes[0].upstream.clone(), &["read", "admin"]));
        c
    });
    env.token("reader", "read");
    let resp = env.get("/admin/users", Some("reader")).await;
    assert_refusal(
        resp,
        403,
        "insufficient_scope",
        Some("Bearer realm=\"shroud\", error=\"insufficient_scope\", scope=\"read admin\""),
    )
    .await;
    assert_eq!(env.api.hits(), 0);
    assert_eq!(env.get("/api/users", Some("reader")).await.status(), 200);
}
