//! The forward stage: header rewriting, streaming bodies, prefixes, and path hygiene.

use crate::support::*;
use shroud::config::ResponseMode;
use std::io::{Read, Write};

/// Sends a raw HTTP/1.1 request (bypassing client-side URL normalisation); returns status and body.
fn raw_request(addr: std::net::SocketAddr, request: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_headers_are_rewritten() {
    let env = Env::new(ResponseMode::Json);
    env.token("t", "read");
    let resp = env
        .http
        .get(format!("{}/api/items?page=2&q=a%20b", env.shroud.url()))
        .bearer_auth("t")
        .header("connection", "keep-alive, x-private")
        .header("x-private", "hop")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("x-forwarded-for", "10.9.8.7")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .header("x-custom", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo = env.api.last().unwrap();
    assert_eq!(echo.path, "/api/items?page=2&q=a%20b");
    assert!(echo.header("authorization").unwrap().starts_with("Bearer ey"));
    assert_eq!(echo.header_all("authorization").len(), 1);
    for hop in ["x-private", "keep-alive", "te"] {
        assert_eq!(echo.header(hop), None, "{hop} is hop-by-hop");
    }
    assert_eq!(echo.header("x-custom"), Some("kept"));
    assert_eq!(echo.header("x-forwarded-for"), Some("10.9.8.7, 127.0.0.1"));
    assert_eq!(echo.header("x-forwarded-proto"), Some("http"));
    assert_eq!(echo.header("x-forwarded-host"), Some(env.shroud.addr.to_string().as_str()));
    assert_eq!(echo.header("content-length"), None, "a bodiless request stays bodiless");
    assert_eq!(echo.header("transfer-encoding"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_headers_drop_hop_by_hop() {
    let env = Env::new(ResponseMode::Json);
    env.token("t", "read");
    let resp = env
        .http
        .get(format!("{}/api/x", env.shroud.url()))
        .bearer_auth("t")
        .header("x-echo-set-header", "x-api: yes")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-api"], "yes");
    let resp = env
        .http
        .get(format!("{}/api/x", env.shroud.url()))
        .bearer_auth("t")
        .header("x-echo-set-header", "keep-alive: timeout=99")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("keep-alive").is_none_or(|v| v != "timeout=99"));
}

/// Upstream answers pass through as sent: the upstream client is built without decompression (awc's
/// compress-* features are off, and `no_decompress`), so it neither asks for an encoding on the client's
/// behalf nor decodes one (the echo's JSON labelled gzip would fail to decode).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_answers_pass_through_undecoded() {
    let env = Env::new(ResponseMode::Json);
    env.token("t", "read");
    let resp = env
        .http
        .get(format!("{}/api/x", env.shroud.url()))
        .bearer_auth("t")
        .header("x-echo-set-header", "content-encoding: gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body["path"], "/api/x", "the body as the upstream sent it");
    assert_eq!(env.api.last().unwrap().header("accept-encoding"), None, "no encoding asked for");
    let resp = env
        .http
        .get(format!("{}/api/x", env.shroud.url()))
        .bearer_auth("t")
        .header("accept-encoding", "br;q=1, identity;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(env.api.last().unwrap().header("accept-encoding"), Some("br;q=1, identity;q=0.5"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_stream_both_ways() {
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.routes[0].strip_prefix = true;
        c
    });
    env.token("t", "read");
    let body = "x".repeat(1_000_000);
    let resp = env
        .http
        .post(format!("{}/api/upload", env.shroud.url()))
        .bearer_auth("t")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(env.api.last().unwrap().body.len(), 1_000_000);
    let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>("ab".to_string()), Ok("cd".to_string())]);
    let resp = env
        .http
        .put(format!("{}/api/chunked", env.shroud.url()))
        .bearer_auth("t")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo = env.api.last().unwrap();
    assert_eq!((echo.method.as_str(), echo.body.as_str()), ("PUT", "abcd"));
    let resp = env.get("/api/bytes/3000000", Some("t")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().len(), 3_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strip_prefix_and_upstream_status_pass_through() {
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.routes[0].strip_prefix = true;
        c
    });
    env.token("t", "read");
    assert_eq!(env.get("/api/v1/things", Some("t")).await.status(), 200);
    assert_eq!(env.api.last().unwrap().path, "/v1/things");
    assert_eq!(env.get("/api", Some("t")).await.status(), 200);
    assert_eq!(env.api.last().unwrap().path, "/");
    assert_eq!(env.get("/api/status/418", Some("t")).await.status(), 418);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_free_routes_never_forward_a_token() {
    let env = Env::new(ResponseMode::Json);
    let resp = env.get("/public/info", Some("opaque-secret")).await;
    assert_eq!(resp.status(), 200);
    let echo = env.api.last().unwrap();
    assert_eq!(echo.header("authorization"), None, "an opaque token never reaches an API");
    assert_eq!(env.idp.introspections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_tricks_cannot_reach_another_route() {
    let env = Env::new(ResponseMode::Json);
    for path in
        ["/public/../api/x", "/public/%2e%2e/api/x", "/public/%2E%2E/api/x", "/public/..%2fapi/x", "/public\\..\\api"]
    {
        let (status, body) =
            raw_request(env.shroud.addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        assert!(status == 400, "{path}: {status}");
        if !body.is_empty() {
            assert!(body.contains("invalid_request"), "{path}: {body}");
        }
    }
    let (status, _) = raw_request(env.shroud.addr, "GET /%61pi/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 401, "an encoded prefix still meets the /api route's credential check");
    assert_eq!(env.api.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodiless_responses_pass_through() {
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.routes[0].strip_prefix = true;
        c
    });
    env.token("t", "read");
    let head = env.http.head(format!("{}/api/thing", env.shroud.url())).bearer_auth("t").send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(env.api.last().unwrap().method, "HEAD");
    assert!(head.bytes().await.unwrap().is_empty());
    for code in [204u16, 304] {
        let resp = env.get(&format!("/api/status/{code}"), Some("t")).await;
        assert_eq!(resp.status().as_u16(), code);
        assert!(resp.headers().get("transfer-encoding").is_none());
        assert!(resp.bytes().await.unwrap().is_empty());
    }
    // The connection is still usable afterwards.
    assert_eq!(env.get("/api/after", Some("t")).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_identity_and_forwarding_headers_never_reach_the_upstream() {
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.routes[0].forward_claims.insert("sub".into(), "X-User-Id".into());
        c.routes[0].forward_claims.insert("client_id".into(), "X-Client-Id".into());
        c.routes[1].strip_prefix = true;
        c
    });
    env.token("t", "read");
    let forged = [
        ("x_user_id", "mallory"),
        ("X_Client_Id", "evil-client"),
        ("x-user_id", "mallory"),
        ("x_forwarded_for", "1.2.3.4"),
        ("x_forwarded_host", "evil.example"),
        ("forwarded", "for=1.2.3.4;host=evil.example;proto=https"),
        ("x-real-ip", "1.2.3.4"),
        ("x_real_ip", "1.2.3.4"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-prefix", "/admin"),
        ("x-forwarded-server", "evil.example"),
        ("x-original-url", "/admin"),
        ("x-rewrite-url", "/admin"),
        ("x-http-method-override", "DELETE"),
        ("x-http-method", "DELETE"),
        ("x_method_override", "DELETE"),
        ("x-custom", "kept"),
        ("x_custom", "kept too"),
    ];
    let send = |path: &str| {
        let mut req = env.http.get(format!("{}{path}", env.shroud.url())).bearer_auth("t");
        for (name, value) in forged {
            req = req.header(name, value);
        }
        req.send()
    };
    assert_eq!(send("/api/x").await.unwrap().status(), 200);
    let echo = env.api.last().unwrap();
    let mut names: Vec<&str> = echo.headers.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "accept",
            "authorization",
            "date",
            "host",
            "x-client-id",
            "x-custom",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-real-ip",
            "x-request-id",
            "x-user-id",
            "x_custom",
        ],
        "exactly these reach the upstream: {:?}",
        echo.headers
    );
    assert_eq!(echo.header("x-user-id"), Some("alice"), "from the token, not the client");
    assert_eq!(echo.header("x-client-id"), Some("client-1"));
    assert_eq!(echo.header("x-forwarded-for"), Some("127.0.0.1"), "the client's underscore copy is not joined");
    assert_eq!(echo.header("x-real-ip"), Some("127.0.0.1"), "the source address Shroud decided on");
    assert_eq!(echo.header("x-forwarded-host"), Some(env.shroud.addr.to_string().as_str()));

    assert_eq!(send("/public/x").await.unwrap().status(), 200);
    let echo = env.api.last().unwrap();
    assert_eq!(echo.path, "/x");
    assert_eq!(echo.header_all("x-forwarded-prefix"), vec!["/public"], "the prefix Shroud removed");
    for gone in ["forwarded", "x-forwarded-port", "x-forwarded-server", "x-original-url", "x-rewrite-url", "x_real_ip"]
    {
        assert_eq!(echo.header(gone), None, "{gone}");
    }
    assert_eq!(echo.header("x_user_id"), Some("mallory"), "a route without identity headers has none to guard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_host_is_passed_only_when_it_is_a_host() {
    let env = Env::new(ResponseMode::Json);
    for (host, forwarded) in [
        ("app.example:8443", Some("app.example:8443")),
        ("[2001:db8::1]:8443", Some("[2001:db8::1]:8443")),
        ("evil.example/path", None),
        ("a.example, b.example", None),
        ("user@evil.example", None),
        ("evil.example:x", None),
    ] {
        let (status, _) = raw_request(
            env.shroud.addr,
            &format!("GET /public/x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 200, "{host}");
        let echo = env.api.last().unwrap();
        assert_eq!(echo.header("x-forwarded-host"), forwarded, "Host: {host}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_parameters_cannot_move_a_request_to_another_route() {
    let env = Env::with(ResponseMode::Json, |mut c| {
        let mut root = route("/", &c.routes[0].upstream, &[]);
        root.credentials = shroud::config::CredentialKind::None;
        let admin = route("/api/admin", &c.routes[0].upstream, &["admin"]);
        c.routes.extend([root, admin]);
        c
    });
    env.token("t", "read");
    for path in ["/api;x/secret", "/api%3bx/secret", "/api/admin;/users", "/api/admin;v=1/users"] {
        let (status, body) = raw_request(
            env.shroud.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 400, "{path}: a Tomcat-style upstream would see another route's path");
        assert!(body.contains("invalid_request"), "{path}: {body}");
    }
    assert_eq!(env.api.hits(), 0, "nothing was forwarded");
    assert_eq!(env.idp.introspections(), 0, "nothing was introspected");
    assert_eq!(env.get("/api/x;v=1", Some("t")).await.status(), 200, "parameters within one route pass");
    assert_eq!(env.api.last().unwrap().path, "/api/x;v=1");
}
