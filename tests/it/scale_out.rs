//! Many instances on one Redis deployment (single node, Cluster, Sentinel): one introspection per fresh
//! token for the whole fleet, purges that reach every instance within a second, recovery after a Redis
//! restart, and the admin API that drives purges.

use crate::support::*;
use serde_json::{json, Value};
use shroud::config::{CacheBackend, Config, ResponseMode};
use shroud::secret::Secret;
use shroud::server::Running;
use shroud_testkit::{Behaviour, EchoUpstream, FakeAs, RedisCluster, RedisSentinel, RedisServer, RedisTls, TokenSpec};
use std::time::{Duration, Instant};

/// `n` instances on `redis_url`, sharing one phantom signing key and an admin listener each.
fn fleet(n: usize, redis_url: &str, idp: &FakeAs, api: &EchoUpstream) -> Vec<Running> {
    fleet_in(ResponseMode::Json, n, redis_url, idp, api)
}

/// [`fleet`] in introspection mode `mode`.
fn fleet_in(mode: ResponseMode, n: usize, redis_url: &str, idp: &FakeAs, api: &EchoUpstream) -> Vec<Running> {
    let key = signing_key_file().to_string_lossy().into_owned();
    (0..n)
        .map(|_| {
            let mut c = with_admin(with_redis(config(idp, api, mode), redis_url));
            c.phantom.signing_key_file = key.clone();
            start(c)
        })
        .collect()
}

fn admin_url(shroud: &Running, path: &str) -> String {
    format!("http://{}{path}", shroud.admin_addr.expect("admin listener configured"))
}

