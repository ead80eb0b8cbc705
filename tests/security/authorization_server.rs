//! A hostile (or tampered-with) authorization server: a discovery document that names endpoints on
//! another origin or over plain HTTP, and answers too large to hold (declared, chunked, endless).
//! Every case asserts what Shroud answers, that nothing reached the upstream, and where credentials or
//! bodies went: the attacker's endpoint never gets Shroud's client credentials, and an oversize body is
//! cut off instead of read whole.

use crate::spa::{token_handler_config, Browser};
use crate::support::*;
use serde_json::{json, Map, Value};
use shroud::config::{Config, ResponseMode};
use shroud::server::Running;
use shroud_testkit::{EchoUpstream, FakeAs, Oversize, TokenSpec};
use std::time::{Duration, Instant};

/// 64 MiB: far more than any limit Shroud sets on an answer of the authorization server (1 MiB at most)
/// plus what loopback sockets buffer (a few MiB).
const HUGE: u64 = 64 * 1024 * 1024;

/// Discovery members `name = value`.
fn members(pairs: &[(&str, String)]) -> Map<String, Value> {
    pairs.iter().map(|(name, value)| (name.to_string(), json!(value))).collect()
}

/// Shroud (in `mode`, adjusted) in front of `idp` as it is now (its discovery document already tampered
/// with), and an echo upstream.
fn behind(idp: &FakeAs, mode: ResponseMode, adjust: impl FnOnce(Config) -> Config) -> (EchoUpstream, Running) {
    let api = EchoUpstream::start();
    let shroud = start(adjust(config(idp, &api, mode)));
    (api, shroud)
}

/// `GET /api/x` with `token`.
async fn call(shroud: &Running, token: &str) -> reqwest::Response {
    client().get(format!("{}/api/x", shroud.url())).bearer_auth(token).send().await.unwrap()
}

