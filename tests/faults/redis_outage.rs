//! Redis is killed (SIGKILL) and restarted mid-load under two instances sharing it. Cached tokens keep
//! working, new tokens are still exchanged by direct introspection, invalid ones refused; both instances
//! report the degradation, reconnect by themselves, and store entries in Redis again.

use crate::load::{Answer, Checker, Kind, Load, Request, TRANSITION};
use crate::support::*;
use shroud::config::ResponseMode;
use shroud_testkit::{EchoUpstream, FakeAs, RedisServer, TokenSpec};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CACHED: usize = 200;
const KNOWN_INVALID: usize = 50;
const CONCURRENCY: usize = 32;

async fn readiness(url: &str) -> serde_json::Value {
    let resp = reqwest::get(format!("{url}/readyz")).await.unwrap();
    assert_eq!(resp.status(), 200, "Redis never takes Shroud out of the load balancer");
    resp.json().await.unwrap()
}

fn grants_in(redis: &RedisServer) -> usize {
    let mut conn = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("shroud:v1:grant:*").query(&mut conn).unwrap();
    keys.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_load() {
    let _turn = crate::serial().await;
    let mut redis = RedisServer::start();
    let idp = Arc::new(FakeAs::start());
    let api = EchoUpstream::start();
    let key = signing_key_file().to_string_lossy().into_owned();
    let fleet: Vec<_> = (0..2)
        .map(|_| {
            let mut c = with_redis(config(&idp, &api, ResponseMode::Json), &redis.url());
            c.phantom.signing_key_file = key.clone();
            c.cache.negative_ttl_seconds = 300;
            start(c)
        })
        .collect();
    let urls: Vec<String> = fleet.iter().map(|s| format!("{}/api/x", s.url())).collect();
    let checker = Arc::new(Checker::new(&fleet[0].url(), &fleet[0].gateway.config.phantom.issuer).await);

    let http = crate::load::load_client();
    for i in 0..CACHED {
        let token = format!("cached-{i}");
        idp.issue(&token, TokenSpec::active(&token, "read", 300));
        for url in &urls {
            assert_eq!(http.get(url).bearer_auth(&token).send().await.unwrap().status(), 200);
        }
    }
    for i in 0..KNOWN_INVALID {
        for url in &urls {
            assert_eq!(http.get(url).bearer_auth(format!("known-invalid-{i}")).send().await.unwrap().status(), 401);
        }
    }
    assert!(grants_in(&redis) >= CACHED, "the warm-up filled Redis");
    let introspected_before = idp.introspections();
    let warm_hits = api.hits();

    let issuer = idp.clone();
    let targets = urls.clone();
    let load = Load::start(CONCURRENCY, "redis-up", checker, move |n| {
        let url = targets[(n / 7) as usize % targets.len()].clone();
        let (kind, token) = match n % 10 {
            0..=5 => (Kind::Cached, format!("cached-{}", n % CACHED as u64)),
            6 | 7 => {
                let token = format!("fresh-{n}");
                issuer.issue(&token, TokenSpec::active(&token, "read", 300));
                (Kind::Fresh, token)
            }
            8 => (Kind::Unknown, format!("unknown-{n}")),
            _ => (Kind::KnownInvalid, format!("known-invalid-{}", n % KNOWN_INVALID as u64)),
        };
        Request { kind, token, url }
    });
    load.hold(1000).await;

    load.enter(TRANSITION);
    redis.stop();
    load.enter("redis-down");
    load.hold(1500).await;
    for shroud in &fleet {
        let ready = readiness(&shroud.url()).await;
        assert_eq!(ready["degraded"], true, "{ready}");
        assert_eq!(ready["checks"]["redis"], "unreachable", "{ready}");
    }
    load.hold(500).await;

    load.enter(TRANSITION);
    redis.restart();
    load.enter("redis-back");
    // Both instances reconnect by themselves.
    let deadline = Instant::now() + Duration::from_secs(10);
    for shroud in &fleet {
        loop {
            let ready = readiness(&shroud.url()).await;
            if ready["degraded"] == false && ready["checks"]["redis"] == "ok" {
                break;
            }
            assert!(Instant::now() < deadline, "{} still degraded: {ready}", shroud.url());
            load.hold(100).await;
        }
    }
    load.hold(1500).await;

    let report = load
        .finish(|_, record| match record.kind {
            Kind::Cached | Kind::Fresh => vec![Answer::Authorised],
            _ => vec![Answer::Refused],
        })
        .await;
    report.assert_clean("redis killed and restarted");
    assert!(report.count_in("redis-down", "fresh", "200") > 0, "new tokens were exchanged while Redis was down");
    assert!(report.count_in("redis-down", "cached", "200") > 0);
    assert!(report.count_in("redis-back", "fresh", "200") > 0);
    assert!(grants_in(&redis) > 0, "fresh grants are stored in the restarted Redis");
    assert!(idp.introspections() > introspected_before, "new tokens were introspected");
    assert_eq!(api.hits() - warm_hits, report.successes() as usize, "nothing else was forwarded");
}
