//! The token-handler side of the fake authorization server over real HTTP: authorization
//! code + PKCE, refresh-token rotation, revocation, userinfo and back-channel logout tokens.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use josekit::jwk::Jwk;
use josekit::jws::{EdDSA, JwsVerifier, ES256, RS256};
use reqwest::blocking::{Client, Response};
use reqwest::redirect::Policy;
use reqwest::{StatusCode, Url};
use serde_json::{json, Value};
use shroud_testkit::{FakeAs, FakeAsOptions, LogoutSpec};

const CLIENT: &str = "webapp";
const SECRET: &str = "webapp-secret";
const REDIRECT: &str = "http://127.0.0.1:8080/callback";
const VERIFIER: &str = "a-fixed-pkce-verifier-with-enough-entropy-for-tests.0123456789~";
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn http() -> Client {
    Client::builder().redirect(Policy::none()).timeout(Duration::from_secs(10)).build().unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()))
}

/// The standard authorization request parameters; `overrides` replace or (with an empty
/// value) drop them, or add new ones.
fn authorize_params(overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", CLIENT),
        ("redirect_uri", REDIRECT),
        ("state", "st-123"),
        ("code_challenge", &challenge(VERIFIER)),
        ("code_challenge_method", "S256"),
        ("scope", "openid profile read"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in overrides {
        params.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            params.push((k.to_string(), v.to_string()));
        }
    }
    params
}

fn authorize(fake: &FakeAs, overrides: &[(&str, &str)]) -> Response {
    http().get(format!("{}/authorize", fake.url())).query(&authorize_params(overrides)).send().unwrap()
}

