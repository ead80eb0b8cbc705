//! Operational endpoints.

use crate::support::*;
use shroud::config::ResponseMode;
use std::time::Duration;

async fn wait_ready(env: &Env) -> serde_json::Value {
    for _ in 0..50 {
        let resp = env.http.get(format!("{}/readyz", env.shroud.url())).send().await.unwrap();
        if resp.status() == 200 {
            return resp.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_jwks() {
    let env = Env::new(ResponseMode::Rfc9701);
    let health = env.http.get(format!("{}/healthz", env.shroud.url())).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = wait_ready(&env).await;
    assert_eq!(ready["checks"]["discovery"], true);
    assert_eq!(ready["checks"]["jwks"], true);
    assert_eq!(ready["checks"]["redis"], "not configured");
    env.token("t", "read");
    assert_eq!(env.get("/api/x", Some("t")).await.status(), 200);
    assert_eq!(env.get("/api/x", None).await.status(), 401);
    let metrics = env.http.get(format!("{}/metrics", env.shroud.url())).send().await.unwrap();
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    assert!(text.contains(r#"shroud_requests_total{route="/api",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"shroud_requests_total{route="/api",status="401"} 1"#), "{text}");
    assert!(text.contains("shroud_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains("shroud_introspection_duration_seconds_count 1"), "{text}");
    let jwks: serde_json::Value =
        env.http.get(format!("{}/.well-known/jwks.json", env.shroud.url())).send().await.unwrap().json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str(), key["use"].as_str()),
        (Some("EC"), Some("ES256"), Some("sig"))
    );
    assert!(key["kid"].as_str().is_some_and(|k| k.len() == 43), "RFC 7638 thumbprint kid");
    assert!(key.get("d").is_none(), "no private part");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_publishes_no_keys_of_its_own() {
    let env = Env::new(ResponseMode::Jwt);
    let jwks: serde_json::Value =
        env.http.get(format!("{}/.well-known/jwks.json", env.shroud.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"], serde_json::json!([]));
}