/// The answer for an authorization server that cannot be used: 503 `authorization_server_unavailable`.
async fn assert_unavailable(resp: reqwest::Response, case: &str) {
    assert_eq!(resp.status(), 503, "{case}");
    assert!(resp.headers().get("retry-after").is_some(), "{case}: Retry-After");
    assert_refusal(resp, 503, "authorization_server_unavailable", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_endpoints_on_another_origin_get_no_credentials_nor_tokens() {
    for (member, path) in [
        ("introspection_endpoint", "/introspect"),
        ("token_endpoint", "/token"),
        ("revocation_endpoint", "/revoke"),
        ("userinfo_endpoint", "/userinfo"),
    ] {
        let idp = FakeAs::start();
        let attacker = FakeAs::start();
        idp.set_discovery_members(members(&[(member, format!("{}{path}", attacker.url()))]));
        for server in [&idp, &attacker] {
            server.issue("token-7", TokenSpec::active("alice", "read", 300));
        }
        let (api, shroud) = behind(&idp, ResponseMode::Json, token_handler_config);
        assert_unavailable(call(&shroud, "token-7").await, member).await;
        assert_eq!(attacker.introspections(), 0, "{member}: Shroud's credentials never reached the attacker");
        assert_eq!(idp.introspections(), 0, "{member}: nothing introspected on a refused document");
        assert_eq!(api.hits(), 0, "{member}: nothing forwarded");
        let ready = client().get(format!("{}/readyz", shroud.url())).send().await.unwrap();
        assert_eq!(ready.status(), 503, "{member}: not ready");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_endpoints_must_use_https_outside_loopback() {
    for member in [
        "introspection_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "authorization_endpoint",
        "end_session_endpoint",
    ] {
        let idp = FakeAs::start();
        idp.set_discovery_members(members(&[(member, "http://as.example/endpoint".into())]));
        idp.issue("token-8", TokenSpec::active("alice", "read", 300));
        let (api, shroud) = behind(&idp, ResponseMode::Json, token_handler_config);
        assert_unavailable(call(&shroud, "token-8").await, member).await;
        assert_eq!(idp.introspections(), 0, "{member}");
        assert_eq!(api.hits(), 0, "{member}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_that_receive_nothing_from_shroud_may_live_elsewhere_over_https() {
    let idp = FakeAs::start();
    idp.set_discovery_members(members(&[
        ("authorization_endpoint", "https://login.example/authorize".into()),
        ("end_session_endpoint", "http://localhost:1/logout".into()),
        ("jwks_uri", "https://keys.example/jwks".into()),
    ]));
    idp.issue("token-9", TokenSpec::active("alice", "read", 300));
    let (api, shroud) = behind(&idp, ResponseMode::Json, |c| c);
    assert_eq!(call(&shroud, "token-9").await.status(), 200);
    assert_eq!(api.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_endpoints_are_trusted_as_written() {
    let idp = FakeAs::start();
    let elsewhere = FakeAs::start();
    let introspection = format!("{}/introspect", elsewhere.url());
    idp.set_discovery_members(members(&[("introspection_endpoint", introspection.clone())]));
    elsewhere.issue("token-10", TokenSpec::active("alice", "read", 300));
    let (api, shroud) = behind(&idp, ResponseMode::Json, |mut c| {
        c.issuer.introspection_endpoint = Some(introspection);
        c
    });
    assert_eq!(call(&shroud, "token-10").await.status(), 200);
    assert_eq!(elsewhere.introspections(), 1, "the configured endpoint was used");
    assert_eq!(api.hits(), 1);
}

/// Asserts that the fake AS stopped streaming well before it could have sent everything: what one answer
/// handed to its connection is bounded by Shroud's limit plus what the sockets buffer.
fn assert_cut_off(idp: &FakeAs, case: &str) {
    let sent = idp.oversize_bytes_sent();
    println!("{case}: at most {sent} bytes of one oversize answer were sent");
    assert!(sent < HUGE / 2, "{case}: one answer sent {sent} bytes, so Shroud kept reading");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_introspection_answers_are_cut_off() {
    for (case, answer) in [("declared", Oversize::declared(HUGE)), ("chunked", Oversize::chunked(HUGE))] {
        let idp = FakeAs::start();
        idp.issue("token-11", TokenSpec::active("alice", "read", 300));
        let (api, shroud) = behind(&idp, ResponseMode::Json, |c| c);
        idp.set_oversize("/introspect", Some(answer));
        assert_unavailable(call(&shroud, "token-11").await, case).await;
        assert_eq!(idp.introspections(), 1, "{case}");
        assert_eq!(api.hits(), 0, "{case}: nothing forwarded");
        assert_cut_off(&idp, case);
        idp.set_oversize("/introspect", None);
        assert_eq!(call(&shroud, "token-11").await.status(), 200, "{case}: the failure was not cached");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_introspection_answer_is_cut_off_at_once() {
    let idp = FakeAs::start();
    idp.issue("token-12", TokenSpec::active("alice", "read", 300));
    let (api, shroud) = behind(&idp, ResponseMode::Json, |mut c| {
        c.introspection.timeout_ms = 20_000;
        c
    });
    idp.set_oversize("/introspect", Some(Oversize::endless()));
    let started = Instant::now();
    assert_unavailable(call(&shroud, "token-12").await, "endless").await;
    assert!(started.elapsed() < Duration::from_secs(10), "cut off, not read until the timeout");
    assert_eq!(api.hits(), 0);
    assert_cut_off(&idp, "endless");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_discovery_documents_and_key_sets_are_refused() {
    for (path, answer) in [
        ("/.well-known/openid-configuration", Oversize::chunked(HUGE)),
        ("/jwks", Oversize::declared(HUGE)),
        ("/jwks", Oversize::endless()),
    ] {
        let idp = FakeAs::start();
        idp.issue("token-13", TokenSpec::active("alice", "read", 300));
        idp.set_oversize(path, Some(answer));
        let (api, shroud) = behind(&idp, ResponseMode::Rfc9701, |mut c| {
            c.introspection.timeout_ms = 20_000;
            c
        });
        let case = format!("{path} {answer:?}");
        assert_unavailable(call(&shroud, "token-13").await, &case).await;
        assert_eq!(idp.introspections(), 0, "{case}");
        assert_eq!(api.hits(), 0, "{case}");
        assert_cut_off(&idp, &case);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_token_and_userinfo_answers_fail_the_agent_call() {
    let idp = FakeAs::start();
    let (api, shroud) = behind(&idp, ResponseMode::Rfc9701, token_handler_config);
    let mut browser = Browser::new(&shroud.url());
    let callback = browser.start_login().await;
    idp.set_oversize("/token", Some(Oversize::chunked(HUGE)));
    let resp = browser.end_login(&callback).await;
    assert_eq!(resp.status(), 502, "login/end");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "authorization_server_error");
    assert!(!browser.cookies.contains_key("shroud-at"), "no session from an oversize answer");
    assert_cut_off(&idp, "token");

    idp.set_oversize("/token", None);
    browser.login().await;
    idp.set_oversize("/userinfo", Some(Oversize::endless()));
    let resp = browser.send(reqwest::Method::GET, "/oauth-agent/userInfo", None).await;
    assert_eq!(resp.status(), 502, "userInfo");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "authorization_server_error");
    assert_cut_off(&idp, "userinfo");
    assert_eq!(api.hits(), 0);
}
