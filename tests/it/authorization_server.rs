//! What a real `shroud serve` logs when the authorization server's answers are refused: a tampered
//! discovery document names the endpoint it refused, and an oversize answer names its endpoint and the
//! limit.

use crate::cli::{base_config, served_config, Served};
use serde_json::json;
use shroud_testkit::{EchoUpstream, FakeAs, Oversize, TokenSpec};

/// Runs `shroud serve` in front of `idp`, sends one request with a token, and returns its status and
/// everything the process logged.
async fn one_request(idp: &FakeAs) -> (u16, String) {
    let api = EchoUpstream::start();
    let port = shroud_testkit::net::free_port();
    let served = Served::start(&served_config(&base_config(""), port, &idp.url(), &api.url()), port, "info").await;
    idp.issue("token-of-alice-0001", TokenSpec::active("alice", "read", 300));
    let resp = crate::support::client()
        .get(format!("{}/api/items", served.base))
        .bearer_auth("token-of-alice-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(api.hits(), 0, "nothing forwarded");
    (resp.status().as_u16(), served.logs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_discovery_document_is_logged_with_the_endpoint() {
    let idp = FakeAs::start();
    let members = json!({ "token_endpoint": "https://evil.example/token" });
    idp.set_discovery_members(members.as_object().unwrap().clone());
    let (status, logs) = one_request(&idp).await;
    assert_eq!(status, 503);
    assert!(
        logs.lines().any(|l| l.contains("ERROR")
            && l.contains("discovery document refused: token_endpoint https://evil.example/token")
            && l.contains("is not on the issuer's origin")),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_answer_is_logged_with_the_endpoint_and_the_limit() {
    let idp = FakeAs::start();
    idp.set_oversize("/introspect", Some(Oversize::chunked(8 * 1024 * 1024)));
    let (status, logs) = one_request(&idp).await;
    assert_eq!(status, 503);
    assert!(
        logs.lines().any(|l| l.contains("WARN")
            && l.contains("the authorization server's introspection_endpoint answer is larger than 262144 bytes")),
        "{logs}"
    );
    assert!(!logs.contains("token-of-alice-0001"), "no token in the logs");
}
