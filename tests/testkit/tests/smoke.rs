//! Smoke tests of the test peers over real sockets.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use josekit::jwk::Jwk;
use josekit::jws::{EdDSA, JwsVerifier, ES256, RS256};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};
use shroud_testkit::{Behaviour, Discovery, Echo, EchoUpstream, FakeAs, FakeAsOptions, RedisServer, Tamper, TokenSpec};

const RFC9701: &str = "application/token-introspection+jwt";

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

fn introspect(fake: &FakeAs, token: &str, accept: Option<&str>) -> Response {
    let mut req = client()
        .post(format!("{}/introspect", fake.url()))
        .basic_auth("gateway", Some("gateway-secret"))
        .form(&[("token", token), ("token_type_hint", "access_token")]);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    req.send().unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn b64_json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Verifies `jws` against the JWKS the fake serves; returns (header, claims).
fn verify(fake: &FakeAs, jws: &str) -> Result<(Value, Value), String> {
    let jwks: Value = client().get(format!("{}/jwks", fake.url())).send().unwrap().json().unwrap();
    let header = b64_json(jws.split('.').next().unwrap());
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).ok_or("kid not in JWKS")?;
    let jwk = Jwk::from_map(jwk.as_object().unwrap().clone()).unwrap();
    let verifier: Box<dyn JwsVerifier> = match header["alg"].as_str() {
        Some("ES256") => Box::new(ES256.verifier_from_jwk(&jwk).unwrap()),
        Some("RS256") => Box::new(RS256.verifier_from_jwk(&jwk).unwrap()),
        Some("EdDSA") => Box::new(EdDSA.verifier_from_jwk(&jwk).unwrap()),
        other => return Err(format!("unexpected alg {other:?}")),
    };
    let (payload, _) = josekit::jws::deserialize_compact(jws, verifier.as_ref()).map_err(|e| e.to_string())?;
    Ok((header, serde_json::from_slice(&payload).unwrap()))
}

#[test]
fn discovery_documents() {
    let fake = FakeAs::start();
    let url = fake.url();
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with('/'));
    let r = client().get(format!("{url}/.well-known/openid-configuration")).send().unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().unwrap();
    assert_eq!(doc["issuer"], url);
    assert_eq!(doc["introspection_endpoint"], format!("{url}/introspect"));
    assert_eq!(doc["jwks_uri"], format!("{url}/jwks"));
    assert_eq!(doc["token_endpoint"], format!("{url}/token"));
    assert_eq!(doc["end_session_endpoint"], format!("{url}/logout"));
    assert_eq!(doc["introspection_signed_response_alg_values_supported"], json!(["ES256"]));
    let r = client().get(format!("{url}/.well-known/oauth-authorization-server")).send().unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(fake.discovery_fetches(), 1);

    let oauth = FakeAs::start_with(FakeAsOptions { discovery: Discovery::Oauth, ..Default::default() });
    let get = |p: &str| client().get(format!("{}{p}", oauth.url())).send().unwrap().status();
    assert_eq!(get("/.well-known/openid-configuration"), 404);
    assert_eq!(get("/.well-known/oauth-authorization-server"), 200);
    assert_eq!(oauth.discovery_fetches(), 1);
}