/// Runs `/authorize` and returns the query parameters of the redirect.
fn redirect_params(fake: &FakeAs, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    let r = authorize(fake, overrides);
    assert_eq!(r.status(), StatusCode::FOUND, "{:?}", r.text());
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    Url::parse(&location).unwrap().query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A fresh authorization code.
fn new_code(fake: &FakeAs, overrides: &[(&str, &str)]) -> String {
    let params = redirect_params(fake, overrides);
    assert_eq!(param(&params, "state"), Some("st-123"));
    assert_eq!(param(&params, "iss"), Some(fake.url().as_str()));
    param(&params, "code").expect("code in redirect").to_string()
}

fn token_request(fake: &FakeAs, form: &[(&str, &str)]) -> Response {
    http().post(format!("{}/token", fake.url())).basic_auth(CLIENT, Some(SECRET)).form(form).send().unwrap()
}

fn exchange(fake: &FakeAs, code: &str, verifier: &str) -> Response {
    token_request(
        fake,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
}

fn refresh(fake: &FakeAs, refresh_token: &str) -> Response {
    token_request(fake, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
}

/// A full login: the token endpoint's JSON answer.
fn login(fake: &FakeAs) -> Value {
    let code = new_code(fake, &[]);
    let r = exchange(fake, &code, VERIFIER);
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

fn assert_oauth_error(r: Response, status: u16, error: &str) {
    assert_eq!(r.status(), status);
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"], error, "{v}");
}

fn b64_json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Verifies a compact JWS against the JWKS served by `fake`; returns (header, claims).
fn verify(fake: &FakeAs, jws: &str) -> Result<(Value, Value), String> {
    let header = b64_json(jws.split('.').next().unwrap());
    let jwks: Value = http().get(format!("{}/jwks", fake.url())).send().unwrap().json().unwrap();
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).ok_or("kid not in JWKS")?;
    let jwk = Jwk::from_map(key.as_object().unwrap().clone()).map_err(|e| e.to_string())?;
    let verifier: Box<dyn JwsVerifier> = match header["alg"].as_str() {
        Some("ES256") => Box::new(ES256.verifier_from_jwk(&jwk).unwrap()),
        Some("RS256") => Box::new(RS256.verifier_from_jwk(&jwk).unwrap()),
        Some("EdDSA") => Box::new(EdDSA.verifier_from_jwk(&jwk).unwrap()),
        other => return Err(format!("unexpected alg {other:?}")),
    };
    let (payload, _) = josekit::jws::deserialize_compact(jws, verifier.as_ref()).map_err(|e| e.to_string())?;
    Ok((header, serde_json::from_slice(&payload).unwrap()))
}

fn introspect(fake: &FakeAs, token: &str) -> Value {
    http()
        .post(format!("{}/introspect", fake.url()))
        .basic_auth("gateway", Some("gateway-secret"))
        .form(&[("token", token)])
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn userinfo(fake: &FakeAs, token: &str) -> Response {
    http().get(format!("{}/userinfo", fake.url())).bearer_auth(token).send().unwrap()
}

#[test]
fn discovery_advertises_the_token_handler_features() {
    let fake = FakeAs::start();
    let doc: Value =
        http().get(format!("{}/.well-known/openid-configuration", fake.url())).send().unwrap().json().unwrap();
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["ES256"]));
    assert_eq!(doc["authorization_endpoint"], format!("{}/authorize", fake.url()));
    assert_eq!(doc["userinfo_endpoint"], format!("{}/userinfo", fake.url()));
    assert_eq!(doc["revocation_endpoint"], format!("{}/revoke", fake.url()));

    let r = http().get(format!("{}/logout?id_token_hint=x", fake.url())).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "logged out");
}

#[test]
fn code_flow_with_pkce_yields_a_verifiable_id_token() {
    let fake = FakeAs::start();
    let code = new_code(&fake, &[("nonce", "n-0S6_WzA2Mj")]);
    let last = fake.last_authorize().unwrap();
    assert_eq!(param(&last, "nonce"), Some("n-0S6_WzA2Mj"));
    assert_eq!(param(&last, "code_challenge_method"), Some("S256"));
    assert_eq!(param(&last, "redirect_uri"), Some(REDIRECT));

    let t = Instant::now();
    let r = exchange(&fake, &code, VERIFIER);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 300);
    assert_eq!(v["scope"], "openid profile read");
    let access = v["access_token"].as_str().unwrap();
    let refresh_token = v["refresh_token"].as_str().unwrap();
    assert_ne!(access, refresh_token);

    let (header, claims) = verify(&fake, v["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], fake.kid());
    assert_eq!(claims["iss"], fake.url());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], CLIENT);
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    let iat = claims["iat"].as_i64().unwrap();
    assert!((now() - iat).abs() <= 5 + t.elapsed().as_secs() as i64);
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + 300);
    assert!(claims["auth_time"].as_i64().unwrap() <= iat);
    let sid = claims["sid"].as_str().unwrap();
    assert_eq!(fake.session_of(access), Some((sid.to_string(), "alice".to_string())));
    assert_eq!(fake.session_of(refresh_token), None);

    // The access token is active at the introspection endpoint.
    let i = introspect(&fake, access);
    assert_eq!(i["active"], true);
    assert_eq!(i["sub"], "alice");
    assert_eq!(i["client_id"], CLIENT);
    assert_eq!(i["scope"], "openid profile read");

    // Codes are single use.
    assert_oauth_error(exchange(&fake, &code, VERIFIER), 400, "invalid_grant");

    // Another login is another session, for the user configured now, and the default scope.
    fake.set_login_user("bob");
    let v = {
        let code = new_code(&fake, &[("scope", "")]);
        let r = exchange(&fake, &code, VERIFIER);
        assert_eq!(r.status(), 200);
        r.json::<Value>().unwrap()
    };
    assert_eq!(v["scope"], "openid profile read");
    let (_, claims) = verify(&fake, v["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["sub"], "bob");
    assert!(claims.get("nonce").is_none());
    assert_ne!(claims["sid"], sid);
}

#[test]
fn authorize_refuses_bad_requests_and_can_redirect_errors() {
    let fake = FakeAs::start();
    for overrides in [
        &[("redirect_uri", "http://127.0.0.1:8080/callback/")][..],
        &[("redirect_uri", "http://evil.example/callback")],
        &[("redirect_uri", "")],
        &[("client_id", "someone-else")],
        &[("response_type", "token")],
        &[("state", "")],
        &[("code_challenge", "")],
        &[("code_challenge_method", "plain")],
        &[("code_challenge_method", "")],
        &[("code_challenge", "not-a-sha256-challenge")],
    ] {
        let r = authorize(&fake, overrides);
        assert_eq!(r.status(), 400, "{overrides:?}");
        assert!(r.headers().get("location").is_none());
        let v: Value = r.json().unwrap();
        assert!(v["error"].is_string(), "{v}");
    }
    assert_eq!(param(&fake.last_authorize().unwrap(), "code_challenge"), Some("not-a-sha256-challenge"));

    fake.set_authorize_error(Some("access_denied"));
    let params = redirect_params(&fake, &[]);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert!(param(&params, "error_description").is_some());
    assert_eq!(param(&params, "state"), Some("st-123"));
    assert_eq!(param(&params, "code"), None);
    // Invalid requests are still refused rather than redirected.
    assert_eq!(authorize(&fake, &[("redirect_uri", "http://evil.example/")]).status(), 400);
    fake.set_authorize_error(None);
    assert!(param(&redirect_params(&fake, &[]), "code").is_some());
}

#[test]
fn a_custom_web_client_is_honoured() {
    let fake = FakeAs::start_with(FakeAsOptions {
        web_client_id: "spa".into(),
        web_client_secret: "s3cr3t".into(),
        web_redirect_uri: "https://app.example/cb?x=1".into(),
        ..Default::default()
    });
    let mut params = authorize_params(&[("client_id", "spa"), ("redirect_uri", "https://app.example/cb?x=1")]);
    params.push(("nonce".into(), "n".into()));
    let r = http().get(format!("{}/authorize", fake.url())).query(&params).send().unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("https://app.example/cb?x=1&code="), "{location}");
    let code = Url::parse(location).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();

    // client_secret_post this time.
    let r = http()
        .post(format!("{}/token", fake.url()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://app.example/cb?x=1"),
            ("code_verifier", VERIFIER),
            ("client_id", "spa"),
            ("client_secret", "s3cr3t"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    assert_eq!(verify(&fake, v["id_token"].as_str().unwrap()).unwrap().1["aud"], "spa");
    let (_, claims) = verify(&fake, &fake.logout_token(LogoutSpec::default())).unwrap();
    assert_eq!(claims["aud"], "spa");
}

#[test]
fn token_endpoint_checks_client_verifier_and_redirect_uri() {
    let fake = FakeAs::start();

    // A wrong verifier is refused, and burns the code.
    let c = new_code(&fake, &[]);
    let wrong = "another-verifier-of-sufficient-length-0123456789abcdefghijklmnop";
    assert_oauth_error(exchange(&fake, &c, wrong), 400, "invalid_grant");
    assert_oauth_error(exchange(&fake, &c, VERIFIER), 400, "invalid_grant");

    // Missing verifier, and a verifier that is the challenge itself.
    let c = new_code(&fake, &[]);
    let r = token_request(&fake, &[("grant_type", "authorization_code"), ("code", &c), ("redirect_uri", REDIRECT)]);
    assert_oauth_error(r, 400, "invalid_grant");
    let c = new_code(&fake, &[]);
    assert_oauth_error(exchange(&fake, &c, &challenge(VERIFIER)), 400, "invalid_grant");

    // redirect_uri must be the one of the authorization request.
    let c = new_code(&fake, &[]);
    let r = token_request(
        &fake,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", "http://127.0.0.1:8080/other"),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_oauth_error(r, 400, "invalid_grant");

    // Wrong client credentials: 401 (and the code survives, nothing was redeemed).
    let c = new_code(&fake, &[]);
    let form =
        [("grant_type", "authorization_code"), ("code", &c), ("redirect_uri", REDIRECT), ("code_verifier", VERIFIER)];
    let r = http().post(format!("{}/token", fake.url())).basic_auth(CLIENT, Some("nope")).form(&form).send().unwrap();
    assert_oauth_error(r, 401, "invalid_client");
    let r = http().post(format!("{}/token", fake.url())).form(&form).send().unwrap();
    assert_oauth_error(r, 401, "invalid_client");
    // A code issued to the web client cannot be redeemed by another client.
    let r = http()
        .post(format!("{}/token", fake.url()))
        .basic_auth("demo-client", Some("demo-client-secret"))
        .form(&form)
        .send()
        .unwrap();
    assert_oauth_error(r, 400, "invalid_grant");

    // Client credentials still work, also for the web client.
    let r = token_request(&fake, &[("grant_type", "client_credentials")]);
    assert_eq!(r.status(), 200);
    assert_oauth_error(token_request(&fake, &[("grant_type", "password")]), 400, "unsupported_grant_type");
}

#[test]
fn refresh_rotates_and_the_old_token_is_refused() {
    let fake = FakeAs::start();
    let first = login(&fake);
    let (sid, _) = fake.session_of(first["access_token"].as_str().unwrap()).unwrap();
    let rt1 = first["refresh_token"].as_str().unwrap();

    fake.set_access_ttl(60);
    let r = refresh(&fake, rt1);
    assert_eq!(r.status(), 200);
    let second: Value = r.json().unwrap();
    assert!(second.get("id_token").is_none());
    assert_eq!(second["expires_in"], 60);
    assert_eq!(second["scope"], "openid profile read");
    let at2 = second["access_token"].as_str().unwrap();
    let rt2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(at2, first["access_token"]);
    assert_ne!(rt2, rt1);
    assert_eq!(fake.session_of(at2), Some((sid.clone(), "alice".to_string())));
    let i = introspect(&fake, at2);
    assert_eq!(i["active"], true);
    assert_eq!(i["token_type"], "Bearer");
    assert!((i["exp"].as_i64().unwrap() - (now() + 60)).abs() <= 5);
    // Refresh tokens introspect as node-oidc-provider's do: active, without token_type or aud; once
    // rotated out, inactive. Userinfo refuses them.
    let i = introspect(&fake, rt2);
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(
        (i["sub"].as_str(), i["client_id"].as_str(), i["sid"].as_str()),
        (Some("alice"), Some(CLIENT), Some(sid.as_str()))
    );
    assert!(i.get("token_type").is_none() && i.get("aud").is_none(), "{i}");
    assert_eq!(introspect(&fake, rt1), json!({"active": false}));
    assert_eq!(userinfo(&fake, rt2).status(), 401);

    // The rotated-out refresh token is dead; unknown ones are refused too.
    assert_oauth_error(refresh(&fake, rt1), 400, "invalid_grant");
    assert_oauth_error(refresh(&fake, "never-issued"), 400, "invalid_grant");
    // A scope not granted is refused without rotating.
    let r = token_request(&fake, &[("grant_type", "refresh_token"), ("refresh_token", rt2), ("scope", "write")]);
    assert_oauth_error(r, 400, "invalid_scope");

    // With the knob, refreshes also return an ID token for the same session, without nonce.
    fake.set_id_token_on_refresh(true);
    let r = refresh(&fake, rt2);
    assert_eq!(r.status(), 200);
    let third: Value = r.json().unwrap();
    let (_, claims) = verify(&fake, third["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["sub"], "alice");
    assert!(claims.get("nonce").is_none());
    assert_eq!(fake.refresh_grants(), 5);
}

#[test]
fn revoking_the_refresh_token_ends_the_session() {
    let fake = FakeAs::start();
    let v = login(&fake);
    let access = v["access_token"].as_str().unwrap();
    let rt = v["refresh_token"].as_str().unwrap();
    let revoke = |form: &[(&str, &str)], creds: Option<(&str, &str)>| {
        let mut req = http().post(format!("{}/revoke", fake.url())).form(form);
        if let Some((id, secret)) = creds {
            req = req.basic_auth(id, Some(secret));
        }
        req.send().unwrap()
    };

    // Presented credentials must be right; a refused revocation revokes nothing.
    assert_eq!(revoke(&[("token", rt)], Some((CLIENT, "nope"))).status(), 401);
    assert!(fake.revoked().is_empty());
    assert_eq!(introspect(&fake, access)["active"], true);

    let r = revoke(&[("token", rt), ("token_type_hint", "refresh_token")], Some((CLIENT, SECRET)));
    assert_eq!(r.status(), 200);
    assert_oauth_error(refresh(&fake, rt), 400, "invalid_grant");
    assert_eq!(introspect(&fake, access)["active"], false, "access tokens of the grant are revoked too");

    // Unauthenticated revocation of an unknown token is fine; every value is recorded.
    assert_eq!(revoke(&[("token", "whatever")], None).status(), 200);
    assert_eq!(fake.revoked(), vec![rt.to_string(), "whatever".to_string()]);
    assert_eq!(revoke(&[], None).status(), 400);
}

#[test]
fn userinfo_answers_active_tokens_only() {
    let fake = FakeAs::start();
    fake.set_login_user("carol");
    let v = login(&fake);
    let access = v["access_token"].as_str().unwrap();

    let r = userinfo(&fake, access);
    assert_eq!(r.status(), 200);
    let info: Value = r.json().unwrap();
    assert_eq!(info, json!({"sub": "carol", "name": "carol Example", "email": "carol@example.com"}));

    for token in ["unknown-token", ""] {
        let r = userinfo(&fake, token);
        assert_eq!(r.status(), 401);
        assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    }
    assert_eq!(userinfo(&fake, "unknown-token").headers()["www-authenticate"], "Bearer error=\"invalid_token\"");

    fake.revoke(access);
    assert_eq!(userinfo(&fake, access).status(), 401);

    // Expired: a token issued with a negative lifetime.
    fake.set_access_ttl(-10);
    let v = login(&fake);
    assert_eq!(v["expires_in"], -10);
    let r = userinfo(&fake, v["access_token"].as_str().unwrap());
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
    assert_eq!(fake.userinfo_calls(), 6);
}

#[test]
fn concurrent_refreshes_with_one_token_have_one_winner() {
    let fake = FakeAs::start();
    let v = login(&fake);
    let rt = v["refresh_token"].as_str().unwrap();
    fake.set_refresh_delay_ms(300);
    let t = Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2).map(|_| s.spawn(|| refresh(&fake, rt).status().as_u16())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = t.elapsed();
    assert!(elapsed >= Duration::from_millis(300));
    assert!(elapsed < Duration::from_millis(1500), "the delay must not serialise requests: {elapsed:?}");
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(sorted, vec![200, 400], "{statuses:?}");
    assert_eq!(fake.refresh_grants(), 2);
}

#[test]
fn logout_tokens_verify_and_carry_the_event() {
    for alg in ["ES256", "EdDSA"] {
        let fake = FakeAs::start_with(FakeAsOptions { alg, ..Default::default() });
        let v = login(&fake);
        let (sid, sub) = fake.session_of(v["access_token"].as_str().unwrap()).unwrap();

        let jwt =
            fake.logout_token(LogoutSpec { sid: Some(sid.clone()), sub: Some(sub.clone()), ..Default::default() });
        let (header, claims) = verify(&fake, &jwt).unwrap();
        assert_eq!(header["typ"], "logout+jwt");
        assert_eq!(header["alg"], alg);
        assert_eq!(header["kid"], fake.kid());
        assert_eq!(claims["iss"], fake.url());
        assert_eq!(claims["aud"], CLIENT);
        assert_eq!(claims["sid"], sid.as_str());
        assert_eq!(claims["sub"], sub.as_str());
        assert_eq!(claims["events"], json!({ LOGOUT_EVENT: {} }));
        assert!((claims["iat"].as_i64().unwrap() - now()).abs() <= 5);
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        assert!(claims.get("nonce").is_none());
        let other = fake.logout_token(LogoutSpec { sid: Some(sid.clone()), ..Default::default() });
        assert_ne!(verify(&fake, &other).unwrap().1["jti"], claims["jti"]);

        // Every knob.
        let jwt = fake.logout_token(LogoutSpec {
            sid: None,
            sub: Some("mallory".into()),
            aud: Some("other-client".into()),
            iat: Some(1_000_000),
            lifetime: Some(3600),
            jti: false,
            nonce: true,
            events: false,
            wrong_key: false,
            iss: Some("https://evil.example".into()),
            typ: Some("JWT".into()),
        });
        let (header, claims) = verify(&fake, &jwt).unwrap();
        assert_eq!(header["typ"], "JWT");
        assert_eq!(claims["iss"], "https://evil.example");
        assert_eq!(claims["aud"], "other-client");
        assert_eq!(claims["iat"], 1_000_000);
        assert_eq!(claims["exp"], 1_003_600);
        assert!(claims.get("jti").is_none());
        assert!(claims["nonce"].is_string());
        assert!(claims.get("events").is_none());
        assert!(claims.get("sid").is_none());

        let jwt = fake.logout_token(LogoutSpec { sid: Some(sid), wrong_key: true, ..Default::default() });
        assert_eq!(b64_json(jwt.split('.').next().unwrap())["kid"], fake.kid());
        assert!(verify(&fake, &jwt).is_err(), "signed by a key outside the JWKS");
    }
    assert!(LogoutSpec::default().events);
}
