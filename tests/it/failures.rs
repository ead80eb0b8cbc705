//! Failures that are not the client's fault: the authorization server and the upstream.

use crate::support::*;
use shroud::config::ResponseMode;
use shroud_testkit::{Behaviour, EchoUpstream, FakeAs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_server_trouble_is_503_with_retry_after() {
    let env = Env::with(ResponseMode::Rfc9701, |mut c| {
        c.introspection.timeout_ms = 300;
        c
    });
    env.token("t", "read");
    for behaviour in [
        Behaviour { status: Some(500), ..Default::default() },
        Behaviour { status: Some(503), ..Default::default() },
        Behaviour { delay_ms: 1000, ..Default::default() },
    ] {
        env.idp.set_behaviour(behaviour.clone());
        let resp = env.get("/api/x", Some("t")).await;
        assert_eq!(resp.headers().get("retry-after").map(|v| v.to_str().unwrap()), Some("5"), "{behaviour:?}");
        assert_refusal(resp, 503, "authorization_server_unavailable", None).await;
    }
    assert_eq!(env.api.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_authorization_server_is_503_and_not_ready() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let mut c = config(&idp, &api, ResponseMode::Rfc9701);
    c.issuer.url = format!("http://127.0.0.1:{}", shroud_testkit::net::free_port());
    let shroud = start(c);
    let resp = client().get(format!("{}/api/x", shroud.url())).bearer_auth("t").send().await.unwrap();
    assert_refusal(resp, 503, "authorization_server_unavailable", None).await;
    let ready = client().get(format!("{}/readyz", shroud.url())).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["discovery"], false);
    assert_eq!(api.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_gateway_credentials_are_502_never_401() {
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.introspection.client_secret = shroud::secret::Secret::new("wrong-secret");
        c
    });
    env.token("t", "read");
    let resp = env.get("/api/x", Some("t")).await;
    assert_refusal(resp, 502, "authorization_server_error", None).await;
    let env2 = Env::new(ResponseMode::Json);
    env2.token("t", "read");
    env2.idp.set_behaviour(Behaviour { status: Some(403), ..Default::default() });
    assert_refusal(env2.get("/api/x", Some("t")).await, 502, "authorization_server_error", None).await;
    assert_eq!(env.api.hits() + env2.api.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_is_502_and_slow_upstream_504() {
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.routes.push(route("/dead", &format!("http://127.0.0.1:{}", shroud_testkit::net::free_port()), &[]));
        c.routes[0].timeout_ms = 300;
        c.routes[0].strip_prefix = true;
        c
    });
    env.token("t", "read");
    assert_refusal(env.get("/dead/x", Some("t")).await, 502, "upstream_unavailable", None).await;
    assert_refusal(env.get("/api/slow/1500", Some("t")).await, 504, "upstream_timeout", None).await;
    assert_eq!(env.get("/api/slow/10", Some("t")).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_404_json() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let mut c = config(&idp, &api, ResponseMode::Json);
    c.routes.truncate(1);
    let shroud = start(c);
    let resp = client().get(format!("{}/elsewhere", shroud.url())).send().await.unwrap();
    assert_refusal(resp, 404, "not_found", None).await;
    let resp = client().get(format!("{}/apix", shroud.url())).send().await.unwrap();
    assert_refusal(resp, 404, "not_found", None).await;
}

/// An introspection endpoint that drops the first connection after reading the request, without an answer
/// (what a keep-alive connection closed by the server looks like to the client), then answers every token
/// as active. Returns its URL and the number of requests it read.
fn dropping_first_connection() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(10) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            if counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                continue; // dropped: closed without an answer
            }
            let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 300;
            let answer = format!(r#"{{"active":true,"sub":"alice","scope":"read","exp":{exp},"token_type":"Bearer"}}"#);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_before_the_answer_is_retried_once() {
    let (endpoint, requests) = dropping_first_connection();
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.issuer.introspection_endpoint = Some(endpoint);
        c
    });
    let resp = env.get("/api/x", Some("t")).await;
    assert_eq!(resp.status(), 200, "the second try was answered");
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(env.api.hits(), 1);
}

/// An upstream that answers every request with `head` (status line and headers) and `body`, then stalls
/// for `stall` and closes the connection.
fn broken_upstream(head: &'static str, body: &'static str, stall: std::time::Duration) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(10) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let _ = write!(stream, "{head}\r\n\r\n{body}");
            let _ = stream.flush();
            std::thread::sleep(stall);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_body_cut_short_is_502_and_a_stalled_one_504() {
    let short = broken_upstream("HTTP/1.1 200 OK\r\ncontent-length: 100", "only ten b", std::time::Duration::ZERO);
    let stalled = broken_upstream("HTTP/1.1 200 OK\r\ncontent-length: 100", "", std::time::Duration::from_secs(2));
    let env = Env::with(ResponseMode::Json, |mut c| {
        for (prefix, upstream) in [("/short", &short), ("/stalled", &stalled)] {
            let mut r = route(prefix, upstream, &[]);
            r.timeout_ms = 300;
            c.routes.push(r);
        }
        c
    });
    env.token("t", "read");
    // Head and status already arrived: the answer is still a clean refusal, never a truncated 200.
    assert_refusal(env.get("/short/x", Some("t")).await, 502, "upstream_unavailable", None).await;
    assert_refusal(env.get("/stalled/x", Some("t")).await, 504, "upstream_timeout", None).await;
}