async fn purge(shroud: &Running, body: Value) -> (u16, Value) {
    let resp = client().post(admin_url(shroud, "/purge")).bearer_auth(ADMIN_TOKEN).json(&body).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn status(shroud: &Running, token: &str) -> u16 {
    client().get(format!("{}/api/x", shroud.url())).bearer_auth(token).send().await.unwrap().status().as_u16()
}

/// Polls every instance until each refuses `token`; returns how long the slowest took.
async fn refused_everywhere(fleet: &[Running], token: &str, started: Instant, within: Duration) -> Duration {
    for shroud in fleet {
        while status(shroud, token).await != 401 {
            assert!(started.elapsed() < within, "{} still accepts the purged token", shroud.url());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    started.elapsed()
}

/// Sends every token through every instance (each must pass) until the authorization server has seen
/// `expected` introspections, within a second: a purge reaches the other instances by pub/sub, so an
/// instance may serve its in-process copy for a moment; the count may only grow to `expected` (once for
/// the fleet per purged token), which the caller then asserts exactly.
async fn served_until_introspected(fleet: &[Running], tokens: &[&str], idp: &FakeAs, expected: usize) {
    let started = Instant::now();
    loop {
        for shroud in fleet {
            for token in tokens {
                assert_eq!(status(shroud, token).await, 200, "{token} at {}", shroud.url());
            }
        }
        if idp.introspections() >= expected {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(1), "only {} introspections", idp.introspections());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The contract every deployment keeps: a fresh token through all instances at once is introspected
/// once; a revoked token purged on one instance is refused by all within a second.
async fn fleet_contract(redis_url: &str) {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let fleet = fleet(3, redis_url, &idp, &api);
    idp.issue("fresh", TokenSpec::active("alice", "read", 300));
    idp.set_behaviour(Behaviour { delay_ms: 200, ..Default::default() });
    let mut calls = tokio::task::JoinSet::new();
    // One client for all 60 calls (each still on its own connection): building a TLS-capable client costs
    // ~90 ms of CPU, and 60 of them at once starved the calls on a loaded machine.
    let http = client();
    for i in 0..60 {
        let url = format!("{}/api/x", fleet[i % 3].url());
        let http = http.clone();
        calls.spawn(async move {
            let t = Instant::now();
            match http.get(url).bearer_auth("fresh").send().await {
                Ok(r) => r.status().as_u16(),
                Err(e) => panic!("after {:?}: {e:?}", t.elapsed()),
            }
        });
    }
    while let Some(status) = calls.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(idp.introspections(), 1, "60 concurrent first uses on 3 instances: one introspection");
    idp.set_behaviour(Behaviour::default());

    idp.revoke("fresh");
    for shroud in &fleet {
        assert_eq!(status(shroud, "fresh").await, 200, "still cached: the revocation is not known yet");
    }
    let started = Instant::now();
    assert_eq!(purge(&fleet[0], json!({ "token": "fresh" })).await, (200, json!({ "purged": 1 })));
    let took = refused_everywhere(&fleet, "fresh", started, Duration::from_secs(1)).await;
    eprintln!("purge reached 3 instances in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_redis_introspect_once_and_purge_everywhere() {
    let redis = RedisServer::start();
    fleet_contract(&redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_a_redis_cluster_introspect_once_and_purge_everywhere() {
    let cluster = RedisCluster::start(3);
    fleet_contract(&cluster.url()).await;
    let holding: Vec<usize> = cluster
        .nodes()
        .iter()
        .map(|node| {
            let mut conn = redis::Client::open(node.url()).unwrap().get_connection().unwrap();
            redis::cmd("DBSIZE").query::<usize>(&mut conn).unwrap()
        })
        .collect();
    assert!(holding.iter().filter(|n| **n > 0).count() >= 2, "keys spread over the masters: {holding:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_find_the_master_through_sentinel() {
    let sentinel = RedisSentinel::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let fleet = fleet(2, &sentinel.url(), &idp, &api);
    idp.issue("t", TokenSpec::active("alice", "read", 300));
    assert_eq!(status(&fleet[0], "t").await, 200);
    assert_eq!(status(&fleet[1], "t").await, 200);
    assert_eq!(idp.introspections(), 1, "the second instance read the first one's exchange from the master");
    let mut conn = redis::Client::open(sentinel.master().url()).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("shroud:v1:grant:*").query(&mut conn).unwrap();
    assert_eq!(keys.len(), 1, "the grant lives on the master the sentinel named");
    idp.revoke("t");
    let started = Instant::now();
    assert_eq!(purge(&fleet[1], json!({ "token": "t" })).await.0, 200);
    refused_everywhere(&fleet, "t", started, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purges_by_subject_and_client_drop_theirs_only_on_every_instance() {
    let redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let fleet = fleet(2, &redis.url(), &idp, &api);
    for (token, sub, client_id) in [("a1", "alice", "web"), ("a2", "alice", "cli"), ("b1", "bob", "web")] {
        let mut spec = TokenSpec::active(sub, "read", 300);
        spec.client_id = Some(client_id.into());
        idp.issue(token, spec);
        for shroud in &fleet {
            assert_eq!(status(shroud, token).await, 200);
        }
    }
    assert_eq!(idp.introspections(), 3);

    let tokens = ["a1", "a2", "b1"];
    assert_eq!(purge(&fleet[1], json!({ "sub": "alice" })).await, (200, json!({ "purged": 2 })));
    served_until_introspected(&fleet, &tokens, &idp, 5).await;
    assert_eq!(idp.introspections(), 5, "alice's two tokens were exchanged again (once for the fleet), bob's not");

    assert_eq!(purge(&fleet[0], json!({ "client_id": "web" })).await, (200, json!({ "purged": 2 })));
    served_until_introspected(&fleet, &tokens, &idp, 7).await;
    assert_eq!(idp.introspections(), 7, "the two `web` tokens were exchanged again, the `cli` one not");
    assert_eq!(purge(&fleet[0], json!({ "sub": "nobody" })).await, (200, json!({ "purged": 0 })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_everything_reaches_every_instance_and_redis() {
    let redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let fleet = fleet(3, &redis.url(), &idp, &api);
    for token in ["t1", "t2"] {
        idp.issue(token, TokenSpec::active("alice", "read", 300));
        for shroud in &fleet {
            assert_eq!(status(shroud, token).await, 200);
        }
    }
    idp.revoke("t1");
    idp.revoke("t2");
    let started = Instant::now();
    let (code, body) = purge(&fleet[2], json!({ "all": true })).await;
    assert_eq!((code, body["purged"].as_u64().is_some()), (200, true), "{body}");
    refused_everywhere(&fleet, "t1", started, Duration::from_secs(1)).await;
    refused_everywhere(&fleet, "t2", started, Duration::from_secs(1)).await;

    let late = start({
        let mut c = with_admin(with_redis(config(&idp, &api, ResponseMode::Json), &redis.url()));
        c.phantom.signing_key_file = fleet[0].gateway.config.phantom.signing_key_file.clone();
        c
    });
    idp.issue("t3", TokenSpec::active("carol", "read", 300));
    assert_eq!(status(&fleet[0], "t3").await, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = idp.introspections();
    assert_eq!(status(&late, "t3").await, 200);
    assert_eq!(idp.introspections(), before, "an instance started after the purge reads the new generation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_recovers_after_a_redis_restart() {
    let mut redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let fleet = fleet(3, &redis.url(), &idp, &api);
    idp.issue("before", TokenSpec::active("alice", "read", 300));
    for shroud in &fleet {
        assert_eq!(status(shroud, "before").await, 200);
    }
    redis.stop();
    idp.issue("during", TokenSpec::active("alice", "read", 300));
    for shroud in &fleet {
        assert_eq!(status(shroud, "before").await, 200, "cached grants keep working without Redis");
        assert_eq!(status(shroud, "during").await, 200, "new tokens are exchanged directly");
    }
    let (code, body) = purge(&fleet[0], json!({ "token": "before" })).await;
    assert_eq!(code, 503, "a purge that cannot reach the other instances says so: {body}");
    assert_eq!(body["code"], "temporarily_unavailable");

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    idp.issue("after", TokenSpec::active("bob", "read", 300));
    // Once every instance has re-subscribed, a purge on one reaches the others again.
    loop {
        assert!(Instant::now() < deadline, "the fleet did not recover within 10 s");
        let used: Vec<u16> = futures_util::future::join_all(fleet.iter().map(|s| status(s, "after"))).await;
        assert!(used.iter().all(|s| *s == 200));
        idp.revoke("after");
        let started = Instant::now();
        if purge(&fleet[0], json!({ "token": "after" })).await.0 == 200 {
            let mut all = true;
            for shroud in &fleet[1..] {
                while status(shroud, "after").await != 401 {
                    if started.elapsed() > Duration::from_secs(1) {
                        all = false;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            if all {
                break;
            }
        }
        idp.issue("after", TokenSpec::active("bob", "read", 300));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    idp.issue("fresh", TokenSpec::active("carol", "read", 300));
    let before = idp.introspections();
    for shroud in &fleet {
        assert_eq!(status(shroud, "fresh").await, 200);
    }
    assert_eq!(idp.introspections(), before + 1, "sharing through Redis works again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_voids_every_workers_front_tier_at_once() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let mut c = with_admin(config(&idp, &api, ResponseMode::Json));
    c.server.workers = 2;
    let shroud = start(c);
    idp.issue("hot", TokenSpec::active("alice", "read", 300));
    // A new connection per call: calls spread over the workers, and from the second on each worker copies
    // the in-process hit into its front tier and then answers from there.
    for _ in 0..12 {
        assert_eq!(status(&shroud, "hot").await, 200);
    }
    idp.revoke("hot");
    assert_eq!(status(&shroud, "hot").await, 200, "still cached: the revocation is not known yet");
    let forwarded = api.hits();
    assert_eq!(purge(&shroud, json!({ "token": "hot" })).await, (200, json!({ "purged": 1 })));
    for _ in 0..12 {
        assert_eq!(status(&shroud, "hot").await, 401, "refused at once, by every worker");
    }
    assert_eq!(api.hits(), forwarded, "nothing forwarded after the purge");
    assert_eq!(idp.introspections(), 2, "the purged token was asked about again, once, and then negatively cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_refuses_strangers_and_malformed_purges() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let shroud = start(with_admin(config(&idp, &api, ResponseMode::Json)));
    assert_eq!(shroud.gateway.config.cache.backend, CacheBackend::Memory);
    let http = client();
    let purge_url = admin_url(&shroud, "/purge");
    for auth in [None, Some("Bearer wrong-token"), Some(&*format!("Basic {ADMIN_TOKEN}")), Some("Bearer ")] {
        let mut req = http.post(&purge_url).json(&json!({ "all": true }));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        assert_eq!(resp.json::<Value>().await.unwrap()["code"], "unauthorized");
    }
    let stats = http.get(admin_url(&shroud, "/stats")).send().await.unwrap();
    assert_eq!(stats.status(), 401);

    for body in
        [json!({}), json!({ "all": false }), json!({ "sub": "" }), json!({ "sub": "a", "token": "b" }), json!([1])]
    {
        let (code, answer) = purge(&shroud, body.clone()).await;
        assert_eq!((code, answer["code"].as_str()), (400, Some("invalid_request")), "{body}");
    }
    let resp = http.get(&purge_url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!((resp.status().as_u16(), resp.headers()["allow"].to_str().unwrap()), (405, "POST"));
    let resp = http.get(admin_url(&shroud, "/nothing")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = http.post(format!("{}/purge", shroud.url())).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 404, "the admin API is not on the proxy's listener");

    idp.issue("t", TokenSpec::active("alice", "read", 300));
    assert_eq!(status(&shroud, "t").await, 200);
    assert_eq!(status(&shroud, "t").await, 200);
    assert_eq!(purge(&shroud, json!({ "sub": "alice" })).await, (200, json!({ "purged": 1 })));
    assert_eq!(status(&shroud, "t").await, 200);
    assert_eq!(idp.introspections(), 2, "purged in process: exchanged again");
    let stats: Value =
        http.get(admin_url(&shroud, "/stats")).bearer_auth(ADMIN_TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["cache"]["hits"]["memory"], 1, "{stats}");
    assert_eq!(stats["cache"]["misses"], 2, "{stats}");
    assert_eq!(stats["introspections"], 2, "{stats}");
    assert_eq!(stats["purged"], 1, "{stats}");
    assert_eq!(stats["redis"], json!({ "configured": false, "connected": false }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_private_ca_is_verified() {
    let redis = RedisTls::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let ca_file = redis.ca_file().to_string_lossy().into_owned();
    let trusted = fleet(2, &redis.url(), &idp, &api);
    // The fleet above trusts only the system store: it cannot verify the private CA, so it works
    // without Redis (each instance introspects), and says so on /readyz.
    idp.issue("t", TokenSpec::active("alice", "read", 300));
    assert_eq!(status(&trusted[0], "t").await, 200);
    let ready: Value = client().get(format!("{}/readyz", trusted[0].url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["checks"]["redis"], "unreachable", "an unverifiable certificate is refused");
    drop(trusted);

    let key = signing_key_file().to_string_lossy().into_owned();
    let with_ca: Vec<Running> = (0..2)
        .map(|_| {
            let mut c = with_redis(config(&idp, &api, ResponseMode::Json), &redis.url());
            c.cache.redis_ca_file = ca_file.clone();
            c.phantom.signing_key_file = key.clone();
            start(c)
        })
        .collect();
    idp.issue("u", TokenSpec::active("alice", "read", 300));
    let before = idp.introspections();
    assert_eq!(status(&with_ca[0], "u").await, 200);
    assert_eq!(status(&with_ca[1], "u").await, 200);
    assert_eq!(idp.introspections(), before + 1, "shared over TLS");
    let mut conn = redis::Client::open(redis.plain().url()).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("shroud:v1:grant:*").query(&mut conn).unwrap();
    assert_eq!(keys.len(), 1);
}

#[test]
fn redis_and_admin_settings_are_checked_at_start() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let error = |change: &dyn Fn(&mut Config)| {
        let mut c = with_redis(config(&idp, &api, ResponseMode::Json), "redis://127.0.0.1:6379");
        change(&mut c);
        c.validate().expect_err("invalid").to_string()
    };
    let e = error(&|c| c.cache.redis_url = "redis://a:1,b:2".into());
    assert!(e.contains("cache.redis_url") && e.contains("redis+cluster"), "{e}");
    let e = error(&|c| c.cache.redis_url = "redis+sentinel://a:26379".into());
    assert!(e.contains("cache.redis_url") && e.contains("service"), "{e}");
    let e = error(&|c| c.cache.redis_url = "memcached://a".into());
    assert!(e.contains("cache.redis_url") && e.contains("scheme"), "{e}");
    let e = error(&|c| c.cache.redis_ca_file = "/etc/ssl/ca.pem".into());
    assert!(e.contains("cache.redis_ca_file") && e.contains("rediss"), "{e}");
    let e = error(&|c| c.admin.listen = "127.0.0.1:9901".into());
    assert!(e.contains("admin.token") && e.contains("32"), "{e}");
    let e = error(&|c| {
        c.admin.listen = "localhost".into();
        c.admin.token = Secret::new(ADMIN_TOKEN);
    });
    assert!(e.contains("admin.listen"), "{e}");
    let e = error(&|c| {
        c.server.listen = "127.0.0.1:9901".into();
        c.admin.listen = "127.0.0.1:9901".into();
        c.admin.token = Secret::new(ADMIN_TOKEN);
    });
    assert!(e.contains("admin.listen") && e.contains("differ"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_issuer_key_purges_every_instance_once() {
    let redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let fleet = fleet_in(ResponseMode::Rfc9701, 2, &redis.url(), &idp, &api);
    idp.issue("old", TokenSpec::active("alice", "read", 300));
    for shroud in &fleet {
        assert_eq!(status(shroud, "old").await, 200);
    }
    idp.revoke("old");
    assert_eq!(status(&fleet[1], "old").await, 200, "cached: the revocation is not known yet");

    // The issuer rotates and withdraws the key that signed the cached answer. The first instance to see
    // the new key (an unknown kid) reloads the JWKS, notices the withdrawal and purges the fleet.
    idp.rotate_key();
    idp.issue("new", TokenSpec::active("bob", "read", 300));
    let started = Instant::now();
    assert_eq!(status(&fleet[0], "new").await, 200);
    refused_everywhere(&fleet, "old", started, Duration::from_secs(1)).await;

    idp.issue("new2", TokenSpec::active("carol", "read", 300));
    assert_eq!(status(&fleet[1], "new2").await, 200, "the second instance learns the new key too");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut conn = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let generation: u64 = redis::cmd("GET").arg("shroud:v1:generation").query(&mut conn).unwrap();
    assert_eq!(generation, 1, "one purge for the fleet, not one per instance");
    assert_eq!(status(&fleet[0], "new").await, 200, "grants under the new key stay cached");
}
