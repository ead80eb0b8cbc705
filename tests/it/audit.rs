//! The audit log of a real `shroud serve`: one JSON line per decision on `shroud::audit`, with the
//! request id shared with the access log, the upstream and the client, and no token anywhere.

use crate::cli::{base_config, served_config, Served};
use serde_json::Value;
use shroud_testkit::{EchoUpstream, FakeAs, TokenSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_is_one_json_line_with_its_request_id() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let port = shroud_testkit::net::free_port();
    let text = served_config(&base_config("[rate_limit]\nper_client = \"2/h\"\n"), port, &idp.url(), &api.url());
    let served = Served::start(&text, port, "info").await;
    let base = served.base.clone();
    let http = crate::support::client();
    idp.issue("token-of-alice-0001", TokenSpec::active("alice", "read", 300));
    let mut bob = TokenSpec::active("bob", "write", 300);
    bob.client_id = Some("client-2".into());
    idp.issue("token-of-bob-0002", bob);
    let call = |token: Option<&'static str>, id: Option<&'static str>| {
        let mut req = http.get(format!("{base}/api/items"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        req.send()
    };
    let first = call(Some("token-of-alice-0001"), Some("req-abc-1")).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-request-id"], "req-abc-1", "the client's id comes back");
    assert_eq!(api.last().unwrap().header("x-request-id"), Some("req-abc-1"), "and goes upstream");
    let generated = call(Some("token-of-alice-0001"), Some("bad id with spaces")).await.unwrap();
    let generated_id = generated.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(generated_id, "bad id with spaces");
    assert_eq!(call(Some("token-of-alice-0001"), None).await.unwrap().status(), 429);
    assert_eq!(call(Some("token-of-bob-0002"), None).await.unwrap().status(), 403);
    assert_eq!(call(Some("forged-token-0003"), None).await.unwrap().status(), 401);
    assert_eq!(call(None, None).await.unwrap().status(), 401);
    let _ = http.get(format!("{base}/healthz")).send().await;

    let logs = served.logs();
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| l.contains("shroud::audit"))
        .map(|l| serde_json::from_str(&l[l.find('{').expect("JSON")..]).expect("each audit line is JSON"))
        .collect();
    assert_eq!(lines.len(), 6, "one line per decision, none for /healthz:\n{logs}");
    let expected = [
        ("allow", "ok", 200, Some("alice")),
        ("allow", "ok", 200, Some("alice")),
        ("deny", "too_many_requests", 429, Some("alice")),
        ("deny", "insufficient_scope", 403, Some("bob")),
        ("deny", "invalid_token", 401, None),
        ("deny", "unauthorized", 401, None),
    ];
    for (line, (decision, reason, status, sub)) in lines.iter().zip(expected) {
        for field in ["time", "request_id", "route", "method", "path", "client_id", "cache", "latency_ms"] {
            assert!(line.get(field).is_some(), "{field} in {line}");
        }
        assert_eq!((line["decision"].as_str(), line["reason"].as_str()), (Some(decision), Some(reason)), "{line}");
        assert_eq!(line["status"], status);
        assert_eq!(line["sub"].as_str(), sub, "{line}");
        assert_eq!(line["route"], "/api");
        assert_eq!(line["path"], "/api/items");
    }
    assert_eq!(lines[0]["request_id"], "req-abc-1");
    assert_eq!(lines[1]["request_id"], generated_id.as_str());
    assert_eq!(lines[0]["client_id"], "client-1");
    assert_eq!(lines[0]["cache"], "miss");
    assert_eq!(lines[1]["cache"], "memory");
    assert!(logs.contains("request_id=req-abc-1"), "the access log carries the same id");
    for secret in ["token-of-alice-0001", "token-of-bob-0002", "forged-token-0003", "gateway-secret", "eyJ"] {
        assert!(!logs.contains(secret), "{secret:?} appears in the logs:\n{logs}");
    }
}