#[test]
fn json_introspection_active_inactive_and_client_auth() {
    let fake = FakeAs::start();
    let mut spec = TokenSpec::active("alice", "read write", 60);
    spec.aud = Some(json!(["api-1", "api-2"]));
    spec.extra.insert("tenant".into(), json!("acme"));
    fake.issue("tok-a", spec);

    let r = introspect(&fake, "tok-a", None);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().unwrap();
    assert_eq!(v["active"], true);
    assert_eq!(v["sub"], "alice");
    assert_eq!(v["scope"], "read write");
    assert_eq!(v["client_id"], "client-1");
    assert_eq!(v["aud"], json!(["api-1", "api-2"]));
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["tenant"], "acme");
    assert!(v["exp"].as_i64().unwrap() > now());
    let rec = fake.last_introspection().unwrap();
    assert_eq!(rec.auth_method, "client_secret_basic");
    assert_eq!(rec.token, "tok-a");

    // Unknown, expired and revoked tokens are inactive.
    let v: Value = introspect(&fake, "nope", None).json().unwrap();
    assert_eq!(v, json!({"active": false}));
    fake.issue("tok-old", TokenSpec::active("bob", "read", -5));
    let v: Value = introspect(&fake, "tok-old", None).json().unwrap();
    assert_eq!(v, json!({"active": false}));
    fake.revoke("tok-a");
    let v: Value = introspect(&fake, "tok-a", None).json().unwrap();
    assert_eq!(v, json!({"active": false}));

    // Client authentication is required.
    let url = format!("{}/introspect", fake.url());
    let r = client().post(&url).form(&[("token", "x")]).send().unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_client");
    assert_eq!(fake.last_introspection().unwrap().auth_method, "none");
    let r = client().post(&url).basic_auth("gateway", Some("wrong")).form(&[("token", "x")]).send().unwrap();
    assert_eq!(r.status(), 401);
    // client_secret_post works too.
    let r = client()
        .post(&url)
        .form(&[("token", "x"), ("client_id", "gateway"), ("client_secret", "gateway-secret")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(fake.last_introspection().unwrap().auth_method, "client_secret_post");
    assert_eq!(fake.introspections(), 7);
}

#[test]
fn basic_auth_credentials_are_form_urlencoded() {
    let fake = FakeAs::start_with(FakeAsOptions {
        client_id: "gw:1".into(),
        client_secret: "s p%".into(),
        ..Default::default()
    });
    let creds = STANDARD.encode("gw%3A1:s+p%25");
    let r = client()
        .post(format!("{}/introspect", fake.url()))
        .header("authorization", format!("Basic {creds}"))
        .form(&[("token", "x")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn rfc9701_answers_verify_against_jwks() {
    for alg in ["ES256", "RS256", "EdDSA"] {
        let fake = FakeAs::start_with(FakeAsOptions { alg, ..Default::default() });
        fake.issue("tok", TokenSpec::active("alice", "read", 60));
        let r = introspect(&fake, "tok", Some(RFC9701));
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], RFC9701);
        let jws = r.text().unwrap();
        let (header, claims) = verify(&fake, &jws).unwrap();
        assert_eq!(header["typ"], "token-introspection+jwt");
        assert_eq!(header["alg"], alg);
        assert_eq!(claims["iss"], fake.url());
        assert_eq!(claims["aud"], "gateway");
        assert!(claims["iat"].as_i64().unwrap() >= now() - 5);
        let ti = &claims["token_introspection"];
        assert_eq!(ti["active"], true);
        assert_eq!(ti["sub"], "alice");
        assert_eq!(ti["token_type"], "Bearer");

        let jws = introspect(&fake, "other", Some(RFC9701)).text().unwrap();
        let (_, claims) = verify(&fake, &jws).unwrap();
        assert_eq!(claims["token_introspection"], json!({"active": false}));
    }
}

#[test]
fn jwt_mode_tampering_and_rotation() {
    let fake = FakeAs::start();
    fake.issue("tok", TokenSpec::active("alice", "read", 60));
    let r = introspect(&fake, "tok", Some("application/jwt"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/jwt");
    let (header, claims) = verify(&fake, &r.text().unwrap()).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["iss"], fake.url());
    assert!(claims["jti"].as_str().unwrap().len() >= 16);

    let r = introspect(&fake, "unknown", Some("application/jwt"));
    assert_eq!(r.status(), 204);
    fake.set_behaviour(Behaviour { inactive_as_json_in_jwt_mode: true, ..Default::default() });
    let r = introspect(&fake, "unknown", Some("application/jwt"));
    assert_eq!(r.json::<Value>().unwrap(), json!({"active": false}));

    for (tamper, verifies) in [
        (Tamper::WrongKey, false),
        (Tamper::UnknownKid, false),
        (Tamper::BadSignature, false),
        (Tamper::JkuHeader, true),
        (Tamper::Expired, true),
        (Tamper::NoKid, false),
    ] {
        fake.set_behaviour(Behaviour { tamper: tamper.clone(), ..Default::default() });
        let jws = introspect(&fake, "tok", Some("application/jwt")).text().unwrap();
        assert_eq!(verify(&fake, &jws).is_ok(), verifies, "{tamper:?}");
    }
    fake.set_behaviour(Behaviour { tamper: Tamper::AlgNone, ..Default::default() });
    let jws = introspect(&fake, "tok", Some(RFC9701)).text().unwrap();
    assert!(jws.ends_with('.'));
    assert_eq!(b64_json(jws.split('.').next().unwrap())["alg"], "none");

    let old_kid = fake.kid();
    fake.rotate_key();
    let jwks = fake.public_jwks();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_ne!(jwks["keys"][0]["kid"], old_kid.as_str());
    fake.set_behaviour(Behaviour::default());
    let jws = introspect(&fake, "tok", Some(RFC9701)).text().unwrap();
    let (header, _) = verify(&fake, &jws).unwrap();
    assert_eq!(header["kid"], jwks["keys"][0]["kid"]);
    assert_eq!(fake.jwks_fetches(), 8);
}

#[test]
fn behaviour_knobs_and_token_endpoint() {
    let fake = FakeAs::start();
    fake.set_behaviour(Behaviour {
        status: Some(503),
        delay_ms: 200,
        cache_control: Some("max-age=60".into()),
        ..Default::default()
    });
    let t = Instant::now();
    let r = introspect(&fake, "x", None);
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["cache-control"], "max-age=60");
    fake.set_behaviour(Behaviour::default());

    let r = client()
        .post(format!("{}/token", fake.url()))
        .basic_auth("demo-client", Some("demo-client-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "read write")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    assert_eq!(v["expires_in"], 300);
    let token = v["access_token"].as_str().unwrap();
    assert_eq!(token.len(), 43);
    let v: Value = introspect(&fake, token, None).json().unwrap();
    assert_eq!(v["active"], true);
    assert_eq!(v["sub"], "demo-client");
    assert_eq!(v["scope"], "read write");

    let r = client().post(format!("{}/revoke", fake.url())).form(&[("token", token)]).send().unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = introspect(&fake, token, None).json().unwrap();
    assert_eq!(v["active"], false);

    let r = client()
        .post(format!("{}/token", fake.url()))
        .basic_auth("demo-client", Some("nope"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Sends raw bytes and reads until the server closes the connection.
fn raw_exchange(url: &str, request: &[u8]) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn echo_reports_headers_and_body() {
    let up = EchoUpstream::start();
    let r = client()
        .post(format!("{}/api/things?x=1&y=2", up.url()))
        .header("x-one", "1")
        .header("x-dup", "a")
        .header("x-dup2", "b")
        .body("hello body")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let echo: Echo = r.json().unwrap();
    assert_eq!(echo.method, "POST");
    assert_eq!(echo.path, "/api/things?x=1&y=2");
    assert_eq!(echo.body, "hello body");
    assert_eq!(echo.header("X-One"), Some("1"));
    assert_eq!(up.last().unwrap().body, "hello body");

    // Wire order and duplicates, a chunked body, and response headers on request.
    let raw = raw_exchange(
        &up.url(),
        b"PUT /status/418/x HTTP/1.1\r\nhost: a\r\nX-Dup: 1\r\nx-other: o\r\nx-dup: 2\r\n\
          x-echo-set-header: Keep-Alive: timeout=5\r\nx-echo-set-header: connection: close, x-hop\r\n\
          transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
    );
    assert!(raw.starts_with("HTTP/1.1 418 "), "{raw}");
    assert!(raw.contains("\r\nKeep-Alive: timeout=5\r\n"), "{raw}");
    assert!(raw.contains("\r\nconnection: close, x-hop\r\n"), "{raw}");
    let echo: Echo = serde_json::from_str(raw.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(echo.body, "abcdefg");
    assert_eq!(echo.header_all("x-dup"), vec!["1", "2"]);
    let names: Vec<&str> = echo.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(&names[..4], ["host", "x-dup", "x-other", "x-dup"]);

    // Streaming and slow paths.
    let r = client().get(format!("{}/bytes/100000", up.url())).send().unwrap();
    assert!(r.headers().get("content-length").is_none());
    assert_eq!(r.headers()["transfer-encoding"], "chunked");
    let body = r.bytes().unwrap();
    assert_eq!(body.len(), 100_000);
    assert!(body.iter().all(|&b| b == b'x'));
    let t = Instant::now();
    let r = client().get(format!("{}/slow/150", up.url())).send().unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(r.json::<Echo>().unwrap().path, "/slow/150");
    assert_eq!(up.hits(), 4);

    // Dropping stops the server.
    let url = up.url();
    drop(up);
    assert!(client().get(&url).send().is_err());
}

#[test]
fn redis_server_starts_answers_ping_and_restarts() {
    let mut redis = RedisServer::start();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
    let port = redis.port();
    let cmd = |c: &[u8]| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(c).unwrap();
        let mut buf = [0u8; 128];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(cmd(b"*1\r\n$4\r\nPING\r\n"), "+PONG\r\n");
    assert_eq!(cmd(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"), "+OK\r\n");
    redis.restart();
    assert_eq!(redis.port(), port);
    assert_eq!(cmd(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), "$-1\r\n");
    redis.stop();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn rfc9701_claim_tampering() {
    let fake = FakeAs::start();
    fake.issue("tok", TokenSpec::active("alice", "read", 60));
    let answer = |tamper: Tamper| {
        fake.set_behaviour(Behaviour { tamper, ..Default::default() });
        let jws = introspect(&fake, "tok", Some(RFC9701)).text().unwrap();
        verify(&fake, &jws).expect("signature should still verify")
    };
    let t = now();
    assert_eq!(answer(Tamper::WrongIss).1["iss"], "https://evil.example");
    assert_eq!(answer(Tamper::WrongAud).1["aud"], "someone-else");
    assert_eq!(answer(Tamper::TypJwt).0["typ"], "JWT");
    assert!(answer(Tamper::MissingIat).1.get("iat").is_none());
    assert!(answer(Tamper::FutureIat).1["iat"].as_i64().unwrap() >= t + 590);
    assert!(answer(Tamper::NotYetValid).1["nbf"].as_i64().unwrap() >= t + 590);
    assert_eq!(answer(Tamper::ActiveString).1["token_introspection"]["active"], "true");
    assert_eq!(answer(Tamper::JkuHeader).0["jku"], "http://127.0.0.1:1/keys");
    // Jwt-mode-only tampering leaves RFC 9701 answers alone.
    let (_, claims) = answer(Tamper::MissingExp);
    assert!(claims["token_introspection"]["exp"].is_i64());

    for tamper in [Tamper::Hs256WithPublicKey, Tamper::Hs256WithJwkJson] {
        fake.set_behaviour(Behaviour { tamper, ..Default::default() });
        let jws = introspect(&fake, "tok", Some(RFC9701)).text().unwrap();
        let header = b64_json(jws.split('.').next().unwrap());
        assert_eq!(header["alg"], "HS256");
        assert_eq!(header["kid"], fake.kid().as_str());
        assert!(verify(&fake, &jws).is_err());
    }
}
