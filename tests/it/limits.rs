//! Abuse limits: rate limits per source IP (before the exchange) and per client (after it), in process
//! and shared through Redis, with `Retry-After` and `RateLimit-*` headers.

use crate::support::*;
use shroud::config::{Config, RateLimitConfig, ResponseMode};
use shroud::server::Running;
use shroud_testkit::{EchoUpstream, FakeAs, RedisServer, TokenSpec};

fn limited(idp: &FakeAs, api: &EchoUpstream, per_ip: &str, per_client: &str) -> Config {
    let mut c = config(idp, api, ResponseMode::Json);
    c.rate_limit = RateLimitConfig { per_ip: per_ip.into(), per_client: per_client.into(), ..Default::default() };
    c
}

async fn get(shroud: &Running, token: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut req = client().get(format!("{}/api/x", shroud.url())).bearer_auth(token);
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.unwrap()
}

async fn assert_limited(resp: reqwest::Response, limit: u32, window: u64) {
    assert_eq!(resp.status(), 429);
    let header = |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    let retry: u64 = header("retry-after").expect("Retry-After").parse().unwrap();
    assert!(retry >= 1 && retry <= window, "Retry-After {retry}");
    assert_eq!(header("ratelimit-limit").as_deref(), Some(&*limit.to_string()));
    assert_eq!(header("ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(header("ratelimit-reset"), header("retry-after"));
    assert_eq!(header("ratelimit-policy"), Some(format!("{limit};w={window}")));
    assert!(resp.headers().get("www-authenticate").is_none());
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "too_many_requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_invalid_tokens_from_one_ip_stops_before_the_authorization_server() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let shroud = start(limited(&idp, &api, "10/h", ""));
    let mut statuses = Vec::new();
    for i in 0..50 {
        statuses.push(get(&shroud, &format!("forged-{i}"), None).await.status().as_u16());
    }
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(idp.introspections(), 10, "50 distinct invalid tokens cost 10 introspections, not 50");
    assert_eq!(api.hits(), 0);
    assert_limited(get(&shroud, "forged-x", None).await, 10, 3600).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_has_its_own_budget() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let shroud = start(limited(&idp, &api, "", "2/h"));
    let mut other = TokenSpec::active("bob", "read", 300);
    other.client_id = Some("client-2".into());
    idp.issue("a1", TokenSpec::active("alice", "read", 300));
    idp.issue("a2", TokenSpec::active("carol", "read", 300));
    idp.issue("b", other);
    assert_eq!(get(&shroud, "a1", None).await.status(), 200);
    assert_eq!(get(&shroud, "a2", None).await.status(), 200, "another token of the same client");
    assert_limited(get(&shroud, "a1", None).await, 2, 3600).await;
    assert_eq!(get(&shroud, "b", None).await.status(), 200, "another client is not limited");
    assert_eq!(api.hits(), 3, "the limited request never reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    idp.issue("t", TokenSpec::active("alice", "read", 300));
    let untrusting = start(limited(&idp, &api, "2/h", ""));
    assert_eq!(get(&untrusting, "t", Some("203.0.113.1")).await.status(), 200);
    assert_eq!(get(&untrusting, "t", Some("203.0.113.2")).await.status(), 200);
    assert_eq!(get(&untrusting, "t", Some("203.0.113.3")).await.status(), 429, "a forged X-Forwarded-For buys nothing");

    let mut c = limited(&idp, &api, "2/h", "");
    c.rate_limit.trusted_proxies = vec!["127.0.0.0/8".into(), "10.0.0.7".into()];
    let behind_proxy = start(c);
    for _ in 0..2 {
        assert_eq!(get(&behind_proxy, "t", Some("198.51.100.9, 10.0.0.7")).await.status(), 200);
    }
    assert_eq!(get(&behind_proxy, "t", Some("198.51.100.9")).await.status(), 429, "the same client, through the proxy");
    assert_eq!(get(&behind_proxy, "t", Some("203.0.113.4")).await.status(), 200, "another client");
    assert_eq!(
        get(&behind_proxy, "t", Some("1.2.3.4, 198.51.100.9")).await.status(),
        429,
        "what the client wrote to the left of its own address is ignored"
    );
}

/// Shroud behind a trusted proxy on 127.0.0.0/8, with a per-IP limit of `per_ip`.
fn behind_proxy(idp: &FakeAs, api: &EchoUpstream, per_ip: &str, ipv6_prefix_length: Option<u8>) -> Running {
    let mut c = limited(idp, api, per_ip, "");
    c.rate_limit.trusted_proxies = vec!["127.0.0.0/8".into()];
    c.rate_limit.ipv6_prefix_length = ipv6_prefix_length;
    start(c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_entries_with_ports_still_name_the_client() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    idp.issue("t", TokenSpec::active("alice", "read", 300));
    for proxied in ["198.51.100.9:4711", "[2001:db8::9]:443", "[2001:db8::10]"] {
        let shroud = behind_proxy(&idp, &api, "3/min", None);
        let mut statuses = Vec::new();
        for i in 0..6 {
            let chain = format!("203.0.113.{i}, {proxied}");
            statuses.push(get(&shroud, "t", Some(&chain)).await.status().as_u16());
        }
        assert_eq!(statuses, [200, 200, 200, 429, 429, 429], "{proxied}: the forged entries buy nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_forwarded_for_entry_stops_the_walk_at_the_last_trusted_hop() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    idp.issue("t", TokenSpec::active("alice", "read", 300));
    let shroud = behind_proxy(&idp, &api, "3/min", None);
    let mut statuses = Vec::new();
    for i in 0..5 {
        let chain = format!("203.0.113.{i}, unknown, 127.0.0.2");
        statuses.push(get(&shroud, "t", Some(&chain)).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429], "counted against the trusted hop 127.0.0.2");
    assert_eq!(get(&shroud, "t", Some("203.0.113.99")).await.status(), 200, "another client has its own budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_sources_are_counted_per_prefix() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    idp.issue("t", TokenSpec::active("alice", "read", 300));
    let shroud = behind_proxy(&idp, &api, "2/h", None);
    assert_eq!(get(&shroud, "t", Some("2001:db8:1:2::1")).await.status(), 200);
    assert_eq!(get(&shroud, "t", Some("2001:db8:1:2:aaaa::2")).await.status(), 200);
    assert_eq!(get(&shroud, "t", Some("2001:db8:1:2::3")).await.status(), 429, "the same /64");
    assert_eq!(get(&shroud, "t", Some("2001:db8:1:3::1")).await.status(), 200, "another /64");

    let per_address = behind_proxy(&idp, &api, "2/h", Some(128));
    for i in 1..=4 {
        let source = format!("2001:db8:1:2::{i}");
        assert_eq!(get(&per_address, "t", Some(&source)).await.status(), 200, "/128: {source} is on its own");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_override_the_defaults() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let mut c = limited(&idp, &api, "1/h", "");
    c.routes[1].rate_limit = Some(RateLimitConfig { per_ip: "off".into(), ..Default::default() });
    let shroud = start(c);
    idp.issue("t", TokenSpec::active("alice", "read", 300));
    assert_eq!(get(&shroud, "t", None).await.status(), 200);
    assert_eq!(get(&shroud, "t", None).await.status(), 429);
    for _ in 0..5 {
        let resp = client().get(format!("{}/public/x", shroud.url())).send().await.unwrap();
        assert_eq!(resp.status(), 200, "the /public route turned its limit off");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_redis_share_the_budget() {
    let redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let key = signing_key_file().to_string_lossy().into_owned();
    let fleet: Vec<Running> = (0..2)
        .map(|_| {
            let mut c = with_redis(limited(&idp, &api, "", "3/h"), &redis.url());
            c.phantom.signing_key_file = key.clone();
            start(c)
        })
        .collect();
    idp.issue("t", TokenSpec::active("alice", "read", 300));
    assert_eq!(get(&fleet[0], "t", None).await.status(), 200);
    assert_eq!(get(&fleet[1], "t", None).await.status(), 200);
    assert_eq!(get(&fleet[0], "t", None).await.status(), 200);
    assert_limited(get(&fleet[1], "t", None).await, 3, 3600).await;
    assert_eq!(get(&fleet[0], "t", None).await.status(), 429, "both instances count against one budget");

    // Redis gone: each instance limits on its own rather than not at all.
    drop(redis);
    let resp = get(&fleet[1], "t", None).await;
    assert!(matches!(resp.status().as_u16(), 200 | 429), "{}", resp.status());
    for _ in 0..3 {
        get(&fleet[1], "t", None).await;
    }
    assert_eq!(get(&fleet[1], "t", None).await.status(), 429, "still limited without Redis");
}

#[test]
fn rates_and_proxies_are_checked_at_start() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let error = |change: &dyn Fn(&mut Config)| {
        let mut c = config(&idp, &api, ResponseMode::Json);
        change(&mut c);
        c.validate().expect_err("invalid").to_string()
    };
    let e = error(&|c| c.rate_limit.per_ip = "10/day".into());
    assert!(e.contains("rate_limit.per_ip") && e.contains("day"), "{e}");
    let e = error(&|c| c.rate_limit.per_client = "0/s".into());
    assert!(e.contains("rate_limit.per_client"), "{e}");
    let e = error(&|c| c.rate_limit.trusted_proxies = vec!["proxy.local".into()]);
    assert!(e.contains("rate_limit.trusted_proxies") && e.contains("proxy.local"), "{e}");
    let e = error(&|c| c.routes[0].rate_limit = Some(RateLimitConfig { per_ip: "fast".into(), ..Default::default() }));
    assert!(e.contains("routes[0].rate_limit.per_ip"), "{e}");
    let e = error(&|c| {
        c.routes[0].rate_limit =
            Some(RateLimitConfig { trusted_proxies: vec!["10.0.0.1".into()], ..Default::default() })
    });
    assert!(e.contains("routes[0].rate_limit.trusted_proxies"), "{e}");
    for bad in [0, 31, 129] {
        let e = error(&|c| c.rate_limit.ipv6_prefix_length = Some(bad));
        assert!(e.contains("rate_limit.ipv6_prefix_length") && e.contains("between 32 and 128"), "{bad}: {e}");
    }
    let e = error(&|c| {
        c.routes[0].rate_limit = Some(RateLimitConfig { ipv6_prefix_length: Some(64), ..Default::default() })
    });
    assert!(e.contains("routes[0].rate_limit.ipv6_prefix_length"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_and_bodies_are_refused_before_the_exchange() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let mut c = config(&idp, &api, ResponseMode::Json);
    c.server.max_header_bytes = 4096;
    c.routes[0].max_body_bytes = 1000;
    let shroud = start(c);
    idp.issue("t", TokenSpec::active("alice", "read", 300));
    let url = format!("{}/api/x", shroud.url());
    let http = client();

    let resp = http.get(&url).bearer_auth("t").header("x-padding", "a".repeat(5000)).send().await.unwrap();
    assert_eq!(resp.status(), 431);
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap()["code"], "request_header_fields_too_large");

    let resp = http.post(&url).bearer_auth("t").body(vec![b'x'; 1001]).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap()["code"], "request_too_large");
    assert_eq!(idp.introspections(), 0, "refused before the exchange");
    assert_eq!(api.hits(), 0);

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..4).map(|_| Ok(vec![b'y'; 400])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let resp = http.post(&url).bearer_auth("t").body(body).send().await.unwrap();
    assert_eq!(resp.status(), 413, "a chunked body is counted as it streams");

    let resp = http.post(&url).bearer_auth("t").body(vec![b'x'; 1000]).send().await.unwrap();
    assert_eq!(resp.status(), 200, "exactly the limit passes");
    assert_eq!(api.last().unwrap().body.len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use std::io::{Read, Write};
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let mut c = config(&idp, &api, ResponseMode::Json);
    c.server.client_request_timeout_ms = 300;
    let shroud = start(c);
    let addr = shroud.addr;
    let started = std::time::Instant::now();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        stream.write_all(b"GET /api/x HTTP/1.1\r\nHost: shroud\r\nX-Slow: ").unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    let waited = started.elapsed();
    assert!(waited < std::time::Duration::from_secs(3), "held for {waited:?}");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(api.hits(), 0);
}
