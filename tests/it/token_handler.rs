//! The token handler over real HTTP: OAuth Agent API, cookies, OAuth Proxy, refresh, logout and
//! back-channel logout, against the fake authorization server's code flow.

use crate::spa::*;
use crate::support::*;
use reqwest::Method;
use shroud::config::ResponseMode;
use shroud::secret::Secret;
use shroud_testkit::{EchoUpstream, FakeAs, LogoutSpec, RedisServer};
use std::time::Duration;

fn spa_env() -> Env {
    Env::with(ResponseMode::Rfc9701, token_handler_config)
}

async fn json(resp: reqwest::Response) -> serde_json::Value {
    resp.json().await.unwrap()
}

async fn assert_agent_error(resp: reqwest::Response, status: u16, code: &str) {
    assert_eq!(resp.status().as_u16(), status, "status for {code}");
    let body = json(resp).await;
    assert_eq!(body["code"], code, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_api_call_refresh_logout_cycle() {
    let env = spa_env();
    let mut spa = Browser::new(&env.shroud.url());

    let callback = spa.start_login().await;
    let login = spa.cookies.get("shroud-login").expect("login cookie").clone();
    assert_eq!(login.path, "/oauth-agent");
    let authorize: std::collections::HashMap<_, _> = env.idp.last_authorize().unwrap().into_iter().collect();
    assert_eq!(authorize["code_challenge_method"], "S256");
    assert_eq!(authorize["client_id"], "webapp");
    assert!(authorize.contains_key("nonce") && authorize.contains_key("state"));

    let resp = spa.end_login(&callback).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN);
    let body = json(resp).await;
    assert_eq!((body["handled"].as_bool(), body["isLoggedIn"].as_bool()), (Some(true), Some(true)));
    let csrf = body["csrf"].as_str().unwrap().to_string();
    spa.csrf = Some(csrf.clone());
    assert!(!spa.cookies.contains_key("shroud-login"), "login cookie cleared");
    for (name, path) in
        [("shroud-at", "/"), ("shroud-auth", "/oauth-agent"), ("shroud-id", "/oauth-agent"), ("shroud-csrf", "/")]
    {
        let cookie = spa.cookies.get(name).unwrap_or_else(|| panic!("{name} set"));
        assert_eq!(cookie.path, path, "{name}");
        for attr in ["HttpOnly", "SameSite=Strict", "Secure"] {
            assert!(cookie.line.contains(attr), "{name}: {attr} in {}", cookie.line);
        }
    }
    let access_token = spa.decrypt("shroud-at", &[KEY1]).unwrap();
    assert_eq!(env.idp.session_of(&access_token).unwrap().1, "alice", "the at cookie holds exactly the access token");
    assert_eq!(spa.decrypt("shroud-csrf", &[KEY1]).unwrap(), csrf, "the csrf cookie holds exactly the CSRF token");

    // The OAuth Proxy: cookie → phantom JWT, cookies and CSRF header stripped.
    let resp = spa.send(Method::GET, "/spa/orders", None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN);
    let echo = env.api.last().unwrap();
    assert!(echo.header("authorization").unwrap().starts_with("Bearer ey"));
    assert_ne!(forwarded_jwt(&env.api), access_token);
    assert_eq!(echo.header("cookie"), None);
    assert_eq!(echo.header("x-shroud-csrf"), None);
    assert_eq!(spa.send(Method::POST, "/spa/orders", Some(serde_json::json!({"n": 1}))).await.status(), 200);

    let info = json(spa.send(Method::GET, "/oauth-agent/userInfo", None).await).await;
    assert_eq!(info["sub"], "alice");
    let claims = json(spa.send(Method::GET, "/oauth-agent/claims", None).await).await;
    assert_eq!((claims["sub"].as_str(), claims["aud"].as_str()), (Some("alice"), Some("webapp")));
    assert_eq!(claims["nonce"], authorize["nonce"].as_str());

    // A page reload reports the session and the same CSRF token.
    let reload = json(spa.end_login(&format!("{ORIGIN}/orders")).await).await;
    assert_eq!((reload["handled"].as_bool(), reload["isLoggedIn"].as_bool()), (Some(false), Some(true)));
    assert_eq!(reload["csrf"], csrf);

    let old_refresh = spa.decrypt("shroud-auth", &[KEY1]).unwrap();
    let resp = spa.send(Method::POST, "/oauth-agent/refresh", None).await;
    assert_eq!(resp.status(), 204);
    let new_access = spa.decrypt("shroud-at", &[KEY1]).unwrap();
    assert_ne!(new_access, access_token, "access token rewritten");
    assert_ne!(spa.decrypt("shroud-auth", &[KEY1]).unwrap(), old_refresh, "rotated refresh token stored");
    assert_eq!(spa.decrypt("shroud-csrf", &[KEY1]).unwrap(), csrf, "CSRF token unchanged by refresh");
    assert_eq!(spa.send(Method::GET, "/spa/after-refresh", None).await.status(), 200);

    let current_refresh = spa.decrypt("shroud-auth", &[KEY1]).unwrap();
    let before_logout = spa.cookies.clone();
    let resp = spa.send(Method::POST, "/oauth-agent/logout", None).await;
    assert_eq!(resp.status(), 200);
    let cleared: Vec<String> =
        resp.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let body = json(resp).await;
    let url = url::Url::parse(body["url"].as_str().unwrap()).unwrap();
    assert_eq!(url.path(), "/logout");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["post_logout_redirect_uri"], "http://127.0.0.1:8080/");
    assert!(q.contains_key("id_token_hint"));
    for (name, path) in [
        ("shroud-at", "/"),
        ("shroud-auth", "/oauth-agent"),
        ("shroud-id", "/oauth-agent"),
        ("shroud-csrf", "/"),
        ("shroud-login", "/oauth-agent"),
    ] {
        assert!(
            cleared.iter().any(|l| l.starts_with(&format!("{name}=;"))
                && l.contains(&format!("Path={path};"))
                && l.contains("Max-Age=0")),
            "{name} cleared on {path}: {cleared:?}"
        );
    }
    assert!(spa.cookies.is_empty(), "every cookie cleared");
    assert!(env.idp.revoked().contains(&current_refresh), "refresh token revoked at the AS");

    // A stolen copy of the old cookies no longer works.
    spa.cookies = before_logout;
    let resp = spa.send(Method::GET, "/spa/orders", None).await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_and_csrf_are_enforced() {
    let env = spa_env();
    let mut spa = Browser::new(&env.shroud.url());
    spa.login().await;
    let hits = env.api.hits();

    for origin in [None, Some("null"), Some("http://127.0.0.1:8080.evil.example"), Some("http://evil.example")] {
        let mut other = Browser::new(&env.shroud.url());
        other.origin = origin.map(str::to_string);
        let resp = other.send(Method::POST, "/oauth-agent/login/start", None).await;
        assert!(resp.headers().get("access-control-allow-origin").is_none(), "{origin:?}");
        assert_agent_error(resp, 401, "unauthorized_request").await;
    }
    let mut evil = Browser::new(&env.shroud.url());
    evil.cookies = spa.cookies.clone();
    evil.csrf = spa.csrf.clone();
    evil.origin = Some("http://evil.example".into());
    let resp = evil.send(Method::GET, "/spa/x", None).await;
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    assert_agent_error(resp, 401, "unauthorized_request").await;

    // Same-origin GETs carry no Origin: accepted (SameSite=Strict protects them).
    let mut same_origin = Browser::new(&env.shroud.url());
    same_origin.cookies = spa.cookies.clone();
    same_origin.origin = None;
    assert_eq!(same_origin.send(Method::GET, "/spa/x", None).await.status(), 200);
    assert_agent_error(same_origin.send(Method::POST, "/spa/x", None).await, 401, "unauthorized_request").await;

    let csrf = spa.csrf.take();
    let resp = spa.send(Method::POST, "/spa/x", None).await;
    assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN, "errors carry CORS for trusted origins");
    assert_agent_error(resp, 401, "unauthorized_request").await;
    spa.csrf = Some("wrong".into());
    assert_agent_error(spa.send(Method::POST, "/spa/x", None).await, 401, "unauthorized_request").await;
    assert_agent_error(spa.send(Method::POST, "/oauth-agent/refresh", None).await, 401, "unauthorized_request").await;
    assert_agent_error(spa.send(Method::POST, "/oauth-agent/logout", None).await, 401, "unauthorized_request").await;
    spa.csrf = csrf;
    let csrf_cookie = spa.cookies.remove("shroud-csrf").unwrap();
    assert_agent_error(spa.send(Method::PUT, "/spa/x", None).await, 401, "unauthorized_request").await;
    spa.cookies.insert("shroud-csrf".into(), csrf_cookie);
    assert_eq!(spa.send(Method::DELETE, "/spa/x", None).await.status(), 200);
    assert_eq!(env.api.hits(), hits + 2, "only the two accepted calls reached the API");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_answer_trusted_origins_only() {
    let env = spa_env();
    let http = client();
    for path in ["/spa/orders", "/oauth-agent/refresh"] {
        let resp = http
            .request(Method::OPTIONS, format!("{}{path}", env.shroud.url()))
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "x-shroud-csrf, content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "{path}");
        let h = resp.headers();
        assert_eq!(h["access-control-allow-origin"], ORIGIN);
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert!(h["access-control-allow-headers"].to_str().unwrap().contains("x-shroud-csrf"));
        assert!(h["access-control-allow-headers"].to_str().unwrap().contains("content-type"));
        assert!(h.contains_key("access-control-max-age"));
        assert_eq!(h["vary"], "Origin");
        let resp = http
            .request(Method::OPTIONS, format!("{}{path}", env.shroud.url()))
            .header("origin", "http://evil.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(resp.headers().get("access-control-allow-origin").is_none());
        assert_agent_error(resp, 401, "unauthorized_request").await;
    }
    assert_eq!(env.api.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_foreign_cookies_are_refused() {
    let env = spa_env();
    let mut spa = Browser::new(&env.shroud.url());
    spa.login().await;
    let good = spa.cookies["shroud-at"].value.clone();
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut raw = engine.decode(&good).unwrap();
    raw[20] ^= 0x01;
    spa.cookies.get_mut("shroud-at").unwrap().value = engine.encode(&raw);
    assert_agent_error(spa.send(Method::GET, "/spa/x", None).await, 401, "unauthorized_request").await;
    assert_agent_error(spa.send(Method::GET, "/oauth-agent/userInfo", None).await, 401, "unauthorized_request").await;
    let foreign = spa.encrypt("shroud-at", &[7u8; 32], "some-token");
    spa.cookies.get_mut("shroud-at").unwrap().value = foreign;
    assert_agent_error(spa.send(Method::GET, "/spa/x", None).await, 401, "unauthorized_request").await;
    spa.cookies.remove("shroud-at");
    assert_agent_error(spa.send(Method::GET, "/spa/x", None).await, 401, "unauthorized_request").await;
    assert_eq!(env.api.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_keys_rotate_without_logging_anyone_out() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let old = start(token_handler_config(config(&idp, &api, ResponseMode::Json)));
    let mut spa = Browser::new(&old.url());
    spa.login().await;
    drop(old);
    let mut rotated_config = token_handler_config(config(&idp, &api, ResponseMode::Json));
    rotated_config.token_handler.cookie_encryption_keys = vec![Secret::new(KEY2), Secret::new(KEY1)];
    let rotated = start(rotated_config);
    spa.base = rotated.url();
    assert_eq!(spa.send(Method::GET, "/spa/x", None).await.status(), 200, "old key still decrypts");
    assert_eq!(spa.send(Method::POST, "/oauth-agent/refresh", None).await.status(), 204);
    assert!(spa.decrypt("shroud-at", &[KEY2]).is_some(), "new cookies use the new key");
    assert!(spa.decrypt("shroud-at", &[KEY1]).is_none());
    assert_eq!(spa.send(Method::GET, "/spa/x", None).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_share_one_grant() {
    let env = spa_env();
    let mut spa = Browser::new(&env.shroud.url());
    spa.login().await;
    env.idp.set_refresh_delay_ms(300);
    let mut tabs = Vec::new();
    for _ in 0..5 {
        let mut tab = Browser::new(&env.shroud.url());
        tab.cookies = spa.cookies.clone();
        tab.csrf = spa.csrf.clone();
        tabs.push(tokio::spawn(async move {
            let status = tab.send(Method::POST, "/oauth-agent/refresh", None).await.status().as_u16();
            (status, tab.decrypt("shroud-at", &[KEY1]).unwrap())
        }));
    }
    let mut tokens = Vec::new();
    for tab in tabs {
        let (status, token) = tab.await.unwrap();
        assert_eq!(status, 204);
        tokens.push(token);
    }
    assert_eq!(env.idp.refresh_grants(), 1, "one refresh-token grant for five concurrent calls");
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every tab got the same new access token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_and_tokens() {
    let env = spa_env();
    let mut spa = Browser::new(&env.shroud.url());
    spa.login().await;
    let access = spa.decrypt("shroud-at", &[KEY1]).unwrap();
    env.idp.revoke(&access);
    assert_agent_error(spa.send(Method::GET, "/oauth-agent/userInfo", None).await, 401, "token_expired").await;
    let refresh = spa.decrypt("shroud-auth", &[KEY1]).unwrap();
    let revoked =
        client().post(format!("{}/revoke", env.idp.url())).form(&[("token", refresh.as_str())]).send().await.unwrap();
    assert!(revoked.status().is_success());
    let resp = spa.send(Method::POST, "/oauth-agent/refresh", None).await;
    assert_agent_error(resp, 401, "session_expired").await;
    assert!(spa.cookies.is_empty(), "an expired session clears every cookie");
    assert_agent_error(spa.send(Method::POST, "/oauth-agent/refresh", None).await, 401, "unauthorized_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_errors_and_state_checks() {
    let env = spa_env();
    let mut spa = Browser::new(&env.shroud.url());
    spa.start_login().await;
    assert_agent_error(
        spa.end_login(&format!("{ORIGIN}/callback?error=access_denied&state=x")).await,
        400,
        "access_denied",
    )
    .await;
    assert_agent_error(
        spa.end_login(&format!("{ORIGIN}/callback?error=login_required&state=x")).await,
        401,
        "login_required",
    )
    .await;
    assert_agent_error(
        spa.end_login(&format!("{ORIGIN}/callback?error=%3Cscript%3E")).await,
        400,
        "authorization_error",
    )
    .await;

    let callback = spa.start_login().await;
    let forged = callback.replace("state=", "state=forged");
    assert_agent_error(spa.end_login(&forged).await, 400, "invalid_request").await;

    let login_cookie = spa.cookies["shroud-login"].clone();
    assert_eq!(spa.end_login(&callback).await.status(), 200);
    // Replaying the same callback: first without a login in progress, then with the old login cookie.
    assert_agent_error(spa.end_login(&callback).await, 401, "unauthorized_request").await;
    spa.cookies.insert("shroud-login".into(), login_cookie);
    assert_agent_error(spa.end_login(&callback).await, 400, "invalid_request").await;
    assert_agent_error(spa.end_login("not a url").await, 400, "invalid_request").await;
    let resp = spa
        .send(
            Method::POST,
            "/oauth-agent/login/start",
            Some(serde_json::json!({"extraParams": [{"key": "state", "value": "x"}]})),
        )
        .await;
    assert_agent_error(resp, 400, "invalid_request").await;
    let resp = spa
        .send(
            Method::POST,
            "/oauth-agent/login/start",
            Some(serde_json::json!({"extraParams": [{"key": "prompt", "value": "login"}]})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let url = json(resp).await["authorizationRequestUrl"].as_str().unwrap().to_string();
    assert!(url.contains("prompt=login"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_tokens_with_the_wrong_nonce_are_refused() {
    let env = spa_env();
    let mut spa = Browser::new(&env.shroud.url());
    let callback = spa.start_login().await;
    let plain = spa.decrypt("shroud-login", &[KEY1]).unwrap();
    let mut login: serde_json::Value = serde_json::from_str(&plain).unwrap();
    login["nonce"] = "another-nonce".into();
    let key = hex::decode(KEY1).unwrap().try_into().unwrap();
    spa.cookies.get_mut("shroud-login").unwrap().value = spa.encrypt("shroud-login", &key, &login.to_string());
    assert_agent_error(spa.end_login(&callback).await, 400, "invalid_request").await;
    assert!(!spa.cookies.contains_key("shroud-at"), "no session was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_routes_take_bearer_tokens_or_cookies_never_both() {
    let env = spa_env();
    let mut spa = Browser::new(&env.shroud.url());
    spa.login().await;
    assert_eq!(spa.send(Method::GET, "/any/x", None).await.status(), 200, "cookies");
    env.token("bearer-token", "read");
    assert_eq!(env.get("/any/x", Some("bearer-token")).await.status(), 200, "bearer");
    let resp = client()
        .get(format!("{}/any/x", env.shroud.url()))
        .header("authorization", "Bearer bad@token")
        .header("cookie", spa.cookie_header("/any/x"))
        .send()
        .await
        .unwrap();
    assert_refusal(resp, 400, "invalid_request", Some("Bearer realm=\"shroud\", error=\"invalid_request\"")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_routes_never_see_token_handler_cookies() {
    let env = spa_env();
    let mut spa = Browser::new(&env.shroud.url());
    spa.login().await;
    env.token("t", "read");
    let resp = client()
        .get(format!("{}/api/x", env.shroud.url()))
        .bearer_auth("t")
        .header("cookie", format!("theme=dark; {}", spa.cookie_header("/api/x")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(env.api.last().unwrap().header("cookie"), Some("theme=dark"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backchannel_logout_ends_the_session() {
    let env = spa_env();
    let mut spa = Browser::new(&env.shroud.url());
    spa.login().await;
    assert_eq!(spa.send(Method::GET, "/spa/x", None).await.status(), 200);
    let access = spa.decrypt("shroud-at", &[KEY1]).unwrap();
    let (sid, _) = env.idp.session_of(&access).unwrap();
    let endpoint = format!("{}/oauth-agent/backchannel-logout", env.shroud.url());
    let http = client();
    let invalid = [
        LogoutSpec { sid: Some(sid.clone()), nonce: true, ..Default::default() },
        LogoutSpec { sid: Some(sid.clone()), events: false, ..Default::default() },
        LogoutSpec { sid: Some(sid.clone()), aud: Some("someone-else".into()), ..Default::default() },
        LogoutSpec { sid: Some(sid.clone()), wrong_key: true, ..Default::default() },
        LogoutSpec { sid: Some(sid.clone()), iss: Some("https://evil.example".into()), ..Default::default() },
        LogoutSpec { ..Default::default() },
    ];
    for spec in invalid {
        let token = env.idp.logout_token(spec.clone());
        let resp = http.post(&endpoint).form(&[("logout_token", token)]).send().await.unwrap();
        assert_agent_error(resp, 400, "invalid_request").await;
    }
    let resp = http.post(&endpoint).body("nothing").send().await.unwrap();
    assert_agent_error(resp, 400, "invalid_request").await;
    assert_eq!(spa.send(Method::GET, "/spa/x", None).await.status(), 200, "invalid tokens ended nothing");

    let token = env.idp.logout_token(LogoutSpec { sid: Some(sid), ..Default::default() });
    let resp = http.post(&endpoint).form(&[("logout_token", token)]).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let hits = env.api.hits();
    assert_eq!(spa.send(Method::GET, "/spa/x", None).await.status(), 401, "the cached grant was purged");
    assert_agent_error(spa.send(Method::POST, "/oauth-agent/refresh", None).await, 401, "session_expired").await;
    assert_eq!(env.api.hits(), hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backchannel_logout_reaches_every_instance_sharing_redis() {
    let redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let a = start(with_redis(token_handler_config(config(&idp, &api, ResponseMode::Json)), &redis.url()));
    let b = start(with_redis(token_handler_config(config(&idp, &api, ResponseMode::Json)), &redis.url()));
    let mut on_a = Browser::new(&a.url());
    on_a.login().await;
    let mut on_b = Browser::new(&b.url());
    on_b.cookies = on_a.cookies.clone();
    on_b.csrf = on_a.csrf.clone();
    assert_eq!(on_a.send(Method::GET, "/spa/x", None).await.status(), 200);
    assert_eq!(on_b.send(Method::GET, "/spa/x", None).await.status(), 200, "B has the grant in memory now");
    let access = on_a.decrypt("shroud-at", &[KEY1]).unwrap();
    let (sid, _) = idp.session_of(&access).unwrap();
    let token = idp.logout_token(LogoutSpec { sid: Some(sid), ..Default::default() });
    let resp = client()
        .post(format!("{}/oauth-agent/backchannel-logout", a.url()))
        .form(&[("logout_token", token.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut refused = false;
    for _ in 0..10 {
        if on_b.send(Method::GET, "/spa/x", None).await.status() == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "instance B refuses the session within a second");
    assert_agent_error(on_b.send(Method::POST, "/oauth-agent/refresh", None).await, 401, "session_expired").await;
    // The same logout token, replayed on the other instance, is refused: the replay cache is shared.
    let resp = client()
        .post(format!("{}/oauth-agent/backchannel-logout", b.url()))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    assert_agent_error(resp, 400, "invalid_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_authorization_server_is_502_with_cors() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let mut c = token_handler_config(config(&idp, &api, ResponseMode::Json));
    c.issuer.url = format!("http://127.0.0.1:{}", shroud_testkit::net::free_port());
    let shroud = start(c);
    let mut spa = Browser::new(&shroud.url());
    let resp = spa.send(Method::POST, "/oauth-agent/login/start", None).await;
    assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN);
    assert_agent_error(resp, 502, "authorization_server_error").await;
    let resp = spa.send(Method::GET, "/oauth-agent/nothing-here", None).await;
    assert_agent_error(resp, 404, "not_found").await;
    let token = idp.logout_token(LogoutSpec { sid: Some("s".into()), ..Default::default() });
    let resp = client()
        .post(format!("{}/oauth-agent/backchannel-logout", shroud.url()))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    assert_agent_error(resp, 502, "authorization_server_error").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_authorization_endpoint_is_500_server_error() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let mut c = token_handler_config(config(&idp, &api, ResponseMode::Json));
    // Discovery fails; only the configured endpoints are known, and none is the authorization endpoint.
    c.issuer.url = format!("http://127.0.0.1:{}", shroud_testkit::net::free_port());
    c.issuer.introspection_endpoint = Some(format!("{}/introspect", idp.url()));
    c.issuer.jwks_uri = Some(format!("{}/jwks", idp.url()));
    let shroud = start(c);
    let mut spa = Browser::new(&shroud.url());
    let resp = spa.send(Method::POST, "/oauth-agent/login/start", None).await;
    assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN);
    assert_agent_error(resp, 500, "server_error").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_endpoints_answer_other_methods_with_405_and_allow() {
    let env = spa_env();
    let http = client();
    let agent = format!("{}/oauth-agent", env.shroud.url());
    for (method, path, allow) in [
        (Method::PUT, "/login/start", "POST, OPTIONS"),
        (Method::GET, "/refresh", "POST, OPTIONS"),
        (Method::DELETE, "/userInfo", "GET, OPTIONS"),
        (Method::TRACE, "/claims", "GET, OPTIONS"),
        (Method::GET, "/backchannel-logout", "POST, OPTIONS"),
    ] {
        let resp =
            http.request(method.clone(), format!("{agent}{path}")).header("origin", ORIGIN).send().await.unwrap();
        assert_eq!(resp.headers()["allow"], allow, "{method} {path}");
        assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN, "errors carry CORS for trusted origins");
        assert_agent_error(resp, 405, "method_not_allowed").await;
    }
    // A plain OPTIONS (no preflight) lists the methods; an unknown path is still 404.
    let resp = http.request(Method::OPTIONS, format!("{agent}/userInfo")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["allow"], "GET, OPTIONS");
    assert_agent_error(http.post(format!("{agent}/nothing-here")).send().await.unwrap(), 404, "not_found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_bodies_must_be_json_objects() {
    let env = spa_env();
    let mut spa = Browser::new(&env.shroud.url());
    // serde reads a struct from an array of its fields: `[]` used to start a login.
    for body in [serde_json::json!([]), serde_json::json!([[{"key": "prompt", "value": "login"}]]), "x".into()] {
        let resp = spa.send(Method::POST, "/oauth-agent/login/start", Some(body.clone())).await;
        assert_agent_error(resp, 400, "invalid_request").await;
    }
    assert!(!spa.cookies.contains_key("shroud-login"), "no login was started");
    let resp = spa.send(Method::POST, "/oauth-agent/login/end", Some(serde_json::json!(["http://x/?code=c"]))).await;
    assert_agent_error(resp, 400, "invalid_request").await;
    let resp = spa.send(Method::POST, "/oauth-agent/login/end", Some(serde_json::json!({"pageUrl": 5}))).await;
    assert_agent_error(resp, 400, "invalid_request").await;
    // A null pageUrl is no pageUrl: the session report.
    let report =
        json(spa.send(Method::POST, "/oauth-agent/login/end", Some(serde_json::json!({"pageUrl": null}))).await).await;
    assert_eq!((report["handled"].as_bool(), report["isLoggedIn"].as_bool()), (Some(false), Some(false)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_agent_bodies_are_a_json_413_with_cors() {
    let env = spa_env();
    let http = client();
    let agent = format!("{}/oauth-agent", env.shroud.url());
    // Over actix's own limit (256 KiB), which used to answer with a text/plain 413 and no CORS headers.
    let padding = "a".repeat(300 * 1024);
    for path in ["/login/start", "/login/end"] {
        let body = serde_json::json!({ "pageUrl": format!("{ORIGIN}/?{padding}") });
        let resp = http.post(format!("{agent}{path}")).header("origin", ORIGIN).json(&body).send().await.unwrap();
        assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN, "{path}");
        assert_agent_error(resp, 413, "request_too_large").await;
    }
    let resp =
        http.post(format!("{agent}/backchannel-logout")).form(&[("logout_token", &padding)]).send().await.unwrap();
    assert_agent_error(resp, 413, "request_too_large").await;
    // A long but reasonable callback URL is still read.
    let mut spa = Browser::new(&env.shroud.url());
    let long = format!("{ORIGIN}/page?{}", "b".repeat(8 * 1024));
    assert_eq!(spa.end_login(&long).await.status(), 200);
}

/// A `shroud serve` configuration with the token handler and a `/spa` cookie route, over `idp` and `api`,
/// listening on `port`: the Redis backend on `redis_url` when given, else the in-process one.
/// `token_handler` adds lines to `[token_handler]`.
fn served_spa(port: u16, idp: &FakeAs, api: &EchoUpstream, redis_url: Option<&str>, token_handler: &str) -> String {
    let section = format!(
        "\n[token_handler]\nenabled = true\nclient_secret = \"webapp-secret\"\ncookie_encryption_keys = [\"{KEY1}\"]\n{token_handler}\n"
    );
    let mut text = crate::cli::base_config(&section)
        + "\n[[routes]]\npath_prefix = \"/spa\"\nupstream = \"http://127.0.0.1:7001\"\ncredentials = \"cookie\"\nrequired_scopes = [\"read\"]\n";
    if let Some(url) = redis_url {
        text = text
            .replace("redis://:redis-password-123@127.0.0.1:6379/0", url)
            .replace("backend = \"redis\"", "backend = \"redis\" # shared");
    }
    crate::cli::served_config(&text, port, &idp.url(), &api.url())
        .replace("backend = \"memory\" # shared", "backend = \"redis\"")
}

/// The `shroud::audit` lines of `logs`, as JSON.
fn audit_lines(logs: &str) -> Vec<serde_json::Value> {
    logs.lines()
        .filter(|l| l.contains("shroud::audit"))
        .map(|l| serde_json::from_str(&l[l.find('{').expect("JSON")..]).expect("each audit line is JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_every_token_of_the_session_on_every_instance() {
    let redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let (port_a, port_b) = (shroud_testkit::net::free_port(), shroud_testkit::net::free_port());
    let a = crate::cli::Served::start(&served_spa(port_a, &idp, &api, Some(&redis.url()), ""), port_a, "info").await;
    let b = crate::cli::Served::start(&served_spa(port_b, &idp, &api, Some(&redis.url()), ""), port_b, "info").await;
    let mut on_a = Browser::new(&a.base);
    on_a.login().await;
    // The first access-token cookie is used on both instances (each caches its grant), then refreshed.
    let mut old = Browser::new(&b.base);
    old.cookies = on_a.cookies.clone();
    old.csrf = on_a.csrf.clone();
    assert_eq!(on_a.send(Method::GET, "/spa/first", None).await.status(), 200);
    assert_eq!(old.send(Method::GET, "/spa/first", None).await.status(), 200);
    assert_eq!(on_a.send(Method::POST, "/oauth-agent/refresh", None).await.status(), 204);
    assert_ne!(on_a.cookies["shroud-at"].value, old.cookies["shroud-at"].value, "a new access-token cookie");
    assert_eq!(on_a.send(Method::GET, "/spa/second", None).await.status(), 200);
    // Logout with the new cookies only, on the instance that saw neither the login nor the refresh: it
    // learns the session's earlier tokens from the shared index.
    let mut on_b = Browser::new(&b.base);
    on_b.cookies = on_a.cookies.clone();
    on_b.csrf = on_a.csrf.clone();
    assert_eq!(on_b.send(Method::POST, "/oauth-agent/logout", None).await.status(), 200);
    let hits = api.hits();
    let old_at = format!("shroud-at={}", old.cookies["shroud-at"].value);
    let http = client();
    let started = std::time::Instant::now();
    for base in [&a.base, &b.base] {
        loop {
            let resp = http.get(format!("{base}/spa/stale")).header("cookie", &old_at).send().await.unwrap();
            if resp.status() == 401 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(2), "{base} still accepts the old access-token cookie");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(api.hits(), hits, "nothing was forwarded with the old cookie");
    for served in [a, b] {
        let logs = served.logs();
        let stale: Vec<_> = audit_lines(&logs).into_iter().filter(|l| l["path"] == "/spa/stale").collect();
        assert!(!stale.is_empty(), "an audit line for the refusal:\n{logs}");
        for line in stale {
            assert_eq!((line["decision"].as_str(), line["reason"].as_str()), (Some("deny"), Some("invalid_token")));
            assert_eq!(line["status"], 401);
        }
    }
}

/// VmRSS of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// One browser's cookies, replayed by many concurrent callers of `/refresh`.
struct Replayer {
    base: String,
    csrf: String,
    http: reqwest::Client,
    /// The replayed cookie header, and when it was adopted.
    cookies: std::sync::Mutex<(String, std::time::Instant)>,
}

impl Replayer {
    /// A replay of `spa`'s cookies.
    fn of(spa: &Browser) -> Replayer {
        Replayer {
            base: spa.base.clone(),
            csrf: spa.csrf.clone().unwrap(),
            http: reqwest::Client::new(),
            cookies: std::sync::Mutex::new((spa.cookie_header("/oauth-agent/refresh"), std::time::Instant::now())),
        }
    }

    /// One refresh with the replayed cookies. Every 20 s the cookies of the answer are adopted, so that the
    /// replay goes on past the 30 s for which one refresh token's grant is shared (as an attacker would).
    async fn refresh(&self) -> u16 {
        let cookies = self.cookies.lock().unwrap().0.clone();
        let resp = self
            .http
            .post(format!("{}/oauth-agent/refresh", self.base))
            .header("origin", ORIGIN)
            .header("x-shroud-csrf", &self.csrf)
            .header("cookie", cookies)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let mut held = self.cookies.lock().unwrap();
        if status == 204 && held.1.elapsed() > Duration::from_secs(20) {
            let mut fresh: std::collections::BTreeMap<String, String> = held
                .0
                .split("; ")
                .filter_map(|p| p.split_once('=').map(|(n, v)| (n.to_string(), v.to_string())))
                .collect();
            for line in resp.headers().get_all("set-cookie") {
                let pair = line.to_str().unwrap().split(';').next().unwrap();
                let (name, value) = pair.split_once('=').unwrap();
                fresh.insert(name.into(), value.into());
            }
            *held = (
                fresh.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; "),
                std::time::Instant::now(),
            );
        }
        status
    }

    /// The median time of `n` refreshes one after another.
    async fn median_latency(&self, n: usize) -> Duration {
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let started = std::time::Instant::now();
            assert_eq!(self.refresh().await, 204);
            times.push(started.elapsed());
        }
        times.sort();
        times[n / 2]
    }
}

/// Replayed refreshes.
const REPLAYS: usize = 100_000;
/// How much the process may grow while they run.
const RSS_CEILING_KIB: u64 = 48 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_refreshes_keep_memory_and_latency_flat() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let port = shroud_testkit::net::free_port();
    let served =
        crate::cli::Served::start(&served_spa(port, &idp, &api, None, "agent_rate = \"off\""), port, "warn").await;
    let pid = served.pid();
    let mut spa = Browser::new(&served.base);
    spa.login().await;
    let replayer = std::sync::Arc::new(Replayer::of(&spa));
    for _ in 0..2_000 {
        assert_eq!(replayer.refresh().await, 204);
    }
    let first = replayer.median_latency(200).await;
    let baseline = rss_kib(pid);
    let started = std::time::Instant::now();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (replayer, done) = (replayer.clone(), done.clone());
            tokio::spawn(async move {
                let mut failed = 0;
                while done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < REPLAYS {
                    failed += usize::from(replayer.refresh().await != 204);
                }
                failed
            })
        })
        .collect();
    let mut peak = baseline;
    while !workers.iter().all(|w| w.is_finished()) {
        peak = peak.max(rss_kib(pid));
        assert!(
            peak <= baseline + RSS_CEILING_KIB,
            "after {} replays the process holds {peak} KiB, {baseline} KiB before",
            done.load(std::sync::atomic::Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut failed = 0;
    for worker in workers {
        failed += worker.await.unwrap();
    }
    assert_eq!(failed, 0, "every replayed refresh succeeded");
    let last = replayer.median_latency(200).await;
    println!(
        "{REPLAYS} replays in {:.1} s; RSS {baseline} → peak {peak} KiB; median refresh {first:?} → {last:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(last <= first * 3, "a refresh after {REPLAYS} replays takes {last:?}, the first ones {first:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_calls_are_limited_per_session() {
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let port = shroud_testkit::net::free_port();
    let served =
        crate::cli::Served::start(&served_spa(port, &idp, &api, None, "agent_rate = \"3/h\""), port, "info").await;
    let mut spa = Browser::new(&served.base);
    spa.login().await;
    let mut other = Browser::new(&served.base);
    other.login().await;
    assert_eq!(spa.send(Method::GET, "/oauth-agent/claims", None).await.status(), 200);
    assert_eq!(spa.send(Method::GET, "/oauth-agent/claims", None).await.status(), 200);
    assert_eq!(spa.send(Method::POST, "/oauth-agent/refresh", None).await.status(), 204);
    let grants = idp.refresh_grants();
    // The session's budget follows it across the refresh (new cookies, same session).
    let resp = spa.send(Method::POST, "/oauth-agent/refresh", None).await;
    assert_eq!(resp.headers()["access-control-allow-origin"], ORIGIN, "CORS on the refusal");
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=1200).contains(&retry), "Retry-After {retry}");
    assert!(resp.headers().get("set-cookie").is_none(), "the session is kept");
    assert_agent_error(resp, 429, "too_many_requests").await;
    assert_eq!(idp.refresh_grants(), grants, "the authorization server was not called");
    assert_eq!(other.send(Method::GET, "/oauth-agent/claims", None).await.status(), 200, "other sessions are not");
    assert_eq!(spa.send(Method::GET, "/spa/x", None).await.status(), 200, "API routes are not limited by it");
    let logs = served.logs();
    assert!(logs.contains("refused: too_many_requests"), "a log line:\n{logs}");
    let limited: Vec<_> = audit_lines(&logs).into_iter().filter(|l| l["agent"] == "rate_limited").collect();
    assert_eq!(limited.len(), 1, "one audit line:\n{logs}");
    assert_eq!(limited[0]["path"], "/oauth-agent/refresh");
    let cookie = &spa.cookies["shroud-auth"].value;
    assert!(!logs.contains(cookie.as_str()), "no cookie in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_session_index_stays_bounded() {
    let redis = RedisServer::start();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let mut c = with_redis(token_handler_config(config(&idp, &api, ResponseMode::Json)), &redis.url());
    c.token_handler.agent_rate = "off".into();
    let shroud = start(c);
    let mut spa = Browser::new(&shroud.url());
    spa.login().await;
    // Replays of one set of cookies, then real rotations: more tokens than an index keeps.
    let replayed = spa.cookies.clone();
    for _ in 0..50 {
        spa.cookies = replayed.clone();
        assert_eq!(spa.send(Method::POST, "/oauth-agent/refresh", None).await.status(), 204);
    }
    let mut recent = None;
    for round in 0..40 {
        assert_eq!(spa.send(Method::POST, "/oauth-agent/refresh", None).await.status(), 204);
        if round == 35 {
            assert_eq!(spa.send(Method::GET, "/spa/x", None).await.status(), 200, "its grant is cached");
            recent = Some(spa.cookies.clone());
        }
    }
    let mut conn = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let mut indexes: Vec<String> = redis::cmd("KEYS").arg("shroud:v1:sessions:*").query(&mut conn).unwrap();
    indexes.sort();
    assert_eq!(indexes.len(), 2, "one index for the sid, one for the sub: {indexes:?}");
    for index in &indexes {
        let listed: usize = redis::cmd("ZCARD").arg(index).query(&mut conn).unwrap();
        assert_eq!(listed, shroud::token_handler::sessions::MAX_KEYS_PER_INDEX, "{index}: 82 tokens, capped");
        let ttl: i64 = redis::cmd("TTL").arg(index).query(&mut conn).unwrap();
        let week = shroud::token_handler::sessions::SESSION_TTL.as_secs() as i64;
        assert!(ttl > week - 60 && ttl <= week + 1, "{index} expires with its last listing: {ttl} s");
    }
    // The latest tokens are the ones kept: a logout still ends a recent earlier access token at once.
    assert_eq!(spa.send(Method::POST, "/oauth-agent/logout", None).await.status(), 200);
    let hits = api.hits();
    spa.cookies = recent.unwrap();
    assert_eq!(spa.send(Method::GET, "/spa/x", None).await.status(), 401, "a recent earlier access token");
    assert_eq!(api.hits(), hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_calls_are_limited_per_ip_sessions_or_not() {
    let env = Env::with(ResponseMode::Rfc9701, |c| {
        let mut c = token_handler_config(c);
        c.token_handler.agent_rate_per_ip = "4/h".into();
        c
    });
    let mut spa = Browser::new(&env.shroud.url());
    spa.login().await; // login/start and login/end: two calls
    let grants = env.idp.code_grants();
    let mut stranger = Browser::new(&env.shroud.url());
    let callback = stranger.start_login().await; // a third call, without a session
    assert_eq!(spa.send(Method::GET, "/oauth-agent/claims", None).await.status(), 200, "the fourth");
    // Over the limit, with or without a session: no call to the authorization server.
    let resp = stranger.end_login(&callback).await;
    assert!(resp.headers().get("retry-after").is_some());
    assert_agent_error(resp, 429, "too_many_requests").await;
    assert_agent_error(spa.send(Method::POST, "/oauth-agent/refresh", None).await, 429, "too_many_requests").await;
    assert_eq!(env.idp.code_grants(), grants);
    // Back-channel logout is not counted: the authorization server calls it for every user.
    let access = spa.decrypt("shroud-at", &[KEY1]).unwrap();
    let (sid, _) = env.idp.session_of(&access).unwrap();
    let token = env.idp.logout_token(LogoutSpec { sid: Some(sid), ..Default::default() });
    let resp = client()
        .post(format!("{}/oauth-agent/backchannel-logout", env.shroud.url()))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}
