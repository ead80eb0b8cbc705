//! The in-process tier: hits, TTL bounds, negative caching, errors never cached, request coalescing.

use crate::support::*;
use shroud::config::ResponseMode;
use shroud_testkit::{Behaviour, TokenSpec};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_tokens_are_served_from_memory() {
    let env = Env::with(ResponseMode::Rfc9701, with_admin);
    env.token("t", "read");
    for _ in 0..5 {
        assert_eq!(env.get("/api/x", Some("t")).await.status(), 200);
    }
    assert_eq!(env.idp.introspections(), 1);
    assert_eq!(env.api.hits(), 5);
    let metrics = metrics(&env.shroud).await;
    assert!(metrics.contains(r#"shroud_cache_lookups_total{result="hit",tier="memory"} 4"#), "{metrics}");
    assert!(metrics.contains(r#"shroud_introspections_total{result="active"} 1"#), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_answers_are_cached_for_the_negative_ttl() {
    let env = Env::new(ResponseMode::Json);
    for _ in 0..3 {
        assert_eq!(env.get("/api/x", Some("bogus")).await.status(), 401);
    }
    assert_eq!(env.idp.introspections(), 1, "negative_ttl_seconds = 5 keeps the inactive answer");
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.cache.negative_ttl_seconds = 0;
        c
    });
    for _ in 0..3 {
        assert_eq!(env.get("/api/x", Some("bogus")).await.status(), 401);
    }
    assert_eq!(env.idp.introspections(), 3, "negative_ttl_seconds = 0 disables negative caching");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_of_the_introspection_answer_bounds_the_ttl() {
    let env = Env::new(ResponseMode::Rfc9701);
    env.idp.set_behaviour(Behaviour { cache_control: Some("no-store, max-age=1".into()), ..Default::default() });
    env.token("t", "read");
    assert_eq!(env.get("/api/x", Some("t")).await.status(), 200);
    assert_eq!(env.get("/api/x", Some("t")).await.status(), 200);
    assert_eq!(env.idp.introspections(), 1, "no-store is ignored, max-age honoured");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(env.get("/api/x", Some("t")).await.status(), 200);
    assert_eq!(env.idp.introspections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_takes_effect_when_the_entry_expires() {
    let env = Env::with(ResponseMode::Jwt, |mut c| {
        c.cache.max_ttl_seconds = 1;
        c
    });
    env.token("t", "read");
    assert_eq!(env.get("/api/x", Some("t")).await.status(), 200);
    env.idp.revoke("t");
    assert_eq!(env.get("/api/x", Some("t")).await.status(), 200, "still cached");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(env.get("/api/x", Some("t")).await.status(), 401, "refused once the entry expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_grants_never_outlive_the_token() {
    let env = Env::new(ResponseMode::Jwt);
    env.idp.issue("short", TokenSpec::active("a", "read", 1));
    assert_eq!(env.get("/api/x", Some("short")).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // The fake AS now answers inactive; the cache must not have kept the grant past exp.
    assert_eq!(env.get("/api/x", Some("short")).await.status(), 401);
    assert_eq!(env.idp.introspections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_never_cached() {
    let env = Env::new(ResponseMode::Rfc9701);
    env.token("t", "read");
    env.idp.set_behaviour(Behaviour { status: Some(500), ..Default::default() });
    assert_eq!(env.get("/api/x", Some("t")).await.status(), 503);
    env.idp.set_behaviour(Behaviour::default());
    assert_eq!(env.get("/api/x", Some("t")).await.status(), 200);
    assert_eq!(env.idp.introspections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_uses_share_one_introspection() {
    let env = Env::new(ResponseMode::Rfc9701);
    env.token("hot", "read");
    env.idp.set_behaviour(Behaviour { delay_ms: 300, ..Default::default() });
    let url = format!("{}/api/x", env.shroud.url());
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (http, url) = (env.http.clone(), url.clone());
        set.spawn(async move { http.get(url).bearer_auth("hot").send().await.map(|r| r.status().as_u16()) });
    }
    let mut ok = 0;
    while let Some(result) = set.join_next().await {
        assert_eq!(result.unwrap().unwrap(), 200);
        ok += 1;
    }
    assert_eq!(ok, 200);
    assert_eq!(env.idp.introspections(), 1, "200 concurrent requests, one introspection");
    assert_eq!(env.api.hits(), 200);
}
