//! Operational endpoints.

use crate::support::*;
use reqwest::Method;
use shroud::config::{CredentialKind, ResponseMode};
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
    let env = Env::with(ResponseMode::Rfc9701, with_admin);
    let health = env.http.get(format!("{}/healthz", env.shroud.url())).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = wait_ready(&env).await;
    assert_eq!(ready["checks"]["discovery"], true);
    assert_eq!(ready["checks"]["jwks"], true);
    assert_eq!(ready["checks"]["redis"], "not configured");
    env.token("t", "read");
    assert_eq!(env.get("/api/x", Some("t")).await.status(), 200);
    assert_eq!(env.get("/api/x", None).await.status(), 401);
    let admin = env.shroud.admin_addr.unwrap();
    let metrics = env.http.get(format!("http://{admin}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200, "no admin token needed to scrape");
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

/// `GET {base}/metrics`.
async fn get_metrics(http: &reqwest::Client, base: &str) -> reqwest::Response {
    http.get(format!("{base}/metrics")).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_the_admin_listener_not_the_main_one() {
    // Without an admin listener the metrics are served nowhere: `/metrics` is an ordinary path.
    let plain = Env::new(ResponseMode::Json);
    assert_refusal(plain.get("/metrics", None).await, 404, "not_found", None).await;
    assert!(plain.shroud.admin_addr.is_none());

    // With one, there (no admin token needed, every other method 405), and still not on the main listener,
    // where a catch-all route gets `/metrics` like any other path.
    let env = Env::with(ResponseMode::Json, |mut c| {
        let mut everything = route("/", &c.routes[0].upstream, &[]);
        everything.credentials = CredentialKind::None;
        c.routes.push(everything);
        with_admin(c)
    });
    let admin = format!("http://{}", env.shroud.admin_addr.unwrap());
    let scraped = get_metrics(&env.http, &admin).await;
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains("shroud_requests_total"));
    let resp = env.http.post(format!("{admin}/metrics")).send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "GET");
    assert_refusal(resp, 405, "method_not_allowed", None).await;
    let routed = get_metrics(&env.http, &env.shroud.url()).await;
    assert_eq!(routed.status(), 200);
    assert!(!routed.text().await.unwrap().contains("shroud_requests_total"), "the upstream's answer");
    assert_eq!(env.api.last().expect("routed upstream").path, "/metrics");
    assert_eq!(env.api.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shroud_serve_says_when_it_serves_the_metrics_nowhere() {
    use crate::cli::{base_config, served_config, Served};
    let idp = shroud_testkit::FakeAs::start();
    let api = shroud_testkit::EchoUpstream::start();
    let port = shroud_testkit::net::free_port();
    let served = Served::start(&served_config(&base_config(""), port, &idp.url(), &api.url()), port, "info").await;
    let resp = client().get(format!("{}/metrics", served.base)).send().await.unwrap();
    assert_refusal(resp, 404, "not_found", None).await;
    let logs = served.logs();
    assert!(
        logs.lines().any(|l| l.contains("WARN") && l.contains("/metrics is not served: set admin.listen")),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_metrics_serves_them_on_the_main_listener_too() {
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.server.public_metrics = true;
        with_admin(c)
    });
    for base in [env.shroud.url(), format!("http://{}", env.shroud.admin_addr.unwrap())] {
        let resp = get_metrics(&env.http, &base).await;
        assert_eq!(resp.status(), 200, "{base}");
        assert!(resp.text().await.unwrap().contains("shroud_requests_total"), "{base}");
    }
    let resp = env.http.delete(format!("{}/metrics", env.shroud.url())).send().await.unwrap();
    assert_refusal(resp, 405, "method_not_allowed", None).await;
    assert_eq!(env.api.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_publishes_no_keys_of_its_own() {
    let env = Env::new(ResponseMode::Jwt);
    let jwks: serde_json::Value =
        env.http.get(format!("{}/.well-known/jwks.json", env.shroud.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"], serde_json::json!([]));
}

/// The methods `openapi.yaml` documents for each path served on the main listener (the admin API has a
/// `servers` entry of its own), uppercased.
fn documented_operations(doc: &serde_norway::Value) -> Vec<(String, Vec<String>)> {
    let paths = doc["paths"].as_mapping().expect("paths");
    paths
        .iter()
        .filter(|(_, item)| item.get("servers").is_none())
        .map(|(path, item)| {
            let methods = item.as_mapping().unwrap().keys().map(|m| m.as_str().unwrap().to_uppercase()).collect();
            (path.as_str().unwrap().to_string(), methods)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_served_only_when_enabled() {
    let off = Env::new(ResponseMode::Rfc9701);
    assert_refusal(off.get("/.well-known/openapi.yaml", None).await, 404, "not_found", None).await;

    let on = Env::with(ResponseMode::Rfc9701, |c| {
        let mut c = crate::spa::token_handler_config(c);
        c.server.openapi = true;
        c
    });
    let resp = on.get("/.well-known/openapi.yaml", None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/yaml");
    let text = resp.text().await.unwrap();
    assert_eq!(text, shroud::ops::OPENAPI_YAML, "the embedded document is served as is");
    let doc: serde_norway::Value = serde_norway::from_str(&text).expect("openapi.yaml is YAML");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "an OpenAPI 3 document");
    assert_eq!(doc["info"]["version"].as_str(), Some(env!("CARGO_PKG_VERSION")), "the crate's version");
    assert!(doc["paths"].get("/purge").is_some() && doc["paths"].get("/stats").is_some(), "the admin API");

    // Every documented operation of the main listener is routed, and every other method is 405 with
    // exactly the documented methods in `Allow`.
    let operations = documented_operations(&doc);
    assert!(operations.len() >= 11, "{operations:?}");
    for (path, methods) in operations {
        let url = format!("{}{path}", on.shroud.url());
        for method in &methods {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let resp = on.http.request(method.clone(), &url).send().await.unwrap();
            assert!(![404, 405].contains(&resp.status().as_u16()), "{method} {path} is routed: {}", resp.status());
        }
        let resp = on.http.request(Method::PATCH, &url).send().await.unwrap();
        assert_eq!(resp.status(), 405, "PATCH {path}");
        let mut allowed: Vec<String> =
            resp.headers()["allow"].to_str().unwrap().split(", ").map(str::to_string).collect();
        allowed.sort();
        let mut documented = methods.clone();
        documented.sort();
        assert_eq!(allowed, documented, "Allow of {path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "method_not_allowed", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_paths_never_fall_through_to_a_catch_all_route() {
    let env = Env::with(ResponseMode::Rfc9701, |mut c| {
        let mut everything = route("/", &c.routes[0].upstream, &[]);
        everything.credentials = CredentialKind::None;
        c.routes.push(everything);
        c
    });
    for path in ["/healthz", "/readyz", "/.well-known/jwks.json"] {
        for method in [Method::POST, Method::DELETE, Method::OPTIONS] {
            let resp = env.http.request(method.clone(), format!("{}{path}", env.shroud.url())).send().await.unwrap();
            assert_eq!(resp.headers()["allow"], "GET", "{method} {path}");
            assert_refusal(resp, 405, "method_not_allowed", None).await;
        }
    }
    assert_eq!(env.api.hits(), 0, "nothing reached the upstream");
    // The OpenAPI path is not Shroud's while it is off: it is routed like any other.
    assert_eq!(env.get("/.well-known/openapi.yaml", None).await.status(), 200);
    assert_eq!(env.api.hits(), 1);
}
