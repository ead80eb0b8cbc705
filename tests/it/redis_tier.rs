//! The shared Redis tier with a private `redis-server`: reuse across instances, nothing readable stored,
//! TTLs, and Redis outages.

use crate::support::*;
use shroud::config::ResponseMode;
use shroud_testkit::{Behaviour, EchoUpstream, FakeAs, RedisServer, TokenSpec};

fn dump(redis: &RedisServer) -> Vec<(String, Vec<u8>, i64)> {
    let mut conn = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("shroud:v1:grant:*").query(&mut conn).unwrap();
    keys.into_iter()
        .map(|k| {
            let value: Vec<u8> = redis::cmd("GET").arg(&k).query(&mut conn).unwrap();
            let ttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut conn).unwrap();
            (k, value, ttl)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_reuses_the_first_ones_exchange() {
    let redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let first = start(with_redis(config(&idp, &api, ResponseMode::Rfc9701), &redis.url()));
    let mut second_config = with_admin(with_redis(config(&idp, &api, ResponseMode::Rfc9701), &redis.url()));
    second_config.phantom.signing_key_file = first.gateway.config.phantom.signing_key_file.clone();
    let second = start(second_config);
    let token = "opaque-shared-token-value";
    idp.issue(token, TokenSpec::active("alice", "read", 300));
    let http = client();
    let resp = http.get(format!("{}/api/a", first.url())).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let jwt_first = forwarded_jwt(&api);
    let resp = http.get(format!("{}/api/b", second.url())).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(idp.introspections(), 1, "the second instance did not introspect");
    assert_eq!(forwarded_jwt(&api), jwt_first, "it forwarded the JWT the first one minted");
    let metrics = metrics(&second).await;
    assert!(metrics.contains(r#"shroud_cache_lookups_total{result="hit",tier="redis"} 1"#), "{metrics}");

    let entries = dump(&redis);
    assert_eq!(entries.len(), 1);
    for (key, value, ttl) in &entries {
        assert!(!key.contains(token) && key.starts_with("shroud:v1:grant:"), "{key}");
        assert!(!contains(value, token.as_bytes()), "no raw token in Redis");
        assert!(!contains(value, jwt_first.as_bytes()), "no JWT in Redis");
        assert!(!contains(value, b"eyJ") && !contains(value, b"alice"), "nothing readable in Redis");
        assert!(*ttl > 290_000 && *ttl <= 300_000, "Redis TTL matches the in-process TTL: {ttl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_answers_are_shared_and_ttls_follow_max_age() {
    let redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    idp.set_behaviour(Behaviour { cache_control: Some("max-age=2".into()), ..Default::default() });
    let a = start(with_redis(config(&idp, &api, ResponseMode::Json), &redis.url()));
    let b = start(with_redis(config(&idp, &api, ResponseMode::Json), &redis.url()));
    let http = client();
    for shroud in [&a, &b] {
        let resp = http.get(format!("{}/api/x", shroud.url())).bearer_auth("bogus").send().await.unwrap();
        assert_eq!(resp.status(), 401);
    }
    assert_eq!(idp.introspections(), 1, "the negative answer was shared");
    let entries = dump(&redis);
    assert!(entries[0].2 <= 5_000, "negative TTL {}", entries[0].2);
    idp.issue("t", TokenSpec::active("a", "read", 300));
    let resp = http.get(format!("{}/api/x", a.url())).bearer_auth("t").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let max = dump(&redis).iter().map(|e| e.2).max().unwrap();
    assert!(max <= 2_000, "max-age bounds the Redis TTL: {max}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_is_a_reported_degradation_not_an_outage() {
    let mut redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let shroud = start(with_redis(config(&idp, &api, ResponseMode::Rfc9701), &redis.url()));
    idp.issue("t1", TokenSpec::active("a", "read", 300));
    let http = client();
    let get = |token: &'static str| http.get(format!("{}/api/x", shroud.url())).bearer_auth(token).send();
    assert_eq!(get("t1").await.unwrap().status(), 200);
    redis.stop();
    idp.issue("t2", TokenSpec::active("a", "read", 300));
    assert_eq!(get("t2").await.unwrap().status(), 200, "introspection carries on without Redis");
    assert_eq!(get("t1").await.unwrap().status(), 200, "the in-process tier carries on");
    let ready = http.get(format!("{}/readyz", shroud.url())).send().await.unwrap();
    assert_eq!(ready.status(), 200, "Redis down never takes Shroud out of the load balancer");
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["redis"], "unreachable");
    assert_eq!(body["degraded"], true);
    redis.restart();
    let mut recovered = false;
    for _ in 0..40 {
        let body: serde_json::Value =
            http.get(format!("{}/readyz", shroud.url())).send().await.unwrap().json().await.unwrap();
        if body["degraded"] == false && body["checks"]["redis"] == "ok" {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(recovered, "no longer degraded once Redis is back");
    idp.issue("t3", TokenSpec::active("a", "read", 300));
    assert_eq!(get("t3").await.unwrap().status(), 200);
    assert_eq!(dump(&redis).len(), 1, "entries are stored again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_uses_across_two_instances_share_one_introspection() {
    let redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    idp.set_behaviour(Behaviour { delay_ms: 300, ..Default::default() });
    let a = start(with_redis(config(&idp, &api, ResponseMode::Json), &redis.url()));
    let b = start(with_redis(config(&idp, &api, ResponseMode::Json), &redis.url()));
    idp.issue("hot", TokenSpec::active("a", "read", 300));
    let http = client();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..100 {
        let url = format!("{}/api/x", if i % 2 == 0 { a.url() } else { b.url() });
        let http = http.clone();
        set.spawn(async move { http.get(url).bearer_auth("hot").send().await.map(|r| r.status().as_u16()) });
    }
    while let Some(result) = set.join_next().await {
        assert_eq!(result.unwrap().unwrap(), 200);
    }
    assert_eq!(idp.introspections(), 1, "100 concurrent first uses on two instances, one introspection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_lock_holder_stalls_nobody_beyond_the_introspection_timeout() {
    let redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let shroud = start(with_redis(config(&idp, &api, ResponseMode::Json), &redis.url()));
    idp.issue("orphan", TokenSpec::active("a", "read", 300));
    // An instance took the fill lock for this token and died: the lock stays for 30 s.
    let key = hex::encode(shroud.gateway.cache.key("orphan"));
    // Generation 0: nothing was purged yet.
    let mut conn = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("shroud:v1:lock:0:{key}"))
        .arg("dead")
        .arg("PX")
        .arg(30_000)
        .query(&mut conn)
        .unwrap();
    let started = std::time::Instant::now();
    let resp = client().get(format!("{}/api/x", shroud.url())).bearer_auth("orphan").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let waited = started.elapsed();
    assert!(waited >= std::time::Duration::from_millis(1000), "it waited for the holder first ({waited:?})");
    assert!(
        waited < std::time::Duration::from_millis(2500),
        "but no longer than the introspection timeout ({waited:?})"
    );
    assert_eq!(idp.introspections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subject_and_client_index_lists_only_live_grants() {
    let redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let shroud = start(with_redis(config(&idp, &api, ResponseMode::Json), &redis.url()));
    let http = client();
    let get = |token: String| http.get(format!("{}/api/x", shroud.url())).bearer_auth(token).send();
    for i in 0..20 {
        idp.issue(&format!("short-{i}"), TokenSpec::active("alice", "read", 1));
        assert_eq!(get(format!("short-{i}")).await.unwrap().status(), 200);
    }
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    idp.issue("long", TokenSpec::active("alice", "read", 300));
    assert_eq!(get("long".into()).await.unwrap().status(), 200);
    let mut conn = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let indexes: Vec<String> = redis::cmd("KEYS").arg("shroud:v1:zindex:*").query(&mut conn).unwrap();
    assert_eq!(indexes.len(), 2, "one for the subject, one for the client");
    for index in indexes {
        let listed: usize = redis::cmd("ZCARD").arg(&index).query(&mut conn).unwrap();
        assert_eq!(listed, 1, "the expired grants were swept from {index}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_under_load_is_logged_once_and_so_is_the_recovery() {
    let mut redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let port = shroud_testkit::net::free_port();
    let text = crate::cli::served_config(&crate::cli::base_config(""), port, &idp.url(), &api.url())
        .replace("backend = \"memory\"", "backend = \"redis\"")
        .replace("redis://:redis-password-123@127.0.0.1:6379/0", &redis.url());
    let served = crate::cli::Served::start(&text, port, "warn,shroud::cache=info").await;
    let http = client();
    let mut n = 0;
    // Fresh tokens in concurrent batches: each is a Redis lookup and a Redis store.
    let mut batch = |size: usize| {
        let calls: Vec<_> = (0..size)
            .map(|_| {
                n += 1;
                let token = format!("outage-token-{n:04}");
                idp.issue(&token, TokenSpec::active("alice", "read", 300));
                http.get(format!("{}/api/x", served.base)).bearer_auth(token).send()
            })
            .collect();
        futures_util::future::join_all(calls)
    };
    for answer in batch(10).await {
        assert_eq!(answer.unwrap().status(), 200);
    }
    redis.stop();
    // About 2.5 s of load: several pauses begin and end while Redis stays down.
    let down_until = std::time::Instant::now() + std::time::Duration::from_millis(2500);
    let mut during = 0;
    while std::time::Instant::now() < down_until {
        for answer in batch(10).await {
            assert_eq!(answer.unwrap().status(), 200, "tokens are still exchanged without Redis");
            during += 1;
        }
    }
    redis.restart();
    let ready_by = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ready: serde_json::Value =
            http.get(format!("{}/readyz", served.base)).send().await.unwrap().json().await.unwrap();
        if ready["degraded"] == false {
            break;
        }
        assert!(std::time::Instant::now() < ready_by, "still degraded: {ready}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for answer in batch(10).await {
        assert_eq!(answer.unwrap().status(), 200);
    }
    let logs = served.logs();
    let count = |needle: &str| logs.lines().filter(|l| l.contains(needle)).count();
    assert!(during >= 50, "load ran during the outage ({during} requests)");
    assert_eq!(count("redis unreachable ("), 1, "one warning for the outage, not one per request:\n{logs}");
    assert_eq!(count("redis answers again"), 1, "one line for the recovery:\n{logs}");
    for per_request in ["redis lookup failed", "redis store failed"] {
        assert_eq!(count(per_request), 0, "{per_request} is not logged per request:\n{logs}");
    }
}
